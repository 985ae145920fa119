/* shard.c - see shard.h; the byte layout is docs/shards.md. */
#include "shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>
#include <zstd.h>

#include "err.h"
#include "hash.h"
#include "wr.h"

/* Header fields (docs/shards.md). */
#define H_VERSION 8
#define H_CODING 12
#define H_WIDTH 16
#define H_VOCAB 20
#define H_BLOCK 24
#define H_SPLIT 28
#define H_INDEX 32
#define H_PROMOTED 36
#define H_TOKENS 40
#define H_DOCS 48
#define H_BLOCKS 56
#define H_SPANS 64
#define H_OFF_DATA 72
#define H_OFF_BLOCKS 80
#define H_OFF_IDS 88
#define H_OFF_DOCS 96
#define H_OFF_SPANS 104
#define H_OFF_RANKS 112
#define H_OFF_TRAILER 120
#define H_FP 128

/* Block table entries. */
#define BLOCK_ENT 32
#define B_RAW 0
#define B_OFF 8
#define B_SIZE 16
#define B_COUNT 20
#define B_HASH 24

/*
 * Document index rows (stored as one zstd frame of byte planes: byte j of
 * every row, then byte j + 1, ...). The id hashes are a separate, raw
 * section: 8 bytes a document that do not compress, and that bound the
 * document count by the file's size.
 */
#define DOC_ROW 40
#define D_OFF 0
#define D_SPAN 8
#define D_COUNT 16
#define D_NSPANS 20
#define D_LABEL 24
#define D_PAIR 28
#define D_TASK 32
#define D_FLAGS 34
#define D_RESERVED 36
#define ID_ENT 8

#define SPAN_ENT 8
#define F_VAL 1u
#define F_ROLE_SHIFT 1
#define F_ROLE 6u
#define F_MASKED 8u
#define NO_PAIR UINT32_MAX

#define CODING_RANK_VARINT 1
#define VARINT_MAX 4 /* bytes for any code: P + QN_SHARD_VOCAB_MAX < 2^28 */
/*
 * A block's tokens are cut into LANES contiguous runs, each varint-coded on
 * its own after a table of the first LANES - 1 runs' byte lengths, so that
 * decoding follows LANES independent chains of varints at once.
 */
#define LANES 4
#define LANE_HEAD (4 * (LANES - 1))
/* Bytes a block's varints (and its lane table) can take. */
#define PAYLOAD_MAX(n) (LANE_HEAD + (uint64_t)VARINT_MAX * (n))
#define MANIFEST_MAX (64u << 20)
#define FORMAT_NAME "quern-token-shards"

static const char *const split_names[QN_SHARD_NSPLITS] = {"train", "val"};

const char *qn_shard_split_name(int split)
{
	return split >= 0 && split < QN_SHARD_NSPLITS ? split_names[split] : NULL;
}

uint64_t qn_shard_id_hash(const char *id, size_t len)
{
	return qn_xxh3_64(id, len, 0);
}

/* ---- little-endian fields ---- */

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void set16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void set32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void set64(unsigned char *p, uint64_t v)
{
	set32(p, (uint32_t)v);
	set32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t pad8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* zstd's worst case for a block of n tokens. */
static uint64_t block_bound(uint64_t n)
{
	return ZSTD_COMPRESSBOUND(PAYLOAD_MAX(n));
}

/* The first token of lane l of a block of n tokens. */
static size_t lane_start(size_t n, int l)
{
	return (size_t)((uint64_t)n * (unsigned)l / LANES);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits to 32 bytes; -1 when it is not that. */
static int unhex32(const char *s, unsigned char out[32])
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
		if (a < 0 || b < 0)
			return -1;
		out[i] = (unsigned char)(a << 4 | b);
	}
	return 0;
}

static void hex32(const unsigned char in[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[64] = 0;
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void file_name(char out[24], int split, uint32_t index)
{
	snprintf(out, 24, "%s-%05" PRIu32 ".qsh", split_names[split], index);
}

/* "name: offset N: why"; returns -1. */
__attribute__((format(printf, 4, 5))) static int bad(struct qn_err *e, const char *name,
						     uint64_t off, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s: offset %" PRIu64 ": %s", name, off, why);
}

/* A growable byte vector. */
struct vec {
	unsigned char *p;
	size_t len, cap;
};

static int vec_room(struct vec *v, size_t n)
{
	if (v->cap - v->len >= n)
		return 0;
	if (n > SIZE_MAX / 2 - v->len)
		return -1;
	size_t c = v->cap ? v->cap : 4096;
	while (c - v->len < n)
		c *= 2;
	unsigned char *p = realloc(v->p, c);
	if (!p)
		return -1;
	v->p = p;
	v->cap = c;
	return 0;
}

/* ======================================================================
 * Writing
 * ====================================================================== */

struct file_rec {
	char name[24];
	uint32_t index;
	uint64_t docs, tokens, bytes;
	char sha256[65];
};

struct task_count {
	uint64_t docs, tokens;
};

struct qn_shard_writer {
	char *dir;
	int split;
	unsigned width;
	uint32_t vocab, B;
	int level;
	uint64_t max_bytes;
	unsigned char fp[32];
	char fphex[65];
	ZSTD_CCtx *cc;

	/* The shard being built. */
	uint32_t index;
	uint32_t *pending; /* up to B tokens not yet compressed */
	size_t npending;
	struct vec data;   /* compressed blocks */
	struct vec blocks; /* block table, as stored */
	struct vec docs;   /* document index rows, before the transposition */
	struct vec ids;	   /* id hashes, as stored */
	struct vec spans;  /* mask spans, as stored */
	uint64_t nblocks, ndocs, nspans, tokens;
	int have_ranks;
	uint32_t promoted[QN_SHARD_PROMOTED_MAX];
	uint32_t npromoted;
	uint32_t *enc;	     /* token id -> code */
	uint32_t *count;     /* per id, for the rank table; zero between uses */
	uint32_t *distinct;  /* B scratch ids */
	uint64_t *keys;	     /* B scratch sort keys */
	unsigned char *vbuf; /* varints of one block */
	struct qn_shard_span *norm;
	size_t normcap;

	/* Finished files and totals. */
	struct file_rec *files;
	size_t nfiles, fcap;
	struct task_count *tasks;
	size_t ntasks; /* highest task id used + 1 */
	int32_t max_label;
	uint64_t total_docs, total_tokens;
	int closed, failed;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The rank table from the shard's first block: the tokens seen there at
 * least twice, most frequent first (ties: lower id first), at most
 * QN_SHARD_PROMOTED_MAX of them, are stored as their rank 0, 1, ..., P - 1;
 * every token id t is stored as P + t otherwise. The frequent tokens so get
 * one- and two-byte varints, zstd sees bytes that repeat, and decoding
 * needs only the P-entry table (no table the size of the vocabulary).
 */
static void build_ranks(struct qn_shard_writer *w, const uint32_t *t, size_t n)
{
	size_t nd = 0, nc = 0;

	for (size_t i = 0; i < n; i++)
		if (w->count[t[i]]++ == 0)
			w->distinct[nd++] = t[i];
	for (size_t i = 0; i < nd; i++) {
		uint32_t id = w->distinct[i], c = w->count[id];
		w->count[id] = 0;
		if (c >= 2)
			w->keys[nc++] = (uint64_t)(UINT32_MAX - c) << 32 | id;
	}
	/* Keys ascending: count descending, then id ascending. */
	qsort(w->keys, nc, sizeof *w->keys, u64_cmp);
	w->npromoted = (uint32_t)(nc < QN_SHARD_PROMOTED_MAX ? nc : QN_SHARD_PROMOTED_MAX);
	for (uint32_t i = 0; i < w->vocab; i++)
		w->enc[i] = i + w->npromoted;
	for (uint32_t r = 0; r < w->npromoted; r++) {
		w->promoted[r] = (uint32_t)w->keys[r];
		w->enc[w->promoted[r]] = r;
	}
	w->have_ranks = 1;
}

/*
 * Prefix varints: the count of low one bits of the first byte is the
 * length less one (x0: 1 byte, 7 bits; x01: 2 bytes, 14 bits; x011: 3
 * bytes, 21 bits; x0111: 4 bytes, 28 bits), the value follows little-endian.
 * Unlike LEB128 the length is known from the first byte, so decoding does
 * not test every byte.
 */
static size_t put_varints(unsigned char *o, const uint32_t *enc, const uint32_t *t, size_t n)
{
	unsigned char *p = o;

	for (size_t i = 0; i < n; i++) {
		uint32_t v = enc[t[i]];
		if (v < 1u << 7) {
			*p++ = (unsigned char)(v << 1);
		} else if (v < 1u << 14) {
			set16(p, (uint16_t)(v << 2 | 1));
			p += 2;
		} else if (v < 1u << 21) {
			uint32_t x = v << 3 | 3;
			p[0] = (unsigned char)x;
			set16(p + 1, (uint16_t)(x >> 8));
			p += 3;
		} else {
			set32(p, v << 4 | 7);
			p += 4;
		}
	}
	return (size_t)(p - o);
}

/* Compresses the pending tokens into the next block. */
static int flush_block(struct qn_shard_writer *w, struct qn_err *e)
{
	unsigned char *ent;

	if (!w->have_ranks)
		build_ranks(w, w->pending, w->npending);
	size_t vlen = LANE_HEAD;
	for (int l = 0; l < LANES; l++) {
		size_t a = lane_start(w->npending, l), z = lane_start(w->npending, l + 1);
		size_t k = put_varints(w->vbuf + vlen, w->enc, w->pending + a, z - a);
		if (l < LANES - 1)
			set32(w->vbuf + 4 * l, (uint32_t)k);
		vlen += k;
	}
	size_t bound = ZSTD_compressBound(vlen);
	if (vec_room(&w->data, bound) < 0 || vec_room(&w->blocks, BLOCK_ENT) < 0)
		return qn_errf(e, "%s: out of memory for shard data", w->dir);
	size_t c =
	    ZSTD_compressCCtx(w->cc, w->data.p + w->data.len, bound, w->vbuf, vlen, w->level);
	if (ZSTD_isError(c))
		return qn_errf(e, "%s: zstd: %s", w->dir, ZSTD_getErrorName(c));
	ent = w->blocks.p + w->blocks.len;
	set64(ent + B_RAW, w->nblocks * w->B);
	set64(ent + B_OFF, QN_SHARD_HEADER + (uint64_t)w->data.len);
	set32(ent + B_SIZE, (uint32_t)c);
	set32(ent + B_COUNT, (uint32_t)w->npending);
	set64(ent + B_HASH, qn_xxh3_64(w->data.p + w->data.len, c, 0));
	w->blocks.len += BLOCK_ENT;
	w->data.len += c;
	w->nblocks++;
	w->npending = 0;
	return 0;
}

/* Bytes and checksum going out to a shard file. */
struct out {
	struct qn_wr *wr;
	XXH3_state_t *sum;
	struct qn_err *e;
	int failed;
};

static void put(struct out *o, const void *p, size_t n, int hashed)
{
	if (o->failed || !n)
		return;
	if (hashed)
		XXH3_64bits_update(o->sum, p, n);
	if (qn_wr_write(o->wr, p, n, o->e) < 0)
		o->failed = 1;
}

/* Writes the shard built so far to its file and starts the next one. */
/*
 * The document rows as byte planes, zstd-compressed into one frame (its
 * size in *n); NULL when out of memory or zstd fails.
 */
static unsigned char *pack_rows(const struct qn_shard_writer *w, size_t *n, struct qn_err *e)
{
	size_t rows = (size_t)w->ndocs, len = DOC_ROW * rows, bound = ZSTD_compressBound(len);
	unsigned char *planes = malloc(len ? len : 1), *z = malloc(bound);

	if (!planes || !z) {
		free(planes);
		free(z);
		qn_errf(e, "%s: out of memory for the document index", w->dir);
		return NULL;
	}
	for (size_t j = 0; j < DOC_ROW; j++)
		for (size_t r = 0; r < rows; r++)
			planes[j * rows + r] = w->docs.p[r * DOC_ROW + j];
	*n = ZSTD_compressCCtx(w->cc, z, bound, planes, len, w->level);
	free(planes);
	if (ZSTD_isError(*n)) {
		qn_errf(e, "%s: zstd: %s", w->dir, ZSTD_getErrorName(*n));
		free(z);
		return NULL;
	}
	return z;
}

static int write_shard(struct qn_shard_writer *w, struct qn_err *e)
{
	static const unsigned char zero[8];
	unsigned char h[QN_SHARD_HEADER] = {0}, tail[8], ranks[4 * QN_SHARD_PROMOTED_MAX];
	struct out o = {.e = e};
	struct qn_wr_info info;
	struct file_rec *f;
	char name[24], *path;
	unsigned char *rows = NULL;
	size_t rows_len = 0;

	if (w->npending && flush_block(w, e) < 0)
		return -1;
	if (w->nfiles == w->fcap) {
		size_t c = w->fcap ? 2 * w->fcap : 16;
		f = realloc(w->files, c * sizeof *f);
		if (!f)
			return qn_errf(e, "%s: out of memory", w->dir);
		w->files = f;
		w->fcap = c;
	}
	if (w->ndocs && !(rows = pack_rows(w, &rows_len, e)))
		return -1;
	uint64_t data_end = QN_SHARD_HEADER + (uint64_t)w->data.len;
	uint64_t off_blocks = pad8(data_end);
	uint64_t off_ids = off_blocks + BLOCK_ENT * w->nblocks;
	uint64_t off_docs = off_ids + ID_ENT * w->ndocs;
	uint64_t off_spans = off_docs + rows_len;
	uint64_t off_ranks = off_spans + SPAN_ENT * w->nspans;
	size_t rlen = 4 * (size_t)w->npromoted;
	uint64_t off_trailer = off_ranks + rlen;

	memcpy(h, QN_SHARD_MAGIC, 8);
	set32(h + H_VERSION, QN_SHARD_VERSION);
	set32(h + H_CODING, CODING_RANK_VARINT);
	set32(h + H_WIDTH, w->width);
	set32(h + H_VOCAB, w->vocab);
	set32(h + H_BLOCK, w->B);
	set32(h + H_SPLIT, (uint32_t)w->split);
	set32(h + H_INDEX, w->index);
	set32(h + H_PROMOTED, w->npromoted);
	set64(h + H_TOKENS, w->tokens);
	set64(h + H_DOCS, w->ndocs);
	set64(h + H_BLOCKS, w->nblocks);
	set64(h + H_SPANS, w->nspans);
	set64(h + H_OFF_DATA, QN_SHARD_HEADER);
	set64(h + H_OFF_BLOCKS, off_blocks);
	set64(h + H_OFF_IDS, off_ids);
	set64(h + H_OFF_DOCS, off_docs);
	set64(h + H_OFF_SPANS, off_spans);
	set64(h + H_OFF_RANKS, off_ranks);
	set64(h + H_OFF_TRAILER, off_trailer);
	memcpy(h + H_FP, w->fp, 32);
	for (uint32_t i = 0; i < w->npromoted; i++)
		set32(ranks + 4 * i, w->promoted[i]);

	file_name(name, w->split, w->index);
	if (!(path = path_join(w->dir, name))) {
		free(rows);
		return qn_errf(e, "%s: out of memory", w->dir);
	}
	if (!(o.sum = XXH3_createState()) || XXH3_64bits_reset(o.sum) == XXH_ERROR) {
		XXH3_freeState(o.sum);
		free(path);
		free(rows);
		return qn_errf(e, "%s: out of memory", w->dir);
	}
	if (!(o.wr = qn_wr_open(path, QN_WR_PLAIN, e))) {
		XXH3_freeState(o.sum);
		free(path);
		free(rows);
		return -1;
	}
	free(path);
	/* The checksum covers the header and the tables, not the blocks. */
	put(&o, h, sizeof h, 1);
	put(&o, w->data.p, w->data.len, 0);
	put(&o, zero, (size_t)(off_blocks - data_end), 0);
	put(&o, w->blocks.p, w->blocks.len, 1);
	put(&o, w->ids.p, w->ids.len, 1);
	put(&o, rows, rows_len, 1);
	put(&o, w->spans.p, w->spans.len, 1);
	put(&o, ranks, rlen, 1);
	free(rows);
	set64(tail, XXH3_64bits_digest(o.sum));
	XXH3_freeState(o.sum);
	put(&o, tail, 8, 0);
	if (o.failed) {
		qn_wr_abort(o.wr);
		return -1;
	}
	if (qn_wr_commit(o.wr, &info, e) < 0)
		return -1;

	f = &w->files[w->nfiles++];
	memcpy(f->name, name, sizeof name);
	f->index = w->index;
	f->docs = w->ndocs;
	f->tokens = w->tokens;
	f->bytes = info.bytes;
	memcpy(f->sha256, info.sha256, sizeof f->sha256);

	w->index++;
	w->data.len = w->blocks.len = w->docs.len = w->ids.len = w->spans.len = 0;
	w->nblocks = w->ndocs = w->nspans = w->tokens = 0;
	w->have_ranks = 0;
	w->npromoted = 0;
	return 0;
}

/* Removes dir/.<split>-NNNNN.qsh.tmp* left by a writer that crashed. */
static void remove_stale_tmp(const char *dir, int split)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char prefix[16];
	size_t n = (size_t)snprintf(prefix, sizeof prefix, ".%s-", split_names[split]);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL)
		if (!strncmp(de->d_name, prefix, n) && strstr(de->d_name, ".qsh.tmp"))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

void qn_shard_writer_free(struct qn_shard_writer *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->cc);
	free(w->dir);
	free(w->pending);
	free(w->data.p);
	free(w->blocks.p);
	free(w->docs.p);
	free(w->ids.p);
	free(w->spans.p);
	free(w->enc);
	free(w->count);
	free(w->distinct);
	free(w->keys);
	free(w->vbuf);
	free(w->norm);
	free(w->files);
	free(w->tasks);
	free(w);
}

struct qn_shard_writer *qn_shard_writer_open(const char *dir, int split,
					     const struct qn_shard_opts *o, struct qn_err *e)
{
	struct qn_shard_writer *w;
	char *mpath;

	if (split != QN_SHARD_TRAIN && split != QN_SHARD_VAL) {
		qn_errf(e, "%s: unknown split %d", dir, split);
		return NULL;
	}
	if (unhex32(o->fingerprint, (unsigned char[32]){0}) < 0) {
		qn_errf(e, "%s: tokenizer fingerprint '%s' is not 64 hex digits", dir,
			o->fingerprint ? o->fingerprint : "");
		return NULL;
	}
	if (o->vocab_size < 1 || o->vocab_size > QN_SHARD_VOCAB_MAX) {
		qn_errf(e, "%s: vocabulary size %" PRIu32 ", want 1 to %u", dir, o->vocab_size,
			QN_SHARD_VOCAB_MAX);
		return NULL;
	}
	unsigned width = o->width ? o->width : o->vocab_size <= 65536 ? 16 : 32;
	if ((width != 16 && width != 32) || (width == 16 && o->vocab_size > 65536)) {
		qn_errf(e, "%s: token width %u cannot hold a vocabulary of %" PRIu32, dir, width,
			o->vocab_size);
		return NULL;
	}
	uint32_t B = o->block_tokens ? o->block_tokens : QN_SHARD_BLOCK_DEFAULT;
	if (B > QN_SHARD_BLOCK_MAX) {
		qn_errf(e, "%s: %" PRIu32 " tokens a block, at most %u", dir, B,
			QN_SHARD_BLOCK_MAX);
		return NULL;
	}
	int level = o->level ? o->level : QN_SHARD_LEVEL_DEFAULT;
	if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
		qn_errf(e, "%s: zstd level %d, want %d to %d", dir, level, ZSTD_minCLevel(),
			ZSTD_maxCLevel());
		return NULL;
	}
	uint64_t max_bytes = o->max_bytes ? o->max_bytes : QN_SHARD_BYTES_DEFAULT;
	if (max_bytes < QN_SHARD_BYTES_MIN) {
		qn_errf(e, "%s: shard size %" PRIu64 " bytes, at least %u", dir, max_bytes,
			QN_SHARD_BYTES_MIN);
		return NULL;
	}

	if (!(w = calloc(1, sizeof *w)) || !(w->dir = strdup(dir)) ||
	    !(w->cc = ZSTD_createCCtx()) || !(w->pending = malloc(B * sizeof *w->pending)) ||
	    !(w->enc = malloc(o->vocab_size * sizeof *w->enc)) ||
	    !(w->count = calloc(o->vocab_size, sizeof *w->count)) ||
	    !(w->distinct = malloc(B * sizeof *w->distinct)) ||
	    !(w->keys = malloc(B * sizeof *w->keys)) ||
	    !(w->vbuf = malloc((size_t)PAYLOAD_MAX(B)))) {
		qn_errf(e, "%s: out of memory", dir);
		qn_shard_writer_free(w);
		return NULL;
	}
	w->split = split;
	w->width = width;
	w->vocab = o->vocab_size;
	w->B = B;
	w->level = level;
	w->max_bytes = max_bytes;
	unhex32(o->fingerprint, w->fp);
	hex32(w->fp, w->fphex);
	w->max_label = -1;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		qn_errno(e, errno, "cannot create '%s'", dir);
		qn_shard_writer_free(w);
		return NULL;
	}
	/* From here until the commit, the directory has no manifest. */
	if (!(mpath = path_join(dir, QN_SHARD_MANIFEST))) {
		qn_errf(e, "%s: out of memory", dir);
		qn_shard_writer_free(w);
		return NULL;
	}
	if (unlink(mpath) < 0 && errno != ENOENT) {
		qn_errno(e, errno, "cannot remove '%s'", mpath);
		free(mpath);
		qn_shard_writer_free(w);
		return NULL;
	}
	free(mpath);
	remove_stale_tmp(dir, split);
	return w;
}

