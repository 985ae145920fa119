/* lang.cc - see lang.h. C++ only because CLD2's API is; no exception leaves. */
#include <cstdint>
#include <cstdio> /* compact_lang_det.h uses FILE without including <cstdio> */
#include <cstdlib>
#include <cstring>

#include <cld2/public/compact_lang_det.h>

#include "lang.h"
extern "C" {
#include "utf8.h"
}

/*
 * Length of the interchange-valid character at s[0..n) (see lang.h), or 0
 * when the bytes there are invalid UTF-8 or a character CLD2 refuses.
 */
static size_t char_len(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return (s[0] >= 0x20 && s[0] != 0x7f) || s[0] == '\t' || s[0] == '\n' ||
		       s[0] == '\f' || s[0] == '\r';
	size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (k > n || qn_utf8_valid_prefix((const char *)s, k) != k)
		return 0;
	uint32_t cp;
	qn_utf8_decode((const char *)s, k, &cp);
	if (cp < 0xa0 || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
		return 0;
	return k;
}

/* Whether the 8 bytes in w are all printable ASCII, 0x20..0x7e. */
static int printable8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t del = w ^ (0x7f * ones);
	return !(w & high) && !((w - 0x20 * ones) & ~w & high) && !((del - ones) & ~del & high);
}

/* Offset of the first byte CLD2 would refuse; n when there is none. */
static size_t clean_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0, k;
	while (i < n) {
		for (uint64_t w; i + 8 <= n && (memcpy(&w, s + i, 8), printable8(w));)
			i += 8;
		if (i >= n || (k = char_len(s + i, n - i)) == 0)
			break;
		i += k;
	}
	return i;
}

/*
 * CLD2 peeks at the character after the last letter it scans, which can be
 * past the end of the buffer it is given (getonescriptspan.cc, "Look at
 * next following character"; valgrind sees the read). So it only ever gets
 * a copy, followed by PAD bytes: spaces, then a NUL, as at the end of a
 * C string.
 */
enum { PAD = 16 };

/*
 * The copy of s[0..n) CLD2 is given: each byte that does not start a
 * character CLD2 accepts (char_len) is a space, and PAD bytes follow.
 */
static char *clean_copy(const unsigned char *s, size_t n)
{
	char *c = (char *)malloc(n + PAD);
	if (!c)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t k = clean_prefix(s + i, n - i);
		memcpy(c + i, s + i, k);
		i += k;
		if (i < n)
			c[i++] = ' ';
	}
	memset(c + n, ' ', PAD - 1);
	c[n + PAD - 1] = 0;
	return c;
}

static void set_unknown(struct cn_lang *out)
{
	snprintf(out->code, sizeof out->code, "%s", CLD2::LanguageCode(CLD2::UNKNOWN_LANGUAGE));
	out->name = CLD2::LanguageName(CLD2::UNKNOWN_LANGUAGE);
	out->score = 0;
	out->reliable = 0;
}

static int detect(const char *buf, int n, struct cn_lang *out)
{
	CLD2::Language lang3[3];
	int percent3[3], text_bytes, valid_prefix;
	double normalized3[3];
	bool reliable;

	CLD2::Language lang = CLD2::ExtDetectLanguageSummaryCheckUTF8(
	    buf, n, true, NULL, 0, lang3, percent3, normalized3, NULL, &text_bytes, &reliable,
	    &valid_prefix);
	if (valid_prefix != n)
		return -1;
	if (lang == CLD2::UNKNOWN_LANGUAGE)
		return 0;
	snprintf(out->code, sizeof out->code, "%s", CLD2::LanguageCode(lang));
	out->name = CLD2::LanguageName(lang);
	for (int i = 0; i < 3; i++) {
		if (lang3[i] == lang && percent3[i] > 0) {
			out->score = percent3[i] > 100 ? 1.0 : percent3[i] / 100.0;
			break;
		}
	}
	out->reliable = reliable;
	return 0;
}

extern "C" int cn_lang_detect(const char *text, size_t len, size_t max_bytes, struct cn_lang *out)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = len, lim = max_bytes ? max_bytes : CN_LANG_MAX_BYTES;

	set_unknown(out);
	if (lim > CN_LANG_MAX_BYTES_LIMIT)
		lim = CN_LANG_MAX_BYTES_LIMIT;
	if (n > lim) {
		/* Back to the start of the character s[lim] continues (3 at most). */
		n = lim;
		while (n > 0 && lim - n < 3 && (s[n] & 0xc0) == 0x80)
			n--;
	}
	if (n == 0)
		return 0;

	char *copy = clean_copy(s, n);
	if (!copy)
		return -1;
	int rc;
	try {
		rc = detect(copy, (int)n, out);
	} catch (...) { /* std::bad_alloc from CLD2's own buffers */
		rc = -1;
	}
	free(copy);
	if (rc < 0)
		set_unknown(out);
	return rc;
}
