/*
 * test_ytree.c - unit tests for lib/ytree: the tree and its places, parse
 * errors as file:line:column, the limits (bytes, depth, values; the
 * defaults and a caller's tighter ones), aliases refused, the typed getters'
 * messages, the key check, the setters, and reading a file.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "ytree.h"

static struct qn_err e;

static int parse(struct qn_yval *root, const char *text)
{
	e.msg[0] = 0;
	return qn_yaml_parse(text, strlen(text), "t.yaml", root, &e);
}

/* Parses text, which must fail, and checks the message. */
static void parse_err(const char *name, const char *text, const char *want)
{
	struct qn_yval root;
	CHECK_NAMED(name, parse(&root, text) == -1);
	CHECK_STR(name, e.msg, want);
}

static void test_tree(void)
{
	struct qn_yval root;
	char w[64];

	CHECK(parse(&root, "a: 1\n"
			   "b: 'two'\n"
			   "c: [x, ~, {d: null}]\n"
			   "e:\n"
			   "  f: |\n"
			   "    block\n") == 0);
	CHECK(root.type == QN_YMAP && root.n == 4);
	const struct qn_yval *a = qn_yval_get(&root, "a"), *b = qn_yval_get(&root, "b");
	const struct qn_yval *c = qn_yval_get(&root, "c"),
			     *f = qn_yval_get(qn_yval_get(&root, "e"), "f");
	CHECK(a && a->type == QN_YSCALAR && !strcmp(a->s, "1") && a->slen == 1 && !a->quoted);
	CHECK(b && b->type == QN_YSCALAR && !strcmp(b->s, "two") && b->quoted);
	CHECK(f && f->type == QN_YSCALAR && !strcmp(f->s, "block\n") && f->quoted);
	CHECK(c && c->type == QN_YLIST && c->n == 3 && c->v[1].type == QN_YNULL);
	CHECK(c && c->n == 3 && c->v[2].type == QN_YMAP && c->v[2].v[0].type == QN_YNULL);
	CHECK(!qn_yval_get(&root, "z") && !qn_yval_get(a, "a") && !qn_yval_get(NULL, "a"));
	CHECK_STR("a value's place", qn_yval_where(c, w, sizeof w), "t.yaml:3:4: ");
	CHECK_STR("a key's place", qn_yval_key_where(c, w, sizeof w), "t.yaml:3:1: ");
	CHECK_STR("a list item's place", qn_yval_where(&c->v[2], w, sizeof w), "t.yaml:3:11: ");
	CHECK_STR("type name: map", qn_yval_type_name(&root), "a map");
	CHECK_STR("type name: list", qn_yval_type_name(c), "a list");
	CHECK_STR("type name: value", qn_yval_type_name(a), "a value");
	CHECK_STR("type name: null", qn_yval_type_name(&c->v[1]), "nothing");
	qn_yval_release(&root);
	CHECK(root.type == QN_YNULL && root.n == 0 && !root.v);
	qn_yval_release(NULL);

	CHECK(parse(&root, "") == 0 && root.type == QN_YNULL && root.line == 1);
	CHECK_STR("an empty file's place", qn_yval_where(&root, w, sizeof w), "t.yaml:1:1: ");
	qn_yval_release(&root);
	CHECK(qn_yaml_parse("x", 1, NULL, &root, &e) == 0 && !strcmp(root.file, "-"));
	qn_yval_release(&root);
	/* Scalars may hold NULs: slen says how long they are. */
	CHECK(parse(&root, "a: \"x\\0y\"\n") == 0 && root.n == 1 && root.v[0].slen == 3);
	qn_yval_release(&root);
}

static void test_errors(void)
{
	parse_err("syntax", "a: {x: 1\n",
		  "t.yaml:2:1: did not find expected ',' or '}' (while parsing a flow mapping)");
	parse_err("tab", "a:\n\t- b\n",
		  "t.yaml:2:1: found character that cannot start any token (while scanning for the "
		  "next token)");
	parse_err("bad utf-8", "a: b\nc: \xff\n", "t.yaml:2:4: invalid leading UTF-8 octet");
	parse_err("alias", "a: &x [1]\nb: *x\n", "t.yaml:2:4: aliases are not supported");
	parse_err("alias as a key", "a: &x k\n*x : 1\n", "t.yaml:2:1: aliases are not supported");
	parse_err("duplicate key", "a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a'");
	parse_err("list as a key", "{[a]: 1}\n", "t.yaml:1:2: a map key must be a plain value");
	parse_err("NUL in a key", "\"a\\0b\": 1\n", "t.yaml:1:1: NUL in key 'a'");
	parse_err("two documents", "a: 1\n---\nb: 2\n",
		  "t.yaml:2:1: only one YAML document is allowed");
}

