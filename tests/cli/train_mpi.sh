# train_mpi.sh - quern-train fit data-parallel under Open MPI's mpirun
# (the MPI build, BUILD/mpi/bin/quern-train): 2 ranks of batch B follow one
# process with --accum 2 (each step's loss within 1e-5 over 20 steps, the
# weights within 1e-5) on SFT examples, whose loss masks make the step's
# trained-token count matter, and again with dropout, task mixing and a
# frozen block, and with LoRA; only rank 0 writes (rank 1, in a working
# directory of its own, writes nothing); --stop-at and a SIGTERM to one rank
# stop both ranks at the same step with a checkpoint, and --resume ends with
# the uninterrupted run's weights byte for byte; a resume with another
# number of ranks is refused unless ranks x accum stays; one rank is the
# plain build bit for bit; unsupported combinations are refused.
# SKIP only where Open MPI's mpirun is not installed (make deps installs it).
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"
QM="$QN_BIN/../mpi/bin/quern-train"
PY=/usr/bin/python3

if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1; then
	echo "SKIP: Open MPI's mpirun or mpicc not installed (make deps, or apt-get install openmpi-bin libopenmpi-dev)"
	exit 0
fi
if [ ! -x "$QM" ]; then
	fail "the MPI build of quern-train" "no $QM (make test builds it where mpicc is installed)"
	exit 1
fi
# As root (containers, CI), Open MPI wants both; --oversubscribe lets 2
# ranks share fewer cores; --bind-to none lets a rank's threads move.
# Open MPI's own allocations would show as leaks under ASan.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIENV="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi() { # NP args...: the MPI quern-train on NP ranks, at most 300 s
	np=$1
	shift
	env "$MPIENV" timeout 300 mpirun --oversubscribe --bind-to none -np "$np" "$QM" "$@"
}

# close NAME A B: the runs' metrics have the same steps, and each step's loss
# and validation loss are within 1e-5 (the sums run in another order).
close() {
	d=$(jq -n -r --slurpfile a "$2/metrics.jsonl" --slurpfile b "$3/metrics.jsonl" '
		if ($a | map(.step)) != ($b | map(.step)) or ($a | length) == 0 then "steps differ"
		else [range(0; $a | length) as $i | ($a[$i].loss - $b[$i].loss | fabs),
		      (($a[$i].val_loss // 0) - ($b[$i].val_loss // 0) | fabs)] | max end' 2>&1)
	if jq -n -e "$d < 1e-5" >/dev/null 2>&1; then pass "$1 (max difference $d)"; else fail "$1" "$d"; fi
}
# weights NAME FILE FILE: the same tensors, values within 1e-5.
weights() {
	d=$($PY - "$2" "$3" <<'EOF' 2>&1
import array, json, struct, sys
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: array.array('f', b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]])
            for k, v in h.items() if k != '__metadata__'}
a, b = load(sys.argv[1]), load(sys.argv[2])
if a.keys() != b.keys() or not a:
    print('other tensors')
else:
    print('%.3g' % max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a))
EOF
)
	if jq -n -e "$d < 1e-5" >/dev/null 2>&1; then pass "$1 (max difference $d)"; else fail "$1" "$d"; fi
}
same() { # NAME A B: the two files are byte-identical and not empty
	if [ -s "$2" ] && cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ or are empty"; fi
}
same_losses() { # NAME A B: the same loss, gradient norm and learning rate at every step
	jq -c '[.step, .loss, .grad_norm, .lr]' "$2/metrics.jsonl" >"$T/l1" 2>/dev/null
	jq -c '[.step, .loss, .grad_norm, .lr]' "$3/metrics.jsonl" >"$T/l2" 2>/dev/null
	if [ -s "$T/l1" ] && cmp -s "$T/l1" "$T/l2"; then pass "$1"; else
		fail "$1" "$(diff "$T/l1" "$T/l2" | head -n 4 | tr '\n' ' ')"
	fi
}

