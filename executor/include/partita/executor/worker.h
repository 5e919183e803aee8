#pragma once
// The CPU backend of the executor, for one rank: runs the plan's kernels of
// the plan's exact shapes (GEMMs through OpenBLAS, memory-bound passes of the
// plan's bytes) in the plan's step order, warm-up steps then measured ones,
// and traces every kernel with the host clock. Collectives, sends and
// receives need the MPI communicator, which is not built yet: a plan with
// more than one rank is refused with that reason.

#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/core/trace.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace partita {

struct CpuWorkerOptions
{
    int rank = 0;
    int warmup = 1;
    int steps = 3;
    // GEMM dimensions and memory traffic multiplied by this factor (an
    // explicit scale-down for slow CPUs; 1 runs the plan's shapes). Recorded
    // in the result.
    double shape_scale = 1.0;
    std::function<void(int step, bool warmup, double seconds)> progress;
    const std::atomic<bool>* cancel = nullptr;
};

struct CpuWorkerResult
{
    int rank = 0;
    double shape_scale = 1.0;
    std::vector<double> step_s;  // measured steps
    Trace trace;                 // measured steps only; op = index of the kernel in plan order, layer from the plan
    int64_t kernels_per_step = 0;
    std::string blas;            // the BLAS library's configuration string
};

Result<CpuWorkerResult> runCpuWorker(const Plan& plan, const CpuWorkerOptions& options);

// A stable id for every kernel a rank runs in one step, in plan order:
// (step index, micro-batch, kernel index) flattened. The trace's `op` field.
int64_t planOpId(int step, int kernel);

} // namespace partita
