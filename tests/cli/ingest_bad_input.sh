# ingest_bad_input.sh - hostile and broken inputs: each gives one clear
# message naming the file, the other inputs still flow, nothing crashes.
. "$QN_TOP/tests/cli/lib.sh"
B="$T/bad"
mkdir -p "$B"
export SOURCE_DATE_EPOCH=1790000000

printf '<html><head><title>Cut</title></head><body><article><h1>Cut short</h1><p>This page ends in the mid' >"$B/truncated.html"
head -c 4096 /dev/urandom >"$B/binary.html"
printf '\000\001\002ELF' >>"$B/binary.html"
printf '<html><body><p>caf\351 cr\350me \377\376 broken \303\050 bytes and enough words to be content here.</p></body></html>' >"$B/invalid-utf8.html"
printf '<html><head><meta charset="utf-8"></head><body><p>Gr\374\337e aus M\374nchen, declared UTF-8 but written in Latin-1, with enough words to count.</p></body></html>' >"$B/wrong-charset.html"
cat >"$B/xxe.xml" <<'X'
<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<r><t>before &x; after</t></r>
X
{
	printf '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
	printf '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
	i=2
	while [ $i -le 9 ]; do
		p=$((i - 1))
		printf '<!ENTITY lol%d "&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;">\n' $i $p $p $p $p $p $p $p $p $p $p
		i=$((i + 1))
	done
	printf ']>\n<lolz>&lol9;</lolz>\n'
} >"$B/laughs.xml"
printf 'id,text,x\n1,"good row",a\n2,"unbalanced quote,b\n3,after the bad row,c\n' >"$B/unbalanced.csv"
cat >"$B/broken-mime.mbox" <<'X'
From a@example.com Thu Nov  5 09:12:01 2026
From: a@example.com
Subject: broken boundary
Content-Type: multipart/alternative; boundary="XYZ"

--XYZ
Content-Type: text/plain

The closing boundary of this message never comes.

From b@example.com Thu Nov  5 10:00:00 2026
From: b@example.com
Subject: second message
Content-Type: multipart/mixed; boundary="NOPE"

no boundary line ever appears in this body, so it is read as plain text.
X
: >"$B/empty.html"
: >"$B/empty.csv"
: >"$B/empty.txt"
printf 'A good document that must still come through.\n' >"$B/zz-good.txt"

expect_rc "bad inputs: exit 1" 1 "$I" -o "$T/bad.jsonl" "$B"
grep_in "binary .html named" "$T/err" "cannot parse '$B/binary.html': binary data"
grep_in "billion laughs named" "$T/err" "cannot parse '$B/laughs.xml'"
grep_in "unbalanced quote named with its line" "$T/err" "cannot parse '$B/unbalanced.csv': line 3: .*quote"
grep_in "empty .html named" "$T/err" "cannot parse '$B/empty.html': empty file"
grep_in "empty .csv named" "$T/err" "cannot parse '$B/empty.csv': empty file"
grep_in "empty .txt named" "$T/err" "cannot parse '$B/empty.txt': empty file"
no_grep_in "truncated html is not an error" "$T/err" "truncated.html"
no_grep_in "no crash report" "$T/err" "Sanitizer|runtime error|Segmentation"
check "output written despite failures" test -s "$T/bad.jsonl"
grep_in "good document still flows" "$T/bad.jsonl" "A good document that must still come through"
grep_in "truncated html keeps its text" "$T/bad.jsonl" "This page ends in the mid"
grep_in "invalid utf-8 read as windows-1252" "$T/bad.jsonl" 'café crème'
grep_in "wrong declared charset: bytes replaced and counted" "$T/bad.jsonl" '"invalid_bytes":[1-9]'
no_grep_in "xxe: file not included" "$T/bad.jsonl" "root:"
grep_in "xxe: surrounding text kept" "$T/bad.jsonl" "before"
grep_in "csv rows around the bad one kept" "$T/bad.jsonl" '"text":"good row"'
grep_in "csv row after the bad one kept" "$T/bad.jsonl" '"text":"after the bad row"'
grep_in "broken mime: text kept" "$T/bad.jsonl" "closing boundary of this message never comes"
grep_in "missing boundary: body as text" "$T/bad.jsonl" "no boundary line ever appears"
if jq -e . "$T/bad.jsonl" >/dev/null 2>&1; then pass "output is valid JSON lines"; else fail "output is valid JSON lines" "jq failed"; fi

