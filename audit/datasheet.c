/*
 * datasheet.c - quern-audit datasheet: a Markdown datasheet in the sections
 * of Gebru et al., "Datasheets for Datasets" (Motivation, Composition,
 * Collection Process, Preprocessing/Cleaning/Labeling, Uses, Distribution,
 * Maintenance), filled from what the pipeline recorded: run manifests,
 * quern-clean statistics, quern-audit scan summaries and token-shard
 * manifests, each recognised by its content. What only a person can say
 * is left as a marked prompt, so a reviewer sees at once what is missing.
 *
 * Every figure is a sum over the records given; a quern-clean statistics
 * object that also sits in a clean manifest ("stats") counts once.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "audit.h"
#include "buf.h"
#include "cli.h"
#include "doc.h"
#include "err.h"
#include "hash.h"
#include "manifests.h"
#include "wr.h"

#define LIST_MAX 50 /* rows of a file table before "... and N more" */

static const char usage_text[] =
    "usage: quern-audit datasheet [options] FILE|DIR ...\n"
    "\n"
    "Write a Markdown datasheet (Datasheets for Datasets: motivation,\n"
    "composition, collection, preprocessing, uses, distribution, maintenance)\n"
    "from run manifests, quern-clean --stats files, quern-audit scan summaries\n"
    "and token-shard manifests, each recognised by its content. Folders are\n"
    "searched for *.manifest.json. Questions only a person can answer are left\n"
    "as prompts marked \"To be answered by the dataset owner\".\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE     write here (atomically), not stdout\n"
    "      --name NAME       the dataset's name in the title (default: dataset)\n"
    "  -q, --quiet           no warnings\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 written, 1 an input could not be read or recognised (the\n"
    "datasheet is still written from the others) or a write failed, 2 usage\n"
    "error.\n";

/* ---- the inputs --------------------------------------------------------------- */

struct inputs {
	struct am_manifest *runs;
	size_t nruns;
	json_t **stats; /* clean statistics, distinct */
	size_t nstats;
	json_t **scans;
	size_t nscans;
	json_t **shards;
	size_t nshards;
	const char **scan_names;
};

static int push_json(json_t ***v, size_t *n, json_t *x)
{
	json_t **nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv)
		return -1;
	*v = nv;
	nv[(*n)++] = json_incref(x);
	return 0;
}

static int add_stats(struct inputs *in, json_t *s)
{
	for (size_t i = 0; i < in->nstats; i++)
		if (json_equal(in->stats[i], s))
			return 0;
	return push_json(&in->stats, &in->nstats, s);
}

/*
 * quern-tokenize encode records no outputs; its DIR/run.manifest.json
 * stands for the shard directory, whose manifest.json later runs read. It
 * is added as the run's output with its present SHA-256, so those runs
 * link to this one.
 */
static void implied_output(struct am_manifest *m, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
	struct am_file *f;
	struct qn_err e;
	uint64_t size;

	if (m->nout || strcmp(base, "run.manifest.json") || !(f = calloc(1, sizeof *f)))
		return;
	if (!(f->path = malloc(dl + sizeof "manifest.json"))) {
		free(f);
		return;
	}
	memcpy(f->path, path, dl);
	memcpy(f->path + dl, "manifest.json", sizeof "manifest.json");
	if (qn_sha256_file(f->path, f->sha256, &size, &e) < 0) {
		free(f->path);
		free(f);
		return;
	}
	f->size = (int64_t)size;
	m->out = f;
	m->nout = 1;
}

static int add_file(struct inputs *in, const char *path)
{
	struct qn_err e;
	json_t *root;
	int rc = 0;

	if (am_json_load(path, &root, &e) < 0) {
		qn_error("%s", e.msg);
		return -1;
	}
	switch (am_detect(root)) {
	case AM_MANIFEST: {
		struct am_manifest *nv = realloc(in->runs, (in->nruns + 1) * sizeof *nv);
		if (!nv) {
			rc = -1;
			break;
		}
		in->runs = nv;
		if (am_manifest_from_json(&nv[in->nruns], root, path, &e) < 0) {
			qn_error("%s", e.msg);
			am_manifest_release(&nv[in->nruns]);
			json_decref(root);
			return -1;
		}
		implied_output(&nv[in->nruns], path);
		json_t *st = json_object_get(root, "stats");
		if (am_detect(st) == AM_CLEAN_STATS && add_stats(in, st) < 0)
			rc = -1;
		in->nruns++;
		break;
	}
	case AM_CLEAN_STATS:
		rc = add_stats(in, root);
		break;
	case AM_SCAN_SUMMARY:
		rc = push_json(&in->scans, &in->nscans, root);
		break;
	case AM_SHARDS:
		rc = push_json(&in->shards, &in->nshards, root);
		break;
	default:
		qn_error("'%s': not a run manifest, quern-clean statistics, scan summary or "
			 "token-shard manifest",
			 path);
		json_decref(root);
		return -1;
	}
	if (rc < 0)
		qn_error("'%s': out of memory", path);
	json_decref(root);
	return rc;
}