/* Checks a document before anything is added. */
static int check_doc(const struct qn_shard_writer *w, const struct qn_shard_doc *d,
		     struct qn_err *e)
{
	if (d->n > QN_SHARD_DOC_MAX)
		return qn_errf(e, "document of %zu tokens, at most %u", d->n, QN_SHARD_DOC_MAX);
	if (d->n && !d->ids)
		return qn_errf(e, "document of %zu tokens without ids", d->n);
	for (size_t i = 0; i < d->n; i++)
		if (d->ids[i] >= w->vocab)
			return qn_errf(
			    e, "token %zu is %" PRIu32 ", not below the vocabulary size %" PRIu32,
			    i, d->ids[i], w->vocab);
	if (d->label < -1)
		return qn_errf(e, "label %" PRId32 ", want -1 (none) or an index", d->label);
	if (d->masked && d->nspans && !d->spans)
		return qn_errf(e, "%zu mask spans without an array", d->nspans);
	for (size_t i = 0; d->masked && i < d->nspans; i++)
		if (d->spans[i].start > d->spans[i].end || d->spans[i].end > d->n)
			return qn_errf(e,
				       "mask span %zu [%" PRIu32 ", %" PRIu32
				       ") is not within the document's %zu tokens",
				       i, d->spans[i].start, d->spans[i].end, d->n);
	return 0;
}

static int span_cmp(const void *a, const void *b)
{
	const struct qn_shard_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The document's mask in canonical form at w->norm + at: sorted, merged,
 * non-empty; *masked cleared when it covers every token. The count.
 */
static size_t normalize(struct qn_shard_writer *w, size_t at, const struct qn_shard_doc *d,
			int *masked)
{
	struct qn_shard_span *s = w->norm + at;
	size_t m = 0;

	*masked = d->masked != 0;
	if (!*masked)
		return 0;
	for (size_t i = 0; i < d->nspans; i++)
		if (d->spans[i].start < d->spans[i].end)
			s[m++] = d->spans[i];
	qsort(s, m, sizeof *s, span_cmp);
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		if (k && s[i].start <= s[k - 1].end) {
			if (s[i].end > s[k - 1].end)
				s[k - 1].end = s[i].end;
		} else {
			s[k++] = s[i];
		}
	}
	if (d->n == 0 || (k == 1 && s[0].start == 0 && s[0].end == d->n)) {
		*masked = 0;
		return 0;
	}
	return k;
}

static int norm_room(struct qn_shard_writer *w, size_t n)
{
	if (n <= w->normcap)
		return 0;
	struct qn_shard_span *p = realloc(w->norm, n * sizeof *p);
	if (!p)
		return -1;
	w->norm = p;
	w->normcap = n;
	return 0;
}

/* Whether k more documents of n tokens and m spans in all surely fit. */
static int fits(const struct qn_shard_writer *w, uint64_t n, uint64_t m, uint64_t k)
{
	uint64_t t = w->npending + n;
	uint64_t worst = (t / w->B) * block_bound(w->B) + (t % w->B ? block_bound(t % w->B) : 0);
	uint64_t blocks = w->nblocks + (t + w->B - 1) / w->B;
	/* The rank table holds ids seen twice in the first block. */
	uint64_t ranks = w->have_ranks ? w->npromoted : QN_SHARD_PROMOTED_MAX;
	if (!w->have_ranks && ranks > (t < w->B ? t : w->B) / 2)
		ranks = (t < w->B ? t : w->B) / 2;
	uint64_t docs = w->ndocs + k;
	uint64_t size = QN_SHARD_HEADER + w->data.len + worst + 7 + BLOCK_ENT * blocks +
			ID_ENT * docs + ZSTD_COMPRESSBOUND(DOC_ROW * docs) +
			SPAN_ENT * (w->nspans + m) + 4 * ranks + 8;

	return size <= w->max_bytes;
}

