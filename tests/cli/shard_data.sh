# shard_data.sh - --shard I/N for the data tools (docs/sharding.md).
# quern-clean: a corpus with exact and near duplicates planted across
# shards, cleaned as 4 shards, merged with dedup-merge and filtered with
# apply-removals, keeps exactly what a single-process run keeps
# (byte-identical in shard order), for the keep rules first and longest;
# bad --shard values and mismatched signatures. quern-ingest: 4 shards of
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

run_sharded() { # TAG OPTIONS...: single run and 4 shards + merge + apply
	tag=$1; shift
	"$Q" "$@" --no-manifest -o "$T/$tag.single" -r "$T/$tag.srej" $IN
	mkdir -p "$T/$tag"
	for i in 0 1 2 3; do
		"$Q" "$@" --no-manifest --shard $i/4 --signatures "$T/$tag/$i.sig" \
			-o "$T/$tag/$i.jsonl" -r "$T/$tag/$i.rej" $IN || fail "$tag: shard $i" "exit $?"
	done
	expect_rc "$tag: dedup-merge (signatures in any order)" 0 "$Q" dedup-merge -o "$T/$tag/m" \
		"$T/$tag/2.sig" "$T/$tag/0.sig" "$T/$tag/3.sig" "$T/$tag/1.sig"
	for i in 0 1 2 3; do
		"$Q" apply-removals --removals "$T/$tag/m/shard-0000$i.removals.jsonl" \
			-o "$T/$tag/$i.out" -r "$T/$tag/$i.arej" "$T/$tag/$i.jsonl" ||
			fail "$tag: apply $i" "exit $?"
	done
	cat "$T/$tag"/?.out >"$T/$tag.sharded"
	same "$tag: kept documents equal the single run's, in order" "$T/$tag.single" "$T/$tag.sharded"
	sort "$T/$tag.srej" >"$T/$tag.a"
	cat "$T/$tag"/?.rej "$T/$tag"/?.arej | sort >"$T/$tag.b"
	same "$tag: rejects equal the single run's (sorted)" "$T/$tag.a" "$T/$tag.b"
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
