# audit_eval.sh - quern-audit eval: a tiny trained model on generated tasks of
# each output type; lm-eval's results layout; bits_per_byte against
# quern-train score; few-shot prompts reproducible, never holding the
# evaluated document and drawn as CPython's random.Random would; --limit;
# -j not changing results; --adapter equal to the merged model; bad task
# files, data and tokenizers refused with their place named.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

awk 'BEGIN { srand(11); split("north south east west wind rain sun snow comes goes the a and", w, " ");
	for (i = 0; i < 200; i++) { s = ""; for (j = 0; j < 20; j++) s = s (j ? " " : "") w[1 + int(rand() * 13)];
		printf "{\"id\":\"%d\",\"text\":\"%s\"}\n", i, s } }' >"$T/d.jsonl"
"$K" train --vocab-size 280 -o "$T/tok" "$T/d.jsonl" >/dev/null 2>&1
"$K" encode -t "$T/tok" -o "$T/sh" --val-fraction 0.1 "$T/d.jsonl" >/dev/null 2>&1
"$Q" init -t "$T/tok" --layers 2 --heads 2 --width 32 --context 64 --seed 4 -o "$T/m0" >/dev/null 2>&1
expect_rc "fixture: a few fit steps" 0 "$Q" fit "$T/m0" --data "$T/sh" -o "$T/fit" --steps 8 --batch 4 \
	--context 32 --lr 1e-2 -j 2
M="$T/fit"
[ -f "$M/model.safetensors" ] || M=$(ls -d "$T"/fit/checkpoint-* 2>/dev/null | tail -n 1)

mkdir -p "$T/data"
awk 'BEGIN { srand(3); split("north south east west", w, " ");
	for (i = 0; i < 40; i++) { a = 1 + int(rand() * 4);
		printf "{\"q\":\"where does the wind come from %d\",\"choices\":{\"text\":[\"north\",\"south\",\"east\",\"west\"]},\"label\":%d,\"answer\":\"%s\",\"text\":\"the %s wind comes and the rain goes\"}\n", i, a - 1, w[a], w[a] } }' >"$T/data/test.jsonl"
cp "$T/data/test.jsonl" "$T/data/train.jsonl"
cat >"$T/base.yaml" <<'EOF'
dataset_path: data
test_split: test
fewshot_split: train
doc_to_text: "Q: {{q}}\nA:"
EOF
cat >"$T/mc.yaml" <<'EOF'
include: base.yaml
task: mc
output_type: multiple_choice
doc_to_target: label
doc_to_choice: "{{choices.text}}"
num_fewshot: 2
metric_list:
  - metric: acc
  - metric: acc_norm
  - metric: f1
    aggregation: f1
  - metric: acc_mutual_info
metadata:
  version: 2.0
EOF
cat >"$T/ll.yaml" <<'EOF'
task: ll
dataset_path: data/test.jsonl
output_type: loglikelihood
doc_to_text: "Q: {{q}}\nA:"
doc_to_target: "{{' ' + answer}}"
EOF
cat >"$T/roll.yaml" <<'EOF'
task: roll
dataset_path: data/test.jsonl
output_type: loglikelihood_rolling
doc_to_target: "{{text}}"
EOF
cat >"$T/gen.yaml" <<'EOF'
task: gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/test.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{q}}\nA:"
doc_to_target: " {{answer}}"
generation_kwargs:
  until: ["\n", "."]
  max_gen_toks: 8
metric_list:
  - metric: exact_match
    ignore_case: true
    ignore_punctuation: true
EOF
# the few-shot pool is the evaluated file itself
cat >"$T/same.yaml" <<'EOF'
task: same
dataset_path: data/test.jsonl
output_type: multiple_choice
doc_to_text: "Q: {{q}}\nA:"
doc_to_target: answer
doc_to_choice: [north, south, east, west]
num_fewshot: 3
EOF

expect_rc "eval: four output types, exit 0" 0 "$A" eval "$M" --tasks "$T/mc.yaml,$T/ll.yaml" --tasks "$T/roll.yaml" \
	--tasks "$T/gen.yaml" -o "$T/r.json" --samples "$T/s.jsonl" -j 2
