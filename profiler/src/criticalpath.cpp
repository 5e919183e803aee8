#include "partita/profiler/criticalpath.h"

#include "pathgraph.h"
#include "pathwindows.h"

#include <algorithm>
#include <limits>

namespace partita {

using namespace detail;

std::string_view pathEdgeName(PathEdge e)
{
    switch (e) {
    case PathEdge::Operator:
        return "operator";
    case PathEdge::Device:
        return "device";
    case PathEdge::Launch:
        return "launch";
    case PathEdge::StreamGap:
        return "stream gap";
    case PathEdge::Dependency:
        return "dependency";
    case PathEdge::Sync:
        return "sync";
    case PathEdge::Collective:
        return "collective";
    case PathEdge::P2P:
        return "p2p";
    }
    return "?";
}

namespace {

// What a path edge's time is, for the sums by kind.
std::string kindKey(const GraphEdge& e, const GraphEvent* charged)
{
    switch (e.type) {
    case PathEdge::Launch:
        return "launch delay";
    case PathEdge::StreamGap:
        return "stream gap";
    case PathEdge::Dependency:
    case PathEdge::Sync:
        return "sync";
    default:
        return charged ? std::string(traceKindName(charged->ev.kind)) : std::string("other");
    }
}

Result<bool> summarize(const RunScan& scan, const PathGraph& g, const std::vector<int32_t>& path, NameCache& names, bool segments,
                       CriticalPath& out)
{
    for (const GraphEdge& e : g.edges())
        ++out.edge_counts[e.type];
    out.nodes = int64_t(2 * g.events().size());
    out.edges = int64_t(g.edges().size());
    for (int32_t id : path) {
        const GraphEdge& e = g.edges()[size_t(id)];
        const GraphEvent* charged = e.charged >= 0 ? &g.events()[size_t(e.charged)] : nullptr;
        const GraphEvent& to = g.events()[size_t(e.to / 2)];
        const int rank = charged ? charged->rank : to.rank;
        out.by_kind[kindKey(e, charged)] += e.weight;
        out.by_layer[charged ? charged->ev.layer : -1] += e.weight;
        out.by_rank[rank] += e.weight;
        if (!segments)
            continue;
        PathSegment s;
        s.rank = rank;
        s.edge = e.type;
        const int64_t offset = charged ? charged->offset : to.offset;
        s.from_ns = g.aligned(e.from) + offset;
        s.to_ns = g.aligned(e.to) + offset;
        s.weight_ns = e.weight;
        s.track_id = scan.tracks[size_t((charged ? *charged : to).ev.track)].id;
        if (charged) {
            auto n = names.get(charged->ev.name);
            if (!n)
                return n.error();
            s.name = **n;
            s.kind = charged->ev.kind;
            s.layer = charged->ev.layer;
            s.event_id = charged->ev.id;
        }
        out.segments.push_back(std::move(s));
    }
    return true;
}

// The windows to walk: per rank, one per step (or the one asked for).
struct Plan
{
    std::vector<int64_t> places; // the windows' places, in order
    std::map<int, std::vector<Window>> windows;
    bool whole = false;
};

// A run without steps is one window, or, when it is large, consecutive
// time slices of about kSliceEvents events each: a window's graph is held
// at once (about 200 bytes an event).
constexpr int64_t kSliceEvents = 1'000'000;

Plan sliced(const RunScan& scan, CriticalPathReport& rep)
{
    Plan p;
    int64_t events = 0, t0 = std::numeric_limits<int64_t>::max(), t1 = std::numeric_limits<int64_t>::min();
    for (const StoredTrack& t : scan.tracks)
        if (t.events > 0) {
            events += t.events;
            t0 = std::min(t0, t.start_ns);
            t1 = std::max(t1, t.end_ns);
        }
    const int64_t n = std::max<int64_t>(1, (events + kSliceEvents - 1) / kSliceEvents);
    if (n == 1 || t1 <= t0) {
        p.whole = true;
        p.places.push_back(-1);
        return p;
    }
    rep.notes.push_back("the run has no steps: its " + std::to_string(events) + " events are taken in " + std::to_string(n) +
                        " time slices of about " + std::to_string(kSliceEvents / 1'000'000) +
                        " M events each, a path each (dependencies across a slice's edge are cut); --annotation picks a window");
    const int64_t len = (t1 - t0 + n) / n;
    std::vector<Window> ws;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t a = t0 + i * len, b = i + 1 == n ? t1 + 1 : t0 + (i + 1) * len;
        ws.push_back({a, b, "slice " + std::to_string(i + 1) + " of " + std::to_string(n)});
        p.places.push_back(i);
    }
    for (const auto& [rank, positions] : scan.ranks)
        p.windows[rank] = ws;
    return p;
}

Result<Plan> planWindows(const TraceStore& store, const RunScan& scan, NameCache& names, const CriticalPathOptions& o,
                         CriticalPathReport& rep)
{
    Plan p;
    auto found = findWindows(store, scan, names, o.annotation);
    if (!found)
        return found.error();
    p.windows = std::move(*found);
    size_t fewest = std::numeric_limits<size_t>::max(), most = 0;
    for (const auto& [rank, ws] : p.windows) {
        fewest = std::min(fewest, ws.size());
        most = std::max(most, ws.size());
    }
    if (p.windows.empty())
        fewest = 0;
    if (most == 0 && o.annotation.empty()) {
        Plan whole = sliced(scan, rep);
        if (o.step) {
            const int64_t n = int64_t(whole.places.size());
            if (*o.step < 0 || *o.step >= n)
                return Error{{}, "--step", whole.whole ? std::string("the run has no steps and is one window: --step 0, or none")
                                                       : "the run has no steps; its time slices are 0 to " + std::to_string(n - 1)};
            whole.places = {whole.places[size_t(*o.step)]};
        }
        return whole;
    }
    const std::string what = o.annotation.empty() ? std::string("step") : "event named like '" + o.annotation + "'";
    if (!o.annotation.empty() || o.step) {
        const int64_t at = o.annotation.empty() ? *o.step : o.instance;
        if (at < 0 || size_t(at) >= most)
            return Error{{}, o.annotation.empty() ? "--step" : "--instance",
                         "no rank has " + what + " " + std::to_string(at) + " (counting from 0; the most any rank has is " +
                             std::to_string(most) + ")"};
        p.places.push_back(at);
        return p;
    }
    if (fewest < most)
        rep.notes.push_back("ranks have " + std::to_string(fewest) + " to " + std::to_string(most) + " steps: each rank's steps " +
                            "past " + std::to_string(fewest) + " are left out");
    for (size_t i = 0; i < fewest; ++i)
        p.places.push_back(int64_t(i));
    return p;
}

Result<CriticalPath> pathOf(const TraceStore& store, const RunScan& scan, const Plan& plan, int64_t place, WindowReader& reader,
                            NameCache& names, const CriticalPathOptions& o)
{
    CriticalPath cp;
    cp.step = place;
    std::vector<RankWindow> ranks;
    std::map<int, std::pair<int64_t, int64_t>> extent; // per rank: its window, or (whole run) its events' extent
    for (const auto& [rank, positions] : scan.ranks) {
        Window w{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), "whole run"};
        if (!plan.whole) {
            const auto& ws = plan.windows.at(rank);
            if (size_t(place) >= ws.size()) {
                cp.notes.push_back("rank " + std::to_string(rank) + " has no window " + std::to_string(place) + ": left out");
                continue;
            }
            w = ws[size_t(place)];
            extent[rank] = {w.start, w.end};
        }
        if (cp.window.empty())
            cp.window = w.label;
        auto rw = reader.read(rank, w);
        if (!rw)
            return rw.error();
        ranks.push_back(std::move(*rw));
    }
    PathGraph g;
    if (auto b = g.build(scan, ranks, names, cp); !b)
        return b.error();
    std::vector<RankWindow>().swap(ranks); // the graph holds its own copy
    auto path = g.longest(cp.length_ns);
    if (!path)
        return path.error();
    if (plan.whole)
        for (const GraphEvent& e : g.events()) {
            auto [it, added] = extent.try_emplace(e.rank, e.ev.start, e.ev.end);
            it->second.first = std::min(it->second.first, e.ev.start);
            it->second.second = std::max(it->second.second, e.ev.end);
        }
    // The span: from the first rank's start to the last rank's end, on the
    // aligned clocks (a pipeline's stages start one after another).
    std::map<int, int64_t> offset;
    for (const ClockCorrection& c : cp.clocks)
        offset[c.rank] = c.offset_ns;
    int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
    for (const auto& [rank, x] : extent) {
        first = std::min(first, x.first - offset[rank]);
        last = std::max(last, x.second - offset[rank]);
    }
    cp.span_ns = extent.empty() ? 0 : last - first;
    if (auto s = summarize(scan, g, *path, names, o.segments, cp); !s)
        return s.error();
    return cp;
}

} // namespace

Result<CriticalPathReport> findCriticalPath(const TraceStore& store, int64_t run, const CriticalPathOptions& options)
{
    if (auto r = store.run(run); !r)
        return r.error();
    TraceStore::ReadScope scope(store);
    auto scan = scanRun(store, run, false);
    if (!scan)
        return scan.error();
    CriticalPathReport rep;
    rep.ranks = int(scan->ranks.size());
    NameCache names(store);
    auto plan = planWindows(store, *scan, names, options, rep);
    if (!plan)
        return plan.error();
    WindowReader reader(store, *scan, run, names);
    for (int64_t place : plan->places) {
        auto cp = pathOf(store, *scan, *plan, place, reader, names, options);
        if (!cp)
            return cp.error();
        rep.paths.push_back(std::move(*cp));
    }
    return rep;
}

} // namespace partita