# SFT examples (the loss counts the completions only) in two tasks.
awk 'BEGIN { srand(5); split("north south east west wind rain sun snow comes goes the a and", w, " ");
	for (i = 0; i < 200; i++) { p = ""; c = ""; np = 3 + int(rand() * 8); nc = 2 + int(rand() * 10);
		for (j = 0; j < np; j++) p = p (j ? " " : "") w[1 + int(rand() * 13)];
		for (j = 0; j < nc; j++) c = c " " w[1 + int(rand() * 13)];
		printf "{\"id\":\"%d\",\"task\":\"%s\",\"prompt\":\"%s\",\"completion\":\"%s\"}\n",
			i, (i % 3 ? "fore" : "cast"), p, c } }' >"$T/d.jsonl"
expect_rc "tokenizer: exit 0" 0 "$K" train --vocab-size 280 -o "$T/tok" "$T/d.jsonl"
expect_rc "shards: exit 0" 0 "$K" encode -t "$T/tok" -o "$T/sh" --val-fraction 0.1 "$T/d.jsonl"
expect_rc "init: exit 0" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 32 --context 32 \
	--seed 3 -o "$T/m"
F="--data $T/sh --steps 20 --batch 4 --context 32 -j 1 --eval-every 5 --eval-batches 3 --save-every 5 --keep 10"

# (a) 2 ranks x batch 4 against one process with --accum 2.
expect_rc "one process, --accum 2: exit 0" 0 "$Q" fit "$T/m" -o "$T/one" $F --accum 2
expect_rc "mpirun -np 2: exit 0" 0 mpi 2 fit "$T/m" -o "$T/two" $F
close "2 ranks = --accum 2: losses and validation losses of 20 steps within 1e-5" "$T/one" "$T/two"
weights "2 ranks = --accum 2: final weights within 1e-5" "$T/one/model.safetensors" "$T/two/model.safetensors"
jq -e '.counters.ranks == 2 and .counters.tokens == 20 * 2 * 4 * 32' "$T/two/run.manifest.json" >/dev/null &&
	pass "the manifest counts 2 ranks and both ranks' tokens" ||
	fail "the manifest counts 2 ranks and both ranks' tokens" "$(jq -c .counters "$T/two/run.manifest.json")"

# One rank changes nothing: the MPI build without mpirun, and under mpirun -np 1.
expect_rc "the MPI build as one process: exit 0" 0 "$QM" fit "$T/m" -o "$T/solo" $F --accum 2
same "the MPI build as one process: the plain build's weights" "$T/one/model.safetensors" "$T/solo/model.safetensors"
expect_rc "mpirun -np 1 --accum 2: exit 0" 0 mpi 1 fit "$T/m" -o "$T/np1" $F --accum 2
same "mpirun -np 1: the plain build's weights" "$T/one/model.safetensors" "$T/np1/model.safetensors"
same_losses "mpirun -np 1: the plain build's losses" "$T/one" "$T/np1"

# Dropout (keyed by the micro-batch's number over all ranks), task mixing, a frozen block.
X="--dropout 0.1 --mix proportional --freeze 0"
expect_rc "$X, --accum 2: exit 0" 0 "$Q" fit "$T/m" -o "$T/one_x" $F $X --accum 2
expect_rc "$X, 2 ranks: exit 0" 0 mpi 2 fit "$T/m" -o "$T/two_x" $F $X
close "$X: 2 ranks = --accum 2 within 1e-5" "$T/one_x" "$T/two_x"
weights "$X: final weights within 1e-5" "$T/one_x/model.safetensors" "$T/two_x/model.safetensors"

# (d) LoRA: the adapter's gradients are reduced, the base stays as it was.
L="--lora --lora-r 4 --lora-targets c_attn,c_fc --lr 1e-2"
expect_rc "LoRA, --accum 2: exit 0" 0 "$Q" fit "$T/m" -o "$T/one_l" $F $L --accum 2
expect_rc "LoRA, 2 ranks: exit 0" 0 mpi 2 fit "$T/m" -o "$T/two_l" $F $L
close "LoRA: 2 ranks = --accum 2 within 1e-5" "$T/one_l" "$T/two_l"
weights "LoRA: adapters within 1e-5" "$T/one_l/adapter_model.safetensors" "$T/two_l/adapter_model.safetensors"
same "LoRA, 2 ranks: the base weights unchanged" "$T/m/model.safetensors" "$T/two_l/checkpoint-20/model.safetensors"

