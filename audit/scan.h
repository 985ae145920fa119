/*
 * scan.h - quern-audit scan's pipeline for the commands that scan text of
 * their own making. quern-audit probe writes a model's generations and
 * scans them with scan's detectors, rules, gates and reports, and first
 * scans the training data to learn which values it holds (only their
 * salted hashes). scan_main is scan_run with no hooks.
 *
 * argv is a scan command line (argv[0] the program, then scan's options
 * and inputs). The hooks are borrowed for the run; every one may be NULL.
 */
#ifndef QN_AUDIT_SCAN_H
#define QN_AUDIT_SCAN_H

#include <jansson.h>

struct qn_manifest;

struct scan_hooks {
	/*
	 * 1 when a value hash (64 hex digits, salted as the findings' "hash")
	 * is one the training data holds. Called from worker threads, so it
	 * must only read. With it, every finding gets "regurgitated" (true for
	 * a pii or secret value it knows), the summary counts them, and the
	 * gate subject "regurgitated" counts those not suppressed; without it
	 * that gate is a usage error.
	 */
	int (*known)(const char *hash, void *ctx);
	/*
	 * Collecting: called on the main thread with the hash of each pii or
	 * secret finding, in output order; no findings are written (-o is
	 * ignored). Returns 0, or -1 to stop the run (out of memory).
	 */
	int (*collect)(const char *hash, void *ctx);
	/* Adds the caller's facts to the summary before it is written. */
	void (*summary)(json_t *summary, void *ctx);
	/* Adds the caller's inputs and counters to the run's manifest. */
	void (*manifest)(struct qn_manifest *m, void *ctx);
	int argc;		 /* with argv: the command line the manifest records */
	char **argv;		 /* (NULL: the scan's own) */
	const char *source_name; /* the first input's name in findings and reports */
	void *ctx;
};

int scan_run(int argc, char **argv, const struct scan_hooks *h);

#endif
