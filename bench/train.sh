#!/bin/sh
# bench/train.sh BUILD - GPT-2 training speed of quern-train side by side
# with PyTorch on the CPU, measured in one run on the same tokens and the
# same thread count (called by bench/run.sh; also runs alone:
# sh bench/train.sh build).
#
#   Data: tests/tools/gen_neardup 5000 (~23 MB of English-like JSONL, cached
#   in BENCH_DIR, default /tmp/quern-bench, and shared with
#   bench/tokenize_train.sh), a tokenizer trained on it with
#   `quern-tokenize train --vocab-size 8192`, the corpus encoded into shards
#   (quern-train reads them) and exported as a nanoGPT uint16 file
#   (bench/peers/train_torch.py reads that).
#   Model: GPT-2, 4 layers, 4 heads, width 256, context 256, vocabulary
#   8192, tied lm head, fp32; batch 8, AdamW (constant lr 3e-4, betas
#   0.9/0.95, weight decay 0.1 on the blocks' matrices), gradient clip 1.0,
#   no warmup, consecutive windows.
#   Each side runs BENCH_TRAIN_STEPS steps (default 20); the first 3 are
#   not timed. quern-train's rate is the median of tokens_per_s in its
#   --metrics lines after the first 3; PyTorch's is B*T over its median
#   step time. Both run under GNU time for peak RSS.
#   Ceiling: tests/tools/sgemm_rate, OpenBLAS sgemm at the model's big
#   products (2048x768x256: B*T by c_attn; 2048x8192x256: the lm head).
#   Achieved GFLOP/s = tokens/s x (6 N + 6 L C T) / 1e9, N the parameter
#   count with the tied embedding once; "% sgemm" divides by the faster
#   of the two sgemm shapes.
#
# THREADS (default 2) is the thread count of every side (quern-train -j,
# train_torch.py --threads, sgemm_rate). R (default 3) rounds, each one
# quern-train run, one PyTorch run and the sgemm shapes, alternating;
# reported figures are medians over the rounds, and so is the ratio of
# each round's own quern-train and PyTorch rates (the two runs of a round
# shared the machine with the same neighbours, so it is the steadier one). Results:
# bench/out/train.txt and BENCH_DIR/train.json. PyTorch is Debian's
# python3-torch under PYTHON (default /usr/bin/python3). The machine should
# be idle: the load average is printed with the results.
#
# quern-train must be built; BENCH_TRAIN_PEER_ONLY=1 runs the rest without
# it (PyTorch and sgemm only).
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}
threads=${THREADS:-2}
rounds=${R:-3}
steps=${BENCH_TRAIN_STEPS:-20}
peer_only=${BENCH_TRAIN_PEER_ONLY:-0}
py=${PYTHON:-/usr/bin/python3}
L=4 H=4 C=256 T=256 V=8192 BATCH=8 SKIP=3
mkdir -p "$out" "$work"
res="$out/train.txt"
say() { echo "$@" | tee -a "$res"; }

for t in jq awk /usr/bin/time; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: '$t' is missing; run 'make deps'" >&2; exit 1; }
done
[ "$steps" -gt $((SKIP + 1)) ] || { echo "bench: BENCH_TRAIN_STEPS must be more than $((SKIP + 1))" >&2; exit 2; }
if [ ! -x "$B/bin/quern-train" ] && [ "$peer_only" != 1 ]; then
	echo "bench: quern-train not built ('$B/bin/quern-train' is missing; run 'make')" >&2
	exit 1
fi
for f in bin/quern-tokenize tests/gen_neardup tests/sgemm_rate; do
	[ -x "$B/$f" ] || { echo "bench: '$B/$f' is missing; run 'make' and 'make test' once" >&2; exit 1; }
done
"$py" -c 'import torch, numpy' 2>/dev/null ||
	{ echo "bench: '$py' cannot import torch and numpy (Debian: python3-torch)" >&2; exit 1; }

# Measure copies, so a rebuild during the run cannot mix two binaries.
d="$work/train"
bin="$work/bin.$$"
mkdir -p "$d" "$bin"
trap 'rm -rf "$bin"' EXIT
trap 'exit 1' INT TERM
for f in bin/quern-tokenize tests/sgemm_rate; do cp "$B/$f" "$bin/"; done
[ "$peer_only" = 1 ] || cp "$B/bin/quern-train" "$bin/"
K="$bin/quern-tokenize"
Q="$bin/quern-train"
S="$bin/sgemm_rate"
: >"$res"

# The corpus (the same file and command as bench/tokenize_train.sh), the
# tokenizer, the shards and the nanoGPT export, rebuilt each run (seconds).
corpus="$work/bpe-neardup-5000.jsonl"
if [ ! -s "$corpus" ]; then
	"$B/tests/gen_neardup" 5000 >"$corpus.tmp"
	mv "$corpus.tmp" "$corpus"
