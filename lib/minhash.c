/* minhash.c - see minhash.h. */
#include "minhash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QN_MINHASH_NO_SIMD)
#include <immintrin.h>
#define FOLD_AVX512 1
#endif

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "utf8.h"

/*
 * The normalizer writes words into a buffer (the caller's for
 * qn_minhash_normalize, the scratch otherwise) and, for signatures and sets,
 * hashes the last ngram words each time a word ends. Only the last ngram - 1
 * words are needed after that, so past COMPACT_AT bytes the scratch is
 * moved down: it stays a few tens of KiB (in cache) whatever the text size.
 */
#define COMPACT_AT 32768
#define SCRATCH_MAX ((size_t)4 << 20)
#define ASCII_CHUNK 512 /* input bytes between checks for room and word length */
#define RUN_SPLIT 256	/* a non-ASCII run longer than this ends at a starter */
#define RUN_MAX 4096	/* ... and at this length in any case (marks without end) */
#define HASH_BATCH 64	/* shingle hashes folded into the signature at once */

enum { MODE_TEXT, MODE_SIG, MODE_SET };
enum { K_SEP, K_DROP, K_LETTER, K_ALONE };

struct qn_minhash {
	struct qn_minhash_params p;
	size_t k;
	uint64_t *a, *b;	     /* k odd multipliers and addends */
	void (*fold)(const struct qn_minhash *m, uint64_t *sig, const uint64_t *h, size_t n);
	unsigned char ascii[128];    /* 0: separator, else the byte written */
	struct qn_buf scratch;	     /* words of the current window */
	int32_t *u32;		     /* utf8proc's code point buffer */
	size_t u32cap;

	/* State of the text being read. */
	struct qn_buf *out;
	int mode, in_word;
	size_t wstart, nwords;
	size_t ring[QN_MINHASH_MAX_NGRAM]; /* start offsets of the last ngram words */
	uint64_t *sig;
	uint64_t hb[HASH_BATCH];
	size_t nhb;
	uint64_t *set;
	size_t nset, setcap;
};

void qn_minhash_params_default(struct qn_minhash_params *p)
{
	p->bands = QN_MINHASH_BANDS;
	p->rows = QN_MINHASH_ROWS;
	p->ngram = QN_MINHASH_NGRAM;
	p->flags = QN_MINHASH_ALL;
	p->seed = QN_MINHASH_SEED;
}

/* Chinese and Japanese: every ideograph and kana is a word of its own. */
static int is_alone(int32_t c)
{
	return (c >= 0x2E80 && c <= 0x2FDF) ||	 /* CJK and Kangxi radicals */
	       c == 0x3005 || c == 0x3007 ||	 /* iteration mark, ideographic zero */
	       (c >= 0x3021 && c <= 0x3029) ||	 /* Hangzhou numerals */
	       (c >= 0x3038 && c <= 0x303B) ||
	       (c >= 0x3040 && c <= 0x30FF) ||	 /* hiragana, katakana */
	       (c >= 0x31F0 && c <= 0x31FF) ||	 /* katakana extensions */
	       (c >= 0x3400 && c <= 0x4DBF) ||	 /* extension A */
	       (c >= 0x4E00 && c <= 0x9FFF) ||	 /* unified ideographs */
	       (c >= 0xF900 && c <= 0xFAFF) ||	 /* compatibility ideographs */
	       (c >= 0xFF66 && c <= 0xFF9F) ||	 /* halfwidth katakana */
	       (c >= 0x20000 && c <= 0x323AF); /* extensions B-H, supplement */
}

