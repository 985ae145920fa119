/*
 * testfs.h - the file-system helpers the unit tests share: a scratch folder
 * (top) made by make_top and removed by rm_rf(top), paths inside it or any
 * folder, whole files read and written, and a substring test for error
 * messages.
 *
 * Ownership: in_top and in_dir return one of 8 static buffers, reused in
 * turn, so a path stays valid across 7 further calls of the same helper;
 * copy it to keep it longer. slurp returns memory from malloc that the
 * caller frees. Everything is static (and inline, so that a test using only
 * some of the helpers compiles without unused-function warnings).
 */
#ifndef QN_TESTFS_H
#define QN_TESTFS_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The test's scratch folder, filled by make_top. */
static char top[4096];

/* Creates top as $TMPDIR/NAME.XXXXXX (or under /tmp); -1 after a FAIL line. */
static inline int make_top(const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(top, sizeof top, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(top)) {
		printf("FAIL: mkdtemp %s: %s\n", top, strerror(errno));
		return -1;
	}
	return 0;
}

/* "dir/name", in a static buffer (see above). */
static inline char *in_dir(const char *dir, const char *name)
{
	static char p[8][4400];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

/* "top/name", in a static buffer of its own (see above). */
static inline char *in_top(const char *name)
{
	static char p[8][4200];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", top, name);
	return p[k];
}

/* The whole file, its size in *len; NULL (and *len 0) when it cannot be read. */
static inline unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(n > 0 ? (size_t)n : 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b)
		*len = (size_t)n;
	return b;
}

/* Writes p[0..n) to path, replacing it; 0 or -1. */
static inline int spit(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	int ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static inline int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Removes path and everything under it, without following links. */
static inline void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 when s (which may be NULL) contains what. */
static inline int contains(const char *s, const char *what)
{
	return s && strstr(s, what) != NULL;
}

#endif
