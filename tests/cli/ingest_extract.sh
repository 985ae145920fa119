# ingest_extract.sh - main-content extraction quality over the fixture set
# in tests/extract/pages/ (31 pages, 10 kinds of sites, hand-written expected
# text): token-level F1 must stay at or above 0.92 overall (micro and mean
# page F1), the level of trafilatura's published benchmark.
. "$QN_TOP/tests/cli/lib.sh"
P="$QN_TOP/tests/extract/pages"

expect_rc "fixture pages ingest" 0 "$I" -j 2 -o "$T/pages.jsonl" "$P"/*.html
n=$(wc -l <"$T/pages.jsonl")
if [ "$n" -ge 30 ]; then pass "at least 30 fixture pages"; else fail "at least 30 fixture pages" "$n"; fi
kinds=$(ls "$P"/*.html | sed 's|.*/||; s|-.*||' | sort -u | wc -l)
if [ "$kinds" -ge 8 ]; then pass "at least 8 kinds of sites"; else fail "at least 8 kinds of sites" "$kinds"; fi
if "$QN_TESTS/extract_score" --min-f1 0.92 "$T/pages.jsonl" >"$T/score" 2>&1; then
	pass "extraction F1 >= 0.92 ($(grep '^overall' "$T/score" | sed 's/  */ /g'))"
else
	fail "extraction F1 >= 0.92" "$(tail -n 14 "$T/score")"
fi
