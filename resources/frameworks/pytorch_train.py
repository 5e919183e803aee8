#!/usr/bin/env python3
__PARTITA_HEADER__
#
# A PyTorch training script written by Partita: the model is built from
# CONFIG["model"], data parallelism from CONFIG["strategy"] (DDP with its
# bucket size and gradient compression hook, ZeroRedundancyOptimizer for
# ZeRO-1, FSDP2's fully_shard for ZeRO-2/3), tensor parallelism as a DTensor
# plan per module on a (dp, tp) device mesh (Megatron's pairs: column-parallel
# qkv and fc1, row-parallel out and fc2, vocabulary-parallel embedding and
# lm_head; with sequence parallelism the norms and dropouts run on sequence
# shards), recomputation with torch.utils.checkpoint, precision with autocast. The data are random tokens,
# fixed per rank, so the loss falls as the model learns them; put your own
# loader in batches(). It reads the torch.distributed environment (RANK,
# WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): run it under torchrun,
# srun, or start each rank with those variables. One JSON line per step on
# rank 0: {"step", "loss", "step_time_s"}, after one with the parameter count.
import argparse
import contextlib
import gc
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

# partita-import: the configuration below is what `partita-cli import-config` reads back.
CONFIG = json.loads(r"""
__PARTITA_CONFIG__
""")


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def norm(m):
    return nn.LayerNorm(m["hidden"], eps=1e-5) if m["norm"] == "layernorm" else RMSNorm(m["hidden"], 1e-5)


def rotary(x, theta):
    # x: (batch, heads, seq, head_dim); rotate pairs (i, i + d/2) by position.
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    ang = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    # qkv's output is read per tensor-parallel rank as [q, k, v] of that
    # rank's heads: a column-parallel split then gives each rank whole heads
    # (the weights are trained from scratch, so the layout is the script's).
    def __init__(self, m, fused, tp):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = m["heads"] // tp, m["kv_heads"] // tp, m["head_dim"]
        self.rope_theta = m["rope_theta"]
        self.fused = fused and hasattr(F, "scaled_dot_product_attention")
        self.qkv = nn.Linear(m["hidden"], (m["heads"] + 2 * m["kv_heads"]) * self.head_dim, bias=m["bias"])
        self.out = nn.Linear(m["heads"] * self.head_dim, m["hidden"], bias=m["bias"])

    def core(self, qkv):
        b, s, _ = qkv.shape
        q, k, v = qkv.split([self.heads * self.head_dim, self.kv_heads * self.head_dim,
                             self.kv_heads * self.head_dim], dim=-1)
        q = q.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.rope_theta > 0:
            q, k = rotary(q, self.rope_theta), rotary(k, self.rope_theta)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            mask = torch.ones(s, s, dtype=torch.bool, device=qkv.device).triu(1)
            y = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return y.transpose(1, 2).reshape(b, s, self.heads * self.head_dim)

    def forward(self, x, selective):
        qkv = self.qkv(x)
        y = checkpoint(self.core, qkv, use_reentrant=False) if selective else self.core(qkv)
        return self.out(y)


class MLP(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.gated = m["mlp"] == "swiglu"
        if self.gated:  # one GEMM for gate and up, as Partita's layer mlp.gate_up ([gate, up] per tp rank)
            self.gate_up = nn.Linear(m["hidden"], 2 * m["ffn"], bias=False)
            self.down = nn.Linear(m["ffn"], m["hidden"], bias=False)
        else:
            self.fc1 = nn.Linear(m["hidden"], m["ffn"], bias=m["bias"])
            self.fc2 = nn.Linear(m["ffn"], m["hidden"], bias=m["bias"])

    def forward(self, x):
        if self.gated:
            gate, up = self.gate_up(x).chunk(2, dim=-1)
            return self.down(F.silu(gate) * up)
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, m, names, fused, tp):
        super().__init__()
        self.names = names
        setattr(self, names["norm1"], norm(m))
        self.attention = Attention(m, fused, tp)
        setattr(self, names["norm2"], norm(m))
        self.mlp = MLP(m)
        self.dropout = m["dropout"]

    def forward(self, x, selective=False):
        h = self.attention(getattr(self, self.names["norm1"])(x), selective)
        x = x + F.dropout(h, self.dropout, self.training)
        h = self.mlp(getattr(self, self.names["norm2"])(x))
        return x + F.dropout(h, self.dropout, self.training)


