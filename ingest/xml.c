/*
 * xml.c - XML inputs into documents: whole files, XPath-selected nodes, and
 * streamed presets for MediaWiki dumps, RSS 2.0 and Atom; see ingest.h.
 *
 * Three modes:
 *   generic  one document per file: all text, a line break after a leaf
 *            element, a blank line around an element that holds elements
 *            (inline elements of mixed content run on); metadata "root".
 *   XPath    (opt->xpath) one document per matching node; id_xpath,
 *            text_xpath and --meta XPaths are evaluated relative to it.
 *            Namespaces: local-name() works as always, and these prefixes
 *            are registered for convenience (the man page lists them):
 *              d        the root element's default namespace, if any
 *              mw       the same when it is a MediaWiki export namespace,
 *                       else http://www.mediawiki.org/xml/export-0.11/
 *              atom     http://www.w3.org/2005/Atom
 *              content  http://purl.org/rss/1.0/modules/content/
 *              dc       http://purl.org/dc/elements/1.1/
 *              media    http://search.yahoo.com/mrss/
 *            plus every prefix the root element itself declares.
 *            Both build a tree, so they read at most opt->max_bytes.
 *   presets  "mediawiki", "rss", "atom" stream with xmlTextReader in bounded
 *            memory: a record (page revision, item, entry) is expanded,
 *            read, and skipped so that libxml2 frees it. Pages are never
 *            expanded whole (a history dump holds thousands of revisions
 *            in one page): their small children and each revision are.
 *
 * Hostile input: no network, no DTD loading, no entity substitution by
 * libxml2 (no XML_PARSE_NOENT/DTDLOAD/HUGE), an external entity loader that
 * refuses everything (process-global, installed once), libxml2's own depth,
 * size and entity-amplification limits, and our tree walks are iterative
 * with a depth cap and a budget for nodes reached through entity
 * references. libxml2's errors are captured per thread (structured error
 * handler installed for the duration of a call) and become
 * ix_fail("line N: message"); libxml2 never prints.
 */
#include "ingest.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlreader.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "buf.h"
#include "doc.h"
#include "err.h"
#include "rd.h"

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define FIELD_MAX ((size_t)1 << 20)       /* titles, ids, dates, urls */
#define WALK_MAX_DEPTH 1024
#define ENTITY_NODE_BUDGET 10000000L      /* nodes visited through entity refs per call */
#define PARSE_OPTS (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT)

#define NS_ATOM "http://www.w3.org/2005/Atom"
#define NS_CONTENT "http://purl.org/rss/1.0/modules/content/"
#define NS_DC "http://purl.org/dc/elements/1.1/"
#define NS_MEDIA "http://search.yahoo.com/mrss/"
#define NS_MW_PREFIX "http://www.mediawiki.org/xml/export-"
#define NS_MW_DEFAULT "http://www.mediawiki.org/xml/export-0.11/"

/* ---- hardening and error capture ---------------------------------------- */

static xmlParserInputPtr refuse_entity(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL;
}

static void harden_once(void)
{
	xmlSetExternalEntityLoader(refuse_entity);
}

/* Installs the refusing entity loader, once per process. */
static void ix_xml_harden(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, harden_once);
}

struct xerr {
	int have, fatal; /* a message is recorded; it is a fatal error */
	int line;
	char msg[512];
};

/*
 * libxml2 checks each attribute of a start tag against all the earlier
 * ones, so one tag with a hundred thousand attributes takes minutes. The
 * guard watches the bytes on their way in (across reads) and refuses a
 * start tag with more than MAX_ATTRS attributes. Text between tags is
 * skipped with memchr, so it costs little.
 */
#define MAX_ATTRS 4096

enum { G_TEXT, G_LT, G_TAG, G_QUOTE, G_MARKUP };

struct guard {
	int state;
	char quote;
	unsigned attrs;
};

static int guard_scan(struct guard *g, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		switch (g->state) {
		case G_TEXT: {
			const char *lt = memchr(p, '<', (size_t)(end - p));
			if (!lt)
				return 0;
			p = lt + 1;
			g->state = G_LT;
			continue;
		}
		case G_LT:
			g->state = (*p == '!' || *p == '?') ? G_MARKUP : G_TAG;
			g->attrs = 0;
			break;
		case G_TAG:
			if (*p == '>')
				g->state = G_TEXT;
			else if (*p == '"' || *p == '\'') {
				g->quote = *p;
				g->state = G_QUOTE;
			} else if (*p == '=' && ++g->attrs > MAX_ATTRS)
				return -1;
			break;
		case G_QUOTE:
			if (*p == g->quote)
				g->state = G_TAG;
			break;
		case G_MARKUP:
			if (*p == '>')
				g->state = G_TEXT;
			break;
		}
		p++;
	}
	return 0;
}

/* Per-call state. */
struct xrun {
	struct ix_sink *s;
	struct qn_rd *rd;
	struct qn_err rerr;
	int rd_failed;
	struct xerr err;
	xmlStructuredErrorFunc old_serror;
	void *old_sctx;
	xmlGenericErrorFunc old_gerror;
	void *old_gctx;
	/* tree walking */
	xmlNodePtr *stk;
	unsigned char *stkf;
	long entity_budget;
	int walk_error; /* 1: output limit, 2: entity budget, 3: out of memory */
	size_t max_bytes;
	uint64_t nrec;
	struct guard guard;
};

static void on_error(void *ctx, xmlErrorPtr err)
{
	struct xerr *x = ctx;
	size_t n;

	if (!err || err->level < XML_ERR_ERROR || err->domain == XML_FROM_HTML)
		return;
	/* Keep the first fatal error, else the first error. */
	if (x->have && (x->fatal || err->level != XML_ERR_FATAL))
		return;
	x->have = 1;
	x->fatal = err->level == XML_ERR_FATAL;
	x->line = err->line;
	snprintf(x->msg, sizeof x->msg, "%s", err->message ? err->message : "parse error");
	n = strlen(x->msg);
	while (n && (x->msg[n - 1] == '\n' || x->msg[n - 1] == ' '))
		x->msg[--n] = 0;
}

