/*
 * clshead - the sequence-classification head; see clshead.h.
 */
#include "clshead.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "safetensors.h"
#include "wr.h"

#define ARCH "GPT2ForSequenceClassification"

/* A standard normal from the splitmix64 stream at *s (Box-Muller). */
static double normal(uint64_t *s)
{
	double u1 = ((double)(qn_splitmix64(s) >> 11) + 0.5) * 0x1p-53;
	double u2 = (double)(qn_splitmix64(s) >> 11) * 0x1p-53;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static int head_alloc(struct cls_head *h, size_t k, size_t c, struct qn_err *e)
{
	*h = (struct cls_head){.k = k, .c = c, .pad = -1};
	h->w = calloc(k * c, sizeof *h->w);
	h->g = calloc(k * c, sizeof *h->g);
	h->mom = calloc(k * c, sizeof *h->mom);
	h->var = calloc(k * c, sizeof *h->var);
	h->labels = calloc(k, sizeof *h->labels);
	if (!h->w || !h->g || !h->mom || !h->var || !h->labels) {
		cls_head_release(h);
		return qn_errf(e, "out of memory");
	}
	return 0;
}

int cls_head_init(struct cls_head *h, size_t k, size_t c, const char *const *labels, int64_t pad,
		  uint64_t seed, struct qn_err *e)
{
	*h = (struct cls_head){.pad = -1};
	if (k < 2)
		return qn_errf(e, "a classifier needs at least 2 labels, not %zu", k);
	if (head_alloc(h, k, c, e))
		return -1;
	h->pad = pad;
	for (size_t i = 0; i < k; i++)
		if (!(h->labels[i] = strdup(labels[i]))) {
			cls_head_release(h);
			return qn_errf(e, "out of memory");
		}
	/* Hugging Face's init of a Linear in GPT-2: N(0, initializer_range 0.02). */
	uint64_t s = seed ^ 0x5c0e5c0e5c0e5c0eull;
	for (size_t i = 0; i < k * c; i++)
		h->w[i] = (float)(0.02 * normal(&s));
	return 0;
}

void cls_head_release(struct cls_head *h)
{
	if (!h)
		return;
	for (size_t i = 0; h->labels && i < h->k; i++)
		free(h->labels[i]);
	free(h->labels);
	free(h->w);
	free(h->g);
	free(h->mom);
	free(h->var);
	*h = (struct cls_head){.pad = -1};
}

double cls_head_forward(struct cls_head *h, const float *hidden, const int *len, const int *gold,
			int B, int T, float *probs, float *dhidden, double denom)
{
	size_t k = h->k, c = h->c;
	double loss = 0;
	float *p = malloc(k * sizeof *p);
	if (!p)
		return NAN;
	if (dhidden)
		memset(dhidden, 0, (size_t)B * T * c * sizeof *dhidden);
	for (int b = 0; b < B; b++) {
		size_t row = (size_t)b * T + (size_t)(len[b] - 1);
		const float *x = hidden + row * c;
		/* logits = W x, then a stable softmax. */
		double mx = -INFINITY, sum = 0;
		for (size_t j = 0; j < k; j++) {
			const float *w = h->w + j * c;
			float z = 0;
			for (size_t i = 0; i < c; i++)
				z += w[i] * x[i];
			p[j] = z;
			mx = fmax(mx, z);
		}
		for (size_t j = 0; j < k; j++)
			sum += exp(p[j] - mx);
		double lse = mx + log(sum);
		if (gold)
			loss += lse - p[gold[b]];
		for (size_t j = 0; j < k; j++)
			p[j] = (float)exp(p[j] - lse);
		if (probs)
			memcpy(probs + (size_t)b * k, p, k * sizeof *p);
		if (!gold || !dhidden)
			continue;
		/* dlogits = (p - onehot) / denom; dW += dlogits x^T; dx = W^T dlogits. */
		float *dx = dhidden + row * c;
		for (size_t j = 0; j < k; j++) {
			float d = (float)(((double)p[j] - (j == (size_t)gold[b])) / denom);
			float *g = h->g + j * c;
			const float *w = h->w + j * c;
			for (size_t i = 0; i < c; i++) {
				g[i] += d * x[i];
				dx[i] += d * w[i];
			}
		}
	}
	free(p);
	return loss;
}

double cls_head_grad_sq(const struct cls_head *h)
{
	double s = 0;
	for (size_t i = 0; i < h->k * h->c; i++)
		s += (double)h->g[i] * h->g[i];
	return s;
}

void cls_head_scale_grads(struct cls_head *h, float s)
{
	for (size_t i = 0; i < h->k * h->c; i++)
		h->g[i] *= s;
}

void cls_head_zero_grads(struct cls_head *h)
{
	memset(h->g, 0, h->k * h->c * sizeof *h->g);
}

void cls_head_adamw(struct cls_head *h, const struct qn_adamw *o, long step)
{
	double c1 = 1 - pow(o->beta1, (double)step), c2 = 1 - pow(o->beta2, (double)step);
	float decay = (float)(1 - o->lr * o->weight_decay);
	for (size_t i = 0; i < h->k * h->c; i++) {
		float g = h->g[i];
		h->mom[i] = (float)(o->beta1 * h->mom[i] + (1 - o->beta1) * g);
		h->var[i] = (float)(o->beta2 * h->var[i] + (1 - o->beta2) * g * g);
		double mh = h->mom[i] / c1, vh = h->var[i] / c2;
		h->w[i] = (float)(h->w[i] * decay - o->lr * mh / (sqrt(vh) + o->eps));
	}
}

/* DIR/config.json as a JSON object, or NULL (e filled). */
static json_t *read_config(const char *dir, struct qn_err *e)
{
	char path[4200];
	json_error_t je;
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_CONFIG);
	json_t *o = json_load_file(path, 0, &je);
	if (!json_is_object(o)) {
		qn_errf(e, "'%s': %s", path, o ? "not a JSON object" : je.text);
		json_decref(o);
		return NULL;
	}
	return o;
}

