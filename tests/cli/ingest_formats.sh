# ingest_formats.sh - each reader over the sample corpus and small inputs,
# determinism, compression, manifests.
. "$QN_TOP/tests/cli/lib.sh"
C="$QN_TOP/examples/corpus"
export SOURCE_DATE_EPOCH=1790000000

# jqc NAME FILTER FILE: the jq filter (which must yield true) holds.
jqc() {
	if [ "$(jq -s "$2" "$3" 2>&1)" = true ]; then pass "$1"; else fail "$1" "jq '$2' on $3: $(jq -s "$2" "$3" 2>&1 | head -c 300)"; fi
}

expect_rc "csv export ingests" 0 "$I" --id-column ticket_id "$C/tickets.csv"
jqc "csv: 40 tickets" 'length == 40' "$T/out"
jqc "csv: body column is the text" '.[0].metadata.text_column == "body" and (.[0].text | startswith("Hello,"))' "$T/out"
jqc "csv: ticket ids used" '[.[].id] | all(startswith("T-") or test("^[0-9A-Za-z-]+$"))' "$T/out"
jqc "csv: metadata columns" '.[0].metadata.columns | has("subject") and has("priority")' "$T/out"
jqc "csv: embedded newlines kept" '[.[].text | select(contains("\n"))] | length >= 5' "$T/out"

printf 'a\tb\ttext\n1\t2\tfirst row\n3\t4\tsecond row\n' >"$T/t.tsv"
expect_rc "tsv ingests" 0 "$I" "$T/t.tsv"
jqc "tsv: two rows" 'length == 2 and .[1].text == "second row" and .[0].metadata.format == "tsv"' "$T/out"

expect_rc "mbox ingests" 0 "$I" "$C/support.mbox"
jqc "mbox: 12 messages" 'length == 12' "$T/out"
jqc "mbox: headers in metadata" 'all(.metadata.from and .metadata.subject and .metadata.message_id)' "$T/out"
jqc "mbox: created from Date" 'all(.created | test("^2026-[0-9-]+T[0-9:]+Z$"))' "$T/out"
jqc "mbox: RFC 2047 subjects decoded" '[.[].metadata.subject] | all(contains("=?") | not)' "$T/out"
jqc "mbox: attachment counted" '[.[].metadata.attachments // 0] | add >= 1' "$T/out"
jqc "mbox: >From unescaped" '[.[].text | select(test("(^|\n)From what"))] | length == 1' "$T/out"

expect_rc "rss ingests" 0 "$I" "$C/feed.rss"
jqc "rss: 6 items" 'length == 6 and all(.metadata.format == "rss")' "$T/out"
jqc "rss: no markup left" 'all(.text | test("<p>|&lt;|&amp;") | not)' "$T/out"

expect_rc "html folder ingests" 0 "$I" "$C/html"
jqc "html: 6 pages with titles" 'length == 6 and all(.metadata.title)' "$T/out"
jqc "html: latin-1 page decoded" '[.[] | select(.metadata.lang == "de")] | .[0].text | contains("eröffnet")' "$T/out"
jqc "html: latin-1 charset recorded" '[.[] | select(.metadata.charset == "WINDOWS-1252")] | length == 1' "$T/out"
jqc "html: no cookie banner text" 'all(.text | test("(?i)we use cookies") | not)' "$T/out"
jqc "html: code block keeps line breaks" '[.[] | select(.metadata.path | contains("docs-order"))] | .[0].text | test("\n    ")' "$T/out"

expect_rc "notes ingest" 0 "$I" "$C/notes"
jqc "text: utf-16 file decoded" '[.[] | select(.metadata.charset == "UTF-16LE")] | length == 1 and (.[0].text | contains("Returns"))' "$T/out"
jqc "markdown: title from heading" '[.[] | select(.metadata.format == "markdown")] | all(.metadata.title)' "$T/out"
jqc "text: BOM and CRLF gone" 'all(.text | test("\r|\ufeff") | not)' "$T/out"

expect_rc "jsonl field mapping" 0 "$I" --text-field body --id-field review_id "$C/reviews.jsonl"
jqc "jsonl: 15 reviews with their ids" 'length == 15 and all(.id | startswith("rv-"))' "$T/out"
jqc "jsonl: other fields in metadata" 'all(.metadata.rating and .metadata.product)' "$T/out"

# Deterministic ids and output, whatever -j.
"$I" -j 1 -o "$T/a.jsonl" "$C" --text-field body >/dev/null 2>&1
"$I" -j 2 -o "$T/b.jsonl" "$C" --text-field body >/dev/null 2>&1
check "-j 1 and -j 2 give identical output" cmp "$T/a.jsonl" "$T/b.jsonl"
"$I" -j 2 -o "$T/c.jsonl" "$C" --text-field body >/dev/null 2>&1
check "same input, same output" cmp "$T/a.jsonl" "$T/c.jsonl"
jqc "ids are unique" '[.[].id] | length == (unique | length)' "$T/a.jsonl"