static void quiet_generic(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static void errs_begin(struct xrun *x)
{
	x->old_serror = xmlStructuredError;
	x->old_sctx = xmlStructuredErrorContext;
	x->old_gerror = xmlGenericError;
	x->old_gctx = xmlGenericErrorContext;
	xmlSetStructuredErrorFunc(&x->err, on_error);
	xmlSetGenericErrorFunc(NULL, quiet_generic);
}

static void errs_end(struct xrun *x)
{
	xmlSetStructuredErrorFunc(x->old_sctx, x->old_serror);
	xmlSetGenericErrorFunc(x->old_gctx, x->old_gerror);
}

/* Reports the captured error (or the read error behind it). */
static void fail_parse(struct xrun *x, const char *what)
{
	if (x->rd_failed)
		ix_fail(x->s, "%s", x->rerr.msg);
	else if (x->err.have && x->err.line > 0)
		ix_fail(x->s, "line %d: %s", x->err.line, x->err.msg);
	else if (x->err.have)
		ix_fail(x->s, "%s", x->err.msg);
	else
		ix_fail(x->s, "%s", what);
	memset(&x->err, 0, sizeof x->err);
}

/* ---- text out of trees -------------------------------------------------- */

enum walk_mode {
	W_RAW,   /* all text as is */
	W_FLAT,  /* whitespace runs collapsed, trimmed */
	W_BLOCK, /* FLAT plus line breaks around elements */
};

struct walk {
	struct xrun *x;
	struct qn_buf *out;
	size_t start;
	enum walk_mode mode;
	int pending; /* 0, 1 space, 2 newline, 3 blank line */
};

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int w_add(struct walk *w, const char *p, size_t n)
{
	if (qn_buf_add(w->out, p, n) < 0) {
		w->x->walk_error = 1;
		return -1;
	}
	return 0;
}

static int w_text(struct walk *w, const xmlChar *t)
{
	const char *p = (const char *)t;

	if (!p)
		return 0;
	if (w->mode == W_RAW)
		return w_add(w, p, strlen(p));
	while (*p) {
		const char *q = p;
		if (is_ws((unsigned char)*p)) {
			while (is_ws((unsigned char)*p))
				p++;
			if (w->pending < 1)
				w->pending = 1;
			continue;
		}
		while (*q && !is_ws((unsigned char)*q))
			q++;
		if (w->pending && w->out->len > w->start) {
			static const char *const sep[] = {"", " ", "\n", "\n\n"};
			if (w_add(w, sep[w->pending], strlen(sep[w->pending])) < 0)
				return -1;
		}
		w->pending = 0;
		if (w_add(w, p, (size_t)(q - p)) < 0)
			return -1;
		p = q;
	}
	return 0;
}

static void w_break(struct walk *w, int k)
{
	if (w->mode == W_BLOCK && w->pending < k)
		w->pending = k;
}

enum { F_HAS_ELEM = 1, F_MIXED = 2, F_INLINE = 4 };

/* Elements that read as paragraphs: a blank line around them. */
static int para_name(const xmlChar *name)
{
	static const char *const names[] = {
		"abstract", "article", "blockquote", "chapter", "dd", "div", "h1", "h2", "h3", "h4",
		"h5", "h6", "li", "p", "para", "pre", "section", "table", "td", "th", "tr"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp((const char *)name, names[i]))
			return 1;
	return 0;
}

/* The break around an element: a blank line for a container or paragraph, else a line. */
static int elem_break(xmlNodePtr n, unsigned f)
{
	return ((f & F_HAS_ELEM) && !(f & F_MIXED)) || para_name(n->name) ? 3 : 2;
}

/* Flags of an element, from one look at its children. */

static unsigned elem_flags(xmlNodePtr n)
{
	unsigned f = 0;

	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE) {
			f |= F_HAS_ELEM;
		} else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE ||
			    c->type == XML_ENTITY_REF_NODE) && !(f & F_MIXED)) {
			if (c->type == XML_ENTITY_REF_NODE) {
				f |= F_MIXED;
				continue;
			}
			for (const xmlChar *p = c->content; p && *p; p++)
				if (!is_ws(*p)) {
					f |= F_MIXED;
					break;
				}
		}
	}
	return f;
}

/* The children to descend into, or NULL. */
static xmlNodePtr walk_children(xmlNodePtr n)
{
	switch (n->type) {
	case XML_ELEMENT_NODE:
	case XML_ATTRIBUTE_NODE:
	case XML_DOCUMENT_NODE:
	case XML_DOCUMENT_FRAG_NODE:
		return n->children;
	case XML_ENTITY_REF_NODE: {
		/* A reference's children is its declaration; internal ones only. */
		xmlEntityPtr e = (xmlEntityPtr)n->children;
		if (e && e->type == XML_ENTITY_DECL && e->etype == XML_INTERNAL_GENERAL_ENTITY)
			return e->children;
		return NULL;
	}
	default:
		return NULL;
	}
}

/*
 * Appends the text of root to w->out. Iterative: an explicit stack of the
 * nodes descended into, because entity content's parent pointers lead to
 * the declaration, not back to the reference. -1 with x->walk_error set.
 */
