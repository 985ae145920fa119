#!/bin/sh
# bench/scaleout.sh BUILD - scale-out (issue 10) side by side with what users
# run today, measured in one run (run by make bench; also alone:
# sh bench/scaleout.sh build). datatrove's executor and llm.c's MPI trainer
# are not packaged for Debian, so the peers are PyTorch DDP and the
# single-process run.
#
#   1. Data-parallel training: quern-train under mpirun (the MPI build,
#      BUILD/mpi/bin/quern-train: 2 ranks, -j 1 each, batch 8 a rank, rank r
#      training micro-batches r, r + 2, ... of each step) against
#      bench/peers/train_torch.py --world 2 (2 forked processes, gloo,
#      DistributedDataParallel, 1 thread each, batch 8 a process), and both
#      as one process with one thread (quern-train's plain build,
#      train_torch.py without DDP). The model and data are bench/train.sh's:
#      GPT-2 with 4 layers, 4 heads, width 256, context 256, vocabulary
#      8192; gen_neardup 5000 tokenized, sharded and exported in
#      BENCH_DIR/scaleout. Each run takes BENCH_SCALE_STEPS steps (default
#      12), the first 3 untimed; its rate is the whole job's tokens/s (all
#      ranks' tokens): quern-train's the median tokens_per_s of its metrics
#      after the first 3, PyTorch's N*B*T over rank 0's median step time.
#      A round runs quern 1, PyTorch 1, quern 2, PyTorch 2; figures are
#      medians over R rounds (default 3), and so is the ratio of each
#      round's own 2-rank pair. Scaling efficiency: the 2-rank rate over
#      twice the 1-process rate. A sanity line checks that quern-train's
#      2-rank losses equal one process's with --accum 2 within 1e-5.
#   2. Sharded cleaning: gen_neardup 46000 7 (bench/clean.sh's corpus and
#      cache, BENCH_CLEAN_DOCS documents) through
#      `quern-clean -j 1 --steps normalize,exact_dedup,near_dedup` in one
#      process, against 2 shards run at once (-j 1 each, --signatures),
#      then dedup-merge, apply-removals for both shards at once, and
#      merge-stats (docs/sharding.md). Both write kept documents, rejects
#      and stats. hyperfine medians of R runs after one warm-up; the phase
#      times of the sharded runs give the share of the merge steps; the
#      shards' final outputs concatenated must equal the single run's
#      output byte for byte, and the merged stats its --stats.
#
# Results: bench/out/scaleout.txt and BENCH_DIR/scaleout.json (BENCH_DIR
# default /tmp/quern-bench). The machine should be idle: the load average
# is printed with the results.
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}
rounds=${R:-3}
steps=${BENCH_SCALE_STEPS:-12}
docs=${BENCH_CLEAN_DOCS:-46000}
py=${PYTHON:-/usr/bin/python3}
L=4 H=4 C=256 T=256 V=8192 BATCH=8 SKIP=3 NP=2
mkdir -p "$out" "$work"
res="$out/scaleout.txt"
say() { echo "$@" | tee -a "$res"; }

for t in jq awk hyperfine mpirun; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: '$t' is missing; run 'make deps'" >&2; exit 1; }
done
[ "$steps" -gt $((SKIP + 1)) ] || { echo "bench: BENCH_SCALE_STEPS must be more than $((SKIP + 1))" >&2; exit 2; }
for f in bin/quern-train bin/quern-tokenize bin/quern-clean tests/gen_neardup; do
	[ -x "$B/$f" ] || { echo "bench: '$B/$f' is missing; run 'make' and 'make test' once" >&2; exit 1; }
done
[ -x "$B/mpi/bin/quern-train" ] ||
	{ echo "bench: '$B/mpi/bin/quern-train' is missing; run 'make $B/mpi/bin/quern-train' (needs mpicc)" >&2; exit 1; }
"$py" -c 'import numpy, torch.distributed as d; assert d.is_gloo_available()' 2>/dev/null ||
	{ echo "bench: '$py' cannot import torch with gloo and numpy (Debian: python3-torch)" >&2; exit 1; }

