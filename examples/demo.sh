#!/bin/sh
# examples/demo.sh BUILD - the main job on the bundled sample corpus:
# ingest every file under examples/corpus into one document JSONL file,
# clean it (dedup, filters, language, PII), and show what came out.
set -eu
B=${1:-build}
cd "$(dirname "$0")/.."
out=examples/out
mkdir -p "$out"
echo "== quern-ingest over examples/corpus"
"$B/bin/quern-ingest" -j 2 --text-field body --id-field review_id \
	-o "$out/docs.jsonl" examples/corpus
echo
echo "== $(wc -l <"$out/docs.jsonl") documents in $out/docs.jsonl, by format:"
jq -r '.metadata.format' "$out/docs.jsonl" | sort | uniq -c
echo
echo "== one document of each format (text cut at 300 characters):"
jq -c 'select(.metadata.format) | {format: .metadata.format, id, title: (.metadata.title // .metadata.subject // null), text: .text[0:300]}' \
	"$out/docs.jsonl" | awk -F'"format":' '{split($2,a,","); if (!seen[a[1]]++) print}'
echo
echo "== the run's manifest: $out/docs.jsonl.manifest.json"
jq -c '{tool, version, inputs: (.inputs | length), counters}' "$out/docs.jsonl.manifest.json"
echo
echo "== quern-clean: normalize, dedup, quality filters, PII redaction"
# The sample is small and mixed (reviews, tickets, e-mail), so the Gopher
# word-count floor would reject most of it: lower it for the demo.
cat >"$out/clean.yaml" <<'YAML'
steps:
  - normalize
  - exact_dedup
  - gopher_quality: {min_doc_words: 5}
  - near_dedup
  - lang
  - pii
YAML
"$B/bin/quern-clean" -j 2 -c "$out/clean.yaml" -r "$out/rejects.jsonl" \
	--stats "$out/clean-stats.json" -o "$out/clean.jsonl" "$out/docs.jsonl"
echo "== kept $(wc -l <"$out/clean.jsonl"), removed $(wc -l <"$out/rejects.jsonl"); removed by step and reason:"
jq -r '.metadata.reject | "\(.step) \(.reason)"' "$out/rejects.jsonl" | sort | uniq -c
echo "== languages:"
jq -r '.metadata.lang' "$out/clean.jsonl" | sort | uniq -c
echo "== PII redacted:"
jq -c 'select(.metadata.pii) | {id, pii: .metadata.pii}' "$out/clean.jsonl" | head -5
