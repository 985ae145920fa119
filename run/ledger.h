/*
 * ledger.h - the append-only, hash-chained record of every run.
 *
 * .quern-run/ledger.jsonl holds one JSON object a line. Each line is written
 * as the JSON text of the record (whose "prev" is the previous record's
 * hash, 64 zeros for the first, and whose "seq" counts from 1), then
 * `,"hash":"<sha256>"}` where the hash is the SHA-256 of the exact bytes of
 * the line before `,"hash"`. Any edited byte (in a record or a hash), any
 * removed, inserted or reordered record breaks a hash or the chain;
 * .quern-run/ledger.head holds the last record's seq and hash, so cutting
 * records off the end is found too. Appends take an exclusive flock on the
 * ledger, so pipelines sharing a folder chain correctly.
 *
 * Ownership: the record passed to rn_ledger_append stays the caller's.
 */
#ifndef RN_LEDGER_H
#define RN_LEDGER_H

#include <stdio.h>

#include <jansson.h>

struct qn_err;

/* Appends rec (an object; seq, prev and hash are added) to dir's ledger. */
int rn_ledger_append(const char *dir, json_t *rec, struct qn_err *e);

/*
 * Checks the whole chain; *records gets the count. 0 intact, 1 broken (e
 * names the first bad record: "ledger.jsonl:5: record 5: ..."), -1 when it
 * cannot be read.
 */
int rn_ledger_verify(const char *dir, long *records, struct qn_err *e);

/* Calls fn for every record in order (parsed, without checking); 0 or -1. */
int rn_ledger_each(const char *dir, int (*fn)(json_t *rec, void *ctx), void *ctx, struct qn_err *e);

#endif
