# run_ledger.sh - quern-run's ledger (acceptance 4: any edited byte, removed,
# reordered or cut-off record is found and named), log, the catalog and
# lineage through a real quern tool's manifest.
. "$QN_TOP/tests/cli/lib.sh"
R="$QN_BIN/quern-run"
P="$T/p"
mkdir -p "$P/corpus"
cd "$P" || exit 1
printf 'first note\n' >corpus/a.txt
printf 'second note about things\n' >corpus/b.md
cat >pipeline.yaml <<EOF
stages:
  ingest:
    cmd: "'$QN_BIN/quern-ingest' -q -o docs.jsonl corpus"
    deps: [corpus]
    outs: [docs.jsonl]
  upper:
    cmd: tr a-z A-Z < docs.jsonl > upper.jsonl
    deps: [docs.jsonl]
    outs: [upper.jsonl]
  fails:
    cmd: exit 5
EOF
expect_rc "first run (one stage fails)" 5 "$R" run -k
printf 'third\n' >corpus/c.txt
expect_rc "second run" 5 "$R" run -k
expect_rc "verify-ledger on an intact ledger" 0 "$R" verify-ledger
grep_in "it counts the records" "$T/out" "^ledger intact: 8 records$"
expect_rc "log" 0 "$R" log
lines "log shows one line a run" "$T/out" 2
grep_in "log shows what ran" "$T/out" "rc 5 +ran 2, up to date 0, failed 1 +pipeline.yaml"
expect_rc "log -v" 0 "$R" log -v
grep_in "log -v shows stages" "$T/out" "failed 'fails' \(exit 5\)"

L=.quern-run/ledger.jsonl
cp $L "$T/ledger.good"
size=$(wc -c <$L)
bad=0
n=0
# every 37th byte, and the last ones (a hash, the closing brace, the newline)
for pos in $(awk -v s="$size" 'BEGIN { for (i = 1; i <= s; i += 37) print i; for (i = s - 5; i <= s; i++) print i }'); do
	n=$((n + 1))
	cp "$T/ledger.good" $L
	orig=$(dd if=$L bs=1 skip=$((pos - 1)) count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	new=$(((orig + 1) % 256))
	[ "$new" -eq 10 ] && new=11
	printf "$(printf '\\%03o' "$new")" | dd of=$L bs=1 seek=$((pos - 1)) count=1 conv=notrunc 2>/dev/null
	if "$R" verify-ledger >/dev/null 2>"$T/verr"; then
		bad=$((bad + 1))
		echo "undetected edit at byte $pos"
	elif ! grep -Eq "ledger.jsonl(:[0-9]+)?: (record [0-9]+|the ledger ends)" "$T/verr"; then
		bad=$((bad + 1))
		echo "edit at byte $pos: unclear message: $(cat "$T/verr")"
	fi
done
if [ $bad -eq 0 ]; then pass "every edited byte is found ($n positions)"; else fail "every edited byte is found" "$bad of $n missed"; fi

cp "$T/ledger.good" $L
sed -i '3s/"rc":5/"rc":0/' $L
expect_rc "an edited field" 1 "$R" verify-ledger
grep_in "the edited record is named" "$T/err" "ledger.jsonl:3: record 3 was edited"
cp "$T/ledger.good" $L
sed -i '2d' $L
expect_rc "a removed record" 1 "$R" verify-ledger
grep_in "the gap is named" "$T/err" "ledger.jsonl:2: record 2 does not follow record 1"
cp "$T/ledger.good" $L
{ sed -n 1p "$T/ledger.good"; sed -n 3p "$T/ledger.good"; sed -n 2p "$T/ledger.good"; sed -n '4,$p' "$T/ledger.good"; } >$L
expect_rc "reordered records" 1 "$R" verify-ledger
grep_in "the break is named" "$T/err" "record 2 does not follow record 1"
head -n 7 "$T/ledger.good" >$L
expect_rc "the last record cut off" 1 "$R" verify-ledger
grep_in "the cut is found through the head" "$T/err" "ends at record 7 but its head names record 8"
cp "$T/ledger.good" $L
expect_rc "restored, intact again" 0 "$R" verify-ledger
expect_rc "a run appends to the restored chain" 5 "$R" run -k
expect_rc "and the chain holds" 0 "$R" verify-ledger

# the catalog: stages, artifacts, the tool's manifest
expect_rc "lineage of the last output" 0 "$R" lineage upper.jsonl
grep_in "lineage names the stage" "$T/out" "^upper.jsonl  sha256 [0-9a-f]{12}  <- stage 'upper'"
grep_in "and the stage before it" "$T/out" "^  docs.jsonl  sha256 [0-9a-f]{12}  <- stage 'ingest'"
grep_in "and the files in quern-ingest's manifest" "$T/out" "corpus/c.txt  sha256 [0-9a-f]{12}  \(in the tool's manifest\)"
grep_in "and the source" "$T/out" "^  corpus$"
expect_rc "lineage from another folder" 0 sh -c "cd '$T' && '$R' lineage -f p/pipeline.yaml p/docs.jsonl"
grep_in "paths are the pipeline's" "$T/out" "^docs.jsonl  sha256"
expect_rc "lineage of a source" 1 "$R" lineage corpus/a.txt
grep_in "says it is no output" "$T/err" "is no output of a stage that ran"
check "the catalog has the runs" sh -c "sqlite3 .quern-run/catalog.sqlite 'select count(*) from runs' 2>/dev/null | grep -qx 3 || ! command -v sqlite3"
