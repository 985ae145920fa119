/*
 * test_lora.c - lib/gpt2's LoRA adapters: qn_gpt2_lora_target's names; the
 * adapter table qn_gpt2_lora_add builds (PEFT names, shapes (r, in) and
 * (out, r), offsets), A's range, B at zero leaving the training forward and
 * the KV-cache inference bit for bit the base model's, and its refusals;
 * the adapter's gradients against central finite differences of the loss
 * with every base tensor frozen (the base gradients never written), and
 * the base gradients with the base unfrozen, and the same at 12 threads
 * (more than rows or columns); merge against the adapter's
 * logits and a double-precision W + scaling (B A)^T; save -> load (the
 * PEFT adapter_config.json and tensor names) and the load's refusals; the
 * adapter's AdamW against PyTorch's formula in double; enabled = 0 giving
 * the base model. Works in a mkdtemp folder under $TMPDIR (or /tmp),
 * removed at the end.
 */
#define _XOPEN_SOURCE 700
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "err.h"
#include "gpt2.h"
#include "safetensors.h"
#include "testfs.h"
#include "testgpt2.h"

#define ALL_TARGETS (QN_LORA_C_ATTN | QN_LORA_ATTN_PROJ | QN_LORA_MLP_FC | QN_LORA_MLP_PROJ)
#define PEFT_PREFIX "base_model.model.transformer."

/* Every B (the odd adapter tensors) at scale * N(0, 1), so the adapter acts and dA is not 0. */
static void random_B(struct qn_gpt2 *m, double scale)
{
	struct qn_gpt2_lora *a = m->lora;
	for (size_t i = 1; i < a->ntensors; i += 2)
		for (size_t j = 0; j < a->tensors[i].numel; j++)
			a->params[a->tensors[i].offset + j] = (float)(scale * normal());
}

/* The B*T*V logits of the training forward; 0 or -1. */
static int train_logits(struct qn_gpt2 *m, int B, int T, const uint32_t *in, const uint32_t *tg,
			float *logits)
{
	struct qn_err e;
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	if (!t) {
		printf("  %s\n", e.msg);
		return -1;
	}
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, logits);
	qn_gpt2_train_free(t);
	return 0;
}

/* The T*V logits of the KV-cache inference over in[0..T); 0 or -1. */
static int infer_logits(struct qn_gpt2 *m, int T, const uint32_t *in, float *logits)
{
	struct qn_err e;
	struct qn_gpt2_infer *g = qn_gpt2_infer_new(m, &e);
	int rc = g ? qn_gpt2_infer_step(g, in, T, logits, 1, &e) : -1;
	if (rc)
		printf("  %s\n", e.msg);
	qn_gpt2_infer_free(g);
	return rc;
}

/* ---- qn_gpt2_lora_target ------------------------------------------------------ */

static void test_target(void)
{
	static const struct {
		const char *name;
		unsigned want;
	} cases[] = {
	    {"c_attn", QN_LORA_C_ATTN},
	    {"attn.c_attn", QN_LORA_C_ATTN},
	    {"attn.c_proj", QN_LORA_ATTN_PROJ},
	    {"mlp.c_fc", QN_LORA_MLP_FC},
	    {"mlp.c_proj", QN_LORA_MLP_PROJ},
	    {"c_proj", QN_LORA_ATTN_PROJ | QN_LORA_MLP_PROJ},
	    {"c_fc", QN_LORA_MLP_FC},
	    {"q_proj", 0},
	    {"", 0},
	    {"attn", 0},
	    {"mlp", 0},
	    {"C_ATTN", 0},
	    {"c_attn ", 0},
	    {"c_attn.weight", 0},
	    {"lm_head", 0},
	    {"wte", 0},
	};
	char label[256];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		unsigned got = qn_gpt2_lora_target(cases[i].name);
		snprintf(label, sizeof label, "target: '%s' -> %u", cases[i].name, cases[i].want);
		CHECK_NAMED(label, got == cases[i].want);
		if (got != cases[i].want)
			printf("  got %u\n", got);
	}
}

/* ---- qn_gpt2_lora_add ------------------------------------------------------------ */

/* The sites in block order: Hugging Face module, inputs, outputs. */
struct site {
	unsigned bit;
	const char *module;
	uint64_t in, out;
};

static void sites_of(const struct qn_gpt2 *m, struct site s[4])
{
	uint64_t C = (uint64_t)m->cfg.n_embd, F = m->cfg.n_inner ? (uint64_t)m->cfg.n_inner : 4 * C;
	s[0] = (struct site){QN_LORA_C_ATTN, "attn.c_attn", C, 3 * C};
	s[1] = (struct site){QN_LORA_ATTN_PROJ, "attn.c_proj", C, C};
	s[2] = (struct site){QN_LORA_MLP_FC, "mlp.c_fc", C, F};
	s[3] = (struct site){QN_LORA_MLP_PROJ, "mlp.c_proj", F, C};
}

