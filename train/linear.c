/*
 * linear.c - see linear.h. The model is lib/linclass; this file reads
 * {"text","label"} JSON Lines into flat feature arrays (hashed once, so the
 * epochs only do the arithmetic), splits off validation, trains, and writes
 * the model directory (config.json, model.safetensors, eval.json, the
 * metrics JSON Lines, run.manifest.json); and classify's output.
 */
#include "linear.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "clsmetrics.h"
#include "doc.h"
#include "docjson.h"
#include "err.h"
#include "hash.h"
#include "linclass.h"
#include "manifest.h"
#include "pool.h"
#include "rd.h"
#include "wr.h"

#define MAX_LINE ((size_t)256 << 20)

int linear_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--arch=linear"))
			return 1;
		if (!strcmp(argv[i], "--arch") && i + 1 < argc && !strcmp(argv[i + 1], "linear"))
			return 1;
	}
	return 0;
}

int linear_is_model(const char *dir)
{
	return qn_lc_is_model_dir(dir);
}

/* ---- reading lines ----------------------------------------------------------- */

struct reader {
	const char *text_field, *label_field;
	uint64_t bad_lines, bad_inputs;
	struct qn_buf text, rest;
	struct qn_manifest *man; /* inputs recorded here when set */
};

/* Called per non-blank line; returns -1 to stop everything. */
typedef int (*line_fn)(struct reader *r, const char *file, uint64_t lineno, char *line, size_t len,
		       void *ctx);

static void bad_line(struct reader *r, const char *file, uint64_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void bad_line(struct reader *r, const char *file, uint64_t lineno, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	qn_error("%s:%llu: %s; skipped", file, (unsigned long long)lineno, msg);
	r->bad_lines++;
}

static int read_inputs(struct reader *r, char **files, int nfiles, line_fn fn, void *ctx)
{
	static char *stdin_only[] = {"-"};
	struct qn_buf line;
	struct qn_err e;
	int rc = 0;
	if (nfiles == 0) {
		files = stdin_only;
		nfiles = 1;
	}
	qn_buf_init(&line, MAX_LINE);
	for (int f = 0; f < nfiles && !rc; f++) {
		const char *name = strcmp(files[f], "-") ? files[f] : "stdin";
		struct qn_rd *rd = qn_rd_open(files[f], r->man ? QN_RD_SHA256 : 0, &e);
		if (!rd) {
			qn_error("%s", e.msg);
			r->bad_inputs++;
			continue;
		}
		uint64_t lineno = 0;
		for (;;) {
			int got = qn_rd_line(rd, &line, MAX_LINE, &e);
			if (got == 0)
				break;
			lineno++;
			if (got == QN_RD_TOOLONG) {
				bad_line(r, name, lineno, "line longer than %zu bytes", MAX_LINE);
				continue;
			}
			if (got < 0) {
				qn_error("%s", e.msg);
				r->bad_inputs++;
				break;
			}
			size_t i = 0;
			while (i < line.len && strchr(" \t\r\n", line.data[i]))
				i++;
			if (i == line.len)
				continue;
			if (fn(r, name, lineno, line.data, line.len, ctx)) {
				rc = -1;
				break;
			}
		}
		char sha[65];
		if (r->man && !rc && qn_rd_sha256(rd, sha, &e) == 0)
			qn_manifest_input(r->man, strcmp(files[f], "-") ? files[f] : "-",
					  qn_rd_raw_bytes(rd), sha);
		qn_rd_close(rd);
	}
	qn_buf_release(&line);
	if (!rc && r->bad_inputs == (uint64_t)nfiles) {
		qn_error("no input could be read");
		rc = -1;
	}
	return rc;
}

/*
 * Parses line into an object; *text / *tlen get the text field. NULL (the
 * line reported) when it is not an object with a string text field.
 */
static json_t *parse_doc(struct reader *r, const char *file, uint64_t lineno, const char *line,
			 size_t len, const char **text, size_t *tlen)
{
	json_error_t je;
	json_t *o = NULL;
	if (!strcmp(r->text_field, "text") &&
	    (o = qn_docjson_parse(line, len, &r->text, &r->rest)) != NULL) {
		*text = r->text.data ? r->text.data : "";
		*tlen = r->text.len;
		return o;
	}
	o = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		bad_line(r, file, lineno, "not JSON: column %d: %s", je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		bad_line(r, file, lineno, "not a JSON object");
		json_decref(o);
		return NULL;
	}
	json_t *t = json_object_get(o, r->text_field);
	if (!json_is_string(t)) {
		bad_line(r, file, lineno, "no \"%s\" string", r->text_field);
		json_decref(o);
		return NULL;
	}
	*text = json_string_value(t);
	*tlen = json_string_length(t);
	return o;
}

/*
 * The label of o into buf (integers in decimal): 1, 0 when absent (or
 * null), -1 when it is neither a string nor an integer or is empty/too long.
 */
static int get_label(json_t *o, const char *field, char *buf, size_t size)
{
	json_t *l = json_object_get(o, field);
	if (!l || json_is_null(l))
		return 0;
	if (json_is_integer(l)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(l));
		return 1;
	}
	if (!json_is_string(l) || json_string_length(l) == 0 || json_string_length(l) >= size ||
	    strlen(json_string_value(l)) != json_string_length(l))
		return -1;
	memcpy(buf, json_string_value(l), json_string_length(l) + 1);
	return 1;
}

