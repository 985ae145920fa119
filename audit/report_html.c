/*
 * report_html.c - the scan's HTML report (report.h): one self-contained
 * page for people, readable offline, in print and by screen readers.
 *
 * Order: a header with the verdict; the failed gates first (a red list,
 * #failed-gates); the totals; bar charts of reported findings by type,
 * severity and source (#chart-type, #chart-severity, #chart-source); when
 * earlier summaries are given, a line chart of reported findings per run by
 * severity (#chart-trend) with its numbers as a table; every gate; the top
 * findings (most severe first, masked excerpts only); the inputs. Given
 * model results (report_html_model), a section on the model comes after
 * the charts (#model): evaluation metrics (#eval-table), memorization with
 * a chart (#memo-table, #chart-memo), canary exposure (#canary-table,
 * #chart-canary).
 *
 * Everything is inline: CSS in <style>, charts as SVG drawn here, no script,
 * and a Content-Security-Policy that forbids fetching anything. Every string
 * from the data is cleaned and HTML-escaped (report_util.h) and cut to a
 * bounded length; class names and colours come only from fixed tables, never
 * from the data. Lists are capped (charts show the top entries and an
 * "other" bar, tables say how many rows they leave out).
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "manifests.h"
#include "report.h"
#include "report_util.h"

#define BAR_ROWS 15	 /* bars per chart; the rest become "other" */
#define TREND_RUNS 30	 /* latest runs in the trend chart, this one included */
#define TOP_FINDINGS 100 /* rows of the findings table */
#define MAX_ROWS 1000	 /* rows of the gate and input tables */
#define LABEL_CP 28	 /* code points of a chart label */
#define CELL_CP 300	 /* of a table cell */

/* The page being built; after the first failure every append is a no-op. */
struct page {
	struct qn_buf b;
	int err;
};

static void out(struct page *p, const char *s)
{
	if (!p->err && qn_buf_adds(&p->b, s) < 0)
		p->err = 1;
}

static void __attribute__((format(printf, 2, 3))) outf(struct page *p, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	int n;

	if (p->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	/* Only numbers and fixed text go through here: 512 bytes is plenty. */
	if (n < 0 || (size_t)n >= sizeof small || qn_buf_adds(&p->b, small) < 0)
		p->err = 1;
}

/* Data text, escaped for element content (REP_TEXT) or an attribute (REP_ATTR). */
static void esc(struct page *p, const char *s, size_t maxcp, enum rep_esc how)
{
	if (!p->err && rep_texts(&p->b, s, maxcp, how) < 0)
		p->err = 1;
}

static void escj(struct page *p, const json_t *v, size_t maxcp)
{
	if (!p->err && rep_jtext(&p->b, v, maxcp, REP_TEXT) < 0)
		p->err = 1;
}

/* A count with thousands separators: 1234567 -> "1,234,567". */
static void count(struct page *p, long long n)
{
	char d[32], o[48];
	int len = snprintf(d, sizeof d, "%lld", n), k = 0;

	for (int i = 0; i < len; i++) {
		if (i && d[i - 1] != '-' && (len - i) % 3 == 0)
			o[k++] = ',';
		o[k++] = d[i];
	}
	o[k] = 0;
	out(p, o);
}

static void bytes(struct page *p, long long n)
{
	static const char *const unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1000 && u < 5) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		outf(p, "%lld B", n);
	else
		outf(p, "%.1f %s", v, unit[u]);
}

/* Severity: a rank 0 (unknown) .. 4 (critical), its class and its colour. */
static const char *const sev_name[] = {"other", "low", "medium", "high", "critical"};
static const char *const sev_color[] = {"#6e7781", "#2f6fb5", "#b7791f", "#d1470f", "#9b1c1c"};

static const char css[] =
    ":root{color-scheme:light}"
    "body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica "
    "Neue',Arial,sans-serif;color:#1f2328;background:#fff}"
    "header,main,footer{max-width:1100px;margin:0 auto;padding:0 1.25rem}"
    "header{padding-top:1.25rem}"
    "h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.25rem;margin:1.75rem 0 .5rem}"
    ".meta{color:#57606a;margin:0}"
    ".verdict{display:inline-block;padding:.1rem .6rem;border-radius:4px;font-weight:700;"
    "color:#fff;vertical-align:middle;font-size:1rem}"
    ".verdict-fail{background:#b3261e}.verdict-pass{background:#1a7f37}"
    "#gates{margin-top:1rem;padding:.75rem 1rem;border-radius:6px;border:2px solid #1a7f37;"
    "background:#eefbf1}"
    "#gates.failed{border-color:#b3261e;background:#fdecea}"
    "#gates h2{margin:0 0 .25rem}#gates.failed h2{color:#8c1d18}"
    "#failed-gates{margin:.25rem 0;padding-left:1.25rem}"
    "#failed-gates li{color:#8c1d18;margin:.2rem 0}"
    "#failed-gates .gate-name{font-weight:700}"
    ".totals{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0 0;padding:0}"
    ".totals div{border:1px solid #d0d7de;border-radius:6px;padding:.4rem .8rem;min-width:8rem}"
    ".totals dt{color:#57606a;font-size:.85rem}.totals dd{margin:0;font-size:1.3rem;"
    "font-weight:600;font-variant-numeric:tabular-nums}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1rem}"
    "figure{margin:0;break-inside:avoid}figcaption{font-weight:600;margin-bottom:.25rem}"
    "svg{display:block;width:100%;height:auto}"
    "svg text{font:12px system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "fill:#1f2328}"
    "svg .axis{stroke:#8c959f;stroke-width:1}svg .grid{stroke:#d8dee4;stroke-width:1}"
    "table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.25rem 0}"
    "caption{text-align:left;color:#57606a;padding:.25rem 0}"
    "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d0d7de;"
    "vertical-align:top}"
    "th{background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem;"
    "overflow-wrap:anywhere}"
    ".sev{display:inline-block;min-width:4.5rem;padding:0 .4rem;border-radius:3px;color:#fff;"
    "font-size:.8rem;font-weight:600;text-align:center}"
    ".sev-critical{background:#9b1c1c}.sev-high{background:#d1470f}"
    ".sev-medium{background:#8a5a00}.sev-low{background:#2f6fb5}.sev-other{background:#6e7781}"
    ".pass{color:#1a7f37;font-weight:600}.fail{color:#b3261e;font-weight:700}"
    ".note{color:#57606a;font-size:.9rem}"
    "footer{color:#57606a;font-size:.85rem;padding-bottom:2rem;margin-top:2rem}"
    "@media print{body{font-size:11pt}header,main,footer{max-width:none;padding:0}"
    ".charts{display:block}figure,tr,#gates{break-inside:avoid}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/* A chart label: the head of a name, or the tail of a path ("…/docs/a.jsonl"). */
