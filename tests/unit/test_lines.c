/*
 * test_lines.c - lib/lines: batches of input lines for the thread pools.
 */
#include <string.h>

#include "check.h"
#include "lines.h"

static void test_add(void)
{
	struct qn_lines l;
	char big[1000];

	qn_lines_init(&l, "in.jsonl");
	CHECK(l.n == 0 && !strcmp(l.file, "in.jsonl"));
	CHECK(qn_lines_add(&l, "{\"a\":1}", 7, 1) == 0);
	CHECK(qn_lines_add(&l, "", 0, 3) == 0);
	CHECK(qn_lines_add(&l, "x\0y", 3, 4) == 0); /* NULs of its own are kept */
	CHECK(qn_lines_add(&l, "ignored", QN_LINES_TOO_LONG, 5) == 0);
	CHECK(l.n == 4);
	CHECK_STR("first line", qn_lines_at(&l, 0), "{\"a\":1}");
	CHECK(l.len[0] == 7 && l.lineno[0] == 1);
	CHECK_STR("empty line", qn_lines_at(&l, 1), "");
	CHECK(l.lineno[1] == 3);
	CHECK(l.len[2] == 3 && !memcmp(qn_lines_at(&l, 2), "x\0y", 4));
	CHECK_NAMED("too long: no bytes, marked", l.len[3] == QN_LINES_TOO_LONG &&
						  qn_lines_at(&l, 3)[0] == 0);
	/* Growth past the first allocation keeps every line. */
	memset(big, 'b', sizeof big);
	for (int i = 0; i < 1000; i++)
		if (qn_lines_add(&l, big, (size_t)(i % 1000), (uint64_t)(10 + i)) < 0)
			break;
	CHECK(l.n == 1004);
	int ok = 1;
	for (size_t i = 4; i < l.n; i++)
		ok &= l.len[i] == (i - 4) % 1000 && l.lineno[i] == 10 + (i - 4) &&
		      qn_lines_at(&l, i)[l.len[i]] == 0 && (l.len[i] == 0 || qn_lines_at(&l, i)[0] == 'b');
	CHECK_NAMED("1000 more lines intact", ok);
	qn_lines_release(&l);
	CHECK(l.n == 0 && l.off == NULL);
}

int main(void)
{
	test_add();
	return CHECK_DONE();
}
