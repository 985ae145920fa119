/*
 * html.c - main-content extraction from HTML; see html.h for the approach.
 *
 * Four passes over the libxml2 tree, all iterative (hostile nesting depth
 * cannot overflow the stack):
 *   1. stats: text and link-text length of every element subtree;
 *   2. drop: mark chrome and hidden subtrees, then recount the stats;
 *   3. score: paragraph-like blocks give points to their ancestors;
 *   4. render: the best container (and worthy siblings) to text.
 * Per-element state lives in an array reached through node->_private.
 */
#include "html.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "buf.h"
#include "err.h"

enum {
	T_BLOCK = 1 << 0,   /* starts a new block when rendered */
	T_DROP = 1 << 1,    /* never visible: script, style, form controls */
	T_CHROME = 1 << 2,  /* page chrome: nav, aside, footer, header, menu */
	T_HEAD = 1 << 3,    /* h1..h6 */
	T_PARA = 1 << 4,    /* a paragraph-like block that earns score */
	T_LIST = 1 << 5,    /* ul, ol, dl, menu */
	T_ITEM = 1 << 6,    /* li, dt, dd */
	T_PRE = 1 << 7,
	T_TABLE = 1 << 8,
	T_ROW = 1 << 9,
	T_CELL = 1 << 10,
	T_LINK = 1 << 11,
	T_BR = 1 << 12,
	T_IMG = 1 << 13,
	T_KEEP = 1 << 14,   /* never dropped for class words: html, body, main, article */
	T_CONTAINER = 1 << 15, /* div-like: may hold direct text that earns score */
};

struct tag {
	const char *name;
	unsigned flags;
};

/* Sorted by name for bsearch. */
static const struct tag tags[] = {
	{"a", T_LINK},
	{"address", T_BLOCK},
	{"applet", T_DROP},
	{"article", T_BLOCK | T_KEEP | T_CONTAINER},
	{"aside", T_BLOCK | T_CHROME},
	{"audio", T_DROP},
	{"blockquote", T_BLOCK | T_PARA},
	{"body", T_BLOCK | T_KEEP | T_CONTAINER},
	{"br", T_BR},
	{"button", T_DROP},
	{"canvas", T_DROP},
	{"caption", T_BLOCK},
	{"center", T_BLOCK | T_CONTAINER},
	{"datalist", T_DROP},
	{"dd", T_BLOCK | T_ITEM | T_PARA},
	{"details", T_BLOCK | T_CONTAINER},
	{"dialog", T_BLOCK | T_CHROME},
	{"dir", T_BLOCK | T_LIST},
	{"div", T_BLOCK | T_CONTAINER},
	{"dl", T_BLOCK | T_LIST},
	{"dt", T_BLOCK | T_ITEM},
	{"embed", T_DROP},
	{"fieldset", T_BLOCK},
	{"figcaption", T_BLOCK},
	{"figure", T_BLOCK},
	{"footer", T_BLOCK | T_CHROME},
	{"form", T_BLOCK | T_CHROME},
	{"frameset", T_DROP},
	{"h1", T_BLOCK | T_HEAD},
	{"h2", T_BLOCK | T_HEAD},
	{"h3", T_BLOCK | T_HEAD},
	{"h4", T_BLOCK | T_HEAD},
	{"h5", T_BLOCK | T_HEAD},
	{"h6", T_BLOCK | T_HEAD},
	{"head", T_DROP},
	{"header", T_BLOCK | T_CHROME},
	{"hgroup", T_BLOCK},
	{"hr", T_BLOCK},
	{"html", T_BLOCK | T_KEEP},
	{"iframe", T_DROP},
	{"img", T_IMG},
	{"input", T_DROP},
	{"legend", T_BLOCK},
	{"li", T_BLOCK | T_ITEM | T_PARA},
	{"main", T_BLOCK | T_KEEP | T_CONTAINER},
	{"map", T_DROP},
	{"math", T_DROP},
	{"menu", T_BLOCK | T_LIST | T_CHROME},
	{"nav", T_BLOCK | T_CHROME},
	{"noembed", T_DROP},
	{"noframes", T_DROP},
	{"noscript", T_DROP},
	{"object", T_DROP},
	{"ol", T_BLOCK | T_LIST},
	{"option", T_DROP},
	{"p", T_BLOCK | T_PARA},
	{"param", T_DROP},
	{"picture", 0},
	{"pre", T_BLOCK | T_PRE | T_PARA},
	{"progress", T_DROP},
	{"rp", T_DROP},
	{"script", T_DROP},
	{"section", T_BLOCK | T_CONTAINER},
	{"select", T_DROP},
	{"source", T_DROP},
	{"style", T_DROP},
	{"summary", T_BLOCK},
	{"svg", T_DROP},
	{"table", T_BLOCK | T_TABLE},
	{"tbody", T_BLOCK},
	{"td", T_BLOCK | T_CELL | T_PARA},
	{"template", T_DROP},
	{"textarea", T_DROP},
	{"tfoot", T_BLOCK},
	{"th", T_BLOCK | T_CELL},
	{"thead", T_BLOCK},
	{"title", T_DROP},
	{"tr", T_BLOCK | T_ROW},
	{"track", T_DROP},
	{"ul", T_BLOCK | T_LIST},
	{"video", T_DROP},
};

