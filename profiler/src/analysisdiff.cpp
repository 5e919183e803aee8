// The diff of two stored runs (analysis.h), streamed like the analyses:
// HTA's ops diff of one rank's step, steps aligned by index, device time
// per layer, and each rank's temporal breakdown in both.
#include "partita/profiler/analysis.h"

#include "runstream.h"

#include <cctype>
#include <map>
#include <set>

namespace partita {

namespace {

using detail::Ev;

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

struct Ops
{
    int64_t count = 0, ns = 0;
};

// One compared rank: its events in the diff's scope, counted per step and
// name (HTA: a host event belongs to the step that contains its start, the
// last such step in order; a device event to the step of its launch).
struct Iterated
{
    std::map<int64_t, std::map<int64_t, Ops>> byIteration; // step number (-1: the whole run) -> name id -> ops
    std::set<int64_t> steps;                               // step numbers present
    std::vector<int64_t> step_ns;                          // the rank's steps, in order
};

Result<Iterated> iterate(const TraceStore& store, const detail::RunScan& scan, int rank, DiffScope scope)
{
    auto host = detail::readHost(store, scan, rank);
    if (!host)
        return host.error();
    Iterated out;
    std::vector<int64_t> numbers;
    for (size_t i = 0; i < host->steps.size(); ++i) {
        const Ev& s = host->steps[i];
        out.step_ns.push_back(s.end - s.start);
        auto name = store.name(s.name);
        if (!name)
            return name.error();
        numbers.push_back(stepNumber(*name, int64_t(i)));
    }
    out.steps.insert(numbers.begin(), numbers.end());
    if (numbers.empty())
        out.steps.insert(-1);
    auto hostIteration = [&](int64_t t) -> int64_t {
        int64_t it = -1;
        for (size_t i = 0; i < host->steps.size(); ++i)
            if (host->steps[i].start <= t && t < host->steps[i].end)
                it = numbers[i];
        return it;
    };
    auto each = detail::forEachRankEvent(store, scan, rank, [&](const Ev& e) {
        if (scope != DiffScope::All && (scope == DiffScope::Gpu) != e.device)
            return;
        int64_t it = -1;
        if (numbers.empty()) {
            it = -1;
        } else if (e.device && e.corr >= 0) {
            const detail::Launch* l = host->find(e.corr);
            if (!l)
                return;
            it = hostIteration(l->first_start);
        } else {
            it = hostIteration(e.start);
        }
        if (it < 0 && !numbers.empty())
            return;
        Ops& o = out.byIteration[it][e.name];
        ++o.count;
        o.ns += e.end - e.start;
    });
    if (!each)
        return each.error();
    return out;
}

Result<int> pickRank(const TraceStore& store, const detail::RunScan& scan, int64_t id, const DiffOptions& options)
{
    if (scan.ranks.empty())
        return Error{store.path(), "run " + std::to_string(id), "the run has no events"};
    if (options.rank) {
        if (!scan.ranks.count(*options.rank))
            return Error{store.path(), "run " + std::to_string(id), "has no rank " + std::to_string(*options.rank)};
        return *options.rank;
    }
    return scan.ranks.begin()->first;
}

Result<int64_t> pickIteration(const TraceStore& store, const Iterated& it, int64_t id, const DiffOptions& options)
{
    if (options.iteration) {
        if (!it.steps.count(*options.iteration))
            return Error{store.path(), "run " + std::to_string(id), "has no step " + std::to_string(*options.iteration)};
        return *options.iteration;
    }
    if (it.byIteration.empty())
        return it.steps.empty() ? Result<int64_t>(Error{store.path(), "run " + std::to_string(id), "no events"})
                                : Result<int64_t>(*it.steps.begin());
    return it.byIteration.begin()->first;
}

// HTA's ops diff of the two chosen steps, by name.
Result<std::vector<OpsDiffRow>> opsDiff(const TraceStore& store, const Iterated& ia, int64_t xa, const Iterated& ib, int64_t xb)
{
    std::map<std::string, OpsDiffRow> rows;
    auto add = [&](const Iterated& it, int64_t x, bool first) -> Result<bool> {
        auto f = it.byIteration.find(x);
        if (f == it.byIteration.end())
            return true;
        for (const auto& [nameId, ops] : f->second) {
            auto n = store.name(nameId);
            if (!n)
                return n.error();
            OpsDiffRow& r = rows[*n];
            (first ? r.a_count : r.b_count) += ops.count;
            (first ? r.a_ns : r.b_ns) += ops.ns;
        }
        return true;
    };
    if (auto r = add(ia, xa, true); !r)
        return r.error();
    if (auto r = add(ib, xb, false); !r)
        return r.error();
    std::vector<OpsDiffRow> out;
    for (auto& [name, r] : rows) {
        r.name = name;
        const int64_t diff = r.b_count - r.a_count;
        r.change = r.a_count == 0 && r.b_count > 0 ? "added"
                   : r.a_count > 0 && r.b_count == 0 ? "deleted"
                   : diff > 0                        ? "increased"
                   : diff < 0                        ? "decreased"
                                                     : "unchanged";
        out.push_back(r);
    }
    return out;
}

} // namespace

Result<RunDiff> diffRuns(const TraceStore& store, int64_t a, int64_t b, const DiffOptions& options)
{
    for (int64_t id : {a, b})
        if (auto r = store.run(id); !r)
            return r.error();
    TraceStore::ReadScope scope(store);
    auto sa = detail::scanRun(store, a, false);
    if (!sa)
        return sa.error();
    auto sb = detail::scanRun(store, b, false);
    if (!sb)
        return sb.error();
    RunDiff d;
    auto ra = pickRank(store, *sa, a, options);
    if (!ra)
        return ra.error();
    auto rb = pickRank(store, *sb, b, options);
    if (!rb)
        return rb.error();
    d.rank_a = *ra;
    d.rank_b = *rb;
    auto ia = iterate(store, *sa, *ra, options.scope);
    if (!ia)
        return ia.error();
    auto ib = iterate(store, *sb, *rb, options.scope);
    if (!ib)
        return ib.error();
    auto xa = pickIteration(store, *ia, a, options);
    if (!xa)
        return xa.error();
    auto xb = pickIteration(store, *ib, b, options);
    if (!xb)
        return xb.error();
    d.iteration_a = *xa;
    d.iteration_b = *xb;
    auto ops = opsDiff(store, *ia, *xa, *ib, *xb);
    if (!ops)
        return ops.error();
    d.ops = std::move(*ops);
    // Steps aligned by index, on the compared ranks.
    for (size_t i = 0; i < std::max(ia->step_ns.size(), ib->step_ns.size()); ++i)
        d.steps.push_back({int(i), i < ia->step_ns.size() ? ia->step_ns[i] : 0, i < ib->step_ns.size() ? ib->step_ns[i] : 0});
    // Both runs analyzed alike (HTA's defaults, unrounded, as scanned above),
    // with every device event's time per layer on all ranks beside.
    std::map<int32_t, int64_t> layersA, layersB;
    auto aa = detail::analyzeStreamed(store, *sa, a, {}, &layersA);
    if (!aa)
        return aa.error();
    auto ab = detail::analyzeStreamed(store, *sb, b, {}, &layersB);
    if (!ab)
        return ab.error();
    std::map<int32_t, LayerDelta> layers;
    for (const auto& [id, ns] : layersA)
        layers[id] = {id, ns, 0};
    for (const auto& [id, ns] : layersB) {
        layers[id].layer = id;
        layers[id].b_ns = ns;
    }
    for (auto& [id, l] : layers)
        d.layers.push_back(l);
    for (const auto& x : aa->ranks)
        for (const auto& y : ab->ranks)
            if (x.rank == y.rank)
                d.ranks.push_back({x.rank, x.temporal, y.temporal});
    return d;
}

} // namespace partita
