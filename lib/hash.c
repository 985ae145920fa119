/* hash.c - see hash.h. */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "err.h"

uint64_t qn_xxh3_64(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

struct qn_hash128 qn_xxh3_128(const void *p, size_t n, uint64_t seed)
{
	XXH128_hash_t h = XXH3_128bits_withSeed(p, n, seed);
	struct qn_hash128 r = {h.high64, h.low64};

	return r;
}

void qn_hash128_hex(struct qn_hash128 h, char out[33])
{
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.hi,
		 (unsigned long long)h.lo);
}

int qn_sha256_init(struct qn_sha256 *s)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	s->md = c;
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		s->md = NULL;
		return -1;
	}
	return 0;
}

void qn_sha256_update(struct qn_sha256 *s, const void *p, size_t n)
{
	if (s->md && n)
		EVP_DigestUpdate(s->md, p, n);
}

void qn_sha256_final(struct qn_sha256 *s, char hex[65])
{
	unsigned char d[32];
	unsigned int len = 0;
	static const char digits[] = "0123456789abcdef";

	hex[0] = 0;
	if (!s->md)
		return;
	EVP_DigestFinal_ex(s->md, d, &len);
	for (unsigned int i = 0; i < 32; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[64] = 0;
	qn_sha256_release(s);
}

void qn_sha256_release(struct qn_sha256 *s)
{
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
}

void qn_sha256_hex(const void *p, size_t n, char hex[65])
{
	struct qn_sha256 s;

	if (qn_sha256_init(&s) < 0) {
		hex[0] = 0;
		return;
	}
	qn_sha256_update(&s, p, n);
	qn_sha256_final(&s, hex);
}

int qn_sha256_file(const char *path, char hex[65], uint64_t *size, struct qn_err *e)
{
	char buf[1 << 16];
	struct qn_sha256 s;
	uint64_t total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return qn_errno(e, errno, "cannot open '%s'", path);
	if (qn_sha256_init(&s) < 0) {
		close(fd);
		return qn_errf(e, "cannot hash '%s': out of memory", path);
	}
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			qn_errno(e, errno, "cannot read '%s'", path);
			qn_sha256_release(&s);
			close(fd);
			return -1;
		}
		qn_sha256_update(&s, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	qn_sha256_final(&s, hex);
	if (size)
		*size = total;
	return 0;
}
