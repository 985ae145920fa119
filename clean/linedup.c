/* linedup.c - see linedup.h. */
#include "linedup.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "buf.h"

static const struct cn_linedup_opts default_opts = {.min_chars = 0, .max_docs = 1, .seed = 0};

void cn_linedup_opts_init(struct cn_linedup_opts *o)
{
	*o = default_opts;
}

/* ---- the key ---- */

/* Bytes of the whitespace code point that starts s (Python's isspace), or 0. */
static size_t lead_space(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
	if (c == 0xc2)
		return n >= 2 && (s[1] == 0x85 || s[1] == 0xa0) ? 2 : 0;
	if (n < 3)
		return 0;
	if (c == 0xe1)
		return s[1] == 0x9a && s[2] == 0x80 ? 3 : 0; /* U+1680 */
	if (c == 0xe2) {
		if (s[1] == 0x80) /* U+2000..U+200A, U+2028, U+2029, U+202F */
			return s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf ? 3 : 0;
		return s[1] == 0x81 && s[2] == 0x9f ? 3 : 0; /* U+205F */
	}
	if (c == 0xe3)
		return s[1] == 0x80 && s[2] == 0x80 ? 3 : 0; /* U+3000 */
	return 0;
}

/* Bytes of the whitespace code point that ends s, or 0. Lead bytes never
 * occur as continuation bytes, so matching the last 1, 2 or 3 is exact. */
static size_t trail_space(const unsigned char *s, size_t n)
{
	if (s[n - 1] < 0x80)
		return lead_space(s + n - 1, 1);
	if (n >= 2 && s[n - 2] == 0xc2)
		return lead_space(s + n - 2, 2);
	if (n >= 3 && lead_space(s + n - 3, 3) == 3)
		return 3;
	return 0;
}

static inline unsigned char fold_ascii(unsigned c)
{
	if (c - 'A' < 26u)
		return (unsigned char)(c + 32);
	return c - '0' < 10u ? '0' : (unsigned char)c;
}

#define ONES 0x0101010101010101ull
#define HIGH 0x8080808080808080ull

/* fold_ascii on 8 ASCII bytes at once: a byte's high bit after adding
 * 0x80 - lo is set when it is >= lo, after adding 0x7f - hi when > hi. */
static inline uint64_t fold_ascii8(uint64_t x)
{
	uint64_t upper = (x + ONES * (0x80 - 'A')) & ~(x + ONES * (0x7f - 'Z')) & HIGH;
	uint64_t digit = (x + ONES * (0x80 - '0')) & ~(x + ONES * (0x7f - '9')) & HIGH;

	return (x | upper >> 2) & ~((digit >> 7) * 0x0f);
}

/*
 * Keys are built in chunks of KEY_CHUNK bytes: a key that fits in one is
 * hashed in one call; a longer one is streamed (xxh3 gives the same value
 * either way), so no line needs a buffer of its own size.
 */
#define KEY_CHUNK 480

static uint64_t key_hash(const unsigned char *s, size_t n, uint64_t seed, size_t *chars,
			 XXH3_state_t *st)
{
	unsigned char buf[KEY_CHUNK + 8];
	size_t i = 0, k = 0, cps = 0;
	int streaming = 0;

	while (i < n) {
		unsigned c = s[i];
		uint64_t x;
		if (n - i >= 8 && (memcpy(&x, s + i, 8), !(x & HIGH))) {
			x = fold_ascii8(x);
			memcpy(buf + k, &x, 8);
			k += 8;
			i += 8;
			cps += 8;
		} else if (c < 0x80) {
			buf[k++] = fold_ascii(c);
			i++;
			cps++;
		} else {
			utf8proc_int32_t cp;
			utf8proc_ssize_t l =
			    utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
			if (l <= 0) {
				buf[k++] = (unsigned char)c; /* invalid byte: as it is */
				i++;
			} else {
				const utf8proc_property_t *pr = utf8proc_get_property(cp);
				if (pr->category == UTF8PROC_CATEGORY_ND) {
					buf[k++] = '0';
				} else if (pr->lowercase_seqindex == UINT16_MAX) {
					memcpy(buf + k, s + i, (size_t)l); /* no lowercase */
					k += (size_t)l;
				} else {
					k += (size_t)utf8proc_encode_char(utf8proc_tolower(cp),
									  buf + k);
				}
				i += (size_t)l;
			}
			cps++;
		}
		if (k >= KEY_CHUNK) {
			if (!streaming) {
				/* reset_withSeed reuses the secret when st->seed
				 * already equals seed: a stack state must say 0 */
				XXH3_INITSTATE(st);
				XXH3_64bits_reset_withSeed(st, seed);
				streaming = 1;
			}
			XXH3_64bits_update(st, buf, k);
			k = 0;
		}
	}
	*chars = cps;
	if (!streaming)
		return XXH3_64bits_withSeed(buf, k, seed);
	XXH3_64bits_update(st, buf, k);
	return XXH3_64bits_digest(st);
}

