/*
 * test_filters.c - clean/filters: every rule of every quality filter, each
 * with a document just passing and one just failing at its threshold (the
 * comparison datatrove uses, strict or not), C4's line removals, the
 * bad-words boundary rule, and the word splitter; then the fast path
 * against qf_check_reference on generated documents.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "filters.h"

static struct qf_result R;

static const char *verdict(const struct qf_config *c, const struct qf_words *w, const char *s,
			   size_t n)
{
	int rc = qf_check(c, w, s, n, &R);
	if (rc < 0)
		return "error";
	return rc ? R.reason : "keep";
}

#define EXPECT(name, c, w, b, want) CHECK_STR(name, verdict(c, w, (b)->data ? (b)->data : "", (b)->len), want)
#define EXPECT_S(name, c, w, s, want) CHECK_STR(name, verdict(c, w, s, strlen(s)), want)

static void add(struct qn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct qn_buf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (qn_buf_adds(b, tmp) < 0)
		abort();
}

static void rep(struct qn_buf *b, const char *s, int n)
{
	for (int i = 0; i < n; i++)
		add(b, "%s", s);
}

/* A letters-only word unique to i, len letters long (len >= 4). */
static void uword(char *out, int i, int len)
{
	out[0] = 'q';
	for (int k = 1; k < len; k++) {
		out[k] = (char)('a' + i % 26);
		i /= 26;
	}
	out[len] = 0;
}

static void only(struct qf_config *c, unsigned bits)
{
	qf_config_init(c);
	c->enable = bits;
}

/* ---- the word splitter ---- */

static void test_split(void)
{
	static const char s[] = "Don't stop-now, 3.14 and 1,000... ok?! na\xc3\xafve \xe2\x80\x99tis ## x\xe2\x80\xa2";
	static const char *const want[] = {"Don't", "stop-now", ",", "3.14", "and", "1,000", "...", "ok",
					   "?", "!", "na\xc3\xafve", "\xe2\x80\x99", "tis", "##", "x",
					   "\xe2\x80\xa2"};
	struct qf_token *t;
	long n = qf_split(s, strlen(s), &t);
	size_t nw = sizeof want / sizeof *want;
	int ok = n == (long)nw;
	for (size_t i = 0; ok && i < nw; i++)
		ok = t[i].len == strlen(want[i]) && !memcmp(s + t[i].off, want[i], t[i].len);
	CHECK_NAMED("split: words, joiners, symbol runs", ok);
	if (ok) {
		CHECK_NAMED("split: naive is 5 chars", t[10].chars == 5 && t[10].alpha && !t[10].punct);
		CHECK_NAMED("split: '...' is punctuation", t[6].punct && !t[6].word && t[6].chars == 3);
		CHECK_NAMED("split: bullet is not punctuation", !t[15].punct && !t[15].alpha);
		CHECK_NAMED("split: number has no letter", !t[5].alpha && t[5].word);
	}
	free(t);
	n = qf_split("a.b -x- 'y' 1.a", 15, &t);
	CHECK_NAMED("split: joiners only between word characters", n == 12);
	free(t);
	n = qf_split("\xff\xfe abc \xc3", 8, &t);
	CHECK_NAMED("split: each invalid byte is a symbol", n == 4 && t[2].len == 3 && t[3].len == 1);
	free(t);
}

/* ---- length ---- */

static void test_length(void)
{
	struct qf_config c;
	only(&c, QF_LENGTH);
	c.min_chars = 5;
	EXPECT_S("length: 5 chars (10 bytes) >= min 5 keeps", &c, NULL, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "keep");
	EXPECT_S("length: 4 chars < min 5 rejects", &c, NULL, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "length_too_short");
	c.min_chars = 0;
	c.max_chars = 5;
	EXPECT_S("length: 5 chars <= max 5 keeps", &c, NULL, "abcde", "keep");
	EXPECT_S("length: 6 chars > max 5 rejects", &c, NULL, "abcdef", "length_too_long");
	CHECK_STR("length: filter name", R.filter, "length");
}

/* ---- Gopher quality ---- */

static void gq_doc(struct qn_buf *b, int houses)
{
	qn_buf_reset(b);
	add(b, "the of");
	rep(b, " house", houses);
}

