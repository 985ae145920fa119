/*
 * test_doc.c - lib/doc: the JSON string escaper and the document line
 * writer checked by parsing their output back with jansson, and the JSON
 * Lines reader on valid, blank, bad, non-object and too-long lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "check.h"
#include "doc.h"
#include "err.h"
#include "wr.h"

static char dir[] = "/tmp/qn_test_doc_XXXXXX";

/* Escapes s and parses the literal back; 1 when it round-trips exactly. */
static int json_round_trip(const char *s, size_t n, struct qn_buf *lit)
{
	json_error_t je;
	json_t *v;
	int ok;

	qn_buf_reset(lit);
	if (qn_json_str(lit, s, n) < 0)
		return 0;
	v = json_loadb(lit->data, lit->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!v)
		return 0;
	ok = json_is_string(v) && json_string_length(v) == n && !memcmp(json_string_value(v), s, n);
	json_decref(v);
	return ok;
}

static void test_json_str(void)
{
	struct qn_buf b;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
#define ESC(name, in, want)                                \
	do {                                               \
		qn_buf_reset(&b);                          \
		qn_json_str(&b, in, sizeof in - 1);        \
		CHECK_STR("json_str " name, b.data, want); \
	} while (0)
	ESC("plain", "hello", "\"hello\"");
	ESC("empty", "", "\"\"");
	ESC("quote", "say \"hi\"", "\"say \\\"hi\\\"\"");
	ESC("backslash", "a\\b", "\"a\\\\b\"");
	ESC("short escapes", "\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	ESC("control chars as \\u00XX", "\x01\x1f\x0b", "\"\\u0001\\u001f\\u000b\"");
	ESC("NUL as \\u0000", "a\0b", "\"a\\u0000b\"");
	ESC("DEL as \\u007f", "\x7f", "\"\\u007f\"");
	ESC("UTF-8 passes through", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
	    "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
	ESC("slash is not escaped", "a/b", "\"a/b\"");
	ESC("U+2028 passes through", "\xE2\x80\xA8", "\"\xE2\x80\xA8\"");

	/* Appends to what is there. */
	qn_buf_reset(&b);
	qn_buf_adds(&b, "x=");
	qn_json_str(&b, "y", 1);
	CHECK_STR("json_str appends", b.data, "x=\"y\"");

	/* Every byte 0x00-0x7F, then mixed UTF-8, round-trips through jansson. */
	char all[128];
	for (int i = 0; i < 128; i++)
		all[i] = (char)i;
	CHECK_NAMED("all ASCII bytes round-trip through jansson", json_round_trip(all, 128, &b));
	const char *mixed = "line1\nline2\t\"q\" \\ caf\xC3\xA9 \x1b[0m \xF0\x9F\x98\x80 end";
	CHECK_NAMED("mixed text round-trips through jansson",
		    json_round_trip(mixed, strlen(mixed), &b));
	/* Long input, escapes spread through it. */
	size_t n = 100000;
	char *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i % 97 == 0 ? '"' : i % 89 == 0 ? '\n' : i % 83 == 0 ? 1 : 'a' + i % 26);
	CHECK_NAMED("100 KB with escapes round-trips", json_round_trip(big, n, &b));
	free(big);
	qn_buf_release(&b);

	/* A full buffer: -1. */
	qn_buf_init(&b, 5);
	CHECK_NAMED("json_str past max fails", qn_json_str(&b, "abcdef", 6) == -1);
	qn_buf_release(&b);
	qn_buf_init(&b, 4);
	CHECK_NAMED("json_str escape past max fails", qn_json_str(&b, "\x01", 1) == -1);
	qn_buf_release(&b);
}

