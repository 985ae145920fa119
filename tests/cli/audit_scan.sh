# audit_scan.sh - quern-audit scan: the findings and summary formats, gates
# and their exit status, the baseline round trip, generations (--field),
# plain text, stdin, the command-line conventions and -j determinism.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"

jq_ok() { # NAME FILE FILTER: jq -e on the file (one JSON value)
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 400 "$2")"; fi
}
jqs_ok() { # NAME FILE FILTER: jq -s -e on JSON Lines
	if jq -s -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq -s '$3' false on $2: $(head -c 400 "$2")"; fi
}

D="$T/docs.jsonl"
{
	printf '{"id":"d1","text":"Write to john.doe@example.com or call +1 415 555 0123. Card 4111 1111 1111 1111."}\n'
	printf '{"id":"d2","text":"nothing to see here"}\n'
	printf '{"id":"d3","text":"export GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB and db1.corp.example.com"}\n'
	printf '{"id":7,"text":"jane@example.org wrote from build3.corp.example.com"}\n'
} >"$D"
SECRET=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB

# --help, --version, usage errors.
expect_rc "--help exits 0" 0 "$A" scan --help
grep_in "--help shows the usage" "$T/out" "^usage: quern-audit scan \[options\] \[file \.\.\.\]"
grep_in "--help names --policy" "$T/out" "--policy FILE"
expect_rc "bad flag exits 2" 2 "$A" scan --frobnicate "$D"
grep_in "bad flag says try --help" "$T/err" "try 'quern-audit --help'"
expect_rc "bad --types exits 2" 2 "$A" scan --types EMAIL,NOPE "$D"
grep_in "bad --types names the type" "$T/err" "unknown type 'NOPE'"
expect_rc "bad --format exits 2" 2 "$A" scan --format xml "$D"
expect_rc "bad -j exits 2" 2 "$A" scan -j x "$D"
expect_rc "--list-rules exits 0" 0 "$A" scan --list-rules
grep_in "--list-rules names the e-mail rule" "$T/out" "^QN-PII-EMAIL +EMAIL +pii +medium"
grep_in "--list-rules names a secret rule" "$T/out" "^QN-SECRET-GITHUB_TOKEN +GITHUB_TOKEN +secret +critical"

# The findings: shape, order, masking.
expect_rc "scan exits 0 without a policy" 0 "$A" scan -o "$T/f.jsonl" --summary "$T/s.json" "$D"
check "nothing on stdout with -o" test ! -s "$T/out"
jqs_ok "every finding has the contract's fields" "$T/f.jsonl" \
	'length > 0 and all(.[]; (keys | sort) == (["rule","type","kind","severity","score","message","source","line","doc","field","start","end","excerpt","hash","fingerprint","suppressed"] | sort))'
jqs_ok "findings in input order" "$T/f.jsonl" '[.[].line] == ([.[].line] | sort)'
jqs_ok "e-mail finding" "$T/f.jsonl" \
	'any(.[]; .rule == "QN-PII-EMAIL" and .type == "EMAIL" and .kind == "pii" and .severity == "medium" and .doc == "d1" and .line == 1 and .field == "text" and .start == 9 and .end == 29 and .excerpt == "j***@e*****.com" and .suppressed == false)'
