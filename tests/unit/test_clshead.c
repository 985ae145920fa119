/*
 * test_clshead - the GPT-2 classification head (train/clshead.c) on a tiny
 * model: its loss is the cross-entropy of the softmax at each row's last
 * token; the gradients of the head and of the trunk below it (through
 * qn_gpt2_backward_hidden) match finite differences; what follows a row's
 * last token never changes its prediction; save and load round-trip the
 * model bit for bit, with Hugging Face's names.
 */
#include "clshead.h"
#include "safetensors.h"
#include "testfs.h"
#include "testgpt2.h"

enum { L = 2, H = 2, C = 16, P = 8, V = 23, K = 3, B = 3, T = 8 };

static const int len[B] = {5, 3, 8};
static const int gold[B] = {2, 0, 1};
static uint32_t in[B * T];

/* The summed loss of the batch over the current parameters, the head's as well. */
static double loss_of(struct qn_gpt2_train *t, struct cls_head *h)
{
	const float *hid = qn_gpt2_forward_hidden(t, in, B, T);
	return hid ? cls_head_forward(h, hid, len, gold, B, T, NULL, NULL, 1) : NAN;
}

/* Richardson-extrapolated central difference of loss_of in *p. */
static double diff_at(struct qn_gpt2_train *t, struct cls_head *h, float *p)
{
	double r[2];
	for (int i = 0; i < 2; i++) {
		double eps = i ? 4e-2 : 2e-2;
		float save = *p, hi = save + (float)eps, lo = save - (float)eps;
		*p = hi;
		double lp = loss_of(t, h);
		*p = lo;
		double lm = loss_of(t, h);
		*p = save;
		r[i] = (lp - lm) / ((double)hi - lo);
	}
	return (4 * r[0] - r[1]) / 3;
}

