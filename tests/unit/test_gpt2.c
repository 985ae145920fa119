/*
 * test_gpt2.c - lib/gpt2: config.json parsing (the fixture accepted, every
 * kind of bad file refused, write -> load round trip); the parameter table
 * (Hugging Face names, shapes and order, the parameter count, which tensors
 * decay); the backward pass against central finite differences of the
 * forward loss for a sample of every tensor (no mask, a mask, a given
 * denominator, a sequence longer than the attention row block), the loss
 * against a log-softmax of the returned logits, backward's scale and
 * accumulation; the KV-cache inference against the training forward (whole
 * sequences, token by token, past the inference chunk, its refusals);
 * determinism at one thread count and closeness across two; AdamW and
 * gradient clipping against PyTorch's formulas worked in double; checkpoint
 * save/load, the "transformer." prefix and the refusals of a bad weights
 * file; the fixture model of tests/fixtures/gpt2 against what PyTorch
 * computed for it. Works in a mkdtemp folder under $TMPDIR (or /tmp),
 * removed at the end.
 *
 *   test_gpt2                       the tests
 *   test_gpt2 --threads-late        (internal) raises the thread count after
 *                                   qn_gpt2_train_new; exits 0 when the
 *                                   gradients still match one thread's
 *   test_gpt2 --threads-unset       (internal) never calls qn_gpt2_set_threads
 *
 * The two internal modes run in a child process (re-executed, so that
 * OpenMP starts fresh) because a failure there is a heap overflow.
 */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "gpt2.h"
#include "safetensors.h"
#include "testfs.h"
#include "testgpt2.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- config.json ---------------------------------------------------------- */

/* tests/fixtures/gpt2/config.json */
static const char fixture_config[] = "{\n"
				     "  \"architectures\": [\n"
				     "    \"GPT2LMHeadModel\"\n"
				     "  ],\n"
				     "  \"model_type\": \"gpt2\",\n"
				     "  \"vocab_size\": 96,\n"
				     "  \"n_positions\": 24,\n"
				     "  \"n_ctx\": 24,\n"
				     "  \"n_embd\": 32,\n"
				     "  \"n_layer\": 2,\n"
				     "  \"n_head\": 4,\n"
				     "  \"n_inner\": null,\n"
				     "  \"activation_function\": \"gelu_new\",\n"
				     "  \"layer_norm_epsilon\": 1e-05,\n"
				     "  \"resid_pdrop\": 0.1,\n"
				     "  \"embd_pdrop\": 0.1,\n"
				     "  \"attn_pdrop\": 0.1,\n"
				     "  \"initializer_range\": 0.02,\n"
				     "  \"bos_token_id\": 95,\n"
				     "  \"eos_token_id\": 95,\n"
				     "  \"tie_word_embeddings\": true\n"
				     "}\n";

/* s with its first `from` replaced by `to` (malloc'd); NULL when absent. */
static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	if (!at)
		return NULL;
	size_t a = (size_t)(at - s), nf = strlen(from), nt = strlen(to), n = strlen(s);
	char *r = malloc(n - nf + nt + 1);
	memcpy(r, s, a);
	memcpy(r + a, to, nt);
	memcpy(r + a + nt, at + nf, n - a - nf + 1);
	return r;
}

static int same_config(const struct qn_gpt2_config *a, const struct qn_gpt2_config *b)
{
	return a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
	       a->n_positions == b->n_positions && a->vocab_size == b->vocab_size &&
	       a->n_inner == b->n_inner && a->eps == b->eps && a->bos_token_id == b->bos_token_id &&
	       a->eos_token_id == b->eos_token_id && !strcmp(a->tokenizer, b->tokenizer);
}

