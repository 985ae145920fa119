/* bpe.c - see bpe.h and docs/tokenizers.md. */
#include "bpe.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "utf8.h"

/*
 * The named encodings, as tiktoken publishes them (tiktoken_ext/
 * openai_public.py and the npm package's registry.json): the patterns are
 * kept in their Rust-regex form, which is also what the fingerprint hashes.
 */
#define GPT2_PATTERN                                                                               \
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static const struct qn_bpe_special r50k_specials[] = {{"<|endoftext|>", 50256}};
static const struct qn_bpe_special cl100k_specials[] = {
    {"<|endoftext|>", 100257},	{"<|fim_prefix|>", 100258},  {"<|fim_middle|>", 100259},
    {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276},
};
static const struct qn_bpe_special o200k_specials[] = {
    {"<|endoftext|>", 199999},
    {"<|endofprompt|>", 200018},
};

static const struct qn_bpe_spec named_specs[] = {
    {"r50k_base", GPT2_PATTERN, r50k_specials, 1, 50256},
    {"cl100k_base",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     cl100k_specials, 5, 100256},
    {"o200k_base",
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
     "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     o200k_specials, 2, 199998},
};

const struct qn_bpe_spec *qn_bpe_spec_named(const char *name)
{
	if (!name)
		return NULL;
	if (!strcmp(name, "gpt2"))
		name = "r50k_base";
	for (size_t i = 0; i < sizeof named_specs / sizeof *named_specs; i++)
		if (!strcmp(named_specs[i].name, name))
			return &named_specs[i];
	return NULL;
}

/* ---- the tokenizer ---- */

enum { TOK_ORDINARY = 1, TOK_MERGEABLE = 2, TOK_SPECIAL = 4 };

struct tok {
	uint32_t off, len; /* in blob */
};

/*
 * A slot of the bytes -> id table holds the token's first 8 bytes, so that
 * a lookup of a piece of up to 8 bytes (most of them) reads one cache line.
 */
struct bslot {
	uint64_t head; /* the first 8 bytes, zero-padded */
	uint32_t id;   /* QN_BPE_NONE: free */
	uint32_t len;
};

/*
 * A pair slot packs left id, right id and rank in 64 bits (21 + 21 + 22):
 * the table of cl100k_base's 233k pairs is 4 MB, so a lookup is one cache
 * line. The rank is the merged id itself in ranks mode, an index into
 * merge_id in merges mode.
 */
#define PAIR_BITS 21
#define PAIR_KEY_MASK ((UINT64_C(1) << (2 * PAIR_BITS)) - 1)
#define PAIR_EMPTY UINT64_MAX
#define MAX_MERGES 4000000 /* ranks fit in 22 bits with PAIR_EMPTY to spare */

struct special {
	unsigned char *s;
	size_t len;
	uint32_t id;
	unsigned lstrip, rstrip;
};

struct stage {
	pcre2_code *re; /* NULL: the piece passes whole */
	int jit;
	char *src; /* the pattern as given (NULL without one) */
	int prefix_space;
};

struct qn_bpe {
	char *name;
	int merges_mode; /* pair rank from the merge list (tokenizer.json), else the merged id */
	int whole;	 /* a piece that is a token is that token */
	uint32_t n_ids;
	struct tok *tok;
	unsigned char *kind; /* TOK_* per id */
	unsigned char *blob;
	size_t blob_len, blob_cap;
	struct bslot *btab; /* bytes -> id, open addressing */
	size_t bmask;
	uint32_t *bb; /* [a << 8 | b]: rank of the pair of single-byte tokens a, b */
	uint32_t byte_id[256];
	uint64_t *ptab;
	size_t pmask, pcount;
	unsigned pshift;
	uint32_t *merge_id; /* merges mode: rank -> merged id */
	uint32_t n_ranks;   /* ranks are below this */
	struct special *sp; /* by increasing id */
	size_t n_sp;
	size_t *sp_order; /* indices into sp by first byte, then longer first */
	size_t sp_first[257];
	struct stage st[QN_BPE_MAX_STAGES];
	size_t n_st;
	char fp[65];
};

static void *xcalloc(size_t n, size_t size)
{
	return calloc(n ? n : 1, size ? size : 1);
}

void qn_bpe_free(struct qn_bpe *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_st; i++) {
		pcre2_code_free(b->st[i].re);
		free(b->st[i].src);
	}
	for (size_t i = 0; i < b->n_sp; i++)
		free(b->sp[i].s);
	free(b->sp);
	free(b->sp_order);
	free(b->ptab);
	free(b->merge_id);
	free(b->btab);
	free(b->bb);
	free(b->blob);
	free(b->kind);
	free(b->tok);
	free(b->name);
	free(b);
}

/* Quotes up to 40 bytes of s for a message, escaping what is not printable. */
static const char *show(char *dst, size_t cap, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < cap; i++) {
		if (i == 40) {
			o += snprintf(dst + o, cap - o, "...");
			break;
		}
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\'' || p[i] == '\\')
			o += snprintf(dst + o, cap - o, "\\x%02x", p[i]);
		else
			dst[o++] = (char)p[i];
	}
	dst[o] = 0;
	return dst;
}

/* ---- hash tables ---- */

static inline uint64_t head8(const unsigned char *p, size_t n)
{
	uint64_t w = 0;

	if (n >= 8) {
		memcpy(&w, p, 8);
		return w;
	}
	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return w;
}

static inline uint64_t bytes_hash(uint64_t head, const unsigned char *p, size_t n)
{
	if (n > 8)
		return XXH3_64bits(p, n);
	uint64_t h = (head ^ (uint64_t)n << 59) * 0xff51afd7ed558ccdULL;
	return h ^ h >> 29;
}

/* The lookup from a slot index and head8 already computed (see struct walk). */
static inline uint32_t btab_find_at(const struct qn_bpe *b, const unsigned char *p, size_t n,
				    uint64_t w, size_t i)
{
	for (;;) {
		const struct bslot *sl = &b->btab[i];
		if (sl->id == QN_BPE_NONE)
			return QN_BPE_NONE;
		if (sl->head == w && sl->len == n &&
		    (n <= 8 || !memcmp(b->blob + b->tok[sl->id].off + 8, p + 8, n - 8)))
			return sl->id;
		i = (i + 1) & b->bmask;
	}
}

static uint32_t btab_find(const struct qn_bpe *b, const void *bytes, size_t n)
{
	const unsigned char *p = bytes;
	uint64_t w = head8(p, n);

	return btab_find_at(b, p, n, w, (size_t)bytes_hash(w, p, n) & b->bmask);
}

/* Adds id under its bytes; returns the id already there, or QN_BPE_NONE. */
static uint32_t btab_add(struct qn_bpe *b, uint32_t id)
{
	const struct tok *t = &b->tok[id];
	const unsigned char *p = b->blob + t->off;
	uint32_t old = btab_find(b, p, t->len);

	if (old != QN_BPE_NONE)
		return old;
	uint64_t w = head8(p, t->len);
	size_t i = (size_t)bytes_hash(w, p, t->len) & b->bmask;
	while (b->btab[i].id != QN_BPE_NONE)
		i = (i + 1) & b->bmask;
	b->btab[i].head = w;
	b->btab[i].id = id;
	b->btab[i].len = t->len;
	return QN_BPE_NONE;
}

static inline size_t pair_index(const struct qn_bpe *b, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> b->pshift);
}

/* The rank of the pair (l, r), or QN_BPE_NONE when it does not merge. */
static inline uint32_t pair_rank(const struct qn_bpe *b, uint32_t l, uint32_t r)
{
	uint64_t key = (uint64_t)l | (uint64_t)r << PAIR_BITS;
	size_t i = pair_index(b, key);

	for (;;) {
		uint64_t v = b->ptab[i];
		if ((v & PAIR_KEY_MASK) == key)
			return (uint32_t)(v >> (2 * PAIR_BITS));
		if (v == PAIR_EMPTY)
			return QN_BPE_NONE;
		i = (i + 1) & b->pmask;
	}
}

/*
 * Fills the byte-pair table once the pairs and byte ids are known, from the
 * pair table's entries whose two sides are single bytes.
 */
static int bb_fill(struct qn_bpe *b)
{
	int16_t *byte_of = malloc((size_t)b->n_ids * sizeof *byte_of);

	b->bb = malloc(65536 * sizeof *b->bb);
	if (!b->bb || !byte_of) {
		free(byte_of);
		return -1;
	}
	memset(b->bb, 0xff, 65536 * sizeof *b->bb);
	for (uint32_t i = 0; i < b->n_ids; i++)
		byte_of[i] = -1;
	for (int c = 0; c < 256; c++)
		byte_of[b->byte_id[c]] = (int16_t)c;
	for (size_t i = 0; b->ptab && i <= b->pmask; i++) {
		uint64_t v = b->ptab[i];
		if (v == PAIR_EMPTY)
			continue;
		uint32_t l = (uint32_t)(v & ((1u << PAIR_BITS) - 1));
		uint32_t r = (uint32_t)(v >> PAIR_BITS & ((1u << PAIR_BITS) - 1));
		if (byte_of[l] >= 0 && byte_of[r] >= 0)
			b->bb[byte_of[l] << 8 | byte_of[r]] = (uint32_t)(v >> (2 * PAIR_BITS));
	}
	free(byte_of);
	return 0;
}

/* The token a pair of that rank merges into. */
static inline uint32_t rank_id(const struct qn_bpe *b, uint32_t rank)
{
	return b->merge_id ? b->merge_id[rank] : rank;
}

static int pair_resize(struct qn_bpe *b, size_t slots)
{
	uint64_t *old = b->ptab;
	size_t old_n = old ? b->pmask + 1 : 0;
	unsigned bits = 0;

	while (((size_t)1 << bits) < slots)
		bits++;
	b->ptab = malloc(((size_t)1 << bits) * sizeof *b->ptab);
	if (!b->ptab) {
		b->ptab = old;
		return -1;
	}
	b->pmask = ((size_t)1 << bits) - 1;
	b->pshift = 64 - bits;
	memset(b->ptab, 0xff, ((size_t)1 << bits) * sizeof *b->ptab);
	for (size_t k = 0; k < old_n; k++) {
		if (old[k] == PAIR_EMPTY)
			continue;
		size_t i = pair_index(b, old[k] & PAIR_KEY_MASK);
		while (b->ptab[i] != PAIR_EMPTY)
			i = (i + 1) & b->pmask;
		b->ptab[i] = old[k];
	}
	free(old);
	return 0;
}

