/*
 * test_utf8.c - lib/utf8 against RFC 3629 and the Unicode "best practice"
 * for U+FFFD substitution (Unicode 15, section 3.9, tables 3-8 to 3-12).
 *
 * Besides the worked examples, validation is compared exhaustively for all
 * strings of up to three bytes (and a large slice of four-byte ones) with a
 * reference written differently: decode by bit pattern, then reject
 * overlongs, surrogates and values past U+10FFFF. Repair is compared on
 * random inputs with a reference that finds the maximal subpart by
 * completing a prefix with continuation bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "utf8.h"

/* Length implied by the lead byte's bit pattern; 0 when it is no lead. */
static size_t ref_lead_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0)
		return 2;
	if ((c & 0xF0) == 0xE0)
		return 3;
	if ((c & 0xF8) == 0xF0)
		return 4;
	return 0;
}

/* Is s[0..len) exactly one well-formed sequence? */
static int ref_seq_ok(const unsigned char *s, size_t len)
{
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	uint32_t cp;

	if (len == 0 || ref_lead_len(s[0]) != len)
		return 0;
	cp = len == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> len));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min[len])
		return 0; /* overlong */
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	return cp <= 0x10FFFF;
}

static int ref_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t l = ref_lead_len(s[i]);
		if (!l || i + l > n || !ref_seq_ok(s + i, l))
			return 0;
		i += l;
	}
	return 1;
}

/* Does s[0..k) start some well-formed sequence of length l? */
static int ref_prefix_ok(const unsigned char *s, size_t k, size_t l)
{
	unsigned char t[4];

	memcpy(t, s, k);
	for (size_t i = k; i < l; i++)
		t[i] = 0x80;
	return ref_seq_ok(t, l);
}

static void ref_repair(struct qn_buf *out, const unsigned char *s, size_t n, long *fixed)
{
	size_t i = 0;

	*fixed = 0;
	while (i < n) {
		size_t l = ref_lead_len(s[i]);
		if (l && i + l <= n && ref_seq_ok(s + i, l)) {
			qn_buf_add(out, s + i, l);
			i += l;
			continue;
		}
		size_t k = 1;
		if (l > 1)
			for (size_t j = l - 1; j >= 1; j--)
				if (i + j <= n && ref_prefix_ok(s + i, j, l)) {
					k = j;
					break;
				}
		qn_buf_add(out, "\xEF\xBF\xBD", 3);
		(*fixed)++;
		i += k;
	}
}

static int valid(const char *s) { return qn_utf8_valid(s, strlen(s)); }

