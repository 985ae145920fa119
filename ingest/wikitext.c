/*
 * wikitext.c - MediaWiki markup reduced to plain text; see ingest.h.
 *
 * It runs over whole Wikipedia dumps, so every pass is linear in its input
 * and nothing recurses on input nesting. Three passes, each writing a new
 * buffer:
 *   A. tags: comments, <ref>, <gallery>, <math> and friends go with their
 *      content; <nowiki>, <pre>, <syntaxhighlight> keep theirs verbatim
 *      (markup characters are "protected": mapped to private-use code points
 *      U+10FF00+c that later passes ignore and pass C maps back); other
 *      HTML-ish tags go and their content stays.
 *   B. templates: {{...}} and {{{...}}} are paired with a stack in one scan
 *      (nesting capped); the outermost matched spans are dropped, unmatched
 *      braces stay as text.
 *   C. lines: tables {| ... |} are dropped, "== H ==" becomes a heading with
 *      blank lines around, "*" and "#" items become "- ", then inline markup
 *      on the line: [[target|label]] -> label, [[target]] -> target,
 *      [[File:..]] / [[Category:..]] / language links dropped, [url label]
 *      -> label, '' and ''' dropped, __TOC__-style switches dropped, HTML
 *      entities decoded. Whitespace is collapsed: one space within a line,
 *      at most one blank line between paragraphs.
 * A span removed in A or B that occupied its whole line takes the line's
 * newline with it, so an infobox at the top leaves no hole.
 */
#include "ingest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "utf8.h"

#define MAX_BRACE_DEPTH 1024 /* template nesting cap */
#define MAX_LINK_DEPTH 32    /* nested link labels ([[File:..|[[a|b]]]]) */
#define MAX_TABLE_DEPTH 64
#define MAX_TAG_LEN 1024     /* a tag longer than this is text */

/* ---- protected characters ---------------------------------------------- */

/* Markup characters inside <nowiki>/<pre> that passes B and C must not see. */
static const char protect_set[] = "{}[]|'=*#:;_!-~";

static int is_protected_char(unsigned char c)
{
	return c && strchr(protect_set, c) != NULL;
}

/* U+10FF00 + c in UTF-8: F4 8F (BC + c/64) (80 + c%64). */
static int add_protected(struct qn_buf *b, unsigned char c)
{
	char u[4] = {(char)0xF4, (char)0x8F, (char)(0xBC + (c >> 6)), (char)(0x80 | (c & 0x3F))};
	return qn_buf_add(b, u, 4);
}

/* Returns the protected ASCII char at s (4 bytes), or 0. */
static unsigned char protected_at(const unsigned char *s, size_t n)
{
	if (n < 4 || s[0] != 0xF4 || s[1] != 0x8F || (s[2] != 0xBC && s[2] != 0xBD) ||
	    (s[3] & 0xC0) != 0x80)
		return 0;
	return (unsigned char)(((s[2] - 0xBC) << 6) | (s[3] & 0x3F));
}

/* ---- pass A: tags and comments ------------------------------------------ */

enum tag_kind {
	TAG_KEEP,    /* drop the tag, keep the content */
	TAG_BLOCK,   /* like KEEP, with a line break */
	TAG_DROP,    /* drop tag and content */
	TAG_VERBATIM /* drop the tag, protect the content */
};

struct tag {
	const char *name;
	enum tag_kind kind;
};

