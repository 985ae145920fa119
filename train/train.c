/*
 * quern-train - GPT-2 models on the CPU: create, train, sample, score, check.
 *
 * The model code is lib/gpt2.c; this file is the command line around it:
 * checkpoint directories (Hugging Face layout plus a training-state file),
 * the training loop (AdamW, cosine schedule, clipping, accumulation,
 * validation, metrics, periodic atomic checkpoints, exact resume, clean
 * stops on SIGINT/SIGTERM), generation and scoring over JSON lines, and
 * `check`, which writes logits, loss and gradients for comparison against
 * another implementation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpe.h"
#include "buf.h"
#include "cli.h"
#include "clsmetrics.h"
#include "err.h"
#include "gpt2.h"
#include "hash.h"
#include "utf8.h"
#include "clshead.h"
#include "dist.h"
#include "linear.h"
#include "loader.h"
#include "mix.h"
#include "sweep.h"
#include "manifest.h"
#include "pool.h"
#include "rd.h"
#include "safetensors.h"
#include "shard.h"
#include "wr.h"

static const char usage_text[] =
    "usage: quern-train <command> [options]\n"
    "\n"
    "GPT-2 models on the CPU (OpenBLAS).\n"
    "\n"
    "Commands:\n"
    "  init -o DIR [model options]          a new model, seeded\n"
    "  fit MODEL --data SHARDS -o DIR       train: pre-training, continued pre-training\n"
    "                                       or full fine-tuning from MODEL\n"
    "  sample MODEL [file ...]              {\"prompt\"} lines in, generations out\n"
    "  score MODEL [file ...]               {\"text\"} or {\"context\",\"continuation\"}\n"
    "                                       lines in, per-token log-probabilities out\n"
    "  check MODEL --batch FILE -o OUT      logits, loss and gradients of one batch\n"
    "                                       (and --steps K AdamW steps) as safetensors\n"
    "  merge MODEL --adapter DIR -o OUT     fold a LoRA adapter into a full model\n"
    "  classify MODEL [file ...]            {\"text\"} lines in, each with its\n"
    "                                       \"prediction\" out (a classifier MODEL)\n"
    "  sweep MODEL --data SHARDS --space FILE.yaml -o DIR\n"
    "                                       hyperparameter search over fit runs: random\n"
    "                                       or successive halving, trials in parallel,\n"
    "                                       a leaderboard and the best model\n"
    "                                       (quern-train sweep --help)\n"
    "\n"
    "MODEL is a checkpoint directory: config.json, model.safetensors and the\n"
    "tokenizer files (Hugging Face layout; openai-community/gpt2 loads as is).\n"
    "Built with make MPI=1, 'mpirun -np N quern-train fit ...' trains data-parallel:\n"
    "N ranks share each step (man quern-train, \"Data-parallel training (MPI)\").\n"
    "\n"
    "Model (init):\n"
    "      --config FILE          a GPT2Config config.json\n"
    "      --layers N             blocks (default 12)\n"
    "      --heads N              attention heads (default 12)\n"
    "      --width N              embedding width (default 768)\n"
    "      --context N            positions (default 1024)\n"
    "      --inner N              MLP width (default 4 x width)\n"
    "      --vocab N              vocabulary (default: the tokenizer's)\n"
    "  -t, --tokenizer TOK        FILE.tiktoken, tokenizer.json or a directory\n"
    "      --encoding NAME        the named encoding of a .tiktoken file\n"
    "Training (fit):\n"
    "      --data DIR             token shards (quern-tokenize encode)\n"
    "      --steps N              optimizer steps (default 1000)\n"
    "      --batch N              sequences a micro-batch (default 8)\n"
    "      --context N            tokens a sequence (default: the model's, at most 1024)\n"
    "      --accum N              micro-batches a step (default 1)\n"
    "      --lr X                 peak learning rate (default 3e-4)\n"
    "      --min-lr X             cosine floor (default lr / 10)\n"
    "      --warmup N             linear warmup steps (default 0)\n"
    "      --schedule S           cosine (default) or constant\n"
    "      --weight-decay X       on the blocks' matrices (default 0.1)\n"
    "      --beta1 X, --beta2 X   AdamW moments (default 0.9, 0.95)\n"
    "      --eps X                AdamW epsilon (default 1e-8)\n"
    "      --clip X               global gradient norm (default 1.0; 0 = off)\n"
    "      --seed N               data order (default 1337); init: weights\n"
    "      --no-shuffle           documents in stored order\n"
    "      --eval-every N         validation every N steps (default: at the end)\n"
    "      --eval-batches N       validation batches (default 20)\n"
    "      --save-every N         checkpoint every N steps (default 500)\n"
    "      --keep N               checkpoints kept (default 2)\n"
    "      --metrics FILE         metrics JSON lines (default DIR/metrics.jsonl)\n"
    "      --resume               go on from DIR's last checkpoint\n"
    "      --stop-at N            end this run after step N (validated, saved), the\n"
    "                             schedule still --steps long; --resume goes on\n"
    "      --patience N           stop after N evaluations without a better\n"
    "                             validation loss; DIR gets the best model\n"
    "      --min-delta X          the least improvement that counts (default 0)\n"
    "      --dropout P            embedding, attention and residual dropout in\n"
    "                             training (default: the config's *_pdrop; init\n"
    "                             writes P into the config, else 0)\n"
    "      --dpo                  preference tuning (DPO) on {prompt,chosen,rejected}\n"
    "                             shards; --batch counts pairs; the reference is MODEL\n"
    "                             (or, with --lora, the base without the adapter)\n"
    "      --dpo-beta X           DPO's beta (default 0.1)\n"
    "      --dpo-precompute       the reference's log-probabilities once, before\n"
    "                             training (saved in DIR/dpo_reference.safetensors);\n"
    "                             no reference model while training\n"
    "      --dpo-reference FILE   precomputed reference log-probabilities\n"
    "      --classify             a classification head (GPT2ForSequenceClassification)\n"
    "                             on {\"text\",\"label\"} shards, at each document's\n"
    "                             last token; --batch counts documents, --context\n"
    "                             truncates them; DIR gets eval.json\n"
    "      --mix S                multi-task rows by the shards' tasks: proportional\n"
    "                             (to examples) or temperature (examples^(1/T))\n"
    "      --mix-temperature T    for --mix temperature (default 2)\n"
    "      --task-cap K           a task counts at most K examples (T5's limit)\n"
    "      --task-weight NAME=W   explicit mixture (repeatable; unnamed tasks 0)\n"
    "      --freeze SPEC          train without: embeddings (wte, also the output\n"
    "                             layer, and wpe), ln_f, blocks N or N-M\n"
    "                             (repeatable, comma lists)\n"
    "Linear classifier (fit --arch linear; fastText-style, docs/classification.md):\n"
    "      --arch linear          hashed word / word n-gram / char n-gram features,\n"
    "                             mean embedding, softmax; {\"text\",\"label\"} JSON Lines\n"
    "      --data FILE            training lines (repeatable; '-' stdin; .zst/.gz)\n"
    "      --val FILE             validation lines (default: --val-fraction of --data)\n"
    "      --val-fraction F       held out by a hash of \"id\" (or the text) (default 0.1)\n"
    "      --dim N                embedding width (default 64)\n"
    "      --epochs N             passes over the data (default 5)\n"
    "      --lr X                 learning rate, decays linearly to 0 (default 0.5)\n"
    "      --word-ngrams N        word n-grams up to N (default 2)\n"
    "      --minn N, --maxn N     character n-grams of <word> (default 0, 0 = none;\n"
    "                             --maxn alone: minn 3)\n"
    "      --buckets N            hash buckets (default 2000000; only seen ones stored)\n"
    "      --no-lowercase         keep ASCII case (default: folded)\n"
    "      --text-field NAME      (default text; classify too)\n"
    "      --label-field NAME     (default label; a string or an integer; classify too)\n"
    "      --seed N               example order and initialisation (default 1337)\n"
    "      -j N                   threads (default 1: reproducible; more: Hogwild!)\n"
    "                             DIR gets config.json, model.safetensors, eval.json,\n"
    "                             metrics.jsonl, run.manifest.json\n"
    "LoRA (fit; PEFT's defaults and files):\n"
    "      --lora                 train a LoRA adapter; the base stays frozen, and DIR\n"
    "                             gets adapter_config.json + adapter_model.safetensors\n"
    "      --lora-r N             rank (default 8)\n"
    "      --lora-alpha X         scaling alpha / r (default 8)\n"
    "      --lora-dropout X       dropout on the adapters' input (default 0)\n"
    "      --lora-targets LIST    c_attn (default), attn.c_proj, mlp.c_fc, mlp.c_proj;\n"
    "                             c_proj and c_fc as PEFT reads them\n"
    "      --adapter DIR          sample, score, merge: a LoRA adapter on MODEL\n"
    "Classifying (classify):\n"
    "      --metrics FILE         accuracy, macro-F1 and the confusion matrix of\n"
    "                             the inputs that carry a \"label\"\n"
    "      --top-k K              only the K most probable labels in \"probs\"\n"
    "      --batch N              documents a forward pass (default 16)\n"
    "Generation (sample):\n"
    "      --max-tokens N         tokens a completion (default 64)\n"
    "      --temperature X        0 = greedy (default 1)\n"
    "      --top-k N              (default 0 = off)\n"
    "      --top-p X              nucleus (default 1 = off)\n"
    "      --stop STR             stop string (repeatable)\n"
    "      --seed N               sampling seed (default 1337)\n"
    "      --allow-special        special-token text in prompts and texts becomes\n"
    "                             the special token (sample, score)\n"
    "Checking (check):\n"
    "      --batch FILE           token ids: JSON [[...], ...] rows of T+1, or raw\n"
    "                             little-endian uint32 with --shape B,T\n"
    "      --steps K              AdamW steps on the batch (optimizer flags as fit)\n"
    "Runs:\n"
    "  -o, --output PATH          output directory (init, fit) or file\n"
    "  -j, --threads N            threads (default 0 = one per CPU)\n"
    "  -q, --quiet                no warnings\n"
    "  -v, --verbose              more detail\n"
    "  -h, --help                 this help\n"
    "  -V, --version              the version\n"
    "\n"
    "Exit status: 0 done; 1 a failure (bad input, NaN loss, I/O); 2 usage error;\n"
    "130/143 fit stopped by SIGINT/SIGTERM after saving a checkpoint.\n";

/* ---- options -------------------------------------------------------------- */

static struct {
	const char *cmd, *output, *tokenizer, *encoding, *config, *data, *metrics, *batch_file;
	const char *schedule;
	const char **stops;
	size_t nstops;
	const char **freezes; /* --freeze SPEC, as given */
	size_t nfreezes;
	const char *adapter; /* --adapter DIR (sample, score, merge) */
	int lora, lora_r;    /* fit: train a LoRA adapter of rank lora_r */
	double lora_alpha, lora_dropout;
	double dropout;	    /* --dropout: all three probabilities; < 0: the config's */
	const char *mix;    /* --mix: proportional or temperature; NULL: documents as stored */
	int dpo;	    /* --dpo: preference tuning on pairs */
	int dpo_precompute; /* --dpo-precompute: reference log-probabilities first */
	const char *dpo_reference; /* --dpo-reference FILE */
	double dpo_beta;
	double mix_temperature, task_cap;
	const char **task_weights; /* NAME=W, as given */
	size_t ntask_weights;
	unsigned lora_targets;
	int layers, heads, width, context, inner, vocab;
	long steps, batch, accum, warmup, eval_every, eval_batches, save_every, keep, patience,
	    stop_at;
	double min_delta;
	double lr, min_lr, wd, beta1, beta2, eps, clip;
	uint64_t seed;
	int shuffle, resume, threads, shape_b, shape_t, have_shape, steps_set, allow_special,
	    classify, batch_set;
	long max_tokens, top_k;
	double temperature, top_p;
} opt = {
    .layers = 12,
    .heads = 12,
    .width = 768,
    .context = 0,
    .steps = 1000,
    .batch = 8,
    .accum = 1,
    .eval_batches = 20,
    .save_every = 500,
    .keep = 2,
    .lr = 3e-4,
    .min_lr = -1,
    .wd = 0.1,
    .beta1 = 0.9,
    .beta2 = 0.95,
    .eps = 1e-8,
    .clip = 1.0,
    .seed = 1337,
    .shuffle = 1,
    .schedule = "cosine",
    .max_tokens = 64,
    .lora_r = 8,
    .dropout = -1,
    .mix_temperature = 2,
    .dpo_beta = 0.1,
    .lora_alpha = 8,
    .lora_targets = QN_LORA_C_ATTN,
    .temperature = 1.0,
    .top_p = 1.0,
};

static int g_argc;
static char **g_argv;
static const char *g_model_arg; /* MODEL as given: adapters name their base by it */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int make_dir(const char *p)
{
	if (mkdir(p, 0777) == 0 || (errno == EEXIST && is_dir(p)))
		return 0;
	qn_error("cannot create '%s': %s", p, strerror(errno));
	return -1;
}

static int fsync_dir(const char *p)
{
	int fd = open(p, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* ---- tokenizer files -------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}

/* The files that make up a tokenizer, as checkpoint directories carry them. */
static int is_tokenizer_file(const char *name)
{
	return !strcmp(name, "tokenizer.json") || !strcmp(name, "quern-tokenizer.json") ||
	       !strcmp(name, "tokenizer_config.json") || !strcmp(name, "vocab.json") ||
	       !strcmp(name, "merges.txt") || !strcmp(name, "special_tokens_map.json") ||
	       (has_suffix(name, ".tiktoken") && name[0] != '.');
}

static int copy_file(const char *from, const char *to, struct qn_err *e)
{
	struct qn_rd *r = qn_rd_open(from, QN_RD_RAW, e);
	if (!r)
		return -1;
	struct qn_wr *w = qn_wr_open(to, QN_WR_PLAIN, e);
	if (!w) {
		qn_rd_close(r);
		return -1;
	}
	char buf[65536];
	ssize_t n;
	while ((n = qn_rd_read(r, buf, sizeof buf, e)) > 0)
		if (qn_wr_write(w, buf, (size_t)n, e)) {
			n = -1;
			break;
		}
	qn_rd_close(r);
	if (n < 0) {
		qn_wr_abort(w);
		return -1;
	}
	return qn_wr_commit(w, NULL, e);
}

/* Copies the tokenizer files of src (a directory or one file) into dir. */
static int copy_tokenizer(const char *src, const char *dir, struct qn_err *e)
{
	char from[4096], to[4096];
	if (!is_dir(src)) {
		const char *base = strrchr(src, '/');
		base = base ? base + 1 : src;
		snprintf(to, sizeof to, "%s/%s", dir,
			 has_suffix(base, ".tiktoken") ? base : "tokenizer.json");
		return copy_file(src, to, e);
	}
	DIR *d = opendir(src);
	if (!d)
		return qn_errno(e, errno, "cannot open '%s'", src);
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d)))
		if (is_tokenizer_file(de->d_name)) {
			snprintf(from, sizeof from, "%s/%s", src, de->d_name);
			snprintf(to, sizeof to, "%s/%s", dir, de->d_name);
			if (strcmp(from, to))
				rc = copy_file(from, to, e);
		}
	closedir(d);
	return rc;
}

/* The model directory's tokenizer; NULL (and a message) when it has none. */
static struct qn_bpe *model_tokenizer(const char *dir)
{
	struct qn_err e;
	struct qn_bpe *b = qn_bpe_load_spec(dir, opt.encoding, &e);
	if (!b)
		qn_error("%s", e.msg);
	return b;
}

/* ---- manifests ---------------------------------------------------------------- */

/* Adds path (hashed now) as an input or output; missing files are skipped. */
static int manifest_file(struct qn_manifest *man, const char *path, int output)
{
	struct qn_err e;
	char sha[65];
	uint64_t size;
	if (access(path, F_OK))
		return 0;
	if (qn_sha256_file(path, sha, &size, &e)) {
		qn_error("%s", e.msg);
		return -1;
	}
	return output ? qn_manifest_output(man, path, size, sha)
		      : qn_manifest_input(man, path, size, sha);
}

/*
 * DIR/run.manifest.json: the model files read (from_dir, may be NULL), the
 * shard manifest (data, may be NULL), the model files written, counters.
 */
static int write_manifest(const char *dir, const char *from_dir, const char *data,
			  const char *const *counters, const int64_t *values, size_t n,
			  const char *fingerprint)
{
	struct qn_err e;
	char p[4096];
	struct qn_manifest *man = qn_manifest_new("quern-train", QN_VERSION, g_argc, g_argv);
	if (!man) {
		qn_error("out of memory");
		return -1;
	}
	static const char *const files[] = {QN_GPT2_CONFIG, QN_GPT2_WEIGHTS};
	int rc = 0;
	for (size_t i = 0; from_dir && i < 2 && !rc; i++) {
		snprintf(p, sizeof p, "%s/%s", from_dir, files[i]);
		rc = manifest_file(man, p, 0);
	}
	if (data && !rc) {
		snprintf(p, sizeof p, "%s/%s", data, QN_SHARD_MANIFEST);
		rc = manifest_file(man, p, 0);
	}
	static const char *const outs[] = {QN_GPT2_CONFIG, QN_GPT2_WEIGHTS, "adapter_config.json",
					   "adapter_model.safetensors"};
	for (size_t i = 0; i < 4 && !rc; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, outs[i]);
		rc = manifest_file(man, p, 1);
	}
	for (size_t i = 0; i < n; i++)
		qn_manifest_count(man, counters[i], values[i]);
	if (fingerprint && fingerprint[0])
		qn_manifest_set(man, "tokenizer", json_string(fingerprint));
	snprintf(p, sizeof p, "%s/run.manifest.json", dir);
	if (!rc && qn_manifest_write(man, p, &e)) {
		qn_error("%s", e.msg);
		rc = -1;
	}
	qn_manifest_free(man);
	return rc;
}

/* ---- init ------------------------------------------------------------------- */

