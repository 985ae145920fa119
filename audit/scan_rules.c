/* scan_rules.c - see scan_rules.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "scan_rules.h"

#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ytree.h"

struct rule {
	struct sr_rule pub;
	pcre2_code *code;
	pcre2_code **allow;
	size_t nallow;
};

struct sr_rules {
	struct rule *v;
	size_t n;
	pcre2_code **allow; /* the file's global allow patterns */
	size_t nallow;
	pcre2_match_context *mctx;
	uint32_t max_groups;
};

static const char *const sev_names[] = {"low", "medium", "high", "critical"};
static const char *const kind_names[] = {"policy", "secret", "pii"};

const char *sr_severity_name(int s)
{
	return s >= 0 && s < 4 ? sev_names[s] : "?";
}

int sr_severity_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, sev_names[i]))
			return i;
	return -1;
}

static void free_pats(pcre2_code **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pcre2_code_free(v[i]);
	free(v);
}

void sr_rules_free(struct sr_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		struct rule *x = &r->v[i];
		free(x->pub.id);
		free(x->pub.rule_id);
		free(x->pub.type);
		free(x->pub.message);
		pcre2_code_free(x->code);
		free_pats(x->allow, x->nallow);
	}
	free(r->v);
	free_pats(r->allow, r->nallow);
	pcre2_match_context_free(r->mctx);
	free(r);
}

size_t sr_count(const struct sr_rules *r)
{
	return r ? r->n : 0;
}

const struct sr_rule *sr_rule(const struct sr_rules *r, size_t i)
{
	return &r->v[i].pub;
}

/* ---- parsing ---- */

static int err_at(const struct qn_yval *n, int key, struct qn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int err_at(const struct qn_yval *n, int key, struct qn_err *e, const char *fmt, ...)
{
	char w[512], m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s%s", (key ? qn_yval_key_where(n, w, sizeof w) : qn_yval_where(n, w, sizeof w)), m);
}

static int good_id(const char *s, size_t n)
{
	if (!n || n > SR_ID_MAX || strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("_.-", s[i]))
			return 0;
	return 1;
}

static int good_type(const char *s, size_t n)
{
	if (!n || n > SR_ID_MAX || strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '_')
			return 0;
	return 1;
}

/* what names the pattern in messages ("rule 'x'", "rule 'x': allow"). */
static pcre2_code *compile(const struct qn_yval *p, uint32_t flags, const char *what,
			   int need_width, struct qn_err *e)
{
	int err;
	PCRE2_SIZE off;

	if (p->type != QN_YSCALAR || !p->slen) {
		err_at(p, 0, e, "%s: the pattern must be a non-empty string", what);
		return NULL;
	}
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)p->s, p->slen,
				      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
					  PCRE2_NEVER_BACKSLASH_C | flags,
				      &err, &off, NULL);
	if (!c) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		err_at(p, 0, e, "%s: pattern error at offset %zu: %s", what, (size_t)off,
		       (char *)msg);
		return NULL;
	}
	uint32_t minlen = 1;
	pcre2_pattern_info(c, PCRE2_INFO_MINLENGTH, &minlen);
	if (need_width && minlen == 0) {
		/* MINLENGTH is a lower bound; check the empty string itself. */
		pcre2_match_data *md = pcre2_match_data_create(1, NULL);
		int m = md ? pcre2_match(c, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : -1;
		pcre2_match_data_free(md);
		if (m >= 0 || !md) {
			pcre2_code_free(c);
			err_at(p, 0, e, "%s: the pattern matches the empty string", what);
			return NULL;
		}
	}
	/* Without JIT (an unsupported CPU) pcre2_match interprets: slower, same result. */
	pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
	return c;
}

/* A list of patterns, or one pattern. */
static int compile_list(const struct qn_yval *n, uint32_t flags, const char *what,
			pcre2_code ***out, size_t *nout, struct qn_err *e)
{
	size_t k = n->type == QN_YLIST ? n->n : 1;

	if (n->type == QN_YMAP || n->type == QN_YNULL)
		return err_at(n, 0, e, "%s: expected a pattern or a list of patterns", what);
	if (!(*out = calloc(k, sizeof **out)))
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < k; i++) {
		const struct qn_yval *p = n->type == QN_YLIST ? &n->v[i] : n;
		if (!((*out)[i] = compile(p, flags, what, 0, e)))
			return -1;
		(*nout)++;
	}
	return 0;
}

