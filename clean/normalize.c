/* normalize.c - see normalize.h. */
#include "normalize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

#include "buf.h"
#include "utf8.h"

static const char *const form_names[] = {"nfc", "nfkc", "none"};

void cn_norm_opts_init(struct cn_norm_opts *o)
{
	o->form = CN_NORM_NFC;
	o->collapse_spaces = 1;
	o->max_blank_lines = 2;
	o->unicode_spaces = 1;
	o->trim = 1;
}

int cn_norm_form_parse(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (!strcasecmp(name, form_names[i]))
			return i;
	return -1;
}

const char *cn_norm_form_name(enum cn_norm_form f)
{
	return (unsigned)f < 3 ? form_names[f] : "?";
}

static int is_hspace(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* 1 when the ASCII fast path may copy s as it is. */
static int ascii_clean(const unsigned char *s, size_t n, const struct cn_norm_opts *o)
{
	unsigned prev = '\n';
	long blanks = 0, maxb = o->max_blank_lines;

	if (n && o->trim && (is_ws(s[0]) || is_ws(s[n - 1])))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned c = s[i];
		if (c > ' ' && c < 0x7f) {
			prev = c;
			blanks = 0;
			continue;
		}
		if (c == ' ' || c == '\t') {
			if (o->collapse_spaces && is_hspace((unsigned char)prev))
				return 0;
		} else if (c == '\n') {
			if (is_hspace((unsigned char)prev))
				return 0;
			if (prev == '\n' && ++blanks > maxb && maxb >= 0)
				return 0;
		} else {
			return 0;
		}
		prev = c;
	}
	return 1;
}

enum cp_class { CP_KEEP, CP_CONTROL, CP_INVISIBLE, CP_SPACE, CP_NEWLINE };

static enum cp_class classify(uint32_t cp)
{
	if (cp < 0x20)
		return cp == '\n' || cp == '\t' ? CP_KEEP : cp == '\r' ? CP_NEWLINE : CP_CONTROL;
	if (cp < 0x7f)
		return CP_KEEP;
	if (cp == 0x85)
		return CP_NEWLINE;
	if (cp <= 0x9f)
		return CP_CONTROL;
	switch (cp) {
	case 0xAD: case 0x200B: case 0x2060: case 0xFEFF:
	case 0x202A: case 0x202B: case 0x202C: case 0x202D: case 0x202E:
	case 0x2066: case 0x2067: case 0x2068: case 0x2069:
		return CP_INVISIBLE;
	case 0xA0: case 0x1680: case 0x202F: case 0x205F: case 0x3000:
		return CP_SPACE;
	case 0x2028: case 0x2029:
		return CP_NEWLINE;
	}
	if (cp >= 0x2000 && cp <= 0x200A)
		return CP_SPACE;
	return CP_KEEP;
}

/* Step 1: controls, invisibles, line endings, space variants. */
static int map_chars(const char *s, size_t n, const struct cn_norm_opts *o, struct qn_buf *out,
		     struct cn_norm_counts *c)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && (unsigned char)s[j] >= 0x20 && (unsigned char)s[j] < 0x7f)
			j++;
		if (qn_buf_add(out, s + i, j - i) < 0)
			return -1;
		if (j >= n)
			break;
		uint32_t cp;
		size_t k = qn_utf8_decode(s + j, n - j, &cp);
		if (!k)
			k = 1;
		switch (classify(cp)) {
		case CP_KEEP:
			if (qn_buf_add(out, s + j, k) < 0)
				return -1;
			break;
		case CP_CONTROL:
			c->control++;
			break;
		case CP_INVISIBLE:
			c->invisible++;
			break;
		case CP_SPACE:
			if (o->unicode_spaces) {
				c->unicode_space++;
				if (qn_buf_addc(out, ' ') < 0)
					return -1;
			} else if (qn_buf_add(out, s + j, k) < 0) {
				return -1;
			}
			break;
		case CP_NEWLINE:
			if (cp == '\r' && j + 1 < n && s[j + 1] == '\n')
				k = 2;
			c->line_endings++;
			if (qn_buf_addc(out, '\n') < 0)
				return -1;
			break;
		}
		i = j + k;
	}
	return 0;
}

/* Code points of the stretch that differs between in and o (at least 1). */
static uint64_t changed_cps(const char *in, size_t n, const char *o, size_t m)
{
	size_t p = 0, q = 0, lim = n < m ? n : m;
	uint64_t k = 0;

	while (p < lim && in[p] == o[p])
		p++;
	while (p > 0 && ((unsigned char)in[p] & 0xC0) == 0x80)
		p--;
	while (q < lim - p && in[n - 1 - q] == o[m - 1 - q])
		q++;
	while (q > 0 && ((unsigned char)in[n - q] & 0xC0) == 0x80)
		q--;
	for (size_t i = p; i < n - q; i++)
		k += ((unsigned char)in[i] & 0xC0) != 0x80;
	return k ? k : 1;
}

/*
 * Step 2. Only the stretches around non-ASCII characters go through
 * utf8proc: an ASCII character followed by another ASCII character is a
 * boundary that no normalization crosses (ASCII neither decomposes nor
 * composes with ASCII), while the ASCII character just before a non-ASCII
 * one may be the base of a combining mark and goes with the stretch.
 */
static int apply_form(const char *s, size_t n, enum cn_norm_form form, struct qn_buf *out,
		      struct cn_norm_counts *c)
{
	utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
	size_t pos = 0;

