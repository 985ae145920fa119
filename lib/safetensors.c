/*
 * safetensors.c - see safetensors.h.
 *
 * The reader parses the header with jansson (duplicate keys refused), checks
 * every tensor entry on its own (dtype, shape, offsets, byte length), then
 * sorts the entries by (begin, end, name) and sweeps them once to prove they
 * tile the data buffer: each begins where the one before ended, and the last
 * ends at the end of the file. Zero-size tensors sort before a tensor that
 * starts at the same offset, so they fit anywhere on a boundary, as in the
 * reference implementation. Names and metadata are copied into one block the
 * handle owns, so the JSON tree is freed before open returns.
 *
 * The writer keeps its tensors and metadata sorted by name as they are
 * added (duplicates are found by the same binary search) and builds the
 * header with jansson in insertion order: __metadata__, then the tensors.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "utf8.h"
#include "wr.h"

#define META_KEY "__metadata__"

static const char *const dtype_names[QN_ST_NDTYPES] = {
    [QN_ST_BOOL] = "BOOL", [QN_ST_U8] = "U8",	[QN_ST_I8] = "I8",     [QN_ST_I16] = "I16",
    [QN_ST_U16] = "U16",   [QN_ST_F16] = "F16", [QN_ST_BF16] = "BF16", [QN_ST_I32] = "I32",
    [QN_ST_U32] = "U32",   [QN_ST_F32] = "F32", [QN_ST_F64] = "F64",   [QN_ST_I64] = "I64",
    [QN_ST_U64] = "U64",
};

static const unsigned char dtype_sizes[QN_ST_NDTYPES] = {
    [QN_ST_BOOL] = 1, [QN_ST_U8] = 1,	[QN_ST_I8] = 1,	 [QN_ST_I16] = 2, [QN_ST_U16] = 2,
    [QN_ST_F16] = 2,  [QN_ST_BF16] = 2, [QN_ST_I32] = 4, [QN_ST_U32] = 4, [QN_ST_F32] = 4,
    [QN_ST_F64] = 8,  [QN_ST_I64] = 8,	[QN_ST_U64] = 8,
};

const char *qn_st_dtype_name(int dtype)
{
	return dtype >= 0 && dtype < QN_ST_NDTYPES ? dtype_names[dtype] : NULL;
}

size_t qn_st_dtype_size(int dtype)
{
	return dtype >= 0 && dtype < QN_ST_NDTYPES ? dtype_sizes[dtype] : 0;
}

static int dtype_parse(const char *s)
{
	for (int i = 0; i < QN_ST_NDTYPES; i++)
		if (!strcmp(s, dtype_names[i]))
			return i;
	return -1;
}

/* Element count of shape, or -1 when it overflows 64 bits. */
static int shape_numel(const uint64_t *shape, int ndim, uint64_t *numel)
{
	uint64_t n = 1;

	for (int i = 0; i < ndim; i++) {
		if (shape[i] && n > UINT64_MAX / shape[i])
			return -1;
		n *= shape[i];
	}
	*numel = n;
	return 0;
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void store64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- reading ---- */

struct meta_ent {
	const char *key, *value;
};

struct qn_st {
	char *name;
	unsigned char *map; /* the file, for qn_st_open */
	size_t map_len;
	unsigned char *mem; /* the image, for qn_st_parse_mem */
	const unsigned char *data;
	uint64_t data_len;
	struct qn_st_tensor *t; /* by (begin, end, name) */
	size_t n;
	const struct qn_st_tensor **by_name;
	struct meta_ent *meta; /* by key */
	size_t nmeta;
	char *strings; /* every name, key and value */
};

static struct qn_st *st_new(const char *name)
{
	struct qn_st *st = calloc(1, sizeof *st);

	if (!st)
		return NULL;
	if (!(st->name = strdup(name))) {
		free(st);
		return NULL;
	}
	return st;
}

void qn_st_close(struct qn_st *st)
{
	if (!st)
		return;
	if (st->map)
		munmap(st->map, st->map_len);
	free(st->mem);
	free(st->t);
	free(st->by_name);
	free(st->meta);
	free(st->strings);
	free(st->name);
	free(st);
}

static int tensor_err(const struct qn_st *st, const char *tensor, struct qn_err *e, const char *why)
{
	return qn_errf(e, "'%s': tensor '%s': %s", st->name, tensor, why);
}

/* A non-negative JSON integer into *v; -1 for anything else. */
static int json_u64(const json_t *j, uint64_t *v)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

/* One header entry into t (name not yet set); checks what it can alone. */
static int parse_tensor(const struct qn_st *st, const char *name, const json_t *v,
			struct qn_st_tensor *t, struct qn_err *e)
{
	const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
	const json_t *off = json_object_get(v, "data_offsets");
	char why[256];

	if (!json_is_object(v))
		return tensor_err(st, name, e, "entry is not an object");
	if (!json_is_string(dt))
		return tensor_err(st, name, e, "no dtype string");
	if ((t->dtype = dtype_parse(json_string_value(dt))) < 0)
		return qn_errf(e, "'%s': tensor '%s': unknown dtype '%s'", st->name, name,
			       json_string_value(dt));
	if (!json_is_array(sh))
		return tensor_err(st, name, e, "no shape array");
	if (json_array_size(sh) > QN_ST_NDIM_MAX)
		return qn_errf(e, "'%s': tensor '%s': %zu dimensions, at most %d", st->name, name,
			       json_array_size(sh), QN_ST_NDIM_MAX);
	t->ndim = (int)json_array_size(sh);
	for (int i = 0; i < t->ndim; i++)
		if (json_u64(json_array_get(sh, (size_t)i), &t->shape[i]) < 0)
			return tensor_err(
			    st, name, e, "shape holds something other than a non-negative integer");
	if (shape_numel(t->shape, t->ndim, &t->numel) < 0 ||
	    t->numel > UINT64_MAX / dtype_sizes[t->dtype])
		return tensor_err(st, name, e, "size of shape overflows 64 bits");
	if (!json_is_array(off) || json_array_size(off) != 2 ||
	    json_u64(json_array_get(off, 0), &t->begin) < 0 ||
	    json_u64(json_array_get(off, 1), &t->end) < 0)
		return tensor_err(st, name, e,
				  "data_offsets is not [begin, end] of non-negative integers");
	if (t->begin > t->end) {
		snprintf(why, sizeof why, "data_offsets [%" PRIu64 ", %" PRIu64 "] decrease",
			 t->begin, t->end);
		return tensor_err(st, name, e, why);
	}
	uint64_t want = t->numel * dtype_sizes[t->dtype];
	if (t->end - t->begin != want) {
		snprintf(why, sizeof why,
			 "data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
			 " bytes, its shape and %s want %" PRIu64,
			 t->begin, t->end, t->end - t->begin, dtype_names[t->dtype], want);
		return tensor_err(st, name, e, why);
	}
	if (t->end > st->data_len) {
		snprintf(why, sizeof why,
			 "data_offsets [%" PRIu64 ", %" PRIu64 "] run past the %" PRIu64
			 "-byte data buffer",
			 t->begin, t->end, st->data_len);
		return tensor_err(st, name, e, why);
	}
	return 0;
}

static int by_offsets(const void *a, const void *b)
{
	const struct qn_st_tensor *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
	const struct qn_st_tensor *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct meta_ent *)a)->key, ((const struct meta_ent *)b)->key);
}

