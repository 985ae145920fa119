/*
 * docjson.c - the fast path for document lines (see docjson.h).
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "docjson.h"
#include "utf8.h"

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * The length of the run at p[0, n) free of '"', '\\' and control bytes:
 * the bytes a string body copies as they are. Eight bytes at a time (the
 * "has a byte less than" and "has a zero byte" bit tricks): the lowest
 * flagged byte is always a real one, since a borrow only runs upwards.
 */
static size_t plain_run(const char *p, size_t n)
{
	size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	for (; i + 8 <= n; i += 8) {
		uint64_t w, q, b;
		memcpy(&w, p + i, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		uint64_t t = (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & highs;
		if (t)
			return i + ((size_t)__builtin_ctzll(t) >> 3);
	}
#endif
	for (; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\' || c < 0x20)
			return i;
	}
	return n;
}

static const char *skip_str(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		p += plain_run(p, (size_t)(end - p));
		if (p == end)
			break;
		if (*p == '"')
			return p + 1;
		if (*p == '\\' && ++p == end)
			break;
	}
	return NULL;
}

static const char *skip_val(const char *p, const char *end)
{
	int depth = 0;

	if (p < end && *p == '"')
		return skip_str(p, end);
	while (p < end) {
		char c = *p;
		if (c == '"') {
			if (!(p = skip_str(p, end)))
				return NULL;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (c == ',' && depth == 0) {
			return p;
		}
		p++;
	}
	return depth == 0 ? p : NULL;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
			     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
			     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
						    : 16u;
		if (d > 15)
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

/* Decodes the JSON string body p[0, n) into out; -1 on anything odd. */
static int decode_str(const char *p, size_t n, struct qn_buf *out)
{
	const char *end = p + n;

	qn_buf_reset(out);
	if (qn_buf_grow(out, n + 1) < 0)
		return -1;
	char *o = out->data;
	while (p < end) {
		const char *q = p + plain_run(p, (size_t)(end - p));
		while (q < end && *q == '"') /* (a body skip_str found has none; copied as before) */
			q++, q += plain_run(q, (size_t)(end - q));
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		p = q;
		if (p == end)
			break;
		if ((unsigned char)*p < 0x20 || p + 1 == end)
			return -1;
		char c = p[1];
		p += 2;
		switch (c) {
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'u': {
			unsigned u, lo;
			if (end - p < 4 || hex4(p, &u) < 0)
				return -1;
			p += 4;
			if (u >= 0xdc00 && u <= 0xdfff)
				return -1;
			if (u >= 0xd800 && u <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -1;
				p += 6;
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += qn_utf8_encode(u, o);
			break;
		}
		default:
			return -1;
		}
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = 0;
	return qn_utf8_valid(out->data, out->len) ? 0 : -1;
}

/* Rewrites every \\u escape of a lone surrogate as \\ufffd (same length);
 * returns how many. */
size_t qn_docjson_fix_surrogates(char *p, size_t n)
{
	size_t fixed = 0;
	for (size_t i = 0; i + 6 <= n; i++) {
		unsigned u, lo;
		if (p[i] != '\\')
			continue;
		if (p[i + 1] != 'u' || hex4(p + i + 2, &u) < 0) {
			i++; /* an escape of its own: skip its second character */
			continue;
		}
		int pair = u >= 0xd800 && u <= 0xdbff && i + 12 <= n && p[i + 6] == '\\' &&
			   p[i + 7] == 'u' && hex4(p + i + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff;
		if (pair) {
			i += 11;
		} else if (u >= 0xd800 && u <= 0xdfff) {
			memcpy(p + i + 2, "fffd", 4);
			fixed++;
			i += 5;
		} else {
			i += 5;
		}
	}
	return fixed;
}

json_t *qn_docjson_parse(const char *line, size_t len, struct qn_buf *text, struct qn_buf *rest)
{
	const char *p = line, *end = line + len, *vs = NULL, *ve = NULL;

	p = skip_ws(p, end);
	if (p == end || *p++ != '{')
		return NULL;
	for (;;) {
		p = skip_ws(p, end);
		if (p < end && *p == '}')
			break;
		if (p == end || *p != '"')
			return NULL;
		const char *ks = p;
		if (!(p = skip_str(p, end)))
			return NULL;
		int is_text = p - ks == 6 && !memcmp(ks, "\"text\"", 6);
		p = skip_ws(p, end);
		if (p == end || *p++ != ':')
			return NULL;
		p = skip_ws(p, end);
		const char *v = p;
		if (p == end || !(p = skip_val(p, end)))
			return NULL;
		if (is_text) {
			if (vs || *v != '"')
				return NULL;
			vs = v;
			ve = p;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}')
			break;
		return NULL;
	}
	if (!vs || decode_str(vs + 1, (size_t)(ve - vs - 2), text) < 0)
		return NULL;
	qn_buf_reset(rest);
	if (qn_buf_add(rest, line, (size_t)(vs - line)) < 0 || qn_buf_add(rest, "\"\"", 2) < 0 ||
	    qn_buf_add(rest, ve, (size_t)(end - ve)) < 0)
		return NULL;
	json_error_t je;
	return json_loadb(rest->data, rest->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
}

