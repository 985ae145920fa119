/*
 * fuzz_eval_task.c - libFuzzer target for quern-audit eval's task files and
 * templates (audit/evaltask.c): any bytes are parsed as a task YAML (the
 * part after a line "---doc" is a JSON document to render against; a fixed
 * one otherwise). A task that loads is built into prompts over that
 * document with few-shot examples; the same bytes are also compiled as one
 * template and rendered. Nothing may crash or leak; a refusal must say
 * something.
 *
 * The module is compiled in here, as fuzz_sweep_space.c does with its
 * reader: `make fuzz` links lib/, ingest/ and clean/ only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../audit/evalmetrics.c"
#include "../../audit/evaltask.c"

static const char fixed_doc[] = "{\"q\":\"Why?\",\"a\":\"yes\",\"label\":1,\"n\":2.5,"
				"\"choices\":{\"text\":[\"no\",\"yes\"]},\"list\":[\"x\",\"y\"]}";

static int fill_split(struct qn_ev_split *s, json_t *doc, size_t n)
{
	s->path = strdup("doc");
	s->docs = calloc(n, sizeof *s->docs);
	s->lines = calloc(n, sizeof *s->lines);
	if (!s->path || !s->docs || !s->lines)
		return -1;
	for (size_t i = 0; i < n; i++) {
		s->docs[i] =
		    i ? json_pack("{s:O,s:i}", "copy", doc, "i", (int)i) : json_incref(doc);
		s->lines[i] = i + 1;
	}
	s->n = n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t tlen = size;
	json_t *doc = NULL;
	const char *sep = memmem(data, size, "\n---doc\n", 8);
	if (sep) {
		tlen = (size_t)(sep - text);
		doc = json_loadb(sep + 8, size - tlen - 8, 0, NULL);
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_loads(fixed_doc, 0, NULL);
	}
	struct qn_err e = {{0}};
	struct qn_ev_task t;
	if (qn_ev_task_parse(text, tlen, "fuzz", NULL, &t, &e) == 0) {
		long k = t.num_fewshot > 0 ? (t.num_fewshot > 2 ? 2 : t.num_fewshot) : 0;
		if (fill_split(&t.eval, doc, 1) == 0 && fill_split(&t.fewshot, doc, 4) == 0) {
			struct qn_ev_inst *in = NULL;
			size_t n = 0;
			t.draw_extra = 1;
			if (qn_ev_task_build(&t, k, 1234, -1, &in, &n, &e) == 0) {
				if (n != 1 || !in[0].prompt)
					abort();
				qn_ev_insts_free(in, n);
			} else if (!e.msg[0]) {
				abort();
			}
		}
	} else if (!e.msg[0]) {
		abort();
	}
	qn_ev_task_release(&t);
	struct qn_ev_tmpl *tm = qn_ev_tmpl_compile(text, tlen, "fuzz", &e);
	if (tm) {
		struct qn_buf b;
		qn_buf_init(&b, 1 << 20);
		qn_ev_tmpl_render(tm, doc, &b, &e);
		qn_buf_release(&b);
		qn_ev_tmpl_free(tm);
	}
	json_decref(doc);
	return 0;
}
