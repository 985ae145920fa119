# audit_canary.sh - quern-audit canary insert and exposure: the documents
# and record insert writes (counts, places, ids, determinism, stdin, a
# manifest), exposure on an untrained tiny model (numbers in range, the
# candidate space), and bad input: templates, repetition lists, records,
# usage errors, /dev/full. audit_memorization.sh has the trained model.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

num_ok() {
	if awk "BEGIN { exit !($2) }"; then pass "$1"; else fail "$1" "not ($2)"; fi
}

awk 'BEGIN { for (i = 0; i < 50; i++) printf "{\"id\":\"d%d\",\"text\":\"document %d says hello\"}\n", i, i }' \
	>"$T/docs.jsonl"

# ---- insert -------------------------------------------------------------------
expect_rc "insert" 0 "$A" canary insert --format 'my account number is {d4}-{d4}' \
	--format 'key {x8}' --reps 0,1,10 --per-rep 2 --seed 7 -o "$T/out.jsonl" "$T/docs.jsonl"
lines "50 documents + 2 formats x 2 canaries x (0 + 1 + 10) copies" "$T/out.jsonl" 94
lines "record: one line a canary" "$T/out.canaries.jsonl" 12
check "input documents kept, in order" sh -c "grep -v '\"canary-' '$T/out.jsonl' | cmp - '$T/docs.jsonl'"
check "canary documents: id, text, source, added, metadata" jq -e -s \
	'all(.[] | select(.id | startswith("canary-")); (.text | type) == "string" and has("source") and has("added") and .metadata.copy >= 0)' \
	"$T/out.jsonl"
