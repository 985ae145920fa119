/*
 * gpt2.c - the GPT-2 model (see gpt2.h): kernels, forward and backward,
 * AdamW, KV-cache inference, config.json and safetensors I/O.
 *
 * Shapes: B rows of T tokens, N = B*T positions, C = n_embd, H heads of
 * hd = C/H, F = n_inner, V = vocab_size, L layers. Activations are row-major
 * (N, width). Each kernel below says its shapes. Parallel loops use a static
 * OpenMP schedule over a split that depends only on the thread count, and
 * every reduction runs in a fixed order inside one thread, so results are
 * bit-identical from run to run at the same thread count.
 */
#include "gpt2.h"

#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#define OMP_FOR _Pragma("omp parallel for schedule(static)")
#else
#define OMP_FOR
#endif

#include "err.h"
#include "hash.h"
#include "pool.h"
#include "safetensors.h"
#include "wr.h"

#define LIMIT_LAYERS 1024
#define LIMIT_WIDTH 65536
#define LIMIT_POSITIONS 1048576
#define LIMIT_VOCAB (1 << 22)
#define LIMIT_PARAMS (1ull << 36) /* 256 GiB of float32 */
#define ROW_BLOCK 64		  /* attention row block: the causal triangle in tiles */

/* ---- configuration ---------------------------------------------------------- */

void qn_gpt2_config_default(struct qn_gpt2_config *c)
{
	memset(c, 0, sizeof *c);
	c->n_layer = 12;
	c->n_head = 12;
	c->n_embd = 768;
	c->n_positions = 1024;
	c->vocab_size = 50257;
	c->eps = 1e-5f;
	c->bos_token_id = -1;
	c->eos_token_id = -1;
}

int qn_gpt2_config_check(const struct qn_gpt2_config *c, const char *name, struct qn_err *e)
{
	if (c->n_layer < 1 || c->n_layer > LIMIT_LAYERS)
		return qn_errf(e, "'%s': n_layer %d is not in 1..%d", name, c->n_layer,
			       LIMIT_LAYERS);
	if (c->n_embd < 1 || c->n_embd > LIMIT_WIDTH)
		return qn_errf(e, "'%s': n_embd %d is not in 1..%d", name, c->n_embd, LIMIT_WIDTH);
	if (c->n_head < 1 || c->n_head > c->n_embd || c->n_embd % c->n_head)
		return qn_errf(e, "'%s': n_head %d does not divide n_embd %d", name, c->n_head,
			       c->n_embd);
	if (c->n_positions < 1 || c->n_positions > LIMIT_POSITIONS)
		return qn_errf(e, "'%s': n_positions %d is not in 1..%d", name, c->n_positions,
			       LIMIT_POSITIONS);
	if (c->vocab_size < 1 || c->vocab_size > LIMIT_VOCAB)
		return qn_errf(e, "'%s': vocab_size %d is not in 1..%d", name, c->vocab_size,
			       LIMIT_VOCAB);
	if (c->n_inner < 0 || c->n_inner > 4 * LIMIT_WIDTH)
		return qn_errf(e, "'%s': n_inner %d is out of range", name, c->n_inner);
	if (!(c->eps > 0 && c->eps < 1))
		return qn_errf(e, "'%s': layer_norm_epsilon %g is not in (0, 1)", name,
			       (double)c->eps);
	if (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size)
		return qn_errf(e, "'%s': bos/eos token id past vocab_size %d", name, c->vocab_size);
	uint64_t C = (uint64_t)c->n_embd, F = c->n_inner ? (uint64_t)c->n_inner : 4 * C;
	uint64_t n = (uint64_t)c->vocab_size * C + (uint64_t)c->n_positions * C +
		     (uint64_t)c->n_layer * (4 * C * C + 2 * C * F + 9 * C + F) + 2 * C;
	if (n > LIMIT_PARAMS)
		return qn_errf(e, "'%s': %llu parameters is more than this build handles", name,
			       (unsigned long long)n);
	return 0;
}

static int json_int_field(json_t *o, const char *key, int *out, int required, const char *name,
			  struct qn_err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required)
			return qn_errf(e, "'%s': field '%s' is missing", name, key);
		return 0;
	}
	if (!json_is_integer(v))
		return qn_errf(e, "'%s': field '%s' is not an integer", name, key);
	if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
		return qn_errf(e, "'%s': field '%s' is out of range", name, key);
	*out = (int)json_integer_value(v);
	return 0;
}

int qn_gpt2_config_parse(const char *buf, size_t len, const char *name, struct qn_gpt2_config *c,
			 struct qn_err *e)
{
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	int rc = -1;

	qn_gpt2_config_default(c);
	if (!o)
		return qn_errf(e, "'%s': line %d col %d: %s", name, je.line, je.column, je.text);
	if (!json_is_object(o)) {
		qn_errf(e, "'%s': not a JSON object", name);
		goto out;
	}
	json_t *v = json_object_get(o, "model_type");
	if (v && (!json_is_string(v) || strcmp(json_string_value(v), "gpt2"))) {
		qn_errf(e, "'%s': model_type is not \"gpt2\"", name);
		goto out;
	}
	v = json_object_get(o, "activation_function");
	if (v && (!json_is_string(v) || (strcmp(json_string_value(v), "gelu_new") &&
					 strcmp(json_string_value(v), "gelu_pytorch_tanh")))) {
		qn_errf(e, "'%s': activation_function must be gelu_new (the tanh form)", name);
		goto out;
	}
	v = json_object_get(o, "tie_word_embeddings");
	if (v && !json_is_true(v)) {
		qn_errf(e, "'%s': tie_word_embeddings must be true", name);
		goto out;
	}
	if (json_int_field(o, "n_layer", &c->n_layer, 1, name, e) ||
	    json_int_field(o, "n_head", &c->n_head, 1, name, e) ||
	    json_int_field(o, "n_embd", &c->n_embd, 1, name, e) ||
	    json_int_field(o, "n_positions", &c->n_positions, 1, name, e) ||
	    json_int_field(o, "vocab_size", &c->vocab_size, 1, name, e) ||
	    json_int_field(o, "n_inner", &c->n_inner, 0, name, e) ||
	    json_int_field(o, "bos_token_id", &c->bos_token_id, 0, name, e) ||
	    json_int_field(o, "eos_token_id", &c->eos_token_id, 0, name, e))
		goto out;
	v = json_object_get(o, "layer_norm_epsilon");
	if (v) {
		if (!json_is_number(v)) {
			qn_errf(e, "'%s': field 'layer_norm_epsilon' is not a number", name);
			goto out;
		}
		c->eps = (float)json_number_value(v);
	}
	static const char *const drops[] = {"embd_pdrop", "attn_pdrop", "resid_pdrop"};
	float *dst[] = {&c->embd_pdrop, &c->attn_pdrop, &c->resid_pdrop};
	for (int i = 0; i < 3; i++) {
		v = json_object_get(o, drops[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_number(v) ||
		    !(json_number_value(v) >= 0 && json_number_value(v) < 1)) {
			qn_errf(e, "'%s': field '%s' is not a probability in [0, 1)", name,
				drops[i]);
			goto out;
		}
		*dst[i] = (float)json_number_value(v);
	}
	v = json_object_get(o, "quern_tokenizer");
	if (v) {
		const char *s = json_string_value(v);
		if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64) {
			qn_errf(e, "'%s': quern_tokenizer is not a 64-digit fingerprint", name);
			goto out;
		}
		memcpy(c->tokenizer, s, 65);
	}
	if (c->bos_token_id < 0)
		c->bos_token_id = -1;
	if (c->eos_token_id < 0)
		c->eos_token_id = -1;
	rc = qn_gpt2_config_check(c, name, e);
out:
	json_decref(o);
	return rc;
}

/* The bytes of a small file (at most 16 MiB), malloc'd into *buf. */
static int read_small(const char *path, char **buf, size_t *len, struct qn_err *e)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0, cap = 0;
	if (!f)
		return qn_errno(e, errno, "cannot open '%s'", path);
	for (;;) {
		if (n == cap) {
			if (cap >= (16u << 20)) {
				free(b);
				fclose(f);
				return qn_errf(e, "'%s': larger than 16 MiB", path);
			}
			cap = cap ? 2 * cap : 4096;
			char *nb = realloc(b, cap);
			if (!nb) {
				free(b);
				fclose(f);
				return qn_errf(e, "'%s': out of memory", path);
			}
			b = nb;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(b);
		return qn_errf(e, "cannot read '%s'", path);
	}
	*buf = b;
	*len = n;
	return 0;
}

int qn_gpt2_config_load(const char *path, struct qn_gpt2_config *c, struct qn_err *e)
{
	char *buf;
	size_t len;
	if (read_small(path, &buf, &len, e))
		return -1;
	int rc = qn_gpt2_config_parse(buf, len, path, c, e);
	free(buf);
	return rc;
}

int qn_gpt2_config_write(const char *path, const struct qn_gpt2_config *c, struct qn_err *e)
{
	json_t *o = json_object();
	json_t *arch = json_array();
	json_array_append_new(arch, json_string("GPT2LMHeadModel"));
	json_object_set_new(o, "activation_function", json_string("gelu_new"));
	json_object_set_new(o, "architectures", arch);
	json_object_set_new(o, "attn_pdrop", json_real(c->attn_pdrop));
	json_object_set_new(o, "bos_token_id",
			    c->bos_token_id >= 0 ? json_integer(c->bos_token_id) : json_null());
	json_object_set_new(o, "embd_pdrop", json_real(c->embd_pdrop));
	json_object_set_new(o, "eos_token_id",
			    c->eos_token_id >= 0 ? json_integer(c->eos_token_id) : json_null());
	json_object_set_new(o, "initializer_range", json_real(0.02));
	char eps[32]; /* the float's shortest decimal: 1e-05, not 9.99999975e-06 */
	for (int digits = 6; digits <= 9; digits++) {
		snprintf(eps, sizeof eps, "%.*g", digits, (double)c->eps);
		if ((float)strtod(eps, NULL) == c->eps)
			break;
	}
	json_object_set_new(o, "layer_norm_epsilon", json_real(strtod(eps, NULL)));
	json_object_set_new(o, "model_type", json_string("gpt2"));
	json_object_set_new(o, "n_ctx", json_integer(c->n_positions));
	json_object_set_new(o, "n_embd", json_integer(c->n_embd));
	json_object_set_new(o, "n_head", json_integer(c->n_head));
	json_object_set_new(o, "n_inner", c->n_inner ? json_integer(c->n_inner) : json_null());
	json_object_set_new(o, "n_layer", json_integer(c->n_layer));
	json_object_set_new(o, "n_positions", json_integer(c->n_positions));
	if (c->tokenizer[0])
		json_object_set_new(o, "quern_tokenizer", json_string(c->tokenizer));
	json_object_set_new(o, "resid_pdrop", json_real(c->resid_pdrop));
	json_object_set_new(o, "tie_word_embeddings", json_true());
	json_object_set_new(o, "torch_dtype", json_string("float32"));
	json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
	json_decref(o);
	if (!s)
		return qn_errf(e, "'%s': out of memory", path);
	size_t n = strlen(s);
	s[n] = '\n';
	int rc = qn_write_file_atomic(path, s, n + 1, e);
	free(s);
	return rc;
}

/* ---- the parameter table ---------------------------------------------------- */

enum {
	T_LN1W,
	T_LN1B,
	T_QKVW,
	T_QKVB,
	T_ATTPW,
	T_ATTPB,
	T_LN2W,
	T_LN2B,
	T_FCW,
	T_FCB,
	T_FCPW,
	T_FCPB,
	T_PER_LAYER
};

static const char *const layer_names[T_PER_LAYER] = {
    "ln_1.weight",	  "ln_1.bias",	      "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",	    "ln_2.bias",
    "mlp.c_fc.weight",	  "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias",
};

/* Pointers to one block's tensors inside a flat array (params or grads). */
struct block {
	float *ln1w, *ln1b, *qkvw, *qkvb, *attpw, *attpb, *ln2w, *ln2b, *fcw, *fcb, *fcpw, *fcpb;
};

#define WTE 0
#define WPE 1
#define FIRST_LAYER 2

static int ninner(const struct qn_gpt2_config *c)
{
	return c->n_inner ? c->n_inner : 4 * c->n_embd;
}

static void block_at(const struct qn_gpt2 *m, float *base, int l, struct block *b)
{
	const struct qn_gpt2_tensor *t = m->tensors + FIRST_LAYER + (size_t)l * T_PER_LAYER;
	float **p = &b->ln1w;
	for (int i = 0; i < T_PER_LAYER; i++)
		p[i] = base + t[i].offset;
}

static float *tensor_at(const struct qn_gpt2 *m, float *base, size_t i)
{
	return base + m->tensors[i].offset;
}

/* The gradient of tensor i, or NULL when it is frozen. */
static float *grad_at(const struct qn_gpt2 *m, size_t i)
{
	return m->frozen && m->frozen[i] ? NULL : m->grads + m->tensors[i].offset;
}

/* block_at over the gradients, with NULL for each frozen tensor. */
static void grad_block_at(const struct qn_gpt2 *m, int l, struct block *b)
{
	float **p = &b->ln1w;
	for (int i = 0; i < T_PER_LAYER; i++)
		p[i] = grad_at(m, FIRST_LAYER + (size_t)l * T_PER_LAYER + (size_t)i);
}