check "eval: silence on success" test ! -s "$T/err"
jq -e '(.results.mc | has("alias") and (.["acc,none"] | . >= 0 and . <= 1) and (.["acc_stderr,none"] | type == "number")
	and has("acc_norm,none") and has("f1,none") and has("f1_stderr,none") and has("acc_mutual_info,none"))
	and (.results.ll | has("perplexity,none") and has("perplexity_stderr,none") and has("acc,none"))
	and (.results.roll | has("word_perplexity,none") and has("byte_perplexity,none") and has("bits_per_byte,none"))
	and (.results.gen | has("exact_match,none"))' "$T/r.json" >/dev/null &&
	pass "results: lm-eval's metric keys per task" || fail "results: metric keys" "$(jq -c .results "$T/r.json")"
jq -e '.versions.mc == 2.0 and .["n-shot"].mc == 2 and .["n-shot"].ll == 0
	and .["n-samples"].mc == {"original": 40, "effective": 40}
	and .configs.mc.task == "mc" and .configs.mc.dataset_path == "data" and .configs.mc.num_fewshot == 2
	and .configs.mc.output_type == "multiple_choice" and .configs.gen.generation_kwargs.until == ["\n", "."]
	and .higher_is_better.mc.acc == true and .higher_is_better.ll.perplexity == false
	and .group_subtasks.mc == [] and .config.model == "quern" and .config.limit == null
	and (.date | type == "number") and (.total_evaluation_time_seconds | type == "string")' "$T/r.json" >/dev/null &&
	pass "results: versions, n-shot, n-samples, configs, higher_is_better, config" ||
	fail "results: layout" "$(jq -c 'del(.results, .configs)' "$T/r.json")"
lines "samples: one line per document" "$T/s.jsonl" 160
jq -e 'select(.task == "mc") | (.doc_hash | test("^[0-9a-f]{64}$")) and (.prompt_hash | test("^[0-9a-f]{64}$"))
	and (.target_hash | test("^[0-9a-f]{64}$")) and (.filtered_resps | length == 8) and (.arguments_hashes | length == 8)
	and (has("doc") | not) and (.arguments | not) and (.metrics == ["acc", "acc_norm", "f1", "acc_mutual_info"])' \
	"$T/s.jsonl" | grep -qv true && fail "samples: hashes, no text" "$(head -c 400 "$T/s.jsonl")" ||
	pass "samples: hashes and log-likelihoods, no text by default"
check "samples: no document text without --log-text" sh -c "! grep -q 'where does the wind' '$T/s.jsonl'"

# bits_per_byte from quern-train score's log-probabilities (end-of-text first, the same windows)
jq -c '{text}' "$T/data/test.jsonl" >"$T/texts.jsonl"
"$Q" score "$M" "$T/texts.jsonl" >"$T/scored.jsonl" 2>/dev/null
bpb=$(jq -s '(map(.sum_logprob) | add) as $ll | (map(.text | utf8bytelength) | add) as $b | -$ll / $b / (2 | log)' "$T/scored.jsonl")
jq -e --argjson want "$bpb" '(.results.roll["bits_per_byte,none"] - $want) | fabs < 1e-6 * $want' "$T/r.json" >/dev/null &&
	pass "bits_per_byte agrees with quern-train score" || fail "bits_per_byte vs quern-train score" "$(jq '.results.roll["bits_per_byte,none"]' "$T/r.json") vs $bpb"

# determinism: the seed decides the prompts; -j and --batch do not change results
expect_rc "eval --seed 7" 0 "$A" eval "$M" --tasks "$T/mc.yaml" --seed 7 --samples "$T/s7a.jsonl" -o "$T/r7a.json" -j 1
expect_rc "eval --seed 7 again, -j 2 --batch 3" 0 "$A" eval "$M" --tasks "$T/mc.yaml" --seed 7 --samples "$T/s7b.jsonl" -o "$T/r7b.json" -j 2 --batch 3
check "same seed: the same prompts" cmp -s "$T/s7a.jsonl" "$T/s7b.jsonl"
jq -e --slurpfile b "$T/r7b.json" '.results == $b[0].results' "$T/r7a.json" >/dev/null &&
	pass "-j and --batch: the same results" || fail "-j and --batch: the same results" "$(jq -c .results "$T/r7a.json") vs $(jq -c .results "$T/r7b.json")"
"$A" eval "$M" --tasks "$T/mc.yaml" --seed 8 --samples "$T/s8.jsonl" -o /dev/null 2>/dev/null
if cmp -s "$T/s7a.jsonl" "$T/s8.jsonl"; then fail "another seed: other prompts" "identical"; else pass "another seed: other prompts"; fi

expect_rc "eval --log-text, few-shot from the evaluated file" 0 "$A" eval "$M" --tasks "$T/same.yaml" --seed 1234 \
	--samples "$T/ss.jsonl" --log-text -o "$T/rs.json"
