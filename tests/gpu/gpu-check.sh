#!/usr/bin/env bash
# The GPU check of the executor, for a machine with one NVIDIA GPU (issue 6):
# builds the CUDA worker, runs a 1-rank plan of GPT-2 small a few steps with
# and without CUPTI, and writes what it measured to $OUT (or ./gpu-check-out):
#   run-cupti.json, run-nocupti.json   partita-cli run --json of each
#   calibration.json                   fitted to the traced run
#   run-calibrated.json                the same strategy predicted after calibration
#   summary.json                       tracing overhead, per-layer errors
#   gpu.partita                        the project with the traced timeline
# Usage: tests/gpu/gpu-check.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps="${1:-10}"
out="${OUT:-gpu-check-out}"
mkdir -p "$out"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" || true
cmake --preset release >/dev/null
# The CUDA backend is a plugin (libpartita_cuda.so) built when the toolkit has cuBLAS, NCCL and CUPTI.
grep -q "^partita_cuda:" <(cmake --build build/release --target help) ||
    { echo "no CUDA plugin in this build (configure found no CUDA toolkit with cuBLAS, NCCL and CUPTI)" >&2; exit 1; }
cmake --build build/release --target partita-cli partita-worker partita_cuda
cli=build/release/bin/partita-cli
project="$out/gpu.partita"
rm -rf "$project" "$project".runs
common=(--model tests/data/hf/gpt2.json --cluster local --backend cuda --preset ddp --global-batch 8
        --micro-batch 8 --seq-len 1024 --dtype bf16 --steps "$steps" --warmup 3 --project "$project" --json)
"$cli" run "${common[@]}" --name "GPT-2 small, CUPTI" > "$out/run-cupti.json"
"$cli" run "${common[@]}" --name "GPT-2 small, no CUPTI" --no-cupti > "$out/run-nocupti.json"
run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$out/run-cupti.json")
"$cli" calibrate --project "$project" --run "$run" --out "$out/calibration.json" --json > "$out/calibrate.json"
"$cli" run "${common[@]}" --name "GPT-2 small, calibrated" --calibration "$out/calibration.json" > "$out/run-calibrated.json"
python3 - "$out" <<'PY'
import json, sys, statistics
out = sys.argv[1]
r = {k: json.load(open(f"{out}/run-{k}.json")) for k in ("cupti", "nocupti", "calibrated")}
s = {
    "step_s_cupti": r["cupti"]["measured_step_time_s"],
    "step_s_no_cupti": r["nocupti"]["measured_step_time_s"],
    "cupti_overhead": r["cupti"]["measured_step_time_s"] / r["nocupti"]["measured_step_time_s"] - 1,
    "predicted_datasheet_s": r["cupti"]["predicted_step_time_s"],
    "predicted_calibrated_s": r["calibrated"]["predicted_step_time_s"],
    "measured_calibrated_run_s": r["calibrated"]["measured_step_time_s"],
    "layer_abs_error_median_datasheet": statistics.median(abs(l["error"]) for l in r["cupti"]["layers"] if l["measured_s"] > 0),
    "layer_abs_error_median_calibrated": statistics.median(abs(l["error"]) for l in r["calibrated"]["layers"] if l["measured_s"] > 0),
}
json.dump(s, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(s, indent=2))
PY