/* Sets the rank of (l, r), replacing an earlier entry for the pair. */
static int pair_put(struct qn_bpe *b, uint32_t l, uint32_t r, uint32_t rank)
{
	uint64_t key = (uint64_t)l | (uint64_t)r << PAIR_BITS;

	if (!b->ptab || (b->pcount + 1) * 2 > b->pmask + 1)
		if (pair_resize(b, b->ptab ? (b->pmask + 1) * 2 : 1024) < 0)
			return -1;
	size_t i = pair_index(b, key);
	while (b->ptab[i] != PAIR_EMPTY && (b->ptab[i] & PAIR_KEY_MASK) != key)
		i = (i + 1) & b->pmask;
	if (b->ptab[i] == PAIR_EMPTY)
		b->pcount++;
	b->ptab[i] = key | (uint64_t)rank << (2 * PAIR_BITS);
	return 0;
}

/* ---- patterns ---- */

/* Unicode White_Space, which is what \s means in Rust's regex crate. */
#define WS_SET                                                                                     \
	"\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"       \
	"\\x{202F}\\x{205F}\\x{3000}"

/*
 * Rewrites a Rust-regex pattern for PCRE2. Only \s and \S differ in meaning
 * for the patterns tokenizers use: PCRE2's \s (with UCP) also takes U+180E,
 * which Unicode dropped from White_Space in 6.3. Rust's class set operations
 * and nested classes have no PCRE2 form and are refused.
 */
static char *rx_translate(const char *src, size_t n, struct qn_err *e)
{
	struct qn_buf o;
	int in_class = 0, rc = 0;

	qn_buf_init(&o, QN_BUF_UNLIMITED);
	for (size_t i = 0; i < n && rc == 0;) {
		char c = src[i];
		if (c == '\\') {
			if (i + 1 >= n) {
				qn_errf(e, "pattern ends in a backslash");
				rc = -1;
				break;
			}
			char d = src[i + 1];
			if (d == 's') {
				rc = qn_buf_adds(&o, in_class ? WS_SET : "[" WS_SET "]");
				i += 2;
			} else if (d == 'S') {
				if (in_class) {
					qn_errf(e, "pattern: \\S inside a class is not supported");
					rc = -1;
					break;
				}
				rc = qn_buf_adds(&o, "[^" WS_SET "]");
				i += 2;
			} else if (d == 'Q') {
				const char *end = NULL;
				for (size_t k = i + 2; k + 1 < n; k++)
					if (src[k] == '\\' && src[k + 1] == 'E') {
						end = src + k + 2;
						break;
					}
				size_t m = end ? (size_t)(end - (src + i)) : n - i;
				rc = qn_buf_add(&o, src + i, m);
				i += m;
			} else if ((d == 'p' || d == 'P' || d == 'x') && i + 2 < n &&
				   src[i + 2] == '{') {
				const char *end = memchr(src + i, '}', n - i);
				size_t m = end ? (size_t)(end + 1 - (src + i)) : n - i;
				rc = qn_buf_add(&o, src + i, m);
				i += m;
			} else {
				rc = qn_buf_add(&o, src + i, 2);
				i += 2;
			}
			continue;
		}
		if (in_class) {
			if (c == '[' && i + 1 < n && src[i + 1] == ':') {
				const char *end = NULL;
				for (size_t k = i + 2; k + 1 < n; k++)
					if (src[k] == ':' && src[k + 1] == ']') {
						end = src + k + 2;
						break;
					}
				size_t m = end ? (size_t)(end - (src + i)) : n - i;
				rc = qn_buf_add(&o, src + i, m);
				i += m;
				continue;
			}
			if (c == '[' || ((c == '&' || c == '-' || c == '~') && i + 1 < n &&
					 src[i + 1] == c && c != '-')) {
				qn_errf(e,
					"pattern: nested classes and class set operations are not "
					"supported");
				rc = -1;
				break;
			}
			if (c == ']')
				in_class = 0;
			rc = qn_buf_addc(&o, c);
			i++;
			continue;
		}
		if (c == '[') {
			in_class = 1;
			rc = qn_buf_addc(&o, c);
			i++;
			if (i < n && src[i] == '^')
				rc |= qn_buf_addc(&o, src[i++]);
			if (i < n && src[i] == ']')
				rc |= qn_buf_addc(&o, src[i++]);
			continue;
		}
		rc = qn_buf_addc(&o, c);
		i++;
	}
	if (rc < 0) {
		if (!e || !e->msg[0])
			qn_errf(e, "out of memory");
		qn_buf_release(&o);
		return NULL;
	}
	if (!o.data && qn_buf_adds(&o, "") < 0) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	return qn_buf_detach(&o, NULL);
}

/* Compiles stage st from a pattern (literal: a fixed string). */
static int stage_compile(struct stage *st, const char *src, size_t n, int literal, struct qn_err *e)
{
	char *pcre = NULL;
	int err;
	PCRE2_SIZE off;
	uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;

	if (e)
		e->msg[0] = 0;
	st->src = malloc(n + 1);
	if (!st->src)
		return qn_errf(e, "out of memory");
	memcpy(st->src, src, n);
	st->src[n] = 0;
	if (n == 0)
		return qn_errf(e, "empty pattern");
	if (literal) {
		/* Every ASCII character but letters and digits behind a backslash is itself. */
		struct qn_buf q;
		qn_buf_init(&q, QN_BUF_UNLIMITED);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)src[i];
			if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
					  (c >= 'A' && c <= 'Z')))
				qn_buf_addc(&q, '\\');
			qn_buf_addc(&q, (char)c);
		}
		if (!q.data) {
			qn_buf_release(&q);
			return qn_errf(e, "out of memory");
		}
		pcre = qn_buf_detach(&q, NULL);
	} else {
		pcre = rx_translate(src, n, e);
		if (!pcre)
			return -1;
	}
	st->re = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
	free(pcre);
	if (!st->re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		return qn_errf(e, "bad pattern: %s", (char *)msg);
	}
	/* Without JIT (an unsupported CPU) pcre2_match interprets: slower, same pieces. */
	st->jit = pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE) == 0;
	return 0;
}

/* ---- building ---- */

static struct qn_bpe *bpe_new(const char *name)
{
	struct qn_bpe *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	b->name = strdup(name ? name : "");
	if (!b->name) {
		free(b);
		return NULL;
	}
	for (int i = 0; i < 256; i++)
		b->byte_id[i] = QN_BPE_NONE;
	return b;
}

/* Makes room for n more bytes in the blob (offsets are 32-bit). */
static int blob_reserve(struct qn_bpe *b, size_t n)
{
	if (b->blob_len + n > UINT32_MAX)
		return -1;
	if (b->blob_len + n > b->blob_cap) {
		size_t cap = b->blob_cap ? b->blob_cap : 4096;
		while (cap < b->blob_len + n)
			cap *= 2;
		unsigned char *v = realloc(b->blob, cap);
		if (!v)
			return -1;
		b->blob = v;
		b->blob_cap = cap;
	}
	return 0;
}

static int blob_add(struct qn_bpe *b, const void *p, size_t n, uint32_t *off)
{
	if (blob_reserve(b, n) < 0)
		return -1;
	memcpy(b->blob + b->blob_len, p, n);
	*off = (uint32_t)b->blob_len;
	b->blob_len += n;
	return 0;
}

/* Allocates the per-id tables for ids below n_ids. */
static int ids_alloc(struct qn_bpe *b, uint32_t n_ids, size_t n_tokens)
{
	size_t slots = 16;

	b->n_ids = n_ids;
	b->tok = malloc((size_t)n_ids * sizeof *b->tok);
	b->kind = xcalloc(n_ids, 1);
	while (slots < n_tokens * 2)
		slots *= 2;
	b->btab = malloc(slots * sizeof *b->btab);
	if (!b->tok || !b->kind || !b->btab)
		return -1;
	b->bmask = slots - 1;
	for (size_t i = 0; i < slots; i++)
		b->btab[i].id = QN_BPE_NONE;
	return 0;
}

static int special_cmp_id(const void *a, const void *b)
{
	const struct special *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int special_cmp_first(const void *a, const void *b, void *arg)
{
	const struct special *sp = arg;
	const struct special *x = &sp[*(const size_t *)a], *y = &sp[*(const size_t *)b];
	if (x->s[0] != y->s[0])
		return x->s[0] < y->s[0] ? -1 : 1;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Sorts the specials by id and builds the first-byte index used to find them. */
static int specials_index(struct qn_bpe *b)
{
	qsort(b->sp, b->n_sp, sizeof *b->sp, special_cmp_id);
	b->sp_order = xcalloc(b->n_sp, sizeof *b->sp_order);
	if (!b->sp_order)
		return -1;
	for (size_t i = 0; i < b->n_sp; i++)
		b->sp_order[i] = i;
	qsort_r(b->sp_order, b->n_sp, sizeof *b->sp_order, special_cmp_first, b->sp);
	size_t k = 0;
	for (int c = 0; c < 256; c++) {
		b->sp_first[c] = k;
		while (k < b->n_sp && b->sp[b->sp_order[k]].s[0] == c)
			k++;
	}
	b->sp_first[256] = k;
	return 0;
}

static void b64_encode(const unsigned char *p, size_t n, struct qn_buf *o)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		qn_buf_add(o, q, 4);
	}
}

/*
 * The fingerprint: SHA-256 of the canonical text that docs/tokenizers.md
 * defines. merges (pairs of ids in list order) only in merges mode.
 */
static int fingerprint(struct qn_bpe *b, const uint32_t *merges, size_t n_merges)
{
	struct qn_sha256 h;
	struct qn_buf line;

	if (qn_sha256_init(&h) < 0)
		return -1;
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	qn_buf_printf(&line, "quern-bpe-fingerprint 1\nmode %s\nwhole %d\n",
		      b->merges_mode ? "merges" : "ranks", b->whole);
	for (size_t i = 0; i < b->n_st; i++) {
		qn_buf_printf(&line, "stage %d ", b->st[i].prefix_space);
		if (b->st[i].src)
			b64_encode((const unsigned char *)b->st[i].src, strlen(b->st[i].src),
				   &line);
		else
			qn_buf_addc(&line, '-');
		qn_buf_addc(&line, '\n');
	}
	for (uint32_t id = 0; id < b->n_ids; id++) {
		if (!(b->kind[id] & TOK_ORDINARY))
			continue;
		qn_buf_printf(&line, "token %u ", id);
		b64_encode(b->blob + b->tok[id].off, b->tok[id].len, &line);
		qn_buf_addc(&line, '\n');
		if (line.len > 65536) {
			qn_sha256_update(&h, line.data, line.len);
			qn_buf_reset(&line);
		}
	}
	for (size_t i = 0; i < n_merges; i++) {
		qn_buf_printf(&line, "merge %u %u\n", merges[2 * i], merges[2 * i + 1]);
		if (line.len > 65536) {
			qn_sha256_update(&h, line.data, line.len);
			qn_buf_reset(&line);
		}
	}
	for (size_t i = 0; i < b->n_sp; i++) {
		qn_buf_printf(&line, "special %u ", b->sp[i].id);
		b64_encode(b->sp[i].s, b->sp[i].len, &line);
		qn_buf_printf(&line, " %u\n", b->sp[i].lstrip | b->sp[i].rstrip << 1);
	}
	if (!line.data) {
		qn_sha256_release(&h);
		return -1;
	}
	qn_sha256_update(&h, line.data, line.len);
	qn_sha256_final(&h, b->fp);
	qn_buf_release(&line);
	return 0;
}

