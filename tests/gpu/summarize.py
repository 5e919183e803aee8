#!/usr/bin/env python3
"""What tests/gpu/gpu-check.sh measured, as the closing note quotes it (JSON on stdout).

Reads the folder the check wrote: run-<model>-<variant>.json (partita-cli run --json),
sweep.json (partita-cli calibrate --measure-gpu --sweep-out) and trace-<model>.json
(partita-cli trace export of the traced run)."""
import json
import os
import statistics
import sys

# Dense bf16/fp16/fp8 tensor peaks of the H100/H200 SXM datasheets (the h100-sxm5
# and h200-sxm presets); other GPUs get their efficiencies from calibration.json.
PEAK = {"bf16": 989e12, "fp16": 989e12, "fp8": 1979e12}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def layer_errors(run):
    errs = [abs(l["error"]) for l in run.get("layers", []) if l.get("measured_s", 0) > 0]
    if not errs:
        return None
    return {"layers": len(errs), "median_abs_error": statistics.median(errs), "max_abs_error": max(errs),
            "within_10pct": sum(e <= 0.10 for e in errs), "step_time_error": run.get("step_time_error")}


def kernel_mapping(trace):
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"
              and e.get("args", {}).get("partita_kind") not in ("step", "annotation")]
    mapped_op = sum(1 for e in events if e["args"].get("op", -1) >= 0)
    mapped_layer = sum(1 for e in events if e["args"].get("layer", -1) >= 0)
    unmapped = sorted({e["name"] for e in events if e["args"].get("op", -1) < 0})[:10]
    kinds = {}
    for e in events:
        kinds[e["args"].get("partita_kind")] = kinds.get(e["args"].get("partita_kind"), 0) + 1
    return {"events": len(events), "with_op": mapped_op, "with_layer": mapped_layer, "kinds": kinds,
            "unmapped_names": unmapped}


def main(folder):
    s = {}
    sweep = load(os.path.join(folder, "sweep.json"))
    if sweep:
        s["device"] = {k: sweep.get(k) for k in ("gpu", "driver", "cuda_runtime", "cublas", "nccl", "cupti",
                                                 "compute_capability", "date", "launch_overhead_s")}
        s["gemm_tflops"] = {f'{g["precision"]} {g["shape"]} {g["m"]}x{g["n"]}x{g["k"]}':
                            [round(g["tflops"], 1), round(g["tflops"] * 1e12 / PEAK[g["precision"]], 3)]
                            for g in sweep.get("gemms", []) if g["precision"] in PEAK}
        copies = sweep.get("copies", [])
        s["copy_gbps"] = {str(int(c["bytes"])): round(c["gbps"], 1) for c in copies}
        s["collectives"] = [{k: c[k] for k in ("collective", "bytes", "seconds", "kernels", "kernel_seconds")}
                            for c in sweep.get("collectives", [])]
        s["sweep_notes"] = sweep.get("notes", [])
    for model in ("gpt2", "70b-block"):
        runs = {v: load(os.path.join(folder, f"run-{model}-{v}.json"))
                for v in ("cupti", "nocupti", "swept", "fitted", "cross")}
        m = {}
        if runs["cupti"] and runs["nocupti"]:
            a, b = runs["cupti"]["measured_step_time_s"], runs["nocupti"]["measured_step_time_s"]
            m["step_s_cupti"], m["step_s_no_cupti"] = a, b
            m["cupti_overhead"] = a / b - 1 if b > 0 else None
        for v, r in runs.items():
            if r:
                m[f"predicted_{v}_s"] = r.get("predicted_step_time_s")
                m[f"measured_{v}_s"] = r.get("measured_step_time_s")
                m[f"layers_{v}"] = layer_errors(r)
                m[f"calibration_{v}"] = r.get("calibration")
        if runs["cupti"]:
            m["per_layer_datasheet"] = [(l["name"], l["measured_s"], l["predicted_s"]) for l in runs["cupti"]["layers"]]
        for v in ("swept", "fitted", "cross"):
            if runs[v]:
                m[f"per_layer_{v}"] = [(l["name"], l["measured_s"], l["predicted_s"]) for l in runs[v]["layers"]]
        trace = load(os.path.join(folder, f"trace-{model}.json"))
        if trace:
            m["kernel_mapping"] = kernel_mapping(trace)
        s[model] = m
    json.dump(s, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