static void label(struct page *p, const char *s, int tail, size_t maxcp)
{
	struct qn_buf clean;
	size_t cps = 0, i;

	qn_buf_init(&clean, 1 << 20);
	if (rep_texts(&clean, s, 4096, REP_PLAIN) < 0) {
		p->err = 1;
		qn_buf_release(&clean);
		return;
	}
	for (i = 0; i < clean.len; i++)
		cps += ((unsigned char)clean.data[i] & 0xC0) != 0x80;
	if (!tail || cps <= maxcp) {
		esc(p, clean.data ? clean.data : "", maxcp, REP_TEXT);
	} else {
		size_t keep = maxcp - 1, k = clean.len;
		while (keep && k > 0) {
			k--;
			keep -= ((unsigned char)clean.data[k] & 0xC0) != 0x80;
		}
		out(p, "\xE2\x80\xA6");
		esc(p, clean.data + k, maxcp, REP_TEXT);
	}
	qn_buf_release(&clean);
}

/*
 * A horizontal bar chart of kv (largest first): at most BAR_ROWS bars, the
 * rest summed into "other". color picks each bar's fill from fixed tables.
 */
static void bar_chart(struct page *p, const char *id, const char *title, const struct rep_kv *kv,
		      size_t n, const char *fill, int by_severity, int tail)
{
	const int w = 560, lx = 190, bx = 198, rows_h = 24, top = 6;
	size_t rows = n > BAR_ROWS ? BAR_ROWS - 1 : n;
	int has_other = n > BAR_ROWS;
	long long other = 0, max = 1;
	int h;

	for (size_t i = rows; i < n; i++)
		other = rep_add(other, kv[i].n);
	for (size_t i = 0; i < rows; i++)
		if (kv[i].n > max)
			max = kv[i].n;
	if (other > max)
		max = other;
	h = top * 2 + (int)(rows + has_other + (n == 0)) * rows_h;
	outf(p, "<figure id=\"%s\" class=\"chart\"><figcaption id=\"%s-t\">%s</figcaption>\n", id,
	     id, title);
	outf(p,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
	     "aria-labelledby=\"%s-t %s-d\" style=\"max-width:%dpx\">",
	     w, h, id, id, w);
	outf(p, "<desc id=\"%s-d\">", id);
	for (size_t i = 0; i < rows && i < 50; i++) {
		esc(p, kv[i].name, 64, REP_TEXT);
		outf(p, ": %lld%s", kv[i].n, i + 1 < rows || has_other ? "; " : "");
	}
	if (has_other)
		outf(p, "other: %lld", other);
	if (!n)
		out(p, "no findings");
	out(p, "</desc>\n");
	if (!n)
		outf(p, "<text x=\"%d\" y=\"%d\">No reported findings.</text>", 8, top + 16);
	outf(p, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", bx, top, bx,
	     h - top);
	for (size_t i = 0; i <= rows; i++) {
		const char *name = i < rows ? kv[i].name : "other";
		long long v = i < rows ? kv[i].n : other;
		int y = top + (int)i * rows_h, bw;
		const char *c = fill;

		if (i == rows && !has_other)
			break;
		bw = (int)((double)v / (double)max * (w - bx - 70) + 0.5);
		if (v > 0 && bw < 2)
			bw = 2;
		if (by_severity && i < rows)
			c = sev_color[rep_sev_rank(name)];
		out(p, "<g class=\"bar\"><title>");
		esc(p, name, CELL_CP, REP_TEXT);
		outf(p, ": %lld</title>", v);
		outf(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", lx, y + 16);
		if (i < rows)
			label(p, name, tail, LABEL_CP);
		else
			outf(p, "other (%zu more)", n - rows);
		outf(p,
		     "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
		     "<text x=\"%d\" y=\"%d\">",
		     bx + 1, y + 3, bw, rows_h - 6, i < rows ? c : "#8c959f", bx + bw + 6, y + 16);
		count(p, v);
		out(p, "</text></g>\n");
	}
	out(p, "</svg></figure>\n");
}

static void chart_of(struct page *p, const json_t *counts, const char *id, const char *title,
		     const char *fill, int by_severity, int tail)
{
	size_t n;
	struct rep_kv *kv = rep_counts(counts, &n);

	if (by_severity && kv) {
		/* Severities read best in their own order, most severe first. */
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0; j--) {
				int a = rep_sev_rank(kv[j - 1].name), b = rep_sev_rank(kv[j].name);
				if (a >= b)
					break;
				struct rep_kv t = kv[j];
				kv[j] = kv[j - 1];
				kv[j - 1] = t;
			}
	}
	bar_chart(p, id, title, kv, n, fill, by_severity, tail);
	free(kv);
}

/* The name a gate goes by: its rule text, else its id. */
static const json_t *gate_label(const json_t *g)
{
	const json_t *v = json_object_get(g, "rule");

	if (!json_is_string(v) || !json_string_length(v))
		v = json_object_get(g, "id");
	return json_is_string(v) ? v : NULL;
}

