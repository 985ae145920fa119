#!/bin/sh
# demo_report.sh OUT - the demo pipeline's last stage: one self-contained
# HTML page over the whole chain's results in OUT (documents ingested and
# kept, tokens, the training curve's ends, samples, the audit's findings
# with a link to its full HTML report, and the model card).
set -eu
out=$1
esc() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }
n() { wc -l <"$1" | tr -d ' '; }
tmp="$out/report.html.tmp.$$"
trap 'rm -f "$tmp"' EXIT
{
	echo '<!doctype html><html><head><meta charset="utf-8"><title>quern demo report</title>'
	echo '<style>body{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}'
	echo 'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}'
	echo 'pre{background:#f6f6f6;padding:.8em;overflow:auto;white-space:pre-wrap}</style></head><body>'
	echo "<h1>quern demo: corpus to model, audited</h1>"
	echo "<p>Made by <code>quern-run run -f pipelines/demo.yaml</code> on $(date -u +%Y-%m-%dT%H:%M:%SZ).</p>"
	echo '<h2>The chain</h2><table><tr><th>stage</th><th>result</th></tr>'
	echo "<tr><td>ingest</td><td>$(n "$out/docs.jsonl") documents from examples/corpus</td></tr>"
	echo "<tr><td>clean</td><td>$(n "$out/clean.jsonl") kept, $(n "$out/rejects.jsonl") removed</td></tr>"
	toks=$(jq -r '[.splits[]?.tokens] | add // empty' "$out/shards/manifest.json" 2>/dev/null | head -n 1)
	echo "<tr><td>tokenize</td><td>vocabulary $(jq -r '.vocab_size // empty' "$out/shards/manifest.json" 2>/dev/null | head -n 1), ${toks:-?} tokens in shards</td></tr>"
	first=$(jq -r 'select(.train_loss != null or .loss != null) | (.train_loss // .loss)' "$out/model/metrics.jsonl" 2>/dev/null | head -n 1)
	last=$(jq -r 'select(.train_loss != null or .loss != null) | (.train_loss // .loss)' "$out/model/metrics.jsonl" 2>/dev/null | tail -n 1)
	val=$(jq -r 'select(.val_loss != null) | .val_loss' "$out/model/metrics.jsonl" 2>/dev/null | tail -n 1)
	echo "<tr><td>train</td><td>loss ${first:-?} &rarr; ${last:-?}; validation loss ${val:-?}</td></tr>"
	echo "<tr><td>sample</td><td>$(n "$out/samples.jsonl") generations</td></tr>"
	echo "<tr><td>audit</td><td>$(n "$out/findings.jsonl") findings; <a href=\"scan.html\">the scan's full report</a></td></tr>"
	echo '</table>'
	echo '<h2>Audit findings by type</h2><pre>'
	jq -r '.findings | (.by_type // {}) | to_entries[] | "\(.key)\t\(.value)"' \
		"$out/scan-summary.json" 2>/dev/null | esc || true
	jq -r '.findings | (.by_source // {}) | to_entries[] | "in \(.key)\t\(.value)"' \
		"$out/scan-summary.json" 2>/dev/null | esc || true
	echo '</pre>'
	echo '<h2>Cleaning, by step and reason</h2>'
	echo '<table><tr><th>step</th><th>documents in</th><th>out</th><th>removed, by reason</th></tr>'
	jq -r '.steps[]? | [.step, .documents_in, .documents_out,
		((.rejected // {}) | to_entries | map("\(.key): \(.value.documents)") | join(", "))] | @tsv' \
		"$out/clean-stats.json" 2>/dev/null | esc |
		awk -F'\t' '{ printf "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", $1, $2, $3, ($4 == "" ? "-" : $4) }' || true
	echo '</table>'
	echo '<h2>Samples</h2><pre>'
	jq -r '"\(.prompt // "") \u2192 \(.completion // .text // "")"' "$out/samples.jsonl" 2>/dev/null | esc || true
	echo '</pre>'
	echo '<h2>Model card</h2><pre>'
	esc <"$out/model-card.md"
	echo '</pre></body></html>'
} >"$tmp"
mv "$tmp" "$out/report.html"
trap - EXIT