static void test_gopher_quality(void)
{
	struct qf_config c;
	struct qn_buf b;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	only(&c, QF_GOPHER_QUALITY);

	gq_doc(&b, 48);
	EXPECT("gopher_short_doc: 50 words keeps", &c, NULL, &b, "keep");
	gq_doc(&b, 47);
	EXPECT("gopher_short_doc: 49 words rejects", &c, NULL, &b, "gopher_short_doc");
	CHECK_STR("gopher_short_doc: filter name", R.filter, "gopher_quality");
	qn_buf_reset(&b);
	add(&b, "the of , ; ( ) ! ? . .");
	rep(&b, " house", 47);
	EXPECT("gopher_short_doc: punctuation tokens do not count", &c, NULL, &b, "gopher_short_doc");

	gq_doc(&b, 99998);
	EXPECT("gopher_long_doc: 100000 words keeps", &c, NULL, &b, "keep");
	gq_doc(&b, 99999);
	EXPECT("gopher_long_doc: 100001 words rejects", &c, NULL, &b, "gopher_long_doc");

	qn_buf_reset(&b);
	add(&b, "the and");
	rep(&b, " cat", 48);
	EXPECT("gopher_below_avg_threshold: mean 3.0 keeps", &c, NULL, &b, "keep");
	b.len--;
	b.data[b.len] = 0;
	EXPECT("gopher_below_avg_threshold: mean 2.98 rejects", &c, NULL, &b, "gopher_below_avg_threshold");

	qn_buf_reset(&b);
	add(&b, "the the");
	rep(&b, " abcdefghijk", 14);
	rep(&b, " abcdefghij", 34);
	EXPECT("gopher_above_avg_threshold: mean 10.0 keeps", &c, NULL, &b, "keep");
	add(&b, "k");
	EXPECT("gopher_above_avg_threshold: mean 10.02 rejects", &c, NULL, &b, "gopher_above_avg_threshold");

	gq_doc(&b, 57);
	add(&b, " ######");
	EXPECT("gopher_too_many_hashes: 6 / 60 tokens keeps", &c, NULL, &b, "keep");
	add(&b, "#");
	EXPECT("gopher_too_many_hashes: 7 / 60 tokens rejects", &c, NULL, &b, "gopher_too_many_hashes");

	gq_doc(&b, 56);
	add(&b, " ");
	rep(&b, "\xe2\x80\xa6", 6);
	add(&b, " house");
	EXPECT("gopher_too_many_ellipsis: 6 '\xe2\x80\xa6' / 60 tokens keeps", &c, NULL, &b, "keep");
	gq_doc(&b, 56);
	add(&b, " ");
	rep(&b, "\xe2\x80\xa6", 7);
	add(&b, " house");
	EXPECT("gopher_too_many_ellipsis: 7 '\xe2\x80\xa6' / 60 tokens rejects", &c, NULL, &b, "gopher_too_many_ellipsis");
	gq_doc(&b, 56);
	add(&b, " ....................  house");
	EXPECT("gopher_too_many_ellipsis: 20 dots count 6 (no overlap), keeps", &c, NULL, &b, "keep");
	gq_doc(&b, 56);
	add(&b, " ..................... house");
	EXPECT("gopher_too_many_ellipsis: 21 dots count 7, rejects", &c, NULL, &b, "gopher_too_many_ellipsis");

	for (int bullets = 18; bullets <= 19; bullets++) {
		qn_buf_reset(&b);
		for (int i = 0; i < 20; i++)
			add(&b, "%sthe of house house house\n",
			    i >= bullets ? "" : i % 3 == 0 ? "  - " : "\xe2\x80\xa2 ");
		EXPECT(bullets == 18 ? "gopher_too_many_bullets: 18 / 20 lines keeps"
				     : "gopher_too_many_bullets: 19 / 20 lines rejects",
		       &c, NULL, &b, bullets == 18 ? "keep" : "gopher_too_many_bullets");
	}

	for (int ell = 3; ell <= 4; ell++) {
		qn_buf_reset(&b);
		for (int i = 0; i < 10; i++)
			add(&b, "the of house house house house%s\r\n",
			    i >= ell ? "" : i == 0 ? " \xe2\x80\xa6  " : " ...\t");
		EXPECT(ell == 3 ? "gopher_too_many_end_ellipsis: 3 / 10 lines keeps"
				: "gopher_too_many_end_ellipsis: 4 / 10 lines rejects",
		       &c, NULL, &b, ell == 3 ? "keep" : "gopher_too_many_end_ellipsis");
	}

	qn_buf_reset(&b);
	add(&b, "the of");
	rep(&b, " house", 38);
	rep(&b, " 1234", 10);
	EXPECT("gopher_below_alpha_threshold: 40 / 50 words keeps", &c, NULL, &b, "keep");
	add(&b, " 1234");
	EXPECT("gopher_below_alpha_threshold: 40 / 51 words rejects", &c, NULL, &b, "gopher_below_alpha_threshold");

	gq_doc(&b, 48);
	EXPECT("gopher_enough_stop_words: 2 stop words keeps", &c, NULL, &b, "keep");
	qn_buf_reset(&b);
	add(&b, "the");
	rep(&b, " house", 49);
	EXPECT("gopher_enough_stop_words: 1 stop word rejects", &c, NULL, &b, "gopher_enough_stop_words");
	qn_buf_reset(&b);
	add(&b, "The Of");
	rep(&b, " house", 48);
	EXPECT("gopher_enough_stop_words: case-sensitive (The, Of do not count)", &c, NULL, &b,
	       "gopher_enough_stop_words");

	c.min_doc_words = 0;
	EXPECT_S("gopher: 0 turns a rule off (empty text, no division by zero)", &c, NULL, "",
		 "gopher_enough_stop_words");
	qn_buf_release(&b);
}

/* ---- Gopher repetition ---- */

/* Repetition config with every rule off. */
static void rep_none(struct qf_config *c)
{
	only(c, QF_GOPHER_REPETITION);
	c->dup_line_frac = c->dup_para_frac = c->dup_line_char_frac = c->dup_para_char_frac = 0;
	memset(c->top_ngram_frac, 0, sizeof c->top_ngram_frac);
	memset(c->dup_ngram_frac, 0, sizeof c->dup_ngram_frac);
}

/* Appends unique padding words until b holds exactly target code points (ASCII). */
static void pad_to(struct qn_buf *b, size_t target, const char *sep)
{
	char w[32];
	int i = 0;
	while (b->len + strlen(sep) + 5 <= target) {
		uword(w, i++, 4);
		add(b, "%s%s", sep, w);
	}
	if (b->len < target) {
		size_t k = target - b->len;
		add(b, "%s", sep);
		for (size_t j = strlen(sep); j < k; j++)
			add(b, "%c", 'z');
	}
}

