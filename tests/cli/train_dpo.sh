# train_dpo.sh - quern-train fit --dpo: the loss at the first step is ln 2
# (policy = reference), preference accuracy on held-out pairs of a generated
# task rises above 0.9, the LoRA variant (reference = the base without its
# adapter) resumes bit for bit, and pair-less shards are refused.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

# Chosen completions are colours, rejected ones animals, after a random prompt.
awk 'BEGIN { srand(4); split("red green blue yellow", a, " "); split("cat dog bird fish", b, " ");
	for (i = 0; i < 600; i++) {
		p = ""; for (j = 0; j < 6; j++) p = p (j ? " " : "") (rand() < 0.5 ? a[1 + int(rand() * 4)] : b[1 + int(rand() * 4)]);
		g = ""; r = ""; for (j = 0; j < 4; j++) { g = g " " a[1 + int(rand() * 4)]; r = r " " b[1 + int(rand() * 4)] }
		printf "{\"id\":\"q%d\",\"prompt\":\"%s :\",\"chosen\":\"%s\",\"rejected\":\"%s\"}\n", i, p, g, r } }' >"$T/pairs.jsonl"
awk -F'"' '{ print "{\"text\":\"" $8 $12 $16 "\"}" }' "$T/pairs.jsonl" >"$T/text.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 280 -o "$T/tok" "$T/text.jsonl"
expect_rc "pair shards: exit 0" 0 "$K" encode -t "$T/tok" --template plain --val-fraction 0.1 -o "$T/ps" "$T/pairs.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 32 --context 32 --seed 5 -o "$T/m"

expect_rc "fit --dpo: exit 0" 0 "$Q" fit "$T/m" --data "$T/ps" -o "$T/d" --dpo --steps 40 --batch 8 \
	--context 32 --lr 3e-3 --eval-every 20 --eval-batches 8 --save-every 0 -j 2
jq -s -e '.[0].loss | (. - 0.6931472) | fabs < 1e-6' "$T/d/metrics.jsonl" >/dev/null &&
	pass "fit --dpo: the first step's loss is ln 2 (policy = reference)" ||
	fail "fit --dpo: the first loss is ln 2" "$(head -c 120 "$T/d/metrics.jsonl")"
acc=$(jq -s '[.[] | select(has("val_pref_acc"))] | .[-1].val_pref_acc' "$T/d/metrics.jsonl")
if awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }'; then pass "fit --dpo: held-out preference accuracy $acc > 0.9"; else fail "fit --dpo: held-out preference accuracy" "$acc"; fi
jq -s -e 'all(.[]; has("reward_margin") and has("reward_chosen") and has("reward_rejected") and has("pref_acc")) and
	.[-1].reward_margin > 0' "$T/d/metrics.jsonl" >/dev/null &&
	pass "fit --dpo: rewards and accuracy logged, the margin grows positive" ||
	fail "fit --dpo: rewards logged" "$(tail -1 "$T/d/metrics.jsonl")"

L="$T/l"
expect_rc "fit --dpo --lora: exit 0" 0 "$Q" fit "$T/m" --data "$T/ps" -o "$L" --dpo --lora --steps 20 --batch 8 \
	--context 32 --lr 1e-2 --save-every 5 --keep 10 -j 2
jq -s -e '.[0].loss | (. - 0.6931472) | fabs < 1e-6' "$L/metrics.jsonl" >/dev/null &&
	pass "fit --dpo --lora: the first loss is ln 2 (the base without the adapter is the reference)" ||
	fail "fit --dpo --lora: the first loss is ln 2" "$(head -c 120 "$L/metrics.jsonl")"
cp -r "$L" "$T/l2"
rm -rf "$T/l2/checkpoint-15" "$T/l2/checkpoint-20" "$T/l2/adapter_model.safetensors"
expect_rc "fit --dpo --lora --resume: exit 0" 0 "$Q" fit "$T/m" --data "$T/ps" -o "$T/l2" --dpo --lora --steps 20 \
	--batch 8 --context 32 --lr 1e-2 --save-every 5 --keep 10 -j 2 --resume
check "fit --dpo --lora: the resumed adapter is byte-identical" cmp -s "$L/adapter_model.safetensors" "$T/l2/adapter_model.safetensors"

# Bad input: shards without pairs; pairs without --dpo.
awk 'NR <= 50' "$T/text.jsonl" >"$T/t50.jsonl"
expect_rc "text shards: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/ts" "$T/t50.jsonl"
expect_rc "fit --dpo on shards without pairs: exit 1" 1 "$Q" fit "$T/m" --data "$T/ts" -o "$T/x" --dpo --steps 1
grep_in "fit --dpo on shards without pairs: says so" "$T/err" "no preference pairs"
expect_rc "fit on pair shards without --dpo: exit 1" 1 "$Q" fit "$T/m" --data "$T/ps" -o "$T/y" --steps 1
grep_in "fit on pair shards without --dpo: points at --dpo" "$T/err" "--dpo"
expect_rc "--dpo with --mix: exit 2" 2 "$Q" fit "$T/m" --data "$T/ps" -o "$T/z" --dpo --mix proportional --steps 1
