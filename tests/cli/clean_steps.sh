# clean_steps.sh - quern-clean's steps that change or judge one document at a
# time: normalize, length, c4_badwords, lang, line_dedup, pii, rules.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-clean"

jq_ok() {
	if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq '$3' false on $2: $(head -c 300 "$2")"; fi
}
jqs_ok() {
	if jq -s -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1" "jq -s '$3' false on $2: $(head -c 300 "$2")"; fi
}

# normalize: NFC, line endings, invisible and control characters, spaces,
# blank lines, trimming; each counted.
printf '{"id":"n","text":"  cafe\\u0301 line\\r\\nnext\\u200b line\\u00a0here   with   spaces  \\n\\n\\n\\n\\nend\\u0007 "}\n' >"$T/norm.jsonl"
expect_rc "normalize: exit 0" 0 "$Q" --steps normalize --stats "$T/ns.json" "$T/norm.jsonl"
jq_ok "normalize: the text" "$T/out" '.text == "caf\u00e9 line\nnext line here with spaces\n\n\nend"'
jq_ok "normalize: counters" "$T/ns.json" \
	'.steps[0].counters | .line_endings == 1 and .control == 1 and .invisible == 1 and .unicode_space == 1 and .unicode_form >= 1 and .blank_lines == 2 and .trimmed > 0 and .collapsed_space > 0 and .changed == 1'
printf 'steps:\n  - normalize: {form: none, collapse_spaces: false, max_blank_lines: -1, unicode_spaces: false, trim: false}\n' >"$T/nn.yaml"
expect_rc "normalize, all options off: exit 0" 0 "$Q" -c "$T/nn.yaml" "$T/norm.jsonl"
jq_ok "normalize, all options off: form, spaces and blank lines kept" "$T/out" \
	'.text == "  cafe\u0301 line\nnext line\u00a0here   with   spaces\n\n\n\n\nend"'

# length: bounds in code points.
printf 'steps:\n  - length: {min_chars: 10, max_chars: 20}\n' >"$T/len.yaml"
printf '{"id":"s","text":"short"}\n{"id":"m","text":"just right here"}\n{"id":"l","text":"this one is much too long"}\n{"id":"u","text":"\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303\251"}\n' >"$T/len.jsonl"
expect_rc "length: exit 0" 0 "$Q" -c "$T/len.yaml" -o "$T/len-out.jsonl" -r "$T/len-rej.jsonl" "$T/len.jsonl"
jqs_ok "length: too short and too long rejected" "$T/len-rej.jsonl" \
	'map({id, r: .metadata.reject}) == [{"id": "s", "r": {"step": "length", "reason": "length_too_short"}}, {"id": "l", "r": {"step": "length", "reason": "length_too_long"}}]'
jqs_ok "length: counted in code points, not bytes" "$T/len-out.jsonl" 'map(.id) == ["m", "u"]'

# c4_badwords: whole words from the user's list, any case.
printf 'damn\nno way\n' >"$T/bw.txt"
printf '{"id":"b","text":"This text says Damn loudly."}\n{"id":"c","text":"This text is clean: damnation is not a match."}\n{"id":"p","text":"There is No  way."}\n' >"$T/bw.jsonl"
expect_rc "c4_badwords: exit 0" 0 "$Q" --steps normalize,c4_badwords --bad-words "$T/bw.txt" -o "$T/bw-out.jsonl" -r "$T/bw-rej.jsonl" "$T/bw.jsonl"
jqs_ok "c4_badwords: a listed word and phrase reject" "$T/bw-rej.jsonl" \
	'map(.id) == ["b", "p"] and all(.[]; .metadata.reject == {"step": "c4_badwords", "reason": "document_removed_with_badwords"})'
jqs_ok "c4_badwords: a longer word does not match" "$T/bw-out.jsonl" 'map(.id) == ["c"]'

