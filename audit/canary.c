/*
 * canary.c - quern-audit canary: the Secret Sharer's test (Carlini et al.
 * 2019). insert adds documents holding seeded random secrets in a template
 * (memomath.h) to a document JSONL, each canary at its repetition count,
 * and records them; exposure ranks each recorded canary's log-perplexity
 * under a model among candidates of the same template and reports
 * exposure = log2(M) - log2(rank), with the skew-normal estimate that
 * reaches past log2(M). docs/memorization.md defines both.
 *
 * Scoring shares the context: every candidate starts with the end-of-text
 * token and the template's literal text before the first field, which a
 * worker reads into its KV cache once per canary; each candidate then
 * rewinds the cache to where its tokens part from the context's and reads
 * only the rest.
 */
#include <getopt.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "bpe.h"
#include "buf.h"
#include "canary.h"
#include "cli.h"
#include "doc.h"
#include "err.h"
#include "gpt2.h"
#include "hash.h"
#include "manifest.h"
#include "memomath.h"
#include "rd.h"
#include "wr.h"

#define CANARY_FORMATS_MAX 64
#define CANARY_REPS_MAX 64	      /* repetition counts in --reps */
#define CANARY_REP_MAX 1000000	      /* copies of one canary */
#define CANARY_COPIES_MAX 100000000UL /* copies in all */
#define CANARY_CANDIDATES_MAX 100000000L
#define LINE_MAX_BYTES ((size_t)1 << 28)

static const char usage_text[] =
    "usage: quern-audit canary insert --format F [--format F ...] --reps LIST\n"
    "                                 [options] [-o OUT.jsonl] [FILE ...]\n"
    "       quern-audit canary exposure MODEL --record FILE [options]\n"
    "\n"
    "The Secret Sharer's test (Carlini et al. 2019). insert adds canaries,\n"
    "seeded random secrets in a template, to a document JSONL as new\n"
    "documents, each canary repeated its chosen number of times at random\n"
    "places, and records them. exposure ranks each recorded canary's\n"
    "log-perplexity under a model among M candidates of its template:\n"
    "exposure = log2(M) - log2(rank), and a skew-normal estimate.\n"
    "\n"
    "Templates: literal text with fields {dN} (N digits), {aN} (lowercase\n"
    "letters), {AN} (uppercase letters), {xN} (lowercase hex); '{{' and '}}'\n"
    "are braces. E.g. 'my account number is {d4}-{d4}'.\n"
    "\n"
    "insert options:\n"
    "      --format F          a template (repeatable)\n"
    "      --reps LIST         repetition counts, e.g. 0,1,10,100 (0: a control\n"
    "                          canary, recorded but never inserted)\n"
    "      --per-rep K         canaries of each format at each count (default 1)\n"
    "      --seed S            secrets and places (default 0)\n"
    "  -o, --output FILE       documents here (atomically), not stdout\n"
    "      --record FILE       the canaries' record (default OUT.canaries.jsonl;\n"
    "                          needed when writing to stdout)\n"
    "\n"
    "exposure options:\n"
    "      --record FILE       what insert recorded (required)\n"
    "      --adapter DIR       a LoRA adapter on top of MODEL\n"
    "      --candidates M      candidates ranked, the canary included (default\n"
    "                          10000; every secret when the template has no more)\n"
    "      --seed S            the candidates drawn (default 0)\n"
    "  -j, --threads N         worker threads (default 0: one per CPU)\n"
    "  -o, --output FILE       results JSON here (atomically), with\n"
    "                          FILE.manifest.json beside it\n"
    "\n"
    "  -q, --quiet             no warnings\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 done, 1 a failure (unreadable input or record, a model\n"
    "that cannot be loaded), 2 usage error (a bad template among them).\n";

enum {
	OPT_FORMAT = 256,
	OPT_REPS,
	OPT_PER_REP,
	OPT_SEED,
	OPT_RECORD,
	OPT_ADAPTER,
	OPT_CANDIDATES,
};

static const struct option longopts[] = {
    {"format", required_argument, NULL, OPT_FORMAT},
    {"reps", required_argument, NULL, OPT_REPS},
    {"per-rep", required_argument, NULL, OPT_PER_REP},
    {"seed", required_argument, NULL, OPT_SEED},
    {"record", required_argument, NULL, OPT_RECORD},
    {"adapter", required_argument, NULL, OPT_ADAPTER},
    {"candidates", required_argument, NULL, OPT_CANDIDATES},
    {"threads", required_argument, NULL, 'j'},
    {"output", required_argument, NULL, 'o'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct canary_opt {
	const char *formats[CANARY_FORMATS_MAX];
	int nformats;
	long reps[CANARY_REPS_MAX];
	int nreps;
	long per_rep, candidates, threads;
	uint64_t seed;
	const char *output, *record, *adapter;
};

static int parse_reps(struct canary_opt *o, const char *s)
{
	char buf[1024];
	if (strlen(s) >= sizeof buf)
		return qn_usage_error("--reps: too long");
	strcpy(buf, s);
	o->nreps = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->nreps == CANARY_REPS_MAX)
			return qn_usage_error("--reps: more than %d counts", CANARY_REPS_MAX);
		if (qn_parse_long("--reps", t, 0, CANARY_REP_MAX, &o->reps[o->nreps]))
			return QN_EXIT_USAGE;
		o->nreps++;
	}
	if (!o->nreps)
		return qn_usage_error("--reps: expected counts such as 0,1,10,100, not '%s'", s);
	return 0;
}

