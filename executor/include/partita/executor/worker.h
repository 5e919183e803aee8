#pragma once
// One rank of a measured run: replays its rank class's steps of a plan through
// a compute backend and a communicator, warm-up steps then measured ones, and
// traces every op on the host clock aligned to rank 0.
//
// Streams as the plan has them: kernels, tensor-parallel collectives and
// pipeline sends/receives run in order on the compute thread; data-parallel
// gradient synchronization runs on a communication thread, each bucket posted
// as soon as the last micro-batch's backward has produced its gradients, so it
// overlaps the rest of the backward as the simulator assumes; ZeRO-3 gathers a
// pass's parameters one pass ahead on the same thread. The optimizer waits for
// every bucket.

#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/core/trace.h"
#include "partita/executor/backend.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace partita {

struct WorkerResult
{
    int rank = 0;
    double shape_scale = 1.0;
    std::vector<double> step_s;   // measured steps
    Trace trace;                  // measured steps only; op = planOpId, layer from the plan
    int64_t ops_per_step = 0;     // traced ops (kernels, collectives, transfers, syncs) of one step
    std::string compute;          // the compute backend's description
    std::string communicator;     // the communicator's
    bool overlapped = false;      // synchronization ran on its own thread
    bool complete = false;        // every measured step ran
};

struct WorkerOptions
{
    int warmup = 1;
    int steps = 3;
    // GEMM dimensions, memory traffic and message sizes multiplied by this
    // factor (an explicit scale-down for slow CPUs; 1 runs the plan's
    // shapes). Recorded in the result.
    double shape_scale = 1.0;
    std::function<void(int iteration, bool warmup, double seconds)> progress;
    // After a measured step, with what was measured so far (a rank that dies
    // later leaves these steps behind): after the first and the last, and
    // between them while the time spent in it stays under a quarter of the
    // measured steps' (it rewrites the whole run, so it grows with it).
    std::function<void(const WorkerResult&)> checkpoint;
    const std::atomic<bool>* cancel = nullptr;
};

// Checks that this executor can replay the plan on `comm` (its world, its
// classes, the synchronization methods it implements).
Result<bool> checkPlanForWorker(const Plan& plan, int rank, int worldSize);

Result<WorkerResult> runWorker(const Plan& plan, const WorkerOptions& options, ComputeBackend& compute,
                               Communicator& comm);

// A stable id for every op a rank runs in one step: (index of the step in its
// class, index of the kernel in the step's program) flattened. Ops outside a
// program: the step's own op is kernel 0 (sync, send, receive, optimizer),
// the ZeRO-3 gather before a pass kPreGather, the reduce-scatter after it
// kPostScatter, ZeRO-1/2's parameter gather after the optimizer kPostGather.
int64_t planOpId(int step, int kernel);
inline constexpr int kPreGather = 99997;
inline constexpr int kPostScatter = 99998;
inline constexpr int kPostGather = 99999;

} // namespace partita
