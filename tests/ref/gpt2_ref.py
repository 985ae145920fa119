#!/usr/bin/python3
"""gpt2_ref.py - the independent PyTorch reference for `quern-train check`.

    /usr/bin/python3 tests/ref/gpt2_ref.py tests/fixtures/gpt2

(Debian's python3-torch 1.13 and python3-numpy; no transformers, no
safetensors package.) A tiny GPT-2 written out in plain PyTorch with the
semantics of Hugging Face's GPT2LMHeadModel: learned wte/wpe, pre-LayerNorm
blocks (eps 1e-5), Conv1D layout (weight (in, out), y = x @ W + b), a fused
c_attn whose output splits into q, k, v in that order, heads split as
view(B, T, H, hd), causal softmax attention scaled by 1/sqrt(hd), the tanh
GELU ("gelu_new"), a final ln_f and logits = h @ wte.T (tied). The loss is
the mean cross entropy over all B*T positions. Everything is float32.

Before writing, the script checks itself (a failure stops it, exit 1):
Conv1D against F.linear, gelu_new against F.gelu(approximate='tanh'), the
attention against torch.nn.MultiheadAttention with a causal mask and against
an explicit masked_fill softmax, LayerNorm against a hand-written one, the
whole loss against a second model built from torch.nn modules, and the
gradients against torch.autograd.gradcheck in float64 on a tiny instance.

It writes into OUTDIR (see tests/fixtures/gpt2/README.md for details):
  config.json          Hugging Face GPT2Config fields
  model.safetensors    the initial weights, laid out as the real
                       openai-community/gpt2 model.safetensors (no
                       "transformer." prefix, h.N.attn.bias mask buffers,
                       no lm_head.weight)
  batch.bin            B*(T+1) little-endian uint32 tokens, row-major
  batch.json           the same tokens as B arrays of T+1 ints
  expected.safetensors logits [B,T,V], loss [1], grads.NAME at the initial
                       weights; losses [10] before each AdamW step and
                       params.NAME after the 10 steps
and prints the float32-vs-float64 distances that README.md quotes.

The output is deterministic: the same machine regenerates byte-identical
files (one thread, fixed seed). Another CPU may round matmuls differently in
the last bit; the C side's tolerances are far wider than that.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

SEED = 1337
VOCAB = 96
NPOS = 24
NEMBD = 32
NLAYER = 2
NHEAD = 4
B, T = 3, 12
EPS = 1e-5

STEPS = 10
LR, BETAS, ADAM_EPS, WD, CLIP = 1e-3, (0.9, 0.95), 1e-8, 0.1, 1.0

CONFIG = {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "vocab_size": VOCAB,
    "n_positions": NPOS,
    "n_ctx": NPOS,
    "n_embd": NEMBD,
    "n_layer": NLAYER,
    "n_head": NHEAD,
    "n_inner": None,
    "activation_function": "gelu_new",
    "layer_norm_epsilon": EPS,
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "initializer_range": 0.02,
    "bos_token_id": VOCAB - 1,
    "eos_token_id": VOCAB - 1,
    "tie_word_embeddings": True,
}


# ---- the model -------------------------------------------------------------


def param_shapes(V, P, C, L):
    """(name, shape) of every parameter, in the order of Hugging Face's
    GPT2Model.named_parameters() (the init draws in this order)."""
    out = [("wte.weight", (V, C)), ("wpe.weight", (P, C))]
    for i in range(L):
        h = f"h.{i}."
        out += [
            (h + "ln_1.weight", (C,)),
            (h + "ln_1.bias", (C,)),
            (h + "attn.c_attn.weight", (C, 3 * C)),
            (h + "attn.c_attn.bias", (3 * C,)),
            (h + "attn.c_proj.weight", (C, C)),
            (h + "attn.c_proj.bias", (C,)),
            (h + "ln_2.weight", (C,)),
            (h + "ln_2.bias", (C,)),
            (h + "mlp.c_fc.weight", (C, 4 * C)),
            (h + "mlp.c_fc.bias", (4 * C,)),
            (h + "mlp.c_proj.weight", (4 * C, C)),
            (h + "mlp.c_proj.bias", (C,)),
        ]
    out += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    return out


def is_decayed(name):
    """Weight decay applies to the four matrices of each block only."""
    return name.startswith("h.") and name.endswith(
        ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"))


def init_params(gen, V, P, C, L):
    """GPT-2's init (normal 0.02, c_proj scaled by 1/sqrt(2L)), then LayerNorm
    weights 1 + 0.1 randn and every bias 0.02 randn so that their gradients
    are not trivially those of an identity."""
    params = {}
    for name, shape in param_shapes(V, P, C, L):
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.02 * torch.randn(shape, generator=gen)
        elif name.endswith("c_proj.weight"):
            t = torch.normal(0.0, 0.02 / math.sqrt(2 * L), shape, generator=gen)
        else:
            t = torch.normal(0.0, 0.02, shape, generator=gen)
        params[name] = t.float()
    return params


def conv1d(x, w, b):
    """Hugging Face's Conv1D: weight (in, out), y = x @ W + b (addmm, as HF)."""
    shape = x.shape[:-1] + (w.shape[1],)
    return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).view(shape)


