/*
 * shardsel.h - which part of a run's inputs belongs to shard I of N.
 *
 * Every data tool takes --shard I/N. The inputs, in the order the tool
 * sorts them, are laid end to end into one virtual byte stream of T bytes;
 * shard k owns the bytes [k*T/N, (k+1)*T/N) (the last shard everything from
 * its start on). A splittable input (a regular, uncompressed file of lines)
 * is cut at line boundaries: a line belongs to the shard that owns its
 * first byte. Any other input (compressed, stdin, a one-document format)
 * goes whole to the shard that owns its first byte. So the N shards cover
 * every record exactly once, and their outputs, concatenated in shard
 * order, follow the single-process input order.
 *
 * Nothing here allocates; the caller owns every array.
 */
#ifndef QN_SHARDSEL_H
#define QN_SHARDSEL_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define QN_SHARD_MAX 1000000u

/* Parses "I/N" with 0 <= I < N <= QN_SHARD_MAX; -1 on anything else. */
int qn_shardsel_parse(const char *s, unsigned *index, unsigned *count);

/* What shard I takes of one input. */
struct qn_shard_part {
	int take;	     /* 0: none of it */
	int whole;	     /* the whole input (not cut) */
	uint64_t start, end; /* else: the bytes [start, end) where its lines start */
};

/*
 * Plans shard index of count over n inputs: size[k] its bytes (0 for stdin
 * or unknown), splittable[k] whether it may be cut at line boundaries.
 * Fills part[0..n-1].
 */
void qn_shardsel_plan(unsigned index, unsigned count, size_t n, const uint64_t *size,
		      const int *splittable, struct qn_shard_part *part);

/*
 * Whether the file at fd (a regular file) may be cut: not zstd or gzip
 * compressed. Reads its first bytes with pread.
 */
int qn_shardsel_splittable_fd(int fd);

/*
 * Resolves a cut part of the regular file fd to whole lines: *first is the
 * first line start at or after part->start, *last the first line start at
 * or after part->end (the file's size at most). With lines_before, counts
 * the '\n' before *first (for line numbers that match a whole-file run).
 * Uses pread only. -1 with e filled on a read error.
 */
int qn_shardsel_lines(int fd, const char *name, const struct qn_shard_part *part, uint64_t *first,
		      uint64_t *last, uint64_t *lines_before, struct qn_err *e);

#endif