static void test_valid_examples(void)
{
	CHECK_NAMED("empty is valid", qn_utf8_valid("", 0));
	CHECK_NAMED("ascii valid", valid("hello, world"));
	CHECK_NAMED("NUL byte is valid UTF-8", qn_utf8_valid("a\0b", 3));
	CHECK_NAMED("2-byte e-acute", valid("caf\xC3\xA9"));
	CHECK_NAMED("3-byte euro", valid("\xE2\x82\xAC"));
	CHECK_NAMED("4-byte U+1F600", valid("\xF0\x9F\x98\x80"));
	CHECK_NAMED("U+10FFFF valid", valid("\xF4\x8F\xBF\xBF"));
	CHECK_NAMED("U+D7FF valid", valid("\xED\x9F\xBF"));
	CHECK_NAMED("U+E000 valid", valid("\xEE\x80\x80"));
	CHECK_NAMED("U+0800 valid", valid("\xE0\xA0\x80"));
	CHECK_NAMED("U+10000 valid", valid("\xF0\x90\x80\x80"));
	CHECK_NAMED("U+FFFF valid", valid("\xEF\xBF\xBF"));

	CHECK_NAMED("overlong C0 80 invalid", !valid("\xC0\x80"));
	CHECK_NAMED("overlong C1 BF invalid", !valid("\xC1\xBF"));
	CHECK_NAMED("overlong E0 80 80 invalid", !valid("\xE0\x80\x80"));
	CHECK_NAMED("overlong E0 9F BF invalid", !valid("\xE0\x9F\xBF"));
	CHECK_NAMED("overlong F0 80 80 80 invalid", !valid("\xF0\x80\x80\x80"));
	CHECK_NAMED("overlong F0 8F BF BF invalid", !valid("\xF0\x8F\xBF\xBF"));
	CHECK_NAMED("surrogate ED A0 80 invalid", !valid("\xED\xA0\x80"));
	CHECK_NAMED("surrogate ED BF BF invalid", !valid("\xED\xBF\xBF"));
	CHECK_NAMED("surrogate pair as CESU invalid", !valid("\xED\xA0\xBD\xED\xB8\x80"));
	CHECK_NAMED("> U+10FFFF F4 90 80 80 invalid", !valid("\xF4\x90\x80\x80"));
	CHECK_NAMED("F5 lead invalid", !valid("\xF5\x80\x80\x80"));
	CHECK_NAMED("FF invalid", !valid("\xFF"));
	CHECK_NAMED("FE invalid", !valid("\xFE"));
	CHECK_NAMED("lone continuation 80 invalid", !valid("\x80"));
	CHECK_NAMED("lone continuation BF after ascii invalid", !valid("abc\xBF"));
	CHECK_NAMED("truncated 2-byte at end", !valid("ab\xC3"));
	CHECK_NAMED("truncated 3-byte at end", !valid("ab\xE2\x82"));
	CHECK_NAMED("truncated 4-byte at end (3 of 4)", !valid("ab\xF0\x9F\x98"));
	CHECK_NAMED("truncated 4-byte at end (1 of 4)", !valid("\xF0"));
	CHECK_NAMED("lead followed by ascii invalid", !valid("\xC3" "a"));

	/* The length argument, not the NUL, bounds the scan. */
	CHECK_NAMED("sequence cut by n is invalid", !qn_utf8_valid("\xC3\xA9", 1));

	/* Valid prefix lengths, including past the 8-byte ASCII fast path. */
	CHECK_NAMED("prefix: all valid", qn_utf8_valid_prefix("abc\xC3\xA9", 5) == 5);
	CHECK_NAMED("prefix: stops at bad byte",
		    qn_utf8_valid_prefix("abc\xC3\xA9\xFF" "def", 9) == 5);
	CHECK_NAMED("prefix: bad after 16 ascii",
		    qn_utf8_valid_prefix("0123456789abcdef\x80xyz", 20) == 16);
	CHECK_NAMED("prefix: bad at 9 after the fast path",
		    qn_utf8_valid_prefix("012345678\xC0\x80", 11) == 9);
	CHECK_NAMED("prefix: truncated at end",
		    qn_utf8_valid_prefix("0123456789\xE2\x82", 12) == 10);
	CHECK_NAMED("prefix: bad byte 0", qn_utf8_valid_prefix("\x80" "abcdefghij", 11) == 0);
}

static void test_valid_exhaustive(void)
{
	unsigned char s[4];
	long bad = 0;

	for (unsigned a = 0; a < 256; a++) {
		s[0] = (unsigned char)a;
		if (qn_utf8_valid((char *)s, 1) != ref_valid(s, 1))
			bad++;
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (unsigned char)b;
			if (qn_utf8_valid((char *)s, 2) != ref_valid(s, 2))
				bad++;
			if (a < 0xC0)
				continue; /* the 3-byte walk below covers leads only */
			for (unsigned c = 0; c < 256; c++) {
				s[2] = (unsigned char)c;
				if (qn_utf8_valid((char *)s, 3) != ref_valid(s, 3))
					bad++;
			}
		}
	}
	CHECK_NAMED("validity of all 1-2 byte and lead-first 3 byte strings matches reference",
		    bad == 0);
	if (bad)
		printf("  %ld mismatches\n", bad);

	static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
					     0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF4, 0xFF};
	bad = 0;
	for (unsigned a = 0xF0; a <= 0xF8; a++)
		for (unsigned b = 0; b < 256; b++)
			for (size_t c = 0; c < sizeof edge; c++)
				for (size_t d = 0; d < sizeof edge; d++) {
					s[0] = (unsigned char)a;
					s[1] = (unsigned char)b;
					s[2] = edge[c];
					s[3] = edge[d];
					if (qn_utf8_valid((char *)s, 4) != ref_valid(s, 4))
						bad++;
				}
	CHECK_NAMED("validity of 4-byte strings (F0-F8 leads) matches reference", bad == 0);
	if (bad)
		printf("  %ld mismatches\n", bad);
}

