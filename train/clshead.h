/*
 * clshead - GPT-2's sequence-classification head (Hugging Face's
 * GPT2ForSequenceClassification): score.weight, K x n_embd without a
 * bias, over ln_f's output at each sequence's last token. The forward and
 * backward of the head and its loss, its AdamW, and the model directory:
 * config.json with id2label/label2id/pad_token_id and the architecture,
 * model.safetensors with the trunk as "transformer.*" and "score.weight".
 *
 * Ownership: a cls_head owns its arrays and label names
 * (cls_head_release frees them); cls_load returns a model the caller
 * frees with qn_gpt2_free.
 */
#ifndef QN_TRAIN_CLSHEAD_H
#define QN_TRAIN_CLSHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gpt2.h"

struct cls_head {
	size_t k, c;	  /* labels, width */
	float *w;	  /* k x c, row per label */
	float *g;	  /* its gradient */
	float *mom, *var; /* AdamW's moments */
	char **labels;	  /* k names */
	int64_t pad;	  /* pad_token_id; -1: none */
};

/* k labels (names copied) of width c, w drawn N(0, 0.02) from seed. */
int cls_head_init(struct cls_head *h, size_t k, size_t c, const char *const *labels, int64_t pad,
		  uint64_t seed, struct qn_err *e);
void cls_head_release(struct cls_head *h);

/*
 * The head over hidden (B rows of T, width c: ln_f's output) at each row's
 * position len[b] - 1 (len[b] >= 1). probs (B x k, may be NULL) gets the
 * softmax. With gold (label ids, may be NULL): returns the summed
 * cross-entropy, and when dhidden is not NULL fills it (B*T x c; zero but
 * at the pooled positions) with the gradient of that sum divided by denom
 * and adds the head's own to h->g.
 */
double cls_head_forward(struct cls_head *h, const float *hidden, const int *len, const int *gold,
			int B, int T, float *probs, float *dhidden, double denom);
/* The sum of squares of h->g; scales h->g by s. */
double cls_head_grad_sq(const struct cls_head *h);
void cls_head_scale_grads(struct cls_head *h, float s);
void cls_head_zero_grads(struct cls_head *h);
/* PyTorch's AdamW on w (decay included), step from 1. */
void cls_head_adamw(struct cls_head *h, const struct qn_adamw *o, long step);

/* Whether DIR/config.json names GPT2ForSequenceClassification. */
int cls_is_model(const char *dir);
/* DIR/config.json and DIR/model.safetensors, each atomically. */
int cls_save(const struct qn_gpt2 *m, const struct cls_head *h, const char *dir, struct qn_err *e);
/* The trunk (returned) and the head (into h) of a classifier directory. */
struct qn_gpt2 *cls_load(const char *dir, struct cls_head *h, struct qn_err *e);

#endif
