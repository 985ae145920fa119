#!/usr/bin/python3
"""train_torch.py - the PyTorch side of bench/train.sh and bench/scaleout.sh:
GPT-2 training on CPU, in one process or data-parallel.

    /usr/bin/python3 bench/peers/train_torch.py --data FILE [--threads N]
        [--steps N] [--warmup-steps N] [--batch B] [--context T]
        [--layers L] [--heads H] [--width C] [--vocab V] [--lr LR] [--seed S]
        [--world N]

The model is Hugging Face's GPT2LMHeadModel written out in plain PyTorch
(transformers is not installed on the bench machines): learned token and
position embeddings, pre-LayerNorm blocks (eps 1e-5), the fused c_attn
projection and the other Conv1D layers with weights stored (in, out) and
applied with addmm, causal self-attention as an explicit masked softmax
(torch 1.13 has no scaled_dot_product_attention), GELU in its tanh form,
a final LayerNorm and an lm head tied to the token embedding, all fp32,
no dropout. Initialization follows GPT2PreTrainedModel: N(0, 0.02), the
residual projections (c_proj) N(0, 0.02 / sqrt(2 L)), zero biases.

Training is the ordinary loop: model.train(), forward, loss.backward(),
clip_grad_norm_(1.0), AdamW (constant lr, betas 0.9, 0.95, weight decay 0.1
on the blocks' matrices only, as quern-train does: not on the embeddings,
biases or LayerNorms), opt.zero_grad(set_to_none=True).
Batches are consecutive windows of B*T+1 tokens of the file, advanced by
B*T, wrapping to the start, as llm.c's data loader does.

The data is a nanoGPT-style flat file of uint16 tokens
(`quern-tokenize export --format nanogpt SHARDS FILE`).

--world N (N > 1) trains data-parallel the way PyTorch users do on CPUs:
N processes forked by torch.multiprocessing, a gloo process group
(init_method file:// in a temporary folder), the model wrapped in
DistributedDataParallel with its defaults (gradients averaged in 25 MB
buckets while the backward pass runs; the model has no buffers for it to
broadcast). --batch and --threads are per process, as in quern-train
under mpirun; a step takes N consecutive windows, rank r the r-th, as
quern-train's ranks take micro-batches r, r + N, ... of the step. Each
process gets --threads threads. The timed step runs on every rank; rank 0
reports N*B*T over its median step time (the whole job's rate) and the
final loss averaged over the ranks (the step's loss over all N*B*T
tokens). --world 1 is the plain one-process loop, with no process group.

Threads: Debian's torch does its matrix products in the system OpenBLAS
(the pthread build), whose thread pool is not torch's OpenMP pool and which
torch.set_num_threads does not reach. So OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS are both set to --threads before torch is imported,
then torch.set_num_threads(--threads). With two pools on the same cores,
OpenMP threads spinning after each parallel region starve the OpenBLAS
threads: at 2 threads on a 2-core machine libgomp's default wait policy
gained nothing over 1 thread (about 1,860 against 1,900 tokens/s; PASSIVE
gave 2,700-3,400), and on a busy machine it ran 2 to 5 times slower than
PASSIVE. So OMP_WAIT_POLICY defaults to PASSIVE here (a value already set
is kept), PyTorch's best 2-thread setting; PyPI's wheels, with MKL on
torch's own OpenMP pool, would not need it.

Prints one JSON line at the end:
    {"tokens_per_s", "steps", "step_ms_median", "final_loss", "params", "threads", "world"}
tokens_per_s is world*B*T over the median wall time of the timed steps (the
--warmup-steps before them are not timed), a step being everything from
reading the batch to zero_grad; final_loss is the last step's.
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description="GPT-2 training speed, PyTorch CPU")
    p.add_argument("--data", required=True, help="nanoGPT uint16 token file")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--world", type=int, default=1, help="data-parallel processes (gloo DDP)")
    a = p.parse_args()
    if a.threads < 1 or a.steps < 1 or a.warmup_steps < 0 or a.width % a.heads or a.world < 1:
        p.error("need --threads >= 1, --steps >= 1, --warmup-steps >= 0, heads dividing width, --world >= 1")
    return a


args = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402 (after the thread variables)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Conv1D(nn.Module):
    """Hugging Face's Conv1D: a linear layer with its weight stored (in, out)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)


