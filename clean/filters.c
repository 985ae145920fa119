/*
 * filters.c - see filters.h; the rule table is filters.md.
 *
 * Speed (filters.md, "Implementation note"): the chain splits the text
 * into tokens once, and every rule that counts words reads those tokens and
 * the counts gathered while splitting; ASCII bytes go through a 256-entry
 * class table or 16 at a time, and only other bytes are decoded. The Gopher
 * n-gram rules first bound each rule from cheap counts and run the exact
 * count only when the bound says the document could fail (ngrams_fast).
 * The straightforward splitter, n-gram rules and counts are kept as
 * qf_check_reference, which tests/unit/test_filters.c compares with the
 * fast path. Everything a document needs is in its qf_result's scratch,
 * reused from one document to the next.
 */
#include "filters.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "err.h"

/* ---- characters ------------------------------------------------------ */

/* A code point that stands for one byte of invalid UTF-8. */
#define BAD_CP 0x110000u

/* Decodes one code point; an invalid sequence yields BAD_CP for one byte. */
static size_t dec(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t l, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		l = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		l = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		l = 4, c &= 0x07, min = 0x10000;
	} else {
		*cp = BAD_CP;
		return 1;
	}
	if (l > n) {
		*cp = BAD_CP;
		return 1;
	}
	for (i = 1; i < l; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = BAD_CP;
			return 1;
		}
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
		*cp = BAD_CP;
		return 1;
	}
	*cp = c;
	return l;
}

/* Python's str.isspace(). */
static int py_space(uint32_t c)
{
	if (c < 0x80)
		return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20);
	return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	       c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/*
 * One byte's classes, for the ASCII fast paths. The table is built by the
 * preprocessor so that it is read-only and shared by every thread.
 */
enum {
	Q_SPACE = 1,   /* Python whitespace (ASCII) */
	Q_WORD = 2,    /* ASCII letter or digit */
	Q_ALPHA = 4,   /* ASCII letter */
	Q_JOIN = 8,    /* ' - . or , (may join two parts of a word) */
	Q_PUNCT = 16,  /* in datatrove's PUNCTUATION_SET */
	Q_HIGH = 32,   /* not ASCII */
	Q_LB = 64,     /* may start a str.splitlines() break */
	Q_SENT = 128,  /* . ? or ! (may end a sentence) */
};

#define QC_SPACE(c) (((c) >= 9 && (c) <= 13) || ((c) >= 0x1c && (c) <= 0x20))
#define QC_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define QC_DIGIT(c) ((c) >= '0' && (c) <= '9')
/* PUNCTUATION_SET's ASCII part, as dt_punct() spells it out: string.punctuation
 * and the controls other than tab and newline */
#define QC_PUNCT(c)                                                                      \
	(((c) < 32 && (c) != 9 && (c) != 10) || (c) == 127 ||                            \
	 ((c) > 32 && (c) < 127 && !QC_ALPHA(c) && !QC_DIGIT(c)))
#define QC_LB(c)                                                                                   \
	(((c) >= 10 && (c) <= 13) || ((c) >= 0x1c && (c) <= 0x1e) || (c) == 0xc2 || (c) == 0xe2)
#define QC(c)                                                                            \
	(unsigned char)((QC_SPACE(c) ? Q_SPACE : 0) |                                    \
			(QC_ALPHA(c) || QC_DIGIT(c) ? Q_WORD : 0) | (QC_ALPHA(c) ? Q_ALPHA : 0) | \
			((c) == '\'' || (c) == '-' || (c) == '.' || (c) == ',' ? Q_JOIN : 0) |   \
			((c) < 128 && QC_PUNCT(c) ? Q_PUNCT : 0) | ((c) >= 128 ? Q_HIGH : 0) |   \
			(QC_LB(c) ? Q_LB : 0) |                                                  \
			((c) == '.' || (c) == '?' || (c) == '!' ? Q_SENT : 0))
#define QC4(c) QC(c), QC((c) + 1), QC((c) + 2), QC((c) + 3)
#define QC16(c) QC4(c), QC4((c) + 4), QC4((c) + 8), QC4((c) + 12)
#define QC64(c) QC16(c), QC16((c) + 16), QC16((c) + 32), QC16((c) + 48)
static const unsigned char byte_class[256] = {QC64(0), QC64(64), QC64(128), QC64(192)};

#define BCLASS(ch) byte_class[(unsigned char)(ch)]

/* datatrove's PUNCTUATION_SET (utils/text.py). */
static int dt_punct(uint32_t c)
{
	static const char ascii[] = "!/:&(\\#%+^]~';{|[=-`*$,><)?@_.\"}";
	static const uint32_t uni[] = {0x2014, 0x201d, 0xff05, 0xff11, 0x3008, 0x3001, 0x2501,
				       0x3010, 0x300c, 0x300d, 0xff0c, 0x3011, 0xff1b, 0x201c,
				       0x300a, 0x201e, 0x2019, 0x2236, 0xb4,   0xff0e, 0xff08,
				       0x2013, 0xff1f, 0xff01, 0xff1a, 0xff5e, 0xab,   0x3009,
				       0x300b, 0xff09, 0x3002, 0x2026, 0x25ba, 0xbb};
	if (c < 0x80) {
		if (c < 32)
			return c != 9 && c != 10;
		if (c == 127)
			return 1;
		return c != 0 && strchr(ascii, (int)c) != NULL;
	}
	if (c >= 127 && c < 160)
		return 1;
	for (size_t i = 0; i < sizeof uni / sizeof uni[0]; i++)
		if (uni[i] == c)
			return 1;
	return 0;
}

static int cat(uint32_t c)
{
	return c == BAD_CP ? UTF8PROC_CATEGORY_CN : (int)utf8proc_category((utf8proc_int32_t)c);
}

static int is_letter(int k) { return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO; }
static int is_mark(int k) { return k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ME; }
static int is_number(int k) { return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO; }

/* Python re's \w: letters, numbers, underscore (marks are \W). */
static int re_word(uint32_t c)
{
	if (c < 0x80)
		return (c | 0x20) - 'a' < 26 || c - '0' < 10 || c == '_';
	int k = cat(c);
	return is_letter(k) || is_number(k);
}

/*
 * 16 bytes at a time with the vector extension of GCC and Clang (SSE2 on
 * x86-64, NEON on Arm): a comparison gives 0xff or 0 per byte.
 */
typedef unsigned char u8x16 __attribute__((vector_size(16)));

static inline u8x16 load16(const char *p)
{
	u8x16 v;
	memcpy(&v, p, 16);
	return v;
}

/* Is any byte of the mask m set? */
static inline int any16(u8x16 m)
{
	uint64_t w[2];
	memcpy(w, &m, 16);
	return (w[0] | w[1]) != 0;
}

/* The first k bytes (as stored in memory) of a 64-bit word loaded from it. */
static inline uint64_t prefix_mask(size_t k)
{
	if (k >= 8)
		return ~0ull;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return k ? ~0ull << (64 - 8 * k) : 0;
#else
	return (1ull << (8 * k)) - 1;
#endif
}

/* The index (in memory order) of the first zero byte of w, whose bytes are
 * 0x00 or 0xff and not all 0xff (of the first 0xff byte: pass ~w). */
static inline size_t first_zero_byte(uint64_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (size_t)__builtin_clzll(~w) / 8;
#else
	return (size_t)__builtin_ctzll(~w) / 8;
#endif
}

/* The byte at index k (in memory order) of a 64-bit word. */
static inline uint64_t byte_mask(size_t k)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return 0xffull << (56 - 8 * k);
#else
	return 0xffull << (8 * k);
#endif
}

/* Code points in a span: the bytes that are not continuation bytes. */
static size_t count_chars(const char *s, size_t n)
{
	size_t i = 0, cont = 0;
	while (n - i >= 16) {
		/* per-lane counts of 10xxxxxx bytes, at most 255 rounds a lane */
		u8x16 acc = {0};
		for (int k = 0; k < 255 && n - i >= 16; k++, i += 16)
			acc -= (u8x16)((load16(s + i) & 0xc0) == 0x80);
		uint64_t w[2];
		memcpy(w, &acc, 16);
		for (int k = 0; k < 2; k++) {
			uint64_t v =
			    (w[k] & 0x00ff00ff00ff00ffull) + (w[k] >> 8 & 0x00ff00ff00ff00ffull);
			cont += (size_t)((v * 0x0001000100010001ull) >> 48);
		}
	}
	for (; i < n; i++)
		cont += ((unsigned char)s[i] & 0xc0) == 0x80;
	return n - cont;
}

/* Length of the Python whitespace character at s, 0 when there is none. */
static inline size_t ws_at(const char *s, size_t n)
{
	uint32_t c;
	size_t l;
	if (!n)
		return 0;
	if ((unsigned char)s[0] < 0x80)
		return BCLASS(s[0]) & Q_SPACE;
	l = dec((const unsigned char *)s, n, &c);
	return py_space(c) ? l : 0;
}

/* Length of the Python whitespace character ending at s + n, or 0. */
static size_t ws_before(const char *s, size_t n)
{
	uint32_t c;
	for (size_t l = 1; l <= 3 && l <= n; l++) {
		if (dec((const unsigned char *)s + n - l, l, &c) == l && c != BAD_CP)
			return py_space(c) ? l : 0;
	}
	return 0;
}

/* str.strip() on [*a, *b). */
static void py_strip(const char *s, size_t *a, size_t *b)
{
	size_t l;
	while (*a < *b && (l = ws_at(s + *a, *b - *a)))
		*a += l;
	while (*b > *a && (l = ws_before(s + *a, *b - *a)))
		*b -= l;
}

static int ends_with(const char *s, size_t n, const char *suf, size_t k)
{
	return n >= k && !memcmp(s + n - k, suf, k);
}

/* str.splitlines(): the length of the line break at s, 0 when none. */
static size_t line_break_at(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	if (c == '\r')
		return n > 1 && s[1] == '\n' ? 2 : 1;
	if (c == '\n' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e))
		return 1;
	if (c == 0xc2 && n > 1 && (unsigned char)s[1] == 0x85)
		return 2;
	if (c == 0xe2 && n > 2 && (unsigned char)s[1] == 0x80 &&
	    ((unsigned char)s[2] == 0xa8 || (unsigned char)s[2] == 0xa9))
		return 3;
	return 0;
}

/* The first byte at or after i that may start a line break (Q_LB), or n. */
static size_t next_lb_byte(const char *s, size_t i, size_t n)
{
	for (; n - i >= 16; i += 16) {
		u8x16 v = load16(s + i);
		if (any16((u8x16)(v < 0x1f) | (u8x16)(v == 0xc2) | (u8x16)(v == 0xe2)))
			break;
	}
	for (; i < n; i++)
		if (BCLASS(s[i]) & Q_LB)
			return i;
	return n;
}

/* Next line of str.splitlines() from *pos: 0 at the end. */
static int next_pyline(const char *s, size_t n, size_t *pos, size_t *a, size_t *b)
{
	size_t i = *pos, l;
	if (i >= n)
		return 0;
	*a = i;
	while ((i = next_lb_byte(s, i, n)) < n) {
		if ((l = line_break_at(s + i, n - i))) {
			*b = i;
			*pos = i + l;
			return 1;
		}
		i++;
	}
	*b = n;
	*pos = n;
	return 1;
}

/* ---- the word splitter ------------------------------------------------ */

/* Makes room for need elements in *p (capacity *cap); -1 when out of memory. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t nc;
	void *q;
	if (need <= *cap)
		return 0;
	nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	q = realloc(*p, nc * elem);
	if (!q)
		return -1;
	*p = q;
	*cap = nc;
	return 0;
}

enum { A_SPACE, A_WORD, A_APOS, A_HYPHEN, A_NUMSEP, A_SYM };

/* Class of any code point, with letter and digit flags for words. */
struct cpinfo {
	uint32_t cp;
	size_t len;
	int cls;
	int alpha, digit;
};

