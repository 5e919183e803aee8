#pragma once
// Inside the CUDA plugin (libpartita_cuda.so): what cudaplugin.cpp hands out.
#include "partita/executor/cudabackend.h"

#include "partita/core/cluster.h"

#include <string>
#include <vector>

namespace partita {

Result<std::unique_ptr<CudaBackend>> createCudaBackend(const Plan& plan, Communicator& bootstrap,
                                                       const CudaBackendOptions& options);

// This machine's GPUs through the CUDA runtime, figures from the matching
// datasheet preset where there is one.
void detectCudaGpus(Node& node, std::vector<std::string>& notes);

} // namespace partita