static void inputs_release(struct inputs *in)
{
	for (size_t i = 0; i < in->nruns; i++)
		am_manifest_release(&in->runs[i]);
	free(in->runs);
	for (size_t i = 0; i < in->nstats; i++)
		json_decref(in->stats[i]);
	free(in->stats);
	for (size_t i = 0; i < in->nscans; i++)
		json_decref(in->scans[i]);
	free(in->scans);
	for (size_t i = 0; i < in->nshards; i++)
		json_decref(in->shards[i]);
	free(in->shards);
}

/* ---- reading the records ------------------------------------------------------------ */

static int64_t jint(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return 0;
}

static int is_tool(const struct am_manifest *m, const char *tool)
{
	return !strcmp(m->tool, tool);
}

static int64_t sum_counter(const struct inputs *in, const char *tool, const char *name)
{
	int64_t s = 0;
	for (size_t i = 0; i < in->nruns; i++)
		if (is_tool(&in->runs[i], tool))
			s += am_counter(&in->runs[i], name);
	return s;
}

static size_t count_tool(const struct inputs *in, const char *tool)
{
	size_t n = 0;
	for (size_t i = 0; i < in->nruns; i++)
		n += is_tool(&in->runs[i], tool);
	return n;
}

/* 1 when some run given wrote this file (same content, else same path). */
static int produced(const struct inputs *in, const struct am_file *f)
{
	for (size_t i = 0; i < in->nruns; i++)
		for (size_t k = 0; k < in->runs[i].nout; k++) {
			const struct am_file *o = &in->runs[i].out[k];
			if (f->sha256[0] && o->sha256[0] ? !strcmp(f->sha256, o->sha256)
							 : !strcmp(f->path, o->path))
				return 1;
		}
	return 0;
}

static int consumed(const struct inputs *in, const struct am_file *f)
{
	for (size_t i = 0; i < in->nruns; i++)
		for (size_t k = 0; k < in->runs[i].nin; k++) {
			const struct am_file *o = &in->runs[i].in[k];
			if (f->sha256[0] && o->sha256[0] ? !strcmp(f->sha256, o->sha256)
							 : !strcmp(f->path, o->path))
				return 1;
		}
	return 0;
}

/* A name/value tally, in first-seen order. */
struct tally {
	char **name;
	int64_t *v, *w;
	size_t n;
};

static int tally_add(struct tally *t, const char *name, int64_t v, int64_t w)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->name[i], name)) {
			t->v[i] += v;
			t->w[i] += w;
			return 0;
		}
	char **nn = realloc(t->name, (t->n + 1) * sizeof *nn);
	if (!nn)
		return -1;
	t->name = nn;
	int64_t *nv = realloc(t->v, (t->n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	t->v = nv;
	int64_t *nw = realloc(t->w, (t->n + 1) * sizeof *nw);
	if (!nw)
		return -1;
	t->w = nw;
	if (!(t->name[t->n] = strdup(name)))
		return -1;
	t->v[t->n] = v;
	t->w[t->n] = w;
	t->n++;
	return 0;
}

static void tally_release(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->name[i]);
	free(t->name);
	free(t->v);
	free(t->w);
	memset(t, 0, sizeof *t);
}

/* ---- Markdown ------------------------------------------------------------------------- */

struct md {
	struct qn_buf b;
	int oom;
};

static void md(struct md *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void md(struct md *m, const char *fmt, ...)
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

/* Text from a record, made safe inside a Markdown table cell or line. */
static void md_text(struct md *m, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '|' || c == '\\' || c == '`' || c == '*' || c == '_' || c == '<' ||
		    c == '[' || c == ']')
			md(m, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			md(m, " ");
		else
			md(m, "%c", c);
	}
}

