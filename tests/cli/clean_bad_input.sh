# clean_bad_input.sh - broken and hostile input for quern-clean (acceptance
# 6): each bad line named as file:line, exit 1, every good document still
# written; a 100 MB document; lines over --max-line; outputs that cannot be
# written leave nothing half-done.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"

jqs_ok() {
	if jq -s -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq -s '$3' false on $2: $(head -c 300 "$2")"; fi
}
count_in() { # NAME FILE PATTERN N: the pattern is on exactly N lines
	c=$(grep -Ec -- "$3" "$2")
	if [ "$c" -eq "$4" ]; then pass "$1"; else fail "$1" "$c lines match /$3/ in $2, want $4: $(head -c 300 "$2")"; fi
}
no_crash() {
	no_grep_in "$1: no crash report" "$T/err" "Sanitizer|runtime error|Segmentation|Assertion|core dumped"
}

# One file with every kind of bad line among good documents.
B="$T/bad.jsonl"
{
	printf '{"id":"g1","text":"good one"}\n'                                  # 1
	printf '{"id":"b1","text": broken\n'                                      # 2 invalid JSON
	printf '{"id":"b2","body":"no text"}\n'                                   # 3 no text
	printf '{"id":"b3","text":42}\n'                                          # 4 text not a string
	printf '{"id":"b4","text":"x","metadata":[1,2]}\n'                        # 5 metadata not an object
	printf '{"id":"u1","text":"caf\351 and \377\376 bytes \303\050 here"}\n'  # 6 invalid UTF-8 in a string
	printf '{"id":"e1","text":""}\n'                                          # 7 empty text
	printf '\n'                                                               # 8 blank
	printf '   \n'                                                            # 9 blank
	printf '[1,2]\n'                                                          # 10 not an object
	printf '{"id":"g2","text":"good two","metadata":null}\n'                  # 11
	printf '"just a string"\n'                                                # 12 not an object
	printf '{"id":"d1","text":"a","text":"b"}\n'                              # 13 duplicate key
	printf '{"id":"n1","text":"nul \\u0000 inside"}\n'                        # 14 NUL in the text
	printf '{"id":"g3","text":"good three"}\n'                                # 15
	printf '{"id":"t1","text":"truncated\n'                                   # 16 truncated object
	printf '\000\001\002 binary junk\n'                                       # 17 binary
	printf '{"id":"g4","text":"good four, no newline at the end"}'            # 18
} >"$B"
expect_rc "bad lines: exit 1" 1 "$Q" --steps normalize,exact_dedup -o "$T/o.jsonl" -r "$T/r.jsonl" --stats "$T/s.json" "$B"
no_crash "bad lines"
for l in 2 3 4 5 10 12 13 16 17; do
	count_in "bad line $l named once as file:line" "$T/err" "^quern-clean: $B:$l: " 1
done
grep_in "invalid JSON says where" "$T/err" "$B:2: invalid JSON at column [0-9]+"
grep_in "missing text says so" "$T/err" "$B:3: no \"text\" field"
grep_in "non-string text says so" "$T/err" "$B:4: \"text\" is not a string"
grep_in "metadata not an object says so" "$T/err" "$B:5: \"metadata\" is not an object"
count_in "nothing else is an error" "$T/err" "^quern-clean: $B:" 9
jqs_ok "every good document written, in order" "$T/o.jsonl" 'map(.id) == ["g1", "u1", "e1", "g2", "n1", "g3", "g4"]'
jqs_ok "invalid UTF-8 replaced by U+FFFD" "$T/o.jsonl" '.[1].text == "caf\ufffd and \ufffd\ufffd bytes \ufffd( here"'
jqs_ok "empty text kept as empty" "$T/o.jsonl" '.[2].text == "" and .[2].metadata == {}'
jqs_ok "null metadata becomes an object" "$T/o.jsonl" '.[3].metadata == {}'
jqs_ok "NUL removed by normalize" "$T/o.jsonl" '.[4].text == "nul inside"'
check "no rejects" test ! -s "$T/r.jsonl"
jqs_ok "stats count the bad lines" "$T/s.json" '.[0].bad_lines == 9 and .[0].documents_in == 7'
# With line_dedup the input is read twice; each bad line is still named once.
expect_rc "bad lines with --line-dedup: exit 1" 1 "$Q" --steps normalize --line-dedup 2 -o "$T/o2.jsonl" "$B"
count_in "with --line-dedup: bad line 2 named once" "$T/err" "^quern-clean: $B:2: " 1
jqs_ok "with --line-dedup: good documents written" "$T/o2.jsonl" 'length == 7'
# From stdin: named as stdin:LINE.
expect_rc "bad lines on stdin: exit 1" 1 sh -c "'$Q' --steps normalize <'$B' >'$T/o3.jsonl'"
grep_in "bad line on stdin named" "$T/err" "^quern-clean: stdin:2: "
# -j 2 gives the same messages and output.
expect_rc "bad lines -j 2: exit 1" 1 "$Q" -j 2 --steps normalize,exact_dedup -o "$T/o4.jsonl" "$B"
if cmp -s "$T/o.jsonl" "$T/o4.jsonl"; then pass "bad lines -j 2: same output"; else fail "bad lines -j 2: same output" "differs"; fi
# Bad lines through the default chain: the good ones are kept or rejected, none lost.
expect_rc "bad lines, default chain: exit 1" 1 "$Q" -o "$T/o5.jsonl" -r "$T/r5.jsonl" "$B"
no_crash "bad lines, default chain"
n=$(cat "$T/o5.jsonl" "$T/r5.jsonl" | wc -l | tr -d ' ')
if [ "$n" -eq 7 ]; then pass "bad lines, default chain: 7 documents out"; else fail "bad lines, default chain: 7 documents out" "$n"; fi

