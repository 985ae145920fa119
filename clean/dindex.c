/* dindex.c - see dindex.h. */
#include "dindex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "buf.h"
#include "err.h"
#include "minhash.h"
#include "utf8.h"
#include "wr.h"

#define MAGIC "QNDEDUP1"
#define SEC_EXACT 1u
#define SEC_NEAR 2u
#define KEY_FIELD (CN_DINDEX_KEY_MAX + 1)

/* Header fields (see the table in dindex.h). */
#define H_VERSION 8
#define H_SECTIONS 12
#define H_BANDS 16
#define H_ROWS 20
#define H_NGRAM 24
#define H_FLAGS 28
#define H_SEED 32
#define H_E 40
#define H_N 48
#define H_I 56
#define H_T 64
#define H_KEY 72
#define TEXT_MAX UINT32_MAX /* id offsets are u32 */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_LE 0
#else
#define HOST_LE 1
#endif

struct cn_dindex {
	char *dir;  /* NULL for a parsed image */
	char *path; /* DIR/index.qdx, or the name given to parse */
	int lock_fd;
	unsigned sections; /* SEC_*: stored, or started by this run */
	unsigned on;	   /* SEC_*: sections this run may add to */
	char key[KEY_FIELD];
	struct qn_minhash_params p;

	/* The loaded file, used in place (host order after the load). */
	unsigned char *img;
	size_t img_len;
	size_t e0, n0, i0, t0;
	const uint64_t *hash0; /* hi, lo per entry */
	const uint32_t *eid0;
	const uint64_t *keys0; /* bands per entry */
	const uint32_t *nid0;
	const uint32_t *off0; /* i0 + 1 */
	const char *text0;

	/* This run's adds; their id numbers continue after i0. */
	uint64_t *hash1;
	uint32_t *eid1;
	size_t e1, ecap;
	uint64_t *keys1;
	uint32_t *nid1;
	size_t n1, ncap;
	uint32_t *off1; /* start of each added id in arena */
	size_t i1, icap;
	char *arena;
	size_t alen, acap;
};

/* Little-endian access to the image. */
static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
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

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Converts arrays of the image to host order in place (no-op on LE). */
static void host64(unsigned char *p, size_t n)
{
	if (HOST_LE)
		return;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = get64(p + 8 * i);
		memcpy(p + 8 * i, &v, 8);
	}
}

static void host32(unsigned char *p, size_t n)
{
	if (HOST_LE)
		return;
	for (size_t i = 0; i < n; i++) {
		uint32_t v = get32(p + 4 * i);
		memcpy(p + 4 * i, &v, 4);
	}
}

static int check_key(const char *key, struct qn_err *e)
{
	size_t n = strlen(key);

	if (n < 1 || n > CN_DINDEX_KEY_MAX)
		return qn_errf(e, "exact key '%s': want 1 to %d bytes", key, CN_DINDEX_KEY_MAX);
	for (size_t i = 0; i < n; i++)
		if (key[i] < 0x20 || key[i] > 0x7e)
			return qn_errf(e, "exact key: byte %zu is not printable ASCII", i);
	return 0;
}

/* The ranges qn_minhash_new accepts; NULL when fine, else why not. */
static const char *params_bad(const struct qn_minhash_params *p)
{
	if (p->bands < 1 || p->rows < 1 || p->rows > 64 ||
	    (uint64_t)p->bands * p->rows > QN_MINHASH_MAX_HASHES)
		return "bands and rows out of range";
	if (p->ngram < 1 || p->ngram > QN_MINHASH_MAX_NGRAM)
		return "shingle length out of range";
	if (p->flags & ~(unsigned)QN_MINHASH_ALL)
		return "unknown minhash flags";
	return NULL;
}

void cn_dindex_close(struct cn_dindex *x)
{
	if (!x)
		return;
	if (x->lock_fd >= 0) {
		/* Still locked: the pid can go without a race. */
		if (ftruncate(x->lock_fd, 0) < 0) {
			/* harmless: the lock, not the pid, excludes */
		}
		close(x->lock_fd);
	}
	free(x->dir);
	free(x->path);
	free(x->img);
	free(x->hash1);
	free(x->eid1);
	free(x->keys1);
	free(x->nid1);
	free(x->off1);
	free(x->arena);
	free(x);
}

static struct cn_dindex *dindex_new(void)
{
	struct cn_dindex *x = calloc(1, sizeof *x);

