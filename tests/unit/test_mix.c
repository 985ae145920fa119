/*
 * test_mix.c - train/mix: the mixture weights of each strategy, the tasks
 * drawn over 10,000 rows within 2 points of them, rows that come from the
 * drawn task's own documents, and a restored state that reproduces the
 * rows that follow.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "mix.h"
#include "shard.h"
#include "testfs.h"

#define FP "5555555555555555555555555555555555555555555555555555555555555555"
#define NTASK 3

/* Task t's documents hold tokens 10 t + 1 .. 10 t + 5: a row tells its task. */
static const int counts[NTASK] = {120, 40, 10};

static int write_tasks(const char *dir)
{
	struct qn_shard_opts o = {.fingerprint = FP, .vocab_size = 64, .block_tokens = 64};
	struct qn_err e;
	struct qn_shard_writer *w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	if (!w) {
		printf("  writer: %s\n", e.msg);
		return -1;
	}
	uint64_t id = 0;
	for (int t = 0; t < NTASK; t++)
		for (int k = 0; k < counts[t]; k++) {
			uint32_t ids[5];
			for (int i = 0; i < 5; i++)
				ids[i] = (uint32_t)(10 * t + 1 + i);
			struct qn_shard_doc d = {
			    .ids = ids, .n = 5, .task = (uint16_t)t, .label = -1, .id_hash = id++};
			if (qn_shard_writer_add(w, &d, &e) < 0) {
				printf("  add: %s\n", e.msg);
				qn_shard_writer_free(w);
				return -1;
			}
		}
	const char *names[NTASK] = {"big", "mid", "small"};
	struct qn_shard_special sp[] = {{"<|endoftext|>", 63}};
	struct qn_shard_meta m = {
	    .eot = 63, .tasks = names, .ntasks = NTASK, .specials = sp, .nspecials = 1};
	int rc = qn_shard_dir_commit(dir, &w, 1, &m, &e);
	if (rc < 0)
		printf("  commit: %s\n", e.msg);
	qn_shard_writer_free(w);
	return rc;
}

static void test_weights(void)
{
	uint64_t c[NTASK] = {120, 40, 10};
	double w[NTASK], ew[NTASK] = {0, 1, 3};
	struct qn_err e;
	struct qn_mix_opts p = {QN_MIX_PROPORTIONAL, 1, 0, NULL};
	CHECK(qn_mix_weights(c, NTASK, &p, w, &e) == 0 && fabs(w[0] - 120.0 / 170) < 1e-12 &&
	      fabs(w[2] - 10.0 / 170) < 1e-12);
	struct qn_mix_opts cap = {QN_MIX_PROPORTIONAL, 1, 30, NULL};
	CHECK(qn_mix_weights(c, NTASK, &cap, w, &e) == 0 && fabs(w[0] - 30.0 / 70) < 1e-12 &&
	      fabs(w[1] - 30.0 / 70) < 1e-12 && fabs(w[2] - 10.0 / 70) < 1e-12);
	struct qn_mix_opts tp = {QN_MIX_TEMPERATURE, 2, 0, NULL};
	double s = sqrt(120) + sqrt(40) + sqrt(10);
	CHECK(qn_mix_weights(c, NTASK, &tp, w, &e) == 0 && fabs(w[0] - sqrt(120) / s) < 1e-12 &&
	      fabs(w[2] - sqrt(10) / s) < 1e-12);
	struct qn_mix_opts ex = {QN_MIX_EXPLICIT, 1, 0, ew};
	CHECK(qn_mix_weights(c, NTASK, &ex, w, &e) == 0 && w[0] == 0 && w[1] == 0.25 &&
	      w[2] == 0.75);
	double zero[NTASK] = {0, 0, 0};
	struct qn_mix_opts none = {QN_MIX_EXPLICIT, 1, 0, zero};
	CHECK_NAMED("weights: all zero refused", qn_mix_weights(c, NTASK, &none, w, &e) == -1);
}

