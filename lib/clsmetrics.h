/*
 * clsmetrics - classification metrics: a confusion matrix over K labels
 * and what is read off it (accuracy, per-label precision, recall and F1,
 * macro-F1 as scikit-learn computes it), as JSON. quern-train's
 * classifiers report validation with it; quern-audit's classification
 * tasks too. The caller owns the struct; qn_cls_metrics_release frees
 * the matrix.
 */
#ifndef QN_CLSMETRICS_H
#define QN_CLSMETRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct qn_cls_metrics {
	size_t k;	     /* labels */
	uint64_t *confusion; /* k*k counts, [gold * k + predicted] */
	uint64_t n;	     /* examples added */
	double loss;	     /* sum of the added cross-entropies */
};

/* 0, or -1 when k is 0 or memory ran out. */
int qn_cls_metrics_init(struct qn_cls_metrics *m, size_t k);
void qn_cls_metrics_release(struct qn_cls_metrics *m);
/* One example: gold and predicted label ids (below k), its loss (-ln p(gold)). */
void qn_cls_metrics_add(struct qn_cls_metrics *m, size_t gold, size_t pred, double loss);
double qn_cls_accuracy(const struct qn_cls_metrics *m);
/*
 * The mean F1 over the labels that occur as gold or as prediction (a label
 * with no true positive has F1 0), scikit-learn's f1_score(average="macro").
 */
double qn_cls_macro_f1(const struct qn_cls_metrics *m);
/*
 * {"n","loss","accuracy","macro_f1","labels":[...],"per_label":{name:
 * {"precision","recall","f1","support"}},"confusion":[[...],...]} with
 * rows gold and columns predicted, in label order; labels may be NULL
 * (names are the ids then). NULL when memory ran out.
 */
json_t *qn_cls_metrics_json(const struct qn_cls_metrics *m, const char *const *labels);

#endif
