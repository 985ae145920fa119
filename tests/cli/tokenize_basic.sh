# tokenize_basic.sh - quern-tokenize end to end with a tokenizer it trains
# itself (no npm needed): train, encode documents and examples into shards,
# inspect, verify (and catch a flipped byte), export, ids/decode round trip,
# bad lines, and the same shards for every -j.
. "$QN_TOP/tests/cli/lib.sh"
K="$QN_BIN/quern-tokenize"

same() { # NAME A B: the two files are byte-identical
	if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi
}
jq_ok() {
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 300 "$2")"; fi
}

"$QN_TESTS/gen_neardup" 400 3 >"$T/corpus.jsonl"
# Some other scripts, so the byte-level fallback is exercised.
printf '%s\n' '{"id":"ru","text":"Привет, мир! Это проверка токенизатора."}' \
	'{"id":"ja","text":"東京は日本の首都です。テスト🎉"}' \
	'{"id":"code","text":"int main(void) {\n\treturn 0;\n}\n"}' >>"$T/corpus.jsonl"

expect_rc "train: exit 0" 0 "$K" train --vocab-size 1200 --special '<|endoftext|>' \
	--special '<|im_start|>' --special '<|im_end|>' -o "$T/tok" "$T/corpus.jsonl"
check "train: tokenizer.tiktoken" test -s "$T/tok/tokenizer.tiktoken"
check "train: tokenizer.json" test -s "$T/tok/tokenizer.json"
jq_ok "train: tokenizer.json has the vocabulary and merges" "$T/tok/tokenizer.json" \
	'.model.type == "BPE" and (.model.merges | length) > 500'
lines "train: 1197 ranked tokens" "$T/tok/tokenizer.tiktoken" 1197
"$K" train -j 2 --vocab-size 1200 --special '<|endoftext|>' --special '<|im_start|>' \
	--special '<|im_end|>' -o "$T/tok2" "$T/corpus.jsonl" 2>/dev/null
same "train: -j 2 gives the same tokenizer" "$T/tok/tokenizer.json" "$T/tok2/tokenizer.json"

# ids and decode: the plain filters, and decode(encode(x)) == x.
expect_rc "ids: exit 0" 0 "$K" ids -t "$T/tok" -o "$T/ids.jsonl" "$T/corpus.jsonl"
lines "ids: one line a document" "$T/ids.jsonl" 403
expect_rc "decode: exit 0" 0 "$K" decode -t "$T/tok" -o "$T/back.jsonl" "$T/ids.jsonl"
jq -c '{id, text}' "$T/corpus.jsonl" >"$T/want.jsonl"
jq -c '{id, text}' "$T/back.jsonl" >"$T/got.jsonl"
same "decode(encode(x)) == x for every document" "$T/want.jsonl" "$T/got.jsonl"

