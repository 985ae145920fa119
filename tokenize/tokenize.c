/*
 * quern-tokenize - byte-level BPE tokenizers and token shards.
 *
 *   train    learn a tokenizer from documents or text (lib/bpe_train.h)
 *   encode   documents or training examples into a shard directory
 *   ids      the plain filter: one {"id", "ids"} line per document
 *   decode   its inverse: {"id", "ids"} lines back to {"id", "text"}
 *   inspect  what a shard directory holds
 *   verify   every checksum of a shard directory
 *   export   a split as the plain .bin files nanoGPT and llm.c read
 *   merge    shard directories of encode --shard I/N into one
 *
 * encode and ids read JSON Lines on the main thread, encode batches of lines
 * on a thread pool (lib/pool.h) and take the results back in input order,
 * so every output is the same for every -j. Examples become documents with
 * loss-mask spans (render_example): a chat template (ChatML by default)
 * around prompt/completion and messages, training only on the assistant's
 * part; preference pairs are written together; labels and task names get
 * ids in order of first appearance. encode --shard I/N reads only shard I's
 * lines (lib/shardsel.h); merge rewrites the shard directories' documents,
 * in order, into one directory without tokenizing again (docs/sharding.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bpe.h"
#include "bpe_train.h"
#include "buf.h"
#include "cli.h"
#include "doc.h"
#include "docjson.h"
#include "err.h"
#include "hash.h"
#include "lines.h"
#include "manifest.h"
#include "pool.h"
#include "rd.h"
#include "shard.h"
#include "shardsel.h"
#include "utf8.h"
#include "wr.h"

static const char usage_text[] =
	"usage: quern-tokenize <command> [options] [file ...]\n"
	"\n"
	"Byte-level BPE tokenizers and token shards.\n"
	"\n"
	"Commands:\n"
	"  train -o DIR [file ...]        learn a tokenizer; writes DIR/tokenizer.tiktoken,\n"
	"                                 DIR/tokenizer.json and DIR/quern-tokenizer.json\n"
	"  encode -t TOK -o DIR [file ...] documents or examples into token shards\n"
	"  ids -t TOK [file ...]          {\"id\",\"ids\"} JSON lines, no shards\n"
	"  decode -t TOK [file ...]       {\"id\",\"ids\"} lines back to {\"id\",\"text\"}\n"
	"  inspect DIR                    documents, tokens, tasks, splits, sizes\n"
	"  verify DIR                     check every checksum\n"
	"  export --format nanogpt|llmc [--split S] DIR FILE\n"
	"  merge -o DIR IN_DIR...         shard directories of encode --shard, in\n"
	"                                 shard order, into one (not re-tokenized)\n"
	"\n"
	"Tokenizers (-t, --tokenizer):\n"
	"  FILE.tiktoken                  an OpenAI rank file; the encoding (r50k_base,\n"
	"                                 cl100k_base, o200k_base) from --encoding or\n"
	"                                 the file name\n"
	"  FILE.json                      a Hugging Face tokenizer.json (byte-level BPE)\n"
	"  DIR                            a tokenizer trained by quern-tokenize train\n"
	"      --encoding NAME            the named encoding of a .tiktoken file\n"
	"Training:\n"
	"      --vocab-size N             tokens, specials included (default 32000)\n"
	"      --pattern P                gpt2, cl100k, o200k (default) or a regex\n"
	"      --special TOKEN            a special token (repeatable; default\n"
	"                                 <|endoftext|>)\n"
	"      --min-frequency N          least count of a merged pair (default 2)\n"
	"      --lines                    every input line is one text, JSON or not\n"
	"Encoding:\n"
	"      --text-field NAME          the text of a document (default text)\n"
	"      --template T               chatml (default) or plain, for prompt/\n"
	"                                 completion, messages and preference pairs\n"
	"      --allow-special            special-token text in documents becomes the\n"
	"                                 special token (default: encoded as text)\n"
	"      --val-fraction F           share of documents, by id hash, for val\n"
	"      --shard-size SIZE          largest shard file (default 128M)\n"
	"      --level N                  zstd level (default 3; merge: the inputs')\n"
	"      --shard I/N                encode only shard I of N of the input lines\n"
	"                                 (see docs/sharding.md), then merge\n"
	"Runs:\n"
	"  -o, --output PATH              the output directory (train, encode) or file\n"
	"  -j, --jobs N                   threads (default 1; 0 = one per CPU)\n"
	"      --max-line SIZE            longest input line (default 256M)\n"
	"  -q, --quiet                    no warnings\n"
	"  -v, --verbose                  more detail\n"
	"  -h, --help                     this help\n"
	"  -V, --version                  the version\n"
	"\n"
	"Exit status: 0 done; 1 some input lines were bad (each named on stderr, the\n"
	"rest still flowed), or a failure; 2 usage error.\n";

/* ---- options -------------------------------------------------------------- */

static struct {
	const char *cmd;
	const char *output, *tokenizer, *encoding, *text_field, *template, *format, *split;
	const char *pattern;
	const char **specials;
	size_t nspecials;
	size_t vocab_size;
	uint64_t min_frequency, shard_size;
	double val_fraction;
	int level, allow_special, jobs, lines;
	size_t max_line;
	unsigned shard_index, shard_count; /* --shard I/N; count 0: no sharding */
} opt = {
	.text_field = "text",
	.template = "chatml",
	.pattern = "o200k",
	.vocab_size = 32000,
	.min_frequency = 2,
	.jobs = 1,
	.max_line = (size_t)256 << 20,
	.split = "train",
};

/* ---- the tokenizer ---------------------------------------------------------- */

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}

static struct qn_bpe *load_tokenizer(const char *arg, const char *encoding)
{
	struct qn_err e;
	struct stat st;
	char path[4096];
	struct qn_bpe *b = NULL;

	if (!arg) {
		qn_usage_error("%s needs a tokenizer (-t FILE.tiktoken, tokenizer.json or DIR)",
			       opt.cmd);
		return NULL;
	}
	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof path, "%s/tokenizer.json", arg);
		b = qn_bpe_load_hf(path, &e);
	} else if (ends_with(arg, ".tiktoken")) {
		char name[256];
		const char *base = strrchr(arg, '/');
		snprintf(name, sizeof name, "%s", base ? base + 1 : arg);
		name[strlen(name) - strlen(".tiktoken")] = 0;
		const struct qn_bpe_spec *spec = qn_bpe_spec_named(encoding ? encoding : name);
		if (!spec) {
			qn_usage_error("'%s': which encoding is it? name it with --encoding "
				       "(r50k_base, cl100k_base, o200k_base)",
				       arg);
			return NULL;
		}
		b = qn_bpe_load_tiktoken(arg, spec, &e);
	} else {
		b = qn_bpe_load_hf(arg, &e);
	}
	if (!b)
		qn_error("%s", e.msg);
	return b;
}

/* ---- reading lines on the main thread, in batches ---------------------------- */

#define BATCH_LINES 256
#define BATCH_BYTES (4u << 20)

struct item {
	int ok;
	int pair;	      /* a preference pair: docs 2k, 2k+1 */
	size_t ndocs;	      /* 0, 1 or 2 */
	struct qn_bpe_ids ids[2];
	struct qn_shard_span *spans[2];
	size_t nspans[2], capspans[2];
	int masked;
	char *id;
	char *task, *label; /* names, resolved to ids on the main thread */
	int label_int;	    /* label given as an integer: its value */
	char *text;	    /* train: the text to count */
	size_t tlen;
};

struct batch {
	struct qn_lines l;
	struct item *items;
	struct qn_buf msgs, out; /* out: ids/decode lines */
};

static struct batch *batch_new(const char *file)
{
	struct batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	qn_lines_init(&b->l, file);
	qn_buf_init(&b->msgs, QN_BUF_UNLIMITED);
	qn_buf_init(&b->out, QN_BUF_UNLIMITED);
	return b;
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; b->items && i < b->l.n; i++) {
		struct item *it = &b->items[i];
		for (int k = 0; k < 2; k++) {
			qn_bpe_ids_release(&it->ids[k]);
			free(it->spans[k]);
		}
		free(it->id);
		free(it->text);
		free(it->task);
		free(it->label);
	}
	qn_lines_release(&b->l);
	qn_buf_release(&b->msgs);
	qn_buf_release(&b->out);
	free(b->items);
	free(b);
}

