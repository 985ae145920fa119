#!/bin/sh
# tests/fuzz/run.sh FUZZ_BUILD SECONDS [TARGET ...] - runs each libFuzzer
# target for SECONDS on its corpus (tests/fuzz/corpus/<target>), then merges
# the inputs that found new coverage back into that corpus. A crash leaves
# its input in FUZZ_BUILD/crashes/<target>/ and fails the run; once fixed,
# copy it into the corpus so `make test` replays it forever.
set -u
B=$1
secs=$2
shift 2
top=$(cd "$(dirname "$0")/../.." && pwd)
targets=${*:-$(cd "$top/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')}
status=0
for t in $targets; do
	corpus="$top/tests/fuzz/corpus/$t"
	new="$B/new/$t"
	crashes="$B/crashes/$t"
	mkdir -p "$new" "$crashes" "$corpus"
	echo "== $t: ${secs}s"
	if "$B/$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$crashes/" -print_final_stats=1 "$new" "$corpus" \
		>"$B/$t.log" 2>&1; then
		grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$B/$t.log" | tr '\n' ' '
		echo "no findings"
		"$B/$t" -merge=1 -max_len=65536 "$corpus" "$new" >/dev/null 2>&1
	else
		echo "FINDING: see $B/$t.log and $crashes"
		status=1
	fi
done
exit $status
