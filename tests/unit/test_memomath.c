/*
 * test_memomath.c - audit/memomath: canary templates, memorization metrics,
 * exposure and the skew-normal fit and CDF; and lib/gpt2's KV-cache rewind,
 * which memorization and canary exposure stand on.
 *
 * References, computed independently with Python's math module (no scipy
 * on the build machine), tolerance stated at each check:
 *   log Phi(z) = log(0.5 * erfc(-z / sqrt 2));
 *   the skew-normal CDF in closed form where one exists (alpha = 1:
 *   Phi(z)^2; alpha = -1: Phi(z) (2 - Phi(z))), else Phi(z) - 2 T(z, alpha)
 *   with Owen's T by Simpson's rule on 400,000 intervals -- a different
 *   formula from the C code's, which integrates the density in log space;
 *   the method-of-moments fit is checked by integrating the fitted density's
 *   own moments numerically and comparing them with the sample's.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "gpt2.h"
#include "hash.h"
#include "memomath.h"

static int close_to(double got, double want, double rel, double abs_tol)
{
	double d = fabs(got - want);
	int ok = d <= abs_tol || d <= rel * fabs(want);
	if (!ok)
		printf("  got %.17g, want %.17g\n", got, want);
	return ok;
}

static int parses(const char *f)
{
	struct mm_template t;
	struct qn_err e;
	return mm_template_parse(f, strlen(f), &t, &e) == 0;
}

static void test_templates(void)
{
	struct mm_template t;
	struct qn_err e;
	char out[256], sec[MM_SECRET_MAX + 1];
	const char *f = "my account number is {d4}-{d4}";
	CHECK(mm_template_parse(f, strlen(f), &t, &e) == 0);
	CHECK(t.nf == 2 && t.nchars == 8);
	CHECK(mm_template_prefix_len(&t) == strlen("my account number is "));
	CHECK(close_to(t.log2_space, 8 * log2(10), 1e-12, 0));
	uint64_t n;
	CHECK(mm_template_space(&t, &n) == 0 && n == 100000000ull);
	CHECK(mm_template_render(&t, "12345678", out, sizeof out) ==
	      strlen("my account number is 1234-5678"));
	CHECK_STR("render", out, "my account number is 1234-5678");
	mm_template_secret_at(&t, 1234, sec);
	sec[8] = 0;
	CHECK_STR("secret_at mixed radix", sec, "00001234");
	CHECK(mm_template_secret_ok(&t, "00001234", 8));
	CHECK(!mm_template_secret_ok(&t, "0000123a", 8));
	CHECK(!mm_template_secret_ok(&t, "0000123", 7));

	const char *g = "{{key}} {A2}{x3}:{a1}}}";
	CHECK(mm_template_parse(g, strlen(g), &t, &e) == 0);
	CHECK(t.nchars == 6 && t.nf == 3);
	mm_template_render(&t, "QZf0ab", out, sizeof out);
	CHECK_STR("braces and kinds", out, "{key} QZf0a:b}");
	CHECK(mm_template_space(&t, &n) == 0 && n == 26ull * 26 * 16 * 16 * 16 * 26);
	mm_template_secret_at(&t, n - 1, sec);
	sec[6] = 0;
	CHECK_STR("last secret", sec, "ZZfffz");
	uint64_t rng = 7;
	for (int i = 0; i < 100; i++) {
		mm_template_secret_random(&t, &rng, sec);
		if (!mm_template_secret_ok(&t, sec, 6))
			break;
		if (i == 99)
			CHECK_NAMED("random secrets fit", 1);
	}
	CHECK(parses("{d1}"));
	CHECK(parses("x {d32}"));
	CHECK(!parses("no field"));
	CHECK(!parses("{q4}"));
	CHECK(!parses("{d0}"));
	CHECK(!parses("{d33}"));
	CHECK(!parses("{d}"));
	CHECK(!parses("{d4"));
	CHECK(!parses("a } b {d2}"));
	CHECK(!parses("{d2} {"));
	CHECK(!parses("{d32}{d32}{d1}")); /* 65 characters */
	CHECK(!parses("\xff {d2}"));
	CHECK(mm_template_parse("{d2}\0x", 6, &t, &e) < 0);
	const char *big = "{a32}{a32}";
	CHECK(mm_template_parse(big, strlen(big), &t, &e) == 0);
	CHECK(mm_template_space(&t, &n) < 0);
	/* The error names the place. */
	CHECK(mm_template_parse("ab{z1}", 6, &t, &e) < 0 && strstr(e.msg, "at byte 2"));
}

