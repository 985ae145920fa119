/*
 * probe.c - quern-audit probe: generation probes. A model (a checkpoint
 * directory, with --adapter for LoRA) completes every {"prompt"} of a
 * prompts file, K times each, seeded so a run repeats exactly; the
 * completions are then scanned by quern-audit scan's own pipeline (scan.h:
 * the same detectors, rules, baseline, gates and reports) as the field
 * "completion" of the generations file.
 *
 * Regurgitated PII: with --train, the training documents are scanned
 * first, and the salted hash of each pii or secret value found there
 * (type and normal form, as the findings' "hash") goes into a sorted set;
 * a value found in a completion whose hash is in the set is marked
 * "regurgitated", and the gate subject "regurgitated" limits them. Only
 * hashes are kept, never the values.
 *
 * Sampling follows quern-train sample: the prompt's last tokens that leave
 * room for one more, the end-of-text token to start an empty prompt, and
 * draw i (prompt line i, sample k: i * K + k) from seed ^ (i * K + k) *
 * 0xd1b54a32d192ed03, so with one sample a prompt the completions are
 * quern-train sample's.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "bpe.h"
#include "buf.h"
#include "cli.h"
#include "err.h"
#include "gpt2.h"
#include "hash.h"
#include "manifest.h"
#include "pool.h"
#include "rd.h"
#include "scan.h"
#include "scan_policy.h"
#include "utf8.h"
#include "wr.h"

static const char usage_text[] =
    "usage: quern-audit probe MODEL --prompts FILE [options]\n"
    "\n"
    "Completes every {\"prompt\"} line of FILE with the model in MODEL (a\n"
    "checkpoint directory), seeded, then scans the completions as quern-audit\n"
    "scan does (detectors, --rules, --policy gates, reports) and exits 1 when a\n"
    "gate fails. With --train, values also found in the training documents are\n"
    "marked regurgitated; the gate 'regurgitated: 0' forbids them.\n"
    "\n"
    "Generation:\n"
    "      --prompts FILE       {\"prompt\"} JSON Lines (\"text\" also read; \"id\" kept)\n"
    "      --adapter DIR        a LoRA adapter on MODEL\n"
    "      --max-tokens N       tokens a completion (default 64)\n"
    "      --temperature X      0 = greedy (default 1)\n"
    "      --top-k N            (default 0 = off)\n"
    "      --top-p X            nucleus (default 1 = off)\n"
    "      --seed N             sampling seed (default 1337)\n"
    "      --samples K          completions a prompt (default 1)\n"
    "      --generations FILE   keep the generations (JSON Lines, atomic)\n"
    "Regurgitation:\n"
    "      --train FILE         training documents (JSON Lines, \"text\"; repeatable)\n"
    "Scanning and gates (as quern-audit scan):\n"
    "  -o, --output FILE        findings JSON Lines (default stdout)\n"
    "      --summary FILE       counts and gates, with a \"probe\" section\n"
    "      --junit FILE, --sarif FILE, --html FILE   reports\n"
    "      --eval FILE, --memorization FILE          model results for --html\n"
    "      --policy FILE        gates (YAML); subjects as scan's, and regurgitated\n"
    "      --gate 'SUBJECT: LIMIT'  one more gate (repeatable)\n"
    "      --fail-on-findings   the gate 'total: 0'\n"
    "      --rules FILE         policy rules (YAML)\n"
    "      --types LIST, --min-score P, --private-ip   detectors, as scan\n"
    "      --baseline FILE      accepted findings; --salt STR, --salt-file FILE\n"
    "      --manifest FILE, --no-manifest\n"
    "Runs:\n"
    "  -j, --jobs N             threads (default 1; 0 = one per CPU)\n"
    "  -q, --quiet              no warnings\n"
    "  -v, --verbose            more detail\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 every gate passed; 1 a gate failed, a prompt or input could\n"
    "not be used, or a failure; 2 usage error.\n";

#define PROMPT_MAX ((size_t)1 << 26) /* bytes of a prompts line */

static struct {
	const char *model, *prompts, *adapter, *generations, *policy, *salt, *salt_file, *baseline,
	    *rules, *types, *min_score;
	long max_tokens, top_k, samples;
	double temperature, top_p;
	uint64_t seed;
	int jobs, private_ip;
	const char **train;
	size_t ntrain;
	const char **gates;
	size_t ngates;
} opt = {.max_tokens = 64, .temperature = 1, .top_p = 1, .seed = 1337, .samples = 1, .jobs = 1};

