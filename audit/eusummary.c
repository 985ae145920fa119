/*
 * eusummary.c - quern-audit eu-summary: the EU AI Office's "Template for the
 * public summary of training content for general-purpose AI models" (Art.
 * 53(1)(d) AI Act), in its sections: 1. general information (provider,
 * model, modalities and training data size), 2. list of data sources
 * (publicly available datasets, private datasets, crawled and scraped
 * data with its top domains, user data, synthetic data, other), 3. data
 * processing aspects (reservation of rights, removal of illegal content,
 * other measures). Every field the records determine is filled from them
 * (cardin.h): sizes from the manifests (documents, bytes, tokens), the top
 * domains by share of text bytes from the documents' metadata.url (the
 * document files the manifests name, or --docs), the processing measures
 * from quern-clean's statistics (deduplication, filters, PII). The rest is
 * left as a prompt marked for the provider.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "cardin.h"
#include "cli.h"
#include "doc.h"

static const char usage_text[] =
    "usage: quern-audit eu-summary [options] FILE|DIR ...\n"
    "\n"
    "Write the EU AI Act's public summary of training content (the AI Office\n"
    "template: general information, list of data sources with the top domains,\n"
    "data processing) as Markdown, and as JSON with --json, from run manifests,\n"
    "quern-clean statistics, token-shard manifests, a checkpoint folder and\n"
    "document files, each recognised by its content. The top domains come from\n"
    "the documents' metadata.url: the document files the manifests name, or\n"
    "--docs. Fields only the provider can fill are marked \"To be answered by\n"
    "the provider\".\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE     write the Markdown here (atomically), not stdout\n"
    "      --json FILE       the computed fields as JSON\n"
    "      --docs FILE       document JSON Lines for the domains (repeatable;\n"
    "                        default: the files the manifests name)\n"
    "      --top N           domains listed (default 10)\n"
    "      --name NAME       the model's name (default: model)\n"
    "  -q, --quiet           no warnings\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 written, 1 an input could not be read or recognised (the\n"
    "summary is still written from the others) or a write failed, 2 usage error.\n";

static int cmp_dom(const void *pa, const void *pb)
{
	const struct cd_domain *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return strcmp(a->name, b->name);
}

static const char *tokens_range(int64_t t)
{
	return t < 1000000000LL	       ? "less than 1 billion tokens"
	       : t <= 10000000000000LL ? "1 billion to 10 trillion tokens"
				       : "more than 10 trillion tokens";
}

static void general(struct cd_md *m, json_t *j, const struct cd_inputs *in, const char *name)
{
	int64_t tokens = cd_counter(in, "quern-tokenize", "tokens");
	int64_t docs = cd_counter(in, "quern-tokenize", "documents_train") +
		       cd_counter(in, "quern-tokenize", "documents_val");
	int64_t bytes = cd_counter(in, "quern-tokenize", "text_bytes");
	json_t *g = json_object();

	cd_md(m, "## 1. General information\n\n### 1.1 Provider identification\n\n");
	cd_md_prompt(m, "Name and contact details of the provider; the authorised "
			"representative, where applicable.");
	cd_md(m, "### 1.2 Model identification\n\nModel: ");
	cd_md_text(m, name);
	cd_md(m, ".\n\n");
	json_object_set_new(g, "model", json_string(name));
	if (in->config) {
		cd_md(m, "Architecture: GPT-2, %lld layers, width %lld, %lld parameters.\n\n",
		      (long long)cd_int(in->config, "n_layer", 0),
		      (long long)cd_int(in->config, "n_embd", 0),
		      (long long)cd_gpt2_params(in->config));
		json_object_set_new(g, "parameters", json_integer(cd_gpt2_params(in->config)));
	}
	cd_md_prompt(m, "Versioned model name(s); if the model modifies or fine-tunes another "
			"general-purpose AI model, that model and a link to its summary; the date "
			"of placement on the EU market.");
	cd_md(m, "### 1.3 Modalities, overall training data size and other characteristics\n\n"
		 "| field | value |\n|---|---|\n| modality | text |\n");
	if (tokens) {
		cd_md(m, "| training data size (text) | %s (%lld tokens) |\n", tokens_range(tokens),
		      (long long)tokens);
		cd_md(m, "| documents | %lld |\n| text bytes | %lld |\n", (long long)docs,
		      (long long)bytes);
	}
	json_object_set_new(g, "modality", json_string("text"));
	json_object_set_new(g, "tokens", json_integer(tokens));
	json_object_set_new(g, "tokens_range", json_string(tokens_range(tokens)));
	json_object_set_new(g, "documents", json_integer(docs));
	json_object_set_new(g, "text_bytes", json_integer(bytes));
	/* Languages from quern-clean's lang step. */
	json_t *langs = json_object();
	for (size_t i = 0; i < in->stats.n; i++) {
		json_t *steps = json_object_get(in->stats.v[i], "steps"), *s;
		size_t k;
		json_array_foreach(steps, k, s)
		{
			const char *l;
			json_t *v;
			json_object_foreach(json_object_get(s, "languages"), l, v)
			{
				int64_t prev = cd_int(langs, l, 0);
				json_object_set_new(langs, l,
						    json_integer(prev + cd_int(v, "documents", 0)));
			}
		}
	}
	if (json_object_size(langs)) {
		const char *l;
		json_t *v;
		int first = 1;
		cd_md(m, "| languages (documents) | ");
		json_object_foreach(langs, l, v)
		{
			cd_md(m, "%s", first ? "" : ", ");
			cd_md_text(m, l);
			cd_md(m, " %lld", (long long)json_integer_value(v));
			first = 0;
		}
		cd_md(m, " |\n");
	}
	json_object_set_new(g, "languages", langs);
	/* The latest collection: the last quern-ingest run's end. */
	const char *last = NULL;
	for (size_t i = 0; i < in->nruns; i++)
		if (!strcmp(in->runs[i].tool, "quern-ingest") && in->runs[i].finished &&
		    (!last || strcmp(in->runs[i].finished, last) > 0))
			last = in->runs[i].finished;
	if (last) {
		cd_md(m, "| latest data collection (ingestion) | ");
		cd_md_text(m, last);
		cd_md(m, " |\n");
		json_object_set_new(g, "latest_collection", json_string(last));
	}
	cd_md(m, "\n");
	cd_md_prompt(m, "The types of content, and other relevant characteristics of the "
			"training data.");
	json_object_set_new(j, "general_information", g);
}