static void test_config(void)
{
	struct qn_gpt2_config c;
	struct qn_err e;
	char label[256];

	int rc =
	    qn_gpt2_config_parse(fixture_config, strlen(fixture_config), "config.json", &c, &e);
	CHECK_NAMED("config: fixture parses", rc == 0);
	if (rc)
		printf("  %s\n", e.msg);
	CHECK_NAMED("config: fixture values",
		    c.n_layer == 2 && c.n_head == 4 && c.n_embd == 32 && c.n_positions == 24 &&
			c.vocab_size == 96 && c.n_inner == 0 && c.eps == 1e-5f &&
			c.bos_token_id == 95 && c.eos_token_id == 95 && c.tokenizer[0] == 0);

	/* Accepted variants. */
	static const struct {
		const char *from, *to, *what;
	} good[] = {
	    {"\"gelu_new\"", "\"gelu_pytorch_tanh\"", "gelu_pytorch_tanh"},
	    {"\"n_inner\": null", "\"n_inner\": 48", "n_inner 48"},
	    {"\"bos_token_id\": 95", "\"bos_token_id\": null", "bos null"},
	    {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": 1e-6", "eps 1e-6"},
	    {"\"tie_word_embeddings\": true\n",
	     "\"tie_word_embeddings\": true,\n  \"quern_tokenizer\": \"" FP "\"\n", "tokenizer"},
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		char *s = replace(fixture_config, good[i].from, good[i].to);
		rc = s ? qn_gpt2_config_parse(s, strlen(s), "good.json", &c, &e) : -1;
		snprintf(label, sizeof label, "config: accepts %s", good[i].what);
		CHECK_NAMED(label, rc == 0);
		if (rc)
			printf("  %s\n", s ? e.msg : "(replacement not found)");
		free(s);
	}
	char *s = replace(fixture_config, "\"n_inner\": null", "\"n_inner\": 48");
	qn_gpt2_config_parse(s, strlen(s), "good.json", &c, &e);
	CHECK_NAMED("config: n_inner read", c.n_inner == 48);
	free(s);
	s = replace(fixture_config, "\"bos_token_id\": 95", "\"bos_token_id\": null");
	qn_gpt2_config_parse(s, strlen(s), "good.json", &c, &e);
	CHECK_NAMED("config: null bos is -1", c.bos_token_id == -1 && c.eos_token_id == 95);
	free(s);
	s = replace(fixture_config, "\"tie_word_embeddings\": true\n",
		    "\"tie_word_embeddings\": true,\n  \"quern_tokenizer\": \"" FP "\"\n");
	qn_gpt2_config_parse(s, strlen(s), "good.json", &c, &e);
	CHECK_STR("config: tokenizer read", c.tokenizer, FP);
	free(s);

	/* Refusals: each names the file and, where there is one, the field. */
	static const struct {
		const char *from, *to, *what, *msg;
	} bad[] = {
	    {"\"n_head\": 4", "\"n_head\": 5", "n_head not dividing n_embd", "n_head"},
	    {"\"n_head\": 4", "\"n_head\": 0", "n_head 0", "n_head"},
	    {"  \"n_layer\": 2,\n", "", "missing n_layer", "n_layer"},
	    {"  \"n_embd\": 32,\n", "", "missing n_embd", "n_embd"},
	    {"  \"vocab_size\": 96,\n", "", "missing vocab_size", "vocab_size"},
	    {"  \"n_positions\": 24,\n", "", "missing n_positions", "n_positions"},
	    {"  \"n_head\": 4,\n", "", "missing n_head", "n_head"},
	    {"\"n_layer\": 2", "\"n_layer\": null", "null n_layer", "n_layer"},
	    {"\"n_embd\": 32", "\"n_embd\": \"32\"", "string n_embd", "n_embd"},
	    {"\"n_embd\": 32", "\"n_embd\": 32.5", "real n_embd", "n_embd"},
	    {"\"n_embd\": 32", "\"n_embd\": 32.0", "n_embd 32.0", "n_embd"},
	    {"\"vocab_size\": 96", "\"vocab_size\": true", "boolean vocab_size", "vocab_size"},
	    {"\"n_layer\": 2", "\"n_layer\": 4294967298", "n_layer past int32", "n_layer"},
	    {"\"n_inner\": null", "\"n_inner\": [1]", "array n_inner", "n_inner"},
	    {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": \"1e-5\"",
	     "string layer_norm_epsilon", "layer_norm_epsilon"},
	    {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": 0", "eps 0",
	     "layer_norm_epsilon"},
	    {"\"gelu_new\"", "\"relu\"", "relu activation", "activation_function"},
	    {"\"gelu_new\"", "\"gelu\"", "exact gelu activation", "activation_function"},
	    {"\"model_type\": \"gpt2\"", "\"model_type\": \"llama\"", "model_type llama",
	     "model_type"},
	    {"\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false", "untied embeddings",
	     "tie_word_embeddings"},
	    {"\"n_layer\": 2,", "\"n_layer\": 2,\n  \"n_layer\": 3,", "duplicate key", "n_layer"},
	    {"\"n_layer\": 2,", "\"n_layer\": 2,\n  \"n_layer\": 2,", "duplicate equal key",
	     "n_layer"},
	    {"\"bos_token_id\": 95", "\"bos_token_id\": 96", "bos past vocab", "bos"},
	    {"\"n_positions\": 24", "\"n_positions\": 0", "n_positions 0", "n_positions"},
	    {"\"vocab_size\": 96", "\"vocab_size\": -1", "negative vocab", "vocab_size"},
	    {"\"tie_word_embeddings\": true\n",
	     "\"tie_word_embeddings\": true,\n  \"quern_tokenizer\": \"abc\"\n", "short tokenizer",
	     "quern_tokenizer"},
	    {"\n}\n", "\n", "truncated JSON", "bad.json"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		s = replace(fixture_config, bad[i].from, bad[i].to);
		e.msg[0] = 0;
		rc = s ? qn_gpt2_config_parse(s, strlen(s), "bad.json", &c, &e) : 0;
		snprintf(label, sizeof label, "config: refuses %s", bad[i].what);
		int ok = rc == -1 && contains(e.msg, "bad.json") && contains(e.msg, bad[i].msg);
		CHECK_NAMED(label, ok);
		if (!ok)
			printf("  rc %d: %s\n", rc, s ? e.msg : "(replacement not found)");
		free(s);
	}
	rc = qn_gpt2_config_parse("[1, 2]", 6, "bad.json", &c, &e);
	CHECK_NAMED("config: refuses an array", rc == -1 && contains(e.msg, "bad.json"));
	rc = qn_gpt2_config_parse("", 0, "bad.json", &c, &e);
	CHECK_NAMED("config: refuses an empty file", rc == -1 && contains(e.msg, "bad.json"));

	/* write -> load */
	struct qn_gpt2_config w, r;
	qn_gpt2_config_default(&w);
	w.n_layer = 3;
	w.n_head = 6;
	w.n_embd = 48;
	w.n_positions = 77;
	w.vocab_size = 1001;
	w.n_inner = 100;
	w.eps = 1.2345678e-6f;
	w.bos_token_id = -1;
	w.eos_token_id = 1000;
	memcpy(w.tokenizer, FP, 65);
	const char *path = in_top("config_rt.json");
	rc = qn_gpt2_config_write(path, &w, &e);
	CHECK_NAMED("config: write", rc == 0);
	if (rc)
		printf("  %s\n", e.msg);
	rc = qn_gpt2_config_load(path, &r, &e);
	CHECK_NAMED("config: write -> load", rc == 0 && same_config(&w, &r));
	if (rc)
		printf("  %s\n", e.msg);

	qn_gpt2_config_default(&w);
	qn_gpt2_config_parse(fixture_config, strlen(fixture_config), "config.json", &w, &e);
	rc = qn_gpt2_config_write(path, &w, &e) || qn_gpt2_config_load(path, &r, &e);
	CHECK_NAMED("config: fixture write -> load", rc == 0 && same_config(&w, &r));

	rc = qn_gpt2_config_load(in_top("absent.json"), &r, &e);
	CHECK_NAMED("config: missing file", rc == -1 && contains(e.msg, "absent.json"));
}

/* ---- the parameter table ---------------------------------------------------- */

static void test_table(void)
{
	static const struct {
		int L, H, C, P, V, F;
	} shapes[] = {{3, 2, 8, 7, 13, 0}, {2, 4, 12, 5, 9, 20}};
	struct qn_err e;
	char label[256];

	for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
		struct qn_gpt2_config c;
		qn_gpt2_config_default(&c);
		c.n_layer = shapes[si].L;
		c.n_head = shapes[si].H;
		c.n_embd = shapes[si].C;
		c.n_positions = shapes[si].P;
		c.vocab_size = shapes[si].V;
		c.n_inner = shapes[si].F;
		struct qn_gpt2 *m = qn_gpt2_new(&c, &e);
		snprintf(label, sizeof label, "table %zu: model made", si);
		CHECK_NAMED(label, m != NULL);
		if (!m) {
			printf("  %s\n", e.msg);
			continue;
		}
		uint64_t L = (uint64_t)c.n_layer, C = (uint64_t)c.n_embd,
			 P = (uint64_t)c.n_positions;
		uint64_t V = (uint64_t)c.vocab_size, F = c.n_inner ? (uint64_t)c.n_inner : 4 * C;
		struct want {
			char name[64];
			int ndim;
			uint64_t d0, d1;
			int layer, decay;
		} want[64];
		size_t nw = 0;
#define WANT(nm_, l_, dec_, a_, b_)                                                                \
	do {                                                                                       \
		snprintf(want[nw].name, sizeof want[nw].name, "%s", nm_);                          \
		want[nw].ndim = (b_) != 0 ? 2 : 1;                                                 \
		want[nw].d0 = (a_);                                                                \
		want[nw].d1 = (b_);                                                                \
		want[nw].layer = (l_);                                                             \
		want[nw].decay = (dec_);                                                           \
		nw++;                                                                              \
	} while (0)
		WANT("wte.weight", -1, 0, V, C);
		WANT("wpe.weight", -1, 0, P, C);
		for (int l = 0; l < (int)L; l++) {
			char nm[64];
#define WL(suffix, dec, a, b)                                                                      \
	do {                                                                                       \
		snprintf(nm, sizeof nm, "h.%d.%s", l, suffix);                                     \
		WANT(nm, l, dec, a, b);                                                            \
	} while (0)
			WL("ln_1.weight", 0, C, 0);
			WL("ln_1.bias", 0, C, 0);
			WL("attn.c_attn.weight", 1, C, 3 * C);
			WL("attn.c_attn.bias", 0, 3 * C, 0);
			WL("attn.c_proj.weight", 1, C, C);
			WL("attn.c_proj.bias", 0, C, 0);
			WL("ln_2.weight", 0, C, 0);
			WL("ln_2.bias", 0, C, 0);
			WL("mlp.c_fc.weight", 1, C, F);
			WL("mlp.c_fc.bias", 0, F, 0);
			WL("mlp.c_proj.weight", 1, F, C);
			WL("mlp.c_proj.bias", 0, C, 0);
#undef WL
		}
		WANT("ln_f.weight", -1, 0, C, 0);
		WANT("ln_f.bias", -1, 0, C, 0);
#undef WANT
		snprintf(label, sizeof label, "table %zu: %zu tensors", si, nw);
		CHECK_NAMED(label, m->ntensors == nw);
		int names = 1, shape = 1, layout = 1, decay = 1, found = 1;
		size_t off = 0;
		for (size_t i = 0; i < nw && i < m->ntensors; i++) {
			const struct qn_gpt2_tensor *t = m->tensors + i;
			uint64_t numel = want[i].d0 * (want[i].d1 ? want[i].d1 : 1);
			if (strcmp(t->name, want[i].name)) {
				printf("  tensor %zu: got %s want %s\n", i, t->name, want[i].name);
				names = 0;
			}
			if (t->ndim != want[i].ndim || t->shape[0] != want[i].d0 ||
			    (want[i].ndim == 2 && t->shape[1] != want[i].d1))
				shape = 0;
			if (t->offset != off || t->numel != numel || t->layer != want[i].layer)
				layout = 0;
			if (t->decay != want[i].decay)
				decay = 0;
			if (qn_gpt2_find(m, want[i].name) != t)
				found = 0;
			off += numel;
		}
		snprintf(label, sizeof label, "table %zu: names in Hugging Face order", si);
		CHECK_NAMED(label, names);
		snprintf(label, sizeof label, "table %zu: shapes (Conv1D in, out)", si);
		CHECK_NAMED(label, shape);
		snprintf(label, sizeof label, "table %zu: offsets contiguous, layers", si);
		CHECK_NAMED(label, layout && off == m->nparams);
		snprintf(label, sizeof label, "table %zu: decay on the four block matrices only",
			 si);
		CHECK_NAMED(label, decay);
		snprintf(label, sizeof label, "table %zu: find", si);
		CHECK_NAMED(label, found && !qn_gpt2_find(m, "lm_head.weight") &&
				       !qn_gpt2_find(m, "h.99.ln_1.weight"));
		uint64_t n = V * C + P * C + L * (4 * C * C + 2 * C * F + 9 * C + F) + 2 * C;
		if (!c.n_inner)
			CHECK_NAMED("table: nparams = VC + PC + L(12C^2 + 13C) + 2C",
				    n == V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C);
		snprintf(label, sizeof label, "table %zu: nparams %llu", si, (unsigned long long)n);
		CHECK_NAMED(label, m->nparams == n && qn_gpt2_nparams(m) == n);
		int zero = 1;
		for (size_t j = 0; j < m->nparams; j++)
			if (m->params[j] != 0)
				zero = 0;
		snprintf(label, sizeof label, "table %zu: parameters start at zero", si);
		CHECK_NAMED(label, zero && m->grads == NULL);
		qn_gpt2_free(m);
	}

	/* GPT-2 small: 124,439,808 parameters. */
	struct qn_gpt2_config c;
	qn_gpt2_config_default(&c);
	CHECK_NAMED("table: default config checks", qn_gpt2_config_check(&c, "default", &e) == 0);
	uint64_t C = 768;
	CHECK_NAMED("table: GPT-2 small count formula",
		    50257 * C + 1024 * C + 12 * (12 * C * C + 13 * C) + 2 * C == 124439808ull);

	c.n_embd = 30;
	c.n_head = 4;
	e.msg[0] = 0;
	CHECK_NAMED("table: new refuses a bad config",
		    qn_gpt2_new(&c, &e) == NULL && contains(e.msg, "n_head"));
	qn_gpt2_free(NULL);
}