static void classify(const char *s, size_t n, struct cpinfo *ci)
{
	unsigned char b = (unsigned char)s[0];
	if (b < 0x80) {
		ci->cp = b;
		ci->len = 1;
		ci->alpha = ((unsigned)b | 0x20) - 'a' < 26;
		ci->digit = (unsigned)b - '0' < 10;
		ci->cls = py_space(b)			 ? A_SPACE
			  : ci->alpha || ci->digit ? A_WORD
			  : b == '\''		 ? A_APOS
			  : b == '-'		 ? A_HYPHEN
			  : b == '.' || b == ','	 ? A_NUMSEP
						 : A_SYM;
		return;
	}
	ci->len = dec((const unsigned char *)s, n, &ci->cp);
	ci->alpha = ci->digit = 0;
	if (py_space(ci->cp)) {
		ci->cls = A_SPACE;
		return;
	}
	if (ci->cp == 0x2019) {
		ci->cls = A_APOS;
		return;
	}
	int k = cat(ci->cp);
	if (is_letter(k) || is_mark(k) || is_number(k)) {
		ci->cls = A_WORD;
		ci->alpha = is_letter(k);
		ci->digit = is_number(k);
		return;
	}
	ci->cls = A_SYM;
}

static int cp_punct(const struct cpinfo *ci) { return dt_punct(ci->cp); }

static int push_token(struct qf_token **v, size_t *cap, size_t nt, const struct qf_token *t)
{
	if (nt == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct qf_token *p = realloc(*v, nc * sizeof *p);
		if (!p)
			return -1;
		*v = p;
		*cap = nc;
	}
	(*v)[nt] = *t;
	return 0;
}

/*
 * The reference splitter: filters.md's rules, one code point at a time.
 * Appends the tokens of s to *v (capacity *cap); returns the count or -1.
 * With v NULL it only counts.
 */
static long split_reference(const char *s, size_t n, struct qf_token **v, size_t *cap)
{
	struct cpinfo ci, nx;
	size_t i = 0, nt = 0;

	while (i < n) {
		classify(s + i, n - i, &ci);
		if (ci.cls == A_SPACE) {
			i += ci.len;
			continue;
		}
		struct qf_token t = {(uint32_t)i, 0, 0, 0, 0, 1, 0};
		if (ci.cls == A_WORD) {
			t.word = 1;
			for (;;) {
				t.chars++;
				t.alpha |= (uint8_t)ci.alpha;
				t.punct &= (uint8_t)cp_punct(&ci);
				int prev_digit = ci.digit;
				i += ci.len;
				if (i >= n)
					break;
				classify(s + i, n - i, &ci);
				if (ci.cls == A_WORD)
					continue;
				if (ci.cls != A_APOS && ci.cls != A_HYPHEN && ci.cls != A_NUMSEP)
					break;
				if (ci.cls == A_NUMSEP && !prev_digit)
					break;
				if (i + ci.len >= n)
					break;
				classify(s + i + ci.len, n - i - ci.len, &nx);
				if (nx.cls != A_WORD || (ci.cls == A_NUMSEP && !nx.digit))
					break;
				/* the joiner belongs to the word */
				t.chars++;
				t.punct &= (uint8_t)cp_punct(&ci);
				i += ci.len;
				ci = nx;
			}
		} else {
			uint32_t c0 = ci.cp;
			size_t l0 = ci.len;
			t.punct = (uint8_t)cp_punct(&ci);
			do {
				t.chars++;
				i += l0;
			} while (i + l0 <= n && (c0 == BAD_CP ? 0 : !memcmp(s + i, s + t.off, l0)));
		}
		t.len = (uint32_t)(i - t.off);
		if (v && push_token(v, cap, nt, &t) < 0)
			return -1;
		nt++;
	}
	return (long)nt;
}

/*
 * The rest of a word token t at s[i] (general case: any code point);
 * prev_digit says whether the character before i was a number. Returns the
 * end of the word.
 */
static size_t word_rest(const char *s, size_t n, size_t i, int prev_digit, struct qf_token *t)
{
	struct cpinfo ci, nx;
	for (;;) {
		unsigned k;
		/* a run of ASCII letters and digits */
		while (i < n && ((k = BCLASS(s[i])) & Q_WORD)) {
			t->alpha |= (uint8_t)((k & Q_ALPHA) != 0);
			t->punct = 0;
			t->chars++;
			prev_digit = !(k & Q_ALPHA);
			i++;
		}
		if (i >= n)
			return i;
		classify(s + i, n - i, &ci);
		if (ci.cls != A_WORD) {
			if (ci.cls != A_APOS && ci.cls != A_HYPHEN && ci.cls != A_NUMSEP)
				return i;
			if (ci.cls == A_NUMSEP && !prev_digit)
				return i;
			if (i + ci.len >= n)
				return i;
			classify(s + i + ci.len, n - i - ci.len, &nx);
			if (nx.cls != A_WORD || (ci.cls == A_NUMSEP && !nx.digit))
				return i;
			t->chars++;
			t->punct &= (uint8_t)cp_punct(&ci);
			i += ci.len;
			ci = nx;
		}
		t->chars++;
		t->alpha |= (uint8_t)ci.alpha;
		t->punct &= (uint8_t)cp_punct(&ci);
		prev_digit = ci.digit;
		i += ci.len;
	}
}

/*
 * How many of the 16 bytes at p are ASCII letters or digits, from the
 * first on; adds Q_ALPHA to *acc when a letter is among them.
 */
static inline size_t ascii_word_run(const char *p, unsigned *acc)
{
	u8x16 v, letter, word;
	uint64_t w[2], l[2];
	size_t run;

	memcpy(&v, p, 16);
	letter = (u8x16)((u8x16)((v | 0x20) - 'a') < 26);
	word = letter | (u8x16)((u8x16)(v - '0') < 10);
	memcpy(w, &word, 16);
	memcpy(l, &letter, 16);
	run = ~w[0] ? first_zero_byte(w[0]) : ~w[1] ? 8 + first_zero_byte(w[1]) : 16;
	if ((l[0] & prefix_mask(run)) | (run > 8 ? l[1] & prefix_mask(run - 8) : 0))
		*acc |= Q_ALPHA;
	return run;
}

/*
 * What Gopher quality counts over the tokens, gathered while splitting:
 * the tokens that are not punctuation and their chars, the tokens with a
 * letter, the '#' and the "..." and U+2026 of the text ('#', '.' and U+2026
 * are symbols, so each of their runs is one token).
 */
struct tok_stats {
	size_t words, word_chars, alpha, hashes, ellipses;
	size_t bytes; /* of all the tokens */
};

/*
 * The splitter's fast path, same tokens as split_reference: ASCII words
 * and symbol runs are read through byte_class; a word that meets a
 * joiner or a non-ASCII byte, and a token that starts with one, go on in
 * word_rest or the general code. Returns the count or -1; with v NULL it
 * only counts. st gets the counts above; cat, when not NULL, the tokens
 * concatenated (room for n + 16 bytes).
 */
static long split_fast(const char *s, size_t n, struct qf_token **v, size_t *cap,
		       struct tok_stats *st, unsigned char *cat)
{
	size_t i = 0, nt = 0, pos = 0;
	struct qf_token counted, *t = &counted;

	memset(st, 0, sizeof *st);
	while (i < n) {
		unsigned char b = (unsigned char)s[i];
		unsigned k = byte_class[b];

		if (k & Q_SPACE) {
			i++;
			continue;
		}
		/* fields are written in place: a token built aside and copied
		 * stalls on the copy */
		if (v) {
			if (nt == *cap && grow((void **)v, cap, nt + 1, sizeof **v) < 0)
				return -1;
			t = *v + nt;
		}
		t->off = (uint32_t)i;
		t->pad_ = 0;
		if (k & Q_WORD) {
			unsigned acc = k;
			size_t run;
			/* ASCII letters and digits, 16 bytes at a time */
			while (n - i >= 16 && (run = ascii_word_run(s + i, &acc)) == 16)
				i += 16;
			if (n - i >= 16) {
				i += run;
			} else {
				while (i < n && ((k = BCLASS(s[i])) & Q_WORD)) {
					acc |= k;
					i++;
				}
			}
			t->chars = (uint32_t)(i - t->off);
			t->word = 1;
			t->alpha = (acc & Q_ALPHA) != 0;
			t->punct = 0;
			/* '.' or ',' only join digits: "word." and "word," end here */
			if (i < n && (BCLASS(s[i]) & (Q_JOIN | Q_HIGH)) &&
			    !((s[i] == '.' || s[i] == ',') && (BCLASS(s[i - 1]) & Q_ALPHA)))
				i = word_rest(s, n, i, !(BCLASS(s[i - 1]) & Q_ALPHA), t);
		} else if (!(k & Q_HIGH)) {
			/* a run of one ASCII symbol */
			i++;
			while (i < n && (unsigned char)s[i] == b)
				i++;
			t->chars = (uint32_t)(i - t->off);
			t->word = 0;
			t->alpha = 0;
			t->punct = (k & Q_PUNCT) != 0;
			st->hashes += b == '#' ? t->chars : 0;
			st->ellipses += b == '.' ? t->chars / 3 : 0;
		} else {
			struct cpinfo ci;
			classify(s + i, n - i, &ci);
			if (ci.cls == A_SPACE) {
				i += ci.len;
				continue;
			}
			if (ci.cls == A_WORD) {
				t->chars = 1;
				t->word = 1;
				t->alpha = (uint8_t)ci.alpha;
				t->punct = (uint8_t)cp_punct(&ci);
				i = word_rest(s, n, i + ci.len, ci.digit, t);
			} else {
				size_t l0 = ci.len;
				t->chars = 0;
				t->word = 0;
				t->alpha = 0;
				t->punct = (uint8_t)cp_punct(&ci);
				do {
					t->chars++;
					i += l0;
				} while (i + l0 <= n && ci.cp != BAD_CP &&
					 !memcmp(s + i, s + t->off, l0));
				st->ellipses += ci.cp == 0x2026 ? t->chars : 0;
			}
		}
		t->len = (uint32_t)(i - t->off);
		if (cat) {
			/* 16 bytes at once when they are there: the next word
			 * overwrites what is past this one */
			if (t->len <= 16 && n - t->off >= 16)
				memcpy(cat + pos, s + t->off, 16);
			else
				memcpy(cat + pos, s + t->off, t->len);
			pos += t->len;
		}
		st->bytes += t->len;
		st->words += !t->punct;
		st->word_chars += t->punct ? 0 : t->chars;
		st->alpha += t->alpha;
		nt++;
		if (i < n && s[i] == ' ')
			i++; /* the usual space after a token */
	}
	return (long)nt;
}

long qf_split(const char *text, size_t len, struct qf_token **out)
{
	struct tok_stats st;
	size_t cap = 0;
	long n;

	*out = NULL;
	if (len > QF_MAX_DOC_BYTES)
		return -1;
	n = split_fast(text, len, out, &cap, &st, NULL);
	if (n < 0) {
		free(*out);
		*out = NULL;
	}
	return n;
}

/* ---- scratch and results ---------------------------------------------- */

struct span {
	uint32_t off, len;
};

struct slot {
	uint64_t h;
	uint32_t first; /* index + 1; 0 = empty */
	uint32_t pad_;
};

struct qf_scratch {
	struct qf_token *tok;
	size_t ntok, tokcap;
	struct span *sp;
	size_t spcap;
	struct slot *tab;
	size_t tabcap;
	struct prefix *pf; /* reference: per-token prefix hashes, see token_hashes() */
	size_t pfcap;
	/* the n-gram rules, see rep_prepare() */
	unsigned char *cat; /* zero bytes, the words concatenated, zero bytes */
	size_t catcap;
	uint32_t *rep; /* REP_ARRAYS arrays of ntok + 1 */
	size_t repcap;
	unsigned char *uniq; /* U_PREFIX, U_SUFFIX per token */
	size_t uniqcap;
	uint16_t *wsketch; /* word counts per hash bucket */
	size_t wsketchcap;
	uint64_t *seen; /* bitmaps: prefix seen, seen twice, suffix seen, twice */
	size_t seencap;
	unsigned char *psketch; /* n-gram counts per bucket: 0, 1, 2+ */
	size_t psketchcap;
	uint64_t *h64; /* hashes of the candidate n-grams */
	size_t h64cap;
	uint32_t maxchars; /* of the longest token */
	struct tok_stats stats; /* of tok, from split_fast */
	struct span *lines; /* str.splitlines() of the text, see py_lines() */
	size_t nlines, linescap;
	int have_lines;
	int reference; /* qf_check_reference: the slow path */
	struct qn_buf line; /* C4: a line without its citations */
	struct qn_buf lower; /* bad words: the lowercased text */
};

