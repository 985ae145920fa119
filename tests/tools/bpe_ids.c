/*
 * bpe_ids.c - the quern side of the byte-exact tokenizer test: encodes a
 * corpus with lib/bpe and writes the ids, or compares them with tiktoken's.
 *
 *   bpe_ids [-a] [-t] [-H] [-B] [-n N] [-c EXPECTED] TOKENIZER ENCODING CORPUS
 *
 * TOKENIZER is a .tiktoken rank file of the named ENCODING (r50k_base,
 * cl100k_base, o200k_base), or a tokenizer.json with ENCODING "hf". CORPUS
 * has one JSON string a line (gen_tokcorpus). Without -c the ids go to
 * stdout, one document a line, separated by spaces. With -c the ids are
 * compared with EXPECTED (the same layout, from tiktoken_ids.mjs) and one
 * "PASS: ..." or "FAIL: ..." line says how many documents differ; the first
 * difference is shown with its document, piece and both id lists. -c also
 * checks decode(encode(x)) == x for every document (a FAIL of its own).
 *   -a  special-token text becomes the special token (QN_BPE_ALLOW_SPECIAL)
 *   -t  print documents, bytes, encode seconds and MB/s to stderr (one thread;
 *       wall clock, then the thread's CPU time, which a busy machine disturbs less)
 *   -n N  encode the corpus N times and report the fastest (with -t)
 *   -H  merge every piece with the heap (QN_BPE_HEAP_ONLY)
 *   -B  merge every piece with the rank buckets (QN_BPE_BUCKETS_ONLY)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bpe.h"
#include "buf.h"
#include "err.h"

struct text {
	char *p;
	size_t n;
};

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct qn_buf b;

	if (!f)
		return NULL;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (;;) {
		if (qn_buf_grow(&b, 1 << 20) < 0)
			exit(1);
		size_t k = fread(b.data + b.len, 1, b.cap - b.len - 1, f);
		if (k == 0)
			break;
		b.len += k;
	}
	fclose(f);
	if (!b.data && qn_buf_adds(&b, "") < 0)
		exit(1);
	return qn_buf_detach(&b, len);
}

static struct text *read_corpus(const char *path, size_t *n)
{
	size_t len, cap = 0;
	char *all = slurp(path, &len), *p, *end;
	struct text *t = NULL;

	if (!all) {
		fprintf(stderr, "bpe_ids: cannot read '%s'\n", path);
		exit(1);
	}
	*n = 0;
	for (p = all, end = all + len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_error_t je;
		json_t *j = json_loadb(p, ll, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
		if (!j || !json_is_string(j)) {
			fprintf(stderr, "bpe_ids: %s:%zu: not a JSON string\n", path, *n + 1);
			exit(1);
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			t = realloc(t, cap * sizeof *t);
			if (!t)
				exit(1);
		}
		t[*n].n = json_string_length(j);
		t[*n].p = malloc(t[*n].n + 1);
		if (!t[*n].p)
			exit(1);
		memcpy(t[*n].p, json_string_value(j), t[*n].n);
		(*n)++;
		json_decref(j);
		p = nl ? nl + 1 : end;
	}
	free(all);
	return t;
}

/* Parses one line of ids. */
static size_t parse_ids(const char *p, const char *end, uint32_t **v, size_t *cap)
{
	size_t n = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		uint32_t x = 0;
		while (p < end && *p >= '0' && *p <= '9')
			x = x * 10 + (uint32_t)(*p++ - '0');
		if (n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			*v = realloc(*v, *cap * sizeof **v);
			if (!*v)
				exit(1);
		}
		(*v)[n++] = x;
		while (p < end && *p != ' ')
			p++;
	}
	return n;
}

static void print_json(const unsigned char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n && i < 200; i++) {
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] == 0x7f)
			printf("\\u%04x", p[i]);
		else
			putchar(p[i]);
	}
	printf(n > 200 ? "\"...(%zu bytes)" : "\"", n);
}

