// Native model JSON: any bytes give a model or an error; accepted models round-trip.
#include "partita/core/modelio.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto m = partita::modelFromJson(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (m) {
        const std::string once = partita::modelToJson(*m);
        auto back = partita::modelFromJson(once, "again.json");
        if (!back || !(*back == *m) || partita::modelToJson(*back) != once)
            __builtin_trap();
    }
    return 0;
}