/* ---- insert ----------------------------------------------------------------------- */

struct canary {
	int format; /* index into the formats */
	long reps;
	char secret[MM_SECRET_MAX + 1];
	char text[MM_FORMAT_MAX + MM_SECRET_MAX + 1];
	uint64_t *positions; /* line numbers (0-based) of its copies in the output */
	long nplaced;
};

/* The input documents, one line each, in order. */
struct lines {
	struct qn_buf b;
	size_t *off, n, cap;
};

static int read_inputs(char **files, int nfiles, struct lines *l, struct qn_manifest *man)
{
	struct qn_err e;
	struct qn_buf line;
	static char *stdin_only[] = {"-"};
	int bad = 0;
	if (!nfiles) {
		files = stdin_only;
		nfiles = 1;
	}
	qn_buf_init(&line, LINE_MAX_BYTES);
	for (int i = 0; i < nfiles; i++) {
		struct qn_rd *r = qn_rd_open(files[i], QN_RD_SHA256, &e);
		if (!r) {
			qn_error("%s", e.msg);
			bad = 1;
			continue;
		}
		uint64_t lineno = 0;
		int got;
		while ((got = qn_rd_line(r, &line, LINE_MAX_BYTES, &e)) != 0) {
			lineno++;
			if (got == QN_RD_TOOLONG) {
				qn_error("'%s': line %llu is longer than %zu bytes", files[i],
					 (unsigned long long)lineno, LINE_MAX_BYTES);
				bad = 1;
				continue;
			}
			if (got < 0) {
				qn_error("%s", e.msg);
				bad = 1;
				break;
			}
			size_t k = 0;
			while (k < line.len && strchr(" \t\r", line.data[k]))
				k++;
			if (k == line.len)
				continue;
			if (l->n == l->cap) {
				l->cap = l->cap ? 2 * l->cap : 1024;
				size_t *p = realloc(l->off, (l->cap + 1) * sizeof *p);
				if (!p) {
					qn_error("out of memory");
					qn_rd_close(r);
					qn_buf_release(&line);
					return -1;
				}
				l->off = p;
			}
			l->off[l->n++] = l->b.len;
			if (qn_buf_add(&l->b, line.data, line.len) || qn_buf_addc(&l->b, '\n')) {
				qn_error("out of memory");
				qn_rd_close(r);
				qn_buf_release(&line);
				return -1;
			}
		}
		char sha[65];
		if (man && strcmp(files[i], "-") && qn_rd_sha256(r, sha, &e) == 0)
			qn_manifest_input(man, files[i], qn_rd_raw_bytes(r), sha);
		qn_rd_close(r);
	}
	qn_buf_release(&line);
	if (l->off)
		l->off[l->n] = l->b.len;
	return bad ? -1 : 0;
}

/* Draws the canaries' secrets: distinct within a format. */
static int draw_canaries(const struct canary_opt *o, const struct mm_template *t,
			 struct canary **out, size_t *nout)
{
	size_t n = (size_t)o->nformats * (size_t)o->nreps * (size_t)o->per_rep;
	struct canary *c = calloc(n, sizeof *c);
	if (!c) {
		qn_error("out of memory");
		return -1;
	}
	uint64_t rng = o->seed ^ 0x63616e6172790000ull;
	size_t k = 0;
	for (int f = 0; f < o->nformats; f++) {
		uint64_t space;
		if (mm_template_space(&t[f], &space) == 0 &&
		    space < (uint64_t)o->nreps * (uint64_t)o->per_rep * 2) {
			qn_error("format '%s' has %llu secrets, too few for %ld distinct canaries",
				 o->formats[f], (unsigned long long)space,
				 (long)o->nreps * o->per_rep);
			free(c);
			return -1;
		}
		size_t first = k;
		for (int r = 0; r < o->nreps; r++)
			for (long p = 0; p < o->per_rep; p++, k++) {
				c[k].format = f;
				c[k].reps = o->reps[r];
				for (int tries = 0;; tries++) {
					mm_template_secret_random(&t[f], &rng, c[k].secret);
					c[k].secret[t[f].nchars] = 0;
					size_t j = first;
					while (j < k && strcmp(c[j].secret, c[k].secret))
						j++;
					if (j == k || tries > 1000)
						break;
				}
				mm_template_render(&t[f], c[k].secret, c[k].text, sizeof c[k].text);
				if (c[k].reps) {
					c[k].positions =
					    malloc((size_t)c[k].reps * sizeof(uint64_t));
					if (!c[k].positions) {
						qn_error("out of memory");
						*out = c;
						*nout = k + 1;
						return -1;
					}
				}
			}
	}
	*out = c;
	*nout = n;
	return 0;
}

