/*
 * fuzz_hfjson.c - libFuzzer target for lib/bpe's tokenizer.json loader. The
 * input is a tokenizer.json and a text, split at the first NUL byte (no
 * NUL: the text is the file's first 256 bytes). A load fails with a message
 * or gives a tokenizer; that one encodes the text with every merge path,
 * specials allowed and not: the paths must agree, every id must decode, and
 * decode(encode(x)) must give x back whenever qn_bpe_lossless says so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "buf.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned paths[] = {0, QN_BPE_HEAP_ONLY, QN_BPE_SHORT_ONLY,
					 QN_BPE_BUCKETS_ONLY};
	const char *d = (const char *)data;
	const char *nul = memchr(d, 0, size);
	size_t flen = nul ? (size_t)(nul - d) : size;
	const char *text = nul ? nul + 1 : d;
	size_t n = nul ? size - flen - 1 : (size < 256 ? size : 256);
	struct qn_err e;

	e.msg[0] = 0;
	struct qn_bpe *b = qn_bpe_parse_hf(d, flen, "fuzz.json", &e);
	if (!b) {
		if (!e.msg[0])
			abort(); /* a failure always says why */
		return 0;
	}
	struct qn_bpe_scratch *s = qn_bpe_scratch_new(b);
	struct qn_bpe_ids ids, first;
	struct qn_buf out;
	if (!s)
		abort();
	qn_bpe_ids_init(&ids, 1 << 20);
	qn_bpe_ids_init(&first, 1 << 20);
	qn_buf_init(&out, 1 << 20);
	for (unsigned special = 0; special < 2; special++)
		for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
			unsigned flags = paths[k] | (special ? QN_BPE_ALLOW_SPECIAL : 0);
			qn_bpe_ids_reset(&ids);
			qn_buf_reset(&out);
			if (qn_bpe_encode(b, s, text, n, flags, &ids, &e) < 0 ||
			    qn_bpe_decode(b, ids.v, ids.n, &out, &e) < 0)
				abort();
			if (qn_bpe_lossless(b, flags) &&
			    (out.len != n || (n && memcmp(out.data, text, n))))
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
	for (size_t i = 0; i < qn_bpe_special_count(b); i++) {
		const char *name;
		size_t len;
		uint32_t id;
		qn_bpe_special_at(b, i, &name, &len, &id);
		if (!qn_bpe_is_special(b, id) || qn_bpe_special_id(b, name, len) != id)
			abort();
	}
	if (strlen(qn_bpe_fingerprint(b)) != 64)
		abort();
	qn_buf_release(&out);
	qn_bpe_ids_release(&first);
	qn_bpe_ids_release(&ids);
	qn_bpe_scratch_free(s);
	qn_bpe_free(b);
	return 0;
}
