# train_classify.sh - quern-train fit --classify: a GPT-2 classification
# head (GPT2ForSequenceClassification) on a generated separable 4-class
# task reaches validation accuracy >= 0.95; the model directory has
# Hugging Face's config fields and tensor names; classify writes each input
# with its prediction and, with --metrics, accuracy, macro-F1 and the
# confusion matrix; bad input gets clear errors.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"
PY=/usr/bin/python3

# Four topics, each with its own words, among shared filler words.
awk 'BEGIN { srand(11);
	split("apple pear plum grape melon|goal match striker referee league|piano violin chord melody tempo|rocket orbit planet comet galaxy", w, "|");
	split("labels:fruit,sport,music,space", hdr, ":"); split(hdr[2], lab, ",");
	split("the a of and with then some very more this", f, " ");
	for (i = 0; i < 480; i++) {
		k = 1 + i % 4; split(w[k], kw, " "); n = 6 + int(rand() * 10); s = "";
		for (j = 0; j < n; j++) s = s (j ? " " : "") (rand() < 0.4 ? kw[1 + int(rand() * 5)] : f[1 + int(rand() * 10)]);
		printf "{\"id\":\"d%d\",\"text\":\"%s\",\"label\":\"%s\"}\n", i, s, lab[k] } }' >"$T/docs.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 300 -o "$T/tok" "$T/docs.jsonl"
expect_rc "labelled shards: exit 0" 0 "$K" encode -t "$T/tok" --val-fraction 0.2 -o "$T/sh" "$T/docs.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 32 --context 32 --seed 3 -o "$T/m"

expect_rc "fit --classify: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/c" --classify --steps 60 \
	--batch 16 --lr 3e-3 --eval-every 30 -j 2
acc=$(jq .accuracy "$T/c/eval.json" 2>/dev/null)
if awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }'; then pass "fit --classify: validation accuracy $acc >= 0.95"; else
	fail "fit --classify: validation accuracy >= 0.95" "$acc"
fi
jq -e '.labels == ["fruit","sport","music","space"] and (.confusion | length) == 4 and has("macro_f1")' \
	"$T/c/eval.json" >/dev/null && pass "eval.json: labels, confusion matrix, macro-F1" ||
	fail "eval.json: labels, confusion matrix, macro-F1" "$(head -c 300 "$T/c/eval.json")"
jq -s -e 'map(select(has("val_accuracy"))) | length == 2 and all(.[]; has("val_macro_f1") and has("val_loss"))' \
	"$T/c/metrics.jsonl" >/dev/null && pass "metrics.jsonl: validation at steps 30 and 60" ||
	fail "metrics.jsonl: validation at steps 30 and 60" "$(tail -n 1 "$T/c/metrics.jsonl")"
jq -e '.architectures == ["GPT2ForSequenceClassification"] and .id2label["0"] == "fruit" and
	.label2id.sport == 1 and (.pad_token_id | type) == "number"' "$T/c/config.json" >/dev/null &&
	pass "config.json: Hugging Face's classification fields" ||
	fail "config.json: Hugging Face's classification fields" "$(head -c 300 "$T/c/config.json")"
names=$(head -c 8 "$T/c/model.safetensors" | od -An -tu8 | tr -d ' ')
hdr=$(tail -c +9 "$T/c/model.safetensors" | head -c "$names")
if echo "$hdr" | jq -e 'has("score.weight") and has("transformer.wte.weight") and .["score.weight"].shape == [4,32]' >/dev/null; then
	pass "model.safetensors: transformer.* and score.weight [4,32]"
else
	fail "model.safetensors: transformer.* and score.weight" "$(echo "$hdr" | head -c 200)"
fi
check "the tokenizer is copied" test -s "$T/c/tokenizer.json"
check "run.manifest.json written" test -s "$T/c/run.manifest.json"