/* Step 3 of the definition in minhash.h for one normalized code point. */
static int classify(unsigned flags, int32_t c, int32_t *map)
{
	*map = c;
	if (c == 0x200B || c == 0xFFFD)
		return K_SEP;
	switch (utf8proc_category(c)) {
	case UTF8PROC_CATEGORY_ZS:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
	case UTF8PROC_CATEGORY_CC:
		return K_SEP;
	case UTF8PROC_CATEGORY_CF:
		return K_DROP;
	case UTF8PROC_CATEGORY_PC:
	case UTF8PROC_CATEGORY_PD:
	case UTF8PROC_CATEGORY_PS:
	case UTF8PROC_CATEGORY_PE:
	case UTF8PROC_CATEGORY_PI:
	case UTF8PROC_CATEGORY_PF:
	case UTF8PROC_CATEGORY_PO:
	case UTF8PROC_CATEGORY_SM:
	case UTF8PROC_CATEGORY_SC:
	case UTF8PROC_CATEGORY_SK:
	case UTF8PROC_CATEGORY_SO:
		return (flags & QN_MINHASH_PUNCT) ? K_SEP : K_LETTER;
	case UTF8PROC_CATEGORY_ND:
		if (flags & QN_MINHASH_DIGITS)
			*map = '0';
		return K_LETTER;
	case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC:
	case UTF8PROC_CATEGORY_ME:
		return (flags & QN_MINHASH_ACCENTS) ? K_DROP : K_LETTER;
	default:
		return is_alone(c) ? K_ALONE : K_LETTER;
	}
}

/*
 * Folds n shingle hashes into sig. Slot-major, so each slot's multiplier,
 * addend and minimum stay in registers across the batch.
 */
static void fold_scalar(const struct qn_minhash *m, uint64_t *restrict sig,
			const uint64_t *restrict h, size_t n)
{
	for (size_t i = 0; i < m->k; i++) {
		uint64_t a = m->a[i], b = m->b[i], lo = sig[i];
		for (size_t j = 0; j < n; j++) {
			uint64_t v = a * h[j] + b;
			lo = v < lo ? v : lo;
		}
		sig[i] = lo;
	}
}

#ifdef FOLD_AVX512
/*
 * The same with 8 slots a vector (AVX-512: 64-bit multiply and unsigned
 * minimum); integer arithmetic, so the result is bit-identical. Picked at
 * run time when the CPU has it; about 4x faster than the scalar loop.
 */
__attribute__((target("avx512f,avx512dq"))) static void
fold_avx512(const struct qn_minhash *m, uint64_t *restrict sig, const uint64_t *restrict h,
	    size_t n)
{
	size_t i = 0;

	for (; i + 8 <= m->k; i += 8) {
		__m512i a = _mm512_loadu_si512((const void *)(m->a + i));
		__m512i b = _mm512_loadu_si512((const void *)(m->b + i));
		__m512i lo = _mm512_loadu_si512((const void *)(sig + i));
		for (size_t j = 0; j < n; j++) {
			__m512i v = _mm512_mullo_epi64(a, _mm512_set1_epi64((long long)h[j]));
			lo = _mm512_min_epu64(lo, _mm512_add_epi64(v, b));
		}
		_mm512_storeu_si512((void *)(sig + i), lo);
	}
	for (; i < m->k; i++) {
		uint64_t a = m->a[i], b = m->b[i], lo = sig[i];
		for (size_t j = 0; j < n; j++) {
			uint64_t v = a * h[j] + b;
			lo = v < lo ? v : lo;
		}
		sig[i] = lo;
	}
}
#endif

static void fold(const struct qn_minhash *m, uint64_t *sig, const uint64_t *h, size_t n)
{
	m->fold(m, sig, h, n);
}

struct qn_minhash *qn_minhash_new(const struct qn_minhash_params *p, struct qn_err *e)
{
	struct qn_minhash *m;
	uint64_t s;

