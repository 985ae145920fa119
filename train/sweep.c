/*
 * sweep.c - quern-train sweep: hyperparameter search over quern-train fit.
 *
 * Each trial is a configuration drawn from the search space (space.h) and
 * run as a child `quern-train fit MODEL ... -o DIR/trial-NNN` with the
 * sweep's pass-through options, its own values and THREADS/P threads, so
 * that it is deterministic (fit is bit-identical at a thread count and
 * seed). Successive halving runs the trials rung by rung: every survivor
 * to the rung's budget with `--stop-at B` (validated and checkpointed, the
 * schedule still --steps long), then the best 1/eta go on with `--resume`.
 * The rungs are synchronous, so the leaderboard depends on nothing but the
 * inputs and the seed. Random search runs every trial to --steps.
 *
 * The sweep owns DIR: leaderboard.jsonl (best first, no timings),
 * trials.jsonl (a line a leg, with timings), best.json, best/ (the best
 * trial's model files) and sweep.manifest.json.
 */
#include "sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "hash.h"
#include "manifest.h"
#include "space.h"
#include "wr.h"

extern char **environ;

static const char sweep_usage[] =
    "usage: quern-train sweep MODEL --data SHARDS --space FILE.yaml -o DIR [options]\n"
    "                         [fit options]\n"
    "\n"
    "Hyperparameter search over quern-train fit runs: random search, or successive\n"
    "halving (ASHA's rungs, run rung by rung), trials in parallel. The options the\n"
    "sweep does not know go to every trial: quern-train fit MODEL ... -o DIR/trial-NNN.\n"
    "\n"
    "Options:\n"
    "      --space FILE           the search space (YAML; docs/sweep.md)\n"
    "  -o, --output DIR           the sweep's directory\n"
    "      --trials N             configurations drawn (default: the space's, else 10)\n"
    "      --parallel P           trials at once (default: the space's, else 1)\n"
    "      --seed S               the sweep's seed (default: the space's, else 0)\n"
    "      --scheduler S          asha (default) or random\n"
    "      --eta N                asha: the best 1/N of a rung go on (default 3)\n"
    "      --min-steps N          asha: the first rung's budget, at least\n"
    "                             (default --steps / eta^3)\n"
    "      --resume               go on with the sweep in DIR (stopped or extended:\n"
    "                             the same command line; legs done are not rerun)\n"
    "  -j, --threads N            threads in all; a trial gets N/P (default 0 = one\n"
    "                             per CPU; give it for results that repeat elsewhere)\n"
    "  -q, --quiet                no warnings\n"
    "  -v, --verbose              a line per trial and rung\n"
    "  -h, --help                 this help\n"
    "\n"
    "DIR gets leaderboard.jsonl (a line a trial, best first), best.json (the best\n"
    "trial's values and command), best/ (its model), trials.jsonl (timings) and\n"
    "trial-NNN/ (each trial's run and log).\n"
    "\n"
    "Exit status: 0 done (failed trials are in the leaderboard); 1 every trial\n"
    "failed, or I/O; 2 usage error or a bad space file; 130/143 SIGINT/SIGTERM.\n";

/* ---- fit's options --------------------------------------------------------------- */

struct fit_option {
	const char *name;
	int arg;	    /* takes a value */
	const char *refuse; /* why the sweep refuses it; NULL: passed to every trial */
};

static const struct fit_option fit_options[] = {
    {"data", 1, NULL},
    {"steps", 1, NULL},
    {"batch", 1, NULL},
    {"context", 1, NULL},
    {"accum", 1, NULL},
    {"lr", 1, NULL},
    {"min-lr", 1, NULL},
    {"warmup", 1, NULL},
    {"schedule", 1, NULL},
    {"weight-decay", 1, NULL},
    {"beta1", 1, NULL},
    {"beta2", 1, NULL},
    {"eps", 1, NULL},
    {"clip", 1, NULL},
    {"no-shuffle", 0, NULL},
    {"eval-every", 1, NULL},
    {"eval-batches", 1, NULL},
    {"save-every", 1, NULL},
    {"keep", 1, NULL},
    {"freeze", 1, NULL},
    {"dropout", 1, NULL},
    {"lora", 0, NULL},
    {"lora-r", 1, NULL},
    {"lora-alpha", 1, NULL},
    {"lora-dropout", 1, NULL},
    {"lora-targets", 1, NULL},
    {"dpo", 0, NULL},
    {"dpo-beta", 1, NULL},
    {"mix", 1, NULL},
    {"mix-temperature", 1, NULL},
    {"task-weight", 1, NULL},
    {"task-cap", 1, NULL},
    {"metrics", 1, "the sweep reads each trial's DIR/trial-NNN/metrics.jsonl"},
    {"stop-at", 1, "the rungs set each trial's --stop-at"},
    {"patience", 1, "the rungs stop the trials that fall behind"},
    {"min-delta", 1, "the rungs stop the trials that fall behind"},
};

static const struct fit_option *fit_option(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof fit_options / sizeof *fit_options; i++)
		if (strlen(fit_options[i].name) == len && !strncmp(fit_options[i].name, name, len))
			return &fit_options[i];
	return NULL;
}

/* ---- the sweep -------------------------------------------------------------------- */

enum { PENDING, COMPLETED, PRUNED, FAILED, INTERRUPTED };
static const char *const status_names[] = {"pending", "completed", "pruned", "failed",
					   "interrupted"};

struct trial {
	long id;
	char **vals; /* a value a parameter, as fit gets it */
	char dir[4096];
	int status;
	long steps; /* reached (validated and checkpointed) */
	int rung;   /* the last rung reached; -1 none */
	double metric;
	double *hist; /* the metric at each rung reached */
	long *hist_steps;
	int nhist;
	char error[320];
	pid_t pid;
	double t0;
	long from, to; /* the running leg */
};

