/*
 * fuzz_xml.c - libFuzzer target for the XML reader and the wikitext
 * converter: the input goes through ix_xml in every mode (generic, XPath,
 * the mediawiki/rss/atom presets) via a memfd-backed qn_rd, and through
 * ix_wikitext as raw bytes. Seeds: tests/fuzz/corpus/fuzz_xml/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "err.h"
#include "rd.h"
#include "../../ingest/ingest.h"

static int discard(struct ix_sink *s)
{
	qn_buf_reset(&s->out);
	return 0;
}

static void run(int fd, const char *preset, const char *xpath)
{
	struct ix_opts o;
	struct ix_sink s;
	struct qn_err e;
	struct qn_rd *rd;
	const char *names[] = {"m"};
	const char *exprs[] = {"string(@id)"};

	memset(&o, 0, sizeof o);
	o.added = "2024-01-01T00:00:00Z";
	o.max_bytes = 1 << 20;
	o.xpath = xpath;
	if (xpath) {
		o.id_xpath = "guid";
		o.meta_name = names;
		o.meta_xpath = exprs;
		o.nmeta = 1;
	}
	memset(&s, 0, sizeof s);
	s.opt = &o;
	s.path = "fuzz";
	s.source = "fuzz";
	s.format = "xml";
	qn_buf_init(&s.out, QN_BUF_UNLIMITED);
	qn_buf_init(&s.msgs, QN_BUF_UNLIMITED);
	s.flush = discard;
	if (lseek(fd, 0, SEEK_SET) == 0 && (rd = qn_rd_fdopen(fd, "fuzz", 0, &e)) != NULL) {
		ix_xml(&s, rd, preset);
		qn_rd_close(rd);
	}
	qn_buf_release(&s.out);
	qn_buf_release(&s.msgs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct qn_buf out;
	int fd;

	if (!init) {
		xmlInitParser();
		init = 1;
	}
	fd = memfd_create("fuzz_xml", 0);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	run(fd, NULL, NULL);
	run(fd, "mediawiki", NULL);
	run(fd, "rss", NULL);
	run(fd, "atom", NULL);
	run(fd, NULL, "//item");
	close(fd);

	qn_buf_init(&out, (size_t)1 << 24);
	ix_wikitext((const char *)data, size, &out);
	qn_buf_release(&out);
	return 0;
}