static void test_doc_jsonl(void)
{
	struct qn_buf b;
	json_error_t je;
	struct qn_doc d;
	const char *text = "Hello \"world\"\nsecond line\twith tab \xC3\xA9";

	memset(&d, 0, sizeof d);
	d.id = "doc-1";
	d.text = text;
	d.text_len = strlen(text);
	d.source = "file:///tmp/a.txt";
	d.added = "2026-01-02T03:04:05Z";
	d.created = "2020-05-06T07:08:09Z";
	d.metadata = json_pack("{s:s,s:i,s:[i,i]}", "lang", "en", "words", 7, "span", 1, 2);

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	CHECK_NAMED("doc_jsonl ok", qn_doc_jsonl(&b, &d) == 0);
	CHECK_NAMED("doc_jsonl ends with one newline",
		    b.len > 0 && b.data[b.len - 1] == '\n' && memchr(b.data, '\n', b.len) == b.data + b.len - 1);
	/* Field order. */
	const char *pi = strstr(b.data, "\"id\":"), *pt = strstr(b.data, "\"text\":"),
		   *ps = strstr(b.data, "\"source\":"), *pa = strstr(b.data, "\"added\":"),
		   *pc = strstr(b.data, "\"created\":"), *pm = strstr(b.data, "\"metadata\":");
	CHECK_NAMED("doc_jsonl starts with id", pi == b.data + 1 && b.data[0] == '{');
	CHECK_NAMED("doc_jsonl field order id,text,source,added,created,metadata",
		    pi && pt && ps && pa && pc && pm && pi < pt && pt < ps && ps < pa && pa < pc &&
			    pc < pm);
	json_t *v = json_loadb(b.data, b.len, 0, &je);
	CHECK_NAMED("doc_jsonl parses", v && json_is_object(v));
	CHECK_STR("round trip id", json_string_value(json_object_get(v, "id")), "doc-1");
	CHECK_STR("round trip text", json_string_value(json_object_get(v, "text")), text);
	CHECK_STR("round trip source", json_string_value(json_object_get(v, "source")), d.source);
	CHECK_STR("round trip added", json_string_value(json_object_get(v, "added")), d.added);
	CHECK_STR("round trip created", json_string_value(json_object_get(v, "created")), d.created);
	CHECK_NAMED("round trip metadata", json_equal(json_object_get(v, "metadata"), d.metadata));
	CHECK_NAMED("exactly six fields", json_object_size(v) == 6);
	/* Metadata keeps insertion order. */
	const char *ml = strstr(b.data, "\"lang\""), *mw = strstr(b.data, "\"words\""),
		   *ms = strstr(b.data, "\"span\"");
	CHECK_NAMED("metadata in insertion order", ml && mw && ms && ml < mw && mw < ms);
	json_decref(v);

	/* text_len, not strlen: a NUL inside the text is kept. */
	struct qn_doc d2 = {.id = "n", .text = "a\0b", .text_len = 3};
	qn_buf_reset(&b);
	CHECK_NAMED("doc with NUL in text", qn_doc_jsonl(&b, &d2) == 0);
	CHECK_NAMED("NUL in text is escaped", strstr(b.data, "a\\u0000b") != NULL);
	/* text_len shorter than the string: only that much. */
	struct qn_doc d3 = {.id = "p", .text = "abcdef", .text_len = 3};
	qn_buf_reset(&b);
	qn_doc_jsonl(&b, &d3);
	CHECK_STR("text_len bounds the text", b.data, "{\"id\":\"p\",\"text\":\"abc\"}\n");

	/* Optional fields left out; two docs append. */
	struct qn_doc d4 = {.id = "x", .text = "t", .text_len = 1, .source = "s",
			    .added = "2026-01-01T00:00:00Z"};
	qn_buf_reset(&b);
	qn_doc_jsonl(&b, &d4);
	qn_doc_jsonl(&b, &d4);
	CHECK_STR("optional fields omitted, docs append", b.data,
		  "{\"id\":\"x\",\"text\":\"t\",\"source\":\"s\",\"added\":\"2026-01-01T00:00:00Z\"}\n"
		  "{\"id\":\"x\",\"text\":\"t\",\"source\":\"s\",\"added\":\"2026-01-01T00:00:00Z\"}\n");
	struct qn_doc d5 = {.id = "y"};
	qn_buf_reset(&b);
	qn_doc_jsonl(&b, &d5);
	CHECK_STR("NULL text writes an empty text", b.data, "{\"id\":\"y\",\"text\":\"\"}\n");
	qn_buf_release(&b);

	/* A full buffer leaves what was there before. */
	qn_buf_init(&b, 40);
	qn_buf_adds(&b, "keep");
	CHECK_NAMED("doc_jsonl past max fails", qn_doc_jsonl(&b, &d) == -1);
	CHECK_STR("doc_jsonl past max rolls back", b.data, "keep");
	qn_buf_release(&b);
	json_decref(d.metadata);
}

