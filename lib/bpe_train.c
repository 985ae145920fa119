/*
 * bpe_train.c - byte-level BPE training (see bpe_train.h and
 * docs/bpe-training.md): pre-token counting with PCRE2 on worker threads,
 * merges with incremental pair counts and a lazy max-heap, and the three
 * writers.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bpe_train.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "doc.h"
#include "err.h"
#include "hash.h"
#include "utf8.h"
#include "wr.h"

typedef unsigned __int128 u128;

#define NONE UINT32_MAX
#define DEAD UINT32_MAX		      /* sym[] of a position absorbed by a merge */
#define BATCH_BYTES ((size_t)1 << 20) /* texts per worker batch; larger texts count inline */
#define BATCH_TEXTS 4096
#define MATCH_LIMIT 10000000 /* per match; the named patterns stay far below it */

/*
 * The split patterns of tiktoken's named encodings in their Rust-regex
 * form (the npm package's registry.json; tiktoken_ext/openai_public.py has
 * possessive variants that match the same). They must equal lib/bpe.c's,
 * and so must to_pcre below. The same strings go into tokenizer.json:
 * without possessive quantifiers they mean the same to Oniguruma and to
 * tokenizers.js, which reads possessives as greedy.
 */
static const struct pattern {
	const char *name, *alias, *re;
} patterns[] = {
    {"gpt2", "r50k",
     "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
    {"cl100k", "cl100k_base",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"o200k", "o200k_base",
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
     "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

/* Unicode White_Space: \s in Rust's regex crate, Oniguruma and tokenizers.js. */
#define WS_SET                                                                                     \
	"\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"       \
	"\\x{202F}\\x{205F}\\x{3000}"

/*
 * The pattern (Rust-regex syntax) for PCRE2: \s and \S become White_Space
 * classes, since PCRE2's \s with UCP also takes U+180E. Nested classes and
 * class set operations (Rust only) are refused. Same rules as lib/bpe.c's
 * rx_translate. NULL with e filled on a refusal or no memory.
 */
static char *to_pcre(const char *src, struct qn_err *e)
{
	struct qn_buf o;
	size_t n = strlen(src), i = 0;
	int in_class = 0, rc = 0;

	qn_buf_init(&o, QN_BUF_UNLIMITED);
	while (i < n && !rc) {
		char c = src[i];
		const char *end;
		if (c == '\\' && i + 1 < n) {
			char d = src[i + 1];
			if (d == 's') {
				rc = qn_buf_adds(&o, in_class ? WS_SET : "[" WS_SET "]");
				i += 2;
			} else if (d == 'S') {
				if (in_class) {
					qn_buf_release(&o);
					qn_errf(e,
						"bad pattern: \\S inside a class is not supported");
					return NULL;
				}
				rc = qn_buf_adds(&o, "[^" WS_SET "]");
				i += 2;
			} else if (d == 'Q') {
				end = strstr(src + i + 2, "\\E");
				size_t m = end ? (size_t)(end + 2 - (src + i)) : n - i;
				rc = qn_buf_add(&o, src + i, m);
				i += m;
			} else if ((d == 'p' || d == 'P' || d == 'x') && src[i + 2] == '{') {
				end = strchr(src + i, '}');
				size_t m = end ? (size_t)(end + 1 - (src + i)) : n - i;
				rc = qn_buf_add(&o, src + i, m);
				i += m;
			} else {
				rc = qn_buf_add(&o, src + i, 2);
				i += 2;
			}
		} else if (in_class && c == '[' && src[i + 1] == ':' &&
			   (end = strstr(src + i + 2, ":]"))) {
			size_t m = (size_t)(end + 2 - (src + i));
			rc = qn_buf_add(&o, src + i, m); /* [:alpha:] */
			i += m;
		} else if (in_class && (c == '[' || ((c == '&' || c == '~') && src[i + 1] == c) ||
					(c == '-' && src[i + 1] == '-'))) {
			qn_buf_release(&o);
			qn_errf(e, "bad pattern: nested classes and class set operations are not "
				   "supported");
			return NULL;
		} else if (!in_class && c == '[') {
			in_class = 1;
			rc = qn_buf_addc(&o, c);
			i++;
			if (i < n && src[i] == '^')
				rc |= qn_buf_addc(&o, src[i++]);
			if (i < n && src[i] == ']')
				rc |= qn_buf_addc(&o, src[i++]);
		} else {
			if (in_class && c == ']')
				in_class = 0;
			rc = qn_buf_addc(&o, c);
			i++;
		}
	}
	if (rc < 0 || qn_buf_adds(&o, "") < 0) {
		qn_buf_release(&o);
		qn_errf(e, "out of memory");
		return NULL;
	}
	return qn_buf_detach(&o, NULL);
}

/* ---- the pre-token count map ------------------------------------------ */

struct cent {
	uint64_t h;
	const unsigned char *key; /* NULL: empty slot */
	uint32_t len;
	uint64_t count;
};

struct chunk {
	struct chunk *next;
	size_t used, cap;
	unsigned char data[];
};

struct cmap {
	struct cent *tab;
	size_t mask, n;
	struct chunk *chunks;
	uint64_t bytes; /* key bytes held */
	size_t max_bytes;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static int cmap_init(struct cmap *m, size_t max_bytes)
{
	memset(m, 0, sizeof *m);
	m->max_bytes = max_bytes;
	m->mask = 4095;
	m->tab = calloc(m->mask + 1, sizeof *m->tab);
	return m->tab ? 0 : -1;
}

static void cmap_release(struct cmap *m)
{
	while (m->chunks) {
		struct chunk *c = m->chunks;
		m->chunks = c->next;
		free(c);
	}
	free(m->tab);
	memset(m, 0, sizeof *m);
}

static int cmap_grow(struct cmap *m)
{
	size_t cap = (m->mask + 1) * 2, i;
	struct cent *tab = calloc(cap, sizeof *tab);
	if (!tab)
		return -1;
	for (i = 0; i <= m->mask; i++) {
		struct cent *c = &m->tab[i];
		size_t j;
		if (!c->key)
			continue;
		for (j = c->h & (cap - 1); tab[j].key; j = (j + 1) & (cap - 1))
			;
		tab[j] = *c;
	}
	free(m->tab);
	m->tab = tab;
	m->mask = cap - 1;
	return 0;
}

static unsigned char *cmap_store(struct cmap *m, const void *p, size_t n)
{
	struct chunk *c = m->chunks;
	unsigned char *dst;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ((size_t)1 << 20) ? n : ((size_t)1 << 20);
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = m->chunks;
		m->chunks = c;
	}
	dst = c->data + c->used;
	c->used += n;
	memcpy(dst, p, n);
	return dst;
}

/* Adds count to key; 0, -1 out of memory, -2 past max_bytes. */
static int cmap_add(struct cmap *m, const void *key, size_t n, uint64_t h, uint64_t count)
{
	size_t i;
	struct cent *c;

	for (i = h & m->mask;; i = (i + 1) & m->mask) {
		c = &m->tab[i];
		if (!c->key)
			break;
		if (c->h == h && c->len == n && !memcmp(c->key, key, n)) {
			c->count = sat_add(c->count, count);
			return 0;
		}
	}
	if (n > m->max_bytes || m->bytes > m->max_bytes - n)
		return -2;
	if (!(c->key = cmap_store(m, key, n)))
		return -1;
	c->h = h;
	c->len = (uint32_t)n;
	c->count = count;
	m->bytes += n;
	if (++m->n * 4 > (m->mask + 1) * 3)
		return cmap_grow(m);
	return 0;
}

/* ---- the trainer ----------------------------------------------------- */

/* One per counting thread, each on cache lines of its own (no false sharing). */
struct counter {
	_Alignas(64) struct cmap map;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jstack;
	size_t *next_special; /* scratch: next occurrence of each special */
	uint64_t pretokens;
};

struct batch {
	struct batch *next;
	struct qn_buf text;
	size_t *ix; /* (offset, length) of each text */
	size_t n, cap;
};

struct pair {
	u128 count;
	uint32_t a, b;
	uint32_t *pos; /* positions of the left symbol, possibly stale */
	uint32_t n, cap;
	uint32_t merged;
};

struct hent {
	u128 count;
	uint32_t pair;
};

struct qn_bpet {
	/* options */
	char *pattern, *pattern_name;
	const struct pattern *named;
	size_t vocab_size, max_bytes;
	uint64_t min_frequency;
	char **specials;
	size_t *special_len;
	size_t nspecials;
	int threads, check;
	qn_bpet_progress_fn progress;
	void *progress_ctx;

	pcre2_code *re;
	int jit;

	/* counting: cnt[0] is the caller's, cnt[1..] the workers' */
	struct counter *cnt;
	int ncnt;
	pthread_t *th;
	int nth;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_space;
	int sync_ok;
	struct batch *qhead, *qtail, *cur;
	size_t qlen, qmax;
	int closing;
	_Atomic int failed; /* set once, under mu, after werr; read without it */
	struct qn_err werr;
	int trained, broken;

	struct qn_bpet_stats st;

	/* the result: token bytes, merges */
	struct qn_buf tokbytes;
	size_t *toff;
	uint32_t *tlen, *left, *right;
	uint64_t *mcount;
	size_t ntok, tcap;
};

void qn_bpet_opts_default(struct qn_bpet_opts *o)
{
	memset(o, 0, sizeof *o);
	o->pattern = "o200k";
	o->vocab_size = 32000;
	o->min_frequency = 2;
	o->threads = 1;
	o->max_bytes = QN_BPET_MAX_BYTES;
}

static int counter_init(struct qn_bpet *t, struct counter *c)
{
	memset(c, 0, sizeof *c);
	if (cmap_init(&c->map, t->max_bytes) < 0)
		return -1;
	c->md = pcre2_match_data_create(1, NULL);
	c->mctx = pcre2_match_context_create(NULL);
	if (!c->md || !c->mctx)
		return -1;
	pcre2_set_match_limit(c->mctx, MATCH_LIMIT);
	if (t->jit) {
		/* Long runs (100 KB without a space) must not overflow the default 32 KB. */
		c->jstack = pcre2_jit_stack_create(32 << 10, 8 << 20, NULL);
		if (!c->jstack)
			return -1;
		pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
	}
	if (t->nspecials && !(c->next_special = malloc(t->nspecials * sizeof *c->next_special)))
		return -1;
	return 0;
}

static void counter_release(struct counter *c)
{
	cmap_release(&c->map);
	pcre2_match_data_free(c->md);
	pcre2_match_context_free(c->mctx);
	pcre2_jit_stack_free(c->jstack);
	free(c->next_special);
	memset(c, 0, sizeof *c);
}

/*
 * The map's hash: most pre-tokens are a few bytes long, where a call into
 * xxh3 costs more than the hashing; those get a multiply-fold of their
 * first and last bytes. Only placement in the table depends on it.
 */
static uint64_t piece_hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t a, b;
	u128 m;
	if (n > 16)
		return qn_xxh3_64(p, n, 0);
	if (n >= 8) {
		memcpy(&a, p, 8);
		memcpy(&b, p + n - 8, 8);
	} else if (n >= 4) {
		uint32_t x, y;
		memcpy(&x, p, 4);
		memcpy(&y, p + n - 4, 4);
		a = x;
		b = y;
	} else {
		a = n ? (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1] : 0;
		b = 0;
	}
	m = (u128)(a ^ 0xa0761d6478bd642full ^ n) * (b ^ 0xe7037ed1a0b428dbull);
	return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static int add_piece(struct counter *c, const char *p, size_t n, struct qn_err *e)
{
	int rc;
	if (!n)
		return 0;
	rc = cmap_add(&c->map, p, n, piece_hash(p, n), 1);
	if (rc == -2)
		return qn_errf(e, "more than %zu bytes of distinct pre-tokens", c->map.max_bytes);
	if (rc < 0)
		return qn_errf(e, "out of memory counting pre-tokens");
	c->pretokens = sat_add(c->pretokens, 1);
	return 0;
}

static size_t char_len(const unsigned char *s, size_t n)
{
	size_t k = qn_utf8_valid_prefix((const char *)s, n < 4 ? n : 4);
	uint32_t cp;
	if (!k)
		return 1;
	return qn_utf8_decode((const char *)s, k, &cp);
}

/*
 * Splits s[0..n) by the regex: matches and the gaps between them become
 * pre-tokens; an empty match is only a boundary.
 */
static int split_count(const struct qn_bpet *t, struct counter *c, const char *s, size_t n,
		       struct qn_err *e)
{
	size_t pos = 0, gap = 0;

	while (pos < n) {
		int rc = t->jit ? pcre2_jit_match(t->re, (PCRE2_SPTR)s, n, pos, 0, c->md, c->mctx)
				: pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, 0, c->md, c->mctx);
		PCRE2_SIZE *ov;
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(rc, msg, sizeof msg);
			return qn_errf(e, "pre-tokenization failed at byte %zu: %s", pos,
				       (char *)msg);
		}
		ov = pcre2_get_ovector_pointer(c->md);
		if (add_piece(c, s + gap, ov[0] - gap, e) < 0 ||
		    add_piece(c, s + ov[0], ov[1] - ov[0], e) < 0)
			return -1;
		gap = ov[1];
		pos = ov[1] > ov[0] ? ov[1]
				    : ov[0] + char_len((const unsigned char *)s + ov[0], n - ov[0]);
	}
	return add_piece(c, s + gap, n - gap, e);
}

/* Cuts a text at its special tokens and counts the pieces between. */
static int count_text(const struct qn_bpet *t, struct counter *c, const char *s, size_t n,
		      struct qn_err *e)
{
	size_t pos = 0, i;

	if (!t->nspecials)
		return split_count(t, c, s, n, e);
	/* next_special[i]: the first occurrence of special i at or after pos, or SIZE_MAX */
	for (i = 0; i < t->nspecials; i++) {
		const char *f = memmem(s, n, t->specials[i], t->special_len[i]);
		c->next_special[i] = f ? (size_t)(f - s) : SIZE_MAX;
	}
	for (;;) {
		size_t best = n, blen = 0;
		for (i = 0; i < t->nspecials; i++) {
			size_t *at = &c->next_special[i];
			if (*at != SIZE_MAX && *at < pos) {
				const char *f =
				    memmem(s + pos, n - pos, t->specials[i], t->special_len[i]);
				*at = f ? (size_t)(f - s) : SIZE_MAX;
			}
			if (*at != SIZE_MAX &&
			    (*at < best || (*at == best && t->special_len[i] > blen))) {
				best = *at;
				blen = t->special_len[i];
			}
		}
		if (split_count(t, c, s + pos, best - pos, e) < 0)
			return -1;
		if (best == n && !blen)
			return 0;
		pos = best + blen;
	}
}

static int set_error(struct qn_bpet *t, const struct qn_err *e)
{
	pthread_mutex_lock(&t->mu);
	if (!t->failed) {
		t->werr = *e;
		t->failed = 1;
	}
	pthread_cond_broadcast(&t->cv_space);
	pthread_mutex_unlock(&t->mu);
	return -1;
}

struct wctx {
	struct qn_bpet *t;
	struct counter *c;
};

static void *worker(void *arg)
{
	struct qn_bpet *t = ((struct wctx *)arg)->t;
	struct counter *c = ((struct wctx *)arg)->c;
	free(arg);
	for (;;) {
		struct batch *b;
		size_t i;
		int failed;
		pthread_mutex_lock(&t->mu);
		while (!t->qhead && !t->closing)
			pthread_cond_wait(&t->cv_work, &t->mu);
		b = t->qhead;
		if (b) {
			t->qhead = b->next;
			if (!t->qhead)
				t->qtail = NULL;
			t->qlen--;
			pthread_cond_signal(&t->cv_space);
		}
		failed = t->failed;
		pthread_mutex_unlock(&t->mu);
		if (!b)
			return NULL;
		for (i = 0; i < b->n && !failed; i++) {
			struct qn_err e;
			if (count_text(t, c, b->text.data + b->ix[2 * i], b->ix[2 * i + 1], &e) <
			    0) {
				set_error(t, &e);
				failed = 1;
			}
		}
		qn_buf_release(&b->text);
		free(b->ix);
		free(b);
	}
}

static int error_out(struct qn_bpet *t, struct qn_err *e)
{
	if (e)
		*e = t->werr;
	return -1;
}

static void free_batch(struct batch *b)
{
	if (b) {
		qn_buf_release(&b->text);
		free(b->ix);
		free(b);
	}
}

static int submit(struct qn_bpet *t, struct qn_err *e)
{
	struct batch *b = t->cur;
	t->cur = NULL;
	if (!b)
		return 0;
	pthread_mutex_lock(&t->mu);
	while (t->qlen >= t->qmax && !t->failed)
		pthread_cond_wait(&t->cv_space, &t->mu);
	if (t->failed) {
		pthread_mutex_unlock(&t->mu);
		free_batch(b);
		return error_out(t, e);
	}
	if (t->qtail)
		t->qtail->next = b;
	else
		t->qhead = b;
	t->qtail = b;
	t->qlen++;
	pthread_cond_signal(&t->cv_work);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static int stop_workers(struct qn_bpet *t)
{
	int i;
	if (!t->sync_ok)
		return 0;
	pthread_mutex_lock(&t->mu);
	t->closing = 1;
	pthread_cond_broadcast(&t->cv_work);
	pthread_mutex_unlock(&t->mu);
	for (i = 0; i < t->nth; i++)
		pthread_join(t->th[i], NULL);
	t->nth = 0;
	return t->failed ? -1 : 0;
}

static const struct pattern *find_pattern(const char *s)
{
	size_t i;
	for (i = 0; i < sizeof patterns / sizeof *patterns; i++)
		if (!strcmp(s, patterns[i].name) || !strcmp(s, patterns[i].alias))
			return &patterns[i];
	return NULL;
}

struct qn_bpet *qn_bpet_new(const struct qn_bpet_opts *o, struct qn_err *e)
{
	struct qn_bpet_opts def;
	struct qn_bpet *t;
	const char *pat;
	char *pcre;
	int ec, i;
	PCRE2_SIZE eo;
	size_t k, j;

	if (!o) {
		qn_bpet_opts_default(&def);
		o = &def;
	}
	if (o->nspecials > QN_BPET_MAX_SPECIALS) {
		qn_errf(e, "too many special tokens (%zu; at most %d)", o->nspecials,
			QN_BPET_MAX_SPECIALS);
		return NULL;
	}
	if (o->vocab_size < 256 + o->nspecials) {
		qn_errf(e,
			"vocabulary size %zu is too small: 256 byte tokens and %zu special tokens "
			"need %zu",
			o->vocab_size, o->nspecials, 256 + o->nspecials);
		return NULL;
	}
	if (o->vocab_size > (size_t)UINT32_MAX / 2) {
		qn_errf(e, "vocabulary size %zu is too large", o->vocab_size);
		return NULL;
	}
	if (o->threads > QN_BPET_MAX_THREADS) {
		qn_errf(e, "too many threads (%d; at most %d)", o->threads, QN_BPET_MAX_THREADS);
		return NULL;
	}
	for (k = 0; k < o->nspecials; k++) {
		const char *s = o->specials[k];
		if (!s || !*s || !qn_utf8_valid(s, strlen(s))) {
			qn_errf(e, "special token %zu is empty or not valid UTF-8", k + 1);
			return NULL;
		}
		for (j = 0; j < k; j++)
			if (!strcmp(s, o->specials[j])) {
				qn_errf(e, "special token '%s' is given twice", s);
				return NULL;
			}
	}
	if (!(t = calloc(1, sizeof *t))) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	pat = o->pattern ? o->pattern : "o200k";
	t->named = find_pattern(pat);
	t->pattern = strdup(t->named ? t->named->re : pat);
	t->pattern_name = t->named ? strdup(t->named->name) : NULL;
	t->vocab_size = o->vocab_size;
	t->max_bytes = o->max_bytes ? o->max_bytes : QN_BPET_MAX_BYTES;
	if (t->max_bytes > QN_BPET_MAX_BYTES)
		t->max_bytes = QN_BPET_MAX_BYTES;
	t->min_frequency = o->min_frequency ? o->min_frequency : 1;
	t->threads = o->threads > 1 ? o->threads : 1;
	t->check = o->check;
	t->progress = o->progress;
	t->progress_ctx = o->progress_ctx;
	t->nspecials = o->nspecials;
	qn_buf_init(&t->tokbytes, QN_BUF_UNLIMITED);
	if (!t->pattern || (t->named && !t->pattern_name))
		goto nomem;
	if (t->nspecials) {
		t->specials = calloc(t->nspecials, sizeof *t->specials);
		t->special_len = calloc(t->nspecials, sizeof *t->special_len);
		if (!t->specials || !t->special_len)
			goto nomem;
		for (k = 0; k < t->nspecials; k++) {
			if (!(t->specials[k] = strdup(o->specials[k])))
				goto nomem;
			t->special_len[k] = strlen(t->specials[k]);
		}
	}
	if (!*t->pattern) {
		qn_errf(e, "empty pattern");
		qn_bpet_free(t);
		return NULL;
	}
	if (!(pcre = to_pcre(t->pattern, e))) {
		qn_bpet_free(t);
		return NULL;
	}
	t->re = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED,
			      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
	free(pcre);
	if (!t->re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof msg);
		qn_errf(e, "bad pattern at offset %zu: %s", (size_t)eo, (char *)msg);
		qn_bpet_free(t);
		return NULL;
	}
	/* Without JIT (an unsupported CPU) pcre2_match interprets: slower, same result. */
	t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;

	t->ncnt = t->threads > 1 ? t->threads + 1 : 1;
	if (!(t->cnt = aligned_alloc(64, t->ncnt * sizeof *t->cnt)))
		goto nomem;
	memset(t->cnt, 0, t->ncnt * sizeof *t->cnt);
	for (i = 0; i < t->ncnt; i++)
		if (counter_init(t, &t->cnt[i]) < 0)
			goto nomem;
	if (t->threads > 1) {
		if (pthread_mutex_init(&t->mu, NULL) || pthread_cond_init(&t->cv_work, NULL) ||
		    pthread_cond_init(&t->cv_space, NULL))
			goto nomem;
		t->sync_ok = 1;
		t->qmax = 2 * (size_t)t->threads;
		if (!(t->th = calloc(t->threads, sizeof *t->th)))
			goto nomem;
		for (i = 0; i < t->threads; i++) {
			struct wctx *w = malloc(sizeof *w);
			if (!w)
				goto nomem;
			w->t = t;
			w->c = &t->cnt[i + 1];
			if (pthread_create(&t->th[i], NULL, worker, w)) {
				free(w);
				qn_errf(e, "cannot start a counting thread");
				qn_bpet_free(t);
				return NULL;
			}
			t->nth++;
		}
	}
	return t;
nomem:
	qn_errf(e, "out of memory");
	qn_bpet_free(t);
	return NULL;
}

static void free_result(struct qn_bpet *t)
{
	qn_buf_release(&t->tokbytes);
	free(t->toff);
	free(t->tlen);
	free(t->left);
	free(t->right);
	free(t->mcount);
}

void qn_bpet_free(struct qn_bpet *t)
{
	int i;
	size_t k;
	if (!t)
		return;
	stop_workers(t);
	while (t->qhead) {
		struct batch *b = t->qhead;
		t->qhead = b->next;
		free_batch(b);
	}
	free_batch(t->cur);
	if (t->sync_ok) {
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->cv_work);
		pthread_cond_destroy(&t->cv_space);
	}
	free(t->th);
	for (i = 0; i < t->ncnt; i++)
		counter_release(&t->cnt[i]);
	free(t->cnt);
	pcre2_code_free(t->re);
	for (k = 0; k < t->nspecials && t->specials; k++)
		free(t->specials[k]);
	free(t->specials);
	free(t->special_len);
	free(t->pattern);
	free(t->pattern_name);
	free_result(t);
	free(t);
}

