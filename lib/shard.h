/*
 * shard.h - token shards: the directory quern-tokenize writes and
 * quern-train and quern-audit read (DESIGN.md, "Token shards").
 *
 * A shard directory holds manifest.json and shard files named
 * "<split>-NNNNN.qsh" (split "train" or "val", NNNNN from 00000). Each file
 * is self-contained: a header with magic, version, token width, counts and
 * section offsets, and the tokenizer's fingerprint; blocks of tokens (the
 * frequent ids of the file as small codes, prefix varints, zstd), each
 * compressed on its own so that reading document k decompresses only the
 * blocks it covers; a block table with an xxh3-64 of every block; the
 * documents' id hashes and their index (token range, task, label, split,
 * preference-pair link, loss mask; zstd-compressed); the mask spans; the
 * table of frequent ids; and an xxh3-64 of the header and all tables.
 * docs/shards.md is the byte-by-byte reference, with the measurements
 * behind the choices; the code follows it.
 *
 * Documents hold their own tokens only: the end-of-text separator is not
 * stored. The manifest names it, and readers put it in where the consumer
 * wants it (qn_shard_stream_open's sep: after each document as nanoGPT's
 * prepare.py does, or before each as llm.c's scripts do).
 *
 * Loss masks: a document is either unmasked (every token is trained on) or
 * masked, with a list of document-relative spans [start, end) that are
 * trained on; a masked document with no spans trains on nothing. Spans are
 * stored sorted, non-empty and merged (not touching); a mask that covers the
 * whole document is stored as unmasked, so each mask has one encoding.
 *
 * Writing. One qn_shard_writer per split, owned by one thread. Opening one
 * removes DIR/manifest.json first; every shard file goes through lib/wr.h
 * (temporary name, fsync, rename) as soon as it is complete, and
 * qn_shard_dir_commit writes manifest.json last, atomically, after every
 * writer has finished. A crash therefore leaves either no manifest (the
 * directory does not open) or a manifest whose files are all whole. A shard
 * file is closed before a document would take it past max_bytes (computed
 * with zstd's worst case for the tokens not yet compressed), so only a shard
 * holding a single document or a single pair can be larger. The writer
 * keeps the current shard's compressed bytes and index in memory until the
 * file is written (about max_bytes: 48 bytes a document and 8 a span in
 * memory), plus a few arrays of the vocabulary's size.
 *
 * Reading. qn_shard_dir_open checks the manifest and every shard's header
 * (size, fingerprint, counts) against it; a shard's tables are loaded and
 * checked (bounds, trailer checksum) when it is first read, and every block
 * is checked (xxh3, frame size, token ids) each time it is decompressed.
 * qn_shard_dir_verify checks everything, including the SHA-256 of every
 * file, and names the first problem with its file and offset. Readers share
 * nothing: open one handle per thread.
 *
 * Errors are "path: offset N: why" for a damaged shard file and
 * "DIR/manifest.json: why" for the manifest. Everything returned is owned
 * by the caller: qn_shard_writer_free, qn_shard_close, qn_shard_dir_close,
 * qn_shard_stream_close (each accepts NULL).
 */
#ifndef QN_SHARD_H
#define QN_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct qn_err;

#define QN_SHARD_MAGIC "QNSHARD1"
#define QN_SHARD_VERSION 1
#define QN_SHARD_HEADER 160 /* bytes before the first block */
#define QN_SHARD_MANIFEST "manifest.json"
#define QN_SHARD_VOCAB_MAX (1u << 22) /* token ids below 4,194,304 */
#define QN_SHARD_BLOCK_DEFAULT 131072 /* tokens a block; see docs/shards.md */
#define QN_SHARD_BLOCK_MAX (1u << 20)
#define QN_SHARD_LEVEL_DEFAULT 3	      /* zstd level; see docs/shards.md */
#define QN_SHARD_BYTES_DEFAULT (128ull << 20) /* max bytes a shard file */
#define QN_SHARD_BYTES_MIN 4096
#define QN_SHARD_FILES_MAX 100000     /* shard files a split: 00000..99999 */
#define QN_SHARD_PROMOTED_MAX 1024    /* rank-table entries a shard */
#define QN_SHARD_DOC_MAX (1u << 28)   /* tokens a document (writer and reader) */
#define QN_SHARD_LLMC_MAX 2147483647u /* llm.c's int32 token count */

enum qn_shard_split { QN_SHARD_TRAIN = 0, QN_SHARD_VAL = 1, QN_SHARD_NSPLITS = 2 };
enum qn_shard_role { QN_SHARD_SINGLE = 0, QN_SHARD_CHOSEN = 1, QN_SHARD_REJECTED = 2 };
/* Where qn_shard_stream puts the end-of-text token. */
enum qn_shard_sep { QN_SHARD_SEP_NONE = 0, QN_SHARD_SEP_AFTER = 1, QN_SHARD_SEP_BEFORE = 2 };

