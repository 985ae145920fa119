# audit_memorization.sh - acceptance 2 of the model-audit issue: a tiny
# model trained on 20 random word sequences, each repeated 50 times, with
# canaries inserted 100 times and 0 times:
#   - quern-audit memorization finds >= 90% of the trained sequences
#     discoverably memorized (16-token prefix, 16-token greedy suffix) and
#     <= 5% of 20 held-out sequences of the same distribution;
#   - quern-audit canary exposure ranks the 100x canaries >= 5 bits above
#     the 0x ones (4-digit secrets: all 10,000 candidates, 13.3 bits at most).
# Then memorization's bad input: a tokenizer mismatch, too few long
# documents, a context too short, usage errors, /dev/full.
# About 10 s on 2 cores (600 steps of a 2-layer, 64-wide model).
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

num_ok() {
	if awk "BEGIN { exit !($2) }"; then pass "$1"; else fail "$1" "not ($2)"; fi
}

# gen SEED N REPS PREFIX: N sequences of 36 random words, each REPS times.
gen() {
	awk -v seed="$1" -v n="$2" -v reps="$3" -v pre="$4" 'BEGIN {
		srand(seed)
		nw = split("alpha bravo charlie delta echo foxtrot golf hotel india juliet " \
			"kilo lima mike november oscar papa quebec romeo sierra tango uniform " \
			"victor whiskey xray yankee zulu red green blue black white brown", W, " ")
		for (i = 0; i < n; i++) {
			s = ""
			for (j = 0; j < 36; j++)
				s = s (j ? " " : "") W[1 + int(rand() * nw)]
			for (r = 0; r < reps; r++)
				printf "{\"id\":\"%s%d-%d\",\"text\":\"%s\"}\n", pre, i, r, s
		}
	}'
}
gen 1 20 50 m >"$T/mem.jsonl"
gen 2 20 1 h >"$T/held.jsonl"

expect_rc "canary insert 2 canaries x 100, 2 x 0" 0 "$A" canary insert \
	--format 'my pin is {d4}' --reps 0,100 --per-rep 2 --seed 3 -o "$T/train.jsonl" "$T/mem.jsonl"
lines "training documents: 1000 + 200 canary copies" "$T/train.jsonl" 1200

"$K" train --vocab-size 400 -o "$T/tok" "$T/train.jsonl" "$T/held.jsonl" 2>"$T/err" ||
	fail "tokenizer" "$(head -c 300 "$T/err")"
expect_rc "encode train" 0 "$K" encode -t "$T/tok" -o "$T/sh" "$T/train.jsonl"
expect_rc "encode held-out" 0 "$K" encode -t "$T/tok" -o "$T/hsh" "$T/held.jsonl"
expect_rc "init" 0 "$Q" init -t "$T/tok" --layers 2 --heads 4 --width 64 --context 64 --seed 1 \
	-o "$T/m0"
expect_rc "fit 600 steps" 0 "$Q" fit "$T/m0" --data "$T/sh" -o "$T/m" --steps 600 --batch 8 \
	--lr 5e-3 --warmup 50 --weight-decay 0 --save-every 0 -j 2

# ---- discoverable memorization -------------------------------------------------
expect_rc "memorization" 0 "$A" memorization "$T/m" --data "$T/sh" --heldout "$T/hsh" \
	--prefix 16 --suffix 16 --samples 200 --seed 5 -j 2 -o "$T/mem.json" --per-doc "$T/per.jsonl"
tr=$(jq -r '.train.exact_match' "$T/mem.json" 2>/dev/null)
ho=$(jq -r '.heldout.exact_match' "$T/mem.json" 2>/dev/null)
echo "memorization: train exact $tr, token $(jq -r .train.token_match "$T/mem.json"), lcp" \
	"$(jq -r .train.lcp_mean "$T/mem.json"); held-out exact $ho, token" \
	"$(jq -r .heldout.token_match "$T/mem.json")"