int qn_bpet_add_text(struct qn_bpet *t, const char *text, size_t len, struct qn_err *e)
{
	struct batch *b;

	if (t->trained || t->broken)
		return qn_errf(e, t->trained ? "text added after training"
					     : "the trainer failed before");
	t->st.texts++;
	t->st.bytes = sat_add(t->st.bytes, len);
	if (t->threads <= 1 || len >= BATCH_BYTES) {
		if (t->threads > 1 && t->failed)
			return error_out(t, e);
		if (count_text(t, &t->cnt[0], text, len, e) < 0) {
			t->broken = 1;
			return -1;
		}
		return 0;
	}
	if (t->failed)
		return error_out(t, e);
	if (!(b = t->cur)) {
		if (!(b = t->cur = calloc(1, sizeof *b)))
			return qn_errf(e, "out of memory");
		qn_buf_init(&b->text, QN_BUF_UNLIMITED);
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		size_t *ix = realloc(b->ix, 2 * cap * sizeof *ix);
		if (!ix)
			return qn_errf(e, "out of memory");
		b->ix = ix;
		b->cap = cap;
	}
	b->ix[2 * b->n] = b->text.len;
	b->ix[2 * b->n + 1] = len;
	if (qn_buf_add(&b->text, text, len) < 0)
		return qn_errf(e, "out of memory");
	b->n++;
	if (b->text.len >= BATCH_BYTES || b->n >= BATCH_TEXTS)
		return submit(t, e);
	return 0;
}