static char *canary_doc(const struct canary *c, size_t n, long copy, const char *added)
{
	char id[64];
	snprintf(id, sizeof id, "canary-%zu-%ld", n, copy);
	json_t *o = json_object(), *meta = json_object();
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "text", json_string(c->text));
	json_object_set_new(o, "source", json_string("quern-audit canary"));
	json_object_set_new(o, "added", json_string(added));
	json_object_set_new(meta, "canary", json_integer((json_int_t)n));
	json_object_set_new(meta, "copy", json_integer(copy));
	json_object_set_new(o, "metadata", meta);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static int write_record(const char *path, const struct canary_opt *o, const struct canary *c,
			size_t n, struct qn_manifest *man)
{
	struct qn_err e;
	struct qn_wr_info info;
	struct qn_wr *w = qn_wr_open(path, 0, &e);
	if (!w) {
		qn_error("%s", e.msg);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_object(), *pos = json_array();
		for (long k = 0; k < c[i].nplaced; k++)
			json_array_append_new(pos, json_integer((json_int_t)c[i].positions[k]));
		json_object_set_new(r, "canary", json_integer((json_int_t)i));
		json_object_set_new(r, "format", json_string(o->formats[c[i].format]));
		json_object_set_new(r, "text", json_string(c[i].text));
		json_object_set_new(r, "secret", json_string(c[i].secret));
		json_object_set_new(r, "reps", json_integer(c[i].reps));
		json_object_set_new(r, "seed", json_integer((json_int_t)o->seed));
		char idp[48];
		snprintf(idp, sizeof idp, "canary-%zu-", i);
		json_object_set_new(r, "id_prefix", json_string(idp));
		json_object_set_new(r, "positions", pos);
		char *s = json_dumps(r, JSON_COMPACT);
		json_decref(r);
		if (!s || qn_wr_write(w, s, strlen(s), &e) || qn_wr_write(w, "\n", 1, &e)) {
			if (!s)
				qn_errf(&e, "out of memory");
			free(s);
			qn_error("%s", e.msg);
			qn_wr_abort(w);
			return -1;
		}
		free(s);
	}
	if (qn_wr_commit(w, &info, &e)) {
		qn_error("%s", e.msg);
		return -1;
	}
	if (man)
		qn_manifest_output(man, path, info.bytes, info.sha256);
	return 0;
}