# Examples: every shape the issue names.
cat >"$T/ex.jsonl" <<'J'
{"id":"d1","text":"A plain document for language modelling."}
{"id":"p1","prompt":"What is two plus two?","completion":"Four.","task":"math"}
{"id":"m1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}],"task":"chat"}
{"id":"c1","prompt":"Pick one","chosen":"The good answer","rejected":"The bad answer"}
{"id":"l1","text":"great product","label":"positive"}
{"id":"l2","text":"awful product","label":"negative"}
{"id":"t1","ids":[72,101,108,108,111]}
{"id":"bad1","nothing":1}
not json
{"id":"bad2","prompt":"no completion"}
J
expect_rc "encode: bad lines make exit 1" 1 "$K" encode -t "$T/tok" -o "$T/sh" "$T/ex.jsonl"
grep_in "encode: bad line named with file and line" "$T/err" 'ex.jsonl:8: no string "text"'
grep_in "encode: invalid JSON named" "$T/err" 'ex.jsonl:9: invalid JSON'
grep_in "encode: prompt without completion named" "$T/err" 'ex.jsonl:10: .*completion'
expect_rc "inspect: exit 0" 0 "$K" inspect "$T/sh"
cp "$T/out" "$T/inspect.json"
jq_ok "inspect: 8 documents (a pair counts two)" "$T/inspect.json" '.splits.train.documents == 8'
jq_ok "inspect: tasks default, math, chat" "$T/inspect.json" '.tasks == ["default","math","chat"]'
jq_ok "inspect: labels" "$T/inspect.json" '.labels == ["positive","negative"]'
"$K" ids -t "$T/tok" "$T/ex.jsonl" 2>/dev/null >"$T/exids.jsonl"
jq -s -e '.[1].mask | length == 1' "$T/exids.jsonl" >/dev/null &&
	pass "prompt/completion: one trained span" || fail "prompt/completion: one trained span" "$(sed -n 2p "$T/exids.jsonl")"
jq -s -e '.[2].mask | length == 1' "$T/exids.jsonl" >/dev/null &&
	pass "messages: only the assistant turn is trained" || fail "messages: only the assistant turn is trained" "$(sed -n 3p "$T/exids.jsonl")"
jq -s -e '[.[3].role, .[4].role] == ["chosen","rejected"]' "$T/exids.jsonl" >/dev/null &&
	pass "preference pair: chosen then rejected" || fail "preference pair: chosen then rejected" "$(sed -n 4,5p "$T/exids.jsonl")"
# The ChatML markers are special tokens of this tokenizer: one id each.
imstart=$(jq -r '.added_tokens[] | select(.content == "<|im_start|>") | .id' "$T/tok/tokenizer.json")
jq -s -e --argjson s "$imstart" '.[1].ids[0] == $s' "$T/exids.jsonl" >/dev/null &&
	pass "chatml: <|im_start|> is the special token" || fail "chatml: <|im_start|> is the special token" "want $imstart"

# verify, and a flipped byte caught by verify and by readers.
expect_rc "verify: exit 0" 0 "$K" verify "$T/sh"
f=$(ls "$T/sh"/train-*.qsh | head -1)
size=$(wc -c <"$f")
cp -r "$T/sh" "$T/bad"
g="$T/bad/$(basename "$f")"
off=$((size / 2))
printf '\377' | dd of="$g" bs=1 seek=$off conv=notrunc 2>/dev/null
cmp -s "$f" "$g" || true
expect_rc "verify: a flipped byte fails" 1 "$K" verify "$T/bad"
grep_in "verify: names the file" "$T/err" "$(basename "$f")"
expect_rc "export: a flipped byte fails" 1 "$K" export --format llmc "$T/bad" "$T/bad.bin"

# export: llm.c's header (magic 20240520, version 1, token count).
expect_rc "export llmc: exit 0" 0 "$K" export --format llmc "$T/sh" "$T/train.bin"
magic=$(od -An -t d4 -N 12 "$T/train.bin" | tr -s ' ' | sed 's/^ //')
case "$magic" in
"20240520 1 "*) pass "export llmc: magic and version" ;;
*) fail "export llmc: magic and version" "$magic" ;;
esac
expect_rc "export nanogpt: exit 0" 0 "$K" export --format nanogpt "$T/sh" "$T/nano.bin"

# -j: the same shards, byte for byte.
"$K" encode -t "$T/tok" -o "$T/j1" "$T/corpus.jsonl" 2>/dev/null
"$K" encode -j 2 -t "$T/tok" -o "$T/j2" "$T/corpus.jsonl" 2>/dev/null
same "encode: -j 1 and -j 2 give the same shard" "$T/j1/train-00000.qsh" "$T/j2/train-00000.qsh"
"$K" encode --val-fraction 0.25 -t "$T/tok" -o "$T/v" "$T/corpus.jsonl" 2>/dev/null
"$K" inspect "$T/v" >"$T/v.json"
jq_ok "val split: a share near 0.25 of the documents" "$T/v.json" \
	'.splits.val.documents > 60 and .splits.val.documents < 150'

# Usage errors.
expect_rc "no command: exit 2" 2 "$K"
expect_rc "unknown command: exit 2" 2 "$K" frobnicate
expect_rc "encode without a tokenizer: exit 2" 2 "$K" encode -o "$T/x" "$T/ex.jsonl"
expect_rc "a missing tokenizer file: exit 1" 1 "$K" ids -t "$T/none.json" "$T/ex.jsonl"
