# audit_bad_input.sh - broken and hostile input for quern-audit scan
# (acceptance 6): malformed rules, policy and baseline files named as
# file:line:column, pattern errors with their offset, a pathological regex
# stopped by PCRE2's limits and reported, binary input, a 100 MB document.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"

no_crash() {
	no_grep_in "$1: no crash report" "$T/err" "Sanitizer|runtime error|Segmentation|Assertion|core dumped"
}
D="$T/d.jsonl"
printf '{"id":"d1","text":"mail a@example.com"}\n' >"$D"

# ---- rules files ----
bad_rules() { # NAME EXPECTED-MESSAGE-REGEX, the file on stdin
	cat >"$T/r.yaml"
	expect_rc "rules: $1: exit 2" 2 "$A" scan --rules "$T/r.yaml" "$D"
	grep_in "rules: $1: message" "$T/err" "^quern-audit: $T/r.yaml:$2"
	no_crash "rules: $1"
}
printf 'rules:\n  - id: x\n    pattern: [unclosed\n' | bad_rules "YAML syntax" "[0-9]+:[0-9]+: "
printf 'rules:\n  - id: x\n    pattern: "a(b"\n' | bad_rules "pattern error with offset" \
	"3:14: rule 'x': pattern error at offset 3: missing closing parenthesis"
printf 'rules:\n  - id: x\n    pattern: abc\n    colour: red\n' | bad_rules "unknown key" "4:5: unknown key 'colour'"
printf 'rules:\n  - id: x\n' | bad_rules "no pattern" "2:5: rule 'x' needs a 'pattern'"
printf 'rules:\n  - id: x\n    pattern: a\n  - id: x\n    pattern: b\n' | bad_rules "duplicate id" "4:9: another rule has the id 'x'"
printf 'rules:\n  - id: "bad id"\n    pattern: a\n' | bad_rules "bad id" "2:9: 'id' must be"
printf 'rules:\n  - id: x\n    pattern: a\n    severity: huge\n' | bad_rules "bad severity" "4:15: 'severity' must be low, medium, high or critical"
printf 'rules:\n  - id: x\n    pattern: "a*"\n' | bad_rules "empty match" "3:14: rule 'x': the pattern matches the empty string"
printf 'rules:\n  - id: x\n    pattern: "(a)b"\n    group: 2\n' | bad_rules "bad group" "4:12: 'group' must be a capture group"
printf 'rules:\n  - id: x\n    pattern: a\n    allow: ["(("]\n' | bad_rules "bad allow pattern" "4:13: rule 'x': allow: pattern error at offset 2"
printf 'rules:\n  - id: x\n    pattern: a\n    flags: [loud]\n' | bad_rules "bad flag" "4:13: unknown flag 'loud'"
printf 'rules: 3\n' | bad_rules "rules not a list" "1:8: 'rules' must be a list"
printf 'a: &x [1]\nb: *x\n' | bad_rules "aliases" "2:4: aliases are not supported"
printf 'rules:\n  - id: x\n    pattern: a\nrules: []\n' | bad_rules "duplicate key" "4:1: duplicate key 'rules'"
expect_rc "rules: missing file exits 2" 2 "$A" scan --rules "$T/nope.yaml" "$D"
grep_in "rules: missing file named" "$T/err" "cannot open '$T/nope.yaml'"