# lang: CLD2 codes and scores into metadata, --lang keeps the listed ones.
cat >"$T/lang.jsonl" <<'J'
{"id":"en1","text":"The weather was lovely this morning, so we walked along the river and talked about the books we had been reading over the long winter.","metadata":{"lang":"en"}}
{"id":"de1","text":"Das Wetter war heute Morgen wunderschön, deshalb sind wir am Fluss entlang spaziert und haben über die Bücher gesprochen, die wir im Winter gelesen haben.","metadata":{"lang":"en"}}
{"id":"un1","text":"12345 67890 !!!"}
J
expect_rc "--lang en: exit 0" 0 "$Q" --steps normalize --lang en -o "$T/lang-out.jsonl" -r "$T/lang-rej.jsonl" --stats "$T/ls.json" "$T/lang.jsonl"
jqs_ok "--lang en keeps English, with lang and lang_score" "$T/lang-out.jsonl" \
	'length == 1 and .[0].id == "en1" and .[0].metadata.lang == "en" and .[0].metadata.lang_score > 0.9 and .[0].metadata.lang_declared == null'
jqs_ok "--lang en rejects German: lang_not_kept" "$T/lang-rej.jsonl" \
	'any(.[]; .id == "de1" and .metadata.reject == {"step": "lang", "reason": "lang_not_kept"} and .metadata.lang == "de")'
jqs_ok "a wrong declared language is kept as lang_declared" "$T/lang-rej.jsonl" 'any(.[]; .id == "de1" and .metadata.lang_declared == "en")'
jqs_ok "no language: un, rejected" "$T/lang-rej.jsonl" 'any(.[]; .id == "un1" and .metadata.lang == "un")'
jq_ok "lang stats: documents per language" "$T/ls.json" \
	'(.steps[] | select(.step == "lang") | .languages | .en.documents == 1 and .de.documents == 1 and .un.documents == 1)'
expect_rc "--lang en,de: exit 0" 0 "$Q" --steps lang --lang en,de -o "$T/lang2.jsonl" "$T/lang.jsonl"
jqs_ok "--lang en,de keeps both" "$T/lang2.jsonl" 'map(.id) == ["en1", "de1"]'
printf '{"id":"mix","text":"The weather was lovely this morning, so we walked along the river and talked about the books we had read. Das Wetter war heute Morgen wunderschön, deshalb sind wir am Fluss entlang spaziert und haben gesprochen."}\n' >"$T/mix.jsonl"
printf 'steps:\n  - lang: {keep: [en, de], min_score: 0.8}\n' >"$T/lm.yaml"
expect_rc "lang min_score: exit 0" 0 "$Q" -c "$T/lm.yaml" -r "$T/mix-rej.jsonl" "$T/mix.jsonl"
jqs_ok "lang min_score: a mixed text is lang_low_score" "$T/mix-rej.jsonl" \
	'.[0].metadata.reject == {"step": "lang", "reason": "lang_low_score"} and .[0].metadata.lang_score < 0.8'

# line_dedup: a line in more than N documents goes, from every document.
: >"$T/ld.jsonl"
n=0
for i in a b c d e f; do
	n=$((n + 1))
	printf '{"id":"l%s","text":"Opening line number %s, unique.\\nAll rights reserved 20%d%d.\\n  ALL RIGHTS RESERVED 1999.\\nClosing words for %s, unique too."}\n' $i $i $n $n $i >>"$T/ld.jsonl"
done
printf '{"id":"only","text":"Another text altogether."}\n' >>"$T/ld.jsonl"
expect_rc "--line-dedup 5: exit 0" 0 "$Q" --steps normalize --line-dedup 5 --stats "$T/lds.json" -o "$T/ld5.jsonl" "$T/ld.jsonl"
jqs_ok "--line-dedup 5: the line in 6 documents removed, in any case and with other digits" "$T/ld5.jsonl" \
	'length == 7 and all(.[0:6][]; (.text | test("(?i)rights reserved") | not) and (.text | test("^Opening line number .*\nClosing words for .*unique too\\.$")))'
jq_ok "--line-dedup 5: counted" "$T/lds.json" \
	'(.steps[] | select(.step == "line_dedup") | .counters | .lines_removed == 12 and .changed == 6 and .distinct_lines == 14)'
expect_rc "--line-dedup 6: exit 0" 0 "$Q" --steps normalize --line-dedup 6 -o "$T/ld6.jsonl" "$T/ld.jsonl"
jqs_ok "--line-dedup 6: a line in 6 documents stays" "$T/ld6.jsonl" 'all(.[0:6][]; .text | test("All rights reserved"))'
expect_rc "--line-dedup from stdin: exit 0" 0 sh -c "'$Q' --steps normalize --line-dedup 5 <'$T/ld.jsonl' >'$T/ld-stdin.jsonl'"
if cmp -s "$T/ld5.jsonl" "$T/ld-stdin.jsonl"; then pass "--line-dedup from stdin: same output"; else fail "--line-dedup from stdin: same output" "differs"; fi

