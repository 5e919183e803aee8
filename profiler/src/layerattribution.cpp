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

// What a name is to attribution, looked up once per name id: a module
// range's path id (-1: no module range) and whether an operator of that
// name is a collective.
struct NameInfo
{
    int32_t path = -1;
    bool collective = false;
};

// The module paths met so far, by id.
struct Paths
{
    std::vector<std::string> names;
    std::unordered_map<std::string, int32_t> ids;
    int32_t idOf(const std::string& p)
    {
        auto [it, added] = ids.try_emplace(p, int32_t(names.size()));
        if (added)
            names.push_back(p);
        return it->second;
    }
};

// A run read a track at a time: names classified once, paths numbered.
class Reader
{
public:
    Reader(const TraceStore& store) : m_store(store) {}
    Paths paths;

    // Each event of a track, in (start, id) order.
    template <class F>
    Result<bool> each(const StoredTrack& t, F&& f) const
    {
        auto s = m_store.stream(t.id);
        if (!s)
            return s.error();
        RawEvent e;
        while ((*s)->next(e))
            if (auto r = f(e); !r)
                return r;
        if ((*s)->error())
            return *(*s)->error();
        return true;
    }

    Result<NameInfo> info(int64_t nameId)
    {
        if (auto it = m_names.find(nameId); it != m_names.end())
            return it->second;
        auto n = m_store.name(nameId);
        if (!n)
            return n.error();
        NameInfo i;
        i.collective = isCollectiveOp(*n);
        if (auto p = modulePathOf(*n))
            i.path = paths.idOf(*p);
        return m_names.emplace(nameId, i).first->second;
    }

private:
    const TraceStore& m_store;
    std::unordered_map<int64_t, NameInfo> m_names;
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

// A step being attributed: what its operators spent in each module (which
// modules are a layer's is known once every path has been met).
struct StepTally
{
    StepAttribution sa;
    std::unordered_map<int32_t, int64_t> byPath;
};

// One host track, read twice: first its steps and module ranges, then its
// operators in start order, each top-level one's time (clipped to its
// step) given, piece by piece, to the module open over it; the launches'
// modules noted in `launchedIn`. Only the ranges and steps are held.
class TrackPass
{
public:
    TrackPass(Reader& r, int32_t rank, std::vector<int64_t>& hostNs, std::unordered_map<int64_t, int32_t>& launchedIn)
        : m_reader(r), m_rank(rank), m_hostNs(hostNs), m_launchedIn(launchedIn)
    {
    }
    int64_t ranges = 0;