static size_t lnf_index(const struct qn_gpt2 *m)
{
	return FIRST_LAYER + (size_t)m->cfg.n_layer * T_PER_LAYER;
}

struct qn_gpt2 *qn_gpt2_new(const struct qn_gpt2_config *c, struct qn_err *e)
{
	if (qn_gpt2_config_check(c, "config", e))
		return NULL;
	struct qn_gpt2 *m = calloc(1, sizeof *m);
	if (!m) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	m->cfg = *c;
	m->threads = 1;
	m->ntensors = FIRST_LAYER + (size_t)c->n_layer * T_PER_LAYER + 2;
	m->tensors = calloc(m->ntensors, sizeof *m->tensors);
	if (!m->tensors) {
		free(m);
		qn_errf(e, "out of memory");
		return NULL;
	}
	size_t C = (size_t)c->n_embd, F = (size_t)ninner(c), off = 0, k = 0;
#define ADD(nm, layer_, dec, d0, d1)                                                               \
	do {                                                                                       \
		struct qn_gpt2_tensor *t_ = m->tensors + k++;                                      \
		snprintf(t_->name, sizeof t_->name, "%s", nm);                                     \
		t_->shape[0] = (d0);                                                               \
		t_->shape[1] = (d1);                                                               \
		t_->ndim = (d1) ? 2 : 1;                                                           \
		t_->numel = (size_t)(d0) * ((d1) ? (size_t)(d1) : 1);                              \
		t_->offset = off;                                                                  \
		t_->layer = layer_;                                                                \
		t_->decay = dec;                                                                   \
		off += t_->numel;                                                                  \
	} while (0)
	ADD("wte.weight", -1, 0, (size_t)c->vocab_size, C);
	ADD("wpe.weight", -1, 0, (size_t)c->n_positions, C);
	for (int l = 0; l < c->n_layer; l++) {
		char nm[48];
		const size_t rows[T_PER_LAYER] = {C, C, C, 3 * C, C, C, C, C, C, F, F, C};
		const size_t cols[T_PER_LAYER] = {0, 0, 3 * C, 0, C, 0, 0, 0, F, 0, C, 0};
		for (int i = 0; i < T_PER_LAYER; i++) {
			snprintf(nm, sizeof nm, "h.%d.%s", l, layer_names[i]);
			ADD(nm, l, cols[i] != 0, rows[i], cols[i]);
		}
	}
	ADD("ln_f.weight", -1, 0, C, 0);
	ADD("ln_f.bias", -1, 0, C, 0);
#undef ADD
	m->nparams = off;
	m->params = calloc(off, sizeof(float));
	if (!m->params) {
		qn_errf(e, "out of memory for %zu parameters", off);
		qn_gpt2_free(m);
		return NULL;
	}
	return m;
}

/* Frees the model's adapter, if any. */
static void lora_drop(struct qn_gpt2 *m)
{
	if (!m->lora)
		return;
	free(m->lora->params);
	free(m->lora->grads);
	free(m->lora->tensors);
	free(m->lora);
	m->lora = NULL;
}

void qn_gpt2_free(struct qn_gpt2 *m)
{
	if (!m)
		return;
	free(m->params);
	free(m->grads);
	free(m->frozen);
	free(m->tensors);
	lora_drop(m);
	free(m);
}

void qn_gpt2_set_threads(struct qn_gpt2 *m, int threads)
{
	m->threads = threads > 0 ? threads : qn_ncpu();
#ifdef _OPENMP
	omp_set_num_threads(m->threads);
#endif
	/* Parallelism is ours: each sgemm runs on the thread that calls it. */
	openblas_set_num_threads(1);
}

const struct qn_gpt2_tensor *qn_gpt2_find(const struct qn_gpt2 *m, const char *name)
{
	for (size_t i = 0; i < m->ntensors; i++)
		if (!strcmp(m->tensors[i].name, name))
			return m->tensors + i;
	return NULL;
}

/* splitmix64 seeds a xoshiro256**; Box-Muller gives normals. */
struct rng {
	uint64_t s[4];
};

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = qn_splitmix64(&seed);
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, x = s[1] * 5;
	uint64_t out = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return out;
}

static double rng_normal(struct rng *r)
{
	double u1 = ((rng_next(r) >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
	double u2 = (rng_next(r) >> 11) * 0x1.0p-53;
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

void qn_gpt2_init_weights(struct qn_gpt2 *m, uint64_t seed)
{
	struct rng r;
	rng_seed(&r, seed);
	double proj_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
	for (size_t i = 0; i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		float *p = m->params + t->offset;
		const char *nm = t->name;
		size_t n = strlen(nm);
		if (t->ndim == 2) {
			double sd =
			    (n > 13 && !strcmp(nm + n - 13, "c_proj.weight")) ? proj_std : 0.02;
			for (size_t j = 0; j < t->numel; j++)
				p[j] = (float)(sd * rng_normal(&r));
		} else {
			float v =
			    (n > 7 && !strcmp(nm + n - 7, ".weight")) && (strstr(nm, "ln_") != NULL)
				? 1.0f
				: 0.0f;
			for (size_t j = 0; j < t->numel; j++)
				p[j] = v;
		}
	}
}

/* ---- checkpoint I/O --------------------------------------------------------- */

static int ignored_name(const char *nm)
{
	size_t n = strlen(nm);
	return (n > 10 && !strcmp(nm + n - 10, ".attn.bias") && !strstr(nm, "c_attn")) ||
	       (n > 17 && !strcmp(nm + n - 17, ".attn.masked_bias")) ||
	       !strcmp(nm, "score.weight"); /* a classifier's head: train/clshead.c reads it */
}

int qn_gpt2_load_weights(struct qn_gpt2 *m, const struct qn_st *st, struct qn_err *e)
{
	const char *file = qn_st_name(st);
	unsigned char *seen = calloc(m->ntensors, 1);
	int rc = -1;
	if (!seen)
		return qn_errf(e, "out of memory");
	for (size_t i = 0; i < qn_st_count(st); i++) {
		const struct qn_st_tensor *t = qn_st_at(st, i);
		const char *nm = t->name;
		if (!strncmp(nm, "transformer.", 12))
			nm += 12;
		if (ignored_name(nm))
			continue;
		if (!strcmp(nm, "lm_head.weight")) {
			/* Tied to wte: only its shape is checked. */
			if (t->ndim != 2 || t->shape[0] != (uint64_t)m->cfg.vocab_size ||
			    t->shape[1] != (uint64_t)m->cfg.n_embd) {
				qn_errf(e,
					"'%s': tensor 'lm_head.weight' does not have wte's shape",
					file);
				goto out;
			}
			continue;
		}
		const struct qn_gpt2_tensor *mt = qn_gpt2_find(m, nm);
		if (!mt) {
			qn_errf(e, "'%s': tensor '%s' is not a GPT-2 parameter of this config",
				file, t->name);
			goto out;
		}
		int same = t->ndim == mt->ndim && t->shape[0] == mt->shape[0] &&
			   (mt->ndim == 1 || t->shape[1] == mt->shape[1]);
		if (!same) {
			char got[96] = "", want[64];
			for (int d = 0; d < t->ndim && d < 4; d++)
				snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu",
					 d ? "," : "", (unsigned long long)t->shape[d]);
			if (mt->ndim == 2)
				snprintf(want, sizeof want, "%llu,%llu",
					 (unsigned long long)mt->shape[0],
					 (unsigned long long)mt->shape[1]);
			else
				snprintf(want, sizeof want, "%llu",
					 (unsigned long long)mt->shape[0]);
			qn_errf(e, "'%s': tensor '%s' has shape [%s], the config needs [%s]", file,
				t->name, got, want);
			goto out;
		}
		size_t k = (size_t)(mt - m->tensors);
		if (seen[k]) {
			qn_errf(e, "'%s': tensor '%s' appears twice (with and without prefix)",
				file, t->name);
			goto out;
		}
		seen[k] = 1;
		if (qn_st_read_f32(st, t, m->params + mt->offset, mt->numel, e))
			goto out;
	}
	for (size_t k = 0; k < m->ntensors; k++)
		if (!seen[k]) {
			qn_errf(e, "'%s': tensor '%s' is missing", file, m->tensors[k].name);
			goto out;
		}
	for (size_t j = 0; j < m->nparams; j++)
		if (!isfinite(m->params[j])) {
			for (size_t k = 0; k < m->ntensors; k++)
				if (j >= m->tensors[k].offset &&
				    j < m->tensors[k].offset + m->tensors[k].numel) {
					qn_errf(e, "'%s': tensor '%s' holds a NaN or infinity",
						file, m->tensors[k].name);
					break;
				}
			goto out;
		}
	rc = 0;
out:
	free(seen);
	return rc;
}

struct qn_gpt2 *qn_gpt2_load(const char *dir, struct qn_err *e)
{
	char path[4096];
	struct qn_gpt2_config c;
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_CONFIG);
	if (qn_gpt2_config_load(path, &c, e))
		return NULL;
	struct qn_gpt2 *m = qn_gpt2_new(&c, e);
	if (!m) {
		qn_err_prefix(e, "'%s'", path);
		return NULL;
	}
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_WEIGHTS);
	struct qn_st *st = qn_st_open(path, e);
	if (!st || qn_gpt2_load_weights(m, st, e)) {
		qn_st_close(st);
		qn_gpt2_free(m);
		return NULL;
	}
	qn_st_close(st);
	return m;
}

int qn_gpt2_st_add(const struct qn_gpt2 *m, struct qn_st_writer *w, const char *prefix,
		   const float *values, struct qn_err *e)
{
	char nm[128];
	for (size_t i = 0; i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		snprintf(nm, sizeof nm, "%s%s", prefix, t->name);
		if (qn_st_writer_add(w, nm, QN_ST_F32, t->ndim, t->shape, values + t->offset, e))
			return -1;
	}
	return 0;
}

int qn_gpt2_save(const struct qn_gpt2 *m, const char *dir, struct qn_err *e)
{
	char path[4096];
	struct qn_st_writer *w = qn_st_writer_new();
	if (!w)
		return qn_errf(e, "out of memory");
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_WEIGHTS);
	int rc = qn_gpt2_st_add(m, w, "", m->params, e);
	if (!rc)
		rc = qn_st_writer_meta(w, "format", "pt", e);
	if (!rc)
		rc = qn_st_writer_write(w, path, e);
	qn_st_writer_free(w);
	if (rc)
		return -1;
	snprintf(path, sizeof path, "%s/%s", dir, QN_GPT2_CONFIG);
	return qn_gpt2_config_write(path, &m->cfg, e);
}

/* ---- kernels ---------------------------------------------------------------- */

/*
 * Elementwise kernels. They are built for AVX-512, AVX2 and the baseline
 * and picked at load time; each clone computes the same bits (ISO C mode:
 * no contraction into FMA, and no reordered sums). OpenBLAS's sgemm
 * kernels, which it also picks by CPU, do differ in their last bits, so
 * bit-identical resumes need the same kind of CPU as well as the same
 * thread count.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/*
 * exp(x), relative error below 2e-7: x = n ln2 + r with |r| <= ln2/2
 * (Cody-Waite, Cephes' split of ln2), a degree-6 Taylor polynomial for
 * exp(r), and 2^n built in the exponent bits. Inputs are clamped to
 * [-87, 88], which keeps 2^n normal; softmax and tanh need nothing wider.
 * Unlike libm's expf it has no branches, so loops over it vectorize.
 */
static inline float exp_approx(float x)
{
	x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
	float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
	float r = x - n * 0.693359375f;
	r = r + n * 2.12194440e-4f;
	float p = 1.38888889e-3f;
	p = p * r + 8.33333333e-3f;
	p = p * r + 4.16666667e-2f;
	p = p * r + 1.66666667e-1f;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
	float scale;
	memcpy(&scale, &bits, sizeof scale);
	return p * scale;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1): absolute error about 1e-7. */
static inline float tanh_approx(float u)
{
	return 1.0f - 2.0f / (exp_approx(2.0f * u) + 1.0f);
}

/* The largest of x[0..n), n >= 1: 16 lanes, exact in any order. */
VECTOR_CLONES static float max_span(const float *restrict x, size_t n)
{
	float lane[16], mx = x[0];
	size_t j = 0;
	for (int k = 0; k < 16; k++)
		lane[k] = x[0];
	for (; j + 16 <= n; j += 16)
		for (int k = 0; k < 16; k++)
			lane[k] = x[j + k] > lane[k] ? x[j + k] : lane[k];
	for (; j < n; j++)
		mx = x[j] > mx ? x[j] : mx;
	for (int k = 0; k < 16; k++)
		mx = lane[k] > mx ? lane[k] : mx;
	return mx;
}

/* x[j] = exp(x[j] - mx), j < n. */
VECTOR_CLONES static void exp_shift(float *restrict x, size_t n, float mx)
{
	for (size_t j = 0; j < n; j++)
		x[j] = exp_approx(x[j] - mx);
}

