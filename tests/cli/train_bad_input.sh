# train_bad_input.sh - broken checkpoints and runs that go wrong for
# quern-train: damaged model.safetensors and config.json (copies of
# tests/fixtures/gpt2) refused with exit 1 and a message naming the file
# and tensor or field, never a crash; the "transformer." prefix and F16/BF16
# weights still load; fit refuses shards of another tokenizer and a context
# past the model's; a NaN loss stops fit, leaving the last good checkpoint;
# a checkpoint that cannot be written (file-size limit) leaves the earlier
# ones byte for byte and no temporary directory.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"
G="$FIX/gpt2"
# Debian's python3 with numpy (python3-numpy, a test dependency), not
# whatever python3 comes first on PATH.
PY=/usr/bin/python3

no_crash() {
	no_grep_in "$1: no crash report" "$T/err" "Sanitizer|runtime error|Segmentation|Assertion|core dumped"
}
same() { # NAME A B: the two files are byte-identical and not empty
	if [ -s "$2" ] && cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ or are empty"; fi
}

# st.py OP IN OUT [ARGS]: rewrites a safetensors file (header and data).
cat >"$T/st.py" <<'PY'
import json, struct, sys
import numpy as np

def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop('__metadata__', None)
    d = b[8 + n:]
    ts = sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0])
    return meta, [[k, v['dtype'], v['shape'], d[v['data_offsets'][0]:v['data_offsets'][1]]]
                  for k, v in ts]

def save(path, meta, ts, fix=None):
    h, off, parts = {}, 0, []
    if meta is not None:
        h['__metadata__'] = meta
    for k, dt, sh, raw in ts:
        h[k] = {'dtype': dt, 'shape': sh, 'data_offsets': [off, off + len(raw)]}
        off += len(raw)
        parts.append(raw)
    if fix:
        fix(h, off)
    hj = json.dumps(h, separators=(',', ':')).encode()
    hj += b' ' * (-len(hj) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(parts))

def f32(raw):
    return np.frombuffer(raw, '<f4').copy()

def to_bf16_bits(a):  # round to nearest even
    u = a.view('<u4').astype(np.uint64)
    return ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype('<u2')

op, src, dst = sys.argv[1:4]
args = sys.argv[4:]
meta, ts = load(src)
fix = None
if op == 'shape':
    for t in ts:
        if t[0] == args[0]:
            t[2] = [int(x) for x in args[1].split(',')]
elif op == 'drop':
    ts = [t for t in ts if t[0] != args[0]]
elif op == 'nan':
    for t in ts:
        if t[0] == args[0]:
            a = f32(t[3]); a[3] = np.nan; t[3] = a.tobytes()
elif op == 'prefix':
    for t in ts:
        t[0] = 'transformer.' + t[0]
elif op == 'past_end':
    def fix(h, total):
        h[args[0]]['data_offsets'] = [x + total for x in h[args[0]]['data_offsets']]
elif op == 'overlap':
    def fix(h, total):
        h[args[0]]['data_offsets'] = list(h[args[1]]['data_offsets'])
elif op in ('roundf16', 'roundbf16', 'f16', 'bf16'):
    for t in ts:
        if t[1] != 'F32':
            continue
        a = f32(t[3])
        if op in ('roundf16', 'f16'):
            h16 = a.astype('<f2')
            t[3] = (h16 if op == 'f16' else h16.astype('<f4')).tobytes()
        else:
            b16 = to_bf16_bits(a)
            t[3] = (b16 if op == 'bf16' else (b16.astype('<u4') << 16).view('<f4')).tobytes()
        if op in ('f16', 'bf16'):
            t[1] = op.upper()
elif op != 'copy':
    sys.exit('st.py: unknown op ' + op)
save(dst, meta, ts, fix)
PY

