/* test_normalize.c - unit tests for clean/normalize. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "check.h"
#include "normalize.h"

static struct qn_buf out;
static struct cn_norm_counts cnt;

static const char *norm(const char *s, const struct cn_norm_opts *o)
{
	memset(&cnt, 0, sizeof cnt);
	if (cn_normalize(s, strlen(s), o, &out, &cnt) < 0)
		return "(error)";
	return out.data ? out.data : "";
}

static void test_ascii(void)
{
	CHECK_STR("plain ascii unchanged", norm("Hello, world.\nSecond line.", NULL),
		  "Hello, world.\nSecond line.");
	CHECK_STR("empty", norm("", NULL), "");
	CHECK_STR("crlf", norm("a\r\nb\rc", NULL), "a\nb\nc");
	CHECK(cnt.line_endings == 2);
	CHECK_STR("trailing spaces", norm("a  \t\nb", NULL), "a\nb");
	CHECK(cnt.trailing_space == 3);
	CHECK_STR("collapse", norm("a  b\t\tc d\te", NULL), "a b c d\te");
	CHECK(cnt.collapsed_space == 2);
	CHECK_STR("indent kept", norm("x\n    y  z", NULL), "x\n    y z");
	CHECK_STR("blank lines", norm("a\n\n\n\n\nb\n\n\nc", NULL), "a\n\n\nb\n\n\nc");
	CHECK(cnt.blank_lines == 2);
	CHECK_STR("blank with spaces", norm("a\n \n\t\n  \n\nb", NULL), "a\n\n\nb");
	CHECK_STR("trim", norm(" \n\t a b \n\n", NULL), "a b");
	CHECK(cnt.trimmed == 7);
	CHECK_STR("controls", norm("a\x01\x1b[0mb\x7f", NULL), "a[0mb");
	CHECK(cnt.control == 3);
	CHECK_STR("tab alone kept", norm("a\tb", NULL), "a\tb");

	struct cn_norm_opts o;
	cn_norm_opts_init(&o);
	o.collapse_spaces = 0;
	o.max_blank_lines = -1;
	o.trim = 0;
	CHECK_STR("no collapse/trim", norm("  a   b\n\n\n\n\nc\n", &o), "  a   b\n\n\n\n\nc\n");
	o.max_blank_lines = 0;
	CHECK_STR("max blank 0", norm("a\n\nb\n\n\nc", &o), "a\nb\nc");
	CHECK(cnt.blank_lines == 3);
	o.max_blank_lines = 1;
	CHECK_STR("leading blanks no trim", norm("\n\n\nx", &o), "\nx");
}

static void test_unicode(void)
{
	CHECK_STR("nfc compose", norm("e\xcc\x81t\xc3\xa9", NULL), "\xc3\xa9t\xc3\xa9");
	CHECK(cnt.unicode_form == 2);
	CHECK_STR("nfc mid-text", norm("caf" "e\xcc\x81 ok", NULL), "caf\xc3\xa9 ok");
	CHECK_STR("nfc keeps ligature", norm("\xef\xac\x81x", NULL), "\xef\xac\x81x");
	struct cn_norm_opts o;
	cn_norm_opts_init(&o);
	o.form = CN_NORM_NFKC;
	CHECK_STR("nfkc ligature", norm("\xef\xac\x81x \xef\xbc\xa1", &o), "fix A");
	o.form = CN_NORM_NONE;
	CHECK_STR("form none", norm("e\xcc\x81", &o), "e\xcc\x81");
	CHECK(cnt.unicode_form == 0);
	CHECK_STR("nbsp and friends", norm("a\xc2\xa0" "b\xe2\x80\x83" "c\xe3\x80\x80" "d", NULL),
		  "a b c d");
	CHECK(cnt.unicode_space == 3);
	CHECK_STR("nbsp run collapses", norm("a\xc2\xa0 b", NULL), "a b");
	o.form = CN_NORM_NFC;
	o.unicode_spaces = 0;
	CHECK_STR("nbsp kept when off", norm("a\xc2\xa0" "b", &o), "a\xc2\xa0" "b");
	CHECK_STR("invisibles",
		  norm("\xef\xbb\xbfzero\xe2\x80\x8bwidth\xc2\xad\xe2\x80\xaex\xe2\x81\xa9y\xe2\x81\xa0", NULL),
		  "zerowidthxy");
	CHECK(cnt.invisible == 6);
	CHECK_STR("zwj kept", norm("\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x92\xbb", NULL),
		  "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x92\xbb");
	CHECK_STR("zwnj kept", norm("\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae", NULL),
		  "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae");
	CHECK_STR("c1 removed, nel newline", norm("a\xc2\x80" "b\xc2\x85" "c", NULL), "ab\nc");
	CHECK(cnt.control == 1 && cnt.line_endings == 1);
	CHECK_STR("line separator", norm("a\xe2\x80\xa8" "b", NULL), "a\nb");
	CHECK_STR("invalid utf-8 repaired", norm("a\xff" "b\xc3", NULL), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
	CHECK(cnt.invalid_utf8 == 2);
	CHECK_STR("nul removed", (memset(&cnt, 0, sizeof cnt),
				  cn_normalize("a\0b", 3, NULL, &out, &cnt), out.data), "ab");
	CHECK(cnt.control == 1);
}

static void test_limits(void)
{
	struct qn_buf small;
	qn_buf_init(&small, 4);
	CHECK(cn_normalize("hello world", 11, NULL, &small, NULL) == -1);
	CHECK(small.len == 0);
	CHECK(cn_normalize("a  b\r\n", 6, NULL, &small, NULL) == 0 && !strcmp(small.data, "a b"));
	CHECK(cn_normalize("\xc3\xa9\xc3\xa9\xc3\xa9", 6, NULL, &small, NULL) == -1);
	qn_buf_release(&small);
	CHECK(cn_norm_form_parse("NFKC") == CN_NORM_NFKC && cn_norm_form_parse("x") == -1);
	CHECK_STR("form name", cn_norm_form_name(CN_NORM_NONE), "none");

	/* counts accumulate */
	struct cn_norm_counts c = {0};
	cn_normalize("a\r\n", 3, NULL, &out, &c);
	cn_normalize("b\r\nc", 4, NULL, &out, &c);
	CHECK(c.line_endings == 2);
}

