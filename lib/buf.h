/*
 * buf.h - growable byte buffers with a ceiling.
 *
 * Every buffer that grows from outside input has a maximum size (curl's
 * dynbuf idea): an append that would pass it fails with -1 and leaves the
 * buffer as it was, so a hostile input gets a clear error instead of eating
 * memory. The data is always NUL-terminated for convenience; len excludes
 * the NUL. The struct is caller-owned: qn_buf_init / qn_buf_release.
 */
#ifndef QN_BUF_H
#define QN_BUF_H

#include <stddef.h>

#define QN_BUF_UNLIMITED ((size_t)-1)

struct qn_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void qn_buf_init(struct qn_buf *b, size_t max);
void qn_buf_release(struct qn_buf *b);
static inline void qn_buf_reset(struct qn_buf *b) { b->len = 0; if (b->data) b->data[0] = 0; }

/* Makes room for n more bytes; -1 when past max or out of memory. */
int qn_buf_grow(struct qn_buf *b, size_t n);
int qn_buf_add(struct qn_buf *b, const void *p, size_t n);
int qn_buf_adds(struct qn_buf *b, const char *s);
int qn_buf_addc(struct qn_buf *b, char c);
int qn_buf_printf(struct qn_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Drops trailing ASCII whitespace. */
void qn_buf_rtrim(struct qn_buf *b);

/* Hands the storage to the caller (free() it); the buffer becomes empty. */
char *qn_buf_detach(struct qn_buf *b, size_t *len);

#endif
