#pragma once
// Fits the cost model's efficiencies to a measured run: what the simulator
// must assume about this hardware so that its per-op times match the ops the
// run measured. Every op of the run is matched to its plan kernel by its op
// id, and each efficiency is fitted in the simulator's own formulas:
//  - memory-bound efficiency by op size (MB), from the pure memory ops;
//  - matmul efficiency by GFLOP per matmul, from the GEMM ops, after taking
//    off their memory time (the simulator adds the two);
//  - link efficiency, from the collectives: the time at full link bandwidth
//    over the measured time, summed over collectives (intra-node links on one
//    node, the NICs across nodes).
// Sizes are grouped in half-octave bins; a bin's efficiency is its time at
// full efficiency over its measured time, summed over its ops.

#include "partita/core/cluster.h"
#include "partita/core/costmodel.h"
#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <string>
#include <vector>

namespace partita {

struct CalibrationFit
{
    Calibration calibration;
    int gemm_ops = 0, memory_ops = 0, collectives = 0; // measured ops the fit used
    std::vector<std::string> notes;                    // what could not be fitted, and why
};

Result<CalibrationFit> fitCalibration(const TraceStore& store, int64_t run, const Plan& plan, const Cluster& cluster,
                                      const std::string& label);

} // namespace partita