/* The adapter table against the one worked out here from the config. */
static void check_table(const char *what, const struct qn_gpt2 *m, int r, float alpha,
			unsigned targets)
{
	const struct qn_gpt2_lora *a = m->lora;
	struct site s[4];
	char label[256], nm[64];
	size_t n = 0, off = 0;
	int names = 1, shapes = 1, layout = 1;

	snprintf(label, sizeof label, "add %s: r, alpha, scaling, targets, enabled", what);
	CHECK_NAMED(label, a && a->r == r && a->alpha == alpha && a->scaling == alpha / (float)r &&
			       a->targets == targets && a->enabled == 1 && a->grads == NULL);
	if (!a)
		return;
	sites_of(m, s);
	for (int l = 0; l < m->cfg.n_layer; l++)
		for (int k = 0; k < 4; k++) {
			if (!(targets & s[k].bit))
				continue;
			for (int ab = 0; ab < 2; ab++, n++) {
				if (n >= a->ntensors)
					continue;
				const struct qn_gpt2_tensor *t = a->tensors + n;
				uint64_t d0 = ab ? s[k].out : (uint64_t)r,
					 d1 = ab ? (uint64_t)r : s[k].in;
				snprintf(nm, sizeof nm, "h.%d.%s.lora_%c.weight", l, s[k].module,
					 ab ? 'B' : 'A');
				if (strcmp(t->name, nm)) {
					printf("  tensor %zu: got %s want %s\n", n, t->name, nm);
					names = 0;
				}
				if (t->ndim != 2 || t->shape[0] != d0 || t->shape[1] != d1)
					shapes = 0;
				if (t->offset != off || t->numel != d0 * d1 || t->layer != l ||
				    !t->decay)
					layout = 0;
				off += d0 * d1;
			}
		}
	snprintf(label, sizeof label, "add %s: %zu tensors", what, n);
	CHECK_NAMED(label, a->ntensors == n);
	snprintf(label, sizeof label, "add %s: names h.N.<module>.lora_A/B.weight in block order",
		 what);
	CHECK_NAMED(label, names);
	snprintf(label, sizeof label, "add %s: shapes A (r, in), B (out, r)", what);
	CHECK_NAMED(label, shapes);
	snprintf(label, sizeof label, "add %s: offsets contiguous, layers, decay", what);
	CHECK_NAMED(label, layout && a->nparams == off);

	int zero_b = 1, in_range = 1;
	double amax_ratio = 0;
	for (size_t i = 0; i < a->ntensors; i++) {
		const struct qn_gpt2_tensor *t = a->tensors + i;
		const float *p = a->params + t->offset;
		double bound = 1.0 / sqrt((double)t->shape[1]);
		for (size_t j = 0; j < t->numel; j++) {
			if (i % 2) {
				zero_b &= p[j] == 0;
			} else {
				in_range &= fabs(p[j]) <= bound;
				amax_ratio = fmax(amax_ratio, fabs(p[j]) / bound);
			}
		}
	}
	snprintf(label, sizeof label, "add %s: B is zero", what);
	CHECK_NAMED(label, zero_b);
	snprintf(label, sizeof label, "add %s: A within +-1/sqrt(in) and spanning it", what);
	CHECK_NAMED(label, in_range && amax_ratio > 0.8);
}

static void test_add(void)
{
	enum { B = 2, T = 6, V = 11 };
	uint32_t in[B * T], tg[B * T];
	float base_train[B * T * V], base_inf[T * V], ad_train[B * T * V], ad_inf[T * V];
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, V, 0, 31), *m2 = tiny(2, 2, 8, 8, V, 20, 31);

	CHECK_NAMED("add: models made", m && m2);
	if (!m || !m2)
		goto out;
	rng_state = 33;
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);

	int rc = qn_gpt2_lora_add(m, 4, 8, QN_LORA_C_ATTN, 1, &e);
	CHECK_NAMED("add: c_attn only", rc == 0);
	if (rc == 0)
		check_table("c_attn", m, 4, 8, QN_LORA_C_ATTN);
	else
		printf("  %s\n", e.msg);

	/* All four, on a model whose MLP width is not 4C. */
	rc = train_logits(m2, B, T, in, tg, base_train) || infer_logits(m2, T, in, base_inf);
	rc = rc || qn_gpt2_lora_add(m2, 3, 6, ALL_TARGETS, 2, &e);
	CHECK_NAMED("add: all four targets", rc == 0);
	if (rc)
		goto out;
	check_table("all", m2, 3, 6, ALL_TARGETS);
	rc = train_logits(m2, B, T, in, tg, ad_train) || infer_logits(m2, T, in, ad_inf);
	CHECK_NAMED("add: B = 0 leaves the training forward's logits bit for bit",
		    rc == 0 && !memcmp(base_train, ad_train, sizeof ad_train));
	CHECK_NAMED("add: B = 0 leaves the inference logits bit for bit",
		    rc == 0 && !memcmp(base_inf, ad_inf, sizeof ad_inf));

	/* A from the seed. */
	struct qn_gpt2 *m3 = tiny(2, 2, 8, 8, V, 20, 31);
	int same = 0, other = 0;
	if (m3 && !qn_gpt2_lora_add(m3, 3, 6, ALL_TARGETS, 2, &e)) {
		same =
		    m3->lora->nparams == m2->lora->nparams &&
		    !memcmp(m3->lora->params, m2->lora->params, m2->lora->nparams * sizeof(float));
		qn_gpt2_free(m3);
		m3 = tiny(2, 2, 8, 8, V, 20, 31);
		other =
		    m3 && !qn_gpt2_lora_add(m3, 3, 6, ALL_TARGETS, 3, &e) &&
		    memcmp(m3->lora->params, m2->lora->params, m2->lora->nparams * sizeof(float));
	}
	qn_gpt2_free(m3);
	CHECK_NAMED("add: A reproducible from the seed", same);
	CHECK_NAMED("add: another seed, another A", other);

	/* Refusals leave the model without an adapter. */
	qn_gpt2_free(m);
	m = tiny(1, 2, 8, 8, V, 0, 31);
	static const struct {
		int r;
		float alpha;
		unsigned targets;
		const char *what, *msg;
	} bad[] = {
	    {0, 8, QN_LORA_C_ATTN, "r 0", "rank"},
	    {-2, 8, QN_LORA_C_ATTN, "r -2", "rank"},
	    {4, 0, QN_LORA_C_ATTN, "alpha 0", "alpha"},
	    {4, -1, QN_LORA_C_ATTN, "alpha -1", "alpha"},
	    {4, NAN, QN_LORA_C_ATTN, "alpha NaN", "alpha"},
	    {4, 8, 0, "no targets", "targets"},
	    {4, 8, 16, "an unknown target bit", "targets"},
	};
	char label[256];
	for (size_t i = 0; m && i < sizeof bad / sizeof *bad; i++) {
		e.msg[0] = 0;
		rc = qn_gpt2_lora_add(m, bad[i].r, bad[i].alpha, bad[i].targets, 1, &e);
		snprintf(label, sizeof label, "add: refuses %s", bad[i].what);
		CHECK_NAMED(label, rc == -1 && !m->lora && contains(e.msg, bad[i].msg));
		if (rc != -1 || !contains(e.msg, bad[i].msg))
			printf("  rc %d: %s\n", rc, e.msg);
	}
	rc = m ? qn_gpt2_lora_add(m, 2, 4, QN_LORA_MLP_FC, 1, &e) : -1;
	const struct qn_gpt2_lora *first = m ? m->lora : NULL;
	e.msg[0] = 0;
	CHECK_NAMED("add: a second adapter refused, the first kept",
		    rc == 0 && qn_gpt2_lora_add(m, 2, 4, QN_LORA_C_ATTN, 1, &e) == -1 &&
			m->lora == first && m->lora->targets == QN_LORA_MLP_FC &&
			contains(e.msg, "already"));
