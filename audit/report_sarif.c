/*
 * report_sarif.c - the scan's SARIF 2.1.0 report (report.h), for GitHub
 * code scanning and other SARIF viewers.
 *
 * One run of tool.driver "quern-audit" whose rules are the findings' rule
 * ids (stable across runs: QN-PII-EMAIL, a policy rule's id), each with
 * descriptions, a default level from its severity and GitHub's tags and
 * security-severity. Each finding is a result: rule, level, message (with the
 * masked excerpt: raw values never reach a report), one location (the
 * source as a relative URI, region.startLine the input line; the byte span
 * inside the JSON field goes into the region's properties, since SARIF's
 * byteOffset counts from the start of the file), partialFingerprints (the
 * finding's fingerprint), suppressions for baseline findings, and
 * properties (type, kind, score, document id, field, span, excerpt). The
 * salted value hash stays out of it.
 *
 * GitHub rejects a run with more than 25,000 results and keeps only the
 * 5,000 most severe, and a file over 10 MB; one noisy rule should not crowd
 * out the others. So results are ordered by severity (reported before
 * suppressed, then input order),
 * capped at REP_SARIF_PER_RULE per rule and REP_SARIF_RESULTS in all, and
 * stop before their serialised size passes REP_SARIF_BYTES; strings are cut
 * to bounded lengths. What was left out is said in the run's properties
 * (totals per rule from the summary, written and omitted counts) and in a
 * warning notification of the invocation; each failed gate is an error
 * notification.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "report.h"
#include "report_util.h"

#define REP_SARIF_RESULTS 5000	   /* GitHub stores the first 5,000 results of a run */
#define REP_SARIF_PER_RULE 1000	   /* results kept per rule */
#define REP_SARIF_RULES 1000	   /* GitHub's hard limit is 25,000 */
#define REP_SARIF_BYTES (8u << 20) /* serialised results, under GitHub's 10 MB */
#define ID_CP 255
#define TEXT_CP 1000
#define SHORT_CP 256

/* A JSON string of s[0..n) cleaned to valid UTF-8 and cut at maxcp code points. */
static json_t *jstrn(const char *s, size_t n, size_t maxcp)
{
	struct qn_buf b;
	json_t *v;

	qn_buf_init(&b, REP_MAX_BYTES);
	if (rep_text(&b, s, n, maxcp, REP_PLAIN) < 0) {
		qn_buf_release(&b);
		return NULL;
	}
	v = json_stringn(b.data ? b.data : "", b.len);
	qn_buf_release(&b);
	return v;
}

static json_t *jstr(const char *s, size_t maxcp)
{
	return jstrn(s ? s : "", s ? strlen(s) : 0, maxcp);
}

/* A string field of obj, cleaned; NULL when absent or not a string. */
static json_t *jfield(const json_t *obj, const char *key, size_t maxcp)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_string(v) ? jstrn(json_string_value(v), json_string_length(v), maxcp) : NULL;
}

/* Sets obj[key] = v (stolen); a NULL v is skipped. Returns -1 on failure. */
static int put(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : 0;
}

/* A cleaned copy of a string field as a C string (the caller frees it). */
static char *cfield(const json_t *obj, const char *key, size_t maxcp)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	struct qn_buf b;

	if (!json_is_string(v))
		return NULL;
	qn_buf_init(&b, REP_MAX_BYTES);
	if (rep_jtext(&b, v, maxcp, REP_PLAIN) < 0 || qn_buf_grow(&b, 0) < 0) {
		qn_buf_release(&b);
		return NULL;
	}
	return qn_buf_detach(&b, NULL);
}

static const char *sev_level(int rank)
{
	return rank >= 3 ? "error" : rank == 1 ? "note" : "warning";
}

static const char *sev_score(int rank)
{
	static const char *const s[] = {"5.0", "3.0", "5.5", "8.0", "9.5"};
	return s[rank];
}

/* "CREDIT_CARD" -> "CreditCard": SARIF's rule name is one PascalCase word. */
static json_t *pascal(const char *s)
{
	char out[128];
	size_t n = 0;
	int up = 1;

	for (; s && *s && n + 1 < sizeof out; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
			up = 1;
			continue;
		}
		if (c >= 'A' && c <= 'Z' && !up)
			c = (unsigned char)(c - 'A' + 'a');
		else if (c >= 'a' && c <= 'z' && up)
			c = (unsigned char)(c - 'a' + 'A');
		out[n++] = (char)c;
		up = 0;
	}
	return n ? json_stringn(out, n) : NULL;
}

