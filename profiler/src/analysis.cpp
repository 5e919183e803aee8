#include "partita/profiler/analysis.h"

#include "runstream.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <functional>
#include <optional>
#include <unordered_map>

namespace partita {

std::string_view kernelClassName(KernelClass c)
{
    switch (c) {
    case KernelClass::Computation: return "computation";
    case KernelClass::Communication: return "communication";
    case KernelClass::Memory: return "memory";
    case KernelClass::Other: return "other";
    }
    return "other";
}

KernelClass classifyKernel(std::string_view n, TraceKind kind)
{
    switch (kind) {
    case TraceKind::Collective:
    case TraceKind::P2P: return KernelClass::Communication;
    case TraceKind::Memcpy:
    case TraceKind::Memset: return KernelClass::Memory;
    case TraceKind::Compute: return KernelClass::Computation;
    default: break;
    }
    auto starts = [&](std::string_view p) { return n.substr(0, p.size()) == p; };
    auto has = [&](std::string_view p) { return n.find(p) != std::string_view::npos; };
    // HTA's patterns, in HTA's order (common/types.py): communication, memory, computation.
    if (starts("nccl") || starts("hip") || starts("hccl") || has("ncclKernel"))
        return KernelClass::Communication;
    if (starts("Memcpy") || starts("Memset") || starts("dma"))
        return KernelClass::Memory;
    const bool launch = starts("cuda") && n.find("LaunchKernel") != std::string_view::npos;
    if (!(has("Memcpy") || has("Memset") || has("dma") || has("Sync") || starts("Stream Wait Event") || launch ||
          starts("runFunction") || starts("job_exe") || starts("packet") || starts("pe_exe") ||
          starts("cpum_exe_subgraph") || starts("collective_subgraph_execution")))
        return KernelClass::Computation;
    return KernelClass::Other;
}

namespace {

using detail::Ev;
using detail::Sweep;

using Interval = std::pair<int64_t, int64_t>;

double roundedPct(int64_t x, int64_t of) { return std::round(10000.0 * double(x) / double(of)) / 100.0; }

// What a run's analysis gathers across its ranks.
struct RunTotals
{
    std::unordered_map<int64_t, KernelRow> kernels; // by name id x 4 + class
    std::map<KernelClass, int64_t> classNs;
    std::unordered_map<int32_t, LayerRow> layers;
    bool allLayers = false;                      // keep every device event's time per layer, none left out
    std::unordered_map<int32_t, int64_t> allLayerNs;
};

// One rank's device events, streamed: the temporal, overlap, kernel, layer
// and idle-time breakdowns. `host`: its steps and launches; `lastStart`:
// HTA's filter (device events launched from the last step on are left
// out), none when INT64_MAX.
struct RankSweep
{
    explicit RankSweep(const detail::RankHost& h) : host(h) {}
    const detail::RankHost& host;
    int64_t lastStart = INT64_MAX;
    int64_t kernelWaitNs = 0;
    Sweep all, comp, comm, commOrComp;
    std::array<Sweep, 4> perClass; // by KernelClass
    std::vector<std::optional<int64_t>> prevEnd; // per track position: the last kept event's end
    int64_t first = 0, last = 0, events = 0;
    IdleBreakdown idle;
    std::unordered_map<int64_t, KernelClass> classes; // name id x 16 + kind -> class
    int64_t lastKey = -1;                             // the last looked up, and its class
    KernelClass lastClass = KernelClass::Other;
    std::function<Result<std::string>(int64_t)> nameOf;

    bool kept(const Ev& e) const
    {
        if (lastStart == INT64_MAX)
            return true;
        if (e.corr < 0)
            return e.start < lastStart;
        const detail::Launch* l = host.find(e.corr);
        return l && l->min_start < lastStart;
    }

    Result<KernelClass> classOf(const Ev& e)
    {
        const int64_t key = e.name * 16 + int64_t(e.kind);
        if (key == lastKey)
            return lastClass;
        auto [it, added] = classes.try_emplace(key, KernelClass::Other);
        if (added) {
            auto n = nameOf(e.name);
            if (!n)
                return n.error();
            it->second = classifyKernel(*n, e.kind);
        }
        lastKey = key;
        lastClass = it->second;
        return it->second;
    }

