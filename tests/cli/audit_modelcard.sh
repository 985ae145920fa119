# audit_modelcard.sh - acceptance 4 of the model-audit issue: a fixture
# pipeline built with the real tools (ingest of HTML pages with canonical
# URLs on three domains, clean with stats, tokenize, a tiny train), plus
# eval, memorization and canary results as their commands document them;
# every computed field appears in the model card (JSON and Markdown) and in
# the EU training-content summary. Then kinds by content and bad input.
. "$QN_TOP/tests/cli/lib.sh"
A="$QN_BIN/quern-audit"
B="$QN_BIN"
export SOURCE_DATE_EPOCH=1790000000
P="$T/p"
mkdir -p "$P/src"
i=0
for d in alpha.example.com beta.example.org alpha.example.com gamma.example.net alpha.example.com; do
	i=$((i + 1))
	printf '<html><head><title>Page %s</title><link rel="canonical" href="https://www.%s/docs/p%s.html"></head><body><p>Page %s of the river notes. The quiet farmer %s walks to the river every morning.</p><p>Write to farmer%s@example.com about the harvest.</p></body></html>\n' \
		"$i" "$d" "$i" "$i" "$i" "$i" >"$P/src/page$i.html"
done
cp "$P/src/page1.html" "$P/src/dup.html"
(
	cd "$P" || exit 1
	"$B/quern-ingest" -o docs.jsonl src &&
		"$B/quern-clean" --steps=normalize,exact_dedup,lang,pii -o clean.jsonl -r rej.jsonl --stats clean.stats.json docs.jsonl &&
		"$B/quern-tokenize" train --vocab-size 300 -o tok clean.jsonl &&
		"$B/quern-tokenize" encode -t tok --val-fraction 0.2 -o shards clean.jsonl &&
		"$B/quern-train" init -t tok --layers 2 --heads 2 --width 32 --context 64 --seed 1 -o m0 &&
		"$B/quern-train" fit m0 --data shards -o m --steps 40 --batch 4 --lr 5e-3 --warmup 5 --save-every 20 --eval-every 10 -j 2 &&
		"$A" probe m --prompts /dev/null --summary probe.json -o /dev/null
) >"$T/build.log" 2>&1 && pass "fixture pipeline built" || fail "fixture pipeline built" "$(tail -c 300 "$T/build.log")"
cat >"$P/eval.json" <<'J'
{"results":{"copa":{"alias":"copa","acc,none":0.75,"acc_stderr,none":0.0433,"acc_norm,none":0.5,"acc_norm_stderr,none":0.05}},
 "group_subtasks":{},"configs":{"copa":{"task":"copa","dataset_path":"data/copa.jsonl"}},"versions":{"copa":1},
 "n-shot":{"copa":5},"higher_is_better":{"copa":{"acc":true}},"n-samples":{"copa":{"original":100,"effective":100}}}
J
cat >"$P/memo.json" <<'J'
{"tool":"quern-audit memorization","prefix":16,"suffix":16,"score":"carlini","samples":200,
 "train":{"documents":200,"exact_match":0.91,"token_match":0.95,"lcp_mean":14.5,"lcp_median":16},
 "heldout":{"documents":20,"exact_match":0.0,"token_match":0.02,"lcp_mean":0.05,"lcp_median":0},
 "difference":{"exact_match":0.91,"token_match":0.93,"lcp_mean":14.45,"lcp_median":16}}
J
cat >"$P/canary.json" <<'J'
{"tool":"quern-audit canary exposure","candidates":10000,"canaries":[],
 "by_reps":[{"reps":0,"canaries":2,"exposure_mean":1.07,"exposure_min":0.5,"exposure_max":1.6,"exposure_skewnorm_mean":1.05},
            {"reps":100,"canaries":2,"exposure_mean":12.8,"exposure_min":12.5,"exposure_max":13.1,"exposure_skewnorm_mean":13.5}]}
J
cd "$P" || exit 1
steps=$(jq .counters.steps m/run.manifest.json)
tokens=$(jq .counters.tokens m/run.manifest.json)
params=$(jq .counters.parameters m/run.manifest.json)
fp=$(jq -r .tokenizer shards/run.manifest.json)
ttok=$(jq .counters.tokens shards/run.manifest.json)
dtrain=$(jq .counters.documents_train shards/run.manifest.json)
dval=$(jq .counters.documents_val shards/run.manifest.json)
vl=$(tail -n 1 m/metrics.jsonl | jq .val_loss)

expect_rc "model-card: exit 0" 0 "$A" model-card --name "River GPT" -o card.md --json card.json \
	m docs.jsonl.manifest.json clean.jsonl.manifest.json shards/run.manifest.json eval.json memo.json canary.json probe.json
for s in "Model Details" "Intended Use" "Factors" "Metrics" "Evaluation Data" "Training Data" \
	"Quantitative Analyses" "Ethical Considerations" "Caveats and Recommendations"; do
	grep_in "card: section $s" card.md "^## $s\$"