static int gate_failed(const json_t *g)
{
	const json_t *obs = json_object_get(g, "observed"), *lim = json_object_get(g, "limit");
	int passed = rep_bool(g, "passed", -1);

	if (passed >= 0)
		return !passed;
	return json_is_number(obs) && json_is_number(lim) &&
	       json_number_value(obs) > json_number_value(lim);
}

static void gates_box(struct page *p, const json_t *summary)
{
	const json_t *gates = rep_arr(summary, "gates"), *g;
	size_t ngates = json_array_size(gates), nfailed = 0, shown = 0, i;
	int verdict_failed = rep_bool(summary, "passed", 1) == 0;

	json_array_foreach(gates, i, g) nfailed += json_is_object(g) && gate_failed(g);
	if (!nfailed && !verdict_failed) {
		out(p, "<section id=\"gates\" class=\"passed\" aria-labelledby=\"gates-h\">"
		       "<h2 id=\"gates-h\">");
		if (ngates) {
			out(p, "All ");
			count(p, (long long)ngates);
			out(p, ngates == 1 ? " policy gate passed" : " policy gates passed");
		} else {
			out(p, "No policy gates were set");
		}
		out(p, "</h2></section>\n");
		return;
	}
	out(p, "<section id=\"gates\" class=\"failed\" role=\"alert\" aria-labelledby=\"gates-h\">"
	       "<h2 id=\"gates-h\">");
	if (nfailed) {
		outf(p, "Failed gates: %zu of %zu", nfailed, ngates);
	} else {
		out(p, "The scan failed");
	}
	out(p, "</h2>\n<ul id=\"failed-gates\">\n");
	json_array_foreach(gates, i, g)
	{
		const json_t *reason = json_object_get(g, "reason");
		if (!json_is_object(g) || !gate_failed(g))
			continue;
		if (++shown > MAX_ROWS) {
			outf(p, "<li>and %zu more failed gates</li>\n", nfailed - MAX_ROWS);
			break;
		}
		out(p, "<li class=\"gate-failed\"><span class=\"gate-name\">");
		escj(p, gate_label(g), CELL_CP);
		if (!gate_label(g))
			outf(p, "gate %zu", i + 1);
		out(p, "</span>");
		if (json_is_string(reason) && json_string_length(reason)) {
			out(p, ": ");
			escj(p, reason, 1000);
		}
		out(p, "</li>\n");
	}
	if (!nfailed)
		out(p, "<li class=\"gate-failed\">The summary marks the scan as failed.</li>\n");
	out(p, "</ul></section>\n");
}

static void totals(struct page *p, const json_t *summary)
{
	const json_t *f = rep_obj(summary, "findings");
	const json_t *inputs = rep_arr(summary, "inputs");
	const json_t *errs = rep_obj(summary, "errors");

	out(p, "<section id=\"overview\" aria-label=\"Totals\"><dl class=\"totals\">");
	out(p, "<div><dt>Reported findings</dt><dd>");
	count(p, rep_count(f, "reported", rep_count(f, "total", 0)));
	out(p, "</dd></div><div><dt>Suppressed (baseline)</dt><dd>");
	count(p, rep_count(f, "suppressed", 0));
	out(p, "</dd></div><div><dt>Documents</dt><dd>");
	count(p, rep_count(summary, "documents", 0));
	out(p, "</dd></div><div><dt>Bytes scanned</dt><dd>");
	bytes(p, rep_count(summary, "bytes", 0));
	out(p, "</dd></div><div><dt>Inputs</dt><dd>");
	count(p, (long long)json_array_size(inputs));
	out(p, "</dd></div>");
	if (rep_count(errs, "bad_lines", 0) || rep_count(errs, "scan_errors", 0)) {
		out(p, "<div><dt>Bad lines / scan errors</dt><dd class=\"fail\">");
		count(p, rep_count(errs, "bad_lines", 0));
		out(p, " / ");
		count(p, rep_count(errs, "scan_errors", 0));
		out(p, "</dd></div>");
	}
	out(p, "</dl></section>\n");
}

/* One point of the trend: a run's date and its reported counts. */
struct run_point {
	const json_t *s;
	long long total, sev[5];
	int failed;
};

static void run_point(struct run_point *r, const json_t *s)
{
	const json_t *f = rep_obj(s, "findings"), *by = rep_obj(f, "by_severity");
	const char *key;
	json_t *v;

	memset(r, 0, sizeof *r);
	r->s = s;
	r->total = rep_count(f, "reported", rep_count(f, "total", 0));
	json_object_foreach((json_t *)by, key, v)
	{
		long long n = rep_count_value(v);
		if (n > 0)
			r->sev[rep_sev_rank(key)] = rep_add(r->sev[rep_sev_rank(key)], n);
	}
	r->failed = rep_bool(s, "passed", 1) == 0;
}

/*
 * The run's stamp cut to len characters: 10 is the day ("2026-11-27"), 16
 * adds the time ("2026-11-27 18:00"); "run N" when it has none.
 */
static void run_label(struct page *p, const struct run_point *r, size_t i, size_t len)
{
	const char *c = rep_str(r->s, "created");
	char stamp[20];

	if (c && strlen(c) >= len && len < sizeof stamp) {
		memcpy(stamp, c, len);
		stamp[len] = 0;
		if (len > 10 && stamp[10] == 'T')
			stamp[10] = ' ';
		esc(p, stamp, len, REP_TEXT);
	} else {
		outf(p, "run %zu", i + 1);
	}
}

/*
 * A round axis maximum at or above v that splits into four round steps
 * (1, 2, 2.5 or 5 times a power of ten, never a fraction).
 */
static long long nice_max(long long v)
{
	static const int f[] = {10, 20, 25, 50};

	for (long long m = 1; m < (1LL << 50); m *= 10)
		for (int k = 0; k < 4; k++) {
			long long step = f[k] * m / 10;
			if (f[k] == 25 && m < 10)
				continue;
			if (step && 4 * step >= v)
				return 4 * step;
		}
	return v;
}