	if (x)
		x->lock_fd = -1;
	return x;
}

/* "name: offset N: why"; returns -1. */
__attribute__((format(printf, 4, 5))) static int bad(struct qn_err *e, const char *name, size_t off,
						     const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return qn_errf(e, "%s: offset %zu: %s", name, off, why);
}

/*
 * Checks the image img[0..len) (owned by x from now on) and points x's
 * sections into it. -1 with "name: offset N: why".
 */
static int parse_image(struct cn_dindex *x, unsigned char *img, size_t len, struct qn_err *e)
{
	const char *name = x->path;
	size_t at;
#define BAD(off, ...) return bad(e, name, (size_t)(off), __VA_ARGS__)

	x->img = img;
	x->img_len = len;

	if (len < 8 || memcmp(img, MAGIC, 8))
		BAD(0, "not a quern dedup index (no \"%s\" magic)", MAGIC);
	if (len < CN_DINDEX_HEADER + 8)
		BAD(len, "truncated: %zu bytes, shorter than the %d-byte header and the checksum",
		    len, CN_DINDEX_HEADER);
	uint32_t version = get32(img + H_VERSION);
	if (version != CN_DINDEX_VERSION)
		BAD(H_VERSION, "version %" PRIu32 ", this quern-clean reads version %d", version,
		    CN_DINDEX_VERSION);
	uint32_t sec = get32(img + H_SECTIONS);
	if (sec & ~(SEC_EXACT | SEC_NEAR))
		BAD(H_SECTIONS, "unknown section bits 0x%" PRIx32, sec);

	/* Counts are checked against len before any size is computed from them. */
	uint64_t E = get64(img + H_E), N = get64(img + H_N), I = get64(img + H_I),
		 T = get64(img + H_T);
	unsigned bands = get32(img + H_BANDS);
	if (bands > QN_MINHASH_MAX_HASHES)
		BAD(H_BANDS, "%u bands, at most %d", bands, QN_MINHASH_MAX_HASHES);
	if (E > len / 20)
		BAD(H_E, "%" PRIu64 " exact entries cannot fit in %zu bytes", E, len);
	if (N > len / 4 || (bands && N > len / (8 * (uint64_t)bands + 4)))
		BAD(H_N, "%" PRIu64 " near entries cannot fit in %zu bytes", N, len);
	if (I > len / 5)
		BAD(H_I, "%" PRIu64 " ids cannot fit in %zu bytes", I, len);
	if (T > len || T > TEXT_MAX)
		BAD(H_T, "%" PRIu64 " bytes of id text cannot fit in %zu bytes", T, len);
	size_t o_hash = CN_DINDEX_HEADER;
	size_t o_eid = o_hash + 16 * E;
	size_t o_keys = o_eid + pad8(4 * E);
	size_t o_nid = o_keys + 8 * (size_t)bands * N;
	size_t o_off = o_nid + pad8(4 * N);
	size_t o_text = o_off + pad8(4 * (I + 1));
	size_t o_sum = o_text + pad8(T);
	if (o_sum + 8 != len)
		BAD(len < o_sum + 8 ? len : o_sum + 8,
		    "the header's counts make %zu bytes, the file has %zu%s", o_sum + 8, len,
		    len < o_sum + 8 ? " (truncated?)" : "");
	uint64_t sum = get64(img + o_sum), want = qn_xxh3_64(img, o_sum, 0);
	if (sum != want)
		BAD(o_sum,
		    "checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
		    "): the file is corrupt",
		    sum, want);

	/* The parameter blocks. */
	const char *key = (const char *)img + H_KEY;
	size_t klen = strnlen(key, KEY_FIELD);
	for (size_t i = klen; i < KEY_FIELD; i++)
		if (key[i])
			BAD(H_KEY + i, "exact key not followed by zeros");
	if (sec & SEC_EXACT) {
		if (klen < 1 || klen > CN_DINDEX_KEY_MAX)
			BAD(H_KEY, "exact key of %zu bytes, want 1 to %d", klen, CN_DINDEX_KEY_MAX);
		for (size_t i = 0; i < klen; i++)
			if (key[i] < 0x20 || key[i] > 0x7e)
				BAD(H_KEY + i, "exact key is not printable ASCII");
		memcpy(x->key, key, klen + 1);
	} else {
		if (klen)
			BAD(H_KEY, "exact key without an exact section");
		if (E)
			BAD(H_E, "exact entries without an exact section");
	}
	x->p.bands = bands;
	x->p.rows = get32(img + H_ROWS);
	x->p.ngram = get32(img + H_NGRAM);
	x->p.flags = get32(img + H_FLAGS);
	x->p.seed = get64(img + H_SEED);
	if (sec & SEC_NEAR) {
		const char *why = params_bad(&x->p);
		if (why)
			BAD(H_BANDS,
			    "near parameters %u bands x %u rows, %u-word shingles, flags %u: %s",
			    x->p.bands, x->p.rows, x->p.ngram, x->p.flags, why);
	} else {
		for (at = H_BANDS; at < H_E; at++)
			if (img[at])
				BAD(at, "near parameters without a near section");
		if (N)
			BAD(H_N, "near entries without a near section");
	}
	x->sections = sec;

	/* Padding is zero: one encoding per content. */
	size_t pad_from[4] = {o_eid + 4 * E, o_nid + 4 * N, o_off + 4 * (I + 1), o_text + T};
	size_t pad_to[4] = {o_keys, o_off, o_text, o_sum};
	for (int k = 0; k < 4; k++)
		for (at = pad_from[k]; at < pad_to[k]; at++)
			if (img[at])
				BAD(at, "padding is not zero");

	host64(img + o_hash, 2 * E);
	host32(img + o_eid, E);
	host64(img + o_keys, (size_t)bands * N);
	host32(img + o_nid, N);
	host32(img + o_off, I + 1);
	x->e0 = E;
	x->n0 = N;
	x->i0 = I;
	x->t0 = T;
	x->hash0 = (const uint64_t *)(img + o_hash);
	x->eid0 = (const uint32_t *)(img + o_eid);
	x->keys0 = (const uint64_t *)(img + o_keys);
	x->nid0 = (const uint32_t *)(img + o_nid);
	x->off0 = (const uint32_t *)(img + o_off);
	x->text0 = (const char *)img + o_text;

	for (size_t i = 0; i < E; i++)
		if (x->eid0[i] >= I)
			BAD(o_eid + 4 * i, "exact entry %zu names id %" PRIu32 " of %" PRIu64, i,
			    x->eid0[i], I);
	for (size_t i = 0; i < N; i++)
		if (x->nid0[i] >= I)
			BAD(o_nid + 4 * i, "near entry %zu names id %" PRIu32 " of %" PRIu64, i,
			    x->nid0[i], I);
	if (x->off0[0] != 0)
		BAD(o_off, "first id offset is %" PRIu32 ", not 0", x->off0[0]);
	if (x->off0[I] != T)
		BAD(o_off + 4 * I,
		    "last id offset is %" PRIu32 ", not the %" PRIu64 " bytes of id text",
		    x->off0[I], T);
	for (size_t i = 0; i < I; i++) {
		uint32_t a = x->off0[i], b = x->off0[i + 1];
		if (b <= a || b > T)
			BAD(o_off + 4 * (i + 1), "id offsets out of order");
		size_t n = b - a - 1;
		if (n > CN_DINDEX_ID_MAX)
			BAD(o_text + a, "id %zu is %zu bytes, at most %d", i, n, CN_DINDEX_ID_MAX);
		const char *s = x->text0 + a, *nul = memchr(s, 0, n + 1);
		if (nul != s + n)
			BAD(o_text + (nul ? (size_t)(nul - x->text0) : b - 1),
			    "id %zu is not NUL-terminated or contains a NUL", i);
		size_t ok = qn_utf8_valid_prefix(s, n);
		if (ok != n)
			BAD(o_text + a + ok, "id %zu is not valid UTF-8", i);
	}
#undef BAD
	return 0;
}

