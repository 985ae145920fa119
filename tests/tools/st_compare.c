/*
 * st_compare.c - compares what `quern-train check` wrote with the PyTorch
 * reference's tests/fixtures/gpt2/expected.safetensors.
 *
 *   st_compare [--steps] GOT.safetensors EXPECTED.safetensors
 *
 * One "PASS: what" or "FAIL: what (max abs diff X, limit Y)" line a check
 * (tests/run.sh counts them), a detail line under a failure:
 *   logits     max abs diff <= 1e-5
 *   loss       abs diff <= 1e-6
 *   grads.*    every one in EXPECTED, present in GOT with the same shape,
 *              max abs diff <= 1e-5 * max|expected tensor|
 *   losses     when both files have it: each step's loss within 2e-5
 *              (with --steps GOT and EXPECTED must have it)
 *   params.*   with --steps only: every one in EXPECTED, max abs diff
 *              <= 1e-5 * max(1, max|expected tensor|)
 * The limits are those of float32 arithmetic done in another order; the
 * reference is 1e-7 (logits) to 3e-6 (params after AdamW) from float64
 * (tests/fixtures/gpt2/README.md). Exit 0 when every check passes, 1
 * otherwise (or when a file cannot be read), 2 on a usage error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "safetensors.h"

static int failures;

struct diff {
	double max;    /* max |got - want|, INFINITY when one is not finite */
	double maxref; /* max |want| */
	size_t worst;  /* index of max */
	float got, want;
};

static void shape_str(const struct qn_st_tensor *t, char *out, size_t n)
{
	size_t k = 0;

	k += (size_t)snprintf(out + k, n - k, "[");
	for (int i = 0; i < t->ndim && k < n; i++)
		k += (size_t)snprintf(out + k, n - k, "%s%llu", i ? "," : "",
				      (unsigned long long)t->shape[i]);
	if (k < n)
		snprintf(out + k, n - k, "]");
}

static float *read_all(struct qn_st *st, const struct qn_st_tensor *t)
{
	struct qn_err e;
	float *p = malloc((t->numel ? t->numel : 1) * sizeof *p);

	if (!p) {
		fprintf(stderr, "st_compare: out of memory\n");
		exit(1);
	}
	if (qn_st_read_f32(st, t, p, t->numel, &e) < 0) {
		fprintf(stderr, "st_compare: %s\n", e.msg);
		exit(1);
	}
	return p;
}

static int same_shape(const struct qn_st_tensor *a, const struct qn_st_tensor *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return 1;
}

/*
 * Finds name in both files and measures the difference. 0 when it could be
 * measured; otherwise prints the FAIL line and returns -1.
 */
static int measure(struct qn_st *got, struct qn_st *want, const char *name, struct diff *d)
{
	const struct qn_st_tensor *tg = qn_st_find(got, name), *tw = qn_st_find(want, name);
	char sg[128], sw[128];

	if (!tw) {
		printf("FAIL: %s (not in %s)\n", name, qn_st_name(want));
		failures++;
		return -1;
	}
	if (!tg) {
		printf("FAIL: %s (not in %s)\n", name, qn_st_name(got));
		failures++;
		return -1;
	}
	if (!same_shape(tg, tw)) {
		shape_str(tg, sg, sizeof sg);
		shape_str(tw, sw, sizeof sw);
		printf("FAIL: %s (shape %s, want %s)\n", name, sg, sw);
		failures++;
		return -1;
	}
	float *g = read_all(got, tg), *w = read_all(want, tw);
	memset(d, 0, sizeof *d);
	for (size_t i = 0; i < tw->numel; i++) {
		double x = fabs((double)g[i] - (double)w[i]);
		if (!isfinite(g[i]) || !isfinite(w[i]))
			x = INFINITY;
		if (x > d->max) {
			d->max = x;
			d->worst = i;
			d->got = g[i];
			d->want = w[i];
		}
		if (fabs((double)w[i]) > d->maxref)
			d->maxref = fabs((double)w[i]);
	}
	free(g);
	free(w);
	return 0;
}