/* ---- rank files ---- */

struct rank_entry {
	uint32_t id, off, len;
	size_t line;
};

struct rank_src {
	const char *fname;
	int is_file; /* lines of a file, else tokens[] of qn_bpe_from_tokens */
};

static const char *where(const struct rank_src *src, size_t line, char *buf, size_t cap)
{
	if (src->is_file)
		snprintf(buf, cap, "%s:%zu", src->fname, line);
	else
		snprintf(buf, cap, "%s: token %zu", src->fname, line - 1);
	return buf;
}

/*
 * Makes a ranks-mode tokenizer from entries whose bytes are already in b's
 * blob: checks them, indexes them, adds the pairs every token splits into,
 * the specials and the pattern, and takes the fingerprint.
 */
static int ranks_finish(struct qn_bpe *b, struct rank_entry *ent, size_t n,
			const struct rank_src *src, const struct qn_bpe_spec *spec,
			struct qn_err *e)
{
	char w[1200], sh[200];
	uint32_t max_id = 0;
	size_t *line_of = NULL;

	if (!spec || !spec->pattern)
		return qn_errf(e, "%s: no pattern given for the rank file", src->fname);
	if (spec->n_tokens && n != spec->n_tokens)
		return qn_errf(e, "%s: %zu tokens, %s has %u", src->fname, n,
			       spec->name ? spec->name : "the encoding", spec->n_tokens);
	for (size_t i = 0; i < n; i++)
		if (ent[i].id >= max_id)
			max_id = ent[i].id + 1;
	for (size_t i = 0; i < spec->n_specials; i++) {
		if (spec->specials[i].id >= QN_BPE_MAX_ID)
			return qn_errf(e, "%s: special token id %u is too large", src->fname,
				       spec->specials[i].id);
		if (spec->specials[i].id >= max_id)
			max_id = spec->specials[i].id + 1;
	}
	if (ids_alloc(b, max_id, n) < 0)
		return qn_errf(e, "out of memory");
	b->n_ranks = max_id;
	line_of = xcalloc(max_id, sizeof *line_of);
	if (!line_of)
		return qn_errf(e, "out of memory");
	int rc = -1;
	for (size_t i = 0; i < n; i++) {
		uint32_t id = ent[i].id;
		if (b->kind[id]) {
			qn_errf(e, "%s: rank %u repeats %s %zu",
				where(src, ent[i].line, w, sizeof w), id,
				src->is_file ? "line" : "token",
				src->is_file ? line_of[id] : line_of[id] - 1);
			goto out;
		}
		b->kind[id] = TOK_ORDINARY | TOK_MERGEABLE;
		b->tok[id].off = ent[i].off;
		b->tok[id].len = ent[i].len;
		line_of[id] = ent[i].line;
		uint32_t dup = btab_add(b, id);
		if (dup != QN_BPE_NONE) {
			qn_errf(e, "%s: token '%s' repeats %s %zu",
				where(src, ent[i].line, w, sizeof w),
				show(sh, sizeof sh, b->blob + ent[i].off, ent[i].len),
				src->is_file ? "line" : "token",
				src->is_file ? line_of[dup] : line_of[dup] - 1);
			goto out;
		}
		if (ent[i].len == 1)
			b->byte_id[b->blob[ent[i].off]] = id;
	}
	for (int c = 0; c < 256; c++)
		if (b->byte_id[c] == QN_BPE_NONE) {
			qn_errf(e, "%s: no token for byte 0x%02x", src->fname, c);
			goto out;
		}
	/* Every way a token splits into two tokens is a pair that merges into it. */
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = b->blob + ent[i].off;
		for (uint32_t k = 1; k < ent[i].len; k++) {
			uint32_t l = btab_find(b, p, k), r;
			if (l == QN_BPE_NONE)
				continue;
			r = btab_find(b, p + k, ent[i].len - k);
			if (r != QN_BPE_NONE && pair_put(b, l, r, ent[i].id) < 0) {
				qn_errf(e, "out of memory");
				goto out;
			}
		}
	}
	if ((!b->ptab && pair_resize(b, 16) < 0) || bb_fill(b) < 0) {
		qn_errf(e, "out of memory");
		goto out;
	}
	b->sp = xcalloc(spec->n_specials, sizeof *b->sp);
	if (!b->sp) {
		qn_errf(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < spec->n_specials; i++) {
		const struct qn_bpe_special *s = &spec->specials[i];
		size_t len = strlen(s->name);
		if (!len) {
			qn_errf(e, "%s: empty special token", src->fname);
			goto out;
		}
		if (b->kind[s->id]) {
			qn_errf(e, "%s: special token '%s' has id %u, %s", src->fname,
				show(sh, sizeof sh, s->name, len), s->id,
				b->kind[s->id] & TOK_SPECIAL ? "as another special token does"
							     : "which a ranked token has");
			goto out;
		}
		for (size_t k = 0; k < b->n_sp; k++)
			if (b->sp[k].len == len && !memcmp(b->sp[k].s, s->name, len)) {
				qn_errf(e, "%s: special token '%s' given twice", src->fname,
					show(sh, sizeof sh, s->name, len));
				goto out;
			}
		struct special *d = &b->sp[b->n_sp];
		d->s = malloc(len);
		if (!d->s || blob_add(b, s->name, len, &b->tok[s->id].off) < 0) {
			free(d->s);
			qn_errf(e, "out of memory");
			goto out;
		}
		memcpy(d->s, s->name, len);
		d->len = len;
		d->id = s->id;
		b->n_sp++;
		b->tok[s->id].len = (uint32_t)len;
		b->kind[s->id] = TOK_SPECIAL;
	}
	if (specials_index(b) < 0) {
		qn_errf(e, "out of memory");
		goto out;
	}
	b->whole = 1;
	b->n_st = 1;
	if (stage_compile(&b->st[0], spec->pattern, strlen(spec->pattern), 0, e) < 0) {
		qn_err_prefix(e, "%s", spec->name ? spec->name : src->fname);
		goto out;
	}
	if (fingerprint(b, NULL, 0) < 0) {
		qn_errf(e, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(line_of);
	return rc;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict standard base64 (padding required) into out; returns the length or -1. */
static long b64_decode(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t o = 0;

	if (n == 0 || n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -1;
			v[k] = b64_val(s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		out[o++] = (unsigned char)(x >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(x >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)x;
		/* Bits a padded group leaves over must be zero (one spelling per token). */
		if ((pad == 1 && (x & 0xff)) || (pad == 2 && (x & 0xffff)))
			return -1;
	}
	return (long)o;
}

struct qn_bpe *qn_bpe_parse_tiktoken(const void *data, size_t len, const char *fname,
				     const struct qn_bpe_spec *spec, struct qn_err *e)
{
	const unsigned char *p = data, *end = p + len;
	struct rank_src src = {fname ? fname : "tiktoken", 1};
	struct rank_entry *ent = NULL;
	size_t n = 0, cap = 0, line = 0;
	struct qn_bpe *b = bpe_new(spec && spec->name ? spec->name : src.fname);

	if (!b) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		const unsigned char *le = nl ? nl : end, *sp;
		char w[1100];
		line++;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p) {
			p = nl ? nl + 1 : end;
			continue;
		}
		sp = memchr(p, ' ', (size_t)(le - p));
		if (!sp || sp == p || sp + 1 == le || memchr(sp + 1, ' ', (size_t)(le - sp - 1))) {
			qn_errf(e, "%s: expected 'base64 rank'", where(&src, line, w, sizeof w));
			goto fail;
		}
		uint64_t rank = 0;
		if (le - sp - 1 > 12) {
			qn_errf(e, "%s: bad rank", where(&src, line, w, sizeof w));
			goto fail;
		}
		for (const unsigned char *q = sp + 1; q < le; q++) {
			if (*q < '0' || *q > '9') {
				qn_errf(e, "%s: bad rank", where(&src, line, w, sizeof w));
				goto fail;
			}
			rank = rank * 10 + (uint64_t)(*q - '0');
		}
		if (rank >= QN_BPE_MAX_ID) {
			qn_errf(e, "%s: rank %llu is too large (ids are below %u)",
				where(&src, line, w, sizeof w), (unsigned long long)rank,
				QN_BPE_MAX_ID);
			goto fail;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			struct rank_entry *v = realloc(ent, cap * sizeof *ent);
			if (!v) {
				qn_errf(e, "out of memory");
				goto fail;
			}
			ent = v;
		}
		size_t b64n = (size_t)(sp - p);
		if (blob_reserve(b, b64n) < 0) {
			qn_errf(e, "out of memory");
			goto fail;
		}
		long m = b64_decode(p, b64n, b->blob + b->blob_len);
		if (m < 0) {
			qn_errf(e, "%s: bad base64", where(&src, line, w, sizeof w));
			goto fail;
		}
		ent[n].id = (uint32_t)rank;
		ent[n].off = (uint32_t)b->blob_len;
		ent[n].len = (uint32_t)m;
		ent[n].line = line;
		n++;
		b->blob_len += (size_t)m;
		p = nl ? nl + 1 : end;
	}
	if (n == 0) {
		qn_errf(e, "%s: no tokens", src.fname);
		goto fail;
	}
	if (ranks_finish(b, ent, n, &src, spec, e) < 0)
		goto fail;
	free(ent);
	return b;
fail:
	free(ent);
	qn_bpe_free(b);
	return NULL;
}

struct qn_bpe *qn_bpe_from_tokens(const unsigned char *const *tokens, const size_t *lens, size_t n,
				  const struct qn_bpe_spec *spec, struct qn_err *e)
{
	struct rank_src src = {spec && spec->name ? spec->name : "tokens", 0};
	struct rank_entry *ent = xcalloc(n, sizeof *ent);
	struct qn_bpe *b = bpe_new(src.fname);

	if (!ent || !b) {
		qn_errf(e, "out of memory");
		goto fail;
	}
	if (n == 0 || n > QN_BPE_MAX_ID) {
		qn_errf(e, "%s: %zu tokens (1 to %u)", src.fname, n, QN_BPE_MAX_ID);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (lens[i] == 0) {
			qn_errf(e, "%s: token %zu is empty", src.fname, i);
			goto fail;
		}
		if (blob_add(b, tokens[i], lens[i], &ent[i].off) < 0) {
			qn_errf(e, "out of memory");
			goto fail;
		}
		ent[i].id = (uint32_t)i;
		ent[i].len = (uint32_t)lens[i];
		ent[i].line = i + 1;
	}
	if (ranks_finish(b, ent, n, &src, spec, e) < 0)
		goto fail;
	free(ent);
	return b;
fail:
	free(ent);
	qn_bpe_free(b);
	return NULL;
}

static int read_file(const char *path, unsigned char **data, size_t *len, struct qn_err *e)
{
	FILE *f = fopen(path, "rb");
	struct qn_buf buf;

	if (!f)
		return qn_errno(e, errno, "cannot open '%s'", path);
	qn_buf_init(&buf, QN_BPE_MAX_FILE);
	for (;;) {
		if (qn_buf_grow(&buf, 1 << 16) < 0) {
			fclose(f);
			qn_buf_release(&buf);
			return qn_errf(e, "'%s' is larger than %lu MiB", path,
				       QN_BPE_MAX_FILE >> 20);
		}
		size_t k = fread(buf.data + buf.len, 1, buf.cap - buf.len - 1, f);
		buf.len += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		int err = errno;
		fclose(f);
		qn_buf_release(&buf);
		return qn_errno(e, err, "cannot read '%s'", path);
	}
	fclose(f);
	*data = (unsigned char *)qn_buf_detach(&buf, len);
	return 0;
}

struct qn_bpe *qn_bpe_load_tiktoken(const char *path, const struct qn_bpe_spec *spec,
				    struct qn_err *e)
{
	unsigned char *data;
	size_t len;

	if (read_file(path, &data, &len, e) < 0)
		return NULL;
	struct qn_bpe *b = qn_bpe_parse_tiktoken(data, len, path, spec, e);
	free(data);
	return b;
}

/* ---- tokenizer.json ---- */

/* GPT-2's bytes_to_unicode: the code point that stands for each byte. */
static uint32_t byte_char(int c)
{
	if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))
		return (uint32_t)c;
	int k = 0; /* the bytes without a printable stand-in take 256, 257, ... in order */
	for (int d = 0; d < c; d++)
		if (!((d >= 33 && d <= 126) || (d >= 161 && d <= 172) || (d >= 174 && d <= 255)))
			k++;
	return 256u + (uint32_t)k;
}

struct hf {
	struct qn_bpe *b;
	const char *fname;
	struct qn_err *e;
	int16_t char_byte[324]; /* inverse of byte_char; -1 elsewhere */
	uint32_t *merges;	/* pairs, in list order, for the fingerprint */
	size_t n_merges;
};

static int hf_fail(struct hf *h, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int hf_fail(struct hf *h, const char *path, const char *fmt, ...)
{
	char msg[800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (path && *path)
		return qn_errf(h->e, "%s: %s: %s", h->fname, path, msg);
	return qn_errf(h->e, "%s: %s", h->fname, msg);
}

/*
 * The bytes a vocabulary string stands for, as the ByteLevel decoder reads
 * it: every character mapped back to its byte, or (when one is not in the
 * byte alphabet) the string's own UTF-8. Returns 1 when mapped, 0 when raw.
 */
static int hf_bytes(const struct hf *h, const char *s, size_t n, unsigned char *out, size_t *outn)
{
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		uint32_t cp;
		i += qn_utf8_decode(s + i, n - i, &cp);
		if (cp >= 324 || h->char_byte[cp] < 0) {
			memcpy(out, s, n);
			*outn = n;
			return 0;
		}
		out[o++] = (unsigned char)h->char_byte[cp];
	}
	*outn = o;
	return 1;
}

static int hf_bool(struct hf *h, json_t *obj, const char *key, int dflt, const char *path, int *v)
{
	json_t *x = json_object_get(obj, key);

	if (!x || json_is_null(x)) {
		*v = dflt;
		return 0;
	}
	if (!json_is_boolean(x))
		return hf_fail(h, path, "%s: expected true or false", key);
	*v = json_is_true(x);
	return 0;
}

static const char *hf_type(json_t *obj)
{
	json_t *t = json_object_get(obj, "type");
	return json_is_string(t) ? json_string_value(t) : NULL;
}

static int hf_pretok(struct hf *h, json_t *pt, const char *path)
{
	struct qn_bpe *b = h->b;
	const char *type;
	char sub[256];

	if (!pt || json_is_null(pt))
		return 0;
	if (!json_is_object(pt))
		return hf_fail(h, path, "expected an object");
	type = hf_type(pt);
	if (!type)
		return hf_fail(h, path, "no type");
	if (!strcmp(type, "Sequence")) {
		json_t *list = json_object_get(pt, "pretokenizers");
		if (!json_is_array(list))
			return hf_fail(h, path, "pretokenizers: expected an array");
		for (size_t i = 0; i < json_array_size(list); i++) {
			snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, i);
			if (hf_pretok(h, json_array_get(list, i), sub) < 0)
				return -1;
		}
		return 0;
	}
	if (!strcmp(type, "ByteLevel")) {
		int aps = 0, use_regex = 0;
		if (hf_bool(h, pt, "add_prefix_space", 1, path, &aps) < 0 ||
		    hf_bool(h, pt, "use_regex", 1, path, &use_regex) < 0)
			return -1;
		if (!aps && !use_regex)
			return 0; /* maps bytes to characters only, which quern does not need */
		if (b->n_st == QN_BPE_MAX_STAGES)
			return hf_fail(h, path, "more than %d pre-tokenizer stages",
				       QN_BPE_MAX_STAGES);
		struct stage *st = &b->st[b->n_st++];
		st->prefix_space = aps;
		if (use_regex && stage_compile(st, GPT2_PATTERN, strlen(GPT2_PATTERN), 0, h->e) < 0)
			return -1;
		return 0;
	}
	if (!strcmp(type, "Split")) {
		json_t *pat = json_object_get(pt, "pattern"), *x;
		const char *beh = json_string_value(json_object_get(pt, "behavior"));
		int invert = 0, literal;
		if (hf_bool(h, pt, "invert", 0, path, &invert) < 0)
			return -1;
		if (!beh || strcmp(beh, "Isolated"))
			return hf_fail(h, path, "behavior: only \"Isolated\" is supported");
		if (invert)
			return hf_fail(h, path, "invert: only false is supported");
		if (!json_is_object(pat))
			return hf_fail(h, path,
				       "pattern: expected {\"Regex\": ...} or {\"String\": ...}");
		if ((x = json_object_get(pat, "Regex")) && json_is_string(x))
			literal = 0;
		else if ((x = json_object_get(pat, "String")) && json_is_string(x))
			literal = 1;
		else
			return hf_fail(h, path,
				       "pattern: expected {\"Regex\": ...} or {\"String\": ...}");
		if (b->n_st == QN_BPE_MAX_STAGES)
			return hf_fail(h, path, "more than %d pre-tokenizer stages",
				       QN_BPE_MAX_STAGES);
		struct stage *st = &b->st[b->n_st++];
		if (stage_compile(st, json_string_value(x), json_string_length(x), literal, h->e) <
		    0) {
			snprintf(sub, sizeof sub, "%s.pattern.%s", path,
				 literal ? "String" : "Regex");
			char m[sizeof h->e->msg];
			snprintf(m, sizeof m, "%s", h->e ? h->e->msg : "bad pattern");
			return hf_fail(h, sub, "%s", m);
		}
		return 0;
	}
	return hf_fail(h, path, "type: unsupported pre-tokenizer '%s' (ByteLevel, Split, Sequence)",
		       type);
}

/* A vocabulary or added-token string and its place in messages. */
static uint32_t hf_vocab_id(json_t *vocab, const char *s)
{
	json_t *v = json_object_get(vocab, s);
	return json_is_integer(v) ? (uint32_t)json_integer_value(v) : QN_BPE_NONE;
}

static int hf_model(struct hf *h, json_t *root)
{
	struct qn_bpe *b = h->b;
	json_t *model = json_object_get(root, "model"), *vocab, *merges, *added, *x;
	const char *key, *type;
	char path[256], sh[200], sh2[200];
	uint32_t max_id = 0;
	size_t n_vocab;
	unsigned char *tmp = NULL;
	int rc = -1;

	if (!json_is_object(model))
		return hf_fail(h, "model", "expected an object");
	type = hf_type(model);
	if (type && strcmp(type, "BPE"))
		return hf_fail(h, "model.type", "expected \"BPE\", got \"%s\"", type);
	vocab = json_object_get(model, "vocab");
	merges = json_object_get(model, "merges");
	if (!json_is_object(vocab))
		return hf_fail(h, "model.vocab", "expected an object");
	if (!json_is_array(merges))
		return hf_fail(h, "model.merges", "expected an array");
	if ((x = json_object_get(model, "dropout")) && !json_is_null(x) &&
	    !(json_is_number(x) && json_number_value(x) == 0))
		return hf_fail(h, "model.dropout", "only null is supported");
	const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
	for (int i = 0; i < 2; i++)
		if ((x = json_object_get(model, affixes[i])) && !json_is_null(x) &&
		    !(json_is_string(x) && json_string_length(x) == 0))
			return hf_fail(h, "model", "%s: only null is supported", affixes[i]);
	int bf = 0;
	if (hf_bool(h, model, "byte_fallback", 0, "model", &bf) < 0 ||
	    hf_bool(h, model, "ignore_merges", 0, "model", &b->whole) < 0)
		return -1;
	if (bf)
		return hf_fail(h, "model.byte_fallback", "only false is supported");
	added = json_object_get(root, "added_tokens");
	if (added && !json_is_null(added) && !json_is_array(added))
		return hf_fail(h, "added_tokens", "expected an array");

	/* Ids: the vocabulary's and the added tokens'. */
	n_vocab = json_object_size(vocab);
	json_object_foreach(vocab, key, x)
	{
		json_int_t id = json_is_integer(x) ? json_integer_value(x) : -1;
		if (id < 0 || id >= QN_BPE_MAX_ID)
			return hf_fail(h, "model.vocab", "'%s': id must be an integer from 0 to %u",
				       show(sh, sizeof sh, key, strlen(key)), QN_BPE_MAX_ID - 1);
		if ((uint32_t)id >= max_id)
			max_id = (uint32_t)id + 1;
	}
	for (size_t i = 0; i < json_array_size(added); i++) {
		json_t *t = json_array_get(added, i), *idv = json_object_get(t, "id");
		json_int_t id = json_is_integer(idv) ? json_integer_value(idv) : -1;
		snprintf(path, sizeof path, "added_tokens[%zu]", i);
		if (!json_is_object(t))
			return hf_fail(h, path, "expected an object");
		if (id < 0 || id >= QN_BPE_MAX_ID)
			return hf_fail(h, path, "id: expected an integer from 0 to %u",
				       QN_BPE_MAX_ID - 1);
		if ((uint32_t)id >= max_id)
			max_id = (uint32_t)id + 1;
	}
	if (ids_alloc(b, max_id, n_vocab) < 0)
		return qn_errf(h->e, "out of memory");

	/* The vocabulary, as bytes. */
	json_object_foreach(vocab, key, x)
	{
		uint32_t id = (uint32_t)json_integer_value(x);
		size_t n = strlen(key), bn;
		if (b->kind[id]) {
			const char *other = "", *k2;
			json_t *y;
			json_object_foreach(vocab, k2, y)
			{
				if ((uint32_t)json_integer_value(y) == id) {
					other = k2;
					break;
				}
			}
			rc = hf_fail(h, "model.vocab", "'%s': id %u repeats '%s'",
				     show(sh, sizeof sh, key, n), id,
				     show(sh2, sizeof sh2, other, strlen(other)));
			goto out;
		}
		if (n == 0) {
			rc = hf_fail(h, "model.vocab", "empty token");
			goto out;
		}
		free(tmp);
		tmp = malloc(n);
		if (!tmp)
			goto oom;
		int mapped = hf_bytes(h, key, n, tmp, &bn);
		if (blob_add(b, tmp, bn, &b->tok[id].off) < 0)
			goto oom;
		b->tok[id].len = (uint32_t)bn;
		b->kind[id] = TOK_ORDINARY;
		if (mapped) {
			b->kind[id] |= TOK_MERGEABLE;
			btab_add(b, id); /* a repeat keeps the first: merges name ids anyway */
			if (bn == 1)
				b->byte_id[tmp[0]] = id;
		}
	}
	for (int c = 0; c < 256; c++)
		if (b->byte_id[c] == QN_BPE_NONE) {
			char u[8];
			u[qn_utf8_encode(byte_char(c), u)] = 0;
			rc = hf_fail(h, "model.vocab", "no token for byte 0x%02x ('%s')", c, u);
			goto out;
		}

	/* Merges: rank = place in the list; a pair listed again takes the later rank. */
	size_t nm = json_array_size(merges);
	if (nm > MAX_MERGES) {
		rc = hf_fail(h, "model.merges", "more than %d merges", MAX_MERGES);
		goto out;
	}
	h->merges = xcalloc(nm * 2, sizeof *h->merges);
	b->merge_id = xcalloc(nm, sizeof *b->merge_id);
	if (!h->merges || !b->merge_id || pair_resize(b, nm * 2 + 16) < 0)
		goto oom;
	for (size_t i = 0; i < nm; i++) {
		json_t *m = json_array_get(merges, i);
		const char *l, *r;
		size_t ln, rn;
		char *ls = NULL;
		snprintf(path, sizeof path, "model.merges[%zu]", i);
		if (json_is_string(m)) {
			const char *s = json_string_value(m), *sp = strchr(s, ' ');
			if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' ')) {
				rc = hf_fail(h, path, "expected \"a b\" (two tokens, one space)");
				goto out;
			}
			ls = strndup(s, (size_t)(sp - s));
			if (!ls)
				goto oom;
			l = ls;
			r = sp + 1;
		} else if (json_is_array(m) && json_array_size(m) == 2 &&
			   json_is_string(json_array_get(m, 0)) &&
			   json_is_string(json_array_get(m, 1))) {
			l = json_string_value(json_array_get(m, 0));
			r = json_string_value(json_array_get(m, 1));
		} else {
			rc = hf_fail(h, path, "expected \"a b\" or [\"a\", \"b\"]");
			goto out;
		}
		ln = strlen(l);
		rn = strlen(r);
		uint32_t li = hf_vocab_id(vocab, l), ri = hf_vocab_id(vocab, r), mi;
		char *cat = malloc(ln + rn + 1);
		if (!cat) {
			free(ls);
			goto oom;
		}
		memcpy(cat, l, ln);
		memcpy(cat + ln, r, rn + 1);
		mi = hf_vocab_id(vocab, cat);
		if (li == QN_BPE_NONE || ri == QN_BPE_NONE || mi == QN_BPE_NONE) {
			const char *bad = li == QN_BPE_NONE ? l : ri == QN_BPE_NONE ? r : cat;
			rc = hf_fail(h, path, "unknown token '%s'",
				     show(sh, sizeof sh, bad, strlen(bad)));
			free(cat);
			free(ls);
			goto out;
		}
		free(cat);
		free(ls);
		if (pair_put(b, li, ri, (uint32_t)i) < 0)
			goto oom;
		b->merge_id[i] = mi;
		h->merges[2 * i] = li;
		h->merges[2 * i + 1] = ri;
	}
	h->n_merges = nm;
	b->n_ranks = (uint32_t)nm;
	if (bb_fill(b) < 0)
		goto oom;

	/* Added tokens: specials (they split the text only when allowed). */
	size_t na = json_array_size(added);
	b->sp = xcalloc(na, sizeof *b->sp);
	if (!b->sp)
		goto oom;
	for (size_t i = 0; i < na; i++) {
		json_t *t = json_array_get(added, i), *c = json_object_get(t, "content");
		uint32_t id = (uint32_t)json_integer_value(json_object_get(t, "id"));
		int sw = 0, ls = 0, rs = 0;
		snprintf(path, sizeof path, "added_tokens[%zu]", i);
		if (!json_is_string(c) || json_string_length(c) == 0) {
			rc = hf_fail(h, path, "content: expected a non-empty string");
			goto out;
		}
		if (hf_bool(h, t, "single_word", 0, path, &sw) < 0 ||
		    hf_bool(h, t, "lstrip", 0, path, &ls) < 0 ||
		    hf_bool(h, t, "rstrip", 0, path, &rs) < 0)
			goto out;
		if (sw) {
			rc = hf_fail(h, path, "single_word: only false is supported");
			goto out;
		}
		const char *s = json_string_value(c);
		size_t n = json_string_length(c), bn;
		if (b->kind[id] & TOK_SPECIAL) {
			rc = hf_fail(h, path, "id %u repeats an earlier added token", id);
			goto out;
		}
		for (size_t k = 0; k < b->n_sp; k++)
			if (b->sp[k].len == n && !memcmp(b->sp[k].s, s, n)) {
				rc = hf_fail(h, path, "content '%s' repeats an earlier added token",
					     show(sh, sizeof sh, s, n));
				goto out;
			}
		free(tmp);
		tmp = malloc(n);
		if (!tmp)
			goto oom;
		hf_bytes(h, s, n, tmp, &bn);
		/* Decoding must not depend on which table an id is read from. */
		if (b->kind[id] &&
		    (b->tok[id].len != bn || memcmp(b->blob + b->tok[id].off, tmp, bn))) {
			rc = hf_fail(h, path, "id %u is another token in model.vocab", id);
			goto out;
		}
		struct special *d = &b->sp[b->n_sp];
		d->s = malloc(n);
		if (!d->s)
			goto oom;
		memcpy(d->s, s, n);
		d->len = n;
		d->id = id;
		d->lstrip = (unsigned)ls;
		d->rstrip = (unsigned)rs;
		b->n_sp++;
		if (!b->kind[id]) {
			if (blob_add(b, tmp, bn, &b->tok[id].off) < 0)
				goto oom;
			b->tok[id].len = (uint32_t)bn;
		}
		b->kind[id] |= TOK_SPECIAL;
	}
	if (specials_index(b) < 0)
		goto oom;
	rc = 0;
	goto out;