/*
 * The rules, in order: the summary's by_rule, then rules only the findings
 * name. index maps a cleaned rule id to its position in rules.
 */
struct rules {
	json_t *rules; /* array of reportingDescriptor */
	json_t *index; /* id -> integer */
	json_t *level; /* id -> default level (string) */
	size_t dropped;
};

static int add_rule(struct rules *r, const char *id, const json_t *info)
{
	const char *kind = rep_str(info, "kind"), *type = rep_str(info, "type");
	int rank = rep_sev_rank(rep_str(info, "severity"));
	json_t *rule, *props, *tags;
	char full[1600];
	char *msg, *ctype;
	size_t idx;
	int rc = -1;

	if (json_object_get(r->index, id))
		return 0;
	if (json_array_size(r->rules) >= REP_SARIF_RULES) {
		r->dropped++;
		return 0;
	}
	msg = cfield(info, "message", SHORT_CP);
	ctype = cfield(info, "type", 64);
	if (kind && !strcmp(kind, "secret"))
		snprintf(full, sizeof full,
			 "A secret (%s) in the scanned data: %s. Findings carry a masked excerpt "
			 "and a salted hash, never the value. Revoke or rotate the credential "
			 "and remove it from the data.",
			 ctype ? ctype : id, msg ? msg : "secret");
	else if (kind && !strcmp(kind, "pii"))
		snprintf(full, sizeof full,
			 "Personal data (%s) in the scanned data: %s. Findings carry a masked "
			 "excerpt and a salted hash, never the value. Redact it (quern-clean "
			 "--pii) or remove the document before training.",
			 ctype ? ctype : id, msg ? msg : "personal data");
	else
		snprintf(full, sizeof full, "Policy rule %s matched: %s.", id,
			 msg ? msg : (ctype ? ctype : "see the rules file"));
	rule = json_object();
	props = json_object();
	tags = json_array();
	if (!rule || !props || !tags) {
		json_decref(tags);
		goto out;
	}
	json_array_append_new(tags, json_string("security"));
	if (kind && (!strcmp(kind, "pii") || !strcmp(kind, "secret") || !strcmp(kind, "policy")))
		json_array_append_new(tags, json_string(kind));
	json_array_append_new(tags, json_string("quern"));
	/* json_object_set_new and json_array_append_new take the value even when they fail. */
	if (put(props, "tags", tags) < 0 ||
	    put(props, "security-severity", json_string(sev_score(rank))) < 0 ||
	    put(props, "problem.severity",
		json_string(rank >= 3	? "error"
			    : rank == 1 ? "recommendation"
					: "warning")) < 0 ||
	    put(props, "kind", jfield(info, "kind", 32)) < 0 ||
	    put(props, "type", jfield(info, "type", 64)) < 0 ||
	    put(props, "severity", jfield(info, "severity", 32)) < 0 ||
	    put(rule, "id", jstr(id, ID_CP)) < 0 || put(rule, "name", pascal(type)) < 0 ||
	    put(rule, "shortDescription",
		json_pack("{s:o}", "text", jstr(msg ? msg : (ctype ? ctype : id), SHORT_CP))) < 0 ||
	    put(rule, "fullDescription", json_pack("{s:o}", "text", jstr(full, TEXT_CP))) < 0 ||
	    put(rule, "help", json_pack("{s:o}", "text", jstr(full, TEXT_CP))) < 0 ||
	    put(rule, "defaultConfiguration", json_pack("{s:s}", "level", sev_level(rank))) < 0)
		goto out;
	rc = put(rule, "properties", props);
	props = NULL;
	if (rc < 0)
		goto out;
	idx = json_array_size(r->rules);
	rc = json_array_append_new(r->rules, rule);
	rule = NULL;
	if (rc < 0 || json_object_set_new(r->index, id, json_integer((json_int_t)idx)) < 0 ||
	    json_object_set_new(r->level, id, json_string(sev_level(rank))) < 0)
		rc = -1;
out:
	json_decref(props);
	json_decref(rule);
	free(msg);
	free(ctype);
	return rc;
}

