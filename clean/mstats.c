/*
 * mstats.c - quern-clean merge-stats: one stats file, in the format of a
 * single run's --stats, from the stats of the shards of a sharded clean
 * (docs/sharding.md).
 *
 * The inputs are the shards' --stats files (summed: every number, every
 * map by key, the steps by position with equal step names) and, when the
 * chain has a dedup step, apply-removals' --stats files, whose corrections
 * (made by dedup-merge from the signature records, see dsig.h) move each
 * document the merge removed from the steps after the dedup step to the
 * dedup step's rejects, as a single run counts it. The counters that only
 * the merge knows (distinct hashes, clusters, ...) come from --dedup DIR's
 * dedup-stats.json. Everything read is owned here and freed before return.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cstats.h"
#include "dsig.h"
#include "err.h"
#include "minhash.h"
#include "shardsel.h"
#include "wr.h"

int cn_stats_add(json_t *dst, json_t *src, const char *where, struct qn_err *e)
{
	const char *key;
	json_t *v;

	if (json_is_array(dst) && json_is_array(src)) {
		if (json_array_size(dst) != json_array_size(src))
			return qn_errf(e, "%s: %zu entries, not %zu", where, json_array_size(src),
				       json_array_size(dst));
		for (size_t i = 0; i < json_array_size(src); i++) {
			char w[256];
			snprintf(w, sizeof w, "%s[%zu]", where, i);
			if (cn_stats_add(json_array_get(dst, i), json_array_get(src, i), w, e) < 0)
				return -1;
		}
		return 0;
	}
	if (!json_is_object(dst) || !json_is_object(src))
		return qn_errf(e, "%s: not an object", where);
	json_object_foreach(src, key, v)
	{
		json_t *d = json_object_get(dst, key);
		char w[256];
		snprintf(w, sizeof w, "%s.%s", where, key);
		if (!d) {
			json_object_set_new(dst, key, json_deep_copy(v));
		} else if (json_is_integer(d) && json_is_integer(v)) {
			json_int_t sum;
			if (__builtin_add_overflow(json_integer_value(d), json_integer_value(v),
						   &sum))
				return qn_errf(e, "%s: the sum overflows", w);
			json_integer_set(d, sum);
		} else if (json_is_number(d) && json_is_number(v)) {
			json_t *sum = json_real(json_number_value(d) + json_number_value(v));
			json_object_set_new(dst, key, sum);
		} else if (json_is_object(d) || json_is_array(d)) {
			if (json_typeof(d) != json_typeof(v))
				return qn_errf(e, "%s: different kinds of value", w);
			if (cn_stats_add(d, v, w, e) < 0)
				return -1;
		} else if (!json_equal(d, v)) {
			return qn_errf(e, "%s: different values", w);
		}
	}
	return 0;
}

/* Drops map entries of no documents; -1 on a negative count. */
static int prune(json_t *map, const char **bad)
{
	const char *key;
	json_t *v, *tmp;

	json_object_foreach_safe(map, tmp, key, v)
	{
		json_int_t d = json_integer_value(json_object_get(v, "documents"));
		json_int_t b = json_integer_value(json_object_get(v, "bytes"));
		if (d < 0 || b < 0) {
			*bad = key;
			return -1;
		}
		if (d == 0 && b == 0)
			json_object_del(map, key);
	}
	return 0;
}

static int negative(json_t *o, const char **bad)
{
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) if (json_is_integer(v) && json_integer_value(v) < 0)
	{
		*bad = key;
		return 1;
	}
	return 0;
}

int cn_stats_finish(json_t *stats, struct qn_err *e)
{
	const char *bad = NULL;
	json_t *sv = json_object_get(stats, "steps"), *st;
	size_t i;

	if (negative(stats, &bad))
		goto neg;
	json_array_foreach(sv, i, st)
	{
		json_t *m;
		if (negative(st, &bad) ||
		    ((m = json_object_get(st, "rejected")) && prune(m, &bad) < 0) ||
		    ((m = json_object_get(st, "languages")) && prune(m, &bad) < 0) ||
		    ((m = json_object_get(st, "counters")) && negative(m, &bad)))
			goto neg;
	}
	return 0;
neg:
	return qn_errf(e,
		       "'%s' is negative after the merge: the stats files are not of one "
		       "sharded run",
		       bad);
}

