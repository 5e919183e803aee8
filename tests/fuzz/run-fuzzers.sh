#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build/fuzz) and runs each for a
# bounded time on a corpus seeded from the project's real fixtures.
# Usage: tests/fuzz/run-fuzzers.sh [SECONDS_PER_FUZZER]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-20}"

if ! command -v clang++ >/dev/null 2>&1; then
    echo "run-fuzzers: cannot build the fuzzers: clang++ is not installed (packaging/install-deps.sh installs clang)" >&2
    exit 1
fi
cmake --preset fuzz >/dev/null
cmake --build build/fuzz --target fuzz_hfconfig fuzz_modeljson fuzz_onnx fuzz_clusterjson fuzz_topo fuzz_hostfile fuzz_units fuzz_plan fuzz_calibration fuzz_chrometrace fuzz_frameworks fuzz_command

corpus=build/fuzz/corpus
seed() { # seed NAME FILES...
    local name=$1; shift
    mkdir -p "$corpus/$name"
    for f in "$@"; do [ -f "$f" ] && cp -f "$f" "$corpus/$name/" || true; done
}
seed hfconfig tests/data/hf/*.json ../shared/data/hf/*.json
seed modeljson tests/data/hf/*.json
# Native model files: what convert writes for the fixtures.
mkdir -p "$corpus/modeljson"
for f in tests/data/hf/t5-small.json tests/data/hf/mixtral-8x7b-v0.1.json; do
    build/dev/bin/partita-cli convert "$f" -o "$corpus/modeljson/native-$(basename "$f")" 2>/dev/null || true
done
seed onnx $(find /usr/share/libonnx-testdata/data/simple /usr/share/libonnx-testdata/data/pytorch-converted -name model.onnx 2>/dev/null | head -40)
mkdir -p "$corpus/onnx"
i=0; for f in $(find /usr/share/libonnx-testdata/data/pytorch-converted -name model.onnx 2>/dev/null | head -40); do cp -f "$f" "$corpus/onnx/m$i.onnx"; i=$((i+1)); done
seed clusterjson resources/demo/cluster.json
build/dev/bin/partita-cli convert p3.16xlarge:2 -o "$corpus/clusterjson/p3.json" 2>/dev/null || true
seed topo tests/data/topo/*.txt
seed hostfile tests/data/hostfiles/*
mkdir -p "$corpus/chrometrace"
# HTA's small traces where ../shared is beside the checkout; the PyTorch traces the tests recorded.
for f in ../shared/data/traces/trace_compare-*.json.gz; do [ -f "$f" ] && gzip -dc "$f" > "$corpus/chrometrace/$(basename "$f" .gz)" || true; done
# HTA's small critical-path traces (sync records, streams waiting on events).
printf '{"traceEvents":[{"ph":"i","s":"t","name":"[memory]","pid":1,"tid":1,"ts":5,"args":{"Device Type":1,"Device Id":0,"Total Allocated":1024,"Total Reserved":2048}}]}' > "$corpus/chrometrace/memory.json"
for f in tests/data/hta/critical_path-cuda_event_sync*.json.gz; do gzip -dc "$f" > "$corpus/chrometrace/$(basename "$f" .gz)"; done
for f in build/dev/tests/torch-traces/*/traces/rank0.json; do [ -f "$f" ] && head -c 60000 "$f" > "$corpus/chrometrace/torch-$(basename "$(dirname "$(dirname "$f")")").json" || true; done
printf '[{"ph":"B","name":"a","pid":1,"tid":1,"ts":1},{"ph":"E","pid":1,"tid":1,"ts":2.5}]' > "$corpus/chrometrace/array.json"
# Plans and calibrations: what simulate and calibrate write.
mkdir -p "$corpus/plan" "$corpus/calibration"
tiny="$corpus/tiny-gpt2.json"
printf '{"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "vocab_size": 512}' > "$tiny"
build/dev/bin/partita-cli simulate --model "$tiny" --cluster dgx-a100-80gb --tp 2 --pp 2 --global-batch 8 \
    --plan-out "$corpus/plan/tp2-pp2.json" >/dev/null 2>&1 || true
build/dev/bin/partita-cli simulate --model "$tiny" --cluster dgx-a100-80gb --preset ddp --zero 3 \
    --plan-out "$corpus/plan/zero3.json" >/dev/null 2>&1 || true
