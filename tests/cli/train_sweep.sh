# train_sweep.sh - quern-train sweep: a search over the learning rate beats
# fit's defaults on a short run; the same seed gives a byte-identical
# leaderboard (also with another --parallel at the same threads a trial), a
# different seed another one; successive halving runs fewer steps than
# trials x steps and its leaderboard shows the rungs; DIR/best loads, and
# best.json's command rebuilds its weights from scratch; --resume after
# SIGTERM ends as an uninterrupted sweep; failing trials are
# recorded and do not end the sweep (all failing: exit 1); every class of
# bad space file exits 2 naming file:line:column; usage errors exit 2.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

S=36
FIT="--steps $S --batch 8 --eval-batches 4"

check "quern-train is built" test -x "$Q"
"$QN_TESTS/gen_neardup" 100 3 >"$T/docs.jsonl"
"$K" train --vocab-size 300 -o "$T/tok" "$T/docs.jsonl" 2>"$T/err" ||
	fail "tokenizer" "$(head -c 300 "$T/err")"
"$K" encode -t "$T/tok" --val-fraction 0.2 -o "$T/sh" "$T/docs.jsonl" 2>"$T/err" ||
	fail "shards" "$(head -c 300 "$T/err")"
"$K" encode -t "$T/tok" -o "$T/noval" "$T/docs.jsonl" 2>"$T/err" ||
	fail "shards without validation" "$(head -c 300 "$T/err")"
expect_rc "init a 2-layer model" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 64 \
	--context 32 --seed 7 -o "$T/m"

cat >"$T/space.yaml" <<'EOF'
seed: 1
trials: 9
parallel: 2
scheduler: asha
eta: 3
min_steps: 4
params:
  lr: {log_uniform: [1e-3, 3e-2]}
  warmup: {int: [0, 5]}
  weight-decay: {uniform: [0, 0.2]}
EOF

# (a) The sweep beats fit's defaults (lr 3e-4 is too small for 36 steps).
expect_rc "default fit: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/def" $FIT -j 1
t0=$(date +%s.%N)
expect_rc "sweep: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" --space "$T/space.yaml" \
	-o "$T/s1" $FIT -j 2
t1=$(date +%s.%N)
echo "note: the 9-trial ASHA sweep took $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"
def=$(tail -n 1 "$T/def/metrics.jsonl" | jq .val_loss)
best=$(head -n 1 "$T/s1/leaderboard.jsonl" | jq .val_loss)
if jq -n -e "$best < $def" >/dev/null 2>&1; then
	pass "the best trial ($best) beats fit's defaults ($def)"
else
	fail "the best trial beats fit's defaults" "best $best, default $def"
fi
lines "leaderboard: a line a trial" "$T/s1/leaderboard.jsonl" 9
if jq -s -e '[.[].rank] == [range(1; 10)] and
	([.[] | select(.status != "failed") | .val_loss] as $v | $v == ($v | sort))' \
	"$T/s1/leaderboard.jsonl" >/dev/null 2>&1; then
	pass "leaderboard: ranks 1..9, the completed trial first"
else
	fail "leaderboard: ranks 1..9" "$(head -c 300 "$T/s1/leaderboard.jsonl")"
fi
if head -n 1 "$T/s1/leaderboard.jsonl" | jq -e '.status == "completed" and .steps == '$S' and
	(.params.lr | type) == "number" and (.params.warmup | type) == "number"' >/dev/null 2>&1; then
	pass "leaderboard: the first is completed, with its params as numbers"
else
	fail "leaderboard: the first is completed" "$(head -n 1 "$T/s1/leaderboard.jsonl")"
fi

# (b) Reproducible for a seed; another seed draws other trials.
expect_rc "same seed again: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/s2" $FIT -j 2
if cmp -s "$T/s1/leaderboard.jsonl" "$T/s2/leaderboard.jsonl"; then
	pass "same seed: byte-identical leaderboard"
else
	fail "same seed: byte-identical leaderboard" "$(diff "$T/s1/leaderboard.jsonl" \
		"$T/s2/leaderboard.jsonl" | head -n 4 | tr '\n' ' ')"
fi
expect_rc "one trial at a time: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/s1p" $FIT -j 1 --parallel 1
if cmp -s "$T/s1/leaderboard.jsonl" "$T/s1p/leaderboard.jsonl"; then
	pass "--parallel 1 -j 1: the leaderboard of --parallel 2 -j 2"
