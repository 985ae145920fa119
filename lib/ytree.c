/* ytree.c - see ytree.h. */
#include "ytree.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "buf.h"
#include "err.h"

/* ---- the tree ---- */

void qn_yval_release(struct qn_yval *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		free(v->v[i].key);
		qn_yval_release(&v->v[i]);
	}
	free(v->v);
	free(v->s);
	v->v = NULL;
	v->s = NULL;
	v->n = 0;
	v->slen = 0;
	v->type = QN_YNULL;
}

/* Appends a zeroed child; capacity is the next power of two of n. */
static struct qn_yval *val_push(struct qn_yval *v)
{
	if (v->n == 0 || (v->n & (v->n - 1)) == 0) {
		size_t cap = v->n ? v->n * 2 : 1;
		struct qn_yval *nv = realloc(v->v, cap * sizeof *nv);
		if (!nv)
			return NULL;
		v->v = nv;
	}
	struct qn_yval *c = &v->v[v->n++];
	memset(c, 0, sizeof *c);
	c->file = v->file;
	return c;
}

const struct qn_yval *qn_yval_get(const struct qn_yval *map, const char *key)
{
	if (!map || map->type != QN_YMAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (map->v[i].key && !strcmp(map->v[i].key, key))
			return &map->v[i];
	return NULL;
}

static const char *where(const char *file, unsigned line, unsigned col, char *buf, size_t size)
{
	if (file && line)
		snprintf(buf, size, "%s:%u:%u: ", file, line, col);
	else if (file)
		snprintf(buf, size, "%s: ", file);
	else
		buf[0] = 0;
	return buf;
}

const char *qn_yval_where(const struct qn_yval *v, char *buf, size_t size)
{
	return where(v->file, v->line, v->col, buf, size);
}

const char *qn_yval_key_where(const struct qn_yval *v, char *buf, size_t size)
{
	return where(v->file, v->kline, v->kcol, buf, size);
}

const char *qn_yval_type_name(const struct qn_yval *v)
{
	switch (v->type) {
	case QN_YNULL:
		return "nothing";
	case QN_YLIST:
		return "a list";
	case QN_YMAP:
		return "a map";
	default:
		return "a value";
	}
}

/* ---- reading YAML ---- */

struct rd {
	yaml_parser_t p;
	const char *file, *text;
	size_t len, nodes, max_nodes;
	int max_depth;
	struct qn_err *e;
};

static int rd_yaml_error(struct rd *r)
{
	yaml_parser_t *p = &r->p;
	size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;

	if (p->error == YAML_MEMORY_ERROR)
		return qn_errf(r->e, "%s: out of memory", r->file);
	if (p->error == YAML_READER_ERROR) {
		size_t off = p->problem_offset < r->len ? p->problem_offset : r->len;
		line = 1;
		col = 1;
		for (size_t i = 0; i < off; i++, col++)
			if (r->text[i] == '\n')
				line++, col = 0;
	}
	if (p->context)
		return qn_errf(r->e, "%s:%zu:%zu: %s (%s)", r->file, line, col,
			       p->problem ? p->problem : "syntax error", p->context);
	return qn_errf(r->e, "%s:%zu:%zu: %s", r->file, line, col,
		       p->problem ? p->problem : "syntax error");
}

static int rd_event(struct rd *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->p, ev))
		return rd_yaml_error(r);
	return 0;
}

static int rd_err(struct rd *r, const yaml_mark_t *m, const char *msg)
{
	return qn_errf(r->e, "%s:%zu:%zu: %s", r->file, m->line + 1, m->column + 1, msg);
}

