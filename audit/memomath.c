/*
 * memomath.c - canary templates, memorization metrics and exposure
 * statistics (memomath.h). The skew-normal CDF is integrated from its
 * density in log space, so that a canary far in the left tail of its
 * candidates (a memorized one) still gets a finite, accurate exposure
 * where Phi(z) - 2 T(z, alpha) would cancel to zero.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "memomath.h"
#include "utf8.h"

const char *mm_alphabet(char kind)
{
	switch (kind) {
	case 'd':
		return "0123456789";
	case 'a':
		return "abcdefghijklmnopqrstuvwxyz";
	case 'A':
		return "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	case 'x':
		return "0123456789abcdef";
	default:
		return NULL;
	}
}

int mm_template_parse(const char *fmt, size_t len, struct mm_template *t, struct qn_err *e)
{
	memset(t, 0, sizeof *t);
	if (len > MM_FORMAT_MAX)
		return qn_errf(e, "format: longer than %d bytes", MM_FORMAT_MAX);
	if (!qn_utf8_valid(fmt, len) || memchr(fmt, 0, len))
		return qn_errf(e, "format '%.*s': not valid UTF-8 text", (int)len, fmt);
	for (size_t i = 0; i < len;) {
		char c = fmt[i];
		if (c == '}') {
			if (i + 1 < len && fmt[i + 1] == '}') {
				t->lit[t->litlen++] = '}';
				i += 2;
				continue;
			}
			return qn_errf(e,
				       "format '%.*s': at byte %zu: a '}' without '{' (write '}}')",
				       (int)len, fmt, i);
		}
		if (c != '{') {
			t->lit[t->litlen++] = c;
			i++;
			continue;
		}
		if (i + 1 < len && fmt[i + 1] == '{') {
			t->lit[t->litlen++] = '{';
			i += 2;
			continue;
		}
		size_t j = i + 1;
		char kind = j < len ? fmt[j] : 0;
		if (!mm_alphabet(kind))
			return qn_errf(e,
				       "format '%.*s': at byte %zu: unknown field (use {dN}, {aN}, "
				       "{AN} or {xN}; '{{' for a brace)",
				       (int)len, fmt, i);
		j++;
		int n = 0, digits = 0;
		while (j < len && fmt[j] >= '0' && fmt[j] <= '9' && digits < 4) {
			n = n * 10 + (fmt[j] - '0');
			j++;
			digits++;
		}
		if (j >= len || fmt[j] != '}')
			return qn_errf(
			    e, "format '%.*s': at byte %zu: a field is {%cN} with N a number",
			    (int)len, fmt, i, kind);
		if (n < 1 || n > MM_FIELD_CHARS_MAX)
			return qn_errf(e, "format '%.*s': at byte %zu: N is 1 to %d", (int)len, fmt,
				       i, MM_FIELD_CHARS_MAX);
		if (t->nf == MM_FIELDS_MAX)
			return qn_errf(e, "format '%.*s': more than %d fields", (int)len, fmt,
				       MM_FIELDS_MAX);
		if (t->nchars + n > MM_SECRET_MAX)
			return qn_errf(e, "format '%.*s': more than %d secret characters", (int)len,
				       fmt, MM_SECRET_MAX);
		struct mm_field *f = &t->f[t->nf++];
		f->kind = kind;
		f->n = n;
		f->at = t->litlen;
		f->radix = (int)strlen(mm_alphabet(kind));
		t->nchars += n;
		t->log2_space += n * log2((double)f->radix);
		i = j + 1;
	}
	if (!t->nf)
		return qn_errf(e, "format '%.*s': no field for the secret (e.g. {d4})", (int)len,
			       fmt);
	t->lit[t->litlen] = 0;
	return 0;
}

size_t mm_template_prefix_len(const struct mm_template *t)
{
	return t->f[0].at;
}

int mm_template_space(const struct mm_template *t, uint64_t *n)
{
	uint64_t s = 1;
	for (int i = 0; i < t->nf; i++)
		for (int k = 0; k < t->f[i].n; k++) {
			if (s >= (UINT64_C(1) << 62) / (uint64_t)t->f[i].radix)
				return -1;
			s *= (uint64_t)t->f[i].radix;
		}
	*n = s;
	return 0;
}

void mm_template_secret_at(const struct mm_template *t, uint64_t idx, char *secret)
{
	for (int i = t->nf - 1, p = t->nchars - 1; i >= 0; i--) {
		const char *abc = mm_alphabet(t->f[i].kind);
		for (int k = 0; k < t->f[i].n; k++, p--) {
			secret[p] = abc[idx % (uint64_t)t->f[i].radix];
			idx /= (uint64_t)t->f[i].radix;
		}
	}
}

void mm_template_secret_random(const struct mm_template *t, uint64_t *rng, char *secret)
{
	for (int i = 0, p = 0; i < t->nf; i++) {
		const char *abc = mm_alphabet(t->f[i].kind);
		for (int k = 0; k < t->f[i].n; k++) {
			/* The top 32 bits scaled to the radix: bias below 2^-27. */
			uint64_t r = qn_splitmix64(rng) >> 32;
			secret[p++] = abc[(r * (uint64_t)t->f[i].radix) >> 32];
		}
	}
}