/* The sum of x[0..n) in double: 8 lanes, then the tail, in a fixed order. */
VECTOR_CLONES static double sum_span(const float *restrict x, size_t n)
{
	double lane[8] = {0}, s = 0;
	size_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (int k = 0; k < 8; k++)
			lane[k] += (double)x[j + k];
	for (; j < n; j++)
		s += x[j];
	for (int k = 0; k < 8; k++)
		s += lane[k];
	return s;
}

/* The sum of the squares of x[0..n) in double, lanes as sum_span. */
VECTOR_CLONES static double sumsq_span(const float *restrict x, size_t n)
{
	double lane[8] = {0}, s = 0;
	size_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (int k = 0; k < 8; k++)
			lane[k] += (double)x[j + k] * x[j + k];
	for (; j < n; j++)
		s += (double)x[j] * x[j];
	for (int k = 0; k < 8; k++)
		s += lane[k];
	return s;
}

/* The sum of (x[j] - mu)^2 in double, lanes as sum_span. */
VECTOR_CLONES static double sqdev_span(const float *restrict x, size_t n, double mu)
{
	double lane[8] = {0}, s = 0;
	size_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (int k = 0; k < 8; k++) {
			double d = x[j + k] - mu;
			lane[k] += d * d;
		}
	for (; j < n; j++) {
		double d = x[j] - mu;
		s += d * d;
	}
	for (int k = 0; k < 8; k++)
		s += lane[k];
	return s;
}

/*
 * Dropout masks from a counter-based hash, so nothing is stored: element
 * idx of the site keyed key is kept when the hash is at least thresh
 * (p * 2^32), and scaled by 1 / (1 - p). Backward draws the same masks.
 */
static inline uint32_t drop_hash(uint64_t key, uint64_t idx)
{
	return (uint32_t)(qn_mix64(key + idx * 0x9e3779b97f4a7c15ull) >> 32);
}

/* out[j] = keep(base + j) ? x[j] * scale : 0 (out may be x). */
VECTOR_CLONES static void dropout_span(float *out, const float *x, size_t n, uint64_t key,
				       uint64_t base, uint32_t thresh, float scale)
{
	for (size_t j = 0; j < n; j++)
		out[j] = drop_hash(key, base + j) >= thresh ? x[j] * scale : 0.0f;
}

/* x[j] = exp(x[j] - mx), j < n; returns their sum. */
static double exp_sum_span(float *x, size_t n, float mx)
{
	exp_shift(x, n, mx);
	return sum_span(x, n);
}

VECTOR_CLONES static void scale_span(float *restrict x, size_t n, float s)
{
	for (size_t j = 0; j < n; j++)
		x[j] *= s;
}

/* Rows [r0, r1) of n split into `parts` near-equal pieces. */
static void split(size_t n, int parts, int i, size_t *r0, size_t *r1)
{
	*r0 = n * (size_t)i / (size_t)parts;
	*r1 = n * (size_t)(i + 1) / (size_t)parts;
}

/*
 * out (N, M) = in (N, K) . w (K, M) + bias, or += when acc (the residual
 * stream already in out). Rows split across threads.
 */
static void matmul(float *out, const float *in, const float *w, const float *bias, size_t N,
		   size_t K, size_t M, int acc, int threads)
{
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t r0, r1;
		split(N, threads, p, &r0, &r1);
		if (r0 == r1)
			continue;
		float beta = acc ? 1.0f : 0.0f;
		if (bias) {
			for (size_t r = r0; r < r1; r++) {
				float *o = out + r * M;
				if (acc)
					for (size_t j = 0; j < M; j++)
						o[j] += bias[j];
				else
					memcpy(o, bias, M * sizeof *o);
			}
			beta = 1.0f;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)M,
			    (int)K, 1.0f, in + r0 * K, (int)K, w, (int)M, beta, out + r0 * M,
			    (int)M);
	}
}

/*
 * Backward of matmul: din (N, K) = dout (N, M) . w^T (rows split; added
 * when din_acc), dw (K, M) += in^T . dout and dbias (M) += column sums
 * (columns split, each reduced over N in order).
 */
static void matmul_back(float *din, float *dw, float *dbias, const float *dout, const float *in,
			const float *w, size_t N, size_t K, size_t M, int din_acc, int threads)
{
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t c0, c1;
		split(M, threads, p, &c0, &c1);
		if (c0 == c1)
			continue;
		if (dw)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)(c1 - c0),
				    (int)N, 1.0f, in, (int)K, dout + c0, (int)M, 1.0f, dw + c0,
				    (int)M);
		if (dbias)
			for (size_t r = 0; r < N; r++) {
				const float *d = dout + r * M;
				for (size_t j = c0; j < c1; j++)
					dbias[j] += d[j];
			}
	}
	if (!din)
		return;
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t r0, r1;
		split(N, threads, p, &r0, &r1);
		if (r0 == r1)
			continue;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)K, (int)M,
			    1.0f, dout + r0 * M, (int)M, w, (int)M, din_acc ? 1.0f : 0.0f,
			    din + r0 * K, (int)K);
	}
}

/* out (N, C) = LayerNorm(x) * w + b; mean and rstd (N) kept for backward. */
static void layernorm(float *out, float *mean, float *rstd, const float *x, const float *w,
		      const float *b, size_t N, size_t C, float eps, int threads)
{
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t r0, r1;
		split(N, threads, p, &r0, &r1);
		for (size_t r = r0; r < r1; r++) {
			const float *xr = x + r * C;
			double mu = sum_span(xr, C) / (double)C;
			double v = sqdev_span(xr, C, mu);
			float rs = (float)(1.0 / sqrt(v / (double)C + eps));
			float mf = (float)mu;
			float *o = out + r * C;
			for (size_t i = 0; i < C; i++)
				o[i] = (xr[i] - mf) * rs * w[i] + b[i];
			if (mean) {
				mean[r] = mf;
				rstd[r] = rs;
			}
		}
	}
}

/*
 * Backward of layernorm: dx (N, C) = or += the input gradient; dw, db (C)
 * += their gradients (columns split across threads, rows in order).
 */
static void layernorm_back(float *dx, float *dw, float *db, const float *dout, const float *x,
			   const float *mean, const float *rstd, const float *w, size_t N, size_t C,
			   int dx_acc, int threads)
{
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t c0, c1;
		split(C, threads, p, &c0, &c1);
		for (size_t r = 0; dw && r < N; r++) {
			const float *xr = x + r * C, *d = dout + r * C;
			float mu = mean[r], rs = rstd[r];
			for (size_t i = c0; i < c1; i++) {
				dw[i] += d[i] * ((xr[i] - mu) * rs);
				db[i] += d[i];
			}
		}
	}
	if (!dx)
		return;
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t r0, r1;
		split(N, threads, p, &r0, &r1);
		for (size_t r = r0; r < r1; r++) {
			const float *xr = x + r * C, *d = dout + r * C;
			float mu = mean[r], rs = rstd[r];
			double s1 = 0, s2 = 0;
			for (size_t i = 0; i < C; i++) {
				float g = d[i] * w[i];
				s1 += g;
				s2 += g * ((xr[i] - mu) * rs);
			}
			float m1 = (float)(s1 / (double)C), m2 = (float)(s2 / (double)C);
			float *o = dx + r * C;
			for (size_t i = 0; i < C; i++) {
				float g = d[i] * w[i], xh = (xr[i] - mu) * rs;
				float v = rs * (g - m1 - xh * m2);
				o[i] = dx_acc ? o[i] + v : v;
			}
		}
	}
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* GELU, tanh form ("gelu_new"). */
VECTOR_CLONES static void gelu_span(float *restrict out, const float *restrict x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		out[i] = 0.5f * v * (1.0f + tanh_approx(GELU_K * (v + 0.044715f * v * v * v)));
	}
}

/* d *= GELU'(x). */
VECTOR_CLONES static void gelu_back_span(float *restrict d, const float *restrict x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		float th = tanh_approx(GELU_K * (v + 0.044715f * v * v * v));
		float sech2 = 1.0f - th * th;
		float g = 0.5f * (1.0f + th) +
			  0.5f * v * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
		d[i] *= g;
	}
}

static void gelu(float *out, const float *x, size_t n, int threads)
{
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t i0, i1;
		split(n, threads, p, &i0, &i1);
		gelu_span(out + i0, x + i0, i1 - i0);
	}
}

static void gelu_back(float *d, const float *x, size_t n, int threads)
{
	OMP_FOR
	for (int p = 0; p < threads; p++) {
		size_t i0, i1;
		split(n, threads, p, &i0, &i1);
		gelu_back_span(d + i0, x + i0, i1 - i0);
	}
}

/*
 * Causal attention of one (row, head): q, k, v point at the head's columns
 * of the (T, 3C) qkv rows (stride ld = 3C); P (T, T) gets the softmax
 * probabilities with zeros above the diagonal; out (T, hd), stride ldo.
 * Scores are computed in row blocks, each only up to its last column.
 */
/* Attention dropout of one (row, head): off when P2 is NULL. */
struct attn_drop {
	float *P2; /* T x T scratch: the dropped probabilities */
	uint64_t key;
	uint32_t thresh;
	float scale;
};

/* P2 = dropout(P) on the causal triangle, zeros above it inside each block. */
static void drop_probs(const struct attn_drop *d, const float *P, int T)
{
	for (int i = 0; i < T; i++) {
		int end = (i / ROW_BLOCK + 1) * ROW_BLOCK < T ? (i / ROW_BLOCK + 1) * ROW_BLOCK : T;
		dropout_span(d->P2 + (size_t)i * T, P + (size_t)i * T, (size_t)i + 1, d->key,
			     (uint64_t)i * (uint64_t)T, d->thresh, d->scale);
		memset(d->P2 + (size_t)i * T + i + 1, 0, (size_t)(end - i - 1) * sizeof(float));
	}
}

static void attend(float *out, size_t ldo, float *P, const float *q, const float *k, const float *v,
		   size_t ld, int T, int hd, float scale, const struct attn_drop *d)
{
	for (int r0 = 0; r0 < T; r0 += ROW_BLOCK) {
		int r1 = r0 + ROW_BLOCK < T ? r0 + ROW_BLOCK : T;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hd, scale,
			    q + (size_t)r0 * ld, (int)ld, k, (int)ld, 0.0f, P + (size_t)r0 * T, T);
	}
	for (int i = 0; i < T; i++) {
		float *row = P + (size_t)i * T;
		double s = exp_sum_span(row, (size_t)i + 1, max_span(row, (size_t)i + 1));
		scale_span(row, (size_t)i + 1, (float)(1.0 / s));
		/* Zeros above the diagonal inside its block: the products read no further. */
		int end = (i / ROW_BLOCK + 1) * ROW_BLOCK < T ? (i / ROW_BLOCK + 1) * ROW_BLOCK : T;
		memset(row + i + 1, 0, (size_t)(end - i - 1) * sizeof *row);
	}
	const float *PV = P; /* the probabilities the values are weighted with */
	if (d && d->P2) {
		drop_probs(d, P, T);
		PV = d->P2;
	}
	for (int r0 = 0; r0 < T; r0 += ROW_BLOCK) {
		int r1 = r0 + ROW_BLOCK < T ? r0 + ROW_BLOCK : T;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hd, r1, 1.0f,
			    PV + (size_t)r0 * T, T, v, (int)ld, 0.0f, out + (size_t)r0 * ldo,
			    (int)ldo);
	}
}

/*
 * Backward of attend for one (row, head): dq, dk, dv (stride ld) are
 * written from dout (stride ldo), P and q, k, v; dS (T, T) is scratch.
 */
static void attend_back(float *dq, float *dk, float *dv, float *dS, const float *dout, size_t ldo,
			const float *P, const float *q, const float *k, const float *v, size_t ld,
			int T, int hd, float scale, const struct attn_drop *d)
{
	/* With dropout the values were weighted by P2 = dropout(P): drawn again. */
	const float *PV = P;
	if (d && d->P2) {
		drop_probs(d, P, T);
		PV = d->P2;
	}
	/* dP = dout . v^T on the lower triangle, row blocks. */
	for (int r0 = 0; r0 < T; r0 += ROW_BLOCK) {
		int r1 = r0 + ROW_BLOCK < T ? r0 + ROW_BLOCK : T;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hd, 1.0f,
			    dout + (size_t)r0 * ldo, (int)ldo, v, (int)ld, 0.0f,
			    dS + (size_t)r0 * T, T);
	}
	/* dv = P^T . dout: row j of dv sums rows i >= j, column blocks. */
	for (int c0 = 0; c0 < T; c0 += ROW_BLOCK) {
		int c1 = c0 + ROW_BLOCK < T ? c0 + ROW_BLOCK : T;
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, hd, T - c0, 1.0f,
			    PV + (size_t)c0 * T + c0, T, dout + (size_t)c0 * ldo, (int)ldo, 0.0f,
			    dv + (size_t)c0 * ld, (int)ld);
	}
	if (d && d->P2) /* dP = dropout'(dP2): the same mask and scale */
		for (int i = 0; i < T; i++)
			dropout_span(dS + (size_t)i * T, dS + (size_t)i * T, (size_t)i + 1, d->key,
				     (uint64_t)i * (uint64_t)T, d->thresh, d->scale);
	/* Softmax backward: dS = P * (dP - sum(P * dP)), zero above the diagonal. */
	for (int i = 0; i < T; i++) {
		const float *pr = P + (size_t)i * T;
		float *dr = dS + (size_t)i * T, s = 0;
		for (int j = 0; j <= i; j++)
			s += pr[j] * dr[j];
		for (int j = 0; j <= i; j++)
			dr[j] = pr[j] * (dr[j] - s);
		int end = (i / ROW_BLOCK + 1) * ROW_BLOCK < T ? (i / ROW_BLOCK + 1) * ROW_BLOCK : T;
		for (int j = i + 1; j < end; j++)
			dr[j] = 0;
	}
	/* dq = scale * dS . k; dk = scale * dS^T . q. */
	for (int r0 = 0; r0 < T; r0 += ROW_BLOCK) {
		int r1 = r0 + ROW_BLOCK < T ? r0 + ROW_BLOCK : T;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hd, r1, scale,
			    dS + (size_t)r0 * T, T, k, (int)ld, 0.0f, dq + (size_t)r0 * ld,
			    (int)ld);
	}
	for (int c0 = 0; c0 < T; c0 += ROW_BLOCK) {
		int c1 = c0 + ROW_BLOCK < T ? c0 + ROW_BLOCK : T;
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, hd, T - c0, scale,
			    dS + (size_t)c0 * T + c0, T, q + (size_t)c0 * ld, (int)ld, 0.0f,
			    dk + (size_t)c0 * ld, (int)ld);
	}
}