/* ---- gradients -------------------------------------------------------------- */

/*
 * The loss against a log-softmax of the logits, the gradient of every
 * tensor against finite differences (grad_samples), backward's scale and
 * accumulation.
 */
static void grad_check(const char *name, struct qn_gpt2 *m, int B, int T, const uint32_t *in,
		       const uint32_t *tg, const uint8_t *mask, double denom, int nsample)
{
	struct qn_err e;
	char label[256];
	size_t N = (size_t)B * T, V = (size_t)m->cfg.vocab_size, counted = 0, want = 0;
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);

	snprintf(label, sizeof label, "grad %s: train state", name);
	CHECK_NAMED(label, t != NULL);
	if (!t) {
		printf("  %s\n", e.msg);
		return;
	}
	float *logits = malloc(N * V * sizeof *logits);
	qn_gpt2_zero_grads(m);
	double loss = qn_gpt2_forward(t, in, tg, mask, denom, B, T, &counted, logits);
	for (size_t r = 0; r < N; r++)
		want += !mask || mask[r];
	double ref = ref_loss(logits, tg, mask, denom, N, V);
	snprintf(label, sizeof label, "grad %s: loss %.6f = log-softmax of the logits", name, loss);
	CHECK_NAMED(label, fabs(loss - ref) <= 1e-5 * fmax(1, fabs(ref)) && counted == want);
	if (fabs(loss - ref) > 1e-5 * fmax(1, fabs(ref)) || counted != want)
		printf("  loss %.9g ref %.9g counted %zu want %zu\n", loss, ref, counted, want);
	qn_gpt2_backward(t, 1.0f);
	float *g = copy_floats(m->grads, m->nparams);

	const struct batch bt = {t, in, tg, mask, denom, B, T};
	grad_samples(name, &bt, m->params, g, m->tensors, m->ntensors, nsample);

	/* backward(scale) scales; two forward/backward pairs add up. */
	qn_gpt2_zero_grads(m);
	qn_gpt2_forward(t, in, tg, mask, denom, B, T, NULL, NULL);
	qn_gpt2_backward(t, 0.375f);
	double worst = 0, gmax = 0;
	for (size_t j = 0; j < m->nparams; j++) {
		worst = fmax(worst, fabs(m->grads[j] - 0.375 * g[j]));
		gmax = fmax(gmax, fabs(g[j]));
	}
	snprintf(label, sizeof label, "grad %s: backward(0.375) is 0.375 x the gradient", name);
	CHECK_NAMED(label, worst <= 1e-6 * gmax);
	if (worst > 1e-6 * gmax)
		printf("  max diff %g (max |g| %g)\n", worst, gmax);

	uint32_t *in2 = malloc(N * sizeof *in2), *tg2 = malloc(N * sizeof *tg2);
	random_tokens(in2, N, (uint32_t)V);
	random_tokens(tg2, N, (uint32_t)V);
	qn_gpt2_zero_grads(m);
	qn_gpt2_forward(t, in2, tg2, mask, denom, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	float *g2 = copy_floats(m->grads, m->nparams);
	qn_gpt2_forward(t, in, tg, mask, denom, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	worst = 0;
	for (size_t j = 0; j < m->nparams; j++) {
		worst = fmax(worst, fabs(m->grads[j] - (g[j] + g2[j])));
		gmax = fmax(gmax, fabs(g2[j]));
	}
	snprintf(label, sizeof label, "grad %s: gradients accumulate over two batches", name);
	CHECK_NAMED(label, worst <= 1e-6 * gmax);
	if (worst > 1e-6 * gmax)
		printf("  max diff %g (max |g| %g)\n", worst, gmax);

	free(in2);
	free(tg2);
	free(g2);
	free(g);
	free(logits);
	qn_gpt2_train_free(t);
}

/*
 * Dropout: the masks are drawn from the key, so finite differences over the
 * same key see the same masks and check backward through all three kinds;
 * the same key reproduces a pass bit for bit, another key differs, and
 * probabilities of 0 are the plain model.
 */
static void test_dropout(void)
{
	enum { B = 2, T = 6, V = 11 };
	uint32_t in[B * T], tg[B * T];
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, V, 0, 31);
	struct qn_err e;

	CHECK_NAMED("dropout: model made", m != NULL);
	if (!m)
		return;
	rng_state = 37;
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	CHECK_NAMED("dropout: train state", t != NULL);
	if (!t) {
		qn_gpt2_free(m);
		return;
	}
	double plain = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_dropout(t, 0, 0, 0, 5);
	double zero = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	CHECK_NAMED("dropout: probabilities 0 = no dropout, bit for bit", plain == zero);
	qn_gpt2_dropout(t, 0.2f, 0.3f, 0.25f, 42);
	double a = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	double b = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_dropout(t, 0.2f, 0.3f, 0.25f, 43);
	double c = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	CHECK_NAMED("dropout: the same key, the same loss bit for bit", a == b);
	CHECK_NAMED("dropout: another key, another loss", a != c && a != plain);
	qn_gpt2_dropout(t, 0.2f, 0.3f, 0.25f, 42);
	qn_gpt2_zero_grads(m);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	float *g = copy_floats(m->grads, m->nparams);
	const struct batch bt = {t, in, tg, NULL, 0, B, T};
	grad_samples("dropout", &bt, m->params, g, m->tensors, m->ntensors, 6);
	free(g);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
}

