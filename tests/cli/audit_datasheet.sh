# audit_datasheet.sh - quern-audit datasheet from a pipeline the real tools
# build (ingest, clean with stats, tokenize) and a scan summary: the
# Datasheets for Datasets sections, counts that match the manifests and
# statistics, languages, duplicates, filters, PII findings by type, the
# marked prompts; kinds recognised by content; -o atomic; bad input, usage
# errors and a full disk.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"
export SOURCE_DATE_EPOCH=1790000000

check "quern-audit is built" test -x "$A"

P="$T/p"
mkdir -p "$P/src"
for i in 1 2 3 4 5 6; do
	printf 'The quiet farmer %s walks to the river every morning, and the old dog follows him along the path.\nThey come back when the sun is high and the fields are warm.\n' "$i" >"$P/src/note$i.txt"
done
cp "$P/src/note1.txt" "$P/src/again.txt" # an exact duplicate
printf 'Write to jane.doe@example.com or call the office about the fox and the farmer by the river.\n' >"$P/src/contact.txt"
(
	cd "$P" || exit 1
	"$QN_BIN/quern-ingest" -o docs.jsonl src &&
		"$QN_BIN/quern-clean" --steps=normalize,exact_dedup,lang,pii -o clean.jsonl -r rej.jsonl \
			--stats clean.stats.json docs.jsonl &&
		"$QN_BIN/quern-tokenize" train --vocab-size 280 -o tok clean.jsonl &&
		"$QN_BIN/quern-tokenize" encode -t tok --val-fraction 0.3 -o shards clean.jsonl
) >"$T/build.log" 2>&1 && pass "fixture pipeline built" || fail "fixture pipeline built" "$(tail -c 300 "$T/build.log")"
# A scan summary as quern-audit scan writes it (docs/audit.md).
cat >"$P/scan.summary.json" <<'J'
{"tool":"quern-audit","version":"0.1.0","created":"2026-11-27T18:00:00Z",
 "inputs":[{"path":"clean.jsonl","documents":7,"bytes":900}],"documents":7,"bytes":900,
 "findings":{"total":5,"reported":4,"suppressed":1,
   "by_type":{"EMAIL":3,"AWS_ACCESS_KEY":1},"by_severity":{"medium":3,"critical":1},
   "by_source":{"clean.jsonl":4},
   "by_rule":{"QN-PII-EMAIL":{"count":3,"type":"EMAIL","kind":"pii","severity":"medium","message":"e-mail address"},
              "QN-SECRET-AWS-ACCESS-KEY":{"count":1,"type":"AWS_ACCESS_KEY","kind":"secret","severity":"critical","message":"AWS access key id"}}},
 "gates":[{"id":"AWS_ACCESS_KEY","rule":"AWS_ACCESS_KEY: 0","observed":1,"limit":0,"per":null,"passed":false,"reason":"AWS_ACCESS_KEY: 1 findings, at most 0 allowed"},
          {"id":"EMAIL","rule":"EMAIL: max 10 per 10k documents","observed":3,"limit":10,"per":{"count":10000,"unit":"documents"},"passed":true,"reason":null}],
 "passed":false,"policy":"policy.yaml","rules":null,"baseline":null}
J

cd "$P" || exit 1
ing=$(jq .counters.documents docs.jsonl.manifest.json)
din=$(jq .documents_in clean.stats.json)
dout=$(jq .documents_out clean.stats.json)
drej=$(jq .documents_rejected clean.stats.json)
dups=$(jq '[.steps[] | select(.step == "exact_dedup") | .documents_in - .documents_out] | add' clean.stats.json)
tokens=$(jq .counters.tokens shards/run.manifest.json)
dtrain=$(jq .counters.documents_train shards/run.manifest.json)
dval=$(jq .counters.documents_val shards/run.manifest.json)
en=$(jq '.steps[] | select(.step == "lang") | .languages.en.documents' clean.stats.json)
[ "$dups" = 1 ] && pass "fixture: one duplicate" || fail "fixture: one duplicate" "$dups"

expect_rc "datasheet: exit 0" 0 "$A" datasheet --name "River notes" docs.jsonl.manifest.json clean.jsonl.manifest.json \
	shards/run.manifest.json clean.stats.json scan.summary.json
cp "$T/out" "$T/ds.md"
if [ -s "$T/err" ]; then fail "datasheet: silent" "$(head -c 300 "$T/err")"; else pass "datasheet: silent"; fi
grep_in "title" "$T/ds.md" '^# Datasheet: River notes$'
for s in "Motivation" "Composition" "Collection Process" "Preprocessing, Cleaning and Labeling" "Uses" \
	"Distribution" "Maintenance"; do
	grep_in "section: $s" "$T/ds.md" "^## $s\$"
