/* state.c - see state.h. */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "err.h"
#include "doc.h"
#include "hash.h"

struct ix_state {
	sqlite3 *db;
	char *path;
	sqlite3_int64 run;
	sqlite3_stmt *lookup;
	sqlite3_stmt *add;
	int in_tx;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS files("
	" path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL, run INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS runs("
	" id INTEGER PRIMARY KEY, started TEXT NOT NULL, output TEXT, output_sha256 TEXT,"
	" status TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS pending("
	" run INTEGER NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(run, path));";

static int fail(struct ix_state *st, struct qn_err *e, const char *what)
{
	return qn_errf(e, "state '%s': %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

static int exec(struct ix_state *st, const char *sql, struct qn_err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		qn_errf(e, "state '%s': %s", st->path, msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Step 2 of the commit: a pending run's records become the state. */
static int finalize(struct ix_state *st, sqlite3_int64 run, struct qn_err *e)
{
	char sql[512];

	snprintf(sql, sizeof sql,
		 "BEGIN IMMEDIATE;"
		 "INSERT OR REPLACE INTO files(path,size,mtime_ns,sha256,run)"
		 " SELECT path,size,mtime_ns,sha256,run FROM pending WHERE run=%lld;"
		 "DELETE FROM pending WHERE run=%lld;"
		 "UPDATE runs SET status='done' WHERE id=%lld;COMMIT;",
		 (long long)run, (long long)run, (long long)run);
	return exec(st, sql, e);
}

/* Finalises or drops runs left pending by a killed process. */
static int settle(struct ix_state *st, struct qn_err *e)
{
	sqlite3_stmt *q;
	int rc = 0;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT id, output, output_sha256 FROM runs WHERE status='pending'",
			       -1, &q, NULL) != SQLITE_OK)
		return fail(st, e, "cannot read runs");
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		sqlite3_int64 id = sqlite3_column_int64(q, 0);
		const char *out = (const char *)sqlite3_column_text(q, 1);
		const char *want = (const char *)sqlite3_column_text(q, 2);
		char have[65] = "", sql[512];
		int done = 0;
		if (out && want && qn_sha256_file(out, have, NULL, NULL) == 0)
			done = !strcmp(have, want);
		if (done) {
			rc = finalize(st, id, e);
		} else {
			snprintf(sql, sizeof sql,
				 "BEGIN IMMEDIATE;DELETE FROM pending WHERE run=%lld;"
				 "UPDATE runs SET status='abandoned' WHERE id=%lld;COMMIT;",
				 (long long)id, (long long)id);
			rc = exec(st, sql, e);
		}
	}
	sqlite3_finalize(q);
	return rc;
}

struct ix_state *ix_state_open(const char *path, struct qn_err *e)
{
	struct ix_state *st = calloc(1, sizeof *st);

	if (!st || !(st->path = strdup(path))) {
		free(st);
		qn_errf(e, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		fail(st, e, "cannot open");
		ix_state_close(st);
		return NULL;
	}
	sqlite3_busy_timeout(st->db, 10000);
	if (exec(st, schema, e) < 0 || settle(st, e) < 0) {
		ix_state_close(st);
		return NULL;
	}
	if (sqlite3_prepare_v2(st->db,
			       "SELECT size, mtime_ns, sha256 FROM files WHERE path=?1", -1,
			       &st->lookup, NULL) != SQLITE_OK) {
		fail(st, e, "cannot prepare");
		ix_state_close(st);
		return NULL;
	}
	return st;
}

void ix_state_close(struct ix_state *st)
{
	if (!st)
		return;
	if (st->in_tx)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(st->lookup);
	sqlite3_finalize(st->add);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

int ix_state_lookup(struct ix_state *st, const char *path, uint64_t size, int64_t mtime_ns,
		    char sha[65])
{
	int r = 0;

	sqlite3_reset(st->lookup);
	sqlite3_bind_text(st->lookup, 1, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st->lookup) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st->lookup, 2);
		snprintf(sha, 65, "%s", h ? h : "");
		r = (uint64_t)sqlite3_column_int64(st->lookup, 0) == size &&
				    sqlite3_column_int64(st->lookup, 1) == mtime_ns
			    ? 1
			    : 2;
	}
	sqlite3_reset(st->lookup);
	return r;
}

/* Starts this run's transaction on first use: records stay invisible
 * (and nothing is written) until ix_state_prepare. */
static int begin(struct ix_state *st)
{
	if (st->in_tx)
		return 0;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	st->in_tx = 1;
	char now[32];
	sqlite3_stmt *q;
	qn_now_rfc3339(now);
	if (sqlite3_prepare_v2(st->db, "INSERT INTO runs(started,status) VALUES(?1,'open')", -1,
			       &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, now, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(q);
	st->run = sqlite3_last_insert_rowid(st->db);
	if (rc == 0 &&
	    sqlite3_prepare_v2(st->db,
			       "INSERT OR REPLACE INTO pending(run,path,size,mtime_ns,sha256)"
			       " VALUES(?1,?2,?3,?4,?5)",
			       -1, &st->add, NULL) != SQLITE_OK)
		rc = -1;
	return rc;
}

int ix_state_add(struct ix_state *st, const char *path, uint64_t size, int64_t mtime_ns,
		 const char *sha)
{
	if (begin(st) < 0)
		return -1;
	sqlite3_reset(st->add);
	sqlite3_bind_int64(st->add, 1, st->run);
	sqlite3_bind_text(st->add, 2, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st->add, 3, (sqlite3_int64)size);
	sqlite3_bind_int64(st->add, 4, mtime_ns);
	sqlite3_bind_text(st->add, 5, sha, -1, SQLITE_TRANSIENT);
	return sqlite3_step(st->add) == SQLITE_DONE ? 0 : -1;
}

int ix_state_prepare(struct ix_state *st, const char *output, const char *output_sha,
		     struct qn_err *e)
{
	sqlite3_stmt *q;
	int rc;

	if (begin(st) < 0)
		return fail(st, e, "cannot start a transaction");
	if (sqlite3_prepare_v2(st->db,
			       "UPDATE runs SET status='pending', output=?1, output_sha256=?2"
			       " WHERE id=?3",
			       -1, &q, NULL) != SQLITE_OK)
		return fail(st, e, "cannot prepare");
	sqlite3_bind_text(q, 1, output, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, output_sha, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 3, st->run);
	rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(q);
	if (rc < 0)
		return fail(st, e, "cannot record the run");
	if (exec(st, "COMMIT", e) < 0)
		return -1;
	st->in_tx = 0;
	return 0;
}

int ix_state_commit(struct ix_state *st, struct qn_err *e)
{
	return finalize(st, st->run, e);
}