static void test_gopher_repetition(void)
{
	struct qf_config c;
	struct qn_buf b;
	char w[32];
	static const char *const seps[2] = {"\n\n", "\n"};

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (int kind = 0; kind < 2; kind++) {
		const char *sep = seps[kind];
		for (int dups = 3; dups <= 4; dups++) {
			rep_none(&c);
			if (kind == 0)
				c.dup_para_frac = 0.3;
			else
				c.dup_line_frac = 0.3;
			qn_buf_reset(&b);
			for (int i = 0; i < 10; i++) {
				uword(w, i < 10 - dups ? i : i - (10 - dups), 6);
				add(&b, "%s%s", i ? sep : "", w);
			}
			char name[128];
			snprintf(name, sizeof name, "%s: %d / 10 %s %s", kind ? "dup_line_frac" : "dup_para_frac",
				 dups, kind ? "lines" : "paragraphs", dups == 3 ? "keeps" : "rejects");
			EXPECT(name, &c, NULL, &b, dups == 3 ? "keep" : kind ? "dup_line_frac" : "dup_para_frac");
		}
		for (int total = 99; total <= 100; total++) {
			rep_none(&c);
			if (kind == 0)
				c.dup_para_char_frac = 0.2;
			else
				c.dup_line_char_frac = 0.2;
			qn_buf_reset(&b);
			add(&b, "abcdefghijklmnopqrst%sabcdefghijklmnopqrst", sep);
			pad_to(&b, (size_t)total, sep);
			char name[128];
			snprintf(name, sizeof name, "%s: 20 / %d chars %s",
				 kind ? "dup_line_char_frac" : "dup_para_char_frac", total,
				 total == 100 ? "keeps" : "rejects");
			EXPECT(name, &c, NULL, &b,
			       total == 100 ? "keep" : kind ? "dup_line_char_frac" : "dup_para_char_frac");
		}
	}
	rep_none(&c);
	c.dup_line_frac = 0.3;
	EXPECT_S("dup_line_frac: runs of newlines are one separator", &c, NULL, "a\n\n\nb\n\nc", "keep");
	EXPECT_S("dup_line_frac: leading and trailing empty lines count (1 / 3)", &c, NULL, "\nabc\n",
		 "dup_line_frac");
	rep_none(&c);
	c.dup_para_frac = 0.3;
	EXPECT_S("dup_para_frac: the text is stripped first", &c, NULL, "\n\n\nabc\n\n\n", "keep");

	/* top n-grams: len(" ".join(g)) * count / len(text) > frac */
	static const struct {
		int n, count;
		const char *gram;
		int total;
	} top[] = {{2, 4, "aa bb", 100}, {3, 9, "aa bb cc", 400}, {4, 8, "aa bb cc dd", 550}};
	for (size_t t = 0; t < 3; t++) {
		for (int d = 1; d >= 0; d--) {
			int total = top[t].total - d;
			char name[128], reason[32];
			rep_none(&c);
			c.top_ngram_frac[top[t].n] = t == 0 ? 0.2 : t == 1 ? 0.18 : 0.16;
			qn_buf_reset(&b);
			for (int i = 0; i < top[t].count; i++) {
				uword(w, 1000 + i, 4);
				add(&b, "%s%s %s", i ? " " : "", top[t].gram, w);
			}
			pad_to(&b, (size_t)total, " ");
			snprintf(reason, sizeof reason, "top_%d_gram", top[t].n);
			snprintf(name, sizeof name, "%s: %d chars of %d %s", reason,
				 (int)strlen(top[t].gram) * top[t].count, total, d ? "rejects" : "keeps");
			EXPECT(name, &c, NULL, &b, d ? reason : "keep");
		}
	}
	/* every word 4 chars: the fast path's bound on a 2-gram (9 chars times
	 * its count) is then exact */
	for (int total = 449; total <= 450; total++) {
		rep_none(&c);
		c.top_ngram_frac[2] = 0.2;
		qn_buf_reset(&b);
		rep(&b, "abcd efgh ", 10);
		b.data[--b.len] = 0;
		pad_to(&b, (size_t)total, " ");
		EXPECT(total == 449 ? "top_2_gram: 90 chars of 449, all words as long, rejects"
				    : "top_2_gram: 90 chars of 450, all words as long, keeps",
		       &c, NULL, &b, total == 449 ? "top_2_gram" : "keep");
	}
	rep_none(&c);
	c.top_ngram_frac[2] = 0.2;
	EXPECT_S("top_2_gram: a tie goes to the first seen (3*2/60, not 9*2/60)", &c, NULL,
		 "a b x cccc dddd y a b z cccc dddd qqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "keep");
	EXPECT_S("top_2_gram: a unique 2-gram counts too (13 of 60 chars)", &c, NULL,
		 "aaaaaa bbbbbb c d e f g h i j k l m n o p q r s t u v w x y", "top_2_gram");

	/* duplicated n-grams: chars of "".join(g) for repeats, skipping n */
	for (int n = 5; n <= 10; n++) {
		int m = 20 - n; /* dup chars = frac * 100 */
		for (int d = 1; d >= 0; d--) {
			char name[128], reason[32];
			rep_none(&c);
			c.dup_ngram_frac[n] = m / 100.0;
			qn_buf_reset(&b);
			for (int copy = 0; copy < 2; copy++)
				for (int i = 0; i < n; i++) {
					int len = m / n + (i < m % n);
					add(&b, "%s", copy || i ? " " : "");
					for (int k = 0; k < len; k++)
						add(&b, "%c", 'a' + i);
				}
			pad_to(&b, (size_t)(100 - d), " ");
			snprintf(reason, sizeof reason, "duplicated_%d_n_grams", n);
			snprintf(name, sizeof name, "%s: %d / %d chars %s", reason, m, 100 - d,
				 d ? "rejects" : "keeps");
			EXPECT(name, &c, NULL, &b, d ? reason : "keep");
		}
	}
	rep_none(&c);
	c.dup_ngram_frac[2] = 0.1;
	EXPECT_S("duplicated n-grams join without spaces (ab c == a bc)", &c, NULL,
		 "ab c a bc qqqqqqqqqq", "duplicated_2_n_grams");
	c.dup_ngram_frac[2] = 0;
	c.top_ngram_frac[2] = 0.2;
	EXPECT_S("top n-grams join with spaces (ab c != a bc)", &c, NULL, "ab c a bc qqqqqqqqqqqqqqqqqqqq",
		 "keep");

	qf_config_init(&c);
	c.enable = QF_GOPHER_REPETITION;
	EXPECT_S("gopher_repetition: filter name", &c, NULL, "x\n\nx\n\nx", "dup_para_frac");
	CHECK_STR("gopher_repetition: filter name is set", R.filter, "gopher_repetition");
	qn_buf_release(&b);
}

/* ---- C4 quality ---- */

static void good_lines(struct qn_buf *b, int n)
{
	for (int i = 0; i < n; i++)
		add(b, "%sThis is sentence %d.", i ? "\n" : "", i);
}

static void test_c4(void)
{
	struct qf_config c;
	struct qn_buf b, want;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	qn_buf_init(&want, QN_BUF_UNLIMITED);
	only(&c, QF_C4_QUALITY);

	good_lines(&b, 5);
	EXPECT("too_few_sentences: 5 sentences keeps", &c, NULL, &b, "keep");
	CHECK_NAMED("c4: unchanged text is not modified", R.has_text && !R.modified && R.c4_lines_kept == 5);
	qn_buf_reset(&b);
	good_lines(&b, 4);
	EXPECT("too_few_sentences: 4 sentences rejects", &c, NULL, &b, "too_few_sentences");
	CHECK_STR("too_few_sentences: filter name", R.filter, "c4_quality");
	EXPECT_S("too_few_sentences: one line, 5 sentences keeps", &c, NULL,
		 "One is here. Two is here! Three is here? Four \"is here.\" Five is here.", "keep");
	EXPECT_S("too_few_sentences: 4.5 is one sentence, 4 in all rejects", &c, NULL,
		 "One is 4.5 here. Two is here! Three is here? Four is here.", "too_few_sentences");

	qn_buf_reset(&b);
	good_lines(&b, 5);
	add(&b, "\nLorem Ipsum dolor sit amet.");
	EXPECT("lorem_ipsum: in a kept line rejects the document", &c, NULL, &b, "lorem_ipsum");
	qn_buf_reset(&b);
	good_lines(&b, 5);
	add(&b, "\nLorem ipsum dolor sit amet");
	EXPECT("lorem_ipsum: in a line already removed keeps", &c, NULL, &b, "keep");
	CHECK_NAMED("lorem_ipsum: ... that line was removed for punctuation",
		    R.c4_removed[QF_C4_NO_TERMINAL_PUNC] == 1);

	qn_buf_reset(&b);
	good_lines(&b, 5);
	add(&b, "\nIt uses a {brace} here.");
	EXPECT("curly_bracket: in a kept line rejects the document", &c, NULL, &b, "curly_bracket");
	qn_buf_reset(&b);
	good_lines(&b, 5);
	add(&b, "\nUses {x}.");
	EXPECT("curly_bracket: in a line with too few words keeps", &c, NULL, &b, "keep");

	/* every line rule, with datatrove's stat names */
	qn_buf_reset(&b);
	add(&b, "  First line stays here.  \n");
	add(&b, "no terminal punctuation here\n");
	add(&b, "ends with an ellipsis...\n");
	add(&b, "Two words.\n");
	add(&b, "Please enable JavaScript to view.\n");
	add(&b, "Second line stays here!\n");
	add(&b, "Read our Privacy Policy now.\n");
	add(&b, "This site uses cookies today.\r\n");
	add(&b, "Third line \"stays here.\"\n");
	add(&b, "Read the terms of use.\n");
	add(&b, "We use cookies for you.\n");
	add(&b, "About our use of cookies here.\n");
	add(&b, "Our cookie policy applies.\n");
	add(&b, "And the use of coo\xe2\x84\xaaies too.\n");
	add(&b, "Fourth line 'stays here'\n");
	add(&b, "Fifth line stays here?\n");
	EXPECT("c4: line removals keep the document", &c, NULL, &b, "keep");
	CHECK_NAMED("c4: no_terminal_punc removed 2", R.c4_removed[QF_C4_NO_TERMINAL_PUNC] == 2);
	CHECK_NAMED("c4: too_few_words removed 1", R.c4_removed[QF_C4_TOO_FEW_WORDS] == 1);
	CHECK_NAMED("c4: javascript removed 1", R.c4_removed[QF_C4_JAVASCRIPT] == 1);
	CHECK_NAMED("c4: policy removed 7 (Kelvin sign lowers to k)", R.c4_removed[QF_C4_POLICY] == 7);
	CHECK_NAMED("c4: lines counted", R.c4_lines_total == 16 && R.c4_lines_kept == 5);
	CHECK_NAMED("c4: text modified", R.has_text && R.modified);
	CHECK_STR("c4: kept lines joined by newline", R.text.data,
		  "First line stays here.\nSecond line stays here!\nThird line \"stays here.\"\n"
		  "Fourth line 'stays here'\nFifth line stays here?");
	CHECK_STR("c4: stat names", qf_c4_line_name(QF_C4_NO_TERMINAL_PUNC), "no_terminal_punc");

	/* max_word_length: a word of 1000 code points stays, 1001 goes */
	for (int len = 1000; len <= 1001; len++) {
		qn_buf_reset(&b);
		good_lines(&b, 5);
		add(&b, "\nword ");
		rep(&b, "\xc3\xa9", len);
		add(&b, " word.");
		EXPECT(len == 1000 ? "too_long_word: 1000 chars keeps the line"
				   : "too_long_word: 1001 chars removes the line",
		       &c, NULL, &b, "keep");
		CHECK_NAMED(len == 1000 ? "too_long_word: 6 lines kept" : "too_long_word: counted",
			    len == 1000 ? R.c4_lines_kept == 6 : R.c4_removed[QF_C4_TOO_LONG_WORD] == 1);
	}

	/* min_words_per_line: counted on the line before citations go */
	static const struct {
		const char *line;
		int kept;
		const char *name;
	} wl[] = {{"One two three.", 1, "too_few_words: 3 words keeps the line"},
		  {"One two.", 0, "too_few_words: 2 words removes the line"},
		  {"One two [1].", 1, "too_few_words: counted before citation removal (3)"},
		  {"One two[1].", 0, "too_few_words: 'two[1].' is one word (2)"}};
	for (size_t i = 0; i < 4; i++) {
		qn_buf_reset(&b);
		good_lines(&b, 5);
		add(&b, "\n%s", wl[i].line);
		EXPECT(wl[i].name, &c, NULL, &b, "keep");
		CHECK_NAMED(wl[i].name, R.c4_lines_kept == (uint64_t)(5 + wl[i].kept));
	}

	/* citations and terminal punctuation */
	qn_buf_reset(&b);
	add(&b, "[1] Starts with a citation.\n");
	add(&b, "Fact number one.[12]\n");
	add(&b, "Fact number two. [3]\n");
	add(&b, "See [edit] this [citation needed] now[].\n");
	add(&b, "Keep [a1] and [ 1] here.\n");
	add(&b, "Arabic digits [\xd9\xa3] go too.\n");
	add(&b, "Ends with a bang!\n");
	add(&b, "Ends with a dotdot..");
	EXPECT("c4: citations removed", &c, NULL, &b, "keep");
	CHECK_STR("c4: citation text", R.text.data,
		  "Starts with a citation.\nFact number one.\nSee  this  now.\nKeep [a1] and [ 1] here.\n"
		  "Arabic digits  go too.\nEnds with a bang!\nEnds with a dotdot..");
	CHECK_NAMED("c4: 'two. [3]' leaves a trailing space: no_terminal_punc",
		    R.c4_removed[QF_C4_NO_TERMINAL_PUNC] == 1);
	CHECK_NAMED("c4: citations counted", R.c4_citations == 7);

	c.c4_min_num_sentences = -1;
	EXPECT_S("c4: -1 turns too_few_sentences off", &c, NULL, "", "keep");
	qn_buf_release(&b);
	qn_buf_release(&want);
}

/* ---- C4 bad words ---- */

static void test_badwords(void)
{
	struct qf_config c;
	struct qf_words *w = qf_words_new(0), *cjk = qf_words_new(1);
	struct qn_err e;
	char path[] = "/tmp/qf_badwordsXXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	CHECK(f != NULL);
	if (!f || !w || !cjk)
		return;
	fputs("badword\nTwo  Words\n   spaced \n\n\xc3\x89vil\n", f);
	fclose(f);
	CHECK(qf_words_load(w, path, &e) == 0);
	CHECK(qf_words_count(w) == 4);
	CHECK(qf_words_load(cjk, path, &e) == 0);
	unlink(path);
	CHECK(qf_words_load(w, "/nonexistent/qf_words", &e) < 0 && strstr(e.msg, "cannot open"));

	only(&c, QF_C4_BADWORDS);
	EXPECT_S("document_removed_with_badwords: word inside text", &c, w, "a badword here", "document_removed_with_badwords");
	CHECK_STR("c4_badwords: filter name", R.filter, "c4_badwords");
	EXPECT_S("document_removed_with_badwords: case-insensitive", &c, w, "A BadWord!", "document_removed_with_badwords");
	EXPECT_S("document_removed_with_badwords: at the start and end", &c, w, "badword", "document_removed_with_badwords");
	EXPECT_S("document_removed_with_badwords: followed by punctuation", &c, w, "(badword-ish)", "document_removed_with_badwords");
	EXPECT_S("c4_badwords: a longer word does not match", &c, w, "badwords are fine", "keep");
	EXPECT_S("c4_badwords: a prefix does not match", &c, w, "xbadword", "keep");
	EXPECT_S("c4_badwords: underscore is a word character", &c, w, "badword_", "keep");
	EXPECT_S("c4_badwords: a letter with accent is a word character", &c, w, "badword\xc3\xa9", "keep");
	EXPECT_S("c4_badwords: a digit is a word character", &c, w, "1badword", "keep");
	EXPECT_S("document_removed_with_badwords: a phrase, spacing as listed", &c, w, "say two  words now", "document_removed_with_badwords");
	EXPECT_S("c4_badwords: a phrase needs its exact spacing", &c, w, "say two words now", "keep");
	EXPECT_S("document_removed_with_badwords: word stripped when loaded", &c, w, "so spaced.", "document_removed_with_badwords");
	EXPECT_S("document_removed_with_badwords: non-ASCII lowercased", &c, w, "\xc3\x89VIL", "document_removed_with_badwords");
	EXPECT_S("c4_badwords: no list skips the filter", &c, NULL, "badword", "keep");
	EXPECT_S("document_removed_with_badwords: ja/th/zh mode matches anywhere", &c, cjk, "xbadwordx", "document_removed_with_badwords");
	EXPECT_S("c4_badwords: ja/th/zh mode still needs the word", &c, cjk, "badwor", "keep");
	qf_words_free(w);
	qf_words_free(cjk);
}

/* ---- FineWeb quality ---- */

static void fw_line(struct qn_buf *b, int i, const char *end)
{
	char w1[16], w2[16];
	uword(w1, i, 6);
	uword(w2, i + 500, 6);
	add(b, "%sline %s has several %s words%s", b->len ? "\n" : "", w1, w2, end);
}

/* Characters other than newlines (ASCII text). */
static size_t nonnl(const struct qn_buf *b)
{
	size_t k = 0;
	for (size_t i = 0; i < b->len; i++)
		k += b->data[i] != '\n';
	return k;
}

static void test_fineweb(void)
{
	struct qf_config c;
	struct qn_buf b;
	char w[32];

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	only(&c, QF_FINEWEB_QUALITY);

	for (int k = 3; k <= 4; k++) {
		qn_buf_reset(&b);
		for (int i = 0; i < 25; i++)
			fw_line(&b, i, i < k ? (i == 1 ? "'" : i == 2 ? "\"" : ".") : "");
		EXPECT(k == 3 ? "line_punct_ratio: 3 / 25 = 0.12 rejects (<=)" : "line_punct_ratio: 4 / 25 keeps",
		       &c, NULL, &b, k == 3 ? "line_punct_ratio" : "keep");
	}
	CHECK_NAMED("fineweb_quality: no filter name when kept", R.filter == NULL && R.reason == NULL);
	qn_buf_reset(&b);
	for (int i = 0; i < 25; i++)
		fw_line(&b, i, "");
	EXPECT("line_punct_ratio: none rejects", &c, NULL, &b, "line_punct_ratio");
	CHECK_STR("fineweb_quality: filter name is set", R.filter, "fineweb_quality");
	c.fw_line_punct_exclude_zero = 1;
	EXPECT("line_punct_ratio: none keeps with exclude_zero", &c, NULL, &b, "keep");
	c.fw_line_punct_exclude_zero = 0;

	/* 66 short lines + 33 long + one of 30 (short) or 31 code points */
	for (int len = 30; len <= 31; len++) {
		qn_buf_reset(&b);
		for (int i = 0; i < 66; i++) {
			uword(w, i, 5);
			add(&b, "%sShort %s.", b.len ? "\n" : "", w);
		}
		for (int i = 0; i < 33; i++)
			fw_line(&b, i, ".");
		add(&b, "\n\xc3\xa9\xc3\xa9");
		rep(&b, "x", len - 3);
		add(&b, ".");
		EXPECT(len == 30 ? "short_line_ratio: 67 / 100 (30 chars is short) rejects"
				 : "short_line_ratio: 66 / 100 (31 chars is not) keeps",
		       &c, NULL, &b, len == 30 ? "short_line_ratio" : "keep");
	}

	/* one duplicated line of 20 chars; 2000 chars (no newlines) = 0.01 */
	for (int total = 2000; total <= 2001; total++) {
		qn_buf_reset(&b);
		add(&b, "A repeated line one.\nA repeated line one.");
		int i = 0;
		while (nonnl(&b) + 38 + 20 < (size_t)total)
			fw_line(&b, i++, ".");
		add(&b, "\nPadding ");
		while (nonnl(&b) < (size_t)total - 1)
			add(&b, "p");
		add(&b, ".");
		CHECK_NAMED("char_dup_ratio: built to size", nonnl(&b) == (size_t)total);
		EXPECT(total == 2000 ? "char_dup_ratio: 20 / 2000 rejects (>=)" : "char_dup_ratio: 20 / 2001 keeps",
		       &c, NULL, &b, total == 2000 ? "char_dup_ratio" : "keep");
	}
	EXPECT_S("char_dup_ratio: blank lines are not duplicates", &c, NULL,
		 "Line one is long enough to count here.\n          \nLine two is long enough to count "
		 "here.\n\nLine three is long enough to count.\n          \nLine four is long enough.",
		 "keep");

	/* 10 lines of 3 tokens: 9 newlines / 30 = 0.3 keeps, 10 / 30 rejects */
	for (int trail = 0; trail <= 1; trail++) {
		qn_buf_reset(&b);
		for (int i = 0; i < 10; i++) {
			char a[32], z[32];
			uword(a, i, 16);
			uword(z, i + 100, 16);
			add(&b, "%s%s %s.", i ? "\n" : "", a, z);
		}
		if (trail)
			add(&b, "\n");
		EXPECT(trail ? "list_ratio: 10 newlines / 30 words rejects" : "list_ratio: 9 newlines / 30 words keeps",
		       &c, NULL, &b, trail ? "list_ratio" : "keep");
	}
	qn_buf_release(&b);
}

/* ---- the chain ---- */

static const char prose[] =
	"The river town grew up around a wooden bridge that carried farmers and their carts "
	"across the water every market day. Over the years the bridge was rebuilt in stone, and "
	"the houses that crowded its approaches became shops, inns and workshops.\n"
	"Most of the people who live there now work in the small factories to the north of the "
	"old centre. They still keep the market on Saturdays, when the square fills with stalls "
	"selling bread, cheese, vegetables and flowers from the surrounding valleys.\n"
	"Visitors often remark that the town feels older than it is. The narrow lanes, the worn "
	"steps and the church tower give it a quiet character that is hard to find elsewhere in "
	"the region, and many of them return each summer with their families.";

static void test_chain(void)
{
	struct qf_config c;
	struct qf_words *w = qf_words_new(0);
	struct qn_err e;
	struct qn_buf b;

	qf_config_init(&c);
	EXPECT_S("chain: plain English prose passes the default chain", &c, NULL, prose, "keep");
	CHECK_NAMED("chain: ... unchanged by C4", R.has_text && !R.modified);
	EXPECT_S("chain: repetition runs before quality", &c, NULL, "x\n\nx\n\nx", "dup_para_frac");
	c.enable = QF_ALL;
	c.min_chars = 10;
	EXPECT_S("chain: length runs first", &c, NULL, "x\n\nx", "length_too_short");
	if (w && qf_words_add(w, "cheese", 6, &e) == 0) {
		EXPECT_S("chain: bad words on the default chain", &c, w, prose, "document_removed_with_badwords");
		qn_buf_init(&b, QN_BUF_UNLIMITED);
		add(&b, "%s\nno cheese in this line", prose);
		qf_words_free(w);
		w = qf_words_new(0);
		qf_words_add(w, "line", 4, &e);
		EXPECT("chain: bad words see the text C4 kept", &c, w, &b, "keep");
		CHECK_NAMED("chain: ... and C4 removed the line", R.modified);
		qn_buf_release(&b);
	}
	qf_words_free(w);
	char *big = malloc(1);
	CHECK_NAMED("chain: over QF_MAX_DOC_BYTES is an error",
		    big && qf_check(&c, NULL, big, QF_MAX_DOC_BYTES + 1, &R) == -1 &&
			    !strcmp(R.filter, "error"));
	free(big);
}

/* ---- the fast n-gram rules against the reference ---- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33) % n;
}

static void test_differential(void)
{
	/* tiny vocabularies make "ab c" == "a bc" collisions and repeats common */
	static const char *const vocab[] = {"a", "b", "ab", "ba", "c", "bc", "abc", "the", "cat",
					    "thecat", "sat", "on", "mat", "é", "aé", "x-y", "1,000",
					    "don't", "!!", "...", "abcdefghij", "abcdefghijklmnopq"};
	const size_t nv = sizeof vocab / sizeof *vocab;
	struct qf_result ref;
	struct qn_buf b;
	int bad = 0, docs = 3000;
	qf_result_init(&ref);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (int d = 0; d < docs && !bad; d++) {
		struct qf_config c;
		qf_config_init(&c);
		c.enable = QF_GOPHER_REPETITION;
		c.dup_line_frac = c.dup_para_frac = c.dup_line_char_frac = c.dup_para_char_frac = 0;
		/* thresholds spread so both verdicts occur; some n-grams on */
		for (int g = 1; g <= QF_NGRAM_MAX; g++) {
			c.top_ngram_frac[g] = rnd(3) ? 0 : (double)rnd(1000) / 1000;
			c.dup_ngram_frac[g] = rnd(3) ? 0 : (double)rnd(1000) / 1000;
		}
		if (d % 4 == 0) { /* the defaults */
			struct qf_config dflt;
			qf_config_init(&dflt);
			memcpy(c.top_ngram_frac, dflt.top_ngram_frac, sizeof c.top_ngram_frac);
			memcpy(c.dup_ngram_frac, dflt.dup_ngram_frac, sizeof c.dup_ngram_frac);
		}
		qn_buf_reset(&b);
		size_t words = 1 + rnd(d % 10 == 0 ? 2000 : 120), v = 2 + rnd((uint32_t)nv - 1);
		size_t period = 1 + rnd(12);
		for (size_t i = 0; i < words; i++) {
			size_t k = (d % 3 == 0) ? (i % period + rnd(2)) % v : rnd((uint32_t)v);
			if (i && qn_buf_adds(&b, rnd(20) ? " " : "\n") < 0)
				abort();
			if (qn_buf_adds(&b, vocab[k]) < 0)
				abort();
		}
		/* each rule alone too, so every rule is compared, not just the first */
		for (int only = -1; only <= 2 * QF_NGRAM_MAX && !bad; only++) {
			struct qf_config o = c;
			if (only >= 0) {
				int g = only % QF_NGRAM_MAX + 1;
				memset(o.top_ngram_frac, 0, sizeof o.top_ngram_frac);
				memset(o.dup_ngram_frac, 0, sizeof o.dup_ngram_frac);
				if (only < QF_NGRAM_MAX)
					o.top_ngram_frac[g] = (double)rnd(300) / 1000;
				else
					o.dup_ngram_frac[g] = (double)rnd(300) / 1000;
			}
			const char *text = b.data ? b.data : "";
			int r1 = qf_check(&o, NULL, text, b.len, &R);
			int r2 = qf_check_reference(&o, NULL, text, b.len, &ref);
			if (r1 != r2 || (r1 == 1 && strcmp(R.reason, ref.reason))) {
				bad = 1;
				printf("# differential: doc %d rule %d: fast %s, reference %s\n# %.200s\n", d,
				       only, r1 == 1 ? R.reason : "keep", r2 == 1 ? ref.reason : "keep", text);
			}
		}
	}
	CHECK_NAMED("differential: fast n-gram rules equal the reference on 3000 documents", !bad);
	qn_buf_release(&b);
	qf_result_release(&ref);
}

