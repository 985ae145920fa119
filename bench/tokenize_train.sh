#!/bin/sh
# bench/tokenize_train.sh BUILD - byte-level BPE training (lib/bpe_train)
# side by side with `spm_train --model_type=bpe` (Debian's sentencepiece),
# measured in one run on the same input (issue 4, acceptance 4: at least 3x
# faster, peak RSS no higher).
#
# Corpora, generated once and cached in BENCH_DIR (default /tmp/quern-bench):
#   zipf     ~22 MB of English-like prose, one paragraph a line, with a
#            Zipfian vocabulary of 150,000 pseudo-words plus English function
#            words, numbers and punctuation (awk, fixed seed): about 210,000
#            distinct pre-tokens, enough for 32000 tokens.
#   neardup  tests/tools/gen_neardup 5000 (~22 MB JSONL), its text one
#            paragraph a line: English-like but only ~9,000 distinct
#            pre-tokens, so training stops early (min_frequency 2) near
#            13,000 tokens; run at 8192 only.
# Both tools read the same text file, one paragraph a line (spm_train's
# input format; quern gets each line as one text with --lines). For neardup
# quern also reads the JSONL itself, which adds JSON parsing.
#
# Vocabulary sizes BENCH_VOCABS (default "8192 32000"), thread counts
# BENCH_THREADS (default "1 2"; spm_train --num_threads is set to the same),
# quern with the o200k pattern and min_frequency 2, spm_train with its
# defaults otherwise. Timings are hyperfine medians of BENCH_RUNS runs
# (default 3); peak RSS is GNU time's maximum resident set of one more run.
# Results: bench/out/tokenize_train.txt. The machine should be idle: the
# 1-minute load average at the start is printed with the results.
#
# The trainer is driven through quern-tokenize train (lib/bpe_train);
# QTRAIN overrides the command (it gets "-j N --vocab-size V -o DIR FILE").
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
work=${BENCH_DIR:-/tmp/quern-bench}
runs=${BENCH_RUNS:-3}
vocabs=${BENCH_VOCABS:-8192 32000}
threads=${BENCH_THREADS:-1 2}
QTRAIN=${QTRAIN:-$B/bin/quern-tokenize train --pattern o200k --min-frequency 2}
mkdir -p "$out" "$work"
res="$out/tokenize_train.txt"
: >"$res"
say() { echo "$@" | tee -a "$res"; }

for t in hyperfine jq spm_train /usr/bin/time awk; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: '$t' is missing; run 'make deps' (spm_train: Debian package sentencepiece)" >&2; exit 1; }
done
[ -x "$B/bin/quern-tokenize" ] && [ -x "$B/tests/gen_neardup" ] || { echo "bench: test tools missing in '$B'; run 'make test' once" >&2; exit 1; }

# The Zipfian corpus.
zipf="$work/bpe-zipf-22m.txt"
if [ ! -s "$zipf" ]; then
	awk -v seed=7 -v bytes=22000000 'BEGIN {
		srand(seed)
		ns = split("ka ri to sen ma lo ki na ve por al de tra in con un pre mi sto be gra ne fo li ter hu ran cel ob dis ta ro mer qui pa su zen an ex el da vo ti ris ca mon ge ul pe shi nor gal ba fe ow ry ash", syl, " ")
		nf = split("the of and to a in is was that for it with as his on be at by he this had not are but from or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three", fw, " ")
		lv = log(150000); n = 0
		while (n < bytes) {
			line = ""; nsent = 3 + int(rand() * 6)
			for (s = 0; s < nsent; s++) {
				nw = 6 + int(rand() * 18)
				for (w = 0; w < nw; w++) {
					r = rand()
					if (r < 0.45) t = fw[1 + int(rand() * rand() * nf)]
					else if (r < 0.47) t = int(rand() * (rand() < 0.5 ? 100 : 100000))
					else {
						x = int(exp(rand() * lv)); t = ""
						do { t = t syl[1 + x % ns]; x = int(x / ns) } while (x > 0)
						if (rand() < 0.03) t = t "'"'"'s"
					}
					if (w == 0 || rand() < 0.04) t = toupper(substr(t, 1, 1)) substr(t, 2)
					line = line (w ? " " : (s ? " " : "")) t
					if (w < nw - 1 && rand() < 0.06) line = line (rand() < 0.8 ? "," : ";")
				}
				line = line (rand() < 0.9 ? "." : (rand() < 0.5 ? "?" : "!"))
			}
			print line; n += length(line) + 1
		}
	}' >"$zipf.tmp"
	mv "$zipf.tmp" "$zipf"