int mm_template_secret_ok(const struct mm_template *t, const char *secret, size_t len)
{
	if (len != (size_t)t->nchars)
		return 0;
	for (int i = 0, p = 0; i < t->nf; i++) {
		const char *abc = mm_alphabet(t->f[i].kind);
		for (int k = 0; k < t->f[i].n; k++, p++)
			if (!secret[p] || !strchr(abc, secret[p]))
				return 0;
	}
	return 1;
}

size_t mm_template_render(const struct mm_template *t, const char *secret, char *out, size_t cap)
{
	size_t o = 0, lit = 0;
	int p = 0;
	if (cap < t->litlen + (size_t)t->nchars + 1) {
		if (cap)
			out[0] = 0;
		return 0;
	}
	for (int i = 0; i < t->nf; i++) {
		memcpy(out + o, t->lit + lit, t->f[i].at - lit);
		o += t->f[i].at - lit;
		lit = t->f[i].at;
		memcpy(out + o, secret + p, (size_t)t->f[i].n);
		o += (size_t)t->f[i].n;
		p += t->f[i].n;
	}
	memcpy(out + o, t->lit + lit, t->litlen - lit);
	o += t->litlen - lit;
	out[o] = 0;
	return o;
}

/* ---- memorization metrics ---------------------------------------------------- */