/* Appends one checked document with its canonical spans. */
static int append(struct qn_shard_writer *w, const struct qn_shard_doc *d,
		  const struct qn_shard_span *s, size_t m, int masked, int role, uint32_t pair,
		  struct qn_err *e)
{
	unsigned char *p;
	uint16_t flags = (uint16_t)((w->split == QN_SHARD_VAL ? F_VAL : 0) |
				    (unsigned)role << F_ROLE_SHIFT | (masked ? F_MASKED : 0));

	if (vec_room(&w->docs, DOC_ROW) < 0 || vec_room(&w->ids, ID_ENT) < 0 ||
	    vec_room(&w->spans, SPAN_ENT * m) < 0)
		return qn_errf(e, "%s: out of memory for the document index", w->dir);
	if ((size_t)d->task >= w->ntasks) {
		struct task_count *t = realloc(w->tasks, ((size_t)d->task + 1) * sizeof *t);
		if (!t)
			return qn_errf(e, "%s: out of memory", w->dir);
		memset(t + w->ntasks, 0, ((size_t)d->task + 1 - w->ntasks) * sizeof *t);
		w->tasks = t;
		w->ntasks = (size_t)d->task + 1;
	}
	p = w->docs.p + w->docs.len;
	set64(p + D_OFF, w->tokens);
	set64(p + D_SPAN, w->nspans);
	set32(p + D_COUNT, (uint32_t)d->n);
	set32(p + D_NSPANS, (uint32_t)m);
	set32(p + D_LABEL, (uint32_t)d->label);
	set32(p + D_PAIR, pair);
	set16(p + D_TASK, d->task);
	set16(p + D_FLAGS, flags);
	set32(p + D_RESERVED, 0);
	w->docs.len += DOC_ROW;
	set64(w->ids.p + w->ids.len, d->id_hash);
	w->ids.len += ID_ENT;
	for (size_t i = 0; i < m; i++) {
		set32(w->spans.p + w->spans.len, s[i].start);
		set32(w->spans.p + w->spans.len + 4, s[i].end);
		w->spans.len += SPAN_ENT;
	}
	w->ndocs++;
	w->nspans += m;
	w->tokens += d->n;
	w->total_docs++;
	w->total_tokens += d->n;
	w->tasks[d->task].docs++;
	w->tasks[d->task].tokens += d->n;
	if (d->label > w->max_label)
		w->max_label = d->label;
	for (size_t i = 0; i < d->n;) {
		size_t c = w->B - w->npending;
		if (c > d->n - i)
			c = d->n - i;
		memcpy(w->pending + w->npending, d->ids + i, c * sizeof *d->ids);
		w->npending += c;
		i += c;
		if (w->npending == w->B && flush_block(w, e) < 0)
			return -1;
	}
	return 0;
}

static int writer_ready(struct qn_shard_writer *w, struct qn_err *e)
{
	if (w->failed)
		return qn_errf(e, "%s: the %s writer failed earlier", w->dir,
			       split_names[w->split]);
	if (w->closed)
		return qn_errf(e, "%s: the %s writer is closed", w->dir, split_names[w->split]);
	return 0;
}

/* Rolls to a new file when k documents (n tokens, m spans) do not fit. */
static int make_room(struct qn_shard_writer *w, uint64_t n, uint64_t m, uint64_t k,
		     struct qn_err *e)
{
	if (w->ndocs && !fits(w, n, m, k) && write_shard(w, e) < 0) {
		w->failed = 1;
		return -1;
	}
	if (w->ndocs == 0 && w->index >= QN_SHARD_FILES_MAX) {
		w->failed = 1;
		return qn_errf(e, "%s: more than %d %s shard files; use a larger shard size",
			       w->dir, QN_SHARD_FILES_MAX, split_names[w->split]);
	}
	return 0;
}

int qn_shard_writer_add(struct qn_shard_writer *w, const struct qn_shard_doc *d, struct qn_err *e)
{
	int masked;

	if (writer_ready(w, e) < 0 || check_doc(w, d, e) < 0)
		return -1;
	if (norm_room(w, d->masked ? d->nspans : 0) < 0)
		return qn_errf(e, "%s: out of memory", w->dir);
	size_t m = normalize(w, 0, d, &masked);
	if (make_room(w, d->n, m, 1, e) < 0)
		return -1;
	if (append(w, d, w->norm, m, masked, QN_SHARD_SINGLE, NO_PAIR, e) < 0) {
		w->failed = 1;
		return -1;
	}
	return 0;
}

int qn_shard_writer_add_pair(struct qn_shard_writer *w, const struct qn_shard_doc *chosen,
			     const struct qn_shard_doc *rejected, struct qn_err *e)
{
	int mc, mr;

	if (writer_ready(w, e) < 0)
		return -1;
	if (check_doc(w, chosen, e) < 0) {
		qn_err_prefix(e, "chosen");
		return -1;
	}
	if (check_doc(w, rejected, e) < 0) {
		qn_err_prefix(e, "rejected");
		return -1;
	}
	size_t a = chosen->masked ? chosen->nspans : 0, b = rejected->masked ? rejected->nspans : 0;
	if (norm_room(w, a + b) < 0)
		return qn_errf(e, "%s: out of memory", w->dir);
	size_t m1 = normalize(w, 0, chosen, &mc);
	size_t m2 = normalize(w, a, rejected, &mr);
	if (make_room(w, (uint64_t)chosen->n + rejected->n, m1 + m2, 2, e) < 0)
		return -1;
	uint32_t k = (uint32_t)w->ndocs;
	if (w->ndocs + 2 > NO_PAIR) {
		w->failed = 1;
		return qn_errf(e, "%s: too many documents in one shard", w->dir);
	}
	if (append(w, chosen, w->norm, m1, mc, QN_SHARD_CHOSEN, k + 1, e) < 0 ||
	    append(w, rejected, w->norm + a, m2, mr, QN_SHARD_REJECTED, k, e) < 0) {
		w->failed = 1;
		return -1;
	}
	return 0;
}

int qn_shard_writer_close(struct qn_shard_writer *w, struct qn_err *e)
{
	if (w->failed)
		return writer_ready(w, e);
	if (w->closed)
		return 0;
	if (w->ndocs && write_shard(w, e) < 0) {
		w->failed = 1;
		return -1;
	}
	w->closed = 1;
	return 0;
}

uint64_t qn_shard_writer_docs(const struct qn_shard_writer *w)
{
	return w->total_docs;
}

uint64_t qn_shard_writer_tokens(const struct qn_shard_writer *w)
{
	return w->total_tokens;
}

/* ---- the manifest ---- */

static int is_shard_name(const char *s, int *split, uint32_t *index)
{
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		size_t n = strlen(split_names[sp]);
		if (strncmp(s, split_names[sp], n) || s[n] != '-')
			continue;
		const char *d = s + n + 1;
		uint32_t v = 0;
		for (int i = 0; i < 5; i++) {
			if (d[i] < '0' || d[i] > '9')
				return 0;
			v = v * 10 + (uint32_t)(d[i] - '0');
		}
		if (strcmp(d + 5, ".qsh"))
			return 0;
		*split = sp;
		*index = v;
		return 1;
	}
	return 0;
}

/* Removes shard files of an earlier run that the new manifest does not name. */
static void remove_stale_shards(const char *dir, struct qn_shard_writer *const *ws, size_t nw)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		int split;
		uint32_t index;
		if (!is_shard_name(de->d_name, &split, &index))
			continue;
		int named = 0;
		for (size_t i = 0; i < nw; i++)
			if (ws[i]->split == split && index < ws[i]->nfiles)
				named = 1;
		if (!named)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

static json_t *counts_json(uint64_t docs, uint64_t tokens)
{
	return json_pack("{s:I,s:I}", "documents", (json_int_t)docs, "tokens", (json_int_t)tokens);
}

int qn_shard_dir_commit(const char *dir, struct qn_shard_writer *const *ws, size_t nw,
			const struct qn_shard_meta *m, struct qn_err *e)
{
	static const char *const default_task[] = {"default"};
	const struct qn_shard_writer *by_split[QN_SHARD_NSPLITS] = {0};
	const char *const *tasks = m->tasks;
	size_t ntasks = m->ntasks;
	char *mpath = NULL, *text = NULL;
	json_t *root = NULL, *jt, *jl, *jsp, *jsh, *jspecial;
	int rc = -1;

	if (nw < 1 || nw > QN_SHARD_NSPLITS)
		return qn_errf(e, "%s: commit wants one writer a split, got %zu", dir, nw);
	if (!tasks || !ntasks) {
		tasks = default_task;
		ntasks = 1;
	}
	for (size_t i = 0; i < nw; i++) {
		const struct qn_shard_writer *w = ws[i], *w0 = ws[0];
		if (strcmp(w->dir, dir))
			return qn_errf(e, "%s: a writer of '%s' cannot be committed here", dir,
				       w->dir);
		if (by_split[w->split])
			return qn_errf(e, "%s: two %s writers", dir, split_names[w->split]);
		by_split[w->split] = w;
		if (memcmp(w->fp, w0->fp, 32) || w->vocab != w0->vocab || w->width != w0->width ||
		    w->B != w0->B || w->level != w0->level)
			return qn_errf(e, "%s: the writers' tokenizer or options differ", dir);
	}
	for (size_t i = 0; i < nw; i++) {
		const struct qn_shard_writer *w = ws[i];
		if (qn_shard_writer_close(ws[i], e) < 0)
			return -1;
		if (w->ntasks > ntasks)
			return qn_errf(e, "%s: task id %zu has no name (%zu named)", dir,
				       w->ntasks - 1, ntasks);
		if (w->max_label >= 0 && (size_t)w->max_label >= m->nlabels)
			return qn_errf(e, "%s: label id %" PRId32 " has no name (%zu named)", dir,
				       w->max_label, m->nlabels);
	}
	const struct qn_shard_writer *w0 = ws[0];
	if (ntasks > 65536)
		return qn_errf(e, "%s: %zu tasks, at most 65536", dir, ntasks);
	for (size_t i = 0; i < ntasks; i++) {
		if (!tasks[i])
			return qn_errf(e, "%s: task %zu has no name", dir, i);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(tasks[i], tasks[j]))
				return qn_errf(e, "%s: task name '%s' twice", dir, tasks[i]);
	}
	for (size_t i = 0; i < m->nlabels; i++)
		if (!m->labels[i])
			return qn_errf(e, "%s: label %zu has no name", dir, i);
	if (m->eot < -1 || m->eot >= (int64_t)w0->vocab)
		return qn_errf(e, "%s: end-of-text id %" PRId64 " is not in the vocabulary", dir,
			       m->eot);

	if (!(root = json_object()) || !(jt = json_array()) || !(jl = json_array()) ||
	    !(jsp = json_object()) || !(jsh = json_array()) || !(jspecial = json_object()))
		goto nomem;
	json_object_set_new(root, "format", json_string(FORMAT_NAME));
	json_object_set_new(root, "version", json_integer(QN_SHARD_VERSION));
	json_object_set_new(root, "fingerprint", json_string(w0->fphex));
	json_object_set_new(root, "vocab_size", json_integer(w0->vocab));
	json_object_set_new(root, "token_width", json_integer(w0->width));
	json_object_set_new(root, "block_tokens", json_integer(w0->B));
	json_object_set_new(root, "zstd_level", json_integer(w0->level));
	json_object_set_new(root, "eot", m->eot >= 0 ? json_integer(m->eot) : json_null());
	for (size_t i = 0; i < m->nspecials; i++) {
		const struct qn_shard_special *s = &m->specials[i];
		if (!s->name || s->id >= w0->vocab) {
			qn_errf(e, "%s: special token %zu is not named or not in the vocabulary",
				dir, i);
			goto out;
		}
		json_object_set_new(jspecial, s->name, json_integer(s->id));
	}
	json_object_set_new(root, "special_tokens", jspecial);
	for (size_t i = 0; i < ntasks; i++)
		json_array_append_new(jt, json_string(tasks[i]));
	json_object_set_new(root, "tasks", jt);
	for (size_t i = 0; i < m->nlabels; i++)
		json_array_append_new(jl, json_string(m->labels[i]));
	json_object_set_new(root, "labels", jl);
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		const struct qn_shard_writer *w = by_split[sp];
		json_t *s = counts_json(w ? w->total_docs : 0, w ? w->total_tokens : 0);
		json_t *per = json_object();
		if (!s || !per) {
			json_decref(s);
			json_decref(per);
			goto nomem;
		}
		json_object_set_new(s, "files", json_integer(w ? (json_int_t)w->nfiles : 0));
		for (size_t t = 0; w && t < w->ntasks; t++)
			if (w->tasks[t].docs)
				json_object_set_new(
				    per, tasks[t],
				    counts_json(w->tasks[t].docs, w->tasks[t].tokens));
		json_object_set_new(s, "tasks", per);
		json_object_set_new(jsp, split_names[sp], s);
	}
	json_object_set_new(root, "splits", jsp);
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		const struct qn_shard_writer *w = by_split[sp];
		for (size_t i = 0; w && i < w->nfiles; i++) {
			const struct file_rec *f = &w->files[i];
			json_t *j =
			    json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s}", "file", f->name, "split",
				      split_names[sp], "index", (json_int_t)f->index, "documents",
				      (json_int_t)f->docs, "tokens", (json_int_t)f->tokens, "bytes",
				      (json_int_t)f->bytes, "sha256", f->sha256);
			if (!j || json_array_append_new(jsh, j) < 0)
				goto nomem;
		}
	}
	json_object_set_new(root, "shards", jsh);

	if (!(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) ||
	    !(mpath = path_join(dir, QN_SHARD_MANIFEST)))
		goto nomem;
	size_t len = strlen(text);
	char *t2 = realloc(text, len + 2);
	if (!t2)
		goto nomem;
	text = t2;
	text[len++] = '\n';
	text[len] = 0;
	if (qn_write_file_atomic(mpath, text, len, e) < 0)
		goto out;
	remove_stale_shards(dir, ws, nw);
	rc = 0;
	goto out;
