# ingest_state.sh - incremental runs for cron (--state): only new or changed
# files, crash safety under kill -9 at every step, and the run lock.
. "$QN_TOP/tests/cli/lib.sh"
D="$T/drop"
S="$T/state.db"
mkdir -p "$D"
for i in 1 2 3 4 5 6 7 8 9 10; do printf 'document number %s\n' $i >"$D/f$i.txt"; done

docs() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
want_docs() { # NAME FILE N
	n=$(docs "$2")
	if [ "$n" -eq "$3" ]; then pass "$1"; else fail "$1" "$n documents, want $3"; fi
}

expect_rc "first run" 0 "$I" --state "$S" -o "$T/o1.jsonl" "$D"
want_docs "first run emits all 10" "$T/o1.jsonl" 10
expect_rc "second run" 0 "$I" --state "$S" -o "$T/o2.jsonl" "$D"
want_docs "unchanged folder emits nothing" "$T/o2.jsonl" 0

# Add 3 files, change 1 (bigger and newer), touch another (same bytes).
printf 'new a\n' >"$D/n1.txt"
printf 'new b\n' >"$D/n2.txt"
mkdir -p "$D/sub"
printf 'new c\n' >"$D/sub/n3.txt"
sleep 0.01
printf 'document number 4, now edited\n' >"$D/f4.txt"
touch "$D/f7.txt"
expect_rc "third run" 0 "$I" --state "$S" -o "$T/o3.jsonl" "$D"
want_docs "3 new + 1 changed = 4 emitted" "$T/o3.jsonl" 4
grep_in "changed file emitted" "$T/o3.jsonl" "now edited"
no_grep_in "touched file not emitted" "$T/o3.jsonl" "number 7"
expect_rc "fourth run" 0 "$I" --state "$S" -o "$T/o4.jsonl" "$D"
want_docs "nothing new after that" "$T/o4.jsonl" 0

# A failed input is not remembered: it is tried again next time.
: >"$D/empty.txt"
expect_rc "failed input: exit 1" 1 "$I" --state "$S" -o "$T/o5.jsonl" "$D"
printf 'now it has text\n' >"$D/empty.txt"
expect_rc "retried input" 0 "$I" --state "$S" -o "$T/o6.jsonl" "$D"
want_docs "failed input retried and emitted" "$T/o6.jsonl" 1

# kill -9 between the pending record and the rename: no output, rerun emits.
printf 'k1\n' >"$D/k1.txt"
printf 'k2\n' >"$D/k2.txt"
QUERN_FAULT=ingest-prepared "$I" --state "$S" -o "$T/o7.jsonl" "$D" >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 137 ]; then pass "fault: killed before the rename"; else fail "fault: killed before the rename" "exit $rc"; fi
check "killed before the rename: no output" test ! -e "$T/o7.jsonl"
expect_rc "rerun after the kill" 0 "$I" --state "$S" -o "$T/o8.jsonl" "$D"
want_docs "rerun emits the 2 files once" "$T/o8.jsonl" 2

# kill -9 between the rename and the final commit: the next run settles it.
printf 'k3\n' >"$D/k3.txt"
QUERN_FAULT=ingest-renamed "$I" --state "$S" -o "$T/o9.jsonl" "$D" >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 137 ]; then pass "fault: killed after the rename"; else fail "fault: killed after the rename" "exit $rc"; fi
want_docs "killed after the rename: output complete" "$T/o9.jsonl" 1
expect_rc "rerun settles the pending run" 0 "$I" --state "$S" -o "$T/o10.jsonl" "$D"
want_docs "settled run: nothing emitted twice" "$T/o10.jsonl" 0

# A real kill -9 in the middle of a run over many files.
M="$T/many"
mkdir -p "$M"
i=0
while [ $i -lt 3000 ]; do printf 'file %d of many\n' $i >"$M/m$i.txt"; i=$((i + 1)); done
for delay in 0.005 0.02 0.04; do
	S2="$T/s-$delay.db"
	rm -f "$T"/m[123].jsonl
	"$I" -j 2 --state "$S2" -o "$T/m1.jsonl" "$M" >/dev/null 2>&1 &
	pid=$!
	sleep $delay
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	"$I" -j 2 --state "$S2" -o "$T/m2.jsonl" "$M" >/dev/null 2>&1
	"$I" -j 2 --state "$S2" -o "$T/m3.jsonl" "$M" >/dev/null 2>&1
	cat "$T"/m[123].jsonl 2>/dev/null | jq -r .metadata.path | sort >"$T/paths"
	total=$(wc -l <"$T/paths")
	uniq=$(sort -u "$T/paths" | wc -l)
	if [ "$total" -eq 3000 ] && [ "$uniq" -eq 3000 ]; then
		pass "kill -9 after ${delay}s: every file exactly once"
	else
		fail "kill -9 after ${delay}s: every file exactly once" "$total lines, $uniq distinct"
	fi
done

# The lock: a second run on the same state exits 75 naming the holder.
mkfifo "$T/fifo"
"$I" --state "$S" -o "$T/l1.jsonl" "$T/fifo" >/dev/null 2>&1 &
pid=$!
# Wait (up to 20 s, for loaded machines) until the first run holds the lock.
i=0
# F_GETLK only asks; it never takes the lock from under the first run.
while [ $i -lt 200 ] && python3 -c '
import fcntl, struct, sys
fl = struct.pack("@hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
with open(sys.argv[1], "r+") as f:
    t = struct.unpack("@hhqqi", fcntl.fcntl(f, fcntl.F_GETLK, fl))[0]
sys.exit(1 if t != fcntl.F_UNLCK else 0)
' "$S.lock" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
expect_rc "second run while one holds the lock exits 75" 75 "$I" --state "$S" -o "$T/l2.jsonl" "$D"
grep_in "lock message names the holder" "$T/err" "locked by another run \\(pid $pid\\)"
# Never hang on the FIFO, whatever happened to the first run.
timeout 20 sh -c 'printf "unblock\n" >"$1"' sh "$T/fifo"
wait $pid
