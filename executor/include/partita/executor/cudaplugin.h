#pragma once
// The CUDA backend and GPU detection live in a plugin, libpartita_cuda.so
// (built when the CUDA toolkit with cuBLAS, NCCL and CUPTI is found), loaded
// the first time they are needed. The programs themselves never link CUDA:
// they start, and run on CPUs, on machines without it, and the package lists
// CUDA's libraries as recommended, not required.
//
// Where it is looked for: $PARTITA_CUDA_PLUGIN; beside the program (a build
// tree); PREFIX/<libdir>/partita/ (an installation).

#include "partita/core/cluster.h"
#include "partita/core/plan.h"
#include "partita/core/result.h"

#include <memory>
#include <string>
#include <vector>

namespace partita {

class CudaBackend;
class Communicator;
struct CudaBackendOptions;
struct GpuSweep;
struct GpuSweepOptions;

// What the plugin offers: C++ entry points, the plugin and the programs
// being built by the same toolchain from the same headers (kAbi checks it).
struct CudaPluginApi
{
    static constexpr int kAbi = 2;
    int abi = kAbi;
    Result<std::unique_ptr<CudaBackend>> (*make_backend)(const Plan&, Communicator&, const CudaBackendOptions&) = nullptr;
    // This machine's GPUs into `node`; what could not be detected into `notes`.
    void (*detect_gpus)(Node& node, std::vector<std::string>& notes) = nullptr;
    // GEMM, memory and NCCL tables of one GPU, timed with CUDA events (gpusweep.h).
    Result<GpuSweep> (*measure_gpu)(const GpuSweepOptions&) = nullptr;
};

// The loaded plugin (loaded once), or why it cannot be: not built, not
// installed, or a CUDA library it needs is missing.
Result<const CudaPluginApi*> cudaPlugin();

} // namespace partita

// The one symbol the plugin exports.
extern "C" const partita::CudaPluginApi* partita_cuda_plugin();
