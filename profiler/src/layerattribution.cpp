#include "partita/profiler/layerattribution.h"

#include "partita/core/modulepaths.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace partita {

namespace {

constexpr std::string_view kModulePrefix = "nn.Module: ";
constexpr std::string_view kBackwardSuffix = " [backward]";
constexpr std::string_view kOptimizerPrefix = "Optimizer.step#";
constexpr std::string_view kOptimizerPath = "(optimizer)";

struct Span
{
    int64_t start = 0, end = 0;
    int32_t id = -1;         // module path id
    bool collective = false; // an operator that is a collective (c10d's, NCCL's or gloo's)
};

// Collectives as PyTorch's profiler names the operators: c10d's ops
// (c10d::allreduce_, c10d::barrier), PyTorch 2's record_param_comms, and
// the backends' own ranges (nccl:all_reduce, gloo:all_reduce).
bool isCollectiveOp(const std::string& name)
{
    for (std::string_view p : {"c10d::", "nccl:", "gloo:"})
        if (name.compare(0, p.size(), p) == 0)
            return true;
    return name == "record_param_comms";
}

// The module path a range names ("nn.Module: PATH" or "… [backward]"), or
// nothing when it is no module range.
std::optional<std::string> modulePathOf(const std::string& name)
{
    // The optimizer's step (PyTorch's own range): a row of its own, no layer.
    if (name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) == 0)
        return std::string(kOptimizerPath);
    if (name.compare(0, kModulePrefix.size(), kModulePrefix) != 0)
        return std::nullopt;
    std::string p = name.substr(kModulePrefix.size());
    if (p.size() >= kBackwardSuffix.size() && p.compare(p.size() - kBackwardSuffix.size(), kBackwardSuffix.size(), kBackwardSuffix) == 0)
        p.resize(p.size() - kBackwardSuffix.size());
    return p;
}

// Time cut where module ranges begin and end; each piece goes to the range
// open over it that began last (ranges nest, except a leaf's backward range,
// which may begin inside an operator and end after it).
std::vector<Span> flatten(std::vector<Span> ranges)
{
    std::vector<std::pair<int64_t, int>> cuts; // time, +(i+1) opens / -(i+1) closes
    for (size_t i = 0; i < ranges.size(); ++i) {
        cuts.push_back({ranges[i].start, int(i) + 1});
        cuts.push_back({ranges[i].end, -int(i) - 1});
    }
    std::sort(cuts.begin(), cuts.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first < b.first : a.second < b.second; });
    std::set<std::pair<int64_t, int>> open; // (start, index)
    std::vector<Span> out;
    for (size_t k = 0; k < cuts.size(); ++k) {
        const auto [t, c] = cuts[k];
        const int i = std::abs(c) - 1;
        if (c > 0)
            open.insert({ranges[size_t(i)].start, i});
        else
            open.erase({ranges[size_t(i)].start, i});
        const int64_t next = k + 1 < cuts.size() ? cuts[k + 1].first : t;
        if (next > t && !open.empty())
            out.push_back({t, next, ranges[size_t(open.rbegin()->second)].id});
    }
    return out;
}

struct TrackEvents
{
    int32_t rank = 0;
    std::vector<Span> ranges;
    std::vector<Span> ops;   // CPU operators and runtime calls (id unused)
    std::vector<Span> steps;
    std::vector<std::pair<int64_t, int64_t>> launches; // runtime calls: start, correlation
};

// The module a moment belongs to, by the flattened spans; -1 outside all.
int32_t moduleAt(const std::vector<Span>& spans, int64_t t)
{
    auto it = std::upper_bound(spans.begin(), spans.end(), t, [](int64_t v, const Span& s) { return v < s.start; });
    if (it == spans.begin())
        return -1;
    --it;
    return t < it->end ? it->id : -1;
}

// A run's events as attribution reads them: per host track its module
// ranges, operators, launches and steps; kernels by correlation.
struct Loaded
{
    std::vector<std::string> paths;
    std::map<int64_t, TrackEvents> host; // track id -> its events
    std::vector<std::pair<int64_t, int64_t>> kernels; // correlation, duration
    std::set<int32_t> ranks;
};

