/*
 * test_shard.c - lib/shard: random documents (empty ones, masks, tasks,
 * labels, pairs) through several shard files and both splits, read back in
 * order, at random and as a stream, at widths 16 and 32; every single-byte
 * change and every truncation of a small shard caught by the reader and by
 * verify, with the file and offset named; manifest mismatches; seeking
 * (reading document k touches only its blocks); the writer's refusals and
 * crash semantics; the nanoGPT and llm.c exporters against bytes written out
 * by hand. Works in a mkdtemp folder under $TMPDIR (or /tmp), removed at the
 * end.
 *
 *   test_shard                         the tests
 *   test_shard --seeds DIR             writes small shard images for the fuzz corpus
 *   test_shard --bench FILE VOCAB [N]  FILE: raw little-endian uint32 token ids,
 *                                      cut into documents of N tokens (default 1000)
 *   test_shard --bench-text FILE       a stand-in: words of FILE (text, or JSONL
 *                                      with "text") hashed to ids of a 100277 vocabulary
 *
 * The benches print bytes per token at the default zstd level (whole files,
 * tables included) and single-thread decode speed in MB/s of uint32 tokens.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "err.h"
#include "shard.h"
#include "testfs.h"
#include "testrng.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP2 "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- the documents a test writes, and what reading them must give ---- */

struct tdoc {
	uint32_t *ids;
	size_t n;
	uint16_t task;
	int32_t label;
	uint64_t hash;
	int masked;
	struct qn_shard_span *in; /* as given to the writer */
	size_t nin;
	struct qn_shard_span *want; /* canonical */
	size_t nwant;
	int want_masked;
	int split, role;
	int64_t index, pair; /* in the split */
};

static void tdoc_free(struct tdoc *d)
{
	free(d->ids);
	free(d->in);
	free(d->want);
}

/* The canonical mask, from a bitmap (independent of the writer's merge). */
static void canonical(struct tdoc *d)
{
	unsigned char *on = calloc(d->n + 1, 1);
	size_t all = 0;

	d->nwant = 0;
	d->want = malloc((d->n / 2 + 2) * sizeof *d->want);
	for (size_t i = 0; d->masked && i < d->nin; i++)
		for (uint32_t t = d->in[i].start; t < d->in[i].end; t++)
			on[t] = 1;
	for (size_t t = 0; t < d->n; t++)
		all += on[t];
	d->want_masked = d->masked && d->n > 0 && all < d->n;
	for (size_t t = 0; d->want_masked && t < d->n;) {
		if (!on[t]) {
			t++;
			continue;
		}
		size_t s = t;
		while (t < d->n && on[t])
			t++;
		d->want[d->nwant].start = (uint32_t)s;
		d->want[d->nwant++].end = (uint32_t)t;
	}
	free(on);
}

static void make_doc(struct tdoc *d, uint32_t vocab)
{
	uint32_t r = below(100);
	size_t n = r < 10   ? 0
		   : r < 60 ? 1 + below(50)
		   : r < 90 ? 50 + below(550)
			    : 600 + below(4400);

	memset(d, 0, sizeof *d);
	d->n = n;
	d->ids = malloc((n ? n : 1) * sizeof *d->ids);
	for (size_t i = 0; i < n; i++) {
		/* Zipf-like: small ids common, the top of the vocabulary reachable. */
		double u = uniform();
		uint32_t id = (uint32_t)(u * u * u * vocab);
		if (below(500) == 0)
			id = vocab - 1;
		d->ids[i] = id < vocab ? id : vocab - 1;
	}
	d->task = (uint16_t)below(3);
	d->label = (int32_t)below(4) - 1;
	d->hash = rnd();
	d->masked = below(3) == 0;
	if (d->masked) {
		d->nin = below(6);
		d->in = malloc((d->nin ? d->nin : 1) * sizeof *d->in);
		for (size_t i = 0; i < d->nin; i++) {
			uint32_t a = below((uint32_t)n + 1), b = below((uint32_t)n + 1);
			if (below(8) == 0) {
				a = 0;
				b = (uint32_t)n; /* whole document: stored unmasked */
			}
			d->in[i].start = a < b ? a : b;
			d->in[i].end = a < b ? b : a;
		}
	}
	canonical(d);
}

static struct qn_shard_doc as_doc(const struct tdoc *t)
{
	struct qn_shard_doc d = {.ids = t->ids,
				 .n = t->n,
				 .task = t->task,
				 .label = t->label,
				 .id_hash = t->hash,
				 .masked = t->masked,
				 .spans = t->in,
				 .nspans = t->nin};
	return d;
}

static int same_doc(const struct tdoc *t, const struct qn_shard_docview *v)
{
	if (v->n != t->n || v->task != t->task || v->label != t->label || v->id_hash != t->hash ||
	    v->split != t->split || v->role != t->role || v->pair != t->pair ||
	    v->masked != t->want_masked || v->nspans != t->nwant || (int64_t)v->index != t->index)
		return 0;
	if (t->n && memcmp(v->tokens, t->ids, t->n * sizeof *t->ids))
		return 0;
	for (size_t i = 0; i < t->nwant; i++)
		if (v->spans[i].start != t->want[i].start || v->spans[i].end != t->want[i].end)
			return 0;
	return 1;
}

struct corpus {
	struct tdoc *docs[QN_SHARD_NSPLITS];
	size_t n[QN_SHARD_NSPLITS], cap[QN_SHARD_NSPLITS];
};

static struct tdoc *push(struct corpus *c, int split)
{
	if (c->n[split] == c->cap[split]) {
		c->cap[split] = c->cap[split] ? 2 * c->cap[split] : 64;
		c->docs[split] = realloc(c->docs[split], c->cap[split] * sizeof *c->docs[split]);
	}
	return &c->docs[split][c->n[split]++];
}

static void corpus_free(struct corpus *c)
{
	for (int s = 0; s < QN_SHARD_NSPLITS; s++) {
		for (size_t i = 0; i < c->n[s]; i++)
			tdoc_free(&c->docs[s][i]);
		free(c->docs[s]);
	}
}

static const char *const task_names[] = {"lm", "sft", "dpo"};
static const char *const label_names[] = {"neg", "neutral", "pos"};

/*
 * Writes ndocs random documents (pairs among them) into dir through both
 * splits; fills c with what was written. 0 when everything worked.
 */
static int write_corpus(const char *dir, struct corpus *c, size_t ndocs,
			const struct qn_shard_opts *o, int64_t eot)
{
	struct qn_shard_writer *w[2];
	struct qn_err e;
	int bad = 0;

	memset(c, 0, sizeof *c);
	w[0] = qn_shard_writer_open(dir, QN_SHARD_TRAIN, o, &e);
	w[1] = qn_shard_writer_open(dir, QN_SHARD_VAL, o, &e);
	if (!w[0] || !w[1]) {
		printf("  writer: %s\n", e.msg);
		return -1;
	}
	for (size_t i = 0; i < ndocs && !bad; i++) {
		int split = below(10) < 3 ? QN_SHARD_VAL : QN_SHARD_TRAIN;
		if (below(10) == 0) {
			push(c, split);
			push(c, split); /* before taking pointers: push may move them */
			struct tdoc *a = &c->docs[split][c->n[split] - 2], *b = a + 1;
			make_doc(a, o->vocab_size);
			make_doc(b, o->vocab_size);
			a->split = b->split = split;
			a->index = (int64_t)c->n[split] - 2;
			b->index = a->index + 1;
			a->role = QN_SHARD_CHOSEN;
			b->role = QN_SHARD_REJECTED;
			a->pair = b->index;
			b->pair = a->index;
			struct qn_shard_doc da = as_doc(a), db = as_doc(b);
			if (qn_shard_writer_add_pair(w[split], &da, &db, &e) < 0) {
				printf("  add_pair: %s\n", e.msg);
				bad = 1;
			}
		} else {
			struct tdoc *a = push(c, split);
			make_doc(a, o->vocab_size);
			a->split = split;
			a->index = (int64_t)c->n[split] - 1;
			a->pair = -1;
			struct qn_shard_doc da = as_doc(a);
			if (qn_shard_writer_add(w[split], &da, &e) < 0) {
				printf("  add: %s\n", e.msg);
				bad = 1;
			}
		}
	}
	struct qn_shard_special sp[] = {{"<|endoftext|>", eot >= 0 ? (uint32_t)eot : 0}};
	struct qn_shard_meta m = {.eot = eot,
				  .tasks = task_names,
				  .ntasks = 3,
				  .labels = label_names,
				  .nlabels = 3,
				  .specials = sp,
				  .nspecials = eot >= 0 ? 1 : 0};
	if (!bad && qn_shard_dir_commit(dir, w, 2, &m, &e) < 0) {
		printf("  commit: %s\n", e.msg);
		bad = 1;
	}
	qn_shard_writer_free(w[0]);
	qn_shard_writer_free(w[1]);
	return bad ? -1 : 0;
}