	if (p->bands < 1 || p->rows < 1 || p->rows > 64 ||
	    (size_t)p->bands * p->rows > QN_MINHASH_MAX_HASHES) {
		qn_errf(e, "minhash: %u bands of %u rows: want 1 to %d hashes, at most 64 rows",
			p->bands, p->rows, QN_MINHASH_MAX_HASHES);
		return NULL;
	}
	if (p->ngram < 1 || p->ngram > QN_MINHASH_MAX_NGRAM) {
		qn_errf(e, "minhash: shingles of %u words: want 1 to %d", p->ngram,
			QN_MINHASH_MAX_NGRAM);
		return NULL;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		goto oom;
	m->p = *p;
	m->k = (size_t)p->bands * p->rows;
	m->a = malloc(m->k * sizeof *m->a);
	m->b = malloc(m->k * sizeof *m->b);
	if (!m->a || !m->b)
		goto oom;
	s = p->seed;
	for (size_t i = 0; i < m->k; i++) {
		m->a[i] = qn_splitmix64(&s) | 1;
		m->b[i] = qn_splitmix64(&s);
	}
	for (int c = 0; c < 128; c++) {
		int32_t map;
		int cp = (p->flags & QN_MINHASH_CASEFOLD) && c >= 'A' && c <= 'Z' ? c + 32 : c;
		m->ascii[c] = classify(p->flags, cp, &map) == K_LETTER ? (unsigned char)map : 0;
	}
	qn_buf_init(&m->scratch, SCRATCH_MAX);
	m->fold = fold_scalar;
#ifdef FOLD_AVX512
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
		m->fold = fold_avx512;
#endif
	return m;
oom:
	qn_minhash_free(m);
	qn_errf(e, "minhash: out of memory");
	return NULL;
}

void qn_minhash_free(struct qn_minhash *m)
{
	if (!m)
		return;
	free(m->a);
	free(m->b);
	qn_buf_release(&m->scratch);
	free(m->u32);
	free(m->set);
	free(m);
}

const struct qn_minhash_params *qn_minhash_get_params(const struct qn_minhash *m)
{
	return &m->p;
}

size_t qn_minhash_hashes(const struct qn_minhash *m) { return m->k; }

/* Cuts the current word to QN_MINHASH_MAX_WORD bytes at a character start. */
static void cut_word(struct qn_minhash *m)
{
	struct qn_buf *out = m->out;
	size_t l;

	if (out->len - m->wstart <= QN_MINHASH_MAX_WORD)
		return;
	l = m->wstart + QN_MINHASH_MAX_WORD;
	while (l > m->wstart && ((unsigned char)out->data[l] & 0xC0) == 0x80)
		l--;
	out->len = l;
}

static int add_to_set(struct qn_minhash *m, uint64_t h)
{
	if (m->nset == m->setcap) {
		size_t cap = m->setcap ? m->setcap * 2 : 1024;
		uint64_t *s;
		if (cap > ((size_t)-1) / sizeof *s)
			return -1;
		s = realloc(m->set, cap * sizeof *s);
		if (!s)
			return -1;
		m->set = s;
		m->setcap = cap;
	}
	m->set[m->nset++] = h;
	return 0;
}

/* The word that began at m->wstart ends at out->len. */
static int word_end(struct qn_minhash *m)
{
	struct qn_buf *out = m->out;
	size_t ng = m->p.ngram, keep;

	m->in_word = 0;
	cut_word(m);
	m->ring[m->nwords % ng] = m->wstart;
	m->nwords++;
	if (m->mode == MODE_TEXT || m->nwords < ng)
		return 0;
	/* The oldest of the last ngram words starts the shingle. */
	size_t st = m->ring[m->nwords % ng];
	uint64_t h = qn_xxh3_64(out->data + st, out->len - st, m->p.seed);
	if (m->mode == MODE_SIG) {
		m->hb[m->nhb++] = h;
		if (m->nhb == HASH_BATCH) {
			fold(m, m->sig, m->hb, m->nhb);
			m->nhb = 0;
		}
	} else if (add_to_set(m, h) < 0) {
		return -1;
	}
	if (out->len < COMPACT_AT)
		return 0;
	/* Keep the last ngram - 1 words: the next shingle's first ones. */
	keep = ng > 1 ? m->ring[(m->nwords + 1) % ng] : out->len;
	memmove(out->data, out->data + keep, out->len - keep);
	out->len -= keep;
	for (size_t i = 0; i < ng; i++)
		m->ring[i] = m->ring[i] >= keep ? m->ring[i] - keep : 0;
	return 0;
}

static void word_begin(struct qn_minhash *m)
{
	struct qn_buf *out = m->out;

	if (m->nwords)
		out->data[out->len++] = ' ';
	m->wstart = out->len;
	m->in_word = 1;
}

/* Length of the valid UTF-8 sequence at p, or 0 when p starts none. */
static size_t seq_len(const unsigned char *p, const unsigned char *end)
{
	size_t l = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 0;

	if (!l || l > (size_t)(end - p) || qn_utf8_valid_prefix((const char *)p, l) != l)
		return 0;
	return l;
}

/* Where a long run may be split without parting a character from its marks. */
static int starts_cluster(const unsigned char *p, size_t l)
{
	uint32_t c;
	const utf8proc_property_t *pr;

	qn_utf8_decode((const char *)p, l, &c);
	pr = utf8proc_get_property((utf8proc_int32_t)c);
	if (pr->combining_class || pr->category == UTF8PROC_CATEGORY_MN ||
	    pr->category == UTF8PROC_CATEGORY_MC || pr->category == UTF8PROC_CATEGORY_ME)
		return 0;
	return !((c >= 0x1160 && c <= 0x11FF) || (c >= 0xD7B0 && c <= 0xD7FF)); /* jamo V, T */
}

/* Decomposes p[0..n) into m->u32 + 1 (slot 0 is room for one more). */
static long decompose(struct qn_minhash *m, const unsigned char *p, size_t n)
{
	utf8proc_option_t opt = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
	utf8proc_ssize_t r;

	if (m->p.flags & QN_MINHASH_CASEFOLD)
		opt |= UTF8PROC_CASEFOLD;
	if (m->p.flags & QN_MINHASH_ACCENTS)
		opt |= UTF8PROC_STRIPMARK;
	for (;;) {
		size_t room = m->u32cap > 1 ? m->u32cap - 1 : 0;
		r = room ? utf8proc_decompose(p, (utf8proc_ssize_t)n, m->u32 + 1,
					      (utf8proc_ssize_t)room, opt)
			 : (utf8proc_ssize_t)(n * 4 + 16);
		if (r < 0)
			return 0; /* cannot happen on valid UTF-8: read it as a separator */
		if ((size_t)r <= room)
			return (long)r;
		size_t cap = (size_t)r + 1 > 2 * m->u32cap ? (size_t)r + 1 : 2 * m->u32cap;
		int32_t *u = realloc(m->u32, cap * sizeof *u);
		if (!u)
			return -1;
		m->u32 = u;
		m->u32cap = cap;
	}
}

static int separator(struct qn_minhash *m) { return m->in_word ? word_end(m) : 0; }

/* One run of non-ASCII characters (or one invalid byte) at *pp. */
static int slow_run(struct qn_minhash *m, const unsigned char **pp, const unsigned char *end)
{
	struct qn_buf *out = m->out;
	const unsigned char *p = *pp, *r = p;
	size_t l;
	long n;
	int32_t *u;

	while (r < end && *r >= 0x80 && (l = seq_len(r, end))) {
		if (r - p >= RUN_SPLIT && (r - p >= RUN_MAX || starts_cluster(r, l)))
			break;
		r += l;
	}
	if (r == p) {
		*pp = p + 1;
		return separator(m);
	}
	*pp = r;
	n = decompose(m, p, (size_t)(r - p));
	if (n < 0)
		return -1;
	u = m->u32 + 1;
	/* Format characters go before composition: "y" U+00AD U+0301 is "ý". */
	long kept = 0;
	for (long i = 0; i < n; i++) {
		int32_t c;
		if (classify(m->p.flags, u[i], &c) != K_DROP)
			u[kept++] = u[i];
	}
	n = kept;
	/*
	 * Keeping accents, a mark after an ASCII letter ("e" U+0301) must
	 * compose with it: take the letter back from the output.
	 */
	if (!(m->p.flags & QN_MINHASH_ACCENTS) && n > 0 && m->in_word &&
	    utf8proc_get_property(u[0])->combining_class && out->len > m->wstart &&
	    (unsigned char)out->data[out->len - 1] < 0x80 &&
	    out->len - m->wstart < QN_MINHASH_MAX_WORD) {
		*--u = (unsigned char)out->data[--out->len];
		n++;
		if (out->len == m->wstart) {
			m->in_word = 0;
			if (m->nwords)
				out->len--; /* the space before the word */
		}
	}
	n = utf8proc_normalize_utf32(u, n, UTF8PROC_COMPOSE);
	if (n < 0)
		n = 0;
	/* Each code point writes at most 4 bytes and 1 space. */
	if ((size_t)n > (SIZE_MAX - 2) / 5 || qn_buf_grow(out, (size_t)n * 5 + 2) < 0)
		return -1;
	for (long i = 0; i < n; i++) {
		int32_t c;
		int kind = classify(m->p.flags, u[i], &c);
		if (c < 128) {
			c = m->ascii[c];
			kind = c ? K_LETTER : K_SEP;
		}
		if (kind == K_DROP)
			continue;
		if (kind == K_SEP || (kind == K_ALONE && m->in_word)) {
			if (separator(m) < 0)
				return -1;
			if (kind == K_SEP)
				continue;
		}
		if (!m->in_word)
			word_begin(m);
		out->len += qn_utf8_encode((uint32_t)c, out->data + out->len);
		if (kind == K_ALONE && word_end(m) < 0)
			return -1;
	}
	if (m->in_word)
		cut_word(m);
	return 0;
}

/* Runs the normalizer over text into out in the given mode. */
static int scan(struct qn_minhash *m, const char *text, size_t len, struct qn_buf *out,
		int mode)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + len;

