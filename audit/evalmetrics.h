/*
 * evalmetrics.h - the arithmetic of quern-audit eval, apart from models and
 * files so it can be checked by hand: per-document scores (multiple-choice
 * accuracy, length-normalised accuracy, exact match with lm-evaluation-
 * harness's normalisations), the aggregations over documents (mean,
 * perplexity, word/byte perplexity, bits per byte, macro-F1) and their
 * standard errors (sample standard deviation over sqrt(n) for means, a
 * seeded bootstrap for the rest). Definitions follow lm-evaluation-harness
 * (lm_eval/api/metrics.py, ConfigurableTask.process_results); docs/eval.md
 * lists them with the places where quern differs.
 *
 * Everything here is pure: no I/O, no globals; callers own every array.
 */
#ifndef QN_EVALMETRICS_H
#define QN_EVALMETRICS_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;
struct qn_err;

/* The index of the first largest value (numpy.argmax); NaN never wins. 0 when n is 0. */
size_t qn_ev_argmax(const double *x, size_t n);
/* Code points of UTF-8 text (Python's len(str)); invalid bytes count one each. */
size_t qn_ev_chars(const char *s, size_t n);
/* Whether cp is whitespace as Python's str.isspace and re's \s see it. */
int qn_ev_isspace(uint32_t cp);
/* len(re.split(r"\s+", s)): one more than the runs of whitespace. */
size_t qn_ev_words(const char *s, size_t n);

/*
 * One multiple-choice document: ll[i] the log-likelihood of choice i,
 * greedy[i] whether it was the greedy continuation, chars[i] its length in
 * characters (without the target delimiter), uncond[i] (NULL: not asked)
 * its log-likelihood without context for acc_mutual_info; gold the right
 * choice, or -1 when the document's target named no choice (then every
 * score is 0, as lm-eval scores its -100).
 */
struct qn_ev_mc {
	size_t pred, pred_norm, pred_mi;
	double acc, acc_norm, exact_match, acc_mutual_info;
};
void qn_ev_mc_score(const double *ll, const int *greedy, const double *chars, const double *uncond,
		    size_t n, long gold, struct qn_ev_mc *out);

/*
 * Exact match as lm-eval's exact_match (Hugging Face evaluate's): each
 * regex of regexes_to_ignore removed from both strings (in order), then
 * lowercasing (ignore_case), then ASCII punctuation (string.punctuation)
 * and ASCII digits (ignore_numbers) removed, then equality.
 */
struct qn_ev_em {
	int ignore_case, ignore_punctuation, ignore_numbers;
	void **regexes; /* compiled PCRE2 patterns (pcre2_code *), owned by the caller */
	size_t nregex;
};
/* Appends the normalised s to out; -1 with e filled when a regex fails or out is full. */
int qn_ev_em_normalize(const struct qn_ev_em *o, const char *s, size_t n, struct qn_buf *out,
		       struct qn_err *e);
/* 1 or 0; -1 with e filled on failure. */
int qn_ev_exact_match(const struct qn_ev_em *o, const char *pred, size_t np, const char *ref,
		      size_t nr, struct qn_err *e);
/* Compiles a regexes_to_ignore pattern (Python re syntax, as PCRE2 reads it); NULL with e. */
void *qn_ev_regex_compile(const char *pattern, size_t len, struct qn_err *e);
void qn_ev_regex_free(void *re);

/*
 * Aggregations over n documents. a and b are per-document values:
 *   QN_EV_MEAN                 a: scores; mean
 *   QN_EV_PERPLEXITY           a: log-likelihoods; exp(-mean(a))
 *   QN_EV_WEIGHTED_PERPLEXITY  a: log-likelihoods, b: words or bytes;
 *                              exp(-sum(a) / sum(b))
 *   QN_EV_BITS_PER_BYTE        a: log-likelihoods, b: bytes;
 *                              -sum(a) / sum(b) / ln 2
 *   QN_EV_MACRO_F1             a: gold labels, b: predicted labels (0..k-1);
 *                              scikit-learn's f1_score(average="macro")
 * NaN when n is 0 (or the weights sum to 0).
 */
enum qn_ev_agg {
	QN_EV_MEAN,
	QN_EV_PERPLEXITY,
	QN_EV_WEIGHTED_PERPLEXITY,
	QN_EV_BITS_PER_BYTE,
	QN_EV_MACRO_F1,
};
double qn_ev_aggregate(enum qn_ev_agg agg, const double *a, const double *b, size_t n, size_t k);
/* Sample standard deviation (n - 1) over sqrt(n): lm-eval's mean_stderr. NaN when n < 2. */
double qn_ev_mean_stderr(const double *x, size_t n);
/*
 * The bootstrap standard error of an aggregation: the sample standard
 * deviation of the aggregation over iters resamples (n documents drawn
 * with replacement), drawn from seed with splitmix64, as lm-eval's
 * bootstrap_stderr does with Python's random. NaN when n < 2 or iters < 2,
 * or memory ran out.
 */
double qn_ev_bootstrap_stderr(enum qn_ev_agg agg, const double *a, const double *b, size_t n,
			      size_t k, long iters, uint64_t seed);

#endif
