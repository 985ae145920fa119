/*
 * memo.c - quern-audit memorization: discoverable memorization of training
 * documents (Carlini et al. 2022), with Pythia's token-match score and
 * HELM's longest common prefix, against held-out documents as the
 * baseline. docs/memorization.md defines every number.
 *
 * For each sampled document x (at least P + S tokens) the model reads the
 * end-of-text token the training loader puts before a document, then
 * x[0..P), and continues greedily for S tokens. One teacher-forced pass
 * over x[0..P+S-1) gives the greedy choice at every suffix position while
 * the continuation still agrees with x; from the first disagreement on
 * the KV cache is rewound there and the model continues on its own
 * tokens. A memorized document therefore costs one pass.
 *
 * Also the model helpers canary.c shares (canary.h).
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <jansson.h>

#include "audit.h"
#include "bpe.h"
#include "canary.h"
#include "cli.h"
#include "err.h"
#include "gpt2.h"
#include "hash.h"
#include "manifest.h"
#include "memomath.h"
#include "pool.h"
#include "shard.h"
#include "wr.h"

#define MEMO_SAMPLES_MAX 10000000L

/* ---- shared with canary.c ------------------------------------------------------- */

int memo_model_open(struct memo_model *mm, const char *dir, const char *adapter, struct qn_err *e)
{
	memset(mm, 0, sizeof *mm);
	mm->dir = dir;
	mm->adapter = adapter;
	mm->m = qn_gpt2_load(dir, e);
	if (!mm->m)
		return -1;
	qn_gpt2_set_threads(mm->m, 1);
	if (adapter && qn_gpt2_lora_load(mm->m, adapter, e))
		return -1;
	mm->tok = qn_bpe_load_spec(dir, NULL, e);
	if (!mm->tok)
		return -1;
	if (qn_bpe_vocab_size(mm->tok) > (uint32_t)mm->m->cfg.vocab_size)
		return qn_errf(e, "'%s': the tokenizer has %u ids, the model %d", dir,
			       qn_bpe_vocab_size(mm->tok), mm->m->cfg.vocab_size);
	memcpy(mm->fingerprint,
	       mm->m->cfg.tokenizer[0] ? mm->m->cfg.tokenizer : qn_bpe_fingerprint(mm->tok), 65);
	return 0;
}

void memo_model_close(struct memo_model *mm)
{
	qn_gpt2_free(mm->m);
	qn_bpe_free(mm->tok);
	memset(mm, 0, sizeof *mm);
}

void memo_manifest_file(struct qn_manifest *man, const char *path, int output)
{
	struct qn_err e;
	char sha[65];
	uint64_t size;
	if (!man || access(path, F_OK))
		return;
	if (qn_sha256_file(path, sha, &size, &e)) {
		qn_warn("%s", e.msg);
		return;
	}
	if (output)
		qn_manifest_output(man, path, size, sha);
	else
		qn_manifest_input(man, path, size, sha);
}

struct qn_manifest *memo_manifest_new(const char *words, int argc, char **argv)
{
	char buf[64], *w[4];
	int nw = 0;
	snprintf(buf, sizeof buf, "%s", words);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && nw < 4;
	     t = strtok_r(NULL, " ", &save))
		w[nw++] = t;
	char **v = malloc(((size_t)argc + (size_t)nw + 1) * sizeof *v);
	if (!v)
		return NULL;
	int n = 0;
	v[n++] = argv[0];
	for (int i = 0; i < nw; i++)
		v[n++] = w[i];
	for (int i = 1; i < argc; i++)
		v[n++] = argv[i];
	v[n] = NULL;
	struct qn_manifest *man = qn_manifest_new("quern-audit", QN_VERSION, n, v);
	free(v);
	return man;
}

static void manifest_in_dir(struct qn_manifest *man, const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	memo_manifest_file(man, path, 0);
}

void memo_model_manifest(const struct memo_model *mm, struct qn_manifest *man)
{
	manifest_in_dir(man, mm->dir, QN_GPT2_CONFIG);
	manifest_in_dir(man, mm->dir, QN_GPT2_WEIGHTS);
	manifest_in_dir(man, mm->dir, "tokenizer.json");
	if (mm->adapter) {
		manifest_in_dir(man, mm->adapter, "adapter_config.json");
		manifest_in_dir(man, mm->adapter, "adapter_model.safetensors");
	}
	qn_manifest_set(man, "tokenizer", json_string(mm->fingerprint));
}

