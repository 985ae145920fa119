/* catalog.c - see catalog.h. */
#include "catalog.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "err.h"
#include "pipeline.h"

struct rn_catalog {
	sqlite3 *db;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, pipeline TEXT, started TEXT,"
    " ended TEXT, rc INTEGER, host TEXT, pid INTEGER);"
    "CREATE TABLE IF NOT EXISTS stages(run TEXT, name TEXT, status TEXT, rc INTEGER,"
    " started TEXT, ended TEXT, cmd TEXT, log TEXT);"
    "CREATE TABLE IF NOT EXISTS artifacts(run TEXT, stage TEXT, role TEXT, path TEXT,"
    " sha256 TEXT, size INTEGER);"
    "CREATE INDEX IF NOT EXISTS artifacts_path ON artifacts(path, role);"
    "CREATE INDEX IF NOT EXISTS artifacts_stage ON artifacts(run, stage);"
    "CREATE TABLE IF NOT EXISTS manifests(run TEXT, stage TEXT, artifact TEXT, path TEXT,"
    " tool TEXT, json TEXT);"
    "CREATE TABLE IF NOT EXISTS manifest_inputs(run TEXT, artifact TEXT, path TEXT,"
    " sha256 TEXT, size INTEGER);"
    "CREATE INDEX IF NOT EXISTS manifest_inputs_artifact ON manifest_inputs(artifact, run);";

static int dberr(struct rn_catalog *c, struct qn_err *e, const char *what)
{
	return qn_errf(e, "catalog: %s: %s", what, sqlite3_errmsg(c->db));
}

struct rn_catalog *rn_catalog_open(const char *path, struct qn_err *e)
{
	struct rn_catalog *c = calloc(1, sizeof *c);
	char *msg = NULL;

	if (!c) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	if (sqlite3_open(path, &c->db) != SQLITE_OK) {
		qn_errf(e, "cannot open the catalog '%s': %s", path,
			c->db ? sqlite3_errmsg(c->db) : "out of memory");
		rn_catalog_close(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 10000);
	if (sqlite3_exec(c->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		qn_errf(e, "cannot set up the catalog '%s': %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		rn_catalog_close(c);
		return NULL;
	}
	return c;
}

void rn_catalog_close(struct rn_catalog *c)
{
	if (!c)
		return;
	sqlite3_close(c->db);
	free(c);
}

static int exec(struct rn_catalog *c, const char *sql, struct qn_err *e)
{
	return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : dberr(c, e, sql);
}

int rn_catalog_begin(struct rn_catalog *c, struct qn_err *e)
{
	return exec(c, "BEGIN IMMEDIATE", e);
}

int rn_catalog_commit(struct rn_catalog *c, struct qn_err *e)
{
	return exec(c, "COMMIT", e);
}

/* Runs sql with text/int arguments from a format: 's' text, 'i' int64. */
static int run_sql(struct rn_catalog *c, const char *sql, const char *fmt, const void **args,
		   struct qn_err *e)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return dberr(c, e, "prepare");
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 's')
			sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, i + 1, *(const long long *)args[i]);
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : dberr(c, e, "insert");
}

int rn_catalog_run(struct rn_catalog *c, const char *run, const char *pipeline, const char *started,
		   const char *ended, int rc, const char *host, long pid, struct qn_err *e)
{
	long long r = rc, p = pid;
	const void *a[] = {run, pipeline, started, ended, &r, host, &p};
	return run_sql(c, "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?,?)", "ssssisi", a, e);
}

int rn_catalog_stage(struct rn_catalog *c, const char *run, const char *stage, const char *status,
		     int rc, const char *started, const char *ended, const char *cmd,
		     const char *log, struct qn_err *e)
{
	long long r = rc;
	const void *a[] = {run, stage, status, &r, started, ended, cmd, log};
	return run_sql(c, "INSERT INTO stages VALUES(?,?,?,?,?,?,?,?)", "sssissss", a, e);
}

int rn_catalog_artifact(struct rn_catalog *c, const char *run, const char *stage, const char *role,
			const char *path, const char *sha256, uint64_t size, struct qn_err *e)
{
	long long sz = (long long)size;
	const void *a[] = {run, stage, role, path, sha256, &sz};
	return run_sql(c, "INSERT INTO artifacts VALUES(?,?,?,?,?,?)", "sssssi", a, e);
}

int rn_catalog_manifest(struct rn_catalog *c, const char *run, const char *stage,
			const char *artifact, const char *mpath, const char *wdir, json_t *m,
			struct qn_err *e)
{
	char *text = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
	const char *tool = json_string_value(json_object_get(m, "tool"));
	const void *a[] = {run, stage, artifact, mpath, tool ? tool : "", text ? text : "{}"};
	int rc = run_sql(c, "INSERT INTO manifests VALUES(?,?,?,?,?,?)", "ssssss", a, e);
	free(text);
	if (rc < 0)
		return -1;
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(m, "inputs"), i, in)
	{
		const char *p = json_string_value(json_object_get(in, "path"));
		const char *sha = json_string_value(json_object_get(in, "sha256"));
		long long size = (long long)json_integer_value(json_object_get(in, "size"));
		if (!p || !strcmp(p, "-"))
			continue;
		char *norm = rn_path_join(wdir, p);
		if (!norm)
			return qn_errf(e, "out of memory");
		const void *b[] = {run, artifact, norm, sha ? sha : "", &size};
		rc = run_sql(c, "INSERT INTO manifest_inputs VALUES(?,?,?,?,?)", "ssssi", b, e);
		free(norm);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* --- lineage -------------------------------------------------------------- */

struct seen {
	char **v;
	size_t n;
};

static int seen_add(struct seen *s, const char *p)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], p))
			return 0;
	char **v = realloc(s->v, (s->n + 1) * sizeof *v);
	if (!v)
		return -1;
	s->v = v;
	if (!(s->v[s->n] = strdup(p)))
		return -1;
	s->n++;
	return 1;
}

