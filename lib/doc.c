/* doc.c - see doc.h. */
#include "doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "rd.h"

/* 0: copy as is; otherwise the escape letter, or 'u' for \u00XX. */
static const char esc[256] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
	['"'] = '"', ['\\'] = '\\',
	[0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
	[0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0B] = 'u', [0x0E] = 'u',
	[0x0F] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',
	[0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u',
	[0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u', [0x1C] = 'u', [0x1D] = 'u',
	[0x1E] = 'u', [0x1F] = 'u', [0x7F] = 'u',
};

int qn_json_str(struct qn_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, start = 0;

	if (qn_buf_grow(out, n + 2) < 0)
		return -1;
	if (qn_buf_addc(out, '"') < 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char x = esc[c];
		if (!x)
			continue;
		if (qn_buf_add(out, s + start, i - start) < 0)
			return -1;
		start = i + 1;
		if (x == 'u') {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			if (qn_buf_add(out, u, 6) < 0)
				return -1;
		} else {
			char u[2] = {'\\', x};
			if (qn_buf_add(out, u, 2) < 0)
				return -1;
		}
	}
	if (qn_buf_add(out, s + start, n - start) < 0)
		return -1;
	return qn_buf_addc(out, '"');
}

static int field(struct qn_buf *out, const char *name, const char *v, size_t n)
{
	if (qn_buf_addc(out, ',') < 0 || qn_json_str(out, name, strlen(name)) < 0 ||
	    qn_buf_addc(out, ':') < 0)
		return -1;
	return qn_json_str(out, v, n);
}

int qn_doc_jsonl(struct qn_buf *out, const struct qn_doc *d)
{
	size_t mark = out->len;

	if (qn_buf_adds(out, "{\"id\":") < 0 || qn_json_str(out, d->id, strlen(d->id)) < 0)
		goto fail;
	if (field(out, "text", d->text ? d->text : "", d->text ? d->text_len : 0) < 0)
		goto fail;
	if (d->source && field(out, "source", d->source, strlen(d->source)) < 0)
		goto fail;
	if (d->added && field(out, "added", d->added, strlen(d->added)) < 0)
		goto fail;
	if (d->created && field(out, "created", d->created, strlen(d->created)) < 0)
		goto fail;
	if (d->metadata) {
		char *m = json_dumps(d->metadata, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!m)
			goto fail;
		int rc = qn_buf_adds(out, ",\"metadata\":");
		if (rc == 0)
			rc = qn_buf_adds(out, m);
		free(m);
		if (rc < 0)
			goto fail;
	}
	if (qn_buf_adds(out, "}\n") < 0)
		goto fail;
	return 0;
fail:
	out->len = mark;
	if (out->data)
		out->data[mark] = 0;
	return -1;
}

void qn_time_rfc3339(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void qn_now_rfc3339(char out[32])
{
	qn_time_rfc3339((int64_t)time(NULL), out);
}

int qn_jsonl_open(struct qn_jsonl *j, const char *path, size_t max_line, int rd_flags,
		  struct qn_err *e)
{
	memset(j, 0, sizeof *j);
	j->rd = qn_rd_open(path, rd_flags, e);
	if (!j->rd)
		return -1;
	j->path = strdup(path ? path : "-");
	j->max_line = max_line ? max_line : QN_JSONL_MAX_LINE_DEFAULT;
	qn_buf_init(&j->line, QN_BUF_UNLIMITED);
	if (!j->path) {
		qn_jsonl_close(j);
		return qn_errf(e, "out of memory");
	}
	return 0;
}

void qn_jsonl_close(struct qn_jsonl *j)
{
	qn_rd_close(j->rd);
	j->rd = NULL;
	free(j->path);
	j->path = NULL;
	qn_buf_release(&j->line);
}

int qn_jsonl_next(struct qn_jsonl *j, json_t **obj, struct qn_err *e)
{
	json_error_t je;
	int rc;

	*obj = NULL;
	for (;;) {
		rc = qn_rd_line(j->rd, &j->line, j->max_line, e);
		if (rc == 0 || rc == -1)
			return rc;
		j->lineno++;
		if (rc == QN_RD_TOOLONG)
			return qn_errf(e, "%s:%llu: line longer than %zu bytes", j->path,
				       (unsigned long long)j->lineno, j->max_line),
			       QN_JSONL_BAD;
		size_t n = j->line.len;
		while (n && (j->line.data[n - 1] == '\r' || j->line.data[n - 1] == ' ' ||
			     j->line.data[n - 1] == '\t'))
			n--;
		size_t s = 0;
		while (s < n && (j->line.data[s] == ' ' || j->line.data[s] == '\t'))
			s++;
		if (s == n)
			continue;
		json_t *v = json_loadb(j->line.data + s, n - s, JSON_REJECT_DUPLICATES, &je);
		if (!v) {
			qn_errf(e, "%s:%llu:%d: invalid JSON: %s", j->path,
				(unsigned long long)j->lineno, je.column, je.text);
			return QN_JSONL_BAD;
		}
		if (!json_is_object(v)) {
			json_decref(v);
			qn_errf(e, "%s:%llu: not a JSON object", j->path,
				(unsigned long long)j->lineno);
			return QN_JSONL_BAD;
		}
		*obj = v;
		return 1;
	}
}
