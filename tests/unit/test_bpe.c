/*
 * test_bpe.c - lib/bpe: merges on hand-made rank tables where the answer can
 * be worked out by hand (ranks, ties, the whole-piece rule); special tokens
 * allowed and not; split patterns (cl100k's pieces, \s as White_Space);
 * decode(encode(x)) == x on random bytes; the heap merge against the array
 * merge and against a naive reference written here (tiktoken's loop over
 * byte strings, Hugging Face's loop over merge ranks) on random tables and
 * inputs; 10 MB without a space and 10 MB of one character (timed, printed,
 * not asserted, with a hang guard); tokenizer.json loading; malformed rank
 * files and tokenizer.json files (messages with line or JSON path);
 * fingerprints; several threads on one tokenizer.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpe.h"
#include "buf.h"
#include "check.h"
#include "err.h"

static uint64_t rng = 42;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- rank tables: 256 single bytes, then extra tokens in rank order ---- */

struct table {
	unsigned char *tok[4096];
	size_t len[4096];
	size_t n;
};

static void table_init(struct table *t)
{
	t->n = 0;
	for (int c = 0; c < 256; c++) {
		t->tok[t->n] = malloc(1);
		t->tok[t->n][0] = (unsigned char)c;
		t->len[t->n++] = 1;
	}
}

static void table_add(struct table *t, const void *p, size_t n)
{
	t->tok[t->n] = malloc(n);
	memcpy(t->tok[t->n], p, n);
	t->len[t->n++] = n;
}

static void table_adds(struct table *t, const char *s)
{
	table_add(t, s, strlen(s));
}

static long table_find(const struct table *t, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->len[i] == n && !memcmp(t->tok[i], p, n))
			return (long)i;
	return -1;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->tok[i]);
	t->n = 0;
}

static const struct qn_bpe_special specials3[] = {
    {"<|end|>", 5000}, {"<|end|>x", 5001}, {"<s>", 5002}};

static struct qn_bpe *table_bpe(const struct table *t, const char *pattern, int specials)
{
	struct qn_bpe_spec spec = {"test", pattern, specials ? specials3 : NULL, specials ? 3 : 0,
				   0};
	struct qn_err e;
	struct qn_bpe *b =
	    qn_bpe_from_tokens((const unsigned char *const *)t->tok, t->len, t->n, &spec, &e);
	if (!b)
		printf("  table_bpe: %s\n", e.msg);
	return b;
}

/* Encodes s and compares with the expected ids (-1 ends the list). */
static int enc_is(const struct qn_bpe *b, const char *s, unsigned flags, const long *want)
{
	struct qn_bpe_scratch *sc = qn_bpe_scratch_new(b);
	struct qn_bpe_ids ids;
	struct qn_err e;
	size_t n = 0;
	int ok;

	qn_bpe_ids_init(&ids, 1 << 20);
	ok = qn_bpe_encode(b, sc, s, strlen(s), flags, &ids, &e) == 0;
	while (want[n] >= 0)
		n++;
	ok = ok && ids.n == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = ids.v[i] == (uint32_t)want[i];
	if (!ok) {
		printf("  encode '%s': got [", s);
		for (size_t i = 0; i < ids.n; i++)
			printf("%s%u", i ? " " : "", ids.v[i]);
		printf("]\n");
	}
	qn_bpe_ids_release(&ids);
	qn_bpe_scratch_free(sc);
	return ok;
}

#define ENC_IS(name, b, s, flags, ...)                                                             \
	do {                                                                                       \
		static const long want_[] = {__VA_ARGS__, -1};                                     \
		CHECK_NAMED(name, enc_is(b, s, flags, want_));                                     \
	} while (0)

#define WORDS "[^ ]+| +"

static void test_hand_made(void)
{
	struct table t;
	struct qn_bpe *b;

	table_init(&t);
	table_adds(&t, "ab");	/* 256 */
	table_adds(&t, "cd");	/* 257 */
	table_adds(&t, "abcd"); /* 258 */
	table_adds(&t, "bc");	/* 259 */
	table_adds(&t, "aa");	/* 260 */
	table_adds(&t, "xyz");	/* 261: reachable by no merge */
	table_adds(&t, "aaaa"); /* 262 */
	table_adds(&t, "  ");	/* 263 */
	b = table_bpe(&t, WORDS, 0);
	CHECK_NAMED("hand-made table loads", b != NULL);
	if (!b)
		return;
	ENC_IS("ab + cd merge to abcd", b, "abcd", 0, 258);
	/* "abc": ab (256) beats bc (259). */
	ENC_IS("lowest rank first: abc -> ab c", b, "abc", 0, 256, 'c');
	ENC_IS("bcd: bc (259) loses to cd (257)", b, "bcd", 0, 'b', 257);
	ENC_IS("tie goes to the leftmost: aaa -> aa a", b, "aaa", 0, 260, 'a');
	ENC_IS("aaaaa -> aaaa a", b, "aaaaa", 0, 262, 'a');
	ENC_IS("aaaaaa -> aaaa aa", b, "aaaaaa", 0, 262, 260);
	ENC_IS("a piece that is a token is that token (tiktoken)", b, "xyz", 0, 261);
	ENC_IS("inside a longer piece xyz does not form", b, "xyzw", 0, 'x', 'y', 'z', 'w');
	ENC_IS("pieces: words and space runs", b, "ab  cd", 0, 256, 263, 257);
	ENC_IS("empty text", b, "", 0, -1);
	ENC_IS("one byte", b, "\xff", 0, 255);
	CHECK_NAMED("vocab size", qn_bpe_vocab_size(b) == 264);
	const unsigned char *tb;
	size_t tl;
	CHECK_NAMED("token bytes by id",
		    qn_bpe_token(b, 258, &tb, &tl) == 0 && tl == 4 && !memcmp(tb, "abcd", 4));
	CHECK_NAMED("no token past the end", qn_bpe_token(b, 264, &tb, &tl) < 0);
	CHECK_NAMED("lookup by bytes",
		    qn_bpe_lookup(b, "cd", 2) == 257 && qn_bpe_lookup(b, "zz", 2) == QN_BPE_NONE);
	CHECK_STR("name", qn_bpe_name(b), "test");
	qn_bpe_free(b);
	table_free(&t);
}