int qn_bpet_add_pretoken(struct qn_bpet *t, const char *p, size_t len, uint64_t count,
			 struct qn_err *e)
{
	int rc;
	if (t->trained)
		return qn_errf(e, "pre-token added after training");
	if (!len || !count)
		return 0;
	rc = cmap_add(&t->cnt[0].map, p, len, piece_hash(p, len), count);
	if (rc == -2)
		return qn_errf(e, "more than %zu bytes of distinct pre-tokens", t->max_bytes);
	if (rc < 0)
		return qn_errf(e, "out of memory counting pre-tokens");
	t->cnt[0].pretokens = sat_add(t->cnt[0].pretokens, count);
	return 0;
}

/* ---- training state ----------------------------------------------------- */

struct train {
	struct qn_bpet *t;
	/* positions: every byte of every distinct pre-token of two or more bytes */
	uint32_t *sym, *nxt, *prv, *wid;
	size_t npos;
	uint64_t *wcount;
	/* pairs and their index (open addressing on (a << 32 | b)) */
	struct pair *pairs;
	size_t npairs, pcap;
	uint64_t *pkey;
	uint32_t *pid;
	size_t pmask;
	/* the max-heap of (count, pair), lazily updated */
	struct hent *heap;
	size_t nheap, hcap;
	/* pairs created during the current merge */
	uint32_t *fresh;
	size_t nfresh, fcap;
	int oom;
};

