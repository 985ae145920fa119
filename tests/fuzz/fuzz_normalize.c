/*
 * fuzz_normalize.c - libFuzzer target: quern-clean's normalization on
 * arbitrary bytes (invalid UTF-8 included) in every form, with the first
 * byte choosing the options. Checks that the output is valid UTF-8 and
 * that normalizing it again changes nothing (idempotence).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "normalize.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cn_norm_opts o;
	struct qn_buf a, b;
	uint8_t mode = size ? data[0] : 0;

	if (size) {
		data++;
		size--;
	}
	cn_norm_opts_init(&o);
	o.form = (enum cn_norm_form)(mode % 3);
	o.collapse_spaces = (mode >> 2) & 1;
	o.unicode_spaces = (mode >> 3) & 1;
	o.trim = (mode >> 4) & 1;
	o.max_blank_lines = (mode >> 5) & 1 ? -1 : (int)((mode >> 6) & 3);
	qn_buf_init(&a, 1 << 24);
	qn_buf_init(&b, 1 << 24);
	if (cn_normalize((const char *)data, size, &o, &a, NULL) == 0) {
		if (!qn_utf8_valid(a.data ? a.data : "", a.len))
			abort();
		if (cn_normalize(a.data ? a.data : "", a.len, &o, &b, NULL) == 0 &&
		    (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))))
			abort();
	}
	qn_buf_release(&a);
	qn_buf_release(&b);
	return 0;
}
