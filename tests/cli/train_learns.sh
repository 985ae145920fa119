# train_learns.sh - acceptance: quern-train learns. Tiny models on generated
# data with real structure, fixed seeds, one thread:
#   (a) pre-training on sentences of a small grammar drives the validation
#       loss well below the unigram entropy of the validation tokens;
#   (b) fine-tuning that model on {"prompt","completion"} examples lowers
#       the task's validation loss (only completion tokens count);
#   (c) a model trained on a repeating pattern continues it greedily.
. "$QN_TOP/tests/cli/lib.sh"
Q="$QN_BIN/quern-train"
K="$QN_BIN/quern-tokenize"

# num_ok NAME EXPR: the awk condition on numbers holds (shown when not).
num_ok() {
	if awk "BEGIN { exit !($2) }"; then pass "$1"; else fail "$1" "not ($2)"; fi
}
# val_losses FILE: the val_loss of every eval step, one a line.
val_losses() {
	jq -r 'select(has("val_loss")) | .val_loss' "$1" 2>/dev/null
}

# ---- (a) pre-training ---------------------------------------------------------
# Sentences from a small grammar: "the" and the punctuation are certain, the
# words of each slot drawn from small sets, so a model that learns the
# structure predicts far better than token frequencies alone.
awk -v seed=7 -v ndocs=600 'BEGIN {
	srand(seed)
	na = split("big small red old happy quiet", adj, " ")
	nn = split("cat dog bird fox child farmer", noun, " ")
	nv = split("sees chases likes finds helps follows", verb, " ")
	np = split("in near under behind", prep, " ")
	npl = split("garden house river forest", place, " ")
	for (d = 0; d < ndocs; d++) {
		s = ""
		ns = 3 + int(rand() * 4)
		for (k = 0; k < ns; k++) {
			w = "the " adj[1 + int(rand() * na)] " " noun[1 + int(rand() * nn)] " " \
				verb[1 + int(rand() * nv)] " the " noun[1 + int(rand() * nn)]
			if (rand() < 0.5)
				w = w " " prep[1 + int(rand() * np)] " the " place[1 + int(rand() * npl)]
			s = s (k ? " " : "") w "."
		}
		printf "{\"id\":\"d%d\",\"text\":\"%s\"}\n", d, s
	}
}' >"$T/corpus.jsonl"
"$K" train --vocab-size 320 -o "$T/tok" "$T/corpus.jsonl" 2>"$T/err" ||
	fail "(a) tokenizer" "$(head -c 300 "$T/err")"
expect_rc "(a) shards with a validation split" 0 "$K" encode -t "$T/tok" --val-fraction 0.1 \
	-o "$T/sh" "$T/corpus.jsonl"

# The unigram entropy (nats) of the validation tokens as the loader reads
# them: nanoGPT's export is the split's stream, end-of-text after each document.
"$K" export --format nanogpt --split val "$T/sh" "$T/val.bin" 2>"$T/err" ||
	fail "(a) export val" "$(head -c 300 "$T/err")"
H=$(od -An -v -t u2 "$T/val.bin" | awk '
	{ for (i = 1; i <= NF; i++) { c[$i]++; n++ } }
	END { if (n < 1000) exit 1; for (k in c) { p = c[k] / n; h -= p * log(p) } printf "%.4f", h }')
num_ok "(a) the validation split has 1000 tokens or more, entropy > 2 nats (${H:-none})" "${H:-0} > 2"

expect_rc "(a) init" 0 "$Q" init -t "$T/tok" --layers 2 --heads 4 --width 64 --context 64 --seed 1 \
	-o "$T/m0"
expect_rc "(a) fit 120 steps" 0 "$Q" fit "$T/m0" --data "$T/sh" -o "$T/pre" --steps 120 --batch 8 \
	--lr 3e-3 --eval-every 30 --eval-batches 8 --save-every 0 -j 1
val_losses "$T/pre/metrics.jsonl" >"$T/pre_val"
first=$(sed -n 1p "$T/pre_val")
last=$(sed -n '$p' "$T/pre_val")
lines "(a) four evaluations" "$T/pre_val" 4
num_ok "(a) validation loss falls ($first -> $last)" "${first:-0} > ${last:-1e9}"
below=$(awk "BEGIN { printf \"%.0f\", 100 * (1 - ${last:-1e9} / ${H:-1}) }")
num_ok "(a) val_loss $last nats is $below% below the unigram entropy $H nats (30% or more)" \
	"${last:-1e9} < 0.7 * ${H:-0}"

# ---- (b) fine-tuning ----------------------------------------------------------
# What each animal says: the prompt names it, the completion is its sound.
# The loss counts the completion's tokens only.
awk -v seed=11 -v n=300 'BEGIN {
	srand(seed)
	na = split("big small red old happy quiet", adj, " ")
	nn = split("cat dog bird fox child farmer", noun, " ")
	split("meow woof tweet yip hello howdy", sound, " ")
	for (i = 0; i < n; i++) {
		k = 1 + int(rand() * nn)
		printf "{\"id\":\"q%d\",\"prompt\":\"the %s %s says\",\"completion\":\" %s.\"}\n",
			i, adj[1 + int(rand() * na)], noun[k], sound[k]
	}
}' >"$T/task.jsonl"
expect_rc "(b) task shards with a validation split" 0 "$K" encode --template plain -t "$T/tok" \
	--val-fraction 0.25 -o "$T/tsh" "$T/task.jsonl"
