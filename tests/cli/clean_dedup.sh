# clean_dedup.sh - quern-clean's exact and near-duplicate removal: the keep
# rules, near-dup quality on the generated corpus (with and without
# --verify), the persistent index across runs and its lock, and output that
# does not depend on -j or on the run.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"
GEN="$QN_TESTS/gen_neardup"
EVAL="$QN_TESTS/neardup_eval"

jqs_ok() {
	if jq -s -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq -s '$3' false on $2: $(head -c 300 "$2")"; fi
}
jq_ok() {
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 300 "$2")"; fi
}
same() { # NAME A B: the two files are byte-identical
	if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi
}
# kept_rej NAME OUT REJ "kept ids" "rejected-id:duplicate_of ...": exactly
# these kept, and each reject names the right document.
kept_rej() {
	k=$(jq -r .id "$2" | tr '\n' ' ' | sed 's/ $//')
	r=$(jq -r '.id + ":" + .metadata.reject.duplicate_of' "$3" | tr '\n' ' ' | sed 's/ $//')
	if [ "$k" = "$4" ] && [ "$r" = "$5" ]; then pass "$1"; else fail "$1" "kept '$k' rejected '$r', want '$4' and '$5'"; fi
}

# Exact duplicates (equal after normalize): each rule keeps another one.
cat >"$T/exact.jsonl" <<'J'
{"id":"a","text":"the same text here","created":"2020-01-01T00:00:00Z","metadata":{"prio":1}}
{"id":"b","text":"  the same   text here ","created":"2023-06-01T00:00:00Z","metadata":{"prio":3}}
{"id":"c","text":"the same text here","created":"2021-01-01T00:00:00+00:00","metadata":{"prio":5}}
{"id":"d","text":"the same text here","created":"2023-06-01T03:00:00+05:00","metadata":{"prio":5}}
{"id":"e","text":"another text"}
J
X="--steps normalize,exact_dedup"
expect_rc "exact, keep first: exit 0" 0 "$Q" $X -o "$T/x1.jsonl" -r "$T/r1.jsonl" "$T/exact.jsonl"
kept_rej "exact, keep first" "$T/x1.jsonl" "$T/r1.jsonl" "a e" "b:a c:a d:a"
jqs_ok "exact: reject has step, reason, duplicate_of" "$T/r1.jsonl" \
	'all(.[]; .metadata.reject == {"step": "exact_dedup", "reason": "duplicate", "duplicate_of": "a"})'
expect_rc "exact, keep longest: exit 0" 0 "$Q" $X --keep longest -o "$T/x2.jsonl" -r "$T/r2.jsonl" "$T/exact.jsonl"
kept_rej "exact, keep longest: equal texts, the first stays" "$T/x2.jsonl" "$T/r2.jsonl" "a e" "b:a c:a d:a"
expect_rc "exact, keep newest: exit 0" 0 "$Q" $X --keep newest -o "$T/x3.jsonl" -r "$T/r3.jsonl" "$T/exact.jsonl"
kept_rej "exact, keep newest (offsets honoured)" "$T/x3.jsonl" "$T/r3.jsonl" "b e" "a:b c:b d:b"
expect_rc "exact, keep priority: exit 0" 0 "$Q" $X --keep priority:prio -o "$T/x4.jsonl" -r "$T/r4.jsonl" "$T/exact.jsonl"
kept_rej "exact, keep priority (a tie goes to the earliest)" "$T/x4.jsonl" "$T/r4.jsonl" "c e" "a:c b:c d:c"

# A missing or non-numeric priority ranks below every number.
cat >"$T/nan.jsonl" <<'J'
{"id":"m1","text":"same text"}
{"id":"m2","text":"same text","metadata":{"prio":"high"}}
{"id":"m3","text":"same text","metadata":{"prio":-5}}
{"id":"m4","text":"same text","prio":-1}
J
expect_rc "priority, missing values: exit 0" 0 "$Q" --steps exact_dedup --keep priority:prio -o "$T/n.jsonl" -r "$T/nr.jsonl" "$T/nan.jsonl"
kept_rej "priority: missing ranks lowest, top-level field read" "$T/n.jsonl" "$T/nr.jsonl" "m4" "m1:m4 m2:m4 m3:m4"
expect_rc "newest, no dates: exit 0" 0 "$Q" --steps exact_dedup --keep newest -o "$T/n2.jsonl" -r "$T/nr2.jsonl" "$T/nan.jsonl"
kept_rej "newest without dates: the first stays" "$T/n2.jsonl" "$T/nr2.jsonl" "m1" "m2:m1 m3:m1 m4:m1"

