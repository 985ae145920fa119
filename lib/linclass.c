/*
 * linclass.c - see linclass.h.
 *
 * The kernels are plain loops over dim (the embedding width) written so
 * gcc vectorizes them at -O3 without -ffast-math: sums run in eight
 * interleaved lanes with a fixed order, so results do not depend on the
 * vector width and one thread is reproducible bit for bit.
 */
#include "linclass.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "err.h"
#include "hash.h"
#include "safetensors.h"
#include "wr.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "linclass stores U32 bucket ids in host order: little-endian hosts only"
#endif

#define T_BUCKETS "embeddings.bucket_ids"
#define T_INPUT "embeddings.weight"
#define T_OUTPUT "classifier.weight"

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull
#define NGRAM_MULT 116049371ull /* fastText's word n-gram combiner */
#define SALT_WORD 0x8f1bbcdcbfa53e0bull
#define SALT_NGRAM 0x6a09e667f3bcc909ull
#define SALT_CHAR 0xbb67ae8584caa73bull
#define MAX_FEATS ((size_t)1 << 31)

void qn_lc_params_default(struct qn_lc_params *p)
{
	p->dim = 64;
	p->word_ngrams = 2;
	p->minn = 0;
	p->maxn = 0;
	p->buckets = 2000000;
	p->lowercase = 1;
}

int qn_lc_params_check(const struct qn_lc_params *p, struct qn_err *e)
{
	if (p->dim < 1 || p->dim > QN_LC_MAX_DIM)
		return qn_errf(e, "dim must be from 1 to %d, not %d", QN_LC_MAX_DIM, p->dim);
	if (p->word_ngrams < 1 || p->word_ngrams > QN_LC_MAX_WORD_NGRAMS)
		return qn_errf(e, "word_ngrams must be from 1 to %d, not %d", QN_LC_MAX_WORD_NGRAMS,
			       p->word_ngrams);
	if (p->maxn < 0 || p->maxn > QN_LC_MAX_CHAR_NGRAM)
		return qn_errf(e, "maxn must be from 0 to %d, not %d", QN_LC_MAX_CHAR_NGRAM,
			       p->maxn);
	if (p->maxn > 0 && (p->minn < 1 || p->minn > p->maxn))
		return qn_errf(e, "minn must be from 1 to maxn (%d), not %d", p->maxn, p->minn);
	if (p->maxn == 0 && (p->minn < 0 || p->minn > QN_LC_MAX_CHAR_NGRAM))
		return qn_errf(e, "minn must be from 0 to %d, not %d", QN_LC_MAX_CHAR_NGRAM,
			       p->minn);
	if (p->buckets < 1 || p->buckets > QN_LC_MAX_BUCKETS)
		return qn_errf(e, "buckets must be from 1 to %u, not %u", QN_LC_MAX_BUCKETS,
			       p->buckets);
	if (p->lowercase != 0 && p->lowercase != 1)
		return qn_errf(e, "lowercase must be 0 or 1");
	return 0;
}

/* ---- features ---------------------------------------------------------------- */

enum { C_WORD, C_SPACE, C_PUNCT };

static unsigned char byte_class[256];
static pthread_once_t class_once = PTHREAD_ONCE_INIT;

static void class_setup(void)
{
	for (int c = 0; c < 256; c++) {
		if (c == ' ' || (c >= '\t' && c <= '\r'))
			byte_class[c] = C_SPACE;
		else if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') ||
			 (c >= '[' && c <= '`') || (c >= '{' && c <= '~'))
			byte_class[c] = C_PUNCT;
		else
			byte_class[c] = C_WORD;
	}
}

/* Multiply-shift onto [0, buckets) of a scrambled hash. */
static inline uint32_t to_bucket(uint64_t h, uint64_t salt, uint32_t buckets)
{
	return (uint32_t)(((qn_mix64(h ^ salt) >> 32) * (uint64_t)buckets) >> 32);
}

static inline unsigned char fold(unsigned char c, int lower)
{
	return lower && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int push_feat(struct qn_lc_feats *f, uint32_t id)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		if (cap > MAX_FEATS)
			return -1;
		uint32_t *p = realloc(f->id, cap * sizeof *p);
		if (!p)
			return -1;
		f->id = p;
		f->cap = cap;
	}
	f->id[f->n++] = id;
	return 0;
}

