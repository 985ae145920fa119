/*
 * eval.c - quern-audit eval: lm-evaluation-harness-style evaluations of a
 * quern-train checkpoint (with a LoRA adapter or not) on task files in
 * lm-eval's YAML (evaltask.c reads them, evalmetrics.c does the
 * arithmetic). docs/eval.md is the user's side: the supported subset, the
 * output files, every metric's definition.
 *
 * Scoring. Requests are tokenized as lm-eval's Hugging Face model does
 * (the context's trailing whitespace moves to the continuation; a
 * continuation's tokens are those of context + continuation after the
 * context's; an empty context is the end-of-text token; too long a pair is
 * cut on the left). The documents are split into chunks of --batch, which
 * -j worker threads take in turn, each with its own KV cache and the
 * model's kernels single-threaded: small models gain more from documents
 * in parallel than from splitting each product. Within a document the
 * choices of a multiple-choice item share their context: it is run once,
 * and each choice continues from a rewound cache. The trunk yields hidden
 * states only (qn_gpt2_infer_hidden); the language-model head, the vocab x
 * width product that dominates small models, runs once per chunk over
 * exactly the rows whose log-likelihoods are needed. Results do not depend
 * on -j, and each document's on nothing but the document and --batch.
 */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <jansson.h>

#include "audit.h"
#include "bpe.h"
#include "buf.h"
#include "cli.h"
#include "err.h"
#include "evalmetrics.h"
#include "evaltask.h"
#include "gpt2.h"
#include "hash.h"
#include "pool.h"
#include "utf8.h"
#include "wr.h"

#define EV_ROWS 256	      /* hidden rows batched through the LM head */
#define EV_MAX_TASKS 256      /* --tasks files */
#define EV_MAX_IDS (1u << 24) /* tokens of one encoded text */

static const char usage_text[] =
    "usage: quern-audit eval MODEL --tasks FILE.yaml [--tasks FILE ...] [--adapter DIR]\n"
    "                        [--limit N] [--num-fewshot K] [--seed S] [--batch N] [-j N]\n"
    "                        [-o results.json] [--samples FILE.jsonl] [--log-text]\n"
    "\n"
    "Evaluates a quern-train checkpoint on lm-evaluation-harness task files\n"
    "(a documented subset: local JSONL data, {{ field }} templates, output types\n"
    "loglikelihood, multiple_choice, generate_until, loglikelihood_rolling) and\n"
    "writes results JSON in lm-eval's layout to stdout or -o.\n"
    "\n"
    "Options:\n"
    "  -t, --tasks FILE         a task YAML (repeat, or separate with commas)\n"
    "      --adapter DIR        a LoRA adapter (PEFT layout) on MODEL\n"
    "      --limit N            the first N documents of each task\n"
    "      --num-fewshot K      few-shot examples (default: the task's num_fewshot, else 0)\n"
    "      --seed S             few-shot sampling seed, as lm-eval's (default 1234)\n"
    "      --batch N            documents a worker scores at once (default 32)\n"
    "  -j, --threads N          worker threads (default: one per CPU)\n"
    "  -o, --output FILE        results JSON (default stdout); written atomically\n"
    "      --samples FILE       per-document JSON Lines: hashes, log-likelihoods, metrics\n"
    "      --log-text           samples carry the documents, prompts and outputs as text\n"
    "      --bootstrap-iters N  resamples for non-mean standard errors (default 100000;\n"
    "                           0: none)\n"
    "  -q, --quiet              no warnings\n"
    "  -v, --verbose            a summary table on stderr\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 done; 1 a failure (bad task, data or model); 2 usage error.\n";

static struct {
	const char *model, *adapter, *output, *samples;
	const char *tasks[EV_MAX_TASKS];
	char *task_lists[EV_MAX_TASKS]; /* strdup'd --tasks arguments */
	size_t ntasks, nlists;
	long limit, num_fewshot, batch, threads, bootstrap;
	uint64_t seed;
	int log_text;
} opt;

/* ---- the model ------------------------------------------------------------------- */

struct model {
	struct qn_gpt2 *m;
	struct qn_bpe *tok;
	const float *wte;
	int V, C, L;
	int eot; /* end-of-text id; -1: none */
};

static int model_open(struct model *md, struct qn_err *e)
{
	memset(md, 0, sizeof *md);
	md->m = qn_gpt2_load(opt.model, e);
	if (!md->m)
		return -1;
	qn_gpt2_set_threads(md->m, 1);
	if (opt.adapter && qn_gpt2_lora_load(md->m, opt.adapter, e))
		return -1;
	md->tok = qn_bpe_load_spec(opt.model, NULL, e);
	if (!md->tok) {
		qn_err_prefix(e, "'%s': cannot load the model's tokenizer", opt.model);
		return -1;
	}
	const struct qn_gpt2_config *c = &md->m->cfg;
	if (qn_bpe_vocab_size(md->tok) > (uint32_t)c->vocab_size)
		return qn_errf(
		    e, "'%s': the tokenizer has %u ids, the model only %d: they do not match",
		    opt.model, qn_bpe_vocab_size(md->tok), c->vocab_size);
	if (c->tokenizer[0] && strcmp(c->tokenizer, qn_bpe_fingerprint(md->tok)))
		return qn_errf(
		    e,
		    "'%s': the tokenizer files (fingerprint %.12s...) are not the tokenizer "
		    "the model was made with (%.12s... in config.json)",
		    opt.model, qn_bpe_fingerprint(md->tok), c->tokenizer);
	const struct qn_gpt2_tensor *w = qn_gpt2_find(md->m, "wte.weight");
	if (!w)
		return qn_errf(e, "'%s': the model has no token embedding", opt.model);
	md->wte = md->m->params + w->offset;
	md->V = c->vocab_size;
	md->C = c->n_embd;
	md->L = c->n_positions;
	md->eot = c->eos_token_id >= 0 ? c->eos_token_id : c->bos_token_id;
	if (md->eot < 0) {
		uint32_t id = qn_bpe_special_id(md->tok, "<|endoftext|>", 13);
		md->eot = id != QN_BPE_NONE && id < (uint32_t)md->V ? (int)id : -1;
	}
	return 0;
}

