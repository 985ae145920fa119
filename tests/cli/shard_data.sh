# shard_data.sh - --shard I/N for the data tools (docs/sharding.md).
# quern-clean: a corpus with exact and near duplicates planted across
# shards, cleaned as 4 shards, merged with dedup-merge and filtered with
# apply-removals, keeps exactly what a single-process run keeps
# (byte-identical in shard order), for the keep rules first and longest,
# and merge-stats makes the single run's --stats file from the shards'
# stats (also for the demo corpus and chain, and with steps after the
# dedup steps that change the text, reject duplicates again, count PII and
# languages); bad --shard values, mismatched signatures, old signature
# versions, and stats that do not belong together. quern-ingest: 4 shards of
# JSONL (cut by line) and of HTML/CSV/mbox/text files (whole) concatenate to
# the single run's output, for -j 1 and -j 3. quern-tokenize: encode --shard
# then merge gives the single encode's shard files, tables and splits;
# merges of different tokenizers are refused.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"

same() { if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi; }

# 200 documents in 3 files: 60 bases, copies and one-word edits of them
# spread across the files (so across shards), and unique ones.
awk 'BEGIN {
	srand(5); split("alpha beta gamma delta epsilon zeta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega river stone cloud forest", w, " ");
	for (b = 0; b < 60; b++) { t = ""; for (k = 0; k < 80; k++) t = t (k ? " " : "") w[1 + int(rand() * 27)]; base[b] = t }
	for (i = 0; i < 200; i++) {
		r = rand(); b = int(rand() * 60)
		if (r < 0.15) t = base[b]
		else if (r < 0.3) { t = base[b]; sub(/ [a-z]+ /, " changed ", t) }
		else { t = ""; for (k = 0; k < 80; k++) t = t (k ? " " : "") w[1 + int(rand() * 27)]; t = t " unique" i }
		f = sprintf("'"$T"'/in%d.jsonl", int(i / 67))
		printf "{\"id\":\"d%04d\",\"text\":\"%s\",\"source\":\"gen\",\"added\":\"2024-01-01T00:00:00Z\",\"metadata\":{}}\n", i, t > f
	}
}'
IN="$T/in0.jsonl $T/in1.jsonl $T/in2.jsonl"

# same_stats NAME A B: two --stats files hold the same values (key order aside).
same_stats() {
	jq -S . "$2" >"$T/sa.json" && jq -S . "$3" >"$T/sb.json" || { fail "$1" "not JSON"; return; }
	if cmp -s "$T/sa.json" "$T/sb.json"; then pass "$1"
	else fail "$1" "$(diff "$T/sa.json" "$T/sb.json" | head -20 | tr '\n' ' ')"; fi
}

