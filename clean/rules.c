/* rules.c - see rules.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "err.h"

struct rule {
	char *name;
	enum cn_rule_action action;
	char *replacement;
	size_t replen;
	pcre2_code *code;
};

struct cn_rules {
	struct rule *v;
	size_t n;
	char *file;
	pcre2_match_context *mctx;
};

void cn_rules_free(struct cn_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].replacement);
		pcre2_code_free(r->v[i].code);
	}
	free(r->v);
	free(r->file);
	pcre2_match_context_free(r->mctx);
	free(r);
}

size_t cn_rules_count(const struct cn_rules *r)
{
	return r->n;
}

const char *cn_rules_name(const struct cn_rules *r, size_t i)
{
	return i < r->n ? r->v[i].name : NULL;
}

enum cn_rule_action cn_rules_action(const struct cn_rules *r, size_t i)
{
	return r->v[i].action;
}

static int good_name(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > CN_RULE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("_.:-", s[i]))
			return 0;
	return 1;
}

static int compile_rule(struct cn_rules *r, struct rule *x, const struct qn_yval *pat, uint32_t flags,
			struct qn_err *e)
{
	char w[512];
	int err;
	PCRE2_SIZE off;

	x->code = pcre2_compile((PCRE2_SPTR)pat->s, pat->slen,
				PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C | flags,
				&err, &off, NULL);
	if (!x->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		return qn_errf(e, "%srule '%s': pattern error at offset %zu: %s",
			       qn_yval_where(pat, w, sizeof w), x->name, (size_t)off, (char *)msg);
	}
	/* Without JIT (unsupported CPU) pcre2_match interprets: slower, same result. */
	pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE);
	uint32_t minlen = 1;
	pcre2_pattern_info(x->code, PCRE2_INFO_MINLENGTH, &minlen);
	if (x->action == CN_RULE_REDACT && minlen == 0)
		return qn_errf(e, "%srule '%s': a redact pattern must not match an empty string",
			       qn_yval_where(pat, w, sizeof w), x->name);
	return 0;
}

static int parse_rule(struct cn_rules *r, const struct qn_yval *it, struct qn_err *e)
{
	static const char *const keys[] = {"name", "pattern", "action", "replacement", "flags", NULL};
	static const char *const actions[] = {"drop", "redact", "tag", NULL};
	static const char *const flag_names[] = {"caseless", "multiline", "dotall", "extended"};
	static const uint32_t flag_bits[] = {PCRE2_CASELESS, PCRE2_MULTILINE, PCRE2_DOTALL,
					     PCRE2_EXTENDED};
	char w[512];
	const char *name = NULL, *repl = "<REDACTED>";
	int action = -1;
	uint32_t flags = 0;

	if (it->type != QN_YMAP)
		return qn_errf(e, "%sa rule must be a map", qn_yval_where(it, w, sizeof w));
	if (qn_ycheck_keys(it, keys, "a rule", e) < 0 || qn_yget_str(it, "name", &name, e) < 0)
		return -1;
	if (!name)
		return qn_errf(e, "%sa rule needs a 'name'", qn_yval_where(it, w, sizeof w));
	const struct qn_yval *nv = qn_yval_get(it, "name");
	if (!good_name(name))
		return qn_errf(e, "%s'name' must be 1 to %d of A-Z a-z 0-9 _ . : -",
			       qn_yval_where(nv, w, sizeof w), CN_RULE_NAME_MAX);
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].name, name))
			return qn_errf(e, "%sanother rule is called '%s'", qn_yval_where(nv, w, sizeof w),
				       name);
	const struct qn_yval *pat = qn_yval_get(it, "pattern");
	const char *ps;
	if (qn_yget_str(it, "pattern", &ps, e) < 0)
		return -1;
	if (!pat || pat->type != QN_YSCALAR || !pat->slen)
		return qn_errf(e, "%srule '%s' needs a 'pattern'",
			       qn_yval_where(pat ? pat : it, w, sizeof w), name);
	int ga = qn_yget_choice(it, "action", actions, &action, e);
	if (ga < 0)
		return -1;
	if (ga == 0)
		return qn_errf(e, "%srule '%s' needs an 'action' (drop, redact or tag)",
			       qn_yval_where(it, w, sizeof w), name);
	int gr = qn_yget_str(it, "replacement", &repl, e);
	if (gr < 0)
		return -1;
	if (gr > 0 && action != CN_RULE_REDACT)
		return qn_errf(e, "%s'replacement' is only for redact rules",
			       qn_yval_where(qn_yval_get(it, "replacement"), w, sizeof w));
	const char **fl = NULL;
	size_t nf = 0;
	if (qn_yget_strlist(it, "flags", &fl, &nf, e) < 0)
		return -1;
	const struct qn_yval *fv = qn_yval_get(it, "flags");
	for (size_t i = 0; i < nf; i++) {
		size_t j = 0;
		while (j < 4 && strcmp(fl[i], flag_names[j]))
			j++;
		if (j == 4) {
			const struct qn_yval *at = fv->type == QN_YLIST ? &fv->v[i] : fv;
			qn_errf(e, "%sunknown flag '%.80s' (caseless, multiline, dotall, extended)",
				qn_yval_where(at, w, sizeof w), fl[i]);
			free(fl);
			return -1;
		}
		flags |= flag_bits[j];
	}
	free(fl);

	struct rule *x = &r->v[r->n];
	memset(x, 0, sizeof *x);
	x->action = (enum cn_rule_action)action;
	x->name = strdup(name);
	x->replacement = strdup(repl);
	x->replen = strlen(repl);
	r->n++;
	if (!x->name || !x->replacement)
		return qn_errf(e, "out of memory");
	return compile_rule(r, x, pat, flags, e);
}

