/*
 * test_charset.c - lib/charset: BOM sniffing, label aliases (WHATWG
 * Encoding Standard), the charset choice for mislabelled input, and
 * conversion to UTF-8 with undecodable bytes counted and replaced.
 */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "charset.h"
#include "check.h"
#include "err.h"
#include "utf8.h"

#define R "\xEF\xBF\xBD"

/* Result of a conversion run in a child process with a time limit. */
struct bounded {
	int hung;
	long rc;
	size_t len;
	int msg; /* the error message was filled */
};

/*
 * qn_to_utf8 into a buffer of the given max, in a child killed after 1.5 s,
 * so that a conversion that never ends is one failed check, not a stuck
 * test binary.
 */
static void bounded_conv(const char *cs, const char *p, size_t n, size_t max,
			 struct bounded *g)
{
	int fds[2];
	pid_t pid;

	memset(g, 0, sizeof *g);
	g->rc = -99;
	fflush(stdout);
	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		g->hung = 1;
		return;
	}
	if (pid == 0) {
		struct qn_buf b;
		struct qn_err e = {{0}};
		struct bounded r = {0, 0, 0, 0};

		close(fds[0]);
		qn_buf_init(&b, max);
		r.rc = qn_to_utf8(cs, p, n, &b, &e);
		r.len = b.len;
		r.msg = e.msg[0] != 0;
		if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	struct pollfd pf = {fds[0], POLLIN, 0};
	if (poll(&pf, 1, 1500) == 1 && read(fds[0], g, sizeof *g) == (ssize_t)sizeof *g) {
		g->hung = 0;
	} else {
		g->hung = 1;
		kill(pid, SIGKILL);
	}
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

static void test_bom(void)
{
	size_t bl = 99;
	const char *cs;

	cs = qn_bom_sniff("\xEF\xBB\xBFhi", 5, &bl);
	CHECK_NAMED("BOM UTF-8", cs && !strcmp(cs, "UTF-8") && bl == 3);
	cs = qn_bom_sniff("\xFF\xFEh\0", 4, &bl);
	CHECK_NAMED("BOM UTF-16LE", cs && !strcmp(cs, "UTF-16LE") && bl == 2);
	cs = qn_bom_sniff("\xFE\xFF\0h", 4, &bl);
	CHECK_NAMED("BOM UTF-16BE", cs && !strcmp(cs, "UTF-16BE") && bl == 2);
	cs = qn_bom_sniff("\xFF\xFE\0\0h\0\0\0", 8, &bl);
	CHECK_NAMED("BOM UTF-32LE", cs && !strcmp(cs, "UTF-32LE") && bl == 4);
	cs = qn_bom_sniff("\0\0\xFE\xFF\0\0\0h", 8, &bl);
	CHECK_NAMED("BOM UTF-32BE", cs && !strcmp(cs, "UTF-32BE") && bl == 4);
	bl = 99;
	cs = qn_bom_sniff("plain", 5, &bl);
	CHECK_NAMED("no BOM", cs == NULL && bl == 0);
	bl = 99;
	cs = qn_bom_sniff("\xEF\xBB\xBF", 2, &bl);
	CHECK_NAMED("UTF-8 BOM cut by n is no BOM", cs == NULL && bl == 0);
	cs = qn_bom_sniff("", 0, &bl);
	CHECK_NAMED("empty input has no BOM", cs == NULL && bl == 0);
	cs = qn_bom_sniff("\xFF", 1, &bl);
	CHECK_NAMED("one byte FF is no BOM", cs == NULL && bl == 0);
	cs = qn_bom_sniff("x\xEF\xBB\xBF", 4, &bl);
	CHECK_NAMED("BOM only counts at the start", cs == NULL);
}

static void test_canon(void)
{
	char out[64];
	const char *cs;

#define CANON(label, want)                                                        \
	do {                                                                      \
		cs = qn_charset_canon(label, out);                                \
		CHECK_STR("canon '" label "'", cs, want);                         \
	} while (0)
	CANON("latin1", "WINDOWS-1252");
	CANON("ISO-8859-1", "WINDOWS-1252");
	CANON("iso_8859-1", "WINDOWS-1252");
	CANON("us-ascii", "WINDOWS-1252");
	CANON("windows-1252", "WINDOWS-1252");
	CANON("utf8", "UTF-8");
	CANON("UTF-8", "UTF-8");
	CANON("Utf-8", "UTF-8");
	CANON("  \"utf-8\"", "UTF-8");
	CANON("utf-8; charset-ish junk", "UTF-8");
	CANON("'latin1'", "WINDOWS-1252");
	CANON("utf-16", "UTF-16LE");
	CANON("sjis", "SHIFT_JIS");
	CANON("gb2312", "GBK");
	CANON("koi8-r", "KOI8-R");
	CANON("iso-8859-2", "ISO-8859-2");
	CANON("iso-8859-9", "WINDOWS-1254");
	CHECK_NAMED("canon returns out", qn_charset_canon("utf8", out) == out);
	CHECK_NAMED("canon unknown is NULL", qn_charset_canon("x-no-such-charset", out) == NULL);
	CHECK_NAMED("canon empty is NULL", qn_charset_canon("", out) == NULL);
	CHECK_NAMED("canon quotes only is NULL", qn_charset_canon("\"\"", out) == NULL);
	CHECK_NAMED("canon NULL is NULL", qn_charset_canon(NULL, out) == NULL);
	char longlabel[200];
	memset(longlabel, 'a', sizeof longlabel - 1);
	longlabel[sizeof longlabel - 1] = 0;
	CHECK_NAMED("canon of a 199-char label is NULL, no overflow",
		    qn_charset_canon(longlabel, out) == NULL);
}

static void test_pick(void)
{
	char out[64];
	size_t bl = 99;
	const char *cs;

	cs = qn_charset_pick("\xEF\xBB\xBF" "caf\xE9", 7, "latin1", out, &bl);
	CHECK_NAMED("pick: BOM wins over declaration and bytes", !strcmp(cs, "UTF-8") && bl == 3);
	cs = qn_charset_pick("\xFF\xFEh\0", 4, "utf-8", out, &bl);
	CHECK_NAMED("pick: UTF-16LE BOM wins", !strcmp(cs, "UTF-16LE") && bl == 2);
	bl = 99;
	cs = qn_charset_pick("caf\xC3\xA9", 5, "latin1", out, &bl);
	CHECK_NAMED("pick: declared latin1 but valid non-ASCII UTF-8 -> UTF-8",
		    !strcmp(cs, "UTF-8") && bl == 0);
	cs = qn_charset_pick("caf\xC3\xA9", 5, "windows-1252", out, &bl);
	CHECK_STR("pick: declared windows-1252 but valid UTF-8 -> UTF-8", cs, "UTF-8");
	cs = qn_charset_pick("caf\xE9", 4, "latin1", out, &bl);
	CHECK_STR("pick: declared latin1, invalid UTF-8 -> WINDOWS-1252", cs, "WINDOWS-1252");
	cs = qn_charset_pick("caf\xE9", 4, NULL, out, &bl);
	CHECK_STR("pick: undeclared invalid UTF-8 -> WINDOWS-1252", cs, "WINDOWS-1252");
	cs = qn_charset_pick("caf\xC3\xA9", 5, NULL, out, &bl);
	CHECK_STR("pick: undeclared valid UTF-8 -> UTF-8", cs, "UTF-8");
	cs = qn_charset_pick("caf\xE9", 4, "no-such-charset", out, &bl);
	CHECK_STR("pick: unknown declaration falls back to the bytes", cs, "WINDOWS-1252");
	cs = qn_charset_pick("\x82\xA0", 2, "shift_jis", out, &bl);
	CHECK_STR("pick: a multi-byte declaration is kept", cs, "SHIFT_JIS");
	cs = qn_charset_pick("caf\xC3\xA9", 5, "koi8-r", out, &bl);
	CHECK_STR("pick: koi8-r declared, valid UTF-8 -> UTF-8", cs, "UTF-8");
	cs = qn_charset_pick("\xF0\xD2\xC9", 3, "koi8-r", out, &bl);
	CHECK_STR("pick: koi8-r declared, not UTF-8 -> KOI8-R", cs, "KOI8-R");
	cs = qn_charset_pick("caf\xE9", 4, "utf-8", out, &bl);
	CHECK_STR("pick: declared UTF-8 stays UTF-8 (repaired later)", cs, "UTF-8");
	cs = qn_charset_pick("", 0, NULL, out, &bl);
	CHECK_STR("pick: empty input -> UTF-8", cs, "UTF-8");
	CHECK_NAMED("pick writes into out", cs == out);
}

/* Converts and returns the count; out gets the text. */
static long conv(const char *cs, const char *p, size_t n, struct qn_buf *out)
{
	struct qn_err e;

	qn_buf_reset(out);
	return qn_to_utf8(cs, p, n, out, &e);
}

/* UTF-16 code units for a code point, little or big endian. */
static size_t put16(uint32_t cp, char *o, int be)
{
	uint16_t u[2];
	size_t k = 0;

	if (cp >= 0x10000) {
		cp -= 0x10000;
		u[k++] = (uint16_t)(0xD800 | (cp >> 10));
		u[k++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
	} else {
		u[k++] = (uint16_t)cp;
	}
	for (size_t i = 0; i < k; i++) {
		o[2 * i + be] = (char)(u[i] & 0xFF);
		o[2 * i + !be] = (char)(u[i] >> 8);
	}
	return 2 * k;
}

static void test_to_utf8(void)
{
	struct qn_buf b;
	struct qn_err e = {{0}};
	long r;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	r = conv("WINDOWS-1252", "caf\xE9", 4, &b);
	CHECK_NAMED("windows-1252 caf\\xE9: no bad bytes", r == 0);
	CHECK_STR("windows-1252 caf\\xE9 -> cafe-acute", b.data, "caf\xC3\xA9");
	r = conv("WINDOWS-1252", "\x80\x93quoted\x94\x85", 10, &b);
	CHECK_STR("windows-1252 C1 range maps to punctuation", b.data,
		  "\xE2\x82\xAC\xE2\x80\x9Cquoted\xE2\x80\x9D\xE2\x80\xA6");
	CHECK_NAMED("windows-1252 punctuation: count 0", r == 0);
	r = conv("WINDOWS-1252", "a\x81" "b\x8D", 4, &b);
	CHECK_NAMED("windows-1252 undefined bytes counted", r == 2);
	CHECK_STR("windows-1252 undefined bytes replaced", b.data, "a" R "b" R);
	/* Expanding 1 -> 3 bytes forces the output to grow mid-conversion. */
	char euros[10000];
	memset(euros, 0x80, sizeof euros);
	r = conv("WINDOWS-1252", euros, sizeof euros, &b);
	int all = b.len == 30000;
	for (size_t i = 0; all && i < 30000; i += 3)
		all = !memcmp(b.data + i, "\xE2\x82\xAC", 3);
	CHECK_NAMED("10000 euro signs convert whole", r == 0 && all);
	CHECK_NAMED("conversion output is NUL terminated", b.data[b.len] == 0);
	/* Appends to what is there. */
	qn_buf_reset(&b);
	qn_buf_adds(&b, "pre:");
	qn_to_utf8("WINDOWS-1252", "\xE9", 1, &b, &e);
	CHECK_STR("to_utf8 appends", b.data, "pre:\xC3\xA9");

	/* UTF-16LE / BE: hand-encoded code points, back to UTF-8. */
	static const uint32_t cps[] = {'H', 'i', ' ', 0xE9, 0x20AC, 0xFFFD, 0xD7FF, 0xE000,
				       0x1F600, 0x10000, 0x10FFFF, '!'};
	char u16[64], want[64];
	for (int be = 0; be <= 1; be++) {
		size_t n16 = 0, nw = 0;
		for (size_t i = 0; i < sizeof cps / sizeof *cps; i++) {
			n16 += put16(cps[i], u16 + n16, be);
			nw += qn_utf8_encode(cps[i], want + nw);
		}
		want[nw] = 0;
		r = conv(be ? "UTF-16BE" : "UTF-16LE", u16, n16, &b);
		CHECK_NAMED(be ? "UTF-16BE decodes without bad units" : "UTF-16LE decodes without bad units",
			    r == 0);
		CHECK_NAMED(be ? "UTF-16BE round trip" : "UTF-16LE round trip",
			    b.len == nw && !memcmp(b.data, want, nw));
	}
	/* A lone high surrogate and an odd trailing byte. */
	size_t n16 = 0;
	n16 += put16('a', u16 + n16, 0);
	u16[n16++] = 0x00;
	u16[n16++] = (char)0xD8; /* D800 alone */
	n16 += put16('b', u16 + n16, 0);
	u16[n16++] = 'z'; /* half a unit */
	r = conv("UTF-16LE", u16, n16, &b);
	CHECK_NAMED("UTF-16LE lone surrogate and odd byte: 2 bad", r == 2);
	CHECK_STR("UTF-16LE bad units replaced", b.data, "a" R "b" R);
	/* UTF-32LE via the BOM the sniffer reports. */
	const char u32[] = "\xFF\xFE\0\0" "A\0\0\0" "\x00\xF6\x01\0";
	size_t bl;
	const char *cs = qn_bom_sniff(u32, sizeof u32 - 1, &bl);
	r = cs ? conv(cs, u32 + bl, sizeof u32 - 1 - bl, &b) : -1;
	CHECK_STR("UTF-32LE after its BOM", b.data, "A\xF0\x9F\x98\x80");

	/* UTF-8 goes through repair. */
	r = conv("UTF-8", "ok\xFF\xC0\x80", 5, &b);
	CHECK_NAMED("UTF-8 input: invalid bytes counted", r == 3);
	CHECK_STR("UTF-8 input: repaired", b.data, "ok" R R R);

	/* Unknown charset; a full buffer. */
	e.msg[0] = 0;
	qn_buf_reset(&b);
	CHECK_NAMED("unknown charset fails", qn_to_utf8("X-NOPE", "abc", 3, &b, &e) == -1);
	CHECK_NAMED("unknown charset message names it", strstr(e.msg, "X-NOPE") != NULL);
	qn_buf_release(&b);
	/* Conversions against the buffer ceiling; each runs in a child with a time limit. */
	struct bounded g;
	bounded_conv("WINDOWS-1252", euros, 100, 10, &g);
	CHECK_NAMED("100 euro signs (300 bytes) into max 10: finishes", !g.hung);
	CHECK_NAMED("100 euro signs into max 10: fails", !g.hung && g.rc == -1);
	CHECK_NAMED("100 euro signs into max 10: message", !g.hung && g.msg);
	CHECK_NAMED("100 euro signs into max 10: len within max", !g.hung && g.len <= 10);
	bounded_conv("WINDOWS-1252", euros, 5, 10, &g);
	CHECK_NAMED("5 euro signs (15 bytes) into max 10: finishes", !g.hung);
	CHECK_NAMED("5 euro signs into max 10: fails", !g.hung && g.rc == -1);
	CHECK_NAMED("5 euro signs into max 10: len within max", !g.hung && g.len <= 10);
	char u16x[24];
	for (int i = 0; i < 12; i++) {
		u16x[i * 2] = 'a';
		u16x[i * 2 + 1] = 0;
	}
	bounded_conv("UTF-16LE", u16x, 24, 10, &g);
	CHECK_NAMED("12 UTF-16LE units into max 10: finishes", !g.hung);
	CHECK_NAMED("12 UTF-16LE units into max 10: fails within max",
		    !g.hung && g.rc == -1 && g.len <= 10);
	bounded_conv("UTF-8", "0123456789abc", 13, 10, &g);
	CHECK_NAMED("UTF-8 past max fails", !g.hung && g.rc == -1);
	bounded_conv("WINDOWS-1252", euros, 3, 9, &g);
	CHECK_NAMED("3 euro signs into max 9: finishes", !g.hung);
	CHECK_NAMED("3 euro signs into max 9: exactly fits", !g.hung && g.rc == 0 && g.len == 9);
	/* Output well under max must not fail for want of conversion headroom. */
	bounded_conv("WINDOWS-1252", "abcdefghijklmnopqrst", 20, 40, &g);
	CHECK_NAMED("20 ASCII bytes into max 40: finishes", !g.hung);
	CHECK_NAMED("20 ASCII bytes into max 40: converted", !g.hung && g.rc == 0 && g.len == 20);
}

int main(void)
{
	test_bom();
	test_canon();
	test_pick();
	test_to_utf8();
	return CHECK_DONE();
}