/* ---- LoRA ------------------------------------------------------------------- */

/* The four layers an adapter can target, in block order. */
static const struct {
	unsigned bit;
	const char *name; /* Hugging Face module path inside a block */
} lora_sites[4] = {
    {QN_LORA_C_ATTN, "attn.c_attn"},
    {QN_LORA_ATTN_PROJ, "attn.c_proj"},
    {QN_LORA_MLP_FC, "mlp.c_fc"},
    {QN_LORA_MLP_PROJ, "mlp.c_proj"},
};

unsigned qn_gpt2_lora_target(const char *name)
{
	for (int k = 0; k < 4; k++)
		if (!strcmp(name, lora_sites[k].name))
			return lora_sites[k].bit;
	if (!strcmp(name, "c_attn"))
		return QN_LORA_C_ATTN;
	if (!strcmp(name, "c_proj"))
		return QN_LORA_ATTN_PROJ | QN_LORA_MLP_PROJ;
	if (!strcmp(name, "c_fc"))
		return QN_LORA_MLP_FC;
	return 0;
}

/* Inputs and outputs of site k. */
static void lora_dims(const struct qn_gpt2_config *c, int k, size_t *in, size_t *out)
{
	size_t C = (size_t)c->n_embd, F = (size_t)ninner(c);
	const size_t ins[4] = {C, C, C, F}, outs[4] = {3 * C, C, F, C};
	*in = ins[k];
	*out = outs[k];
}

/* A and B of block l, site k, in base (params or grads); 0 when not targeted. */
static int lora_at(const struct qn_gpt2 *m, float *base, int l, int k, float **A, float **B)
{
	const struct qn_gpt2_lora *a = m->lora;
	if (!a || !(a->targets & lora_sites[k].bit))
		return 0;
	size_t per = 0, idx = 0;
	for (int j = 0; j < 4; j++)
		if (a->targets & lora_sites[j].bit) {
			if (j < k)
				idx++;
			per++;
		}
	const struct qn_gpt2_tensor *t = a->tensors + 2 * ((size_t)l * per + idx);
	*A = base + t[0].offset;
	*B = base + t[1].offset;
	return 1;
}

static int lora_tables(struct qn_gpt2 *m, int r, float alpha, unsigned targets, struct qn_err *e)
{
	const struct qn_gpt2_config *c = &m->cfg;
	if (r < 1 || r > 65536)
		return qn_errf(e, "LoRA rank %d is not in 1..65536", r);
	if (!(alpha > 0))
		return qn_errf(e, "LoRA alpha %g is not positive", (double)alpha);
	if (!targets)
		return qn_errf(e, "LoRA targets: none given");
	if (targets & ~15u)
		return qn_errf(e, "LoRA targets 0x%x: unknown bits", targets);
	struct qn_gpt2_lora *a = calloc(1, sizeof *a);
	size_t per = 0;
	for (int k = 0; k < 4; k++)
		per += (targets & lora_sites[k].bit) != 0;
	if (a)
		a->tensors = calloc(2 * per * (size_t)c->n_layer, sizeof *a->tensors);
	if (!a || !a->tensors) {
		free(a);
		return qn_errf(e, "out of memory");
	}
	a->r = r;
	a->alpha = alpha;
	a->scaling = alpha / (float)r;
	a->targets = targets;
	a->enabled = 1;
	size_t off = 0, n = 0;
	for (int l = 0; l < c->n_layer; l++)
		for (int k = 0; k < 4; k++) {
			if (!(targets & lora_sites[k].bit))
				continue;
			size_t in, out;
			lora_dims(c, k, &in, &out);
			for (int ab = 0; ab < 2; ab++) {
				struct qn_gpt2_tensor *t = a->tensors + n++;
				snprintf(t->name, sizeof t->name, "h.%d.%s.lora_%c.weight", l,
					 lora_sites[k].name, ab ? 'B' : 'A');
				t->ndim = 2;
				t->shape[0] = ab ? out : (uint64_t)r;
				t->shape[1] = ab ? (uint64_t)r : in;
				t->numel = (size_t)r * (ab ? out : in);
				t->offset = off;
				t->layer = l;
				t->decay = 1;
				off += t->numel;
			}
		}
	a->ntensors = n;
	a->nparams = off;
	a->params = calloc(off, sizeof(float));
	if (!a->params) {
		free(a->tensors);
		free(a);
		return qn_errf(e, "out of memory for the adapter");
	}
	m->lora = a;
	return 0;
}

int qn_gpt2_lora_add(struct qn_gpt2 *m, int r, float alpha, unsigned targets, uint64_t seed,
		     struct qn_err *e)
{
	if (m->lora)
		return qn_errf(e, "the model has an adapter already");
	if (lora_tables(m, r, alpha, targets, e))
		return -1;
	struct rng g;
	rng_seed(&g, seed);
	struct qn_gpt2_lora *a = m->lora;
	for (size_t i = 0; i < a->ntensors; i += 2) { /* A uniform, B zero */
		const struct qn_gpt2_tensor *t = a->tensors + i;
		double bound = 1.0 / sqrt((double)t->shape[1]);
		for (size_t j = 0; j < t->numel; j++)
			a->params[t->offset + j] =
			    (float)(bound * (2.0 * ((rng_next(&g) >> 11) * 0x1.0p-53) - 1.0));
	}
	return 0;
}

/* The PEFT name of adapter tensor t. */
static void peft_name(const struct qn_gpt2_tensor *t, char *out, size_t n)
{
	snprintf(out, n, "base_model.model.transformer.%s", t->name);
}

int qn_gpt2_lora_save(const struct qn_gpt2 *m, const char *dir, const char *base_name,
		      struct qn_err *e)
{
	const struct qn_gpt2_lora *a = m->lora;
	char path[4096], nm[160];
	if (!a)
		return qn_errf(e, "the model has no adapter");
	struct qn_st_writer *w = qn_st_writer_new();
	if (!w)
		return qn_errf(e, "out of memory");
	int rc = 0;
	for (size_t i = 0; !rc && i < a->ntensors; i++) {
		peft_name(a->tensors + i, nm, sizeof nm);
		rc = qn_st_writer_add(w, nm, QN_ST_F32, 2, a->tensors[i].shape,
				      a->params + a->tensors[i].offset, e);
	}
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	if (!rc)
		rc = qn_st_writer_meta(w, "format", "pt", e) || qn_st_writer_write(w, path, e);
	qn_st_writer_free(w);
	if (rc)
		return -1;
	json_t *o = json_object(), *tm = json_array();
	for (int k = 0; k < 4; k++)
		if (a->targets & lora_sites[k].bit)
			json_array_append_new(tm, json_string(lora_sites[k].name));
	json_object_set_new(o, "base_model_name_or_path", json_string(base_name ? base_name : ""));
	json_object_set_new(o, "bias", json_string("none"));
	json_object_set_new(o, "fan_in_fan_out", json_true());
	json_object_set_new(o, "inference_mode", json_true());
	json_object_set_new(o, "init_lora_weights", json_true());
	json_object_set_new(o, "layers_to_transform", json_null());
	json_object_set_new(o, "lora_alpha", json_real(a->alpha));
	json_object_set_new(o, "lora_dropout", json_real(a->dropout));
	json_object_set_new(o, "modules_to_save", json_null());
	json_object_set_new(o, "peft_type", json_string("LORA"));
	json_object_set_new(o, "r", json_integer(a->r));
	json_object_set_new(o, "target_modules", tm);
	json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
	char *txt = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
	json_decref(o);
	if (!txt)
		return qn_errf(e, "out of memory");
	snprintf(path, sizeof path, "%s/adapter_config.json", dir);
	size_t n = strlen(txt);
	txt[n] = '\n';
	rc = qn_write_file_atomic(path, txt, n + 1, e);
	free(txt);
	return rc;
}

int qn_gpt2_lora_parse_config(const char *buf, size_t len, const char *name, int *rank,
			      float *alpha, unsigned *targets_out, float *dropout, struct qn_err *e)
{
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return qn_errf(e, "'%s': line %d: %s", name, je.line, je.text);
	int rc = -1;
	const char *pt = json_string_value(json_object_get(o, "peft_type"));
	json_t *r = json_object_get(o, "r"), *al = json_object_get(o, "lora_alpha");
	json_t *tm = json_object_get(o, "target_modules");
	unsigned targets = 0;
	if (!json_is_object(o)) {
		qn_errf(e, "'%s': not a JSON object", name);
		goto out;
	}
	if (!pt || strcmp(pt, "LORA")) {
		qn_errf(e, "'%s': peft_type is not \"LORA\"", name);
		goto out;
	}
	if (!json_is_integer(r) || !json_is_number(al)) {
		qn_errf(e, "'%s': r and lora_alpha must be numbers", name);
		goto out;
	}
	if (json_is_string(tm)) {
		targets = qn_gpt2_lora_target(json_string_value(tm));
	} else if (json_is_array(tm)) {
		for (size_t i = 0; i < json_array_size(tm); i++) {
			const char *t = json_string_value(json_array_get(tm, i));
			unsigned bit = t ? qn_gpt2_lora_target(t) : 0;
			if (!bit) {
				qn_errf(
				    e,
				    "'%s': target module '%s' is not a GPT-2 layer LoRA can adapt",
				    name, t ? t : "?");
				goto out;
			}
			targets |= bit;
		}
	}
	if (!targets) {
		qn_errf(e, "'%s': no target_modules quern-train knows", name);
		goto out;
	}
	json_t *fio = json_object_get(o, "fan_in_fan_out");
	if (fio && json_is_false(fio)) {
		qn_errf(e, "'%s': fan_in_fan_out is false; GPT-2's Conv1D layers need true", name);
		goto out;
	}
	/* PEFT options that change the computation, which quern does not do: refused. */
	static const char *const unsupported[] = {"use_rslora",		 "use_dora",
						  "rank_pattern",	 "alpha_pattern",
						  "layers_to_transform", "modules_to_save"};
	for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
		json_t *v = json_object_get(o, unsupported[i]);
		if (v && !json_is_null(v) && !json_is_false(v) &&
		    !(json_is_object(v) && json_object_size(v) == 0) &&
		    !(json_is_array(v) && json_array_size(v) == 0)) {
			qn_errf(e, "'%s': %s is not supported", name, unsupported[i]);
			goto out;
		}
	}
	const char *bias = json_string_value(json_object_get(o, "bias"));
	if (bias && strcmp(bias, "none")) {
		qn_errf(e, "'%s': bias \"%s\" is not supported (only \"none\")", name, bias);
		goto out;
	}
	if (json_integer_value(r) < 1 || json_integer_value(r) > 65536) {
		qn_errf(e, "'%s': r %lld is out of range", name, (long long)json_integer_value(r));
		goto out;
	}
	double av = json_number_value(al);
	if (!(av > 0 && av < 1e9)) {
		qn_errf(e, "'%s': lora_alpha %g is not positive", name, av);
		goto out;
	}
	json_t *dr = json_object_get(o, "lora_dropout");
	double dv = dr && !json_is_null(dr) ? json_number_value(dr) : 0;
	if (dr && !json_is_null(dr) && (!json_is_number(dr) || !(dv >= 0 && dv < 1))) {
		qn_errf(e, "'%s': lora_dropout is not a probability in [0, 1)", name);
		goto out;
	}
	*rank = (int)json_integer_value(r);
	*alpha = (float)av;
	*targets_out = targets;
	if (dropout)
		*dropout = (float)dv;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int qn_gpt2_lora_load(struct qn_gpt2 *m, const char *dir, struct qn_err *e)
{
	char path[4096], nm[160], *buf = NULL;
	size_t len = 0;
	int rc = -1, rank;
	float alpha, dropout;
	unsigned targets;
	if (m->lora)
		return qn_errf(e, "the model has an adapter already");
	snprintf(path, sizeof path, "%s/adapter_config.json", dir);
	if (read_small(path, &buf, &len, e))
		return -1;
	int bad = qn_gpt2_lora_parse_config(buf, len, path, &rank, &alpha, &targets, &dropout, e);
	free(buf);
	if (bad)
		return -1;
	if (lora_tables(m, rank, alpha, targets, e)) {
		qn_err_prefix(e, "'%s'", path);
		return -1;
	}
	m->lora->dropout = dropout;
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	struct qn_st *st = qn_st_open(path, e);
	if (!st)
		goto drop;
	struct qn_gpt2_lora *a = m->lora;
	for (size_t i = 0; i < a->ntensors; i++) {
		const struct qn_gpt2_tensor *t = a->tensors + i;
		peft_name(t, nm, sizeof nm);
		const struct qn_st_tensor *x = qn_st_find(st, nm);
		if (!x) { /* PEFT in memory names the adapter: ...lora_A.default.weight */
			char alt[200];
			snprintf(alt, sizeof alt, "%.*s.default.weight",
				 (int)(strlen(nm) - strlen(".weight")), nm);
			x = qn_st_find(st, alt);
		}
		if (!x) {
			qn_errf(e, "'%s': tensor '%s' is missing", path, nm);
			qn_st_close(st);
			goto drop;
		}
		if (x->ndim != 2 || x->shape[0] != t->shape[0] || x->shape[1] != t->shape[1]) {
			qn_errf(e,
				"'%s': tensor '%s' is not [%llu, %llu]: the adapter does not fit "
				"this base model",
				path, nm, (unsigned long long)t->shape[0],
				(unsigned long long)t->shape[1]);
			qn_st_close(st);
			goto drop;
		}
		if (qn_st_read_f32(st, x, a->params + t->offset, t->numel, e)) {
			qn_st_close(st);
			goto drop;
		}
	}
	qn_st_close(st);
	return 0;
drop:
	lora_drop(m);
	return rc;
}

