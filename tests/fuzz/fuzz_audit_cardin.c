/*
 * fuzz_audit_cardin.c - libFuzzer target for audit/cardin: the input is a
 * file quern-audit model-card or eu-summary may be handed (a metrics.jsonl,
 * a results JSON, a config, a document JSONL whose URLs give the top
 * domains). It is written to a scratch file and read both ways: as an
 * input of any kind (cd_add: kind detection, metrics lines, results) and as
 * documents (cd_add_docs: URL hosts). Nothing may crash or leak; the
 * domain shares must add up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cardin.h"
#include "cli.h"

static char path[4096];

static int write_input(const uint8_t *data, size_t size, const char *suffix)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/fuzz_audit_cardin.%ld%s", tmp && *tmp ? tmp : "/tmp",
		 (long)getpid(), suffix);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, size, f);
	return fclose(f) || w != size ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		qn_cli_init("fuzz_audit_cardin");
		qn_verbosity = -1;
		quiet = 1;
		/* Messages about bad input go to stderr; keep the replay output short. */
		if (!freopen("/dev/null", "w", stderr))
			return 0;
	}
	static const char *const suffix[] = {".json", "metrics.jsonl", ".jsonl"};
	for (int k = 0; k < 3; k++) {
		if (write_input(data, size, suffix[k]))
			return 0;
		struct cd_inputs in = {0};
		uint64_t bad = 0;
		if (k < 2)
			cd_add(&in, path);
		else
			cd_add_docs(&in, path, &bad);
		uint64_t docs = 0, bytes = 0;
		for (size_t i = 0; i < in.ndom; i++) {
			if (!in.dom[i].name || !in.dom[i].name[0])
				abort();
			docs += in.dom[i].docs;
			bytes += in.dom[i].bytes;
		}
		if (docs > in.doc_docs || bytes > in.doc_bytes)
			abort();
		cd_inputs_release(&in);
		unlink(path);
	}
	return 0;
}
