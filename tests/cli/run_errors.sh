# run_errors.sh - quern-run on bad pipelines (acceptance 6): a cycle (named),
# an undefined variable, an output declared twice, a missing dependency,
# bad keys and values, all with file:line:column; usage errors.
. "$QN_TOP/tests/cli/lib.sh"
R="$QN_BIN/quern-run"
cd "$T" || exit 1

cat >cycle.yaml <<'EOF'
stages:
  a:
    cmd: cat c.txt > a.txt
    deps: [c.txt]
    outs: [a.txt]
  b:
    cmd: cat a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: cat b.txt > c.txt
    deps: [b.txt]
    outs: [c.txt]
EOF
expect_rc "a cycle is refused" 1 "$R" run -f cycle.yaml
grep_in "the cycle is named, stage by stage" "$T/err" "cycle.yaml:[0-9]+:[0-9]+: the stages form a cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"
expect_rc "dag refuses a cycle too" 1 "$R" dag -f cycle.yaml

cat >undef.yaml <<'EOF'
vars:
  known: 1
stages:
  a:
    cmd: echo ${known} ${unknown} > a.txt
    outs: [a.txt]
EOF
expect_rc "an undefined variable is refused" 1 "$R" run -f undef.yaml
grep_in "it names the variable and its place" "$T/err" "undef.yaml:5:10: undefined variable 'unknown' in 'cmd' of stage 'a'"
check "nothing ran" test ! -e a.txt

cat >twice.yaml <<'EOF'
stages:
  a:
    cmd: echo a > out.txt
    outs: [out.txt]
  b:
    cmd: echo b > out.txt
    outs: [out.txt]
EOF
expect_rc "an output declared twice is refused" 1 "$R" run -f twice.yaml
grep_in "it names both stages" "$T/err" "twice.yaml:7:12: output 'out.txt' is declared by two stages: 'a' \(line 4\) and 'b'"

cat >nested.yaml <<'EOF'
stages:
  a: {cmd: mkdir -p d && echo a > d/x, outs: [d]}
  b: {cmd: echo b > d/y, outs: [d/y]}
EOF
expect_rc "an output inside another is refused" 1 "$R" status -f nested.yaml
grep_in "it names both" "$T/err" "output 'd/y' of stage 'b' is inside output 'd' of stage 'a'"

cat >missing.yaml <<'EOF'
stages:
  a:
    cmd: cat nowhere.txt > a.txt
    deps:
      - nowhere.txt
    outs: [a.txt]
EOF
expect_rc "a missing dependency is refused" 1 "$R" run -f missing.yaml
grep_in "it names the dependency, the stage and the place" "$T/err" "missing.yaml:5:9: dependency 'nowhere.txt' of stage 'a' does not exist and no stage makes it"
expect_rc "status refuses it too" 1 "$R" status -f missing.yaml

cat >self.yaml <<'EOF'
stages:
  a: {cmd: cat a.txt > a.txt, deps: [a.txt], outs: [a.txt]}
EOF
expect_rc "a stage needing its own output is refused" 1 "$R" run -f self.yaml
grep_in "it says so" "$T/err" "stage 'a' depends on its own output 'a.txt'"

printf 'stages:\n  a:\n    cmd: echo\n    dpes: [x]\n' >typo.yaml
expect_rc "an unknown key is refused" 1 "$R" run -f typo.yaml
grep_in "it names the key and its place" "$T/err" "typo.yaml:4:5: unknown key 'dpes'"
printf 'stages:\n  a:\n    cmd: echo\n    timeout: soon\n' >to.yaml
expect_rc "a bad timeout is refused" 1 "$R" run -f to.yaml
grep_in "it says what a timeout is" "$T/err" "to.yaml:4:14: 'timeout' of stage 'a' must be a duration"
printf 'stages:\n  a:\n    outs: [x]\n' >nocmd.yaml
expect_rc "a stage without cmd is refused" 1 "$R" run -f nocmd.yaml
grep_in "it names the stage" "$T/err" "nocmd.yaml:2:3: stage 'a' has no 'cmd'"
printf 'stages:\n  a:\n    cmd: echo\n    params: [lr]\n' >noparam.yaml
expect_rc "a param not in the params file is refused" 1 "$R" run -f noparam.yaml
grep_in "it names the param" "$T/err" "noparam.yaml:4:14: param 'lr' of stage 'a' is not in"
printf 'stages: [\n' >syntax.yaml
expect_rc "a YAML syntax error is refused" 1 "$R" run -f syntax.yaml
grep_in "with its place" "$T/err" "syntax.yaml:[0-9]+:[0-9]+: "
expect_rc "a missing pipeline file" 1 "$R" run -f nope.yaml
grep_in "is named" "$T/err" "cannot open 'nope.yaml'"
printf 'stages:\n  a:\n    cmd: echo \\${HOME} > h.txt\n    outs: [h.txt]\n' >esc.yaml
expect_rc "\\\${ is a literal \${" 0 "$R" run -q -f esc.yaml
grep_in "the shell expanded it" h.txt "^/"

# usage errors
expect_rc "no command" 2 "$R"
expect_rc "an unknown command" 2 "$R" frobnicate
grep_in "names it" "$T/err" "unknown command 'frobnicate'"
expect_rc "an unknown stage" 2 "$R" run -f esc.yaml nosuch
grep_in "names the stage" "$T/err" "no stage 'nosuch'"
expect_rc "a bad -j" 2 "$R" run -j x -f esc.yaml
expect_rc "--dot without dag" 2 "$R" status --dot -f esc.yaml
expect_rc "lineage without an artifact" 2 "$R" lineage -f esc.yaml
expect_rc "status to a full disk exits 1" 1 sh -c "'$R' status -f esc.yaml >/dev/full"
