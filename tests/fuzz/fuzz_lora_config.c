/*
 * fuzz_lora_config.c - libFuzzer target for lib/gpt2's adapter_config.json
 * reader (qn_gpt2_lora_parse_config): any bytes either give a rank in
 * 1..65536, a positive alpha and known target bits, or are refused with a
 * message that names the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpt2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_err e;
	int r = 0;
	float alpha = 0;
	unsigned targets = 0;
	float dropout = -1;
	int rc = qn_gpt2_lora_parse_config((const char *)data, size, "fuzz", &r, &alpha, &targets,
					   &dropout, &e);

	if (rc < 0) {
		if (strncmp(e.msg, "'fuzz': ", 8))
			abort();
		return 0;
	}
	if (rc != 0 || r < 1 || r > 65536 || !(alpha > 0) || !targets || !(dropout >= 0) ||
	    !(dropout < 1) ||
	    (targets &
	     ~(unsigned)(QN_LORA_C_ATTN | QN_LORA_ATTN_PROJ | QN_LORA_MLP_FC | QN_LORA_MLP_PROJ)))
		abort();
	return 0;
}