static void print_ids(const char *label, const uint32_t *v, size_t n, size_t from, size_t k)
{
	printf("  %s: [", label);
	for (size_t i = from; i < n && i < from + k; i++)
		printf("%s%u", i > from ? ", " : "", v[i]);
	printf("%s]\n", from + k < n ? ", ..." : "");
}

struct find {
	const struct qn_bpe *b;
	struct qn_bpe_scratch *s;
	size_t target, count; /* the token index sought, tokens so far */
	const unsigned char *piece;
	size_t plen, first; /* the piece holding the target and its first token */
	struct qn_bpe_ids ids;
};

static int find_piece(void *ctx, const unsigned char *p, size_t n, uint32_t special)
{
	struct find *f = ctx;
	size_t k = 1;

	qn_bpe_ids_reset(&f->ids);
	if (special == QN_BPE_NONE) {
		if (qn_bpe_encode_piece(f->b, f->s, p, n, 0, &f->ids, NULL) < 0)
			return 1;
		k = f->ids.n;
	}
	if (f->target < f->count + k) {
		f->piece = p;
		f->plen = n;
		f->first = f->count;
		return 1;
	}
	f->count += k;
	return 0;
}

static void show_mismatch(const struct qn_bpe *b, struct qn_bpe_scratch *s, unsigned flags,
			  size_t doc, const struct text *t, const uint32_t *got, size_t ng,
			  const uint32_t *want, size_t nw)
{
	size_t k = 0;
	struct find f;

	while (k < ng && k < nw && got[k] == want[k])
		k++;
	memset(&f, 0, sizeof f);
	f.b = b;
	f.s = s;
	f.target = k;
	qn_bpe_ids_init(&f.ids, SIZE_MAX);
	qn_bpe_split(b, s, t->p, t->n, flags, find_piece, &f, NULL);
	printf("  document %zu (line %zu), %zu bytes: first difference at token %zu", doc, doc + 1,
	       t->n, k);
	if (f.piece) {
		printf(", in piece ");
		print_json(f.piece, f.plen);
		printf(" (its tokens start at %zu)", f.first);
	}
	printf("\n");
	size_t from = f.piece ? f.first : k;
	print_ids("quern   ", got, ng, from, (f.piece ? f.ids.n : 0) + 8);
	print_ids("tiktoken", want, nw, from, (f.piece ? f.ids.n : 0) + 8);
	qn_bpe_ids_release(&f.ids);
}