static void model_close(struct model *md)
{
	qn_bpe_free(md->tok);
	qn_gpt2_free(md->m);
}

/* ---- per-document results ---------------------------------------------------------- */

struct result {
	double *ll; /* per continuation */
	int *greedy;
	char *gen; /* generate_until: the filtered output */
	size_t gen_len;
	char err[1100]; /* a failure scoring this document */
};

/* ---- workers ------------------------------------------------------------------------- */

struct job {
	const struct qn_ev_task *t;
	struct qn_ev_inst *in;
	struct result *res;
	size_t n;
	const struct model *md;
	atomic_size_t next; /* the next chunk */
	atomic_size_t done; /* documents finished */
	size_t chunk;
	uint64_t seed;
};

struct entry {
	int row;
	uint32_t target;
	double *ll;
	int *greedy;
};

struct worker {
	struct job *job;
	struct qn_gpt2_infer *g;
	struct qn_bpe_scratch *sc;
	struct qn_bpe_ids a, b; /* token scratch */
	float *hid;		/* L x C: one pass's hidden states */
	float *rows;		/* EV_ROWS x C: waiting for the head */
	float *logits;		/* EV_ROWS x V */
	float *last;		/* C: a shared context's last state */
	struct entry *ent;	/* entries of the waiting rows */
	size_t nrows, nent, ecap;
	unsigned long flushes;	    /* counts flushes: a row index is valid within one */
	struct qn_gpt2_sampler *sm; /* generate_until */
	struct qn_buf text;
	int id;
};

/* The head over the waiting rows; adds each entry's log-probability. */
static void flush(struct worker *w)
{
	const struct model *md = w->job->md;
	size_t V = (size_t)md->V, C = (size_t)md->C;
	if (w->nrows) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)w->nrows, (int)V, (int)C,
			    1.0f, w->rows, (int)C, md->wte, (int)C, 0.0f, w->logits, (int)V);
		double lse[EV_ROWS];
		uint32_t arg[EV_ROWS];
		for (size_t r = 0; r < w->nrows; r++) {
			const float *l = w->logits + r * V;
			float mx = l[0];
			uint32_t best = 0;
			for (size_t j = 1; j < V; j++)
				if (l[j] > mx) {
					mx = l[j];
					best = (uint32_t)j;
				}
			double s = 0;
			for (size_t j = 0; j < V; j++)
				s += exp((double)l[j] - mx);
			lse[r] = mx + log(s);
			arg[r] = best;
		}
		for (size_t i = 0; i < w->nent; i++) {
			const struct entry *en = &w->ent[i];
			*en->ll +=
			    (double)w->logits[(size_t)en->row * V + en->target] - lse[en->row];
			if (arg[en->row] != en->target)
				*en->greedy = 0;
		}
	}
	w->nrows = 0;
	w->nent = 0;
	w->flushes++;
}

/* Queues hidden state h (C floats); returns its row. */
static int push_row(struct worker *w, const float *h)
{
	size_t C = (size_t)w->job->md->C;
	if (w->nrows == EV_ROWS)
		flush(w);
	memcpy(w->rows + w->nrows * C, h, C * sizeof *h);
	return (int)w->nrows++;
}

static int push_entry(struct worker *w, int row, uint32_t target, double *ll, int *greedy)
{
	if (w->nent == w->ecap) {
		size_t cap = w->ecap ? 2 * w->ecap : 1024;
		struct entry *v = realloc(w->ent, cap * sizeof *v);
		if (!v)
			return -1;
		w->ent = v;
		w->ecap = cap;
	}
	w->ent[w->nent++] = (struct entry){row, target, ll, greedy};
	return 0;
}

/* Appends the ids of s[0..n) to ids. */
static int encode(struct worker *w, const char *s, size_t n, struct qn_bpe_ids *ids,
		  struct qn_err *e)
{
	return qn_bpe_encode(w->job->md->tok, w->sc, s, n, 0, ids, e);
}

/* Bytes of s without its trailing whitespace (Python's rstrip()). */
static size_t rstrip_len(const char *s, size_t n)
{
	size_t keep = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = qn_utf8_decode(s + i, n - i, &cp);
		if (k == 0)
			k = 1;
		i += k;
		if (!qn_ev_isspace(cp))
			keep = i;
	}
	return keep;
}

/*
 * Scores tokens tgt[0..k) after the cached prefix, whose last hidden state
 * is w->last (row: its queued row, or -1): rewinds to pos, runs tgt[0..k-1)
 * and queues k entries.
 */
static int score_cont(struct worker *w, int pos, unsigned long *last_gen, int *last_row,
		      const uint32_t *tgt, size_t k, double *ll, int *greedy, struct qn_err *e)
{
	size_t C = (size_t)w->job->md->C;
	*ll = 0;
	*greedy = 1;
	if (k == 0)
		return 0;
	if (*last_gen != w->flushes || *last_row < 0) {
		*last_row = push_row(w, w->last);
		*last_gen = w->flushes;
	}
	if (push_entry(w, *last_row, tgt[0], ll, greedy))
		return qn_errf(e, "out of memory");
	if (k == 1)
		return 0;
	if (qn_gpt2_infer_rewind(w->g, pos, e) ||
	    qn_gpt2_infer_hidden(w->g, tgt, (int)k - 1, w->hid, e))
		return -1;
	for (size_t i = 1; i < k; i++) {
		int r = push_row(w, w->hid + (i - 1) * C);
		if (r == 0 && *last_gen != w->flushes) { /* the flush dropped the shared row */
			*last_row = -1;
		}
		if (push_entry(w, r, tgt[i], ll, greedy))
			return qn_errf(e, "out of memory");
	}
	return 0;
}

