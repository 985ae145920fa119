/*
 * quern-run - runs a pipeline of stages from a YAML file (dvc.yaml's
 * spirit): only the stages whose command, dependencies, params or outputs
 * changed since the lock file recorded them, in dependency order, in
 * parallel with -j, safe under cron (one run at a time, no partial outputs
 * after a failure or a kill), with a hash-chained ledger of every run and a
 * catalog for lineage. The modules: pipeline (the file), hcache (hashes),
 * state (the lock file), exec (running), ledger, catalog.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "cli.h"
#include "err.h"
#include "exec.h"
#include "ledger.h"
#include "pipeline.h"
#include "pool.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quern-run <command> [options] [args ...]\n"
		"\n"
		"Runs a pipeline (YAML: stages with cmd, deps, outs, params; see quern-run(1)):\n"
		"only the stages whose command, dependencies, params or outputs changed since\n"
		"the lock file (<pipeline>.lock) recorded them, in dependency order.\n"
		"\n"
		"Commands:\n"
		"  run [STAGE ...]          run what is stale (STAGE: it and what it needs)\n"
		"  status [STAGE ...]       list each stale stage and why; exit 1 when any\n"
		"  dag [--dot]              the stages in order with what each needs\n"
		"  log                      past runs and Slurm submissions, from the ledger\n"
		"  verify-ledger            check the ledger's hash chain\n"
		"  lineage ARTIFACT         the stages and sources behind an artifact\n"
		"\n"
		"Options:\n"
		"  -f, --file FILE          the pipeline (default pipeline.yaml)\n"
		"      --params FILE        the params file (default: params.yaml beside the\n"
		"                           pipeline, when there is one)\n"
		"  -n, --dry-run            run: say what would run and why; run nothing\n"
		"      --force              run: run the stages even when up to date\n"
		"  -j, --jobs N             run: stages at once (default 1; 0 = one per CPU)\n"
		"  -k, --keep-going         run: go on with the stages that do not depend on\n"
		"                           a failed one\n"
		"      --executor E         run: local (default: here, shards in a process\n"
		"                           pool of -j) or slurm (sbatch jobs, array jobs for\n"
		"                           shards, chained with afterok)\n"
		"      --wait               slurm: wait until the jobs are over; exit 1 when a\n"
		"                           stage did not finish (default: submit and exit)\n"
		"      --array-width W      slurm: at most W tasks of an array job at once\n"
		"      --slurm-partition P, --slurm-account A, --slurm-time T,\n"
		"      --slurm-cpus N, --slurm-mem M\n"
		"                           slurm: sbatch's --partition, --account, --time,\n"
		"                           --cpus-per-task, --mem for every job\n"
		"      --sbatch-arg ARG     slurm: one more sbatch argument (repeatable)\n"
		"      --dot                dag: Graphviz\n"
		"  -q, --quiet              no progress lines, no warnings\n"
		"  -v, --verbose            more detail (run: why each stage runs)\n"
		"  -h, --help               this help\n"
		"  -V, --version            the version\n"
		"\n"
		"State lives in .quern-run/ beside the pipeline: logs/, the hash cache, the\n"
		"ledger and catalog.sqlite.\n"
		"\n"
		"Exit status: 0 done (status: up to date); 1 a failure (status: stale; a bad\n"
		"pipeline; verify-ledger: the chain is broken); 2 usage error; 75 another run\n"
		"of the pipeline holds its lock; a failed stage's own exit status (124 when\n"
		"it timed out).\n");
}

static void dot_name(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static int cmd_dag(const struct rn_pipeline *p, int dot)
{
	if (dot) {
		printf("digraph ");
		dot_name(p->base);
		printf(" {\n\trankdir=TB;\n\tnode [shape=box];\n");
		for (size_t k = 0; k < p->n; k++) {
			const struct rn_stage *s = &p->stages[p->order[k]];
			printf("\t");
			dot_name(s->name);
			printf(";\n");
			for (size_t u = 0; u < s->nup; u++) {
				printf("\t");
				dot_name(p->stages[s->up[u]].name);
				printf(" -> ");
				dot_name(s->name);
				printf(";\n");
			}
		}
		printf("}\n");
		return 0;
	}
	for (size_t k = 0; k < p->n; k++) {
		const struct rn_stage *s = &p->stages[p->order[k]];
		printf("%s", s->name);
		for (size_t u = 0; u < s->nup; u++)
			printf("%s%s", u ? ", " : "  <- ", p->stages[s->up[u]].name);
		printf("\n");
	}
	return 0;
}

/* The state folder for a pipeline file, without parsing it. */
static char *state_dir_of(const char *file)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return NULL;
	const char *slash = strrchr(file, '/');
	char *d = slash ? strndup(file, (size_t)(slash - file + (slash == file))) : strdup(".");
	char *abs = d ? rn_path_join(cwd, d) : NULL;
	free(d);
	char *s = abs ? rn_path_join(abs, ".quern-run") : NULL;
	free(abs);
	return s;
}

