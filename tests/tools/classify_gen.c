/*
 * classify_gen.c - a generated text classification task for the linear
 * classifier's tests and benchmark: K labels, each with its own topic
 * words, and documents that mix Zipf-distributed common words with a
 * fraction of their label's topic words (so the task is separable, and
 * harder the smaller the fraction).
 *
 *   classify_gen [-k LABELS] [-n DOCS] [-w WORDS] [-f FRACTION] [-V VOCAB]
 *                [-t TOPIC_WORDS] [-s SEED] [-F]
 *
 * Writes JSON Lines {"id","text","label"} to stdout (label "l<i>"), or
 * with -F fastText's format ("__label__l<i> text"). The same arguments
 * give the same bytes. Defaults: 4 labels, 1000 documents of 30 words,
 * fraction 0.15, 5000 common words, 40 topic words a label, seed 1.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng;

static uint64_t next(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double uniform(void)
{
	return (double)(next() >> 11) * 0x1p-53;
}

/* A pronounceable word for index i; prefix keeps the sets apart. */
static void word(char *out, const char *prefix, unsigned long i)
{
	static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou";
	size_t n = strlen(prefix);
	memcpy(out, prefix, n);
	do {
		out[n++] = cons[i % 14];
		i /= 14;
		out[n++] = vow[i % 5];
		i /= 5;
	} while (i);
	out[n] = 0;
}

int main(int argc, char **argv)
{
	long k = 4, docs = 1000, words = 30, vocab = 5000, topic = 40;
	double frac = 0.15;
	int ft = 0, c;
	rng = 1;
	while ((c = getopt(argc, argv, "k:n:w:f:V:t:s:F")) != -1) {
		switch (c) {
		case 'k':
			k = atol(optarg);
			break;
		case 'n':
			docs = atol(optarg);
			break;
		case 'w':
			words = atol(optarg);
			break;
		case 'f':
			frac = atof(optarg);
			break;
		case 'V':
			vocab = atol(optarg);
			break;
		case 't':
			topic = atol(optarg);
			break;
		case 's':
			rng = strtoull(optarg, NULL, 10);
			break;
		case 'F':
			ft = 1;
			break;
		default:
			fprintf(stderr, "usage: classify_gen [-k LABELS] [-n DOCS] [-w WORDS] "
					"[-f FRACTION] [-V VOCAB] [-t TOPIC] [-s SEED] [-F]\n");
			return 2;
		}
	}
	if (k < 1 || docs < 0 || words < 1 || vocab < 1 || topic < 1 || frac < 0 || frac > 1) {
		fprintf(stderr, "classify_gen: bad arguments\n");
		return 2;
	}
	/* Zipf(1) over the common words: cumulative weights for a binary search. */
	double *cdf = malloc((size_t)vocab * sizeof *cdf), s = 0;
	if (!cdf)
		return 1;
	for (long i = 0; i < vocab; i++)
		cdf[i] = (s += 1.0 / (double)(i + 1));
	char w[64];
	for (long d = 0; d < docs; d++) {
		long label = (long)(next() % (uint64_t)k);
		if (ft)
			printf("__label__l%ld ", label);
		else
			printf("{\"id\":\"d%ld\",\"text\":\"", d);
		for (long j = 0; j < words; j++) {
			if (uniform() < frac) {
				word(w, "t",
				     (unsigned long)(label * topic) +
					 (unsigned long)(next() % (uint64_t)topic));
			} else {
				double u = uniform() * s;
				long lo = 0, hi = vocab - 1;
				while (lo < hi) {
					long mid = (lo + hi) / 2;
					if (cdf[mid] < u)
						lo = mid + 1;
					else
						hi = mid;
				}
				word(w, "", (unsigned long)lo);
			}
			printf(j ? " %s" : "%s", w);
			if (j % 13 == 12)
				fputs(j + 1 < words ? " ." : "", stdout);
		}
		if (ft)
			printf("\n");
		else
			printf(" .\",\"label\":\"l%ld\"}\n", label);
	}
	free(cdf);
	return fflush(stdout) || ferror(stdout) ? 1 : 0;
}
