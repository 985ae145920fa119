# train_resume.sh - exact resume of quern-train fit: two uninterrupted runs
# with the same flags give the same weights; a run killed with SIGKILL after
# its first checkpoint and then resumed ends with the weights of the
# uninterrupted run, byte for byte, and its metrics.jsonl has every step
# once with the same losses; SIGTERM (early) and SIGINT (in the second
# epoch) stop a run with 143 and 130 after saving a checkpoint at that
# step, and --resume from it ends the same.
# Same -j throughout: only the same thread count is promised bit-identical.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

S=40
FLAGS="--steps $S --batch 16 --context 32 -j 2 --save-every 5 --eval-batches 2"

same() { # NAME A B: the two files are byte-identical and not empty
	if [ -s "$2" ] && cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ or are empty"; fi
}
# steps_once NAME DIR: DIR/metrics.jsonl has steps 1..S, each once, in order.
steps_once() {
	got=$(jq -c -s '[.[].step]' "$2/metrics.jsonl" 2>&1)
	want=$(jq -c -n "[range(1; $S + 1)]")
	if [ "$got" = "$want" ]; then pass "$1"; else fail "$1" "steps $(echo "$got" | head -c 300)"; fi
}
# same_losses NAME A B: the two runs logged the same loss, gradient norm
# and learning rate at every step.
same_losses() {
	jq -c '[.step, .loss, .grad_norm, .lr]' "$2/metrics.jsonl" >"$T/l1" 2>/dev/null
	jq -c '[.step, .loss, .grad_norm, .lr]' "$3/metrics.jsonl" >"$T/l2" 2>/dev/null
	if [ -s "$T/l1" ] && cmp -s "$T/l1" "$T/l2"; then pass "$1"; else
		fail "$1" "$(diff "$T/l1" "$T/l2" | head -n 4 | tr '\n' ' ')"
	fi
}
# wait_checkpoint DIR PID: until DIR holds a checkpoint (0) or PID is gone
# or 300 s passed (1).
wait_checkpoint() {
	i=0
	while [ "$i" -lt 6000 ]; do
		for c in "$1"/checkpoint-*; do
			[ -d "$c" ] && return 0
		done
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}
# wait_step DIR PID N: until DIR/metrics.jsonl has N steps (0) or PID is
# gone or 300 s passed (1).
wait_step() {
	i=0
	while [ "$i" -lt 15000 ]; do
		n=0
		[ -f "$1/metrics.jsonl" ] && n=$(wc -l <"$1/metrics.jsonl")
		[ "$n" -ge "$3" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.02
		i=$((i + 1))
	done
	return 1
}
no_temp() { # NAME DIR: no temporary (dot) file or directory in DIR
	left=$(cd "$2" && find . -name '.*' ! -name . | head -n 5)
	if [ -z "$left" ]; then pass "$1"; else fail "$1" "$left"; fi
}

check "quern-train is built" test -x "$Q"
"$QN_TESTS/gen_neardup" 100 3 >"$T/docs.jsonl"
"$K" train --vocab-size 300 -o "$T/tok" "$T/docs.jsonl" 2>"$T/err" ||
	fail "tokenizer" "$(head -c 300 "$T/err")"
# Few documents, so that the runs go through the end of an epoch (the data
# order reshuffled) and a resume may start in either epoch.
head -n 6 "$T/docs.jsonl" >"$T/few.jsonl"
"$K" encode -t "$T/tok" --val-fraction 0.5 -o "$T/sh" "$T/few.jsonl" 2>"$T/err" ||
	fail "shards" "$(head -c 300 "$T/err")"
"$K" inspect "$T/sh" >"$T/inspect.json" 2>"$T/err"
if jq -e ".splits.train.tokens < $S * 16 * 32 and .splits.val.tokens > 0" "$T/inspect.json" >/dev/null; then
	pass "the shards: fewer training tokens than a run reads, a validation split"
else
	fail "the shards: fewer training tokens than a run reads, a validation split" "$(head -c 300 "$T/inspect.json")"
fi
expect_rc "init a 2-layer model" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 64 \
	--context 32 --seed 7 -o "$T/m"

# Uninterrupted, twice.
expect_rc "uninterrupted run: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/a" $FLAGS
steps_once "uninterrupted run: metrics has steps 1..$S once" "$T/a"
expect_rc "second uninterrupted run: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/a2" $FLAGS
same "two uninterrupted runs: identical weights" "$T/a2/model.safetensors" "$T/a/model.safetensors"
same_losses "two uninterrupted runs: identical losses" "$T/a" "$T/a2"
if cmp -s "$T/m/model.safetensors" "$T/a/model.safetensors"; then
	fail "training changed the weights" "the final model is the initial one"
else
	pass "training changed the weights"
fi

# Killed with SIGKILL at a random-ish step after the first checkpoint
# (the default --keep 2 prunes the checkpoint a resume starts from).
"$Q" fit "$T/m" --data "$T/sh" -o "$T/k" $FLAGS >/dev/null 2>"$T/k.err" &
pid=$!
if wait_checkpoint "$T/k" "$pid"; then pass "SIGKILL run: a checkpoint appears"; else
	fail "SIGKILL run: a checkpoint appears" "$(head -c 300 "$T/k.err")"
fi
wait_step "$T/k" "$pid" $((6 + $$ % 28))
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rc=$?
if [ "$rc" -eq 137 ]; then
	pass "SIGKILL run: killed mid-run ($(cd "$T/k" && ls -d checkpoint-* | sort -t- -k2n | tr '\n' ' '))"
	check "SIGKILL run: no final model yet" test ! -e "$T/k/model.safetensors"
else
	echo "note: the SIGKILL run ended by itself (exit $rc) before the kill; resuming anyway"
fi
expect_rc "SIGKILL run: --resume to the end: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/k" \
	--resume $FLAGS
same "SIGKILL run resumed: weights identical to the uninterrupted run" \
	"$T/k/model.safetensors" "$T/a/model.safetensors"
steps_once "SIGKILL run resumed: metrics has steps 1..$S once" "$T/k"
same_losses "SIGKILL run resumed: the losses of the uninterrupted run" "$T/a" "$T/k"
no_temp "SIGKILL run resumed: no temporary file left" "$T/k"

# SIGTERM right after the first checkpoint; --keep 20 keeps every one.
"$Q" fit "$T/m" --data "$T/sh" -o "$T/s" $FLAGS --keep 20 >/dev/null 2>"$T/s.err" &
pid=$!
if wait_checkpoint "$T/s" "$pid"; then pass "SIGTERM run: a checkpoint appears"; else
	fail "SIGTERM run: a checkpoint appears" "$(head -c 300 "$T/s.err")"
fi
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rc=$?
if [ "$rc" -eq 143 ]; then pass "SIGTERM run: exit 143"; else
	fail "SIGTERM run: exit 143" "exit $rc: $(head -c 300 "$T/s.err")"
fi
at=$(sed -n 's/.*stopped by signal 15 at step \([0-9][0-9]*\).*/\1/p' "$T/s.err" | head -n 1)
if [ -n "$at" ] && [ "$at" -lt "$S" ]; then
	pass "SIGTERM run: stopped at step $at"
	check "SIGTERM run: checkpoint-$at has the model" test -s "$T/s/checkpoint-$at/model.safetensors"
	check "SIGTERM run: checkpoint-$at has the training state" \
		test -s "$T/s/checkpoint-$at/training_state.safetensors"
	last=$(tail -n 1 "$T/s/metrics.jsonl" | jq .step)
	if [ "$last" = "$at" ]; then pass "SIGTERM run: metrics end at step $at"; else
		fail "SIGTERM run: metrics end at step $at" "last step $last"
	fi
else
	fail "SIGTERM run: stopped at a step before $S" "$(head -c 300 "$T/s.err")"
fi
check "SIGTERM run: no final model yet" test ! -e "$T/s/model.safetensors"
expect_rc "SIGTERM run: --resume to the end: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/s" \
	--resume $FLAGS --keep 20
same "SIGTERM run resumed: weights identical to the uninterrupted run" \
	"$T/s/model.safetensors" "$T/a/model.safetensors"
steps_once "SIGTERM run resumed: metrics has steps 1..$S once" "$T/s"
same_losses "SIGTERM run resumed: the losses of the uninterrupted run" "$T/a" "$T/s"
no_temp "SIGTERM run resumed: no temporary file left" "$T/s"

# SIGINT in the second epoch: exit 130, and the resume from there ends the same.
"$Q" fit "$T/m" --data "$T/sh" -o "$T/i" $FLAGS --keep 20 >/dev/null 2>"$T/i.err" &
pid=$!
wait_step "$T/i" "$pid" 30
kill -INT "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rc=$?
if [ "$rc" -eq 130 ]; then pass "SIGINT run: exit 130"; else
	fail "SIGINT run: exit 130" "exit $rc: $(head -c 300 "$T/i.err")"
fi
at=$(sed -n 's/.*stopped by signal 2 at step \([0-9][0-9]*\).*/\1/p' "$T/i.err" | head -n 1)
if [ -n "$at" ] && [ -s "$T/i/checkpoint-$at/training_state.safetensors" ]; then
	pass "SIGINT run: checkpoint-$at saved"
else
	fail "SIGINT run: checkpoint saved" "$(head -c 300 "$T/i.err")"
fi
expect_rc "SIGINT run: --resume to the end: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/i" \
	--resume $FLAGS --keep 20
same "SIGINT run resumed: weights identical to the uninterrupted run" \
	"$T/i/model.safetensors" "$T/a/model.safetensors"
steps_once "SIGINT run resumed: metrics has steps 1..$S once" "$T/i"
same_losses "SIGINT run resumed: the losses of the uninterrupted run" "$T/a" "$T/i"

# --stop-at: two budgeted legs (the sweep's rungs) end as one run does.
expect_rc "--stop-at 12: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/b" $FLAGS --stop-at 12
last=$(tail -n 1 "$T/b/metrics.jsonl" | jq -c '[.step, (.val_loss != null)]')
if [ "$last" = "[12,true]" ]; then pass "--stop-at 12: metrics end validated at step 12"; else
	fail "--stop-at 12: metrics end validated at step 12" "$last"
fi
check "--stop-at 12: checkpoint-12 saved" test -s "$T/b/checkpoint-12/training_state.safetensors"
expect_rc "--stop-at 25 --resume: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/b" $FLAGS \
	--stop-at 25 --resume
expect_rc "--resume to the end: exit 0" 0 "$Q" fit "$T/m" --data "$T/sh" -o "$T/b" $FLAGS --resume
same "--stop-at legs resumed: weights identical to the uninterrupted run" \
	"$T/b/model.safetensors" "$T/a/model.safetensors"
same_losses "--stop-at legs resumed: the losses of the uninterrupted run" "$T/a" "$T/b"