def gelu_new(x):
    """The tanh GELU, exactly as transformers' NewGELUActivation."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def attention(x, p, h, nhead):
    """Causal self-attention as GPT2Attention: q, k, v = split(c_attn(x)),
    heads as view(B, T, H, hd), scores / sqrt(hd), causal mask, softmax."""
    Bx, Tx, C = x.shape
    hd = C // nhead
    qkv = conv1d(x, p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"])
    q, k, v = qkv.split(C, dim=2)
    q = q.view(Bx, Tx, nhead, hd).permute(0, 2, 1, 3)  # (B, H, T, hd)
    k = k.view(Bx, Tx, nhead, hd).permute(0, 2, 1, 3)
    v = v.view(Bx, Tx, nhead, hd).permute(0, 2, 1, 3)
    att = torch.matmul(q, k.transpose(-1, -2))  # (B, H, T, T)
    att = att / torch.full([], v.size(-1) ** 0.5, dtype=att.dtype)
    causal = torch.tril(torch.ones(Tx, Tx, dtype=torch.bool)).view(1, 1, Tx, Tx)
    att = torch.where(causal, att, torch.tensor(torch.finfo(att.dtype).min, dtype=att.dtype))
    att = torch.softmax(att, dim=-1)
    y = torch.matmul(att, v)  # (B, H, T, hd)
    y = y.permute(0, 2, 1, 3).contiguous().view(Bx, Tx, C)
    return conv1d(y, p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"])


def forward(p, idx, nlayer, nhead):
    """Logits (B, T, V) for tokens idx (B, T)."""
    Bx, Tx = idx.shape
    C = p["wte.weight"].shape[1]
    x = p["wte.weight"][idx] + p["wpe.weight"][torch.arange(Tx)]
    for i in range(nlayer):
        h = f"h.{i}."
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], EPS)
        x = x + attention(a, p, h, nhead)
        m = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], EPS)
        m = conv1d(m, p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"])
        m = conv1d(gelu_new(m), p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"])
        x = x + m
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], EPS)
    return torch.matmul(x, p["wte.weight"].t())


def loss_of(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# ---- self-checks against torch built-ins ------------------------------------


def check(what, got, want, tol):
    d = (got - want).abs().max().item()
    if not d <= tol:
        sys.exit(f"gpt2_ref.py: self-check failed: {what}: max abs diff {d:.3g} > {tol:g}")
    print(f"  ok {what} (max abs diff {d:.2g})")


class NNBlock(torch.nn.Module):
    """A second, independent block: nn.LayerNorm, nn.MultiheadAttention with
    a causal mask, nn.Linear and F.gelu(approximate='tanh')."""

    def __init__(self, p, h, C, nhead):
        super().__init__()
        dt = p[h + "ln_1.weight"].dtype
        self.ln1 = torch.nn.LayerNorm(C, eps=EPS).to(dt)
        self.ln2 = torch.nn.LayerNorm(C, eps=EPS).to(dt)
        self.mha = torch.nn.MultiheadAttention(C, nhead, batch_first=True).to(dt)
        self.fc = torch.nn.Linear(C, 4 * C).to(dt)
        self.proj = torch.nn.Linear(4 * C, C).to(dt)
        with torch.no_grad():
            self.ln1.weight.copy_(p[h + "ln_1.weight"])
            self.ln1.bias.copy_(p[h + "ln_1.bias"])
            self.ln2.weight.copy_(p[h + "ln_2.weight"])
            self.ln2.bias.copy_(p[h + "ln_2.bias"])
            # Conv1D (in, out) is nn.Linear's weight transposed; in_proj
            # stacks q, k, v as rows, c_attn stacks them as columns.
            self.mha.in_proj_weight.copy_(p[h + "attn.c_attn.weight"].t())
            self.mha.in_proj_bias.copy_(p[h + "attn.c_attn.bias"])
            self.mha.out_proj.weight.copy_(p[h + "attn.c_proj.weight"].t())
            self.mha.out_proj.bias.copy_(p[h + "attn.c_proj.bias"])
            self.fc.weight.copy_(p[h + "mlp.c_fc.weight"].t())
            self.fc.bias.copy_(p[h + "mlp.c_fc.bias"])
            self.proj.weight.copy_(p[h + "mlp.c_proj.weight"].t())
            self.proj.bias.copy_(p[h + "mlp.c_proj.bias"])

    def forward(self, x):
        Tx = x.shape[1]
        mask = torch.triu(torch.ones(Tx, Tx, dtype=torch.bool), diagonal=1)  # True = masked
        a = self.ln1(x)
        x = x + self.mha(a, a, a, attn_mask=mask, need_weights=False)[0]
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


def nn_forward(p, idx, nlayer, nhead):
    C = p["wte.weight"].shape[1]
    x = F.embedding(idx, p["wte.weight"]) + F.embedding(torch.arange(idx.shape[1]), p["wpe.weight"])
    for i in range(nlayer):
        x = NNBlock(p, f"h.{i}.", C, nhead)(x)
    ln = torch.nn.LayerNorm(C, eps=EPS).to(x.dtype)
    with torch.no_grad():
        ln.weight.copy_(p["ln_f.weight"])
        ln.bias.copy_(p["ln_f.bias"])
    return F.linear(ln(x), p["wte.weight"])


def masked_fill_attention(x, p, h, nhead):
    """The textbook version: scale q first, masked_fill(-inf), softmax."""
    Bx, Tx, C = x.shape
    hd = C // nhead
    qkv = x @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]
    q, k, v = (t.reshape(Bx, Tx, nhead, hd).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    att = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)
    att = att.masked_fill(torch.triu(torch.ones(Tx, Tx, dtype=torch.bool), 1), float("-inf"))
    y = (att.softmax(-1) @ v).transpose(1, 2).reshape(Bx, Tx, C)
    return y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]


def self_check(params, idx):
    print("self-checks:")
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(B, T, NEMBD, generator=gen)
    w, b = params["h.0.mlp.c_fc.weight"], params["h.0.mlp.c_fc.bias"]
    check("conv1d == F.linear(x, W.T, b)", conv1d(x, w, b), F.linear(x, w.t(), b), 1e-6)
    z = 4 * torch.randn(1000, generator=gen)
    check("gelu_new == F.gelu(approximate='tanh')", gelu_new(z), F.gelu(z, approximate="tanh"), 1e-6)
    ref_gelu = z.double() * 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (z.double() + 0.044715 * z.double() ** 3)))
    check("gelu_new == float64 formula", gelu_new(z).double(), ref_gelu, 1e-6)
    ln = F.layer_norm(x, (NEMBD,), params["h.0.ln_1.weight"], params["h.0.ln_1.bias"], EPS)
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    check("layer_norm == (x - mean) / sqrt(var + eps) * w + b", ln,
          (x - mu) / torch.sqrt(var + EPS) * params["h.0.ln_1.weight"] + params["h.0.ln_1.bias"], 1e-5)
    a = attention(x, params, "h.1.", NHEAD)
    check("attention == masked_fill softmax attention", a, masked_fill_attention(x, params, "h.1.", NHEAD), 1e-6)
    blk = NNBlock(params, "h.1.", NEMBD, NHEAD)
    with torch.no_grad():
        got = blk.mha(x, x, x, attn_mask=torch.triu(torch.ones(T, T, dtype=torch.bool), 1), need_weights=False)[0]
    check("attention == nn.MultiheadAttention (causal)", a, got, 1e-6)
    with torch.no_grad():
        check("model logits == nn.Module model", forward(params, idx, NLAYER, NHEAD), nn_forward(params, idx, NLAYER, NHEAD), 1e-5)
    # Later tokens never change earlier logits.
    idx2 = idx.clone()
    idx2[:, -1] = (idx2[:, -1] + 1) % VOCAB
    with torch.no_grad():
        check("causality: logits before the last position ignore it",
              forward(params, idx2, NLAYER, NHEAD)[:, :-1], forward(params, idx, NLAYER, NHEAD)[:, :-1], 0.0)
    # Gradients: gradcheck in float64 on a tiny instance, every parameter.
    tgen = torch.Generator().manual_seed(11)
    tiny = {k: v.double() for k, v in init_params(tgen, 11, 6, 8, 2).items()}
    tidx = torch.randint(0, 11, (2, 5), generator=tgen)
    ttgt = torch.randint(0, 11, (2, 5), generator=tgen)
    names = list(tiny)

    def f(*ts):
        return loss_of(forward(dict(zip(names, ts)), tidx, 2, 2), ttgt)

    inputs = tuple(tiny[n].clone().requires_grad_(True) for n in names)
    if not torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8, rtol=1e-6):
        sys.exit("gpt2_ref.py: self-check failed: gradcheck")
    print("  ok gradcheck (float64, V=11 P=6 C=8 L=2 H=2, B=2 T=5, every parameter)")


# ---- forward/backward and AdamW ---------------------------------------------


def loss_and_grads(params, idx, targets):
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    logits = forward(p, idx, NLAYER, NHEAD)
    loss = loss_of(logits, targets)
    loss.backward()
    return logits.detach(), loss.detach(), {k: v.grad for k, v in p.items()}


def train(params, idx, targets):
    """10 AdamW steps on the one batch; the loss before each step and the
    final parameters. The parameter order (param_shapes) is the order of the
    global-norm sum in clip_grad_norm_."""
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    decay = [v for k, v in p.items() if is_decayed(k)]
    no_decay = [v for k, v in p.items() if not is_decayed(k)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=ADAM_EPS, weight_decay=WD)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(forward(p, idx, NLAYER, NHEAD), targets)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(list(p.values()), CLIP).item())
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=params["wte.weight"].dtype), {k: v.detach() for k, v in p.items()}, norms


# ---- files ------------------------------------------------------------------


def write_safetensors(path, tensors):
    """tensors: name -> float32 tensor. Header: __metadata__ first, then the
    keys sorted, data in the same order, padded with spaces to 8 bytes."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        assert t.dtype == torch.float32, name
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for d in blobs:
            f.write(d)


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: /usr/bin/python3 tests/ref/gpt2_ref.py OUTDIR")
    out = sys.argv[1]
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    params = init_params(gen, VOCAB, NPOS, NEMBD, NLAYER)
    tokens = torch.randint(0, VOCAB, (B, T + 1), generator=gen)
    idx, targets = tokens[:, :-1], tokens[:, 1:]

    self_check(params, idx)

    logits, loss, grads = loss_and_grads(params, idx, targets)
    losses, final, norms = train(params, idx, targets)

    # The same in float64 from the same (float32) weights: how far float32 is.
    p64 = {k: v.double() for k, v in params.items()}
    logits64, loss64, grads64 = loss_and_grads(p64, idx, targets)
    losses64, final64, _ = train(p64, idx, targets)
    print("float32 vs float64 from the same weights:")
    print(f"  max |logits diff| {(logits.double() - logits64).abs().max().item():.3g}")
    print(f"  |loss diff| {abs(loss.double().item() - loss64.item()):.3g}")
    print("  max |grad diff| / max|grad| over tensors %.3g" % max(
        (grads[k].double() - grads64[k]).abs().max().item() / grads64[k].abs().max().item() for k in grads))
    print(f"  max |losses diff| {(losses.double() - losses64).abs().max().item():.3g}")
    print("  max |params diff| after %d steps %.3g" % (STEPS, max(
        (final[k].double() - final64[k]).abs().max().item() for k in final)))
    print(f"loss {loss.item():.6f}; losses {[round(x, 6) for x in losses.tolist()]}")
    print(f"grad norms before clipping {[round(x, 4) for x in norms]}")

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(json.dumps(CONFIG, indent=2) + "\n")
    model = dict(params)
    mask = torch.tril(torch.ones(NPOS, NPOS)).view(1, 1, NPOS, NPOS)
    for i in range(NLAYER):
        model[f"h.{i}.attn.bias"] = mask
    write_safetensors(os.path.join(out, "model.safetensors"), model)
    with open(os.path.join(out, "batch.bin"), "wb") as f:
        f.write(tokens.numpy().astype("<u4").tobytes())
    with open(os.path.join(out, "batch.json"), "w") as f:
        f.write(json.dumps(tokens.tolist(), separators=(",", ":")) + "\n")
    expected = {"logits": logits, "loss": loss.reshape(1), "losses": losses}
    for k in params:
        expected["grads." + k] = grads[k]
        expected["params." + k] = final[k]
    write_safetensors(os.path.join(out, "expected.safetensors"), expected)


if __name__ == "__main__":
    main()
