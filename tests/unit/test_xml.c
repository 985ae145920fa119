/*
 * test_xml.c - ix_xml: generic, XPath and the streaming presets on the
 * fixtures in tests/fixtures/xml, plus hostile inputs (billion laughs, XXE,
 * deep nesting, truncation) and libxml2 staying silent on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libxml/parser.h>

#include "check.h"
#include "err.h"
#include "../../ingest/ingest.h"
#include "rd.h"
#include "testfs.h"

#define FIX "tests/fixtures/xml/"

struct run {
	struct ix_sink s;
	json_t *docs; /* array of parsed lines */
	int rc;
};

static struct ix_opts base_opts(void)
{
	struct ix_opts o;
	memset(&o, 0, sizeof o);
	o.added = "2024-01-01T00:00:00Z";
	o.max_bytes = 1 << 20;
	return o;
}

static void run_file(struct run *r, const char *path, const char *preset, const struct ix_opts *o)
{
	struct qn_err e;
	struct qn_rd *rd;
	const char *p, *nl;

	memset(r, 0, sizeof *r);
	r->s.opt = o;
	r->s.path = path;
	r->s.source = "test";
	r->s.format = "xml";
	qn_buf_init(&r->s.out, QN_BUF_UNLIMITED);
	qn_buf_init(&r->s.msgs, QN_BUF_UNLIMITED);
	r->docs = json_array();
	rd = qn_rd_open(path, 0, &e);
	if (!rd) {
		printf("cannot open %s: %s\n", path, e.msg);
		r->rc = -99;
		return;
	}
	r->rc = ix_xml(&r->s, rd, preset);
	qn_rd_close(rd);
	for (p = r->s.out.data; p && *p; p = nl + 1) {
		json_error_t je;
		nl = strchr(p, '\n');
		if (!nl)
			break;
		json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
		if (!j)
			printf("bad json line: %.*s\n", (int)(nl - p), p);
		else
			json_array_append_new(r->docs, j);
	}
}

static void run_free(struct run *r)
{
	qn_buf_release(&r->s.out);
	qn_buf_release(&r->s.msgs);
	json_decref(r->docs);
}

static const char *doc_str(struct run *r, size_t i, const char *field)
{
	json_t *d = json_array_get(r->docs, i);
	return json_string_value(json_object_get(d, field));
}

static const char *meta_str(struct run *r, size_t i, const char *field)
{
	json_t *d = json_array_get(r->docs, i);
	return json_string_value(json_object_get(json_object_get(d, "metadata"), field));
}

static json_int_t meta_int(struct run *r, size_t i, const char *field)
{
	json_t *d = json_array_get(r->docs, i);
	return json_integer_value(json_object_get(json_object_get(d, "metadata"), field));
}

static const char *msgs(struct run *r)
{
	return r->s.msgs.data ? r->s.msgs.data : "";
}

static void test_generic(void)
{
	struct ix_opts o = base_opts();
	struct run r;

	run_file(&r, FIX "generic.xml", NULL, &o);
	CHECK(r.rc == 0);
	CHECK(json_array_size(r.docs) == 1);
	CHECK_STR("generic text", doc_str(&r, 0, "text"),
		  "The Art of XML\nJane Doe\nA fine book by Acme Corp.\n\nSecond\nJohn Roe");
	CHECK_STR("generic root", meta_str(&r, 0, "root"), "catalog");
	CHECK_STR("generic format", meta_str(&r, 0, "format"), "xml");
	CHECK(r.s.failed == 0);
	run_free(&r);

	run_file(&r, FIX "latin1.xml", NULL, &o);
	CHECK_STR("latin1 to utf-8", doc_str(&r, 0, "text"), "caf\xc3\xa9 cr\xc3\xa8me");
	CHECK(!strcasecmp(r.s.charset, "ISO-8859-1"));
	run_free(&r);

	run_file(&r, FIX "deep.xml", NULL, &o);
	CHECK_STR("deep but legal", doc_str(&r, 0, "text"), "deep");
	run_free(&r);

	run_file(&r, FIX "too-deep.xml", NULL, &o);
	CHECK(r.rc == -1 && r.s.failed == 1 && json_array_size(r.docs) == 0);
	CHECK(contains(msgs(&r), "line 1: "));
	run_free(&r);

	o.max_bytes = 100;
	run_file(&r, FIX "generic.xml", NULL, &o);
	CHECK(r.rc == -1 && r.s.failed == 1);
	CHECK(contains(msgs(&r), "streaming preset"));
	run_free(&r);
}