jqs_ok "card finding is high" "$T/f.jsonl" 'any(.[]; .type == "CREDIT_CARD" and .severity == "high" and .rule == "QN-PII-CREDIT_CARD")'
jqs_ok "token finding is a critical secret" "$T/f.jsonl" 'any(.[]; .rule == "QN-SECRET-GITHUB_TOKEN" and .kind == "secret" and .severity == "critical" and .doc == "d3")'
jqs_ok "an integer id becomes a string" "$T/f.jsonl" 'any(.[]; .doc == "7" and .line == 4)'
jqs_ok "hashes are 64 hex, fingerprints 32 hex" "$T/f.jsonl" 'all(.[]; (.hash | test("^[0-9a-f]{64}$")) and (.fingerprint | test("^[0-9a-f]{32}$")))'
no_grep_in "the raw token is not written" "$T/f.jsonl" "$SECRET"
no_grep_in "the raw card is not written" "$T/f.jsonl" "4111 1111 1111 1111"
# The e-mail hash is SHA-256 of salt, type and the lower-cased value, NUL-separated.
wanth=$(printf 'quern-audit-v1\000EMAIL\000john.doe@example.com' | sha256sum | cut -d' ' -f1)
jqs_ok "hash = SHA-256(salt NUL type NUL value)" "$T/f.jsonl" "any(.[]; .type == \"EMAIL\" and .hash == \"$wanth\")"
fp=$(jq -r 'select(.type == "EMAIL" and .doc == "d1") | .fingerprint' "$T/f.jsonl")
wantfp=$(printf 'QN-PII-EMAIL\000%s\000d1\000%s' "$D" "$wanth" | sha256sum | cut -c1-32)
if [ "$fp" = "$wantfp" ]; then pass "fingerprint = SHA-256(rule, source, doc, hash)"; else fail "fingerprint" "$fp, want $wantfp"; fi
expect_rc "--salt" 0 "$A" scan --salt s3cret --types EMAIL "$D"
grep_in "--salt: still found" "$T/out" '"type":"EMAIL"'
no_grep_in "--salt changes the hash" "$T/out" "$wanth"
cp "$T/out" "$T/salted.jsonl"
printf 's3cret\n' >"$T/salt"
expect_rc "--salt-file" 0 "$A" scan --salt-file "$T/salt" --types EMAIL -o "$T/sf.jsonl" "$D"
if cmp -s "$T/salted.jsonl" "$T/sf.jsonl"; then pass "--salt-file reads the first line"; else fail "--salt-file" "differs from --salt"; fi

# The summary.
jq_ok "summary: tool, counts" "$T/s.json" '.tool == "quern-audit" and .documents == 4 and .findings.total == (.findings.reported + .findings.suppressed) and .passed == true'
jq_ok "summary: inputs" "$T/s.json" ".inputs[0].path == \"$D\" and .inputs[0].documents == 4 and (.inputs[0].sha256 | length) == 64"
jq_ok "summary: by_type, by_severity, by_rule" "$T/s.json" \
	'.findings.by_type.EMAIL == 2 and .findings.by_severity.critical >= 1 and .findings.by_rule["QN-PII-EMAIL"].count == 2 and .findings.by_rule["QN-PII-EMAIL"].severity == "medium"'
jq_ok "summary: by_source" "$T/s.json" ".findings.by_source[\"$D\"] == .findings.reported"
jq_ok "summary: no gates" "$T/s.json" '.gates == [] and .policy == null'
check "a manifest beside -o" test -s "$T/f.jsonl.manifest.json"
jq_ok "the manifest names the input and output" "$T/f.jsonl.manifest.json" \
	'.tool == "quern-audit" and (.inputs | length) == 1 and (.outputs | length) == 2'
expect_rc "--no-manifest" 0 "$A" scan --no-manifest -o "$T/nm.jsonl" "$D"
check "--no-manifest writes none" test ! -e "$T/nm.jsonl.manifest.json"

# Policy rules.
cat >"$T/rules.yaml" <<'Y'
rules:
  - id: internal-hostname
    pattern: '\b[a-z0-9-]+\.corp\.example\.com\b'
    severity: high
    message: internal host name
    type: HOSTNAME
    allow: ['^build[0-9]+\.']
allow:
  - '@example\.org$'
Y
expect_rc "--rules" 0 "$A" scan --rules "$T/rules.yaml" -o "$T/r.jsonl" "$D"
jqs_ok "a rule's finding" "$T/r.jsonl" \
	'[.[] | select(.rule == "QN-POLICY-internal-hostname")] | length == 1 and .[0].type == "HOSTNAME" and .[0].kind == "policy" and .[0].severity == "high" and .[0].message == "internal host name" and .[0].doc == "d3"'
