/* space.c - see space.h. */
#include "space.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "ytree.h"

/* ---- the tunable options ------------------------------------------------------ */

static const char *const schedules[] = {"cosine", "constant", NULL};
static const char *const mixes[] = {"proportional", "temperature", NULL};

/*
 * fit's long options that take a value and may differ between trials, with
 * the ranges fit's parser accepts. Left out on purpose: the budget and the
 * places (steps, stop-at, data, output, metrics), what changes the metric
 * itself (context, eval-batches), what the sweep decides (resume, threads)
 * and early stopping (patience), which the rungs replace.
 */
static const struct qn_space_option options[] = {
    {"lr", QN_SPACE_FLOAT, 0, 1e9, NULL},
    {"min-lr", QN_SPACE_FLOAT, 0, 1e9, NULL},
    {"warmup", QN_SPACE_WHOLE, 0, 1e9, NULL},
    {"schedule", QN_SPACE_TEXT, 0, 0, schedules},
    {"weight-decay", QN_SPACE_FLOAT, 0, 1e9, NULL},
    {"beta1", QN_SPACE_FLOAT, 0, 0.999999999, NULL},
    {"beta2", QN_SPACE_FLOAT, 0, 0.999999999, NULL},
    {"eps", QN_SPACE_FLOAT, 0, 1, NULL},
    {"clip", QN_SPACE_FLOAT, 0, 1e18, NULL},
    {"batch", QN_SPACE_WHOLE, 1, 1 << 20, NULL},
    {"accum", QN_SPACE_WHOLE, 1, 1 << 20, NULL},
    {"dropout", QN_SPACE_FLOAT, 0, 0.999, NULL},
    {"seed", QN_SPACE_WHOLE, 0, 9007199254740992.0, NULL},
    {"lora-r", QN_SPACE_WHOLE, 1, 65536, NULL},
    {"lora-alpha", QN_SPACE_FLOAT, 1e-6, 1e6, NULL},
    {"lora-dropout", QN_SPACE_FLOAT, 0, 0.999, NULL},
    {"lora-targets", QN_SPACE_TEXT, 0, 0, NULL},
    {"dpo-beta", QN_SPACE_FLOAT, 1e-6, 1e6, NULL},
    {"mix", QN_SPACE_TEXT, 0, 0, mixes},
    {"mix-temperature", QN_SPACE_FLOAT, 1e-3, 1e6, NULL},
    {"task-cap", QN_SPACE_FLOAT, 1, 1e15, NULL},
    {"freeze", QN_SPACE_TEXT, 0, 0, NULL},
};

#define NOPTIONS (sizeof options / sizeof *options)

const struct qn_space_option *qn_space_option(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!strcmp(options[i].name, name))
			return &options[i];
	return NULL;
}

int qn_space_number(const char *text, double *out)
{
	char *end;
	if (!text[0] || isspace((unsigned char)text[0]))
		return 0;
	errno = 0;
	double v = strtod(text, &end);
	if (*end || errno == ERANGE || !isfinite(v))
		return 0;
	*out = v;
	return 1;
}

/* ---- from the tree to the space -------------------------------------------------- */

static const char *kind_names[] = {"uniform", "log_uniform", "int", "log_int", "choice"};