void qf_result_init(struct qf_result *r)
{
	memset(r, 0, sizeof *r);
	qn_buf_init(&r->text, QF_MAX_DOC_BYTES);
}

void qf_result_release(struct qf_result *r)
{
	struct qf_scratch *x = r->scratch;
	if (x) {
		free(x->tok);
		free(x->sp);
		free(x->tab);
		free(x->pf);
		free(x->cat);
		free(x->rep);
		free(x->uniq);
		free(x->wsketch);
		free(x->psketch);
		free(x->seen);
		free(x->h64);
		free(x->lines);
		qn_buf_release(&x->line);
		qn_buf_release(&x->lower);
		free(x);
	}
	qn_buf_release(&r->text);
	memset(r, 0, sizeof *r);
}

/* The lines of str.splitlines() of the text, found once per document. */
static int py_lines(struct qf_scratch *x, const char *s, size_t n)
{
	size_t pos = 0, a, b, k = 0;
	if (x->have_lines)
		return 0;
	while (next_pyline(s, n, &pos, &a, &b)) {
		if (k == x->linescap &&
		    grow((void **)&x->lines, &x->linescap, k + 1, sizeof *x->lines) < 0)
			return -1;
		x->lines[k].off = (uint32_t)a;
		x->lines[k++].len = (uint32_t)(b - a);
	}
	x->nlines = k;
	x->have_lines = 1;
	return 0;
}

static int push_span(struct qf_scratch *x, size_t *n, size_t a, size_t b)
{
	if (*n == x->spcap && grow((void **)&x->sp, &x->spcap, *n + 1, sizeof *x->sp) < 0)
		return -1;
	x->sp[*n].off = (uint32_t)a;
	x->sp[*n].len = (uint32_t)(b - a);
	(*n)++;
	return 0;
}

/*
 * Splits [from, to) into spans at runs of at least min_nl newlines (the
 * run itself belongs to no span), as re.split(r"\n{min_nl,}") does.
 */
static int split_newlines(struct qf_scratch *x, const char *s, size_t from, size_t to,
			  int min_nl, size_t *ns)
{
	size_t st = from, i = from;
	const char *p;

	*ns = 0;
	while (i < to && (p = memchr(s + i, '\n', to - i))) {
		i = (size_t)(p - s);
		if (min_nl < 2 || (i + 1 < to && s[i + 1] == '\n')) {
			if (push_span(x, ns, st, i) < 0)
				return -1;
			while (i < to && s[i] == '\n')
				i++;
			st = i;
		} else {
			i++;
		}
	}
	return push_span(x, ns, st, to);
}

/* A table slot for hash h: the polynomial hashes' low bits are weak, so mix. */
static inline size_t slot_of(uint64_t h, size_t mask)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h & mask;
}

/*
 * An empty open-addressing table with room for n entries: struct slot
 * entries, or (compact) 8-byte entries, tag << 32 | index + 1, followed by
 * n uint32_t counts. Returns the mask, 0 when memory ran out.
 */
static size_t table_sized(struct qf_scratch *x, size_t n, int compact)
{
	size_t size = 16, bytes;
	while (size < 2 * n)
		size *= 2;
	bytes = compact ? size * 8 + n * 4 : size * sizeof *x->tab;
	if (bytes > x->tabcap * sizeof *x->tab) {
		size_t slots = (bytes + sizeof *x->tab - 1) / sizeof *x->tab;
		free(x->tab);
		x->tabcap = 0;
		x->tab = malloc(slots * sizeof *x->tab);
		if (!x->tab)
			return 0;
		x->tabcap = slots;
	}
	memset(x->tab, 0, compact ? size * 8 : bytes);
	return size - 1;
}

static size_t table_for(struct qf_scratch *x, size_t n) { return table_sized(x, n, 0); }

/*
 * datatrove's find_duplicates: the elements seen before, and their total
 * length in code points. -1 when memory ran out.
 */
static int find_duplicates(struct qf_scratch *x, const char *s, size_t n, uint64_t *dups,
			   uint64_t *dup_chars)
{
	size_t mask = table_for(x, n);
	*dups = *dup_chars = 0;
	if (!mask)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *p = s + x->sp[i].off;
		uint32_t l = x->sp[i].len;
		uint64_t h = XXH3_64bits(p, l);
		size_t j = slot_of(h, mask);
		for (;; j = (j + 1) & mask) {
			struct slot *e = &x->tab[j];
			if (!e->first) {
				e->h = h;
				e->first = (uint32_t)i + 1;
				break;
			}
			const struct span *f = &x->sp[e->first - 1];
			if (e->h == h && f->len == l && !memcmp(s + f->off, p, l)) {
				(*dups)++;
				*dup_chars += count_chars(p, l);
				break;
			}
		}
	}
	return 0;
}

/* ---- length ----------------------------------------------------------- */

#define REJECT(f, why)                                                                   \
	do {                                                                             \
		r->filter = (f);                                                         \
		r->reason = (why);                                                       \
		return 1;                                                                \
	} while (0)

#define FAIL_OOM -1

static int check_length(const struct qf_config *c, size_t chars, struct qf_result *r)
{
	if (c->min_chars && chars < c->min_chars)
		REJECT("length", "length_too_short");
	if (c->max_chars && chars > c->max_chars)
		REJECT("length", "length_too_long");
	return 0;
}
/* ---- Gopher repetition ------------------------------------------------- */

#define HASH_P 0x9e3779b97f4a7c15ull

/*
 * Polynomial hashes mod 2^64 of the words concatenated (cat) and of the
 * words each followed by a space (sep), kept as prefixes so that any n-gram's
 * hash is O(1): with pre[j] the hash of words[0:j] and pw[j] = P^(bytes
 * before word j), hash(words[i:i+n]) = pre[i+n] - pre[i] * pw[i+n] * ipw[i],
 * ipw being powers of P's inverse (P is odd). Equal hashes are confirmed by
 * comparing the words, so a collision costs time, never a wrong answer.
 */
struct prefix {
	uint64_t cat, cat_pw, cat_ipw;
	uint64_t sep, sep_pw, sep_ipw;
	uint64_t chars; /* code points of words[0:j] */
};

static uint64_t inverse(uint64_t a)
{
	uint64_t x = a; /* Newton's iteration; a is odd */
	for (int k = 0; k < 6; k++)
		x *= 2 - a * x;
	return x;
}

static int token_hashes(struct qf_scratch *x, const char *s)
{
	const uint64_t pinv = inverse(HASH_P);
	struct prefix *f;

	if (grow((void **)&x->pf, &x->pfcap, x->ntok + 1, sizeof *x->pf) < 0)
		return -1;
	f = x->pf;
	f[0] = (struct prefix){0, 1, 1, 0, 1, 1, 0};
	for (size_t i = 0; i < x->ntok; i++) {
		const unsigned char *p = (const unsigned char *)s + x->tok[i].off;
		uint64_t h = f[i].cat, hs = f[i].sep, pl = 1, il = 1;
		for (uint32_t k = 0; k < x->tok[i].len; k++) {
			uint64_t v = (uint64_t)p[k] + 1;
			h = h * HASH_P + v;
			hs = hs * HASH_P + v;
			pl *= HASH_P;
			il *= pinv;
		}
		hs = hs * HASH_P + (uint64_t)' ' + 1;
		uint64_t pw = f[i].cat_pw * pl, ipw = f[i].cat_ipw * il;
		uint64_t pws = f[i].sep_pw * pl * HASH_P, ipws = f[i].sep_ipw * il * pinv;
		f[i + 1] = (struct prefix){h, pw, ipw, hs, pws, ipws, f[i].chars + x->tok[i].chars};
	}
	return 0;
}

/* Hash of words[i:i+n] joined by one space (sep) or by nothing. */
static uint64_t ngram_hash(const struct qf_scratch *x, size_t i, size_t n, int sep)
{
	const struct prefix *a = &x->pf[i], *b = &x->pf[i + n];
	if (sep)
		return b->sep - a->sep * b->sep_pw * a->sep_ipw;
	return b->cat - a->cat * b->cat_pw * a->cat_ipw;
}

/* " ".join(words[a:a+n]) == " ".join(words[b:b+n]) */
static int ngram_eq_sep(const char *s, const struct qf_token *t, size_t a, size_t b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (t[a + k].len != t[b + k].len || memcmp(s + t[a + k].off, s + t[b + k].off, t[a + k].len))
			return 0;
	return 1;
}

/* "".join(words[a:a+n]) == "".join(words[b:b+n]) */
static int ngram_eq_cat(const char *s, const struct qf_token *t, size_t a, size_t b, size_t n)
{
	size_t ia = a, ib = b, ea = a + n, eb = b + n;
	uint32_t oa = 0, ob = 0;
	for (;;) {
		while (ia < ea && oa == t[ia].len)
			ia++, oa = 0;
		while (ib < eb && ob == t[ib].len)
			ib++, ob = 0;
		if (ia == ea || ib == eb)
			return ia == ea && ib == eb;
		uint32_t k = t[ia].len - oa;
		if (t[ib].len - ob < k)
			k = t[ib].len - ob;
		if (memcmp(s + t[ia].off + oa, s + t[ib].off + ob, k))
			return 0;
		oa += k;
		ob += k;
	}
}

static size_t ngram_chars(const struct qf_scratch *x, size_t i, size_t n, int sep)
{
	return (size_t)(x->pf[i + n].chars - x->pf[i].chars) + (sep ? n - 1 : 0);
}

/* find_top_duplicate: len(most common n-gram) * its count; -1 on no memory. */
static long long top_duplicate(struct qf_scratch *x, const char *s, size_t n)
{
	size_t m = x->ntok - n + 1, mask = table_sized(x, m, 1);
	uint32_t best_first = 1, best_count = 1;
	uint64_t *tab = (uint64_t *)x->tab;
	uint32_t *count = (uint32_t *)x->tab + 2 * (mask + 1);
	if (!mask)
		return -1;
	for (size_t i = 0; i < m; i++) {
		uint64_t h = ngram_hash(x, i, n, ' '), tag = h & 0xffffffff00000000ull;
		for (size_t j = slot_of(h, mask);; j = (j + 1) & mask) {
			uint64_t e = tab[j];
			if (!e) {
				tab[j] = tag | (uint32_t)(i + 1);
				count[i] = 1;
				break;
			}
			uint32_t f = (uint32_t)e;
			if ((e & 0xffffffff00000000ull) == tag && ngram_eq_sep(s, x->tok, f - 1, i, n)) {
				/* Counter.most_common(1): the highest count, the first
				 * seen on a tie */
				uint32_t k = ++count[f - 1];
				if (k > best_count || (k == best_count && f < best_first)) {
					best_count = k;
					best_first = f;
				}
				break;
			}
		}
	}
	return (long long)ngram_chars(x, best_first - 1, n, 1) * best_count;
}

/* find_all_duplicate: characters of repeated n-grams, skipping past each. */
static long long all_duplicate(struct qf_scratch *x, const char *s, size_t n, long long stop)
{
	size_t m = x->ntok - n + 1, mask = table_sized(x, m, 1), i = 0;
	long long rep = 0;
	if (!mask)
		return -1;
	uint64_t *tab = (uint64_t *)x->tab;
	while (i < m) {
		uint64_t h = ngram_hash(x, i, n, 0), tag = h & 0xffffffff00000000ull;
		size_t j = slot_of(h, mask);
		int seen = 0;
		for (;; j = (j + 1) & mask) {
			uint64_t e = tab[j];
			if (!e) {
				tab[j] = tag | (uint32_t)(i + 1);
				break;
			}
			if ((e & 0xffffffff00000000ull) == tag &&
			    ngram_eq_cat(s, x->tok, (uint32_t)e - 1, i, n)) {
				seen = 1;
				break;
			}
		}
		if (seen) {
			rep += (long long)ngram_chars(x, i, n, 0);
			if (rep > stop)
				break; /* it only grows: the verdict is known */
			i += n;
		} else {
			i++;
		}
	}
	return rep;
}

