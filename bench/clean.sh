#!/bin/sh
# bench/clean.sh BUILD - quern-clean's throughput and near-dup index memory,
# side by side with a MinHash peer, measured in one run on the same input
# (called by bench/run.sh; also runs alone: sh bench/clean.sh build).
#
#   1. Throughput: a generated corpus (tests/tools/gen_neardup, about 4.6 KB
#      a document, BENCH_CLEAN_DOCS documents, default 46000, 213 MB)
#      through quern-clean's default chain at -j 1 and -j 2, through single
#      steps and short chains, and through bench/peers/minhash_peer.py, a
#      re-implementation of datatrove's MinHash signature stage (datatrove
#      itself is not packaged for Debian). Reported: MB of input JSONL per
#      second and per core (wall time), MB per CPU second (user + system
#      time, which a busy machine distorts less), -j 2 against -j 1, and
#      quern-clean against the peer.
#   2. Memory (BENCH_RSS=1): 1,000,000 short distinct documents (300-700
#      bytes) through `--steps exact_dedup,near_dedup`; peak RSS from GNU
#      time, bytes per document, and the near-dup index's own size
#      (index_bytes from --stats).
#
# Timings are medians of BENCH_RUNS (default 3) hyperfine runs. Corpora are
# cached in BENCH_DIR (default /tmp/quern-bench), so reruns skip generating
# them. The machine should be idle: the 1-minute load average at the start
# is printed with the results.
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}
docs=${BENCH_CLEAN_DOCS:-46000}
runs=${BENCH_RUNS:-3}
py=${PYTHON:-/usr/bin/python3}
peer="$top/bench/peers/minhash_peer.py"
mkdir -p "$out" "$work"
# Measure a copy, so a rebuild during the run cannot mix two binaries.
bin="$work/bin.$$"
mkdir -p "$bin"
trap 'rm -rf "$bin"' EXIT
trap 'exit 1' INT TERM
cp "$B/bin/quern-clean" "$bin/quern-clean"
Q="$bin/quern-clean"
res="$out/clean.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }

for t in hyperfine jq /usr/bin/time "$py"; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: '$t' is missing; run 'make deps'" >&2; exit 1; }
done
"$py" -c 'import numpy, xxhash' 2>/dev/null ||
	{ echo "bench: $py lacks numpy or xxhash (python3-numpy, python3-xxhash); run 'make deps'" >&2; exit 1; }
[ -x "$B/tests/gen_neardup" ] || { echo "bench: '$B/tests/gen_neardup' is missing; run 'make'" >&2; exit 1; }

# 1. Throughput.
corpus="$work/neardup-$docs.jsonl"
if [ ! -s "$corpus" ]; then
	"$B/tests/gen_neardup" "$docs" 7 >"$corpus.tmp"
	mv "$corpus.tmp" "$corpus"
fi
bytes=$(wc -c <"$corpus")
cat "$corpus" >/dev/null # into the page cache, for every command alike
load=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
say "== quern-clean: $docs documents, $(echo "$bytes" | awk '{printf "%.1f", $1 / 1e6}') MB JSONL ($(nproc) CPUs: $cpu; load $load; $(date -u +%Y-%m-%d))"
filters=gopher_repetition,gopher_quality,c4_quality,fineweb_quality
QC="$Q --no-manifest -o /dev/null"
hyperfine -N --warmup 1 --runs "$runs" --export-json "$out/clean.json" \
	-n "default -j 1" "$QC -j 1 $corpus" \
	-n "default -j 2" "$QC -j 2 $corpus" \
	-n "normalize" "$QC --steps normalize $corpus" \
	-n "normalize,exact_dedup" "$QC --steps normalize,exact_dedup $corpus" \
	-n "normalize,near_dedup" "$QC --steps normalize,near_dedup $corpus" \
	-n "filters" "$QC --steps $filters $corpus" \
	-n "pii" "$QC --steps pii $corpus" >"$out/clean.log" 2>&1 ||
	{ cat "$out/clean.log"; exit 1; }
# The peer takes about a minute a run; no warm-up run.
hyperfine -N --runs "$runs" --export-json "$out/peer.json" \
	-n "minhash_peer.py" "$py $peer $corpus" >"$out/peer.log" 2>&1 ||
	{ cat "$out/peer.log"; exit 1; }
