/*
 * fuzz_shard.c - libFuzzer target for lib/shard's reader: parse a shard
 * image from memory and read every document. Each input is tried twice: as
 * it is, and with its checksums made right (every block's xxh3 in the block
 * table, then the trailer), so that mutations reach the checks and the
 * decoder behind the checksums instead of all dying there. Whatever opens
 * must keep the reader's promises: token ids below the vocabulary size,
 * mask spans sorted inside their document, pairs linked both ways; every
 * refusal must name the input and an offset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "shard.h"

/* Header fields and block table entries, per docs/shards.md. */
enum {
	O_BLOCKS = 56,
	O_OFF_BLOCKS = 80,
	BLOCK_ENT = 32,
	TOKEN_BUDGET = 1 << 22, /* tokens decoded an input, at most */
};

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void check(const uint8_t *data, size_t size)
{
	struct qn_err e;
	struct qn_shard *s = qn_shard_parse_mem(data, size, "fuzz", &e);
	uint64_t budget = TOKEN_BUDGET;

	if (!s) {
		if (strncmp(e.msg, "fuzz: ", 6))
			abort();
		return;
	}
	const struct qn_shard_info *in = qn_shard_info(s);
	qn_shard_set_doc_max(s, 1 << 20);
	for (uint64_t k = 0; k < in->docs && budget; k++) {
		struct qn_shard_docview v;
		if (qn_shard_read(s, k, &v, &e) < 0) {
			if (strncmp(e.msg, "fuzz: ", 6))
				abort();
			break;
		}
		budget -= v.n < budget ? v.n : budget;
		for (uint32_t i = 0; i < v.n; i++)
			if (v.tokens[i] >= in->vocab_size)
				abort();
		if (!v.masked && v.nspans)
			abort();
		for (uint32_t i = 0; i < v.nspans; i++)
			if (v.spans[i].start >= v.spans[i].end || v.spans[i].end > v.n ||
			    (i && v.spans[i].start <= v.spans[i - 1].end))
				abort();
		if ((v.role == QN_SHARD_SINGLE) != (v.pair < 0) || v.pair == (int64_t)k ||
		    v.pair >= (int64_t)in->docs || v.label < -1 || v.split != in->split)
			abort();
	}
	qn_shard_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size < QN_SHARD_HEADER + 8)
		return 0;
	uint8_t *b = malloc(size);
	if (!b)
		return 0;
	memcpy(b, data, size);
	/* Right block checksums, where the table and the blocks are in the image. */
	uint64_t ob = get64(b + O_OFF_BLOCKS), nb = get64(b + O_BLOCKS);
	if (ob <= size && nb <= (size - ob) / BLOCK_ENT) {
		for (uint64_t i = 0; i < nb; i++) {
			uint8_t *ent = b + ob + BLOCK_ENT * i;
			uint64_t off = get64(ent + 8), n = get32(ent + 16);
			if (off <= size && n <= size - off)
				set64(ent + 24, qn_xxh3_64(b + off, (size_t)n, 0));
		}
		/* The trailer: the header and everything from the block table on. */
		if (size - ob >= 8) {
			uint8_t *tmp = malloc(QN_SHARD_HEADER + (size - ob) - 8);
			if (tmp) {
				memcpy(tmp, b, QN_SHARD_HEADER);
				memcpy(tmp + QN_SHARD_HEADER, b + ob, size - ob - 8);
				set64(b + size - 8,
				      qn_xxh3_64(tmp, QN_SHARD_HEADER + (size - ob) - 8, 0));
				free(tmp);
			}
		}
	}
	check(b, size);
	free(b);
	return 0;
}