/* Idempotence: normalizing twice changes nothing more. */
static void test_idempotent(void)
{
	const char *v[] = {"  a \r\n\r\n\r\n\r\nb\xc2\xa0\xc2\xa0 c\xe2\x80\x8b\n", "e\xcc\x81\xcc\xa7 x\t\ty",
			   "\xff\xfe\n\n\n\n \x01", "\xea\xb0\x80\xe1\x86\xa8 \xef\xac\x81"};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		struct qn_buf b;
		qn_buf_init(&b, QN_BUF_UNLIMITED);
		cn_normalize(v[i], strlen(v[i]), NULL, &out, NULL);
		cn_normalize(out.data, out.len, NULL, &b, NULL);
		CHECK_NAMED("idempotent", b.len == out.len && !memcmp(b.data, out.data, b.len));
		qn_buf_release(&b);
	}
}

/* Throughput on ASCII prose; printed, not checked (machines differ). */
static void bench(void)
{
	const char *para = "The quick brown fox jumps over the lazy dog, and then it rests. "
			   "Prose of this kind is most of a web corpus.\n";
	size_t n = 32u << 20, pl = strlen(para);
	char *s = malloc(n);
	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		s[i] = para[i % pl];
	s[n - 1] = '.';
	struct qn_buf b;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (int pass = 0; pass < 2; pass++) {
		struct timespec t0, t1;
		if (pass)
			for (size_t i = 100; i < n; i += 4096)
				s[i] = ' ', s[i + 1] = ' '; /* forces the slow path */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = cn_normalize(s, n, NULL, &b, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		printf("# normalize %s path: %.0f MB/s\n", pass ? "ascii slow" : "ascii fast",
		       (double)n / 1e6 / sec);
		CHECK_NAMED("bench ok", rc == 0 && b.len >= n - n / 1000);
	}
	qn_buf_release(&b);
	free(s);
}

int main(int argc, char **argv)
{
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	test_ascii();
	test_unicode();
	test_limits();
	test_idempotent();
	if (argc > 1 && !strcmp(argv[1], "--bench"))
		bench();
	qn_buf_release(&out);
	return CHECK_DONE();
}
