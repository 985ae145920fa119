/*
 * test_pool.c - lib/pool: results come out in submission order for every
 * thread count while jobs finish out of order (random sleeps), the window
 * bounds the jobs in flight, emit runs on the submitting thread, and a
 * non-zero emit result reaches submit and finish.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pool.h"

struct job {
	int idx;
	int sleep_us;
	int result;
};

struct ctx {
	pthread_t submitter;
	int next;            /* index emit expects next */
	int out_of_order;
	int wrong_thread;
	int wrong_result;
	int emitted;
	atomic_int emitted_atomic;
	atomic_int running;
	atomic_int max_running;
	atomic_int max_ahead; /* job index started minus jobs emitted */
	int fail_at;          /* emit returns fail_rc at this index, fail_rc2 after */
	int fail_rc, fail_rc2;
};

static void *work(void *jp, void *cp)
{
	struct job *j = jp;
	struct ctx *c = cp;
	int r = atomic_fetch_add(&c->running, 1) + 1;
	int m = atomic_load(&c->max_running);

	while (r > m && !atomic_compare_exchange_weak(&c->max_running, &m, r))
		;
	int ahead = j->idx - atomic_load(&c->emitted_atomic);
	int a = atomic_load(&c->max_ahead);
	while (ahead > a && !atomic_compare_exchange_weak(&c->max_ahead, &a, ahead))
		;
	usleep((useconds_t)j->sleep_us);
	j->result = j->idx * 3 + 1;
	atomic_fetch_sub(&c->running, 1);
	return j;
}

static int emit(void *rp, void *cp)
{
	struct job *j = rp;
	struct ctx *c = cp;

	if (!pthread_equal(pthread_self(), c->submitter))
		c->wrong_thread++;
	if (j->idx != c->next)
		c->out_of_order++;
	if (j->result != j->idx * 3 + 1)
		c->wrong_result++;
	c->next = j->idx + 1;
	c->emitted++;
	atomic_fetch_add(&c->emitted_atomic, 1);
	if (c->fail_at && j->idx == c->fail_at)
		return c->fail_rc;
	if (c->fail_at && j->idx > c->fail_at)
		return c->fail_rc2;
	return 0;
}

static void run(int threads, size_t window, int njobs, int max_sleep_us)
{
	struct job *jobs = calloc((size_t)njobs, sizeof *jobs);
	struct ctx c;
	char nm[160];
	int rc = 0;

	memset(&c, 0, sizeof c);
	c.submitter = pthread_self();
	for (int i = 0; i < njobs; i++) {
		jobs[i].idx = i;
		jobs[i].sleep_us = max_sleep_us ? rand() % max_sleep_us : 0;
	}
	struct qn_pool *p = qn_pool_new(threads, window, work, emit, &c);
	snprintf(nm, sizeof nm, "threads=%d window=%zu jobs=%d: ", threads, window, njobs);
	size_t l = strlen(nm);
	snprintf(nm + l, sizeof nm - l, "pool_new");
	CHECK_NAMED(nm, p != NULL);
	if (!p) {
		free(jobs);
		return;
	}
	for (int i = 0; i < njobs; i++)
		rc |= qn_pool_submit(p, &jobs[i]);
	rc |= qn_pool_finish(p);
	snprintf(nm + l, sizeof nm - l, "submit and finish return 0");
	CHECK_NAMED(nm, rc == 0);
	snprintf(nm + l, sizeof nm - l, "every job emitted once");
	CHECK_NAMED(nm, c.emitted == njobs);
	snprintf(nm + l, sizeof nm - l, "results in submission order");
	CHECK_NAMED(nm, c.out_of_order == 0);
	snprintf(nm + l, sizeof nm - l, "results belong to their jobs");
	CHECK_NAMED(nm, c.wrong_result == 0);
	snprintf(nm + l, sizeof nm - l, "emit on the submitting thread");
	CHECK_NAMED(nm, c.wrong_thread == 0);
	snprintf(nm + l, sizeof nm - l, "at most %d jobs run at once", threads < 1 ? 1 : threads);
	CHECK_NAMED(nm, atomic_load(&c.max_running) <= (threads < 1 ? 1 : threads));
	/* The pool widens a window below 2 x threads; allow for that. */
	size_t win = window < (size_t)(threads < 1 ? 1 : threads) * 2
			     ? (size_t)(threads < 1 ? 1 : threads) * 2
			     : window;
	snprintf(nm + l, sizeof nm - l, "no job starts more than window ahead of emit");
	CHECK_NAMED(nm, (size_t)atomic_load(&c.max_ahead) <= win);
	if (threads > 1 && max_sleep_us) {
		snprintf(nm + l, sizeof nm - l, "jobs actually ran in parallel");
		CHECK_NAMED(nm, atomic_load(&c.max_running) > 1);
	}
	qn_pool_free(p);
	free(jobs);
}