static char *dup_scalar(const struct qn_yval *n, const char *key, struct qn_err *e)
{
	if (n->type != QN_YSCALAR || strlen(n->s) != n->slen) {
		err_at(n, 0, e, "'%s' must be a string", key);
		return NULL;
	}
	char *s = strdup(n->s);
	if (!s)
		qn_errf(e, "out of memory");
	return s;
}

static int parse_flags(const struct qn_yval *n, uint32_t *flags, struct qn_err *e)
{
	static const char *const names[] = {"caseless", "multiline", "dotall", "extended"};
	static const uint32_t bits[] = {PCRE2_CASELESS, PCRE2_MULTILINE, PCRE2_DOTALL,
					PCRE2_EXTENDED};
	size_t k = n->type == QN_YLIST ? n->n : 1;

	if (n->type == QN_YMAP)
		return err_at(n, 0, e, "'flags' must be a list");
	for (size_t i = 0; i < k && n->type != QN_YNULL; i++) {
		const struct qn_yval *f = n->type == QN_YLIST ? &n->v[i] : n;
		size_t j = 0;
		while (j < 4 && (f->type != QN_YSCALAR || strcmp(f->s, names[j])))
			j++;
		if (j == 4)
			return err_at(
			    f, 0, e, "unknown flag '%.80s' (caseless, multiline, dotall, extended)",
			    f->type == QN_YSCALAR ? f->s : "");
		*flags |= bits[j];
	}
	return 0;
}

static int parse_rule(struct sr_rules *r, const struct qn_yval *it, struct qn_err *e)
{
	static const char *const keys[] = {"id",   "pattern", "severity", "message", "type",
					   "kind", "flags",   "group",	  "allow",   NULL};
	char what[SR_ID_MAX + 16];

	if (it->type != QN_YMAP)
		return err_at(it, 0, e, "a rule must be a map (id, pattern, severity, ...)");
	for (size_t i = 0; i < it->n; i++) {
		size_t k = 0;
		while (keys[k] && strcmp(keys[k], it->v[i].key))
			k++;
		if (!keys[k])
			return err_at(&it->v[i], 1, e,
				      "unknown key '%.80s' in a rule (id, pattern, severity, "
				      "message, type, kind, flags, group, allow)",
				      it->v[i].key);
	}
	const struct qn_yval *id = qn_yval_get(it, "id"), *pat = qn_yval_get(it, "pattern"), *v;
	if (!id || id->type == QN_YNULL)
		return err_at(it, 0, e, "a rule needs an 'id'");
	if (id->type != QN_YSCALAR || !good_id(id->s, id->slen))
		return err_at(id, 0, e, "'id' must be 1 to %d of A-Z a-z 0-9 _ . -", SR_ID_MAX);
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].pub.id, id->s))
			return err_at(id, 0, e, "another rule has the id '%s'", id->s);
	snprintf(what, sizeof what, "rule '%s'", id->s);
	if (!pat || pat->type == QN_YNULL)
		return err_at(it, 0, e, "%s needs a 'pattern'", what);

	struct rule *x = &r->v[r->n++];
	memset(x, 0, sizeof *x);
	x->pub.severity = 1;
	x->pub.line = it->line;
	x->pub.kind = SR_POLICY;
	size_t idl = strlen(id->s);
	if (!(x->pub.id = strdup(id->s)) || !(x->pub.rule_id = malloc(idl + 11)))
		return qn_errf(e, "out of memory");
	memcpy(x->pub.rule_id, "QN-POLICY-", 10);
	memcpy(x->pub.rule_id + 10, id->s, idl + 1);
	if ((v = qn_yval_get(it, "severity")) && v->type != QN_YNULL) {
		if (v->type != QN_YSCALAR || (x->pub.severity = sr_severity_parse(v->s)) < 0)
			return err_at(v, 0, e, "'severity' must be low, medium, high or critical");
	}
	if ((v = qn_yval_get(it, "kind")) && v->type != QN_YNULL) {
		int k = -1;
		for (int j = 0; j < 3 && v->type == QN_YSCALAR; j++)
			if (!strcmp(v->s, kind_names[j]))
				k = j;
		if (k < 0)
			return err_at(v, 0, e, "'kind' must be policy, secret or pii");
		x->pub.kind = (enum sr_kind)k;
	}
	if ((v = qn_yval_get(it, "type")) && v->type != QN_YNULL) {
		if (v->type != QN_YSCALAR || !good_type(v->s, v->slen))
			return err_at(v, 0, e, "'type' must be 1 to %d of A-Z 0-9 _", SR_ID_MAX);
		if (!(x->pub.type = strdup(v->s)))
			return qn_errf(e, "out of memory");
	} else if (!(x->pub.type = strdup("POLICY"))) {
		return qn_errf(e, "out of memory");
	}
	if ((v = qn_yval_get(it, "message")) && v->type != QN_YNULL) {
		if (!(x->pub.message = dup_scalar(v, "message", e)))
			return -1;
	} else {
		char m[SR_ID_MAX + 32];
		snprintf(m, sizeof m, "matches rule %s", id->s);
		if (!(x->pub.message = strdup(m)))
			return qn_errf(e, "out of memory");
	}
	uint32_t flags = 0;
	if ((v = qn_yval_get(it, "flags")) && parse_flags(v, &flags, e) < 0)
		return -1;
	if (!(x->code = compile(pat, flags, what, 1, e)))
		return -1;
	if ((v = qn_yval_get(it, "group")) && v->type != QN_YNULL) {
		uint32_t ncap = 0;
		char *end;
		pcre2_pattern_info(x->code, PCRE2_INFO_CAPTURECOUNT, &ncap);
		unsigned long g = v->type == QN_YSCALAR && !v->quoted ? strtoul(v->s, &end, 10) : 0;
		if (v->type != QN_YSCALAR || v->quoted || !v->slen || *end || v->s[0] == '-' ||
		    g > ncap)
			return err_at(v, 0, e,
				      "'group' must be a capture group of the pattern (0 to %u)",
				      ncap);
		x->pub.group = (uint32_t)g;
	}
	if (x->pub.group + 1 > r->max_groups)
		r->max_groups = x->pub.group + 1;
	if ((v = qn_yval_get(it, "allow")) && v->type != QN_YNULL) {
		snprintf(what, sizeof what, "rule '%s': allow", id->s);
		if (compile_list(v, flags, what, &x->allow, &x->nallow, e) < 0)
			return -1;
	}
	return 0;
}

