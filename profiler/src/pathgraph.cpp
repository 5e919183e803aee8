#include "pathgraph.h"

#include "partita/profiler/analysis.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace partita::detail {

namespace {

// A kernel follows the one before it on its stream only when the gap is
// shorter than this; a longer one is the stream waiting on something the
// trace does not show (HTA's threshold, critical_path_analysis.py).
constexpr int64_t kStreamGapNs = 1'500'000;

// Host calls that wait for the device: their own duration is the wait, and
// the path goes through what they waited for (HTA's list, plus the driver's
// equivalents). cudaMemcpyAsync is left out as HTA leaves it (the runtime's
// lock gives it its duration back).
bool blocking(const std::string& n)
{
    return n == "cudaDeviceSynchronize" || n == "cudaStreamSynchronize" || n == "cudaEventSynchronize" ||
           n == "cudaEventQuery" || n == "cudaMemcpy" || n == "cuCtxSynchronize" || n == "cuStreamSynchronize" ||
           n == "cuEventSynchronize";
}

// "... stream 7" -> 7; -1 without one.
int64_t streamNumber(const std::string& track)
{
    auto at = track.rfind("stream ");
    if (at == std::string::npos)
        return -1;
    int64_t n = 0;
    size_t i = at + 7;
    if (i >= track.size() || !std::isdigit(static_cast<unsigned char>(track[i])))
        return -1;
    for (; i < track.size() && std::isdigit(static_cast<unsigned char>(track[i])); ++i)
        n = n * 10 + (track[i] - '0');
    return n;
}

} // namespace

void PathGraph::edge(int32_t from, int32_t to, int64_t weight, PathEdge type, int32_t charged)
{
    m_edges.push_back({from, to, std::max<int64_t>(0, weight), type, charged});
}

int64_t PathGraph::raw(int32_t node) const
{
    const Ev& e = m_ev[size_t(node / 2)].ev;
    return node % 2 ? e.end : e.start;
}

int64_t PathGraph::aligned(int32_t node) const { return raw(node) - m_ev[size_t(node / 2)].offset; }

// A thread's operators as a call stack, walked depth first: each node is
// reached from the one visited before it.
Result<bool> PathGraph::hostStacks(RankIndex& ix, NameCache& names)
{
    std::vector<bool> waits(size_t(ix.device0 - ix.host0));
    for (int32_t i = ix.host0; i < ix.device0; ++i) {
        if (m_ev[size_t(i)].ev.kind != TraceKind::Runtime)
            continue;
        auto n = names.get(m_ev[size_t(i)].ev.name);
        if (!n)
            return n.error();
        waits[size_t(i - ix.host0)] = blocking(**n);
    }
    std::vector<int32_t> open;
    int32_t prev = -1, track = -1;
    auto visit = [&](int32_t ev, bool end) {
        const int32_t node = 2 * ev + (end ? 1 : 0);
        if (prev >= 0) {
            const int32_t pev = prev / 2;
            const bool pend = prev % 2;
            const int64_t gap = raw(node) - raw(prev);
            if (!end)
                m_hostIn[size_t(ev)] = int32_t(m_edges.size()); // the edge made below
            else if (!pend && pev == ev)
                m_ownEdge[size_t(ev)] = int32_t(m_edges.size()); // a leaf's own time
            if (!pend && !end)
                edge(prev, node, gap, PathEdge::Operator, pev); // parent to its first child
            else if (!pend && end) // a leaf's own time; a blocking call's is waiting, and weighs nothing
                edge(prev, node, waits[size_t(ev - ix.host0)] ? 0 : gap, PathEdge::Operator, ev);
            else if (pend && !end) {
                if (open.empty())
                    edge(prev, node, 0, PathEdge::Dependency, -1); // top-level operators: the gap is not work
                else
                    edge(prev, node, gap, PathEdge::Operator, open.back());
            } else
                edge(prev, node, gap, PathEdge::Operator, ev); // last child to its parent's end
        }
        prev = node;
    };
    for (int32_t i = ix.host0; i < ix.device0; ++i) {
        const Ev& e = m_ev[size_t(i)].ev;
        if (e.track != track) {
            while (!open.empty()) {
                const int32_t top = open.back();
                open.pop_back();
                visit(top, true);
            }
            track = e.track;
            prev = -1;
        }
        // Close what ended before this starts, and what this outlasts (not
        // nested: taken as a sibling).
        while (!open.empty() && (m_ev[size_t(open.back())].ev.end <= e.start || m_ev[size_t(open.back())].ev.end < e.end)) {
            const int32_t top = open.back();
            open.pop_back();
            visit(top, true);
        }
        visit(i, false);
        open.push_back(i);
        if (e.kind == TraceKind::Runtime && e.corr >= 0)
            ix.runtimeByCorr.emplace(e.corr, i);
    }
    while (!open.empty()) {
        const int32_t top = open.back();
        open.pop_back();
        visit(top, true);
    }
    return true;
}

