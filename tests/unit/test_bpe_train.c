/*
 * test_bpe_train.c - lib/bpe_train: merge order worked out by hand, the tie
 * rule, min_frequency, special tokens, saturating and 128-bit counts, the
 * same files for 1, 2 and 4 threads, the writers, bad options, and random
 * corpora checked merge by merge against a naive trainer written here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bpe.h"
#include "bpe_train.h"
#include "buf.h"
#include "check.h"
#include "err.h"

static int mk_check = 1; /* qn_bpet_opts.check for mk() */

static struct qn_bpet *mk(const char *pattern, size_t vocab, uint64_t minf, int threads,
			  const char *const *specials, size_t nspecials)
{
	struct qn_bpet_opts o;
	struct qn_err e = {{0}};
	struct qn_bpet *t;
	qn_bpet_opts_default(&o);
	o.pattern = pattern;
	o.vocab_size = vocab;
	o.min_frequency = minf;
	o.threads = threads;
	o.specials = specials;
	o.nspecials = nspecials;
	o.check = mk_check;
	t = qn_bpet_new(&o, &e);
	if (!t)
		printf("  qn_bpet_new: %s\n", e.msg);
	return t;
}

static void add(struct qn_bpet *t, const char *s, int times)
{
	struct qn_err e;
	while (times-- > 0)
		if (qn_bpet_add_text(t, s, strlen(s), &e) < 0)
			printf("  add_text: %s\n", e.msg);
}

static int train(struct qn_bpet *t)
{
	struct qn_err e = {{0}};
	int rc = qn_bpet_train(t, &e);
	if (rc < 0)
		printf("  train: %s\n", e.msg);
	return rc;
}

/* "left+right=count" for rank r, e.g. "e+s=9". */
static const char *merge_str(struct qn_bpet *t, size_t r)
{
	static char s[256];
	uint32_t l, rt;
	uint64_t c;
	size_t nl, nr;
	const unsigned char *bl, *br;
	if (qn_bpet_merge(t, r, &l, &rt, &c) < 0)
		return "(none)";
	bl = qn_bpet_token(t, l, &nl);
	br = qn_bpet_token(t, rt, &nr);
	snprintf(s, sizeof s, "%.*s+%.*s=%llu", (int)nl, bl, (int)nr, br, (unsigned long long)c);
	return s;
}

/*
 * Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3, each
 * text one pre-token. Initial pairs: e-s 9, s-t 9, w-e 8, l-o 7, o-w 7,
 * n-e 6, e-w 6, w-i 3, i-d 3, d-e 3, e-r 2. By hand, with the tie rule
 * (smallest left bytes, then right bytes):
 *   256 e+s=9 (ties s+t; "e" < "s")   257 es+t=9
 *   258 l+o=7 (ties o+w)              259 lo+w=7
 *   260 e+w=6 (ties n+e, w+est)       261 ew+est=6 ("ew" < "n")
 *   262 n+ewest=6                     263 d+est=3 (ties w+i, i+dest)
 *   264 i+dest=3                      265 w+idest=3
 *   266 e+r=2 (ties low+e)            267 low+er=2
 * and then no pair is left.
 */