    Result<std::vector<StepTally>> run(const StoredTrack& t)
    {
        std::vector<Span> steps, moduleRanges;
        auto first = m_reader.each(t, [&](const RawEvent& e) -> Result<bool> {
            const Span s{e.start_ns, e.start_ns + e.dur_ns, -1};
            if (e.kind == TraceKind::Step) {
                steps.push_back(s);
            } else if (e.kind != TraceKind::CpuOp && e.kind != TraceKind::Runtime) {
                auto i = m_reader.info(e.name_id);
                if (!i)
                    return i.error();
                if (i->path >= 0)
                    moduleRanges.push_back({s.start, s.end, i->path});
            }
            return true;
        });
        if (!first)
            return first.error();
        ranges = int64_t(moduleRanges.size());
        std::stable_sort(steps.begin(), steps.end(), [](const Span& x, const Span& y) { return x.start < y.start; });
        m_steps = std::move(steps);
        m_spans = flatten(std::move(moduleRanges));
        for (size_t k = 0; k < m_steps.size(); ++k)
            m_tally.push_back({{m_rank, int(k), m_steps[k].start, m_steps[k].end - m_steps[k].start, 0, 0, 0}, {}});
        // Operators that start together come longest first: the outer one is the top-level one.
        std::vector<Span> group;
        auto flush = [&] {
            std::sort(group.begin(), group.end(), [](const Span& x, const Span& y) { return x.end > y.end; });
            for (const Span& op : group)
                take(op);
            group.clear();
        };
        auto second = m_reader.each(t, [&](const RawEvent& e) -> Result<bool> {
            if (e.kind != TraceKind::CpuOp && e.kind != TraceKind::Runtime)
                return true;
            bool collective = false;
            if (e.kind == TraceKind::CpuOp) {
                auto i = m_reader.info(e.name_id);
                if (!i)
                    return i.error();
                collective = i->collective;
            }
            if (e.kind == TraceKind::Runtime && e.correlation >= 0)
                if (const int32_t m = moduleAt(m_spans, e.start_ns); m >= 0)
                    m_launchedIn[e.correlation] = m;
            if (!group.empty() && group.front().start != e.start_ns)
                flush();
            group.push_back({e.start_ns, e.start_ns + e.dur_ns, -1, collective});
            return true;
        });
        if (!second)
            return second.error();
        flush();
        return std::move(m_tally);
    }

private:
    void take(const Span& op)
    {
        if (op.start < m_topEnd)
            return; // inside a top-level operator
        m_topEnd = op.end;
        auto st = std::upper_bound(m_steps.begin(), m_steps.end(), op.start, [](int64_t v, const Span& s) { return v < s.start; });
        if (st == m_steps.begin() || op.start >= (st - 1)->end)
            return;
        --st;
        StepTally& tally = m_tally[size_t(st - m_steps.begin())];
        const int64_t from = op.start, to = std::min(op.end, st->end);
        tally.sa.op_ns += to - from;
        int64_t inModules = 0;
        auto sp = std::upper_bound(m_spans.begin(), m_spans.end(), from, [](int64_t v, const Span& s) { return v < s.start; });
        if (sp != m_spans.begin())
            --sp;
        for (; sp != m_spans.end() && sp->start < to; ++sp) {
            const int64_t lo = std::max(from, sp->start), hi = std::min(to, sp->end);
            if (hi <= lo)
                continue;
            if (m_hostNs.size() <= size_t(sp->id))
                m_hostNs.resize(size_t(sp->id) + 1, 0);
            m_hostNs[size_t(sp->id)] += hi - lo;
            inModules += hi - lo;
            tally.byPath[sp->id] += hi - lo;
        }
        if (op.collective)
            tally.sa.collective_ns += (to - from) - inModules;
    }

    Reader& m_reader;
    int32_t m_rank;
    std::vector<int64_t>& m_hostNs;
    std::unordered_map<int64_t, int32_t>& m_launchedIn;
    std::vector<Span> m_steps, m_spans;
    std::vector<StepTally> m_tally;
    int64_t m_topEnd = INT64_MIN;
};

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

// One rank's host tracks: their steps by track id, each path's host time,
// and the module path each launch (by correlation) came from.
Result<bool> readHostTracks(Reader& reader, int32_t rank, const std::vector<const StoredTrack*>& rankTracks,
                            std::vector<int64_t>& hostNs, std::unordered_map<int64_t, int32_t>& launchedIn,
                            std::map<int64_t, std::vector<StepTally>>& byTrack, LayerAttribution& a)
{
    for (const StoredTrack* t : rankTracks) {
        if (t->device)
            continue;
        TrackPass pass(reader, rank, hostNs, launchedIn);
        auto steps = pass.run(*t);
        if (!steps)
            return steps.error();
        a.module_ranges += pass.ranges;
        byTrack[t->id] = std::move(*steps);
    }
    return true;
}

// One rank's device tracks: each kernel, copy and set given to the module
// path its launch came from.
Result<bool> readDeviceTracks(Reader& reader, const std::vector<const StoredTrack*>& rankTracks,
                              const std::unordered_map<int64_t, int32_t>& launchedIn, std::vector<int64_t>& deviceNs)
{
    for (const StoredTrack* t : rankTracks) {
        if (!t->device)
            continue;
        auto r = reader.each(*t, [&](const RawEvent& e) -> Result<bool> {
            if ((e.kind == TraceKind::Kernel || e.kind == TraceKind::Memcpy || e.kind == TraceKind::Memset) && e.correlation >= 0)
                if (auto it = launchedIn.find(e.correlation); it != launchedIn.end()) {
                    if (deviceNs.size() <= size_t(it->second))
                        deviceNs.resize(size_t(it->second) + 1, 0);
                    deviceNs[size_t(it->second)] += e.dur_ns;
                }
            return true;
        });
        if (!r)
            return r.error();
    }
    return true;
}

// Each path's layer (the optimizer's renamed to its row); `counts`: whether
// a path's time is attributed. The optimizer's time is shown, but is no
// layer's: not attributed.
std::vector<ModuleMatch> matchPaths(const std::vector<std::string>& layers, const std::vector<std::string>& paths,
                                    std::vector<bool>& counts)
{
    const ModulePathMatcher matcher(layers, paths);
    std::vector<ModuleMatch> matches;
    for (const std::string& p : paths)
        matches.push_back(matcher.match(p));
    counts.assign(paths.size(), false);
    for (size_t i = 0; i < paths.size(); ++i) {
        counts[i] = !matches[i].name.empty();
        if (paths[i] == kOptimizerPath)
            matches[i].name = kOptimizerRow;
    }
    return matches;
}

// The run's operator, attributed and collective time, summed over its steps.
struct RunTotals
{
    int64_t op = 0, attributed = 0, collective = 0;
};

// Each step's attributed time (that of the paths that count), the steps
// listed in `steps`, and the run's totals.
RunTotals tallySteps(std::map<int64_t, std::vector<StepTally>>& byTrack, const std::vector<bool>& counts,
                     std::vector<StepAttribution>& steps)
{
    RunTotals total;
    for (auto& [id, trackSteps] : byTrack)
        for (StepTally& t : trackSteps) {
            for (const auto& [path, ns] : t.byPath)
                if (counts[size_t(path)])
                    t.sa.attributed_ns += ns;
            total.op += t.sa.op_ns;
            total.attributed += t.sa.attributed_ns;
            total.collective += t.sa.collective_ns;
            steps.push_back(t.sa);
        }
    return total;
}

// The worst step's attributed fraction, and each step's slowest time over the ranks.
void summarizeSteps(LayerAttribution& a)
{
    a.worst_step_fraction = 1;
    std::map<int, double> slowest;
    for (const StepAttribution& s : a.steps) {
        if (s.op_ns - s.collective_ns > 0)
            a.worst_step_fraction = std::min(a.worst_step_fraction, s.fraction());
        slowest[s.index] = std::max(slowest[s.index], double(s.dur_ns) * 1e-9);
    }
    for (const auto& [k, v] : slowest)
        a.step_s.push_back(v);
}

} // namespace