out:
	qn_gpt2_free(m);
	qn_gpt2_free(m2);
}

/* ---- gradients ------------------------------------------------------------------- */

static void test_grads(void)
{
	enum { B = 2, T = 5, V = 11 };
	uint32_t in[B * T], tg[B * T];
	float logits[B * T * V];
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, V, 0, 7);
	struct qn_gpt2_train *t = NULL;
	float *ga = NULL, *gb = NULL;

	CHECK_NAMED("grad: model made", m != NULL);
	if (!m)
		return;
	int rc = qn_gpt2_lora_add(m, 4, 6, ALL_TARGETS, 5, &e);
	CHECK_NAMED("grad: adapter added", rc == 0);
	if (rc) {
		printf("  %s\n", e.msg);
		goto out;
	}
	rng_state = 99;
	random_B(m, 0.2);
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	tg[3] = in[4];

	/* Every base tensor frozen: only the adapter trains. */
	for (size_t i = 0; i < m->ntensors; i++)
		qn_gpt2_freeze(m, i, 1);
	t = qn_gpt2_train_new(m, B, T, &e); /* fresh zeros in m->grads */
	CHECK_NAMED("grad: train state", t && m->grads && m->lora->grads);
	if (!t) {
		printf("  %s\n", e.msg);
		goto out;
	}
	struct qn_gpt2_lora *a = m->lora;
	struct batch bt = {t, in, tg, NULL, 0, B, T};
	qn_gpt2_zero_grads(m);
	double loss = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, logits);
	double ref = ref_loss(logits, tg, NULL, 0, (size_t)B * T, V);
	CHECK_NAMED("grad: loss = log-softmax of the logits",
		    fabs(loss - ref) <= 1e-5 * fmax(1, fabs(ref)));
	qn_gpt2_backward(t, 1.0f);
	ga = copy_floats(a->grads, a->nparams);
	int zero = 1, nonzero_a = 1;
	for (size_t j = 0; j < m->nparams; j++)
		zero &= m->grads[j] == 0;
	for (size_t i = 0; i < a->ntensors; i += 2) {
		int any = 0;
		for (size_t j = 0; j < a->tensors[i].numel; j++)
			any |= ga[a->tensors[i].offset + j] != 0;
		nonzero_a &= any;
	}
	CHECK_NAMED("grad frozen: the base gradients are never written", zero);
	CHECK_NAMED("grad frozen: every A gets a gradient", nonzero_a);
	grad_samples("frozen", &bt, a->params, ga, a->tensors, a->ntensors, 5);

	/* Norm and clipping cover the adapter; backward's scale reaches it. */
	double ss = 0;
	for (size_t j = 0; j < a->nparams; j++)
		ss += (double)ga[j] * ga[j];
	double norm = qn_gpt2_grad_norm(m);
	CHECK_NAMED("grad frozen: grad_norm is the adapter's",
		    fabs(norm - sqrt(ss)) <= 1e-6 * sqrt(ss));
	qn_gpt2_clip_grads(m, 0.5 * norm);
	double worst = 0, gmax = 0;
	for (size_t j = 0; j < a->nparams; j++) {
		worst = fmax(worst, fabs(a->grads[j] - 0.5 * ga[j]));
		gmax = fmax(gmax, fabs(ga[j]));
	}
	CHECK_NAMED("grad frozen: clip_grads scales the adapter's gradients", worst <= 1e-6 * gmax);
	qn_gpt2_zero_grads(m);
	int cleared = 1;
	for (size_t j = 0; j < a->nparams; j++)
		cleared &= a->grads[j] == 0;
	CHECK_NAMED("grad frozen: zero_grads clears the adapter's gradients", cleared);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 0.375f);
	worst = 0;
	for (size_t j = 0; j < a->nparams; j++)
		worst = fmax(worst, fabs(a->grads[j] - 0.375 * ga[j]));
	CHECK_NAMED("grad frozen: backward(0.375) is 0.375 x the adapter's gradient",
		    worst <= 1e-6 * gmax);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 0.625f);
	worst = 0;
	for (size_t j = 0; j < a->nparams; j++)
		worst = fmax(worst, fabs(a->grads[j] - ga[j]));
	CHECK_NAMED("grad frozen: the adapter's gradients accumulate", worst <= 1e-6 * gmax);

	/* The base unfrozen: its gradients include the adapter's paths. */
	for (size_t i = 0; i < m->ntensors; i++)
		qn_gpt2_freeze(m, i, 0);
	qn_gpt2_zero_grads(m);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	CHECK_NAMED("grad unfrozen: the adapter's gradients equal the frozen run's, bit for bit",
		    !memcmp(a->grads, ga, a->nparams * sizeof *ga));
	gb = copy_floats(m->grads, m->nparams);
	grad_samples("unfrozen base", &bt, m->params, gb, m->tensors, m->ntensors, 2);

	/* More threads than rows, inputs or outputs: the same gradients (to rounding). */
	qn_gpt2_train_free(t);
	qn_gpt2_set_threads(m, 12);
	t = qn_gpt2_train_new(m, B, T, &e);
	float logits12[B * T * V];
	double dl = 1, dga = 1, dgb = 1;
	if (t) {
		qn_gpt2_zero_grads(m);
		qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, logits12);
		qn_gpt2_backward(t, 1.0f);
		dl = max_diff(logits, logits12, sizeof logits / sizeof *logits);
		dga = max_diff(ga, a->grads, a->nparams) / gmax;
		gmax = 0;
		for (size_t j = 0; j < m->nparams; j++)
			gmax = fmax(gmax, fabs(gb[j]));
		dgb = max_diff(gb, m->grads, m->nparams) / gmax;
	}
	CHECK_NAMED("grad: 12 threads, the same logits and gradients",
		    dl <= 1e-5 && dga <= 1e-5 && dgb <= 1e-5);
	printf("  (max diffs: logits %.3g, adapter %.3g, base %.3g)\n", dl, dga, dgb);
