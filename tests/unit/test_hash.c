/*
 * test_hash.c - lib/hash: SHA-256 against the FIPS 180-2 test vectors,
 * streaming against one-shot, qn_sha256_file on a temp file, and xxh3
 * against the upstream xxHash anchors (cli/xsum_sanity_check.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "hash.h"

static const char *SHA_EMPTY =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *SHA_448 = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char *SHA_MILLION_A =
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
static const char *MSG_448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

static int is_lower_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void test_sha256_known(void)
{
	char hex[65];

	qn_sha256_hex("", 0, hex);
	CHECK_STR("sha256 of empty", hex, SHA_EMPTY);
	qn_sha256_hex("abc", 3, hex);
	CHECK_STR("sha256 of abc", hex, SHA_ABC);
	qn_sha256_hex(MSG_448, strlen(MSG_448), hex);
	CHECK_STR("sha256 of the 448-bit message", hex, SHA_448);
	CHECK_NAMED("sha256 hex is 64 lowercase hex digits", is_lower_hex(hex, 64));

	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	qn_sha256_hex(a, 1000000, hex);
	CHECK_STR("sha256 of a million 'a'", hex, SHA_MILLION_A);

	/* The same million in uneven pieces through the streaming API. */
	struct qn_sha256 s;
	CHECK_NAMED("sha256 init", qn_sha256_init(&s) == 0);
	size_t off = 0, step = 1;
	while (off < 1000000) {
		size_t k = step < 1000000 - off ? step : 1000000 - off;
		qn_sha256_update(&s, a + off, k);
		off += k;
		step = step * 3 + 1;
		if (step > 70000)
			step = 7;
	}
	qn_sha256_final(&s, hex);
	CHECK_STR("streaming a million 'a' in pieces equals one-shot", hex, SHA_MILLION_A);
	CHECK_NAMED("final frees the context", s.md == NULL);
	free(a);

	/* Byte by byte, with zero-length updates mixed in. */
	CHECK_NAMED("sha256 init again", qn_sha256_init(&s) == 0);
	for (size_t i = 0; i < strlen(MSG_448); i++) {
		qn_sha256_update(&s, MSG_448 + i, 1);
		qn_sha256_update(&s, MSG_448, 0);
	}
	qn_sha256_final(&s, hex);
	CHECK_STR("streaming byte by byte equals one-shot", hex, SHA_448);

	/* Release of an unfinished context, and of a released one, is safe. */
	CHECK_NAMED("sha256 init for release", qn_sha256_init(&s) == 0);
	qn_sha256_update(&s, "abc", 3);
	qn_sha256_release(&s);
	qn_sha256_release(&s);
	CHECK_NAMED("release clears the context", s.md == NULL);
}

static void test_sha256_file(void)
{
	char dir[] = "/tmp/qn_test_hash_XXXXXX", path[256], hex[65], want[65];
	struct qn_err e = {{0}};
	uint64_t size = 12345;
	FILE *f;

	CHECK_NAMED("mkdtemp", mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/abc.txt", dir);
	f = fopen(path, "wb");
	fputs("abc", f);
	fclose(f);
	CHECK_NAMED("sha256_file ok", qn_sha256_file(path, hex, &size, &e) == 0);
	CHECK_STR("sha256_file of 'abc'", hex, SHA_ABC);
	CHECK_NAMED("sha256_file size", size == 3);

	/* Bigger than its 64 KiB read buffer, not a multiple of it. */
	size_t n = 200000 + 17;
	unsigned char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 9));
	f = fopen(path, "wb");
	fwrite(data, 1, n, f);
	fclose(f);
	qn_sha256_hex(data, n, want);
	CHECK_NAMED("sha256_file big ok", qn_sha256_file(path, hex, &size, &e) == 0);
	CHECK_STR("sha256_file of a 200 KB file equals in-memory hash", hex, want);
	CHECK_NAMED("sha256_file big size", size == n);
	CHECK_NAMED("sha256_file with NULL size", qn_sha256_file(path, hex, NULL, &e) == 0);
	free(data);

	f = fopen(path, "wb");
	fclose(f);
	CHECK_NAMED("sha256_file empty ok", qn_sha256_file(path, hex, &size, &e) == 0);
	CHECK_STR("sha256_file of an empty file", hex, SHA_EMPTY);
	CHECK_NAMED("sha256_file empty size", size == 0);
	unlink(path);

	e.msg[0] = 0;
	CHECK_NAMED("sha256_file of a missing file fails", qn_sha256_file(path, hex, &size, &e) == -1);
	CHECK_NAMED("missing file message names the path", strstr(e.msg, path) != NULL);
	CHECK_NAMED("missing file message gives the reason",
		    strstr(e.msg, "No such file") != NULL);
	CHECK_NAMED("sha256_file with NULL err fails quietly",
		    qn_sha256_file(path, hex, &size, NULL) == -1);
	/* A directory opens but does not read. */
	e.msg[0] = 0;
	CHECK_NAMED("sha256_file of a directory fails", qn_sha256_file(dir, hex, &size, &e) == -1);
	CHECK_NAMED("directory message is filled", e.msg[0] != 0);
	rmdir(dir);
}

