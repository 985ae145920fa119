# train_basic.sh - quern-train's command line end to end on a tiny model
# with a tokenizer the test trains itself: usage errors, init (GPT2Config,
# Hugging Face tensor names, seeded), fit (metrics, checkpoints, --keep,
# the final model), sample (fields, greedy, seeds, --max-tokens,
# --stop) and score (fields, sums, context/continuation, causality), stdin,
# a full disk, a missing model and bad lines.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

jq_ok() { # NAME FILE EXPR: jq -e EXPR holds on the file (one JSON value)
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 300 "$2")"; fi
}
jqs_ok() { # NAME FILE EXPR: the same over a JSON Lines file read as one array
	if jq -s -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq -s '$3' false on $2: $(head -c 300 "$2")"; fi
}
same() { # NAME A B: the two files are byte-identical and not empty
	if [ -s "$2" ] && cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ or are empty"; fi
}
differ() { # NAME A B: both files exist, not empty, and differ
	if [ -s "$2" ] && [ -s "$3" ] && ! cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 are the same or empty"; fi
}
# run_ok NAME OUT command...: the command exits 0 (stdout to OUT, stderr
# to $T/err), so a sanitizer's report cannot pass unseen.
run_ok() {
	name=$1 o=$2
	shift 2
	"$@" >"$o" 2>"$T/err"
	got=$?
	if [ "$got" -eq 0 ]; then pass "$name"; else fail "$name" "exit $got; stderr: $(head -c 300 "$T/err")"; fi
}
# st_header FILE: the JSON header of a safetensors file (its first 8 bytes
# are the header's length, little-endian).
st_header() {
	n=$(od -An -t u8 -N 8 "$1" 2>/dev/null | tr -d ' ')
	[ -n "$n" ] || return 1
	head -c $((8 + n)) "$1" | tail -c "$n"
}

check "quern-train is built" test -x "$Q"

# ---- usage -------------------------------------------------------------------
expect_rc "--help: exit 0" 0 "$Q" --help
grep_in "--help: usage on stdout" "$T/out" '^usage: quern-train <command>'
for c in init fit sample score check; do
	grep_in "--help: names $c" "$T/out" "^  $c "
done
expect_rc "--version: exit 0" 0 "$Q" --version
grep_in "--version: name and number" "$T/out" '^quern-train [0-9]+\.[0-9]+'
expect_rc "a bad flag: exit 2" 2 "$Q" sample --no-such-flag "$T"
grep_in "a bad flag: points to --help" "$T/err" "try 'quern-train --help'"
expect_rc "no command: exit 2" 2 "$Q"
grep_in "no command: says so" "$T/err" '^quern-train: .*command'
expect_rc "unknown command: exit 2" 2 "$Q" frobnicate "$T"
grep_in "unknown command: named" "$T/err" "frobnicate"
expect_rc "sample without a MODEL: exit 2" 2 "$Q" sample
expect_rc "--temperature -1: exit 2" 2 "$Q" sample "$T" --temperature -1
expect_rc "--steps x: exit 2" 2 "$Q" fit "$T" --data "$T" -o "$T/x" --steps x
expect_rc "init without -o: exit 2" 2 "$Q" init --vocab 64

# ---- a tokenizer and shards from a generated corpus ----------------------------
# Sentences of a small grammar; awk's generator is seeded, so the corpus is
# the same on every run.
awk -v seed=3 -v ndocs=300 'BEGIN {
	srand(seed)
	na = split("big small red old happy quiet", adj, " ")
	nn = split("cat dog bird fox child farmer", noun, " ")
	nv = split("sees chases likes finds helps follows", verb, " ")
	for (d = 0; d < ndocs; d++) {
		s = ""
		ns = 2 + int(rand() * 4)
		for (k = 0; k < ns; k++)
			s = s (k ? " " : "") "the " adj[1 + int(rand() * na)] " " noun[1 + int(rand() * nn)] " " \
				verb[1 + int(rand() * nv)] " the " noun[1 + int(rand() * nn)] "."
		printf "{\"id\":\"d%d\",\"text\":\"%s\"}\n", d, s
	}
}' >"$T/corpus.jsonl"
expect_rc "tokenizer: trained" 0 "$K" train --vocab-size 300 -o "$T/tok" "$T/corpus.jsonl"
expect_rc "shards: encoded with a val split" 0 "$K" encode -t "$T/tok" --val-fraction 0.1 \
	-o "$T/sh" "$T/corpus.jsonl"