void qn_gpt2_lora_merge(struct qn_gpt2 *m)
{
	struct qn_gpt2_lora *a = m->lora;
	if (!a)
		return;
	for (int l = 0; l < m->cfg.n_layer; l++) {
		struct block w;
		block_at(m, m->params, l, &w);
		float *W[4] = {w.qkvw, w.attpw, w.fcw, w.fcpw};
		for (int k = 0; k < 4; k++) {
			float *A, *B;
			size_t in, out;
			if (!lora_at(m, a->params, l, k, &A, &B))
				continue;
			lora_dims(&m->cfg, k, &in, &out);
			/* W (in, out) += scaling * A^T (in, r) . B^T (r, out) */
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)in, (int)out, a->r,
				    a->scaling, A, (int)in, B, a->r, 1.0f, W[k], (int)out);
		}
	}
	lora_drop(m);
}

void qn_gpt2_lora_zero_grads(struct qn_gpt2 *m)
{
	if (m->lora && m->lora->grads)
		memset(m->lora->grads, 0, m->lora->nparams * sizeof(float));
}

void qn_gpt2_lora_adamw(struct qn_gpt2 *m, float *mom, float *var, const struct qn_adamw *o,
			long step)
{
	struct qn_gpt2_lora *a = m->lora;
	if (!a || !a->grads)
		return;
	double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
	float step_size = (float)(o->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
	float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
	float decay = (float)(1.0 - o->lr * o->weight_decay);
	float *p = a->params, *g = a->grads;
	for (size_t j = 0; j < a->nparams; j++) {
		p[j] *= decay;
		mom[j] = b1 * mom[j] + (1 - b1) * g[j];
		var[j] = b2 * var[j] + (1 - b2) * g[j] * g[j];
		float denom = sqrtf(var[j]) / bc2_sqrt + eps;
		p[j] -= step_size * (mom[j] / denom);
	}
}

static void dropout_all(float *out, const float *x, size_t n, uint64_t key, float p, int th);

/* Dropout on an adapter's input (PEFT's lora_dropout): off when NULL or p is 0. */
struct lora_drop {
	float *xd; /* N x in scratch: the dropped input */
	uint64_t key;
	float p;
};

/*
 * y (N, out) += scaling * u B^T with u = x A^T (N, r), kept in u for
 * backward; with dropout, u = dropout(x) A^T. Rows split across threads.
 */
static void lora_forward(const struct qn_gpt2 *m, int l, int k, float *y, const float *x, size_t N,
			 float *u, const struct lora_drop *d)
{
	float *A, *B;
	size_t in, out;
	const struct qn_gpt2_lora *a = m->lora;
	if (!a || !a->enabled || !lora_at(m, a->params, l, k, &A, &B))
		return;
	lora_dims(&m->cfg, k, &in, &out);
	int th = m->threads, r = a->r;
	if (d && d->p > 0) {
		dropout_all(d->xd, x, N * in, d->key, d->p, th);
		x = d->xd;
	}
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t r0, r1;
		split(N, th, p, &r0, &r1);
		if (r0 == r1)
			continue;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), r, (int)in,
			    1.0f, x + r0 * in, (int)in, A, (int)in, 0.0f, u + r0 * (size_t)r, r);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)out, r,
			    a->scaling, u + r0 * (size_t)r, r, B, r, 1.0f, y + r0 * out, (int)out);
	}
}

/*
 * Backward of lora_forward: dB += scaling dy^T u, du = scaling dy B,
 * dA += du^T x, dx += du A (with dropout, x is the dropped input, redrawn,
 * and du A passes back through the same mask).
 */
static void lora_backward(const struct qn_gpt2 *m, int l, int k, float *dx, const float *dy,
			  const float *x, size_t N, const float *u, float *du,
			  const struct lora_drop *d)
{
	float *A, *B, *dA, *dB;
	size_t in, out;
	const struct qn_gpt2_lora *a = m->lora;
	if (!a || !a->enabled || !lora_at(m, a->params, l, k, &A, &B))
		return;
	lora_at(m, a->grads, l, k, &dA, &dB);
	lora_dims(&m->cfg, k, &in, &out);
	int th = m->threads, r = a->r;
	int drop = d && d->p > 0;
	if (drop) {
		dropout_all(d->xd, x, N * in, d->key, d->p, th);
		x = d->xd;
	}
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t o0, o1;
		split(out, th, p, &o0, &o1);
		if (o0 < o1)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(o1 - o0), r,
				    (int)N, a->scaling, dy + o0, (int)out, u, r, 1.0f,
				    dB + o0 * (size_t)r, r);
	}
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t r0, r1;
		split(N, th, p, &r0, &r1);
		if (r0 < r1)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), r,
				    (int)out, a->scaling, dy + r0 * out, (int)out, B, r, 0.0f,
				    du + r0 * (size_t)r, r);
	}
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t i0, i1;
		split(in, th, p, &i0, &i1);
		if (i0 < i1)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, (int)(i1 - i0),
				    (int)N, 1.0f, du, r, x + i0, (int)in, 1.0f, dA + i0, (int)in);
	}
	if (!dx)
		return;
	/* dx += du A; through the dropout, via the scratch (x is no longer needed). */
	float *to = drop ? d->xd : dx;
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t r0, r1;
		split(N, th, p, &r0, &r1);
		if (r0 < r1)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0),
				    (int)in, r, 1.0f, du + r0 * (size_t)r, r, A, (int)in,
				    drop ? 0.0f : 1.0f, to + r0 * in, (int)in);
	}
	if (!drop)
		return;
	dropout_all(d->xd, d->xd, N * in, d->key, d->p, th);
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t j0, j1;
		split(N * in, th, p, &j0, &j1);
		for (size_t j = j0; j < j1; j++)
			dx[j] += d->xd[j];
	}
}

/* ---- training --------------------------------------------------------------- */

/* The kept x A^T of block l, site k (N rows of r). */
#define LORA_U(t, l, k, N)                                                                         \
	((t)->lora_u +                                                                             \
	 ((size_t)(l)*4 + (size_t)(k)) * (N) * (size_t)((t)->m->lora ? (t)->m->lora->r : 0))

struct qn_gpt2_train {
	struct qn_gpt2 *m;
	int Bmax, Tmax;
	int B, T; /* of the last forward */
	/* Per layer (index l * size): */
	float *res; /* (L+1) x N x C: block inputs, then the last output */
	float *ln1, *ln1_mean, *ln1_rstd;
	float *qkv;  /* N x 3C */
	float *att;  /* B x H x T x T */
	float *atty; /* N x C */
	float *res2; /* N x C: after the attention residual */
	float *ln2, *ln2_mean, *ln2_rstd;
	float *fch; /* N x F: before GELU */
	/* Shared: */
	float *lnf, *lnf_mean, *lnf_rstd;
	float *probs; /* N x V: the logits, then the loss's gradient */
	float *act;   /* N x F: GELU output (recomputed in backward) */
	float *dres, *dln, *datty;
	float *dqkv;	 /* N x 3C */
	float *dfch;	 /* N x F */
	float *dS;	 /* threads x T x T */
	float *weight;	 /* N: each position's share of the loss */
	double *rowloss; /* N */
	uint32_t *inputs, *targets;
	int nthreads_alloc;
	float p_embd, p_attn, p_resid; /* dropout, 0: off (qn_gpt2_dropout) */
	uint64_t drop_key;
	float *drop_y;	/* N x C: a projection's output before its dropout, or its gradient */
	float *dP2;	/* nthreads_alloc x T x T: dropped attention probabilities */
	float *lora_u;	/* L x 4 x N x r: x A^T of each adapter, kept for backward */
	int lora_r;	/* the rank lora_u was sized for; 0: none */
	float *lora_du; /* N x r scratch */
	float *lora_x;	/* N x max(C, F): an adapter's dropped input (lora dropout) */
	struct lora_drop lora_drop;
};

static void *xcalloc(size_t n, size_t size, int *fail)
{
	void *p = n ? calloc(n, size) : NULL;
	if (n && !p)
		*fail = 1;
	return p;
}

void qn_gpt2_dropout(struct qn_gpt2_train *t, float embd, float attn, float resid, uint64_t key)
{
	t->p_embd = embd > 0 && embd < 1 ? embd : 0;
	t->p_attn = attn > 0 && attn < 1 ? attn : 0;
	t->p_resid = resid > 0 && resid < 1 ? resid : 0;
	t->drop_key = key;
}

/* The mask key of dropout site s (0: embeddings; then 3 a block) of this pass. */
static uint64_t site_key(const struct qn_gpt2_train *t, uint64_t s)
{
	return t->drop_key ^ (s + 1) * 0xd1b54a32d192ed03ull;
}

static uint32_t drop_thresh(float p)
{
	return (uint32_t)((double)p * 4294967296.0);
}

/* out (n floats, mask elements 0..n) = dropout(x), split across threads. */
static void dropout_all(float *out, const float *x, size_t n, uint64_t key, float p, int th)
{
	uint32_t thr = drop_thresh(p);
	float sc = 1.0f / (1.0f - p);
	OMP_FOR
	for (int q = 0; q < th; q++) {
		size_t j0, j1;
		split(n, th, q, &j0, &j1);
		dropout_span(out + j0, x + j0, j1 - j0, key, j0, thr, sc);
	}
}

/*
 * The adapter-input dropout of block l, site k in training (t's one slot,
 * valid until the next call); p 0 when off: no adapter dropout, or key 0.
 */
static const struct lora_drop *lora_drop_at(struct qn_gpt2_train *t, int l, int k)
{
	const struct qn_gpt2_lora *a = t->m->lora;
	struct lora_drop *d = &t->lora_drop;
	d->xd = t->lora_x;
	d->key = 0;
	d->p = 0;
	if (a && a->dropout > 0 && t->lora_x && t->drop_key) {
		d->p = a->dropout;
		d->key = site_key(t, 1000000 + 4 * (uint64_t)l + (uint64_t)k);
	}
	return d;
}

/* Attention dropout of block l, row-head bh, scratch slot p; off when p_attn is 0. */
static struct attn_drop attn_drop_at(const struct qn_gpt2_train *t, int l, size_t bh, int p)
{
	struct attn_drop d = {NULL, 0, drop_thresh(t->p_attn), 1.0f / (1.0f - t->p_attn)};
	if (t->p_attn > 0) {
		d.P2 = t->dP2 + (size_t)p * (size_t)t->T * (size_t)t->T;
		d.key = site_key(t, 1 + 3 * (uint64_t)l) + bh * 0x632be59bd9b4e019ull;
	}
	return d;
}

