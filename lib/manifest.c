/* manifest.c - see manifest.h. */
#include "manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "doc.h"
#include "err.h"
#include "wr.h"

struct qn_manifest *qn_manifest_new(const char *tool, const char *version, int argc,
				    char **argv)
{
	struct qn_manifest *m = calloc(1, sizeof *m);
	char now[32];
	json_t *av;

	if (!m)
		return NULL;
	m->root = json_object();
	m->inputs = json_array();
	m->outputs = json_array();
	m->counters = json_object();
	av = json_array();
	if (!m->root || !m->inputs || !m->outputs || !m->counters || !av) {
		json_decref(av);
		qn_manifest_free(m);
		return NULL;
	}
	for (int i = 0; i < argc; i++)
		json_array_append_new(av, json_string(argv[i]));
	qn_now_rfc3339(now);
	json_object_set_new(m->root, "manifest_version", json_integer(1));
	json_object_set_new(m->root, "tool", json_string(tool));
	json_object_set_new(m->root, "version", json_string(version));
	json_object_set_new(m->root, "argv", av);
	json_object_set_new(m->root, "started", json_string(now));
	json_object_set(m->root, "inputs", m->inputs);
	json_object_set(m->root, "outputs", m->outputs);
	json_object_set(m->root, "counters", m->counters);
	return m;
}

void qn_manifest_free(struct qn_manifest *m)
{
	if (!m)
		return;
	json_decref(m->inputs);
	json_decref(m->outputs);
	json_decref(m->counters);
	json_decref(m->root);
	free(m);
}

static int add_file(json_t *arr, const char *path, uint64_t size, const char *sha)
{
	json_t *o = json_pack("{s:s,s:I}", "path", path, "size", (json_int_t)size);

	if (!o)
		return -1;
	json_object_set_new(o, "sha256", sha ? json_string(sha) : json_null());
	return json_array_append_new(arr, o);
}

int qn_manifest_input(struct qn_manifest *m, const char *path, uint64_t size,
		      const char *sha256)
{
	return add_file(m->inputs, path, size, sha256);
}

int qn_manifest_output(struct qn_manifest *m, const char *path, uint64_t size,
		       const char *sha256)
{
	return add_file(m->outputs, path, size, sha256);
}

void qn_manifest_count(struct qn_manifest *m, const char *name, int64_t value)
{
	json_object_set_new(m->counters, name, json_integer((json_int_t)value));
}

void qn_manifest_set(struct qn_manifest *m, const char *key, json_t *v)
{
	json_object_set_new(m->root, key, v);
}

int qn_manifest_write(struct qn_manifest *m, const char *path, struct qn_err *e)
{
	char now[32];
	char *s;
	int rc;

	qn_now_rfc3339(now);
	json_object_set_new(m->root, "finished", json_string(now));
	s = json_dumps(m->root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		return qn_errf(e, "cannot write '%s': out of memory", path);
	size_t n = strlen(s);
	s[n] = '\n';
	rc = qn_write_file_atomic(path, s, n + 1, e);
	free(s);
	return rc;
}

char *qn_manifest_path_for(const char *output)
{
	struct stat st;
	size_t n = strlen(output) + sizeof ".manifest.json";

	/* -o /dev/null or a FIFO: no "/dev/null.manifest.json" beside it. */
	if (stat(output, &st) == 0 && !S_ISREG(st.st_mode))
		return NULL;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s.manifest.json", output);
	return p;
}