static int tag_cmp(const void *k, const void *t)
{
	return strcmp(k, ((const struct tag *)t)->name);
}

static unsigned tag_flags(const xmlNode *n)
{
	const struct tag *t;

	if (n->type != XML_ELEMENT_NODE)
		return 0;
	t = bsearch(n->name, tags, sizeof tags / sizeof *tags, sizeof *tags, tag_cmp);
	return t ? t->flags : 0;
}

struct nst {
	uint32_t text;   /* non-space bytes of text in the subtree */
	uint32_t link;   /* of which inside <a> */
	uint32_t own;    /* text in direct child text nodes */
	uint32_t commas;
	float score;
	float mass;      /* sum of the paragraph values inside, undecayed */
	unsigned flags;
	uint8_t dropped;
	uint8_t scored;  /* has a score */
	uint8_t chosen;  /* rendered as part of the content */
	int8_t cls;      /* class/id words: -1 boilerplate, +1 content, 0 neither */
};

#define NST(n) ((struct nst *)(n)->_private)

/* Next node in document order, not entering n's children when skip is set. */
static xmlNode *next_node(xmlNode *n, const xmlNode *root, int skip)
{
	if (!skip && n->children && n->type == XML_ELEMENT_NODE)
		return n->children;
	while (n && n != root) {
		if (n->next)
			return n->next;
		n = n->parent;
	}
	return NULL;
}

static uint32_t nonspace(const xmlChar *s, uint32_t *commas)
{
	uint32_t k = 0;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r' || *s == '\f')
			continue;
		if (*s == ',')
			(*commas)++;
		k++;
	}
	return k;
}

/* ---- class and id words --------------------------------------------- */

/*
 * Words that mark chrome inside a class name, glued or not ("sharebar",
 * "site-footer", "commentlist"). Only classes are searched this way: ids are
 * often made from heading text ("iterating-over-pages" must not read as
 * "rating"), so ids are matched by whole words only.
 */
static const char *const neg_sub[] = {
	"advert", "breadcrumb", "comment", "consent", "cookie", "disqus", "footer",
	"masthead", "navbar", "navigation", "newsletter", "outbrain", "pagination",
	"sidebar", "taboola", "byline", "skiplink", "infobox", "navbox", "toolbar",
	"editsection", "sharebar", "sharing", "headerlink", "permalink", "catlinks",
	"printfooter", "reflist", "signature", "userinfo", "postprofile", "gdpr",
	"adslot", "taglist", "tagcloud", "prevnext", "authorbio",
};

/* Words that mark chrome as whole words of a class or id. */
static const char *const neg_tok[] = {
	"ad", "ads", "adsense", "advertisement", "aside", "author", "avatar", "badge",
	"banner", "bio", "breadcrumbs", "buy", "cart", "comments", "comment", "cta",
	"date", "dateline", "dialog", "edit", "feedback", "foot", "footer", "footnotes",
	"header", "helpful", "hidden", "hide", "jump", "login", "menu", "meta", "modal",
	"nav", "nocontent", "noprint", "overlay", "pager", "popular", "popup", "price",
	"print", "promo", "rating", "ratings", "recommended", "references", "related",
	"reviews", "rss", "search", "share", "side", "signup", "skip", "social",
	"sponsor", "sponsored", "stars", "stock", "subnav", "subscribe", "tags", "time",
	"timestamp", "toc", "tools", "topbar", "trending", "visually", "widget",
	"wishlist", "anchor", "anchorjs", "recently", "viewed", "upsell", "crosssell",
	"newsletter", "cookies", "consent", "sidebar", "breadcrumb", "navigation",
	"pagination", "byline", "signature", "masthead", "disqus", "toolbar",
};
/* Words that mark the content. */
static const char *const pos_tok[] = {
	"article", "body", "content", "entry", "main", "post", "story", "text",
	"prose", "markdown", "blog", "hentry", "page", "thread", "message", "answer",
	"question", "recipe", "ingredients", "instructions", "steps", "faq",
	"description", "product", "documentation", "docs", "doc",
};

static int has_word(const char *const *list, size_t n, const char *tok)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], tok))
			return 1;
	return 0;
}

/*
 * -1 boilerplate, +1 content, 0 neither, from one class (is_class) or id
 * value. Words are split at non-alphanumerics and camelCase humps.
 */
static int classify_words(const char *v, int is_class)
{
	char low[256], tok[64];
	size_t n = 0, k;
	int pos = 0;

	if (!v || !*v)
		return 0;
	for (k = 0; v[k] && n < sizeof low - 2; k++) {
		unsigned char ch = (unsigned char)v[k];
		if (k && isupper(ch) && islower((unsigned char)v[k - 1]))
			low[n++] = ' ';
		low[n++] = (char)tolower(ch);
	}
	low[n] = 0;
	if (is_class)
		for (size_t i = 0; i < sizeof neg_sub / sizeof *neg_sub; i++)
			if (strstr(low, neg_sub[i]))
				return -1;
	for (size_t i = 0; i < n;) {
		while (i < n && !isalnum((unsigned char)low[i]))
			i++;
		k = 0;
		while (i < n && isalnum((unsigned char)low[i])) {
			if (k < sizeof tok - 1)
				tok[k++] = low[i];
			i++;
		}
		tok[k] = 0;
		if (!k)
			continue;
		if (has_word(neg_tok, sizeof neg_tok / sizeof *neg_tok, tok))
			return -1;
		if (has_word(pos_tok, sizeof pos_tok / sizeof *pos_tok, tok))
			pos = 1;
	}
	return pos;
}

