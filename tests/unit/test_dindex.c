/*
 * test_dindex.c - clean/dindex: round trips through the folder (old entries
 * then new, in order), refused parameters, the lock, every single-byte
 * corruption and truncation, lying counts, a commit that fails half way
 * (the old file must survive), and awkward ids. Works in a mkdtemp folder
 * under $TMPDIR (or /tmp), removed at the end.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "dindex.h"
#include "err.h"
#include "hash.h"
#include "minhash.h"
#include "testfs.h"

/* Header offsets, as documented in dindex.h (not taken from the code). */
enum {
	O_VERSION = 8,
	O_SECTIONS = 12,
	O_BANDS = 16,
	O_ROWS = 20,
	O_E = 40,
	O_N = 48,
	O_I = 56,
	O_T = 64,
	O_KEY = 72,
	HDR = 328,
};

static struct qn_minhash_params mp;

/* Document k's exact hash, band keys and id, all derived from k. */
static struct qn_hash128 hash_of(unsigned k)
{
	return qn_xxh3_128(&k, sizeof k, 1);
}

static void keys_of(unsigned k, uint64_t *keys)
{
	for (unsigned b = 0; b < mp.bands; b++)
		keys[b] = qn_xxh3_64(&k, sizeof k, b);
}

static const char *id_of(unsigned k)
{
	static char s[64];

	snprintf(s, sizeof s, "doc-%u", k);
	return s;
}

/* Adds documents [from, to) to both lists. */
static int add_docs(struct cn_dindex *x, unsigned from, unsigned to)
{
	struct qn_err e;
	uint64_t keys[QN_MINHASH_MAX_HASHES];

	for (unsigned k = from; k < to; k++) {
		keys_of(k, keys);
		if (cn_dindex_add_exact(x, hash_of(k), id_of(k), &e) < 0 ||
		    cn_dindex_add_near(x, keys, id_of(k), &e) < 0) {
			printf("  add: %s\n", e.msg);
			return -1;
		}
	}
	return 0;
}

/* 1 when x holds exactly documents [0, n) in both lists, in order. */
static int holds(const struct cn_dindex *x, unsigned n)
{
	uint64_t keys[QN_MINHASH_MAX_HASHES];

	if (cn_dindex_exact_count(x) != n || cn_dindex_near_count(x) != n)
		return 0;
	for (unsigned k = 0; k < n; k++) {
		struct qn_hash128 h = cn_dindex_exact_hash(x, k), w = hash_of(k);
		keys_of(k, keys);
		if (h.hi != w.hi || h.lo != w.lo || strcmp(cn_dindex_exact_id(x, k), id_of(k)) ||
		    strcmp(cn_dindex_near_id(x, k), id_of(k)) ||
		    memcmp(cn_dindex_near_keys(x, k), keys, mp.bands * sizeof *keys))
			return 0;
	}
	return 1;
}

static struct cn_dindex *open_dir(const char *dir, struct qn_err *e)
{
	int locked;

	return cn_dindex_open(dir, "nfc", &mp, &locked, e);
}

/* The image of x equals the file it was committed to. */
static int image_is_file(const struct cn_dindex *x, const char *file)
{
	struct qn_buf b;
	struct qn_err e;
	size_t n;
	unsigned char *f = slurp(file, &n);
	int ok;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	ok = f && cn_dindex_image(x, &b, &e) == 0 && b.len == n && !memcmp(b.data, f, n);
	qn_buf_release(&b);
	free(f);
	return ok;
}