static void check_repair(const char *name, const char *in, size_t n, const char *want,
			 long want_fixed)
{
	struct qn_buf b;
	long r;
	char nm[200];

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	r = qn_utf8_repair(&b, in, n);
	snprintf(nm, sizeof nm, "repair %s: output", name);
	CHECK_STR(nm, b.data ? b.data : "", want);
	snprintf(nm, sizeof nm, "repair %s: %ld replacements", name, want_fixed);
	CHECK_NAMED(nm, r == want_fixed);
	snprintf(nm, sizeof nm, "repair %s: result is valid", name);
	CHECK_NAMED(nm, qn_utf8_valid(b.data ? b.data : "", b.len));
	qn_buf_release(&b);
}

#define R "\xEF\xBF\xBD"
#define REP(name, lit, want, k) check_repair(name, lit, sizeof lit - 1, want, k)

static void test_repair_examples(void)
{
	REP("valid input unchanged", "caf\xC3\xA9 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xF0\x9F\x98\x80", 0);
	REP("empty", "", "", 0);
	/* Unicode 15 section 3.9, table 3-8: the U+FFFD substitution example. */
	REP("unicode best practice example",
	    "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
	    "a" R R R "b" R "c" R R "d", 6);
	/* Table 3-9: non-shortest forms, each byte replaced. */
	REP("table 3-9 non-shortest forms", "\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41",
	    R R R R R R R R "A", 8);
	/* Table 3-10: surrogates. */
	REP("table 3-10 surrogates", "\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41",
	    R R R R R R R R "A", 8);
	/* Table 3-11: other ill-formed sequences. */
	REP("table 3-11 other ill-formed", "\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42",
	    R R R R R "A" R R "B", 7);
	/* Table 3-12: truncated sequences, one U+FFFD each. */
	REP("table 3-12 truncated sequences", "\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41",
	    R R R R "A", 4);
	REP("overlong C0 80", "x\xC0\x80y", "x" R R "y", 2);
	REP("overlong E0 80 80", "\xE0\x80\x80", R R R, 3);
	REP("> U+10FFFF", "\xF4\x90\x80\x80", R R R R, 4);
	REP("truncated 4-byte at end", "ok\xF0\x9F\x98", "ok" R, 1);
	REP("truncated 2-byte at end", "ok\xC3", "ok" R, 1);
	REP("lone continuations", "\x80\x80", R R, 2);

	struct qn_buf b;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	qn_utf8_repair(&b, "a\0b\xFF", 4);
	CHECK_NAMED("repair keeps NUL bytes", b.len == 6 && !memcmp(b.data, "a\0b" R, 6));
	/* Repair appends. */
	qn_buf_reset(&b);
	qn_buf_adds(&b, "pre:");
	qn_utf8_repair(&b, "\xFFx", 2);
	CHECK_STR("repair appends to existing contents", b.data, "pre:" R "x");
	qn_buf_release(&b);

	/* A full buffer: -1, not a silent truncation. */
	qn_buf_init(&b, 4);
	CHECK_NAMED("repair into a too-small buffer fails", qn_utf8_repair(&b, "abc\xFF", 4) == -1);
	qn_buf_release(&b);
	qn_buf_init(&b, 5);
	CHECK_NAMED("repair exactly fits", qn_utf8_repair(&b, "ab\xFF", 3) == 1 && b.len == 5);
	qn_buf_release(&b);
}