static int push_tok(struct qn_lc_feats *f, uint64_t h)
{
	if (f->ntok == f->tokcap) {
		size_t cap = f->tokcap ? f->tokcap * 2 : 256;
		uint64_t *p = realloc(f->tok, cap * sizeof *p);
		if (!p)
			return -1;
		f->tok = p;
		f->tokcap = cap;
	}
	f->tok[f->ntok++] = h;
	return 0;
}

/* fastText's computeSubwords over "<token>", hashing as it extends. */
static int char_ngrams(const struct qn_lc_params *p, const char *s, size_t n, struct qn_lc_feats *f)
{
	unsigned char w[QN_LC_CHAR_NGRAM_TOKEN_MAX + 2];
	size_t len = n + 2;

	w[0] = '<';
	for (size_t i = 0; i < n; i++)
		w[i + 1] = fold((unsigned char)s[i], p->lowercase);
	w[n + 1] = '>';
	for (size_t i = 0; i < len; i++) {
		if ((w[i] & 0xC0) == 0x80)
			continue;
		uint64_t h = FNV_OFFSET;
		size_t j = i;
		for (int k = 1; j < len && k <= p->maxn; k++) {
			h = (h ^ w[j++]) * FNV_PRIME;
			while (j < len && (w[j] & 0xC0) == 0x80)
				h = (h ^ w[j++]) * FNV_PRIME;
			if (k >= p->minn && !(k == 1 && (i == 0 || j == len)) &&
			    push_feat(f, to_bucket(h, SALT_CHAR, p->buckets)))
				return -1;
		}
	}
	return 0;
}

void qn_lc_feats_init(struct qn_lc_feats *f)
{
	memset(f, 0, sizeof *f);
}

void qn_lc_feats_release(struct qn_lc_feats *f)
{
	free(f->id);
	free(f->tok);
	memset(f, 0, sizeof *f);
}

long qn_lc_features(const struct qn_lc_params *p, const char *text, size_t len,
		    struct qn_lc_feats *f)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t i = 0;

	pthread_once(&class_once, class_setup);
	f->n = 0;
	f->ntok = 0;
	while (i < len) {
		unsigned cls = byte_class[t[i]];
		if (cls == C_SPACE) {
			i++;
			continue;
		}
		size_t s = i;
		uint64_t h = FNV_OFFSET;
		while (i < len && byte_class[t[i]] == cls)
			h = (h ^ fold(t[i++], p->lowercase)) * FNV_PRIME;
		if (push_tok(f, h) || push_feat(f, to_bucket(h, SALT_WORD, p->buckets)))
			return -1;
		if (p->maxn > 0 && cls == C_WORD && i - s <= QN_LC_CHAR_NGRAM_TOKEN_MAX &&
		    char_ngrams(p, text + s, i - s, f))
			return -1;
	}
	for (size_t a = 0; a < f->ntok; a++) {
		uint64_t h = f->tok[a];
		for (int n = 2; n <= p->word_ngrams && a + (size_t)n - 1 < f->ntok; n++) {
			h = h * NGRAM_MULT + f->tok[a + (size_t)n - 1];
			if (push_feat(f, to_bucket(h, SALT_NGRAM + (uint64_t)n, p->buckets)))
				return -1;
		}
	}
	return f->ntok > (size_t)0x7fffffff ? -1 : (long)f->ntok;
}

/* ---- the model --------------------------------------------------------------- */

static char *dupn(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

struct qn_lc_model *qn_lc_model_new(const struct qn_lc_params *p, const char *const *labels,
				    size_t k, struct qn_err *e)
{
	if (qn_lc_params_check(p, e))
		return NULL;
	if (k < 1 || k > QN_LC_MAX_LABELS) {
		qn_errf(e, "the labels must number from 1 to %d, not %zu", QN_LC_MAX_LABELS, k);
		return NULL;
	}
	struct qn_lc_model *m = calloc(1, sizeof *m);
	if (!m || !(m->labels = calloc(k, sizeof *m->labels)))
		goto oom;
	m->p = *p;
	m->k = k;
	for (size_t i = 0; i < k; i++)
		if (!(m->labels[i] = dupn(labels[i])))
			goto oom;
	m->tmask = 1023;
	if (!(m->table = malloc((m->tmask + 1) * sizeof *m->table)))
		goto oom;
	memset(m->table, 0xff, (m->tmask + 1) * sizeof *m->table);
	return m;
oom:
	qn_lc_model_free(m);
	qn_errf(e, "out of memory");
	return NULL;
}

void qn_lc_model_free(struct qn_lc_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->labels && i < m->k; i++)
		free(m->labels[i]);
	free(m->labels);
	free(m->row_bucket);
	free(m->table);
	free(m->in);
	free(m->out);
	free(m);
}