/*
 * The least k with (double)k / len > frac: a count compares to it instead
 * of being divided. LLONG_MAX when no count can reach it (frac NaN, or
 * frac * len past any count), 0 when every count does.
 */
static long long least_over(double frac, double len)
{
	if (!(frac * len < 1e19))
		return LLONG_MAX;
	if (frac < 0)
		return 0;
	long long k = (long long)(frac * len);
	while (k > 0 && (double)(k - 1) / len > frac)
		k--;
	while ((double)k / len <= frac)
		k++;
	return k;
}

/*
 * The fast path for the n-gram rules; the functions above are the reference
 * it must agree with (qf_check_reference, tests/unit/test_filters.c).
 *
 * rep_prepare: T, the words concatenated ("".join(words)); tp[i] the offset
 * of word i in T, cc[i] the code points of words[0:i]; wc[i] an upper bound
 * on the count of word i (a count per hash bucket: words that share a
 * bucket add up); bit U_PREFIX of uniq[i] when the QF_PFX bytes of T from
 * word i's start occur at no other word start, bit U_SUFFIX when the QF_PFX
 * bytes of T up to word i's start (the end of word i - 1) end no other
 * word (counted per hash bucket too, so a collision only clears a bit).
 *
 * Top n-grams: the most common n-gram's count is at most the count of each
 * of its words, so chars(n-gram at i) * min(wc[i..i+n)) bounds the rule's
 * value at every i; only when some i reaches the threshold are exact word
 * ids built (rep_exact_ids) and each n-gram given the exact id of (id of
 * its (n-1)-gram, id of its last word) (ngram_ids), an n-gram whose
 * (n-1)-gram is seen once being seen once.
 *
 * Duplicated n-grams: two equal "".join n-grams of QF_PFX bytes or more
 * have equal first and last QF_PFX bytes, so an n-gram whose prefix or
 * suffix is unique equals no other; shorter n-grams only equal n-grams as
 * short. Only the other positions, the candidates, can be seen or be found,
 * and the walk visits them alone. The repeated chars it adds up lie in
 * windows of n words at candidates, which do not overlap: when the union
 * of the candidates' windows is under the threshold the rule passes. If
 * not, the candidates whose n-gram hash shares a bucket with no other's
 * go too, and only then the walk runs (all_duplicate_fast).
 */
#define QF_PFX 16
#define QF_PAD 32
#define ONCE UINT32_MAX
/* x->rep holds these arrays, ntok + 1 entries each */
enum { R_TP, R_CC, R_WC, R_CAND, R_WID, R_GID, R_CNT, R_CNT2, REP_ARRAYS };
enum { U_PREFIX = 1, U_SUFFIX = 2 };

static inline uint32_t *rep_array(const struct qf_scratch *x, int k)
{
	return x->rep + (size_t)k * (x->ntok + 1);
}

/* The first k (< 8) bytes of v as loaded from memory, the others zero. */
static inline uint64_t first_bytes(uint64_t v, size_t k) { return v & prefix_mask(k); }

/* A bucket of 2^bits for the 16 bytes a, b: a product's top bits depend on
 * every bit of the factor. */
static inline uint32_t bucket16(uint64_t a, uint64_t b, unsigned bits)
{
	return (uint32_t)((a * 0x9e3779b97f4a7c15ull + b * 0xbf58476d1ce4e5b9ull) >> (64 - bits));
}

static unsigned log2_at_least(size_t n)
{
	unsigned k = 6;
	while (((size_t)1 << k) < n)
		k++;
	return k;
}

/* T (x->cat + QF_PFX) holds the words concatenated, from split_fast. */
static int rep_prepare(struct qf_scratch *x)
{
	size_t nt = x->ntok;
	unsigned wbits = log2_at_least(4 * nt), pbits = log2_at_least(16 * nt);
	size_t words = (size_t)1 << (pbits - 6);
	if (grow((void **)&x->rep, &x->repcap, REP_ARRAYS * (nt + 1), sizeof *x->rep) < 0 ||
	    grow((void **)&x->uniq, &x->uniqcap, nt + 1, 1) < 0 ||
	    grow((void **)&x->wsketch, &x->wsketchcap, (size_t)1 << wbits, sizeof(uint16_t)) < 0 ||
	    grow((void **)&x->seen, &x->seencap, 4 * words, sizeof *x->seen) < 0 ||
	    grow((void **)&x->psketch, &x->psketchcap, 16 * nt + 64, 1) < 0 ||
	    grow((void **)&x->h64, &x->h64cap, nt + 1, sizeof *x->h64) < 0)
		return -1;
	uint32_t *tp = rep_array(x, R_TP), *cc = rep_array(x, R_CC), *wc = rep_array(x, R_WC),
		 *pkey = rep_array(x, R_CAND), *skey = rep_array(x, R_GID);
	uint16_t *wsk = x->wsketch;
	uint64_t *pseen = x->seen, *ptwice = pseen + words, *sseen = ptwice + words,
		 *stwice = sseen + words;
	/* T has QF_PFX zero bytes before it, so every suffix can be read */
	unsigned char *T = x->cat + QF_PFX;
	uint32_t pos = 0, chars = 0, maxchars = 0;
	memset(x->cat, 0, QF_PFX);
	memset(T + x->stats.bytes, 0, QF_PAD);
	memset(wsk, 0, ((size_t)1 << wbits) * sizeof *wsk);
	memset(pseen, 0, 4 * words * sizeof *pseen);
	for (size_t i = 0; i < nt; i++) {
		const unsigned char *p = T + pos;
		size_t l = x->tok[i].len;
		uint64_t a, b, c, d, pb, sb;
		uint32_t pk, sk, wk;
		tp[i] = pos;
		cc[i] = chars;
		pos += (uint32_t)l;
		chars += x->tok[i].chars;
		maxchars = x->tok[i].chars > maxchars ? x->tok[i].chars : maxchars;
		memcpy(&a, p, 8);
		memcpy(&b, p + 8, 8);
		memcpy(&c, p + l - 16, 8);
		memcpy(&d, p + l - 8, 8);
		pk = bucket16(a, b, pbits);
		sk = bucket16(c, d, pbits);
		if (l <= 16) {
			if (l < 8)
				a = first_bytes(a, l), b = 0;
			else
				b = first_bytes(b, l - 8);
			wk = bucket16(a ^ l, b, wbits);
		} else {
			wk = (uint32_t)(XXH3_64bits(p, l) >> (64 - wbits));
		}
		pkey[i] = pk;
		skey[i] = sk; /* of the word end i + 1 */
		wc[i] = wk;
		pb = 1ull << (pk & 63);
		sb = 1ull << (sk & 63);
		ptwice[pk >> 6] |= pseen[pk >> 6] & pb;
		pseen[pk >> 6] |= pb;
		stwice[sk >> 6] |= sseen[sk >> 6] & sb;
		sseen[sk >> 6] |= sb;
		wsk[wk]++;
	}
	x->maxchars = maxchars;
	tp[nt] = pos;
	cc[nt] = chars;
	unsigned char *uq = x->uniq, suffix = 0;
	for (size_t i = 0; i < nt; i++) {
		/* a count that may have wrapped is no bound: say the largest */
		wc[i] = nt < UINT16_MAX ? wsk[wc[i]] : UINT32_MAX;
		uq[i] = (unsigned char)(suffix | (~ptwice[pkey[i] >> 6] >> (pkey[i] & 63) & 1));
		suffix = (unsigned char)((~stwice[skey[i] >> 6] >> (skey[i] & 63) & 1) << 1);
	}
	uq[nt] = suffix;
	return 0;
}

/*
 * may[n] = 1 when the top n-gram rule could reach stop[n], for n = 1 .. g:
 * at some i, chars(n-gram at i) * min(wc[i..i+n)) >= stop[n] (LLONG_MAX:
 * not asked). An n-gram has at most n * (maxchars + 1) - 1 chars, so only
 * positions whose first words are counted at least stop[n] over that can
 * reach it: those are listed first (in list), then checked.
 */
static void top_may_reach(const struct qf_scratch *x, size_t g, const long long *stop, int *may,
			  uint32_t *list)
{
	const uint32_t *wc = rep_array(x, R_WC), *cc = rep_array(x, R_CC);
	unsigned long long st[QF_NGRAM_MAX + 1], least1 = UINT64_MAX, least2 = UINT64_MAX;
	unsigned hit[QF_NGRAM_MAX + 1] = {0};
	size_t nt = x->ntok, nl = 0;
	for (size_t n = 1; n <= g; n++) {
		st[n] = (unsigned long long)stop[n];
		unsigned long long most = n * (x->maxchars + 1ull) - 1;
		unsigned long long need = st[n] / most + (st[n] % most != 0);
		if (n == 1)
			least1 = need;
		else
			least2 = need < least2 ? need : least2;
	}
	for (size_t i = 0; i + 1 < nt; i++) {
		uint32_t m2 = wc[i + 1] < wc[i] ? wc[i + 1] : wc[i];
		list[nl] = (uint32_t)i;
		nl += (wc[i] >= least1) | (m2 >= least2);
	}
	if (nt)
		list[nl++] = (uint32_t)(nt - 1);
	for (size_t k = 0; k < nl; k++) {
		size_t i = list[k], top = nt - i < g ? nt - i : g;
		uint32_t m = UINT32_MAX, c0 = cc[i];
		for (size_t n = 1; n <= top; n++) {
			m = wc[i + n - 1] < m ? wc[i + n - 1] : m;
			hit[n] |= (unsigned long long)(cc[i + n] - c0 + n - 1) * m >= st[n];
		}
	}
	for (size_t n = 1; n <= g; n++)
		may[n] = hit[n] != 0;
}

/* Exact word ids (dense, in order of first occurrence) and their counts. */
static int rep_exact_ids(struct qf_scratch *x)
{
	size_t nt = x->ntok, nw = 0, mask = table_for(x, nt);
	const uint32_t *tp = rep_array(x, R_TP);
	uint32_t *wid = rep_array(x, R_WID), *cnt = rep_array(x, R_CNT);
	const unsigned char *T = x->cat + QF_PFX;
	if (!mask)
		return -1;
	for (size_t i = 0; i < nt; i++) {
		const unsigned char *p = T + tp[i];
		uint32_t l = tp[i + 1] - tp[i];
		uint64_t h = XXH3_64bits(p, l);
		for (size_t j = slot_of(h, mask);; j = (j + 1) & mask) {
			struct slot *e = &x->tab[j];
			if (!e->first) {
				e->h = h;
				e->first = (uint32_t)i + 1;
				wid[i] = (uint32_t)nw;
				cnt[nw++] = 1;
				break;
			}
			uint32_t f = e->first - 1;
			if (e->h == h && tp[f + 1] - tp[f] == l && !memcmp(T + tp[f], p, l)) {
				wid[i] = wid[f];
				cnt[wid[f]]++;
				break;
			}
		}
	}
	memcpy(rep_array(x, R_GID), wid, nt * sizeof *wid);
	return 0;
}

/*
 * Advances the " ".join n-gram ids from n - 1 to n (gid and cnt hold the
 * (n-1)-gram ids and their counts, ONCE for one seen once; n >= 2).
 */