run_sharded() { # TAG OPTIONS...: single run and 4 shards + merge + apply + merge-stats
	tag=$1; shift
	"$Q" "$@" --no-manifest --stats "$T/$tag.sstats" -o "$T/$tag.single" -r "$T/$tag.srej" $IN
	mkdir -p "$T/$tag"
	for i in 0 1 2 3; do
		"$Q" "$@" --no-manifest --shard $i/4 --signatures "$T/$tag/$i.sig" --stats "$T/$tag/$i.stats" \
			-o "$T/$tag/$i.jsonl" -r "$T/$tag/$i.rej" $IN || fail "$tag: shard $i" "exit $?"
	done
	expect_rc "$tag: dedup-merge (signatures in any order)" 0 "$Q" dedup-merge -o "$T/$tag/m" \
		"$T/$tag/2.sig" "$T/$tag/0.sig" "$T/$tag/3.sig" "$T/$tag/1.sig"
	for i in 0 1 2 3; do
		# The folder with --shard, and (shard 1) the list's own path.
		if [ $i -eq 1 ]; then list="$T/$tag/m/shard-0000$i.removals.jsonl"; else list="$T/$tag/m --shard $i/4"; fi
		"$Q" apply-removals --removals $list --stats "$T/$tag/$i.astats" \
			-o "$T/$tag/$i.out" -r "$T/$tag/$i.arej" "$T/$tag/$i.jsonl" ||
			fail "$tag: apply $i" "exit $?"
	done
	cat "$T/$tag"/?.out >"$T/$tag.sharded"
	same "$tag: kept documents equal the single run's, in order" "$T/$tag.single" "$T/$tag.sharded"
	sort "$T/$tag.srej" >"$T/$tag.a"
	cat "$T/$tag"/?.rej "$T/$tag"/?.arej | sort >"$T/$tag.b"
	[ -n "${SKIP_REJ:-}" ] || same "$tag: rejects equal the single run's (sorted)" "$T/$tag.a" "$T/$tag.b"
	expect_rc "$tag: merge-stats" 0 "$Q" merge-stats --dedup "$T/$tag/m" -o "$T/$tag.mstats" \
		"$T/$tag"/?.stats "$T/$tag"/?.astats
	# Every documents_* field, in total, per step and per reason, as a single run.
	docs='[paths(numbers) as $p | select($p[-1] | tostring | test("^documents")) | [$p, getpath($p)]] | sort'
	jq -c "$docs" "$T/$tag.sstats" >"$T/$tag.sdocs"
	jq -c "$docs" "$T/$tag.mstats" >"$T/$tag.mdocs"
	if [ -s "$T/$tag.sdocs" ] && [ "$(jq length "$T/$tag.sdocs")" -gt 10 ]; then
		same "$tag: merged document counts equal the single run's" "$T/$tag.sdocs" "$T/$tag.mdocs"
	else fail "$tag: document counts" "none found"; fi
	# And everything else too: bytes, counters, languages.
	same_stats "$tag: merged stats equal the single run's --stats" "$T/$tag.sstats" "$T/$tag.mstats"
}

run_sharded first --steps normalize,exact_dedup,near_dedup,length
n=$(grep -c '"duplicate"' "$T/first.srej"); m=$(grep -c near_duplicate "$T/first.srej")
if [ "$n" -gt 3 ] && [ "$m" -gt 3 ]; then pass "corpus has exact ($n) and near ($m) duplicates"
else fail "corpus has exact and near duplicates" "$n exact, $m near"; fi
# Some duplicate pair must really straddle shards: its kept copy is elsewhere.
x=0
for i in 0 1 2 3; do
	for id in $(jq -r 'select(.step) | .duplicate_of' "$T/first/m/shard-0000$i.removals.jsonl"); do
		grep -q "\"id\": *\"$id\"" "$T/first/$i.jsonl" || x=$((x + 1))
	done
done
if [ "$x" -gt 0 ]; then pass "duplicates across shards ($x)"; else fail "duplicates across shards" "none"; fi
run_sharded longest --steps normalize,exact_dedup,near_dedup --keep longest
if jq -e '.steps[1].rejected.duplicate.documents > 3 and .steps[2].rejected.near_duplicate.documents > 3
	and .steps[2].counters.clusters > 0' "$T/longest.mstats" >/dev/null; then
	pass "longest: merged stats count exact and near duplicates and clusters"
else fail "longest: merged stats count duplicates" "$(head -c 300 "$T/longest.mstats")"; fi

# A step before the dedup steps rejects 120 short documents: the single
# run's LSH index still has a node for each (320, so 512 slots), the
# merge's only for the 200 that reached it (256 slots); merge-stats gives
# the single run's index_bytes from the document count.
i=0
while [ $i -lt 120 ]; do
	printf '{"id":"s%04d","text":"tiny %d","source":"gen","added":"2024-01-01T00:00:00Z","metadata":{}}\n' $i $i
	i=$((i + 1))
