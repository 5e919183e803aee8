// nvidia-smi topo -m parser: any text gives a node or an error.
#include "partita/core/clusterio.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const partita::DeviceSpec device = partita::devicePreset("a100-sxm4-80gb").value();
    auto n = partita::nodeFromNvidiaSmiTopo(std::string(reinterpret_cast<const char*>(data), size), device, "fuzz");
    if (n) {
        partita::Cluster c;
        c.nodes.push_back(*n);
        if (!partita::validateCluster(c).empty())
            __builtin_trap();
    }
    return 0;
}
