/*
 * evaltask.h - lm-evaluation-harness task files for quern-audit eval: the
 * YAML subset (docs/eval.md lists every field), the `{{ field }}` templates
 * of doc_to_text / doc_to_target / doc_to_choice / description, the local
 * JSONL datasets, and the prompts with their few-shot examples, drawn as
 * lm-eval draws them (Python's random.Random(seed).sample, one generator
 * for the task, documents in order), so the same seed gives the same
 * prompts as lm-eval.
 *
 * Errors name their place: "task.yaml:4:12: 'num_fewshot' must be ..." for
 * the task file, "data/test.jsonl:17: doc_to_text (task.yaml:5:14): no
 * field 'question'" for a document.
 *
 * Ownership: qn_ev_task_load / qn_ev_task_parse fill a caller-owned struct
 * that qn_ev_task_release frees (also after a failure); instances from
 * qn_ev_task_build are freed with qn_ev_insts_free. A task is read-only
 * after loading.
 */
#ifndef QN_EVALTASK_H
#define QN_EVALTASK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "evalmetrics.h"
#include "ytree.h"

struct qn_buf;
struct qn_err;

#define QN_EV_MAX_CHOICES 4096	   /* choices of one document */
#define QN_EV_MAX_TEXT (64u << 20) /* bytes of one rendered prompt */
#define QN_EV_MAX_INCLUDE 8	   /* nested include: files */

enum qn_ev_output {
	QN_EV_LOGLIKELIHOOD,
	QN_EV_MULTIPLE_CHOICE,
	QN_EV_GENERATE_UNTIL,
	QN_EV_LOGLIKELIHOOD_ROLLING,
};
extern const char *const qn_ev_output_names[]; /* by enum qn_ev_output, NULL-terminated */

enum qn_ev_metric_id {
	QN_EVM_ACC,
	QN_EVM_ACC_NORM,
	QN_EVM_ACC_MUTUAL_INFO,
	QN_EVM_EXACT_MATCH,
	QN_EVM_F1,
	QN_EVM_PERPLEXITY,
	QN_EVM_WORD_PERPLEXITY,
	QN_EVM_BYTE_PERPLEXITY,
	QN_EVM_BITS_PER_BYTE,
};

struct qn_ev_metric {
	enum qn_ev_metric_id id;
	const char *name;     /* "acc" */
	enum qn_ev_agg agg;   /* how documents combine */
	const char *agg_name; /* lm-eval's name for it: "mean", "perplexity", ... */
	int higher_is_better;
	struct qn_ev_em em; /* exact_match's options */
	const char **regex_src;
};

/* A compiled template (opaque). */
struct qn_ev_tmpl;

/* One split's documents, in file order. */
struct qn_ev_split {
	char *path;
	json_t **docs;
	size_t *lines; /* the line of each document */
	size_t n;
};

struct qn_ev_task {
	struct qn_yval roots[QN_EV_MAX_INCLUDE]; /* the file and what it includes */
	char *paths[QN_EV_MAX_INCLUDE];
	size_t nroots;
	struct qn_yval merged; /* shallow: entries point into roots */
	char *name, *alias, *dir;
	enum qn_ev_output output;
	struct qn_ev_tmpl *text, *target, *choice, *description;
	const struct qn_yval *target_v, *choice_v; /* the YAML values (literal forms) */
	char *target_delimiter, *fewshot_delimiter;
	long num_fewshot; /* from the file; -1: not given */
	int first_n;	  /* fewshot_config.sampler: first_n */
	/* data */
	char *data_eval, *data_fewshot; /* resolved paths */
	char *eval_split, *fewshot_split;
	int draw_extra; /* lm-eval draws k + 1 shots and drops the evaluated document */
	struct qn_ev_split eval, fewshot;
	/* generate_until */
	char **until;
	size_t nuntil;
	long max_gen_toks, top_k;
	double temperature, top_p;
	int do_sample;
	struct qn_ev_metric *metrics;
	size_t nmetrics;
	int need_uncond; /* acc_mutual_info: choices also scored without context */
	json_t *version; /* metadata.version, or null */
	json_t *config;	 /* the resolved config, for the results' "configs" */
};

/*
 * Reads and checks a task file (following include:), compiles its
 * templates. The data is not read yet.
 */
int qn_ev_task_load(const char *path, struct qn_ev_task *t, struct qn_err *e);
/* The same from memory; dir resolves relative paths (includes refused when NULL). */
int qn_ev_task_parse(const char *text, size_t len, const char *name, const char *dir,
		     struct qn_ev_task *t, struct qn_err *e);
void qn_ev_task_release(struct qn_ev_task *t);
/* Reads the evaluation split, and the few-shot split when k > 0. */
int qn_ev_task_load_data(struct qn_ev_task *t, long k, struct qn_err *e);

/* One evaluated document, ready to score. */
struct qn_ev_inst {
	size_t doc_id; /* in the evaluation split */
	char *prompt;  /* the context: description, shots, doc_to_text */
	size_t prompt_len;
	char **conts; /* continuations: multiple_choice: delimiter + choice; loglikelihood
			 and loglikelihood_rolling: the target */
	size_t *cont_lens, ncont;
	double *choice_chars; /* multiple_choice: characters of each choice */
	long gold;	      /* multiple_choice: the right choice; -1: none matched */
	json_t *target;	      /* doc_to_target as lm-eval logs it (int or string) */
	char *gold_text;      /* generate_until: the reference */
	size_t gold_len;
	size_t *shots; /* few-shot documents (indices in the few-shot split) */
	size_t nshots;
};

/*
 * The instances of the first limit documents (limit < 0: all), with k
 * shots each drawn from seed. *out is a calloc'd array of *n.
 */
int qn_ev_task_build(const struct qn_ev_task *t, long k, uint64_t seed, long limit,
		     struct qn_ev_inst **out, size_t *n, struct qn_err *e);
void qn_ev_insts_free(struct qn_ev_inst *v, size_t n);

/* ---- pieces, for tests and the fuzz target ---- */

/* Compiles a template; where names it in messages. NULL with e filled. */
struct qn_ev_tmpl *qn_ev_tmpl_compile(const char *s, size_t n, const char *where, struct qn_err *e);
void qn_ev_tmpl_free(struct qn_ev_tmpl *t);
/* Appends the template rendered against doc to out; -1 with e ("no field 'x'"). */
int qn_ev_tmpl_render(const struct qn_ev_tmpl *t, json_t *doc, struct qn_buf *out,
		      struct qn_err *e);
/* The value of a template that is one {{ expression }} (new reference); NULL otherwise or on error.
 */
json_t *qn_ev_tmpl_value(const struct qn_ev_tmpl *t, json_t *doc, int *is_single, struct qn_err *e);
/* Python's str() of a JSON value (strings as is, True/None, lists as repr). */
int qn_ev_pystr(json_t *v, struct qn_buf *out);

/* Python's random.Random(seed): MT19937 seeded by init_by_array. */
struct qn_ev_pyrandom {
	uint32_t mt[624];
	int mti;
};
void qn_ev_pyrandom_seed(struct qn_ev_pyrandom *r, uint64_t seed);
uint32_t qn_ev_pyrandom_u32(struct qn_ev_pyrandom *r);
/* random.sample(range(n), k) into out; -1 when k > n or out of memory. */
int qn_ev_pyrandom_sample(struct qn_ev_pyrandom *r, size_t n, size_t k, size_t *out);

#endif