static inline size_t slot_of(uint32_t bucket, size_t mask)
{
	return (size_t)((bucket * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The row of bucket, or QN_LC_NO_ROW; *slot gets where it is or would go. */
static inline uint32_t table_find(const struct qn_lc_model *m, uint32_t bucket, size_t *slot)
{
	size_t s = slot_of(bucket, m->tmask);
	for (;;) {
		uint64_t v = m->table[s];
		if (v == UINT64_MAX)
			break;
		if ((uint32_t)(v >> 32) == bucket) {
			*slot = s;
			return (uint32_t)v;
		}
		s = (s + 1) & m->tmask;
	}
	*slot = s;
	return QN_LC_NO_ROW;
}

static int table_grow(struct qn_lc_model *m)
{
	size_t cap = (m->tmask + 1) * 2;
	uint64_t *t = malloc(cap * sizeof *t), *old = m->table;
	size_t oldcap = m->tmask + 1, s;
	if (!t)
		return -1;
	memset(t, 0xff, cap * sizeof *t);
	m->table = t;
	m->tmask = cap - 1;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] != UINT64_MAX) {
			table_find(m, (uint32_t)(old[i] >> 32), &s);
			t[s] = old[i];
		}
	free(old);
	return 0;
}

/* Adds bucket as the next row; -1 when memory ran out or rows are full. */
static int add_row(struct qn_lc_model *m, uint32_t bucket, size_t slot)
{
	if (m->rows >= QN_LC_MAX_BUCKETS)
		return -1;
	if (m->rows == m->rows_cap) {
		size_t cap = m->rows_cap ? m->rows_cap * 2 : 1024;
		uint32_t *p = realloc(m->row_bucket, cap * sizeof *p);
		if (!p)
			return -1;
		m->row_bucket = p;
		m->rows_cap = cap;
	}
	m->table[slot] = (uint64_t)bucket << 32 | (uint32_t)m->rows;
	m->row_bucket[m->rows++] = bucket;
	if (2 * m->rows > m->tmask + 1)
		return table_grow(m);
	return 0;
}

int qn_lc_model_map(struct qn_lc_model *m, uint32_t *ids, size_t n, int add)
{
	size_t slot;
	for (size_t i = 0; i < n; i++) {
		uint32_t r = table_find(m, ids[i], &slot);
		if (r == QN_LC_NO_ROW && add) {
			if (m->in || add_row(m, ids[i], slot))
				return -1;
			r = (uint32_t)(m->rows - 1);
		}
		ids[i] = r;
	}
	return 0;
}

int qn_lc_model_init_weights(struct qn_lc_model *m, uint64_t seed, struct qn_err *e)
{
	size_t d = (size_t)m->p.dim;
	free(m->in);
	free(m->out);
	m->in = calloc(m->rows ? m->rows * d : 1, sizeof *m->in);
	m->out = malloc(m->k * d * sizeof *m->out);
	if (!m->in || !m->out)
		return qn_errf(e, "out of memory (%zu rows of %zu floats)", m->rows, d);
	uint64_t st = seed ^ 0x5851f42d4c957f2dull;
	float a = 1.0f / sqrtf((float)d);
	for (size_t i = 0; i < m->k * d; i++) {
		double u = (double)(qn_splitmix64(&st) >> 11) * 0x1p-53;
		m->out[i] = (float)((2.0 * u - 1.0) * a);
	}
	return 0;
}

long qn_lc_label_id(const struct qn_lc_model *m, const char *name)
{
	for (size_t i = 0; i < m->k; i++)
		if (!strcmp(m->labels[i], name))
			return (long)i;
	return -1;
}

/* ---- kernels ----------------------------------------------------------------- */

/* y[0..n) += a * x[0..n) */
static inline void axpy(float *restrict y, const float *restrict x, float a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += a * x[i];
}

/* y[0..n) += x[0..n) */
static inline void vadd(float *restrict y, const float *restrict x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

/* Dot product in eight lanes, summed in a fixed order. */
static inline float dot(const float *restrict a, const float *restrict b, size_t n)
{
	float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			l[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		l[i & 7] += a[i] * b[i];
	return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

/* hidden[dim] = mean of the rows (NO_ROW counts as a zero row). */
static void mean_rows(const struct qn_lc_model *m, const uint32_t *rows, size_t n, float *hidden)
{
	size_t d = (size_t)m->p.dim;
	memset(hidden, 0, d * sizeof *hidden);
	for (size_t i = 0; i < n; i++)
		if (rows[i] != QN_LC_NO_ROW)
			vadd(hidden, m->in + (size_t)rows[i] * d, d);
	if (n > 1) {
		float s = 1.0f / (float)n;
		for (size_t j = 0; j < d; j++)
			hidden[j] *= s;
	}
}

/* probs[k] = softmax(out . hidden); returns the arg max. */
static size_t output_softmax(const struct qn_lc_model *m, const float *hidden, float *probs)
{
	size_t d = (size_t)m->p.dim, best = 0;
	float mx = -INFINITY, sum = 0;
	for (size_t k = 0; k < m->k; k++) {
		probs[k] = dot(m->out + k * d, hidden, d);
		if (probs[k] > mx) {
			mx = probs[k];
			best = k;
		}
	}
	for (size_t k = 0; k < m->k; k++) {
		probs[k] = expf(probs[k] - mx);
		sum += probs[k];
	}
	float inv = 1.0f / sum;
	for (size_t k = 0; k < m->k; k++)
		probs[k] *= inv;
	return best;
}

size_t qn_lc_forward(const struct qn_lc_model *m, const uint32_t *rows, size_t n, float *hidden,
		     float *probs)
{
	mean_rows(m, rows, n, hidden);
	return output_softmax(m, hidden, probs);
}

double qn_lc_step(struct qn_lc_model *m, const uint32_t *rows, size_t n, size_t gold, float lr,
		  float *hidden, float *grad, float *probs)
{
	size_t d = (size_t)m->p.dim;
	qn_lc_forward(m, rows, n, hidden, probs);
	double loss = -log(probs[gold] > 1e-30f ? (double)probs[gold] : 1e-30);
	memset(grad, 0, d * sizeof *grad);
	/* fastText's softmax loss: for each label, alpha = lr (y - p). */
	for (size_t k = 0; k < m->k; k++) {
		float a = lr * ((k == gold ? 1.0f : 0.0f) - probs[k]);
		float *o = m->out + k * d;
		axpy(grad, o, a, d);
		axpy(o, hidden, a, d);
	}
	if (n > 1) {
		float s = 1.0f / (float)n;
		for (size_t j = 0; j < d; j++)
			grad[j] *= s;
	}
	for (size_t i = 0; i < n; i++)
		if (rows[i] != QN_LC_NO_ROW)
			vadd(m->in + (size_t)rows[i] * d, grad, d);
	return loss;
}

int qn_lc_scratch_init(struct qn_lc_scratch *s, const struct qn_lc_model *m)
{
	qn_lc_feats_init(&s->f);
	s->hidden = malloc((size_t)m->p.dim * sizeof *s->hidden);
	s->probs = malloc(m->k * sizeof *s->probs);
	if (!s->hidden || !s->probs) {
		qn_lc_scratch_release(s);
		return -1;
	}
	return 0;
}

void qn_lc_scratch_release(struct qn_lc_scratch *s)
{
	qn_lc_feats_release(&s->f);
	free(s->hidden);
	free(s->probs);
	s->hidden = s->probs = NULL;
}

long qn_lc_predict(const struct qn_lc_model *m, const char *text, size_t len,
		   struct qn_lc_scratch *s)
{
	if (qn_lc_features(&m->p, text, len, &s->f) < 0)
		return -1;
	size_t slot;
	for (size_t i = 0; i < s->f.n; i++)
		s->f.id[i] = table_find(m, s->f.id[i], &slot);
	return (long)qn_lc_forward(m, s->f.id, s->f.n, s->hidden, s->probs);
}

/* ---- training ---------------------------------------------------------------- */

struct worker {
	struct qn_lc_model *m;
	const struct qn_lc_data *d;
	const uint32_t *order; /* this thread's examples */
	size_t n;
	uint64_t words_total; /* of this slice */
	int epoch, epochs;
	float lr0;
	double loss;
	uint64_t words, examples;
	float *hidden, *grad, *probs;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	const struct qn_lc_data *d = w->d;
	double span = (double)w->epochs * (double)(w->words_total ? w->words_total : 1);
	double base = (double)w->epoch * (double)w->words_total;
	w->loss = 0;
	w->words = 0;
	w->examples = 0;
	for (size_t i = 0; i < w->n; i++) {
		uint32_t x = w->order[i];
		uint64_t a = d->off[x], b = d->off[x + 1];
		float lr = (float)((double)w->lr0 * (1.0 - (base + (double)w->words) / span));
		w->words += d->words[x];
		if (b == a)
			continue;
		if (lr < 0)
			lr = 0;
		w->loss += qn_lc_step(w->m, d->feat + a, (size_t)(b - a), d->label[x], lr,
				      w->hidden, w->grad, w->probs);
		w->examples++;
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int qn_lc_train(struct qn_lc_model *m, const struct qn_lc_data *d, const struct qn_lc_train_opts *o,
		struct qn_err *e)
{
	int T = o->threads < 1 ? 1 : o->threads, rc = 0;
	size_t dim = (size_t)m->p.dim;
	if ((size_t)T > d->n && d->n > 0)
		T = (int)d->n;
	uint32_t *order = malloc((d->n ? d->n : 1) * sizeof *order);
	struct worker *w = calloc((size_t)T, sizeof *w);
	pthread_t *tid = calloc((size_t)T, sizeof *tid);
	float *scratch = malloc((size_t)T * (2 * dim + m->k) * sizeof *scratch);
	if (!order || !w || !tid || !scratch) {
		rc = qn_errf(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < d->n; i++)
		order[i] = (uint32_t)i;
	for (int t = 0; t < T; t++) {
		w[t].m = m;
		w[t].d = d;
		w[t].epochs = o->epochs;
		w[t].lr0 = (float)o->lr;
		w[t].hidden = scratch + (size_t)t * (2 * dim + m->k);
		w[t].grad = w[t].hidden + dim;
		w[t].probs = w[t].grad + dim;
	}
	for (int ep = 0; ep < o->epochs && !rc; ep++) {
		/* A fresh order each epoch, from the seed alone. */
		uint64_t st = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)ep;
		for (size_t i = d->n; i > 1; i--) {
			size_t j = (size_t)(qn_splitmix64(&st) % i);
			uint32_t tmp = order[i - 1];
			order[i - 1] = order[j];
			order[j] = tmp;
		}
		double t0 = now_s();
		for (int t = 0; t < T; t++) {
			size_t a = d->n * (size_t)t / (size_t)T,
			       b = d->n * (size_t)(t + 1) / (size_t)T;
			w[t].order = order + a;
			w[t].n = b - a;
			w[t].epoch = ep;
			w[t].words_total = 0;
			for (size_t i = a; i < b; i++)
				w[t].words_total += d->words[order[i]];
		}
		int started = 0;
		if (T == 1) {
			work(&w[0]);
		} else {
			for (; started < T; started++)
				if (pthread_create(&tid[started], NULL, work, &w[started]))
					break;
			for (int t = 0; t < started; t++)
				pthread_join(tid[t], NULL);
			if (started < T) {
				rc = qn_errf(e, "cannot start training thread %d of %d",
					     started + 1, T);
				break;
			}
		}
		struct qn_lc_epoch r = {.epoch = ep + 1};
		uint64_t ex = 0;
		for (int t = 0; t < T; t++) {
			r.loss += w[t].loss;
			r.words += w[t].words;
			ex += w[t].examples;
		}
		r.loss = ex ? r.loss / (double)ex : 0;
		r.seconds = now_s() - t0;
		r.lr = o->lr * (1.0 - (double)(ep + 1) / (double)o->epochs);
		r.words_per_sec_thread =
		    r.seconds > 0 ? (double)r.words / r.seconds / (double)T : 0;
		if (o->on_epoch && o->on_epoch(o->ctx, &r))
			rc = 1;
	}
out:
	free(order);
	free(w);
	free(tid);
	free(scratch);
	return rc;
}

/* ---- files ------------------------------------------------------------------- */

char *qn_lc_config_json(const struct qn_lc_model *m)
{
	json_t *c = json_object(), *id2 = json_object(), *l2 = json_object();
	char key[32];
	char *s = NULL;
	if (!c || !id2 || !l2)
		goto out;
	json_object_set_new(c, "model_type", json_string(QN_LC_MODEL_TYPE));
	json_object_set_new(c, "architectures", json_pack("[s]", QN_LC_ARCH));
	json_object_set_new(c, "num_labels", json_integer((json_int_t)m->k));
	for (size_t i = 0; i < m->k; i++) {
		snprintf(key, sizeof key, "%zu", i);
		json_object_set_new(id2, key, json_string(m->labels[i]));
		json_object_set_new(l2, m->labels[i], json_integer((json_int_t)i));
	}
	json_object_set(c, "id2label", id2);
	json_object_set(c, "label2id", l2);
	json_object_set_new(c, "dim", json_integer(m->p.dim));
	json_object_set_new(c, "buckets", json_integer(m->p.buckets));
	json_object_set_new(c, "word_ngrams", json_integer(m->p.word_ngrams));
	json_object_set_new(c, "minn", json_integer(m->p.minn));
	json_object_set_new(c, "maxn", json_integer(m->p.maxn));
	json_object_set_new(c, "lowercase", json_boolean(m->p.lowercase));
	json_object_set_new(c, "hash", json_string(QN_LC_HASH));
	json_object_set_new(c, "rows", json_integer((json_int_t)m->rows));
	json_object_set_new(c, "quern_version", json_string(QN_VERSION));
	s = json_dumps(c, JSON_INDENT(2));
out:
	json_decref(c);
	json_decref(id2);
	json_decref(l2);
	return s;
}

int qn_lc_save(const struct qn_lc_model *m, const char *dir, struct qn_err *e)
{
	char path[4096];
	int rc = -1;
	struct qn_st_writer *w = NULL;
	char *cfg = NULL;
	uint64_t d = (uint64_t)m->p.dim;

	if (!m->in || !m->out)
		return qn_errf(e, "'%s': the model has no weights", dir);
	if (mkdir(dir, 0777) && errno != EEXIST)
		return qn_errno(e, errno, "cannot create '%s'", dir);
	if (strlen(dir) > sizeof path - 32)
		return qn_errf(e, "'%s': path too long", dir);
	if (!(cfg = qn_lc_config_json(m)) || !(w = qn_st_writer_new())) {
		qn_errf(e, "out of memory");
		goto out;
	}
	uint64_t sb[1] = {m->rows}, si[2] = {m->rows, d}, so[2] = {m->k, d};
	if (qn_st_writer_add(w, T_BUCKETS, QN_ST_U32, 1, sb, m->row_bucket, e) ||
	    qn_st_writer_add(w, T_INPUT, QN_ST_F32, 2, si, m->in, e) ||
	    qn_st_writer_add(w, T_OUTPUT, QN_ST_F32, 2, so, m->out, e) ||
	    qn_st_writer_meta(w, "format", "pt", e))
		goto out;
	snprintf(path, sizeof path, "%s/%s", dir, QN_LC_WEIGHTS);
	if (qn_st_writer_write(w, path, e))
		goto out;
	snprintf(path, sizeof path, "%s/%s", dir, QN_LC_CONFIG);
	size_t n = strlen(cfg);
	cfg[n] = '\n'; /* replaces the NUL; the length is passed */
	if (qn_write_file_atomic(path, cfg, n + 1, e))
		goto out;
	rc = 0;
out:
	free(cfg);
	qn_st_writer_free(w);
	return rc;
}

static int get_int(json_t *c, const char *key, long lo, long hi, long *out, const char *name,
		   struct qn_err *e)
{
	json_t *v = json_object_get(c, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return qn_errf(e, "'%s': \"%s\" must be an integer from %ld to %ld", name, key, lo,
			       hi);
	*out = (long)json_integer_value(v);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Parses config.json into a model with labels and parameters, no weights. */
static struct qn_lc_model *parse_config(const char *text, size_t len, const char *name,
					struct qn_err *e)
{
	json_error_t je;
	json_t *c = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	struct qn_lc_model *m = NULL;
	const char **labels = NULL;
	struct qn_lc_params p;
	long v = 0;
	char key[32];

	if (!c) {
		qn_errf(e, "'%s': line %d column %d: %s", name, je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(c)) {
		qn_errf(e, "'%s': not a JSON object", name);
		goto out;
	}
	json_t *mt = json_object_get(c, "model_type");
	if (!json_is_string(mt) || strcmp(json_string_value(mt), QN_LC_MODEL_TYPE)) {
		qn_errf(e, "'%s': \"model_type\" is not \"%s\"", name, QN_LC_MODEL_TYPE);
		goto out;
	}
	json_t *h = json_object_get(c, "hash");
	if (!json_is_string(h) || strcmp(json_string_value(h), QN_LC_HASH)) {
		qn_errf(e, "'%s': \"hash\" is not \"%s\" (a newer quern's model?)", name,
			QN_LC_HASH);
		goto out;
	}
	qn_lc_params_default(&p);
	if (get_int(c, "dim", 1, QN_LC_MAX_DIM, &v, name, e))
		goto out;
	p.dim = (int)v;
	if (get_int(c, "buckets", 1, QN_LC_MAX_BUCKETS, &v, name, e))
		goto out;
	p.buckets = (uint32_t)v;
	if (get_int(c, "word_ngrams", 1, QN_LC_MAX_WORD_NGRAMS, &v, name, e))
		goto out;
	p.word_ngrams = (int)v;
	if (get_int(c, "minn", 0, QN_LC_MAX_CHAR_NGRAM, &v, name, e))
		goto out;
	p.minn = (int)v;
	if (get_int(c, "maxn", 0, QN_LC_MAX_CHAR_NGRAM, &v, name, e))
		goto out;
	p.maxn = (int)v;
	json_t *lc = json_object_get(c, "lowercase");
	if (!json_is_boolean(lc)) {
		qn_errf(e, "'%s': \"lowercase\" must be true or false", name);
		goto out;
	}
	p.lowercase = json_is_true(lc);
	if (qn_lc_params_check(&p, e)) {
		qn_err_prefix(e, "'%s'", name);
		goto out;
	}
	json_t *id2 = json_object_get(c, "id2label");
	size_t k = json_is_object(id2) ? json_object_size(id2) : 0;
	if (k < 1 || k > QN_LC_MAX_LABELS) {
		qn_errf(e, "'%s': \"id2label\" must be an object of 1 to %d labels", name,
			QN_LC_MAX_LABELS);
		goto out;
	}
	json_t *nl = json_object_get(c, "num_labels");
	if (nl && (!json_is_integer(nl) || json_integer_value(nl) != (json_int_t)k)) {
		qn_errf(e, "'%s': \"num_labels\" is not the %zu labels of \"id2label\"", name, k);
		goto out;
	}
	if (!(labels = calloc(k, sizeof *labels))) {
		qn_errf(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		snprintf(key, sizeof key, "%zu", i);
		json_t *l = json_object_get(id2, key);
		if (!json_is_string(l) || json_string_length(l) == 0 ||
		    json_string_length(l) > QN_LC_MAX_LABEL_BYTES ||
		    strlen(json_string_value(l)) != json_string_length(l)) {
			qn_errf(e,
				"'%s': \"id2label\" needs \"%s\": a label name (1 to %d bytes, "
				"no NUL)",
				name, key, QN_LC_MAX_LABEL_BYTES);
			goto out;
		}
		labels[i] = json_string_value(l);
	}
	/* Labels must be unique: sort a copy of the pointers and compare neighbours. */
	{
		const char **s = malloc(k * sizeof *s);
		if (!s) {
			qn_errf(e, "out of memory");
			goto out;
		}
		memcpy(s, labels, k * sizeof *s);
		int dup = 0;
		qsort(s, k, sizeof *s, cmp_str);
		for (size_t i = 1; i < k && !dup; i++)
			if (!strcmp(s[i - 1], s[i])) {
				qn_errf(e, "'%s': label '%s' appears twice in \"id2label\"", name,
					s[i]);
				dup = 1;
			}
		free(s);
		if (dup)
			goto out;
	}
	m = qn_lc_model_new(&p, labels, k, e);
	if (!m)
		qn_err_prefix(e, "'%s'", name);
out:
	free(labels);
	json_decref(c);
	return m;
}

/* Checks the three tensors against the config and copies them into m. */
static int load_weights(struct qn_lc_model *m, const struct qn_st *st, struct qn_err *e)
{
	const char *name = qn_st_name(st);
	const struct qn_st_tensor *tb = qn_st_find(st, T_BUCKETS), *ti = qn_st_find(st, T_INPUT),
				  *to = qn_st_find(st, T_OUTPUT);
	uint64_t d = (uint64_t)m->p.dim;
	if (!tb || !ti || !to)
		return qn_errf(e, "'%s': no tensor '%s'", name,
			       !tb   ? T_BUCKETS
			       : !ti ? T_INPUT
				     : T_OUTPUT);
	if (tb->dtype != QN_ST_U32 || tb->ndim != 1)
		return qn_errf(e, "'%s': '%s' must be U32 [rows]", name, T_BUCKETS);
	uint64_t rows = tb->shape[0];
	if (rows > m->p.buckets)
		return qn_errf(e, "'%s': '%s' has %llu rows, more than the %u buckets", name,
			       T_BUCKETS, (unsigned long long)rows, m->p.buckets);
	if (ti->ndim != 2 || ti->shape[0] != rows || ti->shape[1] != d)
		return qn_errf(e, "'%s': '%s' must be [%llu, %llu] (rows, dim)", name, T_INPUT,
			       (unsigned long long)rows, (unsigned long long)d);
	if (to->ndim != 2 || to->shape[0] != m->k || to->shape[1] != d)
		return qn_errf(e, "'%s': '%s' must be [%zu, %llu] (labels, dim)", name, T_OUTPUT,
			       m->k, (unsigned long long)d);
	m->in = malloc((rows ? rows * d : 1) * sizeof *m->in);
	m->out = malloc(m->k * d * sizeof *m->out);
	if (!m->in || !m->out)
		return qn_errf(e, "out of memory");
	if (qn_st_read_f32(st, ti, m->in, (size_t)(rows * d), e) ||
	    qn_st_read_f32(st, to, m->out, m->k * (size_t)d, e))
		return -1;
	for (size_t i = 0; i < (size_t)(rows * d); i++)
		if (!isfinite(m->in[i]))
			return qn_errf(e, "'%s': '%s' holds a non-finite value", name, T_INPUT);
	for (size_t i = 0; i < m->k * (size_t)d; i++)
		if (!isfinite(m->out[i]))
			return qn_errf(e, "'%s': '%s' holds a non-finite value", name, T_OUTPUT);
	const unsigned char *b = qn_st_data(st, tb);
	size_t slot;
	for (uint64_t i = 0; i < rows; i++) {
		uint32_t v;
		memcpy(&v, b + 4 * i, 4);
		if (v >= m->p.buckets)
			return qn_errf(e, "'%s': bucket id %u of row %llu is not below %u", name, v,
				       (unsigned long long)i, m->p.buckets);
		if (table_find(m, v, &slot) != QN_LC_NO_ROW)
			return qn_errf(e, "'%s': bucket id %u appears twice", name, v);
		if (add_row(m, v, slot))
			return qn_errf(e, "out of memory");
	}
	return 0;
}

static struct qn_lc_model *load_st(const char *config, size_t config_len, const char *cname,
				   struct qn_st *st, struct qn_err *e)
{
	struct qn_lc_model *m;
	if (!st)
		return NULL;
	m = parse_config(config, config_len, cname, e);
	if (m && load_weights(m, st, e)) {
		qn_lc_model_free(m);
		m = NULL;
	}
	qn_st_close(st);
	return m;
}

struct qn_lc_model *qn_lc_load_mem(const char *config, size_t config_len, const void *st,
				   size_t st_len, const char *name, struct qn_err *e)
{
	char cname[512], wname[512];
	snprintf(cname, sizeof cname, "%s/%s", name, QN_LC_CONFIG);
	snprintf(wname, sizeof wname, "%s/%s", name, QN_LC_WEIGHTS);
	return load_st(config, config_len, cname, qn_st_parse_mem(st, st_len, wname, e), e);
}

/* Reads a whole small file; NULL with e filled. */
static char *slurp(const char *path, size_t max, size_t *len, struct qn_err *e)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	if (!f) {
		qn_errno(e, errno, "cannot open '%s'", path);
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > max + 1)
				cap = max + 1;
			char *p = n == max + 1 ? NULL : realloc(buf, cap);
			if (!p) {
				if (n > max)
					qn_errf(e, "'%s': larger than %zu bytes", path, max);
				else
					qn_errf(e, "out of memory");
				goto fail;
			}
			buf = p;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		qn_errno(e, errno, "cannot read '%s'", path);
		goto fail;
	}
	if (n > max) {
		qn_errf(e, "'%s': larger than %zu bytes", path, max);
		goto fail;
	}
	fclose(f);
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

struct qn_lc_model *qn_lc_load(const char *dir, struct qn_err *e)
{
	char cpath[4096], wpath[4096];
	size_t n;
	if (strlen(dir) > sizeof cpath - 32) {
		qn_errf(e, "'%s': path too long", dir);
		return NULL;
	}
	snprintf(cpath, sizeof cpath, "%s/%s", dir, QN_LC_CONFIG);
	snprintf(wpath, sizeof wpath, "%s/%s", dir, QN_LC_WEIGHTS);
	char *cfg = slurp(cpath, QN_LC_MAX_CONFIG_BYTES, &n, e);
	if (!cfg)
		return NULL;
	struct qn_lc_model *m = load_st(cfg, n, cpath, qn_st_open(wpath, e), e);
	free(cfg);
	return m;
}

int qn_lc_is_model_dir(const char *dir)
{
	char path[4096];
	json_error_t je;
	if (strlen(dir) > sizeof path - 32)
		return 0;
	snprintf(path, sizeof path, "%s/%s", dir, QN_LC_CONFIG);
	json_t *c = json_load_file(path, 0, &je);
	json_t *mt = json_object_get(c, "model_type");
	int yes = json_is_string(mt) && !strcmp(json_string_value(mt), QN_LC_MODEL_TYPE);
	json_decref(c);
	return yes;
}