/* One (context, continuation) pair too long for the window: cut on the left. */
static int score_cut(struct worker *w, const uint32_t *ctx, size_t nc, const uint32_t *cont,
		     size_t k, double *ll, int *greedy, struct qn_err *e)
{
	size_t L = (size_t)w->job->md->L, C = (size_t)w->job->md->C, total = nc + k;
	uint32_t *seq = malloc(total * sizeof *seq);
	if (!seq)
		return qn_errf(e, "out of memory");
	memcpy(seq, ctx, nc * sizeof *ctx);
	memcpy(seq + nc, cont, k * sizeof *cont);
	const uint32_t *keep = seq + total - (L + 1); /* the last L + 1 tokens */
	size_t kk = k < L ? k : L;		      /* targets that fit */
	*ll = 0;
	*greedy = 1;
	qn_gpt2_infer_reset(w->g);
	int rc = qn_gpt2_infer_hidden(w->g, keep, (int)L, w->hid, e);
	for (size_t i = L - kk; rc == 0 && i < L; i++) {
		int r = push_row(w, w->hid + i * C);
		if (push_entry(w, r, keep[i + 1], ll, greedy))
			rc = qn_errf(e, "out of memory");
	}
	free(seq);
	return rc;
}

/* loglikelihood and multiple_choice: every continuation of one document. */
static int score_pairs(struct worker *w, const struct qn_ev_inst *in, struct result *res,
		       struct qn_err *e)
{
	const struct qn_ev_task *t = w->job->t;
	const struct model *md = w->job->md;
	size_t L = (size_t)md->L, C = (size_t)md->C;
	size_t ncond = t->need_uncond ? in->ncont / 2 : in->ncont;
	for (int pass = 0; pass < (t->need_uncond ? 2 : 1); pass++) {
		const char *ctx = pass ? "" : in->prompt;
		size_t n = pass ? 0 : in->prompt_len, cut = rstrip_len(ctx, n);
		/* the context's tokens, shared by the choices */
		qn_bpe_ids_reset(&w->a);
		if (cut == 0) {
			if (md->eot < 0)
				return qn_errf(e,
					       "an empty context needs an end-of-text token, and "
					       "the model has none");
			w->a.v[0] = (uint32_t)md->eot;
			w->a.n = 1;
		} else if (encode(w, ctx, cut, &w->a, e)) {
			return -1;
		}
		size_t nc = w->a.n;
		int prefilled = 0, last_row = -1;
		unsigned long last_gen = 0;
		for (size_t i = pass ? ncond : 0; i < (pass ? in->ncont : ncond); i++) {
			/* continuation tokens: whole minus the context's */
			qn_bpe_ids_reset(&w->b);
			const char *cs = in->conts[i];
			size_t cl = in->cont_lens[i], skip = cut ? nc : 0;
			struct qn_buf *tb = &w->text;
			qn_buf_reset(tb);
			if (qn_buf_add(tb, ctx, n) || qn_buf_add(tb, cs, cl))
				return qn_errf(e, "text too long");
			if (tb->len && encode(w, tb->data, tb->len, &w->b, e))
				return -1;
			const uint32_t *cont = w->b.v + (skip < w->b.n ? skip : w->b.n);
			size_t k = skip < w->b.n ? w->b.n - skip : 0;
			double *ll = &res->ll[i];
			int *greedy = &res->greedy[i];
			if (nc + k > L + 1) {
				if (score_cut(w, w->a.v, nc, cont, k, ll, greedy, e))
					return -1;
				continue;
			}
			if (!prefilled) {
				qn_gpt2_infer_reset(w->g);
				if (qn_gpt2_infer_hidden(w->g, w->a.v, (int)nc, w->hid, e))
					return -1;
				memcpy(w->last, w->hid + (nc - 1) * C, C * sizeof(float));
				prefilled = 1;
				last_row = -1;
			}
			if (score_cont(w, (int)nc, &last_gen, &last_row, cont, k, ll, greedy, e))
				return -1;
		}
	}
	return 0;
}

/* loglikelihood_rolling: disjoint windows of at most L targets, each with full context. */
static int score_rolling(struct worker *w, const struct qn_ev_inst *in, struct result *res,
			 struct qn_err *e)
{
	const struct model *md = w->job->md;
	size_t L = (size_t)md->L, C = (size_t)md->C;
	qn_bpe_ids_reset(&w->b);
	if (md->eot >= 0) {
		w->b.v[0] = (uint32_t)md->eot;
		w->b.n = 1;
	}
	if (encode(w, in->conts[0], in->cont_lens[0], &w->b, e))
		return -1;
	const uint32_t *seq = w->b.v;
	size_t n = w->b.n, done = 1; /* seq[0] has nothing before it */
	res->ll[0] = 0;
	res->greedy[0] = 1;
	while (done < n) {
		size_t end = done + L < n ? done + L : n;  /* targets done .. end-1 */
		size_t s0 = end - 1 > L ? end - 1 - L : 0; /* inputs s0 .. end-2 */
		qn_gpt2_infer_reset(w->g);
		if (qn_gpt2_infer_hidden(w->g, seq + s0, (int)(end - 1 - s0), w->hid, e))
			return -1;
		for (size_t j = done; j < end; j++) {
			int r = push_row(w, w->hid + (j - 1 - s0) * C);
			if (push_entry(w, r, seq[j], &res->ll[0], &res->greedy[0]))
				return qn_errf(e, "out of memory");
		}
		done = end;
	}
	return 0;
}

struct until_arg {
	struct worker *w;
	const struct qn_ev_task *t;
	const struct model *md;
};

/* qn_gpt2_generate's stop test: an "until" string in the decoded tokens. */
static int hits_until(void *arg, const uint32_t *out, size_t n)
{
	struct until_arg *u = arg;
	struct qn_buf *tx = &u->w->text;
	struct qn_err e;
	qn_buf_reset(tx);
	if (qn_bpe_decode(u->md->tok, out, n, tx, &e) || !tx->len)
		return 0;
	for (size_t i = 0; i < u->t->nuntil; i++)
		if (u->t->until[i][0] &&
		    memmem(tx->data, tx->len, u->t->until[i], strlen(u->t->until[i])))
			return 1;
	return 0;
}

