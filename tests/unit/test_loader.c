/*
 * test_loader.c - train/loader: a shard directory of a dozen small documents
 * of known tokens (unmasked, masked with spans, masked with none, empty)
 * read as windows of several sizes (1 token, odd, one epoch, past two
 * epochs): every window continues the stream (the end-of-text token, then
 * the document's tokens, for each document), targets are the inputs shifted
 * by one, the mask is the target's document's (an unmasked document's
 * tokens and its separator; a masked one's span tokens only); stored order
 * without shuffle, and with it every document once an epoch in an order
 * that depends on the seed and the epoch only; tell/seek giving the same
 * windows again; a directory without a manifest end-of-text token; the
 * refusals (no shards, a split without tokens, seeks out of range). Works
 * in a mkdtemp folder under $TMPDIR (or /tmp), removed at the end.
 */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "loader.h"
#include "shard.h"
#include "testfs.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define VOCAB 1000
#define EOT 999

/* ---- the documents ------------------------------------------------------------ */

struct tdoc {
	size_t n;
	int masked;
	struct qn_shard_span spans[4];
	size_t nspans;
	uint32_t ids[16]; /* filled by fill_ids: base + 16 k + i, unique to the document */
};

/* What each document trains on is known by construction (canonical masks). */
static struct tdoc train_docs[] = {
    {5, 0, {{0}}, 0, {0}},	      /* unmasked */
    {0, 0, {{0}}, 0, {0}},	      /* empty */
    {8, 1, {{1, 3}, {5, 7}}, 2, {0}}, /* two spans */
    {3, 0, {{0}}, 0, {0}},
    {4, 1, {{0}}, 0, {0}}, /* masked, no spans: trains on nothing */
    {7, 0, {{0}}, 0, {0}},
    {0, 0, {{0}}, 0, {0}},	/* empty */
    {6, 1, {{0, 2}}, 1, {0}},	/* span at the start */
    {1, 0, {{0}}, 0, {0}},	/* one token */
    {10, 1, {{2, 10}}, 1, {0}}, /* span to the end */
    {2, 0, {{0}}, 0, {0}},
    {9, 0, {{0}}, 0, {0}},
};
#define NTRAIN (sizeof train_docs / sizeof *train_docs)

static struct tdoc val_docs[] = {
    {4, 0, {{0}}, 0, {0}},
    {3, 1, {{1, 2}}, 1, {0}},
};
#define NVAL (sizeof val_docs / sizeof *val_docs)

static void fill_ids(struct tdoc *d, size_t nd, uint32_t base)
{
	for (size_t k = 0; k < nd; k++)
		for (size_t i = 0; i < d[k].n; i++)
			d[k].ids[i] = base + 16 * (uint32_t)k + (uint32_t)i;
}

/* Writes the documents into dir (val_docs NULL: no val documents). 0 on success. */
static int write_dir(const char *dir, const struct tdoc *tr, size_t ntr, const struct tdoc *va,
		     size_t nva, int64_t eot)
{
	struct qn_shard_opts o = {
	    .fingerprint = FP, .vocab_size = VOCAB, .block_tokens = 8, .max_bytes = 0};
	struct qn_shard_writer *w[2] = {NULL, NULL};
	struct qn_err e;
	int bad = 0;

	for (int s = 0; s < 2 && !bad; s++) {
		const struct tdoc *d = s ? va : tr;
		size_t nd = s ? nva : ntr;
		if (s && !va)
			break;
		w[s] = qn_shard_writer_open(dir, s ? QN_SHARD_VAL : QN_SHARD_TRAIN, &o, &e);
		if (!w[s]) {
			printf("  writer: %s\n", e.msg);
			bad = 1;
			break;
		}
		for (size_t k = 0; k < nd && !bad; k++) {
			struct qn_shard_doc sd = {.ids = d[k].ids,
						  .n = d[k].n,
						  .label = -1,
						  .id_hash = k,
						  .masked = d[k].masked,
						  .spans = d[k].spans,
						  .nspans = d[k].nspans};
			if (qn_shard_writer_add(w[s], &sd, &e) < 0) {
				printf("  add: %s\n", e.msg);
				bad = 1;
			}
		}
	}
	struct qn_shard_special sp[] = {{"<|endoftext|>", eot >= 0 ? (uint32_t)eot : 0}};
	struct qn_shard_meta m = {.eot = eot, .specials = sp, .nspecials = eot >= 0 ? 1 : 0};
	if (!bad && qn_shard_dir_commit(dir, w, w[1] ? 2 : 1, &m, &e) < 0) {
		printf("  commit: %s\n", e.msg);
		bad = 1;
	}
	qn_shard_writer_free(w[0]);
	qn_shard_writer_free(w[1]);
	return bad ? -1 : 0;
}