static void test_metrics(void)
{
	uint32_t a[] = {1, 2, 3, 4, 5}, b[] = {1, 2, 9, 4, 5};
	CHECK(mm_lcp(a, b, 5) == 2);
	CHECK(mm_lcp(a, a, 5) == 5);
	CHECK(mm_matches(a, b, 5) == 4);
	double x[] = {5, 1, 3}, y[] = {4, 1, 3, 2};
	CHECK(mm_median(x, 3) == 3);
	CHECK(mm_median(y, 4) == 2.5);
	CHECK(mm_median(NULL, 0) == 0);
}

static void test_exposure(void)
{
	CHECK(close_to(mm_exposure(10000, 1), 13.287712379549449, 1e-15, 0));
	CHECK(close_to(mm_exposure(1024, 32), 5, 1e-15, 0));
	CHECK(mm_exposure(100, 100) == 0);

	/* log Phi, both branches (z = -35 is the asymptotic series). */
	CHECK(close_to(mm_log_phi_cdf(0), -0.6931471805599453, 1e-14, 0));
	CHECK(close_to(mm_log_phi_cdf(-1), -1.8410216450092634, 1e-14, 0));
	CHECK(close_to(mm_log_phi_cdf(-5), -15.064998393988724, 1e-13, 0));
	CHECK(close_to(mm_log_phi_cdf(-20), -203.91715537109724, 1e-13, 0));
	CHECK(close_to(mm_log_phi_cdf(-35), -616.9751012619224, 1e-12, 0));

	/* Skew-normal CDFs, standard location and scale. */
	struct mm_skewnorm s = {.xi = 0, .omega = 1, .alpha = 1};
	CHECK(close_to(mm_skewnorm_log2cdf(&s, 0.5), -1.064554327381409, 1e-7, 0));
	CHECK(close_to(mm_skewnorm_log2cdf(&s, -3), -19.065867702649896, 1e-7, 0));
	CHECK(close_to(mm_skewnorm_log2cdf(&s, -10), -153.5930222135813, 1e-7, 0));
	CHECK(close_to(mm_skewnorm_log2cdf(&s, -25), -913.6282073663756, 1e-7, 0));
	s.alpha = -1;
	CHECK(close_to(mm_skewnorm_log2cdf(&s, 1), -0.03677964931325878, 1e-6, 0));
	CHECK(close_to(mm_skewnorm_log2cdf(&s, -2), -4.4744860788330065, 1e-7, 0));
	CHECK(close_to(mm_skewnorm_log2cdf(&s, -10), -75.79651110679065, 1e-7, 0));
	static const struct {
		double a, z, want;
	} owen[] = {
	    {3, -1, -14.117930148728536},      {3, 0.3, -1.9448386278322782},
	    {3, 2, -0.06718329612109157},      {-2.5, -1, -1.6575908314108438},
	    {-2.5, 0.3, -0.05391514749113434}, {0.7, -2.2, -9.804129063693429},
	};
	for (size_t i = 0; i < sizeof owen / sizeof *owen; i++) {
		s.alpha = owen[i].a;
		CHECK_NAMED("skew-normal CDF against Phi - 2T",
			    close_to(mm_skewnorm_log2cdf(&s, owen[i].z), owen[i].want, 1e-6, 1e-9));
	}
	s.alpha = -2.5;
	CHECK(close_to(mm_skewnorm_log2cdf(&s, 2), -2.8975200978825688e-09, 0, 1e-10));
	s.alpha = 0;
	CHECK(close_to(mm_skewnorm_log2cdf(&s, -20), -203.91715537109724 / M_LN2, 1e-12, 0));
	/* Location and scale. */
	s = (struct mm_skewnorm){.xi = 10, .omega = 2, .alpha = 1};
	CHECK(close_to(mm_skewnorm_log2cdf(&s, 4), -19.065867702649896, 1e-7, 0));
	CHECK(mm_skewnorm_log2cdf(&s, 1e6) == 0);
	CHECK(isfinite(mm_skewnorm_log2cdf(&s, -1e3)));
}

/* The moments of the fitted density, integrated numerically. */
static void fitted_moments(const struct mm_skewnorm *s, double *mean, double *var, double *skew)
{
	double lo = s->xi - 14 * s->omega, hi = s->xi + 14 * s->omega;
	int n = 200000;
	double h = (hi - lo) / n, m[4] = {0};
	for (int i = 0; i <= n; i++) {
		double x = lo + i * h, w = i == 0 || i == n ? 1 : i % 2 ? 4 : 2;
		double p = w * mm_skewnorm_pdf(s, x) * h / 3;
		m[0] += p;
		m[1] += p * x;
	}
	*mean = m[1] / m[0];
	for (int i = 0; i <= n; i++) {
		double x = lo + i * h, w = i == 0 || i == n ? 1 : i % 2 ? 4 : 2;
		double p = w * mm_skewnorm_pdf(s, x) * h / 3, d = x - *mean;
		m[2] += p * d * d;
		m[3] += p * d * d * d;
	}
	*var = m[2] / m[0];
	*skew = m[3] / m[0] / pow(*var, 1.5);
}

