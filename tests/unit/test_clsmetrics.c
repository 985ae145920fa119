/*
 * test_clsmetrics - accuracy, macro-F1 (against values scikit-learn gives
 * for the same predictions) and the JSON layout.
 */
#include "check.h"
#include "clsmetrics.h"

#include <math.h>
#include <string.h>

int main(void)
{
	struct qn_cls_metrics m;
	CHECK_NAMED("0 labels refused", qn_cls_metrics_init(&m, 0) == -1);
	CHECK_NAMED("3 labels", qn_cls_metrics_init(&m, 3) == 0);
	/*
	 * y_true = [0,0,0,1,1,2], y_pred = [0,0,1,1,2,2]; scikit-learn:
	 * accuracy 4/6, f1 per label [0.8, 0.5, 0.6666667], macro 0.6555556.
	 */
	static const int gold[] = {0, 0, 0, 1, 1, 2}, pred[] = {0, 0, 1, 1, 2, 2};
	for (int i = 0; i < 6; i++)
		qn_cls_metrics_add(&m, (size_t)gold[i], (size_t)pred[i], 0.5);
	qn_cls_metrics_add(&m, 7, 0, 1); /* out of range: ignored */
	CHECK_NAMED("6 examples counted, the out-of-range one not", m.n == 6);
	CHECK_NAMED("accuracy 4/6", fabs(qn_cls_accuracy(&m) - 4.0 / 6) < 1e-12);
	CHECK_NAMED("macro-F1 as scikit-learn",
		    fabs(qn_cls_macro_f1(&m) - (0.8 + 0.5 + 2.0 / 3) / 3) < 1e-12);
	const char *names[] = {"a", "b", "c"};
	json_t *j = qn_cls_metrics_json(&m, names);
	CHECK_NAMED("json", j != NULL);
	json_t *row = json_array_get(json_object_get(j, "confusion"), 0);
	CHECK_NAMED("confusion row a: [2,1,0]",
		    json_integer_value(json_array_get(row, 0)) == 2 &&
			json_integer_value(json_array_get(row, 1)) == 1);
	json_t *b = json_object_get(json_object_get(j, "per_label"), "b");
	CHECK_NAMED("label b: precision 0.5, support 2",
		    fabs(json_real_value(json_object_get(b, "precision")) - 0.5) < 1e-12 &&
			json_integer_value(json_object_get(b, "support")) == 2);
	CHECK_NAMED("mean loss", fabs(json_real_value(json_object_get(j, "loss")) - 0.5) < 1e-12);
	json_decref(j);
	qn_cls_metrics_release(&m);

	/* A label never seen as gold nor predicted leaves macro-F1 alone. */
	CHECK_NAMED("4 labels", qn_cls_metrics_init(&m, 4) == 0);
	qn_cls_metrics_add(&m, 0, 0, 0);
	qn_cls_metrics_add(&m, 1, 1, 0);
	CHECK_NAMED("unseen labels skipped: macro-F1 1", qn_cls_macro_f1(&m) == 1.0);
	qn_cls_metrics_release(&m);
	qn_cls_metrics_release(NULL);
	return CHECK_DONE();
}
