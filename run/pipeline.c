/* pipeline.c - see pipeline.h. */
#include "pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

void rn_pipeline_init(struct rn_pipeline *p)
{
	memset(p, 0, sizeof *p);
	p->root.type = QN_YNULL;
	p->params.type = QN_YNULL;
}

static void path_release(struct rn_path *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].decl);
	}
	free(v);
}

static void stage_release(struct rn_stage *s)
{
	free(s->name);
	free(s->cmd);
	free(s->merge);
	free(s->wdir);
	path_release(s->deps, s->ndeps);
	path_release(s->outs, s->nouts);
	for (size_t i = 0; i < s->nparams; i++) {
		free(s->params[i].key);
		free(s->params[i].value);
	}
	free(s->params);
	for (size_t i = 0; i < s->nenv; i++)
		free(s->env[i]);
	free(s->env);
	free(s->up);
	free(s->down);
}

void rn_pipeline_release(struct rn_pipeline *p)
{
	for (size_t i = 0; i < p->n; i++)
		stage_release(&p->stages[i]);
	free(p->stages);
	free(p->order);
	qn_yval_release(&p->root);
	qn_yval_release(&p->params);
	for (size_t i = 0; i < p->nvfiles; i++) {
		qn_yval_release(&p->vfiles[i]);
		free(p->vnames[i]);
	}
	free(p->vfiles);
	free(p->vnames);
	free(p->vmaps);
	free(p->file);
	free(p->dir);
	free(p->base);
	free(p->params_file);
	rn_pipeline_init(p);
}

long rn_pipeline_find(const struct rn_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->stages[i].name, name))
			return (long)i;
	return -1;
}

char *rn_path_join(const char *base, const char *path)
{
	size_t bl = base ? strlen(base) : 0, pl = strlen(path);
	char *full = malloc(bl + pl + 2), *out;
	size_t n = 0, o = 0;
	int abs;

	if (!full)
		return NULL;
	if (path[0] == '/' || !bl) {
		memcpy(full, path, pl + 1);
	} else {
		memcpy(full, base, bl);
		full[bl] = '/';
		memcpy(full + bl + 1, path, pl + 1);
	}
	n = strlen(full);
	out = malloc(n + 2);
	if (!out) {
		free(full);
		return NULL;
	}
	abs = full[0] == '/';
	if (abs)
		out[o++] = '/';
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && full[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 0 || (len == 1 && full[i] == '.')) {
			/* nothing */
		} else if (len == 2 && full[i] == '.' && full[i + 1] == '.') {
			/* pop the last component unless there is none (or it is "..") */
			size_t start = o;
			while (start > (size_t)abs && out[start - 1] != '/')
				start--;
			int last_dots =
			    o - start == 2 && out[start] == '.' && out[start + 1] == '.';
			if (o > (size_t)abs && !last_dots) {
				o = start > (size_t)abs ? start - 1 : (size_t)abs;
			} else if (!abs) {
				if (o > 0)
					out[o++] = '/';
				out[o++] = '.';
				out[o++] = '.';
			}
		} else {
			if (o > (size_t)abs)
				out[o++] = '/';
			memcpy(out + o, full + i, len);
			o += len;
		}
		i = j + 1;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = 0;
	free(full);
	return out;
}

int rn_path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "."))
		return inner[0] != '/' && strncmp(inner, "../", 3) && strcmp(inner, "..");
	if (strncmp(inner, outer, n))
		return 0;
	return inner[n] == 0 || inner[n] == '/' || (n == 1 && outer[0] == '/');
}

/* --- interpolation -------------------------------------------------------------- */

struct ictx {
	const struct rn_pipeline *p;
	const struct qn_yval *item; /* foreach: the item (NULL: not in a foreach) */
	const char *key;	    /* foreach over a map: the key */
	const char *stage;
	long shards; /* a sharded stage: ${shard} stays, ${nshards} is this */
};

static const struct qn_yval *walk(const struct qn_yval *v, const char *rest)
{
	while (v && *rest) {
		const char *dot = strchr(rest, '.');
		size_t len = dot ? (size_t)(dot - rest) : strlen(rest);
		char part[256];
		if (len == 0 || len >= sizeof part)
			return NULL;
		memcpy(part, rest, len);
		part[len] = 0;
		if (v->type == QN_YMAP) {
			v = qn_yval_get(v, part);
		} else if (v->type == QN_YLIST) {
			char *end;
			errno = 0;
			unsigned long k = strtoul(part, &end, 10);
			if (*end || errno || !isdigit((unsigned char)part[0]) || k >= v->n)
				return NULL;
			v = &v->v[k];
		} else {
			return NULL;
		}
		rest = dot ? dot + 1 : rest + len;
	}
	return v;
}

/*
 * The value a ${name} names: foreach's item/key, then vars, then params.
 * *keyout is set instead for ${key}.
 */
static const struct qn_yval *lookup(const struct ictx *c, const char *name, const char **keyout)
{
	const char *dot = strchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	const char *rest = dot ? dot + 1 : "";
	char first[256];

	*keyout = NULL;
	if (len == 0 || len >= sizeof first)
		return NULL;
	memcpy(first, name, len);
	first[len] = 0;
	if (c->item) {
		if (!strcmp(first, "item"))
			return walk(c->item, rest);
		if (!strcmp(first, "key") && c->key && !dot) {
			*keyout = c->key;
			return NULL;
		}
	}
	for (size_t i = 0; i < c->p->nvmaps; i++) {
		const struct qn_yval *v = qn_yval_get(c->p->vmaps[i], first);
		if (v)
			return walk(v, rest);
	}
	if (c->p->params.type == QN_YMAP) {
		const struct qn_yval *v = qn_yval_get(&c->p->params, first);
		if (v)
			return walk(v, rest);
	}
	return NULL;
}