struct sweep {
	struct qn_space sp;
	const char *model, *out, *space_file, *argv0;
	char exe[4096];
	const char **pass; /* fit options passed through, as given */
	size_t npass;
	uint64_t seed;
	long ntrials, parallel, eta, min_steps, steps, threads, per_trial;
	int scheduler;
	long *rungs; /* budgets, increasing; the last is steps */
	int nrungs;
	struct trial *t;
	FILE *timings;
	char fatal[1024]; /* a problem every trial shares: stop the sweep */
	int fatal_rc;	  /* its exit status (default 1) */
	int resume;	  /* --resume: go on with the sweep in DIR */
	double t_start;
	long total_steps;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	if (!stop_signal)
		stop_signal = sig;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Keeps printable ASCII (the text goes into JSON and onto one line). */
static void ascii_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/*
 * The last non-empty line of path (at most size - 1 bytes of it) into buf;
 * "" when there is none.
 */
static void last_line(const char *path, char *buf, size_t size)
{
	char tail[8192];
	buf[0] = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	long at = 0;
	if (fseek(f, 0, SEEK_END) == 0 && (at = ftell(f)) > (long)sizeof tail - 1)
		at -= (long)sizeof tail - 1;
	else
		at = 0;
	fseek(f, at, SEEK_SET);
	size_t n = fread(tail, 1, sizeof tail - 1, f);
	fclose(f);
	while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r' || tail[n - 1] == ' '))
		n--;
	tail[n] = 0;
	char *s = memrchr(tail, '\n', n);
	s = s ? s + 1 : tail;
	if (!strncmp(s, "try '", 5) && s > tail) { /* a usage error's second line */
		*--s = 0;
		char *r = memrchr(tail, '\n', (size_t)(s - tail));
		s = r ? r + 1 : tail;
	}
	snprintf(buf, size, "%s", s);
}

/*
 * Removes every "dir/" from s: a trial's message names its files relative
 * to the sweep's directory, so that the leaderboard does not depend on it.
 */
static void drop_dir(char *s, const char *dir)
{
	size_t n = strlen(dir);
	char *p = s;
	while (n && (p = strstr(p, dir)) && p[n] == '/')
		memmove(p, p + n + 1, strlen(p + n + 1) + 1);
}

/* ---- a leg of a trial: one child quern-train fit ---------------------------------- */

static void trial_fail(struct trial *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void trial_fail(struct trial *t, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof t->error, fmt, ap);
	va_end(ap);
	ascii_line(t->error);
	t->status = status;
}

/* The option names as fit spells them ("--lr"), in the space's order. */
static char **dashed;

/* The fit command of trial t; to < steps adds --stop-at, a started trial --resume. */
static const char **fit_argv(const struct sweep *sw, const struct trial *t, long to, int resume,
			     char *jbuf, char *stopbuf, const char *exe)
{
	size_t n = 0, cap = 12 + sw->npass + 2 * sw->sp.nparams;
	const char **a = malloc(cap * sizeof *a);
	if (!a)
		return NULL;
	a[n++] = exe;
	a[n++] = "fit";
	a[n++] = sw->model;
	for (size_t i = 0; i < sw->npass; i++)
		a[n++] = sw->pass[i];
	a[n++] = "-o";
	a[n++] = t->dir;
	snprintf(jbuf, 32, "%ld", sw->per_trial);
	a[n++] = "-j";
	a[n++] = jbuf;
	for (size_t i = 0; i < sw->sp.nparams; i++) {
		a[n++] = dashed[i];
		a[n++] = t->vals[i];
	}
	if (to < sw->steps) {
		snprintf(stopbuf, 32, "%ld", to);
		a[n++] = "--stop-at";
		a[n++] = stopbuf;
	}
	if (resume)
		a[n++] = "--resume";
	a[n] = NULL;
	return a;
}

/* Whether dir holds a fit checkpoint (a sweep resumed: the trial had begun). */
static int has_checkpoint(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	while (d && !found && (de = readdir(d)))
		found = !strncmp(de->d_name, "checkpoint-", 11);
	if (d)
		closedir(d);
	return found;
}

/*
 * A resumed sweep: whether the trial already reached step `to` in the
 * earlier run (its metrics have the metric at that step, and the final
 * rung's model files are there); if so, records it as a finished leg.
 */
static int leg_done(struct sweep *sw, struct trial *t, int rung, long to)
{
	char path[4200], line[8192];
	int found = 0;
	double v = 0;
	snprintf(path, sizeof path, "%s/metrics.jsonl", t->dir);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL);
		json_t *m = json_object_get(j, sw->sp.metric), *st = json_object_get(j, "step");
		if (json_is_integer(st) && json_integer_value(st) == to && json_is_number(m)) {
			found = 1; /* the last such line: a resumed fit rewrites what follows */
			v = json_number_value(m);
		}
		json_decref(j);
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof path, "%s/config.json", t->dir);
	if (found && to == sw->steps && access(path, F_OK)) {
		snprintf(path, sizeof path, "%s/adapter_config.json", t->dir);
		found = !access(path, F_OK);
	}
	if (!found || !isfinite(v))
		return 0;
	t->from = t->steps;
	t->to = t->steps = to;
	t->rung = rung;
	t->metric = v;
	t->hist[t->nhist] = v;
	t->hist_steps[t->nhist++] = to;
	qn_info("trial %ld: step %ld reached before (%s %.6g)", t->id, to, sw->sp.metric, v);
	return 1;
}

static int start_leg(struct sweep *sw, struct trial *t, long to)
{
	char jbuf[32], stopbuf[32], log[4200];
	const char **a =
	    fit_argv(sw, t, to, t->steps > 0 || has_checkpoint(t->dir), jbuf, stopbuf, sw->exe);
	if (!a) {
		trial_fail(t, FAILED, "out of memory");
		return -1;
	}
	snprintf(log, sizeof log, "%s/log", t->dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0666);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	t->from = t->steps;
	t->to = to;
	t->t0 = now();
	int rc = posix_spawn(&t->pid, sw->exe, &fa, NULL, (char *const *)a, environ);
	posix_spawn_file_actions_destroy(&fa);
	free(a);
	if (rc) {
		t->pid = 0;
		trial_fail(t, FAILED, "cannot run '%s': %s", sw->exe, strerror(rc));
		return -1;
	}
	return 0;
}

/* The metric and step of the last line of the trial's metrics.jsonl; -1 and why. */
static int read_metric(const struct sweep *sw, const struct trial *t, double *v, long *step,
		       char *why, size_t size)
{
	char path[4200], line[8192];
	snprintf(path, sizeof path, "%s/metrics.jsonl", t->dir);
	last_line(path, line, sizeof line);
	json_t *j = line[0] ? json_loads(line, 0, NULL) : NULL;
	json_t *m = json_object_get(j, sw->sp.metric), *s = json_object_get(j, "step");
	int rc = 0;
	if (!j) {
		snprintf(why, size, "no metrics in '%.300s'", path);
		rc = -1;
	} else if (!json_is_number(m)) {
		snprintf(why, size, "no '%s' in the last line of '%.300s'%s", sw->sp.metric, path,
			 strncmp(sw->sp.metric, "val_", 4)
			     ? ""
			     : ": the data has no validation split (quern-tokenize encode "
			       "--val-fraction)");
		rc = -2;
	} else {
		*v = json_number_value(m);
		*step = json_is_integer(s) ? (long)json_integer_value(s) : -1;
	}
	json_decref(j);
	return rc;
}