struct worker_start {
	void *(*fn)(void *);
	void *arg;
};

static void *worker_trampoline(void *p)
{
	struct worker_start *s = p;
#ifdef _OPENMP
	omp_set_num_threads(1);
#endif
	return s->fn(s->arg);
}

int memo_run_workers(int n, void *(*fn)(void *), void *arg, size_t arg_size)
{
	pthread_t *th = calloc((size_t)n, sizeof *th);
	struct worker_start *st = calloc((size_t)n, sizeof *st);
	int started = 0, rc = 0;
	if (!th || !st) {
		free(th);
		free(st);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		st[i].fn = fn;
		st[i].arg = (char *)arg + (size_t)i * arg_size;
	}
	if (n == 1) {
		worker_trampoline(&st[0]);
	} else {
		for (; started < n; started++)
			if (pthread_create(&th[started], NULL, worker_trampoline, &st[started]))
				break;
		if (started == 0)
			worker_trampoline(&st[0]); /* no thread: one worker does it all */
		else if (started < n)
			rc = 0; /* the started ones share the jobs between them */
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
	}
	free(th);
	free(st);
	return rc;
}

uint32_t memo_argmax(const float *logits, int V)
{
	int best = 0;
	for (int j = 1; j < V; j++)
		if (logits[j] > logits[best])
			best = j;
	return (uint32_t)best;
}

double memo_logprob(const float *logits, int V, uint32_t target)
{
	float mx = logits[0];
	for (int j = 1; j < V; j++)
		if (logits[j] > mx)
			mx = logits[j];
	double s = 0;
	for (int j = 0; j < V; j++)
		s += exp((double)logits[j] - mx);
	return (double)logits[target] - mx - log(s);
}

int memo_threads(long j)
{
	return j > 0 ? (int)j : qn_ncpu();
}

/* ---- the documents ---------------------------------------------------------------- */

static const char usage_text[] =
    "usage: quern-audit memorization MODEL --data SHARDS [options]\n"
    "\n"
    "Discoverable memorization (Carlini et al. 2022): sample training documents\n"
    "of at least P+S tokens from the shards' train split, give the model each\n"
    "one's first P tokens and let it continue greedily for S tokens; count the\n"
    "exact matches of the true S-token suffix, the share of suffix tokens that\n"
    "match (Pythia's memorization score) and the longest common prefix (HELM).\n"
    "The same on held-out documents (the val split, or --heldout) is the\n"
    "baseline. Results JSON to stdout or -o.\n"
    "\n"
    "Options:\n"
    "      --data DIR          token shards the model was trained on (required)\n"
    "      --heldout DIR       held-out documents (both splits of DIR); default:\n"
    "                          the val split of --data\n"
    "      --adapter DIR       a LoRA adapter on top of MODEL\n"
    "  -n, --samples N         documents from each side (default 1000)\n"
    "      --prefix P          prompt tokens (default 50; 32 with --score pythia)\n"
    "      --suffix S          greedy tokens compared (default 50; 32 with pythia)\n"
    "      --score carlini|pythia\n"
    "                          the defaults above (default carlini)\n"
    "      --seed X            which documents are sampled (default 0)\n"
    "  -j, --threads N         worker threads (default 0: one per CPU)\n"
    "  -o, --output FILE       results JSON here (atomically), with\n"
    "                          FILE.manifest.json beside it\n"
    "      --per-doc FILE      one JSON line a document: ids, match, tokens\n"
    "  -q, --quiet             no warnings\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 done, 1 a failure (unreadable model or shards, a tokenizer\n"
    "that differs from the shards', too few long documents), 2 usage error.\n";

/* One side: the sampled documents' tokens and what the model made of them. */
struct side {
	const char *name; /* "train" or "heldout" */
	const char *source;
	size_t n, eligible;
	uint32_t *tok;	   /* n x (P + S) */
	uint32_t *gen;	   /* n x S */
	uint64_t *index;   /* in its split */
	uint64_t *id_hash; /* the document id's hash */
	int *split;
	uint32_t *lcp, *match;
};