static int attr_is(xmlNode *n, const char *name, const char *val)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	int r = 0;

	if (v) {
		r = !strcasecmp((char *)v, val);
		xmlFree(v);
	}
	return r;
}

static int element_class(xmlNode *n)
{
	xmlChar *c = xmlGetNoNsProp(n, (const xmlChar *)"class");
	xmlChar *id = xmlGetNoNsProp(n, (const xmlChar *)"id");
	int a = classify_words((char *)c, 1), b = classify_words((char *)id, 0);

	xmlFree(c);
	xmlFree(id);
	if (a < 0 || b < 0)
		return -1;
	return a > 0 || b > 0;
}

static int is_hidden(xmlNode *n)
{
	xmlAttr *a;

	for (a = n->properties; a; a = a->next) {
		const char *name = (const char *)a->name;
		if (!strcasecmp(name, "hidden"))
			return 1;
		if (!strcasecmp(name, "aria-hidden") || !strcasecmp(name, "style")) {
			xmlChar *v = xmlNodeGetContent((xmlNode *)a);
			int h = 0;
			if (v && !strcasecmp(name, "aria-hidden"))
				h = !strcasecmp((char *)v, "true");
			else if (v) {
				char *s = (char *)v, *d;
				/* "display:none" / "visibility:hidden" with any spacing. */
				for (d = s; *s; s++)
					if (!isspace((unsigned char)*s))
						*d++ = (char)tolower((unsigned char)*s);
				*d = 0;
				h = strstr((char *)v, "display:none") ||
				    strstr((char *)v, "visibility:hidden");
			}
			xmlFree(v);
			if (h)
				return 1;
		}
	}
	return 0;
}

static int chrome_role(xmlNode *n)
{
	static const char *const roles[] = {
		"navigation", "banner", "contentinfo", "complementary", "search", "dialog",
		"alertdialog", "menu", "menubar", "toolbar", "tablist", "alert",
	};
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)"role");
	int r = 0;

	if (!v)
		return 0;
	for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
		if (!strcasecmp((char *)v, roles[i]))
			r = 1;
	xmlFree(v);
	return r;
}

/* ---- passes ---------------------------------------------------------- */

struct ctx {
	const struct ix_html_opts *o;
	xmlDoc *doc;
	xmlNode *body;
	struct nst *st;
	size_t nst;
	uint32_t total;
};

/* Gives every element its nst slot; returns the count. */
static size_t attach(xmlNode *root, struct nst *st, size_t cap)
{
	size_t k = 0;

	for (xmlNode *n = root; n; n = next_node(n, root, 0)) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (st) {
			if (k >= cap)
				break;
			memset(&st[k], 0, sizeof st[k]);
			st[k].flags = tag_flags(n);
			n->_private = &st[k];
		}
		k++;
	}
	return k;
}

/*
 * The value a paragraph-like block earns: 1 + commas + up to 3 for length,
 * when it has 25 bytes of text and is not mostly links; 0 otherwise.
 * Containers (div, section) earn only for their own direct text.
 */
static float para_value(const struct nst *s)
{
	int para = (s->flags & T_PARA) || ((s->flags & T_CONTAINER) && s->own >= 25);
	uint32_t t = (s->flags & T_CONTAINER) && !(s->flags & T_PARA) ? s->own : s->text;

	if (!para || t < 25 || (s->text && s->link * 2 >= s->text))
		return 0;
	return 1.0f + (float)s->commas + (float)(t / 100 > 3 ? 3 : t / 100);
}

/* Recursion-free post-order accumulation of text statistics. */
static void stats(xmlNode *root)
{
	/* Reset. */
	for (xmlNode *n = root; n; n = next_node(n, root, 0))
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			s->text = s->link = s->own = s->commas = 0;
			s->mass = 0;
		}
	xmlNode *n = root;
	int skip = 0;
	for (;;) {
		if (!skip && n->type == XML_ELEMENT_NODE && !NST(n)->dropped && n->children) {
			n = n->children;
			continue;
		}
		skip = 0;
		if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content &&
		    n->parent && n->parent->type == XML_ELEMENT_NODE) {
			struct nst *p = NST(n->parent);
			uint32_t c = 0, k = nonspace(n->content, &c);
			p->text += k;
			p->own += k;
			p->commas += c;
		}
		if (n->type == XML_ELEMENT_NODE && !NST(n)->dropped) {
			struct nst *s = NST(n);
			if (s->flags & T_LINK)
				s->link = s->text;
			s->mass += para_value(s);
			if (n != root && n->parent && n->parent->type == XML_ELEMENT_NODE) {
				struct nst *p = NST(n->parent);
				p->text += s->text;
				p->link += s->link;
				p->commas += s->commas;
				p->mass += s->mass;
			}
		}
		if (n == root)
			break;
		if (n->next) {
			n = n->next;
			continue;
		}
		n = n->parent;
		skip = 1;
	}
}

