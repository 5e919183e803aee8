#include "partita/profiler/analysis.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

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

// One event as the analyses read it: 48 bytes (a run of 10 M events is
// held whole, per rank).
struct Ev
{
    int64_t start = 0, end = 0, corr = -1, id = 0;
    int32_t track = 0; // the track's position in the run's track list
    uint32_t name = 0;
    int32_t layer = -1;
    TraceKind kind : 8 = TraceKind::Compute;
    KernelClass cls : 8 = KernelClass::Other;
    bool device = false;
};
static_assert(sizeof(Ev) == 48);

struct Loaded
{
    std::vector<std::string> names;
    std::map<int, std::vector<Ev>> byRank;
    int distinctStepNames = 0;
};

int64_t ceilUs(int64_t ns) { return ns >= 0 ? (ns + 999) / 1000 * 1000 : -((-ns) / 1000 * 1000); }
int64_t floorUs(int64_t ns) { return ns >= 0 ? ns / 1000 * 1000 : -((-ns + 999) / 1000 * 1000); }

Result<Loaded> load(const TraceStore& store, int64_t run, bool htaRounding = false)
{
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    std::unordered_map<int64_t, std::pair<const StoredTrack*, int32_t>> byId; // id -> track, position
    Loaded l;
    // Each rank's events are counted in its tracks' statistics: reserved up
    // front, the vectors do not double past them.
    std::map<int, int64_t> perRank;
    for (size_t i = 0; i < tracks->size(); ++i) {
        const StoredTrack& t = (*tracks)[i];
        byId[t.id] = {&t, int32_t(i)};
        perRank[t.rank] += t.events;
    }
    for (const auto& [rank, n] : perRank)
        l.byRank[rank].reserve(size_t(n));
    std::unordered_map<std::string, uint32_t> index;
    std::set<uint32_t> stepNames;
    auto r = store.forEachEvent(run, [&](const StoredEvent& e) {
        const auto [track, position] = byId[e.track_id];
        const StoredTrack& t = *track;
        Ev v;
        v.start = e.record.start_ns;
        v.end = e.record.start_ns + e.record.dur_ns;
        if (htaRounding) {
            v.start = ceilUs(v.start);
            v.end = std::max(v.start, floorUs(v.end));
        }
        v.corr = e.record.correlation;
        v.id = e.id;
        v.track = position;
        v.layer = e.record.layer;
        v.kind = e.record.kind;
        v.device = t.device && isDeviceKind(e.record.kind);
        auto [it, added] = index.emplace(e.record.name, uint32_t(l.names.size()));
        if (added)
            l.names.push_back(e.record.name);
        v.name = it->second;
        if (v.device)
            v.cls = classifyKernel(e.record.name, e.record.kind);
        if (v.kind == TraceKind::Step)
            stepNames.insert(v.name);
        l.byRank[t.rank].push_back(v);
    });
    if (!r)
        return r.error();
    l.distinctStepNames = int(stepNames.size());
    return l;
}

using Interval = std::pair<int64_t, int64_t>;

// Union of intervals; touching ones merge (HTA merge_kernel_intervals).
// Merged in place: no second vector as long as the first.
std::vector<Interval> unite(std::vector<Interval> v)
{
    std::sort(v.begin(), v.end());
    size_t n = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (n > 0 && v[i].first <= v[n - 1].second)
            v[n - 1].second = std::max(v[n - 1].second, v[i].second);
        else
            v[n++] = v[i];
    }
    v.resize(n);
    return v;
}

int64_t length(const std::vector<Interval>& u)
{
    int64_t s = 0;
    for (const auto& iv : u)
        s += iv.second - iv.first;
    return s;
}

int64_t intersection(const std::vector<Interval>& a, const std::vector<Interval>& b)
{
    int64_t s = 0;
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const int64_t lo = std::max(a[i].first, b[j].first), hi = std::min(a[i].second, b[j].second);
        if (hi > lo)
            s += hi - lo;
        if (a[i].second < b[j].second)
            ++i;
        else
            ++j;
    }
    return s;
}

