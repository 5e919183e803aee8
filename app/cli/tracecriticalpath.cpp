// `partita-cli trace critical-path`: profiler/criticalpath.h in text or JSON.
#include "trace.h"

#include "common.h"

#include "partita/core/units.h"
#include "partita/profiler/criticalpath.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace partita::cli {

using nlohmann::json;

namespace {

double sec(int64_t ns) { return double(ns) * 1e-9; }

json shares(const std::map<std::string, int64_t>& m, int64_t total)
{
    json out = json::array();
    for (const auto& [k, v] : m)
        out.push_back({{"kind", k}, {"s", sec(v)}, {"share", total > 0 ? double(v) / double(total) : 0.0}});
    return out;
}

json pathJson(const CriticalPath& p)
{
    json byLayer = json::array(), byRank = json::array(), edges = json::object(), segs = json::array(), clocks = json::array();
    for (const auto& [layer, ns] : p.by_layer)
        byLayer.push_back({{"layer", layer}, {"s", sec(ns)}, {"share", p.length_ns > 0 ? double(ns) / double(p.length_ns) : 0.0}});
    for (const auto& [rank, ns] : p.by_rank)
        byRank.push_back({{"rank", rank}, {"s", sec(ns)}, {"share", p.length_ns > 0 ? double(ns) / double(p.length_ns) : 0.0}});
    for (const auto& [type, n] : p.edge_counts)
        edges[std::string(pathEdgeName(type))] = n;
    for (const ClockCorrection& c : p.clocks)
        clocks.push_back({{"rank", c.rank}, {"offset_s", sec(c.offset_ns)}, {"spread_s", sec(c.spread_ns)}});
    for (const PathSegment& s : p.segments) {
        json j{{"rank", s.rank}, {"track_id", s.track_id}, {"edge", pathEdgeName(s.edge)}, {"from_s", sec(s.from_ns)}, {"to_s", sec(s.to_ns)},
               {"s", sec(s.weight_ns)}};
        if (!s.name.empty()) {
            j["event"] = s.name;
            j["event_id"] = s.event_id;
            j["kind"] = traceKindName(s.kind);
            j["layer"] = s.layer;
        }
        segs.push_back(std::move(j));
    }
    return json{{"step", p.step},          {"window", p.window},
                {"length_s", sec(p.length_ns)}, {"span_s", sec(p.span_ns)},
                {"share_of_span", p.span_ns > 0 ? double(p.length_ns) / double(p.span_ns) : 0.0},
                {"graph", {{"nodes", p.nodes}, {"edges", p.edges}, {"by_type", edges}}},
                {"by_kind", shares(p.by_kind, p.length_ns)}, {"by_layer", byLayer}, {"by_rank", byRank},
                {"clocks", clocks}, {"notes", p.notes}, {"segments", segs}};
}

void printPath(const CriticalPath& p)
{
    std::cout << "\n" << p.window << (p.step >= 0 ? " (#" + std::to_string(p.step) + ")" : std::string()) << ": critical path "
              << formatSeconds(sec(p.length_ns)) << " of " << formatSeconds(sec(p.span_ns))
              << (p.segments.empty() ? std::string() : ", " + std::to_string(p.segments.size()) + " edges on it") << " (graph: " << p.nodes
              << " nodes, " << p.edges << " edges)\n";
    for (const std::string& n : p.notes)
        std::cout << "  note: " << n << "\n";
    std::vector<std::pair<int64_t, std::string>> kinds;
    for (const auto& [k, v] : p.by_kind)
        kinds.push_back({v, k});
    std::sort(kinds.rbegin(), kinds.rend());
    for (const auto& [v, k] : kinds)
        if (v > 0)
            std::printf("  %-16s %12s %6.1f %%\n", k.c_str(), formatSeconds(sec(v)).c_str(), 100.0 * double(v) / double(p.length_ns));
    if (p.by_rank.size() > 1)
        for (const auto& [rank, v] : p.by_rank)
            std::printf("  rank %-11d %12s %6.1f %%\n", rank, formatSeconds(sec(v)).c_str(), 100.0 * double(v) / double(p.length_ns));
    // The heaviest events on the path.
    std::map<std::pair<int, std::string>, int64_t> heavy;
    for (const PathSegment& s : p.segments)
        if (!s.name.empty())
            heavy[{s.rank, s.name}] += s.weight_ns;
    std::vector<std::pair<int64_t, std::pair<int, std::string>>> top;
    for (const auto& [k, v] : heavy)
        top.push_back({v, k});
    std::sort(top.rbegin(), top.rend());
    if (!top.empty())
        std::cout << "  heaviest on the path:\n";
    for (size_t i = 0; i < top.size() && i < 8; ++i) {
        std::string name = top[i].second.second; // C++ kernel names run to hundreds of characters: the JSON has them whole
        if (name.size() > 110)
            name = name.substr(0, 107) + "...";
        std::printf("    rank %-3d %12s  %s\n", top[i].second.first, formatSeconds(sec(top[i].first)).c_str(), name.c_str());
    }
}

} // namespace

int runTraceCriticalPath(const TraceCliOptions& o)
{
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "critical-path needs exactly one --run"});
    if (o.instance != 0 && o.annotation.empty())
        return fail(Error{{}, "--instance", "--instance picks among the --annotation's events: give --annotation"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    CriticalPathOptions opts;
    opts.step = o.step;
    opts.annotation = o.annotation;
    opts.instance = o.instance;
    opts.segments = !o.noSegments;
    auto r = findCriticalPath(**store, o.runs.front(), opts);
    if (!r)
        return fail(r.error());
    if (o.json) {
        json paths = json::array();
        for (const CriticalPath& p : r->paths)
            paths.push_back(pathJson(p));
        std::cout << json{{"run_id", o.runs.front()}, {"ranks", r->ranks}, {"notes", r->notes}, {"paths", paths}}.dump(2) << "\n";
        return 0;
    }
    std::cout << "Run " << o.runs.front() << ": " << r->ranks << (r->ranks == 1 ? " rank" : " ranks") << "\n";
    for (const std::string& n : r->notes)
        std::cout << "note: " << n << "\n";
    for (const CriticalPath& p : r->paths)
        printPath(p);
    std::fflush(stdout);
    return 0;
}

} // namespace partita::cli