struct doc_ref {
	int split;
	uint64_t k;
};

struct memo_opt {
	int P, S;
	int bos; /* fed before each document; -1: none */
};

static void side_free(struct side *s)
{
	free(s->tok);
	free(s->gen);
	free(s->index);
	free(s->id_hash);
	free(s->split);
	free(s->lcp);
	free(s->match);
}

static int cmp_ref(const void *a, const void *b)
{
	const struct doc_ref *x = a, *y = b;
	if (x->split != y->split)
		return x->split - y->split;
	return (x->k > y->k) - (x->k < y->k);
}

/*
 * Samples up to want documents of at least need tokens from the splits of
 * d (nsplits of them, in order), uniformly without replacement from seed,
 * and reads their first need tokens into s.
 */
static int side_collect(struct side *s, struct qn_shard_dir *d, const int *splits, int nsplits,
			size_t want, size_t need, uint64_t seed, struct qn_err *e)
{
	struct doc_ref *refs = NULL;
	size_t n = 0, cap = 0;
	struct qn_shard_docview v;
	for (int i = 0; i < nsplits; i++) {
		uint64_t docs = qn_shard_dir_docs(d, splits[i]);
		for (uint64_t k = 0; k < docs; k++) {
			if (qn_shard_dir_read(d, splits[i], k, &v, e)) {
				free(refs);
				return -1;
			}
			if (v.n < need)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				struct doc_ref *r = realloc(refs, cap * sizeof *r);
				if (!r) {
					free(refs);
					return qn_errf(e, "out of memory");
				}
				refs = r;
			}
			refs[n].split = splits[i];
			refs[n++].k = k;
		}
	}
	s->eligible = n;
	/* A partial Fisher-Yates shuffle: the first m are a uniform sample. */
	size_t m = want < n ? want : n;
	uint64_t rng = seed ^ 0x6d656d6f72697a65ull;
	for (size_t i = 0; i < m; i++) {
		size_t j = i + (size_t)(qn_splitmix64(&rng) % (n - i));
		struct doc_ref t = refs[i];
		refs[i] = refs[j];
		refs[j] = t;
	}
	if (m)
		qsort(refs, m, sizeof *refs, cmp_ref);
	s->n = m;
	s->tok = malloc((m ? m : 1) * need * sizeof *s->tok);
	s->index = malloc((m ? m : 1) * sizeof *s->index);
	s->id_hash = malloc((m ? m : 1) * sizeof *s->id_hash);
	s->split = malloc((m ? m : 1) * sizeof *s->split);
	if (!s->tok || !s->index || !s->id_hash || !s->split) {
		free(refs);
		return qn_errf(e, "out of memory");
	}
	for (size_t i = 0; i < m; i++) {
		if (qn_shard_dir_read(d, refs[i].split, refs[i].k, &v, e)) {
			free(refs);
			return -1;
		}
		memcpy(s->tok + i * need, v.tokens, need * sizeof *v.tokens);
		s->index[i] = refs[i].k;
		s->id_hash[i] = v.id_hash;
		s->split[i] = refs[i].split;
	}
	free(refs);
	return 0;
}

/* ---- the model's continuations ------------------------------------------------------- */

struct memo_work {
	struct memo_model *mm;
	const struct memo_opt *o;
	struct side *sides;
	int nsides;
	atomic_size_t *next;
	size_t total;
	atomic_int *failed;
	struct qn_err e;
	int err;
};

