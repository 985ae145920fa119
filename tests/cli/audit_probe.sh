# audit_probe.sh - quern-audit probe: a tiny model trained on documents
# with e-mail addresses regurgitates some; the probe finds them in its
# generations with scan's detectors, marks those whose value the --train
# documents hold as regurgitated (alice's; carol's address, generated twice, is
# left out of --train), and the gates fail or pass as configured. Generations
# are deterministic and match quern-train sample's for one sample a prompt.
# Then usage errors and bad input. About 4 s on 2 cores.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

for r in $(seq 1 30); do
	for n in alice bob carol; do
		printf '{"id":"%s-%s","text":"Please contact %s at %s.smith@example.org about the harvest."}\n' \
			"$n" "$r" "$n" "$n"
	done
done >"$T/train.jsonl"
grep -v carol "$T/train.jsonl" >"$T/known.jsonl"
"$K" train --vocab-size 300 -o "$T/tok" "$T/train.jsonl" 2>"$T/err" || fail "tokenizer" "$(head -c 300 "$T/err")"
expect_rc "encode" 0 "$K" encode -t "$T/tok" --val-fraction 0 -o "$T/sh" "$T/train.jsonl"
expect_rc "init" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 64 --context 64 --seed 1 -o "$T/m0"
expect_rc "fit 200 steps" 0 "$Q" fit "$T/m0" --data "$T/sh" -o "$T/m" --steps 200 --batch 8 \
	--lr 5e-3 --warmup 20 --weight-decay 0 --save-every 0 -j 2
cat >"$T/prompts.jsonl" <<'J'
{"id":"p-alice","prompt":"Please contact alice at"}
{"id":"p-carol","prompt":"Please contact carol at"}
{"prompt":"The weather today"}
J

expect_rc "probe: the regurgitated gate fails" 1 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" \
	--temperature 0 --max-tokens 16 --train "$T/known.jsonl" --gate 'regurgitated: 0' \
	--generations "$T/gen.jsonl" --summary "$T/sum.json" -o "$T/f.jsonl" -j 2
grep_in "the failed gate is named" "$T/err" "gate 'regurgitated' failed: 1 finding"
lines "one generation a prompt" "$T/gen.jsonl" 3
check "alice's address is generated" jq -se '.[0].completion | test("alice.smith@example.org")' "$T/gen.jsonl"
lines "three e-mail findings" "$T/f.jsonl" 3
check "alice's is regurgitated" jq -se '[.[] | select(.doc == "p-alice") | .regurgitated] == [true]' "$T/f.jsonl"
check "carol's are not (not in --train)" jq -se '[.[] | select(.doc != "p-alice") | .regurgitated] == [false, false]' "$T/f.jsonl"
check "findings scan the completion field" jq -se 'all(.[]; .field == "completion" and .source == "'"$T"'/gen.jsonl")' "$T/f.jsonl"
no_grep_in "findings hold no raw value" "$T/f.jsonl" 'smith@example'
check "summary: 3 reported, 1 regurgitated" jq -e '.findings.reported == 3 and .findings.regurgitated == 1 and .findings.regurgitated_by_type.EMAIL == 1' "$T/sum.json"
check "summary: the probe's facts" jq -e '.probe.prompts == 3 and .probe.generations == 3 and .probe.temperature == 0 and .probe.training_values == 2' "$T/sum.json"
check "summary: the gate failed" jq -e '.passed == false and .gates[0].id == "regurgitated" and .gates[0].observed == 1' "$T/sum.json"
check "a manifest beside the findings" jq -e '.counters.generations == 3 and .command == "probe"' "$T/f.jsonl.manifest.json"
grep_in "the manifest names the model and the prompts" "$T/f.jsonl.manifest.json" 'model.safetensors'

expect_rc "probe: gates that pass" 0 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" \
	--temperature 0 --max-tokens 16 --train "$T/train.jsonl" --gate 'regurgitated: 3' \
	--gate 'EMAIL: 3' -o "$T/f2.jsonl"