/* ---- the training data's values: a sorted set of SHA-256 hashes ---- */

struct hashset {
	unsigned char (*v)[32];
	size_t n, cap;
};

static int hex32(const char *hex, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hex[2 * i], lo = hex[2 * i + 1];
		hi = hi <= '9' ? hi - '0' : (hi | 32) - 'a' + 10;
		lo = lo <= '9' ? lo - '0' : (lo | 32) - 'a' + 10;
		if (hi < 0 || hi > 15 || lo < 0 || lo > 15)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int set_collect(const char *hash, void *ctx)
{
	struct hashset *s = ctx;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		void *nv = realloc(s->v, nc * sizeof *s->v);
		if (!nv)
			return -1;
		s->v = nv;
		s->cap = nc;
	}
	if (hex32(hash, s->v[s->n]) == 0)
		s->n++;
	return 0;
}

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static void set_seal(struct hashset *s)
{
	size_t k = 0;
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof *s->v, cmp32);
	for (size_t i = 1; i < s->n; i++)
		if (memcmp(s->v[i], s->v[k], 32))
			memcpy(s->v[++k], s->v[i], 32);
	s->n = k + 1;
}

struct probe_ctx {
	struct gen *G;
	struct hashset *train;
	const char *gen_path; /* NULL: a temporary file */
};

/* Read-only after set_seal: safe from the scan's workers. */
static int set_known(const char *hash, void *ctx)
{
	const struct hashset *s = ((const struct probe_ctx *)ctx)->train;
	unsigned char h[32];
	return s->n && hex32(hash, h) == 0 && bsearch(h, s->v, s->n, sizeof *s->v, cmp32);
}

/* ---- generation ---- */

struct gen {
	struct qn_gpt2 *m;
	struct qn_gpt2_infer *g;
	struct qn_gpt2_sampler *sm;
	struct qn_bpe *tok;
	struct qn_bpe_scratch *scratch;
	struct qn_bpe_ids ids;
	uint32_t *out; /* the completion's ids */
	size_t nout;
	struct qn_buf text;
	float *logits;
	uint64_t prompts, generations, bad, tokens;
};

static int gen_open(struct gen *G, struct qn_err *e)
{
	memset(G, 0, sizeof *G);
	if (!(G->m = qn_gpt2_load(opt.model, e)))
		return -1;
	qn_gpt2_set_threads(G->m, opt.jobs);
	if (opt.adapter && qn_gpt2_lora_load(G->m, opt.adapter, e))
		return -1;
	if (!(G->tok = qn_bpe_load_spec(opt.model, NULL, e))) {
		qn_err_prefix(e, "'%s': cannot load the model's tokenizer", opt.model);
		return -1;
	}
	if (qn_bpe_vocab_size(G->tok) > (uint32_t)G->m->cfg.vocab_size)
		return qn_errf(e, "'%s': the tokenizer has %u ids, the model %d", opt.model,
			       qn_bpe_vocab_size(G->tok), G->m->cfg.vocab_size);
	if (!(G->g = qn_gpt2_infer_new(G->m, e)))
		return -1;
	G->scratch = qn_bpe_scratch_new(G->tok);
	G->sm = qn_gpt2_sampler_new(G->m->cfg.vocab_size, opt.temperature, opt.top_k, opt.top_p);
	G->logits = malloc((size_t)G->m->cfg.vocab_size * sizeof *G->logits);
	G->out = malloc(((size_t)opt.max_tokens + 1) * sizeof *G->out);
	if (!G->scratch || !G->sm || !G->logits || !G->out)
		return qn_errf(e, "out of memory");
	qn_bpe_ids_init(&G->ids, PROMPT_MAX);
	qn_buf_init(&G->text, QN_BUF_UNLIMITED);
	return 0;
}

static void gen_close(struct gen *G)
{
	qn_gpt2_sampler_free(G->sm);
	qn_gpt2_infer_free(G->g);
	qn_gpt2_free(G->m);
	qn_bpe_scratch_free(G->scratch);
	qn_bpe_free(G->tok);
	qn_bpe_ids_release(&G->ids);
	free(G->out);
	qn_buf_release(&G->text);
	free(G->logits);
}