TemporalBreakdown temporal(const std::vector<const Ev*>& k)
{
    TemporalBreakdown t;
    std::vector<Interval> all, comp;
    all.reserve(k.size());
    for (const Ev* e : k) {
        all.emplace_back(e->start, e->end);
        if (e->cls == KernelClass::Computation)
            comp.emplace_back(e->start, e->end);
    }
    const auto u = unite(std::move(all));
    if (u.empty())
        return t;
    int64_t last = 0;
    for (const auto& iv : u)
        last = std::max(last, iv.second);
    t.span_ns = last - u.front().first;
    t.idle_ns = t.span_ns - length(u);
    t.compute_ns = length(unite(std::move(comp)));
    t.non_compute_ns = t.span_ns - t.compute_ns - t.idle_ns;
    if (t.span_ns > 0) {
        auto pct = [&](int64_t x) { return std::round(10000.0 * double(x) / double(t.span_ns)) / 100.0; };
        t.idle_pct = pct(t.idle_ns);
        t.compute_pct = pct(t.compute_ns);
        t.non_compute_pct = pct(t.non_compute_ns);
    }
    return t;
}

// Step number from "ProfilerStep#N", else the step's order.
int64_t stepNumber(const std::string& name, int64_t order)
{
    const auto p = name.find('#');
    if (p != std::string::npos) {
        int64_t v = 0;
        bool digits = false;
        for (size_t i = p + 1; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
            v = v * 10 + (name[i] - '0');
            digits = true;
        }
        if (digits)
            return v;
    }
    return order;
}

struct RankView
{
    std::vector<const Ev*> host, device, steps;
    std::unordered_map<int64_t, const Ev*> launchByCorr; // host events by correlation
};

RankView view(const std::vector<Ev>& evs)
{
    RankView v;
    for (const Ev& e : evs) {
        if (e.device)
            v.device.push_back(&e);
        else
            v.host.push_back(&e);
        if (e.kind == TraceKind::Step)
            v.steps.push_back(&e);
        if (!e.device && e.corr >= 0)
            v.launchByCorr.emplace(e.corr, &e);
    }
    auto byStart = [](const Ev* a, const Ev* b) { return a->start < b->start || (a->start == b->start && a->id < b->id); };
    std::sort(v.steps.begin(), v.steps.end(), byStart);
    std::sort(v.device.begin(), v.device.end(), byStart);
    return v;
}

RunAnalysis analyzeLoaded(const Loaded& L, int64_t run, const AnalysisOptions& options)
{
    RunAnalysis out;
    out.run = run;
    const bool dropLast = options.drop_last_step && L.distinctStepNames >= 2;
    out.dropped_last_step = dropLast;
    std::map<std::pair<uint32_t, KernelClass>, KernelRow> kernels;
    std::map<KernelClass, int64_t> classNs;
    std::map<int32_t, LayerRow> layers;
    for (const auto& [rank, evs] : L.byRank) {
        RankView v = view(evs);
        RankAnalysis ra;
        ra.rank = rank;
        for (const Ev* s : v.steps)
            ra.step_ns.push_back(s->end - s->start);
        // HTA's filter: host events before the last step's start, and the
        // device events those launched (by time when there is no correlation).
        std::vector<const Ev*> k;
        if (dropLast && !v.steps.empty()) {
            int64_t lastStart = INT64_MIN;
            for (const Ev* s : v.steps)
                lastStart = std::max(lastStart, s->start);
            std::unordered_set<int64_t> kept;
            for (const Ev* h : v.host)
                if (h->start < lastStart && h->corr >= 0)
                    kept.insert(h->corr);
            for (const Ev* d : v.device)
                if (d->corr >= 0 ? kept.count(d->corr) > 0 : d->start < lastStart)
                    k.push_back(d);
            if (!ra.step_ns.empty())
                ra.step_ns.pop_back();
        } else {
            k = v.device;
        }
        ra.device_events = int64_t(k.size());
        ra.temporal = temporal(k);
        std::vector<Interval> comm, comp;
        std::map<KernelClass, std::vector<Interval>> perClass;
        for (const Ev* e : k) {
            if (e->cls == KernelClass::Communication)
                comm.emplace_back(e->start, e->end);
            if (e->cls == KernelClass::Computation)
                comp.emplace_back(e->start, e->end);
            perClass[e->cls].emplace_back(e->start, e->end);
            KernelRow& row = kernels[{e->name, e->cls}];
            const int64_t d = e->end - e->start;
            if (row.count == 0) {
                row.name = L.names[e->name];
                row.cls = e->cls;
                row.min_ns = row.max_ns = d;
            }
            ++row.count;
            row.total_ns += d;
            row.min_ns = std::min(row.min_ns, d);
            row.max_ns = std::max(row.max_ns, d);
            if (e->layer >= 0) {
                LayerRow& lr = layers[e->layer];
                lr.layer = e->layer;
                ++lr.count;
                (e->cls == KernelClass::Communication ? lr.comm_ns
                 : e->cls == KernelClass::Memory      ? lr.memory_ns
                                                      : lr.compute_ns) += d;
            }
        }
        for (auto& [cls, iv] : perClass)
            classNs[cls] += length(unite(std::move(iv)));
        const auto cu = unite(std::move(comm));
        ra.comm_ns = length(cu);
        if (ra.comm_ns > 0)
            ra.comm_comp_overlap_pct =
                std::round(10000.0 * double(intersection(cu, unite(std::move(comp)))) / double(ra.comm_ns)) / 100.0;
        // Idle time between consecutive kernels of one stream (HTA's
        // get_idle_time_breakdown); negative gaps (overlap) count as none.
        std::map<int64_t, std::vector<const Ev*>> byTrack;
        for (const Ev* e : k)
            if (e->kind != TraceKind::Annotation)
                byTrack[e->track].push_back(e);
        for (auto& [track, list] : byTrack) {
            for (size_t i = 1; i < list.size(); ++i) {
                const int64_t prevEnd = list[i - 1]->end;
                const int64_t gap = std::max<int64_t>(0, list[i]->start - prevEnd);
                const Ev* launch = nullptr;
                if (list[i]->corr >= 0)
                    if (auto it = v.launchByCorr.find(list[i]->corr); it != v.launchByCorr.end())
                        launch = it->second;
                if (launch && launch->start > prevEnd)
                    ra.idle.host_wait_ns += gap;
                else if (list[i]->start - prevEnd < options.kernel_wait_ns)
                    ra.idle.kernel_wait_ns += gap;
                else
                    ra.idle.other_ns += gap;
            }
        }
        out.ranks.push_back(std::move(ra));
    }
    for (auto& [key, row] : kernels)
        out.kernels.push_back(std::move(row));
    std::sort(out.kernels.begin(), out.kernels.end(),
              [](const KernelRow& a, const KernelRow& b) { return a.total_ns > b.total_ns || (a.total_ns == b.total_ns && a.name < b.name); });
    for (auto& [cls, ns] : classNs)
        out.class_ns.emplace_back(cls, ns);
    for (auto& [id, lr] : layers)
        out.layers.push_back(lr);
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
    if (L.byRank.empty())
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
    return out;
}

} // namespace