typedef void *(*work_fn)(void *job, void *ctx);
typedef int (*emit_fn)(void *job, void *ctx);

struct reader_state {
	uint64_t bad_lines, bad_inputs, lines, bytes;
	int failed;
	struct qn_manifest *man;
};

static struct reader_state rs;

/*
 * --shard: sizes the inputs and picks this shard's part of each: a regular,
 * uncompressed file is cut at line boundaries, stdin and compressed files go
 * whole to the shard that owns their first byte (lib/shardsel.h).
 */
static struct qn_shard_part *plan_shard(char **inputs, int ninputs)
{
	size_t n = (size_t)ninputs;
	uint64_t *size = calloc(n, sizeof *size);
	int *split = calloc(n, sizeof *split);
	struct qn_shard_part *parts = calloc(n, sizeof *parts);

	if (size && split && parts) {
		for (size_t i = 0; i < n; i++) {
			struct stat st;
			int fd;
			if (!strcmp(inputs[i], "-") || stat(inputs[i], &st) < 0 ||
			    !S_ISREG(st.st_mode))
				continue; /* unknown size: whole, to the shard owning its start */
			size[i] = (uint64_t)st.st_size;
			if ((fd = open(inputs[i], O_RDONLY | O_CLOEXEC)) >= 0) {
				split[i] = qn_shardsel_splittable_fd(fd);
				close(fd);
			}
		}
		qn_shardsel_plan(opt.shard_index, opt.shard_count, n, size, split, parts);
	} else {
		free(parts);
		parts = NULL;
	}
	free(size);
	free(split);
	return parts;
}

/* Opens this shard's lines of path; *lineno gets the lines before them. */
static struct qn_rd *open_part(const char *path, const struct qn_shard_part *part, int *fd,
			       uint64_t *lineno, struct qn_err *e)
{
	uint64_t first, last;
	struct qn_rd *rd = NULL;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		qn_errno(e, errno, "cannot open '%s'", path);
		return NULL;
	}
	if (qn_shardsel_lines(*fd, path, part, &first, &last, lineno, e) == 0) {
		if (lseek(*fd, (off_t)first, SEEK_SET) < 0)
			qn_errno(e, errno, "cannot read '%s'", path);
		else if ((rd = qn_rd_fdopen(*fd, path, QN_RD_SHA256 | QN_RD_RAW, e)) != NULL)
			qn_rd_limit(rd, last - first);
	}
	if (!rd) {
		close(*fd);
		*fd = -1;
	}
	return rd;
}

/* Reads every input in batches through the pool; 0, or -1 on a failure. */
static int feed(char **inputs, int ninputs, work_fn work, emit_fn emit, void *ctx)
{
	static char *std_in[] = {"-"};
	struct qn_pool *pool = qn_pool_new(opt.jobs, (size_t)opt.jobs * 4, work, emit, ctx);
	struct qn_buf line;

	if (!pool) {
		qn_error("out of memory");
		return -1;
	}
	if (ninputs == 0) {
		inputs = std_in;
		ninputs = 1;
	}
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	struct qn_shard_part *parts = opt.shard_count ? plan_shard(inputs, ninputs) : NULL;
	if (opt.shard_count && !parts) {
		qn_error("out of memory");
		rs.failed = 1;
	}
	for (int f = 0; f < ninputs && !rs.failed; f++) {
		const char *path = inputs[f], *name = strcmp(path, "-") ? path : "stdin";
		struct qn_err e;
		struct qn_rd *rd;
		uint64_t lineno = 0;
		int part_fd = -1;
		if (parts && !parts[f].take)
			continue; /* another shard's */
		if (parts && !parts[f].whole)
			rd = open_part(path, &parts[f], &part_fd, &lineno, &e);
		else
			rd = qn_rd_open(strcmp(path, "-") ? path : NULL, QN_RD_SHA256, &e);
		if (!rd) {
			qn_error("%s", e.msg);
			rs.bad_inputs++;
			continue;
		}
		struct batch *b = batch_new(name);
		while (b && !rs.failed) {
			int lr = qn_rd_line(rd, &line, opt.max_line, &e);
			if (lr == 0)
				break;
			if (lr == -1) {
				qn_error("%s", e.msg);
				rs.failed = 1;
				break;
			}
			lineno++;
			if (lr == 1 && line.len == strspn(line.data, " \t\r"))
				continue;
			rs.lines++;
			rs.bytes += lr == 1 ? line.len : 0;
			if (qn_lines_add(&b->l, line.data, lr == 1 ? line.len : QN_LINES_TOO_LONG, lineno) < 0) {
				qn_error("out of memory");
				rs.failed = 1;
				break;
			}
			if (b->l.n >= BATCH_LINES || b->l.in.len >= BATCH_BYTES) {
				if (qn_pool_submit(pool, b) != 0) {
					b = NULL;
					rs.failed = 1;
					break;
				}
				b = batch_new(name);
			}
		}
		if (b && b->l.n && !rs.failed)
			qn_pool_submit(pool, b);
		else
			batch_free(b);
		char sha[65];
		if (!rs.failed && rs.man && qn_rd_sha256(rd, sha, &e) == 0)
			qn_manifest_input(rs.man, name, qn_rd_raw_bytes(rd), sha);
		qn_rd_close(rd);
		if (part_fd >= 0)
			close(part_fd);
	}
	if (qn_pool_finish(pool) != 0)
		rs.failed = 1;
	qn_pool_free(pool);
	qn_buf_release(&line);
	free(parts);
	if (ninputs > 0 && rs.bad_inputs == (uint64_t)ninputs) {
		qn_error("no input could be read");
		rs.failed = 1;
	}
	return rs.failed ? -1 : 0;
}

static void print_msgs(struct batch *b)
{
	for (char *line = b->msgs.data, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = 0;
		qn_error("%s", line);
		rs.bad_lines++;
	}
}

#define BAD(...)                                                                       \
	do {                                                                           \
		qn_buf_printf(&b->msgs, "%s:%llu: ", b->l.file,                          \
			      (unsigned long long)b->l.lineno[i]);                       \
		qn_buf_printf(&b->msgs, __VA_ARGS__);                                  \
		qn_buf_addc(&b->msgs, '\n');                                           \
		goto bad;                                                              \
	} while (0)

/* ---- per-thread encoder state ------------------------------------------------ */

static struct qn_bpe *tok;

struct wctx {
	struct qn_bpe_scratch *s;
	struct qn_buf text, rest; /* the document fast path (lib/docjson.h) */
	struct wctx *next;
};

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static struct wctx *wall;
static __thread struct wctx *wmine;

static struct wctx *wctx_get(void)
{
	if (wmine)
		return wmine;
	struct wctx *w = calloc(1, sizeof *w);
	if (!w || !(w->s = qn_bpe_scratch_new(tok))) {
		free(w);
		return NULL;
	}
	qn_buf_init(&w->text, QN_BUF_UNLIMITED);
	qn_buf_init(&w->rest, QN_BUF_UNLIMITED);
	pthread_mutex_lock(&wmu);
	w->next = wall;
	wall = w;
	pthread_mutex_unlock(&wmu);
	return wmine = w;
}

static void wctx_free_all(void)
{
	while (wall) {
		struct wctx *w = wall;
		wall = w->next;
		qn_bpe_scratch_free(w->s);
		qn_buf_release(&w->text);
		qn_buf_release(&w->rest);
		free(w);
	}
}

/* ---- examples to documents ------------------------------------------------------ */

/*
 * The chat template. ChatML writes each message as
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n
 * and an assistant message is trained on from its content through its
 * <|im_end|> (the model learns to stop). The markers become special tokens
 * when the tokenizer has them, else they are encoded as text. "plain" writes
 * the contents one after the other, with nothing between them.
 */
struct render {
	struct wctx *w;
	struct qn_bpe_ids *ids;
	struct qn_shard_span **spans;
	size_t *nspans, *capspans;
	struct qn_err *e;
};

static int enc_text(struct render *r, const char *s, size_t n, unsigned flags)
{
	return qn_bpe_encode(tok, r->w->s, s, n, flags, r->ids, r->e);
}

static int enc_marker(struct render *r, const char *m)
{
	uint32_t id = qn_bpe_special_id(tok, m, strlen(m));
	if (id != QN_BPE_NONE) {
		if (r->ids->n >= r->ids->cap) {
			/* one id: let the encoder grow the array */
			return enc_text(r, m, strlen(m), QN_BPE_ALLOW_SPECIAL);
		}
		r->ids->v[r->ids->n++] = id;
		return 0;
	}
	return enc_text(r, m, strlen(m), 0);
}

