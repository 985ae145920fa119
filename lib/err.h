/*
 * err.h - error messages that carry their place.
 *
 * lib/ never prints and never exits: a failing function fills a caller-owned
 * struct qn_err with one lowercase line ("cannot open 'x': No such file") and
 * returns -1 (or NULL). The tool decides whether that is fatal and prints it.
 */
#ifndef QN_ERR_H
#define QN_ERR_H

#include <stddef.h>

struct qn_err {
	char msg[1024];
};

/* Formats the message into e (when e is not NULL) and returns -1. */
int qn_errf(struct qn_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Like qn_errf, with ": strerror(errnum)" appended. */
int qn_errno(struct qn_err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an existing message: "ctx: old message". */
void qn_err_prefix(struct qn_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