oom:
	rc = qn_errf(h->e, "out of memory");
out:
	free(tmp);
	return rc;
}

static struct qn_bpe *hf_parse(struct hf *h, const void *data, size_t len)
{
	json_error_t je;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je), *x;
	const char *type;

	if (!root) {
		qn_errf(h->e, "%s:%d:%d: %s", h->fname, je.line, je.column, je.text);
		return NULL;
	}
	h->b = bpe_new(h->fname);
	if (!h->b) {
		qn_errf(h->e, "out of memory");
		goto fail;
	}
	h->b->merges_mode = 1;
	for (int i = 0; i < 324; i++)
		h->char_byte[i] = -1;
	for (int c = 0; c < 256; c++)
		h->char_byte[byte_char(c)] = (int16_t)c;
	if (!json_is_object(root)) {
		hf_fail(h, NULL, "expected a JSON object");
		goto fail;
	}
	x = json_object_get(root, "normalizer");
	if (x && !json_is_null(x)) {
		json_t *list = json_object_get(x, "normalizers");
		type = hf_type(x);
		if (!type || strcmp(type, "Sequence") || !json_is_array(list) ||
		    json_array_size(list)) {
			hf_fail(h, "normalizer",
				"unsupported type '%s' (quern encodes bytes as given)",
				type ? type : "?");
			goto fail;
		}
	}
	x = json_object_get(root, "decoder");
	if (x && !json_is_null(x) && (!(type = hf_type(x)) || strcmp(type, "ByteLevel"))) {
		hf_fail(h, "decoder",
			"unsupported type '%s' (byte-level tokenizers decode with "
			"ByteLevel)",
			type ? type : "?");
		goto fail;
	}
	if (hf_model(h, root) < 0 ||
	    hf_pretok(h, json_object_get(root, "pre_tokenizer"), "pre_tokenizer") < 0)
		goto fail;
	if (fingerprint(h->b, h->merges, h->n_merges) < 0) {
		qn_errf(h->e, "out of memory");
		goto fail;
	}
	free(h->merges);
	json_decref(root);
	return h->b;
