/*
 * hcache.h - content hashes of quern-run's deps and outs, and the cache
 * that keeps unchanged files from being read twice.
 *
 * A file's hash is its SHA-256. A folder's is the SHA-256 of its sorted
 * listing: for every regular file below it, "relative/path\0size\0sha256\n"
 * in byte order of the paths (files named *.manifest.json, the tools' run
 * records with their timestamps, are left out, so a stage whose outputs come
 * out identical does not look changed). Symbolic links are followed to
 * files, never into folders.
 *
 * The cache maps (device, inode, size, mtime in ns) to a SHA-256: a file
 * whose key is known is not read. It lives in one compact binary file
 * (magic "QRHCACH1", count, xxh3 of the records, then 64-byte records),
 * read whole at open and rewritten atomically by rn_hcache_save when
 * something was added. A file modified less than two seconds before it was
 * hashed is not cached (it could change again within its mtime's tick).
 * Cache misses are hashed on several threads.
 *
 * Ownership: rn_hcache_open returns a cache for rn_hcache_free.
 */
#ifndef RN_HCACHE_H
#define RN_HCACHE_H

#include <stdint.h>

struct qn_err;
struct rn_hcache;

struct rn_hash {
	int exists;
	int dir;
	uint64_t size;	 /* bytes (a folder: of all its files) */
	uint64_t nfiles; /* a folder: files in the listing */
	char sha256[65];
};

/* Loads the cache file (a missing or damaged one starts empty). NULL: no memory. */
struct rn_hcache *rn_hcache_open(const char *path, int threads);
/* Writes the cache back when it changed. 0 or -1. */
int rn_hcache_save(struct rn_hcache *c, struct qn_err *e);
void rn_hcache_free(struct rn_hcache *c);

/* Counters since open: files whose hash came from the cache / was computed. */
void rn_hcache_stats(const struct rn_hcache *c, uint64_t *hits, uint64_t *misses);

/*
 * Hashes path (a file or a folder). A missing path gives exists = 0 and
 * returns 0; -1 with e filled when something cannot be read.
 */
int rn_hash_path(struct rn_hcache *c, const char *path, struct rn_hash *h, struct qn_err *e);

#endif
