/* test_mail.c - the e-mail readers (ingest/mail.c): .eml and mbox to documents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../../ingest/ingest.h"
#include "buf.h"
#include "check.h"
#include "err.h"
#include "rd.h"
#include "testfs.h"

/* What one reader run produced. */
struct run {
	json_t *docs; /* array of document objects */
	char *msgs;
	int rc;
	uint64_t failed;
};

static char fixture_dir[4096];

/* tests/unit/test_mail.c -> tests/fixtures/mail/ (works from any cwd when __FILE__ is absolute). */
static void find_fixtures(void)
{
	const char *f = __FILE__;
	const char *cut = strstr(f, "unit/test_mail.c");
	size_t n = cut ? (size_t)(cut - f) : 0;

	snprintf(fixture_dir, sizeof fixture_dir, "%.*sfixtures/mail/", (int)n, f);
	if (!cut)
		snprintf(fixture_dir, sizeof fixture_dir, "tests/fixtures/mail/");
}

static void run_free(struct run *r)
{
	json_decref(r->docs);
	free(r->msgs);
	memset(r, 0, sizeof *r);
}

static struct run run_rd(struct qn_rd *rd, const char *path, int mbox, const struct ix_opts *o)
{
	struct ix_sink s;
	struct run r = {0};

	memset(&s, 0, sizeof s);
	s.opt = o;
	s.path = path;
	s.source = "test";
	qn_buf_init(&s.out, QN_BUF_UNLIMITED);
	qn_buf_init(&s.msgs, QN_BUF_UNLIMITED);
	r.rc = mbox ? ix_mbox(&s, rd) : ix_eml(&s, rd);
	r.failed = s.failed;
	r.docs = json_array();
	for (char *p = s.out.data; p && *p;) {
		char *nl = strchr(p, '\n');
		json_error_t je;
		json_t *d = json_loadb(p, nl ? (size_t)(nl - p) : strlen(p), 0, &je);
		if (!d)
			printf("  bad JSON line: %s\n", je.text);
		CHECK_NAMED("output line is JSON", d != NULL);
		if (d)
			json_array_append_new(r.docs, d);
		p = nl ? nl + 1 : p + strlen(p);
	}
	r.msgs = strdup(s.msgs.data ? s.msgs.data : "");
	qn_buf_release(&s.out);
	qn_buf_release(&s.msgs);
	return r;
}

static struct run run_file(const char *name, int mbox, const struct ix_opts *o)
{
	char path[8192];
	struct qn_err e;
	struct qn_rd *rd;
	struct run r = {0};

	snprintf(path, sizeof path, "%s%s", fixture_dir, name);
	rd = qn_rd_open(path, 0, &e);
	CHECK_NAMED(name, rd != NULL);
	if (!rd) {
		printf("  %s\n", e.msg);
		r.docs = json_array();
		r.msgs = strdup("");
		return r;
	}
	r = run_rd(rd, name, mbox, o);
	qn_rd_close(rd);
	return r;
}

static struct run run_mem(const void *data, size_t n, int mbox, const struct ix_opts *o)
{
	FILE *f = tmpfile();
	struct qn_err e;
	struct qn_rd *rd;
	struct run r;

	if (!f || fwrite(data, 1, n, f) != n || fflush(f) || lseek(fileno(f), 0, SEEK_SET) < 0) {
		printf("FAIL: tmpfile\n");
		exit(1);
	}
	rd = qn_rd_fdopen(fileno(f), "mem", 0, &e);
	if (!rd) {
		printf("FAIL: qn_rd_fdopen: %s\n", e.msg);
		exit(1);
	}
	r = run_rd(rd, "mem", mbox, o);
	qn_rd_close(rd);
	fclose(f);
	return r;
}

static struct run run_str(const char *s, int mbox, const struct ix_opts *o)
{
	return run_mem(s, strlen(s), mbox, o);
}

static json_t *doc(const struct run *r, size_t i)
{
	return json_array_get(r->docs, i);
}

static const char *text(const struct run *r, size_t i)
{
	return json_string_value(json_object_get(doc(r, i), "text"));
}

static const char *meta_s(const struct run *r, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_object_get(doc(r, i), "metadata"), key));
}