/* Whether s holds one document or one pair: it may pass max_bytes. */
static int alone(struct qn_shard *s)
{
	struct qn_shard_docview v;
	struct qn_err e;

	return qn_shard_info(s)->docs == 1 ||
	       (qn_shard_info(s)->docs == 2 && qn_shard_read(s, 0, &v, &e) == 0 && v.pair == 1);
}

/* Reads every document of dir back three ways and compares with c. */
static void check_corpus(const char *name, const char *dir, const struct corpus *c,
			 const struct qn_shard_opts *o, int64_t eot)
{
	char label[256];
	struct qn_err e;
	struct qn_shard_dir *d = qn_shard_dir_open(dir, &e);

	snprintf(label, sizeof label, "%s: directory opens", name);
	CHECK_NAMED(label, d != NULL);
	if (!d) {
		printf("  %s\n", e.msg);
		return;
	}
	const struct qn_shard_dir_info *in = qn_shard_dir_info(d);
	snprintf(label, sizeof label, "%s: manifest info", name);
	CHECK_NAMED(label, in->vocab_size == o->vocab_size && !strcmp(in->fingerprint, FP) &&
			       in->eot == eot && in->ntasks == 3 && !strcmp(in->tasks[2], "dpo") &&
			       in->nlabels == 3 && !strcmp(in->labels[0], "neg") &&
			       in->width == (o->width		      ? o->width
					     : o->vocab_size <= 65536 ? 16u
								      : 32u));
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		const char *sn = qn_shard_split_name(sp);
		uint64_t tokens = 0;
		for (size_t i = 0; i < c->n[sp]; i++)
			tokens += c->docs[sp][i].n;
		snprintf(label, sizeof label, "%s: %s counts", name, sn);
		CHECK_NAMED(label, qn_shard_dir_docs(d, sp) == c->n[sp] &&
				       qn_shard_dir_tokens(d, sp) == tokens);

		/* In order. */
		int ok = 1;
		for (size_t k = 0; k < c->n[sp] && ok; k++) {
			struct qn_shard_docview v;
			if (qn_shard_dir_read(d, sp, k, &v, &e) < 0) {
				printf("  read %zu: %s\n", k, e.msg);
				ok = 0;
			} else if (!same_doc(&c->docs[sp][k], &v)) {
				printf("  %s document %zu differs\n", sn, k);
				ok = 0;
			}
		}
		snprintf(label, sizeof label, "%s: %s documents in order", name, sn);
		CHECK_NAMED(label, ok);

		/* At random. */
		ok = 1;
		for (size_t i = 0; i < 2 * c->n[sp] && ok; i++) {
			size_t k = below((uint32_t)c->n[sp]);
			struct qn_shard_docview v;
			if (qn_shard_dir_read(d, sp, k, &v, &e) < 0 ||
			    !same_doc(&c->docs[sp][k], &v)) {
				printf("  random read %zu failed\n", k);
				ok = 0;
			}
		}
		snprintf(label, sizeof label, "%s: %s documents at random", name, sn);
		CHECK_NAMED(label, ok);

		/* Pairs live in one file, next to each other. */
		ok = 1;
		for (size_t k = 0; k < c->n[sp]; k++) {
			const struct tdoc *t = &c->docs[sp][k];
			if (t->role == QN_SHARD_CHOSEN && t->pair != (int64_t)k + 1)
				ok = 0;
		}
		snprintf(label, sizeof label, "%s: %s pairs adjacent", name, sn);
		CHECK_NAMED(label, ok);

		/* Streams, with every separator mode and awkward buffer sizes. */
		for (int sep = 0; sep < 3; sep++) {
			static const size_t caps[] = {1, 7, 4096, 1 << 20};
			for (size_t ci = 0; ci < 4; ci++) {
				size_t cap = caps[ci], total = 0, at = 0, pos = 0;
				for (size_t k = 0; k < c->n[sp]; k++)
					total += c->docs[sp][k].n + (sep ? 1 : 0);
				uint32_t *want = malloc((total + 1) * sizeof *want),
					 *buf = malloc(cap * sizeof *buf);
				for (size_t k = 0; k < c->n[sp]; k++) {
					const struct tdoc *t = &c->docs[sp][k];
					if (sep == QN_SHARD_SEP_BEFORE)
						want[at++] = (uint32_t)eot;
					memcpy(want + at, t->ids, t->n * sizeof *want);
					at += t->n;
					if (sep == QN_SHARD_SEP_AFTER)
						want[at++] = (uint32_t)eot;
				}
				struct qn_shard_stream *st = qn_shard_stream_open(d, sp, sep, &e);
				ok = st != NULL;
				ssize_t n;
				while (ok && (n = qn_shard_stream_read(st, buf, cap, &e)) > 0) {
					if (pos + (size_t)n > total ||
					    memcmp(buf, want + pos, (size_t)n * sizeof *buf))
						ok = 0;
					pos += (size_t)n;
				}
				if (ok && (n < 0 || pos != total))
					ok = 0;
				if (ok && qn_shard_stream_read(st, buf, cap, &e) != 0)
					ok = 0;
				qn_shard_stream_close(st);
				free(want);
				free(buf);
				snprintf(label, sizeof label, "%s: %s stream sep=%d cap=%zu", name,
					 sn, sep, cap);
				CHECK_NAMED(label, ok);
			}
		}

		/* Shard files stay under the limit unless alone with one document. */
		ok = 1;
		for (size_t i = 0; i < qn_shard_dir_nfiles(d, sp); i++) {
			struct stat st;
			struct qn_shard *s = qn_shard_open(qn_shard_dir_path(d, sp, i), &e);
			if (!s || stat(qn_shard_dir_path(d, sp, i), &st) < 0 ||
			    ((uint64_t)st.st_size > o->max_bytes && !alone(s)) ||
			    qn_shard_info(s)->index != i || qn_shard_info(s)->split != sp) {
				printf("  %s: %s %lld bytes %llu docs %llu tokens\n",
				       qn_shard_dir_path(d, sp, i), s ? "too large" : e.msg,
				       (long long)st.st_size,
				       s ? (unsigned long long)qn_shard_info(s)->docs : 0ull,
				       s ? (unsigned long long)qn_shard_info(s)->tokens : 0ull);
				ok = 0;
			}
			qn_shard_close(s);
		}
		snprintf(label, sizeof label, "%s: %s files within max_bytes", name, sn);
		CHECK_NAMED(label, ok);
	}
	snprintf(label, sizeof label, "%s: several files", name);
	CHECK_NAMED(label, qn_shard_dir_nfiles(d, QN_SHARD_TRAIN) >= 3);
	qn_shard_dir_close(d);
	snprintf(label, sizeof label, "%s: verify passes", name);
	int rc = qn_shard_dir_verify(dir, &e);
	CHECK_NAMED(label, rc == 0);
	if (rc)
		printf("  %s\n", e.msg);
}