    Result<bool> add(const Ev& e, RunTotals& totals)
    {
        const int64_t d = e.end - e.start;
        if (totals.allLayers && e.layer >= 0)
            totals.allLayerNs[e.layer] += d;
        if (!kept(e))
            return true;
        auto cls = classOf(e);
        if (!cls)
            return cls.error();
        if (events++ == 0)
            first = e.start;
        last = std::max(last, e.end);
        all.add(e.start, e.end);
        if (*cls == KernelClass::Computation)
            comp.add(e.start, e.end);
        if (*cls == KernelClass::Communication)
            comm.add(e.start, e.end);
        if (*cls == KernelClass::Computation || *cls == KernelClass::Communication)
            commOrComp.add(e.start, e.end);
        perClass[size_t(*cls)].add(e.start, e.end);
        KernelRow& row = totals.kernels[e.name * 4 + int64_t(*cls)];
        if (row.count == 0) {
            row.cls = *cls;
            row.min_ns = row.max_ns = d;
        }
        ++row.count;
        row.total_ns += d;
        row.min_ns = std::min(row.min_ns, d);
        row.max_ns = std::max(row.max_ns, d);
        if (e.layer >= 0) {
            LayerRow& lr = totals.layers[e.layer];
            lr.layer = e.layer;
            ++lr.count;
            (*cls == KernelClass::Communication ? lr.comm_ns : *cls == KernelClass::Memory ? lr.memory_ns : lr.compute_ns) += d;
        }
        idleGap(e);
        return true;
    }

    // Idle time between consecutive kernels of one stream (HTA's
    // get_idle_time_breakdown); negative gaps (overlap) count as none.
    void idleGap(const Ev& e)
    {
        std::optional<int64_t>& prev = prevEnd[size_t(e.track)];
        if (prev) {
            const int64_t gap = std::max<int64_t>(0, e.start - *prev);
            const detail::Launch* launch = e.corr >= 0 ? host.find(e.corr) : nullptr;
            if (launch && launch->first_start > *prev)
                idle.host_wait_ns += gap;
            else if (e.start - *prev < kernelWaitNs)
                idle.kernel_wait_ns += gap;
            else
                idle.other_ns += gap;
        }
        prev = e.end;
    }

