/*
 * html.h - text and metadata out of HTML, with main-content extraction.
 *
 * The page is parsed by libxml2's HTML parser (recovering, no network) and
 * boilerplate is removed without site-specific rules, combining the ideas
 * of readability, jusText and trafilatura: drop what markup marks as
 * chrome (nav, header, footer, aside, menus, hidden nodes, ARIA landmarks,
 * class/id words such as "cookie", "share", "comments", "related"), score
 * the remaining blocks by text length, commas and link density, propagate
 * scores to ancestors, pick the best container and its worthy siblings, and
 * render headings, paragraphs, lists, tables (one row a line, cells joined
 * by " | ") and pre blocks (verbatim). With full set, all visible text.
 *
 * Input must already be UTF-8 (see lib/charset.h); metadata fields are
 * added to the caller's object.
 */
#ifndef IX_HTML_H
#define IX_HTML_H

#include <stddef.h>

#include <jansson.h>

struct qn_buf;
struct qn_err;

struct ix_html_opts {
	int full;     /* keep all visible text */
	int keep_alt; /* render image alt text as "[image: alt]" */
};

/*
 * Appends the extracted text to text; sets title, lang, url, description in
 * meta when the page has them. -1 with e filled when nothing can be parsed.
 */
int ix_html_extract(const char *utf8, size_t len, const struct ix_html_opts *o,
		    struct qn_buf *text, json_t *meta, struct qn_err *e);

/*
 * The charset an HTML document declares in its first 4 KB (<meta charset>
 * or http-equiv Content-Type), copied into out[64]; NULL when none.
 */
const char *ix_html_declared_charset(const char *p, size_t n, char out[64]);

#endif