struct cn_dindex *cn_dindex_parse(const void *buf, size_t len, const char *name, struct qn_err *e)
{
	struct cn_dindex *x = dindex_new();
	unsigned char *img = malloc(len ? len : 1);

	if (!x || !img || !(x->path = strdup(name ? name : "index"))) {
		qn_errf(e, "%s: out of memory", name ? name : "index");
		free(img);
		cn_dindex_close(x);
		return NULL;
	}
	if (len)
		memcpy(img, buf, len);
	if (parse_image(x, img, len, e) < 0) {
		cn_dindex_close(x);
		return NULL;
	}
	return x;
}

/* Reads x->path whole into a buffer and parses it; 1 when it does not exist. */
static int load(struct cn_dindex *x, struct qn_err *e)
{
	int fd = open(x->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char *img;
	size_t len, got = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return qn_errno(e, errno, "cannot open '%s'", x->path);
	}
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		return qn_errno(e, err, "cannot read '%s'", x->path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return qn_errf(e, "cannot read '%s': not a regular file", x->path);
	}
	if ((uint64_t)st.st_size > SIZE_MAX - 1) {
		close(fd);
		return qn_errf(e, "cannot read '%s': too large", x->path);
	}
	len = (size_t)st.st_size;
	img = malloc(len ? len : 1);
	if (!img) {
		close(fd);
		return qn_errf(e, "cannot read '%s': out of memory for %zu bytes", x->path, len);
	}
	while (got < len) {
		ssize_t k = read(fd, img + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int err = k < 0 ? errno : 0;
			close(fd);
			free(img);
			if (err)
				return qn_errno(e, err, "cannot read '%s'", x->path);
			return qn_errf(e, "cannot read '%s': it shrank while being read", x->path);
		}
		got += (size_t)k;
	}
	close(fd);
	return parse_image(x, img, len, e);
}

