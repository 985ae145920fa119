/*
 * test_rdwr.c - lib/rd and lib/wr: atomic and compressed output, and input
 * that decompresses transparently.
 *
 * Independent references: libzstd and zlib called directly to make and to
 * check compressed files, qn_sha256_file (checked in test_hash) for hashes,
 * and the folder listing for leftover temporary files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "hash.h"
#include "rd.h"
#include "testfs.h"
#include "wr.h"

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		printf("FAIL: cannot write test file %s\n", path);
		exit(1);
	}
}

static char *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	struct qn_buf b;
	char tmp[65536];
	size_t k;

	if (!f)
		return NULL;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
		qn_buf_add(&b, tmp, k);
	fclose(f);
	return qn_buf_detach(&b, n);
}

/* Entries in the test folder, with the names in `names` (space separated). */
static int count_entries(char *names, size_t cap)
{
	DIR *d = opendir(top);
	struct dirent *de;
	int n = 0;

	names[0] = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		size_t l = strlen(names);
		snprintf(names + l, cap - l, "%s ", de->d_name);
	}
	closedir(d);
	return n;
}

static void clean_dir(void)
{
	DIR *d = opendir(top);
	struct dirent *de;

	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlink(in_top(de->d_name));
	closedir(d);
}

/* Deterministic text: lines of 0..2999 bytes ending in '\n'. */
static char *make_lines(size_t target, size_t *n, size_t *nlines)
{
	struct qn_buf b;
	uint32_t x = 2463534242u;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	*nlines = 0;
	while (b.len < target) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		size_t len = x % 3000;
		qn_buf_printf(&b, "%zu:", *nlines);
		for (size_t i = 0; i < len; i++)
			qn_buf_addc(&b, (char)('a' + (i + *nlines) % 26));
		qn_buf_addc(&b, '\n');
		(*nlines)++;
	}
	return qn_buf_detach(&b, n);
}

/* Decoded contents of a file through qn_rd_read in odd-sized reads. */
static char *rd_all(const char *path, int flags, size_t *n, char *codec, int *rc, struct qn_err *e)
{
	struct qn_rd *r = qn_rd_open(path, flags, e);
	struct qn_buf b;
	char tmp[7919];
	ssize_t k;
	size_t step = 1;

	*rc = -1;
	if (!r)
		return NULL;
	qn_buf_init(&b, QN_BUF_UNLIMITED);
	for (;;) {
		k = qn_rd_read(r, tmp, step, e);
		if (k <= 0)
			break;
		qn_buf_add(&b, tmp, (size_t)k);
		step = step * 2 + 1 > sizeof tmp ? 3 : step * 2 + 1;
	}
	*rc = (int)k;
	if (codec)
		snprintf(codec, 8, "%s", qn_rd_codec(r));
	qn_rd_close(r);
	return qn_buf_detach(&b, n);
}

/* zstd-decompresses a whole file with libzstd directly. */
static char *zstd_file(const char *path, size_t *n)
{
	size_t cn;
	char *c = read_file(path, &cn);
	ZSTD_DStream *ds = ZSTD_createDStream();
	struct qn_buf b;
	char out[65536];
	ZSTD_inBuffer in = {c, cn, 0};
	size_t z = 1;

	qn_buf_init(&b, QN_BUF_UNLIMITED);
	ZSTD_initDStream(ds);
	while (in.pos < in.size || z != 0) {
		ZSTD_outBuffer o = {out, sizeof out, 0};
		z = ZSTD_decompressStream(ds, &o, &in);
		if (ZSTD_isError(z)) {
			qn_buf_release(&b);
			b.data = NULL;
			break;
		}
		qn_buf_add(&b, out, o.pos);
		if (in.pos == in.size && o.pos < sizeof out && z != 0) {
			qn_buf_release(&b); /* truncated */
			break;
		}
	}
	ZSTD_freeDStream(ds);
	free(c);
	if (!b.data)
		return NULL;
	return qn_buf_detach(&b, n);
}

static int same(const char *a, size_t an, const char *b, size_t bn)
{
	return a && b && an == bn && !memcmp(a, b, an);
}

static int sha_matches(const char *path, const char *sha)
{
	char hex[65];
	struct qn_err e;

	return qn_sha256_file(path, hex, NULL, &e) == 0 && !strcmp(hex, sha);
}