# model DIR: a copy of the fixture model in $T/DIR (for breaking).
model() {
	rm -rf "${T:?}/$1"
	mkdir -p "$T/$1" && cp "$G/config.json" "$G/model.safetensors" "$T/$1/"
}
# st NAME OP [ARGS]: model NAME with its model.safetensors rewritten by st.py.
st() {
	name=$1 op=$2
	shift 2
	model "$name"
	$PY "$T/st.py" "$op" "$G/model.safetensors" "$T/$name/model.safetensors" "$@" ||
		fail "st.py $op $*" "could not write the broken file"
}
# refused NAME DIR PATTERN: check on DIR exits 1 with a message that names
# DIR's file and matches PATTERN; no crash, no output file.
refused() {
	rm -f "$T/got.safetensors"
	expect_rc "$1: exit 1" 1 "$Q" check "$T/$2" --batch "$G/batch.bin" --shape 3,12 \
		-o "$T/got.safetensors"
	grep_in "$1: message" "$T/err" "^quern-train: .*$3"
	no_crash "$1"
	check "$1: no output" test ! -e "$T/got.safetensors"
}
# loads NAME DIR: check on DIR exits 0; its output in $T/DIR.out.
loads() {
	expect_rc "$1: exit 0" 0 "$Q" check "$T/$2" --batch "$G/batch.bin" --shape 3,12 \
		-o "$T/$2.out"
	no_crash "$1"
}

check "quern-train is built" test -x "$Q"
if $PY -c 'import numpy' 2>/dev/null; then pass "python3-numpy is installed"; else
	fail "python3-numpy is installed" "$PY cannot import numpy (apt-get install python3-numpy)"
fi
model good
loads "the fixture as is" good

# ---- model.safetensors ----
W=model.safetensors
size=$(wc -c <"$G/$W" | tr -d ' ')
for n in 1 7 8 100 2424 60000 $((size - 1)); do
	model "trunc$n"
	head -c "$n" "$G/$W" >"$T/trunc$n/$W"
	refused "model.safetensors cut to $n bytes" "trunc$n" "'$T/trunc$n/$W'"
done
model empty
: >"$T/empty/$W"
refused "empty model.safetensors" empty "'$T/empty/$W'.*empty"

# The header size (the first 8 bytes, little-endian) past the end, and 0.
model hbig
{ printf '\100\015\003\000\000\000\000\000'; tail -c +9 "$G/$W"; } >"$T/hbig/$W" # 200000
refused "header size past the end of the file" hbig "'$T/hbig/$W'.*header.*past the end"
model hhuge
{ printf '\000\000\000\000\000\000\000\200'; tail -c +9 "$G/$W"; } >"$T/hhuge/$W" # 2^63
refused "header size 2^63" hhuge "'$T/hhuge/$W'.*header"
model hzero
{ printf '\000\000\000\000\000\000\000\000'; tail -c +9 "$G/$W"; } >"$T/hzero/$W"
refused "header size 0" hzero "'$T/hzero/$W'.*header"
model hjunk
{ printf '\030\000\000\000\000\000\000\000{"wte.weight": not json}'; tail -c +2425 "$G/$W"; } >"$T/hjunk/$W"
refused "header not JSON" hjunk "'$T/hjunk/$W'.*header"
model harray
{ printf '\030\000\000\000\000\000\000\000[1, 2, 3]               '; tail -c +2425 "$G/$W"; } >"$T/harray/$W"
refused "header JSON an array" harray "'$T/harray/$W'.*header"
model hstring
{ printf '\030\000\000\000\000\000\000\000"wte.weight"            '; tail -c +2425 "$G/$W"; } >"$T/hstring/$W"
refused "header JSON a string" hstring "'$T/hstring/$W'.*header"