num_ok "trained sequences: exact match ${tr:-none} >= 0.9" "${tr:-0} >= 0.9"
num_ok "held-out sequences: exact match ${ho:-none} <= 0.05" "${ho:-1} <= 0.05"
n=$(jq -r '.train.documents' "$T/mem.json" 2>/dev/null)
num_ok "200 training documents sampled (${n:-none})" "${n:-0} == 200"
n=$(jq -r '.heldout.documents' "$T/mem.json" 2>/dev/null)
num_ok "every held-out document (${n:-none} of 20)" "${n:-0} == 20"
lines "per-doc: one line a document" "$T/per.jsonl" 220
d=$(jq -r '.difference.exact_match' "$T/mem.json" 2>/dev/null)
num_ok "difference is train - held-out (${d:-none})" "${d:-0} == ${tr:-1} - ${ho:-1}"
bad=$(jq -r 'select(.exact != (.lcp == 16) or (.exact and .target != .generated)) | .index' \
	"$T/per.jsonl" | wc -l)
num_ok "per-doc: exact iff lcp = 16 iff target = generated" "$bad == 0"
grep_in "a manifest beside the results" "$T/mem.json.manifest.json" '"memorization"'
grep_in "the manifest names the shards" "$T/mem.json.manifest.json" 'sh/manifest.json'

# The same documents and results for every thread count and run.
"$A" memorization "$T/m" --data "$T/sh" --heldout "$T/hsh" --prefix 16 --suffix 16 \
	--samples 200 --seed 5 -j 1 --per-doc "$T/per1.jsonl" >"$T/mem1.json" 2>/dev/null
check "-j 1 and -j 2 agree" cmp "$T/per.jsonl" "$T/per1.jsonl"
check "results to stdout" jq -e '.train.documents == 200' "$T/mem1.json"

# The val split as the held-out side.
"$K" encode -t "$T/tok" --val-fraction 0.5 -o "$T/vsh" "$T/held.jsonl" 2>/dev/null
expect_rc "held-out from the val split" 0 "$A" memorization "$T/m" --data "$T/vsh" \
	--prefix 16 --suffix 16 --samples 5 -o "$T/v.json"
grep_in "the val split's documents" "$T/v.json" '"heldout"'
expect_rc "pythia score: 32/32 defaults need 65 positions (the model has 64)" 1 \
	"$A" memorization "$T/m" --data "$T/sh" --score pythia

# ---- canary exposure ------------------------------------------------------------
expect_rc "canary exposure" 0 "$A" canary exposure "$T/m" --record "$T/train.canaries.jsonl" \
	-j 2 -o "$T/exp.json"
e0=$(jq -r '.by_reps[] | select(.reps == 0) | .exposure_mean' "$T/exp.json" 2>/dev/null)
e100=$(jq -r '.by_reps[] | select(.reps == 100) | .exposure_mean' "$T/exp.json" 2>/dev/null)
s0=$(jq -r '.by_reps[] | select(.reps == 0) | .exposure_skewnorm_mean' "$T/exp.json" 2>/dev/null)
s100=$(jq -r '.by_reps[] | select(.reps == 100) | .exposure_skewnorm_mean' "$T/exp.json" 2>/dev/null)
echo "exposure: 0x $e0 bits (skew-normal $s0), 100x $e100 bits (skew-normal $s100)"
num_ok "exposure 100x (${e100:-none}) >= 0x (${e0:-none}) + 5 bits" "${e100:-0} >= ${e0:-99} + 5"
num_ok "skew-normal exposure 100x (${s100:-none}) >= 0x (${s0:-none}) + 5 bits" \
	"${s100:-0} >= ${s0:-99} + 5"
check "every 4-digit secret is a candidate" jq -e \
	'[.canaries[] | .candidates == 10000 and .enumerated] | all' "$T/exp.json"