static void test_xpath(void)
{
	struct ix_opts o = base_opts();
	const char *names[] = {"label", "n"};
	const char *exprs[] = {"x:label", "count(d:body/d:p)"};
	struct run r;

	o.xpath = "//d:record";
	o.id_xpath = "d:key";
	o.meta_name = names;
	o.meta_xpath = exprs;
	o.nmeta = 2;
	run_file(&r, FIX "ns.xml", NULL, &o);
	CHECK(r.rc == 0);
	CHECK(json_array_size(r.docs) == 2);
	CHECK_STR("xpath id explicit", doc_str(&r, 0, "id"), "r1");
	CHECK(doc_str(&r, 1, "id") && strlen(doc_str(&r, 1, "id")) == 32); /* hashed "node:2" */
	CHECK(contains(doc_str(&r, 0, "text"), "First body.\n\nMore."));
	CHECK_STR("xpath meta", meta_str(&r, 1, "label"), "Label two");
	CHECK_STR("xpath meta number", meta_str(&r, 0, "n"), "2");
	CHECK_STR("xpath path", meta_str(&r, 0, "xml_path"), "/library/record");
	run_free(&r);

	o.xpath = "//*[local-name()='record']";
	o.text_xpath = "*[local-name()='body']/*";
	o.id_xpath = NULL;
	o.nmeta = 0;
	run_file(&r, FIX "ns.xml", NULL, &o);
	CHECK(json_array_size(r.docs) == 2);
	CHECK_STR("text xpath", doc_str(&r, 0, "text"), "First body.\n\nMore.");
	run_free(&r);

	/* Same input twice: same ids. */
	struct run r2;
	run_file(&r, FIX "ns.xml", NULL, &o);
	run_file(&r2, FIX "ns.xml", NULL, &o);
	CHECK_STR("deterministic id", doc_str(&r, 1, "id"), doc_str(&r2, 1, "id"));
	run_free(&r);
	run_free(&r2);

	o.xpath = "//item";
	o.text_xpath = NULL;
	run_file(&r, FIX "rss.xml", NULL, &o);
	CHECK(json_array_size(r.docs) == 3);
	run_free(&r);

	o.xpath = "//content:encoded";
	o.text_xpath = NULL;
	run_file(&r, FIX "rss.xml", NULL, &o);
	CHECK(json_array_size(r.docs) == 1);
	run_free(&r);

	o.xpath = "//mw:page[mw:ns='0']";
	o.id_xpath = "mw:id";
	run_file(&r, FIX "mediawiki.xml", NULL, &o);
	CHECK(json_array_size(r.docs) == 3);
	CHECK_STR("mw prefix", doc_str(&r, 0, "id"), "12");
	run_free(&r);

	o.xpath = "//[";
	run_file(&r, FIX "ns.xml", NULL, &o);
	CHECK(r.rc == -1 && r.s.failed == 1);
	CHECK(contains(msgs(&r), "xpath '//['"));
	run_free(&r);

	o.xpath = "count(//a)";
	run_file(&r, FIX "ns.xml", NULL, &o);
	CHECK(r.rc == -1 && contains(msgs(&r), "does not select nodes"));
	run_free(&r);
}