done >"$T/short.jsonl"
printf 'steps:\n  - normalize: {}\n  - length: {min_chars: 100}\n  - exact_dedup: {}\n  - near_dedup: {}\n' >"$T/early.yaml"
IN_ALL=$IN
IN="$T/in0.jsonl $T/short.jsonl $T/in1.jsonl $T/in2.jsonl"
run_sharded early -c "$T/early.yaml"
IN=$IN_ALL
if jq -e '.steps[1].rejected.too_short.documents == 120 or ([.steps[1].rejected[].documents] | add) == 120' \
	"$T/early.sstats" >/dev/null; then pass "early: 120 documents rejected before the dedup steps"
else fail "early: rejected before the dedup steps" "$(jq -c '.steps[1]' "$T/early.sstats")"; fi

# Steps after the dedup steps that change the text (PII pseudonyms), count
# languages and PII, and reject again (bad words): a duplicate the shard
# rejects later is counted as the single run counts it, as a duplicate.
for f in 0 1 2; do sed 's/ alpha / alpha bob@example.com /' "$T/in$f.jsonl" >"$T/pii$f.jsonl"; done
printf 'changed\nriver\n' >"$T/bad.txt"
printf '0123456789abcdef0123456789abcdef\n' >"$T/key.txt"
IN0=$IN
IN="$T/pii0.jsonl $T/pii1.jsonl $T/pii2.jsonl"
SKIP_REJ=1 run_sharded later --steps normalize,exact_dedup,length,near_dedup,lang,pii,c4_badwords \
	--bad-words "$T/bad.txt" --pii pseudonym --pii-key-file "$T/key.txt" --keep longest
IN=$IN0
n=$(jq -s '[.[] | select(.metadata.reject.step == "c4_badwords")] | length' "$T/later"/?.rej)
m=$(jq '.steps[6].rejected[].documents' "$T/later.sstats")
if [ "$n" -gt "$m" ] && jq -e '.steps[5].counters.EMAIL > 0 and (.steps[4].languages | length) > 0' \
	"$T/later.mstats" >/dev/null; then
	pass "later: duplicates rejected again by a later step ($n vs $m), PII and languages counted"
else fail "later: duplicates rejected later" "$n shard rejects, single run $m"; fi

# The bundled demo corpus, ingested as the demo does, with its chain.
"$I" -q --text-field body --id-field review_id -o "$T/demo.jsonl" "$QN_TOP/examples/corpus"
IN="$T/demo.jsonl"
run_sharded demo --steps normalize,exact_dedup,near_dedup,pii
IN=$IN0
if jq -e '.documents_in > 20 and .documents_rejected > 0' "$T/demo.mstats" >/dev/null; then
	pass "demo: the merged stats count removals"
else fail "demo: removals" "$(head -c 300 "$T/demo.mstats")"; fi

# A crafted signature file whose header claims a dedup step its step chain
# does not have (it once made dedup-merge read outside a buffer).
expect_rc "dedup-merge: header and step chain disagree: exit 1" 1 "$Q" dedup-merge -o "$T/mh" \
	"$QN_TOP/tests/fuzz/corpus/fuzz_dsig/chain_without_exact"
grep_in "dedup-merge: header and step chain disagree: named" "$T/err" \
	"chain_without_exact': the header's dedup steps are not its step chain's"

# dedup-merge reads each file twice: a pipe is refused before it is opened
# (a second open would wait for a writer). A merge that fails while reading
# leaves an earlier merge's folder whole; one that fails while writing
# leaves no dedup-stats.json (it is removed first and written last).
mkfifo "$T/fifo.sig"
cp -r "$T/first/m" "$T/mf"
expect_rc "dedup-merge: a pipe: exit 1" 1 "$Q" dedup-merge -o "$T/mf" "$T/first/0.sig" \
	"$T/fifo.sig" "$T/first/2.sig" "$T/first/3.sig"
grep_in "dedup-merge: a pipe: named" "$T/err" "fifo.sig' is not a regular file"
cp "$T/first/1.sig" "$T/cut.sig"
truncate -s 100 "$T/cut.sig"
expect_rc "dedup-merge over an earlier merge, failing: exit 1" 1 "$Q" dedup-merge -o "$T/mf" \
	"$T/first/0.sig" "$T/cut.sig" "$T/first/2.sig" "$T/first/3.sig"
