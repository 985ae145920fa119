/* fuzz_html.c - libFuzzer target: HTML decoding and main-content extraction. */
#include "fuzz_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ix_html_opts modes[] = {{0, 0}, {1, 1}};

	for (size_t m = 0; m < 2; m++) {
		struct ix_sink s;
		int fd;
		struct qn_rd *rd = fuzz_rd(data, size, &fd);
		if (!rd)
			return 0;
		fuzz_opts.html = modes[m];
		fuzz_sink_init(&s);
		ix_html(&s, rd);
		fuzz_sink_release(&s);
		qn_rd_close(rd);
		close(fd);
	}
	fuzz_opts.html = modes[0];
	return 0;
}
