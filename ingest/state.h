/*
 * state.h - quern-ingest's memory between runs (--state FILE, SQLite).
 *
 * For each input file: path, size, mtime and content SHA-256, so a cron
 * rerun emits only new or changed files. Crash safety comes from a
 * two-step commit tied to the atomic output file:
 *   1. before the output is renamed into place, the run's file records are
 *      stored as pending together with the output's path and SHA-256;
 *   2. after the rename, the pending records become the state.
 * A run killed before step 1 leaves no output and no records; one killed
 * between the steps is settled by the next run, which finalises the pending
 * records when the output file on disk has the recorded SHA-256, and drops
 * them otherwise. Either way every file is emitted exactly once.
 */
#ifndef IX_STATE_H
#define IX_STATE_H

#include <stdint.h>

struct qn_err;
struct ix_state;

/* Opens (creating) the database and settles a run left pending. */
struct ix_state *ix_state_open(const char *path, struct qn_err *e);
void ix_state_close(struct ix_state *st);

/* 1 and *sha filled when path was recorded with this size and mtime;
 * 2 when recorded with other size/mtime (sha has the old hash); 0 unknown. */
int ix_state_lookup(struct ix_state *st, const char *path, uint64_t size, int64_t mtime_ns,
		    char sha[65]);

/* Queues a record for this run (kept in memory until ix_state_prepare). */
int ix_state_add(struct ix_state *st, const char *path, uint64_t size, int64_t mtime_ns,
		 const char *sha);

/* Step 1: stores the queued records as pending for output (path, sha). */
int ix_state_prepare(struct ix_state *st, const char *output, const char *output_sha,
		     struct qn_err *e);
/* Step 2: makes the pending records the state. */
int ix_state_commit(struct ix_state *st, struct qn_err *e);

#endif