/* One completion of the prompt's ids (G->ids) into G->text; finish gets "stop" or "length". */
static int complete(struct gen *G, uint64_t draw, const char **finish, size_t *used,
		    struct qn_err *e)
{
	const struct qn_gpt2_config *c = &G->m->cfg;
	uint32_t start = (uint32_t)c->eos_token_id, *ids = G->ids.v;
	size_t n = G->ids.n, skip = 0;
	uint64_t rng = opt.seed ^ (draw * 0xd1b54a32d192ed03ull);

	if (n == 0) {
		if (c->eos_token_id < 0)
			return qn_errf(e, "an empty prompt, and the model has no end-of-text token "
					  "to start from");
		ids = &start;
		n = 1;
	} else if (n >= (size_t)c->n_positions) {
		skip = n - (size_t)c->n_positions + 1;
	}
	*used = n - skip;
	int reason;
	long got = qn_gpt2_generate(G->g, G->sm, ids + skip, n - skip, opt.max_tokens,
				    c->eos_token_id, &rng, G->logits, G->out, NULL, NULL, &reason, e);
	if (got < 0)
		return -1;
	G->nout = (size_t)got;
	*finish = reason == QN_GEN_LENGTH ? "length" : "stop";
	qn_buf_reset(&G->text);
	G->tokens += G->nout;
	return qn_bpe_decode(G->tok, G->out, G->nout, &G->text, e);
}

static int write_line(struct qn_wr *w, json_t *o, struct qn_err *e)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (!s)
		return qn_errf(e, "out of memory");
	size_t n = strlen(s);
	s[n] = '\n';
	int rc = qn_wr_write(w, s, n + 1, e);
	free(s);
	return rc;
}

