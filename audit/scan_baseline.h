/*
 * scan_baseline.h - quern-audit scan's baseline: the findings a team has
 * reviewed and accepted, so that a scan reports them as suppressed and its
 * gates count only new ones (detect-secrets' and gitleaks' baselines).
 *
 *   {
 *     "format": "quern-audit-baseline",
 *     "version": 1,
 *     "salt": "quern-audit-v1",
 *     "findings": [
 *       {"fingerprint": "<32 hex>", "rule": "QN-PII-EMAIL", "hash": "<64 hex>",
 *        "source": "docs.jsonl", "doc": "d17"},
 *       {"hash": "<64 hex>", "rule": "QN-PII-EMAIL", "note": "our support address"}
 *     ]
 *   }
 *
 * An entry with a fingerprint suppresses exactly that finding (rule, source,
 * document, value). An entry with only a hash (and optionally a rule)
 * suppresses that value wherever it is found: a hand-written allow-list
 * entry. Other keys are kept for people ("note"). The salt is the one the
 * hashes were made with; a scan with a baseline uses it (docs/audit.md).
 *
 * Errors: JSON syntax errors name file:line:column; an entry that is not
 * well formed is named by its index ("base.json: findings[3]: ...").
 *
 * Ownership: sb_load returns a baseline freed by sb_free; read-only after
 * loading, so threads may call sb_match at once.
 */
#ifndef SCAN_BASELINE_H
#define SCAN_BASELINE_H

#include <stddef.h>

#include <jansson.h>

struct qn_err;

#define SB_FORMAT "quern-audit-baseline"
#define SB_MAX_BYTES ((size_t)1 << 30)

struct sb_baseline;

struct sb_baseline *sb_load(const char *path, struct qn_err *e);
void sb_free(struct sb_baseline *b);

/* The salt the file names, or NULL. */
const char *sb_salt(const struct sb_baseline *b);
/* The entries without a fingerprint (carried into a rewritten baseline); borrowed. */
json_t *sb_manual(const struct sb_baseline *b);

/* 1 when the finding is suppressed: its fingerprint, or its hash (with its rule) is listed. */
int sb_match(const struct sb_baseline *b, const char *fingerprint, const char *rule,
	     const char *hash);

/*
 * Writes a baseline to path atomically: the salt, the entries (objects with
 * fingerprint, rule, hash, source, doc; sorted by source, doc, rule and
 * fingerprint, duplicates dropped) and then the manual ones (may be NULL),
 * one entry a line so that reviews read as diffs. Steals nothing.
 */
int sb_write(const char *path, const char *salt, json_t *entries, const json_t *manual,
	     struct qn_err *e);

#endif
