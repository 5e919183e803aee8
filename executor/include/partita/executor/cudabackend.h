#pragma once
// The CUDA backend (built when the CUDA toolkit with cuBLAS, NCCL and CUPTI
// is found): one GPU per rank (the rank's index on its host); GEMMs through
// cuBLAS in the plan's dtype (fp32 accumulation); memory-bound ops as
// device-to-device copies of the plan's bytes; NCCL communicators bootstrapped
// through the MPI job (rank 0's unique id broadcast) and split per group with
// ncclCommSplit; three streams: compute (kernels, tensor-parallel
// collectives, receives), data-parallel (gradient buckets, ZeRO gathers) and
// send (pipeline sends, so two stages sending to each other never deadlock),
// ordered by events as the plan's dependencies say; tracing with the CUPTI
// Activity API (concurrent kernels, memcpy, memset, overhead, external
// correlation: every launch carries its plan op id) into pre-allocated
// buffers, flushed (forced) after each step, dropped records checked, GPU
// timestamps mapped to the host's steady clock.

#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/executor/backend.h"

#include <memory>

namespace partita {

struct CudaBackendOptions
{
    bool trace = true;                  // CUPTI on (off: step times only, to measure tracing's overhead)
    size_t trace_buffer_bytes = 8 << 20; // each CUPTI buffer
    int trace_buffers = 16;             // allocated up front
};

// Both halves share the backend's streams: the same object is the worker's
// ComputeBackend and its Communicator.
class CudaBackend : public ComputeBackend, public Communicator
{
public:
    ~CudaBackend() override = default;
    // CUPTI's own overhead records so far, in ns.
    virtual int64_t cuptiOverheadNs() const = 0;
};

// `bootstrap` (the MPI communicator, or the lone one) must outlive the backend.
Result<std::unique_ptr<CudaBackend>> makeCudaBackend(const Plan& plan, Communicator& bootstrap,
                                                     const CudaBackendOptions& options = {});

} // namespace partita