# One file per message: each failure names exactly its file.
n=$(grep -c "cannot parse '$B/binary.html'" "$T/err")
if [ "$n" -eq 1 ]; then pass "one message per bad file"; else fail "one message per bad file" "$n"; fi

# A single 1 GB line: refused at --max-bytes without reading it into memory.
big="$T/big.txt"
head -c 1073741824 /dev/zero | tr '\0' 'a' >"$big"
printf 'after the giant line\n' >"$T/small.txt"
expect_rc "1 GB line: exit 1" 1 "$I" -o "$T/big.jsonl" "$big" "$T/small.txt"
grep_in "1 GB line named" "$T/err" "cannot parse '$big': larger than --max-bytes"
grep_in "1 GB line: other input flows" "$T/big.jsonl" "after the giant line"
cp "$big" "$T/big.jsonl.in.jsonl"
expect_rc "1 GB JSONL line: exit 1" 1 "$I" -o "$T/big2.jsonl" "$T/big.jsonl.in.jsonl" "$T/small.txt"
grep_in "1 GB JSONL line named with its line" "$T/err" "cannot parse '$T/big.jsonl.in.jsonl': line 1: longer than --max-bytes"
rm -f "$big" "$T/big.jsonl.in.jsonl"

# --max-bytes applies per document; --strict keeps no output.
printf 'x%.0s' $(seq 1 2000) >"$T/two-k.txt"
expect_rc "--max-bytes 1K refuses a 2K file" 1 "$I" --max-bytes 1K "$T/two-k.txt"
printf 'old\n' >"$T/keep.jsonl"
expect_rc "--strict stops at the first failure" 1 "$I" --strict -o "$T/keep.jsonl" "$B"
grep_in "--strict says no output" "$T/err" "no output written"
grep_in "--strict leaves the old output" "$T/keep.jsonl" "^old$"

# Hostile structure: inputs that make naive code quadratic finish promptly
# (the timeout is a hang guard, far above the fraction of a second they take).
H="$T/hostile"
mkdir -p "$H"
awk 'BEGIN { printf "<title>t</title><body>"; for (i = 0; i < 50000; i++) printf "<h2><b>"; print "end" }' >"$H/nested-headings.html"
awk 'BEGIN { printf "<body>"; for (i = 0; i < 50000; i++) printf "<ul><li>"; print "end" }' >"$H/nested-lists.html"
awk 'BEGIN { printf "<body><div"; for (i = 0; i < 50000; i++) printf " a%d=x", i; print ">attributes</div>" }' >"$H/many-attributes.html"
awk 'BEGIN { printf "<r"; for (i = 0; i < 50000; i++) printf " a%d=\"x\"", i; print ">x</r>" }' >"$H/many-attributes.xml"
awk 'BEGIN { printf "<body>"; for (i = 0; i < 30000; i++) printf "<span><div>cookie share "; print "" }' >"$H/alternating.html"
expect_rc "hostile structure: finishes, one failure" 1 timeout 120 "$I" -o "$T/hostile.jsonl" "$H"
grep_in "too many attributes named" "$T/err" "cannot parse '$H/many-attributes.xml': a start tag with more than 4096 attributes"
grep_in "nested headings still give text" "$T/hostile.jsonl" '"text":"end"'
grep_in "many attributes: text kept" "$T/hostile.jsonl" '"text":"attributes"'
