// Hostfile parser: any text gives hosts or an error.
#include "partita/core/clusterio.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto h = partita::parseHostfile(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (h)
        for (const auto& e : *h)
            if (e.host.empty() || e.slot_count < 1)
                __builtin_trap();
    return 0;
}