/* Token i of document d's stream (i = 0: the separator when there is one) and its flag. */
static size_t doc_stream(const struct tdoc *d, int sep, uint32_t *tok, uint8_t *train)
{
	size_t at = 0;
	if (sep) {
		tok[at] = EOT;
		train[at++] = !d->masked;
	}
	for (size_t i = 0; i < d->n; i++) {
		int on = !d->masked;
		for (size_t s = 0; s < d->nspans; s++)
			on |= i >= d->spans[s].start && i < d->spans[s].end;
		tok[at] = d->ids[i];
		train[at++] = (uint8_t)on;
	}
	return at;
}

/* One epoch of the stream in stored order; returns its length. */
static size_t epoch_stream(const struct tdoc *d, size_t nd, int sep, uint32_t *tok, uint8_t *train,
			   size_t *starts)
{
	size_t at = 0;
	for (size_t k = 0; k < nd; k++) {
		if (starts)
			starts[k] = at;
		at += doc_stream(d + k, sep, tok + at, train + at);
	}
	if (starts)
		starts[nd] = at;
	return at;
}

/* ---- windows ------------------------------------------------------------------ */

struct run {
	size_t n, k; /* window size, windows */
	uint32_t *in, *tg;
	uint8_t *mk;
	struct qn_loader_pos *after; /* tell after each window */
};

static void run_free(struct run *r)
{
	free(r->in);
	free(r->tg);
	free(r->mk);
	free(r->after);
}

/* Reads k windows of n; -1 (and a message) when a read fails. */
static int read_run(struct qn_loader *l, size_t n, size_t k, struct run *r)
{
	struct qn_err e;
	r->n = n;
	r->k = k;
	r->in = malloc(n * k * sizeof *r->in);
	r->tg = malloc(n * k * sizeof *r->tg);
	r->mk = malloc(n * k);
	r->after = malloc(k * sizeof *r->after);
	for (size_t w = 0; w < k; w++) {
		if (qn_loader_next(l, r->in + w * n, r->tg + w * n, r->mk + w * n, n, &e)) {
			printf("  window %zu: %s\n", w, e.msg);
			return -1;
		}
		qn_loader_tell(l, r->after + w);
	}
	return 0;
}

/* Windows continue each other and targets are the inputs shifted by one. */
static int consecutive(const struct run *r)
{
	size_t total = r->n * r->k;
	for (size_t j = 0; j + 1 < total; j++)
		if (r->tg[j] != r->in[j + 1]) {
			printf("  position %zu: target %u, next input %u\n", j, r->tg[j],
			       r->in[j + 1]);
			return 0;
		}
	return 1;
}

static int same_run(const struct run *a, const struct run *b)
{
	size_t total = a->n * a->k;
	return a->n == b->n && a->k == b->k && !memcmp(a->in, b->in, total * sizeof *a->in) &&
	       !memcmp(a->tg, b->tg, total * sizeof *a->tg) && !memcmp(a->mk, b->mk, total);
}

static int same_pos(const struct qn_loader_pos *a, const struct qn_loader_pos *b)
{
	return a->epoch == b->epoch && a->doc == b->doc && a->off == b->off;
}

/* ---- stored order ------------------------------------------------------------- */

