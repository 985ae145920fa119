/* scan_policy.c - see scan_policy.h. */
#include "scan_policy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "ytree.h"

struct sp_policy *sp_policy_new(void)
{
	return calloc(1, sizeof(struct sp_policy));
}

void sp_policy_free(struct sp_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].id);
		free(p->v[i].text);
		free(p->v[i].where);
		free(p->v[i].name);
	}
	free(p->v);
	free(p);
}

static int err_at(const struct qn_yval *n, int key, struct qn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int err_at(const struct qn_yval *n, int key, struct qn_err *e, const char *fmt, ...)
{
	char w[512], m[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s%s", (key ? qn_yval_key_where(n, w, sizeof w) : qn_yval_where(n, w, sizeof w)), m);
}

/* Splits s into at most max words (ASCII spaces); returns the count, max + 1 for more. */
static size_t words(char *s, char **w, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(s, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = t;
	}
	return n;
}

static int name_ok(const char *s)
{
	if (!*s || strlen(s) > 100)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return 0;
	return 1;
}

static const char *const sev_names[] = {"low", "medium", "high", "critical"};

/* The subject (a map key) into g. */
static int parse_subject(struct sp_gate *g, const struct qn_yval *ent, struct qn_err *e)
{
	char buf[256], *w[3];
	size_t n;

	if (strlen(ent->key) >= sizeof buf)
		return err_at(ent, 1, e, "gate '%.80s...': too long", ent->key);
	strcpy(buf, ent->key);
	n = words(buf, w, 2);
	if (n == 0 || n > 2)
		return err_at(ent, 1, e,
			      "gate '%.80s': expected total, NAME, type NAME, severity LEVEL, "
			      "kind KIND or rule RULE-ID",
			      ent->key);
	if (n == 1 && !strcmp(w[0], "total")) {
		g->subject = SP_TOTAL;
	} else if (n == 1 && !strcmp(w[0], "regurgitated")) {
		g->subject = SP_REGURGITATED;
	} else if (n == 1 || !strcmp(w[0], "type")) {
		const char *t = w[n - 1];
		if (!name_ok(t))
			return err_at(ent, 1, e, "gate '%.80s': '%.80s' is not a type name",
				      ent->key, t);
		g->subject = SP_TYPE;
		if (!(g->name = strdup(t)))
			return qn_errf(e, "out of memory");
		for (char *c = g->name; *c; c++)
			*c = (char)toupper((unsigned char)*c);
	} else if (!strcmp(w[0], "severity")) {
		g->subject = SP_SEVERITY;
		g->level = -1;
		for (int i = 0; i < 4; i++)
			if (!strcasecmp(w[1], sev_names[i]))
				g->level = i;
		if (g->level < 0)
			return err_at(
			    ent, 1, e,
			    "gate '%.80s': the severity must be low, medium, high or critical",
			    ent->key);
	} else if (!strcmp(w[0], "kind")) {
		g->subject = SP_KIND;
		if (strcasecmp(w[1], "pii") && strcasecmp(w[1], "secret") &&
		    strcasecmp(w[1], "policy"))
			return err_at(ent, 1, e,
				      "gate '%.80s': the kind must be pii, secret or policy",
				      ent->key);
		if (!(g->name = strdup(w[1])))
			return qn_errf(e, "out of memory");
		for (char *c = g->name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	} else if (!strcmp(w[0], "rule")) {
		if (!name_ok(w[1]))
			return err_at(ent, 1, e, "gate '%.80s': '%.80s' is not a rule id", ent->key,
				      w[1]);
		g->subject = SP_RULE;
		if (!(g->name = strdup(w[1])))
			return qn_errf(e, "out of memory");
	} else {
		return err_at(ent, 1, e,
			      "gate '%.80s': expected total, NAME, type NAME, severity LEVEL, "
			      "kind KIND or rule RULE-ID",
			      ent->key);
	}
	/* The id: "total", the type's name, or "severity high", "kind secret", "rule X". */
	char id[256];
	if (g->subject == SP_TOTAL)
		snprintf(id, sizeof id, "total");
	else if (g->subject == SP_REGURGITATED)
		snprintf(id, sizeof id, "regurgitated");
	else if (g->subject == SP_TYPE)
		snprintf(id, sizeof id, "%s", g->name);
	else if (g->subject == SP_SEVERITY)
		snprintf(id, sizeof id, "severity %s", sev_names[g->level]);
	else
		snprintf(id, sizeof id, "%s %s", g->subject == SP_KIND ? "kind" : "rule", g->name);
	if (!(g->id = strdup(id)))
		return qn_errf(e, "out of memory");
	return 0;
}

/* A non-negative finite number, all of s. */
static int number(const char *s, double *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	double x = strtod(s, &end);
	if (*end || !isfinite(x) || x < 0 || x > 1e15 || !strncasecmp(s, "0x", 2) ||
	    strpbrk(s, "iInN"))
		return -1;
	*out = x;
	return 0;
}

/* "10k", "1M", "10000": at least 1. */
static int per_number(const char *s, double *out)
{
	char buf[64];
	size_t n = strlen(s);
	double mul = 1;

	if (!n || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n + 1);
	if (buf[n - 1] == 'k' || buf[n - 1] == 'K')
		mul = 1e3;
	else if (buf[n - 1] == 'm' || buf[n - 1] == 'M')
		mul = 1e6;
	if (mul > 1)
		buf[n - 1] = 0;
	if (number(buf, out) < 0 || *out * mul < 1)
		return -1;
	*out *= mul;
	return 0;
}

static int parse_limit(struct sp_gate *g, const struct qn_yval *v, struct qn_err *e)
{
	char buf[256], *w[8];
	size_t n, i = 0;

	if (v->type != QN_YSCALAR || strlen(v->s) != v->slen || v->slen >= sizeof buf)
		goto bad;
	strcpy(buf, v->s);
	n = words(buf, w, 7);
	if (n == 0 || n > 7)
		goto bad;
	if (!strcasecmp(w[0], "max")) {
		i = 1;
	} else if (n > 1 && !strcasecmp(w[0], "at") && !strcasecmp(w[1], "most")) {
		i = 2;
	}
	if (i >= n)
		goto bad;
	size_t k = strlen(w[i]);
	if (k > 1 && w[i][k - 1] == '%') {
		w[i][k - 1] = 0;
		if (number(w[i], &g->limit) < 0 || i + 1 != n)
			goto bad;
		g->per = 100;
		return 0;
	}
	if (number(w[i], &g->limit) < 0)
		goto bad;
	i++;
	if (i < n && (!strcasecmp(w[i], "findings") || !strcasecmp(w[i], "finding")))
		i++;
	if (i == n) {
		if (g->limit != floor(g->limit))
			goto bad; /* a count is a whole number */
		return 0;
	}
	if (strcasecmp(w[i], "per") || i + 1 >= n || per_number(w[i + 1], &g->per) < 0)
		goto bad;
	i += 2;
	if (i < n && (!strcasecmp(w[i], "documents") || !strcasecmp(w[i], "document") ||
		      !strcasecmp(w[i], "docs") || !strcasecmp(w[i], "doc")))
		i++;
	if (i != n)
		goto bad;
	return 0;
bad:
	return err_at(v, 0, e,
		      "gate '%s': expected a count or a rate (0, max 3, max 10 per 10k documents, "
		      "0.1%%), not '%.80s'",
		      g->id, v->type == QN_YSCALAR ? v->s : "");
}

static int add_gates(struct sp_policy *p, const struct qn_yval *map, int replace, struct qn_err *e)
{
	char w[512];

	if (map->type == QN_YNULL)
		return 0;
	if (map->type != QN_YMAP)
		return err_at(map, 0, e, "'gates' must be a map of SUBJECT: LIMIT");
	if (p->n + map->n > SP_MAX_GATES)
		return err_at(map, 0, e, "more than %d gates", SP_MAX_GATES);
	struct sp_gate *nv = realloc(p->v, (p->n + map->n + 1) * sizeof *nv);
	if (!nv)
		return qn_errf(e, "out of memory");
	p->v = nv;
	for (size_t i = 0; i < map->n; i++) {
		const struct qn_yval *ent = &map->v[i];
		struct sp_gate *g = &p->v[p->n++];
		memset(g, 0, sizeof *g);
		if (parse_subject(g, ent, e) < 0 || parse_limit(g, ent, e) < 0)
			return -1;
		size_t tl = strlen(g->id) + ent->slen + 3;
		if (!(g->text = malloc(tl)) || !(g->where = strdup(qn_yval_key_where(ent, w, sizeof w))))
			return qn_errf(e, "out of memory");
		snprintf(g->text, tl, "%s: %s", g->id, ent->s);
		for (size_t j = 0; j + 1 < p->n; j++) {
			if (strcmp(p->v[j].id, g->id))
				continue;
			if (!replace)
				return err_at(ent, 1, e, "gate '%s' is given twice", g->id);
			/* A later --gate replaces the file's gate of the same subject. */
			struct sp_gate t = p->v[j];
			p->v[j] = *g;
			*g = t;
			free(g->id);
			free(g->text);
			free(g->where);
			free(g->name);
			p->n--;
			break;
		}
	}
	return 0;
}

int sp_policy_parse(struct sp_policy *p, const char *text, size_t len, const char *file, int bare,
		    struct qn_err *e)
{
	struct qn_yval root;
	int rc = -1;

	if (qn_yaml_parse(text, len, file, &root, e) < 0)
		return -1;
	if (bare) {
		if (root.type != QN_YMAP)
			err_at(&root, 0, e, "expected SUBJECT: LIMIT (CREDIT_CARD: 0)");
		else
			rc = add_gates(p, &root, 1, e);
		qn_yval_release(&root);
		return rc;
	}
	const struct qn_yval *gates = qn_yval_get(&root, "gates");
	if (root.type != QN_YMAP) {
		err_at(&root, 0, e, "expected a map with 'gates'");
	} else if (!gates) {
		err_at(&root, 0, e, "'gates' is missing");
	} else {
		rc = 0;
		for (size_t i = 0; i < root.n && rc == 0; i++)
			if (strcmp(root.v[i].key, "gates"))
				rc = err_at(&root.v[i], 1, e, "unknown key '%.80s' (gates)",
					    root.v[i].key);
		if (rc == 0)
			rc = add_gates(p, gates, 0, e);
	}
	qn_yval_release(&root);
	return rc;
}

int sp_policy_load(struct sp_policy *p, const char *path, struct qn_err *e)
{
	char *buf;
	size_t n;
	if (qn_yaml_read_file(path, QN_YAML_MAX_BYTES, &buf, &n, e))
		return -1;
	int rc = sp_policy_parse(p, buf, n, path, 0, e);
	free(buf);
	return rc;
}

static void fmt_per(double per, char *out, size_t size)
{
	if (per >= 1e6 && fmod(per, 1e6) == 0)
		snprintf(out, size, "%.0fM", per / 1e6);
	else if (per >= 1e3 && fmod(per, 1e3) == 0)
		snprintf(out, size, "%.0fk", per / 1e3);
	else
		snprintf(out, size, "%.15g", per);
}

void sp_gate_limit_text(const struct sp_gate *g, char *out, size_t size)
{
	char per[32];
	if (!g->per) {
		snprintf(out, size, "%.0f", g->limit);
		return;
	}
	fmt_per(g->per, per, sizeof per);
	snprintf(out, size, "%.15g per %s documents", g->limit, per);
}

int sp_gate_eval(const struct sp_gate *g, uint64_t observed, uint64_t documents, char *reason,
		 size_t size)
{
	char per[32];

	if (!g->per) {
		int ok = (double)observed <= g->limit;
		snprintf(reason, size, "%llu finding%s, at most %.0f", (unsigned long long)observed,
			 observed == 1 ? "" : "s", g->limit);
		return ok;
	}
	double rate = documents ? (double)observed * g->per / (double)documents : 0;
	/* A tolerance for the rounding of the product; exact counts matter. */
	int ok = rate <= g->limit * (1 + 1e-12);
	fmt_per(g->per, per, sizeof per);
	snprintf(
	    reason, size, "%llu finding%s in %llu document%s (%.4g per %s), at most %.15g per %s",
	    (unsigned long long)observed, observed == 1 ? "" : "s", (unsigned long long)documents,
	    documents == 1 ? "" : "s", rate, per, g->limit, per);
	return ok;
}
