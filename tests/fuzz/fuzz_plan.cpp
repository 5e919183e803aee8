// Execution plan JSON (what partita-worker reads): any bytes give a plan or an
// error; accepted plans round-trip, and the worker's own check of a plan
// (classes, programs, peers) never crashes on one.
#include "partita/core/plan.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto p = partita::planFromJson(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (p) {
        auto back = partita::planFromJson(partita::planToJson(*p), "fuzz.json");
        if (!back || !(*back == *p))
            __builtin_trap();
    }
    return 0;
}
