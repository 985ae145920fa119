/*
 * readers.c - the one-document readers of quern-ingest (HTML, text and
 * Markdown) and the JSONL passthrough. Each slurps its input up to
 * --max-bytes, refuses binary data, decodes to UTF-8 and emits.
 */
#include "ingest.h"

#include <string.h>

#include "doc.h"
#include "err.h"
#include "rd.h"

/* Slurps the input; on failure reports it and returns -1. */
static int slurp(struct ix_sink *s, struct qn_rd *rd, struct qn_buf *raw)
{
	struct qn_err e;
	int rc = qn_rd_slurp(rd, raw, s->opt->max_bytes, &e);

	if (rc == QN_RD_TOOLONG) {
		ix_fail(s, "larger than --max-bytes (%zu bytes); skipped", s->opt->max_bytes);
		return -1;
	}
	if (rc < 0) {
		ix_fail(s, "%s", e.msg);
		return -1;
	}
	if (raw->len == 0) {
		ix_fail(s, "empty file");
		return -1;
	}
	return 0;
}

/*
 * Binary data: NUL bytes (outside UTF-16/32, which a BOM announces) or many
 * control characters in the first 8 KB.
 */
static int looks_binary(const char *p, size_t n)
{
	/* Control characters other than \t \n \f \r and ESC count as binary. */
	size_t bad = 0, k = n < 8192 ? n : 8192;
	const unsigned char *s = (const unsigned char *)p;

	if ((k >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF))))
		return 0;
	if (memchr(p, 0, k))
		return 1;
	/* Branch-free so the compiler can vectorize it. */
	for (size_t i = 0; i < k; i++)
		bad += (s[i] < 9) | ((s[i] > 13) & (s[i] < 32) & (s[i] != 27)) | (s[i] == 11);
	return bad * 20 > k;
}

int ix_html(struct ix_sink *s, struct qn_rd *rd)
{
	struct qn_buf raw, utf8, text;
	struct qn_err e;
	char declared[64];
	json_t *meta = NULL;
	int rc = -1;

	s->format = "html";
	qn_buf_init(&raw, QN_BUF_UNLIMITED);
	qn_buf_init(&utf8, QN_BUF_UNLIMITED);
	qn_buf_init(&text, QN_BUF_UNLIMITED);
	if (slurp(s, rd, &raw) < 0)
		goto out;
	if (looks_binary(raw.data, raw.len)) {
		ix_fail(s, "binary data, not HTML");
		goto out;
	}
	const char *decl = ix_html_declared_charset(raw.data, raw.len, declared);
	long bad = ix_decode(s, raw.data, raw.len, decl, &utf8);
	if (bad < 0) {
		ix_fail(s, "cannot decode text");
		goto out;
	}
	if (!utf8.len) {
		ix_fail(s, "no text found");
		goto out;
	}
	meta = json_object();
	if (ix_html_extract(utf8.data, utf8.len, &s->opt->html, &text, meta, &e) < 0) {
		ix_fail(s, "%s", e.msg);
		goto out;
	}
	if (decl)
		json_object_set_new(meta, "charset_declared", json_string(decl));
	if (bad)
		json_object_set_new(meta, "invalid_bytes", json_integer(bad));
	if (!text.len) {
		ix_fail(s, "no text found");
		goto out;
	}
	rc = ix_emit(s, NULL, NULL, text.data, text.len, meta, NULL);
	meta = NULL;
	if (rc < 0)
		ix_fail(s, "cannot write the document");
out:
	json_decref(meta);
	qn_buf_release(&raw);
	qn_buf_release(&utf8);
	qn_buf_release(&text);
	return rc;
}

/* The first Markdown ATX heading ("# Title"), skipping YAML front matter. */
static void markdown_title(const char *p, size_t n, json_t *meta)
{
	const char *end = p + n, *line = p;

	if (n >= 4 && !memcmp(p, "---", 3) && (p[3] == '\n' || p[3] == '\r')) {
		const char *q = p + 3;
		while (q < end) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));
			if (!nl)
				return;
			q = nl + 1;
			if (end - q >= 3 && !memcmp(q, "---", 3)) {
				line = q + 3;
				break;
			}
		}
	}
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;
		if (le - line > 2 && line[0] == '#' && line[1] == ' ') {
			const char *a = line + 2, *b = le;
			while (b > a && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '#'))
				b--;
			if (b > a) {
				json_object_set_new(meta, "title", json_stringn(a, (size_t)(b - a)));
				return;
			}
		}
		line = le + 1;
	}
}

