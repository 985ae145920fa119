# run_safety.sh - quern-run under cron (acceptance 3): one run at a time (75,
# naming the holder), kill -9 mid-stage and rerun (outputs whole), a failing
# stage (its exit status, name and log; outputs and lock entry unchanged),
# -k, retries, timeout.
. "$QN_TOP/tests/cli/lib.sh"
R="$QN_BIN/quern-run"
P="$T/p"
mkdir -p "$P"
cd "$P" || exit 1

cat >slow.yaml <<'EOF'
stages:
  slow:
    cmd: printf 'part' > out.txt && sleep ${pause} && printf 'whole\n' >> out.txt && cp -r dir.src outdir
    deps: [in.txt]
    outs: [out.txt, outdir]
  after:
    cmd: cat out.txt > after.txt
    deps: [out.txt]
    outs: [after.txt]
EOF
printf 'pause: 2\n' >params.yaml
printf 'x\n' >in.txt
mkdir -p dir.src && printf 'f\n' >dir.src/f

# a second run while one is active exits 75 naming the holder
"$R" run -q -f slow.yaml >"$T/bg.out" 2>&1 &
bg=$!
i=0
while [ ! -e .quern-run/journal/slow.json ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect_rc "a concurrent run exits 75" 75 "$R" run -f slow.yaml
grep_in "the message names the holder's pid" "$T/err" "already running: pid $bg on .* since [0-9]{4}-"
wait $bg
check "the first run still completes" test "$(cat out.txt)" = partwhole
check "the first run wrote the lock file" grep -q '"slow"' slow.lock

# kill -9 mid-stage: the next run restores, reruns, and every output is whole
printf 'y\n' >in.txt
"$R" run -q -f slow.yaml >/dev/null 2>&1 &
bg=$!
i=0
while ! grep -q part out.txt 2>/dev/null || [ "$(cat out.txt)" != part ]; do
	sleep 0.1
	i=$((i + 1))
	[ $i -lt 50 ] || break
done
kill -9 $bg
wait $bg 2>/dev/null
check "the killed run left its stage half done" test "$(cat out.txt)" = part
check "the journal names the interrupted stage" test -e .quern-run/journal/slow.json
expect_rc "status after kill -9 is stale" 1 "$R" status -f slow.yaml
grep_in "status mentions the interrupted stage" "$T/out" "interrupted"
printf 'pause: 0\n' >params.yaml
expect_rc "the run after kill -9 completes" 0 "$R" run -f slow.yaml
grep_in "it says it cleaned up" "$T/err" "stage 'slow' of run .* was interrupted"
check "the output is whole" test "$(cat out.txt)" = partwhole
check "the folder output is whole" test "$(cat outdir/f)" = f
check "no nested copy in the folder output" test ! -e outdir/dir.src
check "the journal is gone" test ! -e .quern-run/journal/slow.json
sleep 2 # the killed stage's sleep would have ended: its leftovers must not write
check "the killed stage's processes are gone" test "$(cat out.txt)" = partwhole
expect_rc "then up to date" 0 "$R" status -f slow.yaml

# a failing stage: exit status, name, log; outputs restored; lock entry unchanged
cat >fail.yaml <<'EOF'
stages:
  good:
    cmd: cat in.txt > good.txt
    deps: [in.txt]
    outs: [good.txt]
  bad:
    cmd: echo broken > bad.txt; echo "something went wrong" >&2; exit ${code}
    deps: [good.txt]
    outs: [bad.txt]
  down:
    cmd: cat bad.txt > down.txt
    deps: [bad.txt]
    outs: [down.txt]
  side:
    cmd: sleep 0.5; echo side > side.txt
    outs: [side.txt]
EOF
printf 'code: 0\n' >params.yaml
expect_rc "fail.yaml runs" 0 "$R" run -f fail.yaml
cp fail.lock "$T/lock.before"
printf 'code: 3\n' >params.yaml
expect_rc "a failing stage's exit status" 3 "$R" run -f fail.yaml
grep_in "the failure names the stage and its log" "$T/err" "stage 'bad' failed \(exit 3\); log: \.quern-run/logs/bad\.[0-9TZ-]+\.log"
grep_in "the failure shows the log's tail" "$T/err" "something went wrong"
log=$(sed -n "s/.*log: \(.*\.log\).*/\1/p" "$T/err" | head -n 1)
check "the log exists" test -s "$log"
grep_in "log lines carry UTC timestamps" "$log" "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z something went wrong"
check "the previous output is back" test "$(cat bad.txt)" = broken
check "the lock entry is unchanged" cmp -s fail.lock "$T/lock.before"
check "no stash left" sh -c "! ls .quern-run/stash/*/* 2>/dev/null | grep -q ."
rm bad.txt down.txt side.txt
expect_rc "-k keeps going" 3 "$R" run -k -f fail.yaml
check "with -k an independent stage still ran" test -e side.txt
check "a failed stage leaves no partial output" test ! -e bad.txt
check "what depends on it did not run" test ! -e down.txt
grep_in "-k says what did not run" "$T/err" "1 stage not run"
printf 'code: 0\n' >params.yaml
expect_rc "fixed, it runs" 0 "$R" run -f fail.yaml

# retries: fails on the first try, works on the second
cat >retry.yaml <<'EOF'
stages:
  flaky:
    cmd: if [ -e tried ]; then echo ok > flaky.txt; else touch tried; echo half > flaky.txt; exit 1; fi
    outs: [flaky.txt]
    retries: 2
  never:
    cmd: exit 4
    retries: 1
EOF
expect_rc "retries run a failed stage again" 4 "$R" run -k -f retry.yaml
check "the retried stage's output is its last try's" test "$(cat flaky.txt)" = ok
log=$(ls .quern-run/logs/never.*.log | head -n 1)
grep_in "the log shows the retry" "$log" "retrying \(try 2 of 2\)"

# timeout: the stage is stopped and named
cat >timeout.yaml <<'EOF'
stages:
  hang:
    cmd: echo started > hang.txt; sleep 30
    outs: [hang.txt]
    timeout: 1
EOF
s=$(date +%s)
expect_rc "a stage past its timeout fails with 124" 124 "$R" run -f timeout.yaml
e=$(date +%s)
grep_in "the timeout is named" "$T/err" "stage 'hang' failed \(timed out after 1 s\)"
check "it was stopped promptly" test $((e - s)) -lt 6
check "the timed-out stage left no output" test ! -e hang.txt