/* The greedy continuation of document i of s; fills gen, lcp, match. */
static int continue_doc(struct qn_gpt2_infer *g, float *logits, uint32_t *seq,
			const struct memo_opt *o, struct side *s, size_t i, int V, struct qn_err *e)
{
	int P = o->P, S = o->S, off = o->bos >= 0;
	const uint32_t *x = s->tok + i * (size_t)(P + S);
	uint32_t *gen = s->gen + i * (size_t)S;
	if (off)
		seq[0] = (uint32_t)o->bos;
	memcpy(seq + off, x, (size_t)(P + S) * sizeof *x);
	/* Teacher-forced: row j predicts x[P + j] from x[0 .. P + j). */
	qn_gpt2_infer_reset(g);
	if (qn_gpt2_infer_step(g, seq, off + P, logits, 0, e))
		return -1;
	if (S > 1 && qn_gpt2_infer_step(g, seq + off + P, S - 1, logits + V, 1, e))
		return -1;
	int lcp = 0;
	while (lcp < S) {
		gen[lcp] = memo_argmax(logits + (size_t)lcp * V, V);
		if (gen[lcp] != x[P + lcp])
			break;
		lcp++;
	}
	if (lcp < S) {
		/* From the first disagreement on, the model reads its own tokens. */
		if (qn_gpt2_infer_rewind(g, off + P + lcp, e))
			return -1;
		for (int j = lcp + 1; j < S; j++) {
			if (qn_gpt2_infer_step(g, &gen[j - 1], 1, logits, 0, e))
				return -1;
			gen[j] = memo_argmax(logits, V);
		}
	}
	s->lcp[i] = (uint32_t)lcp;
	s->match[i] = (uint32_t)mm_matches(gen, x + P, (size_t)S);
	return 0;
}

static void *memo_worker(void *p)
{
	struct memo_work *w = p;
	const struct qn_gpt2_config *c = &w->mm->m->cfg;
	int V = c->vocab_size;
	struct qn_gpt2_infer *g = qn_gpt2_infer_new(w->mm->m, &w->e);
	float *logits = malloc((size_t)w->o->S * V * sizeof *logits);
	uint32_t *seq = malloc((size_t)(w->o->P + w->o->S + 1) * sizeof *seq);
	if (!g || !logits || !seq) {
		if (g)
			qn_errf(&w->e, "out of memory");
		w->err = 1;
		atomic_store(w->failed, 1);
	}
	while (!w->err && !atomic_load(w->failed)) {
		size_t i = atomic_fetch_add(w->next, 1);
		if (i >= w->total)
			break;
		struct side *s = &w->sides[0];
		if (i >= s->n) {
			i -= s->n;
			s = &w->sides[1];
		}
		if (continue_doc(g, logits, seq, w->o, s, i, V, &w->e)) {
			w->err = 1;
			atomic_store(w->failed, 1);
		}
	}
	qn_gpt2_infer_free(g);
	free(logits);
	free(seq);
	return NULL;
}

/* ---- results ------------------------------------------------------------------------ */

static json_t *side_json(const struct side *s, int S)
{
	double *lcps = malloc((s->n ? s->n : 1) * sizeof *lcps);
	size_t exact = 0;
	double tm = 0, lsum = 0;
	for (size_t i = 0; i < s->n; i++) {
		exact += s->lcp[i] == (uint32_t)S;
		tm += (double)s->match[i] / S;
		lsum += s->lcp[i];
		if (lcps)
			lcps[i] = s->lcp[i];
	}
	double n = s->n ? (double)s->n : 1;
	json_t *o = json_object();
	json_object_set_new(o, "source", json_string(s->source));
	json_object_set_new(o, "eligible_documents", json_integer((json_int_t)s->eligible));
	json_object_set_new(o, "documents", json_integer((json_int_t)s->n));
	json_object_set_new(o, "exact_match", json_real(exact / n));
	json_object_set_new(o, "exact_match_count", json_integer((json_int_t)exact));
	json_object_set_new(o, "token_match", json_real(tm / n));
	json_object_set_new(o, "lcp_mean", json_real(lsum / n));
	json_object_set_new(o, "lcp_median", json_real(lcps ? mm_median(lcps, s->n) : 0));
	free(lcps);
	return o;
}