static void test_specials(void)
{
	struct table t;
	struct qn_bpe *b;

	table_init(&t);
	table_adds(&t, "<|");
	b = table_bpe(&t, WORDS, 1);
	CHECK_NAMED("table with specials loads", b != NULL);
	if (!b)
		return;
	ENC_IS("special text is text unless allowed", b, "a<|end|>b", 0, 'a', 256, 'e', 'n', 'd',
	       '|', '>', 'b');
	ENC_IS("allowed: the special id", b, "a<|end|>b", QN_BPE_ALLOW_SPECIAL, 'a', 5000, 'b');
	ENC_IS("the longest special at a place wins", b, "<|end|>x<|end|>", QN_BPE_ALLOW_SPECIAL,
	       5001, 5000);
	ENC_IS("specials back to back, at both ends", b, "<s><s>", QN_BPE_ALLOW_SPECIAL, 5002,
	       5002);
	ENC_IS("a partial special is text", b, "<|end|", QN_BPE_ALLOW_SPECIAL, 256, 'e', 'n', 'd',
	       '|');
	CHECK_NAMED("special count", qn_bpe_special_count(b) == 3);
	const char *name;
	size_t len;
	uint32_t id;
	qn_bpe_special_at(b, 1, &name, &len, &id);
	CHECK_NAMED("specials by id", id == 5001 && len == 8 && !memcmp(name, "<|end|>x", 8));
	CHECK_NAMED("special by name", qn_bpe_special_id(b, "<s>", 3) == 5002 &&
					   qn_bpe_special_id(b, "<t>", 3) == QN_BPE_NONE);
	CHECK_NAMED("is_special", qn_bpe_is_special(b, 5000) && !qn_bpe_is_special(b, 256) &&
				      !qn_bpe_is_special(b, 4999));
	CHECK_NAMED("gaps between ranks and specials are no tokens", qn_bpe_vocab_size(b) == 5003);
	/* decode: specials become their text; an id in a gap is an error. */
	struct qn_buf out;
	struct qn_err e;
	uint32_t ids[] = {'a', 5000, 'b'};
	qn_buf_init(&out, 1 << 20);
	CHECK_NAMED("decode specials",
		    qn_bpe_decode(b, ids, 3, &out, &e) == 0 && !strcmp(out.data, "a<|end|>b"));
	uint32_t bad[] = {'a', 4000};
	CHECK_NAMED("decode an id with no token fails", qn_bpe_decode(b, bad, 2, &out, &e) < 0);
	CHECK_STR("decode error names the id", e.msg, "token 1: id 4000 is not in the vocabulary");
	qn_buf_release(&out);
	qn_bpe_free(b);
	table_free(&t);
}

/* ---- splitting ---- */

struct pieces {
	char buf[1024];
	size_t len;
};