/* 1 and *h when the line counts; st is scratch for long keys. */
static int line_hash(const struct cn_linedup_opts *o, const char *line, size_t n, uint64_t *h,
		     XXH3_state_t *st)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t w, chars;

	while (n && (w = lead_space(s, n))) {
		s += w;
		n -= w;
	}
	while (n && (w = trail_space(s, n)))
		n -= w;
	if (!n || n < o->min_chars) /* a code point takes at least a byte */
		return 0;
	*h = key_hash(s, n, o->seed, &chars, st);
	return chars >= o->min_chars;
}

int cn_linedup_line_hash(const struct cn_linedup_opts *o, const char *line, size_t len, uint64_t *h)
{
	XXH3_state_t st;

	return line_hash(o ? o : &default_opts, line, len, h, &st);
}

/* ---- sorting a document's hashes: introsort ---- */

static void insertion_u64(uint64_t *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t x = a[i];
		size_t j = i;
		for (; j && a[j - 1] > x; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

static void sift_u64(uint64_t *a, size_t i, size_t n)
{
	uint64_t x = a[i];

	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[c] <= x)
			break;
		a[i] = a[c];
	}
	a[i] = x;
}

static void heapsort_u64(uint64_t *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_u64(a, i, n);
	for (size_t i = n; i-- > 1;) {
		uint64_t x = a[0];
		a[0] = a[i];
		a[i] = x;
		sift_u64(a, 0, i);
	}
}

static void swap_u64(uint64_t *a, size_t i, size_t j)
{
	uint64_t x = a[i];
	a[i] = a[j];
	a[j] = x;
}

/* Hoare partition around the median of three, which is moved to the middle
 * first: both parts are then non-empty. */
static void sort_u64(uint64_t *a, size_t n, int depth)
{
	while (n > 16) {
		size_t mid = n / 2, i = (size_t)-1, j = n;
		uint64_t pivot;

		if (depth-- <= 0) {
			heapsort_u64(a, n);
			return;
		}
		if (a[mid] < a[0])
			swap_u64(a, mid, 0);
		if (a[n - 1] < a[mid])
			swap_u64(a, n - 1, mid);
		if (a[mid] < a[0])
			swap_u64(a, mid, 0);
		pivot = a[mid];
		for (;;) {
			do
				i++;
			while (a[i] < pivot);
			do
				j--;
			while (a[j] > pivot);
			if (i >= j)
				break;
			swap_u64(a, i, j);
		}
		/* [0, j] <= pivot <= [j + 1, n): recurse on the smaller part */
		if (j + 1 < n - j - 1) {
			sort_u64(a, j + 1, depth);
			a += j + 1;
			n -= j + 1;
		} else {
			sort_u64(a + j + 1, n - j - 1, depth);
			n = j + 1;
		}
	}
	insertion_u64(a, n);
}

int cn_linedup_hashes(const struct cn_linedup_opts *o, const char *text, size_t len, uint64_t **out,
		      size_t *n)
{
	const char *p = text, *end = len ? text + len : text;
	uint64_t *h = NULL, x;
	size_t cnt = 0, cap = 0, u;
	XXH3_state_t st;
	int depth = 0;

	*out = NULL;
	*n = 0;
	if (!o)
		o = &default_opts;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		if (line_hash(o, p, (size_t)(stop - p), &x, &st)) {
			if (cnt == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				uint64_t *g = realloc(h, ncap * sizeof *h);
				if (!g) {
					free(h);
					return -1;
				}
				h = g;
				cap = ncap;
			}
			h[cnt++] = x;
		}
		p = nl ? nl + 1 : end;
	}
	for (size_t m = cnt; m > 1; m >>= 1)
		depth += 2;
	sort_u64(h, cnt, depth);
	u = 0;
	for (size_t i = 0; i < cnt; i++)
		if (!u || h[i] != h[u - 1])
			h[u++] = h[i];
	*out = h;
	*n = u;
	return 0;
}

/* ---- the count table ---- */

/* An empty slot has count 0: every entry counts at least 1. */
struct lc_slot {
	uint32_t lo, hi, count;
};