static uint64_t pair_hash(uint64_t key)
{
	return (key * 0x9E3779B97F4A7C15ull) >> 17;
}

static int pindex_grow(struct train *tr)
{
	size_t cap = tr->pmask ? 2 * (tr->pmask + 1) : 1 << 16, i;
	uint64_t *key = malloc(cap * sizeof *key);
	uint32_t *id = malloc(cap * sizeof *id);
	if (!key || !id) {
		free(key);
		free(id);
		return -1;
	}
	memset(id, 0xff, cap * sizeof *id);
	for (i = 0; tr->pmask && i <= tr->pmask; i++) {
		size_t j;
		if (tr->pid[i] == NONE)
			continue;
		for (j = pair_hash(tr->pkey[i]) & (cap - 1); id[j] != NONE; j = (j + 1) & (cap - 1))
			;
		key[j] = tr->pkey[i];
		id[j] = tr->pid[i];
	}
	free(tr->pkey);
	free(tr->pid);
	tr->pkey = key;
	tr->pid = id;
	tr->pmask = cap - 1;
	return 0;
}

static uint32_t pair_find(const struct train *tr, uint32_t a, uint32_t b)
{
	uint64_t key = (uint64_t)a << 32 | b;
	size_t j;
	for (j = pair_hash(key) & tr->pmask; tr->pid[j] != NONE; j = (j + 1) & tr->pmask)
		if (tr->pkey[j] == key)
			return tr->pid[j];
	return NONE;
}

