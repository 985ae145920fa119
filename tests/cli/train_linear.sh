# train_linear.sh - quern-train's fastText-style linear classifier
# (--arch linear): a generated separable 6-label task (tests/tools/
# classify_gen) reaches >= 0.95 validation accuracy; the model directory's
# files and their shapes; one thread reproduces itself byte for byte;
# classify's output ({"prediction":{"label","score","probs"}}, --top-k,
# --metrics); bad input lines named file:line and skipped (exit 1), bad
# options exit 2, a missing model or input exit 1, /dev/full exit 1, stdin.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
GEN="$QN_TESTS/classify_gen"

jq_is() { # NAME FILE FILTER: jq -e FILTER holds
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' fails on $2: $(head -c 300 "$2")"; fi
}

"$GEN" -k 6 -n 3000 -w 30 -f 0.12 -s 5 >"$T/train.jsonl"
"$GEN" -k 6 -n 300 -w 30 -f 0.12 -s 6 >"$T/test.jsonl"

expect_rc "fit: exit 0" 0 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/m" --dim 32 --epochs 5
for f in config.json model.safetensors eval.json metrics.jsonl run.manifest.json; do
	check "fit writes $f" test -s "$T/m/$f"
done
jq_is "config: quern-linear, 6 labels in order" "$T/m/config.json" \
	'.model_type == "quern-linear" and .num_labels == 6 and .id2label["0"] == "l0" and .label2id.l5 == 5 and .dim == 32 and .architectures == ["QuernLinearClassifier"]'
jq_is "eval: validation accuracy >= 0.95" "$T/m/eval.json" '.accuracy >= 0.95 and .macro_f1 >= 0.95 and .n > 200'
jq_is "eval: a 6 x 6 confusion matrix" "$T/m/eval.json" '(.confusion | length) == 6 and (.confusion[0] | length) == 6'
lines "metrics: one line an epoch" "$T/m/metrics.jsonl" 5
jq_is "metrics: loss, lr, words/s, validation" "$T/m/metrics.jsonl" \
	'.loss > 0 and .words_per_sec_thread > 0 and (.val_accuracy | type) == "number" and (.lr | type) == "number"'
jq_is "manifest: inputs, outputs, counters" "$T/m/run.manifest.json" \
	'(.inputs | length) == 1 and (.outputs | length) == 4 and .counters.labels == 6 and .counters.bad_lines == 0'

# One thread is bit-for-bit reproducible.
"$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/m2" --dim 32 --epochs 5 >/dev/null 2>&1
if cmp -s "$T/m/model.safetensors" "$T/m2/model.safetensors"; then pass "same seed, one thread: identical weights"; else fail "same seed, one thread: identical weights" "differ"; fi
"$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/m3" --dim 32 --epochs 5 --seed 9 >/dev/null 2>&1
if cmp -s "$T/m/model.safetensors" "$T/m3/model.safetensors"; then fail "another seed: other weights" "same"; else pass "another seed: other weights"; fi
expect_rc "fit -j 2: exit 0" 0 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/mj" --dim 32 -j 2
jq_is "-j 2 learns too" "$T/mj/eval.json" '.accuracy >= 0.95'
expect_rc "char n-grams: exit 0" 0 "$Q" fit --arch=linear --data "$T/train.jsonl" -o "$T/mc" --minn 3 --maxn 5 --dim 16
jq_is "char n-grams recorded" "$T/mc/config.json" '.minn == 3 and .maxn == 5'

# --val FILE, from stdin.
expect_rc "fit from stdin with --val" 0 sh -c "'$Q' fit --arch linear --data - --val '$T/test.jsonl' -o '$T/mv' --metrics '$T/mv.jsonl' <'$T/train.jsonl'"
jq_is "--val: its 300 lines are the validation" "$T/mv/eval.json" '.n == 300 and .accuracy >= 0.95'
check "--metrics FILE written" test -s "$T/mv.jsonl"