# Measure copies, so a rebuild during the run cannot mix two binaries.
d="$work/scaleout"
bin="$work/bin.$$"
mkdir -p "$d" "$bin" "$bin/mpi"
trap 'rm -rf "$bin"' EXIT
trap 'exit 1' INT TERM
for f in quern-train quern-tokenize quern-clean; do cp "$B/bin/$f" "$bin/"; done
cp "$B/mpi/bin/quern-train" "$bin/mpi/"
K="$bin/quern-tokenize"
Q="$bin/quern-train"
QM="$bin/mpi/quern-train"
QC="$bin/quern-clean"
: >"$res"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "null"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load0=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
torchv=$(dpkg-query -W -f '${Version}' python3-torch 2>/dev/null || "$py" -c 'import torch; print(torch.__version__)')
mpiv=$(mpirun --version 2>/dev/null | sed -n '1s/.*) //p')

# 1. Data-parallel training. The data as bench/train.sh makes it (the same
# corpus file, shared with it), in a folder of its own.
corpus="$work/bpe-neardup-5000.jsonl"
if [ ! -s "$corpus" ]; then
	"$B/tests/gen_neardup" 5000 >"$corpus.tmp"
	mv "$corpus.tmp" "$corpus"
fi
rm -rf "$d/tok" "$d/shards" "$d/model"
"$K" train -q -j 2 --vocab-size "$V" -o "$d/tok" "$corpus"
"$K" encode -q -j 2 -t "$d/tok" -o "$d/shards" "$corpus"
"$K" export --format nanogpt "$d/shards" "$d/train.bin"
ntok=$(jq -r .splits.train.tokens "$d/shards/manifest.json")
[ "$ntok" -gt $((steps * NP * BATCH * T + 1)) ] || { echo "bench: only $ntok tokens for $steps steps" >&2; exit 1; }
"$Q" init --layers "$L" --heads "$H" --width "$C" --context "$T" --tokenizer "$d/tok" --seed 1 -o "$d/model"

FIT="--data $d/shards --steps $steps --batch $BATCH --context $T --lr 3e-4 --warmup 0 --schedule constant
	--weight-decay 0.1 --clip 1.0 -j 1 --no-shuffle --save-every 0"
TORCH="--data $d/train.bin --threads 1 --steps $((steps - SKIP)) --warmup-steps $SKIP --batch $BATCH
	--context $T --layers $L --heads $H --width $C --vocab $V"
rate() { # METRICS: the median tokens_per_s after the untimed steps
	jq -r 'select(.tokens_per_s != null) | .tokens_per_s' "$1" | tail -n +$((SKIP + 1)) | median
}
for f in q1 q2 p1 p2; do : >"$d/$f.tps"; done
r=1
while [ "$r" -le "$rounds" ]; do
	rm -rf "$d/out" "$d/q.jsonl"
	# shellcheck disable=SC2086
	"$Q" fit "$d/model" -o "$d/out" $FIT --metrics "$d/q.jsonl"
	rate "$d/q.jsonl" >>"$d/q1.tps"
	# shellcheck disable=SC2086
	"$py" "$top/bench/peers/train_torch.py" $TORCH >"$d/torch.json"
	jq -r .tokens_per_s "$d/torch.json" >>"$d/p1.tps"
	rm -rf "$d/out" "$d/q2.jsonl"
	# shellcheck disable=SC2086
	mpirun --oversubscribe --allow-run-as-root -np "$NP" --bind-to none \
		"$QM" fit "$d/model" -o "$d/out" $FIT --metrics "$d/q2.jsonl"
	rate "$d/q2.jsonl" >>"$d/q2.tps"
	# shellcheck disable=SC2086
	"$py" "$top/bench/peers/train_torch.py" $TORCH --world "$NP" >"$d/torch2.json"
	jq -r .tokens_per_s "$d/torch2.json" >>"$d/p2.tps"
	r=$((r + 1))
