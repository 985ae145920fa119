/*
 * charset.h - getting text from whatever encoding it came in to UTF-8.
 *
 * Byte-order marks win, then a declared charset, then the bytes themselves:
 * valid UTF-8 stays UTF-8, anything else is read as windows-1252, as browsers
 * do. Labels follow the WHATWG Encoding Standard where it matters
 * ("latin1" and "iso-8859-1" mean windows-1252). Conversion goes through
 * iconv; bytes that do not decode become U+FFFD and are counted.
 */
#ifndef QN_CHARSET_H
#define QN_CHARSET_H

#include <stddef.h>

struct qn_buf;
struct qn_err;

/* Charset named by a BOM at the start of p, and the BOM's length; else NULL. */
const char *qn_bom_sniff(const char *p, size_t n, size_t *bom_len);

/*
 * Canonical iconv name for a label ("utf8" -> "UTF-8", "latin1" ->
 * "WINDOWS-1252"); NULL when iconv does not know it. Writes into out[64].
 */
const char *qn_charset_canon(const char *label, char out[64]);

/*
 * Picks the charset for p: BOM, else `declared` (may be NULL) unless the
 * bytes are valid non-ASCII UTF-8 while the declaration names a legacy
 * single-byte charset (a common mislabel), else UTF-8 when valid, else
 * WINDOWS-1252. Writes the choice into out[64] and *bom_len.
 */
const char *qn_charset_pick(const char *p, size_t n, const char *declared, char out[64],
			    size_t *bom_len);

/*
 * Appends p (in charset cs) to out as UTF-8. Returns the number of bytes
 * that could not be decoded (each became U+FFFD), or -1 when cs is unknown
 * or out is full (e says which).
 */
long qn_to_utf8(const char *cs, const char *p, size_t n, struct qn_buf *out,
		struct qn_err *e);

#endif
