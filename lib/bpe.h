/*
 * bpe.h - the byte-level BPE tokenizer that quern-tokenize, quern-train and
 * quern-audit share: loads OpenAI .tiktoken rank files and Hugging Face
 * tokenizer.json files, and encodes bytes to token ids (and back) exactly
 * as tiktoken and Hugging Face tokenizers do. docs/tokenizers.md tells the
 * whole story; this is the contract.
 *
 * A tokenizer (struct qn_bpe) is loaded once and is read-only afterwards:
 * any number of threads may encode and decode with it at the same time, each
 * with its own struct qn_bpe_scratch (PCRE2 match data, merge arrays) and its
 * own output. qn_bpe_free releases it; free the scratches first.
 *
 * Loading.
 *   .tiktoken  one token a line: the token's bytes in standard base64, one
 *              space, its rank (decimal), which is also its id. Empty lines
 *              are skipped, a trailing CR is allowed. Ranks and tokens must
 *              not repeat, every one of the 256 single bytes must be a token,
 *              ids are below QN_BPE_MAX_ID. A rank file carries no pattern or
 *              special tokens: they come from a named encoding
 *              (qn_bpe_spec_named: r50k_base, cl100k_base, o200k_base, with
 *              tiktoken's exact split patterns and special-token ids; a named
 *              encoding also checks the token count) or from the caller's
 *              struct qn_bpe_spec. Errors name the file and line:
 *              "cl100k_base.tiktoken:1234: bad base64".
 *   tokenizer.json
 *              Hugging Face byte-level BPE: model.type "BPE", model.vocab
 *              (strings in GPT-2's bytes_to_unicode alphabet), model.merges
 *              ("a b" strings or ["a", "b"] pairs), model.ignore_merges,
 *              added_tokens, a pre_tokenizer that is ByteLevel, Split (a
 *              Regex or String pattern, behavior Isolated, not inverted) or a
 *              Sequence of those (at most QN_BPE_MAX_STAGES), no normalizer,
 *              a ByteLevel decoder (or none). The post_processor is ignored:
 *              ids are those of encode(text, add_special_tokens=False).
 *              Anything else is refused, never guessed. Errors name the
 *              JSON path: "tokenizer.json: model.merges[17]: unknown token 'xy'".
 *
 * Encoding (qn_bpe_encode) follows tiktoken's encode:
 *   1. With QN_BPE_ALLOW_SPECIAL, the text is cut at special tokens (the
 *      longest at the leftmost position); each becomes its id. Without it a
 *      special token's text is ordinary text. For tokenizer.json every
 *      added token counts as special.
 *   2. Each segment between special tokens is split into pieces by the
 *      pattern: the matches of a left-to-right search (tiktoken's find_iter;
 *      lookahead sees the end of the segment, not the text after it). Bytes
 *      that no match covers (only invalid UTF-8 with the named patterns) are
 *      a piece of their own. Patterns are written in Rust-regex syntax and run
 *      with PCRE2 (JIT, UTF, UCP, MATCH_INVALID_UTF, so any bytes are safe);
 *      \s and \S are rewritten to Unicode White_Space as Rust defines it.
 *   3. Each piece is merged: a piece that is itself a token becomes that id
 *      (tiktoken always; tokenizer.json with model.ignore_merges); otherwise
 *      its bytes start as single-byte tokens and the adjacent pair with the
 *      lowest rank is merged, the leftmost when ranks tie, until no pair has
 *      a rank. A pair's rank is the id of the token its bytes concatenate to
 *      (tiktoken), or its index in model.merges (tokenizer.json). Pieces of up
 *      to QN_BPE_SHORT bytes use tiktoken's loop on a small array; up to
 *      QN_BPE_LONG a linked list and a heap; longer ones a bucket per rank
 *      swept left to right (O(n + ranks) for trained vocabularies, O(n log n)
 *      at worst). All three give the same ids, whatever the piece.
 *   With tokenizer.json, an added token with lstrip/rstrip also takes the
 *   White_Space characters before/after it, as Hugging Face does.
 * decode(encode(x)) == x for all bytes x, except where Hugging Face changes
 * the text (a ByteLevel add_prefix_space; lstrip/rstrip): qn_bpe_lossless.
 *
 * Memory. A scratch grows with the longest piece it merged (30 to 40 bytes
 * per byte of it while it merges) and gives back what is over
 * QN_BPE_SCRATCH_KEEP after each call; nothing is cached across calls.
 * Output arrays have a maximum.
 *
 * Fingerprint: 64 hex digits, SHA-256 over a canonical text of the mode,
 * patterns, tokens, merges and special tokens (docs/tokenizers.md defines
 * it byte by byte); equal fingerprints mean equal encodings. Token shards
 * carry it.
 */
