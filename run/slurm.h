/*
 * slurm.h - the two things quern-run asks of Slurm: submit a batch script
 * (sbatch --parsable) and tell which of its jobs are still queued or
 * running (squeue). Nothing here reads Slurm's accounting database: what
 * a job did is told by the completion markers it writes (exec.c).
 *
 * Ownership: the caller owns everything it passes; rn_sbatch returns a
 * job id, rn_slurm_active a count.
 */
#ifndef RN_SLURM_H
#define RN_SLURM_H

#include <stddef.h>
#include <stdio.h>

struct qn_err;

struct rn_sbatch {
	const char *name;	/* --job-name */
	const char *script;	/* the batch script */
	const char *output;	/* --output (with %a for an array task) */
	const char *array;	/* --array=..., or NULL */
	const char *dependency; /* --dependency=..., or NULL */
	char **args;		/* more sbatch arguments (options: partition, ...) */
	size_t nargs;
};

/* Submits the script: the job id, or -1 with e filled (sbatch's message). */
long rn_sbatch(const struct rn_sbatch *b, struct qn_err *e);

/* How many of the jobs ids[] are still pending or running; -1 on error. */
long rn_slurm_active(const long *ids, size_t n, struct qn_err *e);

/* Writes s single-quoted for /bin/sh to f. */

void rn_sh_quote(FILE *f, const char *s);

#endif