/* "train" or "val"; NULL for anything else. */
const char *qn_shard_split_name(int split);

/* A document-relative token range [start, end) that is trained on. */
struct qn_shard_span {
	uint32_t start, end;
};

/* The 64-bit hash a document id is stored as: xxh3-64, seed 0, of its bytes. */
uint64_t qn_shard_id_hash(const char *id, size_t len);

/* ---- writing ---- */

struct qn_shard_opts {
	const char *fingerprint; /* the tokenizer's: 64 hex digits */
	uint32_t vocab_size;	 /* token ids are below it; 1..QN_SHARD_VOCAB_MAX */
	unsigned width;		 /* 16 or 32; 0: 16 when vocab_size <= 65536 */
	uint32_t block_tokens;	 /* 0: QN_SHARD_BLOCK_DEFAULT */
	int level;		 /* zstd level (negative: fast); 0: QN_SHARD_LEVEL_DEFAULT */
	uint64_t max_bytes;	 /* per shard file; 0: QN_SHARD_BYTES_DEFAULT */
};

struct qn_shard_doc {
	const uint32_t *ids;
	size_t n;
	uint16_t task;			   /* index into qn_shard_meta.tasks */
	int32_t label;			   /* index into qn_shard_meta.labels; -1: none */
	uint64_t id_hash;		   /* qn_shard_id_hash of the document id */
	int masked;			   /* 0: every token trained; 1: only the spans */
	const struct qn_shard_span *spans; /* any order; may overlap; empty ones dropped */
	size_t nspans;
};

struct qn_shard_writer;

/*
 * Starts writing split (QN_SHARD_TRAIN or QN_SHARD_VAL) into dir (created,
 * one level, when missing). Removes dir/manifest.json and the split's stale
 * temporary files. NULL with e filled on bad options or I/O errors.
 */
struct qn_shard_writer *qn_shard_writer_open(const char *dir, int split,
					     const struct qn_shard_opts *o, struct qn_err *e);
/*
 * Appends a document; rolls to the next shard file first when this one
 * would pass max_bytes. -1 with e filled: a bad document (id out of the
 * vocabulary, a span past the end, a label below -1, more than
 * QN_SHARD_DOC_MAX tokens; the writer goes on, nothing was added) or an I/O
 * error (the writer is then failed: every later call fails).
 */
int qn_shard_writer_add(struct qn_shard_writer *w, const struct qn_shard_doc *d, struct qn_err *e);
/* A preference pair: both in the same shard file, adjacent, linked. */
int qn_shard_writer_add_pair(struct qn_shard_writer *w, const struct qn_shard_doc *chosen,
			     const struct qn_shard_doc *rejected, struct qn_err *e);
/* Writes the last shard file. Adds fail afterwards. */
int qn_shard_writer_close(struct qn_shard_writer *w, struct qn_err *e);
/* Frees w; shard files already written stay (no manifest names them yet). */
void qn_shard_writer_free(struct qn_shard_writer *w);

/* Documents and tokens written so far (all shard files). */
uint64_t qn_shard_writer_docs(const struct qn_shard_writer *w);
uint64_t qn_shard_writer_tokens(const struct qn_shard_writer *w);

struct qn_shard_special {
	const char *name; /* "<|endoftext|>" */
	uint32_t id;
};

/* What the manifest records besides the shards. */
struct qn_shard_meta {
	int64_t eot;		  /* end-of-text token id; -1: none */
	const char *const *tasks; /* names, by task id; NULL/0: {"default"} */
	size_t ntasks;
	const char *const *labels; /* names, by label id */
	size_t nlabels;
	const struct qn_shard_special *specials;
	size_t nspecials;
};

/*
 * Closes the writers that are still open and writes dir/manifest.json
 * atomically: the last step, so a manifest only ever names whole files.
 * The writers (at most one a split, all with the same options and dir)
 * are not freed. Then removes "<split>-NNNNN.qsh" files the manifest does
 * not name (left by an earlier, larger run). Every task and label id used
 * must have a name.
 */
int qn_shard_dir_commit(const char *dir, struct qn_shard_writer *const *w, size_t nw,
			const struct qn_shard_meta *m, struct qn_err *e);

/* ---- reading one shard file ---- */

struct qn_shard_info {
	unsigned width;
	uint32_t vocab_size;
	uint32_t block_tokens;
	int split;
	uint32_t index; /* NNNNN of the file name */
	uint64_t tokens, docs, blocks, spans;
	uint32_t promoted; /* rank-table entries */
	uint64_t bytes;	   /* file size */
	char fingerprint[65];
};