/* Sorted for bsearch; anything else that looks like a tag stays as text. */
static const struct tag tags[] = {
	{"abbr", TAG_KEEP},          {"b", TAG_KEEP},
	{"bdi", TAG_KEEP},           {"big", TAG_KEEP},
	{"blockquote", TAG_BLOCK},   {"br", TAG_BLOCK},
	{"categorytree", TAG_DROP},  {"ce", TAG_DROP},
	{"center", TAG_BLOCK},       {"charinsert", TAG_DROP},
	{"chem", TAG_DROP},          {"cite", TAG_KEEP},
	{"code", TAG_KEEP},          {"data", TAG_KEEP},
	{"dd", TAG_BLOCK},           {"del", TAG_KEEP},
	{"dfn", TAG_KEEP},           {"div", TAG_BLOCK},
	{"dl", TAG_BLOCK},           {"dt", TAG_BLOCK},
	{"em", TAG_KEEP},            {"font", TAG_KEEP},
	{"gallery", TAG_DROP},       {"graph", TAG_DROP},
	{"h1", TAG_BLOCK},           {"h2", TAG_BLOCK},
	{"h3", TAG_BLOCK},           {"h4", TAG_BLOCK},
	{"h5", TAG_BLOCK},           {"h6", TAG_BLOCK},
	{"hiero", TAG_DROP},         {"hr", TAG_BLOCK},
	{"i", TAG_KEEP},             {"imagemap", TAG_DROP},
	{"includeonly", TAG_DROP},   {"indicator", TAG_DROP},
	{"inputbox", TAG_DROP},      {"ins", TAG_KEEP},
	{"kbd", TAG_KEEP},           {"li", TAG_BLOCK},
	{"mapframe", TAG_DROP},      {"maplink", TAG_DROP},
	{"mark", TAG_KEEP},          {"math", TAG_DROP},
	{"noinclude", TAG_KEEP},     {"nowiki", TAG_VERBATIM},
	{"ol", TAG_BLOCK},           {"onlyinclude", TAG_KEEP},
	{"p", TAG_BLOCK},            {"poem", TAG_BLOCK},
	{"pre", TAG_VERBATIM},       {"q", TAG_KEEP},
	{"ref", TAG_DROP},           {"references", TAG_DROP},
	{"rp", TAG_KEEP},            {"rt", TAG_KEEP},
	{"ruby", TAG_KEEP},          {"s", TAG_KEEP},
	{"samp", TAG_KEEP},          {"score", TAG_DROP},
	{"section", TAG_KEEP},       {"small", TAG_KEEP},
	{"source", TAG_VERBATIM},    {"span", TAG_KEEP},
	{"strike", TAG_KEEP},        {"strong", TAG_KEEP},
	{"sub", TAG_KEEP},           {"sup", TAG_KEEP},
	{"syntaxhighlight", TAG_VERBATIM}, {"table", TAG_BLOCK},
	{"td", TAG_KEEP},            {"templatedata", TAG_DROP},
	{"templatestyles", TAG_DROP}, {"th", TAG_KEEP},
	{"time", TAG_KEEP},          {"timeline", TAG_DROP},
	{"tr", TAG_BLOCK},           {"tt", TAG_KEEP},
	{"u", TAG_KEEP},             {"ul", TAG_BLOCK},
	{"var", TAG_KEEP},           {"wbr", TAG_KEEP},
};

static int tag_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct tag *)e)->name);
}

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* A parsed tag at s[0] == '<'. */
struct tagm {
	const struct tag *t;
	size_t len;  /* through '>' */
	int closing; /* </x> */
	int selfclose; /* <x/> */
};

static int match_tag(const char *s, size_t n, struct tagm *m)
{
	char name[24];
	size_t i = 1, k = 0, lim = n < MAX_TAG_LEN ? n : MAX_TAG_LEN;
	struct tag *t;

	m->closing = 0;
	if (i < lim && s[i] == '/') {
		m->closing = 1;
		i++;
	}
	if (i >= lim || !is_alpha((unsigned char)s[i]))
		return 0;
	while (i < lim && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]))) {
		if (k + 1 >= sizeof name)
			return 0;
		name[k++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
		i++;
	}
	name[k] = 0;
	if (i >= lim || !(s[i] == '>' || s[i] == '/' || is_space((unsigned char)s[i])))
		return 0;
	t = bsearch(name, tags, sizeof tags / sizeof tags[0], sizeof tags[0], tag_cmp);
	if (!t)
		return 0;
	while (i < lim && s[i] != '>' && s[i] != '<')
		i++;
	if (i >= lim || s[i] != '>')
		return 0;
	m->t = t;
	m->len = i + 1;
	m->selfclose = s[i - 1] == '/';
	return 1;
}