check "a merge failing while reading leaves the earlier one whole" diff -r "$T/first/m" "$T/mf"

# merge-stats: inputs that do not belong together.
M="$Q merge-stats"
expect_rc "merge-stats: different steps: exit 1" 1 $M --dedup "$T/first/m" -o "$T/x.json" \
	"$T/first/0.stats" "$T/longest/1.stats" "$T/first/2.stats" "$T/first/3.stats" "$T/first"/?.astats
grep_in "merge-stats: different steps: both named" "$T/err" \
	"'.*longest/1.stats' and '.*first/0.stats' ran different steps"
printf 'not json\n' >"$T/bad.json"
expect_rc "merge-stats: not JSON: exit 1" 1 $M --dedup "$T/first/m" -o "$T/x.json" \
	"$T/first"/?.stats "$T/bad.json" "$T/first"/?.astats
grep_in "merge-stats: not JSON: named" "$T/err" "cannot read '.*bad.json'"
expect_rc "merge-stats: not a stats file: exit 1" 1 $M "$T/first/m/dedup-stats.json"
grep_in "merge-stats: not a stats file: named" "$T/err" "dedup-stats.json' is not a quern-clean stats file"
expect_rc "merge-stats: a missing file: exit 1" 1 $M --dedup "$T/first/m" "$T/nope.json"
grep_in "merge-stats: a missing file: named" "$T/err" "nope.json"
expect_rc "merge-stats: a shard's stats missing: exit 1" 1 $M --dedup "$T/first/m" \
	"$T/first/0.stats" "$T/first/1.stats" "$T/first/3.stats" "$T/first"/?.astats
grep_in "merge-stats: a shard's stats missing: named" "$T/err" "stats of shard 2/4 are missing"
expect_rc "merge-stats: a shard twice: exit 1" 1 $M --dedup "$T/first/m" \
	"$T/first"/?.stats "$T/first/0.stats" "$T/first"/?.astats
expect_rc "merge-stats: apply-removals stats missing: exit 1" 1 $M --dedup "$T/first/m" \
	"$T/first"/?.stats "$T/first/0.astats"
grep_in "merge-stats: apply-removals stats missing: named" "$T/err" "apply-removals stats of shard 1/4 are missing"
expect_rc "merge-stats: no apply-removals stats: exit 1" 1 $M --dedup "$T/first/m" "$T/first"/?.stats
expect_rc "merge-stats: dedup shards without --dedup: exit 2" 2 $M "$T/first"/?.stats
expect_rc "merge-stats: corrections of another run: exit 1" 1 $M --dedup "$T/first/m" \
	"$T/first"/?.stats "$T/longest"/?.astats
expect_rc "merge-stats without files: exit 2" 2 $M -o "$T/x.json"
expect_rc "merge-stats: a bad flag: exit 2" 2 $M --bogus "$T/first/0.stats"
expect_rc "merge-stats --help: exit 0" 0 $M --help
grep_in "merge-stats --help: usage" "$T/out" "usage: quern-clean merge-stats"
expect_rc "merge-stats to /dev/full: exit 1" 1 $M --dedup "$T/first/m" -o /dev/full \
	"$T/first"/?.stats "$T/first"/?.astats
# Without dedup steps, the shards' stats just add up.
"$Q" --steps normalize,length --no-manifest --stats "$T/nd.s" -o /dev/null $IN
for i in 0 1 2; do
	"$Q" --steps normalize,length --no-manifest --shard $i/3 --stats "$T/nd.$i" -o /dev/null $IN
done
expect_rc "merge-stats: no dedup steps: exit 0" 0 $M -o "$T/nd.m" "$T/nd.0" "$T/nd.1" "$T/nd.2"
same_stats "merge-stats: no dedup steps: the single run's stats" "$T/nd.s" "$T/nd.m"
# (the first documents_in is the top-level one; jq would round the number)
for i in 0 1; do
	sed '0,/"documents_in": *[0-9]*/s//"documents_in": 9223372036854775807/' "$T/nd.$i" >"$T/big.$i"