static int at(struct qn_err *e, const char *file, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* "file:line:col: message" into e; -1. */
static int at(struct qn_err *e, const char *file, unsigned line, unsigned col, const char *fmt, ...)
{
	char m[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s:%u:%u: %s", file, line, col, m);
}

/* A scalar's text, or an error at v naming what. */
static int scalar(const struct qn_space *s, const struct qn_yval *v, const char *what,
		  struct qn_err *e)
{
	if (v->type != QN_YSCALAR)
		return at(e, s->file, v->line, v->col, "%s: expected a value, not %s", what,
			  qn_yval_type_name(v));
	if (strlen(v->s) != v->slen)
		return at(e, s->file, v->line, v->col, "%s: a NUL in the value", what);
	return 0;
}

/* A whole number in [min, max] written in digits. */
static int whole_setting(const struct qn_space *s, const struct qn_yval *v, const char *what,
			 long long min, long long max, struct qn_space_setting *out,
			 struct qn_err *e)
{
	if (scalar(s, v, what, e))
		return -1;
	const char *p = v->s;
	int digits = 0;
	unsigned long long x = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		unsigned d = (unsigned)(*p - '0');
		if (x > (~0ull - d) / 10) {
			digits = 0;
			break;
		}
		x = x * 10 + d;
	}
	if (!digits || *p || v->quoted || x < (unsigned long long)min ||
	    x > (unsigned long long)max)
		return at(e, s->file, v->line, v->col,
			  "'%s' must be a whole number from %lld to %lld, not '%.60s'", what, min,
			  max, v->s);
	out->v = (long long)x;
	out->line = v->line;
	out->col = v->col;
	return 0;
}

/* Checks one value of p (text t at v) against its option; 0 or -1. */
static int check_value(const struct qn_space *s, const struct qn_space_param *p,
		       const struct qn_yval *v, const char *t, struct qn_err *e)
{
	const struct qn_space_option *o = p->opt;
	double x;
	if (!t[0])
		return at(e, s->file, v->line, v->col, "'%s': an empty value", o->name);
	if (strlen(t) >= QN_SPACE_MAX_VALUE)
		return at(e, s->file, v->line, v->col, "'%s': a value longer than %d bytes",
			  o->name, QN_SPACE_MAX_VALUE - 1);
	if (o->type == QN_SPACE_TEXT) {
		if (!o->words)
			return 0;
		for (const char *const *w = o->words; *w; w++)
			if (!strcmp(*w, t))
				return 0;
		return at(e, s->file, v->line, v->col, "'%s': '%.60s' is not %s or %s", o->name, t,
			  o->words[0], o->words[1]);
	}
	if (!qn_space_number(t, &x))
		return at(e, s->file, v->line, v->col, "'%s': expected a number, not '%.60s'",
			  o->name, t);
	if (o->type == QN_SPACE_WHOLE && x != floor(x))
		return at(e, s->file, v->line, v->col, "'%s': expected a whole number, not '%.60s'",
			  o->name, t);
	if (x < o->min || x > o->max)
		return at(e, s->file, v->line, v->col, "'%s': %.60s is outside %g to %g", o->name,
			  t, o->min, o->max);
	return 0;
}

static int add_choice(struct qn_space_param *p, const char *t)
{
	char **c = realloc(p->choices, (p->nchoices + 1) * sizeof *c);
	if (!c)
		return -1;
	p->choices = c;
	if (!(c[p->nchoices] = strdup(t)))
		return -1;
	p->nchoices++;
	return 0;
}

static int read_choice(struct qn_space *s, struct qn_space_param *p, const struct qn_yval *v,
		       struct qn_err *e)
{
	const char *name = p->opt->name;
	if (v->type != QN_YLIST)
		return at(e, s->file, v->line, v->col, "'%s': choice takes a list, not %s", name,
			  qn_yval_type_name(v));
	if (!v->n)
		return at(e, s->file, v->line, v->col, "'%s': an empty choice", name);
	if (v->n > QN_SPACE_MAX_CHOICES)
		return at(e, s->file, v->line, v->col, "'%s': more than %d choices", name,
			  QN_SPACE_MAX_CHOICES);
	for (size_t i = 0; i < v->n; i++) {
		const struct qn_yval *c = &v->v[i];
		if (scalar(s, c, name, e) || check_value(s, p, c, c->s, e))
			return -1;
		if (add_choice(p, c->s))
			return qn_errf(e, "%s: out of memory", s->file);
	}
	return 0;
}

static int read_range(struct qn_space *s, struct qn_space_param *p, const struct qn_yval *v,
		      struct qn_err *e)
{
	const struct qn_space_option *o = p->opt;
	const char *kind = kind_names[p->kind];
	int whole = p->kind == QN_SPACE_INT || p->kind == QN_SPACE_LOG_INT;
	if (o->type == QN_SPACE_TEXT)
		return at(e, s->file, v->line, v->col, "'%s' takes text: use choice, not %s",
			  o->name, kind);
	if (o->type == QN_SPACE_WHOLE && !whole)
		return at(e, s->file, v->line, v->col,
			  "'%s' is a whole number: use int or log_int, not %s", o->name, kind);
	if (v->type != QN_YLIST || v->n != 2)
		return at(e, s->file, v->line, v->col, "'%s': %s takes [low, high]", o->name, kind);
	double x[2];
	for (int i = 0; i < 2; i++) {
		const struct qn_yval *c = &v->v[i];
		if (scalar(s, c, o->name, e) || check_value(s, p, c, c->s, e))
			return -1;
		qn_space_number(c->s, &x[i]);
		if (whole && x[i] != floor(x[i]))
			return at(e, s->file, c->line, c->col,
				  "'%s': %s takes whole numbers, not '%.60s'", o->name, kind, c->s);
	}
	if (x[0] > x[1])
		return at(e, s->file, v->line, v->col, "'%s': %s [%g, %g]: low is above high",
			  o->name, kind, x[0], x[1]);
	if (p->kind == QN_SPACE_LOG_UNIFORM && x[0] <= 0)
		return at(e, s->file, v->line, v->col, "'%s': log_uniform needs low > 0, not %g",
			  o->name, x[0]);
	if (p->kind == QN_SPACE_LOG_INT && x[0] < 1)
		return at(e, s->file, v->line, v->col, "'%s': log_int needs low >= 1, not %g",
			  o->name, x[0]);
	p->lo = x[0];
	p->hi = x[1];
	return 0;
}

static int read_param(struct qn_space *s, const struct qn_yval *v, struct qn_err *e)
{
	const char *name = v->key;
	while (*name == '-')
		name++; /* "--lr" reads as "lr" */
	const struct qn_space_option *o = qn_space_option(name);
	if (!o) {
		char list[1024];
		size_t k = 0;
		for (size_t i = 0; i < NOPTIONS && k < sizeof list; i++)
			k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "",
					      options[i].name);
		return at(e, s->file, v->kline, v->kcol,
			  "'%.60s' is not a fit option the sweep can search (%s)", v->key, list);
	}
	for (size_t i = 0; i < s->nparams; i++)
		if (s->params[i].opt == o)
			return at(e, s->file, v->kline, v->kcol, "'%s' is in params twice", name);
	if (s->nparams == QN_SPACE_MAX_PARAMS)
		return at(e, s->file, v->kline, v->kcol, "more than %d params",
			  QN_SPACE_MAX_PARAMS);
	struct qn_space_param *p = &s->params[s->nparams++];
	memset(p, 0, sizeof *p);
	p->opt = o;
	p->line = v->kline;
	p->col = v->kcol;
	if (v->type == QN_YSCALAR) { /* a fixed value */
		p->kind = QN_SPACE_CHOICE;
		if (scalar(s, v, name, e) || check_value(s, p, v, v->s, e))
			return -1;
		return add_choice(p, v->s) ? qn_errf(e, "%s: out of memory", s->file) : 0;
	}
	if (v->type != QN_YMAP || v->n != 1)
		return at(e, s->file, v->line, v->col,
			  "'%s': expected a value or one of {uniform: [low, high]}, "
			  "{log_uniform: [low, high]}, {int: [low, high]}, {log_int: [low, high]}, "
			  "{choice: [a, b, ...]}",
			  name);
	const struct qn_yval *d = &v->v[0];
	size_t k = 0;
	while (k < 5 && strcmp(d->key, kind_names[k]))
		k++;
	if (k == 5)
		return at(e, s->file, d->kline, d->kcol,
			  "'%s': unknown distribution '%.60s' (uniform, log_uniform, int, "
			  "log_int, choice)",
			  name, d->key);
	p->kind = (enum qn_space_kind)k;
	return p->kind == QN_SPACE_CHOICE ? read_choice(s, p, d, e) : read_range(s, p, d, e);
}

