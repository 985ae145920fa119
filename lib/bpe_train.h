/*
 * bpe_train.h - learning a byte-level BPE tokenizer from text, the way
 * GPT-2 and tiktoken tokenizers are made, and writing it as a tiktoken rank
 * file, a Hugging Face tokenizer.json and a quern config. quern-tokenize
 * train is built on it; docs/bpe-training.md is the long form of this note.
 *
 * Input. Texts are fed one at a time (qn_bpet_add_text). Each is first cut
 * at every occurrence of a special token (leftmost first; the longest when
 * several start at one place), so specials are never learned from the text,
 * as tiktoken does. Each piece between specials is then split into
 * pre-tokens by a pattern in Rust-regex syntax, as tiktoken and Hugging Face
 * write them: the GPT-2 (r50k), cl100k or o200k split pattern by name, or
 * any regex. It runs on PCRE2 (JIT; UTF, UCP, MATCH_INVALID_UTF) with \s
 * and \S rewritten to Unicode White_Space, as lib/bpe.c does. Bytes
 * the pattern does not match (a user regex with gaps, invalid UTF-8) form
 * pre-tokens of their own, as Hugging Face's Split(behavior=Isolated)
 * keeps them; an empty match only marks a boundary.
 *
 * Counting. Distinct pre-tokens are counted in a hash map (bytes -> uint64
 * count). Counts saturate at UINT64_MAX; fed through add_text they cannot
 * get there (a count is at most the number of input bytes), only through
 * qn_bpet_add_pretoken's explicit weights. With threads > 1, texts are
 * batched and counted by worker threads into maps of their own, merged when
 * training starts; sums do not depend on the split, so the tokenizer is the
 * same for every thread count.
 *
 * Training. Ranks 0..255 are the single bytes (rank = byte value). Then, as
 * long as fewer than vocab_size - nspecials tokens exist, the adjacent pair
 * of tokens with the highest count (each pre-token weighted by its count) is
 * merged into a new token with the next rank; training stops early when no
 * pair occurs min_frequency times. Ties: among pairs of equal count, the one
 * whose (left token bytes, right token bytes) is smallest, comparing the
 * left bytes first, as unsigned bytes, a proper prefix before its
 * extensions. Within a pre-token, occurrences of the pair are merged left to
 * right ("aaa" -> "aa" "a"), which is what a merge-list BPE encoder does, so
 * every learned token encodes back to itself and the tiktoken encoding
 * (lowest rank first) and the tokenizer.json merge list agree on every
 * input (docs/bpe-training.md has the argument).
 *
 * Pair counts are updated incrementally: every distinct pre-token with two
 * or more bytes is a linked list of symbols; every pair keeps its count
 * (128-bit: exact, it is at most (2^64-1) times the number of positions)
 * and the positions where it was seen; a merge visits only those positions
 * and changes the counts of the pairs around them. The next pair comes from
 * a max-heap with lazy deletion (a popped entry whose count is stale goes
 * back with the current count). Total work is linear in the bytes of
 * distinct pre-tokens plus the heap's logarithm per update.
 *
 * Memory: a count map entry of 32 bytes plus the bytes of every distinct
 * pre-token (per counting thread in the worst case); while training about
 * 28 bytes per byte of distinct pre-tokens (symbols, links, positions) plus
 * the pairs. opts.max_bytes bounds the bytes of distinct pre-tokens
 * (default QN_BPET_MAX_BYTES, the most that 32-bit positions address).
 *
 * Ownership. struct qn_bpet is owned by the caller (qn_bpet_new /
 * qn_bpet_free). Strings it returns stay valid until qn_bpet_free. The
 * options' strings are copied.
 */
#ifndef QN_BPE_TRAIN_H
#define QN_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define QN_BPET_MAX_BYTES ((size_t)0xFFFFFFF0u)
#define QN_BPET_MAX_SPECIALS 65536
#define QN_BPET_MAX_THREADS 256

/* What a progress callback is told. */
enum qn_bpet_phase {
	QN_BPET_PHASE_MERGE_COUNTS, /* done/total: counting maps merged */
	QN_BPET_PHASE_INDEX,	    /* done/total: positions of pre-token bytes indexed */
	QN_BPET_PHASE_MERGES,	    /* done/total: merges learned */
};

typedef void (*qn_bpet_progress_fn)(void *ctx, enum qn_bpet_phase phase, uint64_t done,
				    uint64_t total);

struct qn_bpet_opts {
	const char *pattern;	      /* "gpt2" (alias "r50k"), "cl100k", "o200k" or a regex */
	size_t vocab_size;	      /* every token, specials included (32000) */
	uint64_t min_frequency;	      /* least count of a pair to merge (2; 0 acts as 1) */
	const char *const *specials;  /* special tokens (valid UTF-8, distinct) */
	size_t nspecials;	      /* their ids follow the learned tokens in this order */
	int threads;		      /* counting threads (1) */
	size_t max_bytes;	      /* ceiling on bytes of distinct pre-tokens */
	int check;		      /* recount every pair after every merge (tests) */
	qn_bpet_progress_fn progress; /* optional; called a few hundred times at most */
	void *progress_ctx;
};

