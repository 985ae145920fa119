/*
 * test_buf.c - lib/buf: growth, the max ceiling, printf, rtrim, detach and
 * the NUL terminator that every buffer keeps.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"

static void test_init_empty(void)
{
	struct qn_buf b;

	qn_buf_init(&b, 100);
	CHECK_NAMED("init: empty", b.len == 0 && b.data == NULL && b.max == 100);
	qn_buf_reset(&b); /* must cope with no storage */
	CHECK_NAMED("reset of an unallocated buffer", b.len == 0);
	qn_buf_release(&b);
	qn_buf_release(&b); /* twice is harmless */
	CHECK_NAMED("release leaves it empty", b.data == NULL && b.len == 0);
}

static void test_growth(void)
{
	struct qn_buf b;
	size_t i, ok = 1;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	/* 100000 bytes one at a time, forcing many reallocations. */
	for (i = 0; i < 100000; i++)
		if (qn_buf_addc(&b, (char)('a' + i % 26)) < 0)
			ok = 0;
	CHECK_NAMED("addc 100000 times succeeds", ok);
	CHECK_NAMED("addc: len", b.len == 100000);
	CHECK_NAMED("addc: cap > len", b.cap > b.len);
	CHECK_NAMED("addc: NUL terminated", b.data[b.len] == 0);
	ok = 1;
	for (i = 0; i < 100000; i++)
		if (b.data[i] != (char)('a' + i % 26))
			ok = 0;
	CHECK_NAMED("addc: contents survive reallocations", ok);
	CHECK_NAMED("strlen equals len", strlen(b.data) == b.len);

	qn_buf_reset(&b);
	CHECK_NAMED("reset: len 0 and empty string", b.len == 0 && b.data[0] == 0);

	/* Large appends in chunks, including one bigger than the doubling step. */
	char *big = malloc(1 << 20);
	for (i = 0; i < (1 << 20); i++)
		big[i] = (char)(i * 7);
	CHECK_NAMED("add 1 MiB", qn_buf_add(&b, big, 1 << 20) == 0);
	CHECK_NAMED("add 1 MiB more", qn_buf_add(&b, big, 1 << 20) == 0);
	CHECK_NAMED("2 MiB len", b.len == 2u << 20);
	CHECK_NAMED("2 MiB contents", !memcmp(b.data, big, 1 << 20) &&
					      !memcmp(b.data + (1 << 20), big, 1 << 20));
	CHECK_NAMED("2 MiB NUL", b.data[b.len] == 0);
	CHECK_NAMED("add of 0 bytes", qn_buf_add(&b, big, 0) == 0 && b.len == 2u << 20);
	free(big);
	qn_buf_release(&b);

	qn_buf_init(&b, 100);
	CHECK_NAMED("adds", qn_buf_adds(&b, "hello") == 0 && qn_buf_adds(&b, ", ") == 0 &&
				    qn_buf_adds(&b, "world") == 0);
	CHECK_STR("adds concatenates", b.data, "hello, world");
	CHECK_NAMED("adds len", b.len == 12);
	/* Embedded NUL bytes are data, not terminators. */
	qn_buf_reset(&b);
	qn_buf_add(&b, "a\0b", 3);
	CHECK_NAMED("embedded NUL kept", b.len == 3 && !memcmp(b.data, "a\0b", 4));
	qn_buf_release(&b);
}

static void test_max(void)
{
	struct qn_buf b;

	qn_buf_init(&b, 10);
	CHECK_NAMED("up to max fits", qn_buf_add(&b, "0123456789", 10) == 0);
	CHECK_NAMED("exactly max", b.len == 10);
	CHECK_NAMED("add past max fails", qn_buf_add(&b, "x", 1) == -1);
	CHECK_STR("add past max leaves contents", b.data, "0123456789");
	CHECK_NAMED("add past max leaves len", b.len == 10);
	CHECK_NAMED("adds past max fails", qn_buf_adds(&b, "yz") == -1);
	CHECK_NAMED("printf past max fails", qn_buf_printf(&b, "%d", 5) == -1);
	CHECK_STR("printf past max leaves contents", b.data, "0123456789");
	CHECK_NAMED("grow past max fails", qn_buf_grow(&b, 1) == -1);
	CHECK_NAMED("grow by 0 at max succeeds", qn_buf_grow(&b, 0) == 0);
	/* An append that does not fit leaves the buffer whole. */
	qn_buf_reset(&b);
	qn_buf_adds(&b, "abc");
	CHECK_NAMED("add that would cross max fails", qn_buf_add(&b, "12345678", 8) == -1);
	CHECK_STR("crossing add leaves contents", b.data, "abc");
	CHECK_NAMED("crossing add leaves len", b.len == 3);
	/* Huge n must not wrap around in the size arithmetic. */
	CHECK_NAMED("grow (size_t)-1 fails", qn_buf_grow(&b, (size_t)-1) == -1);
	CHECK_NAMED("grow (size_t)-1 - 1 fails", qn_buf_grow(&b, (size_t)-2) == -1);
	CHECK_STR("huge grow leaves contents", b.data, "abc");
	qn_buf_release(&b);

	/*
	 * addc has a fast path for when storage is already there; the ceiling
	 * must hold on it too (cap grows to 256 even for max 10).
	 */
	qn_buf_init(&b, 10);
	qn_buf_add(&b, "0123456789", 10);
	CHECK_NAMED("addc past max fails", qn_buf_addc(&b, 'x') == -1);
	CHECK_NAMED("addc past max leaves len", b.len == 10);
	CHECK_STR("addc past max leaves contents", b.data, "0123456789");
	qn_buf_release(&b);

	/* A max of 0 allows only the empty buffer. */
	qn_buf_init(&b, 0);
	CHECK_NAMED("max 0: add 1 fails", qn_buf_add(&b, "a", 1) == -1);
	CHECK_NAMED("max 0: addc fails", qn_buf_addc(&b, 'a') == -1);
	CHECK_NAMED("max 0: add 0 ok", qn_buf_add(&b, "", 0) == 0 && b.len == 0);
	qn_buf_release(&b);
}