	m->out = out;
	m->mode = mode;
	m->in_word = 0;
	m->nwords = 0;
	m->nhb = 0;
	m->nset = 0;
	while (p < end) {
		if (*p >= 0x80) {
			if (slow_run(m, &p, end) < 0)
				return -1;
			continue;
		}
		/* The ASCII fast path: a table lookup a byte. */
		size_t chunk = (size_t)(end - p) < ASCII_CHUNK ? (size_t)(end - p) : ASCII_CHUNK;
		if (qn_buf_grow(out, chunk + 1) < 0)
			return -1;
		const unsigned char *stop = p + chunk;
		char *d = out->data;
		size_t o = out->len, wstart = m->wstart;
		int in_word = m->in_word;
		while (p < stop && *p < 0x80) {
			unsigned c = m->ascii[*p++];
			if (c) {
				if (!in_word) {
					if (m->nwords)
						d[o++] = ' ';
					wstart = o;
					in_word = 1;
				}
				d[o++] = (char)c;
			} else if (in_word) {
				in_word = 0;
				out->len = o;
				m->wstart = wstart;
				if (word_end(m) < 0)
					return -1;
				o = out->len;
			}
		}
		out->len = o;
		m->wstart = wstart;
		m->in_word = in_word;
		if (in_word)
			cut_word(m);
	}
	if (m->in_word && word_end(m) < 0)
		return -1;
	if (out->data)
		out->data[out->len] = 0;
	return 0;
}

