/*
 * sgemm_rate.c - OpenBLAS single-precision matrix multiply rate, the
 * ceiling that bench/train.sh holds quern-train's and PyTorch's achieved
 * GFLOP/s against.
 *
 *   sgemm_rate M N K [SECONDS] [THREADS]
 *
 * Times C = A B (row-major, A M x K, B K x N, no transposes, beta 0) with
 * cblas_sgemm on THREADS OpenBLAS threads (default 1) for about SECONDS
 * (default 1.5; at least 5 calls after one untimed warm-up call) and
 * prints one JSON line:
 *
 *   {"m":M,"n":N,"k":K,"threads":T,"gflops":G}
 *
 * where G = 2 M N K / the median call time / 1e9. The median, not the best
 * or the mean, because the bench machines are shared and noisy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#define MIN_CALLS 5
#define MAX_DIM 65536

static void usage(void)
{
	fprintf(stderr, "usage: sgemm_rate M N K [SECONDS] [THREADS]\n");
	exit(2);
}

static long parse_long(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "sgemm_rate: bad number '%s' (%ld to %ld)\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static float *random_matrix(size_t n, unsigned *seed)
{
	float *p = malloc(n * sizeof *p);
	if (!p) {
		fprintf(stderr, "sgemm_rate: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1664525u + 1013904223u;
		p[i] = (float)(*seed >> 8) / (1 << 24) - 0.5f;
	}
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 6)
		usage();
	int m = (int)parse_long(argv[1], 1, MAX_DIM);
	int n = (int)parse_long(argv[2], 1, MAX_DIM);
	int k = (int)parse_long(argv[3], 1, MAX_DIM);
	double seconds = 1.5;
	if (argc > 4) {
		char *end;
		seconds = strtod(argv[4], &end);
		if (end == argv[4] || *end || !(seconds > 0 && seconds <= 3600)) {
			fprintf(stderr, "sgemm_rate: bad seconds '%s'\n", argv[4]);
			exit(2);
		}
	}
	int threads = argc > 5 ? (int)parse_long(argv[5], 1, 1024) : 1;
	openblas_set_num_threads(threads);

	unsigned seed = 1;
	float *a = random_matrix((size_t)m * k, &seed);
	float *b = random_matrix((size_t)k * n, &seed);
	float *c = random_matrix((size_t)m * n, &seed);

	/* One untimed call: page faults, OpenBLAS thread start-up. */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c,
		    n);
	size_t cap = 64, calls = 0;
	double *t = malloc(cap * sizeof *t);
	double start = now();
	while (t && (calls < MIN_CALLS || now() - start < seconds)) {
		if (calls == cap)
			t = realloc(t, (cap *= 2) * sizeof *t);
		if (!t)
			break;
		double t0 = now();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n,
			    0.0f, c, n);
		t[calls++] = now() - t0;
	}
	if (!t) {
		fprintf(stderr, "sgemm_rate: out of memory\n");
		return 1;
	}
	qsort(t, calls, sizeof *t, cmp_double);
	double med = calls % 2 ? t[calls / 2] : (t[calls / 2 - 1] + t[calls / 2]) / 2;
	printf("{\"m\":%d,\"n\":%d,\"k\":%d,\"threads\":%d,\"gflops\":%.2f}\n", m, n, k, threads,
	       2.0 * m * n * k / med / 1e9);
	free(t);
	free(a);
	free(b);
	free(c);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "sgemm_rate: cannot write: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
