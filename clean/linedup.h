/*
 * linedup.h - quern-clean's line dedup (cc_net style): a line that occurs in
 * more than max_docs documents of the corpus - "All rights reserved",
 * cookie notices, navigation - is boilerplate and is removed everywhere.
 *
 * The tool runs it in two passes over the corpus:
 *
 *   A. worker threads: cn_linedup_hashes(doc) -> the document's distinct
 *      line hashes; the main thread, in document order:
 *      cn_linecount_add(table, hashes) -> +1 a line a document;
 *   B. worker threads, the table read-only:
 *      cn_linedup_apply(doc, table) -> the document without the lines
 *      whose count is over max_docs.
 *
 * Lines are split at '\n' only; a '\r' before it belongs to the line (and
 * is whitespace to the key). A line's key is the line stripped of leading
 * and trailing whitespace (Python's str.isspace set: ASCII \t \n \v \f \r,
 * space, \x1c-\x1f, and U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000), then lowercased one code point at a time
 * (utf8proc's simple lowercase mapping; ASCII eight bytes at a time), with
 * every decimal digit (ASCII and the rest of Unicode category Nd, as
 * Python's \d) folded to '0'. So "  Copyright 2021 ACME\r" and
 * "copyright 1999 Acme" are one line. Invalid UTF-8 bytes stay in the key
 * as they are. This is cc_net's normalize_for_dedup less its last step,
 * the deletion of control characters and of about 30 CJK and full-width
 * punctuation marks (the normalize step, run first, removes the controls).
 * The hash is xxh3-64 of the key with opts.seed; two lines whose hashes
 * collide count as one (about n^2 / 2^65 pairs for n distinct lines).
 *
 * A line whose key is empty (blank or whitespace-only) or has fewer than
 * min_chars code points is never counted and never removed. min_chars
 * defaults to 0, every non-blank line, as cc_net (which hashes every
 * paragraph): the most common boilerplate is short ("Home", "Menu",
 * "Share", "Log in"), and a minimum would keep it. Set it for text in which
 * short lines that repeat across documents carry content (code: "}",
 * "end", "else:").
 *
 * Within one document a line counts once however often it repeats (the
 * Gopher repetition filter is what judges a document that repeats
 * itself), and apply keeps every copy of a line whose count is at most
 * max_docs.
 *
 * Memory. The count table is open addressing with linear probing, slots of
 * 12 bytes (a 64-bit hash and a 32-bit count), a power-of-two number of
 * them, at most 3/4 full: 16 to 32 bytes a distinct line (about 22 on
 * average over a doubling), exactly cn_linecount_bytes. While it doubles,
 * the old slots live beside the new ones, so the peak is 1.5 times the new
 * size. Counts saturate at UINT32_MAX. cn_linedup_hashes allocates only
 * its result; apply only grows out; both use about 2 KB of stack.
 *
 * The cap. cn_linecount_new(max_entries) with max_entries > 0 bounds the
 * table at max_entries distinct lines (under 32 * max_entries bytes, 192
 * at least, reached once it is full, and no doubling past it). When a new line
 * would make it max_entries + 1, the table first evicts, in place, every
 * entry whose count is <= T, T being the smallest count that frees at
 * least half of it - in a web corpus nearly always T = 1, the lines seen in
 * one document so far (lossy counting). What that costs: a line that is
 * evicted and later seen again starts over from 1, so counts are only ever
 * too low (never too high: apply still removes no line that is in
 * max_docs documents or fewer, collisions aside), and a line's true count
 * exceeds its stored one by at most the sum of T over all eviction rounds,
 * which cn_linecount_undercount reports. Boilerplate that recurs before
 * the next eviction reaches 2 and, while T stays 1, is never evicted; a
 * line whose documents lie further apart than half a table's worth of new
 * lines can be missed and kept. A tool should report the bound and the
 * eviction count (-v).
 *
 * Threads. cn_linedup_hashes, cn_linedup_line_hash and cn_linedup_apply
 * keep no state besides their arguments. A table is written by one thread
 * at a time (cn_linecount_add); cn_linecount_get does not modify it, so
 * any number of threads may read it once the writing is over.
 *
 * Ownership: the hash array from cn_linedup_hashes is the caller's to
 * free(); the table is cn_linecount_new / cn_linecount_free. Nothing here
 * prints or exits.
 */