/* "normalize,exact_dedup,..." for messages; NULL when there are no steps. */
static char *step_list(json_t *stats)
{
	json_t *sv = json_object_get(stats, "steps"), *st;
	size_t i, n = 1;
	if (!json_is_array(sv))
		return NULL;
	json_array_foreach(sv, i, st)
	{
		const char *s = json_string_value(json_object_get(st, "step"));
		n += (s ? strlen(s) : 1) + 1;
	}
	char *out = calloc(1, n);
	if (!out)
		return NULL;
	json_array_foreach(sv, i, st)
	{
		const char *s = json_string_value(json_object_get(st, "step"));
		if (i)
			strcat(out, ",");
		strcat(out, s ? s : "?");
	}
	return out;
}

/* 0 when a and b ran the same steps, else -1 with a message naming both. */
static int same_steps(json_t *a, const char *pa, json_t *b, const char *pb, struct qn_err *e)
{
	char *la = step_list(a), *lb = step_list(b);
	int rc = 0;
	if (!la || !lb)
		rc = qn_errf(e, "out of memory");
	else if (strcmp(la, lb))
		rc = qn_errf(e, "'%s' and '%s' ran different steps (%s vs %s)", pb, pa, lb, la);
	free(la);
	free(lb);
	return rc;
}

/* One kind of input (the shards' stats, or apply-removals' stats): which
 * shards they are, each once. */
struct shardset {
	const char *what;
	json_int_t count;  /* 0: none seen yet; -1: inputs without "shard" */
	const char **path; /* per shard */
	size_t n;
};

static int shardset_add(struct shardset *s, json_t *o, const char *path, struct qn_err *e)
{
	json_t *sh = json_object_get(o, "shard");
	json_int_t i = json_integer_value(json_object_get(sh, "index"));
	json_int_t n = json_integer_value(json_object_get(sh, "count"));

	s->n++;
	if (!sh) {
		if (s->count > 0)
			return qn_errf(e, "'%s' is not the %s of a shard, '%s' is", path, s->what,
				       s->path[0] ? s->path[0] : "?");
		s->count = -1;
		return 0;
	}
	if (n < 1 || n > QN_SHARD_MAX || i < 0 || i >= n)
		return qn_errf(e, "'%s': bad \"shard\"", path);
	if (s->count == -1)
		return qn_errf(e, "'%s' is the %s of shard %lld/%lld, the others are of no shard",
			       path, s->what, (long long)i, (long long)n);
	if (s->count == 0) {
		s->count = n;
		s->path = calloc((size_t)n, sizeof *s->path);
		if (!s->path)
			return qn_errf(e, "out of memory");
	} else if (n != s->count) {
		for (json_int_t k = 0; k < s->count; k++)
			if (s->path[k])
				return qn_errf(
				    e, "'%s' is shard %lld/%lld but '%s' is of %lld shards", path,
				    (long long)i, (long long)n, s->path[k], (long long)s->count);
	}
	if (s->path[i])
		return qn_errf(e, "shard %lld/%lld given twice: '%s' and '%s' (%s)", (long long)i,
			       (long long)n, s->path[i], path, s->what);
	s->path[i] = path;
	return 0;
}

static int shardset_complete(const struct shardset *s, struct qn_err *e)
{
	for (json_int_t k = 0; k < s->count; k++)
		if (!s->path[k])
			return qn_errf(e, "the %s of shard %lld/%lld are missing", s->what,
				       (long long)k, (long long)s->count);
	return 0;
}

/* Sets step NAME's counter KEY to dedup-stats.json's field FIELD. */
static int set_counter(json_t *stats, const char *name, const char *key, json_t *ds,
		       const char *field, const char *dspath, struct qn_err *e)
{
	json_t *sv = json_object_get(stats, "steps"), *st;
	size_t i;
	json_array_foreach(sv, i, st)
	{
		const char *step = json_string_value(json_object_get(st, "step"));
		if (!step || strcmp(step, name))
			continue;
		json_t *v = json_object_get(ds, field), *cs = json_object_get(st, "counters");
		if (!json_is_integer(v))
			return qn_errf(e, "'%s' has no \"%s\" (made by an older dedup-merge?)",
				       dspath, field);
		if (json_is_object(cs))
			json_object_set(cs, key, v);
	}
	return 0;
}

