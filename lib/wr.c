/* wr.c - see wr.h. */
#include "wr.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "err.h"
#include "hash.h"

#define BUF_SIZE (1 << 17)

struct qn_wr {
	int fd;
	int atomic;    /* temp file renamed at commit */
	int is_stdout;
	char *path;    /* target */
	char *tmp;     /* temporary name when atomic */
	unsigned char *buf;
	size_t len;
	ZSTD_CCtx *zc;
	unsigned char *zbuf;
	struct qn_sha256 sha;
	uint64_t bytes;
	int finished;
	struct qn_wr_info info;
};

const char *qn_wr_name(const struct qn_wr *w)
{
	return w->is_stdout ? "stdout" : w->path;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

static void wr_free(struct qn_wr *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->zc);
	qn_sha256_release(&w->sha);
	free(w->zbuf);
	free(w->buf);
	free(w->path);
	free(w->tmp);
	free(w);
}

struct qn_wr *qn_wr_open(const char *path, int flags, struct qn_err *e)
{
	struct qn_wr *w = calloc(1, sizeof *w);
	struct stat st;
	int zstd;

	if (!w)
		goto nomem;
	w->fd = -1;
	w->is_stdout = !path || !strcmp(path, "-");
	if (!(w->path = strdup(w->is_stdout ? "-" : path)) || !(w->buf = malloc(BUF_SIZE)) ||
	    qn_sha256_init(&w->sha) < 0)
		goto nomem;
	zstd = !(flags & QN_WR_PLAIN) && ((flags & QN_WR_ZSTD) || ends_with(w->path, ".zst"));
	if (zstd) {
		if (!(w->zc = ZSTD_createCCtx()) || !(w->zbuf = malloc(BUF_SIZE)))
			goto nomem;
		ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, 3);
		ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 1);
	}
	if (w->is_stdout) {
		if (zstd && isatty(1)) {
			qn_errf(e, "refusing to write compressed data to a terminal");
			wr_free(w);
			return NULL;
		}
		w->fd = 1;
		return w;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode)) {
			qn_errf(e, "cannot write '%s': is a directory", path);
			wr_free(w);
			return NULL;
		}
		w->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (w->fd < 0) {
			qn_errno(e, errno, "cannot open '%s'", path);
			wr_free(w);
			return NULL;
		}
		return w;
	}
	{
		char *d = strdup(path), *b = strdup(path);
		if (!d || !b) {
			free(d);
			free(b);
			goto nomem;
		}
		size_t n = strlen(path) + 32;
		w->tmp = malloc(n);
		if (w->tmp)
			snprintf(w->tmp, n, "%s/.%s.tmpXXXXXX", dirname(d), basename(b));
		free(d);
		free(b);
		if (!w->tmp)
			goto nomem;
	}
	w->fd = mkstemp(w->tmp);
	if (w->fd < 0) {
		qn_errno(e, errno, "cannot create '%s'", path);
		wr_free(w);
		return NULL;
	}
	{
		mode_t um = umask(0);
		umask(um);
		fchmod(w->fd, 0666 & ~um);
	}
	w->atomic = 1;
	return w;
nomem:
	qn_errf(e, "cannot write '%s': out of memory", path ? path : "stdout");
	wr_free(w);
	return NULL;
}

static int write_all(struct qn_wr *w, const unsigned char *p, size_t n, struct qn_err *e)
{
	qn_sha256_update(&w->sha, p, n);
	w->bytes += n;
	while (n) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return qn_errno(e, errno, "cannot write '%s'", qn_wr_name(w));
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Pushes the staging buffer to the file, through zstd when compressing. */
static int flush_buf(struct qn_wr *w, ZSTD_EndDirective mode, struct qn_err *e)
{
	if (!w->zc) {
		int rc = write_all(w, w->buf, w->len, e);
		w->len = 0;
		return rc;
	}
	ZSTD_inBuffer in = {w->buf, w->len, 0};
	for (;;) {
		ZSTD_outBuffer out = {w->zbuf, BUF_SIZE, 0};
		size_t left = ZSTD_compressStream2(w->zc, &out, &in, mode);
		if (ZSTD_isError(left))
			return qn_errf(e, "cannot compress '%s': %s", qn_wr_name(w),
				       ZSTD_getErrorName(left));
		if (out.pos && write_all(w, w->zbuf, out.pos, e) < 0)
			return -1;
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			break;
	}
	w->len = 0;
	return 0;
}

int qn_wr_write(struct qn_wr *w, const void *p, size_t n, struct qn_err *e)
{
	const unsigned char *s = p;

	if (w->finished)
		return qn_errf(e, "cannot write '%s': already finished", qn_wr_name(w));

	while (n) {
		size_t k = BUF_SIZE - w->len;
		if (k > n)
			k = n;
		memcpy(w->buf + w->len, s, k);
		w->len += k;
		s += k;
		n -= k;
		if (w->len == BUF_SIZE && flush_buf(w, ZSTD_e_continue, e) < 0)
			return -1;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	char *d = strdup(path);
	int fd, rc = 0;

	if (!d)
		return -1;
	fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(d);
	if (fd < 0)
		return -1;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = -1;
	close(fd);
	return rc;
}

int qn_wr_finish(struct qn_wr *w, struct qn_wr_info *info, struct qn_err *e)
{
	if (w->finished) {
		if (info)
			*info = w->info;
		return 0;
	}
	if (flush_buf(w, ZSTD_e_end, e) < 0)
		return -1;
	if (w->atomic && fsync(w->fd) < 0)
		return qn_errno(e, errno, "cannot write '%s'", w->path);
	if (!w->atomic && !w->is_stdout && close(w->fd) < 0) {
		w->fd = -1;
		return qn_errno(e, errno, "cannot write '%s'", w->path);
	}
	if (!w->atomic && !w->is_stdout)
		w->fd = -1;
	w->info.bytes = w->bytes;
	qn_sha256_final(&w->sha, w->info.sha256);
	w->finished = 1;
	if (info)
		*info = w->info;
	return 0;
}

int qn_wr_commit(struct qn_wr *w, struct qn_wr_info *info, struct qn_err *e)
{
	if (qn_wr_finish(w, info, e) < 0)
		goto fail;
	if (w->atomic) {
		if (close(w->fd) < 0) {
			w->fd = -1;
			qn_errno(e, errno, "cannot write '%s'", w->path);
			goto fail;
		}
		w->fd = -1;
		if (rename(w->tmp, w->path) < 0) {
			qn_errno(e, errno, "cannot rename into '%s'", w->path);
			goto fail;
		}
		free(w->tmp);
		w->tmp = NULL;
		fsync_dir(w->path);
	}
	wr_free(w);
	return 0;
fail:
	qn_wr_abort(w);
	return -1;
}

void qn_wr_abort(struct qn_wr *w)
{
	if (!w)
		return;
	if (w->fd >= 0 && !w->is_stdout)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	wr_free(w);
}

int qn_write_file_atomic(const char *path, const void *p, size_t n, struct qn_err *e)
{
	struct qn_wr *w = qn_wr_open(path, QN_WR_PLAIN, e);

	if (!w)
		return -1;
	if (qn_wr_write(w, p, n, e) < 0) {
		qn_wr_abort(w);
		return -1;
	}
	return qn_wr_commit(w, NULL, e);
}