else
	fail "--parallel 1 -j 1: the leaderboard of --parallel 2 -j 2" \
		"$(diff "$T/s1/leaderboard.jsonl" "$T/s1p/leaderboard.jsonl" | head -n 4 | tr '\n' ' ')"
fi
expect_rc "another seed: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/s3" --seed 2 $FIT -j 2
if cmp -s "$T/s1/leaderboard.jsonl" "$T/s3/leaderboard.jsonl"; then
	fail "another seed: another leaderboard" "identical"
else
	pass "another seed: another leaderboard"
fi

# (c) Successive halving: rungs 4, 12, 36; 9 -> 3 -> 1 trials.
total=$(jq -s '[.[].steps] | add' "$T/s1/leaderboard.jsonl")
if [ "$total" -eq $((4 * 9 + 8 * 3 + 24)) ]; then
	pass "asha: $total steps in all, not 9 x $S = $((9 * S))"
else
	fail "asha: fewer steps than trials x steps" "$total steps"
fi
got=$(jq -s -c '[group_by(.rung)[] | {rung: .[0].rung, n: length}]' "$T/s1/leaderboard.jsonl")
if [ "$got" = '[{"rung":0,"n":6},{"rung":1,"n":2},{"rung":2,"n":1}]' ]; then
	pass "asha: 6 stopped at rung 0, 2 at rung 1, 1 completed"
else
	fail "asha: the rungs" "$got"
fi
if jq -s -e '[.[] | select(.rung == 1) | .rungs | map(.steps)] | all(. == [4, 12])' \
	"$T/s1/leaderboard.jsonl" >/dev/null 2>&1; then
	pass "asha: a trial's rungs list its metric at each budget"
else
	fail "asha: a trial's rungs" "$(sed -n 2p "$T/s1/leaderboard.jsonl")"
fi
if jq -e ".counters.steps == $total and .sweep.rungs == [4, 12, 36]" \
	"$T/s1/sweep.manifest.json" >/dev/null 2>&1; then
	pass "manifest: the rungs and the steps"
else
	fail "manifest: the rungs and the steps" "$(head -c 400 "$T/s1/sweep.manifest.json")"
fi
lines "trials.jsonl: a line a leg" "$T/s1/trials.jsonl" 13
expect_rc "random search: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" --space "$T/space.yaml" \
	-o "$T/r" --scheduler random --trials 3 $FIT -j 2
if jq -s -e 'map(.status == "completed" and .steps == '$S') | all' "$T/r/leaderboard.jsonl" \
	>/dev/null 2>&1; then
	pass "random search: every trial to --steps"
else
	fail "random search: every trial to --steps" "$(head -c 300 "$T/r/leaderboard.jsonl")"
fi
if [ "$(jq -c .params "$T/r/leaderboard.jsonl" | sort)" = \
	"$(jq -c 'select(.trial < 3) | .params' "$T/s1/leaderboard.jsonl" | sort)" ]; then
	pass "random search: trials 0-2 draw what they drew in the larger sweep"
else
	fail "random search: trials 0-2 draw what they drew in the larger sweep" "differ"
fi

# (d) The best model loads, and best.json's command rebuilds it from scratch.
check "best/ has the model" test -s "$T/s1/best/model.safetensors"
echo '{"text":"the market"}' >"$T/text.jsonl"
expect_rc "score with best/: exit 0" 0 "$Q" score "$T/s1/best" "$T/text.jsonl"
grep_in "score with best/: a log-probability" "$T/out" 'logprob'
tr_id=$(jq .trial "$T/s1/best.json")
if [ "$tr_id" = "$(head -n 1 "$T/s1/leaderboard.jsonl" | jq .trial)" ]; then
	pass "best.json: the leaderboard's first trial"
else
	fail "best.json: the leaderboard's first trial" "$tr_id"
fi
# shellcheck disable=SC2046
set -- $(jq -r '.command | (index("-o")) as $i | .[$i + 1] = "'"$T"'/again" | .[1:][]' \
	"$T/s1/best.json")
expect_rc "best.json's command from scratch: exit 0" 0 "$Q" "$@"
if [ -s "$T/again/model.safetensors" ] &&
	cmp -s "$T/again/model.safetensors" "$T/s1/best/model.safetensors"; then
	pass "best.json's command from scratch: the weights of best/ (rungs resumed)"