static void test_roundtrip(void)
{
	struct corpus c;
	struct qn_shard_opts o = {
	    .fingerprint = FP, .vocab_size = 50257, .block_tokens = 512, .max_bytes = 48 * 1024};

	rng_state = 42;
	CHECK_NAMED("width 16: written", write_corpus(in_top("rt16"), &c, 500, &o, 50256) == 0);
	check_corpus("width 16", in_top("rt16"), &c, &o, 50256);
	corpus_free(&c);

	o.vocab_size = 100277;
	CHECK_NAMED("width 32: written", write_corpus(in_top("rt32"), &c, 500, &o, 100257) == 0);
	check_corpus("width 32", in_top("rt32"), &c, &o, 100257);
	corpus_free(&c);

	/* A small vocabulary at an explicit width of 32, a one-token block. */
	o.vocab_size = 300;
	o.width = 32;
	o.block_tokens = 1;
	o.max_bytes = 256 * 1024;
	CHECK_NAMED("tiny blocks: written", write_corpus(in_top("rt1"), &c, 150, &o, 299) == 0);
	check_corpus("tiny blocks", in_top("rt1"), &c, &o, 299);
	corpus_free(&c);

	/* Default block size and level; a large document across many blocks. */
	o.width = 0;
	o.vocab_size = 100277;
	o.block_tokens = 0;
	o.max_bytes = 0;
	struct qn_err e;
	struct qn_shard_writer *w = qn_shard_writer_open(in_top("big"), QN_SHARD_TRAIN, &o, &e);
	size_t n = 300000;
	uint32_t *ids = malloc(n * sizeof *ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint32_t)(i * 7919 % 100277);
	struct qn_shard_doc doc = {.ids = ids, .n = n, .label = -1};
	int ok = w && qn_shard_writer_add(w, &doc, &e) == 0;
	doc.n = 10;
	ok = ok && qn_shard_writer_add(w, &doc, &e) == 0;
	struct qn_shard_meta m = {.eot = -1};
	ok = ok && qn_shard_dir_commit(in_top("big"), &w, 1, &m, &e) == 0;
	qn_shard_writer_free(w);
	struct qn_shard_dir *d = ok ? qn_shard_dir_open(in_top("big"), &e) : NULL;
	struct qn_shard_docview v;
	ok = d && qn_shard_dir_read(d, QN_SHARD_TRAIN, 0, &v, &e) == 0 && v.n == n &&
	     !memcmp(v.tokens, ids, n * sizeof *ids) &&
	     qn_shard_dir_read(d, QN_SHARD_TRAIN, 1, &v, &e) == 0 && v.n == 10 &&
	     !memcmp(v.tokens, ids, 10 * sizeof *ids) && qn_shard_dir_info(d)->eot == -1 &&
	     qn_shard_dir_info(d)->block_tokens == QN_SHARD_BLOCK_DEFAULT &&
	     qn_shard_dir_info(d)->level == QN_SHARD_LEVEL_DEFAULT;
	CHECK_NAMED("default options: a 300,000-token document across three blocks", ok);
	if (!ok)
		printf("  %s\n", e.msg);
	CHECK_NAMED("no end-of-text: a separated stream is refused",
		    d && !qn_shard_stream_open(d, QN_SHARD_TRAIN, QN_SHARD_SEP_AFTER, &e) &&
			contains(e.msg, "end-of-text"));
	CHECK_NAMED("no end-of-text: export refused",
		    d && qn_shard_export_llmc(d, QN_SHARD_TRAIN, in_top("x.bin"), &e) < 0 &&
			contains(e.msg, "end-of-text"));
	qn_shard_dir_close(d);
	free(ids);
}

/* ---- a small shard with every kind of section, for byte-level tests ---- */

static int small_dir(const char *dir, struct corpus *c)
{
	struct qn_shard_opts o = {.fingerprint = FP, .vocab_size = 300, .block_tokens = 16};

	rng_state = 7;
	memset(c, 0, sizeof *c);
	struct qn_shard_writer *w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, NULL);
	if (!w)
		return -1;
	static const uint32_t a[] = {1, 2, 3, 2, 2, 5, 1, 1, 9, 299, 4,
				     4, 4, 4, 4, 4, 4, 4, 4, 4, 7,   7};
	static const uint32_t b[] = {8, 8, 8, 17, 19, 250, 3, 3, 3, 3, 2, 1, 0, 0, 0, 0, 1, 1, 1};
	struct qn_shard_span sa[] = {{2, 5}, {10, 12}}, sb[] = {{0, 3}};
	struct qn_shard_doc d1 = {.ids = a,
				  .n = 22,
				  .task = 1,
				  .label = 2,
				  .id_hash = 11,
				  .masked = 1,
				  .spans = sa,
				  .nspans = 2};
	struct qn_shard_doc d2 = {.ids = b, .n = 19, .label = -1, .id_hash = 22};
	struct qn_shard_doc d3 = {.ids = b,
				  .n = 5,
				  .task = 2,
				  .label = 0,
				  .id_hash = 33,
				  .masked = 1,
				  .spans = sb,
				  .nspans = 1};
	struct qn_shard_doc d4 = {.ids = a + 3, .n = 12, .task = 2, .label = 1, .id_hash = 44};
	struct qn_shard_doc d0 = {.ids = a, .n = 0, .label = -1, .id_hash = 55};
	struct qn_err e;
	int rc = qn_shard_writer_add(w, &d1, &e) | qn_shard_writer_add(w, &d0, &e) |
		 qn_shard_writer_add_pair(w, &d3, &d4, &e) | qn_shard_writer_add(w, &d2, &e);
	struct qn_shard_meta m = {
	    .eot = 0, .tasks = task_names, .ntasks = 3, .labels = label_names, .nlabels = 3};
	if (rc || qn_shard_dir_commit(dir, &w, 1, &m, &e) < 0)
		rc = -1;
	qn_shard_writer_free(w);
	return rc ? -1 : 0;
}

/* Opens an image and reads every document; 0 when all of it is fine. */
static int read_all_mem(const unsigned char *img, size_t len, struct qn_err *e)
{
	struct qn_shard *s = qn_shard_parse_mem(img, len, "x.qsh", e);

	if (!s)
		return -1;
	for (uint64_t k = 0; k < qn_shard_info(s)->docs; k++) {
		struct qn_shard_docview v;
		if (qn_shard_read(s, k, &v, e) < 0) {
			qn_shard_close(s);
			return -1;
		}
	}
	qn_shard_close(s);
	return 0;
}

static int read_all_dir(const char *dir, struct qn_err *e)
{
	struct qn_shard_dir *d = qn_shard_dir_open(dir, e);

	if (!d)
		return -1;
	for (uint64_t k = 0; k < qn_shard_dir_docs(d, QN_SHARD_TRAIN); k++) {
		struct qn_shard_docview v;
		if (qn_shard_dir_read(d, QN_SHARD_TRAIN, k, &v, e) < 0) {
			qn_shard_dir_close(d);
			return -1;
		}
	}
	qn_shard_dir_close(d);
	return 0;
}

