/* slurm.c - see slurm.h. */
#include "slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"

#define MAX_OUTPUT (1u << 20) /* what we read of sbatch's or squeue's output */

/*
 * Runs argv with stdin from /dev/null and captures stdout (and stderr, in
 * err, for messages). The exit status, or -1 when it cannot start.
 */
static int capture(char **argv, struct qn_buf *out, struct qn_buf *err)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "cannot run '%s': %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	/* stderr is short; read stdout to its end, then stderr */
	char buf[4096];
	int fds[2] = {po[0], pe[0]};
	struct qn_buf *to[2] = {out, err};
	for (int k = 0; k < 2; k++) {
		ssize_t n;
		while ((n = read(fds[k], buf, sizeof buf)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			qn_buf_add(to[k], buf, (size_t)n); /* past the maximum: cut short */
		}
		close(fds[k]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	qn_buf_add(out, "", 1);
	qn_buf_add(err, "", 1);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
}

long rn_sbatch(const struct rn_sbatch *b, struct qn_err *e)
{
	char **argv = calloc(b->nargs + 12, sizeof *argv);
	char *opt[5] = {0};
	size_t n = 0;
	long id = -1;
	if (!argv) {
		qn_errf(e, "out of memory");
		return -1;
	}
	argv[n++] = "sbatch";
	argv[n++] = "--parsable";
	if (asprintf(&opt[0], "--job-name=%s", b->name) < 0 ||
	    asprintf(&opt[1], "--output=%s", b->output) < 0)
		goto oom;
	argv[n++] = opt[0];
	argv[n++] = opt[1];
	if (b->array) {
		if (asprintf(&opt[2], "--array=%s", b->array) < 0)
			goto oom;
		argv[n++] = opt[2];
	}
	if (b->dependency) {
		if (asprintf(&opt[3], "--dependency=%s", b->dependency) < 0)
			goto oom;
		argv[n++] = opt[3];
		argv[n++] = "--kill-on-invalid-dep=yes";
	}
	for (size_t i = 0; i < b->nargs; i++)
		argv[n++] = b->args[i];
	argv[n++] = (char *)b->script;
	struct qn_buf out, err;
	qn_buf_init(&out, MAX_OUTPUT);
	qn_buf_init(&err, MAX_OUTPUT);
	int rc = capture(argv, &out, &err);
	if (rc != 0) {
		if (err.data)
			trim(err.data);
		qn_errf(e, "sbatch failed (%s%d): %.400s", rc < 0 ? "cannot start, " : "exit ", rc,
			err.data ? err.data : "");
	} else {
		/* --parsable: "ID" or "ID;CLUSTER" */
		char *end;
		errno = 0;
		id = out.data ? strtol(out.data, &end, 10) : -1;
		if (!out.data || errno || end == out.data || id <= 0 ||
		    (*end && *end != ';' && *end != '\n')) {
			qn_errf(e, "sbatch printed no job id: '%.200s'", out.data ? out.data : "");
			id = -1;
		}
	}
	qn_buf_release(&out);
	qn_buf_release(&err);
	for (int i = 0; i < 5; i++)
		free(opt[i]);
	free(argv);
	return id;
oom:
	for (int i = 0; i < 5; i++)
		free(opt[i]);
	free(argv);
	qn_errf(e, "out of memory");
	return -1;
}

/* squeue's compact states of a job that is not over yet. */
static int active_state(const char *t)
{
	static const char *const live[] = {"PD", "R",  "CG", "CF", "S",	 "RQ", "RS",
					   "RH", "RF", "SI", "SO", "ST", "RD", NULL};
	for (int i = 0; live[i]; i++)
		if (!strcmp(t, live[i]))
			return 1;
	return 0;
}

long rn_slurm_active(const long *ids, size_t n, struct qn_err *e)
{
	if (!n)
		return 0;
	struct qn_buf list;
	qn_buf_init(&list, MAX_OUTPUT);
	for (size_t i = 0; i < n; i++) {
		char num[32];
		snprintf(num, sizeof num, "%s%ld", i ? "," : "", ids[i]);
		if (qn_buf_adds(&list, num) < 0) {
			qn_buf_release(&list);
			qn_errf(e, "too many jobs");
			return -1;
		}
	}
	qn_buf_add(&list, "", 1);
	char *argv[] = {"squeue", "-h", "-t", "all", "-o", "%i %t", "-j", list.data, NULL};
	struct qn_buf out, err;
	qn_buf_init(&out, MAX_OUTPUT);
	qn_buf_init(&err, MAX_OUTPUT);
	int rc = capture(argv, &out, &err);
	long active = 0;
	if (rc != 0 && err.data && strstr(err.data, "Invalid job id")) {
		active = 0; /* all of them long gone */
	} else if (rc != 0) {
		if (err.data)
			trim(err.data);
		qn_errf(e, "squeue failed (exit %d): %.400s", rc, err.data ? err.data : "");
		active = -1;
	} else {
		for (char *line = strtok(out.data, "\n"); line; line = strtok(NULL, "\n")) {
			char *sp = strchr(line, ' ');
			if (sp && active_state(sp + 1))
				active++;
		}
	}
	qn_buf_release(&list);
	qn_buf_release(&out);
	qn_buf_release(&err);
	return active;
}

void rn_sh_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}
