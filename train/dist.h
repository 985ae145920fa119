/*
 * dist.h - data-parallel training for quern-train under MPI.
 *
 * `mpirun -np W quern-train fit ...` runs W copies (ranks) of the same
 * training loop over the same deterministic data stream: a step's
 * micro-batches are W x accum consecutive windows of it, and rank r trains
 * windows r, r + W, r + 2W, ... Every rank reads every window (reading is
 * cheap next to a forward pass) so that the stream position, the mixer's
 * state and the step's count of trained targets are the same on every rank
 * without a message. After the backward passes the gradients are summed
 * over the ranks in place (MPI_Allreduce, float), and since each rank's
 * loss was divided by the step's trained targets across all ranks, the sum
 * is the gradient of W ranks' whole batch: the step of one process with
 * W x accum micro-batches. Clipping and AdamW then run on identical
 * gradients on every rank, so the weights stay identical without being
 * sent; rank 0 alone writes files.
 *
 * Built without QN_MPI (the default build), or run without an MPI launcher,
 * every function here is the one-process case: rank 0 of 1, sums of one.
 * Nothing here allocates what the caller frees.
 */
#ifndef QN_TRAIN_DIST_H
#define QN_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

struct qn_gpt2;

/*
 * MPI_Init when an MPI launcher (mpirun, srun) started this process; a
 * process started otherwise stays one process, without MPI. Ranks other
 * than 0 get the program name "PROG[RANK]", so that their errors say whose
 * they are. 0, or -1 after a message.
 */
int qn_dist_init(int *argc, char ***argv);
/*
 * Ends MPI and returns rc. Exits that every rank takes together (0, usage
 * errors, a stop by SIGINT or SIGTERM, which the ranks agree on) finalize;
 * any other failure calls MPI_Abort(rc), so that no rank waits forever in a
 * collective for one that gave up.
 */
int qn_dist_end(int rc);
int qn_dist_rank(void);
int qn_dist_size(void);
/* Whether MPI was started: a launcher started this process, even as 1 rank. */
int qn_dist_running(void);

/* v[0..n) summed over all ranks, in place. */
void qn_dist_sum(double *v, size_t n);
/* The largest v of all ranks (a stop signal any rank got). */
int qn_dist_max(int v);
/* 1 when every rank passed the same v. */
int qn_dist_same(uint64_t v);
/*
 * The trainable parts of m->grads (frozen tensors' pages are never
 * touched) and the adapter's gradients, summed over all ranks in place.
 */
void qn_dist_sum_grads(struct qn_gpt2 *m);
/* 1 when every rank holds the same weights (a hash of them, compared). */
int qn_dist_in_sync(const struct qn_gpt2 *m);
/*
 * Warns (rank 0) when this rank's threads outnumber the CPUs it may run
 * on (mpirun binds a rank to one core by default) or when the ranks on
 * this host times threads outnumber its CPUs.
 */
void qn_dist_check_threads(int threads);

#endif
