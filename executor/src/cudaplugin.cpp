// libpartita_cuda.so's entry point: the CUDA backend and GPU detection,
// handed to the programs that load it (cudaloader.cpp).
#include "cudainternal.h"

#include "partita/executor/cudaplugin.h"

extern "C" __attribute__((visibility("default"))) const partita::CudaPluginApi* partita_cuda_plugin()
{
    static const partita::CudaPluginApi api{partita::CudaPluginApi::kAbi, &partita::createCudaBackend,
                                            &partita::detectCudaGpus, &partita::measureGpuSweep};
    return &api;
}
