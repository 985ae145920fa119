/*
 * test_sweep.c - train/space: the distributions' draws over 20,000 trials
 * (inside their ranges; uniform's mean, log-uniform's median at the
 * geometric mean, int's and choice's values equally likely within 2
 * points; log_int's mass per value as Optuna's), draws that depend only on
 * (seed, trial, name), and a parsed example space with its settings and
 * places.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "space.h"

#define N 20000

static struct qn_space parse(const char *text)
{
	struct qn_space s;
	struct qn_err e;
	if (qn_space_parse(text, strlen(text), "t.yaml", &s, &e)) {
		printf("  parse: %s\n", e.msg);
		qn_space_release(&s);
		memset(&s, 0, sizeof s);
	}
	return s;
}

static void test_example(void)
{
	struct qn_space s = parse("seed: 7\ntrials: 12\nscheduler: random\nmetric: val_pref_acc\n"
				  "params:\n"
				  "  lr: {log_uniform: [1e-4, 3e-2]}\n"
				  "  --warmup: {int: [0, 50]}\n"
				  "  schedule: constant\n");
	CHECK(s.nparams == 3);
	if (s.nparams != 3)
		return;
	CHECK(s.seed.v == 7 && s.seed.line == 1 && s.seed.col == 7);
	CHECK(s.trials.v == 12 && s.scheduler.v == QN_SPACE_RANDOM && !s.eta.line);
	CHECK_STR("metric", s.metric, "val_pref_acc");
	CHECK_NAMED("val_pref_acc is maximised", s.maximize);
	CHECK_STR("a parameter's option", s.params[1].opt->name, "warmup");
	CHECK(s.params[1].line == 7 && s.params[1].col == 3);
	CHECK(s.params[2].kind == QN_SPACE_CHOICE && s.params[2].nchoices == 1);
	char v[QN_SPACE_MAX_VALUE];
	qn_space_draw(&s.params[2], 1, 0, v);
	CHECK_STR("a fixed value", v, "constant");
	qn_space_release(&s);
}

static void test_distributions(void)
{
	struct qn_space s = parse("params:\n"
				  "  weight-decay: {uniform: [0.1, 0.3]}\n"
				  "  lr: {log_uniform: [1e-4, 1e-2]}\n"
				  "  warmup: {int: [0, 4]}\n"
				  "  lora-r: {log_int: [1, 4]}\n"
				  "  batch: {choice: [4, 8, 16, 32]}\n");
	CHECK(s.nparams == 5);
	if (s.nparams != 5)
		return;
	char v[QN_SPACE_MAX_VALUE];
	double sum = 0, x;
	long below = 0, ints[5] = {0}, logints[5] = {0}, choices[33] = {0}, inside = 0;
	for (long t = 0; t < N; t++) {
		qn_space_draw(&s.params[0], 42, t, v);
		inside += qn_space_number(v, &x) && x >= 0.1 && x <= 0.3;
		sum += x;
		qn_space_draw(&s.params[1], 42, t, v);
		inside += qn_space_number(v, &x) && x >= 1e-4 && x <= 1e-2;
		below += x < 1e-3;
		qn_space_draw(&s.params[2], 42, t, v);
		inside += qn_space_number(v, &x) && x >= 0 && x <= 4 && x == floor(x);
		ints[(int)x]++;
		qn_space_draw(&s.params[3], 42, t, v);
		inside += qn_space_number(v, &x) && x >= 1 && x <= 4 && x == floor(x);
		logints[(int)x]++;
		qn_space_draw(&s.params[4], 42, t, v);
		qn_space_number(v, &x);
		choices[(int)x]++;
	}
	CHECK_NAMED("every draw inside its range", inside == 4L * N);
	CHECK_NAMED("uniform: the mean", fabs(sum / N - 0.2) < 0.004);
	CHECK_NAMED("log_uniform: half below the geometric mean", labs(below - N / 2) < N / 50);
	int even = 1;
	for (int i = 0; i < 5; i++)
		even &= labs(ints[i] - N / 5) < N / 50;
	CHECK_NAMED("int: each value a fifth", even);
	even = 1;
	for (int i = 4; i <= 32; i *= 2)
		even &= labs(choices[i] - N / 4) < N / 50;
	CHECK_NAMED("choice: each value a quarter", even);
	/* log_int over [0.5, 4.5]: value k gets log((k + 1/2) / (k - 1/2)) / log 9. */
	int mass = 1;
	for (int k = 1; k <= 4; k++) {
		double want = log((k + 0.5) / (k - 0.5)) / log(9.0) * N;
		mass &= fabs(logints[k] - want) < N / 50.0;
	}
	CHECK_NAMED("log_int: each value its log interval's mass", mass);

	/* The draw is (seed, trial, name): another space with the same name agrees. */
	struct qn_space s2 = parse("params:\n"
				   "  batch: {choice: [4, 8, 16, 32]}\n"
				   "  clip: {uniform: [0, 1]}\n");
	int same = s2.nparams == 2, differ = 0;
	char w[QN_SPACE_MAX_VALUE];
	for (long t = 0; same && t < 100; t++) {
		qn_space_draw(&s.params[4], 42, t, v);
		qn_space_draw(&s2.params[0], 42, t, w);
		same &= !strcmp(v, w);
		qn_space_draw(&s2.params[0], 43, t, w);
		differ += !!strcmp(v, w);
	}
	CHECK_NAMED("draws: the same for the same (seed, trial, name)", same);
	CHECK_NAMED("draws: another seed, other values", differ > 50);
	qn_space_release(&s2);
	qn_space_release(&s);
}