static void log_leg(struct sweep *sw, const struct trial *t, int rung, int st, double secs)
{
	if (!sw->timings)
		return;
	fprintf(sw->timings,
		"{\"trial\":%ld,\"rung\":%d,\"from\":%ld,\"to\":%ld,\"status\":\"%s\","
		"\"seconds\":%.3f",
		t->id, rung, t->from, t->to,
		t->status == FAILED	   ? "failed"
		: t->status == INTERRUPTED ? "interrupted"
					   : "ok",
		secs);
	if (WIFEXITED(st))
		fprintf(sw->timings, ",\"exit\":%d", WEXITSTATUS(st));
	if (t->status == PENDING)
		fprintf(sw->timings, ",\"%s\":%.9g", sw->sp.metric, t->metric);
	fputs("}\n", sw->timings);
	fflush(sw->timings);
}

/* A leg ended with wait status st: the trial's new state. */
static void finish_leg(struct sweep *sw, struct trial *t, int rung, int st)
{
	double secs = now() - t->t0;
	char why[1024], logp[4200], last[256];
	t->pid = 0;
	snprintf(logp, sizeof logp, "%s/log", t->dir);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		double v;
		long step = -1;
		int rc = read_metric(sw, t, &v, &step, why, sizeof why);
		if (rc == -2 && !sw->fatal[0])
			snprintf(sw->fatal, sizeof sw->fatal, "%s", why);
		if (rc)
			trial_fail(t, FAILED, "%s", why);
		else if (step != t->to)
			trial_fail(t, FAILED, "the metrics end at step %ld, not %ld", step, t->to);
		else if (!isfinite(v))
			trial_fail(t, FAILED, "%s is not finite at step %ld", sw->sp.metric, step);
		else {
			t->steps = t->to;
			t->rung = rung;
			t->metric = v;
			t->hist[t->nhist] = v;
			t->hist_steps[t->nhist++] = t->to;
		}
	} else {
		last_line(logp, last, sizeof last);
		size_t pl = strlen(qn_prog);
		if (!strncmp(last, qn_prog, pl) && last[pl] == ':' && last[pl + 1] == ' ')
			memmove(last, last + pl + 2, strlen(last + pl + 2) + 1);
		drop_dir(last, sw->out);
		if (stop_signal && ((WIFEXITED(st) && WEXITSTATUS(st) == 128 + stop_signal) ||
				    (WIFSIGNALED(st) && WTERMSIG(st) == stop_signal)))
			trial_fail(t, INTERRUPTED, "stopped by signal %d", (int)stop_signal);
		else if (WIFEXITED(st))
			trial_fail(t, FAILED, "exit %d: %s", WEXITSTATUS(st),
				   last[0] ? last : "(no message)");
		else
			trial_fail(t, FAILED, "killed by signal %d", WTERMSIG(st));
		/* fit's usage errors come from the options every trial shares. */
		if (t->status == FAILED && WIFEXITED(st) && WEXITSTATUS(st) == QN_EXIT_USAGE &&
		    !sw->fatal[0]) {
			snprintf(sw->fatal, sizeof sw->fatal, "fit refused trial %ld's options: %s",
				 t->id, last[0] ? last : "(no message)");
			sw->fatal_rc = QN_EXIT_USAGE;
		}
	}
	if (t->status != PENDING || qn_verbosity > 0)
		qn_info("trial %ld: steps %ld to %ld: %s %.6g (%.1f s)%s%s", t->id, t->from, t->to,
			sw->sp.metric, t->status == PENDING ? t->metric : NAN, secs,
			t->status == PENDING ? "" : ": ", t->status == PENDING ? "" : t->error);
	if (t->status == FAILED)
		qn_warn("trial %ld failed: %s (see '%s')", t->id, t->error, logp);
	sw->total_steps += t->status == PENDING ? t->to - t->from : 0;
	log_leg(sw, t, rung, st, secs);
}

static void draw_progress(const struct sweep *sw, int rung, size_t done, size_t n)
{
	if (!isatty(2) || qn_verbosity < 0)
		return;
	fprintf(stderr, "\rrung %d/%d (%ld steps): %zu/%zu trials  %.0f s\033[K", rung + 1,
		sw->nrungs, sw->rungs[rung], done, n, now() - sw->t_start);
}

/*
 * Runs the trials ids[0..n) to budget `to`, P at a time. Failures are the
 * trials'; only a signal or a shared problem (sw->fatal) stops the rung.
 */
static void run_rung(struct sweep *sw, struct trial **ts, size_t n, int rung, long to)
{
	size_t next = 0, running = 0, done = 0;
	int forwarded = 0;
	draw_progress(sw, rung, 0, n);
	while (running || (next < n && !stop_signal && !sw->fatal[0])) {
		while (running < (size_t)sw->parallel && next < n && !stop_signal &&
		       !sw->fatal[0]) {
			struct trial *t = ts[next++];
			if (sw->resume && leg_done(sw, t, rung, to)) {
				done++;
				continue;
			}
			if (start_leg(sw, t, to) == 0)
				running++;
			else
				qn_warn("trial %ld failed: %s", t->id, t->error);
		}
		if (stop_signal && !forwarded) {
			for (size_t i = 0; i < n; i++)
				if (ts[i]->pid > 0)
					kill(ts[i]->pid, stop_signal);
			forwarded = 1;
		}
		if (!running)
			break;
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid == 0) {
			struct timespec ts20 = {0, 20000000};
			nanosleep(&ts20, NULL); /* a signal cuts it short */
			continue;
		}
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break; /* no children left: nothing more to wait for */
		}
		for (size_t i = 0; i < n; i++)
			if (ts[i]->pid == pid) {
				finish_leg(sw, ts[i], rung, st);
				running--;
				done++;
				break;
			}
		draw_progress(sw, rung, done, n);
	}
	for (size_t i = next; i < n; i++)
		if (ts[i]->status == PENDING && stop_signal)
			trial_fail(ts[i], INTERRUPTED, "stopped by signal %d", (int)stop_signal);
	if (isatty(2) && qn_verbosity >= 0)
		fputs("\r\033[K", stderr);
}