else
	fail "best.json's command from scratch: the weights of best/" "differ"
fi

# --resume: a finished sweep has nothing left to run; a sweep stopped by
# SIGTERM goes on to the leaderboard and model of an uninterrupted one.
expect_rc "--resume a finished sweep: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/s1" $FIT -j 2 --resume
lines "--resume a finished sweep: no leg rerun" "$T/s1/trials.jsonl" 13
if cmp -s "$T/s1/leaderboard.jsonl" "$T/s2/leaderboard.jsonl"; then
	pass "--resume a finished sweep: the same leaderboard"
else
	fail "--resume a finished sweep: the same leaderboard" "differs"
fi
expect_rc "--resume with other settings: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/s1" $FIT -j 2 --seed 5 --resume
grep_in "--resume with other settings: the message" "$T/err" 'other settings'
LONG="--steps 120 --batch 8 --eval-batches 4 --save-every 10 -j 2"
printf 'scheduler: random\ntrials: 2\nparallel: 2\nparams:\n  lr: {log_uniform: [1e-3, 1e-2]}\n' \
	>"$T/long.yaml"
"$Q" sweep "$T/m" --data "$T/sh" --space "$T/long.yaml" -o "$T/k" $LONG 2>"$T/k.err" &
pid=$!
i=0
while [ "$i" -lt 3000 ] && ! [ -d "$T/k/trial-001/checkpoint-10" ] && kill -0 "$pid" 2>/dev/null; do
	sleep 0.02
	i=$((i + 1))
done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
if [ "$rc" -eq 143 ]; then
	pass "SIGTERM: exit 143"
	if jq -s -e 'map(.status == "interrupted") | all' "$T/k/leaderboard.jsonl" >/dev/null 2>&1; then
		pass "SIGTERM: the trials are interrupted in the leaderboard"
	else
		fail "SIGTERM: the trials are interrupted" "$(head -c 300 "$T/k/leaderboard.jsonl")"
	fi
else
	echo "note: the sweep ended (exit $rc) before SIGTERM; resuming anyway"
fi
expect_rc "SIGTERM: --resume to the end: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/long.yaml" -o "$T/k" $LONG --resume
expect_rc "uninterrupted: exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/long.yaml" -o "$T/ku" $LONG
if cmp -s "$T/k/leaderboard.jsonl" "$T/ku/leaderboard.jsonl" &&
	cmp -s "$T/k/best/model.safetensors" "$T/ku/best/model.safetensors"; then
	pass "SIGTERM and --resume: the leaderboard and best model of an uninterrupted sweep"
else
	fail "SIGTERM and --resume: the leaderboard and best model of an uninterrupted sweep" \
		"$(diff "$T/k/leaderboard.jsonl" "$T/ku/leaderboard.jsonl" | head -n 4 | tr '\n' ' ')"
fi

# (f) Failing trials are recorded; all failing is exit 1.
printf 'scheduler: random\ntrials: 4\nseed: 3\nparams:\n  lr: {choice: [1e-2, 1e9]}\n' \
	>"$T/nan.yaml"
expect_rc "a failing trial: the sweep goes on, exit 0" 0 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/nan.yaml" -o "$T/f" $FIT -j 2
grep_in "a failing trial: a warning" "$T/err" 'trial [0-9]+ failed: exit 1: .*not finite'
if jq -s -e '(map(select(.status == "failed")) | length > 0 and
	all(.error | test("not finite"))) and .[0].status == "completed" and
	.[-1].status == "failed"' "$T/f/leaderboard.jsonl" >/dev/null 2>&1; then
	pass "a failing trial: status failed and its reason, ranked last"
else
	fail "a failing trial: status failed and its reason" "$(head -c 400 "$T/f/leaderboard.jsonl")"
fi
printf 'trials: 2\nparams:\n  lr: 1e9\n' >"$T/allnan.yaml"
expect_rc "every trial fails: exit 1" 1 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/allnan.yaml" -o "$T/fa" $FIT -j 2
grep_in "every trial fails: the message" "$T/err" 'every trial failed'
lines "every trial fails: still a leaderboard" "$T/fa/leaderboard.jsonl" 2
check "every trial fails: no best" test ! -e "$T/fa/best.json"
expect_rc "no validation split: exit 1" 1 "$Q" sweep "$T/m" --data "$T/noval" \
	--space "$T/space.yaml" -o "$T/nv" $FIT -j 2
