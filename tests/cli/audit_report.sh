#!/bin/sh
# tests/cli/audit_report.sh - quern-audit scan's HTML report as a browser
# shows it: headless Chromium loads the page (no network, no script), its
# DOM must hold the failed-gate list and the charts, and a screenshot must
# show them: the red gate box above the bar charts, the chart colours, the
# green box instead of the red one when every gate passed. Hostile strings
# in the data must stay text. The reports come from the unit test's fixture
# (test_report --write) and, once quern-audit scan writes them, from a real
# scan whose JUnit and SARIF files are also checked against the schemas.
. "$(dirname "$0")/lib.sh"
A="$QN_BIN/quern-audit"
SCHEMAS="$QN_TOP/../shared/schemas"

chrome=
for c in chromium chromium-browser google-chrome; do
	if command -v "$c" >/dev/null 2>&1; then
		chrome=$c
		break
	fi
done
if [ -z "$chrome" ]; then
	echo "SKIP: chromium is not installed ('make deps' installs it); HTML rendering not tested"
	exit 0
fi

# Chromium as root needs --no-sandbox; its profile and HOME stay in $T.
mkdir -p "$T/home"
browse() { # browse OUT FLAG... FILE: runs headless Chromium over a local file
	o=$1
	shift
	HOME="$T/home" timeout 60 "$chrome" --headless --no-sandbox --disable-gpu \
		--disable-dev-shm-usage --hide-scrollbars --no-first-run \
		--user-data-dir="$T/profile" "$@" >"$o" 2>>"$T/chrome.err"
}

# shot NAME HTML: a 1200x2000 screenshot of the page in $T/NAME.png.
shot() {
	rm -f "$T/$1.png"
	browse /dev/null --screenshot="$T/$1.png" --window-size=1200,2000 "file://$2"
	if [ -s "$T/$1.png" ]; then pass "$1: screenshot taken"; else
		fail "$1: screenshot taken" "no PNG; chromium said: $(tail -c 400 "$T/chrome.err")"
	fi
}

# pixels PNG CHECK...: each check is "name:rrggbb:min" (at least min pixels of
# that colour), "no:rrggbb" (under 1000: a box or bar has far more; stray
# anti-aliased pixels do not count) or "above:rrggbb:rrggbb" (the first
# colour's topmost pixel is above the second's). Prints PASS/FAIL lines.
pixels() {
	[ -s "$1" ] || return 0 # shot has said FAIL
	/usr/bin/python3 - "$@" <<'EOF'
import sys
try:
    from PIL import Image, ImageChops
except ImportError:
    print("FAIL: screenshot pixels: python3-pil is missing ('make deps' installs it)")
    sys.exit(0)
path = sys.argv[1]
im = Image.open(path).convert("RGB")
counts = {c: n for n, c in im.getcolors(im.size[0] * im.size[1])}
def rgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
# Colours within 3 per channel count: a colour-managed screenshot may round.
def near(c):
    return [k for k in counts if max(abs(a - b) for a, b in zip(k, c)) <= 3]
def count(c):
    return sum(counts[k] for k in near(c))
def top(c):
    best = None
    for k in near(c):
        diff = ImageChops.difference(im, Image.new("RGB", im.size, k)).convert("L")
        box = diff.point(lambda v: 255 if v == 0 else 0).getbbox()
        if box and (best is None or box[1] < best):
            best = box[1]
    return best
ok = len(counts) >= 50
print(("PASS" if ok else "FAIL") + ": %s: not blank (%d colours)" % (path.split("/")[-1], len(counts)))
for check in sys.argv[2:]:
    f = check.split(":")
    if f[0] == "no":
        n = count(rgb(f[1]))
        print(("PASS" if n < 1000 else "FAIL") + ": %s: no #%s (%d pixels)" % (path.split("/")[-1], f[1], n))
    elif f[0] == "above":
        a, b = top(rgb(f[1])), top(rgb(f[2]))
        ok = a is not None and b is not None and a < b
        print(("PASS" if ok else "FAIL") + ": %s: #%s (y=%s) above #%s (y=%s)" % (path.split("/")[-1], f[1], a, f[2], b))
    else:
        n = count(rgb(f[1]))
        ok = n >= int(f[2])
        print(("PASS" if ok else "FAIL") + ": %s: %s drawn (#%s, %d pixels)" % (path.split("/")[-1], f[0], f[1], n))
EOF
}

