/*
 * gpt2.h - the GPT-2 model: parameters, forward and backward passes, AdamW,
 * generation with a KV cache, and Hugging Face checkpoint I/O. quern-train
 * trains with it; quern-audit scores and samples with it.
 *
 * The architecture is Hugging Face's GPT2LMHeadModel: learned token and
 * position embeddings, pre-LayerNorm blocks (LayerNorm, causal multi-head
 * self-attention, residual; LayerNorm, MLP with the tanh form of GELU,
 * residual), a final LayerNorm, and the output projection tied to the token
 * embedding. Everything is float32. Parameters live in one flat array in
 * Hugging Face's order and layout (Conv1D weights are (in, out), so a layer
 * is y = x W + b), which makes checkpoint I/O a copy and lets optimizers
 * and gradient reductions treat the model as one vector.
 *
 * Every matrix product is an OpenBLAS sgemm (attention per head, on the
 * causal lower triangle only, in row blocks). Work is split across OpenMP
 * threads at this level, with OpenBLAS itself single-threaded, so the split
 * and therefore every bit of the result depend only on the thread count.
 *
 * Activations kept for backward, per layer: the block input, the two
 * LayerNorm outputs with their means and reciprocal deviations, q/k/v, one
 * T x T buffer of attention probabilities a head (the scores before the
 * softmax and every gradient are scratch shared by all layers), the
 * attention output, the mid-block residual and the MLP's pre-activation
 * (GELU is recomputed in backward). The logits buffer is shared and turned
 * into its own gradient in place.
 *
 * Ownership: qn_gpt2_new / qn_gpt2_load return a model the caller frees
 * with qn_gpt2_free; qn_gpt2_train_new / qn_gpt2_infer_new return state
 * bound to one model, freed with their _free before the model.
 */
#ifndef QN_GPT2_H
#define QN_GPT2_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;
struct qn_st;
struct qn_st_writer;

#define QN_GPT2_CONFIG "config.json"
#define QN_GPT2_WEIGHTS "model.safetensors"

struct qn_gpt2_config {
	int n_layer, n_head, n_embd, n_positions, vocab_size;
	int n_inner;	    /* MLP width; 4 * n_embd when 0 */
	float eps;	    /* layer_norm_epsilon */
	int bos_token_id;   /* -1: none */
	int eos_token_id;   /* -1: none */
	char tokenizer[65]; /* the tokenizer's fingerprint; "" when unknown */
	float embd_pdrop, attn_pdrop, resid_pdrop; /* dropout in training (fit) */
};

/* GPT-2 small's shape with the given sizes; the rest defaulted. */
void qn_gpt2_config_default(struct qn_gpt2_config *c);
/* Sizes within limits, heads dividing the width. */
int qn_gpt2_config_check(const struct qn_gpt2_config *c, const char *name, struct qn_err *e);
/* config.json with GPT2Config field names; errors name the file and field. */
int qn_gpt2_config_load(const char *path, struct qn_gpt2_config *c, struct qn_err *e);
int qn_gpt2_config_parse(const char *buf, size_t len, const char *name, struct qn_gpt2_config *c,
			 struct qn_err *e);
int qn_gpt2_config_write(const char *path, const struct qn_gpt2_config *c, struct qn_err *e);

/* One parameter tensor inside the flat array. */
struct qn_gpt2_tensor {
	char name[48];	   /* Hugging Face name, e.g. "h.0.attn.c_attn.weight" */
	int ndim;	   /* 1 or 2 */
	uint64_t shape[2]; /* Hugging Face layout */
	size_t offset, numel;
	int layer; /* block index; -1 for embeddings and ln_f */
	int decay; /* a block's matrix: AdamW weight decay applies */
};

/*
 * LoRA adapters (Hu et al. 2021) as PEFT stores them for GPT-2's Conv1D
 * layers (fan_in_fan_out): for a targeted layer y = x W + b, A is (r, in),
 * B is (out, r), and y += (alpha / r) * x A^T B^T. A starts uniform in
 * +-1/sqrt(in) (PEFT's kaiming_uniform with a = sqrt(5)), B at zero, so a
 * new adapter changes nothing. Tensors are named as PEFT saves them:
 * base_model.model.transformer.h.N.attn.c_attn.lora_A.weight, ...
 */
enum {
	QN_LORA_C_ATTN = 1,    /* attn.c_attn (PEFT's default for GPT-2) */
	QN_LORA_ATTN_PROJ = 2, /* attn.c_proj */
	QN_LORA_MLP_FC = 4,    /* mlp.c_fc */
	QN_LORA_MLP_PROJ = 8,  /* mlp.c_proj */
};

