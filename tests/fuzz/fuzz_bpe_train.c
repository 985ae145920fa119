/*
 * fuzz_bpe_train.c - libFuzzer target for lib/bpe_train. Byte 0 picks the
 * options (bits 0-1: gpt2, cl100k, o200k or a user regex; bit 2: also train
 * with 2 threads and compare; bit 3: a special token "<s>"; bits 4-5:
 * min_frequency 1-4), byte 1 the number of merges; the rest is texts
 * separated by 0x1E bytes (with a user regex, the first text is the regex).
 * Training runs in check mode (every pair recounted after every merge). The
 * result must hold together: each token is its merge's left and right bytes,
 * no two tokens have the same bytes (which the encoder equivalence in
 * docs/bpe-training.md rests on), the JSON outputs parse, the rank file has
 * one line a token, and 1 and 2 threads write the same files.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bpe_train.h"
#include "buf.h"
#include "err.h"

static const char *const special[] = {"<s>"};

static struct qn_bpet *run(const uint8_t *data, size_t size, int threads, const char *re)
{
	struct qn_bpet_opts o;
	struct qn_err e;
	struct qn_bpet *t;
	const char *names[] = {"gpt2", "cl100k", "o200k"};
	size_t i, start;

	qn_bpet_opts_default(&o);
	o.pattern = (data[0] & 3) == 3 ? re : names[data[0] & 3];
	o.threads = threads;
	o.nspecials = data[0] & 8 ? 1 : 0;
	o.specials = special;
	o.min_frequency = 1 + ((data[0] >> 4) & 3);
	o.vocab_size = 256 + o.nspecials + data[1];
	o.check = 1;
	if (!(t = qn_bpet_new(&o, &e)))
		return NULL; /* a bad user regex */
	start = 2;
	if ((data[0] & 3) == 3) { /* skip the regex */
		const uint8_t *rs = memchr(data + 2, 0x1E, size - 2);
		start = rs ? (size_t)(rs - data) + 1 : size;
	}
	for (i = start; i <= size; i++) {
		if (i == size || data[i] == 0x1E) {
			if (qn_bpet_add_text(t, (const char *)data + start, i - start, &e) < 0)
				abort(); /* inputs are far below every limit */
			start = i + 1;
		}
	}
	if (qn_bpet_train(t, &e) < 0)
		abort(); /* check mode failed, or out of memory */
	return t;
}

static int cmp_tok(const void *x, const void *y, void *tv)
{
	const struct qn_bpet *t = tv;
	size_t a = *(const size_t *)x, b = *(const size_t *)y, la, lb;
	const unsigned char *pa = qn_bpet_token(t, a, &la), *pb = qn_bpet_token(t, b, &lb);
	int c = memcmp(pa, pb, la < lb ? la : lb);
	return c ? c : (la > lb) - (la < lb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_bpet *t, *t2;
	struct qn_buf a, b;
	char re[256];
	size_t n, r, *ord;
	json_t *j;
	json_error_t je;

	if (size < 2)
		return 0;
	{
		const uint8_t *rs = memchr(data + 2, 0x1E, size - 2);
		size_t rl = rs ? (size_t)(rs - (data + 2)) : size - 2;
		if (rl >= sizeof re)
			rl = sizeof re - 1;
		memcpy(re, data + 2, rl);
		re[rl] = 0;
	}
	if (!(t = run(data, size, 1, re)))
		return 0;
	n = qn_bpet_ntokens(t);
	if (n < 256 || n > 256 + (size_t)data[1])
		abort();
	for (r = 256; r < n; r++) {
		uint32_t l, rt;
		size_t ln, ll, lr;
		const unsigned char *s = qn_bpet_token(t, r, &ln), *ls, *rs;
		if (qn_bpet_merge(t, r, &l, &rt, NULL) < 0 || l >= r || rt >= r)
			abort();
		ls = qn_bpet_token(t, l, &ll);
		rs = qn_bpet_token(t, rt, &lr);
		if (ln != ll + lr || memcmp(s, ls, ll) || memcmp(s + ll, rs, lr))
			abort();
	}
	ord = malloc(n * sizeof *ord);
	for (r = 0; r < n; r++)
		ord[r] = r;
	qsort_r(ord, n, sizeof *ord, cmp_tok, t);
	for (r = 1; r < n; r++)
		if (!cmp_tok(&ord[r - 1], &ord[r], t))
			abort(); /* two tokens with the same bytes */
	free(ord);

	qn_buf_init(&a, QN_BUF_UNLIMITED);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	if (qn_bpet_hf_json_buf(t, &a) < 0 || !(j = json_loadb(a.data, a.len, 0, &je)))
		abort();
	if (json_object_size(json_object_get(json_object_get(j, "model"), "vocab")) != n)
		abort();
	json_decref(j);
	qn_buf_reset(&a);
	if (qn_bpet_config_buf(t, &a) < 0 || !(j = json_loadb(a.data, a.len, 0, &je)))
		abort();
	json_decref(j);
	qn_buf_reset(&a);
	if (qn_bpet_tiktoken_buf(t, &a) < 0)
		abort();
	{
		size_t lines = 0, k;
		for (k = 0; k < a.len; k++)
			lines += a.data[k] == '\n';
		if (lines != n)
			abort();
	}
	if (data[0] & 4) {
		if (!(t2 = run(data, size, 2, re)) || qn_bpet_tiktoken_buf(t2, &b) < 0 ||
		    a.len != b.len || memcmp(a.data, b.data, a.len))
			abort();
		qn_bpet_free(t2);
	}
	qn_buf_release(&a);
	qn_buf_release(&b);
	qn_bpet_free(t);
	return 0;
}