static int is_text_boilerplate(const xmlNode *n);

/* Inside <article> or <main>: a <header> there holds the headline. */
static int in_article(const xmlNode *n)
{
	for (n = n->parent; n && n->type == XML_ELEMENT_NODE; n = n->parent)
		if (!strcmp((const char *)n->name, "article") || !strcmp((const char *)n->name, "main"))
			return 1;
	return 0;
}

/* Marks invisible and (unless full) chrome subtrees as dropped. */
static void drop(struct ctx *c, xmlNode *root, int full)
{
	xmlNode *n = root;

	while (n) {
		int skip = 0;
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			if ((s->flags & T_DROP) || is_hidden(n)) {
				s->dropped = 1;
			} else if (!full && !(s->flags & T_KEEP) && !attr_is(n, "role", "main")) {
				int big = c->total && s->text * 10 > c->total * 6;
				s->cls = (int8_t)element_class(n);
				int chrome = (s->flags & T_CHROME) &&
					     !(!strcmp((const char *)n->name, "header") && in_article(n));
				if (!big && (chrome || chrome_role(n) || s->cls < 0))
					s->dropped = 1;
				else if (!big && (s->flags & (T_BLOCK)) && s->text < 600 &&
					 is_text_boilerplate(n))
					s->dropped = 1;
			}
			skip = s->dropped;
		} else if (n->type == XML_COMMENT_NODE || n->type == XML_PI_NODE) {
			skip = 1;
		}
		n = next_node(n, root, skip);
	}
}

/* Lowercased plain text of a subtree (dropped parts excluded), at most max bytes. */
static void plain_text(xmlNode *root, char *out, size_t max)
{
	size_t k = 0;
	int space = 0;

	for (xmlNode *n = root; n && k + 1 < max;) {
		int skip = n->type == XML_ELEMENT_NODE && NST(n) && NST(n)->dropped;
		if (!skip && n->type == XML_TEXT_NODE && n->content) {
			for (const xmlChar *p = n->content; *p && k + 1 < max; p++) {
				if (isspace(*p)) {
					space = k > 0;
					continue;
				}
				if (space && k + 2 < max)
					out[k++] = ' ';
				space = 0;
				out[k++] = (char)tolower(*p);
			}
			space = k > 0;
		}
		n = next_node(n, root, skip);
	}
	out[k] = 0;
}

/* Short blocks whose words say what they are: consent notices, share bars. */
static int is_text_boilerplate(const xmlNode *n)
{
	char t[640];

	plain_text((xmlNode *)n, t, sizeof t);
	if (strstr(t, "cookie") && (strstr(t, "accept") || strstr(t, "consent") ||
				    strstr(t, "privacy") || strstr(t, "einverstanden")))
		return 1;
	if (!strncmp(t, "share this", 10) || !strncmp(t, "share on", 8) ||
	    !strncmp(t, "follow us", 9) || !strncmp(t, "all rights reserved", 19))
		return 1;
	if (strlen(t) < 200 && (strstr(t, "all rights reserved") || strstr(t, "©")))
		return 1;
	return 0;
}

static float base_score(xmlNode *n, struct nst *s)
{
	float b = 0;
	const char *name = (const char *)n->name;

	if (!strcmp(name, "article") || !strcmp(name, "main") || attr_is(n, "role", "main"))
		b += 25;
	else if (!strcmp(name, "div") || !strcmp(name, "section"))
		b += 5;
	else if (!strcmp(name, "pre") || !strcmp(name, "td") || !strcmp(name, "blockquote"))
		b += 3;
	else if (s->flags & (T_LIST | T_ITEM))
		b -= 3;
	else if (s->flags & T_HEAD)
		b -= 5;
	if (!s->cls)
		s->cls = (int8_t)element_class(n);
	b += s->cls > 0 ? 25 : s->cls < 0 ? -25 : 0;
	return b;
}

static void add_score(xmlNode *n, float v)
{
	struct nst *s;

	if (!n || n->type != XML_ELEMENT_NODE)
		return;
	s = NST(n);
	if (!s->scored) {
		s->scored = 1;
		s->score = base_score(n, s);
	}
	s->score += v;
}

static float link_density(const struct nst *s)
{
	return s->text ? (float)s->link / (float)s->text : 0;
}

/* Scores paragraph-like blocks into their ancestors; returns the best node. */
static xmlNode *score(struct ctx *c, xmlNode *root)
{
	xmlNode *best = NULL;
	float best_score = -1e9f;

	for (xmlNode *n = root; n;) {
		int skip = 0;
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			if (s->dropped) {
				skip = 1;
			} else {
				float v = para_value(s);
				if (v > 0) {
					xmlNode *p = n->parent;
					if ((s->flags & T_CONTAINER) && !(s->flags & T_PARA))
						p = n;
					float div = 1;
					for (int lvl = 0; lvl < 3 && p && p->type == XML_ELEMENT_NODE;
					     lvl++, p = p->parent) {
						add_score(p, v / div);
						div *= 2;
					}
				}
				/* Do not descend into items already counted as paragraphs. */
				skip = (s->flags & T_PRE) != 0;
			}
		}
		n = next_node(n, root, skip);
	}
	for (xmlNode *n = root; n;) {
		int skip = 0;
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			skip = s->dropped;
			if (!skip && s->scored && !(s->flags & (T_ITEM | T_CELL | T_PARA))) {
				float f = s->score * (1.0f - link_density(s));
				if (f > best_score) {
					best_score = f;
					best = n;
				}
			}
		}
		n = next_node(n, root, skip);
	}
	(void)c;
	return best;
}