/* generate_until: greedy (or sampled) tokens until a stop string, end of text or the limit. */
static int generate(struct worker *w, const struct qn_ev_inst *in, struct result *res,
		    struct qn_err *e)
{
	const struct qn_ev_task *t = w->job->t;
	const struct model *md = w->job->md;
	size_t L = (size_t)md->L;
	qn_bpe_ids_reset(&w->a);
	if (encode(w, in->prompt, in->prompt_len, &w->a, e))
		return -1;
	if (w->a.n == 0) {
		if (md->eot < 0)
			return qn_errf(e, "an empty prompt needs an end-of-text token");
		w->a.v[0] = (uint32_t)md->eot;
		w->a.n = 1;
	}
	size_t room = L > (size_t)t->max_gen_toks ? L - (size_t)t->max_gen_toks : 1;
	size_t skip = w->a.n > room ? w->a.n - room : 0;
	uint64_t rng = w->job->seed ^ qn_mix64(in->doc_id + 1);
	qn_bpe_ids_reset(&w->b);
	if (w->b.cap < (size_t)t->max_gen_toks) {
		uint32_t *v = realloc(w->b.v, (size_t)t->max_gen_toks * sizeof *v);
		if (!v)
			return qn_errf(e, "out of memory");
		w->b.v = v;
		w->b.cap = (size_t)t->max_gen_toks;
	}
	struct until_arg ua = {w, t, md};
	int reason;
	long got = qn_gpt2_generate(w->g, w->sm, w->a.v + skip, w->a.n - skip, t->max_gen_toks,
				    md->eot, &rng, w->logits, w->b.v, t->nuntil ? hits_until : NULL,
				    &ua, &reason, e);
	if (got < 0)
		return -1;
	w->b.n = (size_t)got;
	struct qn_buf *tx = &w->text;
	qn_buf_reset(tx);
	if (w->b.n && qn_bpe_decode(md->tok, w->b.v, w->b.n, tx, e))
		return -1;
	size_t len = tx->len;
	for (size_t u = 0; u < t->nuntil; u++) { /* s = s.split(term)[0], term by term */
		size_t tl = strlen(t->until[u]);
		const char *p = tl && len ? memmem(tx->data, len, t->until[u], tl) : NULL;
		if (p)
			len = (size_t)(p - tx->data);
	}
	/* the text may end inside a character: repair it for JSON */
	struct qn_buf fixed;
	qn_buf_init(&fixed, QN_BUF_UNLIMITED);
	if (qn_utf8_repair(&fixed, tx->data ? tx->data : "", len) < 0) {
		qn_buf_release(&fixed);
		return qn_errf(e, "out of memory");
	}
	res->gen_len = fixed.len;
	res->gen = fixed.data ? qn_buf_detach(&fixed, NULL) : strdup("");
	qn_buf_release(&fixed);
	return res->gen ? 0 : qn_errf(e, "out of memory");
}

static int worker_init(struct worker *w, struct job *job, int id, struct qn_err *e)
{
	const struct model *md = job->md;
	size_t L = (size_t)md->L, C = (size_t)md->C, V = (size_t)md->V;
	memset(w, 0, sizeof *w);
	w->job = job;
	w->id = id;
	w->g = qn_gpt2_infer_new(md->m, e);
	if (!w->g)
		return -1;
	w->sc = qn_bpe_scratch_new(md->tok);
	qn_bpe_ids_init(&w->a, EV_MAX_IDS);
	qn_bpe_ids_init(&w->b, EV_MAX_IDS);
	qn_buf_init(&w->text, (size_t)QN_EV_MAX_TEXT * 2 + 16);
	w->hid = malloc(L * C * sizeof *w->hid);
	w->rows = malloc(EV_ROWS * C * sizeof *w->rows);
	w->logits = malloc(EV_ROWS * V * sizeof *w->logits);
	w->last = malloc(C * sizeof *w->last);
	/* room for one token without a grow (eot) */
	w->a.v = malloc(64 * sizeof *w->a.v);
	w->a.cap = w->a.v ? 64 : 0;
	w->b.v = malloc(64 * sizeof *w->b.v);
	w->b.cap = w->b.v ? 64 : 0;
	if (job->t->output == QN_EV_GENERATE_UNTIL) {
		double temp = job->t->do_sample ? job->t->temperature : 0;
		w->sm = qn_gpt2_sampler_new(md->V, temp, job->t->top_k, job->t->top_p);
	}
	if (!w->sc || !w->hid || !w->rows || !w->logits || !w->last || !w->a.v || !w->b.v ||
	    (job->t->output == QN_EV_GENERATE_UNTIL && !w->sm))
		return qn_errf(e, "out of memory");
	return 0;
}

static void worker_release(struct worker *w)
{
	qn_gpt2_infer_free(w->g);
	qn_bpe_scratch_free(w->sc);
	qn_bpe_ids_release(&w->a);
	qn_bpe_ids_release(&w->b);
	qn_buf_release(&w->text);
	qn_gpt2_sampler_free(w->sm);
	free(w->hid);
	free(w->rows);
	free(w->logits);
	free(w->last);
	free(w->ent);
}

