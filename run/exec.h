/*
 * exec.h - running a pipeline: the per-pipeline lock, recovery from an
 * interrupted run, the scheduler that runs stale stages (in parallel up to
 * -j), staged outputs, per-stage logs, and the lock file, ledger and catalog
 * updates after each stage; and `status`, which answers the same question
 * without running anything.
 *
 * State lives in .quern-run/ beside the pipeline file: <name>.flock (the
 * lock, holding the holder's pid, host and start time), journal/ (one entry
 * per stage running: its process group and where its previous outputs were
 * moved), stash/ (those outputs), logs/ (a log per stage run, each line
 * stamped with UTC time), cache (hcache.h), ledger.jsonl (ledger.h) and
 * catalog.sqlite (catalog.h). docs/run.md tells the whole story.
 */
#ifndef RN_EXEC_H
#define RN_EXEC_H

#include <stddef.h>

#include "pipeline.h"

enum rn_executor { RN_LOCAL, RN_SLURM };

struct rn_opts {
	int dry_run, force, keep_going, jobs;
	char **targets; /* stage names (or foreach base names); none: all */
	size_t ntargets;
	enum rn_executor executor;
	/* --executor slurm */
	int wait;	    /* wait for the jobs (polling squeue and the markers) */
	long array_width;   /* %W of --array; 0: no limit */
	char **sbatch_args; /* --slurm-partition ... and --sbatch-arg, as sbatch args */
	size_t nsbatch_args;
	const char *self; /* this program, absolute (the jobs run it) */
	const char *file; /* the pipeline file and params file as given */
	const char *params;
	/* quern-run _task (what a Slurm job runs) */
	const char *task_stage;
	long task_shard; /* a shard; -1: the whole stage (or, with task_final, the merge) */
	int task_final;
	const char *run_id;
};

/* quern-run run: returns the exit status (0, a failed stage's, 75, 1, ...). */
int rn_run(struct rn_pipeline *p, const struct rn_opts *o);

/*
 * quern-run _task: one Slurm job's work: one shard of a stage (writing its
 * marker), a sharded stage's merge and lock entry (task_final), or a whole
 * stage. The exit status.
 */
int rn_task(struct rn_pipeline *p, const struct rn_opts *o);

/* quern-run status: 0 up to date, 1 stale (or an error). */
int rn_status(struct rn_pipeline *p, const struct rn_opts *o);

/*
 * Marks in sel[] (p->n flags) the stages named by targets and everything
 * upstream of them (all stages when there are none). 0, or -1 after
 * printing which name matches no stage.
 */
int rn_select(const struct rn_pipeline *p, char **targets, size_t n, int *sel);

/* The state folder of a pipeline (.quern-run beside it): malloc'd. */
char *rn_state_dir(const struct rn_pipeline *p);

#endif
