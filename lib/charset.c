/* charset.c - see charset.h. */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "utf8.h"

const char *qn_bom_sniff(const char *p, size_t n, size_t *bom_len)
{
	const unsigned char *s = (const unsigned char *)p;

	*bom_len = 0;
	if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
		*bom_len = 3;
		return "UTF-8";
	}
	if (n >= 4 && s[0] == 0xFF && s[1] == 0xFE && s[2] == 0 && s[3] == 0) {
		*bom_len = 4;
		return "UTF-32LE";
	}
	if (n >= 4 && s[0] == 0 && s[1] == 0 && s[2] == 0xFE && s[3] == 0xFF) {
		*bom_len = 4;
		return "UTF-32BE";
	}
	if (n >= 2 && s[0] == 0xFF && s[1] == 0xFE) {
		*bom_len = 2;
		return "UTF-16LE";
	}
	if (n >= 2 && s[0] == 0xFE && s[1] == 0xFF) {
		*bom_len = 2;
		return "UTF-16BE";
	}
	return NULL;
}

static const struct {
	const char *label, *name;
} aliases[] = {
	{"utf8", "UTF-8"},           {"utf-8", "UTF-8"},
	{"unicode-1-1-utf-8", "UTF-8"},
	{"us-ascii", "WINDOWS-1252"}, {"ascii", "WINDOWS-1252"},
	{"latin1", "WINDOWS-1252"},  {"latin-1", "WINDOWS-1252"},
	{"iso-8859-1", "WINDOWS-1252"}, {"iso8859-1", "WINDOWS-1252"},
	{"iso_8859-1", "WINDOWS-1252"}, {"l1", "WINDOWS-1252"},
	{"cp1252", "WINDOWS-1252"},  {"windows-1252", "WINDOWS-1252"},
	{"x-cp1252", "WINDOWS-1252"}, {"cp819", "WINDOWS-1252"},
	{"iso-8859-9", "WINDOWS-1254"}, {"latin5", "WINDOWS-1254"},
	{"utf-16", "UTF-16LE"},      {"unicode", "UTF-16LE"},
	{"ucs-2", "UTF-16LE"},       {"x-sjis", "SHIFT_JIS"},
	{"sjis", "SHIFT_JIS"},       {"gb2312", "GBK"},
	{"ks_c_5601-1987", "EUC-KR"},
};

const char *qn_charset_canon(const char *label, char out[64])
{
	char l[64];
	size_t n = 0;
	iconv_t cd;

	if (!label)
		return NULL;
	while (*label == ' ' || *label == '"' || *label == '\'')
		label++;
	while (label[n] && n < sizeof l - 1 && label[n] != ' ' && label[n] != '"' &&
	       label[n] != '\'' && label[n] != ';') {
		l[n] = (char)((label[n] >= 'A' && label[n] <= 'Z') ? label[n] + 32 : label[n]);
		n++;
	}
	l[n] = 0;
	if (!n)
		return NULL;
	for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
		if (!strcmp(l, aliases[i].label)) {
			snprintf(out, 64, "%s", aliases[i].name);
			return out;
		}
	for (size_t i = 0; i < n; i++)
		out[i] = (char)((l[i] >= 'a' && l[i] <= 'z') ? l[i] - 32 : l[i]);
	out[n] = 0;
	cd = iconv_open("UTF-8", out);
	if (cd == (iconv_t)-1)
		return NULL;
	iconv_close(cd);
	return out;
}

static int is_single_byte_legacy(const char *cs)
{
	return !strncmp(cs, "WINDOWS-", 8) || !strncmp(cs, "ISO-8859", 8) ||
	       !strncmp(cs, "ISO8859", 7) || !strncmp(cs, "KOI8", 4);
}

const char *qn_charset_pick(const char *p, size_t n, const char *declared, char out[64],
			    size_t *bom_len)
{
	const char *bom = qn_bom_sniff(p, n, bom_len);
	char canon[64];

	if (bom) {
		snprintf(out, 64, "%s", bom);
		return out;
	}
	if (declared && qn_charset_canon(declared, canon)) {
		if (!(is_single_byte_legacy(canon) && qn_utf8_valid(p, n))) {
			snprintf(out, 64, "%s", canon);
			return out;
		}
		/* Valid UTF-8 (pure ASCII included) reads the same either way. */
	}
	snprintf(out, 64, "%s", qn_utf8_valid(p, n) ? "UTF-8" : "WINDOWS-1252");
	return out;
}

long qn_to_utf8(const char *cs, const char *p, size_t n, struct qn_buf *out,
		struct qn_err *e)
{
	iconv_t cd;
	long bad = 0;
	size_t unit = 1;

	if (!strcmp(cs, "UTF-8")) {
		long r = qn_utf8_repair(out, p, n);
		if (r < 0)
			return qn_errf(e, "text larger than %zu bytes", out->max);
		return r;
	}
	cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return qn_errf(e, "unknown charset '%s'", cs);
	if (!strncmp(cs, "UTF-16", 6))
		unit = 2;
	else if (!strncmp(cs, "UTF-32", 6))
		unit = 4;
	char *in = (char *)p;
	size_t left = n;
	while (left) {
		/* Room for the likely output, else whatever the ceiling allows. */
		if (qn_buf_grow(out, left * 2 + 16) < 0) {
			size_t avail = out->max > out->len ? out->max - out->len : 0;
			if (!avail || qn_buf_grow(out, avail) < 0) {
				iconv_close(cd);
				return qn_errf(e, "text larger than %zu bytes", out->max);
			}
		}
		char *o = out->data + out->len;
		size_t room = out->cap - out->len - 1;
		if (room > out->max - out->len)
			room = out->max - out->len;
		size_t before = out->len, room0 = room;
		size_t r = iconv(cd, &in, &left, &o, &room);
		out->len = (size_t)(o - out->data);
		out->data[out->len] = 0;
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG) {
			/* No progress with all the room the ceiling allows: full. */
			if (out->len == before && before + room0 >= out->max) {
				iconv_close(cd);
				return qn_errf(e, "text larger than %zu bytes", out->max);
			}
			continue;
		}
		/* EILSEQ or EINVAL (truncated at the end): replace one unit. */
		size_t skip = left < unit ? left : unit;
		in += skip;
		left -= skip;
		bad++;
		if (qn_buf_add(out, "\xEF\xBF\xBD", 3) < 0) {
			iconv_close(cd);
			return qn_errf(e, "text larger than %zu bytes", out->max);
		}
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	iconv_close(cd);
	return bad;
}