/* The sorted tensors cover [0, data_len) exactly. */
static int check_tiling(const struct qn_st *st, struct qn_err *e)
{
	uint64_t pos = 0;
	char why[256];

	for (size_t i = 0; i < st->n; i++) {
		const struct qn_st_tensor *t = &st->t[i];
		if (t->begin > pos) {
			snprintf(why, sizeof why,
				 "a hole of %" PRIu64 " bytes in the data buffer before it",
				 t->begin - pos);
			return tensor_err(st, t->name, e, why);
		}
		if (t->begin < pos) {
			snprintf(why, sizeof why, "data_offsets overlap those of tensor '%s'",
				 st->t[i - 1].name);
			return tensor_err(st, t->name, e, why);
		}
		pos = t->end;
	}
	if (pos != st->data_len)
		return qn_errf(e,
			       "'%s': header: tensors cover %" PRIu64 " bytes of the %" PRIu64
			       "-byte data buffer",
			       st->name, pos, st->data_len);
	return 0;
}

static char *stash(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *r = memcpy(*p, s, n);

	*p += n;
	return r;
}

static int load_json(struct qn_st *st, const json_t *root, struct qn_err *e)
{
	const json_t *meta = json_object_get(root, META_KEY), *v;
	const char *key;
	size_t bytes = 0;

	if (meta && !json_is_object(meta))
		return qn_errf(e, "'%s': header: __metadata__ is not an object", st->name);
	json_object_foreach((json_t *)meta, key, v)
	{
		if (!json_is_string(v))
			return qn_errf(e, "'%s': header: __metadata__ value '%s' is not a string",
				       st->name, key);
		bytes += strlen(key) + strlen(json_string_value(v)) + 2;
	}
	json_object_foreach((json_t *)root, key, v)
	{
		bytes += strlen(key) + 1;
	}

	st->n = json_object_size(root) - (meta != NULL);
	st->nmeta = meta ? json_object_size(meta) : 0;
	if (!(st->strings = malloc(bytes + 1)) ||
	    !(st->t = calloc(st->n ? st->n : 1, sizeof *st->t)) ||
	    !(st->by_name = malloc((st->n ? st->n : 1) * sizeof *st->by_name)) ||
	    !(st->meta = malloc((st->nmeta ? st->nmeta : 1) * sizeof *st->meta)))
		return qn_errf(e, "'%s': out of memory", st->name);

	char *p = st->strings;
	size_t i = 0;
	json_object_foreach((json_t *)meta, key, v)
	{
		st->meta[i].key = stash(&p, key);
		st->meta[i].value = stash(&p, json_string_value(v));
		i++;
	}
	qsort(st->meta, st->nmeta, sizeof *st->meta, by_key);

	i = 0;
	json_object_foreach((json_t *)root, key, v)
	{
		if (!strcmp(key, META_KEY))
			continue;
		if (parse_tensor(st, key, v, &st->t[i], e) < 0)
			return -1;
		st->t[i++].name = stash(&p, key);
	}
	qsort(st->t, st->n, sizeof *st->t, by_offsets);
	for (i = 0; i < st->n; i++)
		st->by_name[i] = &st->t[i];
	qsort(st->by_name, st->n, sizeof *st->by_name, by_name);
	return check_tiling(st, e);
}

