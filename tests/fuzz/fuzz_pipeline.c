/*
 * fuzz_pipeline.c - libFuzzer target for quern-run's pipeline parser: any
 * bytes as a pipeline file (and, split at the first "\n---params\n", a params
 * file): parsing, interpolation, foreach, the DAG and the cycle report must
 * not crash; when it succeeds, every stage is in the order exactly once and
 * after every stage it needs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n---params\n";
	const char *text = (const char *)data, *params = NULL;
	size_t len = size, plen = 0;
	struct rn_pipeline p;
	struct qn_err e;

	const char *at = size >= sizeof sep - 1 ? memmem(data, size, sep, sizeof sep - 1) : NULL;
	if (at) {
		len = (size_t)(at - text);
		params = at + sizeof sep - 1;
		plen = size - len - (sizeof sep - 1);
	}
	rn_pipeline_init(&p);
	if (rn_pipeline_parse(text, len, "fuzz.yaml", "/nonexistent-fuzz-dir", params, plen,
			      "params.yaml", &p, &e) == 0) {
		size_t *pos = calloc(p.n ? p.n : 1, sizeof *pos);
		if (!pos)
			abort();
		for (size_t k = 0; k < p.n; k++) {
			if (p.order[k] >= p.n || pos[p.order[k]])
				abort();
			pos[p.order[k]] = k + 1;
		}
		for (size_t i = 0; i < p.n; i++)
			for (size_t u = 0; u < p.stages[i].nup; u++)
				if (pos[p.stages[i].up[u]] >= pos[i])
					abort();
		free(pos);
	}
	rn_pipeline_release(&p);
	return 0;
}
