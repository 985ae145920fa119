#!/bin/sh
# bench/run_status.sh BUILD - quern-run status on a pipeline whose deps hold
# 10,000 files (acceptance 2): warm (hash cache filled, nothing changed) and
# cold (no cache: every file read and hashed) against sha256sum over the same
# files, the cold baseline (DVC is not packaged by Debian, so `dvc status`
# is not measured). Medians of R runs (default 5) with hyperfine when it is
# there, else of `date` differences. FILES and KB set the corpus (default
# 10000 files of 16 KB, 160 MB).
set -eu
B=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
files=${FILES:-10000}
kb=${KB:-16}
runs=${R:-5}
w="$top/bench/out/run_status"
R="$B/bin/quern-run"
rm -rf "$w"
mkdir -p "$w/data"
cd "$w"
echo "== $files files of $kb KB in $w/data"
awk -v n="$files" 'BEGIN { for (i = 0; i < n; i++) printf "%03d/f%05d.txt\n", i % 100, i }' |
	sed 's|/.*||' | sort -u | sed 's|^|data/|' | xargs mkdir -p
head -c $((kb * 1024)) /dev/urandom >seed.bin
i=0
while [ $i -lt "$files" ]; do
	d=$(printf '%03d' $((i % 100)))
	{ cat seed.bin; echo "$i"; } >"data/$d/f$(printf '%05d' $i).txt"
	i=$((i + 1))
done
cat >pipeline.yaml <<'EOF'
stages:
  count:
    cmd: find data -type f | wc -l > count.txt
    deps: [data]
    outs: [count.txt]
EOF
sleep 2 # files younger than 2 s are not cached (their mtime could still tick)
"$R" run -q
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
timeit() { # command... -> median seconds over $runs runs (prep: $PREP)
	for k in $(seq "$runs"); do
		[ -n "${PREP:-}" ] && sh -c "$PREP"
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || true
		e=$(date +%s.%N)
		echo "$s $e" | awk '{ printf "%.4f\n", $2 - $1 }'
	done | median
}
warm=$(PREP= timeit "$R" status)
cold=$(PREP="rm -f '$w/.quern-run/cache'" timeit "$R" status)
sha=$(PREP= timeit sh -c "find data -type f -print0 | xargs -0 sha256sum >/dev/null")
"$R" status >/dev/null && st=up-to-date || st=stale
echo "quern-run status, warm cache:   ${warm} s  ($st)"
echo "quern-run status, cold cache:   ${cold} s"
echo "sha256sum over the same files:  ${sha} s  (find | xargs sha256sum, one process)"
echo "(medians of $runs runs; $(nproc) CPUs)"