static int cmd_init(void)
{
	struct qn_err e;
	struct qn_gpt2_config c;
	struct qn_bpe *tok = NULL;
	int rc = QN_EXIT_FAIL;

	if (!opt.output)
		return qn_usage_error("init needs -o DIR");
	if (opt.config) {
		if (qn_gpt2_config_load(opt.config, &c, &e)) {
			qn_error("%s", e.msg);
			return QN_EXIT_FAIL;
		}
	} else {
		qn_gpt2_config_default(&c);
		c.n_layer = opt.layers;
		c.n_head = opt.heads;
		c.n_embd = opt.width;
		c.n_positions = opt.context ? opt.context : 1024;
		c.n_inner = opt.inner;
	}
	if (opt.tokenizer) {
		tok = qn_bpe_load_spec(opt.tokenizer, opt.encoding, &e);
		if (!tok) {
			qn_error("%s", e.msg);
			return QN_EXIT_FAIL;
		}
		uint32_t tv = qn_bpe_vocab_size(tok);
		if (opt.vocab && (uint32_t)opt.vocab < tv) {
			qn_error("--vocab %d is smaller than the tokenizer's %u ids", opt.vocab,
				 tv);
			goto out;
		}
		if (!opt.config)
			c.vocab_size = opt.vocab ? opt.vocab : (int)tv;
		else if ((uint32_t)c.vocab_size < tv) {
			qn_error("'%s': vocab_size %d is smaller than the tokenizer's %u ids",
				 opt.config, c.vocab_size, tv);
			goto out;
		}
		memcpy(c.tokenizer, qn_bpe_fingerprint(tok), 65);
		uint32_t eot = qn_bpe_special_id(tok, "<|endoftext|>", 13);
		if (eot != QN_BPE_NONE)
			c.bos_token_id = c.eos_token_id = (int)eot;
	} else if (opt.vocab) {
		c.vocab_size = opt.vocab;
	} else if (!opt.config) {
		qn_usage_error("init needs a tokenizer (-t) or --vocab N");
		return QN_EXIT_USAGE;
	}
	struct qn_gpt2 *m = qn_gpt2_new(&c, &e);
	if (!m) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_gpt2_init_weights(m, opt.seed);
	if (opt.dropout >= 0)
		m->cfg.embd_pdrop = m->cfg.attn_pdrop = m->cfg.resid_pdrop = (float)opt.dropout;
	if (make_dir(opt.output) == 0) {
		const char *names[] = {"parameters"};
		int64_t vals[] = {(int64_t)m->nparams};
		if ((opt.tokenizer && copy_tokenizer(opt.tokenizer, opt.output, &e)) ||
		    qn_gpt2_save(m, opt.output, &e))
			qn_error("%s", e.msg);
		else if (write_manifest(opt.output, NULL, NULL, names, vals, 1, c.tokenizer) == 0)
			rc = QN_EXIT_OK;
	}
	qn_info("%zu parameters, %d layers, width %d, context %d, vocabulary %d", m->nparams,
		c.n_layer, c.n_embd, c.n_positions, c.vocab_size);
	qn_gpt2_free(m);
out:
	qn_bpe_free(tok);
	return rc;
}

/* ---- check ------------------------------------------------------------------ */

/* Reads the batch file: rows of T+1 ids (JSON, or raw uint32 with --shape). */
static uint32_t *read_batch(const char *path, int *B, int *T, struct qn_err *e)
{
	struct qn_rd *r = qn_rd_open(path, QN_RD_RAW, e);
	struct qn_buf b;
	uint32_t *ids = NULL;
	if (!r)
		return NULL;
	qn_buf_init(&b, 1u << 30);
	int got = qn_rd_slurp(r, &b, 1u << 30, e);
	qn_rd_close(r);
	if (got < 0 || got == QN_RD_TOOLONG) {
		if (got == QN_RD_TOOLONG)
			qn_errf(e, "'%s': larger than 1 GiB", path);
		goto fail;
	}
	if (opt.have_shape) {
		size_t want = (size_t)opt.shape_b * (size_t)(opt.shape_t + 1) * 4;
		if (b.len != want) {
			qn_errf(e,
				"'%s': %zu bytes; --shape %d,%d needs %zu (B rows of T+1 uint32)",
				path, b.len, opt.shape_b, opt.shape_t, want);
			goto fail;
		}
		ids = malloc(want);
		if (!ids) {
			qn_errf(e, "out of memory");
			goto fail;
		}
		const unsigned char *p = (const unsigned char *)b.data;
		for (size_t i = 0; i < want / 4; i++)
			ids[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
				 (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
		*B = opt.shape_b;
		*T = opt.shape_t;
	} else {
		json_error_t je;
		json_t *a = json_loadb(b.data ? b.data : "", b.len, 0, &je);
		size_t nb = json_is_array(a) ? json_array_size(a) : 0;
		json_t *row0 = nb ? json_array_get(a, 0) : NULL;
		size_t width = json_is_array(row0) ? json_array_size(row0) : 0;
		if (!a) {
			qn_errf(e, "'%s': line %d col %d: %s", path, je.line, je.column, je.text);
			goto fail;
		}
		if (!nb || width < 2 || nb > 1u << 20 || width > 1u << 20) {
			json_decref(a);
			qn_errf(e,
				"'%s': not a JSON array of rows of at least 2 token ids (or give "
				"--shape B,T for raw uint32)",
				path);
			goto fail;
		}
		ids = malloc(nb * width * sizeof *ids);
		for (size_t i = 0; ids && i < nb; i++) {
			json_t *row = json_array_get(a, i);
			if (!json_is_array(row) || json_array_size(row) != width) {
				qn_errf(e, "'%s': row %zu does not have %zu ids", path, i, width);
				free(ids);
				ids = NULL;
				break;
			}
			for (size_t j = 0; j < width; j++) {
				json_t *v = json_array_get(row, j);
				if (!json_is_integer(v) || json_integer_value(v) < 0 ||
				    json_integer_value(v) > UINT32_MAX) {
					qn_errf(e, "'%s': row %zu, item %zu is not a token id",
						path, i, j);
					free(ids);
					ids = NULL;
					break;
				}
				ids[i * width + j] = (uint32_t)json_integer_value(v);
			}
			if (!ids)
				break;
		}
		json_decref(a);
		if (!ids) {
			if (!e->msg[0])
				qn_errf(e, "out of memory");
			goto fail;
		}
		*B = (int)nb;
		*T = (int)width - 1;
	}
	qn_buf_release(&b);
	return ids;
fail:
	qn_buf_release(&b);
	free(ids);
	return NULL;
}

static int cmd_check(const char *model_dir)
{
	struct qn_err e = {{0}};
	int B, T, rc = QN_EXIT_FAIL;
	if (!opt.batch_file)
		return qn_usage_error("check needs --batch FILE");
	if (!opt.output)
		return qn_usage_error("check needs -o OUT.safetensors");
	struct qn_gpt2 *m = qn_gpt2_load(model_dir, &e);
	if (!m) {
		qn_error("%s", e.msg);
		return QN_EXIT_FAIL;
	}
	qn_gpt2_set_threads(m, opt.threads);
	uint32_t *ids = read_batch(opt.batch_file, &B, &T, &e);
	float *logits = NULL, *grads0 = NULL, *losses = NULL, *mom = NULL, *var = NULL;
	uint32_t *in = NULL, *tg = NULL;
	struct qn_gpt2_train *t = NULL;
	struct qn_st_writer *w = NULL;
	if (!ids) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (T > m->cfg.n_positions) {
		qn_error("'%s': rows of %d tokens do not fit the model's %d positions",
			 opt.batch_file, T, m->cfg.n_positions);
		goto out;
	}
	for (size_t i = 0; i < (size_t)B * (T + 1); i++)
		if (ids[i] >= (uint32_t)m->cfg.vocab_size) {
			qn_error("'%s': row %zu, item %zu: token id %u is past the vocabulary (%d)",
				 opt.batch_file, i / (size_t)(T + 1), i % (size_t)(T + 1), ids[i],
				 m->cfg.vocab_size);
			goto out;
		}
	size_t N = (size_t)B * T, V = (size_t)m->cfg.vocab_size;
	in = malloc(N * sizeof *in);
	tg = malloc(N * sizeof *tg);
	logits = malloc(N * V * sizeof *logits);
	grads0 = malloc(m->nparams * sizeof *grads0);
	if (!in || !tg || !logits || !grads0) {
		qn_error("out of memory");
		goto out;
	}
	for (int b = 0; b < B; b++)
		for (int i = 0; i < T; i++) {
			in[(size_t)b * T + i] = ids[(size_t)b * (T + 1) + i];
			tg[(size_t)b * T + i] = ids[(size_t)b * (T + 1) + i + 1];
		}
	t = qn_gpt2_train_new(m, B, T, &e);
	if (!t) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_gpt2_zero_grads(m);
	float loss = (float)qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, logits);
	qn_gpt2_backward(t, 1.0f);
	memcpy(grads0, m->grads, m->nparams * sizeof *grads0);

	long K = opt.steps_set ? opt.steps : 0;
	if (K > 0) {
		struct qn_adamw o = {opt.lr, opt.beta1, opt.beta2, opt.eps, opt.wd};
		losses = malloc((size_t)K * sizeof *losses);
		mom = calloc(m->nparams, sizeof *mom);
		var = calloc(m->nparams, sizeof *var);
		if (!losses || !mom || !var) {
			qn_error("out of memory");
			goto out;
		}
		for (long k = 0; k < K; k++) {
			qn_gpt2_zero_grads(m);
			losses[k] = (float)qn_gpt2_forward(t, in, tg, NULL, 0, B, T, NULL, NULL);
			qn_gpt2_backward(t, 1.0f);
			if (opt.clip > 0)
				qn_gpt2_clip_grads(m, opt.clip);
			qn_gpt2_adamw(m, mom, var, &o, k + 1);
		}
	}
	w = qn_st_writer_new();
	uint64_t lshape[3] = {(uint64_t)B, (uint64_t)T, V}, one = 1, kk = (uint64_t)K;
	if (!w || qn_st_writer_add(w, "logits", QN_ST_F32, 3, lshape, logits, &e) ||
	    qn_st_writer_add(w, "loss", QN_ST_F32, 1, &one, &loss, &e) ||
	    qn_gpt2_st_add(m, w, "grads.", grads0, &e) ||
	    (K > 0 && (qn_st_writer_add(w, "losses", QN_ST_F32, 1, &kk, losses, &e) ||
		       qn_gpt2_st_add(m, w, "params.", m->params, &e))) ||
	    qn_st_writer_meta(w, "format", "pt", &e) || qn_st_writer_write(w, opt.output, &e)) {
		qn_error("%s", w ? e.msg : "out of memory");
		goto out;
	}
	rc = QN_EXIT_OK;
out:
	qn_st_writer_free(w);
	qn_gpt2_train_free(t);
	qn_gpt2_free(m);
	free(ids);
	free(in);
	free(tg);
	free(logits);
	free(grads0);
	free(losses);
	free(mom);
	free(var);
	return rc;
}

/* ---- fit: checkpoints --------------------------------------------------------- */

#define STATE_FILE "training_state.safetensors"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* What a checkpoint records besides the weights. */
struct fit_state {
	long step;
	double best_val; /* early stopping: the best validation loss so far */
	long best_step, bad_evals;
	char *mix; /* the mixer's position (qn_mix_state), malloc'd; NULL without mixing */
	struct qn_loader_pos pos;
	double elapsed;
	uint64_t tokens;
};

/* The hyperparameters that decide the trajectory, as one JSON string. */
static char *run_args(void)
{
	json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:s,s:f,s:f,s:f,s:f,s:f,s:I,s:b}",
			      "steps", (json_int_t)opt.steps, "batch", (json_int_t)opt.batch,
			      "context", (json_int_t)opt.context, "accum", (json_int_t)opt.accum,
			      "lr", opt.lr, "min_lr", opt.min_lr, "warmup", (json_int_t)opt.warmup,
			      "schedule", opt.schedule, "weight_decay", opt.wd, "beta1", opt.beta1,
			      "beta2", opt.beta2, "eps", opt.eps, "clip", opt.clip, "seed",
			      (json_int_t)opt.seed, "shuffle", opt.shuffle);
	json_t *fr = json_array();
	for (size_t i = 0; o && fr && i < opt.nfreezes; i++)
		json_array_append_new(fr, json_string(opt.freezes[i]));
	if (o && fr)
		json_object_set_new(o, "freeze", fr);
	if (o && opt.dpo)
		json_object_set_new(o, "dpo_beta", json_real(opt.dpo_beta));
	if (o && (opt.mix || opt.ntask_weights)) {
		json_t *mw = json_array();
		for (size_t i = 0; mw && i < opt.ntask_weights; i++)
			json_array_append_new(mw, json_string(opt.task_weights[i]));
		json_object_set_new(o, "mix",
				    json_pack("{s:s,s:f,s:f,s:o}", "strategy",
					      opt.mix ? opt.mix : "explicit", "temperature",
					      opt.mix_temperature, "cap", opt.task_cap, "weights",
					      mw ? mw : json_null()));
	}
	if (o && opt.dropout >= 0)
		json_object_set_new(o, "dropout", json_real(opt.dropout));
	if (o && opt.lora)
		json_object_set_new(o, "lora",
				    json_pack("{s:i,s:f,s:i,s:f}", "r", opt.lora_r, "alpha",
					      opt.lora_alpha, "targets", (int)opt.lora_targets,
					      "dropout", opt.lora_dropout));
	char *s = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
	json_decref(o);
	return s;
}

/*
 * Applies the --freeze specs: "embeddings" (wte, which is also the output
 * projection, and wpe), "ln_f", a block "N" or a range "N-M", comma lists.
 * 0, or -1 after a usage message.
 */
static int apply_freeze(struct qn_gpt2 *m)
{
	int L = m->cfg.n_layer;
	for (size_t k = 0; k < opt.nfreezes; k++) {
		char *list = strdup(opt.freezes[k]), *save = NULL;
		if (!list)
			return -1;
		for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
			if (!strcmp(it, "embeddings")) {
				qn_gpt2_freeze(m, 0, 1);
				qn_gpt2_freeze(m, 1, 1);
				continue;
			}
			if (!strcmp(it, "ln_f")) {
				qn_gpt2_freeze(m, m->ntensors - 2, 1);
				qn_gpt2_freeze(m, m->ntensors - 1, 1);
				continue;
			}
			char *end;
			long a = strtol(it, &end, 10), b = a;
			if (end != it && *end == '-')
				b = strtol(end + 1, &end, 10);
			if (end == it || *end || a < 0 || b < a || b >= L) {
				qn_usage_error(
				    "--freeze: '%s' is not embeddings, ln_f or a block (0-%d) "
				    "or range of blocks",
				    it, L - 1);
				free(list);
				return -1;
			}
			for (long l = a; l <= b; l++)
				for (size_t i = 0; i < 12; i++)
					qn_gpt2_freeze(m, 2 + (size_t)l * 12 + i, 1);
		}
		free(list);
	}
	for (size_t i = 0; i < m->ntensors; i++)
		if (!qn_gpt2_is_frozen(m, i))
			return 0;
	qn_usage_error("--freeze leaves nothing to train");
	return -1;
}

/* Adds the AdamW moments of the trainable tensors (frozen ones have none). */
static int add_moments(const struct qn_gpt2 *m, struct qn_st_writer *w, const float *mom,
		       const float *var, struct qn_err *e)
{
	char nm[128];
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < m->ntensors; i++) {
			const struct qn_gpt2_tensor *t = m->tensors + i;
			if (qn_gpt2_is_frozen(m, i))
				continue;
			snprintf(nm, sizeof nm, "adam.%c.%s", k ? 'v' : 'm', t->name);
			if (qn_st_writer_add(w, nm, QN_ST_F32, t->ndim, t->shape,
					     (k ? var : mom) + t->offset, e))
				return -1;
		}
	/* An adapter's moments follow the base's in the same arrays. */
	for (int k = 0; m->lora && k < 2; k++)
		for (size_t i = 0; i < m->lora->ntensors; i++) {
			const struct qn_gpt2_tensor *t = m->lora->tensors + i;
			snprintf(nm, sizeof nm, "adam.%c.%s", k ? 'v' : 'm', t->name);
			if (qn_st_writer_add(w, nm, QN_ST_F32, t->ndim, t->shape,
					     (k ? var : mom) + m->nparams + t->offset, e))
				return -1;
		}
	return 0;
}

static int rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p);
		}
	closedir(d);
	return rmdir(dir);
}

/* Steps of the complete checkpoints in out, ascending; their count. */
static size_t list_checkpoints(const char *out, long **steps)
{
	DIR *d = opendir(out);
	struct dirent *de;
	size_t n = 0, cap = 0;
	*steps = NULL;
	while (d && (de = readdir(d))) {
		char *end;
		if (strncmp(de->d_name, "checkpoint-", 11))
			continue;
		long s = strtol(de->d_name + 11, &end, 10);
		if (*end || end == de->d_name + 11 || s < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			long *nv = realloc(*steps, cap * sizeof *nv);
			if (!nv)
				break;
			*steps = nv;
		}
		(*steps)[n++] = s;
	}
	if (d)
		closedir(d);
	for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
		for (size_t j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
			long t = (*steps)[j];
			(*steps)[j] = (*steps)[j - 1];
			(*steps)[j - 1] = t;
		}
	return n;
}

/*
 * Writes out/checkpoint-STEP: model, tokenizer, training state, all into a
 * temporary directory renamed into place, so a full disk or a crash leaves
 * the earlier checkpoints as they were. Then removes all but the last keep.
 */
static int save_checkpoint(const struct qn_gpt2 *m, const float *mom, const float *var,
			   const struct fit_state *s, const char *model_dir, const char *out,
			   struct qn_err *e)
{
	char tmp[4096], dst[4096], path[8192], num[64];
	snprintf(tmp, sizeof tmp, "%s/.checkpoint-%ld.tmp", out, s->step);
	snprintf(dst, sizeof dst, "%s/checkpoint-%ld", out, s->step);
	rm_tree(tmp);
	if (mkdir(tmp, 0777))
		return qn_errno(e, errno, "cannot create '%s'", tmp);
	struct qn_st_writer *w = qn_st_writer_new();
	char *args = run_args();
	int rc = -1;
	if (!w || !args) {
		qn_errf(e, "out of memory");
		goto out;
	}
	if (copy_tokenizer(model_dir, tmp, e) || qn_gpt2_save(m, tmp, e) ||
	    (m->lora && qn_gpt2_lora_save(m, tmp, g_model_arg, e)))
		goto out;
	snprintf(path, sizeof path, "%s/%s", tmp, STATE_FILE);
	if (add_moments(m, w, mom, var, e))
		goto out;
	struct {
		const char *k;
		unsigned long long v;
	} kv[] = {{"step", (unsigned long long)s->step},
		  {"epoch", s->pos.epoch},
		  {"doc", s->pos.doc},
		  {"offset", s->pos.off},
		  {"tokens", s->tokens},
		  {"threads", (unsigned long long)m->threads}};
	for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
		snprintf(num, sizeof num, "%llu", kv[i].v);
		if (qn_st_writer_meta(w, kv[i].k, num, e))
			goto out;
	}
	if (s->mix && qn_st_writer_meta(w, "mix", s->mix, e))
		goto out;
	snprintf(num, sizeof num, "%d", qn_dist_size());
	if (qn_dist_size() > 1 && qn_st_writer_meta(w, "world_size", num, e))
		goto out;
	snprintf(num, sizeof num, "%.17g", s->best_val);
	if (qn_st_writer_meta(w, "best_val_loss", num, e))
		goto out;
	snprintf(num, sizeof num, "%ld", s->best_step);
	if (qn_st_writer_meta(w, "best_step", num, e))
		goto out;
	snprintf(num, sizeof num, "%ld", s->bad_evals);
	if (qn_st_writer_meta(w, "bad_evals", num, e))
		goto out;
	snprintf(num, sizeof num, "%.17g", s->elapsed);
	if (qn_st_writer_meta(w, "elapsed", num, e) || qn_st_writer_meta(w, "args", args, e) ||
	    qn_st_writer_meta(w, "format", "quern-train-state-1", e) ||
	    qn_st_writer_write(w, path, e))
		goto out;
	fsync_dir(tmp);
	rm_tree(dst);
	if (rename(tmp, dst)) {
		qn_errno(e, errno, "cannot rename '%s' to '%s'", tmp, dst);
		goto out;
	}
	fsync_dir(out);
	rc = 0;
	long *steps;
	size_t n = list_checkpoints(out, &steps);
	for (size_t i = 0; i + (size_t)opt.keep < n; i++) {
		snprintf(path, sizeof path, "%s/checkpoint-%ld", out, steps[i]);
		rm_tree(path);
	}
	free(steps);
