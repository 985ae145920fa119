/*
 * extract_score - token-level precision, recall and F1 of extracted text
 * against hand-written expected text.
 *
 *   extract_score [--min-f1 X] DOCS.jsonl
 *
 * For each document in DOCS.jsonl (quern-ingest output) the expected text
 * is the file beside metadata.path with the extension replaced by ".txt".
 * Tokens are runs of letters and digits (any non-ASCII byte counts as a
 * letter, so UTF-8 words stay whole), ASCII lowercased; the overlap is the
 * multiset intersection. Prints one line per page, then per kind (the file
 * name up to its first '-') and overall: micro (token totals) and macro
 * (mean of page F1). With --min-f1, exits 1 when overall micro or macro F1
 * is below X.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "rd.h"

struct toks {
	char **v;
	size_t n, cap;
	char *store;
};

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void tokenize(const char *s, struct toks *t)
{
	size_t n = strlen(s);

	t->store = malloc(n + 1);
	t->n = 0;
	t->cap = n / 2 + 1;
	t->v = malloc(t->cap * sizeof *t->v);
	char *o = t->store;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalnum(c) || c >= 0x80)) {
			i++;
			continue;
		}
		t->v[t->n++] = o;
		while (i < n && (isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80))
			*o++ = (char)tolower((unsigned char)s[i++]);
		*o++ = 0;
	}
	qsort(t->v, t->n, sizeof *t->v, cmp);
}

static size_t overlap(struct toks *a, struct toks *b)
{
	size_t i = 0, j = 0, k = 0;

	while (i < a->n && j < b->n) {
		int c = strcmp(a->v[i], b->v[j]);
		if (!c) {
			k++;
			i++;
			j++;
		} else if (c < 0) {
			i++;
		} else {
			j++;
		}
	}
	return k;
}

struct kind {
	char name[32];
	double tp, got, want, f1sum;
	int pages;
};

static double f1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0; }

static void line(const char *label, double tp, double got, double want, double macro, int pages)
{
	double p = got ? tp / got : 0, r = want ? tp / want : 0;
	printf("%-40s %3d  P %.3f  R %.3f  F1 %.3f", label, pages, p, r, f1(p, r));
	if (macro >= 0)
		printf("  (mean page F1 %.3f)", macro);
	printf("\n");
}

int main(int argc, char **argv)
{
	double min_f1 = -1;
	struct kind kinds[64], all = {.name = "overall"};
	int nk = 0, argi = 1;
	struct qn_err e;

	if (argc > 2 && !strcmp(argv[1], "--min-f1")) {
		min_f1 = atof(argv[2]);
		argi = 3;
	}
	if (argi >= argc) {
		fprintf(stderr, "usage: extract_score [--min-f1 X] DOCS.jsonl\n");
		return 2;
	}
	struct qn_rd *rd = qn_rd_open(argv[argi], 0, &e);
	if (!rd) {
		fprintf(stderr, "extract_score: %s\n", e.msg);
		return 1;
	}
	struct qn_buf l;
	qn_buf_init(&l, QN_BUF_UNLIMITED);
	while (qn_rd_line(rd, &l, 1 << 26, &e) == 1) {
		json_t *d = json_loadb(l.data, l.len, 0, NULL);
		const char *path = json_string_value(json_object_get(json_object_get(d, "metadata"), "path"));
		const char *text = json_string_value(json_object_get(d, "text"));
		if (!path || !text) {
			json_decref(d);
			continue;
		}
		char exp_path[4096];
		snprintf(exp_path, sizeof exp_path, "%s", path);
		char *dot = strrchr(exp_path, '.');
		if (dot)
			strcpy(dot, ".txt");
		struct qn_rd *er = qn_rd_open(exp_path, 0, &e);
		struct qn_buf want;
		qn_buf_init(&want, QN_BUF_UNLIMITED);
		if (!er || qn_rd_slurp(er, &want, 1 << 26, &e) != 1) {
			fprintf(stderr, "extract_score: no expected text %s\n", exp_path);
			qn_rd_close(er);
			json_decref(d);
			qn_buf_release(&want);
			continue;
		}
		qn_rd_close(er);
		struct toks a, b;
		tokenize(text, &a);
		tokenize(want.data ? want.data : "", &b);
		double tp = (double)overlap(&a, &b);
		double p = a.n ? tp / (double)a.n : 0, r = b.n ? tp / (double)b.n : 0;
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		char kname[32];
		snprintf(kname, sizeof kname, "%.*s", (int)strcspn(base, "-"), base);
		int k;
		for (k = 0; k < nk && strcmp(kinds[k].name, kname); k++)
			;
		if (k == nk && nk < 64) {
			memset(&kinds[nk], 0, sizeof kinds[nk]);
			snprintf(kinds[nk].name, sizeof kinds[nk].name, "%s", kname);
			nk++;
		}
		struct kind *kd = &kinds[k < 64 ? k : 63];
		kd->tp += tp;
		kd->got += (double)a.n;
		kd->want += (double)b.n;
		kd->f1sum += f1(p, r);
		kd->pages++;
		all.tp += tp;
		all.got += (double)a.n;
		all.want += (double)b.n;
		all.f1sum += f1(p, r);
		all.pages++;
		line(base, tp, (double)a.n, (double)b.n, -1, 1);
		free(a.v);
		free(a.store);
		free(b.v);
		free(b.store);
		qn_buf_release(&want);
		json_decref(d);
	}
	qn_rd_close(rd);
	qn_buf_release(&l);
	printf("\n");
	for (int k = 0; k < nk; k++) {
		char label[48];
		snprintf(label, sizeof label, "kind %.30s", kinds[k].name);
		line(label, kinds[k].tp, kinds[k].got, kinds[k].want,
		     kinds[k].f1sum / kinds[k].pages, kinds[k].pages);
	}
	line("overall", all.tp, all.got, all.want, all.pages ? all.f1sum / all.pages : 0,
	     all.pages);
	if (min_f1 >= 0) {
		double p = all.got ? all.tp / all.got : 0, r = all.want ? all.tp / all.want : 0;
		double micro = f1(p, r), macro = all.pages ? all.f1sum / all.pages : 0;
		if (!all.pages || micro < min_f1 || macro < min_f1) {
			printf("F1 below %.2f\n", min_f1);
			return 1;
		}
	}
	return 0;
}