done
grep_in "reproducible date (SOURCE_DATE_EPOCH)" "$T/ds.md" 'on 2026-09-21T'
grep_in "documents ingested = the manifest's" "$T/ds.md" "^\\| documents ingested \\| $ing \\|\$"
grep_in "documents into cleaning = the stats'" "$T/ds.md" "^\\| documents into cleaning \\| $din \\|\$"
grep_in "documents kept = the stats'" "$T/ds.md" "^\\| documents kept by cleaning \\| $dout \\|\$"
grep_in "documents removed = the stats'" "$T/ds.md" "^\\| documents removed by cleaning \\| $drej \\|\$"
grep_in "duplicates removed" "$T/ds.md" "^\\| duplicates removed \\| 1 \\|\$"
grep_in "tokens = the tokenize manifest's" "$T/ds.md" "^\\| tokens \\| $tokens \\|\$"
grep_in "train / validation split" "$T/ds.md" "^\\| documents tokenized \\(train / validation\\) \\| $dtrain / $dval \\|\$"
grep_in "sources: the files ingest read" "$T/ds.md" '^\| src/note3\.txt \| quern-ingest \| [0-9]+ \| [0-9a-f]{64} \|$'
grep_in "sources: counted" "$T/ds.md" '^8 source files, [0-9]+ bytes\.$'
grep_in "languages from the lang step" "$T/ds.md" "^\\| en \\| $en \\| [0-9]+ \\| 100\\.0% \\|\$"
grep_in "filters with counts: exact_dedup" "$T/ds.md" '^\| exact\\_dedup \| [0-9]+ \| [0-9]+ \| 1 \| duplicate 1 \|$'
grep_in "PII by type from the scan" "$T/ds.md" '^\| EMAIL \| pii \| 3 \|$'
grep_in "secrets by type from the scan" "$T/ds.md" '^\| AWS\\_ACCESS\\_KEY \| secret \| 1 \|$'
grep_in "scan totals" "$T/ds.md" '5 findings, 4 reported and 1 suppressed'
grep_in "failed gate shown" "$T/ds.md" '^\| AWS\\_ACCESS\\_KEY: 0 \| 1 \| \*\*failed\*\* \|$'
grep_in "clean's pii step counted" "$T/ds.md" '^\| EMAIL \| 1 \|$'
grep_in "marked prompt: funding" "$T/ds.md" '^> \*\*To be answered by the dataset owner:\*\* Who funded the creation of the dataset\?'
grep_in "marked prompt: consent" "$T/ds.md" '^> \*\*To be answered by the dataset owner:\*\* Were the individuals'
n=$(grep -c '^> \*\*To be answered by the dataset owner:\*\*' "$T/ds.md")
[ "$n" -ge 20 ] && pass "marked prompts in every section ($n)" || fail "marked prompts in every section" "$n"
grep_in "distribution: the shard manifest is a final artifact" "$T/ds.md" 'shards/manifest\.json \| quern-tokenize'

# The stats inside the clean manifest and the stats file count once.
expect_rc "folder input: exit 0" 0 "$A" datasheet . clean.stats.json
grep_in "folder input: stats counted once" "$T/out" "^\\| documents into cleaning \\| $din \\|\$"
grep_in "folder input: no scan, says so" "$T/out" '^No quern-audit scan summary was given\.$'

# -o: written atomically, nothing on stdout.
expect_rc "-o: exit 0" 0 "$A" datasheet -o "$T/sheet.md" . scan.summary.json
check "-o: the file" test -s "$T/sheet.md"
if [ -s "$T/out" ]; then fail "-o: stdout empty" "$(head -c 200 "$T/out")"; else pass "-o: stdout empty"; fi
check "-o: no temporary left" sh -c "! ls -a '$T' | grep -q 'sheet.md.tmp'"

# ---- bad input ----------------------------------------------------------------------
printf '{"documents_in": 3,\n "steps": [\n' >"$T/broken.json"
expect_rc "malformed JSON: exit 1" 1 "$A" datasheet "$T/broken.json"
grep_in "malformed JSON: file:line:col" "$T/err" 'broken\.json:[0-9]+:[0-9]+: '
printf '{"hello": "world"}\n' >"$T/other.json"
expect_rc "unrecognised JSON: exit 1" 1 "$A" datasheet "$T/other.json"
grep_in "unrecognised JSON: says what it takes" "$T/err" "other\\.json': not a run manifest, quern-clean statistics, scan summary"
expect_rc "one bad among good: exit 1, sheet still written" 1 "$A" datasheet "$T/other.json" clean.stats.json
grep_in "one bad among good: the sheet" "$T/out" '^## Maintenance$'
expect_rc "a missing file: exit 1" 1 "$A" datasheet "$T/none.json"
grep_in "a missing file: named" "$T/err" "cannot open '.*none\\.json'"
head -c 3000 /dev/urandom >"$T/binary.json"
expect_rc "binary input: exit 1" 1 "$A" datasheet "$T/binary.json"

# ---- usage -------------------------------------------------------------------------
expect_rc "--help: exit 0" 0 "$A" datasheet --help
grep_in "--help: usage" "$T/out" '^usage: quern-audit datasheet '
expect_rc "a bad flag: exit 2" 2 "$A" datasheet --no-such-flag clean.stats.json
grep_in "a bad flag: try --help" "$T/err" "try 'quern-audit --help'"
expect_rc "no file: exit 2" 2 "$A" datasheet
if [ -w /dev/full ]; then
	expect_rc "/dev/full: exit 1" 1 sh -c "'$A' datasheet clean.stats.json >/dev/full"
	expect_rc "-o /dev/full: exit 1" 1 "$A" datasheet -o /dev/full clean.stats.json
fi