static void test_corruption(void)
{
	struct corpus c;
	char *dir = in_top("small");
	const char *path = in_dir(dir, "train-00000.qsh");
	size_t len;
	struct qn_err e;

	CHECK_NAMED("small shard written", small_dir(dir, &c) == 0);
	unsigned char *img = slurp(path, &len), *tmp = malloc(len + 1);
	CHECK_NAMED("small shard read", img && len > QN_SHARD_HEADER);
	if (!img)
		return;
	CHECK_NAMED("small shard: intact image reads", read_all_mem(img, len, &e) == 0);
	CHECK_NAMED("small shard: intact directory verifies", qn_shard_dir_verify(dir, &e) == 0);
	struct qn_shard *s = qn_shard_parse_mem(img, len, "x.qsh", &e);
	CHECK_NAMED("small shard: several blocks, spans, ranks",
		    s && qn_shard_info(s)->blocks >= 4 && qn_shard_info(s)->spans == 3 &&
			qn_shard_info(s)->promoted > 0 && qn_shard_info(s)->docs == 5);
	qn_shard_close(s);

	/* Every byte, two ways of changing it, from memory. */
	size_t missed = 0, unnamed = 0;
	for (size_t i = 0; i < len; i++)
		for (int f = 0; f < 2; f++) {
			memcpy(tmp, img, len);
			tmp[i] ^= f ? 0xff : 0x01;
			if (read_all_mem(tmp, len, &e) == 0) {
				if (missed++ < 5)
					printf("  byte %zu ^ %s not caught\n", i, f ? "ff" : "01");
			} else if (strncmp(e.msg, "x.qsh: offset ", 14)) {
				if (unnamed++ < 5)
					printf("  byte %zu: '%s'\n", i, e.msg);
			}
		}
	CHECK_NAMED("every changed byte is caught by the reader", missed == 0);
	CHECK_NAMED("every reader error names the file and offset", unnamed == 0);

	/* Every byte on disk: verify and the directory reader. */
	size_t vmissed = 0, rmissed = 0, vunnamed = 0;
	for (size_t i = 0; i < len; i++) {
		memcpy(tmp, img, len);
		tmp[i] ^= 0x20;
		spit(path, tmp, len);
		if (qn_shard_dir_verify(dir, &e) == 0) {
			if (vmissed++ < 5)
				printf("  verify missed byte %zu\n", i);
		} else if (!contains(e.msg, path) || !contains(e.msg, ": offset ")) {
			if (vunnamed++ < 5)
				printf("  verify at byte %zu: '%s'\n", i, e.msg);
		}
		if (read_all_dir(dir, &e) == 0 && rmissed++ < 5)
			printf("  directory reader missed byte %zu\n", i);
	}
	spit(path, img, len);
	CHECK_NAMED("every changed byte is caught by verify", vmissed == 0);
	CHECK_NAMED("verify names the file and offset", vunnamed == 0);
	CHECK_NAMED("every changed byte is caught by the directory reader", rmissed == 0);

	/* Every truncation, and one byte too many. */
	missed = unnamed = 0;
	for (size_t n = 0; n < len; n++) {
		if (read_all_mem(img, n, &e) == 0)
			missed++;
		else if (strncmp(e.msg, "x.qsh: offset ", 14) && unnamed++ < 3)
			printf("  truncated to %zu: '%s'\n", n, e.msg);
	}
	memcpy(tmp, img, len);
	tmp[len] = 0;
	CHECK_NAMED("every truncation is caught", missed == 0);
	CHECK_NAMED("truncation errors name the offset", unnamed == 0);
	CHECK_NAMED("a trailing byte is caught", read_all_mem(tmp, len + 1, &e) < 0);
	spit(path, img, len / 2);
	CHECK_NAMED("truncated file: directory refused",
		    qn_shard_dir_open(dir, &e) == NULL && contains(e.msg, "truncated"));
	printf("  (%s)\n", e.msg);
	spit(path, img, len);
	CHECK_NAMED("restored shard verifies", qn_shard_dir_verify(dir, &e) == 0);

	/* Seeking: a damaged block only hurts the documents it holds. */
	s = qn_shard_parse_mem(img, len, "x.qsh", &e);
	struct qn_shard_docview v;
	CHECK_NAMED("small shard: document 4 in its own blocks",
		    s && qn_shard_read(s, 4, &v, &e) == 0 && v.n == 19);
	qn_shard_close(s);
	memcpy(tmp, img, len);
	tmp[QN_SHARD_HEADER + 3] ^= 0x40; /* inside block 0: document 0 */
	s = qn_shard_parse_mem(tmp, len, "x.qsh", &e);
	CHECK_NAMED("damaged block 0: the file still opens", s != NULL);
	CHECK_NAMED("damaged block 0: documents after it still read",
		    s && qn_shard_read(s, 4, &v, &e) == 0 && v.n == 19 && v.tokens[0] == 8 &&
			qn_shard_read(s, 2, &v, &e) == 0 && v.n == 5);
	CHECK_NAMED("damaged block 0: document 0 fails with the offset",
		    s && qn_shard_read(s, 0, &v, &e) < 0 && contains(e.msg, "offset 160: block 0"));
	printf("  (%s)\n", e.msg);
	qn_shard_close(s);

	/* The small shard's documents, as written. */
	s = qn_shard_parse_mem(img, len, "x.qsh", &e);
	int ok = s && qn_shard_read(s, 0, &v, &e) == 0 && v.n == 22 && v.masked && v.nspans == 2 &&
		 v.spans[1].start == 10 && v.spans[1].end == 12 && v.task == 1 && v.label == 2 &&
		 v.id_hash == 11 && v.role == QN_SHARD_SINGLE && v.pair == -1 && v.tokens[9] == 299;
	ok = ok && qn_shard_read(s, 1, &v, &e) == 0 && v.n == 0 && !v.masked && v.id_hash == 55;
	ok = ok && qn_shard_read(s, 2, &v, &e) == 0 && v.role == QN_SHARD_CHOSEN && v.pair == 3 &&
	     v.masked && v.nspans == 1;
	ok = ok && qn_shard_read(s, 3, &v, &e) == 0 && v.role == QN_SHARD_REJECTED && v.pair == 2 &&
	     v.n == 12 && v.tokens[0] == 2 && v.tokens[11] == 4;
	CHECK_NAMED("small shard: fields as written", ok);
	CHECK_NAMED("small shard: no document 5", s && qn_shard_read(s, 5, &v, &e) < 0);
	qn_shard_close(s);
	free(img);
	free(tmp);
	corpus_free(&c);
}

/* ---- manifest mismatches ---- */

/* Loads dir's manifest, lets edit change it, writes it back. */
static void edit_manifest(const char *dir, void (*edit)(json_t *))
{
	json_t *root = json_load_file(in_dir(dir, QN_SHARD_MANIFEST), 0, NULL);

	edit(root);
	json_dump_file(root, in_dir(dir, QN_SHARD_MANIFEST), JSON_INDENT(2));
	json_decref(root);
}

static void set_fp(json_t *r)
{
	json_object_set_new(r, "fingerprint", json_string(FP2));
}

static void set_sha(json_t *r)
{
	json_t *s = json_array_get(json_object_get(r, "shards"), 0);
	json_object_set_new(s, "sha256", json_string(FP2));
}

static void set_bytes(json_t *r)
{
	json_t *s = json_array_get(json_object_get(r, "shards"), 0);
	json_object_set_new(s, "bytes",
			    json_integer(json_integer_value(json_object_get(s, "bytes")) + 8));
}

static void set_path(json_t *r)
{
	json_t *s = json_array_get(json_object_get(r, "shards"), 0);
	json_object_set_new(s, "file", json_string("../train-00000.qsh"));
}

static void set_docs(json_t *r)
{
	json_t *s = json_array_get(json_object_get(r, "shards"), 0);
	json_object_set_new(s, "documents", json_integer(4));
	json_t *t = json_object_get(json_object_get(r, "splits"), "train");
	json_object_set_new(t, "documents", json_integer(4));
	json_t *lm = json_object_get(json_object_get(t, "tasks"), "lm");
	json_object_set_new(lm, "documents",
			    json_integer(json_integer_value(json_object_get(lm, "documents")) - 1));
}