nomem:
	qn_errf(e, "%s: out of memory writing the manifest", dir);
out:
	json_decref(root);
	free(text);
	free(mpath);
	return rc;
}

/* ======================================================================
 * Reading one shard file
 * ====================================================================== */

/* The header, checked. */
struct hdr {
	unsigned width;
	uint32_t vocab, B, split, index, P;
	uint64_t T, D, K, S;
	uint64_t off_blocks, off_ids, off_docs, off_spans, off_ranks, off_trailer;
	unsigned char fp[32];
};

struct qn_shard {
	char *name;
	int fd;
	unsigned char *mem; /* the image, for qn_shard_parse_mem */
	uint64_t len;
	struct hdr h;
	struct qn_shard_info info;
	unsigned char hbytes[QN_SHARD_HEADER];
	unsigned char *tab; /* [off_blocks, len) */
	const unsigned char *blk, *ids;
	unsigned char *docs;			  /* DOC_ROW bytes a document, untransposed */
	struct qn_shard_span *spans;		  /* host order */
	uint32_t promoted[QN_SHARD_PROMOTED_MAX]; /* rank -> id; zeros past P */
	ZSTD_DCtx *dc;
	unsigned char *cbuf;
	size_t ccap;
	unsigned char *vbuf; /* VARINT_MAX * B + 8 */
	uint32_t *blockbuf;
	uint64_t cached; /* block in blockbuf; UINT64_MAX: none */
	uint32_t *docbuf;
	size_t doccap;
	uint32_t doc_max;
};