double StepAttribution::fraction() const
{
    const int64_t own = op_ns - collective_ns;
    return own > 0 ? double(attributed_ns) / double(own) : 0;
}

Result<LayerAttribution> attributeToLayers(const TraceStore& store, int64_t run, const std::vector<std::string>& layers)
{
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    TraceStore::ReadScope scope(store);
    Reader reader(store);
    LayerAttribution a;
    std::vector<int64_t> hostNs, deviceNs;
    std::map<int64_t, std::vector<StepTally>> byTrack; // host track id -> its steps
    // A rank at a time: its host tracks (launches noted by correlation),
    // then its device tracks' kernels given to their launches' modules.
    std::map<int32_t, std::vector<const StoredTrack*>> ranks;
    for (const StoredTrack& t : *tracks)
        ranks[t.rank].push_back(&t);
    a.ranks = int(ranks.size());
    for (const auto& [rank, rankTracks] : ranks) {
        std::unordered_map<int64_t, int32_t> launchedIn; // correlation -> module path id, this rank's
        if (auto host = readHostTracks(reader, rank, rankTracks, hostNs, launchedIn, byTrack, a); !host)
            return host.error();
        if (auto device = readDeviceTracks(reader, rankTracks, launchedIn, deviceNs); !device)
            return device.error();
    }
    const std::vector<std::string>& paths = reader.paths.names;
    hostNs.resize(paths.size(), 0);
    deviceNs.resize(paths.size(), 0);
    std::vector<bool> counts;
    std::vector<ModuleMatch> matches = matchPaths(layers, paths, counts);
    const RunTotals total = tallySteps(byTrack, counts, a.steps);
    if (a.steps.empty())
        return Error{"run " + std::to_string(run), "steps", "holds no steps (ProfilerStep# ranges) to attribute time within"};
    // Per step on one rank: the ranks' steps together, divided by their count.
    const double perStep = 1e-9 / double(a.steps.size());
    std::vector<AttributedLayer> extra;
    if (total.collective > 0)
        extra.push_back({kOutsideCollectivesRow, -1, double(total.collective) * perStep, 0});
    a.layers = rowsOf(matches, hostNs, deviceNs, perStep, std::move(extra));
    const int64_t own = total.op - total.collective;
    a.attributed_fraction = own > 0 ? double(total.attributed) / double(own) : 0;
    summarizeSteps(a);
    return a;
}
} // namespace partita
