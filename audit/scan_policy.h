/*
 * scan_policy.h - quern-audit scan's policy gates: thresholds on the counts
 * of (non-suppressed) findings that decide the exit status.
 *
 *   gates:
 *     CREDIT_CARD: 0                    # at most 0 findings of that type
 *     type EMAIL: max 10 per 10k documents
 *     severity high: 0                  # high and critical together
 *     kind secret: 0                    # pii | secret | policy
 *     rule QN-POLICY-internal-hostname: 5
 *     total: 100
 *
 * A gate is "SUBJECT: LIMIT". The subject is "total", "type NAME" (or the
 * type NAME alone), "severity LEVEL" (that level and the ones above),
 * "kind KIND", "rule RULE-ID" or "regurgitated" (quern-audit probe: values
 * its training data holds). The limit is a count ("0", "max 3",
 * "at most 3", "3 findings") or a rate: "max 10 per 10k documents",
 * "2.5 per 1M documents", "0.1%" (per 100 documents); a rate gate passes
 * when findings * PER / documents is at most the limit (so 0 documents
 * pass). This module parses and evaluates; it knows no type or rule names:
 * the scan checks those against what it runs (sp_gate.where for messages).
 *
 * Errors name the place: "policy.yaml:3:16: gate 'EMAIL': expected a count
 * or a rate (max 10 per 10k documents), not 'ten'".
 *
 * Ownership: sp_policy_new / sp_policy_free; gates own their strings.
 */
#ifndef SCAN_POLICY_H
#define SCAN_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define SP_MAX_GATES 10000

/* SP_REGURGITATED: "regurgitated", findings of values the training data holds (probe). */
enum sp_subject { SP_TOTAL, SP_TYPE, SP_SEVERITY, SP_KIND, SP_RULE, SP_REGURGITATED };

struct sp_gate {
	char *id;    /* "total", "EMAIL" (a type), "severity high", "kind secret", "rule X" */
	char *text;  /* "id: limit" as written */
	char *where; /* "file:line:col: " of the subject */
	enum sp_subject subject;
	char *name;   /* SP_TYPE, SP_RULE: the name; SP_KIND: pii, secret or policy */
	int level;    /* SP_SEVERITY: 0 low .. 3 critical */
	double limit; /* at most this many findings (per `per` documents when per > 0) */
	double per;   /* 0: a plain count */
};

struct sp_policy {
	struct sp_gate *v;
	size_t n;
};

struct sp_policy *sp_policy_new(void);
void sp_policy_free(struct sp_policy *p);

/*
 * Adds the gates of a policy file's text (a map with "gates"), or, with
 * bare set, of a text that is itself the map of gates (the --gate flag:
 * "CREDIT_CARD: 0"). A subject given twice in one file is an error; a bare
 * gate replaces an earlier gate of the same subject (the flag overrides
 * the file). 0 or -1.
 */
int sp_policy_parse(struct sp_policy *p, const char *text, size_t len, const char *file, int bare,
		    struct qn_err *e);
int sp_policy_load(struct sp_policy *p, const char *path, struct qn_err *e);

/*
 * Evaluates a gate: 1 passed, 0 failed. reason gets "3 findings, at most 0"
 * or "37 findings in 20000 documents (18.5 per 10k), at most 10 per 10k".
 */
int sp_gate_eval(const struct sp_gate *g, uint64_t observed, uint64_t documents, char *reason,
		 size_t size);
/* The limit as text: "0", "10 per 10k documents". */
void sp_gate_limit_text(const struct sp_gate *g, char *out, size_t size);

#endif
