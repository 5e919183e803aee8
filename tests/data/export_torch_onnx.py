#!/usr/bin/python3
"""Exports real networks to ONNX with Debian's PyTorch, as test inputs for the
ONNX importer, with the figures PyTorch itself reports beside each file:

  <name>.onnx           the exported network, weights included
  <name>.expected.json  {"parameters": trainable parameter count (model.parameters()),
                         "matmul_flops_per_sample": 2 x multiply-adds of every Conv and
                         Linear, counted with forward hooks, "batch": export batch}

Usage: export_torch_onnx.py OUTDIR. Files already made by this same script
are kept. Without torch it writes OUTDIR/SKIP with the reason and exits 0, so
the C++ test can report SKIP instead of a false pass.
"""
import hashlib
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
stamp = os.path.join(out, "STAMP")
digest = hashlib.sha256(open(__file__, "rb").read()).hexdigest()
if os.path.exists(stamp) and open(stamp).read() == digest:
    print("torch ONNX fixtures are up to date in", out)
    sys.exit(0)

try:
    import torch
    import torch.nn as nn
    import torchvision
except Exception as e:  # torch is missing or broken
    open(os.path.join(out, "SKIP"), "w").write("PyTorch unavailable: %s\n" % e)
    print("SKIP:", e)
    sys.exit(0)

torch.manual_seed(0)


class MiniGPT(nn.Module):
    """A GPT block stack written out in plain PyTorch, with a tied LM head."""

    def __init__(self, vocab=1000, hidden=128, heads=4, layers=2, seq=32):
        super().__init__()
        self.heads = heads
        self.wte = nn.Embedding(vocab, hidden)
        self.wpe = nn.Embedding(seq, hidden)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            b = nn.Module()
            b.ln_1 = nn.LayerNorm(hidden)
            b.qkv = nn.Linear(hidden, 3 * hidden)
            b.proj = nn.Linear(hidden, hidden)
            b.ln_2 = nn.LayerNorm(hidden)
            b.fc1 = nn.Linear(hidden, 4 * hidden)
            b.fc2 = nn.Linear(4 * hidden, hidden)
            self.blocks.append(b)
        self.ln_f = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, ids):
        B, S = ids.shape
        pos = torch.arange(S, device=ids.device).unsqueeze(0)
        x = self.wte(ids) + self.wpe(pos)
        H = self.heads
        for b in self.blocks:
            q, k, v = b.qkv(b.ln_1(x)).split(x.shape[-1], dim=-1)
            q = q.view(B, S, H, -1).transpose(1, 2)
            k = k.view(B, S, H, -1).transpose(1, 2)
            v = v.view(B, S, H, -1).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5), dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, S, -1)
            x = x + b.proj(y)
            x = x + b.fc2(torch.nn.functional.gelu(b.fc1(b.ln_2(x))))
        return self.head(self.ln_f(x))


def count_matmul_flops(model, example):
    flops = [0]

    def conv_hook(m, inp, outp):
        k = 1
        for d in m.kernel_size:
            k *= d
        flops[0] += 2 * outp.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m, inp, outp):
        flops[0] += 2 * outp.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    return flops[0]


def export(name, model, example, dynamic_batch):
    model.train()  # keep BatchNorm and Dropout as the trainer sees them (no folding)
    path = os.path.join(out, name + ".onnx")
    kwargs = {}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.onnx.export(model, (example,), path, input_names=["input"], output_names=["output"],
                      opset_version=13, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.TRAINING, **kwargs)
    batch = example.shape[0]
    expected = {
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "matmul_flops_per_sample": count_matmul_flops(model.eval(), example) // batch,
        "batch": batch,
        "torch": torch.__version__,
    }
    json.dump(expected, open(os.path.join(out, name + ".expected.json"), "w"), indent=1)
    print(name, expected, os.path.getsize(path), "bytes")


export("resnet18", torchvision.models.resnet18(weights=None), torch.randn(2, 3, 224, 224), False)
export("mobilenet_v2", torchvision.models.mobilenet_v2(weights=None), torch.randn(1, 3, 224, 224), True)
export("minigpt", MiniGPT(), torch.randint(0, 1000, (2, 32)), False)
if os.path.exists(os.path.join(out, "SKIP")):
    os.remove(os.path.join(out, "SKIP"))
open(stamp, "w").write(digest)
