#pragma once
// Inside the CUDA plugin (libpartita_cuda.so): what cudaplugin.cpp hands out.
#include "partita/executor/cudabackend.h"

#include "partita/core/cluster.h"
#include "partita/executor/gpusweep.h"

#include <string>
#include <vector>

namespace partita {

Result<std::unique_ptr<CudaBackend>> createCudaBackend(const Plan& plan, Communicator& bootstrap,
                                                       const CudaBackendOptions& options);

// This machine's GPUs through the CUDA runtime, figures from the matching
// datasheet preset where there is one.
void detectCudaGpus(Node& node, std::vector<std::string>& notes);

// `bytes` of device memory filled with values of magnitude [1, 2) and random
// signs, 16-bit (bf16; read as fp16 they are [1.5, 2)) or 8-bit (e4m3)
// elements: GEMMs on zeros draw less power and run faster than on data.
Result<bool> fillRandom(void* dev, size_t bytes, int elementBits);

// The GPU sweep of gpusweep.h on this machine's GPU `options.device`.
Result<GpuSweep> measureGpuSweep(const GpuSweepOptions& options);

} // namespace partita
