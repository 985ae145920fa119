# run_slurm.sh - quern-run --executor slurm on a real one-node Slurm cluster
# that the test starts (munged, slurmctld, slurmd, all with their files in
# $T) and stops: a sharded stage becomes an array job chained with afterok,
# the outputs equal the local executor's, a failed shard and a cancelled
# (scancel) array task are rerun alone with the stages after them, the
# ledger records the submission; pipelines/demo_sharded.yaml on Slurm makes
# demo.yaml's outputs byte for byte. Skips, saying why, only where Slurm
# cannot start here.
. "$QN_TOP/tests/cli/lib.sh"
R="$QN_BIN/quern-run"
C="$T/c"
mkdir -p "$C/state" "$C/spool" "$C/munge"
chmod 755 "$T" # munged wants every folder above its socket searchable
skip() {
	echo "SKIP: run_slurm: $1"
	exit 0
}
stop_cluster() {
	for f in "$C/slurmd.pid" "$C/slurmctld.pid" "$C/munge/pid"; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	sleep 0.3
	for f in "$C/slurmd.pid" "$C/slurmctld.pid" "$C/munge/pid"; do
		[ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	rm -rf "$T"
}
trap stop_cluster EXIT
for b in munged slurmctld slurmd sbatch squeue sinfo scancel; do
	command -v $b >/dev/null 2>&1 || [ -x /usr/sbin/$b ] ||
		skip "'$b' is not installed (apt-get install slurm-wlm munge)"
done
PATH=$PATH:/usr/sbin
[ "$(id -u)" = 0 ] || skip "slurmd must run as root here (SlurmUser=root)"

# munge with its own key, socket and files
dd if=/dev/urandom of="$C/munge/key" bs=1024 count=1 2>/dev/null
chmod 400 "$C/munge/key"
munged --socket="$C/munge/sock" --key-file="$C/munge/key" --pid-file="$C/munge/pid" \
	--log-file="$C/munge/log" --seed-file="$C/munge/seed" >"$C/munge/out" 2>&1 ||
	skip "munged cannot start: $(tail -c 300 "$C/munge/out" "$C/munge/log" 2>/dev/null | tr '\n' ' ')"
port=$((20000 + $$ % 20000))
cat >"$C/slurm.conf" <<EOF
ClusterName=quern
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$C/munge/sock
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$C/state
SlurmdSpoolDir=$C/spool
SlurmctldPidFile=$C/slurmctld.pid
SlurmdPidFile=$C/slurmd.pid
SlurmctldLogFile=$C/slurmctld.log
SlurmdLogFile=$C/slurmd.log
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=localhost CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$C/slurm.conf"
slurmctld -f "$C/slurm.conf" -i >"$C/ctld.out" 2>&1 ||
	skip "slurmctld cannot start: $(tail -c 300 "$C/ctld.out" "$C/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
slurmd -f "$C/slurm.conf" >"$C/slurmd.out" 2>&1 ||
	skip "slurmd cannot start: $(tail -c 300 "$C/slurmd.out" "$C/slurmd.log" 2>/dev/null | tr '\n' ' ')"
n=0
until sinfo -h -o %t 2>/dev/null | grep -qx idle; do
	n=$((n + 1))
	[ $n -gt 100 ] && skip "the node never became idle: $(sinfo 2>&1 | tail -1; tail -c 300 "$C/slurmctld.log" "$C/slurmd.log" | tr '\n' ' ')"
	sleep 0.1
done
pass "a one-node Slurm cluster is up"

# the pipeline, run once locally and once on Slurm
mkdir -p "$T/local" "$T/slurm"
i=0
while [ $i -lt 200 ]; do
	echo "doc $i $(( (i * 7919) % 1000 ))"
	i=$((i + 1))
done >"$T/local/docs.txt"
cat >"$T/local/pipeline.yaml" <<'EOF'
stages:
  clean:
    shards: 4
    cmd:
      - awk -v s=${shard} -v n=${nshards} 'NR % n == s' docs.txt | tr a-z A-Z > parts/part-${shard}.txt
      - if [ -f fail-${shard} ]; then rm fail-${shard}; exit 3; fi
      - if [ -f slow-${shard} ]; then rm slow-${shard}; touch started-${shard}; sleep 30; fi
      - echo ${shard} >> ran.log
    deps: [docs.txt]
    outs: ["parts/part-${shard}.txt", parts/stats.txt]
    merge: cat parts/part-*.txt | wc -l > parts/stats.txt
  report:
    cmd: sort parts/part-*.txt > report.txt && echo report >> ran.log
    deps: [parts/stats.txt]
    outs: [report.txt]
EOF
cp "$T/local/docs.txt" "$T/local/pipeline.yaml" "$T/slurm/"
expect_rc "the local executor" 0 "$R" run -q -j 4 -f "$T/local/pipeline.yaml"
cd "$T/slurm" || exit 1
expect_rc "--executor slurm --wait" 0 "$R" run --executor slurm --wait --array-width 2 \
	--slurm-partition debug --slurm-time 5 --slurm-cpus 1 --slurm-mem 1M --sbatch-arg=--nice=0
grep_in "a sharded stage is an array job" "$T/out" "^submitted 'clean' shards 0-3 of 4 as job [0-9]+, its merge as job [0-9]+$"
grep_in "and the stage after it a job" "$T/out" "^submitted 'report' as job [0-9]+$"
grep_in "--wait reports it done" "$T/out" "^ran 'report'$"
check "the same documents as the local run" cmp report.txt "$T/local/report.txt"
for s in 0 1 2 3; do
	check "the same shard $s" cmp parts/part-$s.txt "$T/local/parts/part-$s.txt"
done
check "the same merged stats" cmp parts/stats.txt "$T/local/parts/stats.txt"
check "per-task logs" sh -c "grep -q \"stage 'clean' shard 3 of 4\" .quern-run/logs/clean-3.log"
check "the array job is limited to 2 at once and chained" \
	sh -c "grep -q -- '--array' .quern-run/slurm/clean.sh || grep -q 'SLURM_ARRAY_TASK_ID' .quern-run/slurm/clean.sh"
check "markers for every shard" sh -c "ls .quern-run/markers/clean/0.done .quern-run/markers/clean/3.done"
check "the lock file is written by the jobs" sh -c "jq -e '.stages.clean and .stages.report' pipeline.lock"
expect_rc "status after it: up to date" 0 "$R" status
expect_rc "a rerun submits nothing" 0 "$R" run --executor slurm --wait
grep_in "nothing to submit" "$T/out" "^up to date: nothing to submit$"
check "the ledger records the submission with its jobs" sh -c \
	"jq -s -e 'map(select(.type == \"submit\")) | length == 1 and (.[0] | .executor == \"slurm\" and (.jobs | length) == 3 and .stages.clean.array > 0)' .quern-run/ledger.jsonl"
check "and every stage the jobs ran, under the submission's run id" sh -c \
	"r=\$(jq -r 'select(.type == \"submit\") | .run' .quern-run/ledger.jsonl) && test \"\$(jq -r --arg r \"\$r\" 'select(.type == \"stage\" and .run == \$r and .status == \"ran\") | .stage' .quern-run/ledger.jsonl | sort -u | tr '\\n' ' ')\" = 'clean report '"
expect_rc "the ledger's chain holds with the jobs' appends" 0 "$R" verify-ledger
expect_rc "log lists the submission" 0 "$R" log
grep_in "log: the submission" "$T/out" "submitted 3 Slurm jobs"

# one shard fails on Slurm: the rerun submits only it and the stages after it
printf 'doc extra 1\n' >>docs.txt
touch fail-2
: >ran.log
expect_rc "a shard fails" 1 "$R" run --executor slurm --wait
grep_in "the failed shard is named with its log" "$T/err" "stage 'clean' shard 2 did not finish; log: .quern-run/logs/clean-2.log"
expect_rc "status reads the markers" 1 "$R" status
grep_in "status: only shard 2 is not done" "$T/out" "^clean: .*shards not done: 2$"
expect_rc "dry run" 0 "$R" run --executor slurm -n
grep_in "would submit shard 2 alone" "$T/out" "^would submit 'clean' \(shards 2 of 4\)"
: >ran.log
expect_rc "the rerun" 0 "$R" run --executor slurm --wait
grep_in "submits only shard 2" "$T/out" "^submitted 'clean' shards 2 of 4 as job"
grep_in "and the stage after it" "$T/out" "^submitted 'report' as job"
lines "two stages submitted, nothing else" "$T/out" 4
check "only shard 2 and the report ran" sh -c "test \"\$(tr '\n' ' ' <ran.log)\" = '2 report '"
check "the job list records shard 2" sh -c "jq -e '.stages.clean.shards == \"2\" and (.stages | length) == 2' .quern-run/slurm/jobs.json"
"$R" run -q -j 4 -f "$T/local/pipeline.yaml" --force >/dev/null 2>&1
cp docs.txt "$T/local/docs.txt"
"$R" run -q -j 4 -f "$T/local/pipeline.yaml" >/dev/null 2>&1
check "and the result equals the local run" cmp report.txt "$T/local/report.txt"

# kill one array task (scancel): the rerun submits only it and what follows
printf 'doc extra 2\n' >>docs.txt
touch slow-1
expect_rc "submit without --wait" 0 "$R" run --executor slurm
job=$(jq -r .stages.clean.array .quern-run/slurm/jobs.json)
n=0
until [ -e started-1 ] || [ $n -gt 150 ]; do
	n=$((n + 1))
	sleep 0.1
done
check "task 1 is running" test -e started-1
expect_rc "a second submission while jobs are queued" 75 "$R" run --executor slurm
grep_in "says the jobs are still queued" "$T/err" "still queued or running"
scancel "${job}_1"
n=0
while [ -n "$(squeue -h -j "$(jq -r '.jobs | map(tostring) | join(",")' .quern-run/slurm/jobs.json)" 2>/dev/null)" ] && [ $n -lt 150 ]; do
	n=$((n + 1))
	sleep 0.1
done
expect_rc "status after the kill" 1 "$R" status
grep_in "only shard 1 is not done" "$T/out" "^clean: .*shards not done: 1$"
: >ran.log
expect_rc "the rerun after the kill" 0 "$R" run --executor slurm --wait
grep_in "submits only shard 1" "$T/out" "^submitted 'clean' shards 1 of 4 as job"
grep_in "and the report" "$T/out" "^submitted 'report' as job"
check "only shard 1 and the report ran" sh -c "test \"\$(tr '\n' ' ' <ran.log)\" = '1 report '"
cp docs.txt "$T/local/docs.txt"
"$R" run -q -j 4 -f "$T/local/pipeline.yaml" >/dev/null 2>&1
check "and the result equals the local run" cmp report.txt "$T/local/report.txt"

# The demo pipeline with its data stages at shards: 4 (pipelines/
# demo_sharded.yaml) on Slurm against demo.yaml run by one local process:
# the same documents, cleaned documents, rejects (sorted), statistics,
# tokenizer, token shards and, trained from them, the same model; and the
# stages are array jobs with their merges.
D="$T/demo"
for side in single sharded; do
	mkdir -p "$D/$side/pipelines" "$D/$side/examples"
	cp -r "$QN_TOP/examples/corpus" "$D/$side/examples/"
	cp "$QN_TOP/pipelines/params.yaml" "$QN_TOP/pipelines/demo_report.sh" "$D/$side/pipelines/"
done
cp "$QN_TOP/pipelines/demo.yaml" "$D/single/pipelines/"
# the same output folder on both sides, so that the paths the tools record match
sed 's#/out/demo-sharded#/out/demo#' "$QN_TOP/pipelines/demo_sharded.yaml" >"$D/sharded/pipelines/demo.yaml"
export SOURCE_DATE_EPOCH=1700000000
PATH="$QN_BIN:$PATH"
export PATH
cd "$D/single" || exit 1
expect_rc "demo.yaml, one local process a stage" 0 "$R" run -q -j 1 -f pipelines/demo.yaml
cd "$D/sharded" || exit 1
expect_rc "demo_sharded.yaml on Slurm" 0 "$R" run -f pipelines/demo.yaml --executor slurm --wait \
	--array-width 4 --slurm-time 10
for s in ingest clean dedup encode; do
	grep_in "'$s' is an array job of 4 with its merge" "$T/out" \
		"^submitted '$s' shards 0-3 of 4 as job [0-9]+, its merge as job [0-9]+$"
done
grep_in "the report is made on Slurm too" "$T/out" "^submitted 'report' as job [0-9]+$"
A="$D/single/examples/out/demo"
B="$D/sharded/examples/out/demo"
for f in docs.jsonl clean.jsonl tok/tokenizer.json tok/quern-tokenizer.json shards/manifest.json \
	shards/train-00000.qsh shards/val-00000.qsh model/model.safetensors samples.jsonl; do
	check "sharded on Slurm: the same $f" cmp "$A/$f" "$B/$f"
done
check "sharded on Slurm: the same token shard files" \
	sh -c "cd '$A/shards' && ls *.qsh >'$T/qa' && cd '$B/shards' && ls *.qsh | cmp - '$T/qa'"
sort "$A/rejects.jsonl" >"$T/ra"
sort "$B/rejects.jsonl" >"$T/rb"
check "sharded on Slurm: the same rejects, sorted" cmp "$T/ra" "$T/rb"
check "the demo removes some document" test -s "$T/ra"
jq -S . "$A/clean-stats.json" >"$T/sa"
jq -S . "$B/clean-stats.json" >"$T/sb"
check "sharded on Slurm: the same clean statistics (quern-clean merge-stats)" cmp "$T/sa" "$T/sb"
check "markers for every shard of every data stage" sh -c \
	'for s in ingest clean dedup encode; do for i in 0 1 2 3; do test -f pipelines/.quern-run/markers/$s/$i.done || exit 1; done; done'
expect_rc "the sharded demo is up to date" 0 "$R" status -f pipelines/demo.yaml