static void trends(struct page *p, const json_t *summary, const json_t *const *history,
		   size_t nhistory)
{
	struct run_point pts[TREND_RUNS];
	size_t n = 0, first = 0, i;
	const int w = 900, h = 300, l = 56, r = 72, t = 30, b = 56;
	long long max = 0;
	static const char *const series_color = "#1f2328";

	if (!history || !nhistory)
		return;
	if (nhistory > TREND_RUNS - 1)
		first = nhistory - (TREND_RUNS - 1);
	for (i = first; i < nhistory; i++)
		if (json_is_object(history[i]))
			run_point(&pts[n++], history[i]);
	if (!n)
		return;
	run_point(&pts[n++], summary);
	for (i = 0; i < n; i++)
		if (pts[i].total > max)
			max = pts[i].total;
	max = nice_max(max);

	out(p, "<section id=\"trends\" aria-labelledby=\"trends-h\"><h2 id=\"trends-h\">Trend over "
	       "runs</h2>\n<figure id=\"chart-trend\" class=\"chart\"><figcaption "
	       "id=\"chart-trend-t\">"
	       "Reported findings per run, by severity (red points: gates failed)</figcaption>\n");
	outf(p,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
	     "aria-labelledby=\"chart-trend-t chart-trend-d\" style=\"max-width:%dpx\">"
	     "<desc id=\"chart-trend-d\">Reported findings in the last %zu runs; the table below "
	     "has the numbers.</desc>\n",
	     w, h, w, n);
	double pw = (double)(w - l - r) / (double)(n > 1 ? n - 1 : 1), ph = h - t - b;
#define PX(k) (l + pw * (double)(k))
#define PY(v) (t + ph - ph * (double)(v) / (double)max)
	for (int g = 0; g <= 4; g++) {
		long long v = max / 4 * g;
		outf(p,
		     "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
		     "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
		     l, PY(v), w - r, PY(v), l - 6, PY(v) + 4);
		count(p, v);
		out(p, "</text>\n");
	}
	outf(p, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", l, h - b, w - r,
	     h - b);
	/*
	 * Date labels, with the time when two runs share a day, thinned so that
	 * they do not overlap; the last always shown.
	 */
	size_t len = 10, every;
	for (i = 1; i < n; i++) {
		const char *c0 = rep_str(pts[i - 1].s, "created"),
			   *c1 = rep_str(pts[i].s, "created");
		if (c0 && c1 && strlen(c0) >= 16 && strlen(c1) >= 16 && !strncmp(c0, c1, 10))
			len = 16;
	}
	every = (size_t)ceil((double)(len * 7 + 14) / (pw > 1 ? pw : 1));
	for (i = 0; i < n; i++) {
		if (i % (every ? every : 1) && i + 1 != n)
			continue;
		if (i + 1 != n && n - 1 - i < every && n > 1)
			continue;
		outf(p, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", PX(i), h - b + 18);
		run_label(p, &pts[i], i, len);
		out(p, "</text>\n");
	}
	/* One line per severity that occurs, then the reported total on top. */
	for (int s = 4; s >= -1; s--) {
		long long any = 0;
		for (i = 0; i < n; i++)
			any |= s < 0 || pts[i].sev[s] > 0;
		if (!any)
			continue;
		outf(p, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%d\" points=\"",
		     s < 0 ? series_color : sev_color[s], s < 0 ? 3 : 2);
		for (i = 0; i < n; i++)
			outf(p, "%s%.1f,%.1f", i ? " " : "", PX(i),
			     PY(s < 0 ? pts[i].total : pts[i].sev[s]));
		out(p, "\"/>\n");
	}
	for (i = 0; i < n; i++) {
		outf(p, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"><title>", PX(i),
		     PY(pts[i].total), pts[i].failed ? 5 : 4,
		     pts[i].failed ? "#b3261e" : series_color);
		run_label(p, &pts[i], i, 16);
		out(p, ": ");
		count(p, pts[i].total);
		out(p, pts[i].failed ? " reported, gates failed" : " reported");
		out(p, "</title></circle>\n");
	}
	/* Legend: the series drawn. */
	int lx = l;
	for (int s = -1; s <= 4; s++) {
		const char *name = s < 0 ? "reported" : sev_name[s];
		long long any = s < 0;
		for (i = 0; i < n && s >= 0; i++)
			any |= pts[i].sev[s] > 0;
		if (!any)
			continue;
		outf(p,
		     "<rect x=\"%d\" y=\"8\" width=\"14\" height=\"4\" fill=\"%s\"/>"
		     "<text x=\"%d\" y=\"14\">%s</text>",
		     lx, s < 0 ? series_color : sev_color[s], lx + 18, name);
		lx += 36 + (int)strlen(name) * 7;
	}
#undef PX
#undef PY
	out(p, "</svg></figure>\n<table id=\"trend-table\"><caption>Reported findings per run"
	       "</caption><thead><tr><th scope=\"col\">Run</th><th scope=\"col\" class=\"num\">"
	       "Reported</th><th scope=\"col\" class=\"num\">Critical</th><th scope=\"col\" "
	       "class=\"num\">High</th><th scope=\"col\" class=\"num\">Medium</th>"
	       "<th scope=\"col\" class=\"num\">Low</th><th scope=\"col\">Gates</th></tr></thead>"
	       "<tbody>\n");
	for (i = 0; i < n; i++) {
		out(p, "<tr><th scope=\"row\">");
		run_label(p, &pts[i], i, 16);
		if (i + 1 == n)
			out(p, " (this run)");
		out(p, "</th>");
		out(p, "<td class=\"num\">");
		count(p, pts[i].total);
		for (int s = 4; s >= 1; s--) {
			out(p, "</td><td class=\"num\">");
			count(p, pts[i].sev[s]);
		}
		out(p, pts[i].failed ? "</td><td class=\"fail\">failed</td></tr>\n"
				     : "</td><td class=\"pass\">passed</td></tr>\n");
	}
	out(p, "</tbody></table></section>\n");
}

static void gate_table(struct page *p, const json_t *summary)
{
	const json_t *gates = rep_arr(summary, "gates"), *g;
	size_t i, n = json_array_size(gates);

	if (!n)
		return;
	out(p, "<section id=\"gate-list\" aria-labelledby=\"gate-list-h\"><h2 id=\"gate-list-h\">"
	       "Policy gates</h2>\n<table><thead><tr><th scope=\"col\">Result</th>"
	       "<th scope=\"col\">Gate</th><th scope=\"col\" class=\"num\">Observed</th>"
	       "<th scope=\"col\" class=\"num\">Limit</th><th scope=\"col\">Reason</th></tr>"
	       "</thead><tbody>\n");
	json_array_foreach(gates, i, g)
	{
		const json_t *per = rep_obj(g, "per");
		if (i >= MAX_ROWS)
			break;
		if (!json_is_object(g))
			continue;
		out(p, gate_failed(g) ? "<tr><td class=\"fail\">FAIL</td><td>"
				      : "<tr><td class=\"pass\">pass</td><td>");
		escj(p, gate_label(g), CELL_CP);
		out(p, "</td><td class=\"num\">");
		if (json_is_number(json_object_get(g, "observed")))
			outf(p, "%.10g", rep_num(g, "observed", 0));
		out(p, "</td><td class=\"num\">");
		if (rep_str(g, "limit_text"))
			escj(p, json_object_get(g, "limit_text"), 80);
		else if (json_is_number(json_object_get(g, "limit")))
			outf(p, "%.10g", rep_num(g, "limit", 0));
		if (per && !rep_str(g, "limit_text")) {
			out(p, " per ");
			count(p, rep_count(per, "count", 0));
			out(p, " ");
			escj(p, json_object_get(per, "unit"), 40);
		}
		out(p, "</td><td>");
		escj(p, json_object_get(g, "reason"), 1000);
		out(p, "</td></tr>\n");
	}
	out(p, "</tbody></table>");
	if (n > MAX_ROWS)
		outf(p, "<p class=\"note\">%zu more gates are not listed.</p>", n - MAX_ROWS);
	out(p, "</section>\n");
}

struct top {
	size_t i;
	int rank;
	double score;
};

static int top_cmp(const void *pa, const void *pb)
{
	const struct top *a = pa, *b = pb;

	if (a->rank != b->rank)
		return b->rank - a->rank;
	if (a->score != b->score)
		return a->score < b->score ? 1 : -1;
	return a->i < b->i ? -1 : a->i > b->i;
}

static void findings_table(struct page *p, const json_t *summary, const json_t *findings)
{
	size_t n = json_array_size(findings), k = 0, i;
	long long total = rep_count(rep_obj(summary, "findings"), "total", (long long)n);
	struct top *t = malloc((n ? n : 1) * sizeof *t);

	if (!t) {
		p->err = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		const json_t *f = json_array_get(findings, i);
		if (!json_is_object(f))
			continue;
		t[k].i = i;
		t[k].rank = rep_sev_rank(rep_str(f, "severity"));
		/* Suppressed findings sort after the reported ones. */
		if (rep_bool(f, "suppressed", 0) == 1)
			t[k].rank -= 5;
		t[k].score = rep_num(f, "score", 0);
		k++;
	}
	qsort(t, k, sizeof *t, top_cmp);
	out(p, "<section id=\"findings\" aria-labelledby=\"findings-h\"><h2 id=\"findings-h\">"
	       "Top findings</h2>\n");
	if (!k) {
		out(p, "<p>No findings.</p></section>\n");
		free(t);
		return;
	}
	out(p, "<table id=\"findings-table\"><caption>");
	outf(p, "The %zu most severe of ", k < TOP_FINDINGS ? k : (size_t)TOP_FINDINGS);
	if (total > (long long)k) {
		out(p, "the first ");
		count(p, (long long)k);
		out(p, " of ");
	}
	count(p, total > (long long)k ? total : (long long)k);
	out(p, " findings; excerpts are masked. The findings JSON Lines file lists them all."
	       "</caption><thead><tr><th scope=\"col\">Severity</th><th scope=\"col\">Rule</th>"
	       "<th scope=\"col\">Type</th><th scope=\"col\">Where</th><th scope=\"col\">"
	       "Document</th><th scope=\"col\">Excerpt</th><th scope=\"col\" class=\"num\">"
	       "Score</th><th scope=\"col\">Status</th></tr></thead><tbody>\n");
	for (i = 0; i < k && i < TOP_FINDINGS; i++) {
		const json_t *f = json_array_get(findings, t[i].i);
		int rank = rep_sev_rank(rep_str(f, "severity"));
		long long line = rep_count(f, "line", 0);
		double score = rep_num(f, "score", -1);

		outf(p, "<tr><td><span class=\"sev sev-%s\">", sev_name[rank]);
		if (rank)
			out(p, sev_name[rank]);
		else
			escj(p, json_object_get(f, "severity"), 20);
		out(p, "</span></td><td><code>");
		escj(p, json_object_get(f, "rule"), 80);
		out(p, "</code></td><td>");
		escj(p, json_object_get(f, "type"), 40);
		out(p, "</td><td><code>");
		escj(p, json_object_get(f, "source"), 120);
		if (line > 0)
			outf(p, ":%lld", line);
		out(p, "</code></td><td><code>");
		escj(p, json_object_get(f, "doc"), 80);
		out(p, "</code></td><td><code>");
		escj(p, json_object_get(f, "excerpt"), 120);
		out(p, "</code></td><td class=\"num\">");
		if (score >= 0)
			outf(p, "%.2f", score);
		out(p, rep_bool(f, "suppressed", 0) == 1 ? "</td><td>suppressed</td></tr>\n"
							 : "</td><td>reported</td></tr>\n");
	}
	out(p, "</tbody></table></section>\n");
	free(t);
}

static void inputs_table(struct page *p, const json_t *summary)
{
	const json_t *inputs = rep_arr(summary, "inputs"), *in;
	size_t i, n = json_array_size(inputs);

	out(p, "<section id=\"inputs\" aria-labelledby=\"inputs-h\"><h2 id=\"inputs-h\">Inputs"
	       "</h2>\n");
	if (!n) {
		out(p, "<p>No inputs are listed.</p></section>\n");
		return;
	}
	out(p, "<table><thead><tr><th scope=\"col\">Path</th><th scope=\"col\" class=\"num\">"
	       "Documents</th><th scope=\"col\" class=\"num\">Bytes</th><th scope=\"col\">Error"
	       "</th></tr></thead><tbody>\n");
	json_array_foreach(inputs, i, in)
	{
		if (i >= MAX_ROWS)
			break;
		out(p, "<tr><td><code>");
		escj(p, json_object_get(in, "path"), CELL_CP);
		out(p, "</code></td><td class=\"num\">");
		count(p, rep_count(in, "documents", 0));
		out(p, "</td><td class=\"num\">");
		count(p, rep_count(in, "bytes", 0));
		out(p, "</td><td>");
		if (rep_str(in, "error"))
			escj(p, json_object_get(in, "error"), CELL_CP);
		else if (rep_bool(in, "readable", 1) == 0)
			out(p, "<span class=\"fail\">could not be read</span>");
		out(p, "</td></tr>\n");
	}
	out(p, "</tbody></table>");
	if (n > MAX_ROWS)
		outf(p, "<p class=\"note\">%zu more inputs are not listed.</p>", n - MAX_ROWS);
	out(p, "</section>\n");
}

/* ---- the model: evaluation, memorization, canaries ---- */

/* A metric value: up to four significant decimals, or "-" when absent. */
static void metric(struct page *p, const json_t *v)
{
	if (json_is_number(v) && isfinite(json_number_value(v)))
		outf(p, "%.4g", json_number_value(v));
	else
		out(p, "-");
}

/* lm-eval's results: one row a task and metric ("acc,none"), its "acc_stderr,none" beside. */
static void eval_table(struct page *p, const json_t *res)
{
	const json_t *results = rep_obj(res, "results"), *task, *nsamp = rep_obj(res, "n-samples");
	const char *tname, *key;
	size_t rows = 0;

	out(p, "<table id=\"eval-table\"><caption>quern-audit eval: every task's metrics with "
	       "their standard errors (lm-evaluation-harness's results layout).</caption><thead>"
	       "<tr><th scope=\"col\">Task</th><th scope=\"col\">Metric</th><th scope=\"col\" "
	       "class=\"num\">Value</th><th scope=\"col\" class=\"num\">Stderr</th><th "
	       "scope=\"col\" class=\"num\">Samples</th></tr></thead><tbody>\n");
	json_object_foreach((json_t *)results, tname, task)
	{
		const json_t *v;
		if (!json_is_object(task))
			continue;
		json_object_foreach((json_t *)task, key, v)
		{
			const char *comma = strchr(key, ',');
			size_t mlen = comma ? (size_t)(comma - key) : strlen(key);
			char se[300];
			if (!json_is_number(v) ||
			    (mlen > 7 && !memcmp(key + mlen - 7, "_stderr", 7)))
				continue;
			if (rows++ >= MAX_ROWS)
				continue;
			snprintf(se, sizeof se, "%.*s_stderr%s", (int)(mlen < 200 ? mlen : 200),
				 key, comma ? comma : "");
			out(p, "<tr><td>");
			esc(p, tname, 120, REP_TEXT);
			out(p, "</td><td><code>");
			esc(p, key, 80, REP_TEXT);
			out(p, "</code></td><td class=\"num\">");
			metric(p, v);
			out(p, "</td><td class=\"num\">");
			metric(p, json_object_get(task, se));
			out(p, "</td><td class=\"num\">");
			const json_t *ns = rep_obj(nsamp, tname);
			if (ns)
				count(p, rep_count(ns, "effective", rep_count(ns, "original", 0)));
			out(p, "</td></tr>\n");
		}
	}
	if (!rows)
		out(p, "<tr><td colspan=\"5\">No metrics.</td></tr>\n");
	out(p, "</tbody></table>\n");
	if (rows > MAX_ROWS)
		outf(p, "<p class=\"note\">%zu more metrics are not listed.</p>", rows - MAX_ROWS);
}

/* Grouped horizontal bars of shares in [0, 1]: one group a metric, a bar each for a and b. */
static void share_chart(struct page *p, const char *id, const char *title, const char *const *names,
			const double *a, const double *b, size_t n, const char *la, const char *lb)
{
	const int w = 560, lx = 150, bx = 158, bw_max = 330, row = 22, top = 6;
	int h = top * 2 + (int)n * row * 2 + 24;

	outf(p, "<figure id=\"%s\" class=\"chart\"><figcaption id=\"%s-t\">%s</figcaption>\n", id,
	     id, title);
	outf(p,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
	     "aria-labelledby=\"%s-t %s-d\" style=\"max-width:%dpx\"><desc id=\"%s-d\">",
	     w, h, id, id, w, id);
	for (size_t i = 0; i < n; i++)
		outf(p, "%s: %s %.1f%%, %s %.1f%%%s", names[i], la, 100 * a[i], lb, 100 * b[i],
		     i + 1 < n ? "; " : "");
	out(p, "</desc>\n");
	outf(p, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", bx, top, bx,
	     h - top - 24);
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++) {
			double v = k ? b[i] : a[i];
			int y = top + (int)(i * 2 + (size_t)k) * row;
			int bw = (int)((v < 0 ? 0 : v > 1 ? 1 : v) * bw_max + 0.5);
			if (v > 0 && bw < 2)
				bw = 2;
			outf(p, "<g class=\"bar\"><title>%s, %s: %.1f%%</title>", names[i],
			     k ? lb : la, 100 * v);
			outf(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s%s</text>", lx,
			     y + 15, k ? "" : names[i], k ? lb : "");
			outf(p,
			     "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
			     "<text x=\"%d\" y=\"%d\">%.1f%%</text></g>\n",
			     bx + 1, y + 3, bw, row - 6, k ? "#8c959f" : "#3566a8", bx + bw + 6,
			     y + 15, 100 * v);
		}
	}
	outf(p,
	     "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"#3566a8\"/><text x=\"%d\" "
	     "y=\"%d\">%s</text><rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
	     "fill=\"#8c959f\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
	     bx, h - 18, bx + 16, h - 8, la, bx + 140, h - 18, bx + 156, h - 8, lb);
	out(p, "</svg></figure>\n");
}

