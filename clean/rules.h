/*
 * rules.h - quern-clean's rules file: named PCRE2 patterns, each with an
 * action on the documents it matches.
 *
 *   rules:
 *     - name: internal-hostnames
 *       pattern: '\b[a-z0-9-]+\.corp\.example\.com\b'
 *       action: redact         # drop | redact | tag
 *       replacement: '<HOST>'  # redact only; default "<REDACTED>"
 *       flags: [caseless]      # caseless, multiline, dotall, extended
 *
 * cn_rules_parse reads the file (through lib/ytree.h's YAML reader, with its
 * limits) and compiles every pattern with PCRE2_UTF | PCRE2_UCP |
 * PCRE2_MATCH_INVALID_UTF (so any bytes may be matched safely), then JIT
 * (falling back to the interpreter where JIT is unavailable). Errors carry
 * the place: "rules.yaml:4:14: rule 'x': pattern error at offset 3: missing
 * closing parenthesis". Names are 1..CN_RULE_NAME_MAX characters of
 * [A-Za-z0-9_.:-] and unique. A redact pattern that can match the empty
 * string is refused.
 *
 * cn_rules_apply evaluates, in this order: the drop rules in file order,
 * stopping at the first that matches (the document is rejected with reason
 * "rule:<name>"; nothing else runs); the tag rules (each that matches is
 * marked in the result: the tool stores their names); the redact rules in
 * file order, each replacing every non-overlapping match in the text the
 * previous one left. Matching is bounded by CN_RULES_MATCH_LIMIT; a match
 * that hits it (or another PCRE2 error) fails the call with -1.
 *
 * Ownership and threads: a struct cn_rules is read-only after parsing, so
 * any number of threads may call cn_rules_apply on it at once, each with its
 * own result and output (match data is made per call). cn_rules_free
 * accepts NULL.
 */
#ifndef CN_RULES_H
#define CN_RULES_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;
struct qn_err;

#define CN_RULE_NAME_MAX 64
#define CN_RULES_MAX 10000
#define CN_RULES_MATCH_LIMIT 1000000

enum cn_rule_action {
	CN_RULE_DROP,
	CN_RULE_REDACT,
	CN_RULE_TAG,
};

struct cn_rules;

/* file names the text in messages. NULL with e filled on any error. */
struct cn_rules *cn_rules_parse(const char *text, size_t len, const char *file, struct qn_err *e);
struct cn_rules *cn_rules_load(const char *path, struct qn_err *e);
void cn_rules_free(struct cn_rules *r);

size_t cn_rules_count(const struct cn_rules *r);
const char *cn_rules_name(const struct cn_rules *r, size_t i);
enum cn_rule_action cn_rules_action(const struct cn_rules *r, size_t i);

struct cn_rules_result {
	int dropped;          /* 1: the document is rejected */
	size_t drop_rule;     /* then: the rule's index */
	char reason[CN_RULE_NAME_MAX + 8]; /* then: "rule:<name>" */
	size_t ntags;         /* tag rules that matched */
	uint64_t redactions;  /* matches replaced, all redact rules */
	uint64_t *hits;       /* per rule: 1 when a drop/tag rule matched, replacements for redact */
	size_t n;             /* cn_rules_count */
};

/* Sized for r; -1 when out of memory. */
int cn_rules_result_init(struct cn_rules_result *res, const struct cn_rules *r);
void cn_rules_result_release(struct cn_rules_result *res);

/*
 * Applies r to text[0, len) (any bytes). Resets res, then fills it; out's
 * contents are replaced by the redacted text, or emptied when the document
 * is dropped. 0, or -1 with e filled (match limit, out->max, memory).
 */
int cn_rules_apply(const struct cn_rules *r, const char *text, size_t len, struct qn_buf *out,
		   struct cn_rules_result *res, struct qn_err *e);

#endif
