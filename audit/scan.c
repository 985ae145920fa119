/*
 * scan.c - quern-audit scan: PII, secret and policy-rule findings in
 * document JSON Lines, model generations (--field) or plain text, with a
 * baseline of accepted findings, policy gates that decide the exit status,
 * and the reports CI systems and people read (report.h).
 *
 * The main thread reads the inputs and cuts them into batches: lines of
 * JSON, or for plain text chunks of whole lines (about 1 MiB, never cut
 * inside a "-----BEGIN ... -----END" block). Workers (lib/pool.h) parse,
 * scan and format each batch's findings as JSON lines; the main thread
 * writes them in input order and counts, so the output is the same for
 * every -j. A raw value never leaves a worker: findings carry a masked
 * excerpt and a salted SHA-256 (docs/audit.md describes every format).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "audit.h"
#include "buf.h"
#include "cli.h"
#include "doc.h"
#include "docjson.h"
#include "err.h"
#include "hash.h"
#include "manifest.h"
#include "manifests.h"
#include "pii.h"
#include "pool.h"
#include "rd.h"
#include "report.h"
#include "scan.h"
#include "scan_baseline.h"
#include "scan_policy.h"
#include "scan_rules.h"
#include "utf8.h"
#include "wr.h"

static const char usage_text[] =
    "usage: quern-audit scan [options] [file ...]\n"
    "\n"
    "Finds PII, secrets and policy-rule matches in document JSON Lines (the\n"
    "\"text\" field), model generations (--field) or plain text, from the files\n"
    "or stdin (.zst and .gz are read transparently). Writes one finding a line\n"
    "as JSON (masked excerpt and salted hash, never the raw value), and exits 1\n"
    "when a policy gate fails.\n"
    "\n"
    "Output:\n"
    "  -o, --output FILE        findings JSON Lines (default stdout; atomic)\n"
    "      --summary FILE       counts by type, severity, source and rule; gates\n"
    "      --junit FILE         JUnit XML, one test case per gate\n"
    "      --sarif FILE         SARIF 2.1.0\n"
    "      --html FILE          a self-contained HTML report\n"
    "      --history FILE       an earlier --summary, for the HTML trends\n"
    "                           (repeatable, oldest first)\n"
    "      --eval FILE          quern-audit eval results for the HTML report's\n"
    "                           model section (repeatable)\n"
    "      --memorization FILE  quern-audit memorization or canary exposure\n"
    "                           results for it (repeatable)\n"
    "      --manifest FILE      the run's manifest (default with -o:\n"
    "                           FILE.manifest.json)\n"
    "      --no-manifest        write no manifest\n"
    "Input:\n"
    "      --format FORMAT      auto (default: JSON Lines when the first byte that\n"
    "                           is not white space is '{'), jsonl or text\n"
    "      --text               the same as --format text\n"
    "      --field NAME         scan this JSON field (repeatable; default text);\n"
    "                           a list of strings or of {\"content\"} is scanned\n"
    "                           item by item\n"
    "      --max-doc SIZE       longest JSON line or text line (default 256M);\n"
    "                           longer ones are named and skipped\n"
    "Detectors:\n"
    "      --types LIST         detectors to run: all (default), none, pii,\n"
    "                           secrets, type names, -TYPE to leave one out\n"
    "      --min-score P        drop detector findings scored below P (default 0.5)\n"
    "      --private-ip         also report private and reserved IP addresses\n"
    "      --rules FILE         policy rules: PCRE2 patterns (YAML)\n"
    "      --list-rules         print the rules (detectors and --rules) and exit\n"
    "Suppression and gates:\n"
    "      --baseline FILE      findings listed there are reported as suppressed\n"
    "                           and count for no gate\n"
    "      --write-baseline FILE  write this run's findings as a baseline\n"
    "      --salt STR           salt of the finding hashes (default: the\n"
    "                           baseline's, else \"quern-audit-v1\")\n"
    "      --salt-file FILE     the salt from a file (its first line)\n"
    "      --policy FILE        gates: limits on finding counts (YAML)\n"
    "      --gate 'SUBJECT: LIMIT'  one more gate (repeatable): 'CREDIT_CARD: 0',\n"
    "                           'severity high: 0', 'EMAIL: max 10 per 10k documents'\n"
    "      --fail-on-findings   the gate 'total: 0'\n"
    "Runs:\n"
    "  -j, --jobs N             worker threads (default 1; 0 = one per CPU)\n"
    "  -q, --quiet              no warnings\n"
    "  -v, --verbose            more detail\n"
    "  -h, --help               this help\n"
    "  -V, --version            the version\n"
    "\n"
    "Exit status: 0 every gate passed; 1 a gate failed, some input could not\n"
    "be read or scanned (each named on stderr), or a failure; 2 usage error.\n";

#define DEFAULT_SALT "quern-audit-v1"
#define REPORT_CAP 25000	    /* findings handed to the SARIF and HTML reports */
#define DOC_MAX_FINDINGS (1u << 20) /* per document (or text chunk) */
#define BATCH_LINES 256
#define BATCH_BYTES ((size_t)4 << 20)
#define TEXT_CHUNK ((size_t)1 << 20)
#define MSGS_PER_INPUT 100

/* ---- the rule catalog: the detectors' types, then the policy rules ---- */

struct rinfo {
	char *rule_id, *type, *message;
	const char *kind; /* "pii", "secret", "policy" */
	int severity;	  /* 0 low .. 3 critical */
	int on;		  /* the detector runs / the rule exists */
	char *json;	  /* {"rule":..,"type":..,"kind":..,"severity":.., */
	char *json_msg;	  /* "message":..., */
	uint64_t count, suppressed;
	uint64_t regurgitated; /* reported findings of training-data values (hooks) */
};

static struct rinfo *cat;
static size_t ncat;

/* Severity and message of the detectors' types, by name; others get defaults by kind. */
static const struct {
	const char *type;
	int sev;
	const char *msg;
} type_table[] = {
    {"EMAIL", 1, "e-mail address"},
    {"PHONE", 1, "phone number"},
    {"IPV4", 0, "IPv4 address"},
    {"IPV6", 0, "IPv6 address"},
    {"CREDIT_CARD", 2, "payment card number"},
    {"IBAN", 2, "IBAN"},
    {"US_SSN", 2, "US social security number"},
    {"AWS_ACCESS_KEY", 2, "AWS access key id"},
    {"AWS_SECRET_KEY", 3, "AWS secret access key"},
    {"PRIVATE_KEY", 3, "private key"},
    {"GITHUB_TOKEN", 3, "GitHub token"},
    {"GITLAB_TOKEN", 3, "GitLab token"},
    {"SLACK_TOKEN", 2, "Slack token or webhook"},
    {"STRIPE_KEY", 3, "Stripe key"},
    {"GOOGLE_API_KEY", 2, "Google API key"},
    {"JWT", 2, "JSON Web Token"},
    {"GENERIC_SECRET", 2, "secret assigned to a password, secret or token name"},
};

static char *json_of(const char *s)
{
	struct qn_buf b;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	if (qn_utf8_valid(s, strlen(s))) {
		if (qn_json_str(&b, s, strlen(s)) < 0)
			goto oom;
	} else {
		struct qn_buf r;
		qn_buf_init(&r, QN_BUF_UNLIMITED);
		int bad =
		    qn_utf8_repair(&r, s, strlen(s)) < 0 || qn_json_str(&b, r.data, r.len) < 0;
		qn_buf_release(&r);
		if (bad)
			goto oom;
	}
	return qn_buf_detach(&b, NULL);
oom:
	qn_buf_release(&b);
	return NULL;
}

static int cat_fill(struct rinfo *r)
{
	char *rid = json_of(r->rule_id), *ty = json_of(r->type), *msg = json_of(r->message);
	int rc = -1;
	if (rid && ty && msg) {
		size_t n = strlen(rid) + strlen(ty) + strlen(msg) + 96;
		r->json = malloc(n);
		r->json_msg = malloc(strlen(msg) + 16);
		if (r->json && r->json_msg) {
			snprintf(r->json, n,
				 "{\"rule\":%s,\"type\":%s,\"kind\":\"%s\",\"severity\":\"%s\",",
				 rid, ty, r->kind, sr_severity_name(r->severity));
			snprintf(r->json_msg, strlen(msg) + 16, "\"message\":%s,", msg);
			rc = 0;
		}
	}
	free(rid);
	free(ty);
	free(msg);
	return rc;
}