# name, median s, CPU s (mean user + system), jobs
row() {
	jq -r --arg n "$1" --arg j "$3" '.results[] | select(.command == $n) |
		"\($n)\t\(.median)\t\(.user + .system)\t\($j)"' "$2"
}
{
	row "default -j 1" "$out/clean.json" 1
	row "default -j 2" "$out/clean.json" 2
	row "normalize" "$out/clean.json" 1
	row "normalize,exact_dedup" "$out/clean.json" 1
	row "normalize,near_dedup" "$out/clean.json" 1
	row "filters" "$out/clean.json" 1
	row "pii" "$out/clean.json" 1
	row "minhash_peer.py" "$out/peer.json" 1
} | awk -F'\t' -v b="$bytes" -v f="$filters" '
	{ name[NR] = $1; med[NR] = $2; cpu[NR] = $3; j[NR] = $4 }
	END {
		printf "%-36s %8s %8s %10s %9s\n", "quern-clean -o /dev/null ...", "median s", "MB/s", "MB/s/core", "MB/CPU-s"
		for (i = 1; i <= NR; i++) {
			if (i == NR)
				print ""
			label = (i == NR) ? "peer: minhash_peer.py (datatrove)" : name[i]
			printf "%-36s %8.2f %8.1f %10.1f %9.1f\n", label, med[i], b / med[i] / 1e6,
				b / med[i] / 1e6 / j[i], b / cpu[i] / 1e6
		}
		printf "filters: %s\n", f
		printf "-j 2 vs -j 1: %.2fx\n", med[1] / med[2]
		printf "normalize,near_dedup vs peer, per core: %.1fx faster (%.1fx by CPU time)\n",
			med[NR] / med[5], cpu[NR] / cpu[5]
		printf "default chain vs peer, per core: %.1fx faster (%.1fx by CPU time)\n",
			med[NR] / med[1], cpu[NR] / cpu[1]
	}' | tee -a "$res"

# 2. Peak RSS for a million documents in the near-dup index.
if [ "${BENCH_RSS:-0}" = 1 ]; then
	n=${BENCH_RSS_DOCS:-1000000}
	big="$work/short-$n.jsonl"
	if [ ! -s "$big" ]; then
		# Distinct documents of 55-99 pseudo-words from a 4000-word
		# vocabulary, so nearly every shingle and band key is new: the
		# index's worst case.
		awk -v n=$n -v seed=7 'BEGIN {
			srand(seed)
			for (i = 0; i < 4000; i++) {
				w = ""
				l = 2 + int(rand() * 7)
				for (k = 0; k < l; k++)
					w = w substr("etaoinshrdlucmfwypvbgkjqxz", 1 + int(rand() * rand() * 26), 1)
				vocab[i] = w
			}
			for (d = 0; d < n; d++) {
				nw = 55 + int(rand() * 45)
				t = ""
				for (k = 0; k < nw; k++) {
					t = t (k ? " " : "") vocab[int(rand() * rand() * 4000)]
					if (rand() < 0.08)
						t = t "."
				}
				printf "{\"id\":\"s%07d\",\"text\":\"%s.\"}\n", d, t
			}
		}' >"$big.tmp"
		mv "$big.tmp" "$big"
	fi
	bigbytes=$(wc -c <"$big")
	say ""
	say "== near-dup index: $n documents, $(echo "$bigbytes" | awk '{printf "%.1f", $1 / 1e6}') MB, quern-clean --steps exact_dedup,near_dedup (load $(cut -d' ' -f1 /proc/loadavg))"
	/usr/bin/time -v -o "$out/rss.time" "$Q" --steps exact_dedup,near_dedup \
		--stats "$out/rss.stats.json" --no-manifest -o /dev/null "$big"
	kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/rss.time")
	secs=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out/rss.time" |
		awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
	ib=$(jq '.steps[] | select(.step == "near_dedup") | .counters.index_bytes' "$out/rss.stats.json")
	kept=$(jq '.documents_out' "$out/rss.stats.json")
	awk -v kb="$kb" -v s="$secs" -v b="$bigbytes" -v n=$n -v ib="$ib" -v kept="$kept" 'BEGIN {
		printf "peak RSS %.1f MB (%.0f bytes a document); index_bytes %.1f MB (%.0f a document)\n",
			kb * 1024 / 1e6, kb * 1024 / n, ib / 1e6, ib / n
		printf "%.1f s (%.1f MB/s), %d of %d documents kept\n", s, b / s / 1e6, kept, n
	}' | tee -a "$res"
fi
