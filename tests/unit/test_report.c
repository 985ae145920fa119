/*
 * test_report.c - audit/report.h: the scan's JUnit, SARIF and HTML reports
 * from summaries and findings built here. The JUnit file validates against
 * shared/schemas/junit.xsd (xmllint) and the SARIF file against
 * shared/schemas/sarif-schema-2.1.0.json (python3-jsonschema); shared/ sits
 * beside the repository ($QN_TOP/../shared). Hostile strings (markup,
 * quotes, control bytes, invalid UTF-8) come out escaped and valid; fields
 * of the wrong type are skipped; the SARIF caps hold and say what they left
 * out; raw values never appear; failed writes leave nothing behind.
 *
 * "test_report --write DIR" writes the fixture's reports into DIR
 * (report.html, report.xml, report.sarif; pass.html without failed gates or
 * history; hostile.html from the hostile strings) for
 * tests/cli/audit_report.sh, which renders the HTML in headless Chromium.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>

#include "check.h"
#include "err.h"
#include "report.h"
#include "testfs.h"
#include "utf8.h"

/* A raw secret that must never reach a report (only its masked excerpt may). */
#define RAW_SECRET "AKIAIOSFODNN7QUERNRAW"

static char schemas[4096];

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[12000];
	int st;

	snprintf(cmd, sizeof cmd, fmt, a, b);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int xsd_valid(const char *xml)
{
	char xsd[4200];

	snprintf(xsd, sizeof xsd, "%s/junit.xsd", schemas);
	return sh("xmllint --noout --schema '%s' '%s' >/dev/null 2>&1", xsd, xml) == 0;
}

static int sarif_valid(const char *sarif)
{
	char schema[4200];

	snprintf(schema, sizeof schema, "%s/sarif-schema-2.1.0.json", schemas);
	return sh("/usr/bin/python3 -m jsonschema -i '%s' '%s' >/dev/null 2>&1", sarif, schema) ==
	       0;
}

static char *slurp_str(const char *path)
{
	size_t n;
	unsigned char *p = slurp(path, &n);
	char *s = p ? realloc(p, n + 1) : NULL;

	if (!s) {
		free(p);
		return NULL;
	}
	s[n] = 0;
	return s;
}

/* Valid UTF-8 with no control bytes but tab, newline and carriage return. */
static int clean_text(const char *s)
{
	if (!s || !qn_utf8_valid(s, strlen(s)))
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7F)
			return 0;
	return 1;
}

