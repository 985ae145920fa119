/*
 * state.h - the lock file, and whether a stage is up to date with it.
 *
 * The lock file (<pipeline>.lock beside the pipeline, JSON) records for
 * every stage the hashes that decided its last successful run:
 *
 *   {"schema": 1, "stages": {"clean": {
 *      "cmd": "quern-clean -o clean.jsonl docs.jsonl",
 *      "deps": [{"path": "docs.jsonl", "sha256": "...", "size": 1234}],
 *      "params": {"clean.threshold": "0.8"},
 *      "outs": [{"path": "clean.jsonl", "sha256": "...", "size": 999}]}}}
 *
 * (folders also carry "nfiles"). A stage must run when it has no entry,
 * or its command, a dependency's hash, a param's value, or an output (gone
 * or changed) differs from it; rn_stage_check lists each reason.
 *
 * Ownership: the json_t trees are jansson's (json_decref); reasons are
 * malloc'd strings freed by rn_reasons_release.
 */
#ifndef RN_STATE_H
#define RN_STATE_H

#include <stddef.h>

#include <jansson.h>

#include "hcache.h"
#include "pipeline.h"

struct qn_err;

/* The lock file's path for a pipeline: malloc'd. */
char *rn_lock_path(const struct rn_pipeline *p);

/* Reads the lock file; an empty lock when there is none. NULL on error. */
json_t *rn_lock_load(const char *path, struct qn_err *e);

/* Writes it atomically, keeping only the pipeline's stages. 0 or -1. */
int rn_lock_save(const char *path, json_t *lock, const struct rn_pipeline *p, struct qn_err *e);

/* The stage's entry (borrowed), or NULL. */
json_t *rn_lock_get(json_t *lock, const char *stage);

/* Sets the stage's entry (steals entry). */
int rn_lock_set(json_t *lock, const char *stage, json_t *entry);

struct rn_reasons {
	char **v;
	size_t n;
};

void rn_reasons_release(struct rn_reasons *r);
int rn_reasons_add(struct rn_reasons *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The absolute path of a pipeline path: malloc'd. */
char *rn_abs(const struct rn_pipeline *p, const char *path);

/*
 * Hashes stage si's deps into deps[] (ndeps of them) and its outs into
 * outs[] and adds to r each reason it must run against entry (NULL: never
 * ran). 0, or -1 with e filled when something cannot be read.
 */
int rn_stage_check(const struct rn_pipeline *p, size_t si, json_t *entry, struct rn_hcache *c,
		   struct rn_hash *deps, struct rn_hash *outs, struct rn_reasons *r,
		   struct qn_err *e);

/* A lock entry for stage si from the hashes of its deps and outs. */
json_t *rn_lock_entry(const struct rn_stage *s, const struct rn_hash *deps,
		      const struct rn_hash *outs);

#endif