static json_int_t meta_i(const struct run *r, size_t i, const char *key)
{
	json_t *v = json_object_get(json_object_get(doc(r, i), "metadata"), key);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static struct ix_opts opts(void)
{
	struct ix_opts o;

	memset(&o, 0, sizeof o);
	o.added = "2026-11-27T00:00:00Z";
	o.max_bytes = 1 << 20;
	return o;
}

static void test_plain(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("plain.eml", 0, &o);

	CHECK(r.rc == 0);
	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("plain text", text(&r, 0),
		  "Hi Bob,\n\nthe quarterly numbers are in the shared folder.\n\nAlice");
	CHECK_STR("plain from", meta_s(&r, 0, "from"), "Alice Example <alice@example.org>");
	CHECK_STR("plain to unfolded", meta_s(&r, 0, "to"),
		  "Bob <bob@example.com>, Carol <carol@example.com>");
	CHECK_STR("plain cc", meta_s(&r, 0, "cc"), "dave@example.net");
	CHECK_STR("plain subject unfolded", meta_s(&r, 0, "subject"), "Quarterly numbers are in");
	CHECK_STR("plain title", meta_s(&r, 0, "title"), "Quarterly numbers are in");
	CHECK_STR("plain message_id", meta_s(&r, 0, "message_id"), "<plain-1@example.org>");
	CHECK_STR("plain in_reply_to", meta_s(&r, 0, "in_reply_to"), "<prev-0@example.com>");
	CHECK_STR("plain date raw", meta_s(&r, 0, "date"), "Thu, 5 Nov 2026 10:12:01 +0100 (CET)");
	CHECK_STR("plain created", json_string_value(json_object_get(doc(&r, 0), "created")),
		  "2026-11-05T09:12:01Z");
	CHECK_STR("plain format", meta_s(&r, 0, "format"), "eml");
	CHECK(meta_i(&r, 0, "quoted_lines") == -1);
	CHECK(json_object_get(json_object_get(doc(&r, 0), "metadata"), "attachments") == NULL);
	CHECK(r.failed == 0);

	/* The id is deterministic and keyed on the Message-ID. */
	struct run r2 = run_file("plain.eml", 0, &o);
	CHECK_STR("plain id stable", json_string_value(json_object_get(doc(&r2, 0), "id")),
		  json_string_value(json_object_get(doc(&r, 0), "id")));
	run_free(&r2);
	run_free(&r);
}

static void test_alternative(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("alternative.eml", 0, &o);

	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("alternative picks text/plain", text(&r, 0), "The plain version of the letter.");
	CHECK_STR("alternative created (EST, 2-digit year)",
		  json_string_value(json_object_get(doc(&r, 0), "created")),
		  "2026-11-05T14:12:00Z");
	CHECK(json_object_get(json_object_get(doc(&r, 0), "metadata"), "mime_error") == NULL);
	run_free(&r);
}

static void test_html_only(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("html_only.eml", 0, &o);

	CHECK(json_array_size(r.docs) == 1);
	CHECK(contains(text(&r, 0), "Thanks for your order"));
	CHECK(contains(text(&r, 0), "Your parcel ships tomorrow"));
	CHECK(!contains(text(&r, 0), "<p>"));
	CHECK(!contains(text(&r, 0), "tracking"));
	CHECK(!contains(text(&r, 0), "color"));
	CHECK_STR("html title is the subject", meta_s(&r, 0, "title"), "Your order");
	run_free(&r);
}

static void test_qp_latin1(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("qp_latin1.eml", 0, &o);

	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("qp latin1 text", text(&r, 0),
		  "Gr\xc3\xbc\xc3\x9f"
		  "e aus M\xc3\xbcnchen! Die B\xc3\xa4ume bl\xc3\xbchen "
		  "sch\xc3\xb6n und das ist ein sehr langer Satz.");
	CHECK_STR("qp subject", meta_s(&r, 0, "subject"),
		  "Gr\xc3\xbc\xc3\x9f"
		  "e");
	CHECK_STR("qp from", meta_s(&r, 0, "from"),
		  "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>");
	CHECK(meta_i(&r, 0, "invalid_bytes") == -1);
	run_free(&r);
}

static void test_base64(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("base64_utf8.eml", 0, &o);

	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("base64 utf-8 text (no padding)", text(&r, 0),
		  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80! "
		  "\xd0\xad\xd1\x82\xd0\xbe \xd1\x82\xd0\xb5\xd1\x81\xd1\x82\xd0\xbe\xd0\xb2\xd0"
		  "\xbe\xd0\xb5 \xd0\xbf\xd0\xb8\xd1\x81\xd1\x8c\xd0\xbc\xd0\xbe.\n"
		  "\xce\x9a\xce\xb1\xce\xbb\xce\xb7\xce\xbc\xce\xad\xcf\x81\xce\xb1 "
		  "\xce\xba\xcf\x8c\xcf\x83\xce\xbc\xce\xb5.");
	/* Two adjacent B words, the space between them dropped. */
	CHECK_STR("B subject joined", meta_s(&r, 0, "subject"),
		  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!");
	CHECK_STR("base64 created", json_string_value(json_object_get(doc(&r, 0), "created")),
		  "2026-01-14T09:30:45Z");
	run_free(&r);
}

static void test_rfc2047(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("rfc2047.eml", 0, &o);

	CHECK(json_array_size(r.docs) == 1);
	/* "a" and "b" are adjacent words; " c " is plain text; the folded B word joins the euro. */
	CHECK_STR("Q subject", meta_s(&r, 0, "subject"), "ab c \xe2\x82\xac 100");
	CHECK_STR("Q from", meta_s(&r, 0, "from"), "Andr\xc3\xa9 Pirard <andre@example.be>");
	CHECK_STR("Q to latin1", meta_s(&r, 0, "to"),
		  "Keld J\xc3\xb8rn Simonsen <keld@example.dk>");
	CHECK_STR("created -0600", json_string_value(json_object_get(doc(&r, 0), "created")),
		  "1997-11-21T15:55:06Z");
	run_free(&r);

	/* A multi-byte character split across two words of one charset. */
	r = run_str("Subject: =?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=\n\nx\n", 0, &o);
	CHECK_STR("split character", meta_s(&r, 0, "subject"), "\xe2\x82\xac");
	run_free(&r);
	/* Malformed words stay as they are; unknown charsets still give valid text. */
	r = run_str("Subject: =?bogus-cs?Q?caf=E9?= =?utf-8?X?abc?= =?utf-8?Q?unterminated\n\nx\n",
		    0, &o);
	CHECK_STR("odd words", meta_s(&r, 0, "subject"),
		  "caf\xc3\xa9 =?utf-8?X?abc?= =?utf-8?Q?unterminated");
	run_free(&r);
	/* Charset names at and past the 63-byte limit (a fuzzer find: cs[64] overflow). */
	char cs63[64], hdr[256];
	memset(cs63, 'x', 63);
	cs63[63] = 0;
	snprintf(hdr, sizeof hdr, "Subject: =?%s?Q?ok?= =?%sy?Q?no?=\n\nx\n", cs63, cs63);
	r = run_str(hdr, 0, &o);
	CHECK(contains(meta_s(&r, 0, "subject"), "ok =?xxx"));
	CHECK(contains(meta_s(&r, 0, "subject"), "xy?Q?no?="));
	run_free(&r);
}

static void test_attachment(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("attachment.eml", 0, &o);
	json_t *names;

	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("attachment body", text(&r, 0), "Please find the report attached.");
	CHECK(meta_i(&r, 0, "attachments") == 3);
	names = json_object_get(json_object_get(doc(&r, 0), "metadata"), "attachment_names");
	CHECK(json_array_size(names) == 2);
	CHECK_STR("attachment name", json_string_value(json_array_get(names, 0)), "report.pdf");
	CHECK_STR("RFC 2231 name", json_string_value(json_array_get(names, 1)),
		  "\xc3\xbc"
		  "bersicht Q1.txt");
	CHECK(!contains(text(&r, 0), "PDF"));
	CHECK(!contains(text(&r, 0), "notes"));
	run_free(&r);
}

static void test_mbox(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("three.mbox", 1, &o);

	CHECK(r.rc == 0);
	CHECK(json_array_size(r.docs) == 3);
	CHECK_STR("mbox 1 text", text(&r, 0),
		  "First message body.\nFrom the archive: this line was escaped.\n"
		  ">From stays quoted once.");
	CHECK_STR("mbox 1 subject", meta_s(&r, 0, "subject"), "First");
	CHECK(meta_i(&r, 0, "mbox_index") == 1);
	CHECK_STR("mbox format", meta_s(&r, 0, "format"), "mbox");
	CHECK_STR("mbox 2 text", text(&r, 1),
		  "Second message body, no Message-ID.\n"
		  "From here on this is not a separator (no blank line before).");
	CHECK(meta_i(&r, 1, "mbox_index") == 2);
	CHECK_STR("mbox 3 subject", meta_s(&r, 2, "subject"), "Third");
	CHECK(meta_i(&r, 2, "mbox_index") == 3);
	CHECK(json_string_value(json_object_get(doc(&r, 2), "created")) == NULL);
	CHECK(r.failed == 0);
	/* Message 2 has no Message-ID: keyed "msg:2", so ids differ. */
	const char *id1 = json_string_value(json_object_get(doc(&r, 0), "id"));
	const char *id2 = json_string_value(json_object_get(doc(&r, 1), "id"));
	const char *id3 = json_string_value(json_object_get(doc(&r, 2), "id"));
	CHECK(id1 && id2 && id3 && strcmp(id1, id2) && strcmp(id2, id3) && strcmp(id1, id3));
	run_free(&r);

	/* CRLF mbox, leading blank lines, a message without a From line first. */
	r = run_str("\r\n\r\nSubject: orphan\r\n\r\nbefore any From line\r\n\r\n"
		    "From a Thu Nov  5 09:12:01 2026\r\nSubject: s\r\n\r\nbody\r\n",
		    1, &o);
	CHECK(json_array_size(r.docs) == 2);
	CHECK_STR("mbox orphan", text(&r, 0), "before any From line");
	CHECK_STR("mbox crlf", text(&r, 1), "body");
	run_free(&r);

	/* Empty input: no documents, no failure. */
	r = run_str("", 1, &o);
	CHECK(json_array_size(r.docs) == 0 && r.failed == 0 && r.rc == 0);
	run_free(&r);
}

static void test_broken(void)
{
	struct ix_opts o = opts();
	struct run r = run_file("broken_boundary.eml", 0, &o);

	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("broken boundary text", text(&r, 0),
		  "The first part survives even though the message was cut off.\n\n"
		  "So does the second, running to the end.");
	CHECK_STR("broken mime_error", meta_s(&r, 0, "mime_error"), "missing closing boundary");
	CHECK(r.failed == 0);
	run_free(&r);

	r = run_file("no_boundary.eml", 0, &o);
	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("boundary never found", text(&r, 0), "Just text, the boundary never appears.");
	CHECK(meta_s(&r, 0, "mime_error") != NULL);
	run_free(&r);

	/* Deep nesting stops at the limit instead of recursing without end. */
	struct qn_buf b;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	qn_buf_adds(&b, "Subject: deep\n");
	for (int i = 0; i < 200; i++)
		qn_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	qn_buf_adds(&b, "Content-Type: text/plain\n\ninnermost\n");
	r = run_mem(b.data, b.len, 0, &o);
	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("deep mime_error", meta_s(&r, 0, "mime_error"), "MIME nesting too deep");
	run_free(&r);
	/* Many parts stop at the part limit. */
	qn_buf_reset(&b);
	qn_buf_adds(&b, "Subject: wide\nContent-Type: multipart/mixed; boundary=w\n\n");
	for (int i = 0; i < 5000; i++)
		qn_buf_adds(&b, "--w\n\npart\n");
	r = run_mem(b.data, b.len, 0, &o);
	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("wide mime_error", meta_s(&r, 0, "mime_error"), "too many MIME parts");
	run_free(&r);
	qn_buf_release(&b);
}

static void test_quotes(void)
{
	struct ix_opts o = opts();
	struct run r;

	r = run_file("quotes.eml", 0, &o);
	CHECK(contains(text(&r, 0), "> Hi Bob,"));
	CHECK(meta_i(&r, 0, "quoted_lines") == -1);
	run_free(&r);

	o.quotes = IX_QUOTES_MARK;
	r = run_file("quotes.eml", 0, &o);
	CHECK(contains(text(&r, 0), "> Hi Bob,"));
	CHECK(meta_i(&r, 0, "quoted_lines") == 3);
	run_free(&r);

	o.quotes = IX_QUOTES_STRIP;
	r = run_file("quotes.eml", 0, &o);
	CHECK_STR("quotes stripped", text(&r, 0),
		  "Thanks, the numbers look good.\n\nOne more remark below the quote.");
	CHECK(meta_i(&r, 0, "quoted_lines") == 3);
	run_free(&r);

	r = run_str(
	    "Subject: q\n\nTop reply.\nOn Mon, Bob wrote:\n> old\n> older\nAfter.\n-- \nsig\n", 0,
	    &o);
	CHECK_STR("one-line attribution", text(&r, 0), "Top reply.\nAfter.");
	CHECK(meta_i(&r, 0, "quoted_lines") == 2);
	run_free(&r);
}

static void test_oversized(void)
{
	struct ix_opts o = opts();
	struct qn_buf b;
	struct run r;

	o.max_bytes = 4096;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	qn_buf_adds(&b, "From a Thu Nov  5 09:12:01 2026\nSubject: one\n\nsmall one\n\n");
	qn_buf_adds(&b, "From b Thu Nov  5 09:12:01 2026\nSubject: big\n\n");
	for (int i = 0; i < 200; i++)
		qn_buf_adds(&b, "this line makes the second message far too large for the limit\n");
	qn_buf_adds(&b, "\nFrom c Thu Nov  5 09:12:01 2026\nSubject: three\n\nsmall three\n\n");
	/* A single line longer than the limit. */
	qn_buf_adds(&b, "From d Thu Nov  5 09:12:01 2026\nSubject: four\n\n");
	for (int i = 0; i < 5000; i++)
		qn_buf_addc(&b, 'x');
	qn_buf_adds(&b, "\n\nFrom e Thu Nov  5 09:12:01 2026\nSubject: five\n\nsmall five\n");
	r = run_mem(b.data, b.len, 1, &o);
	CHECK(r.rc == 0);
	CHECK(json_array_size(r.docs) == 3);
	CHECK_STR("oversized: first", text(&r, 0), "small one");
	CHECK_STR("oversized: next still emitted", text(&r, 1), "small three");
	CHECK(meta_i(&r, 1, "mbox_index") == 3);
	CHECK_STR("oversized: after long line", text(&r, 2), "small five");
	CHECK(meta_i(&r, 2, "mbox_index") == 5);
	CHECK(r.failed == 2);
	CHECK(contains(r.msgs, "message 2 (line 6)"));
	CHECK(contains(r.msgs, "message 4 ("));
	run_free(&r);

	/* An .eml over the limit fails as a whole. */
	r = run_mem(b.data, b.len, 0, &o);
	CHECK(r.rc == -1 && json_array_size(r.docs) == 0 && r.failed == 1);
	CHECK(contains(r.msgs, "larger than 4096 bytes"));
	run_free(&r);
	qn_buf_release(&b);
}

static void test_empty_and_subject_only(void)
{
	struct ix_opts o = opts();
	struct run r;

	r = run_str("Subject: only a subject\nContent-Type: application/pdf\n\nJVBERi0=\n", 0, &o);
	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("subject-only text empty", text(&r, 0), "");
	CHECK(meta_i(&r, 0, "attachments") == 1);
	run_free(&r);

	r = run_str("From: x@example.com\n\n\n\n", 0, &o);
	CHECK(json_array_size(r.docs) == 0 && r.failed == 1);
	CHECK(contains(r.msgs, "no text body"));
	run_free(&r);
}

static void test_dates(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"Thu, 5 Nov 2026 09:12:01 +0000", "2026-11-05T09:12:01Z"},
	    {"5 Nov 2026 09:12 GMT", "2026-11-05T09:12:00Z"},
	    {"Thu, 05 Nov 2026 10:12:01 +0100 (CET)", "2026-11-05T09:12:01Z"},
	    {"Thu Nov  5 09:12:01 2026", "2026-11-05T09:12:01Z"},
	    {"2026-11-05T09:12:01Z", "2026-11-05T09:12:01Z"},
	    {"2026-11-05 11:12:01 +02:00", "2026-11-05T09:12:01Z"},
	    {"Thursday, 5-Nov-2026 01:12:01 PST", "2026-11-05T09:12:01Z"},
	    {"Sun, 31 Dec 2023 23:59:60 -0000", "2023-12-31T23:59:59Z"},
	    {"sometime last week", NULL},
	    {"31 Feb 2026 10:00:00 +0000", NULL},
	    {"5 Nov 2026 25:00:00 +0000", NULL},
	};
	struct ix_opts o = opts();
	char msg[256];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(msg, sizeof msg, "Date: %s\nSubject: d\n\nbody\n", cases[i].in);
		struct run r = run_str(msg, 0, &o);
		const char *got = json_string_value(json_object_get(doc(&r, 0), "created"));
		if (cases[i].want) {
			CHECK_STR(cases[i].in, got, cases[i].want);
		} else {
			CHECK_NAMED(cases[i].in, got == NULL);
			CHECK_STR("raw date kept", meta_s(&r, 0, "date"), cases[i].in);
		}
		run_free(&r);
	}
}