static void test_mediawiki(void)
{
	struct ix_opts o = base_opts();
	struct run r;
	const char *t;

	run_file(&r, FIX "mediawiki.xml", "mediawiki", &o);
	CHECK(r.rc == 0);
	CHECK(r.s.failed == 0);
	CHECK(json_array_size(r.docs) == 2); /* two redirects skipped */
	CHECK_STR("mw title", meta_str(&r, 0, "title"), "Anarchism & Order");
	CHECK(meta_int(&r, 0, "page_id") == 12);
	CHECK(meta_int(&r, 0, "namespace") == 0);
	CHECK(meta_int(&r, 1, "namespace") == 1);
	CHECK_STR("mw created", doc_str(&r, 0, "created"), "2023-05-06T07:08:09Z");
	CHECK_STR("mw format", meta_str(&r, 0, "format"), "mediawiki");
	t = doc_str(&r, 0, "text");
	CHECK(contains(t, "Anarchism is a political philosophy and movement that is skeptical."));
	CHECK(contains(t, "\n\nHistory\n\n"));
	CHECK(contains(t, "Text with a link label and ."));
	CHECK(contains(t, "- first item\n- second item"));
	CHECK(contains(t, "After\xc2\xa0table \xe2\x80\x93 done."));
	CHECK(!contains(t, "Infobox") && !contains(t, "old revision") && !contains(t, "source") &&
	      !contains(t, "hidden") && !contains(t, "cell") && !contains(t, "NOTOC") &&
	      !contains(t, "Category") && !contains(t, "flag"));
	CHECK_STR("mw text 2", doc_str(&r, 1, "text"), "Zebras are striped.");
	run_free(&r);

	run_file(&r, FIX "truncated.xml", "mediawiki", &o);
	CHECK(r.rc == 0);
	CHECK(json_array_size(r.docs) == 1);
	CHECK(r.s.failed == 1);
	CHECK(contains(msgs(&r), "cannot parse '" FIX "truncated.xml': line "));
	run_free(&r);

	/* A per-document limit below the page text: that page fails, the stream goes on. */
	o.max_bytes = 200;
	run_file(&r, FIX "mediawiki.xml", "mediawiki", &o);
	CHECK(json_array_size(r.docs) == 1);
	CHECK(r.s.failed == 1);
	run_free(&r);
}

static void test_rss(void)
{
	struct ix_opts o = base_opts();
	struct run r;

	run_file(&r, FIX "rss.xml", "rss", &o);
	CHECK(r.rc == 0 && r.s.failed == 0);
	CHECK(json_array_size(r.docs) == 2); /* the empty item has no text */
	CHECK_STR("rss format", meta_str(&r, 0, "format"), "rss");
	CHECK_STR("rss title", meta_str(&r, 0, "title"), "First post");
	CHECK_STR("rss url", meta_str(&r, 0, "url"), "https://example.org/1");
	CHECK_STR("rss feed title", meta_str(&r, 0, "feed_title"), "Example Feed");
	CHECK_STR("rss author", meta_str(&r, 0, "author"), "Alice");
	CHECK_STR("rss created", doc_str(&r, 0, "created"), "2003-06-10T04:00:00Z");
	CHECK(contains(doc_str(&r, 0, "text"), "Full body of the first post."));
	CHECK(contains(doc_str(&r, 0, "text"), "Second paragraph."));
	CHECK(!contains(doc_str(&r, 0, "text"), "Short summary"));
	CHECK(!contains(doc_str(&r, 0, "text"), "<p>"));
	CHECK_STR("rss created tz", doc_str(&r, 1, "created"), "2003-06-11T14:30:00Z");
	CHECK_STR("rss escaped html", doc_str(&r, 1, "text"), "Escaped & HTML description.");
	run_free(&r);
}

