/*
 * cli.h - what every quern tool's main() shares: messages, exit codes,
 * --help / --version, the stdout check at exit, and the progress meter.
 *
 * This is the one corner of lib/ that talks to the user, and it still never
 * exits: each helper prints and returns the exit code for main() to return.
 * Messages go to stderr as "prog: failure first 'subject': reason".
 */
#ifndef QN_CLI_H
#define QN_CLI_H

#include <stdint.h>
#include <stdio.h>

#define QN_VERSION "0.1.0"

enum {
	QN_EXIT_OK = 0,
	QN_EXIT_FAIL = 1,  /* runtime failure, or a policy violated */
	QN_EXIT_USAGE = 2, /* bad command line */
	QN_EXIT_LOCKED = 75,
};

extern const char *qn_prog; /* set by qn_cli_init */
extern int qn_verbosity;    /* -1 quiet, 0 normal, 1+ verbose */

/* Sets the program name and keeps SIGPIPE at its default. */
void qn_cli_init(const char *prog);

void qn_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void qn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* not with -q */
void qn_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* only with -v */

/* Prints "prog: <msg>" and the try-help line; returns QN_EXIT_USAGE. */
int qn_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "prog VERSION" to stdout; returns 0. */
int qn_print_version(void);

/*
 * Flushes and closes stdout; on failure (full disk, closed pipe) prints a
 * message and returns 1, else returns rc unchanged.
 */
int qn_close_stdout(int rc);

/*
 * Parses a number in [min, max] for option what; on a bad value prints the
 * usage error ("what: expected a number from min to max, not 's'") and
 * returns -1.
 */
int qn_parse_number(const char *what, const char *s, double min, double max, double *out);
/* The same for a whole number ("what: expected a whole number, not 's'"). */
int qn_parse_long(const char *what, const char *s, long min, long max, long *out);
/* A thread or process count, 0 to 1024; 0 means one per CPU. */
int qn_parse_jobs(const char *what, const char *s, int *out);

/* Parses a size like "64M", "1G", "4096"; -1 on a bad value. */
int qn_parse_size(const char *s, uint64_t *out);

/*
 * Progress meter: shown only when stderr is a terminal, redrawn at most
 * four times a second, cleared at the end. total_bytes may be 0 (unknown).
 */
struct qn_progress {
	int on;
	double start, last;
	uint64_t total_bytes;
};

void qn_progress_init(struct qn_progress *p, uint64_t total_bytes);
void qn_progress_update(struct qn_progress *p, uint64_t bytes, uint64_t docs);
void qn_progress_finish(struct qn_progress *p);

#endif
