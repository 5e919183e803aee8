#!/usr/bin/env bash
# Builds the benchmarks in release mode and writes their JSON to build/release/bench/.
# Usage: tests/bench/run-benchmarks.sh [SEARCH_BUDGET_SECONDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
budget="${1:-10}"
cmake --preset release >/dev/null
cmake --build build/release --target bench_simulator bench_fidelity bench_search bench_tracestore bench_executor bench_traceoverhead bench_timeline bench_gui partita-cli partita-worker
out=build/release/bench
onnx="$out/resnet50.onnx"
if [ ! -f "$onnx" ] && /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
    /usr/bin/python3 tests/bench/search/export_resnet50.py "$onnx" >/dev/null
fi
"$out/bench_simulator" "$(pwd)" > "$out/simulator.json"
echo "wrote $out/simulator.json"
"$out/bench_fidelity" ../shared/data > "$out/fidelity.json" || [ $? -eq 77 ]
echo "wrote $out/fidelity.json"
if [ -f "$onnx" ]; then
    "$out/bench_search" "$(pwd)" "$onnx" --budget-s "$budget" > "$out/search.json"
else
    echo "no PyTorch: the ResNet-50 scenario is left out" >&2
    "$out/bench_search" "$(pwd)" --budget-s "$budget" > "$out/search.json"
fi
echo "wrote $out/search.json"
"$out/bench_tracestore" "$(pwd)/build/release/bin/partita-cli" "$out/tracestore-work" --traces ../shared/data/traces > "$out/tracestore.json"
echo "wrote $out/tracestore.json"
# The workbench's timeline on the 10 M-event run the store benchmark made.
"$out/bench_timeline" "$out/tracestore-work/ingest.partita" > "$out/timeline.json"
echo "wrote $out/timeline.json"
"$out/bench_gui" "$(pwd)/build/release/bin/partita-cli" "$out/gui-work" --traces ../shared/data/traces \
    --big "$out/tracestore-work/ingest.partita" > "$out/gui.json"
echo "wrote $out/gui.json"
rm -rf "$out/tracestore-work"
"$out/bench_executor" "$(pwd)/build/release/bin/partita-cli" "$out/executor-work" > "$out/executor.json"
echo "wrote $out/executor.json"
"$out/bench_traceoverhead" "$(pwd)" "$out/traceoverhead-work" > "$out/traceoverhead.json"
echo "wrote $out/traceoverhead.json"
