/*
 * report_junit.c - the scan's JUnit XML report (report.h): what CI systems
 * (Jenkins, GitLab, GitHub test reporters) show as test results.
 *
 * One <testsuite name="quern-audit scan"> inside <testsuites>. Each policy
 * gate is a test case (classname quern-audit.scan.gates, named by the gate's
 * rule text) that fails, with the gate's one-line reason as the message, when
 * the gate failed. A "findings" case carries the counts in <system-out> (it
 * fails only when the summary says the scan failed and no gate explains it),
 * so a scan without a policy still reports one test. Each input is a case
 * (classname quern-audit.scan.inputs) that errors when the input could not
 * be read ("readable": false, or an "error" text). The output validates against the Jenkins xUnit
 * junit-10.xsd (shared/schemas/junit.xsd): suite times have at most three decimals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "report.h"
#include "report_util.h"

#define NAME_CP 300 /* code points kept of a name */
#define MSG_CP 2000 /* of a message */
#define MAX_GATES 10000
#define MAX_INPUTS 1000 /* input cases; the rest are counted in "findings" */

static int attr(struct qn_buf *b, const char *name, const char *value)
{
	if (!value)
		return 0;
	if (qn_buf_printf(b, " %s=\"", name) < 0 || rep_texts(b, value, MSG_CP, REP_ATTR) < 0)
		return -1;
	return qn_buf_addc(b, '"');
}

/* 1 passed, 0 failed, -1 unknown (no "passed" and no numbers to compare). */
static int gate_passed(const json_t *g)
{
	int p = rep_bool(g, "passed", -1);
	const json_t *obs = json_object_get(g, "observed"), *lim = json_object_get(g, "limit");

	if (p >= 0)
		return p;
	if (json_is_number(obs) && json_is_number(lim))
		return json_number_value(obs) <= json_number_value(lim);
	return -1;
}

/* The gate's display name: its rule text, else its id, else "gate N". */
static void gate_name(const json_t *g, size_t i, char *out, size_t n)
{
	const char *s = rep_str(g, "rule");

	if (!s || !*s)
		s = rep_str(g, "id");
	if (s && *s)
		snprintf(out, n, "%s", s);
	else
		snprintf(out, n, "gate %zu", i + 1);
}

static int gate_case(struct qn_buf *b, const json_t *g, size_t i)
{
	char name[1024], why[1200];
	int passed = gate_passed(g);
	const char *reason = rep_str(g, "reason");
	const json_t *per = rep_obj(g, "per");

	gate_name(g, i, name, sizeof name);
	if (qn_buf_adds(b, "    <testcase classname=\"quern-audit.scan.gates\"") < 0 ||
	    attr(b, "name", name) < 0 || qn_buf_adds(b, " time=\"0\"") < 0)
		return -1;
	if (passed == 1)
		return qn_buf_adds(b, "/>\n");
	if (!reason || !*reason) {
		snprintf(why, sizeof why, "%s: %s", name,
			 passed ? "the gate has no result" : "gate failed");
		reason = why;
	}
	if (qn_buf_printf(b, ">\n      <%s type=\"%s\"", passed ? "error" : "failure",
			  passed ? "gate-unknown" : "gate") < 0 ||
	    attr(b, "message", reason) < 0 || qn_buf_adds(b, ">gate: ") < 0 ||
	    rep_texts(b, name, NAME_CP, REP_TEXT) < 0)
		return -1;
	if (json_is_number(json_object_get(g, "observed")) &&
	    qn_buf_printf(b, "\nobserved: %.15g", rep_num(g, "observed", 0)) < 0)
		return -1;
	if (json_is_number(json_object_get(g, "limit")) &&
	    qn_buf_printf(b, "\nlimit: %.15g", rep_num(g, "limit", 0)) < 0)
		return -1;
	if (per && qn_buf_printf(b, "\nper: %lld ", rep_count(per, "count", 0)) < 0)
		return -1;
	if (per && rep_texts(b, rep_str(per, "unit"), NAME_CP, REP_TEXT) < 0)
		return -1;
	return qn_buf_printf(b, "</%s>\n    </testcase>\n", passed ? "error" : "failure");
}