/* Checks the image img[0..len) and fills st. */
static int load(struct qn_st *st, const unsigned char *img, size_t len, struct qn_err *e)
{
	json_error_t je;

	if (len == 0)
		return qn_errf(e, "'%s': header: empty file", st->name);
	if (len < 8)
		return qn_errf(e, "'%s': header: file of %zu bytes, shorter than the header size",
			       st->name, len);
	uint64_t n = load64(img);
	if (n > QN_ST_HEADER_MAX)
		return qn_errf(e, "'%s': header: size %" PRIu64 " bytes, at most %u", st->name, n,
			       QN_ST_HEADER_MAX);
	if (n > len - 8)
		return qn_errf(e,
			       "'%s': header: size %" PRIu64 " bytes runs past the end of the "
			       "%zu-byte file",
			       st->name, n, len);
	if (n == 0 || img[8] != '{')
		return qn_errf(e, "'%s': header: does not start with '{'", st->name);
	st->data = img + 8 + n;
	st->data_len = len - 8 - n;

	json_t *root = json_loadb((const char *)img + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return qn_errf(e, "'%s': header: %s at byte %d", st->name, je.text, je.position);
	int rc = json_is_object(root) ? load_json(st, root, e)
				      : qn_errf(e, "'%s': header: not a JSON object", st->name);
	json_decref(root);
	return rc;
}

struct qn_st *qn_st_open(const char *path, struct qn_err *e)
{
	struct qn_st *st = st_new(path);
	struct stat sb;
	int fd;

	if (!st) {
		qn_errf(e, "'%s': out of memory", path);
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		qn_errno(e, errno, "cannot open '%s'", path);
		goto fail;
	}
	if (fstat(fd, &sb) < 0) {
		qn_errno(e, errno, "cannot read '%s'", path);
		close(fd);
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		qn_errf(e, "cannot read '%s': not a regular file", path);
		close(fd);
		goto fail;
	}
	if ((uint64_t)sb.st_size > SIZE_MAX) {
		qn_errf(e, "cannot read '%s': too large to map", path);
		close(fd);
		goto fail;
	}
	st->map_len = (size_t)sb.st_size;
	if (st->map_len) {
		void *m = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			qn_errno(e, errno, "cannot map '%s'", path);
			close(fd);
			goto fail;
		}
		st->map = m;
	}
	close(fd);
	if (load(st, st->map, st->map_len, e) < 0)
		goto fail;
	return st;
fail:
	qn_st_close(st);
	return NULL;
}