class Embeddings(nn.Module):  # GPT-2: token and learned position embeddings, Partita's layer "embeddings"
    def __init__(self, m, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, m["hidden"])
        self.wpe = nn.Embedding(m["positions"], m["hidden"])

    def forward(self, idx):
        return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))


class GPT(nn.Module):
    """Module names are Partita's layer names (h.0.attention.qkv, layers.3.mlp.down, ...)."""

    def __init__(self, m, recompute, fused, tp=1):
        super().__init__()
        n = m["names"]
        self.n, self.recompute = n, recompute
        self.sequence_cut = None  # with sequence parallelism: this rank's part of the sequence, as a DTensor redistribution
        # With tp > 1 the vocabulary is padded to a multiple of 128 x tp, as
        # Megatron-LM pads it, so that the vocabulary-parallel split is even.
        self.vocab = m["vocab"] if tp == 1 else -(-m["vocab"] // (128 * tp)) * 128 * tp
        if m["positions_learned"]:
            setattr(self, n["embed"], Embeddings(m, self.vocab))
        else:
            setattr(self, n["embed"], nn.Embedding(self.vocab, m["hidden"]))
        setattr(self, n["blocks"], nn.ModuleList(Block(m, n, fused, tp) for _ in range(m["layers"])))
        setattr(self, n["final_norm"], norm(m))
        self.lm_head = nn.Linear(m["hidden"], self.vocab, bias=False)
        if m["tied"]:
            self.lm_head.weight = self.token_embedding().weight
        self.dropout = m["dropout"]
        self.apply(self.init_weights)

    @staticmethod
    def init_weights(module):  # GPT-2's: normal(0, 0.02) weights, zero biases
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def blocks(self):
        return getattr(self, self.n["blocks"])

    def token_embedding(self):
        emb = getattr(self, self.n["embed"])
        return emb.wte if isinstance(emb, Embeddings) else emb

    def forward(self, idx):
        x = getattr(self, self.n["embed"])(idx)
        if self.sequence_cut is not None:  # cut before the dropout, which then runs on this rank's tokens
            x = self.sequence_cut(x)
        x = F.dropout(x, self.dropout, self.training)
        for block in self.blocks():
            if self.recompute == "full":
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x, self.recompute == "selective")
        return self.lm_head(getattr(self, self.n["final_norm"])(x))


def fully_shard_fn():
    # Older PyTorch fails these imports with ImportError, or (1.13 on Python
    # 3.11) with a ValueError inside torch.distributed._shard: either way, none.
    try:
        from torch.distributed.fsdp import fully_shard  # PyTorch 2.6 and later
        return fully_shard
    except (ImportError, ValueError):
        pass
    try:
        from torch.distributed._composable.fsdp import fully_shard  # PyTorch 2.4, 2.5
        return fully_shard
    except (ImportError, ValueError):
        return None


def device_mesh(device, dp, tp):
    """A (dp, tp) mesh: ranks tensor-parallel fastest, as Partita numbers them."""
    try:
        from torch.distributed.device_mesh import init_device_mesh
    except (ImportError, ValueError):
        sys.exit(f"tensor parallelism is torch.distributed.tensor.parallel, which PyTorch {torch.__version__} lacks "
                 "(2.4 or later has it)")
    return init_device_mesh(device.type, (dp, tp), mesh_dim_names=("dp", "tp"))