fi
# The near-duplicate corpus, as JSONL and as paragraphs.
nd="$work/bpe-neardup-5000"
if [ ! -s "$nd.txt" ]; then
	"$B/tests/gen_neardup" 5000 >"$nd.jsonl.tmp"
	jq -r .text "$nd.jsonl.tmp" | grep -v '^$' >"$nd.txt.tmp"
	mv "$nd.jsonl.tmp" "$nd.jsonl"
	mv "$nd.txt.tmp" "$nd.txt"
fi

load=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
spmv=$(dpkg-query -W -f '${Version}' sentencepiece 2>/dev/null || echo '?')
say "== BPE training: quern (lib/bpe_train) vs spm_train --model_type=bpe (sentencepiece $spmv)"
say "   $(nproc) CPUs: $cpu; load $load; $(date -u +%Y-%m-%d); medians of $runs runs"
say ""
say "corpus   MB    vocab thr   quern s    spm s  speedup  quern MB   spm MB  RSS ratio  quern tokens"

d="$work/bpe-out"
mkdir -p "$d"
rss() { # command... -> peak RSS in MB of one run
	/usr/bin/time -f '%M' -o "$d/time" "$@" >/dev/null 2>&1
	awk '{ printf "%.1f", $1 / 1024 }' "$d/time"
}
bench() { # NAME FILE VOCAB THREADS [QUERN-EXTRA]
	name=$1 file=$2 v=$3 j=$4 extra=${5:-}
	cat "$file" >/dev/null
	q="$QTRAIN $extra -j $j --vocab-size $v -o $d $file"
	s="spm_train --input=$file --model_prefix=$d/spm --model_type=bpe --vocab_size=$v --num_threads=$j --minloglevel=2"
	hyperfine -N --runs "$runs" --export-json "$d/h.json" -n quern "$q" -n spm "$s" >"$d/h.log" 2>&1 ||
		{ cat "$d/h.log"; exit 1; }
	qt=$(jq -r '.results[] | select(.command == "quern") | .median' "$d/h.json")
	st=$(jq -r '.results[] | select(.command == "spm") | .median' "$d/h.json")
	# shellcheck disable=SC2086
	qm=$(rss $q)
	# shellcheck disable=SC2086
	sm=$(rss $s)
	ntok=$(jq -r .n_tokens "$d/quern-tokenizer.json")
	mb=$(wc -c <"$file" | awk '{ printf "%.1f", $1 / 1e6 }')
	awk -v n="$name" -v mb="$mb" -v v="$v" -v j="$j" -v qt="$qt" -v st="$st" -v qm="$qm" -v sm="$sm" -v nt="$ntok" 'BEGIN {
		printf "%-8s %4s  %6d %3d  %8.2f %8.2f  %6.1fx  %8.1f %8.1f  %8.2fx  %d\n", n, mb, v, j, qt, st, st / qt, qm, sm, qm / sm, nt
	}' | tee -a "$res"
}

for v in $vocabs; do
	for j in $threads; do
		bench zipf "$zipf" "$v" "$j" --lines
	done
done
for j in $threads; do
	bench neardup "$nd.txt" 8192 "$j" --lines
done
# quern on the JSONL (its own input format): the same text plus JSON parsing.
for j in $threads; do
	cat "$nd.jsonl" >/dev/null
	q="$QTRAIN -j $j --vocab-size 8192 -o $d $nd.jsonl"
	hyperfine -N --runs "$runs" --export-json "$d/h.json" -n quern "$q" >"$d/h.log" 2>&1 || { cat "$d/h.log"; exit 1; }
	# shellcheck disable=SC2086
	awk -v t="$(jq -r '.results[0].median' "$d/h.json")" -v m="$(rss $q)" -v j="$j" 'BEGIN {
		printf "neardup JSONL input: quern -j %d %.2f s, peak RSS %.1f MB (compare with spm on the text above)\n", j, t, m
	}' | tee -a "$res"
done
say ""
say "speedup = spm s / quern s; RSS ratio = quern MB / spm MB (target: speedup >= 3, RSS ratio <= 1)"
say "results: $res"
