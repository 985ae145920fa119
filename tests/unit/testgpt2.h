/*
 * testgpt2.h - what test_gpt2.c and test_lora.c share: the random helpers
 * of testrng.h, random token ids, float-array copies and differences,
 * tiny(), the small GPT-2 both tests check numerically, and the gradient
 * check against finite differences (ref_loss, central, grad_samples).
 *
 * Ownership: copy_floats returns memory from malloc that the caller frees;
 * tiny returns a model that the caller frees with qn_gpt2_free (NULL, after
 * printing why, when it cannot be made). tiny reseeds rng_state and
 * grad_samples draws from it; central puts back the parameter it moves,
 * and struct batch borrows its pointers. Everything is static (and inline,
 * so that a test using only some of the helpers compiles without
 * unused-function warnings).
 */
#ifndef QN_TESTGPT2_H
#define QN_TESTGPT2_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "gpt2.h"
#include "testrng.h"

/* n random token ids below V. */
static inline void random_tokens(uint32_t *x, size_t n, uint32_t V)
{
	for (size_t i = 0; i < n; i++)
		x[i] = below(V);
}

/* A malloc'd copy of p[0..n). */
static inline float *copy_floats(const float *p, size_t n)
{
	float *c = malloc(n * sizeof *c);
	memcpy(c, p, n * sizeof *c);
	return c;
}

/* The largest |a[i] - b[i]|, in double. */
static inline double max_diff(const float *a, const float *b, size_t n)
{
	double d = 0;
	for (size_t i = 0; i < n; i++)
		d = fmax(d, fabs((double)a[i] - b[i]));
	return d;
}

/*
 * A model of L layers, H heads, width C, P positions, V tokens and an MLP
 * of F (0: 4C), at one thread, with GPT-2's init from seed and then changed
 * from it: LayerNorm weights away from 1 and biases away from 0, so their
 * gradients are not those of an identity; the matrices 10x GPT-2's scale,
 * so that signals (and every gradient) in a model this narrow stand well
 * above float32 rounding.
 */
static inline struct qn_gpt2 *tiny(int L, int H, int C, int P, int V, int F, uint64_t seed)
{
	struct qn_gpt2_config c;
	struct qn_err e;

	qn_gpt2_config_default(&c);
	c.n_layer = L;
	c.n_head = H;
	c.n_embd = C;
	c.n_positions = P;
	c.vocab_size = V;
	c.n_inner = F;
	struct qn_gpt2 *m = qn_gpt2_new(&c, &e);
	if (!m) {
		printf("  qn_gpt2_new: %s\n", e.msg);
		return NULL;
	}
	qn_gpt2_set_threads(m, 1);
	qn_gpt2_init_weights(m, seed);
	rng_state = seed * 2654435761u + 1;
	for (size_t i = 0; i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		float *p = m->params + t->offset;
		for (size_t j = 0; j < t->numel; j++)
			p[j] = t->ndim == 2 ? 10 * p[j] : p[j] + (float)(0.2 * normal());
	}
	return m;
}

/*
 * The loss of logits (N, V) worked out in double: over the rows mask keeps
 * (all when NULL), divided by denom (the rows kept when 0).
 */
static inline double ref_loss(const float *logits, const uint32_t *targets, const uint8_t *mask,
			      double denom, size_t N, size_t V)
{
	double sum = 0;
	size_t n = 0;
	for (size_t r = 0; r < N; r++) {
		if (mask && !mask[r])
			continue;
		const float *row = logits + r * V;
		double mx = row[0], s = 0;
		for (size_t j = 1; j < V; j++)
			mx = row[j] > mx ? row[j] : mx;
		for (size_t j = 0; j < V; j++)
			s += exp(row[j] - mx);
		sum += log(s) + mx - row[targets[r]];
		n++;
	}
	return sum / (denom > 0 ? denom : (double)n);
}

/* A training state and the batch whose loss a finite difference takes. */
struct batch {
	struct qn_gpt2_train *t;
	const uint32_t *in, *tg;
	const uint8_t *mask;
	double denom;
	int B, T;
};

/* (loss(*p + h) - loss(*p - h)) / 2h, h as rounded to float. */
static inline double central(const struct batch *b, float *p, double h)
{
	float save = *p, hi = save + (float)h, lo = save - (float)h;
	*p = hi;
	double lp = qn_gpt2_forward(b->t, b->in, b->tg, b->mask, b->denom, b->B, b->T, NULL, NULL);
	*p = lo;
	double lm = qn_gpt2_forward(b->t, b->in, b->tg, b->mask, b->denom, b->B, b->T, NULL, NULL);
	*p = save;
	return (lp - lm) / ((double)hi - (double)lo);
}

/*
 * Compares the gradient g of a sample of every tensor in tens (its largest
 * entry and nsample at random) over params with finite differences of the
 * loss, one check "grad NAME: TENSOR" a tensor. The loss is float32, so a
 * central difference is float32 rounding (about 1e-7 of the loss) over 2h
 * plus a truncation term in h^2; a Richardson step over h = 4e-2 and 2e-2
 * removes the h^2 term and keeps the rounding part small, leaving the worst
 * sample about 3x inside the tolerance (plain central differences at 1e-2
 * come within 1.5x of it).
 */
static inline void grad_samples(const char *name, const struct batch *b, float *params,
				const float *g, const struct qn_gpt2_tensor *tens, size_t ntens,
				int nsample)
{
	const double eps = 4e-2, tol = 1e-2, floor_ = 1e-3;
	char label[256];
	for (size_t k = 0; k < ntens; k++) {
		const struct qn_gpt2_tensor *ten = tens + k;
		size_t idx[16], ni = 0, amax = 0;
		for (size_t j = 1; j < ten->numel; j++)
			if (fabsf(g[ten->offset + j]) > fabsf(g[ten->offset + amax]))
				amax = j;
		idx[ni++] = amax;
		for (int s = 0; s < nsample && ni < 16; s++)
			idx[ni++] = below((uint32_t)ten->numel);
		double worst = 0, wg = 0, wfd = 0;
		size_t wj = 0;
		for (size_t i = 0; i < ni; i++) {
			size_t j = ten->offset + idx[i];
			double fd =
			    (4 * central(b, params + j, eps / 2) - central(b, params + j, eps)) / 3;
			double err = fabs(g[j] - fd) / fmax(fabs(fd), floor_);
			if (err >= worst) {
				worst = err;
				wg = g[j];
				wfd = fd;
				wj = idx[i];
			}
		}
		snprintf(label, sizeof label, "grad %s: %s", name, ten->name);
		CHECK_NAMED(label, worst <= tol);
		if (worst > tol)
			printf("  element %zu: backward %.8g, finite difference %.8g\n", wj, wg,
			       wfd);
	}
}

#endif
