# clean_classifier.sh - quern-clean --classifier MODEL --min-score P
# [--label L]: a linear model (quern-train fit --arch linear) keeps the
# documents whose p(label | text) reaches the threshold; the rest go to
# --rejects with metadata.reject {step: classifier, reason:
# classifier_low_score} and every document carries metadata.classifier
# {label, score}; a two-label model scores label 1 by default, more labels
# need --label; an unknown label names the model's labels (exit 2); the
# same output for -j 1 and -j 2; the config-file form.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"
TR="$QN_BIN/quern-train"
GEN="$QN_TESTS/classify_gen"

jq_is() {
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' fails on $2: $(head -c 300 "$2")"; fi
}

"$GEN" -k 2 -n 2000 -w 30 -f 0.15 -s 3 >"$T/train2.jsonl"
"$GEN" -k 3 -n 1500 -w 30 -f 0.15 -s 3 >"$T/train3.jsonl"
"$GEN" -k 2 -n 200 -w 30 -f 0.15 -s 4 >"$T/docs.jsonl"
"$TR" fit --arch linear --data "$T/train2.jsonl" -o "$T/m2" --dim 16 -q
"$TR" fit --arch linear --data "$T/train3.jsonl" -o "$T/m3" --dim 16 -q
check "two models trained" test -s "$T/m2/model.safetensors" -a -s "$T/m3/model.safetensors"

expect_rc "--classifier: exit 0" 0 "$Q" --steps normalize --classifier "$T/m2" --min-score 0.5 \
	-r "$T/rej.jsonl" -o "$T/kept.jsonl" --stats "$T/stats.json" "$T/docs.jsonl"
kept=$(wc -l <"$T/kept.jsonl")
rej=$(wc -l <"$T/rej.jsonl")
if [ $((kept + rej)) -eq 200 ] && [ "$kept" -gt 60 ] && [ "$rej" -gt 60 ]; then pass "every document kept or rejected ($kept / $rej)"; else fail "kept + rejected" "$kept + $rej"; fi
# label 1 of the sorted labels is l1: the kept are the l1 documents
wrong=$(jq -r 'select(.label != "l1") | .id' "$T/kept.jsonl" | wc -l)
if [ "$wrong" -le 10 ]; then pass "kept documents are label 1's ($wrong others)"; else fail "kept documents are label 1's" "$wrong others"; fi
jq_is "kept: metadata.classifier {label l1, score >= 0.5}" "$T/kept.jsonl" '.metadata.classifier.label == "l1" and .metadata.classifier.score >= 0.5'
jq_is "rejects: step classifier, reason classifier_low_score" "$T/rej.jsonl" \
	'.metadata.reject.step == "classifier" and .metadata.reject.reason == "classifier_low_score" and .metadata.classifier.score < 0.5'
grep_in "stats count the classifier's reason" "$T/stats.json" 'classifier_low_score'

"$Q" --steps normalize --classifier "$T/m2" --min-score 0.5 --label l0 -o "$T/kept0.jsonl" "$T/docs.jsonl" 2>"$T/err"
n0=$(wc -l <"$T/kept0.jsonl")
if [ "$n0" -eq "$rej" ] || [ $((n0 - rej)) -le 2 ] && [ $((rej - n0)) -le 2 ]; then pass "--label l0 keeps the other side"; else fail "--label l0" "$n0 kept, $rej rejected before"; fi
"$Q" --steps normalize --classifier "$T/m2" --min-score 0.999999 -o "$T/none.jsonl" "$T/docs.jsonl" 2>"$T/err"
n=$(wc -l <"$T/none.jsonl")
if [ "$n" -lt "$kept" ]; then pass "a higher --min-score keeps fewer"; else fail "higher --min-score" "$n >= $kept"; fi
"$Q" --steps normalize --classifier "$T/m2" --min-score 0 -o "$T/all.jsonl" "$T/docs.jsonl" 2>"$T/err"
lines "--min-score 0 keeps all" "$T/all.jsonl" 200

"$Q" --steps normalize --classifier "$T/m2" -j 2 -o "$T/kept_j2.jsonl" "$T/docs.jsonl" 2>"$T/err"
if cmp -s "$T/kept.jsonl" "$T/kept_j2.jsonl"; then pass "-j 2: the same output"; else fail "-j 2: the same output" "differs"; fi
cat "$T/docs.jsonl" | "$Q" --steps normalize --classifier "$T/m2" - >"$T/stdin.jsonl" 2>"$T/err"
if cmp -s "$T/kept.jsonl" "$T/stdin.jsonl"; then pass "stdin: the same output"; else fail "stdin: the same output" "differs"; fi

# The config-file form.
cat >"$T/c.yaml" <<YAML
steps:
  - normalize
  - classifier: {model: "$T/m2", min_score: 0.5, label: l1}
YAML
"$Q" -c "$T/c.yaml" -o "$T/kept_c.jsonl" "$T/docs.jsonl" 2>"$T/err"
if cmp -s "$T/kept.jsonl" "$T/kept_c.jsonl"; then pass "config file: the same output"; else fail "config file: the same output" "differs"; fi

# Usage errors.
expect_rc "three labels without --label: exit 2" 2 "$Q" --steps normalize --classifier "$T/m3" "$T/docs.jsonl"
grep_in "asks for --label" "$T/err" "--label"
expect_rc "unknown label: exit 2" 2 "$Q" --classifier "$T/m3" --label zz "$T/docs.jsonl"
grep_in "unknown label: names the labels" "$T/err" "no label 'zz' \\(its labels: 'l0', 'l1', 'l2'\\)"
expect_rc "--min-score 2: exit 2" 2 "$Q" --classifier "$T/m2" --min-score 2 "$T/docs.jsonl"
expect_rc "--label without --classifier: exit 2" 2 "$Q" --label l1 "$T/docs.jsonl"
expect_rc "a missing model: exit 2" 2 "$Q" --classifier "$T/nomodel" "$T/docs.jsonl"
grep_in "a missing model: named" "$T/err" "nomodel/config.json"
expect_rc "three labels with --label: exit 0" 0 "$Q" --steps normalize --classifier "$T/m3" --label l2 -o "$T/k3.jsonl" "$T/docs.jsonl"
expect_rc "-o /dev/full: exit 1" 1 "$Q" --steps normalize --classifier "$T/m2" -o /dev/full "$T/docs.jsonl"