static int cat_build(uint32_t types, const struct sr_rules *rules)
{
	size_t nr = sr_count(rules);
	if (!(cat = calloc(QN_PII_NTYPES + nr, sizeof *cat)))
		return -1;
	for (int t = 0; t < QN_PII_NTYPES; t++) {
		struct rinfo *r = &cat[ncat++];
		const char *name = qn_pii_type_name((enum qn_pii_type)t);
		int secret = qn_pii_type_is_secret((enum qn_pii_type)t);
		char id[128], msg[160];
		r->kind = secret ? "secret" : "pii";
		r->severity = secret ? 2 : 1;
		snprintf(msg, sizeof msg, "%s (%s)", name, secret ? "secret" : "personal data");
		for (size_t k = 0; k < sizeof type_table / sizeof *type_table; k++)
			if (!strcmp(type_table[k].type, name)) {
				r->severity = type_table[k].sev;
				snprintf(msg, sizeof msg, "%s", type_table[k].msg);
			}
		snprintf(id, sizeof id, "QN-%s-%s", secret ? "SECRET" : "PII", name);
		r->on = (types & QN_PII_BIT(t)) != 0;
		if (!(r->rule_id = strdup(id)) || !(r->type = strdup(name)) ||
		    !(r->message = strdup(msg)) || cat_fill(r) < 0)
			return -1;
	}
	static const char *const kinds[] = {"policy", "secret", "pii"};
	for (size_t i = 0; i < nr; i++) {
		const struct sr_rule *x = sr_rule(rules, i);
		struct rinfo *r = &cat[ncat++];
		r->kind = kinds[x->kind];
		r->severity = x->severity;
		r->on = 1;
		if (!(r->rule_id = strdup(x->rule_id)) || !(r->type = strdup(x->type)) ||
		    !(r->message = strdup(x->message)) || cat_fill(r) < 0)
			return -1;
	}
	return 0;
}

static void cat_free(void)
{
	for (size_t i = 0; i < ncat; i++) {
		free(cat[i].rule_id);
		free(cat[i].type);
		free(cat[i].message);
		free(cat[i].json);
		free(cat[i].json_msg);
	}
	free(cat);
	cat = NULL;
	ncat = 0;
}

/* ---- options and shared state (read-only while workers run) ---- */

enum format { FMT_AUTO, FMT_JSONL, FMT_TEXT };

static struct {
	int jobs;
	size_t max_doc;
	enum format format;
	const char **fields;
	size_t nfields;
	int fast; /* the only field is "text": lib/docjson's fast path */
	struct qn_pii *pii;
	struct sr_rules *rules;
	struct sb_baseline *base;
	const char *salt;
	size_t saltlen;
} S = {.jobs = 1, .max_doc = (size_t)256 << 20, .fast = 1};

struct input {
	const char *path; /* as given; "-" for stdin */
	const char *name; /* in messages and findings: the path, or "stdin" */
	char *json_src;	  /* "source":"...", */
	uint64_t docs, bytes, findings, bad, msgs;
	char sha256[65];
	int unreadable;
};

static struct input *inputs;
static size_t ninputs;

static const struct scan_hooks *H; /* scan_run's; NULL for a plain scan */
static const struct scan_hooks no_hooks;

/* ---- batches ---- */

struct frec {
	uint32_t rule;
	uint8_t suppressed, regurgitated;
	size_t off, len; /* the finding's line in out */
	char hash[65];
};

struct batch {
	size_t input;
	int text;
	struct qn_buf in;  /* JSON Lines: the lines, each '\n' made a NUL; text: whole lines */
	size_t *off, *len; /* JSON Lines: where each line starts, its length (or TOO_LONG) */
	uint64_t *lineno;  /* its number in the input */
	size_t n, lcap;
	uint64_t line0; /* text: the first line's number */
	/* results */
	struct qn_buf out, msgs;
	struct frec *f;
	size_t nf, fcap;
	uint64_t docs, bad, errors;
	struct batch *next; /* on the free list */
};

#define TOO_LONG ((size_t)-1)

/*
 * Batches are made and freed on the main thread only (the pool emits
 * there), so a free list without a lock saves the allocator from handing
 * out and taking back megabytes per batch.
 */
static struct batch *batch_pool;

static struct batch *batch_new(size_t input, int text)
{
	struct batch *b = batch_pool;
	if (b) {
		batch_pool = b->next;
	} else {
		if (!(b = calloc(1, sizeof *b)))
			return NULL;
		qn_buf_init(&b->in, QN_BUF_UNLIMITED);
		qn_buf_init(&b->out, QN_BUF_UNLIMITED);
		qn_buf_init(&b->msgs, QN_BUF_UNLIMITED);
	}
	b->input = input;
	b->text = text;
	b->n = b->nf = 0;
	b->line0 = b->docs = b->bad = b->errors = 0;
	b->next = NULL;
	qn_buf_reset(&b->in);
	qn_buf_reset(&b->out);
	qn_buf_reset(&b->msgs);
	return b;
}

static void batch_destroy(struct batch *b)
{
	qn_buf_release(&b->in);
	qn_buf_release(&b->out);
	qn_buf_release(&b->msgs);
	free(b->off);
	free(b->len);
	free(b->lineno);
	free(b->f);
	free(b);
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	size_t k = 0;
	for (struct batch *p = batch_pool; p; p = p->next)
		k++;
	if (k > (size_t)S.jobs * 4 + 4 || b->in.cap > 4 * BATCH_BYTES) {
		batch_destroy(b);
		return;
	}
	b->next = batch_pool;
	batch_pool = b;
}

static void batch_pool_free(void)
{
	while (batch_pool) {
		struct batch *b = batch_pool;
		batch_pool = b->next;
		batch_destroy(b);
	}
}

static int batch_add_line(struct batch *b, size_t off, size_t len, uint64_t lineno)
{
	if (b->n == b->lcap) {
		size_t nc = b->lcap ? b->lcap * 2 : BATCH_LINES;
		size_t *o = realloc(b->off, nc * sizeof *o);
		if (o)
			b->off = o;
		size_t *l = realloc(b->len, nc * sizeof *l);
		if (l)
			b->len = l;
		uint64_t *n = realloc(b->lineno, nc * sizeof *n);
		if (n)
			b->lineno = n;
		if (!o || !l || !n)
			return -1;
		b->lcap = nc;
	}
	b->off[b->n] = off;
	b->len[b->n] = len;
	b->lineno[b->n++] = lineno;
	return 0;
}

/* ---- per-thread scratch ---- */

struct fnd {
	size_t start, end;
	uint32_t rule;
	float score;
};

struct wst {
	struct qn_pii_hits hits;
	struct qn_buf text, rest, fixed, norm;
	struct sr_scratch sc;
	struct sr_span *sp;
	size_t nsp, spcap;
	struct fnd *f;
	size_t nf, fcap;
	size_t *nl; /* text mode: offsets of the chunk's newlines */
	size_t nnl, nlcap;
	struct wst *next;
};

static pthread_mutex_t wst_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wst *wst_all;
static __thread struct wst *wst_mine;

static struct wst *wst_get(void)
{
	if (wst_mine)
		return wst_mine;
	struct wst *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	qn_pii_hits_init(&w->hits, DOC_MAX_FINDINGS);
	qn_buf_init(&w->text, QN_BUF_UNLIMITED);
	qn_buf_init(&w->rest, QN_BUF_UNLIMITED);
	qn_buf_init(&w->fixed, QN_BUF_UNLIMITED);
	qn_buf_init(&w->norm, QN_BUF_UNLIMITED);
	if (sr_scratch_init(&w->sc, S.rules) < 0) {
		free(w);
		return NULL;
	}
	pthread_mutex_lock(&wst_mu);
	w->next = wst_all;
	wst_all = w;
	pthread_mutex_unlock(&wst_mu);
	return wst_mine = w;
}

static void wst_free_all(void)
{
	while (wst_all) {
		struct wst *w = wst_all;
		wst_all = w->next;
		qn_pii_hits_release(&w->hits);
		qn_buf_release(&w->text);
		qn_buf_release(&w->rest);
		qn_buf_release(&w->fixed);
		qn_buf_release(&w->norm);
		sr_scratch_release(&w->sc);
		free(w->sp);
		free(w->f);
		free(w->nl);
		free(w);
	}
	wst_mine = NULL; /* the main thread's, when the pool ran inline */
}

/* ---- hashing ---- */

/* The normal form of a value (pii.h's pseudonyms normalise alike) into out. */
static void normalize(const char *type, const char *v, size_t n, struct qn_buf *out)
{
	qn_buf_reset(out);
	if (!strcmp(type, "EMAIL")) {
		for (size_t i = 0; i < n; i++)
			qn_buf_addc(out, (char)tolower((unsigned char)v[i]));
	} else if (!strcmp(type, "PHONE") || !strcmp(type, "CREDIT_CARD") ||
		   !strcmp(type, "US_SSN")) {
		for (size_t i = 0; i < n; i++)
			if (v[i] >= '0' && v[i] <= '9')
				qn_buf_addc(out, v[i]);
		if (!strcmp(type, "PHONE") && out->len == 11 && out->data[0] == '1') {
			memmove(out->data, out->data + 1, 10); /* +1 212 ... is (212) ... */
			out->len = 10;
			out->data[10] = 0;
		}
	} else if (!strcmp(type, "IBAN")) {
		for (size_t i = 0; i < n; i++)
			if (v[i] != ' ')
				qn_buf_addc(out, (char)toupper((unsigned char)v[i]));
	} else if (!strcmp(type, "IPV6") && n < 64) {
		char in[64], o[64];
		unsigned char a[16];
		memcpy(in, v, n);
		in[n] = 0;
		if (inet_pton(AF_INET6, in, a) == 1 && inet_ntop(AF_INET6, a, o, sizeof o))
			qn_buf_adds(out, o);
	}
	if (!out->len)
		qn_buf_add(out, v, n);
}

