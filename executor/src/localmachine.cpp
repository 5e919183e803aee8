#include "partita/executor/localmachine.h"

#include "partita/core/clusterio.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <unistd.h>
#include <vector>

#ifdef PARTITA_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace partita {

namespace {

std::string cpuModelName()
{
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) {
                std::string name = line.substr(colon + 1);
                name.erase(0, name.find_first_not_of(" \t"));
                return name;
            }
        }
    }
    return "cpu";
}

#ifdef PARTITA_HAVE_CUDA
// The preset whose datasheet figures describe a GPU the runtime names.
std::string presetForGpuName(const std::string& name)
{
    struct Match
    {
        const char* needle;
        const char* preset;
    };
    static const Match kMatches[] = {
        {"A100-SXM4-80GB", "a100-sxm4-80gb"}, {"A100-SXM4-40GB", "a100-sxm4-40gb"},
        {"H100 80GB HBM3", "h100-sxm5"},      {"H100-SXM", "h100-sxm5"},
        {"H200", "h200-sxm"},                 {"V100-SXM2-16GB", "v100-sxm2-16gb"},
        {"V100-SXM2-32GB", "v100-sxm2-32gb"}, {"Tesla T4", "t4"},
    };
    for (const auto& m : kMatches)
        if (name.find(m.needle) != std::string::npos)
            return m.preset;
    return {};
}
#endif

} // namespace

bool builtWithCuda()
{
#ifdef PARTITA_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

LocalMachine detectLocalMachine()
{
    LocalMachine lm;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0)
        std::snprintf(host, sizeof host, "localhost");

    DeviceSpec& cpu = lm.cpu;
    cpu.name = cpuModelName();
    cpu.kind = "cpu";
    cpu.cores = int(::sysconf(_SC_NPROCESSORS_ONLN));
    cpu.memory_bytes = int64_t(::sysconf(_SC_PHYS_PAGES)) * int64_t(::sysconf(_SC_PAGESIZE));
    cpu.source = "detected: /proc/cpuinfo, sysconf";
    lm.notes.push_back("CPU peak FLOP/s and memory bandwidth are not detected (run a benchmark to measure them)");

    Node node;
    node.name = host;
#ifdef PARTITA_HAVE_CUDA
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        lm.notes.push_back(std::string("no GPU: the CUDA runtime says ") + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
        count = 0;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess)
            continue;
        DeviceSpec dev;
        const std::string preset = presetForGpuName(prop.name);
        if (!preset.empty()) {
            dev = devicePreset(preset).value();
            dev.source = "detected " + std::string(prop.name) + "; figures from " + dev.source;
        } else {
            dev.source = "detected through the CUDA runtime; peak FLOP/s unknown for this model";
            lm.notes.push_back(std::string("GPU ") + std::to_string(i) + " '" + prop.name +
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
        lm.notes.push_back("links between GPUs are not detected: import `nvidia-smi topo -m` output for them");
    }
#else
    lm.notes.push_back("built without the CUDA runtime: GPUs are not detected");
#endif
    if (node.devices.empty())
        node.devices.push_back(cpu);
    lm.cluster.name = std::string("local (") + host + ")";
    lm.cluster.source = "detected on this machine";
    lm.cluster.nodes.push_back(std::move(node));
    return lm;
}

std::string localCpuClusterName(int ranks)
{
    return "local CPU (" + std::to_string(ranks) + (ranks == 1 ? " rank)" : " ranks)");
}

} // namespace partita