static int walk(struct walk *w, xmlNodePtr root)
{
	struct xrun *x = w->x;
	int depth = 0, in_entity = 0;
	xmlNodePtr cur = root;

	if (root->type == XML_NAMESPACE_DECL)
		return w_text(w, ((xmlNsPtr)root)->href);
	for (;;) {
		xmlNodePtr kids = NULL;
		unsigned f = 0;

		if (in_entity && --x->entity_budget < 0) {
			x->walk_error = 2;
			return -1;
		}
		if (cur->type == XML_TEXT_NODE || cur->type == XML_CDATA_SECTION_NODE) {
			if (w_text(w, cur->content) < 0)
				return -1;
		} else if ((kids = walk_children(cur)) != NULL && depth < WALK_MAX_DEPTH) {
			if (cur->type == XML_ELEMENT_NODE) {
				f = elem_flags(cur);
				if (depth && (x->stkf[depth - 1] & F_MIXED))
					f |= F_INLINE;
				if (!(f & F_INLINE))
					w_break(w, elem_break(cur, f));
			} else if (cur->type == XML_ENTITY_REF_NODE) {
				in_entity++;
				f = depth ? (x->stkf[depth - 1] & F_MIXED) : 0;
			}
			x->stk[depth] = cur;
			x->stkf[depth] = (unsigned char)f;
			depth++;
			cur = kids;
			continue;
		} else if (cur->type == XML_ELEMENT_NODE) {
			/* An empty element: a field separator in field-like data. */
			if (!(depth && (x->stkf[depth - 1] & F_MIXED)))
				w_break(w, 2);
		}
		/* Next node: a sibling, else climb. */
		while (cur != root && !cur->next && depth) {
			cur = x->stk[--depth];
			if (cur->type == XML_ENTITY_REF_NODE)
				in_entity--;
			else if (cur->type == XML_ELEMENT_NODE && !(x->stkf[depth] & F_INLINE))
				w_break(w, elem_break(cur, x->stkf[depth]));
		}
		if (cur == root || !depth)
			break;
		cur = cur->next;
	}
	return 0;
}

/* Text of n into out (replacing its contents); -1 on walk errors. */
static int node_text(struct xrun *x, xmlNodePtr n, enum walk_mode mode, struct qn_buf *out)
{
	struct walk w = {x, out, 0, mode, 0};

	qn_buf_reset(out);
	x->walk_error = 0;
	if (!n)
		return 0;
	if (mode != W_RAW && n->type != XML_NAMESPACE_DECL && n->children && !n->children->next &&
	    n->children->type == XML_TEXT_NODE && n->type == XML_ELEMENT_NODE) {
		/* The common case: an element holding one text node. */
		return w_text(&w, n->children->content);
	}
	return walk(&w, n);
}

static const char *walk_error_msg(struct xrun *x)
{
	switch (x->walk_error) {
	case 1:
		return "text larger than the per-document limit";
	case 2:
		return "too many nodes reached through entity references";
	default:
		return "out of memory";
	}
}

/* ---- small helpers ------------------------------------------------------ */

static int name_is(const xmlNode *n, const char *local)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local);
}

static const char *ns_of(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

/* First child element named local (any namespace). */
static xmlNodePtr child(xmlNodePtr n, const char *local)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (name_is(c, local))
			return c;
	return NULL;
}

/* An attribute's value (no namespace) into out; "" when absent. */
static const char *attr(xmlNodePtr n, const char *name, char *out, size_t cap)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	snprintf(out, cap, "%s", v ? (const char *)v : "");
	xmlFree(v);
	return out;
}

static void meta_str(json_t *meta, const char *key, const struct qn_buf *b)
{
	if (b->len)
		json_object_set_new(meta, key, json_stringn(b->data, b->len));
}

/* Emits; -1 (after reporting when it is not an output error) stops the input. */
static int emit(struct xrun *x, const char *key, const char *explicit_id, const struct qn_buf *text,
		json_t *meta, const char *created)
{
	if (ix_emit(x->s, key, explicit_id, text->data ? text->data : "", text->len, meta, created) < 0) {
		if (!x->s->flush_error)
			ix_fail(x->s, "cannot write document: out of memory");
		return -1;
	}
	return 0;
}

/* ---- dates -------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int min, int max, int *v)
{
	int n = 0, val = 0;
	while (n < max && isdigit((unsigned char)(*p)[n])) {
		val = val * 10 + ((*p)[n] - '0');
		n++;
	}
	if (n < min)
		return -1;
	*p += n;
	*v = val;
	return 0;
}

static int make_time(int y, int mo, int d, int h, int mi, int sec, int off_min, int64_t *t)
{
	if (y < 1000 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 ||
	    sec > 60)
		return -1;
	*t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	     (int64_t)off_min * 60;
	return 0;
}

/* Numeric or named zone; *off in minutes east of UTC. Missing: UTC. */
static int parse_zone(const char *p, int *off)
{
	static const struct {
		const char *name;
		int h;
	} zones[] = {{"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},    {"EST", -5}, {"EDT", -4},
		     {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
	int h = 0, m = 0;

	*off = 0;
	while (*p == ' ')
		p++;
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		if (digits(&p, 2, 2, &h) < 0)
			return -1;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && digits(&p, 2, 2, &m) < 0)
			return -1;
		*off = sign * (h * 60 + m);
		return 0;
	}
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
		size_t k = strlen(zones[i].name);
		if (!strncasecmp(p, zones[i].name, k) && !isalpha((unsigned char)p[k])) {
			*off = zones[i].h * 60;
			return 0;
		}
	}
	return 0; /* unknown names and military letters: read as UTC */
}

/* RFC 3339 / ISO 8601: 2003-12-13[T18:30[:02[.25]]][Z|+01:00]. */
static int parse_iso(const char *p, int64_t *t)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;

	while (*p == ' ')
		p++;
	if (digits(&p, 4, 4, &y) || *p++ != '-' || digits(&p, 2, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, 2, &h) || *p++ != ':' || digits(&p, 2, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',')
				for (p++; isdigit((unsigned char)*p); p++)
					;
		}
		if (parse_zone(p, &off) < 0)
			return -1;
	}
	return make_time(y, mo, d, h, mi, sec, off, t);
}

