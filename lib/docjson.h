/*
 * docjson.h - the fast path quern-clean and quern-tokenize read document
 * lines with.
 *
 * A document line is mostly its "text". jansson decodes strings one
 * character at a time through a stream; here the top-level object is
 * scanned lightly to find the "text" value, that string is decoded by a
 * tight loop, and jansson parses only the rest of the line (the line with
 * "text": "" in place of the value), which is small. jansson's parse of the
 * rest is also what validates the line: the light scan only finds
 * boundaries, so whatever it gets wrong on malformed input makes the
 * reduced parse fail, and the caller falls back to parsing the whole line
 * with jansson, whose messages then name the problem.
 *
 * qn_docjson_parse returns the parsed object (the caller json_decref's it)
 * with "text" set to "" and the decoded text in *text, or NULL for the
 * fallback: no top-level "text" string, a duplicate "text", an escape it
 * refuses (a lone surrogate, a control character), text that is not valid
 * UTF-8, or a rest jansson rejects. When it succeeds, the result equals
 * jansson's parse of the whole line with JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL (tests/fuzz/fuzz_docjson.c checks that). rest is scratch.
 * It never reads outside [line, line + len).
 *
 * qn_docjson_fix_surrogates rewrites, in place, each \u escape of a lone
 * surrogate (one jansson refuses) as \ufffd, the same length, and returns
 * how many it rewrote, so a document with one is repaired rather than lost,
 * as one with invalid UTF-8 bytes is.
 */
#ifndef QN_DOCJSON_H
#define QN_DOCJSON_H

#include <stddef.h>

#include <jansson.h>

struct qn_buf;

json_t *qn_docjson_parse(const char *line, size_t len, struct qn_buf *text, struct qn_buf *rest);
size_t qn_docjson_fix_surrogates(char *p, size_t n);

#endif
