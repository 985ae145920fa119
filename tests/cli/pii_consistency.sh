#!/bin/sh
# pii_consistency: the fixture of issue 7 through quern-clean redacts exactly
# the spans lib/pii finds (and, once quern-audit scan exists, exactly the
# spans it reports), so redaction and audit agree document by document.
. "$QN_TOP/tests/cli/lib.sh"

G="$QN_TESTS/pii_fixture"
S="$QN_TESTS/pii_score"
Q="$QN_BIN/quern-clean"
A="$QN_BIN/quern-audit"

"$G" -s 3 -n 40 "$T/docs.jsonl" "$T/labels.jsonl" 2>/dev/null

# quern-clean: only the pii step (tags), so the text changes nowhere else.
expect_rc "clean --steps pii: exit 0" 0 "$Q" --steps pii --pii tag -o "$T/clean.jsonl" \
	--stats "$T/stats.json" "$T/docs.jsonl"
"$S" --redacted "$T/clean.jsonl" "$T/docs.jsonl" >"$T/red" 2>&1
rc=$?
grep -E '^(PASS|FAIL): ' "$T/red"
if [ "$rc" -eq 0 ]; then pass "clean: redactions equal the library's findings"; else
	fail "clean: redactions equal the library's findings" "$(grep -v '^PASS' "$T/red" | head -c 2000)"
fi
# What clean counted equals what was labeled: one tag per true value.
want=$(wc -l <"$T/labels.jsonl" | tr -d ' ')
got=$(jq -s '[.[].metadata.pii // {} | to_entries[].value] | add' "$T/clean.jsonl")
if [ "$got" = "$want" ]; then pass "clean: one redaction per labeled value ($want)"; else
	fail "clean: one redaction per labeled value" "$got redactions, $want labels"
fi
# Per type too: metadata.pii counts against the labels file.
jq -s 'map(.type) | group_by(.) | map({(.[0]): length}) | add' "$T/labels.jsonl" >"$T/want.json"
jq -s '[.[].metadata.pii // {} | to_entries[]] | group_by(.key) | map({(.[0].key): (map(.value) | add)}) | add' \
	"$T/clean.jsonl" >"$T/got.json"
check "clean: redactions per type equal the labels per type" \
	jq -e -n --slurpfile a "$T/want.json" --slurpfile b "$T/got.json" '$a[0] == $b[0]'

# quern-audit scan: its findings' (doc, type, start, end) against the
# library's, and so against clean's redactions. The Makefile builds
# quern-audit only once audit/audit.c exists: without it, this part says so.
if [ -x "$A" ]; then
	"$A" scan --no-manifest "$T/docs.jsonl" >"$T/findings.jsonl" 2>"$T/audit.err"
	rc=$?
	if [ "$rc" -le 1 ] && [ -s "$T/findings.jsonl" ]; then pass "audit scan: findings written"; else
		fail "audit scan: findings written" "exit $rc: $(head -c 300 "$T/audit.err")"
	fi
	"$S" --findings "$T/findings.jsonl" "$T/docs.jsonl" >"$T/fnd" 2>&1
	rc=$?
	grep -E '^(PASS|FAIL): ' "$T/fnd"
	if [ "$rc" -eq 0 ]; then pass "audit: reported spans equal clean's redactions"; else
		fail "audit: reported spans equal clean's redactions" "$(grep -v '^PASS' "$T/fnd" | head -c 2000)"
	fi
else
	echo "SKIP: quern-audit scan is not built yet: audit spans not compared"
fi