/* The finding's rule id, cleaned, in out; 0 when it has none. */
static int rule_id(const json_t *f, char *out, size_t n)
{
	char *id = cfield(f, "rule", ID_CP);

	if (!id || !*id) {
		free(id);
		return 0;
	}
	snprintf(out, n, "%s", id);
	free(id);
	return 1;
}

static int collect_rules(struct rules *r, const json_t *summary, const json_t *findings)
{
	const json_t *by_rule = rep_obj(rep_obj(summary, "findings"), "by_rule");
	const char *key;
	json_t *v;
	char id[1100];
	size_t i;

	json_object_foreach((json_t *)by_rule, key, v)
	{
		/* Keys from an unchecked source may be invalid UTF-8: clean them. */
		json_t *k = jstr(key, ID_CP);
		int rc = k ? add_rule(r, json_string_value(k), json_is_object(v) ? v : NULL) : -1;
		json_decref(k);
		if (rc < 0)
			return -1;
	}
	json_array_foreach(findings, i, v)
	{
		if (json_is_object(v) && rule_id(v, id, sizeof id) && add_rule(r, id, v) < 0)
			return -1;
	}
	return 0;
}

/* Percent-encodes a path as a URI reference: relative stays relative. */
static json_t *path_uri(const char *path, int *relative)
{
	static const char hex[] = "0123456789ABCDEF";
	struct qn_buf b;
	json_t *v;
	const unsigned char *p;

	qn_buf_init(&b, 16384);
	*relative = path[0] != '/';
	if (!*relative && qn_buf_adds(&b, "file://") < 0)
		goto fail;
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	for (p = (const unsigned char *)path; *p; p++) {
		int keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
		if ((keep ? qn_buf_addc(&b, (char)*p)
			  : qn_buf_printf(&b, "%%%c%c", hex[*p >> 4], hex[*p & 15])) < 0)
			goto fail;
	}
	if (!b.len && qn_buf_adds(&b, "stdin") < 0)
		goto fail;
	v = json_stringn(b.data, b.len);
	qn_buf_release(&b);
	return v;
fail:
	qn_buf_release(&b);
	return NULL;
}

static json_t *location(const json_t *f, const char *fallback_source)
{
	const char *src = rep_str(f, "source");
	long long line = rep_count(f, "line", 0);
	json_t *phys, *art, *region, *rprops, *clean, *uri;
	int relative;

	if (!src || !*src || !strcmp(src, "-"))
		src = fallback_source;
	clean = jstr(src, 1024);
	if (!clean)
		return NULL;
	uri = path_uri(json_string_value(clean), &relative);
	json_decref(clean);
	art = json_object();
	if (!art || put(art, "uri", uri) < 0) {
		json_decref(art);
		return NULL;
	}
	if (relative)
		json_object_set_new(art, "uriBaseId", json_string("%SRCROOT%"));
	phys = json_pack("{s:o}", "artifactLocation", art);
	if (!phys)
		return NULL;
	if (line >= 1) {
		region = json_pack("{s:I}", "startLine", (json_int_t)line);
		rprops = json_object();
		if (!region || !rprops) {
			json_decref(region);
			json_decref(rprops);
			json_decref(phys);
			return NULL;
		}
		put(rprops, "field", jfield(f, "field", 64));
		if (json_is_number(json_object_get(f, "start")) &&
		    json_is_number(json_object_get(f, "end"))) {
			long long s = rep_count(f, "start", 0), e = rep_count(f, "end", 0);
			json_object_set_new(rprops, "byteOffset", json_integer(s));
			json_object_set_new(rprops, "byteLength", json_integer(e > s ? e - s : 0));
		}
		if (json_object_size(rprops))
			json_object_set_new(region, "properties", rprops);
		else
			json_decref(rprops);
		json_object_set_new(phys, "region", region);
	}
	return json_pack("{s:o}", "physicalLocation", phys);
}

