/*
 * test_run_pipeline.c - quern-run's pipeline module: path normalization,
 * interpolation, foreach names, the DAG's order and edges, and the errors'
 * places (file:line:col).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "pipeline.h"

static char *join(const char *a, const char *b)
{
	static char out[256];
	char *s = rn_path_join(a, b);
	snprintf(out, sizeof out, "%s", s ? s : "(null)");
	free(s);
	return out;
}

static int parse(const char *text, const char *params, struct rn_pipeline *p, struct qn_err *e)
{
	rn_pipeline_init(p);
	return rn_pipeline_parse(text, strlen(text), "p.yaml", "/nonexistent", params,
				 params ? strlen(params) : 0, "params.yaml", p, e);
}

int main(void)
{
	struct rn_pipeline p;
	struct qn_err e;

	CHECK_STR("join plain", join(".", "a/b"), "a/b");
	CHECK_STR("join dots", join("x", "./a/../b//c/"), "x/b/c");
	CHECK_STR("join up", join("x", "../../y"), "../y");
	CHECK_STR("join absolute", join("x", "/a/./b/.."), "/a");
	CHECK_STR("join nothing", join(".", "."), ".");
	CHECK_STR("join up twice", join("..", "../z"), "../../z");
	CHECK_NAMED("within itself", rn_path_within("a/b", "a/b"));
	CHECK_NAMED("within a folder", rn_path_within("a/b/c", "a/b"));
	CHECK_NAMED("not within a sibling prefix", !rn_path_within("a/bc", "a/b"));
	CHECK_NAMED("within the root", rn_path_within("a", "."));
	CHECK_NAMED("../ not within the root", !rn_path_within("../a", "."));

	const char *fe = "vars:\n  langs: [en, de]\nstages:\n"
			 "  make:\n    foreach: ${langs}\n    do:\n"
			 "      cmd: echo ${item} ${lr} > o_${item}\n      outs: [\"o_${item}\"]\n"
			 "  use:\n    cmd: cat o_en o_de > all\n    deps: [o_en, o_de]\n"
			 "    outs: [all]\n    params: [lr]\n";
	CHECK_NAMED("foreach parses", parse(fe, "lr: 0.5\n", &p, &e) == 0);
	CHECK_NAMED("three stages", p.n == 3);
	if (p.n == 3) {
		CHECK_STR("foreach name", p.stages[0].name, "make@en");
		CHECK_STR("interpolated cmd", p.stages[1].cmd, "echo de 0.5 > o_de");
		CHECK_STR("interpolated out", p.stages[1].outs[0].path, "o_de");
		CHECK_NAMED("use needs both", p.stages[2].nup == 2);
		CHECK_NAMED("use comes last", p.order[2] == 2);
		CHECK_STR("param value", p.stages[2].params[0].value, "0.5");
	}
	rn_pipeline_release(&p);

	CHECK_NAMED("a cycle fails", parse("stages:\n  a: {cmd: x, deps: [b], outs: [a]}\n"
					   "  b: {cmd: x, deps: [a], outs: [b]}\n",
					   NULL, &p, &e) < 0);
	CHECK_NAMED("the cycle is named",
		    strstr(e.msg, "cycle: a -> b -> a") || strstr(e.msg, "cycle: b -> a -> b"));
	rn_pipeline_release(&p);
	CHECK_NAMED("an undefined variable fails",
		    parse("stages:\n  a:\n    cmd: echo ${nope}\n", NULL, &p, &e) < 0);
	CHECK_STR("it is placed", e.msg,
		  "p.yaml:3:10: undefined variable 'nope' in 'cmd' of stage 'a'");
	rn_pipeline_release(&p);
	CHECK_NAMED("\\${ is kept",
		    parse("stages:\n  a:\n    cmd: echo \\${HOME}\n", NULL, &p, &e) == 0 &&
			p.n == 1 && !strcmp(p.stages[0].cmd, "echo ${HOME}"));
	rn_pipeline_release(&p);
	CHECK_NAMED(
	    "a list item as a map in foreach names by index",
	    parse(
		"stages:\n  s:\n    foreach: [{w: 1}, {w: 2}]\n    do: {cmd: \"echo ${item.w}\"}\n",
		NULL, &p, &e) == 0 &&
		p.n == 2 && !strcmp(p.stages[1].name, "s@1") && !strcmp(p.stages[1].cmd, "echo 2"));
	rn_pipeline_release(&p);
	return CHECK_DONE();
}