st shape shape wte.weight 32,96
refused "wte.weight of shape [32,96]" shape "'$T/shape/$W'.*'wte\.weight'.*\[32,96\].*\[96,32\]"
st shape3 shape h.0.mlp.c_fc.weight 32,8,16
refused "c_fc.weight with 3 dimensions" shape3 "'$T/shape3/$W'.*'h\.0\.mlp\.c_fc\.weight'.*shape"
st pastend past_end ln_f.bias
refused "data_offsets past the end" pastend "'$T/pastend/$W'.*'ln_f\.bias'.*past"
st overlap overlap h.0.ln_1.weight h.0.ln_1.bias
refused "overlapping data_offsets" overlap "'$T/overlap/$W'.*overlap"
st missing drop h.1.ln_2.bias
refused "h.1.ln_2.bias missing" missing "'$T/missing/$W'.*'h\.1\.ln_2\.bias'.*missing"
st nan nan h.0.mlp.c_fc.weight
refused "a NaN in h.0.mlp.c_fc.weight" nan "'$T/nan/$W'.*'h\.0\.mlp\.c_fc\.weight'.*NaN"
expect_rc "sample on a truncated model: exit 1" 1 sh -c "'$Q' sample '$T/trunc60000' </dev/null"
grep_in "sample on a truncated model: message names the file" "$T/err" "^quern-train: .*'$T/trunc60000/$W'"
no_crash "sample on a truncated model"
expect_rc "sample on a NaN model: exit 1" 1 sh -c "'$Q' sample '$T/nan' </dev/null"
grep_in "sample on a NaN model: message names the tensor" "$T/err" "^quern-train: .*'$T/nan/$W'.*'h\.0\.mlp\.c_fc\.weight'"

# Loads: "transformer." on every name gives the same numbers; F16 and BF16
# weights give what F32 weights of the same (rounded) values give.
st prefix prefix
loads "transformer. prefix" prefix
same "transformer. prefix: same logits, loss and gradients" "$T/prefix.out" "$T/good.out"
for dt in f16 bf16; do
	st "round$dt" "round$dt"
	st "$dt" "$dt"
	loads "$dt weights" "$dt"
	loads "$dt-rounded F32 weights" "round$dt"
	same "$dt weights: same output as F32 of the same values" "$T/$dt.out" "$T/round$dt.out"
done

# ---- config.json ----
C=config.json
cfg() { # NAME JQ: model NAME with config.json rewritten by the jq filter
	model "$1"
	jq "$2" "$G/$C" >"$T/$1/$C" || fail "jq $2" "could not write the config"
}
model cjunk
printf '{"n_layer": 2, "n_head": 4,\n "n_embd": oops}\n' >"$T/cjunk/$C"
refused "config.json not JSON" cjunk "'$T/cjunk/$C'"
expect_rc "sample with config.json not JSON: exit 1" 1 sh -c "'$Q' sample '$T/cjunk' </dev/null"
grep_in "sample with config.json not JSON: message" "$T/err" "^quern-train: .*'$T/cjunk/$C'"
model carray
echo '[2, 4, 32]' >"$T/carray/$C"
refused "config.json an array" carray "'$T/carray/$C'.*object"
model cempty
: >"$T/cempty/$C"
refused "config.json empty" cempty "'$T/cempty/$C'"
model cnone
rm "$T/cnone/$C"
refused "config.json missing" cnone "'$T/cnone/$C'"
cfg nolayer 'del(.n_layer)'
refused "config.json without n_layer" nolayer "'$T/nolayer/$C'.*n_layer.*missing"
cfg heads '.n_head = 5'
refused "n_head 5 with n_embd 32" heads "'$T/heads/$C'.*n_head 5 does not divide n_embd 32"
cfg heads0 '.n_head = 0'
refused "n_head 0" heads0 "'$T/heads0/$C'.*n_head"
cfg vocab '.vocab_size = 64 | .bos_token_id = 63 | .eos_token_id = 63'
refused "vocab_size 64 for 96-row weights" vocab "'$T/vocab/$W'.*'wte\.weight'.*\[96,32\].*\[64,32\]"
cfg vocabeos '.vocab_size = 90'
refused "vocab_size 90 with eos 95" vocabeos "'$T/vocabeos/$C'.*vocab_size"
cfg relu '.activation_function = "relu"'
refused "activation_function relu" relu "'$T/relu/$C'.*activation_function"
cfg string '.n_embd = "32"'
refused "n_embd a string" string "'$T/string/$C'.*n_embd.*not an integer"
cfg float '.n_layer = 2.5'
refused "n_layer 2.5" float "'$T/float/$C'.*n_layer"
cfg negative '.n_positions = -24'
refused "n_positions -24" negative "'$T/negative/$C'.*n_positions"
cfg huge '.n_embd = 4294967328'
refused "n_embd 2^32 + 32" huge "'$T/huge/$C'.*n_embd"
cfg epsstr '.layer_norm_epsilon = "1e-5"'
refused "layer_norm_epsilon a string" epsstr "'$T/epsstr/$C'.*layer_norm_epsilon"
cfg untied '.tie_word_embeddings = false'
refused "tie_word_embeddings false" untied "'$T/untied/$C'.*tie_word_embeddings"
cfg llama '.model_type = "llama"'
refused "model_type llama" llama "'$T/llama/$C'.*model_type"
cfg inner '.n_inner = 64'
refused "n_inner 64 for 128-wide MLP weights" inner "'$T/inner/$W'.*'h\.0\.mlp\.c_fc\.(bias|weight)'.*shape"