static json_t *result(const json_t *f, const char *id, const struct rules *r,
		      const char *fallback_source)
{
	int rank = rep_sev_rank(rep_str(f, "severity"));
	const json_t *idx = json_object_get(r->index, id);
	const char *level =
	    rank ? sev_level(rank) : json_string_value(json_object_get(r->level, id));
	char *msg = cfield(f, "message", SHORT_CP), *type = cfield(f, "type", 64);
	char *excerpt = cfield(f, "excerpt", 120), *doc = cfield(f, "doc", 200);
	struct qn_buf text;
	json_t *res = NULL, *props, *loc;
	const char *fp = rep_str(f, "fingerprint");
	double score = rep_num(f, "score", -1);

	qn_buf_init(&text, 8192);
	if (qn_buf_adds(&text, msg    ? msg
			       : type ? type
				      : id) < 0 ||
	    (excerpt && qn_buf_printf(&text, " (%s)", excerpt) < 0) ||
	    (doc && qn_buf_printf(&text, " in document '%s'", doc) < 0) ||
	    qn_buf_addc(&text, '.') < 0)
		goto out;
	res = json_pack("{s:s, s:I, s:s, s:{s:s}}", "ruleId", id, "ruleIndex",
			json_integer_value(idx), "level", level ? level : "warning", "message",
			"text", text.data);
	if (!res)
		goto out;
	loc = location(f, fallback_source);
	if (loc)
		json_object_set_new(res, "locations", json_pack("[o]", loc));
	if (fp && *fp)
		json_object_set_new(res, "partialFingerprints",
				    json_pack("{s:o}", "quernFingerprint/v1", jstr(fp, 128)));
	if (score >= 0 && score <= 1)
		json_object_set_new(res, "rank", json_real(round(score * 1000) / 10));
	if (rep_bool(f, "suppressed", 0) == 1)
		json_object_set_new(res, "suppressions",
				    json_pack("[{s:s, s:s, s:s}]", "kind", "external", "status",
					      "accepted", "justification",
					      "known finding, listed in the baseline"));
	props = json_object();
	if (props) {
		put(props, "type", jfield(f, "type", 64));
		put(props, "kind", jfield(f, "kind", 32));
		put(props, "severity", jfield(f, "severity", 32));
		if (score >= 0 && isfinite(score))
			json_object_set_new(props, "score", json_real(score));
		put(props, "doc", jfield(f, "doc", 200));
		put(props, "field", jfield(f, "field", 64));
		if (json_is_number(json_object_get(f, "start")))
			json_object_set_new(props, "start", json_integer(rep_count(f, "start", 0)));
		if (json_is_number(json_object_get(f, "end")))
			json_object_set_new(props, "end", json_integer(rep_count(f, "end", 0)));
		put(props, "excerpt", jfield(f, "excerpt", 120));
		json_object_set_new(res, "properties", props);
	}
out:
	qn_buf_release(&text);
	free(msg);
	free(type);
	free(excerpt);
	free(doc);
	return res;
}

struct cand {
	size_t i; /* index in findings */
	int rank;
};

static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;

	if (a->rank != b->rank)
		return b->rank - a->rank;
	return a->i < b->i ? -1 : a->i > b->i;
}

struct tally {
	size_t written, by_cap, by_size, no_rule;
	json_t *written_by_rule; /* id -> count of written, unsuppressed results */
};

static json_t *results(const json_t *findings, const struct rules *r, const char *fallback_source,
		       struct tally *t)
{
	size_t n = json_array_size(findings), nc = 0, bytes = 0;
	struct cand *c = malloc((n ? n : 1) * sizeof *c);
	json_t *out = json_array(), *per_rule = json_object();
	char id[1100];

	t->written_by_rule = json_object();
	if (!c || !out || !per_rule || !t->written_by_rule)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const json_t *f = json_array_get(findings, i);
		if (!json_is_object(f))
			continue;
		c[nc].i = i;
		c[nc].rank = rep_sev_rank(rep_str(f, "severity"));
		/* Baseline (suppressed) findings after the reported ones. */
		if (rep_bool(f, "suppressed", 0) == 1)
			c[nc].rank -= 5;
		nc++;
	}
	qsort(c, nc, sizeof *c, cand_cmp);
	for (size_t k = 0; k < nc; k++) {
		const json_t *f = json_array_get(findings, c[k].i);
		json_t *res;
		json_int_t seen;
		size_t sz;

		if (!rule_id(f, id, sizeof id) || !json_object_get(r->index, id)) {
			t->no_rule++;
			continue;
		}
		seen = json_integer_value(json_object_get(per_rule, id));
		if (seen >= REP_SARIF_PER_RULE || t->written >= REP_SARIF_RESULTS) {
			t->by_cap++;
			continue;
		}
		res = result(f, id, r, fallback_source);
		if (!res)
			goto fail;
		sz = json_dumpb(res, NULL, 0, JSON_COMPACT);
		if (bytes + sz > REP_SARIF_BYTES) {
			json_decref(res);
			t->by_size++;
			continue;
		}
		bytes += sz + 1;
		if (json_array_append_new(out, res) < 0)
			goto fail;
		json_object_set_new(per_rule, id, json_integer(seen + 1));
		if (rep_bool(f, "suppressed", 0) != 1) {
			json_int_t w = json_integer_value(json_object_get(t->written_by_rule, id));
			json_object_set_new(t->written_by_rule, id, json_integer(w + 1));
		}
		t->written++;
	}
	free(c);
	json_decref(per_rule);
	return out;