static void test_stored_order(const char *dir)
{
	struct qn_err e;
	char label[256];
	uint32_t E[256];
	uint8_t F[256];
	size_t starts[NTRAIN + 1];
	size_t S = epoch_stream(train_docs, NTRAIN, 1, E, F, starts);
	uint64_t tokens = 0;

	for (size_t k = 0; k < NTRAIN; k++)
		tokens += train_docs[k].n;
	struct qn_loader *l = qn_loader_new(dir, QN_SHARD_TRAIN, 1, 0, &e);
	CHECK_NAMED("stored: loader opens", l != NULL);
	if (!l) {
		printf("  %s\n", e.msg);
		return;
	}
	CHECK_NAMED("stored: docs, tokens, info",
		    qn_loader_docs(l) == NTRAIN && qn_loader_tokens(l) == tokens &&
			qn_loader_info(l)->eot == EOT && qn_loader_info(l)->vocab_size == VOCAB);
	struct qn_loader_pos p;
	qn_loader_tell(l, &p);
	CHECK_NAMED("stored: starts at (0, 0, 0)", p.epoch == 0 && p.doc == 0 && p.off == 0);
	qn_loader_free(l);

	const size_t sizes[] = {1, 7, S, 2 * S + 3};
	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
		size_t n = sizes[si], k = (3 * S + n - 1) / n + 1;
		struct run r = {0};
		l = qn_loader_new(dir, QN_SHARD_TRAIN, 1, 0, &e);
		int rc = l ? read_run(l, n, k, &r) : -1;
		snprintf(label, sizeof label, "stored n=%zu: %zu windows read", n, k);
		CHECK_NAMED(label, rc == 0);
		if (rc) {
			run_free(&r);
			qn_loader_free(l);
			continue;
		}
		snprintf(label, sizeof label, "stored n=%zu: consecutive, targets shifted by one",
			 n);
		CHECK_NAMED(label, consecutive(&r));

		/* The stream: EOT + tokens of each document in stored order, epoch after epoch. */
		int tok_ok = 1, mask_ok = 1, pos_ok = 1;
		for (size_t j = 0; j < n * k; j++) {
			if (r.in[j] != E[j % S] || r.tg[j] != E[(j + 1) % S]) {
				if (tok_ok)
					printf("  position %zu: input %u target %u, want %u %u\n",
					       j, r.in[j], r.tg[j], E[j % S], E[(j + 1) % S]);
				tok_ok = 0;
			}
			if (r.mk[j] != F[(j + 1) % S]) {
				if (mask_ok)
					printf("  position %zu (target %u): mask %u, want %u\n", j,
					       r.tg[j], r.mk[j], F[(j + 1) % S]);
				mask_ok = 0;
			}
		}
		/* tell: where the next window's first input sits in the stream. */
		for (size_t w = 0; w < k; w++) {
			size_t j = (w + 1) * n, at = j % S, d = 0;
			while (starts[d + 1] <= at)
				d++;
			struct qn_loader_pos want = {j / S, d, at - starts[d]};
			if (!same_pos(&r.after[w], &want)) {
				if (pos_ok)
					printf(
					    "  after window %zu: (%llu, %llu, %llu), want (%llu, "
					    "%llu, %llu)\n",
					    w, (unsigned long long)r.after[w].epoch,
					    (unsigned long long)r.after[w].doc,
					    (unsigned long long)r.after[w].off,
					    (unsigned long long)want.epoch,
					    (unsigned long long)want.doc,
					    (unsigned long long)want.off);
				pos_ok = 0;
			}
		}
		snprintf(label, sizeof label, "stored n=%zu: EOT + document tokens, stored order",
			 n);
		CHECK_NAMED(label, tok_ok);
		snprintf(label, sizeof label, "stored n=%zu: mask follows the documents' masks", n);
		CHECK_NAMED(label, mask_ok);
		snprintf(label, sizeof label, "stored n=%zu: tell gives (epoch, doc, offset)", n);
		CHECK_NAMED(label, pos_ok);
		run_free(&r);
		qn_loader_free(l);
	}

	/*
	 * The mask by hand: the stream starts EOT 100..104 | EOT | EOT 132..139 |
	 * EOT, flags 1 11111 | 1 | 0 01100110 | 1, and mask[j] is the flag of j + 1.
	 */
	l = qn_loader_new(dir, QN_SHARD_TRAIN, 1, 0, &e);
	uint32_t in[16], tg[16];
	uint8_t mk[16];
	static const uint8_t want[16] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1};
	int rc = l ? qn_loader_next(l, in, tg, mk, 16, &e) : -1;
	CHECK_NAMED("stored: the first 16 mask values by hand",
		    rc == 0 && !memcmp(mk, want, 16) && in[0] == EOT && in[1] == 100 &&
			tg[0] == 100 && in[6] == EOT && in[7] == EOT && tg[6] == EOT &&
			in[8] == 100 + 2 * 16);
	qn_loader_free(l);
}

