/*
 * test_evalmetrics - quern-audit eval's arithmetic on hand-computed
 * fixtures: multiple-choice acc / acc_norm / exact_match /
 * acc_mutual_info from fixed log-likelihoods, perplexity, word and byte
 * perplexity, bits per byte, macro-F1, the standard errors, exact match's
 * normalisations, word and character counts as Python counts them, the
 * templates and Python-compatible few-shot sampling (values from CPython's
 * random.Random).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "evalmetrics.h"
#include "evaltask.h"

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-9 * (1 + fabs((double)(b))))

static void test_mc(void)
{
	/* ll / chars = -1, -0.5, -0.5, -3: the first of the two best is choice 1 */
	const double ll[] = {-1.0, -2.0, -0.5, -3.0}, chars[] = {1, 4, 1, 1};
	const double uncond[] = {-0.5, -3.0, -0.1, -1.0}; /* ll - uncond = -.5, 1, -.4, -2 */
	const int greedy[] = {0, 1, 0, 0};
	struct qn_ev_mc mc;
	qn_ev_mc_score(ll, greedy, chars, uncond, 4, 1, &mc);
	CHECK_NAMED("mc: pred is the largest log-likelihood", mc.pred == 2);
	CHECK_NAMED("mc: pred_norm is the first best per character", mc.pred_norm == 1);
	CHECK_NAMED("mc: acc 0, acc_norm 1 for gold 1", mc.acc == 0 && mc.acc_norm == 1);
	CHECK_NAMED("mc: exact_match is the gold choice's is_greedy", mc.exact_match == 1);
	CHECK_NAMED("mc: acc_mutual_info picks ll - uncond",
		    mc.pred_mi == 1 && mc.acc_mutual_info == 1);
	qn_ev_mc_score(ll, greedy, chars, NULL, 4, 2, &mc);
	CHECK_NAMED("mc: gold 2: acc 1, acc_norm 0, exact_match 0",
		    mc.acc == 1 && mc.acc_norm == 0 && mc.exact_match == 0 &&
			mc.acc_mutual_info == 0);
	qn_ev_mc_score(ll, greedy, chars, NULL, 4, -1, &mc);
	CHECK_NAMED("mc: no gold scores 0", mc.acc == 0 && mc.acc_norm == 0 && mc.exact_match == 0);
	const double nan_first[] = {NAN, -5, -1};
	CHECK_NAMED("argmax: NaN never wins", qn_ev_argmax(nan_first, 3) == 2);
}