/* RFC 822 / 2822, tolerant: [Tue,] 10 Jun 2003 04:00[:00] [GMT|+0000]. */
static int parse_rfc822(const char *p, int64_t *t)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	int d, mo = 0, y, h = 0, mi = 0, sec = 0, off = 0;
	const char *m;

	while (*p == ' ')
		p++;
	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3]))
		return parse_iso(p, t);
	if (isalpha((unsigned char)*p)) { /* weekday */
		while (isalpha((unsigned char)*p))
			p++;
		if (*p == ',')
			p++;
		while (*p == ' ')
			p++;
	}
	if (digits(&p, 1, 2, &d))
		return -1;
	while (*p == ' ' || *p == '-')
		p++;
	for (m = months; *m; m += 3)
		if (!strncasecmp(p, m, 3)) {
			mo = (int)(m - months) / 3 + 1;
			break;
		}
	if (!mo)
		return -1;
	while (isalpha((unsigned char)*p))
		p++;
	while (*p == ' ' || *p == '-')
		p++;
	const char *ys = p;
	if (digits(&p, 2, 4, &y))
		return -1;
	if (p - ys == 2)
		y += y < 50 ? 2000 : 1900;
	while (*p == ' ')
		p++;
	if (isdigit((unsigned char)*p)) {
		if (digits(&p, 1, 2, &h) || *p++ != ':' || digits(&p, 2, 2, &mi))
			return -1;
		if (*p == ':' && (p++, digits(&p, 2, 2, &sec)))
			return -1;
		if (parse_zone(p, &off) < 0)
			return -1;
	}
	return make_time(y, mo, d, h, mi, sec, off, t);
}

/* Normalises a date to RFC 3339 UTC in out[32]; NULL when unreadable. */
static const char *norm_date(const struct qn_buf *b, int rfc822, char out[32])
{
	int64_t t;

	if (!b->len || (rfc822 ? parse_rfc822(b->data, &t) : parse_iso(b->data, &t)) < 0)
		return NULL;
	qn_time_rfc3339(t, out);
	return out;
}

/* ---- tree modes: generic and XPath ------------------------------------- */

static xmlDocPtr load_tree(struct xrun *x)
{
	struct qn_buf raw;
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc = NULL;
	size_t lim = x->max_bytes;
	int rc;

	if (lim > INT_MAX)
		lim = INT_MAX;
	qn_buf_init(&raw, QN_BUF_UNLIMITED);
	rc = qn_rd_slurp(x->rd, &raw, lim, &x->rerr);
	if (rc == QN_RD_TOOLONG) {
		ix_fail(x->s, "larger than %zu bytes, too big to load as one tree; raise the "
			      "per-document limit or use a streaming preset (mediawiki, rss, atom)",
			lim);
		goto out;
	}
	if (rc < 0) {
		ix_fail(x->s, "%s", x->rerr.msg);
		goto out;
	}
	if (raw.len && guard_scan(&x->guard, raw.data, raw.len) < 0) {
		ix_fail(x->s, "a start tag with more than %d attributes", MAX_ATTRS);
		goto out;
	}
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		ix_fail(x->s, "out of memory");
		goto out;
	}
	doc = xmlCtxtReadMemory(ctxt, raw.data ? raw.data : "", (int)raw.len, NULL, NULL, PARSE_OPTS);
	if (!doc || !xmlDocGetRootElement(doc)) {
		fail_parse(x, raw.len ? "not well-formed XML" : "empty input");
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	if (doc && doc->encoding)
		snprintf(x->s->charset, sizeof x->s->charset, "%s", (const char *)doc->encoding);
out:
	qn_buf_release(&raw);
	return doc;
}

static char *qname(xmlNodePtr n)
{
	size_t k;
	char *q;

	if (!n->ns || !n->ns->prefix)
		return strdup((const char *)n->name);
	k = strlen((const char *)n->ns->prefix) + strlen((const char *)n->name) + 2;
	q = malloc(k);
	if (q)
		snprintf(q, k, "%s:%s", (const char *)n->ns->prefix, (const char *)n->name);
	return q;
}

static int run_generic(struct xrun *x, xmlDocPtr doc)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	struct qn_buf text;
	char *rn;
	json_t *meta;
	int rc = 0;

	qn_buf_init(&text, x->max_bytes);
	if (node_text(x, root, W_BLOCK, &text) < 0) {
		ix_fail(x->s, "%s", walk_error_msg(x));
		qn_buf_release(&text);
		return -1;
	}
	if (text.len) {
		meta = json_object();
		rn = qname(root);
		json_object_set_new(meta, "root", json_string(rn ? rn : ""));
		free(rn);
		rc = emit(x, NULL, NULL, &text, meta, NULL);
	}
	qn_buf_release(&text);
	return rc;
}

static void register_ns(xmlXPathContextPtr xp, xmlDocPtr doc)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlNsPtr def = root ? xmlSearchNs(doc, root, NULL) : NULL;
	const char *mw = NS_MW_DEFAULT;

	xmlXPathRegisterNs(xp, BAD_CAST "atom", BAD_CAST NS_ATOM);
	xmlXPathRegisterNs(xp, BAD_CAST "content", BAD_CAST NS_CONTENT);
	xmlXPathRegisterNs(xp, BAD_CAST "dc", BAD_CAST NS_DC);
	xmlXPathRegisterNs(xp, BAD_CAST "media", BAD_CAST NS_MEDIA);
	if (def && def->href && !strncmp((const char *)def->href, NS_MW_PREFIX, strlen(NS_MW_PREFIX)))
		mw = (const char *)def->href;
	xmlXPathRegisterNs(xp, BAD_CAST "mw", BAD_CAST mw);
	for (xmlNsPtr ns = root ? root->nsDef : NULL; ns; ns = ns->next)
		if (ns->prefix && ns->href)
			xmlXPathRegisterNs(xp, ns->prefix, ns->href);
	if (def && def->href && def->href[0])
		xmlXPathRegisterNs(xp, BAD_CAST "d", def->href);
}