# JSON details: escapes, key order, spacing, nested metadata; valid JSON that
# is awkward (a 30-digit integer, a lone surrogate escape) is still a document.
cat >"$T/esc.jsonl" <<'J'
{"id":"e1","text":"quote \" backslash \\ slash \/ tab \t nl \n uni \u00e9 pair \ud83d\ude00 end"}
{"text":"text first","id":"e2","metadata":{"text":"inner","n":[1,{"a":null}]}}
  { "id" : "e3" , "text" : "spaces around" }  
{"id":"e4","te\u0078t":"escaped key"}
{"id":"e5","text":"trailing garbage"} x
{"id":"e6","text":"two"}{"id":"e7","text":"on a line"}
{"id":"e8","text":"big number","n":123456789012345678901234567890}
{"id":"e9","text":"lone \ud800 surrogate"}
J
expect_rc "JSON details: exit 1" 1 "$Q" --steps length -o "$T/esc-out.jsonl" "$T/esc.jsonl"
no_crash "JSON details"
jqs_ok "JSON details: escapes decoded and written back" "$T/esc-out.jsonl" \
	'.[0].text == "quote \" backslash \\ slash / tab \t nl \n uni \u00e9 pair \ud83d\ude00 end"'
jqs_ok "JSON details: key order kept, metadata last, nested metadata intact" "$T/esc-out.jsonl" \
	'(.[1] | keys_unsorted == ["text", "id", "metadata"] and .metadata == {"text": "inner", "n": [1, {"a": null}]})'
jqs_ok "JSON details: spaces between tokens" "$T/esc-out.jsonl" 'any(.[]; .id == "e3" and .text == "spaces around")'
jqs_ok "JSON details: an escaped key name" "$T/esc-out.jsonl" 'any(.[]; .id == "e4" and .text == "escaped key")'
count_in "JSON details: garbage after the object is a bad line" "$T/err" "esc.jsonl:5: " 1
count_in "JSON details: two objects on a line is a bad line" "$T/err" "esc.jsonl:6: " 1
jqs_ok "JSON details: a 30-digit integer elsewhere keeps the document" "$T/esc-out.jsonl" 'any(.[]; .id == "e8" and .text == "big number")'
jqs_ok "JSON details: a lone surrogate escape becomes U+FFFD" "$T/esc-out.jsonl" 'any(.[]; .id == "e9" and .text == "lone \ufffd surrogate")'

# Lines over --max-line: named, skipped, the rest flows.
awk 'BEGIN { printf "{\"id\":\"big\",\"text\":\""; for (i = 0; i < 400; i++) printf "word%d ", i; print "\"}"; print "{\"id\":\"small\",\"text\":\"after the long line\"}" }' >"$T/long.jsonl"
expect_rc "line over --max-line: exit 1" 1 "$Q" --max-line 1K --steps normalize -o "$T/long-out.jsonl" "$T/long.jsonl"
no_crash "line over --max-line"
grep_in "line over --max-line: named" "$T/err" "^quern-clean: $T/long.jsonl:1: .*max-line"
grep_in "line over --max-line: the next line still written" "$T/long-out.jsonl" '"id":"small"'
expect_rc "line over --max-line, dedup chain: exit 1" 1 "$Q" --max-line 1K -o "$T/long-out2.jsonl" "$T/long.jsonl"
no_crash "line over --max-line, dedup chain"
check "line over --max-line, dedup chain: output written" test -e "$T/long-out2.jsonl"

# A document with an id over the index's 64 KiB limit: named, the rest flows.
awk 'BEGIN { printf "{\"id\":\""; for (i = 0; i < 70000; i++) printf "a"; print "\",\"text\":\"a document with a huge id\"}"; print "{\"id\":\"ok\",\"text\":\"an ordinary document\"}" }' >"$T/longid.jsonl"
"$Q" --steps normalize,exact_dedup --dedup-index "$T/idx" -o "$T/longid-out.jsonl" "$T/longid.jsonl" >"$T/out" 2>"$T/err"
no_crash "70 KB id"
grep_in "70 KB id with --dedup-index: the other document still written" "$T/longid-out.jsonl" '"id":"ok"'