static void test_limits(void)
{
	struct qn_yval root;
	char text[256];

	/* Depth: 32 nested lists pass, the 33rd is refused where it starts. */
	memset(text, 0, sizeof text);
	memset(text, '[', 32);
	memset(text + 32, ']', 32);
	CHECK_NAMED("32 levels", parse(&root, text) == 0);
	qn_yval_release(&root);
	memset(text, 0, sizeof text);
	memset(text, '[', 33);
	memset(text + 33, ']', 33);
	parse_err("33 levels", text, "t.yaml:1:33: nested deeper than 32 levels");

	/* Values: the list and QN_YAML_MAX_NODES - 1 items pass; one more is refused. */
	size_t n = QN_YAML_MAX_NODES - 1, k = 0;
	char *big = malloc(2 * n + 4);
	big[k++] = '[';
	for (size_t i = 0; i < n; i++)
		k += (size_t)sprintf(big + k, i ? ",1" : "1");
	big[k++] = ']';
	CHECK_NAMED("100000 values",
		    qn_yaml_parse(big, k, "t.yaml", &root, &e) == 0 && root.n == n);
	qn_yval_release(&root);
	k += (size_t)sprintf(big + k - 1, ",1]") - 1;
	CHECK_NAMED("100001 values", qn_yaml_parse(big, k, "t.yaml", &root, &e) == -1);
	CHECK_STR("100001 values: the message", e.msg, "t.yaml:1:200000: too many values");
	free(big);

	/* Bytes: the text is refused before it is read. */
	char *huge = malloc(QN_YAML_MAX_BYTES + 1);
	memset(huge, ' ', QN_YAML_MAX_BYTES + 1);
	CHECK(qn_yaml_parse(huge, QN_YAML_MAX_BYTES, "t.yaml", &root, &e) == 0);
	qn_yval_release(&root);
	CHECK(qn_yaml_parse(huge, QN_YAML_MAX_BYTES + 1, "t.yaml", &root, &e) == -1);
	CHECK_STR("too large", e.msg, "t.yaml: larger than 1048576 bytes");
	free(huge);

	/* A caller's tighter limits; 0 or looser keep the defaults. */
	struct qn_yaml_limits lim = {.max_bytes = 10, .max_nodes = 3, .max_depth = 2};
	const char *t = "[[1]]";
	CHECK(qn_yaml_parse_limited(t, strlen(t), "l.yaml", &lim, &root, &e) == 0);
	qn_yval_release(&root);
	t = "[[[1]]]";
	CHECK(qn_yaml_parse_limited(t, strlen(t), "l.yaml", &lim, &root, &e) == -1);
	CHECK_STR("tighter depth", e.msg, "l.yaml:1:3: nested deeper than 2 levels");
	t = "[1, 2, 3]";
	CHECK(qn_yaml_parse_limited(t, strlen(t), "l.yaml", &lim, &root, &e) == -1);
	CHECK_STR("tighter values", e.msg, "l.yaml:1:8: too many values");
	t = "[1, 2]    ";
	CHECK(qn_yaml_parse_limited(t, strlen(t), "l.yaml", &lim, &root, &e) == 0);
	qn_yval_release(&root);
	t = "[1, 2]     ";
	CHECK(qn_yaml_parse_limited(t, strlen(t), "l.yaml", &lim, &root, &e) == -1);
	CHECK_STR("tighter bytes", e.msg, "l.yaml: larger than 10 bytes");
	struct qn_yaml_limits loose = {.max_depth = 1000};
	memset(text, 0, sizeof text);
	memset(text, '[', 33);
	memset(text + 33, ']', 33);
	CHECK(qn_yaml_parse_limited(text, strlen(text), "l.yaml", &loose, &root, &e) == -1);
	CHECK_STR("looser depth keeps the default", e.msg,
		  "l.yaml:1:33: nested deeper than 32 levels");
}

