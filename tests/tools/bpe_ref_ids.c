/*
 * bpe_ref_ids.c - test and benchmark helper for lib/bpe_train.
 *
 *   bpe_ref_ids train [-j N] [--vocab-size N] [--min-frequency N]
 *                     [--pattern P] [--special S]... [--lines] [-v] -o DIR FILE...
 *       Trains on the "text" of every JSON line of the FILEs (--lines: every
 *       line is a text) and writes DIR/tokenizer.tiktoken, DIR/tokenizer.json
 *       and DIR/quern-tokenizer.json. Until quern-tokenize exists, this is
 *       how the command-line test and bench/tokenize_train.sh train.
 *   bpe_ref_ids ids [--allow-special] DIR FILE
 *       The reference encoder: one JSON array of ids per JSON line of FILE,
 *       from DIR's rank file and config. Written apart from lib/bpe_train
 *       and lib/bpe and as plainly as possible: tiktoken's algorithm (a
 *       piece that is a token is that token; otherwise merge the adjacent
 *       pair whose bytes form the lowest-ranked token, the leftmost on ties,
 *       until none does), quadratic per piece. Special-token text is text,
 *       unless --allow-special (the longest special at the leftmost place
 *       becomes its id, as Hugging Face always does).
 *   bpe_ref_ids pieces DIR FILE
 *       The pre-tokenization alone: one JSON array of piece strings a line.
 *   bpe_ref_ids quern-tt [--allow-special] DIR FILE
 *       The same ids from lib/bpe.h with the rank file and the config;
 *   bpe_ref_ids quern-hf [--allow-special] DIR FILE
 *       and from lib/bpe.h with the tokenizer.json.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bpe.h"
#include "bpe_train.h"
#include "buf.h"
#include "doc.h"
#include "err.h"
#include "rd.h"

static int die(const char *what, const char *msg)
{
	fprintf(stderr, "bpe_ref_ids: %s: %s\n", what, msg);
	return 1;
}

/* Calls fn on every text of a JSON Lines file ("text") or, with lines, every line. */
static int each_text(const char *path, int lines, int (*fn)(void *, const char *, size_t),
		     void *ctx)
{
	struct qn_err e;
	if (lines) {
		struct qn_rd *r = qn_rd_open(path, 0, &e);
		struct qn_buf line;
		int rc;
		if (!r)
			return die(path, e.msg);
		qn_buf_init(&line, (size_t)1 << 30);
		while ((rc = qn_rd_line(r, &line, (size_t)1 << 30, &e)) == 1)
			if (fn(ctx, line.data ? line.data : "", line.len))
				break;
		qn_buf_release(&line);
		qn_rd_close(r);
		return rc < 0 ? die(path, e.msg) : 0;
	} else {
		struct qn_jsonl j;
		json_t *o;
		int rc;
		if (qn_jsonl_open(&j, path, QN_JSONL_MAX_LINE_DEFAULT, 0, &e) < 0)
			return die(path, e.msg);
		while ((rc = qn_jsonl_next(&j, &o, &e)) != 0) {
			json_t *t;
			if (rc < 0) {
				qn_jsonl_close(&j);
				return die(path, e.msg);
			}
			if (rc == QN_JSONL_BAD)
				continue;
			t = json_object_get(o, "text");
			if (json_is_string(t) &&
			    fn(ctx, json_string_value(t), json_string_length(t))) {
				json_decref(o);
				break;
			}
			json_decref(o);
		}
		qn_jsonl_close(&j);
		return 0;
	}
}

/* ---- train ---- */

static int feed(void *ctx, const char *s, size_t n)
{
	struct qn_err e;
	if (qn_bpet_add_text(ctx, s, n, &e) < 0) {
		die("add_text", e.msg);
		return 1;
	}
	return 0;
}

