# audit_lineage.sh - quern-audit lineage over a pipeline the real tools
# build: two sources ingested and cleaned apart, tokenized alone and merged,
# a tiny model trained on one branch. The chain verifies; one changed byte,
# a deleted file and a changed shard are named; --source lists exactly what
# derives from a source (and nothing only the other one feeds); --artifact
# walks back to the sources; paths resolve from another directory and in a
# moved copy; bad manifests, usage errors and a full disk.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"

jq_ok() { # NAME FILE EXPR: jq -e EXPR holds on the file (one JSON value)
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 300 "$2")"; fi
}
# same_list NAME FILE WANT...: the file's lines, sorted, are exactly WANT.
same_list() {
	name=$1 file=$2
	shift 2
	got=$(sort "$file" | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "got [$got], want [$want]"; fi
}

check "quern-audit is built" test -x "$A"

# ---- the fixture pipeline ---------------------------------------------------------
# Sentences of a small grammar (awk's generator is seeded: the same on every run).
gen() { # SEED N DIR
	mkdir -p "$3"
	awk -v seed="$1" -v ndocs="$2" -v dir="$3" 'BEGIN {
		srand(seed)
		na = split("big small red old happy quiet", adj, " ")
		nn = split("cat dog bird fox child farmer", noun, " ")
		nv = split("sees chases likes finds helps follows", verb, " ")
		for (d = 0; d < ndocs; d++) {
			s = ""
			ns = 8 + int(rand() * 6)
			for (k = 0; k < ns; k++)
				s = s (k ? " " : "") "The " adj[1 + int(rand() * na)] " " noun[1 + int(rand() * nn)] " " \
					verb[1 + int(rand() * nv)] " the " noun[1 + int(rand() * nn)] " by the river."
			print s > (dir "/doc" d ".txt")
		}
	}'
}
P="$T/p"
mkdir -p "$P"
gen 3 12 "$P/src_a"
gen 5 12 "$P/src_b"
cp "$P/src_a/doc0.txt" "$P/src_a/copy.txt" # an exact duplicate for clean to remove
printf '<html><head><title>Note</title></head><body><p>%s</p></body></html>\n' \
	'Write to jane.doe@example.com about the fox and the farmer who follows the river every morning.' \
	>"$P/src_b/page.html"
STEPS=--steps=normalize,exact_dedup,lang,pii
(
	cd "$P" || exit 1
	"$QN_BIN/quern-ingest" -o a.jsonl src_a &&
		"$QN_BIN/quern-ingest" -o b.jsonl src_b &&
		"$QN_BIN/quern-clean" $STEPS -o a.clean.jsonl -r a.rej.jsonl --stats a.stats.json a.jsonl &&
		"$QN_BIN/quern-clean" $STEPS -o b.clean.jsonl -r b.rej.jsonl --stats b.stats.json b.jsonl &&
		"$QN_BIN/quern-tokenize" train --vocab-size 300 -o tok a.clean.jsonl b.clean.jsonl &&
		"$QN_BIN/quern-tokenize" encode -t tok -o sh_a a.clean.jsonl &&
		"$QN_BIN/quern-tokenize" encode -t tok -o sh_ab a.clean.jsonl b.clean.jsonl &&
		"$QN_BIN/quern-train" init -t tok --layers 2 --heads 2 --width 32 --context 32 --seed 1 -o m0 &&
		"$QN_BIN/quern-train" fit m0 --data sh_a -o m1 --steps 2 --batch 2 --save-every 2 --eval-batches 1
) >"$T/build.log" 2>&1 && pass "fixture pipeline built" || fail "fixture pipeline built" "$(tail -c 300 "$T/build.log")"
for f in a.jsonl.manifest.json b.clean.jsonl.manifest.json sh_a/run.manifest.json sh_ab/run.manifest.json \
	m1/run.manifest.json; do
	check "fixture: $f" test -s "$P/$f"
done
cp -r "$P" "$T/pristine"

cd "$P" || exit 1