static void test_grads(void)
{
	enum { B = 2, T = 5 };
	uint32_t in[B * T], tg[B * T];
	uint8_t mask[B * T] = {1, 0, 1, 1, 0, 0, 0, 1, 1, 1};
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, 11, 0, 7);

	CHECK_NAMED("grad: model made", m != NULL);
	if (!m)
		return;
	rng_state = 99;
	random_tokens(in, B * T, 11);
	random_tokens(tg, B * T, 11);
	tg[3] = in[4]; /* a repeated token: wte gets both gradients */
	grad_check("no mask", m, B, T, in, tg, NULL, 0, 6);
	grad_check("mask", m, B, T, in, tg, mask, 0, 6);
	grad_check("mask, denom 7.5", m, B, T, in, tg, mask, 7.5, 6);

	/* Nothing counted: loss 0, gradient 0, nothing NaN. */
	struct qn_err e;
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	uint8_t none[B * T] = {0};
	size_t counted = 1;
	qn_gpt2_zero_grads(m);
	double loss = t ? qn_gpt2_forward(t, in, tg, none, 0, B, T, &counted, NULL) : -1;
	if (t)
		qn_gpt2_backward(t, 1.0f);
	CHECK_NAMED("grad: every position masked, loss 0 and gradient 0",
		    t && loss == 0 && counted == 0 && qn_gpt2_grad_norm(m) == 0);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);

	/* Past the attention row block (64), with an MLP width of its own. */
	enum { T2 = 70 };
	uint32_t in2[T2], tg2[T2];
	m = tiny(1, 2, 8, 80, 11, 12, 8);
	CHECK_NAMED("grad: long model made", m != NULL);
	if (!m)
		return;
	random_tokens(in2, T2, 11);
	random_tokens(tg2, T2, 11);
	grad_check("T=70 n_inner=12", m, 1, T2, in2, tg2, NULL, 0, 3);
	qn_gpt2_free(m);
}

/* ---- KV-cache inference ------------------------------------------------------- */

static void test_infer(void)
{
	enum { P = 200, T = 150, V = 11 };
	const double tol = 1e-5;
	struct qn_err e;
	uint32_t tok[P + 1], tg[P];
	struct qn_gpt2 *m = tiny(2, 2, 8, P, V, 0, 11);

	CHECK_NAMED("infer: model made", m != NULL);
	if (!m)
		return;
	rng_state = 5;
	random_tokens(tok, P, V);
	random_tokens(tg, P, V);
	float *train = malloc((size_t)P * V * sizeof *train);
	float *inf = malloc((size_t)P * V * sizeof *inf), last[V];
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, 1, P, &e);
	struct qn_gpt2_infer *g = qn_gpt2_infer_new(m, &e);
	CHECK_NAMED("infer: state made", t && g);
	if (!t || !g)
		goto out;

	/* A short sequence, whole. */
	qn_gpt2_forward(t, tok, tg, NULL, 0, 1, 20, NULL, train);
	int rc = qn_gpt2_infer_step(g, tok, 20, inf, 1, &e);
	CHECK_NAMED("infer: 20 tokens, all logits = training forward",
		    rc == 0 && max_diff(train, inf, 20 * V) <= tol);
	if (rc == 0)
		printf("  (max diff %.3g)\n", max_diff(train, inf, 20 * V));
	CHECK_NAMED("infer: pos 20", qn_gpt2_infer_pos(g) == 20);

	/* Past the inference chunk (128): two chunks at once. */
	qn_gpt2_forward(t, tok, tg, NULL, 0, 1, T, NULL, train);
	qn_gpt2_infer_reset(g);
	CHECK_NAMED("infer: reset", qn_gpt2_infer_pos(g) == 0);
	rc = qn_gpt2_infer_step(g, tok, T, inf, 1, &e);
	double d = rc ? 1 : max_diff(train, inf, (size_t)T * V);
	CHECK_NAMED("infer: 150 tokens (two chunks), all logits = training forward", d <= tol);
	printf("  (max diff %.3g)\n", d);

	/* Token by token: each step's logits are the forward's at that position. */
	qn_gpt2_infer_reset(g);
	d = 0;
	rc = 0;
	for (int i = 0; i < T && !rc; i++) {
		rc = qn_gpt2_infer_step(g, tok + i, 1, last, 0, &e);
		d = fmax(d, max_diff(train + (size_t)i * V, last, V));
	}
	CHECK_NAMED("infer: token by token = training forward", rc == 0 && d <= tol);
	printf("  (max diff %.3g)\n", d);

	/* Mixed: 3 tokens (last only), 130 (all, across a chunk), the rest (last only). */
	qn_gpt2_infer_reset(g);
	rc = qn_gpt2_infer_step(g, tok, 3, last, 0, &e);
	d = rc ? 1 : max_diff(train + 2 * V, last, V);
	rc = rc || qn_gpt2_infer_step(g, tok + 3, 130, inf, 1, &e);
	d = rc ? 1 : fmax(d, max_diff(train + 3 * V, inf, 130 * V));
	rc = rc || qn_gpt2_infer_step(g, tok + 133, T - 133, last, 0, &e);
	d = rc ? 1 : fmax(d, max_diff(train + (size_t)(T - 1) * V, last, V));
	CHECK_NAMED("infer: chunks of 3, 130, 17 = training forward", rc == 0 && d <= tol);
	CHECK_NAMED("infer: pos after chunks", qn_gpt2_infer_pos(g) == T);

	/* Hidden states only (qn_gpt2_infer_hidden): times wte^T, the same logits. */
	{
		const struct qn_gpt2_tensor *wt = qn_gpt2_find(m, "wte.weight");
		float *hid = malloc((size_t)T * 8 * sizeof *hid);
		qn_gpt2_infer_reset(g);
		rc = !wt || !hid || qn_gpt2_infer_hidden(g, tok, 3, hid, &e) ||
		     qn_gpt2_infer_hidden(g, tok + 3, T - 3, hid + 3 * 8, &e);
		d = 0;
		for (int i = 0; !rc && i < T; i++)
			for (int v = 0; v < V; v++) {
				double z = 0;
				for (int c = 0; c < 8; c++)
					z += (double)hid[i * 8 + c] *
					     m->params[wt->offset + (size_t)v * 8 + c];
				d = fmax(d, fabs(z - train[(size_t)i * V + v]));
			}
		CHECK_NAMED(
		    "infer_hidden: hidden x wte^T = training forward's logits (3 + 147 tokens)",
		    rc == 0 && d <= tol && qn_gpt2_infer_pos(g) == T);
		printf("  (max diff %.3g)\n", d);
		CHECK_NAMED("infer_hidden: past n_positions fails",
			    qn_gpt2_infer_hidden(g, tok, P, hid, &e) == -1 &&
				qn_gpt2_infer_pos(g) == T);
		free(hid);
	}

	/* The whole context, then one more. */
	qn_gpt2_forward(t, tok, tg, NULL, 0, 1, P, NULL, train);
	qn_gpt2_infer_reset(g);
	rc = qn_gpt2_infer_step(g, tok, P, last, 0, &e);
	CHECK_NAMED("infer: the whole context (200)",
		    rc == 0 && max_diff(train + (size_t)(P - 1) * V, last, V) <= tol);
	e.msg[0] = 0;
	rc = qn_gpt2_infer_step(g, tok, 1, last, 0, &e);
	CHECK_NAMED("infer: past n_positions fails",
		    rc == -1 && e.msg[0] && qn_gpt2_infer_pos(g) == P);
	printf("  (%s)\n", e.msg);
	qn_gpt2_infer_reset(g);
	rc = qn_gpt2_infer_step(g, tok, P + 1, inf, 0, &e);
	CHECK_NAMED("infer: 201 tokens at once fails", rc == -1 && qn_gpt2_infer_pos(g) == 0);
	rc = qn_gpt2_infer_step(g, tok, 0, last, 0, &e);
	CHECK_NAMED("infer: no tokens fails", rc == -1);

	/* A token id past the vocabulary. */
	uint32_t badtok[4] = {1, 2, V, 3};
	e.msg[0] = 0;
	rc = qn_gpt2_infer_step(g, badtok, 4, last, 0, &e);
	CHECK_NAMED("infer: token id = vocab_size fails",
		    rc == -1 && contains(e.msg, "11") && qn_gpt2_infer_pos(g) == 0);
	printf("  (%s)\n", e.msg);
	badtok[2] = UINT32_MAX;
	rc = qn_gpt2_infer_step(g, badtok, 4, last, 0, &e);
	CHECK_NAMED("infer: token id 2^32-1 fails", rc == -1 && qn_gpt2_infer_pos(g) == 0);

	/* After the refusals it still works. */
	rc = qn_gpt2_infer_step(g, tok, 20, inf, 1, &e);
	qn_gpt2_forward(t, tok, tg, NULL, 0, 1, 20, NULL, train);
	CHECK_NAMED("infer: works after refusals", rc == 0 && max_diff(train, inf, 20 * V) <= tol);