/*
 * Widens the choice: a parent that holds several good blocks beside the
 * best one (forum posts, recipe sections) becomes the container, and
 * worthy siblings of the best node are rendered with it.
 */
static void choose(struct ctx *c, xmlNode *best)
{
	struct nst *b = NST(best);
	float top = b->score * (1.0f - link_density(b));
	float threshold = top * 0.2f > 10 ? top * 0.2f : 10;

	/* Climb while the parent carries little more than the best node. */
	while (best->parent && best->parent->type == XML_ELEMENT_NODE &&
	       !(NST(best->parent)->flags & T_KEEP && best->parent == c->body)) {
		struct nst *p = NST(best->parent);
		if (p->dropped || !p->text || (float)b->text / (float)p->text < 0.85f)
			break;
		best = best->parent;
		b = p;
	}
	b->chosen = 1;
	if (!best->parent)
		return;
	for (xmlNode *s = best->parent->children; s; s = s->next) {
		if (s == best || s->type != XML_ELEMENT_NODE)
			continue;
		struct nst *t = NST(s);
		if (t->dropped || !t->text)
			continue;
		float ld = link_density(t);
		float sc = t->scored ? t->score * (1.0f - ld) : 0;
		if (sc >= threshold || (t->mass >= b->mass * 0.25f && ld < 0.35f))
			t->chosen = 1;
		else if ((t->flags & (T_PARA | T_LIST | T_TABLE | T_HEAD)) && ld < 0.25f &&
			 t->text >= 60)
			t->chosen = 1;
		else if ((t->flags & T_HEAD) && s->next)
			t->chosen = 2; /* kept only if a chosen block follows */
	}
	/* A heading is kept when the next element sibling is chosen. */
	for (xmlNode *s = best->parent->children; s; s = s->next) {
		if (s->type != XML_ELEMENT_NODE || NST(s)->chosen != 2)
			continue;
		xmlNode *x = s->next;
		while (x && x->type != XML_ELEMENT_NODE)
			x = x->next;
		NST(s)->chosen = x && NST(x)->chosen == 1;
	}
}

/* ---- rendering -------------------------------------------------------- */

/* Drops trailing whitespace, but never what the caller had before start. */
static void trim_from(struct qn_buf *b, size_t start)
{
	while (b->len > start && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\n' ||
				  b->data[b->len - 1] == '\t' || b->data[b->len - 1] == '\r'))
		b->len--;
	if (b->data)
		b->data[b->len] = 0;
}

struct rnd {
	struct qn_buf *out;
	size_t start;   /* the caller's text ends here; never trimmed */
	int pending;    /* 1 newline, 2 blank line before the next text */
	int space;      /* a collapsed space before the next text */
	int pre;        /* inside <pre> */
	int cell;       /* inside a data-table cell: blocks become spaces */
	int lists;      /* list nesting */
	int keep_alt;
	int full;
	char prefix[32]; /* list marker written before the next text */
	int err;
};

static void put(struct rnd *r, const char *s, size_t n)
{
	if (qn_buf_add(r->out, s, n) < 0)
		r->err = 1;
}

static void flush_sep(struct rnd *r)
{
	if (r->out->len > r->start) {
		if (r->pending >= 2)
			put(r, "\n\n", 2);
		else if (r->pending == 1)
			put(r, "\n", 1);
		else if (r->space)
			put(r, " ", 1);
	}
	if (r->prefix[0]) {
		put(r, r->prefix, strlen(r->prefix));
		r->prefix[0] = 0;
	}
	r->pending = 0;
	r->space = 0;
}

static void brk(struct rnd *r, int level)
{
	if (r->cell) {
		r->space = 1;
		return;
	}
	if (level > r->pending)
		r->pending = level;
}

static void text(struct rnd *r, const xmlChar *s)
{
	const unsigned char *p = s;

	if (r->pre) {
		size_t n = strlen((const char *)p);
		if (!n)
			return;
		flush_sep(r);
		put(r, (const char *)p, n);
		return;
	}
	while (*p) {
		if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == '\f') {
			r->space = 1;
			p++;
			continue;
		}
		if (p[0] == 0xC2 && p[1] == 0xA0) { /* no-break space */
			r->space = 1;
			p += 2;
			continue;
		}
		const unsigned char *q = p;
		while (*q && *q != ' ' && *q != '\n' && *q != '\t' && *q != '\r' && *q != '\f' &&
		       !(q[0] == 0xC2 && q[1] == 0xA0))
			q++;
		flush_sep(r);
		put(r, (const char *)p, (size_t)(q - p));
		p = q;
	}
}

