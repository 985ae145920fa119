/*
 * fuzz_dsig.c - libFuzzer target for quern-clean's signature files
 * (clean/dsig.h) as dedup-merge reads them: the header, the parameters and
 * the step chain (JSON), the records with their accounting tails, and -
 * when the input is a whole merge of one shard - the replay, the second
 * reading for the stats corrections and the removal lists. Each input is
 * written to a temporary file and merged into a temporary folder; a bad
 * file must be refused with a message, never crash or overrun.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsig.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	char file[4096], dir[4096], path[4200];

	snprintf(file, sizeof file, "%s/fuzz_dsig.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	snprintf(dir, sizeof dir, "%s/fuzz_dsig_out.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(file);
	if (fd < 0 || !mkdtemp(dir))
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	char *sigs[] = {file};
	struct qn_err e = {0};
	if (cn_dedup_merge(dir, sigs, 1, &e) < 0 && !e.msg[0])
		abort(); /* a failure without a message */
	unlink(file);
	snprintf(path, sizeof path, "%s/shard-00000.removals.jsonl", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/dedup-stats.json", dir);
	unlink(path);
	if (rmdir(dir) < 0)
		abort(); /* something else was left behind */
	return 0;
}
