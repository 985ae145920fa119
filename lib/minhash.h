/*
 * minhash.h - near-duplicate detection: text normalization, word shingles,
 * MinHash signatures, a banded LSH index, union-find clusters, and exact
 * Jaccard similarity to verify candidate pairs. It is the scheme behind
 * datatrove's MinHash dedup (FineWeb); quern-clean's near-duplicate step is
 * built on it.
 *
 * Normalization. Defaults in brackets are flags of qn_minhash_params; all
 * are on by default. quern-clean(1) quotes this definition.
 *   1. The text is read as UTF-8. A byte that is not part of a valid
 *      sequence (RFC 3629) is a separator; nothing is read past the end.
 *   2. Every character is case folded [CASEFOLD] and decomposed to NFKD;
 *      combining marks (general category M*) [ACCENTS] and format
 *      characters (Cf: soft hyphen, zero width joiners, BOM; but not U+200B)
 *      are dropped, and the rest recomposed (NFC). Without ACCENTS this is
 *      NFKC without format characters.
 *   3. Each resulting character is then
 *        a separator   if it is punctuation or a symbol (P*, S*) [PUNCT],
 *                      a space (Z*), a control (Cc), U+200B ZERO WIDTH SPACE
 *                      or U+FFFD;
 *        '0'           if it is a decimal digit (Nd: "2026" -> "0000") [DIGITS];
 *        a word alone  if it is a Han ideograph, hiragana or katakana
 *                      (Chinese and Japanese are written without spaces,
 *                      so their shingles are character n-grams);
 *        a letter      otherwise (other scripts pass through as words).
 *   4. A word is a maximal run of letters. A word longer than
 *      QN_MINHASH_MAX_WORD bytes keeps its first QN_MINHASH_MAX_WORD bytes
 *      (cut at a character boundary). The normalized text is the words
 *      joined by single spaces.
 * ASCII (most text) goes through a 128-entry table built from the same rules,
 * so both paths give the same bytes; only runs of non-ASCII characters go
 * through utf8proc.
 *
 * Shingles. A shingle is `ngram` (5) consecutive words of the normalized
 * text joined by single spaces; its hash is xxh3_64(shingle bytes, seed).
 * A text of fewer than ngram words has no shingle: the functions return
 * QN_MINHASH_TOO_SHORT and the caller sends the document to exact dedup
 * only (it is never silently dropped).
 *
 * MinHash. The signature has K = bands * rows (14 * 8 = 112) slots; slot i
 * is the minimum over the document's shingle hashes h of a_i*h + b_i
 * (mod 2^64), with a_i (odd) and b_i drawn from splitmix64 seeded with
 * `seed`. Why a multiply-add and not a stronger mixer: h is already the
 * output of a keyed xxh3, so shingle hashes behave as independent uniform
 * 64-bit values, and any bijection of them keeps each slot's minimum a
 * uniform pick from the shingle set (the slot is an unbiased estimator of
 * Jaccard). What the family must add is independence between slots: slot j
 * is slot i's values pushed through y -> c*y + d with c = a_j/a_i a random
 * odd 64-bit constant, which scatters the small values where minima live
 * over the whole range. It costs one multiply and one add per slot (a mixer
 * costs two multiplies and four shifts), is plain unsigned arithmetic, and so
 * gives the same signature on every machine. Identical texts give identical
 * signatures; the share of equal slots estimates Jaccard with standard error
 * sqrt(J(1-J)/K) (0.038 at J = 0.8).
 *
 * LSH. Band b's key is xxh3_64(slots b*rows .. b*rows+rows-1 as
 * little-endian bytes, seed + b). Two documents are candidates when any band
 * key is equal; a pair of Jaccard s becomes one with probability
 * 1 - (1 - s^rows)^bands: with 14 x 8, 0.05 at s = 0.5, 0.56 at 0.7, 0.92 at
 * 0.8, 0.99 at 0.85, 1.00 at 0.9.
 *
 * Index memory, stated per document (uint32 document numbers, so at most
 * 2^32 - 2 documents): a link to the previous document in each band's
 * bucket, 4 * bands bytes; and per band an open-addressing table of 12-byte
 * slots (key and latest document) kept between 3/8 and 3/4 full, so 16 to 32
 * bytes per distinct key and band. With 14 bands and all keys distinct that
 * is 280 to 504 bytes a document, under 0.5 GB for a million (qn_lsh_bytes
 * tells the actual figure); qn_lsh_new's `expected` sizes the tables once.
 * Both are plain arrays, so the index can be written out and mapped back.
 * Union-find adds 12 bytes a document.
 *
 * Ownership. struct qn_minhash holds the seeded permutations and the scratch
 * of one thread (qn_minhash_new / qn_minhash_free; use one per thread).
 * Signatures are caller-owned arrays of qn_minhash_hashes() uint64_t.
 * Shingle sets are malloc'd arrays handed to the caller (free() them). The
 * index and the union-find are owned by the caller through their _new/_free.
 */