static void memo_block(struct page *p, const json_t *res)
{
	static const char *const keys[] = {"exact_match", "token_match", "lcp_mean"};
	static const char *const names[] = {"exact match", "token match", "LCP mean (tokens)"};
	const json_t *tr = rep_obj(res, "train"), *ho = rep_obj(res, "heldout");
	double a[2], b[2];

	out(p, "<table id=\"memo-table\"><caption>quern-audit memorization: a ");
	count(p, rep_count(res, "prefix", 0));
	out(p, "-token prefix, greedy ");
	count(p, rep_count(res, "suffix", 0));
	out(p, "-token continuation; training documents against held-out ones.</caption><thead>"
	       "<tr><th scope=\"col\">Metric</th><th scope=\"col\" class=\"num\">Training</th>"
	       "<th scope=\"col\" class=\"num\">Held-out</th><th scope=\"col\" class=\"num\">"
	       "Difference</th></tr></thead><tbody>\n");
	out(p, "<tr><td>documents</td><td class=\"num\">");
	count(p, rep_count(tr, "documents", 0));
	out(p, "</td><td class=\"num\">");
	count(p, rep_count(ho, "documents", 0));
	out(p, "</td><td></td></tr>\n");
	for (size_t i = 0; i < 3; i++) {
		outf(p, "<tr><td>%s</td><td class=\"num\">", names[i]);
		metric(p, json_object_get(tr, keys[i]));
		out(p, "</td><td class=\"num\">");
		metric(p, json_object_get(ho, keys[i]));
		out(p, "</td><td class=\"num\">");
		metric(p, json_object_get(rep_obj(res, "difference"), keys[i]));
		out(p, "</td></tr>\n");
	}
	out(p, "</tbody></table>\n");
	for (size_t i = 0; i < 2; i++) {
		a[i] = rep_num(tr, keys[i], 0);
		b[i] = rep_num(ho, keys[i], 0);
	}
	share_chart(p, "chart-memo", "Discoverable memorization", names, a, b, 2, "training",
		    "held-out");
}