/* The pair (a, b), created when new (and then noted in fresh); NONE when out of memory. */
static uint32_t pair_get(struct train *tr, uint32_t a, uint32_t b)
{
	uint64_t key = (uint64_t)a << 32 | b;
	size_t j;
	struct pair *p;

	for (j = pair_hash(key) & tr->pmask; tr->pid[j] != NONE; j = (j + 1) & tr->pmask)
		if (tr->pkey[j] == key)
			return tr->pid[j];
	if (tr->npairs >= NONE - 1)
		return NONE;
	if (tr->npairs == tr->pcap) {
		size_t cap = tr->pcap ? 2 * tr->pcap : 4096;
		struct pair *np = realloc(tr->pairs, cap * sizeof *np);
		if (!np)
			return NONE;
		tr->pairs = np;
		tr->pcap = cap;
	}
	if (tr->nfresh == tr->fcap) {
		size_t cap = tr->fcap ? 2 * tr->fcap : 1024;
		uint32_t *f = realloc(tr->fresh, cap * sizeof *f);
		if (!f)
			return NONE;
		tr->fresh = f;
		tr->fcap = cap;
	}
	p = &tr->pairs[tr->npairs];
	memset(p, 0, sizeof *p);
	p->a = a;
	p->b = b;
	tr->pkey[j] = key;
	tr->pid[j] = (uint32_t)tr->npairs;
	tr->fresh[tr->nfresh++] = (uint32_t)tr->npairs;
	tr->npairs++;
	if ((tr->npairs + 1) * 2 > tr->pmask + 1 && pindex_grow(tr) < 0)
		return NONE;
	return (uint32_t)(tr->npairs - 1);
}

/* Adds w to the count of (a, b) and notes that it occurs at position pos. */
static void pair_inc(struct train *tr, uint32_t a, uint32_t b, uint32_t pos, uint64_t w)
{
	uint32_t id = pair_get(tr, a, b);
	struct pair *p;
	if (id == NONE) {
		tr->oom = 1;
		return;
	}
	p = &tr->pairs[id];
	p->count += w;
	if (p->n == p->cap) {
		uint32_t cap = p->cap ? 2 * p->cap : 4;
		uint32_t *np =
		    p->cap >= NONE / 2 ? NULL : realloc(p->pos, (size_t)cap * sizeof *np);
		if (!np) {
			tr->oom = 1;
			return;
		}
		p->pos = np;
		p->cap = cap;
	}
	p->pos[p->n++] = pos;
}

static void pair_dec(struct train *tr, uint32_t a, uint32_t b, uint64_t w)
{
	uint32_t id = pair_find(tr, a, b);
	/* The pair exists and holds at least w: it was counted where it is now. */
	if (id != NONE)
		tr->pairs[id].count -= w;
}

/* Token order for ties: bytes compared as unsigned, a prefix first. */
static int tok_cmp(const struct qn_bpet *t, uint32_t x, uint32_t y)
{
	size_t lx = t->tlen[x], ly = t->tlen[y];
	int c;
	if (x == y)
		return 0;
	c = memcmp(t->tokbytes.data + t->toff[x], t->tokbytes.data + t->toff[y], lx < ly ? lx : ly);
	return c ? c : (lx < ly ? -1 : 1);
}

/* 1 when heap entry x is to be merged before y. */
static int hbefore(const struct train *tr, const struct hent *x, const struct hent *y)
{
	const struct pair *p, *q;
	int c;
	if (x->count != y->count)
		return x->count > y->count;
	p = &tr->pairs[x->pair];
	q = &tr->pairs[y->pair];
	c = tok_cmp(tr->t, p->a, q->a);
	if (!c)
		c = tok_cmp(tr->t, p->b, q->b);
	return c < 0;
}

static int heap_push(struct train *tr, u128 count, uint32_t pair)
{
	size_t i;
	struct hent h = {count, pair};
	if (tr->nheap == tr->hcap) {
		size_t cap = tr->hcap ? 2 * tr->hcap : 4096;
		struct hent *nh = realloc(tr->heap, cap * sizeof *nh);
		if (!nh)
			return -1;
		tr->heap = nh;
		tr->hcap = cap;
	}
	for (i = tr->nheap++; i > 0; i = (i - 1) / 2) {
		struct hent *up = &tr->heap[(i - 1) / 2];
		if (!hbefore(tr, &h, up))
			break;
		tr->heap[i] = *up;
	}
	tr->heap[i] = h;
	return 0;
}

static struct hent heap_pop(struct train *tr)
{
	struct hent top = tr->heap[0], last = tr->heap[--tr->nheap];
	size_t i = 0, n = tr->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && hbefore(tr, &tr->heap[c + 1], &tr->heap[c]))
			c++;
		if (!hbefore(tr, &tr->heap[c], &last))
			break;
		tr->heap[i] = tr->heap[c];
		i = c;
	}
	if (n)
		tr->heap[i] = last;
	return top;
}

static void train_release(struct train *tr)
{
	size_t i;
	free(tr->sym);
	free(tr->nxt);
	free(tr->prv);
	free(tr->wid);
	free(tr->wcount);
	for (i = 0; i < tr->npairs; i++)
		free(tr->pairs[i].pos);
	free(tr->pairs);
	free(tr->pkey);
	free(tr->pid);
	free(tr->heap);
	free(tr->fresh);
}

static int add_token(struct qn_bpet *t, const unsigned char *bytes, size_t n, uint32_t l,
		     uint32_t r, uint64_t count)
{
	if (t->ntok == t->tcap) {
		size_t cap = t->tcap ? 2 * t->tcap : 1024;
		size_t *off = realloc(t->toff, cap * sizeof *off);
		if (off)
			t->toff = off;
		uint32_t *len = realloc(t->tlen, cap * sizeof *len);
		if (len)
			t->tlen = len;
		uint32_t *lt = realloc(t->left, cap * sizeof *lt);
		if (lt)
			t->left = lt;
		uint32_t *rt = realloc(t->right, cap * sizeof *rt);
		if (rt)
			t->right = rt;
		uint64_t *mc = realloc(t->mcount, cap * sizeof *mc);
		if (mc)
			t->mcount = mc;
		if (!off || !len || !lt || !rt || !mc)
			return -1;
		t->tcap = cap;
	}
	t->toff[t->ntok] = t->tokbytes.len;
	t->tlen[t->ntok] = (uint32_t)n;
	t->left[t->ntok] = l;
	t->right[t->ntok] = r;
	t->mcount[t->ntok] = count;
	t->ntok++;
	return qn_buf_add(&t->tokbytes, bytes, n);
}

