# clean_config.sh - quern-clean's chain: --print-config round-trips, config
# files and their errors (file:line:col, exit 2), flags over the file,
# --steps and --skip.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"

same() { # NAME A B: the two files are byte-identical
	if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ: $(diff "$2" "$3" | head -c 300)"; fi
}
# steps_are NAME FILE "a b c": the step names of a printed config, in order.
steps_are() {
	got=$(sed -n 's/^- \([a-z_0-9]*\).*/\1/p' "$2" | tr '\n' ' ' | sed 's/ $//')
	if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "steps '$got', want '$3'"; fi
}

printf '{"id":"a","text":"one document"}\n' >"$T/in.jsonl"
head -c 32 /dev/urandom >"$T/key"
printf 'badword\n' >"$T/words.txt"
printf 'rules:\n  - name: x\n    pattern: "xyz"\n    action: tag\n' >"$T/rules.yaml"

# --print-config: every default, and what it prints reads back the same.
expect_rc "--print-config: exit 0" 0 "$Q" --print-config
cp "$T/out" "$T/p1.yaml"
steps_are "--print-config: the default chain" "$T/p1.yaml" \
	"normalize exact_dedup gopher_repetition gopher_quality c4_quality fineweb_quality near_dedup pii"
grep_in "--print-config: near_dedup defaults" "$T/p1.yaml" \
	"^- near_dedup: \{bands: 14, rows: 8, ngram: 5, seed: '0x717565726e6d6831', .*threshold: 0.8, verify: false, max_candidates: 64, keep: first\}"
grep_in "--print-config: gopher_quality defaults" "$T/p1.yaml" "min_doc_words: 50, max_doc_words: 100000, min_avg_word_length: 3,"
grep_in "--print-config: pii defaults" "$T/p1.yaml" "^- pii: \{mode: tag, private_ip: false, min_score: 0.5, types: \[all\]\}"
expect_rc "--print-config round trip: exit 0" 0 "$Q" -c "$T/p1.yaml" --print-config
same "--print-config round trip: identical" "$T/p1.yaml" "$T/out"

# Every step, with every flag that sets a parameter.
expect_rc "--print-config with every step: exit 0" 0 "$Q" \
	--steps normalize,line_dedup,lang,exact_dedup,length,gopher_repetition,gopher_quality,c4_quality,c4_badwords,fineweb_quality,near_dedup,pii,rules \
	--lang en,de --line-dedup 7 --keep priority:rank --verify --threshold 0.85 --bad-words "$T/words.txt" \
	--pii pseudonym --pii-key-file "$T/key" --rules "$T/rules.yaml" --print-config
cp "$T/out" "$T/p2.yaml"
steps_are "every step listed in order" "$T/p2.yaml" \
	"normalize line_dedup lang exact_dedup length gopher_repetition gopher_quality c4_quality c4_badwords fineweb_quality near_dedup pii rules"
grep_in "flags: --line-dedup" "$T/p2.yaml" "^- line_dedup: \{max_docs: 7, min_chars: 0\}"
grep_in "flags: --lang" "$T/p2.yaml" "^- lang: .*keep: \[en, de\]"
grep_in "flags: --keep priority:FIELD on exact_dedup" "$T/p2.yaml" "^- exact_dedup: \{keep: priority, priority_field: rank\}"
grep_in "flags: --keep, --verify, --threshold on near_dedup" "$T/p2.yaml" "^- near_dedup: .*keep: priority.*priority_field: rank.*verify: true.*threshold: 0.85"
grep_in "flags: --pii pseudonym with its key" "$T/p2.yaml" "^- pii: \{mode: pseudonym, key_file: [^,]*key,"
grep_in "flags: --rules" "$T/p2.yaml" "^- rules: \{file: [^}]*rules.yaml\}"
grep_in "flags: --bad-words" "$T/p2.yaml" "^- c4_badwords: \{words: [^,]*words.txt, no_boundaries: false\}"
expect_rc "round trip with every step: exit 0" 0 "$Q" -c "$T/p2.yaml" --print-config
same "round trip with every step: identical" "$T/p2.yaml" "$T/out"
expect_rc "round trip config runs" 0 "$Q" -c "$T/p2.yaml" "$T/in.jsonl"

# A hand-written config: given values stay, the rest are defaults.
cat >"$T/mine.yaml" <<'Y'
# a comment
steps:
  - normalize: {form: nfkc}
  - exact_dedup
  - near_dedup:
      bands: 20
      rows: 5
      verify: yes
Y
expect_rc "hand-written config: exit 0" 0 "$Q" -c "$T/mine.yaml" --print-config
steps_are "hand-written config: its steps only" "$T/out" "normalize exact_dedup near_dedup"
grep_in "hand-written config: given value kept" "$T/out" "^- normalize: \{form: nfkc, collapse_spaces: true"
grep_in "hand-written config: block map read" "$T/out" "^- near_dedup: \{bands: 20, rows: 5, .*verify: true"
expect_rc "hand-written config runs" 0 "$Q" -c "$T/mine.yaml" "$T/in.jsonl"
grep_in "hand-written config: output" "$T/out" '"id":"a"'

# Flags override the file.
expect_rc "flags over the file: exit 0" 0 "$Q" -c "$T/mine.yaml" --threshold 0.6 --keep newest --print-config
grep_in "flags over the file: --threshold" "$T/out" "^- near_dedup: .*threshold: 0.6"
grep_in "flags over the file: --keep on both dedup steps" "$T/out" "^- exact_dedup: \{keep: newest\}"
grep_in "flags over the file: the file's values stay" "$T/out" "^- near_dedup: .*bands: 20, rows: 5"

