/*
 * hash.h - fast content hashes (xxh3, from libxxhash) and SHA-256 (from
 * OpenSSL's libcrypto) for ids, dedup keys, manifests and lineage.
 *
 * SHA-256 is streaming: qn_sha256_init, _update as bytes pass, _final. The
 * context is caller-owned and holds no heap memory after _final.
 */
#ifndef QN_HASH_H
#define QN_HASH_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

/*
 * splitmix64's output function (Steele, Lea and Flood): a 64-bit bijection
 * that scatters every input bit, for counter-based random numbers (a seed
 * and a counter in, a draw out) where nothing may depend on call order.
 */
static inline uint64_t qn_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The splitmix64 generator: advances *state and returns the next draw. */
static inline uint64_t qn_splitmix64(uint64_t *state)
{
	return qn_mix64(*state += 0x9e3779b97f4a7c15ull);
}

uint64_t qn_xxh3_64(const void *p, size_t n, uint64_t seed);

struct qn_hash128 {
	uint64_t hi, lo;
};
struct qn_hash128 qn_xxh3_128(const void *p, size_t n, uint64_t seed);

/* Writes 32 lowercase hex digits and a NUL into out[33]. */
void qn_hash128_hex(struct qn_hash128 h, char out[33]);

struct qn_sha256 {
	void *md; /* EVP_MD_CTX */
};

int qn_sha256_init(struct qn_sha256 *s);
void qn_sha256_update(struct qn_sha256 *s, const void *p, size_t n);
/* Writes 64 hex digits and a NUL into hex[65]; frees the context. */
void qn_sha256_final(struct qn_sha256 *s, char hex[65]);
/* Frees a context that will not be finalised. */
void qn_sha256_release(struct qn_sha256 *s);

/* One-shot helpers. */
void qn_sha256_hex(const void *p, size_t n, char hex[65]);
/* Hashes a whole file; size in *size. -1 with e filled on I/O error. */
int qn_sha256_file(const char *path, char hex[65], uint64_t *size, struct qn_err *e);

#endif
