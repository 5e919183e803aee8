#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Records real PyTorch-profiler (Kineto) traces of a small GPT-style model
trained on this machine's CPU, one Chrome-trace JSON per rank.

    record_torch_trace.py OUT_DIR [--ranks N] [--steps K] [--seed S]

With --ranks 1 the model trains in this process; with more, one process per
rank is started with the environment torch.distributed expects (RANK,
LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and the
model is wrapped in DistributedDataParallel over gloo. (torchrun is not used:
Debian bookworm's torchrun 1.13 fails on Python 3.11 in its elastic agent.)

Writes OUT_DIR/traces/rank<R>.json (the folder to import) and
OUT_DIR/facts.json: what Python's json module reads back from each trace (rank, events by category, profiler steps), so that
an importer can be checked against counts it did not compute itself.
"""
import argparse
import json
import os
import socket
import subprocess
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder for traces/rank<R>.json and facts.json")
    p.add_argument("--ranks", type=int, default=1, help="processes (gloo DDP when more than one)")
    p.add_argument("--steps", type=int, default=3, help="profiled (active) training steps")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_model(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, hidden, heads):
            super().__init__()
            self.ln_1 = nn.LayerNorm(hidden)
            self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
            self.ln_2 = nn.LayerNorm(hidden)
            self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))

        def forward(self, x, mask):
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))

    class TinyGpt(nn.Module):
        def __init__(self, vocab=512, hidden=64, heads=4, layers=2, seq=32):
            super().__init__()
            self.wte = nn.Embedding(vocab, hidden)
            self.wpe = nn.Embedding(seq, hidden)
            self.h = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
            self.ln_f = nn.LayerNorm(hidden)
            self.lm_head = nn.Linear(hidden, vocab, bias=False)
            self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1))

        def forward(self, ids):
            pos = torch.arange(ids.shape[1])
            x = self.wte(ids) + self.wpe(pos)
            for block in self.h:
                x = block(x, self.mask)
            return self.lm_head(self.ln_f(x))

    return TinyGpt()


def train(out, rank, world, steps, seed):
    import torch
    import torch.distributed as dist

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    model = build_model(torch)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed + rank)
    path = os.path.join(out, "traces", f"rank{rank}.json")
    sched = torch.profiler.schedule(wait=1, warmup=1, active=steps, repeat=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], schedule=sched,
                                record_shapes=True,
                                on_trace_ready=lambda p: p.export_chrome_trace(path)) as prof:
        for _ in range(steps + 2):
            ids = torch.randint(0, 512, (4, 32), generator=gen)
            with torch.profiler.record_function("forward"):
                logits = model(ids)
                loss = loss_fn(logits.view(-1, logits.shape[-1]), ids.view(-1))
            with torch.profiler.record_function("backward"):
                loss.backward()
            with torch.profiler.record_function("optimizer"):
                opt.step()
                opt.zero_grad(set_to_none=True)
            prof.step()
    if world > 1:
        dist.barrier()  # every rank done before the group is torn down (gloo on torch 1.13)
        dist.destroy_process_group()
    return path


def facts_of(path):
    """What Python's json module reads back: complete events by category
    ('' where none is named, as the legacy profiler writes them), profiler
    steps, and per operator name its count and total microseconds."""
    with open(path) as f:
        doc = json.load(f)
    events = doc if isinstance(doc, list) else doc.get("traceEvents", [])
    by_cat, names, steps, other = {}, {}, 0, 0
    for e in events:
        if e.get("ph") != "X":
            other += 1
            continue
        name = e.get("name", "")
        if name.startswith("ProfilerStep#"):
            steps += 1
            continue
        cat = e.get("cat", "")
        by_cat[cat] = by_cat.get(cat, 0) + 1
        n = names.setdefault(name, [0, 0])
        n[0] += 1
        n[1] += e.get("dur", 0)
    rank = doc.get("distributedInfo", {}).get("rank") if isinstance(doc, dict) else None
    return {"file": os.path.basename(path), "kineto": isinstance(doc, dict), "rank": rank,
            "complete_events_by_cat": by_cat, "profiler_steps": steps, "other_events": other, "names": names}


def main(argv):
    a = parse_args(argv)
    os.makedirs(os.path.join(a.out, "traces"), exist_ok=True)
    if "RANK" in os.environ and "PARTITA_RECORDER_CHILD" in os.environ:
        train(a.out, int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), a.steps, a.seed)
        return 0
    for stale in [os.path.join("traces", f) for f in os.listdir(os.path.join(a.out, "traces"))] + ["facts.json"]:
        if os.path.exists(os.path.join(a.out, stale)):
            os.remove(os.path.join(a.out, stale))
    if a.ranks == 1:
        paths = [train(a.out, 0, 1, a.steps, a.seed)]
    else:
        port = str(free_port())
        procs = []
        for r in range(a.ranks):
            env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(a.ranks),
                       LOCAL_WORLD_SIZE=str(a.ranks), MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                       PARTITA_RECORDER_CHILD="1")
            procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__)] + argv, env=env))
        codes = [p.wait(timeout=600) for p in procs]
        if any(codes):
            print(f"record_torch_trace: rank exit codes {codes}", file=sys.stderr)
            return 1
        paths = [os.path.join(a.out, "traces", f"rank{r}.json") for r in range(a.ranks)]
    facts = {"torch": __import__("torch").__version__, "ranks": a.ranks, "steps": a.steps,
             "traces": [facts_of(p) for p in paths]}
    with open(os.path.join(a.out, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
    print(f"record_torch_trace: {a.ranks} rank trace(s) of {a.steps} steps in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
