#include "partita/profiler/stragglers.h"

#include "partita/profiler/analysis.h"

#include "runstream.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <optional>
#include <unordered_map>

namespace partita {

namespace {

using detail::Ev;

struct Coll
{
    int64_t start = 0, end = 0, name = 0;
    int64_t step = -1; // the rank's step its launch (or its start) fell in
};

struct RankColls
{
    int rank = 0;
    std::vector<Coll> colls;
    std::vector<Ev> steps;
    bool host = false; // the collectives are gloo's operators (a CPU run): causes are operators too
};

// Device events' classes, by (name id, kind), names read once.
class Classes
{
public:
    explicit Classes(const TraceStore& s) : m_store(s) {}
    Result<KernelClass> of(const Ev& e)
    {
        auto [it, added] = m_map.try_emplace(e.name * 16 + int64_t(e.kind), KernelClass::Other);
        if (added) {
            auto n = m_store.name(e.name);
            if (!n)
                return n.error();
            it->second = classifyKernel(*n, e.kind);
        }
        return it->second;
    }

private:
    const TraceStore& m_store;
    std::unordered_map<int64_t, KernelClass> m_map;
};

int64_t stepAt(const std::vector<Ev>& steps, int64_t t)
{
    int64_t at = -1;
    for (size_t i = 0; i < steps.size(); ++i)
        if (steps[i].start <= t && t < steps[i].end)
            at = int64_t(i);
    return at;
}

// Each device event of a rank, streamed in start order.
template <class F>
Result<bool> eachDeviceEvent(const TraceStore& store, const detail::RunScan& scan, int rank, F&& f)
{
    auto merge = detail::DeviceMerge::open(store, scan, rank);
    if (!merge)
        return merge.error();
    Ev e;
    while ((*merge)->next(e))
        if (auto r = f(e); !r)
            return r.error();
    if ((*merge)->error())
        return *(*merge)->error();
    return true;
}

// Names that are gloo's collectives (run or issued), by string id, read once.
class GlooNames
{
public:
    explicit GlooNames(const TraceStore& s) : m_store(s) {}
    // 0: not one; 1: issued (c10d::…); 2: run (gloo:…).
    Result<int> of(int64_t name)
    {
        auto [it, added] = m_map.try_emplace(name, 0);
        if (added) {
            auto n = m_store.name(name);
            if (!n)
                return n.error();
            bool issued = false;
            if (!detail::glooCollective(*n, issued).empty())
                it->second = issued ? 1 : 2;
        }
        return it->second;
    }

private:
    const TraceStore& m_store;
    std::unordered_map<int64_t, int> m_map;
};

// A CPU run's collectives: the operators gloo ran them as, by start.
Result<bool> readGlooCollectives(const TraceStore& store, const detail::RunScan& scan, RankColls& rc)
{
    GlooNames gloo(store);
    std::optional<Error> failed;
    auto r = detail::forEachRankEvent(store, scan, rc.rank, [&](const Ev& e) {
        if (e.device || e.kind != TraceKind::CpuOp || failed)
            return;
        auto g = gloo.of(e.name);
        if (!g)
            failed = g.error();
        else if (*g == 2)
            rc.colls.push_back({e.start, e.end, e.name, stepAt(rc.steps, e.start)});
    });
    if (!r)
        return r.error();
    if (failed)
        return *failed;
    std::sort(rc.colls.begin(), rc.colls.end(), [](const Coll& a, const Coll& b) { return a.start < b.start; });
    rc.host = !rc.colls.empty();
    return true;
}

Result<RankColls> readCollectives(const TraceStore& store, const detail::RunScan& scan, int rank, Classes& classes)
{
    auto host = detail::readHost(store, scan, rank);
    if (!host)
        return host.error();
    RankColls rc;
    rc.rank = rank;
    rc.steps = host->steps;
    auto r = eachDeviceEvent(store, scan, rank, [&](const Ev& e) -> Result<bool> {
        auto cls = classes.of(e);
        if (!cls)
            return cls.error();
        if (*cls != KernelClass::Communication)
            return true;
        const detail::Launch* l = e.corr >= 0 ? host->find(e.corr) : nullptr;
        rc.colls.push_back({e.start, e.end, e.name, stepAt(rc.steps, l ? l->first_start : e.start)});
        return true;
    });
    if (!r)
        return r.error();
    if (rc.colls.empty())
        if (auto g = readGlooCollectives(store, scan, rc); !g)
            return g.error();
    return rc;
}

int64_t median(std::vector<int64_t> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// How many collectives every rank ran alike, in order; a note where names part.
Result<int64_t> matchCollectives(const TraceStore& store, const std::vector<RankColls>& ranks, std::vector<std::string>& notes)
{
    size_t n = SIZE_MAX;
    for (const RankColls& r : ranks)
        n = std::min(n, r.colls.size());
    for (const RankColls& r : ranks)
        if (r.colls.size() != n)
            notes.push_back("rank " + std::to_string(r.rank) + " ran " + std::to_string(r.colls.size()) +
                            " collectives, the fewest any rank ran " + std::to_string(n) + ": the first " +
                            std::to_string(n) + " are compared");
    for (size_t j = 0; j < n; ++j)
        for (const RankColls& r : ranks)
            if (r.colls[j].name != ranks.front().colls[j].name) {
                auto a = store.name(ranks.front().colls[j].name);
                auto b = store.name(r.colls[j].name);
                if (!a || !b)
                    return a ? b.error() : a.error();
                notes.push_back("collective " + std::to_string(j) + " is " + *b + " on rank " + std::to_string(r.rank) +
                                " but " + *a + " on rank " + std::to_string(ranks.front().rank) +
                                ": the ranks are compared up to it");
                return int64_t(j);
            }
    return int64_t(n);
}

// Each rank's clock offset from the first rank's: the median difference of
// their collectives' ends.
std::vector<ClockCorrection> alignClocks(const std::vector<RankColls>& ranks, int64_t n)
{
    std::vector<ClockCorrection> out;
    for (const RankColls& r : ranks) {
        std::vector<int64_t> d;
        for (int64_t j = 0; j < n; ++j)
            d.push_back(r.colls[size_t(j)].end - ranks.front().colls[size_t(j)].end);
        ClockCorrection c{r.rank, median(d), 0};
        for (int64_t x : d)
            c.spread_ns = std::max(c.spread_ns, std::abs(x - c.offset_ns));
        out.push_back(c);
    }
    return out;
}

struct Wait
{
    int late = 0;       // index into ranks
    int64_t caused = 0; // the others' wait, summed
    std::vector<int64_t> wait_ns;
};

Wait waitAt(const std::vector<RankColls>& ranks, const std::vector<ClockCorrection>& clocks, int64_t j)
{
    Wait w;
    int64_t latest = INT64_MIN;
    std::vector<int64_t> arrival;
    for (size_t r = 0; r < ranks.size(); ++r) {
        arrival.push_back(ranks[r].colls[size_t(j)].start - clocks[r].offset_ns);
        if (arrival.back() > latest) {
            latest = arrival.back();
            w.late = int(r);
        }
    }
    for (int64_t a : arrival) {
        w.wait_ns.push_back(latest - a);
        w.caused += latest - a;
    }
    return w;
}

// The stretch before a collective on one rank: from the previous one's end
// (or the step's start) to its start, and the compute there by (name, layer).
struct Window
{
    int64_t from = 0, to = 0;
    std::map<std::pair<int64_t, int32_t>, int64_t> ns;
};

using Windows = std::vector<std::vector<Window>>; // per rank, one per reported step, in time order

// The waits at every matched collective (blame per rank), and per step (the
// first rank's) the late rank and its worst collective; the windows before
// those collectives on every rank, to look into.
Result<Windows> blameSteps(const TraceStore& store, const std::vector<RankColls>& ranks, StragglerReport& rep)
{
    // Per step (the first rank's), the collectives' waits.
    std::map<int64_t, std::vector<std::pair<int64_t, Wait>>> bySteps;
    for (int64_t j = 0; j < rep.matched; ++j) {
        Wait w = waitAt(ranks, rep.clocks, j);
        rep.blame[size_t(w.late)].wait_caused_ns += w.caused;
        ++rep.blame[size_t(w.late)].late_count;
        for (size_t r = 0; r < ranks.size(); ++r)
            rep.blame[r].waited_ns += w.wait_ns[r];
        bySteps[ranks.front().colls[size_t(j)].step].emplace_back(j, std::move(w));
    }
    // The windows to look into: before each step's worst collective, on every rank.
    std::vector<std::vector<Window>> windows(ranks.size()); // per rank, in step order
    for (auto& [step, waits] : bySteps) {
        StepStraggler s;
        s.step = step;
        s.collectives = int(waits.size());
        std::map<int, int64_t> caused;
        for (const auto& [j, w] : waits) {
            caused[w.late] += w.caused;
            s.wait_caused_ns += w.caused;
        }
        const int late = std::max_element(caused.begin(), caused.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
        s.late_rank = ranks[size_t(late)].rank;
        const auto worst = std::max_element(waits.begin(), waits.end(), [&](auto& a, auto& b) {
            return (a.second.late == late ? a.second.caused : -1) < (b.second.late == late ? b.second.caused : -1);
        });
        s.collective_index = worst->first;
        s.worst_wait_ns = worst->second.caused;
        s.wait_ns = worst->second.wait_ns;
        auto name = store.name(ranks[size_t(late)].colls[size_t(s.collective_index)].name);
        if (!name)
            return name.error();
        s.collective = *name;
        const Coll& c = ranks[size_t(late)].colls[size_t(s.collective_index)];
        s.collective_start_ns = c.start;
        s.collective_end_ns = c.end;
        s.window_start_ns = s.collective_index > 0 ? ranks[size_t(late)].colls[size_t(s.collective_index - 1)].end
                                                   : ranks[size_t(late)].steps.empty() ? c.start
                                                   : ranks[size_t(late)].steps.front().start;
        for (size_t r = 0; r < ranks.size(); ++r) {
            const RankColls& rc = ranks[r];
            const int64_t j = s.collective_index;
            windows[r].push_back({j > 0 ? rc.colls[size_t(j - 1)].end : INT64_MIN, rc.colls[size_t(j)].start, {}});
        }
        rep.steps.push_back(std::move(s));
    }
    return windows;
}

// A CPU run's operators in a rank's windows by (name, layer), each with its
// own time (its children's taken out, as a profiler's self time), gloo's
// and c10d's collective operators left out: what the rank was busy with.
Result<bool> fillHostWindows(const TraceStore& store, const detail::RunScan& scan, int rank, const std::vector<Window*>& ws)
{
    // A track's operators, parents before the children that start with them.
    std::map<int32_t, std::vector<Ev>> tracks;
    auto r = detail::forEachRankEvent(store, scan, rank, [&](const Ev& e) {
        if (!e.device && e.kind == TraceKind::CpuOp)
            tracks[e.track].push_back(e);
    });
    if (!r)
        return r.error();
    struct Open
    {
        int64_t end = 0;
        Window* window = nullptr;
        std::pair<int64_t, int32_t> key;
        bool counted = false; // a collective's operator is not
    };
    GlooNames gloo(store);
    for (auto& [track, evs] : tracks) {
        std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return std::tie(a.start, b.end, a.id) < std::tie(b.start, a.end, b.id); });
        std::vector<Open> stack;
        for (const Ev& e : evs) {
            while (!stack.empty() && (stack.back().end <= e.start || stack.back().end < e.end))
                stack.pop_back(); // ended, or not nested (taken as a sibling)
            auto it = std::upper_bound(ws.begin(), ws.end(), e.start, [](int64_t t, const Window* x) { return t < x->from; });
            Window* w = it == ws.begin() || e.start >= (*(it - 1))->to ? nullptr : *(it - 1);
            const int64_t own = w ? std::min(e.end, w->to) - e.start : 0;
            auto g = gloo.of(e.name);
            if (!g)
                return g.error();
            const bool counted = w && *g == 0;
            if (counted)
                w->ns[{e.name, e.layer}] += own;
            if (!stack.empty() && stack.back().counted && stack.back().window == w)
                w->ns[stack.back().key] -= own; // the parent's own time is what its children leave
            stack.push_back({e.end, w, {e.name, e.layer}, counted});
        }
    }
    return true;
}

// Each rank's compute (no communication) in its windows by (name, layer),
// its device events streamed once more.
Result<bool> fillWindows(const TraceStore& store, const detail::RunScan& scan, const std::vector<RankColls>& ranks,
                         Classes& classes, Windows& windows)
{
    for (size_t r = 0; r < ranks.size(); ++r) {
        // The windows are disjoint: by start, the last one starting at or before an event holds it.
        std::vector<Window*> ws;
        for (Window& w : windows[r])
            ws.push_back(&w);
        std::sort(ws.begin(), ws.end(), [](const Window* a, const Window* b) { return a->from < b->from; });
        if (ranks[r].host) {
            if (auto h = fillHostWindows(store, scan, ranks[r].rank, ws); !h)
                return h.error();
            continue;
        }
        auto each = eachDeviceEvent(store, scan, ranks[r].rank, [&](const Ev& e) -> Result<bool> {
            auto it = std::upper_bound(ws.begin(), ws.end(), e.start, [](int64_t t, const Window* x) { return t < x->from; });
            if (it == ws.begin() || e.start >= (*--it)->to)
                return true;
            Window* w = *it;
            auto cls = classes.of(e);
            if (!cls)
                return cls.error();
            if (*cls != KernelClass::Communication)
                w->ns[{e.name, e.layer}] += std::min(e.end, w->to) - e.start;
            return true;
        });
        if (!each)
            return each.error();
    }
    return true;
}

// Per reported step, the kernel the late rank spent longest on beyond the
// others' median in the same stretch, and its layer there.
Result<bool> nameCauses(const TraceStore& store, const std::vector<RankColls>& ranks, const Windows& windows, StragglerReport& rep)
{
    // The kernel the late rank spent longest on beyond the others' median.
    for (size_t k = 0; k < rep.steps.size(); ++k) {
        StepStraggler& s = rep.steps[k];
        size_t late = 0;
        while (ranks[late].rank != s.late_rank)
            ++late;
        std::vector<std::map<int64_t, int64_t>> byName(ranks.size()); // per rank: name -> time
        std::map<int64_t, std::pair<int32_t, int64_t>> lateLayer;      // name -> the late rank's layer with the most time
        for (size_t r = 0; r < ranks.size(); ++r)
            for (const auto& [key, ns] : windows[r][k].ns) {
                byName[r][key.first] += ns;
                if (r == late && ns > lateLayer[key.first].second)
                    lateLayer[key.first] = {key.second, ns};
            }
        int64_t bestName = -1;
        for (const auto& [name, ns] : byName[late]) {
            std::vector<int64_t> others;
            for (size_t r = 0; r < ranks.size(); ++r)
                if (r != late) {
                    auto it = byName[r].find(name);
                    others.push_back(it != byName[r].end() ? it->second : 0);
                }
            const int64_t excess = ns - median(others);
            if (excess > s.excess_ns) {
                s.excess_ns = excess;
                bestName = name;
            }
        }
        if (bestName >= 0) {
            auto nm = store.name(bestName);
            if (!nm)
                return nm.error();
            s.kernel = *nm;
            s.layer = lateLayer[bestName].first;
        }
    }
    return true;
}

} // namespace

Result<StragglerReport> findStragglers(const TraceStore& store, int64_t run)
{
    if (auto r = store.run(run); !r)
        return r.error();
    TraceStore::ReadScope scope(store);
    auto scan = detail::scanRun(store, run, false);
    if (!scan)
        return scan.error();
    StragglerReport rep;
    rep.ranks = int(scan->ranks.size());
    if (rep.ranks < 2) {
        rep.notes.push_back("the run has " + std::to_string(rep.ranks) + " rank" + (rep.ranks == 1 ? "" : "s") +
                            ": nobody to wait for");
        return rep;
    }
    Classes classes(store);
    std::vector<RankColls> ranks;
    for (const auto& [rank, tracks] : scan->ranks) {
        auto rc = readCollectives(store, *scan, rank, classes);
        if (!rc)
            return rc.error();
        ranks.push_back(std::move(*rc));
    }
    auto n = matchCollectives(store, ranks, rep.notes);
    if (!n)
        return n.error();
    rep.matched = *n;
    if (rep.matched == 0) {
        rep.notes.push_back("no collective that every rank ran (communication kernels: NCCL's, or collectives of a predicted "
                            "or CPU-backend run; else gloo's operators): no waits to attribute");
        return rep;
    }
    if (ranks.front().host)
        rep.notes.push_back("collectives: gloo's operators (a CPU run, no communication kernels); the causes named are "
                            "operators, by their own time");
    rep.clocks = alignClocks(ranks, rep.matched);
    for (const RankColls& r : ranks)
        rep.blame.push_back({r.rank, 0, 0, 0});
    auto windows = blameSteps(store, ranks, rep);
    if (!windows)
        return windows.error();
    if (auto f = fillWindows(store, *scan, ranks, classes, *windows); !f)
        return f.error();
    if (auto c = nameCauses(store, ranks, *windows, rep); !c)
        return c.error();
    return rep;
}

} // namespace partita
