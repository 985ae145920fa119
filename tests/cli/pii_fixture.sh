#!/bin/sh
# pii_fixture: lib/pii's precision and recall on the labeled fixture of issue
# 7 (tests/tools/pii_fixture: >= 500 PII values over every PII type, >= 100
# secrets over every secret type, hard negatives), scored by
# tests/tools/pii_score: recall and precision >= 0.98 for every type, on two
# seeds.
. "$QN_TOP/tests/cli/lib.sh"

G="$QN_TESTS/pii_fixture"
S="$QN_TESTS/pii_score"

for seed in 1 7; do
	expect_rc "fixture seed $seed: written" 0 "$G" -s "$seed" "$T/docs$seed.jsonl" "$T/labels$seed.jsonl"
	"$S" "$T/docs$seed.jsonl" "$T/labels$seed.jsonl" >"$T/score$seed" 2>&1
	rc=$?
	# every per-type check, named by seed
	sed -n 's/^\(PASS\|FAIL\): /\1: seed '"$seed"': /p' "$T/score$seed"
	if [ "$rc" -eq 0 ]; then pass "seed $seed: pii_score exits 0"; else
		fail "seed $seed: pii_score exits 0" "exit $rc: $(grep -v '^PASS' "$T/score$seed" | head -c 2000)"
	fi
done

# The fixture is a pure function of its seed.
"$G" -s 1 "$T/again.jsonl" "$T/again-labels.jsonl" 2>/dev/null
check "same seed, same fixture" cmp -s "$T/docs1.jsonl" "$T/again.jsonl"
check "same seed, same labels" cmp -s "$T/labels1.jsonl" "$T/again-labels.jsonl"
if cmp -s "$T/docs1.jsonl" "$T/docs7.jsonl"; then fail "other seed, other fixture" "identical"; else pass "other seed, other fixture"; fi
expect_rc "pii_fixture: bad usage exits 2" 2 "$G" -s 1
expect_rc "pii_score: bad usage exits 2" 2 "$S" --nope
