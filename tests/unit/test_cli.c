/*
 * test_cli.c - lib/cli: qn_parse_size on accepted and rejected sizes, and
 * the message helpers (captured from stderr/stdout through a temp file).
 * qn_close_stdout is left to the command-line tests: it closes stdout,
 * which this harness still needs.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"

static char dir[] = "/tmp/qn_test_cli_XXXXXX";

static void size_ok(const char *s, uint64_t want)
{
	char nm[160];
	uint64_t v = 12345;
	int rc = qn_parse_size(s, &v);

	snprintf(nm, sizeof nm, "parse_size '%s' = %llu", s, (unsigned long long)want);
	CHECK_NAMED(nm, rc == 0 && v == want);
	if (rc != 0 || v != want)
		printf("  got rc %d value %llu\n", rc, (unsigned long long)v);
}

static void size_bad(const char *s)
{
	char nm[160];
	uint64_t v = 12345;
	int rc = qn_parse_size(s, &v);

	snprintf(nm, sizeof nm, "parse_size '%s' rejected", s ? s : "(null)");
	CHECK_NAMED(nm, rc == -1);
	if (rc != -1)
		printf("  got rc %d value %llu\n", rc, (unsigned long long)v);
	snprintf(nm, sizeof nm, "parse_size '%s' leaves the output alone", s ? s : "(null)");
	CHECK_NAMED(nm, v == 12345);
}

static void test_parse_size(void)
{
	size_ok("0", 0);
	size_ok("4096", 4096);
	size_ok("1k", 1024);
	size_ok("1K", 1024);
	size_ok("64M", 67108864);
	size_ok("64m", 67108864);
	size_ok("1G", 1073741824);
	size_ok("3g", 3ULL << 30);
	size_ok("2T", 2ULL << 40);
	size_ok("1KiB", 1024);
	size_ok("1MiB", 1 << 20);
	size_ok("1KB", 1024);
	size_ok("8MB", 8 << 20);
	size_ok("1kb", 1024);
	size_ok("0G", 0);
	size_ok("007", 7);
	size_ok("18446744073709551615", UINT64_MAX);
	size_ok("16777215T", 16777215ULL << 40); /* the largest T that fits */
	size_ok("17179869183G", 17179869183ULL << 30);

	size_bad(NULL);
	size_bad("");
	size_bad("-1");
	size_bad("-0");
	size_bad(" -1"); /* strtoull would negate after the blank */
	size_bad("12X");
	size_bad("1.5G");
	size_bad("1 M");
	size_bad("M");
	size_bad("KiB");
	size_bad("1MM");
	size_bad("1KiBx");
	size_bad("1iB");
	size_bad("1Mi");
	size_bad("0x10");
	size_bad("99999999999999999999T");
	size_bad("18446744073709551616"); /* 2^64 */
	size_bad("16777216T");            /* 2^64 */
	size_bad("17179869184G");         /* 2^64 */
	size_bad("99999999999999999999");
}

/* Runs fn with fd `which` (1 or 2) sent to a file; returns what it wrote. */
static char *capture(int which, void (*fn)(void))
{
	char path[256];
	static char out[8192];
	FILE *f = which == 1 ? stdout : stderr;
	int fd, saved;
	ssize_t n;

	snprintf(path, sizeof path, "%s/capture", dir);
	fflush(f);
	saved = dup(which);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, which);
	close(fd);
	fn();
	fflush(f);
	dup2(saved, which);
	close(saved);
	fd = open(path, O_RDONLY);
	n = read(fd, out, sizeof out - 1);
	close(fd);
	unlink(path);
	out[n > 0 ? n : 0] = 0;
	return out;
}

static int last_rc;
static void do_error(void) { qn_error("cannot open '%s': %s", "a.txt", "No such file"); }
static void do_warn(void) { qn_warn("skipping '%s'", "b"); }
static void do_info(void) { qn_info("read %d docs", 3); }
static void do_usage(void) { last_rc = qn_usage_error("unknown option '%s'", "--bogus"); }
static void do_version(void) { last_rc = qn_print_version(); }
static void do_long(void)
{
	char big[6000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	qn_error("%s", big);
}
static void do_progress(void)
{
	struct qn_progress p;
	qn_progress_init(&p, 1000);
	p.last -= 10; /* as if the last redraw were long ago */
	qn_progress_update(&p, 500, 5);
	qn_progress_finish(&p);
}

static void test_messages(void)
{
	char *s;

	qn_cli_init("quern-test");
	CHECK_STR("cli_init sets the program name", qn_prog, "quern-test");
	s = capture(2, do_error);
	CHECK_STR("qn_error: prog: message, newline", s, "quern-test: cannot open 'a.txt': No such file\n");

	qn_verbosity = 0;
	s = capture(2, do_warn);
	CHECK_STR("qn_warn at normal verbosity", s, "quern-test: skipping 'b'\n");
	qn_verbosity = -1;
	s = capture(2, do_warn);
	CHECK_STR("qn_warn quiet with -q", s, "");
	s = capture(2, do_error);
	CHECK_NAMED("qn_error still prints with -q", strlen(s) > 0);
	qn_verbosity = 0;
	s = capture(2, do_info);
	CHECK_STR("qn_info silent without -v", s, "");
	qn_verbosity = 1;
	s = capture(2, do_info);
	CHECK_STR("qn_info with -v", s, "quern-test: read 3 docs\n");
	qn_verbosity = 0;

	s = capture(2, do_usage);
	CHECK_STR("usage error: message and try line", s,
		  "quern-test: unknown option '--bogus'\ntry 'quern-test --help'\n");
	CHECK_NAMED("usage error returns 2", last_rc == QN_EXIT_USAGE && QN_EXIT_USAGE == 2);

	s = capture(1, do_version);
	CHECK_STR("version to stdout", s, "quern-test " QN_VERSION "\n");
	CHECK_NAMED("version returns 0", last_rc == 0);

	s = capture(2, do_long);
	size_t n = strlen(s);
	CHECK_NAMED("a very long message is cut, not overflowed", n > 1000 && n <= 4096);
	CHECK_NAMED("a very long message still ends with a newline", n > 0 && s[n - 1] == '\n');
	CHECK_NAMED("a very long message starts with the program name",
		    !strncmp(s, "quern-test: xxx", 15));

	/* stderr is a file here, not a terminal: the meter stays silent. */
	s = capture(2, do_progress);
	CHECK_STR("progress is silent when stderr is not a terminal", s, "");
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("FAIL: mkdtemp\n");
		return 1;
	}
	test_parse_size();
	test_messages();
	rmdir(dir);
	return CHECK_DONE();
}
