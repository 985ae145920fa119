# train_lora.sh - quern-train fit --lora: a PEFT-layout adapter (file names,
# tensor names, adapter_config.json), the base weights bit-unchanged, merge
# equal to base + adapter, sample/score --adapter, an exact resume, and bad
# adapters refused.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

hdr() { n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); head -c $((8 + n)) "$1" | tail -c "$n"; }

awk 'BEGIN { srand(11); split("north south east west wind rain sun snow comes goes the a and", w, " ");
	for (i = 0; i < 300; i++) { s = ""; for (j = 0; j < 30; j++) s = s (j ? " " : "") w[1 + int(rand() * 13)];
		printf "{\"id\":\"%d\",\"text\":\"%s\"}\n", i, s } }' >"$T/d.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 280 -o "$T/tok" "$T/d.jsonl"
expect_rc "shards: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/sh" --val-fraction 0.1 "$T/d.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 32 --context 32 --seed 4 -o "$T/m"

L="$T/lora"
expect_rc "fit --lora (all four targets): exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$L" --steps 20 \
	--batch 4 --context 32 --lr 1e-2 --lora --lora-r 4 --lora-alpha 16 \
	--lora-targets c_attn,c_proj,c_fc --save-every 5 --keep 10 -j 2
check "the output holds adapter_config.json" test -s "$L/adapter_config.json"
check "the output holds adapter_model.safetensors" test -s "$L/adapter_model.safetensors"
check "the output holds no full model" test ! -e "$L/model.safetensors"
jq -e '.peft_type == "LORA" and .r == 4 and .lora_alpha == 16 and .fan_in_fan_out == true and
	.task_type == "CAUSAL_LM" and .bias == "none" and
	(.target_modules | sort) == ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]' \
	"$L/adapter_config.json" >/dev/null && pass "adapter_config.json: PEFT's fields" ||
	fail "adapter_config.json: PEFT's fields" "$(tr -d '\n' <"$L/adapter_config.json")"
hdr "$L/adapter_model.safetensors" >"$T/ah.json"
jq -e '(keys - ["__metadata__"]) | length == 16 and
	all(test("^base_model\\.model\\.transformer\\.h\\.[01]\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)\\.lora_[AB]\\.weight$"))' \
	"$T/ah.json" >/dev/null && pass "adapter tensors: PEFT's names" || fail "adapter tensors: PEFT's names" "$(jq -c 'keys' "$T/ah.json")"
