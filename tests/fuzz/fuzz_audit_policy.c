/*
 * fuzz_audit_policy.c - libFuzzer target for quern-audit scan's policy
 * files (audit/scan_policy.c over lib/ytree.c): the input is parsed
 * as a policy file and as a --gate value. Every gate that parses must
 * evaluate consistently: no findings always pass, a rate gate passes with
 * no documents, and a count that fails stays failed when it grows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "scan_policy.h"

static void check(const struct sp_policy *p)
{
	char reason[400], lim[96];
	for (size_t i = 0; i < p->n; i++) {
		const struct sp_gate *g = &p->v[i];
		if (!g->id || !g->text || !g->where || g->limit < 0 || g->per < 0 ||
		    (g->subject == SP_SEVERITY && (g->level < 0 || g->level > 3)) ||
		    ((g->subject == SP_TYPE || g->subject == SP_RULE || g->subject == SP_KIND) &&
		     !g->name))
			abort();
		sp_gate_limit_text(g, lim, sizeof lim);
		if (!sp_gate_eval(g, 0, 100, reason, sizeof reason) ||
		    (g->per > 0 && !sp_gate_eval(g, 1000, 0, reason, sizeof reason)))
			abort();
		int failed = 0;
		for (uint64_t n = 0; n < 64; n++) {
			int ok = sp_gate_eval(g, n, 1000, reason, sizeof reason);
			if (failed && ok)
				abort();
			failed |= !ok;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_err e;
	for (int bare = 0; bare < 2; bare++) {
		struct sp_policy *p = sp_policy_new();
		if (!p)
			abort();
		e.msg[0] = 0;
		if (sp_policy_parse(p, (const char *)data, size, "p.yaml", bare, &e) == 0)
			check(p);
		else if (!e.msg[0])
			abort();
		sp_policy_free(p);
	}
	return 0;
}