/* ---- ranking ---------------------------------------------------------------------- */

static int g_maximize;

/* Deeper rungs first, then the better metric, then the trial id; failures last. */
static int by_rank(const void *pa, const void *pb)
{
	const struct trial *a = *(const struct trial *const *)pa,
			   *b = *(const struct trial *const *)pb;
	int fa = a->rung < 0 || a->status == FAILED || a->status == INTERRUPTED;
	int fb = b->rung < 0 || b->status == FAILED || b->status == INTERRUPTED;
	if (fa != fb)
		return fa - fb;
	if (!fa && a->rung != b->rung)
		return b->rung - a->rung;
	if (!fa && a->metric != b->metric)
		return (a->metric < b->metric) == !g_maximize ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* ---- outputs ---------------------------------------------------------------------- */

/* A parameter's value as JSON: a number for numeric options, else text. */
static json_t *param_json(const struct qn_space_param *p, const char *v)
{
	double x;
	if (p->opt->type != QN_SPACE_TEXT && qn_space_number(v, &x))
		return p->opt->type == QN_SPACE_WHOLE ? json_integer((json_int_t)x) : json_real(x);
	return json_string(v);
}

static json_t *params_json(const struct sweep *sw, const struct trial *t)
{
	json_t *o = json_object();
	for (size_t i = 0; i < sw->sp.nparams; i++)
		json_object_set_new(o, sw->sp.params[i].opt->name,
				    param_json(&sw->sp.params[i], t->vals[i]));
	return o;
}

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

static int write_leaderboard(const struct sweep *sw, struct trial **order, struct qn_err *e)
{
	struct qn_buf b;
	char path[4200];
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (long r = 0; r < sw->ntrials; r++) {
		const struct trial *t = order[r];
		json_t *o = json_object();
		char dir[32];
		snprintf(dir, sizeof dir, "trial-%03ld", t->id);
		json_object_set_new(o, "rank", json_integer(r + 1));
		json_object_set_new(o, "trial", json_integer(t->id));
		json_object_set_new(o, "status", json_string(status_names[t->status]));
		json_object_set_new(o, sw->sp.metric,
				    t->rung >= 0 ? json_real(t->metric) : json_null());
		json_object_set_new(o, "steps", json_integer(t->steps));
		json_object_set_new(o, "rung", t->rung >= 0 ? json_integer(t->rung) : json_null());
		json_object_set_new(o, "params", params_json(sw, t));
		json_t *h = json_array();
		for (int k = 0; k < t->nhist; k++) {
			json_t *x = json_object();
			json_object_set_new(x, "steps", json_integer(t->hist_steps[k]));
			json_object_set_new(x, sw->sp.metric, json_real(t->hist[k]));
			json_array_append_new(h, x);
		}
		json_object_set_new(o, "rungs", h);
		json_object_set_new(o, "dir", json_string(dir));
		if (t->error[0])
			json_object_set_new(o, "error", json_string(t->error));
		char *s = json_dumps(o, JSON_FLAGS);
		json_decref(o);
		if (!s || qn_buf_adds(&b, s) || qn_buf_addc(&b, '\n')) {
			free(s);
			qn_buf_release(&b);
			return qn_errf(e, "out of memory");
		}
		free(s);
	}
	snprintf(path, sizeof path, "%s/leaderboard.jsonl", sw->out);
	int rc = qn_write_file_atomic(path, b.data ? b.data : "", b.len, e);
	qn_buf_release(&b);
	return rc;
}

static int copy_file(const char *from, const char *to, struct qn_err *e)
{
	int in = open(from, O_RDONLY), out = -1, rc = 0;
	if (in < 0)
		return qn_errno(e, errno, "cannot open '%s'", from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (out < 0) {
		close(in);
		return qn_errno(e, errno, "cannot create '%s'", to);
	}
	char buf[1 << 16];
	ssize_t n;
	while (!rc && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = qn_errno(e, errno, "cannot read '%s'", from);
			break;
		}
		for (ssize_t w = 0; !rc && w < n;) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));
			if (k < 0 && errno != EINTR)
				rc = qn_errno(e, errno, "cannot write '%s'", to);
			w += k > 0 ? k : 0;
		}
	}
	if (!rc && fsync(out))
		rc = qn_errno(e, errno, "cannot write '%s'", to);
	close(in);
	if (close(out) && !rc)
		rc = qn_errno(e, errno, "cannot write '%s'", to);
	return rc;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4400];
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* DIR/best: the trial's model files (every plain file of its folder), atomically. */
static int copy_best(const struct sweep *sw, const struct trial *t, struct qn_err *e)
{
	char tmp[4200], dst[4200], from[8400], to[8400];
	snprintf(tmp, sizeof tmp, "%s/.best.tmp", sw->out);
	snprintf(dst, sizeof dst, "%s/best", sw->out);
	remove_dir(tmp);
	if (mkdir(tmp, 0777))
		return qn_errno(e, errno, "cannot create '%s'", tmp);
	DIR *d = opendir(t->dir);
	if (!d)
		return qn_errno(e, errno, "cannot open '%s'", t->dir);
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		struct stat st;
		snprintf(from, sizeof from, "%s/%s", t->dir, de->d_name);
		if (de->d_name[0] == '.' || stat(from, &st) || !S_ISREG(st.st_mode))
			continue;
		snprintf(to, sizeof to, "%s/%s", tmp, de->d_name);
		rc = copy_file(from, to, e);
	}
	closedir(d);
	if (!rc && is_dir(dst))
		remove_dir(dst);
	if (!rc && rename(tmp, dst))
		rc = qn_errno(e, errno, "cannot rename '%s' to '%s'", tmp, dst);
	if (rc)
		remove_dir(tmp);
	return rc;
}