static int cmd_train(int argc, char **argv)
{
	struct qn_bpet_opts o;
	struct qn_bpet_stats st;
	struct qn_bpet *t;
	struct qn_err e;
	const char *specials[64], *dir = NULL;
	char path[4096];
	int i, lines = 0, verbose = 0;

	qn_bpet_opts_default(&o);
	o.specials = specials;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--lines"))
			lines = 1;
		else if (!strcmp(a, "-v"))
			verbose = 1;
		else if (!v)
			return die(a, "needs a value");
		else if (!strcmp(a, "-j"))
			o.threads = atoi(v), i++;
		else if (!strcmp(a, "--vocab-size"))
			o.vocab_size = strtoull(v, NULL, 10), i++;
		else if (!strcmp(a, "--min-frequency"))
			o.min_frequency = strtoull(v, NULL, 10), i++;
		else if (!strcmp(a, "--pattern"))
			o.pattern = v, i++;
		else if (!strcmp(a, "--special") && o.nspecials < 64)
			specials[o.nspecials++] = v, i++;
		else if (!strcmp(a, "-o"))
			dir = v, i++;
		else
			return die(a, "unknown option");
	}
	if (!dir || i >= argc)
		return die("usage", "bpe_ref_ids train [options] -o DIR FILE...");
	if (!(t = qn_bpet_new(&o, &e)))
		return die("train", e.msg);
	for (; i < argc; i++)
		if (each_text(argv[i], lines, feed, t)) {
			qn_bpet_free(t);
			return 1;
		}
	if (qn_bpet_train(t, &e) < 0) {
		qn_bpet_free(t);
		return die("train", e.msg);
	}
	snprintf(path, sizeof path, "%s/tokenizer.tiktoken", dir);
	if (qn_bpet_write_tiktoken(t, path, &e) < 0)
		return die(path, e.msg);
	snprintf(path, sizeof path, "%s/tokenizer.json", dir);
	if (qn_bpet_write_hf_json(t, path, &e) < 0)
		return die(path, e.msg);
	snprintf(path, sizeof path, "%s/quern-tokenizer.json", dir);
	if (qn_bpet_write_config(t, path, &e) < 0)
		return die(path, e.msg);
	qn_bpet_get_stats(t, &st);
	if (verbose)
		fprintf(stderr,
			"bpe_ref_ids: %llu texts, %llu bytes, %llu pre-tokens, %llu distinct (%llu "
			"bytes), "
			"%llu pairs, %llu merges%s\n",
			(unsigned long long)st.texts, (unsigned long long)st.bytes,
			(unsigned long long)st.pretokens, (unsigned long long)st.distinct,
			(unsigned long long)st.distinct_bytes, (unsigned long long)st.pairs,
			(unsigned long long)st.merges, st.stopped_early ? " (stopped early)" : "");
	qn_bpet_free(t);
	return 0;
}

/* ---- the reference encoder ---- */

struct ref {
	unsigned char **tok;
	size_t *len;
	size_t n;
	int pieces, allow_special;
	char *special[64];
	long special_id[64];
	size_t nspecial;
	pcre2_code *re;
	pcre2_match_data *md;
	struct qn_buf out;
};

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The rank of these bytes, or -1: a linear scan over the tokens of that length would be
 * too slow, so a sorted index by (length, bytes) and a binary search. */
static size_t *order;
static struct ref *sort_ref;
static int cmp_tok(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	if (sort_ref->len[a] != sort_ref->len[b])
		return sort_ref->len[a] < sort_ref->len[b] ? -1 : 1;
	return memcmp(sort_ref->tok[a], sort_ref->tok[b], sort_ref->len[a]);
}

