/*
 * lang.h - language identification for quern-clean, over Google's Compact
 * Language Detector 2 (CLD2, Debian libcld2-dev). lang.cc is the small C++
 * shim; everything else calls this C API.
 *
 * cn_lang_detect reads the text as plain text (no HTML skipping), with no
 * hints, and fills a struct cn_lang:
 *
 *   code      CLD2's code: ISO 639-1 where there is one ("en", "de", "ja",
 *             "zh" for Simplified Chinese, "zh-Hant" for Traditional), ISO
 *             639-2 for a few ("chr", "syr"); "xx-" and a script for text
 *             CLD2 knows only by its script ("xx-Copt"); "un" when CLD2 is
 *             not sure of any language (empty text, digits and punctuation,
 *             a single word, gibberish). At most 15 bytes, NUL-terminated.
 *   name      CLD2's English name ("ENGLISH", "Japanese", "ChineseT",
 *             "X_Coptic", "Unknown": CLD2's own spelling, capitals and all);
 *             static, never NULL.
 *   score     0..1: the share of the examined text's letters that CLD2
 *             assigns to that language (its percent3 / 100); 0 for "un".
 *   reliable  CLD2's is_reliable: the language won by a clear margin and
 *             the text was long enough. Short texts can be reliable ("Hello
 *             world" is), and a single word is usually "un".
 *
 * Bounded cost: only the first max_bytes bytes are examined (0 means
 * CN_LANG_MAX_BYTES; larger values are capped at CN_LANG_MAX_BYTES_LIMIT),
 * cut back to the start of a UTF-8 character, so a huge document costs no
 * more than its opening. Nothing outside [text, text + len) is read.
 *
 * Any bytes: CLD2 must only be given "interchange-valid" UTF-8, which is
 * stricter than valid UTF-8 (it also refuses C0 controls other than TAB,
 * LF, FF and CR, DEL, the C1 controls and the noncharacters U+FDD0..U+FDEF
 * and U+xFFFE/U+xFFFF), and it reads a little past the end of its buffer
 * (it peeks at the character after a letter in a new script). So CLD2 is
 * always given a padded copy of the examined bytes, never the caller's
 * memory, in which each byte of an invalid sequence or of a refused
 * character is a space: the copy has the same length, and the language of
 * the text around bad bytes is still found (a prefix up to the first bad
 * byte could be empty). The call still goes through CLD2's own UTF-8
 * check, so a byte this module failed to clean gives -1, not a wrong read.
 * The copy costs little next to CLD2 itself (about 2% on clean English;
 * CLD2 reads some 35 MB/s there, one thread).
 *
 * Thread-safe: CLD2's tables are read-only and its detection keeps its
 * state on the stack and in per-call allocations ("Thread safe" is one of
 * its stated design goals, compact_lang_det.h); the only global it writes
 * is a debug variable that is always set to the same constant (read only by
 * its debug printing, which is never turned on here). No state besides the
 * arguments here either.
 */
#ifndef CN_LANG_H
#define CN_LANG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CN_LANG_MAX_BYTES (64 * 1024)
#define CN_LANG_MAX_BYTES_LIMIT (1024 * 1024 * 1024)

struct cn_lang {
	char code[16];    /* "en", "zh-Hant", ...; "un" when unknown */
	const char *name; /* CLD2's English name, static */
	double score;     /* 0..1: share of the text in that language */
	int reliable;     /* CLD2's is_reliable */
};

/*
 * Detects the language of text[0..len) (any bytes; text may be NULL when
 * len is 0), examining at most max_bytes of it (0: CN_LANG_MAX_BYTES).
 * Returns 0, or -1 when memory ran out (or CLD2 refused the cleaned text);
 * out then holds "un", score 0.
 */
int cn_lang_detect(const char *text, size_t len, size_t max_bytes, struct cn_lang *out);

#ifdef __cplusplus
}
#endif

#endif