static xmlXPathCompExprPtr compile(struct xrun *x, const char *expr, const char *what)
{
	xmlXPathCompExprPtr c = xmlXPathCompile(BAD_CAST expr);
	if (!c) {
		if (x->err.have)
			ix_fail(x->s, "%s '%s': %s", what, expr, x->err.msg);
		else
			ix_fail(x->s, "%s '%s': invalid expression", what, expr);
		memset(&x->err, 0, sizeof x->err);
	}
	return c;
}

/*
 * Evaluates c at node: a node-set gives its nodes' text (blank lines
 * between; only the first for mode W_FLAT), anything else its string value.
 */
static int eval_text(struct xrun *x, xmlXPathContextPtr xp, xmlXPathCompExprPtr c, xmlNodePtr node,
		     enum walk_mode mode, struct qn_buf *out)
{
	xmlXPathObjectPtr r;
	struct qn_buf one;
	int rc = 0;

	qn_buf_reset(out);
	xp->node = node;
	r = xmlXPathCompiledEval(c, xp);
	if (!r)
		return -2;
	if (r->type == XPATH_NODESET) {
		int n = r->nodesetval ? r->nodesetval->nodeNr : 0;
		qn_buf_init(&one, out->max);
		for (int i = 0; i < n && rc == 0; i++) {
			if (node_text(x, r->nodesetval->nodeTab[i], mode, &one) < 0) {
				rc = -1;
				break;
			}
			if (!one.len)
				continue;
			if ((out->len && qn_buf_add(out, "\n\n", 2) < 0) ||
			    qn_buf_add(out, one.data, one.len) < 0) {
				x->walk_error = 1;
				rc = -1;
			}
			if (mode == W_FLAT)
				break;
		}
		qn_buf_release(&one);
	} else {
		xmlChar *v = xmlXPathCastToString(r);
		if (v && qn_buf_adds(out, (const char *)v) < 0) {
			x->walk_error = 1;
			rc = -1;
		}
		xmlFree(v);
	}
	xmlXPathFreeObject(r);
	return rc;
}

/* XML node path by element names, for metadata ("/rss/channel/item"). */
static void node_path(xmlNodePtr n, struct qn_buf *out)
{
	const xmlChar *names[64];
	int k = 0;

	qn_buf_reset(out);
	for (; n && n->type == XML_ELEMENT_NODE && k < 64; n = n->parent)
		names[k++] = n->name;
	while (k--) {
		qn_buf_addc(out, '/');
		qn_buf_adds(out, (const char *)names[k]);
	}
}

static int run_xpath(struct xrun *x, xmlDocPtr doc)
{
	const struct ix_opts *o = x->s->opt;
	xmlXPathContextPtr xp = xmlXPathNewContext(doc);
	xmlXPathCompExprPtr sel = NULL, idc = NULL, textc = NULL, *metac = NULL;
	xmlXPathObjectPtr set = NULL;
	struct qn_buf text, field, path;
	int rc = -1, n = 0;
	char *rn = NULL;

	qn_buf_init(&text, x->max_bytes);
	qn_buf_init(&field, FIELD_MAX);
	qn_buf_init(&path, FIELD_MAX);
	memset(&x->err, 0, sizeof x->err);
	if (!xp) {
		ix_fail(x->s, "out of memory");
		goto out;
	}
	register_ns(xp, doc);
	if (!(sel = compile(x, o->xpath, "xpath")))
		goto out;
	if (o->id_xpath && !(idc = compile(x, o->id_xpath, "id xpath")))
		goto out;
	if (o->text_xpath && !(textc = compile(x, o->text_xpath, "text xpath")))
		goto out;
	if (o->nmeta > 0 && !(metac = calloc((size_t)o->nmeta, sizeof *metac))) {
		ix_fail(x->s, "out of memory");
		goto out;
	}
	for (int i = 0; i < o->nmeta; i++)
		if (!(metac[i] = compile(x, o->meta_xpath[i], "meta xpath")))
			goto out;
	xp->node = (xmlNodePtr)doc;
	set = xmlXPathCompiledEval(sel, xp);
	if (!set || set->type != XPATH_NODESET) {
		if (x->err.have)
			ix_fail(x->s, "xpath '%s': %s", o->xpath, x->err.msg);
		else
			ix_fail(x->s, "xpath '%s' does not select nodes", o->xpath);
		memset(&x->err, 0, sizeof x->err);
		goto out;
	}
	n = set->nodesetval ? set->nodesetval->nodeNr : 0;
	rn = qname(xmlDocGetRootElement(doc));
	rc = 0;
	for (int i = 0; i < n; i++) {
		xmlNodePtr node = set->nodesetval->nodeTab[i];
		char key[32], *id = NULL;
		json_t *meta;
		int r;

		snprintf(key, sizeof key, "node:%d", i + 1);
		r = textc ? eval_text(x, xp, textc, node, W_BLOCK, &text)
			  : node_text(x, node, W_BLOCK, &text);
		if (r < 0) {
			ix_fail(x->s, "%s: %s", key, r == -2 ? "text xpath failed" : walk_error_msg(x));
			if (x->walk_error == 2)
				break;
			continue;
		}
		if (!text.len)
			continue;
		if (idc && eval_text(x, xp, idc, node, W_FLAT, &field) == 0 && field.len)
			id = strdup(field.data);
		meta = json_object();
		json_object_set_new(meta, "root", json_string(rn ? rn : ""));
		if (node->type == XML_ELEMENT_NODE) {
			node_path(node, &path);
			meta_str(meta, "xml_path", &path);
		}
		for (int m = 0; m < o->nmeta; m++)
			if (eval_text(x, xp, metac[m], node, W_FLAT, &field) == 0)
				json_object_set_new(meta, o->meta_name[m],
						    json_stringn(field.data ? field.data : "", field.len));
		r = emit(x, key, id, &text, meta, NULL);
		free(id);
		if (r < 0) {
			rc = -1;
			break;
		}
	}
out:
	free(rn);
	xmlXPathFreeObject(set);
	xmlXPathFreeCompExpr(sel);
	xmlXPathFreeCompExpr(idc);
	xmlXPathFreeCompExpr(textc);
	for (int i = 0; metac && i < o->nmeta; i++)
		xmlXPathFreeCompExpr(metac[i]);
	free(metac);
	if (xp)
		xmlXPathFreeContext(xp);
	qn_buf_release(&text);
	qn_buf_release(&field);
	qn_buf_release(&path);
	return rc;
}