static int read_at(struct qn_shard *s, uint64_t off, void *buf, size_t n, struct qn_err *e)
{
	if (off > s->len || n > s->len - off)
		return bad(e, s->name, off, "cannot read %zu bytes: past the end of the file", n);
	if (s->mem) {
		memcpy(buf, s->mem + off, n);
		return 0;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(s->fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return qn_errno(e, errno, "cannot read '%s'", s->name);
		if (k == 0)
			return bad(e, s->name, off + got,
				   "the file ended early (it shrank while open?)");
		got += (size_t)k;
	}
	return 0;
}

/*
 * Checks the header h of a file of len bytes, in the order the fields are
 * needed: nothing is sized from a count before it is checked against len.
 */
static int parse_header(const unsigned char *b, uint64_t len, const char *name, struct hdr *h,
			struct qn_err *e)
{
#define BAD(off, ...) return bad(e, name, (uint64_t)(off), __VA_ARGS__)
	if (len < 8 || memcmp(b, QN_SHARD_MAGIC, 8))
		BAD(0, "not a quern token shard (no \"%s\" magic)", QN_SHARD_MAGIC);
	if (len < QN_SHARD_HEADER + 8)
		BAD(len,
		    "truncated: %" PRIu64
		    " bytes, shorter than the %d-byte header and the checksum",
		    len, QN_SHARD_HEADER);
	uint32_t v = get32(b + H_VERSION);
	if (v != QN_SHARD_VERSION)
		BAD(H_VERSION, "version %" PRIu32 ", this quern reads version %d", v,
		    QN_SHARD_VERSION);
	if ((v = get32(b + H_CODING)) != CODING_RANK_VARINT)
		BAD(H_CODING, "unknown token coding %" PRIu32, v);
	h->width = get32(b + H_WIDTH);
	if (h->width != 16 && h->width != 32)
		BAD(H_WIDTH, "token width %u bits, want 16 or 32", h->width);
	h->vocab = get32(b + H_VOCAB);
	if (h->vocab < 1 || h->vocab > QN_SHARD_VOCAB_MAX)
		BAD(H_VOCAB, "vocabulary size %" PRIu32 ", want 1 to %u", h->vocab,
		    QN_SHARD_VOCAB_MAX);
	if (h->width == 16 && h->vocab > 65536)
		BAD(H_VOCAB, "vocabulary size %" PRIu32 " does not fit 16-bit tokens", h->vocab);
	h->B = get32(b + H_BLOCK);
	if (h->B < 1 || h->B > QN_SHARD_BLOCK_MAX)
		BAD(H_BLOCK, "%" PRIu32 " tokens a block, want 1 to %u", h->B, QN_SHARD_BLOCK_MAX);
	h->split = get32(b + H_SPLIT);
	if (h->split >= QN_SHARD_NSPLITS)
		BAD(H_SPLIT, "unknown split %" PRIu32, h->split);
	h->index = get32(b + H_INDEX);
	if (h->index >= QN_SHARD_FILES_MAX)
		BAD(H_INDEX, "shard index %" PRIu32 ", at most %d", h->index,
		    QN_SHARD_FILES_MAX - 1);
	h->P = get32(b + H_PROMOTED);
	if (h->P > QN_SHARD_PROMOTED_MAX || h->P > h->vocab)
		BAD(H_PROMOTED,
		    "%" PRIu32 " rank-table entries, at most %d and the vocabulary size", h->P,
		    QN_SHARD_PROMOTED_MAX);
	h->T = get64(b + H_TOKENS);
	h->D = get64(b + H_DOCS);
	h->K = get64(b + H_BLOCKS);
	h->S = get64(b + H_SPANS);
	if (h->K > len / BLOCK_ENT)
		BAD(H_BLOCKS, "%" PRIu64 " blocks cannot fit in %" PRIu64 " bytes", h->K, len);
	if (h->D > len / ID_ENT)
		BAD(H_DOCS, "%" PRIu64 " documents cannot fit in %" PRIu64 " bytes", h->D, len);
	if (h->S > len / SPAN_ENT)
		BAD(H_SPANS, "%" PRIu64 " mask spans cannot fit in %" PRIu64 " bytes", h->S, len);
	uint64_t need = h->T / h->B + (h->T % h->B != 0);
	if (need != h->K)
		BAD(H_BLOCKS,
		    "%" PRIu64 " tokens in blocks of %" PRIu32 " make %" PRIu64
		    " blocks, the header says %" PRIu64,
		    h->T, h->B, need, h->K);
	if (get64(b + H_OFF_DATA) != QN_SHARD_HEADER)
		BAD(H_OFF_DATA, "blocks start at %" PRIu64 ", not %d", get64(b + H_OFF_DATA),
		    QN_SHARD_HEADER);
	h->off_blocks = get64(b + H_OFF_BLOCKS);
	if (h->off_blocks < QN_SHARD_HEADER || h->off_blocks % 8 || h->off_blocks > len)
		BAD(H_OFF_BLOCKS, "block table at offset %" PRIu64 " of a %" PRIu64 "-byte file%s",
		    h->off_blocks, len, h->off_blocks > len ? " (truncated?)" : "");
	h->off_ids = h->off_blocks + BLOCK_ENT * h->K;
	h->off_docs = h->off_ids + ID_ENT * h->D;
	if (get64(b + H_OFF_IDS) != h->off_ids)
		BAD(H_OFF_IDS, "document ids at %" PRIu64 ", the counts put them at %" PRIu64,
		    get64(b + H_OFF_IDS), h->off_ids);
	if (get64(b + H_OFF_DOCS) != h->off_docs)
		BAD(H_OFF_DOCS, "document index at %" PRIu64 ", the counts put it at %" PRIu64,
		    get64(b + H_OFF_DOCS), h->off_docs);
	/* The index is compressed: its end is stored, not computed. */
	h->off_spans = get64(b + H_OFF_SPANS);
	if (h->off_spans < h->off_docs || h->off_spans > len ||
	    (h->D == 0) != (h->off_spans == h->off_docs))
		BAD(H_OFF_SPANS, "mask spans at %" PRIu64 ", outside [%" PRIu64 ", %" PRIu64 "]%s",
		    h->off_spans, h->off_docs, len, h->off_spans > len ? " (truncated?)" : "");
	h->off_ranks = h->off_spans + SPAN_ENT * h->S;
	h->off_trailer = h->off_ranks + 4 * (uint64_t)h->P;
	if (get64(b + H_OFF_RANKS) != h->off_ranks)
		BAD(H_OFF_RANKS, "rank table at %" PRIu64 ", the counts put it at %" PRIu64,
		    get64(b + H_OFF_RANKS), h->off_ranks);
	if (get64(b + H_OFF_TRAILER) != h->off_trailer)
		BAD(H_OFF_TRAILER, "checksum at %" PRIu64 ", the counts put it at %" PRIu64,
		    get64(b + H_OFF_TRAILER), h->off_trailer);
	if (h->off_trailer + 8 != len)
		BAD(len < h->off_trailer + 8 ? len : h->off_trailer + 8,
		    "the header makes %" PRIu64 " bytes, the file has %" PRIu64 "%s",
		    h->off_trailer + 8, len, len < h->off_trailer + 8 ? " (truncated?)" : "");
	memcpy(h->fp, b + H_FP, 32);
	return 0;
#undef BAD
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Checks the tables (after the checksum) and points s into them. */
/* Decompresses the document index into rows (DOC_ROW bytes a document). */
static int unpack_rows(struct qn_shard *s, struct qn_err *e)
{
	const struct hdr *h = &s->h;
	const unsigned char *z = s->tab + (h->off_docs - h->off_blocks);
	size_t zlen = (size_t)(h->off_spans - h->off_docs), rows = (size_t)h->D;
	size_t len = DOC_ROW * rows;

	if (!rows)
		return 0;
	size_t fs = ZSTD_findFrameCompressedSize(z, zlen);
	if (ZSTD_isError(fs) || fs != zlen)
		return bad(e, s->name, h->off_docs, "the document index is not one zstd frame");
	unsigned long long cs = ZSTD_getFrameContentSize(z, zlen);
	if (cs != len)
		return bad(e, s->name, h->off_docs,
			   "the document index holds %llu bytes, %" PRIu64 " documents need %zu",
			   cs, h->D, len);
	unsigned char *planes = malloc(len);
	if (!planes || !(s->docs = malloc(len))) {
		free(planes);
		return qn_errf(e, "%s: out of memory for the document index", s->name);
	}
	size_t d = ZSTD_decompressDCtx(s->dc, planes, len, z, zlen);
	if (ZSTD_isError(d) || d != len) {
		free(planes);
		return bad(e, s->name, h->off_docs, "cannot decompress the document index: %s",
			   ZSTD_isError(d) ? ZSTD_getErrorName(d) : "short frame");
	}
	for (size_t j = 0; j < DOC_ROW; j++)
		for (size_t r = 0; r < rows; r++)
			s->docs[r * DOC_ROW + j] = planes[j * rows + r];
	free(planes);
	return 0;
}

static int parse_tables(struct qn_shard *s, struct qn_err *e)
{
	const struct hdr *h = &s->h;
	const char *name = s->name;
	const unsigned char *t = s->tab;
#define BAD(off, ...) return bad(e, name, (uint64_t)(off), __VA_ARGS__)

	s->blk = t;
	s->ids = t + (h->off_ids - h->off_blocks);
	const unsigned char *sp = t + (h->off_spans - h->off_blocks);
	const unsigned char *ranks = t + (h->off_ranks - h->off_blocks);

	/* Blocks: consecutive, each a fixed share of the tokens. */
	uint64_t at = QN_SHARD_HEADER;
	for (uint64_t i = 0; i < h->K; i++) {
		const unsigned char *b = s->blk + BLOCK_ENT * i;
		uint64_t eo = h->off_blocks + BLOCK_ENT * i;
		uint64_t first = i * h->B, want = h->T - first < h->B ? h->T - first : h->B;
		if (get64(b + B_RAW) != first)
			BAD(eo + B_RAW,
			    "block %" PRIu64 " starts at token %" PRIu64 ", not %" PRIu64, i,
			    get64(b + B_RAW), first);
		if (get64(b + B_OFF) != at)
			BAD(eo + B_OFF, "block %" PRIu64 " at offset %" PRIu64 ", not %" PRIu64, i,
			    get64(b + B_OFF), at);
		if (get32(b + B_COUNT) != want)
			BAD(eo + B_COUNT,
			    "block %" PRIu64 " holds %" PRIu32 " tokens, not %" PRIu64, i,
			    get32(b + B_COUNT), want);
		uint32_t size = get32(b + B_SIZE);
		if (size == 0 || size > block_bound(want) || size > h->off_blocks - at)
			BAD(eo + B_SIZE, "block %" PRIu64 " of %" PRIu32 " bytes does not fit", i,
			    size);
		at += size;
	}
	if (pad8(at) != h->off_blocks)
		BAD(h->off_blocks,
		    "the blocks end at %" PRIu64 ", the block table starts at %" PRIu64, at,
		    h->off_blocks);
	if (at < h->off_blocks) {
		unsigned char pad[8];
		if (read_at(s, at, pad, (size_t)(h->off_blocks - at), e) < 0)
			return -1;
		for (uint64_t i = 0; i < h->off_blocks - at; i++)
			if (pad[i])
				BAD(at + i, "padding after the blocks is not zero");
	}

	/* Documents: consecutive token ranges and span lists. */
	if (unpack_rows(s, e) < 0)
		return -1;
	uint64_t tok = 0, nsp = 0, eo = h->off_docs; /* rows have no offset of their own */
	for (uint64_t k = 0; k < h->D; k++) {
		const unsigned char *d = s->docs + DOC_ROW * k;
		uint32_t n = get32(d + D_COUNT), m = get32(d + D_NSPANS), pair = get32(d + D_PAIR);
		unsigned flags = get16(d + D_FLAGS), role = (flags & F_ROLE) >> F_ROLE_SHIFT;
		if (get64(d + D_OFF) != tok)
			BAD(eo, "document %" PRIu64 " starts at token %" PRIu64 ", not %" PRIu64, k,
			    get64(d + D_OFF), tok);
		if (n > h->T - tok)
			BAD(eo,
			    "document %" PRIu64 " (%" PRIu32
			    " tokens) runs past the shard's %" PRIu64,
			    k, n, h->T);
		if (get64(d + D_SPAN) != nsp)
			BAD(eo, "document %" PRIu64 "'s spans start at %" PRIu64 ", not %" PRIu64,
			    k, get64(d + D_SPAN), nsp);
		if (m > h->S - nsp)
			BAD(eo,
			    "document %" PRIu64 "'s %" PRIu32
			    " spans run past the shard's %" PRIu64,
			    k, m, h->S);
		if ((int32_t)get32(d + D_LABEL) < -1)
			BAD(eo, "document %" PRIu64 " has label %" PRId32, k,
			    (int32_t)get32(d + D_LABEL));
		if (flags & ~(F_VAL | F_ROLE | F_MASKED))
			BAD(eo, "document %" PRIu64 " has unknown flags 0x%x", k, flags);
		if ((flags & F_VAL) != (h->split == QN_SHARD_VAL ? F_VAL : 0))
			BAD(eo, "document %" PRIu64 " is marked %s in a %s shard", k,
			    split_names[flags & F_VAL], split_names[h->split]);
		if (role == 3)
			BAD(eo, "document %" PRIu64 " is both chosen and rejected", k);
		if ((role == QN_SHARD_SINGLE) != (pair == NO_PAIR) ||
		    (pair != NO_PAIR && (pair >= h->D || pair == k)))
			BAD(eo, "document %" PRIu64 " has a bad pair link %" PRIu32, k, pair);
		if (get32(d + D_RESERVED))
			BAD(eo, "document %" PRIu64 ": reserved bytes are not zero", k);
		if (!(flags & F_MASKED) && m)
			BAD(eo, "unmasked document %" PRIu64 " has %" PRIu32 " mask spans", k, m);
		if ((flags & F_MASKED) && n == 0)
			BAD(eo, "masked document %" PRIu64 " has no tokens (stored unmasked)", k);
		for (uint32_t j = 0; j < m; j++) {
			const unsigned char *q = sp + SPAN_ENT * (nsp + j);
			uint64_t so = h->off_spans + SPAN_ENT * (nsp + j);
			uint32_t a = get32(q), z = get32(q + 4);
			if (a >= z || z > n)
				BAD(so,
				    "span [%" PRIu32 ", %" PRIu32 ") of document %" PRIu64
				    " is empty or past its %" PRIu32 " tokens",
				    a, z, k, n);
			if (j && a <= get32(q - SPAN_ENT + 4))
				BAD(so, "spans of document %" PRIu64 " are not sorted and merged",
				    k);
			if (m == 1 && a == 0 && z == n)
				BAD(so,
				    "the mask of document %" PRIu64
				    " covers it all (stored unmasked)",
				    k);
		}
		tok += n;
		nsp += m;
	}
	if (tok != h->T)
		BAD(H_TOKENS, "the documents hold %" PRIu64 " tokens, the header says %" PRIu64,
		    tok, h->T);
	if (nsp != h->S)
		BAD(H_SPANS, "the documents have %" PRIu64 " spans, the header says %" PRIu64, nsp,
		    h->S);
	for (uint64_t k = 0; k < h->D; k++) {
		const unsigned char *d = s->docs + DOC_ROW * k;
		uint32_t pair = get32(d + D_PAIR);
		if (pair == NO_PAIR)
			continue;
		const unsigned char *q = s->docs + DOC_ROW * (uint64_t)pair;
		unsigned r1 = (get16(d + D_FLAGS) & F_ROLE) >> F_ROLE_SHIFT;
		unsigned r2 = (get16(q + D_FLAGS) & F_ROLE) >> F_ROLE_SHIFT;
		if (get32(q + D_PAIR) != k || r1 + r2 != QN_SHARD_CHOSEN + QN_SHARD_REJECTED)
			BAD(h->off_docs,
			    "documents %" PRIu64 " and %" PRIu32 " are not a chosen/rejected pair",
			    k, pair);
	}

	/* The rank table: distinct ids of the vocabulary. */
	if (h->P) {
		uint32_t sorted[QN_SHARD_PROMOTED_MAX];
		for (uint32_t i = 0; i < h->P; i++) {
			s->promoted[i] = sorted[i] = get32(ranks + 4 * i);
			if (sorted[i] >= h->vocab)
				BAD(h->off_ranks + 4 * i,
				    "rank table entry %" PRIu32 " is token %" PRIu32
				    ", not below the vocabulary size %" PRIu32,
				    i, sorted[i], h->vocab);
		}
		qsort(sorted, h->P, sizeof *sorted, u32_cmp);
		for (uint32_t i = 1; i < h->P; i++)
			if (sorted[i] == sorted[i - 1])
				BAD(h->off_ranks, "the rank table names token %" PRIu32 " twice",
				    sorted[i]);
	}

	if (h->S) {
		if (!(s->spans = malloc(h->S * sizeof *s->spans)))
			return qn_errf(e, "%s: out of memory", name);
		for (uint64_t i = 0; i < h->S; i++) {
			s->spans[i].start = get32(sp + SPAN_ENT * i);
			s->spans[i].end = get32(sp + SPAN_ENT * i + 4);
		}
	}
	return 0;
#undef BAD
}

static void fill_info(struct qn_shard *s)
{
	struct qn_shard_info *i = &s->info;

	i->width = s->h.width;
	i->vocab_size = s->h.vocab;
	i->block_tokens = s->h.B;
	i->split = (int)s->h.split;
	i->index = s->h.index;
	i->tokens = s->h.T;
	i->docs = s->h.D;
	i->blocks = s->h.K;
	i->spans = s->h.S;
	i->promoted = s->h.P;
	i->bytes = s->len;
	hex32(s->h.fp, i->fingerprint);
}

static int load(struct qn_shard *s, struct qn_err *e)
{
	size_t n = s->len < QN_SHARD_HEADER ? (size_t)s->len : QN_SHARD_HEADER;

	memset(s->hbytes, 0, sizeof s->hbytes);
	if (read_at(s, 0, s->hbytes, n, e) < 0 ||
	    parse_header(s->hbytes, s->len, s->name, &s->h, e) < 0)
		return -1;
	uint64_t tlen = s->len - s->h.off_blocks;
	if (tlen > SIZE_MAX || !(s->tab = malloc((size_t)tlen)))
		return qn_errf(e, "%s: out of memory for %" PRIu64 " bytes of tables", s->name,
			       tlen);
	if (read_at(s, s->h.off_blocks, s->tab, (size_t)tlen, e) < 0)
		return -1;
	XXH3_state_t *st = XXH3_createState();
	if (!st || XXH3_64bits_reset(st) == XXH_ERROR) {
		XXH3_freeState(st);
		return qn_errf(e, "%s: out of memory", s->name);
	}
	XXH3_64bits_update(st, s->hbytes, QN_SHARD_HEADER);
	XXH3_64bits_update(st, s->tab, (size_t)tlen - 8);
	uint64_t want = XXH3_64bits_digest(st), got = get64(s->tab + tlen - 8);
	XXH3_freeState(st);
	if (want != got)
		return bad(e, s->name, s->h.off_trailer,
			   "checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
			   "): the header or tables are corrupt",
			   got, want);
	if (!(s->dc = ZSTD_createDCtx()))
		return qn_errf(e, "%s: out of memory", s->name);
	if (parse_tables(s, e) < 0)
		return -1;
	/*
	 * A lane of c tokens that starts inside the payload reads at most
	 * 5c + 3 bytes from there, whatever its bytes: room for the payload
	 * and for the largest lane's worst case past its end. Calloc: every
	 * byte read is initialized.
	 */
	size_t vcap =
	    (size_t)PAYLOAD_MAX(s->h.B) + (VARINT_MAX + 1) * (size_t)(s->h.B / LANES + 1) + 8;
	if (!(s->vbuf = calloc(vcap, 1)) ||
	    !(s->blockbuf = malloc((size_t)s->h.B * sizeof *s->blockbuf)))
		return qn_errf(e, "%s: out of memory", s->name);
	fill_info(s);
	return 0;
}

static struct qn_shard *shard_new(const char *name)
{
	struct qn_shard *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->fd = -1;
	s->cached = UINT64_MAX;
	s->doc_max = QN_SHARD_DOC_MAX;
	if (!(s->name = strdup(name))) {
		free(s);
		return NULL;
	}
	return s;
}

void qn_shard_close(struct qn_shard *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	ZSTD_freeDCtx(s->dc);
	free(s->name);
	free(s->mem);
	free(s->tab);
	free(s->spans);
	free(s->docs);
	free(s->cbuf);
	free(s->vbuf);
	free(s->blockbuf);
	free(s->docbuf);
	free(s);
}

struct qn_shard *qn_shard_open(const char *path, struct qn_err *e)
{
	struct qn_shard *s = shard_new(path);
	struct stat st;

	if (!s) {
		qn_errf(e, "%s: out of memory", path);
		return NULL;
	}
	if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		qn_errno(e, errno, "cannot open '%s'", path);
		goto fail;
	}
	if (fstat(s->fd, &st) < 0) {
		qn_errno(e, errno, "cannot read '%s'", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		qn_errf(e, "cannot read '%s': not a regular file", path);
		goto fail;
	}
	s->len = (uint64_t)st.st_size;
	if (load(s, e) < 0)
		goto fail;
	return s;
fail:
	qn_shard_close(s);
	return NULL;
}

struct qn_shard *qn_shard_parse_mem(const void *buf, size_t len, const char *name, struct qn_err *e)
{
	struct qn_shard *s = shard_new(name ? name : "shard");

	if (!s || !(s->mem = malloc(len ? len : 1))) {
		qn_errf(e, "%s: out of memory", name ? name : "shard");
		qn_shard_close(s);
		return NULL;
	}
	if (len)
		memcpy(s->mem, buf, len);
	s->len = len;
	if (load(s, e) < 0) {
		qn_shard_close(s);
		return NULL;
	}
	return s;
}

const struct qn_shard_info *qn_shard_info(const struct qn_shard *s)
{
	return &s->info;
}

void qn_shard_set_doc_max(struct qn_shard *s, uint32_t tokens)
{
	s->doc_max = tokens;
}

static uint32_t load32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

/*
 * The prefix varint at p (4 readable bytes there); *len its length. An
 * invalid one (a fifth length bit) gives a value no vocabulary reaches.
 */
static inline uint32_t varint(const unsigned char *p, unsigned *len)
{
	static const uint32_t mask[6] = {0, 0x7f, 0x3fff, 0x1fffff, 0xfffffff, 0};
	uint32_t w = load32(p);
	unsigned n = (unsigned)__builtin_ctz(~w | 0x10) + 1;

	*len = n;
	return (w >> n & mask[n]) | -(uint32_t)(n > VARINT_MAX);
}

/*
 * Decodes a block's payload v[0..len) into its n token ids: rank r < P is
 * promoted[r], any other is the id r - P. v lies in a buffer with room for
 * the farthest a lane can read (see decode_block). 0, or -1 with *why and
 * *at (the token) filled.
 */
static int get_tokens(const unsigned char *v, size_t len, uint32_t *out, uint32_t n,
		      const uint32_t promoted[QN_SHARD_PROMOTED_MAX], uint32_t P, uint32_t vocab,
		      const char **why, uint32_t *at)
{
	const unsigned char *p[LANES], *end[LANES];
	uint32_t *o[LANES], cnt[LANES], lim = P + vocab, over = 0, q = n / LANES;
	size_t off = LANE_HEAD;
	unsigned k;

	*at = 0;
	if (len < LANE_HEAD) {
		*why = "no lane table";
		return -1;
	}
	for (int l = 0; l < LANES; l++) {
		size_t lane = l < LANES - 1 ? load32(v + 4 * l) : len - off;
		cnt[l] = (uint32_t)(lane_start(n, l + 1) - lane_start(n, l));
		if (lane > len - off || lane < cnt[l] || lane > (uint64_t)VARINT_MAX * cnt[l]) {
			*why = "a lane's length does not fit its tokens";
			*at = (uint32_t)lane_start(n, l);
			return -1;
		}
		p[l] = v + off;
		end[l] = v + off + lane;
		o[l] = out + lane_start(n, l);
		off += lane;
	}
#define ONE(l, i)                                                                                  \
	do {                                                                                       \
		uint32_t r_ = varint(p[l], &k);                                                    \
		p[l] += k;                                                                         \
		over |= r_ >= lim;                                                                 \
		uint32_t a_ = promoted[r_ & (QN_SHARD_PROMOTED_MAX - 1)];                          \
		o[l][i] = r_ < P ? a_ : r_ - P;                                                    \
	} while (0)
	for (uint32_t i = 0; i < q; i++) {
		ONE(0, i);
		ONE(1, i);
		ONE(2, i);
		ONE(3, i);
	}
	for (int l = 0; l < LANES; l++)
		for (uint32_t i = q; i < cnt[l]; i++)
			ONE(l, i);
#undef ONE
	for (int l = 0; l < LANES; l++)
		if (p[l] != end[l]) {
			over = 1;
			break;
		}
	if (!over)
		return 0;
	/* Find the culprit for the message. */
	off = LANE_HEAD;
	for (int l = 0; l < LANES; l++) {
		const unsigned char *x = v + off;
		for (uint32_t i = 0; i < cnt[l]; i++) {
			uint32_t r = varint(x, &k);
			x += k;
			if (r >= lim || x > end[l]) {
				*why = r >= lim ? "a rank is past the vocabulary"
						: "a lane runs past its end";
				*at = (uint32_t)lane_start(n, l) + i;
				return -1;
			}
		}
		if (x != end[l]) {
			*why = "a lane has bytes after its tokens";
			*at = (uint32_t)lane_start(n, l + 1);
			return -1;
		}
		off = (size_t)(end[l] - v);
	}
	*why = "bad varints";
	return -1;
}

/* Decompresses and checks block b into out (its count tokens). */
static int decode_block(struct qn_shard *s, uint64_t b, uint32_t *out, struct qn_err *e)
{
	const unsigned char *ent = s->blk + BLOCK_ENT * b;
	uint64_t off = get64(ent + B_OFF);
	uint32_t size = get32(ent + B_SIZE), count = get32(ent + B_COUNT), at = 0;

	if (size > s->ccap) {
		unsigned char *p = realloc(s->cbuf, size);
		if (!p)
			return qn_errf(e, "%s: out of memory", s->name);
		s->cbuf = p;
		s->ccap = size;
	}
	if (read_at(s, off, s->cbuf, size, e) < 0)
		return -1;
	uint64_t h = qn_xxh3_64(s->cbuf, size, 0), want = get64(ent + B_HASH);
	if (h != want)
		return bad(e, s->name, off,
			   "block %" PRIu64 ": checksum mismatch (stored %016" PRIx64
			   ", computed %016" PRIx64 "): the file is corrupt",
			   b, want, h);
	size_t fs = ZSTD_findFrameCompressedSize(s->cbuf, size);
	if (ZSTD_isError(fs) || fs != size)
		return bad(e, s->name, off, "block %" PRIu64 " is not one zstd frame", b);
	unsigned long long cs = ZSTD_getFrameContentSize(s->cbuf, size);
	if (cs == ZSTD_CONTENTSIZE_UNKNOWN || cs == ZSTD_CONTENTSIZE_ERROR ||
	    cs < LANE_HEAD + (unsigned long long)count || cs > PAYLOAD_MAX(count))
		return bad(e, s->name, off,
			   "block %" PRIu64 ": bad content size for %" PRIu32 " tokens", b, count);
	size_t d = ZSTD_decompressDCtx(s->dc, s->vbuf, (size_t)cs, s->cbuf, size);
	if (ZSTD_isError(d) || d != cs)
		return bad(e, s->name, off, "block %" PRIu64 ": cannot decompress: %s", b,
			   ZSTD_isError(d) ? ZSTD_getErrorName(d) : "short frame");
	const char *why;
	if (get_tokens(s->vbuf, (size_t)cs, out, count, s->promoted, s->h.P, s->h.vocab, &why,
		       &at) < 0)
		return bad(e, s->name, off, "block %" PRIu64 ": token %" PRIu32 ": %s", b, at, why);
	return 0;
}

/* Block b in s->blockbuf. */
static int cache_block(struct qn_shard *s, uint64_t b, struct qn_err *e)
{
	if (s->cached == b)
		return 0;
	s->cached = UINT64_MAX;
	if (decode_block(s, b, s->blockbuf, e) < 0)
		return -1;
	s->cached = b;
	return 0;
}

int qn_shard_check_blocks(struct qn_shard *s, struct qn_err *e)
{
	for (uint64_t b = 0; b < s->h.K; b++)
		if (cache_block(s, b, e) < 0)
			return -1;
	return 0;
}

static void doc_fields(const struct qn_shard *s, uint64_t k, struct qn_shard_docview *v,
		       uint64_t *off)
{
	const unsigned char *d = s->docs + DOC_ROW * k;
	unsigned flags = get16(d + D_FLAGS);
	uint32_t pair = get32(d + D_PAIR);
	uint64_t first = get64(d + D_SPAN);

	*off = get64(d + D_OFF);
	v->index = k;
	v->tokens = NULL;
	v->n = get32(d + D_COUNT);
	v->task = get16(d + D_TASK);
	v->label = (int32_t)get32(d + D_LABEL);
	v->id_hash = get64(s->ids + ID_ENT * k);
	v->split = (int)s->h.split;
	v->role = (int)((flags & F_ROLE) >> F_ROLE_SHIFT);
	v->pair = pair == NO_PAIR ? -1 : (int64_t)pair;
	v->masked = (flags & F_MASKED) != 0;
	v->nspans = get32(d + D_NSPANS);
	v->spans = v->nspans ? s->spans + first : NULL;
}

int qn_shard_read(struct qn_shard *s, uint64_t k, struct qn_shard_docview *v, struct qn_err *e)
{
	static const uint32_t none[1];
	uint64_t off, B = s->h.B;

	if (k >= s->h.D)
		return qn_errf(e, "%s: no document %" PRIu64 " (it has %" PRIu64 ")", s->name, k,
			       s->h.D);
	doc_fields(s, k, v, &off);
	if (v->n == 0) {
		v->tokens = none;
		return 0;
	}
	uint64_t b0 = off / B, b1 = (off + v->n - 1) / B;
	if (b0 == b1) {
		if (cache_block(s, b0, e) < 0)
			return -1;
		v->tokens = s->blockbuf + (off - b0 * B);
		return 0;
	}
	if (v->n > s->doc_max)
		return qn_errf(e,
			       "%s: document %" PRIu64 " has %" PRIu32
			       " tokens, more than this reader's maximum of %" PRIu32,
			       s->name, k, v->n, s->doc_max);
	if (v->n > s->doccap) {
		uint32_t *p = realloc(s->docbuf, (size_t)v->n * sizeof *p);
		if (!p)
			return qn_errf(e, "%s: out of memory for document %" PRIu64, s->name, k);
		s->docbuf = p;
		s->doccap = v->n;
	}
	for (uint64_t b = b0; b <= b1; b++) {
		uint64_t lo = b * B, hi = lo + get32(s->blk + BLOCK_ENT * b + B_COUNT);
		uint64_t a = lo > off ? lo : off, z = hi < off + v->n ? hi : off + v->n;
		if (a == lo && z == hi && b != b1 && s->cached != b) {
			/* A block inside the document decodes in place. */
			if (decode_block(s, b, s->docbuf + (lo - off), e) < 0)
				return -1;
			continue;
		}
		if (cache_block(s, b, e) < 0)
			return -1;
		memcpy(s->docbuf + (a - off), s->blockbuf + (a - lo),
		       (size_t)(z - a) * sizeof *s->docbuf);
	}
	v->tokens = s->docbuf;
	return 0;
}

/* ======================================================================
 * Reading a directory
 * ====================================================================== */

struct ent {
	char file[24];
	char *path;
	uint32_t index;
	uint64_t docs, tokens, bytes, first_doc;
	char sha256[65];
};

struct task_tally {
	uint64_t docs, tokens;
};

struct qn_shard_dir {
	char *dir, *mpath;
	struct qn_shard_dir_info info;
	struct ent *ents[QN_SHARD_NSPLITS];
	size_t nents[QN_SHARD_NSPLITS];
	uint64_t docs[QN_SHARD_NSPLITS], tokens[QN_SHARD_NSPLITS];
	struct task_tally *tally[QN_SHARD_NSPLITS]; /* the manifest's, by task id */
	struct qn_shard *cur;
	int cur_split;
	size_t cur_ent;
};

void qn_shard_dir_close(struct qn_shard_dir *d)
{
	if (!d)
		return;
	qn_shard_close(d->cur);
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		for (size_t i = 0; i < d->nents[sp]; i++)
			free(d->ents[sp][i].path);
		free(d->ents[sp]);
		free(d->tally[sp]);
	}
	for (size_t i = 0; i < d->info.ntasks; i++)
		free(d->info.tasks[i]);
	for (size_t i = 0; i < d->info.nlabels; i++)
		free(d->info.labels[i]);
	for (size_t i = 0; i < d->info.nspecials; i++)
		free((char *)d->info.specials[i].name);
	free(d->info.tasks);
	free(d->info.labels);
	free(d->info.specials);
	free(d->dir);
	free(d->mpath);
	free(d);
}

/* Manifest field helpers: "DIR/manifest.json: FIELD: why". */
#define MBAD(...) return qn_errf(e, __VA_ARGS__)

static int get_uint(const char *mp, json_t *o, const char *key, const char *where, uint64_t max,
		    uint64_t *out, struct qn_err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		MBAD("%s: %s%s: want an integer from 0 to %" PRIu64, mp, where, key, max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_hex64(const char *mp, json_t *o, const char *key, const char *where, char out[65],
		     struct qn_err *e)
{
	const char *s = json_string_value(json_object_get(o, key));
	unsigned char b[32];

	if (!s || unhex32(s, b) < 0)
		MBAD("%s: %s%s: want 64 hex digits", mp, where, key);
	hex32(b, out);
	return 0;
}

static int get_names(const char *mp, json_t *root, const char *key, size_t max, char ***out,
		     size_t *n, struct qn_err *e)
{
	json_t *a = json_object_get(root, key), *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) > max)
		MBAD("%s: %s: want an array of at most %zu names", mp, key, max);
	if (!(*out = calloc(json_array_size(a) + 1, sizeof **out)))
		MBAD("%s: out of memory", mp);
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			MBAD("%s: %s[%zu]: want a string", mp, key, i);
		if (!((*out)[i] = strdup(json_string_value(v))))
			MBAD("%s: out of memory", mp);
		*n = i + 1;
	}
	return 0;
}