# (b) Only rank 0 writes: checkpoints, metrics (each step once), no temporary files,
# and rank 1, started in a directory of its own with a relative -o, writes nothing there.
got=$(jq -c -s '[.[].step]' "$T/two/metrics.jsonl")
if [ "$got" = "$(jq -c -n '[range(1; 21)]')" ]; then pass "2 ranks: metrics has steps 1..20 once"; else
	fail "2 ranks: metrics has steps 1..20 once" "$got"
fi
got=$(cd "$T/two" && ls -d checkpoint-* | sort -t- -k2n | tr '\n' ' ')
if [ "$got" = "checkpoint-5 checkpoint-10 checkpoint-15 checkpoint-20 " ]; then
	pass "2 ranks: checkpoints 5, 10, 15, 20"
else
	fail "2 ranks: checkpoints 5, 10, 15, 20" "$got"
fi
left=$(cd "$T/two" && find . -name '.*' ! -name . | head -n 5)
if [ -z "$left" ]; then pass "2 ranks: no temporary file left"; else fail "2 ranks: no temporary file left" "$left"; fi
mkdir -p "$T/w0" "$T/w1"
env "$MPIENV" timeout 300 mpirun --oversubscribe --bind-to none \
	-np 1 --wdir "$T/w0" "$QM" fit "$T/m" -o out $F : \
	-np 1 --wdir "$T/w1" "$QM" fit "$T/m" -o out $F >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ]; then pass "ranks in two directories: exit 0"; else
	fail "ranks in two directories: exit 0" "exit $rc: $(head -c 300 "$T/err")"
fi
check "rank 0 wrote the model" test -s "$T/w0/out/model.safetensors"
check "rank 0 wrote checkpoint-20" test -s "$T/w0/out/checkpoint-20/training_state.safetensors"
got=$(cd "$T/w1/out" 2>/dev/null && find . ! -name . | head -n 5)
if [ -z "$got" ]; then pass "rank 1 wrote nothing"; else fail "rank 1 wrote nothing" "$got"; fi
same "ranks in two directories: the same weights" "$T/two/model.safetensors" "$T/w0/out/model.safetensors"
# Resuming needs the checkpoints where every rank sees them.
env "$MPIENV" timeout 300 mpirun --oversubscribe --bind-to none \
	-np 1 --wdir "$T/w0" "$QM" fit "$T/m" -o out $F --resume : \
	-np 1 --wdir "$T/w1" "$QM" fit "$T/m" -o out $F --resume >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 1 ]; then pass "--resume where the ranks see other checkpoints: exit 1"; else
	fail "--resume where the ranks see other checkpoints: exit 1" "exit $rc"
fi
grep_in "--resume where the ranks see other checkpoints: said so" "$T/err" "ranks see different checkpoints"

# (c) Exact resume: --stop-at 8, then --resume to the end.
expect_rc "2 ranks --stop-at 8: exit 0" 0 mpi 2 fit "$T/m" -o "$T/r" $F --stop-at 8
check "2 ranks --stop-at 8: checkpoint-8" test -s "$T/r/checkpoint-8/training_state.safetensors"
hdr() { n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); head -c $((8 + n)) "$1" | tail -c "$n"; }
hdr "$T/r/checkpoint-8/training_state.safetensors" | jq -e '.__metadata__.world_size == "2"' >/dev/null &&
	pass "the training state records 2 ranks" || fail "the training state records 2 ranks" "no world_size 2"
cp -r "$T/r" "$T/r1"
cp -r "$T/r" "$T/r2"
expect_rc "2 ranks --resume: exit 0" 0 mpi 2 fit "$T/m" -o "$T/r" $F --resume
same "2 ranks resumed: the uninterrupted run's weights" "$T/two/model.safetensors" "$T/r/model.safetensors"
same_losses "2 ranks resumed: the uninterrupted run's losses" "$T/two" "$T/r"

# Another number of ranks: refused, unless ranks x accum stays.
expect_rc "resume 2 ranks' checkpoint as one process: exit 1" 1 "$Q" fit "$T/m" -o "$T/r1" $F --resume
grep_in "resume 2 ranks' checkpoint as one process: says how" "$T/err" "written by 2 ranks.*mpirun -np 2"
expect_rc "resume 2 ranks' checkpoint as one process with --accum 2: exit 0" 0 "$Q" fit "$T/m" \
	-o "$T/r2" $F --resume --accum 2
grep_in "resume with --accum 2: warned" "$T/err" "not be bit-identical"
weights "resume with --accum 2: weights within 1e-5" "$T/two/model.safetensors" "$T/r2/model.safetensors"

