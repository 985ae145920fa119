/*
 * fuzz_dindex.c - libFuzzer target for clean/dindex's loader. Each input is
 * parsed twice: as it is, and with its last 8 bytes replaced by the right
 * checksum, so that mutations reach the checks behind the checksum instead
 * of all dying there. When an image parses, every entry is read (ids must
 * be valid UTF-8 within the maximum) and the image the index would write
 * must be the input byte for byte: the format has one encoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dindex.h"
#include "err.h"
#include "hash.h"
#include "minhash.h"
#include "utf8.h"

static void check(const uint8_t *data, size_t size)
{
	struct qn_err e;
	struct cn_dindex *x = cn_dindex_parse(data, size, "fuzz", &e);
	uint64_t sum = 0;

	if (!x) {
		if (strncmp(e.msg, "fuzz: offset ", 13))
			abort();
		return;
	}
	const struct qn_minhash_params *p = cn_dindex_near_params(x);
	size_t bands = p ? p->bands : 0;
	for (size_t i = 0; i < cn_dindex_exact_count(x); i++) {
		struct qn_hash128 h = cn_dindex_exact_hash(x, i);
		const char *id = cn_dindex_exact_id(x, i);
		size_t n = strlen(id);
		if (n > CN_DINDEX_ID_MAX || !qn_utf8_valid(id, n))
			abort();
		sum += h.hi ^ h.lo;
	}
	if (cn_dindex_near_count(x) && !bands)
		abort();
	for (size_t i = 0; i < cn_dindex_near_count(x); i++) {
		const uint64_t *k = cn_dindex_near_keys(x, i);
		const char *id = cn_dindex_near_id(x, i);
		size_t n = strlen(id);
		if (n > CN_DINDEX_ID_MAX || !qn_utf8_valid(id, n))
			abort();
		for (size_t b = 0; b < bands; b++)
			sum += k[b];
	}
	const char *key = cn_dindex_exact_key(x);
	if (key && (!*key || strlen(key) > CN_DINDEX_KEY_MAX))
		abort();
	if (cn_dindex_bytes(x) < size)
		abort();

	struct qn_buf img;
	qn_buf_init(&img, QN_BUF_UNLIMITED);
	if (cn_dindex_image(x, &img, &e) < 0 || img.len != size || memcmp(img.data, data, size))
		abort();
	qn_buf_release(&img);
	cn_dindex_close(x);
	(void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	if (size >= CN_DINDEX_HEADER + 8) {
		uint8_t *b = malloc(size);
		if (!b)
			return 0;
		memcpy(b, data, size);
		uint64_t s = qn_xxh3_64(b, size - 8, 0);
		for (int i = 0; i < 8; i++)
			b[size - 8 + i] = (uint8_t)(s >> (8 * i));
		check(b, size);
		free(b);
	}
	return 0;
}