static void prompt(struct md *m, const char *question)
{
	md(m, "> **To be answered by the dataset owner:** %s\n\n", question);
}

static void section(struct md *m, const char *title)
{
	md(m, "## %s\n\n", title);
}

/* ---- the sections ------------------------------------------------------------------ */

static void summary(struct md *m, const struct inputs *in, int64_t dups)
{
	md(m, "| figure | value |\n|---|---:|\n");
	if (count_tool(in, "quern-ingest")) {
		md(m, "| source files read | %lld |\n",
		   (long long)sum_counter(in, "quern-ingest", "inputs"));
		md(m, "| documents ingested | %lld |\n",
		   (long long)sum_counter(in, "quern-ingest", "documents"));
	}
	if (in->nstats) {
		int64_t di = 0, dout = 0, rej = 0;
		for (size_t i = 0; i < in->nstats; i++) {
			di += jint(in->stats[i], "documents_in");
			dout += jint(in->stats[i], "documents_out");
			rej += jint(in->stats[i], "documents_rejected");
		}
		md(m, "| documents into cleaning | %lld |\n", (long long)di);
		md(m, "| documents kept by cleaning | %lld |\n", (long long)dout);
		md(m, "| documents removed by cleaning | %lld |\n", (long long)rej);
		md(m, "| duplicates removed | %lld |\n", (long long)dups);
	}
	if (count_tool(in, "quern-tokenize")) {
		md(m, "| documents tokenized (train / validation) | %lld / %lld |\n",
		   (long long)sum_counter(in, "quern-tokenize", "documents_train"),
		   (long long)sum_counter(in, "quern-tokenize", "documents_val"));
		md(m, "| tokens | %lld |\n",
		   (long long)sum_counter(in, "quern-tokenize", "tokens"));
	}
	if (in->nscans) {
		int64_t docs = 0, rep = 0, sup = 0;
		for (size_t i = 0; i < in->nscans; i++) {
			json_t *f = json_object_get(in->scans[i], "findings");
			docs += jint(in->scans[i], "documents");
			rep += jint(f, "reported");
			sup += jint(f, "suppressed");
		}
		md(m, "| documents scanned for PII and secrets | %lld |\n", (long long)docs);
		md(m, "| findings reported (suppressed) | %lld (%lld) |\n", (long long)rep,
		   (long long)sup);
	}
	md(m, "\n");
}

static void motivation(struct md *m)
{
	section(m, "Motivation");
	prompt(m, "For what purpose was the dataset created? Was there a specific task in mind, "
		  "or a gap that needed to be filled?");
	prompt(m, "Who created the dataset (which team, research group) and on behalf of which "
		  "entity (company, institution, organization)?");
	prompt(m, "Who funded the creation of the dataset? If there is an associated grant, "
		  "give the grantor's name and the grant's name and number.");
	prompt(m, "Any other comments?");
}

static void sources(struct md *m, const struct inputs *in)
{
	size_t shown = 0, more = 0;
	int64_t bytes = 0;

	md(m, "### Sources\n\n");
	for (size_t i = 0; i < in->nruns; i++)
		for (size_t k = 0; k < in->runs[i].nin; k++) {
			const struct am_file *f = &in->runs[i].in[k];
			if (produced(in, f))
				continue;
			if (!shown && !more)
				md(m, "The files the earliest stages read (no run given here wrote "
				      "them), with their SHA-256 at the time:\n\n"
				      "| file | read by | bytes | sha256 |\n|---|---|---:|---|\n");
			bytes += f->size > 0 ? f->size : 0;
			if (shown >= LIST_MAX) {
				more++;
				continue;
			}
			shown++;
			md(m, "| ");
			md_text(m, f->path);
			md(m, " | %s | %lld | %s |\n", in->runs[i].tool, (long long)f->size,
			   f->sha256[0] ? f->sha256 : "-");
		}
	if (more)
		md(m, "| ... and %zu more | | | |\n", more);
	if (shown)
		md(m, "\n%zu source files, %lld bytes.\n\n", shown + more, (long long)bytes);
	else
		md(m, "No source files are recorded in the manifests given.\n\n");
}

