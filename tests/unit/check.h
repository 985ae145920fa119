/*
 * check.h - the unit-test harness: CHECK(cond) and friends print one
 * "PASS: name" or "FAIL: name (file:line): expr" line per check; tests/run.sh
 * counts them. A test binary exits 1 when any check failed.
 */
#ifndef QN_CHECK_H
#define QN_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed;
static int check_count;

#define CHECK_NAMED(name, cond)                                                          \
	do {                                                                             \
		check_count++;                                                           \
		if (cond) {                                                              \
			printf("PASS: %s\n", name);                                      \
		} else {                                                                 \
			printf("FAIL: %s (%s:%d): %s\n", name, __FILE__, __LINE__, #cond); \
			check_failed++;                                                  \
		}                                                                        \
	} while (0)

#define CHECK(cond) CHECK_NAMED(#cond, cond)

#define CHECK_STR(name, got, want)                                                       \
	do {                                                                             \
		const char *g_ = (got), *w_ = (want);                                    \
		int ok_ = g_ && w_ && !strcmp(g_, w_);                                   \
		CHECK_NAMED(name, ok_);                                                  \
		if (!ok_)                                                                \
			printf("  got:  [%s]\n  want: [%s]\n", g_ ? g_ : "(null)",      \
			       w_ ? w_ : "(null)");                                      \
	} while (0)

#define CHECK_DONE() (check_failed ? 1 : 0)

#endif