#ifndef CN_LINEDUP_H
#define CN_LINEDUP_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;

struct cn_linedup_opts {
	size_t min_chars;  /* 0: keys shorter (code points) are not counted */
	uint32_t max_docs; /* 1: a line in more documents is removed (cc_net) */
	uint64_t seed;	   /* 0: xxh3 seed; pass A and pass B must agree */
};

/* The defaults above. */
void cn_linedup_opts_init(struct cn_linedup_opts *o);

/*
 * The key hash of one line (without its '\n'; a '\n' inside counts as
 * whitespace only at the ends). Returns 1 and sets *h when the line is
 * counted, 0 when its key is empty or shorter than min_chars. o == NULL
 * means the defaults.
 */
int cn_linedup_line_hash(const struct cn_linedup_opts *o, const char *line, size_t len,
			 uint64_t *h);

/*
 * The distinct key hashes of one document's counted lines, sorted
 * ascending, in a malloc'd array (*out, *n lines; *out is NULL when *n is
 * 0). Returns 0, or -1 when memory ran out (*out NULL, *n 0).
 */
int cn_linedup_hashes(const struct cn_linedup_opts *o, const char *text, size_t len, uint64_t **out,
		      size_t *n);

struct cn_linecount;

/*
 * An empty table; max_entries 0 lets it grow with the distinct lines,
 * otherwise it holds at most max_entries of them (see "The cap"). NULL when
 * memory ran out.
 */
struct cn_linecount *cn_linecount_new(size_t max_entries);
void cn_linecount_free(struct cn_linecount *t);

/*
 * Adds 1 to the count of each of h[0..n), saturating. Pass one document's
 * distinct hashes (cn_linedup_hashes) a call. Returns 0, or -1 when the
 * table could not grow (memory): the hashes before the failing one were
 * counted. A capped table evicts instead of growing and cannot fail that
 * way once it is at its full size.
 */
int cn_linecount_add(struct cn_linecount *t, const uint64_t *h, size_t n);

/* Adds k to one hash's count, saturating (merging counts kept apart);
 * k == 0 does nothing. 0 or -1 as cn_linecount_add. */
int cn_linecount_add_count(struct cn_linecount *t, uint64_t h, uint32_t k);

/* The count of h: 0 when never seen (or evicted). Read-only. */
uint32_t cn_linecount_get(const struct cn_linecount *t, uint64_t h);

/* Distinct lines held now. */
size_t cn_linecount_distinct(const struct cn_linecount *t);
/* Bytes the table holds now (struct and slots). */
size_t cn_linecount_bytes(const struct cn_linecount *t);
/* Entries evicted so far, all rounds together (0 without a cap). */
uint64_t cn_linecount_evicted(const struct cn_linecount *t);
/* How much lower than the truth any count may be: the sum of the eviction
 * thresholds so far (0 without a cap or before the first eviction). */
uint64_t cn_linecount_undercount(const struct cn_linecount *t);

/*
 * Replaces out's contents with text less its lines whose count in t is
 * over o->max_docs; every other byte is kept exactly. A removed line takes
 * its '\n' with it; the last line, when it has none, goes alone (so
 * "a\nboiler" becomes "a\n"). The output is always whole input lines in
 * their order. *removed gets the number of lines removed and
 * *removed_bytes their bytes (either may be NULL). o == NULL means the
 * defaults; o must match pass A's (seed, min_chars). Returns 0 (out->data
 * is then never NULL), or -1 when out would pass out->max or memory ran
 * out; out is then empty.
 */
int cn_linedup_apply(const struct cn_linedup_opts *o, const struct cn_linecount *t,
		     const char *text, size_t len, struct qn_buf *out, uint64_t *removed,
		     uint64_t *removed_bytes);

#endif