/* ---- the whole fast path against the reference, on web-like text ---- */

static const char *const web_words[] = {
	"the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be",
	"by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
	"The", "It", "river", "market", "people", "system", "report", "between", "water", "school",
	"thecat", "cat", "ab", "a-b", "well-known", "don't", "it\xe2\x80\x99s", "1,000", "3.14",
	"2024", "e.g.", "U.S.", "r\xc3\xa9sum\xc3\xa9", "na\xc3\xafve", "Stra\xc3\x9f" "e",
	"\xc3\xa9t\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xd0\xbc\xd0\xb8\xd1\x80",
	"\xef\xbc\x91", "\xc2\xbd", "a\xcc\x81", ",", ",", ".", ";", ":", "(", ")", "--", "...",
	"\xe2\x80\xa6", "#", "##", "!", "?", "\"", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x80\x94",
	"\xe2\x80\xa2", "\xc2\xa9", "[1]", "[edit]", "{", "http://x.example/a?b=c",
	"abcdefghijklmnopqrstuvwxyz0123", "JavaScript", "lorem ipsum", "cookie policy",
	"\xe2\x84\xaa" "elvin"};
static const char *const web_breaks[] = {"\n", "\n", "\n", "\n\n", "\n\n\n", "\r\n", "\r",
					 "\xe2\x80\xa8", "\xc2\x85", "\x0b", "\n \n", " \n"};

