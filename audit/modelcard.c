/*
 * modelcard.c - quern-audit model-card: a model card in the sections of
 * Mitchell et al., "Model Cards for Model Reporting" (Model Details,
 * Intended Use, Factors, Metrics, Evaluation Data, Training Data,
 * Quantitative Analyses, Ethical Considerations, Caveats and
 * Recommendations), as Markdown and as JSON with the same facts, filled
 * from what the pipeline recorded (cardin.h reads and recognises it): the
 * checkpoint's config, its training metrics and state, run manifests,
 * cleaning statistics, eval, memorization and canary results, and scan and
 * probe summaries. What only a person can say is left as a marked prompt.
 *
 * The training curve is drawn as an SVG file beside the card (CARD-loss.svg
 * for CARD.md, linked from it: GitHub does not render inline SVG in
 * Markdown) and given as a table of at most 20 points.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit.h"
#include "cardin.h"
#include "cli.h"
#include "err.h"
#include "doc.h"
#include "hash.h"
#include "wr.h"

#define TABLE_POINTS 20 /* rows of the loss table */
#define SVG_POINTS 500	/* points of each SVG line */

static const char usage_text[] =
    "usage: quern-audit model-card [options] FILE|DIR ...\n"
    "\n"
    "Write a model card (Mitchell et al.: model details, intended use, factors,\n"
    "metrics, evaluation and training data, quantitative analyses, ethical\n"
    "considerations, caveats) as Markdown, and as JSON with --json, from a\n"
    "checkpoint folder (config.json, metrics.jsonl, run.manifest.json, the\n"
    "training state), run manifests, quern-clean statistics, shard manifests,\n"
    "quern-audit eval, memorization and canary exposure results and scan or\n"
    "probe summaries, each recognised by its content. Other folders are\n"
    "searched for *.manifest.json. Questions only a person can answer are left\n"
    "as prompts marked \"To be answered by the model owner\".\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE     the Markdown card (atomically; default stdout); the\n"
    "                        loss curve goes beside it as FILE-loss.svg (.md cut)\n"
    "      --json FILE       the same facts as JSON\n"
    "      --name NAME       the model's name in the title (default: model)\n"
    "  -q, --quiet           no warnings\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 written, 1 an input could not be read or recognised (the\n"
    "card is still written from the others) or a write failed, 2 usage error.\n";

/* ---- small helpers ---- */

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static void md_num(struct cd_md *m, const json_t *v)
{
	if (json_is_integer(v))
		cd_md(m, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v) && isfinite(json_real_value(v)))
		cd_md(m, "%.4g", json_real_value(v));
	else if (json_is_string(v))
		cd_md_text(m, json_string_value(v));
	else if (json_is_boolean(v))
		cd_md(m, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			cd_md(m, "%s", i ? ", " : "");
			md_num(m, x);
		}
		if (!json_array_size(v))
			cd_md(m, "none");
	} else
		cd_md(m, "-");
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The last finite value of a series, its step in *step. */
static double last_of(const struct cd_inputs *in, int val, double *step)
{
	for (size_t i = in->npts; i-- > 0;) {
		double v = val ? in->pts[i].val_loss : in->pts[i].loss;
		if (isfinite(v)) {
			*step = in->pts[i].step;
			return v;
		}
	}
	*step = NAN;
	return NAN;
}

static const struct am_manifest *train_run(const struct cd_inputs *in)
{
	const struct am_manifest *r = NULL;
	for (size_t i = 0; i < in->nruns; i++)
		if (!strcmp(in->runs[i].tool, "quern-train"))
			r = &in->runs[i];
	return r;
}

/* ---- the loss curve as SVG ---- */

static void svg_line(struct qn_buf *b, const struct cd_inputs *in, int val, double x0, double x1,
		     double y0, double y1, const char *color)
{
	size_t n = 0, stride = in->npts / SVG_POINTS + 1;
	for (size_t i = 0; i < in->npts; i++) {
		const struct cd_point *p = &in->pts[i];
		double v = val ? p->val_loss : p->loss;
		if (!isfinite(v) || !isfinite(p->step) || (!val && i % stride && i + 1 < in->npts))
			continue;
		double x = 60 + (p->step - x0) / (x1 - x0 > 0 ? x1 - x0 : 1) * 560;
		double y = 20 + (y1 - v) / (y1 - y0 > 0 ? y1 - y0 : 1) * 300;
		qn_buf_printf(b, "%s%.1f,%.1f", n++ ? " " : "<polyline fill=\"none\" points=\"", x,
			      y);
	}
	if (n)
		qn_buf_printf(b, "\" stroke=\"%s\" stroke-width=\"%s\"/>\n", color,
			      val ? "2.5" : "1.5");
}

