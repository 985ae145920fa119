/*
 * dindex.h - quern-clean's persistent dedup index (--dedup-index DIR): what
 * every earlier run kept, so that tonight's run is deduplicated against all
 * of them and not only against itself.
 *
 * For each kept document the index holds its exact key (the 128-bit hash of
 * its normalized text) and/or its LSH band keys (lib/minhash.h), each with
 * the document's id, plus the parameters those keys were made with. A run
 * whose parameters differ would compute keys that never match the stored
 * ones, silently deduplicating nothing, so the index refuses it.
 *
 * The folder. DIR/index.qdx is the index; DIR/lock is held with
 * flock(LOCK_EX | LOCK_NB) from cn_dindex_open to cn_dindex_close (the
 * holder's pid is written into it, for the message the next run prints), so
 * two runs never commit over each other. cn_dindex_commit writes a whole
 * new DIR/index.qdx through lib/wr.h (a temporary file, fsync, rename, folder
 * fsync): a crash or a full disk leaves the previous index intact. Stale
 * temporary files (DIR/.index.qdx.tmp*) of a crashed run are removed by the
 * next open, under the lock.
 *
 * File format (version 1). Little-endian; every section starts at a multiple
 * of 8 bytes, padding bytes are zero, so a valid file has exactly one
 * encoding of its contents.
 *
 *   offset  size       field
 *   0       8          magic "QNDEDUP1"
 *   8       4          version: 1
 *   12      4          sections: bit 0 exact, bit 1 near; other bits 0
 *   16      4          bands \
 *   20      4          rows   |  near parameters (struct qn_minhash_params):
 *   24      4          ngram  |  1 <= rows <= 64, bands * rows <= 1024,
 *   28      4          flags  |  1 <= ngram <= 32, flags <= 15; all zero
 *   32      8          seed  /   when the near section is absent
 *   40      8          E: exact entries
 *   48      8          N: near entries
 *   56      8          I: ids
 *   64      8          T: bytes of id text
 *   72      256        exact key: 1..255 printable ASCII bytes, then zeros;
 *                      all zero when the exact section is absent
 *   328     16 E       exact hashes: hi, lo (u64 each)
 *           4 E        exact entries' id numbers (u32, < I); pad to 8
 *           8 bands N  near band keys, entry by entry (u64 each)
 *           4 N        near entries' id numbers (u32, < I); pad to 8
 *           4 (I + 1)  id offsets (u32): off[0] = 0, off[I] = T, id i is
 *                      text[off[i] .. off[i+1] - 1) and text[off[i+1] - 1]
 *                      is its NUL; pad to 8
 *           T          id text; pad to 8
 *   end-8   8          xxh3-64 (seed 0) of every byte before it
 *
 * A section that is absent has no entries. Ids are valid UTF-8 without
 * NUL, at most CN_DINDEX_ID_MAX bytes; all id text together is at most
 * 4 GiB - 1 (about 130 million 32-byte ids). A document in both lists (the
 * usual case) stores its id once: an add whose id equals the previous add's
 * id reuses it.
 *
 * Size per document, in the file and in memory alike (the file is loaded
 * into one buffer and used in place: no per-entry allocation): an exact
 * entry is 20 bytes, a near entry 8 * bands + 4 bytes (116 with 14 bands),
 * an id 5 bytes plus its length (37 for quern-ingest's 32 hex digits). A
 * document in both lists with a 32-digit id: 173 bytes, 173 MB a million.
 * Entries added in this run live in growable arrays until the commit (up
 * to twice their size while they grow). Loading checks the size against the
 * header, then the checksum, then every id number, offset and id, so a
 * corrupt file is refused whole ("DIR/index.qdx: offset N: why"), never
 * half loaded. A million near entries (14 bands, 153 MB) load in 0.1 to
 * 0.4 s from the page cache on a busy 2-core VM, most of it the read()
 * itself (the checksum is 25 ms of it).
 *
 * Parameters between runs. A stored section must have exactly this run's
 * parameters. A run that does not use a section (exact_key or p NULL) keeps
 * its entries and commits them unchanged; a run that uses a section the
 * index lacks starts it (it then covers documents from that run on).
 *
 * Ownership: struct cn_dindex is owned by the caller (cn_dindex_open or
 * cn_dindex_parse, then cn_dindex_close, which accepts NULL). Ids and keys
 * of stored entries point into the loaded file and stay valid until the
 * close; those of this run's adds, until the next add. One thread at a time.
 */
