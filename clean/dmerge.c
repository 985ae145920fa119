/*
 * dmerge.c - quern-clean dedup-merge and apply-removals: the cross-shard
 * half of sharded deduplication (see dsig.h and docs/sharding.md).
 *
 * dedup-merge reads the signature files of all N shards, checks that they
 * were made with the same parameters and that each shard is there once,
 * and replays what a single-process run does in input order: the exact
 * hash table (the first document with a hash starts its group), the LSH
 * index and the union-find over near-duplicate candidates, then the keep
 * rule. It writes one removal list per shard (JSON Lines: the removed
 * documents with the step, reason and duplicate_of, and the kept members
 * of clusters with cluster_id and cluster_size) and a stats file.
 * apply-removals filters one shard's output with its list, annotating
 * exactly as the single-process run does.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "cli.h"
#include "doc.h"
#include "docjson.h"
#include "dsig.h"
#include "err.h"
#include "hash.h"
#include "minhash.h"
#include "rd.h"
#include "shardsel.h"
#include "utf8.h"
#include "wr.h"

/* ---- reading signature files ----------------------------------------------- */

struct sigdoc {
	uint32_t shard;
	size_t seq; /* read order: position within its shard */
	uint8_t flags;
	size_t id_off;
	struct qn_hash128 h;
	double prio_exact, prio_near;
	size_t keys_off; /* in keys[], bands of them */
};

/* A record's accounting tail (dsig.h), read into scratch space. */
struct sigtail {
	struct cn_dsig_tail t;
	uint64_t *len; /* nlen */
	char reason[256], lang[256];
	struct cn_dsig_cnt *cnt; /* ncnt */
	size_t lcap, ccap;
};

/* The chain of steps the shards ran (the signature header's JSON). */
struct chain {
	size_t n;	   /* steps */
	const char **name; /* per step */
	json_t **counters; /* per step: the array of counter names */
	size_t from;	   /* the first dedup step */
	int exact_at, near_at;
	json_t *json;
};

struct merge {
	struct cn_dsig_head head;
	char *params, *chain_text;
	struct chain chain;
	const char *first_path;
	const char **path; /* per shard */
	struct sigdoc *d;
	size_t n, cap;
	struct qn_buf ids;
	uint64_t *keys;
	size_t nkeys, kcap;
	uint64_t *per_shard; /* documents per shard */
};

static int read_exact(struct qn_rd *rd, void *p, size_t n, struct qn_err *e)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = qn_rd_read(rd, (char *)p + got, n - got, e);
		if (k < 0)
			return -1;
		if (k == 0)
			return qn_errf(e, "'%s': truncated signature file", qn_rd_name(rd));
		got += (size_t)k;
	}
	return 0;
}

static int add_doc(struct merge *m, const struct sigdoc *x)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4096;
		struct sigdoc *v = realloc(m->d, cap * sizeof *v);
		if (!v)
			return -1;
		m->d = v;
		m->cap = cap;
	}
	m->d[m->n] = *x;
	m->d[m->n].seq = m->n;
	m->n++;
	return 0;
}

static void chain_release(struct chain *c)
{
	free(c->name);
	free(c->counters);
	json_decref(c->json);
	memset(c, 0, sizeof *c);
}

static int chain_parse(struct chain *c, const char *text, const char *path, struct qn_err *e)
{
	json_error_t je;
	size_t i;
	json_t *st;

	c->exact_at = c->near_at = -1;
	c->json = json_loads(text, 0, &je);
	c->n = json_array_size(c->json);
	if (!json_is_array(c->json) || c->n == 0 || c->n > 0xfffe)
		return qn_errf(e, "'%s': bad step chain in the signature header", path);
	c->name = calloc(c->n, sizeof *c->name);
	c->counters = calloc(c->n, sizeof *c->counters);
	if (!c->name || !c->counters)
		return qn_errf(e, "out of memory");
	json_array_foreach(c->json, i, st)
	{
		c->name[i] = json_string_value(json_object_get(st, "step"));
		c->counters[i] = json_object_get(st, "counters");
		size_t k;
		json_t *cn;
		if (!c->name[i] || !json_is_array(c->counters[i]))
			return qn_errf(e, "'%s': bad step chain in the signature header", path);
		json_array_foreach(c->counters[i], k, cn)
		{
			if (!json_is_string(cn))
				return qn_errf(e, "'%s': bad step chain in the signature header",
					       path);
		}
		if (!strcmp(c->name[i], "exact_dedup") && c->exact_at < 0)
			c->exact_at = (int)i;
		if (!strcmp(c->name[i], "near_dedup") && c->near_at < 0)
			c->near_at = (int)i;
	}
	if (c->exact_at < 0 && c->near_at < 0)
		return qn_errf(e, "'%s': the step chain has no dedup step", path);
	c->from = (size_t)(c->exact_at >= 0 ? c->exact_at : c->near_at);
	return 0;
}

/* The header, the parameters and the chain (both NUL-terminated, owned by
 * the caller). */
static int read_head(struct qn_rd *rd, const char *path, struct cn_dsig_head *h, char **params,
		     char **chain, struct qn_err *e)
{
	*params = *chain = NULL;
	if (read_exact(rd, h, sizeof *h, e) < 0)
		return -1;
	if (memcmp(h->magic, CN_DSIG_MAGIC, 8))
		return qn_errf(e, "'%s' is not a quern-clean signature file", path);
	if (h->version != CN_DSIG_VERSION)
		return qn_errf(e,
			       "'%s': signature version %u, this quern-clean reads %u (make the "
			       "signatures again with this version)",
			       path, h->version, CN_DSIG_VERSION);
	if (h->plen > 65536 || h->clen > (1u << 20) || h->bands > QN_MINHASH_MAX_HASHES ||
	    h->count == 0 || h->count > QN_SHARD_MAX || h->shard >= h->count)
		return qn_errf(e, "'%s': bad signature header", path);
	if (!(*params = calloc(1, h->plen + 1)) || !(*chain = calloc(1, h->clen + 1)))
		return qn_errf(e, "out of memory");
	if (read_exact(rd, *params, h->plen, e) < 0 || read_exact(rd, *chain, h->clen, e) < 0)
		return -1;
	return 0;
}

