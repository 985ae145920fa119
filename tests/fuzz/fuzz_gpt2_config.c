/*
 * fuzz_gpt2_config.c - libFuzzer target for lib/gpt2's config.json reader
 * (qn_gpt2_config_parse): any bytes either parse into a config that
 * qn_gpt2_config_check accepts, or are refused with a message that names
 * the input. Nothing is built from a config that parses (no model, no
 * weights): the reader alone is under test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpt2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_gpt2_config c;
	struct qn_err e;
	int rc = qn_gpt2_config_parse((const char *)data, size, "fuzz", &c, &e);

	if (rc < 0) {
		if (strncmp(e.msg, "'fuzz': ", 8))
			abort();
		return 0;
	}
	if (rc != 0 || qn_gpt2_config_check(&c, "fuzz", &e) != 0 ||
	    memchr(c.tokenizer, 0, sizeof c.tokenizer) == NULL)
		abort();
	return 0;
}