/* Appends a line of lo..hi words, ending in punctuation most of the time. */
static void web_line(struct qn_buf *b, int lo, int hi, int vocab)
{
	int n = lo + (int)rnd((uint32_t)(hi - lo + 1));
	for (int i = 0; i < n; i++) {
		int k = (int)rnd((uint32_t)vocab);
		if (rnd(3))
			k = (int)rnd(k + 1u); /* favour the common words */
		add(b, "%s%s", i ? (rnd(40) ? " " : rnd(2) ? "\xc2\xa0" : "  ") : rnd(30) ? "" : "- ",
		    web_words[k]);
	}
	static const char *const ends[] = {".", ".", ".", "?", "!", "...", "\"", "'", "", ":"};
	add(b, "%s", ends[rnd(sizeof ends / sizeof *ends)]);
}

/*
 * A document with repeated lines, paragraphs and phrases at rates drawn per
 * document (none to most), line breaks of every kind now and then, and
 * non-ASCII words; some get a few random bytes.
 */
static void web_doc(struct qn_buf *b)
{
	const int nw = (int)(sizeof web_words / sizeof *web_words);
	int vocab = 8 + (int)rnd((uint32_t)nw - 7), lines = 1 + (int)rnd(rnd(8) ? 30 : 150);
	uint32_t rep_line = rnd(4) ? rnd(15) : rnd(80), rep_phrase = rnd(3) ? rnd(10) : rnd(60);
	size_t starts[512], nstart = 0;
	qn_buf_reset(b);
	for (int l = 0; l < lines; l++) {
		if (l)
			add(b, "%s", rnd(10) ? web_breaks[rnd(3)] : web_breaks[rnd(sizeof web_breaks / sizeof *web_breaks)]);
		size_t st = b->len;
		if (nstart && rnd(100) < rep_line) {
			/* an earlier line again, maybe with its paragraph */
			size_t from = starts[rnd((uint32_t)nstart)], to = from;
			while (to < st && b->data[to] != '\n')
				to++;
			if (rnd(4) == 0)
				while (to < st && !(b->data[to] == '\n' && to + 1 < st && b->data[to + 1] == '\n'))
					to++;
			char *copy = malloc(to - from + 1);
			if (!copy)
				abort();
			memcpy(copy, b->data + from, to - from);
			if (qn_buf_add(b, copy, to - from) < 0)
				abort();
			free(copy);
		} else if (nstart && rnd(100) < rep_phrase) {
			/* a run of words from earlier inside new text */
			web_line(b, 1, 6, vocab);
			size_t from = starts[rnd((uint32_t)nstart)], len = 5 + rnd(60);
			if (from + len > st)
				len = st - from;
			char *copy = malloc(len + 1);
			if (!copy)
				abort();
			memcpy(copy, b->data + from, len);
			add(b, " ");
			if (qn_buf_add(b, copy, len) < 0)
				abort();
			free(copy);
			add(b, " ");
			web_line(b, 1, 8, vocab);
		} else {
			web_line(b, rnd(5) ? 4 : 0, rnd(4) ? 16 : 40, vocab);
		}
		if (nstart < sizeof starts / sizeof *starts)
			starts[nstart++] = st;
	}
	if (b->len && rnd(4) == 0)
		for (int k = 1 + (int)rnd(4); k > 0; k--)
			b->data[rnd((uint32_t)b->len)] = (char)rnd(256);
}