/* Sums the workers' maps into the largest one; returns it. */
static struct cmap *merge_maps(struct qn_bpet *t, struct qn_err *e)
{
	int i, big = 0;
	struct cmap *dst;
	for (i = 1; i < t->ncnt; i++)
		if (t->cnt[i].map.n > t->cnt[big].map.n)
			big = i;
	dst = &t->cnt[big].map;
	for (i = 0; i < t->ncnt; i++) {
		struct cmap *m = &t->cnt[i].map;
		size_t j;
		t->st.pretokens = sat_add(t->st.pretokens, t->cnt[i].pretokens);
		if (i == big)
			continue;
		for (j = 0; j <= m->mask; j++) {
			struct cent *c = &m->tab[j];
			int rc;
			if (!c->key)
				continue;
			rc = cmap_add(dst, c->key, c->len, c->h, c->count);
			if (rc == -2) {
				qn_errf(e, "more than %zu bytes of distinct pre-tokens",
					t->max_bytes);
				return NULL;
			}
			if (rc < 0) {
				qn_errf(e, "out of memory merging counts");
				return NULL;
			}
		}
		cmap_release(m);
		if (t->progress)
			t->progress(t->progress_ctx, QN_BPET_PHASE_MERGE_COUNTS, i + 1, t->ncnt);
	}
	return dst;
}

/* Lays out every distinct pre-token of 2+ bytes as a list of byte symbols. */
static int layout(struct train *tr, const struct cmap *m, struct qn_err *e)
{
	size_t j, n = 0, nw = 0, p = 0, w = 0;

	for (j = 0; j <= m->mask; j++)
		if (m->tab[j].key && m->tab[j].len >= 2) {
			n += m->tab[j].len;
			nw++;
		}
	tr->t->st.distinct = m->n;
	tr->t->st.distinct_bytes = m->bytes;
	tr->npos = n;
	tr->sym = malloc((n ? n : 1) * sizeof *tr->sym);
	tr->nxt = malloc((n ? n : 1) * sizeof *tr->nxt);
	tr->prv = malloc((n ? n : 1) * sizeof *tr->prv);
	tr->wid = malloc((n ? n : 1) * sizeof *tr->wid);
	tr->wcount = malloc((nw ? nw : 1) * sizeof *tr->wcount);
	if (!tr->sym || !tr->nxt || !tr->prv || !tr->wid || !tr->wcount)
		return qn_errf(e, "out of memory indexing %zu bytes of pre-tokens", n);
	for (j = 0; j <= m->mask; j++) {
		const struct cent *c = &m->tab[j];
		size_t k;
		if (!c->key || c->len < 2)
			continue;
		tr->wcount[w] = c->count;
		for (k = 0; k < c->len; k++, p++) {
			tr->sym[p] = c->key[k];
			tr->wid[p] = (uint32_t)w;
			tr->prv[p] = k ? (uint32_t)(p - 1) : NONE;
			tr->nxt[p] = k + 1 < c->len ? (uint32_t)(p + 1) : NONE;
		}
		w++;
	}
	return 0;
}

/* Counts every adjacent pair and fills the heap. */
static int index_pairs(struct train *tr, struct qn_err *e)
{
	size_t p, step = ((size_t)1 << 20) - 1;

	if (pindex_grow(tr) < 0)
		return qn_errf(e, "out of memory");
	for (p = 0; p < tr->npos; p++) {
		if (tr->nxt[p] != NONE)
			pair_inc(tr, tr->sym[p], tr->sym[p + 1], (uint32_t)p,
				 tr->wcount[tr->wid[p]]);
		if (tr->oom)
			return qn_errf(e, "out of memory counting pairs");
		if (tr->t->progress && !(p & step))
			tr->t->progress(tr->t->progress_ctx, QN_BPET_PHASE_INDEX, p, tr->npos);
	}
	tr->nfresh = 0;
	for (p = 0; p < tr->npairs; p++)
		if (heap_push(tr, tr->pairs[p].count, (uint32_t)p) < 0)
			return qn_errf(e, "out of memory");
	return 0;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return (a > b) - (a < b);
}

/*
 * Merges every occurrence of pair `id` into token `nt`, left to right
 * within each pre-token, and moves the counts of the neighbouring pairs:
 * for an occurrence x a b y, (x a) and (b y) lose the pre-token's count,
 * (x nt) and (nt y) gain it. When the previous occurrence was just merged,
 * x is already nt and (nt a) cancels what that merge added.
 */
static void apply_merge(struct train *tr, uint32_t id, uint32_t nt)
{
	uint32_t a = tr->pairs[id].a, b = tr->pairs[id].b;
	uint32_t *pos = tr->pairs[id].pos, n = tr->pairs[id].n, i;

	tr->pairs[id].pos = NULL;
	tr->pairs[id].n = tr->pairs[id].cap = 0;
	tr->pairs[id].merged = 1;
	if (a == b) /* overlapping runs (a a a) pair up from the left */
		qsort(pos, n, sizeof *pos, cmp_u32);
	for (i = 0; i < n; i++) {
		uint32_t p = pos[i], q, o, r;
		uint64_t w;
		if (tr->sym[p] != a || (q = tr->nxt[p]) == NONE || tr->sym[q] != b)
			continue; /* stale: the pair moved on */
		w = tr->wcount[tr->wid[p]];
		o = tr->prv[p];
		r = tr->nxt[q];
		if (o != NONE) {
			pair_dec(tr, tr->sym[o], a, w);
			pair_inc(tr, tr->sym[o], nt, o, w);
		}
		if (r != NONE) {
			pair_dec(tr, b, tr->sym[r], w);
			pair_inc(tr, nt, tr->sym[r], p, w);
			tr->prv[r] = p;
		}
		tr->sym[p] = nt;
		tr->nxt[p] = r;
		tr->sym[q] = DEAD;
		tr->nxt[q] = tr->prv[q] = NONE;
	}
	free(pos);
	tr->pairs[id].count = 0;
}

static const char *u128_str(u128 v, char buf[48])
{
	char *p = buf + 47;
	*p = 0;
	do
		*--p = (char)('0' + (int)(v % 10));
	while ((v /= 10));
	return p;
}

/* The check mode: every pair's count and position list against a recount. */
static int verify(struct train *tr, size_t merge, struct qn_err *e)
{
	size_t i, p;
	u128 *want = calloc(tr->npairs ? tr->npairs : 1, sizeof *want);
	unsigned char *seen = calloc(tr->npos ? tr->npos : 1, 1);
	int rc = 0;

	if (!want || !seen) {
		free(want);
		free(seen);
		return qn_errf(e, "out of memory in the check");
	}
	/* Where each pair's list says it is, and is right. */
	for (i = 0; i < tr->npairs; i++) {
		const struct pair *pr = &tr->pairs[i];
		uint32_t k;
		for (k = 0; k < pr->n; k++) {
			uint32_t q = pr->pos[k];
			if (tr->sym[q] == pr->a && tr->nxt[q] != NONE &&
			    tr->sym[tr->nxt[q]] == pr->b)
				seen[q] = 1;
		}
	}
	for (p = 0; p < tr->npos && !rc; p++) {
		uint32_t q = tr->nxt[p], id;
		if (tr->sym[p] == DEAD || q == NONE)
			continue;
		id = pair_find(tr, tr->sym[p], tr->sym[q]);
		if (id == NONE || tr->pairs[id].merged)
			rc = qn_errf(e, "check after merge %zu: pair (%u %u) at %zu is not indexed",
				     merge, tr->sym[p], tr->sym[q], p);
		else if (!seen[p])
			rc = qn_errf(
			    e, "check after merge %zu: position %zu missing from pair (%u %u)",
			    merge, p, tr->sym[p], tr->sym[q]);
		else
			want[id] += tr->wcount[tr->wid[p]];
	}
	for (i = 0; i < tr->npairs && !rc; i++)
		if (tr->pairs[i].count != want[i]) {
			char x[48], y[48];
			rc =
			    qn_errf(e, "check after merge %zu: pair (%u %u) counted %s, recount %s",
				    merge, tr->pairs[i].a, tr->pairs[i].b,
				    u128_str(tr->pairs[i].count, x), u128_str(want[i], y));
		}
	free(want);
	free(seen);
	return rc;
}

