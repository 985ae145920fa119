/* scan_baseline.c - see scan_baseline.h. */
#include "scan_baseline.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "doc.h"
#include "err.h"
#include "hash.h"
#include "wr.h"

/*
 * The entries are kept as 128-bit xxh3 keys of "F<fingerprint>",
 * "H<hash>" or "R<rule>\0<hash>" in an open-addressing set: a
 * collision of two different keys is vanishingly unlikely.
 */
struct sb_baseline {
	struct qn_hash128 *slot; /* {0, 0} is empty */
	size_t cap, n;
	char *salt;
	json_t *manual;
};

void sb_free(struct sb_baseline *b)
{
	if (!b)
		return;
	free(b->slot);
	free(b->salt);
	json_decref(b->manual);
	free(b);
}

const char *sb_salt(const struct sb_baseline *b)
{
	return b ? b->salt : NULL;
}

json_t *sb_manual(const struct sb_baseline *b)
{
	return b ? b->manual : NULL;
}

static struct qn_hash128 key(char tag, const char *a, const char *b)
{
	char buf[256];
	size_t la = strlen(a), lb = b ? strlen(b) : 0, n = 0;
	if (1 + la + 1 + lb > sizeof buf)
		la = lb = 0; /* never: callers pass short hex strings and rule ids */
	buf[n++] = tag;
	memcpy(buf + n, a, la);
	n += la;
	if (b) {
		buf[n++] = 0;
		memcpy(buf + n, b, lb);
		n += lb;
	}
	struct qn_hash128 h = qn_xxh3_128(buf, n, 0x5eedba5e11e5ull);
	if (!h.hi && !h.lo)
		h.lo = 1;
	return h;
}

static size_t slot_of(const struct sb_baseline *b, struct qn_hash128 h)
{
	size_t i = (size_t)h.lo & (b->cap - 1);
	while ((b->slot[i].hi || b->slot[i].lo) && (b->slot[i].hi != h.hi || b->slot[i].lo != h.lo))
		i = (i + 1) & (b->cap - 1);
	return i;
}

static int put(struct sb_baseline *b, struct qn_hash128 h)
{
	if (2 * (b->n + 1) > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 1024;
		struct qn_hash128 *old = b->slot;
		size_t oc = b->cap;
		if (!(b->slot = calloc(nc, sizeof *b->slot))) {
			b->slot = old;
			return -1;
		}
		b->cap = nc;
		for (size_t i = 0; i < oc; i++)
			if (old[i].hi || old[i].lo)
				b->slot[slot_of(b, old[i])] = old[i];
		free(old);
	}
	size_t i = slot_of(b, h);
	if (!b->slot[i].hi && !b->slot[i].lo) {
		b->slot[i] = h;
		b->n++;
	}
	return 0;
}

static int has(const struct sb_baseline *b, struct qn_hash128 h)
{
	if (!b->cap)
		return 0;
	size_t i = slot_of(b, h);
	return b->slot[i].hi || b->slot[i].lo;
}

int sb_match(const struct sb_baseline *b, const char *fingerprint, const char *rule,
	     const char *hash)
{
	if (!b)
		return 0;
	return has(b, key('F', fingerprint, NULL)) || has(b, key('H', hash, NULL)) ||
	       has(b, key('R', rule, hash));
}

