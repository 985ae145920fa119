/*
 * filters.h - quern-clean's quality filters: datatrove's Gopher quality,
 * Gopher repetition, C4 quality, C4 bad words and FineWeb quality rules,
 * plus length bounds.
 *
 * Each rule keeps datatrove's default threshold, comparison (strict or not),
 * reason string and order; the first failing rule rejects the document.
 * clean/filters.md is the rule table and defines the word splitter every
 * rule shares (qf_split), with the places its counts differ from the
 * NLTK / spaCy tokenizers datatrove uses.
 *
 * The chain runs in this order, each filter enabled by a bit in
 * qf_config.enable: length, gopher_repetition, gopher_quality, c4_quality,
 * c4_badwords, fineweb_quality. C4 quality removes lines rather than
 * rejecting the document; the filters after it (bad words, FineWeb) see the
 * text it kept, as they would in a datatrove pipeline that lists them after
 * it.
 *
 * Ownership: struct qf_result is caller-owned (qf_result_init /
 * qf_result_release) and may be reused across documents; it keeps its
 * scratch memory between calls so the chain allocates little. The filter
 * and reason strings it points to are static. struct qf_words (the bad-words
 * list) is qf_words_new / qf_words_free; it is read-only once loaded and can
 * be shared between threads, a qf_result cannot. This module never prints
 * or exits.
 */
#ifndef QF_FILTERS_H
#define QF_FILTERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct qn_err;

/* qf_config.enable bits. */
#define QF_LENGTH (1u << 0)
#define QF_GOPHER_REPETITION (1u << 1)
#define QF_GOPHER_QUALITY (1u << 2)
#define QF_C4_QUALITY (1u << 3)
#define QF_C4_BADWORDS (1u << 4)
#define QF_FINEWEB_QUALITY (1u << 5)
#define QF_ALL 0x3fu
/* What qf_config_init enables: datatrove's FineWeb chain. */
#define QF_DEFAULT_CHAIN (QF_GOPHER_REPETITION | QF_GOPHER_QUALITY | QF_C4_QUALITY | QF_FINEWEB_QUALITY)

/* n-gram sizes the repetition rules accept (index = n). */
#define QF_NGRAM_MAX 10

/* Largest document qf_check takes (token offsets are 32-bit). */
#define QF_MAX_DOC_BYTES ((size_t)1 << 31)

/*
 * Every threshold, datatrove's defaults set by qf_config_init. As in
 * datatrove, a Gopher threshold of 0 turns its rule off (Python's
 * `if self.x and ...`), and a C4 count of -1 turns its rule off.
 */
struct qf_config {
	unsigned enable;

	/* length (quern's own): code points; 0 = no bound */
	size_t min_chars, max_chars;

	/* Gopher quality */
	long min_doc_words;		 /* 50, n < min rejects */
	long max_doc_words;		 /* 100000, n > max rejects */
	double min_avg_word_length;	 /* 3, avg < min rejects */
	double max_avg_word_length;	 /* 10, avg > max rejects */
	double max_symbol_word_ratio;	 /* 0.1, ratio > max rejects */
	double max_bullet_lines_ratio;	 /* 0.9, ratio > max rejects */
	double max_ellipsis_lines_ratio; /* 0.3, ratio > max rejects */
	double max_non_alpha_words_ratio; /* 0.8, ratio < value rejects */
	long min_stop_words;		 /* 2, count < min rejects */
	const char *const *stop_words;	 /* NULL: the, be, to, of, and, that, have, with */
	size_t n_stop_words;

	/* Gopher repetition: fraction > value rejects; 0 = off */
	double dup_line_frac;	   /* 0.3 */
	double dup_para_frac;	   /* 0.3 */
	double dup_line_char_frac; /* 0.2 */
	double dup_para_char_frac; /* 0.2 */
	double top_ngram_frac[QF_NGRAM_MAX + 1]; /* [2]=0.2 [3]=0.18 [4]=0.16 */
	double dup_ngram_frac[QF_NGRAM_MAX + 1]; /* [5]=0.15 .. [10]=0.10 */

	/* C4 quality */
	int c4_remove_citations;      /* 1 */
	int c4_filter_no_terminal_punct; /* 1 */
	long c4_min_num_sentences;    /* 5, n < min rejects; -1 off */
	long c4_min_words_per_line;   /* 3, n < min removes the line; -1 off */
	long c4_max_word_length;      /* 1000, len > max removes the line; -1 off */
	int c4_filter_lorem_ipsum;    /* 1 */
	int c4_filter_javascript;     /* 1 */
	int c4_filter_curly_bracket;  /* 1 */
	int c4_filter_policy;	      /* 1 */