# classify
expect_rc "classify: exit 0" 0 "$Q" classify "$T/m" "$T/test.jsonl" -o "$T/pred.jsonl" --metrics "$T/cm.json"
lines "classify: a line a document" "$T/pred.jsonl" 300
jq_is "classify: the input fields, then prediction {label, score, probs}" "$T/pred.jsonl" \
	'(.id | type) == "string" and .label and (.prediction.label | type) == "string" and .prediction.score > 0 and (.prediction.probs | length) == 6'
jq_is "classify: score is the top probability" "$T/pred.jsonl" \
	'.prediction.score == .prediction.probs[.prediction.label]'
jq_is "classify --metrics: accuracy >= 0.95 on held-out data" "$T/cm.json" '.n == 300 and .accuracy >= 0.95 and (.confusion | length) == 6'
"$Q" classify "$T/m" --top-k 2 <"$T/test.jsonl" >"$T/top.jsonl" 2>"$T/err"
jq_is "classify --top-k 2 from stdin: two probabilities, best first" "$T/top.jsonl" \
	'(.prediction.probs | length) == 2 and ([.prediction.probs[]] | .[0] >= .[1])'
printf '{}\n{"text":"tba tbe","prediction":1}\n' >"$T/odd.jsonl"
expect_rc "classify: {} has no text: exit 1" 1 "$Q" classify "$T/m" "$T/odd.jsonl" -o "$T/odd.out"
grep_in "classify: names the line" "$T/err" 'odd.jsonl:1: no "text"'
jq_is "classify: an old prediction is replaced" "$T/odd.out" '(.prediction | type) == "object"'

# Bad input lines: named, skipped, exit 1; the model is still written.
{
	head -n 200 "$T/train.jsonl"
	echo '{"text":"no label here"}'
	echo 'not json'
	echo '{"text":"x","label":[1]}'
	echo '{"text":"int label","label":3}'
	tail -n 200 "$T/train.jsonl"
} >"$T/bad.jsonl"
expect_rc "bad lines: exit 1" 1 "$Q" fit --arch linear --data "$T/bad.jsonl" -o "$T/mb"
grep_in "missing label named file:line" "$T/err" 'bad.jsonl:201: no "label"'
grep_in "bad JSON named file:line" "$T/err" 'bad.jsonl:202: not JSON'
grep_in "bad label type named" "$T/err" 'bad.jsonl:203: "label" must be'
check "bad lines: the model is still written" test -s "$T/mb/model.safetensors"
jq_is "an integer label is a label" "$T/mb/config.json" '.label2id["3"] != null'
echo '{"text":"a","label":"x"}' >"$T/one.jsonl"
expect_rc "one label: exit 1" 1 "$Q" fit --arch linear --data "$T/one.jsonl" -o "$T/m1"
grep_in "one label: says why" "$T/err" 'at least two'

# Options and files.
expect_rc "bad --dim: exit 2" 2 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/x" --dim 0
expect_rc "--dim 3.5 (not whole): exit 2" 2 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/x" --dim 3.5
expect_rc "--epochs 2.5 (not whole): exit 2" 2 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/x" --epochs 2.5
expect_rc "unknown option: exit 2" 2 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/x" --bogus
grep_in "unknown option named" "$T/err" "'--bogus'"
expect_rc "no -o: exit 2" 2 "$Q" fit --arch linear --data "$T/train.jsonl"
expect_rc "minn > maxn: exit 2" 2 "$Q" fit --arch linear --data "$T/train.jsonl" -o "$T/x" --minn 5 --maxn 3
expect_rc "missing data file: exit 1" 1 "$Q" fit --arch linear --data "$T/nope.jsonl" -o "$T/x"
grep_in "missing data file named" "$T/err" "nope.jsonl"
expect_rc "classify: unknown model dir: exit 1" 1 "$Q" classify "$T/nomodel" "$T/test.jsonl"
expect_rc "classify --top-k 0: exit 2" 2 "$Q" classify "$T/m" --top-k 0 "$T/test.jsonl"
expect_rc "classify -o /dev/full: exit 1" 1 "$Q" classify "$T/m" -o /dev/full "$T/test.jsonl"
expect_rc "classify to a full stdout: exit 1" 1 sh -c "'$Q' classify '$T/m' '$T/test.jsonl' >/dev/full"
expect_rc "fit --help: exit 0" 0 "$Q" fit --arch linear --help
