/*
 * fuzz_lang.c - libFuzzer target for clean/lang: the input is the text, any
 * bytes. Detection must succeed (lang.cc hands CLD2 only what CLD2's own
 * UTF-8 check accepts, or the call fails), give a non-empty NUL-terminated
 * code, a name, a score in [0, 1] ("un": 0, not reliable), and the same
 * answer with the default window as with one the size of the input (the
 * two once differed: CLD2 read heap bytes past its buffer, which is why
 * lang.cc pads its copy; crash-cld2-peeks-past-end). A last call examines
 * only the first 1..10 bytes (the first byte picks how many), so that
 * window cuts inside characters are covered too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

static void check(const struct cn_lang *l)
{
	if (!memchr(l->code, 0, sizeof l->code) || !l->code[0] || !l->name)
		abort();
	if (!(l->score >= 0 && l->score <= 1))
		abort();
	if (!strcmp(l->code, "un") && (l->score != 0 || l->reliable))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct cn_lang a, b;

	if (cn_lang_detect(s, size, size ? size : 1, &a) < 0)
		abort();
	check(&a);
	if (size <= CN_LANG_MAX_BYTES) {
		if (cn_lang_detect(s, size, 0, &b) < 0)
			abort();
		check(&b);
		if (strcmp(a.code, b.code) || a.score != b.score || a.reliable != b.reliable)
			abort();
	}
	if (size) {
		if (cn_lang_detect(s, size, 1 + data[0] % 10, &b) < 0)
			abort();
		check(&b);
	}
	return 0;
}