struct cn_rules *cn_rules_parse(const char *text, size_t len, const char *file, struct qn_err *e)
{
	struct cn_rules *r = calloc(1, sizeof *r);
	struct qn_yval root;
	char w[512];
	static const char *const top[] = {"rules", NULL};

	if (!r || !(r->file = strdup(file ? file : "-")) || !(r->mctx = pcre2_match_context_create(NULL))) {
		cn_rules_free(r);
		qn_errf(e, "out of memory");
		return NULL;
	}
	pcre2_set_match_limit(r->mctx, CN_RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, 10000);
	pcre2_set_heap_limit(r->mctx, 20000); /* KiB, interpreter only */
	if (qn_yaml_parse(text, len, r->file, &root, e) < 0) {
		cn_rules_free(r);
		return NULL;
	}
	int rc = -1;
	const struct qn_yval *list = qn_yval_get(&root, "rules");
	if (root.type != QN_YMAP) {
		qn_errf(e, "%sexpected a map with 'rules'", qn_yval_where(&root, w, sizeof w));
	} else if (qn_ycheck_keys(&root, top, "the rules file", e) < 0) {
	} else if (!list) {
		qn_errf(e, "%s'rules' is missing", qn_yval_where(&root, w, sizeof w));
	} else if (list->type != QN_YLIST && list->type != QN_YNULL) {
		qn_errf(e, "%s'rules' must be a list", qn_yval_where(list, w, sizeof w));
	} else if (list->n > CN_RULES_MAX) {
		qn_errf(e, "%smore than %d rules", qn_yval_where(list, w, sizeof w), CN_RULES_MAX);
	} else if (list->n && !(r->v = calloc(list->n, sizeof *r->v))) {
		qn_errf(e, "out of memory");
	} else {
		rc = 0;
		for (size_t i = 0; i < list->n && rc == 0; i++)
			rc = parse_rule(r, &list->v[i], e);
	}
	qn_yval_release(&root);
	if (rc < 0) {
		cn_rules_free(r);
		return NULL;
	}
	return r;
}

struct cn_rules *cn_rules_load(const char *path, struct qn_err *e)
{
	FILE *f = fopen(path, "rb");
	struct qn_buf b;
	char chunk[65536];
	size_t k;

	if (!f) {
		qn_errno(e, errno, "cannot open '%s'", path);
		return NULL;
	}
	qn_buf_init(&b, CN_CONFIG_MAX_BYTES);
	while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (qn_buf_add(&b, chunk, k) < 0)
			break;
	int bad = ferror(f) || k > 0;
	fclose(f);
	struct cn_rules *r = NULL;
	if (bad)
		qn_errf(e, "%s: cannot read or larger than %u bytes", path, CN_CONFIG_MAX_BYTES);
	else
		r = cn_rules_parse(b.data ? b.data : "", b.len, path, e);
	qn_buf_release(&b);
	return r;
}

int cn_rules_result_init(struct cn_rules_result *res, const struct cn_rules *r)
{
	memset(res, 0, sizeof *res);
	res->n = r->n;
	res->hits = calloc(r->n ? r->n : 1, sizeof *res->hits);
	return res->hits ? 0 : -1;
}

