/*
 * pii_score.c - scores lib/pii against a labeled fixture (pii_fixture), and
 * checks that the tools built on it report the same spans.
 *
 *   pii_score DOCS.jsonl LABELS.jsonl
 *   pii_score --redacted CLEANED.jsonl DOCS.jsonl
 *   pii_score --findings FINDINGS.jsonl DOCS.jsonl
 *
 * The first form scans every document's text with qn_pii_scan (default
 * options: public addresses, minimum score 0.5, as quern-clean and
 * quern-audit use them) and compares the findings with the labels: a finding
 * is a true positive when a label has the same type and exactly the same
 * byte span. It prints per-type precision and recall and one "PASS: ..." or
 * "FAIL: ..." line per check: recall and precision >= 0.98 for every type,
 * at least 30 labels of every type, at least 500 PII and 100 secret values.
 *
 * --redacted: CLEANED is quern-clean's output (--steps pii, tags) for DOCS.
 * For every document the text must equal DOCS' text with each library
 * finding replaced by its tag (qn_pii_redact): clean redacts exactly the
 * spans the library finds.
 *
 * --findings: FINDINGS is JSONL of reported spans (quern-audit scan): one
 * object a line with the document id ("id", "doc", "doc_id", "document" or
 * "document_id"), the type ("type" or "rule") and the span ("start"/"end",
 * or "span": [start, end] or {"start", "end"}). The set of (document, type,
 * start, end) must equal the library's findings over DOCS.
 *
 * Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "pii.h"

static int failed;

static void check(int ok, const char *fmt, const char *a, double x)
{
	char name[256];
	snprintf(name, sizeof name, fmt, a, x);
	printf("%s: %s\n", ok ? "PASS" : "FAIL", name);
	failed += !ok;
}

/* ---- documents and labels ---- */

struct span {
	int type;
	size_t start, end;
};

struct doc {
	char *id, *text;
	size_t len;
	struct span *lab;
	size_t nlab, caplab;
};

static struct doc *docs;
static size_t ndocs;

static json_t *read_line(FILE *f, char **line, size_t *cap, const char *path, unsigned lineno)
{
	json_error_t je;
	json_t *o = json_loads(*line, 0, &je);
	(void)f;
	(void)cap;
	if (!json_is_object(o)) {
		fprintf(stderr, "pii_score: %s:%u: not a JSON object: %s\n", path, lineno, je.text);
		exit(1);
	}
	return o;
}

static FILE *open_or_die(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}

static void load_docs(const char *path)
{
	FILE *f = open_or_die(path);
	char *line = NULL;
	size_t cap = 0, capd = 0;
	unsigned lineno = 0;

	while (getline(&line, &cap, f) > 0) {
		json_t *o = read_line(f, &line, &cap, path, ++lineno);
		json_t *id = json_object_get(o, "id"), *t = json_object_get(o, "text");
		if (!json_is_string(id) || !json_is_string(t)) {
			fprintf(stderr, "pii_score: %s:%u: no id or text\n", path, lineno);
			exit(1);
		}
		if (ndocs == capd) {
			capd = capd ? capd * 2 : 1024;
			docs = realloc(docs, capd * sizeof *docs);
			if (!docs)
				abort();
		}
		struct doc *d = &docs[ndocs++];
		memset(d, 0, sizeof *d);
		d->id = strdup(json_string_value(id));
		d->len = json_string_length(t);
		d->text = malloc(d->len + 1);
		if (!d->id || !d->text)
			abort();
		memcpy(d->text, json_string_value(t), d->len + 1);
		json_decref(o);
	}
	free(line);
	fclose(f);
}

static struct doc *find_doc(const char *id)
{
	static size_t last;
	for (size_t k = 0; k < ndocs; k++) {
		size_t i = (last + k) % ndocs;
		if (!strcmp(docs[i].id, id)) {
			last = i;
			return &docs[i];
		}
	}
	return NULL;
}

static const char *str_of(json_t *o, const char *const *keys)
{
	for (; *keys; keys++) {
		json_t *v = json_object_get(o, *keys);
		if (json_is_string(v))
			return json_string_value(v);
	}
	return NULL;
}

/* The span of a label or finding: start/end, or span [s, e] / {start, end}. */
static int span_of(json_t *o, size_t *s, size_t *e)
{
	json_t *sp = json_object_get(o, "span"), *a = json_object_get(o, "start"),
	       *b = json_object_get(o, "end");
	if (json_is_array(sp) && json_array_size(sp) == 2) {
		a = json_array_get(sp, 0);
		b = json_array_get(sp, 1);
	} else if (json_is_object(sp)) {
		a = json_object_get(sp, "start");
		b = json_object_get(sp, "end");
	}
	if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
	    json_integer_value(b) <= json_integer_value(a))
		return -1;
	*s = (size_t)json_integer_value(a);
	*e = (size_t)json_integer_value(b);
	return 0;
}