static int collect(void *ctx, const unsigned char *p, size_t n, uint32_t special)
{
	struct pieces *c = ctx;
	c->len +=
	    (size_t)snprintf(c->buf + c->len, sizeof c->buf - c->len, "%s", c->len ? "|" : "");
	if (special != QN_BPE_NONE)
		c->len += (size_t)snprintf(c->buf + c->len, sizeof c->buf - c->len, "#%u", special);
	else
		for (size_t i = 0; i < n && c->len + 8 < sizeof c->buf; i++)
			c->len +=
			    (size_t)snprintf(c->buf + c->len, sizeof c->buf - c->len,
					     p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x", p[i]);
	return 0;
}

static const char *split(const struct qn_bpe *b, const char *s, unsigned flags)
{
	static struct pieces c;
	struct qn_bpe_scratch *sc = qn_bpe_scratch_new(b);
	c.len = 0;
	c.buf[0] = 0;
	qn_bpe_split(b, sc, s, strlen(s), flags, collect, &c, NULL);
	qn_bpe_scratch_free(sc);
	return c.buf;
}

static void test_patterns(void)
{
	struct table t;
	struct qn_bpe_spec spec;

	CHECK_NAMED("named encodings",
		    qn_bpe_spec_named("cl100k_base") && qn_bpe_spec_named("o200k_base") &&
			qn_bpe_spec_named("r50k_base") &&
			qn_bpe_spec_named("gpt2") == qn_bpe_spec_named("r50k_base") &&
			!qn_bpe_spec_named("p50k_base"));
	const struct qn_bpe_spec *cl = qn_bpe_spec_named("cl100k_base");
	CHECK_NAMED("cl100k_base specials", cl->n_specials == 5 && cl->specials[0].id == 100257 &&
						cl->specials[4].id == 100276 &&
						cl->n_tokens == 100256);
	CHECK_NAMED("o200k_base specials",
		    qn_bpe_spec_named("o200k_base")->specials[1].id == 200018);

	table_init(&t);
	spec = *cl;
	spec.n_tokens = 0;
	spec.specials = NULL;
	spec.n_specials = 0;
	struct qn_err e;
	struct qn_bpe *b =
	    qn_bpe_from_tokens((const unsigned char *const *)t.tok, t.len, t.n, &spec, &e);
	CHECK_NAMED("bytes with the cl100k pattern", b != NULL);
	if (b) {
		CHECK_STR("cl100k: words", split(b, "Hello world", 0), "Hello| world");
		CHECK_STR("cl100k: digits in threes", split(b, "12345", 0), "123|45");
		CHECK_STR("cl100k: contractions in any case", split(b, "I'M we'Ll", 0),
			  "I|'M| we|'Ll");
		CHECK_STR("cl100k: the last space joins the word", split(b, "a   b", 0), "a|  | b");
		CHECK_STR("cl100k: newline runs", split(b, "a\r\n\nb", 0), "a|\\x0d\\x0a\\x0a|b");
		CHECK_STR("cl100k: punctuation takes newlines", split(b, "x!!\n\ny", 0),
			  "x|!!\\x0a\\x0a|y");
		/* U+180E is not White_Space (it was before Unicode 6.3; PCRE2's \s still takes it).
		 */
		CHECK_STR("cl100k: U+180E is not a space", split(b, "\r\xe1\xa0\x8e\r", 0),
			  "\\x0d|\\xe1\\xa0\\x8e\\x0d");
		/* Invalid UTF-8 matches nothing: its bytes are pieces of their own. */
		CHECK_STR("cl100k: invalid bytes form their own piece",
			  split(b, "ab\xff\xfe cd", 0), "ab|\\xff\\xfe| cd");
		qn_bpe_free(b);
	}
	spec = *qn_bpe_spec_named("r50k_base");
	spec.n_tokens = 0;
	b = qn_bpe_from_tokens((const unsigned char *const *)t.tok, t.len, t.n, &spec, &e);
	CHECK_NAMED("bytes with the r50k pattern", b != NULL);
	if (b) {
		CHECK_STR("r50k: digits stay whole", split(b, "x 12345", 0), "x| 12345");
		CHECK_STR("r50k: contractions are lower case only", split(b, "I'M i'm", 0),
			  "I|'|M| i|'m");
		CHECK_STR("r50k: U+180E is punctuation, not space",
			  split(b, "x\xe1\xa0\x8e\xe1\xa0\x8ey", 0),
			  "x|\\xe1\\xa0\\x8e\\xe1\\xa0\\x8e|y");
		CHECK_STR("r50k: NEL and NBSP are spaces", split(b, "a\xc2\x85\xc2\xa0 b", 0),
			  "a|\\xc2\\x85\\xc2\\xa0| b");
		CHECK_STR("r50k: specials split only when allowed",
			  split(b, "a<|endoftext|>b", QN_BPE_ALLOW_SPECIAL), "a|#50256|b");
		CHECK_STR("r50k: specials are text otherwise", split(b, "a<|endoftext|>", 0),
			  "a|<||endoftext||>");
		qn_bpe_free(b);
	}
	spec = *qn_bpe_spec_named("o200k_base");
	spec.n_tokens = 0;
	spec.specials = NULL;
	spec.n_specials = 0;
	b = qn_bpe_from_tokens((const unsigned char *const *)t.tok, t.len, t.n, &spec, &e);
	CHECK_NAMED("bytes with the o200k pattern", b != NULL);
	if (b) {
		CHECK_STR("o200k: case changes split words", split(b, "HelloWORLDFoo", 0),
			  "Hello|WORLDFoo");
		CHECK_STR("o200k: slashes follow punctuation", split(b, "a.//b", 0), "a|.//|b");
		qn_bpe_free(b);
	}
	/* Patterns quern cannot run the way Rust does are refused. */
	spec.pattern = "[a-z&&[^aeiou]]+";
	b = qn_bpe_from_tokens((const unsigned char *const *)t.tok, t.len, t.n, &spec, &e);
	CHECK_NAMED("class set operations are refused",
		    b == NULL && strstr(e.msg, "not supported"));
	qn_bpe_free(b);
	spec.pattern = "(unclosed";
	b = qn_bpe_from_tokens((const unsigned char *const *)t.tok, t.len, t.n, &spec, &e);
	CHECK_NAMED("a bad pattern is an error", b == NULL && strstr(e.msg, "bad pattern"));
	qn_bpe_free(b);
	table_free(&t);
}

/* ---- random tables and the differential tests ---- */

/* A table grown the way training grows one: random pairs of tokens over a small alphabet. */
static void random_table(struct table *t, int trained, int extra)
{
	static const char alpha[] = "abcd \xc3\xa9";
	size_t first = 256;
	table_init(t);
	while ((int)(t->n - first) < extra) {
		unsigned char buf[64];
		size_t n;
		if (trained) {
			/* Concatenate two tokens made of the alphabet. */
			size_t a, c;
			do
				a = t->n > first && rnd() % 3 ? first + rnd() % (t->n - first)
							      : (unsigned char)alpha[rnd() % 7];
			while (0);
			c = t->n > first && rnd() % 3 ? first + rnd() % (t->n - first)
						      : (unsigned char)alpha[rnd() % 7];
			n = t->len[a] + t->len[c];
			if (n > 24)
				continue;
			memcpy(buf, t->tok[a], t->len[a]);
			memcpy(buf + t->len[a], t->tok[c], t->len[c]);
		} else {
			/* Any short string: tokens no merge reaches, ranks in no order. */
			n = 2 + rnd() % 5;
			for (size_t i = 0; i < n; i++)
				buf[i] = (unsigned char)alpha[rnd() % 7];
		}
		if (table_find(t, buf, n) < 0)
			table_add(t, buf, n);
	}
}

/* tiktoken's merge loop, over byte strings, written as plainly as possible. */
static size_t ref_ranks(const struct table *t, const unsigned char *p, size_t n, uint32_t *out)
{
	size_t start[512], m = n;
	long whole = table_find(t, p, n);
	if (whole >= 0) {
		out[0] = (uint32_t)whole;
		return 1;
	}
	for (size_t i = 0; i <= n; i++)
		start[i] = i;
	for (;;) {
		long best = -1;
		size_t at = 0;
		for (size_t i = 0; i + 1 < m; i++) {
			long r = table_find(t, p + start[i], start[i + 2] - start[i]);
			if (r >= 0 && (best < 0 || r < best)) {
				best = r;
				at = i;
			}
		}
		if (best < 0)
			break;
		memmove(start + at + 1, start + at + 2, (m - at - 1) * sizeof *start);
		m--;
	}
	for (size_t i = 0; i < m; i++)
		out[i] = (uint32_t)table_find(t, p + start[i], start[i + 1] - start[i]);
	return m;
}

static int encode_piece_is(const struct qn_bpe *b, struct qn_bpe_scratch *s, const unsigned char *p,
			   size_t n, unsigned flags, const uint32_t *want, size_t nw)
{
	struct qn_bpe_ids ids;
	int ok;
	qn_bpe_ids_init(&ids, 1 << 20);
	ok = qn_bpe_encode_piece(b, s, p, n, flags, &ids, NULL) == 0 && ids.n == nw &&
	     (nw == 0 || !memcmp(ids.v, want, nw * sizeof *want));
	qn_bpe_ids_release(&ids);
	return ok;
}

static void random_text(unsigned char *p, size_t n, int any_byte)
{
	static const char alpha[] = "abcd \xc3\xa9";
	for (size_t i = 0; i < n; i++)
		p[i] = any_byte && rnd() % 8 == 0 ? (unsigned char)rnd()
						  : (unsigned char)alpha[rnd() % 7];
}

static void test_differential_ranks(void)
{
	for (int trained = 1; trained >= 0; trained--) {
		struct table t;
		int bad_short = 0, bad_heap = 0, bad_buckets = 0, bad_default = 0, runs = 0;
		random_table(&t, trained, trained ? 300 : 150);
		struct qn_bpe *b = table_bpe(&t, WORDS, 0);
		if (!b) {
			CHECK_NAMED("random table loads", 0);
			continue;
		}
		struct qn_bpe_scratch *s = qn_bpe_scratch_new(b);
		for (int k = 0; k < 1500; k++) {
			unsigned char p[300];
			uint32_t want[300];
			size_t n = 1 + rnd() % (k % 10 == 0 ? 300 : 40);
			random_text(p, n, k % 3 == 0);
			size_t nw = ref_ranks(&t, p, n, want);
			runs++;
			bad_short += !encode_piece_is(b, s, p, n, QN_BPE_SHORT_ONLY, want, nw);
			bad_heap += !encode_piece_is(b, s, p, n, QN_BPE_HEAP_ONLY, want, nw);
			bad_buckets += !encode_piece_is(b, s, p, n, QN_BPE_BUCKETS_ONLY, want, nw);
			bad_default += !encode_piece_is(b, s, p, n, 0, want, nw);
		}
		printf("  %s table: %d pieces, %d/%d/%d/%d differ (array/heap/buckets/default)\n",
		       trained ? "trained" : "unordered", runs, bad_short, bad_heap, bad_buckets,
		       bad_default);
		CHECK_NAMED(trained ? "array merge == reference (trained table)"
				    : "array merge == reference (unordered table)",
			    bad_short == 0);
		CHECK_NAMED(trained ? "heap merge == reference (trained table)"
				    : "heap merge == reference (unordered table)",
			    bad_heap == 0);
		CHECK_NAMED(trained ? "bucket merge == reference (trained table)"
				    : "bucket merge == reference (unordered table)",
			    bad_buckets == 0);
		CHECK_NAMED(trained ? "default merge == reference (trained table)"
				    : "default merge == reference (unordered table)",
			    bad_default == 0);
		qn_bpe_scratch_free(s);
		qn_bpe_free(b);
		table_free(&t);
	}
}

static void test_roundtrip(void)
{
	struct table t;
	random_table(&t, 1, 400);
	struct qn_bpe *b = table_bpe(&t, qn_bpe_spec_named("cl100k_base")->pattern, 1);
	struct qn_bpe_scratch *s = b ? qn_bpe_scratch_new(b) : NULL;
	struct qn_bpe_ids ids;
	struct qn_buf out;
	struct qn_err e;
	int bad = 0;

	CHECK_NAMED("round-trip table loads", b != NULL);
	if (!b)
		return;
	qn_bpe_ids_init(&ids, 1 << 20);
	qn_buf_init(&out, 1 << 20);
	for (int k = 0; k < 2000; k++) {
		unsigned char p[2000];
		size_t n = rnd() % (k % 20 == 0 ? 2000 : 100);
		for (size_t i = 0; i < n; i++)
			p[i] = k % 2 ? (unsigned char)rnd()
				     : (unsigned char)"ab <|end|>\xc3\xa9\r\n"[rnd() % 15];
		qn_bpe_ids_reset(&ids);
		qn_buf_reset(&out);
		unsigned flags = k % 4 == 0 ? QN_BPE_ALLOW_SPECIAL : 0;
		if (qn_bpe_encode(b, s, p, n, flags, &ids, &e) < 0 ||
		    qn_bpe_decode(b, ids.v, ids.n, &out, &e) < 0 || out.len != n ||
		    (n && memcmp(out.data, p, n)))
			bad++;
	}
	CHECK_NAMED("decode(encode(x)) == x on random bytes, invalid UTF-8 included", bad == 0);
	/* The id array's maximum is an error, not an overrun. */
	struct qn_bpe_ids small;
	qn_bpe_ids_init(&small, 3);
	CHECK_NAMED("more ids than the maximum is an error",
		    qn_bpe_encode(b, s, "a b c d e f", 11, 0, &small, &e) < 0 && small.n <= 3);
	CHECK_STR("maximum message", e.msg, "more than 3 tokens");
	qn_bpe_ids_release(&small);
	qn_buf_release(&out);
	qn_bpe_ids_release(&ids);
	qn_bpe_scratch_free(s);
	qn_bpe_free(b);
	table_free(&t);
}

static void test_long_pieces(void)
{
	struct table t;
	char buf[8];
	size_t n = 10u << 20;
	unsigned char *p = malloc(n);
	struct qn_bpe_ids ids;
	struct qn_buf out;
	struct qn_err e;

	/* Every bigram of a-z, trigrams of a-h, 4-grams of a-d, and runs of 'a'. */
	table_init(&t);
	for (int x = 0; x < 26; x++)
		for (int y = 0; y < 26; y++) {
			buf[0] = (char)('a' + x), buf[1] = (char)('a' + y);
			table_add(&t, buf, 2);
		}
	for (int x = 0; x < 512; x++) {
		buf[0] = (char)('a' + x / 64), buf[1] = (char)('a' + x / 8 % 8),
		buf[2] = (char)('a' + x % 8);
		table_add(&t, buf, 3);
	}
	for (int x = 0; x < 256; x++) {
		buf[0] = (char)('a' + x / 64), buf[1] = (char)('a' + x / 16 % 4),
		buf[2] = (char)('a' + x / 4 % 4), buf[3] = (char)('a' + x % 4);
		if (table_find(&t, (unsigned char *)buf, 4) < 0)
			table_add(&t, buf, 4);
	}
	char run[2048];
	memset(run, 'a', sizeof run);
	for (size_t k = 8; k <= 2048; k *= 2)
		table_add(&t, run, k);
	struct qn_bpe *b = table_bpe(&t, WORDS, 0);
	struct qn_bpe_scratch *s = b ? qn_bpe_scratch_new(b) : NULL;
	CHECK_NAMED("long-piece table loads", b && p);
	if (!b || !p)
		return;
	qn_bpe_ids_init(&ids, SIZE_MAX);
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	for (int kind = 0; kind < 2; kind++) {
		for (size_t i = 0; i < n; i++)
			p[i] = kind ? 'a' : (unsigned char)('a' + rnd() % 26);
		qn_bpe_ids_reset(&ids);
		qn_buf_reset(&out);
		double t0 = now();
		int rc = qn_bpe_encode(b, s, p, n, 0, &ids, &e);
		double secs = now() - t0;
		printf("  %s: %.3f s, %zu tokens\n",
		       kind ? "10 MB of one repeated character" : "10 MB without a space", secs,
		       ids.n);
		CHECK_NAMED(kind ? "10 MB of 'a' encodes" : "10 MB without a space encodes",
			    rc == 0 && qn_bpe_decode(b, ids.v, ids.n, &out, &e) == 0 &&
				out.len == n && !memcmp(out.data, p, n));
		/* Not a timing assertion: a hang guard (the quadratic loop takes hours). */
		CHECK_NAMED(kind ? "10 MB of 'a' finishes (hang guard, 60 s)"
				 : "10 MB without a space finishes (hang guard, 60 s)",
			    secs < 60);
		if (kind) /* 2048-'a' tokens, leftmost first */
			CHECK_NAMED("10 MB of 'a' is 2048-byte runs",
				    ids.n == n / 2048 && ids.v[0] == t.n - 1);
	}
	/* The heap merge agrees with the array merge on a long piece, too. */
	struct qn_bpe_ids ids2;
	qn_bpe_ids_init(&ids2, SIZE_MAX);
	size_t m = 20000;
	for (size_t i = 0; i < m; i++)
		p[i] = (unsigned char)"abcdaaaa"[rnd() % 8];
	qn_bpe_ids_reset(&ids);
	qn_bpe_encode_piece(b, s, p, m, QN_BPE_SHORT_ONLY, &ids, &e);
	qn_bpe_encode_piece(b, s, p, m, QN_BPE_HEAP_ONLY, &ids2, &e);
	CHECK_NAMED("heap == array on a 20 kB piece",
		    ids.n == ids2.n && !memcmp(ids.v, ids2.v, ids.n * sizeof *ids.v));
	qn_bpe_ids_reset(&ids2);
	qn_bpe_encode_piece(b, s, p, m, QN_BPE_BUCKETS_ONLY, &ids2, &e);
	CHECK_NAMED("buckets == array on a 20 kB piece",
		    ids.n == ids2.n && !memcmp(ids.v, ids2.v, ids.n * sizeof *ids.v));
	qn_bpe_ids_release(&ids2);
	qn_buf_release(&out);
	qn_bpe_ids_release(&ids);
	qn_bpe_scratch_free(s);
	qn_bpe_free(b);
	table_free(&t);
	free(p);
}

/* ---- rank files ---- */

static const char *b64(const unsigned char *p, size_t n)
{
	static char out[64];
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = 0;
	return out;
}

/* A rank file of the 256 bytes then `extra` lines (which may be anything). */
static void rank_file(struct qn_buf *f, const char *extra)
{
	qn_buf_reset(f);
	for (int c = 0; c < 256; c++) {
		unsigned char x = (unsigned char)c;
		qn_buf_printf(f, "%s %d\n", b64(&x, 1), c);
	}
	qn_buf_adds(f, extra);
}

static const char *tiktoken_error(const char *extra, const struct qn_bpe_spec *spec)
{
	static struct qn_err e;
	struct qn_buf f;
	qn_buf_init(&f, QN_BUF_UNLIMITED);
	rank_file(&f, extra);
	struct qn_bpe *b = qn_bpe_parse_tiktoken(f.data, f.len, "x.tiktoken", spec, &e);
	qn_buf_release(&f);
	if (b) {
		qn_bpe_free(b);
		return "(loaded)";
	}
	return e.msg;
}

static void test_tiktoken_files(void)
{
	struct qn_bpe_spec spec = {"mine", WORDS, specials3, 1, 0};
	struct qn_buf f;
	struct qn_err e;

	CHECK_STR("good file", tiktoken_error("YWI= 256\n\nY2Q= 257\r\n", &spec), "(loaded)");
	CHECK_STR("bad base64", tiktoken_error("YWI= 256\nY*I= 257\n", &spec),
		  "x.tiktoken:258: bad base64");
	CHECK_STR("base64 without padding", tiktoken_error("YWI 256\n", &spec),
		  "x.tiktoken:257: bad base64");
	CHECK_STR("base64 with stray bits", tiktoken_error("YWJ= 256\n", &spec),
		  "x.tiktoken:257: bad base64");
	CHECK_STR("no rank", tiktoken_error("YWI=\n", &spec),
		  "x.tiktoken:257: expected 'base64 rank'");
	CHECK_STR("three fields", tiktoken_error("YWI= 256 1\n", &spec),
		  "x.tiktoken:257: expected 'base64 rank'");
	CHECK_STR("bad rank", tiktoken_error("YWI= -256\n", &spec), "x.tiktoken:257: bad rank");
	CHECK_STR("rank too large", tiktoken_error("YWI= 2000000\n", &spec),
		  "x.tiktoken:257: rank 2000000 is too large (ids are below 2000000)");
	CHECK_STR("repeated rank", tiktoken_error("YWI= 256\nY2Q= 256\n", &spec),
		  "x.tiktoken:258: rank 256 repeats line 257");
	CHECK_STR("repeated token", tiktoken_error("YWI= 256\nYWI= 257\n", &spec),
		  "x.tiktoken:258: token 'ab' repeats line 257");
	CHECK_STR("special on a rank", tiktoken_error("YWI= 5000\n", &spec),
		  "x.tiktoken: special token '<|end|>' has id 5000, which a ranked token has");
	const struct qn_bpe_spec *cl = qn_bpe_spec_named("cl100k_base");
	CHECK_STR("a named encoding checks the count", tiktoken_error("", cl),
		  "x.tiktoken: 256 tokens, cl100k_base has 100256");
	struct qn_bpe *b = qn_bpe_parse_tiktoken("YQ== 0\n", 7, "x.tiktoken", &spec, &e);
	CHECK_NAMED("missing bytes", b == NULL);
	CHECK_STR("missing bytes message", e.msg, "x.tiktoken: no token for byte 0x00");
	b = qn_bpe_parse_tiktoken("", 0, "x.tiktoken", &spec, &e);
	CHECK_STR("empty file", b ? "(loaded)" : e.msg, "x.tiktoken: no tokens");
	b = qn_bpe_load_tiktoken("/nonexistent/x.tiktoken", &spec, &e);
	CHECK_NAMED("missing file",
		    b == NULL && strstr(e.msg, "cannot open '/nonexistent/x.tiktoken'"));

	/* Fingerprints: stable, and they change with ranks, pattern and specials. */
	qn_buf_init(&f, QN_BUF_UNLIMITED);
	rank_file(&f, "YWI= 256\n");
	struct qn_bpe *b1 = qn_bpe_parse_tiktoken(f.data, f.len, "a", &spec, &e);
	struct qn_bpe *b2 = qn_bpe_parse_tiktoken(f.data, f.len, "b", &spec, &e);
	rank_file(&f, "YWI= 257\n");
	struct qn_bpe *b3 = qn_bpe_parse_tiktoken(f.data, f.len, "a", &spec, &e);
	rank_file(&f, "YWI= 256\n");
	spec.pattern = "[^ ]+";
	struct qn_bpe *b4 = qn_bpe_parse_tiktoken(f.data, f.len, "a", &spec, &e);
	spec.n_specials = 0;
	struct qn_bpe *b5 = qn_bpe_parse_tiktoken(f.data, f.len, "a", &spec, &e);
	if (b1 && b2 && b3 && b4 && b5) {
		const char *fp = qn_bpe_fingerprint(b1);
		int hex = strlen(fp) == 64;
		for (int i = 0; i < 64 && hex; i++)
			hex = (fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'a' && fp[i] <= 'f');
		CHECK_NAMED("fingerprint is 64 hex digits", hex);
		CHECK_NAMED("same content, same fingerprint", !strcmp(fp, qn_bpe_fingerprint(b2)));
		CHECK_NAMED("a rank changes the fingerprint", strcmp(fp, qn_bpe_fingerprint(b3)));
		CHECK_NAMED("the pattern changes the fingerprint",
			    strcmp(fp, qn_bpe_fingerprint(b4)));
		CHECK_NAMED("specials change the fingerprint",
			    strcmp(qn_bpe_fingerprint(b4), qn_bpe_fingerprint(b5)));
	} else {
		CHECK_NAMED("fingerprint tokenizers load", 0);
	}
	qn_bpe_free(b1);
	qn_bpe_free(b2);
	qn_bpe_free(b3);
	qn_bpe_free(b4);
	qn_bpe_free(b5);
	qn_buf_release(&f);
}

/* ---- tokenizer.json ---- */

/* GPT-2's bytes_to_unicode, written out independently of lib/bpe.c. */
static void byte_level(unsigned char c, char *out)
{
	unsigned cp;
	if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE) {
		cp = c;
	} else {
		unsigned k = 0;
		for (unsigned d = 0; d < c; d++)
			if (!((d >= '!' && d <= '~') || (d >= 0xA1 && d <= 0xAC) || d >= 0xAE))
				k++;
		cp = 256 + k;
	}
	if (cp < 0x80) {
		if (cp == '"' || cp == '\\')
			*out++ = '\\';
		*out++ = (char)cp;
	} else {
		*out++ = (char)(0xC0 | cp >> 6);
		*out++ = (char)(0x80 | (cp & 0x3F));
	}
	*out = 0;
}

