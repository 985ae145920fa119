/*
 * mix.c - multi-task mixing over per-task packed streams (see mix.h).
 */
#include "mix.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "loader.h"
#include "shard.h"

struct qn_mix {
	size_t ntasks;
	char **names;
	uint64_t *docs;	      /* examples a task */
	double *w, *cum;      /* weights (sum 1) and their running sums */
	struct qn_loader **l; /* NULL for a task with no weight or no tokens */
	uint64_t seed, row;   /* the next row's number */
};

int qn_mix_weights(const uint64_t *counts, size_t n, const struct qn_mix_opts *o, double *w,
		   struct qn_err *e)
{
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		double c = (double)counts[i];
		if (o->cap > 0 && c > o->cap)
			c = o->cap;
		if (o->strategy == QN_MIX_EXPLICIT)
			w[i] = counts[i] ? o->weights[i] : 0;
		else if (o->strategy == QN_MIX_TEMPERATURE)
			w[i] = c > 0 ? pow(c, 1.0 / o->temperature) : 0;
		else
			w[i] = c;
		sum += w[i];
	}
	if (!(sum > 0))
		return qn_errf(e, "no task has both examples and a weight");
	for (size_t i = 0; i < n; i++)
		w[i] /= sum;
	return 0;
}

void qn_mix_free(struct qn_mix *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ntasks; i++) {
		qn_loader_free(m->l ? m->l[i] : NULL);
		free(m->names ? m->names[i] : NULL);
	}
	free(m->names);
	free(m->docs);
	free(m->w);
	free(m->cum);
	free(m->l);
	free(m);
}

struct qn_mix *qn_mix_new(const char *dir, int split, uint64_t seed, int shuffle,
			  const struct qn_mix_opts *o, struct qn_err *e)
{
	struct qn_shard_dir *d = qn_shard_dir_open(dir, e);
	struct qn_mix *m = calloc(1, sizeof *m);
	uint64_t **lists = NULL, *tokens = NULL, *caps = NULL;
	if (!d)
		goto fail;
	if (!m)
		goto fail_mem;
	const struct qn_shard_dir_info *in = qn_shard_dir_info(d);
	size_t T = in->ntasks ? in->ntasks : 1;
	m->ntasks = T;
	m->seed = seed;
	m->names = calloc(T, sizeof *m->names);
	m->docs = calloc(T, sizeof *m->docs);
	m->w = calloc(T, sizeof *m->w);
	m->cum = calloc(T, sizeof *m->cum);
	m->l = calloc(T, sizeof *m->l);
	lists = calloc(T, sizeof *lists);
	tokens = calloc(T, sizeof *tokens);
	caps = calloc(T, sizeof *caps);
	if (!m->names || !m->docs || !m->w || !m->cum || !m->l || !lists || !tokens || !caps)
		goto fail_mem;
	for (size_t i = 0; i < T; i++)
		if (!(m->names[i] = strdup(in->ntasks ? in->tasks[i] : "default")))
			goto fail_mem;
	/* One pass over the split's index: each document's task. */
	uint64_t n = qn_shard_dir_docs(d, split);
	for (uint64_t k = 0; k < n; k++) {
		struct qn_shard_docview v;
		if (qn_shard_dir_read(d, split, k, &v, e))
			goto fail;
		size_t t = v.task < T ? v.task : 0;
		if (m->docs[t] == caps[t]) {
			size_t cap = caps[t] ? 2 * caps[t] : 16;
			uint64_t *nl = realloc(lists[t], cap * sizeof *nl);
			if (!nl)
				goto fail_mem;
			lists[t] = nl;
			caps[t] = cap;
		}
		lists[t][m->docs[t]++] = k;
		tokens[t] += v.n + (in->eot >= 0);
	}
	uint64_t *usable = calloc(T, sizeof *usable);
	if (!usable)
		goto fail_mem;
	for (size_t t = 0; t < T; t++)
		usable[t] = tokens[t] >= 2 ? m->docs[t] : 0;
	int bad = qn_mix_weights(usable, T, o, m->w, e);
	free(usable);
	if (bad) {
		qn_err_prefix(e, "'%s': %s split", dir, qn_shard_split_name(split));
		goto fail;
	}
	double c = 0;
	for (size_t t = 0; t < T; t++) {
		c += m->w[t];
		m->cum[t] = c;
		if (m->w[t] > 0 && !(m->l[t] = qn_loader_new_subset(
					 dir, split, seed ^ (0x9e3779b97f4a7c15ull * (t + 1)),
					 shuffle, lists[t], m->docs[t], e)))
			goto fail;
	}
	for (size_t t = 0; t < T; t++)
		free(lists[t]);
	free(lists);
	free(tokens);
	free(caps);
	qn_shard_dir_close(d);
	return m;
fail_mem:
	qn_errf(e, "out of memory");
fail:
	for (size_t t = 0; lists && t < (m ? m->ntasks : 0); t++)
		free(lists[t]);
	free(lists);
	free(tokens);
	free(caps);
	qn_shard_dir_close(d);
	qn_mix_free(m);
	return NULL;
}

