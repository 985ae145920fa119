/*
 * normalize.h - text normalization for quern-clean: Unicode form (NFC by
 * default, or NFKC), line endings, whitespace, control and invisible
 * characters, each change counted.
 *
 * cn_normalize replaces out's contents with the normalized text. The input
 * may be any bytes: invalid UTF-8 is first repaired (each maximal invalid
 * subpart becomes U+FFFD, lib/utf8.h). Then, in this order:
 *
 *   1. characters are removed or mapped, one code point at a time:
 *      - CRLF, lone CR, NEL (U+0085), LS and PS (U+2028, U+2029) -> LF;
 *      - C0 controls other than LF and TAB, DEL and the C1 controls are
 *        removed;
 *      - invisible characters are removed: ZERO WIDTH SPACE U+200B, WORD
 *        JOINER U+2060, BOM/ZWNBSP U+FEFF (anywhere, the leading one too),
 *        SOFT HYPHEN U+00AD, and the bidi embedding/override/isolate
 *        controls U+202A..U+202E and U+2066..U+2069. ZWJ U+200D and ZWNJ
 *        U+200C are kept: emoji sequences and Indic, Persian and Arabic
 *        spelling need them; LRM/RLM (U+200E, U+200F) are kept as well,
 *        since they change how mixed right-to-left text reads;
 *      - when unicode_spaces is set, the space variants NBSP U+00A0, OGHAM
 *        SPACE MARK U+1680, U+2000..U+200A, NARROW NBSP U+202F, MEDIUM
 *        MATHEMATICAL SPACE U+205F and IDEOGRAPHIC SPACE U+3000 -> ' ';
 *   2. the Unicode normalization form (utf8proc; NFKC maps the space
 *      variants above to ' ' by itself);
 *   3. whitespace, line by line: spaces and tabs at the end of a line are
 *      removed; when collapse_spaces is set, a run of two or more spaces or
 *      tabs inside a line becomes one space (the indentation that starts a
 *      line is kept, so code and lists keep their shape; a lone tab stays);
 *      more than max_blank_lines consecutive empty lines become
 *      max_blank_lines (negative: no limit); when trim is set, whitespace
 *      at the start and end of the text is removed.
 *
 * Counts are added to (never reset in) the caller's struct cn_norm_counts,
 * so one struct can sum a whole corpus. Each field counts what was changed:
 * code points (control, invisible, unicode_space, line_endings, unicode_form:
 * code points in each stretch that the form changed, at least 1 a stretch),
 * bytes (trailing_space, collapsed_space, trimmed), lines (blank_lines) or
 * repairs (invalid_utf8).
 *
 * Fast path: ASCII text without CR, controls, space runs, trailing spaces,
 * extra blank lines or surrounding whitespace is copied as is.
 *
 * Thread-safe: no state besides the arguments.
 */
#ifndef CN_NORMALIZE_H
#define CN_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

struct qn_buf;

enum cn_norm_form {
	CN_NORM_NFC,
	CN_NORM_NFKC,
	CN_NORM_NONE,
};

struct cn_norm_opts {
	enum cn_norm_form form; /* CN_NORM_NFC */
	int collapse_spaces;    /* 1: runs of spaces/tabs inside a line -> ' ' */
	int max_blank_lines;    /* 2; negative: keep every blank line */
	int unicode_spaces;     /* 1: NBSP and the other space variants -> ' ' */
	int trim;               /* 1: strip whitespace at both ends */
};

struct cn_norm_counts {
	uint64_t invalid_utf8;    /* invalid sequences replaced by U+FFFD */
	uint64_t line_endings;    /* CRLF, CR, NEL, LS, PS turned into LF */
	uint64_t control;         /* control characters removed */
	uint64_t invisible;       /* invisible characters removed */
	uint64_t unicode_space;   /* space variants turned into ' ' */
	uint64_t unicode_form;    /* code points changed by NFC/NFKC */
	uint64_t trailing_space;  /* bytes of spaces/tabs removed at line ends */
	uint64_t collapsed_space; /* bytes removed by collapsing runs */
	uint64_t blank_lines;     /* blank lines removed */
	uint64_t trimmed;         /* whitespace bytes removed at both ends */
};

/* The defaults above. */
void cn_norm_opts_init(struct cn_norm_opts *o);

/* "nfc", "nfkc", "none" and back; parse gives -1 for an unknown name. */
int cn_norm_form_parse(const char *name);
const char *cn_norm_form_name(enum cn_norm_form f);

/*
 * Replaces out's contents with the normalized text. o == NULL means the
 * defaults; c may be NULL. Returns 0, or -1 when out would pass out->max,
 * a working copy would pass out->max plus four times len, or memory ran
 * out; out is then empty.
 */
int cn_normalize(const char *utf8, size_t len, const struct cn_norm_opts *o, struct qn_buf *out,
		 struct cn_norm_counts *c);

#endif