static int read_space(struct qn_space *s, const struct qn_yval *root, struct qn_err *e)
{
	if (root->type != QN_YMAP)
		return at(e, s->file, root->line, root->col,
			  "expected a map with params (and seed, trials, ...), not %s",
			  qn_yval_type_name(root));
	const struct qn_yval *params = NULL;
	for (size_t i = 0; i < root->n; i++) {
		const struct qn_yval *v = &root->v[i];
		const char *k = v->key;
		int rc = 0;
		if (!strcmp(k, "seed"))
			rc = whole_setting(s, v, k, 0, 9223372036854775807LL, &s->seed, e);
		else if (!strcmp(k, "trials"))
			rc = whole_setting(s, v, k, 1, QN_SPACE_MAX_TRIALS, &s->trials, e);
		else if (!strcmp(k, "parallel"))
			rc = whole_setting(s, v, k, 1, 4096, &s->parallel, e);
		else if (!strcmp(k, "eta"))
			rc = whole_setting(s, v, k, 2, 1000, &s->eta, e);
		else if (!strcmp(k, "min_steps"))
			rc = whole_setting(s, v, k, 1, 1000000000, &s->min_steps, e);
		else if (!strcmp(k, "scheduler")) {
			rc = scalar(s, v, k, e);
			if (!rc && strcmp(v->s, "asha") && strcmp(v->s, "random"))
				rc = at(e, s->file, v->line, v->col,
					"'scheduler' is asha or random, not '%.60s'", v->s);
			if (!rc) {
				s->scheduler.v =
				    strcmp(v->s, "asha") ? QN_SPACE_RANDOM : QN_SPACE_ASHA;
				s->scheduler.line = v->line;
				s->scheduler.col = v->col;
			}
		} else if (!strcmp(k, "metric")) {
			rc = scalar(s, v, k, e);
			if (!rc && strcmp(v->s, "val_loss") && strcmp(v->s, "loss") &&
			    strcmp(v->s, "val_pref_acc") && strcmp(v->s, "val_reward_margin"))
				rc = at(e, s->file, v->line, v->col,
					"'metric' is val_loss, loss, val_pref_acc or "
					"val_reward_margin, not '%.60s'",
					v->s);
			if (!rc) {
				snprintf(s->metric, sizeof s->metric, "%s", v->s);
				s->maximize = !strcmp(v->s, "val_pref_acc") ||
					      !strcmp(v->s, "val_reward_margin");
			}
		} else if (!strcmp(k, "mode")) {
			continue; /* after the metric, whose default it overrides */
		} else if (!strcmp(k, "params")) {
			params = v;
		} else {
			rc = at(e, s->file, v->kline, v->kcol,
				"unknown key '%.60s' (seed, trials, parallel, scheduler, eta, "
				"min_steps, metric, mode, params)",
				k);
		}
		if (rc)
			return -1;
	}
	for (size_t i = 0; i < root->n; i++) {
		const struct qn_yval *v = &root->v[i];
		if (strcmp(v->key, "mode"))
			continue;
		if (scalar(s, v, "mode", e))
			return -1;
		if (strcmp(v->s, "min") && strcmp(v->s, "max"))
			return at(e, s->file, v->line, v->col, "'mode' is min or max, not '%.60s'",
				  v->s);
		s->maximize = !strcmp(v->s, "max");
	}
	if (!params)
		return at(e, s->file, root->line, root->col, "no params: nothing to search");
	if (params->type != QN_YMAP || !params->n)
		return at(e, s->file, params->line, params->col,
			  "'params' must map fit options to their values, not %s",
			  params->type == QN_YMAP ? "an empty map" : qn_yval_type_name(params));
	if (params->n > QN_SPACE_MAX_PARAMS)
		return at(e, s->file, params->line, params->col, "more than %d params",
			  QN_SPACE_MAX_PARAMS);
	if (!(s->params = calloc(params->n, sizeof *s->params)))
		return qn_errf(e, "%s: out of memory", s->file);
	for (size_t i = 0; i < params->n; i++)
		if (read_param(s, &params->v[i], e))
			return -1;
	return 0;
}

