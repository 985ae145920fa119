/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "buf.h"
#include "err.h"

/* ---- the tree ---- */

void cn_val_release(struct cn_val *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		free(v->v[i].key);
		cn_val_release(&v->v[i]);
	}
	free(v->v);
	free(v->s);
	v->v = NULL;
	v->s = NULL;
	v->n = 0;
	v->slen = 0;
	v->type = CN_NULL;
}

/* Appends a zeroed child; capacity is the next power of two of n. */
static struct cn_val *val_push(struct cn_val *v)
{
	if (v->n == 0 || (v->n & (v->n - 1)) == 0) {
		size_t cap = v->n ? v->n * 2 : 1;
		struct cn_val *nv = realloc(v->v, cap * sizeof *nv);
		if (!nv)
			return NULL;
		v->v = nv;
	}
	struct cn_val *c = &v->v[v->n++];
	memset(c, 0, sizeof *c);
	c->file = v->file;
	return c;
}

const struct cn_val *cn_val_get(const struct cn_val *map, const char *key)
{
	if (!map || map->type != CN_MAP)
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

const char *cn_val_where(const struct cn_val *v, char *buf, size_t size)
{
	return where(v->file, v->line, v->col, buf, size);
}

/* ---- reading YAML ---- */

struct rd {
	yaml_parser_t p;
	const char *file, *text;
	size_t len, nodes;
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
	       (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int rd_node(struct rd *r, const yaml_event_t *ev, struct cn_val *v, int depth);

static int rd_children(struct rd *r, struct cn_val *v, int depth, yaml_event_type_t end)
{
	for (;;) {
		yaml_event_t ev, kev;
		if (rd_event(r, &ev) < 0)
			return -1;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		struct cn_val *c = val_push(v);
		if (!c) {
			yaml_event_delete(&ev);
			return qn_errf(r->e, "%s: out of memory", r->file);
		}
		if (v->type == CN_MAP) {
			kev = ev;
			if (kev.type != YAML_SCALAR_EVENT) {
				int rc = rd_err(r, &kev.start_mark, kev.type == YAML_ALIAS_EVENT
										 ? "aliases are not supported"
										 : "a map key must be a plain value");
				yaml_event_delete(&kev);
				return rc;
			}
			c->kline = (unsigned)kev.start_mark.line + 1;
			c->kcol = (unsigned)kev.start_mark.column + 1;
			const char *k = (const char *)kev.data.scalar.value;
			if (strlen(k) != kev.data.scalar.length || cn_val_get(v, k)) {
				char msg[160];
				snprintf(msg, sizeof msg, "%s key '%.100s'",
					 cn_val_get(v, k) ? "duplicate" : "NUL in", k);
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

static int rd_node(struct rd *r, const yaml_event_t *ev, struct cn_val *v, int depth)
{
	v->line = (unsigned)ev->start_mark.line + 1;
	v->col = (unsigned)ev->start_mark.column + 1;
	if (++r->nodes > CN_CONFIG_MAX_NODES)
		return rd_err(r, &ev->start_mark, "too many values");
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return rd_err(r, &ev->start_mark, "aliases are not supported");
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;
		v->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		if (!v->quoted && is_null_word(s, n)) {
			v->type = CN_NULL;
			return 0;
		}
		v->type = CN_SCALAR;
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
		if (depth >= CN_CONFIG_MAX_DEPTH) {
			char msg[64];
			snprintf(msg, sizeof msg, "nested deeper than %d levels", CN_CONFIG_MAX_DEPTH);
			return rd_err(r, &ev->start_mark, msg);
		}
		if (ev->type == YAML_SEQUENCE_START_EVENT) {
			v->type = CN_LIST;
			return rd_children(r, v, depth, YAML_SEQUENCE_END_EVENT);
		}
		v->type = CN_MAP;
		return rd_children(r, v, depth, YAML_MAPPING_END_EVENT);
	default:
		return rd_err(r, &ev->start_mark, "unexpected YAML event");
	}
}

/* stream-start, [document-start node document-end], stream-end. */
static int rd_stream(struct rd *r, struct cn_val *root)
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

int cn_yaml_parse(const char *text, size_t len, const char *file, struct cn_val *root,
		  struct qn_err *e)
{
	struct rd r = {.file = file ? file : "-", .text = text, .len = len, .e = e};

	memset(root, 0, sizeof *root);
	root->file = r.file;
	root->line = 1;
	root->col = 1;
	if (len > CN_CONFIG_MAX_BYTES)
		return qn_errf(e, "%s: larger than %u bytes", r.file, CN_CONFIG_MAX_BYTES);
	if (!yaml_parser_initialize(&r.p))
		return qn_errf(e, "%s: out of memory", r.file);
	yaml_parser_set_input_string(&r.p, (const unsigned char *)text, len);
	int rc = rd_stream(&r, root);
	yaml_parser_delete(&r.p);
	if (rc < 0)
		cn_val_release(root);
	return rc;
}

static int read_file(const char *path, char **text, size_t *len, struct qn_err *e)
{
	FILE *f = fopen(path, "rb");
	struct qn_buf b;
	char chunk[65536];
	size_t k;

	if (!f)
		return qn_errno(e, errno, "cannot open '%s'", path);
	qn_buf_init(&b, CN_CONFIG_MAX_BYTES);
	while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (qn_buf_add(&b, chunk, k) < 0) {
			fclose(f);
			qn_buf_release(&b);
			return qn_errf(e, "%s: larger than %u bytes", path, CN_CONFIG_MAX_BYTES);
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		qn_buf_release(&b);
		return qn_errf(e, "cannot read '%s'", path);
	}
	*text = qn_buf_detach(&b, len);
	return 0;
}

int cn_yaml_load(const char *path, struct cn_val *root, struct qn_err *e)
{
	char *text;
	size_t len;

	memset(root, 0, sizeof *root);
	if (read_file(path, &text, &len, e) < 0)
		return -1;
	int rc = cn_yaml_parse(text ? text : "", len, path, root, e);
	free(text);
	return rc;
}

/* ---- typed getters ---- */

static int bad(const struct cn_val *v, const char *key, struct qn_err *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bad(const struct cn_val *v, const char *key, struct qn_err *e, const char *fmt, ...)
{
	char w[512], m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s'%s' %s", cn_val_where(v, w, sizeof w), key, m);
}

/* The value of key: NULL when absent or null. */
static const struct cn_val *present(const struct cn_val *map, const char *key)
{
	const struct cn_val *v = cn_val_get(map, key);
	return v && v->type != CN_NULL ? v : NULL;
}

static int int_msg(const struct cn_val *v, const char *key, long min, long max, struct qn_err *e)
{
	if (min == LONG_MIN && max == LONG_MAX)
		return bad(v, key, e, "must be an integer");
	if (max == LONG_MAX)
		return min == 1   ? bad(v, key, e, "must be a positive integer")
		       : min == 0 ? bad(v, key, e, "must be a non-negative integer")
				  : bad(v, key, e, "must be an integer of at least %ld", min);
	return bad(v, key, e, "must be an integer from %ld to %ld", min, max);
}

int cn_get_int(const struct cn_val *map, const char *key, long min, long max, long *out,
	       struct qn_err *e)
{
	const struct cn_val *v = present(map, key);
	char *end;

	if (!v)
		return 0;
	if (v->type != CN_SCALAR || v->quoted || !v->slen || strlen(v->s) != v->slen)
		return int_msg(v, key, min, max, e);
	errno = 0;
	long x = strtol(v->s, &end, 10);
	if (errno || *end || x < min || x > max)
		return int_msg(v, key, min, max, e);
	*out = x;
	return 1;
}

int cn_get_double(const struct cn_val *map, const char *key, double min, double max, double *out,
		  struct qn_err *e)
{
	const struct cn_val *v = present(map, key);
	char *end;

	if (!v)
		return 0;
	if (v->type == CN_SCALAR && !v->quoted && v->slen && strlen(v->s) == v->slen) {
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

int cn_get_bool(const struct cn_val *map, const char *key, int *out, struct qn_err *e)
{
	const struct cn_val *v = present(map, key);

	if (!v)
		return 0;
	int b = v->type == CN_SCALAR && !v->quoted ? bool_word(v->s) : -1;
	if (b < 0)
		return bad(v, key, e, "must be true or false");
	*out = b;
	return 1;
}

int cn_get_str(const struct cn_val *map, const char *key, const char **out, struct qn_err *e)
{
	const struct cn_val *v = present(map, key);

	if (!v)
		return 0;
	if (v->type != CN_SCALAR)
		return bad(v, key, e, "must be a string");
	*out = v->s;
	return 1;
}

int cn_get_choice(const struct cn_val *map, const char *key, const char *const *choices, int *out,
		  struct qn_err *e)
{
	const struct cn_val *v = present(map, key);
	char list[400] = "";
	size_t k = 0;

	if (!v)
		return 0;
	for (int i = 0; choices[i]; i++) {
		if (v->type == CN_SCALAR && !strcmp(v->s, choices[i])) {
			*out = i;
			return 1;
		}
		int w = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", choices[i]);
		if (w > 0 && (size_t)w < sizeof list - k)
			k += (size_t)w;
	}
	return bad(v, key, e, "must be one of: %s", list);
}

int cn_get_strlist(const struct cn_val *map, const char *key, const char ***out, size_t *n,
		   struct qn_err *e)
{
	const struct cn_val *v = present(map, key);

	if (!v)
		return 0;
	size_t k = v->type == CN_LIST ? v->n : 1;
	if (v->type == CN_MAP)
		return bad(v, key, e, "must be a list of strings");
	for (size_t i = 0; v->type == CN_LIST && i < k; i++)
		if (v->v[i].type != CN_SCALAR)
			return bad(&v->v[i], key, e, "must be a list of strings");
	const char **a = malloc((k ? k : 1) * sizeof *a);
	if (!a)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < k; i++)
		a[i] = v->type == CN_LIST ? v->v[i].s : v->s;
	*out = a;
	*n = k;
	return 1;
}

int cn_get_map(const struct cn_val *map, const char *key, const struct cn_val **out,
	       struct qn_err *e)
{
	const struct cn_val *v = present(map, key);

	if (!v)
		return 0;
	if (v->type != CN_MAP)
		return bad(v, key, e, "must be a map");
	*out = v;
	return 1;
}

int cn_check_keys(const struct cn_val *map, const char *const *known, const char *what,
		  struct qn_err *e)
{
	char w[512];

	if (!map || map->type != CN_MAP)
		return 0;
	for (size_t i = 0; i < map->n; i++) {
		const struct cn_val *kv = &map->v[i];
		int ok = 0;
		for (int j = 0; known[j] && kv->key && !ok; j++)
			ok = !strcmp(kv->key, known[j]);
		if (!ok)
			return qn_errf(e, "%sunknown key '%s' in %s",
				       where(kv->file, kv->kline, kv->kcol, w, sizeof w), kv->key, what);
	}
	return 0;
}

/* ---- setters ---- */

static struct cn_val *slot(struct cn_val *map, const char *key)
{
	if (map->type == CN_NULL) {
		cn_val_release(map);
		map->type = CN_MAP;
	}
	if (map->type != CN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		if (map->v[i].key && !strcmp(map->v[i].key, key)) {
			struct cn_val *v = &map->v[i];
			/* The new value keeps the old one's place, so a message
			 * about it still points into the file. */
			cn_val_release(v);
			v->quoted = 0;
			return v;
		}
	}
	char *k = strdup(key);
	struct cn_val *v = k ? val_push(map) : NULL;
	if (!v) {
		free(k);
		return NULL;
	}
	v->key = k;
	return v;
}

static int set_scalar(struct cn_val *v, const char *s, int quoted)
{
	if (!v || !(v->s = strdup(s)))
		return -1;
	v->type = CN_SCALAR;
	v->slen = strlen(s);
	v->quoted = quoted;
	return 0;
}

/* Quoted when plain text would read back as something else. */
static int needs_quotes(const char *s)
{
	char *end;
	if (is_null_word(s, strlen(s)) || bool_word(s) >= 0)
		return 1;
	(void)strtod(s, &end);
	return end != s && !*end;
}

int cn_set_str(struct cn_val *map, const char *key, const char *value)
{
	return set_scalar(slot(map, key), value, needs_quotes(value));
}

int cn_set_int(struct cn_val *map, const char *key, long value)
{
	char t[32];
	snprintf(t, sizeof t, "%ld", value);
	return set_scalar(slot(map, key), t, 0);
}

int cn_set_double(struct cn_val *map, const char *key, double value)
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

int cn_set_bool(struct cn_val *map, const char *key, int value)
{
	return set_scalar(slot(map, key), value ? "true" : "false", 0);
}

int cn_set_strlist(struct cn_val *map, const char *key, const char *const *values, size_t n)
{
	struct cn_val *v = slot(map, key);
	if (!v)
		return -1;
	v->type = CN_LIST;
	for (size_t i = 0; i < n; i++) {
		struct cn_val *c = val_push(v);
		if (!c || set_scalar(c, values[i], needs_quotes(values[i])) < 0)
			return -1;
	}
	return 0;
}

/* ---- the config ---- */

void cn_config_init(struct cn_config *c, const char *file)
{
	memset(c, 0, sizeof *c);
	c->file = strdup(file ? file : "-");
}

void cn_config_release(struct cn_config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->steps[i].name);
		cn_val_release(&c->steps[i].params);
	}
	free(c->steps);
	free(c->file);
	memset(c, 0, sizeof *c);
}

struct cn_step *cn_config_add_step(struct cn_config *c, const char *name)
{
	struct cn_step *v = realloc(c->steps, (c->n + 1) * sizeof *v);
	if (!v)
		return NULL;
	c->steps = v;
	struct cn_step *s = &c->steps[c->n];
	memset(s, 0, sizeof *s);
	if (!(s->name = strdup(name)))
		return NULL;
	s->params.type = CN_MAP;
	s->params.file = c->file;
	c->n++;
	return s;
}

struct cn_step *cn_config_find(struct cn_config *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->steps[i].name, name))
			return &c->steps[i];
	return NULL;
}

static int take_step(struct cn_config *c, struct cn_val *item, struct qn_err *e)
{
	char w[512];
	const char *name;
	unsigned line, col;
	struct cn_val *params = NULL;

	if (item->type == CN_SCALAR) {
		name = item->s;
		line = item->line;
		col = item->col;
	} else if (item->type == CN_MAP && item->n == 1) {
		name = item->v[0].key;
		line = item->v[0].kline;
		col = item->v[0].kcol;
		params = &item->v[0];
		if (params->type != CN_MAP && params->type != CN_NULL)
			return qn_errf(e, "%sthe parameters of '%s' must be a map",
				       cn_val_where(params, w, sizeof w), name);
	} else {
		return qn_errf(e, "%sa step must be a name or 'name: {parameters}'",
			       cn_val_where(item, w, sizeof w));
	}
	if (!*name || strlen(name) > 64 || (item->type == CN_SCALAR && strlen(name) != item->slen))
		return qn_errf(e, "%sbad step name", where(c->file, line, col, w, sizeof w));
	struct cn_step *s = cn_config_add_step(c, name);
	if (!s)
		return qn_errf(e, "%s: out of memory", c->file);
	s->line = line;
	s->col = col;
	if (params && params->type == CN_MAP) {
		free(params->key);
		s->params = *params;
		s->params.key = NULL;
		memset(params, 0, sizeof *params);
	} else if (params) {
		s->params.line = params->line;
		s->params.col = params->col;
	}
	return 0;
}

static int take_config(struct cn_config *c, struct cn_val *root, struct qn_err *e)
{
	char w[512];
	static const char *const top[] = {"steps", NULL};

	if (root->type != CN_MAP)
		return qn_errf(e, "%sexpected a map with 'steps'", cn_val_where(root, w, sizeof w));
	if (cn_check_keys(root, top, "the config", e) < 0)
		return -1;
	const struct cn_val *st = cn_val_get(root, "steps");
	if (!st)
		return qn_errf(e, "%s'steps' is missing", cn_val_where(root, w, sizeof w));
	if (st->type == CN_NULL)
		return 0;
	if (st->type != CN_LIST)
		return qn_errf(e, "%s'steps' must be a list", cn_val_where(st, w, sizeof w));
	for (size_t i = 0; i < st->n; i++)
		if (take_step(c, &st->v[i], e) < 0)
			return -1;
	return 0;
}

int cn_config_parse(struct cn_config *c, const char *text, size_t len, const char *file,
		    struct qn_err *e)
{
	struct cn_val root;

	cn_config_release(c);
	cn_config_init(c, file);
	if (!c->file)
		return qn_errf(e, "out of memory");
	if (cn_yaml_parse(text, len, c->file, &root, e) < 0)
		return -1;
	int rc = take_config(c, &root, e);
	cn_val_release(&root);
	if (rc < 0) {
		char *f = c->file;
		c->file = NULL;
		cn_config_release(c);
		c->file = f;
	}
	return rc;
}

int cn_config_load(struct cn_config *c, const char *path, struct qn_err *e)
{
	char *text;
	size_t len;

	if (read_file(path, &text, &len, e) < 0)
		return -1;
	int rc = cn_config_parse(c, text ? text : "", len, path, e);
	free(text);
	return rc;
}

/* ---- writing YAML ---- */

static int emit_out(void *data, unsigned char *buf, size_t size)
{
	return qn_buf_add(data, buf, size) == 0;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n, int quoted)
{
	yaml_event_t ev;
	yaml_scalar_style_t st = quoted ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, st))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_val(yaml_emitter_t *em, const struct cn_val *v)
{
	yaml_event_t ev;

	switch (v->type) {
	case CN_NULL:
		return emit_scalar(em, "null", 4, 0);
	case CN_SCALAR:
		return emit_scalar(em, v->s, v->slen, v->quoted);
	case CN_LIST:
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		for (size_t i = 0; i < v->n; i++)
			if (emit_val(em, &v->v[i]) < 0)
				return -1;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	case CN_MAP:
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		for (size_t i = 0; i < v->n; i++)
			if (emit_scalar(em, v->v[i].key, strlen(v->v[i].key),
					needs_quotes(v->v[i].key)) < 0 ||
			    emit_val(em, &v->v[i]) < 0)
				return -1;
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	return -1;
}

static int emit_config(yaml_emitter_t *em, const struct cn_config *c)
{
	yaml_event_t ev;

	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(em, &ev))
		return -1;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(em, &ev))
		return -1;
	if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
	    !yaml_emitter_emit(em, &ev) || emit_scalar(em, "steps", 5, 0) < 0)
		return -1;
	if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
	    !yaml_emitter_emit(em, &ev))
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		const struct cn_step *s = &c->steps[i];
		if (!s->params.n) {
			if (emit_scalar(em, s->name, strlen(s->name), needs_quotes(s->name)) < 0)
				return -1;
			continue;
		}
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev) ||
		    emit_scalar(em, s->name, strlen(s->name), needs_quotes(s->name)) < 0 ||
		    emit_val(em, &s->params) < 0)
			return -1;
		yaml_mapping_end_event_initialize(&ev);
		if (!yaml_emitter_emit(em, &ev))
			return -1;
	}
	yaml_sequence_end_event_initialize(&ev);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	yaml_mapping_end_event_initialize(&ev);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	yaml_document_end_event_initialize(&ev, 1);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	yaml_stream_end_event_initialize(&ev);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	return yaml_emitter_flush(em) ? 0 : -1;
}

int cn_config_print(const struct cn_config *c, struct qn_buf *out)
{
	yaml_emitter_t em;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, emit_out, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_emitter_set_indent(&em, 2);
	int rc = emit_config(&em, c);
	yaml_emitter_delete(&em);
	return rc;
}