fi
rm -rf "$d/tok" "$d/shards" "$d/model" "$d/out"
"$K" train -q -j "$threads" --vocab-size "$V" -o "$d/tok" "$corpus"
"$K" encode -q -j "$threads" -t "$d/tok" -o "$d/shards" "$corpus"
"$K" export --format nanogpt "$d/shards" "$d/train.bin"
ntok=$(jq -r .splits.train.tokens "$d/shards/manifest.json")
[ "$ntok" -gt $((steps * BATCH * T + 1)) ] || { echo "bench: only $ntok tokens for $steps steps" >&2; exit 1; }

params=$((V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C))
flops=$((6 * params + 6 * L * C * T)) # per token, forward and backward
load0=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
torchv=$(dpkg-query -W -f '${Version}' python3-torch 2>/dev/null || "$py" -c 'import torch; print(torch.__version__)')
blasv=$(dpkg-query -W -f '${Version}' libopenblas0-pthread 2>/dev/null || echo '?')

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "null"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxrss() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }

if [ "$peer_only" != 1 ]; then
	"$Q" init --layers "$L" --heads "$H" --width "$C" --context "$T" --tokenizer "$d/tok" --seed 1 -o "$d/model"
fi
: >"$d/q.tps"
: >"$d/q.rss"
: >"$d/p.tps"
: >"$d/p.rss"
: >"$d/s1"
: >"$d/s2"
r=1
while [ "$r" -le "$rounds" ]; do
	if [ "$peer_only" != 1 ]; then
		rm -rf "$d/out" "$d/metrics.jsonl"
		/usr/bin/time -v -o "$d/time" "$Q" fit "$d/model" --data "$d/shards" -o "$d/out" \
			--steps "$steps" --batch "$BATCH" --context "$T" --lr 3e-4 --warmup 0 --schedule constant \
			--weight-decay 0.1 --clip 1.0 -j "$threads" --metrics "$d/metrics.jsonl" --no-shuffle
		jq -r 'select(.tokens_per_s != null) | .tokens_per_s' "$d/metrics.jsonl" | tail -n +$((SKIP + 1)) |
			median >>"$d/q.tps"
		maxrss "$d/time" >>"$d/q.rss"
		qloss=$(jq -r 'select(.loss != null) | .loss' "$d/metrics.jsonl" | tail -1)
	fi
	/usr/bin/time -v -o "$d/time" "$py" "$top/bench/peers/train_torch.py" --data "$d/train.bin" \
		--threads "$threads" --steps $((steps - SKIP)) --warmup-steps "$SKIP" \
		--batch "$BATCH" --context "$T" --layers "$L" --heads "$H" --width "$C" --vocab "$V" \
		>"$d/torch.json"
	jq -r .tokens_per_s "$d/torch.json" >>"$d/p.tps"
	maxrss "$d/time" >>"$d/p.rss"
	ploss=$(jq -r .final_loss "$d/torch.json")
	tparams=$(jq -r .params "$d/torch.json")
	[ "$tparams" = "$params" ] || { echo "bench: train_torch.py has $tparams parameters, expected $params" >&2; exit 1; }
	"$S" $((BATCH * T)) $((3 * C)) "$C" 1.5 "$threads" | jq -r .gflops >>"$d/s1"
	"$S" $((BATCH * T)) "$V" "$C" 1.5 "$threads" | jq -r .gflops >>"$d/s2"
	r=$((r + 1))
done
load1=$(cut -d' ' -f1 /proc/loadavg)

# Per-round ratios too: each round's two runs saw the same neighbours.
paste -d' ' "$d/q.tps" "$d/p.tps" | awk 'NF == 2 { print $1 / $2 }' >"$d/ratio"
qr=$(median <"$d/ratio")
qt=$(median <"$d/q.tps")
qm=$(median <"$d/q.rss")
pt=$(median <"$d/p.tps")
pm=$(median <"$d/p.rss")
s1=$(median <"$d/s1")
s2=$(median <"$d/s2")
[ "$peer_only" != 1 ] || qloss=null

say "== GPT-2 training: quern-train vs PyTorch $torchv (CPU; both on OpenBLAS $blasv)"
say "   $(nproc) CPUs: $cpu; load $load0 at the start, $load1 at the end; $(date -u +%Y-%m-%d)"
say "   L=$L H=$H C=$C T=$T V=$V B=$BATCH; $params parameters; $(awk -v f="$flops" 'BEGIN { printf "%.1f", f / 1e6 }') MFLOP a token; $ntok tokens"
say "   $threads threads; $steps steps a run, the first $SKIP untimed; medians of $rounds rounds"
[ "$peer_only" != 1 ] || say "   (BENCH_TRAIN_PEER_ONLY=1: quern-train not run)"
say ""
awk -v qt="$qt" -v pt="$pt" -v qm="$qm" -v pm="$pm" -v s1="$s1" -v s2="$s2" -v f="$flops" \
	-v ql="$qloss" -v pl="$ploss" -v qr="$qr" -v b=$((BATCH * T)) -v c="$C" -v v="$V" 'BEGIN {
	peak = s1 > s2 ? s1 : s2
	printf "             tokens/s   GFLOP/s  %% sgemm  peak RSS MB  last loss\n"
	if (qt != "null")
		printf "quern-train  %8.0f  %8.1f  %6.1f%%  %11.1f  %9s\n", qt, qt * f / 1e9, 100 * qt * f / 1e9 / peak, qm / 1024, ql
	else
		printf "quern-train  %8s\n", "-"
	printf "PyTorch      %8.0f  %8.1f  %6.1f%%  %11.1f  %9s\n", pt, pt * f / 1e9, 100 * pt * f / 1e9 / peak, pm / 1024, pl
	if (qt != "null")
		printf "quern-train / PyTorch: %.2fx tokens/s (median of the rounds\047 own ratios %.2fx), %.2fx peak RSS\n", qt / pt, qr, qm / pm
	printf "sgemm %dx%dx%d: %.1f GFLOP/s; %dx%dx%d: %.1f GFLOP/s\n", b, 3 * c, c, s1, b, v, c, s2
}' | tee -a "$res"

