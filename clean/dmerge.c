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

#include <jansson.h>

#include "buf.h"
#include "cli.h"
#include "doc.h"
#include "dsig.h"
#include "err.h"
#include "hash.h"
#include "minhash.h"
#include "rd.h"
#include "shardsel.h"
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

struct merge {
	struct cn_dsig_head head;
	char *params;
	const char *first_path;
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

static int read_sig(struct merge *m, const char *path, unsigned char *seen, struct qn_err *e)
{
	struct cn_dsig_head h;
	struct qn_rd *rd = qn_rd_open(path, 0, e);
	char *params = NULL;
	uint64_t count = 0;
	int rc = -1;

	if (!rd)
		return -1;
	if (read_exact(rd, &h, sizeof h, e) < 0)
		goto out;
	if (memcmp(h.magic, CN_DSIG_MAGIC, 8)) {
		qn_errf(e, "'%s' is not a quern-clean signature file", path);
		goto out;
	}
	if (h.version != CN_DSIG_VERSION) {
		qn_errf(e, "'%s': signature version %u, this quern-clean reads %u", path, h.version,
			CN_DSIG_VERSION);
		goto out;
	}
	if (h.plen > 65536 || h.bands > QN_MINHASH_MAX_HASHES || h.count == 0 ||
	    h.shard >= h.count) {
		qn_errf(e, "'%s': bad signature header", path);
		goto out;
	}
	if (!(params = calloc(1, h.plen + 1)) || read_exact(rd, params, h.plen, e) < 0)
		goto out;
	if (!m->params) {
		m->head = h;
		m->params = params;
		params = NULL;
		m->first_path = path;
		m->per_shard = calloc(h.count, sizeof *m->per_shard);
		if (!m->per_shard) {
			qn_errf(e, "out of memory");
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
	}
	if (seen[h.shard]) {
		qn_errf(e, "'%s': shard %u/%u given twice", path, h.shard, h.count);
		goto out;
	}
	seen[h.shard] = 1;
	for (;;) {
		unsigned char f[4];
		struct sigdoc x = {.shard = h.shard};
		if (read_exact(rd, f, 4, e) < 0)
			goto out;
		if (f[0] == CN_DSIG_END) {
			uint64_t n;
			if (read_exact(rd, f, 4, e) < 0 || read_exact(rd, &n, 8, e) < 0)
				goto out;
			if (n != count) {
				qn_errf(e, "'%s': %llu records, the end says %llu", path,
					(unsigned long long)count, (unsigned long long)n);
				goto out;
			}
			break;
		}
		uint16_t idlen;
		memcpy(&idlen, f + 2, 2);
		x.flags = f[0];
		x.id_off = m->ids.len;
		if (qn_buf_grow(&m->ids, (size_t)idlen + 1) < 0 ||
		    read_exact(rd, m->ids.data + m->ids.len, idlen, e) < 0)
			goto oom_or_err;
		m->ids.len += idlen;
		qn_buf_addc(&m->ids, 0);
		if ((x.flags & CN_DSIG_EXACT) && read_exact(rd, &x.h, sizeof x.h, e) < 0)
			goto out;
		if (read_exact(rd, &x.prio_exact, 8, e) < 0 ||
		    read_exact(rd, &x.prio_near, 8, e) < 0)
			goto out;
		if (x.flags & CN_DSIG_SIG) {
			if (m->nkeys + h.bands > m->kcap) {
				size_t cap = m->kcap ? m->kcap * 2 : 65536;
				while (cap < m->nkeys + h.bands)
					cap *= 2;
				uint64_t *k = realloc(m->keys, cap * sizeof *k);
				if (!k)
					goto oom_or_err;
				m->keys = k;
				m->kcap = cap;
			}
			x.keys_off = m->nkeys;
			if (read_exact(rd, m->keys + m->nkeys, h.bands * sizeof *m->keys, e) < 0)
				goto out;
			m->nkeys += h.bands;
		}
		if (add_doc(m, &x) < 0)
			goto oom_or_err;
		count++;
	}
	m->per_shard[h.shard] = count;
	rc = 0;
	goto out;
oom_or_err:
	if (!e->msg[0])
		qn_errf(e, "out of memory");
out:
	free(params);
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
		if (m->d[d].flags & CN_DSIG_EXACT)
			r->egroup[d] = xtab_first(&xt, m->d[d].h, (uint32_t)d);
	}
	if (h->flags & CN_DSIGH_EXACT_PRIO)
		for (size_t d = 0; d < n; d++) {
			uint32_t g = r->egroup[d];
			if ((m->d[d].flags & CN_DSIG_EXACT) && g != d &&
			    better(m->d[d].prio_exact, m->d[r->erep[g]].prio_exact))
				r->erep[g] = (uint32_t)d;
		}
	if (h->flags & CN_DSIGH_NEAR) {
		r->lsh = qn_lsh_new(&mp, n, e);
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

/* One document's line of its shard's removal list (none when it stays as is). */
static void decide(struct merge *m, struct replay *r, size_t d, struct qn_buf *b)
{
	const struct sigdoc *x = &m->d[d];
	const char *id = id_of(m, d), *dup_of = NULL, *step = NULL, *reason = NULL;
	size_t csize = 0;

	if (x->flags & CN_DSIG_EXACT) {
		uint32_t g = r->egroup[d];
		if (r->erep[g] != d) {
			dup_of = id_of(m, r->erep[g]);
			step = "exact_dedup";
			reason = "duplicate";
			r->exact_removed++;
		}
	}
	if (!dup_of && (x->flags & CN_DSIG_NEAR) && r->uf) {
		uint32_t unit = r->egroup[d];
		if (r->joined[unit]) {
			uint32_t k = r->keep[unit];
			if (k != unit) {
				dup_of = id_of(m, r->erep[k]);
				step = "near_dedup";
				reason = "near_duplicate";
				r->near_removed++;
			} else if ((csize = qn_uf_size(r->uf, unit)) > 1 && unit == d) {
				r->clusters++;
				r->cluster_docs += csize;
			}
		}
	}
	if (!dup_of && csize < 2)
		return;
	qn_buf_adds(b, "{\"id\":");
	qn_json_str(b, id, strlen(id));
	if (dup_of) {
		qn_buf_printf(b, ",\"step\":\"%s\",\"reason\":\"%s\",\"duplicate_of\":", step,
			      reason);
		qn_json_str(b, dup_of, strlen(dup_of));
	} else {
		qn_buf_adds(b, ",\"cluster_id\":");
		qn_json_str(b, id, strlen(id));
		qn_buf_printf(b, ",\"cluster_size\":%zu", csize);
	}
	qn_buf_adds(b, "}\n");
}

static int write_lists(struct merge *m, struct replay *r, const char *dir, struct qn_err *e)
{
	struct qn_buf b;
	size_t d = 0;
	int rc = 0;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (uint32_t s = 0; s < m->head.count && rc == 0; s++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/shard-%05u.removals.jsonl", dir, s);
		struct qn_wr *w = qn_wr_open(path, QN_WR_PLAIN, e);
		if (!w) {
			rc = -1;
			break;
		}
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
		    "\"near_removed\":%llu,\"clusters\":%llu,\"cluster_documents\":%llu}\n",
		    m->head.count, m->n, (unsigned long long)r->exact_removed,
		    (unsigned long long)r->near_removed, (unsigned long long)r->clusters,
		    (unsigned long long)r->cluster_docs);
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

int cn_dedup_merge_main(int argc, char **argv)
{
	static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
					   {"quiet", no_argument, NULL, 'q'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *dir = NULL;
	struct merge m = {0};
	struct replay r = {0};
	struct qn_err e = {0};
	unsigned char *seen = NULL;
	int c, rc = 1;

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
	qn_buf_init(&m.ids, QN_BUF_UNLIMITED);
	seen = calloc(QN_SHARD_MAX, 1);
	for (int i = optind; i < argc; i++) {
		if (!seen || read_sig(&m, argv[i], seen, &e) < 0) {
			qn_error("%s", seen ? e.msg : "out of memory");
			goto out;
		}
	}
	for (uint32_t s = 0; s < m.head.count; s++)
		if (!seen[s]) {
			qn_error("shard %u/%u is missing: give the signatures of all %u shards", s,
				 m.head.count, m.head.count);
			goto out;
		}
	qsort(m.d, m.n, sizeof *m.d, by_shard);
	if (replay(&m, &r, &e) < 0 || write_lists(&m, &r, dir, &e) < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_info("%zu documents: %llu exact and %llu near duplicates removed", m.n,
		(unsigned long long)r.exact_removed, (unsigned long long)r.near_removed);
	rc = 0;
out:
	replay_release(&r);
	free(seen);
	free(m.params);
	free(m.d);
	free(m.keys);
	free(m.per_shard);
	qn_buf_release(&m.ids);
	return qn_close_stdout(rc);
}

/* ---- apply-removals ------------------------------------------------------------- */

static const char apply_usage[] =
    "usage: quern-clean apply-removals --removals LIST [-o FILE] [-r FILE] [file ...]\n"
    "\n"
    "Filter one shard's cleaned documents with its removal list from\n"
    "quern-clean dedup-merge: removed documents go to --rejects with\n"
    "metadata.reject, kept members of duplicate clusters get cluster_id and\n"
    "cluster_size, every other line passes unchanged.\n";

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

static json_t *load_removals(const char *path, struct qn_err *e)
{
	struct qn_rd *rd = qn_rd_open(path, 0, e);
	struct qn_buf line;
	json_t *map = json_object();
	uint64_t lineno = 0;
	int lr;

	if (!rd) {
		json_decref(map);
		return NULL;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while ((lr = qn_rd_line(rd, &line, 1 << 20, e)) == 1) {
		json_error_t je;
		lineno++;
		json_t *o = json_loadb(line.data, line.len, 0, &je);
		const char *id = json_string_value(json_object_get(o, "id"));
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
		json_decref(map);
		return NULL;
	}
	return map;
}

int cn_apply_removals_main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"removals", required_argument, NULL, 'R'}, {"output", required_argument, NULL, 'o'},
	    {"rejects", required_argument, NULL, 'r'},	{"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0}};
	const char *list = NULL, *output = NULL, *rejects = NULL;
	struct qn_wr *out = NULL, *rej = NULL;
	struct qn_err e = {0};
	struct qn_buf line;
	json_t *map = NULL;
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
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	if (!(map = load_removals(list, &e)) || !(out = qn_wr_open(output, 0, &e)) ||
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
			json_error_t je;
			json_t *o = json_loadb(line.data, line.len, 0, &je);
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
	struct qn_wr_info info;
	int crc = rej ? qn_wr_commit(rej, &info, &e) : 0;
	rej = NULL;
	if (crc < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	crc = qn_wr_commit(out, &info, &e);
	out = NULL;
	if (crc < 0) {
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
	qn_buf_release(&line);
	return qn_close_stdout(rc);
}