Result<Loaded> load(const TraceStore& store, int64_t run)
{
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    Loaded l;
    std::unordered_map<std::string, int32_t> pathId;
    TraceStore::ReadScope scope(store);
    for (const StoredTrack& t : *tracks) {
        l.ranks.insert(t.rank);
        TrackEvents* te = t.device ? nullptr : &l.host[t.id];
        if (te)
            te->rank = t.rank;
        auto each = store.forEachEvent(run, [&](const StoredEvent& e) {
            const TraceRecord& r = e.record;
            const Span s{r.start_ns, r.start_ns + r.dur_ns, -1};
            if (!te) {
                if ((r.kind == TraceKind::Kernel || r.kind == TraceKind::Memcpy || r.kind == TraceKind::Memset) &&
                    r.correlation >= 0)
                    l.kernels.push_back({r.correlation, r.dur_ns});
                return;
            }
            if (r.kind == TraceKind::Step) {
                te->steps.push_back(s);
            } else if (r.kind == TraceKind::CpuOp || r.kind == TraceKind::Runtime) {
                te->ops.push_back({s.start, s.end, -1, r.kind == TraceKind::CpuOp && isCollectiveOp(r.name)});
                if (r.kind == TraceKind::Runtime && r.correlation >= 0)
                    te->launches.push_back({r.start_ns, r.correlation});
            } else if (auto p = modulePathOf(r.name)) {
                auto [it, added] = pathId.try_emplace(*p, int32_t(l.paths.size()));
                if (added)
                    l.paths.push_back(*p);
                te->ranges.push_back({s.start, s.end, it->second});
            }
        }, t.id);
        if (!each)
            return each.error();
    }
    return l;
}

// One host track's steps: each top-level operator's time (clipped to its
// step) given, piece by piece, to the module open over it (`hostNs` by path
// id; `counts`: the paths that are a layer's); the launches' modules noted.
std::vector<StepAttribution> attributeTrack(TrackEvents& te, const std::vector<bool>& counts, std::vector<int64_t>& hostNs,
                                            std::unordered_map<int64_t, int32_t>& launchedIn)
{
    std::sort(te.steps.begin(), te.steps.end(), [](const Span& x, const Span& y) { return x.start < y.start; });
    std::sort(te.ops.begin(), te.ops.end(),
              [](const Span& x, const Span& y) { return x.start != y.start ? x.start < y.start : x.end > y.end; });
    const std::vector<Span> spans = flatten(te.ranges);
    for (const auto& [at, corr] : te.launches)
        if (const int32_t m = moduleAt(spans, at); m >= 0)
            launchedIn[corr] = m;
    std::vector<StepAttribution> steps;
    for (size_t k = 0; k < te.steps.size(); ++k)
        steps.push_back({te.rank, int(k), te.steps[k].start, te.steps[k].end - te.steps[k].start, 0, 0, 0});
    int64_t topEnd = INT64_MIN;
    for (const Span& op : te.ops) {
        if (op.start < topEnd)
            continue; // inside a top-level operator
        topEnd = op.end;
        auto st = std::upper_bound(te.steps.begin(), te.steps.end(), op.start,
                                   [](int64_t v, const Span& s) { return v < s.start; });
        if (st == te.steps.begin() || op.start >= (st - 1)->end)
            continue;
        --st;
        StepAttribution& sa = steps[size_t(st - te.steps.begin())];
        const int64_t from = op.start, to = std::min(op.end, st->end);
        sa.op_ns += to - from;
        int64_t inModules = 0;
        auto sp = std::upper_bound(spans.begin(), spans.end(), from, [](int64_t v, const Span& s) { return v < s.start; });
        if (sp != spans.begin())
            --sp;
        for (; sp != spans.end() && sp->start < to; ++sp) {
            const int64_t lo = std::max(from, sp->start), hi = std::min(to, sp->end);
            if (hi <= lo)
                continue;
            hostNs[size_t(sp->id)] += hi - lo;
            inModules += hi - lo;
            if (counts[size_t(sp->id)])
                sa.attributed_ns += hi - lo;
        }
        if (op.collective)
            sa.collective_ns += (to - from) - inModules;
    }
    return steps;
}