out:
	free(ga);
	free(gb);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
}

/* ---- merge ------------------------------------------------------------------------ */

/*
 * Adapter-input dropout (PEFT's lora_dropout): with a key the masks are
 * fixed, so finite differences check dA, dB and the input gradient through
 * them; key 0 (evaluation) is the adapter without dropout, bit for bit.
 */
static void test_lora_dropout(void)
{
	enum { B = 2, T = 5, V = 11 };
	uint32_t in[B * T], tg[B * T];
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, V, 0, 17);
	CHECK_NAMED("lora dropout: model made", m != NULL);
	if (!m)
		return;
	if (qn_gpt2_lora_add(m, 4, 6, ALL_TARGETS, 5, &e)) {
		CHECK_NAMED("lora dropout: adapter added", 0);
		qn_gpt2_free(m);
		return;
	}
	m->lora->dropout = 0.3f;
	rng_state = 41;
	random_B(m, 0.2);
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	CHECK_NAMED("lora dropout: train state", t != NULL);
	if (!t) {
		qn_gpt2_free(m);
		return;
	}
	double off = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	m->lora->dropout = 0;
	double none = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	m->lora->dropout = 0.3f;
	CHECK_NAMED("lora dropout: key 0 is the adapter without dropout", off == none);
	qn_gpt2_dropout(t, 0, 0, 0, 77);
	double on = qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	CHECK_NAMED("lora dropout: a key turns it on", on != off);
	qn_gpt2_zero_grads(m);
	qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
	qn_gpt2_backward(t, 1.0f);
	float *ga = copy_floats(m->lora->grads, m->lora->nparams);
	float *gb = copy_floats(m->grads, m->nparams);
	struct batch bt = {t, in, tg, NULL, 0, B, T};
	grad_samples("lora dropout, adapter", &bt, m->lora->params, ga, m->lora->tensors,
		     m->lora->ntensors, 3);
	grad_samples("lora dropout, base", &bt, m->params, gb, m->tensors, m->ntensors, 2);
	free(ga);
	free(gb);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
}

