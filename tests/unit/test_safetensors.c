/*
 * test_safetensors.c - lib/safetensors: a round trip through the writer and
 * the reader (bytes, shapes, metadata, the layout of the header and the
 * data), hand-built files whose F16, BF16 and F64 values are checked against
 * floats worked out by hand and, for all 65536 F16 patterns, against an
 * independent decoding (and the compiler's _Float16 where there is one);
 * every rule of the format broken once, each refusal naming the file and
 * the tensor or the header; valid corner cases (no tensors, zero-size
 * tensors, scalars, padding); open on missing, empty, short and non-regular
 * files; writing to /dev/full. Works in a mkdtemp folder under $TMPDIR (or
 * /tmp), removed at the end.
 *
 *   test_safetensors              the tests
 *   test_safetensors --seeds DIR  writes the valid and invalid images for
 *                                 the fuzz corpus into DIR
 */
#define _XOPEN_SOURCE 700
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "safetensors.h"
#include "testfs.h"

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A file image: the header's length, the header, then data (zeros when NULL). */
struct image {
	unsigned char *b;
	size_t len;
};

static struct image image(const char *header, const void *data, size_t dlen)
{
	size_t h = strlen(header);
	struct image im = {malloc(8 + h + dlen + 1), 8 + h + dlen};

	put64(im.b, h);
	memcpy(im.b + 8, header, h);
	if (data)
		memcpy(im.b + 8 + h, data, dlen);
	else
		memset(im.b + 8 + h, 0, dlen);
	return im;
}