size_t mm_lcp(const uint32_t *a, const uint32_t *b, size_t n)
{
	size_t i = 0;
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

size_t mm_matches(const uint32_t *a, const uint32_t *b, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += a[i] == b[i];
	return k;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double mm_median(double *x, size_t n)
{
	if (!n)
		return 0;
	qsort(x, n, sizeof *x, cmp_double);
	return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* ---- exposure ------------------------------------------------------------------ */

double mm_exposure(double m, double rank)
{
	return log2(m) - log2(rank);
}

void mm_moments(const double *x, size_t n, struct mm_moments *m)
{
	double s = 0, m2 = 0, m3 = 0;
	memset(m, 0, sizeof *m);
	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		s += x[i];
	m->mean = s / (double)n;
	for (size_t i = 0; i < n; i++) {
		double d = x[i] - m->mean;
		m2 += d * d;
		m3 += d * d * d;
	}
	m2 /= (double)n;
	m3 /= (double)n;
	m->var = m2;
	m->skew = m2 > 0 ? m3 / pow(m2, 1.5) : 0;
}

double mm_skewnorm_max_skew(void)
{
	double b = sqrt(2 / M_PI);
	return (4 - M_PI) / 2 * b * b * b / pow(1 - 2 / M_PI, 1.5);
}

int mm_skewnorm_fit(const struct mm_moments *m, struct mm_skewnorm *s)
{
	memset(s, 0, sizeof *s);
	if (!(m->var > 0) || !isfinite(m->var))
		return -1;
	double g = fabs(m->skew);
	if (g > 0.995) {
		g = 0.995;
		s->clamped = 1;
	}
	/* Invert skew = (4 - pi)/2 (delta b)^3 / (1 - (delta b)^2)^(3/2), b = sqrt(2/pi). */
	double g23 = pow(g, 2.0 / 3), c = pow((4 - M_PI) / 2, 2.0 / 3);
	double delta = sqrt(M_PI / 2 * g23 / (g23 + c));
	if (m->skew < 0)
		delta = -delta;
	s->alpha = delta / sqrt(1 - delta * delta);
	s->omega = sqrt(m->var / (1 - 2 * delta * delta / M_PI));
	s->xi = m->mean - s->omega * delta * sqrt(2 / M_PI);
	return 0;
}

double mm_log_phi_cdf(double z)
{
	if (z > -30)
		return log(0.5 * erfc(-z / M_SQRT2));
	/* Laplace's asymptotic series for the Mills ratio, four terms. */
	double z2 = z * z;
	double series = 1 - 1 / z2 + 3 / (z2 * z2) - 15 / (z2 * z2 * z2);
	return -z2 / 2 - log(-z) - 0.5 * log(2 * M_PI) + log(series);
}

/* log of the standard skew-normal density at t. */
static double log_sn(double t, double alpha)
{
	return M_LN2 - t * t / 2 - 0.5 * log(2 * M_PI) + mm_log_phi_cdf(alpha * t);
}

/* d/dt of log_sn: -t + alpha phi(alpha t) / Phi(alpha t). */
static double log_sn_slope(double t, double alpha)
{
	double u = alpha * t;
	double lphi = -u * u / 2 - 0.5 * log(2 * M_PI);
	return -t + alpha * exp(lphi - mm_log_phi_cdf(u));
}

/* log of the integral of exp(log_sn) over [lo, hi], Simpson with n (even) intervals. */
static double log_integral(double lo, double hi, int n, double alpha)
{
	double h = (hi - lo) / n, ref = -INFINITY;
	for (int i = 0; i <= n; i += n / 64)
		ref = fmax(ref, log_sn(lo + i * h, alpha));
	ref = fmax(ref, log_sn(hi, alpha));
	double s = 0;
	for (int i = 0; i <= n; i++) {
		double w = i == 0 || i == n ? 1 : i % 2 ? 4 : 2;
		s += w * exp(log_sn(lo + i * h, alpha) - ref);
	}
	return ref + log(s * h / 3);
}

double mm_skewnorm_log2cdf(const struct mm_skewnorm *s, double x)
{
	double z = (x - s->xi) / s->omega, a = s->alpha;
	if (z >= 12)
		return 0;
	if (a == 0)
		return mm_log_phi_cdf(z) / M_LN2;
	double slope = log_sn_slope(z, a);
	double lf;
	if (slope > 1) {
		/*
		 * Left of the mode: the density is log-concave, so below z it
		 * falls at least as fast as exp(slope (t - z)); 60/slope covers
		 * all but e^-60 of the mass, and the step resolves both that rate
		 * and the curvature (at most 1 + alpha^2).
		 */
		double span = 60 / slope, w = 1 / sqrt(1 + a * a);
		int n = 20000;
		if (span / n > w / 20)
			n = (int)fmin(2e6, 2 * ceil(span / (w / 20) / 2));
		lf = log_integral(z - span, z, n, a);
	} else {
		/* Near or right of the mode: the mass below -12 is under 1e-32. */
		double w = 1 / sqrt(1 + a * a);
		int n = (int)fmin(2e6, 2 * ceil((z + 12) / (w / 50) / 2));
		if (n < 2000)
			n = 2000;
		lf = log_integral(-12, z, n, a);
		if (lf > 0)
			lf = 0;
	}
	return lf / M_LN2;
}

double mm_skewnorm_pdf(const struct mm_skewnorm *s, double x)
{
	double z = (x - s->xi) / s->omega;
	return exp(log_sn(z, s->alpha)) / s->omega;
}
