/*
 * lines.h - a batch of input lines, the unit the tools hand to their thread
 * pools (lib/pool.h): quern-clean and quern-tokenize read JSON Lines on the
 * main thread, cut them into batches of a few hundred lines, and let workers
 * parse and process each batch.
 *
 * The lines are copied into one buffer, each followed by a NUL (so a
 * worker can use string functions on one), with their lengths (the NUL is
 * not counted; a line may hold NULs of its own) and their line numbers in
 * the file, for messages that name "file:line". A line too long to keep
 * is added with the length QN_LINES_TOO_LONG and no bytes, so the worker
 * can report it in order with the others.
 *
 * Ownership: the caller's struct, qn_lines_init / qn_lines_release. file
 * is borrowed.
 */
#ifndef QN_LINES_H
#define QN_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define QN_LINES_TOO_LONG ((size_t)-1)

struct qn_lines {
	const char *file; /* the input's name in messages */
	struct qn_buf in; /* the lines, each NUL-terminated */
	size_t *off;	  /* line i starts at in.data + off[i] */
	size_t *len;	  /* its length, or QN_LINES_TOO_LONG */
	uint64_t *lineno; /* its line number in file (1-based) */
	size_t n, cap;
};

void qn_lines_init(struct qn_lines *l, const char *file);
void qn_lines_release(struct qn_lines *l);
/* Appends a line (len QN_LINES_TOO_LONG: none of its bytes); -1 when out of memory. */
int qn_lines_add(struct qn_lines *l, const char *line, size_t len, uint64_t lineno);

static inline const char *qn_lines_at(const struct qn_lines *l, size_t i)
{
	return l->in.data + l->off[i];
}

#endif