static void bl_string(const char *s, char *out)
{
	out[0] = 0;
	for (; *s; s++)
		byte_level((unsigned char)*s, out + strlen(out));
}

/*
 * A tokenizer.json: the 256 byte tokens, then each merge's result (ids 256,
 * 257, ... in the order given by `tokens`), merges listed in `merges` order
 * (pairs of strings), with the given pre_tokenizer and extra top-level text.
 */
static void hf_json(struct qn_buf *f, const char *const *merges, size_t nm, int pair_form,
		    const char *pretok, const char *extra_model, const char *extra)
{
	char a[64], c[64];
	qn_buf_reset(f);
	qn_buf_adds(f, "{\"version\": \"1.0\", \"normalizer\": null,\n\"pre_tokenizer\": ");
	qn_buf_adds(f, pretok);
	qn_buf_adds(f, ",\n\"decoder\": {\"type\": \"ByteLevel\"}, ");
	qn_buf_adds(f, extra);
	qn_buf_adds(f, "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, ");
	qn_buf_adds(f, extra_model);
	qn_buf_adds(f, "\"vocab\": {");
	for (int x = 0; x < 256; x++) {
		byte_level((unsigned char)x, a);
		qn_buf_printf(f, "%s\"%s\": %d", x ? ", " : "", a, x);
	}
	for (size_t i = 0; i < nm; i++) {
		char cat[64];
		snprintf(cat, sizeof cat, "%s%s", merges[2 * i], merges[2 * i + 1]);
		bl_string(cat, a);
		/* A result made twice gets one id (the first). */
		int seen = 0;
		for (size_t k = 0; k < i; k++) {
			char prev[64];
			snprintf(prev, sizeof prev, "%s%s", merges[2 * k], merges[2 * k + 1]);
			seen |= !strcmp(prev, cat);
		}
		if (!seen)
			qn_buf_printf(f, ", \"%s\": %zu", a, 256 + i);
	}
	qn_buf_adds(f, "},\n\"merges\": [");
	for (size_t i = 0; i < nm; i++) {
		bl_string(merges[2 * i], a);
		bl_string(merges[2 * i + 1], c);
		if (pair_form)
			qn_buf_printf(f, "%s[\"%s\", \"%s\"]", i ? ", " : "", a, c);
		else
			qn_buf_printf(f, "%s\"%s %s\"", i ? ", " : "", a, c);
	}
	qn_buf_adds(f, "]}}\n");
}