/* ---- shuffled order ----------------------------------------------------------- */

/*
 * Splits each epoch of a run (the stream, rebuilt from its inputs and last
 * target) into documents; order[e][i] gets the document at position i of
 * epoch e (-1: an empty one). 0 when every epoch holds every document once
 * and every mask value is that of its document.
 */
static int parse_epochs(const struct run *r, size_t S, int order[][NTRAIN], size_t nep)
{
	size_t total = r->n * r->k;
	uint32_t *X = malloc((total + 1) * sizeof *X);
	uint8_t *M = malloc(total + 1);
	uint32_t tok[32];
	uint8_t train[32];
	int ok = 1;

	memcpy(X, r->in, total * sizeof *X);
	X[total] = r->tg[total - 1];
	M[0] = 2; /* the first token is nobody's target */
	memcpy(M + 1, r->mk, total);
	for (size_t ep = 0; ep < nep && ok; ep++) {
		size_t at = ep * S, end = at + S, i = 0, empty = 0;
		int seen[NTRAIN] = {0};
		if (end > total + 1)
			break;
		while (at < end && ok) {
			if (X[at] != EOT || i == NTRAIN) {
				printf("  epoch %zu: no separator at %zu\n", ep, at);
				ok = 0;
				break;
			}
			size_t len = 1;
			while (at + len < end && X[at + len] != EOT)
				len++;
			int k = -1;
			if (len > 1) {
				k = (int)((X[at + 1] - 100) / 16);
				if (k < 0 || k >= (int)NTRAIN || seen[k]) {
					printf("  epoch %zu: document %d unknown or seen twice\n",
					       ep, k);
					ok = 0;
					break;
				}
				seen[k] = 1;
			} else {
				empty++;
			}
			const struct tdoc *d = k >= 0 ? &train_docs[k] : NULL;
			static const struct tdoc none = {0, 0, {{0}}, 0, {0}};
			size_t dl = doc_stream(d ? d : &none, 1, tok, train);
			if (dl != len || memcmp(tok, X + at, len * sizeof *tok)) {
				printf("  epoch %zu: document %d differs\n", ep, k);
				ok = 0;
			}
			for (size_t j = 0; j < len && ok; j++)
				if (M[at + j] != 2 && M[at + j] != train[j]) {
					printf("  epoch %zu: document %d token %zu: mask %u\n", ep,
					       k, j, M[at + j]);
					ok = 0;
				}
			order[ep][i++] = k;
			at += len;
		}
		size_t want_empty = 0, nonempty = 0;
		for (size_t k = 0; k < NTRAIN; k++) {
			want_empty += train_docs[k].n == 0;
			nonempty += seen[k];
		}
		if (ok && (i != NTRAIN || empty != want_empty || nonempty + empty != NTRAIN)) {
			printf("  epoch %zu: %zu documents, %zu empty\n", ep, i, empty);
			ok = 0;
		}
	}
	free(X);
	free(M);
	return ok ? 0 : -1;
}

