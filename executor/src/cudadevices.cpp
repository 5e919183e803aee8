#include "cudainternal.h"

#include "partita/core/clusterio.h"

#include <cuda_runtime_api.h>

namespace partita {
void detectCudaGpus(Node& node, std::vector<std::string>& notes)
{
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        notes.push_back(std::string("no GPU: the CUDA runtime says ") + cudaGetErrorName(err) + " (" +
                        cudaGetErrorString(err) + ")");
        count = 0;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess)
            continue;
        DeviceSpec dev;
        const std::string preset = devicePresetForGpuName(prop.name);
        if (!preset.empty()) {
            dev = devicePreset(preset).value();
            dev.source = "detected " + std::string(prop.name) + "; figures from " + dev.source;
        } else {
            dev.source = "detected through the CUDA runtime; peak FLOP/s unknown for this model";
            notes.push_back(std::string("GPU ") + std::to_string(i) + " '" + prop.name +
                            "' has no datasheet preset: its peak FLOP/s are unknown");
        }
        dev.name = prop.name;
        dev.kind = "gpu";
        dev.cores = prop.multiProcessorCount;
        dev.memory_bytes = int64_t(prop.totalGlobalMem);
        int clockKHz = 0, busBits = 0;
        if (cudaDeviceGetAttribute(&clockKHz, cudaDevAttrMemoryClockRate, i) == cudaSuccess &&
            cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, i) == cudaSuccess && clockKHz > 0 &&
            busBits > 0 && dev.memory_bandwidth == 0)
            dev.memory_bandwidth = 2.0 * clockKHz * 1e3 * busBits / 8.0; // double data rate
        node.devices.push_back(std::move(dev));
    }
    if (node.devices.size() > 1) {
        const DeviceSpec& d = node.devices.front();
        node.intra = LinkSpec{LinkKind::PCIe, d.pcie_bandwidth > 0 ? d.pcie_bandwidth : 15.75e9, 1.0e-6, 0,
                              "assumed PCIe: links between GPUs are not detected; import `nvidia-smi topo -m`"};
        notes.push_back("links between GPUs are not detected: import `nvidia-smi topo -m` output for them");
    }
}

} // namespace partita