struct qn_gpt2_lora {
	int r;
	float alpha, scaling; /* scaling = alpha / r */
	float dropout;	      /* on the adapters' input in training (PEFT's lora_dropout) */
	unsigned targets;     /* QN_LORA_* */
	float *params, *grads;
	size_t nparams;
	struct qn_gpt2_tensor *tensors; /* A and B of each targeted layer, in order */
	size_t ntensors;
	int enabled; /* 0: the base model alone (DPO's reference) */
};

struct qn_gpt2 {
	struct qn_gpt2_config cfg;
	struct qn_gpt2_lora *lora; /* NULL: none */
	float *params; /* nparams floats */
	float *grads;  /* nparams floats, allocated by qn_gpt2_train_new */
	size_t nparams;
	struct qn_gpt2_tensor *tensors; /* Hugging Face order */
	size_t ntensors;
	unsigned char *frozen; /* per tensor; NULL: none (qn_gpt2_freeze) */
	int threads;
};

/* A model of this shape with every parameter zero. */
struct qn_gpt2 *qn_gpt2_new(const struct qn_gpt2_config *c, struct qn_err *e);
void qn_gpt2_free(struct qn_gpt2 *m);
/* GPT-2's initialisation, reproducible from seed. */
void qn_gpt2_init_weights(struct qn_gpt2 *m, uint64_t seed);
/* Threads for every later call (at least 1; 0 = one per CPU). */
void qn_gpt2_set_threads(struct qn_gpt2 *m, int threads);
const struct qn_gpt2_tensor *qn_gpt2_find(const struct qn_gpt2 *m, const char *name);

/*
 * Weights from a safetensors file in Hugging Face GPT-2 naming: names with
 * or without the "transformer." prefix, the attention mask buffers
 * (h.N.attn.bias, h.N.attn.masked_bias) and a classifier's head
 * (score.weight) ignored, lm_head.weight accepted
 * when its shape is the embedding's (tied). Every parameter must be there
 * with its exact shape; F32, F16, BF16 and F64 are read.
 */
int qn_gpt2_load_weights(struct qn_gpt2 *m, const struct qn_st *st, struct qn_err *e);
/* DIR/config.json and DIR/model.safetensors. */
struct qn_gpt2 *qn_gpt2_load(const char *dir, struct qn_err *e);
/*
 * Writes DIR/config.json and DIR/model.safetensors (names without prefix,
 * as openai-community/gpt2 ships them), each atomically.
 */
int qn_gpt2_save(const struct qn_gpt2 *m, const char *dir, struct qn_err *e);
/*
 * Adds every tensor of values (nparams floats in the model's layout: the
 * parameters, their gradients, optimizer moments) to w as prefix + name.
 * The names are kept by the model; values must outlive the write.
 */
int qn_gpt2_st_add(const struct qn_gpt2 *m, struct qn_st_writer *w, const char *prefix,
		   const float *values, struct qn_err *e);

/* ---- LoRA ---- */

struct qn_adamw;

/* "c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", or PEFT's suffixes "c_proj" (both) and "c_fc"; 0 if unknown. */
unsigned qn_gpt2_lora_target(const char *name);
/*
 * Adds adapters of rank r to every block's targeted layers, A drawn from
 * seed. Before qn_gpt2_train_new and qn_gpt2_infer_new (a forward over
 * state made earlier returns NaN, an inference step an error). -1 with e
 * filled on bad values or when the model already has one.
 */
int qn_gpt2_lora_add(struct qn_gpt2 *m, int r, float alpha, unsigned targets, uint64_t seed,
		     struct qn_err *e);
/* DIR/adapter_config.json and DIR/adapter_model.safetensors, as PEFT writes them. */
int qn_gpt2_lora_save(const struct qn_gpt2 *m, const char *dir, const char *base_name,
		      struct qn_err *e);
/*
 * Checks an adapter_config.json image (name for errors) and returns its
 * rank, alpha, targets and lora_dropout (dropout may be NULL): the checks
 * qn_gpt2_lora_load applies.
 */
int qn_gpt2_lora_parse_config(const char *buf, size_t len, const char *name, int *rank,
			      float *alpha, unsigned *targets, float *dropout, struct qn_err *e);
/*
 * Reads an adapter saved by PEFT or quern-train into m (which has none
 * yet), before qn_gpt2_train_new / qn_gpt2_infer_new. PEFT options quern
 * does not compute (use_rslora, use_dora, rank or alpha patterns, bias
 * other than "none", modules_to_save, layers_to_transform) are refused.
 */