static int loss_svg(const struct cd_inputs *in, const char *path, const char *name)
{
	double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
	struct qn_buf b;
	struct qn_err e;

	for (size_t i = 0; i < in->npts; i++) {
		const struct cd_point *p = &in->pts[i];
		double v[2] = {p->loss, p->val_loss};
		for (int k = 0; k < 2; k++)
			if (isfinite(v[k]) && isfinite(p->step)) {
				x0 = fmin(x0, p->step);
				x1 = fmax(x1, p->step);
				y0 = fmin(y0, v[k]);
				y1 = fmax(y1, v[k]);
			}
	}
	if (!isfinite(x0))
		return 0;
	if (y1 - y0 < 1e-9) {
		y0 -= 0.5;
		y1 += 0.5;
	}
	qn_buf_init(&b, (size_t)64 << 20);
	qn_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 640 380\" "
			  "width=\"640\" height=\"380\" role=\"img\" aria-labelledby=\"t d\">"
			  "<title id=\"t\">Training loss of ");
	for (const char *s = name; *s; s++)
		qn_buf_adds(&b, *s == '<'   ? "&lt;"
				: *s == '&' ? "&amp;"
				: *s == '>' ? "&gt;"
					    : (char[]){*s, 0});
	qn_buf_printf(&b,
		      "</title><desc id=\"d\">Loss per step from %g to %g; training loss in blue, "
		      "validation loss in orange.</desc>\n<rect width=\"640\" height=\"380\" "
		      "fill=\"#fff\"/><g font-family=\"sans-serif\" font-size=\"12\" "
		      "fill=\"#1f2328\">\n",
		      x0, x1);
	for (int k = 0; k <= 4; k++) {
		double y = 20 + k * 75.0, v = y1 - (y1 - y0) * k / 4;
		qn_buf_printf(
		    &b,
		    "<line x1=\"60\" y1=\"%.1f\" x2=\"620\" y2=\"%.1f\" stroke=\"#d8dee4\"/>"
		    "<text x=\"54\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
		    y, y, y + 4, v);
	}
	qn_buf_printf(
	    &b,
	    "<text x=\"60\" y=\"345\">step %g</text><text x=\"620\" y=\"345\" "
	    "text-anchor=\"end\">step %g</text><text x=\"340\" y=\"370\" "
	    "text-anchor=\"middle\">step</text>\n"
	    "<rect x=\"400\" y=\"26\" width=\"12\" height=\"3\" fill=\"#3566a8\"/><text "
	    "x=\"416\" y=\"32\">training loss</text><rect x=\"510\" y=\"26\" width=\"12\" "
	    "height=\"3\" fill=\"#d1470f\"/><text x=\"526\" y=\"32\">validation "
	    "loss</text></g>\n",
	    x0, x1);
	svg_line(&b, in, 0, x0, x1, y0, y1, "#3566a8");
	svg_line(&b, in, 1, x0, x1, y0, y1, "#d1470f");
	int rc = qn_buf_adds(&b, "</svg>\n");
	if (rc < 0 || qn_write_file_atomic(path, b.data, b.len, &e) < 0) {
		qn_error("%s", rc < 0 ? "loss curve: too many points" : e.msg);
		rc = -1;
	}
	qn_buf_release(&b);
	return rc;
}

/* ---- the sections (Markdown into m, facts into card) ---- */