grep_in "no validation split: the message" "$T/err" "no 'val_loss'.*--val-fraction"

# (e) Bad spaces: exit 2 and file:line:column.
bad_space() { # NAME YAML PATTERN
	printf '%s\n' "$2" >"$T/bad.yaml"
	expect_rc "bad space, $1: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" \
		--space "$T/bad.yaml" -o "$T/bad" $FIT
	grep_in "bad space, $1: the place" "$T/err" "bad\\.yaml:$3"
}
bad_space "unknown parameter" 'params: {lrr: {uniform: [1, 2]}}' "1:10: 'lrr' is not a fit"
bad_space "unknown key" 'params: {lr: 1}
budget: 3' "2:1: unknown key 'budget'"
bad_space "low above high" 'params:
  lr: {uniform: [0.2, 0.1]}' "2:17: 'lr': uniform .* low is above high"
bad_space "log-uniform from 0" 'params: {lr: {log_uniform: [0, 1]}}' "1:28: .*low > 0"
bad_space "empty choice" 'params: {batch: {choice: []}}' "1:26: 'batch': an empty choice"
bad_space "a float range for a whole number" 'params: {batch: {uniform: [1, 4]}}' \
	"1:27: 'batch' is a whole number"
bad_space "text for a number" 'params: {lr: {choice: [fast]}}' "1:24: 'lr': expected a number"
bad_space "out of fit's range" 'params: {dropout: {uniform: [0, 1]}}' "1:33: 'dropout': 1 is outside"
bad_space "unknown word" 'params: {schedule: {choice: [cosine, linear]}}' \
	"1:38: 'schedule': 'linear' is not"
bad_space "unknown distribution" 'params: {lr: {normal: [0, 1]}}' "1:15: 'lr': unknown distribution"
bad_space "eta below 2" 'eta: 1
params: {lr: 1}' "1:6: 'eta' must be a whole number from 2"
bad_space "min_steps above --steps" 'min_steps: 100
params: {lr: 1}' "1:12: min_steps 100 is more than --steps $S"
bad_space "no params" 'trials: 3' "1:1: no params"
bad_space "a duplicate key" 'params:
  lr: 1
  lr: 2' "3:3: duplicate key 'lr'"
bad_space "YAML syntax" 'params: {lr: [' "2:1: "
bad_space "an alias" 'params: {lr: &a 1, min-lr: *a}' "1:28: aliases are not supported"
bad_space "a list, not a map" '[1, 2]' "1:1: expected a map"

# Usage.
expect_rc "--help: exit 0" 0 "$Q" sweep --help
grep_in "--help: the synopsis" "$T/out" '^usage: quern-train sweep MODEL --data SHARDS --space'
expect_rc "a bad flag: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" --space "$T/space.yaml" \
	-o "$T/u" --no-such-flag
grep_in "a bad flag: try --help" "$T/err" "try 'quern-train --help'"
expect_rc "no --space: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" -o "$T/u"
expect_rc "--stop-at is the sweep's: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/u" --stop-at 3
expect_rc "--resume without a sweep: exit 1" 1 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/u2" --resume $FIT
grep_in "--resume without a sweep: the message" "$T/err" 'no sweep to resume'
expect_rc "a fit option fit refuses: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/u3" --lora-targets bogus $FIT -j 2
grep_in "a fit option fit refuses: fit's message" "$T/err" "fit refused trial [0-9]+'s options: --lora-targets"
expect_rc "--lr given and searched: exit 2" 2 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/u" --lr 1e-3
grep_in "--lr given and searched: the place" "$T/err" "space\\.yaml:8:3"
expect_rc "a missing space file: exit 1" 1 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/none.yaml" -o "$T/u"
grep_in "a missing space file: the message" "$T/err" "cannot open '.*none\\.yaml'"
expect_rc "a directory that holds a sweep: exit 1" 1 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o "$T/s1" $FIT
expect_rc "-o /dev/full: exit 1" 1 "$Q" sweep "$T/m" --data "$T/sh" \
	--space "$T/space.yaml" -o /dev/full $FIT
