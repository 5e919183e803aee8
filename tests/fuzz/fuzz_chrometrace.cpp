// Chrome / Kineto trace importer: any bytes give a run or an error naming the
// file, and a failed import leaves no run behind.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::string path = "/tmp/partita-fuzz-chrometrace-" + std::to_string(getpid()) + ".json";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f)
        return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    auto store = partita::TraceStore::open(":memory:");
    if (!store)
        __builtin_trap();
    auto r = partita::importChromeTrace(**store, {path});
    auto runs = (*store)->runs();
    if (!runs)
        __builtin_trap();
    if (r) {
        if (runs->size() != 1 || runs->front().status != partita::RunStatus::Complete)
            __builtin_trap();
    } else if (!runs->empty() || r.error().file != path) {
        __builtin_trap();
    }
    return 0;
}