out:
	if (rc)
		rm_tree(tmp);
	qn_st_writer_free(w);
	free(args);
	return rc;
}

/* out/best: the model of the best validation loss, replaced atomically. */
static int save_best(const struct qn_gpt2 *m, const char *model_dir, const char *out,
		     struct qn_err *e)
{
	char tmp[4096], dst[4096];
	snprintf(tmp, sizeof tmp, "%s/.best.tmp", out);
	snprintf(dst, sizeof dst, "%s/best", out);
	rm_tree(tmp);
	if (mkdir(tmp, 0777))
		return qn_errno(e, errno, "cannot create '%s'", tmp);
	if (copy_tokenizer(model_dir, tmp, e) ||
	    (m->lora ? qn_gpt2_lora_save(m, tmp, g_model_arg, e) : qn_gpt2_save(m, tmp, e))) {
		rm_tree(tmp);
		return -1;
	}
	fsync_dir(tmp);
	rm_tree(dst);
	if (rename(tmp, dst)) {
		qn_errno(e, errno, "cannot rename '%s' to '%s'", tmp, dst);
		rm_tree(tmp);
		return -1;
	}
	fsync_dir(out);
	return 0;
}

static int meta_u64(const struct qn_st *st, const char *key, unsigned long long *v,
		    struct qn_err *e)
{
	const char *s = qn_st_meta(st, key);
	char *end;
	if (!s)
		return qn_errf(e, "'%s': no '%s' in __metadata__", qn_st_name(st), key);
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || *end || end == s)
		return qn_errf(e, "'%s': '%s' is not a number", qn_st_name(st), key);
	return 0;
}

/*
 * Under MPI a step is ranks x accum micro-batches of the one data stream,
 * so a checkpoint resumes with another number of ranks only when that
 * product stays (and then not bit for bit: the sums run in another order).
 */
static int check_world(const struct qn_st *st, const char *dir, struct qn_err *e)
{
	const char *ws = qn_st_meta(st, "world_size"), *args = qn_st_meta(st, "args");
	long world = ws ? strtol(ws, NULL, 10) : 1, accum = opt.accum, ranks = qn_dist_size();
	if (world == ranks)
		return 0;
	json_t *o = args ? json_loads(args, 0, NULL) : NULL;
	if (json_is_integer(json_object_get(o, "accum")))
		accum = (long)json_integer_value(json_object_get(o, "accum"));
	json_decref(o);
	if (world * accum != ranks * opt.accum)
		return qn_errf(
		    e,
		    "'%s' was written by %ld rank%s with --accum %ld, %ld micro-batches a "
		    "step; this run has %ld with --accum %ld: resume with mpirun -np %ld, "
		    "or with an --accum that keeps ranks x accum at %ld",
		    dir, world, world == 1 ? "" : "s", accum, world * accum, ranks, opt.accum,
		    world, world * accum);
	qn_warn("'%s' was written by %ld rank%s, this run has %ld: the same %ld micro-batches a "
		"step, but results will not be bit-identical to an uninterrupted run",
		dir, world, world == 1 ? "" : "s", ranks, world * accum);
	return 0;
}

/* Loads the optimizer state and position of checkpoint dir. */
static int load_state(const struct qn_gpt2 *m, const char *dir, float *mom, float *var,
		      struct fit_state *s, struct qn_err *e)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE);
	struct qn_st *st = qn_st_open(path, e);
	if (!st)
		return -1;
	int rc = -1;
	unsigned long long step, epoch, doc, off, tokens, threads;
	if (meta_u64(st, "step", &step, e) || meta_u64(st, "epoch", &epoch, e) ||
	    meta_u64(st, "doc", &doc, e) || meta_u64(st, "offset", &off, e) ||
	    meta_u64(st, "tokens", &tokens, e) || meta_u64(st, "threads", &threads, e) ||
	    check_world(st, dir, e))
		goto out;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < m->ntensors; i++) {
			const struct qn_gpt2_tensor *t = m->tensors + i;
			char nm[128];
			if (qn_gpt2_is_frozen(m, i))
				continue;
			snprintf(nm, sizeof nm, "adam.%c.%s", k ? 'v' : 'm', t->name);
			const struct qn_st_tensor *x = qn_st_find(st, nm);
			if (!x) {
				qn_errf(e, "'%s': tensor '%s' is missing", path, nm);
				goto out;
			}
			if (qn_st_read_f32(st, x, (k ? var : mom) + t->offset, t->numel, e))
				goto out;
		}
	for (int k = 0; m->lora && k < 2; k++)
		for (size_t i = 0; i < m->lora->ntensors; i++) {
			const struct qn_gpt2_tensor *t = m->lora->tensors + i;
			char nm[128];
			snprintf(nm, sizeof nm, "adam.%c.%s", k ? 'v' : 'm', t->name);
			const struct qn_st_tensor *x = qn_st_find(st, nm);
			if (!x) {
				qn_errf(e, "'%s': tensor '%s' is missing", path, nm);
				goto out;
			}
			if (qn_st_read_f32(st, x, (k ? var : mom) + m->nparams + t->offset,
					   t->numel, e))
				goto out;
		}
	s->step = (long)step;
	s->pos.epoch = epoch;
	s->pos.doc = doc;
	s->pos.off = off;
	s->tokens = tokens;
	const char *el = qn_st_meta(st, "elapsed");
	s->elapsed = el ? strtod(el, NULL) : 0;
	const char *mx = qn_st_meta(st, "mix");
	free(s->mix);
	s->mix = mx ? strdup(mx) : NULL;
	const char *bv = qn_st_meta(st, "best_val_loss"), *bs = qn_st_meta(st, "best_step");
	const char *be = qn_st_meta(st, "bad_evals");
	s->best_val = bv ? strtod(bv, NULL) : INFINITY;
	s->best_step = bs ? strtol(bs, NULL, 10) : -1;
	s->bad_evals = be ? strtol(be, NULL, 10) : 0;
	const char *args = qn_st_meta(st, "args");
	char *mine = run_args();
	if (args && mine && strcmp(args, mine))
		qn_warn("resuming with other settings than the run that wrote '%s' (%s); the "
			"result will differ from an uninterrupted run",
			dir, args);
	free(mine);
	if ((int)threads != m->threads)
		qn_warn("'%s' was written with %llu threads, this run has %d: results will not "
			"be bit-identical to an uninterrupted run",
			dir, threads, m->threads);
	rc = 0;
out:
	qn_st_close(st);
	return rc;
}

/* ---- fit: the loop ------------------------------------------------------------ */

/*
 * The dropout key of micro-batch a of the step after step: the seed and its
 * number (under MPI, a counts the micro-batches of all ranks).
 */
static uint64_t dropout_key(long step, long a)
{
	return opt.seed * 0x9e3779b97f4a7c15ull ^
	       ((uint64_t)step * (uint64_t)opt.accum * (uint64_t)qn_dist_size() + (uint64_t)a + 1);
}

static double lr_at(long step)
{
	if (opt.warmup > 0 && step < opt.warmup)
		return opt.lr * (double)(step + 1) / (double)opt.warmup;
	if (!strcmp(opt.schedule, "constant"))
		return opt.lr;
	long span = opt.steps - opt.warmup;
	double progress = span > 0 ? (double)(step - opt.warmup) / (double)span : 1.0;
	if (progress > 1)
		progress = 1;
	return opt.min_lr + 0.5 * (opt.lr - opt.min_lr) * (1 + cos(M_PI * progress));
}

/*
 * Mean loss over the first eval_batches windows of the validation split.
 * Under MPI each rank computes windows k = rank, rank + W, ... and the
 * per-window sums are exchanged (the others' slots are 0), so every rank
 * adds the same numbers in the same order as one process does.
 */
static double evaluate(struct qn_gpt2_train *t, struct qn_loader *val, uint32_t *in, uint32_t *tg,
		       uint8_t *mask, int B, int T, struct qn_err *e)
{
	struct qn_loader_pos zero = {0, 0, 0};
	double sum = 0, count = 0;
	size_t K = (size_t)opt.eval_batches;
	double *part = calloc(2 * K, sizeof *part); /* losses, then counts */
	if (!part) {
		qn_errf(e, "out of memory");
		return NAN;
	}
	if (qn_loader_seek(val, &zero, e)) {
		free(part);
		return NAN;
	}
	for (size_t k = 0; k < K; k++) {
		size_t n;
		if (qn_loader_next(val, in, tg, mask, (size_t)B * T, e)) {
			free(part);
			return NAN;
		}
		if ((int)(k % (size_t)qn_dist_size()) != qn_dist_rank())
			continue;
		part[k] = qn_gpt2_forward(t, in, tg, mask, 1.0, B, T, &n, NULL);
		part[K + k] = (double)n;
	}
	qn_dist_sum(part, 2 * K);
	for (size_t k = 0; k < K; k++) {
		sum += part[k];
		count += part[K + k];
	}
	free(part);
	return count > 0 ? sum / count : NAN;
}

/* Keeps the metrics lines up to step (a resumed run rewrites what follows). */
static void trim_metrics(const char *path, long step)
{
	struct qn_err e;
	struct qn_rd *r = qn_rd_open(path, QN_RD_RAW, &e);
	struct qn_buf line, keep;
	if (!r)
		return;
	qn_buf_init(&line, 1u << 20);
	qn_buf_init(&keep, QN_BUF_UNLIMITED);
	while (qn_rd_line(r, &line, 1u << 20, &e) == 1) {
		json_t *o = json_loadb(line.data, line.len, 0, NULL);
		json_t *s = json_object_get(o, "step");
		if (json_is_integer(s) && json_integer_value(s) <= step) {
			qn_buf_add(&keep, line.data, line.len);
			qn_buf_addc(&keep, '\n');
		}
		json_decref(o);
	}
	qn_rd_close(r);
	if (qn_write_file_atomic(path, keep.data ? keep.data : "", keep.len, &e))
		qn_warn("%s", e.msg);
	qn_buf_release(&line);
	qn_buf_release(&keep);
}

/* ---- fit: preference pairs (DPO) ------------------------------------------------- */

/*
 * The preference pairs of a split, one at a time: the chosen documents in
 * an order drawn from the seed and the epoch (or stored), each read with
 * its rejected partner. A pair's row is end-of-text then the document
 * (prompt and completion), cut at T + 1 tokens and padded with end-of-text
 * that does not count; a target counts when the document trains on it.
 */
struct pairs {
	struct qn_shard_dir *d;
	int split, shuffle;
	uint64_t seed, *chosen, *perm, perm_epoch;
	size_t n;
	struct qn_loader_pos pos; /* epoch, pair number (doc), 0 */
	int64_t eot;
	uint64_t *rowpair; /* the pair number of each micro-batch row pair, for pre */
	double *pre;	   /* precomputed reference: 2n negative log-likelihoods; NULL: none */
};

static void pairs_free(struct pairs *p)
{
	if (!p)
		return;
	qn_shard_dir_close(p->d);
	free(p->chosen);
	free(p->perm);
	free(p->rowpair);
	free(p->pre);
	free(p);
}

static struct pairs *pairs_new(const char *dir, int split, uint64_t seed, int shuffle,
			       struct qn_err *e)
{
	struct pairs *p = calloc(1, sizeof *p);
	if (!p) {
		qn_errf(e, "out of memory");
		return NULL;
	}
	p->d = qn_shard_dir_open(dir, e);
	if (!p->d) {
		free(p);
		return NULL;
	}
	p->split = split;
	p->seed = seed;
	p->shuffle = shuffle;
	p->eot = qn_shard_dir_info(p->d)->eot;
	uint64_t nd = qn_shard_dir_docs(p->d, split);
	p->chosen = malloc((nd ? nd : 1) * sizeof *p->chosen);
	p->perm = malloc((nd ? nd : 1) * sizeof *p->perm);
	if (!p->chosen || !p->perm) {
		qn_errf(e, "out of memory");
		pairs_free(p);
		return NULL;
	}
	for (uint64_t k = 0; k < nd; k++) {
		struct qn_shard_docview v;
		if (qn_shard_dir_read(p->d, split, k, &v, e)) {
			pairs_free(p);
			return NULL;
		}
		if (v.role == QN_SHARD_CHOSEN && v.pair >= 0)
			p->chosen[p->n++] = k;
	}
	if (!p->n) {
		qn_errf(e,
			"'%s': the %s split has no preference pairs (encode {\"prompt\", "
			"\"chosen\", \"rejected\"} examples)",
			dir, qn_shard_split_name(split));
		pairs_free(p);
		return NULL;
	}
	p->perm_epoch = UINT64_MAX;
	return p;
}

/* Row b of (in, tg, mask) from document k: end-of-text, its tokens, padding. */
static int pair_row(struct pairs *p, uint64_t k, uint32_t *in, uint32_t *tg, uint8_t *mask, int T,
		    struct qn_err *e)
{
	struct qn_shard_docview v;
	if (qn_shard_dir_read(p->d, p->split, k, &v, e))
		return -1;
	uint32_t pad = p->eot >= 0 ? (uint32_t)p->eot : 0;
	/* Stream position j: 0 the separator, j >= 1 document token j - 1. */
	for (int j = 0; j <= T; j++) {
		uint32_t tok = j == 0 ? pad : (uint32_t)(j - 1) < v.n ? v.tokens[j - 1] : pad;
		int counts = 0;
		if (j >= 1 && (uint32_t)(j - 1) < v.n) {
			uint32_t i = (uint32_t)(j - 1);
			counts = !v.masked;
			for (uint32_t s = 0; v.masked && s < v.nspans; s++)
				counts |= i >= v.spans[s].start && i < v.spans[s].end;
		}
		if (j < T)
			in[j] = tok;
		if (j >= 1) {
			tg[j - 1] = tok;
			mask[j - 1] = (uint8_t)counts;
		}
	}
	return 0;
}

/* Pair k (in stored order) into rows 2b (chosen) and 2b + 1 (rejected). */
static int pair_rows(struct pairs *p, uint64_t k, uint32_t *in, uint32_t *tg, uint8_t *mask, int b,
		     int T, struct qn_err *e)
{
	uint64_t c = p->chosen[k];
	struct qn_shard_docview v;
	if (qn_shard_dir_read(p->d, p->split, c, &v, e))
		return -1;
	uint64_t r = (uint64_t)v.pair;
	size_t o0 = (size_t)(2 * b) * T, o1 = (size_t)(2 * b + 1) * T;
	return pair_row(p, c, in + o0, tg + o0, mask + o0, T, e) ||
	       pair_row(p, r, in + o1, tg + o1, mask + o1, T, e);
}

/* The next pair into rows 2b (chosen) and 2b + 1 (rejected). */
static int pairs_next(struct pairs *p, uint32_t *in, uint32_t *tg, uint8_t *mask, int b, int T,
		      struct qn_err *e)
{
	if (p->pos.doc >= p->n) {
		p->pos.doc = 0;
		p->pos.epoch++;
	}
	if (p->perm_epoch != p->pos.epoch) {
		if (p->shuffle)
			qn_loader_order(p->perm, p->n, p->seed, p->pos.epoch);
		else
			for (size_t i = 0; i < p->n; i++)
				p->perm[i] = i;
		p->perm_epoch = p->pos.epoch;
	}
	uint64_t k = p->perm[p->pos.doc++];
	if (p->rowpair)
		p->rowpair[b] = k;
	return pair_rows(p, k, in, tg, mask, b, T, e);
}

/* ---- DPO: precomputed reference log-likelihoods ------------------------------ */

static void row_nll(struct qn_gpt2_train *t, const uint32_t *in, const uint32_t *tg,
		    const uint8_t *mask, int rows, int T, double *nll);

#define DPO_REF_FILE "dpo_reference.safetensors"

/*
 * The reference's negative log-likelihoods of every pair of p in stored
 * order, B pairs a forward, into p->pre: the frozen copy tref, or (tref
 * NULL) the base of m without its adapter through t.
 */
static int pairs_precompute(struct pairs *p, struct qn_gpt2_train *tref, struct qn_gpt2 *m,
			    struct qn_gpt2_train *t, int B, int T, uint32_t *in, uint32_t *tg,
			    uint8_t *mask, struct qn_err *e)
{
	p->pre = malloc(2 * p->n * sizeof *p->pre);
	if (!p->pre)
		return qn_errf(e, "out of memory");
	for (size_t at = 0; at < p->n; at += (size_t)B) {
		int P = p->n - at < (size_t)B ? (int)(p->n - at) : B;
		for (int b = 0; b < P; b++)
			if (pair_rows(p, at + (size_t)b, in, tg, mask, b, T, e))
				return -1;
		if (tref) {
			row_nll(tref, in, tg, mask, 2 * P, T, p->pre + 2 * at);
		} else {
			m->lora->enabled = 0;
			row_nll(t, in, tg, mask, 2 * P, T, p->pre + 2 * at);
			m->lora->enabled = 1;
		}
	}
	return 0;
}

/* The SHA-256 of the shards' manifest.json: what a reference file was computed for. */
static int shards_sha(const char *data, char sha[65], struct qn_err *e)
{
	char path[4200];
	uint64_t size;
	snprintf(path, sizeof path, "%s/%s", data, QN_SHARD_MANIFEST);
	return qn_sha256_file(path, sha, &size, e);
}

/*
 * path: the reference log-probabilities of each split's pairs (TRL's
 * ref_chosen_logps and ref_rejected_logps), F64, with the shards' hash and
 * the context they were computed at.
 */
static int dpo_reference_write(const char *path, struct pairs *const *ps, int T, struct qn_err *e)
{
	static const char *const split[] = {"train", "val"};
	char sha[65], ctx[32], name[2][2][64];
	double *lp[2][2] = {{NULL, NULL}, {NULL, NULL}};
	struct qn_st_writer *w = qn_st_writer_new();
	int rc = w ? shards_sha(opt.data, sha, e) : qn_errf(e, "out of memory");
	for (int s = 0; s < 2 && !rc; s++) {
		if (!ps[s])
			continue;
		uint64_t shape[1] = {ps[s]->n};
		for (int side = 0; side < 2 && !rc; side++) {
			lp[s][side] = malloc(ps[s]->n * sizeof(double));
			if (!lp[s][side]) {
				rc = qn_errf(e, "out of memory");
				break;
			}
			for (size_t i = 0; i < ps[s]->n; i++)
				lp[s][side][i] = -ps[s]->pre[2 * i + (size_t)side];
			snprintf(name[s][side], sizeof name[s][side], "%s.ref_%s_logps", split[s],
				 side ? "rejected" : "chosen");
			rc =
			    qn_st_writer_add(w, name[s][side], QN_ST_F64, 1, shape, lp[s][side], e);
		}
	}
	snprintf(ctx, sizeof ctx, "%d", T);
	if (!rc)
		rc = qn_st_writer_meta(w, "format", "quern-dpo-reference", e) ||
		     qn_st_writer_meta(w, "shards_sha256", sha, e) ||
		     qn_st_writer_meta(w, "context", ctx, e) || qn_st_writer_write(w, path, e);
	qn_st_writer_free(w);
	for (int s = 0; s < 2; s++)
		for (int side = 0; side < 2; side++)
			free(lp[s][side]);
	return rc ? -1 : 0;
}