static int write_best(const struct sweep *sw, const struct trial *t, struct qn_err *e)
{
	char jbuf[32], stopbuf[32], path[4200], model[4200];
	const char **a = fit_argv(sw, t, sw->steps, 0, jbuf, stopbuf, sw->argv0);
	if (!a)
		return qn_errf(e, "out of memory");
	json_t *o = json_object(), *cmd = json_array();
	for (size_t i = 0; a[i]; i++)
		json_array_append_new(cmd, json_string(a[i]));
	free(a);
	snprintf(model, sizeof model, "%s/best", sw->out);
	json_object_set_new(o, "trial", json_integer(t->id));
	json_object_set_new(o, sw->sp.metric, json_real(t->metric));
	json_object_set_new(o, "steps", json_integer(t->steps));
	json_object_set_new(o, "params", params_json(sw, t));
	json_object_set_new(o, "model", json_string(model));
	json_object_set_new(o, "command", cmd);
	char *s = json_dumps(o, JSON_FLAGS | JSON_INDENT(2));
	json_decref(o);
	if (!s)
		return qn_errf(e, "out of memory");
	size_t n = strlen(s);
	s[n] = '\n'; /* json_dumps leaves the NUL: replace it, the length says where */
	snprintf(path, sizeof path, "%s/best.json", sw->out);
	int rc = qn_write_file_atomic(path, s, n + 1, e);
	free(s);
	return rc;
}

/*
 * DIR/sweep.json: what decides the trials' results (the model, data and fit
 * options as given, the threads a trial, the scheduler and rungs, every
 * trial's values). --resume goes on only when it is the same, byte for byte.
 */
static char *settings_text(const struct sweep *sw)
{
	json_t *o = json_object(), *fit = json_array(), *r = json_array(), *ps = json_array();
	for (size_t i = 0; i < sw->npass; i++)
		json_array_append_new(fit, json_string(sw->pass[i]));
	for (int k = 0; k < sw->nrungs; k++)
		json_array_append_new(r, json_integer(sw->rungs[k]));
	for (long i = 0; i < sw->ntrials; i++)
		json_array_append_new(ps, params_json(sw, &sw->t[i]));
	json_object_set_new(o, "model", json_string(sw->model));
	json_object_set_new(o, "fit", fit);
	json_object_set_new(o, "threads_per_trial", json_integer(sw->per_trial));
	json_object_set_new(o, "seed", json_integer((json_int_t)sw->seed));
	json_object_set_new(o, "scheduler",
			    json_string(sw->scheduler == QN_SPACE_ASHA ? "asha" : "random"));
	json_object_set_new(o, "eta", json_integer(sw->eta));
	json_object_set_new(o, "rungs", r);
	json_object_set_new(o, "metric", json_string(sw->sp.metric));
	json_object_set_new(o, "mode", json_string(sw->sp.maximize ? "max" : "min"));
	json_object_set_new(o, "trials", ps);
	char *t = json_dumps(o, JSON_FLAGS);
	json_decref(o);
	return t;
}

/* A new sweep writes DIR/sweep.json; a resumed one checks it. 0 or an exit code. */
static int check_settings(const struct sweep *sw)
{
	char path[4200];
	struct qn_err e;
	char *t = settings_text(sw);
	if (!t) {
		qn_error("out of memory");
		return QN_EXIT_FAIL;
	}
	size_t n = strlen(t);
	t[n] = '\n';
	snprintf(path, sizeof path, "%s/sweep.json", sw->out);
	int rc = 0;
	if (!sw->resume) {
		if (qn_write_file_atomic(path, t, n + 1, &e)) {
			qn_error("%s", e.msg);
			rc = QN_EXIT_FAIL;
		}
	} else {
		FILE *f = fopen(path, "rb");
		char *old = f ? malloc(n + 2) : NULL;
		size_t got = old ? fread(old, 1, n + 2, f) : 0;
		if (!f) {
			qn_error("cannot open '%s': %s (no sweep to resume)", path,
				 strerror(errno));
			rc = QN_EXIT_FAIL;
		} else if (got != n + 1 || memcmp(old, t, n + 1)) {
			rc =
			    qn_usage_error("--resume: '%s' was swept with other settings (its "
					   "sweep.json): give the command line it was started with",
					   sw->out);
		}
		free(old);
		if (f)
			fclose(f);
	}
	free(t);
	return rc;
}

static int write_manifest(const struct sweep *sw, int argc, char **argv, const long *counts,
			  struct qn_err *e)
{
	static const char *const outs[] = {
	    "leaderboard.jsonl",	"best.json",
	    "best/config.json",		"best/model.safetensors",
	    "best/adapter_config.json", "best/adapter_model.safetensors"};
	static const char *const names[] = {"trials", "completed", "pruned", "failed", "steps"};
	char p[4200], sha[65];
	uint64_t size;
	struct qn_manifest *m = qn_manifest_new("quern-train", QN_VERSION, argc, argv);
	if (!m)
		return qn_errf(e, "out of memory");
	int rc = 0;
	if (!qn_sha256_file(sw->space_file, sha, &size, e))
		qn_manifest_input(m, sw->space_file, size, sha);
	for (size_t i = 0; i < sizeof outs / sizeof *outs && !rc; i++) {
		snprintf(p, sizeof p, "%s/%s", sw->out, outs[i]);
		if (access(p, F_OK))
			continue;
		rc = qn_sha256_file(p, sha, &size, e);
		if (!rc)
			qn_manifest_output(m, p, size, sha);
	}
	for (int i = 0; i < 5; i++)
		qn_manifest_count(m, names[i], counts[i]);
	json_t *r = json_array();
	for (int k = 0; k < sw->nrungs; k++)
		json_array_append_new(r, json_integer(sw->rungs[k]));
	json_t *o =
	    json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:s, s:o, s:f}", "seed",
		      (json_int_t)sw->seed, "trials", (json_int_t)sw->ntrials, "parallel",
		      (json_int_t)sw->parallel, "threads_per_trial", (json_int_t)sw->per_trial,
		      "scheduler", sw->scheduler == QN_SPACE_ASHA ? "asha" : "random", "eta",
		      (json_int_t)sw->eta, "metric", sw->sp.metric, "mode",
		      sw->sp.maximize ? "max" : "min", "rungs", r, "seconds", now() - sw->t_start);
	qn_manifest_set(m, "sweep", o);
	snprintf(p, sizeof p, "%s/sweep.manifest.json", sw->out);
	if (!rc)
		rc = qn_manifest_write(m, p, e);
	qn_manifest_free(m);
	return rc;
}

/* ---- the command line ------------------------------------------------------------- */

struct cli {
	const char *space, *out, *model, *trials, *parallel, *seed, *scheduler, *eta, *min_steps,
	    *threads, *steps;
	int data, resume;
};