static int ngram_ids(struct qf_scratch *x, size_t n, uint32_t **cnt, uint32_t **cnt2)
{
	size_t nt = x->ntok, m = nt - n + 1, ids = 0;
	uint32_t *wid = rep_array(x, R_WID), *gid = rep_array(x, R_GID), *oc = *cnt, *nc = *cnt2;
	size_t mask = table_for(x, m);
	if (!mask)
		return -1;
	for (size_t i = 0; i < m; i++) {
		uint32_t g = gid[i];
		if (g == ONCE || oc[g] == 1) {
			gid[i] = ONCE;
			continue;
		}
		uint64_t key = (uint64_t)g << 32 | wid[i + n - 1];
		for (size_t j = slot_of(key, mask);; j = (j + 1) & mask) {
			struct slot *e = &x->tab[j];
			if (!e->first) {
				e->h = key;
				e->first = (uint32_t)ids + 1;
				gid[i] = (uint32_t)ids;
				nc[ids++] = 1;
				break;
			}
			if (e->h == key) {
				gid[i] = e->first - 1;
				nc[e->first - 1]++;
				break;
			}
		}
	}
	*cnt = nc;
	*cnt2 = oc;
	return 0;
}

/* top_duplicate from the ids of the n-grams: ids in order of first occurrence */
static long long top_duplicate_fast(const struct qf_scratch *x, size_t n, const uint32_t *cnt)
{
	size_t m = x->ntok - n + 1;
	const uint32_t *cc = rep_array(x, R_CC), *gid = rep_array(x, R_GID);
	uint32_t best = 1, best_id = ONCE;
	size_t first = 0;
	for (size_t i = 0; i < m; i++) {
		uint32_t g = gid[i];
		if (g == ONCE || cnt[g] <= best)
			continue;
		/* the first n-gram of the most frequent id: a later id with the
		 * same count is never taken (its first occurrence is later) */
		if (g != best_id) {
			best = cnt[g];
			best_id = g;
			first = i;
		}
	}
	return (long long)(cc[first + n] - cc[first] + n - 1) * best;
}

/* The candidates for the smallest n-gram size n of the duplicate rules. */
static size_t dup_candidates(struct qf_scratch *x, size_t n)
{
	const uint32_t *tp = rep_array(x, R_TP);
	uint32_t *cand = rep_array(x, R_CAND);
	size_t k = 0;
	const unsigned char *uq = x->uniq;
	for (size_t i = 0; i + n <= x->ntok; i++) {
		cand[k] = (uint32_t)i;
		k += (tp[i + n] - tp[i] < QF_PFX) | !(uq[i] & U_PREFIX);
	}
	return k;
}

/*
 * A hash of the l bytes at p from their first and last 16 bytes and l
 * (equal strings hash alike; the walk compares the bytes); p has 16
 * readable bytes past l.
 */
static inline uint64_t ends_hash(const unsigned char *p, size_t l)
{
	uint64_t a, b, c = 0, d = 0;
	memcpy(&a, p, 8);
	memcpy(&b, p + 8, 8);
	if (l < 8) {
		a = first_bytes(a, l), b = 0;
	} else if (l < 16) {
		b = first_bytes(b, l - 8);
	} else {
		memcpy(&c, p + l - 16, 8);
		memcpy(&d, p + l - 8, 8);
	}
	uint64_t h = a * 0x9e3779b97f4a7c15ull + b * 0xbf58476d1ce4e5b9ull +
		     (c * 0x94d049bb133111ebull ^ d * 0xd6e8feb86659fd93ull) + l;
	return h ^ (h >> 29);
}

/* Characters of the union of the windows [i, i + n) at positions sel[0..k). */
static long long windows_chars(const struct qf_scratch *x, const uint32_t *sel, size_t k, size_t n)
{
	const uint32_t *cc = rep_array(x, R_CC);
	long long chars = 0;
	size_t end = 0;
	for (size_t j = 0; j < k; j++) {
		size_t i = sel[j];
		chars += cc[i + n] - cc[i > end ? i : end];
		end = i + n;
	}
	return chars;
}

/*
 * find_all_duplicate over the *ncand candidates (of a size <= n): the
 * characters of repeated n-grams, skipping past each; stops early once
 * past limit. When a bound on that count is not past limit it returns the
 * bound instead: first the union of the candidates' windows, then of the
 * candidates whose n-gram shares its hash bucket with another's. The
 * candidates are narrowed to those of size n + 1.
 */
static long long all_duplicate_fast(struct qf_scratch *x, size_t n, size_t *ncand, long long limit)
{
	size_t nt = x->ntok, k, ns = 0, pos = 0, kept = 0;
	const uint32_t *tp = rep_array(x, R_TP), *cc = rep_array(x, R_CC);
	uint32_t *sel = rep_array(x, R_CNT2), *cand = rep_array(x, R_CAND);
	const unsigned char *T = x->cat + QF_PFX, *uq = x->uniq;
	long long rep = 0;

	for (k = 0; k < *ncand && cand[k] + n <= nt; k++) {
		size_t i = cand[k];
		sel[ns] = (uint32_t)i;
		ns += (tp[i + n] - tp[i] < QF_PFX) | !((uq[i] & U_PREFIX) | (uq[i + n] & U_SUFFIX));
		/* a larger size keeps the positions still short at n + 1 */
		cand[kept] = (uint32_t)i;
		kept += i + n < nt && ((tp[i + n + 1] - tp[i] < QF_PFX) | !(uq[i] & U_PREFIX));
	}
	*ncand = kept;
	long long bound = windows_chars(x, sel, ns, n);
	if (bound <= limit)
		return bound;

	/* the n-grams' hashes, counted per bucket (0, 1 or 2) */
	unsigned bits = log2_at_least(8 * ns);
	unsigned char *psk = x->psketch;
	uint64_t *h = x->h64;
	memset(psk, 0, (size_t)1 << bits);
	for (k = 0; k < ns; k++) {
		size_t i = sel[k];
		h[k] = ends_hash(T + tp[i], tp[i + n] - tp[i]);
		size_t b = (size_t)(h[k] >> (64 - bits));
		psk[b] += psk[b] < 2;
	}
	size_t nr = 0;
	for (k = 0; k < ns; k++) {
		sel[nr] = sel[k];
		h[nr] = h[k];
		nr += psk[h[k] >> (64 - bits)] == 2;
	}
	bound = windows_chars(x, sel, nr, n);
	if (bound <= limit)
		return bound;

	size_t mask = table_for(x, nr);
	if (!mask)
		return -1;
	for (k = 0; k < nr; k++) {
		size_t i = sel[k];
		uint32_t l = tp[i + n] - tp[i];
		if (i < pos)
			continue;
		const unsigned char *p = T + tp[i];
		int seen = 0;
		for (size_t j = slot_of(h[k], mask);; j = (j + 1) & mask) {
			struct slot *e = &x->tab[j];
			if (!e->first) {
				e->h = h[k];
				e->first = (uint32_t)i + 1;
				break;
			}
			uint32_t f = e->first - 1;
			if (e->h == h[k] && tp[f + n] - tp[f] == l && !memcmp(T + tp[f], p, l)) {
				seen = 1;
				break;
			}
		}
		if (seen) {
			rep += cc[i + n] - cc[i];
			if (rep > limit)
				break; /* it only grows: the verdict is known */
			pos = i + n;
		}
	}
	return rep;
}

static const char *const top_reason[QF_NGRAM_MAX + 1] = {
	"top_0_gram", "top_1_gram", "top_2_gram", "top_3_gram", "top_4_gram", "top_5_gram",
	"top_6_gram", "top_7_gram", "top_8_gram", "top_9_gram", "top_10_gram"};
static const char *const dup_reason[QF_NGRAM_MAX + 1] = {
	"duplicated_0_n_grams", "duplicated_1_n_grams", "duplicated_2_n_grams",
	"duplicated_3_n_grams", "duplicated_4_n_grams", "duplicated_5_n_grams",
	"duplicated_6_n_grams", "duplicated_7_n_grams", "duplicated_8_n_grams",
	"duplicated_9_n_grams", "duplicated_10_n_grams"};

static int ngrams_fast(const struct qf_config *c, struct qf_scratch *x, const char *s, size_t n,
		       double len, struct qf_result *r)
{
	static const char F[] = "gopher_repetition";
	size_t nt = x->ntok, at = 1, gmin = 0, ncand = 0;
	uint32_t *cnt = NULL, *cnt2 = NULL;
	int need = 0, exact = 0;
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++)
		if ((c->top_ngram_frac[g] || c->dup_ngram_frac[g]) && nt >= g)
			need = 1;
	if (!need)
		return 0;
	if (rep_prepare(x) < 0)
		return FAIL_OOM;
	long long top_stop[QF_NGRAM_MAX + 1];
	int may[QF_NGRAM_MAX + 1];
	size_t gmax = 0;
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++) {
		top_stop[g] = c->top_ngram_frac[g] && nt >= g
				  ? least_over(c->top_ngram_frac[g], len)
				  : LLONG_MAX;
		gmax = top_stop[g] != LLONG_MAX ? g : gmax;
	}
	top_may_reach(x, gmax, top_stop, may, rep_array(x, R_CAND));
	for (size_t g = 1; g <= gmax; g++) {
		if (top_stop[g] == LLONG_MAX || !may[g])
			continue;
		if (!exact) {
			if (rep_exact_ids(x) < 0)
				return FAIL_OOM;
			cnt = rep_array(x, R_CNT);
			cnt2 = rep_array(x, R_CNT2);
			exact = 1;
		}
		while (at < g)
			if (ngram_ids(x, ++at, &cnt, &cnt2) < 0)
				return FAIL_OOM;
		long long top = top_duplicate_fast(x, g, cnt);
		if ((double)top / len > c->top_ngram_frac[g])
			REJECT(F, top_reason[g]);
	}
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++) {
		if (!c->dup_ngram_frac[g] || nt < g)
			continue;
		long long stop = least_over(c->dup_ngram_frac[g], len);
		if (stop == LLONG_MAX)
			continue;
		if (!gmin)
			ncand = dup_candidates(x, gmin = g);
		long long rep = all_duplicate_fast(x, g, &ncand, stop - 1);
		if (rep < 0)
			return FAIL_OOM;
		if ((double)rep / len > c->dup_ngram_frac[g])
			REJECT(F, dup_reason[g]);
	}
	return 0;
}

static int gopher_repetition(const struct qf_config *c, struct qf_scratch *x, const char *s,
			     size_t n, size_t chars, struct qf_result *r)
{
	static const char F[] = "gopher_repetition";
	uint64_t dups, dchars;
	size_t ns = 0, a = 0, b = n;
	double len = (double)chars;

	/* paragraphs: re.split(r"\n{2,}", text.strip()) */
	py_strip(s, &a, &b);
	if (split_newlines(x, s, a, b, 2, &ns) < 0 || find_duplicates(x, s, ns, &dups, &dchars) < 0)
		return FAIL_OOM;
	if (c->dup_para_frac && (double)dups / (double)ns > c->dup_para_frac)
		REJECT(F, "dup_para_frac");
	if (c->dup_para_char_frac && chars && (double)dchars / len > c->dup_para_char_frac)
		REJECT(F, "dup_para_char_frac");

	/* lines: re.split("\n+", text) */
	if (split_newlines(x, s, 0, n, 1, &ns) < 0 || find_duplicates(x, s, ns, &dups, &dchars) < 0)
		return FAIL_OOM;
	if (c->dup_line_frac && (double)dups / (double)ns > c->dup_line_frac)
		REJECT(F, "dup_line_frac");
	if (c->dup_line_char_frac && chars && (double)dchars / len > c->dup_line_char_frac)
		REJECT(F, "dup_line_char_frac");

	if (!chars)
		return 0;
	if (!x->reference)
		return ngrams_fast(c, x, s, n, len, r);
	int hashed = 0;
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++) {
		if (!c->top_ngram_frac[g] || x->ntok < g)
			continue;
		if (!hashed && token_hashes(x, s) < 0)
			return FAIL_OOM;
		hashed = 1;
		long long top = top_duplicate(x, s, g);
		if (top < 0)
			return FAIL_OOM;
		if ((double)top / len > c->top_ngram_frac[g])
			REJECT(F, top_reason[g]);
	}
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++) {
		if (!c->dup_ngram_frac[g] || x->ntok < g)
			continue;
		if (!hashed && token_hashes(x, s) < 0)
			return FAIL_OOM;
		hashed = 1;
		/* the least count that rejects, to stop counting early */
		long long rep = all_duplicate(x, s, g, least_over(c->dup_ngram_frac[g], len) - 1);
		if (rep < 0)
			return FAIL_OOM;
		if ((double)rep / len > c->dup_ngram_frac[g])
			REJECT(F, dup_reason[g]);
	}
	return 0;
}