/*
 * Finds "</name" (case-insensitive) in s[from, n). Memoised per tag: once a
 * search from p failed, every later search fails too, so many unclosed tags
 * of one kind cost one scan, not one scan each.
 */
struct closer_memo {
	const struct tag *t;
	size_t none_from;
};

static size_t find_closer(const char *s, size_t n, size_t from, const struct tag *t,
			  struct closer_memo *memo, size_t nmemo)
{
	size_t nl = strlen(t->name), slot = (size_t)(t - tags) % nmemo;
	const char *p = s + from, *end = s + n;

	if (memo[slot].t == t && from >= memo[slot].none_from)
		return (size_t)-1;
	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if ((size_t)(end - p) >= nl + 2 && p[1] == '/' && !strncasecmp(p + 2, t->name, nl) &&
		    ((size_t)(end - p) == nl + 2 || !is_alpha((unsigned char)p[2 + nl])))
			return (size_t)(p - s);
		p++;
	}
	memo[slot].t = t;
	memo[slot].none_from = from;
	return (size_t)-1;
}

/* Appends a verbatim span with markup characters protected. */
static int add_verbatim(struct qn_buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_protected_char(c) ? add_protected(out, c) : qn_buf_addc(out, (char)c))
			return -1;
	}
	return 0;
}

/* Drops the newline after a removed span that filled its line. */
static size_t eat_line(const char *s, size_t n, size_t to, const struct qn_buf *out)
{
	int at_start = out->len == 0 || out->data[out->len - 1] == '\n';
	if (at_start && to < n && s[to] == '\n')
		return to + 1;
	return to;
}

static int pass_tags(const char *s, size_t n, struct qn_buf *out)
{
	struct closer_memo memo[16] = {{0}};
	size_t i = 0;

	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		size_t j = lt ? (size_t)(lt - s) : n;
		struct tagm m;

		if (qn_buf_add(out, s + i, j - i) < 0)
			return -1;
		i = j;
		if (i >= n)
			break;
		if (n - i >= 4 && !memcmp(s + i, "<!--", 4)) {
			const char *e = memmem(s + i + 4, n - i - 4, "-->", 3);
			size_t to = e ? (size_t)(e - s) + 3 : n;
			i = eat_line(s, n, to, out);
			continue;
		}
		if (!match_tag(s + i, n - i, &m)) {
			if (qn_buf_addc(out, '<') < 0)
				return -1;
			i++;
			continue;
		}
		if (m.closing || m.selfclose || m.t->kind == TAG_KEEP || m.t->kind == TAG_BLOCK) {
			/* A stray closer of a dropped kind, or a plain tag: drop it. */
			if (m.t->kind == TAG_BLOCK && qn_buf_addc(out, '\n') < 0)
				return -1;
			i = m.t->kind == TAG_BLOCK ? i + m.len : eat_line(s, n, i + m.len, out);
			continue;
		}
		size_t body = i + m.len;
		size_t close = find_closer(s, n, body, m.t, memo, sizeof memo / sizeof memo[0]);
		size_t after = close;
		if (close != (size_t)-1) {
			struct tagm cm;
			after = match_tag(s + close, n - close, &cm) ? close + cm.len
								: close + 2 + strlen(m.t->name);
		}
		if (m.t->kind == TAG_DROP) {
			/* Unclosed: MediaWiki drops to the end for comments; for tags, only the tag. */
			i = close == (size_t)-1 ? body : eat_line(s, n, after, out);
			continue;
		}
		/* TAG_VERBATIM */
		if (close == (size_t)-1) {
			i = body;
			continue;
		}
		if (add_verbatim(out, s + body, close - body) < 0)
			return -1;
		i = after;
	}
	return 0;
}

/* ---- pass B: templates --------------------------------------------------- */

struct span {
	size_t a, b;
};