void cn_rules_result_release(struct cn_rules_result *res)
{
	free(res->hits);
	res->hits = NULL;
}

static int match_error(const struct cn_rules *r, const struct rule *x, int rc, struct qn_err *e)
{
	PCRE2_UCHAR msg[256];
	pcre2_get_error_message(rc, msg, sizeof msg);
	return qn_errf(e, "%s: rule '%s': %s", r->file, x->name, (char *)msg);
}

/* 1 matched, 0 not, -1 error. */
static int matches(const struct cn_rules *r, const struct rule *x, const char *s, size_t n,
		   pcre2_match_data *md, struct qn_err *e)
{
	int rc = pcre2_match(x->code, (PCRE2_SPTR)s, n, 0, 0, md, r->mctx);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return rc >= 0 ? 1 : match_error(r, x, rc, e);
}

static int redact(const struct cn_rules *r, const struct rule *x, const char *s, size_t n,
		  struct qn_buf *out, pcre2_match_data *md, uint64_t *count, struct qn_err *e)
{
	size_t at = 0, copied = 0;

	qn_buf_reset(out);
	while (at <= n) {
		int rc = pcre2_match(x->code, (PCRE2_SPTR)s, n, at, 0, md, r->mctx);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0)
			return match_error(r, x, rc, e);
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t start = ov[0], end = ov[1];
		if (start < copied || end < start || end > n)
			break; /* \K games: stop rather than misplace text */
		if (qn_buf_add(out, s + copied, start - copied) < 0 ||
		    qn_buf_add(out, x->replacement, x->replen) < 0)
			return qn_errf(e, "%s: rule '%s': output too large", r->file, x->name);
		(*count)++;
		copied = end;
		if (end > start) {
			at = end;
			continue;
		}
		if (start >= n)
			break;
		at = start + 1;
		while (at < n && ((unsigned char)s[at] & 0xC0) == 0x80)
			at++;
	}
	if (qn_buf_add(out, s + copied, n - copied) < 0)
		return qn_errf(e, "%s: rule '%s': output too large", r->file, x->name);
	return 0;
}

int cn_rules_apply(const struct cn_rules *r, const char *text, size_t len, struct qn_buf *out,
		   struct cn_rules_result *res, struct qn_err *e)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	struct qn_buf a, b;
	int rc = -1;

	res->dropped = 0;
	res->drop_rule = 0;
	res->reason[0] = 0;
	res->ntags = 0;
	res->redactions = 0;
	memset(res->hits, 0, (res->n ? res->n : 1) * sizeof *res->hits);
	qn_buf_reset(out);
	if (!md)
		return qn_errf(e, "out of memory");
	qn_buf_init(&a, out->max);
	qn_buf_init(&b, out->max);
	for (size_t i = 0; i < r->n && i < res->n; i++) {
		if (r->v[i].action != CN_RULE_DROP)
			continue;
		int m = matches(r, &r->v[i], text, len, md, e);
		if (m < 0)
			goto done;
		if (m) {
			res->dropped = 1;
			res->drop_rule = i;
			res->hits[i] = 1;
			snprintf(res->reason, sizeof res->reason, "rule:%s", r->v[i].name);
			rc = 0;
			goto done;
		}
	}
	for (size_t i = 0; i < r->n && i < res->n; i++) {
		if (r->v[i].action != CN_RULE_TAG)
			continue;
		int m = matches(r, &r->v[i], text, len, md, e);
		if (m < 0)
			goto done;
		res->hits[i] = (uint64_t)m;
		res->ntags += (size_t)m;
	}
	const char *cur = text;
	size_t curlen = len;
	struct qn_buf *dst = &a;
	for (size_t i = 0; i < r->n && i < res->n; i++) {
		if (r->v[i].action != CN_RULE_REDACT)
			continue;
		if (redact(r, &r->v[i], cur, curlen, dst, md, &res->hits[i], e) < 0)
			goto done;
		res->redactions += res->hits[i];
		cur = dst->data ? dst->data : "";
		curlen = dst->len;
		dst = dst == &a ? &b : &a;
	}
	if (qn_buf_add(out, cur, curlen) < 0) {
		qn_errf(e, "%s: output too large", r->file);
		goto done;
	}
	rc = 0;
done:
	if (rc < 0)
		qn_buf_reset(out);
	qn_buf_release(&a);
	qn_buf_release(&b);
	pcre2_match_data_free(md);
	return rc;
}