static void sources(struct cd_md *m, json_t *j, struct cd_inputs *in, size_t top)
{
	json_t *s = json_object(), *doms = json_array();
	cd_md(m, "## 2. List of data sources\n\n");
	cd_md(m, "### 2.1 Publicly available datasets\n\n");
	cd_md_prompt(m, "Were publicly available datasets used? For each large one (more than 3%% "
			"of the publicly available data of a modality), its name and link; a "
			"description of the others.");
	cd_md(m, "### 2.2 Private non-publicly available datasets obtained from third parties\n\n");
	cd_md_prompt(m, "Datasets commercially licensed by rightsholders or their "
			"representatives, and private datasets obtained from other third "
			"parties.");
	cd_md(m, "### 2.3 Data crawled and scraped from online sources\n\n");
	if (cd_runs_of(in, "quern-ingest")) {
		int64_t f = cd_counter(in, "quern-ingest", "inputs"),
			d = cd_counter(in, "quern-ingest", "documents"),
			b = cd_counter(in, "quern-ingest", "bytes_in");
		cd_md(m,
		      "quern-ingest read %lld source files (%lld bytes) into %lld documents.\n\n",
		      (long long)f, (long long)b, (long long)d);
		json_object_set_new(s, "source_files", json_integer(f));
		json_object_set_new(s, "source_bytes", json_integer(b));
		json_object_set_new(s, "documents_ingested", json_integer(d));
	}
	if (in->ndom) {
		qsort(in->dom, in->ndom, sizeof *in->dom, cmp_dom);
		cd_md(
		    m,
		    "The most relevant domain names by share of the training text (from %llu "
		    "documents in %llu files; %llu without a URL):\n\n| domain | documents | text "
		    "bytes | share |\n|---|---:|---:|---:|\n",
		    (unsigned long long)in->doc_docs, (unsigned long long)in->doc_files,
		    (unsigned long long)in->doc_no_url);
		for (size_t i = 0; i < in->ndom && i < top; i++) {
			double share =
			    in->doc_bytes ? (double)in->dom[i].bytes / (double)in->doc_bytes : 0;
			cd_md(m, "| ");
			cd_md_text(m, in->dom[i].name);
			cd_md(m, " | %llu | %llu | %.1f%% |\n", (unsigned long long)in->dom[i].docs,
			      (unsigned long long)in->dom[i].bytes, 100 * share);
			json_array_append_new(
			    doms, json_pack("{s:s,s:I,s:I,s:f}", "domain", in->dom[i].name,
					    "documents", (json_int_t)in->dom[i].docs, "bytes",
					    (json_int_t)in->dom[i].bytes, "share", share));
		}
		cd_md(m, "\n%zu domains in all.\n\n", in->ndom);
	} else {
		cd_md(
		    m,
		    "No document carries a URL (metadata.url), or no document file was read.\n\n");
	}
	json_object_set_new(s, "domains_total", json_integer((json_int_t)in->ndom));
	json_object_set_new(s, "top_domains", doms);
	json_object_set_new(s, "documents_read", json_integer((json_int_t)in->doc_docs));
	json_object_set_new(s, "documents_without_url", json_integer((json_int_t)in->doc_no_url));
	cd_md_prompt(m, "Were crawlers used? Their names, purposes and behaviour (robots.txt, "
			"paywalls, log-ins), and the period of collection.");
	cd_md(m, "### 2.4 User data\n\n");
	cd_md_prompt(m, "Was data from user interactions with the model or from the provider's "
			"other services used? Which services?");
	cd_md(m, "### 2.5 Synthetic data\n\n");
	cd_md_prompt(m, "Was AI-generated synthetic data used? Which models generated it?");
	cd_md(m, "### 2.6 Other sources of data\n\n");
	cd_md_prompt(m, "Any other sources of data not covered above.");
	json_object_set_new(j, "data_sources", s);
}

