// Quantity parser: any text gives a finite non-negative value or a reason.
#include "partita/core/units.h"

#include <cmath>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    for (auto kind : {partita::Quantity::Bandwidth, partita::Quantity::Bytes, partita::Quantity::Flops,
                      partita::Quantity::Seconds}) {
        std::string why;
        auto v = partita::parseQuantity(text, kind, &why);
        if (v ? !(std::isfinite(*v) && *v >= 0) : why.empty())
            __builtin_trap();
    }
    return 0;
}
