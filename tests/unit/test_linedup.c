/*
 * test_linedup.c - clean/linedup: the line key (case, whitespace, digits,
 * Unicode, invalid bytes, long lines against a direct xxh3 of the key),
 * both passes end to end with the max_docs boundary, exact bytes of the
 * kept lines, the counts, min_chars, saturation, growth to a million
 * distinct lines, the cap (eviction and its stated error bound), and apply
 * from several threads on one table.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "hash.h"
#include "linedup.h"

static struct qn_buf out;
static uint64_t n_removed, n_removed_bytes;

/* Pass A over docs (NULL-terminated); a fresh table, the caller frees it. */
static struct cn_linecount *count_docs(const struct cn_linedup_opts *o, const char *const *docs,
				       size_t cap)
{
	struct cn_linecount *t = cn_linecount_new(cap);

	for (size_t i = 0; t && docs[i]; i++) {
		uint64_t *h;
		size_t n;
		if (cn_linedup_hashes(o, docs[i], strlen(docs[i]), &h, &n) < 0 ||
		    cn_linecount_add(t, h, n) < 0) {
			free(h);
			cn_linecount_free(t);
			return NULL;
		}
		free(h);
	}
	return t;
}

static const char *apply(const struct cn_linedup_opts *o, const struct cn_linecount *t,
			 const char *s)
{
	n_removed = n_removed_bytes = 99;
	if (cn_linedup_apply(o, t, s, strlen(s), &out, &n_removed, &n_removed_bytes) < 0)
		return "(error)";
	return out.data;
}

static uint64_t lh(const struct cn_linedup_opts *o, const char *s)
{
	uint64_t h = 0;

	return cn_linedup_line_hash(o, s, strlen(s), &h) ? h : 0;
}