# ---- fit: a tokenizer, a tiny model, shards ----
"$QN_TESTS/gen_neardup" 60 3 >"$T/docs.jsonl"
"$K" train --vocab-size 300 -o "$T/tokA" "$T/docs.jsonl" 2>"$T/err" ||
	fail "tokenizer A" "$(head -c 300 "$T/err")"
"$K" train --vocab-size 280 -o "$T/tokB" "$T/docs.jsonl" 2>"$T/err" ||
	fail "tokenizer B" "$(head -c 300 "$T/err")"
"$K" encode -t "$T/tokA" -o "$T/shA" "$T/docs.jsonl" 2>"$T/err" ||
	fail "shards of A" "$(head -c 300 "$T/err")"
"$K" encode -t "$T/tokB" -o "$T/shB" "$T/docs.jsonl" 2>"$T/err" ||
	fail "shards of B" "$(head -c 300 "$T/err")"
expect_rc "init a tiny model" 0 "$Q" init -t "$T/tokA" --layers 2 --heads 2 --width 32 \
	--context 32 -o "$T/m"
FIT="--batch 4 --context 32 -j 2 --eval-batches 2"

# Shards of another tokenizer.
expect_rc "fit on shards of another tokenizer: exit 1" 1 "$Q" fit "$T/m" --data "$T/shB" \
	-o "$T/fB" --steps 2 $FIT
grep_in "fit on shards of another tokenizer: says so" "$T/err" \
	"^quern-train: .*'$T/shB'.*tokenizer"
no_crash "fit on shards of another tokenizer"
check "fit on shards of another tokenizer: no model written" test ! -e "$T/fB/model.safetensors"

# A context longer than the model's positions.
expect_rc "fit --context 64 on a 32-position model: exit 1" 1 "$Q" fit "$T/m" \
	--data "$T/shA" -o "$T/fC" --steps 2 --batch 4 --context 64 -j 2
grep_in "fit --context 64: message" "$T/err" "^quern-train: .*context 64.*32"
check "fit --context 64: no model written" test ! -e "$T/fC/model.safetensors"

# A NaN loss: --lr 1e9 (the largest accepted) without clipping blows the
# weights up in step 1; step 2's loss is not finite. checkpoint-1 stays.
expect_rc "fit --lr 1e9 --clip 0: exit 1" 1 "$Q" fit "$T/m" --data "$T/shA" -o "$T/fN" \
	--steps 10 --lr 1e9 --clip 0 --schedule constant --save-every 1 $FIT
grep_in "NaN loss: the message names step 2" "$T/err" "^quern-train: step 2: .*(NaN|not a number|not finite|infinite)"
grep_in "NaN loss: the message names the last good checkpoint" "$T/err" "'$T/fN/checkpoint-1'"
no_crash "NaN loss"
check "NaN loss: checkpoint-1 is there" test -s "$T/fN/checkpoint-1/model.safetensors"
check "NaN loss: no checkpoint-2" test ! -e "$T/fN/checkpoint-2"
check "NaN loss: no final model" test ! -e "$T/fN/model.safetensors"
echo '{"prompt":"A"}' >"$T/prompt.jsonl"
expect_rc "NaN loss: sample on checkpoint-1: exit 0" 0 "$Q" sample "$T/fN/checkpoint-1" \
	--max-tokens 4 "$T/prompt.jsonl"