static void test_shuffle(const char *dir)
{
	struct qn_err e;
	char label[256];
	uint32_t E[256];
	uint8_t F[256];
	size_t S = epoch_stream(train_docs, NTRAIN, 1, E, F, NULL);
	enum { NEP = 4 };
	int order[NEP][NTRAIN], order2[NEP][NTRAIN], stored[NTRAIN];

	for (size_t k = 0; k < NTRAIN; k++)
		stored[k] = train_docs[k].n ? (int)k : -1;
	const size_t sizes[] = {1, 7, 2 * S + 3};
	struct run first = {0};
	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
		size_t n = sizes[si], k = (NEP * S + n - 1) / n + 1;
		struct run r = {0};
		struct qn_loader *l = qn_loader_new(dir, QN_SHARD_TRAIN, 42, 1, &e);
		int rc = l ? read_run(l, n, k, &r) : -1;
		snprintf(label, sizeof label, "shuffle n=%zu: %zu windows read", n, k);
		CHECK_NAMED(label, rc == 0);
		if (rc == 0) {
			snprintf(label, sizeof label, "shuffle n=%zu: consecutive", n);
			CHECK_NAMED(label, consecutive(&r));
			snprintf(label, sizeof label,
				 "shuffle n=%zu: each epoch every document once, masks kept", n);
			CHECK_NAMED(label, parse_epochs(&r, S, si ? order2 : order, NEP) == 0);
			if (si) {
				snprintf(label, sizeof label,
					 "shuffle n=%zu: same order as n=1 (seed and epoch only)",
					 n);
				CHECK_NAMED(label, !memcmp(order, order2, sizeof order));
			}
		}
		if (si == 0)
			first = r;
		else
			run_free(&r);
		qn_loader_free(l);
	}
	int differ01 = memcmp(order[0], order[1], sizeof order[0]) != 0;
	int differ12 = memcmp(order[1], order[2], sizeof order[1]) != 0;
	int differ_stored = memcmp(order[0], stored, sizeof stored) != 0;
	CHECK_NAMED("shuffle: epochs 0, 1, 2 in different orders", differ01 && differ12);
	CHECK_NAMED("shuffle: not the stored order", differ_stored);
	printf("  (epoch 0:");
	for (size_t i = 0; i < NTRAIN; i++)
		printf(" %d", order[0][i]);
	printf(")\n");

	/* The same seed gives the same windows; another seed another order. */
	struct run r = {0};
	struct qn_loader *l = qn_loader_new(dir, QN_SHARD_TRAIN, 42, 1, &e);
	int rc = l ? read_run(l, 1, first.k, &r) : -1;
	CHECK_NAMED("shuffle: same seed, same windows", rc == 0 && same_run(&first, &r));
	run_free(&r);
	qn_loader_free(l);
	l = qn_loader_new(dir, QN_SHARD_TRAIN, 43, 1, &e);
	rc = l ? read_run(l, 1, first.k, &r) : -1;
	rc = rc ? rc : parse_epochs(&r, S, order2, NEP);
	CHECK_NAMED("shuffle: seed 43 reads every document once an epoch", rc == 0);
	CHECK_NAMED("shuffle: seed 43, another order",
		    rc == 0 && memcmp(order[0], order2[0], sizeof order[0]) &&
			memcmp(order[1], order2[1], sizeof order[1]));
	run_free(&r);
	qn_loader_free(l);
	run_free(&first);
}

/* ---- tell and seek ------------------------------------------------------------ */