/* Removes DIR/.index.qdx.tmp* left by a run that crashed while committing. */
static void remove_stale(const char *dir)
{
	static const char prefix[] = "." CN_DINDEX_FILE ".tmp";
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL)
		if (!strncmp(de->d_name, prefix, sizeof prefix - 1))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* Locks DIR/lock into x->lock_fd. */
static int lock_dir(struct cn_dindex *x, int *locked, struct qn_err *e)
{
	size_t n = strlen(x->dir) + sizeof "/lock";
	char *lp = malloc(n), pid[32];
	int len;

	if (!lp)
		return qn_errf(e, "%s: out of memory", x->dir);
	snprintf(lp, n, "%s/lock", x->dir);
	x->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (x->lock_fd < 0) {
		qn_errno(e, errno, "cannot open '%s'", lp);
		free(lp);
		return -1;
	}
	free(lp);
	if (flock(x->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		ssize_t k = err == EWOULDBLOCK ? pread(x->lock_fd, pid, sizeof pid - 1, 0) : 0;
		long holder = 0;
		/* Not ours: close must not clear the holder's pid. */
		close(x->lock_fd);
		x->lock_fd = -1;
		if (err != EWOULDBLOCK)
			return qn_errno(e, err, "%s: cannot lock", x->dir);
		if (k > 0) {
			pid[k] = 0;
			holder = strtol(pid, NULL, 10);
		}
		if (locked)
			*locked = 1;
		if (holder > 0)
			return qn_errf(e, "%s: locked by another quern-clean run (pid %ld)", x->dir,
				       holder);
		return qn_errf(e, "%s: locked by another quern-clean run", x->dir);
	}
	len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(x->lock_fd, 0) < 0 || pwrite(x->lock_fd, pid, (size_t)len, 0) != len) {
		/* The pid only makes the next run's message better. */
	}
	return 0;
}

/* Refuses a stored section whose parameters are not this run's. */
static int check_params(const struct cn_dindex *x, const char *key,
			const struct qn_minhash_params *p, struct qn_err *e)
{
	static const char fix[] = "; use a new --dedup-index folder";
	const struct qn_minhash_params *s = &x->p;

	if (key && (x->sections & SEC_EXACT) && strcmp(key, x->key))
		return qn_errf(e, "%s: exact-dup index built with key '%s', this run uses '%s'%s",
			       x->path, x->key, key, fix);
	if (!p || !(x->sections & SEC_NEAR))
		return 0;
	if (p->bands != s->bands || p->rows != s->rows)
		return qn_errf(
		    e, "%s: near-dup index built with %u bands x %u rows, this run uses %u x %u%s",
		    x->path, s->bands, s->rows, p->bands, p->rows, fix);
	if (p->ngram != s->ngram)
		return qn_errf(e,
			       "%s: near-dup index built with %u-word shingles, this run uses %u%s",
			       x->path, s->ngram, p->ngram, fix);
	if (p->flags != s->flags)
		return qn_errf(
		    e, "%s: near-dup index built with normalization flags %u, this run uses %u%s",
		    x->path, s->flags, p->flags, fix);
	if (p->seed != s->seed)
		return qn_errf(e,
			       "%s: near-dup index built with seed 0x%016" PRIx64
			       ", this run uses 0x%016" PRIx64 "%s",
			       x->path, s->seed, p->seed, fix);
	return 0;
}