int cls_is_model(const char *dir)
{
	struct qn_err e;
	json_t *o = read_config(dir, &e);
	json_t *a = json_object_get(o, "architectures");
	int yes = json_is_array(a) && json_is_string(json_array_get(a, 0)) &&
		  !strcmp(json_string_value(json_array_get(a, 0)), ARCH);
	json_decref(o);
	return yes;
}

int cls_save(const struct qn_gpt2 *m, const struct cls_head *h, const char *dir, struct qn_err *e)
{
	char path[4200];
	struct qn_st_writer *w = qn_st_writer_new();
	if (!w)
		return qn_errf(e, "out of memory");
	uint64_t shape[2] = {h->k, h->c};
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_WEIGHTS);
	int rc = qn_gpt2_st_add(m, w, "transformer.", m->params, e);
	if (!rc)
		rc = qn_st_writer_add(w, "score.weight", QN_ST_F32, 2, shape, h->w, e);
	if (!rc)
		rc = qn_st_writer_meta(w, "format", "pt", e);
	if (!rc)
		rc = qn_st_writer_write(w, path, e);
	qn_st_writer_free(w);
	if (rc)
		return -1;
	/* GPT2Config first, then what the classification model adds to it. */
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_CONFIG);
	if (qn_gpt2_config_write(path, &m->cfg, e))
		return -1;
	json_t *o = read_config(dir, e);
	if (!o)
		return -1;
	json_t *id2 = json_object(), *l2id = json_object(), *arch = json_array();
	int bad = !id2 || !l2id || !arch;
	for (size_t i = 0; !bad && i < h->k; i++) {
		char id[32];
		snprintf(id, sizeof id, "%zu", i);
		bad |= json_object_set_new(id2, id, json_string(h->labels[i]));
		bad |= json_object_set_new(l2id, h->labels[i], json_integer((json_int_t)i));
	}
	bad |= json_array_append_new(arch, json_string(ARCH));
	bad |= json_object_set_new(o, "architectures", arch);
	bad |= json_object_set_new(o, "id2label", id2);
	bad |= json_object_set_new(o, "label2id", l2id);
	bad |= json_object_set_new(o, "pad_token_id",
				   h->pad >= 0 ? json_integer(h->pad) : json_null());
	char *s = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return qn_errf(e, "out of memory");
	size_t n = strlen(s);
	s[n] = '\n';
	rc = qn_write_file_atomic(path, s, n + 1, e);
	free(s);
	return rc;
}

struct qn_gpt2 *cls_load(const char *dir, struct cls_head *h, struct qn_err *e)
{
	char path[4200];
	*h = (struct cls_head){.pad = -1};
	json_t *o = read_config(dir, e);
	if (!o)
		return NULL;
	struct qn_gpt2 *m = NULL;
	struct qn_st *st = NULL;
	json_t *id2 = json_object_get(o, "id2label"), *pad = json_object_get(o, "pad_token_id");
	size_t k = json_object_size(id2);
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_CONFIG);
	if (!json_is_object(id2) || k < 2 || k > 65536) {
		qn_errf(e, "'%s': no \"id2label\" object of 2 or more labels", path);
		goto fail;
	}
	m = qn_gpt2_load(dir, e);
	if (!m || head_alloc(h, k, (size_t)m->cfg.n_embd, e))
		goto fail;
	h->pad = json_is_integer(pad) ? json_integer_value(pad) : -1;
	for (size_t i = 0; i < k; i++) {
		char id[32];
		snprintf(id, sizeof id, "%zu", i);
		json_t *v = json_object_get(id2, id);
		if (!json_is_string(v)) {
			qn_errf(e, "'%s': \"id2label\" has no string for label %zu", path, i);
			goto fail;
		}
		if (!(h->labels[i] = strdup(json_string_value(v)))) {
			qn_errf(e, "out of memory");
			goto fail;
		}
	}
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_WEIGHTS);
	st = qn_st_open(path, e);
	if (!st)
		goto fail;
	const struct qn_st_tensor *t = qn_st_find(st, "score.weight");
	if (!t || t->ndim != 2 || t->shape[0] != k || t->shape[1] != h->c) {
		qn_errf(e, "'%s': %s", path,
			t ? "tensor 'score.weight' is not labels x n_embd"
			  : "no tensor 'score.weight' (not a classifier)");
		goto fail;
	}
	if (qn_st_read_f32(st, t, h->w, k * h->c, e))
		goto fail;
	qn_st_close(st);
	json_decref(o);
	return m;
fail:
	qn_st_close(st);
	qn_gpt2_free(m);
	cls_head_release(h);
	json_decref(o);
	return NULL;
}
