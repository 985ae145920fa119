/*
 * cardin.h - what quern-audit model-card and eu-summary read, and the
 * Markdown they write. Each input is recognised by its content, never its
 * name: a checkpoint's config.json, an adapter_config.json, metrics JSON
 * Lines (quern-train's metrics.jsonl), run manifests, quern-clean
 * statistics, token-shard manifests, scan and probe summaries, quern-audit
 * eval results (lm-evaluation-harness's layout), memorization and canary
 * exposure results, a quern-train training_state.safetensors (its
 * hyperparameters), and document JSON Lines (their URLs and sizes). A
 * checkpoint folder (one with config.json) gives its config, metrics,
 * run manifest, adapter and newest training state; another folder is
 * searched for *.manifest.json.
 *
 * Inputs come from disk and may be hostile: JSON files are bounded
 * (manifests.h), metrics and document lines are bounded in length and
 * count, and errors name the place ("FILE:LINE:COL: why"). Ownership: a
 * struct cd_inputs is caller-owned (cd_inputs_release frees what it holds);
 * the JSON values in it are its own references.
 */
#ifndef QN_AUDIT_CARDIN_H
#define QN_AUDIT_CARDIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "manifests.h"

#define CD_METRICS_MAX 1000000 /* metrics lines read */
#define CD_LINE_MAX (1u << 20) /* bytes of a metrics line */

/* One point of the training curve; NAN where the line had no value. */
struct cd_point {
	double step, loss, val_loss, tokens, lr;
};

struct cd_jsons {
	json_t **v;
	const char **name; /* the path each came from (borrowed from argv or owned in names) */
	size_t n;
};

/* A web domain's share of the documents: the EU summary's top domains. */
struct cd_domain {
	char *name;
	uint64_t docs, bytes;
};

struct cd_inputs {
	json_t *config, *adapter, *state_args; /* the last of each given */
	const char *config_name;
	struct cd_point *pts;
	size_t npts;
	struct am_manifest *runs;
	const char **run_name; /* the file each run manifest came from */
	size_t nruns;
	struct cd_jsons stats, shards, scans, evals, memos, canaries;
	/* Documents (--docs or the document files the manifests name). */
	struct cd_domain *dom;
	size_t ndom;
	uint64_t doc_docs, doc_bytes, doc_no_url, doc_files;
	char **owned; /* paths made here (folder contents), freed with the inputs */
	size_t nowned;
};

/*
 * Adds a file or folder. Errors are printed (the caller counts them) and
 * -1 returned; the other inputs stay.
 */
int cd_add(struct cd_inputs *in, const char *path);
/*
 * Reads a document JSON Lines file (.zst and .gz too) for its domains:
 * metadata.url's host, each document's text bytes. Lines without a URL
 * count apart; lines that are not JSON are skipped and counted in *bad.
 */
int cd_add_docs(struct cd_inputs *in, const char *path, uint64_t *bad);
/*
 * The document files the run manifests name as quern-ingest's outputs or
 * quern-clean's first input, that exist on disk: appended to *paths
 * (owned by in).
 */
size_t cd_manifest_docs(struct cd_inputs *in, const char ***paths);
void cd_inputs_release(struct cd_inputs *in);

/* The sum of a counter over the runs of a tool ("quern-tokenize"). */
int64_t cd_counter(const struct cd_inputs *in, const char *tool, const char *name);
size_t cd_runs_of(const struct cd_inputs *in, const char *tool);
/* An integer field (integer or real), def when absent. */
int64_t cd_int(const json_t *o, const char *k, int64_t def);
/* The parameter count of a GPT-2 config (the tied embedding once); 0 if unknown. */
int64_t cd_gpt2_params(const json_t *config);

/* ---- Markdown ---- */

struct cd_md {
	struct qn_buf b;
	int oom;
	const char *owner; /* "model owner", "provider": in the prompts */
};

void cd_md_init(struct cd_md *m, const char *owner);
void cd_md(struct cd_md *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text from the data, safe in a table cell or a line. */
void cd_md_text(struct cd_md *m, const char *s);
/* "> **To be answered by the OWNER:** question" */
void cd_md_prompt(struct cd_md *m, const char *question);
/* Writes the buffer to path (stdout for NULL) atomically; 0 or -1 (printed). */
int cd_md_write(struct cd_md *m, const char *path);
/* Writes a JSON value, indented, to path atomically; 0 or -1 (printed). */
int cd_json_write(json_t *v, const char *path);

#endif