int qn_space_parse(const char *text, size_t len, const char *file, struct qn_space *s,
		   struct qn_err *e)
{
	static const struct qn_yaml_limits lim = {
	    .max_bytes = QN_SPACE_MAX_BYTES,
	    .max_nodes = QN_SPACE_MAX_NODES,
	    .max_depth = QN_SPACE_MAX_DEPTH,
	};
	struct qn_yval root;
	memset(s, 0, sizeof *s);
	snprintf(s->metric, sizeof s->metric, "val_loss");
	if (!(s->file = strdup(file ? file : "-")))
		return qn_errf(e, "out of memory");
	if (qn_yaml_parse_limited(text, len, s->file, &lim, &root, e))
		return -1;
	int rc = read_space(s, &root, e);
	qn_yval_release(&root);
	return rc;
}

int qn_space_load(const char *path, struct qn_space *s, struct qn_err *e)
{
	char *text;
	size_t len;
	memset(s, 0, sizeof *s);
	int rc = qn_yaml_read_file(path, QN_SPACE_MAX_BYTES, &text, &len, e);
	if (!rc)
		rc = qn_space_parse(text, len, path, s, e);
	free(text);
	return rc;
}

void qn_space_release(struct qn_space *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nparams; i++) {
		for (size_t j = 0; j < s->params[i].nchoices; j++)
			free(s->params[i].choices[j]);
		free(s->params[i].choices);
	}
	free(s->params);
	free(s->file);
	memset(s, 0, sizeof *s);
}