/* Same verdict, reason, C4 counts and kept text from both paths? */
static int same_result(const struct qf_config *c, const struct qf_words *w, const struct qn_buf *b,
		       struct qf_result *ref)
{
	const char *text = b->data ? b->data : "";
	int r1 = qf_check(c, w, text, b->len, &R), r2 = qf_check_reference(c, w, text, b->len, ref);
	if (r1 != r2 || (r1 == 1 && (strcmp(R.filter, ref->filter) || strcmp(R.reason, ref->reason))))
		return 0;
	if (R.c4_lines_total != ref->c4_lines_total || R.c4_lines_kept != ref->c4_lines_kept ||
	    R.c4_citations != ref->c4_citations || memcmp(R.c4_removed, ref->c4_removed, sizeof R.c4_removed))
		return 0;
	return r1 != 0 || (R.has_text == ref->has_text && R.modified == ref->modified &&
			   R.text.len == ref->text.len &&
			   (!R.text.len || !memcmp(R.text.data, ref->text.data, R.text.len)));
}

/* The non-symbol word count, read off min_doc_words by bisection. */
static long probe_words(const struct qn_buf *b, int reference, struct qf_result *ref)
{
	struct qf_config c;
	long lo = 0, hi = (long)b->len + 1; /* nsym >= lo, nsym < hi */
	only(&c, QF_GOPHER_QUALITY);
	c.max_doc_words = 0;
	c.min_avg_word_length = c.max_avg_word_length = c.max_symbol_word_ratio = 0;
	c.max_bullet_lines_ratio = c.max_ellipsis_lines_ratio = c.max_non_alpha_words_ratio = 0;
	c.min_stop_words = 0;
	while (hi - lo > 1) {
		long mid = lo + (hi - lo) / 2;
		c.min_doc_words = mid;
		int rc = reference ? qf_check_reference(&c, NULL, b->data ? b->data : "", b->len, ref)
				   : qf_check(&c, NULL, b->data ? b->data : "", b->len, &R);
		if (rc == 1)
			hi = mid;
		else
			lo = mid;
	}
	return lo;
}