struct qn_st *qn_st_parse_mem(const void *buf, size_t len, const char *name, struct qn_err *e)
{
	struct qn_st *st = st_new(name ? name : "safetensors");

	if (!st || !(st->mem = malloc(len ? len : 1))) {
		qn_errf(e, "'%s': out of memory", name ? name : "safetensors");
		qn_st_close(st);
		return NULL;
	}
	if (len)
		memcpy(st->mem, buf, len);
	if (load(st, st->mem, len, e) < 0) {
		qn_st_close(st);
		return NULL;
	}
	return st;
}

size_t qn_st_count(const struct qn_st *st)
{
	return st->n;
}

const struct qn_st_tensor *qn_st_at(const struct qn_st *st, size_t i)
{
	return i < st->n ? &st->t[i] : NULL;
}

const struct qn_st_tensor *qn_st_find(const struct qn_st *st, const char *name)
{
	struct qn_st_tensor key = {.name = name};
	const struct qn_st_tensor *k = &key, *const * r;

	r = bsearch(&k, st->by_name, st->n, sizeof *st->by_name, by_name);
	return r ? *r : NULL;
}

const void *qn_st_data(const struct qn_st *st, const struct qn_st_tensor *t)
{
	return st->data + t->begin;
}

const char *qn_st_meta(const struct qn_st *st, const char *key)
{
	struct meta_ent k = {.key = key};
	const struct meta_ent *r = bsearch(&k, st->meta, st->nmeta, sizeof *st->meta, by_key);

	return r ? r->value : NULL;
}

const char *qn_st_name(const struct qn_st *st)
{
	return st->name;
}

static float f32_from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof f);
	return f;
}

static float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;

	if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
		float f = ldexpf((float)mant, -24);
		return sign ? -f : f;
	}
	if (exp == 31) /* infinity, or NaN keeping its payload */
		return f32_from_bits(sign | 0x7f800000u | mant << 13);
	return f32_from_bits(sign | (exp + 127 - 15) << 23 | mant << 13);
}

/* Round to nearest; out of range goes to infinity without undefined behaviour. */
static float f64_to_f32(double d)
{
	if (isnan(d))
		return (float)d;
	if (fabs(d) > FLT_MAX) {
		/* FLT_MAX plus half an ulp rounds (to even) up to infinity. */
		float f = fabs(d) < 0x1.ffffffp127 ? FLT_MAX : INFINITY;
		return d < 0 ? -f : f;
	}
	return (float)d;
}

int qn_st_read_f32(const struct qn_st *st, const struct qn_st_tensor *t, float *out, size_t n,
		   struct qn_err *e)
{
	const unsigned char *p = qn_st_data(st, t);

