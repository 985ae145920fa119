/*
 * mail.c - e-mail for quern-ingest: one .eml message, or an mbox archive of
 * many, each message becoming one document.
 *
 * A message is held in memory whole (at most opt->max_bytes) and parsed on
 * (pointer, length) pairs, never relying on a terminating NUL: headers are
 * unfolded and RFC 2047-decoded into metadata, the Date becomes "created",
 * and the MIME tree is walked for its text (text/plain preferred within
 * multipart/alternative, text/html through ix_html_extract with full set,
 * quoted-printable and base64 undone, the charset converted to UTF-8).
 * Attachments are counted, never extracted. Broken MIME is read the way
 * mail clients read it and recorded in metadata "mime_error"; only a
 * message with neither text nor subject, or one over the size limit, is a
 * failure. Hostile input is bounded: nesting depth, part count, and every
 * buffer's size follow from the message size.
 *
 * mbox archives are streamed line by line (qn_rd_line), so memory follows
 * the largest message, not the archive. Messages start at "From " lines at
 * the start of the file or after a blank line; ">From " quoting (mboxo and
 * mboxrd) is undone in bodies.
 *
 * All buffers belong to struct mail, which lives for one input.
 */
#include "ingest.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "charset.h"
#include "doc.h"
#include "err.h"
#include "html.h"
#include "rd.h"
#include "utf8.h"

#define MAIL_MAX_DEFAULT ((size_t)64 << 20) /* when opt->max_bytes is 0 */
#define MAX_DEPTH 32			    /* MIME nesting */
#define MAX_PARTS 1000			    /* MIME entities per message */
#define MAX_NAMES 100			    /* attachment names listed */
#define MAX_BOUNDARY 200		    /* RFC 2046 says 70; be lenient */

struct span {
	const char *p;
	size_t n;
};

enum { H_FROM, H_TO, H_CC, H_DATE, H_SUBJECT, H_MSGID, H_IRT, H_CTYPE, H_CTE, H_CDISP, H_N };

static const char *const hdr_names[H_N] = {"from",
					   "to",
					   "cc",
					   "date",
					   "subject",
					   "message-id",
					   "in-reply-to",
					   "content-type",
					   "content-transfer-encoding",
					   "content-disposition"};

/* The first occurrence of each header we use; p == NULL when absent. */
struct hdrs {
	struct span v[H_N];
};

struct mail {
	struct ix_sink *s;
	struct ix_html_opts html;
	size_t max;	      /* bytes per message */
	struct qn_buf text;   /* the body text being assembled */
	struct qn_buf raw;    /* one part, transfer encoding undone */
	struct qn_buf conv;   /* one part in UTF-8 */
	struct qn_buf quoted; /* text after quote handling */
	struct qn_buf h1, h2; /* header values: unfolded, decoded */
	struct qn_buf pa, pb; /* parameter values */
	json_t *names;	      /* attachment names */
	long attachments;
	int parts;
	const char *mime_error; /* the first one */
	char charset[64];	/* of the first text part */
};

/* ---- small helpers -------------------------------------------------------- */

static size_t bufmax(size_t max, size_t times)
{
	if (max > (QN_BUF_UNLIMITED - 65536) / times)
		return QN_BUF_UNLIMITED;
	return max * times + 65536;
}

static void mail_init(struct mail *m, struct ix_sink *s)
{
	size_t max = s->opt && s->opt->max_bytes ? s->opt->max_bytes : MAIL_MAX_DEFAULT;

	memset(m, 0, sizeof *m);
	m->s = s;
	m->max = max;
	if (s->opt)
		m->html = s->opt->html;
	/* E-mails have no site chrome to remove: keep all visible text. */
	m->html.full = 1;
	/* A charset conversion may triple the bytes (windows-1252 to UTF-8). */
	qn_buf_init(&m->text, bufmax(max, 4));
	qn_buf_init(&m->raw, bufmax(max, 1));
	qn_buf_init(&m->conv, bufmax(max, 4));
	qn_buf_init(&m->quoted, bufmax(max, 4));
	qn_buf_init(&m->h1, bufmax(max, 1));
	qn_buf_init(&m->h2, bufmax(max, 4));
	qn_buf_init(&m->pa, bufmax(max, 1));
	qn_buf_init(&m->pb, bufmax(max, 4));
}

static void mail_release(struct mail *m)
{
	qn_buf_release(&m->text);
	qn_buf_release(&m->raw);
	qn_buf_release(&m->conv);
	qn_buf_release(&m->quoted);
	qn_buf_release(&m->h1);
	qn_buf_release(&m->h2);
	qn_buf_release(&m->pa);
	qn_buf_release(&m->pb);
	json_decref(m->names);
	m->names = NULL;
}

static void mail_reset(struct mail *m)
{
	qn_buf_reset(&m->text);
	json_decref(m->names);
	m->names = NULL;
	m->attachments = 0;
	m->parts = 0;
	m->mime_error = NULL;
	m->charset[0] = 0;
}

static void mime_error(struct mail *m, const char *what)
{
	if (!m->mime_error)
		m->mime_error = what;
}

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int prefix_ci(const char *p, size_t n, const char *w)
{
	size_t k = strlen(w);

	return n >= k && !strncasecmp(p, w, k);
}

static int span_eq_ci(const char *p, size_t n, const char *w)
{
	return strlen(w) == n && !strncasecmp(p, w, n);
}