fail:
	free(h->merges);
	json_decref(root);
	qn_bpe_free(h->b);
	return NULL;
}

struct qn_bpe *qn_bpe_parse_hf(const void *data, size_t len, const char *fname, struct qn_err *e)
{
	struct hf h;

	memset(&h, 0, sizeof h);
	h.fname = fname ? fname : "tokenizer.json";
	h.e = e;
	return hf_parse(&h, data, len);
}

struct qn_bpe *qn_bpe_load_hf(const char *path, struct qn_err *e)
{
	unsigned char *data;
	size_t len;

	if (read_file(path, &data, &len, e) < 0)
		return NULL;
	struct qn_bpe *b = qn_bpe_parse_hf(data, len, path, e);
	free(data);
	return b;
}

/* ---- accessors ---- */

uint32_t qn_bpe_vocab_size(const struct qn_bpe *b)
{
	return b->n_ids;
}

int qn_bpe_token(const struct qn_bpe *b, uint32_t id, const unsigned char **bytes, size_t *len)
{
	if (id >= b->n_ids || !b->kind[id])
		return -1;
	*bytes = b->blob + b->tok[id].off;
	*len = b->tok[id].len;
	return 0;
}

uint32_t qn_bpe_lookup(const struct qn_bpe *b, const void *bytes, size_t len)
{
	return len ? btab_find(b, bytes, len) : QN_BPE_NONE;
}

size_t qn_bpe_special_count(const struct qn_bpe *b)
{
	return b->n_sp;
}

void qn_bpe_special_at(const struct qn_bpe *b, size_t i, const char **name, size_t *len,
		       uint32_t *id)
{
	*name = (const char *)b->sp[i].s;
	*len = b->sp[i].len;
	*id = b->sp[i].id;
}