static void test_seek(const char *dir, int shuffle)
{
	struct qn_err e;
	char label[256];
	const char *mode = shuffle ? "shuffle" : "stored";
	struct run a = {0}, b = {0}, c = {0}, d = {0};
	struct qn_loader_pos p, q;

	struct qn_loader *l = qn_loader_new(dir, QN_SHARD_TRAIN, 7, shuffle, &e);
	struct qn_loader *l2 = qn_loader_new(dir, QN_SHARD_TRAIN, 7, shuffle, &e);
	int rc = l && l2 ? read_run(l, 7, 5, &a) : -1;
	if (rc == 0)
		qn_loader_tell(l, &p);
	/* 40 windows of 7 from token 35: across several epochs. */
	rc = rc ? rc : read_run(l, 7, 40, &b);
	snprintf(label, sizeof label, "seek %s: windows read", mode);
	CHECK_NAMED(label, rc == 0);
	if (rc)
		goto out;

	rc = qn_loader_seek(l2, &p, &e);
	rc = rc ? rc : read_run(l2, 7, 40, &c);
	snprintf(label, sizeof label, "seek %s: a fresh loader seeked to tell's position", mode);
	CHECK_NAMED(label, rc == 0 && same_run(&b, &c));
	run_free(&c);

	rc = qn_loader_seek(l, &p, &e);
	rc = rc ? rc : read_run(l, 7, 40, &c);
	snprintf(label, sizeof label, "seek %s: the same loader seeked back", mode);
	CHECK_NAMED(label, rc == 0 && same_run(&b, &c));

	/* A position in a later epoch, mid-document, from the middle of the run. */
	q = b.after[30];
	rc = qn_loader_seek(l2, &q, &e);
	rc = rc ? rc : read_run(l2, 7, 9, &d);
	snprintf(label, sizeof label, "seek %s: to epoch %llu doc %llu off %llu", mode,
		 (unsigned long long)q.epoch, (unsigned long long)q.doc, (unsigned long long)q.off);
	CHECK_NAMED(label, rc == 0 && q.epoch >= 1 &&
			       !memcmp(d.in, b.in + 31 * 7, 9 * 7 * sizeof *d.in) &&
			       !memcmp(d.tg, b.tg + 31 * 7, 9 * 7 * sizeof *d.tg) &&
			       !memcmp(d.mk, b.mk + 31 * 7, 9 * 7));

	/* Refusals. */
	struct qn_loader_pos bad = {0, NTRAIN, 0};
	e.msg[0] = 0;
	snprintf(label, sizeof label, "seek %s: document past the split fails", mode);
	CHECK_NAMED(label, qn_loader_seek(l2, &bad, &e) == -1 && e.msg[0]);
	bad.doc = 0;
	bad.off = 1000;
	e.msg[0] = 0;
	snprintf(label, sizeof label, "seek %s: offset past the document fails", mode);
	CHECK_NAMED(label, qn_loader_seek(l2, &bad, &e) == -1 && e.msg[0]);
	run_free(&d);
	rc = qn_loader_seek(l2, &q, &e);
	rc = rc ? rc : read_run(l2, 7, 9, &d);
	snprintf(label, sizeof label, "seek %s: works again after a refusal", mode);
	CHECK_NAMED(label, rc == 0 && !memcmp(d.in, b.in + 31 * 7, 9 * 7 * sizeof *d.in));
out:
	run_free(&a);
	run_free(&b);
	run_free(&c);
	run_free(&d);
	qn_loader_free(l);
	qn_loader_free(l2);
}

/* ---- the val split, no end-of-text, refusals --------------------------------- */

static void test_val(const char *dir)
{
	struct qn_err e;
	uint32_t E[64], in[40], tg[40];
	uint8_t F[64], mk[40];
	size_t S = epoch_stream(val_docs, NVAL, 1, E, F, NULL);
	struct qn_loader *l = qn_loader_new(dir, QN_SHARD_VAL, 0, 1, &e);
	int rc = l ? qn_loader_next(l, in, tg, mk, 40, &e) : -1;
	int ok = rc == 0 && qn_loader_docs(l) == NVAL;
	/* Two documents: shuffled or not, epochs are one of two orders. */
	for (size_t j = 0; ok && j < 40; j += S) {
		int k = in[j + 1] == val_docs[0].ids[0] ? 0 : 1;
		uint32_t t[16];
		uint8_t f[16];
		size_t at = doc_stream(&val_docs[k], 1, t, f);
		at += doc_stream(&val_docs[1 - k], 1, t + at, f + at);
		for (size_t i = 0; i < S && j + i < 40; i++)
			if (in[j + i] != t[i] || (j + i > 0 && mk[j + i - 1] != f[i]))
				ok = 0;
	}
	CHECK_NAMED("val: the val split's documents", ok);
	qn_loader_free(l);
}

static void test_no_eot(void)
{
	struct qn_err e;
	struct tdoc d[] = {{3, 0, {{0}}, 0, {0}}, {0, 0, {{0}}, 0, {0}}, {2, 1, {{1, 2}}, 1, {0}}};
	const char *dir = in_top("noeot");
	fill_ids(d, 3, 300);
	CHECK_NAMED("no eot: written", write_dir(dir, d, 3, NULL, 0, -1) == 0);
	/* The stream is the documents' tokens alone: 300 301 302 332 333. */
	static const uint32_t want[5] = {300, 301, 302, 332, 333};
	static const uint8_t flag[5] = {1, 1, 1, 0, 1};
	uint32_t in[11], tg[11];
	uint8_t mk[11];
	struct qn_loader *l = qn_loader_new(dir, QN_SHARD_TRAIN, 0, 0, &e);
	int rc = l ? qn_loader_next(l, in, tg, mk, 11, &e) : -1;
	int ok = rc == 0;
	for (size_t j = 0; ok && j < 11; j++)
		ok = in[j] == want[j % 5] && tg[j] == want[(j + 1) % 5] &&
		     mk[j] == flag[(j + 1) % 5];
	CHECK_NAMED("no eot: plain concatenation, masks kept", ok);
	if (rc)
		printf("  %s\n", e.msg);
	qn_loader_free(l);
}

