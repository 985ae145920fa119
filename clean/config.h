/*
 * config.h - quern-clean's --config file: which steps run, in which order,
 * with which parameters.
 *
 *   steps:
 *     - normalize: {form: nfc}
 *     - exact_dedup              # no parameters
 *     - near_dedup: {bands: 14, rows: 8}
 *
 * The file is read with lib/ytree.h (which the rules file, rules.h, uses
 * too): a tree of struct qn_yval in which every value keeps its
 * file:line:column, so the tool's messages read "clean.yaml:4:12: 'bands'
 * must be a positive integer", within the tree's limits (at most
 * CN_CONFIG_MAX_BYTES of text; aliases refused). This module knows no step
 * names: the tool checks each step's keys (qn_ycheck_keys) and reads them
 * with the typed getters qn_yget_*. Errors, YAML syntax errors included,
 * come back in struct qn_err as "file:line:column: message".
 *
 * Ownership: cn_config_init / cn_config_release for the caller's struct;
 * everything it points to is its own (each step's parameters point at the
 * config's file name). Values are read-only for the getters;
 * cn_config_add_step and qn_yset_* edit it (for defaults and command-line
 * flags), and cn_config_print writes the result back as YAML.
 */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

#include <stddef.h>

#include "ytree.h"

struct qn_buf;
struct qn_err;

/* The most text a config (or rules) file may hold. */
#define CN_CONFIG_MAX_BYTES QN_YAML_MAX_BYTES

struct cn_step {
	char *name;
	unsigned line, col; /* where the name is */
	struct qn_yval params; /* QN_YMAP (empty when none were given) */
};

struct cn_config {
	char *file;
	struct cn_step *steps;
	size_t n;
};

void cn_config_init(struct cn_config *c, const char *file);
void cn_config_release(struct cn_config *c);

/*
 * Parses a config's text (any previous contents of c are released first):
 * a map with the one key "steps", a list whose items are a step name alone
 * or a map of one step name to its parameters (a map or nothing).
 */
int cn_config_parse(struct cn_config *c, const char *text, size_t len, const char *file,
		    struct qn_err *e);
int cn_config_load(struct cn_config *c, const char *path, struct qn_err *e);

/* The first step called name, or NULL. */
struct cn_step *cn_config_find(struct cn_config *c, const char *name);
/* Appends a step with no parameters; NULL when out of memory. */
struct cn_step *cn_config_add_step(struct cn_config *c, const char *name);

/*
 * Appends c as YAML to out, in the form cn_config_parse reads back to the
 * same config (each step's parameters in flow style on one line). 0, or -1
 * when out reached its maximum.
 */
int cn_config_print(const struct cn_config *c, struct qn_buf *out);

#endif