/* ---- fit ----------------------------------------------------------------------- */

/* Label names -> ids in the order first seen (open addressing on xxh3). */
struct labels {
	char **name;
	size_t n, cap;
	uint32_t *slot; /* ids + 1, 0 empty */
	size_t smask;
	uint64_t *count_train, *count_val;
};

static long labels_intern(struct labels *L, const char *s)
{
	size_t len = strlen(s);
	if (!L->slot) {
		L->smask = 255;
		if (!(L->slot = calloc(L->smask + 1, sizeof *L->slot)))
			return -1;
	}
	size_t i = qn_xxh3_64(s, len, 0) & L->smask;
	for (; L->slot[i]; i = (i + 1) & L->smask)
		if (!strcmp(L->name[L->slot[i] - 1], s))
			return (long)L->slot[i] - 1;
	if (L->n >= QN_LC_MAX_LABELS)
		return -2;
	if (L->n == L->cap) {
		size_t cap = L->cap ? L->cap * 2 : 64;
		char **p = realloc(L->name, cap * sizeof *p);
		uint64_t *a = p ? realloc(L->count_train, cap * sizeof *a) : NULL;
		if (p)
			L->name = p;
		if (a)
			L->count_train = a;
		uint64_t *b = a ? realloc(L->count_val, cap * sizeof *b) : NULL;
		if (!b)
			return -1;
		L->count_val = b;
		L->cap = cap;
	}
	if (!(L->name[L->n] = strdup(s)))
		return -1;
	L->count_train[L->n] = L->count_val[L->n] = 0;
	L->slot[i] = (uint32_t)++L->n;
	if (2 * L->n > L->smask) {
		size_t cap = (L->smask + 1) * 2;
		uint32_t *t = calloc(cap, sizeof *t);
		if (!t)
			return -1;
		for (size_t id = 0; id < L->n; id++) {
			size_t j = qn_xxh3_64(L->name[id], strlen(L->name[id]), 0) & (cap - 1);
			while (t[j])
				j = (j + 1) & (cap - 1);
			t[j] = (uint32_t)id + 1;
		}
		free(L->slot);
		L->slot = t;
		L->smask = cap - 1;
	}
	return (long)L->n - 1;
}

static void labels_release(struct labels *L)
{
	for (size_t i = 0; i < L->n; i++)
		free(L->name[i]);
	free(L->name);
	free(L->slot);
	free(L->count_train);
	free(L->count_val);
}

/* A growable array of T with a count. */
#define GROW(arr, n, cap, need)                                                                    \
	((n) + (need) <= (cap) ? 0 : grow((void **)&(arr), &(cap), (n) + (need), sizeof *(arr)))

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 1024;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

struct set {
	uint32_t *feat;
	uint64_t *off;
	uint32_t *label;
	uint32_t *words;
	size_t nfeat, featcap, n, cap, offcap;
	uint64_t total_words;
};

static int set_add(struct set *s, const uint32_t *ids, size_t n, uint32_t label, uint32_t words)
{
	if (GROW(s->feat, s->nfeat, s->featcap, n) || GROW(s->label, s->n, s->cap, 1) ||
	    GROW(s->off, s->n + 1, s->offcap, 1))
		return -1;
	/* label and words share a capacity */
	size_t wc = s->cap;
	uint32_t *w = realloc(s->words, wc * sizeof *w);
	if (!w)
		return -1;
	s->words = w;
	if (s->n == 0)
		s->off[0] = 0;
	memcpy(s->feat + s->nfeat, ids, n * sizeof *ids);
	s->nfeat += n;
	s->label[s->n] = label;
	s->words[s->n] = words;
	s->off[++s->n] = s->nfeat;
	s->total_words += words;
	return 0;
}

static void set_release(struct set *s)
{
	free(s->feat);
	free(s->off);
	free(s->label);
	free(s->words);
}

static struct {
	const char *output, *val, *metrics;
	double val_fraction, lr;
	long epochs, threads;
	uint64_t seed;
	struct qn_lc_params p;
} fo;

struct fit {
	struct qn_lc_model *m; /* rows grow as training examples are read */
	struct labels L;
	struct set train, val;
	struct qn_lc_feats f;
	int into_val; /* 1: everything goes to val (the --val file) */
	struct qn_buf metrics;
	char labelbuf[QN_LC_MAX_LABEL_BYTES + 1];
	char idbuf[64];
	uint64_t unlabeled;
};

/* The deterministic split: a hash of "id" (or the text) against the fraction. */
static int goes_to_val(json_t *o, const char *text, size_t tlen, char *idbuf, size_t size)
{
	if (fo.val_fraction <= 0)
		return 0;
	json_t *id = json_object_get(o, "id");
	uint64_t h;
	if (json_is_string(id))
		h = qn_xxh3_64(json_string_value(id), json_string_length(id), 0x71756572);
	else if (json_is_integer(id)) {
		int n = snprintf(idbuf, size, "%lld", (long long)json_integer_value(id));
		h = qn_xxh3_64(idbuf, (size_t)n, 0x71756572);
	} else
		h = qn_xxh3_64(text, tlen, 0x71756572);
	return (double)(h >> 11) * 0x1p-53 < fo.val_fraction;
}

