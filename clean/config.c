/* config.c - see config.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "err.h"

/* ---- the config ---- */

void cn_config_init(struct cn_config *c, const char *file)
{
	memset(c, 0, sizeof *c);
	c->file = strdup(file ? file : "-");
}

void cn_config_release(struct cn_config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->steps[i].name);
		qn_yval_release(&c->steps[i].params);
	}
	free(c->steps);
	free(c->file);
	memset(c, 0, sizeof *c);
}

struct cn_step *cn_config_add_step(struct cn_config *c, const char *name)
{
	struct cn_step *v = realloc(c->steps, (c->n + 1) * sizeof *v);
	if (!v)
		return NULL;
	c->steps = v;
	struct cn_step *s = &c->steps[c->n];
	memset(s, 0, sizeof *s);
	if (!(s->name = strdup(name)))
		return NULL;
	s->params.type = QN_YMAP;
	s->params.file = c->file;
	c->n++;
	return s;
}

struct cn_step *cn_config_find(struct cn_config *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->steps[i].name, name))
			return &c->steps[i];
	return NULL;
}

static int take_step(struct cn_config *c, struct qn_yval *item, struct qn_err *e)
{
	char w[512];
	const char *name;
	unsigned line, col;
	struct qn_yval *params = NULL;

	if (item->type == QN_YSCALAR) {
		name = item->s;
		line = item->line;
		col = item->col;
	} else if (item->type == QN_YMAP && item->n == 1) {
		name = item->v[0].key;
		line = item->v[0].kline;
		col = item->v[0].kcol;
		params = &item->v[0];
		if (params->type != QN_YMAP && params->type != QN_YNULL)
			return qn_errf(e, "%sthe parameters of '%s' must be a map",
				       qn_yval_where(params, w, sizeof w), name);
	} else {
		return qn_errf(e, "%sa step must be a name or 'name: {parameters}'",
			       qn_yval_where(item, w, sizeof w));
	}
	if (!*name || strlen(name) > 64 || (item->type == QN_YSCALAR && strlen(name) != item->slen))
		return qn_errf(e, "%sbad step name",
			       params ? qn_yval_key_where(params, w, sizeof w)
				      : qn_yval_where(item, w, sizeof w));
	struct cn_step *s = cn_config_add_step(c, name);
	if (!s)
		return qn_errf(e, "%s: out of memory", c->file);
	s->line = line;
	s->col = col;
	if (params && params->type == QN_YMAP) {
		free(params->key);
		s->params = *params;
		s->params.key = NULL;
		memset(params, 0, sizeof *params);
	} else if (params) {
		s->params.line = params->line;
		s->params.col = params->col;
	}
	return 0;
}

static int take_config(struct cn_config *c, struct qn_yval *root, struct qn_err *e)
{
	char w[512];
	static const char *const top[] = {"steps", NULL};

	if (root->type != QN_YMAP)
		return qn_errf(e, "%sexpected a map with 'steps'", qn_yval_where(root, w, sizeof w));
	if (qn_ycheck_keys(root, top, "the config", e) < 0)
		return -1;
	const struct qn_yval *st = qn_yval_get(root, "steps");
	if (!st)
		return qn_errf(e, "%s'steps' is missing", qn_yval_where(root, w, sizeof w));
	if (st->type == QN_YNULL)
		return 0;
	if (st->type != QN_YLIST)
		return qn_errf(e, "%s'steps' must be a list", qn_yval_where(st, w, sizeof w));
	for (size_t i = 0; i < st->n; i++)
		if (take_step(c, &st->v[i], e) < 0)
			return -1;
	return 0;
}

int cn_config_parse(struct cn_config *c, const char *text, size_t len, const char *file,
		    struct qn_err *e)
{
	struct qn_yval root;

	cn_config_release(c);
	cn_config_init(c, file);
	if (!c->file)
		return qn_errf(e, "out of memory");
	if (qn_yaml_parse(text, len, c->file, &root, e) < 0)
		return -1;
	int rc = take_config(c, &root, e);
	qn_yval_release(&root);
	if (rc < 0) {
		char *f = c->file;
		c->file = NULL;
		cn_config_release(c);
		c->file = f;
	}
	return rc;
}

int cn_config_load(struct cn_config *c, const char *path, struct qn_err *e)
{
	char *text;
	size_t len;

	if (qn_yaml_read_file(path, CN_CONFIG_MAX_BYTES, &text, &len, e) < 0)
		return -1;
	int rc = cn_config_parse(c, text ? text : "", len, path, e);
	free(text);
	return rc;
}

/* ---- writing YAML ---- */

static int emit_out(void *data, unsigned char *buf, size_t size)
{
	return qn_buf_add(data, buf, size) == 0;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n, int quoted)
{
	yaml_event_t ev;
	yaml_scalar_style_t st = quoted ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, st))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_val(yaml_emitter_t *em, const struct qn_yval *v)
{
	yaml_event_t ev;

	switch (v->type) {
	case QN_YNULL:
		return emit_scalar(em, "null", 4, 0);
	case QN_YSCALAR:
		return emit_scalar(em, v->s, v->slen, v->quoted);
	case QN_YLIST:
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		for (size_t i = 0; i < v->n; i++)
			if (emit_val(em, &v->v[i]) < 0)
				return -1;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	case QN_YMAP:
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		for (size_t i = 0; i < v->n; i++)
			if (emit_scalar(em, v->v[i].key, strlen(v->v[i].key),
					qn_yaml_needs_quotes(v->v[i].key)) < 0 ||
			    emit_val(em, &v->v[i]) < 0)
				return -1;
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	return -1;
}

static int emit_config(yaml_emitter_t *em, const struct cn_config *c)
{
	yaml_event_t ev;

	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(em, &ev))
		return -1;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(em, &ev))
		return -1;
	if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
	    !yaml_emitter_emit(em, &ev) || emit_scalar(em, "steps", 5, 0) < 0)
		return -1;
	if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
	    !yaml_emitter_emit(em, &ev))
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		const struct cn_step *s = &c->steps[i];
		if (!s->params.n) {
			if (emit_scalar(em, s->name, strlen(s->name), qn_yaml_needs_quotes(s->name)) < 0)
				return -1;
			continue;
		}
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev) ||
		    emit_scalar(em, s->name, strlen(s->name), qn_yaml_needs_quotes(s->name)) < 0 ||
		    emit_val(em, &s->params) < 0)
			return -1;
		yaml_mapping_end_event_initialize(&ev);
		if (!yaml_emitter_emit(em, &ev))
			return -1;
	}
	yaml_sequence_end_event_initialize(&ev);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	yaml_mapping_end_event_initialize(&ev);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	yaml_document_end_event_initialize(&ev, 1);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	yaml_stream_end_event_initialize(&ev);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	return yaml_emitter_flush(em) ? 0 : -1;
}

int cn_config_print(const struct cn_config *c, struct qn_buf *out)
{
	yaml_emitter_t em;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, emit_out, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_emitter_set_indent(&em, 2);
	int rc = emit_config(&em, c);
	yaml_emitter_delete(&em);
	return rc;
}
