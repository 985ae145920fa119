/* filters.c - see filters.h; the rule table is filters.md. */
#include "filters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
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

/* Code points in a span (continuation bytes are not counted). */
static size_t count_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

/* Length of the Python whitespace character at s, 0 when there is none. */
static inline size_t ws_at(const char *s, size_t n)
{
	uint32_t c;
	size_t l;
	if (!n)
		return 0;
	if ((unsigned char)s[0] < 0x80)
		return ((unsigned char)s[0] >= 9 && (unsigned char)s[0] <= 13) ||
		       ((unsigned char)s[0] >= 0x1c && (unsigned char)s[0] <= 0x20);
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

/* Next line of str.splitlines() from *pos: 0 at the end. */
static int next_pyline(const char *s, size_t n, size_t *pos, size_t *a, size_t *b)
{
	size_t i = *pos, l;
	if (i >= n)
		return 0;
	*a = i;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c <= 0x1e || c == 0xc2 || c == 0xe2) && (l = line_break_at(s + i, n - i))) {
			*b = i;
			*pos = i + l;
			return 1;
		}
	}
	*b = n;
	*pos = n;
	return 1;
}

/* ---- the word splitter ------------------------------------------------ */

enum { A_SPACE, A_WORD, A_APOS, A_HYPHEN, A_NUMSEP, A_SYM };

static unsigned char ascii_class[128];
static unsigned char ascii_punct[128];

static void init_tables(void)
{
	static int done;
	if (done)
		return;
	for (int c = 0; c < 128; c++) {
		unsigned char k = A_SYM;
		if (py_space((uint32_t)c))
			k = A_SPACE;
		else if (((unsigned)c | 0x20) - 'a' < 26 || (unsigned)c - '0' < 10)
			k = A_WORD;
		else if (c == '\'')
			k = A_APOS;
		else if (c == '-')
			k = A_HYPHEN;
		else if (c == '.' || c == ',')
			k = A_NUMSEP;
		ascii_class[c] = k;
		ascii_punct[c] = (unsigned char)dt_punct((uint32_t)c);
	}
	done = 1;
}

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
		ci->cls = ascii_class[b];
		ci->alpha = ((unsigned)b | 0x20) - 'a' < 26;
		ci->digit = (unsigned)b - '0' < 10;
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

static int cp_punct(const struct cpinfo *ci)
{
	return ci->cp < 0x80 ? ascii_punct[ci->cp] : dt_punct(ci->cp);
}

/*
 * Appends the tokens of s to *v (capacity *cap); returns the count or -1.
 * With v NULL it only counts.
 */
