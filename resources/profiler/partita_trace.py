#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs a PyTorch training script under the PyTorch profiler without editing it.

    partita_trace.py --out DIR [--schedule WAIT,WARMUP,ACTIVE] [--] SCRIPT [ARGS...]

Put in front of the script on each rank (the launcher gives the rank its
torch.distributed environment: RANK, LOCAL_RANK, WORLD_SIZE, ...). It:
- starts the profiler (Kineto: CPU ops with their shapes; CUDA kernels,
  memory copies and NCCL when a GPU is used) on a wait / warm-up / active
  schedule counted in optimizer steps (every optimizer's step, the outermost
  call only, so ZeroRedundancyOptimizer's inner step is not counted twice);
- opens a range named "nn.Module: PATH" around every module's forward, PATH
  being the module's name under the model it was called from (wrappers'
  "module." and "_orig_mod." taken off: the names a Hugging Face or
  Partita-exported model gives its layers), since the profiler records no
  module hierarchy for eager PyTorch before 2.x;
- writes DIR/rank<R>.json (Chrome trace; ProfilerStep#N marks each active
  step) and DIR/rank<R>.steps (JSON: each optimizer step's wall time as this
  module saw it), and leaves the training otherwise as it is.

What it costs: the profiler's own overhead while recording (the active
steps), and one range per module call in every step (see Partita's
benchmarks for measured figures).
"""
import argparse
import atexit
import json
import os
import runpy
import sys
import threading
import time
import weakref


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for rank<R>.json and rank<R>.steps")
    p.add_argument("--schedule", default="1,1,3", help="optimizer steps to wait, warm up and record (default 1,1,3)")
    p.add_argument("script", help="the training script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = p.parse_args(argv)
    try:
        wait, warmup, active = (int(x) for x in a.schedule.split(","))
    except ValueError:
        p.error(f"--schedule {a.schedule!r}: expected three whole numbers WAIT,WARMUP,ACTIVE")
    if wait < 0 or warmup < 0 or active < 1:
        p.error(f"--schedule {a.schedule!r}: WAIT and WARMUP at least 0, ACTIVE at least 1")
    if not os.path.isfile(a.script):
        p.error(f"{a.script}: no such script")
    a.wait, a.warmup, a.active = wait, warmup, active
    if a.args[:1] == ["--"]:
        a.args = a.args[1:]
    return a


def clean(path):
    """A module path as the model names it: without the wrappers' prefixes."""
    parts = [s for s in path.split(".") if s not in ("module", "_orig_mod", "_fsdp_wrapped_module",
                                                      "_checkpoint_wrapped_module")]
    return ".".join(parts)


class ModuleRanges:
    """A profiler range around every module's forward, named by its path."""

    def __init__(self, torch):
        self.torch = torch
        self.names = weakref.WeakKeyDictionary()
        self.local = threading.local()
        nn = torch.nn.modules.module
        self.handles = [nn.register_module_forward_pre_hook(self.pre),
                        nn.register_module_forward_hook(self.post)]

    def name_of(self, module):
        name = self.names.get(module)
        if name is None:  # first seen outside any named model: a root, naming what it holds
            for path, sub in module.named_modules():
                self.names.setdefault(sub, clean(path) or type(sub).__name__)
            name = self.names[module]
        return name

    def pre(self, module, inputs):
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        rf = self.torch.autograd.profiler.record_function("nn.Module: " + self.name_of(module))
        rf.__enter__()
        stack.append(rf)

    def post(self, module, inputs, output):
        stack = getattr(self.local, "stack", None)
        if stack:
            stack.pop().__exit__(None, None, None)


class StepCounter:
    """Calls `on_step` after each outermost optimizer step."""

    def __init__(self, torch, on_step):
        self.on_step, self.depth = on_step, 0
        optim = torch.optim.Optimizer
        counter = self
        original = optim.__init__

        def init(opt, *args, **kwargs):
            original(opt, *args, **kwargs)
            step = opt.step

            def counted(*a, **k):
                counter.depth += 1
                try:
                    return step(*a, **k)
                finally:
                    counter.depth -= 1
                    if counter.depth == 0:
                        counter.on_step()

            opt.step = counted

        optim.__init__ = init


def main(argv):
    a = parse_args(argv)
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    rank = int(os.environ.get("RANK", "0"))
    os.makedirs(a.out, exist_ok=True)
    trace = os.path.join(a.out, f"rank{rank}.json")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    written = []

    def ready(prof):
        prof.export_chrome_trace(trace)
        written.append(trace)

    prof = profile(activities=activities, schedule=schedule(wait=a.wait, warmup=a.warmup, active=a.active, repeat=1),
                   on_trace_ready=ready, record_shapes=True)
    ModuleRanges(torch)
    steps, last = [], [time.perf_counter()]

    def on_step():
        now = time.perf_counter()
        steps.append(now - last[0])
        last[0] = now
        prof.step()

    StepCounter(torch, on_step)

    def finish():
        prof.stop()
        with open(os.path.join(a.out, f"rank{rank}.steps"), "w") as f:
            json.dump({"rank": rank, "schedule": [a.wait, a.warmup, a.active], "step_s": steps,
                       "trace": os.path.basename(trace) if written else None}, f)
        if not written:
            print(f"partita_trace: rank {rank} ran {len(steps)} optimizer steps, fewer than the "
                  f"{a.wait + a.warmup + a.active} the schedule needs: no trace written", file=sys.stderr)

    atexit.register(finish)
    prof.start()
    sys.argv = [a.script] + a.args
    sys.path.insert(0, os.path.dirname(os.path.abspath(a.script)))
    runpy.run_path(a.script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
