/* test_config.c - unit tests for clean/config: the tree, typed getters with
 * their exact file:line:column messages, limits, and printing back. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "config.h"
#include "err.h"

static struct qn_err e;

static int parse(struct cn_config *c, const char *text)
{
	e.msg[0] = 0;
	return cn_config_parse(c, text, strlen(text), "clean.yaml", &e);
}

static void test_example(void)
{
	struct cn_config c;
	long n = 0;
	double d = 0;
	int b = -1, k = -1;
	const char *s = NULL;
	const char **list = NULL;
	size_t nl = 0;
	const struct qn_yval *m = NULL;

	cn_config_init(&c, NULL);
	const char *dir = getenv("QN_TOP");
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/fixtures/clean/clean.yaml", dir ? dir : ".");
	CHECK(cn_config_load(&c, path, &e) == 0);
	CHECK(c.n == 6);
	if (c.n != 6) {
		printf("  %s\n", e.msg);
		cn_config_release(&c);
		return;
	}
	CHECK_STR("step 0", c.steps[0].name, "normalize");
	CHECK_STR("step 5", c.steps[5].name, "rules");
	CHECK(c.steps[3].line == 6 && c.steps[3].col == 5);
	struct qn_yval *nd = &cn_config_find(&c, "near_dedup")->params;
	CHECK(qn_yget_int(nd, "bands", 1, LONG_MAX, &n, &e) == 1 && n == 14);
	CHECK(qn_yget_double(nd, "threshold", 0, 1, &d, &e) == 1 && d == 0.8);
	CHECK(qn_yget_bool(nd, "verify", &b, &e) == 1 && b == 0);
	static const char *const keep[] = {"first", "last", NULL};
	CHECK(qn_yget_choice(nd, "keep", keep, &k, &e) == 1 && k == 0);
	n = 7;
	CHECK(qn_yget_int(nd, "missing", 1, 10, &n, &e) == 0 && n == 7);
	static const char *const known[] = {"bands", "rows", "ngram", "threshold", "verify", "keep", NULL};
	CHECK(qn_ycheck_keys(nd, known, "near_dedup", &e) == 0);
	static const char *const fewer[] = {"bands", "rows", NULL};
	CHECK(qn_ycheck_keys(nd, fewer, "near_dedup", &e) == -1);
	CHECK_NAMED("unknown key message", strstr(e.msg, "clean.yaml:6:38: unknown key 'ngram' in near_dedup"));
	const struct qn_yval *pii = &c.steps[4].params;
	CHECK(qn_yget_strlist(pii, "types", &list, &nl, &e) == 1 && nl == 2 && !strcmp(list[1], "PHONE"));
	free(list);
	CHECK(qn_yget_str(pii, "mode", &s, &e) == 1 && !strcmp(s, "tag"));
	CHECK(qn_yget_map(&c.steps[2].params, "c4", &m, &e) == 1 &&
	      qn_yget_str(m, "bad_words", &s, &e) == 1 && !strcmp(s, "words.txt"));
	cn_config_release(&c);
}

#define ERR(name, text, want)                                                      \
	do {                                                                       \
		struct cn_config c_;                                               \
		cn_config_init(&c_, NULL);                                         \
		CHECK_NAMED(name " fails", parse(&c_, text) == -1);                \
		CHECK_STR(name, e.msg, want);                                      \
		cn_config_release(&c_);                                            \
	} while (0)

static void test_errors(void)
{
	ERR("syntax", "steps:\n  - a: {x: 1\n", "clean.yaml:3:1: did not find expected ',' or '}' (while parsing a flow mapping)");
	ERR("tab indent", "steps:\n\t- a\n", "clean.yaml:2:1: found character that cannot start any token (while scanning for the next token)");
	ERR("alias", "x: &a [1]\nsteps: *a\n", "clean.yaml:2:8: aliases are not supported");
	ERR("top key", "x: 1\nsteps: []\n", "clean.yaml:1:1: unknown key 'x' in the config");
	ERR("alias refused", "steps: &a [b]\nother: *a\n", "clean.yaml:2:8: aliases are not supported");
	ERR("duplicate key", "steps: []\nsteps: []\n", "clean.yaml:2:1: duplicate key 'steps'");
	ERR("not a map", "- a\n", "clean.yaml:1:1: expected a map with 'steps'");
	ERR("missing steps", "{}\n", "clean.yaml:1:1: 'steps' is missing");
	ERR("steps scalar", "steps: 3\n", "clean.yaml:1:8: 'steps' must be a list");
	ERR("params list", "steps:\n  - normalize: [1]\n", "clean.yaml:2:16: the parameters of 'normalize' must be a map");
	ERR("two keys", "steps:\n  - {a: 1, b: 2}\n", "clean.yaml:2:5: a step must be a name or 'name: {parameters}'");
	ERR("two docs", "steps: []\n---\nsteps: []\n", "clean.yaml:2:1: only one YAML document is allowed");
	ERR("bad utf8", "steps: [\xff]\n", "clean.yaml:1:9: invalid leading UTF-8 octet");
	char deep[200] = "steps: ";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	ERR("depth", deep, "clean.yaml:1:39: nested deeper than 32 levels");

	struct cn_config c;
	cn_config_init(&c, NULL);
	CHECK(parse(&c, "steps:\n  - near_dedup: {bands: 0, rows: x8, ngram: '5',\n      threshold: 1.5, verify: maybe, keep: any, types: {a: b}}\n") == 0);
	struct qn_yval *p = &c.steps[0].params;
	long n;
	double d;
	int b, k;
	const char **l;
	size_t nl;
	static const char *const keep[] = {"first", "last", NULL};
	CHECK(qn_yget_int(p, "bands", 1, LONG_MAX, &n, &e) == -1);
	CHECK_STR("positive int", e.msg, "clean.yaml:2:25: 'bands' must be a positive integer");
	CHECK(qn_yget_int(p, "rows", 0, LONG_MAX, &n, &e) == -1);
	CHECK_STR("non-negative int", e.msg, "clean.yaml:2:34: 'rows' must be a non-negative integer");
	CHECK(qn_yget_int(p, "ngram", 1, 20, &n, &e) == -1);
	CHECK_STR("quoted int", e.msg, "clean.yaml:2:45: 'ngram' must be an integer from 1 to 20");
	CHECK(qn_yget_double(p, "threshold", 0, 1, &d, &e) == -1);
	CHECK_STR("double range", e.msg, "clean.yaml:3:18: 'threshold' must be a number from 0 to 1");
	CHECK(qn_yget_bool(p, "verify", &b, &e) == -1);
	CHECK_STR("bool", e.msg, "clean.yaml:3:31: 'verify' must be true or false");
	CHECK(qn_yget_choice(p, "keep", keep, &k, &e) == -1);
	CHECK_STR("choice", e.msg, "clean.yaml:3:44: 'keep' must be one of: first, last");
	CHECK(qn_yget_strlist(p, "types", &l, &nl, &e) == -1);
	CHECK_STR("strlist", e.msg, "clean.yaml:3:56: 'types' must be a list of strings");
	CHECK(qn_yget_str(p, "types", (const char **)&l, &e) == -1);
	static const char *const known[] = {"bands", "rows", "ngram", "threshold", "verify", "keep", NULL};
	CHECK(qn_ycheck_keys(p, known, "near_dedup", &e) == -1);
	CHECK_STR("unknown key", e.msg, "clean.yaml:3:49: unknown key 'types' in near_dedup");
	cn_config_release(&c);
}

static void test_print(void)
{
	struct cn_config c, c2;
	struct qn_buf b1, b2;

	qn_buf_init(&b1, 1 << 20);
	qn_buf_init(&b2, 1 << 20);
	cn_config_init(&c, NULL);
	cn_config_init(&c2, NULL);
	CHECK(parse(&c, "steps:\n  - normalize: {form: nfc, s: 'true', q: \"a: b\", n: ~}\n  - exact_dedup\n"
			"  - x: {l: [1, 'two', [3]], m: {k: 'it''s'}}\n") == 0);
	struct cn_step *s = cn_config_add_step(&c, "near_dedup");
	CHECK(s && qn_yset_int(&s->params, "bands", 14) == 0 && qn_yset_double(&s->params, "threshold", 0.8) == 0 &&
	      qn_yset_bool(&s->params, "verify", 0) == 0 && qn_yset_str(&s->params, "keep", "first") == 0 &&
	      qn_yset_str(&s->params, "tag", "12") == 0);
	const char *types[] = {"EMAIL", "PHONE"};
	CHECK(qn_yset_strlist(&cn_config_find(&c, "exact_dedup")->params, "types", types, 2) == 0);
	CHECK(qn_yset_str(&c.steps[0].params, "form", "nfkc") == 0);
	CHECK(cn_config_print(&c, &b1) == 0);
	CHECK_STR("printed", b1.data,
		  "steps:\n"
		  "- normalize: {form: nfkc, s: 'true', q: 'a: b', n: null}\n"
		  "- exact_dedup: {types: [EMAIL, PHONE]}\n"
		  "- x: {l: [1, 'two', [3]], m: {k: 'it''s'}}\n"
		  "- near_dedup: {bands: 14, threshold: 0.8, verify: false, keep: first, tag: '12'}\n");
	CHECK(cn_config_parse(&c2, b1.data, b1.len, "printed", &e) == 0);
	CHECK(cn_config_print(&c2, &b2) == 0);
	CHECK_STR("round trip", b2.data, b1.data);
	double d;
	CHECK(qn_yget_double(&c2.steps[3].params, "threshold", 0, 1, &d, &e) == 1 && d == 0.8);
	cn_config_release(&c);
	cn_config_release(&c2);
	qn_buf_release(&b1);
	qn_buf_release(&b2);

	cn_config_init(&c, NULL);
	CHECK(parse(&c, "") == -1);
	CHECK(parse(&c, "steps:\n") == 0 && c.n == 0);
	CHECK(parse(&c, "steps: [a, b: {}]\n") == 0 && c.n == 2);
	char *big = malloc(CN_CONFIG_MAX_BYTES + 2);
	memset(big, ' ', CN_CONFIG_MAX_BYTES + 1);
	CHECK(cn_config_parse(&c, big, CN_CONFIG_MAX_BYTES + 1, "big.yaml", &e) == -1);
	CHECK_STR("too big", e.msg, "big.yaml: larger than 1048576 bytes");
	free(big);
	CHECK(cn_config_load(&c, "/nonexistent/x.yaml", &e) == -1);
	CHECK_STR("missing file", e.msg, "cannot open '/nonexistent/x.yaml': No such file or directory");
	cn_config_release(&c);
}

int main(void)
{
	test_example();
	test_errors();
	test_print();
	return CHECK_DONE();
}