// The last event on the stream that started by `t`; -1 if none.
static int32_t lastStartedBy(const std::vector<int32_t>& stream, const std::vector<GraphEvent>& ev, int64_t t)
{
    auto it = std::upper_bound(stream.begin(), stream.end(), t, [&](int64_t v, int32_t i) { return v < ev[size_t(i)].ev.start; });
    return it == stream.begin() ? -1 : *(it - 1);
}

// Kernel to kernel on a stream, launches, and each event's own time.
void PathGraph::streams(RankIndex& ix)
{
    if (!ix.window->launches)
        crossStreams(ix);
    for (const auto& [position, evs] : ix.streams) {
        int32_t prev = -1;
        for (int32_t k : evs) {
            const Ev& e = m_ev[size_t(k)].ev;
            m_ownEdge[size_t(k)] = int32_t(m_edges.size());
            edge(2 * k, 2 * k + 1, e.end - e.start, PathEdge::Device, k);
            auto r = e.corr >= 0 ? ix.runtimeByCorr.find(e.corr) : ix.runtimeByCorr.end();
            const int32_t rt = r == ix.runtimeByCorr.end() ? -1 : r->second;
            const int64_t rtStart = rt >= 0 ? m_ev[size_t(rt)].ev.start : 0;
            // A CUDA graph's kernels share its launch's correlation: after the
            // first on a stream, each waits for the one before it.
            const bool graphNext = rt >= 0 && prev >= 0 && m_ev[size_t(prev)].ev.corr == e.corr;
            auto waited = ix.waitedUntil.find(k);
            const bool idle = prev < 0 || m_ev[size_t(prev)].ev.end < rtStart;
            if (rt >= 0 && !graphNext && idle && (waited == ix.waitedUntil.end() || waited->second < rtStart)) {
                edge(2 * rt, 2 * k, e.start - rtStart, PathEdge::Launch, -1);
            } else {
                if (prev >= 0) {
                    const int64_t gap = e.start - m_ev[size_t(prev)].ev.end;
                    // A stream wait that ended after the kernel before is what this one waited for.
                    const bool waitedLater = waited != ix.waitedUntil.end() && waited->second >= m_ev[size_t(prev)].ev.end;
                    if (!ix.released.empty() && ix.released[size_t(k - ix.device0)]) // the other stream's event explains the gap: only the order is kept
                        edge(2 * prev + 1, 2 * k, 0, PathEdge::Dependency, -1);
                    else if (!waitedLater && (graphNext || !ix.window->launches || gap < kStreamGapNs))
                        edge(2 * prev + 1, 2 * k, gap, PathEdge::StreamGap, prev);
                }
                if (rt >= 0)
                    edge(2 * rt, 2 * k, 0, PathEdge::Launch, -1); // causal, not waited on
            }
            prev = k;
        }
    }
}

// With no launches to say what released a stream (a CPU backend's threads,
// a prediction, events without their host side), an event that started
// after its stream's previous one ended waited for the event of another
// stream of its rank that ended last before it: the gradients its
// all-reduce sends, the all-reduce the next layer's GEMM needs.
void PathGraph::crossStreams(RankIndex& ix)
{
    ix.released.assign(size_t(ix.end - ix.device0), false);
    std::vector<int32_t> byEnd;
    for (int32_t i = ix.device0; i < ix.end; ++i)
        byEnd.push_back(i);
    std::sort(byEnd.begin(), byEnd.end(), [&](int32_t a, int32_t b) { return m_ev[size_t(a)].ev.end < m_ev[size_t(b)].ev.end; });
    std::vector<int64_t> ends(byEnd.size()); // searched without touching the events
    std::vector<int32_t> tracks(byEnd.size());
    for (size_t i = 0; i < byEnd.size(); ++i) {
        ends[i] = m_ev[size_t(byEnd[i])].ev.end;
        tracks[i] = m_ev[size_t(byEnd[i])].ev.track;
    }
    for (const auto& [position, evs] : ix.streams) {
        int64_t prevEnd = INT64_MIN;
        size_t from = 0; // the stream's events come by start: the search only moves on
        for (int32_t k : evs) {
            const Ev& e = m_ev[size_t(k)].ev;
            size_t step = 1;
            while (from + step < ends.size() && ends[from + step] <= e.start)
                step *= 2;
            from = size_t(std::upper_bound(ends.begin() + long(from), ends.begin() + long(std::min(from + step, ends.size())), e.start) -
                          ends.begin());
            for (size_t at = from; at > 0 && ends[at - 1] > prevEnd; --at) {
                if (tracks[at - 1] != e.track) {
                    const int32_t o = byEnd[at - 1];
                    edge(2 * o + 1, 2 * k, e.start - ends[at - 1], PathEdge::StreamGap, o);
                    ix.released[size_t(k - ix.device0)] = true;
                    break;
                }
            }
            prevEnd = std::max(prevEnd, e.end);
        }
    }
}