static int fit_line(struct reader *r, const char *file, uint64_t lineno, char *line, size_t len,
		    void *ctx)
{
	struct fit *F = ctx;
	const char *text;
	size_t tlen;
	json_t *o = parse_doc(r, file, lineno, line, len, &text, &tlen);
	if (!o)
		return 0;
	int got = get_label(o, r->label_field, F->labelbuf, sizeof F->labelbuf);
	if (got <= 0) {
		if (got == 0)
			bad_line(r, file, lineno, "no \"%s\" (a string or an integer)",
				 r->label_field);
		else
			bad_line(r, file, lineno,
				 "\"%s\" must be a string (1 to %d bytes, no NUL) or an integer",
				 r->label_field, QN_LC_MAX_LABEL_BYTES);
		json_decref(o);
		return 0;
	}
	int val = F->into_val || (!fo.val && goes_to_val(o, text, tlen, F->idbuf, sizeof F->idbuf));
	long id = labels_intern(&F->L, F->labelbuf);
	long words = id < 0 ? -1 : qn_lc_features(&fo.p, text, tlen, &F->f);
	json_decref(o);
	if (id == -2) {
		qn_error("%s:%llu: more than %d labels", file, (unsigned long long)lineno,
			 QN_LC_MAX_LABELS);
		return -1;
	}
	if (id < 0 || words < 0 || (!val && qn_lc_model_map(F->m, F->f.id, F->f.n, 1)) ||
	    set_add(val ? &F->val : &F->train, F->f.id, F->f.n, (uint32_t)id,
		    words > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)words)) {
		qn_error("%s:%llu: out of memory", file, (unsigned long long)lineno);
		return -1;
	}
	(val ? F->L.count_val : F->L.count_train)[id]++;
	return 0;
}

/* Label order: numeric when every label is an integer, else bytewise. */
static const struct labels *sort_labels_L;
static int all_int_labels;

static int label_cmp(const void *a, const void *b)
{
	const char *x = sort_labels_L->name[*(const uint32_t *)a],
		   *y = sort_labels_L->name[*(const uint32_t *)b];
	if (all_int_labels) {
		long long u = strtoll(x, NULL, 10), v = strtoll(y, NULL, 10);
		return u < v ? -1 : u > v;
	}
	return strcmp(x, y);
}

static int is_int_label(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", v);
	return !errno && !*end && !strcmp(buf, s);
}

/* Validation metrics of m over F->val (rows already mapped). */
static int evaluate(const struct qn_lc_model *m, const struct set *v, struct qn_cls_metrics *cm)
{
	float *hidden = malloc((size_t)m->p.dim * sizeof *hidden);
	float *probs = malloc(m->k * sizeof *probs);
	if (!hidden || !probs || qn_cls_metrics_init(cm, m->k)) {
		free(hidden);
		free(probs);
		return -1;
	}
	for (size_t i = 0; i < v->n; i++) {
		size_t a = v->off[i], b = v->off[i + 1];
		size_t pred = qn_lc_forward(m, v->feat + a, b - a, hidden, probs);
		float p = probs[v->label[i]];
		qn_cls_metrics_add(cm, v->label[i], pred, -log(p > 1e-30f ? (double)p : 1e-30));
	}
	free(hidden);
	free(probs);
	return 0;
}

static int on_epoch(void *ctx, const struct qn_lc_epoch *ep)
{
	struct fit *F = ctx;
	struct qn_cls_metrics cm = {0};
	json_t *j = json_pack("{s:i,s:f,s:f,s:I,s:f,s:f}", "epoch", ep->epoch, "loss", ep->loss,
			      "lr", ep->lr, "words", (json_int_t)ep->words, "seconds", ep->seconds,
			      "words_per_sec_thread", ep->words_per_sec_thread);
	if (!j)
		return 1;
	if (F->val.n) {
		if (evaluate(F->m, &F->val, &cm)) {
			json_decref(j);
			return 1;
		}
		json_object_set_new(j, "val_loss", json_real(cm.loss / (double)cm.n));
		json_object_set_new(j, "val_accuracy", json_real(qn_cls_accuracy(&cm)));
		json_object_set_new(j, "val_macro_f1", json_real(qn_cls_macro_f1(&cm)));
		qn_info("epoch %d: loss %.4f, %.0f words/s/thread, validation accuracy %.4f, "
			"macro-F1 %.4f",
			ep->epoch, ep->loss, ep->words_per_sec_thread, qn_cls_accuracy(&cm),
			qn_cls_macro_f1(&cm));
		qn_cls_metrics_release(&cm);
	} else {
		qn_info("epoch %d: loss %.4f, %.0f words/s/thread", ep->epoch, ep->loss,
			ep->words_per_sec_thread);
	}
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	int rc = !s || qn_buf_adds(&F->metrics, s) || qn_buf_addc(&F->metrics, '\n');
	free(s);
	return rc;
}

static const char fit_usage[] =
    "usage: quern-train fit --arch linear --data FILE -o DIR [options] [file ...]\n"
    "try 'quern-train --help'\n";