jq -e '. as $s | (.fewshot_doc_ids | length == 3) and (.fewshot_doc_ids | map(select(. == $s.doc_id)) | length == 0)' "$T/ss.jsonl" | grep -qv true &&
	fail "few-shot: never the evaluated document" "$(jq -c '[.doc_id, .fewshot_doc_ids]' "$T/ss.jsonl" | head -5)" ||
	pass "few-shot: 3 shots, never the evaluated document"
jq -r '[.doc_id, .doc.q, (.arguments.gen_args_0.arg_0 | split("\n\n") | length)] | @tsv' "$T/ss.jsonl" | awk -F'\t' '$3 != 4 { bad++ } END { exit bad > 0 }' &&
	pass "--log-text: prompts of 3 shots and the question" || fail "--log-text prompts" "$(head -c 300 "$T/ss.jsonl")"
if command -v python3 >/dev/null 2>&1; then
	# lm-eval: random.Random(seed), k + 1 drawn per document in order, the document dropped, k kept
	jq -c '[.doc_id, .fewshot_doc_ids]' "$T/ss.jsonl" >"$T/shots.jsonl"
	if python3 -c '
import json, random, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
r = random.Random(1234)
for line in open(sys.argv[2]):
    d, got = json.loads(line)
    want = [i for i in r.sample(range(len(docs)), 4) if docs[i] != docs[d]][:3]
    if want != got:
        sys.exit("doc %d: %s, lm-eval %s" % (d, got, want))
' "$T/data/test.jsonl" "$T/shots.jsonl" >"$T/py.err" 2>&1; then
		pass "few-shot: the shots lm-eval's sampler draws (CPython random)"
	else
		fail "few-shot: the shots lm-eval's sampler draws" "$(cat "$T/py.err")"
	fi
fi

expect_rc "eval --limit 5" 0 "$A" eval "$M" --tasks "$T/ll.yaml" --limit 5 --samples "$T/s5.jsonl" -o "$T/r5.json"
jq -e '.["n-samples"].ll == {"original": 40, "effective": 5} and .config.limit == 5' "$T/r5.json" >/dev/null &&
	pass "--limit: effective 5 of 40" || fail "--limit" "$(jq -c '.["n-samples"]' "$T/r5.json")"
lines "--limit: 5 sample lines" "$T/s5.jsonl" 5

# --adapter: base + adapter scores as the merged model
"$Q" fit "$T/m0" --data "$T/sh" -o "$T/lora" --steps 6 --batch 4 --context 32 --lr 1e-2 --lora --lora-r 4 -j 2 >/dev/null 2>&1
"$Q" merge "$T/m0" --adapter "$T/lora" -o "$T/merged" >/dev/null 2>&1
expect_rc "eval --adapter" 0 "$A" eval "$T/m0" --adapter "$T/lora" --tasks "$T/ll.yaml" -o "$T/ra.json"
expect_rc "eval the merged model" 0 "$A" eval "$T/merged" --tasks "$T/ll.yaml" -o "$T/rm.json"
expect_rc "eval the base model" 0 "$A" eval "$T/m0" --tasks "$T/ll.yaml" -o "$T/rb.json"
jq -e --slurpfile m "$T/rm.json" '.results.ll["perplexity,none"] as $a | $m[0].results.ll["perplexity,none"] as $b | ($a - $b | fabs) < 1e-4 * $b' "$T/ra.json" >/dev/null &&
	pass "--adapter: the merged model's perplexity" || fail "--adapter = merged" "$(jq .results.ll "$T/ra.json") vs $(jq .results.ll "$T/rm.json")"
jq -e --slurpfile b "$T/rb.json" '.results.ll["perplexity,none"] != $b[0].results.ll["perplexity,none"]' "$T/ra.json" >/dev/null &&
	pass "--adapter changes the scores" || fail "--adapter changes the scores" "same as the base"

