# run_demo.sh - the shipped pipelines/demo.yaml end to end on a copy of the
# sample corpus (a few seconds: the model is tiny), then a rerun that runs
# nothing, and pipelines/refresh.yaml's incremental nights.
. "$QN_TOP/tests/cli/lib.sh"
command -v jq >/dev/null 2>&1 || { pass "jq missing: demo skipped"; exit 0; }
mkdir -p "$T/w/examples"
cp -r "$QN_TOP/pipelines" "$T/w/pipelines"
rm -rf "$T/w/pipelines/.quern-run" "$T/w/pipelines"/*.lock
# a shorter training run than make demo's: the chain is what is tested
sed -i "/^demo:/,/^[a-z]/ s/^  steps: .*/  steps: 20/" "$T/w/pipelines/params.yaml"
cp -r "$QN_TOP/examples/corpus" "$T/w/examples/corpus"
cd "$T/w" || exit 1
PATH="$QN_BIN:$PATH"
export PATH
# pinned, so that demo_sharded.yaml's documents can equal demo.yaml's
SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH
R=quern-run
expect_rc "demo.yaml runs" 0 $R run -j 2 -f pipelines/demo.yaml
for f in docs.jsonl clean.jsonl tok shards model samples.jsonl scan.html model-card.md report.html; do
	check "demo made $f" test -s "examples/out/demo/$f"
done
grep_in "the report shows the training" examples/out/demo/report.html "<td>train</td><td>loss [0-9.]+ &rarr; [0-9.]+"
grep_in "the report links the scan" examples/out/demo/report.html 'href="scan.html"'
expect_rc "demo.yaml rerun" 0 $R run -f pipelines/demo.yaml
grep_in "the rerun runs nothing" "$T/out" "^up to date: nothing to run$"
expect_rc "lineage of the report" 0 $R lineage -f pipelines/demo.yaml examples/out/demo/report.html
grep_in "lineage reaches a corpus file" "$T/out" "examples/corpus/tickets.csv"

# demo_sharded.yaml: the data stages as 4 shards on the local process pool
# give demo.yaml's documents, token shards and model (run_slurm.sh does the
# same on Slurm, with every output compared)
expect_rc "demo_sharded.yaml runs with -j 4" 0 $R run -q -j 4 -f pipelines/demo_sharded.yaml
for f in docs.jsonl clean.jsonl shards/train-00000.qsh shards/val-00000.qsh model/model.safetensors; do
	check "sharded locally: the same $f" cmp examples/out/demo/$f examples/out/demo-sharded/$f
done
sort examples/out/demo/rejects.jsonl >"$T/ra"
sort examples/out/demo-sharded/rejects.jsonl >"$T/rb"
check "sharded locally: the same rejects, sorted" cmp "$T/ra" "$T/rb"
jq -S . examples/out/demo/clean-stats.json >"$T/sa"
jq -S . examples/out/demo-sharded/clean-stats.json >"$T/sb"
check "sharded locally: the same clean statistics" cmp "$T/sa" "$T/sb"
check "the sharded report is made" test -s examples/out/demo-sharded/report.html

mkdir -p examples/out/refresh/inbox
cp examples/corpus/tickets.csv examples/out/refresh/inbox/
expect_rc "refresh night 1" 0 $R run -q -f pipelines/refresh.yaml
n1=$(wc -l <examples/out/refresh/new/docs.jsonl)
sleep 1
cp examples/corpus/notes/*.txt examples/out/refresh/inbox/
expect_rc "refresh night 2" 0 $R run -q -f pipelines/refresh.yaml
check "night 2 ingests only the new files" test "$(wc -l <examples/out/refresh/new/docs.jsonl)" -eq 2
check "night 1 had the old ones" test "$n1" -gt 2
check "each night appends a shard folder" test "$(ls examples/out/refresh/shards | wc -l)" -eq 2
expect_rc "refresh night 3, nothing new" 0 $R run -f pipelines/refresh.yaml
grep_in "nothing new runs nothing" "$T/out" "nothing to run"