static void languages(struct md *m, const struct inputs *in)
{
	struct tally t = {0};
	int64_t total = 0;

	for (size_t i = 0; i < in->nstats; i++) {
		json_t *steps = json_object_get(in->stats[i], "steps"), *st;
		size_t k;
		json_array_foreach(steps, k, st)
		{
			const char *key;
			json_t *v;
			json_object_foreach(json_object_get(st, "languages"), key, v)
			{
				tally_add(&t, key, jint(v, "documents"), jint(v, "bytes"));
				total += jint(v, "documents");
			}
		}
	}
	md(m, "### Languages\n\n");
	if (!t.n) {
		md(m, "No language identification ran (quern-clean's lang step).\n\n");
		prompt(m, "Which languages does the dataset contain?");
		return;
	}
	md(m, "From quern-clean's language identification (documents that reached the lang "
	      "step):\n\n| language | documents | bytes | share |\n|---|---:|---:|---:|\n");
	for (size_t i = 0; i < t.n; i++) {
		md(m, "| ");
		md_text(m, t.name[i]);
		md(m, " | %lld | %lld | %.1f%% |\n", (long long)t.v[i], (long long)t.w[i],
		   total ? 100.0 * (double)t.v[i] / (double)total : 0.0);
	}
	md(m, "\n");
	tally_release(&t);
}

static const char *kind_of_type(const struct inputs *in, const char *type)
{
	for (size_t i = 0; i < in->nscans; i++) {
		const char *key;
		json_t *v;
		json_object_foreach(
		    json_object_get(json_object_get(in->scans[i], "findings"), "by_rule"), key, v)
		{
			json_t *ty = json_object_get(v, "type"), *k = json_object_get(v, "kind");
			if (json_is_string(ty) && json_is_string(k) &&
			    !strcmp(json_string_value(ty), type))
				return json_string_value(k);
		}
	}
	return "-";
}

static void sensitive(struct md *m, const struct inputs *in)
{
	md(m, "### Personal data and secrets\n\n");
	if (in->nscans) {
		struct tally types = {0}, sev = {0};
		int64_t docs = 0, total = 0, rep = 0, sup = 0;
		for (size_t i = 0; i < in->nscans; i++) {
			json_t *f = json_object_get(in->scans[i], "findings"), *v;
			const char *key;
			docs += jint(in->scans[i], "documents");
			total += jint(f, "total");
			rep += jint(f, "reported");
			sup += jint(f, "suppressed");
			json_object_foreach(json_object_get(f, "by_type"), key, v) tally_add(
			    &types, key, json_is_integer(v) ? json_integer_value(v) : 0, 0);
			json_object_foreach(json_object_get(f, "by_severity"), key, v)
			    tally_add(&sev, key, json_is_integer(v) ? json_integer_value(v) : 0, 0);
		}
		md(m,
		   "quern-audit scan looked at %lld documents: %lld findings, %lld reported and "
		   "%lld suppressed by a baseline.\n\n",
		   (long long)docs, (long long)total, (long long)rep, (long long)sup);
		if (types.n) {
			md(m, "| type | kind | findings |\n|---|---|---:|\n");
			for (size_t i = 0; i < types.n; i++) {
				md(m, "| ");
				md_text(m, types.name[i]);
				md(m, " | ");
				md_text(m, kind_of_type(in, types.name[i]));
				md(m, " | %lld |\n", (long long)types.v[i]);
			}
			md(m, "\n");
		}
		if (sev.n) {
			md(m, "By severity:");
			for (size_t i = 0; i < sev.n; i++) {
				md(m, "%s ", i ? "," : "");
				md_text(m, sev.name[i]);
				md(m, " %lld", (long long)sev.v[i]);
			}
			md(m, ".\n\n");
		}
		size_t ngates = 0, failed = 0;
		for (size_t i = 0; i < in->nscans; i++) {
			json_t *g, *gates = json_object_get(in->scans[i], "gates");
			size_t k;
			json_array_foreach(gates, k, g)
			{
				if (!ngates++)
					md(m,
					   "| policy gate | observed | result |\n|---|---:|---|\n");
				int ok = json_is_true(json_object_get(g, "passed"));
				failed += !ok;
				md(m, "| ");
				md_text(m, json_string_value(json_object_get(g, "rule")));
				md(m, " | %lld | %s |\n", (long long)jint(g, "observed"),
				   ok ? "passed" : "**failed**");
			}
		}
		if (ngates)
			md(m, "\n%zu of %zu policy gates failed.\n\n", failed, ngates);
		tally_release(&types);
		tally_release(&sev);
	} else {
		md(m, "No quern-audit scan summary was given.\n\n");
	}
	/* What the cleaning found (and, by its mode, tagged or pseudonymised). */
	struct tally pii = {0};
	for (size_t i = 0; i < in->nstats; i++) {
		json_t *steps = json_object_get(in->stats[i], "steps"), *st, *v;
		size_t k;
		const char *key;
		json_array_foreach(steps, k, st)
		{
			json_t *name = json_object_get(st, "step");
			if (!json_is_string(name) || strcmp(json_string_value(name), "pii"))
				continue;
			json_object_foreach(json_object_get(st, "counters"), key,
					    v) if (json_is_integer(v) && json_integer_value(v) > 0)
			    tally_add(&pii, key, json_integer_value(v), 0);
		}
	}
	if (pii.n) {
		md(m, "quern-clean's pii step found, and tagged or pseudonymised as configured:\n\n"
		      "| type | matches |\n|---|---:|\n");
		for (size_t i = 0; i < pii.n; i++) {
			if (!strcmp(pii.name[i], "documents_with_findings"))
				continue;
			md(m, "| ");
			md_text(m, pii.name[i]);
			md(m, " | %lld |\n", (long long)pii.v[i]);
		}
		md(m, "\n");
		for (size_t i = 0; i < pii.n; i++)
			if (!strcmp(pii.name[i], "documents_with_findings"))
				md(m, "%lld documents had such matches.\n\n", (long long)pii.v[i]);
	}
	tally_release(&pii);
	prompt(m, "Does the dataset contain data that might be considered confidential or "
		  "sensitive (racial or ethnic origin, health, political opinions, ...)? The "
		  "counts above cover only the automatic detectors.");
	prompt(m, "Is it possible to identify individuals, directly or indirectly, from the "
		  "dataset?");
	prompt(m, "Does the dataset contain data that, if viewed directly, might be offensive, "
		  "insulting, threatening, or might otherwise cause anxiety?");
}