vocab=$(jq -r .vocab_size "$T/sh/manifest.json" 2>/dev/null)
[ -n "$vocab" ] && [ "$vocab" != null ] || vocab=$("$K" inspect "$T/sh" | jq -r .vocab_size)

# ---- init ----------------------------------------------------------------------
M="$T/m0"
TINY="--layers 2 --heads 2 --width 32 --context 32"
# shellcheck disable=SC2086
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" $TINY --seed 1 -o "$M"
check "init: config.json" test -s "$M/config.json"
check "init: model.safetensors" test -s "$M/model.safetensors"
check "init: the tokenizer travels with the model" test -s "$M/tokenizer.json"
jq_ok "init: a GPT2Config" "$M/config.json" \
	'.model_type == "gpt2" and .n_layer == 2 and .n_head == 2 and .n_embd == 32 and .n_positions == 32'
jq_ok "init: vocab_size is the tokenizer's ($vocab)" "$M/config.json" ".vocab_size == $vocab"
jq_ok "init: <|endoftext|> is bos and eos" "$M/config.json" \
	".eos_token_id == .bos_token_id and .eos_token_id == $vocab - 1"
st_header "$M/model.safetensors" >"$T/header.json"
jq_ok "init: Hugging Face GPT-2 tensor names, and only those" "$T/header.json" '
	[keys[] | select(. != "__metadata__")] | sort == ([
		"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias",
		(range(2) as $i | "h.\($i)." + (
			"ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias",
			"attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
			"mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"))
	] | sort)'