# Near duplicates: a base text and variants; each rule keeps another one.
words() { # N SEED: N distinct letter-only words (digits would fold to 0)
	awk -v n="$1" -v s="$2" 'BEGIN { for (i = 0; i < n; i++) { k = i * 7 + s; w = ""; do { w = w sprintf("%c", 97 + k % 26); k = int(k / 26) } while (k > 0); printf "%s%sx", (i ? " " : ""), w } }'
}
A=$(words 100 11)
{
	printf '{"id":"n1","text":"%s","created":"2020-01-01T00:00:00Z","metadata":{"prio":1}}\n' "$A"
	printf '{"id":"n2","text":"%s and three more","created":"2021-01-01T00:00:00Z","metadata":{"prio":2}}\n' "$A"
	printf '{"id":"n3","text":"changed %s","created":"2024-01-01T00:00:00Z","metadata":{"prio":3}}\n' "${A#* }"
	printf '{"id":"n4","text":"%s different","created":"2022-01-01T00:00:00Z","metadata":{"prio":9}}\n' "${A% *}"
	printf '{"id":"n5","text":"%s"}\n' "$(words 100 5000)"
	printf '{"id":"n6","text":"%s","created":"2025-01-01T00:00:00Z","metadata":{"prio":99}}\n' "$A"
	printf '{"id":"s1","text":"four words only here"}\n{"id":"s2","text":"four words only here"}\n{"id":"s3","text":"four words only, here!"}\n'
} >"$T/near.jsonl"
N="--steps normalize,exact_dedup,near_dedup"
# n6 is an exact copy of n1: exact_dedup removes one of the two, and the
# other stands for both in near_dedup.
expect_rc "near, keep first: exit 0" 0 "$Q" $N -o "$T/y1.jsonl" -r "$T/s1.jsonl" --stats "$T/ns1.json" "$T/near.jsonl"
kept_rej "near, keep first" "$T/y1.jsonl" "$T/s1.jsonl" "n1 n5 s1 s3" "n2:n1 n3:n1 n4:n1 n6:n1 s2:s1"
jqs_ok "near: reject step and reason" "$T/s1.jsonl" \
	'[.[] | select(.id != "n6" and .id != "s2")] | all(.[]; .metadata.reject == {"step": "near_dedup", "reason": "near_duplicate", "duplicate_of": "n1"})'
jqs_ok "near: the kept one has cluster_id and cluster_size" "$T/y1.jsonl" \
	'.[0].metadata.cluster_id == "n1" and .[0].metadata.cluster_size == 4 and all(.[1:][]; .metadata.cluster_size == null)'
jq_ok "near: too short documents stay out of clusters" "$T/ns1.json" \
	'(.steps[] | select(.step == "near_dedup") | .documents_in == 7 and (.counters | .clusters == 1 and .documents_in_clusters == 4))'
# s2, removed by exact_dedup, never reaches near_dedup: too_short counts s1 and s3.
jq_ok "near: too_short counts only documents that reached near_dedup" "$T/ns1.json" \
	'(.steps[] | select(.step == "near_dedup") | .counters.too_short) == 2'
expect_rc "near, keep longest: exit 0" 0 "$Q" $N --keep longest -o "$T/y2.jsonl" -r "$T/s2.jsonl" "$T/near.jsonl"
kept_rej "near, keep longest" "$T/y2.jsonl" "$T/s2.jsonl" "n2 n5 s1 s3" "n1:n2 n3:n2 n4:n2 n6:n1 s2:s1"
expect_rc "near, keep newest: exit 0" 0 "$Q" $N --keep newest -o "$T/y3.jsonl" -r "$T/s3.jsonl" "$T/near.jsonl"
kept_rej "near, keep newest (an exact group stands as its kept document)" "$T/y3.jsonl" "$T/s3.jsonl" "n5 n6 s1 s3" "n1:n6 n2:n6 n3:n6 n4:n6 s2:s1"
expect_rc "near, keep priority: exit 0" 0 "$Q" $N --keep priority:prio -o "$T/y4.jsonl" -r "$T/s4.jsonl" "$T/near.jsonl"
kept_rej "near, keep priority" "$T/y4.jsonl" "$T/s4.jsonl" "n5 n6 s1 s3" "n1:n6 n2:n6 n3:n6 n4:n6 s2:s1"
expect_rc "near without exact_dedup: exit 0" 0 "$Q" --steps normalize,near_dedup -o "$T/y5.jsonl" -r "$T/s5.jsonl" "$T/near.jsonl"
kept_rej "near without exact_dedup: copies are near duplicates, short ones stay" "$T/y5.jsonl" "$T/s5.jsonl" "n1 n5 s1 s2 s3" "n2:n1 n3:n1 n4:n1 n6:n1"

