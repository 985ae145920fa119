#!/bin/sh
# bench/run.sh BUILD - quern-ingest side by side with the tools users would
# pick instead, measured in one run on the same input (make bench).
#
#   1. HTML: quern-ingest (main-content extraction) against `w3m -dump`
#      (one process each over the same files), single-threaded, and
#      quern-ingest -j 2 against its own single-thread rate.
#   2. Extraction quality: token F1 over tests/extract/pages.
#   3. Memory: a generated 1 GB MediaWiki dump streamed through
#      quern-ingest -f mediawiki; peak RSS from GNU time.
#   4. quern-clean (bench/clean.sh): the default chain and single steps
#      against a re-implementation of datatrove's MinHash signature stage.
#   5. quern-tokenize: encoding against npm tiktoken (bench/tokenize_encode.sh)
#      and training against spm_train (bench/tokenize_train.sh).
#   6. quern-train: GPT-2 training tokens/s against PyTorch on the CPU
#      (bench/train.sh; THREADS, R).
#   7. quern-audit scan: every default detector against grep -P -c with one
#      e-mail pattern over the same 200 MB file (bench/audit.sh).
#   8. quern-run status over 10,000 files, warm and cold hash cache, against
#      sha256sum over the same files (bench/run_status.sh).
#
# Timings are medians of hyperfine runs. BENCH_COPIES sets how many copies
# of each fixture page make the HTML corpus (default 40), BENCH_WIKI the
# dump size (default 1G).
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
copies=${BENCH_COPIES:-40}
wiki=${BENCH_WIKI:-1G}
I="$B/bin/quern-ingest"
mkdir -p "$out"
res="$out/results.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }

for t in w3m hyperfine jq /usr/bin/time; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: '$t' is missing; run 'make deps'" >&2; exit 1; }
done

# 1. HTML throughput.
html="$out/html"
rm -rf "$html"
mkdir -p "$html"
i=0
while [ $i -lt "$copies" ]; do
	for f in "$top"/tests/extract/pages/*.html "$top"/examples/corpus/html/*.html; do
		cp "$f" "$html/$i-$(basename "$f")"
	done
	i=$((i + 1))
done
files=$(ls "$html" | wc -l)
bytes=$(cat "$html"/*.html | wc -c)
mb=$(echo "$bytes" | awk '{printf "%.1f", $1 / 1e6}')
say "== HTML: $files files, $mb MB ($(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
cd "$html"
hyperfine -N --warmup 1 --runs 7 --export-json "$out/html.json" \
	-n "quern-ingest -j 1" "$I -j 1 -o /dev/null $html" \
	-n "quern-ingest -j 2" "$I -j 2 -o /dev/null $html" \
	-n "w3m -dump" "sh -c 'w3m -dump $html/*.html >/dev/null'" >"$out/html.log" 2>&1 ||
	{ cat "$out/html.log"; exit 1; }
cd "$top"
med() { jq -r ".results[] | select(.command == \"$1\") | .median" "$out/html.json"; }
q1=$(med "quern-ingest -j 1")
q2=$(med "quern-ingest -j 2")
w3=$(med "w3m -dump")
awk -v b="$bytes" -v q1="$q1" -v q2="$q2" -v w="$w3" 'BEGIN {
	printf "quern-ingest -j 1   %7.3f s  %7.1f MB/s\n", q1, b / q1 / 1e6
	printf "quern-ingest -j 2   %7.3f s  %7.1f MB/s\n", q2, b / q2 / 1e6
	printf "w3m -dump           %7.3f s  %7.1f MB/s\n", w, b / w / 1e6
	printf "quern-ingest -j 1 vs w3m: %.2fx faster\n", w / q1
	printf "quern-ingest -j 2 vs -j 1: %.2fx\n", q1 / q2
}' | tee -a "$res"

# 2. Extraction quality.
say ""
say "== Extraction F1 over tests/extract/pages"
"$I" -o "$out/pages.jsonl" "$top"/tests/extract/pages/*.html
"$B/tests/extract_score" "$out/pages.jsonl" | sed -n '/^kind\|^overall/p' | tee -a "$res"

# 3. A 1 GB MediaWiki dump in bounded memory.
say ""
say "== MediaWiki dump ($wiki) through quern-ingest -f mediawiki"
dump="$out/wiki.xml"
"$B/tests/gen_wikidump" "$wiki" 7 >"$dump"
/usr/bin/time -f '%M %e' -o "$out/wiki.time" "$I" -f mediawiki -o /dev/null --no-manifest "$dump"
read -r kb secs <"$out/wiki.time"
dbytes=$(wc -c <"$dump")
awk -v kb="$kb" -v s="$secs" -v b="$dbytes" 'BEGIN {
	printf "%.2f GB in %.1f s (%.1f MB/s), peak RSS %.1f MB\n", b / 1e9, s, b / s / 1e6, kb / 1024
}' | tee -a "$res"
rm -f "$dump"

# 4. quern-clean: throughput against a MinHash peer, near-dup index memory.
say ""
sh "$top/bench/clean.sh" "$B"
cat "$out/clean.txt" >>"$res"

# 5. quern-tokenize: encoding against npm tiktoken, training against
#    sentencepiece's spm_train.
say ""
sh "$top/bench/tokenize_encode.sh" "$B"
cat "$out/tokenize_encode.txt" >>"$res"
say ""
sh "$top/bench/tokenize_train.sh" "$B"
cat "$out/tokenize_train.txt" >>"$res"
say ""
sh "$top/bench/train.sh" "$B"
cat "$out/train.txt" >>"$res"
say ""
sh "$top/bench/audit.sh" "$B"
cat "$out/audit.txt" >>"$res"
say ""
sh "$top/bench/eval.sh" "$B"
cat "$out/eval.txt" >>"$res"
say ""
sh "$top/bench/run_status.sh" "$B" >"$out/run_status.txt"
cat "$out/run_status.txt" >>"$res"
say ""
say "results: $res"