static void test_key(void)
{
	struct cn_linedup_opts o;
	uint64_t a;

	cn_linedup_opts_init(&o);
	CHECK(o.min_chars == 0 && o.max_docs == 1 && o.seed == 0);
	a = lh(NULL, "copyright 0000 acme");
	CHECK(a != 0);
	CHECK_NAMED("key: case", lh(NULL, "COPYRIGHT 0000 Acme") == a);
	CHECK_NAMED("key: digits", lh(NULL, "copyright 2021 acme") == a);
	CHECK_NAMED("key: strip ascii", lh(NULL, " \t copyright 1999 ACME \r") == a);
	CHECK_NAMED("key: strip unicode spaces",
		    lh(NULL, "\xc2\xa0\xe3\x80\x80\xe2\x80\x83"
			     "copyright 1999 ACME\xe2\x80\xaf\xc2\x85") == a);
	CHECK_NAMED("key: arabic-indic digits",
		    lh(NULL, "copyright \xd9\xa2\xd9\xa0\xd9\xa2\xd9\xa3 acme") == a);
	CHECK_NAMED("key: fullwidth digits",
		    lh(NULL, "copyright \xef\xbc\x91\xef\xbc\x99\xef\xbc\x99\xef\xbc\x99 acme") ==
			a);
	CHECK_NAMED("key: inner spaces matter", lh(NULL, "copyright  0000 acme") != a);
	CHECK_NAMED("key: words matter", lh(NULL, "copyright 0000 acne") != a);
	CHECK_NAMED("key: digit count matters", lh(NULL, "copyright 000 acme") != a);
	CHECK_NAMED("key: unicode case", lh(NULL, "\xc3\x89T\xc3\x89 \xc3\x80 PARIS") ==
					     lh(NULL, "\xc3\xa9t\xc3\xa9 \xc3\xa0 paris"));
	CHECK_NAMED("key: greek/cyrillic case",
		    lh(NULL, "\xce\xa3\xd0\x96") == lh(NULL, "\xcf\x83\xd0\xb6"));
	CHECK_NAMED("key: 2-byte upper, 3-byte lower",
		    lh(NULL, "x\xc8\xba") == lh(NULL, "x\xe2\xb1\xa5"));
	CHECK_NAMED("key: invalid bytes kept", lh(NULL, "\xff\xfe"
							"AB") == lh(NULL, "\xff\xfe"
									  "ab"));
	CHECK_NAMED("key: invalid bytes differ", lh(NULL, "\xff\xfe"
							  "ab") != lh(NULL, "\xff\xfd"
									    "ab"));
	CHECK_NAMED("key: lone lead byte at end", lh(NULL, "ab\xc2") != lh(NULL, "ab"));
	CHECK_NAMED("blank: empty", !cn_linedup_line_hash(NULL, "", 0, &a));
	CHECK_NAMED("blank: whitespace",
		    !cn_linedup_line_hash(NULL, " \t\r\xc2\xa0\xe3\x80\x80", 8, &a));
	CHECK_NAMED("blank: newline only", !cn_linedup_line_hash(NULL, "\n", 1, &a));

	/* the key is what the header says: compare with xxh3 of it directly */
	o.seed = 77;
	CHECK_NAMED("key == xxh3(key)",
		    lh(&o, "  Hello World 42 ") == qn_xxh3_64("hello world 00", 14, 77));
	/* the bytes around 'A'..'Z' and '0'..'9' are not folded, eight at a time or one */
	CHECK_NAMED("key: neighbours of A-Z, 0-9 kept",
		    lh(&o, "@[`{/:\x7f~@[`{/:\x7f~@[") ==
			qn_xxh3_64("@[`{/:\x7f~@[`{/:\x7f~@[", 18, 77));
	CHECK_NAMED("key: AZaz09 at every offset",
		    lh(&o, "xAZaz09AZaz09AZaz09") == qn_xxh3_64("xazaz00azaz00azaz00", 19, 77));
	CHECK_NAMED("seed changes hash", lh(&o, "hello") != lh(NULL, "hello"));
	{
		/* long lines are streamed in chunks: same hash as one shot */
		static char up[5001], low[5001], uni[3000], unilow[4000];
		for (int i = 0; i < 5000; i++) {
			up[i] = (char)('A' + i % 26);
			low[i] = (char)('a' + i % 26);
		}
		CHECK_NAMED("long line == xxh3(key)", lh(&o, up) == qn_xxh3_64(low, 5000, 77));
		int same = 1;
		for (int n = 470; n < 500; n++) {
			char c = up[n];
			up[n] = 0;
			same &= lh(&o, up) == qn_xxh3_64(low, (size_t)n, 77);
			up[n] = c;
		}
		CHECK_NAMED("lengths round the chunk size", same);
		/* 2-byte upper case that lowers to 3 bytes, across chunk ends */
		size_t k = 0, m = 0;
		for (int i = 0; i < 1000; i++) {
			memcpy(uni + k, "\xc8\xba", 2); /* U+023A -> U+2C65 */
			k += 2;
			memcpy(unilow + m, "\xe2\xb1\xa5", 3);
			m += 3;
			if (i % 3 == 0) {
				uni[k++] = '7';
				unilow[m++] = '0';
			}
		}
		CHECK_NAMED("growing key across chunks", lh(&o, uni) == qn_xxh3_64(unilow, m, 77));
	}
}

static void test_boundary(void)
{
	struct cn_linedup_opts o;
	cn_linedup_opts_init(&o);
	o.max_docs = 2;
	const char *docs[] = {
	    "First story.\nAll rights reserved.\nWe use cookies.\n",
	    "Second story.\nAll rights reserved.\nWe use cookies.\n",
	    "Third story.\nAll rights reserved.\n",
	    NULL,
	};
	struct cn_linecount *t = count_docs(&o, docs, 0);

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(cn_linecount_distinct(t) == 5);
	CHECK(cn_linecount_get(t, lh(&o, "All rights reserved.")) == 3);
	CHECK(cn_linecount_get(t, lh(&o, "We use cookies.")) == 2);
	CHECK(cn_linecount_get(t, lh(&o, "never seen")) == 0);
	CHECK_STR("> max_docs removed, = max_docs kept", apply(&o, t, docs[0]),
		  "First story.\nWe use cookies.\n");
	CHECK(n_removed == 1 && n_removed_bytes == 21);
	CHECK_STR("doc 3", apply(&o, t, docs[2]), "Third story.\n");
	o.max_docs = 1;
	CHECK_STR("max_docs 1", apply(&o, t, docs[1]), "Second story.\n");
	CHECK(n_removed == 2 && n_removed_bytes == 37);
	o.max_docs = 3;
	CHECK_STR("max_docs 3 keeps all", apply(&o, t, docs[1]), docs[1]);
	CHECK(n_removed == 0 && n_removed_bytes == 0);
	o.max_docs = 0;
	CHECK_STR("max_docs 0 removes every counted line", apply(&o, t, "x\n\nFirst story.\n  \n"),
		  "x\n\n  \n");
	CHECK(n_removed == 1 && n_removed_bytes == 13);
	cn_linecount_free(t);
}

