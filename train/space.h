/*
 * space.h - the search space of quern-train sweep: a YAML file that names
 * the quern-train fit options to search, how to draw each one, and the
 * sweep's own settings.
 *
 *   seed: 1                # the sweep's seed (--seed overrides)
 *   trials: 12             # configurations drawn
 *   parallel: 2            # trials run at once
 *   scheduler: asha        # or random
 *   eta: 3                 # asha: keep the best 1/eta at each rung
 *   min_steps: 20          # asha: the first rung's budget, at least
 *   metric: val_loss       # read from the last line of a trial's metrics.jsonl
 *   mode: min              # min or max (default: min, max for val_pref_acc)
 *   params:
 *     lr: {log_uniform: [1e-4, 3e-2]}
 *     weight-decay: {uniform: [0, 0.2]}
 *     warmup: {int: [0, 50]}
 *     batch: {choice: [4, 8, 16]}
 *     schedule: cosine     # a fixed value
 *
 * Parameter names are quern-train fit long options that take a value, from
 * an allow-list (qn_space_option); each is checked against the option's type
 * and range here, so a trial never starts with a value fit would refuse.
 * Every error, YAML syntax errors included, reads "file:line:column:
 * message" (1-based, where the offending value starts).
 *
 * Draws are counter-based: the value of parameter p in trial t is a hash of
 * (seed, t, p's name), so it depends on nothing else: more trials extend a
 * sweep, and adding a parameter leaves the others' draws as they were.
 *
 * Untrusted input is bounded (QN_SPACE_MAX_* below); aliases are refused.
 * Ownership: qn_space_parse / qn_space_load fill a caller-owned struct that
 * qn_space_release frees (also after a failed parse).
 */
#ifndef QN_TRAIN_SPACE_H
#define QN_TRAIN_SPACE_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define QN_SPACE_MAX_BYTES (1u << 20)
#define QN_SPACE_MAX_NODES 20000
#define QN_SPACE_MAX_DEPTH 16
#define QN_SPACE_MAX_PARAMS 64
#define QN_SPACE_MAX_CHOICES 1000
#define QN_SPACE_MAX_TRIALS 100000
#define QN_SPACE_MAX_VALUE 256 /* bytes of one value's text, NUL included */

enum qn_space_kind {
	QN_SPACE_UNIFORM,     /* a float in [lo, hi] */
	QN_SPACE_LOG_UNIFORM, /* a float, log-uniform in [lo, hi], lo > 0 */
	QN_SPACE_INT,	      /* a whole number in [lo, hi] */
	QN_SPACE_LOG_INT,     /* a whole number, log-uniform in [lo, hi], lo >= 1 */
	QN_SPACE_CHOICE,      /* one of choices[0..nchoices), equally likely */
};

enum qn_space_type {
	QN_SPACE_FLOAT, /* a number */
	QN_SPACE_WHOLE, /* a whole number */
	QN_SPACE_TEXT,	/* text (some options: one of a fixed set) */
};

/* A tunable fit option: its type and the range fit accepts. */
struct qn_space_option {
	const char *name; /* the long option without "--" */
	enum qn_space_type type;
	double min, max;	  /* numbers: the accepted range */
	const char *const *words; /* text: the accepted values (NULL: any) */
};

/* The option called name, or NULL when it is not tunable. */
const struct qn_space_option *qn_space_option(const char *name);

struct qn_space_param {
	const struct qn_space_option *opt;
	enum qn_space_kind kind;
	double lo, hi;	/* the ranged kinds */
	char **choices; /* QN_SPACE_CHOICE: each value's text (a fixed value: one) */
	size_t nchoices;
	unsigned line, col; /* where the parameter's name is */
};

enum { QN_SPACE_ASHA, QN_SPACE_RANDOM };

/* A setting of the file: the value and where it was (line 0: not in the file). */
struct qn_space_setting {
	long long v;
	unsigned line, col;
};

struct qn_space {
	char *file; /* the name errors give */
	struct qn_space_setting seed, trials, parallel, eta, min_steps, scheduler;
	char metric[32]; /* default "val_loss" */
	int maximize;	 /* mode: max */
	struct qn_space_param *params;
	size_t nparams;
};

/* Parses text (len bytes) named file into *s. 0, or -1 with e filled. */
int qn_space_parse(const char *text, size_t len, const char *file, struct qn_space *s,
		   struct qn_err *e);
/*
 * Reads path (at most QN_SPACE_MAX_BYTES) and parses it: 0; -1 when the
 * content is bad (or too large); -2 when the file cannot be read.
 */
int qn_space_load(const char *path, struct qn_space *s, struct qn_err *e);
void qn_space_release(struct qn_space *s);

/*
 * The value of p in trial t of a sweep seeded seed, as the text fit gets on
 * its command line (floats to 4 significant digits, inside [lo, hi]); buf
 * holds at least QN_SPACE_MAX_VALUE bytes.
 */
void qn_space_draw(const struct qn_space_param *p, uint64_t seed, long t, char *buf);

/* Whether text is a number as the space file writes them (finite, all of it). */
int qn_space_number(const char *text, double *out);

#endif