#ifndef QN_BPE_H
#define QN_BPE_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;
struct qn_err;

#define QN_BPE_MAX_ID 2000000u	       /* ids are below this */
#define QN_BPE_MAX_STAGES 4	       /* pre-tokenizer stages of a tokenizer.json */
#define QN_BPE_SHORT 64		       /* pieces up to this many bytes merge in an array */
#define QN_BPE_LONG 65536	       /* longer pieces merge by rank buckets, not a heap */
#define QN_BPE_SCRATCH_KEEP (1u << 20) /* piece bytes of merge scratch kept between calls */
#define QN_BPE_MAX_FILE (1024ul << 20) /* largest tokenizer file read */
#define QN_BPE_NONE UINT32_MAX

/* Flags of qn_bpe_encode and qn_bpe_encode_piece. */
enum {
	QN_BPE_ALLOW_SPECIAL = 1, /* special-token text becomes the special id */
	QN_BPE_HEAP_ONLY = 2,	  /* tests: every piece through the heap merge */
	QN_BPE_SHORT_ONLY = 4,	  /* tests: every piece through the array merge (quadratic) */
	QN_BPE_BUCKETS_ONLY = 8,  /* tests: every piece through the rank-bucket merge */
};

struct qn_bpe_special {
	const char *name; /* the token's text, e.g. "<|endoftext|>" */
	uint32_t id;
};

/* What a rank file does not say: the split pattern and the special tokens. */
struct qn_bpe_spec {
	const char *name;    /* encoding name, e.g. "cl100k_base" (may be NULL) */
	const char *pattern; /* Rust-regex syntax, as tiktoken publishes it */
	const struct qn_bpe_special *specials;
	size_t n_specials;
	uint32_t n_tokens; /* ranked tokens the file must hold; 0: any */
};

/* r50k_base, cl100k_base or o200k_base (also "gpt2" = r50k_base); NULL otherwise. */
const struct qn_bpe_spec *qn_bpe_spec_named(const char *name);

struct qn_bpe;

/* Reads a .tiktoken file; NULL with e filled ("path:line: why"). */
struct qn_bpe *qn_bpe_load_tiktoken(const char *path, const struct qn_bpe_spec *spec,
				    struct qn_err *e);
/* The same from memory; fname names the data in messages. */
struct qn_bpe *qn_bpe_parse_tiktoken(const void *data, size_t len, const char *fname,
				     const struct qn_bpe_spec *spec, struct qn_err *e);
/* Reads a Hugging Face tokenizer.json; NULL with e filled ("path: json.path: why"). */
struct qn_bpe *qn_bpe_load_hf(const char *path, struct qn_err *e);
struct qn_bpe *qn_bpe_parse_hf(const void *data, size_t len, const char *fname, struct qn_err *e);
/*
 * Builds a rank tokenizer from memory: tokens[i] (lens[i] bytes) has rank
 * and id i, as if read from a .tiktoken file (same checks; messages name
 * "token i"). For trainers and tests.
 */
struct qn_bpe *qn_bpe_from_tokens(const unsigned char *const *tokens, const size_t *lens, size_t n,
				  const struct qn_bpe_spec *spec, struct qn_err *e);
/*
 * A tokenizer as the tools name it (-t): a directory (its tokenizer.json,
 * else its one *.tiktoken file), FILE.tiktoken (the encoding from encoding,
 * or else the file name), or any other file as a tokenizer.json. NULL with
 * e filled; a rank file whose encoding is unknown asks for --encoding.
 */
