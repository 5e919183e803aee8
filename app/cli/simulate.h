#pragma once
// `partita-cli simulate` and `partita-cli presets`.

#include <cstdint>
#include <string>

namespace partita::cli {

struct SimulateOptions
{
    std::string model, cluster, strategy, preset, calibration, traceOut, planOut, project, runName;
    std::string device, nodeTemplate;
    int tp = 1, pp = 1, dp = 0, interleave = 1, zero = 0;
    int64_t microBatch = 1, globalBatch = 0, seqLen = 0;
    std::string recompute = "none", dtype = "bf16";
    bool sequenceParallel = false, json = false;
};

int runSimulate(const SimulateOptions& o);
int runPresets(bool json);

} // namespace partita::cli