# ---- verification -------------------------------------------------------------------
expect_rc "lineage: the whole chain verifies (folder)" 0 "$A" lineage .
if [ -s "$T/out" ] || [ -s "$T/err" ]; then fail "lineage: silent when all is well" "$(head -c 300 "$T/out" "$T/err")"; else pass "lineage: silent when all is well"; fi
expect_rc "lineage: manifests named one by one verify" 0 "$A" lineage a.jsonl.manifest.json \
	b.jsonl.manifest.json a.clean.jsonl.manifest.json b.clean.jsonl.manifest.json \
	sh_a/run.manifest.json sh_ab/run.manifest.json m0/run.manifest.json m1/run.manifest.json
expect_rc "lineage --json: exit 0" 0 "$A" lineage --json .
cp "$T/out" "$T/ok.json"
jq_ok "lineage --json: eight manifests, ok" "$T/ok.json" '(.manifests | length) == 8 and .ok == true and .verified == true'
jq_ok "lineage --json: nothing changed or missing" "$T/ok.json" '.changed == [] and .missing == [] and .unreadable == []'
jq_ok "lineage --json: shard files counted as tokenize outputs" "$T/ok.json" \
	'[.manifests[] | select(.path == "sh_a/run.manifest.json") | .outputs] == [2]'
expect_rc "lineage -v: lists what matched" 0 "$A" lineage -v .
grep_in "lineage -v: ok lines on stderr" "$T/err" '^quern-audit: ok: a\.clean\.jsonl$'

# Paths recorded relative to each run's directory resolve from elsewhere.
(cd / && "$A" lineage "$P") >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && pass "lineage: verifies from another working directory" || fail "lineage: verifies from another working directory" "exit $rc: $(head -c 300 "$T/out" "$T/err")"
mv "$T/pristine" "$T/moved"
expect_rc "lineage: a moved copy of the whole tree verifies" 0 "$A" lineage "$T/moved"

# One changed byte of an intermediate file: named, with both hashes.
cp a.clean.jsonl "$T/a.clean.keep"
printf 'X' | dd of=a.clean.jsonl bs=1 seek=20 conv=notrunc 2>/dev/null
expect_rc "changed byte: exit 1" 1 "$A" lineage .
grep_in "changed byte: the file named" "$T/out" '^changed: a\.clean\.jsonl \(manifest a\.clean\.jsonl\.manifest\.json says sha256 [0-9a-f]{64}, file has [0-9a-f]{64}\)$'
lines "changed byte: one line, once (three manifests record it)" "$T/out" 1
expect_rc "changed byte --json: exit 1" 1 "$A" lineage --json .
jq_ok "changed byte --json: path, manifest and both hashes" "$T/out" \
	'.ok == false and (.changed | length) == 1 and .changed[0].path == "a.clean.jsonl" and (.changed[0].sha256 != .changed[0].recorded_sha256)'
cp "$T/a.clean.keep" a.clean.jsonl
expect_rc "changed byte undone: exit 0" 0 "$A" lineage .

# A missing file, a shortened one, a changed shard.
mv b.rej.jsonl "$T/b.rej.keep"
expect_rc "missing file: exit 1" 1 "$A" lineage .
grep_in "missing file: named" "$T/out" '^missing: b\.rej\.jsonl \(manifest b\.clean\.jsonl\.manifest\.json\)$'
mv "$T/b.rej.keep" b.rej.jsonl
cp b.jsonl "$T/b.keep"
head -c 100 "$T/b.keep" >b.jsonl
expect_rc "shortened file: exit 1" 1 "$A" lineage .
grep_in "shortened file: sizes named" "$T/out" '^changed: b\.jsonl \(manifest b\.jsonl\.manifest\.json says [0-9]+ bytes, file has 100\)$'
cp "$T/b.keep" b.jsonl
shard=$(cd sh_ab && ls train-*.qsh | head -n 1)
cp "sh_ab/$shard" "$T/shard.keep"
printf 'X' | dd of="sh_ab/$shard" bs=1 seek=90 conv=notrunc 2>/dev/null
expect_rc "changed shard: exit 1" 1 "$A" lineage .
grep_in "changed shard: named against the shard manifest" "$T/out" "^changed: sh_ab/$shard \\(manifest sh_ab/(run\\.)?manifest.json says sha256"
cp "$T/shard.keep" "sh_ab/$shard"
rm src_b/doc3.txt
expect_rc "a deleted source: exit 1" 1 "$A" lineage .
grep_in "a deleted source: missing" "$T/out" '^missing: src_b/doc3\.txt'
expect_rc "a deleted source: --no-verify answers anyway" 0 "$A" lineage --no-verify --source src_b/doc3.txt .
grep_in "a deleted source: still traced by path" "$T/out" '^derived: b\.jsonl '
cp "$T/moved/src_b/doc3.txt" src_b/doc3.txt
expect_rc "restored: exit 0" 0 "$A" lineage .

