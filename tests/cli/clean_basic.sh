# clean_basic.sh - quern-clean's default chain end to end: every document
# comes out kept or rejected, rejects say why, the stats add up; stdin, a
# missing file, a full disk, compressed files, the manifest, usage errors.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"

# jq_ok NAME FILE EXPR: jq -e EXPR holds on the file (one JSON value);
# jqs_ok the same over a JSON Lines file read as one array (-s).
jq_ok() {
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 300 "$2")"; fi
}
jqs_ok() {
	if jq -s -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq -s '$3' false on $2: $(head -c 300 "$2")"; fi
}
same() { # NAME A B: the two files are byte-identical
	if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi
}

# A corpus the default chain mostly keeps (generated prose with
# near-duplicate families), plus documents that particular steps remove.
"$QN_TESTS/gen_neardup" 200 >"$T/gen.jsonl"
first=$(head -n 1 "$T/gen.jsonl" | jq -r .id)
# Documents of no family: changing them makes no near-duplicate.
u1=$(jq -r 'select(.metadata.op == "unrelated") | .id' "$T/gen.jsonl" | sed -n 1p)
u2=$(jq -r 'select(.metadata.op == "unrelated") | .id' "$T/gen.jsonl" | sed -n 2p)
jq -c --arg u1 "$u1" --arg u2 "$u2" '
	if .id == $u1 then .text += "\nPlease write to jane.doe@example.com for the details."
	elif .id == $u2 then .text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" + .text
	else . end' "$T/gen.jsonl" >"$T/in.jsonl"
head -n 1 "$T/gen.jsonl" | jq -c '.id = "copy-of-first"' >>"$T/in.jsonl"
printf '{"id":"short","text":"This note is far too short to be a document: it has only twenty words, which the Gopher rules find wanting.","metadata":{"k":1}}\n' >>"$T/in.jsonl"
n_in=$(wc -l <"$T/in.jsonl" | tr -d ' ')

expect_rc "default chain: exit 0" 0 "$Q" -o "$T/out.jsonl" -r "$T/rej.jsonl" --stats "$T/stats.json" "$T/in.jsonl"
if [ -s "$T/err" ]; then fail "default chain: silent" "$(head -c 300 "$T/err")"; else pass "default chain: silent"; fi
n_out=$(wc -l <"$T/out.jsonl" | tr -d ' ')
n_rej=$(wc -l <"$T/rej.jsonl" | tr -d ' ')
if [ "$((n_out + n_rej))" -eq "$n_in" ]; then pass "kept + rejected = input"; else fail "kept + rejected = input" "$n_out + $n_rej != $n_in"; fi
if [ "$n_out" -gt 100 ] && [ "$n_rej" -gt 10 ]; then pass "default chain keeps most, removes some"; else fail "default chain keeps most, removes some" "$n_out kept, $n_rej removed"; fi
ids_in=$(jq -r .id "$T/in.jsonl" | sort | tr '\n' ' ')
ids_out=$(cat "$T/out.jsonl" "$T/rej.jsonl" | jq -r .id | sort | tr '\n' ' ')
if [ "$ids_in" = "$ids_out" ]; then pass "every id comes out once"; else fail "every id comes out once" "ids differ"; fi
jqs_ok "output is JSON objects with text and metadata" "$T/out.jsonl" 'all(.[]; (.text | type) == "string" and (.metadata | type) == "object")'
jqs_ok "no kept document has a reject" "$T/out.jsonl" 'all(.[]; .metadata.reject == null)'
jqs_ok "every reject names a step of the chain and a reason" "$T/rej.jsonl" \
	'all(.[]; (.metadata.reject.step | IN("exact_dedup", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality", "near_dedup")) and (.metadata.reject.reason | type == "string" and length > 0))'
jqs_ok "metadata is the last key" "$T/rej.jsonl" 'all(.[]; keys_unsorted[-1] == "metadata")'
jqs_ok "exact copy: duplicate of the first" "$T/rej.jsonl" \
	'any(.[]; .id == "copy-of-first" and .metadata.reject == {"step": "exact_dedup", "reason": "duplicate", "duplicate_of": "'"$first"'"})'
jqs_ok "short document: gopher_short_doc" "$T/rej.jsonl" \
	'any(.[]; .id == "short" and .metadata.reject == {"step": "gopher_quality", "reason": "gopher_short_doc"} and .metadata.k == 1)'
jqs_ok "lorem ipsum: c4_quality rejects it" "$T/rej.jsonl" \
	'any(.[]; .id == "'"$u2"'" and .metadata.reject == {"step": "c4_quality", "reason": "lorem_ipsum"})'