static void composition(struct md *m, const struct inputs *in)
{
	section(m, "Composition");
	md(m, "The instances are text documents (JSON Lines: id, text, source, metadata)");
	if (count_tool(in, "quern-tokenize"))
		md(m, ", encoded into token shards for training");
	md(m, ".\n\n");
	sources(m, in);
	languages(m, in);
	if (count_tool(in, "quern-tokenize") || in->nshards) {
		md(m, "### Splits\n\n");
		if (count_tool(in, "quern-tokenize"))
			md(m,
			   "quern-tokenize split the documents by a hash of their id: %lld for "
			   "training and %lld for validation, %lld tokens in all.\n\n",
			   (long long)sum_counter(in, "quern-tokenize", "documents_train"),
			   (long long)sum_counter(in, "quern-tokenize", "documents_val"),
			   (long long)sum_counter(in, "quern-tokenize", "tokens"));
		for (size_t i = 0; i < in->nshards; i++) {
			json_t *sp = json_object_get(in->shards[i], "splits");
			json_t *tr = json_object_get(sp, "train"), *va = json_object_get(sp, "val");
			md(m,
			   "A shard directory holds %lld training documents (%lld tokens) and %lld "
			   "validation documents (%lld tokens), vocabulary %lld.\n\n",
			   (long long)jint(tr, "documents"), (long long)jint(tr, "tokens"),
			   (long long)jint(va, "documents"), (long long)jint(va, "tokens"),
			   (long long)jint(in->shards[i], "vocab_size"));
		}
	}
	sensitive(m, in);
	prompt(m, "Is any information missing from individual instances? Are there errors, "
		  "sources of noise, or redundancies beyond those removed below?");
	prompt(m, "Does the dataset identify any subpopulations (by age, gender, ...)?");
	prompt(m, "Is the dataset self-contained, or does it link to or rely on external "
		  "resources (websites, other datasets)?");
}