# Manifest beside -o.
m="$T/a.jsonl.manifest.json"
check "manifest written" test -s "$m"
jqc "manifest names tool, inputs, output" '.[0] | .tool == "quern-ingest" and (.inputs | length == 14) and (.outputs[0].path | endswith("a.jsonl"))' "$m"
sha=$(sha256sum "$T/a.jsonl" | cut -d' ' -f1)
jqc "manifest output sha256 matches" ".[0].outputs[0].sha256 == \"$sha\"" "$m"
isha=$(sha256sum "$C/tickets.csv" | cut -d' ' -f1)
jqc "manifest input sha256 matches" "[.[0].inputs[] | select(.path | endswith(\"tickets.csv\"))][0].sha256 == \"$isha\"" "$m"
jqc "manifest counts documents" '.[0].counters.documents == 83' "$m"

# Compression both ways.
zstd -q -c "$C/tickets.csv" >"$T/tickets.csv.zst"
gzip -c "$C/tickets.csv" >"$T/tickets.csv.gz"
expect_rc "zstd input" 0 "$I" "$T/tickets.csv.zst"
jqc "zstd input: 40 rows" 'length == 40' "$T/out"
expect_rc "gzip input" 0 "$I" "$T/tickets.csv.gz"
jqc "gzip input: 40 rows" 'length == 40' "$T/out"
expect_rc "zstd stdin is detected" 0 sh -c "zstd -q -c '$C/feed.rss' | '$I' -f rss"
jqc "zstd stdin: 6 items" 'length == 6' "$T/out"
expect_rc ".zst output" 0 "$I" -o "$T/o.jsonl.zst" "$C/tickets.csv"
check ".zst output is zstd" sh -c "zstd -q -t '$T/o.jsonl.zst'"
check ".zst output decompresses to 40 lines" sh -c "[ \$(zstd -q -d -c '$T/o.jsonl.zst' | wc -l) -eq 40 ]"

# XML: generic and --xpath.
cat >"$T/cat.xml" <<'X'
<?xml version="1.0"?>
<catalog><record id="r1"><title>One</title><body>First body text.</body><meta><author>Ann</author></meta></record>
<record id="r2"><title>Two</title><body>Second body text.</body><meta><author>Bo</author></meta></record></catalog>
X
expect_rc "xml generic" 0 "$I" "$T/cat.xml"
jqc "xml generic: one document with all text" 'length == 1 and (.[0].text | contains("First body") and contains("Second body"))' "$T/out"
expect_rc "xml --xpath" 0 "$I" --xpath //record --id-xpath @id --text-xpath body --meta author=meta/author "$T/cat.xml"
jqc "xml --xpath: two records" 'length == 2 and .[0].id == "r1" and .[1].text == "Second body text." and .[1].metadata.author == "Bo"' "$T/out"

# --full keeps the chrome the main-content extractor drops.
expect_rc "html --full" 0 "$I" --full "$C/html/blog-trail-guide-rennsteig.html"
full=$(jq -r '.text | length' "$T/out")
"$I" "$C/html/blog-trail-guide-rennsteig.html" >"$T/main" 2>/dev/null
main=$(jq -r '.text | length' "$T/main")
if [ "$full" -gt "$main" ]; then pass "--full keeps more text"; else fail "--full keeps more text" "$full <= $main"; fi

# --source and the default source.
expect_rc "--source" 0 "$I" -s helpdesk "$C/tickets.csv"
jqc "--source names the source" 'all(.source == "helpdesk")' "$T/out"

# CSV charsets: windows-1252 fields and a UTF-16 export with a BOM.
printf 'id,text\n1,caf\351 cr\350me\n2,plain\n' >"$T/w.csv"
expect_rc "windows-1252 csv" 0 "$I" "$T/w.csv"
jqc "windows-1252 fields read as such" '.[0].text == "café crème" and .[0].metadata.charset == "WINDOWS-1252" and .[1].metadata.charset == "UTF-8"' "$T/out"
printf '\377\376i\000d\000\t\000t\000e\000x\000t\000\n\0001\000\t\000g\000r\000\374\000\337\000e\000\n\000' >"$T/u16.tsv"
expect_rc "utf-16 tsv" 0 "$I" "$T/u16.tsv"
jqc "utf-16 export transcoded" 'length == 1 and .[0].text == "grüße" and .[0].metadata.charset == "UTF-16LE"' "$T/out"
