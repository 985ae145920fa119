/*
 * fuzz_jsonl.c - libFuzzer target: the JSONL passthrough, the text reader
 * (charset sniffing, BOMs, UTF-16) and lib's JSONL reader.
 */
#include <stdio.h>

#include "doc.h"
#include "fuzz_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ix_sink s;
	int fd;
	struct qn_rd *rd;

	for (int m = 0; m < 3; m++) {
		rd = fuzz_rd(data, size, &fd);
		if (!rd)
			return 0;
		fuzz_opts.max_bytes = m == 2 ? 256 : 1 << 20;
		fuzz_sink_init(&s);
		if (m == 0)
			ix_jsonl(&s, rd);
		else
			ix_text(&s, rd, m == 1 ? "markdown" : "text");
		fuzz_sink_release(&s);
		qn_rd_close(rd);
		close(fd);
	}
	fuzz_opts.max_bytes = 1 << 20;

	/* lib/doc.c's reader, through a path. */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd = memfd_create("j", 0));
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		struct qn_jsonl j;
		struct qn_err e;
		if (qn_jsonl_open(&j, path, 4096, 0, &e) == 0) {
			json_t *o;
			int rc;
			while ((rc = qn_jsonl_next(&j, &o, &e)) != 0 && rc != -1)
				json_decref(o);
			qn_jsonl_close(&j);
		}
	}
	close(fd);
	return 0;
}