/* Interpolates the scalar v (what names it in messages) into a new string. */
static int interp(const struct ictx *c, const struct qn_yval *v, const char *what, char **out,
		  struct qn_err *e)
{
	struct qn_buf b;
	const char *s = v->s;
	size_t n = v->slen;
	char w[512];

	*out = NULL;
	qn_buf_init(&b, RN_MAX_STRING);
	for (size_t i = 0; i < n;) {
		if (s[i] == '\\' && i + 2 < n && s[i + 1] == '$' && s[i + 2] == '{') {
			if (qn_buf_add(&b, "${", 2) < 0)
				goto toolong;
			i += 3;
			continue;
		}
		if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
			const char *end = memchr(s + i + 2, '}', n - i - 2);
			if (!end) {
				qn_errf(e, "%sunclosed '${' in %s", qn_yval_where(v, w, sizeof w),
					what);
				goto fail;
			}
			size_t len = (size_t)(end - (s + i + 2));
			char name[256];
			const char *a = s + i + 2;
			while (len && isspace((unsigned char)*a))
				a++, len--;
			while (len && isspace((unsigned char)a[len - 1]))
				len--;
			if (len == 0 || len >= sizeof name) {
				qn_errf(e, "%sbad variable name in %s",
					qn_yval_where(v, w, sizeof w), what);
				goto fail;
			}
			memcpy(name, a, len);
			name[len] = 0;
			const char *key;
			const struct qn_yval *x = lookup(c, name, &key);
			if (c->shards && !strcmp(name, "shard")) {
				/* filled in per shard when the stage runs */
				if (qn_buf_adds(&b, "${shard}") < 0)
					goto toolong;
			} else if (c->shards && !strcmp(name, "nshards")) {
				char num[32];
				snprintf(num, sizeof num, "%ld", c->shards);
				if (qn_buf_adds(&b, num) < 0)
					goto toolong;
			} else if (key) {
				if (qn_buf_adds(&b, key) < 0)
					goto toolong;
			} else if (!x) {
				qn_errf(e, "%sundefined variable '%s' in %s",
					qn_yval_where(v, w, sizeof w), name, what);
				goto fail;
			} else if (x->type != QN_YSCALAR) {
				qn_errf(e, "%svariable '%s' in %s is %s, not a value",
					qn_yval_where(v, w, sizeof w), name, what,
					qn_yval_type_name(x));
				goto fail;
			} else if (qn_buf_add(&b, x->s, x->slen) < 0) {
				goto toolong;
			}
			i = (size_t)(end - s) + 1;
			continue;
		}
		if (qn_buf_add(&b, s + i, 1) < 0)
			goto toolong;
		i++;
	}
	if (b.len && memchr(b.data, 0, b.len)) {
		qn_errf(e, "%s%s holds a NUL byte", qn_yval_where(v, w, sizeof w), what);
		goto fail;
	}
	if (!(*out = qn_buf_detach(&b, NULL))) {
		qn_errf(e, "out of memory");
		goto fail;
	}
	return 0;
toolong:
	qn_errf(e, "%s%s is longer than %u bytes (or memory ran out)",
		qn_yval_where(v, w, sizeof w), what, RN_MAX_STRING);
fail:
	qn_buf_release(&b);
	return -1;
}

/* A scalar of the stage body, interpolated; 0 absent, 1 set, -1 error. */
static int get_str(const struct ictx *c, const struct qn_yval *body, const char *key, char **out,
		   struct qn_err *e)
{
	const struct qn_yval *v = qn_yval_get(body, key);
	char w[512], what[300];

	if (!v || v->type == QN_YNULL)
		return 0;
	if (v->type != QN_YSCALAR)
		return qn_errf(e, "%s'%s' of stage '%s' must be a value, not %s",
			       qn_yval_where(v, w, sizeof w), key, c->stage, qn_yval_type_name(v));
	snprintf(what, sizeof what, "'%s' of stage '%s'", key, c->stage);
	return interp(c, v, what, out, e) < 0 ? -1 : 1;
}

/* --- values ---------------------------------------------------------------------- */