out:
	qn_gpt2_infer_free(g);
	qn_gpt2_train_free(t);
	qn_gpt2_infer_free(NULL);
	qn_gpt2_train_free(NULL);
	free(train);
	free(inf);
	qn_gpt2_free(m);
}

/* ---- determinism and threads -------------------------------------------------- */

/* Loss, logits and gradients of one forward/backward with `threads` threads. */
static int run_once(struct qn_gpt2 *m, int threads, int B, int T, const uint32_t *in,
		    const uint32_t *tg, double *loss, float *logits, float *grads)
{
	struct qn_err e;
	qn_gpt2_set_threads(m, threads);
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	if (!t) {
		printf("  %s\n", e.msg);
		return -1;
	}
	qn_gpt2_zero_grads(m);
	*loss = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, logits);
	qn_gpt2_backward(t, 1.0f);
	memcpy(grads, m->grads, m->nparams * sizeof *grads);
	qn_gpt2_train_free(t);
	return 0;
}

/*
 * Freezing the embeddings and block 0: the other tensors' gradients are the
 * unfrozen model's bit for bit (the same operations above the cut), the
 * frozen ones are never written, and AdamW leaves them as they were.
 */
static void test_freeze(void)
{
	enum { B = 2, T = 9, V = 11 };
	uint32_t in[B * T], tg[B * T];
	struct qn_gpt2 *m = tiny(3, 2, 8, 16, V, 0, 21);

	CHECK_NAMED("freeze: model made", m != NULL);
	if (!m)
		return;
	rng_state = 23;
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	size_t n = m->nparams;
	float *full = malloc(n * sizeof *full), *frz = malloc(n * sizeof *frz);
	float *before = malloc(n * sizeof *before), *mom = calloc(n, sizeof *mom);
	float *var = calloc(n, sizeof *var);
	double l1, l2;
	int rc = !full || !frz || !before || !mom || !var;
	rc = rc || run_once(m, 1, B, T, in, tg, &l1, NULL, full);
	free(m->grads); /* fresh zeros: a frozen tensor's gradient stays 0 */
	m->grads = NULL;
	for (size_t i = 0; i < 2 + 12; i++)
		qn_gpt2_freeze(m, i, 1);
	rc = rc || run_once(m, 1, B, T, in, tg, &l2, NULL, frz);
	CHECK_NAMED("freeze: runs", rc == 0);
	int same = rc == 0 && l1 == l2, zero = rc == 0;
	for (size_t i = 0; rc == 0 && i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		if (qn_gpt2_is_frozen(m, i)) {
			for (size_t j = 0; j < t->numel; j++)
				zero &= frz[t->offset + j] == 0;
		} else {
			same &= !memcmp(full + t->offset, frz + t->offset, t->numel * sizeof *frz);
		}
	}
	CHECK_NAMED("freeze: trainable gradients equal the unfrozen model's, bit for bit", same);
	CHECK_NAMED("freeze: frozen tensors get no gradient", zero);
	if (rc == 0) {
		struct qn_adamw o = {1e-2, 0.9, 0.95, 1e-8, 0.1};
		memcpy(before, m->params, n * sizeof *before);
		qn_gpt2_adamw(m, mom, var, &o, 1);
		int kept = 1, moved = 1;
		for (size_t i = 0; i < m->ntensors; i++) {
			const struct qn_gpt2_tensor *t = m->tensors + i;
			int eq = !memcmp(before + t->offset, m->params + t->offset,
					 t->numel * sizeof *before);
			if (qn_gpt2_is_frozen(m, i))
				kept &= eq;
			else
				moved &= !eq;
		}
		CHECK_NAMED("freeze: AdamW leaves frozen tensors bit-unchanged", kept);
		CHECK_NAMED("freeze: AdamW moves every trainable tensor", moved);
	}
	CHECK_NAMED("freeze: index out of range refused", qn_gpt2_freeze(m, m->ntensors, 1) == -1);
	free(full);
	free(frz);
	free(before);
	free(mom);
	free(var);
	qn_gpt2_free(m);
}

static void test_threads(void)
{
	enum { B = 3, T = 70, V = 11 };
	uint32_t in[B * T], tg[B * T];
	struct qn_gpt2 *m = tiny(2, 2, 8, 80, V, 0, 13);

	CHECK_NAMED("threads: model made", m != NULL);
	if (!m)
		return;
	rng_state = 17;
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	size_t n = m->nparams, nl = (size_t)B * T * V;
	float *g[4], *lg[4];
	double loss[4];
	int rc = 0;
	for (int i = 0; i < 4; i++) {
		g[i] = malloc(n * sizeof(float));
		lg[i] = malloc(nl * sizeof(float));
		rc |= run_once(m, i < 2 ? 1 : 2, B, T, in, tg, loss + i, lg[i], g[i]);
	}
	CHECK_NAMED("threads: runs", rc == 0);
	CHECK_NAMED("threads: 1 thread twice, bit-identical",
		    rc == 0 && loss[0] == loss[1] && !memcmp(g[0], g[1], n * sizeof(float)) &&
			!memcmp(lg[0], lg[1], nl * sizeof(float)));
	CHECK_NAMED("threads: 2 threads twice, bit-identical",
		    rc == 0 && loss[2] == loss[3] && !memcmp(g[2], g[3], n * sizeof(float)) &&
			!memcmp(lg[2], lg[3], nl * sizeof(float)));
	/* Per tensor, relative to its largest gradient. */
	double worst = 0;
	const char *wname = "";
	for (size_t k = 0; k < m->ntensors; k++) {
		const struct qn_gpt2_tensor *t = m->tensors + k;
		double gmax = 0, d = 0;
		for (size_t j = t->offset; j < t->offset + t->numel; j++) {
			gmax = fmax(gmax, fabs(g[0][j]));
			d = fmax(d, fabs((double)g[0][j] - g[2][j]));
		}
		if (d / fmax(gmax, 1e-30) > worst) {
			worst = d / fmax(gmax, 1e-30);
			wname = t->name;
		}
	}
	CHECK_NAMED("threads: 1 vs 2 threads, gradients within 1e-5", worst <= 1e-5);
	printf("  (worst %s: %.3g of its largest)\n", wname, worst);
	CHECK_NAMED("threads: 1 vs 2 threads, loss and logits within 1e-5",
		    fabs(loss[0] - loss[2]) <= 1e-5 && max_diff(lg[0], lg[2], nl) <= 1e-5);
	for (int i = 0; i < 4; i++) {
		free(g[i]);
		free(lg[i]);
	}
	qn_gpt2_set_threads(m, 1);
	qn_gpt2_free(m);
}

/*
 * The child modes: a forward/backward with B*H = 4 attention problems run
 * with more OpenMP threads than qn_gpt2_train_new saw (raised later, or
 * never set so OpenMP's default applies); exits 0 when nothing broke and
 * the gradients match one thread's.
 */
