/*
 * ytree.h - a YAML file read into a small tree, for the tools' config files
 * (quern-clean's --config and rules, quern-train sweep's search space).
 *
 * The text is read (libyaml) into a tree of struct qn_yval: scalars (kept as
 * text; quoted ones remember it, so '8' and 'true' stay strings), lists and
 * maps (ordered; duplicate keys are an error). Every value keeps its
 * file:line:column (1-based, where the value starts; a map entry also where
 * its key starts), so a tool's messages read "clean.yaml:4:12: 'bands' must
 * be a positive integer". The module knows no schema: the tool checks a
 * map's keys (qn_ycheck_keys) and reads them with the typed getters
 * qn_yget_*, or walks the tree itself.
 *
 * Untrusted input is bounded: at most QN_YAML_MAX_BYTES of text, nesting at
 * most QN_YAML_MAX_DEPTH deep, at most QN_YAML_MAX_NODES values (a caller
 * may ask for tighter limits); aliases (*x) are refused, so no alias bomb
 * can expand. Errors, YAML syntax errors included, come back in struct
 * qn_err as "file:line:column: message".
 *
 * Ownership: qn_yaml_parse / qn_yaml_load fill a caller-owned root that
 * qn_yval_release frees (a failed parse leaves nothing to free). Every
 * value's file points at the file name the caller passed, which must outlive
 * the tree. The getters only read; the setters qn_yset_* edit a tree (for
 * defaults and command-line flags).
 */
#ifndef QN_YTREE_H
#define QN_YTREE_H

#include <stddef.h>

struct qn_err;

#define QN_YAML_MAX_BYTES (1u << 20)
#define QN_YAML_MAX_DEPTH 32
#define QN_YAML_MAX_NODES 100000

enum qn_yval_type {
	QN_YNULL,   /* "~", "null" or nothing */
	QN_YSCALAR, /* text in s */
	QN_YLIST,   /* items v[0..n) */
	QN_YMAP,    /* entries v[0..n), each with its key */
};

struct qn_yval {
	enum qn_yval_type type;
	char *s;	   /* QN_YSCALAR: the text (NUL-terminated; may hold NULs) */
	size_t slen;	   /* its length */
	int quoted;	   /* QN_YSCALAR: was quoted or a block scalar: never a number/bool */
	char *key;	   /* set on a map's entries */
	struct qn_yval *v; /* QN_YLIST items, QN_YMAP entries */
	size_t n;
	const char *file;     /* where it was read (the caller's string) */
	unsigned line, col;   /* 1-based; 0 when set by the program */
	unsigned kline, kcol; /* a map entry's key */
};

/* Tighter limits: a field left 0 (or above the default) keeps the default. */
struct qn_yaml_limits {
	size_t max_bytes; /* of text */
	size_t max_nodes; /* values (keys not counted) */
	int max_depth;	  /* nested lists and maps */
};

/* Parses YAML text into *root (caller-owned, qn_yval_release). 0 or -1. */
int qn_yaml_parse(const char *text, size_t len, const char *file, struct qn_yval *root,
		  struct qn_err *e);
/* The same within lim (NULL: the defaults). */
int qn_yaml_parse_limited(const char *text, size_t len, const char *file,
			  const struct qn_yaml_limits *lim, struct qn_yval *root, struct qn_err *e);

/*
 * Reads path whole (at most max_bytes) into *text, a malloc'd copy of *len
 * bytes with a NUL after them (free() it). 0; -1 when the file is larger
 * ("path: larger than N bytes") or memory ran out; -2 when it cannot be
 * opened or read ("cannot open 'path': reason").
 */
int qn_yaml_read_file(const char *path, size_t max_bytes, char **text, size_t *len,
		      struct qn_err *e);
/*
 * Reads path (at most QN_YAML_MAX_BYTES) and parses it; file = path. 0; -1
 * when the content is bad or too large; -2 when the file cannot be read.
 */
int qn_yaml_load(const char *path, struct qn_yval *root, struct qn_err *e);
void qn_yval_release(struct qn_yval *v);

/* The entry of map called key, or NULL (also when map is not a map). */
const struct qn_yval *qn_yval_get(const struct qn_yval *map, const char *key);

/*
 * "file:line:col: " for v into buf (just "file: " when v has no line,
 * empty when it has no file); the typed getters use it.
 */
const char *qn_yval_where(const struct qn_yval *v, char *buf, size_t size);
/* The same for the key of the map entry v. */
const char *qn_yval_key_where(const struct qn_yval *v, char *buf, size_t size);

/* What v is, for messages: "nothing", "a value", "a list" or "a map". */
const char *qn_yval_type_name(const struct qn_yval *v);

/*
 * Typed getters. Each looks key up in map and returns 0 when it is absent
 * (or null: *out untouched, so set the default first), 1 when *out was set,
 * -1 with e filled when the value has the wrong type or range:
 * "clean.yaml:4:12: 'bands' must be a positive integer".
 */
int qn_yget_int(const struct qn_yval *map, const char *key, long min, long max, long *out,
		struct qn_err *e);
int qn_yget_double(const struct qn_yval *map, const char *key, double min, double max, double *out,
		   struct qn_err *e);
/* true/false, yes/no, on/off (unquoted, any case). */
int qn_yget_bool(const struct qn_yval *map, const char *key, int *out, struct qn_err *e);
/* Any scalar (numbers too); *out points into the tree. */
int qn_yget_str(const struct qn_yval *map, const char *key, const char **out, struct qn_err *e);
/* One of choices (NULL-terminated); *out is its index. */
int qn_yget_choice(const struct qn_yval *map, const char *key, const char *const *choices, int *out,
		   struct qn_err *e);
/*
 * A list of scalars, or one scalar taken as a list of one. *out is a
 * malloc'd array of *n pointers into the tree: free() the array only.
 */
int qn_yget_strlist(const struct qn_yval *map, const char *key, const char ***out, size_t *n,
		    struct qn_err *e);
/* A nested map (e.g. c4: {bad_words: w.txt}); *out points into the tree. */
int qn_yget_map(const struct qn_yval *map, const char *key, const struct qn_yval **out,
		struct qn_err *e);

/*
 * -1 with "file:line:col: unknown key 'bandz' in near_dedup" for the first
 * key of map not in known (NULL-terminated); what names the map. 0 when
 * all are known (or map is not a map).
 */
int qn_ycheck_keys(const struct qn_yval *map, const char *const *known, const char *what,
		   struct qn_err *e);

/*
 * Setters for defaults and flags: replace key's value in map (a QN_YMAP, or
 * a QN_YNULL that becomes an empty map) or append it. 0, or -1 when out of
 * memory (or map is a scalar or a list). A value that replaces one keeps its
 * place (file:line:col), so later messages about it still point into the
 * file; an appended one has none (line 0).
 */
int qn_yset_str(struct qn_yval *map, const char *key, const char *value);
int qn_yset_int(struct qn_yval *map, const char *key, long value);
int qn_yset_double(struct qn_yval *map, const char *key, double value);
int qn_yset_bool(struct qn_yval *map, const char *key, int value);
int qn_yset_strlist(struct qn_yval *map, const char *key, const char *const *values, size_t n);

/*
 * Whether s, written plain, would read back as something other than the
 * string s (null, a bool or a number), so a writer must quote it.
 */
int qn_yaml_needs_quotes(const char *s);

#endif
