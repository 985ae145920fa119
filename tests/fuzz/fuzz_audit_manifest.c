/*
 * fuzz_audit_manifest.c - libFuzzer target for audit/manifests: the input is
 * a JSON file that quern-audit lineage or datasheet may be handed. It is
 * parsed, its kind detected, and read as a run manifest; a parse that
 * succeeds must give a consistent manifest (a tool, every path a non-empty
 * string shorter than AM_PATH_MAX, every hash 64 lowercase hex digits or
 * empty, sizes -1 or more), and a failure must leave a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "manifests.h"

static void check_files(const struct am_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(f[i].path);
		if (!l || l >= AM_PATH_MAX || f[i].size < -1)
			abort();
		if (f[i].sha256[0] && !am_is_sha256(f[i].sha256))
			abort();
		for (size_t k = 0; f[i].sha256[k]; k++)
			if (f[i].sha256[k] >= 'A' && f[i].sha256[k] <= 'F')
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qn_err e = {{0}};
	struct am_manifest m;
	json_t *root;

	if (am_json_parse((const char *)data, size, "fuzz", &root, &e) == 0) {
		enum am_kind k = am_detect(root);
		if (!am_kind_name(k))
			abort();
		json_decref(root);
	} else if (!e.msg[0]) {
		abort();
	}
	e.msg[0] = 0;
	if (am_manifest_parse(&m, (const char *)data, size, "fuzz", &e) == 0) {
		if (!m.tool || (m.nin && !m.in) || (m.nout && !m.out))
			abort();
		check_files(m.in, m.nin);
		check_files(m.out, m.nout);
		(void)am_counter(&m, "documents");
	} else if (!e.msg[0]) {
		abort();
	}
	am_manifest_release(&m);
	return 0;
}