static void test_getters(void)
{
	struct qn_yval root;
	long n = 7;
	double d = 0;
	int b = -1, k = -1;
	const char *s = NULL, **l = NULL;
	const struct qn_yval *m = NULL;
	size_t nl = 0;
	static const char *const keep[] = {"first", "last", NULL};

	CHECK(parse(&root, "i: 14\n"
			   "neg: -3\n"
			   "q: '5'\n"
			   "f: 0.25\n"
			   "inf: .inf\n"
			   "yes: On\n"
			   "qb: 'true'\n"
			   "s: text\n"
			   "k: last\n"
			   "l: [a, 'b']\n"
			   "one: solo\n"
			   "nested: [a, [b]]\n"
			   "m: {x: 1}\n"
			   "nil: ~\n") == 0);
	CHECK(qn_yget_int(&root, "i", 1, LONG_MAX, &n, &e) == 1 && n == 14);
	CHECK(qn_yget_int(&root, "absent", 1, 10, &n, &e) == 0 && n == 14);
	CHECK(qn_yget_int(&root, "nil", 1, 10, &n, &e) == 0 && n == 14);
	CHECK(qn_yget_int(&root, "neg", LONG_MIN, LONG_MAX, &n, &e) == 1 && n == -3);
	CHECK(qn_yget_int(&root, "neg", 0, LONG_MAX, &n, &e) == -1);
	CHECK_STR("int: non-negative", e.msg, "t.yaml:2:6: 'neg' must be a non-negative integer");
	CHECK(qn_yget_int(&root, "q", 1, 20, &n, &e) == -1);
	CHECK_STR("int: quoted", e.msg, "t.yaml:3:4: 'q' must be an integer from 1 to 20");
	CHECK(qn_yget_int(&root, "f", LONG_MIN, LONG_MAX, &n, &e) == -1);
	CHECK_STR("int: a fraction", e.msg, "t.yaml:4:4: 'f' must be an integer");
	CHECK(qn_yget_int(&root, "l", 5, LONG_MAX, &n, &e) == -1);
	CHECK_STR("int: a list", e.msg, "t.yaml:10:4: 'l' must be an integer of at least 5");
	CHECK(qn_yget_int(&root, "i", 1, LONG_MAX, &n, &e) == 1 && n == 14);

	CHECK(qn_yget_double(&root, "f", 0, 1, &d, &e) == 1 && d == 0.25);
	CHECK(qn_yget_double(&root, "i", 0, 1, &d, &e) == -1);
	CHECK_STR("double: range", e.msg, "t.yaml:1:4: 'i' must be a number from 0 to 1");
	CHECK(qn_yget_double(&root, "inf", 0, 1e300, &d, &e) == -1);
	CHECK(qn_yget_double(&root, "q", 0, 10, &d, &e) == -1);

	CHECK(qn_yget_bool(&root, "yes", &b, &e) == 1 && b == 1);
	CHECK(qn_yget_bool(&root, "qb", &b, &e) == -1);
	CHECK_STR("bool: quoted", e.msg, "t.yaml:7:5: 'qb' must be true or false");

	CHECK(qn_yget_str(&root, "i", &s, &e) == 1 && !strcmp(s, "14"));
	CHECK(qn_yget_str(&root, "m", &s, &e) == -1);
	CHECK_STR("str: a map", e.msg, "t.yaml:13:4: 'm' must be a string");

	CHECK(qn_yget_choice(&root, "k", keep, &k, &e) == 1 && k == 1);
	CHECK(qn_yget_choice(&root, "s", keep, &k, &e) == -1);
	CHECK_STR("choice", e.msg, "t.yaml:8:4: 's' must be one of: first, last");

	CHECK(qn_yget_strlist(&root, "l", &l, &nl, &e) == 1 && nl == 2 && !strcmp(l[1], "b"));
	free(l);
	CHECK(qn_yget_strlist(&root, "one", &l, &nl, &e) == 1 && nl == 1 && !strcmp(l[0], "solo"));
	free(l);
	CHECK(qn_yget_strlist(&root, "nested", &l, &nl, &e) == -1);
	CHECK_STR("strlist: a nested list", e.msg,
		  "t.yaml:12:13: 'nested' must be a list of strings");
	CHECK(qn_yget_strlist(&root, "m", &l, &nl, &e) == -1);

	CHECK(qn_yget_map(&root, "m", &m, &e) == 1 && m->n == 1);
	CHECK(qn_yget_map(&root, "l", &m, &e) == -1);
	CHECK_STR("map: a list", e.msg, "t.yaml:10:4: 'l' must be a map");

	static const char *const known[] = {"i", "neg", "q",   "f",	 "inf", "yes", "qb", "s",
					    "k", "l",	"one", "nested", "m",	"nil", NULL};
	CHECK(qn_ycheck_keys(&root, known, "the test", &e) == 0);
	static const char *const fewer[] = {"i", "neg", NULL};
	CHECK(qn_ycheck_keys(&root, fewer, "the test", &e) == -1);
	CHECK_STR("unknown key", e.msg, "t.yaml:3:1: unknown key 'q' in the test");
	CHECK(qn_ycheck_keys(qn_yval_get(&root, "l"), fewer, "a list", &e) == 0);
	qn_yval_release(&root);
}