static void test_garbage(void)
{
	struct ix_opts o = opts();
	unsigned char buf[65536];
	unsigned x = 12345;

	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < sizeof buf; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
			/* Sprinkle in structure the parser looks for. */
			if (round % 2 && (x >> 8) % 50 == 0)
				buf[i] = "\n:=?-\"; \r>"[(x >> 4) % 10];
		}
		struct run r = run_mem(buf, sizeof buf, round % 3 == 0, &o);
		CHECK_NAMED("garbage does not crash", r.rc == 0 || r.rc == -1);
		for (size_t i = 0; i < json_array_size(r.docs); i++)
			CHECK_NAMED("garbage text is a string", text(&r, i) != NULL);
		run_free(&r);
	}
	static const char *const hostile[] = {
	    "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n",
	    "Content-Type: multipart/alternative; boundary=a\n\n--a\n--a\n--a--\n",
	    "Content-Type: multipart/mixed; boundary=\"unterminated\n\n--x\n",
	    "Content-Type: text/plain; charset*=''\nContent-Transfer-Encoding: base64\n\n=",
	    "Content-Type: text/plain; name*0*=%; name*1=\"\\\nContent-Transfer-Encoding: "
	    "quoted-printable\n\n=\n=A=",
	    "Subject: =?\n =?=?utf-8?B?=?==?utf-8?Q?=?=\n\n",
	    "Date: 99999999999999 Nov 2026 99:99:99 +99999\nSubject: x\n\n",
	    "Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: in\n\nhi\n",
	    "\n",
	    /* Fuzzer find: an HTML part with no text used to leave a NUL behind. */
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nA\n--b\n"
	    "Content-Type: text/html\n\n<n MIME format.\n\n--b\n\nB\n--b--\n",
	    "From \n",
	    ">From x\n",
	};
	for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++)
		for (int mbox = 0; mbox < 2; mbox++) {
			o.quotes = (enum ix_quotes)(i % 3);
			struct run r = run_str(hostile[i], mbox, &o);
			CHECK_NAMED("hostile input handled", r.rc == 0 || r.rc == -1);
			for (size_t d = 0; d < json_array_size(r.docs); d++)
				CHECK_NAMED("no NUL in text",
					    json_string_length(json_object_get(
						doc(&r, d), "text")) == strlen(text(&r, d)));
			run_free(&r);
		}
}

int main(void)
{
	find_fixtures();
	test_plain();
	test_alternative();
	test_html_only();
	test_qp_latin1();
	test_base64();
	test_rfc2047();
	test_attachment();
	test_mbox();
	test_broken();
	test_quotes();
	test_oversized();
	test_empty_and_subject_only();
	test_dates();
	test_garbage();
	return CHECK_DONE();
}
