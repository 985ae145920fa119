/*
 * catalog.h - quern-run's SQLite catalog (.quern-run/catalog.sqlite): runs,
 * stage runs, the artifacts each stage read and wrote (path, SHA-256,
 * size), and the tools' manifests found beside the outputs, with their
 * inputs, so the sources behind any artifact can be listed (lineage).
 *
 * Tables: runs(id, pipeline, started, ended, rc, host, pid),
 * stages(run, name, status, rc, started, ended, cmd, log),
 * artifacts(run, stage, role 'dep'|'out', path, sha256, size),
 * manifests(run, stage, artifact, path, tool, json),
 * manifest_inputs(run, artifact, path, sha256, size). Paths are relative to
 * the pipeline's folder.
 *
 * Ownership: rn_catalog_open returns a handle for rn_catalog_close.
 */
#ifndef RN_CATALOG_H
#define RN_CATALOG_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct qn_err;
struct rn_catalog;

struct rn_catalog *rn_catalog_open(const char *path, struct qn_err *e);
void rn_catalog_close(struct rn_catalog *c);

int rn_catalog_begin(struct rn_catalog *c, struct qn_err *e);
int rn_catalog_commit(struct rn_catalog *c, struct qn_err *e);

int rn_catalog_run(struct rn_catalog *c, const char *run, const char *pipeline, const char *started,
		   const char *ended, int rc, const char *host, long pid, struct qn_err *e);
int rn_catalog_stage(struct rn_catalog *c, const char *run, const char *stage, const char *status,
		     int rc, const char *started, const char *ended, const char *cmd,
		     const char *log, struct qn_err *e);
int rn_catalog_artifact(struct rn_catalog *c, const char *run, const char *stage, const char *role,
			const char *path, const char *sha256, uint64_t size, struct qn_err *e);
/*
 * Records the manifest m (read from mpath) of artifact; its inputs, whose
 * paths are relative to wdir (the folder the tool ran in), are stored
 * relative to the pipeline folder.
 */
int rn_catalog_manifest(struct rn_catalog *c, const char *run, const char *stage,
			const char *artifact, const char *mpath, const char *wdir, json_t *m,
			struct qn_err *e);

/*
 * Writes the tree of stages and files behind artifact (a path relative to
 * the pipeline folder) to out, then the list of sources. 0; 1 when the
 * catalog knows nothing of artifact; -1 on error.
 */
int rn_catalog_lineage(struct rn_catalog *c, const char *artifact, FILE *out, struct qn_err *e);

#endif
