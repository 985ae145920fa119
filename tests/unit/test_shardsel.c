/*
 * test_shardsel.c - lib/shardsel (--shard I/N) and qn_rd_limit: every line
 * of every input lands in exactly one shard, in input order, for many N;
 * line numbers match a whole-file reading.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "rd.h"
#include "shardsel.h"

static void test_parse(void)
{
	unsigned i, n;

	CHECK(qn_shardsel_parse("0/1", &i, &n) == 0 && i == 0 && n == 1);
	CHECK(qn_shardsel_parse("3/4", &i, &n) == 0 && i == 3 && n == 4);
	CHECK(qn_shardsel_parse("4/4", &i, &n) < 0);
	CHECK(qn_shardsel_parse("1/0", &i, &n) < 0);
	CHECK(qn_shardsel_parse("x", &i, &n) < 0);
	CHECK(qn_shardsel_parse("1/", &i, &n) < 0);
	CHECK(qn_shardsel_parse("-1/4", &i, &n) < 0);
	CHECK(qn_shardsel_parse("1/4x", &i, &n) < 0);
	CHECK(qn_shardsel_parse("", &i, &n) < 0);
}

/* Reads the lines of part k of path through qn_rd_limit, appending to out. */
static int read_part(const char *path, const struct qn_shard_part *p, struct qn_buf *out,
		     uint64_t *lineno)
{
	struct qn_err e;
	uint64_t first, last, before;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || qn_shardsel_lines(fd, path, p, &first, &last, &before, &e) < 0)
		return -1;
	*lineno = before + 1;
	lseek(fd, (off_t)first, SEEK_SET);
	struct qn_rd *rd = qn_rd_fdopen(fd, path, 0, &e);
	qn_rd_limit(rd, last - first);
	char buf[4096];
	ssize_t n;
	while ((n = qn_rd_read(rd, buf, sizeof buf, &e)) > 0)
		qn_buf_add(out, buf, (size_t)n);
	qn_rd_close(rd);
	close(fd);
	return n < 0 ? -1 : 0;
}

static void test_plan(void)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char paths[3][512];
	struct qn_buf all;
	uint64_t size[3];
	int split[3] = {1, 0, 1};

	qn_buf_init(&all, QN_BUF_UNLIMITED);
	srand(7);
	for (int f = 0; f < 3; f++) {
		snprintf(paths[f], sizeof paths[f], "%s/test_shardsel.%d.%d", dir, (int)getpid(),
			 f);
		FILE *fp = fopen(paths[f], "wb");
		int nl = f == 1 ? 3 : 200 + f * 50;
		for (int l = 0; l < nl; l++) {
			int len = rand() % 40;
			fprintf(fp, "f%d-l%d-", f, l + 1);
			for (int c = 0; c < len; c++)
				fputc('a' + c % 26, fp);
			if (f != 2 || l + 1 < nl) /* the last file has no final '\n' */
				fputc('\n', fp);
		}
		fclose(fp);
		fp = fopen(paths[f], "rb");
		fseek(fp, 0, SEEK_END);
		size[f] = (uint64_t)ftell(fp);
		rewind(fp);
		char *b = malloc(size[f]);
		CHECK(fread(b, 1, size[f], fp) == size[f]);
		qn_buf_add(&all, b, size[f]);
		free(b);
		fclose(fp);
	}
	for (unsigned n = 1; n <= 40; n += n < 8 ? 1 : 13) {
		struct qn_buf got;
		int ok = 1, lines_ok = 1;
		qn_buf_init(&got, QN_BUF_UNLIMITED);
		for (unsigned i = 0; i < n; i++) {
			struct qn_shard_part part[3];
			qn_shardsel_plan(i, n, 3, size, split, part);
			for (int f = 0; f < 3; f++) {
				if (!part[f].take)
					continue;
				if (part[f].whole) {
					struct qn_shard_part w = {1, 1, 0, size[f]};
					uint64_t ln;
					ok &= read_part(paths[f], &w, &got, &ln) == 0;
					continue;
				}
				size_t at = got.len;
				uint64_t ln;
				ok &= read_part(paths[f], &part[f], &got, &ln) == 0;
				/* The part's first line names its own line number. */
				if (got.len > at) {
					char want[32];
					int k = snprintf(want, sizeof want, "f%d-l%llu-", f,
							 (unsigned long long)ln);
					if (got.len - at < (size_t)k ||
					    memcmp(got.data + at, want, (size_t)k))
						lines_ok = 0;
				}
			}
		}
		char name[64];
		snprintf(name, sizeof name, "shards of %u cover the input once, in order", n);
		CHECK_NAMED(name, ok && got.len == all.len && !memcmp(got.data, all.data, all.len));
		snprintf(name, sizeof name, "line numbers of %u shards", n);
		CHECK_NAMED(name, lines_ok);
		qn_buf_release(&got);
	}
	/* Nothing at all: the last shard owns the empty inputs. */
	uint64_t zero[2] = {0, 0};
	int sp[2] = {0, 1};
	struct qn_shard_part p[2];
	qn_shardsel_plan(0, 2, 2, zero, sp, p);
	CHECK(!p[0].take && !p[1].take);
	qn_shardsel_plan(1, 2, 2, zero, sp, p);
	CHECK(p[0].take && p[0].whole && p[1].take);
	for (int f = 0; f < 3; f++)
		unlink(paths[f]);
	qn_buf_release(&all);
}

int main(void)
{
	test_parse();
	test_plan();
	return CHECK_DONE();
}