static int threads_child(int late)
{
	enum { B = 2, T = 16, V = 11 };
	uint32_t in[B * T], tg[B * T];
	struct qn_err e;
	struct qn_gpt2_config c;

	qn_gpt2_config_default(&c);
	c.n_layer = 1;
	c.n_head = 2;
	c.n_embd = 8;
	c.n_positions = T;
	c.vocab_size = V;
	struct qn_gpt2 *m = qn_gpt2_new(&c, &e);
	if (!m)
		return 2;
	qn_gpt2_init_weights(m, 3);
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	if (late)
		qn_gpt2_set_threads(m, 1);
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	if (!t)
		return 2;
	if (late)
		qn_gpt2_set_threads(m, 4);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	float *g = copy_floats(m->grads, m->nparams);
	qn_gpt2_train_free(t);
	qn_gpt2_set_threads(m, 1);
	t = qn_gpt2_train_new(m, B, T, &e);
	if (!t)
		return 2;
	qn_gpt2_zero_grads(m);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	double d = 0, gmax = 0;
	for (size_t j = 0; j < m->nparams; j++) {
		d = fmax(d, fabs((double)g[j] - m->grads[j]));
		gmax = fmax(gmax, fabs(m->grads[j]));
	}
	free(g);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
	return d <= 1e-5 * gmax ? 0 : 3;
}

/* Runs this program in mode; its stderr goes to a file, whose report lines are shown. */
static int run_child(const char *mode, const char *omp_threads)
{
	const char *errpath = in_top("child.err");
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(errpath, "w", stderr);
		(void)f;
		if (omp_threads)
			setenv("OMP_NUM_THREADS", omp_threads, 1);
		execl("/proc/self/exe", "test_gpt2", mode, (char *)NULL);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	FILE *f = fopen(errpath, "r");
	char line[512];
	while (f && fgets(line, sizeof line, f))
		if (contains(line, "ERROR:") || contains(line, "SUMMARY:") ||
		    contains(line, " #4 "))
			printf("  child: %s", line);
	if (f)
		fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_threads_later(void)
{
	fflush(stdout);
	int rc = run_child("--threads-late", NULL);
	CHECK_NAMED("threads: set_threads(4) after train_new (exit status 0)", rc == 0);
	if (rc)
		printf("  child exited %d\n", rc);
	rc = run_child("--threads-unset", "4");
	CHECK_NAMED("threads: never set, OMP_NUM_THREADS=4 (exit status 0)", rc == 0);
	if (rc)
		printf("  child exited %d\n", rc);
}

/* ---- AdamW and clipping ------------------------------------------------------- */

static void test_adamw(void)
{
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 4, 5, 0, 21);

	CHECK_NAMED("adamw: model made", m != NULL);
	if (!m)
		return;
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, 1, 1, &e); /* allocates grads */
	CHECK_NAMED("adamw: grads allocated", t && m->grads);
	if (!t || !m->grads) {
		qn_gpt2_free(m);
		return;
	}
	size_t n = m->nparams;
	float *mom = malloc(n * sizeof *mom), *var = malloc(n * sizeof *var);
	double *p = malloc(n * sizeof *p), *mm = malloc(n * sizeof *mm),
	       *vv = malloc(n * sizeof *vv);
	struct qn_adamw o = {
	    .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};

	rng_state = 23;
	for (size_t j = 0; j < n; j++) {
		m->grads[j] = (float)(0.1 * normal());
		mom[j] = (float)(0.05 * normal());
		var[j] = (float)(0.01 * uniform());
	}
	m->grads[0] = 0; /* eps matters here */
	mom[0] = 0;
	var[0] = 0;
	/* PyTorch's AdamW (single-tensor path), in double. */
	long step = 3;
	double bc1 = 1 - pow(o.beta1, step), bc2 = 1 - pow(o.beta2, step);
	for (size_t k = 0; k < m->ntensors; k++) {
		const struct qn_gpt2_tensor *ten = m->tensors + k;
		for (size_t j = ten->offset; j < ten->offset + ten->numel; j++) {
			double gj = m->grads[j];
			p[j] = m->params[j];
			if (ten->decay)
				p[j] *= 1 - o.lr * o.weight_decay;
			mm[j] = o.beta1 * mom[j] + (1 - o.beta1) * gj;
			vv[j] = o.beta2 * var[j] + (1 - o.beta2) * gj * gj;
			p[j] -= (o.lr / bc1) * mm[j] / (sqrt(vv[j]) / sqrt(bc2) + o.eps);
		}
	}
	float *before = copy_floats(m->params, n);
	qn_gpt2_adamw(m, mom, var, &o, step);
	double dp = 0, dm = 0, dv = 0;
	for (size_t j = 0; j < n; j++) {
		dp = fmax(dp, fabs(m->params[j] - p[j]) / fmax(1e-3, fabs(p[j])));
		dm = fmax(dm, fabs(mom[j] - mm[j]) / fmax(1e-2, fabs(mm[j])));
		dv = fmax(dv, fabs(var[j] - vv[j]) / fmax(1e-4, fabs(vv[j])));
	}
	CHECK_NAMED("adamw: step 3 = PyTorch's formula (params)", dp <= 1e-5);
	CHECK_NAMED("adamw: step 3 = PyTorch's formula (moments)", dm <= 1e-5 && dv <= 1e-5);
	printf("  (relative diffs: params %.3g, m %.3g, v %.3g)\n", dp, dm, dv);
	CHECK_NAMED("adamw: zero gradient and moments leave the param", m->params[0] == before[0]);

	/* Zero gradients and moments: only the decay moves anything. */
	memcpy(m->params, before, n * sizeof *before);
	memset(m->grads, 0, n * sizeof *m->grads);
	memset(mom, 0, n * sizeof *mom);
	memset(var, 0, n * sizeof *var);
	qn_gpt2_adamw(m, mom, var, &o, 1);
	int decay_ok = 1, still_ok = 1;
	for (size_t k = 0; k < m->ntensors; k++) {
		const struct qn_gpt2_tensor *ten = m->tensors + k;
		for (size_t j = ten->offset; j < ten->offset + ten->numel; j++) {
			double w = before[j] * (1 - o.lr * o.weight_decay);
			if (ten->decay && fabs(m->params[j] - w) > 1e-7 * fabs(w) + 1e-12)
				decay_ok = 0;
			if (!ten->decay && m->params[j] != before[j])
				still_ok = 0;
		}
	}
	CHECK_NAMED("adamw: decay p *= 1 - lr*wd on the block matrices", decay_ok);
	CHECK_NAMED("adamw: no decay on embeddings, biases, LayerNorm", still_ok);

	/* Step 1 from zero moments moves each parameter by about lr against its gradient. */
	memcpy(m->params, before, n * sizeof *before);
	o.weight_decay = 0;
	int lr_ok = 1;
	for (size_t j = 0; j < n; j++)
		m->grads[j] = j % 3 == 0 ? -0.5f : 0.25f;
	qn_gpt2_adamw(m, mom, var, &o, 1);
	for (size_t j = 0; j < n; j++) {
		double want = before[j] - (m->grads[j] > 0 ? o.lr : -o.lr);
		if (fabs(m->params[j] - want) > 1e-6)
			lr_ok = 0;
	}
	CHECK_NAMED("adamw: first step is lr * sign(g)", lr_ok);

	/* Clipping. */
	double ref = 0;
	for (size_t j = 0; j < n; j++) {
		m->grads[j] = (float)((double)((long)(j % 7) - 3) * 0.01);
		ref += (double)m->grads[j] * m->grads[j];
	}
	ref = sqrt(ref);
	float *g0 = copy_floats(m->grads, n);
	CHECK_NAMED("clip: grad_norm", fabs(qn_gpt2_grad_norm(m) - ref) <= 1e-9 * ref);
	double got = qn_gpt2_clip_grads(m, 2 * ref);
	CHECK_NAMED("clip: above the norm, unchanged",
		    fabs(got - ref) <= 1e-9 * ref && !memcmp(g0, m->grads, n * sizeof *g0));
	got = qn_gpt2_clip_grads(m, 0.25 * ref);
	double coef = 0.25 * ref / (ref + 1e-6), worst = 0;
	for (size_t j = 0; j < n; j++)
		worst = fmax(worst, fabs(m->grads[j] - coef * g0[j]));
	CHECK_NAMED("clip: below the norm, scaled by max/(norm+1e-6); returns the norm before",
		    fabs(got - ref) <= 1e-9 * ref && worst <= 1e-7 * 0.03);
	CHECK_NAMED("clip: norm after", fabs(qn_gpt2_grad_norm(m) - 0.25 * ref) <= 1e-5 * ref);
	memcpy(m->grads, g0, n * sizeof *g0);
	got = qn_gpt2_clip_grads(m, ref);
	coef = ref / (ref + 1e-6);
	worst = 0;
	for (size_t j = 0; j < n; j++)
		worst = fmax(worst, fabs(m->grads[j] - coef * g0[j]));
	CHECK_NAMED("clip: at the norm, the 1e-6 still scales", worst <= 1e-9 && coef < 1);
	qn_gpt2_zero_grads(m);
	int zero = 1;
	for (size_t j = 0; j < n; j++)
		zero &= m->grads[j] == 0;
	CHECK_NAMED("zero_grads", zero && qn_gpt2_grad_norm(m) == 0);
	CHECK_NAMED("clip: zero gradient", qn_gpt2_clip_grads(m, 1.0) == 0);

	free(g0);
	free(before);
	free(mom);
	free(var);
	free(p);
	free(mm);
	free(vv);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
}