static void short_sha(const unsigned char *sha, char out[16])
{
	snprintf(out, 16, "%.12s", sha ? (const char *)sha : "");
}

struct lin {
	struct rn_catalog *c;
	FILE *out;
	struct seen visited, sources;
	char **srcsha;
};

static int lineage_rec(struct lin *l, const char *path, int depth, struct qn_err *e)
{
	sqlite3_stmt *st;
	char sh[16];
	int rc = 0;

	if (depth > 64)
		return 0;
	if (sqlite3_prepare_v2(
		l->c->db,
		"SELECT run, stage, sha256, path FROM artifacts WHERE role='out' AND "
		"(path = ?1 OR substr(?1, 1, length(path) + 1) = path || '/') "
		"ORDER BY rowid DESC LIMIT 1",
		-1, &st, NULL) != SQLITE_OK)
		return dberr(l->c, e, "lineage");
	sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		fprintf(l->out, "%*s%s  (source)\n", depth * 2, "", path);
		return seen_add(&l->sources, path) < 0 ? qn_errf(e, "out of memory") : 0;
	}
	char *run = strdup((const char *)sqlite3_column_text(st, 0));
	char *stage = strdup((const char *)sqlite3_column_text(st, 1));
	char *out = strdup((const char *)sqlite3_column_text(st, 3));
	short_sha(sqlite3_column_text(st, 2), sh);
	sqlite3_finalize(st);
	if (!run || !stage || !out) {
		rc = qn_errf(e, "out of memory");
		goto done;
	}
	fprintf(l->out, "%*s%s  sha256 %s  <- stage '%s' (run %s)\n", depth * 2, "", path, sh,
		stage, run);
	int first = seen_add(&l->visited, out);
	if (first < 0) {
		rc = qn_errf(e, "out of memory");
		goto done;
	}
	if (!first) {
		fprintf(l->out, "%*s(shown above)\n", depth * 2 + 2, "");
		goto done;
	}
	/* the tool's manifest: finer-grained inputs */
	if (sqlite3_prepare_v2(
		l->c->db,
		"SELECT DISTINCT path, sha256 FROM manifest_inputs WHERE run = ?1 AND "
		"(artifact = ?2 OR substr(artifact, 1, length(?2) + 1) = ?2 || '/') "
		"ORDER BY path",
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, run, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, out, -1, SQLITE_TRANSIENT);
		int shown = 0;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *ip = (const char *)sqlite3_column_text(st, 0);
			short_sha(sqlite3_column_text(st, 1), sh);
			if (shown++ < 50)
				fprintf(l->out, "%*s%s  sha256 %s  (in the tool's manifest)\n",
					depth * 2 + 2, "", ip, sh);
		}
		if (shown > 50)
			fprintf(l->out, "%*s... %d more in the manifest\n", depth * 2 + 2, "",
				shown - 50);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(l->c->db,
			       "SELECT path FROM artifacts WHERE run = ?1 AND stage = ?2 AND "
			       "role = 'dep' ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = dberr(l->c, e, "lineage");
		goto done;
	}
	sqlite3_bind_text(st, 1, run, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, stage, -1, SQLITE_TRANSIENT);
	struct seen deps = {0};
	while (sqlite3_step(st) == SQLITE_ROW)
		if (seen_add(&deps, (const char *)sqlite3_column_text(st, 0)) < 0)
			rc = qn_errf(e, "out of memory");
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < deps.n; i++)
		rc = lineage_rec(l, deps.v[i], depth + 1, e);
	for (size_t i = 0; i < deps.n; i++)
		free(deps.v[i]);
	free(deps.v);
done:
	free(run);
	free(stage);
	free(out);
	return rc;
}

int rn_catalog_lineage(struct rn_catalog *c, const char *artifact, FILE *out, struct qn_err *e)
{
	struct lin l = {c, out, {0}, {0}, NULL};
	sqlite3_stmt *st;
	int known = 0;

	if (sqlite3_prepare_v2(c->db,
			       "SELECT 1 FROM artifacts WHERE role='out' AND (path = ?1 OR "
			       "substr(?1, 1, length(path) + 1) = path || '/') LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return dberr(c, e, "lineage");
	sqlite3_bind_text(st, 1, artifact, -1, SQLITE_TRANSIENT);
	known = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (!known)
		return 1;
	int rc = lineage_rec(&l, artifact, 0, e);
	if (rc == 0) {
		fprintf(out, "sources:\n");
		for (size_t i = 0; i < l.sources.n; i++)
			fprintf(out, "  %s\n", l.sources.v[i]);
	}
	for (size_t i = 0; i < l.visited.n; i++)
		free(l.visited.v[i]);
	for (size_t i = 0; i < l.sources.n; i++)
		free(l.sources.v[i]);
	free(l.visited.v);
	free(l.sources.v);
	return rc;
}
