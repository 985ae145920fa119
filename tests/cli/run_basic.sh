# run_basic.sh - quern-run: what reruns and what does not (acceptance 1),
# dry-run, force, status exit codes, dag text and --dot, foreach, env, wdir, -j.
. "$QN_TOP/tests/cli/lib.sh"
R="$QN_BIN/quern-run"
P="$T/p"
mkdir -p "$P"
cd "$P" || exit 1

cat >pipeline.yaml <<'EOF'
vars:
  suffix: "!"
stages:
  upper:
    cmd: tr a-z A-Z < in.txt > upper.txt
    deps: [in.txt]
    outs: [upper.txt]
  count:
    cmd: wc -c < upper.txt > count.txt
    deps: [upper.txt]
    outs: [count.txt]
  shout:
    cmd: sed 's/$/${suffix}/' upper.txt > shout.txt; test "${style.case}" = upper
    deps: [upper.txt]
    outs: [shout.txt]
    params: [style.case]
  other:
    cmd: cat other.txt > other.out
    deps: [other.txt]
    outs: [other.out]
  report:
    cmd: cat count.txt shout.txt other.out > report.txt
    deps: [count.txt, shout.txt, other.out]
    outs: [report.txt]
EOF
printf 'style:\n  case: upper\n  unused: 1\n' >params.yaml
printf 'hello\n' >in.txt
printf 'other\n' >other.txt

ran() { # NAME STAGES...: exactly these stages ran (in $T/out)
	name=$1
	shift
	got=$(sed -n "s/^ran '\([^']*\)'.*/\1/p" "$T/out" | sort | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
	if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "ran [$got], want [$want]"; fi
}

expect_rc "status before any run exits 1" 1 "$R" status
grep_in "status says never ran" "$T/out" "^upper: never ran"
expect_rc "dry-run exits 0" 0 "$R" run --dry-run
grep_in "dry-run names a stage" "$T/out" "^would run 'upper': never ran"
check "dry-run runs nothing" test ! -e upper.txt
expect_rc "first run" 0 "$R" run
ran "first run runs every stage" upper count shout other report
grep_in "report is right" report.txt "HELLO!"
expect_rc "status after a run exits 0" 0 "$R" status
expect_rc "rerun" 0 "$R" run
ran "rerun runs nothing" ""
grep_in "rerun says up to date" "$T/out" "nothing to run"

sleep 1
touch in.txt other.txt
expect_rc "run after touch" 0 "$R" run
ran "touch without a change runs nothing" ""

printf 'other two\n' >other.txt
expect_rc "status with a changed input exits 1" 1 "$R" status
grep_in "status names the changed dependency" "$T/out" "^other: dependency 'other.txt' changed"
grep_in "status names the stage downstream" "$T/out" "^report: upstream 'other' is stale"
no_grep_in "status leaves unrelated stages out" "$T/out" "^upper:"
expect_rc "run after a change" 0 "$R" run
ran "a changed input reruns exactly the stages downstream" other report

printf 'style:\n  case: upper\n  unused: 2\n' >params.yaml
expect_rc "a param nobody uses" 0 "$R" run
ran "changing an unused param runs nothing" ""
printf 'style:\n  case: lower\n  unused: 2\n' >params.yaml
expect_rc "status with a changed param" 1 "$R" status
grep_in "status names the param" "$T/out" "^shout: .*param 'style.case' changed: upper -> lower"
expect_rc "run with a changed param fails the stage that checks it" 1 "$R" run
printf 'style:\n  case: upper\n  unused: 2\n' >params.yaml

# identical outputs stop propagation: upper's command changes, its output does not
sed -i 's/tr a-z A-Z < in.txt > upper.txt/tr a-z A-Z <in.txt >upper.txt/' pipeline.yaml
expect_rc "run after a command change" 0 "$R" run
ran "a changed command reruns the stage; identical output stops there" upper
expect_rc "force" 0 "$R" run --force upper
ran "--force STAGE runs it (and what it needs)" upper
expect_rc "run STAGE" 0 "$R" run count
ran "run STAGE with nothing stale runs nothing" ""
rm count.txt
expect_rc "a missing output" 0 "$R" run count
ran "a deleted output reruns its stage only" count
printf 'tampered\n' >shout.txt
expect_rc "status with a changed output" 1 "$R" status shout
grep_in "status names the changed output" "$T/out" "^shout: output 'shout.txt' changed"
expect_rc "run after an output was edited" 0 "$R" run
ran "an edited output reruns its stage" shout

# dag
expect_rc "dag" 0 "$R" dag
grep_in "dag lists a stage with what it needs" "$T/out" "^report  <- count, shout, other$"
expect_rc "dag --dot" 0 "$R" dag --dot
grep_in "dag --dot is a digraph" "$T/out" '^digraph "pipeline" \{'
grep_in "dag --dot has an edge" "$T/out" '"upper" -> "count";'
if command -v dot >/dev/null 2>&1; then
	check "dot reads it" sh -c "'$R' dag --dot | dot -Tsvg >/dev/null"
fi

# foreach over a list and a map, env, wdir
mkdir -p sub
cat >fe.yaml <<'EOF'
vars:
  langs: [en, de]
stages:
  make:
    foreach: ${langs}
    do:
      cmd: echo "$GREETING ${item}" > out_${item}.txt
      outs: ["out_${item}.txt"]
      env: {GREETING: "hi from ${item}"}
  cfg:
    foreach:
      small: {width: 8}
      big: {width: 64}
    do:
      cmd: echo ${key} ${item.width} > cfg.txt
      wdir: sub/${key}
      outs: [cfg.txt]
EOF
mkdir -p sub/small sub/big
expect_rc "foreach pipeline runs" 0 "$R" run -f fe.yaml
ran "foreach names stages NAME@item and NAME@key" make@en make@de cfg@small cfg@big
grep_in "env reaches the command" out_de.txt "^hi from de de$"
grep_in "wdir is where the command runs" sub/big/cfg.txt "^big 64$"
expect_rc "run a foreach stage by its base name" 0 "$R" run -f fe.yaml --force make
ran "base name selects every instance" make@en make@de

# -j: two independent 1-second stages take about 1 s, not 2
cat >par.yaml <<'EOF'
stages:
  a: {cmd: sleep 1 && echo a > a.out, outs: [a.out]}
  b: {cmd: sleep 1 && echo b > b.out, outs: [b.out]}
EOF
s=$(date +%s.%N)
expect_rc "-j 2 runs" 0 "$R" run -j 2 -f par.yaml
e=$(date +%s.%N)
if awk -v s="$s" -v e="$e" 'BEGIN { exit !(e - s < 1.8) }'; then pass "-j 2 runs independent stages at once"; else fail "-j 2 runs independent stages at once" "took $(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}') s"; fi

# the front end
expect_rc "quern run status" 0 "$QN_BIN/quern" run status -f par.yaml