static int add_span(struct render *r, size_t start, size_t end)
{
	if (end <= start)
		return 0;
	if (*r->nspans == *r->capspans) {
		size_t cap = *r->capspans ? *r->capspans * 2 : 4;
		struct qn_shard_span *p = realloc(*r->spans, cap * sizeof *p);
		if (!p)
			return -1;
		*r->spans = p;
		*r->capspans = cap;
	}
	(*r->spans)[(*r->nspans)++] = (struct qn_shard_span){(uint32_t)start, (uint32_t)end};
	return 0;
}

/* One message; trained marks the assistant's part. */
static int render_msg(struct render *r, const char *role, const char *content, size_t n,
		      int trained, unsigned flags)
{
	int chatml = !strcmp(opt.template, "chatml");
	if (chatml && (enc_marker(r, "<|im_start|>") < 0 || enc_text(r, role, strlen(role), 0) < 0 ||
		       enc_text(r, "\n", 1, 0) < 0))
		return -1;
	size_t start = r->ids->n;
	if (enc_text(r, content, n, flags) < 0)
		return -1;
	if (chatml && enc_marker(r, "<|im_end|>") < 0)
		return -1;
	size_t end = r->ids->n;
	if (chatml && enc_text(r, "\n", 1, 0) < 0)
		return -1;
	return trained ? add_span(r, start, end) : 0;
}

static const char *str_field(json_t *o, const char *k, size_t *n)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		return NULL;
	*n = json_string_length(v);
	return json_string_value(v);
}

/* Encodes one line into it (documents 0 and, for a pair, 1). */
static void encode_item(struct wctx *w, struct batch *b, size_t i)
{
	struct item *it = &b->items[i];
	const char *line = b->l.in.data + b->l.off[i];
	size_t len = b->l.len[i];
	unsigned flags = opt.allow_special ? QN_BPE_ALLOW_SPECIAL : 0;
	json_error_t je;
	json_t *o = NULL;
	struct qn_err e;
	size_t n1, n2, n3;
	const char *s1, *s2, *s3;

	for (int k = 0; k < 2; k++)
		qn_bpe_ids_init(&it->ids[k], QN_SHARD_DOC_MAX);
	if (len == QN_LINES_TOO_LONG)
		BAD("line longer than %zu bytes (--max-line); skipped", opt.max_line);
	/* Documents: "text" decoded by the fast path, the rest by jansson. */
	int fast = !strcmp(opt.text_field, "text") &&
		   (o = qn_docjson_parse(line, len, &w->text, &w->rest)) != NULL;
	if (!fast)
		o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
	if (!json_is_object(o))
		BAD(o ? "not a JSON object" : "invalid JSON at column %d: %s", je.column, je.text);

	json_t *jid = json_object_get(o, "id");
	char idbuf[40];
	if (json_is_string(jid)) {
		it->id = strdup(json_string_value(jid));
	} else if (json_is_integer(jid)) {
		snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(jid));
		it->id = strdup(idbuf);
	} else {
		qn_hash128_hex(qn_xxh3_128(line, len, 0), idbuf);
		it->id = strdup(idbuf);
	}
	json_t *jt = json_object_get(o, "task");
	if (json_is_string(jt))
		it->task = strdup(json_string_value(jt));
	json_t *jl = json_object_get(o, "label");
	it->label_int = -1;
	if (json_is_string(jl))
		it->label = strdup(json_string_value(jl));
	else if (json_is_integer(jl)) {
		json_int_t v = json_integer_value(jl);
		if (v < 0 || v > 1000000)
			BAD("\"label\" %lld is out of range (0 to 1000000)", (long long)v);
		it->label_int = (int)v;
	} else if (jl && !json_is_null(jl))
		BAD("\"label\" must be a string or an integer");

	struct render r = {w, &it->ids[0], &it->spans[0], &it->nspans[0], &it->capspans[0], &e};
	json_t *jids = json_object_get(o, "ids"), *msgs = json_object_get(o, "messages");
	if (json_is_array(jids)) {
		/* Already tokenized. */
		size_t k;
		json_t *v;
		uint32_t vs = qn_bpe_vocab_size(tok);
		json_array_foreach(jids, k, v) {
			json_int_t x = json_integer_value(v);
			if (!json_is_integer(v) || x < 0 || x >= (json_int_t)vs)
				BAD("\"ids\"[%zu] is not a token id below %u", k, vs);
			if (r.ids->n == r.ids->cap) {
				size_t cap = r.ids->cap ? r.ids->cap * 2 : 1024;
				uint32_t *p = realloc(r.ids->v, cap * sizeof *p);
				if (!p)
					BAD("out of memory");
				r.ids->v = p;
				r.ids->cap = cap;
			}
			r.ids->v[r.ids->n++] = (uint32_t)x;
		}
		it->ndocs = 1;
	} else if ((s1 = str_field(o, "prompt", &n1)) && (s2 = str_field(o, "chosen", &n2)) &&
		   (s3 = str_field(o, "rejected", &n3))) {
		it->pair = 1;
		it->masked = 1;
		for (int k = 0; k < 2; k++) {
			struct render rk = {w, &it->ids[k], &it->spans[k], &it->nspans[k],
					    &it->capspans[k], &e};
			if (render_msg(&rk, "user", s1, n1, 0, flags) < 0 ||
			    render_msg(&rk, "assistant", k ? s3 : s2, k ? n3 : n2, 1, flags) < 0)
				BAD("%s", e.msg);
		}
		it->ndocs = 2;
	} else if ((s1 = str_field(o, "prompt", &n1)) && (s2 = str_field(o, "completion", &n2))) {
		it->masked = 1;
		if (render_msg(&r, "user", s1, n1, 0, flags) < 0 ||
		    render_msg(&r, "assistant", s2, n2, 1, flags) < 0)
			BAD("%s", e.msg);
		it->ndocs = 1;
	} else if (json_is_array(msgs)) {
		size_t k;
		json_t *m;
		it->masked = 1;
		json_array_foreach(msgs, k, m) {
			size_t nr, nc;
			const char *role = str_field(m, "role", &nr), *content = str_field(m, "content", &nc);
			if (!role || !content)
				BAD("\"messages\"[%zu] needs string \"role\" and \"content\"", k);
			if (render_msg(&r, role, content, nc, !strcmp(role, "assistant"), flags) < 0)
				BAD("%s", e.msg);
		}
		if (!k)
			BAD("\"messages\" is empty");
		it->ndocs = 1;
	} else if ((s1 = str_field(o, opt.text_field, &n1))) {
		if (fast) {
			s1 = w->text.data;
			n1 = w->text.len;
		}
		if (enc_text(&r, s1, n1, flags) < 0)
			BAD("%s", e.msg);
		it->ndocs = 1;
	} else if (json_object_get(o, "prompt")) {
		BAD("an example with \"prompt\" needs string \"completion\", or \"chosen\" and "
		    "\"rejected\"");
	} else {
		BAD("no string \"%s\" (nor prompt/completion, messages, chosen/rejected or ids)",
		    opt.text_field);
	}
	it->ok = 1;
bad:
	json_decref(o);
}

/* ---- encode: shards --------------------------------------------------------------- */

struct names {
	char **v;
	size_t n;
};

static long name_id(struct names *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i], name))
			return (long)i;
	char **p = realloc(t->v, (t->n + 1) * sizeof *p);
	if (!p)
		return -1;
	t->v = p;
	if (!(p[t->n] = strdup(name)))
		return -1;
	return (long)t->n++;
}

static void names_free(struct names *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
}

#define WQ 8 /* batches queued for the writer thread */

struct enc_run {
	struct qn_shard_writer *w[QN_SHARD_NSPLITS];
	struct names tasks, labels;
	uint64_t docs[QN_SHARD_NSPLITS], tokens;
	/* the writer thread and its queue */
	pthread_t th;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *q[WQ];
	size_t qhead, qn;
	int qdone, wfailed;
};

static void *encode_work(void *job, void *ctx)
{
	struct batch *b = job;
	struct wctx *w = wctx_get();
	(void)ctx;
	b->items = calloc(b->l.n ? b->l.n : 1, sizeof *b->items);
	if (!w || !b->items)
		return b;
	for (size_t i = 0; i < b->l.n; i++)
		encode_item(w, b, i);
	return b;
}