struct qn_bpe *qn_bpe_load_spec(const char *arg, const char *encoding, struct qn_err *e);
void qn_bpe_free(struct qn_bpe *b);

/* One more than the largest id (ranked, merged or special). */
uint32_t qn_bpe_vocab_size(const struct qn_bpe *b);
/* The bytes of token id (specials too): 0, or -1 when no token has that id. */
int qn_bpe_token(const struct qn_bpe *b, uint32_t id, const unsigned char **bytes, size_t *len);
/* The token whose bytes are exactly these (not a special), or QN_BPE_NONE. */
uint32_t qn_bpe_lookup(const struct qn_bpe *b, const void *bytes, size_t len);
size_t qn_bpe_special_count(const struct qn_bpe *b);
/* The i-th special token, by increasing id. */
void qn_bpe_special_at(const struct qn_bpe *b, size_t i, const char **name, size_t *len,
		       uint32_t *id);
/* The id of the special token named name (len bytes), or QN_BPE_NONE. */
uint32_t qn_bpe_special_id(const struct qn_bpe *b, const char *name, size_t len);
int qn_bpe_is_special(const struct qn_bpe *b, uint32_t id);
/*
 * 1 when decode(encode(x, flags)) == x for every x: always, unless a
 * ByteLevel stage adds a prefix space, or (with QN_BPE_ALLOW_SPECIAL) a
 * special token strips spaces or decodes to other bytes than its text.
 */
int qn_bpe_lossless(const struct qn_bpe *b, unsigned flags);
/* 64 lowercase hex digits. */
const char *qn_bpe_fingerprint(const struct qn_bpe *b);
/* The encoding name ("cl100k_base"), or the file's name for a tokenizer.json. */
const char *qn_bpe_name(const struct qn_bpe *b);

/* Per-thread state for encoding. */
struct qn_bpe_scratch;

struct qn_bpe_scratch *qn_bpe_scratch_new(const struct qn_bpe *b);
void qn_bpe_scratch_free(struct qn_bpe_scratch *s);

/* A caller-owned, growable array of ids with a maximum length. */
struct qn_bpe_ids {
	uint32_t *v;
	size_t n, cap, max;
};

void qn_bpe_ids_init(struct qn_bpe_ids *ids, size_t max);
void qn_bpe_ids_release(struct qn_bpe_ids *ids);
static inline void qn_bpe_ids_reset(struct qn_bpe_ids *ids)
{
	ids->n = 0;
}

/*
 * Appends the ids of text[0..len) to out. Returns 0, or -1 with e filled
 * when out reached its maximum, memory ran out or PCRE2 failed (out then
 * holds a prefix of the ids).
 */
int qn_bpe_encode(const struct qn_bpe *b, struct qn_bpe_scratch *s, const void *text, size_t len,
		  unsigned flags, struct qn_bpe_ids *out, struct qn_err *e);
/* Step 3 alone: appends the ids of one piece (no pattern, no specials). */
int qn_bpe_encode_piece(const struct qn_bpe *b, struct qn_bpe_scratch *s, const void *piece,
			size_t len, unsigned flags, struct qn_bpe_ids *out, struct qn_err *e);

/*
 * Steps 1 and 2 alone: calls fn for each piece in order (special is the
 * special token's id for a special token, QN_BPE_NONE for a piece). A piece
 * may lie in s's memory when a prefix space was added. fn returning non-zero
 * stops the walk and is returned.
 */
typedef int (*qn_bpe_piece_fn)(void *ctx, const unsigned char *piece, size_t len, uint32_t special);
int qn_bpe_split(const struct qn_bpe *b, struct qn_bpe_scratch *s, const void *text, size_t len,
		 unsigned flags, qn_bpe_piece_fn fn, void *ctx, struct qn_err *e);

/* Appends the bytes of ids[0..n) to out; -1 with e filled for an unknown id
 * (naming it and its index) or when out reached its maximum. */
int qn_bpe_decode(const struct qn_bpe *b, const uint32_t *ids, size_t n, struct qn_buf *out,
		  struct qn_err *e);

#endif
