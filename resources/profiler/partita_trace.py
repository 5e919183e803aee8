#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs a PyTorch training script under the PyTorch profiler without editing it.

    partita_trace.py --out DIR [--schedule WAIT,WARMUP,ACTIVE] [--] SCRIPT [ARGS...]
    partita_trace.py --out DIR [--schedule WAIT,WARMUP,ACTIVE] -m MODULE [ARGS...]

Put in front of the script on each rank (the launcher gives the rank its
torch.distributed environment: RANK, LOCAL_RANK, WORLD_SIZE, ...). It:
- starts the profiler (Kineto: CPU ops with their shapes; CUDA kernels,
  memory copies and NCCL when a GPU is used) on a wait / warm-up / active
  schedule counted in optimizer steps (every optimizer's step, the outermost
  call only, so ZeroRedundancyOptimizer's inner step is not counted twice);
- opens a range named "nn.Module: PATH" around every module's forward, PATH
  being the module's name under the model it was called from (wrappers'
  "module." and "_orig_mod." taken off: the names a Hugging Face or
  Partita-exported model gives its layers; the model itself "(ClassName)"),
  since the profiler records no module hierarchy for eager PyTorch before
  2.x, and a range "nn.Module: PATH [backward]" over each leaf module's
  backward (see BackwardRanges);
- prints "rank R step N/TOTAL" on standard error after each optimizer step
  of the schedule, the progress Partita's launcher shows;
- writes DIR/rank<R>.json (Chrome trace; ProfilerStep#N marks each active
  step) and DIR/rank<R>.steps (JSON: each optimizer step's wall time as this
  module saw it), and leaves the training otherwise as it is.