static int split_of(const char *id)
{
	if (opt.val_fraction <= 0)
		return QN_SHARD_TRAIN;
	/* Deterministic by id: the top 53 bits of its hash as a fraction. */
	uint64_t h = qn_shard_id_hash(id, strlen(id));
	double u = (double)(h >> 11) / 9007199254740992.0;
	return u < opt.val_fraction ? QN_SHARD_VAL : QN_SHARD_TRAIN;
}

/* Writes one batch's documents, in order; on the writer thread. */
static void write_batch(struct enc_run *r, struct batch *b)
{
	struct qn_err e;
	int failed = 0;

	if (!b->items) {
		qn_error("out of memory");
		failed = 1;
	}
	for (size_t i = 0; b->items && i < b->l.n && !failed; i++) {
		struct item *it = &b->items[i];
		if (!it->ok)
			continue;
		long task = it->task ? name_id(&r->tasks, it->task) : 0;
		long label = it->label ? name_id(&r->labels, it->label) : it->label_int;
		if (task < 0 || (it->label && label < 0) || task > 65535) {
			qn_error(task > 65535 ? "more than 65536 tasks" : "out of memory");
			failed = 1;
			break;
		}
		if (it->label_int >= 0) {
			/* Integer labels name themselves: "0", "1", ... */
			char nm[24];
			while (r->labels.n <= (size_t)it->label_int) {
				snprintf(nm, sizeof nm, "%zu", r->labels.n);
				if (name_id(&r->labels, nm) < 0) {
					failed = 1;
					break;
				}
			}
		}
		int split = split_of(it->id);
		struct qn_shard_doc d[2];
		for (size_t k = 0; k < it->ndocs; k++)
			d[k] = (struct qn_shard_doc){
				.ids = it->ids[k].v,
				.n = it->ids[k].n,
				.task = (uint16_t)task,
				.label = (int32_t)label,
				.id_hash = qn_shard_id_hash(it->id, strlen(it->id)),
				.masked = it->masked,
				.spans = it->spans[k],
				.nspans = it->nspans[k],
			};
		int rc = it->pair ? qn_shard_writer_add_pair(r->w[split], &d[0], &d[1], &e)
				  : qn_shard_writer_add(r->w[split], &d[0], &e);
		if (rc < 0) {
			qn_error("%s:%llu: %s", b->l.file, (unsigned long long)b->l.lineno[i], e.msg);
			failed = 1;
			break;
		}
		r->docs[split] += it->ndocs;
		for (size_t k = 0; k < it->ndocs; k++)
			r->tokens += it->ids[k].n;
	}
	batch_free(b);
	if (failed) {
		pthread_mutex_lock(&r->mu);
		r->wfailed = 1;
		pthread_mutex_unlock(&r->mu);
	}
}

/*
 * With -j 2 or more the shard writer (varint coding and zstd) runs on a
 * thread of its own, fed in order through a short queue, so the main thread
 * goes on reading and the workers on encoding while blocks are compressed.
 * With -j 1 everything runs on one thread.
 */
static void *writer_main(void *arg)
{
	struct enc_run *r = arg;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (!r->qn && !r->qdone)
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->qn) {
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		struct batch *b = r->q[r->qhead];
		r->qhead = (r->qhead + 1) % WQ;
		r->qn--;
		pthread_cond_broadcast(&r->cv);
		int skip = r->wfailed;
		pthread_mutex_unlock(&r->mu);
		if (skip)
			batch_free(b);
		else
			write_batch(r, b);
	}
}

static int encode_emit(void *job, void *ctx)
{
	struct batch *b = job;
	struct enc_run *r = ctx;

	print_msgs(b);
	if (!r->started) {
		/* -j 1: one thread does everything. */
		write_batch(r, b);
		return r->wfailed;
	}
	pthread_mutex_lock(&r->mu);
	while (r->qn == WQ)
		pthread_cond_wait(&r->cv, &r->mu);
	r->q[(r->qhead + r->qn) % WQ] = b;
	r->qn++;
	pthread_cond_broadcast(&r->cv);
	int failed = r->wfailed;
	pthread_mutex_unlock(&r->mu);
	return failed;
}

/* Stops the writer thread after the queue is empty; 0, or -1 when it failed. */
static int writer_join(struct enc_run *r)
{
	pthread_mutex_lock(&r->mu);
	r->qdone = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->th, NULL);
	r->started = 0;
	return r->wfailed ? -1 : 0;
}

/* Records dir/manifest.json and each shard file it names as outputs of man. */
static int manifest_shards(struct qn_manifest *man, const char *dir)
{
	struct qn_err e;
	char path[4200], sha[65];
	uint64_t size;
	struct qn_shard_dir *d = qn_shard_dir_open(dir, &e);
	if (!d) {
		qn_error("%s", e.msg);
		return -1;
	}
	int rc = 0;
	for (int s = 0; s < QN_SHARD_NSPLITS && !rc; s++)
		for (size_t i = 0; i < qn_shard_dir_nfiles(d, s) && !rc; i++) {
			const char *f = qn_shard_dir_path(d, s, i);
			rc = qn_sha256_file(f, sha, &size, &e) ||
			     qn_manifest_output(man, f, size, sha);
		}
	snprintf(path, sizeof path, "%s/%s", dir, QN_SHARD_MANIFEST);
	if (!rc)
		rc = qn_sha256_file(path, sha, &size, &e) || qn_manifest_output(man, path, size, sha);
	qn_shard_dir_close(d);
	if (rc)
		qn_error("%s", e.msg[0] ? e.msg : "out of memory");
	return rc ? -1 : 0;
}

