/*
 * lines.c - batches of input lines (see lines.h).
 */
#include <stdlib.h>

#include "lines.h"

void qn_lines_init(struct qn_lines *l, const char *file)
{
	*l = (struct qn_lines){.file = file};
	qn_buf_init(&l->in, QN_BUF_UNLIMITED);
}

void qn_lines_release(struct qn_lines *l)
{
	qn_buf_release(&l->in);
	free(l->off);
	free(l->len);
	free(l->lineno);
	*l = (struct qn_lines){0};
}

int qn_lines_add(struct qn_lines *l, const char *line, size_t len, uint64_t lineno)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		size_t *o = realloc(l->off, cap * sizeof *o);
		if (!o)
			return -1;
		l->off = o;
		if (!(o = realloc(l->len, cap * sizeof *o)))
			return -1;
		l->len = o;
		uint64_t *n = realloc(l->lineno, cap * sizeof *n);
		if (!n)
			return -1;
		l->lineno = n;
		l->cap = cap;
	}
	l->off[l->n] = l->in.len;
	l->len[l->n] = len;
	l->lineno[l->n] = lineno;
	if (qn_buf_add(&l->in, line, len == QN_LINES_TOO_LONG ? 0 : len) < 0 ||
	    qn_buf_addc(&l->in, 0) < 0)
		return -1;
	l->n++;
	return 0;
}
