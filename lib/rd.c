/* rd.c - see rd.h. */
#include "rd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "buf.h"
#include "err.h"
#include "hash.h"

#define RAW_SIZE (1 << 16) /* under malloc's mmap threshold: reused, no page faults */
#define OUT_SIZE RAW_SIZE

enum codec { C_UNKNOWN, C_NONE, C_ZSTD, C_GZIP };

struct qn_rd {
	int fd;
	int own_fd;
	int flags;
	char *name;
	enum codec codec;
	unsigned char *raw;
	size_t raw_len, raw_pos;
	int raw_eof;
	uint64_t raw_total;
	uint64_t limit; /* raw bytes to read at most (qn_rd_limit) */
	struct qn_sha256 sha;
	char sha_hex[65];
	int sha_done;
	ZSTD_DCtx *zd;
	z_stream gz;
	int gz_init;
	int dec_done; /* compressed stream ended cleanly and input is exhausted */
	unsigned char *out;
	size_t out_len, out_pos;
};

static struct qn_rd *rd_new(int fd, int own, const char *name, int flags, struct qn_err *e)
{
	struct qn_rd *r = calloc(1, sizeof *r);

	if (!r || !(r->raw = malloc(RAW_SIZE)) || !(r->out = malloc(OUT_SIZE)) ||
	    !(r->name = strdup(name))) {
		if (r) {
			free(r->raw);
			free(r->out);
			free(r);
		}
		if (own)
			close(fd);
		qn_errf(e, "cannot read '%s': out of memory", name);
		return NULL;
	}
	r->fd = fd;
	r->own_fd = own;
	r->limit = UINT64_MAX;
	r->flags = flags;
	if ((flags & QN_RD_SHA256) && qn_sha256_init(&r->sha) < 0) {
		qn_rd_close(r);
		qn_errf(e, "cannot hash '%s': out of memory", name);
		return NULL;
	}
	return r;
}

struct qn_rd *qn_rd_open(const char *path, int flags, struct qn_err *e)
{
	int fd;

	if (!path || !strcmp(path, "-"))
		return qn_rd_fdopen(0, "-", flags, e);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		qn_errno(e, errno, "cannot open '%s'", path);
		return NULL;
	}
	return rd_new(fd, 1, path, flags, e);
}

struct qn_rd *qn_rd_fdopen(int fd, const char *name, int flags, struct qn_err *e)
{
	return rd_new(fd, 0, name, flags, e);
}

void qn_rd_close(struct qn_rd *r)
{
	if (!r)
		return;
	if (r->own_fd)
		close(r->fd);
	if (r->zd)
		ZSTD_freeDCtx(r->zd);
	if (r->gz_init)
		inflateEnd(&r->gz);
	qn_sha256_release(&r->sha);
	free(r->raw);
	free(r->out);
	free(r->name);
	free(r);
}

const char *qn_rd_name(const struct qn_rd *r) { return r->name; }
uint64_t qn_rd_raw_bytes(const struct qn_rd *r) { return r->raw_total; }

const char *qn_rd_codec(const struct qn_rd *r)
{
	return r->codec == C_ZSTD ? "zstd" : r->codec == C_GZIP ? "gzip" : "none";
}

void qn_rd_limit(struct qn_rd *r, uint64_t max_raw) { r->limit = max_raw; }

/* At most n, and no more than the limit leaves (0: read() returns 0, EOF). */
static size_t raw_want(const struct qn_rd *r, size_t n)
{
	uint64_t left = r->limit - r->raw_total;
	return left < n ? (size_t)left : n;
}

