// Native cluster JSON: any bytes give a cluster or an error; accepted clusters round-trip.
#include "partita/core/clusterio.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto c = partita::clusterFromJson(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (c) {
        auto back = partita::clusterFromJson(partita::clusterToJson(*c), "fuzz.json");
        if (!back || !(back->nodes == c->nodes))
            __builtin_trap();
    }
    return 0;
}
