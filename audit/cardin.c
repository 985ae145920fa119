/* cardin.c - see cardin.h. */
#include "cardin.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "err.h"
#include "rd.h"
#include "safetensors.h"
#include "wr.h"

#define DOMAINS_MAX 1000000 /* distinct hosts kept; the rest count as "other" */

static int push(struct cd_jsons *j, json_t *v, const char *name)
{
	json_t **nv = realloc(j->v, (j->n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	j->v = nv;
	const char **nn = realloc(j->name, (j->n + 1) * sizeof *nn);
	if (!nn)
		return -1;
	j->name = nn;
	j->v[j->n] = json_incref(v);
	j->name[j->n++] = name;
	return 0;
}

static void jsons_release(struct cd_jsons *j)
{
	for (size_t i = 0; i < j->n; i++)
		json_decref(j->v[i]);
	free(j->v);
	free(j->name);
}

static const char *own(struct cd_inputs *in, char *s)
{
	char **nv = s ? realloc(in->owned, (in->nowned + 1) * sizeof *nv) : NULL;
	if (!nv) {
		free(s);
		return NULL;
	}
	in->owned = nv;
	return in->owned[in->nowned++] = s;
}

static void set_json(json_t **slot, json_t *v)
{
	json_decref(*slot);
	*slot = json_incref(v);
}

int64_t cd_int(const json_t *o, const char *k, int64_t def)
{
	json_t *v = json_object_get(o, k);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v) && isfinite(json_real_value(v)))
		return (int64_t)json_real_value(v);
	return def;
}

/* ---- metrics JSON Lines ---- */

