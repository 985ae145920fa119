/* manifests.c - see manifests.h. */
#include "manifests.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"

int am_json_parse(const char *text, size_t n, const char *name, json_t **out, struct qn_err *e)
{
	json_error_t je;

	*out = NULL;
	if (n > AM_FILE_MAX)
		return qn_errf(e, "'%s': larger than %u bytes", name, AM_FILE_MAX);
	/* No duplicate keys: a manifest that says two things says nothing. */
	json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return qn_errf(e, "%s:%d:%d: %s", name, je.line, je.column, je.text);
	*out = root;
	return 0;
}

int am_json_load(const char *path, json_t **out, struct qn_err *e)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;

	*out = NULL;
	if (!(f = fopen(path, "rb")))
		return qn_errno(e, errno, "cannot open '%s'", path);
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return qn_errf(e, "cannot read '%s': Is a directory", path);
	}
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)AM_FILE_MAX) {
		fclose(f);
		return qn_errf(e, "'%s': larger than %u bytes", path, AM_FILE_MAX);
	}
	/* Read up to one byte past the limit, so a FIFO cannot grow us past it. */
	if (!(buf = malloc((size_t)AM_FILE_MAX + 1))) {
		fclose(f);
		return qn_errf(e, "cannot read '%s': out of memory", path);
	}
	n = fread(buf, 1, (size_t)AM_FILE_MAX + 1, f);
	if (ferror(f)) {
		int err = errno;
		free(buf);
		fclose(f);
		return qn_errno(e, err, "cannot read '%s'", path);
	}
	fclose(f);
	int rc = am_json_parse(buf, n, path, out, e);
	free(buf);
	return rc;
}

static int is_string(const json_t *o, const char *k)
{
	return json_is_string(json_object_get(o, k));
}

enum am_kind am_detect(const json_t *root)
{
	const json_t *v;

	if (!json_is_object(root))
		return AM_UNKNOWN;
	v = json_object_get(root, "format");
	if (json_is_string(v) && !strcmp(json_string_value(v), "quern-token-shards"))
		return AM_SHARDS;
	if (json_is_object(json_object_get(root, "findings")) &&
	    json_is_number(json_object_get(root, "documents")))
		return AM_SCAN_SUMMARY;
	if (is_string(root, "tool") && json_is_array(json_object_get(root, "inputs")) &&
	    json_is_array(json_object_get(root, "outputs")))
		return AM_MANIFEST;
	if (json_is_array(json_object_get(root, "steps")) &&
	    json_is_integer(json_object_get(root, "documents_in")) &&
	    json_is_integer(json_object_get(root, "documents_out")))
		return AM_CLEAN_STATS;
	if (json_is_object(json_object_get(root, "results")) &&
	    (json_is_object(json_object_get(root, "versions")) ||
	     json_is_object(json_object_get(root, "configs")) ||
	     json_is_object(json_object_get(root, "n-shot"))))
		return AM_EVAL;
	if (json_is_object(json_object_get(root, "train")) &&
	    json_is_object(json_object_get(root, "heldout")) &&
	    json_is_number(json_object_get(json_object_get(root, "train"), "exact_match")))
		return AM_MEMORIZATION;
	if (json_is_array(json_object_get(root, "canaries")) &&
	    json_is_array(json_object_get(root, "by_reps")))
		return AM_CANARY;
	if (json_is_integer(json_object_get(root, "n_layer")) &&
	    json_is_integer(json_object_get(root, "n_embd")) &&
	    json_is_integer(json_object_get(root, "vocab_size")))
		return AM_MODEL_CONFIG;
	if (is_string(root, "peft_type"))
		return AM_ADAPTER;
	return AM_UNKNOWN;
}

const char *am_kind_name(enum am_kind k)
{
	switch (k) {
	case AM_MANIFEST:
		return "run manifest";
	case AM_CLEAN_STATS:
		return "quern-clean statistics";
	case AM_SCAN_SUMMARY:
		return "scan summary";
	case AM_SHARDS:
		return "token-shard manifest";
	case AM_EVAL:
		return "evaluation results";
	case AM_MEMORIZATION:
		return "memorization results";
	case AM_CANARY:
		return "canary exposure results";
	case AM_MODEL_CONFIG:
		return "model configuration";
	case AM_ADAPTER:
		return "adapter configuration";
	default:
		return "unknown";
	}
}

int am_is_sha256(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[64] == 0;
}

/* Reads arr (inputs or outputs) into *files; what names the array. */
static int read_files(json_t *arr, const char *what, const char *name, struct am_file **files,
		      size_t *nfiles, size_t *budget, struct qn_err *e)
{
	size_t n = json_array_size(arr), i;

	*files = NULL;
	*nfiles = 0;
	if (n > *budget)
		return qn_errf(e, "'%s': more than %u inputs and outputs", name, AM_ENTRIES_MAX);
	*budget -= n;
	if (n == 0)
		return 0;
	if (!(*files = calloc(n, sizeof **files)))
		return qn_errf(e, "'%s': out of memory", name);
	for (i = 0; i < n; i++) {
		json_t *o = json_array_get(arr, i), *p, *s, *h;
		struct am_file *f = &(*files)[i];

		if (!json_is_object(o))
			return qn_errf(e, "'%s': %s[%zu] is not an object", name, what, i);
		p = json_object_get(o, "path");
		s = json_object_get(o, "size");
		h = json_object_get(o, "sha256");
		if (!json_is_string(p) || !json_string_length(p))
			return qn_errf(e, "'%s': %s[%zu] has no \"path\" string", name, what, i);
		if (json_string_length(p) >= AM_PATH_MAX ||
		    strlen(json_string_value(p)) != json_string_length(p))
			return qn_errf(e, "'%s': %s[%zu]: the path is too long or holds a NUL",
				       name, what, i);
		if (s && !json_is_null(s) && (!json_is_integer(s) || json_integer_value(s) < 0))
			return qn_errf(e, "'%s': %s[%zu]: \"size\" is not a byte count", name, what,
				       i);
		if (h && !json_is_null(h) &&
		    (!json_is_string(h) || !am_is_sha256(json_string_value(h))))
			return qn_errf(e, "'%s': %s[%zu]: \"sha256\" is not 64 hex digits", name,
				       what, i);
		if (!(f->path = strdup(json_string_value(p))))
			return qn_errf(e, "'%s': out of memory", name);
		f->size = json_is_integer(s) ? (int64_t)json_integer_value(s) : -1;
		if (json_is_string(h)) {
			for (int k = 0; k < 64; k++) {
				char c = json_string_value(h)[k];
				f->sha256[k] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
			}
			f->sha256[64] = 0;
		}
		(*nfiles)++;
	}
	return 0;
}

