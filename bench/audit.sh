#!/bin/sh
# bench/audit.sh BUILD - quern-audit scan's throughput with every default
# detector, side by side with `grep -P -c` and one e-mail pattern over the
# same file, measured in one run (called by bench/run.sh; also runs alone:
# sh bench/audit.sh build).
#
#   A generated document corpus (tests/tools/audit_gen, BENCH_AUDIT_SIZE,
#   default 200M: prose with e-mail addresses, phone numbers, IP addresses,
#   cards, IBANs, tokens and passwords in about one document in three)
#   through `quern-audit scan` at -j 1 and -j 2 (findings to a file, no
#   manifest), and `grep -P -c` with an e-mail pattern, LC_ALL=C (grep's
#   fastest setting). Reported: MB/s (wall), MB/s per core, MB per CPU
#   second (user + system, which a busy machine distorts less) and quern -j 1
#   against grep. The acceptance bar: quern -j 1 at least 0.5x grep's speed;
#   the target: 100 MB/s per core.
#
# hyperfine runs with --output=pipe: GNU grep stops at the first match when
# its output is /dev/null, hyperfine's default, which would time nothing.
# The pattern is quoted inside the command: hyperfine -N splits it like a
# shell, and an unquoted '\.' would lose its backslash and become a
# different, much cheaper search for grep.
# Timings are medians of BENCH_RUNS (default 3) runs after a warm-up. The
# corpus is cached in BENCH_DIR (default /tmp/quern-bench).
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}
size=${BENCH_AUDIT_SIZE:-200M}
runs=${BENCH_RUNS:-3}
mkdir -p "$out" "$work"
bin="$work/bin.$$"
mkdir -p "$bin"
trap 'rm -rf "$bin"' EXIT
trap 'exit 1' INT TERM
cp "$B/bin/quern-audit" "$bin/quern-audit"
Q="$bin/quern-audit"
res="$out/audit.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }

for t in hyperfine jq grep; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: '$t' is missing; run 'make deps'" >&2; exit 1; }
done
[ -x "$B/tests/audit_gen" ] || { echo "bench: '$B/tests/audit_gen' is missing; run 'make'" >&2; exit 1; }

corpus="$work/audit-$size.jsonl"
if [ ! -s "$corpus" ]; then
	"$B/tests/audit_gen" "$size" 7 >"$corpus.tmp"
	mv "$corpus.tmp" "$corpus"
fi
bytes=$(wc -c <"$corpus")
cat "$corpus" >/dev/null # into the page cache, for every command alike
email='[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'
found="$work/audit-findings.jsonl"
load=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
say "== quern-audit scan: $(echo "$bytes" | awk '{printf "%.1f", $1 / 1e6}') MB of document JSONL ($(nproc) CPUs: $cpu; load $load; $(date -u +%Y-%m-%d))"
QS="$Q scan --no-manifest -o $found"
hyperfine -N --output=pipe --warmup 1 --runs "$runs" --export-json "$out/audit.json" \
	-n "scan -j 1" "$QS -j 1 $corpus" \
	-n "scan -j 2" "$QS -j 2 $corpus" \
	-n "grep -P -c email" "env LC_ALL=C grep -P -c '$email' $corpus" >"$out/audit.log" 2>&1 ||
	{ cat "$out/audit.log"; exit 1; }
findings=$(wc -l <"$found" | tr -d ' ')
emails=$(LC_ALL=C grep -P -c "$email" "$corpus")
rm -f "$found"
row() {
	jq -r --arg n "$1" --arg j "$2" '.results[] | select(.command == $n) |
		"\($n)\t\(.median)\t\(.user + .system)\t\($j)"' "$out/audit.json"
}
{
	row "scan -j 1" 1
	row "scan -j 2" 2
	row "grep -P -c email" 1
} | awk -F'\t' -v b="$bytes" -v nf="$findings" -v ne="$emails" '
	{ name[NR] = $1; med[NR] = $2; cpu[NR] = $3; j[NR] = $4 }
	END {
		printf "%-28s %8s %8s %10s %9s\n", "", "median s", "MB/s", "MB/s/core", "MB/CPU-s"
		for (i = 1; i <= NR; i++)
			printf "%-28s %8.2f %8.1f %10.1f %9.1f\n", (i == NR ? "peer: " : "quern-audit ") name[i],
				med[i], b / med[i] / 1e6, b / med[i] / 1e6 / j[i], b / cpu[i] / 1e6
		printf "quern-audit scan: %d findings (every default detector); grep: %d lines with an e-mail address\n", nf, ne
		printf "scan -j 1 vs grep: %.2fx grep'\''s speed (%.2fx by CPU time; the bar is 0.5x)\n",
			med[3] / med[1], cpu[3] / cpu[1]
		printf "scan -j 2 vs -j 1: %.2fx\n", med[1] / med[2]
	}' | tee -a "$res"