static void test_refusals(void)
{
	struct qn_err e;
	const char *empty = in_top("empty");

	mkdir(empty, 0777);
	e.msg[0] = 0;
	struct qn_loader *l = qn_loader_new(empty, QN_SHARD_TRAIN, 0, 0, &e);
	CHECK_NAMED("refuses a directory without shards", !l && contains(e.msg, empty));
	printf("  (%s)\n", e.msg);
	qn_loader_free(l);
	e.msg[0] = 0;
	l = qn_loader_new(in_top("nowhere"), QN_SHARD_TRAIN, 0, 1, &e);
	CHECK_NAMED("refuses a missing directory", !l && contains(e.msg, "nowhere"));
	qn_loader_free(l);

	/* Train only: the val split has no documents. */
	const char *trainonly = in_top("trainonly");
	CHECK_NAMED("train only: written",
		    write_dir(trainonly, train_docs, NTRAIN, NULL, 0, EOT) == 0);
	e.msg[0] = 0;
	l = qn_loader_new(trainonly, QN_SHARD_VAL, 0, 1, &e);
	CHECK_NAMED("refuses a split with no documents", !l && contains(e.msg, "val"));
	printf("  (%s)\n", e.msg);
	qn_loader_free(l);
	l = qn_loader_new(trainonly, QN_SHARD_TRAIN, 0, 1, &e);
	CHECK_NAMED("the train split of it opens", l != NULL);
	qn_loader_free(l);

	/* Only empty documents, no end-of-text: nothing to train on. */
	struct tdoc d[2] = {{0, 0, {{0}}, 0, {0}}, {0, 0, {{0}}, 0, {0}}};
	const char *hollow = in_top("hollow");
	CHECK_NAMED("empty documents: written", write_dir(hollow, d, 2, NULL, 0, -1) == 0);
	e.msg[0] = 0;
	l = qn_loader_new(hollow, QN_SHARD_TRAIN, 0, 0, &e);
	CHECK_NAMED("refuses a split of empty documents without end-of-text",
		    !l && contains(e.msg, "train"));
	qn_loader_free(l);

	/* One empty document with end-of-text: a stream of one token has no target. */
	const char *single = in_top("single");
	CHECK_NAMED("one empty document: written", write_dir(single, d, 1, NULL, 0, EOT) == 0);
	l = qn_loader_new(single, QN_SHARD_TRAIN, 0, 0, &e);
	CHECK_NAMED("refuses a stream of one token", !l);
	qn_loader_free(l);

	/* Two empty documents with end-of-text: EOT EOT, both trained on. */
	const char *two = in_top("two");
	CHECK_NAMED("two empty documents: written", write_dir(two, d, 2, NULL, 0, EOT) == 0);
	l = qn_loader_new(two, QN_SHARD_TRAIN, 0, 1, &e);
	uint32_t in[3], tg[3];
	uint8_t mk[3];
	int rc = l ? qn_loader_next(l, in, tg, mk, 3, &e) : -1;
	CHECK_NAMED("two empty documents: a stream of separators",
		    rc == 0 && in[0] == EOT && in[2] == EOT && tg[2] == EOT && mk[0] && mk[1] &&
			mk[2]);
	qn_loader_free(l);
	qn_loader_free(NULL);
}

int main(void)
{

	if (make_top("test_loader") < 0)
		return 1;
	fill_ids(train_docs, NTRAIN, 100);
	fill_ids(val_docs, NVAL, 600);
	const char *dir = in_top("shards");
	int rc = write_dir(dir, train_docs, NTRAIN, val_docs, NVAL, EOT);
	CHECK_NAMED("shard directory written", rc == 0);
	if (rc == 0) {
		test_stored_order(dir);
		test_shuffle(dir);
		test_seek(dir, 0);
		test_seek(dir, 1);
		test_val(dir);
	}
	test_no_eot();
	test_refusals();
	rm_rf(top);
	return CHECK_DONE();
}