long qn_minhash_normalize(struct qn_minhash *m, const char *text, size_t len,
			  struct qn_buf *out)
{
	size_t mark = out->len;

	if (scan(m, text, len, out, MODE_TEXT) < 0) {
		out->len = mark;
		if (out->data)
			out->data[mark] = 0;
		return -1;
	}
	return (long)m->nwords;
}

int qn_minhash_signature(struct qn_minhash *m, const char *text, size_t len, uint64_t *sig)
{
	int rc;

	for (size_t i = 0; i < m->k; i++)
		sig[i] = UINT64_MAX;
	m->sig = sig;
	qn_buf_reset(&m->scratch);
	rc = scan(m, text, len, &m->scratch, MODE_SIG);
	if (m->nhb)
		fold(m, sig, m->hb, m->nhb);
	m->nhb = 0;
	if (rc < 0)
		return -1;
	return m->nwords < m->p.ngram ? QN_MINHASH_TOO_SHORT : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int qn_minhash_shingles(struct qn_minhash *m, const char *text, size_t len, uint64_t **set,
			size_t *n)
{
	size_t k = 0;

	*set = NULL;
	*n = 0;
	qn_buf_reset(&m->scratch);
	if (scan(m, text, len, &m->scratch, MODE_SET) < 0)
		return -1;
	if (m->nset == 0)
		return QN_MINHASH_TOO_SHORT;
	qsort(m->set, m->nset, sizeof *m->set, cmp_u64);
	for (size_t i = 0; i < m->nset; i++)
		if (i == 0 || m->set[i] != m->set[k - 1])
			m->set[k++] = m->set[i];
	*set = malloc(k * sizeof **set);
	if (!*set)
		return -1;
	memcpy(*set, m->set, k * sizeof **set);
	*n = k;
	return 0;
}

void qn_minhash_signature_of(const struct qn_minhash *m, const uint64_t *hashes, size_t n,
			     uint64_t *sig)
{
	for (size_t i = 0; i < m->k; i++)
		sig[i] = UINT64_MAX;
	fold(m, sig, hashes, n);
}

double qn_minhash_estimate(const uint64_t *a, const uint64_t *b, size_t k)
{
	size_t eq = 0;

	for (size_t i = 0; i < k; i++)
		eq += a[i] == b[i];
	return k ? (double)eq / (double)k : 0;
}

double qn_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	size_t i = 0, j = 0, common = 0;

	if (na + nb == 0)
		return 0;
	while (i < na && j < nb) {
		if (a[i] < b[j]) {
			i++;
		} else if (a[i] > b[j]) {
			j++;
		} else {
			common++;
			i++;
			j++;
		}
	}
	return (double)common / (double)(na + nb - common);
}