static void test_aggregations(void)
{
	const double acc[] = {1, 0, 1, 1};
	CHECK_NAMED("mean 0.75", NEAR(qn_ev_aggregate(QN_EV_MEAN, acc, NULL, 4, 0), 0.75));
	/* sample variance ((3 * .25^2 + .75^2) / 3) = 0.25: sd 0.5, over sqrt(4) */
	CHECK_NAMED("mean_stderr 0.25", NEAR(qn_ev_mean_stderr(acc, 4), 0.25));
	CHECK_NAMED("mean_stderr of one is NaN", isnan(qn_ev_mean_stderr(acc, 1)));
	const double ll[] = {-1, -3};
	CHECK_NAMED("perplexity exp(2)",
		    NEAR(qn_ev_aggregate(QN_EV_PERPLEXITY, ll, NULL, 2, 0), exp(2.0)));
	const double ll2[] = {-2, -4}, words[] = {2, 4}, bytes[] = {3, 3};
	CHECK_NAMED("word_perplexity exp(6/6)",
		    NEAR(qn_ev_aggregate(QN_EV_WEIGHTED_PERPLEXITY, ll2, words, 2, 0), exp(1.0)));
	CHECK_NAMED("byte_perplexity exp(6/6)",
		    NEAR(qn_ev_aggregate(QN_EV_WEIGHTED_PERPLEXITY, ll2, bytes, 2, 0), exp(1.0)));
	CHECK_NAMED("bits_per_byte 6/6/ln 2",
		    NEAR(qn_ev_aggregate(QN_EV_BITS_PER_BYTE, ll2, bytes, 2, 0), 1 / log(2.0)));
	/* label 0: P 1, R .5, F1 2/3; label 1: P 2/3, R 1, F1 .8 */
	const double gold[] = {0, 0, 1, 1}, pred[] = {0, 1, 1, 1};
	CHECK_NAMED("macro-F1 (2/3 + 0.8) / 2",
		    NEAR(qn_ev_aggregate(QN_EV_MACRO_F1, gold, pred, 4, 2), (2.0 / 3 + 0.8) / 2));
	CHECK_NAMED("no documents: NaN", isnan(qn_ev_aggregate(QN_EV_MEAN, acc, NULL, 0, 0)));
	const double same[] = {-2, -2, -2, -2, -2};
	CHECK_NAMED("bootstrap of a constant: 0",
		    NEAR(qn_ev_bootstrap_stderr(QN_EV_PERPLEXITY, same, NULL, 5, 0, 200, 1), 0));
	/* 200 documents, half right: the bootstrap agrees with the analytic 0.0354 */
	double *x = malloc(200 * sizeof *x);
	for (int i = 0; i < 200; i++)
		x[i] = i % 2;
	double an = qn_ev_mean_stderr(x, 200),
	       bs = qn_ev_bootstrap_stderr(QN_EV_MEAN, x, NULL, 200, 0, 4000, 7);
	CHECK_NAMED("bootstrap of a mean near mean_stderr (10%)", fabs(bs - an) < 0.1 * an);
	CHECK_NAMED("bootstrap is reproducible from its seed",
		    bs == qn_ev_bootstrap_stderr(QN_EV_MEAN, x, NULL, 200, 0, 4000, 7));
	free(x);
}

static int em(const struct qn_ev_em *o, const char *a, const char *b)
{
	struct qn_err e;
	return qn_ev_exact_match(o, a, strlen(a), b, strlen(b), &e);
}

static void test_exact_match(void)
{
	struct qn_ev_em plain = {0}, ci = {.ignore_case = 1, .ignore_punctuation = 1};
	struct qn_ev_em num = {.ignore_numbers = 1};
	CHECK_NAMED("exact_match: equal", em(&plain, "Paris", "Paris") == 1);
	CHECK_NAMED("exact_match: case matters by default", em(&plain, "The Cat!", "the cat") == 0);
	CHECK_NAMED("exact_match: ignore_case + ignore_punctuation",
		    em(&ci, "The Cat!", "the cat") == 1);
	CHECK_NAMED("exact_match: ignore_case lowers non-ASCII", em(&ci, "ÉTÉ", "été") == 1);
	CHECK_NAMED("exact_match: ignore_numbers", em(&num, "a1b2", "ab") == 1);
	struct qn_err e;
	void *re = qn_ev_regex_compile("^answer: ", 9, &e);
	void *re2 = qn_ev_regex_compile("\\s+$", 4, &e);
	void *res[] = {re, re2};
	struct qn_ev_em rx = {.regexes = res, .nregex = 2};
	CHECK_NAMED("exact_match: regexes_to_ignore", em(&rx, "answer: 42  ", "42") == 1);
	CHECK_NAMED("a bad regex is refused", qn_ev_regex_compile("(", 1, &e) == NULL);
	qn_ev_regex_free(re);
	qn_ev_regex_free(re2);
}

static void test_counts(void)
{
	CHECK_NAMED("words: 'a b  c' is 3", qn_ev_words("a b  c", 6) == 3);
	CHECK_NAMED("words: ' a' is 2 (re.split keeps the empty first)", qn_ev_words(" a", 2) == 2);
	CHECK_NAMED("words: '' is 1", qn_ev_words("", 0) == 1);
	CHECK_NAMED("words: a no-break space splits", qn_ev_words("a\xc2\xa0"
								  "b",
								  4) == 2);
	CHECK_NAMED("chars: 'héllo' is 5", qn_ev_chars("h\xc3\xa9llo", 6) == 5);
}

