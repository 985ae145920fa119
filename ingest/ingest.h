/*
 * ingest.h - what quern-ingest's format readers share.
 *
 * main() (ingest.c) finds the inputs, picks a format and hands each input
 * to one reader, ix_<format>(sink, rd). A reader turns its input into
 * documents with ix_emit and reports trouble with ix_fail; it never prints.
 * The sink buffers JSON lines and messages per input so that parallel runs
 * come out in input order; a reader of a huge input (a wiki dump, an mbox)
 * may call ix_emit millions of times: the sink flushes to the output as soon
 * as it is this input's turn, so memory stays bounded.
 */
#ifndef IX_INGEST_H
#define IX_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "html.h"

struct qn_rd;

enum ix_quotes { IX_QUOTES_KEEP, IX_QUOTES_MARK, IX_QUOTES_STRIP };

struct ix_opts {
	const char *format;     /* --format; NULL detects */
	struct ix_html_opts html;
	/* XML */
	const char *xpath;      /* one document per matching node */
	const char *id_xpath;   /* relative to the node */
	const char *text_xpath; /* relative to the node; default: all its text */
	const char **meta_name; /* --meta NAME=XPATH */
	const char **meta_xpath;
	int nmeta;
	/* CSV / TSV */
	const char *text_column;  /* default: every column as "name: value" lines */
	const char *id_column;
	const char **meta_columns; /* NULL: every column not used for text/id */
	int n_meta_columns;
	int delimiter;          /* 0: ',' for csv, '\t' for tsv */
	int quote;              /* 0: '"' */
	int no_header;
	/* JSONL */
	const char *text_field; /* default "text" */
	const char *id_field;   /* default: none (hash) */
	/* e-mail */
	enum ix_quotes quotes;
	size_t max_bytes;       /* per document */
	const char *added;      /* RFC 3339 time of this run */
	const char *source;     /* --source; NULL derives from the path */
};

struct ix_sink {
	const struct ix_opts *opt;
	const char *path;      /* the input as named */
	const char *source;
	const char *format;    /* the reader's format name, into metadata */
	char charset[64];      /* set by readers that decode; into metadata */
	struct qn_buf out;     /* pending JSON lines */
	struct qn_buf msgs;    /* pending messages, '\n'-separated */
	uint64_t docs;         /* documents emitted */
	uint64_t failed;       /* records (or the whole input) that failed */
	uint64_t repaired;     /* invalid bytes replaced by U+FFFD */
	int nmsgs;
	uint64_t line_base;    /* lines before this part of the input (--shard) */
	/* Called when out grows large; writes it once it is this input's turn. */
	int (*flush)(struct ix_sink *s);
	void *flush_ctx;
	int flush_error;
};

/*
 * Emits one document. key names the record within its input (row number,
 * Message-ID, page id; NULL for a one-document input) and makes the
 * deterministic id; explicit_id, when the user mapped an id column or
 * field, is the id itself. Invalid UTF-8 in text is repaired (counted).
 * meta (may be NULL) is stolen; path and format are added to it.
 */
int ix_emit(struct ix_sink *s, const char *key, const char *explicit_id, const char *text,
	    size_t len, json_t *meta, const char *created);

/* Records one failure of this input ("line 12: unbalanced quote"). */
void ix_fail(struct ix_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Decodes raw bytes to UTF-8 into out, choosing the charset by BOM, then
 * declared (may be NULL), then content; records it in s->charset and
 * counts replacements. Returns the number of bytes replaced by U+FFFD,
 * or -1 when out's limit is hit.
 */
long ix_decode(struct ix_sink *s, const char *raw, size_t n, const char *declared,
	       struct qn_buf *out);

/* The readers. Each returns 0, or -1 when the whole input failed. */
int ix_html(struct ix_sink *s, struct qn_rd *rd);
int ix_xml(struct ix_sink *s, struct qn_rd *rd, const char *preset); /* NULL, "mediawiki", "rss", "atom" */
int ix_csv(struct ix_sink *s, struct qn_rd *rd, int tsv);
int ix_eml(struct ix_sink *s, struct qn_rd *rd);
int ix_mbox(struct ix_sink *s, struct qn_rd *rd);
int ix_text(struct ix_sink *s, struct qn_rd *rd, const char *fmt); /* "text" or "markdown" */
int ix_jsonl(struct ix_sink *s, struct qn_rd *rd);

/* Reduces MediaWiki markup to plain text (appends to out). */
int ix_wikitext(const char *src, size_t n, struct qn_buf *out);

#endif