# ---- --source: an erasure request -----------------------------------------------------
expect_rc "--source a file of A: exit 0" 0 "$A" lineage --json --source src_a/doc3.txt .
jq -r '.sources[0].derived[] | select(.kind != "directory") | .path' "$T/out" >"$T/derived"
same_list "--source src_a/doc3.txt: exactly A's artifacts" "$T/derived" a.jsonl a.clean.jsonl a.rej.jsonl \
	sh_a/manifest.json "sh_a/$(cd sh_a && ls train-*.qsh)" sh_ab/manifest.json "sh_ab/$shard" \
	m1/config.json m1/model.safetensors
jq -r '.sources[0].derived[] | select(.kind == "directory") | .path' "$T/out" >"$T/dirs"
same_list "--source src_a/doc3.txt: the run folders" "$T/dirs" sh_a sh_ab m1
jq_ok "--source: kinds" "$T/out" '[.sources[0].derived[] | {(.path): .kind}] | add |
	.["a.jsonl"] == "documents" and .["sh_a/manifest.json"] == "shards" and .["m1/model.safetensors"] == "checkpoint"'
jq_ok "--source: the runs that read it" "$T/out" '.sources[0].runs | index("m1/run.manifest.json") != null and index("b.clean.jsonl.manifest.json") == null'

expect_rc "--source a file of B: exit 0" 0 "$A" lineage --json --source src_b/page.html .
jq -r '.sources[0].derived[] | select(.kind != "directory") | .path' "$T/out" >"$T/derived"
same_list "--source src_b/page.html: B's artifacts, the merged shards, not A's" "$T/derived" b.jsonl \
	b.clean.jsonl b.rej.jsonl sh_ab/manifest.json "sh_ab/$shard"

expect_rc "--source a folder: exit 0" 0 "$A" lineage --source src_b .
grep_in "--source text: a header" "$T/out" '^source: src_b \(6 derived\)$'
grep_in "--source text: one line an artifact" "$T/out" '^derived: b\.clean\.jsonl \(documents; quern-clean, manifest b\.clean\.jsonl\.manifest\.json\)$'
no_grep_in "--source text: not A's" "$T/out" 'a\.jsonl|sh_a/|m1/'
# The same content under another name is the same source.
cp src_a/doc5.txt "$T/doc5-elsewhere.txt"
expect_rc "--source by content: exit 0" 0 "$A" lineage --source "$T/doc5-elsewhere.txt" .
grep_in "--source by content: traced" "$T/out" '^derived: a\.jsonl '
expect_rc "--source not in any manifest: exit 1" 1 "$A" lineage --source no/such/file .
grep_in "--source not in any manifest: says so" "$T/err" "'no/such/file' is in no manifest"
# An intermediate as the source: only what lies downstream of it.
expect_rc "--source an intermediate: exit 0" 0 "$A" lineage --json --source b.clean.jsonl .
jq -r '.sources[0].derived[] | select(.kind != "directory") | .path' "$T/out" >"$T/derived"
same_list "--source b.clean.jsonl: downstream only" "$T/derived" sh_ab/manifest.json "sh_ab/$shard"

