/*
 * csv.c - CSV and TSV rows to documents, through libcsv.
 *
 * Lines are fed to libcsv one at a time so every row knows the line it
 * started on. The lines of a row still open are kept (bounded by
 * --max-bytes): when the row turns out bad - an unbalanced quote that runs
 * to the end of the file, malformed quoting, a row too long - it is
 * reported with its first line and skipped, and the lines after that first
 * one are parsed again as fresh rows, so one stray quote costs one row, not
 * the rest of the file.
 */
#include "ingest.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "charset.h"
#include "err.h"
#include "rd.h"
#include "utf8.h"

#define MAX_COLS 4096

struct csvst {
	struct ix_sink *s;
	struct qn_buf fields; /* field bytes, each NUL-terminated */
	size_t off[MAX_COLS];
	size_t len[MAX_COLS];
	int nf;
	int too_many;
	char **head;          /* column names */
	int ncols;
	int text_col, id_col; /* -1: none */
	int *meta_cols;
	int nmeta;
	uint64_t line;        /* line being fed */
	uint64_t row_line;    /* first line of the current row */
	uint64_t rows;        /* data rows seen */
	int fatal;
	int legacy;           /* this row had windows-1252 fields */
};

static void on_field(void *p, size_t n, void *data)
{
	struct csvst *c = data;
	size_t at = c->fields.len;
	int rc;

	if (c->nf >= MAX_COLS) {
		c->too_many = 1;
		return;
	}
	/* Spreadsheet exports are often windows-1252: a field that is not
	 * UTF-8 is read that way, as a browser would. */
	if (p && !qn_utf8_valid(p, n)) {
		struct qn_err e;
		rc = qn_to_utf8("WINDOWS-1252", p, n, &c->fields, &e) < 0 ? -1 : 0;
		c->legacy = 1;
	} else {
		rc = qn_buf_add(&c->fields, p ? p : "", p ? n : 0);
	}
	if (rc < 0 || qn_buf_addc(&c->fields, 0) < 0)
		c->too_many = 1;
	c->off[c->nf] = at;
	c->len[c->nf] = c->fields.len - at - 1;
	c->nf++;
}

static const char *field(struct csvst *c, int i) { return c->fields.data + c->off[i]; }

static int find_col(struct csvst *c, const char *name)
{
	for (int i = 0; i < c->ncols; i++)
		if (!strcmp(c->head[i], name))
			return i;
	return -1;
}

static void take_header(struct csvst *c)
{
	const struct ix_opts *o = c->s->opt;
	static const char *const text_names[] = {"text", "body", "content", "message",
						 "description", "comment", "review"};

	c->ncols = c->nf;
	c->head = calloc((size_t)c->nf, sizeof *c->head);
	c->meta_cols = calloc((size_t)c->nf + 1, sizeof *c->meta_cols);
	if (!c->head || !c->meta_cols) {
		c->fatal = 1;
		return;
	}
	for (int i = 0; i < c->nf; i++) {
		if (o->no_header) {
			char b[24];
			snprintf(b, sizeof b, "col%d", i + 1);
			c->head[i] = strdup(b);
		} else {
			c->head[i] = strdup(field(c, i));
		}
		if (!c->head[i]) {
			c->fatal = 1;
			return;
		}
	}
	c->text_col = c->id_col = -1;
	if (o->text_column) {
		c->text_col = find_col(c, o->text_column);
		if (c->text_col < 0) {
			ix_fail(c->s, "no column '%s' in the header", o->text_column);
			c->fatal = 1;
			return;
		}
	} else {
		for (size_t k = 0; k < sizeof text_names / sizeof *text_names && c->text_col < 0; k++)
			for (int i = 0; i < c->ncols; i++)
				if (!strcasecmp(c->head[i], text_names[k])) {
					c->text_col = i;
					break;
				}
	}
	if (o->id_column) {
		c->id_col = find_col(c, o->id_column);
		if (c->id_col < 0) {
			ix_fail(c->s, "no column '%s' in the header", o->id_column);
			c->fatal = 1;
			return;
		}
	}
	if (o->meta_columns) {
		for (int k = 0; k < o->n_meta_columns; k++) {
			int i = find_col(c, o->meta_columns[k]);
			if (i < 0) {
				ix_fail(c->s, "no column '%s' in the header", o->meta_columns[k]);
				c->fatal = 1;
				return;
			}
			c->meta_cols[c->nmeta++] = i;
		}
	} else {
		for (int i = 0; i < c->ncols; i++)
			if (i != c->text_col && i != c->id_col)
				c->meta_cols[c->nmeta++] = i;
	}
}