static void trim(const char **p, size_t *n)
{
	while (*n && is_space(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n && is_space((*p)[*n - 1]))
		(*n)--;
}

/* End of the line at pos (before "\r\n" or "\n"); *next is past the '\n'. */
static size_t line_end(const char *p, size_t n, size_t pos, size_t *next)
{
	const char *nl = memchr(p + pos, '\n', n - pos);
	size_t end;

	if (!nl) {
		*next = n;
		end = n;
	} else {
		end = (size_t)(nl - p);
		*next = end + 1;
	}
	if (end > pos && p[end - 1] == '\r')
		end--;
	return end;
}

/* Appends bytes in charset label (may be unknown or NULL) as UTF-8. */
static int add_charset(struct qn_buf *out, const char *label, const char *p, size_t n)
{
	char canon[64];
	const char *cs = label ? qn_charset_canon(label, canon) : NULL;
	struct qn_err e;

	if (!cs)
		cs = qn_utf8_valid(p, n) ? "UTF-8" : "WINDOWS-1252";
	if (qn_to_utf8(cs, p, n, out, &e) < 0) {
		if (!strcmp(cs, "UTF-8"))
			return -1;
		return qn_utf8_repair(out, p, n) < 0 ? -1 : 0;
	}
	return 0;
}

/* Raw header bytes: UTF-8 when valid (RFC 6532), else windows-1252. */
static int add_plain(struct qn_buf *out, const char *p, size_t n)
{
	return add_charset(out, NULL, p, n);
}

/* ---- transfer encodings --------------------------------------------------- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Base64, ignoring whitespace and junk; missing padding is fine. */
static int b64_decode(const char *p, size_t n, struct qn_buf *out)
{
	uint32_t acc = 0;
	int k = 0;
	char *o;

	if (qn_buf_grow(out, n / 4 * 3 + 3) < 0)
		return -1;
	o = out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)p[i]);
		if (v < 0) {
			if (p[i] == '=') {
				/* Padding ends a group; another may follow (concatenated). */
				if (k == 2) {
					*o++ = (char)(acc >> 4);
				} else if (k == 3) {
					*o++ = (char)(acc >> 10);
					*o++ = (char)(acc >> 2);
				}
				k = 0;
				acc = 0;
			}
			continue;
		}
		acc = acc << 6 | (uint32_t)v;
		if (++k == 4) {
			*o++ = (char)(acc >> 16);
			*o++ = (char)(acc >> 8);
			*o++ = (char)acc;
			k = 0;
			acc = 0;
		}
	}
	if (k == 2) {
		*o++ = (char)(acc >> 4);
	} else if (k == 3) {
		*o++ = (char)(acc >> 10);
		*o++ = (char)(acc >> 2);
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = 0;
	return 0;
}

/*
 * Quoted-printable: "=XX", soft line breaks ("=" at the end of a line), and
 * whitespace before a line break (added in transport) dropped; CRLF becomes
 * LF. A stray '=' stays as it is.
 */
static int qp_decode(const char *p, size_t n, struct qn_buf *out)
{
	size_t i = 0;
	char *o;

	if (qn_buf_grow(out, n) < 0)
		return -1;
	o = out->data + out->len;
	while (i < n) {
		char c = p[i];
		if (c == '=') {
			int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				*o++ = (char)(hi << 4 | lo);
				i += 3;
				continue;
			}
			size_t j = i + 1;
			while (j < n && is_wsp(p[j]))
				j++;
			if (j < n && p[j] == '\r')
				j++;
			if (j == n || p[j] == '\n') {
				i = j < n ? j + 1 : n;
				continue;
			}
			*o++ = '=';
			i++;
		} else if (is_wsp(c)) {
			size_t j = i;
			while (j < n && is_wsp(p[j]))
				j++;
			if (j == n || p[j] == '\n' ||
			    (p[j] == '\r' && j + 1 < n && p[j + 1] == '\n')) {
				i = j;
				continue;
			}
			memcpy(o, p + i, j - i);
			o += j - i;
			i = j;
		} else if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
			i++;
		} else {
			*o++ = c;
			i++;
		}
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = 0;
	return 0;
}

/* ---- RFC 2047 encoded words ----------------------------------------------- */

struct eword {
	const char *cs;
	size_t csn;
	char enc;
	const char *txt;
	size_t txtn;
	size_t len; /* of the whole word */
};

/* Recognises "=?charset?B|Q?text?=" at p. */
static int eword_parse(const char *p, size_t n, struct eword *w)
{
	size_t i = 2, c0;

	if (n < 8 || p[0] != '=' || p[1] != '?')
		return 0;
	c0 = i;
	while (i < n && p[i] != '?' && !is_space(p[i]) && i - c0 < 63)
		i++;
	if (i == c0 || i + 3 >= n || p[i] != '?' || p[i + 2] != '?')
		return 0;
	w->cs = p + c0;
	w->csn = i - c0;
	/* RFC 2231 adds "*language" to the charset. */
	for (size_t k = 0; k < w->csn; k++)
		if (w->cs[k] == '*') {
			w->csn = k;
			break;
		}
	w->enc = (char)toupper((unsigned char)p[i + 1]);
	if (w->enc != 'B' && w->enc != 'Q')
		return 0;
	i += 3;
	w->txt = p + i;
	while (i < n && p[i] != '?' && !is_space(p[i]))
		i++;
	if (i + 1 >= n || p[i] != '?' || p[i + 1] != '=')
		return 0;
	w->txtn = (size_t)(p + i - w->txt);
	w->len = i + 2;
	return 1;
}

