/*
 * neardup_eval.c - recall and precision of MinHash dedup (lib/minhash) on
 * a corpus with known near-duplicates (gen_neardup).
 *
 *   neardup_eval [--verify] [-T THRESHOLD] [--max-candidates N] [-v]
 *                CORPUS.jsonl [TRUTH.tsv]
 *
 * Computes every document's signature and exact shingle set, adds the
 * signatures to the LSH index in corpus order and clusters with union-find:
 * without --verify every pair sharing a bucket is joined; with --verify a
 * candidate pair is joined only when every member of the one's cluster is,
 * by exact Jaccard, at least THRESHOLD (0.8) similar to every member of the
 * other's (complete linkage, qn_uf_union_if_all). Then it reports
 *   recall     the share of truth pairs with Jaccard >= THRESHOLD that end
 *              in one cluster (recall_cluster), and that share a bucket
 *              (recall_candidate);
 *   precision  the share of all pairs of documents in one cluster whose
 *              exact Jaccard is >= THRESHOLD (precision_cluster; found pairs
 *              within truth families and across them both count, so no truth
 *              file is needed), and the same for the pairs the index
 *              returned as candidates (precision_candidate);
 *   speed      MB/s of normalization + shingling + signature, one thread;
 *   memory     bytes of the LSH index a document.
 * -v adds the detection rate by Jaccard bin (the LSH S-curve) and the
 * largest clusters. With --clusters FILE the clusters are not computed
 * here but read from quern-clean's output (kept documents and rejects, in
 * one or more files joined with commas): every document whose
 * metadata.reject names a duplicate_of joins that document's cluster, so
 * the same recall and precision judge the tool end to end. Exit status: 1 when recall_cluster < 0.95 or
 * precision_cluster < 0.95 (0.99 with --verify), 2 on a usage error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "doc.h"
#include "err.h"
#include "minhash.h"

struct doc {
	char *id;
	uint64_t *set;
	size_t nset;
	int short_doc;
};

static struct doc *docs;
static size_t ndocs;
static uint32_t *by_id; /* doc numbers sorted by id */
static uint64_t *keys;	/* band keys, bands per doc */
static unsigned nbands;

static void die(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "neardup_eval: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("%s", "out of memory");
	return p;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(docs[*(const uint32_t *)a].id, docs[*(const uint32_t *)b].id);
}

