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

#include "catalog.h"
#include "cli.h"
#include "err.h"
#include "hcache.h"
#include "ledger.h"
#include "pool.h"
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
	char host[256] = "?";
	gethostname(host, sizeof host - 1);
	char info[600];
	int n = snprintf(info, sizeof info, "pid %ld\nhost %s\nstarted %s\n", (long)getpid(), host,
			 started);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, info, (size_t)n, 0) != n)
		qn_warn("cannot write the holder into '%s'", path);
	free(path);
	return fd;
}

/* --- the scheduler ------------------------------------------------------------------ */

enum st { WAIT, RUNNING, RAN, SKIPPED, WOULD, FAILED, BLOCKED, OFF };

struct outstage {
	char *path;  /* absolute */
	char *stash; /* where the previous version waits */
	int existed, persist, required;
};

struct job {
	size_t si;
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
	log_line(j, "stage '%s', try %d of %ld, in %s: %s", s->name, j->try, s->retries + 1, wdir,
		 s->cmd);
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
		execl("/bin/sh", "sh", "-c", s->cmd, (char *)NULL);
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

static int start_stage(struct ctx *c, size_t si, struct rn_hash *deps)
{
	const struct rn_stage *s = &c->p->stages[si];
	struct job *j = calloc(1, sizeof *j);
	char safe[256];

	if (!j)
		goto oom;
	j->si = si;
	j->fd = j->logfd = -1;
	j->at_bol = 1;
	j->try = 1;
	j->deps = deps;
	utc(j->started, sizeof j->started, 0);
	safe_name(s->name, safe, sizeof safe);
	j->log = xasprintf("%s/logs/%s.%s.log", c->sdir, safe, c->run);
	j->log_shown = xasprintf("%s.quern-run/logs/%s.%s.log", c->shown_dir, safe, c->run);
	j->journal = xasprintf("%s/journal/%s.json", c->sdir, safe);
	if (!j->log || !j->log_shown || !j->journal)
		goto oom;
	for (size_t i = 0; i < s->nouts; i++) {
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
	j->logfd = open(j->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (j->logfd < 0) {
		qn_error("cannot open the log '%s': %s", j->log, strerror(errno));
		goto fail;
	}
	if (stash_outs(c, j) < 0) {
		restore_outs(j);
		unlink(j->journal);
		goto fail;
	}
	if (spawn(c, j) < 0) {
		restore_outs(j);
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
	if (qn_verbosity >= 0)
		printf("running '%s'\n", s->name);
	fflush(stdout);
	return 0;
oom:
	qn_error("out of memory");
fail:
	if (j)
		j->deps = NULL; /* the caller still owns them */
	free_job(j);
	return -1;
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
				       s->cmd, j->log, &e) < 0;
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
	FILE *f = fopen(log, "rb");
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

/* A job's process has ended with status ws. */
static void finish(struct ctx *c, size_t idx, int ws)
{
	struct job *j = c->jobs[idx];
	const struct rn_stage *s = &c->p->stages[j->si];
	double took = now() - j->start;
	int ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && !j->timed_out && !j->interrupted;
	int rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	char why[600] = "";
	char ended[40];
	struct qn_err e;

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
		if (!entry || rn_lock_set(c->lock, s->name, entry) < 0 ||
		    rn_lock_save(c->lockpath, c->lock, c->p, &e) < 0) {
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
		unlink(j->journal);
		c->state[j->si] = RAN;
		c->nran++;
		if (qn_verbosity >= 0)
			printf("ran '%s' (%.1f s)\n", s->name, took);
		ledger_stage(c, j, "ran", 0, ended);
		catalog_stage(c, j, "ran", 0, ended);
	} else {
		if (restore_outs(j) == 0)
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
	c->jobs[idx] = c->jobs[--c->njobs];
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
		char host[256] = "?";
		gethostname(host, sizeof host - 1);
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
		free(deps);
		free(outs);
		const char *up = NULL;
		for (size_t u = 0; u < s->nup; u++)
			if (c.state[s->up[u]] == WOULD)
				up = p->stages[s->up[u]].name;
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