class Attention(nn.Module):
    def __init__(self, c, heads, context):
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(c, 3 * c)
        self.c_proj = Conv1D(c, c)
        # A plain attribute, not a buffer as in Hugging Face's code: gloo cannot
        # broadcast bool tensors, and DDP broadcasts every buffer (the same on CPU).
        self.bias = torch.tril(torch.ones(context, context, dtype=torch.bool)).view(1, 1, context, context)

    def forward(self, x):
        b, t, c = x.shape
        hs = c // self.heads
        q, k, v = self.c_attn(x).split(c, dim=2)
        q = q.view(b, t, self.heads, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(b, t, self.heads, hs).transpose(1, 2)
        v = v.view(b, t, self.heads, hs).transpose(1, 2)
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hs)  # (B, nh, T, T)
        att = att.masked_fill(~self.bias[:, :, :t, :t], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = torch.matmul(att, v)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = Conv1D(c, 4 * c)
        self.c_proj = Conv1D(4 * c, c)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, c, heads, context):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.attn = Attention(c, heads, context)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab, context, layers, heads, c):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(context, c)
        self.h = nn.ModuleList(Block(c, heads, context) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c, eps=1e-5)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.wpe.weight, 0.0, 0.02)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(self, idx, targets):
        t = idx.shape[1]
        pos = torch.arange(t, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # the tied lm head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def train(rank, world, init_file):
    """One process's loop; with world > 1, rank `rank` of a gloo DDP group."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    b, t = args.batch, args.context
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank,
                                world_size=world)

    try:
        tokens = np.memmap(args.data, dtype=np.uint16, mode="r")  # as nanoGPT reads it
    except OSError as e:
        sys.exit(f"train_torch: cannot open '{args.data}': {e.strerror}")
    except ValueError:  # numpy cannot map an empty file
        tokens = np.zeros(0, dtype=np.uint16)
    if tokens.size < world * b * t + 1:
        sys.exit(f"train_torch: '{args.data}' holds {tokens.size} tokens, need {world * b * t + 1}")

    model = GPT2(args.vocab, t, args.layers, args.heads, args.width)
    params = sum(p.numel() for p in model.parameters())  # the tied embedding once
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    decay = [p for n, p in model.named_parameters() if n.startswith("h.") and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if not (n.startswith("h.") and p.dim() >= 2)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    model.train()

    pos = 0
    times = []
    loss_value = float("nan")
    for step in range(args.warmup_steps + args.steps):
        t0 = time.perf_counter()
        if pos + world * b * t + 1 > tokens.size:
            pos = 0
        at = pos + rank * b * t
        buf = torch.from_numpy(tokens[at:at + b * t + 1].astype(np.int64))
        pos += world * b * t
        if int(buf.max()) >= args.vocab:
            sys.exit(f"train_torch: token {int(buf.max())} in '{args.data}' >= --vocab {args.vocab}")
        x = buf[:-1].view(b, t)
        y = buf[1:].view(b, t)
        loss = net(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = loss.item()
        if step >= args.warmup_steps:
            times.append(time.perf_counter() - t0)

    if world > 1:
        mean = torch.tensor([loss_value], dtype=torch.float64)
        dist.all_reduce(mean)
        loss_value = float(mean[0]) / world
        dist.destroy_process_group()
    if rank > 0:
        return
    step_s = float(np.median(times))
    print(json.dumps({
        "tokens_per_s": round(world * b * t / step_s, 1),
        "steps": args.steps,
        "step_ms_median": round(step_s * 1e3, 2),
        "final_loss": round(loss_value, 4),
        "params": params,
        "threads": args.threads,
        "world": world,
    }), flush=True)


def main():
    if args.world == 1:
        train(0, 1, None)
        return
    import tempfile
    import torch.multiprocessing as mp
    # fork: the parent has run no torch operation yet, so no thread pool is
    # copied half-started, and the children skip importing torch again.
    with tempfile.TemporaryDirectory(prefix="train_torch.") as tmp:
        mp.start_processes(train, args=(args.world, os.path.join(tmp, "rendezvous")),
                           nprocs=args.world, join=True, start_method="fork")


if __name__ == "__main__":
    main()