grep_in "NaN loss: sample on checkpoint-1 writes a completion" "$T/out" '"completion":'

# The same later in a run: 4 good steps (checkpoints 2 and 4), then a
# resume at --lr 1e9: step 5 is taken (not saved), step 6 is NaN.
expect_rc "4 good steps: exit 0" 0 "$Q" fit "$T/m" --data "$T/shA" -o "$T/fN2" --steps 4 \
	--save-every 2 $FIT
sha256sum "$T/fN2/checkpoint-4"/* >"$T/sum4"
expect_rc "resume at --lr 1e9: exit 1" 1 "$Q" fit "$T/m" --data "$T/shA" -o "$T/fN2" \
	--resume --steps 10 --lr 1e9 --clip 0 --save-every 2 $FIT
grep_in "resume at --lr 1e9: the message names step 6" "$T/err" "^quern-train: step 6: "
grep_in "resume at --lr 1e9: the message names checkpoint-4" "$T/err" "'$T/fN2/checkpoint-4'"
check "resume at --lr 1e9: checkpoint-4 unchanged" sha256sum -c "$T/sum4"
check "resume at --lr 1e9: no checkpoint-5 or -6" test ! -e "$T/fN2/checkpoint-5" -a ! -e "$T/fN2/checkpoint-6"
expect_rc "resume at --lr 1e9: sample on checkpoint-4: exit 0" 0 "$Q" sample \
	"$T/fN2/checkpoint-4" --max-tokens 4 "$T/prompt.jsonl"

# A checkpoint that cannot be written: a file-size limit (SIGXFSZ ignored,
# so writes past it fail with EFBIG) below the size of model.safetensors.
expect_rc "fit to checkpoint-4: exit 0" 0 "$Q" fit "$T/m" --data "$T/shA" -o "$T/fD" \
	--steps 4 --save-every 2 $FIT
(cd "$T/fD" && sha256sum checkpoint-2/* checkpoint-4/* model.safetensors config.json) >"$T/sumD"
wsize=$(wc -c <"$T/fD/checkpoint-4/$W" | tr -d ' ')
blocks=$((wsize / 512 / 2)) # half of model.safetensors
expect_rc "checkpoint write past a file-size limit: exit 1" 1 sh -c \
	"ulimit -f $blocks; trap '' XFSZ; exec '$Q' fit '$T/m' --data '$T/shA' -o '$T/fD' --resume --steps 8 --save-every 2 $FIT"
grep_in "file-size limit: the message names checkpoint 6" "$T/err" "^quern-train: .*checkpoint.*6"
grep_in "file-size limit: the message says why" "$T/err" "(too large|File too large|EFBIG|space|cannot write)"
no_crash "file-size limit"
if (cd "$T/fD" && sha256sum -c --quiet "$T/sumD") >/dev/null 2>&1; then
	pass "file-size limit: checkpoints 2 and 4 and the model byte-identical"
else
	fail "file-size limit: checkpoints 2 and 4 and the model byte-identical" "$(cd "$T/fD" && sha256sum -c --quiet "$T/sumD" 2>&1 | head -c 300)"
fi
check "file-size limit: no checkpoint-6" test ! -e "$T/fD/checkpoint-6"
left=$(cd "$T/fD" && find . -name '.*' ! -name . | head -n 5)
if [ -z "$left" ]; then pass "file-size limit: no temporary file or directory left"; else
	fail "file-size limit: no temporary file or directory left" "$left"
fi
expect_rc "file-size limit: checkpoint-4 still loads" 0 "$Q" sample "$T/fD/checkpoint-4" \
	--max-tokens 4 "$T/prompt.jsonl"
"$Q" fit "$T/m" --data "$T/shA" -o "$T/fD" --resume --steps 8 --save-every 2 $FIT 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ]; then pass "file-size limit lifted: --resume finishes"; else
	fail "file-size limit lifted: --resume finishes" "exit $rc: $(tail -n 1 "$T/err" | head -c 300)"
fi
check "file-size limit lifted: checkpoint-8" test -s "$T/fD/checkpoint-8/$W"
