/*
 * fuzz_safetensors.c - libFuzzer target for lib/safetensors' reader: parse
 * an image from memory, then hold whatever opens to the reader's promises:
 * the tensors, in the order listed, tile the data buffer that ends where the
 * image ends; each holds its element count times its dtype's size; find
 * gives back the same entry by name. Every tensor is touched: its bytes
 * summed, and read as floats where the dtype allows (and refused with a
 * wrong count). What opens is written again through the writer (to
 * /dev/null). Every refusal must name the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "safetensors.h"

static uint64_t header_size(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void refused(const struct qn_err *e)
{
	if (strncmp(e->msg, "'fuzz': ", 8))
		abort();
}

static int is_float(int dtype)
{
	return dtype == QN_ST_F32 || dtype == QN_ST_F16 || dtype == QN_ST_BF16 ||
	       dtype == QN_ST_F64;
}

static void touch(const struct qn_st *st, const struct qn_st_tensor *t)
{
	const volatile uint8_t *p = qn_st_data(st, t);
	struct qn_err e;
	uint8_t sum = 0;

	for (uint64_t i = 0; i < t->end - t->begin; i++)
		sum += p[i];
	(void)sum;
	/* Bounded by the image: numel * size == end - begin. */
	float *out = malloc((size_t)t->numel * sizeof *out + 1);
	if (!out)
		return;
	int rc = qn_st_read_f32(st, t, out, (size_t)t->numel, &e);
	if ((rc == 0) != is_float(t->dtype))
		abort();
	if (rc < 0)
		refused(&e);
	if (qn_st_read_f32(st, t, out, (size_t)t->numel + 1, &e) == 0)
		abort();
	refused(&e);
	free(out);
}

static void rewrite(const struct qn_st *st)
{
	struct qn_st_writer *w = qn_st_writer_new();
	struct qn_err e;

	if (!w)
		return;
	for (size_t i = 0; i < qn_st_count(st); i++) {
		const struct qn_st_tensor *t = qn_st_at(st, i);
		/* The writer refuses an empty name; the reader does not. */
		if (qn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, qn_st_data(st, t),
				     &e) < 0 &&
		    *t->name)
			abort();
	}
	if (qn_st_meta(st, "format"))
		qn_st_writer_meta(w, "format", qn_st_meta(st, "format"), &e);
	qn_st_writer_write(w, "/dev/null", &e);
	qn_st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_err e;
	struct qn_st *st = qn_st_parse_mem(data, size, "fuzz", &e);

	if (!st) {
		refused(&e);
		return 0;
	}
	if (size < 8 || header_size(data) > size - 8)
		abort();
	uint64_t data_len = size - 8 - header_size(data), pos = 0;
	for (size_t i = 0; i < qn_st_count(st); i++) {
		const struct qn_st_tensor *t = qn_st_at(st, i);
		uint64_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= t->shape[d];
		if (t->begin != pos || t->end < t->begin || t->ndim < 0 ||
		    t->ndim > QN_ST_NDIM_MAX || numel != t->numel ||
		    t->end - t->begin != t->numel * qn_st_dtype_size(t->dtype) ||
		    qn_st_find(st, t->name) != t)
			abort();
		pos = t->end;
		touch(st, t);
	}
	if (pos != data_len || qn_st_at(st, qn_st_count(st)))
		abort();
	rewrite(st);
	qn_st_close(st);
	return 0;
}