# classify: the validation documents by id hash are unknown here; classify all.
awk 'NR % 5 == 0' "$T/docs.jsonl" >"$T/some.jsonl"
expect_rc "classify: exit 0" 0 "$Q" classify "$T/c" "$T/some.jsonl" -o "$T/pred.jsonl" --metrics "$T/cm.json" -j 2
lines "classify: one line per input" "$T/pred.jsonl" "$(wc -l <"$T/some.jsonl")"
jq -s -e 'all(.[]; .id and .text and (.prediction.label | type) == "string" and
	(.prediction.probs | length) == 4 and (.prediction.score >= 0.25) and
	([.prediction.probs[]] | add | . > 0.999 and . < 1.001))' "$T/pred.jsonl" >/dev/null &&
	pass "classify: input objects with a prediction (label, score, probabilities summing to 1)" ||
	fail "classify: output shape" "$(head -n 1 "$T/pred.jsonl" | head -c 300)"
jq -e '.accuracy >= 0.95 and .n == 96' "$T/cm.json" >/dev/null &&
	pass "classify --metrics: accuracy >= 0.95 over the 96 labelled inputs" ||
	fail "classify --metrics: accuracy" "$(jq -c '{n, accuracy}' "$T/cm.json")"
"$Q" classify "$T/c" --top-k 1 -j 1 <"$T/some.jsonl" >"$T/top1.jsonl" 2>"$T/err"
jq -s -e 'all(.[]; (.prediction.probs | length) == 1)' "$T/top1.jsonl" >/dev/null &&
	pass "classify --top-k 1 from stdin: one probability" || fail "classify --top-k 1" "$(head -c 200 "$T/err")"
check "classify: the same predictions at another thread count and batch" \
	sh -c "jq -c .prediction.label '$T/pred.jsonl' >'$T/l1' && jq -c .prediction.label '$T/top1.jsonl' >'$T/l2' && cmp -s '$T/l1' '$T/l2'"

# Bad input.
printf '{"text":"apple pear"}\nnot json\n{"id":1}\n{"text":"goal match"}\n' >"$T/bad.jsonl"
expect_rc "classify: bad lines: exit 1" 1 "$Q" classify "$T/c" "$T/bad.jsonl" -o "$T/bad.out"
grep_in "classify: bad lines: names file and line" "$T/err" "bad.jsonl:2"
grep_in "classify: a line without text is named" "$T/err" "bad.jsonl:3: no \"text\" string"
lines "classify: the good lines still flow" "$T/bad.out" 2
expect_rc "classify on a language model: exit 1" 1 "$Q" classify "$T/m" "$T/some.jsonl"
grep_in "classify on a language model: says it is not a classifier" "$T/err" "not a classifier"
expect_rc "classify to /dev/full: exit 1" 1 "$Q" classify "$T/c" "$T/some.jsonl" -o /dev/full
awk -F'"' '{ print "{\"text\":\"" $8 "\"}" }' "$T/docs.jsonl" >"$T/plain.jsonl"
expect_rc "unlabelled shards: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/ush" "$T/plain.jsonl"
expect_rc "fit --classify on unlabelled shards: exit 1" 1 "$Q" fit "$T/m" --data "$T/ush" -o "$T/u" --classify --steps 2
grep_in "fit --classify on unlabelled shards: says what is needed" "$T/err" "label"
expect_rc "fit --classify --lora: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/v" --classify --lora --steps 2
expect_rc "fit --classify: a frozen trunk below block 1 trains" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/f" \
	--classify --freeze embeddings,0 --steps 3 --batch 8 -j 2
# NAME same|changed for every tensor (without the classifier's prefix).
"$PY" - "$T/m/model.safetensors" "$T/f/model.safetensors" >"$T/cmp" <<'PYEOF'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop('__metadata__', None)
    return b, {k.replace('transformer.', '', 1): v for k, v in h.items()}, 8 + n
a, ha, oa = load(sys.argv[1]); b, hb, ob = load(sys.argv[2])
for k in sorted(ha):
    s, e = ha[k]['data_offsets']; s2, e2 = hb[k]['data_offsets']
    print(k, 'same' if a[oa + s:oa + e] == b[ob + s2:ob + e2] else 'changed')
PYEOF
frozen=$(grep -cE '^(wte|wpe|h\.0\.).* same$' "$T/cmp")
moved=$(grep -cE '^(h\.1\.|ln_f\.).* changed$' "$T/cmp")
if [ "$frozen" = 14 ] && [ "$moved" = 14 ]; then pass "fit --classify --freeze: the 14 frozen tensors bit-unchanged, the 14 others trained"; else
	fail "fit --classify --freeze: frozen unchanged, others trained" "$frozen frozen same, $moved trained"
fi