struct spans {
	struct span *v;
	size_t n, cap;
};

static int spans_push(struct spans *sp, size_t a, size_t b)
{
	/* Spans close in order, so spans inside [a, b) sit at the tail. */
	while (sp->n && sp->v[sp->n - 1].a >= a)
		sp->n--;
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? sp->cap * 2 : 64;
		struct span *v = realloc(sp->v, cap * sizeof *v);
		if (!v)
			return -1;
		sp->v = v;
		sp->cap = cap;
	}
	sp->v[sp->n].a = a;
	sp->v[sp->n].b = b;
	sp->n++;
	return 0;
}

static int pass_templates(const char *s, size_t n, struct qn_buf *out)
{
	size_t *stack = NULL, depth = 0, i = 0, from = 0;
	struct spans sp = {0};
	int rc = -1;

	stack = malloc(MAX_BRACE_DEPTH * sizeof *stack);
	if (!stack)
		return -1;
	while (i < n) {
		size_t k;
		/* Skip to the next brace. */
		while (i < n && s[i] != '{' && s[i] != '}')
			i++;
		if (i >= n)
			break;
		k = 1;
		while (i + k < n && s[i + k] == s[i])
			k++;
		if (k < 2) {
			i++;
			continue;
		}
		if (s[i] == '{') {
			for (size_t j = 0; j < k; j++)
				if (depth < MAX_BRACE_DEPTH)
					stack[depth++] = i + j;
		} else {
			for (size_t j = 0; j < k && depth; j++)
				if (spans_push(&sp, stack[--depth], i + j + 1) < 0)
					goto out;
		}
		i += k;
	}
	for (size_t t = 0; t < sp.n; t++) {
		if (qn_buf_add(out, s + from, sp.v[t].a - from) < 0)
			goto out;
		from = eat_line(s, n, sp.v[t].b, out);
	}
	if (qn_buf_add(out, s + from, n - from) < 0)
		goto out;
	rc = 0;
out:
	free(stack);
	free(sp.v);
	return rc;
}

/* ---- pass C: lines and inline markup ------------------------------------ */

/*
 * The emitter collapses whitespace: runs of spaces become one space, no
 * space at a line's ends, at most one blank line, nothing leading.
 */
struct em {
	struct qn_buf *out;
	size_t start;
	int nl; /* pending newlines, 0..2 */
	int sp; /* pending space */
	int err;
};

static void em_flush(struct em *e)
{
	if (e->out->len > e->start) {
		if (e->nl) {
			if (qn_buf_add(e->out, "\n\n", (size_t)e->nl) < 0)
				e->err = 1;
		} else if (e->sp && qn_buf_add(e->out, " ", 1) < 0) {
			e->err = 1;
		}
	}
	e->nl = e->sp = 0;
}

static inline void em_c(struct em *e, char c)
{
	if (e->nl || e->sp)
		em_flush(e);
	if (e->out->len + 1 < e->out->cap && e->out->len < e->out->max) {
		e->out->data[e->out->len++] = c;
		e->out->data[e->out->len] = 0;
	} else if (qn_buf_add(e->out, &c, 1) < 0) { /* not addc: it may pass max */
		e->err = 1;
	}
}

static void em_s(struct em *e, const char *s, size_t n)
{
	if (!n)
		return;
	if (e->nl || e->sp)
		em_flush(e);
	if (qn_buf_add(e->out, s, n) < 0)
		e->err = 1;
}

static void em_space(struct em *e) { e->sp = 1; }

static void em_newline(struct em *e)
{
	if (e->nl < 2)
		e->nl++;
	e->sp = 0;
}

static void em_break(struct em *e, int k)
{
	if (e->nl < k)
		e->nl = k;
	e->sp = 0;
}

struct entity {
	const char *name;
	uint32_t cp;
};