static void test_by_hand(void)
{
	static const char *want[] = {"e+s=9",	 "es+t=9",    "l+o=7",	   "lo+w=7",
				     "e+w=6",	 "ew+est=6",  "n+ewest=6", "d+est=3",
				     "i+dest=3", "w+idest=3", "e+r=2",	   "low+er=2"};
	struct qn_bpet *t = mk("o200k", 300, 2, 1, NULL, 0);
	struct qn_bpet_stats st;
	size_t r, n;
	const unsigned char *b;

	CHECK(t != NULL);
	if (!t)
		return;
	add(t, "low", 5);
	add(t, "lower", 2);
	add(t, "newest", 6);
	add(t, "widest", 3);
	CHECK(train(t) == 0);
	CHECK(qn_bpet_ntokens(t) == 268);
	for (r = 256; r < 268; r++) {
		char name[64];
		snprintf(name, sizeof name, "by hand: rank %zu", r);
		CHECK_STR(name, merge_str(t, r), want[r - 256]);
	}
	b = qn_bpet_token(t, 267, &n);
	CHECK(b && n == 5 && !memcmp(b, "lower", 5));
	b = qn_bpet_token(t, 'A', &n);
	CHECK(b && n == 1 && b[0] == 'A');
	CHECK(qn_bpet_token(t, 268, &n) == NULL);
	CHECK(qn_bpet_merge(t, 65, NULL, NULL, NULL) == -1);
	qn_bpet_get_stats(t, &st);
	CHECK(st.stopped_early == 1);
	CHECK(st.merges == 12);
	CHECK(st.texts == 16 && st.pretokens == 16 && st.distinct == 4);
	qn_bpet_free(t);

	/* min_frequency 3 stops before e+r (2). */
	t = mk("o200k", 300, 3, 1, NULL, 0);
	add(t, "low", 5);
	add(t, "lower", 2);
	add(t, "newest", 6);
	add(t, "widest", 3);
	CHECK(train(t) == 0);
	CHECK(qn_bpet_ntokens(t) == 266);
	CHECK_STR("min_frequency 3: last merge", merge_str(t, 265), "w+idest=3");
	qn_bpet_get_stats(t, &st);
	CHECK(st.stopped_early == 1);
	qn_bpet_free(t);

	/* vocab_size 260 stops after four merges, not early. */
	t = mk("o200k", 260, 2, 1, NULL, 0);
	add(t, "low", 5);
	add(t, "lower", 2);
	add(t, "newest", 6);
	add(t, "widest", 3);
	CHECK(train(t) == 0);
	CHECK(qn_bpet_ntokens(t) == 260);
	CHECK_STR("vocab 260: last merge", merge_str(t, 259), "lo+w=7");
	qn_bpet_get_stats(t, &st);
	CHECK(st.stopped_early == 0);
	qn_bpet_free(t);

	/* The same words in one text, through the GPT-2 pattern (" low" etc.). */
	t = mk("gpt2", 300, 2, 1, NULL, 0);
	add(t,
	    "low low low low low lower lower newest newest newest newest newest newest widest "
	    "widest widest",
	    1);
	CHECK(train(t) == 0);
	CHECK_STR("gpt2 pieces: first merge", merge_str(t, 256), "e+s=9");
	CHECK_STR("gpt2 pieces: second merge", merge_str(t, 257), "es+t=9");
	CHECK_STR("gpt2 pieces: third merge", merge_str(t, 258),
		  "l+o=7"); /* "low", 4 " low", 2 " lower" */
	CHECK_STR("gpt2 pieces: fifth merge", merge_str(t, 260), " +low=6");
	qn_bpet_free(t);
}

static void test_ties(void)
{
	struct qn_bpet *t = mk("o200k", 300, 1, 1, NULL, 0);
	struct qn_err e;
	if (!t)
		return;
	/* Equal counts: (a,b) < (b,a) < (x,y). */
	qn_bpet_add_pretoken(t, "xy", 2, 3, &e);
	qn_bpet_add_pretoken(t, "ba", 2, 3, &e);
	qn_bpet_add_pretoken(t, "ab", 2, 3, &e);
	CHECK(train(t) == 0);
	CHECK_STR("tie 1", merge_str(t, 256), "a+b=3");
	CHECK_STR("tie 2", merge_str(t, 257), "b+a=3");
	CHECK_STR("tie 3", merge_str(t, 258), "x+y=3");
	qn_bpet_free(t);

	/* A proper prefix comes first: (a,y) before (ab,z). */
	t = mk("o200k", 300, 1, 1, NULL, 0);
	qn_bpet_add_pretoken(t, "ab", 2, 10, &e);
	qn_bpet_add_pretoken(t, "abz", 3, 3, &e);
	qn_bpet_add_pretoken(t, "ay", 2, 3, &e);
	CHECK(train(t) == 0);
	CHECK_STR("prefix: 1", merge_str(t, 256), "a+b=13");
	CHECK_STR("prefix: 2", merge_str(t, 257), "a+y=3");
	CHECK_STR("prefix: 3", merge_str(t, 258), "ab+z=3");
	qn_bpet_free(t);

	/* Bytes compare unsigned: 'A' (0x41) before 0xC3. */
	t = mk("o200k", 300, 1, 1, NULL, 0);
	qn_bpet_add_pretoken(t, "\xC3q", 2, 2, &e);
	qn_bpet_add_pretoken(t, "Aq", 2, 2, &e);
	CHECK(train(t) == 0);
	CHECK_STR("unsigned: 1", merge_str(t, 256), "A+q=2");
	qn_bpet_free(t);

	/*
	 * Runs pair up from the left: aaaaa -> aa aa a. Then (aa,a) and (aa,aa)
	 * tie and "a" is a prefix of "aa": aa aaa, and last aa+aaa.
	 */
	t = mk("o200k", 300, 1, 1, NULL, 0);
	qn_bpet_add_pretoken(t, "aaaaa", 5, 1, &e);
	CHECK(train(t) == 0);
	CHECK_STR("run: 1", merge_str(t, 256), "a+a=4");
	CHECK_STR("run: 2", merge_str(t, 257), "aa+a=1");
	CHECK_STR("run: 3", merge_str(t, 258), "aa+aaa=1");
	CHECK(qn_bpet_ntokens(t) == 259);
	qn_bpet_free(t);
}