static int parse_manifest(struct qn_shard_dir *d, json_t *root, struct qn_err *e)
{
	const char *mp = d->mpath;
	struct qn_shard_dir_info *in = &d->info;
	uint64_t v;
	json_t *j;
	size_t i;
	const char *key;

	if (!json_is_object(root))
		MBAD("%s: not a JSON object", mp);
	if (!json_is_string(json_object_get(root, "format")) ||
	    strcmp(json_string_value(json_object_get(root, "format")), FORMAT_NAME))
		MBAD("%s: format: want \"%s\"", mp, FORMAT_NAME);
	if (get_uint(mp, root, "version", "", UINT32_MAX, &v, e) < 0)
		return -1;
	if (v != QN_SHARD_VERSION)
		MBAD("%s: version %" PRIu64 ", this quern reads version %d", mp, v,
		     QN_SHARD_VERSION);
	if (get_hex64(mp, root, "fingerprint", "", in->fingerprint, e) < 0 ||
	    get_uint(mp, root, "vocab_size", "", QN_SHARD_VOCAB_MAX, &v, e) < 0)
		return -1;
	if (v < 1)
		MBAD("%s: vocab_size: want at least 1", mp);
	in->vocab_size = (uint32_t)v;
	if (get_uint(mp, root, "token_width", "", 32, &v, e) < 0)
		return -1;
	if ((v != 16 && v != 32) || (v == 16 && in->vocab_size > 65536))
		MBAD("%s: token_width: %" PRIu64 " cannot hold a vocabulary of %" PRIu32, mp, v,
		     in->vocab_size);
	in->width = (unsigned)v;
	if (get_uint(mp, root, "block_tokens", "", QN_SHARD_BLOCK_MAX, &v, e) < 0)
		return -1;
	if (v < 1)
		MBAD("%s: block_tokens: want at least 1", mp);
	in->block_tokens = (uint32_t)v;
	j = json_object_get(root, "zstd_level");
	if (!json_is_integer(j) || json_integer_value(j) < -1000000 || json_integer_value(j) > 1000)
		MBAD("%s: zstd_level: want an integer", mp);
	in->level = (int)json_integer_value(j);
	j = json_object_get(root, "eot");
	if (json_is_null(j))
		in->eot = -1;
	else if (json_is_integer(j) && json_integer_value(j) >= 0 &&
		 json_integer_value(j) < in->vocab_size)
		in->eot = json_integer_value(j);
	else
		MBAD("%s: eot: want null or a token id below %" PRIu32, mp, in->vocab_size);
	j = json_object_get(root, "special_tokens");
	if (!json_is_object(j))
		MBAD("%s: special_tokens: want an object", mp);
	if (!(in->specials = calloc(json_object_size(j) + 1, sizeof *in->specials)))
		MBAD("%s: out of memory", mp);
	json_t *val;
	json_object_foreach(j, key, val)
	{
		if (!json_is_integer(val) || json_integer_value(val) < 0 ||
		    json_integer_value(val) >= in->vocab_size)
			MBAD("%s: special_tokens.%s: want a token id below %" PRIu32, mp, key,
			     in->vocab_size);
		struct qn_shard_special *s = &in->specials[in->nspecials];
		if (!(s->name = strdup(key)))
			MBAD("%s: out of memory", mp);
		s->id = (uint32_t)json_integer_value(val);
		in->nspecials++;
	}
	if (get_names(mp, root, "tasks", 65536, &in->tasks, &in->ntasks, e) < 0 ||
	    get_names(mp, root, "labels", (size_t)INT32_MAX, &in->labels, &in->nlabels, e) < 0)
		return -1;
	if (in->ntasks < 1)
		MBAD("%s: tasks: want at least one name", mp);

	/* Splits: totals and per-task counts. */
	json_t *splits = json_object_get(root, "splits");
	if (!json_is_object(splits))
		MBAD("%s: splits: want an object", mp);
	uint64_t want_files[QN_SHARD_NSPLITS];
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		char where[64];
		json_t *s = json_object_get(splits, split_names[sp]), *tasks;
		snprintf(where, sizeof where, "splits.%s.", split_names[sp]);
		if (!json_is_object(s))
			MBAD("%s: splits.%s: want an object", mp, split_names[sp]);
		if (get_uint(mp, s, "documents", where, INT64_MAX, &d->docs[sp], e) < 0 ||
		    get_uint(mp, s, "tokens", where, INT64_MAX, &d->tokens[sp], e) < 0 ||
		    get_uint(mp, s, "files", where, QN_SHARD_FILES_MAX, &want_files[sp], e) < 0)
			return -1;
		tasks = json_object_get(s, "tasks");
		if (!json_is_object(tasks))
			MBAD("%s: %stasks: want an object", mp, where);
		if (!(d->tally[sp] = calloc(in->ntasks, sizeof *d->tally[sp])))
			MBAD("%s: out of memory", mp);
		json_object_foreach(tasks, key, val)
		{
			size_t t;
			char w2[320];
			for (t = 0; t < in->ntasks && strcmp(in->tasks[t], key); t++)
				;
			if (t == in->ntasks)
				MBAD("%s: %stasks.%s: not a task the manifest names", mp, where,
				     key);
			snprintf(w2, sizeof w2, "%stasks.%s.", where, key);
			if (get_uint(mp, val, "documents", w2, INT64_MAX, &d->tally[sp][t].docs,
				     e) < 0 ||
			    get_uint(mp, val, "tokens", w2, INT64_MAX, &d->tally[sp][t].tokens, e) <
				0)
				return -1;
		}
		if (want_files[sp] && !(d->ents[sp] = calloc(want_files[sp], sizeof *d->ents[sp])))
			MBAD("%s: out of memory", mp);
	}

	/* Shards: per split, indexes 0, 1, ... in order; names follow. */
	json_t *shards = json_object_get(root, "shards");
	uint64_t sum_docs[QN_SHARD_NSPLITS] = {0}, sum_tok[QN_SHARD_NSPLITS] = {0};
	if (!json_is_array(shards))
		MBAD("%s: shards: want an array", mp);
	json_array_foreach(shards, i, j)
	{
		char where[48], want_name[24];
		const char *sname = json_string_value(json_object_get(j, "split"));
		const char *fname = json_string_value(json_object_get(j, "file"));
		int sp;
		snprintf(where, sizeof where, "shards[%zu].", i);
		if (!json_is_object(j))
			MBAD("%s: shards[%zu]: want an object", mp, i);
		for (sp = 0; sp < QN_SHARD_NSPLITS && (!sname || strcmp(sname, split_names[sp]));
		     sp++)
			;
		if (sp == QN_SHARD_NSPLITS)
			MBAD("%s: %ssplit: want \"train\" or \"val\"", mp, where);
		if (d->nents[sp] == want_files[sp])
			MBAD("%s: %s: more %s files than splits.%s.files", mp, where,
			     split_names[sp], split_names[sp]);
		struct ent *en = &d->ents[sp][d->nents[sp]];
		if (get_uint(mp, j, "index", where, QN_SHARD_FILES_MAX - 1, &v, e) < 0)
			return -1;
		if (v != d->nents[sp])
			MBAD("%s: %sindex: %" PRIu64 ", want %zu (the %s files in order)", mp,
			     where, v, d->nents[sp], split_names[sp]);
		en->index = (uint32_t)v;
		file_name(want_name, sp, en->index);
		if (!fname || strcmp(fname, want_name))
			MBAD("%s: %sfile: want \"%s\"", mp, where, want_name);
		memcpy(en->file, want_name, sizeof want_name);
		if (get_uint(mp, j, "documents", where, INT64_MAX, &en->docs, e) < 0 ||
		    get_uint(mp, j, "tokens", where, INT64_MAX, &en->tokens, e) < 0 ||
		    get_uint(mp, j, "bytes", where, INT64_MAX, &en->bytes, e) < 0 ||
		    get_hex64(mp, j, "sha256", where, en->sha256, e) < 0)
			return -1;
		if (!(en->path = path_join(d->dir, en->file)))
			MBAD("%s: out of memory", mp);
		en->first_doc = sum_docs[sp];
		if (en->docs > INT64_MAX - sum_docs[sp] || en->tokens > INT64_MAX - sum_tok[sp])
			MBAD("%s: %s: counts overflow", mp, where);
		sum_docs[sp] += en->docs;
		sum_tok[sp] += en->tokens;
		d->nents[sp]++;
	}
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		if (d->nents[sp] != want_files[sp])
			MBAD("%s: splits.%s.files: %" PRIu64 ", the shards list %zu", mp,
			     split_names[sp], want_files[sp], d->nents[sp]);
		if (sum_docs[sp] != d->docs[sp] || sum_tok[sp] != d->tokens[sp])
			MBAD("%s: splits.%s: %" PRIu64 " documents and %" PRIu64
			     " tokens, the shards list %" PRIu64 " and %" PRIu64,
			     mp, split_names[sp], d->docs[sp], d->tokens[sp], sum_docs[sp],
			     sum_tok[sp]);
		uint64_t td = 0, tt = 0;
		for (size_t t = 0; t < in->ntasks; t++) {
			td += d->tally[sp][t].docs;
			tt += d->tally[sp][t].tokens;
		}
		if (td != d->docs[sp] || tt != d->tokens[sp])
			MBAD("%s: splits.%s.tasks: the tasks add up to %" PRIu64
			     " documents and %" PRIu64 " tokens, not %" PRIu64 " and %" PRIu64,
			     mp, split_names[sp], td, tt, d->docs[sp], d->tokens[sp]);
	}
	return 0;
}