/* ---- Gopher quality ---------------------------------------------------- */

static const char *const default_stop[] = {"the", "be", "to", "of", "and", "that", "have", "with"};

/*
 * The stop words in a small hash table of their first 8 bytes and length,
 * so that a token is checked with one probe and no branch; a list that
 * does not fit the table without a collision is compared word by word.
 */
#define STOP_BITS 7
struct stop_list {
	const char *const *w;
	size_t n, minlen, maxlen;
	int fast;
	uint64_t mult;
	struct {
		uint64_t key;
		uint32_t len, word; /* len 0: empty */
	} slot[1 << STOP_BITS];
};

static uint64_t first8(const char *p, size_t l)
{
	uint64_t v = 0;
	memcpy(&v, p, l < 8 ? l : 8);
	return v;
}

static inline size_t stop_slot(uint64_t mult, uint64_t key, size_t l)
{
	return (size_t)(((key ^ l) * mult) >> (64 - STOP_BITS));
}

static void stop_list_init(struct stop_list *sl, const struct qf_config *c)
{
	static const uint64_t mults[] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull,
					 0x94d049bb133111ebull, 0xd6e8feb86659fd93ull};
	sl->w = c->stop_words ? c->stop_words : default_stop;
	sl->n = c->stop_words ? c->n_stop_words : sizeof default_stop / sizeof *default_stop;
	sl->minlen = SIZE_MAX;
	sl->maxlen = 0;
	for (size_t i = 0; i < sl->n; i++) {
		size_t l = strlen(sl->w[i]);
		if (!l)
			continue;
		sl->minlen = l < sl->minlen ? l : sl->minlen;
		sl->maxlen = l > sl->maxlen ? l : sl->maxlen;
	}
	sl->fast = 0;
	if (sl->n > (1 << STOP_BITS) / 4)
		return;
	for (size_t m = 0; m < sizeof mults / sizeof *mults && !sl->fast; m++) {
		sl->mult = mults[m];
		sl->fast = 1;
		memset(sl->slot, 0, sizeof sl->slot);
		for (size_t i = 0; i < sl->n && sl->fast; i++) {
			size_t l = strlen(sl->w[i]);
			uint64_t key = first8(sl->w[i], l);
			size_t k = stop_slot(sl->mult, key, l);
			if (!l ||
			    (sl->slot[k].len == l && !strcmp(sl->w[sl->slot[k].word], sl->w[i])))
				continue; /* never matches, or listed twice */
			if (sl->slot[k].len)
				sl->fast = 0;
			sl->slot[k].key = key;
			sl->slot[k].len = (uint32_t)l;
			sl->slot[k].word = (uint32_t)i;
		}
	}
}

/* Is the token at w (l bytes, text ends at end) a stop word? */
static inline int is_stop(const struct stop_list *sl, const char *w, size_t l, const char *end)
{
	if (!sl->fast) {
		if (l < sl->minlen || l > sl->maxlen)
			return 0;
		for (size_t i = 0; i < sl->n; i++)
			if (sl->w[i][0] == w[0] && strlen(sl->w[i]) == l && !memcmp(sl->w[i], w, l))
				return 1;
		return 0;
	}
	uint64_t key;
	if (end - w >= 8) {
		memcpy(&key, w, 8);
		key &= prefix_mask(l);
	} else {
		key = first8(w, l);
	}
	size_t k = stop_slot(sl->mult, key, l);
	int hit = (sl->slot[k].key == key) & (sl->slot[k].len == l);
	if (hit && l > 8)
		hit = !memcmp(sl->w[sl->slot[k].word], w, l);
	return hit;
}

static int gopher_quality(const struct qf_config *c, struct qf_scratch *x, const char *s, size_t n,
			  struct qf_result *r)
{
	static const char F[] = "gopher_quality";
	size_t nw = x->ntok, nsym = 0, sumlen = 0, nalpha = 0, nstop = 0, hashes = 0, ell = 0;
	struct stop_list sl;

	stop_list_init(&sl, c);
	if (x->reference) {
		for (size_t i = 0; i < nw; i++) {
			const struct qf_token *t = &x->tok[i];
			if (!t->punct) {
				nsym++;
				sumlen += t->chars;
			}
			nalpha += t->alpha;
		}
		sl.fast = 0;
	} else {
		nsym = x->stats.words;
		sumlen = x->stats.word_chars;
		nalpha = x->stats.alpha;
		hashes = x->stats.hashes;
		ell = x->stats.ellipses;
	}
	if (c->min_stop_words)
		for (size_t i = 0; i < nw; i++)
			nstop += (size_t)is_stop(&sl, s + x->tok[i].off, x->tok[i].len, s + n);
	if (c->min_doc_words && (long long)nsym < c->min_doc_words)
		REJECT(F, "gopher_short_doc");
	if (c->max_doc_words && (long long)nsym > c->max_doc_words)
		REJECT(F, "gopher_long_doc");
	if (nsym) {
		double avg = (double)sumlen / (double)nsym;
		if (c->min_avg_word_length && avg < c->min_avg_word_length)
			REJECT(F, "gopher_below_avg_threshold");
		if (c->max_avg_word_length && avg > c->max_avg_word_length)
			REJECT(F, "gopher_above_avg_threshold");
	}

	if (x->reference) {
		/* text.count("#"), text.count("...") + text.count("\u2026") */
		size_t dots = 0;
		hashes = ell = 0;
		for (size_t i = 0; i < n; i++) {
			char ch = s[i];
			if (ch == '.') {
				dots++;
				continue;
			}
			ell += dots / 3;
			dots = 0;
			if (ch == '#')
				hashes++;
			else if (ch == '\xe2' && i + 2 < n && s[i + 1] == '\x80' && s[i + 2] == '\xa6')
				ell++;
		}
		ell += dots / 3;
	}
	if (nw && c->max_symbol_word_ratio) {
		if ((double)hashes / (double)nw > c->max_symbol_word_ratio)
			REJECT(F, "gopher_too_many_hashes");
		if ((double)ell / (double)nw > c->max_symbol_word_ratio)
			REJECT(F, "gopher_too_many_ellipsis");
	}

	size_t nl, bullets = 0, endell = 0;
	if (py_lines(x, s, n) < 0)
		return FAIL_OOM;
	nl = x->nlines;
	for (size_t k = 0; k < nl; k++) {
		size_t a = x->lines[k].off, b = a + x->lines[k].len, la = a, lb = b, l;
		while (la < b && (l = ws_at(s + la, b - la)))
			la += l;
		if (la < b && (s[la] == '-' || (b - la >= 3 && !memcmp(s + la, "\xe2\x80\xa2", 3))))
			bullets++;
		while (lb > a && (l = ws_before(s + a, lb - a)))
			lb -= l;
		if (ends_with(s + a, lb - a, "...", 3) || ends_with(s + a, lb - a, "\xe2\x80\xa6", 3))
			endell++;
	}
	if (nl && c->max_bullet_lines_ratio && (double)bullets / (double)nl > c->max_bullet_lines_ratio)
		REJECT(F, "gopher_too_many_bullets");
	if (nl && c->max_ellipsis_lines_ratio &&
	    (double)endell / (double)nl > c->max_ellipsis_lines_ratio)
		REJECT(F, "gopher_too_many_end_ellipsis");
	if (nw && c->max_non_alpha_words_ratio &&
	    (double)nalpha / (double)nw < c->max_non_alpha_words_ratio)
		REJECT(F, "gopher_below_alpha_threshold");
	if (c->min_stop_words && (long long)nstop < c->min_stop_words)
		REJECT(F, "gopher_enough_stop_words");
	return 0;
}
/* ---- C4 quality -------------------------------------------------------- */

static const char *const c4_line_names[QF_C4_NLINE] = {
	"too_long_word", "no_terminal_punc", "too_few_words", "javascript", "policy"};

const char *qf_c4_line_name(enum qf_c4_line w)
{
	return (unsigned)w < QF_C4_NLINE ? c4_line_names[w] : "unknown";
}

/*
 * Does s[i..] start with needle (lowercase ASCII) under Python's lower()?
 * Only ASCII letters and the Kelvin sign (lowercase 'k') lower to ASCII.
 */
static int lower_prefix(const char *s, size_t n, size_t i, const char *needle)
{
	for (; *needle; needle++) {
		if (i >= n)
			return 0;
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch | 0x20);
		if (ch == (unsigned char)*needle) {
			i++;
			continue;
		}
		if (*needle == 'k' && n - i >= 3 && !memcmp(s + i, "\xe2\x84\xaa", 3)) {
			i += 3;
			continue;
		}
		return 0;
	}
	return 1;
}


/*
 * The C4 substrings by their first two characters: a byte's bit in
 * c4_first says a needle may start with it, in c4_second that the needle's
 * second character may be it. Both characters are ASCII letters in every
 * needle, so a match needs both bits.
 */
enum { N_LOREM = 1, N_JS = 2, N_TERMS = 4, N_PRIVACY = 8, N_COOKIE = 16, N_USE = 32 };
#define C4F(c)                                                                                     \
	(unsigned char)(((c) == 'l' || (c) == 'L' ? N_LOREM : 0) |                                 \
			((c) == 'j' || (c) == 'J' ? N_JS : 0) |                                    \
			((c) == 't' || (c) == 'T' ? N_TERMS : 0) |                                 \
			((c) == 'p' || (c) == 'P' ? N_PRIVACY : 0) |                               \
			((c) == 'c' || (c) == 'C' ? N_COOKIE : 0) |                                \
			((c) == 'u' || (c) == 'U' ? N_USE : 0))
#define C4S(c)                                                                                     \
	(unsigned char)(((c) == 'o' || (c) == 'O' ? N_LOREM | N_COOKIE : 0) |                      \
			((c) == 'a' || (c) == 'A' ? N_JS : 0) |                                    \
			((c) == 'e' || (c) == 'E' ? N_TERMS : 0) |                                 \
			((c) == 'r' || (c) == 'R' ? N_PRIVACY : 0) |                               \
			((c) == 's' || (c) == 'S' ? N_USE : 0))
#define C4F4(c) C4F(c), C4F((c) + 1), C4F((c) + 2), C4F((c) + 3)
#define C4F16(c) C4F4(c), C4F4((c) + 4), C4F4((c) + 8), C4F4((c) + 12)
#define C4F64(c) C4F16(c), C4F16((c) + 16), C4F16((c) + 32), C4F16((c) + 48)
#define C4S4(c) C4S(c), C4S((c) + 1), C4S((c) + 2), C4S((c) + 3)
#define C4S16(c) C4S4(c), C4S4((c) + 4), C4S4((c) + 8), C4S4((c) + 12)
#define C4S64(c) C4S16(c), C4S16((c) + 16), C4S16((c) + 32), C4S16((c) + 48)
static const unsigned char c4_first[256] = {C4F64(0), C4F64(64), C4F64(128), C4F64(192)};
static const unsigned char c4_second[256] = {C4S64(0), C4S64(64), C4S64(128), C4S64(192)};

/* The shortest needle ("javascript") has 10 bytes. */
#define C4_MIN_NEEDLE 10

enum { HAS_LOREM = 1, HAS_JS = 2, HAS_CURLY = 4, HAS_POLICY = 8 };

/* Could a needle start at s[i]? */
static inline unsigned c4_at(const char *s, size_t i)
{
	return c4_first[(unsigned char)s[i]] & c4_second[(unsigned char)s[i + 1]];
}

static int c4_needles(const char *s, size_t n, size_t i, unsigned m)
{
	int f = 0;
	if ((m & N_LOREM) && lower_prefix(s, n, i, "lorem ipsum"))
		f |= HAS_LOREM;
	if ((m & N_JS) && lower_prefix(s, n, i, "javascript"))
		f |= HAS_JS;
	if (((m & N_TERMS) && lower_prefix(s, n, i, "terms of use")) ||
	    ((m & N_PRIVACY) && lower_prefix(s, n, i, "privacy policy")) ||
	    ((m & N_COOKIE) && lower_prefix(s, n, i, "cookie policy")) ||
	    ((m & N_USE) &&
	     (lower_prefix(s, n, i, "uses cookies") || lower_prefix(s, n, i, "use of cookies") ||
	      lower_prefix(s, n, i, "use cookies"))))
		f |= HAS_POLICY;
	return f;
}

