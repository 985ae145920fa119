/*
 * linclass - a fastText-style linear text classifier: hashed word,
 * word n-gram and character n-gram features, a hidden vector that is the
 * mean of their embedding rows, and a softmax over K labels on top,
 * trained by SGD with a linearly decaying learning rate (Joulin et al.,
 * "Bag of Tricks for Efficient Text Classification", 2016).
 *
 * Features. Text is split into tokens: runs of bytes that are neither
 * ASCII whitespace nor ASCII punctuation, and runs of ASCII punctuation
 * (each run one token); bytes >= 0x80 are word bytes, so UTF-8 words stay
 * whole. With lowercase, ASCII letters are folded. Each token's 64-bit
 * FNV-1a hash gives a unigram feature; word n-grams (n = 2..word_ngrams)
 * combine consecutive token hashes as fastText does (h = h * 116049371 +
 * next); character n-grams (minn..maxn code points, 0 = none) are taken
 * from "<token>" as fastText takes them. Every hash is scrambled with
 * splitmix64 and a per-kind salt and reduced to a bucket in [0, buckets)
 * by multiply-shift. There is no vocabulary: everything is a bucket.
 *
 * Rows. Only the buckets seen in training get an embedding row: the model
 * keeps rows x dim floats, the bucket of each row, and a hash table
 * from bucket to row (8 bytes a slot, at most half full). A bucket with no row contributes a zero
 * vector (it still counts in the mean), which is exactly what an untouched
 * row is, because input rows start at zero (the output matrix starts
 * random; fastText does the reverse, which would make untouched rows
 * random). So the model file holds the touched rows only, and a
 * 2,000,000-bucket model costs what its vocabulary costs.
 *
 * Files. A model directory holds config.json (model_type "quern-linear",
 * Hugging Face's id2label / label2id, the feature settings) and
 * model.safetensors: "embeddings.bucket_ids" U32 [rows],
 * "embeddings.weight" F32 [rows, dim], "classifier.weight" F32 [K, dim].
 * The loader checks every field and size; qn_lc_load_mem parses images
 * (the fuzz target).
 *
 * Threads. A loaded model is read-only: qn_lc_predict may run on many
 * threads at once, each with its own struct qn_lc_scratch. Training
 * (qn_lc_train) is Hogwild! over T threads: one thread is bit-for-bit
 * reproducible for a seed, more are not.
 *
 * Ownership: qn_lc_model_new / qn_lc_load return a model freed with
 * qn_lc_model_free; scratch and feature buffers are caller-owned
 * (_init / _release). Nothing here prints or exits.
 */
#ifndef QN_LINCLASS_H
#define QN_LINCLASS_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define QN_LC_MODEL_TYPE "quern-linear"
#define QN_LC_ARCH "QuernLinearClassifier"
#define QN_LC_HASH "fnv1a64+splitmix64"
#define QN_LC_CONFIG "config.json"
#define QN_LC_WEIGHTS "model.safetensors"
#define QN_LC_MAX_LABELS 100000
#define QN_LC_MAX_LABEL_BYTES 1024
#define QN_LC_MAX_DIM 4096
#define QN_LC_MAX_BUCKETS (1u << 30)
#define QN_LC_MAX_WORD_NGRAMS 8
#define QN_LC_MAX_CHAR_NGRAM 16
#define QN_LC_MAX_CONFIG_BYTES (64u << 20)
/* Tokens longer than this get no character n-grams. */
#define QN_LC_CHAR_NGRAM_TOKEN_MAX 256
#define QN_LC_NO_ROW UINT32_MAX

struct qn_lc_params {
	int dim;	  /* embedding width (default 64) */
	int word_ngrams;  /* 1 = unigrams only (default 2) */
	int minn, maxn;	  /* character n-gram lengths; maxn 0 = none (default 0, 0) */
	uint32_t buckets; /* hash buckets (default 2,000,000) */
	int lowercase;	  /* fold ASCII letters (default 1) */
};

void qn_lc_params_default(struct qn_lc_params *p);
/* -1 with e filled when a value is out of range. */
int qn_lc_params_check(const struct qn_lc_params *p, struct qn_err *e);

/* ---- features ---- */

struct qn_lc_feats {
	uint32_t *id; /* feature buckets (or rows, after qn_lc_model_map) */
	size_t n, cap;
	uint64_t *tok; /* scratch: token hashes */
	size_t ntok, tokcap;
};

void qn_lc_feats_init(struct qn_lc_feats *f);
void qn_lc_feats_release(struct qn_lc_feats *f);
/*
 * Replaces f's features with text's buckets; returns the token count (what
 * "words" means in words/s), or -1 when memory ran out or the document has
 * over 2^31 features.
 */
long qn_lc_features(const struct qn_lc_params *p, const char *text, size_t len,
		    struct qn_lc_feats *f);