done
expect_rc "merge-stats: counts whose sum overflows: exit 1" 1 $M -o "$T/x.json" "$T/big.0" "$T/big.1" "$T/nd.2"
grep_in "merge-stats: the overflow is named" "$T/err" "documents_in: the sum overflows"

# apply-removals: the folder and --shard, checked.
expect_rc "apply-removals --removals DIR without --shard: exit 2" 2 "$Q" apply-removals \
	--removals "$T/first/m" "$T/first/0.jsonl"
expect_rc "apply-removals: a merge of another shard count: exit 1" 1 "$Q" apply-removals \
	--removals "$T/first/m" --shard 0/3 -o "$T/x.jsonl" "$T/first/0.jsonl"
grep_in "apply-removals: another shard count: dedup-stats.json named" "$T/err" \
	"dedup-stats.json' is a merge of 4 shards, not 3"
expect_rc "apply-removals: the list of another shard: exit 1" 1 "$Q" apply-removals \
	--removals "$T/first/m/shard-00001.removals.jsonl" --shard 2/4 -o "$T/x.jsonl" "$T/first/2.jsonl"
grep_in "apply-removals: the list of another shard: named" "$T/err" "removal list of shard 1/4, not 2/4"
expect_rc "apply-removals: a bad --shard: exit 2" 2 "$Q" apply-removals \
	--removals "$T/first/m" --shard 4/4 "$T/first/0.jsonl"
expect_rc "apply-removals: a folder that is no merge: exit 1" 1 "$Q" apply-removals \
	--removals "$T/first" --shard 0/4 "$T/first/0.jsonl"
grep_in "apply-removals: a folder that is no merge: named" "$T/err" "first/dedup-stats.json"
k=
for i in 0 1 2 3; do
	[ "$(head -n 1 "$T/first/m/shard-0000$i.removals.jsonl" | jq .removed_from_output)" -gt 0 ] && k=$i
done
head -n 2 "$T/first/${k:-0}.jsonl" >"$T/part.jsonl"
if [ -n "$k" ]; then
	expect_rc "apply-removals --stats on part of the shard's output: exit 1" 1 "$Q" apply-removals \
		--removals "$T/first/m" --shard $k/4 --stats "$T/x.json" -o "$T/x.jsonl" "$T/part.jsonl"
	grep_in "apply-removals --stats on part of the output: named" "$T/err" "whole output"
else fail "apply-removals --stats on part of the output" "no shard has removals"; fi

# Bad --shard values: usage errors.
for bad in 4/4 1/0 x 1/ -1/2 2/1x; do
	expect_rc "--shard $bad: exit 2" 2 "$Q" --shard "$bad" "$T/in0.jsonl"
done
expect_rc "--shard with dedup but no --signatures: exit 2" 2 "$Q" --shard 0/2 "$T/in0.jsonl"
expect_rc "--signatures without --shard: exit 2" 2 "$Q" --signatures "$T/x.sig" "$T/in0.jsonl"
expect_rc "--shard with --dedup-index: exit 2" 2 "$Q" --shard 0/2 --signatures "$T/x.sig" \
	--dedup-index "$T/idx" "$T/in0.jsonl"

# Mismatched signatures: different bands, a shard missing, a shard twice.
printf 'steps:\n  - normalize\n  - exact_dedup\n  - near_dedup: {bands: 10, rows: 5}\n' >"$T/b10.yaml"
"$Q" -c "$T/b10.yaml" --no-manifest --shard 1/4 --signatures "$T/b10.sig" -o /dev/null $IN
expect_rc "dedup-merge: different bands: exit 1" 1 "$Q" dedup-merge -o "$T/mm" \
	"$T/first/0.sig" "$T/b10.sig" "$T/first/2.sig" "$T/first/3.sig"
grep_in "dedup-merge: different bands: named" "$T/err" "different dedup parameters"
expect_rc "dedup-merge: a shard missing: exit 1" 1 "$Q" dedup-merge -o "$T/mm" \
	"$T/first/0.sig" "$T/first/2.sig" "$T/first/3.sig"