static int hex_ok(const char *s, size_t want)
{
	if (strlen(s) != want)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int entry(struct sb_baseline *b, const char *path, size_t i, json_t *it, struct qn_err *e)
{
	json_t *fp = json_object_get(it, "fingerprint"), *hash = json_object_get(it, "hash"),
	       *rule = json_object_get(it, "rule");

	if (!json_is_object(it))
		return qn_errf(e, "%s: findings[%zu]: expected an object", path, i);
	if (fp && (!json_is_string(fp) || !hex_ok(json_string_value(fp), 32)))
		return qn_errf(
		    e, "%s: findings[%zu]: 'fingerprint' must be 32 lowercase hex digits", path, i);
	if (hash && (!json_is_string(hash) || !hex_ok(json_string_value(hash), 64)))
		return qn_errf(e, "%s: findings[%zu]: 'hash' must be 64 lowercase hex digits", path,
			       i);
	if (rule && !json_is_null(rule) &&
	    (!json_is_string(rule) || !json_string_length(rule) || json_string_length(rule) > 100))
		return qn_errf(e, "%s: findings[%zu]: 'rule' must be a rule id", path, i);
	if (!fp && !hash)
		return qn_errf(e, "%s: findings[%zu]: needs a 'fingerprint' or a 'hash'", path, i);
	int rc = 0;
	if (fp) {
		rc = put(b, key('F', json_string_value(fp), NULL));
	} else {
		if (json_is_string(rule))
			rc = put(b, key('R', json_string_value(rule), json_string_value(hash)));
		else
			rc = put(b, key('H', json_string_value(hash), NULL));
		if (!rc)
			rc = json_array_append(b->manual, it);
	}
	return rc < 0 ? qn_errf(e, "out of memory") : 0;
}

struct sb_baseline *sb_load(const char *path, struct qn_err *e)
{
	struct sb_baseline *b = calloc(1, sizeof *b);
	json_error_t je;
	json_t *root = NULL;
	FILE *f = NULL;

	if (!b || !(b->manual = json_array())) {
		qn_errf(e, "out of memory");
		goto fail;
	}
	if (!(f = fopen(path, "rb"))) {
		qn_errno(e, errno, "cannot open '%s'", path);
		goto fail;
	}
	if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)SB_MAX_BYTES) {
		fclose(f);
		qn_errf(e, "%s: larger than %zu bytes", path, SB_MAX_BYTES);
		goto fail;
	}
	rewind(f);
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	if (!root) {
		qn_errf(e, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		goto fail;
	}
	json_t *fmt = json_object_get(root, "format"), *salt = json_object_get(root, "salt"),
	       *list = json_object_get(root, "findings");
	if (!json_is_object(root)) {
		qn_errf(e, "%s: expected an object with \"findings\"", path);
		goto fail;
	}
	if (fmt && (!json_is_string(fmt) || strcmp(json_string_value(fmt), SB_FORMAT))) {
		qn_errf(e, "%s: \"format\" is not \"%s\"", path, SB_FORMAT);
		goto fail;
	}
	if (salt && !json_is_null(salt)) {
		if (!json_is_string(salt) ||
		    json_string_length(salt) != strlen(json_string_value(salt))) {
			qn_errf(e, "%s: \"salt\" must be a string", path);
			goto fail;
		}
		if (!(b->salt = strdup(json_string_value(salt)))) {
			qn_errf(e, "out of memory");
			goto fail;
		}
	}
	if (!json_is_array(list)) {
		qn_errf(e, "%s: %s", path,
			list ? "\"findings\" must be an array" : "\"findings\" is missing");
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(list); i++)
		if (entry(b, path, i, json_array_get(list, i), e) < 0)
			goto fail;
	json_decref(root);
	return b;
fail:
	json_decref(root);
	sb_free(b);
	return NULL;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int cmp_entry(const void *pa, const void *pb)
{
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	static const char *const keys[] = {"source", "doc", "rule", "fingerprint"};
	for (int i = 0; i < 4; i++) {
		int c = strcmp(str(a, keys[i]), str(b, keys[i]));
		if (c)
			return c;
	}
	return 0;
}

int sb_write(const char *path, const char *salt, json_t *entries, const json_t *manual,
	     struct qn_err *e)
{
	size_t n = json_array_size(entries), m = json_array_size(manual);
	json_t **v = malloc((n + 1) * sizeof *v);
	struct qn_buf out;
	int rc = -1;

	qn_buf_init(&out, QN_BUF_UNLIMITED);
	if (!v)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(entries, i);
	qsort(v, n, sizeof *v, cmp_entry);
	if (qn_buf_printf(
		&out, "{\n  \"format\": \"%s\",\n  \"version\": 1,\n  \"salt\": ", SB_FORMAT) < 0 ||
	    qn_json_str(&out, salt, strlen(salt)) < 0 ||
	    qn_buf_adds(&out, ",\n  \"findings\": [") < 0)
		goto oom;
	size_t k = 0;
	for (size_t i = 0; i < n + m; i++) {
		json_t *it = i < n ? v[i] : json_array_get(manual, i - n);
		if (i < n && i > 0 && !cmp_entry(&v[i - 1], &v[i]))
			continue;
		char *s = json_dumps(it, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!s)
			goto oom;
		int bad =
		    qn_buf_adds(&out, k++ ? ",\n    " : "\n    ") < 0 || qn_buf_adds(&out, s) < 0;
		free(s);
		if (bad)
			goto oom;
	}
	if (qn_buf_adds(&out, k ? "\n  ]\n}\n" : "]\n}\n") < 0)
		goto oom;
	rc = qn_write_file_atomic(path, out.data, out.len, e);
	goto done;
oom:
	qn_errf(e, "out of memory");
done:
	free(v);
	qn_buf_release(&out);
	return rc;
}