int qn_gpt2_lora_load(struct qn_gpt2 *m, const char *dir, struct qn_err *e);
/* Folds the adapter into the base weights (W += scaling (B A)^T) and drops it. */
void qn_gpt2_lora_merge(struct qn_gpt2 *m);
/* AdamW over the adapter's tensors (mom, var: its nparams floats each). */
void qn_gpt2_lora_adamw(struct qn_gpt2 *m, float *mom, float *var, const struct qn_adamw *o,
			long step);
void qn_gpt2_lora_zero_grads(struct qn_gpt2 *m);

/* ---- training ---- */

struct qn_gpt2_train;

/* Activations for batches of up to B rows of T tokens; allocates m->grads. */
struct qn_gpt2_train *qn_gpt2_train_new(struct qn_gpt2 *m, int B, int T, struct qn_err *e);
void qn_gpt2_train_free(struct qn_gpt2_train *t);

/*
 * Forward pass over inputs[B*T] predicting targets[B*T]. mask (NULL: every
 * position) selects the positions that count; the loss is the sum of their
 * cross-entropies divided by denom (0: by their number). Returns that loss;
 * *counted (may be NULL) gets the number of positions counted. logits, when
 * not NULL, receives the B*T*V logits. Token ids must be below vocab_size
 * and T at most n_positions (the caller checks).
 */
double qn_gpt2_forward(struct qn_gpt2_train *t, const uint32_t *inputs, const uint32_t *targets,
		       const uint8_t *mask, double denom, int B, int T, size_t *counted,
		       float *logits);
/*
 * Dropout as GPT-2 places it (embd_pdrop after the embeddings, attn_pdrop
 * on the attention probabilities, resid_pdrop on each projection before
 * its residual add) for the forward passes that follow, until changed; 0
 * turns a kind off, and all three start off. The masks are a hash of key
 * and the element, so backward redraws them and nothing is stored: give
 * each training micro-batch its own key (from the seed and a counter) and
 * runs reproduce, resumes included.
 */
void qn_gpt2_dropout(struct qn_gpt2_train *t, float embd, float attn, float resid, uint64_t key);
/* (Key 0 also turns off the adapters' lora->dropout: evaluation passes use it.) */
/*
 * After a forward: each position's counted loss (its cross-entropy times
 * its share, 0 where not counted), N doubles; valid until the next forward.
 * Per-row sums of them with denom 1 are the rows' negative log-likelihoods
 * (what DPO compares).
 */
const double *qn_gpt2_position_losses(const struct qn_gpt2_train *t);
/*
 * Multiplies the gradient the last forward prepared for row b (of B) by
 * row_scale[b], before qn_gpt2_backward: per-row loss weights that depend
 * on every row's forward (DPO's).
 */
void qn_gpt2_scale_rows(struct qn_gpt2_train *t, const float *row_scale);
/* Backward of the last forward; adds the gradient (times scale) to m->grads. */
void qn_gpt2_backward(struct qn_gpt2_train *t, float scale);
void qn_gpt2_zero_grads(struct qn_gpt2 *m);
/*
 * The trunk without the language-model head, for heads of one's own (a
 * classifier's): a forward over inputs[B*T] that returns ln_f's output,
 * B*T rows of n_embd (valid until the next forward; NULL when an adapter
 * came after qn_gpt2_train_new), and the backward of that forward from
 * dhidden, the gradient at those rows (added to m->grads as
 * qn_gpt2_backward does). The logits buffer is never touched.
 */
const float *qn_gpt2_forward_hidden(struct qn_gpt2_train *t, const uint32_t *inputs, int B,
				    int T);
void qn_gpt2_backward_hidden(struct qn_gpt2_train *t, const float *dhidden);
/*
 * Freezing: a frozen tensor gets no gradient (its part of m->grads is never
 * written, so its pages are never touched), AdamW skips it, and backward
 * stops below the lowest block that has a trainable tensor when the
 * embeddings (wte, tied to the output projection, and wpe) are frozen.
 * -1 when i is out of range or memory ran out.
 */
int qn_gpt2_freeze(struct qn_gpt2 *m, size_t i, int frozen);
int qn_gpt2_is_frozen(const struct qn_gpt2 *m, size_t i);
/* The L2 norm of all of m->grads. */
double qn_gpt2_grad_norm(const struct qn_gpt2 *m);
/*
 * torch.nn.utils.clip_grad_norm_: scales the gradients by
 * max_norm / (norm + 1e-6) when that is below 1. Returns the norm before.
 */