# dom_has NAME DOM PATTERN: an extended regex in the DOM Chromium built
# (newlines removed, so a pattern can span elements).
dom_has() {
	tr -d '\n' <"$2" >"$2.line"
	grep_in "$1" "$2.line" "$3"
}

# The fixture: two failed gates, history, 64 findings; a passing variant; a hostile one.
check "fixture reports written" "$QN_TESTS/test_report" --write "$T/r"

browse "$T/dom.html" --dump-dom "file://$T/r/report.html"
dom_has "dom: failed-gate list" "$T/dom.html" '<ul id="failed-gates">'
n=$(grep -o '<li class="gate-failed">' "$T/dom.html" | wc -l)
if [ "$n" -eq 2 ]; then pass "dom: two failed gates listed"; else fail "dom: two failed gates listed" "$n"; fi
dom_has "dom: gate reason shown" "$T/dom.html" 'CREDIT_CARD: 3 findings, at most 0 allowed'
for c in chart-type chart-severity chart-source chart-trend; do
	dom_has "dom: $c is an SVG chart" "$T/dom.html" "<figure id=\"$c\" class=\"chart\">.*<svg"
done
bars=$(grep -o '<rect ' "$T/dom.html" | wc -l)
if [ "$bars" -ge 10 ]; then pass "dom: bars drawn ($bars)"; else fail "dom: bars drawn" "$bars rects"; fi
dom_has "dom: trend lines drawn" "$T/dom.html" '<polyline'
no_grep_in "dom: no script" "$T/dom.html" '<script'

shot report "$T/r/report.html"
# Red gate box (#fdecea) above the bars (type #3566a8); every chart colour drawn.
pixels "$T/report.png" "gate-box:fdecea:5000" "type-bars:3566a8:500" "source-bars:5b4a9b:500" \
	"critical-bar:9b1c1c:100" "high-bar:d1470f:500" "medium-bar:b7791f:500" \
	"above:fdecea:3566a8"

shot pass "$T/r/pass.html"
pixels "$T/pass.png" "no:fdecea" "passed-box:eefbf1:5000" "type-bars:3566a8:500"
browse "$T/pass.dom" --dump-dom "file://$T/r/pass.html"
no_grep_in "pass dom: no failed-gate list" "$T/pass.dom" 'id="failed-gates"'
no_grep_in "pass dom: no trend without history" "$T/pass.dom" 'id="chart-trend"'

browse "$T/hostile.dom" --dump-dom "file://$T/r/hostile.html"
dom_has "hostile dom: page loads" "$T/hostile.dom" '<ul id="failed-gates">'
no_grep_in "hostile dom: no script element" "$T/hostile.dom" '<script'
dom_has "hostile dom: markup stays text" "$T/hostile.dom" '&lt;script&gt;alert\(1\)&lt;/script&gt;'
no_grep_in "hostile dom: no injected element" "$T/hostile.dom" '<b>'

# The real pipeline: a scan with a failing gate writes all three reports.
if [ ! -x "$A" ]; then
	fail "quern-audit is built" "no $A"
