#!/bin/sh
# examples/demo.sh BUILD - the main job on the bundled sample corpus:
# ingest every file under examples/corpus into one document JSONL file,
# then show what came out.
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
