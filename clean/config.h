/*
 * config.h - quern-clean's --config file: which steps run, in which order,
 * with which parameters. Also the YAML tree reader that the rules file
 * (rules.h) shares.
 *
 *   steps:
 *     - normalize: {form: nfc}
 *     - exact_dedup              # no parameters
 *     - near_dedup: {bands: 14, rows: 8}
 *
 * The file is read (libyaml) into a generic tree of struct cn_val: scalars
 * (kept as text; quoted ones remember it, so '8' and 'true' stay strings),
 * lists and maps (ordered; duplicate keys are an error). Every value keeps
 * its file:line:column (1-based, where the value starts), so the tool's
 * messages read "clean.yaml:4:12: 'bands' must be a positive integer". This
 * module knows no step names: the tool checks each step's keys
 * (cn_check_keys) and reads them with the typed getters cn_get_*.
 *
 * Untrusted input is bounded: at most CN_CONFIG_MAX_BYTES of text, nesting
 * at most CN_CONFIG_MAX_DEPTH deep, at most CN_CONFIG_MAX_NODES values;
 * aliases (*x) are refused, so no alias bomb can expand. Errors, YAML
 * syntax errors included, come back in struct qn_err as
 * "file:line:column: message".
 *
 * Ownership: cn_config_init / cn_config_release for the caller's struct;
 * everything it points to is its own. Values are read-only for the getters;
 * cn_config_add_step and cn_set_* edit it (for defaults and command-line
 * flags), and cn_config_print writes the result back as YAML.
 */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

#include <stddef.h>

struct qn_buf;
struct qn_err;

#define CN_CONFIG_MAX_BYTES (1u << 20)
#define CN_CONFIG_MAX_DEPTH 32
#define CN_CONFIG_MAX_NODES 100000

enum cn_val_type {
	CN_NULL,   /* "~", "null" or nothing */
	CN_SCALAR, /* text in s */
	CN_LIST,   /* items v[0..n) */
	CN_MAP,    /* entries v[0..n), each with its key */
};

struct cn_val {
	enum cn_val_type type;
	char *s;          /* CN_SCALAR: the text (NUL-terminated; may hold NULs) */
	size_t slen;      /* its length */
	int quoted;       /* CN_SCALAR: was quoted or a block scalar: never a number/bool */
	char *key;        /* set on a map's entries */
	struct cn_val *v; /* CN_LIST items, CN_MAP entries */
	size_t n;
	const char *file; /* where it was read; the file name string is the config's */
	unsigned line, col; /* 1-based; 0 when set by the program */
	unsigned kline, kcol; /* a map entry's key */
};

/* Parses YAML text into *root (caller-owned, cn_val_release). 0 or -1. */
int cn_yaml_parse(const char *text, size_t len, const char *file, struct cn_val *root,
		  struct qn_err *e);
/* Reads path (at most CN_CONFIG_MAX_BYTES) and parses it; file = path. */
int cn_yaml_load(const char *path, struct cn_val *root, struct qn_err *e);
void cn_val_release(struct cn_val *v);

/* The entry of map called key, or NULL (also when map is not a map). */
const struct cn_val *cn_val_get(const struct cn_val *map, const char *key);

/*
 * "file:line:col: " for v into buf (empty when v has no place); the typed
 * getters use it.
 */
const char *cn_val_where(const struct cn_val *v, char *buf, size_t size);

/*
 * Typed getters. Each looks key up in map and returns 0 when it is absent
 * (or null: *out untouched, so set the default first), 1 when *out was set,
 * -1 with e filled when the value has the wrong type or range:
 * "clean.yaml:4:12: 'bands' must be a positive integer".
 */
int cn_get_int(const struct cn_val *map, const char *key, long min, long max, long *out,
	       struct qn_err *e);
int cn_get_double(const struct cn_val *map, const char *key, double min, double max, double *out,
		  struct qn_err *e);
/* true/false, yes/no, on/off (unquoted, any case). */
int cn_get_bool(const struct cn_val *map, const char *key, int *out, struct qn_err *e);
/* Any scalar (numbers too); *out points into the tree. */
int cn_get_str(const struct cn_val *map, const char *key, const char **out, struct qn_err *e);
/* One of choices (NULL-terminated); *out is its index. */
int cn_get_choice(const struct cn_val *map, const char *key, const char *const *choices, int *out,
		  struct qn_err *e);
/*
 * A list of scalars, or one scalar taken as a list of one. *out is a
 * malloc'd array of *n pointers into the tree: free() the array only.
 */
int cn_get_strlist(const struct cn_val *map, const char *key, const char ***out, size_t *n,
		   struct qn_err *e);
/* A nested map (e.g. c4: {bad_words: w.txt}); *out points into the tree. */
int cn_get_map(const struct cn_val *map, const char *key, const struct cn_val **out,
	       struct qn_err *e);

/*
 * -1 with "file:line:col: unknown key 'bandz' in near_dedup" for the first
 * key of map not in known (NULL-terminated); what names the map. 0 when
 * all are known (or map is null).
 */
int cn_check_keys(const struct cn_val *map, const char *const *known, const char *what,
		  struct qn_err *e);

/*
 * Setters for defaults and flags: replace key's value in map (a CN_MAP, or
 * a CN_NULL that becomes an empty map) or append it. 0, or -1 when out of
 * memory. A value that replaces one keeps its place (file:line:col), so
 * later messages about it still point into the file; an appended one has
 * none (line 0).
 */
int cn_set_str(struct cn_val *map, const char *key, const char *value);
int cn_set_int(struct cn_val *map, const char *key, long value);
int cn_set_double(struct cn_val *map, const char *key, double value);
int cn_set_bool(struct cn_val *map, const char *key, int value);
int cn_set_strlist(struct cn_val *map, const char *key, const char *const *values, size_t n);

struct cn_step {
	char *name;
	unsigned line, col; /* where the name is */
	struct cn_val params; /* CN_MAP (empty when none were given) */
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