jq_ok "init: shapes as GPT-2's Conv1D layout" "$T/header.json" "
	.\"wte.weight\".shape == [$vocab, 32] and .\"wpe.weight\".shape == [32, 32] and
	.\"h.0.attn.c_attn.weight\".shape == [32, 96] and .\"h.1.mlp.c_fc.weight\".shape == [32, 128] and
	.\"h.1.mlp.c_proj.weight\".shape == [128, 32] and
	all(to_entries[] | select(.key != \"__metadata__\"); .value.dtype == \"F32\")"
# shellcheck disable=SC2086
run_ok "init --seed 1 again: exit 0" /dev/null "$Q" init -t "$T/tok" $TINY --seed 1 -o "$T/m0b"
# shellcheck disable=SC2086
run_ok "init --seed 2: exit 0" /dev/null "$Q" init -t "$T/tok" $TINY --seed 2 -o "$T/m0c"
same "init: the same seed gives the same weights" "$M/model.safetensors" "$T/m0b/model.safetensors"
differ "init: another seed gives other weights" "$M/model.safetensors" "$T/m0c/model.safetensors"
expect_rc "init: a missing tokenizer: exit 1" 1 "$Q" init -t "$T/no-tok" $TINY -o "$T/m0d"
grep_in "init: a missing tokenizer: named" "$T/err" "no-tok"

# ---- fit ----------------------------------------------------------------------
F="$T/fit"
expect_rc "fit: exit 0" 0 "$Q" fit "$M" --data "$T/sh" -o "$F" --steps 6 --batch 4 --lr 3e-3 \
	--eval-every 2 --eval-batches 2 --save-every 2 --keep 2 -j 2
jqs_ok "fit: one metrics line a step" "$F/metrics.jsonl" '[.[].step] == [1, 2, 3, 4, 5, 6]'
jqs_ok "fit: every documented field, numbers" "$F/metrics.jsonl" '
	all(.[]; [.step, .loss, .lr, .grad_norm, .tokens, .tokens_per_s, .elapsed] |
		all(type == "number"))'
jqs_ok "fit: tokens = step x batch x context" "$F/metrics.jsonl" 'all(.[]; .tokens == .step * 4 * 32)'
jqs_ok "fit: val_loss on the eval steps only" "$F/metrics.jsonl" \
	'[.[] | select(has("val_loss")) | .step] == [2, 4, 6] and all(.[]; (.val_loss // 1) > 0)'
jqs_ok "fit: finite positive losses" "$F/metrics.jsonl" 'all(.[]; .loss > 0 and .loss < 100 and .grad_norm >= 0)'
ls "$F" | grep '^checkpoint-' >"$T/ckpts"
if [ "$(tr '\n' ' ' <"$T/ckpts")" = "checkpoint-4 checkpoint-6 " ]; then
	pass "fit: --keep 2 keeps the last two checkpoints"
else
	fail "fit: --keep 2 keeps the last two checkpoints" "$(tr '\n' ' ' <"$T/ckpts")"
fi
for f in config.json model.safetensors training_state.safetensors tokenizer.json; do
	check "fit: checkpoint-6 has $f" test -s "$F/checkpoint-6/$f"
done
check "fit: no temporary checkpoint left" sh -c "! ls -a '$F' | grep -q tmp"
for f in config.json model.safetensors tokenizer.json; do
	check "fit: the final model has $f" test -s "$F/$f"
done
same "fit: the final model is the last checkpoint's" "$F/model.safetensors" "$F/checkpoint-6/model.safetensors"
differ "fit: training changed the weights" "$M/model.safetensors" "$F/model.safetensors"

# Gradient accumulation: 2 micro-batches of 4 rows are the batch of 8 (the same
# windows in order), so step 1's loss and gradient norm agree to float rounding.
expect_rc "fit --batch 8: exit 0" 0 "$Q" fit "$M" --data "$T/sh" -o "$T/a1" --steps 1 --batch 8 \
	--no-shuffle --save-every 0 -j 1
expect_rc "fit --batch 4 --accum 2: exit 0" 0 "$Q" fit "$M" --data "$T/sh" -o "$T/a2" --steps 1 \
	--batch 4 --accum 2 --no-shuffle --save-every 0 -j 1
if jq -n --slurpfile a "$T/a1/metrics.jsonl" --slurpfile b "$T/a2/metrics.jsonl" -e '
	($a[0].loss - $b[0].loss | fabs) < 1e-5 and
	($a[0].grad_norm - $b[0].grad_norm | fabs) < 1e-4 * $a[0].grad_norm and
	$a[0].tokens == $b[0].tokens' >/dev/null 2>&1; then
	pass "fit: --accum 2 of batch 4 = batch 8 (loss, gradient norm, tokens)"
else
	fail "fit: --accum 2 of batch 4 = batch 8" "$(head -c 300 "$T/a1/metrics.jsonl") vs $(head -c 300 "$T/a2/metrics.jsonl")"
fi
# SFT across accumulation: prompt/completion examples whose completions differ
# in length; the loss is divided by the trained tokens of the whole step, so
# 2 micro-batches of 2 rows equal one batch of 4 rows even though the two
# micro-batches train on different numbers of tokens.
awk 'BEGIN { for (i = 0; i < 60; i++) { c = ""; for (j = 0; j <= i % 9; j++) c = c " the cat sat";
	printf "{\"id\":\"s%d\",\"prompt\":\"a dog ran %d\",\"completion\":\"%s\"}\n", i, i, c } }' >"$T/sft.jsonl"
run_ok "sft shards: exit 0" /dev/null "$K" encode -t "$T/tok" --template plain -o "$T/sft" "$T/sft.jsonl"
expect_rc "sft fit --batch 4: exit 0" 0 "$Q" fit "$M" --data "$T/sft" -o "$T/s1" --steps 1 --batch 4 \
	--no-shuffle --save-every 0 -j 1
expect_rc "sft fit --batch 2 --accum 2: exit 0" 0 "$Q" fit "$M" --data "$T/sft" -o "$T/s2" --steps 1 \
	--batch 2 --accum 2 --no-shuffle --save-every 0 -j 1
if jq -n --slurpfile a "$T/s1/metrics.jsonl" --slurpfile b "$T/s2/metrics.jsonl" -e '
	($a[0].loss - $b[0].loss | fabs) < 1e-5 and
	($a[0].grad_norm - $b[0].grad_norm | fabs) < 1e-4 * $a[0].grad_norm' >/dev/null 2>&1; then
	pass "fit: SFT loss normalised by the step's trained tokens across --accum"
