/*
 * test_html.c - the HTML extractor on small pages whose right answer is
 * plain: rendering (lists, tables, pre, br, entities, whitespace), the
 * chrome it must drop, the headline rule, metadata, --full and --alt.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "html.h"
#include "testfs.h"

static char *extract(const char *html, int full, int alt, json_t **meta_out)
{
	struct ix_html_opts o = {.full = full, .keep_alt = alt};
	struct qn_buf text;
	struct qn_err e;
	json_t *meta = json_object();

	qn_buf_init(&text, QN_BUF_UNLIMITED);
	if (ix_html_extract(html, strlen(html), &o, &text, meta, &e) < 0) {
		printf("  extract failed: %s\n", e.msg);
		qn_buf_release(&text);
		json_decref(meta);
		return NULL;
	}
	if (meta_out)
		*meta_out = meta;
	else
		json_decref(meta);
	return qn_buf_detach(&text, NULL);
}

#define PARA "This paragraph has plenty of words, so that it reads as content to the scorer."

int main(void)
{
	char *t;
	json_t *m = NULL;

	t = extract("<html lang=\"en\"><head><title>My Page | Site</title>"
		    "<link rel=\"canonical\" href=\"https://x.example/p\">"
		    "<meta name=\"description\" content=\"About  things\"></head>"
		    "<body><article><h1>My Page</h1><p>" PARA "</p></article></body></html>",
		    0, 0, &m);
	CHECK_STR("headline then paragraph", t, "My Page\n\n" PARA);
	CHECK_STR("title", json_string_value(json_object_get(m, "title")), "My Page | Site");
	CHECK_STR("lang", json_string_value(json_object_get(m, "lang")), "en");
	CHECK_STR("canonical url", json_string_value(json_object_get(m, "url")),
		  "https://x.example/p");
	CHECK_STR("description collapsed", json_string_value(json_object_get(m, "description")),
		  "About things");
	json_decref(m);
	free(t);

	t = extract("<body><nav><a href=/>Home</a> <a href=/a>About us and more</a></nav>"
		    "<div class=\"cookie-banner\"><p>We use cookies to improve your experience. "
		    "Accept all?</p></div><main><p>" PARA "</p><p>Second " PARA "</p></main>"
		    "<aside><p>Popular: " PARA "</p></aside>"
		    "<footer><p>Copyright 2026, all rights reserved, a long footer line here</p>"
		    "</footer><script>var x = 'script text';</script><style>p{}</style></body>",
		    0, 0, NULL);
	CHECK_NAMED("main paragraphs kept", contains(t, "Second " PARA));
	CHECK_NAMED("nav dropped", !contains(t, "About us"));
	CHECK_NAMED("cookie banner dropped", !contains(t, "cookies"));
	CHECK_NAMED("aside dropped", !contains(t, "Popular"));
	CHECK_NAMED("footer dropped", !contains(t, "rights reserved"));
	CHECK_NAMED("script dropped", !contains(t, "script text"));
	free(t);

	t = extract("<body><article><p>" PARA "</p><ul><li>one</li><li>two<ul><li>deep</li></ul>"
		    "</li></ul><ol><li>first</li><li>second</li></ol></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("unordered items", contains(t, "- one\n- two\n  - deep"));
	CHECK_NAMED("ordered items", contains(t, "1. first\n2. second"));
	free(t);

	t = extract("<body><article><p>" PARA "</p><table><tr><th>Name</th><th>Size</th></tr>"
		    "<tr><td> a </td><td>1 GB</td></tr></table></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("table rows with cells joined", contains(t, "Name | Size\na | 1 GB"));
	free(t);

	t = extract("<body><article><p>" PARA "</p><pre>\nint main(void)\n{\n\treturn 0;\n}\n"
		    "</pre><p>a<br>b &amp; c&nbsp;d</p></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("pre verbatim, first newline dropped",
		    contains(t, "int main(void)\n{\n\treturn 0;\n}"));
	CHECK_NAMED("br is a line break, entities decoded", contains(t, "a\nb & c d"));
	free(t);

	t = extract("<body><div hidden><p>" PARA " hidden1</p></div>"
		    "<div style=\"display: none\"><p>" PARA " hidden2</p></div>"
		    "<div aria-hidden=\"true\"><p>" PARA " hidden3</p></div>"
		    "<article><p>" PARA "</p><p>shown</p></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("hidden attribute dropped", !contains(t, "hidden1"));
	CHECK_NAMED("display:none dropped", !contains(t, "hidden2"));
	CHECK_NAMED("aria-hidden dropped", !contains(t, "hidden3"));
	free(t);

	/* The headline sits in a site header, outside the article. */
	t = extract("<html><head><title>Harbour strike ends - Daily</title></head><body>"
		    "<header><h1>Harbour strike ends</h1></header><div class=\"c-1\"><p>" PARA
		    "</p><p>" PARA "</p></div></body></html>",
		    0, 0, NULL);
	CHECK_NAMED("headline from a dropped header comes first",
		    t && !strncmp(t, "Harbour strike ends\n\n", 21));
	free(t);

	/* Forum: several posts, each with a profile block, all kept. */
	t = extract("<body><div id=\"thread\">"
		    "<div class=\"post\"><div class=\"postprofile\">anna, 12 posts</div>"
		    "<div class=\"postbody\"><p>First post: " PARA "</p></div></div>"
		    "<div class=\"post\"><div class=\"postprofile\">bo, 3 posts</div>"
		    "<div class=\"postbody\"><p>Second post: " PARA "</p></div></div>"
		    "<div class=\"post\"><div class=\"postprofile\">cy, 9 posts</div>"
		    "<div class=\"postbody\"><p>Third post: " PARA "</p></div></div></div></body>",
		    0, 0, NULL);
	CHECK_NAMED("all forum posts kept", contains(t, "First post") &&
						contains(t, "Second post") &&
						contains(t, "Third post"));
	CHECK_NAMED("post profiles dropped", !contains(t, "12 posts"));
	free(t);

	/* Ids made from headings are not read as chrome words. */
	t = extract(
	    "<body><article><section id=\"iterating-over-results\"><h2>Iterating</h2><p>" PARA
	    "</p></section></article></body>",
	    0, 0, NULL);
	CHECK_NAMED("section with an id like 'iterating' kept", contains(t, PARA));
	free(t);

	t = extract("<body><nav><p>menu words here</p></nav><article><p>" PARA
		    "</p><img src=x alt=\"A red kite\"></article></body>",
		    1, 1, NULL);
	CHECK_NAMED("--full keeps navigation", contains(t, "menu words here"));
	CHECK_NAMED("--alt renders alt text", contains(t, "[image: A red kite]"));
	free(t);

	/* Script and style bodies and comments never show, whatever they hold. */
	t = extract("<body><article><p>" PARA "</p><script type=\"a>b\">if (a < b) "
		    "document.write('<p>injected</p>');</SCRIPT ><p>after script</p>"
		    "<!-- <p>commented out</p> --><style>p::after{content:'<b>styled</b>'}</style>"
		    "<p>after style</p><!--[if IE]><p>old ie</p><![endif]--></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("script body dropped", !contains(t, "injected"));
	CHECK_NAMED("comment dropped", !contains(t, "commented out") && !contains(t, "old ie"));
	CHECK_NAMED("style body dropped", !contains(t, "styled"));
	CHECK_NAMED("text after them kept",
		    contains(t, "after script") && contains(t, "after style"));
	free(t);
	t = extract("<body><p>" PARA "</p><script>never closed <p>gone</p>", 0, 0, NULL);
	CHECK_NAMED("unclosed script swallows the rest", contains(t, PARA) && !contains(t, "gone"));
	free(t);

	/* A breadcrumb trail in a meaningless div is not content. */
	t = extract("<body><div class=\"x1\">Home &gt; Breads &gt; Flatbreads</div><div "
		    "class=\"x2\"><p>" PARA "</p><p>" PARA "</p></div></body>",
		    0, 0, NULL);
	CHECK_NAMED("breadcrumb trail dropped", !contains(t, "Breads"));
	free(t);
	t = extract("<body><article><p>Home is where the heart is, and " PARA
		    "</p></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("a sentence starting with Home kept", contains(t, "Home is where"));
	free(t);

	/* A dropped form control still parts the words beside it. */
	t = extract("<body><article><p>" PARA
		    "</p><p>Finish: <label>Black</label><input type=radio>"
		    "<label>Steel</label></p></article></body>",
		    0, 0, NULL);
	CHECK_NAMED("labels not glued across a dropped input", contains(t, "Black Steel"));
	free(t);

	/* Text already in the buffer is never trimmed or separated. */
	{
		struct ix_html_opts o = {0};
		struct qn_buf b;
		struct qn_err e;
		json_t *meta = json_object();
		qn_buf_init(&b, QN_BUF_UNLIMITED);
		qn_buf_adds(&b, "prefix \n");
		ix_html_extract("<p>   </p>", 10, &o, &b, meta, &e);
		CHECK_STR("caller text untouched", b.data, "prefix \n");
		qn_buf_release(&b);
		json_decref(meta);
	}

	/* Hostile structure: deep nesting and unclosed tags. */
	{
		size_t depth = 200000;
		char *deep = malloc(depth * 5 + sizeof PARA);
		size_t k = 0;
		for (size_t i = 0; i < depth; i++) {
			memcpy(deep + k, "<div>", 5);
			k += 5;
		}
		strcpy(deep + k, PARA);
		t = extract(deep, 0, 0, NULL);
		CHECK_NAMED("200000 nested divs survive", t != NULL);
		free(t);
		free(deep);
	}
	t = extract("<p>unclosed <b>bold <i>italic <table><tr><td>cell", 0, 0, NULL);
	CHECK_NAMED("unclosed tags survive", t != NULL);
	free(t);
	t = extract("", 0, 0, NULL);
	CHECK_NAMED("empty input gives empty text", t && !*t);
	free(t);
	return CHECK_DONE();
}