/* Fills each split's p->pre from path, checking it was made for these shards and T. */
static int dpo_reference_read(const char *path, struct pairs *const *ps, int T, struct qn_err *e)
{
	static const char *const split[] = {"train", "val"};
	char sha[65], ctx[32];
	struct qn_st *st = qn_st_open(path, e);
	if (!st || shards_sha(opt.data, sha, e)) {
		qn_st_close(st);
		return -1;
	}
	const char *fmt = qn_st_meta(st, "format"), *ssha = qn_st_meta(st, "shards_sha256"),
		   *sctx = qn_st_meta(st, "context");
	snprintf(ctx, sizeof ctx, "%d", T);
	int rc = 0;
	if (!fmt || strcmp(fmt, "quern-dpo-reference"))
		rc = qn_errf(e,
			     "'%s' is not a DPO reference file (no format "
			     "\"quern-dpo-reference\" in its metadata)",
			     path);
	else if (!ssha || strcmp(ssha, sha))
		rc = qn_errf(
		    e, "'%s' was computed for other shards than '%s' (their manifests differ)",
		    path, opt.data);
	else if (!sctx || strcmp(sctx, ctx))
		rc = qn_errf(e, "'%s' was computed at context %s, this run uses %d", path,
			     sctx ? sctx : "?", T);
	for (int s = 0; s < 2 && !rc; s++) {
		if (!ps[s])
			continue;
		ps[s]->pre = malloc(2 * ps[s]->n * sizeof *ps[s]->pre);
		if (!ps[s]->pre) {
			rc = qn_errf(e, "out of memory");
			break;
		}
		for (int side = 0; side < 2 && !rc; side++) {
			char name[64];
			snprintf(name, sizeof name, "%s.ref_%s_logps", split[s],
				 side ? "rejected" : "chosen");
			const struct qn_st_tensor *x = qn_st_find(st, name);
			if (!x || x->dtype != QN_ST_F64 || x->ndim != 1 ||
			    x->shape[0] != ps[s]->n) {
				rc = qn_errf(
				    e, "'%s': tensor '%s' %s (F64, one per pair: %zu)", path, name,
				    x ? "has the wrong type or shape" : "is missing", ps[s]->n);
				break;
			}
			const unsigned char *d = qn_st_data(st, x);
			for (size_t i = 0; i < ps[s]->n; i++) {
				double v;
				memcpy(&v, d + i * sizeof v, sizeof v);
				if (!isfinite(v) || v > 0) {
					rc = qn_errf(e,
						     "'%s': %s[%zu] = %g is not a log-probability",
						     path, name, i, v);
					break;
				}
				ps[s]->pre[2 * i + (size_t)side] = -v;
			}
		}
	}
	qn_st_close(st);
	return rc ? -1 : 0;
}

/* DPO statistics of a batch of pairs. */
struct dpo_stats {
	double loss, margin, chosen, rejected, correct;
	size_t pairs;
};

/*
 * The negative log-likelihood of each of the rows (2P of them) under the
 * model of t: one forward pass, counted targets summed per row.
 */
static void row_nll(struct qn_gpt2_train *t, const uint32_t *in, const uint32_t *tg,
		    const uint8_t *mask, int rows, int T, double *nll)
{
	qn_gpt2_forward(t, in, tg, mask, 1.0, rows, T, NULL, NULL);
	const double *pl = qn_gpt2_position_losses(t);
	for (int r = 0; r < rows; r++) {
		double sum = 0;
		for (int j = 0; j < T; j++)
			sum += pl[(size_t)r * T + j];
		nll[r] = sum;
	}
}

/*
 * One micro-batch of P pairs: the reference's log-likelihoods (a frozen
 * copy, or the base with the adapter off), the policy's, DPO's loss
 * -log sigmoid(beta ((pc - rc) - (pr - rr))) and, when backward is set, its
 * gradient (each row's loss weighted by -dL/dlogp / total) added to grads.
 */
static void dpo_batch(struct qn_gpt2_train *t, struct qn_gpt2 *m, struct qn_gpt2_train *tref,
		      const struct pairs *pp, const uint32_t *in, const uint32_t *tg,
		      const uint8_t *mask, int P, int T, double beta, double total, int backward,
		      double *ref, double *pol, float *scale, struct dpo_stats *st)
{
	int rows = 2 * P;
	if (pp->pre) { /* precomputed: looked up by pair number */
		for (int i = 0; i < P; i++) {
			ref[2 * i] = pp->pre[2 * pp->rowpair[i]];
			ref[2 * i + 1] = pp->pre[2 * pp->rowpair[i] + 1];
		}
	} else if (tref) {
		row_nll(tref, in, tg, mask, rows, T, ref);
	} else { /* LoRA: the base without its adapter is the reference */
		m->lora->enabled = 0;
		row_nll(t, in, tg, mask, rows, T, ref);
		m->lora->enabled = 1;
	}
	row_nll(t, in, tg, mask, rows, T, pol);
	for (int i = 0; i < P; i++) {
		double pc = -pol[2 * i], pr = -pol[2 * i + 1];
		double rc = -ref[2 * i], rr = -ref[2 * i + 1];
		double z = beta * ((pc - rc) - (pr - rr));
		double loss = z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z)); /* softplus(-z) */
		double sig = 1.0 / (1.0 + exp(z));			   /* sigmoid(-z) */
		st->loss += loss;
		st->margin += z;
		st->chosen += beta * (pc - rc);
		st->rejected += beta * (pr - rr);
		st->correct += z > 0;
		st->pairs++;
		scale[2 * i] = (float)(beta * sig / total);
		scale[2 * i + 1] = (float)(-beta * sig / total);
	}
	if (backward) {
		qn_gpt2_scale_rows(t, scale);
		qn_gpt2_backward(t, 1.0f);
	}
}

struct fit {
	struct qn_gpt2 *m;
	struct qn_gpt2_train *t;
	struct pairs *ptrain, *pval; /* --dpo */
	struct qn_gpt2 *ref;	     /* --dpo without --lora: the starting weights, frozen */
	struct qn_gpt2_train *tref;
	double *dpo_ref, *dpo_pol;
	float *dpo_scale;
	struct qn_loader *train, *val;
	struct qn_mix *mix, *vmix; /* multi-task: the train rows, the val split by task */
	float *mom, *var;
	uint32_t *in, *tg;
	uint8_t *mask;
	FILE *metrics;
	const char *model_dir; /* where the tokenizer files come from */
};

static void fit_release(struct fit *f)
{
	qn_gpt2_train_free(f->t);
	qn_gpt2_free(f->m);
	qn_loader_free(f->train);
	qn_loader_free(f->val);
	qn_mix_free(f->mix);
	qn_mix_free(f->vmix);
	pairs_free(f->ptrain);
	pairs_free(f->pval);
	qn_gpt2_train_free(f->tref);
	qn_gpt2_free(f->ref);
	free(f->dpo_ref);
	free(f->dpo_pol);
	free(f->dpo_scale);
	free(f->mom);
	free(f->var);
	free(f->in);
	free(f->tg);
	free(f->mask);
	if (f->metrics)
		fclose(f->metrics);
}

/* The model's tokenizer fingerprint: its config's, else its tokenizer files'. */
static int model_fingerprint(const struct qn_gpt2 *m, const char *dir, char out[65])
{
	if (m->cfg.tokenizer[0]) {
		memcpy(out, m->cfg.tokenizer, 65);
		return 0;
	}
	struct qn_bpe *b = model_tokenizer(dir);
	if (!b)
		return -1;
	memcpy(out, qn_bpe_fingerprint(b), 65);
	qn_bpe_free(b);
	return 0;
}

/* ---- fit --classify: a classification head ---------------------------------- */

/* The labelled documents of one split: index in the split, label, length. */
struct cls_docs {
	uint64_t *index;
	int *label;
	size_t n;
};

static int cls_docs_collect(struct qn_shard_dir *d, int split, size_t nlabels, struct cls_docs *out,
			    size_t *unlabelled, struct qn_err *e)
{
	uint64_t n = qn_shard_dir_docs(d, split);
	*out = (struct cls_docs){0};
	*unlabelled = 0;
	out->index = malloc((n ? n : 1) * sizeof *out->index);
	out->label = malloc((n ? n : 1) * sizeof *out->label);
	if (!out->index || !out->label)
		return qn_errf(e, "out of memory");
	for (uint64_t k = 0; k < n; k++) {
		struct qn_shard_docview v;
		if (qn_shard_dir_read(d, split, k, &v, e))
			return -1;
		if (v.label < 0 || (size_t)v.label >= nlabels || v.n == 0) {
			++*unlabelled;
			continue;
		}
		out->index[out->n] = k;
		out->label[out->n++] = v.label;
	}
	return 0;
}

static void cls_docs_release(struct cls_docs *c)
{
	free(c->index);
	free(c->label);
}

/*
 * Rows b of a batch: document docs[pick[b]] truncated to T tokens, padded
 * with pad; len[b] its length and gold[b] its label. Returns the longest
 * length (the batch's T), or -1.
 */
static int cls_rows(struct qn_shard_dir *d, int split, const struct cls_docs *docs,
		    const size_t *pick, int B, int T, uint32_t pad, uint32_t *in, int *len,
		    int *gold, struct qn_err *e)
{
	int tmax = 1;
	for (int b = 0; b < B; b++) {
		struct qn_shard_docview v;
		if (qn_shard_dir_read(d, split, docs->index[pick[b]], &v, e))
			return -1;
		len[b] = v.n < (uint32_t)T ? (int)v.n : T;
		gold[b] = docs->label[pick[b]];
		memcpy(in + (size_t)b * T, v.tokens, (size_t)len[b] * sizeof *in);
		if (len[b] > tmax)
			tmax = len[b];
	}
	/* Repack to the batch's own width: rows of tmax, padded. */
	for (int b = 0; b < B; b++) {
		memmove(in + (size_t)b * tmax, in + (size_t)b * T, (size_t)len[b] * sizeof *in);
		for (int j = len[b]; j < tmax; j++)
			in[(size_t)b * tmax + j] = pad;
	}
	return tmax;
}

/* The head and the trunk over every validation document: metrics into mt. */
static int cls_evaluate(struct qn_gpt2_train *t, struct cls_head *h, struct qn_shard_dir *d,
			const struct cls_docs *val, int B, int T, uint32_t pad, uint32_t *in,
			int *len, int *gold, float *probs, struct qn_cls_metrics *mt,
			struct qn_err *e)
{
	size_t *pick = malloc((size_t)B * sizeof *pick);
	if (!pick)
		return qn_errf(e, "out of memory");
	for (size_t at = 0; at < val->n; at += (size_t)B) {
		int nb = val->n - at < (size_t)B ? (int)(val->n - at) : B;
		for (int b = 0; b < nb; b++)
			pick[b] = at + (size_t)b;
		int tb = cls_rows(d, QN_SHARD_VAL, val, pick, nb, T, pad, in, len, gold, e);
		const float *hid = tb < 0 ? NULL : qn_gpt2_forward_hidden(t, in, nb, tb);
		if (!hid) {
			free(pick);
			return tb < 0 ? -1 : qn_errf(e, "the model changed after its buffers");
		}
		cls_head_forward(h, hid, len, NULL, nb, tb, probs, NULL, 1);
		for (int b = 0; b < nb; b++) {
			const float *p = probs + (size_t)b * h->k;
			size_t best = 0;
			for (size_t j = 1; j < h->k; j++)
				if (p[j] > p[best])
					best = j;
			double pg = p[gold[b]] > 1e-30f ? (double)p[gold[b]] : 1e-30;
			qn_cls_metrics_add(mt, (size_t)gold[b], best, -log(pg));
		}
	}
	free(pick);
	return 0;
}