# pii: tags, counts per type in metadata, private addresses left alone;
# pseudonyms need a key and are stable within the run.
cat >"$T/pii.jsonl" <<'J'
{"id":"p1","text":"Write to jane.doe@example.com or call +1 415 555 0132. Card 4111 1111 1111 1111. Server 8.8.8.8, router 192.168.1.1.","metadata":{"pii":"old"}}
{"id":"p2","text":"Mail JANE.DOE@example.com again, or bob@example.org."}
{"id":"p3","text":"No personal data here."}
J
expect_rc "pii tag: exit 0" 0 "$Q" --steps pii -o "$T/pii-tag.jsonl" --stats "$T/ps.json" "$T/pii.jsonl"
jqs_ok "pii tag: values replaced by tags" "$T/pii-tag.jsonl" \
	'.[0].text == "Write to <EMAIL> or call <PHONE>. Card <CREDIT_CARD>. Server <IPV4>, router 192.168.1.1."'
jqs_ok "pii tag: counts per type in metadata.pii" "$T/pii-tag.jsonl" \
	'.[0].metadata.pii == {"EMAIL": 1, "PHONE": 1, "IPV4": 1, "CREDIT_CARD": 1} and .[1].metadata.pii == {"EMAIL": 2} and .[2].metadata.pii == null'
jq_ok "pii tag: counters" "$T/ps.json" \
	'.steps[0].counters | .EMAIL == 3 and .PHONE == 1 and .CREDIT_CARD == 1 and .IPV4 == 1 and .documents_with_findings == 2'
printf 'steps:\n  - pii: {private_ip: true, types: [ipv4]}\n' >"$T/pip.yaml"
expect_rc "pii private_ip, one type: exit 0" 0 "$Q" -c "$T/pip.yaml" -o "$T/pii-ip.jsonl" "$T/pii.jsonl"
jqs_ok "pii private_ip: private address replaced, other types left" "$T/pii-ip.jsonl" \
	'.[0].text | contains("router <IPV4>") and contains("jane.doe@example.com")'
expect_rc "pii pseudonym without a key: exit 2" 2 "$Q" --steps pii --pii pseudonym "$T/pii.jsonl"
grep_in "pii pseudonym without a key: says so" "$T/err" "needs key_file"
head -c 32 /dev/urandom >"$T/key"
expect_rc "pii pseudonym: exit 0" 0 "$Q" --steps pii --pii pseudonym --pii-key-file "$T/key" -o "$T/pii-ps.jsonl" "$T/pii.jsonl"
jqs_ok "pii pseudonym: typed pseudonyms" "$T/pii-ps.jsonl" '.[0].text | test("^Write to <EMAIL_[0-9a-f]{8}> or call <PHONE_[0-9a-f]{8}>")'
e1=$(jq -r 'select(.id == "p1") | .text | match("<EMAIL_[0-9a-f]+>").string' "$T/pii-ps.jsonl")
e2=$(jq -r 'select(.id == "p2") | .text | match("<EMAIL_[0-9a-f]+>").string' "$T/pii-ps.jsonl")
e3=$(jq -r 'select(.id == "p2") | .text | [match("<EMAIL_[0-9a-f]+>"; "g").string] | .[1]' "$T/pii-ps.jsonl")
if [ -n "$e1" ] && [ "$e1" = "$e2" ]; then pass "pii pseudonym: one value, one pseudonym"; else fail "pii pseudonym: one value, one pseudonym" "'$e1' vs '$e2'"; fi
if [ -n "$e3" ] && [ "$e1" != "$e3" ]; then pass "pii pseudonym: other values differ"; else fail "pii pseudonym: other values differ" "'$e1' vs '$e3'"; fi
head -c 32 /dev/urandom >"$T/key2"
"$Q" --steps pii --pii pseudonym --pii-key-file "$T/key2" "$T/pii.jsonl" >"$T/pii-ps2.jsonl" 2>/dev/null
if cmp -s "$T/pii-ps.jsonl" "$T/pii-ps2.jsonl"; then fail "pii pseudonym: another key, other pseudonyms" "same output"; else pass "pii pseudonym: another key, other pseudonyms"; fi

