/*
 * fuzz_filters.c - libFuzzer target for clean/filters: runs the whole chain
 * and then each filter alone (so C4 and FineWeb see inputs the Gopher rules
 * would reject first) on arbitrary bytes, invalid UTF-8 and NULs included,
 * with a bad-words list in both boundary modes. Checks the contract: a
 * verdict of 0 or 1, a filter and reason on every rejection, C4's kept text
 * no longer than the input and its line counts adding up, the same verdict
 * on a second run, and the word splitter's tokens in order, non-empty and
 * inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filters.h"

static struct qf_words *fz_words[2];
static struct qf_result fz_r;

static void fz_init(void)
{
	static const char *const words[] = {"bad", "two words", "\xc3\xa9vil", "a-b", "x"};
	struct qn_err e;

	for (int m = 0; m < 2; m++) {
		fz_words[m] = qf_words_new(m);
		if (!fz_words[m])
			abort();
		for (size_t i = 0; i < sizeof words / sizeof *words; i++)
			if (qf_words_add(fz_words[m], words[i], strlen(words[i]), &e) < 0)
				abort();
	}
	qf_result_init(&fz_r);
}

static void fz_one(const struct qf_config *c, const struct qf_words *w, const char *s, size_t n)
{
	int rc = qf_check(c, w, s, n, &fz_r);
	const char *reason = fz_r.reason;
	uint64_t removed = 0;

	if (rc != 0 && rc != 1)
		abort();
	if (rc == 1 && (!fz_r.filter || !fz_r.reason))
		abort();
	if (rc == 0 && (fz_r.filter || fz_r.reason))
		abort();
	for (int k = 0; k < QF_C4_NLINE; k++)
		removed += fz_r.c4_removed[k];
	if (fz_r.c4_lines_kept + removed > fz_r.c4_lines_total)
		abort();
	if (rc == 0 && fz_r.has_text && fz_r.text.len > n)
		abort();
	if (qf_check(c, w, s, n, &fz_r) != rc || fz_r.reason != reason)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct qf_config c;
	struct qf_token *t;
	long nt;

	if (!fz_words[0])
		fz_init();
	nt = qf_split(s, size, &t);
	if (nt < 0)
		abort();
	for (long i = 0; i < nt; i++)
		if (!t[i].len || t[i].off + (size_t)t[i].len > size || t[i].chars > t[i].len ||
		    (i && t[i].off < t[i - 1].off + t[i - 1].len))
			abort();
	free(t);

	qf_config_init(&c);
	c.enable = QF_ALL;
	c.min_chars = 1;
	c.max_chars = 1 << 20;
	fz_one(&c, fz_words[size & 1], s, size);
	for (unsigned bit = 1; bit <= QF_FINEWEB_QUALITY; bit <<= 1) {
		c.enable = bit;
		fz_one(&c, fz_words[(size >> 1) & 1], s, size);
	}
	/* every n-gram size, a loose Gopher config */
	qf_config_init(&c);
	c.enable = QF_GOPHER_REPETITION | QF_GOPHER_QUALITY;
	for (int g = 1; g <= QF_NGRAM_MAX; g++)
		c.top_ngram_frac[g] = c.dup_ngram_frac[g] = 0.9;
	c.min_doc_words = 1;
	fz_one(&c, NULL, s, size);
	return 0;
}