static void test_printf(void)
{
	struct qn_buf b;
	char want[600];

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	CHECK_NAMED("printf ok", qn_buf_printf(&b, "%s=%d;", "x", 42) == 0);
	CHECK_NAMED("printf appends", qn_buf_printf(&b, "%05.1f|%llx", 3.14159, 255ULL) == 0);
	CHECK_STR("printf output", b.data, "x=42;003.1|ff");
	CHECK_NAMED("printf len", b.len == strlen("x=42;003.1|ff"));
	CHECK_NAMED("printf empty format", qn_buf_printf(&b, "%s", "") == 0 &&
						   b.len == strlen("x=42;003.1|ff"));
	qn_buf_reset(&b);
	/* Longer than the first allocation (256). */
	memset(want, 'q', 500);
	want[500] = 0;
	CHECK_NAMED("printf 500 chars", qn_buf_printf(&b, "%s", want) == 0);
	CHECK_STR("printf 500 chars output", b.data, want);
	qn_buf_release(&b);

	qn_buf_init(&b, 8);
	CHECK_NAMED("printf exactly max", qn_buf_printf(&b, "%08d", 1234) == 0);
	CHECK_STR("printf exactly max output", b.data, "00001234");
	qn_buf_release(&b);
}

static void test_rtrim(void)
{
	struct qn_buf b;

	qn_buf_init(&b, 100);
	qn_buf_adds(&b, "  text \t\r\n \n");
	qn_buf_rtrim(&b);
	CHECK_STR("rtrim drops trailing space/tab/cr/lf", b.data, "  text");
	CHECK_NAMED("rtrim len", b.len == 6);
	qn_buf_rtrim(&b);
	CHECK_STR("rtrim idempotent", b.data, "  text");
	qn_buf_reset(&b);
	qn_buf_adds(&b, " \t\n");
	qn_buf_rtrim(&b);
	CHECK_NAMED("rtrim all-space to empty", b.len == 0 && b.data[0] == 0);
	qn_buf_reset(&b);
	qn_buf_adds(&b, "a b\tc");
	qn_buf_rtrim(&b);
	CHECK_STR("rtrim keeps inner whitespace", b.data, "a b\tc");
	qn_buf_release(&b);

	qn_buf_init(&b, 100);
	qn_buf_rtrim(&b); /* no storage yet */
	CHECK_NAMED("rtrim of unallocated buffer", b.len == 0 && b.data == NULL);
	qn_buf_release(&b);
}

static void test_detach(void)
{
	struct qn_buf b;
	size_t len = 99;
	char *p;

	qn_buf_init(&b, 100);
	qn_buf_adds(&b, "owned");
	p = qn_buf_detach(&b, &len);
	CHECK_STR("detach returns the data", p, "owned");
	CHECK_NAMED("detach returns the len", len == 5);
	CHECK_NAMED("detach empties the buffer", b.data == NULL && b.len == 0 && b.cap == 0);
	free(p);
	/* The buffer is usable again after detach. */
	CHECK_NAMED("add after detach", qn_buf_adds(&b, "again") == 0);
	CHECK_STR("add after detach contents", b.data, "again");
	qn_buf_release(&b);

	qn_buf_init(&b, 100);
	len = 99;
	p = qn_buf_detach(&b, &len);
	CHECK_NAMED("detach of empty buffer gives an empty string", p && p[0] == 0);
	CHECK_NAMED("detach of empty buffer: len 0", len == 0);
	free(p);
	p = qn_buf_detach(&b, NULL);
	CHECK_NAMED("detach with NULL len", p && p[0] == 0);
	free(p);
	qn_buf_release(&b);
}

int main(void)
{
	test_init_empty();
	test_growth();
	test_max();
	test_printf();
	test_rtrim();
	test_detach();
	return CHECK_DONE();
}