static int cmd_encode(int argc, char **argv, int argi)
{
	struct enc_run r = {0};
	struct qn_err e;
	int rc = 1;

	if (!opt.output)
		return qn_usage_error("encode needs -o DIR");
	if (!opt.tokenizer)
		return qn_usage_error("encode needs a tokenizer (-t FILE.tiktoken, tokenizer.json "
				      "or DIR)");
	if (!(tok = load_tokenizer(opt.tokenizer, opt.encoding)))
		return 1;
	struct qn_shard_opts so = {
		.fingerprint = qn_bpe_fingerprint(tok),
		.vocab_size = qn_bpe_vocab_size(tok),
		.level = opt.level,
		.max_bytes = opt.shard_size,
	};
	if (mkdir(opt.output, 0777) < 0 && errno != EEXIST) {
		qn_error("cannot make '%s': %s", opt.output, strerror(errno));
		goto out;
	}
	for (int s = 0; s < QN_SHARD_NSPLITS; s++)
		if (!(r.w[s] = qn_shard_writer_open(opt.output, s, &so, &e))) {
			qn_error("%s", e.msg);
			goto out;
		}
	rs.man = qn_manifest_new("quern-tokenize", QN_VERSION, argc, argv);
	/* Task 0 is the one of examples that name none. */
	if (name_id(&r.tasks, "default") < 0)
		goto out;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (opt.jobs > 1) {
		if (pthread_create(&r.th, NULL, writer_main, &r) != 0) {
			qn_error("cannot start a thread");
			goto out;
		}
		r.started = 1;
	}
	int fed = feed(argv + argi, argc - argi, encode_work, encode_emit, &r);
	if ((r.started && writer_join(&r) < 0) || r.wfailed || fed < 0)
		goto out;
	for (int s = 0; s < QN_SHARD_NSPLITS; s++)
		if (qn_shard_writer_close(r.w[s], &e) < 0) {
			qn_error("%s", e.msg);
			goto out;
		}
	struct qn_shard_special sp[64];
	size_t nsp = qn_bpe_special_count(tok);
	nsp = nsp > 64 ? 64 : nsp;
	char *spn[64] = {0};
	for (size_t i = 0; i < nsp; i++) {
		const char *nm;
		size_t nl;
		qn_bpe_special_at(tok, i, &nm, &nl, &sp[i].id);
		spn[i] = strndup(nm, nl);
		sp[i].name = spn[i] ? spn[i] : "";
	}
	uint32_t eot = qn_bpe_special_id(tok, "<|endoftext|>", 13);
	struct qn_shard_meta m = {
		.eot = eot == QN_BPE_NONE ? -1 : (int64_t)eot,
		.tasks = (const char *const *)r.tasks.v,
		.ntasks = r.tasks.n,
		.labels = (const char *const *)r.labels.v,
		.nlabels = r.labels.n,
		.specials = sp,
		.nspecials = nsp,
	};
	int crc = qn_shard_dir_commit(opt.output, r.w, QN_SHARD_NSPLITS, &m, &e);
	for (size_t i = 0; i < nsp; i++)
		free(spn[i]);
	if (crc < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_manifest_count(rs.man, "documents_train", (int64_t)r.docs[QN_SHARD_TRAIN]);
	qn_manifest_count(rs.man, "documents_val", (int64_t)r.docs[QN_SHARD_VAL]);
	qn_manifest_count(rs.man, "tokens", (int64_t)r.tokens);
	qn_manifest_count(rs.man, "text_bytes", (int64_t)rs.bytes);
	qn_manifest_count(rs.man, "bad_lines", (int64_t)rs.bad_lines);
	qn_manifest_set(rs.man, "tokenizer", json_string(qn_bpe_fingerprint(tok)));
	/* Outputs for lineage: the shard directory's manifest and every shard file. */
	if (manifest_shards(rs.man, opt.output) < 0)
		goto out;
	char mp[4096];
	snprintf(mp, sizeof mp, "%s/run.manifest.json", opt.output);
	if (qn_manifest_write(rs.man, mp, &e) < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_info("%llu train and %llu val documents, %llu tokens (%.2f bytes of JSONL a token)",
		(unsigned long long)r.docs[0], (unsigned long long)r.docs[1],
		(unsigned long long)r.tokens, r.tokens ? (double)rs.bytes / (double)r.tokens : 0);
	rc = rs.bad_lines || rs.bad_inputs ? 1 : 0;
out:
	if (r.started)
		writer_join(&r);
	for (int s = 0; s < QN_SHARD_NSPLITS; s++)
		qn_shard_writer_free(r.w[s]);
	names_free(&r.tasks);
	names_free(&r.labels);
	return rc;
}

/* ---- ids and decode: the plain filters ---------------------------------------------- */

static struct qn_wr *out_w;

static int write_out(struct batch *b)
{
	struct qn_err e;
	if (b->out.len && qn_wr_write(out_w, b->out.data, b->out.len, &e) < 0) {
		qn_error("%s", e.msg);
		rs.failed = 1;
		return -1;
	}
	return 0;
}

/* Appends ids as "1,22,333" (printf per id would cost more than encoding). */
static void put_ids(struct qn_buf *out, const uint32_t *v, size_t n)
{
	if (!n || qn_buf_grow(out, n * 11) < 0)
		return;
	char *o = out->data + out->len;
	for (size_t i = 0; i < n; i++) {
		char d[10];
		int k = 0;
		uint32_t x = v[i];
		do {
			d[k++] = (char)('0' + x % 10);
			x /= 10;
		} while (x);
		if (i)
			*o++ = ',';
		while (k)
			*o++ = d[--k];
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = 0;
}

static void *ids_work(void *job, void *ctx)
{
	struct batch *b = job;
	struct wctx *w = wctx_get();
	(void)ctx;
	b->items = calloc(b->l.n ? b->l.n : 1, sizeof *b->items);
	if (!w || !b->items)
		return b;
	for (size_t i = 0; i < b->l.n; i++) {
		struct item *it = &b->items[i];
		encode_item(w, b, i);
		if (!it->ok)
			continue;
		for (size_t k = 0; k < it->ndocs; k++) {
			qn_buf_adds(&b->out, "{\"id\":");
			qn_json_str(&b->out, it->id, strlen(it->id));
			if (it->pair)
				qn_buf_adds(&b->out, k ? ",\"role\":\"rejected\"" : ",\"role\":\"chosen\"");
			qn_buf_adds(&b->out, ",\"ids\":[");
			put_ids(&b->out, it->ids[k].v, it->ids[k].n);
			qn_buf_adds(&b->out, "]");
			if (it->masked) {
				qn_buf_adds(&b->out, ",\"mask\":[");
				for (size_t t = 0; t < it->nspans[k]; t++)
					qn_buf_printf(&b->out, t ? ",[%u,%u]" : "[%u,%u]",
						      it->spans[k][t].start, it->spans[k][t].end);
				qn_buf_adds(&b->out, "]");
			}
			qn_buf_adds(&b->out, "}\n");
		}
	}
	return b;
}

static void *decode_work(void *job, void *ctx)
{
	struct batch *b = job;
	struct qn_buf text;
	(void)ctx;
	qn_buf_init(&text, QN_BUF_UNLIMITED);
	for (size_t i = 0; i < b->l.n; i++) {
		json_error_t je;
		json_t *o = NULL;
		uint32_t *ids = NULL;
		struct qn_err e;
		if (b->l.len[i] == QN_LINES_TOO_LONG)
			BAD("line longer than %zu bytes (--max-line); skipped", opt.max_line);
		o = json_loadb(b->l.in.data + b->l.off[i], b->l.len[i], 0, &je);
		json_t *a = json_object_get(o, "ids");
		if (!json_is_array(a))
			BAD(o ? "no \"ids\" array" : "invalid JSON at column %d: %s", je.column,
			    je.text);
		size_t n = json_array_size(a), k;
		json_t *v;
		ids = malloc((n ? n : 1) * sizeof *ids);
		if (!ids)
			BAD("out of memory");
		json_array_foreach(a, k, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > (json_int_t)UINT32_MAX)
				BAD("\"ids\"[%zu] is not a token id", k);
			ids[k] = (uint32_t)json_integer_value(v);
		}
		qn_buf_reset(&text);
		if (qn_bpe_decode(tok, ids, n, &text, &e) < 0)
			BAD("%s", e.msg);
		/* Token boundaries may split a character: keep the JSON valid. */
		struct qn_buf fixed;
		qn_buf_init(&fixed, QN_BUF_UNLIMITED);
		int lossy = !qn_utf8_valid(text.data, text.len);
		if (lossy)
			qn_utf8_repair(&fixed, text.data, text.len);
		json_t *id = json_object_get(o, "id");
		qn_buf_adds(&b->out, "{\"id\":");
		char *ds = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		qn_buf_adds(&b->out, ds ? ds : "null");
		free(ds);
		qn_buf_adds(&b->out, ",\"text\":");
		if (lossy)
			qn_json_str(&b->out, fixed.data, fixed.len);
		else
			qn_json_str(&b->out, text.data, text.len);
		qn_buf_adds(&b->out, lossy ? ",\"repaired\":true}\n" : "}\n");
		qn_buf_release(&fixed);
bad:
		free(ids);
		json_decref(o);
	}
	qn_buf_release(&text);
	return b;
}

static int filter_emit(void *job, void *ctx)
{
	struct batch *b = job;
	(void)ctx;
	print_msgs(b);
	write_out(b);
	batch_free(b);
	return rs.failed;
}

static int cmd_filter(int argc, char **argv, int argi, int decode)
{
	struct qn_err e;
	int rc = 1;

	if (!opt.tokenizer)
		return qn_usage_error("%s needs a tokenizer (-t FILE.tiktoken, tokenizer.json or DIR)",
				      opt.cmd);
	if (!(tok = load_tokenizer(opt.tokenizer, opt.encoding)))
		return 1;
	if (!(out_w = qn_wr_open(opt.output, 0, &e))) {
		qn_error("%s", e.msg);
		return 1;
	}
	if (feed(argv + argi, argc - argi, decode ? decode_work : ids_work, filter_emit, NULL) < 0) {
		qn_wr_abort(out_w);
		return 1;
	}
	if (qn_wr_commit(out_w, NULL, &e) < 0) {
		qn_error("%s", e.msg);
		return 1;
	}
	rc = rs.bad_lines || rs.bad_inputs ? 1 : 0;
	return rc;
}

/* ---- train ---------------------------------------------------------------------------- */

struct train_run {
	struct qn_bpet *t;
};

static void *train_work(void *job, void *ctx)
{
	struct batch *b = job;
	(void)ctx;
	b->items = calloc(b->l.n ? b->l.n : 1, sizeof *b->items);
	if (!b->items)
		return b;
	/* Parse here; the trainer counts (with its own threads) on the main thread. */
	for (size_t i = 0; i < b->l.n; i++) {
		json_error_t je;
		json_t *o = NULL;
		const char *line = b->l.in.data + b->l.off[i];
		size_t len = b->l.len[i];
		if (len == QN_LINES_TOO_LONG)
			BAD("line longer than %zu bytes (--max-line); skipped", opt.max_line);
		if (opt.lines || line[strspn(line, " \t")] != '{') {
			/* Plain text: the line itself. */
			b->items[i].ok = 2;
			continue;
		}
		o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
		json_t *t = json_object_get(o, opt.text_field);
		if (!json_is_string(t)) {
			size_t n1 = 0, n2 = 0;
			const char *p = str_field(o, "prompt", &n1), *c = str_field(o, "completion", &n2);
			if (!p || !c)
				BAD(o ? "no string \"%s\"" : "invalid JSON: %s",
				    o ? opt.text_field : je.text);
			size_t n = n1 + n2;
			char *s = malloc(n + 1);
			if (!s)
				BAD("out of memory");
			memcpy(s, p, n1);
			memcpy(s + n1, c, n2);
			b->items[i].text = s;
			b->items[i].tlen = n;
		} else {
			size_t n = json_string_length(t);
			char *s = malloc(n + 1);
			if (!s)
				BAD("out of memory");
			memcpy(s, json_string_value(t), n);
			b->items[i].text = s;
			b->items[i].tlen = n;
		}
		b->items[i].ok = 1;
bad:
		json_decref(o);
	}
	return b;
}

static int train_emit(void *job, void *ctx)
{
	struct batch *b = job;
	struct train_run *r = ctx;
	struct qn_err e;
	print_msgs(b);
	for (size_t i = 0; b->items && i < b->l.n && !rs.failed; i++) {
		struct item *it = &b->items[i];
		const char *s = it->ok == 2 ? b->l.in.data + b->l.off[i] : it->text;
		size_t n = it->ok == 2 ? b->l.len[i] : it->tlen;
		if (it->ok && qn_bpet_add_text(r->t, s, n, &e) < 0) {
			qn_error("%s", e.msg);
			rs.failed = 1;
		}
	}
	if (!b->items)
		rs.failed = 1;
	batch_free(b);
	return rs.failed;
}

static int cmd_train(int argc, char **argv, int argi)
{
	struct qn_bpet_opts o;
	struct train_run r = {0};
	struct qn_err e;
	char path[4096];
	static const char *def_special[] = {"<|endoftext|>"};

	if (!opt.output)
		return qn_usage_error("train needs -o DIR");
	qn_bpet_opts_default(&o);
	o.pattern = opt.pattern;
	o.vocab_size = opt.vocab_size;
	o.min_frequency = opt.min_frequency;
	o.specials = opt.nspecials ? opt.specials : def_special;
	o.nspecials = opt.nspecials ? opt.nspecials : 1;
	o.threads = opt.jobs;
	if (!(r.t = qn_bpet_new(&o, &e))) {
		qn_error("%s", e.msg);
		return QN_EXIT_USAGE;
	}
	int jobs = opt.jobs;
	opt.jobs = 1; /* parsing is cheap; the trainer has the threads */
	int rc = 1;
	if (feed(argv + argi, argc - argi, train_work, train_emit, &r) < 0)
		goto out;
	opt.jobs = jobs;
	if (qn_bpet_train(r.t, &e) < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	if (mkdir(opt.output, 0777) < 0 && errno != EEXIST) {
		qn_error("cannot make '%s': %s", opt.output, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/tokenizer.tiktoken", opt.output);
	if (qn_bpet_write_tiktoken(r.t, path, &e) < 0)
		goto werr;
	snprintf(path, sizeof path, "%s/tokenizer.json", opt.output);
	if (qn_bpet_write_hf_json(r.t, path, &e) < 0)
		goto werr;
	snprintf(path, sizeof path, "%s/quern-tokenizer.json", opt.output);
	if (qn_bpet_write_config(r.t, path, &e) < 0)
		goto werr;
	struct qn_bpet_stats st;
	qn_bpet_get_stats(r.t, &st);
	qn_info("%llu texts, %llu bytes, %llu distinct pre-tokens, %llu merges%s",
		(unsigned long long)st.texts, (unsigned long long)st.bytes,
		(unsigned long long)st.distinct, (unsigned long long)st.merges,
		st.stopped_early ? " (stopped: no pair reached --min-frequency)" : "");
	rc = rs.bad_lines || rs.bad_inputs ? 1 : 0;
	goto out;
werr:
	qn_error("%s", e.msg);
out:
	qn_bpet_free(r.t);
	return rc;
}

/* ---- inspect, verify, export ----------------------------------------------------------- */

static int cmd_inspect(const char *dir)
{
	struct qn_err e;
	struct qn_shard_dir *d = qn_shard_dir_open(dir, &e);
	if (!d) {
		qn_error("%s", e.msg);
		return 1;
	}
	const struct qn_shard_dir_info *in = qn_shard_dir_info(d);
	json_t *o = json_object(), *splits = json_object(), *tasks = json_array(),
	       *labels = json_array();
	json_object_set_new(o, "tokenizer", json_string(in->fingerprint));
	json_object_set_new(o, "vocab_size", json_integer(in->vocab_size));
	json_object_set_new(o, "token_width", json_integer(in->width));
	json_object_set_new(o, "eot", json_integer(in->eot));
	for (int s = 0; s < QN_SHARD_NSPLITS; s++) {
		json_t *x = json_object();
		uint64_t bytes = 0, toks = qn_shard_dir_tokens(d, s);
		for (size_t i = 0; i < qn_shard_dir_nfiles(d, s); i++) {
			struct stat st;
			if (stat(qn_shard_dir_path(d, s, i), &st) == 0)
				bytes += (uint64_t)st.st_size;
		}
		json_object_set_new(x, "documents", json_integer((json_int_t)qn_shard_dir_docs(d, s)));
		json_object_set_new(x, "tokens", json_integer((json_int_t)toks));
		json_object_set_new(x, "files", json_integer((json_int_t)qn_shard_dir_nfiles(d, s)));
		json_object_set_new(x, "bytes", json_integer((json_int_t)bytes));
		json_object_set_new(x, "bytes_per_token", json_real(toks ? (double)bytes / (double)toks : 0));
		json_object_set_new(x, "compression_ratio",
				    json_real(bytes ? (double)toks * (in->width / 8) / (double)bytes : 0));
		json_object_set_new(splits, qn_shard_split_name(s), x);
	}
	json_object_set_new(o, "splits", splits);
	for (size_t i = 0; i < in->ntasks; i++)
		json_array_append_new(tasks, json_string(in->tasks[i]));
	for (size_t i = 0; i < in->nlabels; i++)
		json_array_append_new(labels, json_string(in->labels[i]));
	json_object_set_new(o, "tasks", tasks);
	json_object_set_new(o, "labels", labels);
	char *txt = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	if (txt)
		printf("%s\n", txt);
	free(txt);
	json_decref(o);
	qn_shard_dir_close(d);
	return 0;
}

static int cmd_verify(const char *dir)
{
	struct qn_err e;
	if (qn_shard_dir_verify(dir, &e) < 0) {
		qn_error("%s", e.msg);
		return 1;
	}
	qn_info("%s: every checksum matches", dir);
	return 0;
}

static int cmd_export(const char *dir, const char *out)
{
	struct qn_err e;
	int split = !strcmp(opt.split, "train") ? QN_SHARD_TRAIN
		    : !strcmp(opt.split, "val") ? QN_SHARD_VAL
						: -1;
	if (split < 0)
		return qn_usage_error("--split: train or val, not '%s'", opt.split);
	if (!opt.format || (strcmp(opt.format, "nanogpt") && strcmp(opt.format, "llmc")))
		return qn_usage_error("export needs --format nanogpt or llmc");
	struct qn_shard_dir *d = qn_shard_dir_open(dir, &e);
	if (!d) {
		qn_error("%s", e.msg);
		return 1;
	}
	int rc = !strcmp(opt.format, "nanogpt") ? qn_shard_export_nanogpt(d, split, out, &e)
						 : qn_shard_export_llmc(d, split, out, &e);
	if (rc < 0)
		qn_error("%s", e.msg);
	qn_shard_dir_close(d);
	return rc < 0 ? 1 : 0;
}

/* ---- merge: shard directories into one ----------------------------------------------------- */

/* Whether two directories' tokens mean the same: tokenizer, width, specials. */
static int same_tokens(const struct qn_shard_dir_info *a, const struct qn_shard_dir_info *b)
{
	if (strcmp(a->fingerprint, b->fingerprint) || a->vocab_size != b->vocab_size ||
	    a->width != b->width || a->eot != b->eot || a->nspecials != b->nspecials)
		return 0;
	for (size_t i = 0; i < a->nspecials; i++)
		if (a->specials[i].id != b->specials[i].id ||
		    strcmp(a->specials[i].name, b->specials[i].name))
			return 0;
	return 1;
}

/* A document as the writer takes it, its task and label mapped to the merged tables. */
static int merge_doc(const struct qn_shard_docview *v, const long *tmap, size_t nt,
		     const long *lmap, size_t nl, struct qn_shard_doc *d, struct qn_err *e)
{
	if (v->task >= nt || (v->label >= 0 && (size_t)v->label >= nl))
		return qn_errf(e, "document %llu: task or label id has no name",
			       (unsigned long long)v->index);
	*d = (struct qn_shard_doc){
		.ids = v->tokens,
		.n = v->n,
		.task = (uint16_t)tmap[v->task],
		.label = v->label >= 0 ? (int32_t)lmap[v->label] : v->label,
		.id_hash = v->id_hash,
		.masked = v->masked,
		.spans = v->spans,
		.nspans = v->nspans,
	};
	return 0;
}

/* Appends every document of split s of d, in order, pairs kept together. */
static int merge_split(struct qn_shard_dir *d, int s, struct qn_shard_writer *w, const long *tmap,
		       size_t nt, const long *lmap, size_t nl, struct qn_err *e)
{
	struct qn_shard_docview v;
	struct qn_shard_doc a, b;
	uint64_t n = qn_shard_dir_docs(d, s);
	int rc = 0;

	for (uint64_t k = 0; k < n && rc == 0; k++) {
		if ((rc = qn_shard_dir_read(d, s, k, &v, e)) < 0 ||
		    (rc = merge_doc(&v, tmap, nt, lmap, nl, &a, e)) < 0)
			break;
		if (v.role != QN_SHARD_CHOSEN) {
			rc = qn_shard_writer_add(w, &a, e);
			continue;
		}
		/* The chosen document's view dies with the next read: copy it. */
		uint32_t *ids = malloc(((size_t)a.n + 1) * sizeof *ids);
		struct qn_shard_span *sp = malloc((a.nspans + 1) * sizeof *sp);
		if (!ids || !sp) {
			free(ids);
			free(sp);
			return qn_errf(e, "out of memory");
		}
		memcpy(ids, a.ids, a.n * sizeof *ids);
		memcpy(sp, a.spans, a.nspans * sizeof *sp);
		a.ids = ids;
		a.spans = sp;
		if (k + 1 >= n || (rc = qn_shard_dir_read(d, s, ++k, &v, e)) < 0 ||
		    v.role != QN_SHARD_REJECTED)
			rc = rc < 0 ? rc : qn_errf(e, "document %llu: a pair without its rejected half",
						   (unsigned long long)k);
		else if ((rc = merge_doc(&v, tmap, nt, lmap, nl, &b, e)) == 0)
			rc = qn_shard_writer_add_pair(w, &a, &b, e);
		free(ids);
		free(sp);
	}
	return rc;
}

/*
 * merge -o DIR IN_DIR...: the documents of every input, in the order given
 * (shard 0 first), split by split, through a new writer. Tasks and labels are
 * matched by name: the merged tables list the names in order of first
 * appearance, which is what one encode over all the inputs assigns.
 */
static int cmd_merge(int argc, char **argv, int argi)
{
	size_t n = argc > argi ? (size_t)(argc - argi) : 0;
	struct qn_shard_dir **d = calloc(n + 1, sizeof *d);
	long **tmap = calloc(n + 1, sizeof *tmap), **lmap = calloc(n + 1, sizeof *lmap);
	struct qn_shard_writer *w[QN_SHARD_NSPLITS] = {0};
	struct names tasks = {0}, labels = {0};
	struct qn_err e;
	struct stat os;
	int rc = 1;

	if (!opt.output) {
		rc = qn_usage_error("merge needs -o DIR");
		goto out;
	}
	if (n == 0) {
		rc = qn_usage_error("merge needs the shard directories to merge");
		goto out;
	}
	if (!d || !tmap || !lmap) {
		qn_error("out of memory");
		goto out;
	}
	int have_out = stat(opt.output, &os) == 0;
	for (size_t i = 0; i < n; i++) {
		const char *dir = argv[argi + (int)i];
		struct stat st;
		if (have_out && stat(dir, &st) == 0 && st.st_dev == os.st_dev &&
		    st.st_ino == os.st_ino) {
			qn_error("cannot merge '%s' into itself", dir);
			goto out;
		}
		if (!(d[i] = qn_shard_dir_open(dir, &e))) {
			qn_error("%s", e.msg);
			goto out;
		}
		const struct qn_shard_dir_info *a = qn_shard_dir_info(d[0]), *b = qn_shard_dir_info(d[i]);
		if (!same_tokens(a, b)) {
			qn_error("'%s' and '%s' were encoded with different tokenizers "
				 "(%.12s, vocabulary %u, %u-bit; %.12s, vocabulary %u, %u-bit, or "
				 "other special tokens)",
				 dir, argv[argi], b->fingerprint, b->vocab_size, b->width,
				 a->fingerprint, a->vocab_size, a->width);
			goto out;
		}
		tmap[i] = calloc(b->ntasks + 1, sizeof **tmap);
		lmap[i] = calloc(b->nlabels + 1, sizeof **lmap);
		if (!tmap[i] || !lmap[i]) {
			qn_error("out of memory");
			goto out;
		}
		for (size_t t = 0; t < b->ntasks; t++)
			if ((tmap[i][t] = name_id(&tasks, b->tasks[t])) < 0)
				goto nomem;
		for (size_t l = 0; l < b->nlabels; l++)
			if ((lmap[i][l] = name_id(&labels, b->labels[l])) < 0)
				goto nomem;
	}
	const struct qn_shard_dir_info *in0 = qn_shard_dir_info(d[0]);
	if (tasks.n > 65536) {
		qn_error("more than 65536 tasks");
		goto out;
	}
	struct qn_shard_opts so = {
		.fingerprint = in0->fingerprint,
		.vocab_size = in0->vocab_size,
		.width = in0->width,
		.block_tokens = in0->block_tokens,
		.level = opt.level ? opt.level : in0->level,
		.max_bytes = opt.shard_size,
	};
	if (mkdir(opt.output, 0777) < 0 && errno != EEXIST) {
		qn_error("cannot make '%s': %s", opt.output, strerror(errno));
		goto out;
	}
	rs.man = qn_manifest_new("quern-tokenize", QN_VERSION, argc, argv);
	if (!rs.man)
		goto nomem;
	uint64_t docs[QN_SHARD_NSPLITS] = {0}, tokens = 0;
	for (int s = 0; s < QN_SHARD_NSPLITS; s++) {
		if (!(w[s] = qn_shard_writer_open(opt.output, s, &so, &e))) {
			qn_error("%s", e.msg);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			const struct qn_shard_dir_info *b = qn_shard_dir_info(d[i]);
			if (merge_split(d[i], s, w[s], tmap[i], b->ntasks, lmap[i], b->nlabels, &e) < 0) {
				qn_error("%s: %s split: %s", argv[argi + (int)i],
					 qn_shard_split_name(s), e.msg);
				goto out;
			}
		}
		docs[s] = qn_shard_writer_docs(w[s]);
		tokens += qn_shard_writer_tokens(w[s]);
		if (qn_shard_writer_close(w[s], &e) < 0) {
			qn_error("%s", e.msg);
			goto out;
		}
	}
	struct qn_shard_meta m = {
		.eot = in0->eot,
		.tasks = (const char *const *)tasks.v,
		.ntasks = tasks.n,
		.labels = (const char *const *)labels.v,
		.nlabels = labels.n,
		.specials = in0->specials,
		.nspecials = in0->nspecials,
	};
	if (qn_shard_dir_commit(opt.output, w, QN_SHARD_NSPLITS, &m, &e) < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	/* Lineage: each input directory's manifest in, every file written out. */
	for (size_t i = 0; i < n; i++) {
		char path[4200], sha[65];
		uint64_t size;
		snprintf(path, sizeof path, "%s/%s", argv[argi + (int)i], QN_SHARD_MANIFEST);
		if (qn_sha256_file(path, sha, &size, &e) < 0 ||
		    qn_manifest_input(rs.man, path, size, sha) < 0) {
			qn_error("%s", e.msg);
			goto out;
		}
	}
	qn_manifest_count(rs.man, "documents_train", (int64_t)docs[QN_SHARD_TRAIN]);
	qn_manifest_count(rs.man, "documents_val", (int64_t)docs[QN_SHARD_VAL]);
	qn_manifest_count(rs.man, "tokens", (int64_t)tokens);
	qn_manifest_set(rs.man, "tokenizer", json_string(in0->fingerprint));
	if (manifest_shards(rs.man, opt.output) < 0)
		goto out;
	char mp[4096];
	snprintf(mp, sizeof mp, "%s/run.manifest.json", opt.output);
	if (qn_manifest_write(rs.man, mp, &e) < 0) {
		qn_error("%s", e.msg);
		goto out;
	}
	qn_info("%zu directories: %llu train and %llu val documents, %llu tokens", n,
		(unsigned long long)docs[0], (unsigned long long)docs[1],
		(unsigned long long)tokens);
	rc = 0;
	goto out;
nomem:
	qn_error("out of memory");
out:
	for (int s = 0; s < QN_SHARD_NSPLITS; s++)
		qn_shard_writer_free(w[s]);
	for (size_t i = 0; i < n; i++) {
		if (d)
			qn_shard_dir_close(d[i]);
		if (tmap)
			free(tmap[i]);
		if (lmap)
			free(lmap[i]);
	}
	free(d);
	free(tmap);
	free(lmap);
	names_free(&tasks);
	names_free(&labels);
	return rc;
}

/* ---- main ------------------------------------------------------------------------------ */

enum {
	OPT_ENCODING = 256,
	OPT_VOCAB,
	OPT_PATTERN,
	OPT_SPECIAL,
	OPT_MINFREQ,
	OPT_TEXT_FIELD,
	OPT_TEMPLATE,
	OPT_ALLOW_SPECIAL,
	OPT_VAL,
	OPT_SHARD_SIZE,
	OPT_LEVEL,
	OPT_FORMAT,
	OPT_SPLIT,
	OPT_MAX_LINE,
	OPT_LINES,
	OPT_SHARD,
};

static const struct option longopts[] = {
	{"output", required_argument, NULL, 'o'},
	{"tokenizer", required_argument, NULL, 't'},
	{"encoding", required_argument, NULL, OPT_ENCODING},
	{"vocab-size", required_argument, NULL, OPT_VOCAB},
	{"pattern", required_argument, NULL, OPT_PATTERN},
	{"special", required_argument, NULL, OPT_SPECIAL},
	{"min-frequency", required_argument, NULL, OPT_MINFREQ},
	{"text-field", required_argument, NULL, OPT_TEXT_FIELD},
	{"template", required_argument, NULL, OPT_TEMPLATE},
	{"allow-special", no_argument, NULL, OPT_ALLOW_SPECIAL},
	{"val-fraction", required_argument, NULL, OPT_VAL},
	{"shard-size", required_argument, NULL, OPT_SHARD_SIZE},
	{"level", required_argument, NULL, OPT_LEVEL},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"split", required_argument, NULL, OPT_SPLIT},
	{"max-line", required_argument, NULL, OPT_MAX_LINE},
	{"lines", no_argument, NULL, OPT_LINES},
	{"shard", required_argument, NULL, OPT_SHARD},
	{"jobs", required_argument, NULL, 'j'},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	int c, rc;
	double v;
	uint64_t sz;

	qn_cli_init("quern-tokenize");
	if (argc >= 2 && argv[1][0] != '-') {
		opt.cmd = argv[1];
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	opt.specials = calloc((size_t)argc + 1, sizeof *opt.specials);
	if (!opt.specials)
		return 1;
	while ((c = getopt_long(argc, argv, "o:t:j:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': opt.output = optarg; break;
		case 't': opt.tokenizer = optarg; break;
		case OPT_ENCODING: opt.encoding = optarg; break;
		case OPT_VOCAB:
			if (qn_parse_number("--vocab-size", optarg, 257, QN_BPE_MAX_ID, &v) < 0)
				return QN_EXIT_USAGE;
			opt.vocab_size = (size_t)v;
			break;
		case OPT_PATTERN: opt.pattern = optarg; break;
		case OPT_SPECIAL: opt.specials[opt.nspecials++] = optarg; break;
		case OPT_MINFREQ:
			if (qn_parse_number("--min-frequency", optarg, 1, 1e18, &v) < 0)
				return QN_EXIT_USAGE;
			opt.min_frequency = (uint64_t)v;
			break;
		case OPT_TEXT_FIELD: opt.text_field = optarg; break;
		case OPT_TEMPLATE:
			if (strcmp(optarg, "chatml") && strcmp(optarg, "plain"))
				return qn_usage_error("--template: chatml or plain, not '%s'", optarg);
			opt.template = optarg;
			break;
		case OPT_ALLOW_SPECIAL: opt.allow_special = 1; break;
		case OPT_VAL:
			if (qn_parse_number("--val-fraction", optarg, 0, 1, &opt.val_fraction) < 0)
				return QN_EXIT_USAGE;
			break;
		case OPT_SHARD_SIZE:
			if (qn_parse_size(optarg, &sz) < 0 || sz < QN_SHARD_BYTES_MIN)
				return qn_usage_error("--shard-size: a size of at least 4K, not '%s'",
						      optarg);
			opt.shard_size = sz;
			break;
		case OPT_LEVEL:
			if (qn_parse_number("--level", optarg, -7, 22, &v) < 0)
				return QN_EXIT_USAGE;
			opt.level = (int)v;
			break;
		case OPT_FORMAT: opt.format = optarg; break;
		case OPT_LINES: opt.lines = 1; break;
		case OPT_SHARD:
			if (qn_shardsel_parse(optarg, &opt.shard_index, &opt.shard_count) < 0)
				return qn_usage_error("--shard: expected I/N with 0 <= I < N, not '%s'",
						      optarg);
			break;
		case OPT_SPLIT: opt.split = optarg; break;
		case OPT_MAX_LINE:
			if (qn_parse_size(optarg, &sz) < 0 || sz < 1024)
				return qn_usage_error("--max-line: a size of at least 1K, not '%s'",
						      optarg);
			opt.max_line = (size_t)sz;
			break;
		case 'j':
			if (qn_parse_jobs("-j", optarg, &opt.jobs) < 0)
				return QN_EXIT_USAGE;
			break;
		case 'q': qn_verbosity = -1; break;
		case 'v': qn_verbosity++; break;
		case 'h': fputs(usage_text, stdout); return qn_close_stdout(0);
		case 'V': return qn_print_version();
		default: return qn_usage_error("unknown option");
		}
	}
	if (!opt.cmd)
		return qn_usage_error("which command? train, encode, ids, decode, inspect, verify, "
				      "export, merge");
	if (opt.shard_count && strcmp(opt.cmd, "encode"))
		return qn_usage_error("--shard goes with encode (then merge), not %s", opt.cmd);
	if (!strcmp(opt.cmd, "train"))
		rc = cmd_train(argc, argv, optind);
	else if (!strcmp(opt.cmd, "encode"))
		rc = cmd_encode(argc, argv, optind);
	else if (!strcmp(opt.cmd, "merge"))
		rc = cmd_merge(argc, argv, optind);
	else if (!strcmp(opt.cmd, "ids"))
		rc = cmd_filter(argc, argv, optind, 0);
	else if (!strcmp(opt.cmd, "decode"))
		rc = cmd_filter(argc, argv, optind, 1);
	else if (!strcmp(opt.cmd, "inspect") || !strcmp(opt.cmd, "verify")) {
		if (optind + 1 != argc)
			return qn_usage_error("%s takes one shard directory", opt.cmd);
		rc = !strcmp(opt.cmd, "inspect") ? cmd_inspect(argv[optind]) : cmd_verify(argv[optind]);
	} else if (!strcmp(opt.cmd, "export")) {
		if (optind + 2 != argc)
			return qn_usage_error("export takes a shard directory and an output file");
		rc = cmd_export(argv[optind], argv[optind + 1]);
	} else {
		return qn_usage_error("unknown command '%s'", opt.cmd);
	}
	wctx_free_all();
	qn_bpe_free(tok);
	qn_manifest_free(rs.man);
	free(opt.specials);
	return qn_close_stdout(rc);
}