else
	fail "fit: SFT loss normalised across --accum" "$(head -c 200 "$T/s1/metrics.jsonl") vs $(head -c 200 "$T/s2/metrics.jsonl")"
fi
# Dropout: seeded (the same seed, the same weights; another seed, others,
# with the data order fixed by --no-shuffle),
# on in training only (with --lr 0 the weights stay, and the validation
# loss is the no-dropout one exactly).
for r in d1 d2 d3; do
	seed=1
	[ "$r" = d3 ] && seed=2
	expect_rc "fit --dropout 0.2 ($r): exit 0" 0 "$Q" fit "$M" --data "$T/sh" -o "$T/$r" --steps 3 \
		--batch 4 --dropout 0.2 --seed "$seed" --no-shuffle --save-every 0 -j 2
done
same "fit --dropout: the same seed, the same weights" "$T/d1/model.safetensors" "$T/d2/model.safetensors"
differ "fit --dropout: another seed, other weights" "$T/d1/model.safetensors" "$T/d3/model.safetensors"
expect_rc "fit --dropout 0.5 --lr 0: exit 0" 0 "$Q" fit "$M" --data "$T/sh" -o "$T/d4" --steps 1 --batch 4 \
	--dropout 0.5 --lr 0 --min-lr 0 --eval-every 1 --save-every 0 -j 2
expect_rc "fit --lr 0 without dropout: exit 0" 0 "$Q" fit "$M" --data "$T/sh" -o "$T/d5" --steps 1 --batch 4 \
	--lr 0 --min-lr 0 --eval-every 1 --save-every 0 -j 2
if jq -n -e --slurpfile a "$T/d4/metrics.jsonl" --slurpfile b "$T/d5/metrics.jsonl" \
	'$a[0].val_loss == $b[0].val_loss and $a[0].loss != $b[0].loss' >/dev/null 2>&1; then
	pass "fit --dropout: training loss changes, validation runs without dropout"
else
	fail "fit --dropout: validation without dropout" "$(head -c 200 "$T/d4/metrics.jsonl") vs $(head -c 200 "$T/d5/metrics.jsonl")"
fi
# A second run into a directory with checkpoints needs --resume.
expect_rc "fit into a directory with checkpoints: exit 1" 1 "$Q" fit "$M" --data "$T/sh" -o "$F" --steps 2
grep_in "fit into a directory with checkpoints: says --resume" "$T/err" "resume"

expect_rc "fit: a missing --data: exit 1" 1 "$Q" fit "$M" --data "$T/no-shards" -o "$T/nf" --steps 1
grep_in "fit: a missing --data: named" "$T/err" "no-shards"
# Shards of another tokenizer: refused, not trained on as if they matched.
run_ok "a second tokenizer: exit 0" /dev/null "$K" train --vocab-size 280 -o "$T/tok2" "$T/corpus.jsonl"
run_ok "shards of the second tokenizer: exit 0" /dev/null "$K" encode -t "$T/tok2" -o "$T/sh2" "$T/corpus.jsonl"
expect_rc "fit: shards of another tokenizer: exit 1" 1 "$Q" fit "$M" --data "$T/sh2" -o "$T/nf2" --steps 1
grep_in "fit: shards of another tokenizer: says so" "$T/err" "tokenizer"
check "fit: shards of another tokenizer: no model written" test ! -e "$T/nf2/model.safetensors"
expect_rc "fit without --data: exit 2" 2 "$Q" fit "$M" -o "$T/nf" --steps 1

# ---- sample ---------------------------------------------------------------------
# The trained model: its completions are words of the corpus, plain ASCII.
P="$T/prompts.jsonl"
cat >"$P" <<'J'
{"id":"p1","prompt":"the big cat","meta":{"k":1}}
{"id":"p2","prompt":"the old farmer sees"}
{"id":"p3","prompt":"the"}
J
GREEDY="--max-tokens 12 --temperature 0"
# shellcheck disable=SC2086
expect_rc "sample: exit 0" 0 "$Q" sample "$F" $GREEDY "$P"
cp "$T/out" "$T/greedy1.jsonl"
lines "sample: one line a prompt" "$T/greedy1.jsonl" 3
jqs_ok "sample: the input fields kept, in order" "$T/greedy1.jsonl" '[.[].id] == ["p1","p2","p3"] and
	.[0].meta == {"k":1} and .[1].prompt == "the old farmer sees" and (.[0] | keys_unsorted[:3]) == ["id","prompt","meta"]'