static void details(struct cd_md *m, json_t *card, const struct cd_inputs *in, const char *svg)
{
	json_t *d = json_object();
	const json_t *c = in->config;
	const struct am_manifest *tr = train_run(in);

	cd_md(m, "## Model Details\n\n");
	if (c) {
		static const char *const keys[] = {
		    "model_type",  "n_layer",	 "n_head",  "n_embd",
		    "n_positions", "vocab_size", "n_inner", "activation_function"};
		json_t *arch = json_object();
		json_t *archs = json_object_get(c, "architectures");
		cd_md(m, "| architecture | value |\n|---|---|\n");
		if (json_is_array(archs) && json_is_string(json_array_get(archs, 0))) {
			cd_md(m, "| architectures | ");
			md_num(m, archs);
			cd_md(m, " |\n");
			json_object_set(arch, "architectures", archs);
		}
		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
			json_t *v = json_object_get(c, keys[i]);
			if (!v)
				continue;
			cd_md(m, "| %s | ", keys[i]);
			md_num(m, v);
			cd_md(m, " |\n");
			json_object_set(arch, keys[i], v);
		}
		int64_t np = cd_gpt2_params(c);
		cd_md(m, "| parameters | %lld |\n", (long long)np);
		json_object_set_new(arch, "parameters", json_integer(np));
		const char *fp = str(c, "quern_tokenizer");
		if (!fp && tr)
			fp = str(tr->root, "tokenizer");
		cd_md(m, "| tokenizer fingerprint | %s%s%s |\n", fp ? "`" : "", fp ? fp : "-",
		      fp ? "`" : "");
		json_object_set_new(arch, "tokenizer", fp ? json_string(fp) : json_null());
		cd_md(m, "\n");
		json_object_set_new(d, "architecture", arch);
	} else {
		cd_md(m, "No checkpoint config.json was given.\n\n");
	}
	if (in->adapter) {
		static const char *const keys[] = {"peft_type",	     "r",
						   "lora_alpha",     "lora_dropout",
						   "target_modules", "base_model_name_or_path"};
		json_t *a = json_object();
		cd_md(m, "A LoRA adapter on the base model:\n\n| adapter | value |\n|---|---|\n");
		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
			json_t *v = json_object_get(in->adapter, keys[i]);
			if (!v)
				continue;
			cd_md(m, "| %s | ", keys[i]);
			md_num(m, v);
			cd_md(m, " |\n");
			json_object_set(a, keys[i], v);
		}
		cd_md(m, "\n");
		json_object_set_new(d, "adapter", a);
	}
	/* The training run. */
	json_t *t = json_object();
	if (tr || in->state_args || in->npts) {
		cd_md(m, "### Training run\n\n| training | value |\n|---|---|\n");
		if (tr) {
			int64_t steps = am_counter(tr, "steps"), tokens = am_counter(tr, "tokens");
			cd_md(m, "| steps | %lld |\n| tokens | %lld |\n", (long long)steps,
			      (long long)tokens);
			json_object_set_new(t, "steps", json_integer(steps));
			json_object_set_new(t, "tokens", json_integer(tokens));
			if (am_counter(tr, "parameters")) {
				cd_md(m, "| parameters trained | %lld |\n",
				      (long long)am_counter(tr, "parameters"));
				json_object_set_new(t, "parameters_trained",
						    json_integer(am_counter(tr, "parameters")));
			}
			if (tr->started) {
				cd_md(m, "| started | ");
				cd_md_text(m, tr->started);
				cd_md(m, " |\n");
				json_object_set_new(t, "started", json_string(tr->started));
			}
			if (tr->finished) {
				cd_md(m, "| finished | ");
				cd_md_text(m, tr->finished);
				cd_md(m, " |\n");
				json_object_set_new(t, "finished", json_string(tr->finished));
			}
		}
		double ls, vs, l = last_of(in, 0, &ls), v = last_of(in, 1, &vs);
		if (isfinite(l)) {
			cd_md(m, "| final training loss | %.4f (step %g) |\n", l, ls);
			json_object_set_new(t, "final_loss", json_real(l));
			json_object_set_new(t, "final_loss_step", json_real(ls));
		}
		if (isfinite(v)) {
			cd_md(m, "| final validation loss | %.4f (step %g) |\n", v, vs);
			json_object_set_new(t, "final_val_loss", json_real(v));
			json_object_set_new(t, "final_val_loss_step", json_real(vs));
		}
		cd_md(m, "\n");
		json_t *args = json_object_get(in->state_args, "args");
		if (json_is_object(args)) {
			const char *k;
			json_t *v2;
			cd_md(m, "Hyperparameters (from the training state):\n\n| hyperparameter | "
				 "value |\n|---|---|\n");
			json_object_foreach(args, k, v2)
			{
				cd_md(m, "| ");
				cd_md_text(m, k);
				cd_md(m, " | ");
				md_num(m, v2);
				cd_md(m, " |\n");
			}
			cd_md(m, "\n");
			json_object_set(t, "hyperparameters", args);
		}
		json_t *argv = tr ? json_object_get(tr->root, "argv") : NULL;
		if (json_is_array(argv)) {
			size_t i;
			json_t *x;
			cd_md(m, "Command line (run manifest): `");
			json_array_foreach(argv, i, x) if (json_is_string(x))
			{
				cd_md(m, "%s", i ? " " : "");
				for (const char *s = json_string_value(x); *s; s++)
					cd_md(m, "%c",
					      *s == '`' || (unsigned char)*s < 0x20 ? ' ' : *s);
			}
			cd_md(m, "`\n\n");
			json_object_set(t, "argv", argv);
		}
	}
	json_object_set_new(d, "training", t);
	cd_md_prompt(m, "Who developed the model (person or organisation), and when? Which version "
			"is this?");
	cd_md_prompt(m, "Under which license is the model released? Where can questions or "
			"comments be sent?");
	cd_md_prompt(m, "Citation details, papers or other resources for more information?");
	(void)svg;
	json_object_set_new(card, "model_details", d);
}