struct cn_dindex *cn_dindex_open(const char *dir, const char *exact_key,
				 const struct qn_minhash_params *p, int *locked, struct qn_err *e)
{
	struct cn_dindex *x;
	const char *why;
	int rc;

	if (locked)
		*locked = 0;
	if (exact_key && check_key(exact_key, e) < 0)
		return NULL;
	if (p && (why = params_bad(p)) != NULL) {
		qn_errf(e, "near parameters %u bands x %u rows, %u-word shingles, flags %u: %s",
			p->bands, p->rows, p->ngram, p->flags, why);
		return NULL;
	}
	if (!(x = dindex_new()) || !(x->dir = strdup(dir)) ||
	    !(x->path = malloc(strlen(dir) + sizeof "/" CN_DINDEX_FILE))) {
		qn_errf(e, "%s: out of memory", dir);
		goto fail;
	}
	sprintf(x->path, "%s/%s", dir, CN_DINDEX_FILE);
	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		qn_errno(e, errno, "cannot create '%s'", dir);
		goto fail;
	}
	if (lock_dir(x, locked, e) < 0)
		goto fail;
	remove_stale(dir);
	rc = load(x, e);
	if (rc < 0)
		goto fail;
	if (check_params(x, exact_key, p, e) < 0)
		goto fail;
	if (exact_key) {
		x->on |= SEC_EXACT;
		if (!(x->sections & SEC_EXACT))
			strcpy(x->key, exact_key);
	}
	if (p) {
		x->on |= SEC_NEAR;
		if (!(x->sections & SEC_NEAR))
			x->p = *p;
	}
	x->sections |= x->on;
	return x;
fail:
	cn_dindex_close(x);
	return NULL;
}

const char *cn_dindex_exact_key(const struct cn_dindex *x)
{
	return x->sections & SEC_EXACT ? x->key : NULL;
}

const struct qn_minhash_params *cn_dindex_near_params(const struct cn_dindex *x)
{
	return x->sections & SEC_NEAR ? &x->p : NULL;
}

/* Id number k: stored ones, then added ones. */
static const char *id_str(const struct cn_dindex *x, size_t k)
{
	return k < x->i0 ? x->text0 + x->off0[k] : x->arena + x->off1[k - x->i0];
}

size_t cn_dindex_exact_count(const struct cn_dindex *x)
{
	return x->e0 + x->e1;
}

struct qn_hash128 cn_dindex_exact_hash(const struct cn_dindex *x, size_t i)
{
	const uint64_t *h = i < x->e0 ? x->hash0 + 2 * i : x->hash1 + 2 * (i - x->e0);

	return (struct qn_hash128){h[0], h[1]};
}

const char *cn_dindex_exact_id(const struct cn_dindex *x, size_t i)
{
	return id_str(x, i < x->e0 ? x->eid0[i] : x->eid1[i - x->e0]);
}

size_t cn_dindex_near_count(const struct cn_dindex *x)
{
	return x->n0 + x->n1;
}

const uint64_t *cn_dindex_near_keys(const struct cn_dindex *x, size_t i)
{
	size_t b = x->p.bands;

	return i < x->n0 ? x->keys0 + b * i : x->keys1 + b * (i - x->n0);
}

const char *cn_dindex_near_id(const struct cn_dindex *x, size_t i)
{
	return id_str(x, i < x->n0 ? x->nid0[i] : x->nid1[i - x->n0]);
}