static int cmd_insert(struct canary_opt *o, int argc, char **argv, char **files, int nfiles)
{
	struct mm_template t[CANARY_FORMATS_MAX];
	struct qn_err e;
	if (!o->nformats)
		return qn_usage_error("canary insert needs --format");
	if (!o->nreps)
		return qn_usage_error("canary insert needs --reps");
	for (int f = 0; f < o->nformats; f++)
		if (mm_template_parse(o->formats[f], strlen(o->formats[f]), &t[f], &e))
			return qn_usage_error("%s", e.msg);
	unsigned long copies = 0;
	for (int r = 0; r < o->nreps; r++)
		copies += (unsigned long)o->reps[r] * (unsigned long)o->per_rep *
			  (unsigned long)o->nformats;
	if (copies > CANARY_COPIES_MAX)
		return qn_usage_error("%lu canary copies in all: more than %lu", copies,
				      CANARY_COPIES_MAX);
	char *record = NULL;
	if (o->record) {
		record = strdup(o->record);
	} else if (o->output && strcmp(o->output, "-")) {
		size_t len = strlen(o->output) + 32;
		record = malloc(len);
		if (record) {
			snprintf(record, len, "%s", o->output);
			char *dot = strstr(record, ".jsonl");
			if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".jsonl.zst")))
				*dot = 0;
			strcat(record, ".canaries.jsonl");
		}
	} else {
		return qn_usage_error("canary insert writing to stdout needs --record FILE");
	}
	if (!record) {
		qn_error("out of memory");
		return QN_EXIT_FAIL;
	}

	struct qn_manifest *man = NULL;
	if (o->output && strcmp(o->output, "-"))
		man = memo_manifest_new("canary", argc, argv);
	struct lines in = {.n = 0};
	qn_buf_init(&in.b, QN_BUF_UNLIMITED);
	struct canary *c = NULL;
	size_t nc = 0;
	struct qn_wr *w = NULL;
	int rc = QN_EXIT_FAIL;
	int input_bad = read_inputs(files, nfiles, &in, man) != 0;
	if (input_bad && !in.off && in.n == 0 && nfiles <= 1)
		goto out;
	if (draw_canaries(o, t, &c, &nc))
		goto out;

	/* The copies in a random order, then their places (Knuth's selection sampling). */
	size_t *order = malloc((copies ? copies : 1) * sizeof *order * 2);
	if (!order) {
		qn_error("out of memory");
		goto out;
	}
	size_t *copy_no = order + (copies ? copies : 1), k = 0;
	for (size_t i = 0; i < nc; i++)
		for (long j = 0; j < c[i].reps; j++, k++) {
			order[k] = i;
			copy_no[k] = (size_t)j;
		}
	uint64_t rng = o->seed ^ 0x706c61636573ull;
	for (size_t i = copies; i > 1; i--) {
		size_t j = (size_t)(qn_splitmix64(&rng) % i);
		size_t a = order[i - 1], b = copy_no[i - 1];
		order[i - 1] = order[j];
		copy_no[i - 1] = copy_no[j];
		order[j] = a;
		copy_no[j] = b;
	}
	/* Copies of one canary numbered in output order. */
	long *next_copy = calloc(nc ? nc : 1, sizeof *next_copy);
	char added[32];
	qn_now_rfc3339(added);
	w = qn_wr_open(o->output, 0, &e);
	if (!w || !next_copy) {
		qn_error("%s", w ? "out of memory" : e.msg);
		free(order);
		free(next_copy);
		goto out;
	}
	size_t slots = in.n + copies, left = copies, line = 0, placed = 0;
	int wbad = 0;
	for (size_t s = 0; s < slots && !wbad; s++) {
		uint64_t r = qn_splitmix64(&rng);
		int is_canary = left && (double)(r >> 11) / 9007199254740992.0 <
					    (double)left / (double)(slots - s);
		if (is_canary) {
			struct canary *cc = &c[order[placed]];
			size_t n = order[placed];
			long copy = next_copy[n]++;
			cc->positions[cc->nplaced++] = s;
			char *doc = canary_doc(cc, n, copy, added);
			wbad = !doc || qn_wr_write(w, doc, strlen(doc), &e) ||
			       qn_wr_write(w, "\n", 1, &e);
			if (!doc)
				qn_errf(&e, "out of memory");
			free(doc);
			placed++;
			left--;
		} else {
			wbad = qn_wr_write(w, in.b.data + in.off[line],
					   in.off[line + 1] - in.off[line], &e) != 0;
			line++;
		}
	}
	free(order);
	free(next_copy);
	struct qn_wr_info info;
	if (wbad) {
		qn_error("%s", e.msg);
		qn_wr_abort(w);
		goto out;
	}
	if (qn_wr_commit(w, &info, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (man)
		qn_manifest_output(man, o->output, info.bytes, info.sha256);
	if (write_record(record, o, c, nc, man))
		goto out;
	if (man) {
		qn_manifest_count(man, "documents_in", (int64_t)in.n);
		qn_manifest_count(man, "canaries", (int64_t)nc);
		qn_manifest_count(man, "canary_copies", (int64_t)copies);
		char *mpath = qn_manifest_path_for(o->output);
		if (mpath && qn_manifest_write(man, mpath, &e)) {
			qn_error("%s", e.msg);
			free(mpath);
			goto out;
		}
		free(mpath);
	}
	rc = input_bad ? QN_EXIT_FAIL : QN_EXIT_OK;
out:
	for (size_t i = 0; i < nc; i++)
		free(c[i].positions);
	free(c);
	free(in.off);
	qn_buf_release(&in.b);
	qn_manifest_free(man);
	free(record);
	return o->output ? rc : qn_close_stdout(rc);
}

/* ---- exposure ----------------------------------------------------------------------- */

struct rec {
	long canary, reps;
	struct mm_template t;
	char *format;
	char secret[MM_SECRET_MAX + 1];
};

static int read_record(const char *path, struct rec **out, size_t *nout)
{
	struct qn_err e;
	struct qn_rd *r = qn_rd_open(path, 0, &e);
	if (!r) {
		qn_error("%s", e.msg);
		return -1;
	}
	struct qn_buf line;
	qn_buf_init(&line, 1 << 20);
	struct rec *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t lineno = 0;
	int got, bad = 0;
	while (!bad && (got = qn_rd_line(r, &line, 1 << 20, &e)) != 0) {
		lineno++;
		if (got < 0 || got == QN_RD_TOOLONG) {
			qn_error("'%s': line %llu: %s", path, (unsigned long long)lineno,
				 got < 0 ? e.msg : "too long");
			bad = 1;
			break;
		}
		if (!line.len)
			continue;
		json_error_t je;
		json_t *o = json_loadb(line.data, line.len, 0, &je);
		json_t *fj = json_object_get(o, "format"), *sj = json_object_get(o, "secret"),
		       *tj = json_object_get(o, "text"), *rj = json_object_get(o, "reps"),
		       *cj = json_object_get(o, "canary");
		const char *why = NULL;
		if (!o)
			why = je.text;
		else if (!json_is_string(fj) || !json_is_string(sj) || !json_is_string(tj) ||
			 !json_is_integer(rj))
			why = "a canary record has \"format\", \"secret\", \"text\" (strings) and "
			      "\"reps\" (a number)";
		if (!why && n == cap) {
			cap = cap ? 2 * cap : 16;
			struct rec *p = realloc(v, cap * sizeof *p);
			if (!p)
				why = "out of memory";
			else
				v = p;
		}
		if (!why) {
			struct rec *c = &v[n];
			memset(c, 0, sizeof *c);
			if (mm_template_parse(json_string_value(fj), json_string_length(fj), &c->t,
					      &e)) {
				qn_error("'%s': line %llu: %s", path, (unsigned long long)lineno,
					 e.msg);
				bad = 1;
			} else if (!mm_template_secret_ok(&c->t, json_string_value(sj),
							  json_string_length(sj))) {
				why = "the secret does not fit the format";
			} else {
				char text[MM_FORMAT_MAX + MM_SECRET_MAX + 1];
				memcpy(c->secret, json_string_value(sj),
				       json_string_length(sj) + 1);
				mm_template_render(&c->t, c->secret, text, sizeof text);
				if (strcmp(text, json_string_value(tj)))
					why = "the text is not the format filled with the secret";
			}
			if (!why && !bad) {
				c->format = strdup(json_string_value(fj));
				c->reps = (long)json_integer_value(rj);
				c->canary =
				    json_is_integer(cj) ? (long)json_integer_value(cj) : (long)n;
				if (!c->format)
					why = "out of memory";
				else
					n++;
			}
		}
		if (why) {
			qn_error("'%s': line %llu: %s", path, (unsigned long long)lineno, why);
			bad = 1;
		}
		json_decref(o);
	}
	qn_rd_close(r);
	qn_buf_release(&line);
	if (!bad && !n) {
		qn_error("'%s': no canary in the record", path);
		bad = 1;
	}
	if (bad) {
		for (size_t i = 0; i < n; i++)
			free(v[i].format);
		free(v);
		return -1;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* One canary's candidates and their scores. */
struct cand_set {
	const struct rec *c;
	size_t m;      /* candidates, the canary included (index 0) */
	char *secrets; /* m x nchars */
	double *lpp;   /* log-perplexity in bits, per candidate */
	uint32_t *ctx; /* the end-of-text token and the context's tokens */
	size_t nctx;
	atomic_size_t next;
	atomic_int failed;
};

/* A worker's state, kept across canaries. */
struct scorer {
	struct memo_model *mm;
	struct cand_set *cs;
	struct qn_gpt2_infer *g;
	struct qn_bpe_scratch *scratch;
	struct qn_bpe_ids ids;
	uint32_t *seq;
	size_t seqcap;
	float *logits;
	size_t logcap; /* rows */
	double *cum;   /* cum[i]: log p(ctx[1..i]) */
	size_t cumcap;
	size_t valid; /* leading cache positions that still hold the context */
	int bos;
	struct qn_err e;
	int err;
};

static int grow(void **p, size_t *cap, size_t want, size_t size)
{
	if (want <= *cap)
		return 0;
	void *q = realloc(*p, want * size);
	if (!q)
		return -1;
	*p = q;
	*cap = want;
	return 0;
}

/* Reads the shared context into the cache, keeping each prefix's log-probability. */
static int score_context(struct scorer *s)
{
	const struct cand_set *cs = s->cs;
	int V = s->mm->m->cfg.vocab_size;
	if (grow((void **)&s->cum, &s->cumcap, cs->nctx + 1, sizeof *s->cum) ||
	    grow((void **)&s->logits, &s->logcap, 1, (size_t)V * sizeof *s->logits))
		return qn_errf(&s->e, "out of memory");
	qn_gpt2_infer_reset(s->g);
	s->cum[0] = 0;
	for (size_t i = 0; i < cs->nctx; i++) {
		if (qn_gpt2_infer_step(s->g, &cs->ctx[i], 1, s->logits, 0, &s->e))
			return -1;
		if (i + 1 < cs->nctx)
			s->cum[i + 1] = s->cum[i] + memo_logprob(s->logits, V, cs->ctx[i + 1]);
	}
	s->valid = cs->nctx;
	return 0;
}

/* Log-perplexity (bits) of candidate k: its tokens after the first, given those before. */
static int score_candidate(struct scorer *s, size_t k, double *out)
{
	struct cand_set *cs = s->cs;
	const struct mm_template *t = &cs->c->t;
	const struct qn_gpt2_config *cfg = &s->mm->m->cfg;
	int V = cfg->vocab_size, off = s->bos >= 0;
	char text[MM_FORMAT_MAX + MM_SECRET_MAX + 1];
	size_t len = mm_template_render(t, cs->secrets + k * (size_t)t->nchars, text, sizeof text);
	qn_bpe_ids_reset(&s->ids);
	if (qn_bpe_encode(s->mm->tok, s->scratch, text, len, 0, &s->ids, &s->e))
		return -1;
	size_t n = s->ids.n + (size_t)off;
	if (n > (size_t)cfg->n_positions)
		return qn_errf(&s->e, "canary %ld: %zu tokens do not fit the model's %d positions",
			       cs->c->canary, n, cfg->n_positions);
	if (n < 2)
		return qn_errf(&s->e, "canary %ld: a single token leaves nothing to score",
			       cs->c->canary);
	if (grow((void **)&s->seq, &s->seqcap, n, sizeof *s->seq))
		return qn_errf(&s->e, "out of memory");
	if (off)
		s->seq[0] = (uint32_t)s->bos;
	memcpy(s->seq + off, s->ids.v, s->ids.n * sizeof *s->ids.v);
	/* q: tokens shared with the cached context; the cache keeps q - 1 of them. */
	size_t q = mm_lcp(s->seq, cs->ctx, n < cs->nctx ? n : cs->nctx);
	size_t start = q ? q - 1 : 0, nfeed = n - 1 - start;
	if (grow((void **)&s->logits, &s->logcap, nfeed, (size_t)V * sizeof *s->logits))
		return qn_errf(&s->e, "out of memory");
	/* An earlier candidate may have overwritten the context past its own start. */
	if (s->valid < start) {
		if (qn_gpt2_infer_rewind(s->g, (int)s->valid, &s->e) ||
		    qn_gpt2_infer_step(s->g, cs->ctx + s->valid, (int)(start - s->valid), s->logits,
				       0, &s->e))
			return -1;
		s->valid = start;
	}
	if (qn_gpt2_infer_rewind(s->g, (int)start, &s->e) ||
	    qn_gpt2_infer_step(s->g, s->seq + start, (int)nfeed, s->logits, 1, &s->e))
		return -1;
	s->valid = start;
	double lp = s->cum[start];
	for (size_t j = 0; j < nfeed; j++)
		lp += memo_logprob(s->logits + j * (size_t)V, V, s->seq[start + 1 + j]);
	*out = -lp / M_LN2;
	return 0;
}

static void *score_worker(void *p)
{
	struct scorer *s = p;
	struct cand_set *cs = s->cs;
	if (score_context(s)) {
		s->err = 1;
		atomic_store(&cs->failed, 1);
		return NULL;
	}
	while (!atomic_load(&cs->failed)) {
		size_t k = atomic_fetch_add(&cs->next, 1);
		if (k >= cs->m)
			break;
		if (score_candidate(s, k, &cs->lpp[k])) {
			s->err = 1;
			atomic_store(&cs->failed, 1);
			break;
		}
	}
	return NULL;
}

/* Hash of a secret for the set of drawn candidates. */
static uint64_t secret_hash(const char *s, int n)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return qn_splitmix64(&h);
}

/* Fills cs->secrets: the canary first, then every other secret or m - 1 drawn ones. */
static int make_candidates(struct cand_set *cs, long want, uint64_t seed, int *enumerated)
{
	const struct mm_template *t = &cs->c->t;
	int nc = t->nchars;
	uint64_t space;
	int full = mm_template_space(t, &space) == 0 && space <= (uint64_t)want;
	cs->m = full ? (size_t)space : (size_t)want;
	cs->secrets = malloc(cs->m * (size_t)nc + 1);
	cs->lpp = malloc(cs->m * sizeof *cs->lpp);
	if (!cs->secrets || !cs->lpp)
		return -1;
	memcpy(cs->secrets, cs->c->secret, (size_t)nc);
	*enumerated = full;
	if (full) {
		char tmp[MM_SECRET_MAX + 1];
		size_t k = 1;
		for (uint64_t i = 0; i < space; i++) {
			mm_template_secret_at(t, i, tmp);
			if (memcmp(tmp, cs->c->secret, (size_t)nc) && k < cs->m)
				memcpy(cs->secrets + k++ * (size_t)nc, tmp, (size_t)nc);
		}
		return 0;
	}
	/* Distinct draws: an open-addressing set of their hashes. */
	size_t cap = 1;
	while (cap < 2 * cs->m)
		cap <<= 1;
	uint64_t *set = calloc(cap, sizeof *set);
	if (!set)
		return -1;
	uint64_t rng = seed ^ ((uint64_t)cs->c->canary * 0x9e3779b97f4a7c15ull);
	size_t k = 0;
	char tmp[MM_SECRET_MAX + 1];
	memcpy(tmp, cs->c->secret, (size_t)nc);
	while (k < cs->m) {
		if (k)
			mm_template_secret_random(t, &rng, tmp);
		uint64_t h = secret_hash(tmp, nc) | 1;
		size_t i = (size_t)h & (cap - 1);
		while (set[i] && set[i] != h)
			i = (i + 1) & (cap - 1);
		if (set[i])
			continue;
		set[i] = h;
		memcpy(cs->secrets + k++ * (size_t)nc, tmp, (size_t)nc);
	}
	free(set);
	return 0;
}

static json_t *canary_result(const struct cand_set *cs, int enumerated)
{
	const struct rec *c = cs->c;
	double mine = cs->lpp[0];
	size_t below = 0;
	for (size_t i = 1; i < cs->m; i++)
		below += cs->lpp[i] < mine;
	double rank = (double)below + 1, m = (double)cs->m;
	json_t *o = json_object();
	json_object_set_new(o, "canary", json_integer(c->canary));
	json_object_set_new(o, "format", json_string(c->format));
	json_object_set_new(o, "reps", json_integer(c->reps));
	json_object_set_new(o, "log_perplexity", json_real(mine));
	json_object_set_new(o, "space_log2", json_real(c->t.log2_space));
	json_object_set_new(o, "candidates", json_integer((json_int_t)cs->m));
	json_object_set_new(o, "enumerated", json_boolean(enumerated));
	json_object_set_new(o, "rank", json_integer((json_int_t)rank));
	json_object_set_new(o, "exposure", json_real(mm_exposure(m, rank)));
	json_object_set_new(o, "exposure_max", json_real(log2(m)));
	struct mm_moments mo;
	struct mm_skewnorm sn;
	mm_moments(cs->lpp + 1, cs->m - 1, &mo);
	json_object_set_new(o, "candidates_mean", json_real(mo.mean));
	json_object_set_new(o, "candidates_std", json_real(sqrt(mo.var)));
	json_object_set_new(o, "candidates_skewness", json_real(mo.skew));
	if (cs->m >= 4 && mm_skewnorm_fit(&mo, &sn) == 0) {
		json_t *p = json_object();
		json_object_set_new(p, "xi", json_real(sn.xi));
		json_object_set_new(p, "omega", json_real(sn.omega));
		json_object_set_new(p, "alpha", json_real(sn.alpha));
		json_object_set_new(p, "clamped", json_boolean(sn.clamped));
		json_object_set_new(o, "skewnorm", p);
		json_object_set_new(o, "exposure_skewnorm",
				    json_real(-mm_skewnorm_log2cdf(&sn, mine)));
	} else {
		json_object_set_new(o, "skewnorm", json_null());
		json_object_set_new(o, "exposure_skewnorm", json_null());
	}
	return o;
}

/* Per repetition count: canaries, mean / min / max exposure, mean skew-normal exposure. */
static json_t *by_reps(json_t *list)
{
	json_t *out = json_array();
	size_t n = json_array_size(list);
	long *seen = calloc(n ? n : 1, sizeof *seen);
	size_t ns = 0;
	for (size_t i = 0; seen && i < n; i++) {
		long r = (long)json_integer_value(json_object_get(json_array_get(list, i), "reps"));
		size_t j = 0;
		while (j < ns && seen[j] != r)
			j++;
		if (j == ns)
			seen[ns++] = r;
	}
	for (size_t a = 1; a < ns; a++) /* ascending */
		for (size_t b = a; b > 0 && seen[b - 1] > seen[b]; b--) {
			long t = seen[b];
			seen[b] = seen[b - 1];
			seen[b - 1] = t;
		}
	for (size_t j = 0; j < ns; j++) {
		double sum = 0, lo = INFINITY, hi = -INFINITY, sn = 0;
		size_t k = 0, ksn = 0;
		for (size_t i = 0; i < n; i++) {
			json_t *c = json_array_get(list, i);
			if (json_integer_value(json_object_get(c, "reps")) != seen[j])
				continue;
			double x = json_real_value(json_object_get(c, "exposure"));
			sum += x;
			lo = fmin(lo, x);
			hi = fmax(hi, x);
			k++;
			json_t *s = json_object_get(c, "exposure_skewnorm");
			if (json_is_real(s)) {
				sn += json_real_value(s);
				ksn++;
			}
		}
		json_t *o = json_object();
		json_object_set_new(o, "reps", json_integer(seen[j]));
		json_object_set_new(o, "canaries", json_integer((json_int_t)k));
		json_object_set_new(o, "exposure_mean", json_real(sum / (double)k));
		json_object_set_new(o, "exposure_min", json_real(lo));
		json_object_set_new(o, "exposure_max", json_real(hi));
		json_object_set_new(o, "exposure_skewnorm_mean",
				    ksn ? json_real(sn / (double)ksn) : json_null());
		json_array_append_new(out, o);
	}
	free(seen);
	return out;
}

static int cmd_exposure(struct canary_opt *o, int argc, char **argv, const char *model_dir)
{
	struct qn_err e;
	struct memo_model mm;
	struct rec *recs = NULL;
	size_t nrec = 0;
	struct scorer *sc = NULL;
	int nth = 0, rc = QN_EXIT_FAIL;
	struct qn_manifest *man = NULL;
	if (!o->record)
		return qn_usage_error("canary exposure needs --record FILE");
	json_t *list = json_array();
	if (memo_model_open(&mm, model_dir, o->adapter, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (read_record(o->record, &recs, &nrec))
		goto out;
	const struct qn_gpt2_config *cfg = &mm.m->cfg;
	int bos = cfg->bos_token_id >= 0 ? cfg->bos_token_id : cfg->eos_token_id;
	if (bos >= cfg->vocab_size)
		bos = -1;
	nth = memo_threads(o->threads);
	sc = calloc((size_t)nth, sizeof *sc);
	if (!sc) {
		qn_error("out of memory");
		goto out;
	}
	for (int i = 0; i < nth; i++) {
		sc[i].mm = &mm;
		sc[i].bos = bos;
		sc[i].g = qn_gpt2_infer_new(mm.m, &e);
		sc[i].scratch = qn_bpe_scratch_new(mm.tok);
		qn_bpe_ids_init(&sc[i].ids, 1 << 16);
		if (!sc[i].g || !sc[i].scratch) {
			qn_error("%s", sc[i].g ? "out of memory" : e.msg);
			goto out;
		}
	}
	struct qn_bpe_scratch *scr = qn_bpe_scratch_new(mm.tok);
	struct qn_bpe_ids ids;
	qn_bpe_ids_init(&ids, 1 << 16);
	for (size_t r = 0; r < nrec; r++) {
		struct cand_set cs = {.c = &recs[r]};
		int enumerated = 0, failed = 0;
		atomic_init(&cs.next, 0);
		atomic_init(&cs.failed, 0);
		/* The context: end-of-text, then the literal text before the first field. */
		qn_bpe_ids_reset(&ids);
		size_t pl = mm_template_prefix_len(&recs[r].t);
		if (!scr || (pl && qn_bpe_encode(mm.tok, scr, recs[r].t.lit, pl, 0, &ids, &e))) {
			qn_error("canary %ld: %s", recs[r].canary, scr ? e.msg : "out of memory");
			failed = 1;
		}
		cs.nctx = ids.n + (bos >= 0);
		cs.ctx = malloc((cs.nctx + 1) * sizeof *cs.ctx);
		if (!failed &&
		    (!cs.ctx || make_candidates(&cs, o->candidates, o->seed, &enumerated))) {
			qn_error("out of memory");
			failed = 1;
		}
		if (!failed) {
			if (bos >= 0)
				cs.ctx[0] = (uint32_t)bos;
			memcpy(cs.ctx + (bos >= 0), ids.v, ids.n * sizeof *ids.v);
			if (cs.nctx > (size_t)cfg->n_positions) {
				qn_error(
				    "canary %ld: the context does not fit the model's %d positions",
				    recs[r].canary, cfg->n_positions);
				failed = 1;
			}
		}
		if (!failed) {
			int n = nth < (int)cs.m ? nth : (int)cs.m;
			for (int i = 0; i < n; i++) {
				sc[i].cs = &cs;
				sc[i].err = 0;
			}
			memo_run_workers(n, score_worker, sc, sizeof *sc);
			for (int i = 0; i < n && !failed; i++)
				if (sc[i].err) {
					qn_error("%s", sc[i].e.msg);
					failed = 1;
				}
		}
		if (!failed)
			json_array_append_new(list, canary_result(&cs, enumerated));
		free(cs.ctx);
		free(cs.secrets);
		free(cs.lpp);
		if (failed) {
			qn_bpe_scratch_free(scr);
			qn_bpe_ids_release(&ids);
			goto out;
		}
	}
	qn_bpe_scratch_free(scr);
	qn_bpe_ids_release(&ids);

	if (o->output && strcmp(o->output, "-"))
		man = memo_manifest_new("canary", argc, argv);
	if (man) {
		memo_model_manifest(&mm, man);
		memo_manifest_file(man, o->record, 0);
	}
	json_t *res = json_object();
	json_object_set_new(res, "tool", json_string("quern-audit canary exposure"));
	json_object_set_new(res, "version", json_string(QN_VERSION));
	json_object_set_new(res, "model", json_string(model_dir));
	json_object_set_new(res, "adapter", o->adapter ? json_string(o->adapter) : json_null());
	json_object_set_new(res, "record", json_string(o->record));
	json_object_set_new(res, "candidates", json_integer(o->candidates));
	json_object_set_new(res, "seed", json_integer((json_int_t)o->seed));
	json_object_set_new(res, "by_reps", by_reps(list));
	json_object_set_new(res, "canaries", json_incref(list));
	char *text = json_dumps(res, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	json_decref(res);
	struct qn_wr_info info;
	struct qn_wr *w = text ? qn_wr_open(o->output, QN_WR_PLAIN, &e) : NULL;
	if (!text)
		qn_errf(&e, "out of memory");
	int bad = !w || qn_wr_write(w, text, strlen(text), &e) || qn_wr_write(w, "\n", 1, &e);
	free(text);
	if (bad) {
		qn_error("%s", e.msg);
		if (w)
			qn_wr_abort(w);
		goto out;
	}
	if (qn_wr_commit(w, &info, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (man) {
		qn_manifest_output(man, o->output, info.bytes, info.sha256);
		qn_manifest_count(man, "canaries", (int64_t)nrec);
		char *mpath = qn_manifest_path_for(o->output);
		if (mpath && qn_manifest_write(man, mpath, &e)) {
			qn_error("%s", e.msg);
			free(mpath);
			goto out;
		}
		free(mpath);
	}
	rc = QN_EXIT_OK;
out:
	for (int i = 0; sc && i < nth; i++) {
		qn_gpt2_infer_free(sc[i].g);
		qn_bpe_scratch_free(sc[i].scratch);
		qn_bpe_ids_release(&sc[i].ids);
		free(sc[i].seq);
		free(sc[i].logits);
		free(sc[i].cum);
	}
	free(sc);
	for (size_t i = 0; i < nrec; i++)
		free(recs[i].format);
	free(recs);
	json_decref(list);
	qn_manifest_free(man);
	memo_model_close(&mm);
	return o->output ? rc : qn_close_stdout(rc);
}

int canary_main(int argc, char **argv)
{
	struct canary_opt o = {.per_rep = 1, .candidates = 10000};
	int c;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return qn_close_stdout(0);
	}
	if (argc < 2)
		return qn_usage_error("canary needs insert or exposure");
	const char *sub = argv[1];
	if (strcmp(sub, "insert") && strcmp(sub, "exposure"))
		return qn_usage_error("canary: insert or exposure, not '%s'", sub);
	int argc0 = argc;
	char **argv0 = argv; /* for the manifest */
	argc--;
	argv++; /* argv[0] is now the subcommand, which getopt skips */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":j:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_FORMAT:
			if (o.nformats == CANARY_FORMATS_MAX)
				return qn_usage_error("more than %d --format", CANARY_FORMATS_MAX);
			o.formats[o.nformats++] = optarg;
			break;
		case OPT_REPS:
			if (parse_reps(&o, optarg))
				return QN_EXIT_USAGE;
			break;
		case OPT_PER_REP:
			if (qn_parse_long("--per-rep", optarg, 1, 100000, &o.per_rep))
				return QN_EXIT_USAGE;
			break;
		case OPT_SEED: {
			long s;
			if (qn_parse_long("--seed", optarg, 0, 9007199254740991.0, &s))
				return QN_EXIT_USAGE;
			o.seed = (uint64_t)s;
			break;
		}
		case OPT_RECORD:
			o.record = optarg;
			break;
		case OPT_ADAPTER:
			o.adapter = optarg;
			break;
		case OPT_CANDIDATES:
			if (qn_parse_long("--candidates", optarg, 2, CANARY_CANDIDATES_MAX,
					  &o.candidates))
				return QN_EXIT_USAGE;
			break;
		case 'j':
			if (qn_parse_long("--threads", optarg, 0, 1024, &o.threads))
				return QN_EXIT_USAGE;
			break;
		case 'o':
			o.output = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return qn_close_stdout(0);
		case ':':
			return qn_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return qn_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!strcmp(sub, "insert"))
		return cmd_insert(&o, argc0, argv0, argv + optind, argc - optind);
	if (optind >= argc)
		return qn_usage_error("canary exposure needs a MODEL directory");
	if (optind + 1 < argc)
		return qn_usage_error("unexpected argument '%s'", argv[optind + 1]);
	return cmd_exposure(&o, argc0, argv0, argv[optind]);
}
