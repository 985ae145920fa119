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
 * Each record also carries what the shard's stats counted for the document
 * from the first dedup step on (its text length as it entered each step,
 * the step that rejected it, its counters), so that the merge can move a
 * removed document from the steps after the dedup step to the dedup step's
 * rejects, as a single run counts it (quern-clean merge-stats).
 *
 * Layout (host byte order; files are made and merged on one architecture):
 *   struct cn_dsig_head, then params (plen bytes: every parameter the
 *   decisions depend on, compared verbatim by the merge), then the chain
 *   (clen bytes of JSON: [{"step": NAME, "counters": [NAME...]}...], the
 *   steps in order with their counter names; compared verbatim too);
 *   per document: uint8 flags (CN_DSIG_*), uint8 0, uint16 idlen, the id,
 *   16 bytes exact hash (CN_DSIG_EXACT), double prio_exact, double
 *   prio_near, bands uint64 band keys (CN_DSIG_SIG), then the tail:
 *   struct cn_dsig_tail, nlen uint64 text lengths (as the text entered
 *   steps F..nsteps-1, then the final text; F is the first dedup step;
 *   0 past the step that rejected it), the reason (nreason bytes), the
 *   language (nlang bytes), ncnt struct cn_dsig_cnt (counters of steps
 *   after F);
 *   the end: uint8 0xFF, 7 zero bytes, uint64 record count.
 * A path ending in .zst is compressed (lib/wr.h, lib/rd.h).
 */
#ifndef CN_DSIG_H
#define CN_DSIG_H

#include <stdint.h>

#define CN_DSIG_MAGIC "QNDSIG01"
#define CN_DSIG_VERSION 2u
#define CN_DSIG_NO_STEP 0xffffu /* cn_dsig_tail.stop: not rejected */

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
	uint32_t clen; /* the chain's JSON */
};

struct cn_dsig_tail {
	uint16_t stop; /* the step that rejected it in the shard, or CN_DSIG_NO_STEP */
	uint8_t nreason, nlang;
	uint16_t ncnt, nlen;
};

struct cn_dsig_cnt {
	uint16_t step, index; /* step index, counter index within the step */
	uint32_t pad;
	uint64_t value;
};

/* dedup-merge's work: reads the signature files (all shards of one run),
 * writes DIR's removal lists and dedup-stats.json (DIR exists). 0, or -1
 * with e filled. */
struct qn_err;
int cn_dedup_merge(const char *dir, char *const *sigs, int nsigs, struct qn_err *e);

/* quern-clean dedup-merge / apply-removals / merge-stats: argv[0] is the
 * subcommand. */
int cn_dedup_merge_main(int argc, char **argv);
int cn_apply_removals_main(int argc, char **argv);
int cn_merge_stats_main(int argc, char **argv);

#endif
