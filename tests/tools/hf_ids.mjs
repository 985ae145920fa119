// hf_ids.mjs NPM_PREFIX TOKENIZER_JSON DOCS_JSONL
//
// Encodes the "text" of every JSON line with the npm package
// @huggingface/tokenizers (installed under NPM_PREFIX) and prints one line
// per document: {"ids": [...], "roundtrip": true|false, "pieces": [...]},
// where roundtrip says decode(encode(text)) === text and pieces are what the
// first pre-tokenizer (the Split regex) makes of the whole text, special
// tokens included as text. Ids are those of
// encode(text, {add_special_tokens: false}); decoding keeps special tokens
// and does not "clean up" spaces, so the round trip is exact.
// Used by tests/cli/tokenize_train_hf.sh.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [prefix, tokenizerPath, docsPath] = process.argv.slice(2);
if (!docsPath) {
	process.stderr.write("usage: node hf_ids.mjs NPM_PREFIX TOKENIZER_JSON DOCS_JSONL\n");
	process.exit(2);
}
const require = createRequire(join(prefix, "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");

const json = JSON.parse(readFileSync(tokenizerPath, "utf8"));
// The package's API: new Tokenizer(tokenizer.json, tokenizer_config.json).
const tokenizer = new Tokenizer(json, { clean_up_tokenization_spaces: false });

const out = [];
for (const line of readFileSync(docsPath, "utf8").split("\n")) {
	if (!line.trim()) continue;
	const text = JSON.parse(line).text;
	const ids = text.length ? tokenizer.encode(text, { add_special_tokens: false }).ids : [];
	const back = ids.length
		? tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false })
		: "";
	const split = tokenizer.pre_tokenizer.tokenizers[0];
	const pieces = text.length ? split.pre_tokenize_text(text) : [];
	out.push(JSON.stringify({ ids, roundtrip: back === text, pieces }));
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