static void test_variants(void)
{
	struct cn_linedup_opts o;
	cn_linedup_opts_init(&o);
	o.max_docs = 2;
	const char *docs[] = {
	    "a\n  Copyright 2021 ACME  \n",
	    "b\ncopyright 1999 acme\n",
	    "c\n\tCOPYRIGHT 2023 Acme\r\n",
	    NULL,
	};
	struct cn_linecount *t = count_docs(&o, docs, 0);

	if (!t)
		return;
	CHECK(cn_linecount_get(t, lh(&o, "copyright 0000 acme")) == 3);
	CHECK_STR("variant 1 removed", apply(&o, t, docs[0]), "a\n");
	CHECK(n_removed == 1 && n_removed_bytes == 24);
	CHECK_STR("variant 3 removed with its CRLF", apply(&o, t, docs[2]), "c\n");
	CHECK_STR("another variant removed",
		  apply(&o, t, "COPYRIGHT 1 ACME\nCopyright 2024 Acme\n"), "COPYRIGHT 1 ACME\n");
	cn_linecount_free(t);
}

static void test_repeats_in_doc(void)
{
	struct cn_linedup_opts o;
	struct qn_buf d;
	uint64_t *h;
	size_t n;

	cn_linedup_opts_init(&o);
	qn_buf_init(&d, QN_BUF_UNLIMITED);
	for (int i = 0; i < 50; i++)
		qn_buf_printf(&d, "Share this page\nPage %02d of 50\n", i + 1);
	qn_buf_adds(&d, "unique line\n\n\n   \n");
	CHECK(cn_linedup_hashes(&o, d.data, d.len, &h, &n) == 0);
	CHECK_NAMED("50 copies of two lines + 1: three distinct", n == 3);
	CHECK(n == 3 && h[0] < h[1] && h[1] < h[2]);
	struct cn_linecount *t = cn_linecount_new(0);
	if (t && n == 3) {
		CHECK(cn_linecount_add(t, h, n) == 0);
		CHECK_NAMED("repeated line counts once",
			    cn_linecount_get(t, lh(&o, "share this page")) == 1);
		CHECK_NAMED("digit variants count once",
			    cn_linecount_get(t, lh(&o, "page 77 of 77")) == 1);
		CHECK_STR("all 50 copies kept at count 1", apply(&o, t, d.data), d.data);
		CHECK(cn_linecount_add(t, h, n) == 0);
		CHECK_STR("a second document removes them", apply(&o, t, d.data), "\n\n   \n");
		CHECK(n_removed == 101 && n_removed_bytes == d.len - 6);
	}
	free(h);
	cn_linecount_free(t);

	/* nothing counted: no array */
	h = (uint64_t *)&n;
	CHECK(cn_linedup_hashes(&o, "\n \n\t\n", 5, &h, &n) == 0 && h == NULL && n == 0);
	CHECK(cn_linedup_hashes(&o, NULL, 0, &h, &n) == 0 && h == NULL && n == 0);

	/* a big document with repeats: sorted, distinct, the same set as line by line */
	qn_buf_reset(&d);
	uint64_t x = 12345;
	for (int i = 0; i < 20000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		qn_buf_printf(&d, "line %c%c %d\n", 'a' + (int)(x >> 59),
			      'a' + (int)((x >> 40) & 15), (int)(x >> 61));
	}
	CHECK(cn_linedup_hashes(&o, d.data, d.len, &h, &n) == 0);
	{
		int sorted = 1, same = 1;
		size_t want = 0;
		for (size_t i = 1; i < n; i++)
			sorted &= h[i - 1] < h[i];
		/* 32 * 16 letter pairs, the number is folded to 0 */
		for (int a = 0; a < 32; a++)
			for (int b = 0; b < 16; b++) {
				char line[32];
				uint64_t y;
				snprintf(line, sizeof line, "LINE %c%c 9", 'a' + a, 'a' + b);
				y = lh(&o, line);
				int found = 0;
				for (size_t i = 0; i < n; i++)
					found |= h[i] == y;
				want += found;
			}
		same = want == n;
		CHECK_NAMED("big doc: strictly ascending", sorted);
		CHECK_NAMED("big doc: every hash is a line's", same && n > 400 && n <= 512);
	}
	free(h);

	/* one line 100000 times: the sort's all-equal case */
	qn_buf_reset(&d);
	for (int i = 0; i < 100000; i++)
		qn_buf_adds(&d, "Same\n");
	CHECK(cn_linedup_hashes(&o, d.data, d.len, &h, &n) == 0 && n == 1 &&
	      h[0] == lh(&o, "same"));
	free(h);
	qn_buf_release(&d);
}

