/*
 * quern - the front end: "quern ingest ..." runs "quern-ingest ...", the way
 * git runs its commands. The tool is looked up beside this binary first, so
 * a build folder works without installing, then on PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct {
	const char *name, *line;
	int built;
} tools[] = {
	{"ingest", "HTML, XML, CSV, e-mail, text -> document JSON Lines", 1},
	{"clean", "normalize, deduplicate, filter and redact documents", 1},
	{"tokenize", "byte-level BPE tokenizers and token shards", 1},
	{"train", "GPT-2 models on CPU: pre-training and fine-tuning", 1},
	{"audit", "PII, secret and policy scans, evaluations, reports", 1},
	{"run", "pipelines with content-hash caching, cron-safe", 1},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: quern <tool> [options] [args ...]\n"
		   "       quern --help | --version\n\nTools:\n");
	for (size_t i = 0; i < sizeof tools / sizeof *tools; i++)
		fprintf(f, "  %-9s %s%s\n", tools[i].name, tools[i].line,
			tools[i].built ? "" : " (not built yet)");
	fprintf(f, "\n'quern <tool> --help' shows a tool's options; each tool is also\n"
		   "a program of its own, quern-<tool>, with a man page.\n");
}

int main(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 80], prog[64];
	ssize_t n;

	qn_cli_init("quern");
	if (argc < 2)
		return qn_usage_error("missing tool name");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return qn_close_stdout(0);
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		qn_print_version();
		return qn_close_stdout(0);
	}
	if (argv[1][0] == '-')
		return qn_usage_error("unknown option '%s'", argv[1]);
	size_t i;
	for (i = 0; i < sizeof tools / sizeof *tools; i++)
		if (!strcmp(argv[1], tools[i].name))
			break;
	if (i == sizeof tools / sizeof *tools)
		return qn_usage_error("unknown tool '%s'", argv[1]);
	if (!tools[i].built) {
		qn_error("'%s' is not built yet in this version of quern", argv[1]);
		return 1;
	}
	snprintf(prog, sizeof prog, "quern-%s", argv[1]);
	argv[1] = prog;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(path, sizeof path, "%s/%s", self, prog);
			if (access(path, X_OK) == 0)
				execv(path, argv + 1);
		}
	}
	execvp(prog, argv + 1);
	qn_error("cannot run '%s': %s", prog, strerror(errno));
	return 1;
}