	if (t->dtype != QN_ST_F32 && t->dtype != QN_ST_F16 && t->dtype != QN_ST_BF16 &&
	    t->dtype != QN_ST_F64)
		return qn_errf(e, "'%s': tensor '%s': cannot read %s as float", st->name, t->name,
			       qn_st_dtype_name(t->dtype));
	if ((uint64_t)n != t->numel)
		return qn_errf(
		    e, "'%s': tensor '%s': room for %zu floats, it holds %" PRIu64 " elements",
		    st->name, t->name, n, t->numel);
	for (size_t i = 0; i < n; i++) {
		switch (t->dtype) {
		case QN_ST_F32: {
			uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
				     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
			out[i] = f32_from_bits(u);
			break;
		}
		case QN_ST_F16:
			out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
			break;
		case QN_ST_BF16:
			out[i] =
			    f32_from_bits((uint32_t)p[2 * i] << 16 | (uint32_t)p[2 * i + 1] << 24);
			break;
		default: { /* F64 */
			uint64_t u = load64(p + 8 * i);
			double d;
			memcpy(&d, &u, sizeof d);
			out[i] = f64_to_f32(d);
			break;
		}
		}
	}
	return 0;
}

/* ---- writing ---- */

struct wr_tensor {
	char *name;
	int dtype;
	int ndim;
	uint64_t shape[QN_ST_NDIM_MAX];
	uint64_t bytes;
	const void *data;
};

struct wr_meta {
	char *key, *value;
};

struct qn_st_writer {
	struct wr_tensor *t; /* by name */
	size_t n, cap;
	struct wr_meta *meta; /* by key */
	size_t nmeta, metacap;
};

struct qn_st_writer *qn_st_writer_new(void)
{
	return calloc(1, sizeof(struct qn_st_writer));
}

void qn_st_writer_free(struct qn_st_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->t[i].name);
	for (size_t i = 0; i < w->nmeta; i++) {
		free(w->meta[i].key);
		free(w->meta[i].value);
	}
	free(w->t);
	free(w->meta);
	free(w);
}

/* Where s belongs among n sorted names of stride size; *found when present. */
static size_t lower_bound(const void *base, size_t n, size_t size, const char *s, int *found)
{
	size_t lo = 0, hi = n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(*(char *const *)((const char *)base + mid * size), s);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

int qn_st_writer_add(struct qn_st_writer *w, const char *name, int dtype, int ndim,
		     const uint64_t *shape, const void *data, struct qn_err *e)
{
	struct wr_tensor t = {.dtype = dtype, .ndim = ndim, .data = data};
	uint64_t numel;
	int found;

	if (!name || !*name || !strcmp(name, META_KEY) || !qn_utf8_valid(name, strlen(name)))
		return qn_errf(e, "tensor '%s': bad name", name ? name : "(null)");
	if (!qn_st_dtype_name(dtype))
		return qn_errf(e, "tensor '%s': bad dtype %d", name, dtype);
	if (ndim < 0 || ndim > QN_ST_NDIM_MAX || (ndim && !shape))
		return qn_errf(e, "tensor '%s': %d dimensions, want 0 to %d", name, ndim,
			       QN_ST_NDIM_MAX);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] > INT64_MAX)
			return qn_errf(e, "tensor '%s': dimension %d too large", name, i);
		t.shape[i] = shape[i];
	}
	if (shape_numel(t.shape, ndim, &numel) < 0 || numel > INT64_MAX / dtype_sizes[dtype])
		return qn_errf(e, "tensor '%s': size of shape overflows", name);
	t.bytes = numel * dtype_sizes[dtype];
	if (t.bytes && !data)
		return qn_errf(e, "tensor '%s': no data", name);
	size_t at = lower_bound(w->t, w->n, sizeof *w->t, name, &found);
	if (found)
		return qn_errf(e, "tensor '%s': added twice", name);
	if (grow((void **)&w->t, &w->cap, w->n, sizeof *w->t) < 0 || !(t.name = strdup(name)))
		return qn_errf(e, "tensor '%s': out of memory", name);
	memmove(w->t + at + 1, w->t + at, (w->n - at) * sizeof *w->t);
	w->t[at] = t;
	w->n++;
	return 0;
}

