/*
 * evalmetrics.c - per-document scores, aggregations and standard errors of
 * quern-audit eval (see evalmetrics.h).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "buf.h"
#include "clsmetrics.h"
#include "err.h"
#include "evalmetrics.h"
#include "hash.h"

size_t qn_ev_argmax(const double *x, size_t n)
{
	size_t best = 0;
	for (size_t i = 1; i < n; i++)
		if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i])))
			best = i;
	return best;
}

/* One code point at s[0..n) (n > 0): its length; invalid bytes are U+FFFD, one byte each. */
static size_t next_cp(const char *s, size_t n, uint32_t *cp)
{
	utf8proc_int32_t c;
	utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
	if (k <= 0) {
		*cp = 0xFFFD;
		return 1;
	}
	*cp = (uint32_t)c;
	return (size_t)k;
}

size_t qn_ev_chars(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; count++) {
		uint32_t cp;
		i += next_cp(s + i, n - i, &cp);
	}
	return count;
}

int qn_ev_isspace(uint32_t cp)
{
	/* Python's str.isspace: bidirectional class WS, B or S, or category Zs. */
	if ((cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20))
		return 1;
	switch (cp) {
	case 0x85:
	case 0xa0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202f:
	case 0x205f:
	case 0x3000:
		return 1;
	}
	return cp >= 0x2000 && cp <= 0x200a;
}

size_t qn_ev_words(const char *s, size_t n)
{
	size_t words = 1;
	int in_space = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		i += next_cp(s + i, n - i, &cp);
		int sp = qn_ev_isspace(cp);
		if (sp && !in_space)
			words++;
		in_space = sp;
	}
	return words;
}

void qn_ev_mc_score(const double *ll, const int *greedy, const double *chars, const double *uncond,
		    size_t n, long gold, struct qn_ev_mc *out)
{
	double norm[n ? n : 1], mi[n ? n : 1];
	memset(out, 0, sizeof *out);
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		norm[i] = ll[i] / chars[i]; /* 0 characters: +-inf or NaN, as numpy gives */
		mi[i] = uncond ? ll[i] - uncond[i] : 0;
	}
	out->pred = qn_ev_argmax(ll, n);
	out->pred_norm = qn_ev_argmax(norm, n);
	out->pred_mi = qn_ev_argmax(mi, n);
	if (gold < 0 || (size_t)gold >= n)
		return;
	out->acc = out->pred == (size_t)gold;
	out->acc_norm = out->pred_norm == (size_t)gold;
	out->exact_match = greedy[gold] != 0;
	out->acc_mutual_info = uncond && out->pred_mi == (size_t)gold;
}

/* ---- exact match ---------------------------------------------------------------- */

void *qn_ev_regex_compile(const char *pattern, size_t len, struct qn_err *e)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len,
				       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof msg);
		qn_errf(e, "bad regex '%.*s' at offset %zu: %s", (int)(len > 200 ? 200 : len),
			pattern, (size_t)off, (char *)msg);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

void qn_ev_regex_free(void *re)
{
	pcre2_code_free(re);
}

/* out = s with every match of re removed (re.sub(pattern, "", s)). */
static int remove_matches(pcre2_code *re, const char *s, size_t n, struct qn_buf *out,
			  struct qn_err *e)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return qn_errf(e, "out of memory");
	size_t at = 0, kept = 0;
	int rc = 0;
	while (at <= n) {
		int m = pcre2_match(re, (PCRE2_SPTR)s, n, at, 0, md, NULL);
		if (m == PCRE2_ERROR_NOMATCH)
			break;
		if (m < 0) {
			rc = qn_errf(e, "regex match failed (%d)", m);
			break;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		if (qn_buf_add(out, s + kept, ov[0] - kept)) {
			rc = qn_errf(e, "text too long");
			break;
		}
		kept = ov[1];
		if (ov[1] > ov[0]) {
			at = ov[1];
		} else { /* an empty match: step over one character, as re.sub does */
			if (ov[1] >= n)
				break;
			uint32_t cp;
			at = ov[1] + next_cp(s + ov[1], n - ov[1], &cp);
		}
	}
	if (rc == 0 && qn_buf_add(out, s + kept, n - kept))
		rc = qn_errf(e, "text too long");
	pcre2_match_data_free(md);
	return rc;
}