static int learn(struct qn_bpet *t, struct train *tr, struct qn_err *e)
{
	size_t target = t->vocab_size - t->nspecials, every = (target - 256) / 200 + 1;
	unsigned char *buf = NULL;
	size_t bcap = 0;

	while (t->ntok < target) {
		struct hent h;
		struct pair *p;
		uint32_t nt = (uint32_t)t->ntok, la, lb;
		size_t k;

		if (!tr->nheap) {
			t->st.stopped_early = 1;
			break;
		}
		h = heap_pop(tr);
		p = &tr->pairs[h.pair];
		if (p->merged || !p->count)
			continue;
		if (p->count != h.count) { /* stale: back in with what it has now */
			if (heap_push(tr, p->count, h.pair) < 0)
				goto nomem;
			continue;
		}
		if (p->count < t->min_frequency) {
			t->st.stopped_early = 1;
			break;
		}
		la = t->tlen[p->a];
		lb = t->tlen[p->b];
		if ((size_t)la + lb > bcap) {
			unsigned char *nb = realloc(buf, bcap = 2 * ((size_t)la + lb));
			if (!nb)
				goto nomem;
			buf = nb;
		}
		memcpy(buf, t->tokbytes.data + t->toff[p->a], la);
		memcpy(buf + la, t->tokbytes.data + t->toff[p->b], lb);
		if (add_token(t, buf, (size_t)la + lb, p->a, p->b,
			      p->count > UINT64_MAX ? UINT64_MAX : (uint64_t)p->count) < 0)
			goto nomem;
		tr->nfresh = 0;
		apply_merge(tr, h.pair, nt);
		if (tr->oom)
			goto nomem;
		for (k = 0; k < tr->nfresh; k++) {
			uint32_t f = tr->fresh[k];
			if (tr->pairs[f].count && heap_push(tr, tr->pairs[f].count, f) < 0)
				goto nomem;
		}
		t->st.merges++;
		if (t->check && verify(tr, t->st.merges, e) < 0) {
			free(buf);
			return -1;
		}
		if (t->progress && t->st.merges % every == 0 && t->ntok < target)
			t->progress(t->progress_ctx, QN_BPET_PHASE_MERGES, t->st.merges,
				    target - 256);
	}
	if (t->progress)
		t->progress(t->progress_ctx, QN_BPET_PHASE_MERGES, t->st.merges, target - 256);
	free(buf);
	return 0;
nomem:
	free(buf);
	return qn_errf(e, "out of memory after %llu merges", (unsigned long long)t->st.merges);
}

int qn_bpet_train(struct qn_bpet *t, struct qn_err *e)
{
	struct train tr;
	struct cmap *m;
	int i, rc;

	if (t->trained)
		return qn_errf(e, "already trained");
	if (t->broken)
		return qn_errf(e, "the trainer failed before");
	if (t->threads > 1) {
		if (submit(t, e) < 0 || stop_workers(t) < 0) {
			t->broken = 1;
			return error_out(t, e);
		}
	}
	t->trained = 1;
	for (i = 0; i < 256; i++) {
		unsigned char c = (unsigned char)i;
		if (add_token(t, &c, 1, NONE, NONE, 0) < 0)
			return qn_errf(e, "out of memory");
	}
	if (!(m = merge_maps(t, e))) {
		t->broken = 1;
		return -1;
	}
	memset(&tr, 0, sizeof tr);
	tr.t = t;
	rc = layout(&tr, m, e);
	for (i = 0; i < t->ncnt; i++) /* the counts live on in tr.wcount */
		cmap_release(&t->cnt[i].map);
	if (!rc)
		rc = index_pairs(&tr, e);
	if (!rc && t->check)
		rc = verify(&tr, 0, e);
	if (!rc)
		rc = learn(t, &tr, e);
	t->st.pairs = tr.npairs;
	train_release(&tr);
	if (rc < 0)
		t->broken = 1;
	return rc;
}

size_t qn_bpet_ntokens(const struct qn_bpet *t)
{
	return t->ntok;
}

const unsigned char *qn_bpet_token(const struct qn_bpet *t, size_t rank, size_t *len)
{
	if (rank >= t->ntok)
		return NULL;
	*len = t->tlen[rank];
	return (const unsigned char *)t->tokbytes.data + t->toff[rank];
}

int qn_bpet_merge(const struct qn_bpet *t, size_t rank, uint32_t *left, uint32_t *right,
		  uint64_t *count)
{
	if (rank < 256 || rank >= t->ntok)
		return -1;
	if (left)
		*left = t->left[rank];
	if (right)
		*right = t->right[rank];
	if (count)
		*count = t->mcount[rank];
	return 0;
}

size_t qn_bpet_nspecials(const struct qn_bpet *t)
{
	return t->nspecials;
}

const char *qn_bpet_special(const struct qn_bpet *t, size_t i)
{
	return i < t->nspecials ? t->specials[i] : NULL;
}

const char *qn_bpet_pattern(const struct qn_bpet *t)
{
	return t->pattern;
}

const char *qn_bpet_pattern_name(const struct qn_bpet *t)
{
	return t->pattern_name;
}

void qn_bpet_get_stats(const struct qn_bpet *t, struct qn_bpet_stats *s)
{
	*s = t->st;
	if (!t->trained) { /* pre-tokens so far, from the caller's counter only */
		s->pretokens = t->cnt ? t->cnt[0].pretokens : 0;
	}
}

/* ---- writers ------------------------------------------------------------ */

static int not_trained(const struct qn_bpet *t)
{
	return !t->trained || t->broken;
}