# A 100 MB document (one JSON line) through the default chain: processed,
# kept or rejected, in reasonable time; the document after it flows too.
{
	printf '{"id":"huge","text":"'
	yes 'The quick brown fox jumps over the lazy dog. ' | head -c 100000000 | tr -d '\n'
	printf '"}\n{"id":"after","text":"This note comes after the huge document and is far too short to keep, which is fine."}\n'
} >"$T/huge.jsonl"
expect_rc "100 MB document: exit 0" 0 timeout 300 "$Q" -o "$T/huge-out.jsonl" -r "$T/huge-rej.jsonl" --stats "$T/huge-stats.json" "$T/huge.jsonl"
no_crash "100 MB document"
jqs_ok "100 MB document: both documents accounted for" "$T/huge-stats.json" '.[0].documents_in == 2 and .[0].documents_out + .[0].documents_rejected == 2'
n=$(cat "$T/huge-out.jsonl" "$T/huge-rej.jsonl" | cut -c1-40 | grep -c '"id":"\(huge\|after\)"')
if [ "$n" -eq 2 ]; then pass "100 MB document: written to output or rejects"; else fail "100 MB document: written to output or rejects" "$n of 2"; fi
rm -f "$T/huge.jsonl" "$T/huge-out.jsonl" "$T/huge-rej.jsonl"

# Malformed config and rules files: file:line:col, exit 2, no output.
printf '{"id":"a","text":"one document"}\n' >"$T/one.jsonl"
printf 'steps:\n  - normalize: {form: nfc\n' >"$T/broken.yaml"
expect_rc "malformed config: exit 2" 2 "$Q" -c "$T/broken.yaml" -o "$T/c.jsonl" "$T/one.jsonl"
grep_in "malformed config: file:line:col" "$T/err" "^quern-clean: $T/broken.yaml:[0-9]+:[0-9]+: "
check "malformed config: no output" test ! -e "$T/c.jsonl"
printf '\377\376 not yaml\n' >"$T/binary.yaml"
expect_rc "binary config: exit 2" 2 "$Q" -c "$T/binary.yaml" "$T/one.jsonl"
grep_in "binary config: named" "$T/err" "^quern-clean: $T/binary.yaml"
printf 'rules:\n  - name: r\n    pattern: "[a-"\n    action: drop\n' >"$T/broken-rules.yaml"
expect_rc "malformed rules: exit 2" 2 "$Q" --rules "$T/broken-rules.yaml" -o "$T/c.jsonl" "$T/one.jsonl"
grep_in "malformed rules: file:line:col" "$T/err" "^quern-clean: $T/broken-rules.yaml:3:[0-9]+: rule 'r': pattern error"
check "malformed rules: no output" test ! -e "$T/c.jsonl"
printf 'rules:\n  - name: "bad name!"\n    pattern: "x"\n    action: drop\n' >"$T/bad-name.yaml"
expect_rc "rule name with bad characters: exit 2" 2 "$Q" --rules "$T/bad-name.yaml" "$T/one.jsonl"
grep_in "rule name with bad characters: file:line:col" "$T/err" "^quern-clean: $T/bad-name.yaml:[0-9]+:[0-9]+: "

# Outputs: nothing partial, an existing output intact when the run fails.
W="$T/w"
mkdir -p "$W"
expect_rc "-o into a missing folder: exit 1" 1 "$Q" -o "$W/no/such/out.jsonl" "$T/one.jsonl"
grep_in "-o into a missing folder: named" "$T/err" "$W/no/such/out.jsonl"
printf 'a file\n' >"$W/file"
expect_rc "-o below a file: exit 1" 1 "$Q" -o "$W/file/out.jsonl" "$T/one.jsonl"
printf 'old output\n' >"$W/out.jsonl"
expect_rc "rejects cannot be written: exit 1" 1 "$Q" --steps normalize,exact_dedup -o "$W/out.jsonl" -r "$W/no/rej.jsonl" "$T/one.jsonl"
grep_in "rejects cannot be written: the old output stays" "$W/out.jsonl" "^old output$"
expect_rc "no temporary space: exit 1" 1 env TMPDIR="$W/none" "$Q" --steps normalize,exact_dedup -o "$W/out.jsonl" "$T/one.jsonl"
grep_in "no temporary space: says so" "$T/err" "temporary file"
grep_in "no temporary space: the old output stays" "$W/out.jsonl" "^old output$"
expect_rc "missing input with -o: exit 1" 1 "$Q" -o "$W/out.jsonl" "$T/nope.jsonl"
grep_in "missing input: the old output stays" "$W/out.jsonl" "^old output$"
expect_rc "output to /dev/full: exit 1" 1 "$Q" --steps normalize -o /dev/full "$T/one.jsonl"
left=$(ls -A "$W" | tr '\n' ' ')
if [ "$left" = "file out.jsonl " ]; then pass "no temporary or partial files left"; else fail "no temporary or partial files left" "$left"; fi