grep_in "dedup-merge: a shard missing: named" "$T/err" "shard 1/4 is missing"
expect_rc "dedup-merge: a shard twice: exit 1" 1 "$Q" dedup-merge -o "$T/mm" \
	"$T/first/0.sig" "$T/first/0.sig"
expect_rc "dedup-merge: not a signature file: exit 1" 1 "$Q" dedup-merge -o "$T/mm" "$T/in0.jsonl"
expect_rc "dedup-merge without -o: exit 2" 2 "$Q" dedup-merge "$T/first/0.sig"
# A signature file of another version is refused, with both versions named.
cp "$T/first/0.sig" "$T/v1.sig"
printf '\001\000\000\000' | dd of="$T/v1.sig" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_rc "dedup-merge: an old signature version: exit 1" 1 "$Q" dedup-merge -o "$T/mm" \
	"$T/v1.sig" "$T/first/1.sig" "$T/first/2.sig" "$T/first/3.sig"
grep_in "dedup-merge: an old signature version: named" "$T/err" "v1.sig': signature version 1, this quern-clean reads 2"
# Shards with different steps (same dedup parameters) do not merge.
"$Q" --steps normalize,exact_dedup,near_dedup --no-manifest --shard 1/4 --signatures "$T/steps.sig" \
	-o /dev/null $IN
expect_rc "dedup-merge: different steps: exit 1" 1 "$Q" dedup-merge -o "$T/mm" \
	"$T/first/0.sig" "$T/steps.sig" "$T/first/2.sig" "$T/first/3.sig"
grep_in "dedup-merge: different steps: named" "$T/err" "were made with different steps"


# ---- quern-ingest --shard ------------------------------------------------
export SOURCE_DATE_EPOCH=1700000000
mkdir -p "$T/ing/mix"
# JSONL with ids from line numbers (no "id"), blank lines, a bad line, and a
# last line without '\n'; two files so a shard boundary falls in each.
awk 'BEGIN { for (i = 0; i < 300; i++) { if (i == 50) print ""; if (i == 77) print "not json";
	printf "{\"body\":\"record %d %s\"}\n", i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26) } }' >"$T/ing/a.jsonl"
awk 'BEGIN { for (i = 0; i < 120; i++) printf "{\"body\":\"second %d\",\"n\":%d}\n", i, i }' >"$T/ing/b.jsonl"
printf '{"body":"last, no newline"}' >>"$T/ing/b.jsonl"
ingest_sharded() { # TAG -j N OPTIONS... INPUTS: single run vs 4 shards, concatenated
	tag=$1; shift
	"$I" --no-manifest "$@" >"$T/ing/$tag.single" 2>"$T/ing/$tag.serr"
	src=$?
	: >"$T/ing/$tag.sharded"
	: >"$T/ing/$tag.sherr"
	for i in 0 1 2 3; do
		"$I" --no-manifest --shard $i/4 "$@" >>"$T/ing/$tag.sharded" 2>>"$T/ing/$tag.sherr"
		rc=$?
		[ "$rc" -eq 0 ] || [ "$rc" -eq "$src" ] || fail "$tag: shard $i" "exit $rc, single $src"
	done
	same "ingest $tag: shards concatenated equal the single run" "$T/ing/$tag.single" "$T/ing/$tag.sharded"
	sort "$T/ing/$tag.serr" >"$T/ing/$tag.a"
	sort "$T/ing/$tag.sherr" >"$T/ing/$tag.b"
	same "ingest $tag: same messages (whole-file line numbers)" "$T/ing/$tag.a" "$T/ing/$tag.b"
}
ingest_sharded jsonl -j 1 --text-field body "$T/ing/a.jsonl" "$T/ing/b.jsonl"
ingest_sharded jsonl-j3 -j 3 --text-field body "$T/ing/a.jsonl" "$T/ing/b.jsonl"
grep_in "ingest jsonl: the bad line is named with its whole-file number" "$T/ing/jsonl.sherr" 'line 79:'
if jq -e -s 'length == 421 and ([.[].metadata.line] | max) == 302' "$T/ing/jsonl.sharded" >/dev/null; then
	pass "ingest jsonl: every record once, line metadata as in a whole-file run"