// Rows by name: layers in the model's order, then module paths, most time first.
std::vector<AttributedLayer> rowsOf(const std::vector<ModuleMatch>& matches, const std::vector<int64_t>& hostNs,
                                    const std::vector<int64_t>& deviceNs, double perStep, std::vector<AttributedLayer> rows)
{
    std::map<std::string, AttributedLayer> byName;
    for (size_t i = 0; i < matches.size(); ++i) {
        const ModuleMatch& m = matches[i];
        if (m.name.empty())
            continue;
        AttributedLayer& l = byName[m.name];
        l.name = m.name;
        l.layer = m.layer;
        l.host_s += double(hostNs[i]) * perStep;
        l.device_s += double(deviceNs[i]) * perStep;
    }
    for (auto& [n, l] : byName)
        rows.push_back(l);
    std::sort(rows.begin(), rows.end(), [](const AttributedLayer& x, const AttributedLayer& y) {
        if ((x.layer >= 0) != (y.layer >= 0))
            return x.layer >= 0;
        if (x.layer >= 0)
            return x.layer < y.layer;
        return x.host_s + x.device_s > y.host_s + y.device_s;
    });
    return rows;
}

} // namespace

double StepAttribution::fraction() const
{
    const int64_t own = op_ns - collective_ns;
    return own > 0 ? double(attributed_ns) / double(own) : 0;
}

Result<LayerAttribution> attributeToLayers(const TraceStore& store, int64_t run, const std::vector<std::string>& layers)
{
    auto loaded = load(store, run);
    if (!loaded)
        return loaded.error();
    Loaded& L = *loaded;
    const ModulePathMatcher matcher(layers, L.paths);
    std::vector<ModuleMatch> matches;
    for (const std::string& p : L.paths)
        matches.push_back(matcher.match(p));
    // The optimizer's time is shown, but is no layer's: not attributed.
    std::vector<bool> counts(L.paths.size());
    for (size_t i = 0; i < L.paths.size(); ++i) {
        counts[i] = !matches[i].name.empty();
        if (L.paths[i] == kOptimizerPath)
            matches[i].name = kOptimizerRow;
    }
    LayerAttribution a;
    a.ranks = int(L.ranks.size());
    std::vector<int64_t> hostNs(L.paths.size(), 0), deviceNs(L.paths.size(), 0);
    std::unordered_map<int64_t, int32_t> launchedIn; // correlation -> module path id
    int64_t opTotal = 0, attributedTotal = 0, collectiveTotal = 0;
    for (auto& [id, te] : L.host) {
        a.module_ranges += int64_t(te.ranges.size());
        for (const StepAttribution& sa : attributeTrack(te, counts, hostNs, launchedIn)) {
            opTotal += sa.op_ns;
            attributedTotal += sa.attributed_ns;
            collectiveTotal += sa.collective_ns;
            a.steps.push_back(sa);
        }
    }
    if (a.steps.empty())
        return Error{"run " + std::to_string(run), "steps", "holds no steps (ProfilerStep# ranges) to attribute time within"};
    for (const auto& [corr, dur] : L.kernels)
        if (auto it = launchedIn.find(corr); it != launchedIn.end())
            deviceNs[size_t(it->second)] += dur;
    // Per step on one rank: the ranks' steps together, divided by their count.
    const double perStep = 1e-9 / double(a.steps.size());
    std::vector<AttributedLayer> extra;
    if (collectiveTotal > 0)
        extra.push_back({kOutsideCollectivesRow, -1, double(collectiveTotal) * perStep, 0});
    a.layers = rowsOf(matches, hostNs, deviceNs, perStep, std::move(extra));
    const int64_t own = opTotal - collectiveTotal;
    a.attributed_fraction = own > 0 ? double(attributedTotal) / double(own) : 0;
    a.worst_step_fraction = 1;
    std::map<int, double> slowest;
    for (const StepAttribution& s : a.steps) {
        if (s.op_ns - s.collective_ns > 0)
            a.worst_step_fraction = std::min(a.worst_step_fraction, s.fraction());
        slowest[s.index] = std::max(slowest[s.index], double(s.dur_ns) * 1e-9);
    }
    for (const auto& [k, v] : slowest)
        a.step_s.push_back(v);
    return a;
}

} // namespace partita