/* A document as read. Pointers are valid until the next read on the handle. */
struct qn_shard_docview {
	uint64_t index; /* in the shard, or in the split for qn_shard_dir_read */
	const uint32_t *tokens;
	uint32_t n;
	uint16_t task;
	int32_t label;
	uint64_t id_hash;
	int split;
	int role;     /* enum qn_shard_role */
	int64_t pair; /* index of the other document of the pair; -1 */
	int masked;
	const struct qn_shard_span *spans;
	uint32_t nspans;
};

struct qn_shard;

/* Opens one shard file: checks the header, loads and checks the tables. */
struct qn_shard *qn_shard_open(const char *path, struct qn_err *e);
/* The same over a whole file image buf[0..len) (copied); name for errors. */
struct qn_shard *qn_shard_parse_mem(const void *buf, size_t len, const char *name,
				    struct qn_err *e);
void qn_shard_close(struct qn_shard *s);
const struct qn_shard_info *qn_shard_info(const struct qn_shard *s);
/* Largest document the handle assembles (default QN_SHARD_DOC_MAX tokens). */
void qn_shard_set_doc_max(struct qn_shard *s, uint32_t tokens);
/* Document k (< docs): decompresses only the blocks it covers. */
int qn_shard_read(struct qn_shard *s, uint64_t k, struct qn_shard_docview *v, struct qn_err *e);
/* Decompresses and checks every block. */
int qn_shard_check_blocks(struct qn_shard *s, struct qn_err *e);

/* ---- reading a directory ---- */

struct qn_shard_dir_info {
	char fingerprint[65];
	uint32_t vocab_size;
	unsigned width;
	uint32_t block_tokens;
	int level;
	int64_t eot; /* -1: none */
	size_t ntasks, nlabels, nspecials;
	char **tasks, **labels;
	struct qn_shard_special *specials;
};

struct qn_shard_dir;

/* Reads dir/manifest.json and checks every shard file's size and header. */
struct qn_shard_dir *qn_shard_dir_open(const char *dir, struct qn_err *e);
void qn_shard_dir_close(struct qn_shard_dir *d);
const struct qn_shard_dir_info *qn_shard_dir_info(const struct qn_shard_dir *d);
uint64_t qn_shard_dir_docs(const struct qn_shard_dir *d, int split);
uint64_t qn_shard_dir_tokens(const struct qn_shard_dir *d, int split);
size_t qn_shard_dir_nfiles(const struct qn_shard_dir *d, int split);
/* Path of the i-th file of split (valid until the close). */
const char *qn_shard_dir_path(const struct qn_shard_dir *d, int split, size_t i);
/* Document k of split (documents numbered across its files, in order). */
int qn_shard_dir_read(struct qn_shard_dir *d, int split, uint64_t k, struct qn_shard_docview *v,
		      struct qn_err *e);

/*
 * Checks everything: the manifest, every file's size and header, tables,
 * trailer checksum, every block (checksum, frame, token ids), the counts
 * per file, split and task, task and label ids, then every file's SHA-256.
 * The first problem is reported with its file and, where it has one, its
 * offset.
 */
int qn_shard_dir_verify(const char *dir, struct qn_err *e);

/*
 * The tokens of a split in order, block by block into the caller's buffer,
 * with the manifest's end-of-text token after or before every document
 * (sep; QN_SHARD_SEP_NONE: plain concatenation). d must outlive the stream.
 */
struct qn_shard_stream;
struct qn_shard_stream *qn_shard_stream_open(struct qn_shard_dir *d, int split, int sep,
					     struct qn_err *e);
/* Fills buf with up to cap tokens; the count, 0 at the end, -1 on error. */
ssize_t qn_shard_stream_read(struct qn_shard_stream *st, uint32_t *buf, size_t cap,
			     struct qn_err *e);
void qn_shard_stream_close(struct qn_shard_stream *st);

/*
 * Exporters (to path, atomically; "-" is stdout, refused when a terminal).
 *
 * nanoGPT (data/openwebtext/prepare.py): a flat file of uint16
 * little-endian tokens, no header, each document followed by end-of-text.
 * Needs width 16.
 *
 * llm.c (dev/data/data_common.py write_datafile, fineweb.py): a header of
 * 256 int32 (magic, version, token count, zeros), then the tokens, each
 * document preceded by end-of-text. Width 16: magic 20240520, version 1,
 * uint16 tokens ("gpt-2"); width 32: magic 20240801, version 7, uint32
 * tokens ("llama-3"). At most QN_SHARD_LLMC_MAX tokens.
 *
 * Both need the manifest's end-of-text token.
 */
int qn_shard_export_nanogpt(struct qn_shard_dir *d, int split, const char *path, struct qn_err *e);
int qn_shard_export_llmc(struct qn_shard_dir *d, int split, const char *path, struct qn_err *e);

#endif
