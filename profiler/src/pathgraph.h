#pragma once
// The critical path's graph (criticalpath.h says what its nodes and edges
// are): built from each rank's window of events, then its longest path.

#include "partita/profiler/criticalpath.h"

#include "pathwindows.h"

#include <map>
#include <unordered_map>
#include <vector>

namespace partita::detail {

struct GraphEvent
{
    Ev ev;
    int rank = 0;
    int64_t offset = 0; // subtracted from the rank's times to align them
};

struct GraphEdge
{
    int32_t from = 0, to = 0; // nodes: an event's start is 2i, its end 2i + 1
    int64_t weight = 0;
    PathEdge type = PathEdge::Operator;
    int32_t charged = -1; // the event the edge's time is charged to
};

class PathGraph
{
public:
    // One rank's events in the graph, and what its links are found by.
    struct RankIndex
    {
        int rank = 0;
        int32_t host0 = 0, device0 = 0, end = 0;              // event index ranges
        std::unordered_map<int64_t, int32_t> runtimeByCorr;   // host runtime calls (nodes)
        std::unordered_map<int64_t, std::vector<int32_t>> deviceByCorr;
        std::map<int32_t, std::vector<int32_t>> streams;      // device track position -> its events by start
        std::map<int64_t, int32_t> trackOfStream;             // CUDA stream number -> device track position
        std::unordered_map<int32_t, int64_t> waitedUntil;     // device event -> latest end of a stream wait it follows
        std::vector<bool> released;                           // per device event: another stream's event released it (no launches)
        const RankWindow* window = nullptr;
    };


    // Fails only when a name cannot be read.
    Result<bool> build(const RunScan& scan, std::vector<RankWindow>& ranks, NameCache& names, CriticalPath& out);
    // The longest path's edges, from its start; fails on a cycle.
    Result<std::vector<int32_t>> longest(int64_t& length) const;

    const std::vector<GraphEvent>& events() const { return m_ev; }
    const std::vector<GraphEdge>& edges() const { return m_edges; }
    int64_t aligned(int32_t node) const;

private:
    void edge(int32_t from, int32_t to, int64_t weight, PathEdge type, int32_t charged);
    int64_t raw(int32_t node) const;
    Result<bool> hostStacks(RankIndex& ix, NameCache& names);
    void streams(RankIndex& ix);
    void crossStreams(RankIndex& ix);
    void syncs(RankIndex& ix);
    // Links across ranks and to a CPU backend's threads (pathlinks.cpp).
    using PerRank = std::vector<std::vector<int32_t>>; // events, per rank in ixs' order
    Result<bool> collectives(const std::vector<RankIndex>& ixs, NameCache& names, CriticalPath& out);
    Result<PerRank> hostCollectives(const std::vector<RankIndex>& ixs, NameCache& names);
    size_t matchCollectives(const PerRank& colls, const char* what, CriticalPath& out) const;
    void linkCollectives(const PerRank& colls, size_t matched);
    Result<bool> sendRecv(const std::vector<RankIndex>& ixs, NameCache& names, CriticalPath& out);

    std::vector<GraphEvent> m_ev;
    std::vector<GraphEdge> m_edges;
    std::vector<int32_t> m_ownEdge; // per event: its own start-to-end edge (device events, host leaves), -1
    std::vector<int32_t> m_hostIn;  // per event: the edge into its start along its thread (host events), -1
};

} // namespace partita::detail