static void runs_table(struct md *m, const struct inputs *in, const char *tool)
{
	int any = 0;
	for (size_t i = 0; i < in->nruns; i++) {
		const struct am_manifest *r = &in->runs[i];
		if (!is_tool(r, tool))
			continue;
		if (!any++)
			md(m, "| run | started | finished | inputs | outputs "
			      "|\n|---|---|---|---:|---:|\n");
		md(m, "| %s%s", r->tool, r->command ? " " : "");
		md_text(m, r->command);
		md(m, " | ");
		md_text(m, r->started ? r->started : "-");
		md(m, " | ");
		md_text(m, r->finished ? r->finished : "-");
		md(m, " | %zu | %zu |\n", r->nin, r->nout);
	}
	if (any)
		md(m, "\n");
}

static void collection(struct md *m, const struct inputs *in)
{
	const char *first = NULL, *last = NULL;

	section(m, "Collection Process");
	if (count_tool(in, "quern-ingest")) {
		md(m,
		   "quern-ingest extracted text and metadata from %lld source files into %lld "
		   "documents (%lld inputs and %lld records failed).\n\n",
		   (long long)sum_counter(in, "quern-ingest", "inputs"),
		   (long long)sum_counter(in, "quern-ingest", "documents"),
		   (long long)sum_counter(in, "quern-ingest", "failed_inputs"),
		   (long long)sum_counter(in, "quern-ingest", "failed_records"));
		runs_table(m, in, "quern-ingest");
		for (size_t i = 0; i < in->nruns; i++) {
			const struct am_manifest *r = &in->runs[i];
			if (!is_tool(r, "quern-ingest"))
				continue;
			/* RFC 3339 UTC strings order as text. */
			if (r->started && (!first || strcmp(r->started, first) < 0))
				first = r->started;
			if (r->finished && (!last || strcmp(r->finished, last) > 0))
				last = r->finished;
		}
		if (first && last) {
			md(m, "The ingestion ran from ");
			md_text(m, first);
			md(m, " to ");
			md_text(m, last);
			md(m, ".\n\n");
		}
	} else {
		md(m, "No quern-ingest manifest was given.\n\n");
	}
	prompt(m, "How was the data acquired (crawled, licensed, donated, generated, reported "
		  "by people)? What mechanisms or procedures collected it, and how were they "
		  "validated?");
	prompt(m, "Over what timeframe was the data originally created (as opposed to ingested)?");
	prompt(m, "Who was involved in the data collection process, and how were they "
		  "compensated?");
	prompt(m, "Were the individuals the data is about notified and did they consent to the "
		  "collection and use of their data? How can they revoke consent? (`quern-audit "
		  "lineage --source` lists everything derived from a source for an erasure "
		  "request.)");
	prompt(m, "Were any ethical review processes conducted (for example, by an institutional "
		  "review board)?");
}

static void clean_stats(struct md *m, const json_t *st, size_t idx, size_t n)
{
	json_t *steps = json_object_get(st, "steps"), *s;
	size_t k;

	if (n > 1)
		md(m, "#### Cleaning run %zu\n\n", idx + 1);
	md(m,
	   "%lld documents in, %lld kept, %lld removed; %lld bad input lines. The steps, in "
	   "order:\n\n| step | documents in | documents out | removed | reasons |\n"
	   "|---|---:|---:|---:|---|\n",
	   (long long)jint(st, "documents_in"), (long long)jint(st, "documents_out"),
	   (long long)jint(st, "documents_rejected"), (long long)jint(st, "bad_lines"));
	json_array_foreach(steps, k, s)
	{
		int64_t din = jint(s, "documents_in"), dout = jint(s, "documents_out");
		const char *key;
		json_t *v;
		int first = 1;
		md(m, "| ");
		md_text(m, json_string_value(json_object_get(s, "step")));
		md(m, " | %lld | %lld | %lld | ", (long long)din, (long long)dout,
		   (long long)(din - dout));
		json_object_foreach(json_object_get(s, "rejected"), key, v)
		{
			md(m, "%s", first ? "" : ", ");
			md_text(m, key);
			md(m, " %lld", (long long)jint(v, "documents"));
			first = 0;
		}
		md(m, "%s |\n", first ? "-" : "");
	}
	md(m, "\n");
}

static int is_dedup_step(const char *s)
{
	return !strcmp(s, "exact_dedup") || !strcmp(s, "near_dedup");
}

