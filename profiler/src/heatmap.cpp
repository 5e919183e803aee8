#include "partita/profiler/heatmap.h"

#include "partita/profiler/analysis.h"
#include "runstream.h"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

namespace partita {

using detail::Ev;
using detail::Sweep;

std::string_view heatMetricName(HeatMetric m)
{
    switch (m) {
    case HeatMetric::Step: return "step";
    case HeatMetric::Compute: return "compute";
    case HeatMetric::ExposedComm: return "exposed-comm";
    case HeatMetric::Idle: return "idle";
    }
    return "step";
}

int64_t heatValue(const HeatCell& c, HeatMetric m)
{
    switch (m) {
    case HeatMetric::Step: return c.step_ns();
    case HeatMetric::Compute: return c.compute_ns;
    case HeatMetric::ExposedComm: return c.exposed_comm_ns;
    case HeatMetric::Idle: return c.idle_ns;
    }
    return 0;
}

int64_t HeatMap::columnMedian(int64_t column, HeatMetric m) const
{
    std::vector<int64_t> v;
    for (const HeatRow& r : rows)
        if (column >= 0 && column < int64_t(r.cells.size()))
            v.push_back(heatValue(r.cells[size_t(column)], m));
    if (v.empty())
        return 0;
    auto mid = v.begin() + ptrdiff_t(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    if (v.size() % 2)
        return *mid;
    const int64_t hi = *mid;
    return (*std::max_element(v.begin(), mid) + hi) / 2;
}

std::vector<HeatOutlier> heatOutliers(const HeatMap& map, HeatMetric m, size_t count, double min_ratio)
{
    std::vector<int64_t> medians(size_t(map.columns));
    for (int64_t c = 0; c < map.columns; ++c)
        medians[size_t(c)] = map.columnMedian(c, m);
    std::vector<HeatOutlier> out;
    for (const HeatRow& r : map.rows)
        for (size_t c = 0; c < r.cells.size(); ++c)
            if (const int64_t v = heatValue(r.cells[c], m); double(v) > double(medians[c]) * (1 + min_ratio) && v > medians[c])
                out.push_back({r.rank, int64_t(c), v, medians[c]});
    auto excess = [](const HeatOutlier& o) { return o.value_ns - o.median_ns; };
    std::sort(out.begin(), out.end(), [&](const HeatOutlier& a, const HeatOutlier& b) {
        if (excess(a) != excess(b))
            return excess(a) > excess(b);
        return a.rank != b.rank ? a.rank < b.rank : a.column < b.column;
    });
    if (out.size() > count)
        out.resize(count);
    return out;
}

double busyShare(const HeatRow& row)
{
    int64_t step = 0, idle = 0;
    for (const HeatCell& c : row.cells) {
        step += c.step_ns();
        idle += c.idle_ns;
    }
    return step > 0 ? 1.0 - double(idle) / double(step) : 0.0;
}

std::vector<GroupBusy> groupBusy(const HeatMap& map, const MeshShape& mesh, MeshAxis axis)
{
    std::map<int, std::pair<GroupBusy, std::vector<double>>> groups;
    for (const HeatRow& r : map.rows) {
        if (r.cells.empty())
            continue;
        const int g = meshPlace(mesh, axis, r.rank).group;
        auto& [gb, shares] = groups[g];
        gb.group = g;
        gb.ranks.push_back(r.rank);
        shares.push_back(busyShare(r));
    }
    std::vector<GroupBusy> out;
    for (auto& [g, entry] : groups) {
        auto& [gb, shares] = entry;
        const auto [lo, hi] = std::minmax_element(shares.begin(), shares.end());
        gb.least = *lo;
        gb.most = *hi;
        gb.least_busy_rank = gb.ranks[size_t(lo - shares.begin())];
        std::vector<double> sorted = shares;
        std::sort(sorted.begin(), sorted.end());
        const size_t n = sorted.size();
        gb.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        out.push_back(std::move(gb));
    }
    return out;
}

namespace {

// One cell being filled: its window and the unions of its device events.
struct CellSweep
{
    int64_t start = 0, end = 0;
    Sweep all, compute, commOrCompute;
};

// A rank's device events, streamed by start, cut to its steps' windows.
class RankCells
{
public:
    explicit RankCells(const std::vector<Ev>& steps)
    {
        int64_t prevEnd = std::numeric_limits<int64_t>::min();
        for (const Ev& s : steps) { // overlapping annotations are cut where the previous one ended
            const int64_t start = std::max(s.start, prevEnd);
            if (s.end <= start)
                continue;
            m_cells.push_back({start, s.end, {}, {}, {}});
            prevEnd = s.end;
        }
    }

    void add(const Ev& e, KernelClass cls)
    {
        while (m_first < m_cells.size() && m_cells[m_first].end <= e.start)
            ++m_first; // windows end in order, and events come by start
        for (size_t i = m_first; i < m_cells.size() && m_cells[i].start < e.end; ++i) {
            CellSweep& c = m_cells[i];
            const int64_t s = std::max(e.start, c.start), t = std::min(e.end, c.end);
            if (t < s)
                continue;
            c.all.add(s, t);
            if (cls == KernelClass::Computation)
                c.compute.add(s, t);
            if (cls == KernelClass::Computation || cls == KernelClass::Communication)
                c.commOrCompute.add(s, t);
        }
    }

    std::vector<HeatCell> finish() const
    {
        std::vector<HeatCell> out;
        for (const CellSweep& c : m_cells) {
            HeatCell h;
            h.start_ns = c.start;
            h.end_ns = c.end;
            h.compute_ns = c.compute.length();
            h.exposed_comm_ns = c.commOrCompute.length() - h.compute_ns;
            h.idle_ns = std::max<int64_t>(0, h.step_ns() - c.all.length());
            out.push_back(h);
        }
        return out;
    }

private:
    std::vector<CellSweep> m_cells;
    size_t m_first = 0;
};

// The whole span of a rank without steps: one cell, its window found as the events come.
struct SpanCell
{
    int64_t first = 0, last = 0;
    bool any = false;
    Sweep all, compute, commOrCompute;

    void add(const Ev& e, KernelClass cls)
    {
        if (!any)
            first = e.start;
        any = true;
        last = std::max(last, e.end);
        all.add(e.start, e.end);
        if (cls == KernelClass::Computation)
            compute.add(e.start, e.end);
        if (cls == KernelClass::Computation || cls == KernelClass::Communication)
            commOrCompute.add(e.start, e.end);
    }
    std::vector<HeatCell> finish() const
    {
        if (!any)
            return {};
        HeatCell h{first, last, compute.length(), commOrCompute.length() - compute.length(), 0};
        h.idle_ns = std::max<int64_t>(0, h.step_ns() - all.length());
        return {h};
    }
};

Result<HeatRow> rankRow(const TraceStore& store, const detail::RunScan& scan, int rank, bool byStep,
                        std::unordered_map<int64_t, KernelClass>& classes)
{
    auto host = detail::readHost(store, scan, rank);
    if (!host)
        return host.error();
    RankCells cells(host->steps);
    SpanCell span;
    auto merge = detail::DeviceMerge::open(store, scan, rank);
    if (!merge)
        return merge.error();
    Ev e;
    bool any = false;
    while ((*merge)->next(e)) {
        any = true;
        const int64_t key = e.name * 16 + int64_t(e.kind);
        auto [it, added] = classes.try_emplace(key, KernelClass::Other);
        if (added) {
            auto n = store.name(e.name);
            if (!n)
                return n.error();
            it->second = classifyKernel(*n, e.kind);
        }
        if (byStep)
            cells.add(e, it->second);
        else
            span.add(e, it->second);
    }
    if ((*merge)->error())
        return *(*merge)->error();
    return HeatRow{rank, byStep ? cells.finish() : span.finish(), any};
}

} // namespace

Result<HeatMap> rankHeatMap(const TraceStore& store, int64_t run)
{
    if (auto info = store.run(run); !info)
        return info.error();
    auto scan = detail::scanRun(store, run, false);
    if (!scan)
        return scan.error();
    HeatMap map;
    map.by_step = scan->distinct_step_names > 0;
    if (!map.by_step)
        map.notes.push_back("the run has no steps: one column, each rank's span from its first device event to its last");
    std::unordered_map<int64_t, KernelClass> classes; // name id x 16 + kind
    for (const auto& [rank, tracks] : scan->ranks) {
        auto row = rankRow(store, *scan, rank, map.by_step, classes);
        if (!row)
            return row.error();
        if (map.by_step && row->cells.empty())
            map.notes.push_back("rank " + std::to_string(rank) + " has no steps");
        map.columns = std::max(map.columns, int64_t(row->cells.size()));
        map.rows.push_back(std::move(*row));
    }
    if (map.rows.empty())
        map.notes.push_back("the run has no events");
    std::string hostOnly;
    int count = 0;
    for (const HeatRow& r : map.rows)
        if (!r.device && ++count <= 16)
            hostOnly += (hostOnly.empty() ? "" : ", ") + std::to_string(r.rank);
    if (count > 0)
        map.notes.push_back((count == 1 ? "rank " : "ranks ") + hostOnly + (count > 16 ? " and " + std::to_string(count - 16) + " more" : "") +
                            (count == 1 ? " has" : " have") +
                            " no device events (a CPU trace): compute and communication are read from device kernels, so "
                            "their steps read as idle; trace stragglers and trace critical-path read their operators");
    return map;
}

} // namespace partita