jqs_ok "sample: completion, finish_reason, prompt_tokens, completion_tokens" "$T/greedy1.jsonl" '
	all(.[]; (.completion | type) == "string" and (.finish_reason | IN("length", "stop")) and
		.prompt_tokens >= 1 and (.completion_tokens | type) == "number")'
jqs_ok "sample: --max-tokens 12 respected" "$T/greedy1.jsonl" \
	'all(.[]; .completion_tokens <= 12 and (.finish_reason == "stop" or .completion_tokens == 12))'
jqs_ok "sample: greedy completions are not empty" "$T/greedy1.jsonl" 'all(.[]; .completion | length > 0)'
jq -c '{text: .prompt}' "$P" | "$K" ids -t "$T/tok" 2>/dev/null | jq -c '.ids | length' >"$T/np"
jq -c .prompt_tokens "$T/greedy1.jsonl" >"$T/gotnp"
same "sample: prompt_tokens counts the prompt's tokens" "$T/np" "$T/gotnp"
# shellcheck disable=SC2086
run_ok "sample --temperature 0 --seed 99: exit 0" "$T/greedy2.jsonl" "$Q" sample "$F" $GREEDY --seed 99 "$P"
same "sample: --temperature 0 is deterministic (any seed)" "$T/greedy1.jsonl" "$T/greedy2.jsonl"

run_ok "sample --seed 5: exit 0" "$T/s5a.jsonl" "$Q" sample "$F" --max-tokens 16 --seed 5 "$P"
run_ok "sample --seed 5 again: exit 0" "$T/s5b.jsonl" "$Q" sample "$F" --max-tokens 16 --seed 5 "$P"
run_ok "sample --seed 6: exit 0" "$T/s6.jsonl" "$Q" sample "$F" --max-tokens 16 --seed 6 "$P"
same "sample: the same --seed gives the same samples" "$T/s5a.jsonl" "$T/s5b.jsonl"
differ "sample: another --seed gives other samples" "$T/s5a.jsonl" "$T/s6.jsonl"
run_ok "sample --max-tokens 3: exit 0" "$T/m3.jsonl" "$Q" sample "$F" --max-tokens 3 --seed 5 "$P"
jqs_ok "sample: --max-tokens 3" "$T/m3.jsonl" 'length == 3 and all(.[]; .completion_tokens <= 3)'
run_ok "sample --max-tokens 0: exit 0" "$T/m0.jsonl" "$Q" sample "$F" --max-tokens 0 "$P"
jqs_ok "sample: --max-tokens 0, empty completions" "$T/m0.jsonl" \
	'length == 3 and all(.[]; .completion == "" and .completion_tokens == 0)'

printf '%s\n' '{"id":"e","prompt":""}' >"$T/empty.jsonl"
# shellcheck disable=SC2086
expect_rc "sample: an empty prompt starts from end-of-text" 0 "$Q" sample "$F" $GREEDY "$T/empty.jsonl"
jq_ok "sample: an empty prompt: one prompt token" "$T/out" '.prompt_tokens == 1 and .completion_tokens >= 1'

# --stop: a piece of the greedy completion; the completion ends before it.
full=$(sed -n 1p "$T/greedy1.jsonl" | jq -r .completion)
stop=$(printf '%s' "$full" | cut -c 4-6)
sed -n 1p "$P" >"$T/p1.jsonl"
# shellcheck disable=SC2086
run_ok "sample --stop: exit 0" "$T/stop.jsonl" "$Q" sample "$F" $GREEDY --stop "$stop" "$T/p1.jsonl"
want=${full%%"$stop"*}
got=$(jq -r .completion "$T/stop.jsonl")
if [ -n "$stop" ] && [ "$got" = "$want" ]; then
	pass "sample: --stop cuts the completion before the stop string"