jqs_ok "the rule's allow pattern excuses build3" "$T/r.jsonl" 'all(.[]; .doc != "7" or .type != "HOSTNAME")'
jqs_ok "the global allow pattern excuses a detector's finding" "$T/r.jsonl" 'all(.[]; .doc != "7" or .type != "EMAIL")'

# Gates: pass and fail, each failed one named.
cat >"$T/pass.yaml" <<'Y'
gates:
  CREDIT_CARD: 1
  EMAIL: max 5000 per 10k documents
  severity critical: 1
  rule QN-PII-PHONE: 1
  kind secret: max 1
  total: 100
Y
expect_rc "policy satisfied: exit 0" 0 "$A" scan --policy "$T/pass.yaml" --summary "$T/sp.json" -o /dev/null "$D"
jq_ok "summary: every gate passed" "$T/sp.json" '(.gates | length) == 6 and all(.gates[]; .passed) and .passed == true'
jq_ok "summary: a rate gate's per" "$T/sp.json" '.gates[1].per == {"count": 10000, "unit": "documents"} and .gates[1].observed == 2 and .gates[1].limit == 5000'
cat >"$T/fail.yaml" <<'Y'
gates:
  CREDIT_CARD: 0
  EMAIL: max 10 per 10k documents
  severity high: 0
  total: 100
Y
expect_rc "policy violated: exit 1" 1 "$A" scan --policy "$T/fail.yaml" --summary "$T/sf.json" -o /dev/null "$D"
grep_in "the card gate is named" "$T/err" "^quern-audit: gate 'CREDIT_CARD' failed: 1 finding, at most 0$"
grep_in "the rate gate is named" "$T/err" "^quern-audit: gate 'EMAIL' failed: 2 findings in 4 documents \(5000 per 10k\), at most 10 per 10k$"
grep_in "the severity gate is named" "$T/err" "^quern-audit: gate 'severity high' failed"
no_grep_in "a passing gate is not named" "$T/err" "gate 'total'"
jq_ok "summary: the failed gates" "$T/sf.json" \
	'.passed == false and ([.gates[] | select(.passed | not) | .id] == ["CREDIT_CARD", "EMAIL", "severity high"]) and .gates[0].reason == "CREDIT_CARD: 1 finding, at most 0" and .gates[0].rule == "CREDIT_CARD: 0"'
expect_rc "--gate on the command line" 1 "$A" scan --gate 'US_SSN: 0' --gate 'IBAN: 0' --gate 'type CREDIT_CARD: 0' -o /dev/null "$D"
grep_in "--gate is named" "$T/err" "gate 'CREDIT_CARD' failed"
expect_rc "--fail-on-findings" 1 "$A" scan --fail-on-findings -o /dev/null "$D"
grep_in "--fail-on-findings is the total gate" "$T/err" "gate 'total' failed"
expect_rc "--fail-on-findings, nothing found: exit 0" 0 sh -c "printf '{\"id\":\"x\",\"text\":\"clean\"}\n' | '$A' scan --fail-on-findings"
expect_rc "a gate on an unknown type is a usage error" 2 "$A" scan --gate 'CREDT_CARD: 0' "$D"
grep_in "the unknown type is named" "$T/err" "gate 'CREDT_CARD': no type is called 'CREDT_CARD'"

# Baseline round trip: known findings are suppressed and trip no gate.
expect_rc "--write-baseline" 0 "$A" scan --write-baseline "$T/base.json" -o "$T/b0.jsonl" "$D"
jq_ok "the baseline names salt and findings" "$T/base.json" \
	'.format == "quern-audit-baseline" and .salt == "quern-audit-v1" and (.findings | length) > 0 and all(.findings[]; .fingerprint and .hash and .rule)'