Result<RunAnalysis> analyzeRun(const TraceStore& store, int64_t run, const AnalysisOptions& options)
{
    if (auto r = store.run(run); !r)
        return r.error();
    auto loaded = load(store, run, options.hta_rounding);
    if (!loaded)
        return loaded.error();
    return analyzeLoaded(*loaded, run, options);
}

// ---------------------------------------------------------------- diff

namespace {

struct Iterated
{
    std::map<int64_t, std::vector<const Ev*>> byIteration; // -1: the whole run when there are no steps
    std::set<int64_t> steps;                               // step numbers present
};

Iterated iterate(const Loaded& L, const std::vector<Ev>& evs, DiffScope scope)
{
    Iterated out;
    RankView v = view(evs);
    if (v.steps.empty()) {
        out.steps.insert(-1);
        for (const Ev& e : evs)
            if (scope == DiffScope::All || (scope == DiffScope::Gpu) == e.device)
                out.byIteration[-1].push_back(&e);
        return out;
    }
    std::vector<int64_t> numbers;
    for (size_t i = 0; i < v.steps.size(); ++i)
        numbers.push_back(stepNumber(L.names[v.steps[i]->name], int64_t(i)));
    out.steps.insert(numbers.begin(), numbers.end());
    // HTA: a host event belongs to the step that contains its start (the last
    // such step in order); a device event to the step of its launch.
    auto hostIteration = [&](int64_t t) -> int64_t {
        int64_t it = -1;
        for (size_t i = 0; i < v.steps.size(); ++i)
            if (v.steps[i]->start <= t && t < v.steps[i]->end)
                it = numbers[i];
        return it;
    };
    for (const Ev& e : evs) {
        int64_t it = -1;
        if (!e.device) {
            it = hostIteration(e.start);
        } else if (e.corr >= 0) {
            if (auto l = v.launchByCorr.find(e.corr); l != v.launchByCorr.end())
                it = hostIteration(l->second->start);
        } else {
            it = hostIteration(e.start);
        }
        if (it < 0)
            continue;
        if (scope == DiffScope::All || (scope == DiffScope::Gpu) == e.device)
            out.byIteration[it].push_back(&e);
    }
    return out;
}

} // namespace