/* The generations of every prompt into w; bad lines are named and counted. */
static int generate(struct gen *G, struct qn_wr *w)
{
	struct qn_err e;
	struct qn_buf line;
	struct qn_rd *r = qn_rd_open(opt.prompts, 0, &e);
	uint64_t lineno = 0, index = 0;
	int got, rc = 0;

	if (!r) {
		qn_error("%s", e.msg);
		return -1;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while (rc == 0 && (got = qn_rd_line(r, &line, PROMPT_MAX, &e)) != 0) {
		lineno++;
		if (got == -1) {
			qn_error("%s", e.msg);
			rc = -1;
			break;
		}
		if (got == QN_RD_TOOLONG) {
			qn_error("%s:%llu: line longer than %zu bytes; skipped", opt.prompts,
				 (unsigned long long)lineno, PROMPT_MAX);
			G->bad++;
			continue;
		}
		if (!line.len || strspn(line.data, " \t\r") == line.len)
			continue;
		json_error_t je;
		json_t *o = json_loadb(line.data, line.len, 0, &je), *p = NULL;
		if (json_is_object(o)) {
			p = json_object_get(o, "prompt");
			if (!p)
				p = json_object_get(o, "text");
		}
		if (!json_is_string(p)) {
			if (!o)
				qn_error("%s:%llu:%d: %s", opt.prompts, (unsigned long long)lineno,
					 je.column, je.text);
			else
				qn_error("%s:%llu: %s", opt.prompts, (unsigned long long)lineno,
					 json_is_object(o) ? "no \"prompt\" string"
							   : "not a JSON object");
			if (json_is_object(o))
				index++; /* as quern-train sample counts its lines */
			json_decref(o);
			G->bad++;
			continue;
		}
		/* The document id in findings: the prompt's id, else its line; /k per sample. */
		char base[160];
		json_t *jid = json_object_get(o, "id");
		if (json_is_string(jid))
			snprintf(base, sizeof base, "%.120s", json_string_value(jid));
		else if (json_is_integer(jid))
			snprintf(base, sizeof base, "%lld", (long long)json_integer_value(jid));
		else
			snprintf(base, sizeof base, "prompt-%llu", (unsigned long long)lineno);
		qn_bpe_ids_reset(&G->ids);
		if (qn_bpe_encode(G->tok, G->scratch, json_string_value(p), json_string_length(p),
				  0, &G->ids, &e)) {
			qn_error("%s:%llu: %s", opt.prompts, (unsigned long long)lineno, e.msg);
			json_decref(o);
			G->bad++;
			index++;
			continue;
		}
		G->prompts++;
		for (long k = 0; k < opt.samples && rc == 0; k++) {
			const char *finish = "length";
			size_t used = 0;
			if (complete(G, index * (uint64_t)opt.samples + (uint64_t)k, &finish, &used,
				     &e)) {
				qn_error("%s:%llu: %s", opt.prompts, (unsigned long long)lineno,
					 e.msg);
				G->bad++;
				break;
			}
			struct qn_buf fixed;
			qn_buf_init(&fixed, QN_BUF_UNLIMITED);
			qn_utf8_repair(&fixed, G->text.data ? G->text.data : "", G->text.len);
			char id[200];
			if (opt.samples > 1)
				snprintf(id, sizeof id, "%s/%ld", base, k);
			else
				snprintf(id, sizeof id, "%s", base);
			json_t *g =
			    json_pack("{s:s,s:O,s:s%,s:I,s:s,s:I,s:I,s:I}", "id", id, "prompt", p,
				      "completion", fixed.data ? fixed.data : "", fixed.len,
				      "sample", (json_int_t)k, "finish_reason", finish,
				      "prompt_line", (json_int_t)lineno, "prompt_tokens",
				      (json_int_t)used, "completion_tokens", (json_int_t)G->nout);
			qn_buf_release(&fixed);
			if (!g || write_line(w, g, &e)) {
				qn_error("%s", g ? e.msg : "out of memory");
				rc = -1;
			}
			json_decref(g);
			G->generations++;
		}
		index++;
		json_decref(o);
	}
	qn_buf_release(&line);
	qn_rd_close(r);
	return rc;
}

/* ---- the scan's hooks ---- */

static void add_input(struct qn_manifest *m, const char *path)
{
	char sha[65];
	uint64_t size;
	struct qn_err e;
	if (qn_sha256_file(path, sha, &size, &e) == 0)
		qn_manifest_input(m, path, size, sha);
}

static void on_manifest(struct qn_manifest *m, void *ctx)
{
	struct probe_ctx *c = ctx;
	char p[4200];
	static const char *const mf[] = {QN_GPT2_CONFIG, QN_GPT2_WEIGHTS};
	static const char *const af[] = {"adapter_config.json", "adapter_model.safetensors"};
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/%s", opt.model, mf[i]);
		add_input(m, p);
		if (opt.adapter) {
			snprintf(p, sizeof p, "%s/%s", opt.adapter, af[i]);
			add_input(m, p);
		}
	}
	add_input(m, opt.prompts);
	for (size_t i = 0; i < opt.ntrain; i++)
		add_input(m, opt.train[i]);
	qn_manifest_count(m, "prompts", (int64_t)c->G->prompts);
	qn_manifest_count(m, "generations", (int64_t)c->G->generations);
	qn_manifest_count(m, "completion_tokens", (int64_t)c->G->tokens);
	if (c->train)
		qn_manifest_count(m, "training_values", (int64_t)c->train->n);
	qn_manifest_set(m, "command", json_string("probe"));
}

static void on_summary(json_t *s, void *ctx)
{
	struct probe_ctx *c = ctx;
	json_t *tr = json_array();
	for (size_t i = 0; i < opt.ntrain; i++)
		json_array_append_new(tr, json_string(opt.train[i]));
	json_t *p = json_pack(
	    "{s:s,s:o,s:s,s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:f,s:I,s:o,s:o,s:o}", "model", opt.model,
	    "adapter", opt.adapter ? json_string(opt.adapter) : json_null(), "prompts_file",
	    opt.prompts, "tokenizer", qn_bpe_fingerprint(c->G->tok), "prompts",
	    (json_int_t)c->G->prompts, "samples", (json_int_t)opt.samples, "generations",
	    (json_int_t)c->G->generations, "max_tokens", (json_int_t)opt.max_tokens, "temperature",
	    opt.temperature, "top_k", (json_int_t)opt.top_k, "top_p", opt.top_p, "seed",
	    (json_int_t)opt.seed, "generations_file",
	    c->gen_path ? json_string(c->gen_path) : json_null(), "train", tr, "training_values",
	    c->train ? json_integer((json_int_t)c->train->n) : json_null());
	if (p)
		json_object_set_new(s, "probe", p);
	else
		json_decref(tr);
}

/* ---- options ---- */

