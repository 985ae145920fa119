/*
 * fuzz_config.c - libFuzzer target for clean/config: parses any bytes as a
 * config; when that succeeds, reads every parameter with every typed getter
 * (none may crash, each returns -1, 0 or 1), prints the config, parses the
 * printed text (which must succeed) and prints again: the two prints must be
 * equal. The raw tree reader (qn_yaml_parse) runs on the bytes too.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "err.h"

static void getters(const struct qn_yval *p)
{
	static const char *const choices[] = {"first", "last", NULL};
	static const char *const known[] = {"form", NULL};
	struct qn_err e;

	for (size_t i = 0; i < p->n; i++) {
		const char *k = p->v[i].key, *s, **l;
		const struct qn_yval *m;
		long n;
		double d;
		int b;
		size_t nl;
		if (qn_yget_int(p, k, LONG_MIN, LONG_MAX, &n, &e) < -1 ||
		    qn_yget_double(p, k, -1e300, 1e300, &d, &e) < -1 || qn_yget_bool(p, k, &b, &e) < -1 ||
		    qn_yget_str(p, k, &s, &e) < -1 || qn_yget_choice(p, k, choices, &b, &e) < -1)
			abort();
		if (qn_yget_strlist(p, k, &l, &nl, &e) == 1)
			free(l);
		if (qn_yget_map(p, k, &m, &e) == 1)
			getters(m);
	}
	qn_ycheck_keys(p, known, "x", &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cn_config c, c2;
	struct qn_yval root;
	struct qn_err e;
	struct qn_buf b1, b2;

	if (qn_yaml_parse((const char *)data, size, "f", &root, &e) == 0)
		qn_yval_release(&root);
	cn_config_init(&c, NULL);
	cn_config_init(&c2, NULL);
	qn_buf_init(&b1, 1 << 24);
	qn_buf_init(&b2, 1 << 24);
	if (cn_config_parse(&c, (const char *)data, size, "f", &e) == 0) {
		for (size_t i = 0; i < c.n; i++)
			getters(&c.steps[i].params);
		if (cn_config_print(&c, &b1) < 0)
			abort();
		if (cn_config_parse(&c2, b1.data, b1.len, "p", &e) < 0)
			abort();
		if (cn_config_print(&c2, &b2) < 0 || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len))
			abort();
	}
	cn_config_release(&c);
	cn_config_release(&c2);
	qn_buf_release(&b1);
	qn_buf_release(&b2);
	return 0;
}