static void test_merge(void)
{
	enum { B = 2, T = 7, V = 13 };
	uint32_t in[B * T], tg[B * T];
	float ad_train[B * T * V], ad_inf[T * V], merged[B * T * V], merged_inf[T * V];
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, V, 20, 41);

	CHECK_NAMED("merge: model made", m != NULL);
	if (!m)
		return;
	int rc = qn_gpt2_lora_add(m, 3, 5, ALL_TARGETS, 6, &e);
	CHECK_NAMED("merge: adapter added", rc == 0);
	if (rc) {
		qn_gpt2_free(m);
		return;
	}
	rng_state = 43;
	random_B(m, 0.2);
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	rc = train_logits(m, B, T, in, tg, ad_train) || infer_logits(m, T, in, ad_inf);
	double d = rc ? 1 : max_diff(ad_train, ad_inf, (size_t)T * V);
	CHECK_NAMED("merge: inference with the adapter = its training forward", d <= 1e-5);
	printf("  (max diff %.3g)\n", d);

	/* W + scaling (B A)^T worked out in double. */
	const struct qn_gpt2_lora *a = m->lora;
	double scaling = 5.0 / 3.0;
	double *want = malloc(m->nparams * sizeof *want);
	for (size_t j = 0; j < m->nparams; j++)
		want[j] = m->params[j];
	struct site s[4];
	sites_of(m, s);
	size_t n = 0;
	for (int l = 0; l < m->cfg.n_layer; l++)
		for (int k = 0; k < 4; k++, n += 2) {
			char nm[64];
			snprintf(nm, sizeof nm, "h.%d.%s.weight", l, s[k].module);
			const struct qn_gpt2_tensor *w = qn_gpt2_find(m, nm);
			const float *A = a->params + a->tensors[n].offset;
			const float *Bm = a->params + a->tensors[n + 1].offset;
			for (uint64_t i = 0; i < s[k].in; i++)
				for (uint64_t o = 0; o < s[k].out; o++) {
					double acc = 0;
					for (int q = 0; q < a->r; q++)
						acc +=
						    (double)Bm[o * a->r + q] * A[q * s[k].in + i];
					want[w->offset + i * s[k].out + o] += scaling * acc;
				}
		}
	qn_gpt2_lora_merge(m);
	CHECK_NAMED("merge: the adapter dropped", m->lora == NULL);
	double dw = 0;
	for (size_t j = 0; j < m->nparams; j++)
		dw = fmax(dw, fabs(m->params[j] - want[j]) / fmax(1, fabs(want[j])));
	CHECK_NAMED("merge: W += scaling (B A)^T in every targeted layer", dw <= 1e-6);
	printf("  (max diff %.3g)\n", dw);
	free(want);
	rc = train_logits(m, B, T, in, tg, merged) || infer_logits(m, T, in, merged_inf);
	d = rc ? 1 : max_diff(ad_train, merged, sizeof merged / sizeof *merged);
	CHECK_NAMED("merge: merged logits = the adapter's (training forward)", d <= 1e-5);
	printf("  (max diff %.3g)\n", d);
	d = rc ? 1 : max_diff(ad_inf, merged_inf, sizeof merged_inf / sizeof *merged_inf);
	CHECK_NAMED("merge: merged logits = the adapter's (inference)", d <= 1e-5);
	float *before = copy_floats(m->params, m->nparams);
	qn_gpt2_lora_merge(m);
	CHECK_NAMED("merge: without an adapter changes nothing",
		    !m->lora && !memcmp(before, m->params, m->nparams * sizeof *before));
	free(before);
	qn_gpt2_free(m);

	/* c_attn only: no other tensor moves. */
	m = tiny(2, 2, 8, 8, V, 0, 41);
	before = m ? copy_floats(m->params, m->nparams) : NULL;
	rc = m ? qn_gpt2_lora_add(m, 2, 2, QN_LORA_C_ATTN, 6, &e) : -1;
	int only = rc == 0;
	if (rc == 0) {
		random_B(m, 0.2);
		qn_gpt2_lora_merge(m);
		for (size_t i = 0; i < m->ntensors; i++) {
			const struct qn_gpt2_tensor *w = m->tensors + i;
			int eq = !memcmp(before + w->offset, m->params + w->offset,
					 w->numel * sizeof *before);
			only &= eq == !strstr(w->name, "attn.c_attn.weight");
		}
	}
	CHECK_NAMED("merge: c_attn only changes just the c_attn weights", only);
	free(before);
	qn_gpt2_free(m);
}

/* ---- save and load ----------------------------------------------------------------- */

/* dir made under top; its path in a static buffer of in_top's. */
static char *mk(const char *name)
{
	char *d = in_top(name);
	mkdir(d, 0777);
	return d;
}

/*
 * dst/adapter_config.json as src's with key set to value (stolen); with
 * weights, src's adapter_model.safetensors copied beside it. 0 or -1.
 */
static int config_variant(const char *src, const char *dst, const char *key, json_t *value,
			  int weights)
{
	json_error_t je;
	size_t n = 0;
	unsigned char *st = weights ? slurp(in_dir(src, "adapter_model.safetensors"), &n) : NULL;
	json_t *o = json_load_file(in_dir(src, "adapter_config.json"), 0, &je);
	int rc = (weights && !st) || !o || json_object_set_new(o, key, value) ||
		 json_dump_file(o, in_dir(dst, "adapter_config.json"), JSON_INDENT(2)) ||
		 (weights && spit(in_dir(dst, "adapter_model.safetensors"), st, n));
	if (!o)
		json_decref(value);
	json_decref(o);
	free(st);
	return rc ? -1 : 0;
}

/* Loads dir into a fresh copy of the base and checks the refusal's message. */
static void check_refusal(const char *what, const char *dir, const char *msg1, const char *msg2)
{
	struct qn_err e;
	char label[256];
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, 11, 0, 51);
	e.msg[0] = 0;
	int rc = m ? qn_gpt2_lora_load(m, dir, &e) : 0;
	snprintf(label, sizeof label, "load: refuses %s", what);
	int ok =
	    m && rc == -1 && !m->lora && contains(e.msg, msg1) && (!msg2 || contains(e.msg, msg2));
	CHECK_NAMED(label, ok);
	printf("  (%s)\n", e.msg);
	qn_gpt2_free(m);
}

