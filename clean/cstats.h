/*
 * cstats.h - arithmetic on quern-clean's --stats objects, for
 * quern-clean merge-stats (mstats.c): the sum of the stats of several
 * shards, and the check that a merged file is whole.
 *
 * The objects are jansson values owned by the caller; nothing here prints.
 */
#ifndef CN_CSTATS_H
#define CN_CSTATS_H

#include <jansson.h>

struct qn_err;

/*
 * dst += src: integers (and reals) are added, objects by key (a key only in
 * src is copied), arrays by position (of equal length), strings and other
 * values must be equal (a step's name). where names src in messages.
 * -1 with e filled on a mismatch; dst may then be partly summed.
 */
int cn_stats_add(json_t *dst, json_t *src, const char *where, struct qn_err *e);

/*
 * After the corrections: drops the per-reason and per-language entries
 * left with no documents (a single run has no entry for a reason nothing
 * had) and fails on a negative count (stats of different runs).
 */
int cn_stats_finish(json_t *stats, struct qn_err *e);

#endif
