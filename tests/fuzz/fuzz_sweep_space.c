/*
 * fuzz_sweep_space.c - libFuzzer target for quern-train sweep's search-space
 * reader (train/space.c): any bytes either give a space whose every
 * parameter is a tunable fit option with a sane range or non-empty choices,
 * and whose draws stay inside it, or are refused with a message that starts
 * with the file's name.
 *
 * The reader is compiled in here: `make fuzz` links lib/, ingest/ and clean/
 * only (quern-train's other modules need OpenMP, which the fuzz build leaves
 * out), and the replay build then finds every symbol defined before it
 * would look in libtrain.a.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../train/space.c"

static void check_draws(const struct qn_space_param *p)
{
	char v[QN_SPACE_MAX_VALUE];
	double x;
	for (long t = 0; t < 16; t++) {
		qn_space_draw(p, (uint64_t)t * 7919, t, v);
		if (!v[0] || strlen(v) >= QN_SPACE_MAX_VALUE)
			abort();
		if (p->kind == QN_SPACE_CHOICE)
			continue;
		if (!qn_space_number(v, &x) || x < p->lo || x > p->hi)
			abort();
		if ((p->kind == QN_SPACE_INT || p->kind == QN_SPACE_LOG_INT) && x != floor(x))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_space s;
	struct qn_err e;

	if (qn_space_parse((const char *)data, size, "fuzz", &s, &e)) {
		if (strncmp(e.msg, "fuzz", 4))
			abort();
		qn_space_release(&s);
		return 0;
	}
	if (!s.nparams || s.nparams > QN_SPACE_MAX_PARAMS)
		abort();
	for (size_t i = 0; i < s.nparams; i++) {
		const struct qn_space_param *p = &s.params[i];
		if (!p->opt || qn_space_option(p->opt->name) != p->opt)
			abort();
		if (p->kind == QN_SPACE_CHOICE ? !p->nchoices || p->nchoices > QN_SPACE_MAX_CHOICES
					       : !(p->lo <= p->hi))
			abort();
		if (p->kind == QN_SPACE_LOG_UNIFORM && !(p->lo > 0))
			abort();
		check_draws(p);
	}
	qn_space_release(&s);
	return 0;
}