/* A table is data (rows of cells) unless it nests tables or long blocks. */
static int data_table(xmlNode *t)
{
	for (xmlNode *n = t->children ? t->children : NULL; n; n = next_node(n, t, 0)) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		struct nst *s = NST(n);
		if (s->flags & T_TABLE)
			return 0;
		if ((s->flags & T_CELL) && s->text > 400)
			return 0;
	}
	return 1;
}

static void enter(struct rnd *r, xmlNode *n, int *descend)
{
	struct nst *s = NST(n);
	unsigned f = s->flags;

	if (f & T_BR) {
		if (r->cell)
			r->space = 1;
		else if (r->pre)
			put(r, "\n", 1);
		else if (r->out->len > r->start)
			r->pending = r->pending < 1 ? 1 : 2;
		return;
	}
	if (f & T_IMG) {
		if (r->keep_alt) {
			xmlChar *alt = xmlGetNoNsProp(n, (const xmlChar *)"alt");
			if (alt && *alt) {
				r->space = 1;
				text(r, (const xmlChar *)"[image:");
				r->space = 1;
				text(r, alt);
				text(r, (const xmlChar *)"]");
			}
			xmlFree(alt);
		}
		return;
	}
	if (f & T_PRE) {
		brk(r, 2);
		r->pre++;
		/* The first newline right after <pre> is not content (HTML spec). */
		if (n->children && n->children->type == XML_TEXT_NODE && n->children->content &&
		    n->children->content[0] == '\n')
			memmove(n->children->content, n->children->content + 1,
				strlen((char *)n->children->content));
		return;
	}
	if ((f & T_TABLE) && !r->cell) {
		s->score = data_table(n) ? 1 : 0; /* reuse: 1 = data table */
		brk(r, 2);
		return;
	}
	if ((f & T_ROW) && !r->cell) {
		brk(r, 1);
		s->commas = 0; /* reuse: cells seen in this row */
		return;
	}
	if ((f & T_CELL) && n->parent && NST(n->parent)->flags & T_ROW) {
		xmlNode *t = n->parent;
		while (t && !(NST(t)->flags & T_TABLE))
			t = t->parent;
		if (t && NST(t)->score > 0) {
			if (NST(n->parent)->commas++ > 0) {
				r->space = 0;
				flush_sep(r);
				put(r, " |", 2);
				r->space = 1;
			}
			r->cell++;
			return;
		}
	}
	if (f & T_LIST) {
		brk(r, r->lists ? 1 : 2);
		r->lists++;
		s->commas = 0; /* reuse: item counter */
		return;
	}
	if (f & T_ITEM) {
		brk(r, 1);
		if (!r->cell && n->parent && n->parent->type == XML_ELEMENT_NODE) {
			int depth = r->lists > 0 ? r->lists - 1 : 0;
			int ordered = !strcmp((const char *)n->parent->name, "ol");
			char mark[16];
			if (!strcmp((const char *)n->name, "li")) {
				if (ordered)
					snprintf(mark, sizeof mark, "%u. ", ++NST(n->parent)->commas);
				else
					snprintf(mark, sizeof mark, "- ");
			} else {
				mark[0] = 0;
			}
			snprintf(r->prefix, sizeof r->prefix, "%*s%s", depth * 2, "", mark);
		}
		return;
	}
	if (f & (T_BLOCK | T_HEAD))
		brk(r, 2);
	(void)descend;
}

static void leave(struct rnd *r, xmlNode *n)
{
	struct nst *s = NST(n);
	unsigned f = s->flags;

	if (f & T_PRE) {
		r->pre--;
		/* Trailing newlines of the block belong to the separator. */
		trim_from(r->out, r->start);
		brk(r, 2);
		return;
	}
	if ((f & T_CELL) && r->cell && n->parent && NST(n->parent)->flags & T_ROW) {
		xmlNode *t = n->parent;
		while (t && !(NST(t)->flags & T_TABLE))
			t = t->parent;
		if (t && NST(t)->score > 0) {
			r->cell--;
			return;
		}
	}
	if (f & T_LIST) {
		r->lists--;
		brk(r, r->lists ? 1 : 2);
		return;
	}
	if (f & T_ITEM) {
		r->prefix[0] = 0;
		brk(r, 1);
		return;
	}
	if (f & (T_BLOCK | T_HEAD))
		brk(r, (f & T_ROW) ? 1 : 2);
}

/* Inside the chosen content: a block that is mostly links is navigation. */
static int prune(const struct rnd *r, xmlNode *n)
{
	struct nst *s = NST(n);

	if (r->full || !s->text)
		return 0;
	if (s->flags & (T_LIST | T_CONTAINER | T_TABLE)) {
		float ld = link_density(s);
		return ld > 0.5f && !(s->flags & T_KEEP);
	}
	if (s->flags & T_PARA)
		return link_density(s) > 0.8f && s->text < 200;
	return 0;
}

static void render(struct rnd *r, xmlNode *root)
{
	xmlNode *n = root;

	while (n) {
		int skip = 0;
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			skip = s->dropped || (n != root && prune(r, n));
			if (!skip) {
				enter(r, n, &skip);
				if (!n->children)
					leave(r, n);
			}
		} else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
			if (n->content)
				text(r, n->content);
		}
		/* Descend, or move on closing the elements we finish. */
		if (!skip && n->type == XML_ELEMENT_NODE && n->children) {
			n = n->children;
			continue;
		}
		for (;;) {
			if (n == root)
				return;
			if (n->next) {
				n = n->next;
				break;
			}
			n = n->parent;
			if (!n)
				return;
			leave(r, n);
			if (n == root)
				return;
		}
	}
}