check "every address regurgitated with the full training data" jq -se 'all(.[]; .regurgitated)' "$T/f2.jsonl"
printf 'gates:\n  kind pii: 0\n' >"$T/pol.yaml"
expect_rc "probe: a policy file's gate fails" 1 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" \
	--temperature 0 --max-tokens 16 --policy "$T/pol.yaml" -o "$T/f3.jsonl"
grep_in "names the gate" "$T/err" "gate 'kind pii' failed"
no_grep_in "no regurgitated field without --train" "$T/f3.jsonl" 'regurgitated'
expect_rc "probe: no gate, exit 0" 0 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" --temperature 0 \
	--max-tokens 16 --html "$T/r.html" -o "$T/f4.jsonl"
grep_in "html report" "$T/r.html" 'quern-audit scan'

# Deterministic, and the same as quern-train sample for one sample a prompt.
"$A" probe "$T/m" --prompts "$T/prompts.jsonl" --seed 7 --max-tokens 12 --generations "$T/g1.jsonl" -o /dev/null 2>/dev/null
"$A" probe "$T/m" --prompts "$T/prompts.jsonl" --seed 7 --max-tokens 12 --generations "$T/g2.jsonl" -o /dev/null -j 2 2>/dev/null
check "sampling repeats for a seed" cmp "$T/g1.jsonl" "$T/g2.jsonl"
"$Q" sample "$T/m" --seed 7 --max-tokens 12 -o "$T/s.jsonl" "$T/prompts.jsonl" 2>/dev/null
check "the completions are quern-train sample's" sh -c "jq -c .completion '$T/g1.jsonl' >'$T/a'; jq -c .completion '$T/s.jsonl' >'$T/b'; cmp '$T/a' '$T/b'"
"$A" probe "$T/m" --prompts "$T/prompts.jsonl" --samples 3 --max-tokens 8 --generations "$T/g3.jsonl" -o /dev/null 2>/dev/null
lines "--samples 3: three a prompt" "$T/g3.jsonl" 9
check "--samples: ids carry the sample" jq -se '.[1].id == "p-alice/1" and .[1].sample == 1' "$T/g3.jsonl"

# ---- usage and bad input ----
expect_rc "--help" 0 "$A" probe --help
grep_in "--help: usage" "$T/out" '^usage: quern-audit probe MODEL --prompts FILE'
expect_rc "bad flag" 2 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" --bogus
expect_rc "no --prompts" 2 "$A" probe "$T/m"
expect_rc "no model" 2 "$A" probe --prompts "$T/prompts.jsonl"
expect_rc "regurgitated gate without --train" 2 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" --gate 'regurgitated: 0'
grep_in "says --train" "$T/err" "needs the training documents"
expect_rc "a bad gate" 2 "$A" probe "$T/m" --prompts "$T/prompts.jsonl" --gate 'EMAIL: lots'
expect_rc "the regurgitated gate in a plain scan" 2 "$A" scan --gate 'regurgitated: 0' "$T/train.jsonl"
expect_rc "missing model" 1 "$A" probe "$T/nope" --prompts "$T/prompts.jsonl"
expect_rc "missing prompts" 1 "$A" probe "$T/m" --prompts "$T/nope.jsonl"
printf '{"prompt":"Please contact"}\n{"prompt": broken\n[1]\n{"text":"x"}\n' >"$T/badp.jsonl"
expect_rc "bad prompt lines: exit 1, the rest probed" 1 "$A" probe "$T/m" --prompts "$T/badp.jsonl" \
	--max-tokens 4 --generations "$T/gb.jsonl" -o /dev/null
grep_in "names the line and column" "$T/err" 'badp.jsonl:2:[0-9]+: '
grep_in "names a line that is not an object" "$T/err" 'badp.jsonl:3: not a JSON object'
lines "the good prompts are generated" "$T/gb.jsonl" 2
expect_rc "/dev/full" 1 sh -c "'$A' probe '$T/m' --prompts '$T/prompts.jsonl' --temperature 0 --max-tokens 16 >/dev/full"
