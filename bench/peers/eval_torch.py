#!/usr/bin/python3
"""eval_torch.py - the PyTorch side of bench/eval.sh: multiple-choice scoring
as lm-evaluation-harness's Hugging Face model does it, on CPU.

    eval_torch.py strings --samples S.jsonl > strings.jsonl
    eval_torch.py score --samples S.jsonl --ids IDS --model DIR
        [--threads N] [--batch B] [--check]

The requests come from quern-audit eval's `--samples --log-text` file (the
prompt and each choice's continuation as text), so both sides score the
same (context, continuation) pairs; nothing else of quern's is used but its
tokenizer. `strings` prints, per request, the two texts lm-eval encodes:
the context without its trailing whitespace, and context + continuation
(HFLM._encode_pair). tests/tools/bpe_ids turns them into ids (IDS, one line
of ids a string, in order), and `score` takes the continuation's tokens as
lm-eval does: those of the whole after the context's.

Scoring is HFLM._loglikelihood_tokens: each request's input is
(context + continuation)[-(n_positions + 1):][:-1], requests sorted
longest first and padded into batches of B (default 32), one forward pass
of the whole model a batch with logits at every position, log_softmax, the
continuation's log-probabilities summed and its greedy check. The model is
GPT2LMHeadModel in plain PyTorch (transformers is not installed), fp32,
weights read from DIR/model.safetensors by hand (no safetensors module).
acc and acc_norm (length-normalised by characters) as lm-eval defines them.

Threads: as bench/peers/train_torch.py explains, Debian's torch multiplies
in the system OpenBLAS: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set to
--threads before torch is imported, and OMP_WAIT_POLICY defaults to PASSIVE.

Prints one JSON line: {"docs","requests","seconds","items_per_s","acc",
"acc_norm","threads","batch"} and, with --check, "max_abs_ll_diff" against
the log-likelihoods in the samples file and "same_predictions".
"""
import argparse
import json
import math
import os
import struct
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description="lm-eval-style multiple-choice scoring, PyTorch CPU")
    p.add_argument("mode", choices=["strings", "score"])
    p.add_argument("--samples", required=True)
    p.add_argument("--ids")
    p.add_argument("--model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--check", action="store_true")
    p.add_argument("--target-delimiter", default=" ")
    return p.parse_args()


def read_samples(path):
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = json.loads(line)
            args = s["arguments"]
            reqs = [(args["gen_args_%d" % i]["arg_0"], args["gen_args_%d" % i]["arg_1"])
                    for i in range(len(args))]
            docs.append({"reqs": reqs, "resps": s.get("filtered_resps"),
                         "target": s.get("target")})
    return docs


def pair_strings(ctx, cont):
    n = len(ctx) - len(ctx.rstrip())
    if n:
        cont = ctx[-n:] + cont
        ctx = ctx[:-n]
    return ctx, ctx + cont


def main_strings(a):
    for d in read_samples(a.samples):
        for ctx, cont in d["reqs"]:
            c, whole = pair_strings(ctx, cont)
            print(json.dumps(c, ensure_ascii=False))
            print(json.dumps(whole, ensure_ascii=False))


def load_safetensors(path, torch):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32)
        out[name[len("transformer."):] if name.startswith("transformer.") else name] = \
            t.reshape(info["shape"])
    return out


def main_score(a):
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    W = load_safetensors(os.path.join(a.model, "model.safetensors"), torch)
    L, H, C, P = cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["n_positions"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    F = torch.nn.functional

    def forward(x):  # x: (B, T) token ids -> (B, T, V) logits
        B, T = x.shape
        h = W["wte.weight"][x] + W["wpe.weight"][:T]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for l in range(L):
            p = "h.%d." % l
            y = F.layer_norm(h, (C,), W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            qkv = torch.addmm(W[p + "attn.c_attn.bias"], y.view(-1, C),
                              W[p + "attn.c_attn.weight"]).view(B, T, 3, H, C // H)
            q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B * T, C)
            h = h + torch.addmm(W[p + "attn.c_proj.bias"], y,
                                W[p + "attn.c_proj.weight"]).view(B, T, C)
            y = F.layer_norm(h, (C,), W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            y = F.gelu(torch.addmm(W[p + "mlp.c_fc.bias"], y.view(-1, C),
                                   W[p + "mlp.c_fc.weight"]), approximate="tanh")
            h = h + torch.addmm(W[p + "mlp.c_proj.bias"], y,
                                W[p + "mlp.c_proj.weight"]).view(B, T, C)
        h = F.layer_norm(h, (C,), W["ln_f.weight"], W["ln_f.bias"], eps)
        return h @ W["wte.weight"].t()

    docs = read_samples(a.samples)
    with open(a.ids) as f:
        ids = [[int(t) for t in line.split()] for line in f]
    reqs = []  # (doc, choice, input ids, continuation length, continuation ids)
    k = 0
    for di, d in enumerate(docs):
        for ci in range(len(d["reqs"])):
            ctx, whole = ids[k], ids[k + 1]
            k += 2
            cont = whole[len(ctx):]
            seq = (ctx + cont)[-(P + 1):]
            reqs.append((di, ci, seq[:-1], len(cont), cont))
    order = sorted(range(len(reqs)), key=lambda i: -len(reqs[i][2]))
    ll = [[0.0] * len(d["reqs"]) for d in docs]
    greedy = [[True] * len(d["reqs"]) for d in docs]
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(order), a.batch):
            batch = [reqs[i] for i in order[b:b + a.batch]]
            T = max(len(r[2]) for r in batch)
            x = torch.zeros(len(batch), T, dtype=torch.long)
            for i, r in enumerate(batch):
                x[i, :len(r[2])] = torch.tensor(r[2])
            logp = F.log_softmax(forward(x), dim=-1)
            for i, (di, ci, inp, n, cont) in enumerate(batch):
                rows = logp[i, len(inp) - n:len(inp)]
                tgt = torch.tensor(cont)
                ll[di][ci] = float(rows.gather(1, tgt[:, None]).sum())
                greedy[di][ci] = bool((rows.argmax(-1) == tgt).all())
    secs = time.perf_counter() - t0
    acc = acc_norm = 0
    for di, d in enumerate(docs):
        chars = [len(cont) - len(a.target_delimiter) for _, cont in d["reqs"]]
        pred = max(range(len(ll[di])), key=lambda i: (ll[di][i], -i))
        pred_norm = max(range(len(ll[di])), key=lambda i: (ll[di][i] / chars[i], -i))
        gold = d["target"]
        acc += pred == gold
        acc_norm += pred_norm == gold
    out = {"docs": len(docs), "requests": len(reqs), "seconds": round(secs, 3),
           "items_per_s": round(len(docs) / secs, 2), "acc": acc / len(docs),
           "acc_norm": acc_norm / len(docs), "threads": a.threads, "batch": a.batch}
    if a.check:
        diff, same = 0.0, True
        for di, d in enumerate(docs):
            theirs = [r[0] for r in d["resps"]]
            diff = max(diff, max(abs(x - y) for x, y in zip(ll[di], theirs)))
            same &= [r[1] for r in d["resps"]] == greedy[di]
        out["max_abs_ll_diff"] = diff
        out["same_greedy"] = same
    print(json.dumps(out))


def main():
    a = parse_args()
    if a.mode == "strings":
        main_strings(a)
    else:
        if not a.ids or not a.model:
            sys.exit("eval_torch.py: score needs --ids and --model")
        main_score(a)


if __name__ == "__main__":
    main()
