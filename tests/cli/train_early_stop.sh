# train_early_stop.sh - quern-train fit --patience: a run that overfits a tiny
# training split stops once the validation loss has not improved for N
# evaluations, and DIR holds the model of the best evaluation, the same
# bytes as the checkpoint written at that step.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

# 400 documents of random Greek-letter words; 90% go to validation, so the
# 40 training documents are memorised long before 400 steps.
awk 'BEGIN { srand(5); split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau", w, " ");
	for (i = 0; i < 400; i++) { s = ""; for (j = 0; j < 40; j++) s = s (j ? " " : "") w[1 + int(rand() * 19)];
		printf "{\"id\":\"%d\",\"text\":\"%s\"}\n", i, s } }' >"$T/d.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 300 -o "$T/tok" "$T/d.jsonl"
expect_rc "shards: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/sh" --val-fraction 0.9 "$T/d.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 64 --context 32 --seed 3 -o "$T/m"

expect_rc "--patience without --eval-every: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --patience 2

R="$T/run"
expect_rc "fit --patience 3: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$R" --steps 400 --batch 8 \
	--context 32 --lr 1e-2 --schedule constant --eval-every 5 --eval-batches 4 --patience 3 \
	--save-every 5 --keep 1000 -j 1
grep_in "fit --patience: says it stopped early" "$T/err" "stopped early"
last=$(jq -s '.[-1].step' "$R/metrics.jsonl")
if [ -n "$last" ] && [ "$last" -lt 400 ]; then pass "stopped before --steps (step $last)"; else fail "stopped before --steps" "last step '$last'"; fi
best=$(jq -s '[.[] | select(has("val_loss"))] | min_by(.val_loss) | .step' "$R/metrics.jsonl")
said=$(jq -s '.[-1].best_step' "$R/metrics.jsonl")
if [ -n "$best" ] && [ "$best" = "$said" ]; then pass "best_step $said is the lowest validation loss's"; else fail "best_step" "lowest at '$best', reported '$said'"; fi
jq -s -e '.[-1].early_stop == true and ([.[] | select(has("val_loss"))] | .[-3:] | all(.val_loss >= $b))' \
	--argjson b "$(jq -s '[.[] | select(has("val_loss"))] | min_by(.val_loss) | .val_loss' "$R/metrics.jsonl")" \
	"$R/metrics.jsonl" >/dev/null 2>&1 && pass "the last 3 evaluations were no better" ||
	fail "the last 3 evaluations were no better" "$(jq -c 'select(has("val_loss")) | [.step, .val_loss]' "$R/metrics.jsonl" | tail -4 | tr '\n' ' ')"
if [ -s "$R/checkpoint-$best/model.safetensors" ] && cmp -s "$R/model.safetensors" "$R/checkpoint-$best/model.safetensors"; then
	pass "the final model is the best step's checkpoint, byte for byte"
else
	fail "the final model is the best step's checkpoint" "step $best"
fi
check "the final model is not the last step's" sh -c "! cmp -s '$R/model.safetensors' '$R/checkpoint-$last/model.safetensors'"
expect_rc "the final model samples" 0 sh -c "echo '{\"prompt\":\"alpha\"}' | '$Q' sample '$R' --max-tokens 4 --temperature 0"