/* Makes room for one more of each of n arrays of the given element sizes. */
static int grow(void **v, const size_t *size, int n, size_t len, size_t *cap)
{
	if (len < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 1024;
	for (int i = 0; i < n; i++) {
		if (c > SIZE_MAX / size[i])
			return -1;
		void *p = realloc(v[i], c * size[i]);
		if (!p)
			return -1;
		v[i] = p;
	}
	*cap = c;
	return 0;
}

/* The id number of id, appended unless it is the previous add's. */
static long long intern(struct cn_dindex *x, const char *id, struct qn_err *e)
{
	size_t n = strnlen(id, CN_DINDEX_ID_MAX + 1);

	if (n > CN_DINDEX_ID_MAX) {
		/* Quote its start, cut before a continuation byte, to find it by. */
		int k = 24;
		while (k > 0 && (id[k] & 0xc0) == 0x80)
			k--;
		return qn_errf(e, "%s: id '%.*s...' is longer than %d bytes", x->path, k, id,
			       CN_DINDEX_ID_MAX);
	}
	if (!qn_utf8_valid(id, n))
		return qn_errf(e, "%s: id is not valid UTF-8", x->path);
	if (x->i1 && !strcmp(x->arena + x->off1[x->i1 - 1], id))
		return (long long)(x->i0 + x->i1 - 1);
	if (x->i0 + x->i1 >= UINT32_MAX || x->t0 + x->alen + n + 1 > TEXT_MAX)
		return qn_errf(e,
			       "%s: the index is full (4 GiB of ids); use a new --dedup-index "
			       "folder",
			       x->path);
	if (x->i1 == x->icap) {
		void *v[1] = {x->off1};
		size_t sz[1] = {sizeof *x->off1};
		if (grow(v, sz, 1, x->i1, &x->icap) < 0)
			goto nomem;
		x->off1 = v[0];
	}
	if (x->alen + n + 1 > x->acap) {
		size_t c = x->acap ? x->acap : 65536;
		while (c < x->alen + n + 1)
			c *= 2;
		char *a = realloc(x->arena, c);
		if (!a)
			goto nomem;
		x->arena = a;
		x->acap = c;
	}
	memcpy(x->arena + x->alen, id, n + 1);
	x->off1[x->i1++] = (uint32_t)x->alen;
	x->alen += n + 1;
	return (long long)(x->i0 + x->i1 - 1);
nomem:
	return qn_errf(e, "%s: out of memory", x->path);
}

int cn_dindex_add_exact(struct cn_dindex *x, struct qn_hash128 h, const char *id, struct qn_err *e)
{
	if (!(x->on & SEC_EXACT))
		return qn_errf(e, "%s: exact dedup is not on in this run", x->path);
	if (x->e1 == x->ecap) {
		void *v[2] = {x->hash1, x->eid1};
		size_t sz[2] = {2 * sizeof *x->hash1, sizeof *x->eid1};
		int rc = grow(v, sz, 2, x->e1, &x->ecap);
		x->hash1 = v[0];
		x->eid1 = v[1];
		if (rc < 0)
			return qn_errf(e, "%s: out of memory", x->path);
	}
	long long k = intern(x, id, e);
	if (k < 0)
		return -1;
	x->hash1[2 * x->e1] = h.hi;
	x->hash1[2 * x->e1 + 1] = h.lo;
	x->eid1[x->e1++] = (uint32_t)k;
	return 0;
}

int cn_dindex_add_near(struct cn_dindex *x, const uint64_t *keys, const char *id, struct qn_err *e)
{
	size_t b = x->p.bands;

	if (!(x->on & SEC_NEAR))
		return qn_errf(e, "%s: near dedup is not on in this run", x->path);
	if (x->n1 == x->ncap) {
		void *v[2] = {x->keys1, x->nid1};
		size_t sz[2] = {b * sizeof *x->keys1, sizeof *x->nid1};
		int rc = grow(v, sz, 2, x->n1, &x->ncap);
		x->keys1 = v[0];
		x->nid1 = v[1];
		if (rc < 0)
			return qn_errf(e, "%s: out of memory", x->path);
	}
	long long k = intern(x, id, e);
	if (k < 0)
		return -1;
	memcpy(x->keys1 + b * x->n1, keys, b * sizeof *keys);
	x->nid1[x->n1++] = (uint32_t)k;
	return 0;
}

/*
 * The writer behind cn_dindex_commit and cn_dindex_image: bytes go to a
 * qn_wr or a qn_buf, and through the checksum. The first error sticks.
 */
struct out {
	struct qn_wr *w;
	struct qn_buf *buf;
	XXH3_state_t *sum;
	struct qn_err *e;
	const char *name;
	size_t pos;
	int failed;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->failed || !n)
		return;
	XXH3_64bits_update(o->sum, p, n);
	if (o->w ? qn_wr_write(o->w, p, n, o->e) < 0 : qn_buf_add(o->buf, p, n) < 0) {
		if (!o->w)
			qn_errf(o->e, "%s: image does not fit the buffer", o->name);
		o->failed = 1;
	}
	o->pos += n;
}

static void put_pad(struct out *o)
{
	static const unsigned char zero[8];

	put(o, zero, pad8(o->pos) - o->pos);
}

