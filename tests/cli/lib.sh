# tests/cli/lib.sh - helpers for command-line tests (sourced).
#
# Each check prints "PASS: name" or "FAIL: name: why"; tests/run.sh counts.
# QN_BIN is the folder of the built tools; every test gets a fresh $T.
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
I="$QN_BIN/quern-ingest"
FIX="$QN_TOP/tests/fixtures"

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

# expect_rc NAME WANT command...: runs the command (stdout to $T/out,
# stderr to $T/err) and checks its exit status.
expect_rc() {
	name=$1 want=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" -eq "$want" ]; then pass "$name"; else fail "$name" "exit $got, want $want; stderr: $(head -c 300 "$T/err")"; fi
}

# check NAME command...: passes when the command succeeds.
check() {
	name=$1
	shift
	if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name" "'$*' failed"; fi
}

# grep_in NAME FILE PATTERN: the extended regex appears in the file.
grep_in() {
	if grep -Eq -- "$3" "$2"; then pass "$1"; else fail "$1" "no /$3/ in $2: $(head -c 300 "$2")"; fi
}

no_grep_in() {
	if grep -Eq -- "$3" "$2"; then fail "$1" "unexpected /$3/ in $2"; else pass "$1"; fi
}

# lines NAME FILE N: the file has N lines.
lines() {
	n=$(wc -l <"$2" | tr -d ' ')
	if [ "$n" -eq "$3" ]; then pass "$1"; else fail "$1" "$n lines, want $3"; fi
}

