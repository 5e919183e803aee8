#!/usr/bin/env bash
# Screenshots of the workbench's real windows under Xvfb, on a project made
# like the demo's (a prediction, a real Kineto trace, a CPU-measured run):
# one PNG per view into OUT (default build/dev/screenshots). Fails when the
# window cannot be shown or a PNG is empty. Look at them.
# Usage: tests/screenshots/take-screenshots.sh BIN_DIR [OUT]
set -euo pipefail
bin="$1"
out="${2:-$(dirname "$bin")/../screenshots}"
src="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
project="$work/shots.partita"
cli="$bin/partita-cli"
"$cli" simulate --model "$src/resources/demo/model.json" --cluster "$src/resources/demo/cluster.json" --preset ddp \
    --global-batch 128 --micro-batch 8 --project "$project" --name "DDP (predicted)" >/dev/null
kineto="$src/../shared/data/traces/nccl_parser_config-nccl_data.json.gz"
[ -f "$kineto" ] && "$cli" trace import "$kineto" --project "$project" --name "NCCL all-reduce (Kineto)" >/dev/null
echo '{"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "vocab_size": 512}' > "$work/gpt.json"
"$cli" run --model "$work/gpt.json" --cluster local --ranks 2 --preset ddp --global-batch 4 --seq-len 64 --steps 2 \
    --project "$project" --name "small GPT-2" >/dev/null
"$cli" simulate --model "$src/resources/demo/bert-large-uncased.json" --cluster p3.16xlarge:4 \
    --strategy "$src/resources/strategies/bert-large-adaptive-p3x4.json" --project "$project" \
    --name "BERT-large adaptive (predicted)" >/dev/null
png="$out/designer.png"
rm -f "$png"
xvfb-run -a -s "-screen 0 1400x900x24" "$bin/partita" "$project" --view designer --screenshot "$png"
[ -s "$png" ] || { echo "no screenshot of the designer" >&2; exit 1; }
echo "$png"
png="$out/designer-graph.png"
rm -f "$png"
xvfb-run -a -s "-screen 0 1400x900x24" "$bin/partita" "$project" --view graph --screenshot "$png"
[ -s "$png" ] || { echo "no screenshot of the model graph" >&2; exit 1; }
echo "$png"
png="$out/cluster.png"
rm -f "$png"
xvfb-run -a -s "-screen 0 1400x900x24" "$bin/partita" "$project" --view cluster --screenshot "$png"
[ -s "$png" ] || { echo "no screenshot of the cluster view" >&2; exit 1; }
echo "$png"
# Predicted against measured: the small GPT-2's two runs (ids 3 and 4 in this project).
png="$out/compare-predicted-measured.png"
rm -f "$png"
xvfb-run -a -s "-screen 0 1400x900x24" "$bin/partita" "$project" --compare 3,4 --screenshot "$png"
[ -s "$png" ] || { echo "no screenshot of the compare view" >&2; exit 1; }
echo "$png"
runs=$("$cli" runs list --project "$project" --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(str(r["id"]) for r in json.load(sys.stdin)))')
for id in $runs; do
    png="$out/timeline-run$id.png"
    rm -f "$png"
    xvfb-run -a -s "-screen 0 1400x900x24" "$bin/partita" "$project" --run "$id" --view timeline --screenshot "$png"
    [ -s "$png" ] || { echo "no screenshot for run $id" >&2; exit 1; }
    echo "$png"
done