static int is_null_word(const char *s, size_t n)
{
	return n == 0 || (n == 1 && s[0] == '~') ||
	       (n == 4 &&
		(!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int rd_node(struct rd *r, const yaml_event_t *ev, struct qn_yval *v, int depth);

static int rd_children(struct rd *r, struct qn_yval *v, int depth, yaml_event_type_t end)
{
	for (;;) {
		yaml_event_t ev, kev;
		if (rd_event(r, &ev) < 0)
			return -1;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		struct qn_yval *c = val_push(v);
		if (!c) {
			yaml_event_delete(&ev);
			return qn_errf(r->e, "%s: out of memory", r->file);
		}
		if (v->type == QN_YMAP) {
			kev = ev;
			if (kev.type != YAML_SCALAR_EVENT) {
				int rc = rd_err(r, &kev.start_mark,
						kev.type == YAML_ALIAS_EVENT
						    ? "aliases are not supported"
						    : "a map key must be a plain value");
				yaml_event_delete(&kev);
				return rc;
			}
			c->kline = (unsigned)kev.start_mark.line + 1;
			c->kcol = (unsigned)kev.start_mark.column + 1;
			const char *k = (const char *)kev.data.scalar.value;
			if (strlen(k) != kev.data.scalar.length || qn_yval_get(v, k)) {
				char msg[160];
				snprintf(msg, sizeof msg, "%s key '%.100s'",
					 qn_yval_get(v, k) ? "duplicate" : "NUL in", k);
				int rc = rd_err(r, &kev.start_mark, msg);
				yaml_event_delete(&kev);
				return rc;
			}
			c->key = strdup(k);
			yaml_event_delete(&kev);
			if (!c->key)
				return qn_errf(r->e, "%s: out of memory", r->file);
			if (rd_event(r, &ev) < 0)
				return -1;
		}
		int rc = rd_node(r, &ev, c, depth + 1);
		yaml_event_delete(&ev);
		if (rc < 0)
			return -1;
	}
}

static int rd_node(struct rd *r, const yaml_event_t *ev, struct qn_yval *v, int depth)
{
	v->line = (unsigned)ev->start_mark.line + 1;
	v->col = (unsigned)ev->start_mark.column + 1;
	if (++r->nodes > r->max_nodes)
		return rd_err(r, &ev->start_mark, "too many values");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return rd_err(r, &ev->start_mark, "aliases are not supported");
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;
		v->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		if (!v->quoted && is_null_word(s, n)) {
			v->type = QN_YNULL;
			return 0;
		}
		v->type = QN_YSCALAR;
		v->s = malloc(n + 1);
		if (!v->s)
			return qn_errf(r->e, "%s: out of memory", r->file);
		memcpy(v->s, s, n);
		v->s[n] = 0;
		v->slen = n;
		return 0;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (depth >= r->max_depth) {
			char msg[64];
			snprintf(msg, sizeof msg, "nested deeper than %d levels", r->max_depth);
			return rd_err(r, &ev->start_mark, msg);
		}
		if (ev->type == YAML_SEQUENCE_START_EVENT) {
			v->type = QN_YLIST;
			return rd_children(r, v, depth, YAML_SEQUENCE_END_EVENT);
		}
		v->type = QN_YMAP;
		return rd_children(r, v, depth, YAML_MAPPING_END_EVENT);
	default:
		return rd_err(r, &ev->start_mark, "unexpected YAML event");
	}
}

/* stream-start, [document-start node document-end], stream-end. */
static int rd_stream(struct rd *r, struct qn_yval *root)
{
	yaml_event_t ev;
	int docs = 0;

	for (;;) {
		if (rd_event(r, &ev) < 0)
			return -1;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (t == YAML_DOCUMENT_START_EVENT && docs++) {
			int rc = rd_err(r, &ev.start_mark, "only one YAML document is allowed");
			yaml_event_delete(&ev);
			return rc;
		}
		int rc = 0;
		if (t != YAML_STREAM_START_EVENT && t != YAML_DOCUMENT_START_EVENT &&
		    t != YAML_DOCUMENT_END_EVENT)
			rc = rd_node(r, &ev, root, 0);
		yaml_event_delete(&ev);
		if (rc < 0)
			return -1;
	}
}

/* lim's value when it is set and tighter than the default, else the default. */
static size_t tighter(size_t lim, size_t dflt)
{
	return lim && lim < dflt ? lim : dflt;
}

int qn_yaml_parse_limited(const char *text, size_t len, const char *file,
			  const struct qn_yaml_limits *lim, struct qn_yval *root, struct qn_err *e)
{
	struct rd r = {.file = file ? file : "-", .text = text, .len = len, .e = e};
	size_t max_bytes = tighter(lim ? lim->max_bytes : 0, QN_YAML_MAX_BYTES);

	r.max_nodes = tighter(lim ? lim->max_nodes : 0, QN_YAML_MAX_NODES);
	r.max_depth = lim && lim->max_depth > 0 && lim->max_depth < QN_YAML_MAX_DEPTH
			  ? lim->max_depth
			  : QN_YAML_MAX_DEPTH;
	memset(root, 0, sizeof *root);
	root->file = r.file;
	root->line = 1;
	root->col = 1;
	if (len > max_bytes)
		return qn_errf(e, "%s: larger than %zu bytes", r.file, max_bytes);
	if (!yaml_parser_initialize(&r.p))
		return qn_errf(e, "%s: out of memory", r.file);
	yaml_parser_set_input_string(&r.p, (const unsigned char *)text, len);
	int rc = rd_stream(&r, root);
	yaml_parser_delete(&r.p);
	if (rc < 0)
		qn_yval_release(root);
	return rc;
}

int qn_yaml_parse(const char *text, size_t len, const char *file, struct qn_yval *root,
		  struct qn_err *e)
{
	return qn_yaml_parse_limited(text, len, file, NULL, root, e);
}

int qn_yaml_read_file(const char *path, size_t max_bytes, char **text, size_t *len,
		      struct qn_err *e)
{
	FILE *f = fopen(path, "rb");
	struct qn_buf b;
	char chunk[65536];
	size_t k;

	*text = NULL;
	*len = 0;
	if (!f) {
		qn_errno(e, errno, "cannot open '%s'", path);
		return -2;
	}
	qn_buf_init(&b, max_bytes);
	while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (qn_buf_add(&b, chunk, k) < 0) {
			fclose(f);
			qn_buf_release(&b);
			return qn_errf(e, "%s: larger than %zu bytes", path, max_bytes);
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		qn_buf_release(&b);
		qn_errf(e, "cannot read '%s'", path);
		return -2;
	}
	*text = qn_buf_detach(&b, len);
	return *text ? 0 : qn_errf(e, "%s: out of memory", path);
}

int qn_yaml_load(const char *path, struct qn_yval *root, struct qn_err *e)
{
	char *text;
	size_t len;

	memset(root, 0, sizeof *root);
	int rc = qn_yaml_read_file(path, QN_YAML_MAX_BYTES, &text, &len, e);
	if (rc < 0)
		return rc;
	rc = qn_yaml_parse(text ? text : "", len, path, root, e);
	free(text);
	return rc;
}

/* ---- typed getters ---- */

static int bad(const struct qn_yval *v, const char *key, struct qn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(const struct qn_yval *v, const char *key, struct qn_err *e, const char *fmt, ...)
{
	char w[512], m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s'%s' %s", qn_yval_where(v, w, sizeof w), key, m);
}

/* The value of key: NULL when absent or null. */
static const struct qn_yval *present(const struct qn_yval *map, const char *key)
{
	const struct qn_yval *v = qn_yval_get(map, key);
	return v && v->type != QN_YNULL ? v : NULL;
}

static int int_msg(const struct qn_yval *v, const char *key, long min, long max, struct qn_err *e)
{
	if (min == LONG_MIN && max == LONG_MAX)
		return bad(v, key, e, "must be an integer");
	if (max == LONG_MAX)
		return min == 1	  ? bad(v, key, e, "must be a positive integer")
		       : min == 0 ? bad(v, key, e, "must be a non-negative integer")
				  : bad(v, key, e, "must be an integer of at least %ld", min);
	return bad(v, key, e, "must be an integer from %ld to %ld", min, max);
}

int qn_yget_int(const struct qn_yval *map, const char *key, long min, long max, long *out,
		struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);
	char *end;

	if (!v)
		return 0;
	if (v->type != QN_YSCALAR || v->quoted || !v->slen || strlen(v->s) != v->slen)
		return int_msg(v, key, min, max, e);
	errno = 0;
	long x = strtol(v->s, &end, 10);
	if (errno || *end || x < min || x > max)
		return int_msg(v, key, min, max, e);
	*out = x;
	return 1;
}

int qn_yget_double(const struct qn_yval *map, const char *key, double min, double max, double *out,
		   struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);
	char *end;

	if (!v)
		return 0;
	if (v->type == QN_YSCALAR && !v->quoted && v->slen && strlen(v->s) == v->slen) {
		errno = 0;
		double x = strtod(v->s, &end);
		if (!errno && !*end && isfinite(x) && x >= min && x <= max) {
			*out = x;
			return 1;
		}
	}
	return bad(v, key, e, "must be a number from %g to %g", min, max);
}

static int bool_word(const char *s)
{
	static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
	for (int i = 0; i < 3; i++) {
		if (!strcasecmp(s, t[i]))
			return 1;
		if (!strcasecmp(s, f[i]))
			return 0;
	}
	return -1;
}

int qn_yget_bool(const struct qn_yval *map, const char *key, int *out, struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);

	if (!v)
		return 0;
	int b = v->type == QN_YSCALAR && !v->quoted ? bool_word(v->s) : -1;
	if (b < 0)
		return bad(v, key, e, "must be true or false");
	*out = b;
	return 1;
}