# SIGTERM to one rank: both stop after the same step, with a checkpoint
# (exit 143); the ranks run re-executed with OMP_WAIT_POLICY=passive.
S="--data $T/sh --steps 5000 --batch 4 --context 32 -j 1 --eval-batches 3 --save-every 1000"
env -u OMP_WAIT_POLICY "$MPIENV" mpirun --oversubscribe --bind-to none -np 2 "$QM" fit "$T/m" \
	-o "$T/s" $S >/dev/null 2>"$T/s.err" &
pid=$!
i=0
while [ "$i" -lt 3000 ] && [ "$(cat "$T/s/metrics.jsonl" 2>/dev/null | wc -l)" -lt 3 ] &&
	kill -0 "$pid" 2>/dev/null; do
	sleep 0.02
	i=$((i + 1))
done
ranks=$(ps -o pid= --ppid "$pid" | tr -d ' ')
last=$(echo "$ranks" | tail -n 1)
if [ -n "$last" ] && tr '\0' '\n' <"/proc/$last/environ" 2>/dev/null | grep -qx 'OMP_WAIT_POLICY=passive'; then
	pass "under mpirun a rank runs re-executed with OMP_WAIT_POLICY=passive"
else
	fail "under mpirun a rank runs re-executed with OMP_WAIT_POLICY=passive" "ranks '$ranks'"
fi
[ -n "$last" ] && kill -TERM "$last" 2>/dev/null
wait "$pid"
rc=$?
if [ "$rc" -eq 143 ]; then pass "SIGTERM to one rank: exit 143"; else
	fail "SIGTERM to one rank: exit 143" "exit $rc: $(head -c 300 "$T/s.err")"
fi
at=$(sed -n 's/.*stopped by signal 15 at step \([0-9][0-9]*\).*/\1/p' "$T/s.err" | head -n 1)
if [ -n "$at" ] && [ -s "$T/s/checkpoint-$at/training_state.safetensors" ] &&
	[ "$(tail -n 1 "$T/s/metrics.jsonl" | jq .step)" = "$at" ]; then
	pass "SIGTERM to one rank: both stopped at step $at, checkpoint saved"
	M=$((at + 5))
	expect_rc "resumed after SIGTERM to step $M: exit 0" 0 mpi 2 fit "$T/m" -o "$T/s" $S --resume --stop-at $M
	expect_rc "uninterrupted to step $M: exit 0" 0 mpi 2 fit "$T/m" -o "$T/u" $S --stop-at $M
	same "resumed after SIGTERM: the uninterrupted run's weights" "$T/u/model.safetensors" "$T/s/model.safetensors"
else
	fail "SIGTERM to one rank: both stopped at one step with a checkpoint" "$(head -c 300 "$T/s.err")"
fi

# (e) Refused: what does not train data-parallel.
expect_rc "--dpo under 2 ranks: exit 2" 2 mpi 2 fit "$T/m" -o "$T/x" $F --dpo
grep_in "--dpo under 2 ranks: said so" "$T/err" "--dpo does not train under MPI"
expect_rc "--classify under 2 ranks: exit 2" 2 mpi 2 fit "$T/m" -o "$T/x" $F --classify
grep_in "--classify under 2 ranks: said so" "$T/err" "--classify does not train under MPI"
expect_rc "score under 2 ranks: exit 2" 2 mpi 2 score "$T/m" "$T/d.jsonl"
grep_in "score under 2 ranks: said so" "$T/err" "only fit of a GPT-2 model runs under MPI"
expect_rc "sweep under 1 rank: exit 2" 2 mpi 1 sweep "$T/m" --data "$T/sh" --space /dev/null -o "$T/x"
grep_in "sweep under 1 rank: said so" "$T/err" "only fit of a GPT-2 model runs under MPI \\(1 rank\\)"
# A rank bound to one core with 2 threads: a warning that says what to do.
env "$MPIENV" timeout 300 mpirun --bind-to core -np 1 "$QM" fit "$T/m" -o "$T/y" \
	--data "$T/sh" --steps 1 --batch 2 --context 32 -j 2 >"$T/out" 2>"$T/err"
grep_in "2 threads on a rank bound to one core: warned" "$T/err" "--bind-to none"
