/*
 * fuzz_canary_format.c - libFuzzer target for audit/memomath's canary
 * templates (quern-audit canary --format and the record's "format"). A
 * parse that succeeds must give a consistent template: fields in order
 * within the literal text, counts within the limits, a render of any
 * secret that fits the fields and has the expected length, and secret
 * numbers that round-trip through their checks; a failure must leave a
 * message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "memomath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mm_template t;
	struct qn_err e;
	e.msg[0] = 0;
	if (mm_template_parse((const char *)data, size, &t, &e)) {
		if (!e.msg[0])
			abort();
		return 0;
	}
	if (t.nf < 1 || t.nf > MM_FIELDS_MAX || t.nchars < 1 || t.nchars > MM_SECRET_MAX ||
	    t.litlen > size || t.lit[t.litlen] || !(t.log2_space > 0))
		abort();
	int chars = 0;
	for (int i = 0; i < t.nf; i++) {
		if (t.f[i].at > t.litlen || (i && t.f[i].at < t.f[i - 1].at))
			abort();
		if (t.f[i].n < 1 || t.f[i].n > MM_FIELD_CHARS_MAX || !mm_alphabet(t.f[i].kind))
			abort();
		chars += t.f[i].n;
	}
	if (chars != t.nchars || mm_template_prefix_len(&t) != t.f[0].at)
		abort();
	char secret[MM_SECRET_MAX + 1], out[MM_FORMAT_MAX + MM_SECRET_MAX + 1];
	uint64_t rng = size, space;
	mm_template_secret_random(&t, &rng, secret);
	if (!mm_template_secret_ok(&t, secret, (size_t)t.nchars))
		abort();
	size_t n = mm_template_render(&t, secret, out, sizeof out);
	if (n != t.litlen + (size_t)t.nchars || strlen(out) != n)
		abort();
	if (mm_template_space(&t, &space) == 0) {
		mm_template_secret_at(&t, space - 1, secret);
		if (!mm_template_secret_ok(&t, secret, (size_t)t.nchars))
			abort();
	}
	/* The rendered text, when it is still a template, parses again. */
	struct mm_template u;
	(void)mm_template_parse(out, n, &u, &e);
	return 0;
}