jq -e '.["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].shape == [4, 32] and
	.["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].shape == [96, 4] and
	.["base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight"].shape == [4, 128]' \
	"$T/ah.json" >/dev/null && pass "adapter tensors: A is [r, in], B is [out, r]" || fail "adapter shapes" "$(jq -c '.["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"]' "$T/ah.json")"
if cmp -s "$T/m/model.safetensors" "$L/checkpoint-20/model.safetensors"; then
	pass "the base weights are bit-unchanged after training"
else
	fail "the base weights are bit-unchanged" "checkpoint-20/model.safetensors differs from the base"
fi
hdr "$L/checkpoint-20/training_state.safetensors" >"$T/sh.json"
jq -e '([keys[] | select(startswith("adam."))] | length) == 32 and
	([keys[] | select(startswith("adam.") and (contains("lora_") | not))] | length) == 0' \
	"$T/sh.json" >/dev/null && pass "optimizer state: the adapter's moments only" ||
	fail "optimizer state: the adapter's moments only" "$(jq -c '[keys[] | select(startswith("adam."))] | length' "$T/sh.json")"

# merge: the folded model scores like base + adapter.
printf '{"text":"north wind comes and the rain goes"}\n{"text":"the sun and the snow"}\n' >"$T/t.jsonl"
expect_rc "score --adapter: exit 0" 0 "$Q" score "$T/m" --adapter "$L" "$T/t.jsonl"
cp "$T/out" "$T/s_adapter"
expect_rc "merge: exit 0" 0 "$Q" merge "$T/m" --adapter "$L" -o "$T/merged"
expect_rc "score merged: exit 0" 0 "$Q" score "$T/merged" "$T/t.jsonl"
cp "$T/out" "$T/s_merged"
expect_rc "score base: exit 0" 0 "$Q" score "$T/m" "$T/t.jsonl"
cp "$T/out" "$T/s_base"
jq -n -e --slurpfile a "$T/s_adapter" --slurpfile b "$T/s_merged" '
	[range(0; $a | length) as $i | range(0; $a[$i].logprobs | length) as $j |
	 ($a[$i].logprobs[$j] - $b[$i].logprobs[$j]) | fabs] | max < 1e-4' >/dev/null &&
	pass "merged model = base + adapter (every log-probability within 1e-4)" ||
	fail "merged model = base + adapter" "$(jq -c .sum_logprob "$T/s_adapter" | tr '\n' ' ') vs $(jq -c .sum_logprob "$T/s_merged" | tr '\n' ' ')"
jq -n -e --slurpfile a "$T/s_adapter" --slurpfile b "$T/s_base" '$a[0].sum_logprob != $b[0].sum_logprob' >/dev/null &&
	pass "the adapter changes the scores" || fail "the adapter changes the scores" "same as the base"
echo '{"prompt":"north wind"}' >"$T/p.jsonl"
expect_rc "sample --adapter: exit 0" 0 "$Q" sample "$T/m" --adapter "$L" --temperature 0 --max-tokens 8 "$T/p.jsonl"
jq -c .completion "$T/out" >"$T/c1"
expect_rc "sample merged: exit 0" 0 "$Q" sample "$T/merged" --temperature 0 --max-tokens 8 "$T/p.jsonl"
jq -c .completion "$T/out" >"$T/c2"
check "greedy samples: --adapter = merged" cmp -s "$T/c1" "$T/c2"

# An exact resume: drop the last checkpoints and go on.
R="$T/resume"
expect_rc "fit --lora (to resume): exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$R" --steps 20 \
	--batch 4 --context 32 --lr 1e-2 --lora --lora-r 4 --lora-alpha 16 \
	--lora-targets c_attn,c_proj,c_fc --save-every 5 --keep 10 -j 2
rm -rf "$R/checkpoint-15" "$R/checkpoint-20" "$R/adapter_model.safetensors"
expect_rc "fit --lora --resume from step 10: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$R" --steps 20 \
	--batch 4 --context 32 --lr 1e-2 --lora --lora-r 4 --lora-alpha 16 \
	--lora-targets c_attn,c_proj,c_fc --save-every 5 --keep 10 -j 2 --resume
check "resumed adapter = uninterrupted adapter, byte for byte" cmp -s "$R/adapter_model.safetensors" "$L/adapter_model.safetensors"

# Bad input.
expect_rc "--lora-targets q_proj: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --lora-targets q_proj
grep_in "--lora-targets q_proj: named" "$T/err" "q_proj"
expect_rc "fit --lora-dropout 0.1: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/ld" --steps 3 --batch 4 \
	--lora-dropout 0.1 --save-every 0 -j 2
jq -e '.lora_dropout > 0.0999 and .lora_dropout < 0.1001' "$T/ld/adapter_config.json" >/dev/null &&
	pass "--lora-dropout: adapter_config.json records lora_dropout" ||
	fail "--lora-dropout: recorded" "$(jq -c .lora_dropout "$T/ld/adapter_config.json")"
expect_rc "--lora-dropout 1: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --lora-dropout 1
expect_rc "sample --lora: exit 2" 2 "$Q" sample "$T/m" --lora "$T/p.jsonl"
expect_rc "--adapter of a missing dir: exit 1" 1 "$Q" score "$T/m" --adapter "$T/none" "$T/t.jsonl"
grep_in "--adapter of a missing dir: named" "$T/err" "none"
expect_rc "init a wider base: exit 0" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 64 --context 32 -o "$T/wide"
expect_rc "an adapter on a base of another width: exit 1" 1 "$Q" score "$T/wide" --adapter "$L" "$T/t.jsonl"
grep_in "another width: names the tensor" "$T/err" "lora_A.weight"
mkdir -p "$T/badcfg" && cp "$L/adapter_model.safetensors" "$T/badcfg/"
jq '.target_modules = ["q_proj"]' "$L/adapter_config.json" >"$T/badcfg/adapter_config.json"
expect_rc "adapter_config with an unknown target module: exit 1" 1 "$Q" score "$T/m" --adapter "$T/badcfg" "$T/t.jsonl"
grep_in "unknown target module: named" "$T/err" "q_proj"
jq '.peft_type = "PREFIX_TUNING"' "$L/adapter_config.json" >"$T/badcfg/adapter_config.json"
expect_rc "adapter_config of another PEFT type: exit 1" 1 "$Q" score "$T/m" --adapter "$T/badcfg" "$T/t.jsonl"
expect_rc "merge without --adapter: exit 2" 2 "$Q" merge "$T/m" -o "$T/x"