/* 10,000 rows: each from one task, the shares within 0.02 of the weights. */
static void test_draws(const char *dir, const char *name, const struct qn_mix_opts *o)
{
	struct qn_err e;
	char label[160];
	struct qn_mix *m = qn_mix_new(dir, QN_SHARD_TRAIN, 7, 1, o, &e);
	snprintf(label, sizeof label, "%s: mixer made", name);
	CHECK_NAMED(label, m != NULL);
	if (!m) {
		printf("  %s\n", e.msg);
		return;
	}
	int seen[NTASK] = {0}, pure = 1, ok = 1;
	for (int k = 0; k < 10000 && ok; k++) {
		uint32_t in[6], tg[6];
		uint8_t mask[6];
		int t = -1;
		ok = qn_mix_next(m, in, tg, mask, 6, &t, &e) == 0 && t >= 0 && t < NTASK;
		if (!ok)
			break;
		seen[t]++;
		for (int i = 0; i < 6; i++) /* the task's tokens or end-of-text */
			pure &= in[i] == 63 ||
				(in[i] > (uint32_t)(10 * t) && in[i] <= (uint32_t)(10 * t + 5));
	}
	snprintf(label, sizeof label, "%s: 10,000 rows drawn", name);
	CHECK_NAMED(label, ok);
	snprintf(label, sizeof label, "%s: every row from its task's documents", name);
	CHECK_NAMED(label, pure);
	for (int t = 0; t < NTASK; t++) {
		double share = seen[t] / 10000.0, want = qn_mix_weight(m, (size_t)t);
		snprintf(label, sizeof label, "%s: task %s share %.4f, weight %.4f (within 0.02)",
			 name, qn_mix_task_name(m, (size_t)t), share, want);
		CHECK_NAMED(label, fabs(share - want) <= 0.02);
	}
	qn_mix_free(m);
}

static void test_restore(const char *dir)
{
	struct qn_err e;
	struct qn_mix_opts o = {QN_MIX_TEMPERATURE, 2, 0, NULL};
	struct qn_mix *a = qn_mix_new(dir, QN_SHARD_TRAIN, 9, 1, &o, &e);
	struct qn_mix *b = qn_mix_new(dir, QN_SHARD_TRAIN, 9, 1, &o, &e);
	CHECK_NAMED("restore: mixers made", a && b);
	if (!a || !b) {
		qn_mix_free(a);
		qn_mix_free(b);
		return;
	}
	uint32_t in[7], tg[7], in2[7], tg2[7];
	uint8_t mk[7], mk2[7];
	int ok = 1;
	for (int k = 0; k < 333; k++)
		ok &= qn_mix_next(a, in, tg, mk, 7, NULL, &e) == 0;
	char *st = qn_mix_state(a);
	ok &= st && qn_mix_restore(b, st, &e) == 0;
	int same = ok;
	for (int k = 0; k < 500 && same; k++) {
		int ta, tb;
		same = qn_mix_next(a, in, tg, mk, 7, &ta, &e) == 0 &&
		       qn_mix_next(b, in2, tg2, mk2, 7, &tb, &e) == 0 && ta == tb &&
		       !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg);
	}
	CHECK_NAMED("restore: a restored mixer gives the same next 500 rows", same);
	CHECK_NAMED("restore: a garbled state is refused", qn_mix_restore(b, "x;1", &e) == -1);
	free(st);
	qn_mix_free(a);
	qn_mix_free(b);
}

int main(void)
{
	if (make_top("test_mix") < 0)
		return 1;
	const char *dir = in_top("shards");
	test_weights();
	CHECK_NAMED("shards written", write_tasks(dir) == 0);
	struct qn_mix_opts p = {QN_MIX_PROPORTIONAL, 1, 0, NULL};
	struct qn_mix_opts cap = {QN_MIX_PROPORTIONAL, 1, 30, NULL};
	struct qn_mix_opts tp = {QN_MIX_TEMPERATURE, 3, 0, NULL};
	double ew[NTASK] = {1, 1, 2};
	struct qn_mix_opts ex = {QN_MIX_EXPLICIT, 1, 0, ew};
	test_draws(dir, "proportional", &p);
	test_draws(dir, "proportional, cap 30", &cap);
	test_draws(dir, "temperature 3", &tp);
	test_draws(dir, "explicit 1:1:2", &ex);
	test_restore(dir);
	rm_rf(top);
	return CHECK_DONE();
}
