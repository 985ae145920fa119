/*
 * test_manifest.c - lib/manifest: a manifest written to disk parses back
 * with jansson and carries tool, version, argv, times, inputs, outputs and
 * counters; qn_manifest_path_for names it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "doc.h"
#include "err.h"
#include "manifest.h"

static char dir[] = "/tmp/qn_test_manifest_XXXXXX";

static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int rfc3339_shape(const char *t)
{
	return t && strlen(t) == 20 && t[4] == '-' && t[7] == '-' && t[10] == 'T' &&
	       t[13] == ':' && t[16] == ':' && t[19] == 'Z';
}

static void test_path_for(void)
{
	char *p = qn_manifest_path_for("out/docs.jsonl.zst");

	CHECK_STR("path_for appends .manifest.json", p, "out/docs.jsonl.zst.manifest.json");
	free(p);
	p = qn_manifest_path_for("");
	CHECK_STR("path_for of empty", p, ".manifest.json");
	free(p);
}

static void test_write_parse(void)
{
	char *argv[] = {"quern-ingest", "-o", "out \"quoted\".jsonl", "caf\xC3\xA9.txt"};
	char out_path[256], t0[32], t1[32];
	struct qn_err e = {{0}};
	json_error_t je;

	snprintf(out_path, sizeof out_path, "%s/docs.jsonl", dir);
	char *mpath = qn_manifest_path_for(out_path);
	qn_now_rfc3339(t0);
	struct qn_manifest *m = qn_manifest_new("quern-ingest", "0.1.0", 4, argv);
	CHECK_NAMED("manifest_new", m != NULL);
	if (!m)
		return;
	const char *sha_a = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	CHECK_NAMED("manifest_input", qn_manifest_input(m, "a.txt", 3, sha_a) == 0);
	CHECK_NAMED("manifest_input without hash", qn_manifest_input(m, "-", 0, NULL) == 0);
	CHECK_NAMED("manifest_output", qn_manifest_output(m, out_path, 12345678901ULL, sha_a) == 0);
	qn_manifest_count(m, "docs", 41);
	qn_manifest_count(m, "docs", 42); /* replaces */
	qn_manifest_count(m, "skipped", 0);
	qn_manifest_count(m, "negative", -5);
	qn_manifest_set(m, "options", json_pack("{s:b,s:i}", "strict", 1, "threads", 4));
	CHECK_NAMED("manifest_write", qn_manifest_write(m, mpath, &e) == 0);
	if (e.msg[0])
		printf("  error: %s\n", e.msg);
	qn_now_rfc3339(t1);
	CHECK_NAMED("only the manifest is in the folder, no temp file", entries() == 1);

	FILE *f = fopen(mpath, "rb");
	char raw[8192];
	size_t rn = f ? fread(raw, 1, sizeof raw - 1, f) : 0;
	if (f)
		fclose(f);
	raw[rn] = 0;
	CHECK_NAMED("manifest file ends with one newline",
		    rn > 2 && raw[rn - 1] == '\n' && raw[rn - 2] != '\n');
	CHECK_NAMED("manifest has no NUL byte", strlen(raw) == rn);

	json_t *root = json_load_file(mpath, 0, &je);
	CHECK_NAMED("manifest parses", root && json_is_object(root));
	if (!root) {
		printf("  %s line %d: %s\n", mpath, je.line, je.text);
		qn_manifest_free(m);
		free(mpath);
		return;
	}
	CHECK_NAMED("manifest_version 1",
		    json_integer_value(json_object_get(root, "manifest_version")) == 1);
	CHECK_STR("tool", json_string_value(json_object_get(root, "tool")), "quern-ingest");
	CHECK_STR("version", json_string_value(json_object_get(root, "version")), "0.1.0");
	json_t *av = json_object_get(root, "argv");
	int argv_ok = json_is_array(av) && json_array_size(av) == 4;
	for (size_t i = 0; argv_ok && i < 4; i++) {
		const char *s = json_string_value(json_array_get(av, i));
		argv_ok = s && !strcmp(s, argv[i]);
	}
	CHECK_NAMED("argv round-trips (quotes and UTF-8 included)", argv_ok);
	const char *st = json_string_value(json_object_get(root, "started"));
	const char *fi = json_string_value(json_object_get(root, "finished"));
	CHECK_NAMED("started is RFC 3339", rfc3339_shape(st));
	CHECK_NAMED("finished is RFC 3339", rfc3339_shape(fi));
	CHECK_NAMED("t0 <= started <= finished <= t1",
		    st && fi && strcmp(t0, st) <= 0 && strcmp(st, fi) <= 0 && strcmp(fi, t1) <= 0);

	json_t *in = json_object_get(root, "inputs");
	CHECK_NAMED("two inputs", json_is_array(in) && json_array_size(in) == 2);
	json_t *i0 = json_array_get(in, 0), *i1 = json_array_get(in, 1);
	CHECK_STR("inputs[0].path", json_string_value(json_object_get(i0, "path")), "a.txt");
	CHECK_NAMED("inputs[0].size", json_integer_value(json_object_get(i0, "size")) == 3);
	CHECK_STR("inputs[0].sha256", json_string_value(json_object_get(i0, "sha256")), sha_a);
	CHECK_NAMED("inputs[1].sha256 is null when unknown",
		    json_is_null(json_object_get(i1, "sha256")));
	json_t *o0 = json_array_get(json_object_get(root, "outputs"), 0);
	CHECK_STR("outputs[0].path", json_string_value(json_object_get(o0, "path")), out_path);
	CHECK_NAMED("outputs[0].size beyond 32 bits",
		    json_integer_value(json_object_get(o0, "size")) == 12345678901LL);
	CHECK_STR("outputs[0].sha256", json_string_value(json_object_get(o0, "sha256")), sha_a);
	json_t *c = json_object_get(root, "counters");
	CHECK_NAMED("counters.docs is the last value",
		    json_integer_value(json_object_get(c, "docs")) == 42);
	CHECK_NAMED("counters.skipped 0", json_is_integer(json_object_get(c, "skipped")) &&
						  json_integer_value(json_object_get(c, "skipped")) == 0);
	CHECK_NAMED("counters.negative", json_integer_value(json_object_get(c, "negative")) == -5);
	CHECK_NAMED("three counters", json_object_size(c) == 3);
	json_t *opt = json_object_get(root, "options");
	CHECK_NAMED("extra field set", json_is_true(json_object_get(opt, "strict")) &&
					       json_integer_value(json_object_get(opt, "threads")) == 4);
	/* Key order: tool first, as written. */
	const char *pt = strstr(raw, "\"tool\""), *pi = strstr(raw, "\"inputs\""),
		   *pf = strstr(raw, "\"finished\"");
	CHECK_NAMED("fields in insertion order (tool before inputs before finished)",
		    pt && pi && pf && pt < pi && pi < pf);
	json_decref(root);

	/* Writing again after more counts replaces the file. */
	qn_manifest_count(m, "docs", 43);
	CHECK_NAMED("manifest_write again", qn_manifest_write(m, mpath, &e) == 0);
	root = json_load_file(mpath, 0, &je);
	CHECK_NAMED("rewritten manifest has the new counter",
		    root && json_integer_value(json_object_get(json_object_get(root, "counters"),
							       "docs")) == 43);
	CHECK_NAMED("rewrite still has one finished field", root && json_object_get(root, "finished"));
	json_decref(root);

	/* A folder that does not exist: an error naming the file. */
	char bad[300];
	snprintf(bad, sizeof bad, "%s/missing/m.json", dir);
	e.msg[0] = 0;
	CHECK_NAMED("write into a missing folder fails", qn_manifest_write(m, bad, &e) == -1);
	CHECK_NAMED("missing folder message names the file", strstr(e.msg, "m.json") != NULL);
	qn_manifest_free(m);
	qn_manifest_free(NULL);
	unlink(mpath);
	free(mpath);

	/* No argv at all. */
	m = qn_manifest_new("t", "v", 0, NULL);
	snprintf(out_path, sizeof out_path, "%s/empty.manifest.json", dir);
	CHECK_NAMED("manifest with no argv writes", m && qn_manifest_write(m, out_path, &e) == 0);
	root = json_load_file(out_path, 0, &je);
	CHECK_NAMED("empty argv is an empty array",
		    root && json_is_array(json_object_get(root, "argv")) &&
			    json_array_size(json_object_get(root, "argv")) == 0);
	CHECK_NAMED("empty inputs array", root && json_array_size(json_object_get(root, "inputs")) == 0);
	json_decref(root);
	qn_manifest_free(m);
	unlink(out_path);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("FAIL: mkdtemp\n");
		return 1;
	}
	test_path_for();
	test_write_parse();
	rmdir(dir);
	return CHECK_DONE();
}