/* Sorted for bsearch (strcmp order: capitals first). */
static const struct entity entities[] = {
	{"Alpha", 0x391}, {"Beta", 0x392}, {"Delta", 0x394}, {"Gamma", 0x393},
	{"Lambda", 0x39B}, {"Omega", 0x3A9}, {"Phi", 0x3A6}, {"Pi", 0x3A0},
	{"Prime", 0x2033}, {"Psi", 0x3A8}, {"Sigma", 0x3A3}, {"Theta", 0x398},
	{"aacute", 0xE1}, {"acute", 0xB4}, {"aelig", 0xE6}, {"agrave", 0xE0},
	{"alpha", 0x3B1}, {"amp", '&'}, {"apos", '\''}, {"aring", 0xE5},
	{"auml", 0xE4}, {"beta", 0x3B2}, {"bull", 0x2022}, {"ccedil", 0xE7},
	{"cent", 0xA2}, {"chi", 0x3C7}, {"copy", 0xA9}, {"darr", 0x2193},
	{"deg", 0xB0}, {"delta", 0x3B4}, {"divide", 0xF7}, {"eacute", 0xE9},
	{"egrave", 0xE8}, {"emsp", 0x2003}, {"ensp", 0x2002}, {"epsilon", 0x3B5},
	{"eta", 0x3B7}, {"euml", 0xEB}, {"euro", 0x20AC}, {"frac12", 0xBD},
	{"frac14", 0xBC}, {"frac34", 0xBE}, {"gamma", 0x3B3}, {"ge", 0x2265},
	{"gt", '>'}, {"harr", 0x2194}, {"hellip", 0x2026}, {"iacute", 0xED},
	{"iexcl", 0xA1}, {"infin", 0x221E}, {"iota", 0x3B9}, {"iquest", 0xBF},
	{"iuml", 0xEF}, {"kappa", 0x3BA}, {"lambda", 0x3BB}, {"laquo", 0xAB},
	{"larr", 0x2190}, {"ldquo", 0x201C}, {"le", 0x2264}, {"lrm", 0x200E},
	{"lsquo", 0x2018}, {"lt", '<'}, {"mdash", 0x2014}, {"micro", 0xB5},
	{"middot", 0xB7}, {"minus", 0x2212}, {"mu", 0x3BC}, {"nbsp", 0xA0},
	{"ndash", 0x2013}, {"ne", 0x2260}, {"ntilde", 0xF1}, {"nu", 0x3BD},
	{"oacute", 0xF3}, {"omega", 0x3C9}, {"ouml", 0xF6}, {"para", 0xB6},
	{"phi", 0x3C6}, {"pi", 0x3C0}, {"plusmn", 0xB1}, {"pound", 0xA3},
	{"prime", 0x2032}, {"psi", 0x3C8}, {"quot", '"'}, {"raquo", 0xBB},
	{"rarr", 0x2192}, {"rdquo", 0x201D}, {"reg", 0xAE}, {"rho", 0x3C1},
	{"rlm", 0x200F}, {"rsquo", 0x2019}, {"sect", 0xA7}, {"shy", 0xAD},
	{"sigma", 0x3C3}, {"sup1", 0xB9}, {"sup2", 0xB2}, {"sup3", 0xB3},
	{"szlig", 0xDF}, {"tau", 0x3C4}, {"theta", 0x3B8}, {"thinsp", 0x2009},
	{"times", 0xD7}, {"trade", 0x2122}, {"uacute", 0xFA}, {"uarr", 0x2191},
	{"uuml", 0xFC}, {"xi", 0x3BE}, {"yen", 0xA5}, {"zeta", 0x3B6},
	{"zwj", 0x200D}, {"zwnj", 0x200C},
};

static int entity_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct entity *)e)->name);
}