static void test_save_load(void)
{
	struct qn_err e;
	char nm[160];
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, 11, 0, 51), *f = tiny(2, 2, 8, 8, 11, 0, 51);
	struct qn_st *st = NULL;
	json_t *o = NULL;

	CHECK_NAMED("save: models made", m && f);
	if (!m || !f)
		goto out;
	int rc = qn_gpt2_lora_add(m, 4, 12.5f, ALL_TARGETS, 8, &e);
	if (rc == 0) {
		rng_state = 53;
		random_B(m, 0.3);
	}
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", mk("adapter"));
	e.msg[0] = 0;
	CHECK_NAMED("save: without an adapter refused",
		    qn_gpt2_lora_save(f, dir, "gpt2", &e) == -1 && e.msg[0]);
	rc = rc || qn_gpt2_lora_save(m, dir, "openai-community/gpt2", &e);
	CHECK_NAMED("save: writes", rc == 0);
	if (rc) {
		printf("  %s\n", e.msg);
		goto out;
	}
	const struct qn_gpt2_lora *a = m->lora;

	/* adapter_config.json as PEFT writes it. */
	json_error_t je;
	o = json_load_file(in_dir(dir, "adapter_config.json"), 0, &je);
	CHECK_NAMED("save: adapter_config.json parses", o != NULL);
	if (o) {
		json_t *tm = json_object_get(o, "target_modules");
		unsigned targets = 0;
		for (size_t i = 0; json_is_array(tm) && i < json_array_size(tm); i++)
			targets |= qn_gpt2_lora_target(json_string_value(json_array_get(tm, i)));
		CHECK_STR("save: peft_type", json_string_value(json_object_get(o, "peft_type")),
			  "LORA");
		CHECK_STR("save: task_type", json_string_value(json_object_get(o, "task_type")),
			  "CAUSAL_LM");
		CHECK_STR("save: base_model_name_or_path",
			  json_string_value(json_object_get(o, "base_model_name_or_path")),
			  "openai-community/gpt2");
		CHECK_NAMED("save: r", json_is_integer(json_object_get(o, "r")) &&
					   json_integer_value(json_object_get(o, "r")) == 4);
		CHECK_NAMED("save: lora_alpha",
			    json_is_number(json_object_get(o, "lora_alpha")) &&
				json_number_value(json_object_get(o, "lora_alpha")) == 12.5);
		CHECK_NAMED("save: fan_in_fan_out true",
			    json_is_true(json_object_get(o, "fan_in_fan_out")));
		CHECK_NAMED("save: target_modules, the four modules",
			    json_is_array(tm) && json_array_size(tm) == 4 &&
				targets == ALL_TARGETS);
	}

	/* adapter_model.safetensors: exactly the PEFT names, F32, their shapes. */
	st = qn_st_open(in_dir(dir, "adapter_model.safetensors"), &e);
	CHECK_NAMED("save: adapter_model.safetensors opens", st != NULL);
	if (st) {
		int names = qn_st_count(st) == a->ntensors, values = 1;
		for (size_t i = 0; i < a->ntensors; i++) {
			const struct qn_gpt2_tensor *t = a->tensors + i;
			snprintf(nm, sizeof nm, PEFT_PREFIX "%s", t->name);
			const struct qn_st_tensor *x = qn_st_find(st, nm);
			if (!x) {
				printf("  missing %s\n", nm);
				names = 0;
				continue;
			}
			values &= x->dtype == QN_ST_F32 && x->ndim == 2 &&
				  x->shape[0] == t->shape[0] && x->shape[1] == t->shape[1] &&
				  !memcmp(qn_st_data(st, x), a->params + t->offset,
					  t->numel * sizeof(float));
		}
		CHECK_NAMED("save: tensors named exactly base_model.model.transformer.h.N....",
			    names);
		CHECK_NAMED("save: tensors F32 with their shapes and values", values);
		CHECK_STR("save: metadata format pt", qn_st_meta(st, "format"), "pt");
	}

	/* Into a fresh copy of the base model. */
	rc = qn_gpt2_lora_load(f, dir, &e);
	CHECK_NAMED("load: loads", rc == 0 && f->lora);
	if (rc)
		printf("  %s\n", e.msg);
	if (rc == 0) {
		const struct qn_gpt2_lora *b = f->lora;
		CHECK_NAMED("load: r, alpha, scaling, targets, enabled",
			    b->r == a->r && b->alpha == a->alpha && b->scaling == a->scaling &&
				b->targets == a->targets && b->enabled == 1);
		CHECK_NAMED("load: parameters bit for bit",
			    b->nparams == a->nparams &&
				!memcmp(b->params, a->params, a->nparams * sizeof(float)));
		int names = b->ntensors == a->ntensors;
		for (size_t i = 0; names && i < b->ntensors; i++)
			names = !strcmp(b->tensors[i].name, a->tensors[i].name);
		CHECK_NAMED("load: the same tensor table", names);
		e.msg[0] = 0;
		CHECK_NAMED("load: into a model with an adapter refused",
			    qn_gpt2_lora_load(f, dir, &e) == -1 && f->lora == b &&
				contains(e.msg, "already"));
	}

	/* PEFT's in-memory names (...lora_A.default.weight) are read too. */
	char *dflt = mk("default");
	struct qn_st_writer *w = qn_st_writer_new();
	rc = !w;
	for (size_t i = 0; !rc && i < a->ntensors; i++) {
		const struct qn_gpt2_tensor *t = a->tensors + i;
		snprintf(nm, sizeof nm, PEFT_PREFIX "%.*s.default.weight",
			 (int)(strlen(t->name) - strlen(".weight")), t->name);
		rc = qn_st_writer_add(w, nm, QN_ST_F32, 2, t->shape, a->params + t->offset, &e);
	}
	rc = rc || qn_st_writer_write(w, in_dir(dflt, "adapter_model.safetensors"), &e) ||
	     config_variant(dir, dflt, "r", json_integer(4), 0);
	struct qn_gpt2 *g = tiny(2, 2, 8, 8, 11, 0, 51);
	rc = rc || !g || qn_gpt2_lora_load(g, dflt, &e);
	CHECK_NAMED("load: PEFT's .default.weight names",
		    rc == 0 && g->lora->nparams == a->nparams &&
			!memcmp(g->lora->params, a->params, a->nparams * sizeof(float)));
	qn_gpt2_free(g);

	/* target_modules as one string, PEFT's other form. */
	char *one = mk("one_string");
	rc = config_variant(dir, one, "target_modules", json_string("c_proj"), 1);
	g = tiny(2, 2, 8, 8, 11, 0, 51);
	rc = rc || !g || qn_gpt2_lora_load(g, one, &e);
	CHECK_NAMED("load: target_modules \"c_proj\" (a string) is both projections",
		    rc == 0 && g->lora->targets == (QN_LORA_ATTN_PROJ | QN_LORA_MLP_PROJ));
	qn_gpt2_free(g);

	/* Refusals. */
	struct qn_gpt2 *wide = tiny(2, 2, 12, 8, 11, 0, 51);
	char *wd = mk("wide");
	rc = !wide || qn_gpt2_lora_add(wide, 4, 12.5f, ALL_TARGETS, 8, &e) ||
	     qn_gpt2_lora_save(wide, wd, "wide", &e);
	qn_gpt2_free(wide);
	if (!rc)
		check_refusal("an adapter of another width", wd, "does not fit",
			      PEFT_PREFIX "h.0.attn.c_attn.lora_A.weight");
	else
		CHECK_NAMED("load: the wide adapter saved", 0);

	char *q = mk("q_proj");
	json_t *qp = json_array();
	json_array_append_new(qp, json_string("c_attn"));
	json_array_append_new(qp, json_string("q_proj"));
	if (!config_variant(dir, q, "target_modules", qp, 1))
		check_refusal("target module q_proj", q, "q_proj", "adapter_config.json");

	char *ia3 = mk("ia3");
	if (!config_variant(dir, ia3, "peft_type", json_string("IA3"), 1))
		check_refusal("peft_type IA3", ia3, "peft_type", "adapter_config.json");

	char *r8 = mk("r8");
	if (!config_variant(dir, r8, "r", json_integer(8), 1))
		check_refusal("r 8 over tensors of rank 4", r8, "does not fit", NULL);

	char *rs = mk("r_string");
	if (!config_variant(dir, rs, "r", json_string("4"), 1))
		check_refusal("r as a string", rs, "r", "adapter_config.json");

	char *miss = mk("missing");
	const char *gone = "h.1.mlp.c_proj.lora_B.weight";
	qn_st_writer_free(w);
	w = qn_st_writer_new();
	rc = !w;
	for (size_t i = 0; !rc && i < a->ntensors; i++) {
		const struct qn_gpt2_tensor *t = a->tensors + i;
		if (!strcmp(t->name, gone))
			continue;
		snprintf(nm, sizeof nm, PEFT_PREFIX "%s", t->name);
		rc = qn_st_writer_add(w, nm, QN_ST_F32, 2, t->shape, a->params + t->offset, &e);
	}
	rc = rc || qn_st_writer_write(w, in_dir(miss, "adapter_model.safetensors"), &e) ||
	     config_variant(dir, miss, "r", json_integer(4), 0);
	if (!rc)
		check_refusal("a missing tensor", miss, "missing",
			      PEFT_PREFIX "h.1.mlp.c_proj.lora_B");
	else
		CHECK_NAMED("load: the adapter without a tensor written", 0);
	qn_st_writer_free(w);

	check_refusal("a folder without adapter_config.json", mk("empty"), "adapter_config.json",
		      NULL);

	/* After the refusals, the good adapter still loads. */
	g = tiny(2, 2, 8, 8, 11, 0, 51);
	rc = !g || qn_gpt2_lora_load(g, dir, &e);
	CHECK_NAMED("load: loads after refusals",
		    rc == 0 && !memcmp(g->lora->params, a->params, a->nparams * sizeof(float)));
	qn_gpt2_free(g);