int qn_yget_str(const struct qn_yval *map, const char *key, const char **out, struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);

	if (!v)
		return 0;
	if (v->type != QN_YSCALAR)
		return bad(v, key, e, "must be a string");
	*out = v->s;
	return 1;
}

int qn_yget_choice(const struct qn_yval *map, const char *key, const char *const *choices, int *out,
		   struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);
	char list[400] = "";
	size_t k = 0;

	if (!v)
		return 0;
	for (int i = 0; choices[i]; i++) {
		if (v->type == QN_YSCALAR && !strcmp(v->s, choices[i])) {
			*out = i;
			return 1;
		}
		int w = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", choices[i]);
		if (w > 0 && (size_t)w < sizeof list - k)
			k += (size_t)w;
	}
	return bad(v, key, e, "must be one of: %s", list);
}

int qn_yget_strlist(const struct qn_yval *map, const char *key, const char ***out, size_t *n,
		    struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);

	if (!v)
		return 0;
	size_t k = v->type == QN_YLIST ? v->n : 1;
	if (v->type == QN_YMAP)
		return bad(v, key, e, "must be a list of strings");
	for (size_t i = 0; v->type == QN_YLIST && i < k; i++)
		if (v->v[i].type != QN_YSCALAR)
			return bad(&v->v[i], key, e, "must be a list of strings");
	const char **a = malloc((k ? k : 1) * sizeof *a);
	if (!a)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < k; i++)
		a[i] = v->type == QN_YLIST ? v->v[i].s : v->s;
	*out = a;
	*n = k;
	return 1;
}