# Near-dup quality on the generated corpus (acceptance 2): the rejects'
# duplicate_of links judged against the exact-Jaccard truth.
"$GEN" -t "$T/truth.tsv" 3000 >"$T/corpus.jsonl"
expect_rc "generated corpus: exit 0" 0 "$Q" -j 2 $N -o "$T/c-kept.jsonl" -r "$T/c-rej.jsonl" "$T/corpus.jsonl"
expect_rc "generated corpus: recall and precision >= 0.95" 0 "$EVAL" --clusters "$T/c-kept.jsonl,$T/c-rej.jsonl" "$T/corpus.jsonl" "$T/truth.tsv"
grep_in "generated corpus: evaluated" "$T/out" "^recall_cluster="
expect_rc "generated corpus --verify: exit 0" 0 "$Q" -j 2 $N --verify --stats "$T/cv.json" -o "$T/v-kept.jsonl" -r "$T/v-rej.jsonl" "$T/corpus.jsonl"
expect_rc "generated corpus --verify: recall >= 0.95, precision >= 0.99" 0 "$EVAL" --verify --clusters "$T/v-kept.jsonl,$T/v-rej.jsonl" "$T/corpus.jsonl" "$T/truth.tsv"
jq_ok "--verify: pairs were verified" "$T/cv.json" '(.steps[] | select(.step == "near_dedup") | .counters.verified_pairs) > 0'

# Incremental (acceptance 3): corpus A with an index, then B repeating and
# near-repeating part of A, and new documents.
D="$T/index"
head -n 300 "$T/corpus.jsonl" >"$T/A.jsonl"
expect_rc "run A with --dedup-index: exit 0" 0 "$Q" $N --dedup-index "$D" -o "$T/A-kept.jsonl" -r "$T/A-rej.jsonl" "$T/A.jsonl"
check "the index is written" test -s "$D/index.qdx"
{
	sed -n '1,5p' "$T/A-kept.jsonl" | jq -c '{id: ("B-exact-" + .id), text}'
	sed -n '6,10p' "$T/A-kept.jsonl" | jq -c '{id: ("B-near-" + .id), text: ("A short new opening line. " + .text + " And a few more words at the end.")}'
	"$GEN" 40 7 | jq -c '{id: ("B-new-" + .id), text}'
} >"$T/B.jsonl"
cp "$D/index.qdx" "$T/index-after-A.qdx"
expect_rc "run B with --dedup-index: exit 0" 0 "$Q" $N --dedup-index "$D" -o "$T/B-kept.jsonl" -r "$T/B-rej.jsonl" "$T/B.jsonl"
jqs_ok "B: repeats of A removed as duplicates of A's documents" "$T/B-rej.jsonl" \
	'[.[] | select(.id | startswith("B-exact-"))] | length == 5 and all(.[]; .metadata.reject.step == "exact_dedup" and .metadata.reject.duplicate_of == (.id | ltrimstr("B-exact-")))'
jqs_ok "B: near repeats of A removed, naming A's documents" "$T/B-rej.jsonl" \
	'[.[] | select(.id | startswith("B-near-"))] | length == 5 and all(.[]; .metadata.reject.step == "near_dedup" and .metadata.reject.duplicate_of == (.id | ltrimstr("B-near-")))'
jqs_ok "B: new documents are never duplicates of A" "$T/B-rej.jsonl" \
	'all(.[] | select(.id | startswith("B-new-")); .metadata.reject.duplicate_of | startswith("B-new-"))'
jqs_ok "B: new documents kept" "$T/B-kept.jsonl" 'length > 20 and all(.[]; .id | startswith("B-new-"))'
if cmp -s "$D/index.qdx" "$T/index-after-A.qdx"; then fail "B: the index grew" "unchanged"; else pass "B: the index grew"; fi
# Earlier runs' documents always stay, whatever the keep rule.
expect_rc "A with keep longest: exit 0" 0 "$Q" $N --keep longest --dedup-index "$T/index2" -o "$T/A2.jsonl" "$T/A.jsonl"
sed -n '1,5p' "$T/A2.jsonl" | jq -c '{id: ("B-near-" + .id), text: (.text + " And a few more words at the end.")}' >"$T/B2.jsonl"
expect_rc "B with keep longest: exit 0" 0 "$Q" $N --keep longest --dedup-index "$T/index2" -o "$T/B2-kept.jsonl" -r "$T/B2-rej.jsonl" "$T/B2.jsonl"
jqs_ok "keep longest: a longer new copy does not replace an earlier run's document" "$T/B2-rej.jsonl" \
	'[.[] | select(.id | startswith("B-near-"))] | length == 5 and all(.[]; .metadata.reject.duplicate_of == (.id | ltrimstr("B-near-")))'