What it costs: the profiler's own overhead while it records (the active
steps), and writing the trace after the last of them; once the schedule is
over its hooks come off and the training runs as without it. Measured by
tests/bench/bench_traceoverhead.cpp (2-rank DDP GPT-2 of 120 K parameters on
a 2-core CPU, Debian's torch 1.13, ops of ~10-100 us): recorded steps 1.94x
the plain step, steps after the schedule 1.01x, the trace written in 1.75 s.
The overhead is per operator, so it is a smaller share of larger operators.
"""
import argparse
import atexit
import json
import os
import runpy
import signal
import sys
import threading
import time
import weakref


def parse_args(argv):
    module, module_args = None, []
    for i, arg in enumerate(argv):  # "-m MODULE ARGS...": everything after MODULE is the module's
        if arg == "-m" and i + 1 < len(argv):
            argv, module, module_args = argv[:i], argv[i + 1], argv[i + 2:]
            break
        if arg == "--" or not arg.startswith("-") and (i == 0 or argv[i - 1] not in ("--out", "--schedule")):
            break
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for rank<R>.json and rank<R>.steps")
    p.add_argument("--schedule", default="1,1,3", help="optimizer steps to wait, warm up and record (default 1,1,3)")
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a module as python3 -m does, not a script")
    p.add_argument("script", nargs="?" if module else None, help="the training script")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = p.parse_args(argv)
    if module:
        a.module, a.args = module, module_args
    try:
        wait, warmup, active = (int(x) for x in a.schedule.split(","))
    except ValueError:
        p.error(f"--schedule {a.schedule!r}: expected three whole numbers WAIT,WARMUP,ACTIVE")
    if wait < 0 or warmup < 0 or active < 1:
        p.error(f"--schedule {a.schedule!r}: WAIT and WARMUP at least 0, ACTIVE at least 1")
    if a.module:
        pass
    elif not os.path.isfile(a.script):
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
        self.backward = BackwardRanges(torch, self.name_of)
        nn = torch.nn.modules.module
        self.handles = [nn.register_module_forward_pre_hook(self.pre),
                        nn.register_module_forward_hook(self.post)]

    def remove(self):
        """Takes the hooks off (the schedule is over): the training runs as without the module."""
        for h in self.handles:
            h.remove()
        self.handles = []
        self.backward.close()

    def name_of(self, module):
        name = self.names.get(module)
        if name is None:  # first seen outside any named model: a root, naming what it holds
            for path, sub in module.named_modules():  # the model itself (and its wrappers): "(ClassName)"
                self.names.setdefault(sub, clean(path) or "(" + type(sub).__name__ + ")")
            name = self.names[module]
        return name

    def pre(self, module, inputs):
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        if not stack and not self.backward.queued:  # a new forward (not a recomputation in backward)
            self.backward.close()
        rf = self.torch.autograd.profiler.record_function("nn.Module: " + self.name_of(module))
        rf.__enter__()
        stack.append(rf)

    def post(self, module, inputs, output):
        stack = getattr(self.local, "stack", None)
        if stack:
            stack.pop().__exit__(None, None, None)
        self.backward.watch(module, output)
        if not stack and self.torch.is_grad_enabled() and not self.backward.queued:  # the outermost forward ended
            self.backward.loss()


class BackwardRanges:
    """A range named "nn.Module: PATH [backward]" over each leaf module's backward.

    The profiler of PyTorch before 2.x ties no backward op to a module, so a
    hook on each leaf module's output tensors opens the range when the
    gradient reaching that output is ready (the module's backward starts);
    it lasts until the next leaf's begins, the backward pass ends, or an
    optimizer step starts. Leaves only: the autograd engine interleaves
    siblings' backward, so nested ranges would overlap. Work a leaf does not
    own (a block's residual adds, an attention's softmax written as
    functions) falls in the range of the leaf before it in backward order:
    within the same block or module but for the block's first leaf.
    """

    def __init__(self, torch, name_of):
        self.torch, self.name_of = torch, name_of
        self.open = {}  # thread -> the range open on it
        self.queued = False  # the close at the end of this backward pass is queued
        self.lock = threading.Lock()

    def watch(self, module, output):
        torch = self.torch
        if not torch.is_grad_enabled() or next(module.children(), None) is not None:
            return
        tensors = [t for t in (output if isinstance(output, (tuple, list)) else (output,))
                   if isinstance(t, torch.Tensor) and t.requires_grad and t.grad_fn is not None]
        if not tensors:
            return
        name = "nn.Module: " + self.name_of(module) + " [backward]"
        fired = []

        def hook(grad):
            if not fired:  # the first of its outputs whose gradient is ready
                fired.append(True)
                self.switch(name)

        for t in tensors:
            t.register_hook(hook)

    def switch(self, name, in_backward=True):
        tid = threading.get_ident()
        with self.lock:
            first = in_backward and not self.queued
            self.queued = self.queued or in_backward
            prev = self.open.pop(tid, None)
        if prev is not None:
            prev.__exit__(None, None, None)
        rf = self.torch.autograd.profiler.record_function(name)
        rf.__enter__()
        with self.lock:
            self.open[tid] = rf
        if first:  # the first leaf of this backward pass: close the ranges when it ends
            self.torch.autograd.Variable._execution_engine.queue_callback(self.close)

    def loss(self):
        """The model's forward is over: what runs until the first leaf's backward (the
        loss, forward and backward, written outside the model) is the range "nn.Module: loss"."""
        self.switch("nn.Module: loss", in_backward=False)

    def close(self):
        """Ends the range open on this thread (ranges on other threads end at their next switch)."""
        with self.lock:
            self.queued = False
            rf = self.open.pop(threading.get_ident(), None)
        if rf is not None:
            rf.__exit__(None, None, None)


class StepCounter:
    """Calls `on_begin` before and `on_step` after each outermost optimizer step."""

    def __init__(self, torch, on_begin, on_step):
        self.on_begin, self.on_step, self.depth = on_begin, on_step, 0
        optim = torch.optim.Optimizer
        counter = self
        original = optim.__init__

        def init(opt, *args, **kwargs):
            original(opt, *args, **kwargs)
            step = opt.step

            def counted(*a, **k):
                if counter.depth == 0:
                    counter.on_begin()
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
    ranges = ModuleRanges(torch)
    steps, last = [], [time.perf_counter()]
    total = a.wait + a.warmup + a.active

    def on_step():
        now = time.perf_counter()
        steps.append(now - last[0])
        last[0] = now
        prof.step()
        if len(steps) <= total:  # progress, in the form Partita's launcher reads
            print(f"rank {rank} step {len(steps)}/{total}", file=sys.stderr, flush=True)
        if len(steps) == total:  # recorded: the module ranges' hooks come off
            ranges.remove()

    StepCounter(torch, ranges.backward.close, on_step)

    def finish():
        prof.stop()
        with open(os.path.join(a.out, f"rank{rank}.steps"), "w") as f:
            json.dump({"rank": rank, "schedule": [a.wait, a.warmup, a.active], "step_s": steps,
                       "trace": os.path.basename(trace) if written else None}, f)
        if not written:
            print(f"partita_trace: rank {rank} ran {len(steps)} optimizer steps, fewer than the "
                  f"{a.wait + a.warmup + a.active} the schedule needs: no trace written", file=sys.stderr)

    atexit.register(finish)
    # Stopped by the launcher (another rank failed, a timeout): exit through
    # atexit, so that steps recorded so far are written (a script that sets
    # its own handler replaces this one).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    prof.start()
    if a.module:
        sys.argv = [a.module] + a.args
        sys.path.insert(0, os.getcwd())
        runpy.run_module(a.module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [a.script] + a.args
        sys.path.insert(0, os.path.dirname(os.path.abspath(a.script)))
        runpy.run_path(a.script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
