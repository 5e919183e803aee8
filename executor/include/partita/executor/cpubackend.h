#pragma once
// The CPU backend's compute half (OpenBLAS), in a library of its own
// (partita_cpu): only the processes that compute link OpenBLAS, whose
// threaded build starts its worker threads when it is loaded.

#include "partita/core/cluster.h"
#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/executor/backend.h"
#include "partita/executor/gpusweep.h"
#include "partita/executor/worker.h"

#include <memory>

namespace partita {

// OpenBLAS sgemm and memory passes in fp32 (every plan dtype is computed in
// fp32; the bytes moved are the plan's).
std::unique_ptr<ComputeBackend> makeCpuCompute();

// The CPU backend on one rank without MPI (plans of one device).
Result<WorkerResult> runCpuWorker(const Plan& plan, const WorkerOptions& options);

// This machine as a cluster of `ranks` CPU processes for the CPU backend:
// one node whose devices are the ranks. Each rank's peak is measured here
// (single-threaded OpenBLAS sgemm, a single-threaded memory copy) and, when
// there are more ranks than cores, shared: ranks x peak never exceeds cores x
// peak. Ranks exchange data through shared memory at the measured copy
// bandwidth. The CPU backend computes every dtype in fp32, so every dtype's
// peak is the sgemm figure. Takes about half a second. (`partita-worker
// --measure-cpu N` prints it, for processes that do not link OpenBLAS.)
Cluster localCpuCluster(int ranks);

// This CPU measured as the CPU backend runs a plan: single-threaded OpenBLAS
// sgemm, square 16-1024 and transformer-shaped for small models, and memcpy
// of 16 KiB-256 MiB, timed over back-to-back calls (`quick`: fewer sizes).
// In the GPU sweep's form (gpusweep.h): `gpu` is the CPU's model, `driver`
// OpenBLAS's build.
GpuSweep measureCpuSweep(bool quick = false);
// Its fit against one rank's device of localCpuCluster (a few seconds):
// `partita-worker --calibrate-cpu` prints it, `partita-cli calibrate --local`
// caches it and `partita-cli run --cluster local` uses it.
Result<Calibration> localCpuCalibration(bool quick = false);

} // namespace partita