static const char *BYTELEVEL =
    "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
    "\"use_regex\": true}";

static const char *hf_error(const char *json)
{
	static struct qn_err e;
	struct qn_bpe *b = qn_bpe_parse_hf(json, strlen(json), "tokenizer.json", &e);
	if (b) {
		qn_bpe_free(b);
		return "(loaded)";
	}
	return e.msg;
}

static void test_hf(void)
{
	/*
	 * Merge ranks, not ids, decide: "b c" comes first in the list, so
	 * "abc" is a + bc, although "ab" has the lower id in ranks terms.
	 */
	static const char *const merges[] = {"b", "c", "a", "b", "a", "bc", " ", "a", "ab", "c"};
	struct qn_buf f;
	struct qn_err e;
	qn_buf_init(&f, QN_BUF_UNLIMITED);

	hf_json(&f, merges, 5, 0, BYTELEVEL, "", "");
	struct qn_bpe *b = qn_bpe_parse_hf(f.data, f.len, "tokenizer.json", &e);
	CHECK_NAMED("tokenizer.json with \"a b\" merges loads", b != NULL);
	if (!b)
		printf("  %s\n", e.msg);
	hf_json(&f, merges, 5, 1, BYTELEVEL, "", "");
	struct qn_bpe *b2 = qn_bpe_parse_hf(f.data, f.len, "tokenizer.json", &e);
	CHECK_NAMED("tokenizer.json with [a, b] merges loads", b2 != NULL);
	if (b && b2) {
		CHECK_NAMED("both merge forms give one fingerprint",
			    !strcmp(qn_bpe_fingerprint(b), qn_bpe_fingerprint(b2)));
		/* ids: bc 256, ab 257, abc 258 (a + bc), " a" 259; "ab c" makes abc again. */
		ENC_IS("merge order decides: abc = a + bc", b, "abc", 0, 258);
		ENC_IS("abab: ab ab", b, "abab", 0, 257, 257);
		ENC_IS("the ByteLevel pattern splits words", b, "ab abc", 0, 257, ' ', 258);
		const unsigned char *tb;
		size_t tl;
		CHECK_NAMED("byte-level vocab strings are bytes",
			    qn_bpe_token(b, 259, &tb, &tl) == 0 && tl == 2 && !memcmp(tb, " a", 2));
		CHECK_NAMED("control bytes map back",
			    qn_bpe_token(b, 0, &tb, &tl) == 0 && tl == 1 && tb[0] == 0);
	}
	qn_bpe_free(b2);
	qn_bpe_free(b);

	/* add_prefix_space, ignore_merges, added tokens with lstrip/rstrip, a Sequence. */
	hf_json(&f, merges, 5, 0,
		"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
		"{\"Regex\": \"\\\\s+|\\\\S+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
		"{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": false}]}",
		"\"ignore_merges\": true, ",
		"\"added_tokens\": [{\"id\": 300, \"content\": \"<mask>\", \"single_word\": false, "
		"\"lstrip\": true, \"rstrip\": false, \"normalized\": false, \"special\": true}, "
		"{\"id\": 301, \"content\": \"<e>\", \"rstrip\": true, \"special\": true}],\n");
	b = qn_bpe_parse_hf(f.data, f.len, "tokenizer.json", &e);
	CHECK_NAMED("Sequence(Split, ByteLevel) with added tokens loads", b != NULL);
	if (!b)
		printf("  %s\n", e.msg);
	if (b) {
		/* Each Split piece gets its prefix space: "a" -> " a" (259). */
		ENC_IS("add_prefix_space on every piece", b, "a", 0, 259);
		ENC_IS("lstrip takes the spaces before", b, "a  <mask>", QN_BPE_ALLOW_SPECIAL, 259,
		       300);
		ENC_IS("rstrip takes the spaces after", b, "<e>  a", QN_BPE_ALLOW_SPECIAL, 301,
		       259);
		ENC_IS("added tokens are text unless allowed", b, "<e>", 0, ' ', '<', 'e', '>');
		CHECK_NAMED("added tokens are specials",
			    qn_bpe_special_count(b) == 2 && qn_bpe_special_id(b, "<e>", 3) == 301);
	}
	qn_bpe_free(b);

	/* Malformed files: the message names the JSON path. */
	hf_json(&f, merges, 5, 0, BYTELEVEL, "", "");
	char *good = strdup(f.data), *json = malloc(f.len + 200), *at;
	CHECK_STR("syntax error: line and column", hf_error("{\"model\": \n[}"),
		  "tokenizer.json:2:2: unexpected token near '}'");
	CHECK_STR("not an object", hf_error("[]"), "tokenizer.json: expected a JSON object");
	CHECK_STR("no model", hf_error("{}"), "tokenizer.json: model: expected an object");
	CHECK_STR("other model types", hf_error("{\"model\": {\"type\": \"WordPiece\"}}"),
		  "tokenizer.json: model.type: expected \"BPE\", got \"WordPiece\"");
	/* A merge that names a token the vocabulary lacks. */
	strcpy(json, good);
	at = strstr(json, "\"\xc4\xa0 a\"");
	if (at)
		memcpy(at, "\"x  y\"", 6);
	CHECK_STR("merge with two spaces", hf_error(json),
		  "tokenizer.json: model.merges[3]: expected \"a b\" (two tokens, one space)");
	strcpy(json, good);
	at = strstr(json, "\"ab c\"");
	if (at)
		memcpy(at, "\"xy z\"", 6);
	CHECK_STR("merge of unknown tokens", hf_error(json),
		  "tokenizer.json: model.merges[4]: unknown token 'xy'");
	strcpy(json, good);
	at = strstr(json, "\"b\": 98");
	if (at)
		memcpy(at, "\"b\": -1", 7);
	CHECK_STR("a bad vocab id", hf_error(json),
		  "tokenizer.json: model.vocab: 'b': id must be an integer from 0 to 1999999");
	strcpy(json, good);
	at = strstr(json, "\"b\": 98");
	if (at)
		memcpy(at, "\"b\": 99", 7);
	CHECK_STR("two tokens with one id", hf_error(json),
		  "tokenizer.json: model.vocab: 'c': id 99 repeats 'b'");
	strcpy(json, good);
	at = strstr(json, "\"normalizer\": null");
	if (at)
		memcpy(at, "\"normalizer\": {  }", 18);
	CHECK_STR(
	    "normalizers are refused", hf_error(json),
	    "tokenizer.json: normalizer: unsupported type '?' (quern encodes bytes as given)");
	hf_json(&f, merges, 5, 0, "{\"type\": \"Whitespace\"}", "", "");
	CHECK_STR("other pre-tokenizers are refused", hf_error(f.data),
		  "tokenizer.json: pre_tokenizer: type: unsupported pre-tokenizer 'Whitespace' "
		  "(ByteLevel, Split, Sequence)");
	hf_json(&f, merges, 5, 0,
		"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
		"{\"Regex\": \"(\"}, \"behavior\": \"Isolated\", \"invert\": false}]}",
		"", "");
	CHECK_STR("a bad Split regex", hf_error(f.data),
		  "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex: bad pattern: "
		  "missing closing parenthesis");
	hf_json(&f, merges, 5, 0,
		"{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Removed\", "
		"\"invert\": false}",
		"", "");
	CHECK_STR("Split behaviors other than Isolated", hf_error(f.data),
		  "tokenizer.json: pre_tokenizer: behavior: only \"Isolated\" is supported");
	hf_json(&f, merges, 5, 0, BYTELEVEL, "",
		"\"added_tokens\": [{\"id\": 300, \"content\": \"<m>\", \"single_word\": true}],");
	CHECK_STR("single_word added tokens", hf_error(f.data),
		  "tokenizer.json: added_tokens[0]: single_word: only false is supported");
	hf_json(&f, merges, 5, 0, BYTELEVEL, "\"continuing_subword_prefix\": \"##\", ", "");
	CHECK_STR("WordPiece-style prefixes", hf_error(f.data),
		  "tokenizer.json: model: continuing_subword_prefix: only null is supported");
	strcpy(json, good);
	at = strstr(json, "{\"type\": \"ByteLevel\"}");
	if (at)
		memcpy(at, "{\"type\": \"WordPiece\"}", 21);
	CHECK_STR("other decoders", hf_error(json),
		  "tokenizer.json: decoder: unsupported type 'WordPiece' (byte-level tokenizers "
		  "decode with ByteLevel)");
	strcpy(json, good);
	at = strstr(json, "\"\xc4\x80\": 0, ");
	if (at)
		memmove(at, at + 8, strlen(at + 8) + 1);
	CHECK_STR("a byte without a token", hf_error(json),
		  "tokenizer.json: model.vocab: no token for byte 0x00 ('\xc4\x80')");
	free(json);
	free(good);
	qn_buf_release(&f);
	b = qn_bpe_load_hf("/nonexistent/tokenizer.json", &e);
	CHECK_NAMED("missing tokenizer.json", !b && strstr(e.msg, "cannot open"));
}