check "record: positions point at the canary's copies" sh -c "
	jq -c '.positions[] as \$p | [\$p, .text, .id_prefix]' '$T/out.canaries.jsonl' |
	while read -r l; do
		p=\$(echo \"\$l\" | jq '.[0]'); t=\$(echo \"\$l\" | jq -r '.[1]'); id=\$(echo \"\$l\" | jq -r '.[2]')
		sed -n \"\$((p + 1))p\" '$T/out.jsonl' | jq -e --arg t \"\$t\" --arg id \"\$id\" \
			'.text == \$t and (.id | startswith(\$id))' >/dev/null || exit 1
	done"
check "record: reps copies each" jq -e -s 'all(.[]; (.positions | length) == .reps)' \
	"$T/out.canaries.jsonl"
check "record: text is the format with the secret" jq -e -s \
	'all(.[]; (.format | startswith("my")) and (.text == "my account number is \(.secret[0:4])-\(.secret[4:8])") or (.format == "key {x8}" and .text == "key \(.secret)"))' \
	"$T/out.canaries.jsonl"
check "secrets distinct" sh -c "jq -r .secret '$T/out.canaries.jsonl' | sort | uniq -d | grep -q . && exit 1 || exit 0"
grep_in "a manifest" "$T/out.jsonl.manifest.json" '"canary_copies": 44'
"$A" canary insert --format 'my account number is {d4}-{d4}' --format 'key {x8}' --reps 0,1,10 \
	--per-rep 2 --seed 7 -o "$T/again.jsonl" "$T/docs.jsonl" 2>/dev/null
check "the same seed, the same record" cmp "$T/out.canaries.jsonl" "$T/again.canaries.jsonl"
"$A" canary insert --format 'my account number is {d4}-{d4}' --format 'key {x8}' --reps 0,1,10 \
	--per-rep 2 --seed 8 -o "$T/other.jsonl" "$T/docs.jsonl" 2>/dev/null
check "another seed, other secrets" sh -c "! cmp -s '$T/out.canaries.jsonl' '$T/other.canaries.jsonl'"
expect_rc "stdin, stdout, --record" 0 sh -c "'$A' canary insert --format 'pin {d4}' --reps 3 \
	--record '$T/r.jsonl' - <'$T/docs.jsonl' >'$T/o.jsonl'"
lines "stdin: 50 + 3" "$T/o.jsonl" 53
expect_rc "no input documents (/dev/null)" 0 "$A" canary insert --format 'pin {d4}' --reps 5 \
	-o "$T/only.jsonl" /dev/null
lines "only canaries" "$T/only.jsonl" 5
expect_rc "missing input" 1 "$A" canary insert --format 'pin {d4}' --reps 1 -o "$T/m.jsonl" "$T/nope"
grep_in "missing input: names it" "$T/err" "nope"

# ---- bad templates and lists ------------------------------------------------------
for f in 'no field' '{q4}' '{d0}' '{d33}' '{d}' 'pin {d4' 'a } {d2}' '{a32}{a32}{d1}'; do
	expect_rc "bad template '$f'" 2 "$A" canary insert --format "$f" --reps 1 -o "$T/b.jsonl" /dev/null
done
grep_in "bad template: says where" "$T/err" "format '.*'"
expect_rc "template space too small" 1 "$A" canary insert --format 'x {d1}' --reps 1,2,3 --per-rep 2 \
	-o "$T/b.jsonl" /dev/null
expect_rc "bad --reps" 2 "$A" canary insert --format 'pin {d4}' --reps 1,x -o "$T/b.jsonl" /dev/null
expect_rc "negative --reps" 2 "$A" canary insert --format 'pin {d4}' --reps -1 -o "$T/b.jsonl" /dev/null
expect_rc "no --format" 2 "$A" canary insert --reps 1 -o "$T/b.jsonl" /dev/null
expect_rc "no --reps" 2 "$A" canary insert --format 'pin {d4}' -o "$T/b.jsonl" /dev/null
expect_rc "stdout without --record" 2 "$A" canary insert --format 'pin {d4}' --reps 1 /dev/null
expect_rc "insert to /dev/full" 1 "$A" canary insert --format 'pin {d4}' --reps 1 \
	--record "$T/r2.jsonl" -o /dev/full "$T/docs.jsonl"
expect_rc "record to /dev/full" 1 "$A" canary insert --format 'pin {d4}' --reps 1 \
	--record /dev/full -o "$T/f.jsonl" "$T/docs.jsonl"
expect_rc "--help" 0 "$A" canary --help
grep_in "--help: usage" "$T/out" "^usage: quern-audit canary insert"
expect_rc "insert --help" 0 "$A" canary insert --help
expect_rc "bad flag" 2 "$A" canary insert --bogus
expect_rc "no subcommand" 2 "$A" canary
expect_rc "unknown subcommand" 2 "$A" canary nope

# ---- exposure on an untrained model -------------------------------------------------
"$K" train --vocab-size 300 -o "$T/tok" "$T/out.jsonl" 2>/dev/null
"$Q" init -t "$T/tok" --layers 1 --heads 2 --width 32 --context 64 --seed 1 -o "$T/m" 2>/dev/null
"$A" canary insert --format 'pin {d2}' --format 'code {A2}{d6}' --reps 0,2 --seed 1 \
	-o "$T/c.jsonl" /dev/null 2>/dev/null
expect_rc "exposure" 0 "$A" canary exposure "$T/m" --record "$T/c.canaries.jsonl" --candidates 300 \
	-j 2 -o "$T/exp.json"
check "a 2-digit template is enumerated: 100 candidates" jq -e \
	'[.canaries[] | select(.format == "pin {d2}") | .candidates == 100 and .enumerated] | all' \
	"$T/exp.json"
check "a large template is sampled: 300 candidates" jq -e \
	'[.canaries[] | select(.format != "pin {d2}") | .candidates == 300 and (.enumerated | not)] | all' \
	"$T/exp.json"
check "exposure within [0, log2 M], rank within [1, M]" jq -e \
	'[.canaries[] | .exposure >= 0 and .exposure <= .exposure_max + 1e-12 and .rank >= 1 and .rank <= .candidates] | all' \
	"$T/exp.json"
check "skew-normal fit and estimate present" jq -e \
	'[.canaries[] | (.skewnorm.omega > 0) and (.exposure_skewnorm >= 0)] | all' "$T/exp.json"
check "by_reps: 0 and 2, two canaries each" jq -e \
	'[.by_reps[] | [.reps, .canaries]] == [[0, 2], [2, 2]]' "$T/exp.json"
grep_in "exposure manifest" "$T/exp.json.manifest.json" 'c.canaries.jsonl'

# ---- exposure: bad input ------------------------------------------------------------
expect_rc "missing record" 1 "$A" canary exposure "$T/m" --record "$T/nope.jsonl"
grep_in "missing record: names it" "$T/err" "nope.jsonl"
expect_rc "no --record" 2 "$A" canary exposure "$T/m"
expect_rc "no model" 2 "$A" canary exposure --record "$T/c.canaries.jsonl"
expect_rc "missing model" 1 "$A" canary exposure "$T/nope" --record "$T/c.canaries.jsonl"
echo '{"format":"pin {d2}","secret":"1","text":"pin 1","reps":1}' >"$T/bad1.jsonl"
expect_rc "record: secret that does not fit" 1 "$A" canary exposure "$T/m" --record "$T/bad1.jsonl"
grep_in "record: says which line" "$T/err" "bad1.jsonl': line 1: the secret does not fit"
echo '{"format":"pin {d2}","secret":"12","text":"pin 13","reps":1}' >"$T/bad2.jsonl"
expect_rc "record: text that is not the format" 1 "$A" canary exposure "$T/m" --record "$T/bad2.jsonl"
echo '{"format":"pin {z3}","secret":"123","text":"pin 123","reps":1}' >"$T/bad3.jsonl"
expect_rc "record: bad template" 1 "$A" canary exposure "$T/m" --record "$T/bad3.jsonl"
echo 'not json' >"$T/bad4.jsonl"
expect_rc "record: not JSON" 1 "$A" canary exposure "$T/m" --record "$T/bad4.jsonl"
: >"$T/empty.jsonl"
expect_rc "record: empty" 1 "$A" canary exposure "$T/m" --record "$T/empty.jsonl"
expect_rc "--candidates 1" 2 "$A" canary exposure "$T/m" --record "$T/c.canaries.jsonl" --candidates 1
expect_rc "exposure --help" 0 "$A" canary exposure --help
expect_rc "exposure bad flag" 2 "$A" canary exposure "$T/m" --record "$T/c.canaries.jsonl" --bogus
expect_rc "exposure to /dev/full" 1 "$A" canary exposure "$T/m" --record "$T/c.canaries.jsonl" \
	--candidates 50 -o /dev/full
expect_rc "exposure stdout to /dev/full" 1 sh -c "'$A' canary exposure '$T/m' \
	--record '$T/c.canaries.jsonl' --candidates 50 >/dev/full"