static void test_fit(void)
{
	/* A right-skewed sample: sums of squares of uniforms, shifted. */
	enum { N = 5000 };
	static double x[N];
	uint64_t rng = 11;
	for (int i = 0; i < N; i++) {
		double u = (double)(qn_splitmix64(&rng) >> 11) / 9007199254740992.0;
		double v = (double)(qn_splitmix64(&rng) >> 11) / 9007199254740992.0;
		x[i] = 50 + 10 * (u * u + 0.5 * v);
	}
	struct mm_moments mo;
	struct mm_skewnorm s;
	mm_moments(x, N, &mo);
	CHECK(mo.skew > 0 && mo.skew < 0.99);
	CHECK(mm_skewnorm_fit(&mo, &s) == 0 && !s.clamped && s.alpha > 0);
	double mean, var, skew;
	fitted_moments(&s, &mean, &var, &skew);
	CHECK_NAMED("fit: mean", close_to(mean, mo.mean, 1e-9, 0));
	CHECK_NAMED("fit: variance", close_to(var, mo.var, 1e-6, 0));
	CHECK_NAMED("fit: skewness", close_to(skew, mo.skew, 1e-5, 0));
	/* Negative skew mirrors. */
	for (int i = 0; i < N; i++)
		x[i] = -x[i];
	mm_moments(x, N, &mo);
	struct mm_skewnorm r;
	CHECK(mm_skewnorm_fit(&mo, &r) == 0);
	CHECK(close_to(r.alpha, -s.alpha, 1e-9, 0) && close_to(r.omega, s.omega, 1e-9, 0));
	/* Past the family's reach: clamped, still a distribution. */
	struct mm_moments big = {.mean = 0, .var = 4, .skew = 3};
	CHECK(mm_skewnorm_fit(&big, &r) == 0 && r.clamped);
	fitted_moments(&r, &mean, &var, &skew);
	CHECK(close_to(mean, 0, 0, 1e-6) && close_to(var, 4, 1e-5, 0) &&
	      close_to(skew, 0.995, 1e-3, 0));
	CHECK(close_to(mm_skewnorm_max_skew(), 0.99527174643, 1e-9, 0));
	struct mm_moments flat = {.mean = 1, .var = 0, .skew = 0};
	CHECK(mm_skewnorm_fit(&flat, &r) < 0);
	/* Symmetric: a normal. */
	struct mm_moments sym = {.mean = 3, .var = 9, .skew = 0};
	CHECK(mm_skewnorm_fit(&sym, &r) == 0 && r.alpha == 0 && r.xi == 3 && r.omega == 3);
}

/* Rewinding the KV cache gives what a fresh pass over the kept tokens gives. */
static void test_rewind(void)
{
	struct qn_gpt2_config c;
	struct qn_err e;
	qn_gpt2_config_default(&c);
	c.n_layer = 2;
	c.n_head = 2;
	c.n_embd = 16;
	c.n_positions = 32;
	c.vocab_size = 50;
	struct qn_gpt2 *m = qn_gpt2_new(&c, &e);
	CHECK(m != NULL);
	if (!m)
		return;
	qn_gpt2_init_weights(m, 3);
	qn_gpt2_set_threads(m, 1);
	struct qn_gpt2_infer *g = qn_gpt2_infer_new(m, &e);
	uint32_t a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, b[] = {1, 2, 3, 4, 40, 41, 42};
	float l1[3 * 50], l2[3 * 50], last[50];
	CHECK(qn_gpt2_infer_step(g, a, 10, last, 0, &e) == 0);
	CHECK(qn_gpt2_infer_rewind(g, 11, &e) < 0);
	CHECK(qn_gpt2_infer_rewind(g, -1, &e) < 0);
	CHECK(qn_gpt2_infer_rewind(g, 4, &e) == 0 && qn_gpt2_infer_pos(g) == 4);
	CHECK(qn_gpt2_infer_step(g, b + 4, 3, l1, 1, &e) == 0);
	qn_gpt2_infer_reset(g);
	CHECK(qn_gpt2_infer_step(g, b, 4, last, 0, &e) == 0);
	CHECK(qn_gpt2_infer_step(g, b + 4, 3, l2, 1, &e) == 0);
	double d = 0;
	for (int i = 0; i < 150; i++)
		d = fmax(d, fabs(l1[i] - l2[i]));
	CHECK_NAMED("rewind: logits as a fresh pass (1e-5)", d < 1e-5);
	qn_gpt2_infer_free(g);
	qn_gpt2_free(m);
}

int main(void)
{
	test_templates();
	test_metrics();
	test_exposure();
	test_fit();
	test_rewind();
	return CHECK_DONE();
}