uint32_t qn_bpe_special_id(const struct qn_bpe *b, const char *name, size_t len)
{
	for (size_t i = 0; i < b->n_sp; i++)
		if (b->sp[i].len == len && !memcmp(b->sp[i].s, name, len))
			return b->sp[i].id;
	return QN_BPE_NONE;
}

int qn_bpe_is_special(const struct qn_bpe *b, uint32_t id)
{
	return id < b->n_ids && (b->kind[id] & TOK_SPECIAL);
}

int qn_bpe_lossless(const struct qn_bpe *b, unsigned flags)
{
	for (size_t i = 0; i < b->n_st; i++)
		if (b->st[i].prefix_space)
			return 0;
	if (flags & QN_BPE_ALLOW_SPECIAL)
		for (size_t i = 0; i < b->n_sp; i++) {
			const struct special *x = &b->sp[i];
			const struct tok *t = &b->tok[x->id];
			if (x->lstrip || x->rstrip || t->len != x->len ||
			    memcmp(b->blob + t->off, x->s, x->len))
				return 0;
		}
	return 1;
}

const char *qn_bpe_fingerprint(const struct qn_bpe *b)
{
	return b->fp;
}

const char *qn_bpe_name(const struct qn_bpe *b)
{
	return b->name;
}

/* ---- scratch and ids ---- */

/* A pair found during merge_buckets, in its rank's list. */
struct later {
	uint32_t pos, next;
};

/* A symbol of a long piece, at the byte where it starts. */
struct node {
	uint32_t sym;	   /* its token; QN_BPE_NONE once merged into its left neighbour */
	uint32_t prv, nxt; /* the neighbours' positions, QN_BPE_NONE at the ends */
	uint32_t rank;	   /* rank of the pair (this, next); QN_BPE_NONE if it does not merge */
};

struct qn_bpe_scratch {
	const struct qn_bpe *b;
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *js;
	struct node *node; /* per byte of a long piece */
	size_t cap;
	uint64_t *heap_mem, *heap; /* heap = heap_mem + 7: see heap_down */
	size_t hcap;
	/* merge_buckets */
	uint32_t *first;       /* [rank]: start of the rank's initial pairs in ipos */
	uint32_t *head, *tail; /* [rank]: the rank's list of later pairs in pool */
	size_t rcap;
	uint32_t *ipos, *gather;
	size_t icap;
	struct later *pool;
	size_t pcap;
	unsigned char *pre[QN_BPE_MAX_STAGES]; /* pieces with a prefix space */
	size_t pre_cap[QN_BPE_MAX_STAGES];
};

struct qn_bpe_scratch *qn_bpe_scratch_new(const struct qn_bpe *b)
{
	struct qn_bpe_scratch *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->b = b;
	s->md = pcre2_match_data_create(1, NULL);
	s->mc = pcre2_match_context_create(NULL);
	s->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
	if (!s->md || !s->mc || !s->js) {
		qn_bpe_scratch_free(s);
		return NULL;
	}
	pcre2_jit_stack_assign(s->mc, NULL, s->js);
	/* Pieces may be megabytes long; a limit would refuse them, not protect anything. */
	pcre2_set_match_limit(s->mc, UINT32_MAX);
	return s;
}

static void scratch_trim(struct qn_bpe_scratch *s)
{
	if (s->cap > QN_BPE_SCRATCH_KEEP) {
		free(s->node);
		s->node = NULL;
		s->cap = 0;
	}
	if (s->hcap > QN_BPE_SCRATCH_KEEP) {
		free(s->heap_mem);
		s->heap_mem = s->heap = NULL;
		s->hcap = 0;
	}
	/* Rank tables serve pieces over QN_BPE_LONG only, where their cost is lost in the work. */
	free(s->first);
	free(s->head);
	free(s->tail);
	s->first = s->head = s->tail = NULL;
	s->rcap = 0;
	if (s->icap > QN_BPE_SCRATCH_KEEP) {
		free(s->ipos);
		free(s->gather);
		s->ipos = s->gather = NULL;
		s->icap = 0;
	}
	if (s->pcap > QN_BPE_SCRATCH_KEEP) {
		free(s->pool);
		s->pool = NULL;
		s->pcap = 0;
	}
	for (int i = 0; i < QN_BPE_MAX_STAGES; i++)
		if (s->pre_cap[i] > QN_BPE_SCRATCH_KEEP) {
			free(s->pre[i]);
			s->pre[i] = NULL;
			s->pre_cap[i] = 0;
		}
}

void qn_bpe_scratch_free(struct qn_bpe_scratch *s)
{
	if (!s)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mc);
	pcre2_jit_stack_free(s->js);
	free(s->node);
	free(s->heap_mem);
	free(s->first);
	free(s->head);
	free(s->tail);
	free(s->ipos);
	free(s->gather);
	free(s->pool);
	for (int i = 0; i < QN_BPE_MAX_STAGES; i++)
		free(s->pre[i]);
	free(s);
}

void qn_bpe_ids_init(struct qn_bpe_ids *ids, size_t max)
{
	ids->v = NULL;
	ids->n = ids->cap = 0;
	ids->max = max;
}

void qn_bpe_ids_release(struct qn_bpe_ids *ids)
{
	free(ids->v);
	qn_bpe_ids_init(ids, ids->max);
}

static int ids_room(struct qn_bpe_ids *out, size_t k, struct qn_err *e)
{
	if (out->n + k <= out->cap)
		return 0;
	if (k > out->max || out->n > out->max - k)
		return qn_errf(e, "more than %zu tokens", out->max);
	size_t cap = out->cap ? out->cap : 256;
	while (cap < out->n + k)
		cap = cap > SIZE_MAX / 4 ? out->n + k : cap * 2;
	if (cap > out->max)
		cap = out->max;
	uint32_t *v = realloc(out->v, cap * sizeof *v);
	if (!v)
		return qn_errf(e, "out of memory");
	out->v = v;
	out->cap = cap;
	return 0;
}

static inline int ids_add(struct qn_bpe_ids *out, uint32_t id, struct qn_err *e)
{
	if (out->n == out->cap && ids_room(out, 1, e) < 0)
		return -1;
	out->v[out->n++] = id;
	return 0;
}

/* ---- merging ---- */

/*
 * tiktoken's loop, in id space: id[0..n) holds single-byte tokens; the pair
 * with the lowest rank (the leftmost on a tie) merges until none has one.
 * Quadratic, and the fastest for the short pieces that are nearly all of
 * them. rk and nx have room for n. Returns the number of ids left in id.
 */
static size_t merge_array(const struct qn_bpe *b, const unsigned char *p, uint32_t *id,
			  uint32_t *rk, size_t n)
{
	for (size_t i = 0; i < n; i++)
		id[i] = b->byte_id[p[i]];
	for (size_t i = 0; i + 1 < n; i++)
		rk[i] = b->bb[p[i] << 8 | p[i + 1]];
	while (n > 1) {
		uint32_t best = QN_BPE_NONE;
		size_t at = 0;
		for (size_t i = 0; i + 1 < n; i++)
			if (rk[i] < best) {
				best = rk[i];
				at = i;
			}
		if (best == QN_BPE_NONE)
			break;
		id[at] = rank_id(b, best);
		/* Drop symbol at+1 and the pair (at+1, at+2). */
		memmove(id + at + 1, id + at + 2, (n - at - 2) * sizeof *id);
		if (at + 2 < n)
			memmove(rk + at + 1, rk + at + 2, (n - at - 3) * sizeof *rk);
		n--;
		if (at + 1 < n)
			rk[at] = pair_rank(b, id[at], id[at + 1]);
		if (at > 0)
			rk[at - 1] = pair_rank(b, id[at - 1], id[at]);
	}
	return n;
}

static int scratch_room(struct qn_bpe_scratch *s, size_t n, struct qn_err *e)
{
	if (n <= s->cap)
		return 0;
	free(s->node);
	s->node = malloc(n * sizeof *s->node);
	if (!s->node) {
		s->cap = 0;
		return qn_errf(e, "out of memory for a piece of %zu bytes", n);
	}
	s->cap = n;
	return 0;
}

/*
 * The heap is 8-ary: the children of i are 8i+1 .. 8i+8, and with heap =
 * heap_mem + 7 on a 64-byte boundary they fill one cache line, so a step
 * down costs one miss where a binary heap costs three.
 */
static inline void heap_down(uint64_t *h, size_t n, size_t i)
{
	uint64_t v = h[i];

	for (;;) {
		size_t c = 8 * i + 1, end = c + 8 < n ? c + 8 : n, m = c;
		if (c >= n)
			break;
		uint64_t mv = h[c];
		for (size_t k = c + 1; k < end; k++)
			if (h[k] < mv) {
				mv = h[k];
				m = k;
			}
		if (mv >= v)
			break;
		h[i] = mv;
		i = m;
	}
	h[i] = v;
}