static int c4_scan(const char *s, size_t n)
{
	int f = memchr(s, '{', n) ? HAS_CURLY : 0;
	size_t i = 0;
	/* 16 starts at a time: lo ja te pr co us, either case */
	for (; i + 16 + C4_MIN_NEEDLE <= n; i += 16) {
		u8x16 a = load16(s + i) | 0x20, b = load16(s + i + 1) | 0x20;
		u8x16 m = ((u8x16)(a == 'l') & (u8x16)(b == 'o')) |
			  ((u8x16)(a == 'j') & (u8x16)(b == 'a')) |
			  ((u8x16)(a == 't') & (u8x16)(b == 'e')) |
			  ((u8x16)(a == 'p') & (u8x16)(b == 'r')) |
			  ((u8x16)(a == 'c') & (u8x16)(b == 'o')) |
			  ((u8x16)(a == 'u') & (u8x16)(b == 's'));
		uint64_t w[2];
		memcpy(w, &m, 16);
		for (int h = 0; h < 2; h++) {
			while (w[h]) {
				size_t k = i + 8 * (size_t)h + first_zero_byte(~w[h]);
				w[h] &= ~byte_mask(first_zero_byte(~w[h]));
				f |= c4_needles(s, n, k, c4_at(s, k));
			}
		}
	}
	for (; i + C4_MIN_NEEDLE <= n; i++) {
		unsigned mk = c4_at(s, i);
		if (mk)
			f |= c4_needles(s, n, i, mk);
	}
	return f;
}

/* Length of a citation at s ("[12]", "[]", "[edit]", "[citation needed]"), or 0. */
static size_t citation_at(const char *s, size_t n)
{
	size_t i = 1;
	uint32_t cp;
	while (i < n) {
		if (s[i] >= '0' && s[i] <= '9') {
			i++;
			continue;
		}
		if ((unsigned char)s[i] >= 0x80) {
			size_t l = dec((const unsigned char *)s + i, n - i, &cp);
			if (cat(cp) == UTF8PROC_CATEGORY_ND) {
				i += l;
				continue;
			}
		}
		break;
	}
	if (i < n && s[i] == ']')
		return i + 1;
	if (n >= 6 && !memcmp(s, "[edit]", 6))
		return 6;
	if (n >= 17 && !memcmp(s, "[citation needed]", 17))
		return 17;
	return 0;
}

/*
 * Sentences in a line (quern's stand-in for NLTK's punkt): a sentence ends
 * at a run of . ? ! or U+2026, with closing quotes or brackets after it,
 * that is followed by whitespace. Counts up to limit (> 0) and stops there.
 */
static long count_sentences(const char *s, size_t n, long limit)
{
	long k = 0;
	int in = 0;
	size_t i = 0, l;
	uint32_t cp;

	while (i < n) {
		if (in) {
			/* inside a sentence only . ? ! and non-ASCII bytes matter */
			while (i < n && !(BCLASS(s[i]) & (Q_SENT | Q_HIGH)))
				i++;
			if (i >= n)
				break;
		}
		unsigned q = BCLASS(s[i]);
		if (q & Q_SPACE) {
			i++;
			continue;
		}
		if ((q & Q_HIGH) && (l = ws_at(s + i, n - i))) {
			i += l;
			continue;
		}
		if (!in) {
			if (++k >= limit)
				return k;
			in = 1;
		}
		int term = 0;
		for (;;) {
			if (i < n && (s[i] == '.' || s[i] == '?' || s[i] == '!')) {
				i++, term = 1;
			} else if (n - i >= 3 && !memcmp(s + i, "\xe2\x80\xa6", 3)) {
				i += 3, term = 1;
			} else {
				break;
			}
		}
		if (!term) {
			i += dec((const unsigned char *)s + i, n - i, &cp);
			continue;
		}
		for (;;) {
			if (i < n && (s[i] == '"' || s[i] == '\'' || s[i] == ')' || s[i] == ']')) {
				i++;
			} else if (n - i >= 3 && (!memcmp(s + i, "\xe2\x80\x9d", 3) ||
						  !memcmp(s + i, "\xe2\x80\x99", 3))) {
				i += 3;
			} else {
				break;
			}
		}
		if (i >= n || ws_at(s + i, n - i))
			in = 0;
	}
	return k;
}

/* Whitespace-separated words of s[a, b) (line.split()), counted up to max;
 * *too_long is set when one has more than max_chars code points (-1: off). */
static long c4_words(const char *s, size_t a, size_t b, long max, long max_chars, int *too_long)
{
	long words = 0;
	size_t l;
	*too_long = 0;
	/* no word is longer than the line */
	if (max_chars == -1 || (max_chars >= 0 && b - a <= (size_t)max_chars))
		max_chars = -1;
	for (size_t i = a; i < b && (words < max || max_chars != -1);) {
		if ((l = ws_at(s + i, b - i))) {
			i += l;
			continue;
		}
		size_t w = i;
		while (i < b && !ws_at(s + i, b - i))
			i++;
		words++;
		if (max_chars != -1 && (long long)count_chars(s + w, i - w) > max_chars)
			*too_long = 1;
	}
	return words;
}

/*
 * Tokens of the original text in [a, b), a stripped line, from the cursor
 * *k on: a line starts and ends at whitespace, so its tokens are the ones
 * the whole text has there.
 */
static long tokens_in(const struct qf_scratch *x, size_t *k, size_t a, size_t b)
{
	size_t i = *k, st;
	while (i < x->ntok && x->tok[i].off < a)
		i++;
	st = i;
	while (i < x->ntok && x->tok[i].off < b)
		i++;
	*k = i;
	return (long)(i - st);
}

/*
 * kept_tok: when not NULL, x->tok holds the tokens of s and *kept_tok gets
 * the token count of the text C4 keeps.
 */
static int c4_quality(const struct qf_config *c, struct qf_scratch *x, const char *s, size_t n,
		      struct qf_result *r, long *kept_tok)
{
	static const char F[] = "c4_quality";
	size_t a, b, tk = 0;
	long sentences = 0, ntok = 0;
	int first = 1;

	r->has_text = 1;
	qn_buf_reset(&r->text);
	if (py_lines(x, s, n) < 0)
		return FAIL_OOM;
	for (size_t line = 0; line < x->nlines; line++) {
		const char *ln;
		size_t len;
		long words;
		int too_long, cited = 0;

		r->c4_lines_total++;
		a = x->lines[line].off;
		b = a + x->lines[line].len;
		py_strip(s, &a, &b);
		/* words = line.split(); any word longer than max_word_length */
		words =
		    c4_words(s, a, b, c->c4_min_words_per_line, c->c4_max_word_length, &too_long);
		if (too_long) {
			r->c4_removed[QF_C4_TOO_LONG_WORD]++;
			continue;
		}
		ln = s + a;
		len = b - a;
		if (c->c4_remove_citations && memchr(ln, '[', len)) {
			size_t i = 0, st = 0, k;
			qn_buf_reset(&x->line);
			while (i < len) {
				if (ln[i] == '[' && (k = citation_at(ln + i, len - i))) {
					if (qn_buf_add(&x->line, ln + st, i - st) < 0)
						return FAIL_OOM;
					r->c4_citations++;
					i += k;
					st = i;
				} else {
					i++;
				}
			}
			if (st) {
				if (qn_buf_add(&x->line, ln + st, len - st) < 0)
					return FAIL_OOM;
				ln = x->line.data;
				len = x->line.len;
				cited = 1;
			}
		}
		if (c->c4_filter_no_terminal_punct &&
		    (!len || !strchr(".?!\"'", ln[len - 1]) || ln[len - 1] == 0 || ends_with(ln, len, "...", 3))) {
			r->c4_removed[QF_C4_NO_TERMINAL_PUNC]++;
			continue;
		}
		if (words < c->c4_min_words_per_line) {
			r->c4_removed[QF_C4_TOO_FEW_WORDS]++;
			continue;
		}
		int f = c4_scan(ln, len);
		if (c->c4_filter_lorem_ipsum && (f & HAS_LOREM))
			REJECT(F, "lorem_ipsum");
		if (c->c4_filter_javascript && (f & HAS_JS)) {
			r->c4_removed[QF_C4_JAVASCRIPT]++;
			continue;
		}
		if (c->c4_filter_curly_bracket && (f & HAS_CURLY))
			REJECT(F, "curly_bracket");
		if (c->c4_filter_policy && (f & HAS_POLICY)) {
			r->c4_removed[QF_C4_POLICY]++;
			continue;
		}
		/* past min_num_sentences the count no longer matters */
		if (sentences < c->c4_min_num_sentences)
			sentences += count_sentences(ln, len, c->c4_min_num_sentences - sentences);
		if ((!first && qn_buf_addc(&r->text, '\n') < 0) || qn_buf_add(&r->text, ln, len) < 0)
			return FAIL_OOM;
		first = 0;
		r->c4_lines_kept++;
		if (kept_tok) {
			long k = tokens_in(x, &tk, a, b);
			struct tok_stats ts;
			ntok += cited ? split_fast(ln, len, NULL, NULL, &ts, NULL) : k;
		}
	}
	if (sentences < c->c4_min_num_sentences)
		REJECT(F, "too_few_sentences");
	/* "\n".join(kept_lines).strip() */
	a = 0;
	b = r->text.len;
	if (b) {
		py_strip(r->text.data, &a, &b);
		if (a)
			memmove(r->text.data, r->text.data + a, b - a);
		r->text.len = b - a;
		r->text.data[r->text.len] = 0;
	}
	r->modified = r->text.len != n || (n && memcmp(r->text.data, s, n));
	if (kept_tok)
		*kept_tok = ntok;
	return 0;
}

/* ---- C4 bad words ------------------------------------------------------- */

struct trie_node {
	uint32_t child, sibling;
	unsigned char byte, term;
};

struct qf_words {
	int no_boundaries;
	size_t count;
	uint32_t root[256];
	struct trie_node *node;
	size_t nnode, cap;
};

#define QF_WORD_MAX 1024
#define QF_WORDS_MAX (1u << 20)

struct qf_words *qf_words_new(int no_boundaries)
{
	struct qf_words *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->no_boundaries = no_boundaries;
	w->nnode = 1; /* node 0 stands for "none" */
	return w;
}

void qf_words_free(struct qf_words *w)
{
	if (!w)
		return;
	free(w->node);
	free(w);
}

size_t qf_words_count(const struct qf_words *w) { return w ? w->count : 0; }

/* Python's lower() for one code point (simple case mapping). */
static uint32_t lower_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
	if (c == BAD_CP)
		return c;
	return (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
}

/* Appends the lowercase of s to b; invalid bytes are copied as they are. */
static int lower_into(struct qn_buf *b, const char *s, size_t n)
{
	size_t i = 0;
	if (qn_buf_grow(b, n) < 0)
		return -1;
	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x80) {
			if (b->len + 1 >= b->cap && qn_buf_grow(b, 1) < 0)
				return -1;
			b->data[b->len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
			i++;
			continue;
		}
		uint32_t cp;
		size_t l = dec((const unsigned char *)s + i, n - i, &cp);
		if (qn_buf_grow(b, 4) < 0)
			return -1;
		if (cp == BAD_CP) {
			b->data[b->len++] = (char)ch;
		} else {
			utf8proc_uint8_t tmp[4];
			utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)lower_cp(cp), tmp);
			memcpy(b->data + b->len, tmp, (size_t)k);
			b->len += (size_t)k;
		}
		i += l;
	}
	b->data[b->len] = 0;
	return 0;
}

static uint32_t trie_step(const struct qf_words *w, uint32_t node, unsigned char ch)
{
	if (!node)
		return w->root[ch];
	for (uint32_t k = w->node[node].child; k; k = w->node[k].sibling)
		if (w->node[k].byte == ch)
			return k;
	return 0;
}