static void test_round_trip(void)
{
	const char *dir = in_top("rt");
	const char *file = in_dir(dir, CN_DINDEX_FILE);
	struct qn_err e;
	int locked = -1;
	struct cn_dindex *x = cn_dindex_open(dir, "nfc", &mp, &locked, &e);

	CHECK_NAMED("open creates the folder", x && locked == 0);
	if (!x) {
		printf("  %s\n", e.msg);
		return;
	}
	CHECK(cn_dindex_exact_count(x) == 0 && cn_dindex_near_count(x) == 0);
	CHECK_NAMED("add 10", add_docs(x, 0, 10) == 0);
	CHECK_NAMED("adds read back before the commit", holds(x, 10));
	CHECK_NAMED("commit", cn_dindex_commit(x, &e) == 0);
	CHECK_NAMED("image equals the file", image_is_file(x, file));
	cn_dindex_close(x);

	/* Header, 10 * (20 exact + 116 near + 4 offset) + 4 + ids, padded, + 8. */
	size_t n;
	unsigned char *f = slurp(file, &n);
	size_t want = HDR + 10 * 16 + 40 + 10 * 8 * 14 + 40 + 48 + 64 + 8;
	CHECK_NAMED("file size: ids shared by both lists", f && n == want);
	if (n != want)
		printf("  size %zu, want %zu\n", n, want);
	free(f);

	x = open_dir(dir, &e);
	CHECK_NAMED("reopen", x != NULL);
	if (!x)
		return;
	CHECK_NAMED("reopened holds the 10", holds(x, 10));
	CHECK_STR("stored key", cn_dindex_exact_key(x), "nfc");
	const struct qn_minhash_params *sp = cn_dindex_near_params(x);
	CHECK_NAMED("stored near parameters", sp && sp->bands == mp.bands && sp->rows == mp.rows &&
						  sp->ngram == mp.ngram && sp->flags == mp.flags &&
						  sp->seed == mp.seed);
	CHECK_NAMED("bytes held cover the file",
		    cn_dindex_bytes(x) >= want && cn_dindex_bytes(x) < want + 4096);
	CHECK_NAMED("add 5 more", add_docs(x, 10, 15) == 0);
	CHECK_NAMED("old then new before the commit", holds(x, 15));
	CHECK_NAMED("commit again", cn_dindex_commit(x, &e) == 0);
	CHECK_NAMED("second commit without adds",
		    cn_dindex_commit(x, &e) == 0 && image_is_file(x, file));
	cn_dindex_close(x);

	x = open_dir(dir, &e);
	CHECK_NAMED("old + new after reopen, in order", x && holds(x, 15));
	CHECK_NAMED("image of a loaded index equals its file", x && image_is_file(x, file));
	cn_dindex_close(x);
	CHECK_NAMED("lock file kept", access(in_dir(dir, "lock"), F_OK) == 0);

	/* An empty index commits and loads. */
	dir = in_top("empty");
	x = open_dir(dir, &e);
	CHECK_NAMED("empty commit", x && cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);
	x = open_dir(dir, &e);
	CHECK_NAMED("empty reopen", x && holds(x, 0));
	cn_dindex_close(x);
	cn_dindex_close(NULL);
}

/* The message of a failed open, "" when it opened. */
static const char *open_msg(const char *dir, const char *key, const struct qn_minhash_params *p,
			    int *locked)
{
	static struct qn_err e;
	struct cn_dindex *x = cn_dindex_open(dir, key, p, locked, &e);

	if (x) {
		cn_dindex_close(x);
		return "";
	}
	return e.msg;
}

static int has(const char *s, const char *sub)
{
	int ok = strstr(s, sub) != NULL;

	if (!ok)
		printf("  [%s] lacks [%s]\n", s, sub);
	return ok;
}