no_grep_in "the baseline holds no raw value" "$T/base.json" "$SECRET|john.doe"
expect_rc "baselined findings pass the gates" 0 "$A" scan --baseline "$T/base.json" --policy "$T/fail.yaml" \
	--fail-on-findings -o "$T/b1.jsonl" --summary "$T/sb.json" "$D"
jq_ok "--fail-on-findings replaced the file's total gate" "$T/sb.json" '[.gates[] | select(.id == "total") | .limit] == [0]' 
jqs_ok "baselined findings are reported as suppressed" "$T/b1.jsonl" 'length > 0 and all(.[]; .suppressed)'
jq_ok "summary: suppressed, not counted" "$T/sb.json" '.findings.suppressed == .findings.total and .findings.reported == 0 and .findings.by_type == {} and .passed'
# A new finding is not suppressed and trips the gate (the same file, grown).
cp "$D" "$T/docs.orig"
printf '{"id":"d9","text":"new card 5555 5555 5555 4444"}\n' >>"$D"
expect_rc "a new finding fails the gate" 1 "$A" scan --baseline "$T/base.json" --gate 'CREDIT_CARD: 0' --summary "$T/sn.json" -o "$T/b2.jsonl" "$D"
grep_in "only the new card counts" "$T/err" "gate 'CREDIT_CARD' failed: 1 finding, at most 0"
jq_ok "summary: one new card, one suppressed" "$T/sn.json" '.findings.by_rule["QN-PII-CREDIT_CARD"].count == 1 and .findings.by_rule["QN-PII-CREDIT_CARD"].suppressed == 1'
# A hand-written hash entry suppresses the value wherever it is.
h=$(jq -r 'select(.type == "CREDIT_CARD") | .hash' "$T/b2.jsonl" | tail -1)
printf '{"salt":"quern-audit-v1","findings":[{"hash":"%s","rule":"QN-PII-CREDIT_CARD","note":"test card"}]}\n' "$h" >"$T/manual.json"
cp "$D" "$T/docs2.jsonl"
expect_rc "a hash entry suppresses the value anywhere" 0 "$A" scan --baseline "$T/manual.json" --gate 'CREDIT_CARD: 1' -o /dev/null "$T/docs2.jsonl"
expect_rc "rewriting a baseline keeps hand-written entries" 0 "$A" scan --baseline "$T/manual.json" --write-baseline "$T/base2.json" -o /dev/null "$T/docs2.jsonl"
mv "$T/docs.orig" "$D"
jq_ok "the note survives" "$T/base2.json" 'any(.findings[]; .note == "test card")'
expect_rc "a salt other than the baseline's is a usage error" 2 "$A" scan --baseline "$T/base.json" --salt other "$D"

# Reports appear.
expect_rc "reports" 0 "$A" scan --junit "$T/r.xml" --sarif "$T/r.sarif" --html "$T/r.html" --summary "$T/rs.json" -o /dev/null "$D"
check "JUnit written" test -s "$T/r.xml"
check "SARIF written" test -s "$T/r.sarif"
check "HTML written" test -s "$T/r.html"
jq_ok "summary: report_findings" "$T/rs.json" '.report_findings.cap == 25000 and .report_findings.truncated == false'
expect_rc "--history" 0 "$A" scan --history "$T/rs.json" --html "$T/r2.html" -o /dev/null "$D"