uint64_t qn_minhash_band_key(const struct qn_minhash_params *p, const uint64_t *sig,
			     unsigned band)
{
	unsigned char bytes[64 * 8];
	const uint64_t *v = sig + (size_t)band * p->rows;

	for (unsigned r = 0; r < p->rows; r++)
		for (int i = 0; i < 8; i++)
			bytes[r * 8 + i] = (unsigned char)(v[r] >> (8 * i));
	return qn_xxh3_64(bytes, (size_t)p->rows * 8, p->seed + band);
}

/* ---- LSH index ---- */

struct band_table {
	uint64_t *key;
	uint32_t *head; /* latest document with key; QN_LSH_NONE when empty */
	size_t cap, used;
};

#define LSH_FIRST_CAP 64 /* node slots of an index made with expected 0 */

struct qn_lsh {
	struct qn_minhash_params p;
	size_t n, ncap;
	uint32_t *prev; /* n * bands links to the previous document in the bucket */
	struct band_table t[];
};

static int table_alloc(struct band_table *t, size_t cap)
{
	t->key = malloc(cap * sizeof *t->key);
	t->head = malloc(cap * sizeof *t->head);
	if (!t->key || !t->head) {
		free(t->key);
		free(t->head);
		t->key = NULL;
		t->head = NULL;
		return -1;
	}
	for (size_t i = 0; i < cap; i++)
		t->head[i] = QN_LSH_NONE;
	t->cap = cap;
	t->used = 0;
	return 0;
}

static size_t table_slot(const struct band_table *t, uint64_t key)
{
	size_t mask = t->cap - 1, i = (size_t)key & mask;

	while (t->head[i] != QN_LSH_NONE && t->key[i] != key)
		i = (i + 1) & mask;
	return i;
}

/* Makes room for one more key: at most 3/4 full. */
static int table_reserve(struct band_table *t)
{
	struct band_table old = *t;

	if ((t->used + 1) * 4 <= t->cap * 3)
		return 0;
	if (t->cap > ((size_t)-1) / 2 / sizeof *t->key || table_alloc(t, t->cap * 2) < 0) {
		*t = old;
		return -1;
	}
	for (size_t i = 0; i < old.cap; i++) {
		if (old.head[i] == QN_LSH_NONE)
			continue;
		size_t s = table_slot(t, old.key[i]);
		t->key[s] = old.key[i];
		t->head[s] = old.head[i];
	}
	t->used = old.used;
	free(old.key);
	free(old.head);
	return 0;
}

struct qn_lsh *qn_lsh_new(const struct qn_minhash_params *p, size_t expected,
			  struct qn_err *e)
{
	struct qn_lsh *l;
	size_t cap = 64;

	if (p->bands < 1 || p->rows < 1 || p->rows > 64 ||
	    (size_t)p->bands * p->rows > QN_MINHASH_MAX_HASHES) {
		qn_errf(e, "lsh: %u bands of %u rows out of range", p->bands, p->rows);
		return NULL;
	}
	if (expected > UINT32_MAX)
		expected = UINT32_MAX;
	while (cap * 3 < expected * 4)
		cap *= 2;
	l = calloc(1, sizeof *l + p->bands * sizeof l->t[0]);
	if (!l)
		goto oom;
	l->p = *p;
	for (unsigned b = 0; b < p->bands; b++)
		if (table_alloc(&l->t[b], cap) < 0)
			goto oom;
	l->ncap = expected ? expected : LSH_FIRST_CAP;
	l->prev = malloc(l->ncap * p->bands * sizeof *l->prev);
	if (!l->prev)
		goto oom;
	return l;
oom:
	qn_lsh_free(l);
	qn_errf(e, "lsh: out of memory");
	return NULL;
}

