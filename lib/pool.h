/*
 * pool.h - a small thread pool whose results come out in submission order.
 *
 * Jobs run on N worker threads; results are handed to the emit callback in
 * the order the jobs were submitted, always on the submitting thread, so
 * output is byte-identical for every thread count. At most `window` jobs
 * are in flight: submit blocks (emitting finished results) when the window is
 * full, which bounds memory. With threads <= 1 everything runs inline.
 *
 * The pool is owned by the caller: qn_pool_new / qn_pool_free.
 */
#ifndef QN_POOL_H
#define QN_POOL_H

#include <stddef.h>

typedef void *(*qn_pool_work_fn)(void *job, void *ctx);
/* Returns 0 to go on; a non-zero value is remembered and returned by finish. */
typedef int (*qn_pool_emit_fn)(void *result, void *ctx);

struct qn_pool;

struct qn_pool *qn_pool_new(int threads, size_t window, qn_pool_work_fn work,
			    qn_pool_emit_fn emit, void *ctx);
/* Queues a job; returns the first non-zero emit result seen so far. */
int qn_pool_submit(struct qn_pool *p, void *job);
/* Waits for every job, emits the rest, stops the workers. */
int qn_pool_finish(struct qn_pool *p);
void qn_pool_free(struct qn_pool *p);

/* Number of online CPUs (at least 1). */
int qn_ncpu(void);

#endif