/* The header fields of shard s (or of hdr for a header-only check) against the manifest. */
static int check_against(const struct qn_shard_dir *d, int sp, const struct ent *en,
			 const struct hdr *h, uint64_t len, struct qn_err *e)
{
	const struct qn_shard_dir_info *in = &d->info;
	const char *p = en->path;
	char fp[65];

	if (len != en->bytes)
		return qn_errf(e, "%s: %" PRIu64 " bytes, the manifest says %" PRIu64 "%s", p, len,
			       en->bytes, len < en->bytes ? " (truncated?)" : "");
	hex32(h->fp, fp);
	if (strcmp(fp, in->fingerprint))
		return bad(e, p, H_FP, "tokenizer fingerprint %s, the manifest says %s", fp,
			   in->fingerprint);
	if (h->vocab != in->vocab_size)
		return bad(e, p, H_VOCAB, "vocabulary size %" PRIu32 ", the manifest says %" PRIu32,
			   h->vocab, in->vocab_size);
	if (h->width != in->width)
		return bad(e, p, H_WIDTH, "token width %u, the manifest says %u", h->width,
			   in->width);
	if (h->B != in->block_tokens)
		return bad(e, p, H_BLOCK, "%" PRIu32 " tokens a block, the manifest says %" PRIu32,
			   h->B, in->block_tokens);
	if (h->split != (uint32_t)sp || h->index != en->index)
		return bad(e, p, H_SPLIT, "the header says %s shard %" PRIu32 ", the name says %s",
			   h->split < QN_SHARD_NSPLITS ? split_names[h->split] : "?", h->index,
			   en->file);
	if (h->D != en->docs)
		return bad(e, p, H_DOCS, "%" PRIu64 " documents, the manifest says %" PRIu64, h->D,
			   en->docs);
	if (h->T != en->tokens)
		return bad(e, p, H_TOKENS, "%" PRIu64 " tokens, the manifest says %" PRIu64, h->T,
			   en->tokens);
	return 0;
}

