/*
 * mix.h - multi-task mixing for quern-train: rows drawn from the tasks of a
 * shard split in set proportions (T5's mixing).
 *
 * The tasks are the shards' task ids. Each task has its own packed stream
 * (train/loader.h over the task's documents, its own order each epoch);
 * every row of T+1 tokens comes from one task, drawn with probability
 * w_i: proportional to the task's examples (min(n_i, cap), T5's
 * examples-proportional mixing with a limit), to that raised to 1/T
 * (temperature mixing), or explicit weights. The draw for row k is a hash
 * of the seed and k, so the sequence of tasks depends on nothing else and a
 * resume needs only the row count and each task's position
 * (qn_mix_state / qn_mix_restore).
 *
 * The mixer owns its loaders; qn_mix_free releases them.
 */
#ifndef QN_TRAIN_MIX_H
#define QN_TRAIN_MIX_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

enum { QN_MIX_PROPORTIONAL, QN_MIX_TEMPERATURE, QN_MIX_EXPLICIT };

struct qn_mix_opts {
	int strategy;
	double temperature;    /* QN_MIX_TEMPERATURE: > 0 */
	double cap;	       /* examples a task counts at most; 0: no cap */
	const double *weights; /* QN_MIX_EXPLICIT: one a task id, >= 0 */
};

/* w[0..n) from the tasks' example counts; -1 with e filled when all are 0. */
int qn_mix_weights(const uint64_t *counts, size_t n, const struct qn_mix_opts *o, double *w,
		   struct qn_err *e);

struct qn_mix;

struct qn_mix *qn_mix_new(const char *dir, int split, uint64_t seed, int shuffle,
			  const struct qn_mix_opts *o, struct qn_err *e);
void qn_mix_free(struct qn_mix *m);
size_t qn_mix_ntasks(const struct qn_mix *m);
const char *qn_mix_task_name(const struct qn_mix *m, size_t i);
double qn_mix_weight(const struct qn_mix *m, size_t i);
uint64_t qn_mix_task_docs(const struct qn_mix *m, size_t i);
/* Task i's stream (NULL when it has no weight or no tokens). */
struct qn_loader *qn_mix_loader(struct qn_mix *m, size_t i);
/* One row of n inputs and targets from a drawn task (its id in *task). */
int qn_mix_next(struct qn_mix *m, uint32_t *inputs, uint32_t *targets, uint8_t *mask, size_t n,
		int *task, struct qn_err *e);
/* The position as a string (malloc'd), and back. */
char *qn_mix_state(const struct qn_mix *m);
int qn_mix_restore(struct qn_mix *m, const char *state, struct qn_err *e);

#endif