static json_t *to_json(const struct qn_yval *v)
{
	json_t *j = NULL;

	switch (v->type) {
	case QN_YNULL:
		return json_null();
	case QN_YSCALAR:
		return json_stringn(v->s, v->slen);
	case QN_YLIST:
		j = json_array();
		for (size_t i = 0; j && i < v->n; i++) {
			json_t *x = to_json(&v->v[i]);
			if (!x || json_array_append_new(j, x) < 0) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	case QN_YMAP:
		j = json_object();
		for (size_t i = 0; j && i < v->n; i++) {
			json_t *x = to_json(&v->v[i]);
			if (!x || json_object_set_new(j, v->v[i].key, x) < 0) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	}
	return NULL;
}

/* The canonical text of a param's value: a scalar's text, else compact JSON. */
static char *value_text(const struct qn_yval *v)
{
	if (v->type == QN_YSCALAR)
		return strdup(v->s);
	json_t *j = to_json(v);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	return s;
}

static int parse_timeout(const struct qn_yval *v, const char *stage, double *out, struct qn_err *e)
{
	char w[512], *end;
	double x, mul = 1;

	if (v->type != QN_YSCALAR)
		goto bad;
	errno = 0;
	x = strtod(v->s, &end);
	if (end == v->s || errno)
		goto bad;
	if (!strcmp(end, "s") || !*end)
		mul = 1;
	else if (!strcmp(end, "m"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else if (!strcmp(end, "d"))
		mul = 86400;
	else
		goto bad;
	x *= mul;
	if (!(x > 0 && x <= 365 * 86400.0))
		goto bad;
	*out = x;
	return 0;
bad:
	return qn_errf(e,
		       "%s'timeout' of stage '%s' must be a duration: seconds, or a number "
		       "with s, m, h or d",
		       qn_yval_where(v, w, sizeof w), stage);
}

/* --- stages ---------------------------------------------------------------------- */

static int add_paths(const struct ictx *c, const struct qn_yval *body, const char *key,
		     const char *wdir, int outs, struct rn_path **vp, size_t *np, struct qn_err *e)
{
	const struct qn_yval *l = qn_yval_get(body, key);
	char w[512], what[300];

	*vp = NULL;
	*np = 0;
	if (!l || l->type == QN_YNULL)
		return 0;
	if (l->type == QN_YSCALAR) {
		/* one path written without a list */
	} else if (l->type != QN_YLIST) {
		return qn_errf(e, "%s'%s' of stage '%s' must be a list of paths",
			       qn_yval_where(l, w, sizeof w), key, c->stage);
	}
	size_t n = l->type == QN_YLIST ? l->n : 1;
	*vp = calloc(n ? n : 1, sizeof **vp);
	if (!*vp)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct qn_yval *it = l->type == QN_YLIST ? &l->v[i] : l;
		struct rn_path *pp;
		int persist = 0;
		struct qn_yval keyval;
		const struct qn_yval *pathv = it;
		if (outs && it->type == QN_YMAP && it->n == 1) {
			/* DVC's form: "- path: {persist: true}" */
			const struct qn_yval *opt = &it->v[0];
			static const char *const known[] = {"persist", "cache", "desc", NULL};
			if (opt->type != QN_YNULL && opt->type != QN_YMAP)
				return qn_errf(e, "%soptions of output '%s' must be a map",
					       qn_yval_where(opt, w, sizeof w), opt->key);
			if (qn_ycheck_keys(opt, known, "an output's options", e) < 0)
				return -1;
			if (qn_yget_bool(opt, "persist", &persist, e) < 0)
				return -1;
			memset(&keyval, 0, sizeof keyval);
			keyval.type = QN_YSCALAR;
			keyval.s = opt->key;
			keyval.slen = strlen(opt->key);
			keyval.file = opt->file;
			keyval.line = opt->kline;
			keyval.col = opt->kcol;
			pathv = &keyval;
		} else if (it->type != QN_YSCALAR) {
			return qn_errf(e, "%seach of '%s' of stage '%s' must be a path%s",
				       qn_yval_where(it, w, sizeof w), key, c->stage,
				       outs ? " (or \"path: {persist: true}\")" : "");
		}
		snprintf(what, sizeof what, "'%s' of stage '%s'", key, c->stage);
		char *decl;
		if (interp(c, pathv, what, &decl, e) < 0)
			return -1;
		/* a sharded stage's path with ${shard}: one path per shard */
		long nsh = c->shards && strstr(decl, "${shard}") ? c->shards : 0;
		if (nsh) {
			struct rn_path *nv =
			    realloc(*vp, (*np + (size_t)nsh + (n - i - 1) + 1) * sizeof **vp);
			if (!nv) {
				free(decl);
				return qn_errf(e, "out of memory");
			}
			*vp = nv;
		}
		for (long k = 0; k < (nsh ? nsh : 1); k++) {
			pp = &(*vp)[*np];
			memset(pp, 0, sizeof *pp);
			pp->persist = persist;
			pp->shard = nsh ? k : -1;
			pp->decl = nsh ? rn_shard_subst(decl, k) : decl;
			*np += 1;
			pp->file = pathv->file;
			pp->line = pathv->line;
			pp->col = pathv->col;
			if (!pp->decl)
				return qn_errf(e, "out of memory");
			if (!pp->decl[0])
				return qn_errf(e, "%sempty path in '%s' of stage '%s'",
					       qn_yval_where(pathv, w, sizeof w), key, c->stage);
			pp->path = rn_path_join(wdir, pp->decl);
			if (!pp->path)
				return qn_errf(e, "out of memory");
			if (outs && (!strcmp(pp->path, ".") || !strcmp(pp->path, "/")))
				return qn_errf(
				    e, "%soutput '%s' of stage '%s' is a whole folder tree",
				    qn_yval_where(pathv, w, sizeof w), pp->decl, c->stage);
		}
		if (nsh)
			free(decl);
	}
	return 0;
}

char *rn_shard_subst(const char *s, long shard)
{
	char num[32];
	size_t nl = (size_t)snprintf(num, sizeof num, "%ld", shard), k = 0;
	for (const char *q = s; (q = strstr(q, "${shard}")); q += 8)
		k++;
	char *out = malloc(strlen(s) + k * nl + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *q = s;;) {
		const char *m = strstr(q, "${shard}");
		size_t len = m ? (size_t)(m - q) : strlen(q);
		memcpy(o, q, len);
		o += len;
		if (!m)
			break;
		memcpy(o, num, nl);
		o += nl;
		q = m + 8;
	}
	*o = 0;
	return out;
}

static const char *const stage_keys[] = {"cmd", "deps",	   "outs",    "params", "wdir",
					 "env", "retries", "timeout", "desc",	"foreach",
					 "do",	"meta",	   "shards",  "merge",	NULL};

static int valid_stage_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 200)
		return 0;
	for (const unsigned char *q = (const unsigned char *)s; *q; q++)
		if (*q < 0x21 || *q == 0x7f || *q == '/')
			return 0;
	return 1;
}

static int build_stage(struct rn_pipeline *p, const struct qn_yval *entry,
		       const struct qn_yval *body, const char *name, const struct qn_yval *item,
		       const char *key, struct qn_err *e)
{
	struct rn_stage *s;
	struct ictx c = {p, item, key, name, 0};
	char w[512];
	const struct qn_yval *v;
	char *wdir = NULL;
	int r;

	if (p->n >= RN_MAX_STAGES)
		return qn_errf(e, "%smore than %d stages", qn_yval_key_where(entry, w, sizeof w),
			       RN_MAX_STAGES);
	if (!valid_stage_name(name))
		return qn_errf(e,
			       "%sbad stage name '%s' (no spaces, slashes or control characters)",
			       qn_yval_key_where(entry, w, sizeof w), name);
	if (rn_pipeline_find(p, name) >= 0)
		return qn_errf(e, "%stwo stages are called '%s'",
			       qn_yval_key_where(entry, w, sizeof w), name);
	struct rn_stage *ns = realloc(p->stages, (p->n + 1) * sizeof *ns);
	if (!ns)
		return qn_errf(e, "out of memory");
	p->stages = ns;
	s = &p->stages[p->n++];
	memset(s, 0, sizeof *s);
	s->file = entry->file;
	s->line = entry->kline;
	s->col = entry->kcol;
	if (!(s->name = strdup(name)))
		return qn_errf(e, "out of memory");
	if (body->type != QN_YMAP)
		return qn_errf(e, "%sstage '%s' must be a map (cmd, deps, outs, ...)",
			       qn_yval_where(body, w, sizeof w), name);
	if (qn_ycheck_keys(body, stage_keys, "a stage", e) < 0)
		return -1;
	if (qn_yval_get(body, "do"))
		return qn_errf(e, "%s'do' without 'foreach' in stage '%s'",
			       qn_yval_key_where(qn_yval_get(body, "do"), w, sizeof w), name);

	long nsh;
	if ((r = qn_yget_int(body, "shards", 1, 100000, &nsh, e)) < 0)
		return -1;
	s->shards = r ? nsh : 0;
	c.shards = s->shards;

	/* cmd: a string, or a list run one after another (set -e) */
	v = qn_yval_get(body, "cmd");
	if (!v || v->type == QN_YNULL)
		return qn_errf(e, "%sstage '%s' has no 'cmd'",
			       qn_yval_key_where(entry, w, sizeof w), name);
	if (v->type == QN_YLIST) {
		struct qn_buf b;
		qn_buf_init(&b, RN_MAX_STRING);
		if (qn_buf_adds(&b, "set -e\n") < 0)
			return qn_errf(e, "out of memory");
		for (size_t i = 0; i < v->n; i++) {
			char *one, what[300];
			if (v->v[i].type != QN_YSCALAR) {
				qn_buf_release(&b);
				return qn_errf(e, "%seach command of stage '%s' must be text",
					       qn_yval_where(&v->v[i], w, sizeof w), name);
			}
			snprintf(what, sizeof what, "'cmd' of stage '%s'", name);
			if (interp(&c, &v->v[i], what, &one, e) < 0) {
				qn_buf_release(&b);
				return -1;
			}
			int bad = qn_buf_adds(&b, one) < 0 || qn_buf_adds(&b, "\n") < 0;
			free(one);
			if (bad) {
				qn_buf_release(&b);
				return qn_errf(e, "%s'cmd' of stage '%s' is too long",
					       qn_yval_where(v, w, sizeof w), name);
			}
		}
		s->cmd = qn_buf_detach(&b, NULL);
		if (!s->cmd)
			return qn_errf(e, "out of memory");
	} else if ((r = get_str(&c, body, "cmd", &s->cmd, e)) < 0) {
		return -1;
	}
	if (!s->cmd || !s->cmd[strspn(s->cmd, " \t\r\n")])
		return qn_errf(e, "%s'cmd' of stage '%s' is empty", qn_yval_where(v, w, sizeof w),
			       name);

	if ((r = get_str(&c, body, "wdir", &wdir, e)) < 0)
		return -1;
	s->wdir = rn_path_join(NULL, wdir ? wdir : ".");
	free(wdir);
	if (!s->wdir)
		return qn_errf(e, "out of memory");

	if (add_paths(&c, body, "deps", s->wdir, 0, &s->deps, &s->ndeps, e) < 0 ||
	    add_paths(&c, body, "outs", s->wdir, 1, &s->outs, &s->nouts, e) < 0)
		return -1;

	/* params: keys of the params file */
	v = qn_yval_get(body, "params");
	if (v && v->type != QN_YNULL) {
		size_t n = v->type == QN_YLIST ? v->n : 1;
		if (v->type != QN_YLIST && v->type != QN_YSCALAR)
			return qn_errf(e, "%s'params' of stage '%s' must be a list of keys",
				       qn_yval_where(v, w, sizeof w), name);
		s->params = calloc(n ? n : 1, sizeof *s->params);
		if (!s->params)
			return qn_errf(e, "out of memory");
		for (size_t i = 0; i < n; i++) {
			const struct qn_yval *k = v->type == QN_YLIST ? &v->v[i] : v;
			if (k->type != QN_YSCALAR)
				return qn_errf(e, "%seach of 'params' of stage '%s' must be a key",
					       qn_yval_where(k, w, sizeof w), name);
			const struct qn_yval *x =
			    p->params.type == QN_YMAP ? walk(&p->params, k->s) : NULL;
			if (!x)
				return qn_errf(e, "%sparam '%s' of stage '%s' is not in %s",
					       qn_yval_where(k, w, sizeof w), k->s, name,
					       p->params_file ? p->params_file
							      : "a params file (none found)");
			struct rn_param *pa = &s->params[s->nparams++];
			pa->key = strdup(k->s);
			pa->value = value_text(x);
			pa->line = k->line;
			pa->col = k->col;
			if (!pa->key || !pa->value)
				return qn_errf(e,
					       "%sparam '%s' of stage '%s': out of memory or not "
					       "valid UTF-8",
					       qn_yval_where(k, w, sizeof w), k->s, name);
		}
	}

	v = qn_yval_get(body, "env");
	if (v && v->type != QN_YNULL) {
		if (v->type != QN_YMAP)
			return qn_errf(e, "%s'env' of stage '%s' must be a map of NAME: value",
				       qn_yval_where(v, w, sizeof w), name);
		s->env = calloc(v->n ? v->n : 1, sizeof *s->env);
		if (!s->env)
			return qn_errf(e, "out of memory");
		for (size_t i = 0; i < v->n; i++) {
			const struct qn_yval *x = &v->v[i];
			const char *k = x->key;
			int ok = (isalpha((unsigned char)k[0]) || k[0] == '_');
			for (const char *q = k; ok && *q; q++)
				ok = isalnum((unsigned char)*q) || *q == '_';
			if (!ok)
				return qn_errf(e,
					       "%sbad environment variable name '%s' in stage '%s'",
					       qn_yval_key_where(x, w, sizeof w), k, name);
			if (x->type != QN_YSCALAR && x->type != QN_YNULL)
				return qn_errf(e,
					       "%senvironment variable '%s' of stage '%s' must be "
					       "a value",
					       qn_yval_where(x, w, sizeof w), k, name);
			char *val = NULL, what[300];
			snprintf(what, sizeof what, "'env.%s' of stage '%s'", k, name);
			if (x->type == QN_YSCALAR && interp(&c, x, what, &val, e) < 0)
				return -1;
			size_t kl = strlen(k), vl = val ? strlen(val) : 0;
			char *kv = malloc(kl + vl + 2);
			if (!kv) {
				free(val);
				return qn_errf(e, "out of memory");
			}
			memcpy(kv, k, kl);
			kv[kl] = '=';
			memcpy(kv + kl + 1, val ? val : "", vl + 1);
			free(val);
			s->env[s->nenv++] = kv;
		}
	}

	if ((r = get_str(&c, body, "merge", &s->merge, e)) < 0)
		return -1;
	if (s->merge && !s->shards)
		return qn_errf(e, "%s'merge' of stage '%s' goes with 'shards'",
			       qn_yval_key_where(qn_yval_get(body, "merge"), w, sizeof w), name);
	if (s->merge && strstr(s->merge, "${shard}"))
		return qn_errf(e, "%s'merge' of stage '%s' runs once: it cannot use ${shard}",
			       qn_yval_key_where(qn_yval_get(body, "merge"), w, sizeof w), name);
	for (size_t i = 0; s->shards && i < s->nouts; i++)
		if (s->outs[i].shard < 0 && !s->merge)
			return qn_errf(
			    e,
			    "%s:%u:%u: output '%s' of sharded stage '%s' has no ${shard}: "
			    "only a 'merge' command can write it",
			    s->outs[i].file ? s->outs[i].file : p->file, s->outs[i].line,
			    s->outs[i].col, s->outs[i].decl, name);

	long n;
	if ((r = qn_yget_int(body, "retries", 0, 100, &n, e)) < 0)
		return -1;
	s->retries = r ? n : 0;
	v = qn_yval_get(body, "timeout");
	if (v && v->type != QN_YNULL && parse_timeout(v, name, &s->timeout, e) < 0)
		return -1;
	return 0;
}

/* The stage entry: plain, or foreach over a list or a map. */
static int add_entry(struct rn_pipeline *p, const struct qn_yval *entry, struct qn_err *e)
{
	const struct qn_yval *body = entry, *fe, *dob;
	char w[512];

	if (body->type != QN_YMAP)
		return qn_errf(e, "%sstage '%s' must be a map (cmd, deps, outs, ...)",
			       qn_yval_where(body, w, sizeof w), entry->key);
	fe = qn_yval_get(body, "foreach");
	if (!fe)
		return build_stage(p, entry, body, entry->key, NULL, NULL, e);
	static const char *const fe_keys[] = {"foreach", "do", "desc", "meta", NULL};
	if (qn_ycheck_keys(body, fe_keys, "a foreach stage (its body goes under 'do')", e) < 0)
		return -1;
	if (strchr(entry->key, '@'))
		return qn_errf(e, "%sa foreach stage's name may not hold '@'",
			       qn_yval_key_where(entry, w, sizeof w));
	dob = qn_yval_get(body, "do");
	if (!dob || dob->type != QN_YMAP)
		return qn_errf(e, "%sforeach stage '%s' needs a 'do' map (cmd, deps, outs, ...)",
			       qn_yval_key_where(entry, w, sizeof w), entry->key);
	if (qn_yval_get(dob, "foreach"))
		return qn_errf(e, "%sforeach stages do not nest",
			       qn_yval_key_where(qn_yval_get(dob, "foreach"), w, sizeof w));
	if (fe->type == QN_YSCALAR) {
		/* foreach: ${a_list} */
		const char *s = fe->s;
		size_t len = fe->slen;
		char name[256];
		if (len < 4 || strncmp(s, "${", 2) || s[len - 1] != '}' || len - 3 >= sizeof name)
			return qn_errf(e,
				       "%s'foreach' of stage '%s' must be a list, a map or "
				       "${variable}",
				       qn_yval_where(fe, w, sizeof w), entry->key);
		memcpy(name, s + 2, len - 3);
		name[len - 3] = 0;
		struct ictx c = {p, NULL, NULL, entry->key, 0};
		const char *k;
		const struct qn_yval *x = lookup(&c, name, &k);
		if (!x)
			return qn_errf(e, "%sundefined variable '%s' in 'foreach' of stage '%s'",
				       qn_yval_where(fe, w, sizeof w), name, entry->key);
		fe = x;
	}
	if (fe->type != QN_YLIST && fe->type != QN_YMAP)
		return qn_errf(e, "%s'foreach' of stage '%s' must be a list or a map",
			       qn_yval_where(fe, w, sizeof w), entry->key);
	for (size_t i = 0; i < fe->n; i++) {
		const struct qn_yval *it = &fe->v[i];
		char name[512];
		if (fe->type == QN_YMAP)
			snprintf(name, sizeof name, "%s@%s", entry->key, it->key);
		else if (it->type == QN_YSCALAR)
			snprintf(name, sizeof name, "%s@%s", entry->key, it->s);
		else
			snprintf(name, sizeof name, "%s@%zu", entry->key, i);
		if (build_stage(p, entry, dob, name, it, fe->type == QN_YMAP ? it->key : NULL, e) <
		    0)
			return -1;
	}
	return 0;
}

/* --- the DAG ---------------------------------------------------------------------- */

struct outref {
	const char *path;
	size_t stage, idx;
};

/* Path order where '/' sorts first, so a folder's contents follow it. */
static int pathcmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = *a == '/' ? 1 : (unsigned char)*a;
		unsigned char y = *b == '/' ? 1 : (unsigned char)*b;
		if (x != y || !x)
			return x - y;
	}
}

