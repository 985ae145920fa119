/*
 * wr.h - atomic, optionally compressed output files.
 *
 * qn_wr_open writes to a temporary file beside the target; qn_wr_commit
 * flushes, fsyncs, renames it into place and fsyncs the folder, so a crash or
 * a full disk never leaves a half-written file that looks whole, and the
 * previous version stays intact until the new one is complete. "-" or NULL
 * means stdout; a path that exists and is not a regular file (a FIFO,
 * /dev/full, /dev/stdout) is written directly. Paths ending in ".zst" are
 * zstd-compressed (QN_WR_ZSTD forces it). Compressed output refuses a
 * terminal. The size and SHA-256 of the bytes written are reported at commit.
 *
 * The writer is owned by the caller and freed by qn_wr_commit or
 * qn_wr_abort, exactly one of which must be called.
 */
#ifndef QN_WR_H
#define QN_WR_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;
struct qn_wr;

enum {
	QN_WR_ZSTD = 1,  /* compress even without a .zst suffix */
	QN_WR_PLAIN = 2, /* never compress */
};

struct qn_wr_info {
	uint64_t bytes;  /* bytes as stored (compressed size for .zst) */
	char sha256[65]; /* of the stored bytes */
};

struct qn_wr *qn_wr_open(const char *path, int flags, struct qn_err *e);
int qn_wr_write(struct qn_wr *w, const void *p, size_t n, struct qn_err *e);
/*
 * Flushes and fsyncs everything written so far and fills info, without
 * renaming: the caller can record info durably (a state database) before
 * the output appears. Writing after finish is an error.
 */
int qn_wr_finish(struct qn_wr *w, struct qn_wr_info *info, struct qn_err *e);
/* Finishes if needed, renames into place; frees w, also on failure. */
int qn_wr_commit(struct qn_wr *w, struct qn_wr_info *info, struct qn_err *e);
void qn_wr_abort(struct qn_wr *w);
/* Display name: the target path, or "stdout". */
const char *qn_wr_name(const struct qn_wr *w);

/* Writes a whole buffer to path atomically (for small files: manifests). */
int qn_write_file_atomic(const char *path, const void *p, size_t n, struct qn_err *e);

#endif
