/*
 * report_util.h - what the three scan reports (report_junit.c,
 * report_sarif.c, report_html.c) share: defensive readers of the scan's JSON
 * (a field of the wrong type reads as absent, never as a crash) and text
 * cleaning for hostile strings.
 *
 * rep_text appends a string from the data to a buffer as valid UTF-8 with
 * invalid sequences, NUL and the other control characters XML 1.0 forbids
 * (also DEL, the C1 controls and U+FFFE/U+FFFF) replaced by U+FFFD,
 * optionally escaped for XML/HTML text or attributes, and cut after a
 * maximum number of code points (with an ellipsis), so a hostile value can
 * neither break the markup nor blow up the report. The readers return
 * borrowed pointers into the JSON values; nothing is taken over.
 */
#ifndef QN_AUDIT_REPORT_UTIL_H
#define QN_AUDIT_REPORT_UTIL_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"

/* Largest report built in memory before it is written: past it, an error. */
#define REP_MAX_BYTES ((size_t)512 << 20)

enum rep_esc {
	REP_PLAIN, /* valid UTF-8 only (JSON strings) */
	REP_TEXT,  /* & < > escaped; tab and newlines kept */
	REP_ATTR,  /* also " ' and tab/newlines as character references */
};

/* Appends s[0..n) cleaned and escaped, at most maxcp code points; -1 past b's max. */
int rep_text(struct qn_buf *b, const char *s, size_t n, size_t maxcp, enum rep_esc esc);
/* The same for a NUL-terminated string; NULL appends nothing. */
int rep_texts(struct qn_buf *b, const char *s, size_t maxcp, enum rep_esc esc);
/* A JSON string value (which may hold NUL or, built unchecked, invalid UTF-8). */
int rep_jtext(struct qn_buf *b, const json_t *v, size_t maxcp, enum rep_esc esc);

/* obj[key] when obj is an object and the value a string, else NULL. */
const char *rep_str(const json_t *obj, const char *key);
/* obj[key] when it is an object (array), else NULL. */
const json_t *rep_obj(const json_t *obj, const char *key);
const json_t *rep_arr(const json_t *obj, const char *key);
/* obj[key] as a number (integer or real); def when absent or not a number. */
double rep_num(const json_t *obj, const char *key, double def);
/* A count: obj[key] rounded, clamped to [0, 2^53]; def when absent. */
long long rep_count(const json_t *obj, const char *key, long long def);
/* A JSON number value as a count (see rep_count); -1 when not a number. */
long long rep_count_value(const json_t *v);
/* a + b for counts (each at most 2^53), saturating at 2^62 instead of overflowing. */
static inline long long rep_add(long long a, long long b)
{
	const long long max = 1LL << 62;

	return a >= max - b ? max : a + b;
}
/* 1 for true, 0 for false, def otherwise. */
int rep_bool(const json_t *obj, const char *key, int def);

/* Severity rank: critical 4, high 3, medium 2, low 1, anything else 0. */
int rep_sev_rank(const char *sev);

/* A (name, count) pair from a count object (by_type, by_severity, ...). */
struct rep_kv {
	const char *name; /* borrowed: the object's key */
	long long n;
};

/*
 * The entries of a count object whose values are numbers or objects with a
 * numeric "count", sorted by count (largest first), then name; *len gets
 * the number. The array is malloc'd (the caller frees it); NULL with *len 0
 * when obj is not an object or has no counts.
 */
struct rep_kv *rep_counts(const json_t *obj, size_t *len);

/* Writes b to path atomically (lib/wr.h); 0 or -1 with e filled. */
struct qn_err;
int rep_commit(const struct qn_buf *b, const char *path, const char *what, struct qn_err *e);

#endif