printf '{"partita_calibration": 1, "device": "cpu rank", "source": "fuzz seed", "matmul_efficiency": [[0.001, 0.5], [0.1, 1.4]], "memory_efficiency": [[0.1, 2.0]], "intra_link_efficiency": 0.1, "interpolate": true, "combine": "sum", "kernel_overhead_s": 0}' > "$corpus/calibration/a.json"
# Framework configurations: what export writes.
mkdir -p "$corpus/frameworks"
build/dev/bin/partita-cli export --model tests/data/hf/llama-2-7b-hf.json --cluster dgx-h100:2 --preset megatron --tp 2 \
    --pp 2 --sequence-parallel --zero 1 -o "$corpus/frameworks/megatron.sh" >/dev/null 2>&1 || true
build/dev/bin/partita-cli export --format deepspeed --model tests/data/hf/gpt2.json --cluster dgx-h100:2 --preset zero-2 \
    2>/dev/null > "$corpus/frameworks/ds_config.json" || true
build/dev/bin/partita-cli export --format horovod --model tests/data/hf/gpt2.json --cluster p3.16xlarge:2 --preset horovod \
    -o "$corpus/frameworks/horovod.sh" >/dev/null 2>&1 || true
build/dev/bin/partita-cli export --format pytorch --model tests/data/hf/gpt2.json --cluster p3.16xlarge --dp 8 --zero 1 \
    --closest -o "$corpus/frameworks/train.py" >/dev/null 2>&1 || true
printf '[model]\nname = "llama3"\nflavor = "debugmodel"\n[training]\nlocal_batch_size = 2\n[parallelism]\npipeline_parallel_degree = 2\ntensor_parallel_degree = 2\n' \
    > "$corpus/frameworks/job.toml"
printf 'compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nnum_processes: 8\nfsdp_config:\n  fsdp_version: 2\n  fsdp_reshard_after_forward: true\n' \
    > "$corpus/frameworks/accelerate.yaml"
printf 'language_model:\n  num_layers: 8\n  hidden_size: 512\n  num_attention_heads: 8\n  fp8: null\nmodel_parallel:\n  tensor_model_parallel_size: 2\n  sequence_parallel: True\nseq_length: 1024\nmicro_batch_size: 1\nrampup_batch_size: [8, 8, 100]\n' \
    > "$corpus/frameworks/megatron.yaml"
mkdir -p "$corpus/command"; printf 'NCCL_DEBUG=INFO python3 -u -X dev train.py --lr "3e-4"' > "$corpus/command/a"
printf 'python3 -m trainer.main --cfg a.yaml' > "$corpus/command/b"; printf '1,1,3' > "$corpus/command/c"
mkdir -p "$corpus/units"; printf '600 GB/s' > "$corpus/units/a"; printf '80 GiB' > "$corpus/units/b"; printf '2.7 us' > "$corpus/units/c"

# Inputs that once crashed a parser stay in its corpus (tests/fuzz/regressions/NAME/).
for d in tests/fuzz/regressions/*/; do
    name=$(basename "$d")
    mkdir -p "$corpus/$name"
    cp -f "$d"* "$corpus/$name/" 2>/dev/null || true
done

status=0
fuzzers=(hfconfig modeljson onnx clusterjson topo hostfile units plan calibration chrometrace frameworks command)
for f in "${fuzzers[@]}"; do
    echo "== fuzz_$f for ${seconds}s"
    mkdir -p "build/fuzz/artifacts/$f"
    # A fixed seed makes CI reproducible; set PARTITA_FUZZ_SEED to explore further.
    if ! build/fuzz/fuzz/fuzz_$f "$corpus/$f" -seed="${PARTITA_FUZZ_SEED:-1}" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536 \
            -artifact_prefix="build/fuzz/artifacts/$f/" -print_final_stats=1 2>"build/fuzz/fuzz_$f.log"; then
        echo "fuzz_$f FAILED: crash input in build/fuzz/artifacts/$f/, log build/fuzz/fuzz_$f.log"
        tail -30 "build/fuzz/fuzz_$f.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|Done" "build/fuzz/fuzz_$f.log" | tail -1 || true
    fi
done
if [ $status -eq 0 ]; then
    echo "fuzzers: ${#fuzzers[@]} passed, 0 failed"
fi
exit $status