static void test_counts(void)
{
	struct qn_bpet *t = mk("o200k", 300, 1, 1, NULL, 0);
	struct qn_err e;
	if (!t)
		return;
	/* "ab" saturates at UINT64_MAX (wrapping would give 4) and ties with "cd". */
	CHECK(qn_bpet_add_pretoken(t, "cd", 2, UINT64_MAX, &e) == 0);
	CHECK(qn_bpet_add_pretoken(t, "ab", 2, UINT64_MAX, &e) == 0);
	CHECK(qn_bpet_add_pretoken(t, "ab", 2, 5, &e) == 0);
	CHECK(train(t) == 0);
	CHECK_STR("saturated word count", merge_str(t, 256), "a+b=18446744073709551615");
	CHECK_STR("saturated word count, second", merge_str(t, 257), "c+d=18446744073709551615");
	qn_bpet_free(t);

	/*
	 * Pair counts are exact past 2^64: (y,x) = 2 MAX beats (x,y) = MAX + MAX - 1;
	 * saturated pair counts would tie and the tie rule would pick (x,y).
	 */
	t = mk("o200k", 300, 1, 1, NULL, 0);
	CHECK(qn_bpet_add_pretoken(t, "yxyx", 4, UINT64_MAX, &e) == 0);
	CHECK(qn_bpet_add_pretoken(t, "xy", 2, UINT64_MAX - 1, &e) == 0);
	CHECK(train(t) == 0);
	CHECK_STR("128-bit pair count", merge_str(t, 256), "y+x=18446744073709551615");
	qn_bpet_free(t);
}

static void test_specials(void)
{
	static const char *const eot[] = {"<|endoftext|>"};
	static const char *const two[] = {"ab", "abc"};
	struct qn_bpet *t = mk("gpt2", 400, 2, 1, eot, 1);
	struct qn_buf b;
	json_t *j;
	json_error_t je;
	size_t r;
	int ok = 1;

	if (!t)
		return;
	add(t, "hello<|endoftext|>", 50);
	add(t, "<|endoftext|><|endoftext|> hello", 50);
	CHECK(train(t) == 0);
	for (r = 256; r < qn_bpet_ntokens(t); r++) {
		size_t n;
		const unsigned char *s = qn_bpet_token(t, r, &n);
		char tok[64];
		snprintf(tok, sizeof tok, "%.*s", (int)n, s);
		if (!strstr(" hello", tok))
			ok = 0;
	}
	CHECK_NAMED("specials: learned tokens come from the text between them", ok);
	CHECK(qn_bpet_ntokens(t) > 256);
	CHECK(qn_bpet_nspecials(t) == 1);
	CHECK_STR("specials: name", qn_bpet_special(t, 0), "<|endoftext|>");
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	CHECK(qn_bpet_hf_json_buf(t, &b) == 0);
	j = json_loads(b.data, 0, &je);
	CHECK(j != NULL);
	CHECK(json_integer_value(
		  json_object_get(json_array_get(json_object_get(j, "added_tokens"), 0), "id")) ==
	      (json_int_t)qn_bpet_ntokens(t));
	CHECK_STR("specials: hf content",
		  json_string_value(json_object_get(
		      json_array_get(json_object_get(j, "added_tokens"), 0), "content")),
		  "<|endoftext|>");
	CHECK(json_is_true(
	    json_object_get(json_array_get(json_object_get(j, "added_tokens"), 0), "special")));
	json_decref(j);
	qn_buf_reset(&b);
	CHECK(qn_bpet_config_buf(t, &b) == 0);
	j = json_loads(b.data, 0, &je);
	CHECK(j != NULL);
	CHECK(json_integer_value(
		  json_object_get(json_object_get(j, "special_tokens"), "<|endoftext|>")) ==
	      (json_int_t)qn_bpet_ntokens(t));
	CHECK(json_integer_value(json_object_get(j, "n_vocab")) ==
	      (json_int_t)qn_bpet_ntokens(t) + 1);
	json_decref(j);
	qn_buf_release(&b);
	qn_bpet_free(t);

	/* The longest special at the leftmost place: "zabcq" -> "z", "q" (no pair). */
	t = mk("gpt2", 400, 1, 1, two, 2);
	add(t, "zabcq", 3);
	CHECK(train(t) == 0);
	CHECK(qn_bpet_ntokens(t) == 256);
	qn_bpet_free(t);
	t = mk("gpt2", 400, 1, 1, two, 1); /* only "ab": "z", "cq" -> c+q */
	add(t, "zabcq", 3);
	CHECK(train(t) == 0);
	CHECK_STR("one special: c+q", merge_str(t, 256), "c+q=3");
	qn_bpet_free(t);

	/* vocab_size counts the specials. */
	t = mk("o200k", 258, 1, 1, eot, 1);
	add(t, "abcd", 4);
	CHECK(train(t) == 0);
	CHECK(qn_bpet_ntokens(t) == 257);
	qn_bpet_free(t);
}