static long rank_of(const struct ref *r, const unsigned char *s, size_t n)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2, k = order[mid];
		int c = r->len[k] != n ? (r->len[k] < n ? -1 : 1) : memcmp(r->tok[k], s, n);
		if (!c)
			return (long)k;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int load_ref(struct ref *r, const char *dir)
{
	char path[4096], line[8192];
	FILE *f;
	json_t *cfg;
	json_error_t je;
	struct qn_buf pat;
	const char *src;
	size_t i, cap = 0;
	int ec, in_class = 0;
	PCRE2_SIZE eo;
	static const char ws[] = "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
				 "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

	memset(r, 0, sizeof *r);
	snprintf(path, sizeof path, "%s/tokenizer.tiktoken", dir);
	if (!(f = fopen(path, "r")))
		return die(path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char *sp = strchr(line, ' ');
		unsigned char buf[6144];
		size_t n = 0, k;
		uint32_t acc = 0;
		int bits = 0;
		if (!sp)
			return die(path, "line without a space");
		for (k = 0; line + k < sp; k++) {
			int v = b64val(line[k]);
			if (v < 0)
				continue; /* '=' */
			acc = acc << 6 | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				buf[n++] = (unsigned char)(acc >> bits);
			}
		}
		if ((size_t)atol(sp + 1) != r->n)
			return die(path, "ranks are not 0, 1, 2, ...");
		if (r->n == cap) {
			cap = cap ? 2 * cap : 1024;
			r->tok = realloc(r->tok, cap * sizeof *r->tok);
			r->len = realloc(r->len, cap * sizeof *r->len);
		}
		r->tok[r->n] = malloc(n ? n : 1);
		memcpy(r->tok[r->n], buf, n);
		r->len[r->n++] = n;
	}
	fclose(f);
	order = malloc(r->n * sizeof *order);
	for (i = 0; i < r->n; i++)
		order[i] = i;
	sort_ref = r;
	qsort(order, r->n, sizeof *order, cmp_tok);

	snprintf(path, sizeof path, "%s/quern-tokenizer.json", dir);
	if (!(cfg = json_load_file(path, 0, &je)))
		return die(path, je.text);
	src = json_string_value(json_object_get(cfg, "pattern"));
	if (!src)
		return die(path, "no pattern");
	{
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(cfg, "special_tokens"), k, v)
		{
			if (r->nspecial < 64) {
				r->special[r->nspecial] = strdup(k);
				r->special_id[r->nspecial++] = (long)json_integer_value(v);
			}
		}
	}
	/* \s and \S are Unicode White_Space, as in Rust's regex crate. */
	qn_buf_init(&pat, QN_BUF_UNLIMITED);
	for (i = 0; src[i]; i++) {
		if (src[i] == '\\' && src[i + 1] == 's') {
			qn_buf_printf(&pat, in_class ? "%s" : "[%s]", ws);
			i++;
		} else if (src[i] == '\\' && src[i + 1] == 'S') {
			qn_buf_printf(&pat, "[^%s]", ws);
			i++;
		} else if (src[i] == '\\' && src[i + 1]) {
			qn_buf_add(&pat, src + i, 2);
			i++;
		} else {
			if (src[i] == '[')
				in_class = 1;
			else if (src[i] == ']')
				in_class = 0;
			qn_buf_addc(&pat, src[i]);
		}
	}
	r->re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len,
			      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
	qn_buf_release(&pat);
	json_decref(cfg);
	if (!r->re)
		return die(path, "pattern does not compile");
	pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
	r->md = pcre2_match_data_create(1, NULL);
	qn_buf_init(&r->out, QN_BUF_UNLIMITED);
	return 0;
}

static void free_ref(struct ref *r)
{
	size_t i;
	for (i = 0; i < r->n; i++)
		free(r->tok[i]);
	for (i = 0; i < r->nspecial; i++)
		free(r->special[i]);
	free(r->tok);
	free(r->len);
	free(order);
	pcre2_match_data_free(r->md);
	pcre2_code_free(r->re);
	qn_buf_release(&r->out);
}

static void emit_piece(struct ref *r, const unsigned char *s, size_t n, int *first)
{
	if (*first == 0)
		qn_buf_addc(&r->out, ',');
	qn_json_str(&r->out, (const char *)s, n);
	*first = 0;
}

