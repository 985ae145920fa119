# tools.sh - what every quern tool must do (STYLE.md): --help, --version, a bad
# flag, stdin via -, a missing file, and a full disk.
. "$QN_TOP/tests/cli/lib.sh"

for tool in quern quern-ingest quern-clean quern-tokenize quern-train quern-run; do
	b="$QN_BIN/$tool"
	expect_rc "$tool --help exits 0" 0 "$b" --help
	grep_in "$tool --help shows usage" "$T/out" "^usage: $tool "
	# The man page SYNOPSIS and --help agree.
	man=$(ls "$QN_TOP"/*/"$tool.1")
	syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$man" | grep -v '^\.SH' | sed -e 's/\\fB//g' -e 's/\\fI//g' -e 's/\\fR//g' -e 's/^\.B //' -e 's/^\.I //' | tr -s ' \n' ' ' | sed 's/ *$//')
	use=$(sed -n 's/^usage: //p' "$T/out" | head -n 1)
	if [ "$syn" = "$use" ]; then pass "$tool man SYNOPSIS matches --help"; else fail "$tool man SYNOPSIS matches --help" "man '$syn' vs help '$use'"; fi
	expect_rc "$tool --version exits 0" 0 "$b" --version
	grep_in "$tool --version prints the version" "$T/out" "^$tool [0-9]+\.[0-9]+"
	expect_rc "$tool bad flag exits 2" 2 "$b" --no-such-flag
	grep_in "$tool bad flag says try --help" "$T/err" "try '$tool --help'"
	expect_rc "$tool --help to a full disk exits 1" 1 sh -c "'$b' --help >/dev/full"
done

expect_rc "quern with no tool exits 2" 2 "$QN_BIN/quern"
expect_rc "quern unknown tool exits 2" 2 "$QN_BIN/quern" frobnicate
expect_rc "quern ingest runs quern-ingest" 0 "$QN_BIN/quern" ingest --version
grep_in "quern ingest prints quern-ingest's version" "$T/out" "^quern-ingest "
expect_rc "quern clean runs quern-clean" 0 "$QN_BIN/quern" clean --version
grep_in "quern clean prints quern-clean's version" "$T/out" "^quern-clean "
expect_rc "quern tokenize runs quern-tokenize" 0 "$QN_BIN/quern" tokenize --version
grep_in "quern tokenize prints quern-tokenize's version" "$T/out" "^quern-tokenize "
expect_rc "quern audit runs quern-audit" 0 "$QN_BIN/quern" audit --version
grep_in "quern audit prints quern-audit's version" "$T/out" "^quern-audit "
expect_rc "quern run runs quern-run" 0 "$QN_BIN/quern" run --version
grep_in "quern run prints quern-run's version" "$T/out" "^quern-run "
expect_rc "quern refuses an unknown tool" 2 "$QN_BIN/quern" nosuchtool
grep_in "unknown tool message" "$T/err" "unknown tool 'nosuchtool'"

# stdin via -, a missing file, a full disk.
printf 'hello from stdin\n' >"$T/in.txt"
expect_rc "ingest reads stdin via -" 0 sh -c "'$I' - <'$T/in.txt'"
grep_in "stdin text arrives" "$T/out" '"text":"hello from stdin"'
expect_rc "ingest reads stdin with no path" 0 sh -c "'$I' <'$T/in.txt'"
expect_rc "ingest missing file exits 1" 1 "$I" "$T/nope.html"
grep_in "missing file is named" "$T/err" "^quern-ingest: cannot open '$T/nope.html'"
expect_rc "ingest to a full disk exits 1" 1 sh -c "'$I' '$T/in.txt' >/dev/full"
grep_in "full disk message" "$T/err" "No space left"
expect_rc "ingest -o /dev/full exits 1" 1 "$I" -o /dev/full "$T/in.txt"
expect_rc "ingest bad --jobs exits 2" 2 "$I" -j x "$T/in.txt"
expect_rc "ingest bad --format exits 2" 2 "$I" -f pdf "$T/in.txt"
expect_rc "ingest --meta without --xpath exits 2" 2 "$I" --meta a=b "$T/in.txt"