struct qn_gpt2_train *qn_gpt2_train_new(struct qn_gpt2 *m, int B, int T, struct qn_err *e)
{
	const struct qn_gpt2_config *c = &m->cfg;
	if (B < 1 || T < 1 || T > c->n_positions) {
		qn_errf(e, "batch %d x %d does not fit a context of %d", B, T, c->n_positions);
		return NULL;
	}
	struct qn_gpt2_train *t = calloc(1, sizeof *t);
	if (!t) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	size_t L = (size_t)c->n_layer, N = (size_t)B * T, C = (size_t)c->n_embd,
	       F = (size_t)ninner(c), V = (size_t)c->vocab_size, H = (size_t)c->n_head;
	int fail = 0;
	t->m = m;
	t->Bmax = B;
	t->Tmax = T;
	t->res = xcalloc((L + 1) * N * C, sizeof(float), &fail);
	t->ln1 = xcalloc(L * N * C, sizeof(float), &fail);
	t->ln1_mean = xcalloc(L * N, sizeof(float), &fail);
	t->ln1_rstd = xcalloc(L * N, sizeof(float), &fail);
	t->qkv = xcalloc(L * N * 3 * C, sizeof(float), &fail);
	t->att = xcalloc(L * (size_t)B * H * (size_t)T * T, sizeof(float), &fail);
	t->atty = xcalloc(L * N * C, sizeof(float), &fail);
	t->res2 = xcalloc(L * N * C, sizeof(float), &fail);
	t->ln2 = xcalloc(L * N * C, sizeof(float), &fail);
	t->ln2_mean = xcalloc(L * N, sizeof(float), &fail);
	t->ln2_rstd = xcalloc(L * N, sizeof(float), &fail);
	t->fch = xcalloc(L * N * F, sizeof(float), &fail);
	t->lnf = xcalloc(N * C, sizeof(float), &fail);
	t->lnf_mean = xcalloc(N, sizeof(float), &fail);
	t->lnf_rstd = xcalloc(N, sizeof(float), &fail);
	t->probs = xcalloc(N * V, sizeof(float), &fail);
	t->act = xcalloc(N * F, sizeof(float), &fail);
	t->dres = xcalloc(N * C, sizeof(float), &fail);
	t->dln = xcalloc(N * C, sizeof(float), &fail);
	t->datty = xcalloc(N * C, sizeof(float), &fail);
	t->dqkv = xcalloc(N * 3 * C, sizeof(float), &fail);
	t->dfch = xcalloc(N * F, sizeof(float), &fail);
	t->nthreads_alloc = m->threads;
	t->dS = xcalloc((size_t)m->threads * T * T, sizeof(float), &fail);
	t->dP2 = xcalloc((size_t)m->threads * T * T, sizeof(float), &fail);
	t->drop_y = xcalloc(N * C, sizeof(float), &fail);
	t->weight = xcalloc(N, sizeof(float), &fail);
	t->rowloss = xcalloc(N, sizeof(double), &fail);
	t->inputs = xcalloc(N, sizeof(uint32_t), &fail);
	t->targets = xcalloc(N, sizeof(uint32_t), &fail);
	if (m->lora) {
		t->lora_r = m->lora->r;
		t->lora_u = xcalloc(L * 4 * N * (size_t)m->lora->r, sizeof(float), &fail);
		t->lora_du = xcalloc(N * (size_t)m->lora->r, sizeof(float), &fail);
		if (m->lora->dropout > 0)
			t->lora_x = xcalloc(N * (F > C ? F : C), sizeof(float), &fail);
		if (!m->lora->grads)
			m->lora->grads = xcalloc(m->lora->nparams, sizeof(float), &fail);
	}
	if (!m->grads)
		m->grads = xcalloc(m->nparams, sizeof(float), &fail);
	if (fail) {
		qn_gpt2_train_free(t);
		qn_errf(e, "out of memory for the activations of a %d x %d batch", B, T);
		return NULL;
	}
	return t;
}

void qn_gpt2_train_free(struct qn_gpt2_train *t)
{
	if (!t)
		return;
	float *bufs[] = {t->res,  t->ln1,      t->ln1_mean, t->ln1_rstd, t->qkv,      t->att,
			 t->atty, t->res2,     t->ln2,	    t->ln2_mean, t->ln2_rstd, t->fch,
			 t->lnf,  t->lnf_mean, t->lnf_rstd, t->probs,	 t->act,      t->dres,
			 t->dln,  t->datty,    t->dqkv,	    t->dfch,	 t->dS,	      t->weight};
	for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
		free(bufs[i]);
	free(t->rowloss);
	free(t->lora_u);
	free(t->lora_du);
	free(t->lora_x);
	free(t->dP2);
	free(t->drop_y);
	free(t->inputs);
	free(t->targets);
	free(t);
}

/*
 * The trainable parameters as runs of adjacent tensors, [start, end) in the
 * flat array: one run when nothing is frozen. r holds ntensors entries.
 */
static size_t trainable_runs(const struct qn_gpt2 *m, size_t (*r)[2])
{
	size_t n = 0;
	for (size_t i = 0; i < m->ntensors; i++) {
		if (m->frozen && m->frozen[i])
			continue;
		size_t a = m->tensors[i].offset, b = a + m->tensors[i].numel;
		if (n && r[n - 1][1] == a)
			r[n - 1][1] = b;
		else {
			r[n][0] = a;
			r[n++][1] = b;
		}
	}
	return n;
}

void qn_gpt2_zero_grads(struct qn_gpt2 *m)
{
	if (!m->grads)
		return;
	int th = m->threads;
	size_t(*r)[2] = malloc(m->ntensors * sizeof *r);
	size_t nr = r ? trainable_runs(m, r) : 0;
	for (size_t k = 0; k < nr; k++) { /* frozen parts: never written, never touched */
		OMP_FOR
		for (int p = 0; p < th; p++) {
			size_t j0, j1;
			split(r[k][1] - r[k][0], th, p, &j0, &j1);
			memset(m->grads + r[k][0] + j0, 0, (j1 - j0) * sizeof(float));
		}
	}
	if (!r) /* no memory for the runs: all of it */
		memset(m->grads, 0, m->nparams * sizeof(float));
	free(r);
	qn_gpt2_lora_zero_grads(m);
}

int qn_gpt2_freeze(struct qn_gpt2 *m, size_t i, int frozen)
{
	if (i >= m->ntensors)
		return -1;
	if (!m->frozen && !(m->frozen = calloc(m->ntensors, 1)))
		return -1;
	m->frozen[i] = frozen != 0;
	return 0;
}

int qn_gpt2_is_frozen(const struct qn_gpt2 *m, size_t i)
{
	return m->frozen && i < m->ntensors && m->frozen[i];
}

/* The lowest block whose input gradient is needed: -1 when the embeddings train. */
static int lowest_trainable(const struct qn_gpt2 *m)
{
	if (!m->frozen || !m->frozen[WTE] || !m->frozen[WPE])
		return -1;
	if (m->lora && m->lora->enabled)
		return 0; /* every block has its adapters */
	for (int l = 0; l < m->cfg.n_layer; l++)
		for (int i = 0; i < T_PER_LAYER; i++)
			if (!m->frozen[FIRST_LAYER + (size_t)l * T_PER_LAYER + (size_t)i])
				return l;
	return m->cfg.n_layer;
}

/* The shared forward of the blocks over t->inputs; fills t->res[L]. */
static void blocks_forward(struct qn_gpt2_train *t, int B, int T)
{
	struct qn_gpt2 *m = t->m;
	const struct qn_gpt2_config *c = &m->cfg;
	size_t N = (size_t)B * T, C = (size_t)c->n_embd, F = (size_t)ninner(c);
	int H = c->n_head, hd = c->n_embd / H, th = m->threads;
	float scale = 1.0f / sqrtf((float)hd);
	const float *wte = tensor_at(m, m->params, WTE), *wpe = tensor_at(m, m->params, WPE);

	OMP_FOR
	for (size_t r = 0; r < N; r++) {
		const float *a = wte + (size_t)t->inputs[r] * C, *p = wpe + (r % (size_t)T) * C;
		float *o = t->res + r * C;
		for (size_t i = 0; i < C; i++)
			o[i] = a[i] + p[i];
	}
	if (t->p_embd > 0)
		dropout_all(t->res, t->res, N * C, site_key(t, 0), t->p_embd, th);
	int parts = th < t->nthreads_alloc ? th : t->nthreads_alloc;
	for (int l = 0; l < c->n_layer; l++) {
		struct block w;
		block_at(m, m->params, l, &w);
		const float *x = t->res + (size_t)l * N * C;
		float *ln1 = t->ln1 + (size_t)l * N * C, *qkv = t->qkv + (size_t)l * N * 3 * C;
		float *att = t->att + (size_t)l * B * H * (size_t)T * T;
		float *atty = t->atty + (size_t)l * N * C, *res2 = t->res2 + (size_t)l * N * C;
		float *ln2 = t->ln2 + (size_t)l * N * C, *fch = t->fch + (size_t)l * N * F;
		float *out = t->res + (size_t)(l + 1) * N * C;

		layernorm(ln1, t->ln1_mean + (size_t)l * N, t->ln1_rstd + (size_t)l * N, x, w.ln1w,
			  w.ln1b, N, C, c->eps, th);
		matmul(qkv, ln1, w.qkvw, w.qkvb, N, C, 3 * C, 0, th);
		lora_forward(m, l, 0, qkv, ln1, N, LORA_U(t, l, 0, N), lora_drop_at(t, l, 0));
		OMP_FOR
		for (int p = 0; p < parts; p++) {
			size_t i0, i1;
			split((size_t)B * H, parts, p, &i0, &i1);
			for (size_t bh = i0; bh < i1; bh++) {
				int b = (int)bh / H, h = (int)bh % H;
				const float *q = qkv + (size_t)b * T * 3 * C + (size_t)h * hd;
				struct attn_drop d = attn_drop_at(t, l, bh, p);
				attend(atty + (size_t)b * T * C + (size_t)h * hd, C,
				       att + bh * T * T, q, q + C, q + 2 * C, 3 * C, T, hd, scale,
				       &d);
			}
		}
		if (t->p_resid > 0) { /* res2 = x + dropout(atty . attpw + attpb) */
			matmul(t->drop_y, atty, w.attpw, w.attpb, N, C, C, 0, th);
			lora_forward(m, l, 1, t->drop_y, atty, N, LORA_U(t, l, 1, N),
				     lora_drop_at(t, l, 1));
			dropout_all(t->drop_y, t->drop_y, N * C, site_key(t, 2 + 3 * (uint64_t)l),
				    t->p_resid, th);
			for (size_t i = 0; i < N * C; i++)
				res2[i] = x[i] + t->drop_y[i];
		} else {
			memcpy(res2, x, N * C * sizeof(float));
			matmul(res2, atty, w.attpw, w.attpb, N, C, C, 1, th);
			lora_forward(m, l, 1, res2, atty, N, LORA_U(t, l, 1, N),
				     lora_drop_at(t, l, 1));
		}
		layernorm(ln2, t->ln2_mean + (size_t)l * N, t->ln2_rstd + (size_t)l * N, res2,
			  w.ln2w, w.ln2b, N, C, c->eps, th);
		matmul(fch, ln2, w.fcw, w.fcb, N, C, F, 0, th);
		lora_forward(m, l, 2, fch, ln2, N, LORA_U(t, l, 2, N), lora_drop_at(t, l, 2));
		gelu(t->act, fch, N * F, th);
		if (t->p_resid > 0) { /* out = res2 + dropout(act . fcpw + fcpb) */
			matmul(t->drop_y, t->act, w.fcpw, w.fcpb, N, F, C, 0, th);
			lora_forward(m, l, 3, t->drop_y, t->act, N, LORA_U(t, l, 3, N),
				     lora_drop_at(t, l, 3));
			dropout_all(t->drop_y, t->drop_y, N * C, site_key(t, 3 + 3 * (uint64_t)l),
				    t->p_resid, th);
			for (size_t i = 0; i < N * C; i++)
				out[i] = res2[i] + t->drop_y[i];
		} else {
			memcpy(out, res2, N * C * sizeof(float));
			matmul(out, t->act, w.fcpw, w.fcpb, N, F, C, 1, th);
			lora_forward(m, l, 3, out, t->act, N, LORA_U(t, l, 3, N),
				     lora_drop_at(t, l, 3));
		}
	}
}

double qn_gpt2_forward(struct qn_gpt2_train *t, const uint32_t *inputs, const uint32_t *targets,
		       const uint8_t *mask, double denom, int B, int T, size_t *counted,
		       float *logits)
{
	struct qn_gpt2 *m = t->m;
	const struct qn_gpt2_config *c = &m->cfg;
	size_t N = (size_t)B * T, C = (size_t)c->n_embd, V = (size_t)c->vocab_size;
	size_t L = (size_t)c->n_layer;
	int th = m->threads;

	if (m->lora && m->lora->enabled && m->lora->r > t->lora_r)
		return NAN; /* the adapter came after qn_gpt2_train_new: no room for it */
	t->B = B;
	t->T = T;
	memcpy(t->inputs, inputs, N * sizeof *inputs);
	memcpy(t->targets, targets, N * sizeof *targets);
	size_t n = 0;
	for (size_t r = 0; r < N; r++)
		n += !mask || mask[r];
	if (counted)
		*counted = n;
	double div = denom > 0 ? denom : (double)n;
	for (size_t r = 0; r < N; r++)
		t->weight[r] = (!mask || mask[r]) && div > 0 ? (float)(1.0 / div) : 0.0f;

	blocks_forward(t, B, T);
	const float *lnfw = tensor_at(m, m->params, lnf_index(m));
	const float *lnfb = tensor_at(m, m->params, lnf_index(m) + 1);
	layernorm(t->lnf, t->lnf_mean, t->lnf_rstd, t->res + L * N * C, lnfw, lnfb, N, C, c->eps,
		  th);
	/* logits (N, V) = lnf (N, C) . wte^T: the tied output projection. */
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t r0, r1;
		split(N, th, p, &r0, &r1);
		if (r0 < r1)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)V,
				    (int)C, 1.0f, t->lnf + r0 * C, (int)C,
				    tensor_at(m, m->params, WTE), (int)C, 0.0f, t->probs + r0 * V,
				    (int)V);
	}
	if (logits)
		memcpy(logits, t->probs, N * V * sizeof(float));

	/* Softmax and the loss, each row's in its own slot; the rows become dlogits. */
	double *rowloss = t->rowloss;
	OMP_FOR
	for (size_t r = 0; r < N; r++) {
		float *row = t->probs + r * V, lt = row[targets[r]], mx = max_span(row, V);
		float w = t->weight[r];
		double s = exp_sum_span(row, V, mx);
		rowloss[r] = (log(s) + mx - lt) * w;
		/* The loss's gradient right away, while the row is in cache:
		 * (softmax - onehot(target)) * weight; backward scales it. */
		if (w == 0) {
			memset(row, 0, V * sizeof *row);
			continue;
		}
		scale_span(row, V, (float)(1.0 / s) * w);
		row[targets[r]] -= w;
	}
	double loss = 0;
	for (size_t r = 0; r < N; r++)
		loss += rowloss[r];
	return loss;
}