int ix_text(struct ix_sink *s, struct qn_rd *rd, const char *fmt)
{
	struct qn_buf raw, utf8;
	json_t *meta;
	int rc = -1;

	s->format = fmt;
	qn_buf_init(&raw, QN_BUF_UNLIMITED);
	qn_buf_init(&utf8, QN_BUF_UNLIMITED);
	if (slurp(s, rd, &raw) < 0)
		goto out;
	if (looks_binary(raw.data, raw.len)) {
		ix_fail(s, "binary data, not text");
		goto out;
	}
	long bad = ix_decode(s, raw.data, raw.len, NULL, &utf8);
	if (bad < 0) {
		ix_fail(s, "cannot decode text");
		goto out;
	}
	/* CRLF and CR line ends become LF; trailing blank space goes. */
	size_t k = 0;
	for (size_t i = 0; i < utf8.len; i++) {
		char c = utf8.data[i];
		if (c == '\r') {
			if (i + 1 < utf8.len && utf8.data[i + 1] == '\n')
				continue;
			c = '\n';
		}
		utf8.data[k++] = c;
	}
	utf8.len = k;
	qn_buf_rtrim(&utf8);
	if (!utf8.len) {
		ix_fail(s, "no text found");
		goto out;
	}
	meta = json_object();
	if (!strcmp(fmt, "markdown"))
		markdown_title(utf8.data, utf8.len, meta);
	if (bad)
		json_object_set_new(meta, "invalid_bytes", json_integer(bad));
	rc = ix_emit(s, NULL, NULL, utf8.data, utf8.len, meta, NULL);
	if (rc < 0)
		ix_fail(s, "cannot write the document");
out:
	qn_buf_release(&raw);
	qn_buf_release(&utf8);
	return rc;
}

/* A JSON value as an id string: strings as they are, numbers printed. */
static int id_string(json_t *v, char *out, size_t n)
{
	if (json_is_string(v)) {
		snprintf(out, n, "%s", json_string_value(v));
		return out[0] ? 0 : -1;
	}
	if (json_is_integer(v)) {
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	return -1;
}

int ix_jsonl(struct ix_sink *s, struct qn_rd *rd)
{
	const char *tf = s->opt->text_field ? s->opt->text_field : "text";
	const char *idf = s->opt->id_field;
	struct qn_buf line;
	struct qn_err e;
	json_error_t je;
	uint64_t lineno = s->line_base; /* a shard's lines keep their whole-file numbers */
	int rc;

	s->format = "jsonl";
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while ((rc = qn_rd_line(rd, &line, s->opt->max_bytes, &e)) != 0) {
		lineno++;
		if (rc == -1) {
			ix_fail(s, "line %llu: %s", (unsigned long long)lineno, e.msg);
			break;
		}
		if (rc == QN_RD_TOOLONG) {
			ix_fail(s, "line %llu: longer than --max-bytes (%zu bytes); skipped",
				(unsigned long long)lineno, s->opt->max_bytes);
			continue;
		}
		size_t a = 0, b = line.len;
		while (a < b && (line.data[a] == ' ' || line.data[a] == '\t'))
			a++;
		while (b > a && (line.data[b - 1] == '\r' || line.data[b - 1] == ' '))
			b--;
		if (a == b)
			continue;
		json_t *o = json_loadb(line.data + a, b - a, 0, &je);
		if (!o || !json_is_object(o)) {
			ix_fail(s, "line %llu: %s", (unsigned long long)lineno,
				o ? "not a JSON object" : je.text);
			json_decref(o);
			continue;
		}
		json_t *t = json_object_get(o, tf);
		if (!json_is_string(t)) {
			ix_fail(s, "line %llu: no string field '%s'", (unsigned long long)lineno, tf);
			json_decref(o);
			continue;
		}
		char id[512], key[32];
		const char *explicit_id = NULL;
		if (idf) {
			if (id_string(json_object_get(o, idf), id, sizeof id) < 0) {
				ix_fail(s, "line %llu: no string or integer field '%s'",
					(unsigned long long)lineno, idf);
				json_decref(o);
				continue;
			}
			explicit_id = id;
		} else if (!s->opt->text_field && json_is_string(json_object_get(o, "id")) &&
			   id_string(json_object_get(o, "id"), id, sizeof id) == 0) {
			explicit_id = id; /* already a document: keep its id */
		}
		/* Metadata: the record's own metadata object, then its other fields. */
		json_t *meta = json_object();
		json_t *m = json_object_get(o, "metadata");
		if (json_is_object(m))
			json_object_update(meta, m);
		const char *k;
		json_t *v;
		json_object_foreach(o, k, v)
		{
			if (!strcmp(k, tf) || !strcmp(k, "metadata") || !strcmp(k, "added") ||
			    !strcmp(k, "created") || !strcmp(k, "source") ||
			    (explicit_id && !strcmp(k, idf ? idf : "id")))
				continue;
			json_object_set(meta, k, v);
		}
		json_object_set_new(meta, "line", json_integer((json_int_t)lineno));
		json_t *cr = json_object_get(o, "created");
		snprintf(key, sizeof key, "line:%llu", (unsigned long long)lineno);
		if (ix_emit(s, key, explicit_id, json_string_value(t), json_string_length(t), meta,
			    json_is_string(cr) ? json_string_value(cr) : NULL) < 0) {
			json_decref(o);
			qn_buf_release(&line);
			ix_fail(s, "cannot write the document");
			return -1;
		}
		json_decref(o);
	}
	qn_buf_release(&line);
	return 0;
}