/* ---- metadata --------------------------------------------------------- */

static void set_meta(json_t *meta, const char *key, const xmlChar *v)
{
	char buf[2048];
	size_t k = 0;
	int space = 0;

	if (!v)
		return;
	for (const xmlChar *p = v; *p && k < sizeof buf - 2; p++) {
		if (isspace(*p)) {
			space = k > 0;
			continue;
		}
		if (space)
			buf[k++] = ' ';
		space = 0;
		buf[k++] = (char)*p;
	}
	buf[k] = 0;
	/* Cutting at a byte limit may split a UTF-8 sequence: back off. */
	while (k && ((unsigned char)buf[k - 1] & 0xC0) == 0x80)
		k--;
	if (k && (unsigned char)buf[k - 1] >= 0xC0)
		k--;
	buf[k] = 0;
	if (k && !json_object_get(meta, key))
		json_object_set_new(meta, key, json_stringn(buf, k));
}

static void head_meta(xmlNode *root, json_t *meta)
{
	for (xmlNode *n = root; n; n = next_node(n, root, 0)) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		const char *name = (const char *)n->name;
		if (!strcmp(name, "html")) {
			xmlChar *l = xmlGetNoNsProp(n, (const xmlChar *)"lang");
			if (!l)
				l = xmlGetProp(n, (const xmlChar *)"lang");
			set_meta(meta, "lang", l);
			xmlFree(l);
		} else if (!strcmp(name, "title") && !json_object_get(meta, "title")) {
			xmlChar *t = xmlNodeGetContent(n);
			set_meta(meta, "title", t);
			xmlFree(t);
		} else if (!strcmp(name, "link")) {
			xmlChar *rel = xmlGetNoNsProp(n, (const xmlChar *)"rel");
			if (rel && !strcasecmp((char *)rel, "canonical")) {
				xmlChar *h = xmlGetNoNsProp(n, (const xmlChar *)"href");
				set_meta(meta, "url", h);
				xmlFree(h);
			}
			xmlFree(rel);
		} else if (!strcmp(name, "meta")) {
			xmlChar *nm = xmlGetNoNsProp(n, (const xmlChar *)"name");
			xmlChar *pr = xmlGetNoNsProp(n, (const xmlChar *)"property");
			xmlChar *ct = xmlGetNoNsProp(n, (const xmlChar *)"content");
			if (ct && nm && !strcasecmp((char *)nm, "description"))
				set_meta(meta, "description", ct);
			else if (ct && pr && !strcasecmp((char *)pr, "og:description"))
				set_meta(meta, "description", ct);
			else if (ct && pr && !strcasecmp((char *)pr, "og:url"))
				set_meta(meta, "url", ct);
			else if (ct && pr && !strcasecmp((char *)pr, "og:title"))
				set_meta(meta, "og_title", ct);
			else if (ct && nm && !strcasecmp((char *)nm, "author"))
				set_meta(meta, "author", ct);
			xmlFree(nm);
			xmlFree(pr);
			xmlFree(ct);
		}
	}
}

/* ---- the main title ---------------------------------------------------- */

/* Share of the words of h found in the page title (0..1). */
static float title_overlap(const char *h, const char *title)
{
	char w[128];
	int words = 0, hits = 0;

	for (const char *p = h; *p;) {
		size_t k = 0;
		while (*p && !isalnum((unsigned char)*p) && !((unsigned char)*p & 0x80))
			p++;
		while (*p && (isalnum((unsigned char)*p) || ((unsigned char)*p & 0x80))) {
			if (k < sizeof w - 1)
				w[k++] = *p;
			p++;
		}
		w[k] = 0;
		if (!k)
			continue;
		words++;
		if (strstr(title, w))
			hits++;
	}
	return words ? (float)hits / (float)words : 0;
}

/* The page's own headline: the h1 (or h2) that best matches <title>. */
static xmlNode *find_headline(xmlNode *root, const char *title)
{
	xmlNode *best = NULL;
	float best_ov = 0;
	int h1s = 0;
	xmlNode *only = NULL;
	char h[512];

	for (xmlNode *n = root; n;) {
		int skip = 0;
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			const char *name = (const char *)n->name;
			skip = (s->flags & T_DROP) || !strcmp(name, "nav") || !strcmp(name, "footer") ||
			       !strcmp(name, "aside");
			if (!skip && !strcmp(name, "h1")) {
				h1s++;
				only = n;
			}
			if (!skip && (!strcmp(name, "h1") || !strcmp(name, "h2")) && title) {
				struct nst saved = *s;
				int was = s->dropped;
				s->dropped = 0;
				plain_text(n, h, sizeof h);
				*s = saved;
				s->dropped = (uint8_t)was;
				float ov = title_overlap(h, title);
				if (!strcmp(name, "h1"))
					ov += 0.05f;
				if (strlen(h) >= 8 && ov > best_ov) {
					best_ov = ov;
					best = n;
				}
			}
		}
		n = next_node(n, root, skip);
	}
	if (best && best_ov >= 0.6f)
		return best;
	return h1s == 1 ? only : NULL;
}