static inline void heap_up(uint64_t *h, size_t i)
{
	uint64_t v = h[i];

	while (i > 0) {
		size_t p = (i - 1) / 8;
		if (h[p] <= v)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = v;
}

static int heap_room(struct qn_bpe_scratch *s, size_t n, struct qn_err *e)
{
	void *mem;

	if (n <= s->hcap)
		return 0;
	size_t cap = n + n / 2 + 64;
	if (posix_memalign(&mem, 64, (cap + 8) * sizeof *s->heap))
		return qn_errf(e, "out of memory for a piece's merge heap");
	if (s->heap)
		memcpy((uint64_t *)mem + 7, s->heap, s->hcap * sizeof *s->heap);
	free(s->heap_mem);
	s->heap_mem = mem;
	s->heap = (uint64_t *)mem + 7;
	s->hcap = cap;
	return 0;
}

/*
 * The same merges in O(n log n): symbols in a linked list over byte
 * positions (a merged symbol keeps its left position), candidate pairs in a
 * heap keyed rank << 32 | position, so the minimum is the lowest rank and,
 * among equal ranks, the leftmost pair: tiktoken's choice at every step.
 * Entries go stale when a neighbour merges; an entry is current when its
 * symbol is alive and its rank is the rank the node now records for its
 * pair (a new pair at the same place always has another rank: it covers
 * more bytes, so it is another token, or another merge).
 */
static int merge_heap(const struct qn_bpe *b, struct qn_bpe_scratch *s, const unsigned char *p,
		      size_t n, struct qn_bpe_ids *out, struct qn_err *e)
{
	struct node *nd;
	uint64_t *h;
	size_t hn = 0;

	if (n >= UINT32_MAX)
		return qn_errf(e, "a piece of %zu bytes is longer than 4 GiB", n);
	if (scratch_room(s, n, e) < 0 || heap_room(s, n, e) < 0)
		return -1;
	nd = s->node;
	h = s->heap;
	for (size_t i = 0; i < n; i++) {
		nd[i].sym = b->byte_id[p[i]];
		nd[i].prv = (uint32_t)i - 1;
		nd[i].nxt = i + 1 < n ? (uint32_t)i + 1 : QN_BPE_NONE;
		nd[i].rank = i + 1 < n ? b->bb[p[i] << 8 | p[i + 1]] : QN_BPE_NONE;
		if (nd[i].rank != QN_BPE_NONE)
			h[hn++] = (uint64_t)nd[i].rank << 32 | i;
	}
	for (size_t i = hn / 8 + 1; i-- > 0;)
		heap_down(h, hn, i);
	while (hn) {
		uint64_t top = h[0], push = 0, push_left = 0;
		uint32_t at = (uint32_t)top, rank = (uint32_t)(top >> 32);
		struct node *x = &nd[at];
		if (x->sym != QN_BPE_NONE && x->rank == rank) {
			struct node *y = &nd[x->nxt];
			x->sym = rank_id(b, rank);
			y->sym = QN_BPE_NONE;
			x->nxt = y->nxt;
			x->rank = QN_BPE_NONE;
			if (x->nxt != QN_BPE_NONE) {
				nd[x->nxt].prv = at;
				x->rank = pair_rank(b, x->sym, nd[x->nxt].sym);
				if (x->rank != QN_BPE_NONE)
					push = (uint64_t)x->rank << 32 | at;
			}
			if (x->prv != QN_BPE_NONE) {
				struct node *w = &nd[x->prv];
				w->rank = pair_rank(b, w->sym, x->sym);
				if (w->rank != QN_BPE_NONE)
					push_left = (uint64_t)w->rank << 32 | x->prv;
			}
		}
		/* A new pair takes the popped entry's place: one sift instead of two. */
		if (push) {
			h[0] = push;
			heap_down(h, hn, 0);
		} else if (--hn) {
			h[0] = h[hn];
			heap_down(h, hn, 0);
		}
		if (push_left) {
			if (hn == s->hcap && heap_room(s, hn + 1, e) < 0)
				return -1;
			h = s->heap;
			h[hn] = push_left;
			heap_up(h, hn++);
		}
	}
	for (uint32_t i = 0; i != QN_BPE_NONE; i = nd[i].nxt)
		if (ids_add(out, nd[i].sym, e) < 0)
			return -1;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * The same merges for very long pieces, where a heap of millions of entries
 * costs a cache miss at every level. Pairs wait in a bucket per rank and the
 * buckets are taken in rank order, each swept left to right: the order of
 * (rank, position) again, but walked through memory in order. This works
 * because a merge of rank r never makes a pair of rank r (the new pair covers
 * more bytes), so a bucket is complete when its turn comes. A merge that
 * makes a pair of lower rank than the bucket being swept (rare: trained
 * vocabularies rank a token after its parts) sends it to a heap, which is
 * served first whenever it holds the smaller key. Still O(n log n) at worst,
 * O(n + ranks) for the usual vocabulary.
 */
static int merge_buckets(const struct qn_bpe *b, struct qn_bpe_scratch *s, const unsigned char *p,
			 size_t n, struct qn_bpe_ids *out, struct qn_err *e)
{
	size_t R = b->n_ranks, hn = 0, np = 0;
	struct node *nd;

	if (n >= UINT32_MAX)
		return qn_errf(e, "a piece of %zu bytes is longer than 4 GiB", n);
	if (scratch_room(s, n, e) < 0 || heap_room(s, 64, e) < 0)
		return -1;
	if (s->rcap < R + 1) {
		free(s->first);
		free(s->head);
		free(s->tail);
		s->first = malloc((R + 1) * sizeof *s->first);
		s->head = malloc((R + 1) * sizeof *s->head);
		s->tail = malloc((R + 1) * sizeof *s->tail);
		s->rcap = s->first && s->head && s->tail ? R + 1 : 0;
		if (!s->rcap)
			return qn_errf(e, "out of memory for a piece of %zu bytes", n);
	}
	if (s->icap < n) {
		free(s->ipos);
		free(s->gather);
		s->ipos = malloc(n * sizeof *s->ipos);
		s->gather = malloc(n * sizeof *s->gather);
		s->icap = s->ipos && s->gather ? n : 0;
		if (!s->icap)
			return qn_errf(e, "out of memory for a piece of %zu bytes", n);
	}
	nd = s->node;
	uint32_t *first = s->first, *head = s->head, *tail = s->tail, *ipos = s->ipos;
	/* The initial pairs, by rank then position: a counting sort. */
	memset(first, 0, (R + 1) * sizeof *first);
	memset(head, 0xff, R * sizeof *head);
	for (size_t i = 0; i < n; i++) {
		nd[i].sym = b->byte_id[p[i]];
		nd[i].prv = (uint32_t)i - 1;
		nd[i].nxt = i + 1 < n ? (uint32_t)i + 1 : QN_BPE_NONE;
		nd[i].rank = i + 1 < n ? b->bb[p[i] << 8 | p[i + 1]] : QN_BPE_NONE;
		if (nd[i].rank != QN_BPE_NONE)
			first[nd[i].rank + 1]++;
	}
	for (size_t r = 0; r < R; r++)
		first[r + 1] += first[r];
	for (size_t i = 0; i + 1 < n; i++)
		if (nd[i].rank != QN_BPE_NONE)
			ipos[first[nd[i].rank]++] = (uint32_t)i;
	for (size_t r = R; r > 0; r--) /* first[r] was advanced to the start of r + 1 */
		first[r] = first[r - 1];
	first[0] = 0;

	/* Sweep state: rank cur, its initial pairs ipos[i1..e1), its later ones gather[i2..e2). */
	size_t cur = 0, i1 = 0, e1 = first[1], i2 = 0, e2 = 0;
	uint32_t *g = s->gather;
	for (;;) {
		uint64_t sweep = UINT64_MAX, key;
		int from_first = 0;
		if (i1 < e1 && (i2 >= e2 || ipos[i1] < g[i2])) {
			sweep = (uint64_t)cur << 32 | ipos[i1];
			from_first = 1;
		} else if (i2 < e2) {
			sweep = (uint64_t)cur << 32 | g[i2];
		}
		if (sweep == UINT64_MAX && hn == 0) {
			/* Next rank with pairs waiting. */
			size_t r = cur + 1;
			while (r < R && first[r] == first[r + 1] && head[r] == QN_BPE_NONE)
				r++;
			if (r >= R)
				break;
			cur = r;
			i1 = first[r];
			e1 = first[r + 1];
			i2 = e2 = 0;
			int sorted = 1;
			for (uint32_t k = head[r]; k != QN_BPE_NONE; k = s->pool[k].next) {
				g[e2] = s->pool[k].pos;
				sorted &= e2 == 0 || g[e2 - 1] < g[e2];
				e2++;
			}
			if (!sorted)
				qsort(g, e2, sizeof *g, cmp_u32);
			continue;
		}
		if (hn && s->heap[0] < sweep) {
			key = s->heap[0];
			if (--hn) {
				s->heap[0] = s->heap[hn];
				heap_down(s->heap, hn, 0);
			}
		} else {
			key = sweep;
			if (from_first)
				i1++;
			else
				i2++;
		}
		uint32_t at = (uint32_t)key, rank = (uint32_t)(key >> 32);
		struct node *x = &nd[at];
		if (x->sym == QN_BPE_NONE || x->rank != rank)
			continue; /* stale */
		struct node *y = &nd[x->nxt];
		x->sym = rank_id(b, rank);
		y->sym = QN_BPE_NONE;
		x->nxt = y->nxt;
		x->rank = QN_BPE_NONE;
		uint32_t pos[2], rk[2];
		int k = 0;
		if (x->nxt != QN_BPE_NONE) {
			nd[x->nxt].prv = at;
			x->rank = pair_rank(b, x->sym, nd[x->nxt].sym);
			if (x->rank != QN_BPE_NONE)
				pos[k] = at, rk[k++] = x->rank;
		}
		if (x->prv != QN_BPE_NONE) {
			struct node *w = &nd[x->prv];
			w->rank = pair_rank(b, w->sym, x->sym);
			if (w->rank != QN_BPE_NONE)
				pos[k] = x->prv, rk[k++] = w->rank;
		}
		for (int j = 0; j < k; j++) {
			if (rk[j] > cur) { /* a later bucket */
				if (np == s->pcap) {
					size_t cap = s->pcap ? s->pcap * 2 : 4096;
					struct later *v = realloc(s->pool, cap * sizeof *v);
					if (!v)
						return qn_errf(
						    e, "out of memory for a piece of %zu bytes", n);
					s->pool = v;
					s->pcap = cap;
				}
				s->pool[np].pos = pos[j];
				s->pool[np].next = QN_BPE_NONE;
				if (head[rk[j]] == QN_BPE_NONE)
					head[rk[j]] = (uint32_t)np;
				else
					s->pool[tail[rk[j]]].next = (uint32_t)np;
				tail[rk[j]] = (uint32_t)np++;
			} else { /* at or below the sweep: the heap */
				if (hn == s->hcap && heap_room(s, hn + 1, e) < 0)
					return -1;
				s->heap[hn] = (uint64_t)rk[j] << 32 | pos[j];
				heap_up(s->heap, hn++);
			}
		}
	}
	for (uint32_t i = 0; i != QN_BPE_NONE; i = nd[i].nxt)
		if (ids_add(out, nd[i].sym, e) < 0)
			return -1;
	return 0;
}

/* The merge of a piece of 2 or more bytes after the whole-piece lookup. */
static int merge_piece(const struct qn_bpe *b, struct qn_bpe_scratch *s, const unsigned char *p,
		       size_t n, unsigned flags, struct qn_bpe_ids *out, struct qn_err *e)
{
	unsigned forced = flags & (QN_BPE_HEAP_ONLY | QN_BPE_SHORT_ONLY | QN_BPE_BUCKETS_ONLY);
	if (flags & QN_BPE_BUCKETS_ONLY || (n > QN_BPE_LONG && !forced))
		return merge_buckets(b, s, p, n, out, e);
	if (flags & QN_BPE_HEAP_ONLY || (n > QN_BPE_SHORT && !(flags & QN_BPE_SHORT_ONLY)))
		return merge_heap(b, s, p, n, out, e);
	uint32_t id_a[QN_BPE_SHORT], rk_a[QN_BPE_SHORT];
	uint32_t *id = id_a, *rk = rk_a;
	if (n > QN_BPE_SHORT) { /* QN_BPE_SHORT_ONLY, for tests */
		id = malloc(n * sizeof *id);
		rk = malloc(n * sizeof *rk);
		if (!id || !rk) {
			free(id);
			free(rk);
			return qn_errf(e, "out of memory");
		}
	}
	size_t m = merge_array(b, p, id, rk, n);
	int rc = ids_room(out, m, e);
	if (rc == 0) {
		memcpy(out->v + out->n, id, m * sizeof *id);
		out->n += m;
	}
	if (id != id_a) {
		free(id);
		free(rk);
	}
	return rc;
}

static int encode_piece(const struct qn_bpe *b, struct qn_bpe_scratch *s, const unsigned char *p,
			size_t n, unsigned flags, struct qn_bpe_ids *out, struct qn_err *e)
{
	if (n == 0)
		return 0;
	if (n == 1)
		return ids_add(out, b->byte_id[p[0]], e);
	if (b->whole) {
		uint32_t id = btab_find(b, p, n);
		if (id != QN_BPE_NONE)
			return ids_add(out, id, e);
	}
	return merge_piece(b, s, p, n, flags, out, e);
}

int qn_bpe_encode_piece(const struct qn_bpe *b, struct qn_bpe_scratch *s, const void *piece,
			size_t len, unsigned flags, struct qn_bpe_ids *out, struct qn_err *e)
{
	int rc = encode_piece(b, s, piece, len, flags, out, e);
	scratch_trim(s);
	return rc;
}

/* ---- splitting ---- */

struct walk {
	const struct qn_bpe *b;
	struct qn_bpe_scratch *s;
	unsigned flags;
	qn_bpe_piece_fn fn; /* NULL: encode into out */
	void *ctx;
	struct qn_bpe_ids *out;
	struct qn_err *e;
	int stop; /* fn's non-zero answer */
	/*
	 * Encoding runs one piece behind the pattern: a piece's table slot is
	 * prefetched when the piece is found and read after the next match,
	 * so the cache miss overlaps the regex work.
	 */
	const unsigned char *pend;
	size_t pend_n, pend_slot;
	uint64_t pend_head;
};

/* Encodes the piece held back, if any. */
static int flush(struct walk *w)
{
	const struct qn_bpe *b = w->b;
	const unsigned char *p = w->pend;
	size_t n = w->pend_n;

	if (!p)
		return 0;
	w->pend = NULL;
	uint32_t id = btab_find_at(b, p, n, w->pend_head, w->pend_slot);
	if (id != QN_BPE_NONE)
		return ids_add(w->out, id, w->e);
	return merge_piece(b, w->s, p, n, w->flags, w->out, w->e);
}

static int emit(struct walk *w, const unsigned char *p, size_t n, uint32_t special)
{
	if (w->fn) {
		int r = w->fn(w->ctx, p, n, special);
		if (r) {
			w->stop = r;
			return -1;
		}
		return 0;
	}
	if (flush(w) < 0)
		return -1;
	if (special != QN_BPE_NONE)
		return ids_add(w->out, special, w->e);
	if (n < 2 || !w->b->whole)
		return encode_piece(w->b, w->s, p, n, w->flags, w->out, w->e);
	w->pend = p;
	w->pend_n = n;
	w->pend_head = head8(p, n);
	w->pend_slot = (size_t)bytes_hash(w->pend_head, p, n) & w->b->bmask;
	__builtin_prefetch(&w->b->btab[w->pend_slot]);
	return 0;
}

/* Pre-tokenizer stage k over p[0..n): its matches and the gaps between them. */
static int walk_stage(struct walk *w, size_t k, const unsigned char *p, size_t n)
{
	const struct qn_bpe *b = w->b;
	struct qn_bpe_scratch *s = w->s;

	if (n == 0)
		return 0;
	if (k == b->n_st)
		return emit(w, p, n, QN_BPE_NONE);
	const struct stage *st = &b->st[k];
	if (st->prefix_space && p[0] != ' ') {
		if (flush(w) < 0) /* the piece held back may lie in pre[k] */
			return -1;
		if (s->pre_cap[k] < n + 1) {
			unsigned char *v = realloc(s->pre[k], n + 1);
			if (!v)
				return qn_errf(w->e, "out of memory");
			s->pre[k] = v;
			s->pre_cap[k] = n + 1;
		}
		s->pre[k][0] = ' ';
		memcpy(s->pre[k] + 1, p, n);
		p = s->pre[k];
		n++;
	}
	if (!st->re)
		return walk_stage(w, k + 1, p, n);
	size_t at = 0, from = 0;
	uint32_t opts = 0;
	while (from < n) {
		int rc = st->jit ? pcre2_jit_match(st->re, p, n, from, opts, s->md, s->mc)
				 : pcre2_match(st->re, p, n, from, opts, s->md, s->mc);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof msg);
			return qn_errf(w->e, "pattern match failed: %s", (char *)msg);
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
		size_t ms = ov[0], me = ov[1];
		if (me <= ms) { /* an empty match splits nothing; look past it */
			from = ms;
			opts = PCRE2_NOTEMPTY_ATSTART;
			continue;
		}
		opts = 0;
		if (ms > at && walk_stage(w, k + 1, p + at, ms - at) < 0)
			return -1;
		if (walk_stage(w, k + 1, p + ms, me - ms) < 0)
			return -1;
		at = from = me;
	}
	if (at < n)
		return walk_stage(w, k + 1, p + at, n - at);
	return 0;
}

/* Length of the White_Space character at p (n bytes left), or 0. */
static size_t ws_at(const unsigned char *p, size_t n)
{
	if (n >= 1 && ((p[0] >= 9 && p[0] <= 13) || p[0] == ' '))
		return 1;
	if (n >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
		return 2;
	if (n >= 3 && p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
		return 3;
	if (n >= 3 && p[0] == 0xe2 && p[1] == 0x80 &&
	    (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf) && p[2] >= 0x80)
		return 3;
	if (n >= 3 && p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
		return 3;
	if (n >= 3 && p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
		return 3;
	return 0;
}

/* The leftmost special token in t[from..len) (the longest there), or 0. */
static int find_special(const struct qn_bpe *b, const unsigned char *t, size_t from, size_t len,
			size_t *start, const struct special **sp)
{
	for (size_t i = from; i < len; i++) {
		unsigned c = t[i];
		for (size_t k = b->sp_first[c]; k < b->sp_first[c + 1]; k++) {
			const struct special *x = &b->sp[b->sp_order[k]];
			if (x->len <= len - i && !memcmp(t + i, x->s, x->len)) {
				*start = i;
				*sp = x;
				return 1;
			}
		}
	}
	return 0;
}

static int walk_text(struct walk *w, const unsigned char *t, size_t len)
{
	const struct qn_bpe *b = w->b;
	size_t pos = 0;

	if (!(w->flags & QN_BPE_ALLOW_SPECIAL) || !b->n_sp)
		return walk_stage(w, 0, t, len);
	for (;;) {
		size_t ss;
		const struct special *sp;
		if (!find_special(b, t, pos, len, &ss, &sp))
			return walk_stage(w, 0, t + pos, len - pos);
		size_t se = ss + sp->len, cut = ss;
		/* Hugging Face's lstrip and rstrip: the token takes the spaces beside it. */
		while (sp->lstrip && cut > pos) {
			size_t k = 0;
			for (size_t back = 1; back <= 3 && back <= cut - pos && !k; back++)
				if (ws_at(t + cut - back, back) == back)
					k = back;
			if (!k)
				break;
			cut -= k;
		}
		if (walk_stage(w, 0, t + pos, cut - pos) < 0 ||
		    emit(w, t + ss, sp->len, sp->id) < 0)
			return -1;
		if (sp->rstrip)
			for (size_t k; se < len && (k = ws_at(t + se, len - se));)
				se += k;
		pos = se;
	}
}

int qn_bpe_encode(const struct qn_bpe *b, struct qn_bpe_scratch *s, const void *text, size_t len,
		  unsigned flags, struct qn_bpe_ids *out, struct qn_err *e)
{
	struct walk w = {b, s, flags, NULL, NULL, out, e, 0, NULL, 0, 0, 0};
	int rc = walk_text(&w, text, len);

	if (rc == 0)
		rc = flush(&w);
	scratch_trim(s);
	return rc;
}

int qn_bpe_split(const struct qn_bpe *b, struct qn_bpe_scratch *s, const void *text, size_t len,
		 unsigned flags, qn_bpe_piece_fn fn, void *ctx, struct qn_err *e)
{
	struct walk w = {b, s, flags, fn, ctx, NULL, e, 0, NULL, 0, 0, 0};
	int rc = walk_text(&w, text, len);

	scratch_trim(s);
	return w.stop ? w.stop : rc;
}

int qn_bpe_decode(const struct qn_bpe *b, const uint32_t *ids, size_t n, struct qn_buf *out,
		  struct qn_err *e)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t id = ids[i];
		if (id >= b->n_ids || !b->kind[id])
			return qn_errf(e, "token %zu: id %u is not in the vocabulary", i, id);
		if (qn_buf_add(out, b->blob + b->tok[id].off, b->tok[id].len) < 0)
			return qn_errf(e, "decoded text is longer than %zu bytes", out->max);
	}
	return 0;
}

/* ---- naming a tokenizer ------------------------------------------------------ */

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}

static struct qn_bpe *load_rank_file(const char *path, const char *encoding, struct qn_err *e)
{
	char name[256];
	const char *base = strrchr(path, '/');
	snprintf(name, sizeof name, "%s", base ? base + 1 : path);
	if (has_suffix(name, ".tiktoken"))
		name[strlen(name) - strlen(".tiktoken")] = 0;
	const struct qn_bpe_spec *spec = qn_bpe_spec_named(encoding ? encoding : name);
	if (!spec) {
		qn_errf(e,
			"'%s': which encoding is it? name it with --encoding (r50k_base, "
			"cl100k_base, o200k_base)",
			path);
		return NULL;
	}
	return qn_bpe_load_tiktoken(path, spec, e);
}

struct qn_bpe *qn_bpe_load_spec(const char *arg, const char *encoding, struct qn_err *e)
{
	struct stat st;
	char path[4096];

	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof path, "%s/tokenizer.json", arg);
		if (access(path, F_OK) == 0)
			return qn_bpe_load_hf(path, e);
		DIR *d = opendir(arg);
		struct dirent *de;
		int found = 0;
		while (d && (de = readdir(d)))
			if (has_suffix(de->d_name, ".tiktoken") && de->d_name[0] != '.') {
				if (found++) {
					closedir(d);
					qn_errf(e, "'%s': more than one .tiktoken file; name one",
						arg);
					return NULL;
				}
				snprintf(path, sizeof path, "%s/%s", arg, de->d_name);
			}
		if (d)
			closedir(d);
		if (!found) {
			qn_errf(e, "'%s': no tokenizer.json or .tiktoken file in it", arg);
			return NULL;
		}
		return load_rank_file(path, encoding, e);
	}
	if (has_suffix(arg, ".tiktoken"))
		return load_rank_file(arg, encoding, e);
	return qn_bpe_load_hf(arg, e);
}