enum {
	F_ARCH = 256,
	F_DATA,
	F_VAL,
	F_VAL_FRACTION,
	F_DIM,
	F_EPOCHS,
	F_LR,
	F_WORD_NGRAMS,
	F_MINN,
	F_MAXN,
	F_BUCKETS,
	F_SEED,
	F_METRICS,
	F_NO_LOWERCASE,
	F_TEXT_FIELD,
	F_LABEL_FIELD,
	F_TOP_K,
};

static const struct option fit_longopts[] = {
    {"arch", required_argument, NULL, F_ARCH},
    {"data", required_argument, NULL, F_DATA},
    {"val", required_argument, NULL, F_VAL},
    {"val-fraction", required_argument, NULL, F_VAL_FRACTION},
    {"dim", required_argument, NULL, F_DIM},
    {"epochs", required_argument, NULL, F_EPOCHS},
    {"lr", required_argument, NULL, F_LR},
    {"word-ngrams", required_argument, NULL, F_WORD_NGRAMS},
    {"minn", required_argument, NULL, F_MINN},
    {"maxn", required_argument, NULL, F_MAXN},
    {"buckets", required_argument, NULL, F_BUCKETS},
    {"seed", required_argument, NULL, F_SEED},
    {"metrics", required_argument, NULL, F_METRICS},
    {"no-lowercase", no_argument, NULL, F_NO_LOWERCASE},
    {"text-field", required_argument, NULL, F_TEXT_FIELD},
    {"label-field", required_argument, NULL, F_LABEL_FIELD},
    {"output", required_argument, NULL, 'o'},
    {"threads", required_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int num(const char *what, double lo, double hi, double *out)
{
	return qn_parse_number(what, optarg, lo, hi, out);
}

/* A whole-number option: 3.5 is an error, not 3. */
static int whole(const char *what, long lo, long hi, double *out)
{
	long n;
	if (qn_parse_long(what, optarg, lo, hi, &n))
		return -1;
	*out = (double)n;
	return 0;
}

/* The option name for getopt's last error. */
static const char *opt_name(char **argv, const struct option *lo)
{
	static char buf[64];
	if (optopt >= 256) {
		for (const struct option *o = lo; o->name; o++)
			if (o->val == optopt) {
				snprintf(buf, sizeof buf, "--%s", o->name);
				return buf;
			}
	}
	if (optopt) {
		snprintf(buf, sizeof buf, "-%c", optopt);
		return buf;
	}
	return argv[optind - 1];
}

/* DIR/name for a manifest entry, when the file exists. */
static int manifest_out(struct qn_manifest *man, const char *path)
{
	struct qn_err e;
	char sha[65];
	uint64_t size;
	if (access(path, F_OK))
		return 0;
	if (qn_sha256_file(path, sha, &size, &e)) {
		qn_error("%s", e.msg);
		return -1;
	}
	return qn_manifest_output(man, path, size, sha);
}

/* argv as the user typed it: the command word put back. */
static struct qn_manifest *new_manifest(int argc, char **argv, const char *cmd)
{
	char **full = malloc(((size_t)argc + 2) * sizeof *full);
	if (!full)
		return NULL;
	full[0] = argv[0];
	full[1] = (char *)cmd;
	for (int i = 1; i <= argc; i++)
		full[i + 1] = argv[i];
	struct qn_manifest *m = qn_manifest_new("quern-train", QN_VERSION, argc + 1, full);
	free(full);
	return m;
}

int linear_fit_main(int argc, char **argv)
{
	struct reader r = {.text_field = "text", .label_field = "label"};
	struct fit F;
	struct qn_err e;
	double v;
	int c, rc = QN_EXIT_FAIL;
	char **data = calloc((size_t)argc + 1, sizeof *data);
	int ndata = 0;
	struct qn_manifest *man = NULL;
	char path[4096];

	memset(&F, 0, sizeof F);
	memset(&fo, 0, sizeof fo);
	qn_lc_params_default(&fo.p);
	fo.val_fraction = 0.1;
	fo.lr = 0.5;
	fo.epochs = 5;
	fo.threads = 1;
	fo.seed = 1337;
	if (!data)
		return QN_EXIT_FAIL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:j:qvhV", fit_longopts, NULL)) != -1) {
		switch (c) {
		case F_ARCH:
			if (strcmp(optarg, "linear")) {
				free(data);
				return qn_usage_error("--arch: expected linear, not '%s'", optarg);
			}
			break;
		case F_DATA:
			data[ndata++] = optarg;
			break;
		case F_VAL:
			fo.val = optarg;
			break;
		case F_VAL_FRACTION:
			if (num("--val-fraction", 0, 0.9, &fo.val_fraction))
				goto usage;
			break;
		case F_DIM:
			if (whole("--dim", 1, QN_LC_MAX_DIM, &v))
				goto usage;
			fo.p.dim = (int)v;
			break;
		case F_EPOCHS:
			if (whole("--epochs", 1, 10000, &v))
				goto usage;
			fo.epochs = (long)v;
			break;
		case F_LR:
			if (num("--lr", 1e-6, 100, &fo.lr))
				goto usage;
			break;
		case F_WORD_NGRAMS:
			if (whole("--word-ngrams", 1, QN_LC_MAX_WORD_NGRAMS, &v))
				goto usage;
			fo.p.word_ngrams = (int)v;
			break;
		case F_MINN:
			if (whole("--minn", 0, QN_LC_MAX_CHAR_NGRAM, &v))
				goto usage;
			fo.p.minn = (int)v;
			break;
		case F_MAXN:
			if (whole("--maxn", 0, QN_LC_MAX_CHAR_NGRAM, &v))
				goto usage;
			fo.p.maxn = (int)v;
			break;
		case F_BUCKETS:
			if (whole("--buckets", 1, QN_LC_MAX_BUCKETS, &v))
				goto usage;
			fo.p.buckets = (uint32_t)v;
			break;
		case F_SEED:
			if (num("--seed", 0, 9007199254740992.0, &v))
				goto usage;
			fo.seed = (uint64_t)v;
			break;
		case F_METRICS:
			fo.metrics = optarg;
			break;
		case F_NO_LOWERCASE:
			fo.p.lowercase = 0;
			break;
		case F_TEXT_FIELD:
			r.text_field = optarg;
			break;
		case F_LABEL_FIELD:
			r.label_field = optarg;
			break;
		case 'o':
			fo.output = optarg;
			break;
		case 'j':
			if (whole("--threads", 0, 4096, &v))
				goto usage;
			fo.threads = (long)v;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity++;
			break;
		case 'h':
			free(data);
			fputs(fit_usage, stdout);
			return qn_close_stdout(QN_EXIT_OK);
		case 'V':
			free(data);
			return qn_close_stdout(qn_print_version());
		case ':':
			free(data);
			return qn_usage_error("option '%s' needs a value",
					      opt_name(argv, fit_longopts));
		default:
			free(data);
			return qn_usage_error("unknown option '%s' for fit --arch linear",
					      opt_name(argv, fit_longopts));
		}
	}
	for (int i = optind; i < argc; i++)
		data[ndata++] = argv[i];
	if (!fo.output) {
		free(data);
		return qn_usage_error("fit --arch linear needs -o DIR");
	}
	if (ndata == 0) {
		free(data);
		return qn_usage_error("fit --arch linear needs --data FILE ('-' for stdin)");
	}
	if (fo.p.maxn > 0 && fo.p.minn == 0)
		fo.p.minn = fo.p.maxn < 3 ? 1 : 3;
	if (qn_lc_params_check(&fo.p, &e)) {
		free(data);
		return qn_usage_error("%s", e.msg);
	}
	if (fo.threads == 0)
		fo.threads = qn_ncpu();

	const char *one = "?";
	if (!(F.m = qn_lc_model_new(&fo.p, &one, 1, &e)) ||
	    !(man = new_manifest(argc, argv, "fit"))) {
		qn_error("%s", F.m ? "out of memory" : e.msg);
		goto out;
	}
	qn_buf_init(&F.metrics, QN_BUF_UNLIMITED);
	qn_buf_init(&r.text, MAX_LINE);
	qn_buf_init(&r.rest, MAX_LINE);
	qn_lc_feats_init(&F.f);
	r.man = man;
	if (read_inputs(&r, data, ndata, fit_line, &F))
		goto out;
	if (fo.val) {
		struct reader rv = r;
		F.into_val = 1;
		rv.bad_inputs = 0;
		char *vf[] = {(char *)fo.val};
		int vrc = read_inputs(&rv, vf, 1, fit_line, &F);
		r.bad_lines = rv.bad_lines;
		r.bad_inputs += rv.bad_inputs;
		if (vrc)
			goto out;
	}
	if (F.train.n == 0) {
		qn_error("no training examples (every line was bad, or all went to validation)");
		goto out;
	}
	if (F.L.n < 2) {
		qn_error("one label ('%s') in the data: a classifier needs at least two",
			 F.L.name[0]);
		goto out;
	}

	/* Fix the label order, remap the ids, and build the real model. */
	uint32_t *order = malloc(F.L.n * sizeof *order), *newid = malloc(F.L.n * sizeof *newid);
	const char **names = malloc(F.L.n * sizeof *names);
	if (!order || !newid || !names) {
		free(order);
		free(newid);
		free(names);
		qn_error("out of memory");
		goto out;
	}
	all_int_labels = 1;
	for (size_t i = 0; i < F.L.n; i++) {
		order[i] = (uint32_t)i;
		all_int_labels &= is_int_label(F.L.name[i]);
	}
	sort_labels_L = &F.L;
	qsort(order, F.L.n, sizeof *order, label_cmp);
	for (size_t i = 0; i < F.L.n; i++) {
		newid[order[i]] = (uint32_t)i;
		names[i] = F.L.name[order[i]];
		if (F.L.count_train[order[i]] == 0)
			qn_warn("label '%s' has no training examples (only validation ones)",
				names[i]);
	}
	for (size_t i = 0; i < F.train.n; i++)
		F.train.label[i] = newid[F.train.label[i]];
	for (size_t i = 0; i < F.val.n; i++)
		F.val.label[i] = newid[F.val.label[i]];
	struct qn_lc_model *m = qn_lc_model_new(&fo.p, names, F.L.n, &e);
	free(newid);
	if (m) {
		/* Move the rows over: the same buckets in the same order. */
		if (qn_lc_model_map(m, F.m->row_bucket, F.m->rows, 1)) {
			qn_lc_model_free(m);
			m = NULL;
			qn_errf(&e, "out of memory");
		}
	}
	uint64_t *counts = malloc(F.L.n * 2 * sizeof *counts);
	if (counts)
		for (size_t i = 0; i < F.L.n; i++) {
			counts[2 * i] = F.L.count_train[order[i]];
			counts[2 * i + 1] = F.L.count_val[order[i]];
		}
	free(order);
	free(names);
	if (!m || !counts) {
		free(counts);
		qn_lc_model_free(m);
		qn_error("%s", m ? "out of memory" : e.msg);
		goto out;
	}
	qn_lc_model_free(F.m);
	F.m = m;
	if (qn_lc_model_map(m, F.val.feat, F.val.nfeat, 0) ||
	    qn_lc_model_init_weights(m, fo.seed, &e)) {
		free(counts);
		qn_error("%s", "out of memory");
		goto out;
	}
	qn_info("%zu training examples (%llu words), %zu validation, %zu labels, %zu rows of %d",
		F.train.n, (unsigned long long)F.train.total_words, F.val.n, m->k, m->rows,
		fo.p.dim);
	if (F.val.n == 0)
		qn_warn("no validation examples: eval.json is not written");

	struct qn_lc_data d = {F.train.feat,  F.train.off, F.train.label,
			       F.train.words, F.train.n,   F.train.total_words};
	struct qn_lc_train_opts to = {.lr = fo.lr,
				      .epochs = (int)fo.epochs,
				      .threads = (int)fo.threads,
				      .seed = fo.seed,
				      .on_epoch = on_epoch,
				      .ctx = &F};
	int trc = qn_lc_train(m, &d, &to, &e);
	if (trc) {
		free(counts);
		qn_error("%s", trc < 0 ? e.msg : "out of memory");
		goto out;
	}

	/* The model directory. */
	if (mkdir(fo.output, 0777) && errno != EEXIST) {
		free(counts);
		qn_error("cannot create '%s': %s", fo.output, strerror(errno));
		goto out;
	}
	if (qn_lc_save(m, fo.output, &e)) {
		free(counts);
		qn_error("%s", e.msg);
		goto out;
	}
	snprintf(path, sizeof path, "%s/eval.json", fo.output);
	if (F.val.n) {
		struct qn_cls_metrics cm = {0};
		json_t *j = NULL;
		char *s = NULL;
		int erc = evaluate(m, &F.val, &cm) ||
			  !(j = qn_cls_metrics_json(&cm, (const char *const *)m->labels));
		if (!erc) {
			json_object_set_new(j, "split",
					    json_string(fo.val ? "--val" : "--val-fraction"));
			s = json_dumps(j, JSON_INDENT(2));
		}
		if (erc || !s) {
			qn_error("out of memory");
			erc = 1;
		} else {
			size_t n = strlen(s);
			s[n] = '\n';
			erc = qn_write_file_atomic(path, s, n + 1, &e);
			if (erc)
				qn_error("%s", e.msg);
			else
				qn_info(
				    "validation: accuracy %.4f, macro-F1 %.4f over %zu examples",
				    qn_cls_accuracy(&cm), qn_cls_macro_f1(&cm), F.val.n);
		}
		free(s);
		json_decref(j);
		qn_cls_metrics_release(&cm);
		if (erc) {
			free(counts);
			goto out;
		}
	} else {
		unlink(path); /* a stale one would describe another model */
	}
	char mpath[4096];
	if (fo.metrics)
		snprintf(mpath, sizeof mpath, "%s", fo.metrics);
	else
		snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", fo.output);
	if (qn_write_file_atomic(mpath, F.metrics.data ? F.metrics.data : "", F.metrics.len, &e)) {
		free(counts);
		qn_error("%s", e.msg);
		goto out;
	}

	json_t *opts = json_pack(
	    "{s:s,s:i,s:i,s:i,s:i,s:I,s:b,s:f,s:I,s:I,s:I,s:f}", "arch", "linear", "dim", fo.p.dim,
	    "word_ngrams", fo.p.word_ngrams, "minn", fo.p.minn, "maxn", fo.p.maxn, "buckets",
	    (json_int_t)fo.p.buckets, "lowercase", fo.p.lowercase, "lr", fo.lr, "epochs",
	    (json_int_t)fo.epochs, "threads", (json_int_t)fo.threads, "seed", (json_int_t)fo.seed,
	    "val_fraction", fo.val ? 0.0 : fo.val_fraction);
	json_t *lc = json_object();
	for (size_t i = 0; lc && i < m->k; i++)
		json_object_set_new(lc, m->labels[i],
				    json_pack("{s:I,s:I}", "train", (json_int_t)counts[2 * i],
					      "val", (json_int_t)counts[2 * i + 1]));
	free(counts);
	qn_manifest_set(man, "options", opts);
	qn_manifest_set(man, "labels", lc);
	qn_manifest_count(man, "examples", (int64_t)F.train.n);
	qn_manifest_count(man, "val_examples", (int64_t)F.val.n);
	qn_manifest_count(man, "words", (int64_t)F.train.total_words);
	qn_manifest_count(man, "labels", (int64_t)m->k);
	qn_manifest_count(man, "rows", (int64_t)m->rows);
	qn_manifest_count(man, "bad_lines", (int64_t)r.bad_lines);
	qn_manifest_count(man, "bad_inputs", (int64_t)r.bad_inputs);
	static const char *const outs[] = {QN_LC_CONFIG, QN_LC_WEIGHTS, "eval.json"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", fo.output, outs[i]);
		if (manifest_out(man, path))
			goto out;
	}
	if (manifest_out(man, mpath))
		goto out;
	snprintf(path, sizeof path, "%s/run.manifest.json", fo.output);
	if (qn_manifest_write(man, path, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	rc = r.bad_lines || r.bad_inputs ? QN_EXIT_FAIL : QN_EXIT_OK;
out:
	qn_manifest_free(man);
	qn_lc_model_free(F.m);
	labels_release(&F.L);
	set_release(&F.train);
	set_release(&F.val);
	qn_lc_feats_release(&F.f);
	qn_buf_release(&F.metrics);
	qn_buf_release(&r.text);
	qn_buf_release(&r.rest);
	free(data);
	return rc;
usage:
	free(data);
	return QN_EXIT_USAGE;
}

/* ---- classify ------------------------------------------------------------------ */

struct classify {
	struct qn_lc_model *m;
	struct qn_lc_scratch s;
	struct qn_wr *w;
	struct qn_buf out;
	struct qn_cls_metrics cm;
	int scoring;
	long top_k;
	uint32_t *rank;
	uint64_t unknown_labels, unlabeled, docs;
	char labelbuf[QN_LC_MAX_LABEL_BYTES + 1];
	int failed;
};

static const float *probs_cmp_v;

static int prob_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (probs_cmp_v[x] != probs_cmp_v[y])
		return probs_cmp_v[x] > probs_cmp_v[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* {"label":L,"score":p,"probs":{...}} appended to o. */
static int prediction_json(struct classify *C, struct qn_buf *o, size_t best)
{
	const struct qn_lc_model *m = C->m;
	const float *p = C->s.probs;
	size_t n = m->k;
	int rc = qn_buf_adds(o, "{\"label\":") ||
		 qn_json_str(o, m->labels[best], strlen(m->labels[best])) ||
		 qn_buf_printf(o, ",\"score\":%.6g,\"probs\":{", (double)p[best]) < 0;
	if (C->top_k > 0 && (size_t)C->top_k < m->k) {
		for (size_t i = 0; i < m->k; i++)
			C->rank[i] = (uint32_t)i;
		probs_cmp_v = p;
		qsort(C->rank, m->k, sizeof *C->rank, prob_desc);
		n = (size_t)C->top_k;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		size_t id = C->top_k > 0 && (size_t)C->top_k < m->k ? C->rank[i] : i;
		rc = (i && qn_buf_addc(o, ',')) ||
		     qn_json_str(o, m->labels[id], strlen(m->labels[id])) ||
		     qn_buf_printf(o, ":%.6g", (double)p[id]) < 0;
	}
	return rc || qn_buf_adds(o, "}}");
}

static int classify_line(struct reader *r, const char *file, uint64_t lineno, char *line,
			 size_t len, void *ctx)
{
	struct classify *C = ctx;
	struct qn_err e;
	const char *text;
	size_t tlen;
	json_t *o = parse_doc(r, file, lineno, line, len, &text, &tlen);
	if (!o)
		return 0;
	long best = qn_lc_predict(C->m, text, tlen, &C->s);
	if (best < 0) {
		json_decref(o);
		qn_error("%s:%llu: out of memory", file, (unsigned long long)lineno);
		return -1;
	}
	if (C->scoring) {
		int got = get_label(o, r->label_field, C->labelbuf, sizeof C->labelbuf);
		long gold = got > 0 ? qn_lc_label_id(C->m, C->labelbuf) : -1;
		if (got <= 0)
			C->unlabeled++;
		else if (gold < 0)
			C->unknown_labels++;
		else {
			float p = C->s.probs[gold];
			qn_cls_metrics_add(&C->cm, (size_t)gold, (size_t)best,
					   -log(p > 1e-30f ? (double)p : 1e-30));
		}
	}
	qn_buf_reset(&C->out);
	int rc;
	if (json_object_get(o, "prediction")) {
		/* Replace the old prediction: re-serialize the object. */
		struct qn_buf pj;
		json_error_t je;
		qn_buf_init(&pj, QN_BUF_UNLIMITED);
		json_t *full = json_loadb(line, len, JSON_ALLOW_NUL, &je);
		rc = !full || prediction_json(C, &pj, (size_t)best);
		json_t *pv = rc ? NULL : json_loadb(pj.data, pj.len, 0, &je);
		char *s = NULL;
		if (pv && !json_object_set_new(full, "prediction", pv) &&
		    (s = json_dumps(full, JSON_COMPACT)))
			rc = qn_buf_adds(&C->out, s);
		else
			rc = -1;
		free(s);
		json_decref(full);
		qn_buf_release(&pj);
	} else {
		/* Splice: the line as it came, less its '}', then the prediction. */
		size_t n = len;
		while (n > 0 && strchr(" \t\r\n", line[n - 1]))
			n--;
		rc = qn_buf_add(&C->out, line, n - 1) ||
		     qn_buf_adds(&C->out,
				 json_object_size(o) ? ",\"prediction\":" : "\"prediction\":") ||
		     prediction_json(C, &C->out, (size_t)best) || qn_buf_addc(&C->out, '}');
	}
	json_decref(o);
	if (rc || qn_buf_addc(&C->out, '\n')) {
		qn_error("%s:%llu: out of memory", file, (unsigned long long)lineno);
		return -1;
	}
	if (qn_wr_write(C->w, C->out.data, C->out.len, &e)) {
		qn_error("%s", e.msg);
		C->failed = 1;
		return -1;
	}
	C->docs++;
	return 0;
}

static const struct option classify_longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"metrics", required_argument, NULL, F_METRICS},
    {"top-k", required_argument, NULL, F_TOP_K},
    {"text-field", required_argument, NULL, F_TEXT_FIELD},
    {"label-field", required_argument, NULL, F_LABEL_FIELD},
    {"threads", required_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

int linear_classify_main(int argc, char **argv)
{
	struct reader r = {.text_field = "text", .label_field = "label"};
	struct classify C;
	struct qn_err e;
	const char *output = "-", *metrics = NULL;
	double v;
	int c, rc = QN_EXIT_FAIL;

	memset(&C, 0, sizeof C);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:j:qvhV", classify_longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case F_METRICS:
			metrics = optarg;
			break;
		case F_TOP_K:
			if (num("--top-k", 1, QN_LC_MAX_LABELS, &v))
				return QN_EXIT_USAGE;
			C.top_k = (long)v;
			break;
		case F_TEXT_FIELD:
			r.text_field = optarg;
			break;
		case F_LABEL_FIELD:
			r.label_field = optarg;
			break;
		case 'j':
			if (whole("--threads", 0, 4096, &v))
				return QN_EXIT_USAGE;
			break; /* one thread reads faster than the output can be written */
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity++;
			break;
		case 'h':
			fputs("usage: quern-train classify MODEL [file ...] [-o OUT] [--metrics "
			      "FILE] "
			      "[--top-k K]\ntry 'quern-train --help'\n",
			      stdout);
			return qn_close_stdout(QN_EXIT_OK);
		case 'V':
			return qn_close_stdout(qn_print_version());
		case ':':
			return qn_usage_error("option '%s' needs a value",
					      opt_name(argv, classify_longopts));
		default:
			return qn_usage_error("unknown option '%s' for classify",
					      opt_name(argv, classify_longopts));
		}
	}
	if (optind >= argc)
		return qn_usage_error("classify needs MODEL");
	const char *dir = argv[optind++];
	if (!(C.m = qn_lc_load(dir, &e))) {
		qn_error("%s", e.msg);
		return QN_EXIT_FAIL;
	}
	qn_buf_init(&C.out, QN_BUF_UNLIMITED);
	qn_buf_init(&r.text, MAX_LINE);
	qn_buf_init(&r.rest, MAX_LINE);
	C.scoring = metrics != NULL;
	if (qn_lc_scratch_init(&C.s, C.m) || !(C.rank = malloc(C.m->k * sizeof *C.rank)) ||
	    (C.scoring && qn_cls_metrics_init(&C.cm, C.m->k))) {
		qn_error("out of memory");
		goto out;
	}
	if (!(C.w = qn_wr_open(output, 0, &e))) {
		qn_error("%s", e.msg);
		goto out;
	}
	int rrc = read_inputs(&r, argv + optind, argc - optind, classify_line, &C);
	if (rrc || C.failed) {
		qn_wr_abort(C.w);
		C.w = NULL;
		goto out;
	}
	if (qn_wr_commit(C.w, NULL, &e)) {
		C.w = NULL;
		qn_error("%s", e.msg);
		goto out;
	}
	C.w = NULL;
	if (C.scoring) {
		json_t *j = qn_cls_metrics_json(&C.cm, (const char *const *)C.m->labels);
		char *s = NULL;
		if (j) {
			json_object_set_new(j, "unlabeled", json_integer((json_int_t)C.unlabeled));
			json_object_set_new(j, "unknown_labels",
					    json_integer((json_int_t)C.unknown_labels));
			s = json_dumps(j, JSON_INDENT(2));
		}
		json_decref(j);
		if (!s) {
			qn_error("out of memory");
			goto out;
		}
		size_t n = strlen(s);
		s[n] = '\n';
		int wrc = qn_write_file_atomic(metrics, s, n + 1, &e);
		free(s);
		if (wrc) {
			qn_error("%s", e.msg);
			goto out;
		}
		if (C.unknown_labels)
			qn_warn("%llu labeled lines carry a label the model does not know; not "
				"scored",
				(unsigned long long)C.unknown_labels);
		qn_info("%llu scored: accuracy %.4f, macro-F1 %.4f", (unsigned long long)C.cm.n,
			qn_cls_accuracy(&C.cm), qn_cls_macro_f1(&C.cm));
	}
	rc = r.bad_lines || r.bad_inputs ? QN_EXIT_FAIL : QN_EXIT_OK;
out:
	if (C.w)
		qn_wr_abort(C.w);
	qn_lc_model_free(C.m);
	qn_lc_scratch_release(&C.s);
	qn_cls_metrics_release(&C.cm);
	free(C.rank);
	qn_buf_release(&C.out);
	qn_buf_release(&r.text);
	qn_buf_release(&r.rest);
	return qn_close_stdout(rc);
}