static int bits_equal(float a, float b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- the broken files ---- */

struct bad {
	const char *seed; /* corpus file name */
	const char *header;
	size_t dlen;
	const char *want; /* in the message, after "'mem': " */
};

#define T4 "\"dtype\":\"F32\",\"shape\":[1]"

static const struct bad bads[] = {
    {"bad_json", "{\"w\":{" T4 ",\"data_offsets\":[0,4]}", 4, "header: "},
    {"bad_json_trailing", "{} x", 0, "header: "},
    {"bad_not_brace", " {}", 0, "header: does not start with '{'"},
    {"bad_not_brace_array", "[]", 0, "header: does not start with '{'"},
    {"bad_duplicate",
     "{\"w\":{" T4 ",\"data_offsets\":[0,4]},\"w\":{" T4 ",\"data_offsets\":[4,8]}}", 8,
     "header: duplicate"},
    {"bad_duplicate_field", "{\"w\":{" T4 ",\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
     "header: duplicate"},
    {"bad_utf8", "{\"w\xff\":{" T4 ",\"data_offsets\":[0,4]}}", 4, "header: "},
    {"bad_huge_int",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],"
     "\"data_offsets\":[0,0]}}",
     0, "header: "},
    {"bad_entry", "{\"w\":[1]}", 0, "tensor 'w': entry is not an object"},
    {"bad_no_dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': no dtype"},
    {"bad_dtype_type", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': no dtype"},
    {"bad_dtype", "{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
     "tensor 'w': unknown dtype 'F8'"},
    {"bad_no_shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': no shape"},
    {"bad_shape_negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': shape"},
    {"bad_shape_real", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': shape"},
    {"bad_shape_ndim",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
     "tensor 'w': 9 dimensions"},
    {"bad_no_offsets", "{\"w\":{" T4 "}}", 4, "tensor 'w': data_offsets"},
    {"bad_offsets_three", "{\"w\":{" T4 ",\"data_offsets\":[0,4,4]}}", 4,
     "tensor 'w': data_offsets"},
    {"bad_offsets_negative", "{\"w\":{" T4 ",\"data_offsets\":[-4,0]}}", 4,
     "tensor 'w': data_offsets"},
    {"bad_offsets_decrease", "{\"w\":{" T4 ",\"data_offsets\":[4,0]}}", 4,
     "tensor 'w': data_offsets [4, 0] decrease"},
    {"bad_length", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
     "tensor 'w': data_offsets [0, 20] hold 20 bytes, its shape and F32 want 24"},
    {"bad_length_scalar", "{\"w\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': data_offsets [0, 4] hold 4 bytes"},
    {"bad_overlap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, "tensor 'b': data_offsets overlap those of tensor 'a'"},
    {"bad_overlap_same",
     "{\"b\":{" T4 ",\"data_offsets\":[0,4]},\"a\":{" T4 ",\"data_offsets\":[0,4]}}", 4,
     "tensor 'b': data_offsets overlap those of tensor 'a'"},
    {"bad_overlap_empty",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
     8, "tensor 'z': data_offsets overlap those of tensor 'a'"},
    {"bad_hole", "{\"a\":{" T4 ",\"data_offsets\":[0,4]},\"b\":{" T4 ",\"data_offsets\":[8,12]}}",
     12, "tensor 'b': a hole of 4 bytes"},
    {"bad_hole_first", "{\"a\":{" T4 ",\"data_offsets\":[4,8]}}", 8,
     "tensor 'a': a hole of 4 bytes"},
    {"bad_past_end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
     "tensor 'a': data_offsets [0, 8] run past the 4-byte data buffer"},
    {"bad_trailing_data", "{\"a\":{" T4 ",\"data_offsets\":[0,4]}}", 8,
     "header: tensors cover 4 bytes of the 8-byte data buffer"},
    {"bad_data_no_tensors", "{}", 1, "header: tensors cover 0 bytes of the 1-byte"},
    {"bad_overflow_numel",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
     "tensor 'w': size of shape overflows"},
    {"bad_overflow_bytes",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0,
     "tensor 'w': size of shape overflows"},
    {"bad_overflow_wrap",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}", 0,
     "tensor 'w': size of shape overflows"},
    {"bad_meta_type", "{\"__metadata__\":[\"a\"]}", 0, "header: __metadata__ is not an object"},
    {"bad_meta_value", "{\"__metadata__\":{\"format\":1}}", 0,
     "header: __metadata__ value 'format' is not a string"},
};

/* Images with a bad header size: (size field, bytes after it). */
struct bad_size {
	const char *seed;
	uint64_t n;
	size_t rest;
	const char *want;
};

static const struct bad_size bad_sizes[] = {
    {"bad_size_zero", 0, 4, "header: does not start with '{'"},
    {"bad_size_past_end", 100, 10, "header: size 100 bytes runs past the end of the 18-byte file"},
    {"bad_size_huge", UINT64_MAX, 10, "header: size 18446744073709551615 bytes, at most"},
    {"bad_size_limit", QN_ST_HEADER_MAX + 1ull, 10, "header: size 104857601 bytes, at most"},
};

static void test_invalid(void)
{
	struct qn_err e;
	char label[128], want[256];

	for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
		struct image im = image(bads[i].header, NULL, bads[i].dlen);
		strcpy(e.msg, "");
		struct qn_st *st = qn_st_parse_mem(im.b, im.len, "mem", &e);
		snprintf(label, sizeof label, "invalid %s refused", bads[i].seed);
		CHECK_NAMED(label, st == NULL);
		snprintf(label, sizeof label, "invalid %s message", bads[i].seed);
		snprintf(want, sizeof want, "'mem': %s", bads[i].want);
		CHECK_NAMED(label, !strncmp(e.msg, want, strlen(want)));
		if (strncmp(e.msg, want, strlen(want)))
			printf("  got:  [%s]\n  want: [%s...]\n", e.msg, want);
		qn_st_close(st);
		free(im.b);
	}
	for (size_t i = 0; i < sizeof bad_sizes / sizeof *bad_sizes; i++) {
		unsigned char b[64] = "........{}";
		put64(b, bad_sizes[i].n);
		struct qn_st *st = qn_st_parse_mem(b, 8 + bad_sizes[i].rest, "mem", &e);
		snprintf(label, sizeof label, "invalid %s refused", bad_sizes[i].seed);
		CHECK_NAMED(label, st == NULL);
		snprintf(want, sizeof want, "'mem': %s", bad_sizes[i].want);
		snprintf(label, sizeof label, "invalid %s message", bad_sizes[i].seed);
		CHECK_NAMED(label, st == NULL && contains(e.msg, want));
		if (!contains(e.msg, want))
			printf("  got:  [%s]\n  want: [%s]\n", e.msg, want);
		qn_st_close(st);
	}
	for (size_t n = 0; n < 8; n++) {
		unsigned char b[8] = {2, 0, 0, 0, 0, 0, 0, 0};
		struct qn_st *st = qn_st_parse_mem(b, n, "mem", &e);
		snprintf(label, sizeof label, "a %zu-byte image refused", n);
		CHECK_NAMED(label, st == NULL && !strncmp(e.msg, "'mem': header: ", 15));
		qn_st_close(st);
	}
	CHECK_STR("empty image message", (qn_st_parse_mem("", 0, "mem", &e), e.msg),
		  "'mem': header: empty file");
	CHECK(qn_st_parse_mem("", 0, NULL, &e) == NULL && contains(e.msg, "header"));
	CHECK(qn_st_parse_mem("", 0, "mem", NULL) == NULL);
}

/* ---- valid corner cases ---- */

static struct qn_st *parse(const char *header, const void *data, size_t dlen, struct qn_err *e)
{
	struct image im = image(header, data, dlen);
	struct qn_st *st = qn_st_parse_mem(im.b, im.len, "mem", e);

	free(im.b);
	return st;
}

static void test_valid_corners(void)
{
	struct qn_err e = {""};
	struct qn_st *st;

	st = parse("{}", NULL, 0, &e);
	CHECK_NAMED("{} is a valid file", st != NULL && qn_st_count(st) == 0);
	if (!st)
		printf("  %s\n", e.msg);
	CHECK(st && qn_st_at(st, 0) == NULL && qn_st_find(st, "x") == NULL);
	CHECK(st && qn_st_meta(st, "format") == NULL);
	CHECK_STR("name", st ? qn_st_name(st) : NULL, "mem");
	qn_st_close(st);

	st = parse("{}      ", NULL, 0, &e);
	CHECK_NAMED("trailing spaces after the object", st != NULL);
	qn_st_close(st);
	st = parse("{}\n\t\r ", NULL, 0, &e);
	CHECK_NAMED("trailing JSON whitespace after the object", st != NULL);
	qn_st_close(st);
	st = parse("{\"__metadata__\":{}}", NULL, 0, &e);
	CHECK_NAMED("only an empty __metadata__", st != NULL && qn_st_count(st) == 0);
	qn_st_close(st);

	/* Zero-size tensors at the start, between two tensors and at the end. */
	st = parse("{\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},"
		   "\"z2\":{\"dtype\":\"I32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
		   "\"a\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
		   "\"z3\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[8,8]},"
		   "\"z1\":{\"dtype\":\"U64\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
		   "\"z0\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"extra\":1}}",
		   "\1\0\0\0\2\0\0\0", 8, &e);
	CHECK_NAMED("zero-size tensors between the others", st != NULL && qn_st_count(st) == 6);
	if (!st)
		printf("  %s\n", e.msg);
	if (st) {
		static const char *const order[] = {"z0", "z1", "a", "z2", "b", "z3"};
		int ok = 1;
		for (size_t i = 0; i < 6; i++)
			ok &= !strcmp(qn_st_at(st, i)->name, order[i]);
		CHECK_NAMED("listed by (begin, end, name)", ok);
		const struct qn_st_tensor *a = qn_st_find(st, "a"), *z2 = qn_st_find(st, "z2");
		CHECK(a && a->ndim == 0 && a->numel == 1 && a->dtype == QN_ST_I32);
		CHECK(a && !memcmp(qn_st_data(st, a), "\1\0\0\0", 4));
		CHECK(z2 && z2->ndim == 2 && z2->shape[0] == 0 && z2->shape[1] == 3 &&
		      z2->numel == 0);
		CHECK(qn_st_find(st, "z3") && qn_st_find(st, "z3")->begin == 8);
		CHECK(qn_st_find(st, "b") && !memcmp(qn_st_data(st, qn_st_find(st, "b")), "\2", 1));
		CHECK(qn_st_find(st, "zz") == NULL && qn_st_find(st, "") == NULL);
		float f;
		CHECK_NAMED("read_f32 refuses I32",
			    qn_st_read_f32(st, a, &f, 1, &e) < 0 &&
				contains(e.msg, "'mem': tensor 'a': cannot read I32 as float"));
	}
	qn_st_close(st);

	/* Only zero-size tensors, no data; a dimension of 0 beside a huge one. */
	st = parse("{\"e\":{\"dtype\":\"F64\",\"shape\":[0,9223372036854775807],"
		   "\"data_offsets\":[0,0]}}",
		   NULL, 0, &e);
	CHECK_NAMED("a zero dimension beside a huge one", st != NULL && qn_st_count(st) == 1);
	if (st) {
		float f;
		CHECK(qn_st_read_f32(st, qn_st_at(st, 0), &f, 0, &e) == 0);
	}
	qn_st_close(st);
}

/* ---- F16, BF16 and F64 against known floats ---- */

static const struct {
	uint16_t h;
	float f;
} f16_known[] = {
    {0x3c00, 1.0f},
    {0xc000, -2.0f},
    {0x0001, 5.960464477539063e-08f},
    {0x8001, -5.960464477539063e-08f},
    {0x03ff, 6.097555160522461e-05f}, /* the largest subnormal */
    {0x0400, 6.103515625e-05f},	      /* the smallest normal */
    {0x7bff, 65504.0f},
    {0x3555, 0.333251953125f},
    {0x0000, 0.0f},
    {0x8000, -0.0f},
    {0x7c00, INFINITY},
    {0xfc00, -INFINITY},
};

static const struct {
	uint16_t h;
	float f;
} bf16_known[] = {
    {0x3f80, 1.0f},	{0xc040, -3.0f},     {0x4049, 3.140625f},
    {0x7f80, INFINITY}, {0xff80, -INFINITY}, {0x0001, 9.183549615799121e-41f},
    {0x8000, -0.0f},
};

static void test_conversions(void)
{
	enum {
		NF16 = sizeof f16_known / sizeof *f16_known,
		NBF = sizeof bf16_known / sizeof *bf16_known
	};
	static const double f64s[] = {
	    0.1, -1e300, 1e300, 1e-50, FLT_MAX, 0x1.ffffffp127, 0x1.fffffefffffffp127, 16777217.0,
	};
	static const float f64_want[] = {
	    0.1f, -INFINITY, INFINITY, 0.0f, FLT_MAX, INFINITY, FLT_MAX, 16777216.0f,
	};
	enum { NF64 = sizeof f64s / sizeof *f64s };
	unsigned char data[2 * (NF16 + 1) + 2 * NBF + 8 * NF64 + 8], *p = data;
	char header[1024];
	struct qn_err e = {""};

	for (size_t i = 0; i < NF16; i++, p += 2) {
		p[0] = (unsigned char)f16_known[i].h;
		p[1] = (unsigned char)(f16_known[i].h >> 8);
	}
	*p++ = 0x00; /* a NaN */
	*p++ = 0x7e;
	for (size_t i = 0; i < NBF; i++, p += 2) {
		p[0] = (unsigned char)bf16_known[i].h;
		p[1] = (unsigned char)(bf16_known[i].h >> 8);
	}
	for (size_t i = 0; i < NF64; i++, p += 8) {
		uint64_t u;
		memcpy(&u, &f64s[i], 8);
		put64(p, u);
	}
	memcpy(p, "\0\0\x80\x3f\0\0\0\xc0", 8); /* F32 1, -2 */
	p += 8;
	size_t o1 = 2 * (NF16 + 1), o2 = o1 + 2 * NBF, o3 = o2 + 8 * NF64;
	snprintf(header, sizeof header,
		 "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%zu]},"
		 "\"b\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]},"
		 "\"d\":{\"dtype\":\"F64\",\"shape\":[%d,1],\"data_offsets\":[%zu,%zu]},"
		 "\"s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%zu,%zu]}}",
		 NF16 + 1, o1, NBF, o1, o2, NF64, o2, o3, o3, o3 + 8);
	struct qn_st *st = parse(header, data, (size_t)(p - data), &e);
	CHECK_NAMED("hand-built F16/BF16/F64/F32 file", st != NULL);
	if (!st) {
		printf("  %s\n", e.msg);
		return;
	}
	float out[64];
	const struct qn_st_tensor *h = qn_st_find(st, "h"), *b = qn_st_find(st, "b");
	const struct qn_st_tensor *d = qn_st_find(st, "d"), *s = qn_st_find(st, "s");
	char label[128];

	CHECK(h && b && d && s && qn_st_at(st, 0) == h && qn_st_at(st, 3) == s);
	CHECK(qn_st_read_f32(st, h, out, NF16 + 1, &e) == 0);
	for (size_t i = 0; i < NF16; i++) {
		snprintf(label, sizeof label, "F16 0x%04x is %g", f16_known[i].h, f16_known[i].f);
		CHECK_NAMED(label, bits_equal(out[i], f16_known[i].f));
	}
	CHECK_NAMED("F16 0x7e00 is NaN", isnan(out[NF16]));
	CHECK(qn_st_read_f32(st, b, out, NBF, &e) == 0);
	for (size_t i = 0; i < NBF; i++) {
		snprintf(label, sizeof label, "BF16 0x%04x is %g", bf16_known[i].h,
			 bf16_known[i].f);
		CHECK_NAMED(label, bits_equal(out[i], bf16_known[i].f));
	}
	CHECK(qn_st_read_f32(st, d, out, NF64, &e) == 0);
	for (size_t i = 0; i < NF64; i++) {
		snprintf(label, sizeof label, "F64 %a narrows to %a", f64s[i], (double)f64_want[i]);
		CHECK_NAMED(label, bits_equal(out[i], f64_want[i]));
	}
	CHECK(qn_st_read_f32(st, s, out, 2, &e) == 0 && out[0] == 1.0f && out[1] == -2.0f);
	CHECK_NAMED("read_f32 refuses a short buffer",
		    qn_st_read_f32(st, s, out, 1, &e) < 0 &&
			contains(e.msg, "'mem': tensor 's': room for 1 floats, it holds 2"));
	CHECK_NAMED("read_f32 refuses a long buffer",
		    qn_st_read_f32(st, s, out, 3, &e) < 0 && contains(e.msg, "tensor 's'"));
	qn_st_close(st);
}

/* Every F16 pattern against sign * 2^(e-15) * (1 + m/1024) worked out in double. */
static void test_f16_all(void)
{
	unsigned char *data = malloc(2 * 65536);
	float *out = malloc(65536 * sizeof *out);
	char header[128];
	struct qn_err e = {""};
	int bad = 0, bad_native = 0;

	for (unsigned i = 0; i < 65536; i++) {
		data[2 * i] = (unsigned char)i;
		data[2 * i + 1] = (unsigned char)(i >> 8);
	}
	snprintf(header, sizeof header,
		 "{\"all\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}");
	struct qn_st *st = parse(header, data, 2 * 65536, &e);
	CHECK(st && qn_st_read_f32(st, qn_st_at(st, 0), out, 65536, &e) == 0);
	for (unsigned i = 0; st && i < 65536; i++) {
		int sign = i >> 15, ex = (i >> 10) & 31, m = i & 1023;
		double want;
		if (ex == 31)
			want = m ? NAN : INFINITY;
		else if (ex == 0)
			want = ldexp(m, -24);
		else
			want = ldexp(1024 + m, ex - 25);
		want = sign ? -want : want;
		if (isnan(want) ? !isnan(out[i]) : !bits_equal(out[i], (float)want))
			bad++;
#ifdef __FLT16_MAX__
		_Float16 x;
		uint16_t u = (uint16_t)i;
		memcpy(&x, &u, 2);
		if (isnan((float)x) ? !isnan(out[i]) : !bits_equal(out[i], (float)x))
			bad_native++;
#endif
	}
	CHECK_NAMED("all 65536 F16 patterns decode as sign * 2^e * mantissa", st && bad == 0);
	CHECK_NAMED("all 65536 F16 patterns decode as _Float16 does", st && bad_native == 0);
	qn_st_close(st);
	free(out);
	free(data);
}

/* ---- writing and reading back ---- */

static float w_f32[2][3] = {{1, 2, 3}, {4, 5, -6.5f}};
static const uint16_t w_f16[4] = {0x3c00, 0xc000, 0x0001, 0x7c00};
static const uint16_t w_bf16[2] = {0x3f80, 0xc040};
static const double w_f64 = 2.5;
static const unsigned char w_bool[3] = {1, 0, 1};

static struct qn_st_writer *sample_writer(struct qn_err *e)
{
	struct qn_st_writer *w = qn_st_writer_new();
	uint64_t s23[] = {2, 3}, s4[] = {4}, s2[] = {2}, s05[] = {0, 5}, s3[] = {3};

	if (!w || qn_st_writer_add(w, "model.w", QN_ST_F32, 2, s23, w_f32, e) < 0 ||
	    qn_st_writer_add(w, "half", QN_ST_F16, 1, s4, w_f16, e) < 0 ||
	    qn_st_writer_add(w, "brain", QN_ST_BF16, 1, s2, w_bf16, e) < 0 ||
	    qn_st_writer_add(w, "scalar", QN_ST_F64, 0, NULL, &w_f64, e) < 0 ||
	    qn_st_writer_add(w, "empty", QN_ST_I32, 2, s05, NULL, e) < 0 ||
	    qn_st_writer_add(w, "flags", QN_ST_BOOL, 1, s3, w_bool, e) < 0 ||
	    qn_st_writer_meta(w, "format", "np", e) < 0 ||
	    qn_st_writer_meta(w, "note", "caf\xc3\xa9 \"q\"\n", e) < 0 ||
	    qn_st_writer_meta(w, "format", "pt", e) < 0) {
		qn_st_writer_free(w);
		return NULL;
	}
	return w;
}

static void test_writer_refusals(void)
{
	struct qn_st_writer *w = qn_st_writer_new();
	struct qn_err e = {""};
	uint64_t s1[] = {1}, big[] = {UINT64_MAX}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	uint64_t wrap[] = {1ull << 62, 4}, huge[] = {1ull << 62};
	float f = 0;

	CHECK(qn_st_writer_add(w, "x", QN_ST_F32, 1, s1, &f, &e) == 0);
	CHECK_NAMED("writer refuses a duplicate",
		    qn_st_writer_add(w, "x", QN_ST_F32, 1, s1, &f, &e) < 0 &&
			contains(e.msg, "tensor 'x': added twice"));
	CHECK_NAMED("writer refuses __metadata__ as a name",
		    qn_st_writer_add(w, "__metadata__", QN_ST_F32, 1, s1, &f, &e) < 0 &&
			contains(e.msg, "bad name"));
	CHECK_NAMED("writer refuses an empty name",
		    qn_st_writer_add(w, "", QN_ST_F32, 1, s1, &f, &e) < 0);
	CHECK_NAMED("writer refuses a name that is not UTF-8",
		    qn_st_writer_add(w, "a\xff", QN_ST_F32, 1, s1, &f, &e) < 0);
	CHECK_NAMED("writer refuses a bad dtype",
		    qn_st_writer_add(w, "y", QN_ST_NDTYPES, 1, s1, &f, &e) < 0 &&
			contains(e.msg, "tensor 'y': bad dtype"));
	CHECK_NAMED("writer refuses a negative dtype",
		    qn_st_writer_add(w, "y", -1, 1, s1, &f, &e) < 0);
	CHECK_NAMED("writer refuses 9 dimensions",
		    qn_st_writer_add(w, "y", QN_ST_U8, 9, s9, &f, &e) < 0 &&
			contains(e.msg, "tensor 'y': 9 dimensions"));
	CHECK_NAMED("writer refuses -1 dimensions",
		    qn_st_writer_add(w, "y", QN_ST_U8, -1, s1, &f, &e) < 0);
	CHECK_NAMED("writer refuses a dimension past int64",
		    qn_st_writer_add(w, "y", QN_ST_U8, 1, big, &f, &e) < 0);
	CHECK_NAMED("writer refuses an element count that overflows",
		    qn_st_writer_add(w, "y", QN_ST_U8, 2, wrap, &f, &e) < 0 &&
			contains(e.msg, "tensor 'y': size of shape overflows"));
	CHECK_NAMED("writer refuses a byte count that overflows",
		    qn_st_writer_add(w, "y", QN_ST_F32, 1, huge, &f, &e) < 0);
	CHECK_NAMED("writer refuses data NULL",
		    qn_st_writer_add(w, "y", QN_ST_F32, 1, s1, NULL, &e) < 0 &&
			contains(e.msg, "tensor 'y': no data"));
	CHECK_NAMED("writer refuses metadata that is not UTF-8",
		    qn_st_writer_meta(w, "k", "\xc3", &e) < 0);
	CHECK(qn_st_writer_add(w, "y", QN_ST_F32, 1, s1, &f, &e) == 0);
	qn_st_writer_free(w);
	qn_st_writer_free(NULL);
	qn_st_close(NULL);
}

static void test_roundtrip(void)
{
	struct qn_err e = {""};
	struct qn_st_writer *w = sample_writer(&e);
	const char *path = in_top("rt.safetensors");

	CHECK_NAMED("sample writer", w != NULL);
	if (!w) {
		printf("  %s\n", e.msg);
		return;
	}
	CHECK(qn_st_writer_write(w, path, &e) == 0);
	size_t len;
	unsigned char *img = slurp(path, &len);
	CHECK(img && len >= 8);
	if (!img || len < 8)
		goto out;
	uint64_t n = get64(img);
	CHECK_NAMED("header length a multiple of 8", n % 8 == 0 && 8 + n <= len);
	/* Tensor bytes: 24 + 8 + 4 + 8 + 0 + 3; the header padded with spaces. */
	CHECK_NAMED("data buffer size", len - 8 - n == 24 + 8 + 4 + 8 + 3);
	const char *want_start = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\xc3\xa9 "
				 "\\\"q\\\"\\n\"},\"brain\":{\"dtype\":\"BF16\",\"shape\":[2],"
				 "\"data_offsets\":[0,4]},\"empty\":{\"dtype\":\"I32\","
				 "\"shape\":[0,5],\"data_offsets\":[4,4]},";
	CHECK_NAMED("header: __metadata__ first, then names sorted, compact",
		    n >= strlen(want_start) && !memcmp(img + 8, want_start, strlen(want_start)));
	size_t end = (size_t)n;
	while (end > 0 && img[8 + end - 1] == ' ')
		end--;
	CHECK_NAMED("header padded with fewer than 8 spaces after '}'",
		    end > 0 && img[8 + end - 1] == '}' && n - end < 8);

	struct qn_st *st = qn_st_open(path, &e);
	CHECK_NAMED("written file opens", st != NULL);
	if (!st) {
		printf("  %s\n", e.msg);
		free(img);
		goto out;
	}
	CHECK_STR("open name", qn_st_name(st), path);
	CHECK(qn_st_count(st) == 6);
	static const char *const by_offset[] = {"brain", "empty",   "flags",
						"half",	 "model.w", "scalar"};
	int ok = 1;
	for (size_t i = 0; i < 6; i++)
		ok &= qn_st_at(st, i) && !strcmp(qn_st_at(st, i)->name, by_offset[i]) &&
		      (i == 0 || qn_st_at(st, i)->begin == qn_st_at(st, i - 1)->end);
	CHECK_NAMED("data written in name order", ok);
	CHECK(qn_st_at(st, 6) == NULL);
	CHECK_STR("meta format", qn_st_meta(st, "format"), "pt");
	CHECK_STR("meta note", qn_st_meta(st, "note"), "caf\xc3\xa9 \"q\"\n");
	CHECK(qn_st_meta(st, "absent") == NULL);

	const struct qn_st_tensor *t = qn_st_find(st, "model.w");
	CHECK(t && t->dtype == QN_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
	      t->numel == 6 && t->end - t->begin == 24);
	CHECK(t && !memcmp(qn_st_data(st, t), w_f32, 24));
	float out[6];
	CHECK(t && qn_st_read_f32(st, t, out, 6, &e) == 0 && !memcmp(out, w_f32, 24));
	t = qn_st_find(st, "half");
	CHECK(t && t->dtype == QN_ST_F16 && t->numel == 4 && !memcmp(qn_st_data(st, t), w_f16, 8));
	CHECK(t && qn_st_read_f32(st, t, out, 4, &e) == 0 && out[0] == 1.0f && out[1] == -2.0f &&
	      out[2] == 5.960464477539063e-08f && isinf(out[3]));
	t = qn_st_find(st, "brain");
	CHECK(t && t->dtype == QN_ST_BF16 && !memcmp(qn_st_data(st, t), w_bf16, 4));
	CHECK(t && qn_st_read_f32(st, t, out, 2, &e) == 0 && out[0] == 1.0f && out[1] == -3.0f);
	t = qn_st_find(st, "scalar");
	CHECK(t && t->dtype == QN_ST_F64 && t->ndim == 0 && t->numel == 1 &&
	      !memcmp(qn_st_data(st, t), &w_f64, 8));
	CHECK(t && qn_st_read_f32(st, t, out, 1, &e) == 0 && out[0] == 2.5f);
	t = qn_st_find(st, "empty");
	CHECK(t && t->dtype == QN_ST_I32 && t->numel == 0 && t->begin == t->end);
	t = qn_st_find(st, "flags");
	CHECK(t && t->dtype == QN_ST_BOOL && !memcmp(qn_st_data(st, t), w_bool, 3));
	CHECK(t && qn_st_read_f32(st, t, out, 3, &e) < 0 &&
	      contains(e.msg, "tensor 'flags': cannot read BOOL as float"));
	qn_st_close(st);

	/* The writer can write again, and the same input gives the same bytes. */
	const char *path2 = in_top("rt2.safetensors");
	CHECK(qn_st_writer_write(w, path2, &e) == 0);
	size_t len2;
	unsigned char *img2 = slurp(path2, &len2);
	CHECK_NAMED("written twice, the same bytes",
		    img2 && len2 == len && !memcmp(img, img2, len));
	free(img2);

	/* parse_mem over the same image agrees with open. */
	st = qn_st_parse_mem(img, len, "copy", &e);
	CHECK(st && qn_st_count(st) == 6 && qn_st_find(st, "half") &&
	      !memcmp(qn_st_data(st, qn_st_find(st, "half")), w_f16, 8));
	qn_st_close(st);

	/* Every truncation is refused. */
	int refused = 0;
	for (size_t k = 0; k < len; k++) {
		st = qn_st_parse_mem(img, k, "cut", &e);
		refused += st == NULL && !strncmp(e.msg, "'cut': ", 7);
		qn_st_close(st);
	}
	CHECK_NAMED("every truncation refused", refused == (int)len);
	free(img);

	/* A file with no tensors and no metadata. */
	struct qn_st_writer *w0 = qn_st_writer_new();
	CHECK(qn_st_writer_write(w0, in_top("none.safetensors"), &e) == 0);
	img = slurp(in_top("none.safetensors"), &len);
	CHECK_NAMED("no tensors: {} and 6 spaces",
		    img && len == 16 && get64(img) == 8 && !memcmp(img + 8, "{}      ", 8));
	free(img);
	st = qn_st_open(in_top("none.safetensors"), &e);
	CHECK(st && qn_st_count(st) == 0);
	qn_st_close(st);
	qn_st_writer_free(w0);

	CHECK_NAMED("writing to /dev/full fails",
		    qn_st_writer_write(w, "/dev/full", &e) < 0 && contains(e.msg, "/dev/full"));
	CHECK_NAMED("writing into a missing folder fails",
		    qn_st_writer_write(w, in_top("no/such/x.safetensors"), &e) < 0 &&
			contains(e.msg, "no/such"));
out:
	qn_st_writer_free(w);
}

static void test_open(void)
{
	struct qn_err e = {""};
	struct qn_st *st;

	st = qn_st_open(in_top("missing"), &e);
	CHECK_NAMED("open a missing file",
		    st == NULL && contains(e.msg, "cannot open '") && contains(e.msg, "missing"));
	st = qn_st_open(top, &e);
	CHECK_NAMED("open a folder", st == NULL && contains(e.msg, "not a regular file"));
	spit(in_top("empty"), "", 0);
	st = qn_st_open(in_top("empty"), &e);
	CHECK_NAMED("open an empty file", st == NULL && contains(e.msg, "header: empty file"));
	spit(in_top("short"), "\2\0\0", 3);
	st = qn_st_open(in_top("short"), &e);
	CHECK_NAMED("open a 3-byte file",
		    st == NULL && contains(e.msg, "header: file of 3 bytes, shorter than"));
	struct image im = image("{\"a\":{" T4 ",\"data_offsets\":[0,4]}}", NULL, 3);
	spit(in_top("cut"), im.b, im.len);
	st = qn_st_open(in_top("cut"), &e);
	CHECK_NAMED("open a file cut short",
		    st == NULL && contains(e.msg, "'/") && contains(e.msg, "cut': tensor 'a': "));
	free(im.b);
}

static void test_dtypes(void)
{
	static const char *const names[] = {"BOOL", "U8",  "I8",  "I16", "U16", "F16", "BF16",
					    "I32",  "U32", "F32", "F64", "I64", "U64"};
	static const size_t sizes[] = {1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
	int ok = 1;

	for (int i = 0; i < QN_ST_NDTYPES; i++)
		ok &= qn_st_dtype_name(i) && !strcmp(qn_st_dtype_name(i), names[i]) &&
		      qn_st_dtype_size(i) == sizes[i];
	CHECK_NAMED("dtype names and sizes", ok);
	CHECK(qn_st_dtype_name(-1) == NULL && qn_st_dtype_name(QN_ST_NDTYPES) == NULL);
	CHECK(qn_st_dtype_size(-1) == 0 && qn_st_dtype_size(QN_ST_NDTYPES) == 0);
}

/* ---- fuzz seeds ---- */

static int seeds(const char *dir)
{
	struct qn_err e;
	char path[4400];
	int n = 0;

	for (size_t i = 0; i < sizeof bads / sizeof *bads; i++, n++) {
		struct image im = image(bads[i].header, NULL, bads[i].dlen);
		snprintf(path, sizeof path, "%s/%s", dir, bads[i].seed);
		if (spit(path, im.b, im.len) < 0)
			return perror(path), 1;
		free(im.b);
	}
	for (size_t i = 0; i < sizeof bad_sizes / sizeof *bad_sizes; i++, n++) {
		unsigned char b[64] = "........{}";
		put64(b, bad_sizes[i].n);
		snprintf(path, sizeof path, "%s/%s", dir, bad_sizes[i].seed);
		if (spit(path, b, 8 + bad_sizes[i].rest) < 0)
			return perror(path), 1;
	}
	struct qn_st_writer *w = sample_writer(&e);
	snprintf(path, sizeof path, "%s/valid_sample", dir);
	if (!w || qn_st_writer_write(w, path, &e) < 0)
		return fprintf(stderr, "%s\n", e.msg), 1;
	qn_st_writer_free(w);
	w = qn_st_writer_new();
	snprintf(path, sizeof path, "%s/valid_empty", dir);
	if (!w || qn_st_writer_write(w, path, &e) < 0)
		return fprintf(stderr, "%s\n", e.msg), 1;
	qn_st_writer_free(w);
	printf("%d seeds in %s\n", n + 2, dir);
	return 0;
}

int main(int argc, char **argv)
{

	if (argc > 2 && !strcmp(argv[1], "--seeds"))
		return seeds(argv[2]);
	if (make_top("test_safetensors") < 0)
		return 1;
	test_dtypes();
	test_invalid();
	test_valid_corners();
	test_conversions();
	test_f16_all();
	test_writer_refusals();
	test_roundtrip();
	test_open();
	rm_rf(top);
	return CHECK_DONE();
}