static void canary_block(struct page *p, const json_t *res)
{
	const json_t *by = rep_arr(res, "by_reps"), *r;
	size_t i, n = 0;
	double max = 1;

	out(p, "<table id=\"canary-table\"><caption>quern-audit canary exposure by repetition "
	       "count (bits; log2 of the candidates is the most possible).</caption><thead><tr>"
	       "<th scope=\"col\" class=\"num\">Repetitions</th><th scope=\"col\" class=\"num\">"
	       "Canaries</th><th scope=\"col\" class=\"num\">Exposure mean</th><th scope=\"col\" "
	       "class=\"num\">Min</th><th scope=\"col\" class=\"num\">Max</th><th scope=\"col\" "
	       "class=\"num\">Skew-normal mean</th></tr></thead><tbody>\n");
	json_array_foreach(by, i, r)
	{
		if (!json_is_object(r) || i >= MAX_ROWS)
			continue;
		n++;
		if (rep_num(r, "exposure_max", 0) > max)
			max = rep_num(r, "exposure_max", 0);
		out(p, "<tr><td class=\"num\">");
		count(p, rep_count(r, "reps", 0));
		out(p, "</td><td class=\"num\">");
		count(p, rep_count(r, "canaries", 0));
		static const char *const k[] = {"exposure_mean", "exposure_min", "exposure_max",
						"exposure_skewnorm_mean"};
		for (size_t j = 0; j < 4; j++) {
			out(p, "</td><td class=\"num\">");
			metric(p, json_object_get(r, k[j]));
		}
		out(p, "</td></tr>\n");
	}
	if (!n)
		out(p, "<tr><td colspan=\"6\">No canaries.</td></tr>\n");
	out(p, "</tbody></table>\n");
	if (!n)
		return;
	/* Exposure by repetitions, against the largest seen. */
	const int w = 560, lx = 150, bx = 158, bw_max = 330, row = 24, top = 6;
	int h = top * 2 + (int)n * row;
	out(p, "<figure id=\"chart-canary\" class=\"chart\"><figcaption id=\"chart-canary-t\">"
	       "Canary exposure by repetitions</figcaption>\n");
	outf(p,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
	     "aria-labelledby=\"chart-canary-t chart-canary-d\" style=\"max-width:%dpx\">"
	     "<desc id=\"chart-canary-d\">",
	     w, h, w);
	json_array_foreach(by, i, r) if (json_is_object(r) && i < MAX_ROWS)
	    outf(p, "%lld repetitions: %.2f bits; ", rep_count(r, "reps", 0),
		 rep_num(r, "exposure_mean", 0));
	out(p, "</desc>\n");
	outf(p, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", bx, top, bx,
	     h - top);
	size_t k = 0;
	json_array_foreach(by, i, r)
	{
		if (!json_is_object(r) || i >= MAX_ROWS)
			continue;
		double v = rep_num(r, "exposure_mean", 0);
		int y = top + (int)k++ * row, bw = (int)((v < 0 ? 0 : v) / max * bw_max + 0.5);
		outf(p,
		     "<g class=\"bar\"><title>%lld repetitions: %.2f bits</title><text x=\"%d\" "
		     "y=\"%d\" text-anchor=\"end\">%lld\xC3\x97</text><rect x=\"%d\" y=\"%d\" "
		     "width=\"%d\" height=\"%d\" fill=\"#5b4a9b\"/><text x=\"%d\" y=\"%d\">%.2f "
		     "bits</text></g>\n",
		     rep_count(r, "reps", 0), v, lx, y + 16, rep_count(r, "reps", 0), bx + 1, y + 3,
		     bw, row - 6, bx + bw + 6, y + 16, v);
	}
	out(p, "</svg></figure>\n");
}

