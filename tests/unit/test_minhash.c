/*
 * test_minhash.c - lib/minhash: normalization examples, shingles, signatures
 * against exact Jaccard, the LSH index, union-find and the keep rule, and an
 * end-to-end run of gen_neardup and neardup_eval (from $QN_TESTS, or beside
 * this binary) checked against the acceptance numbers.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "hash.h"
#include "minhash.h"

static struct qn_minhash *mh;

static const char *norm(const char *s)
{
	static struct qn_buf b;
	static int init;

	if (!init) {
		qn_buf_init(&b, 1 << 20);
		init = 1;
	}
	qn_buf_reset(&b);
	if (qn_minhash_normalize(mh, s, strlen(s), &b) < 0)
		return NULL;
	return b.data ? b.data : "";
}

static void test_normalize(void)
{
	CHECK_STR("case and punctuation", norm("Hello, World!  It's  OK."), "hello world it s ok");
	CHECK_STR("accents", norm("Café crème à la carte, naïve Zürich"),
		  "cafe creme a la carte naive zurich");
	CHECK_STR("decomposed accent", norm("cafe\xcc\x81 ok"), "cafe ok");
	CHECK_STR("digits", norm("In 2026, 3.14% of 7 people"), "in 0000 0 00 of 0 people");
	CHECK_STR("arabic-indic digits", norm("\xd9\xa3\xd9\xa4 x"), "00 x");
	CHECK_STR("compatibility forms", norm("\xef\xac\x81ne \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\x91"),
		  "fine ab0");
	CHECK_STR("case folding", norm("STRASSE Straße ΣΊΣΥΦΟΣ"), "strasse strasse σισυφοσ");
	CHECK_STR("cyrillic", norm("Привет, мир!"), "привет мир");
	CHECK_STR("han and kana are words", norm("東京は晴れ。今日"), "東 京 は 晴 れ 今 日");
	CHECK_STR("hangul stays composed", norm("안녕하세요, 세계"), "안녕하세요 세계");
	CHECK_STR("symbols and dashes", norm("a+b=c — d|e © f"), "a b c d e f");
	CHECK_STR("soft hyphen dropped", norm("hy\xc2\xadphen"), "hyphen");
	CHECK_STR("zero width space splits", norm("a\xe2\x80\x8b" "b"), "a b");
	CHECK_STR("nbsp and tabs", norm("\ta\xc2\xa0\xc2\xa0 b\r\n"), "a b");
	CHECK_STR("invalid byte separates", norm("ab\xff" "cd"), "ab cd");
	CHECK_STR("truncated sequence", norm("ab\xe2\x82"), "ab");
	CHECK_STR("overlong and surrogate", norm("a\xc0\xaf" "b\xed\xa0\x80" "c"), "a b c");
	CHECK_STR("empty", norm(""), "");
	CHECK_STR("only separators", norm(" ,.;\n"), "");

	char *big = malloc(3001);
	memset(big, 'a', 3000);
	big[3000] = 0;
	const char *n = norm(big);
	CHECK_NAMED("long word cut", n && strlen(n) == QN_MINHASH_MAX_WORD);
	/* A cut inside a 2-byte character backs off to its start. */
	for (int i = 0; i < 3000; i += 2)
		memcpy(big + i, "\xd0\xb6", 2);
	n = norm(big);
	CHECK_NAMED("long word cut at a character", n && strlen(n) == QN_MINHASH_MAX_WORD);
	free(big);

	struct qn_buf b;
	qn_buf_init(&b, 1 << 16);
	CHECK_NAMED("word count", qn_minhash_normalize(mh, "one, two; three", 15, &b) == 3);
	qn_buf_release(&b);
	qn_buf_init(&b, 4);
	CHECK_NAMED("bounded output", qn_minhash_normalize(mh, "one two three", 13, &b) == -1);
	qn_buf_release(&b);

	/* Every flag off: only whitespace splits, NFKC still applies. */
	struct qn_minhash_params p;
	struct qn_err e;
	qn_minhash_params_default(&p);
	p.flags = 0;
	struct qn_minhash *raw = qn_minhash_new(&p, &e), *save = mh;
	mh = raw;
	CHECK_STR("flags off", norm("Hello, World 2026!"), "Hello, World 2026!");
	CHECK_STR("flags off: NFC", norm("cafe\xcc\x81 x"), "caf\xc3\xa9 x");
	mh = save;
	qn_minhash_free(raw);

	/* The ASCII table and the Unicode path agree on every ASCII character. */
	int agree = 1;
	for (int c = 1; c < 128 && agree; c++) {
		char in[8] = {'x', (char)c, 'y', ' ', 'z', 0};
		char viau[16];
		/* Fullwidth forms U+FF01..U+FF5E fold to ASCII 0x21..0x7E. */
		if (c < 0x21 || c > 0x7E)
			continue;
		snprintf(viau, sizeof viau, "x\xef%c%cy z", (char)(0xBC + ((c - 0x21 + 1) >> 6)),
			 (char)(0x80 + ((c - 0x21 + 1) & 0x3F)));
		char a[32];
		snprintf(a, sizeof a, "%s", norm(in));
		agree = !strcmp(a, norm(viau));
		if (!agree)
			printf("  ascii %d: [%s] vs [%s]\n", c, a, norm(viau));
	}
	CHECK_NAMED("ascii table agrees with utf8proc", agree);
}