static int count_lines(struct qn_buf *b, const char *title, const json_t *counts)
{
	size_t n;
	struct rep_kv *kv = rep_counts(counts, &n);
	int rc = 0;

	if (!kv)
		return 0;
	rc = qn_buf_printf(b, "%s:\n", title);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = qn_buf_adds(b, "  ");
		if (rc == 0)
			rc = rep_texts(b, kv[i].name, NAME_CP, REP_TEXT);
		if (rc == 0)
			rc = qn_buf_printf(b, ": %lld\n", kv[i].n);
	}
	free(kv);
	return rc;
}

static int findings_case(struct qn_buf *b, const json_t *summary, int failed_gates,
			 size_t more_inputs)
{
	const json_t *f = rep_obj(summary, "findings");
	int failed = rep_bool(summary, "passed", 1) == 0 && !failed_gates;

	if (qn_buf_adds(b, "    <testcase classname=\"quern-audit.scan\" name=\"findings\" "
			   "time=\"0\">\n") < 0)
		return -1;
	if (failed && qn_buf_adds(b, "      <failure type=\"scan\" message=\"the scan summary "
				     "is marked failed\"/>\n") < 0)
		return -1;
	if (qn_buf_printf(b,
			  "      <system-out>documents: %lld\nbytes: %lld\nfindings: %lld\n"
			  "reported: %lld\nsuppressed: %lld\n",
			  rep_count(summary, "documents", 0), rep_count(summary, "bytes", 0),
			  rep_count(f, "total", 0), rep_count(f, "reported", 0),
			  rep_count(f, "suppressed", 0)) < 0 ||
	    count_lines(b, "by severity", rep_obj(f, "by_severity")) < 0 ||
	    count_lines(b, "by type", rep_obj(f, "by_type")) < 0 ||
	    count_lines(b, "by source", rep_obj(f, "by_source")) < 0)
		return -1;
	if (rep_obj(summary, "errors") &&
	    qn_buf_printf(b, "bad lines: %lld\nscan errors: %lld\n",
			  rep_count(rep_obj(summary, "errors"), "bad_lines", 0),
			  rep_count(rep_obj(summary, "errors"), "scan_errors", 0)) < 0)
		return -1;
	if (more_inputs &&
	    qn_buf_printf(b, "%zu more inputs not listed as test cases\n", more_inputs) < 0)
		return -1;
	return qn_buf_adds(b, "</system-out>\n    </testcase>\n");
}

static int input_case(struct qn_buf *b, const json_t *in, size_t i)
{
	char name[64];
	const char *path = rep_str(in, "path");
	const char *error = rep_str(in, "error");

	if (!error && rep_bool(in, "readable", 1) == 0)
		error = "the input could not be read or scanned";

	snprintf(name, sizeof name, "input %zu", i + 1);
	if (qn_buf_adds(b, "    <testcase classname=\"quern-audit.scan.inputs\"") < 0 ||
	    attr(b, "name", path && *path ? path : name) < 0 ||
	    qn_buf_adds(b, " time=\"0\">\n") < 0)
		return -1;
	if (error && (qn_buf_adds(b, "      <error type=\"input\"") < 0 ||
		      attr(b, "message", error) < 0 || qn_buf_adds(b, "/>\n") < 0))
		return -1;
	return qn_buf_printf(b,
			     "      <system-out>documents: %lld\nbytes: %lld</system-out>\n"
			     "    </testcase>\n",
			     rep_count(in, "documents", 0), rep_count(in, "bytes", 0));
}

/* Seconds since the epoch of an RFC 3339 UTC stamp ("2026-11-27T18:00:00Z"); -1 if not one. */
static double utc_seconds(const char *s)
{
	struct tm tm;
	const char *end;
	double frac = 0;

	memset(&tm, 0, sizeof tm);
	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -1;
	if (*end == '.') {
		char *z;
		frac = strtod(end, &z);
		end = z;
	}
	if (strcmp(end, "Z"))
		return -1;
	return (double)timegm(&tm) + frac;
}

/*
 * The run time in seconds, as the schema's time pattern allows ("12.345"):
 * a "seconds" field, else created minus started.
 */