# ---- --artifact: back to the sources ---------------------------------------------------------
expect_rc "--artifact the model: exit 0" 0 "$A" lineage --artifact m1/model.safetensors .
grep_in "--artifact: the model's run" "$T/out" '^m1/model\.safetensors  <- quern-train fit \(manifest m1/run\.manifest\.json\)$'
grep_in "--artifact: the shards" "$T/out" '^  sh_a/manifest\.json  <- quern-tokenize \(manifest sh_a/run\.manifest\.json\)$'
grep_in "--artifact: the cleaned documents" "$T/out" '^    a\.clean\.jsonl  <- quern-clean \(manifest a\.clean\.jsonl\.manifest\.json\)$'
grep_in "--artifact: the ingest" "$T/out" '^      a\.jsonl  <- quern-ingest \(manifest a\.jsonl\.manifest\.json\)$'
grep_in "--artifact: down to the sources" "$T/out" '^        src_a/doc3\.txt  \(source\)$'
no_grep_in "--artifact: nothing from B" "$T/out" 'src_b|b\.jsonl'
expect_rc "--artifact --json: exit 0" 0 "$A" lineage --json --artifact sh_ab/manifest.json .
jq_ok "--artifact --json: both branches, down to sources" "$T/out" '
	[.artifacts[0] | .. | objects | select(.source == true) | .path] as $s |
	($s | index("src_a/doc3.txt")) != null and ($s | index("src_b/page.html")) != null'
expect_rc "--artifact not in any manifest: exit 1" 1 "$A" lineage --artifact nothing.bin .

# ---- bad input ------------------------------------------------------------------------
printf '{"tool": "quern-clean",\n  "inputs": [1, }\n' >"$T/broken.manifest.json"
expect_rc "malformed manifest: exit 1" 1 "$A" lineage "$T/broken.manifest.json"
grep_in "malformed manifest: file:line:col" "$T/err" "broken\\.manifest\\.json:2:[0-9]+: "
printf '{"format":"quern-token-shards"}\n' >"$T/other.json"
expect_rc "not a manifest: exit 1" 1 "$A" lineage "$T/other.json"
grep_in "not a manifest: says so" "$T/err" "other\\.json': not a quern manifest"
printf '{"tool":"x","inputs":[{"path":"a","sha256":"zz"}],"outputs":[]}\n' >"$T/badsha.json"
expect_rc "a bad sha256: exit 1" 1 "$A" lineage "$T/badsha.json"
grep_in "a bad sha256: names the entry" "$T/err" 'inputs\[0\]: "sha256" is not 64 hex digits'
expect_rc "a missing manifest: exit 1" 1 "$A" lineage "$T/nope.manifest.json"
grep_in "a missing manifest: named" "$T/err" "cannot open '.*nope\\.manifest\\.json'"
expect_rc "one bad among good: still verifies the rest, exit 1" 1 "$A" lineage . "$T/broken.manifest.json"
if [ ! -s "$T/out" ]; then pass "one bad among good: no false reports"; else fail "one bad among good: no false reports" "$(head -c 300 "$T/out")"; fi
if [ "$(id -u)" != 0 ]; then
	cp a.jsonl.manifest.json "$T/locked.manifest.json"
	chmod 000 "$T/locked.manifest.json"
	expect_rc "an unreadable manifest: exit 1" 1 "$A" lineage "$T/locked.manifest.json"
	grep_in "an unreadable manifest: named" "$T/err" "cannot open"
fi
mkdir "$T/empty"
expect_rc "a folder without manifests: exit 1" 1 "$A" lineage "$T/empty"
grep_in "a folder without manifests: warned" "$T/err" "no manifests in"

# ---- usage -------------------------------------------------------------------------
expect_rc "--help: exit 0" 0 "$A" lineage --help
grep_in "--help: usage" "$T/out" '^usage: quern-audit lineage '
expect_rc "a bad flag: exit 2" 2 "$A" lineage --no-such-flag .
grep_in "a bad flag: try --help" "$T/err" "try 'quern-audit --help'"
expect_rc "no manifest: exit 2" 2 "$A" lineage
expect_rc "--source without a value: exit 2" 2 "$A" lineage . --source
if [ -w /dev/full ]; then
	expect_rc "/dev/full: exit 1" 1 sh -c "'$A' lineage --source src_a . >/dev/full"
fi