	/* FineWeb quality */
	double fw_line_punct_thr;     /* 0.12, ratio <= thr rejects */
	int fw_line_punct_exclude_zero; /* 0 */
	double fw_short_line_thr;     /* 0.67, ratio >= thr rejects */
	long fw_short_line_length;    /* 30, len <= this is short */
	double fw_char_duplicates_ratio; /* 0.01, ratio >= value rejects */
	double fw_new_line_ratio;     /* 0.3, ratio > value rejects */
};

void qf_config_init(struct qf_config *c);

/* Reasons C4 quality removes a line for; index into qf_result.c4_removed. */
enum qf_c4_line {
	QF_C4_TOO_LONG_WORD,
	QF_C4_NO_TERMINAL_PUNC,
	QF_C4_TOO_FEW_WORDS,
	QF_C4_JAVASCRIPT,
	QF_C4_POLICY,
	QF_C4_NLINE
};

/* datatrove's stat name without "line-filter-": "too_long_word", ... */
const char *qf_c4_line_name(enum qf_c4_line r);

struct qf_scratch;

struct qf_result {
	const char *filter; /* NULL when kept, else "gopher_quality", ... */
	const char *reason; /* NULL when kept, else "gopher_short_doc", ... */
	/*
	 * When C4 quality ran and the document was kept, text holds the lines
	 * C4 kept, joined by "\n" and stripped (as datatrove rewrites
	 * doc.text), has_text is 1, and modified says whether that differs
	 * from the input. On a rejection text is partial: ignore it.
	 */
	int has_text;
	int modified;
	struct qn_buf text;
	uint64_t c4_lines_total;
	uint64_t c4_lines_kept;
	uint64_t c4_removed[QF_C4_NLINE];
	/* citations C4 removed from kept and removed lines */
	uint64_t c4_citations;
	struct qf_scratch *scratch; /* private */
};

void qf_result_init(struct qf_result *r);
void qf_result_release(struct qf_result *r);

/* The bad-words list (C4BadWordsFilter). */
struct qf_words;

/*
 * no_boundaries: match anywhere, as datatrove does for ja, th and zh;
 * otherwise a word must be flanked by a non-word character or the text's
 * edge. Words are lowercased when added; text is lowercased when matched.
 */
struct qf_words *qf_words_new(int no_boundaries);
void qf_words_free(struct qf_words *w);
/* Adds one word or phrase (UTF-8, stripped of surrounding whitespace; an
 * empty one is ignored). -1 when it is over 1024 bytes or memory ran out. */
int qf_words_add(struct qf_words *w, const char *s, size_t n, struct qn_err *e);
/* Reads one word or phrase a line; -1 with e filled on failure. */
int qf_words_load(struct qf_words *w, const char *path, struct qn_err *e);
size_t qf_words_count(const struct qf_words *w);
/* 1 when text contains a listed word under the boundary rule. */
int qf_words_match(const struct qf_words *w, const char *text, size_t len, struct qn_buf *scratch);

/*
 * Runs the enabled filters on text (UTF-8; invalid bytes are tolerated and
 * each counts as one symbol character). Returns 0 to keep, 1 to reject
 * (r->filter and r->reason say why), -1 when memory ran out or the text is
 * over QF_MAX_DOC_BYTES (r->filter is "error"). badwords may be NULL when
 * QF_C4_BADWORDS is off (or to skip it).
 */
int qf_check(const struct qf_config *c, const struct qf_words *badwords, const char *text,
	     size_t len, struct qf_result *r);

/*
 * The word splitter (filters.md defines it). Token kinds: a word (letters,
 * marks, digits, joined by inner apostrophes, hyphens, and by '.' or ','
 * between digits) or a symbol (a run of one repeated other character).
 */
struct qf_token {
	uint32_t off, len; /* bytes into the text */
	uint32_t chars;	   /* code points */
	uint8_t word;	   /* 1 word, 0 symbol */
	uint8_t alpha;	   /* has a letter (Python isalpha) */
	uint8_t punct;	   /* every character in datatrove's PUNCTUATION_SET */
	uint8_t pad_;
};

/* Splits text into tokens (caller frees *out); returns the count or -1. */
long qf_split(const char *text, size_t len, struct qf_token **out);

/*
 * qf_check with the reference (slow, straightforward) implementations of
 * the word splitter, the Gopher n-gram rules and the token counts the fast
 * path gathers while splitting, for tests/unit/test_filters.c to check the
 * fast path against; same results, same contract.
 */
int qf_check_reference(const struct qf_config *c, const struct qf_words *badwords, const char *text,
		       size_t len, struct qf_result *r);

#endif