# The pre-trained model's task loss: one step at learning rate 0 changes nothing.
expect_rc "(b) the pre-trained model's task loss" 0 "$Q" fit "$T/pre" --data "$T/tsh" -o "$T/ft0" \
	--steps 1 --lr 0 --batch 8 --eval-batches 8 --save-every 0 -j 1
base=$(val_losses "$T/ft0/metrics.jsonl")
expect_rc "(b) fine-tune 40 steps" 0 "$Q" fit "$T/pre" --data "$T/tsh" -o "$T/ft" --steps 40 \
	--lr 3e-3 --batch 8 --eval-every 10 --eval-batches 8 --save-every 0 -j 1
val_losses "$T/ft/metrics.jsonl" >"$T/ft_val"
ft_first=$(sed -n 1p "$T/ft_val")
ft_last=$(sed -n '$p' "$T/ft_val")
num_ok "(b) task val_loss falls during fine-tuning ($ft_first at step 10 -> $ft_last at step 40)" \
	"${ft_first:-0} > ${ft_last:-1e9}"
num_ok "(b) fine-tuning halves the task val_loss ($base before -> $ft_last after)" \
	"${ft_last:-1e9} < 0.5 * ${base:-0}"
cmp -s "$T/pre/model.safetensors" "$T/ft0/model.safetensors" &&
	pass "(b) learning rate 0 leaves the weights as they were" ||
	fail "(b) learning rate 0 leaves the weights as they were" "the model changed"

# ---- (c) a pattern, continued --------------------------------------------------
# Runs of the cycle a..g, each starting at a random letter, of random length.
awk -v seed=5 -v n=300 'BEGIN {
	srand(seed)
	m = split("a b c d e f g", L, " ")
	for (i = 0; i < n; i++) {
		s = ""
		o = int(rand() * m)
		len = 8 + int(rand() * 30)
		for (j = 0; j < len; j++)
			s = s (j ? " " : "") L[1 + (o + j) % m]
		printf "{\"id\":\"r%d\",\"text\":\"%s\"}\n", i, s
	}
}' >"$T/pattern.jsonl"
expect_rc "(c) pattern shards" 0 "$K" encode -t "$T/tok" -o "$T/psh" "$T/pattern.jsonl"
expect_rc "(c) init" 0 "$Q" init -t "$T/tok" --layers 2 --heads 2 --width 32 --context 32 --seed 4 \
	-o "$T/p0"
expect_rc "(c) fit 300 steps" 0 "$Q" fit "$T/p0" --data "$T/psh" -o "$T/pat" --steps 300 --batch 8 \
	--lr 3e-3 --save-every 0 -j 1
printf '%s\n' '{"prompt":"c d e f g a b"}' '{"prompt":"f g a b"}' '{"prompt":"a"}' \
	'{"prompt":"e f"}' >"$T/pp.jsonl"
expect_rc "(c) sample --temperature 0" 0 "$Q" sample "$T/pat" --temperature 0 --max-tokens 20 \
	"$T/pp.jsonl"
cp "$T/out" "$T/pat_out.jsonl"
# Each completion must be the cycle from the prompt's last letter on, for
# two full turns or more (14 characters: " x" a letter).
jq -r '[.prompt, .completion] | @tsv' "$T/pat_out.jsonl" >"$T/pat.tsv"
bad=$(awk -F '\t' '
	{
		cyc = "abcdefg"
		k = index(cyc, substr($1, length($1), 1))
		want = ""
		for (j = 1; j <= 30; j++)
			want = want " " substr(cyc, (k + j - 1) % 7 + 1, 1)
		if (length($2) < 14 || substr(want, 1, length($2)) != $2)
			printf "[%s] -> [%s], want [%s...] ", $1, $2, substr(want, 1, 20)
	}
	END { if (NR != 4) printf "%d lines, want 4", NR }' "$T/pat.tsv")
shown=$(jq -r .completion "$T/pat_out.jsonl" | sed -n 1p)
if [ -z "$bad" ]; then
	pass "(c) greedy sampling continues the pattern ('c d e f g a b' ->'$shown')"
else
	fail "(c) greedy sampling continues the pattern" "$bad"
fi
