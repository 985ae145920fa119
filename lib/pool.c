/* pool.c - see pool.h. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

enum { S_QUEUED, S_DONE };

struct slot {
	void *job;
	void *result;
	int state;
};

struct qn_pool {
	int nthreads;
	size_t window;
	qn_pool_work_fn work;
	qn_pool_emit_fn emit;
	void *ctx;
	struct slot *slots;
	size_t head, take, tail; /* sequence numbers: emit <= take <= submit */
	int stop;
	int rc;
	pthread_mutex_t mu;
	pthread_cond_t work_cv, done_cv;
	pthread_t *threads;
	int started;
};

int qn_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

static void *worker(void *arg)
{
	struct qn_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->take == p->tail && !p->stop)
			pthread_cond_wait(&p->work_cv, &p->mu);
		if (p->take == p->tail)
			break;
		struct slot *s = &p->slots[p->take % p->window];
		p->take++;
		pthread_mutex_unlock(&p->mu);
		void *r = p->work(s->job, p->ctx);
		pthread_mutex_lock(&p->mu);
		s->result = r;
		s->state = S_DONE;
		pthread_cond_broadcast(&p->done_cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct qn_pool *qn_pool_new(int threads, size_t window, qn_pool_work_fn work,
			    qn_pool_emit_fn emit, void *ctx)
{
	struct qn_pool *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->nthreads = threads < 1 ? 1 : threads;
	p->window = window < (size_t)p->nthreads * 2 ? (size_t)p->nthreads * 2 : window;
	p->work = work;
	p->emit = emit;
	p->ctx = ctx;
	if (p->nthreads == 1)
		return p;
	p->slots = calloc(p->window, sizeof *p->slots);
	p->threads = calloc((size_t)p->nthreads, sizeof *p->threads);
	if (!p->slots || !p->threads) {
		qn_pool_free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	for (int i = 0; i < p->nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->started++;
	}
	if (!p->started) {
		qn_pool_free(p);
		return NULL;
	}
	return p;
}

/* Emits finished results at the head; with wait, blocks for one. Lock held. */
static void drain(struct qn_pool *p, int wait)
{
	while (p->head < p->tail) {
		struct slot *s = &p->slots[p->head % p->window];
		if (s->state != S_DONE) {
			if (!wait)
				return;
			pthread_cond_wait(&p->done_cv, &p->mu);
			continue;
		}
		void *r = s->result;
		p->head++;
		pthread_mutex_unlock(&p->mu);
		int rc = p->emit(r, p->ctx);
		pthread_mutex_lock(&p->mu);
		if (rc && !p->rc)
			p->rc = rc;
		wait = 0;
	}
}

int qn_pool_submit(struct qn_pool *p, void *job)
{
	if (p->nthreads == 1) {
		int rc = p->emit(p->work(job, p->ctx), p->ctx);
		if (rc && !p->rc)
			p->rc = rc;
		return p->rc;
	}
	pthread_mutex_lock(&p->mu);
	while (p->tail - p->head >= p->window)
		drain(p, 1);
	struct slot *s = &p->slots[p->tail % p->window];
	s->job = job;
	s->result = NULL;
	s->state = S_QUEUED;
	p->tail++;
	pthread_cond_signal(&p->work_cv);
	drain(p, 0);
	int rc = p->rc;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int qn_pool_finish(struct qn_pool *p)
{
	if (p->nthreads == 1 || !p->started)
		return p->rc;
	pthread_mutex_lock(&p->mu);
	while (p->head < p->tail)
		drain(p, 1);
	p->stop = 1;
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	p->started = 0;
	return p->rc;
}

void qn_pool_free(struct qn_pool *p)
{
	if (!p)
		return;
	if (p->started)
		qn_pool_finish(p);
	if (p->slots) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->work_cv);
		pthread_cond_destroy(&p->done_cv);
	}
	free(p->slots);
	free(p->threads);
	free(p);
}