static void test_differential_web(void)
{
	struct qf_result ref;
	struct qf_words *w = qf_words_new(0);
	struct qn_err e;
	struct qn_buf b;
	int bad = 0, docs = 2500, checks = 0;
	static const unsigned chains[] = {QF_DEFAULT_CHAIN, QF_GOPHER_REPETITION, QF_GOPHER_QUALITY,
					  QF_C4_QUALITY, QF_FINEWEB_QUALITY, QF_ALL,
					  QF_C4_QUALITY | QF_FINEWEB_QUALITY};

	qf_result_init(&ref);
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	if (!w || qf_words_add(w, "cat", 3, &e) < 0 || qf_words_add(w, "na\xc3\xafve", 6, &e) < 0)
		abort();
	rng_state = 0x9e3779b97f4a7c15ull;
	for (int d = 0; d < docs && !bad; d++) {
		struct qf_config c;
		web_doc(&b);
		for (size_t k = 0; k < sizeof chains / sizeof *chains && !bad; k++) {
			qf_config_init(&c);
			c.enable = chains[k];
			if (d % 2) { /* loose thresholds, so that the later rules run too */
				c.dup_line_frac = c.dup_para_frac = c.dup_line_char_frac = c.dup_para_char_frac = 0.95;
				for (int g = 2; g <= QF_NGRAM_MAX; g++)
					c.top_ngram_frac[g] = c.dup_ngram_frac[g] = rnd(4) ? 0.95 : 0;
				c.min_doc_words = rnd(60);
				c.max_symbol_word_ratio = 0.5;
				c.c4_min_num_sentences = (long)rnd(8) - 1;
				c.fw_char_duplicates_ratio = 0.5;
				c.fw_line_punct_thr = 0.01;
				c.fw_short_line_thr = 0.99;
			}
			bad = !same_result(&c, w, &b, &ref);
			checks++;
		}
		/* n-gram rules alone, so that every one is compared, not just the first */
		for (int k = 0; k < 4 && !bad; k++) {
			int only_rule = (int)rnd(2 * QF_NGRAM_MAX), g = only_rule % QF_NGRAM_MAX + 1;
			rep_none(&c);
			if (only_rule < QF_NGRAM_MAX)
				c.top_ngram_frac[g] = (double)rnd(400) / 1000;
			else
				c.dup_ngram_frac[g] = (double)rnd(300) / 1000;
			bad = !same_result(&c, NULL, &b, &ref);
			checks++;
		}
		if (!bad && d % 5 == 0) {
			long n1 = probe_words(&b, 0, &ref), n2 = probe_words(&b, 1, &ref);
			bad = n1 != n2;
			checks++;
			if (bad)
				printf("# differential: doc %d: %ld words, reference %ld\n", d, n1, n2);
		}
		if (bad)
			printf("# differential: doc %d (check %d): fast %s/%s, reference %s/%s\n# %.300s\n", d,
			       checks, R.filter ? R.filter : "-", R.reason ? R.reason : "keep",
			       ref.filter ? ref.filter : "-", ref.reason ? ref.reason : "keep", b.data);
	}
	CHECK_NAMED("differential: whole chain, fast path equals the reference on 2500 web-like documents", !bad);
	qf_words_free(w);
	qn_buf_release(&b);
	qf_result_release(&ref);
}