/* Refills the raw buffer once it is fully consumed; 0 at EOF, -1 on error. */
static int raw_fill(struct qn_rd *r, struct qn_err *e)
{
	ssize_t n;

	if (r->raw_pos < r->raw_len)
		return 1;
	if (r->raw_eof)
		return 0;
	for (;;) {
		n = read(r->fd, r->raw, raw_want(r, RAW_SIZE));
		if (n >= 0)
			break;
		if (errno != EINTR)
			return qn_errno(e, errno, "cannot read '%s'", r->name);
	}
	r->raw_pos = 0;
	r->raw_len = (size_t)n;
	if (!n) {
		r->raw_eof = 1;
		return 0;
	}
	r->raw_total += (uint64_t)n;
	if (r->flags & QN_RD_SHA256)
		qn_sha256_update(&r->sha, r->raw, (size_t)n);
	return 1;
}

static int sniff(struct qn_rd *r, struct qn_err *e)
{
	int rc = raw_fill(r, e);

	if (rc < 0)
		return -1;
	/* A magic split across reads only happens on pipes delivering 1-3 bytes. */
	while (rc > 0 && r->raw_len < 4 && !r->raw_eof) {
		ssize_t n = read(r->fd, r->raw + r->raw_len, raw_want(r, RAW_SIZE - r->raw_len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qn_errno(e, errno, "cannot read '%s'", r->name);
		if (!n) {
			r->raw_eof = 1;
			break;
		}
		if (r->flags & QN_RD_SHA256)
			qn_sha256_update(&r->sha, r->raw + r->raw_len, (size_t)n);
		r->raw_len += (size_t)n;
		r->raw_total += (uint64_t)n;
	}
	r->codec = C_NONE;
	if (r->flags & QN_RD_RAW)
		return 0;
	if (r->raw_len >= 4 && !memcmp(r->raw, "\x28\xB5\x2F\xFD", 4)) {
		r->codec = C_ZSTD;
		r->zd = ZSTD_createDCtx();
		if (!r->zd)
			return qn_errf(e, "cannot read '%s': out of memory", r->name);
	} else if (r->raw_len >= 2 && r->raw[0] == 0x1F && r->raw[1] == 0x8B) {
		r->codec = C_GZIP;
		if (inflateInit2(&r->gz, 15 + 32) != Z_OK)
			return qn_errf(e, "cannot read '%s': out of memory", r->name);
		r->gz_init = 1;
	}
	return 0;
}

/* Produces more decoded bytes into r->out; 0 at the end, -1 on error. */
static int decode_more(struct qn_rd *r, struct qn_err *e)
{
	int rc;

	r->out_pos = r->out_len = 0;
	if (r->codec == C_UNKNOWN && sniff(r, e) < 0)
		return -1;
	if (r->codec == C_NONE) {
		rc = raw_fill(r, e);
		if (rc <= 0)
			return rc;
		/* Both buffers have one size: hand the raw bytes over by swapping. */
		unsigned char *t = r->out;
		r->out = r->raw;
		r->raw = t;
		r->out_pos = r->raw_pos;
		r->out_len = r->raw_len;
		r->raw_pos = r->raw_len = 0;
		return 1;
	}
	while (r->out_len == 0) {
		rc = raw_fill(r, e);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			if (!r->dec_done)
				return qn_errf(e, "cannot read '%s': truncated %s stream",
					       r->name, qn_rd_codec(r));
			return 0;
		}
		if (r->codec == C_ZSTD) {
			ZSTD_inBuffer in = {r->raw, r->raw_len, r->raw_pos};
			ZSTD_outBuffer out = {r->out, OUT_SIZE, 0};
			size_t z = ZSTD_decompressStream(r->zd, &out, &in);
			if (ZSTD_isError(z))
				return qn_errf(e, "cannot read '%s': zstd: %s", r->name,
					       ZSTD_getErrorName(z));
			r->raw_pos = in.pos;
			r->out_len = out.pos;
			r->dec_done = z == 0;
		} else {
			r->gz.next_in = r->raw + r->raw_pos;
			r->gz.avail_in = (uInt)(r->raw_len - r->raw_pos);
			r->gz.next_out = r->out;
			r->gz.avail_out = OUT_SIZE;
			int z = inflate(&r->gz, Z_NO_FLUSH);
			if (z != Z_OK && z != Z_STREAM_END && z != Z_BUF_ERROR)
				return qn_errf(e, "cannot read '%s': gzip: %s", r->name,
					       r->gz.msg ? r->gz.msg : "corrupt stream");
			r->raw_pos = r->raw_len - r->gz.avail_in;
			r->out_len = OUT_SIZE - r->gz.avail_out;
			r->dec_done = z == Z_STREAM_END;
			if (z == Z_STREAM_END)
				inflateReset(&r->gz); /* concatenated members */
		}
	}
	return 1;
}

ssize_t qn_rd_read(struct qn_rd *r, void *buf, size_t n, struct qn_err *e)
{
	size_t got = 0;

	while (got < n) {
		if (r->out_pos == r->out_len) {
			int rc = decode_more(r, e);
			if (rc < 0)
				return -1;
			if (!rc)
				break;
		}
		size_t k = r->out_len - r->out_pos;
		if (k > n - got)
			k = n - got;
		memcpy((char *)buf + got, r->out + r->out_pos, k);
		r->out_pos += k;
		got += k;
	}
	return (ssize_t)got;
}

int qn_rd_line(struct qn_rd *r, struct qn_buf *line, size_t max, struct qn_err *e)
{
	int toolong = 0, any = 0;

	qn_buf_reset(line);
	for (;;) {
		if (r->out_pos == r->out_len) {
			int rc = decode_more(r, e);
			if (rc < 0)
				return -1;
			if (!rc)
				return toolong ? QN_RD_TOOLONG : any;
		}
		any = 1;
		const unsigned char *p = r->out + r->out_pos;
		size_t avail = r->out_len - r->out_pos;
		const unsigned char *nl = memchr(p, '\n', avail);
		size_t k = nl ? (size_t)(nl - p) : avail;
		if (!toolong) {
			if (line->len + k > max) {
				toolong = 1;
				qn_buf_reset(line);
			} else if (qn_buf_add(line, p, k) < 0) {
				return qn_errf(e, "cannot read '%s': out of memory", r->name);
			}
		}
		r->out_pos += k + (nl ? 1 : 0);
		if (nl)
			return toolong ? QN_RD_TOOLONG : 1;
	}
}

int qn_rd_slurp(struct qn_rd *r, struct qn_buf *out, size_t max, struct qn_err *e)
{
	size_t start = out->len;

	for (;;) {
		if (r->out_pos == r->out_len) {
			int rc = decode_more(r, e);
			if (rc < 0)
				return -1;
			if (!rc)
				return 1;
		}
		size_t k = r->out_len - r->out_pos;
		if (out->len - start + k > max)
			return QN_RD_TOOLONG;
		if (qn_buf_add(out, r->out + r->out_pos, k) < 0)
			return qn_errf(e, "cannot read '%s': out of memory", r->name);
		r->out_pos += k;
	}
}

int qn_rd_peek(struct qn_rd *r, const char **p, size_t *n, struct qn_err *e)
{
	if (r->out_pos == r->out_len && decode_more(r, e) < 0)
		return -1;
	*p = (const char *)r->out + r->out_pos;
	*n = r->out_len - r->out_pos;
	return 0;
}

int qn_rd_sha256(struct qn_rd *r, char hex[65], struct qn_err *e)
{
	if (!(r->flags & QN_RD_SHA256))
		return qn_errf(e, "internal: '%s' opened without hashing", r->name);
	if (!r->sha_done) {
		/* Drain whatever the consumer left unread. */
		while (!r->raw_eof) {
			r->raw_pos = r->raw_len;
			if (raw_fill(r, e) < 0)
				return -1;
		}
		qn_sha256_final(&r->sha, r->sha_hex);
		r->sha_done = 1;
	}
	memcpy(hex, r->sha_hex, 65);
	return 0;
}
