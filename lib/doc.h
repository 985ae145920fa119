/*
 * doc.h - document JSON Lines: the record every quern tool exchanges.
 *
 * A document (DESIGN.md) is one JSON object per line with "id", "text",
 * "source", "added", optional "created", and "metadata" (an object). The
 * writer emits the fields in that order with a hand-written escaper (the hot
 * path of every tool); metadata is serialised by jansson in insertion order.
 * The reader streams lines with a length bound and reports a bad line as
 * "file:line: reason" so the tool can skip it or stop (--strict).
 *
 * struct qn_doc only borrows its strings; metadata is borrowed too.
 */
#ifndef QN_DOC_H
#define QN_DOC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

struct qn_err;
struct qn_rd;

struct qn_doc {
	const char *id;
	const char *text;
	size_t text_len;
	const char *source;
	const char *added;   /* RFC 3339 UTC */
	const char *created; /* optional */
	json_t *metadata;    /* optional object */
};

/* Appends s as a JSON string literal ("..." with escapes); s is valid UTF-8. */
int qn_json_str(struct qn_buf *out, const char *s, size_t n);

/* Appends one document as a JSON line, '\n' included. */
int qn_doc_jsonl(struct qn_buf *out, const struct qn_doc *d);

/* Writes the current UTC time as RFC 3339 ("2026-11-27T11:02:14Z") into out[32]. */
void qn_now_rfc3339(char out[32]);
/* Formats a Unix time the same way. */
void qn_time_rfc3339(int64_t t, char out[32]);

#define QN_JSONL_BAD (-2)
#define QN_JSONL_MAX_LINE_DEFAULT ((size_t)64 << 20)

struct qn_jsonl {
	struct qn_rd *rd;
	char *path;
	uint64_t lineno;
	size_t max_line;
	struct qn_buf line;
};

int qn_jsonl_open(struct qn_jsonl *j, const char *path, size_t max_line, int rd_flags,
		  struct qn_err *e);
void qn_jsonl_close(struct qn_jsonl *j);
/*
 * Next object: 1 with *obj set (caller json_decref's it), 0 at the end, -1
 * on an I/O error, QN_JSONL_BAD when one line is not a JSON object or is
 * too long (e says "file:line: why"; reading may go on). Blank lines are
 * skipped.
 */
int qn_jsonl_next(struct qn_jsonl *j, json_t **obj, struct qn_err *e);

#endif