static int64_t duplicates(const struct inputs *in)
{
	int64_t d = 0;
	for (size_t i = 0; i < in->nstats; i++) {
		json_t *steps = json_object_get(in->stats[i], "steps"), *s;
		size_t k;
		json_array_foreach(steps, k, s)
		{
			json_t *name = json_object_get(s, "step");
			if (json_is_string(name) && is_dedup_step(json_string_value(name)))
				d += jint(s, "documents_in") - jint(s, "documents_out");
		}
	}
	return d;
}

static void preprocessing(struct md *m, const struct inputs *in, int64_t dups)
{
	section(m, "Preprocessing, Cleaning and Labeling");
	if (in->nstats) {
		md(m,
		   "quern-clean ran %zu time%s. Duplicate documents removed (exact and "
		   "near-duplicate steps): %lld. The filters applied, with the documents each "
		   "removed:\n\n",
		   in->nstats, in->nstats == 1 ? "" : "s", (long long)dups);
		for (size_t i = 0; i < in->nstats; i++)
			clean_stats(m, in->stats[i], i, in->nstats);
	} else {
		md(m, "No quern-clean statistics were given.\n\n");
	}
	for (size_t i = 0; i < in->nruns; i++) {
		json_t *cfg = json_object_get(in->runs[i].root, "config");
		if (is_tool(&in->runs[i], "quern-clean") && json_is_string(cfg) &&
		    !strstr(json_string_value(cfg), "```")) {
			md(m,
			   "The cleaning configuration (quern-clean "
			   "--print-config):\n\n```yaml\n%s%s```\n\n",
			   json_string_value(cfg),
			   json_string_length(cfg) &&
				   json_string_value(cfg)[json_string_length(cfg) - 1] == '\n'
			       ? ""
			       : "\n");
			break;
		}
	}
	if (count_tool(in, "quern-tokenize")) {
		md(m, "quern-tokenize encoded the documents into token shards:\n\n");
		runs_table(m, in, "quern-tokenize");
		for (size_t i = 0; i < in->nruns; i++) {
			json_t *fp = json_object_get(in->runs[i].root, "tokenizer");
			if (is_tool(&in->runs[i], "quern-tokenize") && json_is_string(fp)) {
				md(m, "Tokenizer fingerprint: `");
				md_text(m, json_string_value(fp));
				md(m, "`.\n\n");
				break;
			}
		}
	}
	prompt(m, "Was any labeling done (by people or models)? How, and with what quality "
		  "control?");
	prompt(m, "Was the raw data saved in addition to the cleaned data? Where? (The source "
		  "files' SHA-256 are listed under Composition.)");
}

static void uses(struct md *m, const struct inputs *in)
{
	section(m, "Uses");
	if (count_tool(in, "quern-train")) {
		md(m, "Models trained on it (quern-train runs given):\n\n");
		runs_table(m, in, "quern-train");
	}
	prompt(m, "Has the dataset been used for any tasks already? Is there a repository that "
		  "links to papers or systems that use it?");
	prompt(m, "What (other) tasks could the dataset be used for?");
	prompt(m, "Is there anything about the composition of the dataset or the way it was "
		  "collected and preprocessed that might impact future uses (for example, unfair "
		  "treatment of individuals or groups, legal or financial risks)?");
	prompt(m, "Are there tasks for which the dataset should not be used?");
}

static void distribution(struct md *m, const struct inputs *in)
{
	size_t n = 0, more = 0;

	section(m, "Distribution");
	for (size_t i = 0; i < in->nruns; i++)
		for (size_t k = 0; k < in->runs[i].nout; k++) {
			const struct am_file *f = &in->runs[i].out[k];
			if (consumed(in, f))
				continue;
			if (!n && !more)
				md(m,
				   "The final artifacts (outputs no run given here read):\n\n"
				   "| file | written by | bytes | sha256 |\n|---|---|---:|---|\n");
			if (n >= LIST_MAX) {
				more++;
				continue;
			}
			n++;
			md(m, "| ");
			md_text(m, f->path);
			md(m, " | %s | %lld | %s |\n", in->runs[i].tool, (long long)f->size,
			   f->sha256[0] ? f->sha256 : "-");
		}
	if (more)
		md(m, "| ... and %zu more | | | |\n", more);
	if (n)
		md(m, "\n");
	prompt(m, "Will the dataset be distributed to third parties outside the entity on whose "
		  "behalf it was created? How (tarball, API, GitHub), and when?");
	prompt(m, "Will the dataset be distributed under a copyright or other intellectual "
		  "property license, and/or under terms of use? Have third parties imposed "
		  "restrictions on the data?");
	prompt(m, "Do any export controls or other regulatory restrictions apply to the dataset "
		  "or to individual instances?");
}

