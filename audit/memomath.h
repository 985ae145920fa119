/*
 * memomath.h - the pure parts of quern-audit memorization and canary: the
 * canary template language, the memorization metrics over token arrays,
 * and the exposure statistics (rank exposure, the skew-normal fit and its
 * CDF). Nothing here touches a model or a file, so the unit test and the
 * fuzz target drive all of it directly.
 *
 * Templates. Literal UTF-8 text with fields in braces:
 *   {dN}  N decimal digits        0-9
 *   {aN}  N lowercase letters     a-z
 *   {AN}  N uppercase letters     A-Z
 *   {xN}  N lowercase hex digits  0-9a-f
 *   {{ and }} are a literal brace.
 * N is 1 to MM_FIELD_CHARS_MAX; a template has 1 to MM_FIELDS_MAX fields
 * and at most MM_SECRET_MAX field characters in all. The secret of a
 * canary is the concatenation of its field characters, in order; the
 * context is the literal text before the first field.
 *
 * Everything returned lives in caller-owned structs; nothing allocates.
 */
#ifndef QN_MEMOMATH_H
#define QN_MEMOMATH_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define MM_FORMAT_MAX 1024    /* bytes of a template */
#define MM_FIELDS_MAX 16      /* fields a template */
#define MM_FIELD_CHARS_MAX 32 /* characters a field */
#define MM_SECRET_MAX 64      /* field characters a template */

struct mm_field {
	char kind; /* 'd', 'a', 'A' or 'x' */
	int n;	   /* characters */
	size_t at; /* where it goes in the literal text */
	int radix; /* the alphabet's size */
};

struct mm_template {
	char lit[MM_FORMAT_MAX + 1]; /* the literal text, fields removed, NUL-terminated */
	size_t litlen;
	struct mm_field f[MM_FIELDS_MAX];
	int nf;
	int nchars;	   /* secret characters */
	double log2_space; /* log2 of the number of possible secrets */
};

/* The characters a field kind draws from; NULL for an unknown kind. */
const char *mm_alphabet(char kind);
/*
 * Parses fmt[0..len); -1 with e filled ("format 'x': at byte N: why") on
 * an unknown field, a bad count, an unmatched brace, invalid UTF-8, no
 * field at all, or a limit passed.
 */
int mm_template_parse(const char *fmt, size_t len, struct mm_template *t, struct qn_err *e);
/* Bytes of literal text before the first field (the canary's context). */
size_t mm_template_prefix_len(const struct mm_template *t);
/* The number of secrets in *n; -1 when it is 2^62 or more. */
int mm_template_space(const struct mm_template *t, uint64_t *n);
/* Secret number idx (< the space) in mixed radix, first field most significant. */
void mm_template_secret_at(const struct mm_template *t, uint64_t idx, char *secret);
/* A uniform random secret from the caller's splitmix64 state. */
void mm_template_secret_random(const struct mm_template *t, uint64_t *rng, char *secret);
/* 1 when secret[0..len) fits the fields (length and alphabets), else 0. */
int mm_template_secret_ok(const struct mm_template *t, const char *secret, size_t len);
/*
 * Writes the text of secret (nchars characters) into out (cap bytes, at
 * least litlen + nchars + 1), NUL-terminated; returns its length.
 */
size_t mm_template_render(const struct mm_template *t, const char *secret, char *out, size_t cap);

/* ---- memorization metrics ---- */

/* Leading positions where a and b agree (longest common prefix). */
size_t mm_lcp(const uint32_t *a, const uint32_t *b, size_t n);
/* Positions where a and b agree. */
size_t mm_matches(const uint32_t *a, const uint32_t *b, size_t n);
/* Median of x[0..n) (sorts x); 0 when n is 0. */
double mm_median(double *x, size_t n);

/* ---- exposure ---- */

/* log2(m) - log2(rank): the Secret Sharer's exposure of the rank-th of m. */
double mm_exposure(double m, double rank);

struct mm_moments {
	double mean, var, skew; /* population moments: divisor n */
};
void mm_moments(const double *x, size_t n, struct mm_moments *m);

/* Skew-normal SN(xi, omega, alpha): density 2/omega phi(z) Phi(alpha z), z = (x - xi)/omega. */
struct mm_skewnorm {
	double xi, omega, alpha;
	int clamped; /* the sample skewness was past what a skew-normal reaches */
};
/* The skewness bound of the skew-normal family: about 0.99527. */
double mm_skewnorm_max_skew(void);
/*
 * Method of moments: the skew-normal with the mean, variance and skewness
 * of m (skewness clamped to +-0.995 when beyond). -1 when the variance is
 * not positive.
 */
int mm_skewnorm_fit(const struct mm_moments *m, struct mm_skewnorm *s);
/* log of the standard normal CDF, accurate far into the left tail. */
double mm_log_phi_cdf(double z);
/* log2 of the CDF at x, accurate far into the left tail (never -inf above -1e150). */
double mm_skewnorm_log2cdf(const struct mm_skewnorm *s, double x);
/* The density at x. */
double mm_skewnorm_pdf(const struct mm_skewnorm *s, double x);

#endif