# --steps and --skip; flags that add a step put it where it belongs.
expect_rc "--steps: exit 0" 0 "$Q" --steps exact_dedup,normalize --print-config
steps_are "--steps: these, in this order" "$T/out" "exact_dedup normalize"
expect_rc "--skip: exit 0" 0 "$Q" --skip near_dedup,pii,gopher_repetition --print-config
steps_are "--skip: the rest of the default chain" "$T/out" "normalize exact_dedup gopher_quality c4_quality fineweb_quality"
expect_rc "--pii off: exit 0" 0 "$Q" --pii off --print-config
no_grep_in "--pii off removes the step" "$T/out" "^- pii"
expect_rc "--lang adds lang after normalize: exit 0" 0 "$Q" --lang en --line-dedup 3 --print-config
steps_are "--lang and --line-dedup placed early" "$T/out" \
	"normalize line_dedup lang exact_dedup gopher_repetition gopher_quality c4_quality fineweb_quality near_dedup pii"
expect_rc "--verify adds near_dedup: exit 0" 0 "$Q" --steps normalize --verify --print-config
steps_are "--verify adds near_dedup" "$T/out" "normalize near_dedup"
expect_rc "--bad-words adds c4_badwords after c4_quality: exit 0" 0 "$Q" --bad-words "$T/words.txt" --print-config
steps_are "--bad-words placed after c4_quality" "$T/out" \
	"normalize exact_dedup gopher_repetition gopher_quality c4_quality c4_badwords fineweb_quality near_dedup pii"
expect_rc "--skip of a step not in the chain: exit 0" 0 "$Q" --steps normalize --skip lang --print-config

# Config errors: exit 2, "file:line:col: message".
# bad_config NAME TEXT PATTERN: the config is refused with the pattern.
n=0
bad_config() {
	n=$((n + 1))
	printf "$2" >"$T/bad$n.yaml"
	expect_rc "config $1: exit 2" 2 "$Q" -c "$T/bad$n.yaml" "$T/in.jsonl"
	grep_in "config $1: message" "$T/err" "^quern-clean: $T/bad$n.yaml:$3"
}
bad_config "unknown step" 'steps:\n  - normalize\n  - bogus_step\n' "3:5: unknown step 'bogus_step'"
bad_config "unknown key" 'steps:\n  - normalize: {form: nfc, bandz: 3}\n' "2:28: unknown key 'bandz' in normalize"
bad_config "not an integer" 'steps:\n  - near_dedup:\n      bands: many\n' "3:14: 'bands' must be an integer"
bad_config "number out of range" 'steps:\n  - near_dedup: {threshold: 1.5}\n' "2:29: 'threshold' must be a number from 0 to 1"
bad_config "not a boolean" 'steps:\n  - near_dedup: {verify: maybe}\n' "2:26: 'verify' must be true or false"
bad_config "unknown choice" 'steps:\n  - normalize: {form: nfd}\n' "2:23: 'form' must be one of"
bad_config "unknown pii type" 'steps:\n  - pii: {types: [EMAIL, BOGUS]}\n' "2:[0-9]+: pii: unknown type 'BOGUS'"
bad_config "a step twice" 'steps:\n  - normalize\n  - normalize\n' "3:5: step 'normalize' appears twice"
bad_config "unknown top-level key" 'stepz:\n  - normalize\n' "1:1: unknown key 'stepz'"
bad_config "YAML syntax" 'steps: [normalize\n' "[0-9]+:[0-9]+: "
bad_config "tab indentation" 'steps:\n\t- normalize\n' "[0-9]+:[0-9]+: "
bad_config "alias" 'steps:\n  - &a normalize\n  - *a\n' "[0-9]+:[0-9]+: "
bad_config "keep: priority without a field" 'steps:\n  - exact_dedup: {keep: priority}\n' "2:[0-9]+: "
bad_config "bands x rows over 1024" 'steps:\n  - near_dedup: {bands: 200, rows: 8}\n' "2:[0-9]+: "
expect_rc "config file missing: exit 2" 2 "$Q" -c "$T/none.yaml" "$T/in.jsonl"
grep_in "config file missing: named" "$T/err" "cannot open '$T/none.yaml'"
printf 'steps:\n  - near_dedup\n  - exact_dedup\n' >"$T/order.yaml"
expect_rc "near_dedup before exact_dedup: exit 2" 2 "$Q" -c "$T/order.yaml" "$T/in.jsonl"
grep_in "near_dedup before exact_dedup: message" "$T/err" "exact_dedup must come before near_dedup"
expect_rc "pseudonym without a key: exit 2" 2 "$Q" --pii pseudonym "$T/in.jsonl"
grep_in "pseudonym without a key: message" "$T/err" "pseudonym needs key_file"
printf 'short' >"$T/shortkey"
expect_rc "key under 16 bytes: exit 2" 2 "$Q" --pii pseudonym --pii-key-file "$T/shortkey" "$T/in.jsonl"
expect_rc "c4_badwords without words: exit 2" 2 "$Q" --steps c4_badwords "$T/in.jsonl"
expect_rc "bad-words file missing: exit 2" 2 "$Q" --bad-words "$T/nowords.txt" "$T/in.jsonl"
grep_in "bad-words file missing: named" "$T/err" "nowords.txt"