/* ---- --bench: MB/s per filter on the prose of examples/out/docs.jsonl ---- */

#include <time.h>

/* The "text" strings of a JSONL file, decoded; appended to *docs. */
static size_t load_texts(const char *path, struct qn_buf *all, size_t **ends, size_t *nd)
{
	FILE *f = fopen(path, "rb");
	char *line = NULL;
	size_t cap = 0, nc = 0;
	ssize_t k;
	if (!f)
		return 0;
	while ((k = getline(&line, &cap, f)) > 0) {
		char *p = strstr(line, "\"text\":\"");
		if (!p)
			continue;
		for (p += 8; *p && *p != '"'; p++) {
			char ch = *p;
			if (ch == '\\') {
				p++;
				if (*p == 'n')
					ch = '\n';
				else if (*p == 't')
					ch = '\t';
				else if (*p == 'r')
					ch = '\r';
				else if (*p == 'u') {
					unsigned v = 0;
					if (sscanf(p + 1, "%4x", &v) != 1)
						break;
					p += 4;
					char u[4];
					size_t l = 0;
					if (v < 0x80)
						u[l++] = (char)v;
					else if (v < 0x800)
						u[l++] = (char)(0xc0 | v >> 6), u[l++] = (char)(0x80 | (v & 63));
					else
						u[l++] = (char)(0xe0 | v >> 12), u[l++] = (char)(0x80 | (v >> 6 & 63)),
						u[l++] = (char)(0x80 | (v & 63));
					if (qn_buf_add(all, u, l) < 0)
						abort();
					continue;
				} else
					ch = *p;
			}
			if (qn_buf_add(all, &ch, 1) < 0)
				abort();
		}
		if (*nd == nc) {
			nc = nc ? 2 * nc : 64;
			*ends = realloc(*ends, nc * sizeof **ends);
			if (!*ends)
				abort();
		}
		(*ends)[(*nd)++] = all->len;
	}
	free(line);
	fclose(f);
	return *nd;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int bench(const char *path, const char *only)
{
	struct qn_buf all;
	size_t *ends = NULL, nd = 0, base;
	qn_buf_init(&all, QN_BUF_UNLIMITED);
	if (!load_texts(path, &all, &ends, &nd)) {
		fprintf(stderr, "bench: no texts in %s\n", path);
		return 1;
	}
	base = nd;
	size_t blen = all.len;
	char *one = malloc(blen);
	if (!one)
		abort();
	memcpy(one, all.data, blen);
	/* repeat the documents to ~10 MB */
	while (all.len < (size_t)10 << 20) {
		size_t st = 0;
		for (size_t i = 0; i < base; i++) {
			size_t len = ends[i] - st;
			if (qn_buf_add(&all, one + st, len) < 0)
				abort();
			ends = realloc(ends, (nd + 1) * sizeof *ends);
			ends[nd++] = all.len;
			st = ends[i];
		}
	}
	static const struct {
		const char *name;
		unsigned bits;
	} runs[] = {{"gopher_repetition", QF_GOPHER_REPETITION},
		    {"gopher_quality", QF_GOPHER_QUALITY},
		    {"c4_quality", QF_C4_QUALITY},
		    {"fineweb_quality", QF_FINEWEB_QUALITY},
		    {"default chain", QF_DEFAULT_CHAIN}};
	printf("# %.1f MB in %zu documents (%zu distinct), median of 5\n", all.len / 1e6, nd, base);
	for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
		struct qf_config c;
		double t[5];
		size_t kept = 0;
		if (only && strcmp(only, runs[k].name))
			continue;
		qf_config_init(&c);
		c.enable = runs[k].bits;
		for (int rpt = 0; rpt < 5; rpt++) {
			struct timespec t0, t1;
			size_t st = 0;
			kept = 0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (size_t i = 0; i < nd; i++) {
				if (qf_check(&c, NULL, all.data + st, ends[i] - st, &R) == 0)
					kept++;
				st = ends[i];
			}
			clock_gettime(CLOCK_MONOTONIC, &t1);
			t[rpt] = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		}
		qsort(t, 5, sizeof *t, cmp_d);
		printf("%-18s %7.1f MB/s  (%zu/%zu kept)\n", runs[k].name, all.len / 1e6 / t[2], kept, nd);
	}
	free(one);
	free(ends);
	qn_buf_release(&all);
	return 0;
}

int main(int argc, char **argv)
{
	qf_result_init(&R);
	if (argc > 1 && !strcmp(argv[1], "--bench")) {
		int rc = bench(argc > 2 ? argv[2] : "examples/out/docs.jsonl", argc > 3 ? argv[3] : NULL);
		qf_result_release(&R);
		return rc;
	}
	test_split();
	test_length();
	test_gopher_quality();
	test_gopher_repetition();
	test_c4();
	test_badwords();
	test_fineweb();
	test_chain();
	test_differential();
	test_differential_web();
	qf_result_release(&R);
	return CHECK_DONE();
}
