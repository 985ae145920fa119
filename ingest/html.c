/*
 * html.c - main-content extraction from HTML; see html.h for the approach.
 *
 * libxml2's HTML parser (its tokenizer and error recovery) drives SAX
 * callbacks that build a compact tree in an arena: no libxml2 DOM, no
 * per-node malloc, and the first statistics (text and link-text length of
 * every subtree, class words, hidden flags, head metadata) are computed
 * while parsing. Then, all iteratively (hostile nesting depth cannot
 * overflow the stack):
 *   1. drop: mark chrome and hidden subtrees, then recount the stats;
 *   2. score: paragraph-like blocks give points to their ancestors;
 *   3. render: the best container (and worthy siblings) to text.
 */
#include "html.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/dict.h>

#include "buf.h"
#include "err.h"
#include "hash.h"

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
	T_CONTROL = 1 << 16, /* button: a short label is chrome, a long one (an
				accordion's question) is content */
	T_VISUAL = 1 << 17,  /* a replaced element (input, video, ...): when dropped it
				still parts the words on either side */
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
	{"audio", T_DROP | T_VISUAL},
	{"blockquote", T_BLOCK | T_PARA},
	{"body", T_BLOCK | T_KEEP | T_CONTAINER},
	{"br", T_BR},
	{"button", T_CONTROL | T_VISUAL},
	{"canvas", T_DROP | T_VISUAL},
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
	{"embed", T_DROP | T_VISUAL},
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
	{"iframe", T_DROP | T_VISUAL},
	{"img", T_IMG},
	{"input", T_DROP | T_VISUAL},
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
	{"object", T_DROP | T_VISUAL},
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
	{"select", T_DROP | T_VISUAL},
	{"source", T_DROP},
	{"style", T_DROP},
	{"summary", T_BLOCK},
	{"svg", T_DROP | T_VISUAL},
	{"table", T_BLOCK | T_TABLE},
	{"tbody", T_BLOCK},
	{"td", T_BLOCK | T_CELL | T_PARA},
	{"template", T_DROP},
	{"textarea", T_DROP | T_VISUAL},
	{"tfoot", T_BLOCK},
	{"th", T_BLOCK | T_CELL},
	{"thead", T_BLOCK},
	{"title", T_DROP},
	{"tr", T_BLOCK | T_ROW},
	{"track", T_DROP},
	{"ul", T_BLOCK | T_LIST},
	{"video", T_DROP | T_VISUAL},
};

static int tag_cmp(const void *k, const void *t)
{
	return strcmp(k, ((const struct tag *)t)->name);
}

static unsigned tag_flags(const char *name)
{
	const struct tag *t = bsearch(name, tags, sizeof tags / sizeof *tags, sizeof *tags, tag_cmp);

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
	uint8_t role_main, role_chrome, hidden;
	uint8_t trig;    /* the text holds a word is_text_boilerplate looks for */
};

enum { HN_ELEM = 1, HN_TEXT = 3 };

/* A node of the compact tree; text nodes carry content, elements st. */
typedef struct hnode hnode;
struct hnode {
	uint8_t type;
	const char *name;  /* element name, owned by the parser's dictionary */
	hnode *parent, *children, *last, *next;
	char *content;     /* text: NUL-terminated, in the arena */
	const char *alt;   /* img alt text, when --alt */
	struct nst st;
};

#define NST(n) (&(n)->st)

/* Next node in document order, not entering n's children when skip is set. */
static hnode *next_node(hnode *n, const hnode *root, int skip)
{
	if (!skip && n->children && n->type == HN_ELEM)
		return n->children;
	while (n && n != root) {
		if (n->next)
			return n->next;
		n = n->parent;
	}
	return NULL;
}

/* 1 for the ASCII whitespace HTML collapses, 2 for ',', 0 otherwise. */
static const unsigned char ws[256] = {
	[' '] = 1, ['\n'] = 1, ['\t'] = 1, ['\r'] = 1, ['\f'] = 1, [','] = 2,
};

static uint32_t nonspace(const char *str, uint32_t *commas)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t k = 0, c = 0;

	for (; *s; s++) {
		unsigned char w = ws[*s];
		k += w != 1;
		c += w == 2;
	}
	*commas += c;
	return k;
}

/*
 * Whether text may hold what is_text_boilerplate looks for: "cookie",
 * "share", "follow", "rights", "home" or "©". Runs on every text node, so the
 * first two letters are compared before anything is called.
 */