static void model_section(struct page *p, const json_t *const *model, size_t nmodel)
{
	size_t shown = 0;

	for (size_t i = 0; i < nmodel; i++) {
		enum am_kind k = am_detect(model[i]);
		if (k != AM_EVAL && k != AM_MEMORIZATION && k != AM_CANARY)
			continue;
		if (!shown++)
			out(p,
			    "<section id=\"model\" aria-labelledby=\"model-h\"><h2 id=\"model-h\">"
			    "Model evaluation and memorization</h2>\n");
		if (rep_str(model[i], "model")) {
			out(p, "<p class=\"note\">Model <code>");
			escj(p, json_object_get(model[i], "model"), CELL_CP);
			out(p, "</code></p>\n");
		}
		if (k == AM_EVAL)
			eval_table(p, model[i]);
		else if (k == AM_MEMORIZATION)
			memo_block(p, model[i]);
		else
			canary_block(p, model[i]);
	}
	if (shown)
		out(p, "</section>\n");
}

static void footer(struct page *p, const json_t *summary)
{
	static const char *const files[] = {"policy", "rules", "baseline"};

	out(p, "<footer><p>Written by quern-audit ");
	if (rep_str(summary, "version"))
		escj(p, json_object_get(summary, "version"), 40);
	else
		out(p, QN_VERSION);
	out(p, ".");
	for (size_t i = 0; i < 3; i++) {
		const json_t *v = json_object_get(summary, files[i]);
		if (!json_is_string(v))
			continue;
		outf(p, " %c%s: <code>", files[i][0] - 32, files[i] + 1);
		escj(p, v, CELL_CP);
		out(p, "</code>.");
	}
	out(p, " Findings carry masked excerpts and salted hashes, never raw values.</p>"
	       "</footer>\n");
}