static const char *opt_string(json_t *root, const char *k)
{
	json_t *v = json_object_get(root, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int am_manifest_from_json(struct am_manifest *m, json_t *root, const char *name, struct qn_err *e)
{
	size_t budget = AM_ENTRIES_MAX;
	json_t *argv;

	memset(m, 0, sizeof *m);
	if (!json_is_object(root))
		return qn_errf(e, "'%s': not a quern manifest (not a JSON object)", name);
	m->root = json_incref(root);
	if (!(m->tool = opt_string(root, "tool")))
		return qn_errf(e, "'%s': not a quern manifest (no \"tool\" string)", name);
	if (!json_is_array(json_object_get(root, "inputs")) ||
	    !json_is_array(json_object_get(root, "outputs")))
		return qn_errf(
		    e, "'%s': not a quern manifest (no \"inputs\" and \"outputs\" arrays)", name);
	if (read_files(json_object_get(root, "inputs"), "inputs", name, &m->in, &m->nin, &budget,
		       e) < 0 ||
	    read_files(json_object_get(root, "outputs"), "outputs", name, &m->out, &m->nout,
		       &budget, e) < 0)
		return -1;
	m->version = opt_string(root, "version");
	m->started = opt_string(root, "started");
	m->finished = opt_string(root, "finished");
	/* Tools with commands record them as argv[1]. */
	argv = json_object_get(root, "argv");
	if (json_is_array(argv) && json_array_size(argv) > 1 &&
	    json_is_string(json_array_get(argv, 1))) {
		const char *c = json_string_value(json_array_get(argv, 1));
		if ((!strcmp(m->tool, "quern-tokenize") || !strcmp(m->tool, "quern-train") ||
		     !strcmp(m->tool, "quern-audit")) &&
		    c[0] && c[0] != '-' && strlen(c) < 64)
			m->command = c;
	}
	return 0;
}

int am_manifest_parse(struct am_manifest *m, const char *text, size_t n, const char *name,
		      struct qn_err *e)
{
	json_t *root;

	memset(m, 0, sizeof *m);
	if (am_json_parse(text, n, name, &root, e) < 0)
		return -1;
	int rc = am_manifest_from_json(m, root, name, e);
	json_decref(root);
	return rc;
}

int am_manifest_load(struct am_manifest *m, const char *path, struct qn_err *e)
{
	json_t *root;

	memset(m, 0, sizeof *m);
	if (am_json_load(path, &root, e) < 0)
		return -1;
	int rc = am_manifest_from_json(m, root, path, e);
	json_decref(root);
	return rc;
}

static void free_files(struct am_file *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		free(f[i].path);
	free(f);
}

void am_manifest_release(struct am_manifest *m)
{
	if (!m)
		return;
	/* A failed read_files leaves its last entry's path unset: nfiles covers all. */
	free_files(m->in, m->nin);
	free_files(m->out, m->nout);
	json_decref(m->root);
	memset(m, 0, sizeof *m);
}

int64_t am_counter(const struct am_manifest *m, const char *name)
{
	json_t *v = json_object_get(json_object_get(m->root, "counters"), name);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_path(char ***v, size_t *n, char *p)
{
	char **nv;

	if (!p || !(nv = realloc(*v, (*n + 1) * sizeof **v))) {
		free(p);
		return -1;
	}
	*v = nv;
	nv[(*n)++] = p;
	return 0;
}

static int find_in(const char *dir, int depth, char ***paths, size_t *n, struct qn_err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0;
	int rc = 0;

	if (!d)
		return qn_errno(e, errno, "cannot open '%s'", dir);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && push_path(&names, &nn, strdup(de->d_name)) < 0) {
			rc = qn_errf(e, "cannot read '%s': out of memory", dir);
			break;
		}
	closedir(d);
	if (nn)
		qsort(names, nn, sizeof *names, cmp_name);
	for (size_t i = 0; i < nn; i++) {
		struct stat st;
		size_t l = strlen(dir) + strlen(names[i]) + 2, nl = strlen(names[i]);
		char *p = malloc(l);

		if (!p) {
			rc = qn_errf(e, "cannot read '%s': out of memory", dir);
			break;
		}
		snprintf(p, l, "%s/%s", dir, names[i]);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (depth < 32 && find_in(p, depth + 1, paths, n, e) < 0)
				rc = -1;
			free(p);
		} else if (nl > 14 && !strcmp(names[i] + nl - 14, ".manifest.json") &&
			   stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			if (push_path(paths, n, p) < 0)
				rc = qn_errf(e, "cannot read '%s': out of memory", dir);
		} else {
			free(p);
		}
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	return rc;
}

int am_find_manifests(const char *dir, char ***paths, size_t *n, struct qn_err *e)
{
	return find_in(dir, 0, paths, n, e);
}