double qn_gpt2_clip_grads(struct qn_gpt2 *m, double max_norm);

struct qn_adamw {
	double lr, beta1, beta2, eps, weight_decay;
};
/*
 * One AdamW step (PyTorch's formula, decoupled weight decay on the blocks'
 * matrices only); step counts from 1. mom and var hold nparams floats each.
 */
void qn_gpt2_adamw(struct qn_gpt2 *m, float *mom, float *var, const struct qn_adamw *o, long step);

/* ---- inference with a KV cache ---- */

struct qn_gpt2_infer;

struct qn_gpt2_infer *qn_gpt2_infer_new(struct qn_gpt2 *m, struct qn_err *e);
void qn_gpt2_infer_free(struct qn_gpt2_infer *g);
/* Forgets the cached positions. */
void qn_gpt2_infer_reset(struct qn_gpt2_infer *g);
/* Positions cached so far. */
int qn_gpt2_infer_pos(const struct qn_gpt2_infer *g);
/*
 * Forgets the positions from pos on (0 <= pos <= qn_gpt2_infer_pos), so the
 * next step continues at pos: the cache is causal, so what remains is what
 * a fresh pass over the first pos tokens would hold. Scoring many
 * continuations of one shared prefix computes the prefix once. -1 with e
 * filled when pos is out of range.
 */
int qn_gpt2_infer_rewind(struct qn_gpt2_infer *g, int pos, struct qn_err *e);
/*
 * Appends n tokens (pos + n <= n_positions) and computes logits: for the
 * last token only (all == 0; logits holds V floats) or for each of the n
 * (logits holds n * V floats).
 */
int qn_gpt2_infer_step(struct qn_gpt2_infer *g, const uint32_t *tokens, int n, float *logits,
		       int all, struct qn_err *e);
/*
 * The same step without the language-model head: hidden receives the
 * final LayerNorm's output for each of the n tokens (n * n_embd floats).
 * A token's logits are its row times the token embedding (wte) transposed,
 * so a caller that needs log-likelihoods at a few positions of many
 * sequences can batch that product over all of them at once.
 */
int qn_gpt2_infer_hidden(struct qn_gpt2_infer *g, const uint32_t *tokens, int n, float *hidden,
			 struct qn_err *e);

/* ---- sampling ---- */

/*
 * The next token from a row of V logits: the most likely one (first on
 * ties) when temperature is 0, else a draw from softmax(logits /
 * temperature) restricted to the top_k most likely (0: all) and then to
 * the fewest most likely whose probabilities reach top_p (1: all). The
 * draw takes one step of the caller's splitmix64 state *rng, so a
 * generation is reproducible from its seed.
 */
struct qn_gpt2_sampler;
struct qn_gpt2_sampler *qn_gpt2_sampler_new(int V, double temperature, long top_k, double top_p);
void qn_gpt2_sampler_free(struct qn_gpt2_sampler *sm);
uint32_t qn_gpt2_sampler_pick(struct qn_gpt2_sampler *sm, const float *logits, uint64_t *rng);

/* Why qn_gpt2_generate stopped. */
enum { QN_GEN_LENGTH, QN_GEN_EOS, QN_GEN_STOP };
/* A caller's stop test over the tokens generated so far: non-zero stops. */
typedef int (*qn_gpt2_stop_fn)(void *arg, const uint32_t *out, size_t n);
/*
 * A completion: resets g, runs prompt[0..n) (1 <= n < n_positions: the
 * caller cuts it), then draws up to max tokens with sm (from *rng) into
 * out. It stops before the end-of-text token eos (when eos >= 0; not
 * stored: QN_GEN_EOS), after a token for which stop (may be NULL) returns
 * non-zero (QN_GEN_STOP), when the context is full or after max tokens
 * (QN_GEN_LENGTH); *reason says which. logits is V floats of scratch.
 * Returns the tokens stored, or -1 with e filled. quern-train sample,
 * quern-audit eval's generate_until and quern-audit probe share it.
 */
long qn_gpt2_generate(struct qn_gpt2_infer *g, struct qn_gpt2_sampler *sm, const uint32_t *prompt,
		      size_t n, long max, int64_t eos, uint64_t *rng, float *logits, uint32_t *out,
		      qn_gpt2_stop_fn stop, void *arg, int *reason, struct qn_err *e);

/* Parameter count with the tied embedding once. */
static inline size_t qn_gpt2_nparams(const struct qn_gpt2 *m)
{
	return m->nparams;
}

#endif