static void test_rounding(void)
{
	/* 4 digits would round 0.99995.. up past high: the draw stays inside. */
	struct qn_space s = parse("params: {beta2: {uniform: [0.99991, 0.99999]}}\n");
	CHECK(s.nparams == 1);
	if (!s.nparams)
		return;
	char v[QN_SPACE_MAX_VALUE];
	int inside = 1;
	double x;
	for (long t = 0; t < 1000; t++) {
		qn_space_draw(&s.params[0], 1, t, v);
		inside &= qn_space_number(v, &x) && x >= 0.99991 && x <= 0.99999;
	}
	CHECK_NAMED("rounded draws stay inside [low, high]", inside);
	qn_space_release(&s);
}

static void test_errors(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	    {"params: {lr: {uniform: [1, 2]}}\nparams: {}\n", "t.yaml:2:1: duplicate key 'params'"},
	    {"params: {warmup: {int: [0.5, 2]}}\n",
	     "t.yaml:1:25: 'warmup': expected a whole number"},
	    {"params: {warmup: {log_int: [0, 8]}}\n",
	     "t.yaml:1:28: 'warmup': log_int needs low >= 1"},
	    {"trials: 0\nparams: {lr: 1}\n", "t.yaml:1:9: 'trials' must be a whole number from 1"},
	    {"mode: up\nparams: {lr: 1}\n", "t.yaml:1:7: 'mode' is min or max"},
	    {"params: {lr: {uniform: [1]}}\n", "t.yaml:1:24: 'lr': uniform takes [low, high]"},
	    {"params: {context: 8}\n", "t.yaml:1:10: 'context' is not a fit option"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct qn_space s;
		struct qn_err e;
		int rc = qn_space_parse(cases[i].yaml, strlen(cases[i].yaml), "t.yaml", &s, &e);
		int ok = rc == -1 && !strncmp(e.msg, cases[i].want, strlen(cases[i].want));
		CHECK_NAMED(cases[i].want, ok);
		if (!ok)
			printf("  got: %s\n", rc ? e.msg : "(parsed)");
		qn_space_release(&s);
	}
}

int main(void)
{
	test_example();
	test_distributions();
	test_rounding();
	test_errors();
	return CHECK_DONE();
}