/*
 * near_dedup's index_bytes: a single run's index has a node for every
 * document it read (documents_in), the merge's only for those with a
 * signature record; dedup-stats.json gives the part that does not grow with
 * nodes and the bytes of one node slot.
 */
static int index_bytes(json_t *stats, json_t *ds, const char *dspath, struct qn_err *e)
{
	json_t *fixed = json_object_get(ds, "index_fixed_bytes"),
	       *node = json_object_get(ds, "index_node_bytes");
	json_int_t n = json_integer_value(json_object_get(stats, "documents_in"));
	if (!json_is_integer(fixed) || !json_is_integer(node) || json_integer_value(fixed) < 0 ||
	    json_integer_value(node) < 0 || json_integer_value(node) > 65536 || n < 0)
		return qn_errf(e, "'%s' has no index sizes (made by an older dedup-merge?)", dspath);
	json_t *v = json_integer(json_integer_value(fixed) +
				 (json_int_t)qn_lsh_node_cap((size_t)n) * json_integer_value(node));
	json_t *sv = json_object_get(stats, "steps"), *st;
	size_t i;
	json_array_foreach(sv, i, st)
	{
		const char *step = json_string_value(json_object_get(st, "step"));
		json_t *cs = json_object_get(st, "counters");
		if (step && !strcmp(step, "near_dedup") && json_is_object(cs))
			json_object_set(cs, "index_bytes", v);
	}
	json_decref(v);
	return 0;
}

static const char usage[] =
    "usage: quern-clean merge-stats [-q] [-o FILE] [--dedup DIR] STATS...\n"
    "\n"
    "Merge the stats of a sharded clean into one file in the format of a\n"
    "single run's --stats. STATS are the shards' --stats files and, when the\n"
    "chain has a dedup step, apply-removals' --stats files (any order);\n"
    "--dedup DIR is dedup-merge's folder. The document counts (in total, per\n"
    "step, per reason) and the byte counts equal a single run's.\n"
    "\n"
    "  -o, --output FILE        the merged stats (atomically; default stdout)\n"
    "      --dedup DIR          dedup-merge's output: the counters only the\n"
    "                           merge knows (distinct_hashes, clusters, ...)\n"
    "  -q, --quiet              no warnings\n";

