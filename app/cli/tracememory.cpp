// `partita-cli trace memory`: profiler/memory.h in text or JSON.
#include "trace.h"

#include "common.h"

#include "partita/core/units.h"
#include "partita/profiler/memory.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace partita::cli {

using nlohmann::json;

namespace {

std::string gib(double bytes) { return formatBytes(bytes); }

json reportJson(int64_t run, const MemoryReport& r)
{
    json series = json::array();
    for (const MemorySeries& s : r.series) {
        json points = json::array();
        for (const MemorySample& p : s.points)
            points.push_back({double(p.t_ns) * 1e-9, p.allocated, p.reserved});
        json j{{"rank", s.rank},
               {"device", s.device},
               {"device_type", s.device_type},
               {"device_id", s.device_id},
               {"track_id", s.track_id},
               {"samples", s.samples},
               {"peak_allocated_bytes", s.peak_allocated},
               {"peak_allocated_at_s", double(s.peak_allocated_at_ns) * 1e-9},
               {"peak_reserved_bytes", s.peak_reserved},
               {"peak_reserved_at_s", double(s.peak_reserved_at_ns) * 1e-9},
               {"first_allocated_bytes", s.first_allocated},
               {"last_allocated_bytes", s.last_allocated}};
        if (!s.points.empty())
            j["points"] = points; // [t_s, allocated, reserved]
        series.push_back(std::move(j));
    }
    json out{{"run_id", run}, {"series", series}, {"notes", r.notes}};
    if (r.predicted_peak_bytes) {
        out["predicted_peak_bytes"] = *r.predicted_peak_bytes;
        out["predicted_run_id"] = r.predicted_run;
    }
    return out;
}

void printReport(int64_t run, const MemoryReport& r)
{
    std::cout << "Run " << run << ": memory from the profiler's [memory] records\n";
    for (const std::string& n : r.notes)
        std::cout << "note: " << n << "\n";
    if (!r.series.empty())
        std::printf("  %5s %-10s %9s %14s %14s %14s\n", "rank", "device", "records", "peak allocated", "peak reserved",
                    r.predicted_peak_bytes ? "vs predicted" : "");
    for (const MemorySeries& s : r.series) {
        std::string vs;
        if (r.predicted_peak_bytes && s.device_type != 0) // the prediction is of the accelerators
            vs = std::to_string(int(std::lround(100.0 * double(s.peak_allocated) / *r.predicted_peak_bytes))) + " %";
        std::printf("  %5d %-10s %9lld %14s %14s %14s\n", s.rank, s.device.c_str(), (long long)s.samples, gib(double(s.peak_allocated)).c_str(),
                    gib(double(s.peak_reserved)).c_str(), vs.c_str());
    }
    if (r.predicted_peak_bytes)
        std::cout << "Predicted peak per device (run " << r.predicted_run << "): " << gib(*r.predicted_peak_bytes) << "\n";
    std::fflush(stdout);
}

} // namespace

int runTraceMemory(const TraceCliOptions& o)
{
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "memory needs exactly one --run"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    auto r = readMemory(**store, o.runs.front(), o.points);
    if (!r)
        return fail(r.error());
    if (o.json)
        std::cout << reportJson(o.runs.front(), *r).dump(2) << "\n";
    else
        printReport(o.runs.front(), *r);
    return 0;
}

} // namespace partita::cli