static void run_time(const json_t *summary, char *out, size_t n)
{
	double t = 0, t0 = utc_seconds(rep_str(summary, "started")),
	       t1 = utc_seconds(rep_str(summary, "created"));

	if (json_is_number(json_object_get(summary, "seconds")))
		t = rep_num(summary, "seconds", 0);
	else if (t0 >= 0 && t1 >= t0)
		t = t1 - t0;
	if (!(t >= 0) || t > 1e9)
		t = 0;
	snprintf(out, n, "%.3f", t);
}

static int build(struct qn_buf *b, const json_t *summary)
{
	const json_t *gates = rep_arr(summary, "gates");
	const json_t *inputs = rep_arr(summary, "inputs");
	const json_t *f = rep_obj(summary, "findings");
	size_t ngates = gates ? json_array_size(gates) : 0;
	size_t ninputs = inputs ? json_array_size(inputs) : 0, more_inputs = 0;
	size_t tests = 1, failures = 0, errors = 0, i;
	int failed_gates = 0;
	char time[64];
	static const char *const props[] = {"tool",   "version", "created",
					    "policy", "rules",	 "baseline"};

	if (ngates > MAX_GATES)
		ngates = MAX_GATES;
	if (ninputs > MAX_INPUTS) {
		more_inputs = ninputs - MAX_INPUTS;
		ninputs = MAX_INPUTS;
	}
	for (i = 0; i < ngates; i++) {
		int p = gate_passed(json_array_get(gates, i));
		tests++;
		failures += p == 0;
		errors += p < 0;
	}
	failed_gates = failures > 0;
	if (rep_bool(summary, "passed", 1) == 0 && !failed_gates)
		failures++;
	for (i = 0; i < ninputs; i++) {
		tests++;
		const json_t *in = json_array_get(inputs, i);
		errors += rep_str(in, "error") || rep_bool(in, "readable", 1) == 0;
	}
	run_time(summary, time, sizeof time);
	if (qn_buf_printf(b,
			  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			  "<testsuites name=\"quern-audit\" tests=\"%zu\" failures=\"%zu\" "
			  "errors=\"%zu\" time=\"%s\">\n"
			  "  <testsuite name=\"quern-audit scan\" tests=\"%zu\" failures=\"%zu\" "
			  "errors=\"%zu\" skipped=\"0\" time=\"%s\"",
			  tests, failures, errors, time, tests, failures, errors, time) < 0 ||
	    attr(b, "timestamp", rep_str(summary, "created")) < 0 ||
	    qn_buf_adds(b, ">\n    <properties>\n") < 0)
		return -1;
	for (i = 0; i < sizeof props / sizeof *props; i++) {
		const char *v = rep_str(summary, props[i]);
		if (v && (qn_buf_printf(b, "      <property name=\"%s\"", props[i]) < 0 ||
			  attr(b, "value", v) < 0 || qn_buf_adds(b, "/>\n") < 0))
			return -1;
	}
	if (qn_buf_printf(b,
			  "      <property name=\"findings\" value=\"%lld\"/>\n"
			  "      <property name=\"reported\" value=\"%lld\"/>\n"
			  "      <property name=\"suppressed\" value=\"%lld\"/>\n"
			  "    </properties>\n",
			  rep_count(f, "total", 0), rep_count(f, "reported", 0),
			  rep_count(f, "suppressed", 0)) < 0)
		return -1;
	for (i = 0; i < ngates; i++)
		if (gate_case(b, json_array_get(gates, i), i) < 0)
			return -1;
	if (findings_case(b, summary, failed_gates, more_inputs) < 0)
		return -1;
	for (i = 0; i < ninputs; i++)
		if (input_case(b, json_array_get(inputs, i), i) < 0)
			return -1;
	return qn_buf_adds(b, "  </testsuite>\n</testsuites>\n");
}

int report_junit(const json_t *summary, const char *path, struct qn_err *e)
{
	struct qn_buf b;
	int rc;

	if (!json_is_object(summary))
		return qn_errf(e, "junit report: the summary is not an object");
	qn_buf_init(&b, REP_MAX_BYTES);
	if (build(&b, summary) < 0)
		rc = qn_errf(e, "junit report: out of memory or past %zu MiB", REP_MAX_BYTES >> 20);
	else
		rc = rep_commit(&b, path, "junit", e);
	qn_buf_release(&b);
	return rc;
}
