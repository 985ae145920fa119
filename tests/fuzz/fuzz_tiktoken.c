/*
 * fuzz_tiktoken.c - libFuzzer target for lib/bpe's .tiktoken parser. The
 * input is a rank file and a text, split at the first NUL byte (no NUL: the
 * text is the file's first 256 bytes). The file is parsed as it is, then
 * again after the 256 single-byte lines (so its lines become merges and
 * loads succeed). Whatever loads encodes the text (its first 128 bytes)
 * with every merge path, specials allowed and not: the paths must agree,
 * and decode(encode(x)) must give x back. Every id decodes or fails cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "buf.h"
#include "err.h"

static const struct qn_bpe_special specials[] = {{"<|endoftext|>", 1000}, {"<s>", 1001}};

static void exercise(const struct qn_bpe *b, const char *text, size_t n)
{
	static const unsigned paths[] = {0, QN_BPE_HEAP_ONLY, QN_BPE_SHORT_ONLY,
					 QN_BPE_BUCKETS_ONLY};
	struct qn_bpe_scratch *s = qn_bpe_scratch_new(b);
	struct qn_bpe_ids ids, first;
	struct qn_buf out;
	struct qn_err e;

	if (!s)
		abort();
	if (n > 128) /* forced rank buckets cost O(ranks) a piece */
		n = 128;
	qn_bpe_ids_init(&ids, 1 << 20);
	qn_bpe_ids_init(&first, 1 << 20);
	qn_buf_init(&out, 1 << 20);
	for (unsigned special = 0; special < 2; special++)
		for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
			if (paths[k] == QN_BPE_BUCKETS_ONLY && qn_bpe_vocab_size(b) > 1024)
				continue; /* per-piece tables of every rank: too slow to fuzz */
			unsigned flags = paths[k] | (special ? QN_BPE_ALLOW_SPECIAL : 0);
			qn_bpe_ids_reset(&ids);
			qn_buf_reset(&out);
			if (!qn_bpe_lossless(b, flags) ||
			    qn_bpe_encode(b, s, text, n, flags, &ids, &e) < 0 ||
			    qn_bpe_decode(b, ids.v, ids.n, &out, &e) < 0 || out.len != n ||
			    (n && memcmp(out.data, text, n)))
				abort();
			if (k == 0) {
				if (ids.n > first.cap) {
					free(first.v);
					first.v = malloc(ids.n * sizeof *first.v);
					if (!first.v)
						abort();
					first.cap = ids.n;
				}
				if (ids.n)
					memcpy(first.v, ids.v, ids.n * sizeof *ids.v);
				first.n = ids.n;
			} else if (ids.n != first.n ||
				   (ids.n && memcmp(ids.v, first.v, ids.n * sizeof *ids.v))) {
				abort();
			}
		}
	/* Every token decodes to its bytes; unknown ids are errors, not crashes. */
	for (uint32_t id = 0; id < qn_bpe_vocab_size(b) && id < 4096; id++) {
		const unsigned char *p;
		size_t len;
		qn_buf_reset(&out);
		int known = qn_bpe_token(b, id, &p, &len) == 0;
		if ((qn_bpe_decode(b, &id, 1, &out, &e) == 0) != known)
			abort();
		if (known && !qn_bpe_is_special(b, id) && qn_bpe_lookup(b, p, len) != id)
			abort();
	}
	uint32_t bad = qn_bpe_vocab_size(b);
	if (qn_bpe_decode(b, &bad, 1, &out, &e) == 0)
		abort();
	qn_buf_release(&out);
	qn_bpe_ids_release(&first);
	qn_bpe_ids_release(&ids);
	qn_bpe_scratch_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	const char *nul = memchr(d, 0, size);
	size_t flen = nul ? (size_t)(nul - d) : size;
	const char *text = nul ? nul + 1 : d;
	size_t tlen = nul ? size - flen - 1 : (size < 256 ? size : 256);
	struct qn_bpe_spec spec = {"fuzz", qn_bpe_spec_named("r50k_base")->pattern, specials, 2, 0};
	struct qn_err e;
	struct qn_buf f;

	struct qn_bpe *b = qn_bpe_parse_tiktoken(d, flen, "fuzz.tiktoken", &spec, &e);
	if (b)
		exercise(b, text, tlen);
	qn_bpe_free(b);

	qn_buf_init(&f, QN_BUF_UNLIMITED);
	for (int c = 0; c < 256; c++) {
		static const char tab[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		qn_buf_printf(&f, "%c%c== %d\n", tab[c >> 2], tab[(c & 3) << 4], c);
	}
	if (qn_buf_add(&f, d, flen) < 0)
		abort();
	b = qn_bpe_parse_tiktoken(f.data, f.len, "fuzz.tiktoken", &spec, &e);
	if (b)
		exercise(b, text, tlen);
	else if (!e.msg[0])
		abort(); /* a failure always says why */
	qn_bpe_free(b);
	qn_buf_release(&f);
	return 0;
}