static void test_atom(void)
{
	struct ix_opts o = base_opts();
	struct run r;

	run_file(&r, FIX "atom.xml", "atom", &o);
	CHECK(r.rc == 0 && r.s.failed == 0);
	CHECK(json_array_size(r.docs) == 3);
	CHECK_STR("atom url", meta_str(&r, 0, "url"), "https://example.org/2003/12/13/atom03");
	CHECK_STR("atom title", meta_str(&r, 0, "title"), "Atom-Powered Robots Run Amok");
	CHECK_STR("atom feed title", meta_str(&r, 0, "feed_title"), "Example Atom");
	CHECK_STR("atom published", doc_str(&r, 0, "created"), "2003-12-13T23:30:02Z");
	CHECK_STR("atom html", doc_str(&r, 0, "text"), "Some html text.");
	CHECK_STR("atom xhtml", doc_str(&r, 1, "text"), "Para one.\n\nPara two.");
	CHECK_STR("atom url no rel", meta_str(&r, 1, "url"), "https://example.org/x");
	CHECK_STR("atom updated", doc_str(&r, 1, "created"), "2004-01-01T00:00:00Z");
	CHECK_STR("atom text", doc_str(&r, 2, "text"), "Plain <summary> text.");
	run_free(&r);

	/* Wrong preset: nothing matches, nothing fails. */
	run_file(&r, FIX "atom.xml", "rss", &o);
	CHECK(r.rc == 0 && json_array_size(r.docs) == 0 && r.s.failed == 0);
	run_free(&r);

	run_file(&r, FIX "atom.xml", "bogus", &o);
	CHECK(r.rc == -1 && contains(msgs(&r), "unknown XML preset"));
	run_free(&r);
}

static void test_hostile(void)
{
	struct ix_opts o = base_opts();
	const char *presets[] = {NULL, "mediawiki"};
	struct run r;

	for (int i = 0; i < 2; i++) {
		run_file(&r, FIX "billion-laughs.xml", presets[i], &o);
		CHECK(r.rc == -1);
		CHECK(r.s.failed == 1);
		CHECK(json_array_size(r.docs) == 0);
		CHECK(contains(msgs(&r), "line "));
		CHECK(contains(msgs(&r), "entity"));
		printf("  billion laughs (%s): %s", presets[i] ? presets[i] : "generic", msgs(&r));
		run_free(&r);
	}

	o.xpath = "//lolz";
	run_file(&r, FIX "billion-laughs.xml", NULL, &o);
	CHECK(r.rc == -1 && r.s.failed == 1);
	run_free(&r);
	o.xpath = NULL;

	run_file(&r, FIX "xxe.xml", NULL, &o);
	CHECK(!contains(r.s.out.data, "root:"));
	CHECK(!contains(r.s.out.data, "/bin/"));
	if (json_array_size(r.docs))
		CHECK_STR("xxe text", doc_str(&r, 0, "text"), "before after");
	printf("  xxe: rc %d, docs %zu, %s\n", r.rc, json_array_size(r.docs), msgs(&r));
	run_free(&r);

	run_file(&r, FIX "xxe-dtd.xml", NULL, &o);
	CHECK(!contains(r.s.out.data, "root:"));
	CHECK_STR("external dtd ignored", doc_str(&r, 0, "text"), "safe text");
	run_free(&r);
}

/* libxml2 must not write to stderr, whatever the input. */
static void test_silent(void)
{
	struct ix_opts o = base_opts();
	const char *files[] = {"truncated.xml", "billion-laughs.xml", "xxe.xml", "too-deep.xml"};
	char tmpl[] = "/tmp/test_xml_stderrXXXXXX";
	int fd = mkstemp(tmpl), saved = dup(2);
	struct run r;

	fflush(stderr);
	dup2(fd, 2);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[256];
		snprintf(path, sizeof path, FIX "%s", files[i]);
		run_file(&r, path, NULL, &o);
		run_free(&r);
		run_file(&r, path, "mediawiki", &o);
		run_free(&r);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	CHECK(lseek(fd, 0, SEEK_END) == 0);
	close(fd);
	unlink(tmpl);
}

int main(void)
{
	xmlInitParser();
	test_generic();
	test_xpath();
	test_mediawiki();
	test_rss();
	test_atom();
	test_hostile();
	test_silent();
	xmlCleanupParser();
	return CHECK_DONE();
}
