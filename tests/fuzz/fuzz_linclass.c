/*
 * fuzz_linclass.c - libFuzzer target for lib/linclass's model loader
 * (qn_lc_load_mem): the input is a config.json image, a NUL byte, and a
 * model.safetensors image (no NUL: the whole input is the config). Any
 * bytes either load into a model that classifies a text into probabilities
 * that sum to 1, or are refused with a message naming a file of the model.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "linclass.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_err e;
	const uint8_t *nul = memchr(data, 0, size);
	size_t clen = nul ? (size_t)(nul - data) : size;
	const uint8_t *st = nul ? nul + 1 : data + size;
	size_t slen = nul ? size - clen - 1 : 0;
	struct qn_lc_model *m = qn_lc_load_mem((const char *)data, clen, st, slen, "fuzz", &e);

	if (!m) {
		if (strncmp(e.msg, "'fuzz/", 6) && strcmp(e.msg, "out of memory"))
			abort();
		return 0;
	}
	struct qn_lc_scratch s;
	if (qn_lc_scratch_init(&s, m))
		abort();
	static const char text[] = "Fuzzing, the Loader: caf\xc3\xa9 one two three";
	long y = qn_lc_predict(m, text, sizeof text - 1, &s);
	double sum = 0;
	for (size_t i = 0; i < m->k; i++)
		sum += s.probs[i];
	if (y < 0 || (size_t)y >= m->k || !(fabs(sum - 1) < 1e-3))
		abort();
	qn_lc_scratch_release(&s);
	qn_lc_model_free(m);
	return 0;
}