# ---- policy files ----
bad_policy() {
	cat >"$T/p.yaml"
	expect_rc "policy: $1: exit 2" 2 "$A" scan --policy "$T/p.yaml" "$D"
	grep_in "policy: $1: message" "$T/err" "^quern-audit: $T/p.yaml:$2"
	no_crash "policy: $1"
}
printf 'gates:\n  EMAIL: ten\n' | bad_policy "bad limit" "2:10: gate 'EMAIL': expected a count or a rate"
printf 'gates:\n  EMAIL: max 10 per\n' | bad_policy "rate without per count" "2:10: gate 'EMAIL': expected a count or a rate"
printf 'gates:\n  EMAIL: -1\n' | bad_policy "negative limit" "2:10: gate 'EMAIL'"
printf 'gates:\n  EMAIL: 1.5\n' | bad_policy "fractional count" "2:10: gate 'EMAIL'"
printf 'gates:\n  severity extreme: 0\n' | bad_policy "bad severity" "2:3: gate 'severity extreme': the severity must be"
printf 'gates:\n  color blue green: 0\n' | bad_policy "bad subject" "2:3: gate 'color blue green': expected total"
printf 'gates:\n  NOT_A_TYPE: 0\n' | bad_policy "unknown type" "2:3: gate 'NOT_A_TYPE': no type is called 'NOT_A_TYPE'"
printf 'gates:\n  rule QN-POLICY-nope: 0\n' | bad_policy "unknown rule" "2:3: gate 'rule QN-POLICY-nope': no rule is called"
printf 'gates:\n  EMAIL: 1\n  type EMAIL: 2\n' | bad_policy "a subject twice" "3:3: gate 'EMAIL' is given twice"
printf 'gates:\n  EMAIL: 1\nlimits: {}\n' | bad_policy "unknown key" "3:1: unknown key 'limits'"
printf 'gates: [1, 2\n' | bad_policy "YAML syntax" "[0-9]+:[0-9]+: "
expect_rc "--gate: bad limit exits 2" 2 "$A" scan --gate 'EMAIL: lots' "$D"
grep_in "--gate: named" "$T/err" "^quern-audit: --gate:1:8: gate 'EMAIL'"

# ---- baseline files ----
printf '{"findings": [\n  {"fingerprint": "abc"\n' >"$T/b.json"
expect_rc "baseline: JSON syntax exits 2" 2 "$A" scan --baseline "$T/b.json" "$D"
grep_in "baseline: JSON syntax names file:line:col" "$T/err" "^quern-audit: $T/b.json:3:[0-9]+: "
printf '{"findings": [{"fingerprint": "0123456789abcdef0123456789abcdef"}, {"fingerprint": "xyz"}]}\n' >"$T/b.json"
expect_rc "baseline: bad entry exits 2" 2 "$A" scan --baseline "$T/b.json" "$D"
grep_in "baseline: bad entry named by index" "$T/err" "$T/b.json: findings\[1\]: 'fingerprint' must be 32 lowercase hex digits"
printf '{"findings": [{"note": "nothing"}]}\n' >"$T/b.json"
expect_rc "baseline: entry without a key exits 2" 2 "$A" scan --baseline "$T/b.json" "$D"
grep_in "baseline: entry without a key named" "$T/err" "findings\[0\]: needs a 'fingerprint' or a 'hash'"
printf '{"format": "other", "findings": []}\n' >"$T/b.json"
expect_rc "baseline: other format exits 2" 2 "$A" scan --baseline "$T/b.json" "$D"

# ---- a pathological regex: stopped by the match limit, reported, not hung ----
cat >"$T/evil.yaml" <<'Y'
rules:
  - id: evil
    pattern: '(a+)+$'
  - id: nested
    pattern: '(?:(?:a|aa)+)+b'
Y
{
	printf '{"id":"p1","text":"%s"}\n' "$(head -c 50000 /dev/zero | tr '\0' a)!"
	printf '{"id":"p2","text":"plain aaa and b@example.com"}\n'
} >"$T/evil.jsonl"
start=$(date +%s)
expect_rc "pathological regex: exit 1" 1 timeout 60 "$A" scan --rules "$T/evil.yaml" -o "$T/e.jsonl" --summary "$T/es.json" "$T/evil.jsonl"
took=$(($(date +%s) - start))
if [ "$took" -lt 20 ]; then pass "pathological regex: finishes fast (${took}s)"; else fail "pathological regex: finishes fast" "${took}s"; fi
grep_in "pathological regex: reported with its place" "$T/err" "^quern-audit: $T/evil.jsonl:1: rule 'evil': match limit exceeded"
grep_in "pathological regex: the document goes on" "$T/e.jsonl" '"doc":"p2".*"type":"EMAIL"|"type":"EMAIL".*"doc":"p2"'
if jq -e '.errors.scan_errors >= 1' "$T/es.json" >/dev/null 2>&1; then pass "pathological regex: counted in the summary"; else fail "pathological regex: counted" "$(cat "$T/es.json" | head -c 300)"; fi
no_crash "pathological regex"