/* Whether fit option name (without dashes) is among the pass-through options. */
static int passed(const struct sweep *sw, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sw->npass; i++) {
		const char *a = sw->pass[i];
		if (a[0] == '-' && a[1] == '-' && !strncmp(a + 2, name, n) &&
		    (a[2 + n] == 0 || a[2 + n] == '='))
			return 1;
	}
	return 0;
}

/*
 * Splits argv into the sweep's options (c) and fit's (sw->pass): 0, or an
 * exit status (a usage error; or, with *done set, --help or --version).
 */
static int parse_args(struct sweep *sw, struct cli *c, int argc, char **argv, int *done)
{
	static const char *const own[] = {"space",     "output", "trials",    "parallel", "seed",
					  "scheduler", "eta",	 "min-steps", "threads",  NULL};
	const char **slot[] = {&c->space,     &c->out, &c->trials,    &c->parallel, &c->seed,
			       &c->scheduler, &c->eta, &c->min_steps, &c->threads};
	int positional_only = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (positional_only || a[0] != '-' || !a[1]) {
			if (c->model)
				return qn_usage_error("sweep takes one MODEL directory, not '%s'",
						      a);
			c->model = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			positional_only = 1;
			continue;
		}
		if (a[1] != '-') { /* short options: -o DIR, -oDIR, -j N, -q, -v, -h, -V */
			for (const char *p = a + 1; *p; p++) {
				if (*p == 'o' || *p == 'j') {
					const char *v = p[1]	       ? p + 1
							: i + 1 < argc ? argv[++i]
								       : NULL;
					if (!v)
						return qn_usage_error("option '-%c' needs a value",
								      *p);
					*(*p == 'o' ? &c->out : &c->threads) = v;
					break;
				}
				if (*p == 'q')
					qn_verbosity = -1;
				else if (*p == 'v')
					qn_verbosity++;
				else if (*p == 'h') {
					fputs(sweep_usage, stdout);
					*done = 1;
					return qn_close_stdout(QN_EXIT_OK);
				} else if (*p == 'V') {
					*done = 1;
					return qn_close_stdout(qn_print_version());
				} else
					return qn_usage_error("unknown option '-%c'", *p);
			}
			continue;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		if (len == 4 && !strncmp(name, "help", 4)) {
			fputs(sweep_usage, stdout);
			*done = 1;
			return qn_close_stdout(QN_EXIT_OK);
		}
		if (len == 7 && !strncmp(name, "version", 7)) {
			*done = 1;
			return qn_close_stdout(qn_print_version());
		}
		if (len == 6 && !strncmp(name, "resume", 6) && !eq) {
			c->resume = 1;
			continue;
		}
		if ((len == 5 && !strncmp(name, "quiet", 5)) ||
		    (len == 7 && !strncmp(name, "verbose", 7))) {
			qn_verbosity = name[0] == 'q' ? -1 : qn_verbosity + 1;
			continue;
		}
		int k = 0;
		while (own[k] && (strlen(own[k]) != len || strncmp(own[k], name, len)))
			k++;
		if (own[k]) {
			const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (!v)
				return qn_usage_error("option '%s' needs a value", a);
			*slot[k] = v;
			continue;
		}
		const struct fit_option *f = fit_option(name, len);
		if (!f)
			return qn_usage_error("unknown option '%.*s'", (int)len + 2, a);
		if (f->refuse)
			return qn_usage_error("sweep: --%s is not for a sweep: %s", f->name,
					      f->refuse);
		if (!f->arg && eq)
			return qn_usage_error("option '--%s' takes no value", f->name);
		sw->pass[sw->npass++] = a;
		if (f->arg && !eq) {
			if (i + 1 >= argc)
				return qn_usage_error("option '%s' needs a value", a);
			sw->pass[sw->npass++] = argv[++i];
		}
		const char *v = f->arg ? (eq ? eq + 1 : argv[i]) : NULL;
		if (!strcmp(f->name, "data"))
			c->data = 1;
		if (!strcmp(f->name, "steps"))
			c->steps = v;
	}
	return 0;
}

/* The sweep's settings: the command line over the space file over the defaults. */
static int settle(struct sweep *sw, const struct cli *c)
{
	const struct qn_space *sp = &sw->sp;
	long v;
	sw->seed = sp->seed.line ? (uint64_t)sp->seed.v : 0;
	if (c->seed) {
		char *end;
		errno = 0;
		sw->seed = strtoull(c->seed, &end, 10);
		if (errno || *end || end == c->seed || c->seed[0] == '-')
			return qn_usage_error("--seed: expected a whole number, not '%s'", c->seed);
	}
	sw->ntrials = sp->trials.line ? (long)sp->trials.v : 10;
	if (c->trials && qn_parse_long("--trials", c->trials, 1, QN_SPACE_MAX_TRIALS, &sw->ntrials))
		return QN_EXIT_USAGE;
	sw->parallel = sp->parallel.line ? (long)sp->parallel.v : 1;
	if (c->parallel && qn_parse_long("--parallel", c->parallel, 1, 4096, &sw->parallel))
		return QN_EXIT_USAGE;
	sw->scheduler = sp->scheduler.line ? (int)sp->scheduler.v : QN_SPACE_ASHA;
	if (c->scheduler) {
		if (strcmp(c->scheduler, "asha") && strcmp(c->scheduler, "random"))
			return qn_usage_error("--scheduler: asha or random, not '%s'",
					      c->scheduler);
		sw->scheduler = strcmp(c->scheduler, "asha") ? QN_SPACE_RANDOM : QN_SPACE_ASHA;
	}
	sw->eta = sp->eta.line ? (long)sp->eta.v : 3;
	if (c->eta && qn_parse_long("--eta", c->eta, 2, 1000, &sw->eta))
		return QN_EXIT_USAGE;
	sw->steps = 1000; /* fit's default */
	if (c->steps && qn_parse_long("--steps", c->steps, 1, 1000000000L, &sw->steps))
		return QN_EXIT_USAGE;
	long d = sw->steps / (sw->eta * sw->eta * sw->eta);
	sw->min_steps = sp->min_steps.line ? (long)sp->min_steps.v : d > 0 ? d : 1;
	if (c->min_steps &&
	    qn_parse_long("--min-steps", c->min_steps, 1, 1000000000L, &sw->min_steps))
		return QN_EXIT_USAGE;
	if (sw->scheduler == QN_SPACE_ASHA && sw->min_steps > sw->steps) {
		if (c->min_steps)
			return qn_usage_error("--min-steps %ld is more than --steps %ld",
					      sw->min_steps, sw->steps);
		qn_error("%s:%u:%u: min_steps %ld is more than --steps %ld", sp->file,
			 sp->min_steps.line, sp->min_steps.col, sw->min_steps, sw->steps);
		return QN_EXIT_USAGE;
	}
	sw->threads = 0;
	if (c->threads && qn_parse_long("--threads", c->threads, 0, 4096, &v))
		return QN_EXIT_USAGE;
	sw->threads = c->threads ? v : 0;
	long total = sw->threads ? sw->threads : sysconf(_SC_NPROCESSORS_ONLN);
	sw->per_trial = total / sw->parallel > 0 ? total / sw->parallel : 1;
	/* Rungs down from --steps, a factor eta apart, to the last one >= min_steps. */
	sw->nrungs = 1;
	for (long b = sw->steps; sw->scheduler == QN_SPACE_ASHA && b / sw->eta >= sw->min_steps;
	     b /= sw->eta)
		sw->nrungs++;
	sw->rungs = malloc((size_t)sw->nrungs * sizeof *sw->rungs);
	if (!sw->rungs) {
		qn_error("out of memory");
		return QN_EXIT_FAIL;
	}
	long b = sw->steps;
	for (int k = sw->nrungs - 1; k >= 0; k--, b /= sw->eta)
		sw->rungs[k] = b;
	return 0;
}