static void quantitative(struct cd_md *m, json_t *card, const struct cd_inputs *in, const char *svg)
{
	json_t *q = json_object(), *ev = json_array();

	cd_md(m, "## Quantitative Analyses\n\n");
	/* Evaluation results, lm-eval's layout: "metric,filter" and "metric_stderr,filter". */
	for (size_t i = 0; i < in->evals.n; i++) {
		json_t *res = json_object_get(in->evals.v[i], "results"), *task;
		const char *tname;
		if (i == 0)
			cd_md(m, "### Evaluation results\n\n| task | metric | filter | value | "
				 "stderr | samples |\n|---|---|---|---:|---:|---:|\n");
		json_object_foreach(res, tname, task)
		{
			const char *key;
			json_t *v;
			json_t *ns =
			    json_object_get(json_object_get(in->evals.v[i], "n-samples"), tname);
			json_object_foreach(task, key, v)
			{
				const char *comma = strchr(key, ',');
				size_t ml = comma ? (size_t)(comma - key) : strlen(key);
				char metric[256], se[300];
				if (!json_is_number(v) || ml >= sizeof metric ||
				    (ml > 7 && !memcmp(key + ml - 7, "_stderr", 7)))
					continue;
				memcpy(metric, key, ml);
				metric[ml] = 0;
				snprintf(se, sizeof se, "%s_stderr%s", metric, comma ? comma : "");
				json_t *sev = json_object_get(task, se);
				int64_t n = cd_int(ns, "effective", cd_int(ns, "original", -1));
				cd_md(m, "| ");
				cd_md_text(m, tname);
				cd_md(m, " | ");
				cd_md_text(m, metric);
				cd_md(m, " | ");
				cd_md_text(m, comma ? comma + 1 : "none");
				cd_md(m, " | %.4f | ", json_number_value(v));
				if (json_is_number(sev))
					cd_md(m, "%.4f", json_number_value(sev));
				else
					cd_md(m, "-");
				if (n >= 0)
					cd_md(m, " | %lld |\n", (long long)n);
				else
					cd_md(m, " | - |\n");
				json_array_append_new(
				    ev, json_pack(
					    "{s:s,s:s,s:s,s:f,s:o,s:o}", "task", tname, "metric",
					    metric, "filter", comma ? comma + 1 : "none", "value",
					    json_number_value(v), "stderr",
					    json_is_number(sev) ? json_real(json_number_value(sev))
								: json_null(),
					    "samples", n >= 0 ? json_integer(n) : json_null()));
			}
		}
		if (i + 1 == in->evals.n)
			cd_md(m, "\n");
	}
	json_object_set_new(q, "evaluation", ev);
	/* Memorization: training against held-out. */
	json_t *mem = json_array();
	for (size_t i = 0; i < in->memos.n; i++) {
		const json_t *r = in->memos.v[i], *tr = json_object_get(r, "train"),
			     *ho = json_object_get(r, "heldout");
		static const char *const keys[] = {"documents", "exact_match", "token_match",
						   "lcp_mean", "lcp_median"};
		cd_md(m,
		      "### Memorization\n\nDiscoverable memorization (Carlini et al. 2022): a "
		      "%lld-token prefix of a document, the greedy %lld-token continuation "
		      "compared with the document (score %s).\n\n| metric | training | held-out | "
		      "difference |\n|---|---:|---:|---:|\n",
		      (long long)cd_int(r, "prefix", 0), (long long)cd_int(r, "suffix", 0),
		      str(r, "score") ? str(r, "score") : "-");
		json_t *o = json_object();
		for (size_t k = 0; k < 5; k++) {
			cd_md(m, "| %s | ", keys[k]);
			md_num(m, json_object_get(tr, keys[k]));
			cd_md(m, " | ");
			md_num(m, json_object_get(ho, keys[k]));
			cd_md(m, " | ");
			md_num(m, json_object_get(json_object_get(r, "difference"), keys[k]));
			cd_md(m, " |\n");
		}
		cd_md(m, "\n");
		json_object_set_new(o, "prefix", json_integer(cd_int(r, "prefix", 0)));
		json_object_set_new(o, "suffix", json_integer(cd_int(r, "suffix", 0)));
		json_object_set(o, "train", (json_t *)tr);
		json_object_set(o, "heldout", (json_t *)ho);
		json_object_set(o, "difference", json_object_get(r, "difference"));
		json_array_append_new(mem, o);
	}
	json_object_set_new(q, "memorization", mem);
	/* Canary exposure by repetitions. */
	json_t *can = json_array();
	for (size_t i = 0; i < in->canaries.n; i++) {
		json_t *by = json_object_get(in->canaries.v[i], "by_reps"), *r;
		size_t k;
		cd_md(m,
		      "### Canary exposure\n\nThe Secret Sharer (Carlini et al. 2019): exposure "
		      "in bits of canaries inserted into the training data, by repetitions "
		      "(log2 of the candidates at most).\n\n| repetitions | canaries | exposure "
		      "mean | min | max | skew-normal mean |\n|---:|---:|---:|---:|---:|---:|\n");
		json_array_foreach(by, k, r)
		{
			static const char *const keys[] = {
			    "reps",	    "canaries",	    "exposure_mean",
			    "exposure_min", "exposure_max", "exposure_skewnorm_mean"};
			for (size_t j = 0; j < 6; j++) {
				cd_md(m, "| ");
				md_num(m, json_object_get(r, keys[j]));
				cd_md(m, " ");
			}
			cd_md(m, "|\n");
			json_array_append(can, r);
		}
		cd_md(m, "\n");
	}
	json_object_set_new(q, "canaries", can);
	/* The loss curve. */
	json_t *pts = json_array();
	if (in->npts) {
		cd_md(m, "### Training loss\n\n");
		if (svg) {
			const char *base = strrchr(svg, '/');
			cd_md(m, "![Training and validation loss by step](");
			cd_md_text(m, base ? base + 1 : svg);
			cd_md(m, ")\n\n");
		}
		cd_md(m, "| step | training loss | validation loss |\n|---:|---:|---:|\n");
		size_t stride = in->npts / TABLE_POINTS + 1;
		for (size_t i = 0; i < in->npts; i++) {
			const struct cd_point *p = &in->pts[i];
			json_array_append_new(pts, json_pack("{s:o,s:o,s:o}", "step", jnum(p->step),
							     "loss", jnum(p->loss), "val_loss",
							     jnum(p->val_loss)));
			if (i % stride && i + 1 < in->npts && !isfinite(p->val_loss))
				continue;
			cd_md(m, "| %g | ", p->step);
			if (isfinite(p->loss))
				cd_md(m, "%.4f", p->loss);
			cd_md(m, " | ");
			if (isfinite(p->val_loss))
				cd_md(m, "%.4f", p->val_loss);
			cd_md(m, " |\n");
		}
		cd_md(m, "\n");
	}
	json_object_set_new(
	    q, "loss_curve",
	    json_pack("{s:o,s:o}", "svg",
		      svg ? json_string(strrchr(svg, '/') ? strrchr(svg, '/') + 1 : svg)
			  : json_null(),
		      "points", pts));
	if (!in->evals.n && !in->memos.n && !in->canaries.n && !in->npts)
		cd_md(m, "No evaluation, memorization or canary results and no training metrics "
			 "were given.\n\n");
	cd_md_prompt(m, "How do the results differ across the factors above (disaggregated "
			"evaluation), and with what confidence?");
	json_object_set_new(card, "quantitative_analyses", q);
}