static void test_wr_plain(void)
{
	struct qn_err e = {{0}};
	struct qn_wr_info info;
	char names[1024];
	size_t n, got_n;
	const char *path = in_top("out.txt");
	char *data = malloc(300000), *got;

	for (size_t i = 0; i < 300000; i++)
		data[i] = (char)(i % 251);
	struct qn_wr *w = qn_wr_open(path, 0, &e);
	CHECK_NAMED("wr_open plain", w != NULL);
	if (!w)
		return;
	CHECK_STR("wr_name is the target path", qn_wr_name(w), path);
	/* Uneven writes, some crossing the 128 KiB staging buffer. */
	size_t off = 0, step = 1, ok = 1;
	while (off < 300000) {
		size_t k = step < 300000 - off ? step : 300000 - off;
		if (qn_wr_write(w, data + off, k, &e) < 0)
			ok = 0;
		off += k;
		step = step * 5 + 3;
	}
	CHECK_NAMED("wr_write in pieces", ok);
	CHECK_NAMED("target absent before commit", access(path, F_OK) != 0);
	CHECK_NAMED("one temp file while writing", count_entries(names, sizeof names) == 1);
	CHECK_NAMED("temp file is hidden beside the target",
		    names[0] == '.' && strstr(names, "out.txt") != NULL);
	CHECK_NAMED("wr_commit ok", qn_wr_commit(w, &info, &e) == 0);
	got = read_file(path, &got_n);
	CHECK_NAMED("committed file has the bytes written", same(got, got_n, data, 300000));
	CHECK_NAMED("info.bytes is the stored size", info.bytes == 300000);
	CHECK_NAMED("info.sha256 equals sha256 of the file", sha_matches(path, info.sha256));
	CHECK_NAMED("no temp file left after commit",
		    count_entries(names, sizeof names) == 1 && !strcmp(names, "out.txt "));
	struct stat st;
	mode_t um = umask(0);
	umask(um);
	CHECK_NAMED("committed file mode follows umask",
		    stat(path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~um));
	free(got);

	/* Overwriting an existing file replaces it whole. */
	w = qn_wr_open(path, 0, &e);
	qn_wr_write(w, "short\n", 6, &e);
	CHECK_NAMED("rewrite commit ok", qn_wr_commit(w, &info, &e) == 0);
	got = read_file(path, &n);
	CHECK_NAMED("rewrite replaces contents", same(got, n, "short\n", 6));
	CHECK_NAMED("rewrite info", info.bytes == 6 && sha_matches(path, info.sha256));
	free(got);

	/* An empty output is a real, empty file. */
	w = qn_wr_open(in_top("empty.txt"), 0, &e);
	CHECK_NAMED("empty commit ok", w && qn_wr_commit(w, &info, &e) == 0);
	CHECK_NAMED("empty file exists and is empty",
		    stat(in_top("empty.txt"), &st) == 0 && st.st_size == 0);
	CHECK_STR("empty info sha256", info.sha256,
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_NAMED("empty info bytes", info.bytes == 0);

	/* QN_WR_PLAIN beats the .zst suffix. */
	w = qn_wr_open(in_top("plain.zst"), QN_WR_PLAIN, &e);
	qn_wr_write(w, "hello", 5, &e);
	qn_wr_commit(w, NULL, &e);
	got = read_file(in_top("plain.zst"), &n);
	CHECK_NAMED("QN_WR_PLAIN writes .zst uncompressed", same(got, n, "hello", 5));
	free(got);

	/* qn_write_file_atomic. */
	CHECK_NAMED("write_file_atomic ok",
		    qn_write_file_atomic(in_top("atomic.txt"), "x\ny\n", 4, &e) == 0);
	got = read_file(in_top("atomic.txt"), &n);
	CHECK_NAMED("write_file_atomic contents", same(got, n, "x\ny\n", 4));
	free(got);
	free(data);
	clean_dir();
}

static void test_wr_zstd(void)
{
	struct qn_err e = {{0}};
	struct qn_wr_info info;
	size_t n, nlines, got_n;
	char *text = make_lines(5 << 20, &n, &nlines), *got, codec[8];
	const char *path = in_top("big.jsonl.zst");
	int rc;

	struct qn_wr *w = qn_wr_open(path, 0, &e);
	CHECK_NAMED("wr_open .zst", w != NULL);
	if (!w)
		return;
	CHECK_NAMED("wr_write 5 MB", qn_wr_write(w, text, n, &e) == 0);
	CHECK_NAMED("wr_commit .zst", qn_wr_commit(w, &info, &e) == 0);
	got = read_file(path, &got_n);
	CHECK_NAMED(".zst output starts with zstd magic 28 B5 2F FD",
		    got && got_n >= 4 && !memcmp(got, "\x28\xB5\x2F\xFD", 4));
	CHECK_NAMED(".zst output is smaller than the input", got_n < n);
	CHECK_NAMED(".zst info.bytes is the compressed size", info.bytes == got_n);
	CHECK_NAMED(".zst info.sha256 is of the stored bytes", sha_matches(path, info.sha256));
	free(got);
	got = zstd_file(path, &got_n);
	CHECK_NAMED(".zst decompresses with libzstd to the input", same(got, got_n, text, n));
	free(got);
	got = rd_all(path, 0, &got_n, codec, &rc, &e);
	CHECK_NAMED(".zst reads back through qn_rd without error", rc == 0);
	if (rc)
		printf("  error: %s\n", e.msg);
	CHECK_NAMED(".zst reads back identical through qn_rd", same(got, got_n, text, n));
	CHECK_STR(".zst codec", codec, "zstd");
	free(got);

	/* Lines across the 128 KiB decode buffer boundaries. */
	struct qn_rd *r = qn_rd_open(path, 0, &e);
	struct qn_buf line;
	size_t i = 0, lines = 0, bad = 0;
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while ((rc = qn_rd_line(r, &line, 1 << 20, &e)) == 1) {
		const char *nl = memchr(text + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - (text + i)) : n - i;
		if (line.len != len || memcmp(line.data, text + i, len))
			bad++;
		i += len + 1;
		lines++;
	}
	CHECK_NAMED(".zst rd_line reaches the end cleanly", rc == 0);
	CHECK_NAMED(".zst rd_line: every line matches", bad == 0 && lines == nlines);
	qn_rd_close(r);
	qn_buf_release(&line);

	/* QN_WR_ZSTD compresses without the suffix; QN_RD_RAW leaves it alone. */
	w = qn_wr_open(in_top("forced.bin"), QN_WR_ZSTD, &e);
	qn_wr_write(w, "forced compression", 18, &e);
	qn_wr_commit(w, &info, &e);
	got = read_file(in_top("forced.bin"), &got_n);
	CHECK_NAMED("QN_WR_ZSTD compresses",
		    got && got_n >= 4 && !memcmp(got, "\x28\xB5\x2F\xFD", 4));
	char *raw = rd_all(in_top("forced.bin"), QN_RD_RAW, &n, codec, &rc, &e);
	CHECK_NAMED("QN_RD_RAW returns the stored bytes", same(raw, n, got, got_n));
	CHECK_STR("QN_RD_RAW codec none", codec, "none");
	free(raw);
	free(got);
	got = rd_all(in_top("forced.bin"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("QN_WR_ZSTD output reads back",
		    rc == 0 && same(got, got_n, "forced compression", 18));
	free(got);
	free(text);
	clean_dir();
}

/* One highly compressible input: the decoder holds far more than it reads. */
static void test_rd_compressible(void)
{
	struct qn_err e = {{0}};
	size_t n = 5 << 20, got_n;
	char *data = malloc(n), *got;
	int rc;

	memset(data, 'a', n);
	for (size_t i = 4095; i < n; i += 4096)
		data[i] = '\n';
	/* zstd via libzstd directly, one frame with a checksum. */
	size_t cap = ZSTD_compressBound(n);
	char *c = malloc(cap);
	size_t cn = ZSTD_compress(c, cap, data, n, 19);
	write_file(in_top("same.zst"), c, cn);
	got = rd_all(in_top("same.zst"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("5 MB compressible zstd (one-shot frame) reads without error", rc == 0);
	if (rc)
		printf("  error: %s (compressed %zu bytes)\n", e.msg, cn);
	CHECK_NAMED("5 MB compressible zstd reads back identical", same(got, got_n, data, n));
	free(got);
	free(c);

	/* gzip via zlib's gzwrite. */
	gzFile gz = gzopen(in_top("same.gz"), "wb9");
	gzwrite(gz, data, (unsigned)n);
	gzclose(gz);
	got = rd_all(in_top("same.gz"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("5 MB compressible gzip reads without error", rc == 0);
	if (rc)
		printf("  error: %s\n", e.msg);
	CHECK_NAMED("5 MB compressible gzip reads back identical", same(got, got_n, data, n));
	free(got);

	/* The same through qn_wr's streaming compressor. */
	struct qn_wr *w = qn_wr_open(in_top("same2.zst"), 0, &e);
	qn_wr_write(w, data, n, &e);
	qn_wr_commit(w, NULL, &e);
	got = rd_all(in_top("same2.zst"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("5 MB compressible qn_wr .zst reads without error", rc == 0);
	if (rc)
		printf("  error: %s\n", e.msg);
	CHECK_NAMED("5 MB compressible qn_wr .zst reads back identical", same(got, got_n, data, n));
	free(got);
	free(data);
	clean_dir();
}

static void test_rd_gzip(void)
{
	struct qn_err e = {{0}};
	size_t n, nlines, got_n;
	char *text = make_lines(3 << 20, &n, &nlines), *got, codec[8];
	int rc;

	gzFile gz = gzopen(in_top("in.gz"), "wb6");
	CHECK_NAMED("gzopen", gz != NULL);
	gzwrite(gz, text, (unsigned)n);
	gzclose(gz);
	got = rd_all(in_top("in.gz"), 0, &got_n, codec, &rc, &e);
	CHECK_NAMED("gzip reads without error", rc == 0);
	CHECK_NAMED("gzip reads back identical", same(got, got_n, text, n));
	CHECK_STR("gzip codec", codec, "gzip");
	free(got);

	/* Two members, as `cat a.gz b.gz` makes. */
	gz = gzopen(in_top("two.gz"), "wb");
	gzwrite(gz, "first member\n", 13);
	gzclose(gz);
	gz = gzopen(in_top("two.gz"), "ab");
	gzwrite(gz, "second member\n", 14);
	gzclose(gz);
	got = rd_all(in_top("two.gz"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("concatenated gzip members read in full",
		    rc == 0 && same(got, got_n, "first member\nsecond member\n", 27));
	free(got);

	/* Truncated gzip: an error, not a short success. */
	size_t cn;
	char *c = read_file(in_top("in.gz"), &cn);
	write_file(in_top("cut.gz"), c, cn / 2);
	got = rd_all(in_top("cut.gz"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("truncated gzip gives an error", rc == -1);
	CHECK_NAMED("truncated gzip message names the file", strstr(e.msg, "cut.gz") != NULL);
	free(got);
	write_file(in_top("cut.gz"), c, cn - 4); /* only the trailer's size is gone */
	got = rd_all(in_top("cut.gz"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("gzip missing its trailer gives an error", rc == -1);
	free(got);
	/* A gzip stream with a corrupted body. */
	c[cn / 2] ^= 0x55;
	c[cn / 2 + 1] ^= 0x55;
	write_file(in_top("bad.gz"), c, cn);
	got = rd_all(in_top("bad.gz"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("corrupted gzip gives an error", rc == -1);
	free(got);
	free(c);
	free(text);
	clean_dir();
}

static void test_rd_zstd_frames(void)
{
	struct qn_err e = {{0}};
	char a[2000], b[3000], cat[16384], *got;
	size_t got_n, an, bn;
	int rc;

	memset(a, 'A', sizeof a);
	for (size_t i = 0; i < sizeof b; i++)
		b[i] = (char)('0' + i % 10);
	an = ZSTD_compress(cat, sizeof cat, a, sizeof a, 3);
	bn = ZSTD_compress(cat + an, sizeof cat - an, b, sizeof b, 3);
	write_file(in_top("frames.zst"), cat, an + bn);
	got = rd_all(in_top("frames.zst"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("concatenated zstd frames read without error", rc == 0);
	CHECK_NAMED("concatenated zstd frames: length", got_n == sizeof a + sizeof b);
	CHECK_NAMED("concatenated zstd frames: contents", got && got_n == sizeof a + sizeof b &&
							      !memcmp(got, a, sizeof a) &&
							      !memcmp(got + sizeof a, b, sizeof b));
	free(got);

	/* Truncated at several places: always an error. */
	size_t cuts[] = {4, 10, an - 1, an + 5, an + bn - 1};
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		char nm[80];
		write_file(in_top("cut.zst"), cat, cuts[i]);
		e.msg[0] = 0;
		got = rd_all(in_top("cut.zst"), 0, &got_n, NULL, &rc, &e);
		snprintf(nm, sizeof nm, "zstd truncated to %zu of %zu bytes gives an error",
			 cuts[i], an + bn);
		CHECK_NAMED(nm, rc == -1);
		free(got);
	}
	CHECK_NAMED("truncated zstd message names the file", strstr(e.msg, "cut.zst") != NULL);

	/* A truncated stream from qn_wr itself (the last bytes lost). */
	struct qn_wr *w = qn_wr_open(in_top("w.zst"), 0, &e);
	size_t n, nl;
	char *text = make_lines(400000, &n, &nl), *c;
	qn_wr_write(w, text, n, &e);
	qn_wr_commit(w, NULL, &e);
	size_t cn;
	c = read_file(in_top("w.zst"), &cn);
	write_file(in_top("w.zst"), c, cn - 3);
	struct qn_rd *r = qn_rd_open(in_top("w.zst"), 0, &e);
	struct qn_buf line;
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while ((rc = qn_rd_line(r, &line, 1 << 20, &e)) == 1)
		;
	CHECK_NAMED("truncated zstd via rd_line gives -1, not end of input", rc == -1);
	qn_rd_close(r);
	qn_buf_release(&line);

	/* Garbage after the zstd magic. */
	memcpy(cat + 4, "this is not a zstd frame at all", 31);
	write_file(in_top("junk.zst"), cat, 35);
	got = rd_all(in_top("junk.zst"), 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("corrupt zstd gives an error", rc == -1);
	free(got);
	free(c);
	free(text);
	clean_dir();
}

static void test_wr_abort_finish(void)
{
	struct qn_err e = {{0}};
	struct qn_wr_info info, info2;
	char names[1024], *got;
	size_t n;
	const char *path = in_top("keep.txt");

	write_file(path, "old version\n", 12);
	struct qn_wr *w = qn_wr_open(path, 0, &e);
	qn_wr_write(w, "new data that never lands\n", 26, &e);
	CHECK_NAMED("temp file exists before abort", count_entries(names, sizeof names) == 2);
	qn_wr_abort(w);
	got = read_file(path, &n);
	CHECK_NAMED("abort keeps the earlier version", same(got, n, "old version\n", 12));
	free(got);
	CHECK_NAMED("abort leaves no temp file",
		    count_entries(names, sizeof names) == 1 && !strcmp(names, "keep.txt "));
	qn_wr_abort(NULL); /* accepted like free(NULL) */

	/* Abort of a new file: nothing at all remains. */
	w = qn_wr_open(in_top("never.zst"), 0, &e);
	qn_wr_write(w, "x", 1, &e);
	qn_wr_abort(w);
	CHECK_NAMED("abort of a new .zst leaves nothing",
		    count_entries(names, sizeof names) == 1 &&
			access(in_top("never.zst"), F_OK) != 0);

	/* finish, then commit. */
	w = qn_wr_open(path, 0, &e);
	qn_wr_write(w, "v2\n", 3, &e);
	CHECK_NAMED("finish ok", qn_wr_finish(w, &info, &e) == 0);
	CHECK_NAMED("finish fills info.bytes", info.bytes == 3);
	char want[65];
	qn_sha256_hex("v2\n", 3, want);
	CHECK_STR("finish fills info.sha256", info.sha256, want);
	got = read_file(path, &n);
	CHECK_NAMED("after finish the old version is still in place",
		    same(got, n, "old version\n", 12));
	free(got);
	CHECK_NAMED("write after finish fails", qn_wr_write(w, "late", 4, &e) == -1);
	CHECK_NAMED("write after finish says so", strstr(e.msg, "finished") != NULL);
	CHECK_NAMED("finish twice is fine",
		    qn_wr_finish(w, &info2, &e) == 0 && !strcmp(info.sha256, info2.sha256));
	memset(&info2, 0, sizeof info2);
	CHECK_NAMED("commit after finish ok", qn_wr_commit(w, &info2, &e) == 0);
	CHECK_NAMED("commit reports the finish info",
		    info2.bytes == 3 && !strcmp(info2.sha256, info.sha256));
	got = read_file(path, &n);
	CHECK_NAMED("commit after finish puts the new version in place", same(got, n, "v2\n", 3));
	free(got);
	CHECK_NAMED("no temp file after finish+commit", count_entries(names, sizeof names) == 1);

	/* finish, then abort: the finished temp file goes too. */
	w = qn_wr_open(path, 0, &e);
	qn_wr_write(w, "v3\n", 3, &e);
	qn_wr_finish(w, &info, &e);
	qn_wr_abort(w);
	got = read_file(path, &n);
	CHECK_NAMED("finish+abort keeps the previous version", same(got, n, "v2\n", 3));
	free(got);
	CHECK_NAMED("finish+abort leaves no temp file", count_entries(names, sizeof names) == 1);
	clean_dir();
}

static void test_wr_errors(void)
{
	struct qn_err e = {{0}};
	struct qn_wr_info info;
	struct qn_wr *w;

	/* /dev/full: a small write is buffered, so commit must report it. */
	w = qn_wr_open("/dev/full", 0, &e);
	CHECK_NAMED("wr_open /dev/full", w != NULL);
	if (w) {
		CHECK_NAMED("small write to /dev/full is buffered",
			    qn_wr_write(w, "abc", 3, &e) == 0);
		e.msg[0] = 0;
		CHECK_NAMED("commit to /dev/full fails", qn_wr_commit(w, &info, &e) == -1);
		CHECK_NAMED("/dev/full message names the file", strstr(e.msg, "/dev/full") != NULL);
		CHECK_NAMED("/dev/full message gives the reason",
			    strstr(e.msg, strerror(ENOSPC)) != NULL);
	}
	/* A write bigger than the staging buffer fails in qn_wr_write itself. */
	w = qn_wr_open("/dev/full", 0, &e);
	if (w) {
		size_t n = 1 << 20;
		char *big = calloc(1, n);
		e.msg[0] = 0;
		CHECK_NAMED("big write to /dev/full fails", qn_wr_write(w, big, n, &e) == -1);
		CHECK_NAMED("big write to /dev/full message", strstr(e.msg, "/dev/full") != NULL);
		qn_wr_abort(w);
		free(big);
	}
	/* And compressed. */
	w = qn_wr_open("/dev/full", QN_WR_ZSTD, &e);
	if (w) {
		qn_wr_write(w, "abc", 3, &e);
		CHECK_NAMED("zstd commit to /dev/full fails", qn_wr_commit(w, &info, &e) == -1);
	}
	/* Nonexistent folder; a folder as the target. */
	e.msg[0] = 0;
	w = qn_wr_open(in_top("no/such/dir/out.txt"), 0, &e);
	CHECK_NAMED("wr_open in a missing folder fails", w == NULL);
	CHECK_NAMED("missing folder message names the path", strstr(e.msg, "out.txt") != NULL);
	if (w)
		qn_wr_abort(w);
	e.msg[0] = 0;
	w = qn_wr_open(top, 0, &e);
	CHECK_NAMED("wr_open on a folder fails", w == NULL);
	CHECK_NAMED("folder message", strstr(e.msg, "directory") != NULL);
	if (w)
		qn_wr_abort(w);
}

static void test_rd_lines(void)
{
	struct qn_err e = {{0}};
	struct qn_buf line;
	struct qn_rd *r;
	char big[200];
	const char *p = in_top("lines.txt");

	memset(big, 'x', sizeof big);
	struct qn_buf f;
	qn_buf_init(&f, QN_BUF_UNLIMITED);
	qn_buf_adds(&f, "short\n");
	qn_buf_add(&f, big, 100);
	qn_buf_adds(&f, "\nafter\n\ncrlf\r\n");
	qn_buf_add(&f, big, 50); /* exactly max */
	qn_buf_adds(&f, "\nlast");
	write_file(p, f.data, f.len);
	qn_buf_release(&f);

	qn_buf_init(&line, QN_BUF_UNLIMITED);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("rd_open lines", r != NULL);
	CHECK_NAMED("line 1", qn_rd_line(r, &line, 50, &e) == 1 && !strcmp(line.data, "short"));
	CHECK_NAMED("line 2 too long", qn_rd_line(r, &line, 50, &e) == QN_RD_TOOLONG);
	int rc = qn_rd_line(r, &line, 50, &e);
	CHECK_NAMED("line after a too-long one is read", rc == 1);
	CHECK_STR("line after a too-long one", line.data, "after");
	CHECK_NAMED("empty line", qn_rd_line(r, &line, 50, &e) == 1 && line.len == 0);
	CHECK_NAMED("CRLF line keeps its CR",
		    qn_rd_line(r, &line, 50, &e) == 1 && !strcmp(line.data, "crlf\r"));
	CHECK_NAMED("line of exactly max bytes",
		    qn_rd_line(r, &line, 50, &e) == 1 && line.len == 50);
	CHECK_NAMED("final line without newline",
		    qn_rd_line(r, &line, 50, &e) == 1 && !strcmp(line.data, "last"));
	CHECK_NAMED("end of input", qn_rd_line(r, &line, 50, &e) == 0);
	CHECK_NAMED("end of input again", qn_rd_line(r, &line, 50, &e) == 0);
	qn_rd_close(r);

	/* Too long and last, without a newline. */
	write_file(p, big, 200);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("too-long final line", qn_rd_line(r, &line, 50, &e) == QN_RD_TOOLONG);
	CHECK_NAMED("then end", qn_rd_line(r, &line, 50, &e) == 0);
	qn_rd_close(r);

	/* Empty file. */
	write_file(p, "", 0);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("empty file: no line", qn_rd_line(r, &line, 50, &e) == 0);
	CHECK_STR("empty file codec none", qn_rd_codec(r), "none");
	qn_rd_close(r);

	/* Only "\n": one empty line, then the end. */
	write_file(p, "\n", 1);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("lone newline is one empty line",
		    qn_rd_line(r, &line, 50, &e) == 1 && line.len == 0);
	CHECK_NAMED("lone newline then end", qn_rd_line(r, &line, 50, &e) == 0);
	qn_rd_close(r);
	qn_buf_release(&line);

	/* A line of 300 KB straddling two 128 KiB buffers, with max above it. */
	size_t n = 300000;
	char *d = malloc(n + 10);
	memset(d, 'y', n);
	memcpy(d + n, "\ntail\n", 6);
	write_file(p, d, n + 6);
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("300 KB line read whole", qn_rd_line(r, &line, n, &e) == 1 && line.len == n);
	CHECK_NAMED("line after the 300 KB one",
		    qn_rd_line(r, &line, n, &e) == 1 && !strcmp(line.data, "tail"));
	qn_rd_close(r);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("300 KB line with max n-1 is too long",
		    qn_rd_line(r, &line, n - 1, &e) == QN_RD_TOOLONG);
	CHECK_NAMED("and the next line survives",
		    qn_rd_line(r, &line, n, &e) == 1 && !strcmp(line.data, "tail"));
	qn_rd_close(r);
	free(d);
	qn_buf_release(&line);

	/* A line buffer whose own max is smaller: an error, not a crash. */
	qn_buf_init(&line, 10);
	write_file(p, "0123456789abcdef\n", 17);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("line buffer max below line length fails", qn_rd_line(r, &line, 100, &e) == -1);
	qn_rd_close(r);
	qn_buf_release(&line);
	clean_dir();
}

static void test_rd_big_plain(void)
{
	struct qn_err e = {{0}};
	size_t n, nlines;
	char *text = make_lines(5 << 20, &n, &nlines);
	const char *p = in_top("big.txt");

	write_file(p, text, n);
	struct qn_rd *r = qn_rd_open(p, QN_RD_SHA256, &e);
	struct qn_buf line;
	size_t i = 0, lines = 0, bad = 0;
	int rc;

	qn_buf_init(&line, QN_BUF_UNLIMITED);
	while ((rc = qn_rd_line(r, &line, 1 << 20, &e)) == 1) {
		const char *nl = memchr(text + i, '\n', n - i);
		size_t len = (size_t)(nl - (text + i));
		if (line.len != len || memcmp(line.data, text + i, len))
			bad++;
		i += len + 1;
		lines++;
	}
	CHECK_NAMED("5 MB plain: rd_line ends cleanly", rc == 0);
	CHECK_NAMED("5 MB plain: every line matches across buffer boundaries",
		    bad == 0 && lines == nlines);
	CHECK_NAMED("5 MB plain: raw bytes", qn_rd_raw_bytes(r) == n);
	char hex[65], want[65];
	qn_sha256_hex(text, n, want);
	CHECK_NAMED("5 MB plain: rd_sha256", qn_rd_sha256(r, hex, &e) == 0 && !strcmp(hex, want));
	qn_rd_close(r);
	qn_buf_release(&line);

	/* qn_rd_read in odd sizes returns the same bytes. */
	size_t got_n;
	char *got = rd_all(p, 0, &got_n, NULL, &rc, &e);
	CHECK_NAMED("5 MB plain via rd_read", rc == 0 && same(got, got_n, text, n));
	free(got);

	/* gzip of the same, read with rd_line. */
	gzFile gz = gzopen(in_top("big.gz"), "wb1");
	gzwrite(gz, text, (unsigned)n);
	gzclose(gz);
	r = qn_rd_open(in_top("big.gz"), 0, &e);
	qn_buf_init(&line, QN_BUF_UNLIMITED);
	i = lines = bad = 0;
	while ((rc = qn_rd_line(r, &line, 1 << 20, &e)) == 1) {
		const char *nl = memchr(text + i, '\n', n - i);
		size_t len = (size_t)(nl - (text + i));
		if (line.len != len || memcmp(line.data, text + i, len))
			bad++;
		i += len + 1;
		lines++;
	}
	CHECK_NAMED("5 MB gzip: rd_line ends cleanly", rc == 0);
	CHECK_NAMED("5 MB gzip: every line matches", bad == 0 && lines == nlines);
	qn_rd_close(r);
	qn_buf_release(&line);
	free(text);
	clean_dir();
}

static void test_rd_slurp_peek_sha(void)
{
	struct qn_err e = {{0}};
	struct qn_buf out;
	struct qn_rd *r;
	char data[1000], hex[65], want[65];
	const char *p = in_top("slurp.txt");
	const char *q;
	size_t n;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)('A' + i % 26);
	write_file(p, data, sizeof data);

	qn_buf_init(&out, QN_BUF_UNLIMITED);
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("slurp with max == size", qn_rd_slurp(r, &out, 1000, &e) == 1);
	CHECK_NAMED("slurp contents", same(out.data, out.len, data, 1000));
	qn_rd_close(r);
	r = qn_rd_open(p, 0, &e);
	qn_buf_reset(&out);
	CHECK_NAMED("slurp with max == size - 1 is too long",
		    qn_rd_slurp(r, &out, 999, &e) == QN_RD_TOOLONG);
	qn_rd_close(r);
	/* max counts the new bytes only. */
	qn_buf_reset(&out);
	qn_buf_adds(&out, "prefix");
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("slurp appends; max ignores earlier contents",
		    qn_rd_slurp(r, &out, 1000, &e) == 1 && out.len == 1006 &&
			!memcmp(out.data, "prefix", 6) && !memcmp(out.data + 6, data, 1000));
	qn_rd_close(r);
	qn_buf_release(&out);

	/* peek does not consume. */
	r = qn_rd_open(p, 0, &e);
	CHECK_NAMED("peek ok", qn_rd_peek(r, &q, &n, &e) == 0);
	CHECK_NAMED("peek sees the start", n > 0 && n <= 1000 && !memcmp(q, data, n));
	const char *q2;
	size_t n2;
	CHECK_NAMED("peek twice gives the same bytes",
		    qn_rd_peek(r, &q2, &n2, &e) == 0 && n2 == n && !memcmp(q2, data, n2));
	char head[10];
	CHECK_NAMED("read after peek starts at the beginning",
		    qn_rd_read(r, head, 10, &e) == 10 && !memcmp(head, data, 10));
	CHECK_NAMED("peek after a read sees the rest",
		    qn_rd_peek(r, &q, &n, &e) == 0 && n > 0 && !memcmp(q, data + 10, n));
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	qn_rd_slurp(r, &out, 2000, &e);
	CHECK_NAMED("slurp after read+peek gets the rest", same(out.data, out.len, data + 10, 990));
	CHECK_NAMED("peek at end gives 0 bytes", qn_rd_peek(r, &q, &n, &e) == 0 && n == 0);
	qn_rd_close(r);
	qn_buf_release(&out);

	/* peek on a .zst sees decoded bytes. */
	struct qn_wr *w = qn_wr_open(in_top("peek.zst"), 0, &e);
	qn_wr_write(w, "{\"id\":1}\n", 9, &e);
	qn_wr_commit(w, NULL, &e);
	r = qn_rd_open(in_top("peek.zst"), 0, &e);
	CHECK_NAMED("peek on .zst sees decoded bytes",
		    qn_rd_peek(r, &q, &n, &e) == 0 && n == 9 && !memcmp(q, "{\"id\":1}\n", 9));
	qn_rd_close(r);

	/* rd_sha256 after reading only part: the whole file's hash. */
	size_t big_n = 1 << 20;
	char *big = malloc(big_n);
	for (size_t i = 0; i < big_n; i++)
		big[i] = (char)(i * 17 + (i >> 12));
	write_file(in_top("hash.bin"), big, big_n);
	qn_sha256_hex(big, big_n, want);
	r = qn_rd_open(in_top("hash.bin"), QN_RD_SHA256, &e);
	qn_rd_read(r, head, 10, &e);
	CHECK_NAMED("rd_sha256 after a partial read", qn_rd_sha256(r, hex, &e) == 0);
	CHECK_STR("rd_sha256 is the whole file's hash", hex, want);
	CHECK_NAMED("raw bytes after rd_sha256 is the file size", qn_rd_raw_bytes(r) == big_n);
	char hex2[65];
	CHECK_NAMED("rd_sha256 twice", qn_rd_sha256(r, hex2, &e) == 0 && !strcmp(hex, hex2));
	qn_rd_close(r);
	r = qn_rd_open(in_top("hash.bin"), QN_RD_SHA256, &e);
	CHECK_NAMED("rd_sha256 without reading",
		    qn_rd_sha256(r, hex, &e) == 0 && !strcmp(hex, want));
	qn_rd_close(r);
	r = qn_rd_open(in_top("hash.bin"), QN_RD_SHA256, &e);
	qn_rd_peek(r, &q, &n, &e);
	CHECK_NAMED("rd_sha256 after a peek", qn_rd_sha256(r, hex, &e) == 0 && !strcmp(hex, want));
	qn_rd_close(r);
	r = qn_rd_open(in_top("hash.bin"), 0, &e);
	CHECK_NAMED("rd_sha256 without QN_RD_SHA256 fails", qn_rd_sha256(r, hex, &e) == -1);
	qn_rd_close(r);
	/* Of a compressed file: the stored bytes, as manifests record them. */
	w = qn_wr_open(in_top("hash.zst"), 0, &e);
	qn_wr_write(w, big, big_n, &e);
	struct qn_wr_info info;
	qn_wr_commit(w, &info, &e);
	r = qn_rd_open(in_top("hash.zst"), QN_RD_SHA256, &e);
	qn_rd_read(r, head, 10, &e);
	CHECK_NAMED("rd_sha256 of .zst after a partial read is the stored bytes' hash",
		    qn_rd_sha256(r, hex, &e) == 0 && !strcmp(hex, info.sha256) &&
			sha_matches(in_top("hash.zst"), hex));
	qn_rd_close(r);
	free(big);

	/* Missing file. */
	e.msg[0] = 0;
	r = qn_rd_open(in_top("missing.txt"), 0, &e);
	CHECK_NAMED("rd_open of a missing file fails", r == NULL);
	CHECK_NAMED("missing file message",
		    strstr(e.msg, "missing.txt") && strstr(e.msg, "No such file"));
	qn_rd_close(NULL);
	clean_dir();
}

static void test_rd_fd(void)
{
	struct qn_err e = {{0}};
	char zst[256], *got;
	size_t zn, got_n;
	int fds[2];
	const char *msg = "from a pipe, compressed, with the magic split\n";

	/* A pipe that delivers the zstd magic in two pieces. */
	zn = ZSTD_compress(zst, sizeof zst, msg, strlen(msg), 3);
	CHECK_NAMED("pipe", pipe(fds) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (write(fds[1], zst, 2) != 2)
			_exit(1);
		usleep(50000);
		if (write(fds[1], zst + 2, zn - 2) != (ssize_t)(zn - 2))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	struct qn_rd *r = qn_rd_fdopen(fds[0], "pipe", 0, &e);
	struct qn_buf out;
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	CHECK_NAMED("fdopen", r != NULL);
	CHECK_NAMED("slurp from a pipe with a split magic", qn_rd_slurp(r, &out, 1000, &e) == 1);
	CHECK_STR("pipe contents decoded", out.data, msg);
	CHECK_STR("pipe codec", qn_rd_codec(r), "zstd");
	CHECK_STR("fdopen name", qn_rd_name(r), "pipe");
	qn_rd_close(r);
	waitpid(pid, NULL, 0);
	/* fdopen does not close the descriptor. */
	CHECK_NAMED("fdopen leaves the fd open", fcntl(fds[0], F_GETFD) != -1);
	close(fds[0]);
	qn_buf_release(&out);

	/* "-" reads stdin. */
	write_file(in_top("stdin.txt"), "via stdin\n", 10);
	int saved = dup(0), fd = open(in_top("stdin.txt"), O_RDONLY);
	dup2(fd, 0);
	close(fd);
	r = qn_rd_open("-", 0, &e);
	got = NULL;
	qn_buf_init(&out, QN_BUF_UNLIMITED);
	CHECK_NAMED("rd_open '-'", r != NULL && qn_rd_slurp(r, &out, 100, &e) == 1);
	CHECK_STR("'-' reads stdin", out.data, "via stdin\n");
	CHECK_STR("'-' name", qn_rd_name(r), "-");
	qn_rd_close(r);
	CHECK_NAMED("stdin stays open after close", fcntl(0, F_GETFD) != -1);
	dup2(saved, 0);
	close(saved);
	qn_buf_release(&out);
	free(got);
	(void)got_n;
	clean_dir();
}

int main(void)
{
	if (make_top("test_rdwr") < 0)
		return 1;
	test_wr_plain();
	test_wr_zstd();
	test_rd_compressible();
	test_rd_gzip();
	test_rd_zstd_frames();
	test_wr_abort_finish();
	test_wr_errors();
	test_rd_lines();
	test_rd_big_plain();
	test_rd_slurp_peek_sha();
	test_rd_fd();
	clean_dir();
	rmdir(top);
	return CHECK_DONE();
}