static int make_trials(struct sweep *sw)
{
	sw->t = calloc((size_t)sw->ntrials, sizeof *sw->t);
	dashed = calloc(sw->sp.nparams + 1, sizeof *dashed);
	if (!sw->t || !dashed)
		return -1;
	for (size_t i = 0; i < sw->sp.nparams; i++) {
		const char *n = sw->sp.params[i].opt->name;
		if (!(dashed[i] = malloc(strlen(n) + 3)))
			return -1;
		sprintf(dashed[i], "--%s", n);
	}
	for (long i = 0; i < sw->ntrials; i++) {
		struct trial *t = &sw->t[i];
		t->id = i;
		t->rung = -1;
		snprintf(t->dir, sizeof t->dir, "%s/trial-%03ld", sw->out, i);
		t->vals = calloc(sw->sp.nparams + 1, sizeof *t->vals);
		t->hist = calloc((size_t)sw->nrungs, sizeof *t->hist);
		t->hist_steps = calloc((size_t)sw->nrungs, sizeof *t->hist_steps);
		if (!t->vals || !t->hist || !t->hist_steps)
			return -1;
		for (size_t p = 0; p < sw->sp.nparams; p++) {
			if (!(t->vals[p] = malloc(QN_SPACE_MAX_VALUE)))
				return -1;
			qn_space_draw(&sw->sp.params[p], sw->seed, i, t->vals[p]);
		}
	}
	return 0;
}

static void sweep_release(struct sweep *sw)
{
	for (long i = 0; sw->t && i < sw->ntrials; i++) {
		for (size_t p = 0; sw->t[i].vals && p < sw->sp.nparams; p++)
			free(sw->t[i].vals[p]);
		free(sw->t[i].vals);
		free(sw->t[i].hist);
		free(sw->t[i].hist_steps);
	}
	for (size_t i = 0; dashed && i < sw->sp.nparams; i++)
		free(dashed[i]);
	free(dashed);
	dashed = NULL;
	free(sw->t);
	free(sw->rungs);
	free(sw->pass);
	if (sw->timings)
		fclose(sw->timings);
	qn_space_release(&sw->sp);
}

/* Successive halving (or, with one rung, random search) over every trial. */
static void run_sweep(struct sweep *sw)
{
	struct trial **alive = malloc((size_t)sw->ntrials * sizeof *alive);
	size_t n = 0;
	if (!alive) {
		snprintf(sw->fatal, sizeof sw->fatal, "out of memory");
		return;
	}
	for (long i = 0; i < sw->ntrials; i++)
		alive[n++] = &sw->t[i];
	for (int k = 0; k < sw->nrungs && n && !stop_signal && !sw->fatal[0]; k++) {
		/* One survivor left: no more choices to make, so straight to the end. */
		if (n == 1 && alive[0]->steps > 0)
			k = sw->nrungs - 1;
		qn_info("rung %d: %zu trial%s to step %ld", k, n, n == 1 ? "" : "s", sw->rungs[k]);
		run_rung(sw, alive, n, k, sw->rungs[k]);
		size_t ok = 0;
		for (size_t i = 0; i < n; i++)
			if (alive[i]->status == PENDING && alive[i]->steps == sw->rungs[k])
				alive[ok++] = alive[i];
		n = ok;
		if (k == sw->nrungs - 1 || stop_signal || sw->fatal[0])
			break;
		/* The best 1/eta (at least one) go on; ties go to the lower trial id. */
		g_maximize = sw->sp.maximize;
		qsort(alive, n, sizeof *alive, by_rank);
		size_t keep = n / (size_t)sw->eta ? n / (size_t)sw->eta : 1;
		for (size_t i = keep; i < n; i++)
			alive[i]->status = PRUNED;
		n = n < keep ? n : keep;
		for (size_t i = 1; i < n; i++) /* back in trial order for the next rung */
			for (size_t j = i; j > 0 && alive[j - 1]->id > alive[j]->id; j--) {
				struct trial *x = alive[j];
				alive[j] = alive[j - 1];
				alive[j - 1] = x;
			}
	}
	for (size_t i = 0; i < n; i++)
		if (alive[i]->status == PENDING && alive[i]->steps == sw->steps)
			alive[i]->status = COMPLETED;
	for (long i = 0; i < sw->ntrials; i++)
		if (sw->t[i].status == PENDING) /* left by a signal or a shared failure */
			trial_fail(&sw->t[i], stop_signal ? INTERRUPTED : FAILED, "%s",
				   stop_signal	  ? "stopped by a signal"
				   : sw->fatal[0] ? "the sweep stopped"
						  : "not run");
	free(alive);
}