void qn_lsh_free(struct qn_lsh *l)
{
	if (!l)
		return;
	for (unsigned b = 0; b < l->p.bands; b++) {
		free(l->t[b].key);
		free(l->t[b].head);
	}
	free(l->prev);
	free(l);
}

int qn_lsh_add(struct qn_lsh *l, const uint64_t *sig, uint32_t *doc, struct qn_err *e)
{
	uint64_t keys[QN_MINHASH_MAX_HASHES];

	for (size_t b = 0; sig && b < l->p.bands; b++)
		keys[b] = qn_minhash_band_key(&l->p, sig, (unsigned)b);
	return qn_lsh_add_keys(l, sig ? keys : NULL, doc, e);
}

/* The node slots after one more growth step. */
static size_t lsh_grow_cap(size_t cap)
{
	return cap * 2 < QN_LSH_NONE ? cap * 2 : QN_LSH_NONE;
}

size_t qn_lsh_node_cap(size_t n)
{
	size_t cap = LSH_FIRST_CAP;
	while (cap < n && cap < QN_LSH_NONE)
		cap = lsh_grow_cap(cap);
	return cap;
}

size_t qn_lsh_node_bytes(const struct qn_lsh *l)
{
	return l->p.bands * sizeof *l->prev;
}

int qn_lsh_add_keys(struct qn_lsh *l, const uint64_t *keys, uint32_t *doc, struct qn_err *e)
{
	size_t nb = l->p.bands;
	uint32_t d = (uint32_t)l->n;

	if (l->n >= (size_t)QN_LSH_NONE - 1)
		return qn_errf(e, "lsh: more than %u documents", QN_LSH_NONE - 1);
	if (l->n == l->ncap) {
		size_t cap = lsh_grow_cap(l->ncap);
		uint32_t *p = realloc(l->prev, cap * nb * sizeof *p);
		if (!p)
			return qn_errf(e, "lsh: out of memory");
		l->prev = p;
		l->ncap = cap;
	}
	uint32_t *prev = l->prev + l->n * nb;
	if (keys) {
		for (size_t b = 0; b < nb; b++)
			if (table_reserve(&l->t[b]) < 0)
				return qn_errf(e, "lsh: out of memory");
	}
	/* Prefetch every band's slot first: the cache misses overlap. */
	for (size_t b = 0; keys && b < nb; b++) {
		const struct band_table *t = &l->t[b];
		__builtin_prefetch(t->key + (keys[b] & (t->cap - 1)));
		__builtin_prefetch(t->head + (keys[b] & (t->cap - 1)));
	}
	for (size_t b = 0; b < nb; b++) {
		prev[b] = QN_LSH_NONE;
		if (!keys)
			continue;
		struct band_table *t = &l->t[b];
		uint64_t key = keys[b];
		size_t s = table_slot(t, key);
		if (t->head[s] == QN_LSH_NONE) {
			t->key[s] = key;
			t->used++;
		} else {
			prev[b] = t->head[s];
		}
		t->head[s] = d;
	}
	l->n++;
	if (doc)
		*doc = d;
	return 0;
}

size_t qn_lsh_count(const struct qn_lsh *l) { return l->n; }

uint32_t qn_lsh_prev(const struct qn_lsh *l, uint32_t doc, unsigned band)
{
	if (doc >= l->n || band >= l->p.bands)
		return QN_LSH_NONE;
	return l->prev[(size_t)doc * l->p.bands + band];
}

size_t qn_lsh_candidates(const struct qn_lsh *l, uint32_t doc, uint32_t *out, size_t max)
{
	size_t n = 0, nb = l->p.bands;

	if (doc >= l->n)
		return 0;
	for (size_t b = 0; b < nb && n < max; b++) {
		uint32_t c = l->prev[(size_t)doc * nb + b];
		for (size_t steps = 0; c != QN_LSH_NONE && steps < max && n < max; steps++) {
			size_t i = 0;
			while (i < n && out[i] != c)
				i++;
			if (i == n)
				out[n++] = c;
			c = l->prev[(size_t)c * nb + b];
		}
	}
	return n;
}

size_t qn_lsh_bytes(const struct qn_lsh *l)
{
	size_t bytes = sizeof *l + l->p.bands * sizeof l->t[0];

	bytes += l->ncap * l->p.bands * sizeof *l->prev;
	for (unsigned b = 0; b < l->p.bands; b++)
		bytes += l->t[b].cap * (sizeof *l->t[b].key + sizeof *l->t[b].head);
	return bytes;
}

