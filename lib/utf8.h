/*
 * utf8.h - UTF-8 validation and repair.
 *
 * Documents carry valid UTF-8 only (DESIGN.md). Validation follows RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF. Repair replaces
 * each maximal invalid subpart with U+FFFD, as the Unicode standard
 * recommends (and as browsers and Python's errors="replace" do).
 */
#ifndef QN_UTF8_H
#define QN_UTF8_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;

/* Length of the longest valid prefix of s; == n when s is valid. */
size_t qn_utf8_valid_prefix(const char *s, size_t n);

static inline int qn_utf8_valid(const char *s, size_t n)
{
	return qn_utf8_valid_prefix(s, n) == n;
}

/*
 * Appends s to out with invalid sequences replaced by U+FFFD. Returns the
 * number of replacements, or -1 when out reached its maximum.
 */
long qn_utf8_repair(struct qn_buf *out, const char *s, size_t n);

/* Decodes one code point at s (valid UTF-8 assumed); returns its length. */
size_t qn_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Encodes cp into out (4 bytes room); returns the length. */
size_t qn_utf8_encode(uint32_t cp, char *out);

#endif