static void test_repair_random(void)
{
	static const unsigned char pick[] = {
		'a', ' ', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
		0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
	struct qn_buf got, want;
	unsigned char s[40];
	long mism = 0, g, w;

	srand(12345);
	qn_buf_init(&got, QN_BUF_UNLIMITED);
	qn_buf_init(&want, QN_BUF_UNLIMITED);
	for (int iter = 0; iter < 50000; iter++) {
		size_t n = (size_t)(rand() % (int)sizeof s);
		for (size_t i = 0; i < n; i++)
			s[i] = pick[rand() % (int)sizeof pick];
		qn_buf_reset(&got);
		qn_buf_reset(&want);
		g = qn_utf8_repair(&got, (char *)s, n);
		ref_repair(&want, s, n, &w);
		if (g != w || got.len != want.len || memcmp(got.data, want.data, got.len) ||
		    qn_utf8_valid_prefix((char *)s, n) > n ||
		    qn_utf8_valid((char *)s, n) != ref_valid(s, n)) {
			if (mism++ < 3) {
				printf("  mismatch on:");
				for (size_t i = 0; i < n; i++)
					printf(" %02X", s[i]);
				printf("\n");
			}
		}
	}
	CHECK_NAMED("repair of 50000 random strings matches reference", mism == 0);
	qn_buf_release(&got);
	qn_buf_release(&want);
}

static void test_encode_decode(void)
{
	static const struct {
		uint32_t cp;
		const char *bytes;
	} t[] = {
		{0x00, ""},			/* length 1, checked below */
		{0x41, "A"},
		{0x7F, "\x7F"},
		{0x80, "\xC2\x80"},
		{0x7FF, "\xDF\xBF"},
		{0x800, "\xE0\xA0\x80"},
		{0xD7FF, "\xED\x9F\xBF"},
		{0xE000, "\xEE\x80\x80"},
		{0xFFFD, "\xEF\xBF\xBD"},
		{0xFFFF, "\xEF\xBF\xBF"},
		{0x10000, "\xF0\x90\x80\x80"},
		{0x1F600, "\xF0\x9F\x98\x80"},
		{0x10FFFF, "\xF4\x8F\xBF\xBF"},
	};
	char out[4], nm[100];
	uint32_t cp;

	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		size_t want = t[i].cp ? strlen(t[i].bytes) : 1;
		size_t n = qn_utf8_encode(t[i].cp, out);
		snprintf(nm, sizeof nm, "encode U+%04X", (unsigned)t[i].cp);
		CHECK_NAMED(nm, n == want && !memcmp(out, t[i].cp ? t[i].bytes : "\0", n));
		n = qn_utf8_decode(out, want, &cp);
		snprintf(nm, sizeof nm, "decode U+%04X", (unsigned)t[i].cp);
		CHECK_NAMED(nm, n == want && cp == t[i].cp);
	}
	/* Unencodable values become U+FFFD. */
	CHECK_NAMED("encode surrogate D800 gives U+FFFD",
		    qn_utf8_encode(0xD800, out) == 3 && !memcmp(out, "\xEF\xBF\xBD", 3));
	CHECK_NAMED("encode surrogate DFFF gives U+FFFD",
		    qn_utf8_encode(0xDFFF, out) == 3 && !memcmp(out, "\xEF\xBF\xBD", 3));
	CHECK_NAMED("encode 0x110000 gives U+FFFD",
		    qn_utf8_encode(0x110000, out) == 3 && !memcmp(out, "\xEF\xBF\xBD", 3));
	CHECK_NAMED("encode 0xFFFFFFFF gives U+FFFD",
		    qn_utf8_encode(0xFFFFFFFFu, out) == 3 && !memcmp(out, "\xEF\xBF\xBD", 3));
	CHECK_NAMED("decode of 0 bytes returns 0", qn_utf8_decode("x", 0, &cp) == 0);
	/* Decode reads one code point, not more. */
	CHECK_NAMED("decode stops after one code point",
		    qn_utf8_decode("\xC3\xA9xyz", 5, &cp) == 2 && cp == 0xE9);

	/* Every scalar value round-trips and encodes to valid UTF-8. */
	long bad = 0;
	for (uint32_t c = 0; c <= 0x10FFFF; c++) {
		if (c == 0xD800)
			c = 0xE000;
		size_t n = qn_utf8_encode(c, out);
		size_t want = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
		if (n != want || !ref_valid((unsigned char *)out, n) ||
		    qn_utf8_decode(out, n, &cp) != n || cp != c)
			bad++;
	}
	CHECK_NAMED("all scalar values round-trip through encode/decode", bad == 0);
}

int main(void)
{
	test_valid_examples();
	test_valid_exhaustive();
	test_repair_examples();
	test_repair_random();
	test_encode_decode();
	return CHECK_DONE();
}