static void test_setters(void)
{
	struct qn_yval root;
	char w[64];
	long n = 0;
	double d = 0;
	int b = -1;
	const char *s = NULL, **l = NULL;
	size_t nl = 0;

	CHECK(parse(&root, "a: 1\nb: x\n") == 0);
	CHECK(qn_yset_int(&root, "a", 42) == 0);
	CHECK(qn_yget_int(&root, "a", 0, 100, &n, &e) == 1 && n == 42);
	CHECK_STR("a replaced value keeps its place",
		  qn_yval_where(qn_yval_get(&root, "a"), w, sizeof w), "t.yaml:1:4: ");
	CHECK(qn_yset_double(&root, "c", 0.3) == 0 && !strcmp(qn_yval_get(&root, "c")->s, "0.3"));
	CHECK(qn_yset_double(&root, "c", 10) == 0 && !strcmp(qn_yval_get(&root, "c")->s, "10"));
	CHECK(qn_yget_double(&root, "c", 0, 100, &d, &e) == 1 && d == 10);
	CHECK_STR("an appended value has no line",
		  qn_yval_where(qn_yval_get(&root, "c"), w, sizeof w), "t.yaml: ");
	CHECK(qn_yset_bool(&root, "b", 0) == 0 && qn_yget_bool(&root, "b", &b, &e) == 1 && b == 0);
	/* Text that would read back as a number or a bool stays a string. */
	CHECK(qn_yset_str(&root, "s", "12") == 0 && qn_yval_get(&root, "s")->quoted);
	CHECK(qn_yget_int(&root, "s", 0, 100, &n, &e) == -1);
	CHECK(qn_yset_str(&root, "s", "plain") == 0 && !qn_yval_get(&root, "s")->quoted);
	CHECK(qn_yget_str(&root, "s", &s, &e) == 1 && !strcmp(s, "plain"));
	const char *v[] = {"EMAIL", "true"};
	CHECK(qn_yset_strlist(&root, "l", v, 2) == 0);
	CHECK(qn_yget_strlist(&root, "l", &l, &nl, &e) == 1 && nl == 2 && !strcmp(l[1], "true"));
	free(l);
	CHECK(qn_yval_get(&root, "l")->v[1].quoted && !qn_yval_get(&root, "l")->v[0].quoted);
	CHECK(root.n == 5);
	/* A list or scalar is no map to set in. */
	CHECK(qn_yset_int((struct qn_yval *)qn_yval_get(&root, "l"), "x", 1) == -1);
	qn_yval_release(&root);

	/* A null becomes a map. */
	memset(&root, 0, sizeof root);
	CHECK(qn_yset_str(&root, "k", "v") == 0 && root.type == QN_YMAP && root.n == 1);
	qn_yval_release(&root);

	CHECK(qn_yaml_needs_quotes("null") && qn_yaml_needs_quotes("~") &&
	      qn_yaml_needs_quotes("") && qn_yaml_needs_quotes("Yes") &&
	      qn_yaml_needs_quotes("1e3") && !qn_yaml_needs_quotes("a1"));
}

static void test_files(void)
{
	struct qn_yval root;
	char path[] = "/tmp/test_ytree_XXXXXX";
	int fd = mkstemp(path);
	char *text;
	size_t len;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, "a: [1, 2]\n", 10) == 10);
	close(fd);
	CHECK(qn_yaml_load(path, &root, &e) == 0 && qn_yval_get(&root, "a") &&
	      qn_yval_get(&root, "a")->n == 2 && !strcmp(root.file, path));
	qn_yval_release(&root);
	CHECK(qn_yaml_read_file(path, 10, &text, &len, &e) == 0 && len == 10 &&
	      !strcmp(text, "a: [1, 2]\n"));
	free(text);
	CHECK(qn_yaml_read_file(path, 9, &text, &len, &e) == -1 && !text);
	char want[128];
	snprintf(want, sizeof want, "%s: larger than 9 bytes", path);
	CHECK_STR("read: too large", e.msg, want);
	unlink(path);
	CHECK(qn_yaml_load(path, &root, &e) == -2);
	snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
	CHECK_STR("load: a missing file", e.msg, want);
	CHECK(qn_yaml_read_file("/", 100, &text, &len, &e) == -2);
	CHECK_STR("read: a directory", e.msg, "cannot read '/'");
}

int main(void)
{
	test_tree();
	test_errors();
	test_limits();
	test_getters();
	test_setters();
	test_files();
	return CHECK_DONE();
}