static double num_or_nan(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int add_metrics(struct cd_inputs *in, const char *path, struct qn_rd *r)
{
	struct qn_buf line;
	struct qn_err e;
	uint64_t lineno = 0;
	int got, rc = 0;

	qn_buf_init(&line, CD_LINE_MAX);
	/* A second metrics file replaces the first: one training curve a card. */
	in->npts = 0;
	while ((got = qn_rd_line(r, &line, CD_LINE_MAX, &e)) != 0) {
		lineno++;
		if (got == -1 || got == QN_RD_TOOLONG) {
			qn_error("%s:%llu: %s", path, (unsigned long long)lineno,
				 got == -1 ? e.msg : "line too long");
			rc = -1;
			break;
		}
		if (!line.len)
			continue;
		json_error_t je;
		json_t *o = json_loadb(line.data, line.len, 0, &je);
		if (!json_is_object(o) || !json_is_number(json_object_get(o, "step"))) {
			if (o)
				qn_error("%s:%llu: not a metrics line (an object with \"step\")",
					 path, (unsigned long long)lineno);
			else
				qn_error("%s:%llu:%d: %s", path, (unsigned long long)lineno,
					 je.column, je.text);
			json_decref(o);
			rc = -1;
			break;
		}
		if (in->npts < CD_METRICS_MAX) {
			struct cd_point *nv = realloc(in->pts, (in->npts + 1) * sizeof *nv);
			if (!nv) {
				json_decref(o);
				qn_error("out of memory");
				rc = -1;
				break;
			}
			in->pts = nv;
			nv[in->npts++] = (struct cd_point){
			    num_or_nan(o, "step"), num_or_nan(o, "loss"), num_or_nan(o, "val_loss"),
			    num_or_nan(o, "tokens"), num_or_nan(o, "lr")};
		}
		json_decref(o);
	}
	qn_buf_release(&line);
	return rc;
}

/* ---- documents and their domains ---- */

/* The host of an http(s) URL, lower-cased, without "www." and a port; 0 if none. */
static size_t url_host(const char *u, size_t n, char *out, size_t size)
{
	const char *p = memmem(u, n, "://", 3), *end = u + n;
	if (!p)
		return 0;
	p += 3;
	const char *h = p, *q = p;
	while (q < end && *q != '/' && *q != '?' && *q != '#')
		q++;
	for (const char *a = h; a < q; a++)
		if (*a == '@')
			h = a + 1;
	const char *colon = memchr(h, ':', (size_t)(q - h));
	if (colon && *h != '[')
		q = colon;
	if (q - h >= 4 && !strncasecmp(h, "www.", 4))
		h += 4;
	size_t k = 0;
	for (; h < q && k + 1 < size; h++)
		out[k++] = (char)tolower((unsigned char)*h);
	out[k] = 0;
	return k;
}

static int add_domain(struct cd_inputs *in, const char *host, uint64_t bytes)
{
	for (size_t i = 0; i < in->ndom; i++)
		if (!strcmp(in->dom[i].name, host)) {
			in->dom[i].docs++;
			in->dom[i].bytes += bytes;
			return 0;
		}
	if (in->ndom >= DOMAINS_MAX)
		host = "(other domains)";
	struct cd_domain *nv = realloc(in->dom, (in->ndom + 1) * sizeof *nv);
	if (!nv)
		return -1;
	in->dom = nv;
	if (!(nv[in->ndom].name = strdup(host)))
		return -1;
	nv[in->ndom].docs = 1;
	nv[in->ndom++].bytes = bytes;
	return 0;
}

static int docs_from(struct cd_inputs *in, const char *path, struct qn_rd *r, uint64_t *bad)
{
	struct qn_buf line;
	struct qn_err e;
	int got, rc = 0;

	qn_buf_init(&line, (size_t)1 << 30);
	in->doc_files++;
	while ((got = qn_rd_line(r, &line, (size_t)1 << 30, &e)) != 0) {
		if (got == -1) {
			qn_error("%s", e.msg);
			rc = -1;
			break;
		}
		if (got == QN_RD_TOOLONG || !line.len) {
			*bad += got == QN_RD_TOOLONG;
			continue;
		}
		json_t *o = json_loadb(line.data, line.len, 0, NULL),
		       *t = json_object_get(o, "text");
		json_t *u = json_object_get(json_object_get(o, "metadata"), "url");
		char host[256];
		if (!json_is_string(t)) {
			(*bad)++;
		} else {
			uint64_t b = json_string_length(t);
			in->doc_docs++;
			in->doc_bytes += b;
			if (json_is_string(u) &&
			    url_host(json_string_value(u), json_string_length(u), host,
				     sizeof host)) {
				if (add_domain(in, host, b) < 0) {
					qn_error("out of memory");
					rc = -1;
				}
			} else {
				in->doc_no_url++;
			}
		}
		json_decref(o);
		if (rc)
			break;
	}
	qn_buf_release(&line);
	return rc;
}

int cd_add_docs(struct cd_inputs *in, const char *path, uint64_t *bad)
{
	struct qn_err e;
	struct qn_rd *r = qn_rd_open(path, 0, &e);
	if (!r) {
		qn_error("%s", e.msg);
		return -1;
	}
	int rc = docs_from(in, path, r, bad);
	qn_rd_close(r);
	return rc;
}

/* ---- files and folders ---- */

static int add_json(struct cd_inputs *in, const char *path, json_t *root)
{
	struct qn_err e;
	switch (am_detect(root)) {
	case AM_MANIFEST: {
		struct am_manifest *nv = realloc(in->runs, (in->nruns + 1) * sizeof *nv);
		if (!nv)
			return -1;
		in->runs = nv;
		if (am_manifest_from_json(&nv[in->nruns], root, path, &e) < 0) {
			qn_error("%s", e.msg);
			am_manifest_release(&nv[in->nruns]);
			return -2;
		}
		const char **nn = realloc(in->run_name, (in->nruns + 1) * sizeof *nn);
		if (!nn)
			return -1;
		in->run_name = nn;
		nn[in->nruns++] = path;
		json_t *st = json_object_get(root, "stats");
		if (am_detect(st) == AM_CLEAN_STATS) {
			for (size_t i = 0; i < in->stats.n; i++)
				if (json_equal(in->stats.v[i], st))
					return 0;
			return push(&in->stats, st, path);
		}
		return 0;
	}
	case AM_CLEAN_STATS:
		for (size_t i = 0; i < in->stats.n; i++)
			if (json_equal(in->stats.v[i], root))
				return 0;
		return push(&in->stats, root, path);
	case AM_SCAN_SUMMARY:
		return push(&in->scans, root, path);
	case AM_SHARDS:
		return push(&in->shards, root, path);
	case AM_EVAL:
		return push(&in->evals, root, path);
	case AM_MEMORIZATION:
		return push(&in->memos, root, path);
	case AM_CANARY:
		return push(&in->canaries, root, path);
	case AM_MODEL_CONFIG:
		set_json(&in->config, root);
		in->config_name = path;
		return 0;
	case AM_ADAPTER:
		set_json(&in->adapter, root);
		return 0;
	default:
		qn_error(
		    "'%s': not a model config, metrics, run manifest, clean statistics, shard "
		    "manifest, scan summary, eval, memorization or canary results, or documents",
		    path);
		return -2;
	}
}

static int add_state(struct cd_inputs *in, const char *path)
{
	struct qn_err e;
	struct qn_st *st = qn_st_open(path, &e);
	if (!st) {
		qn_error("%s", e.msg);
		return -1;
	}
	const char *fmt = qn_st_meta(st, "format"), *args = qn_st_meta(st, "args");
	int rc = 0;
	if (!fmt || strncmp(fmt, "quern-train-state", 17) || !args) {
		qn_error("'%s': not a quern-train training state", path);
		rc = -1;
	} else {
		json_error_t je;
		json_t *a = json_loads(args, 0, &je), *o = json_object();
		if (!json_is_object(a)) {
			qn_error("'%s': its \"args\" are not a JSON object", path);
			rc = -1;
		} else {
			static const char *const keys[] = {"step", "tokens", "epoch",
							   "best_val_loss", "best_step"};
			json_object_set(o, "args", a);
			for (size_t i = 0; i < 5; i++)
				if (qn_st_meta(st, keys[i]))
					json_object_set_new(o, keys[i],
							    json_string(qn_st_meta(st, keys[i])));
			set_json(&in->state_args, o);
		}
		json_decref(a);
		json_decref(o);
	}
	qn_st_close(st);
	return rc;
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* A checkpoint folder: config, metrics, run manifest, adapter, newest training state. */
static int add_checkpoint(struct cd_inputs *in, const char *dir)
{
	static const char *const files[] = {"config.json", "adapter_config.json",
					    "run.manifest.json", "metrics.jsonl",
					    "training_state.safetensors"};
	int rc = 0, have_state = 0;
	for (size_t i = 0; i < 5; i++) {
		const char *p = own(in, join(dir, files[i]));
		if (!p)
			return -1;
		if (exists(p)) {
			have_state |= i == 4;
			rc |= cd_add(in, p);
		}
	}
	if (have_state)
		return rc;
	DIR *d = opendir(dir);
	struct dirent *de;
	long best = -1;
	while (d && (de = readdir(d))) {
		char *end;
		if (strncmp(de->d_name, "checkpoint-", 11))
			continue;
		long s = strtol(de->d_name + 11, &end, 10);
		if (!*end && s > best)
			best = s;
	}
	if (d)
		closedir(d);
	if (best >= 0) {
		char sub[64];
		snprintf(sub, sizeof sub, "checkpoint-%ld/training_state.safetensors", best);
		const char *p = own(in, join(dir, sub));
		if (p && exists(p))
			rc |= add_state(in, p);
	}
	return rc;
}

int cd_add(struct cd_inputs *in, const char *path)
{
	struct stat st;
	struct qn_err e;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		const char *cfg = own(in, join(path, "config.json"));
		if (!cfg)
			return -1;
		if (exists(cfg))
			return add_checkpoint(in, path);
		char **found = NULL;
		size_t n = 0;
		int rc = 0;
		if (am_find_manifests(path, &found, &n, &e) < 0) {
			qn_error("%s", e.msg);
			rc = -1;
		}
		if (!n && !rc)
			qn_warn("no manifests in '%s'", path);
		for (size_t k = 0; k < n; k++)
			if (own(in, found[k]) && cd_add(in, found[k]) < 0)
				rc = -1;
		free(found);
		return rc;
	}
	/* A safetensors file: 8 bytes of header length, then '{'. */
	FILE *f = fopen(path, "rb");
	unsigned char head[9];
	if (f && fread(head, 1, 9, f) == 9 && head[8] == '{' && head[7] == 0 && head[6] == 0) {
		fclose(f);
		return add_state(in, path);
	}
	if (f)
		fclose(f);
	/* JSON Lines (metrics or documents) by their first line; else one JSON value. */
	struct qn_rd *r = qn_rd_open(path, 0, &e);
	if (!r) {
		qn_error("%s", e.msg);
		return -1;
	}
	struct qn_buf first;
	qn_buf_init(&first, CD_LINE_MAX);
	int got;
	while ((got = qn_rd_line(r, &first, CD_LINE_MAX, &e)) == 1 && !first.len)
		;
	json_t *o = got == 1 ? json_loadb(first.data, first.len, 0, NULL) : NULL;
	qn_buf_release(&first);
	qn_rd_close(r);
	int kind = 0; /* 1 metrics, 2 documents */
	if (json_is_object(o) && json_is_number(json_object_get(o, "step")) &&
	    json_is_number(json_object_get(o, "loss")))
		kind = 1;
	else if (json_is_object(o) && json_is_string(json_object_get(o, "text")))
		kind = 2;
	json_decref(o);
	if (kind) {
		r = qn_rd_open(path, 0, &e);
		if (!r) {
			qn_error("%s", e.msg);
			return -1;
		}
		uint64_t bad = 0;
		int rc = kind == 1 ? add_metrics(in, path, r) : docs_from(in, path, r, &bad);
		qn_rd_close(r);
		if (bad)
			qn_warn("'%s': %llu lines are not documents", path,
				(unsigned long long)bad);
		return rc;
	}
	json_t *root;
	if (am_json_load(path, &root, &e) < 0) {
		qn_error("%s", e.msg);
		return -1;
	}
	int rc = add_json(in, path, root);
	json_decref(root);
	if (rc == -1)
		qn_error("'%s': out of memory", path);
	return rc < 0 ? -1 : 0;
}

/* path as recorded, else beside the manifest, else in the manifest's parent folder. */
static char *resolve(const char *rec, const char *manifest)
{
	if (exists(rec))
		return strdup(rec);
	if (rec[0] == '/' || !manifest)
		return NULL;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", manifest);
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			return NULL;
		*slash = 0;
		char *p = join(dir, rec);
		if (p && exists(p))
			return p;
		free(p);
	}
	return NULL;
}