struct cn_linecount {
	struct lc_slot *slot;
	size_t mask;	    /* slots - 1, slots a power of two */
	size_t used;	    /* entries */
	size_t grow_at;	    /* 3/4 of the slots */
	size_t max_entries; /* 0: no cap */
	size_t max_slots;   /* the slots the cap allows, or 0 */
	uint64_t evicted, undercount;
};

#define LC_MIN_SLOTS 16
#define LC_AHEAD 8 /* prefetch distance, in hashes */
#define LC_INITIAL_SLOTS 1024

static inline size_t lc_home(const struct cn_linecount *t, uint64_t h)
{
	return (size_t)(h ^ (h >> 32)) & t->mask;
}

/* A table bigger than the cache costs a miss a lookup: callers with a
 * batch of hashes ask for the slots a few hashes ahead. */
static inline void lc_prefetch(const struct cn_linecount *t, uint64_t h)
{
	__builtin_prefetch(&t->slot[lc_home(t, h)]);
}

static size_t lc_find(const struct cn_linecount *t, uint64_t h)
{
	uint32_t lo = (uint32_t)h, hi = (uint32_t)(h >> 32);
	size_t i = lc_home(t, h);

	for (;;) {
		const struct lc_slot *s = &t->slot[i];
		if (!s->count || (s->lo == lo && s->hi == hi))
			return i;
		i = (i + 1) & t->mask;
	}
}

static uint64_t lc_key(const struct lc_slot *s)
{
	return (uint64_t)s->hi << 32 | s->lo;
}

static int lc_alloc(struct cn_linecount *t, size_t slots)
{
	if (slots > (size_t)-1 / sizeof(struct lc_slot))
		return -1;
	t->slot = calloc(slots, sizeof(struct lc_slot));
	if (!t->slot)
		return -1;
	t->mask = slots - 1;
	t->grow_at = slots - slots / 4;
	return 0;
}

struct cn_linecount *cn_linecount_new(size_t max_entries)
{
	struct cn_linecount *t = calloc(1, sizeof *t);
	size_t slots = LC_INITIAL_SLOTS;