static int outref_cmp(const void *a, const void *b)
{
	const struct outref *x = a, *y = b;
	int c = pathcmp(x->path, y->path);
	if (c)
		return c;
	return x->stage < y->stage ? -1 : x->stage > y->stage;
}

static int add_edge(size_t **v, size_t *n, size_t x)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == x)
			return 0;
	size_t *nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	nv[(*n)++] = x;
	*v = nv;
	return 0;
}

static size_t lower_bound(const struct outref *o, size_t n, const char *path)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pathcmp(o[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int link_dep(struct rn_pipeline *p, size_t si, const struct rn_path *d,
		    const struct outref *o, size_t no, struct qn_err *e)
{
	char w[512];
	size_t k = lower_bound(o, no, d->path);

	/* outputs equal to the dependency or inside it */
	for (; k < no && rn_path_within(o[k].path, d->path); k++) {
		size_t from = o[k].stage;
		if (from == si)
			return qn_errf(
			    e, "%sstage '%s' depends on its own output '%s'",
			    d->file
				? (snprintf(w, sizeof w, "%s:%u:%u: ", d->file, d->line, d->col), w)
				: "",
			    p->stages[si].name, o[k].path);
		if (add_edge(&p->stages[si].up, &p->stages[si].nup, from) < 0 ||
		    add_edge(&p->stages[from].down, &p->stages[from].ndown, si) < 0)
			return qn_errf(e, "out of memory");
	}
	/* an output folder holding the dependency: each ancestor of its path */
	char *tmp = strdup(d->path);
	if (!tmp)
		return qn_errf(e, "out of memory");
	for (char *slash = strrchr(tmp, '/'); slash; slash = strrchr(tmp, '/')) {
		*slash = 0;
		if (!*tmp)
			break;
		size_t j = lower_bound(o, no, tmp);
		for (; j < no && !strcmp(o[j].path, tmp); j++) {
			size_t from = o[j].stage;
			if (from == si) {
				free(tmp);
				snprintf(w, sizeof w, "%s:%u:%u: ", d->file ? d->file : "", d->line,
					 d->col);
				return qn_errf(e, "%sstage '%s' depends on its own output '%s'", w,
					       p->stages[si].name, o[j].path);
			}
			if (add_edge(&p->stages[si].up, &p->stages[si].nup, from) < 0 ||
			    add_edge(&p->stages[from].down, &p->stages[from].ndown, si) < 0) {
				free(tmp);
				return qn_errf(e, "out of memory");
			}
		}
	}
	free(tmp);
	return 0;
}

static int report_cycle(struct rn_pipeline *p, const int *left, struct qn_err *e)
{
	size_t start = 0, *path, n = 0;
	int *seen;

	while (start < p->n && !left[start])
		start++;
	path = malloc((p->n + 1) * sizeof *path);
	seen = calloc(p->n, sizeof *seen);
	if (!path || !seen) {
		free(path);
		free(seen);
		return qn_errf(e, "the stages form a cycle");
	}
	/* walk upstream through stages still left until one repeats */
	size_t cur = start;
	while (!seen[cur]) {
		seen[cur] = (int)++n;
		path[n - 1] = cur;
		size_t next = cur;
		for (size_t i = 0; i < p->stages[cur].nup; i++)
			if (left[p->stages[cur].up[i]]) {
				next = p->stages[cur].up[i];
				break;
			}
		cur = next;
	}
	/*
	 * path[i + 1] produces for path[i], and cur (= path[first]) for
	 * path[n - 1]: in the direction data flows the cycle reads
	 * cur -> path[n - 1] -> ... -> path[first + 1] -> cur.
	 */
	char msg[900];
	size_t o = 0, first = (size_t)seen[cur] - 1;
	o += (size_t)snprintf(msg, sizeof msg, "%s", p->stages[cur].name);
	for (size_t i = n; i-- > first + 1 && o < sizeof msg;)
		o += (size_t)snprintf(msg + o, sizeof msg - o, " -> %s", p->stages[path[i]].name);
	if (o < sizeof msg)
		snprintf(msg + o, sizeof msg - o, " -> %s", p->stages[cur].name);
	const struct rn_stage *s = &p->stages[cur];
	qn_errf(e, "%s:%u:%u: the stages form a cycle: %s", s->file ? s->file : "", s->line, s->col,
		msg);
	free(path);
	free(seen);
	return -1;
}

static int build_dag(struct rn_pipeline *p, struct qn_err *e)
{
	size_t no = 0, k = 0;
	struct outref *o;
	char w[512];
	int rc = -1;

	for (size_t i = 0; i < p->n; i++)
		no += p->stages[i].nouts;
	o = calloc(no ? no : 1, sizeof *o);
	if (!o)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->stages[i].nouts; j++)
			o[k++] = (struct outref){p->stages[i].outs[j].path, i, j};
	qsort(o, no, sizeof *o, outref_cmp);
	for (size_t i = 0; i + 1 < no; i++) {
		if (!rn_path_within(o[i + 1].path, o[i].path))
			continue;
		const struct rn_stage *a = &p->stages[o[i].stage], *b = &p->stages[o[i + 1].stage];
		const struct rn_path *pa = &a->outs[o[i].idx], *pb = &b->outs[o[i + 1].idx];
		snprintf(w, sizeof w, "%s:%u:%u: ", pb->file ? pb->file : "", pb->line, pb->col);
		if (!strcmp(pa->path, pb->path))
			qn_errf(e,
				"%soutput '%s' is declared by two stages: '%s' (line %u) and '%s'",
				w, pb->path, a->name, pa->line, b->name);
		else
			qn_errf(e,
				"%soutput '%s' of stage '%s' is inside output '%s' of stage '%s' "
				"(line %u)",
				w, pb->path, b->name, pa->path, a->name, pa->line);
		goto out;
	}
	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->stages[i].ndeps; j++)
			if (link_dep(p, i, &p->stages[i].deps[j], o, no, e) < 0)
				goto out;

	/* Kahn's algorithm; ties keep the file's order */
	size_t *indeg = calloc(p->n ? p->n : 1, sizeof *indeg);
	int *left = calloc(p->n ? p->n : 1, sizeof *left);
	p->order = calloc(p->n ? p->n : 1, sizeof *p->order);
	if (!indeg || !left || !p->order) {
		free(indeg);
		free(left);
		qn_errf(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n; i++) {
		indeg[i] = p->stages[i].nup;
		left[i] = 1;
	}
	size_t done = 0;
	for (int progress = 1; progress && done < p->n;) {
		progress = 0;
		for (size_t i = 0; i < p->n; i++) {
			if (!left[i] || indeg[i])
				continue;
			left[i] = 0;
			p->order[done++] = i;
			progress = 1;
			for (size_t d = 0; d < p->stages[i].ndown; d++)
				indeg[p->stages[i].down[d]]--;
		}
	}
	if (done < p->n) {
		report_cycle(p, left, e);
		free(indeg);
		free(left);
		goto out;
	}
	free(indeg);
	free(left);
	rc = 0;
out:
	free(o);
	return rc;
}

/* --- the file ---------------------------------------------------------------------- */

static int add_vmap(struct rn_pipeline *p, const struct qn_yval *m, struct qn_err *e)
{
	const struct qn_yval **v = realloc(p->vmaps, (p->nvmaps + 1) * sizeof *v);
	if (!v)
		return qn_errf(e, "out of memory");
	p->vmaps = v;
	p->vmaps[p->nvmaps++] = m;
	return 0;
}

static int load_vars(struct rn_pipeline *p, const struct qn_yval *vars, const char *dir,
		     struct qn_err *e)
{
	char w[512];

	if (!vars || vars->type == QN_YNULL)
		return 0;
	if (vars->type == QN_YMAP)
		return add_vmap(p, vars, e);
	if (vars->type != QN_YLIST)
		return qn_errf(e, "%s'vars' must be a map, or a list of maps and YAML files",
			       qn_yval_where(vars, w, sizeof w));
	/* later entries are searched first? DVC: earlier wins on conflict; keep file order */
	for (size_t i = 0; i < vars->n; i++) {
		const struct qn_yval *it = &vars->v[i];
		if (it->type == QN_YMAP) {
			if (add_vmap(p, it, e) < 0)
				return -1;
			continue;
		}
		if (it->type != QN_YSCALAR)
			return qn_errf(e, "%seach of 'vars' must be a map or a YAML file name",
				       qn_yval_where(it, w, sizeof w));
		char *path = rn_path_join(dir, it->s);
		struct qn_yval *nv = realloc(p->vfiles, (p->nvfiles + 1) * sizeof *nv);
		char **nn = nv ? realloc(p->vnames, (p->nvfiles + 1) * sizeof *nn) : NULL;
		if (nv)
			p->vfiles = nv;
		if (nn)
			p->vnames = nn;
		if (!path || !nv || !nn) {
			free(path);
			return qn_errf(e, "out of memory");
		}
		p->vnames[p->nvfiles] = path;
		if (qn_yaml_load(path, &p->vfiles[p->nvfiles], e) < 0) {
			free(path);
			qn_err_prefix(e, "%svars", qn_yval_where(it, w, sizeof w));
			return -1;
		}
		p->nvfiles++;
		const struct qn_yval *m = &p->vfiles[p->nvfiles - 1];
		if (m->type != QN_YMAP)
			return qn_errf(e, "%s: vars file must hold a map", path);
		if (add_vmap(p, m, e) < 0)
			return -1;
	}
	return 0;
}

int rn_pipeline_parse(const char *text, size_t len, const char *file, const char *dir,
		      const char *params_text, size_t params_len, const char *params_name,
		      struct rn_pipeline *p, struct qn_err *e)
{
	static const char *const top_keys[] = {"vars", "stages", "schema", NULL};
	const struct qn_yval *st;
	char w[512];

	if (!p->file && !(p->file = strdup(file)))
		return qn_errf(e, "out of memory");
	if (!p->dir && !(p->dir = strdup(dir ? dir : ".")))
		return qn_errf(e, "out of memory");
	if (params_text) {
		if (!p->params_file && !(p->params_file = strdup(params_name)))
			return qn_errf(e, "out of memory");
		if (qn_yaml_parse(params_text, params_len, p->params_file, &p->params, e) < 0)
			return -1;
		if (p->params.type != QN_YMAP && p->params.type != QN_YNULL)
			return qn_errf(e, "%s: the params file must hold a map", p->params_file);
	}
	if (qn_yaml_parse(text, len, p->file, &p->root, e) < 0)
		return -1;
	if (p->root.type != QN_YMAP)
		return qn_errf(e, "%s: a pipeline is a map with 'stages' (and 'vars')", p->file);
	if (qn_ycheck_keys(&p->root, top_keys, "the pipeline", e) < 0)
		return -1;
	if (load_vars(p, qn_yval_get(&p->root, "vars"), p->dir, e) < 0)
		return -1;
	st = qn_yval_get(&p->root, "stages");
	if (!st || st->type == QN_YNULL)
		return qn_errf(e, "%s: no 'stages'", p->file);
	if (st->type != QN_YMAP)
		return qn_errf(e, "%s'stages' must be a map of stage names",
			       qn_yval_where(st, w, sizeof w));
	for (size_t i = 0; i < st->n; i++)
		if (add_entry(p, &st->v[i], e) < 0)
			return -1;
	return build_dag(p, e);
}

int rn_pipeline_load(const char *file, const char *params_file, struct rn_pipeline *p,
		     struct qn_err *e)
{
	char *text = NULL, *ptext = NULL, *dir = NULL, cwd[PATH_MAX];
	size_t len = 0, plen = 0;
	int rc = -1;

	if (!getcwd(cwd, sizeof cwd))
		return qn_errno(e, errno, "cannot find the current folder");
	{
		const char *slash = strrchr(file, '/');
		char *d =
		    slash ? strndup(file, (size_t)(slash - file + (slash == file))) : strdup(".");
		dir = d ? rn_path_join(cwd, d) : NULL;
		free(d);
		const char *b = slash ? slash + 1 : file;
		p->base = strdup(b);
		if (p->base) {
			char *dot = strrchr(p->base, '.');
			if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")) &&
			    dot != p->base)
				*dot = 0;
		}
	}
	if (!dir || !p->base) {
		qn_errf(e, "out of memory");
		goto out;
	}
	if (qn_yaml_read_file(file, QN_YAML_MAX_BYTES, &text, &len, e) < 0)
		goto out;
	char *pf = NULL;
	if (params_file) {
		pf = strdup(params_file);
	} else {
		pf = rn_path_join(dir, "params.yaml");
		if (pf && access(pf, F_OK) < 0) {
			free(pf);
			pf = NULL;
			goto parse;
		}
		/* name it as the user would: beside the pipeline file */
		const char *slash = strrchr(file, '/');
		free(pf);
		if (slash) {
			size_t n = (size_t)(slash - file) + 1;
			pf = malloc(n + sizeof "params.yaml");
			if (pf) {
				memcpy(pf, file, n);
				memcpy(pf + n, "params.yaml", sizeof "params.yaml");
			}
		} else {
			pf = strdup("params.yaml");
		}
	}
	if (!pf) {
		qn_errf(e, "out of memory");
		goto out;
	}
	p->params_file = pf;
	if (qn_yaml_read_file(pf, QN_YAML_MAX_BYTES, &ptext, &plen, e) < 0)
		goto out;
parse:
	rc = rn_pipeline_parse(text, len, file, dir, ptext, plen, p->params_file, p, e);
out:
	free(text);
	free(ptext);
	free(dir);
	return rc;
}
