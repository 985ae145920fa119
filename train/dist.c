/*
 * dist.c - data-parallel training for quern-train under MPI (see dist.h).
 *
 * With QN_MPI (make MPI=1) this is a thin layer over MPI_COMM_WORLD; without
 * it, every function is the one-process case and no MPI header is needed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dist.h"
#include "gpt2.h"
#include "hash.h"

#ifdef QN_MPI

#include <mpi.h>
#include <sched.h>
#include <unistd.h>

static int g_on; /* MPI_Init was called */
static int g_rank, g_size = 1, g_local = 1;
static char g_prog[64];

/* Set by Open MPI's mpirun, by a PMIx launcher (srun --mpi=pmix), by MPICH's hydra. */
static int launched(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int qn_dist_init(int *argc, char ***argv)
{
	int provided;
	if (!launched())
		return 0;
	/* OpenMP threads compute; only the main thread calls MPI. */
	if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
		qn_error("cannot start MPI");
		return -1;
	}
	g_on = 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &g_size);
	MPI_Comm local;
	MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
	MPI_Comm_size(local, &g_local);
	MPI_Comm_free(&local);
	if (g_rank > 0) {
		snprintf(g_prog, sizeof g_prog, "%s[%d]", qn_prog, g_rank);
		qn_prog = g_prog;
	}
	return 0;
}

int qn_dist_end(int rc)
{
	if (!g_on)
		return rc;
	if (rc == QN_EXIT_OK || rc == QN_EXIT_USAGE || rc == 128 + SIGINT || rc == 128 + SIGTERM)
		MPI_Finalize();
	else
		MPI_Abort(MPI_COMM_WORLD, rc);
	return rc;
}

int qn_dist_rank(void)
{
	return g_rank;
}

int qn_dist_size(void)
{
	return g_size;
}

int qn_dist_running(void)
{
	return g_on;
}

void qn_dist_sum(double *v, size_t n)
{
	if (g_size > 1)
		MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int qn_dist_max(int v)
{
	if (g_size > 1)
		MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	return v;
}

int qn_dist_same(uint64_t v)
{
	uint64_t lo = v, hi = v;
	if (g_size > 1) {
		MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
		MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
	}
	return lo == hi;
}

/*
 * In pieces of at most 16M floats: MPI counts are ints, and the library's
 * scratch for a large in-place reduction grows with the message.
 */
static void sum_floats(float *p, size_t n)
{
	const size_t piece = (size_t)1 << 24;
	for (size_t i = 0; i < n; i += piece) {
		size_t k = n - i < piece ? n - i : piece;
		MPI_Allreduce(MPI_IN_PLACE, p + i, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
	}
}

void qn_dist_sum_grads(struct qn_gpt2 *m)
{
	if (g_size == 1)
		return;
	/* Runs [a, b) of adjacent trainable tensors: one when nothing is frozen. */
	size_t a = 0, b = 0;
	for (size_t i = 0; m->grads && i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		if (qn_gpt2_is_frozen(m, i))
			continue;
		if (t->offset != b) {
			if (b > a)
				sum_floats(m->grads + a, b - a);
			a = t->offset;
		}
		b = t->offset + t->numel;
	}
	if (b > a)
		sum_floats(m->grads + a, b - a);
	if (m->lora && m->lora->grads)
		sum_floats(m->lora->grads, m->lora->nparams);
}

int qn_dist_in_sync(const struct qn_gpt2 *m)
{
	if (g_size == 1)
		return 1;
	uint64_t h = qn_xxh3_64(m->params, m->nparams * sizeof(float), 0);
	if (m->lora)
		h = qn_xxh3_64(m->lora->params, m->lora->nparams * sizeof(float), h);
	return qn_dist_same(h);
}

void qn_dist_check_threads(int threads)
{
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (!g_on)
		return;
	if (!sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) < threads)
		qn_warn("rank 0 may run on %d CPU%s but has %d threads: start mpirun with "
			"--bind-to none (or --map-by slot:PE=%d)",
			CPU_COUNT(&set), CPU_COUNT(&set) == 1 ? "" : "s", threads, threads);
	else if (ncpu > 0 && (long)g_local * threads > ncpu)
		qn_warn("%d ranks on this host with %d threads each outnumber its %ld CPUs: "
			"set -j to at most %ld",
			g_local, threads, ncpu, ncpu / g_local > 0 ? ncpu / g_local : 1);
}

#else /* one process */

int qn_dist_init(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int qn_dist_end(int rc)
{
	return rc;
}

int qn_dist_rank(void)
{
	return 0;
}

int qn_dist_size(void)
{
	return 1;
}

int qn_dist_running(void)
{
	return 0;
}

void qn_dist_sum(double *v, size_t n)
{
	(void)v;
	(void)n;
}

int qn_dist_max(int v)
{
	return v;
}

int qn_dist_same(uint64_t v)
{
	(void)v;
	return 1;
}

void qn_dist_sum_grads(struct qn_gpt2 *m)
{
	(void)m;
}

int qn_dist_in_sync(const struct qn_gpt2 *m)
{
	(void)m;
	return 1;
}

void qn_dist_check_threads(int threads)
{
	(void)threads;
}

#endif