static int has_trigger(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s | 0x20, d = (unsigned char)s[1] | 0x20;
		if ((c == 'c' && d == 'o' && !strncasecmp(s, "cookie", 6)) ||
		    (c == 's' && d == 'h' && !strncasecmp(s, "share", 5)) ||
		    (c == 'f' && d == 'o' && !strncasecmp(s, "follow", 6)) ||
		    (c == 'r' && d == 'i' && !strncasecmp(s, "rights", 6)) ||
		    (c == 'h' && d == 'o' && !strncasecmp(s, "home", 4)) ||
		    ((unsigned char)*s == 0xC2 && (unsigned char)s[1] == 0xA9))
			return 1;
	}
	return 0;
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
	"usp", "afterpay", "klarna", "paypal", "checkout",
	/* the same chrome in German, French, Spanish */
	"kommentare", "werbung", "anzeige", "teilen", "avis", "commentaires", "publicite",
	"partage", "etoiles", "comentarios", "publicidad", "compartir",
};
/* Words that mark the content. */
static const char *const pos_tok[] = {
	"article", "body", "content", "entry", "main", "post", "story", "text",
	"prose", "markdown", "blog", "hentry", "page", "thread", "message", "answer",
	"question", "recipe", "ingredients", "instructions", "steps", "faq",
	"description", "product", "documentation", "docs", "doc",
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The word lists, sorted once for bsearch. */
static const char *neg_sorted[sizeof neg_tok / sizeof *neg_tok];
static const char *pos_sorted[sizeof pos_tok / sizeof *pos_tok];
static pthread_once_t sorted_once = PTHREAD_ONCE_INIT;

/* neg_sub indexed by first letter: 1-based indexes, 0-terminated lists. */
static unsigned char sub_lists[128][8];
static const unsigned char *sub_by_letter[256];
static size_t sub_len[sizeof neg_sub / sizeof *neg_sub];

static void sort_words(void)
{
	for (size_t i = 0; i < sizeof neg_sub / sizeof *neg_sub; i++) {
		unsigned char c = (unsigned char)neg_sub[i][0];
		size_t k = 0;
		while (k < 7 && sub_lists[c & 127][k])
			k++;
		sub_lists[c & 127][k] = (unsigned char)(i + 1);
		sub_by_letter[c] = sub_lists[c & 127];
		sub_len[i] = strlen(neg_sub[i]);
	}
	memcpy(neg_sorted, neg_tok, sizeof neg_tok);
	memcpy(pos_sorted, pos_tok, sizeof pos_tok);
	qsort(neg_sorted, sizeof neg_sorted / sizeof *neg_sorted, sizeof *neg_sorted, cmp_str);
	qsort(pos_sorted, sizeof pos_sorted / sizeof *pos_sorted, sizeof *pos_sorted, cmp_str);
}

static int has_word(const char **list, size_t n, const char *tok)
{
	return bsearch(&tok, list, n, sizeof *list, cmp_str) != NULL;
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
	if (!is_class) {
		/* Glued chrome words no heading-made id contains. */
		static const char *const id_sub[] = {"cookie", "consent", "gdpr", "sidebar",
						     "navbar", "footer", "breadcrumb", "disqus",
						     "taboola", "outbrain", "newsletter"};
		for (size_t i = 0; i < sizeof id_sub / sizeof *id_sub; i++)
			if (strstr(low, id_sub[i]))
				return -1;
	}
	if (is_class)
		for (size_t i = 0; i < n; i++) {
			const unsigned char *list = sub_by_letter[(unsigned char)low[i]];
			for (; list && *list; list++)
				if (!strncmp(low + i, neg_sub[*list - 1], sub_len[*list - 1]))
					return -1;
		}
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
		if (has_word(neg_sorted, sizeof neg_sorted / sizeof *neg_sorted, tok))
			return -1;
		if (has_word(pos_sorted, sizeof pos_sorted / sizeof *pos_sorted, tok))
			pos = 1;
	}
	return pos;
}

/* An attribute's value from SAX attribute pairs; NULL when absent. */
static const char *att(const char **atts, const char *name)
{
	for (; atts && atts[0]; atts += 2)
		if (!strcasecmp(atts[0], name))
			return atts[1] ? atts[1] : "";
	return NULL;
}

/*
 * Pages repeat their class names ("nav-item" fifty times) and the pages of
 * one site share templates, so each thread remembers the verdicts on the
 * class and id values it has seen: an open-addressing table keyed by the
 * value's xxh3 hash (0 marks an empty slot), emptied when it fills. The
 * verdict is a pure function of the value, so output never depends on it.
 */
#define MEMO_SLOTS 4096

struct class_memo {
	uint64_t key[MEMO_SLOTS];
	int8_t val[MEMO_SLOTS];
	size_t used;
};

static __thread struct class_memo memo;

static int classify_memo(const char *v, int is_class)
{
	if (!v || !*v)
		return 0;
	uint64_t h = qn_xxh3_64(v, strlen(v), (uint64_t)is_class) | 1;
	for (size_t i = 0, k = h & (MEMO_SLOTS - 1); i < 16; i++, k = (k + 1) & (MEMO_SLOTS - 1)) {
		if (memo.key[k] == h)
			return memo.val[k];
		if (!memo.key[k]) {
			if (++memo.used > MEMO_SLOTS / 2) {
				memset(&memo, 0, sizeof memo);
				memo.used = 1;
			}
			memo.key[k] = h;
			return memo.val[k] = (int8_t)classify_words(v, is_class);
		}
	}
	return classify_words(v, is_class);
}


/* "display: none" or "visibility: hidden" in a style, with any spacing. */
static int style_hides(const char *v)
{
	char low[256];
	size_t k = 0;

	for (; *v && k < sizeof low - 1; v++)
		if (!isspace((unsigned char)*v))
			low[k++] = (char)tolower((unsigned char)*v);
	low[k] = 0;
	return strstr(low, "display:none") || strstr(low, "visibility:hidden");
}