static void emit_row(struct csvst *c)
{
	struct qn_buf text;
	char key[32];
	json_t *meta, *cols;

	c->rows++;
	if (c->nf != c->ncols) {
		ix_fail(c->s, "line %llu: expected %d fields, got %d; row skipped",
			(unsigned long long)c->row_line, c->ncols, c->nf);
		return;
	}
	qn_buf_init(&text, QN_BUF_UNLIMITED);
	if (c->text_col >= 0) {
		qn_buf_add(&text, field(c, c->text_col), c->len[c->text_col]);
	} else {
		for (int i = 0; i < c->nf; i++) {
			if (i == c->id_col || !c->len[i])
				continue;
			qn_buf_printf(&text, "%s%s: ", text.len ? "\n" : "", c->head[i]);
			qn_buf_add(&text, field(c, i), c->len[i]);
		}
	}
	meta = json_object();
	cols = json_object();
	json_object_set_new(meta, "row", json_integer((json_int_t)c->rows));
	json_object_set_new(meta, "line", json_integer((json_int_t)c->row_line));
	for (int k = 0; k < c->nmeta; k++) {
		int i = c->meta_cols[k];
		json_t *v = json_stringn(field(c, i), c->len[i]);
		if (!v) /* invalid UTF-8 in a metadata cell: keep it repaired */
			v = json_string("\xEF\xBF\xBD");
		json_object_set_new(cols, c->head[i], v);
	}
	json_object_set_new(meta, "columns", cols);
	if (c->text_col >= 0)
		json_object_set_new(meta, "text_column", json_string(c->head[c->text_col]));
	if (c->legacy)
		json_object_set_new(meta, "charset", json_string("WINDOWS-1252"));
	snprintf(key, sizeof key, "row:%llu", (unsigned long long)c->rows);
	const char *id = c->id_col >= 0 && c->len[c->id_col] ? field(c, c->id_col) : NULL;
	if (!text.len) {
		ix_fail(c->s, "line %llu: empty text; row skipped", (unsigned long long)c->row_line);
		json_decref(meta);
	} else if (ix_emit(c->s, key, id, text.data, text.len, meta, NULL) < 0) {
		c->fatal = 1;
	}
	qn_buf_release(&text);
}

static void on_row(int term, void *data)
{
	struct csvst *c = data;

	if (c->too_many) {
		ix_fail(c->s, "line %llu: more than %d fields or too large; row skipped",
			(unsigned long long)c->row_line, MAX_COLS);
	} else if (!c->head) {
		take_header(c);
		if (c->s->opt->no_header && !c->fatal)
			emit_row(c);
	} else if (!c->fatal) {
		emit_row(c);
	}
	c->nf = 0;
	c->too_many = 0;
	c->legacy = 0;
	qn_buf_reset(&c->fields);
	(void)term;
}

static void parser_reset(struct csv_parser *p, const struct ix_opts *o, int tsv)
{
	csv_free(p);
	csv_init(p, CSV_STRICT | CSV_STRICT_FINI);
	csv_set_delim(p, (unsigned char)(o->delimiter ? o->delimiter : tsv ? '\t' : ','));
	csv_set_quote(p, (unsigned char)(o->quote ? o->quote : '"'));
}

static int parse(struct ix_sink *s, struct qn_rd *rd, int tsv, const char *charset);

/*
 * A UTF-16 or UTF-32 export (Excel's "Unicode text") is transcoded to UTF-8
 * into an anonymous file first, up to --max-bytes; the parser then streams
 * that. Returns the new stream (owning *fd), rd itself when no BOM says
 * so, or NULL after reporting a failure.
 */
static struct qn_rd *transcode(struct ix_sink *s, struct qn_rd *rd, int *fd)
{
	const char *peek;
	size_t n, bom;
	struct qn_err e;
	struct qn_buf raw, utf8;
	struct qn_rd *out = NULL;