int qn_yget_map(const struct qn_yval *map, const char *key, const struct qn_yval **out,
		struct qn_err *e)
{
	const struct qn_yval *v = present(map, key);

	if (!v)
		return 0;
	if (v->type != QN_YMAP)
		return bad(v, key, e, "must be a map");
	*out = v;
	return 1;
}

int qn_ycheck_keys(const struct qn_yval *map, const char *const *known, const char *what,
		   struct qn_err *e)
{
	char w[512];

	if (!map || map->type != QN_YMAP)
		return 0;
	for (size_t i = 0; i < map->n; i++) {
		const struct qn_yval *kv = &map->v[i];
		int ok = 0;
		for (int j = 0; known[j] && kv->key && !ok; j++)
			ok = !strcmp(kv->key, known[j]);
		if (!ok)
			return qn_errf(e, "%sunknown key '%s' in %s",
				       qn_yval_key_where(kv, w, sizeof w), kv->key, what);
	}
	return 0;
}

/* ---- setters ---- */

static struct qn_yval *slot(struct qn_yval *map, const char *key)
{
	if (map->type == QN_YNULL) {
		qn_yval_release(map);
		map->type = QN_YMAP;
	}
	if (map->type != QN_YMAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		if (map->v[i].key && !strcmp(map->v[i].key, key)) {
			struct qn_yval *v = &map->v[i];
			/* The new value keeps the old one's place, so a message
			 * about it still points into the file. */
			qn_yval_release(v);
			v->quoted = 0;
			return v;
		}
	}
	char *k = strdup(key);
	struct qn_yval *v = k ? val_push(map) : NULL;
	if (!v) {
		free(k);
		return NULL;
	}
	v->key = k;
	return v;
}

static int set_scalar(struct qn_yval *v, const char *s, int quoted)
{
	if (!v || !(v->s = strdup(s)))
		return -1;
	v->type = QN_YSCALAR;
	v->slen = strlen(s);
	v->quoted = quoted;
	return 0;
}

int qn_yaml_needs_quotes(const char *s)
{
	char *end;
	if (is_null_word(s, strlen(s)) || bool_word(s) >= 0)
		return 1;
	(void)strtod(s, &end);
	return end != s && !*end;
}

int qn_yset_str(struct qn_yval *map, const char *key, const char *value)
{
	return set_scalar(slot(map, key), value, qn_yaml_needs_quotes(value));
}

int qn_yset_int(struct qn_yval *map, const char *key, long value)
{
	char t[32];
	snprintf(t, sizeof t, "%ld", value);
	return set_scalar(slot(map, key), t, 0);
}

int qn_yset_double(struct qn_yval *map, const char *key, double value)
{
	char t[64];
	/* The shortest form that reads back to the same double: 0.3, not
	 * 0.29999999999999999. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(t, sizeof t, "%.*g", prec, value);
		if (strtod(t, NULL) == value)
			break;
	}
	/* Whole numbers as such: 10, not 1e+01. */
	if (strchr(t, 'e') && value == (double)(long long)value && value < 1e15 && value > -1e15)
		snprintf(t, sizeof t, "%.0f", value);
	return set_scalar(slot(map, key), t, 0);
}

int qn_yset_bool(struct qn_yval *map, const char *key, int value)
{
	return set_scalar(slot(map, key), value ? "true" : "false", 0);
}

int qn_yset_strlist(struct qn_yval *map, const char *key, const char *const *values, size_t n)
{
	struct qn_yval *v = slot(map, key);
	if (!v)
		return -1;
	v->type = QN_YLIST;
	for (size_t i = 0; i < n; i++) {
		struct qn_yval *c = val_push(v);
		if (!c || set_scalar(c, values[i], qn_yaml_needs_quotes(values[i])) < 0)
			return -1;
	}
	return 0;
}
