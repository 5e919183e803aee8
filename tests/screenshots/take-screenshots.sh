#!/usr/bin/env bash
# Screenshots of the workbench's real windows under Xvfb, on a project made
# like the demo's (a prediction, a real PyTorch-profiler trace of a 2-rank DDP
# job recorded on this CPU, a CPU-measured run):
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
# The window as a new user sees it: no layout or theme remembered from before.
export XDG_CONFIG_HOME="$work/config"
project="$work/shots.partita"
cli="$bin/partita-cli"
"$cli" simulate --model "$src/resources/demo/model.json" --cluster "$src/resources/demo/cluster.json" --preset ddp \
    --global-batch 128 --micro-batch 8 --project "$project" --name "DDP (predicted)" >/dev/null
# The traces CTest's torch_traces fixture recorded, else recorded here.
traces="${PARTITA_TORCH_TRACES:-}"
if [ ! -f "$traces/two/facts.json" ]; then
    traces="$work/torch"
    /usr/bin/python3 "$src/resources/demo/record_torch_trace.py" "$traces/two" --ranks 2 >/dev/null
fi
"$cli" trace import "$traces/two/traces" --project "$project" --name "small GPT, DDP on 2 CPU ranks (PyTorch profiler)" >/dev/null
echo '{"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "vocab_size": 512}' > "$work/gpt.json"
"$cli" run --model "$work/gpt.json" --cluster local --ranks 2 --preset ddp --global-batch 4 --seq-len 64 --steps 2 \
    --project "$project" --name "small GPT-2" >/dev/null
"$cli" simulate --model "$src/resources/demo/bert-large-uncased.json" --cluster p3.16xlarge:4 \
    --strategy "$src/resources/strategies/bert-large-adaptive-p3x4.json" --project "$project" \
    --name "BERT-large adaptive (predicted)" >/dev/null
# shot NAME ARGS...: the window with ARGS, saved as OUT/NAME.png; fails without a PNG.
shot() {
    local png="$out/$1.png"
    shift
    rm -f "$png"
    # Each window as a new user first sees it: no geometry kept from the
    # shot before (a HiDPI shot's would make the next one taller than its screen).
    XDG_CONFIG_HOME="$work/config-$(basename "$png" .png)" \
        xvfb-run -a -s "-screen 0 ${SCREEN:-1400x900}x24" "$bin/partita" "$project" "$@" --screenshot "$png"
    [ -s "$png" ] || { echo "no screenshot $png" >&2; exit 1; }
    echo "$png"
}
shot designer --view designer --theme light
# The dark theme, and HiDPI (device pixel ratio 2).
shot designer-dark --view designer --theme dark
SCREEN=2800x1800 QT_SCALE_FACTOR=2 shot designer-hidpi --view designer --theme light
shot designer-graph --view graph --theme light
shot cluster --view cluster --theme light
# Predicted against measured: the small GPT-2's two runs (ids 3 and 4 in this project).
shot compare-predicted-measured --compare 3,4 --theme light
shot compare-dark --compare 3,4 --theme dark
shot timeline-dark --run 2 --view timeline --theme dark
# The 2-rank DDP trace's critical path, drawn on its timeline.
shot timeline-critical-path --run 2 --view critical-path --theme light
# The measured small GPT-2's 2 CPU ranks, step by step, in the heat map.
shot timeline-heatmap --run 4 --view heatmap --theme light
# Its ranks grouped by its strategy's mesh (dp=2): the group's busy shares per step.
shot timeline-grouped --run 4 --view timeline --group-ranks dp --theme light
SCREEN=2800x1800 QT_SCALE_FACTOR=2 shot timeline-hidpi --run 2 --view timeline --theme light
runs=$("$cli" runs list --project "$project" --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(str(r["id"]) for r in json.load(sys.stdin)))')
for id in $runs; do
    shot "timeline-run$id" --run "$id" --view timeline --theme light
done