static void test_params(void)
{
	const char *dir = in_top("params");
	struct qn_minhash_params q = mp;
	struct qn_err e;
	int locked = -1;
	char want[8192];
	const char *m;

	struct cn_dindex *x = open_dir(dir, &e);
	CHECK_NAMED("params: build", x && add_docs(x, 0, 3) == 0 && cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);

	q.bands = 20;
	q.rows = 5;
	m = open_msg(dir, "nfc", &q, &locked);
	snprintf(want, sizeof want,
		 "%s: near-dup index built with 14 bands x 8 rows, this run uses 20 x 5; use a new "
		 "--dedup-index folder",
		 in_dir(dir, CN_DINDEX_FILE));
	CHECK_STR("bands and rows refused, both named", m, want);
	CHECK_NAMED("a refusal is not a lock", locked == 0);

	q = mp;
	q.ngram = 3;
	m = open_msg(dir, "nfc", &q, &locked);
	CHECK_NAMED("shingle length refused", has(m, "5-word shingles, this run uses 3"));
	q = mp;
	q.seed = 7;
	m = open_msg(dir, "nfc", &q, &locked);
	CHECK_NAMED("seed refused",
		    has(m, "seed 0x717565726e6d6831, this run uses 0x0000000000000007"));
	q = mp;
	q.flags = QN_MINHASH_CASEFOLD;
	m = open_msg(dir, "nfc", &q, &locked);
	CHECK_NAMED("flags refused", has(m, "flags 15, this run uses 1"));
	m = open_msg(dir, "nfkc", &mp, &locked);
	CHECK_NAMED("exact key refused",
		    has(m, "exact-dup index built with key 'nfc', this run uses "
			   "'nfkc'; use a new --dedup-index folder"));

	q = mp;
	q.bands = 0;
	m = open_msg(in_top("never"), "nfc", &q, &locked);
	CHECK_NAMED("bad parameters refused", has(m, "out of range"));
	CHECK_NAMED("bad parameters create nothing", access(in_top("never"), F_OK) < 0);
	m = open_msg(in_top("never"), "", &mp, &locked);
	CHECK_NAMED("empty key refused", has(m, "want 1 to 255 bytes"));
	char key[300];
	memset(key, 'k', 256);
	key[256] = 0;
	m = open_msg(in_top("never"), key, &mp, &locked);
	CHECK_NAMED("key past 255 bytes refused", has(m, "want 1 to 255 bytes"));
	key[255] = 0;
	memcpy(key, "xxh3_128,normalize:nfc:collapse:uspace:trim:2,", 46);
	x = cn_dindex_open(in_top("longkey"), key, NULL, &locked, &e);
	CHECK_NAMED("255-byte key", x && cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);
	x = cn_dindex_open(in_top("longkey"), NULL, NULL, &locked, &e);
	CHECK_NAMED("255-byte key stored",
		    x && cn_dindex_exact_key(x) && !strcmp(cn_dindex_exact_key(x), key));
	cn_dindex_close(x);

	/* A run without exact dedup keeps the exact entries it cannot add to. */
	x = cn_dindex_open(dir, NULL, &mp, &locked, &e);
	CHECK_NAMED("exact off: opens", x != NULL);
	if (x) {
		uint64_t keys[QN_MINHASH_MAX_HASHES];
		keys_of(3, keys);
		CHECK_NAMED("exact off: stored entries readable", cn_dindex_exact_count(x) == 3);
		CHECK_NAMED("exact off: add refused",
			    cn_dindex_add_exact(x, hash_of(3), id_of(3), &e) < 0 &&
				has(e.msg, "exact dedup is not on"));
		CHECK_NAMED("exact off: near add", cn_dindex_add_near(x, keys, id_of(3), &e) == 0 &&
						       cn_dindex_commit(x, &e) == 0);
		cn_dindex_close(x);
	}
	x = open_dir(dir, &e);
	CHECK_NAMED("exact entries survive a run without exact",
		    x && cn_dindex_exact_count(x) == 3 && cn_dindex_near_count(x) == 4 &&
			!strcmp(cn_dindex_near_id(x, 3), id_of(3)));
	cn_dindex_close(x);

	/* A section the index lacks starts with the first run that uses it. */
	dir = in_top("sections");
	x = cn_dindex_open(dir, "nfc", NULL, &locked, &e);
	CHECK_NAMED("exact only", x && cn_dindex_near_params(x) == NULL &&
				      cn_dindex_add_exact(x, hash_of(0), id_of(0), &e) == 0 &&
				      cn_dindex_add_near(x, (uint64_t[1]){0}, "a", &e) < 0 &&
				      cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);
	q = mp;
	q.bands = 1;
	q.rows = 3;
	x = cn_dindex_open(dir, "nfc", &q, &locked, &e);
	CHECK_NAMED("near section starts",
		    x && cn_dindex_near_params(x) && cn_dindex_near_params(x)->bands == 1 &&
			cn_dindex_add_near(x, (uint64_t[1]){42}, "b", &e) == 0 &&
			cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);
	x = cn_dindex_open(dir, NULL, NULL, &locked, &e);
	CHECK_NAMED("both sections stored", x && cn_dindex_exact_count(x) == 1 &&
						cn_dindex_near_count(x) == 1 &&
						cn_dindex_near_keys(x, 0)[0] == 42 &&
						!strcmp(cn_dindex_near_id(x, 0), "b") &&
						!strcmp(cn_dindex_exact_key(x), "nfc"));
	cn_dindex_close(x);
	m = open_msg(dir, "nfc", &mp, &locked);
	CHECK_NAMED("the started section is then enforced", has(m, "1 bands x 3 rows"));
}