static int write_per_doc(const char *path, const struct side *sides, int nsides, int P, int S,
			 struct qn_manifest *man)
{
	struct qn_err e;
	struct qn_wr_info info;
	struct qn_wr *w = qn_wr_open(path, 0, &e);
	if (!w) {
		qn_error("%s", e.msg);
		return -1;
	}
	for (int k = 0; k < nsides; k++) {
		const struct side *s = &sides[k];
		for (size_t i = 0; i < s->n; i++) {
			json_t *o = json_object(), *tg = json_array(), *gn = json_array();
			char hash[17];
			snprintf(hash, sizeof hash, "%016llx", (unsigned long long)s->id_hash[i]);
			for (int j = 0; j < S; j++) {
				json_array_append_new(
				    tg, json_integer(s->tok[i * (size_t)(P + S) + P + j]));
				json_array_append_new(gn, json_integer(s->gen[i * (size_t)S + j]));
			}
			json_object_set_new(o, "set", json_string(s->name));
			json_object_set_new(o, "split",
					    json_string(qn_shard_split_name(s->split[i])));
			json_object_set_new(o, "index", json_integer((json_int_t)s->index[i]));
			json_object_set_new(o, "id_hash", json_string(hash));
			json_object_set_new(o, "exact", json_boolean(s->lcp[i] == (uint32_t)S));
			json_object_set_new(o, "token_match", json_real((double)s->match[i] / S));
			json_object_set_new(o, "lcp", json_integer(s->lcp[i]));
			json_object_set_new(o, "target", tg);
			json_object_set_new(o, "generated", gn);
			char *line = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			int bad = !line || qn_wr_write(w, line, strlen(line), &e) ||
				  qn_wr_write(w, "\n", 1, &e);
			if (!line)
				qn_errf(&e, "out of memory");
			free(line);
			if (bad) {
				qn_error("%s", e.msg);
				qn_wr_abort(w);
				return -1;
			}
		}
	}
	if (qn_wr_commit(w, &info, &e)) {
		qn_error("%s", e.msg);
		return -1;
	}
	if (man)
		qn_manifest_output(man, path, info.bytes, info.sha256);
	return 0;
}

/* Writes text to path (NULL: stdout) atomically; its size and hash into man. */
static int write_text(const char *path, const char *text, struct qn_manifest *man)
{
	struct qn_err e;
	struct qn_wr_info info;
	struct qn_wr *w = qn_wr_open(path, QN_WR_PLAIN, &e);
	if (!w) {
		qn_error("%s", e.msg);
		return -1;
	}
	if (qn_wr_write(w, text, strlen(text), &e) || qn_wr_write(w, "\n", 1, &e)) {
		qn_error("%s", e.msg);
		qn_wr_abort(w);
		return -1;
	}
	if (qn_wr_commit(w, &info, &e)) {
		qn_error("%s", e.msg);
		return -1;
	}
	if (man && path)
		qn_manifest_output(man, path, info.bytes, info.sha256);
	return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

enum {
	OPT_DATA = 256,
	OPT_HELDOUT,
	OPT_ADAPTER,
	OPT_PREFIX,
	OPT_SUFFIX,
	OPT_SCORE,
	OPT_SEED,
	OPT_PER_DOC,
};

static const struct option longopts[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"heldout", required_argument, NULL, OPT_HELDOUT},
    {"adapter", required_argument, NULL, OPT_ADAPTER},
    {"samples", required_argument, NULL, 'n'},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"suffix", required_argument, NULL, OPT_SUFFIX},
    {"score", required_argument, NULL, OPT_SCORE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, 'j'},
    {"output", required_argument, NULL, 'o'},
    {"per-doc", required_argument, NULL, OPT_PER_DOC},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Opens a shard directory and checks it against the model's tokenizer. */
static struct qn_shard_dir *open_shards(const char *dir, const struct memo_model *mm, int64_t *eot)
{
	struct qn_err e;
	struct qn_shard_dir *d = qn_shard_dir_open(dir, &e);
	if (!d) {
		qn_error("%s", e.msg);
		return NULL;
	}
	const struct qn_shard_dir_info *si = qn_shard_dir_info(d);
	if (strcmp(si->fingerprint, mm->fingerprint)) {
		qn_error("'%s' was encoded with tokenizer %.12s..., the model '%s' uses %.12s...: "
			 "give the shards the model was trained on",
			 dir, si->fingerprint, mm->dir, mm->fingerprint);
		qn_shard_dir_close(d);
		return NULL;
	}
	if (si->vocab_size > (uint32_t)mm->m->cfg.vocab_size) {
		qn_error("'%s': token ids up to %u, the model's vocabulary has %d", dir,
			 si->vocab_size, mm->m->cfg.vocab_size);
		qn_shard_dir_close(d);
		return NULL;
	}
	*eot = si->eot;
	return d;
}

