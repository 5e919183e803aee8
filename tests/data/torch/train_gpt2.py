#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small GPT-2 trained with plain PyTorch DDP, as a user writes one.

Partita's tests profile it as a user's own training script (partita-cli run
--command): its modules carry Hugging Face GPT-2's names (transformer.h.N.attn.
c_attn, ...), it knows nothing of Partita, and rank 0 logs each step's wall
time as a JSON line. It takes the torch.distributed environment (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT) that torchrun gives a script.

--fail-rank R with --fail-step S raises on rank R at step S; with --hang, that
rank sleeps there instead, as a rank stuck in a collective would: the failures
a launcher must name.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(hidden, 3 * hidden)
        self.c_proj = nn.Linear(hidden, hidden)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.c_attn(x).split(h, dim=-1)
        q, k, v = (t.view(b, s, self.heads, h // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(h // self.heads)
        mask = torch.ones(s, s, dtype=torch.bool).triu(1)
        y = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, s, h))


class MLP(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.c_fc = nn.Linear(hidden, 4 * hidden)
        self.act = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * hidden, hidden)

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden)
        self.attn = Attention(hidden, heads)
        self.ln_2 = nn.LayerNorm(hidden)
        self.mlp = MLP(hidden)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, vocab, positions, hidden, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, hidden)
        self.wpe = nn.Embedding(positions, hidden)
        self.h = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, vocab=256, positions=64, hidden=64, layers=2, heads=4):
        super().__init__()
        self.transformer = Transformer(vocab, positions, hidden, layers, heads)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        for name, p in self.named_parameters():  # GPT-2's initialisation: normal(0, 0.02), zero biases and norms
            if p.dim() > 1:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx):
        return self.lm_head(self.transformer(idx))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4, help="sequences per rank and step")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--fail-rank", type=int, default=-1)
    ap.add_argument("--fail-step", type=int, default=1)
    ap.add_argument("--hang", action="store_true")
    args = ap.parse_args()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(GPT2LMHeadModel(positions=args.seq, hidden=args.hidden,
                                                                layers=args.layers))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(rank)
    x = torch.randint(0, 256, (args.batch, args.seq + 1), generator=gen)
    for step in range(args.steps):
        t0 = time.perf_counter()
        if rank == args.fail_rank and step == args.fail_step:
            if args.hang:
                time.sleep(3600)
            raise RuntimeError(f"rank {rank} failed on purpose at step {step}")
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if rank == 0:
            print(json.dumps({"step": step, "loss": loss.item(), "step_time_s": time.perf_counter() - t0}),
                  flush=True)
    # Every rank done before the group is torn down: with gloo on torch 1.13
    # a rank that leaves first can leave its peer hung or aborting at exit.
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
