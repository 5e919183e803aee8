#pragma once
// A profiled training run's time attributed to the model's layers: each
// step's top-level CPU operators (and the GPU kernels they launched, through
// the correlation ids) given to the module range they ran in, the range's
// module path matched to the model's layer names (core/modulepaths.h).
// Module ranges are the trace's "nn.Module: PATH" ranges (PATH [backward]
// for a leaf's backward), as PyTorch's profiler with module hierarchy and
// Partita's trace module (resources/profiler/partita_trace.py) write them.

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <string>
#include <vector>

namespace partita {

struct AttributedLayer
{
    std::string name;    // the layer's name, a module path that is no layer, or "optimizer" (its step: no layer)
    int32_t layer = -1;  // index among the layer names given; -1: a module path
    double host_s = 0;   // CPU operator time per step on one rank (the ranks' mean)
    double device_s = 0; // GPU kernel time per step on one rank, launched from its ranges
};

struct StepAttribution
{
    int32_t rank = 0;
    int index = 0;             // the step's place on its rank, from 0
    int64_t start_ns = 0, dur_ns = 0;
    int64_t op_ns = 0;         // top-level CPU operators' time within the step
    int64_t attributed_ns = 0; // of it, within a module other than the model itself (not the optimizer's step)
    int64_t collective_ns = 0; // of it, collectives outside every module (the script's own all_reduce or
                               // barrier: mostly this rank waiting for the others, no work of its own)
    // The share of the rank's own work the layers explain: attributed over
    // operator time less the collectives outside the model.
    double fraction() const;
};

struct LayerAttribution
{
    std::vector<AttributedLayer> layers; // layers in the model's order, then module paths, most time first
    std::vector<StepAttribution> steps;  // by rank, then step
    double attributed_fraction = 0;      // all steps' attributed over their operator time less collectives outside the model
    double worst_step_fraction = 0;      // the least fraction() of any step of any rank
    std::vector<double> step_s;          // per step index: the slowest rank's step time
    int ranks = 0;
    int64_t module_ranges = 0;           // module ranges the run holds (0: nothing to attribute by)
};

// Rows that are no layer's: the optimizer's step, and the collectives the
// script calls outside the model.
inline constexpr const char* kOptimizerRow = "optimizer";
inline constexpr const char* kOutsideCollectivesRow = "collectives outside the model";

// Streamed: a rank at a time, each host track read twice (its steps and
// module ranges, then its operators in start order), then the rank's
// kernels; only the ranges, steps and the rank's launches are held.
// `layers`: the model's layer names (empty: module paths are the layers).
// Fails when the run has no steps (ProfilerStep# ranges) to attribute within.
Result<LayerAttribution> attributeToLayers(const TraceStore& store, int64_t run, const std::vector<std::string>& layers);

} // namespace partita