static int eword_decode(const struct eword *w, struct qn_buf *out)
{
	if (w->enc == 'B')
		return b64_decode(w->txt, w->txtn, out);
	if (qn_buf_grow(out, w->txtn) < 0)
		return -1;
	for (size_t i = 0; i < w->txtn; i++) {
		char c = w->txt[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=') {
			int hi = i + 1 < w->txtn ? hexval(w->txt[i + 1]) : -1;
			int lo = i + 2 < w->txtn ? hexval(w->txt[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		out->data[out->len++] = c;
	}
	out->data[out->len] = 0;
	return 0;
}

/*
 * Decodes encoded words in an (unfolded) header value into out as UTF-8.
 * Consecutive words in one charset are decoded together, so a character
 * split between two words survives; whitespace between encoded words is
 * dropped (RFC 2047 section 6.2). raw is a scratch buffer.
 */
static int decode_2047(const char *p, size_t n, struct qn_buf *out, struct qn_buf *raw)
{
	char cs[64] = "";
	size_t i = 0, plain = 0, ws = 0; /* plain run start; pending whitespace */
	int after_word = 0;

	qn_buf_reset(raw);
	while (i < n) {
		struct eword w;
		if (p[i] == '=' && i + 1 < n && p[i + 1] == '?' && eword_parse(p + i, n - i, &w)) {
			/* Text before this word, unless it is only the gap between words. */
			if (!(after_word && ws == i - plain) && i > plain) {
				if (raw->len && add_charset(out, cs, raw->data, raw->len) < 0)
					return -1;
				qn_buf_reset(raw);
				if (add_plain(out, p + plain, i - plain) < 0)
					return -1;
			}
			if (raw->len && (w.csn != strlen(cs) || strncasecmp(cs, w.cs, w.csn))) {
				if (add_charset(out, cs, raw->data, raw->len) < 0)
					return -1;
				qn_buf_reset(raw);
			}
			memcpy(cs, w.cs, w.csn);
			cs[w.csn] = 0;
			if (eword_decode(&w, raw) < 0)
				return -1;
			i += w.len;
			plain = i;
			ws = 0;
			after_word = 1;
			continue;
		}
		if (is_space(p[i]) && ws == i - plain)
			ws++;
		i++;
	}
	if (raw->len && add_charset(out, cs, raw->data, raw->len) < 0)
		return -1;
	if (i > plain && add_plain(out, p + plain, i - plain) < 0)
		return -1;
	return 0;
}

/* ---- headers -------------------------------------------------------------- */

static int header_index(const char *name, size_t n)
{
	for (int i = 0; i < H_N; i++)
		if (span_eq_ci(name, n, hdr_names[i]))
			return i;
	return -1;
}

/*
 * Reads the header block at p; returns the offset of the body. A line that
 * is neither a header nor a continuation ends the block (the blank line is
 * missing); a leading mbox "From " line of a message is skipped.
 */
static size_t parse_headers(const char *p, size_t n, struct hdrs *h, int message)
{
	size_t pos = 0, next, end;
	int cur = -1, any = 0;

	memset(h, 0, sizeof *h);
	if (message && n >= 5 && !memcmp(p, "From ", 5)) {
		line_end(p, n, 0, &next);
		pos = next;
	}
	while (pos < n) {
		end = line_end(p, n, pos, &next);
		if (end == pos)
			return next;
		if (is_wsp(p[pos])) {
			if (!any)
				return pos;
			if (cur >= 0)
				h->v[cur].n = end - (size_t)(h->v[cur].p - p);
			pos = next;
			continue;
		}
		const char *colon = memchr(p + pos, ':', end - pos);
		if (!colon || colon == p + pos)
			return pos;
		size_t nl = (size_t)(colon - (p + pos));
		while (nl && is_wsp(p[pos + nl - 1]))
			nl--;
		for (size_t k = 0; k < nl; k++) {
			unsigned char c = (unsigned char)p[pos + k];
			if (c <= 32 || c >= 127)
				return pos;
		}
		if (!nl)
			return pos;
		any = 1;
		cur = header_index(p + pos, nl);
		if (cur >= 0 && h->v[cur].p) {
			cur = -1; /* keep the first */
		} else if (cur >= 0) {
			h->v[cur].p = colon + 1;
			h->v[cur].n = end - (size_t)(colon + 1 - p);
		}
		pos = next;
	}
	return n;
}

/* Unfolds a header value: each line break with the blanks after it is one space. */
static int unfold(const struct span *v, struct qn_buf *out)
{
	const char *p = v->p;
	size_t n = v->n;

	qn_buf_reset(out);
	trim(&p, &n);
	if (qn_buf_grow(out, n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			while (i + 1 < n && is_space(p[i + 1]))
				i++;
			if (!out->len || out->data[out->len - 1] != ' ')
				out->data[out->len++] = ' ';
			continue;
		}
		out->data[out->len++] = p[i];
	}
	out->data[out->len] = 0;
	return 0;
}

/* Sets meta[key] to the header's text, decoding encoded words when asked. */
static const char *header_text(struct mail *m, const struct span *v, int words, size_t *len)
{
	struct qn_buf *out = &m->h2;

	if (!v->p || unfold(v, &m->h1) < 0)
		return NULL;
	qn_buf_reset(out);
	if (words ? decode_2047(m->h1.data ? m->h1.data : "", m->h1.len, out, &m->pa) < 0
		  : add_plain(out, m->h1.data ? m->h1.data : "", m->h1.len) < 0)
		return NULL;
	/* Control characters (decoded from words) read as spaces. */
	for (size_t i = 0; i < out->len; i++)
		if ((unsigned char)out->data[i] < 32 || out->data[i] == 127)
			out->data[i] = ' ';
	const char *p = out->data ? out->data : "";
	size_t n = out->len;
	trim(&p, &n);
	*len = n;
	return p;
}

static void meta_set_header(struct mail *m, json_t *meta, const char *key, const struct span *v,
			    int words)
{
	size_t n;
	const char *t = header_text(m, v, words, &n);

	if (t)
		json_object_set_new(meta, key, json_stringn(t, n));
}

/* ---- parameters (Content-Type, Content-Disposition) ---------------------- */

static size_t skip_cfws(const char *p, size_t n, size_t i)
{
	while (i < n) {
		if (is_space(p[i])) {
			i++;
		} else if (p[i] == '(') {
			int depth = 0;
			for (; i < n; i++) {
				if (p[i] == '\\' && i + 1 < n)
					i++;
				else if (p[i] == '(')
					depth++;
				else if (p[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
		} else {
			break;
		}
	}
	return i;
}

/* Appends a percent-encoded RFC 2231 value. */
static int pct_decode(const char *p, size_t n, struct qn_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '%') {
			int hi = i + 1 < n ? hexval(p[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		if (qn_buf_addc(out, c) < 0)
			return -1;
	}
	return 0;
}

/*
 * Finds parameter `name` in a structured header value and writes its value,
 * as UTF-8, into out. RFC 2231 forms win over the plain one: name*=cs'lang'v
 * and continuations name*0, name*1*, ... (taken in the order they appear).
 * Returns 1 when found. Uses m->pa as scratch.
 */
static int get_param(struct mail *m, const struct span *v, const char *name, struct qn_buf *out)
{
	const char *p = v->p;
	size_t n = v->n, i = 0, nlen = strlen(name);
	struct qn_buf *ext = &m->pa;
	char cs[64] = "";
	int have_plain = 0, have_ext = 0, have_cont = 0;

	if (!p)
		return 0;
	qn_buf_reset(out);
	qn_buf_reset(ext);
	/* Skip the type itself. */
	while (i < n && p[i] != ';')
		i++;
	while (i < n) {
		i = skip_cfws(p, n, i + (p[i] == ';'));
		size_t a = i;
		while (i < n && p[i] != '=' && p[i] != ';' && !is_space(p[i]))
			i++;
		size_t an = i - a;
		i = skip_cfws(p, n, i);
		if (i >= n || p[i] != '=') {
			while (i < n && p[i] != ';')
				i++;
			continue;
		}
		i = skip_cfws(p, n, i + 1);
		/* The value: quoted-string or token. */
		const char *val;
		size_t vn;
		int quoted = i < n && p[i] == '"';
		struct qn_buf *dst = NULL;
		int kind = 0; /* 1 plain, 2 extended, 3 continuation, 4 extended continuation */
		if (an == nlen && !strncasecmp(p + a, name, nlen)) {
			kind = 1;
		} else if (an > nlen && !strncasecmp(p + a, name, nlen) && p[a + nlen] == '*') {
			if (an == nlen + 1) {
				kind = 2;
			} else {
				size_t k = a + nlen + 1;
				while (k < a + an && isdigit((unsigned char)p[k]))
					k++;
				if (k > a + nlen + 1 && k == a + an)
					kind = 3;
				else if (k > a + nlen + 1 && k + 1 == a + an && p[k] == '*')
					kind = 4;
			}
		}
		if (quoted) {
			size_t start = ++i;
			while (i < n && p[i] != '"') {
				if (p[i] == '\\' && i + 1 < n)
					i++;
				i++;
			}
			val = p + start;
			vn = i - start;
			if (i < n)
				i++;
		} else {
			size_t start = i;
			while (i < n && p[i] != ';' && !is_space(p[i]))
				i++;
			val = p + start;
			vn = i - start;
		}
		while (i < n && p[i] != ';')
			i++;
		if (!kind)
			continue;
		if (kind == 1 && !have_plain) {
			have_plain = 1;
			dst = out;
			qn_buf_reset(out);
			for (size_t k = 0; k < vn; k++) {
				if (quoted && val[k] == '\\' && k + 1 < vn)
					k++;
				if (val[k] == '\r' || val[k] == '\n')
					continue;
				if (qn_buf_addc(dst, val[k]) < 0)
					return 0;
			}
		} else if (kind == 2 || kind == 4 || kind == 3) {
			if (kind == 2) {
				if (have_ext == 2)
					continue;
				qn_buf_reset(ext);
				have_ext = 2;
				cs[0] = 0;
			} else if (have_ext == 2) {
				continue;
			} else {
				have_cont = 1;
			}
			if (kind != 3) {
				/* charset'language'value, in the first extended segment. */
				const char *q1 = memchr(val, '\'', vn);
				const char *q2 =
				    q1 ? memchr(q1 + 1, '\'', vn - (size_t)(q1 + 1 - val)) : NULL;
				if (q1 && q2 && !cs[0] && (kind == 2 || !ext->len)) {
					size_t cn = (size_t)(q1 - val);
					if (cn > sizeof cs - 1)
						cn = sizeof cs - 1;
					memcpy(cs, val, cn);
					cs[cn] = 0;
					vn -= (size_t)(q2 + 1 - val);
					val = q2 + 1;
				}
				if (pct_decode(val, vn, ext) < 0)
					return 0;
			} else if (qn_buf_add(ext, val, vn) < 0) {
				return 0;
			}
		}
	}
	if (have_ext || have_cont) {
		qn_buf_reset(out);
		if (add_charset(out, cs[0] ? cs : NULL, ext->data ? ext->data : "", ext->len) < 0)
			return 0;
		return 1;
	}
	if (have_plain) {
		/* Mailers put encoded words in file names, against the RFCs. */
		if (memmem(out->data ? out->data : "", out->len, "=?", 2)) {
			qn_buf_reset(ext);
			if (qn_buf_add(ext, out->data, out->len) < 0)
				return 0;
			qn_buf_reset(out);
			struct qn_buf scratch;
			qn_buf_init(&scratch, ext->max);
			int rc = decode_2047(ext->data, ext->len, out, &scratch);
			qn_buf_release(&scratch);
			if (rc < 0)
				return 0;
		} else {
			qn_buf_reset(ext);
			if (qn_buf_add(ext, out->data ? out->data : "", out->len) < 0)
				return 0;
			qn_buf_reset(out);
			if (add_plain(out, ext->data ? ext->data : "", ext->len) < 0)
				return 0;
		}
		return 1;
	}
	return 0;
}

/* "type/subtype" lowercased; text/plain when missing or malformed. */
static void media_type(const struct span *v, char type[32], char sub[64])
{
	const char *p = v->p;
	size_t n = v->n, i, k;

	strcpy(type, "text");
	strcpy(sub, "plain");
	if (!p)
		return;
	i = skip_cfws(p, n, 0);
	for (k = 0;
	     i + k < n && k < 31 && p[i + k] != '/' && p[i + k] != ';' && !is_space(p[i + k]); k++)
		;
	if (!k || i + k >= n || p[i + k] != '/')
		return;
	char t[32], st[64];
	for (size_t j = 0; j < k; j++)
		t[j] = (char)tolower((unsigned char)p[i + j]);
	t[k] = 0;
	i += k + 1;
	for (k = 0;
	     i + k < n && k < 63 && p[i + k] != ';' && p[i + k] != '(' && !is_space(p[i + k]); k++)
		st[k] = (char)tolower((unsigned char)p[i + k]);
	st[k] = 0;
	if (!k)
		return;
	strcpy(type, t);
	strcpy(sub, st);
}

/* The first token of a header value, lowercased, into out[32]. */
static void first_token(const struct span *v, char out[32])
{
	size_t i, k = 0;

	out[0] = 0;
	if (!v->p)
		return;
	i = skip_cfws(v->p, v->n, 0);
	while (i < v->n && k < 31 && v->p[i] != ';' && !is_space(v->p[i]))
		out[k++] = (char)tolower((unsigned char)v->p[i++]);
	out[k] = 0;
}

/* ---- MIME ----------------------------------------------------------------- */

/* What one entity is, from its headers. */
struct entity {
	struct hdrs h;
	const char *body;
	size_t n;
	char type[32], sub[64];
	int attachment; /* Content-Disposition: attachment */
	int named;	/* has a file name */
};

static void entity_read(struct mail *m, const char *p, size_t n, int message, struct entity *e)
{
	char disp[32];
	size_t off = parse_headers(p, n, &e->h, message);

	e->body = p + off;
	e->n = n - off;
	media_type(&e->h.v[H_CTYPE], e->type, e->sub);
	first_token(&e->h.v[H_CDISP], disp);
	e->attachment = !strcmp(disp, "attachment");
	e->named = get_param(m, &e->h.v[H_CDISP], "filename", &m->pb) ||
		   get_param(m, &e->h.v[H_CTYPE], "name", &m->pb);
}

enum kind { K_PLAIN, K_HTML, K_MULTI, K_MESSAGE, K_ATTACH };

static enum kind entity_kind(const struct entity *e)
{
	int text = !strcmp(e->type, "text");

	if (!strcmp(e->type, "multipart"))
		return K_MULTI;
	if (e->attachment)
		return K_ATTACH;
	if (!strcmp(e->type, "message") && (!strcmp(e->sub, "rfc822") || !strcmp(e->sub, "global")))
		return e->named ? K_ATTACH : K_MESSAGE;
	if (text && !strcmp(e->sub, "html"))
		return K_HTML;
	if (text && (!strcmp(e->sub, "plain") || !e->named))
		return K_PLAIN;
	return K_ATTACH;
}

static void add_attachment(struct mail *m, struct entity *e)
{
	m->attachments++;
	if (!e->named || m->pb.len == 0)
		return;
	if (!m->names)
		m->names = json_array();
	for (size_t i = 0; i < m->pb.len; i++)
		if ((unsigned char)m->pb.data[i] < 32 || m->pb.data[i] == 127)
			m->pb.data[i] = ' ';
	if (m->names && json_array_size(m->names) < MAX_NAMES)
		json_array_append_new(m->names, json_stringn(m->pb.data, m->pb.len));
}

/* Starts a new paragraph in the body text. */
static int text_sep(struct mail *m)
{
	qn_buf_rtrim(&m->text);
	if (m->text.len && qn_buf_add(&m->text, "\n\n", 2) < 0)
		return -1;
	return 0;
}

/*
 * Appends UTF-8 text with CRLF made LF and NUL bytes dropped (document
 * readers refuse "\u0000").
 */
static int text_add(struct qn_buf *out, const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++)
		if (p[i] == 0 || (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')) {
			if (qn_buf_add(out, p + start, i - start) < 0)
				return -1;
			start = i + 1;
		}
	return qn_buf_add(out, p + start, n - start);
}

/* One text/plain or text/html leaf into m->text. */
static void leaf_text(struct mail *m, const struct entity *e, int html)
{
	char cte[32], declared[64], sniffed[64];
	const char *body = e->body, *cs = NULL;
	size_t n = e->n;
	struct qn_err err;

	first_token(&e->h.v[H_CTE], cte);
	qn_buf_reset(&m->raw);
	if (!strcmp(cte, "base64") || !strcmp(cte, "quoted-printable")) {
		int rc = cte[0] == 'b' ? b64_decode(body, n, &m->raw) : qp_decode(body, n, &m->raw);
		if (rc < 0) {
			mime_error(m, "part too large");
			return;
		}
		body = m->raw.data ? m->raw.data : "";
		n = m->raw.len;
	}
	if (get_param(m, &e->h.v[H_CTYPE], "charset", &m->pb) && m->pb.len &&
	    m->pb.len < sizeof declared) {
		memcpy(declared, m->pb.data, m->pb.len + 1);
		cs = declared;
	} else if (html) {
		cs = ix_html_declared_charset(body, n, sniffed);
	}
	qn_buf_reset(&m->conv);
	if (ix_decode(m->s, body, n, cs, &m->conv) < 0) {
		mime_error(m, "part too large");
		return;
	}
	if (!m->charset[0])
		snprintf(m->charset, sizeof m->charset, "%s", m->s->charset);
	if (text_sep(m) < 0)
		goto full;
	if (!html) {
		if (text_add(&m->text, m->conv.data ? m->conv.data : "", m->conv.len) < 0)
			goto full;
		return;
	}
	if (!m->conv.len)
		return;
	json_t *scratch = json_object();
	size_t mark = m->text.len;
	int rc = ix_html_extract(m->conv.data, m->conv.len, &m->html, &m->text, scratch, &err);
	json_decref(scratch);
	/*
	 * NUL bytes can come through the parser as well. The extractor may
	 * also trim what was there before mark, so the buffer can be shorter.
	 */
	if (mark > m->text.len)
		mark = m->text.len;
	size_t w = mark;
	for (size_t i = mark; i < m->text.len; i++)
		if (m->text.data[i])
			m->text.data[w++] = m->text.data[i];
	m->text.len = w;
	if (m->text.data)
		m->text.data[w] = 0;
	if (rc < 0) {
		if (m->text.len == mark) {
			mime_error(m, "unreadable HTML part");
			return;
		}
		goto full;
	}
	return;
full:
	mime_error(m, "text too large, truncated");
}

static void walk_entity(struct mail *m, struct entity *e, int depth);

static void walk_message(struct mail *m, const char *p, size_t n, int depth)
{
	struct entity e;

	entity_read(m, p, n, 1, &e);
	walk_entity(m, &e, depth);
}

/* Iterates the parts of a multipart body. */
struct split {
	const char *p;
	size_t n, pos;
	const char *b;
	size_t bn;
	int found, closed;
};

/* 1: "--b" line, 2: "--b--" line, 0: neither. */
static int delimiter(const struct split *sp, size_t a, size_t end)
{
	size_t i = a + 2 + sp->bn;
	int close = 0;

	if (end - a < 2 + sp->bn || sp->p[a] != '-' || sp->p[a + 1] != '-' ||
	    memcmp(sp->p + a + 2, sp->b, sp->bn))
		return 0;
	if (i + 2 <= end && sp->p[i] == '-' && sp->p[i + 1] == '-') {
		close = 1;
		i += 2;
	}
	for (; i < end; i++)
		if (!is_space(sp->p[i]))
			return 0;
	return close ? 2 : 1;
}

/* Finds the next delimiter line from sp->pos: its start, and the line after it. */
static int next_delimiter(struct split *sp, size_t *at, size_t *after)
{
	size_t pos = sp->pos, next;

	while (pos < sp->n) {
		size_t end = line_end(sp->p, sp->n, pos, &next);
		int d = sp->p[pos] == '-' ? delimiter(sp, pos, end) : 0;
		if (d) {
			*at = pos;
			*after = next;
			return d;
		}
		pos = next;
	}
	return 0;
}

/* The next part; 0 when there are no more. */
static int split_next(struct split *sp, const char **part, size_t *len)
{
	size_t at, after;
	int d;

	if (sp->closed || sp->pos >= sp->n)
		return 0;
	if (!sp->found) {
		d = next_delimiter(sp, &at, &after);
		if (!d) {
			sp->pos = sp->n;
			return 0;
		}
		sp->found = 1;
		sp->pos = after;
		if (d == 2) {
			sp->closed = 1;
			return 0;
		}
	}
	size_t start = sp->pos;
	d = next_delimiter(sp, &at, &after);
	if (!d) {
		/* No closing delimiter: the part runs to the end. */
		*part = sp->p + start;
		*len = sp->n - start;
		sp->pos = sp->n;
		return 1;
	}
	/* The line break before a delimiter belongs to it. */
	size_t end = at;
	if (end > start && sp->p[end - 1] == '\n')
		end--;
	if (end > start && sp->p[end - 1] == '\r')
		end--;
	*part = sp->p + start;
	*len = end - start;
	sp->pos = after;
	if (d == 2)
		sp->closed = 1;
	return 1;
}

static int text_has_words(const struct mail *m, size_t mark)
{
	for (size_t i = mark; i < m->text.len; i++)
		if (!is_space(m->text.data[i]))
			return 1;
	return 0;
}

static void walk_alternative(struct mail *m, struct split *sp, int depth)
{
	const char *part, *cand[3] = {NULL, NULL, NULL};
	size_t len, cand_n[3] = {0, 0, 0};
	struct entity e;

	/* First the plain text, then a nested multipart, then HTML. */
	while (split_next(sp, &part, &len)) {
		if (++m->parts > MAX_PARTS) {
			mime_error(m, "too many MIME parts");
			break;
		}
		entity_read(m, part, len, 0, &e);
		enum kind k = entity_kind(&e);
		int slot = k == K_PLAIN ? 0 : k == K_MULTI ? 1 : k == K_HTML ? 2 : -1;
		if (slot >= 0 && !cand[slot]) {
			cand[slot] = part;
			cand_n[slot] = len;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (!cand[i])
			continue;
		size_t mark = m->text.len;
		entity_read(m, cand[i], cand_n[i], 0, &e);
		walk_entity(m, &e, depth + 1);
		if (text_has_words(m, mark))
			return;
		m->text.len = mark;
		if (m->text.data)
			m->text.data[mark] = 0;
	}
}

static void walk_multipart(struct mail *m, struct entity *e, int depth)
{
	char boundary[MAX_BOUNDARY + 1];
	struct split sp = {.p = e->body, .n = e->n};
	const char *part;
	size_t len;

	if (!get_param(m, &e->h.v[H_CTYPE], "boundary", &m->pb) || !m->pb.len ||
	    m->pb.len > MAX_BOUNDARY) {
		mime_error(m, "multipart without a usable boundary");
		leaf_text(m, e, 0);
		return;
	}
	memcpy(boundary, m->pb.data, m->pb.len);
	boundary[m->pb.len] = 0;
	sp.b = boundary;
	sp.bn = m->pb.len;
	if (!strcmp(e->sub, "alternative")) {
		walk_alternative(m, &sp, depth);
	} else {
		while (split_next(&sp, &part, &len)) {
			struct entity child;
			if (++m->parts > MAX_PARTS) {
				mime_error(m, "too many MIME parts");
				return;
			}
			entity_read(m, part, len, 0, &child);
			walk_entity(m, &child, depth + 1);
		}
	}
	if (!sp.found) {
		mime_error(m, "multipart boundary not found");
		leaf_text(m, e, 0);
	} else if (!sp.closed) {
		mime_error(m, "missing closing boundary");
	}
}

static void walk_entity(struct mail *m, struct entity *e, int depth)
{
	if (depth > MAX_DEPTH) {
		mime_error(m, "MIME nesting too deep");
		return;
	}
	switch (entity_kind(e)) {
	case K_MULTI:
		walk_multipart(m, e, depth);
		break;
	case K_MESSAGE:
		walk_message(m, e->body, e->n, depth + 1);
		break;
	case K_PLAIN:
		leaf_text(m, e, 0);
		break;
	case K_HTML:
		leaf_text(m, e, 1);
		break;
	case K_ATTACH:
		add_attachment(m, e);
		break;
	}
}

/* ---- quoted replies ------------------------------------------------------- */

static int ends_ci(const char *p, size_t n, const char *w)
{
	size_t k = strlen(w);

	return n >= k && !strncasecmp(p + n - k, w, k);
}

static int attribution_start(const char *p, size_t n)
{
	return prefix_ci(p, n, "On ") || prefix_ci(p, n, "Am ") || prefix_ci(p, n, "Le ");
}

static int attribution_end(const char *p, size_t n)
{
	return ends_ci(p, n, "wrote:") || ends_ci(p, n, "schrieb:") ||
	       ends_ci(p, n, "\u00e9crit :") || ends_ci(p, n, "\u00e9crit:");
}

/* "-----Original Message-----" and its variants. */
static int original_message(const char *p, size_t n)
{
	size_t a = 0, b = n;

	while (a < n && p[a] == '-')
		a++;
	while (b > a && p[b - 1] == '-')
		b--;
	if (a < 2 || n - b < 2)
		return 0;
	p += a;
	n = b - a;
	trim(&p, &n);
	return span_eq_ci(p, n, "original message");
}

/*
 * Counts lines quoted with '>' and, for IX_QUOTES_STRIP, writes the text
 * without them into out: also without the attribution line ("On ... wrote:",
 * possibly wrapped onto two lines) before a quoted block, everything from
 * "-----Original Message-----" on, and a trailing "-- " signature.
 */
static long quotes(const char *p, size_t n, int strip, struct qn_buf *out)
{
	size_t pos = 0, next;
	size_t attr = SIZE_MAX;	      /* out->len before a pending attribution */
	size_t prev_start = SIZE_MAX; /* out->len before the previous line, if "On ..." */
	long count = 0;

	qn_buf_reset(out);
	while (pos < n) {
		size_t end = line_end(p, n, pos, &next);
		const char *t = p + pos;
		size_t tn = end - pos;
		trim(&t, &tn);
		if (tn && t[0] == '>') {
			count++;
			if (strip && attr != SIZE_MAX) {
				out->len = attr;
				attr = SIZE_MAX;
			}
			prev_start = SIZE_MAX;
			pos = next;
			continue;
		}
		if (!strip) {
			pos = next;
			continue;
		}
		if (original_message(t, tn))
			break;
		if (!tn) {
			/* Collapse the blank lines that removed quotes leave behind. */
			if (out->len && !(out->len >= 2 && out->data[out->len - 1] == '\n' &&
					  out->data[out->len - 2] == '\n'))
				if (qn_buf_addc(out, '\n') < 0)
					return -1;
			pos = next;
			continue;
		}
		if (attribution_end(t, tn)) {
			if (attribution_start(t, tn))
				attr = out->len;
			else if (prev_start != SIZE_MAX)
				attr = prev_start;
			else
				attr = SIZE_MAX;
		} else {
			attr = SIZE_MAX;
		}
		prev_start = attribution_start(t, tn) ? out->len : SIZE_MAX;
		if (qn_buf_add(out, p + pos, end - pos) < 0 || qn_buf_addc(out, '\n') < 0)
			return -1;
		pos = next;
	}
	if (strip) {
		/* The last "-- " line starts the signature. */
		size_t i = out->len;
		while (i > 0) {
			size_t ls = i - 1;
			while (ls > 0 && out->data[ls - 1] != '\n')
				ls--;
			size_t le = i - (out->data[i - 1] == '\n');
			if (le - ls == 3 && !memcmp(out->data + ls, "-- ", 3)) {
				out->len = ls;
				break;
			}
			i = ls;
		}
		if (out->data)
			out->data[out->len] = 0;
	}
	return count;
}

/* ---- dates ---------------------------------------------------------------- */

static const char *const months[12] = {"jan", "feb", "mar", "apr", "may", "jun",
				       "jul", "aug", "sep", "oct", "nov", "dec"};

static const struct {
	const char *name;
	int minutes;
} zones[] = {
    {"ut", 0},	   {"utc", 0},	  {"gmt", 0},	 {"z", 0},	{"est", -300}, {"edt", -240},
    {"cst", -360}, {"cdt", -300}, {"mst", -420}, {"mdt", -360}, {"pst", -480}, {"pdt", -420},
    {"cet", 60},   {"cest", 120}, {"met", 60},	 {"mest", 120}, {"eet", 120},  {"eest", 180},
    {"bst", 60},   {"jst", 540},  {"wet", 0},	 {"west", 60},
};

static int read_num(const char *p, size_t n, size_t *i, int maxdig, long *v)
{
	size_t k = 0;

	*v = 0;
	while (*i < n && isdigit((unsigned char)p[*i])) {
		if (k < (size_t)maxdig)
			*v = *v * 10 + (p[*i] - '0');
		k++;
		(*i)++;
	}
	return k > (size_t)maxdig ? -1 : (int)k;
}

static int days_in(int mon, long year)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return d[mon] + (mon == 1 && leap);
}

/*
 * RFC 5322 dates and what mailers actually write: day names optional,
 * two-digit years, obsolete and common zone names, comments, no seconds,
 * asctime order ("Thu Nov  5 09:12:01 2026") and ISO 8601. No zone means
 * UTC. Returns 0 and the Unix time, or -1.
 */
static int parse_date(const char *p, size_t n, int64_t *out)
{
	long day = -1, year = -1, hh = -1, mi = 0, ss = 0, v;
	int mon = -1, have_zone = 0, zone = 0, k;
	size_t i = skip_cfws(p, n, 0);

	/* ISO 8601: 2026-11-05[T ]09:12:01[Z|+01:00] */
	{
		size_t j = i;
		long y, mo, d;
		if (read_num(p, n, &j, 4, &y) == 4 && j < n && p[j] == '-' && (j++, 1) &&
		    read_num(p, n, &j, 2, &mo) > 0 && j < n && p[j] == '-' && (j++, 1) &&
		    read_num(p, n, &j, 2, &d) > 0 && mo >= 1 && mo <= 12) {
			year = y;
			mon = (int)mo - 1;
			day = d;
			i = j;
		}
	}
	while (i < n) {
		char c = p[i];
		if (c == '(') {
			i = skip_cfws(p, n, i);
		} else if (isalpha((unsigned char)c)) {
			size_t a = i;
			while (i < n && isalpha((unsigned char)p[i]))
				i++;
			size_t wn = i - a;
			int known = 0;
			if (wn >= 3 && mon < 0)
				for (int m = 0; m < 12; m++)
					if (!strncasecmp(p + a, months[m], 3)) {
						mon = m;
						known = 1;
						break;
					}
			if (!known && hh >= 0 && !have_zone)
				for (size_t z = 0; z < sizeof zones / sizeof *zones; z++)
					if (span_eq_ci(p + a, wn, zones[z].name)) {
						zone = zones[z].minutes;
						have_zone = 1;
						break;
					}
			/* Day names and anything else: ignored. */
		} else if (isdigit((unsigned char)c)) {
			k = read_num(p, n, &i, 4, &v);
			if (k < 0)
				return -1;
			if (i < n && p[i] == ':' && hh < 0) {
				hh = v;
				i++;
				if (read_num(p, n, &i, 2, &mi) <= 0)
					return -1;
				if (i < n && p[i] == ':') {
					i++;
					if (read_num(p, n, &i, 2, &ss) <= 0)
						return -1;
				}
				/* Fractions of a second (ISO 8601). */
				if (i < n && (p[i] == '.' || p[i] == ',') && i + 1 < n &&
				    isdigit((unsigned char)p[i + 1])) {
					i++;
					while (i < n && isdigit((unsigned char)p[i]))
						i++;
				}
			} else if (k >= 3 && year < 0) {
				year = k == 3 ? v + 1900 : v;
			} else if (k <= 2 && day < 0) {
				day = v;
			} else if (k <= 2 && year < 0) {
				year = v < 50 ? 2000 + v : 1900 + v;
			}
		} else if ((c == '+' || c == '-') && hh >= 0 && !have_zone && i + 1 < n &&
			   isdigit((unsigned char)p[i + 1])) {
			long zh, zm = 0;
			i++;
			k = read_num(p, n, &i, 4, &zh);
			if (k == 4) {
				zm = zh % 100;
				zh /= 100;
			} else if (k <= 2 && i + 1 < n && p[i] == ':' &&
				   isdigit((unsigned char)p[i + 1])) {
				i++;
				if (read_num(p, n, &i, 2, &zm) <= 0)
					return -1;
			} else if (k != 2 && k != 1) {
				return -1;
			}
			if (zh <= 23 && zm <= 59) {
				zone = (int)(zh * 60 + zm) * (c == '-' ? -1 : 1);
				have_zone = 1;
			}
		} else {
			i++;
		}
	}
	if (day < 1 || mon < 0 || year < 0)
		return -1;
	if (year < 100)
		year = year < 50 ? 2000 + year : 1900 + year;
	if (year < 1900 || year > 9999 || day > days_in(mon, year))
		return -1;
	if (hh < 0)
		hh = 0;
	if (hh > 23 || mi > 59 || ss > 60)
		return -1;
	if (ss == 60)
		ss = 59;
	struct tm tm = {0};
	tm.tm_year = (int)(year - 1900);
	tm.tm_mon = mon;
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hh;
	tm.tm_min = (int)mi;
	tm.tm_sec = (int)ss;
	time_t t = timegm(&tm);
	*out = (int64_t)t - (int64_t)zone * 60;
	return 0;
}

/* ---- one message ---------------------------------------------------------- */

/*
 * Turns one message into a document. n is its 1-based number in the input
 * and line the line it starts on (0 for .eml). A message whose body has no
 * text is still a document when it has a subject (a one-line note, an
 * attachment with a title): the subject carries it. Only a message with
 * neither is a failure, as nothing would be left to train on.
 */
static int message(struct mail *m, const char *p, size_t n, uint64_t idx, uint64_t line,
		   int in_mbox)
{
	struct ix_sink *s = m->s;
	struct entity e;
	json_t *meta;
	char key[48], created[32], where[64];
	const char *text, *k = NULL;
	size_t tn, sn = 0;
	int64_t t;
	int rc, has_created = 0;

	if (in_mbox)
		snprintf(where, sizeof where, "message %llu (line %llu): ", (unsigned long long)idx,
			 (unsigned long long)line);
	else
		where[0] = 0;
	mail_reset(m);
	s->charset[0] = 0;
	entity_read(m, p, n, 1, &e);
	walk_entity(m, &e, 0);

	meta = json_object();
	if (!meta)
		return -1;
	meta_set_header(m, meta, "from", &e.h.v[H_FROM], 1);
	meta_set_header(m, meta, "to", &e.h.v[H_TO], 1);
	meta_set_header(m, meta, "cc", &e.h.v[H_CC], 1);
	meta_set_header(m, meta, "date", &e.h.v[H_DATE], 0);
	meta_set_header(m, meta, "subject", &e.h.v[H_SUBJECT], 1);
	meta_set_header(m, meta, "message_id", &e.h.v[H_MSGID], 0);
	meta_set_header(m, meta, "in_reply_to", &e.h.v[H_IRT], 0);
	json_t *subj = json_object_get(meta, "subject");
	if (subj && json_string_length(subj)) {
		sn = json_string_length(subj);
		json_object_set(meta, "title", subj);
	}
	json_t *date = json_object_get(meta, "date");
	if (date && !parse_date(json_string_value(date), json_string_length(date), &t)) {
		qn_time_rfc3339(t, created);
		has_created = 1;
	}
	if (in_mbox)
		json_object_set_new(meta, "mbox_index", json_integer((json_int_t)idx));
	if (m->attachments) {
		json_object_set_new(meta, "attachments", json_integer(m->attachments));
		if (m->names && json_array_size(m->names))
			json_object_set(meta, "attachment_names", m->names);
	}
	if (m->mime_error)
		json_object_set_new(meta, "mime_error", json_string(m->mime_error));

	text = m->text.data ? m->text.data : "";
	tn = m->text.len;
	if (s->opt && s->opt->quotes != IX_QUOTES_KEEP) {
		long q = quotes(text, tn, s->opt->quotes == IX_QUOTES_STRIP, &m->quoted);
		if (q < 0) {
			mime_error(m, "text too large, truncated");
		} else {
			json_object_set_new(meta, "quoted_lines", json_integer(q));
			if (s->opt->quotes == IX_QUOTES_STRIP) {
				text = m->quoted.data ? m->quoted.data : "";
				tn = m->quoted.len;
			}
		}
	}
	trim(&text, &tn);
	if (!tn && !sn) {
		json_decref(meta);
		ix_fail(s, "%sno text body and no subject", where);
		return 0;
	}
	if (m->charset[0])
		json_object_set_new(meta, "charset", json_string(m->charset));
	snprintf(s->charset, sizeof s->charset, "%s", m->charset);

	/* meta is stolen by ix_emit: the key must not live in it. */
	json_t *mid = json_object_get(meta, "message_id");
	char *kdup = mid && json_string_length(mid) ? strdup(json_string_value(mid)) : NULL;
	if (kdup) {
		k = kdup;
	} else {
		snprintf(key, sizeof key, "msg:%llu", (unsigned long long)idx);
		k = key;
	}
	rc = ix_emit(s, k, NULL, text, tn, meta, has_created ? created : NULL);
	free(kdup);
	return rc;
}

/* ---- the readers ---------------------------------------------------------- */

int ix_eml(struct ix_sink *s, struct qn_rd *rd)
{
	struct mail m;
	struct qn_buf in;
	struct qn_err e;
	int rc;

	s->format = "eml";
	mail_init(&m, s);
	qn_buf_init(&in, m.max);
	rc = qn_rd_slurp(rd, &in, m.max, &e);
	if (rc == QN_RD_TOOLONG) {
		ix_fail(s, "message larger than %zu bytes", m.max);
		rc = -1;
	} else if (rc < 0) {
		ix_fail(s, "%s", e.msg);
	} else {
		rc = message(&m, in.data ? in.data : "", in.len, 1, 0, 0);
	}
	qn_buf_release(&in);
	mail_release(&m);
	return rc < 0 ? -1 : 0;
}

/* A mboxrd/mboxo body line ">From ", ">>From ", ... loses one '>'. */
static int from_quoted(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == '>')
		i++;
	return i > 0 && n - i >= 5 && !memcmp(p + i, "From ", 5);
}

int ix_mbox(struct ix_sink *s, struct qn_rd *rd)
{
	struct mail m;
	struct qn_buf line, msg;
	struct qn_err e;
	uint64_t idx = 0, lineno = 0, start = 0;
	int have = 0, in_body = 0, oversize = 0, prev_blank = 1, rc = 0;

	s->format = "mbox";
	mail_init(&m, s);
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	qn_buf_init(&msg, m.max);
	for (;;) {
		int r = qn_rd_line(rd, &line, m.max, &e);
		int sep = 0;
		if (r == 0)
			break;
		if (r == -1) {
			ix_fail(s, "%s", e.msg);
			rc = -1;
			break;
		}
		lineno++;
		if (r == 1 && line.len && line.data[line.len - 1] == '\r')
			line.data[--line.len] = 0;
		sep = r == 1 && prev_blank && line.len >= 5 && !memcmp(line.data, "From ", 5);
		if (sep || (!have && !(r == 1 && line.len == 0))) {
			if (have) {
				if (oversize)
					ix_fail(s,
						"message %llu (line %llu): larger than %zu bytes, "
						"skipped",
						(unsigned long long)idx, (unsigned long long)start,
						m.max);
				else if (message(&m, msg.data ? msg.data : "", msg.len, idx, start,
						 1) < 0) {
					rc = -1;
					break;
				}
			}
			idx++;
			have = 1;
			start = lineno;
			in_body = 0;
			oversize = 0;
			qn_buf_reset(&msg);
			if (sep) {
				prev_blank = 0;
				continue;
			}
		}
		if (!have) { /* blank lines before the first message */
			prev_blank = 1;
			continue;
		}
		if (r == QN_RD_TOOLONG) {
			oversize = 1;
			prev_blank = 0;
			continue;
		}
		prev_blank = line.len == 0;
		if (!in_body && prev_blank)
			in_body = 1;
		else if (in_body && from_quoted(line.data, line.len))
			line.len--, memmove(line.data, line.data + 1, line.len + 1);
		if (!oversize &&
		    (qn_buf_add(&msg, line.data, line.len) < 0 || qn_buf_addc(&msg, '\n') < 0)) {
			oversize = 1;
			qn_buf_reset(&msg);
		}
	}
	if (rc == 0 && have) {
		if (oversize)
			ix_fail(s, "message %llu (line %llu): larger than %zu bytes, skipped",
				(unsigned long long)idx, (unsigned long long)start, m.max);
		else if (message(&m, msg.data ? msg.data : "", msg.len, idx, start, 1) < 0)
			rc = -1;
	}
	qn_buf_release(&line);
	qn_buf_release(&msg);
	mail_release(&m);
	return rc;
}