check "exposure = log2(M) - log2(rank)" jq -e \
	'[.canaries[] | ((.exposure - ((10000 | log2) - (.rank | log2))) | fabs) < 1e-9] | all' \
	"$T/exp.json"
no_grep_in "results never hold the secrets" "$T/exp.json" '"secret"'
"$A" canary exposure "$T/m" --record "$T/train.canaries.jsonl" -j 1 >"$T/exp1.json" 2>/dev/null
check "exposure: -j 1 and -j 2 agree" sh -c "jq -c .canaries '$T/exp.json' >'$T/a'; \
	jq -c .canaries '$T/exp1.json' >'$T/b'; cmp '$T/a' '$T/b'"
expect_rc "sampled candidates (M = 500 of 10,000)" 0 "$A" canary exposure "$T/m" \
	--record "$T/train.canaries.jsonl" --candidates 500 -o "$T/exp500.json"
check "500 candidates, not enumerated" jq -e \
	'[.canaries[] | .candidates == 500 and (.enumerated | not)] | all' "$T/exp500.json"

# ---- bad input -------------------------------------------------------------------
# Shards encoded with another tokenizer.
"$K" train --vocab-size 300 -o "$T/tok2" "$T/held.jsonl" 2>/dev/null
"$K" encode -t "$T/tok2" -o "$T/sh2" "$T/held.jsonl" 2>/dev/null
expect_rc "tokenizer mismatch" 1 "$A" memorization "$T/m" --data "$T/sh2"
grep_in "tokenizer mismatch: says so" "$T/err" "encoded with tokenizer .* the model .* uses"
expect_rc "held-out tokenizer mismatch" 1 "$A" memorization "$T/m" --data "$T/sh" --heldout "$T/sh2"
expect_rc "no document long enough" 1 "$A" memorization "$T/m" --data "$T/sh" --heldout "$T/hsh" \
	--prefix 30 --suffix 30
grep_in "no document long enough: says so" "$T/err" "no document of the train split has 60 tokens"
expect_rc "prefix + suffix past the context" 1 "$A" memorization "$T/m" --data "$T/sh" \
	--prefix 40 --suffix 40
grep_in "past the context: says so" "$T/err" "do not fit the model's 64 positions"
expect_rc "no held-out documents (no val split)" 1 "$A" memorization "$T/m" --data "$T/sh" \
	--prefix 16 --suffix 16
grep_in "no held-out: says so" "$T/err" "no held-out document"
expect_rc "missing shards" 1 "$A" memorization "$T/m" --data "$T/nope"
expect_rc "missing model" 1 "$A" memorization "$T/nope" --data "$T/sh"
expect_rc "--help" 0 "$A" memorization --help
grep_in "--help: usage" "$T/out" "^usage: quern-audit memorization MODEL --data SHARDS"
expect_rc "bad flag" 2 "$A" memorization "$T/m" --data "$T/sh" --bogus
expect_rc "no --data" 2 "$A" memorization "$T/m"
expect_rc "no model" 2 "$A" memorization --data "$T/sh"
expect_rc "--prefix 0" 2 "$A" memorization "$T/m" --data "$T/sh" --prefix 0
expect_rc "--score other" 2 "$A" memorization "$T/m" --data "$T/sh" --score nope
expect_rc "/dev/full" 1 "$A" memorization "$T/m" --data "$T/sh" --heldout "$T/hsh" \
	--prefix 16 --suffix 16 --samples 5 -o /dev/full
expect_rc "stdout to /dev/full" 1 sh -c "'$A' memorization '$T/m' --data '$T/sh' \
	--heldout '$T/hsh' --prefix 16 --suffix 16 --samples 5 >/dev/full"
expect_rc "--per-doc to /dev/full" 1 "$A" memorization "$T/m" --data "$T/sh" --heldout "$T/hsh" \
	--prefix 16 --suffix 16 --samples 5 --per-doc /dev/full -o "$T/x.json"
