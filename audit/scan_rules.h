/*
 * scan_rules.h - quern-audit scan's policy rules: named PCRE2 patterns whose
 * matches are findings, each with a severity and a message, and allow
 * patterns that excuse a match.
 *
 *   rules:
 *     - id: internal-hostname            # 1-64 of A-Z a-z 0-9 _ . -; unique
 *       pattern: '\b[a-z0-9-]+\.corp\.example\.com\b'
 *       severity: medium                 # low | medium (default) | high | critical
 *       message: internal host name      # default "matches rule <id>"
 *       type: HOSTNAME                   # the finding's type (default POLICY)
 *       kind: policy                     # policy (default) | secret | pii
 *       flags: [caseless]                # caseless, multiline, dotall, extended
 *       group: 1                         # report this capture group (default 0)
 *       allow: ['^build[0-9]+\.']        # a match that matches one is no finding
 *   allow:                               # excuses the findings of every rule
 *     - '@example\.(com|org|net)$'       # and every detector
 *
 * An allow pattern is searched in the reported value (the match, or its
 * group), unanchored: anchor it with ^ and $ to excuse whole values only.
 *
 * Patterns compile with PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF (any
 * bytes may be scanned) and are JIT-compiled. A pattern that can match the
 * empty string is refused. Matching is bounded: every pcre2_match call has
 * SR_MATCH_LIMIT, a depth and a heap limit, so a pathological pattern such
 * as (a+)+$ fails fast with SR_LIMIT instead of running for hours; the JIT
 * stack running out falls back to the interpreter under the same limits.
 *
 * Errors name the place: "rules.yaml:4:14: rule 'x': pattern error at
 * offset 3: missing closing parenthesis" (the column is the pattern's).
 *
 * Threads: a struct sr_rules is read-only after parsing; each thread passes
 * its own struct sr_scratch (match data) to sr_scan / sr_allowed.
 */
#ifndef SCAN_RULES_H
#define SCAN_RULES_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define SR_ID_MAX 64
#define SR_MAX_RULES 10000
#define SR_MATCH_LIMIT 10000000u
#define SR_DEPTH_LIMIT 10000u
#define SR_HEAP_LIMIT 65536u /* KiB, the interpreter's backtracking memory */
#define SR_LIMIT (-2)	     /* sr_scan's result when a limit stopped it */

enum sr_kind { SR_POLICY, SR_SECRET, SR_PII };

struct sr_rule {
	char *id;      /* as written in the file */
	char *rule_id; /* "QN-POLICY-<id>" */
	char *type;    /* "POLICY" unless set */
	char *message;
	int severity; /* 0 low, 1 medium, 2 high, 3 critical */
	enum sr_kind kind;
	uint32_t group;
	unsigned line; /* where the rule starts in the file */
};

struct sr_rules;

struct sr_rules *sr_rules_parse(const char *text, size_t len, const char *file, struct qn_err *e);
struct sr_rules *sr_rules_load(const char *path, struct qn_err *e);
void sr_rules_free(struct sr_rules *r);

size_t sr_count(const struct sr_rules *r);
const struct sr_rule *sr_rule(const struct sr_rules *r, size_t i);
/* "low", "medium", "high", "critical"; sr_severity_parse gives -1 for others. */
const char *sr_severity_name(int s);
int sr_severity_parse(const char *s);

struct sr_scratch {
	void *md; /* pcre2_match_data */
};
/* Sized for r's largest reported group; -1 when out of memory. */
int sr_scratch_init(struct sr_scratch *s, const struct sr_rules *r);
void sr_scratch_release(struct sr_scratch *s);

/* A match: the reported span [start, end) of the text. */
struct sr_span {
	size_t start, end;
};

/*
 * Appends the spans of rule i's matches in text[0, len), in order, that no
 * allow pattern (the rule's or the file's) excuses, to *v (growing it;
 * *n and *cap are its count and capacity), at most max in all. Returns 0;
 * SR_LIMIT when a limit stopped matching (spans found before it stay);
 * -1 with e filled on other errors (memory, more than max).
 */
int sr_scan(const struct sr_rules *r, size_t i, const char *text, size_t len, struct sr_scratch *s,
	    struct sr_span **v, size_t *n, size_t *cap, size_t max, struct qn_err *e);

/*
 * 1 when one of the file's global allow patterns matches value (a
 * detector's finding), 0 when none does (or r is NULL), SR_LIMIT when a
 * limit stopped an allow pattern.
 */
int sr_allowed(const struct sr_rules *r, const char *value, size_t n, struct sr_scratch *s);

#endif
