// `partita-cli trace events`: profiler/eventquery.h in text or JSON, the
// events behind a figure of `trace stats`, `trace diff` or `trace heatmap`.
#include "trace.h"

#include "common.h"

#include "partita/core/units.h"
#include "partita/profiler/eventquery.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace partita::cli {

using nlohmann::json;

namespace {

double sec(int64_t ns) { return double(ns) * 1e-9; }

std::optional<KernelClass> classNamed(const std::string& n)
{
    for (KernelClass c : {KernelClass::Computation, KernelClass::Communication, KernelClass::Memory, KernelClass::Other})
        if (kernelClassName(c) == n)
            return c;
    return std::nullopt;
}

std::string describe(const EventQuery& q)
{
    std::vector<std::string> parts;
    if (!q.name.empty())
        parts.push_back("named " + (q.name.size() > 60 ? q.name.substr(0, 57) + "..." : q.name));
    if (q.layer)
        parts.push_back("in layer " + std::to_string(*q.layer));
    if (q.cls)
        parts.push_back((q.other_classes ? "kernels other than " : "") + std::string(kernelClassName(*q.cls)) + (q.other_classes ? "" : " kernels"));
    else if (q.device_only)
        parts.push_back("on devices");
    if (q.rank)
        parts.push_back("on rank " + std::to_string(*q.rank));
    if (q.step)
        parts.push_back("in step " + std::to_string(*q.step));
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i)
        out += (i ? ", " : "") + parts[i];
    return out.empty() ? "every event" : out;
}

} // namespace

int runTraceEvents(const TraceCliOptions& o)
{
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "events needs exactly one --run"});
    EventQuery q;
    q.name = o.eventName;
    q.layer = o.layer;
    q.rank = o.rank;
    q.step = o.step;
    q.device_only = o.deviceOnly;
    q.limit = size_t(o.top);
    if (o.kernelClass == "non-compute") { // the stats' temporal breakdown: every kernel not computing
        q.cls = KernelClass::Computation;
        q.other_classes = true;
    } else if (!o.kernelClass.empty()) {
        q.cls = classNamed(o.kernelClass);
        if (!q.cls)
            return fail(Error{{}, "--class", "'" + o.kernelClass + "' is not one of computation, communication, memory, other, non-compute"});
    }
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    auto m = findEvents(**store, o.runs.front(), q);
    if (!m)
        return fail(m.error());
    if (o.json) {
        json events = json::array();
        for (const FoundEvent& e : m->events)
            events.push_back({{"rank", e.rank}, {"track_id", e.track_id}, {"track", e.track}, {"event_id", e.event_id},
                              {"start_s", sec(e.start_ns)}, {"end_s", sec(e.end_ns)}, {"s", sec(e.end_ns - e.start_ns)},
                              {"name", e.name}, {"kind", traceKindName(e.kind)}, {"layer", e.layer}});
        json windows = json::array();
        for (const auto& [rank, w] : m->step_windows)
            windows.push_back({{"rank", rank}, {"start_s", sec(w.first)}, {"end_s", sec(w.second)}});
        json out{{"run_id", o.runs.front()}, {"query", describe(q)}, {"total", m->total}, {"total_s", sec(m->total_ns)},
                 {"events", events}, {"notes", m->notes}};
        if (q.step)
            out["step_windows"] = windows;
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::cout << "Run " << o.runs.front() << ": " << m->total << (m->total == 1 ? " event (" : " events (") << describe(q) << "), "
              << formatSeconds(sec(m->total_ns)) << " in all\n";
    if (m->events.empty())
        return 0;
    std::cout << (m->events.size() < size_t(m->total) ? "The first " + std::to_string(m->events.size()) + " (--limit):\n"
                                                      : std::string("In order:\n"));
    std::printf("  %5s %-22s %16s %12s  %s\n", "rank", "track", "start (s)", "takes", "event");
    for (const FoundEvent& e : m->events) {
        std::string track = e.track.size() > 22 ? e.track.substr(0, 19) + "..." : e.track;
        std::string name = e.name.size() > 90 ? e.name.substr(0, 87) + "..." : e.name;
        std::printf("  %5d %-22s %16.6f %12s  %s\n", e.rank, track.c_str(), sec(e.start_ns), formatSeconds(sec(e.end_ns - e.start_ns)).c_str(),
                    name.c_str());
    }
    std::fflush(stdout);
    return 0;
}

} // namespace partita::cli
