# train_check.sh - `quern-train check` against the PyTorch reference in
# tests/fixtures/gpt2 (tests/ref/gpt2_ref.py): logits, loss and every
# gradient at the initial weights, then 10 AdamW steps (losses and final
# parameters), compared by st_compare within float32 tolerances; the same
# logits from batch.bin and batch.json; bad batches refused.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
G="$FIX/gpt2"

same() { # NAME A B: the two files are byte-identical and not empty
	if [ -s "$2" ] && cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ or are empty"; fi
}

# compare NAME [--steps] GOT EXPECTED: st_compare's lines, named NAME.
compare() {
	name=$1
	shift
	"$QN_TESTS/st_compare" "$@" >"$T/cmp" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$T/cmp"; then
		fail "$name" "st_compare exit $rc: $(head -c 300 "$T/cmp")"
	else
		sed -e "s/^PASS: /PASS: $name: /" -e "s/^FAIL: /FAIL: $name: /" "$T/cmp"
	fi
}

# st_bytes FILE NAME: the raw bytes of tensor NAME of a safetensors file.
st_bytes() {
	n=$(od -An -t u8 -N 8 "$1" 2>/dev/null | tr -d ' ')
	[ -n "$n" ] || return 1
	r=$(head -c $((8 + n)) "$1" | tail -c "$n" |
		jq -r --arg k "$2" '.[$k].data_offsets | "\(.[0]) \(.[1])"') || return 1
	begin=${r% *} end=${r#* }
	tail -c +$((8 + n + begin + 1)) "$1" | head -c $((end - begin))
}

check "quern-train is built" test -x "$Q"

# Forward and backward at the initial weights, tokens from batch.bin.
expect_rc "check batch.bin: exit 0" 0 "$Q" check "$G" --batch "$G/batch.bin" --shape 3,12 \
	-o "$T/got.safetensors"
compare "batch.bin" "$T/got.safetensors" "$G/expected.safetensors"

# The same from batch.json, then 10 AdamW steps.
expect_rc "check batch.json --steps 10: exit 0" 0 "$Q" check "$G" --batch "$G/batch.json" \
	-o "$T/got2.safetensors" --steps 10 --lr 1e-3 --beta1 0.9 --beta2 0.95 --eps 1e-8 \
	--weight-decay 0.1 --clip 1.0
compare "batch.json, 10 AdamW steps" --steps "$T/got2.safetensors" "$G/expected.safetensors"

st_bytes "$T/got.safetensors" logits >"$T/logits1" 2>/dev/null
st_bytes "$T/got2.safetensors" logits >"$T/logits2" 2>/dev/null
same "batch.bin and batch.json give identical logits" "$T/logits1" "$T/logits2"

# Bad batches: exit 1, a message, no output.
head -c 155 "$G/batch.bin" >"$T/short.bin"
expect_rc "batch.bin of the wrong size: exit 1" 1 "$Q" check "$G" --batch "$T/short.bin" \
	--shape 3,12 -o "$T/bad.safetensors"
grep_in "batch.bin of the wrong size: names the file" "$T/err" "short\.bin"
check "batch.bin of the wrong size: no output" test ! -e "$T/bad.safetensors"

cp "$G/batch.bin" "$T/big_id.bin"
printf '\140\000\000\000' | dd of="$T/big_id.bin" bs=1 seek=4 conv=notrunc 2>/dev/null
expect_rc "batch.bin with token 96 (vocab 96): exit 1" 1 "$Q" check "$G" --batch "$T/big_id.bin" \
	--shape 3,12 -o "$T/bad.safetensors"
grep_in "batch.bin with token 96: message" "$T/err" "^quern-train: "
check "batch.bin with token 96: no output" test ! -e "$T/bad.safetensors"

jq -c '.[1][5] = 96' "$G/batch.json" >"$T/big_id.json"
expect_rc "batch.json with token 96: exit 1" 1 "$Q" check "$G" --batch "$T/big_id.json" \
	-o "$T/bad.safetensors"
grep_in "batch.json with token 96: message" "$T/err" "^quern-train: "

head -c $((3 * 31 * 4)) /dev/zero >"$T/long.bin"
expect_rc "--shape 3,30 beyond n_positions 24: exit 1" 1 "$Q" check "$G" --batch "$T/long.bin" \
	--shape 3,30 -o "$T/bad.safetensors"
grep_in "--shape 3,30 beyond n_positions: message" "$T/err" "^quern-train: "
check "--shape 3,30 beyond n_positions: no output" test ! -e "$T/bad.safetensors"