out:
	json_decref(o);
	qn_st_close(st);
	qn_gpt2_free(m);
	qn_gpt2_free(f);
}

/* ---- AdamW ------------------------------------------------------------------------- */

static void test_adamw(void)
{
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 4, 5, 0, 61);
	struct qn_gpt2_train *t = NULL;

	CHECK_NAMED("adamw: model made", m != NULL);
	if (!m)
		return;
	int rc = qn_gpt2_lora_add(m, 2, 4, ALL_TARGETS, 9, &e);
	t = rc ? NULL : qn_gpt2_train_new(m, 1, 1, &e); /* allocates the adapter's grads */
	CHECK_NAMED("adamw: adapter grads allocated", t && m->lora->grads);
	if (!t) {
		qn_gpt2_free(m);
		return;
	}
	struct qn_gpt2_lora *a = m->lora;
	size_t n = a->nparams;
	float *mom = malloc(n * sizeof *mom), *var = malloc(n * sizeof *var);
	double *p = malloc(n * sizeof *p), *mm = malloc(n * sizeof *mm),
	       *vv = malloc(n * sizeof *vv);
	struct qn_adamw o = {
	    .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};

	rng_state = 63;
	random_B(m, 0.2);
	for (size_t j = 0; j < n; j++) {
		a->grads[j] = (float)(0.1 * normal());
		mom[j] = (float)(0.05 * normal());
		var[j] = (float)(0.01 * uniform());
	}
	a->grads[0] = 0; /* eps matters here */
	mom[0] = 0;
	var[0] = 0;
	/* PyTorch's AdamW (single-tensor path) in double, decay on every adapter weight. */
	long step = 3;
	double bc1 = 1 - pow(o.beta1, step), bc2 = 1 - pow(o.beta2, step);
	for (size_t j = 0; j < n; j++) {
		double gj = a->grads[j];
		p[j] = a->params[j] * (1 - o.lr * o.weight_decay);
		mm[j] = o.beta1 * mom[j] + (1 - o.beta1) * gj;
		vv[j] = o.beta2 * var[j] + (1 - o.beta2) * gj * gj;
		p[j] -= (o.lr / bc1) * mm[j] / (sqrt(vv[j]) / sqrt(bc2) + o.eps);
	}
	float *base = copy_floats(m->params, m->nparams);
	double p0 = a->params[0] * (1 - o.lr * o.weight_decay);
	qn_gpt2_lora_adamw(m, mom, var, &o, step);
	double dp = 0, dm = 0, dv = 0;
	for (size_t j = 0; j < n; j++) {
		dp = fmax(dp, fabs(a->params[j] - p[j]) / fmax(1e-3, fabs(p[j])));
		dm = fmax(dm, fabs(mom[j] - mm[j]) / fmax(1e-2, fabs(mm[j])));
		dv = fmax(dv, fabs(var[j] - vv[j]) / fmax(1e-4, fabs(vv[j])));
	}
	CHECK_NAMED("adamw: step 3 = PyTorch's formula (params)", dp <= 1e-5);
	CHECK_NAMED("adamw: step 3 = PyTorch's formula (moments)", dm <= 1e-5 && dv <= 1e-5);
	printf("  (relative diffs: params %.3g, m %.3g, v %.3g)\n", dp, dm, dv);
	CHECK_NAMED("adamw: zero gradient and moments: decay only",
		    fabs(a->params[0] - p0) <= 1e-7 * fmax(1, fabs(p0)));
	CHECK_NAMED("adamw: the base parameters untouched",
		    !memcmp(base, m->params, m->nparams * sizeof *base));
	qn_gpt2_lora_zero_grads(m);
	int zero = 1;
	for (size_t j = 0; j < n; j++)
		zero &= a->grads[j] == 0;
	CHECK_NAMED("adamw: lora_zero_grads", zero);
	free(base);
	free(mom);
	free(var);
	free(p);
	free(mm);
	free(vv);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
}

