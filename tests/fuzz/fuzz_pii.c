/*
 * fuzz_pii.c - libFuzzer target for lib/pii: scans the raw bytes (any bytes,
 * invalid UTF-8 and NULs included: the detectors treat the input as bytes
 * and every pattern is ASCII), then redacts them in both modes and masks
 * every finding. Checks the contract: findings sorted, disjoint, inside the
 * input, of a known type, with a score in [min_score, 1]; redaction
 * succeeds and keeps every byte outside the findings; a second scan agrees.
 * The detectors are built once (default options and an all-inclusive one).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "pii.h"

static struct qn_pii *fz_pii[2];

static void fz_init(void)
{
	struct qn_pii_opts o;
	struct qn_err e;

	fz_pii[0] = qn_pii_new(NULL, &e);
	qn_pii_opts_init(&o);
	o.include_private_ip = 1;
	o.min_score = 0;
	fz_pii[1] = qn_pii_new(&o, &e);
	if (!fz_pii[0] || !fz_pii[1])
		abort();
}

static void fz_one(const struct qn_pii *p, double min, const char *text, size_t size)
{
	struct qn_pii_hits h, h2;
	struct qn_buf out;
	struct qn_err e;
	uint64_t counts[QN_PII_NTYPES] = {0};
	size_t kept = 0;
	char m[128], ps[QN_PII_PSEUDONYM_MAX];

	qn_pii_hits_init(&h, 0);
	qn_pii_hits_init(&h2, 0);
	if (qn_pii_scan(p, text, size, &h, &e) < 0)
		abort();
	for (size_t i = 0; i < h.n; i++) {
		const struct qn_pii_hit *x = &h.v[i];
		if ((unsigned)x->type >= QN_PII_NTYPES || x->start >= x->end || x->end > size ||
		    (i && x->start < h.v[i - 1].end) || x->score < (float)min - 1e-6f ||
		    x->score > 1.0f)
			abort();
		kept += x->end - x->start;
		qn_pii_mask(x->type, text + x->start, x->end - x->start, m, sizeof m);
		qn_pii_pseudonym(x->type, text + x->start, x->end - x->start,
				 (const unsigned char *)"k", 1, ps);
	}
	if (qn_pii_scan(p, text, size, &h2, &e) < 0 || h2.n != h.n ||
	    (h.n && memcmp(h.v, h2.v, h.n * sizeof *h.v)))
		abort();
	for (int mode = QN_PII_TAG; mode <= QN_PII_PSEUDONYM; mode++) {
		qn_buf_init(&out, QN_BUF_UNLIMITED);
		if (qn_pii_redact(&h, text, size, (enum qn_pii_mode)mode,
				  (const unsigned char *)"key", 3, &out, counts, &e) < 0)
			abort();
		if (out.len < size - kept)
			abort();
		qn_buf_release(&out);
	}
	uint64_t total = 0;
	for (int t = 0; t < QN_PII_NTYPES; t++)
		total += counts[t];
	if (total != 2 * h.n)
		abort();
	qn_pii_hits_release(&h);
	qn_pii_hits_release(&h2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fz_pii[0])
		fz_init();
	fz_one(fz_pii[0], QN_PII_DEFAULT_MIN_SCORE, (const char *)data, size);
	fz_one(fz_pii[1], 0, (const char *)data, size);
	return 0;
}
