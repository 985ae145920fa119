/*
 * manifests.h - reading the JSON files quern-audit lineage and datasheet
 * take: run manifests (lib/manifest.h writes them), quern-clean statistics,
 * quern-audit scan summaries and token-shard directory manifests.
 *
 * The files come from disk and may be damaged or hostile: every reader
 * bounds the file size and the number of entries, checks every field's
 * type, and reports "FILE:LINE:COL: why" for JSON syntax errors and
 * "FILE: why" for a valid JSON value of the wrong shape. A struct
 * am_manifest is caller-owned: am_manifest_parse / am_manifest_load fill it,
 * am_manifest_release frees what it holds (also after a failed parse).
 */
#ifndef QN_AUDIT_MANIFESTS_H
#define QN_AUDIT_MANIFESTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct qn_err;

#define AM_FILE_MAX (64u << 20)	  /* largest JSON file read */
#define AM_ENTRIES_MAX (1u << 22) /* inputs + outputs of one manifest */
#define AM_PATH_MAX 4096

/* What a JSON file is, decided by its content, never by its name. */
enum am_kind {
	AM_UNKNOWN,
	AM_MANIFEST,	 /* a run manifest: tool, inputs, outputs */
	AM_CLEAN_STATS,	 /* quern-clean --stats */
	AM_SCAN_SUMMARY, /* quern-audit scan --summary */
	AM_SHARDS,	 /* a token-shard directory's manifest.json */
	AM_EVAL,	 /* quern-audit eval results (lm-evaluation-harness's layout) */
	AM_MEMORIZATION, /* quern-audit memorization results */
	AM_CANARY,	 /* quern-audit canary exposure results */
	AM_MODEL_CONFIG, /* a checkpoint's config.json (GPT2Config) */
	AM_ADAPTER,	 /* a LoRA adapter's adapter_config.json (PEFT) */
};

/* One recorded input or output. */
struct am_file {
	char *path;	 /* as recorded */
	int64_t size;	 /* -1: not recorded */
	char sha256[65]; /* lowercase hex; "" when not recorded */
};

struct am_manifest {
	json_t *root;				  /* the whole document, owned */
	const char *tool;			  /* borrowed from root; never NULL after a parse */
	const char *command;			  /* the subcommand (quern-train fit) or NULL */
	const char *version, *started, *finished; /* may be NULL */
	struct am_file *in, *out;
	size_t nin, nout;
};

/*
 * Reads a whole file (at most AM_FILE_MAX bytes) and parses it as JSON.
 * *out is a new reference. -1 with e filled ("FILE:LINE:COL: why" for
 * syntax errors) on failure.
 */
int am_json_load(const char *path, json_t **out, struct qn_err *e);
/* The same over a buffer; name is used in messages. */
int am_json_parse(const char *text, size_t n, const char *name, json_t **out, struct qn_err *e);

enum am_kind am_detect(const json_t *root);
const char *am_kind_name(enum am_kind k);

/*
 * Fills m from a parsed run manifest; takes a reference of its own to root.
 * -1 with "NAME: why" in e when root is not a well-formed manifest.
 */
int am_manifest_from_json(struct am_manifest *m, json_t *root, const char *name, struct qn_err *e);
int am_manifest_parse(struct am_manifest *m, const char *text, size_t n, const char *name,
		      struct qn_err *e);
int am_manifest_load(struct am_manifest *m, const char *path, struct qn_err *e);
void am_manifest_release(struct am_manifest *m);

/* A counter of the manifest ("counters"."name"); 0 when absent. */
int64_t am_counter(const struct am_manifest *m, const char *name);

/*
 * Appends to *paths (malloc'd strings; the caller frees them and the array)
 * every "*.manifest.json" file under dir, in name order, descending at most
 * 32 folders and not into hidden ones or symbolic links. -1 with e filled
 * when a folder cannot be read; the others are still searched.
 */
int am_find_manifests(const char *dir, char ***paths, size_t *n, struct qn_err *e);

/* 1 when s is 64 hexadecimal digits. */
int am_is_sha256(const char *s);

#endif