	if (form == CN_NORM_NFKC)
		opt |= UTF8PROC_COMPAT;
	while (pos < n) {
		size_t i = pos;
		while (i < n && (unsigned char)s[i] < 0x80)
			i++;
		if (i >= n)
			return qn_buf_add(out, s + pos, n - pos);
		size_t start = i > pos ? i - 1 : i, end = i;
		while (end < n && !((unsigned char)s[end] < 0x80 &&
				    (end + 1 == n || (unsigned char)s[end + 1] < 0x80)))
			end++;
		if (qn_buf_add(out, s + pos, start - pos) < 0)
			return -1;
		utf8proc_uint8_t *dst = NULL;
		utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s + start,
						  (utf8proc_ssize_t)(end - start), &dst, opt);
		if (m < 0) {
			free(dst);
			return -1;
		}
		if ((size_t)m != end - start || memcmp(dst, s + start, (size_t)m))
			c->unicode_form += changed_cps(s + start, end - start, (const char *)dst, (size_t)m);
		int rc = qn_buf_add(out, dst, (size_t)m);
		free(dst);
		if (rc < 0)
			return -1;
		pos = end;
	}
	return 0;
}

/* Step 3: whitespace, blank lines and trimming; s has no CR. */
static int fix_spaces(const char *s, size_t n, const struct cn_norm_opts *o, struct qn_buf *out,
		      struct cn_norm_counts *c)
{
	size_t i = 0, end = n;
	long blanks = 0;

	if (o->trim) {
		while (i < end && is_ws((unsigned char)s[i]))
			i++;
		while (end > i && is_ws((unsigned char)s[end - 1]))
			end--;
		c->trimmed += i + (n - end);
	}
	while (i < end) {
		const char *nl = memchr(s + i, '\n', end - i);
		size_t e = nl ? (size_t)(nl - s) : end, le = e;
		while (le > i && is_hspace((unsigned char)s[le - 1]))
			le--;
		c->trailing_space += e - le;
		if (le == i && nl) {
			if (o->max_blank_lines >= 0 && ++blanks > o->max_blank_lines) {
				c->blank_lines++;
			} else if (qn_buf_addc(out, '\n') < 0) {
				return -1;
			}
			i = e + 1;
			continue;
		}
		blanks = 0;
		size_t p = i;
		while (p < le && is_hspace((unsigned char)s[p]))
			p++;
		if (!o->collapse_spaces)
			p = le;
		if (qn_buf_add(out, s + i, p - i) < 0)
			return -1;
		while (p < le) {
			size_t q = p;
			while (q < le && !is_hspace((unsigned char)s[q]))
				q++;
			if (qn_buf_add(out, s + p, q - p) < 0)
				return -1;
			if (q >= le)
				break;
			size_t r = q;
			while (r < le && is_hspace((unsigned char)s[r]))
				r++;
			if (r - q >= 2) {
				c->collapsed_space += r - q - 1;
				if (qn_buf_addc(out, ' ') < 0)
					return -1;
			} else if (qn_buf_addc(out, s[q]) < 0) {
				return -1;
			}
			p = r;
		}
		if (nl && qn_buf_addc(out, '\n') < 0)
			return -1;
		i = nl ? e + 1 : end;
	}
	return 0;
}

int cn_normalize(const char *utf8, size_t len, const struct cn_norm_opts *o, struct qn_buf *out,
		 struct cn_norm_counts *c)
{
	struct cn_norm_opts defaults;
	struct cn_norm_counts scratch;
	struct qn_buf fixed, mapped, formed;
	int rc = -1;

	if (!o) {
		cn_norm_opts_init(&defaults);
		o = &defaults;
	}
	if (!c) {
		memset(&scratch, 0, sizeof scratch);
		c = &scratch;
	}
	qn_buf_reset(out);
	if (ascii_clean((const unsigned char *)utf8, len, o)) {
		if (qn_buf_add(out, utf8, len) < 0)
			goto fail_early;
		return 0;
	}
	/* Working copies may be longer than the result (spaces still to trim). */
	size_t wmax = out->max;
	if (len <= (SIZE_MAX - 64) / 4 && wmax <= SIZE_MAX - 64 - 4 * len)
		wmax += 4 * len + 64;
	else
		wmax = QN_BUF_UNLIMITED;
	qn_buf_init(&fixed, wmax);
	qn_buf_init(&mapped, wmax);
	qn_buf_init(&formed, wmax);
	size_t ok = qn_utf8_valid_prefix(utf8, len);
	if (ok < len) {
		long k = qn_utf8_repair(&fixed, utf8, len);
		if (k < 0)
			goto out;
		c->invalid_utf8 += (uint64_t)k;
		utf8 = fixed.data;
		len = fixed.len;
	}
	if (map_chars(utf8, len, o, &mapped, c) < 0)
		goto out;
	const struct qn_buf *src = &mapped;
	if (o->form != CN_NORM_NONE) {
		if (apply_form(mapped.data ? mapped.data : "", mapped.len, o->form, &formed, c) < 0)
			goto out;
		src = &formed;
	}
	rc = fix_spaces(src->data ? src->data : "", src->len, o, out, c);
out:
	qn_buf_release(&fixed);
	qn_buf_release(&mapped);
	qn_buf_release(&formed);
	if (rc == 0)
		return 0;
fail_early:
	qn_buf_reset(out);
	return -1;
}
