/* state.c - see state.h. */
#include "state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "wr.h"

char *rn_lock_path(const struct rn_pipeline *p)
{
	size_t n = strlen(p->dir) + strlen(p->base) + 8;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s.lock", p->dir, p->base);
	return s;
}

char *rn_abs(const struct rn_pipeline *p, const char *path)
{
	return rn_path_join(p->dir, path);
}

json_t *rn_lock_load(const char *path, struct qn_err *e)
{
	json_error_t je;
	FILE *f = fopen(path, "rb");
	json_t *j;

	if (!f) {
		if (errno != ENOENT) {
			qn_errno(e, errno, "cannot open '%s'", path);
			return NULL;
		}
		j = json_pack("{s:i,s:{}}", "schema", 1, "stages");
		if (!j)
			qn_errf(e, "out of memory");
		return j;
	}
	j = json_loadf(f, 0, &je);
	fclose(f);
	if (!j) {
		qn_errf(e, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(j) || !json_is_object(json_object_get(j, "stages"))) {
		json_decref(j);
		qn_errf(e, "%s: not a quern-run lock file (no \"stages\" object)", path);
		return NULL;
	}
	return j;
}

int rn_lock_save(const char *path, json_t *lock, const struct rn_pipeline *p, struct qn_err *e)
{
	json_t *out = json_object(), *st = json_object(), *old = json_object_get(lock, "stages");

	if (!out || !st) {
		json_decref(out);
		json_decref(st);
		return qn_errf(e, "out of memory");
	}
	json_object_set_new(out, "schema", json_integer(1));
	for (size_t i = 0; i < p->n; i++) {
		json_t *x = json_object_get(old, p->stages[i].name);
		if (x)
			json_object_set(st, p->stages[i].name, x);
	}
	json_object_set_new(out, "stages", st);
	char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(out);
	if (!text)
		return qn_errf(e, "out of memory");
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps' NUL becomes the final newline */
	int rc = qn_write_file_atomic(path, text, n + 1, e);
	free(text);
	return rc;
}

json_t *rn_lock_get(json_t *lock, const char *stage)
{
	json_t *e = json_object_get(json_object_get(lock, "stages"), stage);
	return json_is_object(e) ? e : NULL;
}

int rn_lock_set(json_t *lock, const char *stage, json_t *entry)
{
	return json_object_set_new(json_object_get(lock, "stages"), stage, entry);
}

void rn_reasons_release(struct rn_reasons *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

int rn_reasons_add(struct rn_reasons *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	int k = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (k < 0)
		return -1;
	char **v = realloc(r->v, (r->n + 1) * sizeof *v);
	if (!v) {
		free(s);
		return -1;
	}
	r->v = v;
	r->v[r->n++] = s;
	return 0;
}

static json_t *find_path(json_t *list, const char *path)
{
	size_t i;
	json_t *x;

	json_array_foreach(list, i, x)
	{
		const char *p = json_string_value(json_object_get(x, "path"));
		if (p && !strcmp(p, path))
			return x;
	}
	return NULL;
}

static int same_hash(json_t *rec, const struct rn_hash *h)
{
	const char *sha = json_string_value(json_object_get(rec, "sha256"));
	return sha && h->exists && !strcmp(sha, h->sha256) &&
	       (json_int_t)h->size == json_integer_value(json_object_get(rec, "size"));
}

static int hash_all(const struct rn_pipeline *p, const struct rn_path *v, size_t n,
		    struct rn_hcache *c, struct rn_hash *h, struct qn_err *e)
{
	for (size_t i = 0; i < n; i++) {
		char *abs = rn_abs(p, v[i].path);
		if (!abs)
			return qn_errf(e, "out of memory");
		int rc = rn_hash_path(c, abs, &h[i], e);
		free(abs);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int rn_stage_check(const struct rn_pipeline *p, size_t si, json_t *entry, struct rn_hcache *c,
		   struct rn_hash *deps, struct rn_hash *outs, struct rn_reasons *r,
		   struct qn_err *e)
{
	const struct rn_stage *s = &p->stages[si];
	int bad = 0;

	if (hash_all(p, s->deps, s->ndeps, c, deps, e) < 0 ||
	    hash_all(p, s->outs, s->nouts, c, outs, e) < 0)
		return -1;
	for (size_t i = 0; i < s->ndeps; i++)
		if (!deps[i].exists)
			bad |= rn_reasons_add(r, "dependency '%s' is missing", s->deps[i].path);
	if (!entry)
		return rn_reasons_add(r, "never ran") | bad;
	const char *cmd = json_string_value(json_object_get(entry, "cmd"));
	if (!cmd || strcmp(cmd, s->cmd))
		bad |= rn_reasons_add(r, "command changed");
	json_t *ld = json_object_get(entry, "deps"), *lo = json_object_get(entry, "outs");
	json_t *lp = json_object_get(entry, "params");
	for (size_t i = 0; i < s->ndeps; i++) {
		json_t *x = find_path(ld, s->deps[i].path);
		if (!deps[i].exists)
			continue;
		if (!x)
			bad |= rn_reasons_add(r, "dependency '%s' is new", s->deps[i].path);
		else if (!same_hash(x, &deps[i]))
			bad |= rn_reasons_add(r, "dependency '%s' changed", s->deps[i].path);
	}
	size_t k;
	json_t *x;
	json_array_foreach(ld, k, x)
	{
		const char *path = json_string_value(json_object_get(x, "path"));
		size_t i;
		for (i = 0; path && i < s->ndeps; i++)
			if (!strcmp(path, s->deps[i].path))
				break;
		if (path && i == s->ndeps)
			bad |= rn_reasons_add(r, "dependency '%s' was removed", path);
	}
	for (size_t i = 0; i < s->nparams; i++) {
		const char *old = json_string_value(json_object_get(lp, s->params[i].key));
		if (!old)
			bad |= rn_reasons_add(r, "param '%s' is new", s->params[i].key);
		else if (strcmp(old, s->params[i].value))
			bad |= rn_reasons_add(r, "param '%s' changed: %.60s -> %.60s",
					      s->params[i].key, old, s->params[i].value);
	}
	const char *pk;
	json_object_foreach(lp, pk, x)
	{
		size_t i;
		for (i = 0; i < s->nparams; i++)
			if (!strcmp(pk, s->params[i].key))
				break;
		if (i == s->nparams)
			bad |= rn_reasons_add(r, "param '%s' was removed", pk);
	}
	for (size_t i = 0; i < s->nouts; i++) {
		x = find_path(lo, s->outs[i].path);
		if (!outs[i].exists)
			bad |= rn_reasons_add(r, "output '%s' is missing", s->outs[i].path);
		else if (!x)
			bad |= rn_reasons_add(r, "output '%s' is new", s->outs[i].path);
		else if (!s->outs[i].persist && !same_hash(x, &outs[i]))
			bad |= rn_reasons_add(r, "output '%s' changed", s->outs[i].path);
	}
	if (bad)
		return qn_errf(e, "out of memory");
	return 0;
}

static json_t *hash_json(const char *path, const struct rn_hash *h)
{
	json_t *o = json_pack("{s:s,s:s,s:I}", "path", path, "sha256", h->sha256, "size",
			      (json_int_t)h->size);
	if (o && h->dir)
		json_object_set_new(o, "nfiles", json_integer((json_int_t)h->nfiles));
	return o;
}

json_t *rn_lock_entry(const struct rn_stage *s, const struct rn_hash *deps,
		      const struct rn_hash *outs)
{
	json_t *o = json_object(), *d = json_array(), *pa = json_object(), *ou = json_array();

	if (!o || !d || !pa || !ou)
		goto fail;
	json_object_set_new(o, "cmd", json_string(s->cmd));
	for (size_t i = 0; i < s->ndeps; i++)
		json_array_append_new(d, hash_json(s->deps[i].path, &deps[i]));
	for (size_t i = 0; i < s->nparams; i++)
		json_object_set_new(pa, s->params[i].key, json_string(s->params[i].value));
	for (size_t i = 0; i < s->nouts; i++)
		json_array_append_new(ou, hash_json(s->outs[i].path, &outs[i]));
	json_object_set_new(o, "deps", d);
	json_object_set_new(o, "params", pa);
	json_object_set_new(o, "outs", ou);
	return o;
fail:
	json_decref(o);
	json_decref(d);
	json_decref(pa);
	json_decref(ou);
	return NULL;
}