static void run_chunks(struct worker *w, struct qn_progress *pg)
{
	struct job *job = w->job;
	for (;;) {
		size_t c = atomic_fetch_add(&job->next, 1), a = c * job->chunk;
		if (a >= job->n)
			break;
		size_t b = a + job->chunk < job->n ? a + job->chunk : job->n;
		for (size_t d = a; d < b; d++) {
			struct qn_err e = {{0}};
			struct result *res = &job->res[d];
			int rc;
			switch (job->t->output) {
			case QN_EV_LOGLIKELIHOOD_ROLLING:
				rc = score_rolling(w, &job->in[d], res, &e);
				break;
			case QN_EV_GENERATE_UNTIL:
				rc = generate(w, &job->in[d], res, &e);
				break;
			default:
				rc = score_pairs(w, &job->in[d], res, &e);
			}
			if (rc)
				snprintf(res->err, sizeof res->err, "%s",
					 e.msg[0] ? e.msg : "failed");
		}
		flush(w);
		size_t done = atomic_fetch_add(&job->done, b - a) + (b - a);
		if (pg)
			qn_progress_update(pg, 0, done);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
#ifdef _OPENMP
	omp_set_num_threads(1); /* the model's kernels stay on this thread */
#endif
	run_chunks(w, NULL);
	return NULL;
}

/* Scores every instance of t; 0, or -1 with the first failure reported. */
static int score_task(const struct qn_ev_task *t, const struct model *md, struct qn_ev_inst *in,
		      struct result *res, size_t n)
{
	struct job job = {.t = t, .in = in, .res = res, .n = n, .md = md};
	job.chunk = (size_t)opt.batch;
	job.seed = opt.seed;
	atomic_init(&job.next, 0);
	atomic_init(&job.done, 0);
	size_t nw = (size_t)opt.threads;
	size_t chunks = (n + job.chunk - 1) / job.chunk;
	if (nw > chunks)
		nw = chunks ? chunks : 1;
	struct worker *w = calloc(nw, sizeof *w);
	pthread_t *tid = calloc(nw, sizeof *tid);
	struct qn_err e;
	int rc = 0;
	size_t started = 0;
	if (!w || !tid) {
		qn_error("out of memory");
		free(w);
		free(tid);
		return -1;
	}
	for (size_t i = 0; i < nw && rc == 0; i++)
		if (worker_init(&w[i], &job, (int)i, &e)) {
			qn_error("%s", e.msg);
			rc = -1;
		}
	if (rc == 0) {
		struct qn_progress pg;
		qn_progress_init(&pg, 0);
		for (size_t i = 1; i < nw; i++) {
			if (pthread_create(&tid[i], NULL, worker_main, &w[i])) {
				qn_error("cannot start a thread");
				break;
			}
			started = i;
		}
		run_chunks(&w[0], &pg);
		for (size_t i = 1; i <= started; i++)
			pthread_join(tid[i], NULL);
		qn_progress_finish(&pg);
	}
	for (size_t i = 0; i < nw; i++)
		worker_release(&w[i]);
	free(w);
	free(tid);
	if (rc)
		return -1;
	for (size_t d = 0; d < n; d++)
		if (res[d].err[0]) {
			qn_error("%s:%zu: %s", t->eval.path, t->eval.lines[in[d].doc_id],
				 res[d].err);
			return -1;
		}
	return 0;
}

/* ---- metrics, results, samples ------------------------------------------------------- */

/* Per-document metric values: a[i] (and b[i] for weighted ones). */
struct series {
	double *a, *b;
	size_t k; /* labels, for f1 */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static json_t *num_or_na(double v)
{
	return isfinite(v) ? json_real(v) : json_string("N/A");
}

static void sha_hex(const char *s, size_t n, char out[65])
{
	qn_sha256_hex(s ? s : "", n, out);
}

static json_t *hashed(const char *s, size_t n)
{
	char h[65];
	sha_hex(s, n, h);
	return json_string(h);
}

/* The per-document values of every metric, and the sample lines. */
static int compute(const struct qn_ev_task *t, const struct qn_ev_inst *in,
		   const struct result *res, size_t n, struct series *ser, struct qn_wr *samples,
		   struct qn_err *e)
{
	size_t maxch = 0;
	for (size_t d = 0; d < n; d++) {
		size_t nch = t->need_uncond ? in[d].ncont / 2 : in[d].ncont;
		maxch = nch > maxch ? nch : maxch;
	}
	for (size_t m = 0; m < t->nmetrics; m++) {
		ser[m].a = calloc(n ? n : 1, sizeof(double));
		ser[m].b = calloc(n ? n : 1, sizeof(double));
		ser[m].k = maxch + 1; /* the last label: no choice matched */
		if (!ser[m].a || !ser[m].b)
			return qn_errf(e, "out of memory");
	}
	for (size_t d = 0; d < n; d++) {
		const struct qn_ev_inst *x = &in[d];
		const struct result *r = &res[d];
		size_t nch = t->need_uncond ? x->ncont / 2 : x->ncont;
		struct qn_ev_mc mc = {0};
		if (t->output == QN_EV_MULTIPLE_CHOICE)
			qn_ev_mc_score(r->ll, r->greedy, x->choice_chars,
				       t->need_uncond ? r->ll + nch : NULL, nch, x->gold, &mc);
		json_t *line = samples ? json_object() : NULL;
		json_t *mnames = samples ? json_array() : NULL;
		for (size_t m = 0; m < t->nmetrics; m++) {
			const struct qn_ev_metric *mt = &t->metrics[m];
			double a = 0, b = 0;
			json_t *sv = NULL;
			switch (mt->id) {
			case QN_EVM_ACC:
				a = t->output == QN_EV_MULTIPLE_CHOICE ? mc.acc : r->greedy[0] != 0;
				break;
			case QN_EVM_ACC_NORM:
				a = mc.acc_norm;
				break;
			case QN_EVM_ACC_MUTUAL_INFO:
				a = mc.acc_mutual_info;
				break;
			case QN_EVM_EXACT_MATCH:
				if (t->output == QN_EV_MULTIPLE_CHOICE) {
					a = mc.exact_match;
				} else {
					int em = qn_ev_exact_match(&mt->em, r->gen, r->gen_len,
								   x->gold_text, x->gold_len, e);
					if (em < 0)
						return -1;
					a = em;
				}
				break;
			case QN_EVM_F1:
				a = x->gold >= 0 ? (double)x->gold : (double)maxch;
				b = (double)mc.pred;
				sv = json_pack("[I,I]", (json_int_t)(x->gold >= 0 ? x->gold : -100),
					       (json_int_t)mc.pred);
				break;
			case QN_EVM_PERPLEXITY:
				a = r->ll[0];
				break;
			case QN_EVM_WORD_PERPLEXITY:
				a = r->ll[0];
				b = (double)qn_ev_words(x->conts[0], x->cont_lens[0]);
				sv = json_pack("[f,f]", a, b);
				break;
			case QN_EVM_BYTE_PERPLEXITY:
			case QN_EVM_BITS_PER_BYTE:
				a = r->ll[0];
				b = (double)x->cont_lens[0];
				sv = json_pack("[f,f]", a, b);
				break;
			}
			ser[m].a[d] = a;
			ser[m].b[d] = b;
			if (line) {
				json_object_set_new(line, mt->name, sv ? sv : json_real(a));
				json_array_append_new(mnames, json_string(mt->name));
			}
		}
		if (!line)
			continue;
		/* lm-eval's sample line, with hashes in place of text unless --log-text */
		json_t *o = json_object(), *args = json_object(), *resps = json_array(),
		       *filt = json_array();
		json_object_set_new(o, "doc_id", json_integer((json_int_t)x->doc_id));
		json_object_set_new(o, "task", json_string(t->name));
		json_t *doc = t->eval.docs[x->doc_id];
		char *docs = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		struct qn_buf tg;
		qn_buf_init(&tg, QN_BUF_UNLIMITED);
		qn_ev_pystr(x->target, &tg);
		if (opt.log_text) {
			json_object_set(o, "doc", doc);
			json_object_set(o, "target", x->target);
		}
		size_t nreq = t->output == QN_EV_GENERATE_UNTIL ? 1 : x->ncont;
		for (size_t q = 0; q < nreq; q++) {
			char key[32];
			snprintf(key, sizeof key, "gen_args_%zu", q);
			const int uncond = t->need_uncond && q >= nch;
			const char *a0 = uncond ? "" : x->prompt;
			size_t l0 = uncond ? 0 : x->prompt_len;
			json_t *ga = json_object();
			if (opt.log_text)
				json_object_set_new(ga, "arg_0", json_stringn_nocheck(a0, l0));
			else
				json_object_set_new(ga, "arg_0", hashed(a0, l0));
			if (t->output == QN_EV_GENERATE_UNTIL) {
				json_object_set(ga, "arg_1",
						json_object_get(t->config, "generation_kwargs"));
			} else if (t->output != QN_EV_LOGLIKELIHOOD_ROLLING) {
				if (opt.log_text)
					json_object_set_new(
					    ga, "arg_1",
					    json_stringn_nocheck(x->conts[q], x->cont_lens[q]));
				else
					json_object_set_new(ga, "arg_1",
							    hashed(x->conts[q], x->cont_lens[q]));
			}
			json_object_set_new(args, key, ga);
			if (t->output == QN_EV_GENERATE_UNTIL)
				continue;
			json_t *pair = t->output == QN_EV_LOGLIKELIHOOD_ROLLING
					   ? json_real(r->ll[q])
					   : json_pack("[f,b]", r->ll[q], r->greedy[q]);
			json_array_append_new(resps, json_pack("[O]", pair));
			json_array_append_new(filt, pair);
		}
		if (t->output == QN_EV_GENERATE_UNTIL) {
			json_t *g = opt.log_text ? json_stringn_nocheck(r->gen, r->gen_len)
						 : hashed(r->gen, r->gen_len);
			json_array_append_new(resps, json_pack("[O]", g));
			json_array_append_new(filt, g);
		}
		json_object_set_new(o, opt.log_text ? "arguments" : "arguments_hashes", args);
		if (t->output == QN_EV_GENERATE_UNTIL && !opt.log_text) {
			json_decref(resps);
			json_object_set_new(o, "filtered_resps_hashes", filt);
		} else {
			json_object_set_new(o, "resps", resps);
			json_object_set_new(o, "filtered_resps", filt);
		}
		json_object_set_new(o, "filter", json_string("none"));
		json_object_set_new(o, "metrics", mnames);
		json_object_set_new(o, "doc_hash", hashed(docs, docs ? strlen(docs) : 0));
		json_object_set_new(o, "prompt_hash", hashed(x->prompt, x->prompt_len));
		json_object_set_new(o, "target_hash", hashed(tg.data, tg.len));
		free(docs);
		qn_buf_release(&tg);
		json_t *sh = json_array();
		for (size_t s = 0; s < x->nshots; s++)
			json_array_append_new(sh, json_integer((json_int_t)x->shots[s]));
		json_object_set_new(o, "fewshot_doc_ids", sh);
		json_object_update(o, line);
		json_decref(line);
		char *s = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		if (!s)
			return qn_errf(e, "out of memory");
		size_t len = strlen(s);
		s[len] = '\n';
		int rc = qn_wr_write(samples, s, len + 1, e);
		free(s);
		if (rc)
			return -1;
	}
	return 0;
}

static void print_table(json_t *results)
{
	const char *task;
	json_t *r;
	fprintf(stderr, "|Task|Metric|Value|Stderr|\n|---|---|---:|---:|\n");
	json_object_foreach(results, task, r)
	{
		const char *k;
		json_t *v;
		json_object_foreach(r, k, v)
		{
			const char *comma = strchr(k, ',');
			if (!comma || strstr(k, "_stderr,"))
				continue;
			char sk[256];
			snprintf(sk, sizeof sk, "%.*s_stderr%s", (int)(comma - k), k, comma);
			json_t *se = json_object_get(r, sk);
			fprintf(stderr, "|%s|%.*s|%.4f|", task, (int)(comma - k), k,
				json_number_value(v));
			if (json_is_number(se))
				fprintf(stderr, "%.4f|\n", json_number_value(se));
			else
				fprintf(stderr, "N/A|\n");
		}
	}
}

static int add_task_arg(char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	if (!copy || opt.nlists >= EV_MAX_TASKS)
		return -1;
	opt.task_lists[opt.nlists++] = copy;
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (opt.ntasks >= EV_MAX_TASKS)
			return -1;
		opt.tasks[opt.ntasks++] = p;
	}
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"tasks", required_argument, NULL, 't'},
	    {"adapter", required_argument, NULL, 'A'},
	    {"limit", required_argument, NULL, 'l'},
	    {"num-fewshot", required_argument, NULL, 'k'},
	    {"seed", required_argument, NULL, 's'},
	    {"batch", required_argument, NULL, 'b'},
	    {"threads", required_argument, NULL, 'j'},
	    {"output", required_argument, NULL, 'o'},
	    {"samples", required_argument, NULL, 'S'},
	    {"log-text", no_argument, NULL, 'T'},
	    {"bootstrap-iters", required_argument, NULL, 'B'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	double d;
	int c;
	opt.limit = -1;
	opt.num_fewshot = -1;
	opt.seed = 1234;
	opt.batch = 32;
	opt.threads = 0;
	opt.bootstrap = 100000;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:j:o:qvh", longs, NULL)) != -1) {
		switch (c) {
		case 't':
			if (add_task_arg(optarg))
				return qn_usage_error("too many --tasks (at most %d)",
						      EV_MAX_TASKS);
			break;
		case 'A':
			opt.adapter = optarg;
			break;
		case 'l':
			if (qn_parse_number("--limit", optarg, 0, 1e12, &d))
				return QN_EXIT_USAGE;
			opt.limit = (long)d;
			break;
		case 'k':
			if (qn_parse_number("--num-fewshot", optarg, 0, 100000, &d))
				return QN_EXIT_USAGE;
			opt.num_fewshot = (long)d;
			break;
		case 's':
			if (qn_parse_number("--seed", optarg, 0, 18446744073709551615.0, &d))
				return QN_EXIT_USAGE;
			opt.seed = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			if (qn_parse_number("--batch", optarg, 1, 1 << 20, &d))
				return QN_EXIT_USAGE;
			opt.batch = (long)d;
			break;
		case 'j':
			if (qn_parse_number("-j", optarg, 0, 1024, &d))
				return QN_EXIT_USAGE;
			opt.threads = (long)d;
			break;
		case 'o':
			opt.output = optarg;
			break;
		case 'S':
			opt.samples = optarg;
			break;
		case 'T':
			opt.log_text = 1;
			break;
		case 'B':
			if (qn_parse_number("--bootstrap-iters", optarg, 0, 1e8, &d))
				return QN_EXIT_USAGE;
			opt.bootstrap = (long)d;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case ':':
			return qn_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return qn_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return qn_usage_error("eval needs a MODEL directory");
	if (optind + 1 < argc)
		return qn_usage_error("unexpected argument '%s' (one MODEL)", argv[optind + 1]);
	opt.model = argv[optind];
	if (opt.ntasks == 0)
		return qn_usage_error("eval needs --tasks FILE.yaml");
	if (opt.threads == 0)
		opt.threads = qn_ncpu();
	return 0;
}

/* One task: load, build, score, aggregate; adds to the output objects. */
static int run_task(const char *path, const struct model *md, json_t *out, struct qn_wr *samples)
{
	struct qn_ev_task t;
	struct qn_err e;
	struct qn_ev_inst *in = NULL;
	struct result *res = NULL;
	struct series *ser = NULL;
	size_t n = 0;
	int rc = -1;
	if (qn_ev_task_load(path, &t, &e)) {
		qn_error("%s", e.msg);
		goto done;
	}
	long k = opt.num_fewshot >= 0 ? opt.num_fewshot : t.num_fewshot >= 0 ? t.num_fewshot : 0;
	if (opt.num_fewshot >= 0 && t.num_fewshot >= 0 && opt.num_fewshot != t.num_fewshot)
		qn_warn("%s: --num-fewshot %ld overrides the task's num_fewshot %ld", path,
			opt.num_fewshot, t.num_fewshot);
	if (json_object_get(json_object_get(out, "results"), t.name)) {
		qn_error("%s: task '%s' is given twice", path, t.name);
		goto done;
	}
	if (qn_ev_task_load_data(&t, k, &e) ||
	    qn_ev_task_build(&t, k, opt.seed, opt.limit, &in, &n, &e)) {
		qn_error("%s", e.msg);
		goto done;
	}
	res = calloc(n ? n : 1, sizeof *res);
	ser = calloc(t.nmetrics, sizeof *ser);
	if (!res || !ser) {
		qn_error("out of memory");
		goto done;
	}
	for (size_t d = 0; d < n; d++) {
		res[d].ll = calloc(in[d].ncont ? in[d].ncont : 1, sizeof(double));
		res[d].greedy = calloc(in[d].ncont ? in[d].ncont : 1, sizeof(int));
		if (!res[d].ll || !res[d].greedy) {
			qn_error("out of memory");
			goto done;
		}
	}
	double t0 = now_s();
	if (n && score_task(&t, md, in, res, n))
		goto done;
	qn_info("%s: %zu documents in %.2f s", t.name, n, now_s() - t0);
	if (compute(&t, in, res, n, ser, samples, &e)) {
		qn_error("%s: %s", t.name, e.msg);
		goto done;
	}
	/* results[task]: alias, then each metric and its standard error */
	json_t *r = json_object(), *hib = json_object();
	json_object_set_new(r, "alias", json_string(t.alias));
	for (size_t m = 0; m < t.nmetrics; m++) {
		const struct qn_ev_metric *mt = &t.metrics[m];
		int weighted = mt->agg == QN_EV_WEIGHTED_PERPLEXITY ||
			       mt->agg == QN_EV_BITS_PER_BYTE || mt->agg == QN_EV_MACRO_F1;
		double v =
		    qn_ev_aggregate(mt->agg, ser[m].a, weighted ? ser[m].b : NULL, n, ser[m].k);
		double se =
		    mt->agg == QN_EV_MEAN ? qn_ev_mean_stderr(ser[m].a, n)
		    : opt.bootstrap > 1
			? qn_ev_bootstrap_stderr(mt->agg, ser[m].a, weighted ? ser[m].b : NULL, n,
						 ser[m].k, opt.bootstrap, opt.seed ^ (m + 1))
			: NAN;
		char key[128];
		snprintf(key, sizeof key, "%s,none", mt->name);
		json_object_set_new(r, key, num_or_na(v));
		snprintf(key, sizeof key, "%s_stderr,none", mt->name);
		json_object_set_new(r, key, num_or_na(se));
		json_object_set_new(hib, mt->name, json_boolean(mt->higher_is_better));
	}
	json_object_set_new(json_object_get(out, "results"), t.name, r);
	json_object_set_new(json_object_get(out, "group_subtasks"), t.name, json_array());
	json_t *cfg = json_deep_copy(t.config);
	json_object_set_new(cfg, "num_fewshot", json_integer(k));
	json_object_set_new(cfg, "quern",
			    json_pack("{s:s,s:s?,s:s,s:s?}", "eval_data", t.data_eval,
				      "fewshot_data", t.data_fewshot, "eval_split", t.eval_split,
				      "fewshot_split", k > 0 ? t.fewshot_split : NULL));
	json_object_set_new(json_object_get(out, "configs"), t.name, cfg);
	json_object_set(json_object_get(out, "versions"), t.name, t.version);
	json_object_set_new(json_object_get(out, "n-shot"), t.name, json_integer(k));
	json_object_set_new(json_object_get(out, "higher_is_better"), t.name, hib);
	json_object_set_new(
	    json_object_get(out, "n-samples"), t.name,
	    json_pack("{s:I,s:I}", "original", (json_int_t)t.eval.n, "effective", (json_int_t)n));
	rc = 0;
done:
	for (size_t d = 0; res && d < n; d++) {
		free(res[d].ll);
		free(res[d].greedy);
		free(res[d].gen);
	}
	free(res);
	for (size_t m = 0; ser && m < t.nmetrics; m++) {
		free(ser[m].a);
		free(ser[m].b);
	}
	free(ser);
	qn_ev_insts_free(in, n);
	qn_ev_task_release(&t);
	return rc;
}

int eval_main(int argc, char **argv)
{
	struct qn_err e;
	int rc = parse_args(argc, argv);
	if (rc)
		goto out_args;
	double t0 = now_s();
	struct model md;
	struct qn_wr *samples = NULL;
	json_t *out = json_object();
	static const char *const sections[] = {"results",  "group_subtasks", "configs",
					       "versions", "n-shot",	     "higher_is_better",
					       "n-samples"};
	for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
		json_object_set_new(out, sections[i], json_object());
	rc = QN_EXIT_FAIL;
	if (model_open(&md, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (opt.samples && !(samples = qn_wr_open(opt.samples, 0, &e))) {
		qn_error("%s", e.msg);
		goto out;
	}
	for (size_t i = 0; i < opt.ntasks; i++)
		if (run_task(opt.tasks[i], &md, out, samples))
			goto out;
	/* config and the run's facts, under lm-eval's names */
	char margs[8192];
	snprintf(margs, sizeof margs, "pretrained=%s%s%s", opt.model, opt.adapter ? ",peft=" : "",
		 opt.adapter ? opt.adapter : "");
	json_t *cfg = json_pack(
	    "{s:s,s:s,s:I,s:s,s:I,s:[],s:s,s:n,s:o,s:I,s:n,s:i,s:I,s:I,s:I,s:I}", "model", "quern",
	    "model_args", margs, "model_num_parameters", (json_int_t)qn_gpt2_nparams(md.m),
	    "model_dtype", "float32", "batch_size", (json_int_t)opt.batch, "batch_sizes", "device",
	    "cpu", "use_cache", "limit", opt.limit >= 0 ? json_integer(opt.limit) : json_null(),
	    "bootstrap_iters", (json_int_t)opt.bootstrap, "gen_kwargs", "random_seed", 0,
	    "numpy_seed", (json_int_t)1234, "torch_seed", (json_int_t)1234, "fewshot_seed",
	    (json_int_t)opt.seed, "threads", (json_int_t)opt.threads);
	json_object_set_new(out, "config", cfg);
	json_object_set_new(out, "git_hash", json_null());
	json_object_set_new(out, "date", json_real(t0));
	json_object_set_new(out, "tokenizer_fingerprint", json_string(qn_bpe_fingerprint(md.tok)));
	json_object_set_new(out, "eot_token_id", md.eot >= 0 ? json_integer(md.eot) : json_null());
	json_object_set_new(out, "max_length", json_integer(md.L));
	json_object_set_new(out, "quern_version", json_string(QN_VERSION));
	char secs[64];
	snprintf(secs, sizeof secs, "%.4f", now_s() - t0);
	json_object_set_new(out, "total_evaluation_time_seconds", json_string(secs));
	if (qn_verbosity > 0)
		print_table(json_object_get(out, "results"));
	char *s = json_dumps(out, JSON_INDENT(2));
	if (!s) {
		qn_error("out of memory");
		goto out;
	}
	size_t len = strlen(s);
	s[len] = '\n';
	struct qn_wr *w = qn_wr_open(opt.output ? opt.output : "-", 0, &e);
	if (!w || qn_wr_write(w, s, len + 1, &e)) {
		if (w)
			qn_wr_abort(w);
		qn_error("%s", e.msg);
		free(s);
		goto out;
	}
	free(s);
	if (samples) {
		int c = qn_wr_commit(samples, NULL, &e);
		samples = NULL;
		if (c) {
			qn_wr_abort(w);
			qn_error("%s", e.msg);
			goto out;
		}
	}
	if (qn_wr_commit(w, NULL, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	rc = QN_EXIT_OK;
out:
	if (samples)
		qn_wr_abort(samples);
	json_decref(out);
	model_close(&md);
out_args:
	for (size_t i = 0; i < opt.nlists; i++)
		free(opt.task_lists[i]);
	if (rc == -1)
		return qn_close_stdout(QN_EXIT_OK); /* --help */
	return qn_close_stdout(rc);
}
