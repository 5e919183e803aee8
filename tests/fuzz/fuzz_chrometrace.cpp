// Chrome / Kineto trace importer: any bytes give a run or an error naming the
// file, and a failed import leaves no run behind. The same bytes cut in two
// make a folder of two rank files: read at once, a bad one left out (its
// events taken out again), the run holding exactly what the kept files gave.
// An imported run's critical path is a path: its edges add up to its length;
// its memory series are read without failing, their peaks above their ends.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/criticalpath.h"
#include "partita/profiler/memory.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <filesystem>
#include <cstdio>
#include <string>
#include <tuple>
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
        if (auto cp = partita::findCriticalPath(**store, r->run_id, {}))
            for (const auto& p : cp->paths) {
                int64_t sum = 0;
                for (const auto& s : p.segments)
                    sum += s.weight_ns;
                if (sum != p.length_ns || p.length_ns < 0)
                    __builtin_trap();
            }
        auto mem = partita::readMemory(**store, r->run_id, 16);
        if (!mem)
            __builtin_trap();
        for (const auto& s : mem->series)
            if (s.peak_allocated < s.first_allocated || s.peak_allocated < s.last_allocated || s.points.size() > 16 || s.samples <= 0)
                __builtin_trap();
    } else if (!runs->empty() || r.error().file != path) {
        __builtin_trap();
    }
    // Two rank files, cut where the first byte says.
    static const std::string dir = "/tmp/partita-fuzz-chromefolder-" + std::to_string(getpid());
    std::filesystem::create_directories(dir);
    const size_t cut = size ? size_t(data[0]) * size / 256 : 0;
    for (auto [name, from, to] : {std::tuple{"/a.json", size_t(0), cut}, std::tuple{"/b.json", cut, size}}) {
        std::FILE* g = std::fopen((dir + name).c_str(), "wb");
        if (!g)
            return 0;
        std::fwrite(data + from, 1, to - from, g);
        std::fclose(g);
    }
    auto folder = partita::TraceStore::open(":memory:");
    if (!folder)
        __builtin_trap();
    auto fr = partita::importChromeTrace(**folder, {dir});
    auto fruns = (*folder)->runs();
    if (!fruns)
        __builtin_trap();
    if (!fr) {
        if (!fruns->empty())
            __builtin_trap();
        return 0;
    }
    int64_t stored = 0;
    for (const auto& [kind, n] : fr->counts)
        stored += n;
    if (fruns->size() != 1 || fruns->front().status != partita::RunStatus::Complete || fruns->front().events != stored ||
        fr->ranks.empty() || fr->ranks.size() > 2)
        __builtin_trap();
    return 0;
}