/* Reads and checks only the header of a shard file. */
static int check_header_file(const struct qn_shard_dir *d, int sp, const struct ent *en,
			     struct qn_err *e)
{
	unsigned char b[QN_SHARD_HEADER] = {0};
	struct stat st;
	struct hdr h;
	size_t got = 0;
	int fd = open(en->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return qn_errno(e, errno, "cannot open '%s' (named in %s)", en->path, d->mpath);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return qn_errf(e, "cannot read '%s': not a regular file", en->path);
	}
	while (got < sizeof b) {
		ssize_t k = read(fd, b + got, sizeof b - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int err = errno;
			close(fd);
			return qn_errno(e, err, "cannot read '%s'", en->path);
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	if ((uint64_t)st.st_size != en->bytes)
		return qn_errf(e, "%s: %" PRIu64 " bytes, the manifest says %" PRIu64 "%s",
			       en->path, (uint64_t)st.st_size, en->bytes,
			       (uint64_t)st.st_size < en->bytes ? " (truncated?)" : "");
	if (parse_header(b, (uint64_t)st.st_size, en->path, &h, e) < 0)
		return -1;
	return check_against(d, sp, en, &h, (uint64_t)st.st_size, e);
}

struct qn_shard_dir *qn_shard_dir_open(const char *dir, struct qn_err *e)
{
	struct qn_shard_dir *d = calloc(1, sizeof *d);
	json_error_t jerr;
	json_t *root = NULL;
	struct stat st;

	if (!d || !(d->dir = strdup(dir)) || !(d->mpath = path_join(dir, QN_SHARD_MANIFEST))) {
		qn_errf(e, "%s: out of memory", dir);
		goto fail;
	}
	if (stat(d->mpath, &st) < 0) {
		if (errno == ENOENT && stat(dir, &st) == 0)
			qn_errf(e,
				"%s: no %s (not a shard directory, or its writing did not finish)",
				dir, QN_SHARD_MANIFEST);
		else
			qn_errno(e, errno, "cannot open '%s'", d->mpath);
		goto fail;
	}
	if ((uint64_t)st.st_size > MANIFEST_MAX) {
		qn_errf(e, "%s: larger than %u bytes", d->mpath, MANIFEST_MAX);
		goto fail;
	}
	if (!(root = json_load_file(d->mpath, JSON_REJECT_DUPLICATES, &jerr))) {
		qn_errf(e, "%s:%d:%d: %s", d->mpath, jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	if (parse_manifest(d, root, e) < 0)
		goto fail;
	json_decref(root);
	root = NULL;
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++)
		for (size_t i = 0; i < d->nents[sp]; i++)
			if (check_header_file(d, sp, &d->ents[sp][i], e) < 0)
				goto fail;
	return d;
fail:
	json_decref(root);
	qn_shard_dir_close(d);
	return NULL;
}

const struct qn_shard_dir_info *qn_shard_dir_info(const struct qn_shard_dir *d)
{
	return &d->info;
}

static int split_ok(int split)
{
	return split >= 0 && split < QN_SHARD_NSPLITS;
}

uint64_t qn_shard_dir_docs(const struct qn_shard_dir *d, int split)
{
	return split_ok(split) ? d->docs[split] : 0;
}

uint64_t qn_shard_dir_tokens(const struct qn_shard_dir *d, int split)
{
	return split_ok(split) ? d->tokens[split] : 0;
}

size_t qn_shard_dir_nfiles(const struct qn_shard_dir *d, int split)
{
	return split_ok(split) ? d->nents[split] : 0;
}

const char *qn_shard_dir_path(const struct qn_shard_dir *d, int split, size_t i)
{
	return split_ok(split) && i < d->nents[split] ? d->ents[split][i].path : NULL;
}

/* Opens file i of split with its tables, checked against the manifest. */
static struct qn_shard *open_ent(const struct qn_shard_dir *d, int sp, size_t i, struct qn_err *e)
{
	const struct ent *en = &d->ents[sp][i];
	struct qn_shard *s = qn_shard_open(en->path, e);

	if (s && check_against(d, sp, en, &s->h, s->len, e) < 0) {
		qn_shard_close(s);
		return NULL;
	}
	return s;
}

int qn_shard_dir_read(struct qn_shard_dir *d, int split, uint64_t k, struct qn_shard_docview *v,
		      struct qn_err *e)
{
	if (!split_ok(split) || k >= d->docs[split])
		return qn_errf(e, "%s: no %s document %" PRIu64, d->dir,
			       split_ok(split) ? split_names[split] : "?", k);
	const struct ent *en = d->ents[split];
	size_t lo = 0, hi = d->nents[split];
	while (hi - lo > 1) { /* the last file whose first document is <= k */
		size_t mid = lo + (hi - lo) / 2;
		if (en[mid].first_doc <= k)
			lo = mid;
		else
			hi = mid;
	}
	if (!d->cur || d->cur_split != split || d->cur_ent != lo) {
		qn_shard_close(d->cur);
		d->cur = open_ent(d, split, lo, e);
		if (!d->cur)
			return -1;
		d->cur_split = split;
		d->cur_ent = lo;
	}
	if (qn_shard_read(d->cur, k - en[lo].first_doc, v, e) < 0)
		return -1;
	v->index = k;
	if (v->pair >= 0)
		v->pair += (int64_t)en[lo].first_doc;
	return 0;
}

int qn_shard_dir_verify(const char *dir, struct qn_err *e)
{
	struct qn_shard_dir *d = qn_shard_dir_open(dir, e);
	struct task_tally *seen = NULL;
	int rc = -1;

	if (!d)
		return -1;
	const struct qn_shard_dir_info *in = &d->info;
	if (!(seen = calloc(in->ntasks, sizeof *seen))) {
		qn_errf(e, "%s: out of memory", dir);
		goto out;
	}
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++) {
		memset(seen, 0, in->ntasks * sizeof *seen);
		for (size_t i = 0; i < d->nents[sp]; i++) {
			struct qn_shard *s = open_ent(d, sp, i, e);
			if (!s)
				goto out;
			if (qn_shard_check_blocks(s, e) < 0) {
				qn_shard_close(s);
				goto out;
			}
			for (uint64_t k = 0; k < s->h.D; k++) {
				struct qn_shard_docview v;
				uint64_t off, eo = s->h.off_docs;
				doc_fields(s, k, &v, &off);
				if (v.task >= in->ntasks) {
					bad(e, s->name, eo,
					    "document %" PRIu64
					    " has task %u, the manifest names %zu",
					    k, v.task, in->ntasks);
					qn_shard_close(s);
					goto out;
				}
				if (v.label >= 0 && (size_t)v.label >= in->nlabels) {
					bad(e, s->name, eo,
					    "document %" PRIu64 " has label %" PRId32
					    ", the manifest names %zu",
					    k, v.label, in->nlabels);
					qn_shard_close(s);
					goto out;
				}
				seen[v.task].docs++;
				seen[v.task].tokens += v.n;
			}
			qn_shard_close(s);
		}
		for (size_t t = 0; t < in->ntasks; t++)
			if (seen[t].docs != d->tally[sp][t].docs ||
			    seen[t].tokens != d->tally[sp][t].tokens) {
				qn_errf(e,
					"%s: splits.%s.tasks.%s: %" PRIu64 " documents and %" PRIu64
					" tokens, the shards hold %" PRIu64 " and %" PRIu64,
					d->mpath, split_names[sp], in->tasks[t],
					d->tally[sp][t].docs, d->tally[sp][t].tokens, seen[t].docs,
					seen[t].tokens);
				goto out;
			}
	}
	for (int sp = 0; sp < QN_SHARD_NSPLITS; sp++)
		for (size_t i = 0; i < d->nents[sp]; i++) {
			const struct ent *en = &d->ents[sp][i];
			char hex[65];
			uint64_t size;
			if (qn_sha256_file(en->path, hex, &size, e) < 0)
				goto out;
			if (size != en->bytes || strcmp(hex, en->sha256)) {
				qn_errf(e, "%s: SHA-256 %s, the manifest says %s", en->path, hex,
					en->sha256);
				goto out;
			}
		}
	rc = 0;
out:
	free(seen);
	qn_shard_dir_close(d);
	return rc;
}

/* ---- streaming ---- */

enum { AT_DOC, IN_DOC, AFTER_DOC };

struct qn_shard_stream {
	struct qn_shard_dir *d;
	int split, sep;
	uint32_t eot;
	size_t ent;
	struct qn_shard *s;
	uint64_t k, t, tend;
	int state;
};

struct qn_shard_stream *qn_shard_stream_open(struct qn_shard_dir *d, int split, int sep,
					     struct qn_err *e)
{
	struct qn_shard_stream *st;

	if (!split_ok(split)) {
		qn_errf(e, "%s: unknown split %d", d->dir, split);
		return NULL;
	}
	if (sep != QN_SHARD_SEP_NONE && sep != QN_SHARD_SEP_AFTER && sep != QN_SHARD_SEP_BEFORE) {
		qn_errf(e, "%s: unknown separator mode %d", d->dir, sep);
		return NULL;
	}
	if (sep != QN_SHARD_SEP_NONE && d->info.eot < 0) {
		qn_errf(e, "%s: the manifest names no end-of-text token to separate documents",
			d->dir);
		return NULL;
	}
	if (!(st = calloc(1, sizeof *st))) {
		qn_errf(e, "%s: out of memory", d->dir);
		return NULL;
	}
	st->d = d;
	st->split = split;
	st->sep = sep;
	st->eot = sep != QN_SHARD_SEP_NONE ? (uint32_t)d->info.eot : 0;
	return st;
}

void qn_shard_stream_close(struct qn_shard_stream *st)
{
	if (!st)
		return;
	qn_shard_close(st->s);
	free(st);
}

ssize_t qn_shard_stream_read(struct qn_shard_stream *st, uint32_t *buf, size_t cap,
			     struct qn_err *e)
{
	size_t got = 0;

	if (cap > SSIZE_MAX)
		cap = SSIZE_MAX;
	while (got < cap) {
		struct qn_shard *s = st->s;
		if (!s) {
			if (st->ent >= st->d->nents[st->split])
				break;
			if (!(st->s = open_ent(st->d, st->split, st->ent, e)))
				return -1;
			st->k = 0;
			st->state = AT_DOC;
			continue;
		}
		if (st->state == AT_DOC) {
			if (st->k == s->h.D) {
				qn_shard_close(s);
				st->s = NULL;
				st->ent++;
				continue;
			}
			const unsigned char *dp = s->docs + DOC_ROW * st->k;
			st->t = get64(dp + D_OFF);
			st->tend = st->t + get32(dp + D_COUNT);
			if (st->sep == QN_SHARD_SEP_BEFORE)
				buf[got++] = st->eot;
			st->state = IN_DOC;
		} else if (st->state == IN_DOC) {
			if (st->t == st->tend) {
				st->state = AFTER_DOC;
				continue;
			}
			uint64_t b = st->t / s->h.B, lo = b * s->h.B;
			if (cache_block(s, b, e) < 0)
				return -1;
			uint64_t hi = lo + get32(s->blk + BLOCK_ENT * b + B_COUNT);
			uint64_t c = (hi < st->tend ? hi : st->tend) - st->t;
			if (c > cap - got)
				c = cap - got;
			memcpy(buf + got, s->blockbuf + (st->t - lo), (size_t)c * sizeof *buf);
			got += (size_t)c;
			st->t += c;
		} else {
			if (st->sep == QN_SHARD_SEP_AFTER)
				buf[got++] = st->eot;
			st->k++;
			st->state = AT_DOC;
		}
	}
	return (ssize_t)got;
}

/* ---- exporters ---- */

enum { EXPORT_NANOGPT, EXPORT_LLMC };

static int export(struct qn_shard_dir *d, int split, const char *path, int kind, struct qn_err *e)
{
	const struct qn_shard_dir_info *in = &d->info;
	const char *what = kind == EXPORT_NANOGPT ? "nanoGPT" : "llm.c";
	int to_stdout = !path || !strcmp(path, "-");
	size_t cap = 1 << 16;
	unsigned width = in->width;

	if (!split_ok(split))
		return qn_errf(e, "%s: unknown split %d", d->dir, split);
	if (in->eot < 0)
		return qn_errf(e, "%s: the manifest names no end-of-text token; %s files need one",
			       d->dir, what);
	if (kind == EXPORT_NANOGPT && width != 16)
		return qn_errf(e,
			       "%s: nanoGPT's .bin holds uint16 tokens; a vocabulary of %" PRIu32
			       " needs 32 bits",
			       d->dir, in->vocab_size);
	uint64_t count = d->tokens[split] + d->docs[split];
	if (kind == EXPORT_LLMC && count > QN_SHARD_LLMC_MAX)
		return qn_errf(
		    e, "%s: %" PRIu64 " tokens with separators, llm.c files hold at most %u",
		    d->dir, count, QN_SHARD_LLMC_MAX);
	if (to_stdout && isatty(1))
		return qn_errf(e, "refusing to write binary tokens to a terminal");

	struct qn_shard_stream *st = qn_shard_stream_open(
	    d, split, kind == EXPORT_NANOGPT ? QN_SHARD_SEP_AFTER : QN_SHARD_SEP_BEFORE, e);
	uint32_t *buf = malloc(cap * sizeof *buf);
	unsigned char *out = malloc(cap * 4);
	struct qn_wr *w = NULL;
	uint64_t total = 0;
	ssize_t n;

	if (!st || !buf || !out) {
		if (st)
			qn_errf(e, "%s: out of memory", d->dir);
		goto fail;
	}
	if (!(w = qn_wr_open(path, QN_WR_PLAIN, e)))
		goto fail;
	if (kind == EXPORT_LLMC) {
		unsigned char h[256 * 4] = {0};
		set32(h, width == 16 ? 20240520 : 20240801);
		set32(h + 4, width == 16 ? 1 : 7);
		set32(h + 8, (uint32_t)count);
		if (qn_wr_write(w, h, sizeof h, e) < 0)
			goto fail;
	}
	while ((n = qn_shard_stream_read(st, buf, cap, e)) > 0) {
		size_t k = 0;
		for (ssize_t i = 0; i < n; i++) {
			if (width == 16) {
				set16(out + k, (uint16_t)buf[i]);
				k += 2;
			} else {
				set32(out + k, buf[i]);
				k += 4;
			}
		}
		if (qn_wr_write(w, out, k, e) < 0)
			goto fail;
		total += (uint64_t)n;
	}
	if (n < 0)
		goto fail;
	if (total != count) {
		qn_errf(e, "%s: wrote %" PRIu64 " tokens, the manifest promised %" PRIu64, d->dir,
			total, count);
		goto fail;
	}
	qn_shard_stream_close(st);
	free(buf);
	free(out);
	return qn_wr_commit(w, NULL, e);
fail:
	if (w)
		qn_wr_abort(w);
	qn_shard_stream_close(st);
	free(buf);
	free(out);
	return -1;
}

int qn_shard_export_nanogpt(struct qn_shard_dir *d, int split, const char *path, struct qn_err *e)
{
	return export(d, split, path, EXPORT_NANOGPT, e);
}

int qn_shard_export_llmc(struct qn_shard_dir *d, int split, const char *path, struct qn_err *e)
{
	return export(d, split, path, EXPORT_LLMC, e);
}