static const char *const id_keys[] = {"id", "doc", "doc_id", "document", "document_id", NULL};
static const char *const type_keys[] = {"type", "rule", NULL};

/* Reads spans keyed by document id into each document's lab list. */
static void load_spans(const char *path)
{
	FILE *f = open_or_die(path);
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;

	while (getline(&line, &cap, f) > 0) {
		json_t *o = read_line(f, &line, &cap, path, ++lineno);
		const char *id = str_of(o, id_keys), *ty = str_of(o, type_keys);
		int t = ty ? qn_pii_type_parse(ty) : -1;
		size_t s, e;
		struct doc *d = id ? find_doc(id) : NULL;
		if (!d || t < 0 || span_of(o, &s, &e) < 0 || e > d->len) {
			fprintf(stderr, "pii_score: %s:%u: bad or unknown document, type or span\n",
				path, lineno);
			exit(1);
		}
		if (d->nlab == d->caplab) {
			d->caplab = d->caplab ? d->caplab * 2 : 4;
			d->lab = realloc(d->lab, d->caplab * sizeof *d->lab);
			if (!d->lab)
				abort();
		}
		d->lab[d->nlab++] = (struct span){t, s, e};
		json_decref(o);
	}
	free(line);
	fclose(f);
}

static struct qn_pii *detector(void)
{
	struct qn_err e;
	struct qn_pii *p = qn_pii_new(NULL, &e);
	if (!p) {
		fprintf(stderr, "pii_score: %s\n", e.msg);
		exit(1);
	}
	return p;
}

static void scan(const struct qn_pii *p, const struct doc *d, struct qn_pii_hits *h)
{
	struct qn_err e;
	if (qn_pii_scan(p, d->text, d->len, h, &e) < 0) {
		fprintf(stderr, "pii_score: %s: %s\n", d->id, e.msg);
		exit(1);
	}
}

static int same(const struct span *l, const struct qn_pii_hit *x)
{
	return l->type == (int)x->type && l->start == x->start && l->end == x->end;
}

/* ---- the three forms ---- */

static int score(const char *docs_path, const char *labels_path)
{
	struct qn_pii *p = detector();
	struct qn_pii_hits h;
	unsigned expected[QN_PII_NTYPES] = {0}, found[QN_PII_NTYPES] = {0}, tp[QN_PII_NTYPES] = {0};
	unsigned shown = 0, pii = 0, secrets = 0;
	const char *show = getenv("QN_PII_SHOW");
	unsigned show_max = show ? (unsigned)atoi(show) : 20;

	load_docs(docs_path);
	load_spans(labels_path);
	qn_pii_hits_init(&h, 0);
	for (size_t i = 0; i < ndocs; i++) {
		struct doc *d = &docs[i];
		scan(p, d, &h);
		for (size_t k = 0; k < d->nlab; k++) {
			const struct span *l = &d->lab[k];
			int hit = 0;
			expected[l->type]++;
			for (size_t j = 0; j < h.n && !hit; j++)
				hit = same(l, &h.v[j]);
			tp[l->type] += hit;
			if (!hit && shown++ < show_max)
				printf("missed %s '%.*s' in %s\n", qn_pii_type_name(l->type),
				       (int)(l->end - l->start), d->text + l->start, d->id);
		}
		for (size_t j = 0; j < h.n; j++) {
			int hit = 0;
			found[h.v[j].type]++;
			for (size_t k = 0; k < d->nlab && !hit; k++)
				hit = same(&d->lab[k], &h.v[j]);
			if (!hit && shown++ < show_max)
				printf("extra %s '%.*s' (score %.2f) in %s\n",
				       qn_pii_type_name(h.v[j].type),
				       (int)(h.v[j].end - h.v[j].start), d->text + h.v[j].start,
				       h.v[j].score, d->id);
		}
	}
	qn_pii_hits_release(&h);
	qn_pii_free(p);

	printf("%-20s %8s %8s %8s %9s %7s\n", "type", "labels", "found", "correct", "precision",
	       "recall");
	for (int t = 0; t < QN_PII_NTYPES; t++) {
		double prec = found[t] ? (double)tp[t] / found[t] : 1.0;
		double rec = expected[t] ? (double)tp[t] / expected[t] : 0.0;
		printf("%-20s %8u %8u %8u %9.3f %7.3f\n", qn_pii_type_name(t), expected[t],
		       found[t], tp[t], prec, rec);
		if (qn_pii_type_is_secret(t))
			secrets += expected[t];
		else
			pii += expected[t];
	}
	for (int t = 0; t < QN_PII_NTYPES; t++) {
		const char *n = qn_pii_type_name(t);
		double prec = found[t] ? (double)tp[t] / found[t] : 1.0;
		double rec = expected[t] ? (double)tp[t] / expected[t] : 0.0;
		check(expected[t] >= 30, "%s: at least 30 labels", n, 0);
		check(rec >= 0.98, "%s: recall %.3f >= 0.98", n, rec);
		check(prec >= 0.98, "%s: precision %.3f >= 0.98", n, prec);
	}
	check(pii >= 500, "%s%.0f PII values >= 500", "", pii);
	check(secrets >= 100, "%s%.0f secrets >= 100", "", secrets);
	return failed ? 1 : 0;
}