const double *qn_gpt2_position_losses(const struct qn_gpt2_train *t)
{
	return t->rowloss;
}

void qn_gpt2_scale_rows(struct qn_gpt2_train *t, const float *row_scale)
{
	size_t V = (size_t)t->m->cfg.vocab_size, T = (size_t)t->T, N = (size_t)t->B * T;
	int th = t->m->threads;
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t r0, r1;
		split(N, th, p, &r0, &r1);
		for (size_t r = r0; r < r1; r++)
			scale_span(t->probs + r * V, V, row_scale[r / T]);
	}
}

static void backward_trunk(struct qn_gpt2_train *t);

void qn_gpt2_backward(struct qn_gpt2_train *t, float scale)
{
	struct qn_gpt2 *m = t->m;
	const struct qn_gpt2_config *c = &m->cfg;
	int th = m->threads;
	size_t N = (size_t)t->B * t->T, C = (size_t)c->n_embd, V = (size_t)c->vocab_size;
	float *wte = tensor_at(m, m->params, WTE), *dwte = grad_at(m, WTE);

	/* dwte += dlogits^T . lnf (vocabulary rows split); dlnf = dlogits . wte. */
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t v0, v1;
		split(V, th, p, &v0, &v1);
		if (v0 < v1 && dwte)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(v1 - v0), (int)C,
				    (int)N, scale, t->probs + v0, (int)V, t->lnf, (int)C, 1.0f,
				    dwte + v0 * C, (int)C);
	}
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t r0, r1;
		split(N, th, p, &r0, &r1);
		if (r0 < r1)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0),
				    (int)C, (int)V, scale, t->probs + r0 * V, (int)V, wte, (int)C,
				    0.0f, t->dln + r0 * C, (int)C);
	}
	backward_trunk(t);
}

const float *qn_gpt2_forward_hidden(struct qn_gpt2_train *t, const uint32_t *inputs, int B, int T)
{
	struct qn_gpt2 *m = t->m;
	const struct qn_gpt2_config *c = &m->cfg;
	size_t N = (size_t)B * T, C = (size_t)c->n_embd, L = (size_t)c->n_layer;

	if (m->lora && m->lora->enabled && m->lora->r > t->lora_r)
		return NULL;
	t->B = B;
	t->T = T;
	memcpy(t->inputs, inputs, N * sizeof *inputs);
	blocks_forward(t, B, T);
	size_t f = lnf_index(m);
	layernorm(t->lnf, t->lnf_mean, t->lnf_rstd, t->res + L * N * C, tensor_at(m, m->params, f),
		  tensor_at(m, m->params, f + 1), N, C, c->eps, m->threads);
	return t->lnf;
}

void qn_gpt2_backward_hidden(struct qn_gpt2_train *t, const float *dhidden)
{
	size_t N = (size_t)t->B * t->T, C = (size_t)t->m->cfg.n_embd;
	memcpy(t->dln, dhidden, N * C * sizeof *t->dln);
	backward_trunk(t);
}

/* Backward from t->dln, the gradient at ln_f's output, down through the blocks. */
static void backward_trunk(struct qn_gpt2_train *t)
{
	struct qn_gpt2 *m = t->m;
	const struct qn_gpt2_config *c = &m->cfg;
	int B = t->B, T = t->T, H = c->n_head, hd = c->n_embd / H, th = m->threads;
	size_t N = (size_t)B * T, C = (size_t)c->n_embd, F = (size_t)ninner(c);
	size_t L = (size_t)c->n_layer;
	float ascale = 1.0f / sqrtf((float)hd);
	float *dwte = grad_at(m, WTE);
	int lowest = lowest_trainable(m); /* backward stops at this block */

	size_t f = lnf_index(m);
	if (lowest >= c->n_layer) { /* only ln_f trains */
		layernorm_back(NULL, grad_at(m, f), grad_at(m, f + 1), t->dln, t->res + L * N * C,
			       t->lnf_mean, t->lnf_rstd, tensor_at(m, m->params, f), N, C, 0, th);
		return;
	}
	layernorm_back(t->dres, grad_at(m, f), grad_at(m, f + 1), t->dln, t->res + L * N * C,
		       t->lnf_mean, t->lnf_rstd, tensor_at(m, m->params, f), N, C, 0, th);

	for (int l = c->n_layer - 1; l >= 0 && l >= lowest; l--) {
		struct block w, g;
		block_at(m, m->params, l, &w);
		grad_block_at(m, l, &g);
		const float *x = t->res + (size_t)l * N * C;
		const float *ln1 = t->ln1 + (size_t)l * N * C,
			    *qkv = t->qkv + (size_t)l * N * 3 * C;
		const float *att = t->att + (size_t)l * B * H * (size_t)T * T;
		const float *atty = t->atty + (size_t)l * N * C;
		const float *res2 = t->res2 + (size_t)l * N * C;
		const float *ln2 = t->ln2 + (size_t)l * N * C, *fch = t->fch + (size_t)l * N * F;

		/* MLP: out = res2 + gelu(ln2 . fcw + fcb) . fcpw + fcpb; dres is dout. */
		gelu(t->act, fch, N * F, th);
		const float *dy = t->dres; /* the projection's output gradient */
		if (t->p_resid > 0) {
			dropout_all(t->drop_y, t->dres, N * C, site_key(t, 3 + 3 * (uint64_t)l),
				    t->p_resid, th);
			dy = t->drop_y;
		}
		matmul_back(t->dfch, g.fcpw, g.fcpb, dy, t->act, w.fcpw, N, F, C, 0, th);
		lora_backward(m, l, 3, t->dfch, dy, t->act, N, LORA_U(t, l, 3, N), t->lora_du,
			      lora_drop_at(t, l, 3));
		gelu_back(t->dfch, fch, N * F, th);
		matmul_back(t->dln, g.fcw, g.fcb, t->dfch, ln2, w.fcw, N, C, F, 0, th);
		lora_backward(m, l, 2, t->dln, t->dfch, ln2, N, LORA_U(t, l, 2, N), t->lora_du,
			      lora_drop_at(t, l, 2));
		layernorm_back(t->dres, g.ln2w, g.ln2b, t->dln, res2, t->ln2_mean + (size_t)l * N,
			       t->ln2_rstd + (size_t)l * N, w.ln2w, N, C, 1, th);

		/* Attention: res2 = x + atty . attpw + attpb; dres is now dres2. */
		dy = t->dres;
		if (t->p_resid > 0) {
			dropout_all(t->drop_y, t->dres, N * C, site_key(t, 2 + 3 * (uint64_t)l),
				    t->p_resid, th);
			dy = t->drop_y;
		}
		matmul_back(t->datty, g.attpw, g.attpb, dy, atty, w.attpw, N, C, C, 0, th);
		lora_backward(m, l, 1, t->datty, dy, atty, N, LORA_U(t, l, 1, N), t->lora_du,
			      lora_drop_at(t, l, 1));
		/* One dS slot per part (not per OpenMP thread): parts <= the slots allocated. */
		int parts = th < t->nthreads_alloc ? th : t->nthreads_alloc;
		OMP_FOR
		for (int p = 0; p < parts; p++) {
			size_t i0, i1;
			split((size_t)B * H, parts, p, &i0, &i1);
			for (size_t bh = i0; bh < i1; bh++) {
				int b = (int)bh / H, h = (int)bh % H;
				size_t off = (size_t)b * T * 3 * C + (size_t)h * hd;
				struct attn_drop d = attn_drop_at(t, l, bh, p);
				const float *q = qkv + off;
				float *dq = t->dqkv + off;
				attend_back(dq, dq + C, dq + 2 * C, t->dS + (size_t)p * T * T,
					    t->datty + (size_t)b * T * C + (size_t)h * hd, C,
					    att + bh * T * T, q, q + C, q + 2 * C, 3 * C, T, hd,
					    ascale, &d);
			}
		}
		matmul_back(t->dln, g.qkvw, g.qkvb, t->dqkv, ln1, w.qkvw, N, C, 3 * C, 0, th);
		lora_backward(m, l, 0, t->dln, t->dqkv, ln1, N, LORA_U(t, l, 0, N), t->lora_du,
			      lora_drop_at(t, l, 0));
		/* Nothing below the lowest trainable block needs its input's gradient. */
		layernorm_back(l == lowest ? NULL : t->dres, g.ln1w, g.ln1b, t->dln, x,
			       t->ln1_mean + (size_t)l * N, t->ln1_rstd + (size_t)l * N, w.ln1w, N,
			       C, 1, th);
	}
	if (lowest >= 0)
		return;
	if (t->p_embd > 0) /* through the embeddings' dropout */
		dropout_all(t->dres, t->dres, N * C, site_key(t, 0), t->p_embd, th);

	/* Embeddings: columns split, positions in order, so repeats add up the same way. */
	float *dwpe = tensor_at(m, m->grads, WPE);
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t c0, c1;
		split(C, th, p, &c0, &c1);
		for (size_t r = 0; r < N; r++) {
			const float *d = t->dres + r * C;
			float *a = dwte + (size_t)t->inputs[r] * C, *q = dwpe + (r % (size_t)T) * C;
			for (size_t i = c0; i < c1; i++) {
				a[i] += d[i];
				q[i] += d[i];
			}
		}
	}
}

double qn_gpt2_grad_norm(const struct qn_gpt2 *m)
{
	/* Per tensor: each thread's slice in 8 double lanes, the slices added in order. */
	int th = m->threads;
	double part[256], total = 0;
	if (th > 256)
		th = 256;
	size_t(*r)[2] = malloc(m->ntensors * sizeof *r);
	size_t nr = r ? trainable_runs(m, r) : 0;
	for (size_t k = 0; k < nr; k++) {
		const float *g = m->grads + r[k][0];
		OMP_FOR
		for (int p = 0; p < th; p++) {
			size_t j0, j1;
			split(r[k][1] - r[k][0], th, p, &j0, &j1);
			part[p] = sumsq_span(g + j0, j1 - j0);
		}
		for (int p = 0; p < th; p++)
			total += part[p];
	}
	if (!r)
		total = sumsq_span(m->grads, m->nparams);
	free(r);
	if (m->lora && m->lora->grads)
		total += sumsq_span(m->lora->grads, m->lora->nparams);
	return sqrt(total);
}

double qn_gpt2_clip_grads(struct qn_gpt2 *m, double max_norm)
{
	double norm = qn_gpt2_grad_norm(m);
	double coef = max_norm / (norm + 1e-6);
	if (coef < 1.0) {
		int th = m->threads;
		size_t(*r)[2] = malloc(m->ntensors * sizeof *r);
		size_t nr = r ? trainable_runs(m, r) : 0;
		for (size_t k = 0; k < nr; k++) {
			float *g = m->grads + r[k][0];
			OMP_FOR
			for (int p = 0; p < th; p++) {
				size_t j0, j1;
				split(r[k][1] - r[k][0], th, p, &j0, &j1);
				scale_span(g + j0, j1 - j0, (float)coef);
			}
		}
		if (!r)
			scale_span(m->grads, m->nparams, (float)coef);
		free(r);
		if (m->lora && m->lora->grads)
			scale_span(m->lora->grads, m->lora->nparams, (float)coef);
	}
	return norm;
}

