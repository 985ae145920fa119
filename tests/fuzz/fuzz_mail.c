/*
 * fuzz_mail.c - libFuzzer target for the e-mail readers (ingest/mail.c).
 *
 * The input is put in a memory file and read twice: once as one .eml
 * message, once as an mbox archive. The first byte picks the quote mode so
 * that the stripping code is fuzzed too. Every document written must be
 * valid JSON; the sink's buffers are freed after each run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "../../ingest/ingest.h"
#include "buf.h"
#include "err.h"
#include "rd.h"

static void check_output(const struct qn_buf *out)
{
	const char *p = out->data, *end = out->data + out->len;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *d = json_loadb(p, n, 0, NULL);
		if (!d || !json_is_string(json_object_get(d, "text")))
			abort();
		json_decref(d);
		p += n + 1;
	}
}

static void run(int fd, int mbox, const struct ix_opts *o)
{
	struct ix_sink s;
	struct qn_err e;
	struct qn_rd *rd;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return;
	rd = qn_rd_fdopen(fd, "fuzz", 0, &e);
	if (!rd)
		return;
	memset(&s, 0, sizeof s);
	s.opt = o;
	s.path = "fuzz";
	s.source = "fuzz";
	qn_buf_init(&s.out, QN_BUF_UNLIMITED);
	qn_buf_init(&s.msgs, QN_BUF_UNLIMITED);
	if (mbox)
		ix_mbox(&s, rd);
	else
		ix_eml(&s, rd);
	check_output(&s.out);
	qn_buf_release(&s.out);
	qn_buf_release(&s.msgs);
	qn_rd_close(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ix_opts o;
	int fd;

	fd = memfd_create("fuzz_mail", 0);
	if (fd < 0)
		return 0;
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0) {
			close(fd);
			return 0;
		}
		off += (size_t)w;
	}
	memset(&o, 0, sizeof o);
	o.added = "2026-01-01T00:00:00Z";
	o.max_bytes = 1 << 20;
	o.quotes = size ? (enum ix_quotes)(data[0] % 3) : IX_QUOTES_KEEP;
	run(fd, 0, &o);
	run(fd, 1, &o);
	close(fd);
	return 0;
}
