/*
 * fuzz_csv.c - libFuzzer target: CSV and TSV rows, with a small --max-bytes
 * so the bad-row recovery paths run too. The first byte picks options.
 */
#include "fuzz_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode = size ? data[0] : 0;
	struct ix_sink s;
	int fd;
	struct qn_rd *rd;

	if (size) {
		data++;
		size--;
	}
	rd = fuzz_rd(data, size, &fd);
	if (!rd)
		return 0;
	fuzz_opts.max_bytes = (mode & 1) ? 64 : 1 << 20;
	fuzz_opts.no_header = (mode & 2) != 0;
	fuzz_opts.text_column = (mode & 4) ? "text" : NULL;
	fuzz_sink_init(&s);
	ix_csv(&s, rd, (mode & 8) != 0);
	fuzz_sink_release(&s);
	qn_rd_close(rd);
	close(fd);
	fuzz_opts.max_bytes = 1 << 20;
	fuzz_opts.no_header = 0;
	fuzz_opts.text_column = NULL;
	return 0;
}