int memorization_main(int argc, char **argv)
{
	const char *data = NULL, *heldout = NULL, *adapter = NULL, *output = NULL, *per_doc = NULL,
		   *score = "carlini";
	long samples = 1000, P = -1, S = -1, threads = 0, seed = 0;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:j:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DATA:
			data = optarg;
			break;
		case OPT_HELDOUT:
			heldout = optarg;
			break;
		case OPT_ADAPTER:
			adapter = optarg;
			break;
		case 'n':
			if (qn_parse_long("--samples", optarg, 1, MEMO_SAMPLES_MAX, &samples))
				return QN_EXIT_USAGE;
			break;
		case OPT_PREFIX:
			if (qn_parse_long("--prefix", optarg, 1, 65536, &P))
				return QN_EXIT_USAGE;
			break;
		case OPT_SUFFIX:
			if (qn_parse_long("--suffix", optarg, 1, 65536, &S))
				return QN_EXIT_USAGE;
			break;
		case OPT_SCORE:
			if (strcmp(optarg, "carlini") && strcmp(optarg, "pythia"))
				return qn_usage_error("--score: carlini or pythia, not '%s'",
						      optarg);
			score = optarg;
			break;
		case OPT_SEED:
			if (qn_parse_long("--seed", optarg, 0, 9007199254740991.0, &seed))
				return QN_EXIT_USAGE;
			break;
		case 'j':
			if (qn_parse_long("--threads", optarg, 0, 1024, &threads))
				return QN_EXIT_USAGE;
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_PER_DOC:
			per_doc = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return qn_close_stdout(0);
		case ':':
			return qn_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return qn_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return qn_usage_error("memorization needs a MODEL directory");
	if (optind + 1 < argc)
		return qn_usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (!data)
		return qn_usage_error("memorization needs --data SHARDS");
	int pythia = !strcmp(score, "pythia");
	if (P < 0)
		P = pythia ? 32 : 50;
	if (S < 0)
		S = pythia ? 32 : 50;
	const char *model_dir = argv[optind];

	struct qn_err e;
	struct memo_model mm;
	struct side sides[2] = {{.name = "train", .source = data},
				{.name = "heldout", .source = heldout ? heldout : data}};
	struct qn_shard_dir *d = NULL, *h = NULL;
	struct qn_manifest *man = NULL;
	int rc = QN_EXIT_FAIL;
	int64_t eot = -1, eot_h = -1;
	if (memo_model_open(&mm, model_dir, adapter, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	const struct qn_gpt2_config *cfg = &mm.m->cfg;
	if (!(d = open_shards(data, &mm, &eot)))
		goto out;
	if (heldout && !(h = open_shards(heldout, &mm, &eot_h)))
		goto out;
	struct memo_opt o = {.P = (int)P, .S = (int)S, .bos = -1};
	if (eot >= 0 && eot < cfg->vocab_size)
		o.bos = (int)eot;
	if (P + S + (o.bos >= 0) > cfg->n_positions) {
		qn_error("--prefix %ld + --suffix %ld%s do not fit the model's %d positions", P, S,
			 o.bos >= 0 ? " + end-of-text" : "", cfg->n_positions);
		goto out;
	}
	size_t need = (size_t)(P + S);
	int train_split = QN_SHARD_TRAIN, val_split = QN_SHARD_VAL;
	int both[2] = {QN_SHARD_TRAIN, QN_SHARD_VAL};
	if (side_collect(&sides[0], d, &train_split, 1, (size_t)samples, need, (uint64_t)seed,
			 &e) ||
	    side_collect(&sides[1], h ? h : d, h ? both : &val_split, h ? 2 : 1, (size_t)samples,
			 need, (uint64_t)seed + 1, &e)) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (!sides[0].n) {
		qn_error("'%s': no document of the train split has %zu tokens or more (--prefix "
			 "%ld + --suffix %ld)",
			 data, need, P, S);
		goto out;
	}
	if (!sides[1].n) {
		qn_error("'%s': no held-out document (%s) has %zu tokens or more: give --heldout "
			 "DIR or encode with --val-fraction",
			 sides[1].source, h ? "either split" : "the val split", need);
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		if (sides[k].n < (size_t)samples)
			qn_warn("%s: only %zu documents of %zu tokens or more (of --samples %ld)",
				sides[k].name, sides[k].n, need, samples);
		sides[k].gen = malloc(sides[k].n * (size_t)S * sizeof *sides[k].gen);
		sides[k].lcp = malloc(sides[k].n * sizeof *sides[k].lcp);
		sides[k].match = malloc(sides[k].n * sizeof *sides[k].match);
		if (!sides[k].gen || !sides[k].lcp || !sides[k].match) {
			qn_error("out of memory");
			goto out;
		}
	}

	int nth = memo_threads(threads);
	size_t total = sides[0].n + sides[1].n;
	if ((size_t)nth > total)
		nth = (int)total;
	atomic_size_t next = 0;
	atomic_int failed = 0;
	struct memo_work *w = calloc((size_t)nth, sizeof *w);
	if (!w) {
		qn_error("out of memory");
		goto out;
	}
	for (int i = 0; i < nth; i++)
		w[i] = (struct memo_work){.mm = &mm,
					  .o = &o,
					  .sides = sides,
					  .nsides = 2,
					  .next = &next,
					  .total = total,
					  .failed = &failed};
	memo_run_workers(nth, memo_worker, w, sizeof *w);
	for (int i = 0; i < nth; i++)
		if (w[i].err) {
			qn_error("%s", w[i].e.msg);
			free(w);
			goto out;
		}
	free(w);

	if (output)
		man = memo_manifest_new("memorization", argc, argv);
	if (man) {
		memo_model_manifest(&mm, man);
		manifest_in_dir(man, data, QN_SHARD_MANIFEST);
		if (heldout)
			manifest_in_dir(man, heldout, QN_SHARD_MANIFEST);
	}
	json_t *r = json_object(), *tr = side_json(&sides[0], (int)S),
	       *ho = side_json(&sides[1], (int)S), *diff = json_object();
	static const char *const keys[] = {"exact_match", "token_match", "lcp_mean", "lcp_median"};
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
		json_object_set_new(diff, keys[k],
				    json_real(json_real_value(json_object_get(tr, keys[k])) -
					      json_real_value(json_object_get(ho, keys[k]))));
	json_object_set_new(r, "tool", json_string("quern-audit memorization"));
	json_object_set_new(r, "version", json_string(QN_VERSION));
	json_object_set_new(r, "model", json_string(model_dir));
	json_object_set_new(r, "adapter", adapter ? json_string(adapter) : json_null());
	json_object_set_new(r, "tokenizer", json_string(mm.fingerprint));
	json_object_set_new(r, "score", json_string(score));
	json_object_set_new(r, "prefix", json_integer(P));
	json_object_set_new(r, "suffix", json_integer(S));
	json_object_set_new(r, "end_of_text_first", json_boolean(o.bos >= 0));
	json_object_set_new(r, "samples", json_integer(samples));
	json_object_set_new(r, "seed", json_integer(seed));
	json_object_set_new(r, "train", tr);
	json_object_set_new(r, "heldout", ho);
	json_object_set_new(r, "difference", diff);
	char *text = json_dumps(r, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	json_decref(r);
	if (!text) {
		qn_error("out of memory");
		goto out;
	}
	int bad = per_doc && write_per_doc(per_doc, sides, 2, (int)P, (int)S, man);
	bad = bad || write_text(output, text, man);
	free(text);
	if (bad)
		goto out;
	if (man) {
		char *mpath = qn_manifest_path_for(output);
		qn_manifest_count(man, "train_documents", (int64_t)sides[0].n);
		qn_manifest_count(man, "heldout_documents", (int64_t)sides[1].n);
		if (mpath && qn_manifest_write(man, mpath, &e)) {
			qn_error("%s", e.msg);
			free(mpath);
			goto out;
		}
		free(mpath);
	}
	rc = QN_EXIT_OK;
out:
	qn_manifest_free(man);
	side_free(&sides[0]);
	side_free(&sides[1]);
	qn_shard_dir_close(d);
	qn_shard_dir_close(h);
	memo_model_close(&mm);
	return output ? rc : qn_close_stdout(rc);
}