# rules: drop, redact, tag.
cat >"$T/rules.yaml" <<'Y'
rules:
  - name: no-spam
    pattern: 'BUY\s+NOW'
    action: drop
  - name: hosts
    pattern: '\b[a-z0-9-]+\.corp\.example\.com\b'
    action: redact
    replacement: '<HOST>'
  - name: mentions-quern
    pattern: 'quern'
    action: tag
    flags: [caseless]
Y
cat >"$T/rules.jsonl" <<'J'
{"id":"r1","text":"Please BUY NOW, quern fans, before it is gone."}
{"id":"r2","text":"Connect to db1.corp.example.com and web-2.corp.example.com today."}
{"id":"r3","text":"Quern is a tool.","metadata":{"tags":["mine"]}}
{"id":"r4","text":"Nothing to see."}
J
expect_rc "rules: exit 0" 0 "$Q" --steps normalize --rules "$T/rules.yaml" -o "$T/r-out.jsonl" -r "$T/r-rej.jsonl" --stats "$T/rs.json" "$T/rules.jsonl"
jqs_ok "rules drop: rule:NAME" "$T/r-rej.jsonl" 'length == 1 and .[0].id == "r1" and .[0].metadata.reject == {"step": "rules", "reason": "rule:no-spam"} and .[0].metadata.tags == null'
jqs_ok "rules redact: replaced" "$T/r-out.jsonl" '.[0].text == "Connect to <HOST> and <HOST> today."'
jqs_ok "rules tag: appended to metadata.tags" "$T/r-out.jsonl" '.[1].metadata.tags == ["mine", "mentions-quern"] and .[2].metadata.tags == null'
jq_ok "rules: counted" "$T/rs.json" \
	'(.steps[] | select(.step == "rules")) | .counters == {"redactions": 2, "tagged": 1} and .rejected["rule:no-spam"].documents == 1'
printf 'rules:\n  - name: bad\n    pattern: "(unclosed"\n    action: drop\n' >"$T/br1.yaml"
expect_rc "rules: bad pattern: exit 2" 2 "$Q" --rules "$T/br1.yaml" "$T/rules.jsonl"
grep_in "rules: bad pattern: file:line:col" "$T/err" "^quern-clean: $T/br1.yaml:3:14: rule 'bad': pattern error at offset [0-9]+"
printf 'rules:\n  - name: bad\n    pattern: "x"\n    action: explode\n' >"$T/br2.yaml"
expect_rc "rules: bad action: exit 2" 2 "$Q" --rules "$T/br2.yaml" "$T/rules.jsonl"
grep_in "rules: bad action: file:line:col" "$T/err" "^quern-clean: $T/br2.yaml:4:13: 'action' must be one of"
printf 'rules:\n  - name: bad\n  pattern: "x"\n' >"$T/br3.yaml"
expect_rc "rules: YAML error: exit 2" 2 "$Q" --rules "$T/br3.yaml" "$T/rules.jsonl"
grep_in "rules: YAML error: file:line:col" "$T/err" "^quern-clean: $T/br3.yaml:[0-9]+:[0-9]+: "
printf 'rules:\n  - name: a\n    pattern: "x"\n    action: tag\n  - name: a\n    pattern: "y"\n    action: tag\n' >"$T/br4.yaml"
expect_rc "rules: a name twice: exit 2" 2 "$Q" --rules "$T/br4.yaml" "$T/rules.jsonl"
grep_in "rules: a name twice: file:line:col" "$T/err" "^quern-clean: $T/br4.yaml:[0-9]+:[0-9]+: "
printf 'rules:\n  - name: e\n    pattern: "x*"\n    action: redact\n' >"$T/br5.yaml"
expect_rc "rules: redact matching the empty string: exit 2" 2 "$Q" --rules "$T/br5.yaml" "$T/rules.jsonl"
expect_rc "rules file missing: exit 2" 2 "$Q" --rules "$T/none.yaml" "$T/rules.jsonl"
grep_in "rules file missing: named" "$T/err" "none.yaml"