/* ---- streaming presets -------------------------------------------------- */

static int io_read(void *ctx, char *buf, int len)
{
	struct xrun *x = ctx;
	ssize_t n = qn_rd_read(x->rd, buf, (size_t)len, &x->rerr);
	if (n < 0) {
		x->rd_failed = 1;
		return -1;
	}
	if (guard_scan(&x->guard, buf, (size_t)n) < 0) {
		qn_errf(&x->rerr, "a start tag with more than %d attributes", MAX_ATTRS);
		x->rd_failed = 1;
		return -1;
	}
	return (int)n;
}

static int io_close(void *ctx)
{
	(void)ctx;
	return 0;
}

static void reader_error(void *ctx, xmlErrorPtr err)
{
	on_error(ctx, err);
}

enum preset { P_MEDIAWIKI, P_RSS, P_ATOM };

/* Fields of the record being read; buffers reused across records. */
struct rec {
	struct qn_buf title, id, ns, url, date, date2, author, body, text, feed_title;
	int redirect, body_html, nrev;
};

static void rec_init(struct rec *r, size_t max)
{
	qn_buf_init(&r->title, FIELD_MAX);
	qn_buf_init(&r->id, FIELD_MAX);
	qn_buf_init(&r->ns, FIELD_MAX);
	qn_buf_init(&r->url, FIELD_MAX);
	qn_buf_init(&r->date, FIELD_MAX);
	qn_buf_init(&r->date2, FIELD_MAX);
	qn_buf_init(&r->author, FIELD_MAX);
	qn_buf_init(&r->body, max);
	qn_buf_init(&r->text, max);
	qn_buf_init(&r->feed_title, FIELD_MAX);
	r->redirect = r->body_html = r->nrev = 0;
}

static void rec_reset(struct rec *r)
{
	qn_buf_reset(&r->title);
	qn_buf_reset(&r->id);
	qn_buf_reset(&r->ns);
	qn_buf_reset(&r->url);
	qn_buf_reset(&r->date);
	qn_buf_reset(&r->date2);
	qn_buf_reset(&r->author);
	qn_buf_reset(&r->body);
	r->redirect = r->body_html = r->nrev = 0;
}

static void rec_release(struct rec *r)
{
	qn_buf_release(&r->title);
	qn_buf_release(&r->id);
	qn_buf_release(&r->ns);
	qn_buf_release(&r->url);
	qn_buf_release(&r->date);
	qn_buf_release(&r->date2);
	qn_buf_release(&r->author);
	qn_buf_release(&r->body);
	qn_buf_release(&r->text);
	qn_buf_release(&r->feed_title);
}

/* A field's text; a field too long is cut to nothing rather than failing the record. */
static void field(struct xrun *x, xmlNodePtr n, enum walk_mode mode, struct qn_buf *out)
{
	if (node_text(x, n, mode, out) < 0)
		qn_buf_reset(out);
}

static int is_redirect_text(const struct qn_buf *b)
{
	size_t i = 0;
	while (i < b->len && is_ws((unsigned char)b->data[i]))
		i++;
	return b->len - i >= 9 && !strncasecmp(b->data + i, "#REDIRECT", 9);
}

static int mw_revision(struct xrun *x, struct rec *r, xmlNodePtr rev)
{
	xmlNodePtr t = child(rev, "text"), ts = child(rev, "timestamp");

	r->nrev++;
	field(x, ts, W_FLAT, &r->date);
	if (node_text(x, t, W_RAW, &r->body) < 0) {
		qn_buf_reset(&r->body);
		return -1;
	}
	return 0;
}

static int mw_emit(struct xrun *x, struct rec *r)
{
	char key[128], created[32];
	const char *cr;
	json_t *meta;
	char *end;
	long long v;

	if (r->redirect || is_redirect_text(&r->body) || !r->body.len)
		return 0;
	qn_buf_reset(&r->text);
	if (ix_wikitext(r->body.data, r->body.len, &r->text) < 0) {
		ix_fail(x->s, "page %s: text larger than the per-document limit",
			r->id.len ? r->id.data : "?");
		return 0;
	}
	if (!r->text.len)
		return 0;
	meta = json_object();
	meta_str(meta, "title", &r->title);
	if (r->id.len)
		snprintf(key, sizeof key, "page:%s", r->id.data);
	else
		snprintf(key, sizeof key, "page#%llu", (unsigned long long)x->nrec);
	if (r->ns.len) {
		v = strtoll(r->ns.data, &end, 10);
		json_object_set_new(meta, "namespace", *end ? json_stringn(r->ns.data, r->ns.len)
							    : json_integer(v));
	}
	if (r->id.len) {
		v = strtoll(r->id.data, &end, 10);
		json_object_set_new(meta, "page_id", *end ? json_stringn(r->id.data, r->id.len)
							  : json_integer(v));
	}
	cr = norm_date(&r->date, 0, created);
	return emit(x, key, NULL, &r->text, meta, cr);
}

/* Renders an RSS/Atom body (HTML or text) into r->text. */
static void feed_body(struct xrun *x, struct rec *r)
{
	struct qn_err e;
	json_t *scratch;

	qn_buf_reset(&r->text);
	if (!r->body.len)
		return;
	if (r->body_html) {
		struct ix_html_opts ho = x->s->opt->html;
		ho.full = 1;
		scratch = json_object();
		if (ix_html_extract(r->body.data, r->body.len, &ho, &r->text, scratch, &e) == 0) {
			json_decref(scratch);
			return;
		}
		json_decref(scratch);
		qn_buf_reset(&r->text);
	}
	/* Plain text: as it is, trimmed. */
	struct qn_buf *b = &r->body;
	size_t i = 0;
	while (i < b->len && is_ws((unsigned char)b->data[i]))
		i++;
	qn_buf_add(&r->text, b->data + i, b->len - i);
	qn_buf_rtrim(&r->text);
}

