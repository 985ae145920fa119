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

# Precomputed reference log-probabilities: the trajectory of the run with the
# reference model, without it; the file is reusable, and checked.
expect_rc "fit --dpo --dpo-precompute: exit 0" 0 "$Q" fit "$T/m" --data "$T/ps" -o "$T/p" --dpo --dpo-precompute \
	--steps 40 --batch 8 --context 32 --lr 3e-3 --eval-every 20 --eval-batches 8 --save-every 0 -j 2
check "fit --dpo-precompute: DIR/dpo_reference.safetensors written" test -s "$T/p/dpo_reference.safetensors"
same_traj() { # NAME A B: losses and validation accuracy within 1e-6 at every step
	jq -c '[.step, .loss, (.val_pref_acc // null)]' "$2/metrics.jsonl" >"$T/ta"
	jq -c '[.step, .loss, (.val_pref_acc // null)]' "$3/metrics.jsonl" >"$T/tb"
	worst=$(paste -d'|' "$T/ta" "$T/tb" | awk -F'|' '{ split($1, a, ","); split($2, b, ","); d = a[2] - b[2]; if (d < 0) d = -d; if (d > w) w = d; if (a[3] != b[3]) w = 1 } END { printf "%g", w + 0 }')
	n1=$(wc -l <"$T/ta"); n2=$(wc -l <"$T/tb")
	if [ "$n1" = 40 ] && [ "$n1" = "$n2" ] && awk -v w="$worst" 'BEGIN { exit !(w < 1e-6) }'; then pass "$1 (worst loss difference $worst)"; else
		fail "$1" "$n1 and $n2 steps, worst difference $worst"
	fi
}
same_traj "fit --dpo-precompute: the losses of the run with the reference model" "$T/d" "$T/p"
expect_rc "fit --dpo --dpo-reference FILE: exit 0" 0 "$Q" fit "$T/m" --data "$T/ps" -o "$T/r" --dpo \
	--dpo-reference "$T/p/dpo_reference.safetensors" --steps 40 --batch 8 --context 32 --lr 3e-3 \
	--eval-every 20 --eval-batches 8 --save-every 0 -j 2
check "fit --dpo-reference: the same weights as --dpo-precompute" cmp -s "$T/p/model.safetensors" "$T/r/model.safetensors"
expect_rc "--dpo-reference at another context: exit 1" 1 "$Q" fit "$T/m" --data "$T/ps" -o "$T/r2" --dpo \
	--dpo-reference "$T/p/dpo_reference.safetensors" --steps 1 --context 16
grep_in "--dpo-reference at another context: says so" "$T/err" "computed at context 32"
expect_rc "--dpo-reference for other shards: exit 1" 1 "$Q" fit "$T/m" --data "$T/ts" -o "$T/r3" --dpo \
	--dpo-reference "$T/p/dpo_reference.safetensors" --steps 1 --context 32
expect_rc "--dpo-reference that is a model: exit 1" 1 "$Q" fit "$T/m" --data "$T/ps" -o "$T/r4" --dpo \
	--dpo-reference "$T/m/model.safetensors" --steps 1 --context 32
grep_in "--dpo-reference that is a model: not a DPO reference file" "$T/err" "not a DPO reference file"
expect_rc "--dpo-precompute without --dpo: exit 2" 2 "$Q" fit "$T/m" --data "$T/ps" -o "$T/r5" --dpo-precompute --steps 1
expect_rc "fit --dpo --lora --dpo-precompute: exit 0" 0 "$Q" fit "$T/m" --data "$T/ps" -o "$T/lp" --dpo --lora \
	--dpo-precompute --steps 20 --batch 8 --context 32 --lr 1e-2 --save-every 0 -j 2
jq -s -e '.[0].loss | (. - 0.6931472) | fabs < 1e-6' "$T/lp/metrics.jsonl" >/dev/null &&
	pass "fit --dpo --lora --dpo-precompute: the first loss is ln 2 (the base's log-probabilities)" ||
	fail "fit --dpo --lora --dpo-precompute: the first loss is ln 2" "$(head -c 120 "$T/lp/metrics.jsonl")"
check "fit --dpo --lora --dpo-precompute: the adapter of the run without precomputing" \
	cmp -s "$L/adapter_model.safetensors" "$T/lp/adapter_model.safetensors"
# Preference examples with a missing side: named, the whole pairs still encoded.
printf '{"prompt":"red :","chosen":" blue"}\n{"prompt":"red :","rejected":" cat"}\n{"prompt":"red :","chosen":" blue","rejected":" cat"}\n' >"$T/half.jsonl"
expect_rc "pairs with a missing side: exit 1" 1 "$K" encode -t "$T/tok" -o "$T/hs" "$T/half.jsonl"
grep_in "a pair without \"rejected\": file and line named" "$T/err" 'half.jsonl:1: an example with "prompt" needs string "completion", or "chosen" and "rejected"'
grep_in "a pair without \"chosen\": file and line named" "$T/err" "half.jsonl:2:"