static void build(struct page *p, const json_t *summary, const json_t *findings,
		  const json_t *const *history, size_t nhistory, const json_t *const *model,
		  size_t nmodel)
{
	const json_t *f = rep_obj(summary, "findings");
	const json_t *gates = rep_arr(summary, "gates"), *g;
	int failed = rep_bool(summary, "passed", 1) == 0;
	size_t i;

	json_array_foreach(gates, i, g) failed |= json_is_object(g) && gate_failed(g);
	out(p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	       "style-src 'unsafe-inline'; img-src data:\">\n"
	       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	       "<meta name=\"generator\" content=\"quern-audit\">\n<title>quern-audit scan: ");
	out(p, failed ? "FAILED" : "passed");
	out(p, "</title>\n<style>");
	out(p, css);
	out(p, "</style></head>\n<body>\n<header><h1>quern-audit scan <span class=\"verdict ");
	out(p, failed ? "verdict-fail\">FAILED" : "verdict-pass\">PASSED");
	out(p, "</span></h1><p class=\"meta\">");
	if (rep_str(summary, "created")) {
		out(p, "Scanned ");
		escj(p, json_object_get(summary, "created"), 40);
		out(p, ". ");
	}
	count(p, rep_count(f, "total", 0));
	out(p, " findings in ");
	count(p, rep_count(summary, "documents", 0));
	out(p, " documents.</p></header>\n<main>\n");
	gates_box(p, summary);
	totals(p, summary);
	out(p, "<section id=\"charts\" aria-labelledby=\"charts-h\"><h2 id=\"charts-h\">"
	       "Reported findings</h2>\n<div class=\"charts\">\n");
	chart_of(p, rep_obj(f, "by_type"), "chart-type", "By type", "#3566a8", 0, 0);
	chart_of(p, rep_obj(f, "by_severity"), "chart-severity", "By severity", "#6e7781", 1, 0);
	chart_of(p, rep_obj(f, "by_source"), "chart-source", "By source", "#5b4a9b", 0, 1);
	out(p, "</div></section>\n");
	trends(p, summary, history, nhistory);
	model_section(p, model, nmodel);
	gate_table(p, summary);
	findings_table(p, summary, findings);
	inputs_table(p, summary);
	out(p, "</main>\n");
	footer(p, summary);
	out(p, "</body></html>\n");
}

int report_html(const json_t *summary, const json_t *findings, const json_t *const *history,
		size_t nhistory, const char *path, struct qn_err *e)
{
	return report_html_model(summary, findings, history, nhistory, NULL, 0, path, e);
}

int report_html_model(const json_t *summary, const json_t *findings, const json_t *const *history,
		      size_t nhistory, const json_t *const *model, size_t nmodel, const char *path,
		      struct qn_err *e)
{
	struct page p;
	int rc;

	if (!json_is_object(summary))
		return qn_errf(e, "html report: the summary is not an object");
	if (!json_is_array(findings))
		findings = NULL;
	p.err = 0;
	qn_buf_init(&p.b, REP_MAX_BYTES);
	build(&p, summary, findings, history, nhistory, model, nmodel);
	if (p.err)
		rc = qn_errf(e, "html report: out of memory or past %zu MiB", REP_MAX_BYTES >> 20);
	else
		rc = rep_commit(&p.b, path, "html", e);
	qn_buf_release(&p.b);
	return rc;
}
