// tiktoken_ids.mjs - the reference side of quern's byte-exact tokenizer test:
// encodes a corpus with the npm package `tiktoken` (OpenAI's tiktoken, Rust
// built to WebAssembly) and writes the ids, one document a line.
//
//   node tiktoken_ids.mjs NPM_PREFIX CORPUS ENCODING OUT [--allow-special]
//
// NPM_PREFIX is the folder `npm install --prefix` filled (its node_modules
// holds tiktoken). CORPUS has one JSON string a line (gen_tokcorpus). OUT
// gets the ids of each document separated by spaces. Special-token text is
// ordinary text unless --allow-special (then every special token counts).
// On stderr: documents, bytes, encode seconds and MB/s (encoding alone, on
// one thread: the figure quern's speed is compared with).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [prefix, corpus, encoding, out, flag] = process.argv.slice(2);
if (!out || (flag && flag !== "--allow-special")) {
	process.stderr.write("usage: node tiktoken_ids.mjs NPM_PREFIX CORPUS ENCODING OUT [--allow-special]\n");
	process.exit(2);
}
const require = createRequire(path.resolve(prefix, "node_modules", "x.js"));
const { get_encoding } = require("tiktoken");

const docs = fs.readFileSync(corpus, "utf8").split("\n");
if (docs[docs.length - 1] === "") docs.pop();
const texts = docs.map((line) => JSON.parse(line));
const enc = get_encoding(encoding);
const allowed = flag ? "all" : [];
const disallowed = [];

enc.encode("warm up the module", allowed, disallowed);
const ids = new Array(texts.length);
const t0 = process.hrtime.bigint();
for (let i = 0; i < texts.length; i++) ids[i] = enc.encode(texts[i], allowed, disallowed);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;

const fd = fs.openSync(out, "w");
let chunk = [];
for (const v of ids) {
	chunk.push(v.join(" "));
	if (chunk.length === 256) {
		fs.writeSync(fd, chunk.join("\n") + "\n");
		chunk = [];
	}
}
if (chunk.length) fs.writeSync(fd, chunk.join("\n") + "\n");
fs.closeSync(fd);
enc.free();

let bytes = 0;
for (const t of texts) bytes += Buffer.byteLength(t, "utf8");
process.stderr.write(
	`tiktoken ${encoding}: ${texts.length} documents, ${bytes} bytes, ${secs.toFixed(3)} s, ` +
		`${(bytes / 1e6 / secs).toFixed(2)} MB/s\n`,
);
