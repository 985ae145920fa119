# run_shards.sh - quern-run's sharded stages under the local executor:
# `shards: N` runs N tasks in a process pool (-j) with ${shard}/${nshards}
# (and QUERN_SHARD/QUERN_NSHARDS) filled in; the shards' outputs together
# equal a single-process run; each shard leaves a completion marker, and a
# rerun after a failed or killed shard runs only that shard, the merge and
# the stages after it.
. "$QN_TOP/tests/cli/lib.sh"
R="$QN_BIN/quern-run"
P="$T/p"
mkdir -p "$P"
cd "$P" || exit 1
i=0
while [ $i -lt 200 ]; do
	echo "doc $i $(( (i * 7919) % 1000 ))"
	i=$((i + 1))
done >docs.txt
cat >pipeline.yaml <<'EOF'
stages:
  single:
    cmd: tr a-z A-Z < docs.txt > single.txt
    deps: [docs.txt]
    outs: [single.txt]
  clean:
    shards: 4
    cmd:
      - test "$QUERN_SHARD" = ${shard} && test "$QUERN_NSHARDS" = ${nshards}
      - awk -v s=${shard} -v n=${nshards} 'NR % n == s' docs.txt | tr a-z A-Z > parts/part-${shard}.txt
      - if [ -f fail-${shard} ]; then rm fail-${shard}; exit 3; fi
      - if [ -f kill-${shard} ]; then rm kill-${shard}; kill -9 $$; fi
      - echo ${shard} >> ran.log
    deps: [docs.txt]
    outs: ["parts/part-${shard}.txt", parts/stats.txt]
    merge: cat parts/part-*.txt | wc -l > parts/stats.txt
  report:
    cmd: sort parts/part-*.txt > report.txt
    deps: [parts/stats.txt]
    outs: [report.txt]
EOF
expect_rc "a sharded pipeline runs" 0 "$R" run -j 4
grep_in "the shards run" "$T/out" "^running 'clean' shard 3 of 4$"
grep_in "then the merge" "$T/out" "^running 'clean' \(merge\)$"
check "sharded output equals a single-process run after sorting" \
	sh -c "sort single.txt | cmp - report.txt"
check "the merge counted every document" sh -c "test \$(cat parts/stats.txt) -eq 200"
check "every shard has a marker" sh -c "ls .quern-run/markers/clean/0.done .quern-run/markers/clean/3.done"
check "a marker names the shard's outputs and their hashes" \
	sh -c "jq -e '.shard == 1 and .nshards == 4 and .outs[0].path == \"parts/part-1.txt\" and (.outs[0].sha256 | length) == 64' .quern-run/markers/clean/1.done"
check "the lock entry is per stage with every shard's output" \
	sh -c "jq -e '.stages.clean.outs | length == 5' pipeline.lock"
check "the lock keeps \${shard} in the command" sh -c "grep -q 'part-\${shard}.txt' pipeline.lock"
expect_rc "a second run" 0 "$R" run -j 4
grep_in "is up to date" "$T/out" "^up to date: nothing to run$"

# one shard fails: the others finish and keep their markers
printf 'doc extra 1\n' >>docs.txt
touch fail-2
: >ran.log
expect_rc "a shard fails (-k: the other shards go on)" 3 "$R" run -k -j 4
grep_in "the failure names the shard and its log" "$T/err" "stage 'clean' shard 2 failed \(exit 3\); log: .quern-run/logs/clean-2\."
check "the other shards ran" sh -c "sort ran.log | tr '\n' ' ' | grep -qx '0 1 3 '"
check "the failed shard's output is back as it was" sh -c "! grep -q 'DOC EXTRA' parts/part-2.txt"
check "the new shards' outputs are in place" sh -c "grep -q 'DOC EXTRA' parts/part-1.txt"
check "the failed shard's marker is the old run's" \
	sh -c "test \"\$(jq -r .key .quern-run/markers/clean/2.done)\" != \"\$(jq -r .key .quern-run/markers/clean/0.done)\""
check "the stage after it did not run" sh -c "! grep -q 'doc extra' report.txt"
expect_rc "status says it is stale" 1 "$R" status
grep_in "status names the shards not done" "$T/out" "^clean: .*shards not done: 2$"
: >ran.log
expect_rc "the rerun" 0 "$R" run -j 4
check "the rerun ran only the failed shard" sh -c "test \"\$(cat ran.log)\" = 2"
no_grep_in "no other shard" "$T/out" "shard [013] of 4"
grep_in "and the stages after it" "$T/out" "^ran 'report'"
check "the result equals a single-process run" \
	sh -c "'$R' run -q single && sort single.txt | cmp - report.txt"

# one shard is killed (kill -9): the rerun again runs only that shard
printf 'doc extra 2\n' >>docs.txt
touch kill-1
: >ran.log
expect_rc "a shard is killed" 137 "$R" run -k -j 2 clean
grep_in "the kill is named" "$T/err" "shard 1 failed \(killed by signal 9\)"
: >ran.log
expect_rc "the rerun after a kill" 0 "$R" run -j 2
check "only the killed shard ran" sh -c "test \"\$(cat ran.log)\" = 1"
check "and the result is still right" sh -c "'$R' run -q && sort single.txt | cmp - report.txt"

# a shard's output changed by hand: only that shard reruns
echo tampered >>parts/part-3.txt
: >ran.log
expect_rc "a changed shard output" 0 "$R" run -j 4
check "only that shard ran again" sh -c "test \"\$(cat ran.log)\" = 3"
: >ran.log
expect_rc "--force runs every shard" 0 "$R" run -j 4 --force clean
check "all four ran" sh -c "test \$(wc -l <ran.log) -eq 4"
expect_rc "dry run" 0 "$R" run -n
lines "nothing would run" "$T/out" 0

# -j 1: the shards run one after another and still give the same result
rm -rf parts report.txt .quern-run/markers pipeline.lock
expect_rc "-j 1" 0 "$R" run
check "the same output" sh -c "sort single.txt | cmp - report.txt"

# errors
cat >bad1.yaml <<'EOF'
stages:
  a:
    shards: 2
    cmd: echo ${shard} > o-${shard}
    outs: ["o-${shard}", all.txt]
EOF
expect_rc "an output without \${shard} needs a merge" 1 "$R" status -f bad1.yaml
grep_in "and says so" "$T/err" "bad1.yaml:5:.*output 'all.txt' of sharded stage 'a' has no \\$\\{shard\\}: only a 'merge' command can write it"
cat >bad2.yaml <<'EOF'
stages:
  a:
    cmd: echo ${shard} > o
    outs: [o]
EOF
expect_rc "\${shard} in a stage without shards" 1 "$R" status -f bad2.yaml
grep_in "is an undefined variable" "$T/err" "undefined variable 'shard'"
cat >bad3.yaml <<'EOF'
stages:
  a:
    cmd: echo a > o
    merge: cat o
    outs: [o]
EOF
expect_rc "merge without shards" 1 "$R" status -f bad3.yaml
grep_in "says merge goes with shards" "$T/err" "'merge' of stage 'a' goes with 'shards'"
cat >bad4.yaml <<'EOF'
stages:
  a:
    shards: 0
    cmd: echo a
EOF
expect_rc "shards: 0" 1 "$R" status -f bad4.yaml
expect_rc "--executor bogus" 2 "$R" run --executor bogus
expect_rc "--wait without slurm" 2 "$R" run --wait