static void ethical(struct cd_md *m, json_t *card, const struct cd_inputs *in)
{
	json_t *sc = json_array();
	cd_md(m, "## Ethical Considerations\n\n");
	for (size_t i = 0; i < in->scans.n; i++) {
		const json_t *s = in->scans.v[i], *f = json_object_get(s, "findings");
		const json_t *probe = json_object_get(s, "probe");
		json_t *o = json_object();
		const char *k;
		json_t *v;
		if (probe)
			cd_md(m,
			      "Generation probe (quern-audit probe): %lld generations from %lld "
			      "prompts scanned for personal data and secrets: %lld findings "
			      "reported",
			      (long long)cd_int(probe, "generations", 0),
			      (long long)cd_int(probe, "prompts", 0),
			      (long long)cd_int(f, "reported", 0));
		else
			cd_md(m,
			      "Scan (quern-audit scan) of %lld documents: %lld findings reported",
			      (long long)cd_int(s, "documents", 0),
			      (long long)cd_int(f, "reported", 0));
		if (json_object_get(f, "regurgitated"))
			cd_md(m,
			      ", %lld of them values that also occur in the training data "
			      "(regurgitated)",
			      (long long)cd_int(f, "regurgitated", 0));
		cd_md(m, ".\n\n");
		json_object_set_new(o, "kind", json_string(probe ? "probe" : "scan"));
		json_object_set_new(o, "documents", json_integer(cd_int(s, "documents", 0)));
		json_object_set_new(o, "reported", json_integer(cd_int(f, "reported", 0)));
		json_object_set_new(o, "suppressed", json_integer(cd_int(f, "suppressed", 0)));
		if (json_object_get(f, "regurgitated"))
			json_object_set_new(o, "regurgitated",
					    json_integer(cd_int(f, "regurgitated", 0)));
		json_t *bt = json_object_get(f, "by_type");
		if (json_object_size(bt)) {
			cd_md(m, "| type | findings |\n|---|---:|\n");
			json_object_foreach(bt, k, v)
			{
				cd_md(m, "| ");
				cd_md_text(m, k);
				cd_md(m, " | %lld |\n", (long long)json_integer_value(v));
			}
			cd_md(m, "\n");
			json_object_set(o, "by_type", bt);
		}
		json_t *gates = json_object_get(s, "gates"), *g, *gj = json_array();
		size_t gi;
		json_array_foreach(gates, gi, g)
		{
			if (!gi)
				cd_md(m, "| policy gate | observed | result |\n|---|---:|---|\n");
			int ok = json_is_true(json_object_get(g, "passed"));
			cd_md(m, "| ");
			cd_md_text(m, str(g, "rule") ? str(g, "rule") : str(g, "id"));
			cd_md(m, " | %lld | %s |\n", (long long)cd_int(g, "observed", 0),
			      ok ? "passed" : "**failed**");
			json_array_append_new(
			    gj, json_pack("{s:s?,s:I,s:b}", "gate", str(g, "rule"), "observed",
					  (json_int_t)cd_int(g, "observed", 0), "passed", ok));
		}
		if (json_array_size(gates))
			cd_md(m, "\n");
		json_object_set_new(o, "gates", gj);
		json_object_set_new(o, "passed",
				    json_boolean(json_is_true(json_object_get(s, "passed"))));
		json_array_append_new(sc, o);
	}
	if (!in->scans.n)
		cd_md(m, "No scan or probe summary was given.\n\n");
	cd_md_prompt(m, "Does the model use sensitive data (health, political opinions, ...)? Is "
			"it intended to inform decisions about matters central to human life or "
			"flourishing?");
	cd_md_prompt(m, "What risks and harms may its use bring, and what was done to mitigate "
			"them?");
	json_object_set_new(card, "ethical_considerations", json_pack("{s:o}", "scans", sc));
}

