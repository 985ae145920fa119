/*
 * safetensors.h - reading and writing Hugging Face safetensors files.
 *
 * The format (huggingface/safetensors, "format" in its README): an unsigned
 * 64-bit little-endian header size N, then N bytes of a JSON object, then
 * the data buffer. Each key of the object but "__metadata__" names a tensor:
 * {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, the
 * offsets relative to the data buffer. "__metadata__" is an object of string
 * values. The reader holds a file to the rules the reference implementation
 * checks: the header starts with '{' and is at most QN_ST_HEADER_MAX bytes,
 * keys are unique, every tensor's byte length is its element count times
 * its dtype's size, the tensors cover the data buffer exactly (no holes, no
 * overlaps) and the buffer ends where the file ends. Every violation is an
 * error naming the file and, where there is one, the tensor.
 *
 * Reading maps the file (or copies a memory image, for fuzzing); the handle
 * owns the mapping and every string it returns. Tensors are listed in the
 * order of their data offsets.
 *
 * Writing collects tensors (pointers to the caller's data, which must stay
 * valid until the write) and writes the file atomically through lib/wr.h:
 * the header's keys sorted, __metadata__ first, the data in the same order,
 * the header padded with spaces to a multiple of 8 bytes, as the reference
 * implementation does.
 */
#ifndef QN_SAFETENSORS_H
#define QN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

struct qn_err;

#define QN_ST_HEADER_MAX (100u << 20) /* the reference implementation's limit */
#define QN_ST_NDIM_MAX 8

enum qn_st_dtype {
	QN_ST_BOOL,
	QN_ST_U8,
	QN_ST_I8,
	QN_ST_I16,
	QN_ST_U16,
	QN_ST_F16,
	QN_ST_BF16,
	QN_ST_I32,
	QN_ST_U32,
	QN_ST_F32,
	QN_ST_F64,
	QN_ST_I64,
	QN_ST_U64,
	QN_ST_NDTYPES
};

/* "F32" etc. and bytes an element; NULL / 0 for a bad value. */
const char *qn_st_dtype_name(int dtype);
size_t qn_st_dtype_size(int dtype);

struct qn_st_tensor {
	const char *name;
	int dtype;
	int ndim;
	uint64_t shape[QN_ST_NDIM_MAX];
	uint64_t numel;
	uint64_t begin, end; /* byte range in the data buffer */
};

struct qn_st;

/* Maps path and checks the header and the layout. */
struct qn_st *qn_st_open(const char *path, struct qn_err *e);
/* The same over a file image buf[0..len) (copied); name for errors. */
struct qn_st *qn_st_parse_mem(const void *buf, size_t len, const char *name, struct qn_err *e);
void qn_st_close(struct qn_st *st);

size_t qn_st_count(const struct qn_st *st);
const struct qn_st_tensor *qn_st_at(const struct qn_st *st, size_t i);
/* NULL when absent. */
const struct qn_st_tensor *qn_st_find(const struct qn_st *st, const char *name);
/* The tensor's raw little-endian bytes. */
const void *qn_st_data(const struct qn_st *st, const struct qn_st_tensor *t);
/*
 * Copies the tensor into out[0..n) as float: F32 as is, F16, BF16 and F64
 * converted. -1 with e filled for another dtype or when n is not its
 * element count.
 */
int qn_st_read_f32(const struct qn_st *st, const struct qn_st_tensor *t, float *out, size_t n,
		   struct qn_err *e);
/* A value of __metadata__; NULL when absent. */
const char *qn_st_meta(const struct qn_st *st, const char *key);
/* The file name given at open. */
const char *qn_st_name(const struct qn_st *st);

/* ---- writing ---- */

struct qn_st_writer;

struct qn_st_writer *qn_st_writer_new(void);
void qn_st_writer_free(struct qn_st_writer *w);
/*
 * Adds a tensor; data (numel * dtype size bytes, little-endian) is not
 * copied. -1 with e filled on a duplicate or bad name, a bad dtype or
 * ndim, or an element count that overflows.
 */
int qn_st_writer_add(struct qn_st_writer *w, const char *name, int dtype, int ndim,
		     const uint64_t *shape, const void *data, struct qn_err *e);
/* Adds or replaces a __metadata__ entry (both strings copied). */
int qn_st_writer_meta(struct qn_st_writer *w, const char *key, const char *value,
		      struct qn_err *e);
/* Writes path atomically (lib/wr.h); the writer can be written again. */
int qn_st_writer_write(struct qn_st_writer *w, const char *path, struct qn_err *e);

#endif
