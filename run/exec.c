/* exec.c - see exec.h. */
#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "cli.h"
#include "err.h"
#include "hash.h"
#include "hcache.h"
#include "ledger.h"
#include "pool.h"
#include "slurm.h"
#include "state.h"
#include "wr.h"

#define KILL_GRACE 3.0 /* seconds between SIGTERM and SIGKILL */

/* --- small helpers ---------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* UTC time as 2026-03-05T10:15:00Z (ms: with .123 before the Z). */
static void utc(char *buf, size_t n, int ms)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ms)
		snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
	else
		snprintf(buf + k, n - k, "Z");
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int k = vasprintf(&s, fmt, ap);
	va_end(ap);
	return k < 0 ? NULL : s;
}

char *rn_state_dir(const struct rn_pipeline *p)
{
	return xasprintf("%s/.quern-run", p->dir);
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof tmp)
		return -1;
	memcpy(tmp, path, n + 1);
	for (char *q = tmp + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*q = '/';
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int mkdir_parent(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	char *slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = 0;
	return mkdir_p(tmp);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf path; 0 also when it was not there. */
static int rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* cp -a src dst (for outputs kept in place while a stage appends to them). */
static int copy_tree(const char *src, const char *dst)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp("cp", "cp", "-a", "--reflink=auto", "--", src, dst, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* A stage name as a file name: [A-Za-z0-9@._-], others become '_'. */
static void safe_name(const char *name, char *out, size_t n)
{
	size_t i = 0;
	for (; name[i] && i + 1 < n; i++) {
		unsigned char c = (unsigned char)name[i];
		out[i] = (c < 128 &&
			  (c == '@' || c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
			   (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			     ? (char)c
			     : '_';
	}
	out[i] = 0;
	if (out[0] == '.')
		out[0] = '_';
}

/* --- selection ----------------------------------------------------------------- */

int rn_select(const struct rn_pipeline *p, char **targets, size_t n, int *sel)
{
	for (size_t i = 0; i < p->n; i++)
		sel[i] = n == 0;
	for (size_t t = 0; t < n; t++) {
		int found = 0;
		size_t tl = strlen(targets[t]);
		for (size_t i = 0; i < p->n; i++) {
			const char *nm = p->stages[i].name;
			if (!strcmp(nm, targets[t]) ||
			    (!strncmp(nm, targets[t], tl) && nm[tl] == '@')) {
				sel[i] = 1;
				found = 1;
			}
		}
		if (!found) {
			qn_error("no stage '%s' in '%s'", targets[t], p->file);
			return -1;
		}
	}
	/* upstream closure: walk the topological order backwards */
	for (size_t k = p->n; k-- > 0;) {
		size_t i = p->order[k];
		if (sel[i])
			for (size_t u = 0; u < p->stages[i].nup; u++)
				sel[p->stages[i].up[u]] = 1;
	}
	return 0;
}

/* Missing sources: deps no stage makes and that do not exist. */
static int check_sources(const struct rn_pipeline *p, const int *sel)
{
	int bad = 0;
	for (size_t i = 0; i < p->n; i++) {
		const struct rn_stage *s = &p->stages[i];
		if (!sel[i])
			continue;
		for (size_t d = 0; d < s->ndeps; d++) {
			int made = 0;
			for (size_t u = 0; u < s->nup && !made; u++) {
				const struct rn_stage *up = &p->stages[s->up[u]];
				for (size_t o = 0; o < up->nouts && !made; o++)
					made = rn_path_within(s->deps[d].path, up->outs[o].path) ||
					       rn_path_within(up->outs[o].path, s->deps[d].path);
			}
			if (made)
				continue;
			char *abs = rn_abs(p, s->deps[d].path);
			if (abs && !exists(abs)) {
				qn_error(
				    "%s:%u:%u: dependency '%s' of stage '%s' does not exist and "
				    "no stage makes it",
				    s->deps[d].file ? s->deps[d].file : p->file, s->deps[d].line,
				    s->deps[d].col, s->deps[d].decl, s->name);
				bad = 1;
			}
			free(abs);
		}
	}
	return bad ? -1 : 0;
}

/* --- the lock -------------------------------------------------------------------- */

/* This machine's name, for the lock file and the ledger ("?" if unknown). */
static const char *this_host(void)
{
	static char host[256];
	if (!host[0] && gethostname(host, sizeof host - 1) < 0)
		strcpy(host, "?");
	return host[0] ? host : "?";
}

static int take_lock(const char *sdir, const struct rn_pipeline *p, const char *started)
{
	char *path = xasprintf("%s/%s.flock", sdir, p->base);
	if (!path) {
		qn_error("out of memory");
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		qn_error("cannot open '%s': %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char buf[512] = "";
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		long pid = 0;
		char host[256] = "?", since[64] = "?";
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
			sscanf(line, "pid %ld", &pid);
			sscanf(line, "host %255s", host);
			sscanf(line, "started %63s", since);
		}
		qn_error("'%s' is already running: pid %ld on %s since %s (lock '%s')", p->file,
			 pid, host, since, path);
		close(fd);
		free(path);
		return -2;
	}
	char info[600];
	int n = snprintf(info, sizeof info, "pid %ld\nhost %s\nstarted %s\n", (long)getpid(),
			 this_host(), started);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, info, (size_t)n, 0) != n)
		qn_warn("cannot write the holder into '%s'", path);
	free(path);
	return fd;
}

/* --- the scheduler ------------------------------------------------------------------ */

enum st { WAIT, RUNNING, RAN, SKIPPED, WOULD, FAILED, BLOCKED, OFF };

#define SHARD_ALL (-1)
#define SHARD_MERGE (-2)

/* A sharded stage while its shards run. */
struct sstate {
	unsigned char *todo; /* per shard: 1 must run, 0 done (its marker is valid) */
	long next;	     /* the next shard to look at */
	int running, failed, rc;
	char key[65];	      /* the shard key (shard_key) the markers must carry */
	struct rn_hash *deps; /* owned until handed to the merge job */
	char started[40], why[600];
	char *log; /* the first failed shard's log */
};

struct outstage {
	char *path;  /* absolute */
	char *stash; /* where the previous version waits */
	int existed, persist, required;
};

struct job {
	size_t si;
	long shard; /* a sharded stage's shard; SHARD_ALL: the whole stage; SHARD_MERGE */
	char *cmd;  /* what runs: the stage's cmd (${shard} filled in) or its merge */
	pid_t pid;
	int fd, logfd;
	int try;
	int timed_out, interrupted, at_bol;
	double start, deadline, killat;
	char *log, *log_shown, *journal;
	char started[40];
	struct outstage *o;
	size_t no;
	struct rn_hash *deps, *outs;
};

struct ctx {
	struct rn_pipeline *p;
	const struct rn_opts *opt;
	char *sdir, *shown_dir; /* state folder; the pipeline's folder as the user named it */
	char run[64], started[40];
	json_t *lock;
	char *lockpath;
	struct rn_hcache *cache;
	struct rn_catalog *cat;
	enum st *state;
	int *sel;
	struct job **jobs;
	size_t njobs;
	int stop, failrc;
	char *failname;
	int nran, nskip, nfail, nstash;
	struct sstate **ss;  /* per stage, while a sharded stage runs */
	int task;	     /* running one Slurm task: no journal, log to stdout */
	int task_shard_only; /* the task is one shard: no merge, no lock entry */
};

static volatile sig_atomic_t got_signal;
static int sigpipe_fd[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	if (sig != SIGCHLD)
		got_signal = sig;
	if (sigpipe_fd[1] >= 0) {
		ssize_t r = write(sigpipe_fd[1], "x", 1);
		(void)r;
	}
	errno = saved;
}

static void log_line(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(struct job *j, const char *fmt, ...)
{
	char ts[40], buf[4096];
	va_list ap;
	utc(ts, sizeof ts, 1);
	int n = snprintf(buf, sizeof buf, "%s%s quern-run: ", j->at_bol ? "" : "\n", ts);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	if (write(j->logfd, buf, (size_t)n) < 0) {
		/* the log is best effort */
	}
	j->at_bol = 1;
}

/* Copies the stage's output to its log, each line stamped with UTC time. */
static void log_output(struct job *j, const char *p, size_t n)
{
	while (n) {
		if (j->at_bol) {
			char ts[40];
			utc(ts, sizeof ts, 1);
			size_t tl = strlen(ts);
			ts[tl++] = ' ';
			if (write(j->logfd, ts, tl) < 0) {
			}
			j->at_bol = 0;
		}
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) + 1 : n;
		if (write(j->logfd, p, k) < 0) {
		}
		if (nl)
			j->at_bol = 1;
		p += k;
		n -= k;
	}
}

static void drain(struct job *j)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(j->fd, buf, sizeof buf);
		if (n > 0) {
			log_output(j, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
}

static int write_journal(struct ctx *c, struct job *j, pid_t pgid)
{
	struct qn_err e;
	if (!j->journal)
		return 0; /* a Slurm task: the node's processes are not ours to recover */
	json_t *o = json_object(), *outs = json_array();
	if (!o || !outs) {
		json_decref(o);
		json_decref(outs);
		return -1;
	}
	json_object_set_new(o, "stage", json_string(c->p->stages[j->si].name));
	json_object_set_new(o, "run", json_string(c->run));
	json_object_set_new(o, "pgid", json_integer(pgid));
	for (size_t i = 0; i < j->no; i++)
		json_array_append_new(outs, json_pack("{s:s,s:s,s:b,s:b}", "path", j->o[i].path,
						      "stash", j->o[i].stash, "existed",
						      j->o[i].existed, "persist", j->o[i].persist));
	json_object_set_new(o, "outs", outs);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return -1;
	int rc = qn_write_file_atomic(j->journal, text, strlen(text), &e);
	if (rc < 0)
		qn_error("%s", e.msg);
	free(text);
	return rc;
}

/* Puts one output back as it was before the stage (after a failure). */
static int restore_one(const char *path, const char *stash, int existed)
{
	int rc = 0;
	if (existed && exists(stash)) {
		rc |= rm_rf(path);
		rc |= rename(stash, path);
	} else if (!existed) {
		rc |= rm_rf(path);
	}
	/* existed and no stash: it was never moved, nothing ran over it */
	return rc;
}

/* Finds interrupted stages (journal entries) and undoes them. */
static int recover(struct ctx *c)
{
	char *jdir = xasprintf("%s/journal", c->sdir);
	int rc = 0;
	if (!jdir)
		return -1;
	DIR *d = opendir(jdir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *jp = xasprintf("%s/%s", jdir, de->d_name);
		json_error_t je;
		json_t *j = jp ? json_load_file(jp, 0, &je) : NULL;
		if (!j) {
			qn_warn("removing an unreadable journal entry '%s'", jp ? jp : de->d_name);
			if (jp)
				unlink(jp);
			free(jp);
			continue;
		}
		long pgid = (long)json_integer_value(json_object_get(j, "pgid"));
		if (pgid > 1)
			kill(-(pid_t)pgid, SIGKILL); /* what is left of the stage's processes */
		size_t i;
		json_t *x;
		int bad = 0;
		json_array_foreach(json_object_get(j, "outs"), i, x)
		{
			const char *path = json_string_value(json_object_get(x, "path"));
			const char *stash = json_string_value(json_object_get(x, "stash"));
			int existed = json_is_true(json_object_get(x, "existed"));
			if (path && stash && restore_one(path, stash, existed) < 0) {
				qn_error("cannot restore '%s' from '%s': %s", path, stash,
					 strerror(errno));
				bad = 1;
			}
		}
		const char *st = json_string_value(json_object_get(j, "stage"));
		if (bad) {
			rc = -1;
		} else {
			qn_warn("stage '%s' of run %s was interrupted: its outputs are restored",
				st ? st : "?",
				json_string_value(json_object_get(j, "run"))
				    ? json_string_value(json_object_get(j, "run"))
				    : "?");
			unlink(jp);
		}
		json_decref(j);
		free(jp);
	}
	if (d)
		closedir(d);
	free(jdir);
	if (rc == 0) {
		char *stash = xasprintf("%s/stash", c->sdir);
		if (stash)
			rm_rf(stash);
		free(stash);
	}
	return rc;
}

static void free_job(struct job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->no; i++) {
		free(j->o[i].path);
		free(j->o[i].stash);
	}
	free(j->o);
	free(j->log);
	free(j->log_shown);
	free(j->journal);
	free(j->cmd);
	free(j->deps);
	free(j->outs);
	if (j->logfd >= 0)
		close(j->logfd);
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

static int add_out(struct job *j, char *path, int persist, int required)
{
	struct outstage *o = realloc(j->o, (j->no + 1) * sizeof *o);
	if (!o || !path) {
		free(path);
		return -1;
	}
	j->o = o;
	memset(&o[j->no], 0, sizeof *o);
	o[j->no].path = path;
	o[j->no].persist = persist;
	o[j->no].required = required;
	j->no++;
	return 0;
}

/* Moves the outputs aside (persist ones: copies them) before a stage runs. */
static int stash_outs(struct ctx *c, struct job *j)
{
	for (size_t i = 0; i < j->no; i++) {
		struct outstage *o = &j->o[i];
		o->existed = exists(o->path);
		o->stash = xasprintf("%s/stash/%s/%d", c->sdir, c->run, c->nstash++);
		if (!o->stash)
			return -1;
	}
	if (write_journal(c, j, 0) < 0)
		return -1;
	char *sd = xasprintf("%s/stash/%s", c->sdir, c->run);
	if (!sd || mkdir_p(sd) < 0) {
		free(sd);
		return -1;
	}
	free(sd);
	for (size_t i = 0; i < j->no; i++) {
		struct outstage *o = &j->o[i];
		if (!o->existed)
			continue;
		if (o->persist) {
			/* a copy named by a temporary name, renamed when whole */
			char *tmp = xasprintf("%s.tmp", o->stash);
			if (!tmp || copy_tree(o->path, tmp) < 0 || rename(tmp, o->stash) < 0) {
				qn_error("cannot copy '%s' aside: %s", o->path, strerror(errno));
				free(tmp);
				return -1;
			}
			free(tmp);
		} else if (rename(o->path, o->stash) < 0) {
			qn_error("cannot move '%s' aside to '%s': %s", o->path, o->stash,
				 strerror(errno));
			return -1;
		}
	}
	for (size_t i = 0; i < j->no; i++)
		if (mkdir_parent(j->o[i].path) < 0) {
			qn_error("cannot make the folder of '%s': %s", j->o[i].path,
				 strerror(errno));
			return -1;
		}
	return 0;
}

/* After a failed try: outputs as they were before the stage, still stashed. */
static int reset_outs(struct job *j)
{
	int rc = 0;
	for (size_t i = 0; i < j->no; i++) {
		struct outstage *o = &j->o[i];
		rc |= rm_rf(o->path);
		if (o->existed && o->persist)
			rc |= copy_tree(o->stash, o->path);
	}
	return rc;
}

static int restore_outs(struct job *j)
{
	int rc = 0;
	for (size_t i = 0; i < j->no; i++)
		if (restore_one(j->o[i].path, j->o[i].stash, j->o[i].existed) < 0) {
			qn_error("cannot restore '%s': %s", j->o[i].path, strerror(errno));
			rc = -1;
		}
	return rc;
}

static int spawn(struct ctx *c, struct job *j)
{
	const struct rn_stage *s = &c->p->stages[j->si];
	int pfd[2];
	char *wdir = rn_abs(c->p, s->wdir);

	if (!wdir || pipe2(pfd, O_CLOEXEC) < 0) {
		free(wdir);
		qn_error("cannot start stage '%s': %s", s->name, strerror(errno));
		return -1;
	}
	if (j->shard >= 0)
		log_line(j, "stage '%s' shard %ld of %ld, try %d of %ld, in %s: %s", s->name,
			 j->shard, s->shards, j->try, s->retries + 1, wdir, j->cmd);
	else
		log_line(j, "stage '%s'%s, try %d of %ld, in %s: %s", s->name,
			 j->shard == SHARD_MERGE ? " (merge)" : "", j->try, s->retries + 1, wdir,
			 j->cmd);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		qn_error("cannot start stage '%s': %s", s->name, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		free(wdir);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(137);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (chdir(wdir) < 0) {
			dprintf(2, "quern-run: cannot enter '%s': %s\n", wdir, strerror(errno));
			_exit(126);
		}
		for (size_t i = 0; i < s->nenv; i++)
			putenv(s->env[i]);
		setenv("QUERN_RUN_STAGE", s->name, 1);
		setenv("QUERN_RUN_ID", c->run, 1);
		if (s->shards) {
			char num[32];
			snprintf(num, sizeof num, "%ld", s->shards);
			setenv("QUERN_NSHARDS", num, 1);
			if (j->shard >= 0) {
				snprintf(num, sizeof num, "%ld", j->shard);
				setenv("QUERN_SHARD", num, 1);
			}
		}
		execl("/bin/sh", "sh", "-c", j->cmd, (char *)NULL);
		dprintf(2, "quern-run: cannot run /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	free(wdir);
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
	j->pid = pid;
	j->fd = pfd[0];
	j->start = now();
	j->timed_out = 0;
	j->deadline = s->timeout > 0 ? j->start + s->timeout : 0;
	j->killat = 0;
	if (write_journal(c, j, pid) < 0)
		qn_warn("cannot record stage '%s' in the journal", s->name);
	return 0;
}

/*
 * Starts a job for stage si: the whole stage (SHARD_ALL), one shard, or the
 * merge of a sharded stage (SHARD_MERGE; with spawn_it 0 and no merge
 * command the caller concludes it at once). A job owns only its outputs:
 * a shard those made from ${shard} with its number, the merge the rest.
 */
static struct job *start_job(struct ctx *c, size_t si, struct rn_hash *deps, long shard,
			     int spawn_it)
{
	const struct rn_stage *s = &c->p->stages[si];
	struct job *j = calloc(1, sizeof *j);
	char safe[256], part[300];

	if (!j)
		goto oom;
	j->si = si;
	j->shard = shard;
	j->fd = j->logfd = -1;
	j->at_bol = 1;
	j->try = 1;
	j->deps = deps;
	utc(j->started, sizeof j->started, 0);
	safe_name(s->name, safe, sizeof safe);
	if (shard >= 0)
		snprintf(part, sizeof part, "%s-%ld", safe, shard);
	else
		snprintf(part, sizeof part, "%s%s", safe, shard == SHARD_MERGE ? "-merge" : "");
	j->cmd = shard >= 0		? rn_shard_subst(s->cmd, shard)
		 : shard == SHARD_MERGE ? strdup(s->merge ? s->merge : ":")
					: strdup(s->cmd);
	if (c->task) {
		/* Slurm keeps the task's log (--output); nothing to recover on a node */
		j->log_shown = strdup("its Slurm log");
	} else {
		j->log = xasprintf("%s/logs/%s.%s.log", c->sdir, part, c->run);
		j->log_shown = xasprintf("%s.quern-run/logs/%s.%s.log", c->shown_dir, part, c->run);
		j->journal = xasprintf("%s/journal/%s.json", c->sdir, part);
		if (!j->log || !j->journal)
			goto oom;
	}
	if (!j->cmd || !j->log_shown)
		goto oom;
	for (size_t i = 0; i < s->nouts; i++) {
		if (shard >= 0 ? s->outs[i].shard != shard
			       : shard == SHARD_MERGE && s->outs[i].shard >= 0)
			continue;
		char *abs = rn_abs(c->p, s->outs[i].path);
		if (add_out(j, abs, s->outs[i].persist, 1) < 0)
			goto oom;
		/* the manifest a quern tool writes beside a file output */
		struct stat st;
		if (stat(j->o[j->no - 1].path, &st) < 0 || !S_ISDIR(st.st_mode))
			if (add_out(j, xasprintf("%s.manifest.json", j->o[j->no - 1].path),
				    s->outs[i].persist, 0) < 0)
				goto oom;
	}
	j->logfd = c->task ? fcntl(1, F_DUPFD_CLOEXEC, 3)
			   : open(j->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (j->logfd < 0) {
		qn_error("cannot open the log '%s': %s", j->log ? j->log : "stdout",
			 strerror(errno));
		goto fail;
	}
	if (!spawn_it)
		return j;
	if (stash_outs(c, j) < 0) {
		restore_outs(j);
		if (j->journal)
			unlink(j->journal);
		goto fail;
	}
	if (spawn(c, j) < 0) {
		restore_outs(j);
		if (j->journal)
			unlink(j->journal);
		goto fail;
	}
	struct job **v = realloc(c->jobs, (c->njobs + 1) * sizeof *v);
	if (!v) {
		kill(-j->pid, SIGKILL);
		goto oom;
	}
	c->jobs = v;
	c->jobs[c->njobs++] = j;
	c->state[si] = RUNNING;
	if (qn_verbosity >= 0) {
		if (shard >= 0)
			printf("running '%s' shard %ld of %ld\n", s->name, shard, s->shards);
		else
			printf("running '%s'%s\n", s->name, shard == SHARD_MERGE ? " (merge)" : "");
	}
	fflush(stdout);
	return j;
oom:
	qn_error("out of memory");
fail:
	if (j)
		j->deps = NULL; /* the caller still owns them */
	free_job(j);
	return NULL;
}

static int start_stage(struct ctx *c, size_t si, struct rn_hash *deps)
{
	return start_job(c, si, deps, SHARD_ALL, 1) ? 0 : -1;
}

static void ledger_stage(struct ctx *c, struct job *j, const char *status, int rc,
			 const char *ended)
{
	struct qn_err e;
	const struct rn_stage *s = &c->p->stages[j->si];
	json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s}", "type", "stage", "run",
			      c->run, "pipeline", c->p->file, "stage", s->name, "status", status,
			      "rc", rc, "started", j->started, "ended", ended, "cmd", s->cmd);
	if (!r)
		return;
	if (j->outs) {
		json_t *outs = json_array();
		for (size_t i = 0; i < s->nouts; i++)
			json_array_append_new(outs,
					      json_pack("{s:s,s:s,s:I}", "path", s->outs[i].path,
							"sha256", j->outs[i].sha256, "size",
							(json_int_t)j->outs[i].size));
		json_object_set_new(r, "outs", outs);
	}
	if (rn_ledger_append(c->sdir, r, &e) < 0)
		qn_error("ledger: %s", e.msg);
	json_decref(r);
}

/* Records the manifests the tools wrote for the stage's outputs. */
static void catalog_manifests(struct ctx *c, const struct rn_stage *s, struct qn_err *e)
{
	for (size_t i = 0; i < s->nouts; i++) {
		char *abs = rn_abs(c->p, s->outs[i].path);
		struct stat st;
		if (!abs)
			continue;
		const char *cands[3];
		char *m1 = NULL, *m2 = NULL, *m3 = NULL;
		int n = 0;
		if (stat(abs, &st) == 0 && S_ISDIR(st.st_mode)) {
			cands[n++] = m1 = xasprintf("%s/run.manifest.json", abs);
			cands[n++] = m2 = xasprintf("%s/manifest.json", abs);
		} else {
			cands[n++] = m3 = xasprintf("%s.manifest.json", abs);
		}
		for (int k = 0; k < n; k++) {
			json_error_t je;
			if (!cands[k])
				continue;
			json_t *m = json_load_file(cands[k], 0, &je);
			if (m && json_is_string(json_object_get(m, "tool")))
				rn_catalog_manifest(c->cat, c->run, s->name, s->outs[i].path,
						    cands[k], s->wdir, m, e);
			json_decref(m);
		}
		free(m1);
		free(m2);
		free(m3);
		free(abs);
	}
}

static void catalog_stage(struct ctx *c, struct job *j, const char *status, int rc,
			  const char *ended)
{
	struct qn_err e = {""};
	const struct rn_stage *s = &c->p->stages[j->si];
	if (!c->cat)
		return;
	int bad = rn_catalog_begin(c->cat, &e) < 0;
	if (!bad)
		bad = rn_catalog_stage(c->cat, c->run, s->name, status, rc, j->started, ended,
				       s->cmd, j->log ? j->log : "", &e) < 0;
	if (!bad && !strcmp(status, "ran")) {
		for (size_t i = 0; !bad && i < s->ndeps; i++)
			bad = rn_catalog_artifact(c->cat, c->run, s->name, "dep", s->deps[i].path,
						  j->deps[i].sha256, j->deps[i].size, &e) < 0;
		for (size_t i = 0; !bad && i < s->nouts; i++)
			bad = rn_catalog_artifact(c->cat, c->run, s->name, "out", s->outs[i].path,
						  j->outs[i].sha256, j->outs[i].size, &e) < 0;
		if (!bad)
			catalog_manifests(c, s, &e);
	}
	if (bad || rn_catalog_commit(c->cat, &e) < 0) {
		qn_error("%s", e.msg);
		rn_catalog_commit(c->cat, &e);
	}
}

/* The log's last lines, for the failure message. */
static void show_tail(const char *log)
{
	FILE *f = log ? fopen(log, "rb") : NULL;
	char *lines[6] = {0};
	char *line = NULL;
	size_t cap = 0;
	int k = 0;
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		free(lines[k % 6]);
		lines[k % 6] = strdup(line);
		k++;
	}
	free(line);
	fclose(f);
	for (int i = k > 6 ? k - 6 : 0; i < k; i++) {
		fprintf(stderr, "  | %s", lines[i % 6] ? lines[i % 6] : "\n");
	}
	for (int i = 0; i < 6; i++)
		free(lines[i]);
}

/* --- shards: keys and markers ------------------------------------------------------ */

/*
 * What a shard's marker must carry to count: the SHA-256 of the stage's
 * command (with ${shard} unfilled), its shard count, every dependency's
 * path and hash and every param's value. Any change makes every shard run.
 */
static void shard_key(const struct rn_stage *s, const struct rn_hash *deps, char hex[65])
{
	struct qn_sha256 h;
	char num[32];
	qn_sha256_init(&h);
	qn_sha256_update(&h, s->cmd, strlen(s->cmd) + 1);
	snprintf(num, sizeof num, "%ld", s->shards);
	qn_sha256_update(&h, num, strlen(num) + 1);
	for (size_t i = 0; i < s->ndeps; i++) {
		qn_sha256_update(&h, s->deps[i].path, strlen(s->deps[i].path) + 1);
		qn_sha256_update(&h, deps[i].exists ? deps[i].sha256 : "-",
				 deps[i].exists ? 65 : 2);
	}
	for (size_t i = 0; i < s->nparams; i++) {
		qn_sha256_update(&h, s->params[i].key, strlen(s->params[i].key) + 1);
		qn_sha256_update(&h, s->params[i].value, strlen(s->params[i].value) + 1);
	}
	qn_sha256_final(&h, hex);
	qn_sha256_release(&h);
}

static char *marker_path(const struct ctx *c, const struct rn_stage *s, long shard)
{
	char safe[256];
	safe_name(s->name, safe, sizeof safe);
	return shard < 0 ? xasprintf("%s/markers/%s", c->sdir, safe)
			 : xasprintf("%s/markers/%s/%ld.done", c->sdir, safe, shard);
}

/* Whether shard's marker is there, carries key, and its outputs are unchanged. */
static int marker_valid(struct ctx *c, size_t si, long shard, const char *key)
{
	const struct rn_stage *s = &c->p->stages[si];
	char *mp = marker_path(c, s, shard);
	json_error_t je;
	json_t *m = mp ? json_load_file(mp, 0, &je) : NULL;
	int ok = m != NULL;
	const char *k = json_string_value(json_object_get(m, "key"));
	json_t *outs = json_object_get(m, "outs");
	ok = ok && k && !strcmp(k, key) && json_is_array(outs);
	size_t n = 0;
	for (size_t i = 0; ok && i < s->nouts; i++) {
		if (s->outs[i].shard != shard)
			continue;
		json_t *o = json_array_get(outs, n++);
		const char *path = json_string_value(json_object_get(o, "path"));
		const char *sha = json_string_value(json_object_get(o, "sha256"));
		struct rn_hash h;
		struct qn_err e;
		char *abs = rn_abs(c->p, s->outs[i].path);
		ok = path && sha && !strcmp(path, s->outs[i].path) && abs &&
		     rn_hash_path(c->cache, abs, &h, &e) == 0 && h.exists && !strcmp(h.sha256, sha);
		free(abs);
	}
	ok = ok && n == json_array_size(outs);
	json_decref(m);
	free(mp);
	return ok;
}

/* Hashes a finished shard's outputs and writes its marker (atomically). */
static int write_marker(struct ctx *c, struct job *j, const char *key, struct qn_err *e)
{
	const struct rn_stage *s = &c->p->stages[j->si];
	char *dir = marker_path(c, s, -1), *mp = marker_path(c, s, j->shard), ended[40];
	json_t *outs = json_array();
	int rc = -1;
	if (!dir || !mp || !outs || mkdir_p(dir) < 0) {
		qn_errf(e, "cannot make '%s': %s", dir ? dir : "?", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < s->nouts; i++) {
		if (s->outs[i].shard != j->shard)
			continue;
		struct rn_hash h;
		char *abs = rn_abs(c->p, s->outs[i].path);
		if (!abs || rn_hash_path(c->cache, abs, &h, e) < 0) {
			free(abs);
			goto out;
		}
		free(abs);
		json_array_append_new(outs,
				      json_pack("{s:s,s:s,s:I}", "path", s->outs[i].path, "sha256",
						h.sha256, "size", (json_int_t)h.size));
	}
	utc(ended, sizeof ended, 0);
	json_t *m = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:O}", "stage", s->name, "shard",
			      (json_int_t)j->shard, "nshards", (json_int_t)s->shards, "key", key,
			      "run", c->run, "ended", ended, "outs", outs);
	char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(m);
	if (!text) {
		qn_errf(e, "out of memory");
		goto out;
	}
	rc = qn_write_file_atomic(mp, text, strlen(text), e);
	free(text);
out:
	json_decref(outs);
	free(dir);
	free(mp);
	return rc;
}

/*
 * Sets the stage's lock entry and saves the lock file. Slurm tasks of
 * different stages finish at once: under <pipeline>.lockfile.flock each
 * reads the lock file afresh, sets its entry and writes it back.
 */
static int save_entry(struct ctx *c, const char *name, json_t *entry, struct qn_err *e)
{
	char *lp = xasprintf("%s/%s.lockfile.flock", c->sdir, c->p->base);
	int fd = lp ? open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
	free(lp);
	if (fd >= 0)
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {
		}
	if (c->task) {
		json_t *fresh = rn_lock_load(c->lockpath, e);
		if (fresh) {
			json_decref(c->lock);
			c->lock = fresh;
		}
	}
	int rc =
	    rn_lock_set(c->lock, name, entry) < 0 || rn_lock_save(c->lockpath, c->lock, c->p, e) < 0
		? -1
		: 0;
	if (fd >= 0)
		close(fd);
	return rc;
}

static void conclude(struct ctx *c, struct job *j, int ok, int rc, const char *why, double took);
static void stage_complete(struct ctx *c, size_t si);

static void fail_first(struct ctx *c, const char *name, int rc)
{
	if (!c->failname) {
		c->failrc = rc ? rc : 1;
		c->failname = strdup(name);
	}
	if (!c->opt->keep_going)
		c->stop = 1;
}

/* One shard has ended: its marker, or its failure; then maybe the stage. */
static void shard_done(struct ctx *c, struct job *j, int ok, int rc, const char *why, double took)
{
	const struct rn_stage *s = &c->p->stages[j->si];
	struct sstate *ss = c->ss[j->si];
	struct qn_err e;
	ss->running--;
	if (ok && write_marker(c, j, ss->key, &e) < 0) {
		qn_error("stage '%s' shard %ld: %s", s->name, j->shard, e.msg);
		ok = 0;
		rc = 1;
		why = "its marker could not be written";
	}
	if (ok) {
		for (size_t i = 0; i < j->no; i++)
			if (j->o[i].existed)
				rm_rf(j->o[i].stash);
		if (j->journal)
			unlink(j->journal);
		if (qn_verbosity >= 0)
			printf("ran '%s' shard %ld of %ld (%.1f s)\n", s->name, j->shard, s->shards,
			       took);
	} else {
		if (restore_outs(j) == 0 && j->journal)
			unlink(j->journal);
		qn_error("stage '%s' shard %ld failed (%s); log: %s", s->name, j->shard, why,
			 j->log_shown);
		if (qn_verbosity >= 0)
			show_tail(j->log);
		if (!ss->failed++) {
			ss->rc = rc ? rc : 1;
			snprintf(ss->why, sizeof ss->why, "shard %ld: %s", j->shard, why);
			ss->log = j->log ? strdup(j->log) : NULL;
		}
		fail_first(c, s->name, rc);
	}
	fflush(stdout);
	size_t si = j->si;
	free_job(j);
	if (!ss->running && (ss->next >= s->shards || c->stop))
		stage_complete(c, si);
}

/* A job's process has ended with status ws. */
static void finish(struct ctx *c, size_t idx, int ws)
{
	struct job *j = c->jobs[idx];
	const struct rn_stage *s = &c->p->stages[j->si];
	double took = now() - j->start;
	int ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && !j->timed_out && !j->interrupted;
	int rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	char why[600] = "";

	drain(j);
	close(j->fd);
	j->fd = -1;
	if (j->timed_out) {
		rc = 124;
		snprintf(why, sizeof why, "timed out after %g s", s->timeout);
	} else if (j->interrupted) {
		snprintf(why, sizeof why, "interrupted");
	} else if (WIFSIGNALED(ws)) {
		snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(ws));
	} else if (rc) {
		snprintf(why, sizeof why, "exit %d", rc);
	}
	if (ok)
		for (size_t i = 0; i < j->no; i++)
			if (j->o[i].required && !exists(j->o[i].path)) {
				/* name the output as declared */
				for (size_t k = 0; k < s->nouts; k++) {
					char *abs = rn_abs(c->p, s->outs[k].path);
					if (abs && !strcmp(abs, j->o[i].path))
						snprintf(why, sizeof why,
							 "it did not write output '%.400s'",
							 s->outs[k].decl);
					free(abs);
				}
				ok = 0;
				rc = 1;
				break;
			}
	log_line(j, "%s after %.2f s", ok ? "done" : why, took);
	if (!ok && !j->interrupted && !got_signal && j->try <= s->retries) {
		j->try++;
		log_line(j, "retrying (try %d of %ld)", j->try, s->retries + 1);
		if (reset_outs(j) == 0 && spawn(c, j) == 0)
			return;
		snprintf(why, sizeof why, "cannot retry");
	}
	c->jobs[idx] = c->jobs[--c->njobs];
	if (j->shard >= 0)
		shard_done(c, j, ok, rc, why, took);
	else
		conclude(c, j, ok, rc, why, took);
}

/* A whole stage's job (or a sharded stage's merge) has ended. */
static void conclude(struct ctx *c, struct job *j, int ok, int rc, const char *why0, double took)
{
	const struct rn_stage *s = &c->p->stages[j->si];
	char ended[40], why[600];
	struct qn_err e;

	snprintf(why, sizeof why, "%s", why0);
	utc(ended, sizeof ended, 0);
	if (ok) {
		j->outs = calloc(s->nouts ? s->nouts : 1, sizeof *j->outs);
		for (size_t i = 0; j->outs && i < s->nouts; i++) {
			char *abs = rn_abs(c->p, s->outs[i].path);
			if (!abs || rn_hash_path(c->cache, abs, &j->outs[i], &e) < 0) {
				qn_error("stage '%s': %s", s->name, abs ? e.msg : "out of memory");
				ok = 0;
			}
			free(abs);
		}
		json_t *entry = ok && j->outs ? rn_lock_entry(s, j->deps, j->outs) : NULL;
		if (!entry || save_entry(c, s->name, entry, &e) < 0) {
			qn_error("stage '%s': cannot record it in '%s'", s->name, c->lockpath);
			ok = 0;
			rc = 1;
			snprintf(why, sizeof why, "its lock entry could not be written");
		}
	}
	if (ok) {
		for (size_t i = 0; i < j->no; i++)
			if (j->o[i].existed)
				rm_rf(j->o[i].stash);
		if (j->journal)
			unlink(j->journal);
		c->state[j->si] = RAN;
		c->nran++;
		if (qn_verbosity >= 0)
			printf("ran '%s' (%.1f s)\n", s->name, took);
		ledger_stage(c, j, "ran", 0, ended);
		catalog_stage(c, j, "ran", 0, ended);
	} else {
		if (restore_outs(j) == 0 && j->journal)
			unlink(j->journal);
		c->state[j->si] = FAILED;
		c->nfail++;
		qn_error("stage '%s' failed (%s); log: %s", s->name, why, j->log_shown);
		if (qn_verbosity >= 0)
			show_tail(j->log);
		ledger_stage(c, j, "failed", rc ? rc : 1, ended);
		catalog_stage(c, j, "failed", rc ? rc : 1, ended);
		if (!c->failname) {
			c->failrc = rc ? rc : 1;
			c->failname = strdup(s->name);
		}
		if (!c->opt->keep_going)
			c->stop = 1;
	}
	fflush(stdout);
	free_job(j);
}

static void free_sstate(struct sstate *ss)
{
	if (!ss)
		return;
	free(ss->todo);
	free(ss->deps);
	free(ss->log);
	free(ss);
}

/*
 * A sharded stage's shards are over: when one failed (or the run stops
 * before they all ran) the stage failed; else its merge (when it has one)
 * runs and then, as for a whole stage, its lock entry is written.
 */
static void stage_complete(struct ctx *c, size_t si)
{
	const struct rn_stage *s = &c->p->stages[si];
	struct sstate *ss = c->ss[si];
	if (ss->failed || ss->next < s->shards) {
		char ended[40];
		utc(ended, sizeof ended, 0);
		struct job pj;
		memset(&pj, 0, sizeof pj);
		pj.si = si;
		pj.log = ss->log;
		pj.fd = pj.logfd = -1;
		snprintf(pj.started, sizeof pj.started, "%s", ss->started);
		c->state[si] = FAILED;
		if (ss->failed) {
			c->nfail++;
			ledger_stage(c, &pj, "failed", ss->rc, ended);
			catalog_stage(c, &pj, "failed", ss->rc, ended);
		}
		free_sstate(ss);
		c->ss[si] = NULL;
		return;
	}
	if (c->task_shard_only) {
		c->state[si] = RAN;
		free_sstate(ss);
		c->ss[si] = NULL;
		return;
	}
	struct job *j = start_job(c, si, ss->deps, SHARD_MERGE, s->merge != NULL);
	if (j) {
		ss->deps = NULL; /* the job has them */
		snprintf(j->started, sizeof j->started, "%s", ss->started);
	}
	free_sstate(ss);
	c->ss[si] = NULL;
	if (!j) {
		c->state[si] = FAILED;
		c->nfail++;
		fail_first(c, s->name, 1);
		return;
	}
	if (!s->merge) /* nothing to run: the outputs are the shards' */
		conclude(c, j, 1, 0, "", 0);
}

/* Starts what shards of running sharded stages can start. */
static void start_shards(struct ctx *c)
{
	for (size_t k = 0; c->ss && k < c->p->n; k++) {
		size_t si = c->p->order[k];
		struct sstate *ss = c->ss[si];
		const struct rn_stage *s = &c->p->stages[si];
		if (!ss || c->state[si] != RUNNING)
			continue;
		while (ss->next < s->shards && !c->stop && (int)c->njobs < c->opt->jobs) {
			long i = ss->next++;
			if (!ss->todo[i])
				continue;
			if (!start_job(c, si, NULL, i, 1)) {
				if (!ss->failed++) {
					ss->rc = 1;
					snprintf(ss->why, sizeof ss->why, "shard %ld cannot start",
						 i);
				}
				fail_first(c, s->name, 1);
				break;
			}
			ss->running++;
		}
		if (!ss->running && (ss->next >= s->shards || c->stop))
			stage_complete(c, si);
	}
}

/*
 * A sharded stage must run: every shard whose marker is not valid runs
 * (with --force every shard). The shards start from start_shards.
 */
static int begin_shards(struct ctx *c, size_t si, struct rn_hash *deps, int all)
{
	const struct rn_stage *s = &c->p->stages[si];
	if (!c->ss && !(c->ss = calloc(c->p->n, sizeof *c->ss)))
		return -1;
	struct sstate *ss = calloc(1, sizeof *ss);
	if (!ss || !(ss->todo = calloc((size_t)s->shards, 1))) {
		free(ss);
		return -1;
	}
	free_sstate(c->ss[si]);
	c->ss[si] = ss;
	ss->deps = deps;
	shard_key(s, deps, ss->key);
	utc(ss->started, sizeof ss->started, 0);
	long left = 0;
	for (long i = 0; i < s->shards; i++) {
		ss->todo[i] = all || !marker_valid(c, si, i, ss->key);
		left += ss->todo[i];
	}
	if (qn_verbosity > 0 && left < s->shards)
		printf("'%s': %ld of %ld shards done earlier\n", s->name, s->shards - left,
		       s->shards);
	c->state[si] = RUNNING;
	return 0;
}

/* Decides stage si once its upstream is done: skip, dry-run, or start. */
static int consider(struct ctx *c, size_t si)
{
	const struct rn_stage *s = &c->p->stages[si];
	struct rn_reasons r = {0};
	struct qn_err e;
	struct rn_hash *deps = calloc(s->ndeps ? s->ndeps : 1, sizeof *deps);
	struct rn_hash *outs = calloc(s->nouts ? s->nouts : 1, sizeof *outs);
	const char *would_up = NULL;

	if (!deps || !outs) {
		free(deps);
		free(outs);
		qn_error("out of memory");
		return -1;
	}
	for (size_t u = 0; u < s->nup; u++)
		if (c->state[s->up[u]] == WOULD)
			would_up = c->p->stages[s->up[u]].name;
	if (rn_stage_check(c->p, si, rn_lock_get(c->lock, s->name), c->cache, deps, outs, &r, &e) <
	    0) {
		qn_error("stage '%s': %s", s->name, e.msg);
		free(deps);
		free(outs);
		rn_reasons_release(&r);
		c->state[si] = FAILED;
		c->nfail++;
		if (!c->failname) {
			c->failrc = 1;
			c->failname = strdup(s->name);
		}
		if (!c->opt->keep_going)
			c->stop = 1;
		return 0;
	}
	free(outs);
	if (c->opt->force)
		rn_reasons_add(&r, "forced");
	if (c->opt->dry_run) {
		if (r.n || would_up) {
			printf("would run '%s': ", s->name);
			for (size_t i = 0; i < r.n; i++)
				printf("%s%s", i ? "; " : "", r.v[i]);
			if (would_up)
				printf("%supstream '%s' would run", r.n ? "; " : "", would_up);
			printf("\n");
			c->state[si] = WOULD;
		} else {
			c->state[si] = SKIPPED;
			c->nskip++;
		}
		free(deps);
		rn_reasons_release(&r);
		return 0;
	}
	if (!r.n) {
		if (qn_verbosity > 0)
			printf("up to date '%s'\n", s->name);
		c->state[si] = SKIPPED;
		c->nskip++;
		free(deps);
		return 0;
	}
	if (qn_verbosity > 0) {
		printf("'%s' must run: ", s->name);
		for (size_t i = 0; i < r.n; i++)
			printf("%s%s", i ? "; " : "", r.v[i]);
		printf("\n");
	}
	rn_reasons_release(&r);
	if (s->shards) {
		if (begin_shards(c, si, deps, c->opt->force) < 0) {
			free(deps);
			qn_error("out of memory");
			c->state[si] = FAILED;
			c->nfail++;
			fail_first(c, s->name, 1);
		}
		return 0;
	}
	if (start_stage(c, si, deps) < 0) {
		free(deps);
		c->state[si] = FAILED;
		c->nfail++;
		if (!c->failname) {
			c->failrc = 1;
			c->failname = strdup(s->name);
		}
		if (!c->opt->keep_going)
			c->stop = 1;
	}
	return 0;
}

/* Starts whatever can start; 1 when something is still waiting. */
static int schedule(struct ctx *c)
{
	int waiting = 0;
	start_shards(c);
	for (size_t k = 0; k < c->p->n; k++) {
		size_t i = c->p->order[k];
		if (c->state[i] != WAIT)
			continue;
		const struct rn_stage *s = &c->p->stages[i];
		int ready = 1, blocked = 0;
		for (size_t u = 0; u < s->nup; u++) {
			enum st us = c->state[s->up[u]];
			if (us == FAILED || us == BLOCKED)
				blocked = 1;
			else if (us != RAN && us != SKIPPED && us != WOULD && us != OFF)
				ready = 0;
		}
		if (blocked) {
			c->state[i] = BLOCKED;
			continue;
		}
		if (c->stop) {
			continue;
		}
		if (!ready) {
			waiting = 1;
			continue;
		}
		if ((int)c->njobs >= c->opt->jobs) {
			waiting = 1;
			continue;
		}
		consider(c, i);
		if (c->state[i] == WAIT)
			waiting = 1;
		if (c->state[i] == RUNNING && c->ss && c->ss[i])
			start_shards(c);
	}
	return waiting;
}

static void reap(struct ctx *c)
{
	int ws;
	pid_t pid;
	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		for (size_t i = 0; i < c->njobs; i++)
			if (c->jobs[i]->pid == pid) {
				finish(c, i, ws);
				break;
			}
	}
}

static void loop(struct ctx *c)
{
	struct pollfd *pf = NULL;
	for (;;) {
		if (got_signal && !c->stop) {
			c->stop = 1;
			for (size_t i = 0; i < c->njobs; i++) {
				c->jobs[i]->interrupted = 1;
				kill(-c->jobs[i]->pid, SIGTERM);
				c->jobs[i]->killat = now() + KILL_GRACE;
			}
		}
		int waiting = schedule(c);
		if (!c->njobs) {
			if (!waiting || c->stop)
				break;
			/* nothing runs and nothing can start: should not happen */
			break;
		}
		struct pollfd *np = realloc(pf, (c->njobs + 1) * sizeof *np);
		if (!np)
			break;
		pf = np;
		pf[0] = (struct pollfd){sigpipe_fd[0], POLLIN, 0};
		for (size_t i = 0; i < c->njobs; i++)
			pf[i + 1] = (struct pollfd){c->jobs[i]->fd, POLLIN, 0};
		double t = now(), next = -1;
		for (size_t i = 0; i < c->njobs; i++) {
			struct job *j = c->jobs[i];
			if (j->deadline && !j->timed_out && t >= j->deadline) {
				j->timed_out = 1;
				log_line(j, "timeout: %g s passed, stopping the stage",
					 c->p->stages[j->si].timeout);
				kill(-j->pid, SIGTERM);
				j->killat = t + KILL_GRACE;
			}
			if (j->killat && t >= j->killat) {
				kill(-j->pid, SIGKILL);
				j->killat = 0;
			}
			double d = j->killat ? j->killat : (!j->timed_out ? j->deadline : 0);
			if (d && (next < 0 || d < next))
				next = d;
		}
		int ms = next < 0 ? 1000 : (int)((next - t) * 1000) + 1;
		if (ms > 1000)
			ms = 1000;
		if (ms < 0)
			ms = 0;
		int n = poll(pf, c->njobs + 1, ms);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (pf[0].revents & POLLIN)) {
			char buf[256];
			while (read(sigpipe_fd[0], buf, sizeof buf) > 0) {
			}
		}
		for (size_t i = 0; n > 0 && i < c->njobs; i++) {
			if (pf[i + 1].revents & (POLLIN | POLLHUP)) {
				char buf[65536];
				ssize_t k = read(c->jobs[i]->fd, buf, sizeof buf);
				if (k > 0)
					log_output(c->jobs[i], buf, (size_t)k);
			}
		}
		reap(c);
	}
	free(pf);
}

static void setup_signals(void)
{
	struct sigaction sa;
	if (sigpipe_fd[0] < 0 && pipe2(sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		sigpipe_fd[0] = sigpipe_fd[1] = -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static char *shown_dir(const struct rn_pipeline *p)
{
	const char *slash = strrchr(p->file, '/');
	if (!slash)
		return strdup("");
	return strndup(p->file, (size_t)(slash - p->file) + 1);
}

static int open_common(struct ctx *c, struct rn_pipeline *p, const struct rn_opts *o)
{
	struct qn_err e;
	memset(c, 0, sizeof *c);
	c->p = p;
	c->opt = o;
	c->sdir = rn_state_dir(p);
	c->shown_dir = shown_dir(p);
	c->lockpath = rn_lock_path(p);
	c->state = calloc(p->n ? p->n : 1, sizeof *c->state);
	c->sel = calloc(p->n ? p->n : 1, sizeof *c->sel);
	if (!c->sdir || !c->shown_dir || !c->lockpath || !c->state || !c->sel) {
		qn_error("out of memory");
		return -1;
	}
	if (rn_select(p, o->targets, o->ntargets, c->sel) < 0)
		return -2;
	utc(c->started, sizeof c->started, 0);
	{
		char ts[40];
		struct timespec t;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &t);
		gmtime_r(&t.tv_sec, &tm);
		strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
		snprintf(c->run, sizeof c->run, "%sZ-%ld", ts, (long)getpid());
	}
	if (!(c->lock = rn_lock_load(c->lockpath, &e))) {
		qn_error("%s", e.msg);
		return -1;
	}
	char *cp = xasprintf("%s/cache", c->sdir);
	c->cache = cp ? rn_hcache_open(cp, qn_ncpu() < 8 ? qn_ncpu() : 8) : NULL;
	free(cp);
	if (!c->cache) {
		qn_error("out of memory");
		return -1;
	}
	return 0;
}

static void close_common(struct ctx *c)
{
	struct qn_err e;
	if (c->cache && rn_hcache_save(c->cache, &e) < 0 && errno != EACCES && errno != EROFS)
		qn_warn("%s", e.msg);
	rn_hcache_free(c->cache);
	rn_catalog_close(c->cat);
	json_decref(c->lock);
	free(c->sdir);
	free(c->shown_dir);
	free(c->lockpath);
	free(c->state);
	free(c->sel);
	free(c->jobs);
	free(c->failname);
	for (size_t i = 0; c->ss && i < c->p->n; i++)
		free_sstate(c->ss[i]);
	free(c->ss);
}

/* --- the Slurm executor ------------------------------------------------------------ */

/* "0-3,5,7-8" for the shards to run (todo[i] set). */
static char *shard_list(const unsigned char *todo, long n)
{
	struct qn_buf b;
	qn_buf_init(&b, RN_MAX_STRING);
	for (long i = 0; i < n; i++) {
		if (!todo[i])
			continue;
		long k = i;
		while (k + 1 < n && todo[k + 1])
			k++;
		char part[64];
		if (k > i)
			snprintf(part, sizeof part, "%s%ld-%ld", b.len ? "," : "", i, k);
		else
			snprintf(part, sizeof part, "%s%ld", b.len ? "," : "", i);
		if (qn_buf_adds(&b, part) < 0) {
			qn_buf_release(&b);
			return NULL;
		}
		i = k;
	}
	qn_buf_add(&b, "", 1);
	return qn_buf_detach(&b, NULL);
}

/*
 * Writes the batch script of one job: it runs `quern-run _task` for the
 * stage, which runs the command in the stage's wdir with its env (and for a
 * shard fills in ${shard} and writes the shard's marker).
 */
static int write_script(struct ctx *c, const char *path, const char *stage, const char *what)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = tmp ? fopen(tmp, "w") : NULL;
	const char *base = strrchr(c->p->file, '/');
	char *pfile = xasprintf("%s/%s", c->p->dir, base ? base + 1 : c->p->file);
	char params[PATH_MAX];
	if (!f || !pfile) {
		qn_error("cannot write '%s': %s", path, strerror(errno));
		if (f)
			fclose(f);
		free(tmp);
		free(pfile);
		return -1;
	}
	fprintf(f, "#!/bin/sh\n# quern-run: stage '%s' of %s, run %s\n", stage, pfile, c->run);
	fprintf(f, "exec ");
	rn_sh_quote(f, c->opt->self);
	fprintf(f, " _task -f ");
	rn_sh_quote(f, pfile);
	if (c->opt->params && realpath(c->opt->params, params)) {
		fprintf(f, " --params ");
		rn_sh_quote(f, params);
	}
	fprintf(f, " --run-id ");
	rn_sh_quote(f, c->run);
	fprintf(f, " --stage ");
	rn_sh_quote(f, stage);
	fprintf(f, " %s\n", what);
	int bad = ferror(f) | fclose(f);
	if (bad || chmod(tmp, 0755) < 0 || rename(tmp, path) < 0) {
		qn_error("cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		free(pfile);
		return -1;
	}
	free(tmp);
	free(pfile);
	return 0;
}

static long submit_one(struct ctx *c, const char *stage, const char *script, const char *log,
		       const char *array, const char *dep)
{
	struct qn_err e;
	char name[300];
	snprintf(name, sizeof name, "quern-%s", stage);
	struct rn_sbatch b = {
	    name, script, log, array, dep, c->opt->sbatch_args, c->opt->nsbatch_args};
	long id = rn_sbatch(&b, &e);
	if (id < 0)
		qn_error("stage '%s': %s", stage, e.msg);
	return id;
}

static int add_id(long **v, size_t *n, long id)
{
	long *nv = realloc(*v, (*n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	*v = nv;
	nv[(*n)++] = id;
	return 0;
}

/* Jobs of the previous submission still queued or running: their count, or -1. */
static long previous_active(struct ctx *c, const char *jobs_path)
{
	json_error_t je;
	json_t *j = json_load_file(jobs_path, 0, &je);
	long *ids = NULL, n = 0;
	size_t nids = 0, i;
	json_t *x;
	struct qn_err e;
	json_array_foreach(json_object_get(j, "jobs"), i, x) if (json_is_integer(x))
	    add_id(&ids, &nids, (long)json_integer_value(x));
	if (nids && (n = rn_slurm_active(ids, nids, &e)) < 0)
		qn_error("%s", e.msg);
	if (n > 0)
		qn_error("%ld job%s of run %s %s still queued or running (squeue -j %s...); wait "
			 "for them or scancel them",
			 n, n == 1 ? "" : "s", json_string_value(json_object_get(j, "run")) ?: "?",
			 n == 1 ? "is" : "are",
			 json_string_value(json_object_get(j, "first")) ?: "");
	(void)c;
	free(ids);
	json_decref(j);
	return n;
}

/*
 * After --wait: a stage whose lock entry now matches is done; for one that
 * is not, name the shards without a valid marker and their logs.
 */
static int check_submitted(struct ctx *c, const long *final)
{
	struct qn_err e;
	int bad = 0;
	json_t *fresh = rn_lock_load(c->lockpath, &e);
	if (!fresh) {
		qn_error("%s", e.msg);
		return 1;
	}
	json_decref(c->lock);
	c->lock = fresh;
	for (size_t k = 0; k < c->p->n; k++) {
		size_t si = c->p->order[k];
		const struct rn_stage *s = &c->p->stages[si];
		if (final[si] <= 0)
			continue;
		struct rn_reasons r = {0};
		struct rn_hash *deps = calloc(s->ndeps ? s->ndeps : 1, sizeof *deps);
		struct rn_hash *outs = calloc(s->nouts ? s->nouts : 1, sizeof *outs);
		int ok = deps && outs &&
			 rn_stage_check(c->p, si, rn_lock_get(c->lock, s->name), c->cache, deps,
					outs, &r, &e) == 0 &&
			 r.n == 0;
		const char *upfail = NULL;
		for (size_t u = 0; u < s->nup; u++)
			if (final[s->up[u]] > 0 && c->state[s->up[u]] == FAILED)
				upfail = c->p->stages[s->up[u]].name;
		if (ok) {
			c->state[si] = RAN;
			c->nran++;
			if (qn_verbosity >= 0)
				printf("ran '%s'\n", s->name);
		} else if (upfail) {
			c->state[si] = FAILED;
			bad = 1;
			qn_error("stage '%s' did not run: upstream '%s' did not finish", s->name,
				 upfail);
		} else {
			c->state[si] = FAILED;
			char safe[256], key[65];
			safe_name(s->name, safe, sizeof safe);
			bad = 1;
			c->nfail++;
			if (s->shards && deps) {
				shard_key(s, deps, key);
				for (long i = 0; i < s->shards; i++)
					if (!marker_valid(c, si, i, key))
						qn_error(
						    "stage '%s' shard %ld did not finish; log: "
						    "%s.quern-run/logs/%s-%ld.log",
						    s->name, i, c->shown_dir, safe, i);
			}
			qn_error("stage '%s' did not finish; log: %s.quern-run/logs/%s%s.log",
				 s->name, c->shown_dir, safe, s->shards ? "-final" : "");
		}
		rn_reasons_release(&r);
		free(deps);
		free(outs);
	}
	return bad;
}

/*
 * quern-run run --executor slurm: walks the DAG in order and submits each
 * stage that must run (and every stage below a submitted one) as an sbatch
 * job chained on its upstream's with afterok; a sharded stage as an array
 * job of its unfinished shards and a final job (merge, lock entry).
 */
static int submit(struct ctx *c)
{
	const struct rn_pipeline *p = c->p;
	const struct rn_opts *o = c->opt;
	char *sl = xasprintf("%s/slurm", c->sdir),
	     *jobs_path = xasprintf("%s/slurm/jobs.json", c->sdir);
	long *final = calloc(p->n ? p->n : 1, sizeof *final);
	long *ids = NULL;
	size_t nids = 0;
	json_t *stages = json_object();
	int rc = 0;
	struct qn_err e;

	if (!sl || !jobs_path || !final || !stages) {
		qn_error("out of memory");
		rc = 1;
		goto out;
	}
	if (!o->dry_run) {
		long n = previous_active(c, jobs_path);
		if (n != 0) {
			rc = n > 0 ? QN_EXIT_LOCKED : 1;
			goto out;
		}
		if (mkdir_p(sl) < 0) {
			qn_error("cannot make '%s': %s", sl, strerror(errno));
			rc = 1;
			goto out;
		}
	}
	for (size_t k = 0; k < p->n && !rc; k++) {
		size_t si = p->order[k];
		const struct rn_stage *s = &p->stages[si];
		struct qn_buf dep;
		struct rn_reasons r = {0};
		unsigned char *todo = NULL;
		char *list = NULL, *script = NULL, *log = NULL, *fscript = NULL, *flog = NULL;
		char safe[256], key[65], arr[64];
		long id = 0, fid = 0, ntodo = 0;
		if (!c->sel[si])
			continue;
		safe_name(s->name, safe, sizeof safe);
		qn_buf_init(&dep, RN_MAX_STRING);
		int up_sub = 0;
		for (size_t u = 0; u < s->nup; u++)
			if (final[s->up[u]]) {
				char part[40];
				snprintf(part, sizeof part, "%s%ld",
					 dep.len ? ":" : "afterok:", final[s->up[u]]);
				qn_buf_adds(&dep, part);
				up_sub = 1;
			}
		qn_buf_add(&dep, "", 1);
		struct rn_hash *deps = calloc(s->ndeps ? s->ndeps : 1, sizeof *deps);
		struct rn_hash *outs = calloc(s->nouts ? s->nouts : 1, sizeof *outs);
		if (!deps || !outs ||
		    rn_stage_check(p, si, rn_lock_get(c->lock, s->name), c->cache, deps, outs, &r,
				   &e) < 0) {
			qn_error("stage '%s': %s", s->name, deps && outs ? e.msg : "out of memory");
			rc = 1;
			goto next;
		}
		if (o->force)
			rn_reasons_add(&r, "forced");
		if (!up_sub && !r.n) {
			if (qn_verbosity > 0)
				printf("up to date '%s'\n", s->name);
			goto next;
		}
		if (s->shards) {
			if (!(todo = calloc((size_t)s->shards, 1))) {
				rc = 1;
				goto next;
			}
			shard_key(s, deps, key);
			for (long i = 0; i < s->shards; i++) {
				todo[i] = up_sub || o->force || !marker_valid(c, si, i, key);
				ntodo += todo[i];
			}
			if (!(list = shard_list(todo, s->shards))) {
				rc = 1;
				goto next;
			}
		}
		if (o->dry_run) {
			printf("would submit '%s'", s->name);
			if (s->shards)
				printf(" (shards %s of %ld)", ntodo ? list : "none", s->shards);
			printf(": ");
			for (size_t i = 0; i < r.n; i++)
				printf("%s%s", i ? "; " : "", r.v[i]);
			if (up_sub)
				printf("%supstream is submitted", r.n ? "; " : "");
			printf("\n");
			final[si] = -1;
			goto next;
		}
		script = xasprintf("%s/%s.sh", sl, safe);
		log = xasprintf("%s/logs/%s%s.log", c->sdir, safe, s->shards ? "-%a" : "");
		fscript = xasprintf("%s/%s.final.sh", sl, safe);
		flog = xasprintf("%s/logs/%s-final.log", c->sdir, safe);
		if (!script || !log || !fscript || !flog) {
			rc = 1;
			goto next;
		}
		if (s->shards) {
			if (ntodo) {
				snprintf(arr, sizeof arr, "%%%ld", o->array_width);
				char *spec = xasprintf("%s%s", list, o->array_width > 0 ? arr : "");
				if (!spec ||
				    write_script(c, script, s->name,
						 "--shard \"$SLURM_ARRAY_TASK_ID\"") < 0 ||
				    (id = submit_one(c, s->name, script, log, spec,
						     dep.len > 1 ? dep.data : NULL)) < 0) {
					free(spec);
					rc = 1;
					goto next;
				}
				free(spec);
				add_id(&ids, &nids, id);
			}
			char adep[64];
			snprintf(adep, sizeof adep, "afterok:%ld", id);
			if (write_script(c, fscript, s->name, "--final") < 0 ||
			    (fid = submit_one(c, s->name, fscript, flog, NULL,
					      id	    ? adep
					      : dep.len > 1 ? dep.data
							    : NULL)) < 0) {
				rc = 1;
				goto next;
			}
			add_id(&ids, &nids, fid);
			if (qn_verbosity >= 0) {
				if (id)
					printf(
					    "submitted '%s' shards %s of %ld as job %ld, its merge "
					    "as job %ld\n",
					    s->name, list, s->shards, id, fid);
				else
					printf(
					    "submitted '%s' merge as job %ld (all %ld shards done "
					    "earlier)\n",
					    s->name, fid, s->shards);
			}
		} else {
			if (write_script(c, script, s->name, "") < 0 ||
			    (fid = submit_one(c, s->name, script, log, NULL,
					      dep.len > 1 ? dep.data : NULL)) < 0) {
				rc = 1;
				goto next;
			}
			add_id(&ids, &nids, fid);
			if (qn_verbosity >= 0)
				printf("submitted '%s' as job %ld\n", s->name, fid);
		}
		final[si] = fid;
		json_object_set_new(stages, s->name,
				    json_pack("{s:I,s:I,s:s}", "array", (json_int_t)id, "final",
					      (json_int_t)fid, "shards", list ? list : ""));
	next:
		if (rc == 1 && !c->failname)
			c->failname = strdup(s->name);
		qn_buf_release(&dep);
		rn_reasons_release(&r);
		free(deps);
		free(outs);
		free(todo);
		free(list);
		free(script);
		free(log);
		free(fscript);
		free(flog);
	}
	fflush(stdout);
	if (o->dry_run || !nids) {
		if (!nids && !rc && !o->dry_run && qn_verbosity >= 0)
			printf("up to date: nothing to submit\n");
		goto out;
	}
	{
		json_t *jl = json_array();
		char first[32];
		snprintf(first, sizeof first, "%ld", ids[0]);
		for (size_t i = 0; i < nids; i++)
			json_array_append_new(jl, json_integer(ids[i]));
		json_t *rec = json_pack("{s:s,s:s,s:o,s:O}", "run", c->run, "first", first, "jobs",
					jl, "stages", stages);
		char *text = rec ? json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		if (!text || qn_write_file_atomic(jobs_path, text, strlen(text), &e) < 0)
			qn_error("cannot record the jobs in '%s'", jobs_path);
		free(text);
		/* The audit trail: what was submitted, by whom; the jobs add their stages. */
		json_t *lr = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:O}", "type", "submit", "run",
				       c->run, "pipeline", p->file, "host", this_host(), "executor",
				       "slurm", "submitted", c->started, "jobs",
				       rec ? json_object_get(rec, "jobs") : NULL, "stages", stages);
		if (lr && rn_ledger_append(c->sdir, lr, &e) < 0)
			qn_error("ledger: %s", e.msg);
		json_decref(lr);
		json_decref(rec);
	}
	if (rc) {
		qn_error("the jobs submitted before the failure stay queued (scancel them, or let "
			 "them run)");
		goto out;
	}
	if (o->wait) {
		setup_signals();
		for (;;) {
			long n = rn_slurm_active(ids, nids, &e);
			if (n < 0) {
				qn_error("%s", e.msg);
				rc = 1;
				break;
			}
			if (n == 0) {
				rc = check_submitted(c, final);
				break;
			}
			if (got_signal) {
				qn_error("stopped waiting; the jobs go on (scancel %ld ... to stop "
					 "them)",
					 ids[0]);
				rc = 128 + got_signal;
				break;
			}
			struct pollfd pf = {sigpipe_fd[0], POLLIN, 0};
			if (poll(&pf, 1, 500) > 0) {
				char buf[64];
				while (read(sigpipe_fd[0], buf, sizeof buf) > 0) {
				}
			}
		}
	}
out:
	json_decref(stages);
	free(ids);
	free(final);
	free(sl);
	free(jobs_path);
	return rc;
}

int rn_task(struct rn_pipeline *p, const struct rn_opts *o)
{
	struct ctx c;
	struct qn_err e;
	int rc;

	if ((rc = open_common(&c, p, o)) < 0) {
		close_common(&c);
		return rc == -2 ? QN_EXIT_USAGE : QN_EXIT_FAIL;
	}
	c.task = 1;
	setvbuf(stdout, NULL, _IOLBF, 0); /* in order with the command's lines in the log */
	if (o->run_id)
		snprintf(c.run, sizeof c.run, "%s", o->run_id);
	long si = rn_pipeline_find(p, o->task_stage);
	const struct rn_stage *s = si >= 0 ? &p->stages[si] : NULL;
	if (!s || (o->task_shard >= 0 && o->task_shard >= s->shards) ||
	    (s->shards && o->task_shard < 0 && !o->task_final) || (!s->shards && o->task_final)) {
		qn_error("no such task: stage '%s'%s", o->task_stage,
			 s ? (o->task_final ? " (final)" : " (shard)") : "");
		close_common(&c);
		return QN_EXIT_USAGE;
	}
	char *cat = xasprintf("%s/catalog.sqlite", c.sdir);
	c.cat = cat ? rn_catalog_open(cat, &e) : NULL;
	if (!c.cat)
		qn_warn("%s (the task goes on without it)", cat ? e.msg : "out of memory");
	free(cat);
	for (size_t i = 0; i < p->n; i++)
		c.state[i] = OFF;
	struct rn_reasons r = {0};
	struct rn_hash *deps = calloc(s->ndeps ? s->ndeps : 1, sizeof *deps);
	struct rn_hash *outs = calloc(s->nouts ? s->nouts : 1, sizeof *outs);
	if (!deps || !outs ||
	    rn_stage_check(p, (size_t)si, NULL, c.cache, deps, outs, &r, &e) < 0) {
		qn_error("stage '%s': %s", s->name, deps && outs ? e.msg : "out of memory");
		rn_reasons_release(&r);
		free(deps);
		free(outs);
		close_common(&c);
		return QN_EXIT_FAIL;
	}
	rn_reasons_release(&r);
	free(outs);
	setup_signals();
	if (s->shards) {
		if (begin_shards(&c, (size_t)si, deps, 0) < 0) {
			free(deps);
			qn_error("out of memory");
			close_common(&c);
			return QN_EXIT_FAIL;
		}
		struct sstate *ss = c.ss[si];
		if (o->task_final) {
			for (long i = 0; i < s->shards; i++)
				if (ss->todo[i]) {
					qn_error(
					    "stage '%s' shard %ld is not done (no valid marker)",
					    s->name, i);
					rc = 1;
				}
			if (rc) {
				close_common(&c);
				return QN_EXIT_FAIL;
			}
		} else {
			for (long i = 0; i < s->shards; i++)
				ss->todo[i] = i == o->task_shard;
			c.task_shard_only = 1;
		}
	} else if (start_stage(&c, (size_t)si, deps) < 0) {
		free(deps);
		close_common(&c);
		return QN_EXIT_FAIL;
	}
	loop(&c);
	rc = c.failrc;
	if (got_signal)
		rc = 128 + got_signal;
	close_common(&c);
	return rc;
}

int rn_run(struct rn_pipeline *p, const struct rn_opts *o)
{
	struct ctx c;
	struct qn_err e;
	int lockfd = -1, rc;

	if ((rc = open_common(&c, p, o)) < 0) {
		close_common(&c);
		return rc == -2 ? QN_EXIT_USAGE : QN_EXIT_FAIL;
	}
	char *sub[] = {"logs", "journal"};
	for (size_t i = 0; i < 2 && !o->dry_run; i++) {
		char *d = xasprintf("%s/%s", c.sdir, sub[i]);
		if (!d || mkdir_p(d) < 0) {
			qn_error("cannot make '%s': %s", d ? d : "?", strerror(errno));
			free(d);
			close_common(&c);
			return QN_EXIT_FAIL;
		}
		free(d);
	}
	if (!o->dry_run) {
		lockfd = take_lock(c.sdir, p, c.started);
		if (lockfd < 0) {
			close_common(&c);
			return lockfd == -2 ? QN_EXIT_LOCKED : QN_EXIT_FAIL;
		}
		if (recover(&c) < 0) {
			qn_error("cannot recover the interrupted run; fix the above and run again");
			close(lockfd);
			close_common(&c);
			return QN_EXIT_FAIL;
		}
		char *cat = xasprintf("%s/catalog.sqlite", c.sdir);
		c.cat = cat ? rn_catalog_open(cat, &e) : NULL;
		if (!c.cat)
			qn_warn("%s (the run goes on without it)", cat ? e.msg : "out of memory");
		free(cat);
	}
	if (check_sources(p, c.sel) < 0) {
		if (lockfd >= 0)
			close(lockfd);
		close_common(&c);
		return QN_EXIT_FAIL;
	}
	if (o->executor == RN_SLURM) {
		rc = submit(&c);
		if (lockfd >= 0)
			close(lockfd);
		close_common(&c);
		return rc;
	}
	for (size_t i = 0; i < p->n; i++)
		c.state[i] = c.sel[i] ? WAIT : OFF;
	setup_signals();
	loop(&c);

	int blocked = 0;
	for (size_t i = 0; i < p->n; i++)
		if (c.state[i] == BLOCKED || (c.state[i] == WAIT && c.sel[i]))
			blocked++;
	if (blocked && qn_verbosity >= 0 && !o->dry_run)
		fprintf(stderr, "%s: %d stage%s not run after the failure\n", qn_prog, blocked,
			blocked == 1 ? "" : "s");
	rc = c.failrc;
	if (got_signal && !rc)
		rc = 128 + got_signal;
	else if (got_signal)
		rc = 128 + got_signal;
	if (!o->dry_run) {
		char ended[40];
		utc(ended, sizeof ended, 0);
		const char *host = this_host();
		json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i}", "type", "run",
				      "run", c.run, "pipeline", p->file, "host", host, "started",
				      c.started, "ended", ended, "rc", rc, "ran", c.nran, "skipped",
				      c.nskip, "failed", c.nfail);
		if (r && (c.nran || c.nfail) && rn_ledger_append(c.sdir, r, &e) < 0)
			qn_error("ledger: %s", e.msg);
		json_decref(r);
		if (c.cat && (c.nran || c.nfail) &&
		    rn_catalog_run(c.cat, c.run, p->file, c.started, ended, rc, host,
				   (long)getpid(), &e) < 0)
			qn_error("%s", e.msg);
		if (qn_verbosity >= 0 && !c.nran && !c.nfail)
			printf("up to date: nothing to run\n");
		else if (qn_verbosity > 0)
			printf("%d ran, %d up to date, %d failed\n", c.nran, c.nskip, c.nfail);
	}
	if (lockfd >= 0)
		close(lockfd);
	close_common(&c);
	return rc;
}

int rn_status(struct rn_pipeline *p, const struct rn_opts *o)
{
	struct ctx c;
	int rc, stale = 0;

	if ((rc = open_common(&c, p, o)) < 0) {
		close_common(&c);
		return rc == -2 ? QN_EXIT_USAGE : QN_EXIT_FAIL;
	}
	if (mkdir(c.sdir, 0755) < 0 && errno != EEXIST) {
		/* a read-only checkout: answer without saving the hash cache */
		rn_hcache_free(c.cache);
		c.cache = rn_hcache_open("/dev/null", 1);
	}
	if (check_sources(p, c.sel) < 0) {
		close_common(&c);
		return QN_EXIT_FAIL;
	}
	/* interrupted stages waiting for recovery */
	char *jdir = xasprintf("%s/journal", c.sdir);
	DIR *d = jdir ? opendir(jdir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			printf("interrupted: journal entry '%s' (the next run cleans it up)\n",
			       de->d_name);
			stale = 1;
		}
	if (d)
		closedir(d);
	free(jdir);
	for (size_t k = 0; k < p->n; k++) {
		size_t i = p->order[k];
		const struct rn_stage *s = &p->stages[i];
		if (!c.sel[i])
			continue;
		struct rn_reasons r = {0};
		struct qn_err e;
		struct rn_hash *deps = calloc(s->ndeps ? s->ndeps : 1, sizeof *deps);
		struct rn_hash *outs = calloc(s->nouts ? s->nouts : 1, sizeof *outs);
		if (!deps || !outs ||
		    rn_stage_check(p, i, rn_lock_get(c.lock, s->name), c.cache, deps, outs, &r,
				   &e) < 0) {
			qn_error("stage '%s': %s", s->name, deps && outs ? e.msg : "out of memory");
			free(deps);
			free(outs);
			rn_reasons_release(&r);
			close_common(&c);
			return QN_EXIT_FAIL;
		}
		free(outs);
		const char *up = NULL;
		for (size_t u = 0; u < s->nup; u++)
			if (c.state[s->up[u]] == WOULD)
				up = p->stages[s->up[u]].name;
		if (r.n && !up && s->shards) {
			/* what the markers say: the shards still to run (here or on Slurm) */
			char key[65];
			unsigned char *todo = calloc((size_t)s->shards, 1);
			shard_key(s, deps, key);
			long left = 0;
			for (long x = 0; todo && x < s->shards; x++)
				left += todo[x] = !marker_valid(&c, i, x, key);
			char *list = todo ? shard_list(todo, s->shards) : NULL;
			if (list && left)
				rn_reasons_add(&r, "shards not done: %s", list);
			else if (list)
				rn_reasons_add(&r, "all %ld shards done, the merge is not",
					       s->shards);
			free(list);
			free(todo);
		}
		free(deps);
		if (r.n || up) {
			c.state[i] = WOULD;
			stale = 1;
			printf("%s: ", s->name);
			for (size_t x = 0; x < r.n; x++)
				printf("%s%s", x ? "; " : "", r.v[x]);
			if (up)
				printf("%supstream '%s' is stale", r.n ? "; " : "", up);
			printf("\n");
		}
		rn_reasons_release(&r);
	}
	if (!stale && qn_verbosity >= 0)
		printf("up to date\n");
	close_common(&c);
	return stale;
}