static void rss_item(struct xrun *x, struct rec *r, xmlNodePtr item)
{
	int have_encoded = 0;

	for (xmlNodePtr c = item->children; c; c = c->next) {
		const char *ns, *nm;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		ns = ns_of(c);
		nm = (const char *)c->name;
		int core = !*ns || !strcmp(ns, "http://purl.org/rss/1.0/");
		if (core && !strcmp(nm, "title")) {
			field(x, c, W_FLAT, &r->title);
		} else if (core && !strcmp(nm, "link")) {
			field(x, c, W_FLAT, &r->url);
		} else if (!strcmp(nm, "link") && !r->url.len) {
			char href[2048];
			attr(c, "href", href, sizeof href);
			qn_buf_reset(&r->url);
			qn_buf_adds(&r->url, href);
		} else if (core && !strcmp(nm, "guid")) {
			field(x, c, W_FLAT, &r->id);
		} else if (core && !strcmp(nm, "pubDate")) {
			field(x, c, W_FLAT, &r->date);
		} else if (!strcmp(ns, NS_DC) && !strcmp(nm, "date")) {
			field(x, c, W_FLAT, &r->date2);
		} else if ((core && !strcmp(nm, "author")) || (!strcmp(ns, NS_DC) && !strcmp(nm, "creator"))) {
			if (!r->author.len)
				field(x, c, W_FLAT, &r->author);
		} else if (!strcmp(nm, "encoded") || (core && !strcmp(nm, "description") && !have_encoded)) {
			have_encoded |= !strcmp(nm, "encoded");
			if (node_text(x, c, W_RAW, &r->body) < 0)
				qn_buf_reset(&r->body);
			r->body_html = 1;
		}
	}
}

/* Atom text constructs: type="text" (default), "html", "xhtml". */
static void atom_text(struct xrun *x, struct rec *r, xmlNodePtr c)
{
	char type[64];

	attr(c, "type", type, sizeof type);
	r->body_html = 0;
	if (!strcmp(type, "xhtml")) {
		if (node_text(x, c, W_BLOCK, &r->body) < 0)
			qn_buf_reset(&r->body);
		return;
	}
	if (*type && strcmp(type, "html") && strcmp(type, "text") && strncmp(type, "text/", 5)) {
		qn_buf_reset(&r->body); /* base64 media and the like */
		return;
	}
	r->body_html = !strcmp(type, "html") || !strcmp(type, "text/html");
	if (node_text(x, c, W_RAW, &r->body) < 0)
		qn_buf_reset(&r->body);
}

static void atom_entry(struct xrun *x, struct rec *r, xmlNodePtr e)
{
	int have_content = 0;
	char buf[2048];

	for (xmlNodePtr c = e->children; c; c = c->next) {
		const char *nm;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		nm = (const char *)c->name;
		if (!strcmp(nm, "title")) {
			field(x, c, W_FLAT, &r->title);
		} else if (!strcmp(nm, "id")) {
			field(x, c, W_FLAT, &r->id);
		} else if (!strcmp(nm, "link")) {
			attr(c, "rel", buf, sizeof buf);
			if (!r->url.len && (!*buf || !strcmp(buf, "alternate"))) {
				attr(c, "href", buf, sizeof buf);
				qn_buf_adds(&r->url, buf);
			}
		} else if (!strcmp(nm, "published")) {
			field(x, c, W_FLAT, &r->date);
		} else if (!strcmp(nm, "updated")) {
			field(x, c, W_FLAT, &r->date2);
		} else if (!strcmp(nm, "author")) {
			if (!r->author.len)
				field(x, child(c, "name"), W_FLAT, &r->author);
		} else if (!strcmp(nm, "content")) {
			atom_text(x, r, c);
			have_content = 1;
		} else if (!strcmp(nm, "summary") && !have_content) {
			atom_text(x, r, c);
		}
	}
}

static int feed_emit(struct xrun *x, struct rec *r, enum preset p)
{
	char key[64], created[32];
	const char *cr;
	json_t *meta;

	feed_body(x, r);
	if (!r->text.len)
		return 0;
	meta = json_object();
	meta_str(meta, "title", &r->title);
	meta_str(meta, "url", &r->url);
	meta_str(meta, "author", &r->author);
	meta_str(meta, "feed_title", &r->feed_title);
	cr = norm_date(&r->date, p == P_RSS, created);
	if (!cr)
		cr = norm_date(&r->date2, 0, created);
	snprintf(key, sizeof key, "%s:%llu", p == P_RSS ? "item" : "entry",
		 (unsigned long long)x->nrec);
	return emit(x, r->id.len ? r->id.data : r->url.len ? r->url.data : key, NULL, &r->text, meta,
		    cr);
}

enum step { S_READ, S_NEXT, S_STOP, S_BROKEN };

struct pstate {
	enum preset p;
	struct rec r;
	int page_depth, feed_depth;
};

/* Handles the node under the reader; says how to move on. */
static enum step preset_step(struct xrun *x, struct pstate *ps, xmlTextReaderPtr rd)
{
	static const char *const record[] = {"page", "item", "entry"};
	struct rec *r = &ps->r;
	int type = xmlTextReaderNodeType(rd), depth = xmlTextReaderDepth(rd);
	const char *name = (const char *)xmlTextReaderConstLocalName(rd);
	xmlNodePtr n;

