/*
 * clsmetrics - the confusion matrix and the scores read off it; see
 * clsmetrics.h.
 */
#include "clsmetrics.h"

#include <stdio.h>
#include <stdlib.h>

int qn_cls_metrics_init(struct qn_cls_metrics *m, size_t k)
{
	*m = (struct qn_cls_metrics){0};
	if (!k || k > 65536)
		return -1;
	m->confusion = calloc(k * k, sizeof *m->confusion);
	if (!m->confusion)
		return -1;
	m->k = k;
	return 0;
}

void qn_cls_metrics_release(struct qn_cls_metrics *m)
{
	if (!m)
		return;
	free(m->confusion);
	*m = (struct qn_cls_metrics){0};
}

void qn_cls_metrics_add(struct qn_cls_metrics *m, size_t gold, size_t pred, double loss)
{
	if (gold >= m->k || pred >= m->k)
		return;
	m->confusion[gold * m->k + pred]++;
	m->n++;
	m->loss += loss;
}

double qn_cls_accuracy(const struct qn_cls_metrics *m)
{
	uint64_t right = 0;
	for (size_t i = 0; i < m->k; i++)
		right += m->confusion[i * m->k + i];
	return m->n ? (double)right / (double)m->n : 0;
}

/* Label i's true positives, gold count (support) and predicted count. */
static void label_counts(const struct qn_cls_metrics *m, size_t i, uint64_t *tp, uint64_t *gold,
			 uint64_t *pred)
{
	*tp = m->confusion[i * m->k + i];
	*gold = *pred = 0;
	for (size_t j = 0; j < m->k; j++) {
		*gold += m->confusion[i * m->k + j];
		*pred += m->confusion[j * m->k + i];
	}
}

static double f1_of(uint64_t tp, uint64_t gold, uint64_t pred)
{
	/* 2 tp / (gold + pred): the harmonic mean of precision and recall. */
	return gold + pred ? 2.0 * (double)tp / (double)(gold + pred) : 0;
}

double qn_cls_macro_f1(const struct qn_cls_metrics *m)
{
	double sum = 0;
	size_t seen = 0;
	for (size_t i = 0; i < m->k; i++) {
		uint64_t tp, gold, pred;
		label_counts(m, i, &tp, &gold, &pred);
		if (!gold && !pred)
			continue;
		sum += f1_of(tp, gold, pred);
		seen++;
	}
	return seen ? sum / (double)seen : 0;
}

json_t *qn_cls_metrics_json(const struct qn_cls_metrics *m, const char *const *labels)
{
	json_t *o = json_object(), *names = json_array(), *per = json_object(),
	       *conf = json_array();
	int bad = !o || !names || !per || !conf;
	bad |= json_object_set_new(o, "n", json_integer((json_int_t)m->n));
	bad |= json_object_set_new(o, "loss", json_real(m->n ? m->loss / (double)m->n : 0));
	bad |= json_object_set_new(o, "accuracy", json_real(qn_cls_accuracy(m)));
	bad |= json_object_set_new(o, "macro_f1", json_real(qn_cls_macro_f1(m)));
	for (size_t i = 0; !bad && i < m->k; i++) {
		char id[32];
		snprintf(id, sizeof id, "%zu", i);
		const char *name = labels && labels[i] ? labels[i] : id;
		uint64_t tp, gold, pred;
		label_counts(m, i, &tp, &gold, &pred);
		json_t *l = json_object(), *row = json_array();
		bad |= !l || !row;
		bad |= json_array_append_new(names, json_string(name));
		bad |= json_object_set_new(l, "precision",
					   json_real(pred ? (double)tp / (double)pred : 0));
		bad |= json_object_set_new(l, "recall",
					   json_real(gold ? (double)tp / (double)gold : 0));
		bad |= json_object_set_new(l, "f1", json_real(f1_of(tp, gold, pred)));
		bad |= json_object_set_new(l, "support", json_integer((json_int_t)gold));
		bad |= json_object_set_new(per, name, l);
		for (size_t j = 0; j < m->k; j++)
			bad |= json_array_append_new(
			    row, json_integer((json_int_t)m->confusion[i * m->k + j]));
		bad |= json_array_append_new(conf, row);
	}
	bad |= json_object_set_new(o, "labels", names);
	bad |= json_object_set_new(o, "per_label", per);
	bad |= json_object_set_new(o, "confusion", conf);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