fail:
	free(c);
	json_decref(out);
	json_decref(per_rule);
	return NULL;
}

/* Run properties: the totals, what was written, and what was left out. */
static json_t *run_props(const json_t *summary, const json_t *findings, const struct tally *t)
{
	const json_t *f = rep_obj(summary, "findings");
	const json_t *by_rule = rep_obj(f, "by_rule");
	long long total = rep_count(f, "total", (long long)json_array_size(findings));
	long long omitted = total > (long long)t->written ? total - (long long)t->written : 0;
	json_t *p = json_object(), *totals = json_object(), *left = json_object();
	const char *key;
	json_t *v;

	if (!p || !totals || !left)
		goto fail;
	json_object_foreach((json_t *)by_rule, key, v)
	{
		long long n = json_is_object(v) ? rep_count(v, "count", -1) : rep_count_value(v);
		json_t *k = jstr(key, ID_CP);
		if (!k)
			goto fail;
		if (n >= 0) {
			long long w = json_integer_value(
			    json_object_get(t->written_by_rule, json_string_value(k)));
			json_object_set_new(totals, json_string_value(k), json_integer(n));
			if (n > w)
				json_object_set_new(left, json_string_value(k),
						    json_integer(n - w));
		}
		json_decref(k);
	}
	json_object_set_new(p, "findingsTotal", json_integer(total));
	json_object_set_new(p, "findingsReported", json_integer(rep_count(f, "reported", 0)));
	json_object_set_new(p, "findingsSuppressed", json_integer(rep_count(f, "suppressed", 0)));
	json_object_set_new(p, "resultsWritten", json_integer((json_int_t)t->written));
	json_object_set_new(p, "resultsOmitted", json_integer(omitted));
	json_object_set_new(p, "findingsByRule", totals);
	json_object_set_new(p, "omittedByRule", left);
	json_object_set_new(p, "limits",
			    json_pack("{s:i, s:i, s:i, s:i}", "results", REP_SARIF_RESULTS,
				      "resultsPerRule", REP_SARIF_PER_RULE, "rules",
				      REP_SARIF_RULES, "resultBytes", (int)REP_SARIF_BYTES));
	if (json_is_boolean(json_object_get(summary, "passed")))
		json_object_set_new(p, "passed", json_boolean(rep_bool(summary, "passed", 1)));
	return p;
fail:
	json_decref(p);
	json_decref(totals);
	json_decref(left);
	return NULL;
}

static json_t *note(const char *level, const char *id, const char *text)
{
	return json_pack("{s:s, s:{s:o}, s:{s:s}}", "level", level, "message", "text",
			 jstr(text, TEXT_CP), "descriptor", "id", id);
}

