#!/bin/sh
# bench/eval.sh BUILD - quern-audit eval on the acceptance task (issue 8,
# acceptance 3): 1,000 multiple-choice items, 4 choices, 5-shot prompts, on
# a freshly initialised 4-layer width-256 GPT-2 (quern-train init, context
# 1024), side by side with a PyTorch implementation of lm-eval's HF scoring
# on the same weights (bench/peers/eval_torch.py) when /usr/bin/python3 has
# torch (make bench-deps). Also runs alone: sh bench/eval.sh build.
#
#   Data: a generated task (awk, fixed seeds): questions of about 15 words,
#   choices of one or two words, 1,000 test and 1,000 train items (the shots
#   come from train, drawn as lm-eval draws them). Tokenizer: quern-tokenize
#   train --vocab-size 2000 on the task's text; model vocabulary
#   BENCH_EVAL_VOCAB (default 8192; 50257 is GPT-2's).
#   quern: `quern-audit eval MODEL --tasks task.yaml -j THREADS`, wall time
#   of the whole command (model load, prompts, tokenizing, scoring, output),
#   best of R runs (default 3).
#   PyTorch: the same (context, continuation) pairs, read from quern's
#   --samples --log-text file and tokenized by tests/tools/bpe_ids; only the
#   scoring loop is timed (batches of 32, as lm-eval's --batch_size 32);
#   BENCH_EVAL_PEER_DOCS documents (default 200) because it is slow; its
#   items/s is scaled, not extrapolated in time. Its log-likelihoods are
#   compared with quern's (max |difference|) and its acc/acc_norm with
#   quern's on those documents.
# Results: bench/out/eval.txt.
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}/eval
threads=${THREADS:-2}
rounds=${R:-3}
V=${BENCH_EVAL_VOCAB:-8192}
peer_docs=${BENCH_EVAL_PEER_DOCS:-200}
py=${PYTHON:-/usr/bin/python3}
mkdir -p "$out" "$work"
res="$out/eval.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }
for f in bin/quern-audit bin/quern-train bin/quern-tokenize; do
	[ -x "$B/$f" ] || { echo "bench: '$B/$f' is missing; run 'make'" >&2; exit 1; }
done

cd "$work"
gen() { # N SEED: multiple-choice items
	awk -v N="$1" -v S="$2" 'BEGIN {
	srand(S);
	nw = split("the a of and to in is was for on that with as by at from his her they which this be are were had have not but all their one can there been would who will more when about what some into them could time other than then its only these two may first any like over such our after most years where through back much before good should because each those people made well many how same long just great here both between under never last", W, " ");
	na = split("river mountain winter summer harvest market school harbor garden kitchen library station village forest castle bridge island valley desert ocean", A, " ");
	nq = split("Which place is known for its quiet mornings|What do travellers visit first|Where did the old story begin|Which of these is closest to the sea|Where do the farmers bring their goods", Q, "|");
	for (i = 0; i < N; i++) {
		q = Q[1 + int(rand() * nq)];
		for (j = 0; j < 8; j++) q = q " " W[1 + int(rand() * nw)];
		printf "{\"id\":%d,\"question\":\"%s?\",\"choices\":[", i, q;
		for (c = 0; c < 4; c++) {
			ch = A[1 + int(rand() * na)];
			if (rand() < 0.5) ch = W[1 + int(rand() * nw)] " " ch;
			printf "%s\"%s\"", (c ? "," : ""), ch;
		}
		printf "],\"label\":%d}\n", int(rand() * 4);
	} }'
}
gen 1000 1 >test.jsonl
gen 1000 2 >train.jsonl
cat >task.yaml <<'YAML'
task: bench_mc
dataset_path: .
test_split: test
fewshot_split: train
num_fewshot: 5
output_type: multiple_choice
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_target: label
doc_to_choice: choices
metric_list:
  - metric: acc
  - metric: acc_norm
YAML
jq -c '{text: (.question + " " + (.choices | join(" ")))}' train.jsonl test.jsonl >corpus.jsonl
rm -rf tok model
"$B/bin/quern-tokenize" train --vocab-size 2000 -o tok corpus.jsonl >/dev/null 2>&1
"$B/bin/quern-train" init -t tok --vocab "$V" --layers 4 --heads 4 --width 256 --context 1024 \
	--seed 1 -o model >/dev/null

say "quern-audit eval: 1000 items x 4 choices, 5-shot; GPT-2 4 layers, width 256, vocab $V, context 1024"
say "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
best=
for r in $(seq "$rounds"); do
	t0=$(date +%s.%N)
	"$B/bin/quern-audit" eval model --tasks task.yaml -j "$threads" -o r.json
	t1=$(date +%s.%N)
	s=$(echo "$t1 - $t0" | bc -l)
	if [ -z "$best" ] || [ "$(echo "$s < $best" | bc -l)" = 1 ]; then best=$s; fi
done
toks=$("$B/bin/quern-audit" eval model --tasks task.yaml --limit 1 --samples one.jsonl --log-text -o /dev/null &&
	jq -r '.arguments.gen_args_0.arg_0' one.jsonl | wc -c)
say "$(printf 'quern -j %s: %.2f s (best of %s), %.1f items/s; acc %s, acc_norm %s; first prompt %s bytes' \
	"$threads" "$best" "$rounds" "$(echo "1000 / $best" | bc -l)" \
	"$(jq '.results.bench_mc["acc,none"]' r.json)" "$(jq '.results.bench_mc["acc_norm,none"]' r.json)" "$toks")"
"$B/bin/quern-audit" eval model --tasks task.yaml -j 1 -o r1.json
cmp -s r.json r1.json 2>/dev/null || jq -e --slurpfile a r1.json '.results == $a[0].results' r.json >/dev/null &&
	say "quern -j 1 and -j $threads: identical results" || say "quern -j 1 and -j $threads: RESULTS DIFFER"

if ! "$py" -c 'import torch' 2>/dev/null; then
	say "peer: skipped ('$py' cannot import torch; make bench-deps installs python3-torch)"
	exit 0
fi
[ -x "$B/tests/bpe_ids" ] || { say "peer: skipped ('$B/tests/bpe_ids' missing; run 'make test' once)"; exit 0; }
"$B/bin/quern-audit" eval model --tasks task.yaml --limit "$peer_docs" -j "$threads" --samples s.jsonl --log-text -o rp.json
"$py" "$top/bench/peers/eval_torch.py" strings --samples s.jsonl >strings.jsonl
"$B/tests/bpe_ids" model/tokenizer.json hf strings.jsonl >ids.txt
"$py" "$top/bench/peers/eval_torch.py" score --samples s.jsonl --ids ids.txt --model model \
	--threads "$threads" --check >peer.json
say "$(jq -r --slurpfile q rp.json '"PyTorch (lm-eval HF scoring, batch \(.batch), \(.threads) threads): \(.docs) items in \(.seconds) s, \(.items_per_s) items/s; acc \(.acc) (quern \($q[0].results.bench_mc["acc,none"])), acc_norm \(.acc_norm) (quern \($q[0].results.bench_mc["acc_norm,none"])); max |ll difference| \(.max_abs_ll_diff), same greedy: \(.same_greedy)"' peer.json)"
say "$(jq -r --argjson b "$best" '"quern / PyTorch, items/s: \(1000 / $b / .items_per_s * 100 | round / 100)x"' peer.json)"