size_t cd_manifest_docs(struct cd_inputs *in, const char ***paths)
{
	/* What quern-tokenize encoded; else what quern-clean kept; else quern-ingest's output. */
	static const char *const order[] = {"quern-tokenize", "quern-clean", "quern-ingest"};
	size_t n = 0;
	*paths = NULL;
	for (size_t t = 0; t < 3 && !n; t++)
		for (size_t i = 0; i < in->nruns; i++) {
			const struct am_manifest *m = &in->runs[i];
			if (strcmp(m->tool, order[t]) ||
			    (t == 0 && m->command && strcmp(m->command, "encode")))
				continue;
			const struct am_file *f = t == 0 ? m->in : m->out;
			size_t nf = t == 0 ? m->nin : t == 1 ? (m->nout ? 1 : 0) : m->nout;
			for (size_t k = 0; k < nf; k++) {
				char *p = resolve(f[k].path, in->run_name[i]);
				if (!p)
					continue;
				int dup = 0;
				for (size_t j = 0; j < n; j++)
					dup |= !strcmp((*paths)[j], p);
				const char **nv =
				    dup ? NULL : realloc(*paths, (n + 1) * sizeof *nv);
				if (!nv) {
					free(p);
					continue;
				}
				*paths = nv;
				nv[n++] = own(in, p);
			}
		}
	return n;
}