static int count_of(const char *s, const char *what)
{
	int n = 0;

	for (const char *p = s; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* Number of nodes an XPath expression selects in an HTML file. */
static int html_count(const char *path, const char *xpath)
{
	htmlDocPtr doc = htmlReadFile(path, "UTF-8",
				      HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr r;
	int n = -1;

	if (!doc)
		return -1;
	ctx = xmlXPathNewContext(doc);
	r = ctx ? xmlXPathEvalExpression((const xmlChar *)xpath, ctx) : NULL;
	if (r && r->nodesetval)
		n = r->nodesetval->nodeNr;
	else if (r)
		n = 0;
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return n;
}

static const char summary_json[] =
    "{\"tool\":\"quern-audit\",\"version\":\"0.1.0\",\"created\":\"2026-11-27T18:00:00Z\","
    "\"inputs\":[{\"path\":\"data/docs.jsonl\",\"documents\":900,\"bytes\":4500000},"
    "{\"path\":\"data/gen/outputs.jsonl\",\"documents\":100,\"bytes\":250000}],"
    "\"documents\":1000,\"bytes\":4750000,"
    "\"findings\":{\"total\":64,\"reported\":62,\"suppressed\":2,"
    "\"by_type\":{\"EMAIL\":40,\"PHONE\":12,\"IBAN\":5,\"CREDIT_CARD\":3,\"AWS_ACCESS_KEY\":2},"
    "\"by_severity\":{\"medium\":52,\"high\":8,\"critical\":2},"
    "\"by_source\":{\"data/docs.jsonl\":50,\"data/gen/outputs.jsonl\":12},"
    "\"by_rule\":{"
    "\"QN-PII-EMAIL\":{\"count\":40,\"type\":\"EMAIL\",\"kind\":\"pii\",\"severity\":\"medium\","
    "\"message\":\"e-mail address\"},"
    "\"QN-PII-PHONE\":{\"count\":12,\"type\":\"PHONE\",\"kind\":\"pii\",\"severity\":\"medium\","
    "\"message\":\"phone number\"},"
    "\"QN-PII-IBAN\":{\"count\":5,\"type\":\"IBAN\",\"kind\":\"pii\",\"severity\":\"high\","
    "\"message\":\"IBAN (mod-97 valid)\"},"
    "\"QN-PII-CREDIT_CARD\":{\"count\":3,\"type\":\"CREDIT_CARD\",\"kind\":\"pii\","
    "\"severity\":\"high\",\"message\":\"payment card number (Luhn valid)\"},"
    "\"QN-SECRET-AWS_ACCESS_KEY\":{\"count\":2,\"type\":\"AWS_ACCESS_KEY\",\"kind\":\"secret\","
    "\"severity\":\"critical\",\"message\":\"AWS access key id\"}}},"
    "\"gates\":["
    "{\"id\":\"CREDIT_CARD\",\"rule\":\"CREDIT_CARD: 0\",\"observed\":3,\"limit\":0,\"per\":null,"
    "\"passed\":false,\"reason\":\"CREDIT_CARD: 3 findings, at most 0 allowed\"},"
    "{\"id\":\"EMAIL\",\"rule\":\"EMAIL: max 10 per 10k documents\",\"observed\":400,"
    "\"limit\":10,\"per\":{\"count\":10000,\"unit\":\"documents\"},\"passed\":false,"
    "\"reason\":\"EMAIL: 400 per 10k documents, at most 10 allowed\"},"
    "{\"id\":\"severity:critical\",\"rule\":\"severity critical: 5\",\"observed\":2,"
    "\"limit\":5,\"per\":null,\"passed\":true,\"reason\":\"severity critical: 2 findings, at "
    "most 5 allowed\"}],"
    "\"passed\":false,\"policy\":\"policy.yaml\",\"rules\":null,\"baseline\":\"baseline.json\"}";

/* The findings that go with summary_json: 64, two of them suppressed. */
static json_t *fixture_findings(void)
{
	static const struct {
		const char *rule, *type, *kind, *sev, *msg, *excerpt;
		int n;
		double score;
	} spec[] = {
	    {"QN-PII-EMAIL", "EMAIL", "pii", "medium", "e-mail address", "j***@e*****.com", 40,
	     0.85},
	    {"QN-PII-PHONE", "PHONE", "pii", "medium", "phone number", "+44 ** **** *958", 12, 0.6},
	    {"QN-PII-IBAN", "IBAN", "pii", "high", "IBAN (mod-97 valid)", "DE89 **** **** 3000", 5,
	     1.0},
	    {"QN-PII-CREDIT_CARD", "CREDIT_CARD", "pii", "high", "payment card number",
	     "4111 **** **** 1111", 3, 1.0},
	    {"QN-SECRET-AWS_ACCESS_KEY", "AWS_ACCESS_KEY", "secret", "critical",
	     "AWS access key id", "AKIA****************", 4, 0.99},
	};
	json_t *a = json_array();
	int k = 0;

	for (size_t s = 0; s < sizeof spec / sizeof *spec; s++)
		for (int i = 0; i < spec[s].n; i++, k++) {
			char doc[32], fp[80], hash[80];
			int gen = k % 5 == 4;
			snprintf(doc, sizeof doc, "doc-%04d", k);
			snprintf(fp, sizeof fp, "%064x", 0x1000 + k);
			snprintf(hash, sizeof hash, "%064x", 0x9000 + k);
			json_t *f = json_pack(
			    "{s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:s, "
			    "s:s, "
			    "s:s, s:b}",
			    "rule", spec[s].rule, "type", spec[s].type, "kind", spec[s].kind,
			    "severity", spec[s].sev, "score", spec[s].score, "message", spec[s].msg,
			    "source", gen ? "data/gen/outputs.jsonl" : "data/docs.jsonl", "line",
			    k + 1, "doc", doc, "field", "text", "start", 10 + k, "end", 31 + k,
			    "excerpt", spec[s].excerpt, "hash", hash, "fingerprint", fp,
			    "suppressed", s == 4 && i >= 2);
			/* A field the reports must never copy: the raw value itself. */
			if (s == 4)
				json_object_set_new(f, "value", json_string(RAW_SECRET));
			json_array_append_new(a, f);
		}
	return a;
}

static json_t *history_summary(int day, long long medium, long long high, int passed)
{
	char created[32];

	snprintf(created, sizeof created, "2026-11-%02dT18:00:00Z", day);
	return json_pack("{s:s, s:s, s:{s:I, s:I, s:{s:I, s:I}}, s:b}", "tool", "quern-audit",
			 "created", created, "findings", "total", (json_int_t)(medium + high),
			 "reported", (json_int_t)(medium + high), "by_severity", "medium",
			 (json_int_t)medium, "high", (json_int_t)high, "passed", passed);
}

static json_t *load(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, 0, &je);

	if (!v)
		printf("FAIL: fixture json: %s at %d\n", je.text, je.position);
	return v;
}

static int write_all(const char *dir, json_t *summary, json_t *findings, struct qn_err *e)
{
	json_t *hist[3] = {history_summary(24, 80, 2, 0), history_summary(25, 70, 9, 0),
			   history_summary(26, 30, 4, 1)};
	char path[4400];
	int rc = 0;

	snprintf(path, sizeof path, "%s/report.xml", dir);
	rc |= report_junit(summary, path, e);
	snprintf(path, sizeof path, "%s/report.sarif", dir);
	rc |= report_sarif(summary, findings, path, e);
	snprintf(path, sizeof path, "%s/report.html", dir);
	rc |= report_html(summary, findings, (const json_t *const *)hist, 3, path, e);
	for (int i = 0; i < 3; i++)
		json_decref(hist[i]);
	return rc;
}

static void test_fixture(void)
{
	json_t *summary = load(summary_json), *findings = fixture_findings();
	struct qn_err e = {{0}};
	json_t *sarif, *run, *results, *rules;
	json_error_t je;
	char *x;

	CHECK_NAMED("fixture writes all three reports", write_all(top, summary, findings, &e) == 0);
	if (e.msg[0])
		printf("  %s\n", e.msg);

	/* JUnit: one case per gate, failures named by their reasons. */
	CHECK_NAMED("junit validates against junit.xsd", xsd_valid(in_top("report.xml")));
	x = slurp_str(in_top("report.xml"));
	CHECK_NAMED("junit suite name", contains(x, "<testsuite name=\"quern-audit scan\""));
	CHECK_NAMED("junit counts: 3 gates + findings + 2 inputs, 2 failures",
		    contains(x, "tests=\"6\" failures=\"2\" errors=\"0\""));
	CHECK_NAMED("junit failure message is the gate's reason",
		    contains(x, "<failure type=\"gate\" message=\"CREDIT_CARD: 3 findings, at most "
				"0 allowed\">"));
	CHECK_NAMED("junit case per gate",
		    contains(x, "name=\"EMAIL: max 10 per 10k documents\"") &&
			contains(x, "name=\"severity critical: 5\" time=\"0\"/>"));
	CHECK_NAMED("junit rate gate says per", contains(x, "per: 10000 documents"));
	CHECK_NAMED("junit input cases", contains(x, "name=\"data/gen/outputs.jsonl\""));
	CHECK_NAMED("junit time has three decimals", contains(x, "time=\"0.000\""));
	free(x);

	/* SARIF: schema-valid, rules from by_rule, one result per finding. */
	CHECK_NAMED("sarif validates against sarif-schema-2.1.0.json",
		    sarif_valid(in_top("report.sarif")));
	x = slurp_str(in_top("report.sarif"));
	CHECK_NAMED("no raw secret in sarif", x && !contains(x, RAW_SECRET));
	CHECK_NAMED("no value hash in sarif", x && !contains(x, "0000000000009000"));
	sarif = x ? json_loads(x, 0, &je) : NULL;
	free(x);
	run = json_array_get(json_object_get(sarif, "runs"), 0);
	rules = json_object_get(json_object_get(json_object_get(run, "tool"), "driver"), "rules");
	results = json_object_get(run, "results");
	CHECK_STR("sarif version", json_string_value(json_object_get(sarif, "version")), "2.1.0");
	CHECK_STR("sarif driver",
		  json_string_value(json_object_get(
		      json_object_get(json_object_get(run, "tool"), "driver"), "name")),
		  "quern-audit");
	CHECK_NAMED("sarif has 5 rules", json_array_size(rules) == 5);
	CHECK_STR("sarif rule id stable",
		  json_string_value(json_object_get(json_array_get(rules, 0), "id")),
		  "QN-PII-EMAIL");
	CHECK_STR(
	    "sarif rule security-severity",
	    json_string_value(json_object_get(
		json_object_get(json_array_get(rules, 4), "properties"), "security-severity")),
	    "9.5");
	CHECK_STR("sarif rule level from severity",
		  json_string_value(json_object_get(
		      json_object_get(json_array_get(rules, 2), "defaultConfiguration"), "level")),
		  "error");
	CHECK_NAMED("sarif one result per finding", json_array_size(results) == 64);
	{
		/* The most severe come first: the AWS keys (critical). */
		json_t *r0 = json_array_get(results, 0);
		json_t *loc = json_object_get(json_array_get(json_object_get(r0, "locations"), 0),
					      "physicalLocation");
		json_t *props = json_object_get(r0, "properties");
		size_t idx = (size_t)json_integer_value(json_object_get(r0, "ruleIndex"));
		CHECK_STR("sarif most severe first",
			  json_string_value(json_object_get(r0, "ruleId")),
			  "QN-SECRET-AWS_ACCESS_KEY");
		CHECK_STR("sarif ruleIndex matches ruleId",
			  json_string_value(json_object_get(json_array_get(rules, idx), "id")),
			  "QN-SECRET-AWS_ACCESS_KEY");
		CHECK_STR("sarif level", json_string_value(json_object_get(r0, "level")), "error");
		CHECK_STR("sarif uri",
			  json_string_value(
			      json_object_get(json_object_get(loc, "artifactLocation"), "uri")),
			  "data/docs.jsonl");
		CHECK_NAMED("sarif startLine is the input line",
			    json_integer_value(json_object_get(json_object_get(loc, "region"),
							       "startLine")) == 61);
		CHECK_NAMED("sarif fingerprint", json_is_string(json_object_get(
						     json_object_get(r0, "partialFingerprints"),
						     "quernFingerprint/v1")));
		CHECK_STR("sarif masked excerpt",
			  json_string_value(json_object_get(props, "excerpt")),
			  "AKIA****************");
		CHECK_NAMED("sarif message names the excerpt",
			    contains(json_string_value(
					 json_object_get(json_object_get(r0, "message"), "text")),
				     "AKIA****"));
	}
	{
		int suppressed = 0;
		size_t i;
		json_t *r;
		json_array_foreach(results, i, r) suppressed +=
		    json_object_get(r, "suppressions") != NULL;
		CHECK_NAMED("sarif baseline findings carry suppressions", suppressed == 2);
	}
	CHECK_NAMED("sarif omits nothing here",
		    json_integer_value(json_object_get(json_object_get(run, "properties"),
						       "resultsOmitted")) == 0);
	json_decref(sarif);

	/* HTML: failed gates first, three charts, the trend, masked excerpts. */
	x = slurp_str(in_top("report.html"));
	CHECK_NAMED("html is clean UTF-8", clean_text(x));
	CHECK_NAMED("html lists two failed gates",
		    html_count(in_top("report.html"),
			       "//ul[@id='failed-gates']/li[@class='gate-failed']") == 2);
	CHECK_NAMED("html failed gates come before the charts",
		    x && strstr(x, "id=\"failed-gates\"") && strstr(x, "id=\"chart-type\"") &&
			strstr(x, "id=\"failed-gates\"") < strstr(x, "id=\"chart-type\""));
	CHECK_NAMED("html gate reason shown",
		    contains(x, "CREDIT_CARD: 3 findings, at most 0 allowed"));
	CHECK_NAMED(
	    "html charts by type, severity, source",
	    html_count(
		in_top("report.html"),
		"//figure[@id='chart-type' or @id='chart-severity' or @id='chart-source']") == 3);
	CHECK_NAMED("html bars drawn", count_of(x, "<rect ") >= 5 + 3 + 2);
	CHECK_NAMED("html trend chart with history", contains(x, "id=\"chart-trend\""));
	CHECK_NAMED("html trend table has 4 runs",
		    html_count(in_top("report.html"), "//table[@id='trend-table']/tbody/tr") == 4);
	CHECK_NAMED("html top findings table",
		    contains(x, "id=\"findings-table\"") && contains(x, "j***@e*****.com"));
	CHECK_NAMED("no raw secret in html", x && !contains(x, RAW_SECRET));
	CHECK_NAMED("html has no script and no external fetch",
		    x && !contains(x, "<script") && !contains(x, "src=") && !contains(x, "href="));
	CHECK_NAMED("html forbids fetching", contains(x, "default-src 'none'"));
	free(x);

	/* Without history there is no trend; without failures, no red list. */
	{
		json_t *ok = json_deep_copy(summary);
		json_t *g = json_object_get(ok, "gates");
		for (size_t i = 0; i < json_array_size(g); i++)
			json_object_set_new(json_array_get(g, i), "passed", json_true());
		json_object_set_new(ok, "passed", json_true());
		json_object_set_new(ok, "started", json_string("2026-11-27T17:58:17Z"));
		CHECK(report_html(ok, findings, NULL, 0, in_top("pass.html"), &e) == 0);
		x = slurp_str(in_top("pass.html"));
		CHECK_NAMED("html without history has no trend", x && !contains(x, "chart-trend"));
		CHECK_NAMED("html all gates passed", contains(x, "All 3 policy gates passed") &&
							 !contains(x, "id=\"failed-gates\""));
		free(x);
		CHECK(report_junit(ok, in_top("pass.xml"), &e) == 0);
		x = slurp_str(in_top("pass.xml"));
		CHECK_NAMED("junit time from started to created", contains(x, "time=\"103.000\""));
		CHECK_NAMED("junit all passed",
			    contains(x, "failures=\"0\"") && !contains(x, "<failure"));
		free(x);
		CHECK_NAMED("passing junit validates", xsd_valid(in_top("pass.xml")));
		json_decref(ok);
	}
	json_decref(summary);
	json_decref(findings);
}

/* Strings an attacker controls: markup, quotes, controls, invalid UTF-8. */
static json_t *hostile(const char *base)
{
	/* With a NUL inside the value too. */
	static const char bad[] = "\"'<script>alert(1)</script>&amp;\0\x01\x1b[31m\x7f\xc3\x28\xff"
				  "\xed\xa0\x80\xef\xbf\xbe]]>--></title>";
	char s[512];
	size_t n = strlen(base);

	memcpy(s, base, n);
	memcpy(s + n, bad, sizeof bad - 1);
	return json_stringn_nocheck(s, n + sizeof bad - 1);
}

/* Puts hostile strings into every text field the reports show. */
static void make_hostile(json_t *summary, json_t *findings)
{
	json_t *f0 = json_array_get(findings, 0),
	       *g0 = json_array_get(json_object_get(summary, "gates"), 0);
	json_t *by_type = json_object_get(json_object_get(summary, "findings"), "by_type");
	json_t *by_rule = json_object_get(json_object_get(summary, "findings"), "by_rule");
	json_t *in0 = json_array_get(json_object_get(summary, "inputs"), 0);
	const char *names[] = {"rule",	  "type",	 "message",  "source", "doc",
			       "excerpt", "fingerprint", "severity", "field"};

	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		json_object_set_new(f0, names[i], hostile(names[i]));
	json_object_set_new(g0, "reason", hostile("reason"));
	json_object_set_new(g0, "rule", hostile("gate"));
	json_object_set_new(in0, "path", hostile("path"));
	json_object_set_new(in0, "error", hostile("error"));
	json_object_set_new(summary, "created", hostile("2026"));
	json_object_set_new(summary, "version", hostile("v"));
	json_object_set_new(summary, "policy", hostile("policy"));
	json_object_set_new(by_type, "EVIL<b>\"x", json_integer(7));
	json_object_set_new(by_rule, "QN-<script>",
			    json_pack("{s:i, s:o}", "count", 1, "message", hostile("m")));
}

static void test_hostile(void)
{
	json_t *summary = load(summary_json), *findings = fixture_findings();
	struct qn_err e = {{0}};
	char *x;

	make_hostile(summary, findings);
	CHECK_NAMED("hostile data: reports written", write_all(top, summary, findings, &e) == 0);
	if (e.msg[0])
		printf("  %s\n", e.msg);
	CHECK_NAMED("hostile junit validates", xsd_valid(in_top("report.xml")));
	x = slurp_str(in_top("report.xml"));
	CHECK_NAMED("hostile junit clean text", clean_text(x));
	CHECK_NAMED("hostile junit escapes markup",
		    contains(x, "&lt;script&gt;") && !contains(x, "<script"));
	free(x);
	CHECK_NAMED("hostile sarif validates", sarif_valid(in_top("report.sarif")));
	x = slurp_str(in_top("report.sarif"));
	CHECK_NAMED("hostile sarif is valid UTF-8", x && qn_utf8_valid(x, strlen(x)));
	{
		json_error_t je;
		json_t *s = x ? json_loads(x, 0, &je) : NULL;
		CHECK_NAMED("hostile sarif parses", s != NULL);
		json_decref(s);
	}
	free(x);
	x = slurp_str(in_top("report.html"));
	CHECK_NAMED("hostile html clean text", clean_text(x));
	CHECK_NAMED("hostile html has no script element",
		    html_count(in_top("report.html"), "//script") == 0 && !contains(x, "<script"));
	CHECK_NAMED("hostile html escapes",
		    contains(x, "&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;"));
	CHECK_NAMED("hostile html keeps the title element whole",
		    html_count(in_top("report.html"), "//title") >= 1 &&
			count_of(x, "</title>") == count_of(x, "<title"));
	CHECK_NAMED("hostile html: no stray bold from a chart key", !contains(x, "<b>"));
	free(x);
	json_decref(summary);
	json_decref(findings);
}

static void test_wrong_types(void)
{
	static const char *const summaries[] = {
	    "{}",
	    "{\"gates\":\"x\",\"findings\":5,\"inputs\":{},\"passed\":\"no\",\"created\":7}",
	    "{\"gates\":[1,\"a\",null,{},{\"passed\":\"x\",\"observed\":\"3\"},{\"observed\":5,"
	    "\"limit\":1},{\"rule\":7,\"per\":[],\"passed\":false}],"
	    "\"findings\":{\"total\":-5,\"by_type\":{\"A\":\"x\",\"B\":-3,\"C\":1e300,\"D\":{}},"
	    "\"by_severity\":[],\"by_source\":{\"s\":2.6},\"by_rule\":{\"R\":5,\"S\":{\"count\":"
	    "\"x\"},\"T\":null}},\"inputs\":[3,{\"path\":5},{\"documents\":\"many\"}]}",
	    "{\"passed\":false,\"gates\":[]}",
	};
	json_t *findings =
	    load("[1,\"x\",null,[],{},{\"rule\":5},{\"rule\":\"R\",\"line\":\"3\","
		 "\"start\":-4,\"end\":\"9\",\"score\":\"hi\",\"suppressed\":1},"
		 "{\"rule\":\"R\",\"line\":-1,\"source\":\"/abs/p a?th#x\",\"score\":7},"
		 "{\"rule\":\"R\",\"line\":2,\"source\":\"./c:d\",\"severity\":\"x\"}]");
	json_t *bad_hist[2] = {json_string("x"), NULL};
	struct qn_err e = {{0}};
	char name[64];

	for (size_t i = 0; i < sizeof summaries / sizeof *summaries; i++) {
		json_t *s = load(summaries[i]);
		int ok;
		ok = report_junit(s, in_top("w.xml"), &e) == 0 &&
		     report_sarif(s, findings, in_top("w.sarif"), &e) == 0 &&
		     report_html(s, findings, (const json_t *const *)bad_hist, 2, in_top("w.html"),
				 &e) == 0;
		snprintf(name, sizeof name, "wrong types %zu: reports written", i);
		CHECK_NAMED(name, ok);
		if (!ok)
			printf("  %s\n", e.msg);
		snprintf(name, sizeof name, "wrong types %zu: junit valid", i);
		CHECK_NAMED(name, xsd_valid(in_top("w.xml")));
		snprintf(name, sizeof name, "wrong types %zu: sarif valid", i);
		CHECK_NAMED(name, sarif_valid(in_top("w.sarif")));
		json_decref(s);
	}
	{
		/* The unknown gate result is a JUnit error, the computed one a failure. */
		char *x = slurp_str(in_top("w.xml"));
		CHECK_NAMED("junit empty gates and passed:false fail the findings case",
			    contains(x, "tests=\"1\" failures=\"1\"") &&
				contains(x, "marked failed"));
		free(x);
	}
	{
		json_t *s = load(summaries[2]);
		char *x;
		CHECK(report_sarif(s, findings, in_top("w.sarif"), &e) == 0);
		x = slurp_str(in_top("w.sarif"));
		CHECK_NAMED("sarif absolute path becomes a file URI, percent-encoded",
			    contains(x, "\"uri\":\"file:///abs/p%20a%3Fth%23x\""));
		CHECK_NAMED("sarif relative path with a colon stays relative",
			    contains(x, "\"uri\":\"c%3Ad\",\"uriBaseId\":\"%SRCROOT%\""));
		free(x);
		CHECK(report_junit(s, in_top("w.xml"), &e) == 0);
		x = slurp_str(in_top("w.xml"));
		CHECK_NAMED("junit: gate without a result is an error",
			    contains(x, "type=\"gate-unknown\""));
		CHECK_NAMED("junit: gate over its limit without passed fails",
			    count_of(x, "<failure type=\"gate\"") == 2);
		free(x);
		json_decref(s);
	}
	json_decref(bad_hist[0]);
	json_decref(findings);
	findings = json_array();
	CHECK_NAMED("summary not an object is an error",
		    report_junit(NULL, in_top("n.xml"), &e) < 0 &&
			report_sarif(findings, NULL, in_top("n.sarif"), &e) < 0 &&
			report_html(NULL, NULL, NULL, 0, in_top("n.html"), &e) < 0);
	json_decref(findings);
}

/* Counts at the top of the range (2^53 each, thousands of them) saturate, never overflow. */
static void test_huge_counts(void)
{
	json_t *summary = load("{\"findings\":{\"total\":9007199254740993,\"by_type\":{},"
			       "\"by_severity\":{},\"by_source\":{}}}");
	json_t *by_type = json_object_get(json_object_get(summary, "findings"), "by_type");
	json_t *by_sev = json_object_get(json_object_get(summary, "findings"), "by_severity");
	json_t *hist[2];
	struct qn_err e = {{0}};
	char key[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof key, "T%d", i);
		json_object_set_new(by_type, key, json_real(1e300));
		json_object_set_new(by_sev, key, json_integer(1LL << 53));
	}
	hist[0] = json_deep_copy(summary);
	hist[1] = json_deep_copy(summary);
	CHECK_NAMED("huge counts: html written",
		    report_html(summary, NULL, (const json_t *const *)hist, 2, in_top("huge.html"),
				&e) == 0);
	CHECK_NAMED("huge counts: junit written",
		    report_junit(summary, in_top("huge.xml"), &e) == 0);
	CHECK_NAMED("huge counts: junit validates", xsd_valid(in_top("huge.xml")));
	CHECK_NAMED("huge counts: sarif written",
		    report_sarif(summary, NULL, in_top("huge.sarif"), &e) == 0);
	json_decref(hist[0]);
	json_decref(hist[1]);
	json_decref(summary);
}

static void test_caps(void)
{
	json_t *summary =
	    load("{\"findings\":{\"total\":7020,\"reported\":7020,\"by_rule\":{"
		 "\"QN-PII-EMAIL\":{\"count\":7000,\"type\":\"EMAIL\",\"kind\":\"pii\","
		 "\"severity\":\"medium\"},\"QN-X\":{\"count\":20,\"kind\":\"policy\","
		 "\"severity\":\"low\"}}}}");
	json_t *findings = json_array(), *sarif, *run, *props, *results, *inv;
	struct qn_err e = {{0}};
	json_error_t je;
	char *x;
	size_t i;
	long long low = 0, email = 0;
	json_t *r;

	for (int k = 0; k < 7000; k++)
		json_array_append_new(findings,
				      json_pack("{s:s, s:s, s:s, s:i, s:s}", "rule", "QN-PII-EMAIL",
						"severity", "medium", "source", "a.jsonl", "line",
						k + 1, "excerpt", "a***@b.c"));
	/* A hostile, very long excerpt is cut. */
	for (int k = 0; k < 20; k++) {
		char *big = malloc(100001);
		memset(big, 'x', 100000);
		big[100000] = 0;
		json_array_append_new(findings, json_pack("{s:s, s:s, s:s, s:i, s:s}", "rule",
							  "QN-X", "severity", "low", "source",
							  "b.txt", "line", k + 1, "excerpt", big));
		free(big);
	}
	CHECK(report_sarif(summary, findings, in_top("cap.sarif"), &e) == 0);
	CHECK_NAMED("capped sarif validates", sarif_valid(in_top("cap.sarif")));
	x = slurp_str(in_top("cap.sarif"));
	CHECK_NAMED("capped sarif is small", x && strlen(x) < (10u << 20));
	sarif = x ? json_loads(x, 0, &je) : NULL;
	free(x);
	run = json_array_get(json_object_get(sarif, "runs"), 0);
	props = json_object_get(run, "properties");
	results = json_object_get(run, "results");
	json_array_foreach(results, i, r)
	{
		const char *id = json_string_value(json_object_get(r, "ruleId"));
		low += id && !strcmp(id, "QN-X");
		email += id && !strcmp(id, "QN-PII-EMAIL");
		if (id && !strcmp(id, "QN-X") && low == 1)
			CHECK_NAMED("long excerpt cut",
				    strlen(json_string_value(json_object_get(
					json_object_get(r, "properties"), "excerpt"))) < 1000);
	}
	CHECK_NAMED("per-rule cap keeps 1000 e-mails", email == 1000);
	CHECK_NAMED("a small rule is not crowded out", low == 20);
	CHECK_NAMED("run says 6000 omitted",
		    json_integer_value(json_object_get(props, "resultsOmitted")) == 6000);
	CHECK_NAMED("omitted per rule",
		    json_integer_value(json_object_get(json_object_get(props, "omittedByRule"),
						       "QN-PII-EMAIL")) == 6000 &&
			!json_object_get(json_object_get(props, "omittedByRule"), "QN-X"));
	CHECK_NAMED("totals per rule from the summary",
		    json_integer_value(json_object_get(json_object_get(props, "findingsByRule"),
						       "QN-PII-EMAIL")) == 7000);
	inv = json_array_get(json_object_get(run, "invocations"), 0);
	CHECK_NAMED(
	    "a warning notification says what was left out",
	    contains(json_string_value(json_object_get(
			 json_object_get(
			     json_array_get(json_object_get(inv, "toolExecutionNotifications"), 0),
			     "message"),
			 "text")),
		     "6000 of 7020 findings"));
	json_decref(sarif);

	/* Overall cap: 8 rules x 1000 -> 5000 results. */
	json_decref(findings);
	findings = json_array();
	for (int k = 0; k < 8000; k++) {
		char rule[16];
		snprintf(rule, sizeof rule, "R%d", k % 8);
		json_array_append_new(
		    findings, json_pack("{s:s, s:s, s:i}", "rule", rule, "source", "a", "line", 1));
	}
	CHECK(report_sarif(summary, findings, in_top("cap2.sarif"), &e) == 0);
	x = slurp_str(in_top("cap2.sarif"));
	sarif = x ? json_loads(x, 0, &je) : NULL;
	free(x);
	run = json_array_get(json_object_get(sarif, "runs"), 0);
	CHECK_NAMED("results capped at 5000",
		    json_array_size(json_object_get(run, "results")) == 5000);
	CHECK_NAMED("the rules of findings not in by_rule are added",
		    json_array_size(json_object_get(
			json_object_get(json_object_get(run, "tool"), "driver"), "rules")) == 10);
	json_decref(sarif);
	json_decref(findings);
	json_decref(summary);
}

static void test_write_failures(void)
{
	json_t *summary = load(summary_json);
	struct qn_err e = {{0}};
	struct stat st;

	CHECK_NAMED("missing folder: error",
		    report_junit(summary, in_top("no/such/r.xml"), &e) < 0);
	CHECK_NAMED("missing folder: message names the report", contains(e.msg, "junit report"));
	e.msg[0] = 0;
	CHECK_NAMED("/dev/full: error",
		    report_html(summary, NULL, NULL, 0, "/dev/full", &e) < 0 && e.msg[0]);
	CHECK_NAMED("/dev/full sarif: error", report_sarif(summary, NULL, "/dev/full", &e) < 0);
	/* An old report stays whole until the new one is complete. */
	CHECK(spit(in_top("keep.xml"), "old", 3) == 0);
	CHECK(report_junit(summary, in_top("keep.xml"), &e) == 0);
	CHECK_NAMED("rewritten in place", stat(in_top("keep.xml"), &st) == 0 && st.st_size > 100);
	json_decref(summary);
}

static int write_mode(const char *dir)
{
	json_t *summary = load(summary_json), *findings = fixture_findings();
	struct qn_err e = {{0}};
	char path[4400];
	int rc;

	mkdir(dir, 0777);
	rc = write_all(dir, summary, findings, &e);

	if (rc == 0) {
		json_t *ok = json_deep_copy(summary);
		json_t *g = json_object_get(ok, "gates");
		for (size_t i = 0; i < json_array_size(g); i++)
			json_object_set_new(json_array_get(g, i), "passed", json_true());
		json_object_set_new(ok, "passed", json_true());
		snprintf(path, sizeof path, "%s/pass.html", dir);
		rc = report_html(ok, findings, NULL, 0, path, &e);
		json_decref(ok);
	}
	if (rc == 0) {
		make_hostile(summary, findings);
		snprintf(path, sizeof path, "%s/hostile.html", dir);
		rc = report_html(summary, findings, NULL, 0, path, &e);
	}
	if (rc)
		fprintf(stderr, "test_report: %s\n", e.msg);
	json_decref(summary);
	json_decref(findings);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *qtop = getenv("QN_TOP");

	if (argc == 3 && !strcmp(argv[1], "--write"))
		return write_mode(argv[2]);
	snprintf(schemas, sizeof schemas, "%s/../shared/schemas", qtop && *qtop ? qtop : ".");
	if (access(schemas, R_OK) != 0) {
		printf("FAIL: schemas not found at %s (shared/ must sit beside the repository)\n",
		       schemas);
		return 1;
	}
	if (make_top("qn_test_report") < 0)
		return 1;
	test_fixture();
	test_hostile();
	test_wrong_types();
	test_huge_counts();
	test_caps();
	test_write_failures();
	rm_rf(top);
	return CHECK_DONE();
}
