/*
 * fuzz_sink.h - shared scaffolding of the quern-ingest fuzz targets: the
 * input goes into a memfd read through qn_rd, like a real file, and the
 * reader's output lands in a throwaway sink.
 */
#ifndef FUZZ_SINK_H
#define FUZZ_SINK_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "ingest.h"
#include "rd.h"

static struct ix_opts fuzz_opts = {.max_bytes = 1 << 20, .added = "2026-01-01T00:00:00Z"};

static void fuzz_sink_init(struct ix_sink *s)
{
	memset(s, 0, sizeof *s);
	s->opt = &fuzz_opts;
	s->path = "fuzz";
	s->source = "fuzz";
	s->format = "fuzz";
	qn_buf_init(&s->out, QN_BUF_UNLIMITED);
	qn_buf_init(&s->msgs, 1 << 16);
}

static void fuzz_sink_release(struct ix_sink *s)
{
	qn_buf_release(&s->out);
	qn_buf_release(&s->msgs);
}

/* A reader over a copy of data; *fd must be closed after qn_rd_close. */
static struct qn_rd *fuzz_rd(const uint8_t *data, size_t size, int *fd)
{
	struct qn_err e;
	struct qn_rd *r;

	*fd = memfd_create("fuzz", 0);
	if (*fd < 0)
		return NULL;
	if (size && write(*fd, data, size) != (ssize_t)size) {
		close(*fd);
		return NULL;
	}
	lseek(*fd, 0, SEEK_SET);
	r = qn_rd_fdopen(*fd, "fuzz", QN_RD_SHA256, &e);
	if (!r)
		close(*fd);
	return r;
}

#endif