static void verdict(const char *what, const struct diff *d, double limit)
{
	if (d->max <= limit) {
		printf("PASS: %s\n", what);
		return;
	}
	printf("FAIL: %s (max abs diff %.3g, limit %.3g)\n", what, d->max, limit);
	printf("  worst element [%zu]: got %.9g, want %.9g\n", d->worst, (double)d->got,
	       (double)d->want);
	failures++;
}

/* Checks name with limit abs + rel * max|expected| (rel_floor: at least 1). */
static void compare(struct qn_st *got, struct qn_st *want, const char *name, double abs_limit,
		    double rel, int rel_floor)
{
	struct diff d;

	if (measure(got, want, name, &d) < 0)
		return;
	double scale = rel_floor && d.maxref < 1 ? 1 : d.maxref;
	verdict(name, &d, abs_limit + rel * scale);
}

static void compare_losses(struct qn_st *got, struct qn_st *want)
{
	const struct qn_st_tensor *tg = qn_st_find(got, "losses"), *tw = qn_st_find(want, "losses");

	if (!tg || !tw || tg->numel != tw->numel) {
		struct diff d;
		measure(got, want, "losses", &d); /* prints the FAIL line */
		return;
	}
	float *g = read_all(got, tg), *w = read_all(want, tw);
	for (size_t i = 0; i < tw->numel; i++) {
		char what[64];
		struct diff d = {fabs((double)g[i] - (double)w[i]), fabs((double)w[i]), i, g[i],
				 w[i]};
		if (!isfinite(g[i]))
			d.max = INFINITY;
		snprintf(what, sizeof what, "losses[%zu] (step %zu)", i, i + 1);
		verdict(what, &d, 2e-5);
	}
	free(g);
	free(w);
}

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

int main(int argc, char **argv)
{
	struct qn_err e;
	int steps = 0, i = 1;

	if (i < argc && strcmp(argv[i], "--steps") == 0) {
		steps = 1;
		i++;
	}
	if (argc - i != 2) {
		fprintf(stderr,
			"usage: st_compare [--steps] GOT.safetensors EXPECTED.safetensors\n");
		return 2;
	}
	struct qn_st *got = qn_st_open(argv[i], &e);
	if (!got) {
		fprintf(stderr, "st_compare: %s\n", e.msg);
		return 1;
	}
	struct qn_st *want = qn_st_open(argv[i + 1], &e);
	if (!want) {
		fprintf(stderr, "st_compare: %s\n", e.msg);
		qn_st_close(got);
		return 1;
	}

	compare(got, want, "logits", 1e-5, 0, 0);
	compare(got, want, "loss", 1e-6, 0, 0);
	size_t ngrads = 0, nparams = 0;
	for (size_t k = 0; k < qn_st_count(want); k++) {
		const char *name = qn_st_at(want, k)->name;
		if (has_prefix(name, "grads.")) {
			compare(got, want, name, 0, 1e-5, 0);
			ngrads++;
		}
	}
	if (ngrads == 0) {
		printf("FAIL: grads.* (none in %s)\n", qn_st_name(want));
		failures++;
	}
	if (steps || (qn_st_find(want, "losses") && qn_st_find(got, "losses")))
		compare_losses(got, want);
	if (steps) {
		for (size_t k = 0; k < qn_st_count(want); k++) {
			const char *name = qn_st_at(want, k)->name;
			if (has_prefix(name, "params.")) {
				compare(got, want, name, 0, 1e-5, 1);
				nparams++;
			}
		}
		if (nparams == 0) {
			printf("FAIL: params.* (none in %s)\n", qn_st_name(want));
			failures++;
		}
	}

	qn_st_close(got);
	qn_st_close(want);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "st_compare: cannot write output\n");
		return 1;
	}
	return failures ? 1 : 0;
}