/* The defaults: o200k, 32000 tokens, min_frequency 2, no specials, 1 thread. */
void qn_bpet_opts_default(struct qn_bpet_opts *o);

struct qn_bpet;

/* NULL with e filled on a bad option, a regex that does not compile, or no memory. */
struct qn_bpet *qn_bpet_new(const struct qn_bpet_opts *o, struct qn_err *e);
void qn_bpet_free(struct qn_bpet *t);

/*
 * Counts the pre-tokens of one text (any bytes). With threads > 1 the text
 * is copied into a batch and counted later by a worker; an error from a
 * worker comes back from a later call or from qn_bpet_train. -1 with e
 * filled: past max_bytes, a regex that failed to match (match limit), or
 * no memory.
 */
int qn_bpet_add_text(struct qn_bpet *t, const char *text, size_t len, struct qn_err *e);

/* Adds count to one pre-token as it is (no specials, no regex); counts saturate. */
int qn_bpet_add_pretoken(struct qn_bpet *t, const char *p, size_t len, uint64_t count,
			 struct qn_err *e);

/* Learns the merges. Called once; adding text afterwards is an error. */
int qn_bpet_train(struct qn_bpet *t, struct qn_err *e);

/* Learned tokens (ranks 0..n-1), 256 + merges; specials not included. */
size_t qn_bpet_ntokens(const struct qn_bpet *t);
/* The bytes of token `rank` (not NUL-terminated), or NULL past the end. */
const unsigned char *qn_bpet_token(const struct qn_bpet *t, size_t rank, size_t *len);
/*
 * The merge that made token `rank` (>= 256): its left and right ranks and
 * the pair's count when it was merged (saturated to UINT64_MAX). -1 for a
 * byte or past the end.
 */
int qn_bpet_merge(const struct qn_bpet *t, size_t rank, uint32_t *left, uint32_t *right,
		  uint64_t *count);
size_t qn_bpet_nspecials(const struct qn_bpet *t);
/* Special token i (NUL-terminated); its id is qn_bpet_ntokens() + i. */
const char *qn_bpet_special(const struct qn_bpet *t, size_t i);
/* The regex in use, and its name ("gpt2", "cl100k", "o200k") or NULL. */
const char *qn_bpet_pattern(const struct qn_bpet *t);
const char *qn_bpet_pattern_name(const struct qn_bpet *t);

struct qn_bpet_stats {
	uint64_t texts;		 /* add_text calls */
	uint64_t bytes;		 /* bytes of those texts */
	uint64_t pretokens;	 /* pre-tokens counted (saturating) */
	uint64_t distinct;	 /* distinct pre-tokens (after train) */
	uint64_t distinct_bytes; /* their bytes */
	uint64_t pairs;		 /* distinct pairs ever seen while training */
	uint64_t merges;	 /* merges learned */
	int stopped_early;	 /* 1: no pair reached min_frequency before vocab_size */
};

void qn_bpet_get_stats(const struct qn_bpet *t, struct qn_bpet_stats *s);

/*
 * Writers (after qn_bpet_train), each atomic (lib/wr.h):
 *   tiktoken: "base64(bytes) rank\n" for ranks 0..n-1 (specials are not in
 *             rank files; the config names them).
 *   hf_json:  a tokenizer.json for Hugging Face tokenizers: BPE model with
 *             the byte-level (bytes_to_unicode) vocabulary and the merges in
 *             rank order, pre-tokenizer Sequence[Split(pattern, Isolated),
 *             ByteLevel(use_regex false)], ByteLevel decoder, specials as
 *             added tokens with ids after the learned ones. The pattern
 *             is written as given (Rust-regex syntax, as Hugging Face
 *             expects); the named ones have no possessive quantifiers, which
 *             tokenizers.js would read as greedy.
 *   config:   quern's JSON: pattern name and regex, token counts, specials
 *             with ids, and the training parameters.
 */
int qn_bpet_write_tiktoken(const struct qn_bpet *t, const char *path, struct qn_err *e);
int qn_bpet_write_hf_json(const struct qn_bpet *t, const char *path, struct qn_err *e);
int qn_bpet_write_config(const struct qn_bpet *t, const char *path, struct qn_err *e);

/* The same documents into a caller-owned buffer (tests, stdout). */
struct qn_buf;
int qn_bpet_tiktoken_buf(const struct qn_bpet *t, struct qn_buf *out);
int qn_bpet_hf_json_buf(const struct qn_bpet *t, struct qn_buf *out);
int qn_bpet_config_buf(const struct qn_bpet *t, struct qn_buf *out);

#endif