struct sr_rules *sr_rules_parse(const char *text, size_t len, const char *file, struct qn_err *e)
{
	struct sr_rules *r = calloc(1, sizeof *r);
	struct qn_yval root;
	const struct qn_yval *list, *allow;
	int rc = -1;

	if (!r || !(r->mctx = pcre2_match_context_create(NULL))) {
		sr_rules_free(r);
		qn_errf(e, "out of memory");
		return NULL;
	}
	r->max_groups = 1;
	pcre2_set_match_limit(r->mctx, SR_MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, SR_DEPTH_LIMIT);
	pcre2_set_heap_limit(r->mctx, SR_HEAP_LIMIT);
	if (qn_yaml_parse(text, len, file, &root, e) < 0) {
		sr_rules_free(r);
		return NULL;
	}
	list = qn_yval_get(&root, "rules");
	allow = qn_yval_get(&root, "allow");
	if (root.type != QN_YMAP) {
		err_at(&root, 0, e, "expected a map with 'rules' (and 'allow')");
		goto out;
	}
	for (size_t i = 0; i < root.n; i++)
		if (strcmp(root.v[i].key, "rules") && strcmp(root.v[i].key, "allow")) {
			err_at(&root.v[i], 1, e, "unknown key '%.80s' (rules, allow)",
			       root.v[i].key);
			goto out;
		}
	if (!list && !allow) {
		err_at(&root, 0, e, "'rules' is missing");
		goto out;
	}
	if (list && list->type != QN_YLIST && list->type != QN_YNULL) {
		err_at(list, 0, e, "'rules' must be a list");
		goto out;
	}
	if (list && list->n > SR_MAX_RULES) {
		err_at(list, 0, e, "more than %d rules", SR_MAX_RULES);
		goto out;
	}
	if (list && list->n && !(r->v = calloc(list->n, sizeof *r->v))) {
		qn_errf(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; list && i < list->n; i++)
		if (parse_rule(r, &list->v[i], e) < 0)
			goto out;
	if (allow && allow->type != QN_YNULL &&
	    compile_list(allow, 0, "allow", &r->allow, &r->nallow, e) < 0)
		goto out;
	rc = 0;
out:
	qn_yval_release(&root);
	if (rc < 0) {
		sr_rules_free(r);
		return NULL;
	}
	return r;
}

struct sr_rules *sr_rules_load(const char *path, struct qn_err *e)
{
	char *buf;
	size_t n;
	if (qn_yaml_read_file(path, QN_YAML_MAX_BYTES, &buf, &n, e))
		return NULL;
	struct sr_rules *r = sr_rules_parse(buf, n, path, e);
	free(buf);
	return r;
}

/* ---- matching ---- */

int sr_scratch_init(struct sr_scratch *s, const struct sr_rules *r)
{
	/* Room for the largest group any rule reports. */
	s->md = pcre2_match_data_create(r ? r->max_groups : 1, NULL);
	return s->md ? 0 : -1;
}

void sr_scratch_release(struct sr_scratch *s)
{
	pcre2_match_data_free(s->md);
	s->md = NULL;
}

/* pcre2_match, falling back to the interpreter when the JIT stack runs out. */
static int match(const struct sr_rules *r, const pcre2_code *c, const char *t, size_t n, size_t at,
		 pcre2_match_data *md)
{
	int rc = pcre2_match(c, (PCRE2_SPTR)t, n, at, 0, md, r->mctx);
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match(c, (PCRE2_SPTR)t, n, at, PCRE2_NO_JIT, md, r->mctx);
	return rc;
}

static int is_limit(int rc)
{
	return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	       rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT ||
	       rc == PCRE2_ERROR_NOMEMORY;
}

/* 1 excused, 0 not, SR_LIMIT. */
static int excused(const struct sr_rules *r, pcre2_code *const *v, size_t nv, const char *s,
		   size_t n, pcre2_match_data *md)
{
	for (size_t i = 0; i < nv; i++) {
		int rc = match(r, v[i], s, n, 0, md);
		if (rc >= 0)
			return 1;
		if (rc != PCRE2_ERROR_NOMATCH)
			return SR_LIMIT;
	}
	return 0;
}

int sr_allowed(const struct sr_rules *r, const char *value, size_t n, struct sr_scratch *s)
{
	if (!r || !r->nallow)
		return 0;
	return excused(r, r->allow, r->nallow, value, n, s->md);
}

int sr_scan(const struct sr_rules *r, size_t i, const char *text, size_t len, struct sr_scratch *s,
	    struct sr_span **v, size_t *n, size_t *cap, size_t max, struct qn_err *e)
{
	const struct rule *x = &r->v[i];
	pcre2_match_data *md = s->md;
	size_t at = 0;