# Generations: --field, lists of strings and of messages.
G="$T/gen.jsonl"
{
	printf '{"id":"g1","prompt":"my mail is a@example.net","completion":"Sure, a@example.net and card 4111111111111111"}\n'
	printf '{"id":"g3","prompt":"x","completion":"nothing"}\n'
} >"$G"
expect_rc "--field completion" 0 "$A" scan --field completion -o "$T/g.jsonl" "$G"
jqs_ok "--field scans only that field" "$T/g.jsonl" 'length == 2 and all(.[]; .field == "completion" and .doc == "g1")'
printf '{"id":"g2","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"mail b@example.net"}]}\n' >>"$G"
expect_rc "a line without the field is named" 1 "$A" scan --field completion -o /dev/null "$G"
grep_in "the missing field is named" "$T/err" "gen.jsonl:3: no \"completion\" field; skipped"
expect_rc "--field prompt --field messages" 0 "$A" scan --field prompt --field messages -o "$T/g2.jsonl" "$G"
jqs_ok "messages are scanned item by item" "$T/g2.jsonl" 'any(.[]; .field == "messages[1].content" and .doc == "g2" and .start == 5)'
jqs_ok "the prompt is scanned" "$T/g2.jsonl" 'any(.[]; .field == "prompt")'

# Plain text: detected, and forced with --text; lines and columns.
printf 'first line\nmail me: bob@example.com\n' >"$T/t.txt"
expect_rc "plain text auto-detected" 0 "$A" scan -o "$T/t.jsonl" "$T/t.txt"
jqs_ok "text finding: line and span in the line" "$T/t.jsonl" 'length == 1 and .[0].line == 2 and .[0].start == 9 and .[0].end == 24 and .[0].doc == null and .[0].field == null'
expect_rc "--text reads JSON as text" 0 "$A" scan --text -o "$T/tj.jsonl" "$D"
jqs_ok "--text: doc is null" "$T/tj.jsonl" 'length > 0 and all(.[]; .doc == null)'

# stdin, compressed input.
expect_rc "stdin via -" 0 sh -c "'$A' scan - <'$D' >'$T/in.jsonl'"
jqs_ok "stdin is named stdin" "$T/in.jsonl" 'length > 0 and all(.[]; .source == "stdin")'
expect_rc "stdin with no file" 0 sh -c "'$A' scan <'$D' >'$T/in2.jsonl'"
if command -v zstd >/dev/null 2>&1; then
	zstd -q -f -o "$T/docs.jsonl.zst" "$D"
	expect_rc ".zst input" 0 "$A" scan -o "$T/z.jsonl" "$T/docs.jsonl.zst"
	n1=$(wc -l <"$T/z.jsonl")
	n0=$(wc -l <"$T/f.jsonl")
	if [ "$n1" -eq "$n0" ]; then pass ".zst: same findings"; else fail ".zst: same findings" "$n1 vs $n0"; fi
fi

# Missing file, full disk.
expect_rc "missing file exits 1" 1 "$A" scan -o "$T/m.jsonl" "$T/nope.jsonl" "$D"
grep_in "missing file is named" "$T/err" "^quern-audit: cannot open '$T/nope.jsonl'"
check "the other input is still scanned" test -s "$T/m.jsonl"
expect_rc "/dev/full exits 1" 1 sh -c "'$A' scan '$D' >/dev/full"
grep_in "full disk message" "$T/err" "No space left"

# -j determinism over a larger input.
i=0
while [ $i -lt 300 ]; do
	printf '{"id":"m%d","text":"user%d@example.com paid with 4111 1111 1111 1111 from 8.8.%d.%d"}\n' $i $i $((i % 200)) $((i % 250 + 1))
	i=$((i + 1))
done >"$T/many.jsonl"
"$A" scan -j 1 --summary "$T/j1.json" "$T/many.jsonl" >"$T/j1.jsonl" 2>/dev/null
"$A" scan -j 3 --summary "$T/j3.json" "$T/many.jsonl" >"$T/j3.jsonl" 2>/dev/null
if cmp -s "$T/j1.jsonl" "$T/j3.jsonl"; then pass "-j 3 writes the same findings as -j 1"; else fail "-j determinism" "outputs differ"; fi
lines "every document's findings" "$T/j1.jsonl" 900
jq_ok "-j: same counts" "$T/j3.json" ".findings.total == $(jq .findings.total "$T/j1.json")"