# ---- binary and broken input ----
{
	printf '{"id":"g1","text":"good a@example.com"}\n'
	printf '\000\001\002\377 binary junk\n'
	printf '{"id":"b2","text": broken ghp_1234567890abcdefghijklmnopqrstuvwxyzAB\n'
	printf '[1,2]\n'
	printf '{"id":"b4","body":"no text"}\n'
	printf '{"id":"u1","text":"caf\351 \377 c@example.com"}\n'
	printf '{"id":"g2","text":"good d@example.com"}'
} >"$T/bad.jsonl"
expect_rc "bad lines: exit 1" 1 "$A" scan -o "$T/b.jsonl" "$T/bad.jsonl"
no_crash "bad lines"
grep_in "binary line named" "$T/err" "^quern-audit: $T/bad.jsonl:2: invalid JSON"
grep_in "broken line named" "$T/err" "^quern-audit: $T/bad.jsonl:3: invalid JSON at column [0-9]+"
no_grep_in "a broken line's message quotes no input" "$T/err" "ghp_"
grep_in "not an object named" "$T/err" "^quern-audit: $T/bad.jsonl:4: not a JSON object"
grep_in "no text named" "$T/err" "^quern-audit: $T/bad.jsonl:5: no \"text\" field"
if [ "$(jq -r .doc "$T/b.jsonl" | tr '\n' ' ')" = "g1 u1 g2 " ]; then pass "the good documents are scanned, invalid UTF-8 repaired"; else fail "good documents scanned" "$(jq -r .doc "$T/b.jsonl" | tr '\n' ' ')"; fi

# Binary plain text: named with its line, the rest of the file skipped.
{
	printf 'text before e@example.com\nsecond line\n'
	printf 'bin\000ary\n'
	printf 'after f@example.com\n'
} >"$T/bin.txt"
expect_rc "binary text: exit 1" 1 "$A" scan -o "$T/bt.jsonl" "$T/bin.txt"
grep_in "binary text: named with its line" "$T/err" "^quern-audit: $T/bin.txt:3: binary data \(a NUL byte\)"
if [ "$(jq -r .line "$T/bt.jsonl" | tr '\n' ' ')" = "1 " ]; then pass "binary text: the lines before it are scanned"; else fail "binary text: lines before" "$(cat "$T/bt.jsonl")"; fi
head -c 3000 /dev/urandom >"$T/random.bin"
expect_rc "random bytes: no crash" 1 "$A" scan -o /dev/null "$T/random.bin"
no_crash "random bytes"

# ---- a 100 MB document: scanned in full; past --max-doc named and skipped ----
{
	printf '{"id":"huge","text":"'
	head -c 100000000 /dev/zero | tr '\0' 'x'
	printf ' tail g@example.com"}\n'
	printf '{"id":"after","text":"h@example.com"}\n'
} >"$T/huge.jsonl"
start=$(date +%s)
expect_rc "100 MB document: exit 0" 0 timeout 120 "$A" scan -o "$T/h.jsonl" "$T/huge.jsonl"
took=$(($(date +%s) - start))
grep_in "100 MB document: scanned to its end" "$T/h.jsonl" '"doc":"huge".*"start":100000006'
grep_in "100 MB document: the next one too" "$T/h.jsonl" '"doc":"after"'
expect_rc "--max-doc: exit 1" 1 "$A" scan --max-doc 1M -o "$T/h2.jsonl" "$T/huge.jsonl"
grep_in "--max-doc: the long line is named" "$T/err" "^quern-audit: $T/huge.jsonl:1: line longer than 1048576 bytes \(--max-doc\); skipped"
grep_in "--max-doc: the next document is scanned" "$T/h2.jsonl" '"doc":"after"'
echo "# 100 MB document scanned in ${took}s"
rm -f "$T/huge.jsonl"