else
	fail "sample: --stop cuts the completion before the stop string" \
		"stop '$stop' in '$full': got '$got', want '$want'"
fi
jq_ok "sample: --stop: finish_reason stop" "$T/stop.jsonl" '.finish_reason == "stop"'
# shellcheck disable=SC2086
run_ok "sample --stop never met: exit 0" "$T/nostop.jsonl" "$Q" sample "$F" $GREEDY --stop zzz --stop qqq \
	"$T/p1.jsonl"
sed -n 1p "$T/greedy1.jsonl" >"$T/greedy_p1.jsonl"
same "sample: a stop string never met changes nothing" "$T/nostop.jsonl" "$T/greedy_p1.jsonl"

# shellcheck disable=SC2086
expect_rc "sample: stdin via -" 0 "$Q" sample "$F" $GREEDY - <"$P"
same "sample: stdin gives what the file gives" "$T/out" "$T/greedy1.jsonl"
# shellcheck disable=SC2086
expect_rc "sample: no file is stdin" 0 "$Q" sample "$F" $GREEDY <"$P"
same "sample: no file gives what the file gives" "$T/out" "$T/greedy1.jsonl"
# shellcheck disable=SC2086
expect_rc "sample: -o FILE" 0 "$Q" sample "$F" $GREEDY -o "$T/o.jsonl" "$P"
same "sample: -o FILE holds the output" "$T/o.jsonl" "$T/greedy1.jsonl"

expect_rc "sample: /dev/full: exit 1" 1 sh -c "'$Q' sample '$F' --max-tokens 4 '$P' >/dev/full"
grep_in "sample: /dev/full: says so" "$T/err" '^quern-train: .*(No space|space left)'

expect_rc "sample: a missing model: exit 1" 1 "$Q" sample "$T/no-model" "$P"
grep_in "sample: a missing model: named" "$T/err" "^quern-train: .*no-model"
expect_rc "score: a missing model: exit 1" 1 "$Q" score "$T/no-model" "$P"
grep_in "score: a missing model: named" "$T/err" "^quern-train: .*no-model"
expect_rc "sample: a missing input file: exit 1" 1 "$Q" sample "$F" --max-tokens 2 "$T/none.jsonl" "$P"
grep_in "sample: a missing input file: named" "$T/err" "none\.jsonl"
lines "sample: a missing input file: the others still come out" "$T/out" 3

{
	sed -n 1p "$P"
	echo '{"id":"bad", "prompt": '
	echo '{"id":"noprompt"}'
	sed -n 2p "$P"
} >"$T/bad.jsonl"
expect_rc "sample: bad lines: exit 1" 1 "$Q" sample "$F" --max-tokens 4 "$T/bad.jsonl"
grep_in "sample: invalid JSON named with file:line" "$T/err" 'bad\.jsonl:2: '
grep_in "sample: a line without a prompt named with file:line" "$T/err" 'bad\.jsonl:3: .*prompt'
jqs_ok "sample: bad lines: the good lines still come out" "$T/out" '[.[].id] == ["p1", "p2"]'

# ---- score ----------------------------------------------------------------------
cat >"$T/texts.jsonl" <<'J'
{"id":"t1","text":"the big cat sees the dog."}
{"id":"t2","text":"the quiet fox chases the bird. the old child helps the cat.","meta":[1,2]}
{"id":"c1","context":"the big cat sees","continuation":" the dog."}
{"id":"c2","context":"","continuation":"the big cat sees the dog."}
J
expect_rc "score: exit 0" 0 "$Q" score "$F" "$T/texts.jsonl"
cp "$T/out" "$T/score.jsonl"
lines "score: one line an input" "$T/score.jsonl" 4
jqs_ok "score: the input fields kept" "$T/score.jsonl" '[.[].id] == ["t1","t2","c1","c2"] and .[1].meta == [1,2]'
jqs_ok "score: n_tokens, sum_logprob, logprobs, tokens, is_greedy" "$T/score.jsonl" '
	all(.[]; (.n_tokens | type) == "number" and (.sum_logprob | type) == "number" and
		(.logprobs | type) == "array" and (.tokens | type) == "array" and (.is_greedy | type) == "boolean")'