jqs_ok "near duplicates removed, naming a kept document" "$T/rej.jsonl" \
	'[.[] | select(.metadata.reject.reason == "near_duplicate" and (.metadata.reject.duplicate_of | type) == "string")] | length > 10'
kept_ids=$(jq -r .id "$T/out.jsonl" | sort -u)
bad_dup=$(jq -r 'select(.metadata.reject.reason == "near_duplicate") | .metadata.reject.duplicate_of' "$T/rej.jsonl" | sort -u | while read -r d; do
	printf '%s\n' "$kept_ids" | grep -qx "$d" || echo "$d"
done)
if [ -z "$bad_dup" ]; then pass "duplicate_of names kept documents"; else fail "duplicate_of names kept documents" "not kept: $bad_dup"; fi
jqs_ok "kept cluster heads carry cluster_id and cluster_size" "$T/out.jsonl" \
	'[.[] | select(.metadata.cluster_size != null)] | length > 10 and all(.[]; .metadata.cluster_size >= 2 and .metadata.cluster_id == .id)'
jqs_ok "PII redacted in the output" "$T/out.jsonl" \
	'any(.[]; .id == "'"$u1"'" and (.text | contains("<EMAIL>")) and (.text | contains("jane.doe") | not) and .metadata.pii == {"EMAIL": 1})'

# The stats: per step in and out, reasons, and they add up.
S="$T/stats.json"
jq_ok "stats: the default chain's steps in order" "$S" \
	'[.steps[].step] == ["normalize", "exact_dedup", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality", "near_dedup", "pii"]'
jq_ok "stats: documents_in is the input" "$S" ".documents_in == $n_in and .bad_lines == 0"
jq_ok "stats: documents_out and documents_rejected match the files" "$S" ".documents_out == $n_out and .documents_rejected == $n_rej"
jq_ok "stats: every step has documents and bytes in and out" "$S" \
	'all(.steps[]; (.documents_in, .documents_out, .bytes_in, .bytes_out | type == "number") and (.rejected | type == "object") and (.counters | type == "object"))'
jq_ok "stats: each step's in is the previous step's out" "$S" \
	'.steps as $s | all(range(1; $s | length); $s[.].documents_in == $s[. - 1].documents_out and $s[.].bytes_in == $s[. - 1].bytes_out)'
jq_ok "stats: in - out = rejected, per step" "$S" \
	'all(.steps[]; .documents_in - .documents_out == ([.rejected[].documents] | add // 0))'
jq_ok "stats: the steps' rejects add up to documents_rejected" "$S" \
	'([.steps[].rejected[].documents] | add) == .documents_rejected and ([.steps[].rejected[].bytes] | add) == .bytes_rejected'
jq_ok "stats: first and last step match the totals" "$S" \
	'.steps[0].documents_in == .documents_in and .steps[0].bytes_in == .bytes_in and .steps[-1].documents_out == .documents_out and .steps[-1].bytes_out == .bytes_out'
jq_ok "stats: reasons counted" "$S" \
	'(.steps[] | select(.step == "exact_dedup") | .rejected.duplicate.documents) >= 1 and (.steps[] | select(.step == "gopher_quality") | .rejected.gopher_short_doc.documents) == 1 and (.steps[] | select(.step == "c4_quality") | .rejected.lorem_ipsum.documents) == 1'
jq_ok "stats: pii counted" "$S" '(.steps[] | select(.step == "pii") | .counters.EMAIL) == 1'
jq_ok "stats: bytes_out is the output's text bytes" "$S" ".bytes_out == $(jq -j .text "$T/out.jsonl" | wc -c)"

# The manifest beside -o; none with --no-manifest.
M="$T/out.jsonl.manifest.json"
jq_ok "manifest written beside -o" "$M" '.tool == "quern-clean"'
sha=$(sha256sum "$T/out.jsonl" | cut -d' ' -f1)
jq_ok "manifest has the output's sha256" "$M" "any(.outputs[]; .sha256 == \"$sha\")"
jq_ok "manifest has the stats and the chain" "$M" '(.stats.documents_in | type) == "number" and (.config | test("near_dedup"))'
expect_rc "--no-manifest: exit 0" 0 "$Q" --no-manifest -o "$T/nm.jsonl" "$T/in.jsonl"
check "--no-manifest writes none" test ! -e "$T/nm.jsonl.manifest.json"
same "--no-manifest: same output" "$T/out.jsonl" "$T/nm.jsonl"