// Zero-weight edges from the kernel a synchronization waited for.
void PathGraph::syncs(RankIndex& ix)
{
    const RankWindow& w = *ix.window;
    std::unordered_map<int64_t, size_t> call; // every runtime call of the window by correlation
    for (size_t i = 0; i < w.runtime.size(); ++i)
        if (w.runtime[i].corr >= 0)
            call.emplace(w.runtime[i].corr, i);
    auto launchStart = [&](int32_t k) {
        auto c = call.find(m_ev[size_t(k)].ev.corr);
        return c == call.end() ? INT64_MIN : w.runtime[c->second].start;
    };
    // The last kernel launched on `stream` before the event record `corr`.
    auto recorded = [&](int64_t stream, int64_t corr) -> int32_t {
        auto rec = call.find(corr);
        auto pos = ix.trackOfStream.find(stream);
        if (rec == call.end() || pos == ix.trackOfStream.end())
            return -1;
        int32_t best = -1;
        for (int32_t k : ix.streams[pos->second])
            if (launchStart(k) < w.runtime[rec->second].start && (best < 0 || launchStart(k) >= launchStart(best)))
                best = k;
        return best;
    };
    for (const SyncRecord& s : w.syncs) {
        auto rt = ix.runtimeByCorr.find(s.corr);
        const int32_t target = rt == ix.runtimeByCorr.end() ? -1 : 2 * rt->second + 1;
        if (s.kind == SyncRecord::Context || s.kind == SyncRecord::Stream) {
            if (target < 0)
                continue;
            for (const auto& [position, evs] : ix.streams) {
                if (s.kind == SyncRecord::Stream && (!ix.trackOfStream.count(s.stream) || ix.trackOfStream[s.stream] != position))
                    continue;
                if (int32_t k = lastStartedBy(evs, m_ev, s.end); k >= 0)
                    edge(2 * k + 1, target, 0, PathEdge::Sync, -1);
            }
        } else if (s.kind == SyncRecord::Event) {
            if (int32_t k = recorded(s.wait_on_stream, s.record_corr); k >= 0 && target >= 0)
                edge(2 * k + 1, target, 0, PathEdge::Sync, -1);
        } else if (int32_t k = recorded(s.wait_on_stream, s.record_corr); k >= 0) {
            // A stream waits on an event: the next kernel launched on it
            // from the waiting call's thread starts after the one recorded.
            auto waitCall = call.find(s.corr);
            auto pos = ix.trackOfStream.find(s.stream);
            if (waitCall == call.end() || pos == ix.trackOfStream.end())
                continue;
            const Ev& wc = w.runtime[waitCall->second];
            for (size_t i = waitCall->second + 1; i < w.runtime.size(); ++i) {
                const Ev& next = w.runtime[i];
                if (next.track != wc.track)
                    continue;
                auto d = ix.deviceByCorr.find(next.corr);
                if (d == ix.deviceByCorr.end() || m_ev[size_t(d->second.front())].ev.track != pos->second)
                    continue;
                const int32_t kt = d->second.front();
                edge(2 * k + 1, 2 * kt, 0, PathEdge::Sync, -1);
                int64_t& until = ix.waitedUntil[kt];
                until = std::max(until, m_ev[size_t(k)].ev.end);
                break;
            }
        }
    }
}

