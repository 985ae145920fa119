/*
 * loader.c - packed, shuffled training windows from token shards
 * (see loader.h).
 */
#include "loader.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "shard.h"

struct qn_loader {
	struct qn_shard_dir *d;
	int split, shuffle;
	uint64_t seed, ndocs, ntokens;
	int64_t eot;
	uint64_t *perm, perm_epoch; /* this epoch's order (NULL: stored order) */
	uint64_t *subset;	    /* the split's documents visited (NULL: all) */
	struct qn_loader_pos pos;
	/* The document at pos, as a stream: separator, then its tokens. */
	uint32_t *tok;
	uint8_t *train;
	size_t len, cap;
	uint64_t cur_epoch, cur_doc; /* UINT64_MAX: nothing loaded */
};

static uint64_t mix(uint64_t x)
{
	return qn_mix64(x + 0x9e3779b97f4a7c15ull);
}

void qn_loader_order(uint64_t *perm, size_t n, uint64_t seed, uint64_t epoch)
{
	uint64_t state = mix(seed ^ mix(epoch + 1));
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n; i > 1; i--) {
		state = mix(state);
		uint64_t j = state % i, t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

static void make_order(struct qn_loader *l, uint64_t epoch)
{
	qn_loader_order(l->perm, l->ndocs, l->seed, epoch);
	l->perm_epoch = epoch;
}

struct qn_loader *qn_loader_new(const char *dir, int split, uint64_t seed, int shuffle,
				struct qn_err *e)
{
	struct qn_loader *l = calloc(1, sizeof *l);
	if (!l) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	l->d = qn_shard_dir_open(dir, e);
	if (!l->d) {
		free(l);
		return NULL;
	}
	l->split = split;
	l->seed = seed;
	l->shuffle = shuffle;
	l->ndocs = qn_shard_dir_docs(l->d, split);
	l->ntokens = qn_shard_dir_tokens(l->d, split);
	l->eot = qn_shard_dir_info(l->d)->eot;
	l->cur_doc = UINT64_MAX;
	if (l->ntokens + (l->eot >= 0 ? l->ndocs : 0) < 2) {
		qn_errf(e, "'%s': the %s split has too few tokens to train on", dir,
			qn_shard_split_name(split));
		qn_loader_free(l);
		return NULL;
	}
	if (shuffle && l->ndocs > 1) {
		l->perm = malloc(l->ndocs * sizeof *l->perm);
		if (!l->perm) {
			qn_errf(e, "out of memory for the order of %llu documents",
				(unsigned long long)l->ndocs);
			qn_loader_free(l);
			return NULL;
		}
		make_order(l, 0);
	}
	return l;
}

void qn_loader_free(struct qn_loader *l)
{
	if (!l)
		return;
	qn_shard_dir_close(l->d);
	free(l->perm);
	free(l->subset);
	free(l->tok);
	free(l->train);
	free(l);
}

static int load_doc(struct qn_loader *l, struct qn_err *e)
{
	if (l->cur_epoch == l->pos.epoch && l->cur_doc == l->pos.doc)
		return 0;
	if (l->perm && l->perm_epoch != l->pos.epoch)
		make_order(l, l->pos.epoch);
	uint64_t k = l->perm ? l->perm[l->pos.doc] : l->pos.doc;
	if (l->subset)
		k = l->subset[k];
	struct qn_shard_docview v;
	if (qn_shard_dir_read(l->d, l->split, k, &v, e))
		return -1;
	if (v.role != QN_SHARD_SINGLE)
		return qn_errf(
		    e,
		    "'%s': %s document %llu is half of a preference pair: train on pairs "
		    "with --dpo",
		    qn_shard_dir_path(l->d, l->split, 0), qn_shard_split_name(l->split),
		    (unsigned long long)k);
	size_t sep = l->eot >= 0, need = v.n + sep;
	if (need > l->cap) {
		size_t cap = need + need / 2 + 16;
		uint32_t *t = realloc(l->tok, cap * sizeof *t);
		if (t)
			l->tok = t;
		uint8_t *m = realloc(l->train, cap);
		if (m)
			l->train = m;
		if (!t || !m)
			return qn_errf(e, "out of memory for a document of %u tokens", v.n);
		l->cap = cap;
	}
	if (sep) {
		l->tok[0] = (uint32_t)l->eot;
		l->train[0] = !v.masked;
	}
	memcpy(l->tok + sep, v.tokens, v.n * sizeof *v.tokens);
	memset(l->train + sep, !v.masked, v.n);
	for (uint32_t i = 0; v.masked && i < v.nspans; i++)
		memset(l->train + sep + v.spans[i].start, 1, v.spans[i].end - v.spans[i].start);
	l->len = need;
	l->cur_epoch = l->pos.epoch;
	l->cur_doc = l->pos.doc;
	return 0;
}

/* Copies n stream tokens from pos into tok/train and moves pos past them. */
static int take(struct qn_loader *l, uint32_t *tok, uint8_t *train, size_t n, struct qn_err *e)
{
	while (n > 0) {
		if (load_doc(l, e))
			return -1;
		size_t k = l->len > l->pos.off ? l->len - l->pos.off : 0;
		if (k > n)
			k = n;
		memcpy(tok, l->tok + l->pos.off, k * sizeof *tok);
		memcpy(train, l->train + l->pos.off, k);
		tok += k;
		train += k;
		n -= k;
		l->pos.off += k;
		if (l->pos.off >= l->len) {
			l->pos.off = 0;
			if (++l->pos.doc == l->ndocs) {
				l->pos.doc = 0;
				l->pos.epoch++;
			}
		}
	}
	return 0;
}

int qn_loader_next(struct qn_loader *l, uint32_t *inputs, uint32_t *targets, uint8_t *mask,
		   size_t n, struct qn_err *e)
{
	uint32_t last;
	uint8_t last_train;
	if (n == 0)
		return qn_errf(e, "an empty window");
	/* inputs[i] = stream[i], targets[i] = stream[i + 1], mask from the target. */
	if (take(l, inputs, mask, n, e))
		return -1;
	struct qn_loader_pos after = l->pos;
	if (take(l, &last, &last_train, 1, e))
		return -1;
	l->pos = after;
	memmove(targets, inputs + 1, (n - 1) * sizeof *targets);
	memmove(mask, mask + 1, n - 1);
	targets[n - 1] = last;
	mask[n - 1] = last_train;
	return 0;
}

void qn_loader_tell(const struct qn_loader *l, struct qn_loader_pos *p)
{
	*p = l->pos;
}

int qn_loader_seek(struct qn_loader *l, const struct qn_loader_pos *p, struct qn_err *e)
{
	struct qn_loader_pos old = l->pos;
	if (p->doc >= l->ndocs)
		return qn_errf(e, "data position: document %llu of %llu",
			       (unsigned long long)p->doc, (unsigned long long)l->ndocs);
	l->pos = *p;
	l->pos.off = 0;
	if (load_doc(l, e)) {
		l->pos = old;
		return -1;
	}
	if (p->off > l->len) {
		l->pos = old;
		return qn_errf(e, "data position: offset %llu past the document",
			       (unsigned long long)p->off);
	}
	l->pos.off = p->off;
	return 0;
}

uint64_t qn_loader_docs(const struct qn_loader *l)
{
	return l->ndocs;
}

uint64_t qn_loader_tokens(const struct qn_loader *l)
{
	return l->ntokens;
}

const struct qn_shard_dir_info *qn_loader_info(const struct qn_loader *l)
{
	return qn_shard_dir_info(l->d);
}

struct qn_loader *qn_loader_new_subset(const char *dir, int split, uint64_t seed, int shuffle,
				       const uint64_t *docs, size_t ndocs, struct qn_err *e)
{
	if (!ndocs) {
		qn_errf(e, "'%s': an empty set of documents", dir);
		return NULL;
	}
	struct qn_loader *l = qn_loader_new(dir, split, seed, shuffle, e);
	if (!l)
		return NULL;
	for (size_t i = 0; i < ndocs; i++)
		if (docs[i] >= l->ndocs) {
			qn_errf(e, "'%s': no %s document %llu", dir, qn_shard_split_name(split),
				(unsigned long long)docs[i]);
			qn_loader_free(l);
			return NULL;
		}
	l->subset = malloc(ndocs * sizeof *l->subset);
	if (!l->subset) {
		qn_errf(e, "out of memory");
		qn_loader_free(l);
		return NULL;
	}
	memcpy(l->subset, docs, ndocs * sizeof *docs);
	l->ndocs = ndocs;
	free(l->perm);
	l->perm = NULL;
	if (shuffle && ndocs > 1) {
		l->perm = malloc(ndocs * sizeof *l->perm);
		if (!l->perm) {
			qn_errf(e, "out of memory");
			qn_loader_free(l);
			return NULL;
		}
		make_order(l, 0);
	}
	l->cur_doc = UINT64_MAX;
	l->pos.epoch = l->pos.doc = l->pos.off = 0;
	return l;
}