else fail "ingest jsonl: every record once" "$(wc -l <"$T/ing/jsonl.sharded") lines"; fi
n=0
for i in 0 1 2 3; do
	"$I" --no-manifest --shard $i/4 --text-field body "$T/ing/a.jsonl" "$T/ing/b.jsonl" 2>/dev/null |
		grep -q . && n=$((n + 1))
done
if [ "$n" -eq 4 ]; then pass "ingest jsonl: every shard has records"; else fail "ingest jsonl: every shard has records" "$n of 4"; fi
# Other formats go whole to the shard that owns their first byte.
C="$QN_TOP/examples/corpus"
cp -r "$C/html" "$C/notes" "$C/tickets.csv" "$C/support.mbox" "$C/feed.rss" "$T/ing/mix/"
cp "$T/ing/a.jsonl" "$T/ing/mix/z.jsonl"
ingest_sharded mix -j 1 --text-field body "$T/ing/mix"
ingest_sharded mix-j3 -j 3 --text-field body "$T/ing/mix"
for f in tickets.csv support.mbox; do
	n=0
	for i in 0 1 2 3; do
		"$I" --no-manifest --shard $i/4 "$T/ing/mix" 2>/dev/null | grep -q "$f" && n=$((n + 1))
	done
	if [ "$n" -eq 1 ]; then pass "ingest: $f goes whole to one shard"; else fail "ingest: $f whole" "in $n shards"; fi
done
for bad in 4/4 1/0 x 1/ -1/2 2/1x; do
	expect_rc "ingest --shard $bad: exit 2" 2 "$I" --shard "$bad" "$T/ing/a.jsonl"
done
expect_rc "ingest --shard with --state: exit 2" 2 "$I" --shard 0/2 --state "$T/ing/st.db" "$T/ing/a.jsonl"

# ---- quern-tokenize encode --shard + merge --------------------------------
K="$QN_BIN/quern-tokenize"
"$QN_TESTS/gen_neardup" 200 3 >"$T/tk.jsonl"
"$K" train --vocab-size 600 --special '<|endoftext|>' --special '<|im_start|>' \
	--special '<|im_end|>' -o "$T/tok" "$T/tk.jsonl" 2>/dev/null
"$K" train --vocab-size 700 --special '<|endoftext|>' -o "$T/tok2" "$T/tk.jsonl" 2>/dev/null
# Examples with tasks, string labels and preference pairs spread over the
# file, so each shard meets them in its own order.
awk 'BEGIN { split("pos neg neutral", L, " "); split("math chat qa", K, " ");
	for (i = 0; i < 160; i++) {
		r = i % 5
		if (r == 0) printf "{\"id\":\"e%d\",\"text\":\"labelled example %d\",\"label\":\"%s\"}\n", i, i, L[1 + int(i / 55)]
		else if (r == 1) printf "{\"id\":\"e%d\",\"prompt\":\"question %d\",\"completion\":\"answer %d\",\"task\":\"%s\"}\n", i, i, i, K[1 + int(i / 60)]
		else if (r == 2) printf "{\"id\":\"e%d\",\"prompt\":\"pick %d\",\"chosen\":\"good %d\",\"rejected\":\"bad %d\"}\n", i, i, i, i
		else printf "{\"id\":\"e%d\",\"text\":\"plain document number %d with some words\"}\n", i, i
	} }' >"$T/tex.jsonl"
TIN="$T/tk.jsonl $T/tex.jsonl"
expect_rc "tokenize encode: single run" 0 "$K" encode -t "$T/tok" --val-fraction 0.2 \
	--shard-size 8K -o "$T/tk1" $TIN
