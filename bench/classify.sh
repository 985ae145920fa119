#!/bin/sh
# bench/classify.sh BUILD - quern-train's linear classifier (--arch linear)
# side by side with fastText (`fasttext supervised`, Debian's fasttext
# package) on the same generated task, in one run (called by make bench;
# also runs alone: sh bench/classify.sh build).
#
#   Data: tests/tools/classify_gen, K labels with their own topic words in
#   Zipf-distributed filler (-w 60 words a document, topic fraction 0.1;
#   0.3 for K > 100, BENCH_CLS_FRAC to choose),
#   BENCH_CLS_DOCS training documents (default 100000, about 33 MB of JSONL)
#   and a tenth as many held-out ones from another seed; the same documents
#   in fastText's "__label__X text" form. Two tasks: K = 8 and K = 734 (the
#   label count of fastText's cooking tutorial, whose softmax run shows
#   about 75,000 words/s/thread).
#   Settings, the same on both sides: dim 64, 5 epochs, lr 0.5, word
#   bigrams, no character n-grams, 2,000,000 buckets, full softmax, and
#   THREADS in 1 and 2.
#   Reported: words/s/thread (quern: its metrics' words over epoch seconds,
#   divided by the threads; fastText: its final progress line), training
#   wall seconds (quern's includes reading and hashing the JSONL; fastText's
#   reading and its dictionary), held-out accuracy (eval.json; fastText's
#   P@1 from `fasttext test`), and the words/s ratio. Medians of R rounds
#   (default 3), each round one run of each side.
#
# Results: bench/out/classify.txt. BENCH_DIR (default /tmp/quern-bench)
# caches the data. The machine should be idle: the load average is printed.
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}/classify
rounds=${R:-3}
docs=${BENCH_CLS_DOCS:-100000}
threads_list=${THREADS_LIST:-1 2}
labels_list=${BENCH_CLS_LABELS:-8 734}
mkdir -p "$out" "$work"
res="$out/classify.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }

for t in jq awk fasttext; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "bench: '$t' is missing (fasttext: make bench-deps, or apt-get install fasttext)" >&2
		exit 1
	}
done
[ -x "$B/bin/quern-train" ] && [ -x "$B/tests/classify_gen" ] || {
	echo "bench: build quern-train and tests/tools/classify_gen first (make)" >&2
	exit 1
}

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

say "quern-train --arch linear vs fasttext supervised ($(dpkg-query -W -f '${Version}' fasttext 2>/dev/null || echo '?'))"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $rounds rounds; $docs training documents"
say "settings: dim 64, epochs 5, lr 0.5, word bigrams, minn/maxn 0, 2000000 buckets, full softmax"
say ""
say "$(printf '%-5s %-3s %14s %14s %7s %9s %9s %8s %8s' K j quern_w/s/t fasttext_w/s/t ratio quern_s ft_s quern_acc ft_acc)"

for k in $labels_list; do
	# Many labels share the documents thinly: give each more topic words.
	frac=${BENCH_CLS_FRAC:-$([ "$k" -gt 100 ] && echo 0.3 || echo 0.1)}
	d="$work/k$k-f$frac-n$docs"
	mkdir -p "$d"
	if [ ! -s "$d/val.ft" ]; then
		"$B/tests/classify_gen" -k "$k" -n "$docs" -w 60 -f "$frac" -s 1 >"$d/train.jsonl"
		"$B/tests/classify_gen" -k "$k" -n $((docs / 10)) -w 60 -f "$frac" -s 2 >"$d/val.jsonl"
		"$B/tests/classify_gen" -k "$k" -n "$docs" -w 60 -f "$frac" -s 1 -F >"$d/train.ft"
		"$B/tests/classify_gen" -k "$k" -n $((docs / 10)) -w 60 -f "$frac" -s 2 -F >"$d/val.ft"
	fi
	for j in $threads_list; do
		: >"$d/q_rate" ; : >"$d/q_time" ; : >"$d/q_acc"
		: >"$d/f_rate" ; : >"$d/f_time" ; : >"$d/f_acc" ; : >"$d/ratio"
		r=0
		while [ "$r" -lt "$rounds" ]; do
			r=$((r + 1))
			t0=$(now)
			"$B/bin/quern-train" fit --arch linear --data "$d/train.jsonl" --val "$d/val.jsonl" \
				-o "$d/quern" --dim 64 --epochs 5 --lr 0.5 --word-ngrams 2 --minn 0 --maxn 0 \
				--buckets 2000000 -j "$j" -q
			t1=$(now)
			qr=$(jq -s --argjson j "$j" '(map(.words) | add) / (map(.seconds) | add) / $j' "$d/quern/metrics.jsonl")
			echo "$qr" >>"$d/q_rate"
			echo "$t1 - $t0" | bc -l >>"$d/q_time"
			jq .accuracy "$d/quern/eval.json" >>"$d/q_acc"
			t0=$(now)
			fasttext supervised -input "$d/train.ft" -output "$d/ft" -dim 64 -epoch 5 -lr 0.5 \
				-wordNgrams 2 -minn 0 -maxn 0 -bucket 2000000 -loss softmax -thread "$j" \
				-verbose 2 >"$d/ft.log" 2>&1
			t1=$(now)
			fr=$(tr '\r' '\n' <"$d/ft.log" | grep 'words/sec/thread' | tail -n 1 |
				sed 's/.*words\/sec\/thread: *\([0-9]*\).*/\1/')
			echo "$fr" >>"$d/f_rate"
			echo "$t1 - $t0" | bc -l >>"$d/f_time"
			fasttext test "$d/ft.bin" "$d/val.ft" | awk '/^P@1/ {print $2}' >>"$d/f_acc"
			echo "$qr / $fr" | bc -l >>"$d/ratio"
		done
		say "$(printf '%-5s %-3s %14.0f %14.0f %7.2f %9.2f %9.2f %8.4f %8.4f' "$k" "$j" \
			"$(median <"$d/q_rate")" "$(median <"$d/f_rate")" "$(median <"$d/ratio")" \
			"$(median <"$d/q_time")" "$(median <"$d/f_time")" "$(median <"$d/q_acc")" \
			"$(median <"$d/f_acc")")"
	done
done
say ""
say "ratio: the median over rounds of each round's quern / fastText words/s/thread"