int qn_ev_em_normalize(const struct qn_ev_em *o, const char *s, size_t n, struct qn_buf *out,
		       struct qn_err *e)
{
	struct qn_buf a, b;
	qn_buf_init(&a, out->max);
	qn_buf_init(&b, out->max);
	int rc = qn_buf_add(&a, s, n) ? qn_errf(e, "text too long") : 0;
	for (size_t i = 0; rc == 0 && i < o->nregex; i++) {
		qn_buf_reset(&b);
		rc = remove_matches(o->regexes[i], a.data ? a.data : "", a.len, &b, e);
		struct qn_buf t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; rc == 0 && i < a.len;) {
		uint32_t cp;
		size_t k = next_cp(a.data + i, a.len - i, &cp);
		int drop = (o->ignore_punctuation && cp < 128 &&
			    strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)cp) && cp) ||
			   (o->ignore_numbers && cp >= '0' && cp <= '9');
		if (!drop) {
			if (o->ignore_case) {
				char enc[4];
				size_t m = (size_t)utf8proc_encode_char(
				    utf8proc_tolower((utf8proc_int32_t)cp),
				    (utf8proc_uint8_t *)enc);
				rc = (cp == 0xFFFD && k == 1) ? qn_buf_add(out, a.data + i, 1)
							      : qn_buf_add(out, enc, m);
			} else {
				rc = qn_buf_add(out, a.data + i, k);
			}
			if (rc)
				rc = qn_errf(e, "text too long");
		}
		i += k;
	}
	qn_buf_release(&a);
	qn_buf_release(&b);
	return rc;
}

int qn_ev_exact_match(const struct qn_ev_em *o, const char *pred, size_t np, const char *ref,
		      size_t nr, struct qn_err *e)
{
	struct qn_buf a, b;
	qn_buf_init(&a, (size_t)1 << 30);
	qn_buf_init(&b, (size_t)1 << 30);
	int rc = -1;
	if (qn_ev_em_normalize(o, pred, np, &a, e) == 0 &&
	    qn_ev_em_normalize(o, ref, nr, &b, e) == 0)
		rc = a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len));
	qn_buf_release(&a);
	qn_buf_release(&b);
	return rc;
}

/* ---- aggregations ----------------------------------------------------------------- */

/* The aggregation over the documents idx[0..n) (idx NULL: 0..n-1). */
static double agg_at(enum qn_ev_agg agg, const double *a, const double *b, const size_t *idx,
		     size_t n, size_t k, struct qn_cls_metrics *cm)
{
	if (n == 0)
		return NAN;
	double sa = 0, sb = 0;
	if (agg == QN_EV_MACRO_F1) {
		memset(cm->confusion, 0, cm->k * cm->k * sizeof *cm->confusion);
		cm->n = 0;
		for (size_t i = 0; i < n; i++) {
			size_t j = idx ? idx[i] : i;
			size_t g = (size_t)a[j], p = (size_t)b[j];
			qn_cls_metrics_add(cm, g < k ? g : k - 1, p < k ? p : k - 1, 0);
		}
		return qn_cls_macro_f1(cm);
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = idx ? idx[i] : i;
		sa += a[j];
		if (b)
			sb += b[j];
	}
	switch (agg) {
	case QN_EV_MEAN:
		return sa / (double)n;
	case QN_EV_PERPLEXITY:
		return exp(-sa / (double)n);
	case QN_EV_WEIGHTED_PERPLEXITY:
		return sb > 0 ? exp(-sa / sb) : NAN;
	case QN_EV_BITS_PER_BYTE:
		return sb > 0 ? -sa / sb / log(2.0) : NAN;
	case QN_EV_MACRO_F1:
		break;
	}
	return NAN;
}

double qn_ev_aggregate(enum qn_ev_agg agg, const double *a, const double *b, size_t n, size_t k)
{
	struct qn_cls_metrics cm = {0};
	if (agg == QN_EV_MACRO_F1 && (k == 0 || qn_cls_metrics_init(&cm, k)))
		return NAN;
	double v = agg_at(agg, a, b, NULL, n, k, &cm);
	qn_cls_metrics_release(&cm);
	return v;
}

double qn_ev_mean_stderr(const double *x, size_t n)
{
	if (n < 2)
		return NAN;
	double mu = 0, ss = 0;
	for (size_t i = 0; i < n; i++)
		mu += x[i];
	mu /= (double)n;
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - mu) * (x[i] - mu);
	return sqrt(ss / (double)(n - 1)) / sqrt((double)n);
}

double qn_ev_bootstrap_stderr(enum qn_ev_agg agg, const double *a, const double *b, size_t n,
			      size_t k, long iters, uint64_t seed)
{
	if (n < 2 || iters < 2)
		return NAN;
	struct qn_cls_metrics cm = {0};
	if (agg == QN_EV_MACRO_F1 && (k == 0 || qn_cls_metrics_init(&cm, k)))
		return NAN;
	size_t *idx = malloc(n * sizeof *idx);
	double *rep = malloc((size_t)iters * sizeof *rep);
	double out = NAN;
	if (idx && rep) {
		uint64_t st = seed;
		double mu = 0, ss = 0;
		for (long it = 0; it < iters; it++) {
			for (size_t i = 0; i < n; i++)
				idx[i] =
				    (size_t)(((unsigned __int128)qn_splitmix64(&st) * n) >> 64);
			rep[it] = agg_at(agg, a, b, idx, n, k, &cm);
			mu += rep[it];
		}
		mu /= (double)iters;
		for (long it = 0; it < iters; it++)
			ss += (rep[it] - mu) * (rep[it] - mu);
		out = sqrt(ss / (double)(iters - 1));
	}
	free(idx);
	free(rep);
	qn_cls_metrics_release(&cm);
	return out;
}