	*fd = -1;
	if (qn_rd_peek(rd, &peek, &n, &e) < 0) {
		ix_fail(s, "%s", e.msg);
		return NULL;
	}
	const char *cs = qn_bom_sniff(peek, n, &bom);
	if (!cs || !strcmp(cs, "UTF-8"))
		return rd;
	qn_buf_init(&raw, QN_BUF_UNLIMITED);
	qn_buf_init(&utf8, QN_BUF_UNLIMITED);
	int rc = qn_rd_slurp(rd, &raw, s->opt->max_bytes, &e);
	if (rc == QN_RD_TOOLONG)
		ix_fail(s, "%s input larger than --max-bytes (%zu bytes)", cs, s->opt->max_bytes);
	else if (rc < 0)
		ix_fail(s, "%s", e.msg);
	else if (ix_decode(s, raw.data, raw.len, NULL, &utf8) < 0)
		ix_fail(s, "cannot decode %s", cs);
	else if ((*fd = memfd_create("quern-csv", MFD_CLOEXEC)) < 0 ||
		 write(*fd, utf8.data, utf8.len) != (ssize_t)utf8.len || lseek(*fd, 0, SEEK_SET) < 0)
		ix_fail(s, "cannot buffer the transcoded input");
	else
		out = qn_rd_fdopen(*fd, s->path, 0, &e);
	if (!out && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	qn_buf_release(&raw);
	qn_buf_release(&utf8);
	return out;
}

int ix_csv(struct ix_sink *s, struct qn_rd *rd, int tsv)
{
	int tfd;
	char cs[64];
	struct qn_rd *orig = rd;

	rd = transcode(s, rd, &tfd);
	if (!rd)
		return -1;
	snprintf(cs, sizeof cs, "%s", rd == orig ? "UTF-8" : s->charset);
	int rc = parse(s, rd, tsv, cs);
	if (rd != orig) {
		qn_rd_close(rd);
		close(tfd);
	}
	return rc;
}

static int parse(struct ix_sink *s, struct qn_rd *rd, int tsv, const char *charset)
{
	struct csvst c = {.s = s, .text_col = -1, .id_col = -1};
	struct csv_parser p;
	struct qn_buf line, pend, replay;
	size_t replay_pos = 0;
	struct qn_err e;
	int rc = 0, eof = 0;

	s->format = tsv ? "tsv" : "csv";
	snprintf(s->charset, sizeof s->charset, "%s", charset);
	qn_buf_init(&c.fields, s->opt->max_bytes);
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	qn_buf_init(&pend, QN_BUF_UNLIMITED);
	qn_buf_init(&replay, QN_BUF_UNLIMITED);
	memset(&p, 0, sizeof p);
	csv_init(&p, 0);
	parser_reset(&p, s->opt, tsv);

	while (!c.fatal) {
		int have = 0, at_end = 0;

		/* The next line: from the replay queue first, then the input. */
		if (replay_pos < replay.len) {
			char *nl = memchr(replay.data + replay_pos, '\n', replay.len - replay_pos);
			size_t n = (size_t)(nl - (replay.data + replay_pos));
			qn_buf_reset(&line);
			qn_buf_add(&line, replay.data + replay_pos, n);
			replay_pos += n + 1;
			if (replay_pos >= replay.len) {
				qn_buf_reset(&replay);
				replay_pos = 0;
			}
			have = 1;
		} else if (!eof) {
			int r = qn_rd_line(rd, &line, s->opt->max_bytes, &e);
			if (r == -1) {
				ix_fail(s, "line %llu: %s", (unsigned long long)c.line + 1, e.msg);
				rc = -1;
				break;
			}
			if (r == QN_RD_TOOLONG) {
				c.line++;
				ix_fail(s, "line %llu: longer than --max-bytes (%zu bytes); skipped",
					(unsigned long long)c.line, s->opt->max_bytes);
				parser_reset(&p, s->opt, tsv);
				c.nf = 0;
				qn_buf_reset(&c.fields);
				qn_buf_reset(&pend);
				continue;
			}
			if (r == 0)
				eof = 1;
			else
				have = 1;
		}
		if (!have) {
			/* An open quoted field at the end: the row is bad. */
			if (csv_fini(&p, on_field, on_row, &c) != 0) {
				at_end = 1;
				goto bad_row;
			}
			break;
		}
		c.line++;
		if (c.line == 1 && line.len >= 3 && !memcmp(line.data, "\xEF\xBB\xBF", 3))
			memmove(line.data, line.data + 3, (line.len -= 3) + 1);
		if (p.pstate == 0 && c.nf == 0) {
			c.row_line = c.line;
			qn_buf_reset(&pend);
		}
		if (pend.len + line.len + 1 > s->opt->max_bytes) {
			ix_fail(s, "line %llu: row longer than --max-bytes (unbalanced quote?); "
				   "row skipped",
				(unsigned long long)c.row_line);
			qn_buf_add(&pend, line.data, line.len);
			qn_buf_addc(&pend, '\n');
			goto recover;
		}
		qn_buf_add(&pend, line.data, line.len);
		qn_buf_addc(&pend, '\n');
		qn_buf_addc(&line, '\n');
		if (csv_parse(&p, line.data, line.len, on_field, on_row, &c) == line.len)
			continue;
bad_row:
		if (at_end)
			ix_fail(s, "line %llu: unbalanced quote runs to the end of the input; "
				   "row skipped",
				(unsigned long long)c.row_line);
		else
			ix_fail(s, "line %llu: malformed quoting; row skipped",
				(unsigned long long)c.row_line);
recover:
		/* Parse again everything after the bad row's first line. */
		{
			char *nl = pend.len ? memchr(pend.data, '\n', pend.len) : NULL;
			size_t first = nl ? (size_t)(nl - pend.data) + 1 : pend.len;
			struct qn_buf rest;
			qn_buf_init(&rest, QN_BUF_UNLIMITED);
			qn_buf_add(&rest, pend.data + first, pend.len - first);
			if (replay.len > replay_pos)
				qn_buf_add(&rest, replay.data + replay_pos, replay.len - replay_pos);
			qn_buf_release(&replay);
			replay = rest;
			replay_pos = 0;
			c.line = c.row_line;
		}
		qn_buf_reset(&pend);
		parser_reset(&p, s->opt, tsv);
		c.nf = 0;
		c.too_many = 0;
		qn_buf_reset(&c.fields);
	}
	if (!c.head && !c.fatal && rc == 0)
		ix_fail(s, c.line ? "no rows" : "empty file");
	csv_free(&p);
	for (int i = 0; i < c.ncols; i++)
		free(c.head[i]);
	free(c.head);
	free(c.meta_cols);
	qn_buf_release(&c.fields);
	qn_buf_release(&line);
	qn_buf_release(&pend);
	qn_buf_release(&replay);
	return c.fatal || rc ? -1 : 0;
}
