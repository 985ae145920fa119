/*
 * fuzz_docjson.c - libFuzzer target for lib/docjson, the tools' fast
 * path for document lines. The input is one line. Whenever the fast path
 * accepts it, jansson's parse of the whole line must accept it too, with
 * the same text and, text aside, an equal object; and the surrogate fixer
 * must keep the length and leave no lone surrogate escape behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "docjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct qn_buf text, rest;
	json_error_t je;

	qn_buf_init(&text, QN_BUF_UNLIMITED);
	qn_buf_init(&rest, QN_BUF_UNLIMITED);
	json_t *fast = qn_docjson_parse(line, size, &text, &rest);
	if (fast) {
		json_t *full = json_loadb(line, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		if (!full)
			abort(); /* the fast path took a line jansson refuses */
		json_t *t = json_object_get(full, "text");
		if (!json_is_string(t) || json_string_length(t) != text.len ||
		    memcmp(json_string_value(t), text.data, text.len))
			abort(); /* different text */
		json_object_set_new(full, "text", json_string(""));
		if (!json_equal(full, fast))
			abort(); /* different rest */
		json_decref(full);
		json_decref(fast);
	}
	char *copy = malloc(size + 1);
	if (copy) {
		memcpy(copy, data, size);
		qn_docjson_fix_surrogates(copy, size);
		if (qn_docjson_fix_surrogates(copy, size) != 0)
			abort(); /* a second pass must find nothing */
		free(copy);
	}
	qn_buf_release(&text);
	qn_buf_release(&rest);
	return 0;
}