static void processing(struct cd_md *m, json_t *j, const struct cd_inputs *in)
{
	json_t *p = json_object(), *steps = json_array(), *pii = json_object();
	int64_t din = 0, dout = 0, dups = 0;
	cd_md(m, "## 3. Data processing aspects\n\n### 3.1 Respect of reservation of rights "
		 "from text and data mining exception or limitation\n\n");
	cd_md_prompt(m,
		     "The measures taken to identify and respect opt-outs from text and data "
		     "mining (Art. 4(3) Directive (EU) 2019/790), before and during collection.");
	cd_md(m, "### 3.2 Removal of illegal content\n\n");
	cd_md_prompt(m, "The measures taken to avoid or remove illegal content from the training "
			"data.");
	cd_md(m, "### 3.3 Other information\n\n");
	for (size_t i = 0; i < in->stats.n; i++) {
		json_t *st = json_object_get(in->stats.v[i], "steps"), *s;
		size_t k;
		din += cd_int(in->stats.v[i], "documents_in", 0);
		dout += cd_int(in->stats.v[i], "documents_out", 0);
		json_array_foreach(st, k, s)
		{
			const char *n = json_string_value(json_object_get(s, "step"));
			int64_t removed =
			    cd_int(s, "documents_in", 0) - cd_int(s, "documents_out", 0);
			if (!n)
				continue;
			if (!strcmp(n, "exact_dedup") || !strcmp(n, "near_dedup"))
				dups += removed;
			json_array_append_new(steps, json_pack("{s:s,s:I}", "step", n, "removed",
							       (json_int_t)removed));
			if (!strcmp(n, "pii")) {
				const char *t;
				json_t *v;
				json_object_foreach(json_object_get(s, "counters"), t,
						    v) if (json_is_integer(v) &&
							   json_integer_value(v) > 0)
				    json_object_set_new(
					pii, t,
					json_integer(cd_int(pii, t, 0) + json_integer_value(v)));
			}
		}
	}
	if (in->stats.n) {
		size_t k;
		json_t *s;
		cd_md(m,
		      "quern-clean processed %lld documents and kept %lld; %lld duplicates were "
		      "removed. The steps, with the documents each removed:\n\n| step | removed "
		      "|\n|---|---:|\n",
		      (long long)din, (long long)dout, (long long)dups);
		json_array_foreach(steps, k, s)
		{
			cd_md(m, "| ");
			cd_md_text(m, json_string_value(json_object_get(s, "step")));
			cd_md(m, " | %lld |\n", (long long)cd_int(s, "removed", 0));
		}
		cd_md(m, "\n");
		if (json_object_size(pii)) {
			const char *t;
			json_t *v;
			cd_md(m,
			      "Personal data and secrets found and redacted or tagged (quern-clean "
			      "pii):\n\n| type | matches |\n|---|---:|\n");
			json_object_foreach(pii, t, v)
			{
				cd_md(m, "| ");
				cd_md_text(m, t);
				cd_md(m, " | %lld |\n", (long long)json_integer_value(v));
			}
			cd_md(m, "\n");
		}
	} else {
		cd_md(m, "No quern-clean statistics were given.\n\n");
	}
	json_object_set_new(p, "documents_in", json_integer(din));
	json_object_set_new(p, "documents_kept", json_integer(dout));
	json_object_set_new(p, "duplicates_removed", json_integer(dups));
	json_object_set_new(p, "steps", steps);
	json_object_set_new(p, "pii", pii);
	cd_md_prompt(m, "Other relevant processing (optional).");
	json_object_set_new(j, "data_processing", p);
}