static void set_task_count(json_t *r)
{
	json_t *t =
	    json_object_get(json_object_get(json_object_get(r, "splits"), "train"), "tasks");
	json_t *lm = json_object_get(t, "lm"), *sft = json_object_get(t, "sft");
	json_object_set_new(lm, "documents",
			    json_integer(json_integer_value(json_object_get(lm, "documents")) + 1));
	json_object_set_new(
	    sft, "documents",
	    json_integer(json_integer_value(json_object_get(sft, "documents")) - 1));
}

static void drop_labels(json_t *r)
{
	json_object_set_new(r, "labels", json_array());
}

static void test_manifest(void)
{
	struct corpus c;
	char *dir = in_top("man");
	struct qn_err e;
	size_t mlen;

	CHECK_NAMED("manifest: written", small_dir(dir, &c) == 0);
	corpus_free(&c);
	unsigned char *orig = slurp(in_dir(dir, QN_SHARD_MANIFEST), &mlen);

	edit_manifest(dir, set_fp);
	CHECK_NAMED("manifest: other fingerprint refused",
		    !qn_shard_dir_open(dir, &e) &&
			contains(e.msg, "train-00000.qsh: offset 128: tokenizer fingerprint"));
	printf("  (%s)\n", e.msg);
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	edit_manifest(dir, set_sha);
	CHECK_NAMED("manifest: wrong SHA-256 opens (sizes match)", read_all_dir(dir, &e) == 0);
	CHECK_NAMED("manifest: wrong SHA-256 caught by verify",
		    qn_shard_dir_verify(dir, &e) < 0 &&
			contains(e.msg, "train-00000.qsh: SHA-256"));
	printf("  (%s)\n", e.msg);
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	edit_manifest(dir, set_bytes);
	CHECK_NAMED("manifest: wrong size refused",
		    !qn_shard_dir_open(dir, &e) && contains(e.msg, "the manifest says"));
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	edit_manifest(dir, set_path);
	CHECK_NAMED("manifest: a path outside the directory refused",
		    !qn_shard_dir_open(dir, &e) && contains(e.msg, "shards[0].file"));
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	edit_manifest(dir, set_docs);
	CHECK_NAMED("manifest: document count differs from the header",
		    !qn_shard_dir_open(dir, &e) &&
			contains(e.msg, "offset 48: 5 documents, the manifest says 4"));
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	edit_manifest(dir, set_task_count);
	CHECK_NAMED("manifest: per-task counts caught by verify",
		    qn_shard_dir_verify(dir, &e) < 0 && contains(e.msg, "splits.train.tasks.lm"));
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	edit_manifest(dir, drop_labels);
	CHECK_NAMED("manifest: a label without a name caught by verify",
		    qn_shard_dir_verify(dir, &e) < 0 &&
			contains(e.msg, "has label 2, the manifest names 0"));
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen / 2);
	CHECK_NAMED("manifest: broken JSON refused with line and column",
		    !qn_shard_dir_open(dir, &e) && contains(e.msg, "manifest.json:"));
	spit(in_dir(dir, QN_SHARD_MANIFEST), orig, mlen);

	rename(in_dir(dir, "train-00000.qsh"), in_dir(dir, "moved.qsh"));
	CHECK_NAMED("manifest: a missing shard file refused",
		    !qn_shard_dir_open(dir, &e) && contains(e.msg, "cannot open") &&
			contains(e.msg, "train-00000.qsh"));
	printf("  (%s)\n", e.msg);
	rename(in_dir(dir, "moved.qsh"), in_dir(dir, "train-00000.qsh"));
	CHECK_NAMED("manifest: restored directory verifies", qn_shard_dir_verify(dir, &e) == 0);

	unlink(in_dir(dir, QN_SHARD_MANIFEST));
	CHECK_NAMED("manifest: none, the directory does not open",
		    !qn_shard_dir_open(dir, &e) && contains(e.msg, "no manifest.json"));
	free(orig);
}

/* ---- the writer ---- */