int cn_merge_stats_main(int argc, char **argv)
{
	enum { OPT_DEDUP = 256 };
	static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
					   {"dedup", required_argument, NULL, OPT_DEDUP},
					   {"quiet", no_argument, NULL, 'q'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *output = NULL, *dedup = NULL, *first = NULL;
	struct shardset shards = {"stats", 0, NULL, 0},
			applied = {"apply-removals stats", 0, NULL, 0};
	json_t *sum = NULL, *ds = NULL, **in = NULL;
	struct qn_err e = {0};
	char dspath[4096];
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case OPT_DEDUP:
			dedup = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			fputs(usage, stdout);
			return qn_close_stdout(0);
		default:
			return qn_usage_error("merge-stats: unknown option");
		}
	}
	if (optind == argc)
		return qn_usage_error("merge-stats: no stats files");
	if (!(in = calloc((size_t)argc, sizeof *in))) {
		qn_error("out of memory");
		return 1;
	}
	/* Read and sort: the shards' stats are summed, the corrections kept. */
	for (int i = optind; i < argc; i++) {
		json_error_t je;
		const char *p = argv[i];
		json_t *o = in[i] = json_load_file(p, 0, &je);
		if (!o) {
			qn_error("cannot read '%s': %s", p, je.text);
			goto out;
		}
		if (json_is_object(json_object_get(o, "correction"))) {
			if (shardset_add(&applied, o, p, &e) < 0)
				goto fail;
			continue;
		}
		if (!json_is_object(o) || !json_is_array(json_object_get(o, "steps")) ||
		    !json_is_integer(json_object_get(o, "documents_in"))) {
			qn_error("'%s' is not a quern-clean stats file", p);
			goto out;
		}
		if (shardset_add(&shards, o, p, &e) < 0)
			goto fail;
		json_object_del(o, "shard");
		if (!sum) {
			sum = json_deep_copy(o);
			first = p;
		} else if (same_steps(sum, first, o, p, &e) < 0 ||
			   cn_stats_add(sum, o, p, &e) < 0) {
			goto fail;
		}
	}
	if (!sum) {
		qn_error("no shard stats among the inputs (only apply-removals --stats files)");
		goto out;
	}
	if (shards.count > 0 && shardset_complete(&shards, &e) < 0)
		goto fail;
	char *steps = step_list(sum);
	int has_dedup = steps && (strstr(steps, "exact_dedup") || strstr(steps, "near_dedup"));
	free(steps);
	if (applied.n && !dedup) {
		rc = qn_usage_error("merge-stats: apply-removals stats need --dedup DIR");
		goto out;
	}
	if (has_dedup && shards.count > 0 && !dedup) {
		rc = qn_usage_error("merge-stats: the shards ran dedup steps: give --dedup DIR and "
				    "apply-removals' --stats files");
		goto out;
	}
	if (dedup) {
		json_error_t je;
		snprintf(dspath, sizeof dspath, "%s/dedup-stats.json", dedup);
		ds = json_load_file(dspath, 0, &je);
		json_int_t n = json_integer_value(json_object_get(ds, "shards"));
		if (!ds) {
			qn_error("cannot read '%s': %s", dspath, je.text);
			goto out;
		}
		if (n < 1) {
			qn_error("'%s' is not a dedup-merge stats file (no \"shards\")", dspath);
			goto out;
		}
		if (shards.count > 0 && shards.count != n) {
			qn_error("'%s' is a merge of %lld shards, the stats are of %lld", dspath,
				 (long long)n, (long long)shards.count);
			goto out;
		}
		if (!applied.n) {
			qn_error("no apply-removals --stats files among the inputs: the removals "
				 "of '%s' would not be counted",
				 dedup);
			goto out;
		}
		if (applied.count != n) {
			qn_error(
			    "'%s' is a merge of %lld shards, the apply-removals stats are of %lld",
			    dspath, (long long)n, (long long)applied.count);
			goto out;
		}
		if (shardset_complete(&applied, &e) < 0)
			goto fail;
		for (json_int_t k = 0; k < n; k++) {
			const char *p = applied.path[k];
			json_t *corr = NULL;
			for (int i = optind; i < argc; i++)
				if (argv[i] == p)
					corr = json_object_get(in[i], "correction");
			if (same_steps(sum, first, corr, p, &e) < 0 ||
			    cn_stats_add(sum, corr, p, &e) < 0)
				goto fail;
		}
		if (set_counter(sum, "exact_dedup", "distinct_hashes", ds, "distinct_hashes",
				dspath, &e) < 0 ||
		    set_counter(sum, "near_dedup", "clusters", ds, "clusters", dspath, &e) < 0 ||
		    set_counter(sum, "near_dedup", "documents_in_clusters", ds, "cluster_documents",
				dspath, &e) < 0 ||
		    set_counter(sum, "near_dedup", "too_short", ds, "too_short", dspath, &e) < 0 ||
		    set_counter(sum, "near_dedup", "index_bytes", ds, "index_bytes", dspath, &e) <
			0 ||
		    index_bytes(sum, ds, dspath, &e) < 0)
			goto fail;
	}
	if (cn_stats_finish(sum, &e) < 0)
		goto fail;
	char *txt = json_dumps(sum, JSON_INDENT(2));
	if (!txt) {
		qn_error("out of memory");
		goto out;
	}
	if (output && strcmp(output, "-")) {
		if (qn_write_file_atomic(output, txt, strlen(txt), &e) < 0) {
			free(txt);
			goto fail;
		}
	} else {
		fputs(txt, stdout);
		putchar('\n');
	}
	free(txt);
	rc = 0;
	goto out;
fail:
	qn_error("%s", e.msg);
out:
	for (int i = 0; i < argc; i++)
		json_decref(in[i]);
	free(in);
	free(shards.path);
	free(applied.path);
	json_decref(sum);
	json_decref(ds);
	return qn_close_stdout(rc);
}