/* Hugging Face's merge loop, naively: the pair earliest in the merge list, leftmost. */
static void test_differential_merges(void)
{
	const char *list[200 * 2];
	char store[200][2][32];
	size_t nm = 0;
	struct qn_buf f;
	struct qn_err e;
	/* Random merges over a small alphabet, in a random order of priority. */
	static const char *alpha[] = {"a", "b", "c", "d"};
	const char *made[220];
	size_t nmade = 4;
	for (int i = 0; i < 4; i++)
		made[i] = alpha[i];
	while (nm < 200) {
		const char *x = made[rnd() % nmade], *y = made[rnd() % nmade];
		if (strlen(x) + strlen(y) > 12)
			continue;
		int dup = 0;
		for (size_t k = 0; k < nm; k++)
			dup |= !strcmp(list[2 * k], x) && !strcmp(list[2 * k + 1], y);
		if (dup)
			continue;
		snprintf(store[nm][0], 32, "%s", x);
		snprintf(store[nm][1], 32, "%s", y);
		list[2 * nm] = store[nm][0];
		list[2 * nm + 1] = store[nm][1];
		char cat[32];
		snprintf(cat, 32, "%s%s", x, y);
		int known = 0;
		for (size_t k = 0; k < nmade; k++)
			known |= !strcmp(made[k], cat);
		if (!known && nmade < 220) {
			static char cats[220][32];
			snprintf(cats[nmade], 32, "%s", cat);
			made[nmade] = cats[nmade];
			nmade++;
		}
		nm++;
	}
	qn_buf_init(&f, QN_BUF_UNLIMITED);
	hf_json(&f, list, nm, 0, "null", "", "");
	struct qn_bpe *b = qn_bpe_parse_hf(f.data, f.len, "tokenizer.json", &e);
	CHECK_NAMED("random merge list loads", b != NULL);
	if (!b) {
		printf("  %s\n", e.msg);
		qn_buf_release(&f);
		return;
	}
	struct qn_bpe_scratch *s = qn_bpe_scratch_new(b);
	int bad_short = 0, bad_heap = 0, bad_buckets = 0;
	for (int k = 0; k < 800; k++) {
		char sym[300][32];
		size_t n = 1 + rnd() % (k % 10 ? 30 : 200), m = n;
		unsigned char p[300];
		for (size_t i = 0; i < n; i++) {
			p[i] = (unsigned char)"abcd"[rnd() % 4];
			sym[i][0] = (char)p[i];
			sym[i][1] = 0;
		}
		for (;;) { /* lowest merge index, leftmost */
			size_t best = nm, at = 0;
			for (size_t i = 0; i + 1 < m; i++)
				for (size_t r = 0; r < best; r++)
					if (!strcmp(list[2 * r], sym[i]) &&
					    !strcmp(list[2 * r + 1], sym[i + 1])) {
						best = r;
						at = i;
						break;
					}
			if (best == nm)
				break;
			size_t la = strlen(sym[at]), lb = strlen(sym[at + 1]);
			memmove(sym[at] + la, sym[at + 1], lb + 1);
			memmove(sym[at + 1], sym[at + 2], (m - at - 2) * sizeof sym[0]);
			m--;
		}
		uint32_t want[300];
		for (size_t i = 0; i < m; i++)
			want[i] = qn_bpe_lookup(b, sym[i], strlen(sym[i]));
		bad_short += !encode_piece_is(b, s, p, n, QN_BPE_SHORT_ONLY, want, m);
		bad_heap += !encode_piece_is(b, s, p, n, QN_BPE_HEAP_ONLY, want, m);
		bad_buckets += !encode_piece_is(b, s, p, n, QN_BPE_BUCKETS_ONLY, want, m);
	}
	printf("  merge list: 800 pieces, %d/%d/%d differ (array/heap/buckets)\n", bad_short,
	       bad_heap, bad_buckets);
	CHECK_NAMED("array merge == Hugging Face's loop", bad_short == 0);
	CHECK_NAMED("heap merge == Hugging Face's loop", bad_heap == 0);
	CHECK_NAMED("bucket merge == Hugging Face's loop", bad_buckets == 0);
	qn_bpe_scratch_free(s);
	qn_bpe_free(b);
	qn_buf_release(&f);
}