static void test_writer(void)
{
	struct qn_shard_opts o = {
	    .fingerprint = FP, .vocab_size = 1000, .block_tokens = 64, .max_bytes = 4096};
	struct qn_err e;
	uint32_t ids[200];
	char *dir = in_top("wr");

	for (int i = 0; i < 200; i++)
		ids[i] = (uint32_t)(i * 37 % 1000);
	o.fingerprint = "xyz";
	CHECK_NAMED("writer: bad fingerprint refused",
		    !qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e) &&
			contains(e.msg, "fingerprint"));
	o.fingerprint = FP;
	o.width = 16;
	o.vocab_size = 70000;
	CHECK_NAMED("writer: 16 bits for 70000 ids refused",
		    !qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e) && contains(e.msg, "width"));
	o.width = 0;
	o.vocab_size = 0;
	CHECK_NAMED("writer: empty vocabulary refused",
		    !qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e));
	o.vocab_size = 1000;
	o.max_bytes = 100;
	CHECK_NAMED("writer: tiny shard size refused",
		    !qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e));
	o.max_bytes = 4096;
	o.level = 99;
	CHECK_NAMED("writer: bad zstd level refused",
		    !qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e));
	o.level = 0;
	CHECK_NAMED("writer: bad split refused", !qn_shard_writer_open(dir, 5, &o, &e));

	/* A first, larger run; then a smaller one replaces it. */
	struct qn_shard_writer *w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	struct qn_shard_doc d = {.ids = ids, .n = 200, .label = -1};
	int ok = w != NULL;
	for (int i = 0; ok && i < 30; i++)
		ok = qn_shard_writer_add(w, &d, &e) == 0;
	struct qn_shard_meta m = {.eot = 999};
	ok = ok && qn_shard_dir_commit(dir, &w, 1, &m, &e) == 0;
	qn_shard_writer_free(w);
	struct stat st;
	CHECK_NAMED("writer: 30 documents of 200 tokens roll over several 4 KiB files",
		    ok && stat(in_dir(dir, "train-00003.qsh"), &st) == 0 && st.st_size <= 4096);

	w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	CHECK_NAMED("writer: opening removes the manifest",
		    w && stat(in_dir(dir, QN_SHARD_MANIFEST), &st) < 0 &&
			!qn_shard_dir_open(dir, &e) && contains(e.msg, "no manifest.json"));
	ok = w && qn_shard_writer_add(w, &d, &e) == 0;
	/* A crash here: files written so far, but no manifest names them. */
	ids[5] = 1000;
	CHECK_NAMED("writer: an id outside the vocabulary refused",
		    w && qn_shard_writer_add(w, &d, &e) < 0 && contains(e.msg, "token 5 is 1000"));
	ids[5] = 5;
	struct qn_shard_span bad_span = {3, 201};
	struct qn_shard_doc dm = {
	    .ids = ids, .n = 200, .masked = 1, .spans = &bad_span, .nspans = 1, .label = -1};
	CHECK_NAMED("writer: a span past the end refused",
		    w && qn_shard_writer_add(w, &dm, &e) < 0 && contains(e.msg, "span 0"));
	dm.masked = 0;
	dm.label = -2;
	CHECK_NAMED("writer: label -2 refused", w && qn_shard_writer_add(w, &dm, &e) < 0);
	CHECK_NAMED("writer: goes on after refusals", w && qn_shard_writer_add(w, &d, &e) == 0);
	d.label = 3;
	ok = ok && qn_shard_writer_add(w, &d, &e) == 0;
	d.label = -1;
	CHECK_NAMED("writer: a label without a name refused at commit",
		    w && qn_shard_dir_commit(dir, &w, 1, &m, &e) < 0 &&
			contains(e.msg, "label id 3"));
	const char *labels[] = {"a", "b", "c", "d"};
	m.labels = labels;
	m.nlabels = 4;
	CHECK_NAMED("writer: commit with names", w && qn_shard_dir_commit(dir, &w, 1, &m, &e) == 0);
	CHECK_NAMED("writer: adding after the commit refused",
		    w && qn_shard_writer_add(w, &d, &e) < 0);
	qn_shard_writer_free(w);
	struct qn_shard_dir *sd = qn_shard_dir_open(dir, &e);
	if (!sd)
		printf("  %s\n", e.msg);
	char next[24];
	snprintf(next, sizeof next, "train-%05zu.qsh",
		 sd ? qn_shard_dir_nfiles(sd, QN_SHARD_TRAIN) : 0);
	CHECK_NAMED("writer: the second run's files only",
		    sd && qn_shard_dir_docs(sd, QN_SHARD_TRAIN) == 3 &&
			qn_shard_dir_nfiles(sd, QN_SHARD_TRAIN) < 3 &&
			stat(in_dir(dir, next), &st) < 0 &&
			stat(in_dir(dir, "train-00003.qsh"), &st) < 0);
	qn_shard_dir_close(sd);

	/* Task ids need names; two writers of one split are refused. */
	struct qn_shard_writer *w2[2];
	w2[0] = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	w2[1] = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	d.task = 4;
	ok = w2[0] && w2[1] && qn_shard_writer_add(w2[0], &d, &e) == 0;
	CHECK_NAMED("writer: two train writers refused",
		    ok && qn_shard_dir_commit(dir, w2, 2, &m, &e) < 0 &&
			contains(e.msg, "two train"));
	CHECK_NAMED("writer: an unnamed task refused",
		    ok && qn_shard_dir_commit(dir, w2, 1, &m, &e) < 0 &&
			contains(e.msg, "task id 4"));
	qn_shard_writer_free(w2[0]);
	qn_shard_writer_free(w2[1]);
	d.task = 0;

	/* Masks in canonical form. */
	struct qn_shard_span sp[] = {{5, 9}, {1, 3}, {2, 6}, {7, 7}, {20, 30}, {30, 40}};
	struct qn_shard_span all[] = {{0, 10}, {10, 200}};
	struct qn_shard_doc m1 = {
	    .ids = ids, .n = 200, .masked = 1, .spans = sp, .nspans = 6, .label = -1};
	struct qn_shard_doc m2 = {
	    .ids = ids, .n = 200, .masked = 1, .spans = all, .nspans = 2, .label = -1};
	struct qn_shard_doc m3 = {.ids = ids, .n = 200, .masked = 1, .label = -1};
	struct qn_shard_doc m4 = {.ids = ids, .n = 0, .masked = 1, .label = -1};
	w = qn_shard_writer_open(in_top("masks"), QN_SHARD_VAL, &o, &e);
	ok = w && !qn_shard_writer_add(w, &m1, &e) && !qn_shard_writer_add(w, &m2, &e) &&
	     !qn_shard_writer_add(w, &m3, &e) && !qn_shard_writer_add(w, &m4, &e) &&
	     !qn_shard_dir_commit(in_top("masks"), &w, 1, &m, &e);
	qn_shard_writer_free(w);
	sd = ok ? qn_shard_dir_open(in_top("masks"), &e) : NULL;
	struct qn_shard_docview v;
	ok = sd && !qn_shard_dir_read(sd, QN_SHARD_VAL, 0, &v, &e) && v.masked && v.nspans == 2 &&
	     v.spans[0].start == 1 && v.spans[0].end == 9 && v.spans[1].start == 20 &&
	     v.spans[1].end == 40 && v.split == QN_SHARD_VAL;
	CHECK_NAMED("masks: unsorted, overlapping and touching spans merged", ok);
	CHECK_NAMED("masks: spans covering everything stored unmasked",
		    sd && !qn_shard_dir_read(sd, QN_SHARD_VAL, 1, &v, &e) && !v.masked &&
			!v.nspans);
	CHECK_NAMED("masks: masked without spans trains on nothing",
		    sd && !qn_shard_dir_read(sd, QN_SHARD_VAL, 2, &v, &e) && v.masked && !v.nspans);
	CHECK_NAMED("masks: an empty masked document stored unmasked",
		    sd && !qn_shard_dir_read(sd, QN_SHARD_VAL, 3, &v, &e) && !v.masked && v.n == 0);
	CHECK_NAMED("masks: the train split is empty",
		    sd && qn_shard_dir_docs(sd, QN_SHARD_TRAIN) == 0 &&
			qn_shard_dir_nfiles(sd, QN_SHARD_TRAIN) == 0);
	struct qn_shard_stream *st2 = sd ? qn_shard_stream_open(sd, QN_SHARD_TRAIN, 1, &e) : NULL;
	CHECK_NAMED("masks: the empty split streams nothing",
		    st2 && qn_shard_stream_read(st2, ids, 200, &e) == 0);
	qn_shard_stream_close(st2);
	qn_shard_dir_close(sd);
	CHECK_NAMED("masks: verify passes", qn_shard_dir_verify(in_top("masks"), &e) == 0);
}

