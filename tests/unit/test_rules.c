/* test_rules.c - unit tests for clean/rules: parsing with exact error
 * places, PCRE2 errors, and drop/tag/redact on texts. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "rules.h"

static struct qn_err e;

static struct cn_rules *parse(const char *t)
{
	e.msg[0] = 0;
	return cn_rules_parse(t, strlen(t), "rules.yaml", &e);
}

#define ERR(name, text, want)                                        \
	do {                                                         \
		struct cn_rules *r_ = parse(text);                   \
		CHECK_NAMED(name " fails", r_ == NULL);              \
		CHECK_STR(name, e.msg, want);                        \
		cn_rules_free(r_);                                   \
	} while (0)

static void test_errors(void)
{
	ERR("bad pattern", "rules:\n  - name: x\n    pattern: 'a(b'\n    action: drop\n",
	    "rules.yaml:3:14: rule 'x': pattern error at offset 3: missing closing parenthesis");
	ERR("bad action", "rules:\n  - name: x\n    pattern: a\n    action: delete\n",
	    "rules.yaml:4:13: 'action' must be one of: drop, redact, tag");
	ERR("no action", "rules:\n  - name: x\n    pattern: a\n",
	    "rules.yaml:2:5: rule 'x' needs an 'action' (drop, redact or tag)");
	ERR("no name", "rules:\n  - pattern: a\n    action: tag\n", "rules.yaml:2:5: a rule needs a 'name'");
	ERR("bad name", "rules:\n  - {name: 'a b', pattern: a, action: tag}\n",
	    "rules.yaml:2:12: 'name' must be 1 to 64 of A-Z a-z 0-9 _ . : -");
	ERR("dup name", "rules:\n  - {name: a, pattern: a, action: tag}\n  - {name: a, pattern: b, action: tag}\n",
	    "rules.yaml:3:12: another rule is called 'a'");
	ERR("unknown key", "rules:\n  - {name: a, pattern: a, action: tag, flag: [x]}\n",
	    "rules.yaml:2:40: unknown key 'flag' in a rule");
	ERR("bad flag", "rules:\n  - {name: a, pattern: a, action: tag, flags: [caseless, x]}\n",
	    "rules.yaml:2:58: unknown flag 'x' (caseless, multiline, dotall, extended)");
	ERR("replacement on tag", "rules:\n  - {name: a, pattern: a, action: tag, replacement: b}\n",
	    "rules.yaml:2:53: 'replacement' is only for redact rules");
	ERR("empty redact", "rules:\n  - {name: a, pattern: 'x*', action: redact}\n",
	    "rules.yaml:2:24: rule 'a': a redact pattern must not match an empty string");
	ERR("yaml", "rules: [\n", "rules.yaml:2:1: did not find expected node content (while parsing a flow node)");
	ERR("not a list", "rules: {}\n", "rules.yaml:1:8: 'rules' must be a list");
	ERR("top key", "rule: []\n", "rules.yaml:1:1: unknown key 'rule' in the rules file");
	struct cn_rules *r = cn_rules_load("/nonexistent/r.yaml", &e);
	CHECK(r == NULL);
	CHECK_STR("missing file", e.msg, "cannot open '/nonexistent/r.yaml': No such file or directory");
}

static void test_apply(void)
{
	char path[4096];
	const char *top = getenv("QN_TOP");
	snprintf(path, sizeof path, "%s/tests/fixtures/clean/rules.yaml", top ? top : ".");
	struct cn_rules *r = cn_rules_load(path, &e);
	CHECK(r != NULL);
	if (!r) {
		printf("  %s\n", e.msg);
		return;
	}
	CHECK(cn_rules_count(r) == 3);
	CHECK_STR("name", cn_rules_name(r, 1), "lorem-ipsum");
	CHECK(cn_rules_action(r, 2) == CN_RULE_TAG);
	struct cn_rules_result res;
	struct qn_buf out;
	qn_buf_init(&out, 1 << 20);
	CHECK(cn_rules_result_init(&res, r) == 0);

	const char *t1 = "see db1.corp.example.com and WEB.Corp.Example.COM now";
	CHECK(cn_rules_apply(r, t1, strlen(t1), &out, &res, &e) == 0);
	CHECK_STR("redacted", out.data, "see <HOST> and <HOST> now");
	CHECK(!res.dropped && res.redactions == 2 && res.hits[0] == 2 && res.ntags == 0);

	const char *t2 = "Intro\n```\ncode\n```\nLorem Ipsum Dolor sit";
	CHECK(cn_rules_apply(r, t2, strlen(t2), &out, &res, &e) == 0);
	CHECK(res.dropped && res.drop_rule == 1 && out.len == 0);
	CHECK_STR("reason", res.reason, "rule:lorem-ipsum");

	const char *t3 = "Intro\n```\ncode\n```\n";
	CHECK(cn_rules_apply(r, t3, strlen(t3), &out, &res, &e) == 0);
	CHECK(!res.dropped && res.ntags == 1 && res.hits[2] == 1 && res.redactions == 0);
	CHECK_STR("unchanged", out.data, t3);

	const char t4[] = "x\xff.corp.example.com \0 a1.corp.example.com";
	CHECK(cn_rules_apply(r, t4, sizeof t4 - 1, &out, &res, &e) == 0);
	CHECK(res.redactions == 1 && out.len == sizeof t4 - 1 - 19 + 6);
	cn_rules_result_release(&res);
	cn_rules_free(r);

	/* chained redactions, UCP, a match limit */
	r = parse("rules:\n  - {name: a, pattern: 'caf\\w', action: redact, replacement: '[\\1]'}\n"
		  "  - {name: b, pattern: '\\[', action: redact, replacement: '('}\n"
		  "  - {name: slow, pattern: '(a+)+$', action: tag}\n");
	CHECK(r != NULL);
	if (!r) {
		printf("  %s\n", e.msg);
		qn_buf_release(&out);
		return;
	}
	CHECK(cn_rules_result_init(&res, r) == 0);
	const char *t5 = "un caf\xc3\xa9 noir";
	CHECK(cn_rules_apply(r, t5, strlen(t5), &out, &res, &e) == 0);
	CHECK_STR("chained", out.data, "un (\\1] noir");
	CHECK(res.hits[0] == 1 && res.hits[1] == 1);
	char slow[64];
	memset(slow, 'a', 40);
	strcpy(slow + 40, "b");
	int rc = cn_rules_apply(r, slow, strlen(slow), &out, &res, &e);
	CHECK_NAMED("catastrophic pattern bounded", rc == 0 || strstr(e.msg, "limit"));
	struct qn_buf small;
	qn_buf_init(&small, 4);
	CHECK(cn_rules_apply(r, t5, strlen(t5), &small, &res, &e) == -1);
	qn_buf_release(&small);
	cn_rules_result_release(&res);
	cn_rules_free(r);
	qn_buf_release(&out);

	r = parse("rules:\n");
	CHECK(r && cn_rules_count(r) == 0);
	cn_rules_free(r);
}

int main(void)
{
	test_errors();
	test_apply();
	return CHECK_DONE();
}