static int redacted(const char *cleaned_path, const char *docs_path)
{
	struct qn_pii *p = detector();
	struct qn_pii_hits h;
	struct qn_buf want;
	struct qn_err e;
	FILE *f = open_or_die(cleaned_path);
	char *line = NULL;
	size_t cap = 0, seen = 0, differ = 0, tags = 0;
	unsigned lineno = 0;

	load_docs(docs_path);
	qn_pii_hits_init(&h, 0);
	qn_buf_init(&want, QN_BUF_UNLIMITED);
	while (getline(&line, &cap, f) > 0) {
		json_t *o = read_line(f, &line, &cap, cleaned_path, ++lineno);
		const char *id = str_of(o, id_keys);
		json_t *t = json_object_get(o, "text");
		struct doc *d = id ? find_doc(id) : NULL;
		if (!d || !json_is_string(t)) {
			fprintf(stderr, "pii_score: %s:%u: unknown document or no text\n",
				cleaned_path, lineno);
			exit(1);
		}
		scan(p, d, &h);
		tags += h.n;
		want.len = 0;
		if (qn_pii_redact(&h, d->text, d->len, QN_PII_TAG, NULL, 0, &want, NULL, &e) < 0) {
			fprintf(stderr, "pii_score: %s: %s\n", d->id, e.msg);
			exit(1);
		}
		if (want.len != json_string_length(t) ||
		    memcmp(want.data, json_string_value(t), want.len)) {
			if (differ++ < 10)
				printf("differs: %s\n  clean:   %s\n  library: %.*s\n", d->id,
				       json_string_value(t), (int)want.len, want.data);
		}
		seen++;
		json_decref(o);
	}
	free(line);
	fclose(f);
	qn_buf_release(&want);
	qn_pii_hits_release(&h);
	qn_pii_free(p);
	check(seen == ndocs, "%severy document comes out of clean (%.0f)", "", (double)seen);
	check(differ == 0, "%sclean's redactions equal the library's findings (%.0f differ)", "",
	      (double)differ);
	printf("%zu documents, %zu spans redacted\n", seen, tags);
	return failed ? 1 : 0;
}

static int findings(const char *findings_path, const char *docs_path)
{
	struct qn_pii *p = detector();
	struct qn_pii_hits h;
	size_t missing = 0, extra = 0, total = 0;

	load_docs(docs_path);
	load_spans(findings_path);
	qn_pii_hits_init(&h, 0);
	for (size_t i = 0; i < ndocs; i++) {
		struct doc *d = &docs[i];
		scan(p, d, &h);
		total += h.n;
		for (size_t j = 0; j < h.n; j++) {
			int hit = 0;
			for (size_t k = 0; k < d->nlab && !hit; k++)
				hit = same(&d->lab[k], &h.v[j]);
			if (!hit && missing++ < 10)
				printf("not reported: %s %s [%zu, %zu)\n", d->id,
				       qn_pii_type_name(h.v[j].type), h.v[j].start, h.v[j].end);
		}
		for (size_t k = 0; k < d->nlab; k++) {
			int hit = 0;
			for (size_t j = 0; j < h.n && !hit; j++)
				hit = same(&d->lab[k], &h.v[j]);
			if (!hit && extra++ < 10)
				printf("reported, not found by the library: %s %s [%zu, %zu)\n",
				       d->id, qn_pii_type_name(d->lab[k].type), d->lab[k].start,
				       d->lab[k].end);
		}
	}
	qn_pii_hits_release(&h);
	qn_pii_free(p);
	check(missing == 0, "%severy library finding is reported (%.0f missing)", "",
	      (double)missing);
	check(extra == 0, "%severy reported span is a library finding (%.0f extra)", "",
	      (double)extra);
	printf("%zu findings compared\n", total);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--redacted"))
		return redacted(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "--findings"))
		return findings(argv[2], argv[3]);
	if (argc == 3 && argv[1][0] != '-')
		return score(argv[1], argv[2]);
	fputs("usage: pii_score DOCS.jsonl LABELS.jsonl\n"
	      "       pii_score --redacted CLEANED.jsonl DOCS.jsonl\n"
	      "       pii_score --findings FINDINGS.jsonl DOCS.jsonl\n",
	      stderr);
	return 2;
}
