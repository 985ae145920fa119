/*
 * dsig.h - dedup signatures of a quern-clean shard, and the cross-shard
 * merge that resolves them (quern-clean --shard I/N --signatures FILE,
 * quern-clean dedup-merge, quern-clean apply-removals).
 *
 * A signature file holds, for every document of one shard that reached the
 * exact_dedup or near_dedup step, in the shard's input order, what the
 * single-process run feeds its hash table, LSH index and union-find: the
 * id, the exact hash, the band keys and the keep-rule priorities. The
 * merge replays exactly that over all shards in the global order (shard
 * index, position), so its decisions equal a single-process run's.
 *
 * Layout (host byte order; files are made and merged on one architecture):
 *   struct cn_dsig_head, then params (plen bytes: every parameter the
 *   decisions depend on, compared verbatim by the merge);
 *   per document: uint8 flags (CN_DSIG_*), uint8 0, uint16 idlen, the id,
 *   16 bytes exact hash (CN_DSIG_EXACT), double prio_exact, double
 *   prio_near, bands uint64 band keys (CN_DSIG_SIG);
 *   the end: uint8 0xFF, 7 zero bytes, uint64 record count.
 * A path ending in .zst is compressed (lib/wr.h, lib/rd.h).
 */
#ifndef CN_DSIG_H
#define CN_DSIG_H

#include <stdint.h>

#define CN_DSIG_MAGIC "QNDSIG01"
#define CN_DSIG_VERSION 1u

enum {
	CN_DSIG_EXACT = 1,     /* reached exact_dedup: the hash follows */
	CN_DSIG_NEAR = 2,      /* reached near_dedup */
	CN_DSIG_SIG = 4,       /* has a MinHash signature: band keys follow */
	CN_DSIG_TOO_SHORT = 8, /* reached near_dedup without a full shingle */
	CN_DSIG_END = 0xFF,
};

enum {				/* cn_dsig_head.flags */
       CN_DSIGH_EXACT = 1,	/* the chain has exact_dedup */
       CN_DSIGH_NEAR = 2,	/* the chain has near_dedup */
       CN_DSIGH_EXACT_PRIO = 4, /* exact keep rule is not "first" */
       CN_DSIGH_NEAR_PRIO = 8,	/* near keep rule is not "first" */
};

struct cn_dsig_head {
	char magic[8];
	uint32_t version;
	uint32_t shard, count;		      /* --shard I/N */
	uint32_t flags;			      /* CN_DSIGH_* */
	uint32_t bands, rows, ngram, mhflags; /* the MinHash parameters */
	uint64_t seed;
	uint32_t plen;
	uint32_t pad;
};

/* quern-clean dedup-merge / apply-removals: argv[0] is the subcommand. */
int cn_dedup_merge_main(int argc, char **argv);
int cn_apply_removals_main(int argc, char **argv);

#endif
