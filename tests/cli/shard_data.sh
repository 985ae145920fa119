# shard_data.sh - --shard I/N for quern-clean: a corpus with exact and near
# duplicates planted across shards, cleaned as 4 shards, merged with
# dedup-merge and filtered with apply-removals, keeps exactly what a
# single-process run keeps (byte-identical in shard order), for the keep
# rules first and longest; bad --shard values and mismatched signatures.
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