void qn_gpt2_adamw(struct qn_gpt2 *m, float *mom, float *var, const struct qn_adamw *o, long step)
{
	double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
	float step_size = (float)(o->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
	float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
	for (size_t i = 0; i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		if (qn_gpt2_is_frozen(m, i))
			continue;
		float decay = t->decay ? (float)(1.0 - o->lr * o->weight_decay) : 1.0f;
		float *p = m->params + t->offset, *g = m->grads + t->offset;
		float *mm = mom + t->offset, *vv = var + t->offset;
		size_t n = t->numel;
		int th = m->threads;
		OMP_FOR
		for (int q = 0; q < th; q++) {
			size_t j0, j1;
			split(n, th, q, &j0, &j1);
			for (size_t j = j0; j < j1; j++) {
				float gj = g[j];
				p[j] *= decay;
				mm[j] = b1 * mm[j] + (1 - b1) * gj;
				vv[j] = b2 * vv[j] + (1 - b2) * gj * gj;
				float denom = sqrtf(vv[j]) / bc2_sqrt + eps;
				p[j] -= step_size * (mm[j] / denom);
			}
		}
	}
}

/* ---- inference with a KV cache ---------------------------------------------- */

#define INFER_CHUNK 128 /* positions a pass: bounds the scratch */

struct qn_gpt2_infer {
	struct qn_gpt2 *m;
	int pos;
	float *k, *v;				/* L x P x C */
	float *x, *ln, *qkv, *atty, *fch, *act; /* chunk scratch */
	float *S;				/* H x chunk x P */
	float *lora_u;				/* chunk x r */
	int lora_r;				/* the rank it was sized for */
};

struct qn_gpt2_infer *qn_gpt2_infer_new(struct qn_gpt2 *m, struct qn_err *e)
{
	const struct qn_gpt2_config *c = &m->cfg;
	size_t L = (size_t)c->n_layer, P = (size_t)c->n_positions, C = (size_t)c->n_embd;
	size_t F = (size_t)ninner(c), H = (size_t)c->n_head, R = INFER_CHUNK;
	struct qn_gpt2_infer *g = calloc(1, sizeof *g);
	int fail = 0;
	if (!g) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	g->m = m;
	g->k = xcalloc(L * P * C, sizeof(float), &fail);
	g->v = xcalloc(L * P * C, sizeof(float), &fail);
	g->x = xcalloc(R * C, sizeof(float), &fail);
	g->ln = xcalloc(R * C, sizeof(float), &fail);
	g->qkv = xcalloc(R * 3 * C, sizeof(float), &fail);
	g->atty = xcalloc(R * C, sizeof(float), &fail);
	g->fch = xcalloc(R * F, sizeof(float), &fail);
	g->act = xcalloc(R * F, sizeof(float), &fail);
	g->S = xcalloc(H * R * P, sizeof(float), &fail);
	if (m->lora) {
		g->lora_r = m->lora->r;
		g->lora_u = xcalloc(R * (size_t)m->lora->r, sizeof(float), &fail);
	}
	if (fail) {
		qn_gpt2_infer_free(g);
		qn_errf(e, "out of memory for the KV cache");
		return NULL;
	}
	return g;
}

void qn_gpt2_infer_free(struct qn_gpt2_infer *g)
{
	if (!g)
		return;
	free(g->k);
	free(g->v);
	free(g->x);
	free(g->ln);
	free(g->qkv);
	free(g->atty);
	free(g->fch);
	free(g->act);
	free(g->S);
	free(g->lora_u);
	free(g);
}

void qn_gpt2_infer_reset(struct qn_gpt2_infer *g)
{
	g->pos = 0;
}

int qn_gpt2_infer_pos(const struct qn_gpt2_infer *g)
{
	return g->pos;
}

int qn_gpt2_infer_rewind(struct qn_gpt2_infer *g, int pos, struct qn_err *e)
{
	if (pos < 0 || pos > g->pos)
		return qn_errf(e, "cannot rewind to position %d of %d cached", pos, g->pos);
	g->pos = pos;
	return 0;
}

/*
 * n <= INFER_CHUNK tokens at g->pos; logits for the last or for all, or
 * (hidden not NULL) the final LayerNorm's output of all n and no logits.
 */
static void infer_chunk(struct qn_gpt2_infer *g, const uint32_t *tokens, int n, float *logits,
			int all, float *hidden)
{
	struct qn_gpt2 *m = g->m;
	const struct qn_gpt2_config *c = &m->cfg;
	size_t C = (size_t)c->n_embd, F = (size_t)ninner(c), V = (size_t)c->vocab_size;
	size_t P = (size_t)c->n_positions, R = INFER_CHUNK;
	int H = c->n_head, hd = c->n_embd / H, th = m->threads, p0 = g->pos;
	float scale = 1.0f / sqrtf((float)hd);
	const float *wte = tensor_at(m, m->params, WTE), *wpe = tensor_at(m, m->params, WPE);

	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < C; j++)
			g->x[i * C + j] = wte[tokens[i] * C + j] + wpe[(size_t)(p0 + i) * C + j];
	for (int l = 0; l < c->n_layer; l++) {
		struct block w;
		block_at(m, m->params, l, &w);
		float *kc = g->k + (size_t)l * P * C, *vc = g->v + (size_t)l * P * C;
		layernorm(g->ln, NULL, NULL, g->x, w.ln1w, w.ln1b, (size_t)n, C, c->eps, th);
		matmul(g->qkv, g->ln, w.qkvw, w.qkvb, (size_t)n, C, 3 * C, 0, th);
		lora_forward(m, l, 0, g->qkv, g->ln, (size_t)n, g->lora_u, NULL);
		for (int i = 0; i < n; i++) {
			memcpy(kc + (size_t)(p0 + i) * C, g->qkv + i * 3 * C + C,
			       C * sizeof(float));
			memcpy(vc + (size_t)(p0 + i) * C, g->qkv + i * 3 * C + 2 * C,
			       C * sizeof(float));
		}
		int ncols = p0 + n;
		OMP_FOR
		for (int h = 0; h < H; h++) {
			float *S = g->S + (size_t)h * R * P;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ncols, hd, scale,
				    g->qkv + (size_t)h * hd, (int)(3 * C), kc + (size_t)h * hd,
				    (int)C, 0.0f, S, (int)P);
			for (int i = 0; i < n; i++) {
				float *row = S + (size_t)i * P;
				size_t len = (size_t)(p0 + i) + 1;
				double s = exp_sum_span(row, len, max_span(row, len));
				scale_span(row, len, (float)(1.0 / s));
				int last = p0 + i;
				for (int j = last + 1; j < ncols; j++)
					row[j] = 0;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, ncols, 1.0f,
				    S, (int)P, vc + (size_t)h * hd, (int)C, 0.0f,
				    g->atty + (size_t)h * hd, (int)C);
		}
		matmul(g->x, g->atty, w.attpw, w.attpb, (size_t)n, C, C, 1, th);
		lora_forward(m, l, 1, g->x, g->atty, (size_t)n, g->lora_u, NULL);
		layernorm(g->ln, NULL, NULL, g->x, w.ln2w, w.ln2b, (size_t)n, C, c->eps, th);
		matmul(g->fch, g->ln, w.fcw, w.fcb, (size_t)n, C, F, 0, th);
		lora_forward(m, l, 2, g->fch, g->ln, (size_t)n, g->lora_u, NULL);
		gelu(g->act, g->fch, (size_t)n * F, th);
		matmul(g->x, g->act, w.fcpw, w.fcpb, (size_t)n, F, C, 1, th);
		lora_forward(m, l, 3, g->x, g->act, (size_t)n, g->lora_u, NULL);
	}
	size_t f = lnf_index(m), first = all || hidden ? 0 : (size_t)n - 1,
	       rows = (size_t)n - first;
	layernorm(hidden ? hidden : g->ln, NULL, NULL, g->x + first * C, tensor_at(m, m->params, f),
		  tensor_at(m, m->params, f + 1), rows, C, c->eps, th);
	if (hidden) {
		g->pos += n;
		return;
	}
	OMP_FOR
	for (int p = 0; p < th; p++) {
		size_t v0, v1;
		split(V, th, p, &v0, &v1);
		if (v0 < v1)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows,
				    (int)(v1 - v0), (int)C, 1.0f, g->ln, (int)C, wte + v0 * C,
				    (int)C, 0.0f, logits + v0, (int)V);
	}
	g->pos += n;
}

/* What a step over tokens[0..n) needs: room in the context, ids in the vocabulary. */
static int infer_check(const struct qn_gpt2_infer *g, const uint32_t *tokens, int n,
		       struct qn_err *e)
{
	const struct qn_gpt2_config *c = &g->m->cfg;
	if (g->m->lora && g->m->lora->enabled && g->m->lora->r > g->lora_r)
		return qn_errf(e, "the adapter was added after the inference state was made");
	if (n < 1 || g->pos + n > c->n_positions)
		return qn_errf(e, "%d tokens after %d do not fit the context of %d", n, g->pos,
			       c->n_positions);
	for (int i = 0; i < n; i++)
		if (tokens[i] >= (uint32_t)c->vocab_size)
			return qn_errf(e, "token id %u is past the vocabulary (%d)", tokens[i],
				       c->vocab_size);
	return 0;
}

int qn_gpt2_infer_step(struct qn_gpt2_infer *g, const uint32_t *tokens, int n, float *logits,
		       int all, struct qn_err *e)
{
	size_t V = (size_t)g->m->cfg.vocab_size;
	if (infer_check(g, tokens, n, e))
		return -1;
	for (int i = 0; i < n; i += INFER_CHUNK) {
		int k = n - i < INFER_CHUNK ? n - i : INFER_CHUNK;
		infer_chunk(g, tokens + i, k, all ? logits + (size_t)i * V : logits, all, NULL);
	}
	return 0;
}

int qn_gpt2_infer_hidden(struct qn_gpt2_infer *g, const uint32_t *tokens, int n, float *hidden,
			 struct qn_err *e)
{
	size_t C = (size_t)g->m->cfg.n_embd;
	if (infer_check(g, tokens, n, e))
		return -1;
	for (int i = 0; i < n; i += INFER_CHUNK) {
		int k = n - i < INFER_CHUNK ? n - i : INFER_CHUNK;
		infer_chunk(g, tokens + i, k, NULL, 1, hidden + (size_t)i * C);
	}
	return 0;
}

/* ---- sampling ------------------------------------------------------------------ */

struct cand {
	float logit;
	uint32_t id;
};

struct qn_gpt2_sampler {
	int V;
	double temperature, top_p;
	long top_k;
	struct cand *cands;
};

static int by_logit_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

uint32_t qn_gpt2_sampler_pick(struct qn_gpt2_sampler *sm, const float *logits, uint64_t *rng)
{
	struct cand *cands = sm->cands;
	int V = sm->V;
	if (sm->temperature <= 0) {
		int best = 0;
		for (int j = 1; j < V; j++)
			if (logits[j] > logits[best])
				best = j;
		return (uint32_t)best;
	}
	float inv = (float)(1.0 / sm->temperature), mx = -INFINITY;
	for (int j = 0; j < V; j++) {
		cands[j].logit = logits[j] * inv;
		cands[j].id = (uint32_t)j;
		mx = cands[j].logit > mx ? cands[j].logit : mx;
	}
	int n = V;
	if (sm->top_k > 0 || sm->top_p < 1) {
		qsort(cands, (size_t)V, sizeof *cands, by_logit_desc);
		if (sm->top_k > 0 && sm->top_k < n)
			n = (int)sm->top_k;
	}
	double s = 0;
	for (int j = 0; j < n; j++)
		s += exp(cands[j].logit - mx);
	if (sm->top_p < 1) {
		double c = 0;
		int k = 0;
		while (k < n) {
			c += exp(cands[k].logit - mx) / s;
			k++;
			if (c >= sm->top_p)
				break;
		}
		n = k;
		s = 0;
		for (int j = 0; j < n; j++)
			s += exp(cands[j].logit - mx);
	}
	uint64_t z = qn_splitmix64(rng);
	double u = (double)(z >> 11) * 0x1.0p-53 * s, c = 0;
	for (int j = 0; j < n; j++) {
		c += exp(cands[j].logit - mx);
		if (u < c)
			return cands[j].id;
	}
	return cands[n - 1].id;
}

struct qn_gpt2_sampler *qn_gpt2_sampler_new(int V, double temperature, long top_k, double top_p)
{
	struct qn_gpt2_sampler *sm = calloc(1, sizeof *sm);
	if (!sm)
		return NULL;
	sm->cands = malloc((size_t)V * sizeof *sm->cands);
	if (!sm->cands) {
		free(sm);
		return NULL;
	}
	sm->V = V;
	sm->temperature = temperature;
	sm->top_k = top_k;
	sm->top_p = top_p;
	return sm;
}

void qn_gpt2_sampler_free(struct qn_gpt2_sampler *sm)
{
	if (!sm)
		return;
	free(sm->cands);
	free(sm);
}

long qn_gpt2_generate(struct qn_gpt2_infer *g, struct qn_gpt2_sampler *sm, const uint32_t *prompt,
		      size_t n, long max, int64_t eos, uint64_t *rng, float *logits, uint32_t *out,
		      qn_gpt2_stop_fn stop, void *arg, int *reason, struct qn_err *e)
{
	int P = g->m->cfg.n_positions;
	*reason = QN_GEN_LENGTH;
	if (n < 1 || n >= (size_t)P)
		return qn_errf(e, "a prompt of %zu tokens: generation needs 1 to %d", n, P - 1);
	qn_gpt2_infer_reset(g);
	if (qn_gpt2_infer_step(g, prompt, (int)n, logits, 0, e))
		return -1;
	long k = 0;
	while (k < max) {
		uint32_t next = qn_gpt2_sampler_pick(sm, logits, rng);
		if (eos >= 0 && next == (uint32_t)eos) {
			*reason = QN_GEN_EOS;
			break;
		}
		out[k++] = next;
		if (stop && stop(arg, out, (size_t)k)) {
			*reason = QN_GEN_STOP;
			break;
		}
		if (qn_gpt2_infer_pos(g) >= P)
			break;
		if (k < max && qn_gpt2_infer_step(g, &next, 1, logits, 0, e))
			return -1;
	}
	return k;
}