static void test_gaps(void)
{
	struct qn_bpet *t = mk("o200k", 300, 1, 1, NULL, 0);
	struct qn_bpet_stats st;
	if (!t)
		return;
	/* Invalid UTF-8 is a piece of its own; its bytes are learned too. */
	add(t,
	    "\xff\xfe"
	    "ab",
	    3);
	CHECK(train(t) == 0);
	CHECK_STR("invalid utf-8: 1", merge_str(t, 256), "a+b=3");
	CHECK(qn_bpet_ntokens(t) == 258);
	qn_bpet_free(t);

	/* An empty match is a boundary: x* over "aaxxbb" -> a a xx b b. */
	t = mk("x*", 300, 1, 1, NULL, 0);
	if (!t)
		return;
	add(t, "aaxxbb", 2);
	CHECK(train(t) == 0);
	qn_bpet_get_stats(t, &st);
	CHECK(st.pretokens == 10);
	CHECK(qn_bpet_ntokens(t) == 257);
	CHECK_STR("empty matches: x+x", merge_str(t, 256), "x+x=2");
	qn_bpet_free(t);
}

static void test_bad(void)
{
	static const char *const dup[] = {"<s>", "<s>"};
	static const char *const empty[] = {""};
	struct qn_bpet_opts o;
	struct qn_err e = {{0}};
	struct qn_bpet *t;
	struct qn_buf b;
	char dir[] = "/tmp/qn_bpetXXXXXX", path[128];

	qn_bpet_opts_default(&o);
	o.vocab_size = 255;
	CHECK(qn_bpet_new(&o, &e) == NULL);
	CHECK(strstr(e.msg, "too small") != NULL);
	qn_bpet_opts_default(&o);
	o.pattern = "(unclosed";
	CHECK(qn_bpet_new(&o, &e) == NULL);
	CHECK(strstr(e.msg, "bad pattern") != NULL);
	o.pattern = "[^\\S]";
	CHECK(qn_bpet_new(&o, &e) == NULL);
	o.pattern = "[a[b]]";
	CHECK(qn_bpet_new(&o, &e) == NULL);
	CHECK(strstr(e.msg, "nested") != NULL);
	o.pattern = "";
	CHECK(qn_bpet_new(&o, &e) == NULL);
	qn_bpet_opts_default(&o);
	o.specials = dup;
	o.nspecials = 2;
	CHECK(qn_bpet_new(&o, &e) == NULL);
	CHECK(strstr(e.msg, "twice") != NULL);
	o.specials = empty;
	o.nspecials = 1;
	CHECK(qn_bpet_new(&o, &e) == NULL);
	qn_bpet_opts_default(&o);
	o.max_bytes = 10;
	t = qn_bpet_new(&o, &e);
	CHECK(t != NULL);
	if (t) {
		CHECK(qn_bpet_add_text(t, "one two three four", 18, &e) == -1);
		CHECK(strstr(e.msg, "distinct pre-tokens") != NULL);
		CHECK(qn_bpet_train(t, &e) == -1);
		qn_bpet_free(t);
	}
	qn_bpet_free(NULL);

	/* Writers: not before training; atomically; a missing folder is an error. */
	t = mk("cl100k", 300, 1, 1, NULL, 0);
	if (!t)
		return;
	add(t, "some text, some text", 3);
	CHECK(qn_bpet_write_tiktoken(t, "/nonexistent/x", &e) == -1);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	CHECK(qn_bpet_tiktoken_buf(t, &b) == -1);
	CHECK(train(t) == 0);
	CHECK(qn_bpet_add_text(t, "x", 1, &e) == -1);
	CHECK(qn_bpet_train(t, &e) == -1);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/no/such/dir/t.tiktoken", dir);
	CHECK(qn_bpet_write_tiktoken(t, path, &e) == -1);
	snprintf(path, sizeof path, "%s/t.tiktoken", dir);
	CHECK(qn_bpet_write_tiktoken(t, path, &e) == 0);
	CHECK(qn_bpet_tiktoken_buf(t, &b) == 0);
	{
		FILE *f = fopen(path, "rb");
		char got[1 << 16];
		size_t n = f ? fread(got, 1, sizeof got, f) : 0;
		CHECK_NAMED("tiktoken file == buffer", n == b.len && !memcmp(got, b.data, n));
		if (f)
			fclose(f);
	}
	CHECK(qn_bpet_write_tiktoken(t, "/dev/full", &e) == -1);
	unlink(path);
	rmdir(dir);
	qn_buf_release(&b);
	qn_bpet_free(t);
}