static int grow_to(void **p, size_t *cap, size_t n, size_t size)
{
	if (n <= *cap)
		return 0;
	void *q = realloc(*p, n * size);
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

/*
 * One record: 1, or 0 at the end record (*count is its count), -1 on error.
 * The id goes to ids (NUL-terminated, x->id_off), the band keys to keys
 * (bands of them), the accounting to t.
 */
static int read_rec(struct qn_rd *rd, const struct cn_dsig_head *h, const struct chain *c,
		    struct sigdoc *x, struct qn_buf *ids, uint64_t *keys, struct sigtail *t,
		    uint64_t *count, struct qn_err *e)
{
	unsigned char f[4];
	uint16_t idlen;

	if (read_exact(rd, f, 4, e) < 0)
		return -1;
	if (f[0] == CN_DSIG_END)
		return read_exact(rd, f, 4, e) < 0 || read_exact(rd, count, 8, e) < 0 ? -1 : 0;
	memcpy(&idlen, f + 2, 2);
	x->flags = f[0];
	x->id_off = ids->len;
	if (qn_buf_grow(ids, (size_t)idlen + 1) < 0)
		return qn_errf(e, "out of memory");
	if (read_exact(rd, ids->data + ids->len, idlen, e) < 0)
		return -1;
	ids->len += idlen;
	qn_buf_addc(ids, 0);
	if ((x->flags & CN_DSIG_EXACT) && read_exact(rd, &x->h, sizeof x->h, e) < 0)
		return -1;
	if (read_exact(rd, &x->prio_exact, 8, e) < 0 || read_exact(rd, &x->prio_near, 8, e) < 0)
		return -1;
	if ((x->flags & CN_DSIG_SIG) && read_exact(rd, keys, h->bands * sizeof *keys, e) < 0)
		return -1;
	if (read_exact(rd, &t->t, sizeof t->t, e) < 0)
		return -1;
	/* A record may only claim the dedup steps its chain has. */
	if (t->t.nlen != c->n + 1 - c->from ||
	    (t->t.stop != CN_DSIG_NO_STEP && (t->t.stop >= c->n || t->t.stop <= c->from)) ||
	    ((x->flags & CN_DSIG_EXACT) && c->exact_at < 0) ||
	    ((x->flags & (CN_DSIG_NEAR | CN_DSIG_SIG | CN_DSIG_TOO_SHORT)) && c->near_at < 0))
		return qn_errf(e, "'%s': bad signature record", qn_rd_name(rd));
	if (grow_to((void **)&t->len, &t->lcap, t->t.nlen, sizeof *t->len) < 0 ||
	    grow_to((void **)&t->cnt, &t->ccap, t->t.ncnt ? t->t.ncnt : 1, sizeof *t->cnt) < 0)
		return qn_errf(e, "out of memory");
	if (read_exact(rd, t->len, t->t.nlen * sizeof *t->len, e) < 0 ||
	    read_exact(rd, t->reason, t->t.nreason, e) < 0 ||
	    read_exact(rd, t->lang, t->t.nlang, e) < 0 ||
	    read_exact(rd, t->cnt, t->t.ncnt * sizeof *t->cnt, e) < 0)
		return -1;
	t->reason[t->t.nreason] = 0;
	t->lang[t->t.nlang] = 0;
	/* They become JSON keys, which must be UTF-8. */
	if (!qn_utf8_valid(t->reason, t->t.nreason) || !qn_utf8_valid(t->lang, t->t.nlang))
		return qn_errf(e, "'%s': bad signature record", qn_rd_name(rd));
	for (size_t i = 0; i < t->t.ncnt; i++)
		if (t->cnt[i].step >= c->n ||
		    t->cnt[i].index >= json_array_size(c->counters[t->cnt[i].step]))
			return qn_errf(e, "'%s': bad signature record", qn_rd_name(rd));
	return 1;
}

static int read_sig(struct merge *m, const char *path, unsigned char *seen, struct sigtail *t,
		    struct qn_err *e)
{
	struct cn_dsig_head h;
	struct stat sb;
	char *params = NULL, *chain = NULL;
	uint64_t count = 0, end = 0;
	int rc = -1, rr;

	/* Read twice (the stats corrections come from a second pass): no pipes. */
	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return qn_errf(e, "'%s' is not a regular file (dedup-merge reads each signature "
				  "file twice)", path);
	struct qn_rd *rd = qn_rd_open(path, 0, e);
	if (!rd)
		return -1;
	if (read_head(rd, path, &h, &params, &chain, e) < 0)
		goto out;
	if (!m->params) {
		m->head = h;
		m->params = params;
		m->chain_text = chain;
		params = chain = NULL;
		m->first_path = path;
		m->per_shard = calloc(h.count, sizeof *m->per_shard);
		m->path = calloc(h.count, sizeof *m->path);
		if (!m->per_shard || !m->path) {
			qn_errf(e, "out of memory");
			goto out;
		}
		if (chain_parse(&m->chain, m->chain_text, path, e) < 0)
			goto out;
		if (!(h.flags & CN_DSIGH_EXACT) != (m->chain.exact_at < 0) ||
		    !(h.flags & CN_DSIGH_NEAR) != (m->chain.near_at < 0)) {
			qn_errf(e, "'%s': the header's dedup steps are not its step chain's", path);
			goto out;
		}
	} else if (h.count != m->head.count) {
		qn_errf(e, "'%s' is shard %u/%u but '%s' is of %u shards", path, h.shard, h.count,
			m->first_path, m->head.count);
		goto out;
	} else if (strcmp(params, m->params) || h.flags != m->head.flags ||
		   h.bands != m->head.bands || h.rows != m->head.rows || h.ngram != m->head.ngram ||
		   h.mhflags != m->head.mhflags || h.seed != m->head.seed) {
		qn_errf(e, "'%s' and '%s' were made with different dedup parameters ('%s' vs '%s')",
			path, m->first_path, params, m->params);
		goto out;
	} else if (strcmp(chain, m->chain_text)) {
		qn_errf(e, "'%s' and '%s' were made with different steps ('%s' vs '%s')", path,
			m->first_path, chain, m->chain_text);
		goto out;
	}
	if (seen[h.shard]) {
		qn_errf(e, "'%s': shard %u/%u given twice", path, h.shard, h.count);
		goto out;
	}
	seen[h.shard] = 1;
	m->path[h.shard] = path;
	for (;;) {
		struct sigdoc x = {.shard = h.shard};
		if (m->nkeys + h.bands > m->kcap) {
			size_t cap = m->kcap ? m->kcap * 2 : 65536;
			while (cap < m->nkeys + h.bands)
				cap *= 2;
			uint64_t *k = realloc(m->keys, cap * sizeof *k);
			if (!k) {
				qn_errf(e, "out of memory");
				goto out;
			}
			m->keys = k;
			m->kcap = cap;
		}
		rr = read_rec(rd, &h, &m->chain, &x, &m->ids, m->keys ? m->keys + m->nkeys : NULL, t,
			      &end, e);
		if (rr < 0)
			goto out;
		if (rr == 0)
			break;
		if (x.flags & CN_DSIG_SIG) {
			x.keys_off = m->nkeys;
			m->nkeys += h.bands;
		}
		if (add_doc(m, &x) < 0) {
			qn_errf(e, "out of memory");
			goto out;
		}
		count++;
	}
	if (end != count) {
		qn_errf(e, "'%s': %llu records, the end says %llu", path, (unsigned long long)count,
			(unsigned long long)end);
		goto out;
	}
	m->per_shard[h.shard] = count;
	rc = 0;
out:
	free(params);
	free(chain);
	qn_rd_close(rd);
	return rc;
}

static int by_shard(const void *a, const void *b)
{
	const struct sigdoc *x = a, *y = b;
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- the replay ---------------------------------------------------------------- */

struct xtab {
	struct qn_hash128 *h;
	uint32_t *v; /* UINT32_MAX: empty */
	size_t cap;
};

/* The first document with hash h, or d stored as that. */
static uint32_t xtab_first(struct xtab *x, struct qn_hash128 h, uint32_t d)
{
	size_t m = x->cap - 1, s = (size_t)h.lo & m;
	while (x->v[s] != UINT32_MAX && (x->h[s].hi != h.hi || x->h[s].lo != h.lo))
		s = (s + 1) & m;
	if (x->v[s] == UINT32_MAX) {
		x->h[s] = h;
		x->v[s] = d;
	}
	return x->v[s];
}

static int better(double a, double b)
{
	if (isnan(a))
		return 0;
	return isnan(b) || a > b;
}

static const char *id_of(const struct merge *m, size_t d)
{
	return m->ids.data + m->d[d].id_off;
}

struct replay {
	uint32_t *egroup; /* the first document with the same exact hash */
	uint32_t *erep;	  /* per group first: the document kept */
	uint8_t *joined;  /* took part in near_dedup's LSH (F_NEAR) */
	uint32_t *keep;	  /* per node: the node kept for its cluster */
	struct qn_uf *uf;
	struct qn_lsh *lsh;
	uint64_t exact_removed, near_removed, clusters, cluster_docs;
	uint64_t distinct_hashes, too_short;
};

/* What a single-process run's add_doc and resolve do, over all shards. */
static int replay(struct merge *m, struct replay *r, struct qn_err *e)
{
	size_t n = m->n, k = n ? n : 1;
	struct xtab xt = {0};
	const struct cn_dsig_head *h = &m->head;
	struct qn_minhash_params mp = {h->bands, h->rows, h->ngram, h->mhflags, h->seed};
	int rc = -1;

	xt.cap = 1024;
	while (xt.cap < 2 * k)
		xt.cap *= 2;
	xt.h = malloc(xt.cap * sizeof *xt.h);
	xt.v = malloc(xt.cap * sizeof *xt.v);
	r->egroup = malloc(k * sizeof *r->egroup);
	r->erep = malloc(k * sizeof *r->erep);
	r->joined = calloc(k, 1);
	r->keep = malloc(k * sizeof *r->keep);
	if (!xt.h || !xt.v || !r->egroup || !r->erep || !r->joined || !r->keep)
		goto oom;
	memset(xt.v, 0xff, xt.cap * sizeof *xt.v);
	for (size_t d = 0; d < n; d++) {
		r->egroup[d] = r->erep[d] = (uint32_t)d;
		if (m->d[d].flags & CN_DSIG_EXACT) {
			r->egroup[d] = xtab_first(&xt, m->d[d].h, (uint32_t)d);
			r->distinct_hashes += r->egroup[d] == d;
		}
		/* As a single run counts it: not for later copies of an exact hash. */
		r->too_short += (m->d[d].flags & CN_DSIG_TOO_SHORT) && r->egroup[d] == d;
	}
	if (h->flags & CN_DSIGH_EXACT_PRIO)
		for (size_t d = 0; d < n; d++) {
			uint32_t g = r->egroup[d];
			if ((m->d[d].flags & CN_DSIG_EXACT) && g != d &&
			    better(m->d[d].prio_exact, m->d[r->erep[g]].prio_exact))
				r->erep[g] = (uint32_t)d;
		}
	if (h->flags & CN_DSIGH_NEAR) {
		/* Grown as a single run grows it (merge-stats then counts the
		 * documents without a record too, as a single run's index does). */
		r->lsh = qn_lsh_new(&mp, 0, e);
		r->uf = qn_uf_new(n);
		if (!r->lsh || !r->uf)
			goto fail;
		for (size_t d = 0; d < n; d++) {
			uint32_t node;
			int joins = (m->d[d].flags & CN_DSIG_SIG) && r->egroup[d] == d;
			if (qn_lsh_add_keys(r->lsh, joins ? m->keys + m->d[d].keys_off : NULL,
					    &node, e) < 0)
				goto fail;
			if (!joins)
				continue;
			r->joined[d] = 1;
			for (unsigned b = 0; b < h->bands; b++) {
				uint32_t p = qn_lsh_prev(r->lsh, node, b);
				if (p != QN_LSH_NONE)
					qn_uf_union(r->uf, node, p);
			}
		}
		double *prio = NULL;
		if (h->flags & CN_DSIGH_NEAR_PRIO) {
			if (!(prio = malloc(k * sizeof *prio)))
				goto oom;
			for (size_t d = 0; d < n; d++)
				prio[d] = m->d[r->erep[d]].prio_near;
		}
		qn_uf_keep(r->uf, prio, r->keep);
		free(prio);
	}
	rc = 0;
	goto out;
oom:
	qn_errf(e, "out of memory");
fail:
	rc = -1;
out:
	free(xt.h);
	free(xt.v);
	return rc;
}

static void replay_release(struct replay *r)
{
	free(r->egroup);
	free(r->erep);
	free(r->joined);
	free(r->keep);
	qn_uf_free(r->uf);
	qn_lsh_free(r->lsh);
}

enum { KEPT, BY_EXACT, BY_NEAR };

/* What the single-process run does with document d: KEPT (*csize: its
 * cluster's size when it stands for the cluster's kept member, else 0), or removed
 * BY_EXACT or BY_NEAR as a duplicate of *dup_of. */
static int removal_of(const struct merge *m, const struct replay *r, size_t d, const char **dup_of,
		      size_t *csize)
{
	const struct sigdoc *x = &m->d[d];

	*csize = 0;
	if (x->flags & CN_DSIG_EXACT) {
		uint32_t g = r->egroup[d];
		if (r->erep[g] != d) {
			*dup_of = id_of(m, r->erep[g]);
			return BY_EXACT;
		}
	}
	if ((x->flags & CN_DSIG_NEAR) && r->uf) {
		uint32_t unit = r->egroup[d];
		if (r->joined[unit]) {
			uint32_t k = r->keep[unit];
			if (k != unit) {
				*dup_of = id_of(m, r->erep[k]);
				return BY_NEAR;
			}
			*csize = qn_uf_size(r->uf, unit);
		}
	}
	return KEPT;
}

/* One document's line of its shard's removal list (none when it stays as is). */
static void decide(struct merge *m, struct replay *r, size_t d, struct qn_buf *b)
{
	const char *id = id_of(m, d), *dup_of = NULL;
	size_t csize;
	int how = removal_of(m, r, d, &dup_of, &csize);

	/* A cluster counts once, at its node, whether or not an exact
	 * duplicate of the node's document is the one kept (as a single run). */
	if (r->uf && r->joined[d] && r->keep[d] == d && qn_uf_size(r->uf, d) > 1) {
		r->clusters++;
		r->cluster_docs += qn_uf_size(r->uf, d);
	}
	if (how == BY_EXACT)
		r->exact_removed++;
	else if (how == BY_NEAR)
		r->near_removed++;
	else if (csize < 2)
		return;
	qn_buf_adds(b, "{\"id\":");
	qn_json_str(b, id, strlen(id));
	if (how != KEPT) {
		qn_buf_printf(b, ",\"step\":\"%s\",\"reason\":\"%s\",\"duplicate_of\":",
			      how == BY_EXACT ? "exact_dedup" : "near_dedup",
			      how == BY_EXACT ? "duplicate" : "near_duplicate");
		qn_json_str(b, dup_of, strlen(dup_of));
	} else {
		qn_buf_adds(b, ",\"cluster_id\":");
		qn_json_str(b, id, strlen(id));
		qn_buf_printf(b, ",\"cluster_size\":%zu", csize);
	}
	qn_buf_adds(b, "}\n");
}

/* ---- the stats correction ------------------------------------------------------- */

static void jadd(json_t *o, const char *key, int64_t v)
{
	json_t *x = json_object_get(o, key);
	if (x) /* unsigned: a hostile signature's sizes wrap, they do not overflow */
		json_integer_set(x, (json_int_t)((uint64_t)json_integer_value(x) + (uint64_t)v));
	else
		json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* map[name] += {documents, bytes} */
static void jadd_entry(json_t *map, const char *name, int64_t docs, int64_t bytes)
{
	json_t *y = json_object_get(map, name);
	if (!y) {
		y = json_object();
		if (!y || json_object_set_new(map, name, y) < 0)
			return; /* out of memory: the merge-stats check finds the gap */
	}
	jadd(y, "documents", docs);
	jadd(y, "bytes", bytes);
}

/* A stats object (the --stats format) of zeros for the chain. */
static json_t *correction_new(const struct chain *c)
{
	json_t *o = json_object(), *sv = json_array();
	static const char *const top[] = {"documents_out", "bytes_out", "documents_rejected",
					  "bytes_rejected"};
	static const char *const per[] = {"documents_in", "bytes_in", "documents_out", "bytes_out"};

	for (size_t i = 0; i < 4; i++)
		jadd(o, top[i], 0);
	for (size_t s = 0; s < c->n; s++) {
		json_t *x = json_object();
		json_object_set_new(x, "step", json_string(c->name[s]));
		for (size_t i = 0; i < 4; i++)
			jadd(x, per[i], 0);
		json_object_set_new(x, "rejected", json_object());
		json_object_set_new(x, "counters", json_object());
		if (!strcmp(c->name[s], "lang"))
			json_object_set_new(x, "languages", json_object());
		json_array_append_new(sv, x);
	}
	json_object_set_new(o, "steps", sv);
	return o;
}

static int is_dedup(const struct chain *c, size_t s)
{
	return (int)s == c->exact_at || (int)s == c->near_at;
}

/*
 * Moves a document that the shard counted through the steps after step D
 * (and kept, or rejected later) to step D's rejects, as a single run counts
 * it: the shard's stats plus this correction are the single run's.
 */
static void correct(json_t *o, const struct chain *c, size_t D, const char *reason,
		    const struct sigtail *t)
{
	json_t *sv = json_object_get(o, "steps");
	size_t stop = t->t.stop == CN_DSIG_NO_STEP ? c->n : t->t.stop;
	size_t reached = stop == c->n ? c->n : stop + 1;
#define LEN(s) ((int64_t)t->len[(s)-c->from])

	for (size_t s = D; s < reached; s++) {
		json_t *x = json_array_get(sv, s);
		jadd(x, "documents_in", -1);
		jadd(x, "bytes_in", -LEN(s));
		if (s == stop) {
			jadd_entry(json_object_get(x, "rejected"), t->reason, -1, -LEN(s));
		} else {
			jadd(x, "documents_out", -1);
			jadd(x, "bytes_out", is_dedup(c, s) ? -LEN(s) : -LEN(s + 1));
		}
		if (!strcmp(c->name[s], "lang") && t->t.nlang)
			jadd_entry(json_object_get(x, "languages"), t->lang, -1, -LEN(s));
	}
	for (size_t i = 0; i < t->t.ncnt; i++) {
		const struct cn_dsig_cnt *k = &t->cnt[i];
		if (k->step > D && k->step < reached)
			jadd(json_object_get(json_array_get(sv, k->step), "counters"),
			     json_string_value(json_array_get(c->counters[k->step], k->index)),
			     -(int64_t)k->value);
	}
	if (stop == c->n) {
		jadd(o, "documents_out", -1);
		jadd(o, "bytes_out", -LEN(c->n));
	} else {
		jadd(o, "documents_rejected", -1);
		jadd(o, "bytes_rejected", -LEN(stop));
	}
	/* What the single run counts instead. */
	json_t *x = json_array_get(sv, D);
	jadd(x, "documents_in", 1);
	jadd(x, "bytes_in", LEN(D));
	jadd_entry(json_object_get(x, "rejected"), reason, 1, LEN(D));
	jadd(o, "documents_rejected", 1);
	jadd(o, "bytes_rejected", LEN(D));
#undef LEN
}

/*
 * Shard s's correction: reads its signature file again for the accounting
 * of the documents the merge removes. *from_output: how many of them the
 * shard kept (apply-removals removes those from its output).
 */
static json_t *shard_correction(struct merge *m, struct replay *r, uint32_t s, size_t first,
				uint64_t *from_output, struct qn_err *e)
{
	const char *path = m->path[s];
	struct qn_rd *rd = qn_rd_open(path, 0, e);
	struct cn_dsig_head h;
	char *params = NULL, *chain = NULL;
	struct sigtail t = {0};
	struct qn_buf ids;
	uint64_t keys[QN_MINHASH_MAX_HASHES], end;
	json_t *o = NULL;
	const struct chain *c = &m->chain;

	*from_output = 0;
	qn_buf_init(&ids, QN_BUF_UNLIMITED);
	if (!rd || read_head(rd, path, &h, &params, &chain, e) < 0)
		goto out;
	if (h.shard != s || strcmp(chain, m->chain_text)) {
		qn_errf(e, "'%s' changed during the merge", path);
		goto out;
	}
	o = correction_new(c);
	for (size_t k = 0;; k++) {
		struct sigdoc x;
		const char *dup_of;
		size_t csize;
		qn_buf_reset(&ids);
		int rr = read_rec(rd, &h, c, &x, &ids, keys, &t, &end, e);
		/* The same records as the first read, or the file changed under us. */
		int changed = rr == 1 ? k >= m->per_shard[s] ||
					    strcmp(ids.data + x.id_off, id_of(m, first + k))
				      : rr == 0 && k != m->per_shard[s];
		if (rr < 0 || changed) {
			if (changed)
				qn_errf(e, "'%s' changed during the merge", path);
			json_decref(o);
			o = NULL;
			goto out;
		}
		if (rr == 0)
			break;
		int how = removal_of(m, r, first + k, &dup_of, &csize);
		if (how == KEPT)
			continue;
		size_t D = (size_t)(how == BY_EXACT ? c->exact_at : c->near_at);
		correct(o, c, D, how == BY_EXACT ? "duplicate" : "near_duplicate", &t);
		*from_output += t.t.stop == CN_DSIG_NO_STEP;
	}
out:
	free(params);
	free(chain);
	free(t.len);
	free(t.cnt);
	qn_buf_release(&ids);
	qn_rd_close(rd);
	return o;
}

static int write_lists(struct merge *m, struct replay *r, const char *dir, struct qn_err *e)
{
	struct qn_buf b;
	size_t d = 0;
	int rc = 0;

	/* dedup-stats.json goes last: lists of a merge that failed halfway are
	 * never taken with an earlier merge's (apply-removals reads it first). */
	char stats_path[4096];
	snprintf(stats_path, sizeof stats_path, "%s/dedup-stats.json", dir);
	if (unlink(stats_path) < 0 && errno != ENOENT)
		return qn_errf(e, "cannot remove '%s': %s", stats_path, strerror(errno));
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (uint32_t s = 0; s < m->head.count && rc == 0; s++) {
		char path[4096];
		uint64_t from_output;
		json_t *corr = shard_correction(m, r, s, d, &from_output, e);
		if (!corr) {
			rc = -1;
			break;
		}
		/* The first line: which shard, and its stats correction. */
		json_t *head = json_object();
		json_object_set_new(head, "shard", json_integer(s));
		json_object_set_new(head, "shards", json_integer(m->head.count));
		json_object_set_new(head, "removed_from_output",
				    json_integer((json_int_t)from_output));
		json_object_set_new(head, "correction", corr);
		char *ht = json_dumps(head, JSON_COMPACT);
		json_decref(head);
		snprintf(path, sizeof path, "%s/shard-%05u.removals.jsonl", dir, s);
		struct qn_wr *w = ht ? qn_wr_open(path, QN_WR_PLAIN, e) : NULL;
		if (!w || qn_wr_write(w, ht, strlen(ht), e) < 0 || qn_wr_write(w, "\n", 1, e) < 0) {
			if (!ht)
				qn_errf(e, "out of memory");
			if (w)
				qn_wr_abort(w);
			free(ht);
			rc = -1;
			break;
		}
		free(ht);
		for (; d < m->n && m->d[d].shard == s; d++) {
			qn_buf_reset(&b);
			decide(m, r, d, &b);
			if (b.len && qn_wr_write(w, b.data, b.len, e) < 0) {
				rc = -1;
				break;
			}
		}
		struct qn_wr_info info;
		if (rc == 0 && qn_wr_commit(w, &info, e) < 0)
			rc = -1;
		else if (rc)
			qn_wr_abort(w);
	}
	qn_buf_release(&b);
	if (rc == 0) {
		char path[4096];
		snprintf(path, sizeof path, "%s/dedup-stats.json", dir);
		qn_buf_init(&b, QN_BUF_UNLIMITED);
		qn_buf_printf(
		    &b,
		    "{\"shards\":%u,\"documents\":%zu,\"exact_removed\":%llu,"
		    "\"near_removed\":%llu,\"clusters\":%llu,\"cluster_documents\":%llu,"
		    "\"distinct_hashes\":%llu,\"too_short\":%llu,\"index_bytes\":%zu,"
		    "\"index_fixed_bytes\":%zu,\"index_node_bytes\":%zu}\n",
		    m->head.count, m->n, (unsigned long long)r->exact_removed,
		    (unsigned long long)r->near_removed, (unsigned long long)r->clusters,
		    (unsigned long long)r->cluster_docs, (unsigned long long)r->distinct_hashes,
		    (unsigned long long)r->too_short, r->lsh ? qn_lsh_bytes(r->lsh) : (size_t)0,
		    r->lsh ? qn_lsh_bytes(r->lsh) - qn_lsh_node_cap(qn_lsh_count(r->lsh)) *
							  qn_lsh_node_bytes(r->lsh)
			   : (size_t)0,
		    r->lsh ? qn_lsh_node_bytes(r->lsh) : (size_t)0);
		rc = qn_write_file_atomic(path, b.data, b.len, e);
		qn_buf_release(&b);
	}
	return rc;
}

static const char merge_usage[] =
    "usage: quern-clean dedup-merge [-q] -o DIR SIG...\n"
    "\n"
    "Resolve exact and near-duplicates across the shards of a sharded clean\n"
    "(quern-clean --shard I/N --signatures SIG): reads the N signature files,\n"
    "replays the single-process dedup in the order (shard, position), and\n"
    "writes DIR/shard-NNNNN.removals.jsonl for each shard and\n"
    "DIR/dedup-stats.json. Apply a list with quern-clean apply-removals.\n";

int cn_dedup_merge(const char *dir, char *const *sigs, int nsigs, struct qn_err *e)
{
	struct merge m = {0};
	struct replay r = {0};
	unsigned char *seen = NULL;
	struct sigtail tail = {0};
	int rc = -1;

	qn_buf_init(&m.ids, QN_BUF_UNLIMITED);
	if (!(seen = calloc(QN_SHARD_MAX, 1))) {
		qn_errf(e, "out of memory");
		goto out;
	}
	for (int i = 0; i < nsigs; i++)
		if (read_sig(&m, sigs[i], seen, &tail, e) < 0)
			goto out;
	for (uint32_t s = 0; s < m.head.count; s++)
		if (!seen[s]) {
			qn_errf(e, "shard %u/%u is missing: give the signatures of all %u shards",
				s, m.head.count, m.head.count);
			goto out;
		}
	qsort(m.d, m.n, sizeof *m.d, by_shard);
	if (replay(&m, &r, e) < 0 || write_lists(&m, &r, dir, e) < 0)
		goto out;
	qn_info("%zu documents: %llu exact and %llu near duplicates removed", m.n,
		(unsigned long long)r.exact_removed, (unsigned long long)r.near_removed);
	rc = 0;
out:
	replay_release(&r);
	free(seen);
	free(tail.len);
	free(tail.cnt);
	chain_release(&m.chain);
	free(m.chain_text);
	free((void *)m.path);
	free(m.params);
	free(m.d);
	free(m.keys);
	free(m.per_shard);
	qn_buf_release(&m.ids);
	return rc;
}

int cn_dedup_merge_main(int argc, char **argv)
{
	static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
					   {"quiet", no_argument, NULL, 'q'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *dir = NULL;
	struct qn_err e = {0};
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			fputs(merge_usage, stdout);
			return qn_close_stdout(0);
		default:
			return qn_usage_error("dedup-merge: unknown option");
		}
	}
	if (!dir)
		return qn_usage_error("dedup-merge: -o DIR is required");
	if (optind == argc)
		return qn_usage_error("dedup-merge: no signature files");
	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		qn_error("cannot make '%s': %s", dir, strerror(errno));
		return 1;
	}
	if (cn_dedup_merge(dir, argv + optind, argc - optind, &e) < 0) {
		qn_error("%s", e.msg);
		rc = 1;
	}
	return qn_close_stdout(rc);
}

/* ---- apply-removals ------------------------------------------------------------- */

static const char apply_usage[] =
    "usage: quern-clean apply-removals --removals LIST|DIR [--shard I/N] [--stats FILE]\n"
    "                                  [-o FILE] [-r FILE] [file ...]\n"
    "\n"
    "Filter one shard's cleaned documents with its removal list from\n"
    "quern-clean dedup-merge: removed documents go to --rejects with\n"
    "metadata.reject, kept members of duplicate clusters get cluster_id and\n"
    "cluster_size, every other line passes unchanged.\n"
    "\n"
    "      --removals LIST|DIR  the shard's removal list, or dedup-merge's folder\n"
    "                           (then --shard I/N picks DIR/shard-NNNNN.removals.jsonl\n"
    "                           and N must be the merge's shard count)\n"
    "      --shard I/N          the shard (checked against the list)\n"
    "      --stats FILE         the shard's stats correction for\n"
    "                           quern-clean merge-stats (JSON); checks that every\n"
    "                           document the list removes from the output was there\n"
    "  -o, --output FILE        kept documents (default stdout)\n"
    "  -r, --rejects FILE       removed documents\n"
    "  -q, --quiet              no warnings\n";
/* Writes line (without '\n') with a metadata addition spliced in before "}}". */
static int splice(struct qn_wr *w, const char *line, size_t n, json_t *ent, struct qn_err *e)
{
	static const char empty[] = "\"metadata\":{}}";
	struct qn_buf b;
	int rc;

	if (n < 2 || line[n - 1] != '}' || line[n - 2] != '}')
		return qn_errf(e, "a document whose metadata is not its last field");
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	qn_buf_add(&b, line, n - 2);
	int comma = !(n >= sizeof empty - 1 &&
		      !memcmp(line + n - (sizeof empty - 1), empty, sizeof empty - 1));
	json_t *step = json_object_get(ent, "step");
	if (json_is_string(step)) {
		const char *r = json_string_value(json_object_get(ent, "reason"));
		const char *dup = json_string_value(json_object_get(ent, "duplicate_of"));
		qn_buf_printf(&b, "%s\"reject\":{\"step\":\"%s\",\"reason\":", comma ? "," : "",
			      json_string_value(step));
		qn_json_str(&b, r ? r : "", r ? strlen(r) : 0);
		if (dup) {
			qn_buf_adds(&b, ",\"duplicate_of\":");
			qn_json_str(&b, dup, strlen(dup));
		}
		qn_buf_addc(&b, '}');
	} else {
		const char *cid = json_string_value(json_object_get(ent, "cluster_id"));
		qn_buf_printf(&b, "%s\"cluster_id\":", comma ? "," : "");
		qn_json_str(&b, cid ? cid : "", cid ? strlen(cid) : 0);
		qn_buf_printf(&b, ",\"cluster_size\":%lld",
			      (long long)json_integer_value(json_object_get(ent, "cluster_size")));
	}
	qn_buf_add(&b, "}}\n", 3);
	rc = w ? qn_wr_write(w, b.data, b.len, e) : 0;
	qn_buf_release(&b);
	return rc;
}

/* The list as a map id -> line; its first line, the header from
 * dedup-merge (shard, shards, removed_from_output, correction), to *head. */
static json_t *load_removals(const char *path, json_t **head, struct qn_err *e)
{
	struct qn_rd *rd = qn_rd_open(path, 0, e);
	struct qn_buf line;
	json_t *map = json_object();
	uint64_t lineno = 0;
	int lr;

	*head = NULL;
	if (!rd) {
		json_decref(map);
		return NULL;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while ((lr = qn_rd_line(rd, &line, 1 << 24, e)) == 1) {
		json_error_t je;
		lineno++;
		json_t *o = json_loadb(line.data, line.len, 0, &je);
		const char *id = json_string_value(json_object_get(o, "id"));
		if (!id && lineno == 1 && json_is_integer(json_object_get(o, "shard")) &&
		    json_is_integer(json_object_get(o, "shards"))) {
			*head = o;
			continue;
		}
		if (!id) {
			qn_errf(e, "%s:%llu: not a removal list line", path,
				(unsigned long long)lineno);
			json_decref(o);
			lr = -1;
			break;
		}
		json_object_set_new(map, id, o);
	}
	if (lr == QN_RD_TOOLONG)
		qn_errf(e, "%s:%llu: line too long", path, (unsigned long long)lineno + 1);
	qn_buf_release(&line);
	qn_rd_close(rd);
	if (lr != 0) {
		json_decref(*head);
		*head = NULL;
		json_decref(map);
		return NULL;
	}
	return map;
}

/* --removals DIR --shard I/N: the list of shard I, after checking that DIR
 * holds a merge of N shards. */
static int list_in_dir(const char *dir, unsigned shard, unsigned count, char *path, size_t size,
		       struct qn_err *e)
{
	json_error_t je;
	snprintf(path, size, "%s/dedup-stats.json", dir);
	json_t *st = json_load_file(path, 0, &je);
	json_t *n = json_object_get(st, "shards");
	if (!st) {
		qn_errf(e, "cannot read '%s': %s", path, je.text);
		return -1;
	}
	if (!json_is_integer(n)) {
		json_decref(st);
		return qn_errf(e, "'%s' is not a dedup-merge stats file (no \"shards\")", path);
	}
	if (json_integer_value(n) != (json_int_t)count) {
		qn_errf(e, "'%s' is a merge of %lld shards, not %u (--shard %u/%u)", path,
			(long long)json_integer_value(n), count, shard, count);
		json_decref(st);
		return -1;
	}
	json_decref(st);
	snprintf(path, size, "%s/shard-%05u.removals.jsonl", dir, shard);
	return 0;
}

static int write_apply_stats(const char *path, json_t *head, uint64_t kept, uint64_t removed,
			     struct qn_err *e)
{
	json_t *o = json_object(), *sh = json_object(), *a = json_object();
	json_object_set(sh, "index", json_object_get(head, "shard"));
	json_object_set(sh, "count", json_object_get(head, "shards"));
	json_object_set_new(o, "shard", sh);
	json_object_set_new(a, "documents_in", json_integer((json_int_t)(kept + removed)));
	json_object_set_new(a, "documents_out", json_integer((json_int_t)kept));
	json_object_set_new(a, "documents_removed", json_integer((json_int_t)removed));
	json_object_set_new(o, "apply_removals", a);
	json_object_set(o, "correction", json_object_get(head, "correction"));
	char *txt = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (!txt)
		return qn_errf(e, "out of memory");
	int rc = qn_write_file_atomic(path, txt, strlen(txt), e);
	free(txt);
	return rc;
}

int cn_apply_removals_main(int argc, char **argv)
{
	enum { OPT_SHARD = 256, OPT_STATS };
	static const struct option lo[] = {{"removals", required_argument, NULL, 'R'},
					   {"output", required_argument, NULL, 'o'},
					   {"rejects", required_argument, NULL, 'r'},
					   {"shard", required_argument, NULL, OPT_SHARD},
					   {"stats", required_argument, NULL, OPT_STATS},
					   {"quiet", no_argument, NULL, 'q'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *list = NULL, *output = NULL, *rejects = NULL, *stats = NULL;
	char dir_list[4096];
	unsigned shard = 0, nshards = 0;
	struct qn_wr *out = NULL, *rej = NULL;
	struct qn_err e = {0};
	struct qn_buf line, text, rest;
	struct stat sb;
	json_t *map = NULL, *head = NULL;
	uint64_t removed = 0, kept = 0;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:r:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'R':
			list = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'r':
			rejects = optarg;
			break;
		case OPT_SHARD:
			if (qn_shardsel_parse(optarg, &shard, &nshards) < 0)
				return qn_usage_error("apply-removals: --shard: expected I/N with "
						      "0 <= I < N, not '%s'",
						      optarg);
			break;
		case OPT_STATS:
			stats = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			fputs(apply_usage, stdout);
			return qn_close_stdout(0);
		default:
			return qn_usage_error("apply-removals: unknown option");
		}
	}
	if (!list)
		return qn_usage_error("apply-removals: --removals LIST is required");
	if (stat(list, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		if (!nshards)
			return qn_usage_error("apply-removals: --removals DIR needs --shard I/N");
		if (list_in_dir(list, shard, nshards, dir_list, sizeof dir_list, &e) < 0) {
			qn_error("%s", e.msg);
			return 1;
		}
		list = dir_list;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	qn_buf_init(&text, QN_BUF_UNLIMITED);
	qn_buf_init(&rest, QN_BUF_UNLIMITED);
	if (!(map = load_removals(list, &head, &e))) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (nshards && head &&
	    (json_integer_value(json_object_get(head, "shard")) != (json_int_t)shard ||
	     json_integer_value(json_object_get(head, "shards")) != (json_int_t)nshards)) {
		qn_error("'%s' is the removal list of shard %lld/%lld, not %u/%u", list,
			 (long long)json_integer_value(json_object_get(head, "shard")),
			 (long long)json_integer_value(json_object_get(head, "shards")), shard,
			 nshards);
		goto out;
	}
	if (stats && (!head || !json_is_object(json_object_get(head, "correction")))) {
		qn_error("'%s' has no stats correction (its first line); make it again with "
			 "quern-clean dedup-merge",
			 list);
		goto out;
	}
	if (!(out = qn_wr_open(output, 0, &e)) ||
	    (rejects && !(rej = qn_wr_open(rejects, 0, &e)))) {
		qn_error("%s", e.msg);
		goto out;
	}
	const char *std_in[] = {"-"};
	char **inputs = optind < argc ? argv + optind : (char **)std_in;
	int ninputs = optind < argc ? argc - optind : 1;
	for (int i = 0; i < ninputs; i++) {
		struct qn_rd *rd = qn_rd_open(strcmp(inputs[i], "-") ? inputs[i] : NULL, 0, &e);
		int lr;
		if (!rd) {
			qn_error("%s", e.msg);
			goto out;
		}
		while ((lr = qn_rd_line(rd, &line, (size_t)1 << 31, &e)) == 1) {
			/* The fast reader skips the text, which jansson would decode slowly. */
			json_t *o = qn_docjson_parse(line.data, line.len, &text, &rest);
			if (!o) {
				json_error_t je;
				o = json_loadb(line.data, line.len, 0, &je);
			}
			const char *id = json_string_value(json_object_get(o, "id"));
			json_t *ent = id ? json_object_get(map, id) : NULL;
			int werr;
			if (!ent) {
				kept++;
				werr = qn_wr_write(out, line.data, line.len, &e) < 0 ||
				       qn_wr_write(out, "\n", 1, &e) < 0;
			} else if (json_is_string(json_object_get(ent, "step"))) {
				removed++;
				werr = splice(rej, line.data, line.len, ent, &e) < 0;
			} else {
				kept++;
				werr = splice(out, line.data, line.len, ent, &e) < 0;
			}
			json_decref(o);
			if (werr) {
				qn_error("%s", e.msg);
				qn_rd_close(rd);
				goto out;
			}
		}
		qn_rd_close(rd);
		if (lr != 0) {
			qn_error("%s", lr == QN_RD_TOOLONG ? "a line longer than 2G" : e.msg);
			goto out;
		}
	}
	json_int_t want = json_integer_value(json_object_get(head, "removed_from_output"));
	if (stats && (json_int_t)removed != want) {
		/* The correction assumes the shard's whole output went through. */
		qn_error("removed %llu documents, but '%s' removes %lld from shard %lld's output: "
			 "give apply-removals that shard's whole output",
			 (unsigned long long)removed, list, (long long)want,
			 (long long)json_integer_value(json_object_get(head, "shard")));
		goto out;
	}
	struct qn_wr_info info;
	int crc = rej ? qn_wr_commit(rej, &info, &e) : 0;
	rej = NULL;
	if (crc < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	crc = qn_wr_commit(out, &info, &e);
	out = NULL;
	if (crc < 0 || (stats && write_apply_stats(stats, head, kept, removed, &e) < 0)) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_info("%llu kept, %llu removed", (unsigned long long)kept, (unsigned long long)removed);
	rc = 0;
out:
	if (out)
		qn_wr_abort(out);
	if (rej)
		qn_wr_abort(rej);
	json_decref(map);
	json_decref(head);
	qn_buf_release(&line);
	qn_buf_release(&text);
	qn_buf_release(&rest);
	return qn_close_stdout(rc);
}
