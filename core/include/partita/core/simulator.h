#pragma once
// Predicts one training step of a strategy on a cluster: step time,
// throughput, MFU, memory per device, a breakdown and a predicted trace.
// Ranks that behave alike (all ranks of one pipeline stage) are simulated
// once, so a 1024-GPU plan costs as much as its number of stages.

#include "partita/core/cluster.h"
#include "partita/core/costmodel.h"
#include "partita/core/model.h"
#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"
#include "partita/core/trace.h"

#include <optional>
#include <string>
#include <vector>

namespace partita {

struct SimOptions
{
    int64_t seq_len = 0;                    // 0: the model's
    std::optional<Calibration> calibration; // default: defaultCalibration(device)
    bool trace = false;                     // fill SimResult::trace
};

struct MemoryUse
{
    double parameters_optimizer = 0; // weights, gradients, optimizer state
    double activations = 0;          // peak saved activations of the schedule's in-flight micro-batches
    double peak = 0;                 // the two together
    double capacity = 0;
    bool oom = false;
};

struct Breakdown
{
    double compute = 0;        // compute ops on the critical device, TP collectives included
    double tp_comm = 0;        // of which tensor-parallel collectives (blocking)
    double exposed_comm = 0;   // data-parallel / PS / ZeRO communication not hidden behind compute
    double bubble = 0;         // pipeline fill and drain
    double optimizer = 0;
    double idle = 0;           // the rest of the step
};

struct LayerTime
{
    int layer = 0;
    double forward = 0;   // one micro-batch on one device of its stage, TP collectives included
    double backward = 0;
    double recompute = 0;
    double sync = 0;      // its share of gradient synchronization per step (not all exposed)
};

struct SimResult
{
    double step_time = 0;
    double samples_per_s = 0;
    double tokens_per_s = 0;
    double mfu = 0;         // model FLOPs (3 x forward, no recomputation) / (step time x devices x peak)
    double model_flops = 0; // per step
    bool oom = false;
    Breakdown breakdown;                 // of the most loaded stage
    std::vector<MemoryUse> stage_memory; // per pipeline stage
    MemoryUse memory;                    // the most loaded device
    std::vector<LayerTime> layers;
    std::vector<double> stage_busy;      // compute seconds per stage
    Trace trace;                         // one representative rank per stage
    std::vector<std::string> notes;
    std::string calibration_source;
};

Result<SimResult> simulate(const Model& model, const Cluster& cluster, const Strategy& strategy,
                           const SimOptions& options = {});
// The same on a plan already lowered from (model, cluster, strategy).
Result<SimResult> simulatePlan(const Plan& plan, const Model& model, const Cluster& cluster, const Strategy& strategy,
                               const SimOptions& options = {});

// A prediction's headline figures as the JSON object a predicted run keeps
// as its meta: step_time_s, samples_per_s, mfu, peak_memory_bytes, oom.
std::string predictionMetaJson(const SimResult& r);

// Collective time over a group of `n` ranks spread over `nodes` nodes with
// `perNode` ranks each, in the alpha-beta model with NCCL's bus factors
// (nccl-tests doc/PERFORMANCE.md). Exposed for tests and the search.
struct GroupShape
{
    int n = 1;
    int nodes = 1;
    int per_node = 1;
};
double collectiveTime(Collective kind, double bytes, const GroupShape& g, const Node& node, const Calibration& cal,
                      AllReduceAlgo algo = AllReduceAlgo::Ring);

} // namespace partita