static void test_writers(void)
{
	struct qn_bpet *t = mk("o200k", 300, 2, 1, NULL, 0);
	struct qn_buf b;
	json_t *j, *m, *v;
	json_error_t je;
	char *p;

	if (!t)
		return;
	add(t, "low", 5);
	add(t, "lower", 2);
	add(t, "newest", 6);
	add(t, "widest", 3);
	add(t, " \"\\\n\x01", 2); /* bytes that need escapes in JSON */
	CHECK(train(t) == 0);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	CHECK(qn_bpet_tiktoken_buf(t, &b) == 0);
	CHECK(!strncmp(b.data, "AA== 0\nAQ== 1\n", 14));
	CHECK(strstr(b.data, "\nZXM= 256\nZXN0 257\n") != NULL); /* "es", "est" */
	CHECK(strstr(b.data, "\nbG93ZXI= ") != NULL);		 /* "lower" */
	p = strrchr(b.data, '\n');
	CHECK(p && p == b.data + b.len - 1);

	qn_buf_reset(&b);
	CHECK(qn_bpet_hf_json_buf(t, &b) == 0);
	j = json_loads(b.data, 0, &je);
	CHECK(j != NULL);
	if (!j) {
		printf("  %s at line %d\n", je.text, je.line);
		qn_buf_release(&b);
		qn_bpet_free(t);
		return;
	}
	m = json_object_get(j, "model");
	v = json_object_get(m, "vocab");
	CHECK_STR("hf: model type", json_string_value(json_object_get(m, "type")), "BPE");
	CHECK(json_object_size(v) == qn_bpet_ntokens(t));
	CHECK(json_integer_value(json_object_get(v, "\xC4\x80")) == 0);	   /* U+0100 <- 0x00 */
	CHECK(json_integer_value(json_object_get(v, "\xC4\xA0")) == ' ');  /* U+0120 <- ' ' */
	CHECK(json_integer_value(json_object_get(v, "\xC4\x8A")) == '\n'); /* U+010A <- '\n' */
	CHECK(json_integer_value(json_object_get(v, "!")) == '!');
	CHECK(json_integer_value(json_object_get(v, "\"")) == '"');
	CHECK(json_integer_value(json_object_get(v, "\\")) == '\\');
	CHECK(json_integer_value(json_object_get(v, "\xC3\xBF")) == 0xFF);
	CHECK(json_integer_value(json_object_get(v, "\xC5\x83")) == 0xAD); /* U+0143, the last */
	CHECK(json_integer_value(json_object_get(v, "es")) == 256);
	CHECK(json_integer_value(json_object_get(v, "lower")) > 256);
	CHECK(json_array_size(json_object_get(m, "merges")) == qn_bpet_ntokens(t) - 256);
	CHECK_STR("hf: first merge",
		  json_string_value(json_array_get(json_object_get(m, "merges"), 0)), "e s");
	CHECK(json_is_false(json_object_get(m, "byte_fallback")));
	CHECK(json_is_false(json_object_get(m, "ignore_merges")));
	CHECK(json_is_null(json_object_get(j, "normalizer")));
	CHECK(json_array_size(json_object_get(j, "added_tokens")) == 0);
	CHECK_STR(
	    "hf: split pattern",
	    json_string_value(json_object_get(
		json_object_get(
		    json_array_get(
			json_object_get(json_object_get(j, "pre_tokenizer"), "pretokenizers"), 0),
		    "pattern"),
		"Regex")),
	    qn_bpet_pattern(t));
	CHECK_STR("hf: decoder",
		  json_string_value(json_object_get(json_object_get(j, "decoder"), "type")),
		  "ByteLevel");
	json_decref(j);

	qn_buf_reset(&b);
	CHECK(qn_bpet_config_buf(t, &b) == 0);
	j = json_loads(b.data, 0, &je);
	CHECK(j != NULL);
	CHECK_STR("config: pattern name", json_string_value(json_object_get(j, "pattern_name")),
		  "o200k");
	CHECK_STR("config: pattern", json_string_value(json_object_get(j, "pattern")),
		  qn_bpet_pattern(t));
	CHECK(json_integer_value(json_object_get(j, "n_tokens")) == (json_int_t)qn_bpet_ntokens(t));
	CHECK(json_object_size(json_object_get(j, "special_tokens")) == 0);
	json_decref(j);
	qn_buf_release(&b);
	qn_bpet_free(t);
}

