// Hugging Face config.json importer: any bytes give a model or an error.
#include "partita/core/modelio.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto m = partita::modelFromHfConfig(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    if (m && !partita::validateModel(*m).empty())
        __builtin_trap(); // an accepted model must be well-formed
    return 0;
}