done
check "card json: parameters from config.json = the run's count ($params)" jq -e ".model_details.architecture.parameters == $params" card.json
check "card json: steps and tokens ($steps, $tokens)" jq -e ".model_details.training.steps == $steps and .model_details.training.tokens == $tokens" card.json
check "card json: tokenizer fingerprint" jq -e ".model_details.architecture.tokenizer == \"$fp\"" card.json
check "card json: hyperparameters from the training state" jq -e '.model_details.training.hyperparameters.lr == 0.005 and .model_details.training.hyperparameters.batch == 4' card.json
check "card json: final val loss" jq -e ".model_details.training.final_val_loss == $vl" card.json
check "card json: training data counts" jq -e ".training_data.documents_train == $dtrain and .training_data.documents_val == $dval and .training_data.tokens == $ttok and .training_data.duplicates_removed == 1 and .training_data.documents_ingested == 6" card.json
check "card json: eval metrics with stderr" jq -e '[.quantitative_analyses.evaluation[] | select(.task == "copa")] | length == 2 and .[0].stderr == 0.0433 and .[0].samples == 100' card.json
check "card json: memorization" jq -e '.quantitative_analyses.memorization[0].train.exact_match == 0.91' card.json
check "card json: canaries" jq -e '.quantitative_analyses.canaries[1].exposure_mean == 12.8' card.json
check "card json: loss curve points" jq -e "(.quantitative_analyses.loss_curve.points | length) == $steps and .quantitative_analyses.loss_curve.svg == \"card-loss.svg\"" card.json
check "card json: the probe summary" jq -e '.ethical_considerations.scans[0].kind == "probe"' card.json
for f in "| parameters | $params |" "| steps | $steps |" "| tokens | $tokens |" "$fp" "| copa | acc | none | 0.7500 | 0.0433 | 100 |" \
	"| exact_match | 0.91 | 0 | 0.91 |" "| 100 | 2 | 12.8 |" "$ttok tokens" "(card-loss.svg)"; do
	if grep -qF -- "$f" card.md; then pass "card md: $f"; else fail "card md: $f" "missing"; fi
done
grep_in "card md: marked prompts" card.md '^> \*\*To be answered by the model owner:\*\*'
check "the loss SVG is written and well formed" xmllint --noout card-loss.svg
grep_in "the SVG has both curves" card-loss.svg 'stroke="#d1470f"'

expect_rc "eu-summary: exit 0" 0 "$A" eu-summary --name "River GPT" -o eu.md --json eu.json \
	m docs.jsonl.manifest.json clean.jsonl.manifest.json shards/run.manifest.json
for s in "1. General information" "2. List of data sources" "3. Data processing aspects"; do
	grep_in "eu: section $s" eu.md "^## $s\$"
done
for s in "2.1 Publicly available datasets" "2.3 Data crawled and scraped from online sources" "2.5 Synthetic data" "3.2 Removal of illegal content"; do
	grep_in "eu: subsection $s" eu.md "^### $s\$"
done
check "eu json: tokens and documents" jq -e ".general_information.tokens == $ttok and .general_information.documents == $((dtrain + dval)) and .general_information.tokens_range == \"less than 1 billion tokens\"" eu.json
check "eu json: top domains by bytes (www. dropped)" jq -e '.data_sources.top_domains[0].domain == "alpha.example.com" and .data_sources.top_domains[0].documents == 3 and .data_sources.domains_total == 3' eu.json
check "eu json: shares add up to 1" jq -e '([.data_sources.top_domains[].share] | add) > 0.999' eu.json
check "eu json: dedup and pii from the clean stats" jq -e '.data_processing.duplicates_removed == 1 and .data_processing.pii.EMAIL == 5 and .general_information.languages.en == 5' eu.json
check "eu json: ingestion counts" jq -e '.data_sources.source_files == 6 and .data_sources.documents_ingested == 6' eu.json
for f in "$ttok tokens" "| alpha.example.com | 3 |" "| exact\\_dedup | 1 |" "| EMAIL | 5 |" "| languages (documents) | en 5 |"; do
	if grep -qF -- "$f" eu.md; then pass "eu md: $f"; else fail "eu md: $f" "missing"; fi
done
grep_in "eu md: marked prompts" eu.md '^> \*\*To be answered by the provider:\*\*'
expect_rc "eu-summary --docs" 0 "$A" eu-summary --docs docs.jsonl --json eu2.json shards/run.manifest.json
check "--docs: the ingested documents (6)" jq -e '.data_sources.documents_read == 6' eu2.json

# ---- bad input ----
expect_rc "model-card --help" 0 "$A" model-card --help
grep_in "model-card --help: usage" "$T/out" '^usage: quern-audit model-card'
expect_rc "eu-summary --help" 0 "$A" eu-summary --help
expect_rc "model-card bad flag" 2 "$A" model-card --bogus x
expect_rc "eu-summary bad flag" 2 "$A" eu-summary --bogus x
expect_rc "model-card no input" 2 "$A" model-card
echo '{"hello":1}' >odd.json
expect_rc "unrecognised file: exit 1, card still written" 1 "$A" model-card -o c2.md odd.json eval.json
grep_in "names the file" "$T/err" "'odd.json': not a model config"
check "card written from the others" grep -q copa c2.md
printf '{"results": {"a": 1,}\n' >broken.json
expect_rc "malformed JSON" 1 "$A" model-card broken.json
grep_in "malformed JSON: file:line:column" "$T/err" 'broken.json:1:[0-9]+'
printf '{"step":1,"loss":2}\n{"step":2,"loss":\n' >bad.jsonl
expect_rc "bad metrics line" 1 "$A" model-card bad.jsonl eval.json
grep_in "bad metrics line: named" "$T/err" 'bad.jsonl:2:[0-9]+'
expect_rc "missing file" 1 "$A" eu-summary nope.json
expect_rc "model-card /dev/full" 1 sh -c "'$A' model-card eval.json >/dev/full"
expect_rc "eu-summary /dev/full" 1 "$A" eu-summary -o /dev/full shards/run.manifest.json