done
# The sanity line: one process with --accum 2 against the last 2-rank run.
rm -rf "$d/out" "$d/acc.jsonl"
# shellcheck disable=SC2086
"$Q" fit "$d/model" -o "$d/out" $FIT --accum "$NP" --metrics "$d/acc.jsonl"
accdiff=$(jq -n -r --slurpfile a "$d/q2.jsonl" --slurpfile b "$d/acc.jsonl" '
	if ($a | map(.step)) != ($b | map(.step)) or ($a | length) == 0 then "null"
	else [range(0; $a | length) as $i | ($a[$i].loss - $b[$i].loss | fabs)] | max end')
q2loss=$(jq -r .loss "$d/q2.jsonl" | tail -n 1)
accloss=$(jq -r .loss "$d/acc.jsonl" | tail -n 1)
p2loss=$(jq -r .final_loss "$d/torch2.json")
accok=$(jq -n -r "if $accdiff != null and $accdiff < 1e-5 then \"ok\" else \"MISMATCH\" end")
paste -d' ' "$d/q2.tps" "$d/p2.tps" | awk 'NF == 2 { print $1 / $2 }' >"$d/ratio2"
paste -d' ' "$d/q1.tps" "$d/p1.tps" | awk 'NF == 2 { print $1 / $2 }' >"$d/ratio1"
q1=$(median <"$d/q1.tps")
q2=$(median <"$d/q2.tps")
p1=$(median <"$d/p1.tps")
p2=$(median <"$d/p2.tps")
r1=$(median <"$d/ratio1")
r2=$(median <"$d/ratio2")
load1=$(cut -d' ' -f1 /proc/loadavg)

say "== scale-out, $(nproc) CPUs: $cpu; $(date -u +%Y-%m-%d)"
say ""
say "-- data-parallel GPT-2 training: quern-train under mpirun (Open MPI $mpiv) vs PyTorch $torchv DDP (gloo)"
say "   L=$L H=$H C=$C T=$T V=$V, batch $BATCH a rank, 1 thread a rank; $steps steps a run, the first $SKIP untimed"
say "   medians of $rounds rounds; load $load0 at the start, $load1 at the end"
say ""
awk -v q1="$q1" -v q2="$q2" -v p1="$p1" -v p2="$p2" -v r1="$r1" -v r2="$r2" -v np="$NP" 'BEGIN {
	printf "%-38s %12s %12s %9s\n", "tokens/s of the whole job", "1 process", np " ranks", "scaling"
	printf "%-38s %12.0f %12.0f %8.0f%%\n", "quern-train (plain build; mpirun)", q1, q2, 100 * q2 / (np * q1)
	printf "%-38s %12.0f %12.0f %8.0f%%\n", "PyTorch (plain loop; DDP, gloo)", p1, p2, 100 * p2 / (np * p1)
	printf "quern-train / PyTorch: %.2fx at 1 process (rounds\047 own ratios %.2fx), %.2fx at %d ranks (rounds\047 own ratios %.2fx)\n",
		q1 / p1, r1, q2 / p2, np, r2
	printf "scaling efficiency = the %d-rank rate / (%d x the 1-process rate)\n", np, np
}' | tee -a "$res"
say "sanity: quern-train $NP ranks vs 1 process --accum $NP, every step's loss within 1e-5: $accok (max difference $accdiff; last loss $q2loss vs $accloss; PyTorch DDP last loss $p2loss)"

# 2. Sharded cleaning (bench/clean.sh's corpus and cache).
c="$d/clean"
rm -rf "$c"
mkdir -p "$c"
corpus="$work/neardup-$docs.jsonl"
if [ ! -s "$corpus" ]; then
	"$B/tests/gen_neardup" "$docs" 7 >"$corpus.tmp"
	mv "$corpus.tmp" "$corpus"
fi
bytes=$(wc -c <"$corpus")
cat "$corpus" >/dev/null # into the page cache, for every command alike
S=normalize,exact_dedup,near_dedup
# The sharded job as a scheduler would run it: shards at once, the merge,
# removals at once, the stats; each phase's end time goes to $c/phases.
cat >"$c/sharded.sh" <<EOF
set -eu
cd "$c"
now() { date +%s.%N; }
t0=\$(now)
i=0
pids=
while [ "\$i" -lt $NP ]; do
	"$QC" -j 1 --steps $S --no-manifest --shard "\$i/$NP" --signatures "sig\$i" --stats "s\$i" \\
		-o "out\$i" -r "rej\$i" "$corpus" &
	pids="\$pids \$!"
	i=\$((i + 1))