static void test_templates(void)
{
	struct qn_err e;
	struct qn_buf b;
	json_t *doc =
	    json_loads("{\"q\":\"Why?\",\"n\":3,\"ok\":true,\"c\":{\"text\":[\"a\",\"b\"]},"
		       "\"x\":1.5}",
		       0, NULL);
	qn_buf_init(&b, 1 << 20);
	const char *src = "Q: {{q}} {{ n + 1 }} {{ok}} {{c.text[1]}} {{x}}{{' '+q}} {{c.text}}";
	struct qn_ev_tmpl *t = qn_ev_tmpl_compile(src, strlen(src), "doc_to_text", &e);
	CHECK_NAMED("template compiles", t != NULL);
	if (t && qn_ev_tmpl_render(t, doc, &b, &e) == 0)
		CHECK_STR("template renders as Jinja would", b.data,
			  "Q: Why? 4 True b 1.5 Why? ['a', 'b']");
	qn_ev_tmpl_free(t);
	t = qn_ev_tmpl_compile("{{ missing }}", 13, "doc_to_text", &e);
	qn_buf_reset(&b);
	CHECK_NAMED("a missing field is an error naming it",
		    t && qn_ev_tmpl_render(t, doc, &b, &e) == -1 && strstr(e.msg, "'missing'"));
	qn_ev_tmpl_free(t);
	CHECK_NAMED("{% %} is refused", qn_ev_tmpl_compile("{% if x %}", 10, "w", &e) == NULL);
	CHECK_NAMED("an unclosed {{ is refused", qn_ev_tmpl_compile("{{ q ", 5, "w", &e) == NULL);
	t = qn_ev_tmpl_compile("a  {{- q -}}  b", 15, "w", &e);
	qn_buf_reset(&b);
	if (t && qn_ev_tmpl_render(t, doc, &b, &e) == 0)
		CHECK_STR("{{- -}} trims whitespace", b.data, "aWhy?b");
	qn_ev_tmpl_free(t);
	qn_buf_release(&b);
	json_decref(doc);
}

static void test_pyrandom(void)
{
	/* CPython: r = random.Random(1234); r.sample(range(10), 3), r.sample(range(1000), 5),
	 * r.sample(range(50), 8) */
	struct qn_ev_pyrandom r;
	size_t out[8];
	qn_ev_pyrandom_seed(&r, 1234);
	qn_ev_pyrandom_sample(&r, 10, 3, out);
	CHECK_NAMED("random.Random(1234).sample(range(10), 3) == [7, 1, 0]",
		    out[0] == 7 && out[1] == 1 && out[2] == 0);
	qn_ev_pyrandom_sample(&r, 1000, 5, out);
	CHECK_NAMED("then sample(range(1000), 5) == [92, 932, 965, 961, 826]",
		    out[0] == 92 && out[1] == 932 && out[2] == 965 && out[3] == 961 &&
			out[4] == 826);
	qn_ev_pyrandom_sample(&r, 50, 8, out);
	static const size_t want[] = {37, 2, 42, 44, 5, 6, 22, 15};
	CHECK_NAMED("then sample(range(50), 8) == [37, 2, 42, 44, 5, 6, 22, 15]",
		    !memcmp(out, want, sizeof want));
	qn_ev_pyrandom_seed(&r, 0);
	qn_ev_pyrandom_sample(&r, 7, 7, out);
	static const size_t want0[] = {6, 3, 5, 0, 1, 2, 4};
	CHECK_NAMED("random.Random(0).sample(range(7), 7)", !memcmp(out, want0, sizeof want0));
	qn_ev_pyrandom_seed(&r, (1ull << 40) + 5);
	qn_ev_pyrandom_sample(&r, 100, 2, out);
	CHECK_NAMED("a seed above 2^32", out[0] == 64 && out[1] == 66);
	CHECK_NAMED("k > n is refused", qn_ev_pyrandom_sample(&r, 2, 3, out) == -1);
}

int main(void)
{
	test_mc();
	test_aggregations();
	test_exact_match();
	test_counts();
	test_templates();
	test_pyrandom();
	return CHECK_DONE();
}