for i in 0 1 2 3; do
	"$K" encode -t "$T/tok" --val-fraction 0.2 --shard-size 8K --shard $i/4 -j 2 \
		-o "$T/tks$i" $TIN 2>"$T/tks.err" || fail "tokenize encode --shard $i/4" "exit $?"
done
jq -e '.tasks != ["default","math","chat","qa"]' "$T/tks2/manifest.json" >/dev/null &&
	pass "tokenize: a shard's task table differs from the whole run's" ||
	fail "tokenize: a shard's task table differs" "$(jq -c .tasks "$T/tks2/manifest.json")"
expect_rc "tokenize merge: exit 0" 0 "$K" merge --shard-size 8K -o "$T/tkm" \
	"$T/tks0" "$T/tks1" "$T/tks2" "$T/tks3"
"$K" inspect "$T/tk1" >"$T/tk1.json"
"$K" inspect "$T/tkm" >"$T/tkm.json"
same "tokenize merge: inspect equals the single encode's" "$T/tk1.json" "$T/tkm.json"
jq -e '.splits.val.documents > 0 and .tasks == ["default","math","chat","qa"] and
	.labels == ["pos","neg","neutral"]' "$T/tkm.json" >/dev/null &&
	pass "tokenize merge: val split, tasks and labels present" ||
	fail "tokenize merge: val split, tasks and labels" "$(head -c 300 "$T/tkm.json")"
x=0
for f in "$T"/tk1/*.qsh; do cmp -s "$f" "$T/tkm/${f##*/}" || x=$((x + 1)); done
n1=$(ls "$T"/tk1/*.qsh | wc -l); nm=$(ls "$T"/tkm/*.qsh | wc -l)
if [ "$x" -eq 0 ] && [ "$n1" -eq "$nm" ] && [ "$n1" -gt 2 ]; then
	pass "tokenize merge: shard files byte-identical to the single encode's ($n1)"
else fail "tokenize merge: shard files identical" "$x of $n1 differ, $nm files"; fi
jq -S . "$T/tk1/manifest.json" >"$T/tk1.man"
jq -S . "$T/tkm/manifest.json" >"$T/tkm.man"
same "tokenize merge: manifest.json equals the single encode's" "$T/tk1.man" "$T/tkm.man"
expect_rc "tokenize merge: verify" 0 "$K" verify "$T/tkm"
for s in train val; do
	"$K" export --format llmc --split $s "$T/tk1" "$T/tk1.$s.bin" 2>/dev/null
	"$K" export --format llmc --split $s "$T/tkm" "$T/tkm.$s.bin" 2>/dev/null
	same "tokenize merge: $s tokens equal the single encode's" "$T/tk1.$s.bin" "$T/tkm.$s.bin"
done
"$K" encode -t "$T/tok2" --val-fraction 0.2 -o "$T/tko" "$T/tk.jsonl" 2>/dev/null
expect_rc "tokenize merge: different tokenizers: exit 1" 1 "$K" merge -o "$T/tkx" "$T/tks0" "$T/tko"
grep_in "tokenize merge: different tokenizers: named" "$T/err" "different tokenizers"
expect_rc "tokenize merge: not a shard directory: exit 1" 1 "$K" merge -o "$T/tkx" "$T/tks0" "$T/ing"
expect_rc "tokenize merge into an input: exit 1" 1 "$K" merge -o "$T/tks0" "$T/tks0" "$T/tks1"
expect_rc "tokenize merge without -o: exit 2" 2 "$K" merge "$T/tks0"
expect_rc "tokenize merge without inputs: exit 2" 2 "$K" merge -o "$T/tkx"
for bad in 4/4 1/0 x 2/1x; do
	expect_rc "tokenize --shard $bad: exit 2" 2 "$K" encode -t "$T/tok" --shard "$bad" -o "$T/tkx" "$T/tk.jsonl"
done
expect_rc "tokenize ids --shard: exit 2" 2 "$K" ids -t "$T/tok" --shard 0/2 "$T/tk.jsonl"