static void test_time(void)
{
	char t[32];

	qn_time_rfc3339(0, t);
	CHECK_STR("time 0", t, "1970-01-01T00:00:00Z");
	qn_time_rfc3339(951782400, t); /* leap day 2000 */
	CHECK_STR("time 2000-02-29", t, "2000-02-29T00:00:00Z");
	qn_time_rfc3339(1234567890, t);
	CHECK_STR("time 1234567890", t, "2009-02-13T23:31:30Z");
	qn_time_rfc3339(4102444799LL, t);
	CHECK_STR("time past 2038", t, "2099-12-31T23:59:59Z");
	qn_now_rfc3339(t);
	CHECK_NAMED("now has the RFC 3339 shape",
		    strlen(t) == 20 && t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' &&
			    t[16] == ':' && t[19] == 'Z' && strncmp(t, "2020", 4) > 0);
}

static void test_jsonl_reader(void)
{
	char path[256];
	struct qn_jsonl j;
	struct qn_err e = {{0}};
	json_t *o;
	FILE *f;
	int rc;

	snprintf(path, sizeof path, "%s/in.jsonl", dir);
	f = fopen(path, "w");
	fputs("{\"id\":\"a\",\"n\":1}\n"           /* 1 */
	      "\n"                                 /* 2 blank */
	      "   \t\r\n"                          /* 3 blank with spaces and CR */
	      "{\"id\":\"b\"}\r\n"                 /* 4 CRLF */
	      "{not json}\n"                       /* 5 bad */
	      "  {\"id\":\"c\"}  \n"               /* 6 padded */
	      "[1,2,3]\n"                          /* 7 not an object */
	      "{\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n" /* 8 long */
	      "{\"id\":\"d\",\"id\":\"dup\"}\n"    /* 9 duplicate key */
	      "{\"id\":\"e\"}",                     /* 10 no newline */
	      f);
	fclose(f);

	CHECK_NAMED("jsonl_open", qn_jsonl_open(&j, path, 40, 0, &e) == 0);
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("jsonl line 1 is an object", rc == 1 && o && json_is_object(o));
	CHECK_STR("jsonl line 1 id", json_string_value(json_object_get(o, "id")), "a");
	json_decref(o);
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("blank lines skipped, CRLF line read", rc == 1);
	CHECK_STR("jsonl line 4 id", json_string_value(json_object_get(o, "id")), "b");
	CHECK_NAMED("line number counts blank lines", j.lineno == 4);
	json_decref(o);
	e.msg[0] = 0;
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("invalid JSON is QN_JSONL_BAD", rc == QN_JSONL_BAD && o == NULL);
	char want[300];
	snprintf(want, sizeof want, "%s:5:", path);
	CHECK_NAMED("invalid JSON message starts with path:line", !strncmp(e.msg, want, strlen(want)));
	if (strncmp(e.msg, want, strlen(want)))
		printf("  got: %s\n", e.msg);
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("reading continues after a bad line", rc == 1);
	CHECK_STR("padded line id", json_string_value(json_object_get(o, "id")), "c");
	json_decref(o);
	e.msg[0] = 0;
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("array line is QN_JSONL_BAD", rc == QN_JSONL_BAD && o == NULL);
	snprintf(want, sizeof want, "%s:7:", path);
	CHECK_NAMED("non-object message has path:line", !strncmp(e.msg, want, strlen(want)));
	CHECK_NAMED("non-object message says why", strstr(e.msg, "object") != NULL);
	e.msg[0] = 0;
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("too-long line is QN_JSONL_BAD", rc == QN_JSONL_BAD && o == NULL);
	snprintf(want, sizeof want, "%s:8:", path);
	CHECK_NAMED("too-long message has path:line", !strncmp(e.msg, want, strlen(want)));
	CHECK_NAMED("too-long message gives the limit", strstr(e.msg, "40") != NULL);
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("duplicate keys are rejected", rc == QN_JSONL_BAD && o == NULL);
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("final line without newline", rc == 1);
	CHECK_STR("final line id", json_string_value(json_object_get(o, "id")), "e");
	CHECK_NAMED("final line number", j.lineno == 10);
	json_decref(o);
	rc = qn_jsonl_next(&j, &o, &e);
	CHECK_NAMED("end of input", rc == 0 && o == NULL);
	qn_jsonl_close(&j);
	qn_jsonl_close(&j); /* closing twice is harmless */

	/* Writer -> reader round trip through a .zst file. */
	char zpath[256];
	snprintf(zpath, sizeof zpath, "%s/docs.jsonl.zst", dir);
	struct qn_buf b;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (int i = 0; i < 100; i++) {
		char id[16], txt[64];
		snprintf(id, sizeof id, "d%d", i);
		snprintf(txt, sizeof txt, "text %d \"q\"\n\x01 caf\xC3\xA9", i);
		struct qn_doc d = {.id = id, .text = txt, .text_len = strlen(txt), .source = "src",
				   .added = "2026-01-01T00:00:00Z"};
		qn_doc_jsonl(&b, &d);
	}
	struct qn_wr *w = qn_wr_open(zpath, 0, &e);
	CHECK_NAMED("write docs.jsonl.zst", w && qn_wr_write(w, b.data, b.len, &e) == 0 &&
						    qn_wr_commit(w, NULL, &e) == 0);
	qn_buf_release(&b);
	CHECK_NAMED("jsonl_open default max", qn_jsonl_open(&j, zpath, 0, 0, &e) == 0);
	CHECK_NAMED("max 0 means the default", j.max_line == QN_JSONL_MAX_LINE_DEFAULT);
	int good = 0;
	for (int i = 0; (rc = qn_jsonl_next(&j, &o, &e)) == 1; i++) {
		char id[16], txt[64];
		snprintf(id, sizeof id, "d%d", i);
		snprintf(txt, sizeof txt, "text %d \"q\"\n\x01 caf\xC3\xA9", i);
		const char *gi = json_string_value(json_object_get(o, "id"));
		const char *gt = json_string_value(json_object_get(o, "text"));
		if (gi && gt && !strcmp(gi, id) && !strcmp(gt, txt))
			good++;
		json_decref(o);
	}
	CHECK_NAMED("100 docs written then read back", rc == 0 && good == 100);
	qn_jsonl_close(&j);
	unlink(zpath);

	e.msg[0] = 0;
	CHECK_NAMED("jsonl_open of a missing file fails", qn_jsonl_open(&j, zpath, 0, 0, &e) == -1);
	CHECK_NAMED("missing file message", strstr(e.msg, "docs.jsonl.zst") != NULL);
	qn_jsonl_close(&j);
	unlink(path);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("FAIL: mkdtemp\n");
		return 1;
	}
	test_json_str();
	test_doc_jsonl();
	test_time();
	test_jsonl_reader();
	rmdir(dir);
	return CHECK_DONE();
}