Result<bool> PathGraph::build(const RunScan& scan, std::vector<RankWindow>& ranks, NameCache& names, CriticalPath& out)
{
    std::vector<RankIndex> ixs;
    size_t events = 0;
    for (const RankWindow& w : ranks)
        events += w.host.size() + w.device.size();
    m_ev.reserve(events);
    m_edges.reserve(3 * events);
    for (RankWindow& w : ranks) {
        std::sort(w.host.begin(), w.host.end(), [](const Ev& a, const Ev& b) {
            return std::tie(a.track, a.start, b.end, a.id) < std::tie(b.track, b.start, a.end, b.id); // parents first
        });
        std::sort(w.device.begin(), w.device.end(),
                  [](const Ev& a, const Ev& b) { return std::tie(a.track, a.start, a.id) < std::tie(b.track, b.start, b.id); });
        RankIndex ix;
        ix.rank = w.rank;
        ix.window = &w;
        ix.host0 = int32_t(m_ev.size());
        for (const Ev& e : w.host)
            m_ev.push_back({e, w.rank, 0});
        ix.device0 = int32_t(m_ev.size());
        for (const Ev& e : w.device)
            m_ev.push_back({e, w.rank, 0});
        ix.end = int32_t(m_ev.size());
        m_ownEdge.resize(m_ev.size(), -1);
        m_hostIn.resize(m_ev.size(), -1);
        for (int32_t i = ix.device0; i < ix.end; ++i) {
            const Ev& e = m_ev[size_t(i)].ev;
            ix.streams[e.track].push_back(i);
            if (e.corr >= 0)
                ix.deviceByCorr[e.corr].push_back(i);
        }
        for (const auto& [position, evs] : ix.streams)
            if (int64_t s = streamNumber(scan.tracks[size_t(position)].name); s >= 0)
                ix.trackOfStream.emplace(s, position);
        if (auto r = hostStacks(ix, names); !r)
            return r.error();
        syncs(ix);
        streams(ix);
        ixs.push_back(std::move(ix));
    }
    if (auto r = collectives(ixs, names, out); !r)
        return r.error();
    if (auto r = sendRecv(ixs, names, out); !r)
        return r.error();
    return true;
}

Result<std::vector<int32_t>> PathGraph::longest(int64_t& length) const
{
    const size_t nodes = 2 * m_ev.size();
    std::vector<int32_t> first(nodes + 1, 0), out(m_edges.size()), indeg(nodes, 0);
    for (const GraphEdge& e : m_edges) {
        ++first[size_t(e.from) + 1];
        ++indeg[size_t(e.to)];
    }
    for (size_t i = 0; i < nodes; ++i)
        first[i + 1] += first[i];
    {
        std::vector<int32_t> at(first.begin(), first.end() - 1);
        for (size_t e = 0; e < m_edges.size(); ++e)
            out[size_t(at[size_t(m_edges[e].from)]++)] = int32_t(e);
    }
    std::vector<int32_t> order;
    order.reserve(nodes);
    for (size_t i = 0; i < nodes; ++i)
        if (indeg[i] == 0)
            order.push_back(int32_t(i));
    std::vector<int64_t> dist(nodes, 0);
    std::vector<int32_t> pred(nodes, -1);
    for (size_t head = 0; head < order.size(); ++head) {
        const int32_t u = order[head];
        for (int32_t j = first[size_t(u)]; j < first[size_t(u) + 1]; ++j) {
            const GraphEdge& e = m_edges[size_t(out[size_t(j)])];
            const int64_t d = dist[size_t(u)] + e.weight;
            if (pred[size_t(e.to)] < 0 || d > dist[size_t(e.to)]) {
                dist[size_t(e.to)] = d;
                pred[size_t(e.to)] = out[size_t(j)];
            }
            if (--indeg[size_t(e.to)] == 0)
                order.push_back(e.to);
        }
    }
    if (order.size() != nodes)
        return Error{{}, "critical path", "the trace's dependencies form a cycle (" + std::to_string(nodes - order.size()) +
                                              " events on it): are the ranks' collectives in the same order?"};
    length = 0;
    int32_t end = -1;
    for (int32_t u : order)
        if (end < 0 || dist[size_t(u)] > length) {
            end = u;
            length = dist[size_t(u)];
        }
    std::vector<int32_t> path;
    for (int32_t u = end; u >= 0 && pred[size_t(u)] >= 0; u = m_edges[size_t(pred[size_t(u)])].from)
        path.push_back(pred[size_t(u)]);
    std::reverse(path.begin(), path.end());
    return path;
}

} // namespace partita::detail