/* Whether dir holds no temporary file of lib/wr.h. */
static int no_temp_left(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int clean = d != NULL;

	while (d && (de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp"))
			clean = 0;
	if (d)
		closedir(d);
	return clean;
}

/* ---- a disk that fills up while shards are written ---- */

static void test_io_failure(void)
{
	struct qn_shard_opts o = {
	    .fingerprint = FP, .vocab_size = 1000, .block_tokens = 64, .max_bytes = 4096};
	struct qn_shard_meta m = {.eot = 999};
	struct qn_err e;
	uint32_t ids[300];
	char *dir = in_top("full");
	int rc = 0, added = 0;

	for (int i = 0; i < 300; i++)
		ids[i] = (uint32_t)(i * 7919 % 1000);
	struct qn_shard_writer *w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	struct qn_shard_doc d = {.ids = ids, .n = 300, .label = -1};
	struct rlimit was, low;
	void (*sig)(int) = signal(SIGXFSZ, SIG_IGN);
	fflush(stdout);
	getrlimit(RLIMIT_FSIZE, &was);
	low = was;
	low.rlim_cur = 1000; /* smaller than one shard file */
	if (w && setrlimit(RLIMIT_FSIZE, &low) == 0) {
		for (int i = 0; i < 50 && rc == 0; i++)
			if ((rc = qn_shard_writer_add(w, &d, &e)) == 0)
				added++;
		setrlimit(RLIMIT_FSIZE, &was);
	}
	signal(SIGXFSZ, sig);
	CHECK_NAMED("full disk: rolling to the next file fails", w && rc < 0 && added >= 1);
	printf("  (%s)\n", e.msg);
	CHECK_NAMED("full disk: no temporary file left", no_temp_left(dir));
	CHECK_NAMED("full disk: later adds refused",
		    w && qn_shard_writer_add(w, &d, &e) < 0 && contains(e.msg, "failed earlier"));
	CHECK_NAMED("full disk: no commit", w && qn_shard_dir_commit(dir, &w, 1, &m, &e) < 0);
	CHECK_NAMED("full disk: no manifest, the directory does not open",
		    !qn_shard_dir_open(dir, &e) && contains(e.msg, "no manifest.json"));
	qn_shard_writer_free(w);

	/* The manifest itself cannot be written. */
	w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	rc = w ? qn_shard_writer_add(w, &d, &e) : -1;
	rc |= w ? qn_shard_writer_close(w, &e) : -1;
	sig = signal(SIGXFSZ, SIG_IGN);
	low.rlim_cur = 100;
	if (rc == 0 && setrlimit(RLIMIT_FSIZE, &low) == 0) {
		rc = qn_shard_dir_commit(dir, &w, 1, &m, &e);
		setrlimit(RLIMIT_FSIZE, &was);
	}
	signal(SIGXFSZ, sig);
	CHECK_NAMED("full disk: a manifest that cannot be written fails the commit", rc < 0);
	CHECK_NAMED("full disk: still no manifest", !qn_shard_dir_open(dir, &e));
	CHECK_NAMED("full disk: the commit can be retried",
		    w && qn_shard_dir_commit(dir, &w, 1, &m, &e) == 0 &&
			qn_shard_dir_verify(dir, &e) == 0);
	qn_shard_writer_free(w);
}

/* ---- exporters, against bytes written out by hand ---- */

static void test_export(void)
{
	static const uint32_t d1[] = {1, 2, 3}, d3[] = {50000, 7};
	struct qn_shard_opts o = {.fingerprint = FP, .vocab_size = 50257};
	struct qn_err e;
	char *dir = in_top("exp16");
	size_t len;

	struct qn_shard_writer *w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	struct qn_shard_doc a = {.ids = d1, .n = 3, .label = -1},
			    b = {.ids = d1, .n = 0, .label = -1},
			    c = {.ids = d3, .n = 2, .label = -1};
	struct qn_shard_meta m = {.eot = 50256};
	int ok = w && !qn_shard_writer_add(w, &a, &e) && !qn_shard_writer_add(w, &b, &e) &&
		 !qn_shard_writer_add(w, &c, &e) && !qn_shard_dir_commit(dir, &w, 1, &m, &e);
	qn_shard_writer_free(w);
	struct qn_shard_dir *d = ok ? qn_shard_dir_open(dir, &e) : NULL;
	CHECK_NAMED("export: width-16 directory", d != NULL);
	if (!d)
		return;

	/* nanoGPT prepare.py: ids then eot (50256 = 0xc450), uint16 LE. */
	static const unsigned char nano[] = {0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x50, 0xc4,
					     0x50, 0xc4, 0x50, 0xc3, 0x07, 0x00, 0x50, 0xc4};
	CHECK_NAMED("export: nanoGPT written",
		    qn_shard_export_nanogpt(d, QN_SHARD_TRAIN, in_top("train.bin"), &e) == 0);
	unsigned char *got = slurp(in_top("train.bin"), &len);
	CHECK_NAMED("export: nanoGPT bytes", got && len == sizeof nano && !memcmp(got, nano, len));
	free(got);

	/* llm.c data_common.py: 256 int32 (20240520 = 0x0134d888, 1, 8), then eot and ids. */
	static const unsigned char llmc_head[12] = {0x88, 0xd8, 0x34, 0x01, 0x01, 0x00,
						    0x00, 0x00, 0x08, 0x00, 0x00, 0x00};
	static const unsigned char llmc_toks[] = {0x50, 0xc4, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00,
						  0x50, 0xc4, 0x50, 0xc4, 0x50, 0xc3, 0x07, 0x00};
	CHECK_NAMED("export: llm.c written",
		    qn_shard_export_llmc(d, QN_SHARD_TRAIN, in_top("train_llmc.bin"), &e) == 0);
	got = slurp(in_top("train_llmc.bin"), &len);
	ok = got && len == 1024 + sizeof llmc_toks && !memcmp(got, llmc_head, 12) &&
	     !memcmp(got + 1024, llmc_toks, sizeof llmc_toks);
	for (size_t i = 12; ok && i < 1024; i++)
		ok = got[i] == 0;
	CHECK_NAMED("export: llm.c bytes", ok);
	free(got);
	CHECK_NAMED("export: a full disk fails",
		    qn_shard_export_nanogpt(d, QN_SHARD_TRAIN, "/dev/full", &e) < 0);
	CHECK_NAMED("export: the empty val split exports an empty file",
		    qn_shard_export_nanogpt(d, QN_SHARD_VAL, in_top("val.bin"), &e) == 0 &&
			(free(slurp(in_top("val.bin"), &len)), len == 0));
	qn_shard_dir_close(d);

	/* Width 32: llm.c's "llama-3" layout (20240801 = 0x0134d9a1, version 7, uint32). */
	dir = in_top("exp32");
	o.vocab_size = 100277;
	static const uint32_t d4[] = {100000, 5};
	struct qn_shard_doc f = {.ids = d4, .n = 2, .label = -1};
	m.eot = 100257;
	w = qn_shard_writer_open(dir, QN_SHARD_VAL, &o, &e);
	ok = w && !qn_shard_writer_add(w, &f, &e) && !qn_shard_dir_commit(dir, &w, 1, &m, &e);
	qn_shard_writer_free(w);
	d = ok ? qn_shard_dir_open(dir, &e) : NULL;
	static const unsigned char l3_head[12] = {0xa1, 0xd9, 0x34, 0x01, 0x07, 0x00,
						  0x00, 0x00, 0x03, 0x00, 0x00, 0x00};
	static const unsigned char l3_toks[] = {0xa1, 0x87, 0x01, 0x00, 0xa0, 0x86,
						0x01, 0x00, 0x05, 0x00, 0x00, 0x00};
	ok = d && qn_shard_export_llmc(d, QN_SHARD_VAL, in_top("val32.bin"), &e) == 0;
	got = ok ? slurp(in_top("val32.bin"), &len) : NULL;
	ok = got && len == 1024 + sizeof l3_toks && !memcmp(got, l3_head, 12) &&
	     !memcmp(got + 1024, l3_toks, sizeof l3_toks);
	CHECK_NAMED("export: llm.c uint32 bytes", ok);
	free(got);
	CHECK_NAMED("export: nanoGPT refuses 32-bit tokens",
		    d && qn_shard_export_nanogpt(d, QN_SHARD_VAL, in_top("v.bin"), &e) < 0 &&
			contains(e.msg, "uint16"));
	qn_shard_dir_close(d);
}

/* ---- fuzz seeds ---- */

static int seeds(const char *out)
{
	struct corpus c;
	char *dir = in_top("seeds");
	struct qn_shard_opts o = {
	    .fingerprint = FP, .vocab_size = 500, .block_tokens = 32, .max_bytes = 6000};
	int n = 0;

	mkdir(out, 0777);
	if (small_dir(dir, &c) < 0)
		return 1;
	corpus_free(&c);
	size_t len;
	unsigned char *img = slurp(in_dir(dir, "train-00000.qsh"), &len);
	if (img && !spit(in_dir(out, "small.qsh"), img, len))
		n++;
	free(img);
	rng_state = 3;
	if (write_corpus(in_top("seeds2"), &c, 40, &o, 499) < 0)
		return 1;
	corpus_free(&c);
	for (int sp = 0; sp < 2; sp++)
		for (int i = 0; i < 3; i++) {
			char name[32], dst[48];
			snprintf(name, sizeof name, "%s-%05d.qsh", sp ? "val" : "train", i);
			snprintf(dst, sizeof dst, "rand-%s", name);
			img = slurp(in_dir(in_top("seeds2"), name), &len);
			if (img && !spit(in_dir(out, dst), img, len))
				n++;
			free(img);
		}
	printf("%d seeds in %s\n", n, out);
	return n ? 0 : 1;
}

/* ---- benches ---- */

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* This thread's CPU time: on a shared machine, less disturbed than wall time. */
static double cpu_now(void)
{
	return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

/* Writes docs (ids cut at the starts in cut[]) and measures. */
static int bench_ids(const uint32_t *ids, size_t n, const size_t *cut, size_t ndocs, uint32_t vocab)
{
	struct qn_shard_opts o = {.fingerprint = FP, .vocab_size = vocab};
	char *dir = in_top("bench");
	struct qn_err e;
	double t0 = cpu_now();

	struct qn_shard_writer *w = qn_shard_writer_open(dir, QN_SHARD_TRAIN, &o, &e);
	if (!w) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return 1;
	}
	for (size_t i = 0; i < ndocs; i++) {
		size_t a = cut[i], z = i + 1 < ndocs ? cut[i + 1] : n;
		struct qn_shard_doc d = {.ids = ids + a, .n = z - a, .label = -1};
		if (qn_shard_writer_add(w, &d, &e) < 0) {
			fprintf(stderr, "bench: %s\n", e.msg);
			return 1;
		}
	}
	struct qn_shard_meta m = {.eot = vocab - 1};
	if (qn_shard_dir_commit(dir, &w, 1, &m, &e) < 0) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return 1;
	}
	double tw = cpu_now() - t0;
	qn_shard_writer_free(w);

	struct qn_shard_dir *d = qn_shard_dir_open(dir, &e);
	uint64_t bytes = 0;
	for (size_t i = 0; d && i < qn_shard_dir_nfiles(d, QN_SHARD_TRAIN); i++) {
		struct stat st;
		stat(qn_shard_dir_path(d, QN_SHARD_TRAIN, i), &st);
		bytes += (uint64_t)st.st_size;
	}
	printf("%zu tokens, %zu documents, vocabulary %" PRIu32
	       " (width %u), zstd level %d, %" PRIu32 " tokens a block\n",
	       n, ndocs, vocab, vocab <= 65536 ? 16 : 32, QN_SHARD_LEVEL_DEFAULT,
	       QN_SHARD_BLOCK_DEFAULT);
	printf("size: %" PRIu64 " bytes in %zu files, %.3f bytes/token (tables included)\n", bytes,
	       d ? qn_shard_dir_nfiles(d, QN_SHARD_TRAIN) : 0, (double)bytes / (double)n);
	printf("write: %.1f M tokens/s (CPU time, fsync excluded)\n", (double)n / tw / 1e6);

	size_t cap = 1 << 20;
	uint32_t *buf = malloc(cap * sizeof *buf);
	double best = 1e9, best_cpu = 1e9;
	for (int r = 0; d && r < 7; r++) {
		struct qn_shard_stream *st =
		    qn_shard_stream_open(d, QN_SHARD_TRAIN, QN_SHARD_SEP_NONE, &e);
		uint64_t got = 0, sum = 0;
		ssize_t k;
		double t1 = now(), c1 = cpu_now();
		while ((k = qn_shard_stream_read(st, buf, cap, &e)) > 0) {
			got += (uint64_t)k;
			sum += buf[k - 1];
		}
		double t = now() - t1, c = cpu_now() - c1;
		if (c < best_cpu)
			best_cpu = c;
		qn_shard_stream_close(st);
		if (k < 0 || got != n) {
			fprintf(stderr, "bench: stream: %s\n", k < 0 ? e.msg : "short");
			return 1;
		}
		if (t < best)
			best = t;
		(void)sum;
	}
	printf("decode (stream, best of 7): %.0f MB/s of uint32 tokens (%.0f M tokens/s) wall, "
	       "%.0f MB/s CPU time\n",
	       4.0 * (double)n / best / 1e6, (double)n / best / 1e6,
	       4.0 * (double)n / best_cpu / 1e6);

	/* Random access: documents at random, each decoding its own blocks. */
	struct qn_shard_docview v;
	uint64_t touched = 0;
	double t2 = now();
	rng_state = 1;
	for (int i = 0; d && i < 2000; i++) {
		if (qn_shard_dir_read(d, QN_SHARD_TRAIN, below((uint32_t)ndocs), &v, &e) < 0) {
			fprintf(stderr, "bench: %s\n", e.msg);
			return 1;
		}
		touched += v.n;
	}
	printf("random access: %.1f us a document (%.0f tokens average)\n",
	       (now() - t2) / 2000 * 1e6, (double)touched / 2000);
	free(buf);
	qn_shard_dir_close(d);
	return 0;
}

static int bench_u32(const char *path, uint32_t vocab, size_t per_doc)
{
	size_t len;
	unsigned char *raw = slurp(path, &len);

	if (!raw || len % 4) {
		fprintf(stderr, "bench: cannot read '%s' as uint32 ids\n", path);
		return 1;
	}
	size_t n = len / 4, ndocs = (n + per_doc - 1) / per_doc;
	uint32_t *ids = malloc(len);
	size_t *cut = malloc((ndocs + 1) * sizeof *cut);
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
			 (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
	for (size_t i = 0; i < ndocs; i++)
		cut[i] = i * per_doc;
	free(raw);
	int rc = bench_ids(ids, n, cut, ndocs, vocab);
	free(ids);
	free(cut);
	return rc;
}

/*
 * The stand-in: BPE-like ids without a tokenizer. Each word with its leading
 * space (" the"), each run of digits and each other character is a token,
 * its id a hash of its bytes into 256..100255 (cl100k's range, in no
 * frequency order, like BPE merge ranks). One document a line (JSONL: its
 * "text"; plain text: a paragraph per blank line).
 */
static int bench_text(const char *path)
{
	size_t len;
	char *raw = (char *)slurp(path, &len);

	if (!raw) {
		fprintf(stderr, "bench: cannot read '%s'\n", path);
		return 1;
	}
	size_t cap = len + 16, n = 0, ndocs = 0, dcap = 1024;
	uint32_t *ids = malloc(cap * sizeof *ids);
	size_t *cut = malloc(dcap * sizeof *cut);
	int jsonl = len && raw[0] == '{';
	char *p = raw, *end = raw + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *line_end = nl ? nl : end;
		char *text = p;
		size_t tlen = (size_t)(line_end - p);
		json_t *j = NULL;
		if (jsonl) {
			*line_end = 0;
			j = json_loads(p, 0, NULL);
			text = (char *)json_string_value(json_object_get(j, "text"));
			tlen = text ? strlen(text) : 0;
		}
		if (ndocs == dcap)
			cut = realloc(cut, (dcap *= 2) * sizeof *cut);
		if (jsonl || ndocs == 0 || tlen == 0)
			cut[ndocs++] = n;
		for (size_t i = 0; i < tlen;) {
			size_t s = i;
			if (text[i] == ' ' && i + 1 < tlen &&
			    ((unsigned char)text[i + 1] >= 0x80 ||
			     ((text[i + 1] | 32) >= 'a' && (text[i + 1] | 32) <= 'z')))
				i++;
			if (i < tlen && ((unsigned char)text[i] >= 0x80 ||
					 ((text[i] | 32) >= 'a' && (text[i] | 32) <= 'z'))) {
				while (i < tlen &&
				       ((unsigned char)text[i] >= 0x80 ||
					((text[i] | 32) >= 'a' && (text[i] | 32) <= 'z')))
					i++;
			} else if (i < tlen && text[i] >= '0' && text[i] <= '9') {
				while (i < tlen && i - s < 3 && text[i] >= '0' && text[i] <= '9')
					i++;
			} else {
				i++;
			}
			ids[n++] = 256 + (uint32_t)(qn_shard_id_hash(text + s, i - s) % 100000);
		}
		if (!jsonl)
			ids[n++] = 198; /* "\n" */
		json_decref(j);
		p = line_end + 1;
	}
	free(raw);
	/* Drop empty documents (blank-line runs). */
	size_t k = 0;
	for (size_t i = 0; i < ndocs; i++)
		if ((i + 1 < ndocs ? cut[i + 1] : n) > cut[i] || i == 0)
			cut[k++] = cut[i];
	int rc = bench_ids(ids, n, cut, k, 100277);
	free(ids);
	free(cut);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (make_top("test_shard") < 0)
		return 1;
	if (argc > 2 && !strcmp(argv[1], "--seeds")) {
		rc = seeds(argv[2]);
	} else if (argc > 3 && !strcmp(argv[1], "--bench")) {
		rc = bench_u32(argv[2], (uint32_t)strtoul(argv[3], NULL, 10),
			       argc > 4 ? strtoul(argv[4], NULL, 10) : 1000);
	} else if (argc > 2 && !strcmp(argv[1], "--bench-text")) {
		rc = bench_text(argv[2]);
	} else {
		test_roundtrip();
		test_corruption();
		test_manifest();
		test_writer();
		test_io_failure();
		test_export();
		rc = CHECK_DONE();
	}
	rm_rf(top);
	return rc;
}
