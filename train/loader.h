/*
 * loader.h - batches for quern-train from a token shard directory.
 *
 * The documents of one split are packed into one stream, each preceded by
 * the end-of-text token (as llm.c's data scripts place it), and the stream
 * is cut into windows of B*T+1 tokens: inputs are the first B*T, targets
 * the last B*T, and the next window starts where this one's inputs ended,
 * so every token is a target once an epoch. A target counts toward the
 * loss when its document trains on it: every token of an unmasked document
 * (and its separator), only the mask spans of a masked one. Each epoch
 * visits the documents in a fresh order drawn from the seed and the epoch
 * number (or in stored order with shuffle off), so the position
 * (epoch, document, offset) is all a resume needs.
 *
 * The loader owns its shard handle; qn_loader_free releases it.
 */
#ifndef QN_TRAIN_LOADER_H
#define QN_TRAIN_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;
struct qn_shard_dir_info;

struct qn_loader_pos {
	uint64_t epoch, doc, off; /* off: into the document's stream (0 = separator) */
};

struct qn_loader;

/* split: QN_SHARD_TRAIN or QN_SHARD_VAL. NULL with e filled when it has no tokens. */
struct qn_loader *qn_loader_new(const char *dir, int split, uint64_t seed, int shuffle,
				struct qn_err *e);
/*
 * The same over some of the split's documents: docs[0..ndocs) (indices in
 * the split, copied), in that order or shuffled per epoch. Every stream
 * needs at least 2 tokens; the caller checks (multi-task mixing does).
 */
struct qn_loader *qn_loader_new_subset(const char *dir, int split, uint64_t seed, int shuffle,
				       const uint64_t *docs, size_t ndocs, struct qn_err *e);
void qn_loader_free(struct qn_loader *l);
/*
 * An epoch's order: perm[0..n) a permutation of 0..n-1 drawn by
 * Fisher-Yates from a counter-mode generator, so it depends on seed and
 * epoch only (the loader's and DPO's pair order).
 */
void qn_loader_order(uint64_t *perm, size_t n, uint64_t seed, uint64_t epoch);
/*
 * Fills inputs, targets and mask (n each) from the current position and
 * advances by n. Wraps to the next epoch at the end of the split.
 */
int qn_loader_next(struct qn_loader *l, uint32_t *inputs, uint32_t *targets, uint8_t *mask,
		   size_t n, struct qn_err *e);
void qn_loader_tell(const struct qn_loader *l, struct qn_loader_pos *p);
int qn_loader_seek(struct qn_loader *l, const struct qn_loader_pos *p, struct qn_err *e);
uint64_t qn_loader_docs(const struct qn_loader *l);
const struct qn_shard_dir_info *qn_loader_info(const struct qn_loader *l);
uint64_t qn_loader_tokens(const struct qn_loader *l);

#endif
