# train_freeze.sh - quern-train fit --freeze: frozen tensors come out bit for
# bit as they went in, every other tensor trains, frozen tensors get no AdamW
# moments in the checkpoint, and bad specs are usage errors.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"
PY=/usr/bin/python3

awk 'BEGIN { srand(7); split("red green blue cat dog bird runs sleeps sings the a on under", w, " ");
	for (i = 0; i < 300; i++) { s = ""; for (j = 0; j < 30; j++) s = s (j ? " " : "") w[1 + int(rand() * 13)];
		printf "{\"id\":\"%d\",\"text\":\"%s\"}\n", i, s } }' >"$T/d.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 280 -o "$T/tok" "$T/d.jsonl"
expect_rc "shards: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/sh" "$T/d.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 3 --heads 2 --width 32 --context 32 --seed 2 -o "$T/m"

expect_rc "fit --freeze embeddings,0 --freeze 1: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/f" \
	--steps 4 --batch 4 --context 32 --lr 1e-2 --freeze embeddings,0 --freeze 1 --save-every 4 -j 2

# NAME same|changed for every tensor of two safetensors files.
"$PY" - "$T/m/model.safetensors" "$T/f/model.safetensors" >"$T/cmp" <<'PYEOF'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    return b, json.loads(b[8:8 + n]), 8 + n
a, ha, oa = load(sys.argv[1]); b, hb, ob = load(sys.argv[2])
for k in sorted(ha):
    if k == '__metadata__': continue
    s, e = ha[k]['data_offsets']; s2, e2 = hb[k]['data_offsets']
    print(k, 'same' if a[oa + s:oa + e] == b[ob + s2:ob + e2] else 'changed')
PYEOF
frozen=$(grep -cE '^(wte|wpe|h\.0\.|h\.1\.).* same$' "$T/cmp")
moved=$(grep -cE '^(h\.2\.|ln_f\.).* changed$' "$T/cmp")
if [ "$frozen" = 26 ]; then pass "the 26 frozen tensors are bit-unchanged"; else fail "frozen tensors bit-unchanged" "$frozen of 26: $(grep -E '^(wte|wpe|h\.0\.|h\.1\.).* changed$' "$T/cmp" | head -3)"; fi
if [ "$moved" = 14 ]; then pass "the 14 trainable tensors all trained"; else fail "trainable tensors trained" "$moved of 14"; fi

hdr() { n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); head -c $((8 + n)) "$1" | tail -c "$n"; }
hdr "$T/f/checkpoint-4/training_state.safetensors" >"$T/state.json"
if jq -e '([keys[] | select(startswith("adam."))] | length) == 28 and
	([keys[] | select(test("^adam\\.[mv]\\.(wte|wpe|h\\.[01]\\.)"))] | length) == 0' "$T/state.json" >/dev/null; then
	pass "moments only for the 14 trainable tensors"
else
	fail "moments only for trainable tensors" "$(jq -c '[keys[] | select(startswith("adam."))] | length' "$T/state.json")"
fi
jq -e '.__metadata__.args | fromjson | .freeze == ["embeddings,0", "1"]' "$T/state.json" >/dev/null &&
	pass "the training state records the freeze" || fail "the training state records the freeze" "$(jq -c .__metadata__.args "$T/state.json")"

expect_rc "--freeze 3 on 3 blocks: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --steps 1 --freeze 3
grep_in "--freeze 3: names the spec" "$T/err" "'3'"
expect_rc "--freeze 2-1: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --steps 1 --freeze 2-1
expect_rc "--freeze head: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --steps 1 --freeze head
expect_rc "--freeze of everything: exit 2" 2 "$Q" fit "$T/m" --data "$T/sh" -o "$T/x" --steps 1 \
	--freeze embeddings,0-2,ln_f
grep_in "--freeze of everything: says so" "$T/err" "nothing to train"