/* A deterministic corpus in several scripts, large enough for several batches. */
static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static void corpus(struct qn_bpet *t, int ndocs)
{
	static const char *words[] = {"the",	    "of",
				      "and",	    "tokenizer",
				      "merge",	    "pair",
				      "Über",	    "naïve",
				      "café",	    "мир",
				      "привет",	    "слово",
				      "λόγος",	    "ἀρχή",
				      "日本語",	    "東京",
				      "の",	    "です",
				      "한국어",	    "말",
				      "عربى",	    "كلمة",
				      "हिन्दी",	    "शब्द",
				      "🙂",	    "🚀🚀",
				      "x = y + 1;", "if (a) {",
				      "return 0;",  "}",
				      "2024",	    "3.14159",
				      "don't",	    "WE'LL",
				      "\t",	    "\n\n",
				      "  ",	    "--",
				      "->",	    "==",
				      "fn(x)",	    "a_b_c",
				      "Ünïcödé",    "ß",
				      "ﬁ",	    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"};
	struct qn_buf b;
	int d;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (d = 0; d < ndocs; d++) {
		int k, n = 5 + (int)rnd(30);
		struct qn_err e;
		qn_buf_reset(&b);
		for (k = 0; k < n; k++) {
			static const char *syl[] = {"ka", "ri", "to", "sen", "ма", "ло",
						    "ки", "λα", "ση", "の",  "か", "한",
						    "다", "ب",	"ل",  "क",   "र"};
			if (rnd(3)) { /* Zipf-ish: low indexes far more often */
				qn_buf_adds(&b, words[rnd(1 + rnd(sizeof words / sizeof *words))]);
			} else { /* a pseudo-word of 2-4 syllables of one script */
				uint32_t base = rnd(sizeof syl / sizeof *syl - 1), m = 2 + rnd(3);
				while (m--)
					qn_buf_adds(&b, syl[base + rnd(2)]);
			}
			qn_buf_adds(&b, rnd(5) ? " " : (rnd(2) ? ", " : ".\n"));
		}
		if (qn_bpet_add_text(t, b.data, b.len, &e) < 0)
			printf("  add_text: %s\n", e.msg);
	}
	qn_buf_release(&b);
}

static void test_threads(void)
{
	static const char *const sp[] = {"<|endoftext|>", "<|pad|>"};
	struct qn_buf out[3][3];
	static const int th[3] = {1, 2, 4};
	int i, k;

	for (i = 0; i < 3; i++) {
		struct qn_bpet_opts o;
		struct qn_err e = {{0}};
		struct qn_bpet *t;
		qn_bpet_opts_default(&o);
		o.vocab_size = 700;
		o.threads = th[i];
		o.specials = sp;
		o.nspecials = 2;
		for (k = 0; k < 3; k++)
			qn_buf_init(&out[i][k], QN_BUF_UNLIMITED);
		t = qn_bpet_new(&o, &e);
		CHECK(t != NULL);
		if (!t)
			continue;
		rng = 88172645463325252ull;
		corpus(t, 12000);
		CHECK(train(t) == 0);
		CHECK(qn_bpet_ntokens(t) == 698);
		CHECK(qn_bpet_tiktoken_buf(t, &out[i][0]) == 0);
		CHECK(qn_bpet_hf_json_buf(t, &out[i][1]) == 0);
		CHECK(qn_bpet_config_buf(t, &out[i][2]) == 0);
		qn_bpet_free(t);
	}
	for (i = 1; i < 3; i++)
		for (k = 0; k < 3; k++) {
			char name[80];
			snprintf(name, sizeof name, "threads: %d and 1 write the same %s", th[i],
				 k == 0	  ? "rank file"
				 : k == 1 ? "tokenizer.json"
					  : "config");
			CHECK_NAMED(name,
				    out[i][k].len == out[0][k].len &&
					!memcmp(out[i][k].data, out[0][k].data, out[0][k].len));
		}
	for (i = 0; i < 3; i++)
		for (k = 0; k < 3; k++)
			qn_buf_release(&out[i][k]);
}

/* ---- a naive trainer: recount everything, pick the best, merge left to right ---- */

struct nv {
	uint32_t *w[400];
	size_t len[400];
	uint64_t cnt[400];
	size_t nw;
	unsigned char tok[2048][64];
	size_t tlen[2048];
	size_t ntok;
};

static int nv_tokcmp(const struct nv *v, uint32_t x, uint32_t y)
{
	size_t n = v->tlen[x] < v->tlen[y] ? v->tlen[x] : v->tlen[y];
	int c = memcmp(v->tok[x], v->tok[y], n);
	if (c)
		return c;
	return v->tlen[x] < v->tlen[y] ? -1 : v->tlen[x] > v->tlen[y];
}

struct nvp {
	uint32_t a, b;
	uint64_t c;
};

static int nvp_cmp(const void *x, const void *y)
{
	const struct nvp *p = x, *q = y;
	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return (p->b > q->b) - (p->b < q->b);
}

/* One merge: every adjacent pair counted afresh; 0 when no pair is left. */
static int nv_step(struct nv *v, uint32_t *ba, uint32_t *bb, unsigned __int128 *bc)
{
	size_t i, j, n = 0, cap = 0;
	struct nvp *all = NULL;
	int found = 0;

	for (i = 0; i < v->nw; i++)
		cap += v->len[i];
	all = malloc((cap + 1) * sizeof *all);
	for (i = 0; i < v->nw; i++)
		for (j = 0; j + 1 < v->len[i]; j++)
			all[n++] = (struct nvp){v->w[i][j], v->w[i][j + 1], v->cnt[i]};
	qsort(all, n, sizeof *all, nvp_cmp);
	for (i = 0; i < n;) {
		unsigned __int128 c = 0;
		uint32_t a = all[i].a, b = all[i].b;
		for (; i < n && all[i].a == a && all[i].b == b; i++)
			c += all[i].c;
		if (!found || c > *bc ||
		    (c == *bc &&
		     (nv_tokcmp(v, a, *ba) < 0 || (a == *ba && nv_tokcmp(v, b, *bb) < 0)))) {
			*ba = a;
			*bb = b;
			*bc = c;
			found = 1;
		}
	}
	free(all);
	if (!found)
		return 0;
	memcpy(v->tok[v->ntok], v->tok[*ba], v->tlen[*ba]);
	memcpy(v->tok[v->ntok] + v->tlen[*ba], v->tok[*bb], v->tlen[*bb]);
	v->tlen[v->ntok] = v->tlen[*ba] + v->tlen[*bb];
	for (i = 0; i < v->nw; i++) {
		size_t o = 0;
		for (j = 0; j < v->len[i]; j++) {
			if (j + 1 < v->len[i] && v->w[i][j] == *ba && v->w[i][j + 1] == *bb) {
				v->w[i][o++] = (uint32_t)v->ntok;
				j++;
			} else {
				v->w[i][o++] = v->w[i][j];
			}
		}
		v->len[i] = o;
	}
	v->ntok++;
	return 1;
}

static void test_random(void)
{
	static const char alpha[] = "aaabbc d\xC3\xA9\x80";
	int round;
	for (round = 0; round < 4; round++) {
		struct nv *v = calloc(1, sizeof *v);
		struct qn_bpet *t;
		mk_check =
		    round % 2 == 0; /* odd rounds: the plain path against the naive trainer */
		t = mk("o200k", 256 + 500, 1, 1, NULL, 0);
		mk_check = 1;
		size_t i, j, r, bad = 0, merges;
		struct qn_err e;
		char name[80];

		if (!v || !t) {
			CHECK(v && t);
			free(v);
			qn_bpet_free(t);
			return;
		}
		for (i = 0; i < 256; i++) {
			v->tok[i][0] = (unsigned char)i;
			v->tlen[i] = 1;
		}
		v->ntok = 256;
		/* distinct random words; counts small or, in round 3, huge */
		for (i = 0; v->nw < 120 + 60 * (size_t)round && i < 10000; i++) {
			char w[24];
			size_t n = 2 + rnd(round == 2 ? 20 : 10), x;
			uint64_t c = round == 3 ? UINT64_MAX - rnd(1000) : 1 + rnd(round ? 50 : 3);
			for (x = 0; x < n; x++)
				w[x] = alpha[rnd(sizeof alpha - 1)];
			for (x = 0; x < v->nw; x++) { /* keep words distinct */
				size_t y;
				for (y = 0;
				     v->len[x] == n && y < n && v->w[x][y] == (unsigned char)w[y];
				     y++)
					;
				if (v->len[x] == n && y == n)
					break;
			}
			if (x < v->nw)
				continue;
			v->w[v->nw] = malloc(n * sizeof(uint32_t));
			for (x = 0; x < n; x++)
				v->w[v->nw][x] = (unsigned char)w[x];
			v->len[v->nw] = n;
			v->cnt[v->nw] = c;
			v->nw++;
			qn_bpet_add_pretoken(t, w, n, c, &e);
		}
		CHECK(train(t) == 0);
		merges = qn_bpet_ntokens(t) - 256;
		for (r = 256; r < 256 + merges; r++) {
			uint32_t a = 0, b = 0, l, rt;
			unsigned __int128 c = 0;
			uint64_t mc;
			if (!nv_step(v, &a, &b, &c)) {
				bad++;
				break;
			}
			qn_bpet_merge(t, r, &l, &rt, &mc);
			if (l != a || rt != b ||
			    mc != (c > UINT64_MAX ? UINT64_MAX : (uint64_t)c)) {
				if (!bad)
					printf("  round %d rank %zu: trainer %u+%u=%llu, naive "
					       "%u+%u=%llu\n",
					       round, r, l, rt, (unsigned long long)mc, a, b,
					       (unsigned long long)c);
				bad++;
			}
		}
		{
			uint32_t a, b;
			unsigned __int128 c;
			/* the trainer stopped for a reason: the vocabulary is full or no pair is
			 * left */
			if (qn_bpet_ntokens(t) < 756 && nv_step(v, &a, &b, &c))
				bad++;
		}
		snprintf(name, sizeof name, "random round %d: %zu merges equal the naive trainer's",
			 round, merges);
		CHECK_NAMED(name, bad == 0 && merges >= 150);
		for (j = 0; j < v->nw; j++)
			free(v->w[j]);
		free(v);
		qn_bpet_free(t);
	}
}

static int progress_calls, progress_last;
static void on_progress(void *ctx, enum qn_bpet_phase ph, uint64_t done, uint64_t total)
{
	progress_calls++;
	if (ph == QN_BPET_PHASE_MERGES)
		progress_last = (int)done;
}

static void test_progress(void)
{
	struct qn_bpet_opts o;
	struct qn_err e;
	struct qn_bpet *t;
	qn_bpet_opts_default(&o);
	o.vocab_size = 600;
	o.progress = on_progress;
	t = qn_bpet_new(&o, &e);
	if (!t)
		return;
	corpus(t, 2000);
	CHECK(train(t) == 0);
	CHECK(progress_calls > 10 && progress_calls < 400);
	CHECK(progress_last == (int)qn_bpet_ntokens(t) - 256);
	qn_bpet_free(t);
}

/* The named patterns are the encoder's (lib/bpe.c), so training splits as encoding does. */
static void test_patterns(void)
{
	static const char *names[][2] = {
	    {"gpt2", "r50k_base"}, {"cl100k", "cl100k_base"}, {"o200k", "o200k_base"}};
	size_t i;
	for (i = 0; i < 3; i++) {
		struct qn_bpet *t = mk(names[i][0], 300, 2, 1, NULL, 0);
		const struct qn_bpe_spec *spec = qn_bpe_spec_named(names[i][1]);
		char name[64];
		snprintf(name, sizeof name, "pattern %s equals lib/bpe's %s", names[i][0],
			 names[i][1]);
		CHECK_STR(name, t ? qn_bpet_pattern(t) : NULL, spec ? spec->pattern : NULL);
		CHECK_STR("pattern name", t ? qn_bpet_pattern_name(t) : NULL, names[i][0]);
		qn_bpet_free(t);
	}
	/* aliases, and a user regex has no name */
	{
		struct qn_bpet *t = mk("cl100k_base", 300, 2, 1, NULL, 0);
		CHECK_STR("alias", t ? qn_bpet_pattern_name(t) : NULL, "cl100k");
		qn_bpet_free(t);
		t = mk("[a-z]+|\\s+|.", 300, 2, 1, NULL, 0);
		CHECK(t && qn_bpet_pattern_name(t) == NULL);
		qn_bpet_free(t);
	}
}

int main(void)
{
	test_patterns();
	test_by_hand();
	test_ties();
	test_counts();
	test_specials();
	test_gaps();
	test_bad();
	test_writers();
	test_threads();
	test_random();
	test_progress();
	return CHECK_DONE();
}