static void test_emit_rc(int threads)
{
	enum { N = 60 };
	struct job jobs[N];
	struct ctx c;
	char nm[120];
	int first_nonzero_at = -1, rc;

	memset(&c, 0, sizeof c);
	c.submitter = pthread_self();
	c.fail_at = 10;
	c.fail_rc = 7;
	c.fail_rc2 = 9;
	for (int i = 0; i < N; i++) {
		jobs[i].idx = i;
		jobs[i].sleep_us = rand() % 300;
	}
	struct qn_pool *p = qn_pool_new(threads, 4, work, emit, &c);
	for (int i = 0; i < N; i++) {
		rc = qn_pool_submit(p, &jobs[i]);
		if (rc && first_nonzero_at < 0)
			first_nonzero_at = i;
		if (rc && rc != 7)
			first_nonzero_at = 1000; /* a later code must not replace the first */
	}
	rc = qn_pool_finish(p);
	snprintf(nm, sizeof nm, "threads=%d: finish returns the first non-zero emit result", threads);
	CHECK_NAMED(nm, rc == 7);
	snprintf(nm, sizeof nm, "threads=%d: submit reports it once it is seen", threads);
	CHECK_NAMED(nm, first_nonzero_at >= 10 && first_nonzero_at < N);
	snprintf(nm, sizeof nm, "threads=%d: all jobs still emitted, in order", threads);
	CHECK_NAMED(nm, c.emitted == N && c.out_of_order == 0);
	snprintf(nm, sizeof nm, "threads=%d: finish twice keeps the result", threads);
	CHECK_NAMED(nm, qn_pool_finish(p) == 7);
	qn_pool_free(p);
}

int main(void)
{
	srand(4242);
	run(1, 8, 200, 300);
	run(0, 8, 50, 0); /* threads < 1 means inline */
	run(2, 5, 200, 1500);
	run(4, 3, 300, 1500); /* window below 2 x threads */
	run(4, 16, 400, 800);
	run(8, 10, 2000, 0); /* no sleeps: contention on the queue */
	run(3, 1000, 100, 500); /* window larger than the job count */
	test_emit_rc(1);
	test_emit_rc(4);

	/* A pool with no jobs finishes at once; free without finish is fine. */
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.submitter = pthread_self();
	struct qn_pool *p = qn_pool_new(4, 8, work, emit, &c);
	CHECK_NAMED("empty pool finishes with 0", p && qn_pool_finish(p) == 0 && c.emitted == 0);
	qn_pool_free(p);
	struct job js[5] = {{0, 100, 0}, {1, 0, 0}, {2, 50, 0}, {3, 0, 0}, {4, 0, 0}};
	p = qn_pool_new(2, 4, work, emit, &c);
	for (int i = 0; i < 5; i++)
		qn_pool_submit(p, &js[i]);
	qn_pool_free(p); /* emits what is left */
	CHECK_NAMED("free without finish emits every job in order",
		    c.emitted == 5 && c.out_of_order == 0);
	qn_pool_free(NULL);

	int n = qn_ncpu();
	CHECK_NAMED("ncpu >= 1", n >= 1);
	CHECK_NAMED("ncpu matches sysconf", n == (int)sysconf(_SC_NPROCESSORS_ONLN));
	return CHECK_DONE();
}