/* n host-order u32s, each plus add, as little-endian. */
static void put32s(struct out *o, const uint32_t *v, size_t n, uint32_t add)
{
	unsigned char tmp[4096];

	if (HOST_LE && !add) {
		put(o, v, 4 * n);
		return;
	}
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; i < n && k < sizeof tmp; i++, k += 4)
			set32(tmp + k, v[i] + add);
		put(o, tmp, k);
	}
}

static void put64s(struct out *o, const uint64_t *v, size_t n)
{
	unsigned char tmp[4096];

	if (HOST_LE) {
		put(o, v, 8 * n);
		return;
	}
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; i < n && k < sizeof tmp; i++, k += 8)
			set64(tmp + k, v[i]);
		put(o, tmp, k);
	}
}

static int write_image(const struct cn_dindex *x, struct out *o)
{
	unsigned char h[CN_DINDEX_HEADER] = {0}, tail[8];
	size_t b = x->sections & SEC_NEAR ? x->p.bands : 0;
	uint32_t end;

	if (!(o->sum = XXH3_createState()) || XXH3_64bits_reset(o->sum) == XXH_ERROR) {
		XXH3_freeState(o->sum);
		return qn_errf(o->e, "%s: out of memory", o->name);
	}
	memcpy(h, MAGIC, 8);
	set32(h + H_VERSION, CN_DINDEX_VERSION);
	set32(h + H_SECTIONS, x->sections);
	if (x->sections & SEC_EXACT)
		memcpy(h + H_KEY, x->key, strlen(x->key));
	if (x->sections & SEC_NEAR) {
		set32(h + H_BANDS, x->p.bands);
		set32(h + H_ROWS, x->p.rows);
		set32(h + H_NGRAM, x->p.ngram);
		set32(h + H_FLAGS, x->p.flags);
		set64(h + H_SEED, x->p.seed);
	}
	set64(h + H_E, x->e0 + x->e1);
	set64(h + H_N, x->n0 + x->n1);
	set64(h + H_I, x->i0 + x->i1);
	set64(h + H_T, x->t0 + x->alen);
	put(o, h, sizeof h);
	put64s(o, x->hash0, 2 * x->e0);
	put64s(o, x->hash1, 2 * x->e1);
	put32s(o, x->eid0, x->e0, 0);
	put32s(o, x->eid1, x->e1, 0);
	put_pad(o);
	put64s(o, x->keys0, b * x->n0);
	put64s(o, x->keys1, b * x->n1);
	put32s(o, x->nid0, x->n0, 0);
	put32s(o, x->nid1, x->n1, 0);
	put_pad(o);
	put32s(o, x->off0, x->i0, 0);
	put32s(o, x->off1, x->i1, (uint32_t)x->t0);
	end = (uint32_t)(x->t0 + x->alen);
	put32s(o, &end, 1, 0);
	put_pad(o);
	put(o, x->text0, x->t0);
	put(o, x->arena, x->alen);
	put_pad(o);
	set64(tail, XXH3_64bits_digest(o->sum));
	XXH3_freeState(o->sum);
	if (o->failed)
		return -1;
	/* Not through put: the checksum does not cover itself. */
	if (o->w ? qn_wr_write(o->w, tail, 8, o->e) < 0 : qn_buf_add(o->buf, tail, 8) < 0) {
		if (!o->w)
			qn_errf(o->e, "%s: image does not fit the buffer", o->name);
		return -1;
	}
	return 0;
}

int cn_dindex_image(const struct cn_dindex *x, struct qn_buf *out, struct qn_err *e)
{
	struct out o = {.buf = out, .e = e, .name = x->path};

	return write_image(x, &o);
}

int cn_dindex_commit(struct cn_dindex *x, struct qn_err *e)
{
	struct out o = {.e = e, .name = x->path};

	if (!x->dir)
		return qn_errf(e, "%s: a parsed index has no folder to commit to", x->path);
	if (!(o.w = qn_wr_open(x->path, QN_WR_PLAIN, e)))
		return -1;
	if (write_image(x, &o) < 0) {
		qn_wr_abort(o.w);
		return -1;
	}
	return qn_wr_commit(o.w, NULL, e);
}

size_t cn_dindex_bytes(const struct cn_dindex *x)
{
	return sizeof *x + x->img_len + x->ecap * (2 * sizeof *x->hash1 + sizeof *x->eid1) +
	       x->ncap * (x->p.bands * sizeof *x->keys1 + sizeof *x->nid1) +
	       x->icap * sizeof *x->off1 + x->acap;
}