int main(void)
{
	struct qn_err e;
	struct cls_head h;
	const char *names[K] = {"neg", "neu", "pos"};
	struct qn_gpt2 *m = tiny(L, H, C, P, V, 0, 42);
	CHECK_NAMED("tiny model", m != NULL);
	if (!m)
		return 1;
	CHECK_NAMED("head of 1 label refused", cls_head_init(&h, 1, C, names, -1, 1, &e) == -1);
	CHECK_NAMED("head", cls_head_init(&h, K, C, names, 22, 7, &e) == 0);
	for (size_t i = 0; i < (size_t)K * C; i++)
		h.w[i] *= 20; /* well above rounding, as tiny() does for the trunk */
	random_tokens(in, B * T, V);
	struct qn_gpt2_train *t = qn_gpt2_train_new(m, B, T, &e);
	CHECK_NAMED("training state", t != NULL);
	if (!t)
		return 1;

	/* The loss against a softmax worked out in double from the pooled rows. */
	const float *hid = qn_gpt2_forward_hidden(t, in, B, T);
	float probs[B * K], dh[B * T * C];
	double got = cls_head_forward(&h, hid, len, gold, B, T, probs, NULL, 1), want = 0;
	for (int b = 0; b < B; b++) {
		const float *x = hid + ((size_t)b * T + len[b] - 1) * C;
		double z[K], mx = -INFINITY, s = 0;
		for (int j = 0; j < K; j++) {
			z[j] = 0;
			for (int i = 0; i < C; i++)
				z[j] += (double)h.w[j * C + i] * x[i];
			mx = fmax(mx, z[j]);
		}
		for (int j = 0; j < K; j++)
			s += exp(z[j] - mx);
		want += mx + log(s) - z[gold[b]];
	}
	CHECK_NAMED("loss: the cross-entropy at each row's last token",
		    fabs(got - want) < 1e-5 * fmax(1, want));
	double psum = 0;
	for (int j = 0; j < K; j++)
		psum += probs[j];
	CHECK_NAMED("probabilities sum to 1", fabs(psum - 1) < 1e-6);

	/* Gradients: backward, then finite differences of the same summed loss. */
	qn_gpt2_zero_grads(m);
	cls_head_zero_grads(&h);
	hid = qn_gpt2_forward_hidden(t, in, B, T);
	cls_head_forward(&h, hid, len, gold, B, T, NULL, dh, 1);
	qn_gpt2_backward_hidden(t, dh);
	double worst = 0;
	for (int s = 0; s < 12; s++) {
		size_t j = below(K * C);
		double fd = diff_at(t, &h, h.w + j);
		worst = fmax(worst, fabs(h.g[j] - fd) / fmax(fabs(fd), 1e-3));
	}
	CHECK_NAMED("head gradient matches finite differences", worst <= 1e-2);
	if (worst > 1e-2)
		printf("  worst relative error %g\n", worst);
	for (size_t k = 0; k < m->ntensors; k++) {
		const struct qn_gpt2_tensor *ten = m->tensors + k;
		double w = 0; /* relative, or absolute below 1e-2: the key bias has no gradient */
		for (int s = 0; s < 3; s++) {
			size_t j = ten->offset + below((uint32_t)ten->numel);
			double fd = diff_at(t, &h, m->params + j);
			w = fmax(w, fabs(m->grads[j] - fd) / fmax(fabs(fd), 1e-2));
		}
		char label[128];
		snprintf(label, sizeof label, "trunk gradient through the head: %s", ten->name);
		CHECK_NAMED(label, w <= 1e-2);
		if (w > 1e-2)
			printf("  worst relative error %g\n", w);
	}

	/* Causal: changing the tokens after a row's last one changes nothing. */
	float before[B * K], after[B * K];
	hid = qn_gpt2_forward_hidden(t, in, B, T);
	cls_head_forward(&h, hid, len, NULL, B, T, before, NULL, 1);
	for (int b = 0; b < B; b++)
		for (int j = len[b]; j < T; j++)
			in[b * T + j] = (in[b * T + j] + 5) % V;
	hid = qn_gpt2_forward_hidden(t, in, B, T);
	cls_head_forward(&h, hid, len, NULL, B, T, after, NULL, 1);
	CHECK_NAMED("padding after the last token changes no prediction",
		    !memcmp(before, after, sizeof before));

	/* Save and load: the same predictions, bit for bit. */
	if (make_top("test_clshead"))
		return 1;
	CHECK_NAMED("cls_save", cls_save(m, &h, top, &e) == 0);
	CHECK_NAMED("cls_is_model", cls_is_model(top) == 1);
	struct cls_head h2;
	struct qn_gpt2 *m2 = cls_load(top, &h2, &e);
	CHECK_NAMED("cls_load", m2 != NULL);
	if (m2) {
		CHECK_NAMED("loaded: labels and pad",
			    h2.k == K && !strcmp(h2.labels[2], "pos") && h2.pad == 22);
		CHECK_NAMED("loaded: head weights bit-identical",
			    !memcmp(h2.w, h.w, sizeof(float) * K * C));
		CHECK_NAMED("loaded: trunk bit-identical",
			    !memcmp(m2->params, m->params, m->nparams * sizeof(float)));
		struct qn_st *st = qn_st_open(in_top("model.safetensors"), &e);
		CHECK_NAMED("tensor names: transformer.h.0.attn.c_attn.weight and score.weight",
			    st && qn_st_find(st, "transformer.h.0.attn.c_attn.weight") &&
				qn_st_find(st, "score.weight"));
		qn_st_close(st);
	}
	/* A language model is not a classifier. */
	CHECK_NAMED("qn_gpt2_save", qn_gpt2_save(m, top, &e) == 0);
	CHECK_NAMED("a language model is not a classifier", !cls_is_model(top));
	struct cls_head h3;
	CHECK_NAMED("cls_load of a language model fails", cls_load(top, &h3, &e) == NULL);
	rm_rf(top);
	qn_gpt2_free(m2);
	cls_head_release(&h2);
	cls_head_release(&h);
	cls_head_release(NULL);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
	return CHECK_DONE();
}