else
	{
		echo '{"id":"d1","text":"mail jane.doe@example.com or call +44 20 7946 0958"}'
		echo '{"id":"d2","text":"card 4111 1111 1111 1111 on file"}'
		echo '{"id":"d3","text":"nothing to see <script>alert(1)</script>"}'
	} >"$T/docs.jsonl"
	printf 'gates:\n  CREDIT_CARD: 0\n  EMAIL: max 10 per 10k documents\n' >"$T/policy.yaml"
	expect_rc "scan: failing gate exits 1" 1 "$A" scan --policy "$T/policy.yaml" \
		--summary "$T/s.json" --junit "$T/s.xml" --sarif "$T/s.sarif" --html "$T/s.html" \
		-o "$T/f.jsonl" "$T/docs.jsonl"
	check "scan: junit validates" xmllint --noout --schema "$SCHEMAS/junit.xsd" "$T/s.xml"
	check "scan: sarif validates" /usr/bin/python3 -m jsonschema -i "$T/s.sarif" \
		"$SCHEMAS/sarif-schema-2.1.0.json"
	grep_in "scan: junit names the gate" "$T/s.xml" '<failure type="gate" message="CREDIT_CARD'
	browse "$T/s.dom" --dump-dom "file://$T/s.html"
	dom_has "scan dom: failed gate listed" "$T/s.dom" '<li class="gate-failed"><span class="gate-name">CREDIT_CARD'
	dom_has "scan dom: type chart" "$T/s.dom" '<figure id="chart-type" class="chart">.*<svg'
	no_grep_in "scan: no raw card number in the reports" "$T/s.html" '4111 1111 1111 1111'
	no_grep_in "scan: no raw card number in sarif" "$T/s.sarif" '4111 1111 1111 1111'
	shot scan "$T/s.html"
	pixels "$T/scan.png" "gate-box:fdecea:2000" "type-bars:3566a8:100" "above:fdecea:3566a8"

	# A second run with the first as history draws the trend; a hostile
	# document id and file name stay text in every report.
	h="$T/<b>x'\".jsonl"
	echo '{"id":"<img src=x onerror=alert(1)>","text":"write to a.b@example.org"}' >"$h"
	expect_rc "scan with history: exit 1" 1 "$A" scan --policy "$T/policy.yaml" \
		--history "$T/s.json" --junit "$T/h.xml" --sarif "$T/h.sarif" --html "$T/h.html" \
		-o "$T/h.jsonl" "$T/docs.jsonl" "$h"
	check "scan with history: junit validates" xmllint --noout --schema "$SCHEMAS/junit.xsd" \
		"$T/h.xml"
	check "scan with history: sarif validates" /usr/bin/python3 -m jsonschema -i "$T/h.sarif" \
		"$SCHEMAS/sarif-schema-2.1.0.json"
	browse "$T/h.dom" --dump-dom "file://$T/h.html"
	dom_has "scan with history: trend chart" "$T/h.dom" '<figure id="chart-trend" class="chart">.*<svg'
	dom_has "scan with history: hostile name is text" "$T/h.dom" '&lt;b&gt;x'
	no_grep_in "scan with history: no injected element" "$T/h.dom" '<img|<b>'
fi

# The model section: eval, memorization and canary results (scan --eval,
# --memorization) render as tables and SVG charts; a hostile task name
# stays text.
cat >"$T/ev.json" <<'J'
{"results":{"<i>copa</i>":{"acc,none":0.75,"acc_stderr,none":0.0433}},"configs":{},"versions":{},
 "n-samples":{"<i>copa</i>":{"original":100,"effective":100}}}
J
cat >"$T/mem.json" <<'J'
{"prefix":16,"suffix":16,"train":{"documents":200,"exact_match":0.91,"token_match":0.95,"lcp_mean":14.5},
 "heldout":{"documents":20,"exact_match":0,"token_match":0.02,"lcp_mean":0.05},"difference":{"exact_match":0.91}}
J
cat >"$T/can.json" <<'J'
{"canaries":[],"by_reps":[{"reps":0,"canaries":2,"exposure_mean":1.07},{"reps":100,"canaries":2,"exposure_mean":12.8,"exposure_max":13.3}]}
J
expect_rc "scan --eval --memorization: exit 0" 0 "$A" scan --html "$T/model.html" --eval "$T/ev.json" \
	--memorization "$T/mem.json" --memorization "$T/can.json" -o "$T/m.jsonl" "$T/docs.jsonl"
expect_rc "scan --eval: not eval results is a usage error" 2 "$A" scan --html "$T/x.html" \
	--eval "$T/docs.jsonl" "$T/docs.jsonl"
if [ -x "$A" ]; then
	browse "$T/model.dom" --dump-dom "file://$T/model.html"
	dom_has "model dom: the section" "$T/model.dom" '<section id="model"'
	dom_has "model dom: eval table with stderr" "$T/model.dom" '<table id="eval-table">.*0\.0433'
	dom_has "model dom: memorization chart" "$T/model.dom" '<figure id="chart-memo" class="chart">.*<svg'
	dom_has "model dom: canary chart" "$T/model.dom" '<figure id="chart-canary" class="chart">.*12\.80 bits'
	dom_has "model dom: hostile task name is text" "$T/model.dom" '&lt;i&gt;copa&lt;/i&gt;'
fi