static int chrome_role(const char *role)
{
	static const char *const roles[] = {
		"navigation", "banner", "contentinfo", "complementary", "search", "dialog",
		"alertdialog", "menu", "menubar", "toolbar", "tablist", "alert",
	};

	for (size_t i = 0; role && i < sizeof roles / sizeof *roles; i++)
		if (!strcasecmp(role, roles[i]))
			return 1;
	return 0;
}

/* ---- passes ---------------------------------------------------------- */

struct ctx {
	const struct ix_html_opts *o;
	hnode *root;
	hnode *body;
	uint32_t total;
};

/* ---- the SAX tree builder ------------------------------------------------ */

struct chunk {
	struct chunk *next;
	size_t size;
	char data[];
};

/* A bump allocator: the tree and its text are freed in one go. */
struct arena {
	struct chunk *head;
	char *p, *end;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if ((size_t)(a->end - a->p) < n) {
		size_t size = n > (1 << 16) ? n : (1 << 16);
		struct chunk *c = malloc(sizeof *c + size);
		if (!c)
			return NULL;
		c->next = a->head;
		c->size = size;
		a->head = c;
		a->p = c->data;
		a->end = c->data + size;
	}
	void *r = a->p;
	a->p += n;
	return r;
}

static void arena_free(struct arena *a)
{
	for (struct chunk *c = a->head, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	a->head = NULL;
}

#define MAX_NODES (4u << 20)

struct builder {
	const struct ix_html_opts *o;
	struct arena ar;
	hnode *root, *cur;
	struct qn_buf text;   /* character data not yet made a node */
	struct qn_buf title;  /* <title> text */
	int in_title;
	json_t *meta;
	xmlDictPtr dict;      /* owns the element names */
	const char *tag_name[128]; /* tag_flags memo, by name pointer */
	unsigned tag_flag[128];
	size_t nodes;
	int full;             /* out of memory or too many nodes */
};

static void set_meta(json_t *meta, const char *key, const char *v);

/* Turns pending character data into a text node of the current element. */
static void flush_text(struct builder *b)
{
	hnode *t;

	if (!b->text.len || b->full)
		goto out;
	t = arena_alloc(&b->ar, sizeof *t);
	char *c = arena_alloc(&b->ar, b->text.len + 1);
	if (!t || !c) {
		b->full = 1;
		goto out;
	}
	memset(t, 0, sizeof *t);
	memcpy(c, b->text.data, b->text.len + 1);
	t->type = HN_TEXT;
	t->content = c;
	t->parent = b->cur;
	if (b->cur->last)
		b->cur->last->next = t;
	else
		b->cur->children = t;
	b->cur->last = t;
	uint32_t commas = 0, k = nonspace(c, &commas);
	/* Only blocks under 600 bytes of text are checked for these words. */
	if (!b->cur->st.trig && k < 600)
		b->cur->st.trig = (uint8_t)has_trigger(c);
	b->cur->st.text += k;
	b->cur->st.own += k;
	b->cur->st.commas += commas;
out:
	qn_buf_reset(&b->text);
}

static void head_meta(struct builder *b, const char *name, const char **atts)
{
	const char *v;

	if (!strcmp(name, "html")) {
		if ((v = att(atts, "lang")) || (v = att(atts, "xml:lang")))
			set_meta(b->meta, "lang", v);
	} else if (!strcmp(name, "link")) {
		if ((v = att(atts, "rel")) && !strcasecmp(v, "canonical"))
			set_meta(b->meta, "url", att(atts, "href"));
	} else if (!strcmp(name, "meta")) {
		const char *nm = att(atts, "name"), *pr = att(atts, "property");
		const char *ct = att(atts, "content");
		if (!ct)
			return;
		if (nm && !strcasecmp(nm, "description"))
			set_meta(b->meta, "description", ct);
		else if (pr && !strcasecmp(pr, "og:description"))
			set_meta(b->meta, "description", ct);
		else if (pr && !strcasecmp(pr, "og:url"))
			set_meta(b->meta, "url", ct);
		else if (pr && !strcasecmp(pr, "og:title"))
			set_meta(b->meta, "og_title", ct);
		else if (nm && !strcasecmp(nm, "author"))
			set_meta(b->meta, "author", ct);
	}
}

static void sax_start(void *ctx, const xmlChar *xname, const xmlChar **xatts)
{
	struct builder *b = ((htmlParserCtxtPtr)ctx)->_private;
	const char *name = (const char *)xname;
	const char **atts = (const char **)xatts;
	hnode *n;

	flush_text(b);
	if (b->full || ++b->nodes > MAX_NODES || !(n = arena_alloc(&b->ar, sizeof *n))) {
		b->full = 1;
		return;
	}
	memset(n, 0, sizeof *n);
	n->type = HN_ELEM;
	n->name = name;
	/* Element names are interned by the parser: memoize flags by pointer. */
	size_t slot = ((uintptr_t)name >> 4) & 127;
	if (b->tag_name[slot] != name) {
		b->tag_name[slot] = name;
		b->tag_flag[slot] = tag_flags(name);
	}
	n->st.flags = b->tag_flag[slot];
	if (atts) {
		/* One pass over the attributes picks out the few that matter. */
		const char *cls = NULL, *id = NULL, *role = NULL, *alt = NULL;
		int hidden = 0;
		for (const char **a = atts; a[0]; a += 2) {
			const char *k = a[0], *v = a[1] ? a[1] : "";
			switch (k[0]) {
			case 'c': if (!strcmp(k, "class")) cls = v; break;
			case 'i': if (!strcmp(k, "id")) id = v; break;
			case 'r': if (!strcmp(k, "role")) role = v; break;
			case 'h': if (!strcmp(k, "hidden")) hidden = 1; break;
			case 'a':
				if (!strcmp(k, "aria-hidden"))
					hidden |= !strcasecmp(v, "true");
				else if (!strcmp(k, "alt"))
					alt = v;
				break;
			case 's': if (!strcmp(k, "style")) hidden |= style_hides(v); break;
			}
		}
		int c1 = classify_memo(cls, 1), c2 = classify_memo(id, 0);
		n->st.cls = (int8_t)(c1 < 0 || c2 < 0 ? -1 : c1 > 0 || c2 > 0);
		n->st.role_main = role && !strcasecmp(role, "main");
		n->st.role_chrome = (uint8_t)chrome_role(role);
		n->st.hidden = (uint8_t)hidden;
		if (name[0] == 'h' || name[0] == 'l' || name[0] == 'm')
			head_meta(b, name, atts);
		if (b->o->keep_alt && (n->st.flags & T_IMG)) {
			size_t k = alt ? strlen(alt) : 0;
			char *c = k ? arena_alloc(&b->ar, k + 1) : NULL;
			if (c)
				n->alt = memcpy(c, alt, k + 1);
		}
	}
	if (name[0] == 't' && !strcmp(name, "title"))
		b->in_title = 1;
	n->parent = b->cur;
	if (b->cur->last)
		b->cur->last->next = n;
	else
		b->cur->children = n;
	b->cur->last = n;
	b->cur = n;
}

/* Closes the current element: its totals flow into its parent. */
static void close_cur(struct builder *b)
{
	hnode *n = b->cur;
	struct nst *s = &n->st, *p;

	if (n == b->root)
		return;
	if (s->flags & T_LINK)
		s->link = s->text;
	p = &n->parent->st;
	p->text += s->text;
	p->link += s->link;
	p->commas += s->commas;
	p->trig |= s->trig;
	b->cur = n->parent;
}

static void sax_end(void *ctx, const xmlChar *name)
{
	struct builder *b = ((htmlParserCtxtPtr)ctx)->_private;

	flush_text(b);
	if (b->in_title && !strcmp((const char *)name, "title")) {
		b->in_title = 0;
		if (b->title.len)
			set_meta(b->meta, "title", b->title.data);
	}
	if (b->cur != b->root && !b->full)
		close_cur(b);
}

static void sax_chars(void *ctx, const xmlChar *ch, int len)
{
	struct builder *b = ((htmlParserCtxtPtr)ctx)->_private;

	if (b->in_title && b->title.len < 4096)
		qn_buf_add(&b->title, ch, (size_t)len);
	/* Script and style bodies never show; keep them out of the tree. */
	if (b->full || (b->cur->st.flags & T_DROP) || len <= 0)
		return;
	if (qn_buf_add(&b->text, ch, (size_t)len) < 0)
		b->full = 1;
}

/* Parses utf8 into b's tree; 0, or -1 when the parser could not start. */
static int build(struct builder *b, const char *utf8, size_t len)
{
	htmlParserCtxtPtr ctxt = htmlNewParserCtxt();

	if (!ctxt)
		return -1;
	memset(ctxt->sax, 0, sizeof(htmlSAXHandler));
	ctxt->sax->startElement = sax_start;
	ctxt->sax->endElement = sax_end;
	ctxt->sax->characters = sax_chars;
	ctxt->sax->ignorableWhitespace = sax_chars;
	ctxt->sax->cdataBlock = sax_chars;
	ctxt->_private = b;
	b->root = arena_alloc(&b->ar, sizeof *b->root);
	if (!b->root) {
		htmlFreeParserCtxt(ctxt);
		return -1;
	}
	memset(b->root, 0, sizeof *b->root);
	b->root->type = HN_ELEM;
	b->root->name = "#document";
	b->root->st.flags = T_BLOCK | T_KEEP;
	b->cur = b->root;
	htmlDocPtr doc = htmlCtxtReadMemory(ctxt, utf8, (int)len, NULL, "UTF-8",
					    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
						    HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
						    HTML_PARSE_NODEFDTD);
	if (doc)
		xmlFreeDoc(doc);
	flush_text(b);
	while (b->cur != b->root && !b->full)
		close_cur(b);
	/* Names live in the parser's dictionary: keep it until the tree goes. */
	b->dict = ctxt->dict;
	xmlDictReference(b->dict);
	htmlFreeParserCtxt(ctxt);
	return 0;
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
static void stats(hnode *root)
{
	/* Reset. */
	for (hnode *n = root; n; n = next_node(n, root, 0))
		if (n->type == HN_ELEM) {
			struct nst *s = NST(n);
			s->text = s->link = s->own = s->commas = 0;
			s->mass = 0;
		}
	hnode *n = root;
	int skip = 0;
	for (;;) {
		if (!skip && n->type == HN_ELEM && !NST(n)->dropped && n->children) {
			n = n->children;
			continue;
		}
		skip = 0;
		if ((n->type == HN_TEXT || n->type == HN_TEXT) && n->content &&
		    n->parent && n->parent->type == HN_ELEM) {
			struct nst *p = NST(n->parent);
			uint32_t c = 0, k = nonspace(n->content, &c);
			p->text += k;
			p->own += k;
			p->commas += c;
		}
		if (n->type == HN_ELEM && !NST(n)->dropped) {
			struct nst *s = NST(n);
			if (s->flags & T_LINK)
				s->link = s->text;
			s->mass += para_value(s);
			if (n != root && n->parent && n->parent->type == HN_ELEM) {
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

static int is_text_boilerplate(const hnode *n);

/* Inside <article> or <main>: a <header> there holds the headline. */
static int in_article(const hnode *n)
{
	int up = 64; /* a header deeper than this under an article is not its own */

	for (n = n->parent; n && n->type == HN_ELEM && up--; n = n->parent)
		if (!strcmp((const char *)n->name, "article") || !strcmp((const char *)n->name, "main"))
			return 1;
	return 0;
}

/* Marks invisible and (unless full) chrome subtrees as dropped. */
static void drop(struct ctx *c, hnode *root, int full)
{
	hnode *n = root;

	while (n) {
		int skip = 0;
		if (n->type == HN_ELEM) {
			struct nst *s = NST(n);
			if ((s->flags & T_DROP) || s->hidden ||
			    ((s->flags & T_CONTROL) && s->text < 25)) {
				s->dropped = 1;
			} else if (!full && !(s->flags & T_KEEP) && !s->role_main) {
				int big = c->total && s->text * 10 > c->total * 6;
				int chrome = (s->flags & T_CHROME) &&
					     !(!strcmp((const char *)n->name, "header") && in_article(n));
				/* Text is checked on the outermost small block only: the
				 * blocks inside it hold a part of the same words. */
				int outer = !n->parent || n->parent->type != HN_ELEM ||
					    !(NST(n->parent)->flags & T_BLOCK) ||
					    NST(n->parent)->text >= 600;
				if (!big && (chrome || s->role_chrome || s->cls < 0))
					s->dropped = 1;
				else if (!big && (s->flags & T_BLOCK) && s->text < 600 && outer &&
					 s->trig && is_text_boilerplate(n))
					s->dropped = 1;
			}
			skip = s->dropped;
		}
		n = next_node(n, root, skip);
	}
}

/*
 * Lowercased plain text of a subtree (dropped parts excluded), at most max
 * bytes. It visits at most 4096 nodes, so that callers looking at the
 * start of many nested subtrees stay linear on hostile nesting.
 */
static void plain_text(hnode *root, char *out, size_t max)
{
	size_t k = 0, budget = 4096;
	int space = 0;

	for (hnode *n = root; n && k + 1 < max && budget; budget--) {
		int skip = n->type == HN_ELEM && NST(n)->dropped;
		if (!skip && n->type == HN_TEXT && n->content) {
			for (const char *p = n->content; *p && k + 1 < max; p++) {
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
static int is_text_boilerplate(const hnode *n)
{
	char t[640];

	plain_text((hnode *)n, t, sizeof t);
	if (strstr(t, "cookie")) {
		/* Consent words in English, German, French and Spanish. */
		static const char *const consent[] = {
			"accept", "consent", "privacy", "einverstanden", "zustimm", "stimmen sie",
			"akzeptier", "datenschutz", "einwillig", "confidentialit", "consentement",
			"acept", "privacidad", "consentimiento",
		};
		for (size_t i = 0; i < sizeof consent / sizeof *consent; i++)
			if (strstr(t, consent[i]))
				return 1;
	}
	if (!strncmp(t, "share this", 10) || !strncmp(t, "share on", 8) ||
	    !strncmp(t, "follow us", 9) || !strncmp(t, "all rights reserved", 19))
		return 1;
	if (strlen(t) < 200 && (strstr(t, "all rights reserved") || strstr(t, "©")))
		return 1;
	/* A breadcrumb trail: "Home > Breads > Flatbreads", "Home / Docs". */
	if (strlen(t) < 200 && !strncmp(t, "home", 4)) {
		const char *p = t + 4;
		while (*p == ' ')
			p++;
		if (*p == '>' || *p == '/' || *p == '|' || !strncmp(p, "»", 2) ||
		    !strncmp(p, "›", 3) || !strncmp(p, "·", 2))
			return 1;
	}
	return 0;
}

static float base_score(hnode *n, struct nst *s)
{
	float b = 0;
	const char *name = (const char *)n->name;

	if (!strcmp(name, "article") || !strcmp(name, "main") || s->role_main)
		b += 25;
	else if (!strcmp(name, "div") || !strcmp(name, "section"))
		b += 5;
	else if (!strcmp(name, "pre") || !strcmp(name, "td") || !strcmp(name, "blockquote"))
		b += 3;
	else if (s->flags & (T_LIST | T_ITEM))
		b -= 3;
	else if (s->flags & T_HEAD)
		b -= 5;
	b += s->cls > 0 ? 25 : s->cls < 0 ? -25 : 0;
	return b;
}

static void add_score(hnode *n, float v)
{
	struct nst *s;

	if (!n || n->type != HN_ELEM)
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
static hnode *score(hnode *root)
{
	hnode *best = NULL;
	float best_score = -1e9f;

	for (hnode *n = root; n;) {
		int skip = 0;
		if (n->type == HN_ELEM) {
			struct nst *s = NST(n);
			if (s->dropped) {
				skip = 1;
			} else {
				float v = para_value(s);
				if (v > 0) {
					hnode *p = n->parent;
					if ((s->flags & T_CONTAINER) && !(s->flags & T_PARA))
						p = n;
					float div = 1;
					for (int lvl = 0; lvl < 3 && p && p->type == HN_ELEM;
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
	for (hnode *n = root; n;) {
		int skip = 0;
		if (n->type == HN_ELEM) {
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
	return best;
}

/*
 * Widens the choice: a parent that holds several good blocks beside the
 * best one (forum posts, recipe sections) becomes the container, and
 * worthy siblings of the best node are rendered with it.
 */
static void choose(struct ctx *c, hnode *best)
{
	struct nst *b = NST(best);
	float top = b->score * (1.0f - link_density(b));
	float threshold = top * 0.2f > 10 ? top * 0.2f : 10;

	/* Climb while the parent carries little more than the best node. */
	while (best->parent && best->parent->type == HN_ELEM &&
	       !(NST(best->parent)->flags & T_KEEP && best->parent == c->body)) {
		struct nst *p = NST(best->parent);
		/* Link text (menus, "reply" links) does not count as content. */
		float mine = (float)(b->text - b->link), all = (float)(p->text - p->link);
		if (p->dropped || all <= 0 || mine / all < 0.97f)
			break;
		best = best->parent;
		b = p;
	}
	b->chosen = 1;
	if (!best->parent)
		return;
	for (hnode *s = best->parent->children; s; s = s->next) {
		if (s == best || s->type != HN_ELEM)
			continue;
		struct nst *t = NST(s);
		if (t->dropped || !t->text)
			continue;
		float ld = link_density(t);
		float sc = t->scored ? t->score * (1.0f - ld) : 0;
		if (sc >= threshold || (t->mass >= b->mass * 0.25f && ld < 0.35f))
			t->chosen = 1;
		else if (((t->flags & (T_PARA | T_LIST | T_TABLE | T_HEAD)) ||
			  ((t->flags & T_CONTAINER) && t->own * 2 >= t->text)) &&
			 ld < 0.25f && t->text >= 60)
			t->chosen = 1;
		else if ((t->flags & T_HEAD) && s->next)
			t->chosen = 2; /* kept only if a chosen block follows */
	}
	/* A heading is kept when the next element sibling is chosen. */
	for (hnode *s = best->parent->children; s; s = s->next) {
		if (s->type != HN_ELEM || NST(s)->chosen != 2)
			continue;
		hnode *x = s->next;
		while (x && x->type != HN_ELEM)
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

static void text(struct rnd *r, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (r->pre) {
		size_t n = strlen((const char *)p);
		if (!n)
			return;
		flush_sep(r);
		put(r, (const char *)p, n);
		return;
	}
	while (*p) {
		if (ws[*p] == 1) {
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
		while (*q && ws[*q] != 1 && !(q[0] == 0xC2 && q[1] == 0xA0))
			q++;
		flush_sep(r);
		put(r, (const char *)p, (size_t)(q - p));
		p = q;
	}
}

/* The table a row belongs to, looking a few levels up at most. */
static hnode *row_table(hnode *row)
{
	hnode *t = row;

	for (int up = 0; t && up < 8; t = t->parent, up++)
		if (NST(t)->flags & T_TABLE)
			return t;
	return NULL;
}

/*
 * A table is data (rows of cells) unless it nests tables or long blocks.
 * Looking at 20000 elements at most keeps nested tables linear.
 */
static int data_table(hnode *t)
{
	size_t budget = 20000;

	for (hnode *n = t->children; n && budget; n = next_node(n, t, 0), budget--) {
		if (n->type != HN_ELEM)
			continue;
		struct nst *s = NST(n);
		if (s->flags & T_TABLE)
			return 0;
		if ((s->flags & T_CELL) && s->text > 400)
			return 0;
	}
	return budget > 0;
}

static void enter(struct rnd *r, hnode *n)
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
			const char *alt = n->alt;
			if (alt && *alt) {
				r->space = 1;
				text(r, "[image:");
				r->space = 1;
				text(r, alt);
				text(r, "]");
			}
		}
		return;
	}
	if (f & T_PRE) {
		brk(r, 2);
		r->pre++;
		/* The first newline right after <pre> is not content (HTML spec). */
		if (n->children && n->children->type == HN_TEXT && n->children->content &&
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
		hnode *t = row_table(n->parent);
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
		if (!r->cell && n->parent && n->parent->type == HN_ELEM) {
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
			if (depth > 8)
				depth = 8; /* deeper lists keep the same indent */
			snprintf(r->prefix, sizeof r->prefix, "%*s%s", depth * 2, "", mark);
		}
		return;
	}
	if (f & (T_BLOCK | T_HEAD))
		brk(r, 2);
}

static void leave(struct rnd *r, hnode *n)
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
		hnode *t = row_table(n->parent);
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
static int prune(const struct rnd *r, hnode *n)
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

static void render(struct rnd *r, hnode *root)
{
	hnode *n = root;

	while (n) {
		int skip = 0;
		if (n->type == HN_ELEM) {
			struct nst *s = NST(n);
			skip = s->dropped || (n != root && prune(r, n));
			if (skip && (s->flags & T_VISUAL))
				r->space = 1;
			if (!skip) {
				enter(r, n);
				if (!n->children)
					leave(r, n);
			}
		} else if (n->type == HN_TEXT || n->type == HN_TEXT) {
			if (n->content)
				text(r, n->content);
		}
		/* Descend, or move on closing the elements we finish. */
		if (!skip && n->type == HN_ELEM && n->children) {
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

static void set_meta(json_t *meta, const char *key, const char *v)
{
	char buf[2048];
	size_t k = 0;
	int space = 0;

	if (!v)
		return;
	for (const char *p = v; *p && k < sizeof buf - 2; p++) {
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

/* ---- the main title ---------------------------------------------------- */

/* Words (runs of letters and digits) in s. */
static int count_words(const char *s)
{
	int n = 0, in = 0;

	for (; *s; s++) {
		int w = isalnum((unsigned char)*s) || ((unsigned char)*s & 0x80);
		n += w && !in;
		in = w;
	}
	return n;
}

/*
 * How well heading h matches the page title, 0..1: the harmonic mean of
 * the share of h's words found in the title and the share of the title's
 * words that h covers, so a site name ("Nordlicht Community") that appears
 * in every title does not beat the headline that makes up most of it.
 */
static float title_overlap(const char *h, const char *title)
{
	char w[128];
	int words = 0, hits = 0, twords = count_words(title);

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
	if (!words || !twords || !hits)
		return 0;
	float a = (float)hits / (float)words, b = (float)hits / (float)twords;
	if (b > 1)
		b = 1;
	return 2 * a * b / (a + b);
}

/* The page's own headline: the h1 (or h2) that best matches <title>. */
static hnode *find_headline(hnode *root, const char *title)
{
	hnode *best = NULL;
	float best_ov = 0;
	int h1s = 0;
	hnode *only = NULL;
	char h[512];

	for (hnode *n = root; n;) {
		int skip = 0;
		if (n->type == HN_ELEM) {
			struct nst *s = NST(n);
			const char *name = (const char *)n->name;
			skip = (s->flags & T_DROP) ||
			       ((s->flags & T_CHROME) && (!strcmp(name, "nav") ||
							  !strcmp(name, "footer") || !strcmp(name, "aside")));
			int h1 = (s->flags & T_HEAD) && name[1] == '1';
			int h2 = (s->flags & T_HEAD) && name[1] == '2';
			if (!skip && h1) {
				h1s++;
				only = n;
			}
			if (!skip && (h1 || h2) && title) {
				skip = 1; /* headings inside headings are not headlines */
				struct nst saved = *s;
				int was = s->dropped;
				s->dropped = 0;
				plain_text(n, h, sizeof h);
				*s = saved;
				s->dropped = (uint8_t)was;
				float ov = title_overlap(h, title);
				if (h1)
					ov += 0.05f;
				if (strlen(h) >= 8 && ov > best_ov) {
					best_ov = ov;
					best = n;
				}
			}
		}
		n = next_node(n, root, skip);
	}
	if (best && best_ov >= 0.5f)
		return best;
	return h1s == 1 ? only : NULL;
}

/* ---- entry points ------------------------------------------------------ */

static int render_content(struct ctx *c, struct qn_buf *text, json_t *meta)
{
	struct rnd r = {.out = text, .start = text->len, .keep_alt = c->o->keep_alt,
			.full = c->o->full};
	hnode *root = c->root;
	size_t start = text->len;

	if (c->o->full) {
		drop(c, root, 1);
		render(&r, c->body ? c->body : root);
		trim_from(text, start);
		return r.err ? -1 : 0;
	}
	drop(c, root, 0);
	stats(root);
	hnode *best = score(root);
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
	hnode *h = find_headline(root, title ? low : NULL);
	/* Rendered already when a chosen ancestor comes before any dropped one. */
	int h_inside = 0;
	for (hnode *a = h; a && a->type == HN_ELEM; a = a->parent) {
		if (NST(a)->dropped && a != h)
			break;
		if (NST(a)->chosen == 1) {
			h_inside = !NST(h)->dropped;
			break;
		}
	}
	size_t head_at = text->len, head_len = 0;
	if (h && !h_inside) {
		int d = NST(h)->dropped;
		NST(h)->dropped = 0;
		render(&r, h);
		NST(h)->dropped = (uint8_t)d;
		brk(&r, 2);
		head_len = text->len - head_at;
	}

	/* Chosen nodes in document order. */
	for (hnode *n = root; n;) {
		int skip = 0;
		if (n->type == HN_ELEM) {
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
	/* The content may open with the same headline (a forum's first post). */
	size_t after = head_at + head_len + 2;
	if (head_len && text->len >= after + head_len &&
	    !memcmp(text->data + after, text->data + head_at, head_len) &&
	    (text->len == after + head_len || text->data[after + head_len] == '\n')) {
		memmove(text->data + after, text->data + after + head_len,
			text->len - after - head_len + 1);
		text->len -= head_len;
		while (text->len > after && text->data[after] == '\n') {
			memmove(text->data + after, text->data + after + 1, text->len - after);
			text->len--;
		}
	}
	trim_from(text, start);
	return r.err ? -1 : 0;
}

/* ---- script, style and comment bodies, cut before parsing ---------------- */

/* Case-insensitive "<name" at p followed by a space, '>' or '/'. */
static int opens(const char *p, const char *end, const char *name, size_t k)
{
	return (size_t)(end - p) > k + 1 && !strncasecmp(p + 1, name, k) &&
	       (p[k + 1] == '>' || p[k + 1] == '/' || ws[(unsigned char)p[k + 1]] == 1);
}

/* The '>' ending the tag that starts at p, skipping quoted values. */
static const char *tag_end(const char *p, const char *end)
{
	char q = 0;

	for (; p < end; p++) {
		if (q) {
			if (*p == q)
				q = 0;
		} else if (*p == '"' || *p == '\'') {
			q = *p;
		} else if (*p == '>') {
			return p;
		}
	}
	return NULL;
}

/* The case-insensitive "</name" that closes a raw-text element, or NULL. */
static const char *raw_close(const char *p, const char *end, const char *name, size_t k)
{
	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (end - p > (long)k + 1 && p[1] == '/' && !strncasecmp(p + 2, name, k))
			return p;
		p++;
	}
	return NULL;
}

/*
 * Copies the page without the bodies of <script> and <style> elements,
 * without comments, and without the attributes of start tags longer than
 * 32 KB. They never show, and libxml2 reads them a character
 * at a time, while on real pages they are often most of the bytes. Where a
 * body or comment is not closed, the rest of the page is cut, as the parser
 * would have swallowed it. Returns the new length.
 */
static size_t strip_raw(const char *in, size_t n, char *out)
{
	const char *p = in, *end = in + n;
	char *o = out;

	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt) {
			memcpy(o, p, (size_t)(end - p));
			o += end - p;
			break;
		}
		memcpy(o, p, (size_t)(lt - p));
		o += lt - p;
		p = lt;
		if (end - p >= 4 && !memcmp(p, "<!--", 4)) {
			const char *c = memmem(p + 4, (size_t)(end - p - 4), "-->", 3);
			p = c ? c + 3 : end;
			continue;
		}
		const char *name = NULL;
		size_t k = 0;
		if (opens(p, end, "script", 6))
			name = "script", k = 6;
		else if (opens(p, end, "style", 5))
			name = "style", k = 5;
		if (!name) {
			/* libxml2 checks each attribute against all earlier ones of
			 * its tag: a start tag over 32 KB loses its attributes. */
			const char *gt = end - p > 1 && isalpha((unsigned char)p[1])
						 ? memchr(p, '>', (size_t)(end - p))
						 : NULL;
			if (gt && gt - p > (1 << 15) && (gt = tag_end(p, end)) != NULL) {
				const char *q = p + 1;
				while (q < gt && isalnum((unsigned char)*q))
					q++;
				memcpy(o, p, (size_t)(q - p));
				o += q - p;
				*o++ = '>';
				p = gt + 1;
				continue;
			}
			*o++ = *p++;
			continue;
		}
		const char *gt = tag_end(p, end);
		if (!gt)
			break;
		memcpy(o, p, (size_t)(gt + 1 - p)); /* the start tag itself stays */
		o += gt + 1 - p;
		const char *close = raw_close(gt + 1, end, name, k);
		p = close ? close : end;
	}
	return (size_t)(o - out);
}

int ix_html_extract(const char *utf8, size_t len, const struct ix_html_opts *o,
		    struct qn_buf *text, json_t *meta, struct qn_err *e)
{
	struct builder *b;
	struct ctx c = {.o = o};
	int rc;

	if (len > INT32_MAX)
		return qn_errf(e, "document too large for the HTML parser");
	if (!utf8) /* an empty buffer may have no storage */
		utf8 = "", len = 0;
	pthread_once(&sorted_once, sort_words);
	b = calloc(1, sizeof *b);
	if (!b)
		return qn_errf(e, "out of memory");
	b->o = o;
	b->meta = meta;
	qn_buf_init(&b->text, QN_BUF_UNLIMITED);
	qn_buf_init(&b->title, 1 << 16);
	char *lean = malloc(len + 1);
	if (!lean) {
		free(b);
		return qn_errf(e, "out of memory");
	}
	rc = build(b, lean, strip_raw(utf8, len, lean));
	free(lean);
	if (rc < 0 || b->full) {
		rc = qn_errf(e, b->full ? "more than %u elements or out of memory"
					: "not parseable as HTML", MAX_NODES);
		goto out;
	}
	c.root = b->root;
	for (hnode *n = c.root; n; n = next_node(n, c.root, 0))
		if (n->type == HN_ELEM && !strcmp(n->name, "body")) {
			c.body = n;
			break;
		}
	c.total = c.body ? NST(c.body)->text : NST(c.root)->text;
	rc = render_content(&c, text, meta);
	if (rc < 0)
		qn_errf(e, "extracted text larger than %zu bytes", text->max);
out:
	arena_free(&b->ar);
	if (b->dict)
		xmlDictFree(b->dict);
	qn_buf_release(&b->text);
	qn_buf_release(&b->title);
	free(b);
	return rc;
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