	if (!t)
		return NULL;
	if (max_entries) {
		size_t s = LC_MIN_SLOTS;
		while (s - s / 4 < max_entries) {
			if (s > (size_t)-1 / 2 / sizeof(struct lc_slot)) {
				free(t);
				return NULL;
			}
			s *= 2;
		}
		t->max_entries = max_entries;
		t->max_slots = s;
		if (slots > s)
			slots = s;
	}
	if (lc_alloc(t, slots) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

void cn_linecount_free(struct cn_linecount *t)
{
	if (!t)
		return;
	free(t->slot);
	free(t);
}

static int lc_grow(struct cn_linecount *t)
{
	struct lc_slot *old = t->slot;
	size_t n = t->mask + 1;

	if (n > (size_t)-1 / 2 || lc_alloc(t, n * 2) < 0) {
		t->slot = old;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (i + LC_AHEAD < n && old[i + LC_AHEAD].count)
			lc_prefetch(t, lc_key(&old[i + LC_AHEAD]));
		if (old[i].count)
			t->slot[lc_find(t, lc_key(&old[i]))] = old[i];
	}
	free(old);
	return 0;
}

/* Entries with count <= c. */
static size_t lc_at_most(const struct cn_linecount *t, uint32_t c)
{
	size_t k = 0;

	for (size_t i = 0; i <= t->mask; i++)
		k += t->slot[i].count && t->slot[i].count <= c;
	return k;
}

/* The smallest T that evicts at least half the entries. */
static uint32_t lc_threshold(const struct cn_linecount *t)
{
	size_t want = (t->used + 1) / 2, hist[257] = {0}, k = 0;
	uint32_t lo = 256, hi = UINT32_MAX;

	for (size_t i = 0; i <= t->mask; i++)
		if (t->slot[i].count)
			hist[t->slot[i].count < 256 ? t->slot[i].count : 256]++;
	for (uint32_t c = 1; c < 256; c++)
		if ((k += hist[c]) >= want)
			return c;
	while (lo < hi) { /* rare: half the entries counted 256 or more */
		uint32_t mid = lo + (hi - lo) / 2;
		if (lc_at_most(t, mid) >= want)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * Drops the entries counted <= T and re-places the rest, in place: walking
 * once round from a slot that is empty now, every entry's probe run lies
 * after that slot, so taking each entry out and inserting it again puts it
 * at or before where it was, behind entries already re-placed.
 */
static void lc_evict(struct cn_linecount *t)
{
	uint32_t thr = lc_threshold(t);
	size_t i = 0, gone = 0;

	while (t->slot[i].count)
		i++;
	for (size_t k = 0; k < t->mask; k++) {
		struct lc_slot e;
		i = (i + 1) & t->mask;
		e = t->slot[i];
		if (!e.count)
			continue;
		t->slot[i].count = 0;
		if (e.count <= thr)
			gone++;
		else
			t->slot[lc_find(t, lc_key(&e))] = e;
	}
	t->used -= gone;
	t->evicted += gone;
	t->undercount = t->undercount > UINT64_MAX - thr ? UINT64_MAX : t->undercount + thr;
}

int cn_linecount_add_count(struct cn_linecount *t, uint64_t h, uint32_t k)
{
	size_t i;

	if (!k)
		return 0;
	i = lc_find(t, h);
	if (t->slot[i].count) {
		uint32_t c = t->slot[i].count;
		t->slot[i].count = c > UINT32_MAX - k ? UINT32_MAX : c + k;
		return 0;
	}
	if (t->max_entries && t->used >= t->max_entries) {
		lc_evict(t);
		i = lc_find(t, h);
	} else if (t->used >= t->grow_at) {
		if (lc_grow(t) < 0)
			return -1;
		i = lc_find(t, h);
	}
	t->slot[i].lo = (uint32_t)h;
	t->slot[i].hi = (uint32_t)(h >> 32);
	t->slot[i].count = k;
	t->used++;
	return 0;
}

int cn_linecount_add(struct cn_linecount *t, const uint64_t *h, size_t n)
{
	for (size_t i = 0; i < n && i < LC_AHEAD; i++)
		lc_prefetch(t, h[i]);
	for (size_t i = 0; i < n; i++) {
		if (i + LC_AHEAD < n)
			lc_prefetch(t, h[i + LC_AHEAD]);
		if (cn_linecount_add_count(t, h[i], 1) < 0)
			return -1;
	}
	return 0;
}

uint32_t cn_linecount_get(const struct cn_linecount *t, uint64_t h)
{
	return t->slot[lc_find(t, h)].count;
}

size_t cn_linecount_distinct(const struct cn_linecount *t)
{
	return t->used;
}

size_t cn_linecount_bytes(const struct cn_linecount *t)
{
	return sizeof *t + (t->mask + 1) * sizeof(struct lc_slot);
}

uint64_t cn_linecount_evicted(const struct cn_linecount *t)
{
	return t->evicted;
}

uint64_t cn_linecount_undercount(const struct cn_linecount *t)
{
	return t->undercount;
}

/* ---- pass B ---- */

/* Lines are hashed a batch at a time and their slots prefetched before
 * any is looked up, so the table's cache misses overlap the hashing. */
#define APPLY_BATCH 32

struct apply_line {
	const char *p, *next;
	uint64_t h;
	int counted;
};

int cn_linedup_apply(const struct cn_linedup_opts *o, const struct cn_linecount *t,
		     const char *text, size_t len, struct qn_buf *out, uint64_t *removed,
		     uint64_t *removed_bytes)
{
	const char *p = text, *end = len ? text + len : text;
	const char *run = text; /* kept, not yet copied */
	uint64_t lines = 0, bytes = 0;
	struct apply_line b[APPLY_BATCH];
	XXH3_state_t st;

	if (!o)
		o = &default_opts;
	qn_buf_reset(out);
	if (qn_buf_grow(out, 0) < 0)
		goto fail;
	out->data[0] = 0;
	while (p < end) {
		size_t nb = 0;
		for (; p < end && nb < APPLY_BATCH; nb++) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			b[nb].p = p;
			b[nb].next = nl ? nl + 1 : end;
			b[nb].counted =
			    line_hash(o, p, (size_t)((nl ? nl : end) - p), &b[nb].h, &st);
			if (b[nb].counted)
				lc_prefetch(t, b[nb].h);
			p = b[nb].next;
		}
		for (size_t j = 0; j < nb; j++) {
			if (!b[j].counted || cn_linecount_get(t, b[j].h) <= o->max_docs)
				continue;
			if (b[j].p > run && qn_buf_add(out, run, (size_t)(b[j].p - run)) < 0)
				goto fail;
			lines++;
			bytes += (uint64_t)(b[j].next - b[j].p);
			run = b[j].next;
		}
	}
	if (end > run && qn_buf_add(out, run, (size_t)(end - run)) < 0)
		goto fail;
	if (removed)
		*removed = lines;
	if (removed_bytes)
		*removed_bytes = bytes;
	return 0;
fail:
	qn_buf_reset(out);
	if (removed)
		*removed = 0;
	if (removed_bytes)
		*removed_bytes = 0;
	return -1;
}