static void training_data(struct cd_md *m, json_t *card, const struct cd_inputs *in)
{
	json_t *td = json_object();
	cd_md(m, "## Training Data\n\n");
	if (cd_runs_of(in, "quern-ingest")) {
		int64_t f = cd_counter(in, "quern-ingest", "inputs"),
			d = cd_counter(in, "quern-ingest", "documents");
		cd_md(m, "- quern-ingest: %lld source files into %lld documents.\n", (long long)f,
		      (long long)d);
		json_object_set_new(td, "source_files", json_integer(f));
		json_object_set_new(td, "documents_ingested", json_integer(d));
	}
	int64_t din = 0, dout = 0, dups = 0;
	for (size_t i = 0; i < in->stats.n; i++) {
		json_t *steps = json_object_get(in->stats.v[i], "steps"), *s;
		size_t k;
		din += cd_int(in->stats.v[i], "documents_in", 0);
		dout += cd_int(in->stats.v[i], "documents_out", 0);
		json_array_foreach(steps, k, s)
		{
			const char *n = str(s, "step");
			if (n && (!strcmp(n, "exact_dedup") || !strcmp(n, "near_dedup")))
				dups +=
				    cd_int(s, "documents_in", 0) - cd_int(s, "documents_out", 0);
		}
	}
	if (in->stats.n) {
		cd_md(m,
		      "- quern-clean: %lld documents in, %lld kept, %lld removed (%lld as "
		      "duplicates).\n",
		      (long long)din, (long long)dout, (long long)(din - dout), (long long)dups);
		json_object_set_new(td, "documents_cleaned_in", json_integer(din));
		json_object_set_new(td, "documents_kept", json_integer(dout));
		json_object_set_new(td, "duplicates_removed", json_integer(dups));
	}
	if (cd_runs_of(in, "quern-tokenize")) {
		int64_t tr = cd_counter(in, "quern-tokenize", "documents_train"),
			va = cd_counter(in, "quern-tokenize", "documents_val"),
			tok = cd_counter(in, "quern-tokenize", "tokens");
		cd_md(m,
		      "- quern-tokenize: %lld training and %lld validation documents, %lld "
		      "tokens.\n",
		      (long long)tr, (long long)va, (long long)tok);
		json_object_set_new(td, "documents_train", json_integer(tr));
		json_object_set_new(td, "documents_val", json_integer(va));
		json_object_set_new(td, "tokens", json_integer(tok));
	}
	for (size_t i = 0; i < in->shards.n; i++) {
		json_t *sp = json_object_get(in->shards.v[i], "splits");
		cd_md(m, "- token shards: %lld training tokens, %lld validation tokens.\n",
		      (long long)cd_int(json_object_get(sp, "train"), "tokens", 0),
		      (long long)cd_int(json_object_get(sp, "val"), "tokens", 0));
	}
	if (!json_object_size(td) && !in->shards.n)
		cd_md(m, "No manifests of the data pipeline were given.\n");
	cd_md(m, "\n");
	cd_md_prompt(m,
		     "What are the training data's sources, and why were they chosen? (quern-audit "
		     "datasheet and eu-summary describe them in full.)");
	json_object_set_new(card, "training_data", td);
}