/* Decodes an entity at s[0] == '&'; returns its length, 0 if none. */
static size_t decode_entity(const char *s, size_t n, uint32_t *cp)
{
	size_t i = 1;
	uint64_t v = 0;

	if (n > 2 && s[1] == '#') {
		int hex = n > 3 && (s[2] == 'x' || s[2] == 'X');
		size_t d0;
		i = hex ? 3 : 2;
		d0 = i;
		while (i < n && i - d0 < 8) {
			int c = (unsigned char)s[i], d;
			if (is_digit(c))
				d = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (hex && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				break;
			v = v * (hex ? 16 : 10) + (uint64_t)d;
			i++;
		}
		if (i == d0 || i >= n || s[i] != ';')
			return 0;
		if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
			v = 0xFFFD;
		*cp = (uint32_t)v;
		return i + 1;
	} else {
		char name[12];
		const struct entity *ent;
		while (i < n && i < sizeof name && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
			i++;
		if (i == 1 || i >= n || s[i] != ';' || i - 1 >= sizeof name)
			return 0;
		memcpy(name, s + 1, i - 1);
		name[i - 1] = 0;
		ent = bsearch(name, entities, sizeof entities / sizeof entities[0], sizeof entities[0],
			      entity_cmp);
		if (!ent)
			return 0;
		*cp = ent->cp;
		return i + 1;
	}
}

static int has_prefix_ci(const char *s, size_t n, const char *p)
{
	size_t k = strlen(p);
	return n >= k && !strncasecmp(s, p, k);
}

/* Namespaces whose links are not text: media, categories. */
static const char *const drop_ns[] = {
	"file:", "image:", "category:", "datei:", "bild:", "kategorie:", "fichier:",
	"catégorie:", "archivo:", "imagen:", "categoría:", "categoria:", "ficheiro:",
	"immagine:", "plik:", "kategoria:", "afbeelding:", "categorie:", "bestand:",
	"файл:", "категория:", "изображение:",
};

static int dropped_link(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof drop_ns / sizeof drop_ns[0]; i++)
		if (has_prefix_ci(t, n, drop_ns[i]))
			return 1;
	/* Interlanguage links: [[de:Titel]], [[zh-yue:...]] */
	for (i = 0; i < n && t[i] >= 'a' && t[i] <= 'z'; i++)
		;
	if (i >= 2 && i <= 3 && i < n && t[i] == '-')
		for (i++; i < n && t[i] >= 'a' && t[i] <= 'z'; i++)
			;
	return i >= 2 && i <= 12 && i < n && t[i] == ':' && !memchr(t, '|', n);
}

static int url_scheme(const char *s, size_t n)
{
	static const char *const schemes[] = {"http://", "https://", "ftp://", "//",
					      "mailto:", "irc://", "news:", "gopher://"};
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (has_prefix_ci(s, n, schemes[i]))
			return 1;
	return 0;
}

/* Pairs of [[ and ]] on one line, opens in order. */
struct links {
	size_t *open, *close, n, cap;
	size_t *stk;
	size_t cur;
};

static int links_scan(struct links *L, const char *s, size_t a, size_t b)
{
	size_t depth = 0, i = a;

	L->n = 0;
	L->cur = 0;
	while (i + 1 < b) {
		if (s[i] == '[' && s[i + 1] == '[') {
			if (L->n == L->cap) {
				size_t cap = L->cap ? L->cap * 2 : 32;
				size_t *o = realloc(L->open, cap * sizeof *o);
				if (!o)
					return -1;
				L->open = o;
				size_t *c = realloc(L->close, cap * sizeof *c);
				if (!c)
					return -1;
				L->close = c;
				size_t *st = realloc(L->stk, cap * sizeof *st);
				if (!st)
					return -1;
				L->stk = st;
				L->cap = cap;
			}
			L->open[L->n] = i;
			L->close[L->n] = (size_t)-1;
			L->stk[depth++] = L->n++;
			i += 2;
		} else if (s[i] == ']' && s[i + 1] == ']' && depth) {
			L->close[L->stk[--depth]] = i;
			i += 2;
		} else {
			i++;
		}
	}
	return 0;
}

/* Bytes inline_span looks at; the rest is copied in runs. */
static const unsigned char special[256] = {
	['['] = 1, ['\''] = 1, ['_'] = 1, ['&'] = 1, [' '] = 1, ['\t'] = 1, ['\r'] = 1,
	['\n'] = 1, [0xF4] = 1,
};

/* Renders inline markup of s[a, b). */
static void inline_span(struct em *e, struct links *L, const char *s, size_t a, size_t b)
{
	size_t ends[MAX_LINK_DEPTH], skip[MAX_LINK_DEPTH];
	int nend = 0;
	size_t no_bracket_from = (size_t)-1; /* memo: no ']' in [x, b) */
	size_t i = a;

	while (i < b && !e->err) {
		unsigned char c = (unsigned char)s[i];
		if (nend && i == ends[nend - 1]) {
			i += skip[--nend];
			continue;
		}
		switch (c) {
		case '[':
			if (i + 1 < b && s[i + 1] == '[') {
				while (L->cur < L->n && L->open[L->cur] < i)
					L->cur++;
				if (L->cur < L->n && L->open[L->cur] == i && L->close[L->cur] != (size_t)-1) {
					size_t close = L->close[L->cur], t = i + 2, te;
					const char *pipe;
					int colon = 0;
					while (t < close && s[t] == ' ')
						t++;
					if (t < close && s[t] == ':') {
						colon = 1;
						t++;
					}
					pipe = memchr(s + t, '|', close - t);
					te = pipe ? (size_t)(pipe - s) : close;
					if ((!colon && dropped_link(s + t, te - t)) || nend == MAX_LINK_DEPTH) {
						i = close + 2;
						continue;
					}
					ends[nend] = close;
					skip[nend++] = 2;
					i = pipe && (size_t)(pipe - s) + 1 < close ? (size_t)(pipe - s) + 1 : t;
					if (pipe && i == t) {
						/* [[Target|]]: the pipe trick shows the target. */
						ends[nend - 1] = te;
						skip[nend - 1] = close + 2 - te;
					}
					continue;
				}
			} else if (url_scheme(s + i + 1, b - i - 1) && nend < MAX_LINK_DEPTH &&
				   (no_bracket_from == (size_t)-1 || i < no_bracket_from)) {
				const char *rb = memchr(s + i + 1, ']', b - i - 1);
				if (!rb) {
					no_bracket_from = i;
				} else {
					size_t close = (size_t)(rb - s);
					const char *sp = memchr(s + i + 1, ' ', close - i - 1);
					if (!sp) {
						i = close + 1;
						continue;
					}
					ends[nend] = close;
					skip[nend++] = 1;
					i = (size_t)(sp - s) + 1;
					continue;
				}
			}
			em_c(e, '[');
			i++;
			break;
		case '\'': {
			size_t k = 1;
			while (i + k < b && s[i + k] == '\'')
				k++;
			if (k == 1) {
				em_c(e, '\'');
			} else {
				size_t lit = k == 4 ? 1 : k > 5 ? k - 5 : 0;
				for (size_t j = 0; j < lit; j++)
					em_c(e, '\'');
			}
			i += k;
			break;
		}
		case '_':
			if (i + 4 < b && s[i + 1] == '_' && s[i + 2] >= 'A' && s[i + 2] <= 'Z') {
				size_t j = i + 2;
				while (j < b && j - i < 40 && s[j] >= 'A' && s[j] <= 'Z')
					j++;
				if (j + 1 < b && s[j] == '_' && s[j + 1] == '_') {
					i = j + 2;
					break;
				}
			}
			em_c(e, '_');
			i++;
			break;
		case '&': {
			uint32_t cp;
			size_t k = decode_entity(s + i, b - i, &cp);
			if (k) {
				char u[4];
				if (cp == ' ')
					em_space(e);
				else
					em_s(e, u, qn_utf8_encode(cp, u));
				i += k;
			} else {
				em_c(e, '&');
				i++;
			}
			break;
		}
		case ' ':
		case '\t':
		case '\r':
			em_space(e);
			i++;
			break;
		case '\n':
			em_newline(e);
			i++;
			break;
		case 0xF4: {
			unsigned char p = protected_at((const unsigned char *)s + i, b - i);
			if (p) {
				em_c(e, (char)p);
				i += 4;
			} else {
				em_c(e, (char)c);
				i++;
			}
			break;
		}
		default: {
			/* A run of plain bytes, up to the next special one or label end. */
			size_t j = i + 1, lim = b;
			if (nend && ends[nend - 1] > i && ends[nend - 1] < lim)
				lim = ends[nend - 1];
			while (j < lim && !special[(unsigned char)s[j]])
				j++;
			em_s(e, s + i, j - i);
			i = j;
		}
		}
	}
}

static size_t skip_blank(const char *s, size_t i, size_t b)
{
	while (i < b && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static int pass_lines(const char *s, size_t n, struct qn_buf *out)
{
	struct em e = {out, out->len, 0, 0, 0};
	struct links L = {0};
	int table = 0;
	size_t pos = 0;

	while (pos < n && !e.err) {
		const char *nl = memchr(s + pos, '\n', n - pos);
		size_t eol = nl ? (size_t)(nl - s) : n, a = skip_blank(s, pos, eol);
		size_t next = nl ? eol + 1 : n;

		if (table || (eol - a >= 2 && s[a] == '{' && s[a + 1] == '|')) {
			if (eol - a >= 2 && s[a] == '{' && s[a + 1] == '|')
				table += table < MAX_TABLE_DEPTH;
			else if (eol - a >= 2 && s[a] == '|' && s[a + 1] == '}' && !--table)
				em_break(&e, 2);
			pos = next;
			continue;
		}
		if (links_scan(&L, s, pos, eol) < 0) {
			e.err = 1;
			break;
		}
		if (s[pos] == '=') {
			size_t l = 0, r = 0, z = eol;
			while (z > pos && (s[z - 1] == ' ' || s[z - 1] == '\t' || s[z - 1] == '\r'))
				z--;
			while (pos + l < z && s[pos + l] == '=')
				l++;
			while (r < z - pos && s[z - 1 - r] == '=')
				r++;
			if (r && l + r < z - pos) {
				size_t lvl = l < r ? l : r;
				if (lvl > 6)
					lvl = 6;
				em_break(&e, 2);
				inline_span(&e, &L, s, pos + lvl, z - lvl);
				em_break(&e, 2);
				pos = next;
				continue;
			}
		}
		if (s[pos] == '*' || s[pos] == '#' || s[pos] == ':' || s[pos] == ';') {
			size_t k = pos;
			int item = 0;
			while (k < eol && (s[k] == '*' || s[k] == '#' || s[k] == ':' || s[k] == ';')) {
				item |= s[k] == '*' || s[k] == '#';
				k++;
			}
			em_break(&e, 1);
			if (item)
				em_s(&e, "- ", 2);
			inline_span(&e, &L, s, skip_blank(s, k, eol), eol);
			em_newline(&e);
			pos = next;
			continue;
		}
		if (eol - pos >= 4 && !memcmp(s + pos, "----", 4)) {
			em_break(&e, 2);
			pos = next;
			continue;
		}
		inline_span(&e, &L, s, pos, eol);
		em_newline(&e);
		pos = next;
	}
	free(L.open);
	free(L.close);
	free(L.stk);
	return e.err ? -1 : 0;
}

int ix_wikitext(const char *src, size_t n, struct qn_buf *out)
{
	struct qn_buf a, b;
	int rc = -1;

	/* Pass A can grow protected spans 4x; nothing else grows. */
	qn_buf_init(&a, QN_BUF_UNLIMITED);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	if (qn_buf_grow(&a, n) < 0 || pass_tags(src, n, &a) < 0)
		goto out;
	if (qn_buf_grow(&b, a.len) < 0 || pass_templates(a.data, a.len, &b) < 0)
		goto out;
	rc = pass_lines(b.data ? b.data : "", b.len, out);
out:
	qn_buf_release(&a);
	qn_buf_release(&b);
	return rc;
}