static int fit_classifier(const char *model_arg)
{
	struct qn_err e;
	int rc = QN_EXIT_FAIL;
	char fp[65], path[4200];
	struct qn_gpt2 *m = NULL;
	struct qn_shard_dir *d = NULL;
	struct qn_gpt2_train *t = NULL;
	struct cls_head h = {.pad = -1};
	struct cls_docs tr = {0}, val = {0};
	struct qn_cls_metrics mt = {0};
	uint32_t *in = NULL;
	int *len = NULL, *gold = NULL;
	float *probs = NULL, *dh = NULL, *mom = NULL, *var = NULL;
	size_t *pick = NULL, *perm = NULL;
	FILE *metrics = NULL;

	if (opt.resume || opt.patience || opt.lora || opt.dpo || opt.mix || opt.ntask_weights ||
	    opt.stop_at)
		return qn_usage_error("--classify trains without --resume, --patience, --stop-at, "
				      "--lora, --dpo and task mixing (not built for classifiers)");
	if (make_dir(opt.output))
		return QN_EXIT_FAIL;
	m = qn_gpt2_load(model_arg, &e);
	if (!m) {
		qn_error("%s", e.msg);
		return QN_EXIT_FAIL;
	}
	qn_gpt2_set_threads(m, opt.threads);
	if (apply_freeze(m)) {
		rc = QN_EXIT_USAGE;
		goto out;
	}
	const struct qn_gpt2_config *c = &m->cfg;
	int T = opt.context ? opt.context : (c->n_positions < 1024 ? c->n_positions : 1024);
	int B = (int)opt.batch;
	if (T > c->n_positions) {
		qn_error("--context %d is longer than the model's %d positions", T, c->n_positions);
		goto out;
	}
	opt.context = T;
	if (opt.min_lr < 0)
		opt.min_lr = opt.lr / 10;
	d = qn_shard_dir_open(opt.data, &e);
	if (!d) {
		qn_error("%s", e.msg);
		goto out;
	}
	const struct qn_shard_dir_info *si = qn_shard_dir_info(d);
	if (model_fingerprint(m, model_arg, fp))
		goto out;
	if (strcmp(fp, si->fingerprint)) {
		qn_error("'%s' was encoded with tokenizer %.12s..., the model '%s' uses %.12s...: "
			 "encode the data with the model's tokenizer",
			 opt.data, si->fingerprint, model_arg, fp);
		goto out;
	}
	if (si->vocab_size > (uint32_t)c->vocab_size) {
		qn_error("'%s': token ids up to %u, the model's vocabulary has %d", opt.data,
			 si->vocab_size, c->vocab_size);
		goto out;
	}
	if (si->nlabels < 2) {
		qn_error("'%s' has %zu label%s: --classify needs shards of {\"text\",\"label\"} "
			 "lines with 2 or more labels",
			 opt.data, si->nlabels, si->nlabels == 1 ? "" : "s");
		goto out;
	}
	size_t skipped, vskipped;
	if (cls_docs_collect(d, QN_SHARD_TRAIN, si->nlabels, &tr, &skipped, &e) ||
	    cls_docs_collect(d, QN_SHARD_VAL, si->nlabels, &val, &vskipped, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (!tr.n) {
		qn_error("'%s': no labelled training document", opt.data);
		goto out;
	}
	if (skipped + vskipped)
		qn_warn("'%s': %zu documents without a label (or empty) left out", opt.data,
			skipped + vskipped);
	if (!val.n)
		qn_warn("'%s' has no labelled validation documents: no validation metrics",
			opt.data);
	uint32_t pad = si->eot >= 0 ? (uint32_t)si->eot : 0;
	if (cls_head_init(&h, si->nlabels, (size_t)c->n_embd, (const char *const *)si->labels,
			  si->eot, opt.seed, &e) ||
	    !(t = qn_gpt2_train_new(m, B, T, &e))) {
		qn_error("%s", e.msg);
		goto out;
	}
	size_t N = (size_t)B * T;
	in = malloc(N * sizeof *in);
	len = malloc((size_t)B * sizeof *len);
	gold = malloc((size_t)B * sizeof *gold);
	probs = malloc((size_t)B * h.k * sizeof *probs);
	dh = malloc(N * (size_t)c->n_embd * sizeof *dh);
	pick = malloc((size_t)B * sizeof *pick);
	perm = malloc(tr.n * sizeof *perm);
	mom = calloc(m->nparams, sizeof *mom); /* pages of frozen tensors never touched */
	var = calloc(m->nparams, sizeof *var);
	if (!mom || !var || !in || !len || !gold || !probs || !dh || !pick || !perm ||
	    qn_cls_metrics_init(&mt, h.k)) {
		qn_error("out of memory");
		goto out;
	}
	snprintf(path, sizeof path, "%s/metrics.jsonl", opt.output);
	const char *mpath = opt.metrics ? opt.metrics : path;
	metrics = fopen(mpath, "w");
	if (!metrics) {
		qn_error("cannot write '%s': %s", mpath, strerror(errno));
		goto out;
	}
	float pe = opt.dropout >= 0 ? (float)opt.dropout : c->embd_pdrop;
	float pa = opt.dropout >= 0 ? (float)opt.dropout : c->attn_pdrop;
	float pr = opt.dropout >= 0 ? (float)opt.dropout : c->resid_pdrop;
	struct qn_adamw o = {0, opt.beta1, opt.beta2, opt.eps, opt.wd};
	size_t at = tr.n;
	uint64_t epoch = 0, seen = 0;
	double t_start = now();
	int tty = isatty(2) && qn_verbosity >= 0;
	qn_info("classifier: %zu labels, %zu training and %zu validation documents", h.k, tr.n,
		val.n);
	for (long step = 0; step < opt.steps; step++) {
		double loss = 0, t0 = now();
		size_t right = 0;
		qn_gpt2_zero_grads(m);
		cls_head_zero_grads(&h);
		for (long a = 0; a < opt.accum; a++) {
			for (int b = 0; b < B; b++) {
				if (at == tr.n) { /* a new epoch: a new order */
					if (opt.shuffle)
						qn_loader_order(perm, tr.n, opt.seed, epoch);
					else
						for (size_t i = 0; i < tr.n; i++)
							perm[i] = i;
					epoch++;
					at = 0;
				}
				pick[b] = perm[at++];
			}
			int tb =
			    cls_rows(d, QN_SHARD_TRAIN, &tr, pick, B, T, pad, in, len, gold, &e);
			qn_gpt2_dropout(t, pe, pa, pr, dropout_key(step, a));
			const float *hid = tb < 0 ? NULL : qn_gpt2_forward_hidden(t, in, B, tb);
			if (!hid) {
				qn_error("%s",
					 tb < 0 ? e.msg : "the model changed after its buffers");
				goto out;
			}
			loss += cls_head_forward(&h, hid, len, gold, B, tb, probs, dh,
						 (double)B * (double)opt.accum);
			qn_gpt2_backward_hidden(t, dh);
			for (int b = 0; b < B; b++) {
				const float *p = probs + (size_t)b * h.k;
				size_t best = 0;
				for (size_t j = 1; j < h.k; j++)
					if (p[j] > p[best])
						best = j;
				right += best == (size_t)gold[b];
			}
		}
		loss /= (double)B * (double)opt.accum;
		seen += (uint64_t)B * (uint64_t)opt.accum;
		/* The global norm over the trunk and the head, clipped as one. */
		double tn = qn_gpt2_grad_norm(m), hn2 = cls_head_grad_sq(&h);
		double norm = sqrt(tn * tn + hn2);
		if (!isfinite(loss) || !isfinite(norm)) {
			qn_error("step %ld: the %s is not finite; stopped without saving", step + 1,
				 isfinite(loss) ? "gradient norm" : "loss");
			goto out;
		}
		if (opt.clip > 0 && norm > opt.clip) {
			double s = opt.clip / (norm + 1e-6);
			if (tn > 0)
				qn_gpt2_clip_grads(m, tn * s);
			cls_head_scale_grads(&h, (float)s);
		}
		o.lr = lr_at(step);
		qn_gpt2_adamw(m, mom, var, &o, step + 1);
		cls_head_adamw(&h, &o, step + 1);
		long done = step + 1;
		int eval_now = val.n && ((opt.eval_every > 0 && done % opt.eval_every == 0) ||
					 done == opt.steps);
		fprintf(
		    metrics,
		    "{\"step\":%ld,\"loss\":%.6f,\"accuracy\":%.4f,\"lr\":%.6g,\"grad_norm\":%.6f,"
		    "\"examples\":%llu,\"examples_per_s\":%.1f,\"elapsed\":%.3f",
		    done, loss, (double)right / ((double)B * (double)opt.accum), o.lr, norm,
		    (unsigned long long)seen, (double)B * (double)opt.accum / (now() - t0),
		    now() - t_start);
		if (eval_now) {
			qn_gpt2_dropout(t, 0, 0, 0, 0);
			qn_cls_metrics_release(&mt);
			if (qn_cls_metrics_init(&mt, h.k) ||
			    cls_evaluate(t, &h, d, &val, B, T, pad, in, len, gold, probs, &mt,
					 &e)) {
				qn_error("%s", e.msg);
				goto out;
			}
			fprintf(metrics,
				",\"val_loss\":%.6f,\"val_accuracy\":%.4f,\"val_macro_f1\":%.4f",
				mt.loss / (double)mt.n, qn_cls_accuracy(&mt), qn_cls_macro_f1(&mt));
		}
		fputs("}\n", metrics);
		fflush(metrics);
		if (tty)
			fprintf(stderr, "\rstep %ld/%ld  loss %.4f  lr %.3g  \033[K", done,
				opt.steps, loss, o.lr);
	}
	if (tty)
		fputc('\n', stderr);
	if (cls_save(m, &h, opt.output, &e) || copy_tokenizer(model_arg, opt.output, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (val.n) {
		json_t *j = qn_cls_metrics_json(&mt, (const char *const *)h.labels);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
		json_decref(j);
		snprintf(path, sizeof path, "%s/eval.json", opt.output);
		size_t n = s ? strlen(s) : 0;
		if (s)
			s[n] = '\n';
		int bad = !s || qn_write_file_atomic(path, s, n + 1, &e);
		free(s);
		if (bad) {
			qn_error("%s", s ? e.msg : "out of memory");
			goto out;
		}
		qn_info("validation: accuracy %.4f, macro-F1 %.4f over %llu documents",
			qn_cls_accuracy(&mt), qn_cls_macro_f1(&mt), (unsigned long long)mt.n);
	}
	const char *names[] = {"steps", "examples", "parameters", "labels"};
	int64_t vals[] = {opt.steps, (int64_t)seen, (int64_t)(m->nparams + h.k * h.c),
			  (int64_t)h.k};
	if (write_manifest(opt.output, model_arg, opt.data, names, vals, 4, fp))
		goto out;
	rc = QN_EXIT_OK;
out:
	if (metrics && fclose(metrics)) {
		qn_error("cannot write the metrics: %s", strerror(errno));
		rc = QN_EXIT_FAIL;
	}
	free(in);
	free(len);
	free(gold);
	free(probs);
	free(dh);
	free(pick);
	free(perm);
	qn_cls_metrics_release(&mt);
	cls_docs_release(&tr);
	cls_docs_release(&val);
	cls_head_release(&h);
	qn_gpt2_train_free(t);
	qn_shard_dir_close(d);
	free(mom);
	free(var);
	qn_gpt2_free(m);
	return rc;
}

static int cmd_fit(const char *model_arg)
{
	struct qn_err e = {{0}};
	struct fit f = {0};
	struct fit_state s = {.best_val = INFINITY, .best_step = -1};
	char resume_dir[4096] = "", fp[65], mpath[4096], tok_dir[4200];
	int rc = QN_EXIT_FAIL;

	if (!opt.data)
		return qn_usage_error("fit needs --data SHARDS");
	if (!opt.output)
		return qn_usage_error("fit needs -o DIR");
	if (qn_dist_rank() > 0)
		qn_verbosity = -1; /* rank 0 speaks for the run; the others' errors print */
	if (qn_dist_size() > 1 && (opt.dpo || opt.classify))
		return qn_usage_error(
		    "%s does not train under MPI (%d ranks): run it as one process",
		    opt.dpo ? "--dpo" : "--classify", qn_dist_size());
	if (opt.classify)
		return fit_classifier(model_arg);
	if (make_dir(opt.output))
		return QN_EXIT_FAIL;
	if (!opt.resume) {
		long *steps;
		size_t n = list_checkpoints(opt.output, &steps);
		free(steps);
		if (n) {
			qn_error(
			    "'%s' already holds checkpoints: go on with --resume, or train into "
			    "another directory",
			    opt.output);
			return QN_EXIT_FAIL;
		}
	}
	if (opt.resume) {
		long *steps;
		size_t n = list_checkpoints(opt.output, &steps);
		long last = n ? steps[n - 1] : -1;
		if (n)
			snprintf(resume_dir, sizeof resume_dir, "%s/checkpoint-%ld", opt.output,
				 steps[n - 1]);
		free(steps);
		if (!qn_dist_same((uint64_t)last)) {
			qn_error("the ranks see different checkpoints in '%s' (this one: %s): "
				 "-o must be a directory every rank shares",
				 opt.output, n ? resume_dir : "none");
			return QN_EXIT_FAIL;
		}
		if (!n)
			qn_warn("no checkpoint in '%s' yet: starting from '%s'", opt.output,
				model_arg);
	}
	f.model_dir = resume_dir[0] ? resume_dir : model_arg;
	f.m = qn_gpt2_load(f.model_dir, &e);
	if (!f.m) {
		qn_error("%s", e.msg);
		return QN_EXIT_FAIL;
	}
	qn_gpt2_set_threads(f.m, opt.threads);
	qn_dist_check_threads(f.m->threads);
	if (apply_freeze(f.m)) {
		rc = QN_EXIT_USAGE;
		goto out;
	}
	if (opt.lora) {
		/* The base is frozen whole; only the adapter trains. */
		for (size_t i = 0; i < f.m->ntensors; i++)
			qn_gpt2_freeze(f.m, i, 1);
		if (resume_dir[0] ? qn_gpt2_lora_load(f.m, resume_dir, &e)
				  : qn_gpt2_lora_add(f.m, opt.lora_r, (float)opt.lora_alpha,
						     opt.lora_targets, opt.seed, &e)) {
			qn_error("%s", e.msg);
			goto out;
		}
		if (!resume_dir[0])
			f.m->lora->dropout = (float)opt.lora_dropout;
	}
	const struct qn_gpt2_config *c = &f.m->cfg;
	int T = opt.context ? opt.context : (c->n_positions < 1024 ? c->n_positions : 1024);
	int B = (int)opt.batch;
	opt.context = T;
	if (opt.min_lr < 0)
		opt.min_lr = opt.lr / 10;
	if (opt.patience && !opt.eval_every) {
		qn_usage_error("--patience needs --eval-every N");
		rc = QN_EXIT_USAGE;
		goto out;
	}
	if (T > c->n_positions) {
		qn_error("--context %d is longer than the model's %d positions", T, c->n_positions);
		goto out;
	}
	f.train = qn_loader_new(opt.data, QN_SHARD_TRAIN, opt.seed, opt.shuffle, &e);
	if (!f.train) {
		qn_error("%s", e.msg);
		goto out;
	}
	const struct qn_shard_dir_info *si = qn_loader_info(f.train);
	if (model_fingerprint(f.m, f.model_dir, fp))
		goto out;
	if (strcmp(fp, si->fingerprint)) {
		qn_error("'%s' was encoded with tokenizer %.12s..., the model '%s' uses %.12s...: "
			 "encode the data with the model's tokenizer",
			 opt.data, si->fingerprint, f.model_dir, fp);
		goto out;
	}
	if (si->vocab_size > (uint32_t)c->vocab_size) {
		qn_error("'%s': token ids up to %u, the model's vocabulary has %d", opt.data,
			 si->vocab_size, c->vocab_size);
		goto out;
	}
	if (opt.mix || opt.ntask_weights) {
		size_t nt = si->ntasks ? si->ntasks : 1;
		double *tw = calloc(nt, sizeof *tw);
		struct qn_mix_opts mo = {QN_MIX_PROPORTIONAL, opt.mix_temperature, opt.task_cap,
					 tw};
		if (!tw) {
			qn_error("out of memory");
			goto out;
		}
		if (opt.mix && !strcmp(opt.mix, "temperature"))
			mo.strategy = QN_MIX_TEMPERATURE;
		if (opt.ntask_weights)
			mo.strategy = QN_MIX_EXPLICIT;
		for (size_t i = 0; i < opt.ntask_weights; i++) {
			const char *eq = strrchr(opt.task_weights[i], '=');
			size_t k = 0, len = eq ? (size_t)(eq - opt.task_weights[i]) : 0;
			while (k < si->ntasks && (strlen(si->tasks[k]) != len ||
						  strncmp(si->tasks[k], opt.task_weights[i], len)))
				k++;
			if (k == si->ntasks) {
				qn_error("--task-weight '%s': '%s' has no task of that name",
					 opt.task_weights[i], opt.data);
				free(tw);
				goto out;
			}
			tw[k] = strtod(eq + 1, NULL);
		}
		f.mix = qn_mix_new(opt.data, QN_SHARD_TRAIN, opt.seed, opt.shuffle, &mo, &e);
		free(tw);
		if (!f.mix) {
			qn_error("%s", e.msg);
			goto out;
		}
		for (size_t i = 0; i < qn_mix_ntasks(f.mix); i++)
			qn_info("task %s: %llu examples, weight %.4f", qn_mix_task_name(f.mix, i),
				(unsigned long long)qn_mix_task_docs(f.mix, i),
				qn_mix_weight(f.mix, i));
		struct qn_mix_opts vo = {QN_MIX_PROPORTIONAL, 1, 0, NULL};
		struct qn_err vme;
		f.vmix = qn_mix_new(opt.data, QN_SHARD_VAL, 0, 0, &vo, &vme); /* NULL: no val */
	}
	struct qn_err ve;
	if (!opt.dpo && (opt.dpo_precompute || opt.dpo_reference)) {
		qn_usage_error("--dpo-precompute and --dpo-reference are for --dpo");
		rc = QN_EXIT_USAGE;
		goto out;
	}
	if (opt.dpo) {
		if (opt.mix || opt.ntask_weights) {
			qn_usage_error("--dpo does not mix tasks");
			rc = QN_EXIT_USAGE;
			goto out;
		}
		f.ptrain = pairs_new(opt.data, QN_SHARD_TRAIN, opt.seed, opt.shuffle, &e);
		if (!f.ptrain) {
			qn_error("%s", e.msg);
			goto out;
		}
		f.pval = pairs_new(opt.data, QN_SHARD_VAL, 0, 0, &ve); /* NULL: no validation */
		if (!f.m->lora && !opt.dpo_reference) {
			/* The reference: the starting weights, whatever checkpoint resumes. */
			f.ref = qn_gpt2_load(model_arg, &e);
			if (!f.ref) {
				qn_error("%s", e.msg);
				goto out;
			}
			qn_gpt2_set_threads(f.ref, opt.threads);
		}
	}
	f.val = opt.dpo ? NULL : qn_loader_new(opt.data, QN_SHARD_VAL, 0, 0, &ve);
	if (!f.val && opt.patience) {
		qn_error("--patience needs a validation split: %s", ve.msg);
		goto out;
	}
	if (!f.val)
		qn_info("no validation: %s", ve.msg);

	int R = opt.dpo ? 2 * B : B; /* rows a micro-batch: a pair is two */
	size_t N = (size_t)R * T;
	f.t = qn_gpt2_train_new(f.m, R, T, &e);
	if (f.t && f.ref && !(f.tref = qn_gpt2_train_new(f.ref, R, T, &e))) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (opt.dpo) {
		f.dpo_ref = malloc((size_t)R * sizeof *f.dpo_ref);
		f.dpo_pol = malloc((size_t)R * sizeof *f.dpo_pol);
		f.dpo_scale = malloc((size_t)R * sizeof *f.dpo_scale);
		if (!f.dpo_ref || !f.dpo_pol || !f.dpo_scale) {
			qn_error("out of memory");
			goto out;
		}
	}
	/* The adapter's moments after the base's (whose frozen parts stay untouched). */
	size_t nmom = f.m->nparams + (f.m->lora ? f.m->lora->nparams : 0);
	f.mom = calloc(nmom, sizeof *f.mom);
	f.var = calloc(nmom, sizeof *f.var);
	/* A whole step's micro-batches: the loss is divided by their trained tokens. */
	size_t NA = N * (size_t)opt.accum;
	size_t scratch = qn_dist_size() > 1 ? N : 0; /* MPI: the other ranks' micro-batches */
	f.in = malloc((NA + scratch) * sizeof *f.in);
	f.tg = malloc((NA + scratch) * sizeof *f.tg);
	f.mask = malloc(NA + scratch);
	if (!f.t || !f.mom || !f.var || !f.in || !f.tg || !f.mask) {
		qn_error("%s", f.t ? "out of memory" : e.msg);
		goto out;
	}
	if (opt.dpo && (opt.dpo_precompute || opt.dpo_reference)) {
		/*
		 * The reference's log-probabilities once, before training (TRL's
		 * precompute_ref_log_probs), or from a file: then the reference model
		 * is dropped, and each step runs the policy alone.
		 */
		struct pairs *ps[2] = {f.ptrain, f.pval};
		char saved[4200];
		snprintf(saved, sizeof saved, "%s/%s", opt.output, DPO_REF_FILE);
		const char *from = opt.dpo_reference			   ? opt.dpo_reference
				   : resume_dir[0] && !access(saved, F_OK) ? saved
									   : NULL;
		if (from && dpo_reference_read(from, ps, T, &e)) {
			qn_error("%s", e.msg);
			goto out;
		}
		for (int k = 0; !from && k < 2; k++)
			if (ps[k] && pairs_precompute(ps[k], f.tref, f.m, f.t, B, T, f.in, f.tg,
						      f.mask, &e)) {
				qn_error("%s", e.msg);
				goto out;
			}
		if (!from && dpo_reference_write(saved, ps, T, &e)) {
			qn_error("cannot write the reference log-probabilities: %s", e.msg);
			goto out;
		}
		qn_info("reference log-probabilities of %zu training and %zu validation pairs %s "
			"'%s'",
			f.ptrain->n, f.pval ? f.pval->n : 0, from ? "from" : "saved in",
			from ? from : saved);
		qn_gpt2_train_free(f.tref);
		qn_gpt2_free(f.ref);
		f.tref = NULL;
		f.ref = NULL;
		for (int k = 0; k < 2; k++)
			if (ps[k] &&
			    !(ps[k]->rowpair = malloc((size_t)B * sizeof *ps[k]->rowpair))) {
				qn_error("out of memory");
				goto out;
			}
	}
	if (resume_dir[0]) {
		if (load_state(f.m, resume_dir, f.mom, f.var, &s, &e) ||
		    (!opt.dpo && qn_loader_seek(f.train, &s.pos, &e)) ||
		    (f.mix && s.mix && qn_mix_restore(f.mix, s.mix, &e))) {
			qn_error("%s", e.msg);
			goto out;
		}
		if (f.ptrain)
			f.ptrain->pos = s.pos;
		qn_info("resuming at step %ld from '%s'", s.step, resume_dir);
	}
	if (!qn_dist_in_sync(f.m)) {
		qn_error("the ranks start from different weights: every rank must read the same "
			 "MODEL and checkpoints");
		goto out;
	}
	if (opt.metrics)
		snprintf(mpath, sizeof mpath, "%s", opt.metrics);
	else
		snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", opt.output);
	if (resume_dir[0] && qn_dist_rank() == 0)
		trim_metrics(mpath, s.step);
	/*
	 * Rank 0 writes the metrics; the other ranks' lines go nowhere (the
	 * per-task validations among them still run on every rank).
	 */
	f.metrics = fopen(qn_dist_rank() ? "/dev/null" : mpath, resume_dir[0] ? "a" : "w");
	if (!f.metrics) {
		qn_error("cannot open '%s': %s", mpath, strerror(errno));
		goto out;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int tty = isatty(2) && qn_verbosity >= 0;
	double t_start = now(), last_draw = 0, val_loss = NAN;
	long last_saved = resume_dir[0] ? s.step : -1;
	struct qn_adamw o = {0, opt.beta1, opt.beta2, opt.eps, opt.wd};
	float pe = opt.dropout >= 0 ? (float)opt.dropout : c->embd_pdrop;
	float pa = opt.dropout >= 0 ? (float)opt.dropout : c->attn_pdrop;
	float pr = opt.dropout >= 0 ? (float)opt.dropout : c->resid_pdrop;
	if (pe > 0 || pa > 0 || pr > 0)
		qn_info("dropout: embeddings %g, attention %g, residual %g", (double)pe, (double)pa,
			(double)pr);
	long W = qn_dist_size(), rank = qn_dist_rank();
	while (s.step < opt.steps) {
		double t0 = now();
		double loss = 0;
		qn_gpt2_zero_grads(f.m);
		/*
		 * Read the step's micro-batches first and count their trained targets:
		 * every micro-batch divides by the step's total, so a masked (SFT)
		 * token weighs the same whichever micro-batch it falls in.
		 */
		size_t trained = 0;
		struct dpo_stats ds = {0};
		for (long a = 0; opt.dpo && a < opt.accum; a++) {
			size_t at = (size_t)a * N;
			for (int b = 0; b < B; b++)
				if (pairs_next(f.ptrain, f.in + at, f.tg + at, f.mask + at, b, T,
					       &e)) {
					qn_error("%s", e.msg);
					goto out;
				}
			qn_gpt2_dropout(f.t, pe, pa, pr, dropout_key(s.step, a));
			dpo_batch(f.t, f.m, f.tref, f.ptrain, f.in + at, f.tg + at, f.mask + at, B,
				  T, opt.dpo_beta, (double)B * (double)opt.accum, 1, f.dpo_ref,
				  f.dpo_pol, f.dpo_scale, &ds);
		}
		if (opt.dpo)
			loss = ds.loss / (double)ds.pairs;
		/*
		 * Under MPI every rank reads the step's W x accum micro-batches of the
		 * one stream, trains those numbered rank, rank + W, ... and counts the
		 * trained targets of all; the others' pass through a scratch window.
		 */
		for (long g = 0; !opt.dpo && g < opt.accum * W; g++) {
			size_t at = g % W == rank ? (size_t)(g / W) * N : NA;
			/* With mixing, each row of T comes from a drawn task. */
			for (int b = 0; f.mix && b < B; b++) {
				size_t rt = at + (size_t)b * T;
				if (qn_mix_next(f.mix, f.in + rt, f.tg + rt, f.mask + rt, (size_t)T,
						NULL, &e)) {
					qn_error("%s", e.msg);
					goto out;
				}
			}
			if (!f.mix &&
			    qn_loader_next(f.train, f.in + at, f.tg + at, f.mask + at, N, &e)) {
				qn_error("%s", e.msg);
				goto out;
			}
			for (size_t i = 0; i < N; i++)
				trained += f.mask[at + i] != 0;
		}
		for (long a = 0; !opt.dpo && a < opt.accum && trained; a++) {
			size_t at = (size_t)a * N;
			qn_gpt2_dropout(f.t, pe, pa, pr, dropout_key(s.step, a * W + rank));
			loss += qn_gpt2_forward(f.t, f.in + at, f.tg + at, f.mask + at,
						(double)trained, B, T, NULL, NULL);
			qn_gpt2_backward(f.t, 1.0f);
		}
		/* The ranks' shares of the step add up to the whole step's gradient (dist.h). */
		qn_dist_sum_grads(f.m);
		qn_dist_sum(&loss, 1);
		double norm =
		    opt.clip > 0 ? qn_gpt2_clip_grads(f.m, opt.clip) : qn_gpt2_grad_norm(f.m);
		if (!isfinite(loss) || !isfinite(norm)) {
			char last[4096] = "none";
			long *steps;
			size_t n = list_checkpoints(opt.output, &steps);
			if (n)
				snprintf(last, sizeof last, "'%s/checkpoint-%ld'", opt.output,
					 steps[n - 1]);
			free(steps);
			qn_error("step %ld: %s is not finite (loss %g, gradient norm %g); stopped "
				 "without saving; the last good checkpoint is %s",
				 s.step + 1, isfinite(loss) ? "the gradient norm" : "the loss",
				 loss, norm, last);
			goto out;
		}
		o.lr = lr_at(s.step);
		qn_gpt2_adamw(f.m, f.mom, f.var, &o, s.step + 1);
		qn_gpt2_lora_adamw(f.m, f.mom + f.m->nparams, f.var + f.m->nparams, &o, s.step + 1);
		s.step++;
		s.tokens += N * (uint64_t)opt.accum * (uint64_t)W;
		double dt = now() - t0;
		s.elapsed += dt;
		int eval_now =
		    (f.val || f.pval) && ((opt.eval_every > 0 && s.step % opt.eval_every == 0) ||
					  s.step == opt.steps || s.step == opt.stop_at);
		struct dpo_stats vs = {0};
		int early = 0;
		if (eval_now) {
			qn_gpt2_dropout(f.t, 0, 0, 0, 0); /* evaluation runs without dropout */
			if (opt.dpo) {
				/* DPO on the first eval-batches x batch validation pairs. */
				f.pval->pos.epoch = f.pval->pos.doc = 0;
				for (long k = 0; k < opt.eval_batches; k++) {
					for (int b = 0; b < B; b++)
						if (pairs_next(f.pval, f.in, f.tg, f.mask, b, T,
							       &e)) {
							qn_error("%s", e.msg);
							goto out;
						}
					dpo_batch(f.t, f.m, f.tref, f.pval, f.in, f.tg, f.mask, B,
						  T, opt.dpo_beta, 1, 0, f.dpo_ref, f.dpo_pol,
						  f.dpo_scale, &vs);
				}
				val_loss = vs.loss / (double)vs.pairs;
			} else {
				val_loss = evaluate(f.t, f.val, f.in, f.tg, f.mask, B, T, &e);
			}
			if (isnan(val_loss) && e.msg[0]) {
				qn_error("%s", e.msg);
				goto out;
			}
			if (opt.patience && val_loss < s.best_val - opt.min_delta) {
				s.best_val = val_loss;
				s.best_step = s.step;
				s.bad_evals = 0;
				if (rank == 0 && save_best(f.m, f.model_dir, opt.output, &e)) {
					qn_error("cannot write the best model: %s", e.msg);
					goto out;
				}
			} else if (opt.patience && ++s.bad_evals >= opt.patience) {
				early = 1;
			}
		}
		fprintf(
		    f.metrics,
		    "{\"step\":%ld,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,\"tokens\":%llu,"
		    "\"tokens_per_s\":%.1f,\"elapsed\":%.3f",
		    s.step, loss, o.lr, norm, (unsigned long long)s.tokens,
		    (double)N * (double)opt.accum * (double)W / dt, s.elapsed);
		if (eval_now)
			fprintf(f.metrics, ",\"val_loss\":%.6f", val_loss);
		if (opt.dpo)
			fprintf(f.metrics,
				",\"reward_margin\":%.6f,\"reward_chosen\":%.6f,"
				"\"reward_rejected\":%.6f,\"pref_acc\":%.4f",
				ds.margin / (double)ds.pairs, ds.chosen / (double)ds.pairs,
				ds.rejected / (double)ds.pairs, ds.correct / (double)ds.pairs);
		if (opt.dpo && eval_now)
			fprintf(f.metrics, ",\"val_pref_acc\":%.4f,\"val_reward_margin\":%.6f",
				vs.correct / (double)vs.pairs, vs.margin / (double)vs.pairs);
		int opened = 0;
		for (size_t k = 0; eval_now && f.vmix && k < qn_mix_ntasks(f.vmix); k++) {
			/* Validation per task: the first windows of the task's own stream. */
			struct qn_loader *tl = qn_mix_loader(f.vmix, k);
			if (!tl)
				continue;
			double tv = evaluate(f.t, tl, f.in, f.tg, f.mask, B, T, &e);
			if (isnan(tv) && e.msg[0]) {
				qn_error("%s", e.msg);
				goto out;
			}
			json_t *nm = json_string(qn_mix_task_name(f.vmix, k));
			char *q = json_dumps(nm, JSON_ENCODE_ANY);
			fprintf(f.metrics, "%s%s:%.6f", opened++ ? "," : ",\"val_loss_tasks\":{",
				q ? q : "\"?\"", tv);
			free(q);
			json_decref(nm);
		}
		if (opened)
			fputs("}", f.metrics);
		if (early)
			fprintf(f.metrics,
				",\"early_stop\":true,\"best_step\":%ld,\"best_val_loss\":%.6f",
				s.best_step, s.best_val);
		fputs("}\n", f.metrics);
		fflush(f.metrics);
		if (tty && (now() - last_draw > 0.25 || s.step == opt.steps)) {
			fprintf(stderr,
				"\rstep %ld/%ld  loss %.4f  val %.4f  lr %.3g  %.0f tok/s  \033[K",
				s.step, opt.steps, loss, val_loss, o.lr,
				(double)N * (double)opt.accum * (double)W / dt);
			last_draw = now();
		}
		int periodic = opt.save_every > 0 && s.step % opt.save_every == 0;
		int stop = qn_dist_max((int)stop_signal); /* a signal to any rank stops all */
		if (periodic || stop || early || s.step == opt.steps || s.step == opt.stop_at) {
			qn_loader_tell(f.train, &s.pos);
			if (f.ptrain)
				s.pos = f.ptrain->pos;
			if (f.mix) {
				free(s.mix);
				s.mix = qn_mix_state(f.mix);
			}
			if (!qn_dist_in_sync(f.m)) {
				qn_error("step %ld: the ranks' weights differ", s.step);
				goto out;
			}
			if (rank == 0 &&
			    save_checkpoint(f.m, f.mom, f.var, &s, f.model_dir, opt.output, &e)) {
				qn_error("cannot write checkpoint %ld: %s%s", s.step, e.msg,
					 last_saved >= 0 ? "; the earlier checkpoints are intact"
							 : "");
				goto out;
			}
			last_saved = s.step;
			/* The newest checkpoint is never pruned: the tokenizer comes from it now.
			 */
			snprintf(tok_dir, sizeof tok_dir, "%s/checkpoint-%ld", opt.output, s.step);
			f.model_dir = tok_dir;
		}
		if (stop) {
			if (tty)
				fputc('\n', stderr);
			qn_warn("stopped by signal %d at step %ld; checkpoint saved in "
				"'%s/checkpoint-%ld' (go on with --resume)",
				stop, s.step, opt.output, s.step);
			rc = 128 + stop;
			goto out;
		}
		if (early) {
			if (tty)
				fputc('\n', stderr);
			qn_warn(
			    "stopped early at step %ld: no better validation loss in %ld "
			    "evaluations; '%s' gets the model of step %ld (validation loss %.4f)",
			    s.step, opt.patience, opt.output, s.best_step, s.best_val);
			break;
		}
		if (s.step == opt.stop_at) {
			qn_info("stopped at step %ld of %ld (--stop-at); go on with --resume",
				s.step, opt.steps);
			break;
		}
	}
	if (tty)
		fputc('\n', stderr);
	if (rank > 0) { /* rank 0 writes the model and the manifest */
		rc = QN_EXIT_OK;
		goto out;
	}
	/*
	 * The final model in DIR itself, as Trainer.save_model puts it; with
	 * early stopping, the best one (as load_best_model_at_end does).
	 */
	if (opt.patience && s.best_step >= 0 && f.m->lora) {
		/* An adapter run's output is the adapter: the best one. */
		char from[4200], to[4200];
		static const char *const af[] = {"adapter_config.json",
						 "adapter_model.safetensors"};
		for (int i = 0; i < 2; i++) {
			snprintf(from, sizeof from, "%s/best/%s", opt.output, af[i]);
			snprintf(to, sizeof to, "%s/%s", opt.output, af[i]);
			if (copy_file(from, to, &e)) {
				qn_error("%s", e.msg);
				goto out;
			}
		}
		if (copy_tokenizer(f.model_dir, opt.output, &e)) {
			qn_error("%s", e.msg);
			goto out;
		}
	} else if (f.m->lora) {
		/* PEFT's save_pretrained: the adapter (and the tokenizer), not the base. */
		if (copy_tokenizer(f.model_dir, opt.output, &e) ||
		    qn_gpt2_lora_save(f.m, opt.output, model_arg, &e)) {
			qn_error("%s", e.msg);
			goto out;
		}
	} else if (opt.patience && s.best_step >= 0) {
		char best[4200];
		snprintf(best, sizeof best, "%s/best", opt.output);
		struct qn_gpt2 *bm = qn_gpt2_load(best, &e);
		int bad = !bm || qn_gpt2_save(bm, opt.output, &e);
		qn_gpt2_free(bm);
		if (bad || copy_tokenizer(f.model_dir, opt.output, &e)) {
			qn_error("%s", e.msg);
			goto out;
		}
	} else if (copy_tokenizer(f.model_dir, opt.output, &e) ||
		   qn_gpt2_save(f.m, opt.output, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	const char *names[] = {"steps", "tokens", "parameters", "ranks"};
	int64_t vals[] = {s.step, (int64_t)s.tokens, (int64_t)f.m->nparams, W};
	if (write_manifest(opt.output, model_arg, opt.data, names, vals, W > 1 ? 4 : 3, fp))
		goto out;
	qn_info("%ld steps, %llu tokens, %.1f s", s.step, (unsigned long long)s.tokens,
		now() - t_start);
	rc = QN_EXIT_OK;
out:
	if (f.metrics && fflush(f.metrics)) {
		qn_error("cannot write '%s': %s", mpath, strerror(errno));
		rc = QN_EXIT_FAIL;
	}
	free(s.mix);
	fit_release(&f);
	return rc;
}

/* ---- sample and score: JSON lines in and out ---------------------------------- */

struct io {
	struct qn_bpe *tok;
	struct qn_bpe_scratch *scratch;
	struct qn_gpt2 *m;
	struct qn_gpt2_infer *g;
	struct qn_wr *out;
	struct qn_bpe_ids ids;
	struct qn_buf text, line;
	float *logits;
	struct qn_gpt2_sampler *sampler;
	int bad; /* input lines that could not be used */
	int allow_special;
};

static int io_open(struct io *io, const char *model_dir)
{
	struct qn_err e;
	memset(io, 0, sizeof *io);
	io->m = qn_gpt2_load(model_dir, &e);
	if (!io->m) {
		qn_error("%s", e.msg);
		return -1;
	}
	qn_gpt2_set_threads(io->m, opt.threads);
	if (opt.adapter && qn_gpt2_lora_load(io->m, opt.adapter, &e)) {
		qn_error("%s", e.msg);
		return -1;
	}
	io->allow_special = opt.allow_special;
	io->tok = model_tokenizer(model_dir);
	if (!io->tok)
		return -1;
	if (qn_bpe_vocab_size(io->tok) > (uint32_t)io->m->cfg.vocab_size) {
		qn_error("'%s': the tokenizer has %u ids, the model %d", model_dir,
			 qn_bpe_vocab_size(io->tok), io->m->cfg.vocab_size);
		return -1;
	}
	io->scratch = qn_bpe_scratch_new(io->tok);
	io->g = qn_gpt2_infer_new(io->m, &e);
	if (!io->g || !io->scratch) {
		qn_error("%s", io->g ? "out of memory" : e.msg);
		return -1;
	}
	io->logits =
	    malloc((size_t)io->m->cfg.n_positions * io->m->cfg.vocab_size * sizeof *io->logits);
	if (!io->logits) {
		qn_error("out of memory");
		return -1;
	}
	qn_bpe_ids_init(&io->ids, (size_t)1 << 26);
	qn_buf_init(&io->text, (size_t)1 << 28);
	qn_buf_init(&io->line, (size_t)1 << 28);
	io->out = qn_wr_open(opt.output ? opt.output : "-", 0, &e);
	if (!io->out) {
		qn_error("%s", e.msg);
		return -1;
	}
	return 0;
}

static int io_close(struct io *io, int rc)
{
	struct qn_err e;
	if (io->out) {
		if (rc == QN_EXIT_OK || io->bad) {
			if (qn_wr_commit(io->out, NULL, &e)) {
				qn_error("%s", e.msg);
				rc = QN_EXIT_FAIL;
			}
		} else {
			qn_wr_abort(io->out);
		}
	}
	qn_gpt2_infer_free(io->g);
	qn_gpt2_free(io->m);
	qn_bpe_scratch_free(io->scratch);
	qn_bpe_free(io->tok);
	qn_bpe_ids_release(&io->ids);
	qn_buf_release(&io->text);
	qn_buf_release(&io->line);
	free(io->logits);
	if (rc == QN_EXIT_OK && io->bad)
		rc = QN_EXIT_FAIL;
	return rc;
}

/* Appends the ids of s to io->ids. */
static int encode(struct io *io, const char *s, size_t n, struct qn_err *e)
{
	return qn_bpe_encode(io->tok, io->scratch, s, n,
			     io->allow_special ? QN_BPE_ALLOW_SPECIAL : 0, &io->ids, e);
}

/* Writes o as one line; 0 or -1 (an I/O error, reported). */
static int emit(struct io *io, json_t *o)
{
	struct qn_err e;
	char *s = json_dumps(o, JSON_COMPACT);
	if (!s) {
		qn_error("out of memory");
		return -1;
	}
	size_t n = strlen(s);
	s[n] = '\n';
	int rc = qn_wr_write(io->out, s, n + 1, &e);
	free(s);
	if (rc)
		qn_error("%s", e.msg);
	return rc;
}

/* A JSON string of bytes that may end inside a character or hold invalid UTF-8. */
static json_t *text_json(const char *s, size_t n)
{
	struct qn_buf b;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	qn_utf8_repair(&b, s, n);
	json_t *v = json_stringn(b.data ? b.data : "", b.len);
	qn_buf_release(&b);
	return v;
}

typedef int (*line_fn)(struct io *io, json_t *o, const char *where, uint64_t index);

/* Runs fn over every JSON object line of the inputs; bad lines are reported and skipped. */
static int each_line(struct io *io, char **files, int nfiles, line_fn fn)
{
	static char *stdin_only[] = {"-"};
	struct qn_err e;
	uint64_t index = 0;
	if (nfiles == 0) {
		files = stdin_only;
		nfiles = 1;
	}
	for (int i = 0; i < nfiles; i++) {
		struct qn_rd *r = qn_rd_open(files[i], 0, &e);
		if (!r) {
			qn_error("%s", e.msg);
			io->bad++;
			continue;
		}
		const char *name = strcmp(files[i], "-") ? files[i] : "stdin";
		uint64_t lineno = 0;
		int got;
		while ((got = qn_rd_line(r, &io->line, (size_t)1 << 28, &e)) != 0) {
			char where[4200];
			lineno++;
			snprintf(where, sizeof where, "%s:%llu", name, (unsigned long long)lineno);
			if (got == -1) {
				qn_error("%s", e.msg);
				io->bad++;
				break;
			}
			if (got == QN_RD_TOOLONG) {
				qn_error("%s: line longer than 256 MiB", where);
				io->bad++;
				continue;
			}
			if (io->line.len == 0)
				continue;
			json_error_t je;
			json_t *o = json_loadb(io->line.data, io->line.len, 0, &je);
			if (!json_is_object(o)) {
				qn_error("%s: %s", where, o ? "not a JSON object" : je.text);
				io->bad++;
				json_decref(o);
				continue;
			}
			int rc = fn(io, o, where, index++);
			json_decref(o);
			if (rc < 0) {
				qn_rd_close(r);
				return -1;
			}
		}
		qn_rd_close(r);
	}
	return 0;
}

/* ---- sample -------------------------------------------------------------------- */

/* The end of the first stop string in text[0..n), or n. */
static size_t stop_at(const char *text, size_t n, int *hit)
{
	size_t best = n;
	*hit = 0;
	for (size_t i = 0; i < opt.nstops; i++) {
		const char *p = memmem(text, n, opt.stops[i], strlen(opt.stops[i]));
		if (p && (size_t)(p - text) < best) {
			best = (size_t)(p - text);
			*hit = 1;
		}
	}
	return best;
}

/* qn_gpt2_generate's stop test: a --stop string in the decoded tokens. */
static int hits_stop(void *arg, const uint32_t *out, size_t n)
{
	struct io *io = arg;
	struct qn_err e;
	int hit = 0;
	qn_buf_reset(&io->text);
	if (qn_bpe_decode(io->tok, out, n, &io->text, &e) == 0)
		stop_at(io->text.data ? io->text.data : "", io->text.len, &hit);
	return hit;
}

static int sample_line(struct io *io, json_t *o, const char *where, uint64_t index)
{
	struct qn_err e;
	const struct qn_gpt2_config *c = &io->m->cfg;
	json_t *p = json_object_get(o, "prompt");
	if (!p)
		p = json_object_get(o, "text");
	if (!json_is_string(p)) {
		qn_error("%s: no \"prompt\" string", where);
		io->bad++;
		return 0;
	}
	qn_bpe_ids_reset(&io->ids);
	if (encode(io, json_string_value(p), json_string_length(p), &e)) {
		qn_error("%s: %s", where, e.msg);
		io->bad++;
		return 0;
	}
	size_t np = io->ids.n;
	/* Prompt tokens kept: the last ones that leave room for one new token. */
	uint32_t *ids = io->ids.v;
	size_t skip = 0, keep = np;
	uint32_t eot_only = (uint32_t)c->eos_token_id;
	if (np == 0 && c->eos_token_id < 0) {
		qn_error(
		    "%s: an empty prompt, and the model has no end-of-text token to start from",
		    where);
		io->bad++;
		return 0;
	}
	if (np == 0) {
		ids = &eot_only;
		keep = 1;
	} else if (np >= (size_t)c->n_positions) {
		skip = np - (size_t)c->n_positions + 1;
		keep = np - skip;
		qn_warn("%s: the prompt's %zu tokens are cut to the last %zu", where, np, keep);
	}
	uint64_t rng = opt.seed ^ (index * 0xd1b54a32d192ed03ull);
	struct qn_bpe_ids gen = {0};
	gen.v = malloc(((size_t)opt.max_tokens + 1) * sizeof *gen.v);
	if (!gen.v) {
		qn_error("out of memory");
		return -1;
	}
	int reason;
	long got = qn_gpt2_generate(io->g, io->sampler, ids + skip, keep, opt.max_tokens,
				    c->eos_token_id, &rng, io->logits, gen.v,
				    opt.nstops ? hits_stop : NULL, io, &reason, &e);
	if (got < 0) {
		qn_error("%s: %s", where, e.msg);
		io->bad++;
		free(gen.v);
		return 0;
	}
	gen.n = (size_t)got;
	const char *finish = reason == QN_GEN_LENGTH ? "length" : "stop";
	qn_buf_reset(&io->text);
	if (qn_bpe_decode(io->tok, gen.v, gen.n, &io->text, &e)) {
		qn_error("%s: %s", where, e.msg);
		io->bad++;
		free(gen.v);
		return 0;
	}
	int hit;
	size_t cut = stop_at(io->text.data ? io->text.data : "", io->text.len, &hit);
	json_t *r = json_deep_copy(o);
	json_object_set_new(r, "completion", text_json(io->text.data ? io->text.data : "", cut));
	json_object_set_new(r, "finish_reason", json_string(finish));
	json_object_set_new(r, "prompt_tokens", json_integer((json_int_t)keep));
	json_object_set_new(r, "completion_tokens", json_integer((json_int_t)gen.n));
	free(gen.v);
	int rc = emit(io, r);
	json_decref(r);
	return rc;
}

static int cmd_sample(const char *model_dir, char **files, int nfiles)
{
	struct io io;
	int rc = QN_EXIT_FAIL;
	if (io_open(&io, model_dir) == 0) {
		io.sampler = qn_gpt2_sampler_new(io.m->cfg.vocab_size, opt.temperature, opt.top_k,
						 opt.top_p);
		if (!io.sampler)
			qn_error("out of memory");
		else if (each_line(&io, files, nfiles, sample_line) == 0)
			rc = QN_EXIT_OK;
		qn_gpt2_sampler_free(io.sampler);
	}
	return io_close(&io, rc);
}

/* ---- score ---------------------------------------------------------------------- */

/* log p(target) under logits (V), and whether target is the argmax. */
static double logprob(const float *logits, int V, uint32_t target, int *greedy)
{
	float mx = logits[0];
	int best = 0;
	for (int j = 1; j < V; j++)
		if (logits[j] > mx) {
			mx = logits[j];
			best = j;
		}
	double s = 0;
	for (int j = 0; j < V; j++)
		s += exp((double)logits[j] - mx);
	*greedy = (uint32_t)best == target;
	return (double)logits[target] - mx - log(s);
}

/*
 * Scores seq[first .. n) given what precedes each token, in windows of at
 * most n_positions inputs that each add up to stride new targets.
 */
static int score_seq(struct io *io, const uint32_t *seq, size_t n, size_t first, json_t *lps,
		     json_t *toks, double *sum, int *all_greedy, struct qn_err *e)
{
	const struct qn_gpt2_config *c = &io->m->cfg;
	size_t ctx = (size_t)c->n_positions, done = first; /* targets below done are scored */
	size_t stride = ctx;
	*sum = 0;
	*all_greedy = 1;
	while (done < n) {
		size_t end = done + stride < n ? done + stride : n; /* targets up to end-1 */
		size_t s0 = end - 1 > ctx ? end - 1 - ctx : 0;	    /* inputs [s0, end-1) */
		qn_gpt2_infer_reset(io->g);
		if (qn_gpt2_infer_step(io->g, seq + s0, (int)(end - 1 - s0), io->logits, 1, e))
			return -1;
		for (size_t j = done; j < end; j++) {
			int g;
			double lp = logprob(io->logits + (j - 1 - s0) * (size_t)c->vocab_size,
					    c->vocab_size, seq[j], &g);
			*sum += lp;
			*all_greedy &= g;
			json_array_append_new(lps, json_real(lp));
			json_array_append_new(toks, json_integer(seq[j]));
		}
		done = end;
	}
	return 0;
}

static int score_line(struct io *io, json_t *o, const char *where, uint64_t index)
{
	struct qn_err e;
	const struct qn_gpt2_config *c = &io->m->cfg;
	json_t *text = json_object_get(o, "text"), *ctxj = json_object_get(o, "context");
	json_t *cont = json_object_get(o, "continuation");
	size_t first;
	qn_bpe_ids_reset(&io->ids);
	if (json_is_string(ctxj) && json_is_string(cont)) {
		/* lm-eval's pair encoding: the context's trailing spaces go with the continuation.
		 */
		const char *cs = json_string_value(ctxj), *ks = json_string_value(cont);
		size_t cn = json_string_length(ctxj), kn = json_string_length(cont), sp = 0;
		while (sp < cn && cs[cn - 1 - sp] == ' ')
			sp++;
		qn_buf_reset(&io->text);
		qn_buf_add(&io->text, cs, cn);
		qn_buf_add(&io->text, ks, kn);
		struct qn_bpe_ids ctx_ids;
		qn_bpe_ids_init(&ctx_ids, (size_t)1 << 26);
		int bad =
		    qn_bpe_encode(io->tok, io->scratch, cs, cn - sp,
				  io->allow_special ? QN_BPE_ALLOW_SPECIAL : 0, &ctx_ids, &e) ||
		    encode(io, io->text.data, io->text.len, &e);
		first = ctx_ids.n;
		qn_bpe_ids_release(&ctx_ids);
		if (bad) {
			qn_error("%s: %s", where, e.msg);
			io->bad++;
			return 0;
		}
		if (first > io->ids.n)
			first = io->ids.n;
	} else if (json_is_string(text)) {
		if (encode(io, json_string_value(text), json_string_length(text), &e)) {
			qn_error("%s: %s", where, e.msg);
			io->bad++;
			return 0;
		}
		first = 0;
	} else {
		qn_error("%s: needs a \"text\" string, or \"context\" and \"continuation\"", where);
		io->bad++;
		return 0;
	}
	/* A first target needs something before it: the end-of-text token when there is one. */
	uint32_t *seq = io->ids.v;
	size_t n = io->ids.n;
	uint32_t *withsep = NULL;
	if (first == 0 && c->eos_token_id >= 0 && n > 0) {
		withsep = malloc((n + 1) * sizeof *withsep);
		if (!withsep) {
			qn_error("out of memory");
			return -1;
		}
		withsep[0] = (uint32_t)c->eos_token_id;
		memcpy(withsep + 1, seq, n * sizeof *seq);
		seq = withsep;
		n++;
		first = 1;
	} else if (first == 0) {
		first = 1; /* the first token has no context to be scored in */
	}
	json_t *lps = json_array(), *toks = json_array();
	double sum = 0;
	int greedy = 1;
	int rc = score_seq(io, seq, n, first, lps, toks, &sum, &greedy, &e);
	free(withsep);
	if (rc) {
		qn_error("%s: %s", where, e.msg);
		io->bad++;
		json_decref(lps);
		json_decref(toks);
		return 0;
	}
	json_t *r = json_deep_copy(o);
	json_object_set_new(r, "n_tokens", json_integer((json_int_t)json_array_size(lps)));
	json_object_set_new(r, "sum_logprob", json_real(sum));
	json_object_set_new(r, "is_greedy", json_boolean(greedy));
	json_object_set_new(r, "tokens", toks);
	json_object_set_new(r, "logprobs", lps);
	rc = emit(io, r);
	json_decref(r);
	(void)index;
	return rc;
}

static int cmd_score(const char *model_dir, char **files, int nfiles)
{
	struct io io;
	int rc = QN_EXIT_FAIL;
	if (io_open(&io, model_dir) == 0 && each_line(&io, files, nfiles, score_line) == 0)
		rc = QN_EXIT_OK;
	return io_close(&io, rc);
}

/* ---- classify: a GPT-2 classifier over {"text"} lines ------------------------- */

/* A batch of documents waiting for one forward pass. */
struct cls_batch {
	struct cls_head head;
	struct qn_gpt2_train *t;
	int B, T;
	uint32_t *in; /* B rows of T */
	int *len, *gold;
	float *probs;
	json_t **pending; /* the input objects, one per row */
	int n;
	struct qn_cls_metrics mt;
	int unknown_labels; /* gold labels the model does not have */
};

static struct cls_batch g_cls;

/* The gold label id of o's "label" (a name or an id); -1: none or unknown. */
static int cls_gold(const struct cls_head *h, json_t *o)
{
	json_t *l = json_object_get(o, "label");
	if (json_is_integer(l) && json_integer_value(l) >= 0 &&
	    json_integer_value(l) < (json_int_t)h->k) {
		/* An integer names the label of that name when there is one, else the id. */
		char s[32];
		snprintf(s, sizeof s, "%lld", (long long)json_integer_value(l));
		for (size_t j = 0; j < h->k; j++)
			if (!strcmp(h->labels[j], s))
				return (int)j;
		return (int)json_integer_value(l);
	}
	if (json_is_string(l)) {
		for (size_t j = 0; j < h->k; j++)
			if (!strcmp(h->labels[j], json_string_value(l)))
				return (int)j;
	}
	if (l && !json_is_null(l))
		g_cls.unknown_labels++;
	return -1;
}

/* The input object plus "prediction": {"label","score","probs"}. */
static json_t *prediction_json(const struct cls_head *h, const float *p, long top_k)
{
	size_t best = 0, k = h->k;
	for (size_t j = 1; j < k; j++)
		if (p[j] > p[best])
			best = j;
	json_t *pr = json_object(), *probs = json_object();
	/* Every label, or the top_k most probable, in descending order. */
	size_t want = top_k > 0 && (size_t)top_k < k ? (size_t)top_k : k;
	unsigned char *used = calloc(k, 1);
	if (!pr || !probs || !used) {
		free(used);
		json_decref(pr);
		json_decref(probs);
		return NULL;
	}
	for (size_t r = 0; r < want; r++) {
		size_t b = k;
		for (size_t j = 0; j < k; j++)
			if (!used[j] && (b == k || p[j] > p[b]))
				b = j;
		used[b] = 1;
		json_object_set_new(probs, h->labels[b], json_real(p[b]));
	}
	free(used);
	json_object_set_new(pr, "label", json_string(h->labels[best]));
	json_object_set_new(pr, "score", json_real(p[best]));
	json_object_set_new(pr, "probs", probs);
	return pr;
}

/* Classifies the waiting rows and writes them out; 0 or -1 (reported). */
static int cls_flush(struct io *io)
{
	struct cls_batch *c = &g_cls;
	if (!c->n)
		return 0;
	int tmax = 1, rc = 0;
	for (int b = 0; b < c->n; b++)
		tmax = c->len[b] > tmax ? c->len[b] : tmax;
	for (int b = 0; b < c->n; b++) {
		memmove(c->in + (size_t)b * tmax, c->in + (size_t)b * c->T,
			(size_t)c->len[b] * sizeof *c->in);
		for (int j = c->len[b]; j < tmax; j++)
			c->in[(size_t)b * tmax + j] =
			    (uint32_t)(c->head.pad >= 0 ? c->head.pad : 0);
	}
	const float *hid = qn_gpt2_forward_hidden(c->t, c->in, c->n, tmax);
	if (!hid) {
		qn_error("the model changed after its buffers");
		return -1;
	}
	cls_head_forward(&c->head, hid, c->len, NULL, c->n, tmax, c->probs, NULL, 1);
	for (int b = 0; b < c->n; b++) {
		const float *p = c->probs + (size_t)b * c->head.k;
		json_t *pr = prediction_json(&c->head, p, opt.top_k);
		if (!pr || json_object_set_new(c->pending[b], "prediction", pr)) {
			qn_error("out of memory");
			rc = -1;
		}
		if (!rc && c->gold[b] >= 0) {
			size_t best = 0;
			for (size_t j = 1; j < c->head.k; j++)
				if (p[j] > p[best])
					best = j;
			double pg = p[c->gold[b]] > 1e-30f ? (double)p[c->gold[b]] : 1e-30;
			qn_cls_metrics_add(&c->mt, (size_t)c->gold[b], best, -log(pg));
		}
		if (!rc)
			rc = emit(io, c->pending[b]);
		json_decref(c->pending[b]);
	}
	c->n = 0;
	return rc;
}

static int classify_line(struct io *io, json_t *o, const char *where, uint64_t index)
{
	struct qn_err e;
	struct cls_batch *c = &g_cls;
	json_t *tx = json_object_get(o, "text");
	if (!json_is_string(tx)) {
		qn_error("%s: no \"text\" string", where);
		io->bad++;
		return 0;
	}
	io->ids.n = 0;
	if (encode(io, json_string_value(tx), json_string_length(tx), &e)) {
		qn_error("%s: %s", where, e.msg);
		io->bad++;
		return 0;
	}
	if (!io->ids.n) {
		qn_error("%s: empty \"text\": nothing to classify", where);
		io->bad++;
		return 0;
	}
	/* The first T tokens, as training truncated them. */
	int n = io->ids.n < (size_t)c->T ? (int)io->ids.n : c->T;
	memcpy(c->in + (size_t)c->n * c->T, io->ids.v, (size_t)n * sizeof *c->in);
	c->len[c->n] = n;
	c->gold[c->n] = cls_gold(&c->head, o);
	c->pending[c->n++] = json_incref(o);
	return c->n == c->B ? cls_flush(io) : 0;
}

static int cmd_classify(const char *model_dir, char **files, int nfiles)
{
	struct qn_err e;
	struct io io;
	struct cls_batch *c = &g_cls;
	int rc = QN_EXIT_FAIL;
	memset(&io, 0, sizeof io);
	memset(c, 0, sizeof *c);
	if (opt.adapter) {
		qn_error("--adapter: a classifier takes no adapter (merge it first)");
		return QN_EXIT_USAGE;
	}
	io.m = cls_load(model_dir, &c->head, &e);
	if (!io.m) {
		qn_error("%s", e.msg);
		return QN_EXIT_FAIL;
	}
	qn_gpt2_set_threads(io.m, opt.threads);
	const struct qn_gpt2_config *cf = &io.m->cfg;
	c->B = opt.batch_set ? (int)opt.batch : 16;
	c->T = opt.context ? opt.context : (cf->n_positions < 1024 ? cf->n_positions : 1024);
	if (c->T > cf->n_positions) {
		qn_error("--context %d is longer than the model's %d positions", c->T,
			 cf->n_positions);
		goto out;
	}
	io.allow_special = opt.allow_special;
	io.tok = model_tokenizer(model_dir);
	if (!io.tok)
		goto out;
	io.scratch = qn_bpe_scratch_new(io.tok);
	c->t = qn_gpt2_train_new(io.m, c->B, c->T, &e);
	c->in = malloc((size_t)c->B * c->T * sizeof *c->in);
	c->len = malloc((size_t)c->B * sizeof *c->len);
	c->gold = malloc((size_t)c->B * sizeof *c->gold);
	c->probs = malloc((size_t)c->B * c->head.k * sizeof *c->probs);
	c->pending = calloc((size_t)c->B, sizeof *c->pending);
	if (!c->t || !io.scratch || !c->in || !c->len || !c->gold || !c->probs || !c->pending ||
	    qn_cls_metrics_init(&c->mt, c->head.k)) {
		qn_error("%s", c->t ? "out of memory" : e.msg);
		goto out;
	}
	qn_bpe_ids_init(&io.ids, (size_t)1 << 26);
	qn_buf_init(&io.text, (size_t)1 << 28);
	qn_buf_init(&io.line, (size_t)1 << 28);
	io.out = qn_wr_open(opt.output ? opt.output : "-", 0, &e);
	if (!io.out) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (each_line(&io, files, nfiles, classify_line) || cls_flush(&io))
		goto out;
	if (c->unknown_labels)
		qn_warn("%d inputs carry a label the model does not have: not scored",
			c->unknown_labels);
	if (opt.metrics) {
		json_t *j = qn_cls_metrics_json(&c->mt, (const char *const *)c->head.labels);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
		json_decref(j);
		size_t n = s ? strlen(s) : 0;
		if (s)
			s[n] = '\n';
		int bad = !s || qn_write_file_atomic(opt.metrics, s, n + 1, &e);
		free(s);
		if (bad) {
			qn_error("%s", s ? e.msg : "out of memory");
			goto out;
		}
	}
	rc = QN_EXIT_OK;
out:
	for (int b = 0; b < c->n; b++)
		json_decref(c->pending[b]);
	qn_gpt2_train_free(c->t);
	free(c->in);
	free(c->len);
	free(c->gold);
	free(c->probs);
	free(c->pending);
	qn_cls_metrics_release(&c->mt);
	cls_head_release(&c->head);
	return io_close(&io, rc);
}

/* ---- merge ---------------------------------------------------------------------- */

/* MODEL + --adapter DIR -> a full checkpoint in -o OUT with the adapter folded in. */
static int cmd_merge(const char *model_dir)
{
	struct qn_err e;
	if (!opt.adapter)
		return qn_usage_error("merge needs --adapter DIR");
	if (!opt.output)
		return qn_usage_error("merge needs -o DIR");
	struct qn_gpt2 *m = qn_gpt2_load(model_dir, &e);
	int rc = QN_EXIT_FAIL;
	if (!m) {
		qn_error("%s", e.msg);
		return rc;
	}
	qn_gpt2_set_threads(m, opt.threads);
	if (qn_gpt2_lora_load(m, opt.adapter, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_gpt2_lora_merge(m);
	if (make_dir(opt.output))
		goto out;
	if (copy_tokenizer(model_dir, opt.output, &e) || qn_gpt2_save(m, opt.output, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	const char *names[] = {"parameters"};
	int64_t vals[] = {(int64_t)m->nparams};
	if (write_manifest(opt.output, model_dir, NULL, names, vals, 1, m->cfg.tokenizer) == 0)
		rc = QN_EXIT_OK;
out:
	qn_gpt2_free(m);
	return rc;
}

/* ---- main ------------------------------------------------------------------------ */

enum {
	OPT_ENCODING = 256,
	OPT_CONFIG,
	OPT_LAYERS,
	OPT_HEADS,
	OPT_WIDTH,
	OPT_CONTEXT,
	OPT_INNER,
	OPT_VOCAB,
	OPT_DATA,
	OPT_STEPS,
	OPT_BATCH,
	OPT_ACCUM,
	OPT_LR,
	OPT_MIN_LR,
	OPT_WARMUP,
	OPT_SCHEDULE,
	OPT_WD,
	OPT_BETA1,
	OPT_BETA2,
	OPT_EPS,
	OPT_CLIP,
	OPT_SEED,
	OPT_NO_SHUFFLE,
	OPT_EVAL_EVERY,
	OPT_EVAL_BATCHES,
	OPT_SAVE_EVERY,
	OPT_KEEP,
	OPT_METRICS,
	OPT_RESUME,
	OPT_STOP_AT,
	OPT_CLASSIFY,
	OPT_DPO_PRECOMPUTE,
	OPT_DPO_REFERENCE,
	OPT_PATIENCE,
	OPT_FREEZE,
	OPT_LORA,
	OPT_DROPOUT,
	OPT_MIX,
	OPT_DPO,
	OPT_DPO_BETA,
	OPT_MIX_TEMPERATURE,
	OPT_TASK_WEIGHT,
	OPT_TASK_CAP,
	OPT_LORA_R,
	OPT_LORA_ALPHA,
	OPT_LORA_DROPOUT,
	OPT_LORA_TARGETS,
	OPT_ADAPTER,
	OPT_MIN_DELTA,
	OPT_MAX_TOKENS,
	OPT_TEMPERATURE,
	OPT_TOP_K,
	OPT_TOP_P,
	OPT_STOP,
	OPT_SHAPE,
	OPT_ALLOW_SPECIAL,
};

static const struct option longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"tokenizer", required_argument, NULL, 't'},
    {"threads", required_argument, NULL, 'j'},
    {"encoding", required_argument, NULL, OPT_ENCODING},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"heads", required_argument, NULL, OPT_HEADS},
    {"width", required_argument, NULL, OPT_WIDTH},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"inner", required_argument, NULL, OPT_INNER},
    {"vocab", required_argument, NULL, OPT_VOCAB},
    {"data", required_argument, NULL, OPT_DATA},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"accum", required_argument, NULL, OPT_ACCUM},
    {"lr", required_argument, NULL, OPT_LR},
    {"min-lr", required_argument, NULL, OPT_MIN_LR},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"weight-decay", required_argument, NULL, OPT_WD},
    {"beta1", required_argument, NULL, OPT_BETA1},
    {"beta2", required_argument, NULL, OPT_BETA2},
    {"eps", required_argument, NULL, OPT_EPS},
    {"clip", required_argument, NULL, OPT_CLIP},
    {"seed", required_argument, NULL, OPT_SEED},
    {"no-shuffle", no_argument, NULL, OPT_NO_SHUFFLE},
    {"eval-every", required_argument, NULL, OPT_EVAL_EVERY},
    {"eval-batches", required_argument, NULL, OPT_EVAL_BATCHES},
    {"save-every", required_argument, NULL, OPT_SAVE_EVERY},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"patience", required_argument, NULL, OPT_PATIENCE},
    {"stop-at", required_argument, NULL, OPT_STOP_AT},
    {"classify", no_argument, NULL, OPT_CLASSIFY},
    {"freeze", required_argument, NULL, OPT_FREEZE},
    {"lora", no_argument, NULL, OPT_LORA},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"mix", required_argument, NULL, OPT_MIX},
    {"dpo", no_argument, NULL, OPT_DPO},
    {"dpo-beta", required_argument, NULL, OPT_DPO_BETA},
    {"dpo-precompute", no_argument, NULL, OPT_DPO_PRECOMPUTE},
    {"dpo-reference", required_argument, NULL, OPT_DPO_REFERENCE},
    {"mix-temperature", required_argument, NULL, OPT_MIX_TEMPERATURE},
    {"task-weight", required_argument, NULL, OPT_TASK_WEIGHT},
    {"task-cap", required_argument, NULL, OPT_TASK_CAP},
    {"lora-r", required_argument, NULL, OPT_LORA_R},
    {"lora-alpha", required_argument, NULL, OPT_LORA_ALPHA},
    {"lora-dropout", required_argument, NULL, OPT_LORA_DROPOUT},
    {"lora-targets", required_argument, NULL, OPT_LORA_TARGETS},
    {"adapter", required_argument, NULL, OPT_ADAPTER},
    {"min-delta", required_argument, NULL, OPT_MIN_DELTA},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"stop", required_argument, NULL, OPT_STOP},
    {"shape", required_argument, NULL, OPT_SHAPE},
    {"allow-special", no_argument, NULL, OPT_ALLOW_SPECIAL},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/*
 * libgomp reads OMP_WAIT_POLICY when it loads, before main. Threads that
 * spin at every barrier (its default) halve the speed of a run that shares
 * its CPUs with anything else, and passive waits cost nothing measurable on
 * an idle machine, so quern-train runs passive unless told otherwise: it
 * sets the variable and executes itself again, once.
 */
static void wait_passively(char **argv)
{
#ifdef _OPENMP
	if (getenv("OMP_WAIT_POLICY"))
		return;
	setenv("OMP_WAIT_POLICY", "passive", 1);
	execv("/proc/self/exe", argv); /* returns only on failure: go on spinning */
#else
	(void)argv;
#endif
}

static int train_main(int argc, char **argv)
{
	int c;
	long v;
	const char *batch_arg = NULL;

	g_argc = argc;
	g_argv = malloc(((size_t)argc + 1) * sizeof *g_argv); /* before argv is shifted */
	if (!g_argv)
		return QN_EXIT_FAIL;
	memcpy(g_argv, argv, ((size_t)argc + 1) * sizeof *g_argv);
	if (argc >= 2 && argv[1][0] != '-') {
		opt.cmd = argv[1];
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	/* Under a launcher, even as 1 rank: a sweep's trials would inherit its MPI job. */
	if (qn_dist_running() && opt.cmd &&
	    (strcmp(opt.cmd, "fit") || linear_requested(argc, argv)))
		return qn_usage_error("only fit of a GPT-2 model runs under MPI (%d rank%s): run "
				      "'%s' as one process, without mpirun",
				      qn_dist_size(), qn_dist_size() == 1 ? "" : "s", opt.cmd);
	/* The linear classifier and the sweep parse their own options. */
	if (opt.cmd && !strcmp(opt.cmd, "sweep"))
		return sweep_main(argc, argv);
	if (opt.cmd && !strcmp(opt.cmd, "fit") && linear_requested(argc, argv))
		return linear_fit_main(argc, argv);
	if (opt.cmd && !strcmp(opt.cmd, "classify") && argc >= 2 && argv[1][0] != '-' &&
	    linear_is_model(argv[1]))
		return linear_classify_main(argc, argv);
	opt.stops = calloc((size_t)argc + 1, sizeof *opt.stops);
	opt.freezes = calloc((size_t)argc + 1, sizeof *opt.freezes);
	opt.task_weights = calloc((size_t)argc + 1, sizeof *opt.task_weights);
	if (!opt.stops || !opt.freezes || !opt.task_weights)
		return QN_EXIT_FAIL;
#define INT(name, lo, hi, dst)                                                                     \
	do {                                                                                       \
		if (qn_parse_long(name, optarg, lo, hi, &v))                                       \
			return QN_EXIT_USAGE;                                                      \
		dst = v;                                                                           \
	} while (0)
#define NUM(name, lo, hi, dst)                                                                     \
	do {                                                                                       \
		if (qn_parse_number(name, optarg, lo, hi, &dst))                                   \
			return QN_EXIT_USAGE;                                                      \
	} while (0)
	opterr = 0; /* one message, ours */
	while ((c = getopt_long(argc, argv, ":o:t:j:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			opt.output = optarg;
			break;
		case 't':
			opt.tokenizer = optarg;
			break;
		case 'j':
			INT("--threads", 0, 4096, opt.threads);
			break;
		case OPT_ENCODING:
			opt.encoding = optarg;
			break;
		case OPT_CONFIG:
			opt.config = optarg;
			break;
		case OPT_LAYERS:
			INT("--layers", 1, 1024, opt.layers);
			break;
		case OPT_HEADS:
			INT("--heads", 1, 65536, opt.heads);
			break;
		case OPT_WIDTH:
			INT("--width", 1, 65536, opt.width);
			break;
		case OPT_CONTEXT:
			INT("--context", 1, 1048576, opt.context);
			break;
		case OPT_INNER:
			INT("--inner", 1, 262144, opt.inner);
			break;
		case OPT_VOCAB:
			INT("--vocab", 1, 1 << 22, opt.vocab);
			break;
		case OPT_DATA:
			opt.data = optarg;
			break;
		case OPT_STEPS:
			INT("--steps", 0, 1000000000L, opt.steps);
			opt.steps_set = 1;
			break;
		case OPT_BATCH:
			if (opt.cmd && !strcmp(opt.cmd, "check")) { /* check: the batch file */
				batch_arg = optarg;
				break;
			}
			INT("--batch", 1, 1 << 20, opt.batch);
			opt.batch_set = 1;
			break;
		case OPT_ACCUM:
			INT("--accum", 1, 1 << 20, opt.accum);
			break;
		case OPT_LR:
			NUM("--lr", 0, 1e9, opt.lr);
			break;
		case OPT_MIN_LR:
			NUM("--min-lr", 0, 1e9, opt.min_lr);
			break;
		case OPT_WARMUP:
			INT("--warmup", 0, 1000000000L, opt.warmup);
			break;
		case OPT_SCHEDULE:
			if (strcmp(optarg, "cosine") && strcmp(optarg, "constant"))
				return qn_usage_error("--schedule: cosine or constant, not '%s'",
						      optarg);
			opt.schedule = optarg;
			break;
		case OPT_WD:
			NUM("--weight-decay", 0, 1e9, opt.wd);
			break;
		case OPT_BETA1:
			NUM("--beta1", 0, 0.999999999, opt.beta1);
			break;
		case OPT_BETA2:
			NUM("--beta2", 0, 0.999999999, opt.beta2);
			break;
		case OPT_EPS:
			NUM("--eps", 0, 1, opt.eps);
			break;
		case OPT_CLIP:
			NUM("--clip", 0, 1e18, opt.clip);
			break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			opt.seed = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-')
				return qn_usage_error("--seed: expected a whole number, not '%s'",
						      optarg);
			break;
		}
		case OPT_NO_SHUFFLE:
			opt.shuffle = 0;
			break;
		case OPT_EVAL_EVERY:
			INT("--eval-every", 0, 1000000000L, opt.eval_every);
			break;
		case OPT_EVAL_BATCHES:
			INT("--eval-batches", 1, 1000000L, opt.eval_batches);
			break;
		case OPT_SAVE_EVERY:
			INT("--save-every", 0, 1000000000L, opt.save_every);
			break;
		case OPT_KEEP:
			INT("--keep", 1, 1000000L, opt.keep);
			break;
		case OPT_METRICS:
			opt.metrics = optarg;
			break;
		case OPT_RESUME:
			opt.resume = 1;
			break;
		case OPT_LORA:
			opt.lora = 1;
			break;
		case OPT_DROPOUT:
			NUM("--dropout", 0, 0.999, opt.dropout);
			break;
		case OPT_MIX:
			if (strcmp(optarg, "proportional") && strcmp(optarg, "temperature"))
				return qn_usage_error(
				    "--mix: proportional or temperature, not '%s'", optarg);
			opt.mix = optarg;
			break;
		case OPT_DPO:
			opt.dpo = 1;
			break;
		case OPT_DPO_BETA:
			NUM("--dpo-beta", 1e-6, 1e6, opt.dpo_beta);
			opt.dpo = 1;
			break;
		case OPT_MIX_TEMPERATURE:
			NUM("--mix-temperature", 1e-3, 1e6, opt.mix_temperature);
			break;
		case OPT_TASK_CAP:
			NUM("--task-cap", 1, 1e15, opt.task_cap);
			break;
		case OPT_TASK_WEIGHT: {
			const char *eq = strrchr(optarg, '=');
			char *end;
			double w = eq ? strtod(eq + 1, &end) : -1;
			if (!eq || eq == optarg || end == eq + 1 || *end || !(w >= 0 && w < 1e15))
				return qn_usage_error("--task-weight: NAME=W with W >= 0, not '%s'",
						      optarg);
			opt.task_weights[opt.ntask_weights++] = optarg;
			break;
		}
		case OPT_LORA_R:
			INT("--lora-r", 1, 65536, opt.lora_r);
			opt.lora = 1;
			break;
		case OPT_LORA_ALPHA:
			NUM("--lora-alpha", 1e-6, 1e6, opt.lora_alpha);
			opt.lora = 1;
			break;
		case OPT_LORA_DROPOUT:
			NUM("--lora-dropout", 0, 0.999, opt.lora_dropout);
			opt.lora = 1;
			break;
		case OPT_LORA_TARGETS: {
			char *list = strdup(optarg), *save = NULL;
			opt.lora_targets = 0;
			for (char *it = list ? strtok_r(list, ",", &save) : NULL; it;
			     it = strtok_r(NULL, ",", &save)) {
				unsigned b = qn_gpt2_lora_target(it);
				if (!b) {
					qn_usage_error(
					    "--lora-targets: '%s' is not c_attn, attn.c_proj, "
					    "mlp.c_fc, mlp.c_proj (or c_proj, c_fc)",
					    it);
					free(list);
					return QN_EXIT_USAGE;
				}
				opt.lora_targets |= b;
			}
			free(list);
			if (!opt.lora_targets)
				return qn_usage_error("--lora-targets: an empty list");
			opt.lora = 1;
			break;
		}
		case OPT_ADAPTER:
			opt.adapter = optarg;
			break;
		case OPT_FREEZE:
			opt.freezes[opt.nfreezes++] = optarg;
			break;
		case OPT_PATIENCE:
			INT("--patience", 1, 1000000000L, opt.patience);
			break;
		case OPT_DPO_PRECOMPUTE:
			opt.dpo_precompute = 1;
			break;
		case OPT_DPO_REFERENCE:
			opt.dpo_reference = optarg;
			break;
		case OPT_CLASSIFY:
			opt.classify = 1;
			break;
		case OPT_STOP_AT:
			INT("--stop-at", 1, 1000000000L, opt.stop_at);
			break;
		case OPT_MIN_DELTA:
			NUM("--min-delta", 0, 1e9, opt.min_delta);
			break;
		case OPT_MAX_TOKENS:
			INT("--max-tokens", 0, 1 << 24, opt.max_tokens);
			break;
		case OPT_TEMPERATURE:
			NUM("--temperature", 0, 1e6, opt.temperature);
			break;
		case OPT_TOP_K:
			INT("--top-k", 0, 1 << 22, opt.top_k);
			break;
		case OPT_TOP_P:
			NUM("--top-p", 1e-9, 1, opt.top_p);
			break;
		case OPT_STOP:
			if (!optarg[0])
				return qn_usage_error("--stop: an empty stop string");
			opt.stops[opt.nstops++] = optarg;
			break;
		case OPT_SHAPE: {
			int b, t, used = 0;
			if (sscanf(optarg, "%d,%d%n", &b, &t, &used) != 2 || optarg[used] ||
			    b < 1 || t < 1 || b > (1 << 20) || t > (1 << 20))
				return qn_usage_error(
				    "--shape: B,T (two positive numbers), not '%s'", optarg);
			opt.shape_b = b;
			opt.shape_t = t;
			opt.have_shape = 1;
			break;
		}
		case OPT_ALLOW_SPECIAL:
			opt.allow_special = 1;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return qn_close_stdout(QN_EXIT_OK);
		case 'V':
			return qn_close_stdout(qn_print_version());
		case ':':
			return qn_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return qn_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
#undef INT
#undef NUM
	opt.batch_file = batch_arg;
	argc -= optind;
	argv += optind;
	if (!opt.cmd)
		return qn_usage_error("a command is needed: init, fit, sample, score or check");
	if (!strcmp(opt.cmd, "init")) {
		if (argc)
			return qn_usage_error("init takes no files");
		return cmd_init();
	}
	int known = !strcmp(opt.cmd, "fit") || !strcmp(opt.cmd, "sample") ||
		    !strcmp(opt.cmd, "score") || !strcmp(opt.cmd, "check") ||
		    !strcmp(opt.cmd, "merge") || !strcmp(opt.cmd, "classify");
	if (!known)
		return qn_usage_error("unknown command '%s'", opt.cmd);
	if (opt.tokenizer)
		return qn_usage_error("-t is for init: %s uses the model directory's tokenizer",
				      opt.cmd);
	if (argc < 1)
		return qn_usage_error("%s needs a MODEL directory", opt.cmd);
	const char *model = argv[0];
	g_model_arg = model;
	if (!strcmp(opt.cmd, "merge")) {
		if (argc > 1)
			return qn_usage_error("merge takes one MODEL directory");
		return cmd_merge(model);
	}
	if (opt.lora && strcmp(opt.cmd, "fit"))
		return qn_usage_error(
		    "--lora options are for fit; sample and score take --adapter");
	if (!strcmp(opt.cmd, "fit")) {
		if (argc > 1)
			return qn_usage_error("fit takes one MODEL directory");
		return cmd_fit(model);
	}
	if (!strcmp(opt.cmd, "check")) {
		if (argc > 1)
			return qn_usage_error("check takes one MODEL directory");
		return cmd_check(model);
	}
	if (!strcmp(opt.cmd, "sample"))
		return qn_close_stdout(cmd_sample(model, argv + 1, argc - 1));
	if (!strcmp(opt.cmd, "classify")) {
		if (!cls_is_model(model)) {
			qn_error("'%s' is not a classifier (config.json names no "
				 "GPT2ForSequenceClassification and no linear model)",
				 model);
			return QN_EXIT_FAIL;
		}
		return qn_close_stdout(cmd_classify(model, argv + 1, argc - 1));
	}
	return qn_close_stdout(cmd_score(model, argv + 1, argc - 1));
}

/*
 * The re-execution comes first, before MPI starts: under mpirun the new
 * image keeps the process (and its pid), which is all the launcher knows.
 */
int main(int argc, char **argv)
{
	wait_passively(argv);
	qn_cli_init("quern-train");
	if (qn_dist_init(&argc, &argv))
		return QN_EXIT_FAIL;
	return qn_dist_end(train_main(argc, argv));
}
