#!/usr/bin/env bash
# The GPU check (issue 21), for a machine with one NVIDIA GPU. Runs the
# programs of a build (PARTITA_GPU_BIN, default build/release/bin; a folder
# staged by tests/gpu/stage.sh carries them with the libraries they need) and
# writes everything it measured under $OUT (default ./gpu-check-out):
#   1. versions: device, driver, CUDA, cuBLAS, NCCL, CUPTI       versions.txt, sweep.json
#   2. the GEMM (bf16, fp16, fp8) and memory sweep, timed with
#      CUDA events, fitted into a calibration file                sweep.json, calibration.json
#   3. 1-rank plans replayed with CUPTI and without: GPT-2 small
#      (micro-batch 8 x 1024) and one block of a 70B-class model
#      (Llama-2-70B shapes, 1 x 4096), predicted from datasheet
#      figures and from the sweep's calibration; every kernel's
#      plan op and layer checked                                  gpu.partita, run-*.json, kernels-*.json
#   4. NCCL on a 1-rank communicator, each collective timed and
#      traced (in the sweep)                                      sweep.json
# and summary.json with what the closing note quotes. A step that fails is
# logged and the others still run; the exit status says whether all passed.
# Everything also goes into gpu-check.tar.gz (the device tool brings back at
# most 8 files). Usage: tests/gpu/gpu-check.sh [STEPS]
set -uo pipefail
cd "$(dirname "$0")/../.."
steps="${1:-10}"
out="${OUT:-gpu-check-out}"
res="$out/results"
mkdir -p "$res"
exec > >(tee "$out/log.txt") 2>&1
if [[ -n "${PARTITA_GPU_BUNDLE:-}" ]]; then # tests/gpu/stage.sh's archive
    mkdir -p /tmp/partita-gpu && tar -C /tmp/partita-gpu -xJf "$PARTITA_GPU_BUNDLE" && PARTITA_GPU_BIN=/tmp/partita-gpu/bin
fi
bin="$(realpath "${PARTITA_GPU_BIN:-build/release/bin}")"
failed=()
step() { # name command...: runs it, logs its status
    local name="$1"; shift
    echo "=== $name: $*"
    local t0=$SECONDS
    if "$@"; then echo "=== $name: ok ($((SECONDS - t0)) s)"; else echo "=== $name: FAILED ($?)"; failed+=("$name"); fi
}

# The CUDA libraries the plugin links, wherever this machine has them
# (the toolkit's folders, the system's, Python's nvidia-* wheels).
libdirs=()
[[ -d "$bin/../lib" ]] && libdirs+=("$(realpath "$bin/../lib")")
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcupti.so.13 libnccl.so.2; do
    found=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [[ -n "$found" ]] || found=$(find /usr/local/cuda* /usr/lib /opt -name "$lib" 2>/dev/null | head -1)
    if [[ -n "$found" ]]; then libdirs+=("$(dirname "$found")"); echo "$lib: $found"; else echo "$lib: NOT FOUND"; fi
done
# Only Partita's programs see these libraries (python3 and nvidia-smi keep the system's).
ld="$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PARTITA_CUDA_PLUGIN="$bin/libpartita_cuda.so"
cli() { LD_LIBRARY_PATH="$ld" "$bin/partita-cli" "$@"; }

versions() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv
    nvidia-smi | head -12
    command -v nvcc >/dev/null && nvcc --version | tail -2
    cli --version
    LD_LIBRARY_PATH="$ld" ldd "$PARTITA_CUDA_PLUGIN" | grep -E 'cuda|cublas|cupti|nccl|not found'
}
step versions versions > "$res/versions.txt"
cat "$res/versions.txt"

step sweep timeout 240 env LD_LIBRARY_PATH="$ld" "$bin/partita-cli" calibrate --measure-gpu --sweep-out "$res/sweep.json" --out "$res/calibration.json"

project="$res/gpu.partita"
rm -f "$project"
run() { # tag model micro-batch seq-len [options...]
    local tag="$1" model="$2" mb="$3" seq="$4"; shift 4
    cli run --model "$model" --cluster local --backend cuda --preset ddp --micro-batch "$mb" --global-batch "$mb" \
        --seq-len "$seq" --dtype bf16 --steps "$steps" --warmup 3 --timeout 120 --project "$project" --name "$tag" --json "$@" \
        > "$res/run-$tag.json"
}
models=("gpt2:tests/data/hf/gpt2.json:8:1024" "70b-block:tests/gpu/models/llama-2-70b-1block.json:1:4096")
for m in "${models[@]}"; do
    IFS=: read -r tag model mb seq <<< "$m"
    step "$tag cupti" run "$tag-cupti" "$model" "$mb" "$seq"
    step "$tag no-cupti" run "$tag-nocupti" "$model" "$mb" "$seq" --no-cupti
    [[ -f "$res/calibration.json" ]] &&
        step "$tag swept" run "$tag-swept" "$model" "$mb" "$seq" --calibration "$res/calibration.json"
    if id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$res/run-$tag-cupti.json" 2>/dev/null); then
        step "$tag fit" cli calibrate --project "$project" --run "$id" --json --out "$res/calibration-$tag-run.json" \
            > "$res/fit-$tag.json"
        step "$tag export" cli trace export --project "$project" --run "$id" "$res/trace-$tag.json"
    fi
done
# Each traced run's fit predicting the same model (in sample) and the other model (out of sample).
for m in "${models[@]}"; do
    IFS=: read -r tag model mb seq <<< "$m"
    for from in gpt2 70b-block; do
        [[ -f "$res/calibration-$from-run.json" ]] || continue
        variant=$([[ $from == "$tag" ]] && echo fitted || echo cross)
        step "$tag $variant" run "$tag-$variant" "$model" "$mb" "$seq" --calibration "$res/calibration-$from-run.json"
    done
done

python3 tests/gpu/summarize.py "$res" > "$res/summary.json" || failed+=(summary)
cat "$res/summary.json"
cp "$res/summary.json" "$res/sweep.json" "$res/calibration.json" "$out/" 2>/dev/null
tar -C "$res" -czf "$out/gpu-check.tar.gz" . || failed+=(tar)
rm -rf "$res"
if ((${#failed[@]})); then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "all steps passed"