jq -n --argjson threads "$threads" --argjson rounds "$rounds" --argjson steps "$steps" \
	--argjson skip "$SKIP" --argjson params "$params" --argjson flops "$flops" --argjson tokens "$ntok" \
	--argjson qt "$qt" --argjson qr "$qr" --argjson qm "$qm" --argjson pt "$pt" --argjson pm "$pm" \
	--argjson s1 "$s1" --argjson s2 "$s2" --argjson qloss "$qloss" --argjson ploss "$ploss" \
	--arg torch "$torchv" --arg openblas "$blasv" --arg cpu "$cpu" --arg date "$(date -u +%Y-%m-%d)" \
	--argjson load0 "$load0" --argjson load1 "$load1" --argjson l "$L" --argjson h "$H" \
	--argjson c "$C" --argjson t "$T" --argjson v "$V" --argjson b "$BATCH" \
	--argjson qruns "$(jq -s . "$d/q.tps")" --argjson pruns "$(jq -s . "$d/p.tps")" '
	([$s1, $s2] | max) as $peak |
	def side($tps; $kb; $loss; $runs): if $tps == null then null else
		{tokens_per_s: $tps, gflops: ($tps * $flops / 1e9), pct_sgemm: (100 * $tps * $flops / 1e9 / $peak),
		 peak_rss_mb: ($kb / 1024), last_loss: $loss, runs_tokens_per_s: $runs} end;
	{model: {layers: $l, heads: $h, width: $c, context: $t, vocab: $v, batch: $b, params: $params,
	         flops_per_token: $flops},
	 threads: $threads, rounds: $rounds, steps: $steps, untimed_steps: $skip, tokens: $tokens,
	 quern: side($qt; $qm; $qloss; $qruns), torch: side($pt; $pm; $ploss; $pruns),
	 ratio: (if $qt == null then null else $qt / $pt end), ratio_of_rounds: $qr,
	 sgemm: [{m: ($b * $t), n: (3 * $c), k: $c, gflops: $s1}, {m: ($b * $t), n: $v, k: $c, gflops: $s2}],
	 torch_version: $torch, openblas: $openblas, cpu: $cpu, date: $date, load: [$load0, $load1]}' \
	>"$work/train.json.tmp"
mv "$work/train.json.tmp" "$work/train.json"

# Fine-tuning methods on the same model and tokens (issue 6): a LoRA step and
# a step with the embeddings and blocks 0-1 frozen, against a full step, in
# alternating runs; medians of the per-step rates after the untimed ones.
if [ "$peer_only" != 1 ]; then
	: >"$d/ft.full"
	: >"$d/ft.lora"
	: >"$d/ft.frz"
	r=1
	while [ "$r" -le "$rounds" ]; do
		for mode in full lora frz; do
			case $mode in
			full) extra= ;;
			lora) extra=--lora ;;
			frz) extra="--freeze embeddings,0-1" ;;
			esac
			rm -rf "$d/ft" "$d/ft.jsonl"
			# shellcheck disable=SC2086
			"$Q" fit "$d/model" --data "$d/shards" -o "$d/ft" --steps "$steps" --batch "$BATCH" \
				--context "$T" --lr 3e-4 --schedule constant --save-every 0 -j "$threads" \
				--metrics "$d/ft.jsonl" --no-shuffle $extra
			jq -r 'select(.tokens_per_s != null) | .tokens_per_s' "$d/ft.jsonl" |
				tail -n +$((SKIP + 1)) | median >>"$d/ft.$mode"
		done
		r=$((r + 1))
	done
	ff=$(median <"$d/ft.full")
	fl=$(median <"$d/ft.lora")
	fz=$(median <"$d/ft.frz")
	say ""
	awk -v f="$ff" -v l="$fl" -v z="$fz" 'BEGIN {
		printf "fine-tuning steps, tokens/s: full %.0f; LoRA r 8 on c_attn %.0f (step time %.2fx full); embeddings + blocks 0-1 frozen %.0f (%.2fx)\n", f, l, f / l, z, f / z
	}' | tee -a "$res"
fi
say "results: $res, $work/train.json"