/* ---- threads ---- */

struct job {
	const struct qn_bpe *b;
	const unsigned char *text;
	size_t n;
	struct qn_bpe_ids ids;
	int rc;
};

static void *encode_job(void *arg)
{
	struct job *j = arg;
	struct qn_bpe_scratch *s = qn_bpe_scratch_new(j->b);
	j->rc = -1;
	if (!s)
		return NULL;
	for (int r = 0; r < 3; r++) {
		qn_bpe_ids_reset(&j->ids);
		j->rc = qn_bpe_encode(j->b, s, j->text, j->n, QN_BPE_ALLOW_SPECIAL, &j->ids, NULL);
	}
	qn_bpe_scratch_free(s);
	return NULL;
}

static void test_threads(void)
{
	struct table t;
	size_t n = 1 << 20;
	unsigned char *text = malloc(n);
	struct job jobs[4];
	pthread_t th[4];

	random_table(&t, 1, 500);
	struct qn_bpe *b = table_bpe(&t, qn_bpe_spec_named("o200k_base")->pattern, 1);
	CHECK_NAMED("thread table loads", b && text);
	if (!b || !text)
		return;
	random_text(text, n, 1);
	for (int i = 0; i < 4; i++) {
		jobs[i].b = b;
		jobs[i].text = text;
		jobs[i].n = n;
		qn_bpe_ids_init(&jobs[i].ids, SIZE_MAX);
		pthread_create(&th[i], NULL, encode_job, &jobs[i]);
	}
	int same = 1;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		same &= jobs[i].rc == 0 && jobs[i].ids.n == jobs[0].ids.n &&
			!memcmp(jobs[i].ids.v, jobs[0].ids.v, jobs[0].ids.n * sizeof(uint32_t));
	}
	CHECK_NAMED("four threads on one tokenizer give the same ids", same && jobs[0].ids.n > 0);
	for (int i = 0; i < 4; i++)
		qn_bpe_ids_release(&jobs[i].ids);
	qn_bpe_free(b);
	table_free(&t);
	free(text);
}

int main(void)
{
	test_hand_made();
	test_specials();
	test_patterns();
	test_differential_ranks();
	test_roundtrip();
	test_tiktoken_files();
	test_hf();
	test_differential_merges();
	test_threads();
	test_long_pieces();
	return CHECK_DONE();
}