static void metrics_and_eval_data(struct cd_md *m, json_t *card, const struct cd_inputs *in)
{
	json_t *names = json_array(), *tasks = json_array();
	cd_md(m, "## Metrics\n\n");
	for (size_t i = 0; i < in->evals.n; i++) {
		json_t *res = json_object_get(in->evals.v[i], "results"), *task;
		const char *tn;
		json_object_foreach(res, tn, task)
		{
			const char *key;
			json_t *v;
			json_object_foreach(task, key, v)
			{
				if (!json_is_number(v) || strstr(key, "_stderr"))
					continue;
				char mname[256];
				snprintf(mname, sizeof mname, "%.*s", (int)strcspn(key, ","), key);
				int dup = 0;
				size_t k;
				json_t *x;
				json_array_foreach(names, k, x) dup |=
				    !strcmp(json_string_value(x), mname);
				if (!dup)
					json_array_append_new(names, json_string(mname));
			}
		}
	}
	if (in->memos.n)
		json_array_append_new(names, json_string("discoverable memorization"));
	if (in->canaries.n)
		json_array_append_new(names, json_string("canary exposure"));
	if (in->scans.n)
		json_array_append_new(names, json_string("PII and secret findings"));
	if (json_array_size(names)) {
		cd_md(m, "Computed: ");
		md_num(m, names);
		cd_md(m, ". Standard errors are given where the evaluation computed them.\n\n");
	} else {
		cd_md(m, "No metrics were computed from the inputs given.\n\n");
	}
	cd_md_prompt(m, "Which performance measures matter for the intended use, and why? Which "
			"decision thresholds are used?");
	cd_md(m, "## Evaluation Data\n\n");
	for (size_t i = 0; i < in->evals.n; i++) {
		json_t *cfgs = json_object_get(in->evals.v[i], "configs"), *c;
		const char *tn;
		json_object_foreach(cfgs, tn, c)
		{
			cd_md(m, "- task ");
			cd_md_text(m, tn);
			if (str(c, "dataset_path")) {
				cd_md(m, ": ");
				cd_md_text(m, str(c, "dataset_path"));
			}
			json_t *nsh =
			    json_object_get(json_object_get(in->evals.v[i], "n-shot"), tn);
			if (json_is_integer(nsh))
				cd_md(m, ", %lld-shot", (long long)json_integer_value(nsh));
			cd_md(m, "\n");
			json_array_append_new(tasks, json_pack("{s:s,s:s?}", "task", tn, "dataset",
							       str(c, "dataset_path")));
		}
	}
	for (size_t i = 0; i < in->memos.n; i++) {
		json_t *ho = json_object_get(in->memos.v[i], "heldout");
		cd_md(m, "- memorization baseline: %lld held-out documents",
		      (long long)cd_int(ho, "documents", 0));
		if (str(ho, "source")) {
			cd_md(m, " from ");
			cd_md_text(m, str(ho, "source"));
		}
		cd_md(m, "\n");
	}
	if (!json_array_size(tasks) && !in->memos.n)
		cd_md(m, "No evaluation results were given.\n");
	cd_md(m, "\n");
	cd_md_prompt(m, "Why were these evaluation datasets chosen, and how were they "
			"preprocessed?");
	json_object_set_new(card, "metrics", names);
	json_object_set_new(card, "evaluation_data", tasks);
}

static void caveats(struct cd_md *m, json_t *card, const struct cd_inputs *in)
{
	json_t *c = json_array();
	char buf[512];
	cd_md(m, "## Caveats and Recommendations\n\n");
	double ls, vs, l = last_of(in, 0, &ls), v = last_of(in, 1, &vs);
	if (isfinite(l) && isfinite(v) && v > l * 1.2) {
		snprintf(
		    buf, sizeof buf,
		    "The final validation loss (%.4f) is more than 20%% above the training loss "
		    "(%.4f): the model may overfit its training data.",
		    v, l);
		json_array_append_new(c, json_string(buf));
	}
	for (size_t i = 0; i < in->memos.n; i++) {
		double d = json_number_value(
		    json_object_get(json_object_get(in->memos.v[i], "difference"), "exact_match"));
		if (d > 0.05) {
			snprintf(buf, sizeof buf,
				 "%.0f%% more training documents than held-out ones are reproduced "
				 "word for word: the model memorizes its training data.",
				 100 * d);
			json_array_append_new(c, json_string(buf));
		}
	}
	for (size_t i = 0; i < in->scans.n; i++) {
		json_t *f = json_object_get(in->scans.v[i], "findings");
		if (cd_int(f, "regurgitated", 0) > 0) {
			snprintf(buf, sizeof buf,
				 "Generations repeated %lld personal-data or secret values of the "
				 "training data.",
				 (long long)cd_int(f, "regurgitated", 0));
			json_array_append_new(c, json_string(buf));
		}
		if (json_is_false(json_object_get(in->scans.v[i], "passed"))) {
			snprintf(buf, sizeof buf, "A %s failed its policy gates.",
				 json_object_get(in->scans.v[i], "probe") ? "generation probe"
									  : "scan");
			json_array_append_new(c, json_string(buf));
		}
	}
	size_t i;
	json_t *x;
	json_array_foreach(c, i, x)
	{
		cd_md(m, "- ");
		cd_md_text(m, json_string_value(x));
		cd_md(m, "\n");
	}
	if (json_array_size(c))
		cd_md(m, "\n");
	cd_md_prompt(m, "Which further tests were run or should be? Which uses are discouraged, "
			"and what should users know about the model's limits?");
	json_object_set_new(card, "caveats", c);
}