static void sha_hex(const void *const *p, const size_t *n, int k, char hex[65])
{
	struct qn_sha256 s;
	if (qn_sha256_init(&s) < 0) {
		memset(hex, '0', 64);
		hex[64] = 0;
		return;
	}
	for (int i = 0; i < k; i++)
		qn_sha256_update(&s, p[i], n[i]);
	qn_sha256_final(&s, hex);
}

/* hash = SHA-256(salt NUL type NUL normal form) */
static void value_hash(struct wst *w, const char *type, const char *v, size_t n, char hex[65])
{
	normalize(type, v, n, &w->norm);
	const void *p[] = {S.salt, "", type, "", w->norm.data ? w->norm.data : ""};
	size_t l[] = {S.saltlen, 1, strlen(type), 1, w->norm.len};
	sha_hex(p, l, 5, hex);
}

/* fingerprint = the first 128 bits of SHA-256(rule NUL source NUL doc NUL hash) */
static void fingerprint(const char *rule, const char *source, const char *doc, size_t docl,
			const char *hash, char out[33])
{
	char hex[65];
	const void *p[] = {rule, "", source, "", doc, "", hash};
	size_t l[] = {strlen(rule), 1, strlen(source), 1, docl, 1, 64};
	sha_hex(p, l, 7, hex);
	memcpy(out, hex, 32);
	out[32] = 0;
}

/* ---- scanning one string ---- */

struct where {
	const char *field_json; /* "\"text\"" or "null" */
	uint64_t line;		/* JSON Lines: the line; text: the chunk's first */
	const char *doc_json;	/* "\"d1\"" or "null" */
	const char *doc;	/* for the fingerprint ("" when none) */
	size_t docl;
	int text; /* plain text: line and span from the chunk's newlines */
};