jqs_ok "score: n_tokens = the logprobs = the tokens" "$T/score.jsonl" \
	'all(.[]; .n_tokens == (.logprobs | length) and .n_tokens == (.tokens | length) and .n_tokens > 0)'
jqs_ok "score: sum_logprob is the sum of the logprobs" "$T/score.jsonl" \
	'all(.[]; ((.sum_logprob - (.logprobs | add)) | fabs) < 1e-9 * (1 + (.sum_logprob | fabs)))'
jqs_ok "score: every logprob is below 0" "$T/score.jsonl" 'all(.[]; all(.logprobs[]; . < 0))'
# A text scores every one of its tokens; a continuation only its own.
"$K" ids -t "$T/tok" "$T/texts.jsonl" 2>/dev/null | jq -c '.ids' | sed -n 1,2p >"$T/want_tok"
printf '%s\n' '{"text":" the dog."}' | "$K" ids -t "$T/tok" 2>/dev/null | jq -c .ids >>"$T/want_tok"
jq -c .tokens "$T/score.jsonl" | sed -n 1,3p >"$T/got_tok"
same "score: tokens are the text's; a continuation's only its own" "$T/want_tok" "$T/got_tok"
# An empty context scores the whole continuation as a text (after end-of-text).
jqs_ok "score: an empty context scores like a text" "$T/score.jsonl" \
	'.[3].tokens == .[0].tokens and ([.[3].logprobs, .[0].logprobs] | transpose | all(.[0] - .[1] | fabs < 1e-5))'
# Causal: a text's first tokens score the same when more text follows.
printf '%s\n' '{"text":"the big cat sees the dog. the quiet fox chases the bird."}' >"$T/longer.jsonl"
run_ok "score a longer text: exit 0" "$T/longer_score.jsonl" "$Q" score "$F" "$T/longer.jsonl"
jq -s -e '.[0].logprobs as $a | .[-1].logprobs as $b |
	($a | length) < ($b | length) and ([range($a | length)] | all(($a[.] - $b[.]) | fabs < 1e-4))' \
	"$T/score.jsonl" "$T/longer_score.jsonl" >/dev/null 2>&1 &&
	pass "score: later text does not change earlier logprobs" ||
	fail "score: later text does not change earlier logprobs" "$(head -c 300 "$T/longer_score.jsonl")"
# A text longer than the context (32) is scored whole, window by window.
awk 'BEGIN {
	for (i = 0; i < 12; i++)
		t = t (i ? " " : "") "the big cat sees the dog."
	printf "{\"text\":\"%s\"}\n", t
}' >"$T/long.jsonl"
n_long=$("$K" ids -t "$T/tok" "$T/long.jsonl" 2>/dev/null | jq '.ids | length')
run_ok "score a long text: exit 0" "$T/long_score.jsonl" "$Q" score "$F" "$T/long.jsonl"
jq_ok "score: a text past the context: all $n_long tokens" "$T/long_score.jsonl" \
	".n_tokens == $n_long and $n_long > 64 and all(.logprobs[]; . < 0)"

expect_rc "score: stdin via -" 0 "$Q" score "$F" - <"$T/texts.jsonl"
same "score: stdin gives what the file gives" "$T/out" "$T/score.jsonl"
expect_rc "score: /dev/full: exit 1" 1 sh -c "'$Q' score '$F' '$T/texts.jsonl' >/dev/full"
{
	sed -n 1p "$T/texts.jsonl"
	echo 'not json'
	echo '{"id":"neither"}'
	sed -n 3p "$T/texts.jsonl"
} >"$T/bad_score.jsonl"
expect_rc "score: bad lines: exit 1" 1 "$Q" score "$F" "$T/bad_score.jsonl"
grep_in "score: invalid JSON named with file:line" "$T/err" 'bad_score\.jsonl:2: '
grep_in "score: a line without text named with file:line" "$T/err" 'bad_score\.jsonl:3: '
jqs_ok "score: bad lines: the good lines still come out" "$T/out" '[.[].id] == ["t1", "c1"]'
