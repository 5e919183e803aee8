#!/usr/bin/env bash
# Installs what is missing, builds, runs the demo pipeline — read the demo
# model and cluster, predict a strategy, search for a better one, measure a
# small model on this CPU — into the demo project, says where the results
# are, and opens the workbench on that project when there is a display.
# The project ends with the story that started the field: BERT-large on
# 4 x p3.16xlarge, Horovod vs an adaptive per-layer strategy vs a searched
# one, which the workbench's designer opens on. (Its compare and run views
# arrive later in issue 7.)
set -euo pipefail
cd "$(dirname "$0")"

./packaging/install-deps.sh

cmake --preset dev >/dev/null
cmake --build build/dev --target partita-cli partita-worker partita

cli=build/dev/bin/partita-cli
out=out/demo
mkdir -p "$out"
model=resources/demo/model.json
cluster=resources/demo/cluster.json

echo "== Partita demo"
"$cli" inspect "$model" --seq-len 1024 --batch 8 | sed -n '1,9p'
echo
"$cli" inspect "$cluster" | sed -n '1,12p'
"$cli" inspect "$model" --seq-len 1024 --batch 8 --json > "$out/model.json"
"$cli" inspect "$cluster" --json > "$out/cluster.json"
"$cli" inspect local --json > "$out/local-machine.json"
echo
echo "== Predicted: data parallelism (PyTorch DDP) on the demo cluster"
"$cli" simulate --model "$model" --cluster "$cluster" --preset ddp --global-batch 128 --micro-batch 8 \
    --trace-out "$out/ddp-trace.json" --plan-out "$out/ddp-plan.json" | sed -n '5,15p'
"$cli" simulate --model "$model" --cluster "$cluster" --preset ddp --global-batch 128 --micro-batch 8 --json > "$out/ddp.json"
echo
echo "== Auto-search (5 s)"
"$cli" search --model "$model" --cluster "$cluster" --global-batch 128 --budget-s 5 --out "$out/best-strategy.json" \
    | sed -n '/^Best:/,/^$/p'
"$cli" simulate --model "$model" --cluster "$cluster" --strategy "$out/best-strategy.json" \
    --trace-out "$out/best-trace.json" --json > "$out/best.json"
echo
echo "== Project: both predictions and a real PyTorch-profiler trace in one store"
project="$out/demo.partita"
rm -rf "$project" "$project-wal" "$project-shm" "$project.runs"
"$cli" simulate --model "$model" --cluster "$cluster" --preset ddp --global-batch 128 --micro-batch 8 \
    --project "$project" --name "DDP (predicted)" > /dev/null
"$cli" simulate --model "$model" --cluster "$cluster" --strategy "$out/best-strategy.json" \
    --project "$project" --name "searched (predicted)" > /dev/null
echo "   recording a small GPT trained with DDP on 2 CPU ranks under PyTorch's profiler (gloo)"
/usr/bin/python3 resources/demo/record_torch_trace.py "$out/torch-ddp" --ranks 2 --steps 3 > /dev/null
"$cli" trace import "$out/torch-ddp/traces" --project "$project" --name "small GPT, DDP on 2 CPU ranks (PyTorch profiler)" \
    | sed -n '1,2p'
echo "== Measured: a small GPT-2 on this machine's CPU, 2 ranks through mpirun, beside its prediction"
echo '{"model_type": "gpt2", "n_embd": 128, "n_head": 4, "n_layer": 2, "n_positions": 128, "vocab_size": 2048}' \
    > "$out/small-gpt2.json"
"$cli" run --model "$out/small-gpt2.json" --cluster local --ranks 2 --preset ddp --global-batch 4 --seq-len 128 \
    --steps 20 --project "$project" --name "small GPT-2, CPU" | sed -n '/^Measured/,/^Calibration/p'
echo
echo "== BERT-large on 4 x p3.16xlarge (32 V100s): Horovod vs adaptive per-layer vs searched (predicted)"
bert=resources/demo/bert-large-uncased.json
"$cli" simulate --model "$bert" --cluster p3.16xlarge:4 --preset horovod --global-batch 256 --micro-batch 8 \
    --project "$project" --name "BERT-large: Horovod (predicted)" | grep -E '^Step time'
"$cli" simulate --model "$bert" --cluster p3.16xlarge:4 --strategy resources/strategies/bert-large-adaptive-p3x4.json \
    --project "$project" --name "BERT-large: adaptive per layer (predicted)" | grep -E '^Step time'
"$cli" search --model "$bert" --cluster p3.16xlarge:4 --global-batch 256 --budget-s 5 --out "$out/bert-searched.json" \
    > /dev/null
"$cli" simulate --model "$bert" --cluster p3.16xlarge:4 --strategy "$out/bert-searched.json" \
    --project "$project" --name "BERT-large: searched (predicted)" | grep -E '^Step time'
"$cli" runs list --project "$project"
echo
"$cli" trace diff --project "$project" --run 1 --run 2 | sed -n '/^\(steps\|per rank\)/,$p' | head -8
"$cli" trace stats --project "$project" --run 2 --json > "$out/searched-stats.json"
echo
echo "Results in $(pwd)/$out:"
echo "  model.json cluster.json local-machine.json   what Partita read"
echo "  ddp.json ddp-plan.json ddp-trace.json        the DDP prediction, its execution plan and timeline"
echo "  best-strategy.json best.json best-trace.json the searched strategy and its prediction"
echo "  bert-searched.json                           the searched BERT-large strategy"
echo "  demo.partita                                 the project: runs, timelines (partita-cli runs list / trace stats)"
echo "  demo.partita.runs/                           the measured run's plan and per-rank traces"
echo "  torch-ddp/traces/rank0.json rank1.json       the PyTorch-profiler traces of the 2-rank DDP job"
echo "Timelines (*-trace.json) open in the Perfetto UI or chrome://tracing."
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x build/dev/bin/partita ]; then
    echo "Opening the workbench on $out/demo.partita: the designer on BERT-large (drag atoms from the palette onto"
    echo "layers), runs on the left, their timelines in the Timeline tab."
    exec build/dev/bin/partita "$out/demo.partita"
fi
echo "No display: the workbench (build/dev/bin/partita $out/demo.partita) was not opened."