enum {
	OPT_PROMPTS = 256,
	OPT_ADAPTER,
	OPT_MAX_TOKENS,
	OPT_TEMPERATURE,
	OPT_TOP_K,
	OPT_TOP_P,
	OPT_SEED,
	OPT_SAMPLES,
	OPT_GENERATIONS,
	OPT_TRAIN,
	OPT_POLICY,
	OPT_GATE,
	OPT_SALT,
	OPT_SALT_FILE,
	OPT_BASELINE,
	OPT_RULES,
	OPT_TYPES,
	OPT_MIN_SCORE,
	OPT_PRIVATE_IP,
	OPT_PASS, /* handed to the scan as they are: --summary FILE, ... */
	OPT_PASS_FLAG,
};

static const struct option longopts[] = {
    {"prompts", required_argument, NULL, OPT_PROMPTS},
    {"adapter", required_argument, NULL, OPT_ADAPTER},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"seed", required_argument, NULL, OPT_SEED},
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"generations", required_argument, NULL, OPT_GENERATIONS},
    {"train", required_argument, NULL, OPT_TRAIN},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"gate", required_argument, NULL, OPT_GATE},
    {"salt", required_argument, NULL, OPT_SALT},
    {"salt-file", required_argument, NULL, OPT_SALT_FILE},
    {"baseline", required_argument, NULL, OPT_BASELINE},
    {"rules", required_argument, NULL, OPT_RULES},
    {"types", required_argument, NULL, OPT_TYPES},
    {"min-score", required_argument, NULL, OPT_MIN_SCORE},
    {"private-ip", no_argument, NULL, OPT_PRIVATE_IP},
    {"output", required_argument, NULL, 'o'},
    {"summary", required_argument, NULL, OPT_PASS},
    {"junit", required_argument, NULL, OPT_PASS},
    {"sarif", required_argument, NULL, OPT_PASS},
    {"html", required_argument, NULL, OPT_PASS},
    {"eval", required_argument, NULL, OPT_PASS},
    {"memorization", required_argument, NULL, OPT_PASS},
    {"manifest", required_argument, NULL, OPT_PASS},
    {"write-baseline", required_argument, NULL, OPT_PASS},
    {"no-manifest", no_argument, NULL, OPT_PASS_FLAG},
    {"fail-on-findings", no_argument, NULL, OPT_PASS_FLAG},
    {"jobs", required_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int number(const char *what, const char *s, double lo, double hi, double *out)
{
	return qn_parse_number(what, s, lo, hi, out) < 0 ? -1 : 0;
}

/* The scan's command line: argv0, the shared options, then the inputs. */
struct argvec {
	char **v;
	int n;
};

static void push(struct argvec *a, const char *s)
{
	a->v[a->n++] = (char *)s;
}

static void push_detectors(struct argvec *a)
{
	if (opt.types) {
		push(a, "--types");
		push(a, opt.types);
	}
	if (opt.min_score) {
		push(a, "--min-score");
		push(a, opt.min_score);
	}
	if (opt.private_ip)
		push(a, "--private-ip");
	if (opt.rules) {
		push(a, "--rules");
		push(a, opt.rules);
	}
	if (opt.salt) {
		push(a, "--salt");
		push(a, opt.salt);
	}
	if (opt.salt_file) {
		push(a, "--salt-file");
		push(a, opt.salt_file);
	}
	if (opt.baseline) {
		push(a, "--baseline");
		push(a, opt.baseline);
	}
}

/* Policy syntax and the regurgitated gate, checked before any generation. */
static int check_policy(void)
{
	struct qn_err e;
	struct sp_policy *p = sp_policy_new();
	int rc = 0;
	if (!p) {
		qn_error("out of memory");
		return 1;
	}
	if (opt.policy && sp_policy_load(p, opt.policy, &e) < 0) {
		qn_error("%s", e.msg);
		rc = QN_EXIT_USAGE;
	}
	for (size_t i = 0; rc == 0 && i < opt.ngates; i++)
		if (sp_policy_parse(p, opt.gates[i], strlen(opt.gates[i]), "--gate", 1, &e) < 0) {
			qn_error("%s", e.msg);
			rc = QN_EXIT_USAGE;
		}
	for (size_t i = 0; rc == 0 && i < p->n; i++)
		if (p->v[i].subject == SP_REGURGITATED && !opt.ntrain)
			rc = qn_usage_error("%sgate 'regurgitated' needs the training documents "
					    "(--train FILE)",
					    p->v[i].where);
	sp_policy_free(p);
	return rc;
}

int probe_main(int argc, char **argv)
{
	struct argvec pass = {0}, a = {0};
	const char *output = NULL;
	struct qn_err e;
	struct gen G;
	struct hashset train = {0};
	char tmp[4200] = "";
	int c, rc = 0, have_gen = 0;
	double x;

	pass.v = calloc((size_t)argc * 2 + 4, sizeof *pass.v);
	a.v = calloc((size_t)argc * 3 + 32, sizeof *a.v);
	opt.train = calloc((size_t)argc + 1, sizeof *opt.train);
	opt.gates = calloc((size_t)argc + 1, sizeof *opt.gates);
	if (!pass.v || !a.v || !opt.train || !opt.gates) {
		qn_error("out of memory");
		rc = 1;
		goto out;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:j:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_PROMPTS:
			opt.prompts = optarg;
			break;
		case OPT_ADAPTER:
			opt.adapter = optarg;
			break;
		case OPT_MAX_TOKENS:
			if (number("--max-tokens", optarg, 1, 1 << 20, &x) < 0)
				rc = QN_EXIT_USAGE;
			opt.max_tokens = (long)x;
			break;
		case OPT_TEMPERATURE:
			if (number("--temperature", optarg, 0, 100, &opt.temperature) < 0)
				rc = QN_EXIT_USAGE;
			break;
		case OPT_TOP_K:
			if (number("--top-k", optarg, 0, 1 << 30, &x) < 0)
				rc = QN_EXIT_USAGE;
			opt.top_k = (long)x;
			break;
		case OPT_TOP_P:
			if (number("--top-p", optarg, 0, 1, &opt.top_p) < 0 || opt.top_p <= 0)
				rc = opt.top_p <= 0 && !rc
					 ? qn_usage_error("--top-p: must be above 0")
					 : QN_EXIT_USAGE;
			break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			opt.seed = strtoull(optarg, &end, 10);
			if (*end || end == optarg || errno || *optarg == '-')
				rc = qn_usage_error("--seed: expected a number, not '%s'", optarg);
			break;
		}
		case OPT_SAMPLES:
			if (number("--samples", optarg, 1, 1000000, &x) < 0)
				rc = QN_EXIT_USAGE;
			opt.samples = (long)x;
			break;
		case OPT_GENERATIONS:
			opt.generations = optarg;
			break;
		case OPT_TRAIN:
			opt.train[opt.ntrain++] = optarg;
			break;
		case OPT_POLICY:
			opt.policy = optarg;
			break;
		case OPT_GATE:
			opt.gates[opt.ngates++] = optarg;
			break;
		case OPT_SALT:
			opt.salt = optarg;
			break;
		case OPT_SALT_FILE:
			opt.salt_file = optarg;
			break;
		case OPT_BASELINE:
			opt.baseline = optarg;
			break;
		case OPT_RULES:
			opt.rules = optarg;
			break;
		case OPT_TYPES:
			opt.types = optarg;
			break;
		case OPT_MIN_SCORE:
			opt.min_score = optarg;
			break;
		case OPT_PRIVATE_IP:
			opt.private_ip = 1;
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_PASS:
			if (optarg == argv[optind - 1]) { /* --opt VALUE */
				push(&pass, argv[optind - 2]);
				push(&pass, optarg);
			} else { /* --opt=VALUE, which the scan parses whole */
				push(&pass, argv[optind - 1]);
			}
			break;
		case OPT_PASS_FLAG:
			push(&pass, argv[optind - 1]);
			break;
		case 'j':
			if (qn_parse_jobs("-j", optarg, &opt.jobs) < 0)
				rc = QN_EXIT_USAGE;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'v':
			qn_verbosity++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			rc = -1;
			goto out;
		case ':':
			rc = qn_usage_error("option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			rc = qn_usage_error("unknown option '%s'", argv[optind - 1]);
			break;
		}
		if (rc)
			goto out;
	}
	if (optind >= argc) {
		rc = qn_usage_error("probe needs MODEL, a checkpoint directory");
		goto out;
	}
	if (optind + 1 < argc) {
		rc = qn_usage_error("one MODEL only ('%s' is extra)", argv[optind + 1]);
		goto out;
	}
	opt.model = argv[optind];
	if (!opt.prompts) {
		rc = qn_usage_error("probe needs --prompts FILE");
		goto out;
	}
	if ((rc = check_policy()))
		goto out;

	/* Generations, into --generations or a temporary file the scan reads. */
	if (gen_open(&G, &e)) {
		qn_error("%s", e.msg);
		gen_close(&G);
		rc = 1;
		goto out;
	}
	have_gen = 1;
	const char *gpath = opt.generations;
	if (!gpath) {
		const char *td = getenv("TMPDIR");
		snprintf(tmp, sizeof tmp, "%s/quern-probe-XXXXXX", td && *td ? td : "/tmp");
		int fd = mkstemp(tmp);
		if (fd < 0) {
			qn_error("cannot create a temporary file in '%s': %s",
				 td && *td ? td : "/tmp", strerror(errno));
			tmp[0] = 0;
			rc = 1;
			goto out;
		}
		close(fd);
		gpath = tmp;
	}
	struct qn_wr *w = qn_wr_open(gpath, QN_WR_PLAIN, &e);
	if (!w) {
		qn_error("%s", e.msg);
		rc = 1;
		goto out;
	}
	if (generate(&G, w) < 0) {
		qn_wr_abort(w);
		rc = 1;
		goto out;
	}
	if (qn_wr_commit(w, NULL, &e)) {
		qn_error("%s", e.msg);
		rc = 1;
		goto out;
	}
	qn_info("%llu prompts, %llu generations, %llu tokens", (unsigned long long)G.prompts,
		(unsigned long long)G.generations, (unsigned long long)G.tokens);
	if (!G.prompts && !G.bad)
		qn_warn("'%s': no prompts", opt.prompts);

	/* The training data's values. */
	char jobs[16];
	snprintf(jobs, sizeof jobs, "%d", opt.jobs);
	struct probe_ctx ctx = {&G, opt.ntrain ? &train : NULL, opt.generations};
	if (opt.ntrain) {
		struct scan_hooks th = {.collect = set_collect, .ctx = &train};
		a.n = 0;
		push(&a, argv[0]);
		push_detectors(&a);
		push(&a, "-j");
		push(&a, jobs);
		push(&a, "--format");
		push(&a, "jsonl");
		for (size_t i = 0; i < opt.ntrain; i++)
			push(&a, opt.train[i]);
		a.v[a.n] = NULL;
		int trc = scan_run(a.n, a.v, &th);
		if (trc) {
			qn_error("the training documents could not all be scanned");
			rc = trc == QN_EXIT_USAGE ? QN_EXIT_USAGE : 1;
			goto out;
		}
		set_seal(&train);
		qn_info("%zu distinct pii and secret values in the training documents", train.n);
	}

	/* The scan of the generations. */
	struct scan_hooks h = {.known = opt.ntrain ? set_known : NULL,
			       .summary = on_summary,
			       .manifest = on_manifest,
			       .argc = argc,
			       .argv = argv,
			       .source_name = opt.generations ? NULL : "generations",
			       .ctx = &ctx};
	a.n = 0;
	push(&a, argv[0]);
	push_detectors(&a);
	push(&a, "-j");
	push(&a, jobs);
	push(&a, "--field");
	push(&a, "completion");
	push(&a, "--format");
	push(&a, "jsonl");
	if (output) {
		push(&a, "-o");
		push(&a, output);
	}
	if (opt.policy) {
		push(&a, "--policy");
		push(&a, opt.policy);
	}
	for (size_t i = 0; i < opt.ngates; i++) {
		push(&a, "--gate");
		push(&a, opt.gates[i]);
	}
	for (int i = 0; i < pass.n; i++)
		push(&a, pass.v[i]);
	if (qn_verbosity < 0)
		push(&a, "-q");
	push(&a, gpath);
	a.v[a.n] = NULL;
	int src = scan_run(a.n, a.v, &h);
	rc = src ? src : G.bad ? 1 : 0;
out:
	if (tmp[0])
		unlink(tmp);
	if (have_gen)
		gen_close(&G);
	free(train.v);
	free(pass.v);
	free(a.v);
	free(opt.train);
	free(opt.gates);
	return qn_close_stdout(rc < 0 ? 0 : rc);
}