static void test_xxh3(void)
{
	static const char *text = "The quick brown fox jumps over the lazy dog";
	char hex[33];

	CHECK_NAMED("xxh3_64 of empty (upstream anchor)",
		    qn_xxh3_64("", 0, 0) == 0x2D06800538D394C2ULL);
	CHECK_NAMED("xxh3_64 of 'a' (upstream anchor)",
		    qn_xxh3_64("a", 1, 0) == 0xE6C632B61E964E1FULL);
	CHECK_NAMED("xxh3_64 of 'abc' (upstream anchor)",
		    qn_xxh3_64("abc", 3, 0) == 0x78AF5F94892F3950ULL);
	struct qn_hash128 h = qn_xxh3_128("", 0, 0);
	CHECK_NAMED("xxh3_128 of empty (upstream anchor)",
		    h.hi == 0x99AA06D3014798D8ULL && h.lo == 0x6001C324468D497FULL);
	qn_hash128_hex(h, hex);
	CHECK_STR("xxh3_128 hex is high then low", hex, "99aa06d3014798d86001c324468d497f");

	size_t n = strlen(text);
	CHECK_NAMED("xxh3_64 deterministic", qn_xxh3_64(text, n, 0) == qn_xxh3_64(text, n, 0));
	CHECK_NAMED("xxh3_64 seed-sensitive", qn_xxh3_64(text, n, 0) != qn_xxh3_64(text, n, 1));
	CHECK_NAMED("xxh3_64 content-sensitive",
		    qn_xxh3_64(text, n, 0) != qn_xxh3_64(text, n - 1, 0));
	struct qn_hash128 a = qn_xxh3_128(text, n, 7), b = qn_xxh3_128(text, n, 7),
			  c = qn_xxh3_128(text, n, 8);
	CHECK_NAMED("xxh3_128 deterministic", a.hi == b.hi && a.lo == b.lo);
	CHECK_NAMED("xxh3_128 seed-sensitive", a.hi != c.hi && a.lo != c.lo);
	/* Large inputs go through a different code path (> 240 bytes). */
	char big[5000];
	memset(big, 'z', sizeof big);
	uint64_t x1 = qn_xxh3_64(big, sizeof big, 0);
	big[4321] = 'y';
	CHECK_NAMED("xxh3_64 big input: one byte changes the hash",
		    x1 != qn_xxh3_64(big, sizeof big, 0));

	/* Hex: 32 digits, zero padded (a hash with small halves keeps its width). */
	struct qn_hash128 small = {0x1, 0xABC};
	qn_hash128_hex(small, hex);
	CHECK_STR("hash128_hex zero pads both halves", hex, "0000000000000001" "0000000000000abc");
	qn_hash128_hex(a, hex);
	CHECK_NAMED("hash128_hex is 32 lowercase hex digits", is_lower_hex(hex, 32));
	char want[33];
	snprintf(want, sizeof want, "%016llx%016llx", (unsigned long long)a.hi,
		 (unsigned long long)a.lo);
	CHECK_STR("hash128_hex matches the halves", hex, want);
}

int main(void)
{
	test_sha256_known();
	test_sha256_file();
	test_xxh3();
	return CHECK_DONE();
}