/* ---- enabled = 0 -------------------------------------------------------------------- */

static void test_disabled(void)
{
	enum { B = 2, T = 6, V = 11 };
	uint32_t in[B * T], tg[B * T];
	float base[B * T * V], base_inf[T * V], ad[B * T * V], off[B * T * V], off_inf[T * V],
	    on[B * T * V];
	struct qn_err e;
	struct qn_gpt2 *m = tiny(2, 2, 8, 8, V, 0, 71);
	float *gbase = NULL, *goff = NULL;

	CHECK_NAMED("disabled: model made", m != NULL);
	if (!m)
		return;
	rng_state = 73;
	random_tokens(in, B * T, V);
	random_tokens(tg, B * T, V);
	gbase = malloc(m->nparams * sizeof *gbase);
	goff = malloc(m->nparams * sizeof *goff);
	int rc = train_logits(m, B, T, in, tg, base) || infer_logits(m, T, in, base_inf);
	struct qn_gpt2_train *t = rc ? NULL : qn_gpt2_train_new(m, B, T, &e);
	if (t) {
		qn_gpt2_zero_grads(m);
		qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
		qn_gpt2_backward(t, 1.0f);
		memcpy(gbase, m->grads, m->nparams * sizeof *gbase);
	}
	qn_gpt2_train_free(t);
	t = NULL;
	rc = rc || qn_gpt2_lora_add(m, 4, 8, ALL_TARGETS, 10, &e);
	CHECK_NAMED("disabled: adapter added", rc == 0);
	if (rc)
		goto out;
	random_B(m, 0.2);
	rc = train_logits(m, B, T, in, tg, ad);
	CHECK_NAMED("disabled: the enabled adapter changes the logits",
		    rc == 0 && max_diff(base, ad, sizeof ad / sizeof *ad) > 1e-3);
	m->lora->enabled = 0;
	rc = train_logits(m, B, T, in, tg, off) || infer_logits(m, T, in, off_inf);
	CHECK_NAMED("disabled: training forward = the base model's, bit for bit",
		    rc == 0 && !memcmp(base, off, sizeof off));
	CHECK_NAMED("disabled: inference = the base model's, bit for bit",
		    rc == 0 && !memcmp(base_inf, off_inf, sizeof off_inf));
	t = qn_gpt2_train_new(m, B, T, &e);
	if (t) {
		qn_gpt2_zero_grads(m);
		qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
		qn_gpt2_backward(t, 1.0f);
		memcpy(goff, m->grads, m->nparams * sizeof *goff);
	}
	int zero = t != NULL;
	for (size_t j = 0; t && j < m->lora->nparams; j++)
		zero &= m->lora->grads[j] == 0;
	CHECK_NAMED("disabled: base gradients = the base model's, bit for bit",
		    t && !memcmp(gbase, goff, m->nparams * sizeof *goff));
	CHECK_NAMED("disabled: the adapter gets no gradient", zero);
	qn_gpt2_train_free(t);
	t = NULL;
	m->lora->enabled = 1;
	rc = train_logits(m, B, T, in, tg, on);
	CHECK_NAMED("disabled: enabled again, the adapter's logits",
		    rc == 0 && !memcmp(ad, on, sizeof on));
out:
	free(gbase);
	free(goff);
	qn_gpt2_free(m);
}

int main(void)
{
	if (make_top("test_lora") < 0)
		return 1;
	test_target();
	test_add();
	test_grads();
	test_lora_dropout();
	test_merge();
	test_save_load();
	test_adamw();
	test_disabled();
	rm_rf(top);
	return CHECK_DONE();
}