done
for p in \$pids; do wait "\$p"; done
t1=\$(now)
rm -rf dd
"$QC" dedup-merge -o dd sig*
t2=\$(now)
i=0
pids=
while [ "\$i" -lt $NP ]; do
	"$QC" apply-removals --removals dd --shard "\$i/$NP" --stats "f\$i" -o "final\$i" -r "dups\$i" "out\$i" &
	pids="\$pids \$!"
	i=\$((i + 1))
done
for p in \$pids; do wait "\$p"; done
t3=\$(now)
"$QC" merge-stats --dedup dd -o stats.json s[0-9]* f[0-9]*
t4=\$(now)
echo "\$t0 \$t1 \$t2 \$t3 \$t4" | awk '{ print \$2 - \$1, \$3 - \$2, \$4 - \$3, \$5 - \$4 }' >>phases
EOF
: >"$c/phases"
loadc=$(cut -d' ' -f1 /proc/loadavg)
hyperfine -N --warmup 1 --runs "$rounds" --export-json "$c/hyperfine.json" \
	-n single "$QC -j 1 --steps $S --no-manifest -o $c/single.jsonl -r $c/single.rej --stats $c/single.stats $corpus" \
	-n sharded "sh $c/sharded.sh" >"$c/hyperfine.log" 2>&1 || { cat "$c/hyperfine.log"; exit 1; }
loadc1=$(cut -d' ' -f1 /proc/loadavg)
finals() {
	i=0
	while [ "$i" -lt "$NP" ]; do
		cat "$c/final$i"
		i=$((i + 1))
	done
}
if [ -s "$c/single.jsonl" ] && finals | cmp -s - "$c/single.jsonl"; then same=ok; else same=MISMATCH; fi
if [ "$(jq -S . "$c/stats.json")" = "$(jq -S . "$c/single.stats")" ]; then samestats=ok; else samestats=MISMATCH; fi
kept=$(wc -l <"$c/single.jsonl")
ts=$(jq '.results[] | select(.command == "single") | .median' "$c/hyperfine.json")
tn=$(jq '.results[] | select(.command == "sharded") | .median' "$c/hyperfine.json")
cs=$(jq '.results[] | select(.command == "single") | .user + .system' "$c/hyperfine.json")
cn=$(jq '.results[] | select(.command == "sharded") | .user + .system' "$c/hyperfine.json")
# The timed runs' phases (the warm-up's line first, left out).
tail -n "$rounds" "$c/phases" >"$c/phases.timed"
ph_shard=$(cut -d' ' -f1 "$c/phases.timed" | median)
ph_dmerge=$(cut -d' ' -f2 "$c/phases.timed" | median)
ph_apply=$(cut -d' ' -f3 "$c/phases.timed" | median)
ph_stats=$(cut -d' ' -f4 "$c/phases.timed" | median)
share=$(awk '{ print ($2 + $3 + $4) / ($1 + $2 + $3 + $4) }' "$c/phases.timed" | median)

say ""
say "-- sharded cleaning: quern-clean --steps $S, 1 process vs $NP shards + merge"
say "   gen_neardup $docs 7: $(echo "$bytes" | awk '{ printf "%.1f", $1 / 1e6 }') MB, $docs documents, $kept kept; hyperfine medians of $rounds runs (1 warm-up); load $loadc at the start, $loadc1 at the end"
say ""
awk -v b="$bytes" -v ts="$ts" -v tn="$tn" -v cs="$cs" -v cn="$cn" -v np="$NP" -v sh="$ph_shard" \
	-v dm="$ph_dmerge" -v ap="$ph_apply" -v st="$ph_stats" -v share="$share" 'BEGIN {
	printf "%-44s %8s %8s %8s\n", "", "median s", "MB/s", "CPU s"
	printf "%-44s %8.2f %8.1f %8.2f\n", "1 process, -j 1", ts, b / ts / 1e6, cs
	printf "%-44s %8.2f %8.1f %8.2f\n", np " shards at once (-j 1 each) + merge steps", tn, b / tn / 1e6, cn
	printf "speedup %.2fx; phases (medians): shards %.2f s, dedup-merge %.2f s, apply-removals %.2f s, merge-stats %.3f s\n",
		ts / tn, sh, dm, ap, st
	printf "merge steps (dedup-merge + apply-removals + merge-stats): %.0f%% of the sharded wall time\n", 100 * share
}' | tee -a "$res"
say "cat final_0..final_$((NP - 1)) = the single run's output, byte for byte: $same; merged stats = its --stats: $samestats"