static void msg(struct batch *b, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void msg(struct batch *b, uint64_t line, const char *fmt, ...)
{
	char m[800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	qn_buf_printf(&b->msgs, "%s:%llu: %s\n", inputs[b->input].name, (unsigned long long)line,
		      m);
}

static int add_fnd(struct wst *w, size_t start, size_t end, uint32_t rule, float score)
{
	if (w->nf == w->fcap) {
		size_t nc = w->fcap ? w->fcap * 2 : 256;
		struct fnd *nv = realloc(w->f, nc * sizeof *nv);
		if (!nv)
			return -1;
		w->f = nv;
		w->fcap = nc;
	}
	w->f[w->nf++] = (struct fnd){start, end, rule, score};
	return 0;
}

static int cmp_fnd(const void *pa, const void *pb)
{
	const struct fnd *a = pa, *b = pb;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return a->rule < b->rule ? -1 : a->rule > b->rule;
}

/* The line of offset at in a text chunk: its number and where it starts. */
static void text_pos(const struct wst *w, const struct where *wh, size_t at, uint64_t *line,
		     size_t *ls)
{
	size_t lo = 0, hi = w->nnl; /* newlines before at: the first index with nl >= at */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w->nl[mid] < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	*line = wh->line + lo;
	*ls = lo ? w->nl[lo - 1] + 1 : 0;
}

static int index_newlines(struct wst *w, const char *t, size_t n)
{
	w->nnl = 0;
	for (const char *p = t, *end = t + n; (p = memchr(p, '\n', (size_t)(end - p))); p++) {
		if (w->nnl == w->nlcap) {
			size_t nc = w->nlcap ? w->nlcap * 2 : 4096;
			size_t *nv = realloc(w->nl, nc * sizeof *nv);
			if (!nv)
				return -1;
			w->nl = nv;
			w->nlcap = nc;
		}
		w->nl[w->nnl++] = (size_t)(p - t);
	}
	return 0;
}

static int emit_finding(struct wst *w, struct batch *b, const struct where *wh, const char *t,
			const struct fnd *f)
{
	const struct rinfo *r = &cat[f->rule];
	const struct input *in = &inputs[b->input];
	const char *v = t + f->start;
	size_t n = f->end - f->start;
	char hash[65], fp[33], ex[96];
	uint64_t line = wh->line;
	size_t base = 0;

	if (wh->text)
		text_pos(w, wh, f->start, &line, &base);
	value_hash(w, r->type, v, n, hash);
	fingerprint(r->rule_id, in->name, wh->doc, wh->docl, hash, fp);
	int sup = sb_match(S.base, fp, r->rule_id, hash);
	int pt = f->rule < QN_PII_NTYPES ? (int)f->rule : QN_PII_GENERIC_SECRET;
	qn_pii_mask((enum qn_pii_type)pt, v, n, ex, sizeof ex);

	if (b->nf == b->fcap) {
		size_t nc = b->fcap ? b->fcap * 2 : 64;
		struct frec *nv = realloc(b->f, nc * sizeof *nv);
		if (!nv)
			return -1;
		b->f = nv;
		b->fcap = nc;
	}
	struct frec *fr = &b->f[b->nf];
	fr->rule = f->rule;
	fr->suppressed = (uint8_t)sup;
	fr->regurgitated = H->known && strcmp(r->kind, "policy") && H->known(hash, H->ctx) ? 1 : 0;
	memcpy(fr->hash, hash, sizeof hash);
	fr->off = b->out.len;
	char score[32];
	snprintf(score, sizeof score, "%.3g", f->score);
	if (qn_buf_adds(&b->out, r->json) < 0 ||
	    qn_buf_printf(&b->out, "\"score\":%s,", score) < 0 ||
	    qn_buf_adds(&b->out, r->json_msg) < 0 || qn_buf_adds(&b->out, in->json_src) < 0 ||
	    qn_buf_printf(&b->out,
			  "\"line\":%llu,\"doc\":%s,\"field\":%s,\"start\":%zu,\"end\":%zu,"
			  "\"excerpt\":",
			  (unsigned long long)line, wh->doc_json, wh->field_json, f->start - base,
			  f->end - base) < 0 ||
	    qn_json_str(&b->out, ex, strlen(ex)) < 0 ||
	    qn_buf_printf(&b->out, ",\"hash\":\"%s\",\"fingerprint\":\"%s\",", hash, fp) < 0 ||
	    (H->known && qn_buf_printf(&b->out, "\"regurgitated\":%s,",
				       fr->regurgitated ? "true" : "false") < 0) ||
	    qn_buf_printf(&b->out, "\"suppressed\":%s}\n", sup ? "true" : "false") < 0)
		return -1;
	fr->len = b->out.len - fr->off;
	b->nf++;
	return 0;
}

/* Scans t[0, n) with every detector and rule; appends its findings to b. */
static void scan_string(struct wst *w, struct batch *b, const struct where *wh, const char *t,
			size_t n)
{
	struct qn_err e;
	uint64_t mline = wh->line;

	w->nf = 0;
	if (S.pii) {
		if (qn_pii_scan(S.pii, t, n, &w->hits, &e) < 0) {
			msg(b, mline, "%s; the detectors' findings here are not reported", e.msg);
			b->errors++;
		}
		for (size_t i = 0; i < w->hits.n; i++) {
			const struct qn_pii_hit *h = &w->hits.v[i];
			int ok = sr_allowed(S.rules, t + h->start, h->end - h->start, &w->sc);
			if (ok == SR_LIMIT) {
				msg(b, mline, "allow patterns: match limit exceeded; finding kept");
				b->errors++;
				ok = 0;
			}
			if (!ok && add_fnd(w, h->start, h->end, (uint32_t)h->type, h->score) < 0)
				goto oom;
		}
	}
	for (size_t i = 0; i < sr_count(S.rules); i++) {
		w->nsp = 0;
		int rc = sr_scan(S.rules, i, t, n, &w->sc, &w->sp, &w->nsp, &w->spcap,
				 DOC_MAX_FINDINGS, &e);
		if (rc == SR_LIMIT) {
			msg(b, mline,
			    "rule '%s': match limit exceeded; the rest of this text is not "
			    "matched by it",
			    sr_rule(S.rules, i)->id);
			b->errors++;
		} else if (rc < 0) {
			msg(b, mline, "rule '%s': %s", sr_rule(S.rules, i)->id, e.msg);
			b->errors++;
		}
		for (size_t k = 0; k < w->nsp; k++)
			if (add_fnd(w, w->sp[k].start, w->sp[k].end, (uint32_t)(QN_PII_NTYPES + i),
				    1) < 0)
				goto oom;
	}
	if (!w->nf)
		return;
	qsort(w->f, w->nf, sizeof *w->f, cmp_fnd);
	if (wh->text && index_newlines(w, t, n) < 0)
		goto oom;
	for (size_t i = 0; i < w->nf; i++)
		if (emit_finding(w, b, wh, t, &w->f[i]) < 0)
			goto oom;
	return;
oom:
	msg(b, mline, "out of memory; findings lost");
	b->errors++;
}

/* ---- documents ---- */

/* jansson's messages may quote the input ("near '...'"): cut that off. */
static const char *clean_json_error(char *text)
{
	char *near = strstr(text, " near '");
	if (near)
		*near = 0;
	return text;
}

static void scan_value(struct wst *w, struct batch *b, struct where *wh, const char *name,
		       json_t *v, int *seen)
{
	char fj[300];
	struct qn_buf fb;

	if (!v || json_is_null(v))
		return;
	if (json_is_string(v)) {
		(*seen)++;
		char *nj = json_of(name);
		wh->field_json = nj ? nj : "null";
		scan_string(w, b, wh, json_string_value(v), json_string_length(v));
		free(nj);
		return;
	}
	if (!json_is_array(v)) {
		msg(b, wh->line, "\"%.100s\" is not a string or a list", name);
		b->errors++;
		return;
	}
	qn_buf_init(&fb, QN_BUF_UNLIMITED);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *it = json_array_get(v, i), *c = it;
		const char *sub = "";
		if (json_is_object(it)) {
			c = json_object_get(it, "content");
			sub = ".content";
		}
		if (json_is_null(c) || !c)
			continue;
		if (!json_is_string(c)) {
			msg(b, wh->line, "\"%.100s\"[%zu]%s is not a string", name, i, sub);
			b->errors++;
			continue;
		}
		(*seen)++;
		snprintf(fj, sizeof fj, "%.200s[%zu]%s", name, i, sub);
		qn_buf_reset(&fb);
		qn_json_str(&fb, fj, strlen(fj)); /* field names are valid UTF-8 (JSON keys) */
		wh->field_json = fb.data ? fb.data : "null";
		scan_string(w, b, wh, json_string_value(c), json_string_length(c));
	}
	qn_buf_release(&fb);
}

static void scan_doc(struct wst *w, struct batch *b, size_t i)
{
	const char *line = b->in.data + b->off[i];
	size_t len = b->len[i];
	uint64_t lineno = b->lineno[i];
	json_error_t je;
	json_t *obj = NULL;
	const char *t = NULL;
	size_t tl = 0;
	char idbuf[40];

	if (len == TOO_LONG) {
		msg(b, lineno, "line longer than %zu bytes (--max-doc); skipped", S.max_doc);
		b->bad++;
		return;
	}
	je.text[0] = 0;
	if (S.fast && (obj = qn_docjson_parse(line, len, &w->text, &w->rest))) {
		t = w->text.data ? w->text.data : "";
		tl = w->text.len;
	} else {
		obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		if (!obj && strstr(je.text, "too big"))
			obj = json_loadb(
			    line, len,
			    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
		qn_buf_reset(&w->fixed);
		if (!obj && strstr(je.text, "invalid Unicode") &&
		    !qn_buf_add(&w->fixed, line, len) &&
		    qn_docjson_fix_surrogates(w->fixed.data, w->fixed.len))
			obj = json_loadb(w->fixed.data, w->fixed.len,
					 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		if (!obj && !qn_utf8_valid(line, len)) {
			/* Invalid UTF-8 inside strings: scan it repaired (U+FFFD), as clean keeps
			 * it. */
			qn_buf_reset(&w->fixed);
			if (qn_utf8_repair(&w->fixed, line, len) >= 0)
				obj = json_loadb(w->fixed.data, w->fixed.len,
						 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		}
	}
	if (!obj) {
		msg(b, lineno, "invalid JSON at column %d: %s; skipped", je.column,
		    clean_json_error(je.text));
		b->bad++;
		return;
	}
	if (!json_is_object(obj)) {
		msg(b, lineno, "not a JSON object; skipped");
		b->bad++;
		json_decref(obj);
		return;
	}
	json_t *jid = json_object_get(obj, "id");
	const char *id = NULL;
	if (json_is_string(jid)) {
		id = json_string_value(jid);
	} else if (json_is_integer(jid)) {
		snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(jid));
		id = idbuf;
	}
	char *idj = id ? json_of(id) : NULL;
	struct where wh = {.line = lineno,
			   .doc_json = idj ? idj : "null",
			   .doc = id ? id : "",
			   .docl = id ? strlen(id) : 0};
	int seen = 0;
	b->docs++;
	if (t) {
		wh.field_json = "\"text\"";
		seen = 1;
		scan_string(w, b, &wh, t, tl);
	} else {
		for (size_t k = 0; k < S.nfields; k++)
			scan_value(w, b, &wh, S.fields[k], json_object_get(obj, S.fields[k]),
				   &seen);
	}
	if (!seen) {
		if (S.nfields == 1)
			msg(b, lineno, "no \"%.100s\" field; skipped", S.fields[0]);
		else
			msg(b, lineno, "none of the --field fields; skipped");
		b->bad++;
		b->docs--;
	}
	free(idj);
	json_decref(obj);
}

static void *work(void *job, void *ctx)
{
	struct batch *b = job;
	struct wst *w = wst_get();
	(void)ctx;
	if (!w) {
		msg(b, b->text ? b->line0 : 1, "out of memory; batch not scanned");
		b->errors++;
		return b;
	}
	if (b->text) {
		struct where wh = {.field_json = "null",
				   .line = b->line0,
				   .doc_json = "null",
				   .doc = "",
				   .text = 1};
		scan_string(w, b, &wh, b->in.data ? b->in.data : "", b->in.len);
	} else {
		for (size_t i = 0; i < b->n; i++)
			scan_doc(w, b, i);
	}
	return b;
}

/* ---- results (main thread) ---- */

struct run {
	struct qn_wr *out;
	json_t *findings; /* the first REPORT_CAP, for the reports */
	json_t *bl;	  /* --write-baseline entries */
	uint64_t total, suppressed, docs, bytes, bad, errors;
	int failed;
	struct qn_progress prog;
};

static int emit(void *job, void *ctx)
{
	struct batch *b = job;
	struct run *r = ctx;
	struct input *in = &inputs[b->input];
	struct qn_err e;

	/* Messages, at most MSGS_PER_INPUT an input. */
	for (char *p = b->msgs.data, *nl; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		if (in->msgs < MSGS_PER_INPUT)
			qn_error("%.*s", (int)(nl - p), p);
		else if (in->msgs == MSGS_PER_INPUT)
			qn_error("%s: more problems; not shown", in->name);
		in->msgs++;
	}
	in->docs += b->docs;
	in->bad += b->bad;
	r->docs += b->docs;
	r->bad += b->bad;
	r->errors += b->errors;
	if (!r->failed && r->out && b->out.len &&
	    qn_wr_write(r->out, b->out.data, b->out.len, &e) < 0) {
		qn_error("%s", e.msg);
		r->failed = 1;
	}
	for (size_t i = 0; i < b->nf; i++) {
		const struct frec *f = &b->f[i];
		struct rinfo *ri = &cat[f->rule];
		r->total++;
		if (f->suppressed) {
			ri->suppressed++;
			r->suppressed++;
		} else {
			ri->count++;
			ri->regurgitated += f->regurgitated;
			in->findings++;
		}
		if (H->collect) {
			if (strcmp(ri->kind, "policy") && !r->failed &&
			    H->collect(f->hash, H->ctx) < 0) {
				qn_error("out of memory");
				r->failed = 1;
			}
			continue;
		}
		int want_report = json_array_size(r->findings) < REPORT_CAP;
		if (!want_report && !r->bl)
			continue;
		json_t *o = json_loadb(b->out.data + f->off, f->len, 0, NULL);
		if (!o)
			continue;
		if (r->bl) {
			json_t *ent = json_pack(
			    "{s:O,s:O,s:O,s:O,s:O}", "fingerprint",
			    json_object_get(o, "fingerprint"), "rule", json_object_get(o, "rule"),
			    "hash", json_object_get(o, "hash"), "source",
			    json_object_get(o, "source"), "doc", json_object_get(o, "doc"));
			if (ent)
				json_array_append_new(r->bl, ent);
		}
		if (want_report)
			json_array_append_new(r->findings, o);
		else
			json_decref(o);
	}
	qn_progress_update(&r->prog, r->bytes, r->docs);
	batch_free(b);
	return 0;
}

/* ---- reading ---- */

static int is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/* 1 JSON Lines, 0 text, -1 error: the first byte that is not white space. */
static int detect_jsonl(struct qn_rd *rd, struct qn_err *e)
{
	const char *p;
	size_t n;
	if (qn_rd_peek(rd, &p, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		/* A UTF-8 byte order mark before it is allowed. */
		if (c == 0xEF && i + 2 < n && (unsigned char)p[i + 1] == 0xBB &&
		    (unsigned char)p[i + 2] == 0xBF) {
			i += 2;
			continue;
		}
		return c == '{';
	}
	return 0;
}

#define READ_CHUNK ((size_t)1 << 20)

/*
 * Reads JSON Lines straight into batches: each line's '\n' becomes its NUL,
 * so the bytes are copied once, from the reader into the batch. A line
 * longer than --max-doc is entered as TOO_LONG (named by the worker, in
 * order) and its bytes are dropped as they come.
 */
static int feed_jsonl(struct run *r, struct qn_pool *pool, size_t f, struct qn_rd *rd)
{
	struct input *in = &inputs[f];
	struct qn_err e;
	struct batch *b = batch_new(f, 0);
	uint64_t lineno = 0;
	size_t ls = 0; /* where the line not yet complete starts in b->in */
	int skipping = 0;

	for (;;) {
		if (!b || qn_buf_grow(&b->in, READ_CHUNK) < 0)
			goto oom;
		ssize_t k = qn_rd_read(rd, b->in.data + b->in.len, READ_CHUNK, &e);
		if (k < 0) {
			qn_error("%s", e.msg);
			batch_free(b);
			return -1;
		}
		char *d = b->in.data;
		if (k == 0) {
			/* A last line without its newline. */
			d[b->in.len] = 0;
			if (!skipping && b->in.len > ls && !is_blank(d + ls, b->in.len - ls) &&
			    batch_add_line(b, ls, b->in.len - ls, lineno + 1) < 0)
				goto oom;
			break;
		}
		in->bytes += (uint64_t)k;
		r->bytes += (uint64_t)k;
		size_t i = b->in.len, end = b->in.len + (size_t)k;
		b->in.len = end;
		char *nl;
		while (i < end && (nl = memchr(d + i, '\n', end - i))) {
			size_t at = (size_t)(nl - d);
			lineno++;
			*nl = 0;
			if (skipping)
				skipping = 0; /* the end of a line too long to keep */
			else if (!is_blank(d + ls, at - ls) &&
				 batch_add_line(b, ls, at - ls, lineno) < 0)
				goto oom;
			i = ls = at + 1;
		}
		if (skipping) {
			b->in.len = ls;
		} else if (end - ls > S.max_doc) {
			if (batch_add_line(b, ls, TOO_LONG, lineno + 1) < 0)
				goto oom;
			skipping = 1;
			b->in.len = ls;
		}
		if (b->n >= BATCH_LINES || ls >= BATCH_BYTES) {
			struct batch *nb = batch_new(f, 0);
			if (!nb || qn_buf_add(&nb->in, d + ls, b->in.len - ls) < 0) {
				batch_free(nb);
				goto oom;
			}
			b->in.len = ls;
			d[ls] = 0;
			ls = 0;
			if (qn_pool_submit(pool, b) != 0) {
				batch_free(nb);
				return -1;
			}
			b = nb;
		}
	}
	if (b->n)
		return qn_pool_submit(pool, b) != 0 ? -1 : 0;
	batch_free(b);
	return 0;
oom:
	batch_free(b);
	qn_error("out of memory");
	return -1;
}

/* Where to cut a text chunk: after its last newline, but before an open PEM block. */
static size_t text_cut(const char *p, size_t n)
{
	const char *nl = memrchr(p, '\n', n);
	if (!nl)
		return 0;
	size_t cut = (size_t)(nl - p) + 1;
	size_t from = cut > 65536 ? cut - 65536 : 0;
	const char *beg = NULL;
	for (const char *q = p + from; (q = memmem(q, (size_t)(p + cut - q), "-----BEGIN", 10));
	     q += 10)
		beg = q;
	if (beg && !memmem(beg, (size_t)(p + cut - beg), "-----END", 8)) {
		const char *ls = memrchr(p, '\n', (size_t)(beg - p));
		size_t c2 = ls ? (size_t)(ls - p) + 1 : 0;
		if (c2 > 0)
			return c2;
	}
	return cut;
}

static uint64_t count_nl(const char *p, size_t n)
{
	uint64_t k = 0;
	if (!n)
		return 0;
	for (const char *end = p + n; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		k++;
	return k;
}

static int submit_text(struct run *r, struct qn_pool *pool, size_t f, const char *p, size_t n,
		       uint64_t line0)
{
	struct batch *b = batch_new(f, 1);
	(void)r;
	if (!b || qn_buf_add(&b->in, p, n) < 0) {
		batch_free(b);
		qn_error("out of memory");
		return -1;
	}
	b->line0 = line0;
	b->docs = count_nl(p, n) + (n && p[n - 1] != '\n');
	return qn_pool_submit(pool, b) != 0 ? -1 : 0;
}

static int feed_text(struct run *r, struct qn_pool *pool, size_t f, struct qn_rd *rd)
{
	struct input *in = &inputs[f];
	struct qn_buf pend;
	struct qn_err e;
	uint64_t line = 1;
	int rc = 0, eof = 0, skipping = 0;
	char chunk[65536];

	qn_buf_init(&pend, QN_BUF_UNLIMITED);
	while (!eof && rc == 0) {
		ssize_t k = qn_rd_read(rd, chunk, sizeof chunk, &e);
		if (k < 0) {
			qn_error("%s", e.msg);
			rc = -1;
			break;
		}
		eof = k == 0;
		in->bytes += (uint64_t)k;
		r->bytes += (uint64_t)k;
		const char *p = chunk;
		size_t n = (size_t)k;
		if (skipping) {
			/* The rest of a line longer than --max-doc. */
			const char *nl = memchr(p, '\n', n);
			if (!nl)
				continue;
			n -= (size_t)(nl + 1 - p);
			p = nl + 1;
			skipping = 0;
			line++;
		}
		const char *z = memchr(p, 0, n);
		if (z) {
			/* Binary data: scan the whole lines before it, then stop. */
			uint64_t at =
			    line + count_nl(pend.data, pend.len) + count_nl(p, (size_t)(z - p));
			qn_error("%s:%llu: binary data (a NUL byte); the rest of the file is not "
				 "scanned",
				 in->name, (unsigned long long)at);
			in->bad++;
			r->bad++;
			if (qn_buf_add(&pend, p, (size_t)(z - p)) < 0)
				rc = -1;
			size_t cut = rc ? 0 : text_cut(pend.data, pend.len);
			if (cut)
				rc = submit_text(r, pool, f, pend.data, cut, line);
			qn_buf_reset(&pend);
			break;
		}
		if (n && qn_buf_add(&pend, p, n) < 0) {
			qn_error("out of memory");
			rc = -1;
			break;
		}
		while (pend.len >= TEXT_CHUNK || (eof && pend.len)) {
			size_t cut = text_cut(pend.data, pend.len);
			if (!cut && eof)
				cut = pend.len;
			if (!cut) {
				if (pend.len <= S.max_doc)
					break;
				qn_error("%s:%llu: line longer than %zu bytes (--max-doc); skipped",
					 in->name, (unsigned long long)line, S.max_doc);
				in->bad++;
				r->bad++;
				qn_buf_reset(&pend);
				skipping = 1;
				break;
			}
			if ((rc = submit_text(r, pool, f, pend.data, cut, line)) < 0)
				break;
			line += count_nl(pend.data, cut);
			memmove(pend.data, pend.data + cut, pend.len - cut);
			pend.len -= cut;
			pend.data[pend.len] = 0;
		}
	}
	qn_buf_release(&pend);
	return rc;
}

static int feed(struct run *r)
{
	struct qn_pool *pool = qn_pool_new(S.jobs, (size_t)S.jobs * 4, work, emit, r);
	int rc = 0;

	if (!pool) {
		qn_error("out of memory");
		return -1;
	}
	for (size_t f = 0; f < ninputs && rc == 0; f++) {
		struct input *in = &inputs[f];
		struct qn_err e;
		int is_stdin = !strcmp(in->path, "-");
		struct qn_rd *rd = qn_rd_open(is_stdin ? NULL : in->path, QN_RD_SHA256, &e);
		if (!rd) {
			qn_error("%s", e.msg);
			in->unreadable = 1;
			continue;
		}
		int jsonl = S.format == FMT_JSONL  ? 1
			    : S.format == FMT_TEXT ? 0
						   : detect_jsonl(rd, &e);
		if (jsonl < 0) {
			qn_error("%s", e.msg);
			in->unreadable = 1;
			qn_rd_close(rd);
			continue;
		}
		rc = jsonl ? feed_jsonl(r, pool, f, rd) : feed_text(r, pool, f, rd);
		if (rc == 0 && qn_rd_sha256(rd, in->sha256, &e) < 0) {
			qn_error("%s", e.msg);
			rc = -1;
		}
		qn_rd_close(rd);
	}
	if (qn_pool_finish(pool) != 0)
		rc = -1;
	qn_pool_free(pool);
	batch_pool_free();
	return rc;
}

/* ---- gates and the summary ---- */

static int gate_counts(const struct sp_gate *g, size_t i)
{
	const struct rinfo *r = &cat[i];
	switch (g->subject) {
	case SP_TOTAL:
	case SP_REGURGITATED:
		return 1;
	case SP_TYPE:
		return !strcmp(r->type, g->name);
	case SP_SEVERITY:
		return r->severity >= g->level;
	case SP_KIND:
		return !strcmp(r->kind, g->name);
	case SP_RULE:
		return !strcmp(r->rule_id, g->name) ||
		       (i >= QN_PII_NTYPES &&
			!strcmp(sr_rule(S.rules, i - QN_PII_NTYPES)->id, g->name));
	}
	return 0;
}

/* Unknown types and rules are errors (a typo would pass silently); unscanned ones warnings. */
static int check_gates(const struct sp_policy *p)
{
	int bad = 0;
	for (size_t k = 0; k < p->n; k++) {
		const struct sp_gate *g = &p->v[k];
		if (g->subject == SP_REGURGITATED && !H->known) {
			qn_error("%sgate '%s': only quern-audit probe with --train knows what the "
				 "training data holds",
				 g->where, g->id);
			bad = 1;
		}
		if (g->subject != SP_TYPE && g->subject != SP_RULE)
			continue;
		int known = 0, on = 0;
		for (size_t i = 0; i < ncat; i++)
			if (gate_counts(g, i)) {
				known = 1;
				on |= cat[i].on;
			}
		if (!known) {
			qn_error("%sgate '%s': no %s is called '%s' (see --list-rules)", g->where,
				 g->id, g->subject == SP_TYPE ? "type" : "rule", g->name);
			bad = 1;
		} else if (!on) {
			qn_warn("%sgate '%s': '%s' is not scanned (--types), so the gate passes",
				g->where, g->id, g->name);
		}
	}
	return bad ? -1 : 0;
}

static json_t *gates_json(const struct sp_policy *p, uint64_t docs, int *passed)
{
	json_t *a = json_array();
	char reason[400], lim[96];
	*passed = 1;
	for (size_t k = 0; p && k < p->n; k++) {
		const struct sp_gate *g = &p->v[k];
		uint64_t obs = 0;
		for (size_t i = 0; i < ncat; i++)
			if (gate_counts(g, i))
				obs += g->subject == SP_REGURGITATED ? cat[i].regurgitated
								     : cat[i].count;
		int ok = sp_gate_eval(g, obs, docs, reason, sizeof reason);
		sp_gate_limit_text(g, lim, sizeof lim);
		if (!ok) {
			*passed = 0;
			qn_error("gate '%s' failed: %s", g->id, reason);
		}
		char full[600];
		snprintf(full, sizeof full, "%s: %s", g->id, reason);
		json_t *per = g->per ? json_pack("{s:o,s:s}", "count",
						 g->per == (double)(int64_t)g->per
						     ? json_integer((int64_t)g->per)
						     : json_real(g->per),
						 "unit", "documents")
				     : json_null();
		json_t *lj = g->limit == (double)(int64_t)g->limit ? json_integer((int64_t)g->limit)
								   : json_real(g->limit);
		json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:o,s:o,s:b,s:s,s:s}", "id", g->id,
						   "rule", g->text, "observed", (json_int_t)obs,
						   "limit", lj, "per", per, "passed", ok, "reason",
						   full, "limit_text", lim));
	}
	return a;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void bump(json_t *o, const char *k, uint64_t n)
{
	json_t *v = json_object_get(o, k);
	json_object_set_new(o, k, json_integer((v ? json_integer_value(v) : 0) + (json_int_t)n));
}

static json_t *summary_json(struct run *r, const struct sp_policy *pol, const char *policy,
			    const char *rules, const char *baseline, const char *started,
			    int *passed)
{
	json_t *s = json_object(), *ins = json_array(), *bt = json_object(), *bs = json_object(),
	       *bsrc = json_object(), *br = json_object();
	char now[32];
	static const char *const sevs[] = {"critical", "high", "medium", "low"};

	qn_now_rfc3339(now);
	for (size_t f = 0; f < ninputs; f++) {
		struct input *in = &inputs[f];
		json_array_append_new(
		    ins, json_pack("{s:s,s:I,s:I,s:s?,s:I,s:b}", "path", in->name, "documents",
				   (json_int_t)in->docs, "bytes", (json_int_t)in->bytes, "sha256",
				   in->sha256[0] ? in->sha256 : NULL, "findings",
				   (json_int_t)in->findings, "readable", !in->unreadable));
		if (in->findings)
			bump(bsrc, in->name, in->findings);
	}
	for (int k = 0; k < 4; k++) {
		uint64_t n = 0;
		for (size_t i = 0; i < ncat; i++)
			if (!strcmp(sr_severity_name(cat[i].severity), sevs[k]))
				n += cat[i].count;
		if (n)
			json_object_set_new(bs, sevs[k], json_integer((json_int_t)n));
	}
	for (size_t i = 0; i < ncat; i++) {
		const struct rinfo *ri = &cat[i];
		if (ri->count)
			bump(bt, ri->type, ri->count);
		if (ri->count || ri->suppressed)
			json_object_set_new(
			    br, ri->rule_id,
			    json_pack("{s:I,s:I,s:s,s:s,s:s,s:s}", "count", (json_int_t)ri->count,
				      "suppressed", (json_int_t)ri->suppressed, "type", ri->type,
				      "kind", ri->kind, "severity", sr_severity_name(ri->severity),
				      "message", ri->message));
	}
	json_t *gates = gates_json(pol, r->docs, passed);
	json_object_set_new(s, "tool", json_string("quern-audit"));
	json_object_set_new(s, "version", json_string(QN_VERSION));
	json_object_set_new(s, "created", json_string(now));
	json_object_set_new(s, "started", json_string(started));
	json_object_set_new(s, "inputs", ins);
	json_object_set_new(s, "documents", json_integer((json_int_t)r->docs));
	json_object_set_new(s, "bytes", json_integer((json_int_t)r->bytes));
	json_object_set_new(s, "findings",
			    json_pack("{s:I,s:I,s:I,s:o,s:o,s:o,s:o}", "total",
				      (json_int_t)r->total, "reported",
				      (json_int_t)(r->total - r->suppressed), "suppressed",
				      (json_int_t)r->suppressed, "by_type", bt, "by_severity", bs,
				      "by_source", bsrc, "by_rule", br));
	if (H->known) {
		json_t *f = json_object_get(s, "findings"), *rt = json_object();
		uint64_t n = 0;
		for (size_t i = 0; i < ncat; i++) {
			n += cat[i].regurgitated;
			if (cat[i].regurgitated)
				bump(rt, cat[i].type, cat[i].regurgitated);
		}
		json_object_set_new(f, "regurgitated", json_integer((json_int_t)n));
		json_object_set_new(f, "regurgitated_by_type", rt);
	}
	json_object_set_new(s, "gates", gates);
	json_object_set_new(s, "passed", json_boolean(*passed));
	json_object_set_new(s, "policy", str_or_null(policy));
	json_object_set_new(s, "rules", str_or_null(rules));
	json_object_set_new(s, "baseline", str_or_null(baseline));
	json_object_set_new(s, "errors",
			    json_pack("{s:I,s:I}", "bad_lines", (json_int_t)r->bad, "scan_errors",
				      (json_int_t)r->errors));
	json_object_set_new(s, "report_findings",
			    json_pack("{s:I,s:i,s:b}", "included",
				      (json_int_t)json_array_size(r->findings), "cap", REPORT_CAP,
				      "truncated", r->total > json_array_size(r->findings)));
	if (H->summary)
		H->summary(s, H->ctx);
	return s;
}

/* ---- options ---- */

enum {
	OPT_SUMMARY = 256,
	OPT_JUNIT,
	OPT_SARIF,
	OPT_HTML,
	OPT_HISTORY,
	OPT_EVAL,
	OPT_MEMO,
	OPT_MANIFEST,
	OPT_NO_MANIFEST,
	OPT_FORMAT,
	OPT_TEXT,
	OPT_FIELD,
	OPT_MAX_DOC,
	OPT_TYPES,
	OPT_MIN_SCORE,
	OPT_PRIVATE_IP,
	OPT_RULES,
	OPT_LIST_RULES,
	OPT_BASELINE,
	OPT_WRITE_BASELINE,
	OPT_SALT,
	OPT_SALT_FILE,
	OPT_POLICY,
	OPT_GATE,
	OPT_FAIL_ON_FINDINGS,
};

static const struct option longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"summary", required_argument, NULL, OPT_SUMMARY},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"sarif", required_argument, NULL, OPT_SARIF},
    {"html", required_argument, NULL, OPT_HTML},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"eval", required_argument, NULL, OPT_EVAL},
    {"memorization", required_argument, NULL, OPT_MEMO},
    {"manifest", required_argument, NULL, OPT_MANIFEST},
    {"no-manifest", no_argument, NULL, OPT_NO_MANIFEST},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"text", no_argument, NULL, OPT_TEXT},
    {"field", required_argument, NULL, OPT_FIELD},
    {"max-doc", required_argument, NULL, OPT_MAX_DOC},
    {"types", required_argument, NULL, OPT_TYPES},
    {"min-score", required_argument, NULL, OPT_MIN_SCORE},
    {"private-ip", no_argument, NULL, OPT_PRIVATE_IP},
    {"rules", required_argument, NULL, OPT_RULES},
    {"list-rules", no_argument, NULL, OPT_LIST_RULES},
    {"baseline", required_argument, NULL, OPT_BASELINE},
    {"write-baseline", required_argument, NULL, OPT_WRITE_BASELINE},
    {"salt", required_argument, NULL, OPT_SALT},
    {"salt-file", required_argument, NULL, OPT_SALT_FILE},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"gate", required_argument, NULL, OPT_GATE},
    {"fail-on-findings", no_argument, NULL, OPT_FAIL_ON_FINDINGS},
    {"jobs", required_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* all, none, pii, secrets, TYPE, -TYPE; a list that starts with -TYPE starts from all. */
static int parse_types(const char *list, uint32_t *out)
{
	char buf[1024], *save = NULL;
	uint32_t t = 0;
	int first = 1;

	if (strlen(list) >= sizeof buf)
		return qn_usage_error("--types: list too long");
	strcpy(buf, list);
	for (char *w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save), first = 0) {
		int neg = w[0] == '-';
		if (neg)
			w++;
		if (first && neg)
			t = QN_PII_ALL;
		uint32_t bits = 0;
		if (!strcasecmp(w, "all")) {
			bits = QN_PII_ALL;
		} else if (!strcasecmp(w, "none")) {
			t = 0;
			continue;
		} else if (!strcasecmp(w, "pii") || !strcasecmp(w, "secrets")) {
			int want = !strcasecmp(w, "secrets");
			for (int k = 0; k < QN_PII_NTYPES; k++)
				if (qn_pii_type_is_secret((enum qn_pii_type)k) == want)
					bits |= QN_PII_BIT(k);
		} else {
			int k = qn_pii_type_parse(w);
			if (k < 0) {
				char names[1024] = "";
				size_t o = 0;
				for (int j = 0; j < QN_PII_NTYPES && o < sizeof names; j++)
					o += (size_t)snprintf(
					    names + o, sizeof names - o, "%s%s", j ? ", " : "",
					    qn_pii_type_name((enum qn_pii_type)j));
				return qn_usage_error("--types: unknown type '%s' (all, none, pii, "
						      "secrets, %s)",
						      w, names);
			}
			bits = QN_PII_BIT(k);
		}
		t = neg ? t & ~bits : t | bits;
	}
	*out = t;
	return 0;
}