int main(int argc, char **argv)
{
	unsigned flags = 0;
	int timing = 0, reps = 1, o;
	const char *expected = NULL;
	struct qn_err e;
	struct qn_bpe *b;

	while ((o = getopt(argc, argv, "atHBc:n:")) != -1) {
		if (o == 'a')
			flags |= QN_BPE_ALLOW_SPECIAL;
		else if (o == 't')
			timing = 1;
		else if (o == 'H')
			flags |= QN_BPE_HEAP_ONLY;
		else if (o == 'B')
			flags |= QN_BPE_BUCKETS_ONLY;
		else if (o == 'c')
			expected = optarg;
		else if (o == 'n')
			reps = atoi(optarg) > 0 ? atoi(optarg) : 1;
		else
			goto usage;
	}
	if (argc - optind != 3)
		goto usage;
	const char *tokfile = argv[optind], *encoding = argv[optind + 1];
	if (!strcmp(encoding, "hf")) {
		b = qn_bpe_load_hf(tokfile, &e);
	} else {
		const struct qn_bpe_spec *spec = qn_bpe_spec_named(encoding);
		if (!spec) {
			fprintf(stderr, "bpe_ids: unknown encoding '%s'\n", encoding);
			return 2;
		}
		b = qn_bpe_load_tiktoken(tokfile, spec, &e);
	}
	if (!b) {
		fprintf(stderr, "bpe_ids: %s\n", e.msg);
		return 1;
	}
	size_t nd, bytes = 0;
	struct text *docs = read_corpus(argv[optind + 2], &nd);
	struct qn_bpe_scratch *s = qn_bpe_scratch_new(b);
	struct qn_bpe_ids *ids = calloc(nd ? nd : 1, sizeof *ids);
	if (!s || !ids)
		return 1;
	double best = 0, best_cpu = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
		bytes = 0;
		for (size_t i = 0; i < nd; i++) {
			if (r == 0)
				qn_bpe_ids_init(&ids[i], SIZE_MAX);
			qn_bpe_ids_reset(&ids[i]);
			if (qn_bpe_encode(b, s, docs[i].p, docs[i].n, flags, &ids[i], &e) < 0) {
				fprintf(stderr, "bpe_ids: document %zu: %s\n", i, e.msg);
				return 1;
			}
			bytes += docs[i].n;
		}
		double secs = now(CLOCK_MONOTONIC) - t0, cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
		if (r == 0 || secs < best)
			best = secs;
		if (r == 0 || cpu < best_cpu)
			best_cpu = cpu;
	}
	if (timing)
		fprintf(stderr,
			"quern %s: %zu documents, %zu bytes, %.3f s, %.2f MB/s (CPU time %.3f s, "
			"%.2f MB/s)\n",
			encoding, nd, bytes, best, (double)bytes / 1e6 / best, best_cpu,
			(double)bytes / 1e6 / best_cpu);

	int rc = 0;
	if (!expected) {
		for (size_t i = 0; i < nd; i++) {
			for (size_t k = 0; k < ids[i].n; k++)
				printf(k ? " %u" : "%u", ids[i].v[k]);
			putchar('\n');
		}
	} else {
		size_t len, bad = 0, cap = 0, line = 0, bad_rt = 0;
		char *all = slurp(expected, &len), *p = all, *end;
		uint32_t *want = NULL;
		if (!all) {
			fprintf(stderr, "bpe_ids: cannot read '%s'\n", expected);
			return 1;
		}
		end = all + len;
		for (; line < nd; line++) {
			char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
			char *le = nl ? nl : end;
			size_t nw = p < end ? parse_ids(p, le, &want, &cap) : 0;
			if (nw != ids[line].n ||
			    (nw && memcmp(want, ids[line].v, nw * sizeof *want))) {
				if (!bad++) {
					printf("FAIL: %s: quern's ids differ from tiktoken's\n",
					       encoding);
					show_mismatch(b, s, flags, line, &docs[line], ids[line].v,
						      ids[line].n, want, nw);
				}
			}
			p = nl ? nl + 1 : end;
		}
		if (p < end && *p) {
			printf("FAIL: %s: %s has more lines than the corpus\n", encoding, expected);
			bad++;
		}
		if (bad)
			printf("  %s: %zu of %zu documents differ\n", encoding, bad, nd);
		else
			printf("PASS: %s: %zu documents (%zu bytes) give tiktoken's ids\n",
			       encoding, nd, bytes);
		struct qn_buf out;
		qn_buf_init(&out, QN_BUF_UNLIMITED);
		for (size_t i = 0; i < nd; i++) {
			qn_buf_reset(&out);
			if (qn_bpe_decode(b, ids[i].v, ids[i].n, &out, &e) < 0 ||
			    out.len != docs[i].n ||
			    (out.len && memcmp(out.data, docs[i].p, out.len))) {
				if (!bad_rt++)
					printf(
					    "FAIL: %s: decode(encode(x)) != x for document %zu\n",
					    encoding, i);
			}
		}
		if (!bad_rt)
			printf("PASS: %s: decode(encode(x)) == x for %zu documents\n", encoding,
			       nd);
		qn_buf_release(&out);
		free(want);
		free(all);
		rc = bad || bad_rt;
	}
	for (size_t i = 0; i < nd; i++) {
		qn_bpe_ids_release(&ids[i]);
		free(docs[i].p);
	}
	free(ids);
	free(docs);
	qn_bpe_scratch_free(s);
	qn_bpe_free(b);
	if (fflush(stdout) || ferror(stdout))
		return 1;
	return rc;
usage:
	fprintf(stderr,
		"usage: bpe_ids [-a] [-t] [-H] [-B] [-n N] [-c EXPECTED] TOKENIZER ENCODING "
		"CORPUS\n");
	return 2;
}