static void test_lock(void)
{
	const char *dir = in_top("lock");
	struct qn_err e;
	int locked = -1;
	char want[128];
	struct cn_dindex *a = open_dir(dir, &e);

	CHECK_NAMED("lock: first open", a != NULL);
	const char *m = open_msg(dir, "nfc", &mp, &locked);
	CHECK_NAMED("second open in the same process is refused", locked == 1);
	snprintf(want, sizeof want, "locked by another quern-clean run (pid %ld)", (long)getpid());
	CHECK_NAMED("message names the holder", has(m, want) && has(m, dir));
	m = open_msg(dir, "nfc", &mp, &locked);
	CHECK_NAMED("a refused open leaves the holder's pid", has(m, want));

	/* Another process sees the lock too. */
	int fd = open(in_dir(dir, "lock"), O_RDONLY);
	CHECK_NAMED("flock from outside conflicts", fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0);
	if (fd >= 0)
		close(fd);

	cn_dindex_close(a);
	a = cn_dindex_open(dir, "nfc", &mp, &locked, &e);
	CHECK_NAMED("open after close", a && locked == 0);
	cn_dindex_close(a);

	/* A corrupt index unlocks on the way out. */
	spit(in_dir(dir, CN_DINDEX_FILE), "junk", 4);
	a = cn_dindex_open(dir, "nfc", &mp, &locked, &e);
	CHECK_NAMED("junk refused", !a && locked == 0 && has(e.msg, "not a quern dedup index"));
	fd = open(in_dir(dir, "lock"), O_RDONLY);
	CHECK_NAMED("failed open released the lock", fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
	if (fd >= 0)
		close(fd);
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Recomputes the trailing checksum, so a test reaches the checks behind it. */
static void reseal(unsigned char *b, size_t n)
{
	put64(b + n - 8, qn_xxh3_64(b, n - 8, 0));
}

/* The parse error of buf[0..n), "" when it parsed. */
static const char *parse_msg(const unsigned char *buf, size_t n)
{
	static struct qn_err e;
	struct cn_dindex *x = cn_dindex_parse(buf, n, "f.qdx", &e);

	if (x) {
		cn_dindex_close(x);
		return "";
	}
	return e.msg;
}

static void test_corruption(void)
{
	const char *dir = in_top("corrupt");
	const char *file = in_dir(dir, CN_DINDEX_FILE);
	struct qn_err e;
	int locked;
	size_t n;

	struct cn_dindex *x = open_dir(dir, &e);
	CHECK_NAMED("corrupt: build", x && add_docs(x, 0, 3) == 0 &&
					  cn_dindex_add_exact(x, hash_of(9), "é", &e) == 0 &&
					  cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);
	unsigned char *good = slurp(file, &n), *b = malloc(n + 8);
	if (!good || !b) {
		CHECK_NAMED("corrupt: read back", 0);
		free(good);
		free(b);
		return;
	}
	CHECK_STR("the good image parses", parse_msg(good, n), "");

	size_t flips = 0, cuts = 0;
	for (size_t i = 0; i < n; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(b, good, n);
			b[i] ^= (unsigned char)(1 << bit);
			flips += *parse_msg(b, n) != 0;
		}
	CHECK_NAMED("every single-bit flip is refused", flips == 8 * n);
	for (size_t k = 0; k < n; k++)
		cuts += *parse_msg(good, k) != 0;
	CHECK_NAMED("every truncation is refused", cuts == n);
	memcpy(b, good, n);
	memset(b + n, 0, 8);
	CHECK_NAMED("trailing bytes refused", has(parse_msg(b, n + 8), "the file has"));

	/* Through the folder: the message names the file, nothing loads. */
	memcpy(b, good, n);
	b[200] ^= 0x40;
	spit(file, b, n);
	x = cn_dindex_open(dir, "nfc", &mp, &locked, &e);
	CHECK_NAMED("flipped byte: checksum error naming the file",
		    !x && has(e.msg, file) && has(e.msg, "checksum mismatch"));
	spit(file, good, n - 20);
	x = cn_dindex_open(dir, "nfc", &mp, &locked, &e);
	CHECK_NAMED("truncated file refused", !x && has(e.msg, file) && has(e.msg, "truncated"));
	spit(file, good, 100);
	x = cn_dindex_open(dir, "nfc", &mp, &locked, &e);
	CHECK_NAMED("header cut refused", !x && has(e.msg, "shorter than the 328-byte header"));
	cn_dindex_close(x);

	/* Counts larger than the file: refused before anything is allocated. */
	static const struct {
		size_t at;
		const char *what;
	} counts[] = {{O_E, "exact entries cannot fit"},
		      {O_N, "near entries cannot fit"},
		      {O_I, "ids cannot fit"},
		      {O_T, "bytes of id text cannot fit"}};
	for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
		uint64_t huge[] = {UINT64_MAX, 1ull << 60, 1ull << 32, n};
		for (size_t h = 0; h < 4; h++) {
			memcpy(b, good, n);
			put64(b + counts[k].at, huge[h]);
			reseal(b, n);
			CHECK_NAMED(counts[k].what, has(parse_msg(b, n), "f.qdx: offset"));
		}
		memcpy(b, good, n);
		put64(b + counts[k].at, 1ull << 40);
		reseal(b, n);
		CHECK_NAMED(counts[k].what, has(parse_msg(b, n), counts[k].what));
	}

	/* Checks behind the checksum, each with a valid checksum. */
	memcpy(b, good, n);
	b[O_VERSION] = 2;
	CHECK_NAMED("newer version",
		    has(parse_msg(b, n), "version 2, this quern-clean reads version 1"));
	memcpy(b, good, n);
	b[HDR + 4 * 16] = 9; /* first exact id number */
	reseal(b, n);
	CHECK_NAMED("id number out of range",
		    has(parse_msg(b, n), "exact entry 0 names id 9 of 4"));
	memcpy(b, good, n);
	b[HDR + 4 * 16 + 4 * 4 + 3 * 14 * 8 + 3 * 4] = 1; /* padding after the near ids */
	reseal(b, n);
	CHECK_NAMED("padding not zero", has(parse_msg(b, n), "padding is not zero"));
	size_t text = n - 8 - 24; /* "doc-0\0doc-1\0doc-2\0é\0" padded to 24 */
	memcpy(b, good, n);
	CHECK_NAMED("test knows where the ids are", !memcmp(b + text, "doc-0", 6));
	b[text + 2] = 0;
	reseal(b, n);
	CHECK_NAMED("NUL inside an id", has(parse_msg(b, n), "contains a NUL"));
	memcpy(b, good, n);
	b[text + 2] = (char)0xff;
	reseal(b, n);
	CHECK_NAMED("invalid UTF-8 id", has(parse_msg(b, n), "id 0 is not valid UTF-8"));
	memcpy(b, good, n);
	b[O_KEY + 1] = 'z'; /* "nzc": still printable */
	reseal(b, n);
	CHECK_NAMED("another key parses", *parse_msg(b, n) == 0);
	b[O_KEY + 1] = 1;
	reseal(b, n);
	CHECK_NAMED("unprintable key", has(parse_msg(b, n), "not printable"));
	memcpy(b, good, n);
	b[O_ROWS] = 65; /* 14 bands x 65 rows */
	reseal(b, n);
	CHECK_NAMED("near parameters out of range", has(parse_msg(b, n), "out of range"));
	memcpy(b, good, n);
	b[O_SECTIONS] = 1; /* near section bit cleared, near entries remain */
	reseal(b, n);
	CHECK_NAMED("entries of an absent section", has(parse_msg(b, n), "without a near section"));
	CHECK_NAMED("empty input",
		    has(parse_msg(b, 0), "f.qdx: offset 0: not a quern dedup index"));

	spit(file, good, n);
	x = open_dir(dir, &e);
	CHECK_NAMED("the good file still opens", x && cn_dindex_exact_count(x) == 4);
	cn_dindex_close(x);
	free(good);
	free(b);
}

static int no_temp_left(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ok = d != NULL;

	while (d && (de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp"))
			ok = 0;
	if (d)
		closedir(d);
	return ok;
}

static void test_commit_failure(void)
{
	const char *dir = in_top("fail");
	const char *file = in_dir(dir, CN_DINDEX_FILE);
	struct qn_err e;
	size_t n, n2;

	struct cn_dindex *x = open_dir(dir, &e);
	CHECK_NAMED("fail: build", x && add_docs(x, 0, 20) == 0 && cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);
	unsigned char *old = slurp(file, &n);

	/*
	 * A file size limit holds for root too: the write of the new index
	 * fails with EFBIG half way. Nothing may print while it is lowered.
	 */
	x = open_dir(dir, &e);
	CHECK_NAMED("fail: add 200", x && add_docs(x, 20, 220) == 0);
	if (x && old) {
		struct rlimit was, low;
		void (*sig)(int) = signal(SIGXFSZ, SIG_IGN);
		int rc = -2;
		fflush(stdout);
		getrlimit(RLIMIT_FSIZE, &was);
		low = was;
		low.rlim_cur = n + 100;
		if (setrlimit(RLIMIT_FSIZE, &low) == 0) {
			rc = cn_dindex_commit(x, &e);
			setrlimit(RLIMIT_FSIZE, &was);
		}
		signal(SIGXFSZ, sig);
		CHECK_NAMED("commit past the file size limit fails", rc == -1);
		if (rc == -1)
			printf("  (%s)\n", e.msg);
		unsigned char *now = slurp(file, &n2);
		CHECK_NAMED("the old index is intact", now && n2 == n && !memcmp(now, old, n));
		free(now);
		CHECK_NAMED("no temporary file left", no_temp_left(dir));
		CHECK_NAMED("the adds are still there", holds(x, 220));
		CHECK_NAMED("a retry commits", cn_dindex_commit(x, &e) == 0);
	}
	cn_dindex_close(x);
	x = open_dir(dir, &e);
	CHECK_NAMED("retried commit holds all", x && holds(x, 220));
	cn_dindex_close(x);

	/* A read-only folder stops root from nothing: skip it there. */
	if (geteuid() == 0) {
		printf("skip: read-only folder check (running as root)\n");
	} else {
		free(old);
		old = slurp(file, &n);
		x = open_dir(dir, &e);
		CHECK_NAMED("ro: add", x && add_docs(x, 220, 230) == 0);
		chmod(dir, 0555);
		CHECK_NAMED("commit into a read-only folder fails",
			    x && cn_dindex_commit(x, &e) == -1 && has(e.msg, "cannot create"));
		chmod(dir, 0755);
		unsigned char *now = slurp(file, &n2);
		CHECK_NAMED("ro: the old index is intact", now && n2 == n && !memcmp(now, old, n));
		free(now);
		cn_dindex_close(x);
	}
	free(old);

	/* A parsed index has no folder. */
	struct cn_dindex *p = NULL;
	old = slurp(file, &n);
	if (old)
		p = cn_dindex_parse(old, n, "mem", &e);
	CHECK_NAMED("parsed index cannot commit",
		    p && cn_dindex_commit(p, &e) < 0 && has(e.msg, "no folder"));
	CHECK_NAMED("parsed index cannot add",
		    p && cn_dindex_add_exact(p, hash_of(0), "x", &e) < 0);
	cn_dindex_close(p);
	free(old);
}

/* A 60 KiB id: quotes, backslashes and some UTF-8. */
static void make_long(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = "ab\"\\c"[i % 5];
	memcpy(s + 100, "é€😀", strlen("é€😀"));
	s[n] = 0;
}

static void test_ids(void)
{
	const char *dir = in_top("ids");
	struct qn_err e;
	size_t big = 60 * 1024;
	char *long_id = malloc(CN_DINDEX_ID_MAX + 2);
	static const char *ids[] = {
	    "he said \"hi\", then 'bye' \\ \t {\"json\": [1]}",
	    "日本語のID-ü-😀-\xe2\x80\x8b",
	    "",
	    NULL, /* the 60 KiB one */
	    NULL, /* CN_DINDEX_ID_MAX bytes */
	};
	if (!long_id)
		return;
	make_long(long_id, big);

	struct cn_dindex *x = open_dir(dir, &e);
	if (!x) {
		CHECK_NAMED("ids: open", 0);
		free(long_id);
		return;
	}
	uint64_t keys[QN_MINHASH_MAX_HASHES];
	int ok = 1;
	for (unsigned k = 0; k < 5; k++) {
		const char *id = ids[k];
		if (k == 3)
			id = long_id;
		if (k == 4) {
			char *max = malloc(CN_DINDEX_ID_MAX + 1);
			memset(max, 'm', CN_DINDEX_ID_MAX);
			max[CN_DINDEX_ID_MAX] = 0;
			id = max;
		}
		keys_of(k, keys);
		ok &= cn_dindex_add_exact(x, hash_of(k), id, &e) == 0;
		ok &= cn_dindex_add_near(x, keys, id, &e) == 0;
		if (k == 4)
			free((char *)id);
	}
	CHECK_NAMED("awkward ids added", ok);
	memset(long_id, 'z', CN_DINDEX_ID_MAX + 1);
	long_id[CN_DINDEX_ID_MAX + 1] = 0;
	CHECK_NAMED("id past the maximum refused",
		    cn_dindex_add_exact(x, hash_of(0), long_id, &e) < 0 &&
			has(e.msg, "longer than"));
	CHECK_NAMED("invalid UTF-8 id refused", cn_dindex_add_near(x, keys, "bad\xff", &e) < 0 &&
						    has(e.msg, "not valid UTF-8"));
	CHECK_NAMED("ids: commit", cn_dindex_commit(x, &e) == 0);
	cn_dindex_close(x);

	make_long(long_id, big); /* again, to compare */
	x = open_dir(dir, &e);
	CHECK_NAMED("ids: reopen",
		    x && cn_dindex_exact_count(x) == 5 && cn_dindex_near_count(x) == 5);
	if (x) {
		CHECK_STR("quotes and backslashes", cn_dindex_exact_id(x, 0), ids[0]);
		CHECK_STR("UTF-8", cn_dindex_near_id(x, 1), ids[1]);
		CHECK_STR("empty id", cn_dindex_exact_id(x, 2), "");
		CHECK_NAMED("60 KiB id", !strcmp(cn_dindex_near_id(x, 3), long_id) &&
					     strlen(cn_dindex_exact_id(x, 3)) == big);
		CHECK_NAMED("64 KiB id", strlen(cn_dindex_near_id(x, 4)) == CN_DINDEX_ID_MAX);
		/* Both lists name the same stored string: shared, not copied. */
		CHECK_NAMED("id stored once", cn_dindex_exact_id(x, 3) == cn_dindex_near_id(x, 3));
	}
	cn_dindex_close(x);
	free(long_id);
}

static void test_folder(void)
{
	struct qn_err e;
	int locked;
	const char *dir = in_top("stale");
	struct cn_dindex *x = open_dir(dir, &e);

	cn_dindex_close(x);
	spit(in_dir(dir, ".index.qdx.tmpAbC123"), "half", 4);
	spit(in_dir(dir, "keep.txt"), "mine", 4);
	x = open_dir(dir, &e);
	CHECK_NAMED("stale temporary file removed",
		    x && access(in_dir(dir, ".index.qdx.tmpAbC123"), F_OK) < 0 &&
			access(in_dir(dir, "keep.txt"), F_OK) == 0);
	cn_dindex_close(x);

	spit(in_top("plain"), "x", 1);
	x = cn_dindex_open(in_top("plain"), "nfc", &mp, &locked, &e);
	CHECK_NAMED("a file is not a folder", !x && locked == 0 && has(e.msg, "plain"));
	x = cn_dindex_open(in_top("no/such/parent"), "nfc", &mp, &locked, &e);
	CHECK_NAMED("missing parent", !x && has(e.msg, "cannot create"));
	dir = in_top("dirindex");
	mkdir(dir, 0777);
	mkdir(in_dir(dir, CN_DINDEX_FILE), 0777);
	x = cn_dindex_open(dir, "nfc", &mp, &locked, &e);
	CHECK_NAMED("index that is a folder", !x && has(e.msg, "cannot read"));
}

int main(void)
{

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (make_top("test_dindex") < 0)
		return 1;
	qn_minhash_params_default(&mp);
	test_round_trip();
	test_params();
	test_lock();
	test_corruption();
	test_commit_failure();
	test_ids();
	test_folder();
	rm_rf(top);
	return CHECK_DONE();
}
