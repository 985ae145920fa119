/*
 * rd.h - buffered input streams with transparent decompression.
 *
 * qn_rd_open reads a path, or stdin for "-" / NULL. The first bytes decide
 * the codec: zstd and gzip streams (magic 28 B5 2F FD, 1F 8B) are
 * decompressed on the fly, everything else passes through, so "x.zst" and a
 * compressed stdin both just work. Optionally the raw (on-disk) bytes are
 * SHA-256 hashed as they stream past, so manifests never re-read an input.
 *
 * The stream is owned by the caller: qn_rd_open / qn_rd_close.
 */
#ifndef QN_RD_H
#define QN_RD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct qn_buf;
struct qn_err;
struct qn_rd;

enum {
	QN_RD_SHA256 = 1, /* hash the raw bytes; see qn_rd_sha256 */
	QN_RD_RAW = 2,    /* never decompress */
};

/* Results of qn_rd_line / qn_rd_slurp besides 1 (data), 0 (EOF), -1 (error). */
#define QN_RD_TOOLONG (-2)

struct qn_rd *qn_rd_open(const char *path, int flags, struct qn_err *e);
/* Wraps an open descriptor (not closed by qn_rd_close). */
struct qn_rd *qn_rd_fdopen(int fd, const char *name, int flags, struct qn_err *e);
void qn_rd_close(struct qn_rd *r);

/*
 * Reads at most max_raw raw bytes from where the descriptor stands, then
 * reports end of input (for a byte range of a file: lseek, then limit).
 * Call before the first read.
 */
void qn_rd_limit(struct qn_rd *r, uint64_t max_raw);

/* Reads up to n decoded bytes; 0 at end; -1 with e filled. */
ssize_t qn_rd_read(struct qn_rd *r, void *buf, size_t n, struct qn_err *e);

/*
 * Reads one line (without its '\n') into line, replacing its contents.
 * Returns 1, 0 at end of input, -1 on error, or QN_RD_TOOLONG when the line
 * is longer than max: the rest of that line is consumed and dropped, so the
 * caller can report it and go on with the next.
 */
int qn_rd_line(struct qn_rd *r, struct qn_buf *line, size_t max, struct qn_err *e);

/* Appends the rest of the stream to out; QN_RD_TOOLONG past max bytes. */
int qn_rd_slurp(struct qn_rd *r, struct qn_buf *out, size_t max, struct qn_err *e);

/*
 * Decoded bytes available without consuming them (reads if none are
 * buffered); *n gets their count, which is 0 at end of input. The bytes
 * stay valid until the next read. -1 on error.
 */
int qn_rd_peek(struct qn_rd *r, const char **p, size_t *n, struct qn_err *e);

const char *qn_rd_name(const struct qn_rd *r);
/* Codec in use: "none", "zstd" or "gzip" (known after the first read). */
const char *qn_rd_codec(const struct qn_rd *r);
/* Raw bytes consumed so far (for progress and manifests). */
uint64_t qn_rd_raw_bytes(const struct qn_rd *r);
/*
 * SHA-256 of all raw bytes, reading the stream to its end first if needed.
 * Needs QN_RD_SHA256. -1 on read error.
 */
int qn_rd_sha256(struct qn_rd *r, char hex[65], struct qn_err *e);

#endif