#ifndef QN_MINHASH_H
#define QN_MINHASH_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;
struct qn_err;

enum {
	QN_MINHASH_CASEFOLD = 1, /* Unicode case folding */
	QN_MINHASH_PUNCT = 2,	 /* punctuation and symbols are separators */
	QN_MINHASH_DIGITS = 4,	 /* every decimal digit becomes '0' */
	QN_MINHASH_ACCENTS = 8,	 /* combining marks are dropped */
	QN_MINHASH_ALL = 15,
};

#define QN_MINHASH_BANDS 14
#define QN_MINHASH_ROWS 8
#define QN_MINHASH_NGRAM 5
#define QN_MINHASH_SEED 0x717565726e6d6831ULL /* "quernmh1" */
#define QN_MINHASH_THRESHOLD 0.8
#define QN_MINHASH_MAX_WORD 1024   /* bytes of a normalized word */
#define QN_MINHASH_MAX_NGRAM 32
#define QN_MINHASH_MAX_HASHES 1024 /* bands * rows */

/* Returned (besides 0 and -1) for a text with no full shingle. */
#define QN_MINHASH_TOO_SHORT 1

struct qn_minhash_params {
	unsigned bands, rows, ngram;
	unsigned flags; /* QN_MINHASH_* */
	uint64_t seed;
};

/* The defaults: 14 bands, 8 rows, 5-word shingles, every flag, the fixed seed. */
void qn_minhash_params_default(struct qn_minhash_params *p);

struct qn_minhash;

/* NULL with e filled when the parameters are out of range or memory ran out. */
struct qn_minhash *qn_minhash_new(const struct qn_minhash_params *p, struct qn_err *e);
void qn_minhash_free(struct qn_minhash *m);
const struct qn_minhash_params *qn_minhash_get_params(const struct qn_minhash *m);
/* K = bands * rows: the length of a signature. */
size_t qn_minhash_hashes(const struct qn_minhash *m);

/*
 * Appends the normalized text of text[0..len) to out (words joined by single
 * spaces, no leading or trailing space). Returns the number of words, or -1
 * when out reached its maximum or memory ran out.
 */
long qn_minhash_normalize(struct qn_minhash *m, const char *text, size_t len,
			  struct qn_buf *out);

/*
 * Computes the signature of text[0..len) into sig[K]. Returns 0,
 * QN_MINHASH_TOO_SHORT (sig is then all UINT64_MAX), or -1 (out of memory).
 */
int qn_minhash_signature(struct qn_minhash *m, const char *text, size_t len, uint64_t *sig);

/*
 * The set of shingle hashes of text[0..len): sorted ascending, without
 * repeats, in a malloc'd array (*set, *n; free() it). Returns 0,
 * QN_MINHASH_TOO_SHORT (*set NULL, *n 0) or -1 (out of memory).
 */
int qn_minhash_shingles(struct qn_minhash *m, const char *text, size_t len, uint64_t **set,
			size_t *n);

/*
 * The signature of a set of shingle hashes (as qn_minhash_shingles returns;
 * order and repeats do not matter): equal to qn_minhash_signature of the
 * text. n == 0 gives all UINT64_MAX.
 */
void qn_minhash_signature_of(const struct qn_minhash *m, const uint64_t *hashes, size_t n,
			     uint64_t *sig);

/* Share of equal slots of two signatures of k slots: the Jaccard estimate. */
double qn_minhash_estimate(const uint64_t *a, const uint64_t *b, size_t k);

/*
 * Exact Jaccard |A n B| / |A u B| of two sorted sets without repeats; two
 * empty sets give 0 (too-short texts are not near-duplicates of anything).
 */
double qn_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);

/* Band b's LSH key of a signature (see the LSH paragraph above). */
uint64_t qn_minhash_band_key(const struct qn_minhash_params *p, const uint64_t *sig,
			     unsigned band);

