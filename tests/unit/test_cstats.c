/*
 * test_cstats.c - clean/cstats: summing --stats objects (numbers, maps by
 * key, steps by position, a key only in one side, a correction with
 * negative numbers), the mismatches it refuses (step names, array lengths,
 * kinds of value), and the finish: reasons left with no documents dropped,
 * a negative count refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "cstats.h"
#include "err.h"

static json_t *js(const char *text)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	if (!o)
		printf("bad test JSON: %s\n", je.text);
	return o;
}

/* a + b, compared with want (all as JSON text); "" when the add fails. */
static int sum_is(const char *a, const char *b, const char *want)
{
	struct qn_err e = {0};
	json_t *x = js(a), *y = js(b), *w = want[0] ? js(want) : NULL;
	int rc = cn_stats_add(x, y, "b", &e);
	int ok = want[0] ? rc == 0 && json_equal(x, w) : rc < 0 && e.msg[0];
	if (!ok) {
		char *t = json_dumps(x, JSON_COMPACT);
		printf("  got: %s (rc %d, %s)\n", t, rc, e.msg);
		free(t);
	}
	json_decref(x);
	json_decref(y);
	json_decref(w);
	return ok;
}

int main(void)
{
	const char *shard_a =
	    "{\"documents_in\":10,\"bytes_in\":100,\"documents_out\":7,\"steps\":["
	    "{\"step\":\"exact_dedup\",\"documents_in\":10,\"rejected\":{},\"counters\":{\"d\":9}},"
	    "{\"step\":\"length\",\"documents_in\":10,\"rejected\":{\"too_short\":{\"documents\":3,"
	    "\"bytes\":12}},\"counters\":{}}]}";
	const char *shard_b =
	    "{\"documents_in\":5,\"bytes_in\":50,\"documents_out\":5,\"steps\":["
	    "{\"step\":\"exact_dedup\",\"documents_in\":5,\"rejected\":{},\"counters\":{\"d\":5}},"
	    "{\"step\":\"length\",\"documents_in\":5,\"rejected\":{\"too_long\":{\"documents\":1,"
	    "\"bytes\":90}},\"counters\":{}}]}";
	const char *sum =
	    "{\"documents_in\":15,\"bytes_in\":150,\"documents_out\":12,\"steps\":["
	    "{\"step\":\"exact_dedup\",\"documents_in\":15,\"rejected\":{},\"counters\":{\"d\":14}}"
	    ","
	    "{\"step\":\"length\",\"documents_in\":15,\"rejected\":{\"too_short\":{\"documents\":3,"
	    "\"bytes\":12},\"too_long\":{\"documents\":1,\"bytes\":90}},\"counters\":{}}]}";
	CHECK_NAMED("two shards: numbers, maps by key, steps by position",
		    sum_is(shard_a, shard_b, sum));

	/* A correction: one kept document becomes an exact duplicate. */
	const char *corr = "{\"documents_out\":-1,\"steps\":["
			   "{\"step\":\"exact_dedup\",\"rejected\":{\"duplicate\":{\"documents\":1,"
			   "\"bytes\":8}}},{\"step\":\"length\",\"documents_in\":-1}]}";
	const char *fixed =
	    "{\"documents_in\":10,\"bytes_in\":100,\"documents_out\":6,\"steps\":["
	    "{\"step\":\"exact_dedup\",\"documents_in\":10,\"rejected\":{\"duplicate\":{"
	    "\"documents\":1,\"bytes\":8}},\"counters\":{\"d\":9}},"
	    "{\"step\":\"length\",\"documents_in\":9,\"rejected\":{\"too_short\":{\"documents\":3,"
	    "\"bytes\":12}},\"counters\":{}}]}";
	CHECK_NAMED("a correction with negative numbers", sum_is(shard_a, corr, fixed));

	CHECK_NAMED(
	    "different step names: refused",
	    sum_is("{\"steps\":[{\"step\":\"pii\"}]}", "{\"steps\":[{\"step\":\"lang\"}]}", ""));
	CHECK_NAMED("different step counts: refused",
		    sum_is("{\"steps\":[{\"step\":\"pii\"}]}", "{\"steps\":[]}", ""));
	CHECK_NAMED("a number against an object: refused",
		    sum_is("{\"a\":{\"b\":1}}", "{\"a\":2}", ""));
	CHECK_NAMED("an object against a number: refused",
		    sum_is("{\"a\":2}", "{\"a\":{\"b\":1}}", ""));
	CHECK_NAMED("reals add", sum_is("{\"a\":0.5}", "{\"a\":1}", "{\"a\":1.5}"));

	struct qn_err e = {0};
	json_t *x = js("{\"documents_out\":3,\"steps\":[{\"step\":\"length\",\"rejected\":{"
		       "\"gone\":{\"documents\":0,\"bytes\":0},\"kept\":{\"documents\":2,\"bytes\":"
		       "5}},\"languages\":{\"en\":{\"documents\":0,\"bytes\":0}},\"counters\":{"
		       "\"c\":0}}]}");
	json_t *w = js("{\"documents_out\":3,\"steps\":[{\"step\":\"length\",\"rejected\":{"
		       "\"kept\":{\"documents\":2,\"bytes\":5}},\"languages\":{},\"counters\":{"
		       "\"c\":0}}]}");
	CHECK_NAMED("finish: reasons and languages of no documents dropped, zero counters kept",
		    cn_stats_finish(x, &e) == 0 && json_equal(x, w));
	json_decref(x);
	json_decref(w);
	x = js("{\"documents_out\":-1,\"steps\":[]}");
	CHECK_NAMED("finish: a negative total refused, named",
		    cn_stats_finish(x, &e) < 0 && strstr(e.msg, "documents_out"));
	json_decref(x);
	x = js(
	    "{\"steps\":[{\"step\":\"s\",\"rejected\":{\"r\":{\"documents\":-1,\"bytes\":0}}}]}");
	e.msg[0] = 0;
	CHECK_NAMED("finish: a negative reason count refused, named",
		    cn_stats_finish(x, &e) < 0 && strstr(e.msg, "'r'"));
	json_decref(x);
	x = js("{\"steps\":[{\"step\":\"s\",\"counters\":{\"c\":-2}}]}");
	CHECK_NAMED("finish: a negative counter refused", cn_stats_finish(x, &e) < 0);
	json_decref(x);
	return CHECK_DONE();
}
