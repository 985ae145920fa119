/*
 * fuzz_shingle.c - libFuzzer target: lib/minhash's normalization, shingle
 * sets, signatures and exact Jaccard on arbitrary bytes (invalid UTF-8
 * included: invalid bytes are separators, nothing is read out of bounds).
 *
 * The first byte picks the flags and the shingle size; the rest is split
 * in two texts. Checks the invariants as well as memory safety: the
 * normalized text is valid UTF-8 without leading, trailing or double
 * spaces; normalizing it again changes nothing (idempotence); the signature
 * of the text equals the signature of its shingle set; Jaccard is within
 * [0, 1], symmetric, and 1 for a text with itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "minhash.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qn_minhash *mh[16 * 3];
	struct qn_minhash_params p;
	struct qn_err e;
	struct qn_buf n1, n2;
	uint64_t sig[QN_MINHASH_MAX_HASHES], sig2[QN_MINHASH_MAX_HASHES];
	uint64_t *s1 = NULL, *s2 = NULL;
	size_t c1 = 0, c2 = 0;

	if (size < 1)
		return 0;
	unsigned sel = data[0] % (16 * 3);
	if (!mh[sel]) {
		qn_minhash_params_default(&p);
		p.flags = sel % 16;
		p.ngram = sel / 16 == 0 ? 5 : sel / 16 == 1 ? 1 : 3;
		mh[sel] = qn_minhash_new(&p, &e);
		if (!mh[sel])
			abort();
	}
	struct qn_minhash *m = mh[sel];
	size_t k = qn_minhash_hashes(m);
	const char *t = (const char *)data + 1;
	size_t len = size - 1, half = len / 2;

	qn_buf_init(&n1, (size_t)1 << 24);
	qn_buf_init(&n2, (size_t)1 << 24);
	long w = qn_minhash_normalize(m, t, len, &n1);
	if (w < 0)
		abort();
	if (n1.len) {
		if (!qn_utf8_valid(n1.data, n1.len) || n1.data[0] == ' ' ||
		    n1.data[n1.len - 1] == ' ' || strstr(n1.data, "  "))
			abort();
		/* Idempotent, except that a word cut in the middle of a mark sequence or
		 * the NFC of a cut may differ: only check texts without long words. */
		long w2 = qn_minhash_normalize(m, n1.data, n1.len, &n2);
		if (len < QN_MINHASH_MAX_WORD && (w2 != w || n2.len != n1.len ||
						  memcmp(n1.data, n2.data, n1.len)))
			abort();
	}
	int r = qn_minhash_signature(m, t, len, sig);
	int r1 = qn_minhash_shingles(m, t, len, &s1, &c1);
	if (r < 0 || r1 < 0 || r != r1)
		abort();
	qn_minhash_signature_of(m, s1, c1, sig2);
	if (memcmp(sig, sig2, k * sizeof *sig))
		abort();
	for (size_t i = 1; i < c1; i++)
		if (s1[i - 1] >= s1[i])
			abort();
	if (qn_minhash_shingles(m, t, half, &s2, &c2) < 0)
		abort();
	double j = qn_jaccard(s1, c1, s2, c2), jr = qn_jaccard(s2, c2, s1, c1);
	if (!(j >= 0 && j <= 1) || j != jr || (c1 && qn_jaccard(s1, c1, s1, c1) != 1.0))
		abort();
	free(s1);
	free(s2);
	qn_buf_release(&n1);
	qn_buf_release(&n2);
	return 0;
}