/* ---- main ---- */

static const struct option longopts[] = {
    {"output", required_argument, NULL, 'o'}, {"json", required_argument, NULL, 'J'},
    {"name", required_argument, NULL, 'N'},   {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
};

static char *svg_path_for(const char *out)
{
	size_t n = strlen(out);
	const char *dot = n > 3 && !strcmp(out + n - 3, ".md") ? out + n - 3 : out + n;
	char *p = malloc((size_t)(dot - out) + 16);
	if (p)
		sprintf(p, "%.*s-loss.svg", (int)(dot - out), out);
	return p;
}

int modelcard_main(int argc, char **argv)
{
	const char *output = NULL, *json_out = NULL, *name = "model";
	struct cd_inputs in = {0};
	int c, rc = 0;

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
		return qn_usage_error("model-card needs at least one FILE or folder");
	for (int i = optind; i < argc; i++)
		if (cd_add(&in, argv[i]) < 0)
			rc = 1;
	if (!in.config && !in.npts && !in.nruns && !in.evals.n && !in.memos.n && !in.canaries.n &&
	    !in.scans.n && !in.stats.n && !in.shards.n) {
		qn_error("nothing to write a model card from");
		cd_inputs_release(&in);
		return 1;
	}
	char *svg = output && in.npts ? svg_path_for(output) : NULL;
	if (svg && loss_svg(&in, svg, name) < 0) {
		free(svg);
		svg = NULL;
		rc = 1;
	}

	struct cd_md m;
	char date[32];
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde)
		qn_time_rfc3339(strtoll(sde, NULL, 10), date);
	else
		qn_now_rfc3339(date);
	cd_md_init(&m, "model owner");
	json_t *card =
	    json_pack("{s:s,s:i,s:s,s:s,s:s}", "format", "quern-model-card", "version", 1, "name",
		      name, "generated", date, "generator", "quern-audit model-card " QN_VERSION);
	cd_md(&m, "# Model Card: ");
	cd_md_text(&m, name);
	cd_md(&m,
	      "\n\n*Generated by quern-audit model-card %s on %s, after Mitchell et al., \"Model "
	      "Cards for Model Reporting\". The figures come from the checkpoint and the records "
	      "given; each passage marked \"To be answered by the model owner\" needs a "
	      "person.*\n\n",
	      QN_VERSION, date);
	details(&m, card, &in, svg);
	cd_md(&m, "## Intended Use\n\n");
	cd_md_prompt(&m, "What are the primary intended uses and users of the model?");
	cd_md_prompt(&m, "Which uses are out of scope?");
	cd_md(&m, "## Factors\n\n");
	cd_md_prompt(&m,
		     "Which relevant factors (groups, instrumentation, environments) may affect "
		     "the model's performance? Which were evaluated?");
	metrics_and_eval_data(&m, card, &in);
	training_data(&m, card, &in);
	quantitative(&m, card, &in, svg);
	ethical(&m, card, &in);
	caveats(&m, card, &in);
	{
		size_t n = 0;
		for (const char *p = m.b.data; p && (p = strstr(p, "To be answered by")); p++)
			n++;
		json_object_set_new(card, "to_be_answered", json_integer((json_int_t)n));
	}
	cd_inputs_release(&in);
	free(svg);
	if (!card || m.oom) {
		qn_error("out of memory");
		rc = 1;
	} else {
		if (json_out && cd_json_write(card, json_out) < 0)
			rc = 1;
		if (cd_md_write(&m, output) < 0)
			rc = 1;
	}
	json_decref(card);
	qn_buf_release(&m.b);
	return output ? rc : qn_close_stdout(rc);
}
