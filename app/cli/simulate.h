#pragma once
// `partita-cli simulate` and `partita-cli presets`.

#include "partita/core/costmodel.h"
#include "partita/core/model.h"
#include "partita/core/strategy.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <optional>
#include <string>

namespace partita::cli {

struct SimulateOptions
{
    std::string model, cluster, strategy, preset, calibration, traceOut, planOut, project, runName;
    std::string device, nodeTemplate;
    int tp = 1, pp = 1, dp = 0, cp = 1, interleave = 1, zero = 0;
    std::string cpComm; // p2p, all_gather; empty: p2p
    bool tpCommOverlap = false, overlapParamGather = false;
    std::optional<bool> overlapGradReduce; // unset: the strategy's (on by default)
    int firstStageLayers = 0, lastStageLayers = 0; // uneven pipeline stages (0: even)
    int64_t microBatch = 1, globalBatch = 0, seqLen = 0;
    std::string recompute = "none", dtype; // empty: the cluster's default (defaultPrecision)
    bool sequenceParallel = false, json = false;
    std::string attention; // fused, unfused; empty: the strategy's (fused by default)
};

int runSimulate(const SimulateOptions& o);

// The strategy the options describe: a file, a preset, or mesh flags.
Result<Strategy> strategyFromOptions(const SimulateOptions& o, const Model& model, const Cluster& cluster);
// The model, the cluster and the strategy the options name, loaded and built.
struct StrategyInputs
{
    Model model;
    Cluster cluster;
    Strategy strategy;
};
Result<StrategyInputs> loadStrategyInputs(const SimulateOptions& o);
// A calibration file, or none when the path is empty.
Result<std::optional<Calibration>> loadCalibration(const std::string& path);

int runPresets(bool json);

} // namespace partita::cli