static void list_rules(void)
{
	printf("%-40s %-16s %-7s %-9s %s\n", "RULE", "TYPE", "KIND", "SEVERITY", "MESSAGE");
	for (size_t i = 0; i < ncat; i++)
		printf("%-40s %-16s %-7s %-9s %s%s\n", cat[i].rule_id, cat[i].type, cat[i].kind,
		       sr_severity_name(cat[i].severity), cat[i].message,
		       cat[i].on ? "" : " (off)");
}

static char *read_salt(const char *path)
{
	FILE *f = fopen(path, "rb");
	char buf[4096];
	if (!f) {
		qn_error("cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (!buf[0]) {
		qn_error("'%s': the salt file is empty", path);
		return NULL;
	}
	return strdup(buf);
}

static int write_report(json_t *summary, json_t *findings, json_t **hist, size_t nhist,
			json_t **model, size_t nmodel, int which, const char *path,
			struct qn_manifest *man)
{
	struct qn_err e;
	int rc = which == 0 ? report_junit(summary, path, &e)
		 : which == 1
		     ? report_sarif(summary, findings, path, &e)
		     : report_html_model(summary, findings, (const json_t *const *)hist, nhist,
					 (const json_t *const *)model, nmodel, path, &e);
	if (rc < 0) {
		qn_error("%s", e.msg);
		return -1;
	}
	char sha[65];
	uint64_t size;
	if (man && qn_sha256_file(path, sha, &size, &e) == 0)
		qn_manifest_output(man, path, size, sha);
	return 0;
}

int scan_main(int argc, char **argv)
{
	return scan_run(argc, argv, NULL);
}

int scan_run(int argc, char **argv, const struct scan_hooks *hooks)
{
	const char *output = NULL, *summary = NULL, *junit = NULL, *sarif = NULL, *html = NULL,
		   *manifest = NULL, *rules_path = NULL, *baseline = NULL, *write_base = NULL,
		   *salt = NULL, *salt_file = NULL, *policy = NULL;
	const char **hist_paths = NULL, **gates = NULL, **model_paths = NULL;
	size_t nhist = 0, ngates = 0, nmodel = 0;
	int no_manifest = 0, do_list = 0, fail_on = 0, c, rc = 0;
	struct qn_pii_opts po;
	struct qn_err e;
	struct sp_policy *pol = NULL;
	char *salt_buf = NULL;
	json_t **hist = NULL, *sj = NULL, **model = NULL;
	struct run r = {0};
	struct qn_manifest *man = NULL;
	char started[32];

	qn_now_rfc3339(started);
	qn_pii_opts_init(&po);
	H = hooks ? hooks : &no_hooks;
	memset(&S, 0, sizeof S);
	S.jobs = 1;
	S.max_doc = (size_t)256 << 20;
	S.fast = 1;
	hist_paths = calloc((size_t)argc + 1, sizeof *hist_paths);
	gates = calloc((size_t)argc + 1, sizeof *gates);
	model_paths = calloc((size_t)argc + 1, sizeof *model_paths);
	S.fields = calloc((size_t)argc + 1, sizeof *S.fields);
	if (!hist_paths || !gates || !model_paths || !S.fields) {
		qn_error("out of memory");
		return 1;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:j:qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case OPT_SUMMARY:
			summary = optarg;
			break;
		case OPT_JUNIT:
			junit = optarg;
			break;
		case OPT_SARIF:
			sarif = optarg;
			break;
		case OPT_HTML:
			html = optarg;
			break;
		case OPT_HISTORY:
			hist_paths[nhist++] = optarg;
			break;
		case OPT_EVAL:
		case OPT_MEMO:
			model_paths[nmodel++] = optarg;
			break;
		case OPT_MANIFEST:
			manifest = optarg;
			break;
		case OPT_NO_MANIFEST:
			no_manifest = 1;
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "auto"))
				S.format = FMT_AUTO;
			else if (!strcmp(optarg, "jsonl"))
				S.format = FMT_JSONL;
			else if (!strcmp(optarg, "text"))
				S.format = FMT_TEXT;
			else
				rc = qn_usage_error(
				    "--format: expected auto, jsonl or text, not '%s'", optarg);
			break;
		case OPT_TEXT:
			S.format = FMT_TEXT;
			break;
		case OPT_FIELD:
			if (!*optarg)
				rc = qn_usage_error("--field: the name is empty");
			S.fields[S.nfields++] = optarg;
			break;
		case OPT_MAX_DOC: {
			uint64_t v;
			if (qn_parse_size(optarg, &v) < 0 || v < 1024 || v > ((uint64_t)1 << 32))
				rc = qn_usage_error(
				    "--max-doc: expected a size from 1K to 4G, not '%s'", optarg);
			else
				S.max_doc = (size_t)v;
			break;
		}
		case OPT_TYPES:
			if (parse_types(optarg, &po.types) != 0)
				rc = QN_EXIT_USAGE;
			break;
		case OPT_MIN_SCORE:
			if (qn_parse_number("--min-score", optarg, 0, 1, &po.min_score) < 0)
				rc = QN_EXIT_USAGE;
			break;
		case OPT_PRIVATE_IP:
			po.include_private_ip = 1;
			break;
		case OPT_RULES:
			rules_path = optarg;
			break;
		case OPT_LIST_RULES:
			do_list = 1;
			break;
		case OPT_BASELINE:
			baseline = optarg;
			break;
		case OPT_WRITE_BASELINE:
			write_base = optarg;
			break;
		case OPT_SALT:
			if (!*optarg)
				rc = qn_usage_error("--salt: the salt is empty");
			salt = optarg;
			break;
		case OPT_SALT_FILE:
			salt_file = optarg;
			break;
		case OPT_POLICY:
			policy = optarg;
			break;
		case OPT_GATE:
			gates[ngates++] = optarg;
			break;
		case OPT_FAIL_ON_FINDINGS:
			fail_on = 1;
			break;
		case 'j':
			if (qn_parse_jobs("-j", optarg, &S.jobs) < 0)
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
			goto done_early;
		case 'V':
			qn_print_version();
			rc = -1;
			goto done_early;
		default:
			rc = qn_usage_error("unknown option");
			break;
		}
		if (rc)
			goto done_early;
	}
	if (salt && salt_file) {
		rc = qn_usage_error("--salt and --salt-file both give the salt; use one");
		goto done_early;
	}
	if (!S.nfields)
		S.fields[S.nfields++] = "text";
	S.fast = S.nfields == 1 && !strcmp(S.fields[0], "text");

	/* Rules, detectors, baseline, policy: any problem is a usage error, before reading. */
	if (rules_path && !(S.rules = sr_rules_load(rules_path, &e))) {
		qn_error("%s", e.msg);
		rc = QN_EXIT_USAGE;
		goto done_early;
	}
	if (cat_build(po.types, S.rules) < 0) {
		qn_error("out of memory");
		rc = 1;
		goto done;
	}
	if (do_list) {
		list_rules();
		goto done;
	}
	if (po.types && !(S.pii = qn_pii_new(&po, &e))) {
		qn_error("%s", e.msg);
		rc = 1;
		goto done;
	}
	if (baseline && !(S.base = sb_load(baseline, &e))) {
		qn_error("%s", e.msg);
		rc = QN_EXIT_USAGE;
		goto done;
	}
	if (salt_file && !(salt = salt_buf = read_salt(salt_file))) {
		rc = QN_EXIT_USAGE;
		goto done;
	}
	if (salt && sb_salt(S.base) && strcmp(salt, sb_salt(S.base))) {
		rc = qn_usage_error("the salt differs from the one baseline '%s' was written with; "
				    "none of its fingerprints could match",
				    baseline);
		goto done;
	}
	S.salt = salt ? salt : sb_salt(S.base) ? sb_salt(S.base) : DEFAULT_SALT;
	S.saltlen = strlen(S.salt);
	if (!(pol = sp_policy_new())) {
		qn_error("out of memory");
		rc = 1;
		goto done;
	}
	if (policy && sp_policy_load(pol, policy, &e) < 0) {
		qn_error("%s", e.msg);
		rc = QN_EXIT_USAGE;
		goto done;
	}
	for (size_t i = 0; i < ngates + (size_t)fail_on; i++) {
		const char *g = i < ngates ? gates[i] : "total: 0";
		if (sp_policy_parse(pol, g, strlen(g), "--gate", 1, &e) < 0) {
			qn_error("%s", e.msg);
			rc = QN_EXIT_USAGE;
			goto done;
		}
	}
	if (check_gates(pol) < 0) {
		rc = QN_EXIT_USAGE;
		goto done;
	}
	if (!(hist = calloc(nhist + 1, sizeof *hist))) {
		qn_error("out of memory");
		rc = 1;
		goto done;
	}
	for (size_t i = 0; i < nhist; i++) {
		json_error_t je;
		hist[i] = json_load_file(hist_paths[i], 0, &je);
		if (!json_is_object(hist[i])) {
			qn_error("%s:%d:%d: not a summary: %s", hist_paths[i], je.line, je.column,
				 hist[i] ? "not a JSON object" : je.text);
			rc = QN_EXIT_USAGE;
			goto done;
		}
	}

	if (!(model = calloc(nmodel + 1, sizeof *model))) {
		qn_error("out of memory");
		rc = 1;
		goto done;
	}
	for (size_t i = 0; i < nmodel; i++) {
		if (am_json_load(model_paths[i], &model[i], &e) < 0) {
			qn_error("%s", e.msg);
			rc = QN_EXIT_USAGE;
			goto done;
		}
		enum am_kind k = am_detect(model[i]);
		if (k != AM_EVAL && k != AM_MEMORIZATION && k != AM_CANARY) {
			qn_error(
			    "'%s': not quern-audit eval, memorization or canary exposure results",
			    model_paths[i]);
			rc = QN_EXIT_USAGE;
			goto done;
		}
	}

	/* Inputs. */
	static char *const std_in[] = {"-"};
	char *const *paths = optind < argc ? argv + optind : std_in;
	ninputs = optind < argc ? (size_t)(argc - optind) : 1;
	if (!(inputs = calloc(ninputs, sizeof *inputs))) {
		qn_error("out of memory");
		rc = 1;
		goto done;
	}
	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];
		in->path = paths[i];
		in->name = strcmp(paths[i], "-") ? paths[i] : "stdin";
		if (i == 0 && H->source_name)
			in->name = H->source_name;
		char *j = json_of(in->name);
		size_t n = j ? strlen(j) + 12 : 0;
		if (!j || !(in->json_src = malloc(n))) {
			free(j);
			qn_error("out of memory");
			rc = 1;
			goto done;
		}
		snprintf(in->json_src, n, "\"source\":%s,", j);
		free(j);
	}

	r.out = H->collect ? NULL : qn_wr_open(output, 0, &e);
	if (!r.out && !H->collect) {
		qn_error("%s", e.msg);
		rc = 1;
		goto done;
	}
	r.findings = json_array();
	if (write_base)
		r.bl = json_array();
	if (!no_manifest && !H->collect)
		man = qn_manifest_new("quern-audit", QN_VERSION, H->argv ? H->argc : argc,
				      H->argv ? H->argv : argv);
	qn_progress_init(&r.prog, 0);
	int fr = feed(&r);
	qn_progress_finish(&r.prog);
	wst_free_all();
	if (fr < 0 || r.failed) {
		if (r.out)
			qn_wr_abort(r.out);
		qn_error("stopped; no output written");
		rc = 1;
		goto done;
	}
	struct qn_wr_info oinfo = {0};
	if (r.out && qn_wr_commit(r.out, &oinfo, &e) < 0) {
		qn_error("%s", e.msg);
		rc = 1;
		goto done;
	}
	int passed = 1;
	sj = summary_json(&r, pol, policy, rules_path, baseline, started, &passed);
	if (!passed)
		rc = 1;
	size_t unreadable = 0;
	for (size_t i = 0; i < ninputs; i++) {
		unreadable += (size_t)inputs[i].unreadable;
		if (man && !inputs[i].unreadable && inputs[i].sha256[0])
			qn_manifest_input(man, inputs[i].name, inputs[i].bytes, inputs[i].sha256);
	}
	if (r.bad || r.errors || unreadable)
		rc = 1;
	if (unreadable == ninputs)
		qn_error("no input could be read");
	if (man && output && oinfo.sha256[0])
		qn_manifest_output(man, output, oinfo.bytes, oinfo.sha256);
	if (summary) {
		char *txt = json_dumps(sj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!txt || qn_write_file_atomic(summary, txt, strlen(txt), &e) < 0) {
			qn_error("%s", txt ? e.msg : "out of memory");
			rc = 1;
		} else if (man) {
			char sha[65];
			qn_sha256_hex(txt, strlen(txt), sha);
			qn_manifest_output(man, summary, strlen(txt), sha);
		}
		free(txt);
	}
	if (junit && write_report(sj, r.findings, hist, nhist, model, nmodel, 0, junit, man) < 0)
		rc = 1;
	if (sarif && write_report(sj, r.findings, hist, nhist, model, nmodel, 1, sarif, man) < 0)
		rc = 1;
	if (html && write_report(sj, r.findings, hist, nhist, model, nmodel, 2, html, man) < 0)
		rc = 1;
	if (write_base) {
		if (sb_write(write_base, S.salt, r.bl, sb_manual(S.base), &e) < 0) {
			qn_error("%s", e.msg);
			rc = 1;
		} else if (man) {
			char sha[65];
			uint64_t size;
			if (qn_sha256_file(write_base, sha, &size, &e) == 0)
				qn_manifest_output(man, write_base, size, sha);
		}
	}
	if (man) {
		if (H->manifest)
			H->manifest(man, H->ctx);
		qn_manifest_count(man, "documents", (int64_t)r.docs);
		qn_manifest_count(man, "bytes", (int64_t)r.bytes);
		qn_manifest_count(man, "findings", (int64_t)(r.total - r.suppressed));
		qn_manifest_count(man, "suppressed", (int64_t)r.suppressed);
		qn_manifest_count(man, "bad_lines", (int64_t)r.bad);
		qn_manifest_count(man, "scan_errors", (int64_t)r.errors);
		qn_manifest_set(man, "passed", json_boolean(passed));
		char *mpath = manifest ? strdup(manifest)
			      : output ? qn_manifest_path_for(output)
				       : NULL;
		if (mpath && qn_manifest_write(man, mpath, &e) < 0) {
			qn_error("%s", e.msg);
			rc = 1;
		}
		free(mpath);
	}
	qn_info("%llu documents, %llu findings (%llu suppressed), %llu bad lines",
		(unsigned long long)r.docs, (unsigned long long)r.total,
		(unsigned long long)r.suppressed, (unsigned long long)r.bad);
done:
	wst_free_all();
	json_decref(sj);
	json_decref(r.findings);
	json_decref(r.bl);
	for (size_t i = 0; hist && i < nhist; i++)
		json_decref(hist[i]);
	free(hist);
	for (size_t i = 0; model && i < nmodel; i++)
		json_decref(model[i]);
	free(model);
	for (size_t i = 0; inputs && i < ninputs; i++)
		free(inputs[i].json_src);
	free(inputs);
	inputs = NULL;
	qn_manifest_free(man);
	sp_policy_free(pol);
	sb_free(S.base);
	qn_pii_free(S.pii);
	sr_rules_free(S.rules);
	cat_free();
	free(salt_buf);
done_early:
	free(hist_paths);
	free(model_paths);
	free(gates);
	free(S.fields);
	if (H != &no_hooks)
		return rc < 0 ? 0 : rc; /* the caller goes on and closes stdout */
	return qn_close_stdout(rc < 0 ? 0 : rc);
}
