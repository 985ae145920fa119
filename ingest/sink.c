/* sink.c - the per-input document sink of quern-ingest; see ingest.h. */
#include "ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "charset.h"
#include "doc.h"
#include "err.h"
#include "hash.h"
#include "utf8.h"

#define FLUSH_AT (4u << 20)
#define MAX_MSGS 20

int ix_emit(struct ix_sink *s, const char *key, const char *explicit_id, const char *text,
	    size_t len, json_t *meta, const char *created)
{
	struct qn_buf fixed;
	struct qn_doc d = {0};
	char id[40];
	int rc;

	qn_buf_init(&fixed, QN_BUF_UNLIMITED);
	if (!meta)
		meta = json_object();
	if (!meta)
		return -1;
	if (!qn_utf8_valid(text, len)) {
		long bad = qn_utf8_repair(&fixed, text, len);
		if (bad < 0) {
			json_decref(meta);
			qn_buf_release(&fixed);
			return -1;
		}
		s->repaired += (uint64_t)bad;
		json_object_set_new(meta, "invalid_bytes", json_integer(bad));
		text = fixed.data;
		len = fixed.len;
	}
	/* NUL cannot travel: JSON readers downstream reject "\u0000". */
	if (memchr(text, 0, len)) {
		struct qn_buf z;
		qn_buf_init(&z, QN_BUF_UNLIMITED);
		for (size_t i = 0; i < len; i++)
			if (text[i] && qn_buf_addc(&z, text[i]) < 0)
				break;
		qn_buf_release(&fixed);
		fixed = z;
		text = fixed.data ? fixed.data : "";
		len = fixed.len;
	}
	if (explicit_id) {
		d.id = explicit_id;
	} else {
		/* Same input path, same record key: same id. */
		struct qn_buf k;
		qn_buf_init(&k, QN_BUF_UNLIMITED);
		qn_buf_adds(&k, s->source ? s->source : "");
		qn_buf_addc(&k, 0);
		qn_buf_adds(&k, s->path);
		if (key) {
			qn_buf_addc(&k, 0);
			qn_buf_adds(&k, key);
		}
		qn_hash128_hex(qn_xxh3_128(k.data, k.len, 0), id);
		qn_buf_release(&k);
		d.id = id;
	}
	json_object_set_new(meta, "path", json_string(s->path));
	json_object_set_new(meta, "format", json_string(s->format));
	if (s->charset[0] && !json_object_get(meta, "charset"))
		json_object_set_new(meta, "charset", json_string(s->charset));
	d.text = text;
	d.text_len = len;
	d.source = s->source;
	d.added = s->opt->added;
	d.created = created;
	d.metadata = meta;
	rc = qn_doc_jsonl(&s->out, &d);
	json_decref(meta);
	qn_buf_release(&fixed);
	if (rc < 0)
		return -1;
	s->docs++;
	if (s->out.len >= FLUSH_AT && s->flush && s->flush(s) < 0)
		return -1;
	return 0;
}

void ix_fail(struct ix_sink *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	s->failed++;
	if (++s->nmsgs > MAX_MSGS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (s->nmsgs == MAX_MSGS)
		qn_buf_printf(&s->msgs, "cannot parse '%s': %s (further messages for this "
					"input are not shown)\n", s->path, msg);
	else
		qn_buf_printf(&s->msgs, "cannot parse '%s': %s\n", s->path, msg);
}

long ix_decode(struct ix_sink *s, const char *raw, size_t n, const char *declared,
	      struct qn_buf *out)
{
	char cs[64];
	size_t bom = 0;
	struct qn_err e;
	long bad;

	qn_charset_pick(raw, n, declared, cs, &bom);
	bad = qn_to_utf8(cs, raw + bom, n - bom, out, &e);
	if (bad < 0 && out->len == 0 && strcmp(cs, "UTF-8")) {
		/* iconv does not know the declared charset: fall back. */
		snprintf(cs, sizeof cs, "%s", qn_utf8_valid(raw, n) ? "UTF-8" : "WINDOWS-1252");
		bad = qn_to_utf8(cs, raw + bom, n - bom, out, &e);
	}
	if (bad < 0)
		return -1;
	snprintf(s->charset, sizeof s->charset, "%s", cs);
	s->repaired += (uint64_t)bad;
	return bad;
}