int sweep_main(int argc, char **argv)
{
	struct sweep sw = {0};
	struct cli c = {0};
	struct qn_err e = {{0}};
	int rc;

	sw.t_start = now();
	sw.argv0 = argv[0];
	sw.pass = calloc((size_t)argc + 1, sizeof *sw.pass);
	if (!sw.pass)
		return QN_EXIT_FAIL;
	int done = 0;
	if ((rc = parse_args(&sw, &c, argc, argv, &done)) || done) {
		free(sw.pass);
		return rc;
	}
	if (!c.model)
		rc = qn_usage_error("sweep needs a MODEL directory");
	else if (!c.data)
		rc = qn_usage_error("sweep needs --data SHARDS");
	else if (!c.space)
		rc = qn_usage_error("sweep needs --space FILE.yaml");
	else if (!c.out)
		rc = qn_usage_error("sweep needs -o DIR");
	if (rc) {
		free(sw.pass);
		return rc;
	}
	sw.model = c.model;
	sw.out = c.out;
	sw.space_file = c.space;
	if ((rc = qn_space_load(c.space, &sw.sp, &e))) {
		qn_error("%s", e.msg);
		sweep_release(&sw);
		return rc == -2 ? QN_EXIT_FAIL : QN_EXIT_USAGE;
	}
	for (size_t i = 0; i < sw.sp.nparams; i++) {
		const struct qn_space_param *p = &sw.sp.params[i];
		if (passed(&sw, p->opt->name)) {
			qn_usage_error("--%s is given, and searched in %s:%u:%u: drop one",
				       p->opt->name, sw.sp.file, p->line, p->col);
			sweep_release(&sw);
			return QN_EXIT_USAGE;
		}
	}
	if ((rc = settle(&sw, &c))) {
		sweep_release(&sw);
		return rc;
	}
	char p[4200];
	for (size_t i = 0; i < sw.npass; i++) /* fit would fail every trial on these */
		if (!strncmp(sw.pass[i], "--data", 6)) {
			const char *d = sw.pass[i][6] == '=' ? sw.pass[i] + 7 : sw.pass[i + 1];
			if (!is_dir(d)) {
				qn_error("cannot open '%s': not a directory of shards", d);
				sweep_release(&sw);
				return QN_EXIT_FAIL;
			}
		}
	snprintf(p, sizeof p, "%s/config.json", sw.model);
	if (access(p, R_OK)) {
		qn_error("cannot open '%s': %s", p, strerror(errno));
		sweep_release(&sw);
		return QN_EXIT_FAIL;
	}
	ssize_t k = readlink("/proc/self/exe", sw.exe, sizeof sw.exe - 1);
	snprintf(sw.exe + (k > 0 ? k : 0), sizeof sw.exe - (size_t)(k > 0 ? k : 0), "%s",
		 k > 0 ? "" : argv[0]);
	if (mkdir(sw.out, 0777) && !(errno == EEXIST && is_dir(sw.out))) {
		qn_error("cannot create '%s': %s", sw.out, strerror(errno));
		sweep_release(&sw);
		return QN_EXIT_FAIL;
	}
	snprintf(p, sizeof p, "%s/leaderboard.jsonl", sw.out);
	int taken = !access(p, F_OK);
	snprintf(p, sizeof p, "%s/trial-000", sw.out);
	sw.resume = c.resume;
	if (!sw.resume && (taken || !access(p, F_OK))) {
		qn_error("'%s' already holds a sweep: go on with --resume, or sweep into another "
			 "directory",
			 sw.out);
		sweep_release(&sw);
		return QN_EXIT_FAIL;
	}
	if (make_trials(&sw)) {
		qn_error("out of memory");
		sweep_release(&sw);
		return QN_EXIT_FAIL;
	}
	if ((rc = check_settings(&sw))) {
		sweep_release(&sw);
		return rc;
	}
	for (long i = 0; i < sw.ntrials; i++)
		if (mkdir(sw.t[i].dir, 0777) && errno != EEXIST) {
			qn_error("cannot create '%s': %s", sw.t[i].dir, strerror(errno));
			sweep_release(&sw);
			return QN_EXIT_FAIL;
		}
	snprintf(p, sizeof p, "%s/trials.jsonl", sw.out);
	if (!(sw.timings = fopen(p, sw.resume ? "a" : "w"))) {
		qn_error("cannot create '%s': %s", p, strerror(errno));
		sweep_release(&sw);
		return QN_EXIT_FAIL;
	}

	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	run_sweep(&sw);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);

	struct trial **order = malloc((size_t)sw.ntrials * sizeof *order);
	if (!order) {
		qn_error("out of memory");
		sweep_release(&sw);
		return QN_EXIT_FAIL;
	}
	long counts[5] = {sw.ntrials, 0, 0, 0, sw.total_steps};
	for (long i = 0; i < sw.ntrials; i++) {
		order[i] = &sw.t[i];
		counts[1] += sw.t[i].status == COMPLETED;
		counts[2] += sw.t[i].status == PRUNED;
		counts[3] += sw.t[i].status == FAILED || sw.t[i].status == INTERRUPTED;
	}
	g_maximize = sw.sp.maximize;
	qsort(order, (size_t)sw.ntrials, sizeof *order, by_rank);
	rc = QN_EXIT_OK;
	const struct trial *best = order[0]->status == COMPLETED ? order[0] : NULL;
	if (write_leaderboard(&sw, order, &e) ||
	    (best && (copy_best(&sw, best, &e) || write_best(&sw, best, &e))) ||
	    write_manifest(&sw, argc, argv, counts, &e)) {
		qn_error("%s", e.msg);
		rc = QN_EXIT_FAIL;
	}
	if (fflush(sw.timings) || ferror(sw.timings)) {
		qn_error("cannot write '%s/trials.jsonl': %s", sw.out, strerror(errno));
		rc = QN_EXIT_FAIL;
	}
	if (stop_signal) {
		qn_warn("stopped by signal %d; the leaderboard has the trials so far",
			(int)stop_signal);
		rc = 128 + (int)stop_signal;
	} else if (sw.fatal[0]) {
		qn_error("%s", sw.fatal);
		rc = sw.fatal_rc ? sw.fatal_rc : QN_EXIT_FAIL;
	} else if (!best) {
		qn_error("every trial failed (see '%s/leaderboard.jsonl')", sw.out);
		rc = QN_EXIT_FAIL;
	} else {
		if (counts[3])
			qn_warn("%ld of %ld trials failed (see '%s/leaderboard.jsonl')", counts[3],
				sw.ntrials, sw.out);
		qn_info("best: trial %ld, %s %.6g; %ld steps in all, %.1f s", best->id,
			sw.sp.metric, best->metric, sw.total_steps, now() - sw.t_start);
	}
	free(order);
	sweep_release(&sw);
	return rc;
}
