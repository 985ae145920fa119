/*
 * fuzz_linedup.c - libFuzzer target: quern-clean's line dedup, both passes,
 * on arbitrary bytes split into documents at NUL bytes; the first byte
 * picks min_chars, max_docs, the table's cap and the seed. Checks that each
 * document's hash array is sorted, distinct and the set of its lines'
 * hashes; that the counts are exact without a cap, and with one never high
 * and low by at most the stated bound; and that apply's output is exactly
 * the input's lines less those counted over max_docs (so never longer, and
 * whole lines in order), with the removed counts matching and no line
 * removed that is truly in max_docs documents or fewer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "linedup.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Documents in a "true" count: how many of the sorted all[0..n) are h. */
static uint64_t truth(const uint64_t *all, size_t n, uint64_t h)
{
	size_t lo = 0, hi = n, k = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (all[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + k < n && all[lo + k] == h)
		k++;
	return k;
}

/* The doc's line hashes one by one, sorted and made distinct, against h. */
static void check_hashes(const struct cn_linedup_opts *o, const char *d, size_t len,
			 const uint64_t *h, size_t n)
{
	uint64_t *mine = malloc((len + 1) * sizeof *mine);
	size_t k = 0, u = 0;
	const char *p = d, *end = d + len;

	if (!mine)
		abort();
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		if (cn_linedup_line_hash(o, p, (size_t)(stop - p), &mine[k]))
			k++;
		p = nl ? nl + 1 : end;
	}
	qsort(mine, k, sizeof *mine, cmp_u64);
	for (size_t i = 0; i < k; i++)
		if (!u || mine[i] != mine[u - 1])
			mine[u++] = mine[i];
	if (u != n || (n && memcmp(mine, h, n * sizeof *h)))
		abort();
	for (size_t i = 1; i < n; i++)
		if (h[i - 1] >= h[i])
			abort();
	free(mine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[4] = {0, 1, 4, 16};
	struct cn_linedup_opts o;
	struct cn_linecount *t;
	const char *text = (const char *)data;
	uint8_t mode = size ? data[0] : 0;
	size_t ndocs = 0, nall = 0, cap;
	const char **doc;
	size_t *dlen;
	uint64_t *all;
	struct qn_buf out, want;

	if (size) {
		text++;
		size--;
	}
	cn_linedup_opts_init(&o);
	o.min_chars = mode & 3;
	o.max_docs = (mode >> 2) & 3;
	cap = caps[(mode >> 4) & 3];
	o.seed = mode >> 6;

	doc = malloc((size + 1) * sizeof *doc);
	dlen = malloc((size + 1) * sizeof *dlen);
	all = malloc((size + 1) * sizeof *all);
	t = cn_linecount_new(cap);
	if (!doc || !dlen || !all || !t)
		abort();
	for (const char *p = text, *end = text + size;;) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		doc[ndocs] = p;
		dlen[ndocs++] = (size_t)((z ? z : end) - p);
		if (!z)
			break;
		p = z + 1;
	}

	/* pass A */
	for (size_t i = 0; i < ndocs; i++) {
		uint64_t *h;
		size_t n;
		if (cn_linedup_hashes(&o, doc[i], dlen[i], &h, &n) < 0)
			abort();
		check_hashes(&o, doc[i], dlen[i], h, n);
		if (cn_linecount_add(t, h, n) < 0)
			abort();
		if (n)
			memcpy(all + nall, h, n * sizeof *h);
		nall += n;
		free(h);
		if (cap && cn_linecount_distinct(t) > cap)
			abort();
	}
	qsort(all, nall, sizeof *all, cmp_u64);
	{
		size_t distinct = 0;
		uint64_t u = cn_linecount_undercount(t);
		for (size_t i = 0; i < nall; i++) {
			uint64_t c, k;
			if (i && all[i] == all[i - 1])
				continue;
			distinct++;
			c = cn_linecount_get(t, all[i]);
			k = truth(all, nall, all[i]);
			if (c > k || (!cap && c != k) || k - c > u)
				abort();
		}
		if (!cap && cn_linecount_distinct(t) != distinct)
			abort();
	}

	/* pass B */
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	qn_buf_init(&want, QN_BUF_UNLIMITED);
	for (size_t i = 0; i < ndocs; i++) {
		const char *p = doc[i], *end = doc[i] + dlen[i];
		uint64_t removed, removed_bytes, lines = 0, h;
		qn_buf_reset(&want);
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *next = nl ? nl + 1 : end;
			if (cn_linedup_line_hash(&o, p, (size_t)((nl ? nl : end) - p), &h) &&
			    cn_linecount_get(t, h) > o.max_docs) {
				if (truth(all, nall, h) <= o.max_docs)
					abort();
				lines++;
			} else if (qn_buf_add(&want, p, (size_t)(next - p)) < 0) {
				abort();
			}
			p = next;
		}
		if (cn_linedup_apply(&o, t, doc[i], dlen[i], &out, &removed, &removed_bytes) < 0)
			abort();
		if (out.len > dlen[i] || out.len + removed_bytes != dlen[i] || removed != lines ||
		    out.len != want.len || (out.len && memcmp(out.data, want.data, out.len)))
			abort();
	}
	qn_buf_release(&out);
	qn_buf_release(&want);
	cn_linecount_free(t);
	free(doc);
	free(dlen);
	free(all);
	return 0;
}