def tensor_parallel(model, m, s, tp_mesh):
    """Partita's tensor-parallel roles as a DTensor plan, one entry per module name."""
    try:
        from torch.distributed.tensor.parallel import (ColwiseParallel, RowwiseParallel, SequenceParallel,
                                                       parallelize_module)
        try:
            from torch.distributed.tensor import DTensor, Replicate, Shard
        except ImportError:
            from torch.distributed._tensor import DTensor, Replicate, Shard
    except (ImportError, ValueError):
        sys.exit(f"tensor parallelism is torch.distributed.tensor.parallel, which PyTorch {torch.__version__} lacks "
                 "(2.4 or later has it)")
    n, sp = m["names"], s["sequence_parallel"]
    acts = Shard(1) if sp else Replicate()  # activations between blocks: sequence shards, or whole
    embed = n["embed"] + (".wte" if m["positions_learned"] else "")
    plan = {embed: RowwiseParallel(input_layouts=Replicate(), output_layouts=Replicate()),  # vocabulary-parallel
            "lm_head": ColwiseParallel(input_layouts=acts, output_layouts=Replicate())}
    if sp:
        plan[n["final_norm"]] = SequenceParallel()
    for i in range(m["layers"]):
        b = f"{n['blocks']}.{i}"
        plan[f"{b}.attention.qkv"] = ColwiseParallel(input_layouts=acts)
        plan[f"{b}.attention.out"] = RowwiseParallel(output_layouts=acts)
        first, second = ("gate_up", "down") if m["mlp"] == "swiglu" else ("fc1", "fc2")
        plan[f"{b}.mlp.{first}"] = ColwiseParallel(input_layouts=acts)
        plan[f"{b}.mlp.{second}"] = RowwiseParallel(output_layouts=acts)
        if sp:
            plan[f"{b}.{n['norm1']}"] = SequenceParallel()
            plan[f"{b}.{n['norm2']}"] = SequenceParallel()
    parallelize_module(model, tp_mesh, plan)
    if m["tied"]:  # the plan gave each its own DTensor; both are Shard(0) over the vocabulary
        model.lm_head.weight = model.token_embedding().weight
    if sp:
        # Replicate -> Shard(1) as a redistribution, so that the backward
        # all-gathers the sequence's gradient for the embedding (a local
        # slice would leave it zero outside this rank's tokens).
        def cut(x):
            whole = DTensor.from_local(x, tp_mesh, [Replicate()], run_check=False)
            return whole.redistribute(tp_mesh, [Shard(1)]).to_local()

        model.sequence_cut = cut
        # Dropout on sequence shards draws its own mask on each rank.
        torch.manual_seed(1234 + 7919 * tp_mesh.get_local_rank())


def wrap(model, s, device, mesh=None):
    """The data-parallel wrapper and the optimizer the strategy names."""
    lr = CONFIG["train"]["lr"]
    if mesh is not None and s["dp"] == 1:  # tensor parallelism alone: DTensor parameters, no data parallelism
        return model, torch.optim.AdamW(model.parameters(), lr=lr)
    if mesh is not None and s["zero_stage"] < 2:
        sys.exit("DDP takes no DTensor parameters: with tensor parallelism, shard data parallelism with ZeRO-2 or 3")
    if s["zero_stage"] >= 2:
        fully_shard = fully_shard_fn()
        if fully_shard is None:
            sys.exit(f"ZeRO-{s['zero_stage']} is FSDP2's fully_shard, which PyTorch {torch.__version__} lacks "
                     "(2.4 or later has it)")
        reshard = s["zero_stage"] == 3  # ZeRO-3 frees parameters after the forward; ZeRO-2 keeps them
        kw = {"reshard_after_forward": reshard}
        if mesh is not None:
            kw["mesh"] = mesh["dp"]  # sharded over data parallelism, beside the tensor-parallel split
        for block in model.blocks():
            fully_shard(block, **kw)
        fully_shard(model, **kw)
        return model, torch.optim.AdamW(model.parameters(), lr=lr)
    from torch.nn.parallel import DistributedDataParallel as DDP
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
              bucket_cap_mb=s["bucket_mb"], gradient_as_bucket_view=True)
    if s["compression"] == "fp16":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif s["compression"] == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook
        state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=s["powersgd_rank"],
                                            start_powerSGD_iter=2)
        ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    if s["zero_stage"] == 1:
        from torch.distributed.optim import ZeroRedundancyOptimizer
        opt = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=torch.optim.AdamW, lr=lr)
    else:
        opt = torch.optim.AdamW(ddp.parameters(), lr=lr)
    return ddp, opt