# Standard input, by - and by nothing; compressed input and output.
expect_rc "stdin via -: exit 0" 0 sh -c "'$Q' - <'$T/in.jsonl' >'$T/stdin.jsonl'"
same "stdin via -: same output" "$T/out.jsonl" "$T/stdin.jsonl"
expect_rc "stdin with no file: exit 0" 0 sh -c "'$Q' <'$T/in.jsonl' >'$T/stdin2.jsonl'"
same "stdin with no file: same output" "$T/out.jsonl" "$T/stdin2.jsonl"
zstd -q -c "$T/in.jsonl" >"$T/in.jsonl.zst"
gzip -c "$T/in.jsonl" >"$T/in.jsonl.gz"
expect_rc ".zst in, .zst out: exit 0" 0 "$Q" -o "$T/z.jsonl.zst" "$T/in.jsonl.zst"
zstd -q -d -c "$T/z.jsonl.zst" >"$T/z.jsonl"
same ".zst output decompresses to the same" "$T/out.jsonl" "$T/z.jsonl"
expect_rc ".gz in: exit 0" 0 sh -c "'$Q' '$T/in.jsonl.gz' >'$T/gz.jsonl'"
same ".gz input: same output" "$T/out.jsonl" "$T/gz.jsonl"
expect_rc "compressed stdin: exit 0" 0 sh -c "'$Q' <'$T/in.jsonl.zst' >'$T/zin.jsonl'"
same "compressed stdin: same output" "$T/out.jsonl" "$T/zin.jsonl"
# Two inputs are one corpus: the second file's copies of the first's are removed.
expect_rc "two inputs: exit 0" 0 "$Q" -o "$T/two.jsonl" -r "$T/two-rej.jsonl" "$T/in.jsonl" "$T/in.jsonl"
same "two inputs: the second is all duplicates" "$T/out.jsonl" "$T/two.jsonl"

# A document without an id gets one from its text: 32 hex digits, the same
# on every run.
printf '{"text":"alpha"}\n{"id":null,"text":"beta"}\n{"text":"alpha","source":"s"}\n' >"$T/noid.jsonl"
expect_rc "no id: exit 0" 0 "$Q" --steps length -o "$T/noid1.jsonl" "$T/noid.jsonl"
jqs_ok "no id: one from the text" "$T/noid1.jsonl" \
	'all(.[]; .id | test("^[0-9a-f]{32}$")) and .[0].id == .[2].id and .[0].id != .[1].id and (.[0] | keys_unsorted[-1]) == "metadata"'
"$Q" --steps length -o "$T/noid2.jsonl" "$T/noid.jsonl" 2>/dev/null
same "no id: the same id on a rerun" "$T/noid1.jsonl" "$T/noid2.jsonl"

# A missing file; a full disk.
expect_rc "missing file: exit 1" 1 "$Q" "$T/nope.jsonl"
grep_in "missing file named" "$T/err" "^quern-clean: cannot open '$T/nope.jsonl'"
# STYLE.md: many inputs, keep going past a bad one, report it, exit 1.
printf '{"id":"x","text":"a lone document"}\n' >"$T/one.jsonl"
expect_rc "missing file among others: exit 1" 1 "$Q" --steps normalize -o "$T/some.jsonl" "$T/one.jsonl" "$T/nope.jsonl"
grep_in "missing file among others: the others still written" "$T/some.jsonl" '"id":"x"'
expect_rc "stdout to a full disk: exit 1" 1 sh -c "'$Q' '$T/in.jsonl' >/dev/full"
grep_in "full disk message" "$T/err" "No space left"
expect_rc "-o /dev/full: exit 1" 1 "$Q" -o /dev/full "$T/in.jsonl"
expect_rc "--rejects /dev/full: exit 1" 1 "$Q" -o "$T/rf.jsonl" -r /dev/full "$T/in.jsonl"
check "--rejects /dev/full: no output committed" test ! -e "$T/rf.jsonl"
expect_rc "--stats to a missing folder: exit 1" 1 "$Q" --stats "$T/no/such/s.json" "$T/one.jsonl"

# Usage errors: one line and a pointer to --help, exit 2.
for bad in "-j x" "-j -1" "--keep oldest" "--threshold 2" "--threshold x" "--pii maybe" \
	"--line-dedup 0" "--max-line 10" "--steps normalize,bogus" "--skip bogus"; do
	# shellcheck disable=SC2086
	expect_rc "usage error $bad: exit 2" 2 "$Q" $bad "$T/one.jsonl"
	grep_in "usage error $bad: says try --help" "$T/err" "try 'quern-clean --help'"
done
expect_rc "--steps with --config: exit 2" 2 "$Q" --steps normalize -c "$T/none.yaml" "$T/one.jsonl"
expect_rc "-v: exit 0" 0 "$Q" -v --steps normalize "$T/one.jsonl"
grep_in "-v: a summary" "$T/err" "1 documents in, 1 kept, 0 removed, 0 bad lines"