#ifndef CN_DINDEX_H
#define CN_DINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

struct qn_buf;
struct qn_err;
struct qn_minhash_params;

#define CN_DINDEX_FILE "index.qdx"
#define CN_DINDEX_VERSION 1
#define CN_DINDEX_KEY_MAX 255  /* bytes of the exact key string */
#define CN_DINDEX_ID_MAX 65536 /* bytes of an id */
#define CN_DINDEX_HEADER 328   /* bytes before the first section */

struct cn_dindex;

/*
 * Opens DIR (created, one level, when missing), locks DIR/lock and loads
 * DIR/index.qdx when it exists. exact_key (e.g. "nfc") is NULL when exact
 * dedup is off, p NULL when near dedup is off. NULL with e filled on any
 * error; *locked (when not NULL) is then 1 only when another process (or
 * another open in this one) holds the lock: "DIR: locked by another
 * quern-clean run (pid N)".
 */
struct cn_dindex *cn_dindex_open(const char *dir, const char *exact_key,
				 const struct qn_minhash_params *p, int *locked, struct qn_err *e);

/*
 * Parses a whole index image buf[0..len) (copied; buf may go after). name
 * is the file named in errors: "name: offset N: why". The result has no
 * folder: it can be read and imaged, not added to or committed.
 */
struct cn_dindex *cn_dindex_parse(const void *buf, size_t len, const char *name, struct qn_err *e);

/* Releases the lock and everything held; uncommitted adds are lost. */
void cn_dindex_close(struct cn_dindex *x);

/*
 * The stored parameters: the exact key (NULL when the index has no exact
 * section) and the near parameters (NULL when it has no near section).
 */
const char *cn_dindex_exact_key(const struct cn_dindex *x);
const struct qn_minhash_params *cn_dindex_near_params(const struct cn_dindex *x);

/* Entries, stored ones first, then this run's adds, each in order. */
size_t cn_dindex_exact_count(const struct cn_dindex *x);
struct qn_hash128 cn_dindex_exact_hash(const struct cn_dindex *x, size_t i);
const char *cn_dindex_exact_id(const struct cn_dindex *x, size_t i);
size_t cn_dindex_near_count(const struct cn_dindex *x);
/* The bands keys of near entry i. */
const uint64_t *cn_dindex_near_keys(const struct cn_dindex *x, size_t i);
const char *cn_dindex_near_id(const struct cn_dindex *x, size_t i);

/*
 * Adds a kept document of this run (in memory until the commit). -1 with e
 * filled when that section is off in this run, the id is not valid UTF-8
 * or longer than CN_DINDEX_ID_MAX, the index is full, or memory ran out.
 * keys are p->bands band keys (qn_minhash_band_key).
 */
int cn_dindex_add_exact(struct cn_dindex *x, struct qn_hash128 h, const char *id, struct qn_err *e);
int cn_dindex_add_near(struct cn_dindex *x, const uint64_t *keys, const char *id, struct qn_err *e);

/*
 * Writes stored and added entries to DIR/index.qdx atomically. On failure
 * the previous file is intact and x unchanged (the commit may be retried).
 */
int cn_dindex_commit(struct cn_dindex *x, struct qn_err *e);

/* Appends the bytes a commit would write to out (tests, fuzzing). */
int cn_dindex_image(const struct cn_dindex *x, struct qn_buf *out, struct qn_err *e);

/* Bytes of memory held (the loaded file, the adds, the struct). */
size_t cn_dindex_bytes(const struct cn_dindex *x);

#endif