static size_t count_shingles(const char *s, int *rc)
{
	uint64_t *set;
	size_t n;

	*rc = qn_minhash_shingles(mh, s, strlen(s), &set, &n);
	free(set);
	return n;
}

static void test_shingles(void)
{
	int rc;
	size_t k = qn_minhash_hashes(mh);
	uint64_t *sig = malloc(k * sizeof *sig);

	CHECK_NAMED("7 words: 3 shingles", count_shingles("a b c d e f g", &rc) == 3 && rc == 0);
	CHECK_NAMED("5 words: 1 shingle", count_shingles("a b c d e", &rc) == 1 && rc == 0);
	CHECK_NAMED("repeats collapse", count_shingles("a a a a a a a a a", &rc) == 1);
	CHECK_NAMED("4 words: too short",
		    count_shingles("one two three four", &rc) == 0 && rc == QN_MINHASH_TOO_SHORT);
	CHECK_NAMED("empty: too short", count_shingles("", &rc) == 0 && rc == QN_MINHASH_TOO_SHORT);
	CHECK_NAMED("punctuation only: too short",
		    count_shingles("!!! ... ???", &rc) == 0 && rc == QN_MINHASH_TOO_SHORT);
	CHECK_NAMED("signature too short",
		    qn_minhash_signature(mh, "one two three four", 18, sig) == QN_MINHASH_TOO_SHORT &&
			    sig[0] == UINT64_MAX && sig[k - 1] == UINT64_MAX);

	/* The shingle is the words' bytes: its hash is xxh3 of "a b c d e". */
	uint64_t *set;
	size_t n;
	qn_minhash_shingles(mh, "A, b; C d E!", 12, &set, &n);
	struct qn_minhash_params p;
	qn_minhash_params_default(&p);
	CHECK_NAMED("shingle hash definition", n == 1 && set[0] == qn_xxh3_64("a b c d e", 9, p.seed));
	free(set);

	/* Long texts: compaction of the scratch must not change anything. */
	struct qn_buf t, nt;
	qn_buf_init(&t, QN_BUF_UNLIMITED);
	qn_buf_init(&nt, QN_BUF_UNLIMITED);
	uint64_t x = 1;
	for (int i = 0; i < 40000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		qn_buf_printf(&t, "%s%llu%s ", (x >> 60) & 1 ? "W" : "w",
			      (unsigned long long)(x >> 50), (x >> 61) & 1 ? "é," : "");
	}
	long words = qn_minhash_normalize(mh, t.data, t.len, &nt);
	qn_minhash_shingles(mh, t.data, t.len, &set, &n);
	/* The same shingles, hashed from the fully normalized text by hand. */
	size_t ws[6] = {0}, nw = 0, bad = 0;
	uint64_t *ref = malloc((size_t)words * sizeof *ref);
	size_t nref = 0;
	for (size_t i = 0; i <= nt.len; i++) {
		if (i == nt.len || nt.data[i] == ' ') {
			nw++;
			if (nw >= 5) {
				size_t st = ws[(nw - 5) % 6];
				ref[nref++] = qn_xxh3_64(nt.data + st, i - st, p.seed);
			}
			ws[nw % 6] = i + 1;
		}
	}
	for (size_t i = 0; i < nref; i++) {
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (set[mid] < ref[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		bad += lo == n || set[lo] != ref[i];
	}
	CHECK_NAMED("long text: words", words == 40000 && (size_t)nw == 40000);
	CHECK_NAMED("long text: shingles match the definition", bad == 0 && nref == 39996);
	uint64_t *s1 = malloc(k * sizeof *s1);
	qn_minhash_signature(mh, t.data, t.len, sig);
	qn_minhash_signature_of(mh, set, n, s1);
	CHECK_NAMED("signature of text == signature of set", !memcmp(sig, s1, k * sizeof *sig));
	free(ref);
	free(set);
	free(s1);
	qn_buf_release(&t);
	qn_buf_release(&nt);
	free(sig);
}

static void test_signatures(void)
{
	size_t k = qn_minhash_hashes(mh);
	uint64_t *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
	const char *t1 = "The quick brown fox jumps over the lazy dog near the river bank";
	const char *t2 = "THE QUICK, brown fox -- jumps over the lazy dog; near the river bank!";
	struct qn_minhash_params p;
	struct qn_err e;

	CHECK_NAMED("112 hashes", k == 112);
	qn_minhash_signature(mh, t1, strlen(t1), a);
	qn_minhash_signature(mh, t1, strlen(t1), b);
	CHECK_NAMED("deterministic", !memcmp(a, b, k * sizeof *a));
	qn_minhash_params_default(&p);
	struct qn_minhash *m2 = qn_minhash_new(&p, &e);
	qn_minhash_signature(m2, t1, strlen(t1), b);
	CHECK_NAMED("deterministic across objects", !memcmp(a, b, k * sizeof *a));
	qn_minhash_signature(mh, t2, strlen(t2), b);
	CHECK_NAMED("same words, same signature", !memcmp(a, b, k * sizeof *a));
	CHECK_NAMED("estimate of identical is 1", qn_minhash_estimate(a, b, k) == 1.0);
	/* Fixed values: the signature must be the same on every machine. */
	printf("  sig[0]=%016llx sig[111]=%016llx\n", (unsigned long long)a[0],
	       (unsigned long long)a[111]);
	CHECK_NAMED("golden signature", a[0] == 0x06d54840bd3a7387ULL &&
						a[111] == 0x0553447267599b3dULL);
	p.seed = 42;
	struct qn_minhash *m3 = qn_minhash_new(&p, &e);
	qn_minhash_signature(m3, t1, strlen(t1), b);
	CHECK_NAMED("seed changes the signature", memcmp(a, b, k * sizeof *a) != 0);
	p.bands = 0;
	CHECK_NAMED("bad params refused", qn_minhash_new(&p, &e) == NULL && e.msg[0]);
	qn_minhash_params_default(&p);
	p.ngram = 0;
	CHECK_NAMED("bad ngram refused", qn_minhash_new(&p, &e) == NULL);
	qn_minhash_free(m2);
	qn_minhash_free(m3);
	qn_minhash_free(NULL);
	free(a);
	free(b);
}

static void test_jaccard(void)
{
	uint64_t x[] = {1, 2, 3}, y[] = {2, 3, 4}, z[] = {5};
	uint64_t *s1, *s2;
	size_t n1, n2;

	CHECK_NAMED("jaccard 2/4", qn_jaccard(x, 3, y, 3) == 0.5);
	CHECK_NAMED("jaccard identical", qn_jaccard(x, 3, x, 3) == 1.0);
	CHECK_NAMED("jaccard disjoint", qn_jaccard(x, 3, z, 1) == 0.0);
	CHECK_NAMED("jaccard empty", qn_jaccard(NULL, 0, NULL, 0) == 0.0);
	CHECK_NAMED("jaccard one empty", qn_jaccard(x, 3, NULL, 0) == 0.0);
	/* abcde bcdef vs abcde bcdeg: 1 common of 3. */
	qn_minhash_shingles(mh, "a b c d e f", 11, &s1, &n1);
	qn_minhash_shingles(mh, "A b c d e, g", 12, &s2, &n2);
	CHECK_NAMED("jaccard of texts 1/3", fabs(qn_jaccard(s1, n1, s2, n2) - 1.0 / 3) < 1e-12);
	free(s1);
	free(s2);
	qn_minhash_shingles(mh, "w1 w2 w3 w4 w5 w6 w7 w8 w9 wa", 29, &s1, &n1);
	qn_minhash_shingles(mh, "w1 w2 w3 w4 w5 xx w7 w8 w9 wa", 29, &s2, &n2);
	/* Digits fold: the words are w0 (9 times) and wa, so 2 distinct shingles. */
	CHECK_NAMED("digit folding merges shingles", n1 == 2);
	free(s1);
	free(s2);
}

/* Random text of n words from a vocabulary of v pseudo-words. */
static void rand_text(struct qn_buf *b, uint64_t *x, size_t n, unsigned v)
{
	qn_buf_reset(b);
	for (size_t i = 0; i < n; i++) {
		*x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
		unsigned w = (unsigned)((*x >> 33) % v);
		char s[16];
		size_t l = 0;
		do {
			s[l++] = (char)('a' + w % 26);
			w /= 26;
		} while (w);
		qn_buf_add(b, s, l);
		qn_buf_addc(b, ' ');
	}
}

/* A copy of a with every word replaced with probability p. */
static void mutate(struct qn_buf *out, const struct qn_buf *a, uint64_t *x, double p)
{
	qn_buf_reset(out);
	for (size_t i = 0; i < a->len;) {
		size_t j = i;
		while (j < a->len && a->data[j] != ' ')
			j++;
		*x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((double)(*x >> 11) / 9007199254740992.0 < p)
			qn_buf_adds(out, "zzqx");
		else
			qn_buf_add(out, a->data + i, j - i);
		qn_buf_addc(out, ' ');
		i = j + 1;
	}
}

static void test_estimate_and_lsh(void)
{
	size_t k = qn_minhash_hashes(mh);
	uint64_t *sa = malloc(k * sizeof *sa), *sb = malloc(k * sizeof *sb);
	struct qn_buf a, b;
	uint64_t x = 12345, *s1, *s2;
	size_t n1, n2;
	double err_sum = 0, err_max = 0;
	int pairs = 0, found_high = 0, found_low = 0, high = 0, low = 0;
	struct qn_minhash_params p;
	struct qn_err e;

	qn_minhash_params_default(&p);
	qn_buf_init(&a, QN_BUF_UNLIMITED);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (int i = 0; i < 60; i++) {
		/* A third each: about 0.9-0.98 similar, 0.1-0.3, and between. */
		double f = (i / 3) / 20.0;
		double rate = i % 3 == 0 ? 0.002 + 0.008 * f : i % 3 == 1 ? 0.3 + 0.2 * f : 0.02 + 0.2 * f;
		rand_text(&a, &x, 300 + (size_t)(i * 13), 5000);
		mutate(&b, &a, &x, rate);
		qn_minhash_shingles(mh, a.data, a.len, &s1, &n1);
		qn_minhash_shingles(mh, b.data, b.len, &s2, &n2);
		double jx = qn_jaccard(s1, n1, s2, n2);
		qn_minhash_signature(mh, a.data, a.len, sa);
		qn_minhash_signature(mh, b.data, b.len, sb);
		double est = qn_minhash_estimate(sa, sb, k), d = fabs(est - jx);
		err_sum += d;
		err_max = d > err_max ? d : err_max;
		pairs++;
		/* LSH on the pair alone. */
		struct qn_lsh *l = qn_lsh_new(&p, 2, &e);
		uint32_t da, db, c[4];
		qn_lsh_add(l, sa, &da, &e);
		qn_lsh_add(l, sb, &db, &e);
		size_t nc = qn_lsh_candidates(l, db, c, 4);
		if (jx >= 0.9) {
			high++;
			found_high += nc == 1 && c[0] == da;
		} else if (jx <= 0.3) {
			low++;
			found_low += nc > 0;
		}
		qn_lsh_free(l);
		free(s1);
		free(s2);
	}
	printf("  estimate vs exact: mean |err| %.4f, max %.4f over %d pairs; lsh %d/%d high, "
	       "%d/%d low\n",
	       err_sum / pairs, err_max, pairs, found_high, high, found_low, low);
	CHECK_NAMED("estimate close on average", err_sum / pairs < 0.04);
	CHECK_NAMED("estimate close everywhere", err_max < 0.2); /* 4 standard errors */
	CHECK_NAMED("lsh finds 0.9-similar pairs", high > 5 && found_high == high);
	CHECK_NAMED("lsh skips 0.3-similar pairs", low > 5 && found_low == 0);

	/* Index bookkeeping: too-short documents keep their numbers. */
	struct qn_lsh *l = qn_lsh_new(&p, 0, &e);
	uint32_t d, c[8];
	rand_text(&a, &x, 200, 5000);
	qn_minhash_signature(mh, a.data, a.len, sa);
	qn_lsh_add(l, sa, &d, &e);
	CHECK_NAMED("first doc is 0", d == 0);
	qn_lsh_add(l, NULL, &d, &e);
	CHECK_NAMED("too short takes a number", d == 1 && qn_lsh_candidates(l, 1, c, 8) == 0);
	for (int i = 0; i < 300; i++) { /* grows the tables */
		rand_text(&b, &x, 50, 5000);
		qn_minhash_signature(mh, b.data, b.len, sb);
		qn_lsh_add(l, sb, &d, &e);
	}
	qn_lsh_add(l, sa, &d, &e);
	size_t nc = qn_lsh_candidates(l, d, c, 8);
	CHECK_NAMED("copy finds its original", d == 302 && nc == 1 && c[0] == 0);
	CHECK_NAMED("prev link", qn_lsh_prev(l, d, 0) == 0 && qn_lsh_prev(l, 0, 0) == QN_LSH_NONE);
	qn_lsh_add(l, sa, &d, &e);
	nc = qn_lsh_candidates(l, d, c, 8);
	CHECK_NAMED("two copies, latest first", nc == 2 && c[0] == 302 && c[1] == 0);
	CHECK_NAMED("candidates bounded", qn_lsh_candidates(l, d, c, 1) == 1);
	CHECK_NAMED("count", qn_lsh_count(l) == 304);
	CHECK_NAMED("bytes", qn_lsh_bytes(l) > 304 * 14 * 4);
	qn_lsh_free(l);
	qn_lsh_free(NULL);
	qn_buf_release(&a);
	qn_buf_release(&b);
	free(sa);
	free(sb);
}

static int ok_pair(uint32_t a, uint32_t b, void *ctx)
{
	/* Similar when the numbers differ by at most 1. */
	return (a > b ? a - b : b - a) <= 1;
}

static void test_union_find(void)
{
	struct qn_uf *u = qn_uf_new(8);
	uint32_t keep[10];
	double prio[10] = {1, 5, 3, 5, 0, NAN, 2, 7, NAN, NAN};

	CHECK_NAMED("singletons", qn_uf_find(u, 3) == 3 && qn_uf_next(u, 3) == 3);
	CHECK_NAMED("union", qn_uf_union(u, 1, 3) == 1 && qn_uf_union(u, 3, 1) == 0);
	qn_uf_union(u, 5, 4);
	qn_uf_union(u, 3, 5);
	qn_uf_union(u, 6, 7);
	CHECK_NAMED("same cluster", qn_uf_find(u, 4) == qn_uf_find(u, 1));
	CHECK_NAMED("apart", qn_uf_find(u, 6) != qn_uf_find(u, 1));
	CHECK_NAMED("size", qn_uf_size(u, 5) == 4);
	uint32_t m = 1, seen = 0;
	do {
		seen |= 1u << m;
		m = qn_uf_next(u, m);
	} while (m != 1);
	CHECK_NAMED("members", seen == ((1u << 1) | (1u << 3) | (1u << 4) | (1u << 5)));
	qn_uf_keep(u, NULL, keep);
	CHECK_NAMED("keep earliest", keep[1] == 1 && keep[3] == 1 && keep[4] == 1 &&
					     keep[5] == 1 && keep[0] == 0 && keep[7] == 6);
	qn_uf_keep(u, prio, keep);
	/* {1,3,4,5}: 5 (doc 1) ties 5 (doc 3): doc 1; {6,7}: 7 wins. */
	CHECK_NAMED("keep priority, ties low", keep[4] == 1 && keep[5] == 1 && keep[6] == 7);
	CHECK_NAMED("grow", qn_uf_grow(u, 10) == 0 && qn_uf_count(u) == 10);
	qn_uf_union(u, 8, 9);
	qn_uf_union(u, 9, 4);
	qn_uf_keep(u, prio, keep);
	CHECK_NAMED("nan ranks low", keep[8] == 1 && keep[9] == 1);
	qn_uf_union(u, 0, 2);
	qn_uf_union(u, 2, 5);
	qn_uf_keep(u, NULL, keep);
	CHECK_NAMED("merged keep earliest", keep[9] == 0 && keep[5] == 0);
	qn_uf_free(u);
	qn_uf_free(NULL);

	/* Complete linkage: 0-1-2-3 is a chain; only neighbours are similar. */
	u = qn_uf_new(4);
	CHECK_NAMED("linkage joins a similar pair", qn_uf_union_if_all(u, 1, 0, ok_pair, NULL) == 1);
	CHECK_NAMED("linkage refuses a chain", qn_uf_union_if_all(u, 2, 1, ok_pair, NULL) == 0);
	CHECK_NAMED("linkage joins the rest", qn_uf_union_if_all(u, 3, 2, ok_pair, NULL) == 1);
	CHECK_NAMED("two clusters", qn_uf_find(u, 0) == qn_uf_find(u, 1) &&
					    qn_uf_find(u, 2) == qn_uf_find(u, 3) &&
					    qn_uf_find(u, 1) != qn_uf_find(u, 2));
	qn_uf_free(u);
}

/* Runs gen_neardup and neardup_eval; returns the evaluator's exit status. */
static int eval(const char *dir, const char *corpus, const char *truth, const char *flags,
		double *recall, double *precision)
{
	char cmd[4096 + 256], line[512];
	FILE *p;

	snprintf(cmd, sizeof cmd, "'%s/neardup_eval' %s '%s' '%s' 2>&1", dir, flags, corpus, truth);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	*recall = *precision = -1;
	while (fgets(line, sizeof line, p)) {
		fputs("  ", stdout);
		fputs(line, stdout);
		char *s;
		if ((s = strstr(line, "recall_cluster=")))
			*recall = atof(s + 15);
		if ((s = strstr(line, "precision_cluster=")))
			*precision = atof(s + 18);
	}
	return pclose(p);
}

static void test_end_to_end(const char *argv0)
{
	char dir[2048], corpus[64], truth[64], cmd[4096 + 256];
	const char *env = getenv("QN_TESTS");
	double r, p;
	int fd;

	if (env && *env) {
		snprintf(dir, sizeof dir, "%s", env);
	} else {
		snprintf(dir, sizeof dir, "%s", argv0);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		else
			snprintf(dir, sizeof dir, ".");
	}
	snprintf(corpus, sizeof corpus, "/tmp/qn_neardup_XXXXXX");
	snprintf(truth, sizeof truth, "/tmp/qn_neartru_XXXXXX");
	if ((fd = mkstemp(corpus)) >= 0)
		close(fd);
	if ((fd = mkstemp(truth)) >= 0)
		close(fd);
	snprintf(cmd, sizeof cmd, "'%s/gen_neardup' -t '%s' 2000 7 > '%s'", dir, truth, corpus);
	CHECK_NAMED("gen_neardup runs", system(cmd) == 0);

	int rc = eval(dir, corpus, truth, "", &r, &p);
	CHECK_NAMED("eval runs", rc == 0);
	CHECK_NAMED("recall >= 0.95", r >= 0.95);
	CHECK_NAMED("precision >= 0.95", p >= 0.95);
	rc = eval(dir, corpus, truth, "--verify", &r, &p);
	CHECK_NAMED("eval --verify runs", rc == 0);
	CHECK_NAMED("recall >= 0.95 with verify", r >= 0.95);
	CHECK_NAMED("precision >= 0.99 with verify", p >= 0.99);

	/* The generator is a pure function of N and SEED. */
	snprintf(cmd, sizeof cmd, "'%s/gen_neardup' 2000 7 | cmp -s - '%s'", dir, corpus);
	CHECK_NAMED("generator deterministic", system(cmd) == 0);
	unlink(corpus);
	unlink(truth);
}

int main(int argc, char **argv)
{
	struct qn_minhash_params p;
	struct qn_err e;

	qn_minhash_params_default(&p);
	mh = qn_minhash_new(&p, &e);
	CHECK_NAMED("new", mh != NULL);
	if (!mh)
		return 1;
	test_normalize();
	test_shingles();
	test_signatures();
	test_jaccard();
	test_estimate_and_lsh();
	test_union_find();
	test_end_to_end(argv[0]);
	qn_minhash_free(mh);
	return CHECK_DONE();
}