int qn_st_writer_meta(struct qn_st_writer *w, const char *key, const char *value, struct qn_err *e)
{
	int found;
	char *v;

	if (!key || !value || !qn_utf8_valid(key, strlen(key)) ||
	    !qn_utf8_valid(value, strlen(value)))
		return qn_errf(e, "header: __metadata__ entry '%s' is not UTF-8 text",
			       key ? key : "(null)");
	size_t at = lower_bound(w->meta, w->nmeta, sizeof *w->meta, key, &found);
	if (!(v = strdup(value)))
		return qn_errf(e, "header: out of memory");
	if (found) {
		free(w->meta[at].value);
		w->meta[at].value = v;
		return 0;
	}
	struct wr_meta m = {strdup(key), v};
	if (!m.key || grow((void **)&w->meta, &w->metacap, w->nmeta, sizeof *w->meta) < 0) {
		free(m.key);
		free(v);
		return qn_errf(e, "header: out of memory");
	}
	memmove(w->meta + at + 1, w->meta + at, (w->nmeta - at) * sizeof *w->meta);
	w->meta[at] = m;
	w->nmeta++;
	return 0;
}

/* The header JSON, unpadded; NULL with e filled. */
static char *build_header(const struct qn_st_writer *w, const char *path, struct qn_err *e)
{
	json_t *root = json_object(), *meta = NULL;
	uint64_t off = 0;
	int bad = !root;
	char *s = NULL;

	if (w->nmeta) {
		bad |= !(meta = json_object()) || json_object_set_new(root, META_KEY, meta) < 0;
		for (size_t i = 0; i < w->nmeta && !bad; i++)
			bad |= json_object_set_new(meta, w->meta[i].key,
						   json_string(w->meta[i].value)) < 0;
	}
	for (size_t i = 0; i < w->n && !bad; i++) {
		const struct wr_tensor *t = &w->t[i];
		json_t *o = json_object(), *shape = json_array();
		if (t->bytes > INT64_MAX - off) {
			json_decref(o);
			json_decref(shape);
			json_decref(root);
			qn_errf(e, "'%s': tensor '%s': the data buffer overflows", path, t->name);
			return NULL;
		}
		bad |= !o || json_object_set_new(root, t->name, o) < 0;
		bad |= json_object_set_new(o, "dtype", json_string(dtype_names[t->dtype])) < 0;
		bad |= json_object_set_new(o, "shape", shape) < 0;
		for (int d = 0; d < t->ndim && !bad; d++)
			bad |=
			    json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) < 0;
		bad |= json_object_set_new(
			   o, "data_offsets",
			   json_pack("[II]", (json_int_t)off, (json_int_t)(off + t->bytes))) < 0;
		off += t->bytes;
	}
	if (!bad)
		s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		qn_errf(e, "'%s': header: out of memory", path);
	return s;
}

int qn_st_writer_write(struct qn_st_writer *w, const char *path, struct qn_err *e)
{
	static const char spaces[8] = "        ";
	unsigned char size[8];
	char *h = build_header(w, path, e);

	if (!h)
		return -1;
	size_t len = strlen(h), padded = (len + 7) / 8 * 8;
	if (padded > QN_ST_HEADER_MAX) {
		free(h);
		return qn_errf(e, "'%s': header: %zu bytes, at most %u", path, padded,
			       QN_ST_HEADER_MAX);
	}
	struct qn_wr *o = qn_wr_open(path, QN_WR_PLAIN, e);
	if (!o) {
		free(h);
		return -1;
	}
	store64(size, padded);
	int rc = qn_wr_write(o, size, 8, e) < 0 || qn_wr_write(o, h, len, e) < 0 ||
			 qn_wr_write(o, spaces, padded - len, e) < 0
		     ? -1
		     : 0;
	free(h);
	for (size_t i = 0; i < w->n && rc == 0; i++)
		if (w->t[i].bytes > SIZE_MAX)
			rc = qn_errf(e, "'%s': tensor '%s': too large for memory", path,
				     w->t[i].name);
		else
			rc = qn_wr_write(o, w->t[i].data, (size_t)w->t[i].bytes, e);
	if (rc < 0) {
		qn_wr_abort(o);
		return -1;
	}
	return qn_wr_commit(o, NULL, e);
}