int qn_bpet_tiktoken_buf(const struct qn_bpet *t, struct qn_buf *out)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t r;
	if (not_trained(t))
		return -1;
	for (r = 0; r < t->ntok; r++) {
		const unsigned char *s = (const unsigned char *)t->tokbytes.data + t->toff[r];
		size_t n = t->tlen[r], i;
		char q[4];
		for (i = 0; i + 3 <= n; i += 3) {
			uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
			q[0] = b64[v >> 18];
			q[1] = b64[(v >> 12) & 63];
			q[2] = b64[(v >> 6) & 63];
			q[3] = b64[v & 63];
			if (qn_buf_add(out, q, 4) < 0)
				return -1;
		}
		if (i < n) {
			uint32_t v =
			    (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
			q[0] = b64[v >> 18];
			q[1] = b64[(v >> 12) & 63];
			q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
			q[3] = '=';
			if (qn_buf_add(out, q, 4) < 0)
				return -1;
		}
		if (qn_buf_printf(out, " %zu\n", r) < 0)
			return -1;
	}
	return 0;
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100... */
static void byte_map(uint32_t map[256])
{
	int b, n = 0;
	for (b = 0; b < 256; b++) {
		if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
			map[b] = (uint32_t)b;
		else
			map[b] = 256 + (uint32_t)n++;
	}
}

/* Appends the token's bytes as byte-level characters (raw UTF-8). */
static int mapped(const struct qn_bpet *t, const uint32_t map[256], size_t r, struct qn_buf *dst)
{
	const unsigned char *s = (const unsigned char *)t->tokbytes.data + t->toff[r];
	size_t i;
	for (i = 0; i < t->tlen[r]; i++) {
		char u[4];
		if (qn_buf_add(dst, u, qn_utf8_encode(map[s[i]], u)) < 0)
			return -1;
	}
	return 0;
}

int qn_bpet_hf_json_buf(const struct qn_bpet *t, struct qn_buf *out)
{
	uint32_t map[256];
	struct qn_buf tmp;
	const char *re;
	size_t r, k;
	int rc = -1;

	if (not_trained(t))
		return -1;
	byte_map(map);
	qn_buf_init(&tmp, QN_BUF_UNLIMITED);
	re = t->pattern;
	if (qn_buf_adds(
		out, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
		     "  \"added_tokens\": [") < 0)
		goto out;
	for (k = 0; k < t->nspecials; k++) {
		if (qn_buf_printf(out, "%s\n    {\"id\": %zu, \"content\": ", k ? "," : "",
				  t->ntok + k) < 0 ||
		    qn_json_str(out, t->specials[k], t->special_len[k]) < 0 ||
		    qn_buf_adds(out,
				", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
				"\"normalized\": false, \"special\": true}") < 0)
			goto out;
	}
	if (qn_buf_adds(out, t->nspecials ? "\n  ],\n" : "],\n") < 0 ||
	    qn_buf_adds(
		out,
		"  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", "
		"\"pretokenizers\": [\n    {\"type\": \"Split\", \"pattern\": {\"Regex\": ") < 0 ||
	    qn_json_str(out, re, strlen(re)) < 0 ||
	    qn_buf_adds(
		out,
		"}, \"behavior\": \"Isolated\", \"invert\": false},\n"
		"    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
		"true, "
		"\"use_regex\": false}\n  ]},\n  \"post_processor\": null,\n"
		"  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
		"\"trim_offsets\": true, \"use_regex\": true},\n"
		"  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n"
		"    \"unk_token\": null,\n    \"continuing_subword_prefix\": null,\n"
		"    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
		"    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {") <
		0)
		goto out;
	for (r = 0; r < t->ntok; r++) {
		qn_buf_reset(&tmp);
		if (qn_buf_adds(out, r ? ",\n      " : "\n      ") < 0 ||
		    mapped(t, map, r, &tmp) < 0 || qn_json_str(out, tmp.data, tmp.len) < 0 ||
		    qn_buf_printf(out, ": %zu", r) < 0)
			goto out;
	}
	if (qn_buf_adds(out, "\n    },\n    \"merges\": [") < 0)
		goto out;
	/* "left right": byte-level strings never hold a space (it maps to U+0120). */
	for (r = 256; r < t->ntok; r++) {
		qn_buf_reset(&tmp);
		if (qn_buf_adds(out, r > 256 ? ",\n      " : "\n      ") < 0 ||
		    mapped(t, map, t->left[r], &tmp) < 0 || qn_buf_addc(&tmp, ' ') < 0 ||
		    mapped(t, map, t->right[r], &tmp) < 0 ||
		    qn_json_str(out, tmp.data, tmp.len) < 0)
			goto out;
	}
	if (qn_buf_adds(out, t->ntok > 256 ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n") < 0)
		goto out;
	rc = 0;
out:
	qn_buf_release(&tmp);
	return rc;
}

int qn_bpet_config_buf(const struct qn_bpet *t, struct qn_buf *out)
{
	size_t k;
	if (not_trained(t))
		return -1;
	if (qn_buf_adds(
		out, "{\n  \"format\": \"quern-bpe\",\n  \"version\": 1,\n  \"pattern_name\": ") <
		0 ||
	    (t->pattern_name ? qn_json_str(out, t->pattern_name, strlen(t->pattern_name))
			     : qn_buf_adds(out, "null")) < 0 ||
	    qn_buf_adds(out, ",\n  \"pattern\": ") < 0 ||
	    qn_json_str(out, t->pattern, strlen(t->pattern)) < 0 ||
	    qn_buf_printf(out,
			  ",\n  \"n_tokens\": %zu,\n  \"n_vocab\": %zu,\n  \"special_tokens\": {",
			  t->ntok, t->ntok + t->nspecials) < 0)
		return -1;
	for (k = 0; k < t->nspecials; k++)
		if (qn_buf_adds(out, k ? ", " : "") < 0 ||
		    qn_json_str(out, t->specials[k], t->special_len[k]) < 0 ||
		    qn_buf_printf(out, ": %zu", t->ntok + k) < 0)
			return -1;
	return qn_buf_printf(
	    out,
	    "},\n  \"training\": {\"vocab_size\": %zu, \"min_frequency\": %llu, "
	    "\"merges\": %llu, \"stopped_early\": %s, \"texts\": %llu, \"bytes\": %llu, "
	    "\"pretokens\": %llu, \"distinct_pretokens\": %llu}\n}\n",
	    t->vocab_size, (unsigned long long)t->min_frequency, (unsigned long long)t->st.merges,
	    t->st.stopped_early ? "true" : "false", (unsigned long long)t->st.texts,
	    (unsigned long long)t->st.bytes, (unsigned long long)t->st.pretokens,
	    (unsigned long long)t->st.distinct);
}

static int write_with(const struct qn_bpet *t, const char *path, const char *what,
		      int (*fill)(const struct qn_bpet *, struct qn_buf *), struct qn_err *e)
{
	struct qn_buf b;
	int rc;
	if (not_trained(t))
		return qn_errf(e, "cannot write '%s': the tokenizer is not trained", path);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	if (fill(t, &b) < 0) {
		qn_buf_release(&b);
		return qn_errf(e, "out of memory writing the %s", what);
	}
	rc = qn_write_file_atomic(path, b.data, b.len, e);
	qn_buf_release(&b);
	return rc;
}

int qn_bpet_write_tiktoken(const struct qn_bpet *t, const char *path, struct qn_err *e)
{
	return write_with(t, path, "rank file", qn_bpet_tiktoken_buf, e);
}

int qn_bpet_write_hf_json(const struct qn_bpet *t, const char *path, struct qn_err *e)
{
	return write_with(t, path, "tokenizer.json", qn_bpet_hf_json_buf, e);
}

int qn_bpet_write_config(const struct qn_bpet *t, const char *path, struct qn_err *e)
{
	return write_with(t, path, "config", qn_bpet_config_buf, e);
}