	while (at <= len) {
		int rc = match(r, x->code, text, len, at, md);
		if (rc == PCRE2_ERROR_NOMATCH)
			return 0;
		if (rc < 0) {
			if (is_limit(rc))
				return SR_LIMIT;
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof msg);
			return qn_errf(e, "rule '%s': %s", x->pub.id, (char *)msg);
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		if (me < ms || me > len)
			return 0; /* \K games: stop rather than misplace a span */
		size_t gs = ms, ge = me;
		if (x->pub.group) {
			if ((uint32_t)rc > x->pub.group && ov[2 * x->pub.group] != PCRE2_UNSET) {
				gs = ov[2 * x->pub.group];
				ge = ov[2 * x->pub.group + 1];
			} else {
				gs = ge = 0; /* the group took no part: nothing to report */
			}
		}
		if (ge > gs && ge <= len) {
			int ex = excused(r, x->allow, x->nallow, text + gs, ge - gs, md);
			if (!ex)
				ex = sr_allowed(r, text + gs, ge - gs, s);
			if (ex == SR_LIMIT)
				return SR_LIMIT;
			if (!ex) {
				if (*n >= max)
					return qn_errf(e, "more than %zu findings", max);
				if (*n == *cap) {
					size_t nc = *cap ? *cap * 2 : 64;
					struct sr_span *nv = realloc(*v, nc * sizeof *nv);
					if (!nv)
						return qn_errf(e, "out of memory");
					*v = nv;
					*cap = nc;
				}
				(*v)[(*n)++] = (struct sr_span){gs, ge};
			}
		}
		if (me > ms) {
			at = me;
		} else {
			if (ms >= len)
				return 0;
			at = ms + 1;
			while (at < len && ((unsigned char)text[at] & 0xC0) == 0x80)
				at++;
		}
	}
	return 0;
}