def autocast(device, precision):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def batches(m, s, rank, accumulation):
    g = torch.Generator().manual_seed(1000 + rank)
    tokens = torch.randint(0, m["vocab"], (accumulation, s["micro_batch"], CONFIG["train"]["seq"] + 1), generator=g)
    return [(t[:, :-1], t[:, 1:]) for t in tokens]


def main():
    ap = argparse.ArgumentParser(description="Partita's training script (" + CONFIG["strategy"]["name"] + ")")
    ap.add_argument("--steps", type=int, default=CONFIG["train"]["steps"])
    args = ap.parse_args()
    m, s = CONFIG["model"], CONFIG["strategy"]
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    tp = s.get("tp", 1)
    if world != s["dp"] * tp:
        sys.exit(f"WORLD_SIZE is {world}, but the strategy runs {s['dp']} data-parallel x {tp} tensor-parallel ranks")
    dp_rank = rank // tp  # ranks are tensor-parallel fastest: a tensor-parallel group's ranks see the same data
    if tp > 1 and s.get("sequence_parallel") and CONFIG["train"]["seq"] % tp:
        sys.exit(f"sequence parallelism splits the {CONFIG['train']['seq']} tokens over {tp} ranks: not evenly")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if s["precision"] == "fp16" and not cuda:
        sys.exit("fp16 training needs a GPU (autocast and the gradient scaler); choose bf16 or fp32 on a CPU")
    dist.init_process_group("nccl" if cuda else "gloo")
    torch.manual_seed(1234)  # the same weights on every rank, and the same dropout within a tensor-parallel group
    model = GPT(m, s["recompute"], s["attention"] != "unfused", tp).to(device)
    if rank == 0:
        print(json.dumps({"parameters": sum(p.numel() for p in model.parameters()), "world": world,
                          "torch": torch.__version__}), flush=True)
    mesh = None
    if tp > 1:
        mesh = device_mesh(device, s["dp"], tp)
        tensor_parallel(model, m, s, mesh["tp"])
    model, opt = wrap(model, s, device, mesh)
    scaler = torch.cuda.amp.GradScaler() if s["precision"] == "fp16" else None
    accumulation = s["global_batch"] // (s["micro_batch"] * s["dp"])
    data = [(x.to(device), y.to(device)) for x, y in batches(m, s, dp_rank, accumulation)]
    for step in range(args.steps):
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for i, (x, y) in enumerate(data):
            last = i == accumulation - 1
            sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast(device, s["precision"]):
                    logits = model(x)
                vocab = logits.shape[-1]  # padded with tensor parallelism
                loss = F.cross_entropy(logits.float().view(-1, vocab), y.reshape(-1)) / accumulation
                (scaler.scale(loss) if scaler else loss).backward()
            total += loss.detach()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        dist.all_reduce(total)
        if cuda:
            torch.cuda.synchronize()
        if rank == 0:
            print(json.dumps({"step": step, "loss": total.item() / world,
                              "step_time_s": time.perf_counter() - t0}), flush=True)
    # Every rank done before the group is torn down: with gloo on torch 1.13
    # a rank that leaves first can leave its peer hung or aborting at exit.
    dist.barrier()
    # The model (DDP's reducer, a communication hook and its futures) holds
    # the group: freed now, while the interpreter is whole. Freed in its
    # finalization instead, gloo's threads that need the GIL to drop Python
    # objects are stopped there, and the rank hangs or aborts at exit.
    del model, opt
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