int qf_words_add(struct qf_words *w, const char *s, size_t n, struct qn_err *e)
{
	struct qn_buf low;
	size_t a = 0, b = n;
	uint32_t node = 0;

	py_strip(s, &a, &b);
	if (a == b)
		return 0;
	if (b - a > QF_WORD_MAX)
		return qn_errf(e, "bad word longer than %d bytes", QF_WORD_MAX);
	if (w->count >= QF_WORDS_MAX)
		return qn_errf(e, "more than %u bad words", QF_WORDS_MAX);
	qn_buf_init(&low, 4 * QF_WORD_MAX + 16);
	if (lower_into(&low, s + a, b - a) < 0) {
		qn_buf_release(&low);
		return qn_errf(e, "out of memory");
	}
	for (size_t i = 0; i < low.len; i++) {
		unsigned char ch = (unsigned char)low.data[i];
		uint32_t nx = trie_step(w, node, ch);
		if (!nx) {
			if (grow((void **)&w->node, &w->cap, w->nnode + 1, sizeof *w->node) < 0) {
				qn_buf_release(&low);
				return qn_errf(e, "out of memory");
			}
			nx = (uint32_t)w->nnode++;
			w->node[nx] = (struct trie_node){0, 0, ch, 0};
			if (!node) {
				w->root[ch] = nx;
			} else {
				w->node[nx].sibling = w->node[node].child;
				w->node[node].child = nx;
			}
		}
		node = nx;
	}
	if (!w->node[node].term)
		w->count++;
	w->node[node].term = 1;
	qn_buf_release(&low);
	return 0;
}

int qf_words_load(struct qf_words *w, const char *path, struct qn_err *e)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	long no = 0;
	int rc = 0;

	if (!f)
		return qn_errno(e, errno, "cannot open '%s'", path);
	while ((got = getline(&line, &cap, f)) >= 0) {
		no++;
		if (qf_words_add(w, line, (size_t)got, e) < 0) {
			qn_err_prefix(e, "%s:%ld", path, no);
			rc = -1;
			break;
		}
	}
	if (!rc && ferror(f))
		rc = qn_errno(e, errno, "cannot read '%s'", path);
	free(line);
	fclose(f);
	return rc;
}

/* Is the code point starting at s[i] a \W (or the edge)? */
static int nonword_at(const char *s, size_t n, size_t i)
{
	uint32_t cp;
	if (i >= n)
		return 1;
	dec((const unsigned char *)s + i, n - i, &cp);
	return cp == BAD_CP || !re_word(cp);
}

int qf_words_match(const struct qf_words *w, const char *text, size_t len, struct qn_buf *low)
{
	const char *s;
	size_t n, i = 0;
	int prev_nonword = 1;

	if (!w || !w->count)
		return 0;
	qn_buf_reset(low);
	if (lower_into(low, text, len) < 0)
		return -1;
	s = low->data;
	n = low->len;
	while (i < n) {
		uint32_t cp;
		size_t l = dec((const unsigned char *)s + i, n - i, &cp);
		if (w->no_boundaries || prev_nonword) {
			uint32_t node = 0;
			for (size_t j = i; j < n; j++) {
				node = trie_step(w, node, (unsigned char)s[j]);
				if (!node)
					break;
				if (w->node[node].term && (w->no_boundaries || nonword_at(s, n, j + 1)))
					return 1;
			}
		}
		prev_nonword = cp == BAD_CP || !re_word(cp);
		i += l;
	}
	return 0;
}

/* ---- FineWeb quality --------------------------------------------------- */

/* Is the line of b bytes at most max code points long? */
static int short_line(const char *s, size_t b, long max)
{
	if (max < 0)
		return 0;
	if (b <= (size_t)max)
		return 1;
	if (b / 4 > (size_t)max) /* 4 bytes a code point at most */
		return 0;
	return (long long)count_chars(s, b) <= max;
}

/* chars: the code points of s, when known; (size_t)-1 when not. */
static int fineweb_quality(const struct qf_config *c, struct qf_scratch *x, const char *s,
			   size_t n, size_t chars, long ntok, struct qf_result *r)
{
	static const char F[] = "fineweb_quality";
	size_t nl = 0, punct = 0, shortl = 0, newlines, ns = 0, st = 0;
	uint64_t dups, dchars;

	/* doc.text.split("\n") */
	for (;;) {
		const char *p = memchr(s + st, '\n', n - st);
		size_t i = p ? (size_t)(p - s) : n, a = st, l;
		nl++;
		if (i > st && strchr(".'\"!?", s[i - 1]) && s[i - 1])
			punct++;
		shortl += (size_t)short_line(s + st, i - st, c->fw_short_line_length);
		/* line.strip() is not empty */
		while (a < i && (l = ws_at(s + a, i - a)))
			a += l;
		if (a < i && push_span(x, &ns, st, i) < 0)
			return FAIL_OOM;
		if (!p)
			break;
		st = i + 1;
	}
	newlines = nl - 1;
	double ratio = (double)punct / (double)nl;
	if (ratio <= c->fw_line_punct_thr && !(ratio == 0 && c->fw_line_punct_exclude_zero))
		REJECT(F, "line_punct_ratio");
	if ((double)shortl / (double)nl >= c->fw_short_line_thr)
		REJECT(F, "short_line_ratio");
	if (find_duplicates(x, s, ns, &dups, &dchars) < 0)
		return FAIL_OOM;
	size_t denom = (chars == (size_t)-1 ? count_chars(s, n) : chars) - newlines;
	if (denom && (double)dchars / (double)denom >= c->fw_char_duplicates_ratio)
		REJECT(F, "char_dup_ratio");
	if (ntok && (double)newlines / (double)ntok > c->fw_new_line_ratio)
		REJECT(F, "list_ratio");
	return 0;
}

/* ---- the chain ----------------------------------------------------------- */

void qf_config_init(struct qf_config *c)
{
	memset(c, 0, sizeof *c);
	c->enable = QF_DEFAULT_CHAIN;
	c->min_doc_words = 50;
	c->max_doc_words = 100000;
	c->min_avg_word_length = 3;
	c->max_avg_word_length = 10;
	c->max_symbol_word_ratio = 0.1;
	c->max_bullet_lines_ratio = 0.9;
	c->max_ellipsis_lines_ratio = 0.3;
	c->max_non_alpha_words_ratio = 0.8;
	c->min_stop_words = 2;
	c->dup_line_frac = 0.3;
	c->dup_para_frac = 0.3;
	c->dup_line_char_frac = 0.2;
	c->dup_para_char_frac = 0.2;
	c->top_ngram_frac[2] = 0.2;
	c->top_ngram_frac[3] = 0.18;
	c->top_ngram_frac[4] = 0.16;
	c->dup_ngram_frac[5] = 0.15;
	c->dup_ngram_frac[6] = 0.14;
	c->dup_ngram_frac[7] = 0.13;
	c->dup_ngram_frac[8] = 0.12;
	c->dup_ngram_frac[9] = 0.11;
	c->dup_ngram_frac[10] = 0.10;
	c->c4_remove_citations = 1;
	c->c4_filter_no_terminal_punct = 1;
	c->c4_min_num_sentences = 5;
	c->c4_min_words_per_line = 3;
	c->c4_max_word_length = 1000;
	c->c4_filter_lorem_ipsum = 1;
	c->c4_filter_javascript = 1;
	c->c4_filter_curly_bracket = 1;
	c->c4_filter_policy = 1;
	c->fw_line_punct_thr = 0.12;
	c->fw_line_punct_exclude_zero = 0;
	c->fw_short_line_thr = 0.67;
	c->fw_short_line_length = 30;
	c->fw_char_duplicates_ratio = 0.01;
	c->fw_new_line_ratio = 0.3;
}

static void reset_result(struct qf_result *r)
{
	r->filter = r->reason = NULL;
	r->has_text = r->modified = 0;
	qn_buf_reset(&r->text);
	r->c4_lines_total = r->c4_lines_kept = r->c4_citations = 0;
	memset(r->c4_removed, 0, sizeof r->c4_removed);
}

static int fail(struct qf_result *r, const char *why)
{
	r->filter = "error";
	r->reason = why;
	return -1;
}


int qf_check(const struct qf_config *c, const struct qf_words *badwords, const char *text,
	     size_t len, struct qf_result *r)
{
	struct qf_scratch *x;
	const char *s = text;
	size_t n = len, fw_chars;
	long ntok = -1;
	int rc;

	reset_result(r);
	if (len > QF_MAX_DOC_BYTES)
		return fail(r, "too_large");
	if (!r->scratch) {
		r->scratch = calloc(1, sizeof *r->scratch);
		if (!r->scratch)
			return fail(r, "out_of_memory");
		qn_buf_init(&r->scratch->line, QF_MAX_DOC_BYTES);
		/* lowercasing grows a text by at most half: bounded by the input */
		qn_buf_init(&r->scratch->lower, QN_BUF_UNLIMITED);
	}
	x = r->scratch;
	x->ntok = 0;
	x->have_lines = 0;
	size_t chars = count_chars(text, len);
	fw_chars = chars;

	if ((c->enable & QF_LENGTH) && check_length(c, chars, r))
		return 1;
	if (c->enable & (QF_GOPHER_REPETITION | QF_GOPHER_QUALITY | QF_FINEWEB_QUALITY)) {
		/* the n-gram rules' concatenated words come with the tokens */
		unsigned char *cat = NULL;
		if ((c->enable & QF_GOPHER_REPETITION) && !x->reference) {
			if (grow((void **)&x->cat, &x->catcap, QF_PFX + len + QF_PAD, 1) < 0)
				return fail(r, "out_of_memory");
			cat = x->cat + QF_PFX;
		}
		ntok = x->reference ? split_reference(text, len, &x->tok, &x->tokcap)
				    : split_fast(text, len, &x->tok, &x->tokcap, &x->stats, cat);
		if (ntok < 0)
			return fail(r, "out_of_memory");
		x->ntok = (size_t)ntok;
	}
	if (c->enable & QF_GOPHER_REPETITION) {
		rc = gopher_repetition(c, x, text, len, chars, r);
		if (rc)
			return rc < 0 ? fail(r, "out_of_memory") : 1;
	}
	if (c->enable & QF_GOPHER_QUALITY) {
		rc = gopher_quality(c, x, text, len, r);
		if (rc)
			return rc < 0 ? fail(r, "out_of_memory") : 1;
	}
	if (c->enable & QF_C4_QUALITY) {
		/* the reference splits C4's text again; the fast path counts the
		 * tokens of the lines it keeps */
		long kept = -1;
		rc = c4_quality(c, x, text, len, r, ntok >= 0 && !x->reference ? &kept : NULL);
		if (rc)
			return rc < 0 ? fail(r, "out_of_memory") : 1;
		if (r->modified) {
			s = r->text.data ? r->text.data : "";
			n = r->text.len;
			ntok = kept;
			fw_chars = (size_t)-1;
		}
	}
	if ((c->enable & QF_C4_BADWORDS) && badwords) {
		rc = qf_words_match(badwords, s, n, &x->lower);
		if (rc < 0)
			return fail(r, "out_of_memory");
		if (rc)
			REJECT("c4_badwords", "document_removed_with_badwords");
	}
	if (c->enable & QF_FINEWEB_QUALITY) {
		struct tok_stats ts;
		if (ntok < 0)
			ntok = x->reference ? split_reference(s, n, NULL, NULL)
					    : split_fast(s, n, NULL, NULL, &ts, NULL);
		rc = fineweb_quality(c, x, s, n, fw_chars, ntok, r);
		if (rc)
			return rc < 0 ? fail(r, "out_of_memory") : 1;
	}
	return 0;
}

int qf_check_reference(const struct qf_config *c, const struct qf_words *badwords, const char *text,
		       size_t len, struct qf_result *r)
{
	int rc;
	(void)qf_check(c, 0, "", 0, r); /* makes the scratch */
	if (r->scratch)
		r->scratch->reference = 1;
	rc = qf_check(c, badwords, text, len, r);
	if (r->scratch)
		r->scratch->reference = 0;
	return rc;
}