/* ---- the model ---- */

struct qn_lc_model {
	struct qn_lc_params p;
	size_t k;      /* labels */
	char **labels; /* k names, ids in order */
	size_t rows;   /* embedding rows (buckets seen in training) */
	size_t rows_cap;
	uint32_t *row_bucket; /* rows: the bucket of each row */
	uint64_t *table;      /* bucket -> row: open addressing, bucket << 32 | row */
	size_t tmask;	      /* table size - 1 (a power of two) */
	float *in;	      /* rows x dim */
	float *out;	      /* k x dim */
};

/* A model with no rows yet; labels are copied. NULL with e filled. */
struct qn_lc_model *qn_lc_model_new(const struct qn_lc_params *p, const char *const *labels,
				    size_t k, struct qn_err *e);
void qn_lc_model_free(struct qn_lc_model *m);
/*
 * Rewrites buckets ids[0..n) as rows; with add, unseen buckets get new rows
 * (before qn_lc_model_init_weights), else they become QN_LC_NO_ROW. -1
 * when memory ran out.
 */
int qn_lc_model_map(struct qn_lc_model *m, uint32_t *ids, size_t n, int add);
/* Allocates the weights: input rows 0, output uniform in +-1/dim from seed. */
int qn_lc_model_init_weights(struct qn_lc_model *m, uint64_t seed, struct qn_err *e);
/* The id of a label name, or -1. */
long qn_lc_label_id(const struct qn_lc_model *m, const char *name);

/*
 * probs[0..k) = softmax(out . mean(in[rows])) for mapped rows; hidden is
 * dim floats of scratch. Returns the arg max (lowest id on ties).
 */
size_t qn_lc_forward(const struct qn_lc_model *m, const uint32_t *rows, size_t n, float *hidden,
		     float *probs);

struct qn_lc_scratch {
	struct qn_lc_feats f;
	float *hidden; /* dim */
	float *probs;  /* k */
};

int qn_lc_scratch_init(struct qn_lc_scratch *s, const struct qn_lc_model *m);
void qn_lc_scratch_release(struct qn_lc_scratch *s);
/*
 * Classifies text: s->probs gets the k probabilities; returns the arg max,
 * or -1 when memory ran out.
 */
long qn_lc_predict(const struct qn_lc_model *m, const char *text, size_t len,
		   struct qn_lc_scratch *s);

/* ---- training ---- */

/* Examples as mapped feature rows, one contiguous run each. */
struct qn_lc_data {
	uint32_t *feat;	 /* every example's rows, back to back */
	uint64_t *off;	 /* n + 1 offsets into feat */
	uint32_t *label; /* n label ids */
	uint32_t *words; /* n token counts */
	size_t n;
	uint64_t total_words;
};

struct qn_lc_epoch {
	int epoch;	/* 1-based */
	double loss;	/* mean cross-entropy over the epoch's examples */
	double lr;	/* at the epoch's end */
	uint64_t words; /* tokens processed */
	double seconds; /* wall time of the epoch */
	double words_per_sec_thread;
};

struct qn_lc_train_opts {
	double lr;     /* starting rate, decays linearly to 0 (default 0.5) */
	int epochs;    /* default 5 */
	int threads;   /* default 1 */
	uint64_t seed; /* example order */
	/* Called after each epoch on the calling thread; non-zero stops. */
	int (*on_epoch)(void *ctx, const struct qn_lc_epoch *ep);
	void *ctx;
};

/*
 * Trains m (weights initialised) on d. -1 with e filled when memory ran
 * out or a thread could not start, 1 when on_epoch asked to stop.
 */
int qn_lc_train(struct qn_lc_model *m, const struct qn_lc_data *d, const struct qn_lc_train_opts *o,
		struct qn_err *e);
/*
 * One SGD step on one example (what qn_lc_train does per example); hidden
 * and grad are dim floats, probs k. Returns -ln p(gold) before the step.
 */
double qn_lc_step(struct qn_lc_model *m, const uint32_t *rows, size_t n, size_t gold, float lr,
		  float *hidden, float *grad, float *probs);

/* ---- files ---- */

/* Writes DIR/config.json and DIR/model.safetensors atomically. */
int qn_lc_save(const struct qn_lc_model *m, const char *dir, struct qn_err *e);
/* config.json text, malloc'd (the caller frees); NULL when out of memory. */
char *qn_lc_config_json(const struct qn_lc_model *m);
struct qn_lc_model *qn_lc_load(const char *dir, struct qn_err *e);
/* The same over images of the two files; name for messages. */
struct qn_lc_model *qn_lc_load_mem(const char *config, size_t config_len, const void *st,
				   size_t st_len, const char *name, struct qn_err *e);
/* 1 when DIR/config.json names model_type quern-linear, else 0. */
int qn_lc_is_model_dir(const char *dir);

#endif
