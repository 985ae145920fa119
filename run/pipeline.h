/*
 * pipeline.h - quern-run's pipeline file: stages, their commands, deps,
 * outs and params, resolved (variables interpolated, foreach expanded) and
 * ordered into a DAG.
 *
 * The file is YAML in the spirit of dvc.yaml (docs/run.md):
 *
 *   vars: {lang: en}                 # or a list of maps and YAML file names
 *   stages:
 *     clean:
 *       cmd: quern-clean --lang ${lang} -o clean.jsonl docs.jsonl
 *       deps: [docs.jsonl]
 *       outs: [clean.jsonl]          # or "- path: {persist: true}"
 *       params: [clean.threshold]    # keys of the params file
 *       wdir: .  env: {K: v}  retries: 2  timeout: 10m
 *       shards: 4                    # ${shard}, ${nshards} in cmd, deps, outs
 *       merge: cat part-*.stats > stats   # after all shards (outs without ${shard})
 *     shard:
 *       foreach: [a, b]              # or a map, or ${a_list}
 *       do: {cmd: "cp ${item}.txt out/${item}", deps: [...], outs: [...]}
 *
 * Every path is kept twice: as written (relative to the stage's wdir, where
 * the command runs) and normalized relative to the pipeline's folder, which
 * is what the DAG, the lock file and the catalog use. Errors come back as
 * "file:line:col: message".
 *
 * Ownership: rn_pipeline_parse / rn_pipeline_load fill a caller-owned
 * struct that rn_pipeline_release frees (also after a failed parse).
 */
#ifndef RN_PIPELINE_H
#define RN_PIPELINE_H

#include <stddef.h>

#include "ytree.h"

struct qn_err;

#define RN_MAX_STAGES 10000
#define RN_MAX_STRING (1u << 20) /* an interpolated string */

struct rn_path {
	char *path;  /* normalized, relative to the pipeline folder (or absolute) */
	char *decl;  /* as written, interpolated: relative to the stage's wdir */
	int persist; /* outs: kept in place while the stage runs (appended to) */
	long shard;  /* a sharded stage's path made from ${shard}: its shard; else -1 */
	const char *file;
	unsigned line, col;
};

struct rn_param {
	char *key;   /* dotted, e.g. train.lr */
	char *value; /* canonical text of the value (JSON for lists and maps) */
	unsigned line, col;
};

struct rn_stage {
	char *name; /* NAME, or NAME@item for foreach */
	char *cmd;
	char *wdir; /* normalized, relative to the pipeline folder; "." default */
	struct rn_path *deps, *outs;
	size_t ndeps, nouts;
	struct rn_param *params;
	size_t nparams;
	char **env; /* "NAME=value" */
	size_t nenv;
	long retries;	/* extra tries after a failure */
	double timeout; /* seconds; 0 = none */
	long shards;	/* `shards: N`: N tasks, cmd with ${shard} in 0..N-1; 0 = not sharded */
	char *merge;	/* a sharded stage's `merge:` command, run after its shards; or NULL */
	const char *file;
	unsigned line, col;  /* the stage's key */
	size_t *up, nup;     /* stages producing this one's deps */
	size_t *down, ndown; /* stages using this one's outs */
};

struct rn_pipeline {
	char *file;	   /* the pipeline file as named */
	char *dir;	   /* its folder, absolute */
	char *base;	   /* its file name without .yaml/.yml */
	char *params_file; /* the params file used (NULL: none) */
	struct rn_stage *stages;
	size_t n;
	size_t *order;		     /* a topological order of stage indices */
	struct qn_yval root, params; /* the parsed files (params: QN_YNULL if none) */
	struct qn_yval *vfiles;	     /* `vars` files read */
	char **vnames;		     /* their names (the trees point at them) */
	size_t nvfiles;
	const struct qn_yval **vmaps; /* every `vars` map, searched in order */
	size_t nvmaps;
};

void rn_pipeline_init(struct rn_pipeline *p);
void rn_pipeline_release(struct rn_pipeline *p);

/*
 * Reads the pipeline file and its params file (params_file, or params.yaml
 * beside the pipeline when that exists) and resolves it: 0 or -1.
 */
int rn_pipeline_load(const char *file, const char *params_file, struct rn_pipeline *p,
		     struct qn_err *e);

/*
 * Parses pipeline text with optional params text (NULL: none): resolves
 * stages, paths and the DAG; touches no file except `vars` files, read
 * relative to dir. 0 or -1.
 */
int rn_pipeline_parse(const char *text, size_t len, const char *file, const char *dir,
		      const char *params_text, size_t params_len, const char *params_name,
		      struct rn_pipeline *p, struct qn_err *e);

/*
 * A sharded stage's command (or path) for one shard: every "${shard}"
 * becomes shard. malloc'd, NULL when out of memory.
 */
char *rn_shard_subst(const char *s, long shard);

/* The stage called name, or -1. */
long rn_pipeline_find(const struct rn_pipeline *p, const char *name);

/*
 * Lexically normalizes path joined to base ("a/./b/../c" -> "a/c"); "."
 * for nothing; an absolute path stays absolute. malloc'd, NULL when out of
 * memory.
 */
char *rn_path_join(const char *base, const char *path);

/* Whether inner is outer or inside it (as normalized paths). */
int rn_path_within(const char *inner, const char *outer);

#endif