# A run whose parameters differ is refused; the index stays.
printf 'steps:\n  - normalize\n  - exact_dedup\n  - near_dedup: {bands: 20, rows: 5}\n' >"$T/b20.yaml"
expect_rc "index with other parameters: exit 1" 1 "$Q" -c "$T/b20.yaml" --dedup-index "$D" -o "$T/p.jsonl" "$T/B.jsonl"
grep_in "index with other parameters: says so" "$T/err" "14 bands x 8 rows, this run uses 20 x 5"
check "index with other parameters: no output" test ! -e "$T/p.jsonl"

# The lock: a second run on the same folder exits 75 and changes nothing.
cp "$D/index.qdx" "$T/index-before.qdx"
printf 'old\n' >"$T/locked.jsonl"
rm -f "$T/ready" "$T/done"
flock "$D/lock" sh -c ": >'$T/ready'; i=0; while [ ! -e '$T/done' ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done" &
holder=$!
i=0
while [ ! -e "$T/ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_rc "index locked: exit 75" 75 "$Q" $N --dedup-index "$D" -o "$T/locked.jsonl" "$T/B.jsonl"
grep_in "index locked: says so" "$T/err" "^quern-clean: $D: locked by another quern-clean run"
grep_in "index locked: the old output stays" "$T/locked.jsonl" "^old$"
same "index locked: the index unchanged" "$D/index.qdx" "$T/index-before.qdx"
: >"$T/done"
wait "$holder"
expect_rc "lock released: runs again" 0 "$Q" $N --dedup-index "$D" -o "$T/unlocked.jsonl" "$T/B.jsonl"

# Determinism (acceptance 7): the same output, rejects and stats for every
# -j and every rerun, with every kind of step and some bad lines. (The
# e-mail addresses differ in letters: line_dedup folds digits.)
cat >"$T/rules.yaml" <<'Y'
rules:
  - {name: drop-it, pattern: 'zazazu', action: drop}
  - {name: tag-it, pattern: '\bthe the\b', action: tag}
  - {name: redact-it, pattern: '\d{4}', action: redact}
Y
{
	head -n 800 "$T/corpus.jsonl" | jq -c 'if (.id | test("3$")) then .text += "\nPlease write to " + (.id | explode | map(if . >= 48 and . <= 57 then . + 49 else . end) | implode) + "@example.com about it." elif (.id | test("77$")) then .text += " zazazu." else . end'
	printf '{"id":"bad", "text": nope}\n{"text":"no id, kept with one from its text"}\n'
} >"$T/det.jsonl"
for j in 1 2 3; do
	"$Q" -j $j --no-manifest --lang en --line-dedup 20 --rules "$T/rules.yaml" --keep longest \
		-o "$T/d$j.jsonl" -r "$T/dr$j.jsonl" --stats "$T/ds$j.json" "$T/det.jsonl" 2>"$T/de$j.txt"
	echo $? >"$T/drc$j"
done
# A rerun.
"$Q" -j 2 --no-manifest --lang en --line-dedup 20 --rules "$T/rules.yaml" --keep longest \
	-o "$T/d4.jsonl" -r "$T/dr4.jsonl" --stats "$T/ds4.json" "$T/det.jsonl" 2>"$T/de4.txt"
echo $? >"$T/drc4"
grep_in "determinism: exit 1 for the bad line" "$T/drc1" "^1$"
grep_in "determinism: the bad line named" "$T/de1.txt" "det.jsonl:801: "
jqs_ok "determinism: the run removes and redacts" "$T/d1.jsonl" 'any(.[]; .metadata.pii.EMAIL == 1) and any(.[]; .metadata.cluster_size >= 2)'
for j in 2 3 4; do
	what="-j $j"
	[ $j -eq 4 ] && what="rerun"
	same "determinism $what: output" "$T/d1.jsonl" "$T/d$j.jsonl"
	same "determinism $what: rejects" "$T/dr1.jsonl" "$T/dr$j.jsonl"
	same "determinism $what: stats" "$T/ds1.json" "$T/ds$j.json"
	same "determinism $what: messages" "$T/de1.txt" "$T/de$j.txt"
	same "determinism $what: exit status" "$T/drc1" "$T/drc$j"
done
for j in 1 3; do
	"$Q" -j $j --no-manifest $N --verify -o "$T/v$j.jsonl" -r "$T/vr$j.jsonl" --stats "$T/vs$j.json" "$T/det.jsonl" 2>/dev/null
done
same "determinism --verify -j 3: output" "$T/v1.jsonl" "$T/v3.jsonl"
same "determinism --verify -j 3: rejects" "$T/vr1.jsonl" "$T/vr3.jsonl"
same "determinism --verify -j 3: stats" "$T/vs1.json" "$T/vs3.json"