static const struct option longopts[] = {
    {"output", required_argument, NULL, 'o'}, {"json", required_argument, NULL, 'J'},
    {"docs", required_argument, NULL, 'D'},   {"top", required_argument, NULL, 'T'},
    {"name", required_argument, NULL, 'N'},   {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
};

int eusummary_main(int argc, char **argv)
{
	const char *output = NULL, *json_out = NULL, *name = "model";
	const char **docs = calloc((size_t)argc + 1, sizeof *docs);
	size_t ndocs = 0;
	double top = 10;
	struct cd_inputs in = {0};
	int c, rc = 0;

	if (!docs) {
		qn_error("out of memory");
		return 1;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'J':
			json_out = optarg;
			break;
		case 'D':
			docs[ndocs++] = optarg;
			break;
		case 'T':
			if (qn_parse_number("--top", optarg, 1, 1000000, &top) < 0)
				rc = QN_EXIT_USAGE;
			break;
		case 'N':
			name = optarg;
			break;
		case 'q':
			qn_verbosity = -1;
			break;
		case 'h':
			free(docs);
			fputs(usage_text, stdout);
			return qn_close_stdout(0);
		case ':':
			rc = qn_usage_error("option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			rc = qn_usage_error("unknown option '%s'", argv[optind - 1]);
			break;
		}
		if (rc) {
			free(docs);
			return rc;
		}
	}
	if (optind >= argc && !ndocs) {
		free(docs);
		return qn_usage_error("eu-summary needs at least one FILE or folder");
	}
	for (int i = optind; i < argc; i++)
		if (cd_add(&in, argv[i]) < 0)
			rc = 1;
	uint64_t bad = 0;
	if (ndocs) {
		for (size_t i = 0; i < ndocs; i++)
			if (cd_add_docs(&in, docs[i], &bad) < 0)
				rc = 1;
	} else if (!in.doc_files) {
		const char **found;
		size_t n = cd_manifest_docs(&in, &found);
		for (size_t i = 0; i < n; i++)
			if (cd_add_docs(&in, found[i], &bad) < 0)
				rc = 1;
		free(found);
	}
	free(docs);
	if (bad)
		qn_warn("%llu document lines could not be read", (unsigned long long)bad);
	if (!in.nruns && !in.stats.n && !in.doc_files && !in.config) {
		qn_error("nothing to write a training-content summary from");
		cd_inputs_release(&in);
		return 1;
	}
	struct cd_md m;
	char date[32];
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde)
		qn_time_rfc3339(strtoll(sde, NULL, 10), date);
	else
		qn_now_rfc3339(date);
	cd_md_init(&m, "provider");
	json_t *j = json_pack("{s:s,s:i,s:s,s:s}", "format", "quern-eu-training-summary", "version",
			      1, "name", name, "generated", date);
	cd_md(&m, "# Public summary of training content: ");
	cd_md_text(&m, name);
	cd_md(
	    &m,
	    "\n\n*Generated by quern-audit eu-summary %s on %s in the sections of the AI Office's "
	    "template for the public summary of training content of general-purpose AI models "
	    "(Article 53(1)(d) of Regulation (EU) 2024/1689). The figures come from the "
	    "pipeline's records; each passage marked \"To be answered by the provider\" needs a "
	    "person.*\n\n",
	    QN_VERSION, date);
	general(&m, j, &in, name);
	sources(&m, j, &in, (size_t)top);
	processing(&m, j, &in);
	cd_inputs_release(&in);
	if (!j || m.oom) {
		qn_error("out of memory");
		rc = 1;
	} else {
		if (json_out && cd_json_write(j, json_out) < 0)
			rc = 1;
		if (cd_md_write(&m, output) < 0)
			rc = 1;
	}
	json_decref(j);
	qn_buf_release(&m.b);
	return output ? rc : qn_close_stdout(rc);
}