static long find_id(const char *id)
{
	size_t lo = 0, hi = ndocs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(docs[by_id[mid]].id, id);
		if (c == 0)
			return by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static double jac(uint32_t a, uint32_t b)
{
	return qn_jaccard(docs[a].set, docs[a].nset, docs[b].set, docs[b].nset);
}

static size_t verified;

static int similar(uint32_t a, uint32_t b, void *thr)
{
	verified++;
	return jac(a, b) >= *(const double *)thr;
}

static int is_candidate(uint32_t a, uint32_t b)
{
	if (docs[a].short_doc || docs[b].short_doc)
		return 0;
	for (unsigned k = 0; k < nbands; k++)
		if (keys[(size_t)a * nbands + k] == keys[(size_t)b * nbands + k])
			return 1;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t pair_key(uint32_t a, uint32_t b)
{
	return a < b ? (uint64_t)a << 32 | b : (uint64_t)b << 32 | a;
}

static void usage(FILE *f)
{
	fputs("usage: neardup_eval [--verify] [-T THRESHOLD] [--max-candidates N] [-v] "
	      "[--clusters FILE[,FILE]] "
	      "CORPUS.jsonl [TRUTH.tsv]\n",
	      f);
}

int main(int argc, char **argv)
{
	int verify = 0, verbose = 0, ai = 1;
	char *clusters_from = NULL;
	double thr = QN_MINHASH_THRESHOLD;
	size_t maxc = 256;
	struct qn_minhash_params mp;
	struct qn_minhash *mh;
	struct qn_lsh *lsh;
	struct qn_uf *uf;
	struct qn_err e;
	struct qn_jsonl j;
	json_t *o;
	int rc;
	double sig_time = 0;
	uint64_t bytes = 0;

	for (; ai < argc && argv[ai][0] == '-' && argv[ai][1]; ai++) {
		char *end;
		if (!strcmp(argv[ai], "--verify")) {
			verify = 1;
		} else if (!strcmp(argv[ai], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[ai], "-T") && ai + 1 < argc) {
			thr = strtod(argv[++ai], &end);
			if (*end || !(thr > 0 && thr <= 1)) {
				usage(stderr);
				return 2;
			}
		} else if (!strcmp(argv[ai], "--max-candidates") && ai + 1 < argc) {
			maxc = strtoul(argv[++ai], &end, 10);
			if (*end || maxc == 0) {
				usage(stderr);
				return 2;
			}
		} else if (!strcmp(argv[ai], "--clusters") && ai + 1 < argc) {
			clusters_from = argv[++ai];
		} else if (!strcmp(argv[ai], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (ai >= argc || ai + 2 < argc) {
		usage(stderr);
		return 2;
	}
	const char *corpus = argv[ai], *truth = ai + 1 < argc ? argv[ai + 1] : NULL;

	qn_minhash_params_default(&mp);
	nbands = mp.bands;
	mh = qn_minhash_new(&mp, &e);
	lsh = mh ? qn_lsh_new(&mp, 0, &e) : NULL;
	if (!lsh)
		die("%s", e.msg);
	size_t k = qn_minhash_hashes(mh);
	uint64_t *sig = xrealloc(NULL, k * sizeof *sig);

	/* Signatures (timed alone), exact sets, the index. */
	if (qn_jsonl_open(&j, corpus, QN_JSONL_MAX_LINE_DEFAULT, 0, &e) < 0)
		die("%s", e.msg);
	size_t cap = 0;
	while ((rc = qn_jsonl_next(&j, &o, &e)) != 0) {
		if (rc < 0)
			die("%s", e.msg);
		const char *id = json_string_value(json_object_get(o, "id"));
		json_t *t = json_object_get(o, "text");
		if (!id || !json_is_string(t))
			die("%s: a document without id or text", corpus);
		const char *text = json_string_value(t);
		size_t len = json_string_length(t);
		if (ndocs == cap) {
			cap = cap ? cap * 2 : 1024;
			docs = xrealloc(docs, cap * sizeof *docs);
			keys = xrealloc(keys, cap * nbands * sizeof *keys);
		}
		struct doc *d = &docs[ndocs];
		d->id = strdup(id);
		double t0 = now();
		int sr = qn_minhash_signature(mh, text, len, sig);
		sig_time += now() - t0;
		bytes += len;
		if (sr < 0 || !d->id)
			die("%s", "out of memory");
		d->short_doc = sr == QN_MINHASH_TOO_SHORT;
		if (qn_minhash_shingles(mh, text, len, &d->set, &d->nset) < 0)
			die("%s", "out of memory");
		for (unsigned b = 0; b < nbands; b++)
			keys[ndocs * nbands + b] = d->short_doc ? 0 : qn_minhash_band_key(&mp, sig, b);
		if (qn_lsh_add(lsh, d->short_doc ? NULL : sig, NULL, &e) < 0)
			die("%s", e.msg);
		ndocs++;
		json_decref(o);
	}
	qn_jsonl_close(&j);

	by_id = xrealloc(NULL, (ndocs + 1) * sizeof *by_id);
	for (uint32_t i = 0; i < ndocs; i++)
		by_id[i] = i;
	qsort(by_id, ndocs, sizeof *by_id, cmp_id);
	/* Clusters; candidate pairs and their precision on the way. */
	uf = qn_uf_new(ndocs);
	uint32_t *cand = xrealloc(NULL, maxc * sizeof *cand);
	size_t cand_pairs = 0, cand_good = 0, too_short = 0;
	for (uint32_t d = 0; d < ndocs; d++) {
		too_short += docs[d].short_doc;
		size_t nc = qn_lsh_candidates(lsh, d, cand, maxc);
		for (size_t i = 0; i < nc; i++) {
			double jj = jac(d, cand[i]);
			cand_pairs++;
			cand_good += jj >= thr;
			if (clusters_from)
				continue;
			if (!verify)
				qn_uf_union(uf, d, cand[i]);
			else if (jj >= thr)
				qn_uf_union_if_all(uf, d, cand[i], similar, &thr);
		}
	}

	for (char *save = NULL, *f = clusters_from ? strtok_r(clusters_from, ",", &save) : NULL; f;
	     f = strtok_r(NULL, ",", &save)) {
		if (qn_jsonl_open(&j, f, QN_JSONL_MAX_LINE_DEFAULT, 0, &e) < 0)
			die("%s", e.msg);
		while ((rc = qn_jsonl_next(&j, &o, &e)) != 0) {
			if (rc < 0)
				die("%s", e.msg);
			json_t *rej = json_object_get(json_object_get(o, "metadata"), "reject");
			const char *dup = json_string_value(json_object_get(rej, "duplicate_of"));
			long x = find_id(json_string_value(json_object_get(o, "id")));
			long y = dup ? find_id(dup) : -1;
			if (x >= 0 && y >= 0)
				qn_uf_union(uf, (uint32_t)x, (uint32_t)y);
			json_decref(o);
		}
		qn_jsonl_close(&j);
	}

	/* Truth: recall, and the S-curve by bin. */
	size_t pos = 0, pos_cluster = 0, pos_cand = 0, ntruth = 0, mismatch = 0, unknown = 0;
	enum { NBIN = 20 };
	size_t bin_n[NBIN] = {0}, bin_cand[NBIN] = {0}, bin_clu[NBIN] = {0};
	uint64_t *tpairs = NULL;
	if (truth) {
		FILE *f = fopen(truth, "r");
		char line[512], a[200], b[200];
		double jt;
		if (!f)
			die("cannot open '%s'", truth);
		size_t tcap = 0;
		while (fgets(line, sizeof line, f)) {
			if (sscanf(line, "%199[^\t]\t%199[^\t]\t%lf", a, b, &jt) != 3)
				die("bad truth line in '%s'", truth);
			long x = find_id(a), y = find_id(b);
			if (x < 0 || y < 0) {
				unknown++;
				continue;
			}
			if (ntruth == tcap) {
				tcap = tcap ? tcap * 2 : 1024;
				tpairs = xrealloc(tpairs, tcap * sizeof *tpairs);
			}
			tpairs[ntruth++] = pair_key((uint32_t)x, (uint32_t)y);
			double jr = jac((uint32_t)x, (uint32_t)y);
			if (jr - jt > 1e-6 || jt - jr > 1e-6)
				mismatch++;
			int c = is_candidate((uint32_t)x, (uint32_t)y);
			int s = qn_uf_find(uf, (uint32_t)x) == qn_uf_find(uf, (uint32_t)y);
			int bin = (int)(jt * NBIN);
			bin = bin >= NBIN ? NBIN - 1 : bin < 0 ? 0 : bin;
			bin_n[bin]++;
			bin_cand[bin] += c;
			bin_clu[bin] += s;
			if (jt >= thr) {
				pos++;
				pos_cand += c;
				pos_cluster += s;
			}
		}
		fclose(f);
		qsort(tpairs, ntruth, sizeof *tpairs, cmp_u64);
	}

	/* Precision over every pair of every cluster. */
	uint32_t *keep = xrealloc(NULL, (ndocs + 1) * sizeof *keep);
	qn_uf_keep(uf, NULL, keep);
	uint64_t *members = xrealloc(NULL, (ndocs + 1) * sizeof *members);
	for (uint32_t i = 0; i < ndocs; i++)
		members[i] = (uint64_t)qn_uf_find(uf, i) << 32 | i;
	qsort(members, ndocs, sizeof *members, cmp_u64);
	size_t found = 0, good = 0, cross = 0, cross_good = 0, clusters = 0, kept = 0, biggest = 0;
	for (size_t s = 0, t; s < ndocs; s = t) {
		for (t = s + 1; t < ndocs && members[t] >> 32 == members[s] >> 32; t++)
			;
		if (t - s > biggest)
			biggest = t - s;
		if (t - s < 2)
			continue;
		clusters++;
		for (size_t x = s; x < t; x++) {
			for (size_t y = x + 1; y < t; y++) {
				uint32_t a = (uint32_t)members[x], b = (uint32_t)members[y];
				int ok = jac(a, b) >= thr;
				uint64_t pk = pair_key(a, b);
				found++;
				good += ok;
				if (!tpairs || !bsearch(&pk, tpairs, ntruth, sizeof pk, cmp_u64)) {
					cross++;
					cross_good += ok;
				}
			}
		}
	}
	for (uint32_t i = 0; i < ndocs; i++)
		kept += keep[i] == i;

	double recall_c = pos ? (double)pos_cluster / (double)pos : 1;
	double recall_k = pos ? (double)pos_cand / (double)pos : 1;
	double prec_c = found ? (double)good / (double)found : 1;
	double prec_k = cand_pairs ? (double)cand_good / (double)cand_pairs : 1;
	size_t lbytes = qn_lsh_bytes(lsh);
	printf("docs=%zu too_short=%zu truth_pairs=%zu positives=%zu threshold=%.2f verify=%d\n",
	       ndocs, too_short, ntruth, pos, thr, verify);
	if (truth)
		printf("recall_cluster=%.4f recall_candidate=%.4f (%zu and %zu of %zu)\n", recall_c,
		       recall_k, pos_cluster, pos_cand, pos);
	printf("precision_cluster=%.4f (%zu of %zu pairs in %zu clusters; %zu pairs across "
	       "families, %zu of them similar)\n",
	       prec_c, good, found, clusters, cross, cross_good);
	printf("precision_candidate=%.4f (%zu of %zu candidate pairs)%s\n", prec_k, cand_good,
	       cand_pairs, verify ? "" : " [without verify these are all joined]");
	if (verify)
		printf("verified_pairs=%zu\n", verified);
	printf("kept=%zu removed=%zu largest_cluster=%zu\n", kept, ndocs - kept, biggest);
	printf("signature_speed=%.1f MB/s (%.1f MB in %.3f s, one thread)\n",
	       sig_time > 0 ? (double)bytes / 1e6 / sig_time : 0, (double)bytes / 1e6, sig_time);
	printf("index_bytes=%zu (%.0f per document)\n", lbytes,
	       ndocs ? (double)lbytes / (double)ndocs : 0);
	if (mismatch || unknown)
		printf("warning: %zu truth pairs disagree with the exact Jaccard, %zu name unknown "
		       "ids\n",
		       mismatch, unknown);
	if (verbose && truth) {
		printf("jaccard      pairs  candidate  cluster\n");
		for (int b = 0; b < NBIN; b++)
			if (bin_n[b])
				printf("%.2f-%.2f %8zu  %9.3f  %7.3f\n", (double)b / NBIN,
				       (double)(b + 1) / NBIN, bin_n[b],
				       (double)bin_cand[b] / (double)bin_n[b],
				       (double)bin_clu[b] / (double)bin_n[b]);
	}

	for (size_t i = 0; i < ndocs; i++) {
		free(docs[i].id);
		free(docs[i].set);
	}
	free(docs);
	free(keys);
	free(by_id);
	free(tpairs);
	free(keep);
	free(members);
	free(cand);
	free(sig);
	qn_uf_free(uf);
	qn_lsh_free(lsh);
	qn_minhash_free(mh);
	if (fflush(stdout) || ferror(stdout))
		return 1;
	double min_prec = verify ? 0.99 : 0.95;
	if ((truth && recall_c < 0.95) || prec_c < min_prec) {
		fprintf(stderr, "neardup_eval: below the acceptance level (recall 0.95, precision %.2f)\n",
			min_prec);
		return 1;
	}
	return 0;
}
