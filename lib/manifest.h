/*
 * manifest.h - the lineage record every output gets (DESIGN.md).
 *
 * A manifest is a JSON object: tool, version, argv, start and end time,
 * each input and output with size and SHA-256, and the tool's counters.
 * quern-run collects them into its catalog and quern-audit checks a chain
 * of them against the files on disk. Owned by the caller: qn_manifest_new /
 * qn_manifest_free.
 */
#ifndef QN_MANIFEST_H
#define QN_MANIFEST_H

#include <stdint.h>

#include <jansson.h>

struct qn_err;

struct qn_manifest {
	json_t *root;
	json_t *inputs;
	json_t *outputs;
	json_t *counters;
};

struct qn_manifest *qn_manifest_new(const char *tool, const char *version, int argc,
				    char **argv);
void qn_manifest_free(struct qn_manifest *m);

/* path, its size in bytes and SHA-256 hex (NULL when unknown). */
int qn_manifest_input(struct qn_manifest *m, const char *path, uint64_t size,
		      const char *sha256);
int qn_manifest_output(struct qn_manifest *m, const char *path, uint64_t size,
		       const char *sha256);
void qn_manifest_count(struct qn_manifest *m, const char *name, int64_t value);
/* Extra top-level fields (options, tokenizer fingerprint, ...). Steals v. */
void qn_manifest_set(struct qn_manifest *m, const char *key, json_t *v);

/* Stamps the end time and writes the manifest atomically. */
int qn_manifest_write(struct qn_manifest *m, const char *path, struct qn_err *e);

/*
 * The conventional manifest path for an output: "<output>.manifest.json";
 * NULL when output exists and is not a regular file (a device such as
 * /dev/null, a FIFO: nothing is written beside it) or memory ran out.
 */
char *qn_manifest_path_for(const char *output);

#endif