size_t qn_mix_ntasks(const struct qn_mix *m)
{
	return m->ntasks;
}

const char *qn_mix_task_name(const struct qn_mix *m, size_t i)
{
	return i < m->ntasks ? m->names[i] : NULL;
}

double qn_mix_weight(const struct qn_mix *m, size_t i)
{
	return i < m->ntasks ? m->w[i] : 0;
}

uint64_t qn_mix_task_docs(const struct qn_mix *m, size_t i)
{
	return i < m->ntasks ? m->docs[i] : 0;
}

struct qn_loader *qn_mix_loader(struct qn_mix *m, size_t i)
{
	return i < m->ntasks ? m->l[i] : NULL;
}

/* A uniform draw in [0, 1) for row k: a hash of the seed and k. */
static double draw(uint64_t seed, uint64_t k)
{
	uint64_t z = qn_mix64(seed ^ (k * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
	return (double)(z >> 11) * 0x1.0p-53;
}

int qn_mix_next(struct qn_mix *m, uint32_t *inputs, uint32_t *targets, uint8_t *mask, size_t n,
		int *task, struct qn_err *e)
{
	double u = draw(m->seed, m->row++);
	size_t t = 0;
	while (t + 1 < m->ntasks && (u >= m->cum[t] || !m->l[t]))
		t++;
	while (!m->l[t]) /* the rounding of the last sums: the last task with a stream */
		t--;
	if (task)
		*task = (int)t;
	return qn_loader_next(m->l[t], inputs, targets, mask, n, e);
}

char *qn_mix_state(const struct qn_mix *m)
{
	size_t cap = 32 + m->ntasks * 72, len = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	len += (size_t)snprintf(s, cap, "%" PRIu64, m->row);
	for (size_t t = 0; t < m->ntasks; t++) {
		struct qn_loader_pos p = {0, 0, 0};
		if (m->l[t])
			qn_loader_tell(m->l[t], &p);
		len += (size_t)snprintf(s + len, cap - len, ";%" PRIu64 ",%" PRIu64 ",%" PRIu64,
					p.epoch, p.doc, p.off);
	}
	return s;
}

int qn_mix_restore(struct qn_mix *m, const char *state, struct qn_err *e)
{
	const char *p = state;
	char *end;
	uint64_t row = strtoull(p, &end, 10);
	if (end == p)
		return qn_errf(e, "mix state '%.40s': no row count", state);
	p = end;
	for (size_t t = 0; t < m->ntasks; t++) {
		struct qn_loader_pos q;
		if (sscanf(p, ";%" SCNu64 ",%" SCNu64 ",%" SCNu64, &q.epoch, &q.doc, &q.off) != 3)
			return qn_errf(e, "mix state: task %zu is missing", t);
		p = strchr(p + 1, ';');
		if (m->l[t] && qn_loader_seek(m->l[t], &q, e))
			return -1;
		if (!p && t + 1 < m->ntasks)
			return qn_errf(e, "mix state: task %zu is missing", t + 1);
	}
	m->row = row;
	return 0;
}