static json_t *invocation(const json_t *summary, const json_t *props, const struct rules *r)
{
	json_t *notes = json_array(), *inv;
	const json_t *gates = rep_arr(summary, "gates");
	long long omitted = json_integer_value(json_object_get(props, "resultsOmitted"));
	const char *created = rep_str(summary, "created");
	int passed = rep_bool(summary, "passed", 1);
	char text[1400];
	size_t i;
	json_t *g;

	if (!notes)
		return NULL;
	if (omitted > 0) {
		snprintf(text, sizeof text,
			 "%lld of %lld findings are not in this file: results are capped at %d "
			 "per rule and %d in all, most severe first, within GitHub code "
			 "scanning's limits; the run's properties give the totals per rule, "
			 "and the findings JSON Lines has every finding.",
			 omitted,
			 (long long)json_integer_value(json_object_get(props, "findingsTotal")),
			 REP_SARIF_PER_RULE, REP_SARIF_RESULTS);
		json_array_append_new(notes, note("warning", "QN-SARIF-CAPPED", text));
	}
	if (r->dropped) {
		snprintf(text, sizeof text,
			 "%zu rules beyond the first %d are left out, with their "
			 "results.",
			 r->dropped, REP_SARIF_RULES);
		json_array_append_new(notes, note("warning", "QN-SARIF-RULES-CAPPED", text));
	}
	json_array_foreach(gates, i, g)
	{
		const char *reason = rep_str(g, "reason");
		if (i >= 1000)
			break;
		if (rep_bool(g, "passed", 1) == 1)
			continue;
		snprintf(text, sizeof text, "policy gate failed: %s",
			 reason		      ? reason
			 : rep_str(g, "rule") ? rep_str(g, "rule")
					      : "(unnamed)");
		json_array_append_new(notes, note("error", "QN-GATE", text));
	}
	inv = json_pack("{s:b, s:i}", "executionSuccessful", 1, "exitCode", passed ? 0 : 1);
	if (!inv) {
		json_decref(notes);
		return NULL;
	}
	/* SARIF wants date-time; pass the scan's own stamp only when it looks like one. */
	if (created && strlen(created) >= 20 && strlen(created) <= 40 && created[4] == '-' &&
	    created[10] == 'T' && strspn(created, "0123456789-:T.Z+") == strlen(created))
		json_object_set_new(inv, "startTimeUtc", json_string(created));
	if (json_array_size(notes))
		json_object_set_new(inv, "toolExecutionNotifications", notes);
	else
		json_decref(notes);
	return inv;
}

static int dump_cb(const char *p, size_t n, void *data)
{
	return qn_buf_add(data, p, n);
}

int report_sarif(const json_t *summary, const json_t *findings, const char *path, struct qn_err *e)
{
	struct rules r = {NULL, NULL, NULL, 0};
	struct tally t = {0};
	json_t *res = NULL, *props = NULL, *inv = NULL, *driver, *run, *doc = NULL, *ver;
	const json_t *inputs = rep_arr(summary, "inputs");
	const char *fallback = rep_str(json_array_get(inputs, 0), "path");
	struct qn_buf b;
	int rc = -1;

	if (!json_is_object(summary))
		return qn_errf(e, "sarif report: the summary is not an object");
	if (!json_is_array(findings))
		findings = NULL;
	if (!fallback || !*fallback)
		fallback = "stdin";
	r.rules = json_array();
	r.index = json_object();
	r.level = json_object();
	qn_buf_init(&b, REP_MAX_BYTES);
	if (!r.rules || !r.index || !r.level || collect_rules(&r, summary, findings) < 0 ||
	    !(res = results(findings, &r, fallback, &t)) ||
	    !(props = run_props(summary, findings, &t)) || !(inv = invocation(summary, props, &r)))
		goto nomem;
	ver = jfield(summary, "version", 64);
	driver = json_pack("{s:s, s:o, s:O}", "name", "quern-audit", "version",
			   ver ? ver : json_string(QN_VERSION), "rules", r.rules);
	if (!driver)
		goto nomem;
	run = json_pack("{s:{s:o}, s:[o], s:o, s:o}", "tool", "driver", driver, "invocations", inv,
			"results", res, "properties", props);
	inv = res = props = NULL; /* the pack took them, also when it failed */
	if (!run)
		goto nomem;
	doc = json_pack("{s:s, s:s, s:[o]}", "$schema",
			"https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
			"sarif-schema-2.1.0.json",
			"version", "2.1.0", "runs", run);
	if (!doc || json_dump_callback(doc, dump_cb, &b, JSON_COMPACT) < 0 ||
	    qn_buf_addc(&b, '\n') < 0)
		goto nomem;
	rc = rep_commit(&b, path, "sarif", e);
	goto out;
nomem:
	qn_errf(e, "sarif report: out of memory or past %zu MiB", REP_MAX_BYTES >> 20);
out:
	json_decref(doc);
	json_decref(res);
	json_decref(props);
	json_decref(inv);
	json_decref(t.written_by_rule);
	json_decref(r.rules);
	json_decref(r.index);
	json_decref(r.level);
	qn_buf_release(&b);
	return rc;
}
