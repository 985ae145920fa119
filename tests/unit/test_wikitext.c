/*
 * test_wikitext.c - ix_wikitext: each markup construct on its own, their
 * combinations, and pathological inputs that would be quadratic (or
 * overflow a stack) in a naive converter.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "utf8.h"
#include "../../ingest/ingest.h"

static char *wt(const char *src)
{
	static struct qn_buf out;
	qn_buf_release(&out);
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	if (ix_wikitext(src, strlen(src), &out) < 0)
		return "(error)";
	return out.data ? out.data : "";
}

#define T(name, src, want) CHECK_STR(name, wt(src), want)

static void test_inline(void)
{
	T("plain", "Hello world.", "Hello world.");
	T("bold italic", "'''bold''' and ''italic'' and '''''both'''''", "bold and italic and both");
	T("apostrophe", "it's l'''a'''", "it's la");
	T("four quotes", "''''x'''", "'x");
	T("link", "a [[target]] b", "a target b");
	T("link label", "a [[target page|label]] b", "a label b");
	T("link suffix", "[[bus]]es", "buses");
	T("link colon", "see [[:Category:Foo]]", "see Category:Foo");
	T("pipe trick", "[[Paris (France)|]]", "Paris (France)");
	T("link in label", "[[a|b ''c'' d]]", "b c d");
	T("file dropped", "x [[File:A.jpg|thumb|cap [[with link]] and [[b|c]]]] y", "x y");
	T("image dropped", "[[Image:A.png]]z", "z");
	T("category dropped", "x\n[[Category:Foo|Bar]]", "x");
	T("interlanguage dropped", "x [[de:Titel]] y", "x y");
	T("ext link label", "[https://example.org the label]", "the label");
	T("ext link bare", "see [https://example.org] now", "see now");
	T("bare url", "at https://example.org/x ok", "at https://example.org/x ok");
	T("unclosed link", "a [[b c", "a [[b c");
	T("stray brackets", "a ]] b [c]", "a ]] b [c]");
	T("switch", "__TOC__a__NOTOC__", "a");
	T("underscores", "snake_case __x__", "snake_case __x__");
	T("entities", "a&amp;b &lt;c&gt; &nbsp;&ndash;&#65;&#x42;&mdash;", "a&b <c> \xc2\xa0\xe2\x80\x93" "AB\xe2\x80\x94");
	T("bad entities", "&bogus; & &#xD800; &#;", "&bogus; & \xef\xbf\xbd &#;");
}

static void test_templates(void)
{
	T("template", "a {{cite|x=1}} b", "a b");
	T("nested", "a {{x|{{y|{{z}}}}}} b", "a b");
	T("param", "a {{{1|default}}} b", "a b");
	T("template line", "{{Infobox\n| a = b\n}}\nText.", "Text.");
	T("unclosed template", "a {{b c", "a {{b c");
	T("unclosed outer", "a {{ b {{c}} d", "a {{ b d");
	T("extra close", "a }} b", "a }} b");
	T("magic", "{{DEFAULTSORT:X}}{{PAGENAME}}ok", "ok");
}

static void test_tags(void)
{
	T("comment", "a<!-- x -->b", "ab");
	T("comment line", "a\n<!-- x -->\nb", "a\nb");
	T("unclosed comment", "a<!-- b", "a");
	T("ref", "fact.<ref name=\"a\">Source {{cite}}</ref> Next", "fact. Next");
	T("ref self", "fact.<ref name=\"a\" /> Next", "fact. Next");
	T("ref case", "x<REF>y</Ref>z", "xz");
	T("unclosed ref", "x<ref>y", "xy");
	T("kept tags", "<span style=\"x\">in</span> <b>bold</b> <sup>2</sup>", "in bold 2");
	T("br", "a<br/>b", "a\nb");
	T("gallery", "a<gallery>\nFile:x.jpg|cap\n</gallery>b", "ab");
	T("math", "e = <math>mc^2</math>.", "e = .");
	T("nowiki", "<nowiki>[[not a link]] ''x''</nowiki>", "[[not a link]] ''x''");
	T("pre", "<pre>{{x}}\n* y</pre>", "{{x}}\n* y");
	T("unknown tag", "a <foo> b < c", "a <foo> b < c");
	T("includeonly", "a<includeonly>hidden</includeonly>b<noinclude>c</noinclude>", "abc");
}

static void test_lines(void)
{
	T("heading", "Intro.\n== History ==\nText.", "Intro.\n\nHistory\n\nText.");
	T("heading 3", "=== Sub ''x'' ===\nT", "Sub x\n\nT");
	T("heading unbalanced", "== A =\nT", "= A\n\nT"); /* as MediaWiki: level 1 */
	T("not heading", "==\n= x", "==\n= x");
	T("list", "* a\n* b\n# c\n** d", "- a\n- b\n- c\n- d");
	T("indent", ": quoted\n;term", "quoted\nterm");
	T("table", "a\n{| class=x\n|-\n| c || d\n{|\n|e\n|}\n|}\nb", "a\n\nb");
	T("unclosed table", "a\n{|\n| c", "a");
	T("hr", "a\n----\nb", "a\n\nb");
	T("paragraphs", "a\n\n\n\nb", "a\n\nb");
	T("spaces", "  a   b  \n  c ", "a b\nc");
	T("empty", "", "");
	T("only markup", "{{x}}[[Category:Y]]<!-- z -->", "");
}

/* Inputs a naive converter takes quadratic time or deep recursion on. */
static void test_pathological(void)
{
	const size_t n = 2u << 20;
	const char *pats[] = {"{{", "}}", "<ref>", "[[", "[http://x", "<!--", "[[a|", "{|\n", "'''", "&#", "<nowiki>", "__A"};
	char *src = malloc(n + 1);
	struct qn_buf out;

	for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
		size_t k = strlen(pats[p]);
		for (size_t i = 0; i < n; i++)
			src[i] = pats[p][i % k];
		src[n] = 0;
		qn_buf_init(&out, QN_BUF_UNLIMITED);
		CHECK_NAMED(pats[p], ix_wikitext(src, n, &out) == 0 && qn_utf8_valid(out.data ? out.data : "", out.len));
		qn_buf_release(&out);
	}
	/* Deep nesting of every kind. */
	size_t d = 200000, m = 0;
	const char *opens[] = {"{{", "[[a|", "<span>"};
	for (size_t p = 0; p < 3; p++) {
		m = 0;
		for (size_t i = 0; i < d && m + 8 < n; i++)
			for (const char *q = opens[p]; *q; q++)
				src[m++] = *q;
		src[m] = 0;
		qn_buf_init(&out, QN_BUF_UNLIMITED);
		CHECK_NAMED(opens[p], ix_wikitext(src, m, &out) == 0);
		qn_buf_release(&out);
	}
	/* Output limit: an error, not a crash. */
	qn_buf_init(&out, 4);
	CHECK(ix_wikitext("hello world", 11, &out) == -1);
	qn_buf_release(&out);
	/* Appends to what is there. */
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	qn_buf_adds(&out, "x:");
	CHECK(ix_wikitext(" '''a''' ", 9, &out) == 0);
	CHECK_STR("appends", out.data, "x:a");
	qn_buf_release(&out);
	free(src);
}

int main(void)
{
	test_inline();
	test_templates();
	test_tags();
	test_lines();
	test_pathological();
	wt("");
	return CHECK_DONE();
}