jq -n --argjson rounds "$rounds" --argjson steps "$steps" --argjson skip "$SKIP" --argjson np "$NP" \
	--argjson q1 "$q1" --argjson q2 "$q2" --argjson p1 "$p1" --argjson p2 "$p2" \
	--argjson r1 "$r1" --argjson r2 "$r2" --argjson accdiff "$accdiff" --arg accok "$accok" \
	--argjson q2loss "$q2loss" --argjson accloss "$accloss" --argjson p2loss "$p2loss" \
	--argjson q1runs "$(jq -s . "$d/q1.tps")" --argjson q2runs "$(jq -s . "$d/q2.tps")" \
	--argjson p1runs "$(jq -s . "$d/p1.tps")" --argjson p2runs "$(jq -s . "$d/p2.tps")" \
	--argjson bytes "$bytes" --argjson docs "$docs" --argjson ts "$ts" --argjson tn "$tn" \
	--argjson cs "$cs" --argjson cn "$cn" --argjson share "$share" \
	--argjson ph "[$ph_shard, $ph_dmerge, $ph_apply, $ph_stats]" --arg same "$same" --arg samestats "$samestats" \
	--arg torch "$torchv" --arg mpi "$mpiv" --arg cpu "$cpu" --arg date "$(date -u +%Y-%m-%d)" \
	--argjson load "[$load0, $load1, $loadc, $loadc1]" '
	{train: {model: {layers: 4, heads: 4, width: 256, context: 256, vocab: 8192, batch_per_rank: 8},
	         threads_per_rank: 1, ranks: $np, rounds: $rounds, steps: $steps, untimed_steps: $skip,
	         quern: {tokens_per_s_1: $q1, tokens_per_s_n: $q2, efficiency: ($q2 / ($np * $q1)),
	                 runs_1: $q1runs, runs_n: $q2runs},
	         torch_ddp: {tokens_per_s_1: $p1, tokens_per_s_n: $p2, efficiency: ($p2 / ($np * $p1)),
	                     runs_1: $p1runs, runs_n: $p2runs},
	         ratio_1: ($q1 / $p1), ratio_n: ($q2 / $p2), ratio_of_rounds_1: $r1, ratio_of_rounds_n: $r2,
	         accum_check: {result: $accok, max_loss_difference: $accdiff, last_loss_ranks: $q2loss,
	                       last_loss_accum: $accloss}, torch_last_loss: $p2loss,
	         torch_version: $torch, open_mpi: $mpi},
	 clean: {documents: $docs, bytes: $bytes, shards: $np, steps: "normalize,exact_dedup,near_dedup",
	         single_s: $ts, sharded_s: $tn, single_mb_s: ($bytes / $ts / 1e6), sharded_mb_s: ($bytes / $tn / 1e6),
	         speedup: ($ts / $tn), single_cpu_s: $cs, sharded_cpu_s: $cn,
	         phases_s: {shards: $ph[0], dedup_merge: $ph[1], apply_removals: $ph[2], merge_stats: $ph[3]},
	         merge_share: $share, output_identical: $same, stats_identical: $samestats},
	 cpu: $cpu, date: $date, load: $load}' >"$work/scaleout.json.tmp"
mv "$work/scaleout.json.tmp" "$work/scaleout.json"
say "results: $res, $work/scaleout.json"
[ "$accok" = ok ] && [ "$same" = ok ] && [ "$samestats" = ok ] || exit 1
