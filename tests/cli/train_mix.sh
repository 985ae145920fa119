# train_mix.sh - quern-train fit --mix / --task-weight: multi-task rows from
# the shards' tasks, validation loss per task, an exact resume of the mixer,
# and bad mixture options refused.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

awk 'BEGIN { srand(3);
	n[1] = 300; n[2] = 100; n[3] = 30; split("alpha beta gamma", tk, " ");
	w[1] = "red green blue"; w[2] = "cat dog bird"; w[3] = "one two three";
	for (t = 1; t <= 3; t++) { split(w[t], ws, " ");
		for (i = 0; i < n[t]; i++) { s = ""; for (j = 0; j < 20; j++) s = s (j ? " " : "") ws[1 + int(rand() * 3)];
			printf "{\"id\":\"%s%d\",\"task\":\"%s\",\"text\":\"%s\"}\n", tk[t], i, tk[t], s } } }' >"$T/d.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 280 -o "$T/tok" "$T/d.jsonl"
expect_rc "shards with three tasks: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/sh" --val-fraction 0.1 "$T/d.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 1 --heads 2 --width 32 --context 32 -o "$T/m"

expect_rc "fit --mix temperature: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/a" --steps 20 --batch 4 \
	--mix temperature --mix-temperature 3 --eval-every 10 --save-every 5 --keep 10 -j 2
jq -s -e '[.[] | select(has("val_loss"))] | length == 2 and
	all(.val_loss_tasks | keys == ["alpha", "beta", "gamma"] and all(.[]; . > 0))' "$T/a/metrics.jsonl" >/dev/null &&
	pass "fit --mix: validation loss per task on evaluation steps" ||
	fail "fit --mix: validation loss per task" "$(tail -1 "$T/a/metrics.jsonl")"
hdr() { n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); head -c $((8 + n)) "$1" | tail -c "$n"; }
hdr "$T/a/checkpoint-20/training_state.safetensors" | jq -e '.__metadata__.mix | test("^[0-9]+(;[0-9]+,[0-9]+,[0-9]+)+$")' >/dev/null &&
	pass "the training state holds the mixer's position" || fail "the mixer's position in the state" "$(hdr "$T/a/checkpoint-20/training_state.safetensors" | jq -c .__metadata__.mix)"

# Resume: drop the checkpoints after step 10 and go on; the same weights.
cp -r "$T/a" "$T/b"
rm -rf "$T/b/checkpoint-15" "$T/b/checkpoint-20" "$T/b/model.safetensors"
expect_rc "fit --mix --resume from step 10: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/b" --steps 20 \
	--batch 4 --mix temperature --mix-temperature 3 --eval-every 10 --save-every 5 --keep 10 -j 2 --resume
check "fit --mix: the resumed run ends with the same weights" cmp -s "$T/a/model.safetensors" "$T/b/model.safetensors"

expect_rc "fit --task-weight beta=1 --task-weight gamma=3: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/c" \
	--steps 2 --batch 2 --task-weight beta=1 --task-weight gamma=3 -v
grep_in "--task-weight: alpha gets weight 0" "$T/err" "task alpha: [0-9]+ examples, weight 0.0000"
grep_in "--task-weight: gamma gets 0.75" "$T/err" "task gamma: [0-9]+ examples, weight 0.7500"
expect_rc "--task-weight of an unknown task: exit 1" 1 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --task-weight zeta=1
grep_in "--task-weight of an unknown task: named" "$T/err" "zeta"
expect_rc "--task-weight without =: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --task-weight beta
expect_rc "--mix bogus: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --mix bogus
expect_rc "--task-weight all zero: exit 1" 1 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --task-weight alpha=0
