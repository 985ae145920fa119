/*
 * fuzz_audit_rules.c - libFuzzer target for quern-audit scan's rules files
 * (audit/scan_rules.c over lib/ytree.c): the input is a rules file
 * and a text, split at the first NUL byte (no NUL: the file is also the
 * text). When the rules parse, every rule is matched over the text; each
 * span must be non-empty and inside the text (a group in a lookaround may
 * lie outside its match, so spans need not be ordered), and a limit must
 * end a scan with SR_LIMIT, never a crash or a hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "scan_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nul = memchr(s, 0, size);
	size_t flen = nul ? (size_t)(nul - s) : size;
	const char *text = nul ? nul + 1 : s;
	size_t tlen = nul ? size - flen - 1 : size;
	struct qn_err e;
	struct sr_scratch sc;

	struct sr_rules *r = sr_rules_parse(s, flen, "r.yaml", &e);
	if (!r) {
		if (!e.msg[0])
			abort(); /* a failure always says why */
		return 0;
	}
	if (sr_scratch_init(&sc, r) < 0)
		abort();
	struct sr_span *v = NULL;
	size_t n, cap = 0;
	for (size_t i = 0; i < sr_count(r); i++) {
		const struct sr_rule *x = sr_rule(r, i);
		if (!x->id || strncmp(x->rule_id, "QN-POLICY-", 10) ||
		    strcmp(x->rule_id + 10, x->id) || !x->type || !x->message || x->severity < 0 ||
		    x->severity > 3)
			abort();
		n = 0;
		int rc = sr_scan(r, i, text, tlen, &sc, &v, &n, &cap, 1000, &e);
		if (rc != 0 && rc != SR_LIMIT && rc != -1)
			abort();
		for (size_t k = 0; k < n; k++)
			if (v[k].start >= v[k].end || v[k].end > tlen)
				abort();
	}
	int a = sr_allowed(r, text, tlen, &sc);
	if (a != 0 && a != 1 && a != SR_LIMIT)
		abort();
	free(v);
	sr_scratch_release(&sc);
	sr_rules_free(r);
	return 0;
}