    void finish(RankAnalysis& ra, RunTotals& totals) const
    {
        ra.device_events = events;
        TemporalBreakdown& t = ra.temporal;
        if (events > 0) {
            t.span_ns = last - first;
            t.idle_ns = t.span_ns - all.length();
            t.compute_ns = comp.length();
            t.non_compute_ns = t.span_ns - t.compute_ns - t.idle_ns;
            if (t.span_ns > 0) {
                t.idle_pct = roundedPct(t.idle_ns, t.span_ns);
                t.compute_pct = roundedPct(t.compute_ns, t.span_ns);
                t.non_compute_pct = roundedPct(t.non_compute_ns, t.span_ns);
            }
        }
        for (size_t c = 0; c < perClass.size(); ++c)
            if (perClass[c].any)
                totals.classNs[KernelClass(c)] += perClass[c].length();
        ra.comm_ns = comm.length();
        if (ra.comm_ns > 0)
            ra.comm_comp_overlap_pct = roundedPct(ra.comm_ns + comp.length() - commOrComp.length(), ra.comm_ns);
        ra.idle = idle;
    }
};

Result<RankAnalysis> analyzeRank(const TraceStore& store, const detail::RunScan& scan, int rank, bool dropLast,
                                 const AnalysisOptions& options, RunTotals& totals)
{
    auto host = detail::readHost(store, scan, rank);
    if (!host)
        return host.error();
    RankAnalysis ra;
    ra.rank = rank;
    for (const Ev& s : host->steps)
        ra.step_ns.push_back(s.end - s.start);
    RankSweep sweep(*host);
    sweep.kernelWaitNs = options.kernel_wait_ns;
    sweep.prevEnd.resize(scan.tracks.size());
    sweep.nameOf = [&](int64_t id) { return store.name(id); };
    if (dropLast && !host->steps.empty()) {
        sweep.lastStart = INT64_MIN;
        for (const Ev& s : host->steps)
            sweep.lastStart = std::max(sweep.lastStart, s.start);
        ra.step_ns.pop_back();
    }
    auto merge = detail::DeviceMerge::open(store, scan, rank);
    if (!merge)
        return merge.error();
    Ev e;
    while ((*merge)->next(e))
        if (auto r = sweep.add(e, totals); !r)
            return r.error();
    if ((*merge)->error())
        return *(*merge)->error();
    sweep.finish(ra, totals);
    return ra;
}

// The kernels by total time, named; the classes and layers in order.
Result<bool> collect(const TraceStore& store, RunTotals& totals, RunAnalysis& out)
{
    for (auto& [key, row] : totals.kernels) {
        auto n = store.name(key / 4);
        if (!n)
            return n.error();
        row.name = *n;
        out.kernels.push_back(std::move(row));
    }
    std::sort(out.kernels.begin(), out.kernels.end(), [](const KernelRow& a, const KernelRow& b) {
        if (a.total_ns != b.total_ns)
            return a.total_ns > b.total_ns;
        return a.name != b.name ? a.name < b.name : a.cls < b.cls;
    });
    for (auto& [cls, ns] : totals.classNs)
        out.class_ns.emplace_back(cls, ns);
    for (auto& [id, lr] : totals.layers)
        out.layers.push_back(lr);
    std::sort(out.layers.begin(), out.layers.end(), [](const LayerRow& a, const LayerRow& b) { return a.layer < b.layer; });
    return true;
}

void finishRun(const detail::RunScan& scan, bool dropLast, RunAnalysis& out)
{
    // Stragglers: a rank whose mean step (or, without steps, its busy device
    // time) exceeds the median over ranks by 5 % or more makes the others
    // wait at the next collective.
    if (out.ranks.size() >= 2) {
        std::vector<std::pair<int, double>> metric;
        bool steps = std::all_of(out.ranks.begin(), out.ranks.end(), [](const RankAnalysis& r) { return !r.step_ns.empty(); });
        for (const auto& r : out.ranks) {
            double m = 0;
            if (steps) {
                for (int64_t s : r.step_ns)
                    m += double(s);
                m /= double(r.step_ns.size());
            } else {
                m = double(r.temporal.span_ns - r.temporal.idle_ns);
            }
            metric.emplace_back(r.rank, m);
        }
        std::vector<double> vals;
        for (auto& [rk, m] : metric)
            vals.push_back(m);
        std::sort(vals.begin(), vals.end());
        const double median = vals.size() % 2 ? vals[vals.size() / 2] : (vals[vals.size() / 2 - 1] + vals[vals.size() / 2]) / 2;
        for (auto& [rk, m] : metric)
            if (median > 0 && m >= 1.05 * median)
                out.stragglers.push_back({rk, 100 * (m / median - 1), steps ? "mean step time" : "busy device time"});
    }
    if (scan.ranks.empty())
        out.notes.push_back("the run has no events");
    else if (std::all_of(out.ranks.begin(), out.ranks.end(), [](const RankAnalysis& r) { return r.device_events == 0; }))
        out.notes.push_back("no device events (GPU kernels, memory copies, collectives): breakdowns are empty");
    if (dropLast)
        out.notes.push_back("the last profiler step and what follows it are left out, as HTA does");
    // The whole run: one rank's figures, or the ranks' times summed (overlap
    // weighted by each rank's communication time).
    if (out.ranks.size() == 1) {
        out.total = out.ranks.front().temporal;
        out.comm_comp_overlap_pct = out.ranks.front().comm_comp_overlap_pct;
    } else if (!out.ranks.empty()) {
        TemporalBreakdown& t = out.total;
        double overlapComm = 0, comm = 0;
        for (const auto& r : out.ranks) {
            t.span_ns += r.temporal.span_ns;
            t.idle_ns += r.temporal.idle_ns;
            t.compute_ns += r.temporal.compute_ns;
            t.non_compute_ns += r.temporal.non_compute_ns;
            if (r.comm_comp_overlap_pct) {
                overlapComm += *r.comm_comp_overlap_pct * double(r.comm_ns);
                comm += double(r.comm_ns);
            }
        }
        if (t.span_ns > 0) {
            t.idle_pct = 100.0 * double(t.idle_ns) / double(t.span_ns);
            t.compute_pct = 100.0 * double(t.compute_ns) / double(t.span_ns);
            t.non_compute_pct = 100.0 * double(t.non_compute_ns) / double(t.span_ns);
        }
        if (comm > 0)
            out.comm_comp_overlap_pct = overlapComm / comm;
    }
}

} // namespace

namespace detail {

Result<RunAnalysis> analyzeStreamed(const TraceStore& store, const RunScan& scan, int64_t run, const AnalysisOptions& options,
                                    std::map<int32_t, int64_t>* allLayerNs)
{
    RunAnalysis out;
    out.run = run;
    const bool dropLast = options.drop_last_step && scan.distinct_step_names >= 2;
    out.dropped_last_step = dropLast;
    RunTotals totals;
    totals.allLayers = allLayerNs != nullptr;
    for (const auto& [rank, tracks] : scan.ranks) {
        auto ra = analyzeRank(store, scan, rank, dropLast, options, totals);
        if (!ra)
            return ra.error();
        out.ranks.push_back(std::move(*ra));
    }
    if (auto c = collect(store, totals, out); !c)
        return c.error();
    if (allLayerNs)
        for (const auto& [layer, ns] : totals.allLayerNs)
            (*allLayerNs)[layer] += ns;
    finishRun(scan, dropLast, out);
    return out;
}

} // namespace detail

Result<RunAnalysis> analyzeRun(const TraceStore& store, int64_t run, const AnalysisOptions& options)
{
    if (auto r = store.run(run); !r)
        return r.error();
    TraceStore::ReadScope scope(store);
    auto scan = detail::scanRun(store, run, options.hta_rounding);
    if (!scan)
        return scan.error();
    return detail::analyzeStreamed(store, *scan, run, options, nullptr);
}

} // namespace partita