static void maintenance(struct md *m)
{
	section(m, "Maintenance");
	md(m, "The run manifests record every input and output with its SHA-256: `quern-audit "
	      "lineage MANIFEST ...` checks that the files still match them, and "
	      "`--source PATH` lists what derives from a source when it must be removed.\n\n");
	prompt(m, "Who will support, host and maintain the dataset? How can the owner, curator "
		  "or manager be contacted?");
	prompt(m, "Will the dataset be updated (to correct errors, add or delete instances)? How "
		  "often, by whom, and how will updates be communicated?");
	prompt(m, "If the dataset relates to people, are there limits on how long their data "
		  "will be retained?");
	prompt(m, "Will older versions of the dataset continue to be supported?");
	prompt(m, "If others want to extend, augment or contribute to the dataset, is there a "
		  "mechanism for them to do so?");
}

static void generate(struct md *m, const struct inputs *in, const char *name)
{
	char date[32];
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	int64_t dups = duplicates(in);

	if (sde && *sde)
		qn_time_rfc3339(strtoll(sde, NULL, 10), date);
	else
		qn_now_rfc3339(date);
	md(m, "# Datasheet: ");
	md_text(m, name);
	md(m,
	   "\n\n*Generated by quern-audit datasheet %s on %s from %zu run manifest%s, %zu "
	   "quern-clean statistics, %zu scan summar%s and %zu token-shard manifest%s, after "
	   "Gebru et al., \"Datasheets for Datasets\". The figures come from those records; "
	   "each passage marked \"To be answered by the dataset owner\" needs a person.*\n\n",
	   QN_VERSION, date, in->nruns, in->nruns == 1 ? "" : "s", in->nstats, in->nscans,
	   in->nscans == 1 ? "y" : "ies", in->nshards, in->nshards == 1 ? "" : "s");
	summary(m, in, dups);
	motivation(m);
	composition(m, in);
	collection(m, in);
	preprocessing(m, in, dups);
	uses(m, in);
	distribution(m, in);
	maintenance(m);
}

/* ---- main ------------------------------------------------------------------------- */

static const struct option longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"name", required_argument, NULL, 'N'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int datasheet_main(int argc, char **argv)
{
	const char *output = NULL, *name = "dataset";
	struct inputs in = {0};
	int c, rc = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'N':
			name = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return qn_close_stdout(0);
		case ':':
			return qn_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return qn_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return qn_usage_error("datasheet needs at least one FILE or folder");
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			char **found = NULL;
			size_t n = 0;
			struct qn_err e;
			if (am_find_manifests(argv[i], &found, &n, &e) < 0) {
				qn_error("%s", e.msg);
				rc = 1;
			}
			if (!n)
				qn_warn("no manifests in '%s'", argv[i]);
			for (size_t k = 0; k < n; k++) {
				if (add_file(&in, found[k]) < 0)
					rc = 1;
				free(found[k]);
			}
			free(found);
		} else if (add_file(&in, argv[i]) < 0) {
			rc = 1;
		}
	}
	if (!in.nruns && !in.nstats && !in.nscans && !in.nshards) {
		qn_error("nothing to write a datasheet from");
		inputs_release(&in);
		return 1;
	}

	struct md m = {.oom = 0};
	qn_buf_init(&m.b, QN_BUF_UNLIMITED);
	generate(&m, &in, name);
	inputs_release(&in);
	if (m.oom) {
		qn_error("out of memory");
		qn_buf_release(&m.b);
		return 1;
	}
	struct qn_err e;
	struct qn_wr_info info;
	struct qn_wr *w = qn_wr_open(output, QN_WR_PLAIN, &e);
	int ok = w != NULL;
	if (ok && qn_wr_write(w, m.b.data, m.b.len, &e) < 0) {
		qn_wr_abort(w);
		ok = 0;
	} else if (ok && qn_wr_commit(w, &info, &e) < 0) {
		ok = 0;
	}
	if (!ok) {
		qn_error("%s", e.msg);
		qn_buf_release(&m.b);
		return 1;
	}
	qn_buf_release(&m.b);
	return output ? rc : qn_close_stdout(rc);
}
