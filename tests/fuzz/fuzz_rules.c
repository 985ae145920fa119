/*
 * fuzz_rules.c - libFuzzer target for clean/rules: the input is a rules
 * file and a text, split at the first NUL byte (no NUL: all rules file,
 * and the file itself is also the text). When the rules parse, they are
 * applied to the text; the result must be consistent: a dropped document
 * has an empty output and a "rule:" reason naming a drop rule, otherwise
 * the hit counts add up to redactions and tags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nul = memchr(s, 0, size);
	size_t flen = nul ? (size_t)(nul - s) : size;
	const char *text = nul ? nul + 1 : s;
	size_t tlen = nul ? size - flen - 1 : size;
	struct qn_err e;

	struct cn_rules *r = cn_rules_parse(s, flen, "r", &e);
	if (!r)
		return 0;
	struct cn_rules_result res;
	struct qn_buf out;
	qn_buf_init(&out, 1 << 24);
	if (cn_rules_result_init(&res, r) < 0)
		abort();
	if (cn_rules_apply(r, text, tlen, &out, &res, &e) == 0) {
		uint64_t red = 0;
		size_t tags = 0;
		for (size_t i = 0; i < res.n; i++) {
			if (cn_rules_action(r, i) == CN_RULE_REDACT)
				red += res.hits[i];
			else if (cn_rules_action(r, i) == CN_RULE_TAG)
				tags += res.hits[i] != 0;
		}
		if (res.dropped) {
			if (out.len || res.drop_rule >= res.n ||
			    cn_rules_action(r, res.drop_rule) != CN_RULE_DROP ||
			    strncmp(res.reason, "rule:", 5) ||
			    strcmp(res.reason + 5, cn_rules_name(r, res.drop_rule)))
				abort();
		} else if (red != res.redactions || tags != res.ntags || (!red && (out.len != tlen || (tlen && memcmp(out.data, text, tlen))))) {
			abort();
		}
	}
	cn_rules_result_release(&res);
	qn_buf_release(&out);
	cn_rules_free(r);
	return 0;
}