/* ---- drawing -------------------------------------------------------------------- */

void qn_space_draw(const struct qn_space_param *p, uint64_t seed, long t, char *buf)
{
	const char *name = p->opt->name;
	uint64_t h = qn_mix64(seed ^ qn_mix64((uint64_t)t + 0x9e3779b97f4a7c15ull));
	h = qn_mix64(h ^ qn_xxh3_64(name, strlen(name), 0));
	double u = (double)(h >> 11) * 0x1.0p-53; /* [0, 1) */
	double x;
	switch (p->kind) {
	case QN_SPACE_CHOICE:
		snprintf(buf, QN_SPACE_MAX_VALUE, "%s",
			 p->choices[(size_t)(u * (double)p->nchoices)]);
		return;
	case QN_SPACE_INT:
		x = p->lo + floor(u * (p->hi - p->lo + 1));
		break;
	case QN_SPACE_LOG_INT: {
		/* Log-uniform over [lo - 1/2, hi + 1/2], rounded: each whole number
		 * gets the mass of its own interval, as Optuna's log int does. */
		double a = log(p->lo - 0.5), b = log(p->hi + 0.5);
		x = floor(exp(a + u * (b - a)) + 0.5);
		break;
	}
	case QN_SPACE_LOG_UNIFORM:
		x = exp(log(p->lo) + u * (log(p->hi) - log(p->lo)));
		break;
	default:
		x = p->lo + u * (p->hi - p->lo);
		break;
	}
	if (p->kind == QN_SPACE_INT || p->kind == QN_SPACE_LOG_INT) {
		x = x < p->lo ? p->lo : x > p->hi ? p->hi : x;
		snprintf(buf, QN_SPACE_MAX_VALUE, "%.0f", x);
		return;
	}
	snprintf(buf, QN_SPACE_MAX_VALUE, "%.4g", x);
	double r;
	if (!qn_space_number(buf, &r) || r < p->lo || r > p->hi) /* rounded out of range */
		snprintf(buf, QN_SPACE_MAX_VALUE, "%.17g", r < p->lo ? p->lo : p->hi);
}
