/*
 * report.h - the reports quern-audit scan writes from its results: JUnit
 * XML (one test case per policy gate), SARIF 2.1.0 (one result per finding,
 * capped and aggregated within GitHub code scanning's limits) and a
 * self-contained HTML page (inline CSS and SVG charts, trends from earlier
 * summaries, the failed gates first). Each writes path atomically.
 *
 * The inputs are the scan's own outputs as JSON (docs/audit.md documents
 * them): summary is the summary object, findings an array of finding
 * objects (the first ones only when there are many: the summary holds the
 * full counts), history earlier summaries, oldest first. Nothing is taken
 * over: the caller keeps its references.
 */
#ifndef QN_AUDIT_REPORT_H
#define QN_AUDIT_REPORT_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

int report_junit(const json_t *summary, const char *path, struct qn_err *e);
int report_sarif(const json_t *summary, const json_t *findings, const char *path, struct qn_err *e);
int report_html(const json_t *summary, const json_t *findings, const json_t *const *history,
		size_t nhistory, const char *path, struct qn_err *e);
/*
 * The same page with a section on the model: model holds quern-audit eval
 * results (lm-evaluation-harness's layout: every task's metrics with their
 * standard errors), memorization results (training against held-out
 * documents, with a chart) and canary exposure results (exposure by
 * repetition count, with a chart), each recognised by its content
 * (manifests.h's am_detect); others are left out.
 */
int report_html_model(const json_t *summary, const json_t *findings, const json_t *const *history,
		      size_t nhistory, const json_t *const *model, size_t nmodel, const char *path,
		      struct qn_err *e);

#endif