/* ---- entry points ------------------------------------------------------ */

static int render_content(struct ctx *c, struct qn_buf *text, json_t *meta)
{
	struct rnd r = {.out = text, .start = text->len, .keep_alt = c->o->keep_alt,
			.full = c->o->full};
	xmlNode *root = xmlDocGetRootElement(c->doc);
	size_t start = text->len;

	if (c->o->full) {
		drop(c, root, 1);
		render(&r, c->body ? c->body : root);
		trim_from(text, start);
		return r.err ? -1 : 0;
	}
	drop(c, root, 0);
	stats(root);
	xmlNode *best = score(c, root);
	if (!best)
		best = c->body ? c->body : root;
	choose(c, best);

	/* The headline, when it sits outside the chosen content. */
	const char *title = json_string_value(json_object_get(meta, "title"));
	char low[1024] = "";
	if (title) {
		size_t i;
		for (i = 0; title[i] && i < sizeof low - 1; i++)
			low[i] = (char)tolower((unsigned char)title[i]);
		low[i] = 0;
	}
	xmlNode *h = find_headline(root, title ? low : NULL);
	/* Rendered already when a chosen ancestor comes before any dropped one. */
	int h_inside = 0;
	for (xmlNode *a = h; a && a->type == XML_ELEMENT_NODE; a = a->parent) {
		if (NST(a)->dropped && a != h)
			break;
		if (NST(a)->chosen == 1) {
			h_inside = !NST(h)->dropped;
			break;
		}
	}
	if (h && !h_inside) {
		int d = NST(h)->dropped;
		NST(h)->dropped = 0;
		render(&r, h);
		NST(h)->dropped = (uint8_t)d;
		brk(&r, 2);
	}

	/* Chosen nodes in document order. */
	for (xmlNode *n = root; n;) {
		int skip = 0;
		if (n->type == XML_ELEMENT_NODE) {
			struct nst *s = NST(n);
			if (s->dropped)
				skip = 1;
			else if (s->chosen == 1) {
				render(&r, n);
				brk(&r, 2);
				skip = 1;
			}
		}
		n = next_node(n, root, skip);
	}
	trim_from(text, start);
	return r.err ? -1 : 0;
}

int ix_html_extract(const char *utf8, size_t len, const struct ix_html_opts *o,
		    struct qn_buf *text, json_t *meta, struct qn_err *e)
{
	struct ctx c = {.o = o};
	xmlNode *root;
	int rc;

	if (len > INT32_MAX)
		return qn_errf(e, "document too large for the HTML parser");
	c.doc = htmlReadMemory(utf8, (int)len, NULL, "UTF-8",
			       HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
				       HTML_PARSE_NONET | HTML_PARSE_COMPACT);
	if (!c.doc)
		return qn_errf(e, "not parseable as HTML");
	root = xmlDocGetRootElement(c.doc);
	if (!root) {
		xmlFreeDoc(c.doc);
		return 0;
	}
	c.nst = attach(root, NULL, 0);
	c.st = malloc((c.nst ? c.nst : 1) * sizeof *c.st);
	if (!c.st) {
		xmlFreeDoc(c.doc);
		return qn_errf(e, "out of memory");
	}
	attach(root, c.st, c.nst);
	for (xmlNode *n = root; n; n = next_node(n, root, 0))
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, "body")) {
			c.body = n;
			break;
		}
	head_meta(root, meta);
	stats(root);
	c.total = c.body ? NST(c.body)->text : NST(root)->text;
	rc = render_content(&c, text, meta);
	/* _private pointed into c.st; clear before the tree is freed. */
	for (xmlNode *n = root; n; n = next_node(n, root, 0))
		n->_private = NULL;
	free(c.st);
	xmlFreeDoc(c.doc);
	if (rc < 0)
		return qn_errf(e, "extracted text larger than %zu bytes", text->max);
	return 0;
}

/* ---- charset prescan ---------------------------------------------------- */

static const char *find_ci(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);

	for (; p + n <= end; p++)
		if (!strncasecmp(p, w, n))
			return p;
	return NULL;
}

const char *ix_html_declared_charset(const char *p, size_t n, char out[64])
{
	const char *end = p + (n < 4096 ? n : 4096);
	const char *m = p;

	while ((m = find_ci(m, end, "<meta")) != NULL) {
		const char *close = memchr(m, '>', (size_t)(end - m));
		if (!close)
			break;
		const char *cs = find_ci(m, close, "charset");
		if (cs) {
			cs += 7;
			while (cs < close && (*cs == ' ' || *cs == '='))
				cs++;
			while (cs < close && (*cs == '"' || *cs == '\''))
				cs++;
			size_t k = 0;
			while (cs < close && k < 63 &&
			       (isalnum((unsigned char)*cs) || *cs == '-' || *cs == '_' ||
				*cs == ':' || *cs == '.'))
				out[k++] = *cs++;
			out[k] = 0;
			if (k)
				return out;
		}
		m = close;
	}
	return NULL;
}