static void test_min_chars(void)
{
	struct cn_linedup_opts o;
	uint64_t h;

	cn_linedup_opts_init(&o);
	o.min_chars = 5;
	CHECK_NAMED("min 5: 'Home' not counted", !cn_linedup_line_hash(&o, "Home", 4, &h));
	CHECK_NAMED("min 5: '  Home  ' not counted", !cn_linedup_line_hash(&o, "  Home  ", 8, &h));
	CHECK_NAMED("min 5: 'Menu!' counted", cn_linedup_line_hash(&o, "Menu!", 5, &h));
	CHECK_NAMED("min 5: 4 code points in 8 bytes not counted",
		    !cn_linedup_line_hash(&o, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, &h));
	CHECK_NAMED("min 5: 5 code points counted",
		    cn_linedup_line_hash(&o, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9z", 9, &h));
	const char *docs[] = {"Home\nShare it\nBody one.\n", "Home\nShare it\nBody two.\n",
			      "Home\nShare it\n", NULL};
	struct cn_linecount *t = count_docs(&o, docs, 0);
	if (!t)
		return;
	CHECK(cn_linecount_distinct(t) == 3);
	CHECK_STR("short line kept, long one removed", apply(&o, t, docs[0]), "Home\nBody one.\n");
	o.min_chars = 0;
	cn_linecount_free(t);
	t = count_docs(&o, docs, 0);
	if (!t)
		return;
	CHECK_STR("min 0: short line removed too", apply(&o, t, docs[1]), "Body two.\n");
	cn_linecount_free(t);
}

static void test_bytes(void)
{
	struct cn_linedup_opts o;
	cn_linedup_opts_init(&o);
	const char *docs[] = {"boiler\nnav\n", "BOILER\nNav\n", NULL};
	struct cn_linecount *t = count_docs(&o, docs, 0);

	if (!t)
		return;
	CHECK_STR("empty text", apply(&o, t, ""), "");
	CHECK(n_removed == 0 && n_removed_bytes == 0 && out.data != NULL);
	CHECK_STR("nothing removed: exact copy", apply(&o, t, "  a  \n\n\tb\t\r\n\n"),
		  "  a  \n\n\tb\t\r\n\n");
	CHECK_STR("last line without newline kept", apply(&o, t, "boiler\nend"), "end");
	CHECK(n_removed == 1 && n_removed_bytes == 7);
	CHECK_STR("last line without newline removed", apply(&o, t, "a\n nav "), "a\n");
	CHECK(n_removed == 1 && n_removed_bytes == 5);
	CHECK_STR("only boilerplate", apply(&o, t, "boiler\nnav\nnav"), "");
	CHECK(n_removed == 3 && n_removed_bytes == 14);
	CHECK_STR("kept bytes exact",
		  apply(&o, t, "\xc2\xa0 x  y \r\nboiler\r\n\r\n  NAV\t\n\xff\xfe\nz"),
		  "\xc2\xa0 x  y \r\n\r\n\xff\xfe\nz");
	CHECK(n_removed == 2 && n_removed_bytes == 15);
	CHECK_STR("blank lines between kept", apply(&o, t, "\n\nboiler\n\n"), "\n\n\n");
	CHECK(n_removed == 1);
	CHECK(cn_linedup_apply(&o, t, NULL, 0, &out, NULL, NULL) == 0 && out.len == 0);

	/* out's maximum */
	struct qn_buf small;
	qn_buf_init(&small, 8);
	CHECK_NAMED("past out->max: -1",
		    cn_linedup_apply(&o, t, "0123456789\n", 11, &small, &n_removed, NULL) < 0);
	CHECK(small.len == 0 && n_removed == 0);
	CHECK_NAMED("fits after removal",
		    cn_linedup_apply(&o, t, "boiler\n0123\n", 12, &small, &n_removed, NULL) == 0 &&
			small.len == 5);
	qn_buf_release(&small);

	/* a mismatched seed finds nothing */
	o.seed = 1;
	CHECK_STR("other seed removes nothing", apply(&o, t, "boiler\nnav\n"), "boiler\nnav\n");
	cn_linecount_free(t);
}

static void test_saturation(void)
{
	struct cn_linecount *t = cn_linecount_new(0);
	struct cn_linedup_opts o;
	uint64_t h = lh(NULL, "saturated"), one = 1;

	if (!t)
		return;
	cn_linedup_opts_init(&o);
	CHECK(cn_linecount_add_count(t, h, UINT32_MAX - 1) == 0);
	CHECK(cn_linecount_get(t, h) == UINT32_MAX - 1);
	CHECK(cn_linecount_add(t, &h, 1) == 0 && cn_linecount_get(t, h) == UINT32_MAX);
	CHECK_NAMED("saturates",
		    cn_linecount_add(t, &h, 1) == 0 && cn_linecount_get(t, h) == UINT32_MAX);
	CHECK(cn_linecount_add_count(t, one, 5) == 0 &&
	      cn_linecount_add_count(t, one, UINT32_MAX) == 0 &&
	      cn_linecount_get(t, one) == UINT32_MAX);
	CHECK(cn_linecount_add_count(t, 42, 0) == 0 && cn_linecount_get(t, 42) == 0);
	CHECK(cn_linecount_distinct(t) == 2);
	CHECK_STR("saturated count removed", apply(&o, t, "Saturated\nx"), "x");
	o.max_docs = UINT32_MAX;
	CHECK_STR("max_docs UINT32_MAX keeps all", apply(&o, t, "Saturated\nx"), "Saturated\nx");
	/* hash 0 is an ordinary key */
	CHECK(cn_linecount_add_count(t, 0, 3) == 0 && cn_linecount_get(t, 0) == 3);
	cn_linecount_free(t);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void test_growth(void)
{
	enum { N = 1000000 };
	struct cn_linecount *t = cn_linecount_new(0);
	uint64_t *h = malloc(N * sizeof *h);
	int ok = 1;

	if (!t || !h) {
		CHECK(t && h);
		return;
	}
	CHECK(cn_linecount_bytes(t) < 16384 + 64);
	for (size_t i = 0; i < N; i++)
		h[i] = mix(i);
	for (size_t i = 0; i < N; i += 1000)
		ok &= cn_linecount_add(t, h + i, 1000) == 0;
	CHECK_NAMED("1M adds", ok);
	CHECK(cn_linecount_distinct(t) == N);
	for (size_t i = 0; i < N; i++)
		if (cn_linecount_get(t, h[i]) != 1)
			ok = 0;
	CHECK_NAMED("1M counts 1", ok);
	CHECK_NAMED("unseen 0",
		    cn_linecount_get(t, mix(N + 1)) == 0 && cn_linecount_get(t, mix(N + 2)) == 0);
	CHECK_NAMED("16..32 bytes a line",
		    cn_linecount_bytes(t) >= 16u * N && cn_linecount_bytes(t) <= 32u * N + 64);
	printf("info: 1M distinct lines, %zu bytes (%.1f a line)\n", cn_linecount_bytes(t),
	       (double)cn_linecount_bytes(t) / N);
	CHECK(cn_linecount_add(t, h, N) == 0);
	for (size_t i = 0; i < N; i++)
		if (cn_linecount_get(t, h[i]) != 2)
			ok = 0;
	CHECK_NAMED("1M counts 2", ok && cn_linecount_distinct(t) == N);
	CHECK(cn_linecount_evicted(t) == 0 && cn_linecount_undercount(t) == 0);
	free(h);
	cn_linecount_free(t);
}

static void test_cap(void)
{
	enum { CAP = 1000, DOCS = 500 };
	struct cn_linecount *t = cn_linecount_new(CAP);
	uint64_t h[30], boiler[10], far = mix(777777);
	size_t max_distinct = 0;
	int added = 1;

	if (!t)
		return;
	CHECK(cn_linecount_bytes(t) <= 32u * CAP + 64);
	for (int i = 0; i < 10; i++)
		boiler[i] = mix(1000000 + (uint64_t)i);
	/* ten boilerplate lines in every document, twenty new lines each */
	for (int d = 0; d < DOCS; d++) {
		for (int i = 0; i < 10; i++)
			h[i] = boiler[i];
		for (int i = 0; i < 20; i++)
			h[10 + i] = mix((uint64_t)d * 20 + (uint64_t)i);
		if (d == 0 || d == DOCS - 1)
			h[29] = far;
		added &= cn_linecount_add(t, h, 30) == 0;
		if (cn_linecount_distinct(t) > max_distinct)
			max_distinct = cn_linecount_distinct(t);
	}
	CHECK(added);
	CHECK_NAMED("cap holds", max_distinct == CAP);
	CHECK(cn_linecount_bytes(t) <= 32u * CAP + 64);
	CHECK_NAMED("evictions happened", cn_linecount_evicted(t) > 5000);
	{
		int ok = 1;
		for (int i = 0; i < 10; i++)
			ok &= cn_linecount_get(t, boiler[i]) == DOCS;
		CHECK_NAMED("boilerplate counted exactly", ok);
	}
	/* every round evicted count-1 entries only */
	CHECK_NAMED("undercount bound = rounds",
		    cn_linecount_undercount(t) > 5 && cn_linecount_undercount(t) < 1000);
	CHECK_NAMED("documented cost: a line far apart is missed", cn_linecount_get(t, far) == 1);
	cn_linecount_free(t);

	/* threshold above 1: half the entries at 3, half at 7 */
	t = cn_linecount_new(100);
	if (!t)
		return;
	for (uint64_t i = 0; i < 100; i++)
		cn_linecount_add_count(t, mix(i), i < 50 ? 3 : 7);
	CHECK(cn_linecount_distinct(t) == 100 && cn_linecount_evicted(t) == 0);
	CHECK(cn_linecount_add_count(t, mix(500), 1) == 0);
	CHECK_NAMED("T=3 evicts the 3s", cn_linecount_distinct(t) == 51 &&
					     cn_linecount_evicted(t) == 50 &&
					     cn_linecount_undercount(t) == 3);
	CHECK(cn_linecount_get(t, mix(10)) == 0 && cn_linecount_get(t, mix(60)) == 7 &&
	      cn_linecount_get(t, mix(500)) == 1);
	cn_linecount_free(t);

	/* counts past 255: the threshold search */
	t = cn_linecount_new(100);
	if (!t)
		return;
	for (uint64_t i = 0; i < 100; i++)
		cn_linecount_add_count(t, mix(i), 1000 + (uint32_t)i);
	CHECK(cn_linecount_add_count(t, mix(500), 1) == 0);
	CHECK_NAMED("T=1049", cn_linecount_undercount(t) == 1049 && cn_linecount_distinct(t) == 51);
	CHECK(cn_linecount_get(t, mix(49)) == 0 && cn_linecount_get(t, mix(50)) == 1050);
	cn_linecount_free(t);

	/* the bound, on a skewed stream: stored <= true <= stored + undercount */
	enum { LINES = 20000, ADDS = 200000 };
	uint32_t *truth = calloc(LINES, sizeof *truth);
	uint64_t *all = malloc(ADDS * sizeof *all);
	t = cn_linecount_new(2000);
	if (!truth || !all || !t) {
		free(truth);
		free(all);
		cn_linecount_free(t);
		return;
	}
	for (size_t i = 0; i < ADDS; i++) {
		uint64_t r = mix(i ^ 0xabcdef);
		/* about a third of the adds go to 30 lines, the rest spread out */
		uint64_t line = r % 3 == 0 ? (r >> 8) % 30 : (r >> 8) % LINES;
		truth[line]++;
		all[i] = mix(line + 5000000);
		cn_linecount_add(t, &all[i], 1);
	}
	{
		int low = 1, bound = 1, hot = 1;
		uint64_t u = cn_linecount_undercount(t);
		for (uint64_t l = 0; l < LINES; l++) {
			uint32_t c = cn_linecount_get(t, mix(l + 5000000));
			low &= c <= truth[l];
			bound &= truth[l] - c <= u;
			if (l < 30)
				hot &= c > 0 && truth[l] - c <= u;
		}
		CHECK_NAMED("capped counts never high", low);
		CHECK_NAMED("capped counts within the bound", bound);
		CHECK_NAMED("hot lines kept", hot);
		CHECK(cn_linecount_distinct(t) <= 2000 && cn_linecount_evicted(t) > 0);
		printf("info: skewed stream, cap 2000: %llu evicted, undercount bound %llu\n",
		       (unsigned long long)cn_linecount_evicted(t), (unsigned long long)u);
	}
	free(truth);
	free(all);
	cn_linecount_free(t);

	/* cap 1: every new line evicts the one before */
	t = cn_linecount_new(1);
	if (!t)
		return;
	cn_linecount_add_count(t, 1, 1);
	cn_linecount_add_count(t, 2, 1);
	CHECK(cn_linecount_distinct(t) == 1 && cn_linecount_get(t, 1) == 0 &&
	      cn_linecount_get(t, 2) == 1);
	cn_linecount_free(t);

	/* apply on a capped table: boilerplate still goes */
	struct cn_linedup_opts o;
	cn_linedup_opts_init(&o);
	t = cn_linecount_new(50);
	if (!t)
		return;
	for (int d = 0; d < 200; d++) {
		char doc[128];
		uint64_t *hh;
		size_t n;
		snprintf(doc, sizeof doc, "Menu\nStory %c%c%c\nmore %c%c text\n", 'a' + d % 26,
			 'a' + d / 26 % 26, 'a' + d / 7 % 26, 'a' + d % 13, 'a' + d / 13);
		if (cn_linedup_hashes(&o, doc, strlen(doc), &hh, &n) == 0)
			cn_linecount_add(t, hh, n);
		free(hh);
	}
	CHECK(cn_linecount_evicted(t) > 0);
	CHECK_STR("capped table removes the menu", apply(&o, t, "Menu\nStory zzz\n"),
		  "Story zzz\n");
	cn_linecount_free(t);
}

/* apply from several threads on one read-only table */
struct job {
	const struct cn_linecount *t;
	const char *text;
	size_t len, want_len;
	int ok;
};

static void *run_job(void *arg)
{
	struct job *j = arg;
	struct qn_buf b;
	uint64_t r;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	j->ok = 1;
	for (int i = 0; i < 50; i++)
		if (cn_linedup_apply(NULL, j->t, j->text, j->len, &b, &r, NULL) < 0 ||
		    b.len != j->want_len)
			j->ok = 0;
	qn_buf_release(&b);
	return NULL;
}

static void test_threads(void)
{
	struct qn_buf d;
	struct cn_linecount *t = cn_linecount_new(0);
	struct job jobs[4];
	pthread_t th[4];
	uint64_t *h;
	size_t n;

	qn_buf_init(&d, QN_BUF_UNLIMITED);
	for (int i = 0; i < 2000; i++)
		qn_buf_printf(&d, i % 4 ? "body line %c of the story\n" : "Cookie notice\n",
			      'a' + i % 26);
	if (!t || cn_linedup_hashes(NULL, d.data, d.len, &h, &n) < 0) {
		CHECK(0);
		return;
	}
	cn_linecount_add(t, h, n);
	free(h);
	cn_linecount_add_count(t, lh(NULL, "cookie notice"), 1); /* now 2: removed */
	CHECK(cn_linedup_apply(NULL, t, d.data, d.len, &out, &n_removed, &n_removed_bytes) == 0);
	CHECK(n_removed == 500 && out.len == d.len - n_removed_bytes);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct job){t, d.data, d.len, out.len, 0};
		pthread_create(&th[i], NULL, run_job, &jobs[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_NAMED("thread apply agrees", jobs[i].ok);
	}
	cn_linecount_free(t);
	qn_buf_release(&d);
}

int main(void)
{
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	test_key();
	test_boundary();
	test_variants();
	test_repeats_in_doc();
	test_min_chars();
	test_bytes();
	test_saturation();
	test_growth();
	test_cap();
	test_threads();
	qn_buf_release(&out);
	cn_linecount_free(NULL);
	return CHECK_DONE();
}