void cd_inputs_release(struct cd_inputs *in)
{
	json_decref(in->config);
	json_decref(in->adapter);
	json_decref(in->state_args);
	free(in->pts);
	for (size_t i = 0; i < in->nruns; i++)
		am_manifest_release(&in->runs[i]);
	free(in->runs);
	free(in->run_name);
	jsons_release(&in->stats);
	jsons_release(&in->shards);
	jsons_release(&in->scans);
	jsons_release(&in->evals);
	jsons_release(&in->memos);
	jsons_release(&in->canaries);
	for (size_t i = 0; i < in->ndom; i++)
		free(in->dom[i].name);
	free(in->dom);
	for (size_t i = 0; i < in->nowned; i++)
		free(in->owned[i]);
	free(in->owned);
	memset(in, 0, sizeof *in);
}

int64_t cd_counter(const struct cd_inputs *in, const char *tool, const char *name)
{
	int64_t s = 0;
	for (size_t i = 0; i < in->nruns; i++)
		if (!strcmp(in->runs[i].tool, tool))
			s += am_counter(&in->runs[i], name);
	return s;
}

size_t cd_runs_of(const struct cd_inputs *in, const char *tool)
{
	size_t n = 0;
	for (size_t i = 0; i < in->nruns; i++)
		n += !strcmp(in->runs[i].tool, tool);
	return n;
}