static long split_tokens(const char *s, size_t n, struct qf_token **v, size_t *cap)
{
	struct cpinfo ci, nx;
	size_t i = 0, nt = 0;

	init_tables();
	while (i < n) {
		unsigned char b = (unsigned char)s[i];
		if (b < 0x80 && ascii_class[b] == A_SPACE) {
			i++;
			continue;
		}
		classify(s + i, n - i, &ci);
		if (ci.cls == A_SPACE) {
			i += ci.len;
			continue;
		}
		struct qf_token t = {(uint32_t)i, 0, 0, 0, 0, 1, 0};
		if (ci.cls == A_WORD) {
			int prev_digit;
			t.word = 1;
			for (;;) {
				t.chars++;
				t.alpha |= (uint8_t)ci.alpha;
				t.punct &= (uint8_t)cp_punct(&ci);
				prev_digit = ci.digit;
				i += ci.len;
				/* fast path: a run of ASCII letters and digits */
				while (i < n && (unsigned char)s[i] < 0x80 &&
				       ascii_class[(unsigned char)s[i]] == A_WORD) {
					unsigned char d = (unsigned char)s[i];
					prev_digit = (unsigned)d - (unsigned)'0' < 10u;
					t.alpha |= (uint8_t)!prev_digit;
					t.punct = 0;
					t.chars++;
					i++;
				}
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
		if (v) {
			if (nt == *cap) {
				size_t nc = *cap ? *cap * 2 : 256;
				struct qf_token *p = realloc(*v, nc * sizeof *p);
				if (!p)
					return -1;
				*v = p;
				*cap = nc;
			}
			(*v)[nt] = t;
		}
		nt++;
	}
	return (long)nt;
}

long qf_split(const char *text, size_t len, struct qf_token **out)
{
	size_t cap = 0;
	long n;

	*out = NULL;
	if (len > QF_MAX_DOC_BYTES)
		return -1;
	n = split_tokens(text, len, out, &cap);
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
	struct prefix *pf; /* per-token prefix hashes, see token_hashes() */
	size_t pfcap;
	/* fast repetition path, see rep_prepare() */
	unsigned char *cat; /* the words concatenated, 16 zero bytes after */
	size_t catcap;
	uint32_t *rep; /* 6 arrays of ntok + 1: tp cc wid gid cnt cnt2 */
	size_t repcap;
	unsigned char *uniq;
	size_t uniqcap;
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
		qn_buf_release(&x->line);
		qn_buf_release(&x->lower);
		free(x);
	}
	qn_buf_release(&r->text);
	memset(r, 0, sizeof *r);
}

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

	*ns = 0;
	while (i < to) {
		if (s[i] == '\n' && (min_nl < 2 || (i + 1 < to && s[i + 1] == '\n'))) {
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
 * The fast path for the n-gram rules; the functions above are the reference
 * it must agree with (qf_check_reference, tests/unit/test_filters.c).
 *
 * rep_prepare: T, the words concatenated ("".join(words)); tp[i] the offset
 * of word i in T, cc[i] the code points of words[0:i]; wid[i] a dense id of
 * word i (ids in order of first occurrence, exact: equal ids iff equal
 * words); uniq[i] 1 when the 16 bytes of T from word i's start occur at no
 * other word start (by a 64-bit key, so a collision only clears uniq).
 *
 * A "".join n-gram at i of QF_PFX bytes or more whose prefix is unique
 * cannot equal any other n-gram (equal strings have equal prefixes), so
 * all_duplicate_fast skips it: it is never found, and no other n-gram can
 * find it. Shorter n-grams only equal n-grams as short, which are never
 * skipped. " ".join n-grams are equal iff their words are, so
 * top_duplicate_fast gives each n-gram the exact id of (id of its
 * (n-1)-gram, id of its last word), and an n-gram whose (n-1)-gram is seen
 * once is seen once.
 */
#define QF_PFX 16
#define ONCE UINT32_MAX

static int rep_prepare(struct qf_scratch *x, const char *s)
{
	size_t nt = x->ntok, tb = 0, nw = 0;
	for (size_t i = 0; i < nt; i++)
		tb += x->tok[i].len;
	if (grow((void **)&x->cat, &x->catcap, tb + QF_PFX, 1) < 0 ||
	    grow((void **)&x->rep, &x->repcap, 6 * (nt + 1), sizeof *x->rep) < 0 ||
	    grow((void **)&x->uniq, &x->uniqcap, nt + 1, 1) < 0)
		return -1;
	uint32_t *tp = x->rep, *cc = tp + nt + 1, *wid = cc + nt + 1, *cnt = wid + 2 * (nt + 1);
	unsigned char *T = x->cat;
	tp[0] = cc[0] = 0;
	for (size_t i = 0; i < nt; i++) {
		memcpy(T + tp[i], s + x->tok[i].off, x->tok[i].len);
		tp[i + 1] = tp[i] + x->tok[i].len;
		cc[i + 1] = cc[i] + x->tok[i].chars;
	}
	memset(T + tb, 0, QF_PFX);

	/* word ids and their counts */
	size_t mask = table_for(x, nt);
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

	/* unique 16-byte prefixes */
	mask = table_for(x, nt);
	if (!mask)
		return -1;
	for (size_t i = 0; i < nt; i++) {
		uint64_t a, b;
		memcpy(&a, T + tp[i], 8);
		memcpy(&b, T + tp[i] + 8, 8);
		uint64_t h = a ^ (b * HASH_P) ^ (b >> 29);
		x->uniq[i] = 1;
		for (size_t j = slot_of(h, mask);; j = (j + 1) & mask) {
			struct slot *e = &x->tab[j];
			if (!e->first) {
				e->h = h;
				e->first = (uint32_t)i + 1;
				break;
			}
			if (e->h == h) {
				x->uniq[e->first - 1] = 0;
				x->uniq[i] = 0;
				break;
			}
		}
	}
	return 0;
}

/*
 * Advances the " ".join n-gram ids from n - 1 to n (gid and cnt hold the
 * (n-1)-gram ids and their counts, ONCE for one seen once; n >= 2).
 */
static int ngram_ids(struct qf_scratch *x, size_t n, uint32_t **cnt, uint32_t **cnt2)
{
	size_t nt = x->ntok, m = nt - n + 1, ids = 0;
	uint32_t *wid = x->rep + 2 * (nt + 1), *gid = wid + nt + 1, *oc = *cnt, *nc = *cnt2;
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
	size_t nt = x->ntok, m = nt - n + 1;
	const uint32_t *cc = x->rep + nt + 1, *gid = x->rep + 3 * (nt + 1);
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

static long long all_duplicate_fast(struct qf_scratch *x, size_t n, long long stop)
{
	size_t nt = x->ntok, m = nt - n + 1, mask = table_for(x, m), i = 0;
	const uint32_t *tp = x->rep, *cc = tp + nt + 1;
	const unsigned char *T = x->cat;
	long long rep = 0;
	if (!mask)
		return -1;
	while (i < m) {
		uint32_t l = tp[i + n] - tp[i];
		if (l >= QF_PFX && x->uniq[i]) {
			i++;
			continue;
		}
		const unsigned char *p = T + tp[i];
		uint64_t h = XXH3_64bits(p, l);
		int seen = 0;
		for (size_t j = slot_of(h, mask);; j = (j + 1) & mask) {
			struct slot *e = &x->tab[j];
			if (!e->first) {
				e->h = h;
				e->first = (uint32_t)i + 1;
				break;
			}
			uint32_t f = e->first - 1;
			if (e->h == h && tp[f + n] - tp[f] == l && !memcmp(T + tp[f], p, l)) {
				seen = 1;
				break;
			}
		}
		if (seen) {
			rep += (long long)(cc[i + n] - cc[i]);
			if (rep > stop)
				break;
			i += n;
		} else {
			i++;
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

#define FAIL_OOM -1

static int ngrams_fast(const struct qf_config *c, struct qf_scratch *x, const char *s, double len,
		       struct qf_result *r)
{
	static const char F[] = "gopher_repetition";
	size_t nt = x->ntok, at = 1;
	int need = 0;
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++)
		if ((c->top_ngram_frac[g] || c->dup_ngram_frac[g]) && nt >= g)
			need = 1;
	if (!need)
		return 0;
	if (rep_prepare(x, s) < 0)
		return FAIL_OOM;
	uint32_t *wid = x->rep + 2 * (nt + 1), *gid = wid + nt + 1, *cnt = gid + nt + 1,
		 *cnt2 = cnt + nt + 1;
	memcpy(gid, wid, nt * sizeof *gid);
	for (size_t g = 1; g <= QF_NGRAM_MAX; g++) {
		if (!c->top_ngram_frac[g] || nt < g)
			continue;
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
		long long stop = (long long)(c->dup_ngram_frac[g] * len);
		while (stop > 0 && (double)(stop - 1) / len > c->dup_ngram_frac[g])
			stop--;
		while ((double)stop / len <= c->dup_ngram_frac[g])
			stop++;
		long long rep = all_duplicate_fast(x, g, stop - 1);
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
		return ngrams_fast(c, x, s, len, r);
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
		long long stop = (long long)(c->dup_ngram_frac[g] * len);
		while (stop > 0 && (double)(stop - 1) / len > c->dup_ngram_frac[g])
			stop--;
		while ((double)stop / len <= c->dup_ngram_frac[g])
			stop++;
		long long rep = all_duplicate(x, s, g, stop - 1);
		if (rep < 0)
			return FAIL_OOM;
		if ((double)rep / len > c->dup_ngram_frac[g])
			REJECT(F, dup_reason[g]);
	}
	return 0;
}

/* ---- Gopher quality ---------------------------------------------------- */

static const char *const default_stop[] = {"the", "be", "to", "of", "and", "that", "have", "with"};

static int is_stop(const struct qf_config *c, const char *w, size_t l)
{
	const char *const *v = c->stop_words ? c->stop_words : default_stop;
	size_t n = c->stop_words ? c->n_stop_words : sizeof default_stop / sizeof *default_stop;
	for (size_t i = 0; i < n; i++)
		if (v[i][0] == w[0] && strlen(v[i]) == l && !memcmp(v[i], w, l))
			return 1;
	return 0;
}

static int gopher_quality(const struct qf_config *c, const struct qf_scratch *x, const char *s,
			  size_t n, struct qf_result *r)
{
	static const char F[] = "gopher_quality";
	size_t nw = x->ntok, nsym = 0, sumlen = 0, nalpha = 0, nstop = 0;
	size_t maxstop = 0;

	if (c->min_stop_words) {
		const char *const *v = c->stop_words ? c->stop_words : default_stop;
		size_t k = c->stop_words ? c->n_stop_words : sizeof default_stop / sizeof *default_stop;
		for (size_t i = 0; i < k; i++)
			if (strlen(v[i]) > maxstop)
				maxstop = strlen(v[i]);
	}
	for (size_t i = 0; i < nw; i++) {
		const struct qf_token *t = &x->tok[i];
		if (!t->punct) {
			nsym++;
			sumlen += t->chars;
		}
		nalpha += t->alpha;
		if (t->len <= maxstop && is_stop(c, s + t->off, t->len))
			nstop++;
	}
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

	size_t hashes = 0, ell = 0, dots = 0;
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
	if (nw && c->max_symbol_word_ratio) {
		if ((double)hashes / (double)nw > c->max_symbol_word_ratio)
			REJECT(F, "gopher_too_many_hashes");
		if ((double)ell / (double)nw > c->max_symbol_word_ratio)
			REJECT(F, "gopher_too_many_ellipsis");
	}

	size_t pos = 0, a, b, nl = 0, bullets = 0, endell = 0;
	while (next_pyline(s, n, &pos, &a, &b)) {
		size_t la = a, lb = b, l;
		nl++;
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

enum { HAS_LOREM = 1, HAS_JS = 2, HAS_CURLY = 4, HAS_POLICY = 8 };

static int c4_scan(const char *s, size_t n)
{
	int f = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '{') {
			f |= HAS_CURLY;
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			ch |= 0x20;
		switch (ch) {
		case 'l':
			if (lower_prefix(s, n, i, "lorem ipsum"))
				f |= HAS_LOREM;
			break;
		case 'j':
			if (lower_prefix(s, n, i, "javascript"))
				f |= HAS_JS;
			break;
		case 't':
			if (lower_prefix(s, n, i, "terms of use"))
				f |= HAS_POLICY;
			break;
		case 'p':
			if (lower_prefix(s, n, i, "privacy policy"))
				f |= HAS_POLICY;
			break;
		case 'c':
			if (lower_prefix(s, n, i, "cookie policy"))
				f |= HAS_POLICY;
			break;
		case 'u':
			if (lower_prefix(s, n, i, "uses cookies") || lower_prefix(s, n, i, "use of cookies") ||
			    lower_prefix(s, n, i, "use cookies"))
				f |= HAS_POLICY;
			break;
		default:
			break;
		}
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
 * that is followed by whitespace.
 */
static long count_sentences(const char *s, size_t n)
{
	long k = 0;
	int in = 0;
	size_t i = 0, l;
	uint32_t cp;

	while (i < n) {
		if ((l = ws_at(s + i, n - i))) {
			i += l;
			continue;
		}
		if (!in) {
			k++;
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

static int c4_quality(const struct qf_config *c, struct qf_scratch *x, const char *s, size_t n,
		      struct qf_result *r)
{
	static const char F[] = "c4_quality";
	size_t pos = 0, a, b;
	long sentences = 0;
	int first = 1;

	r->has_text = 1;
	qn_buf_reset(&r->text);
	while (next_pyline(s, n, &pos, &a, &b)) {
		const char *ln;
		size_t len, l;
		long words = 0;
		int too_long = 0;

		r->c4_lines_total++;
		py_strip(s, &a, &b);
		/* words = line.split(); any word longer than max_word_length */
		for (size_t i = a; i < b;) {
			if ((l = ws_at(s + i, b - i))) {
				i += l;
				continue;
			}
			size_t w = i;
			while (i < b && !ws_at(s + i, b - i))
				i++;
			words++;
			if (c->c4_max_word_length != -1 &&
			    (long long)count_chars(s + w, i - w) > c->c4_max_word_length)
				too_long = 1;
		}
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
		sentences += count_sentences(ln, len);
		if ((!first && qn_buf_addc(&r->text, '\n') < 0) || qn_buf_add(&r->text, ln, len) < 0)
			return FAIL_OOM;
		first = 0;
		r->c4_lines_kept++;
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

static int fineweb_quality(const struct qf_config *c, struct qf_scratch *x, const char *s,
			   size_t n, long ntok, struct qf_result *r)
{
	static const char F[] = "fineweb_quality";
	size_t nl = 0, punct = 0, shortl = 0, newlines = 0, ns = 0, st = 0;
	uint64_t dups, dchars;

	/* doc.text.split("\n") */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '\n')
			continue;
		size_t a = st, b = i;
		nl++;
		if (b > a && strchr(".'\"!?", s[b - 1]) && s[b - 1])
			punct++;
		if ((long long)count_chars(s + a, b - a) <= c->fw_short_line_length)
			shortl++;
		py_strip(s, &a, &b);
		if (a < b && push_span(x, &ns, st, i) < 0)
			return FAIL_OOM;
		if (i < n)
			newlines++;
		st = i + 1;
	}
	double ratio = (double)punct / (double)nl;
	if (ratio <= c->fw_line_punct_thr && !(ratio == 0 && c->fw_line_punct_exclude_zero))
		REJECT(F, "line_punct_ratio");
	if ((double)shortl / (double)nl >= c->fw_short_line_thr)
		REJECT(F, "short_line_ratio");
	if (find_duplicates(x, s, ns, &dups, &dchars) < 0)
		return FAIL_OOM;
	size_t denom = count_chars(s, n) - newlines;
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
	size_t n = len;
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
	size_t chars = count_chars(text, len);

	if ((c->enable & QF_LENGTH) && check_length(c, chars, r))
		return 1;
	if (c->enable & (QF_GOPHER_REPETITION | QF_GOPHER_QUALITY | QF_FINEWEB_QUALITY)) {
		ntok = split_tokens(text, len, &x->tok, &x->tokcap);
		if (ntok < 0)
			return fail(r, "out_of_memory");
		x->ntok = (size_t)ntok;
	}
	if (c->enable & QF_GOPHER_REPETITION) {
		rc = gopher_repetition(c, x, text, len, chars, r);
		if (rc)
			return rc < 0 ? fail(r, "out_of_memory") : 1;
	}
	if ((c->enable & QF_GOPHER_QUALITY) && gopher_quality(c, x, text, len, r))
		return 1;
	if (c->enable & QF_C4_QUALITY) {
		rc = c4_quality(c, x, text, len, r);
		if (rc)
			return rc < 0 ? fail(r, "out_of_memory") : 1;
		if (r->modified) {
			s = r->text.data ? r->text.data : "";
			n = r->text.len;
			ntok = -1;
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
		if (ntok < 0)
			ntok = split_tokens(s, n, NULL, NULL);
		rc = fineweb_quality(c, x, s, n, ntok, r);
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
