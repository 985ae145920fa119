/* report_util.c - see report_util.h. */
#include "report_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "utf8.h"
#include "wr.h"

#define REPL "\xEF\xBF\xBD" /* U+FFFD */

/* A code point XML 1.0 cannot carry, or that has no business in a report. */
static int bad_cp(uint32_t cp)
{
	if (cp < 0x20)
		return cp != '\t' && cp != '\n' && cp != '\r';
	return (cp >= 0x7F && cp <= 0x9F) || cp == 0xFFFE || cp == 0xFFFF;
}

static int add_cp(struct qn_buf *b, const char *s, size_t k, uint32_t cp, enum rep_esc esc)
{
	if (bad_cp(cp))
		return qn_buf_add(b, REPL, 3);
	if (esc == REP_PLAIN || cp > '>')
		return qn_buf_add(b, s, k);
	switch (cp) {
	case '&':
		return qn_buf_adds(b, "&amp;");
	case '<':
		return qn_buf_adds(b, "&lt;");
	case '>':
		return qn_buf_adds(b, "&gt;");
	case '"':
		return esc == REP_ATTR ? qn_buf_adds(b, "&quot;") : qn_buf_addc(b, '"');
	case '\'':
		return esc == REP_ATTR ? qn_buf_adds(b, "&#39;") : qn_buf_addc(b, '\'');
	case '\t':
	case '\n':
	case '\r':
		/* An attribute value normalises raw whitespace to spaces. */
		return esc == REP_ATTR ? qn_buf_printf(b, "&#%u;", (unsigned)cp)
				       : qn_buf_addc(b, (char)cp);
	default:
		return qn_buf_addc(b, (char)cp);
	}
}

int rep_text(struct qn_buf *b, const char *s, size_t n, size_t maxcp, enum rep_esc esc)
{
	struct qn_buf fixed;
	size_t i = 0, ncp = 0, scan;
	int rc = 0;

	if (!s || !n)
		return 0;
	/* Each code point is at most 4 bytes, and each invalid byte one U+FFFD. */
	scan = maxcp < n / 4 ? maxcp * 4 + 4 : n;
	qn_buf_init(&fixed, QN_BUF_UNLIMITED);
	if (qn_utf8_repair(&fixed, s, scan < n ? scan : n) < 0) {
		qn_buf_release(&fixed);
		return -1;
	}
	while (i < fixed.len && rc == 0) {
		uint32_t cp;
		size_t k = qn_utf8_decode(fixed.data + i, fixed.len - i, &cp);

		if (ncp == maxcp) {
			rc = qn_buf_adds(b, "\xE2\x80\xA6"); /* U+2026 */
			break;
		}
		rc = add_cp(b, fixed.data + i, k, cp, esc);
		i += k;
		ncp++;
	}
	if (rc == 0 && i == fixed.len && scan < n)
		rc = qn_buf_adds(b, "\xE2\x80\xA6");
	qn_buf_release(&fixed);
	return rc;
}

int rep_texts(struct qn_buf *b, const char *s, size_t maxcp, enum rep_esc esc)
{
	return s ? rep_text(b, s, strlen(s), maxcp, esc) : 0;
}

int rep_jtext(struct qn_buf *b, const json_t *v, size_t maxcp, enum rep_esc esc)
{
	if (!json_is_string(v))
		return 0;
	return rep_text(b, json_string_value(v), json_string_length(v), maxcp, esc);
}

const char *rep_str(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

const json_t *rep_obj(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_object(v) ? v : NULL;
}

const json_t *rep_arr(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_array(v) ? v : NULL;
}

double rep_num(const json_t *obj, const char *key, double def)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	double d;

	if (!json_is_number(v))
		return def;
	d = json_number_value(v);
	return isfinite(d) ? d : def;
}

long long rep_count_value(const json_t *v)
{
	double d;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		return i < 0 ? 0 : i > (1LL << 53) ? (1LL << 53) : (long long)i;
	}
	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!(d > 0)) /* also NaN */
		return 0;
	return d > 9007199254740992.0 ? (1LL << 53) : (long long)llround(d);
}

long long rep_count(const json_t *obj, const char *key, long long def)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	long long n = rep_count_value(v);

	return n < 0 ? def : n;
}

int rep_bool(const json_t *obj, const char *key, int def)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_boolean(v) ? json_is_true(v) : def;
}

int rep_sev_rank(const char *sev)
{
	static const char *const names[] = {"low", "medium", "high", "critical"};

	for (int i = 0; sev && i < 4; i++)
		if (!strcmp(sev, names[i]))
			return i + 1;
	return 0;
}

static int kv_cmp(const void *pa, const void *pb)
{
	const struct rep_kv *a = pa, *b = pb;

	if (a->n != b->n)
		return a->n > b->n ? -1 : 1;
	return strcmp(a->name, b->name);
}

struct rep_kv *rep_counts(const json_t *obj, size_t *len)
{
	struct rep_kv *kv;
	const char *key;
	json_t *v;
	size_t n = 0;

	*len = 0;
	if (!json_is_object(obj) || !json_object_size(obj))
		return NULL;
	kv = malloc(json_object_size(obj) * sizeof *kv);
	if (!kv)
		return NULL;
	json_object_foreach((json_t *)obj, key, v)
	{
		long long c = json_is_object(v) ? rep_count(v, "count", -1) : rep_count_value(v);

		if (c < 0)
			continue;
		kv[n].name = key;
		kv[n].n = c;
		n++;
	}
	if (!n) {
		free(kv);
		return NULL;
	}
	qsort(kv, n, sizeof *kv, kv_cmp);
	*len = n;
	return kv;
}

int rep_commit(const struct qn_buf *b, const char *path, const char *what, struct qn_err *e)
{
	if (!path || !*path)
		return qn_errf(e, "%s report: no output path", what);
	if (qn_write_file_atomic(path, b->data ? b->data : "", b->len, e) < 0) {
		qn_err_prefix(e, "%s report", what);
		return -1;
	}
	return 0;
}