int64_t cd_gpt2_params(const json_t *c)
{
	int64_t L = cd_int(c, "n_layer", 0), C = cd_int(c, "n_embd", 0),
		V = cd_int(c, "vocab_size", 0), P = cd_int(c, "n_positions", 0),
		F = cd_int(c, "n_inner", 0);
	if (L <= 0 || C <= 0 || V <= 0 || P <= 0 || L > 10000 || C > 1000000 || V > 100000000 ||
	    P > 100000000 || F < 0 || F > 100000000)
		return 0;
	if (!F)
		F = 4 * C;
	/* wte, wpe; a block: ln_1, c_attn, c_proj, ln_2, c_fc, c_proj; ln_f. */
	int64_t block =
	    2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + (C * F + F) + (F * C + C);
	return V * C + P * C + L * block + 2 * C;
}

/* ---- Markdown ---- */

void cd_md_init(struct cd_md *m, const char *owner)
{
	qn_buf_init(&m->b, QN_BUF_UNLIMITED);
	m->oom = 0;
	m->owner = owner;
}

void cd_md(struct cd_md *m, const char *fmt, ...)
{
	va_list ap;
	char small[1024], *p = small;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof small) {
		if (!(p = malloc((size_t)n + 1))) {
			m->oom = 1;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	if (qn_buf_add(&m->b, p, (size_t)n) < 0)
		m->oom = 1;
	if (p != small)
		free(p);
}

void cd_md_text(struct cd_md *m, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (strchr("|\\`*_<>[]#", c))
			cd_md(m, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			cd_md(m, " ");
		else
			cd_md(m, "%c", c);
	}
}

void cd_md_prompt(struct cd_md *m, const char *question)
{
	cd_md(m, "> **To be answered by the %s:** %s\n\n", m->owner, question);
}

static int write_atomic(const char *path, const char *data, size_t n)
{
	struct qn_err e;
	struct qn_wr *w = qn_wr_open(path, QN_WR_PLAIN, &e);
	if (!w || qn_wr_write(w, data, n, &e) < 0) {
		if (w)
			qn_wr_abort(w);
		qn_error("%s", e.msg);
		return -1;
	}
	if (qn_wr_commit(w, NULL, &e) < 0) {
		qn_error("%s", e.msg);
		return -1;
	}
	return 0;
}

int cd_md_write(struct cd_md *m, const char *path)
{
	if (m->oom) {
		qn_error("out of memory");
		return -1;
	}
	return write_atomic(path, m->b.data ? m->b.data : "", m->b.len);
}

int cd_json_write(json_t *v, const char *path)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s) {
		qn_error("out of memory");
		return -1;
	}
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (!t) {
		free(s);
		qn_error("out of memory");
		return -1;
	}
	t[n] = '\n';
	int rc = write_atomic(path, t, n + 1);
	free(t);
	return rc;
}