static void emit(struct ref *r, long id, int *first)
{
	qn_buf_printf(&r->out, *first ? "%ld" : ",%ld", id);
	*first = 0;
}

/* tiktoken's byte-pair merge of one piece. */
static void encode_piece(struct ref *r, const unsigned char *s, size_t n, int *first)
{
	size_t *start, parts, i;
	long whole;
	if (!n)
		return;
	if (r->pieces) {
		emit_piece(r, s, n, first);
		return;
	}
	whole = rank_of(r, s, n);
	if (whole >= 0) {
		emit(r, whole, first);
		return;
	}
	start = malloc((n + 1) * sizeof *start); /* part i is s[start[i] .. start[i+1]) */
	for (i = 0; i <= n; i++)
		start[i] = i;
	parts = n;
	for (;;) {
		long best = -1;
		size_t at = 0;
		for (i = 0; i + 1 < parts; i++) {
			long k = rank_of(r, s + start[i], start[i + 2] - start[i]);
			if (k >= 0 && (best < 0 || k < best)) {
				best = k;
				at = i;
			}
		}
		if (best < 0)
			break;
		memmove(start + at + 1, start + at + 2, (parts - at - 1) * sizeof *start);
		parts--;
	}
	for (i = 0; i < parts; i++)
		emit(r, rank_of(r, s + start[i], start[i + 1] - start[i]), first);
	free(start);
}

/* Splits s[0..n) by the pattern and encodes the pieces. */
static void ref_segment(struct ref *r, const char *s, size_t n, int *first_)
{
	size_t pos = 0, gap = 0;
	int first = *first_;
	while (pos < n) {
		int rc = pcre2_match(r->re, (PCRE2_SPTR)s, n, pos, 0, r->md, NULL);
		PCRE2_SIZE *ov;
		if (rc < 0)
			break;
		ov = pcre2_get_ovector_pointer(r->md);
		encode_piece(r, (const unsigned char *)s + gap, ov[0] - gap, &first);
		encode_piece(r, (const unsigned char *)s + ov[0], ov[1] - ov[0], &first);
		gap = ov[1];
		if (ov[1] > ov[0])
			pos = ov[1];
		else /* an empty match: step over one character */
			for (pos = ov[0] + 1; pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80;
			     pos++)
				;
	}
	encode_piece(r, (const unsigned char *)s + gap, n - gap, &first);
	*first_ = first;
}

static int ref_text(void *ctx, const char *s, size_t n)
{
	struct ref *r = ctx;
	size_t pos = 0;
	int first = 1;
	qn_buf_reset(&r->out);
	qn_buf_addc(&r->out, '[');
	while (r->allow_special) { /* cut at the longest special at the leftmost place */
		const char *best = NULL;
		size_t k, blen = 0, bk = 0;
		for (k = 0; k < r->nspecial; k++) {
			const char *f =
			    memmem(s + pos, n - pos, r->special[k], strlen(r->special[k]));
			if (f &&
			    (!best || f < best || (f == best && strlen(r->special[k]) > blen))) {
				best = f;
				blen = strlen(r->special[k]);
				bk = k;
			}
		}
		if (!best)
			break;
		ref_segment(r, s + pos, (size_t)(best - (s + pos)), &first);
		emit(r, r->special_id[bk], &first);
		pos = (size_t)(best - s) + blen;
	}
	ref_segment(r, s + pos, n - pos, &first);
	qn_buf_adds(&r->out, "]\n");
	fwrite(r->out.data, 1, r->out.len, stdout);
	return 0;
}

/* ---- lib/bpe ---- */

struct qctx {
	struct qn_bpe *b;
	struct qn_bpe_scratch *s;
	struct qn_bpe_ids ids;
	struct qn_buf out;
	unsigned flags;
};