# bad task files: the field and its place named
printf 'task: x\ndataset_path: data\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\ndoc_to_choise: [a]\n' >"$T/unknown.yaml"
expect_rc "unknown task field: exit 1" 1 "$A" eval "$M" --tasks "$T/unknown.yaml"
grep_in "unknown task field: file:line:col and the field" "$T/err" "unknown.yaml:6:1: unknown key 'doc_to_choise'"
printf 'task: x\ndataset_path: data\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\nnum_fewshot: many\n' >"$T/type.yaml"
expect_rc "wrong type: exit 1" 1 "$A" eval "$M" --tasks "$T/type.yaml"
grep_in "wrong type: file:line:col and the field" "$T/err" "type.yaml:6:14: .*num_fewshot"
printf 'task: x\ndataset_path: data\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: 0\ndoc_to_choice: [a, b]\nfilter_list: []\n' >"$T/unsup.yaml"
expect_rc "an lm-eval field quern does not run: exit 1" 1 "$A" eval "$M" --tasks "$T/unsup.yaml"
grep_in "an lm-eval field quern does not run: named" "$T/err" "unsup.yaml:8:1: 'filter_list'.*not supported"
printf 'task: x\ndataset_path: data\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: "{{q}}"\ndoc_to_target: 0\ndoc_to_choice: [a, b]\nmetric_list:\n  - metric: bleu\n' >"$T/metric.yaml"
expect_rc "an unsupported metric: exit 1" 1 "$A" eval "$M" --tasks "$T/metric.yaml"
grep_in "an unsupported metric: named with its place" "$T/err" "metric.yaml:9:13: metric 'bleu'"
printf 'task: x\ndataset_path: data\ntest_split: test\noutput_type: loglikelihood\ndoc_to_text: "{{ q }}"\ndoc_to_target: "{{ answr }}"\n' >"$T/field.yaml"
expect_rc "a missing dataset field: exit 1" 1 "$A" eval "$M" --tasks "$T/field.yaml"
grep_in "a missing dataset field: the document's line and the field" "$T/err" "data/test.jsonl:1: doc_to_target \(.*field.yaml:6:16\).*'answr'"
printf 'task: x\ndataset_path: nowhere\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n' >"$T/nodata.yaml"
expect_rc "a missing dataset: exit 1" 1 "$A" eval "$M" --tasks "$T/nodata.yaml"
grep_in "a missing dataset: named" "$T/err" "nowhere"
printf '{"q": "a"}\nnot json\n' >"$T/data/broken.jsonl"
printf 'task: x\ndataset_path: data/broken.jsonl\noutput_type: loglikelihood\ndoc_to_text: q\ndoc_to_target: q\n' >"$T/broken.yaml"
expect_rc "a bad dataset line: exit 1" 1 "$A" eval "$M" --tasks "$T/broken.yaml"
grep_in "a bad dataset line: file:line" "$T/err" "broken.jsonl:2:"
expect_rc "a missing task file: exit 1" 1 "$A" eval "$M" --tasks "$T/none.yaml"
grep_in "a missing task file: named" "$T/err" "none.yaml"

# tokenizers that do not fit the model
cp -r "$M" "$T/notok"
rm -f "$T/notok"/tokenizer.json "$T/notok"/*.tiktoken "$T/notok"/quern-tokenizer.json "$T/notok"/vocab.json "$T/notok"/merges.txt
expect_rc "no tokenizer files: exit 1" 1 "$A" eval "$T/notok" --tasks "$T/ll.yaml"
grep_in "no tokenizer files: said" "$T/err" "tokenizer"
"$K" train --vocab-size 270 -o "$T/tok2" "$T/d.jsonl" >/dev/null 2>&1
cp -r "$M" "$T/othertok"
rm -f "$T/othertok"/tokenizer.json "$T/othertok"/*.tiktoken "$T/othertok"/quern-tokenizer.json
cp "$T/tok2"/* "$T/othertok/"
expect_rc "another tokenizer's files: exit 1" 1 "$A" eval "$T/othertok" --tasks "$T/ll.yaml"
grep_in "another tokenizer's files: the fingerprints named" "$T/err" "not the tokenizer the model was made with"

# the command line
expect_rc "--help: exit 0" 0 "$A" eval --help
grep_in "--help: usage on stdout" "$T/out" "^usage: quern-audit eval MODEL --tasks"
expect_rc "a bad flag: exit 2" 2 "$A" eval "$M" --tasks "$T/ll.yaml" --frobnicate
grep_in "a bad flag: try --help" "$T/err" "try 'quern-audit --help'"
expect_rc "no --tasks: exit 2" 2 "$A" eval "$M"
expect_rc "--limit -1: exit 2" 2 "$A" eval "$M" --tasks "$T/ll.yaml" --limit -1
expect_rc "a missing model: exit 1" 1 "$A" eval "$T/nomodel" --tasks "$T/ll.yaml"
expect_rc "/dev/full: exit 1" 1 "$A" eval "$M" --tasks "$T/ll.yaml" -o /dev/full
expect_rc "stdout to /dev/full: exit 1" 1 sh -c "'$A' eval '$M' --tasks '$T/ll.yaml' >/dev/full"