/* path (absolute, normalized) relative to dir (the same): malloc'd. */
static char *relative_to(const char *path, const char *dir)
{
	size_t i = 0, common = 0, up = 0;
	if (!strcmp(dir, "/"))
		return strdup(path[1] ? path + 1 : ".");
	/* the longest common prefix ending at a component boundary */
	for (;; i++) {
		int pe = path[i] == 0 || path[i] == '/', de = dir[i] == 0 || dir[i] == '/';
		if (pe && de)
			common = i;
		if (!path[i] || !dir[i] || path[i] != dir[i])
			break;
	}
	for (const char *q = dir + common; *q; q++)
		if (*q == '/')
			up++;
	const char *rest = path + common + (path[common] == '/');
	size_t n = up * 3 + strlen(rest) + 2;
	char *out = malloc(n), *o = out;
	if (!out)
		return NULL;
	for (size_t k = 0; k < up; k++, o += 3)
		memcpy(o, "../", 3);
	strcpy(o, rest);
	size_t len = strlen(out);
	if (len && out[len - 1] == '/')
		out[len - 1] = 0;
	if (!*out)
		strcpy(out, ".");
	return out;
}

static int log_one(json_t *r, void *ctx)
{
	const char *type = json_string_value(json_object_get(r, "type"));
	int verbose = *(int *)ctx;
	const char *run = json_string_value(json_object_get(r, "run"));
	if (type && !strcmp(type, "run")) {
		printf("%s  %-28s rc %-3d ran %d, up to date %d, failed %d  %s\n",
		       json_string_value(json_object_get(r, "ended")) ?: "?", run ?: "?",
		       (int)json_integer_value(json_object_get(r, "rc")),
		       (int)json_integer_value(json_object_get(r, "ran")),
		       (int)json_integer_value(json_object_get(r, "skipped")),
		       (int)json_integer_value(json_object_get(r, "failed")),
		       json_string_value(json_object_get(r, "pipeline")) ?: "?");
	} else if (type && !strcmp(type, "submit")) {
		printf("%s  %-28s submitted %zu Slurm job%s  %s\n",
		       json_string_value(json_object_get(r, "submitted")) ?: "?", run ?: "?",
		       json_array_size(json_object_get(r, "jobs")),
		       json_array_size(json_object_get(r, "jobs")) == 1 ? "" : "s",
		       json_string_value(json_object_get(r, "pipeline")) ?: "?");
	} else if (type && !strcmp(type, "stage") && verbose) {
		printf("%s  %-28s   %s '%s'", json_string_value(json_object_get(r, "ended")) ?: "?",
		       run ?: "?", json_string_value(json_object_get(r, "status")) ?: "?",
		       json_string_value(json_object_get(r, "stage")) ?: "?");
		int rc = (int)json_integer_value(json_object_get(r, "rc"));
		if (rc)
			printf(" (exit %d)", rc);
		printf("\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"params", required_argument, NULL, 'P'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"force", no_argument, NULL, 'F'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"keep-going", no_argument, NULL, 'k'},
	    {"dot", no_argument, NULL, 'D'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"executor", required_argument, NULL, 'E'},
	    {"wait", no_argument, NULL, 'W'},
	    {"array-width", required_argument, NULL, 'A'},
	    {"slurm-partition", required_argument, NULL, 1},
	    {"slurm-account", required_argument, NULL, 2},
	    {"slurm-time", required_argument, NULL, 3},
	    {"slurm-cpus", required_argument, NULL, 4},
	    {"slurm-mem", required_argument, NULL, 5},
	    {"sbatch-arg", required_argument, NULL, 6},
	    {"stage", required_argument, NULL, 7},
	    {"shard", required_argument, NULL, 8},
	    {"final", no_argument, NULL, 9},
	    {"run-id", required_argument, NULL, 10},
	    {NULL, 0, NULL, 0},
	};
	static const char *const sbatch_opt[] = {NULL,	   "--partition",     "--account",
						 "--time", "--cpus-per-task", "--mem"};
	static char *sargs[256]; /* sbatch's arguments: options point into argv */
	size_t nsargs = 0;
	int slurm_opts = 0;
	char self[PATH_MAX];
	const char *file = "pipeline.yaml", *params = NULL, *cmd = NULL;
	struct rn_opts o = {0};
	int dot = 0, c, rc;
	double d;
	struct qn_err e;

	qn_cli_init("quern-run");
	o.jobs = 1;
	o.task_shard = -1;
	/* the command may come before or after the options */
	while ((c = getopt_long(argc, argv, "+f:nj:kqvhV", longopts, NULL)) != -1 ||
	       optind < argc) {
		if (c == -1) {
			if (!cmd) {
				cmd = argv[optind++];
				continue;
			}
			break;
		}
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 'P':
			params = optarg;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'F':
			o.force = 1;
			break;
		case 'j':
			if (qn_parse_jobs("--jobs", optarg, &o.jobs) < 0)
				return QN_EXIT_USAGE;
			break;
		case 'k':
			o.keep_going = 1;
			break;
		case 'D':
			dot = 1;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity++;
			break;
		case 'h':
			usage(stdout);
			return qn_close_stdout(0);
		case 'V':
			qn_print_version();
			return qn_close_stdout(0);
		case 'E':
			if (!strcmp(optarg, "local"))
				o.executor = RN_LOCAL;
			else if (!strcmp(optarg, "slurm"))
				o.executor = RN_SLURM;
			else
				return qn_usage_error("--executor is local or slurm, not '%s'",
						      optarg);
			break;
		case 'W':
			o.wait = 1;
			slurm_opts = 1;
			break;
		case 'A':
			if (qn_parse_number("--array-width", optarg, 1, 1e6, &d) < 0)
				return QN_EXIT_USAGE;
			o.array_width = (long)d;
			slurm_opts = 1;
			break;
		case 1:
		case 2:
		case 3:
		case 4:
		case 5:
		case 6:
			if (!*optarg || (c < 6 && strpbrk(optarg, " \t\n")))
				return qn_usage_error("bad value '%s' for %s", optarg,
						      longopts[c + 13].name);
			if (nsargs + 2 > sizeof sargs / sizeof *sargs)
				return qn_usage_error("too many Slurm options");
			if (c < 6)
				sargs[nsargs++] = (char *)sbatch_opt[c];
			sargs[nsargs++] = optarg;
			slurm_opts = 1;
			break;
		case 7:
			o.task_stage = optarg;
			break;
		case 8:
			if (qn_parse_number("--shard", optarg, 0, 1e6, &d) < 0)
				return QN_EXIT_USAGE;
			o.task_shard = (long)d;
			break;
		case 9:
			o.task_final = 1;
			break;
		case 10:
			o.run_id = optarg;
			break;
		default:
			fprintf(stderr, "try '%s --help'\n", qn_prog);
			return QN_EXIT_USAGE;
		}
	}
	if (!cmd)
		return qn_usage_error("missing command (run, status, dag, log, verify-ledger, "
				      "lineage)");
	o.targets = argv + optind;
	o.ntargets = (size_t)(argc - optind);

	if (!strcmp(cmd, "verify-ledger") || !strcmp(cmd, "log")) {
		if (o.ntargets)
			return qn_usage_error("'%s' takes no arguments", cmd);
		char *sdir = state_dir_of(file);
		if (!sdir) {
			qn_error("out of memory");
			return 1;
		}
		if (!strcmp(cmd, "log")) {
			int verbose = qn_verbosity > 0;
			rc = rn_ledger_each(sdir, log_one, &verbose, &e);
			if (rc < 0)
				qn_error("%s", e.msg);
			free(sdir);
			return qn_close_stdout(rc < 0 ? 1 : 0);
		}
		long n;
		rc = rn_ledger_verify(sdir, &n, &e);
		free(sdir);
		if (rc) {
			qn_error("%s", e.msg);
			return qn_close_stdout(1);
		}
		if (qn_verbosity >= 0)
			printf("ledger intact: %ld record%s\n", n, n == 1 ? "" : "s");
		return qn_close_stdout(0);
	}
	if (!strcmp(cmd, "lineage")) {
		if (o.ntargets != 1)
			return qn_usage_error("lineage takes one artifact path");
		char *sdir = state_dir_of(file), cwd[PATH_MAX];
		if (!sdir || !getcwd(cwd, sizeof cwd)) {
			free(sdir);
			qn_error("out of memory");
			return 1;
		}
		char *dir = rn_path_join(sdir, ".."), *abs = rn_path_join(cwd, o.targets[0]);
		char *cat = rn_path_join(sdir, "catalog.sqlite");
		free(sdir);
		char *rel = dir && abs ? relative_to(abs, dir) : NULL;
		struct rn_catalog *cg = NULL;
		if (cat && access(cat, F_OK) < 0) {
			qn_error("no catalog '%s': nothing ran yet", cat);
			rc = 1;
		} else if (!cat || !rel || !(cg = rn_catalog_open(cat, &e))) {
			qn_error("%s", cat && rel ? e.msg : "out of memory");
			rc = 1;
		} else {
			rc = rn_catalog_lineage(cg, rel, stdout, &e);
			if (rc == 1)
				qn_error("'%s' is no output of a stage that ran", o.targets[0]);
			else if (rc < 0)
				qn_error("%s", e.msg);
			rc = rc ? 1 : 0;
		}
		rn_catalog_close(cg);
		free(rel);
		free(dir);
		free(abs);
		free(cat);
		return qn_close_stdout(rc);
	}
	int is_run = !strcmp(cmd, "run"), is_status = !strcmp(cmd, "status"),
	    is_dag = !strcmp(cmd, "dag"), is_task = !strcmp(cmd, "_task");
	if (!is_run && !is_status && !is_dag && !is_task)
		return qn_usage_error("unknown command '%s'", cmd);
	if (is_task && (!o.task_stage || o.ntargets))
		return qn_usage_error("_task (what a Slurm job runs) needs --stage");
	if (!is_task && (o.task_stage || o.task_shard >= 0 || o.task_final || o.run_id))
		return qn_usage_error("--stage, --shard, --final and --run-id go with _task");
	if ((slurm_opts || o.executor == RN_SLURM) && !is_run)
		return qn_usage_error("--executor and the Slurm options go with run");
	if (slurm_opts && o.executor != RN_SLURM)
		return qn_usage_error("--wait, --array-width and the Slurm options go with "
				      "--executor slurm");
	o.sbatch_args = sargs;
	o.nsbatch_args = nsargs;
	o.file = file;
	o.params = params;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl > 0)
		self[sl] = 0;
	else if (!realpath(argv[0], self))
		snprintf(self, sizeof self, "%s", argv[0]);
	o.self = self;
	if (is_dag && o.ntargets)
		return qn_usage_error("dag takes no arguments");
	if (!is_run && (o.dry_run || o.force || o.keep_going))
		return qn_usage_error("--dry-run, --force and --keep-going go with run");
	if (dot && !is_dag)
		return qn_usage_error("--dot goes with dag");

	struct rn_pipeline p;
	rn_pipeline_init(&p);
	if (rn_pipeline_load(file, params, &p, &e) < 0) {
		qn_error("%s", e.msg);
		rn_pipeline_release(&p);
		return 1;
	}
	if (is_task)
		rc = rn_task(&p, &o);
	else if (is_dag)
		rc = cmd_dag(&p, dot);
	else if (is_status)
		rc = rn_status(&p, &o);
	else
		rc = rn_run(&p, &o);
	rn_pipeline_release(&p);
	return qn_close_stdout(rc);
}