/* ---- union-find ---- */

struct qn_uf {
	uint32_t *parent, *size;
	uint32_t *next; /* circular list of each cluster's members */
	size_t n, cap;
};

struct qn_uf *qn_uf_new(size_t n)
{
	struct qn_uf *u = calloc(1, sizeof *u);

	if (!u || qn_uf_grow(u, n) < 0) {
		qn_uf_free(u);
		return NULL;
	}
	return u;
}

void qn_uf_free(struct qn_uf *u)
{
	if (!u)
		return;
	free(u->parent);
	free(u->size);
	free(u->next);
	free(u);
}

int qn_uf_grow(struct qn_uf *u, size_t n)
{
	if (n <= u->n)
		return 0;
	if (n >= QN_LSH_NONE)
		return -1;
	if (n > u->cap) {
		size_t cap = u->cap ? u->cap : 64;
		while (cap < n)
			cap = cap * 2 < QN_LSH_NONE ? cap * 2 : QN_LSH_NONE;
		uint32_t *p = realloc(u->parent, cap * sizeof *p);
		if (!p)
			return -1;
		u->parent = p;
		p = realloc(u->size, cap * sizeof *p);
		if (!p)
			return -1;
		u->size = p;
		p = realloc(u->next, cap * sizeof *p);
		if (!p)
			return -1;
		u->next = p;
		u->cap = cap;
	}
	for (size_t i = u->n; i < n; i++) {
		u->parent[i] = (uint32_t)i;
		u->size[i] = 1;
		u->next[i] = (uint32_t)i;
	}
	u->n = n;
	return 0;
}

size_t qn_uf_count(const struct qn_uf *u) { return u->n; }

uint32_t qn_uf_find(struct qn_uf *u, uint32_t x)
{
	while (u->parent[x] != x) {
		u->parent[x] = u->parent[u->parent[x]];
		x = u->parent[x];
	}
	return x;
}

int qn_uf_union(struct qn_uf *u, uint32_t x, uint32_t y)
{
	x = qn_uf_find(u, x);
	y = qn_uf_find(u, y);
	if (x == y)
		return 0;
	if (u->size[x] < u->size[y] || (u->size[x] == u->size[y] && y < x)) {
		uint32_t t = x;
		x = y;
		y = t;
	}
	u->parent[y] = x;
	u->size[x] += u->size[y];
	/* Splicing two circular lists is swapping one successor each. */
	uint32_t t = u->next[x];
	u->next[x] = u->next[y];
	u->next[y] = t;
	return 1;
}

uint32_t qn_uf_next(const struct qn_uf *u, uint32_t x) { return u->next[x]; }

size_t qn_uf_size(struct qn_uf *u, uint32_t x) { return u->size[qn_uf_find(u, x)]; }

int qn_uf_union_if_all(struct qn_uf *u, uint32_t x, uint32_t y,
		       int (*ok)(uint32_t a, uint32_t b, void *ctx), void *ctx)
{
	if (qn_uf_find(u, x) == qn_uf_find(u, y))
		return 0;
	uint32_t a = x;
	do {
		uint32_t b = y;
		do {
			if (!ok(a, b, ctx))
				return 0;
			b = u->next[b];
		} while (b != y);
		a = u->next[a];
	} while (a != x);
	return qn_uf_union(u, x, y);
}

void qn_uf_keep(struct qn_uf *u, const double *priority, uint32_t *keep)
{
	for (size_t i = 0; i < u->n; i++)
		keep[i] = QN_LSH_NONE;
	/* keep[root] collects the best member; ascending i makes ties go low. */
	for (size_t i = 0; i < u->n; i++) {
		uint32_t r = qn_uf_find(u, (uint32_t)i), best = keep[r];
		if (best == QN_LSH_NONE ||
		    (priority && (priority[i] > priority[best] ||
				  (isnan(priority[best]) && !isnan(priority[i])))))
			keep[r] = (uint32_t)i;
	}
	for (size_t i = 0; i < u->n; i++)
		keep[i] = keep[qn_uf_find(u, (uint32_t)i)];
}