/* ---- checkpoints ------------------------------------------------------------ */

/* Writes dir/config.json from m and dir/model.safetensors from w. */
static int write_model(const char *dir, const struct qn_gpt2 *m, struct qn_st_writer *w)
{
	struct qn_err e;
	mkdir(dir, 0777);
	if (qn_gpt2_config_write(in_dir(dir, QN_GPT2_CONFIG), &m->cfg, &e) ||
	    qn_st_writer_write(w, in_dir(dir, QN_GPT2_WEIGHTS), &e)) {
		printf("  %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* A writer with every tensor of m under prefix but skip (NULL: none). */
static struct qn_st_writer *writer_of(const struct qn_gpt2 *m, const char *prefix, const char *skip)
{
	struct qn_st_writer *w = qn_st_writer_new();
	struct qn_err e;
	char nm[128];
	for (size_t i = 0; i < m->ntensors; i++) {
		const struct qn_gpt2_tensor *t = m->tensors + i;
		if (skip && !strcmp(t->name, skip))
			continue;
		snprintf(nm, sizeof nm, "%s%s", prefix, t->name);
		if (qn_st_writer_add(w, nm, QN_ST_F32, t->ndim, t->shape, m->params + t->offset,
				     &e))
			printf("  add %s: %s\n", nm, e.msg);
	}
	return w;
}

static int same_params(const struct qn_gpt2 *a, const struct qn_gpt2 *b)
{
	return a && b && same_config(&a->cfg, &b->cfg) && a->nparams == b->nparams &&
	       !memcmp(a->params, b->params, a->nparams * sizeof *a->params);
}

static void test_checkpoint(void)
{
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, 11, 12, 31);

	CHECK_NAMED("checkpoint: model made", m != NULL);
	if (!m)
		return;
	m->cfg.eos_token_id = 10;
	memcpy(m->cfg.tokenizer, FP, 65);

	const char *dir = in_top("save");
	mkdir(dir, 0777);
	int rc = qn_gpt2_save(m, dir, &e);
	CHECK_NAMED("checkpoint: save", rc == 0);
	if (rc)
		printf("  %s\n", e.msg);
	struct qn_gpt2 *r = qn_gpt2_load(dir, &e);
	CHECK_NAMED("checkpoint: save -> load, identical", same_params(m, r));
	if (!r)
		printf("  %s\n", e.msg);
	qn_gpt2_free(r);

	struct qn_st *st = qn_st_open(in_dir(dir, QN_GPT2_WEIGHTS), &e);
	CHECK_NAMED("checkpoint: names without prefix, format pt",
		    st && qn_st_count(st) == m->ntensors && qn_st_find(st, "wte.weight") &&
			qn_st_find(st, "h.1.mlp.c_proj.bias") && qn_st_meta(st, "format") &&
			!strcmp(qn_st_meta(st, "format"), "pt"));
	qn_st_close(st);

	/* "transformer." on every name, the mask buffers and lm_head.weight. */
	struct qn_st_writer *w = writer_of(m, "transformer.", NULL);
	uint64_t P = (uint64_t)m->cfg.n_positions, shp[4] = {1, 1, P, P};
	float *mask = calloc(P * P, sizeof *mask), masked_bias = -1e4f;
	for (uint64_t i = 0; i < P; i++)
		for (uint64_t j = 0; j <= i; j++)
			mask[i * P + j] = 1;
	qn_st_writer_add(w, "transformer.h.0.attn.bias", QN_ST_F32, 4, shp, mask, &e);
	qn_st_writer_add(w, "transformer.h.1.attn.bias", QN_ST_F32, 4, shp, mask, &e);
	qn_st_writer_add(w, "transformer.h.0.attn.masked_bias", QN_ST_F32, 0, shp, &masked_bias,
			 &e);
	qn_st_writer_add(w, "lm_head.weight", QN_ST_F32, 2, m->tensors[0].shape, m->params, &e);
	rc = write_model(in_top("prefix"), m, w);
	r = rc ? NULL : qn_gpt2_load(in_top("prefix"), &e);
	CHECK_NAMED("checkpoint: \"transformer.\" names, mask buffers, lm_head load",
		    same_params(m, r));
	if (!r)
		printf("  %s\n", e.msg);
	qn_gpt2_free(r);
	qn_st_writer_free(w);

	/* Refusals, each naming the tensor. */
	w = writer_of(m, "", "h.1.mlp.c_fc.bias");
	rc = write_model(in_top("missing"), m, w);
	e.msg[0] = 0;
	r = rc ? NULL : qn_gpt2_load(in_top("missing"), &e);
	CHECK_NAMED("checkpoint: a missing tensor fails, named",
		    !rc && !r && contains(e.msg, "h.1.mlp.c_fc.bias") &&
			contains(e.msg, "missing"));
	printf("  (%s)\n", e.msg);
	qn_gpt2_free(r);
	qn_st_writer_free(w);

	w = writer_of(m, "transformer.", "ln_f.weight");
	rc = write_model(in_top("missing2"), m, w);
	e.msg[0] = 0;
	r = rc ? NULL : qn_gpt2_load(in_top("missing2"), &e);
	CHECK_NAMED("checkpoint: a missing tensor (prefixed file) fails, named",
		    !rc && !r && contains(e.msg, "ln_f.weight"));
	qn_gpt2_free(r);
	qn_st_writer_free(w);

	w = writer_of(m, "", "wpe.weight");
	uint64_t wrong[2] = {2, P * (uint64_t)m->cfg.n_embd / 2};
	qn_st_writer_add(w, "wpe.weight", QN_ST_F32, 2, wrong, m->params + m->tensors[1].offset,
			 &e);
	rc = write_model(in_top("shape"), m, w);
	e.msg[0] = 0;
	r = rc ? NULL : qn_gpt2_load(in_top("shape"), &e);
	CHECK_NAMED("checkpoint: a wrong shape fails, named",
		    !rc && !r && contains(e.msg, "wpe.weight"));
	qn_gpt2_free(r);
	qn_st_writer_free(w);

	w = writer_of(m, "", NULL);
	float extra[3] = {1, 2, 3};
	uint64_t three = 3;
	qn_st_writer_add(w, "h.0.mlp.c_gate.weight", QN_ST_F32, 1, &three, extra, &e);
	rc = write_model(in_top("extra"), m, w);
	e.msg[0] = 0;
	r = rc ? NULL : qn_gpt2_load(in_top("extra"), &e);
	CHECK_NAMED("checkpoint: an unknown tensor fails, named",
		    !rc && !r && contains(e.msg, "h.0.mlp.c_gate.weight"));
	qn_gpt2_free(r);
	qn_st_writer_free(w);

	w = writer_of(m, "", "ln_f.bias");
	qn_st_writer_add(w, "transformer.ln_f.bias", QN_ST_F32, 1,
			 m->tensors[m->ntensors - 1].shape,
			 m->params + m->tensors[m->ntensors - 1].offset, &e);
	qn_st_writer_add(w, "ln_f.bias", QN_ST_F32, 1, m->tensors[m->ntensors - 1].shape,
			 m->params + m->tensors[m->ntensors - 1].offset, &e);
	rc = write_model(in_top("twice"), m, w);
	e.msg[0] = 0;
	r = rc ? NULL : qn_gpt2_load(in_top("twice"), &e);
	CHECK_NAMED("checkpoint: a tensor with and without prefix fails",
		    !rc && !r && contains(e.msg, "ln_f.bias"));
	qn_gpt2_free(r);
	qn_st_writer_free(w);

	float keep = m->params[m->tensors[5].offset + 3];
	m->params[m->tensors[5].offset + 3] = NAN;
	w = writer_of(m, "", NULL);
	rc = write_model(in_top("nan"), m, w);
	e.msg[0] = 0;
	r = rc ? NULL : qn_gpt2_load(in_top("nan"), &e);
	CHECK_NAMED("checkpoint: a NaN fails, the tensor named",
		    !rc && !r && contains(e.msg, m->tensors[5].name));
	qn_gpt2_free(r);
	qn_st_writer_free(w);
	m->params[m->tensors[5].offset + 3] = keep;

	e.msg[0] = 0;
	r = qn_gpt2_load(in_top("nowhere"), &e);
	CHECK_NAMED("checkpoint: a missing folder fails", !r && contains(e.msg, "nowhere"));

	free(mask);
	qn_gpt2_free(m);
}

/* ---- the fixture model against PyTorch --------------------------------------- */

static const char *fixture_dir(void)
{
	static char p[4200];
	const char *t = getenv("QN_TOP");
	snprintf(p, sizeof p, "%s/tests/fixtures/gpt2", t && *t ? t : ".");
	return p;
}

/*
 * Largest |a - want| over the tensor `name` of st; rel 1: divided by
 * max(1, max |want|), rel 2: by max |want|.
 */
static double st_diff(const struct qn_st *st, const char *name, const float *a, size_t n, int rel)
{
	struct qn_err e;
	const struct qn_st_tensor *t = qn_st_find(st, name);
	if (!t || t->numel != n)
		return INFINITY;
	float *want = malloc(n * sizeof *want);
	double d = INFINITY, mx = 0;
	if (qn_st_read_f32(st, t, want, n, &e) == 0) {
		d = 0;
		for (size_t i = 0; i < n; i++) {
			d = fmax(d, fabs((double)a[i] - want[i]));
			mx = fmax(mx, fabs(want[i]));
		}
		if (rel)
			d /= rel == 1 ? fmax(1, mx) : fmax(mx, 1e-30);
	}
	free(want);
	return d;
}

static void test_fixture(void)
{
	enum { B = 3, T = 12, V = 96 };
	struct qn_err e;
	char path[4400];
	uint32_t batch[B * (T + 1)], in[B * T], tg[B * T];
	const char *dir = fixture_dir();

	struct qn_gpt2 *m = qn_gpt2_load(dir, &e);
	CHECK_NAMED("fixture: model loads", m != NULL);
	if (!m) {
		printf("  %s\n", e.msg);
		return;
	}
	snprintf(path, sizeof path, "%s/batch.bin", dir);
	FILE *f = fopen(path, "rb");
	int ok = f && fread(batch, sizeof *batch, B * (T + 1), f) == B * (T + 1);
	if (f)
		fclose(f);
	snprintf(path, sizeof path, "%s/expected.safetensors", dir);
	struct qn_st *st = qn_st_open(path, &e);
	CHECK_NAMED("fixture: batch and expected values read", ok && st);
	if (!ok || !st) {
		qn_st_close(st);
		qn_gpt2_free(m);
		return;
	}
	for (int b = 0; b < B; b++)
		for (int i = 0; i < T; i++) {
			in[b * T + i] = batch[b * (T + 1) + i];
			tg[b * T + i] = batch[b * (T + 1) + i + 1];
		}
	qn_gpt2_set_threads(m, 1);
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	float *logits = malloc((size_t)B * T * V * sizeof *logits);
	float loss = (float)qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, logits);
	qn_gpt2_backward(t, 1.0f);
	CHECK_NAMED("fixture: logits = PyTorch's within 1e-5",
		    st_diff(st, "logits", logits, (size_t)B * T * V, 0) <= 1e-5);
	CHECK_NAMED("fixture: loss = PyTorch's within 1e-6",
		    st_diff(st, "loss", &loss, 1, 0) <= 1e-6);
	double worst = 0;
	const char *wname = "";
	char nm[128];
	for (size_t k = 0; k < m->ntensors; k++) {
		snprintf(nm, sizeof nm, "grads.%s", m->tensors[k].name);
		double d = st_diff(st, nm, m->grads + m->tensors[k].offset, m->tensors[k].numel, 2);
		if (d > worst || isnan(d)) {
			worst = d;
			wname = m->tensors[k].name;
		}
	}
	CHECK_NAMED("fixture: gradients = PyTorch's within 1e-5 of each tensor's largest",
		    worst <= 1e-5);
	printf("  (worst %s: %.3g)\n", wname, worst);

	/* Ten steps: clip to 1, AdamW(1e-3, 0.9, 0.95, 1e-8, wd 0.1). */
	float *mom = calloc(m->nparams, sizeof *mom), *var = calloc(m->nparams, sizeof *var);
	float losses[10];
	struct qn_adamw o = {
	    .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
	for (int s = 1; s <= 10; s++) {
		qn_gpt2_zero_grads(m);
		losses[s - 1] = (float)qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
		qn_gpt2_backward(t, 1.0f);
		qn_gpt2_clip_grads(m, 1.0);
		qn_gpt2_adamw(m, mom, var, &o, s);
	}
	CHECK_NAMED("fixture: losses of 10 AdamW steps within 2e-5",
		    st_diff(st, "losses", losses, 10, 0) <= 2e-5);
	worst = 0;
	for (size_t k = 0; k < m->ntensors; k++) {
		snprintf(nm, sizeof nm, "params.%s", m->tensors[k].name);
		double d =
		    st_diff(st, nm, m->params + m->tensors[k].offset, m->tensors[k].numel, 1);
		if (d > worst || isnan(d)) {
			worst = d;
			wname = m->tensors[k].name;
		}
	}
	CHECK_NAMED("fixture: params after 10 steps within 1e-5", worst <= 1e-5);
	printf("  (worst %s: %.3g)\n", wname, worst);
	free(mom);
	free(var);
	free(logits);
	qn_gpt2_train_free(t);
	qn_st_close(st);
	qn_gpt2_free(m);
}

static void test_train_new(void)
{
	struct qn_err e;
	struct qn_gpt2 *m = tiny(1, 2, 8, 8, 11, 0, 1);
	if (!m)
		return;
	e.msg[0] = 0;
	CHECK_NAMED("train_new: T past n_positions fails",
		    !qn_gpt2_train_new(m, 1, 9, &e) && e.msg[0]);
	CHECK_NAMED("train_new: B 0 fails", !qn_gpt2_train_new(m, 0, 4, &e));
	CHECK_NAMED("train_new: T 0 fails", !qn_gpt2_train_new(m, 2, 0, &e));
	qn_gpt2_free(m);
}

int main(int argc, char **argv)
{

	if (argc > 1 && !strcmp(argv[1], "--threads-late"))
		return threads_child(1);
	if (argc > 1 && !strcmp(argv[1], "--threads-unset"))
		return threads_child(0);
	if (make_top("test_gpt2") < 0)
		return 1;
	test_config();
	test_table();
	test_train_new();
	test_grads();
	test_dropout();
	test_infer();
	test_threads();
	test_freeze();
	test_threads_later();
	test_adamw();
	test_checkpoint();
	test_fixture();
	rm_rf(top);
	return CHECK_DONE();
}