	if (!name)
		return S_READ;
	if (ps->page_depth >= 0) { /* inside a MediaWiki <page> */
		if (type == XML_READER_TYPE_END_ELEMENT && depth == ps->page_depth) {
			ps->page_depth = -1;
			x->nrec++;
			return mw_emit(x, r) < 0 ? S_STOP : S_READ;
		}
		if (type != XML_READER_TYPE_ELEMENT || depth != ps->page_depth + 1)
			return S_READ;
		if (!strcmp(name, "redirect")) {
			r->redirect = 1;
			return S_NEXT;
		}
		if (strcmp(name, "title") && strcmp(name, "ns") && strcmp(name, "id") &&
		    strcmp(name, "revision"))
			return S_NEXT;
		if (!(n = xmlTextReaderExpand(rd)))
			return S_BROKEN;
		if (!strcmp(name, "title"))
			field(x, n, W_FLAT, &r->title);
		else if (!strcmp(name, "ns"))
			field(x, n, W_FLAT, &r->ns);
		else if (!strcmp(name, "id"))
			field(x, n, W_FLAT, &r->id);
		else if (mw_revision(x, r, n) < 0)
			ix_fail(x->s, "page %s: %s", r->id.len ? r->id.data : "?", walk_error_msg(x));
		return S_NEXT;
	}
	if (type != XML_READER_TYPE_ELEMENT)
		return S_READ;
	if (!strcmp(name, record[ps->p])) {
		if (xmlTextReaderIsEmptyElement(rd))
			return S_READ;
		rec_reset(r);
		if (ps->p == P_MEDIAWIKI) {
			ps->page_depth = depth;
			return S_READ;
		}
		if (!(n = xmlTextReaderExpand(rd)))
			return S_BROKEN;
		x->nrec++;
		if (ps->p == P_RSS)
			rss_item(x, r, n);
		else
			atom_entry(x, r, n);
		return feed_emit(x, r, ps->p) < 0 ? S_STOP : S_NEXT;
	}
	if (ps->p == P_MEDIAWIKI)
		return !strcmp(name, "siteinfo") ? S_NEXT : S_READ;
	if (!strcmp(name, "channel") || !strcmp(name, "feed")) {
		ps->feed_depth = depth;
		return S_READ;
	}
	if (ps->feed_depth >= 0 && depth == ps->feed_depth + 1 && !strcmp(name, "title") &&
	    !r->feed_title.len) {
		if (!(n = xmlTextReaderExpand(rd)))
			return S_BROKEN;
		field(x, n, W_FLAT, &r->feed_title);
		return S_NEXT;
	}
	return S_READ;
}

static int run_preset(struct xrun *x, enum preset p)
{
	xmlTextReaderPtr rd;
	struct pstate ps;
	enum step st = S_READ;
	int ret, rc = 0;

	rd = xmlReaderForIO(io_read, io_close, x, NULL, NULL, PARSE_OPTS);
	if (!rd) {
		fail_parse(x, "cannot create an XML reader");
		return -1;
	}
	xmlTextReaderSetStructuredErrorHandler(rd, reader_error, &x->err);
	ps.p = p;
	ps.page_depth = ps.feed_depth = -1;
	rec_init(&ps.r, x->max_bytes);
	ret = xmlTextReaderRead(rd);
	if (ret == 1) {
		const xmlChar *enc = xmlTextReaderConstEncoding(rd);
		if (enc)
			snprintf(x->s->charset, sizeof x->s->charset, "%s", (const char *)enc);
	}
	while (ret == 1) {
		st = preset_step(x, &ps, rd);
		if (st == S_STOP || st == S_BROKEN)
			break;
		ret = st == S_NEXT ? xmlTextReaderNext(rd) : xmlTextReaderRead(rd);
	}
	if (st == S_STOP) {
		rc = -1;
	} else if (st == S_BROKEN || ret < 0 || x->rd_failed) {
		/* libxml2 cannot resync: keep what was emitted, stop here. */
		fail_parse(x, "not well-formed XML");
		rc = x->s->docs ? 0 : -1;
	} else if (ps.page_depth >= 0) {
		fail_parse(x, "unexpected end of input inside a <page>");
		rc = x->s->docs ? 0 : -1;
	}
	rec_release(&ps.r);
	xmlFreeTextReader(rd);
	return rc;
}

int ix_xml(struct ix_sink *s, struct qn_rd *rd, const char *preset)
{
	struct xrun x;
	xmlDocPtr doc;
	int rc;

	ix_xml_harden();
	memset(&x, 0, sizeof x);
	x.s = s;
	x.rd = rd;
	x.max_bytes = s->opt && s->opt->max_bytes ? s->opt->max_bytes : DEFAULT_MAX_BYTES;
	x.entity_budget = ENTITY_NODE_BUDGET;
	x.stk = malloc(WALK_MAX_DEPTH * sizeof *x.stk);
	x.stkf = malloc(WALK_MAX_DEPTH);
	if (!x.stk || !x.stkf) {
		free(x.stk);
		free(x.stkf);
		ix_fail(s, "out of memory");
		return -1;
	}
	errs_begin(&x);
	if (preset) {
		enum preset p;
		if (!strcmp(preset, "mediawiki"))
			p = P_MEDIAWIKI;
		else if (!strcmp(preset, "rss"))
			p = P_RSS;
		else if (!strcmp(preset, "atom"))
			p = P_ATOM;
		else {
			ix_fail(s, "unknown XML preset '%s'", preset);
			rc = -1;
			goto out;
		}
		s->format = p == P_MEDIAWIKI ? "mediawiki" : p == P_RSS ? "rss" : "atom";
		rc = run_preset(&x, p);
	} else {
		if (!s->format)
			s->format = "xml";
		doc = load_tree(&x);
		if (!doc) {
			rc = -1;
			goto out;
		}
		rc = s->opt->xpath ? run_xpath(&x, doc) : run_generic(&x, doc);
		xmlFreeDoc(doc);
	}
out:
	errs_end(&x);
	free(x.stk);
	free(x.stkf);
	return rc;
}
