// Calibration JSON (partita-cli calibrate writes it, simulate/search/run read
// it): any bytes give a calibration or an error; accepted ones round-trip.
#include "partita/core/costmodel.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto c = partita::calibrationFromJson(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (c) {
        auto back = partita::calibrationFromJson(partita::calibrationToJson(*c), "fuzz.json");
        if (!back || !(back->matmul == c->matmul) || !(back->memory == c->memory) ||
            back->intra_link_efficiency != c->intra_link_efficiency)
            __builtin_trap();
    }
    return 0;
}