/*
 * The LSH index. Documents are numbered 0, 1, 2, ... in the order they are
 * added; a too-short document is added with sig NULL, takes its number and
 * joins no bucket, so numbers stay those of the input.
 */
#define QN_LSH_NONE UINT32_MAX

struct qn_lsh;

/* expected: documents to size the tables for (0 for a small start). */
struct qn_lsh *qn_lsh_new(const struct qn_minhash_params *p, size_t expected,
			  struct qn_err *e);
void qn_lsh_free(struct qn_lsh *l);
/* Adds a document (sig NULL: too short); its number goes to *doc. */
int qn_lsh_add(struct qn_lsh *l, const uint64_t *sig, uint32_t *doc, struct qn_err *e);
/*
 * The same with the document's band keys (qn_minhash_band_key of each band,
 * bands of them) instead of its signature: a persistent index stores keys.
 */
int qn_lsh_add_keys(struct qn_lsh *l, const uint64_t *keys, uint32_t *doc, struct qn_err *e);
size_t qn_lsh_count(const struct qn_lsh *l);
/* The latest document before doc in doc's bucket of band b, or QN_LSH_NONE. */
uint32_t qn_lsh_prev(const struct qn_lsh *l, uint32_t doc, unsigned band);
/*
 * Earlier documents that share a bucket with doc: each band's bucket is
 * walked from the latest document back, at most max steps a band; the
 * numbers found go to out[max] without repeats, latest first within a band.
 * Returns how many (at most max).
 */
size_t qn_lsh_candidates(const struct qn_lsh *l, uint32_t doc, uint32_t *out, size_t max);
/* Bytes of memory the index holds. */
size_t qn_lsh_bytes(const struct qn_lsh *l);
/*
 * Node slots an index made with expected 0 holds after n documents, and
 * the bytes of one slot: so qn_lsh_bytes(l) minus
 * qn_lsh_node_cap(qn_lsh_count(l)) * qn_lsh_node_bytes(l) is what does not
 * depend on the document count (quern-clean merge-stats uses it to give
 * the index_bytes of a run that added more documents without keys).
 */
size_t qn_lsh_node_cap(size_t n);
size_t qn_lsh_node_bytes(const struct qn_lsh *l);

/*
 * Union-find over documents 0..n-1: union by size, path halving; both
 * operations are near O(1). Clusters do not depend on the order of unions.
 */
struct qn_uf;

struct qn_uf *qn_uf_new(size_t n);
void qn_uf_free(struct qn_uf *u);
/* Adds singleton documents up to n in all; -1 when memory ran out. */
int qn_uf_grow(struct qn_uf *u, size_t n);
size_t qn_uf_count(const struct qn_uf *u);
uint32_t qn_uf_find(struct qn_uf *u, uint32_t x);
/* Joins the clusters of x and y: 1 when they were apart, 0 when already one. */
int qn_uf_union(struct qn_uf *u, uint32_t x, uint32_t y);
/* The next member of x's cluster (a circular list; x itself when alone). */
uint32_t qn_uf_next(const struct qn_uf *u, uint32_t x);
size_t qn_uf_size(struct qn_uf *u, uint32_t x);
/*
 * Complete linkage, for verified clustering: joins the clusters of x and y
 * only when ok(a, b, ctx) holds for every a in x's cluster and b in y's
 * (|X| * |Y| calls, stopping at the first refusal). With ok = "exact
 * Jaccard >= threshold" every pair in a cluster is then a near-duplicate,
 * so a removed document is always similar to the one kept, whatever the keep
 * rule; chains (A ~ B ~ C with A, C apart) stay split. Exact duplicates
 * are best removed before, as quern-clean does, since a cluster of k copies
 * costs k calls per join. Returns 1 when joined, 0 otherwise.
 */
int qn_uf_union_if_all(struct qn_uf *u, uint32_t x, uint32_t y,
		       int (*ok)(uint32_t a, uint32_t b, void *ctx), void *ctx);
/*
 * The keep rule: keep[i] gets the document kept for i's cluster (i is kept
 * when keep[i] == i). Without priority (NULL) it is the earliest document
 * (lowest number); with priority[n] it is the one with the highest value
 * (length, date, a priority field), ties to the lowest number; NaN ranks
 * below everything.
 */
void qn_uf_keep(struct qn_uf *u, const double *priority, uint32_t *keep);

#endif