Result<RunDiff> diffRuns(const TraceStore& store, int64_t a, int64_t b, const DiffOptions& options)
{
    for (int64_t id : {a, b})
        if (auto r = store.run(id); !r)
            return r.error();
    auto la = load(store, a);
    if (!la)
        return la.error();
    auto lb = load(store, b);
    if (!lb)
        return lb.error();
    RunDiff d;
    auto pickRank = [&](const Loaded& l, int64_t id) -> Result<int> {
        if (l.byRank.empty())
            return Error{store.path(), "run " + std::to_string(id), "the run has no events"};
        if (options.rank) {
            if (!l.byRank.count(*options.rank))
                return Error{store.path(), "run " + std::to_string(id), "has no rank " + std::to_string(*options.rank)};
            return *options.rank;
        }
        return l.byRank.begin()->first;
    };
    auto ra = pickRank(*la, a);
    if (!ra)
        return ra.error();
    auto rb = pickRank(*lb, b);
    if (!rb)
        return rb.error();
    d.rank_a = *ra;
    d.rank_b = *rb;
    const Iterated ia = iterate(*la, la->byRank.at(*ra), options.scope);
    const Iterated ib = iterate(*lb, lb->byRank.at(*rb), options.scope);
    auto pickIteration = [&](const Iterated& it, int64_t id) -> Result<int64_t> {
        if (options.iteration) {
            if (!it.steps.count(*options.iteration))
                return Error{store.path(), "run " + std::to_string(id), "has no step " + std::to_string(*options.iteration)};
            return *options.iteration;
        }
        if (it.byIteration.empty())
            return it.steps.empty() ? Result<int64_t>(Error{store.path(), "run " + std::to_string(id), "no events"})
                                    : Result<int64_t>(*it.steps.begin());
        return it.byIteration.begin()->first;
    };
    auto xa = pickIteration(ia, a);
    if (!xa)
        return xa.error();
    auto xb = pickIteration(ib, b);
    if (!xb)
        return xb.error();
    d.iteration_a = *xa;
    d.iteration_b = *xb;
    std::map<std::string, OpsDiffRow> rows;
    static const std::vector<const Ev*> none;
    auto events = [&](const Iterated& it, int64_t x) -> const std::vector<const Ev*>& {
        auto f = it.byIteration.find(x);
        return f == it.byIteration.end() ? none : f->second;
    };
    for (const Ev* e : events(ia, *xa)) {
        OpsDiffRow& r = rows[la->names[e->name]];
        ++r.a_count;
        r.a_ns += e->end - e->start;
    }
    for (const Ev* e : events(ib, *xb)) {
        OpsDiffRow& r = rows[lb->names[e->name]];
        ++r.b_count;
        r.b_ns += e->end - e->start;
    }
    for (auto& [name, r] : rows) {
        r.name = name;
        const int64_t diff = r.b_count - r.a_count;
        r.change = r.a_count == 0 && r.b_count > 0 ? "added"
                   : r.a_count > 0 && r.b_count == 0 ? "deleted"
                   : diff > 0                        ? "increased"
                   : diff < 0                        ? "decreased"
                                                     : "unchanged";
        d.ops.push_back(r);
    }
    // Steps aligned by index, on the compared ranks.
    const RankView va = view(la->byRank.at(*ra)), vb = view(lb->byRank.at(*rb));
    for (size_t i = 0; i < std::max(va.steps.size(), vb.steps.size()); ++i)
        d.steps.push_back({int(i), i < va.steps.size() ? va.steps[i]->end - va.steps[i]->start : 0,
                           i < vb.steps.size() ? vb.steps[i]->end - vb.steps[i]->start : 0});
    // Device time per layer, all ranks.
    std::map<int32_t, LayerDelta> layers;
    for (const auto& [rank, evs] : la->byRank)
        for (const Ev& e : evs)
            if (e.device && e.layer >= 0) {
                layers[e.layer].layer = e.layer;
                layers[e.layer].a_ns += e.end - e.start;
            }
    for (const auto& [rank, evs] : lb->byRank)
        for (const Ev& e : evs)
            if (e.device && e.layer >= 0) {
                layers[e.layer].layer = e.layer;
                layers[e.layer].b_ns += e.end - e.start;
            }
    for (auto& [id, l] : layers)
        d.layers.push_back(l);
    // Per-rank temporal breakdowns, both runs analyzed alike, from the events already loaded.
    const RunAnalysis aa = analyzeLoaded(*la, a, {});
    const RunAnalysis ab = analyzeLoaded(*lb, b, {});
    for (const auto& x : aa.ranks)
        for (const auto& y : ab.ranks)
            if (x.rank == y.rank)
                d.ranks.push_back({x.rank, x.temporal, y.temporal});
    return d;
}

} // namespace partita