static int quern_text(void *ctx, const char *s, size_t n)
{
	struct qctx *q = ctx;
	struct qn_err e;
	size_t i;
	qn_bpe_ids_reset(&q->ids);
	if (qn_bpe_encode(q->b, q->s, s, n, q->flags, &q->ids, &e) < 0) {
		die("encode", e.msg);
		return 1;
	}
	qn_buf_reset(&q->out);
	qn_buf_addc(&q->out, '[');
	for (i = 0; i < q->ids.n; i++)
		qn_buf_printf(&q->out, i ? ",%u" : "%u", q->ids.v[i]);
	qn_buf_adds(&q->out, "]\n");
	fwrite(q->out.data, 1, q->out.len, stdout);
	return 0;
}

static int cmd_quern(const char *dir, const char *file, int hf, int allow_special)
{
	struct qctx q;
	struct qn_err e;
	char path[4096];
	int rc;

	memset(&q, 0, sizeof q);
	q.flags = allow_special ? QN_BPE_ALLOW_SPECIAL : 0;
	if (hf) {
		snprintf(path, sizeof path, "%s/tokenizer.json", dir);
		q.b = qn_bpe_load_hf(path, &e);
	} else {
		struct qn_bpe_spec spec = {0};
		struct qn_bpe_special sp[64];
		json_error_t je;
		json_t *cfg, *v;
		const char *k;
		snprintf(path, sizeof path, "%s/quern-tokenizer.json", dir);
		if (!(cfg = json_load_file(path, 0, &je)))
			return die(path, je.text);
		spec.pattern = json_string_value(json_object_get(cfg, "pattern"));
		json_object_foreach(json_object_get(cfg, "special_tokens"), k, v)
		{
			if (spec.n_specials < 64) {
				sp[spec.n_specials].name = k;
				sp[spec.n_specials++].id = (uint32_t)json_integer_value(v);
			}
		}
		spec.specials = sp;
		snprintf(path, sizeof path, "%s/tokenizer.tiktoken", dir);
		q.b = qn_bpe_load_tiktoken(path, &spec, &e);
		json_decref(cfg);
	}
	if (!q.b)
		return die(path, e.msg);
	q.s = qn_bpe_scratch_new(q.b);
	qn_bpe_ids_init(&q.ids, (size_t)1 << 30);
	qn_buf_init(&q.out, QN_BUF_UNLIMITED);
	rc = each_text(file, 0, quern_text, &q);
	qn_buf_release(&q.out);
	qn_bpe_ids_release(&q.ids);
	qn_bpe_scratch_free(q.s);
	qn_bpe_free(q.b);
	return rc;
}

int main(int argc, char **argv)
{
	int allow = argc >= 3 && !strcmp(argv[2], "--allow-special");
	if (argc >= 2 && !strcmp(argv[1], "train"))
		return cmd_train(argc - 1, argv + 1);
	if (argc == 4 + allow && (!strcmp(argv[1], "ids") || !strcmp(argv[1], "pieces"))) {
		struct ref r;
		int rc;
		if (load_ref(&r, argv[2 + allow]))
			return 1;
		r.pieces = !strcmp(argv[1], "pieces");
		r.allow_special = allow;
		rc = each_text(argv[3 + allow], 0, ref_text, &r);
		free_ref(&r);
		return rc || fflush(stdout) ? 1 : 0;
	}
	if (argc == 4 + allow && (!strcmp(argv[1], "quern-tt") || !strcmp(argv[1], "quern-hf")))
		return cmd_quern(argv[2 + allow], argv[3 + allow], !strcmp(argv[1], "quern-hf"),
				 allow) ||
		       fflush(stdout);
	fprintf(
	    stderr,
	    "usage: bpe_ref_ids train [options] -o DIR FILE... | ids [--allow-special] DIR FILE | "
	    "pieces DIR FILE | quern-tt|quern-hf [--allow-special] DIR FILE\n");
	return 2;
}
