#!/bin/sh
# tests/run.sh BUILD - runs every test and prints "N passed, N failed".
#
# Unit tests (BUILD/tests/test_*) and fuzz replays (BUILD/tests/replay_*)
# print one "PASS: ..." or "FAIL: ..." line per check; command-line tests
# (tests/cli/*.sh) do the same through tests/cli/lib.sh. A program that
# exits non-zero without printing a FAIL line counts as one failure.
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
export QN_BIN="$BUILD/bin" QN_TESTS="$BUILD/tests" QN_TOP="$top"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0
failed=0

run() { # name command...
	name=$1
	shift
	"$@" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^PASS: ' "$log")
	f=$(grep -c '^FAIL: ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL: $name exited $rc" >>"$log"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "--- $name: $p passed, $f failed"
		grep -v '^PASS: ' "$log" | head -n 60
	else
		echo "ok  $name ($p checks)"
	fi
	grep '^SKIP: ' "$log" | sed "s|^|    $name: |"
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && run "unit/$(basename "$t")" "$t"
done
for t in "$BUILD"/tests/replay_*; do
	[ -x "$t" ] || continue
	target=${t##*/replay_}
	run "fuzz/$target" "$t" "$top/tests/fuzz/corpus/$target"
done
for t in "$top"/tests/cli/*.sh; do
	case $t in */lib.sh) continue ;; esac
	run "cli/$(basename "$t" .sh)" sh "$t"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
