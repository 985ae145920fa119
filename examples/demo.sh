#!/bin/sh
# examples/demo.sh BUILD - the whole chain on the bundled sample corpus, run
# by quern-run from pipelines/demo.yaml: ingest -> clean -> tokenizer and
# shards -> a tiny GPT-2 -> samples -> audit scan and model card -> one HTML
# report, whose path it prints last. A second run finds everything up to
# date and runs nothing; `quern-run status -f pipelines/demo.yaml` says why
# a stage would run.
set -eu
B=${1:-build}
cd "$(dirname "$0")/.."
B=$(cd "$B" && pwd)
PATH="$B/bin:$PATH"
export PATH
out=examples/out/demo
echo "== quern-run run -f pipelines/demo.yaml -j 2"
start=$(date +%s)
quern-run run -f pipelines/demo.yaml -j 2
echo "== $(($(date +%s) - start)) s; the stages and what each needs:"
quern-run dag -f pipelines/demo.yaml
echo
echo "== $(wc -l <"$out/docs.jsonl") documents ingested, by format:"
jq -r '.metadata.format' "$out/docs.jsonl" | sort | uniq -c
echo "== quern-clean kept $(wc -l <"$out/clean.jsonl"), removed $(wc -l <"$out/rejects.jsonl")"
echo "== training loss, first and last step:"
jq -c 'select(.loss) | {step, loss}' "$out/model/metrics.jsonl" | sed -n '1p;$p'
echo "== a sample:"
jq -r '"\(.prompt)\(.completion)"' "$out/samples.jsonl" | head -n 1
echo "== audit findings: $(wc -l <"$out/findings.jsonl") (scan report: $out/scan.html)"
echo "== lineage of the model (quern-run lineage):"
quern-run lineage -f pipelines/demo.yaml "$out/model" | grep -v "in the tool's manifest" | head -n 12
echo
echo "report: $(pwd)/$out/report.html"
