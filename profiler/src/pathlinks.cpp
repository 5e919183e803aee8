// The critical path's links between ranks: collectives (on the devices, or
// on a CPU backend's threads: gloo) and pipeline sends and receives; and,
// for gloo, from the operator that issued a collective to the thread that
// ran it and back to the thread that waited for it.
#include "pathgraph.h"
#include "runstream.h"

#include "partita/profiler/analysis.h"

#include <algorithm>

namespace partita::detail {

namespace {

// Partita's executors name pipeline transfers "send mb3 to rank 5 …" and
// "recv mb3 from rank 2 …": the peer, or -1.
int peerOf(const std::string& name, bool& send)
{
    auto number = [&](size_t at) {
        int n = 0;
        bool any = false;
        for (; at < name.size() && std::isdigit(static_cast<unsigned char>(name[at])); ++at, any = true)
            n = n * 10 + (name[at] - '0');
        return any ? n : -1;
    };
    if (name.rfind("send", 0) == 0)
        if (auto at = name.find(" to rank "); at != std::string::npos) {
            send = true;
            return number(at + 9);
        }
    if (name.rfind("recv", 0) == 0)
        if (auto at = name.find(" from rank "); at != std::string::npos) {
            send = false;
            return number(at + 11);
        }
    return -1;
}

int64_t median(std::vector<int64_t> v)
{
    if (v.empty())
        return 0;
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    return v[v.size() / 2];
}

} // namespace

// A collective ends on every rank when its last rank arrives: each rank's
// end is reached from that rank's start. The ranks' clocks are aligned on
// the collectives' ends first: the devices', else gloo's.
Result<bool> PathGraph::collectives(const std::vector<RankIndex>& ixs, NameCache& names, CriticalPath& out)
{
    auto host = hostCollectives(ixs, names);
    if (!host)
        return host.error();
    if (ixs.size() < 2)
        return true;
    PerRank colls(ixs.size());
    int64_t unpaired = 0;
    for (size_t r = 0; r < ixs.size(); ++r) {
        for (int32_t i = ixs[r].device0; i < ixs[r].end; ++i) {
            const Ev& e = m_ev[size_t(i)].ev;
            auto n = names.get(e.name);
            if (!n)
                return n.error();
            bool send = false;
            if (classifyKernel(**n, e.kind) != KernelClass::Communication || e.kind == TraceKind::P2P || peerOf(**n, send) >= 0)
                continue;
            if ((*n)->find("SendRecv") != std::string::npos) {
                ++unpaired; // NCCL's point-to-point kernel names no peer
                continue;
            }
            colls[r].push_back(i);
        }
        std::sort(colls[r].begin(), colls[r].end(), [&](int32_t a, int32_t b) { return m_ev[size_t(a)].ev.start < m_ev[size_t(b)].ev.start; });
    }
    if (unpaired > 0)
        out.notes.push_back(std::to_string(unpaired) + " point-to-point kernels name no peer (NCCL's SendRecv): not linked across ranks");
    const size_t onDevices = matchCollectives(colls, "collectives", out);
    const size_t onThreads = matchCollectives(*host, "gloo collectives", out);
    const PerRank& clock = onDevices > 0 || onThreads == 0 ? colls : *host;
    const size_t matched = onDevices > 0 || onThreads == 0 ? onDevices : onThreads;
    for (size_t r = 0; r < ixs.size(); ++r) {
        std::vector<int64_t> d;
        for (size_t i = 0; i < matched; ++i)
            d.push_back(m_ev[size_t(clock[r][i])].ev.end - m_ev[size_t(clock[0][i])].ev.end);
        const int64_t offset = median(d);
        for (int32_t j = ixs[r].host0; j < ixs[r].end; ++j)
            m_ev[size_t(j)].offset = offset;
        int64_t spread = 0;
        for (size_t i = 0; i < matched; ++i)
            spread = std::max(spread, std::abs(aligned(2 * clock[r][i] + 1) - aligned(2 * clock[0][i] + 1)));
        out.clocks.push_back({ixs[r].rank, offset, spread});
    }
    linkCollectives(colls, onDevices);
    linkCollectives(*host, onThreads);
    return true;
}

// How many of the ranks' collectives (each rank's by start) are the same
// one, from the first; a note when some are left over.
size_t PathGraph::matchCollectives(const PerRank& colls, const char* what, CriticalPath& out) const
{
    size_t n = colls[0].size(), most = 0;
    for (const auto& c : colls) {
        n = std::min(n, c.size());
        most = std::max(most, c.size());
    }
    size_t matched = 0;
    for (; matched < n; ++matched) {
        const int64_t name = m_ev[size_t(colls[0][matched])].ev.name;
        if (std::any_of(colls.begin(), colls.end(), [&](const auto& c) { return m_ev[size_t(c[matched])].ev.name != name; }))
            break;
    }
    if (matched < most)
        out.notes.push_back(std::string(what) + " matched across ranks: " + std::to_string(matched) + " of up to " + std::to_string(most) +
                            (matched < n ? " (the ranks' collectives part at #" + std::to_string(matched) + ")" : " (ranks ran different numbers)"));
    return matched;
}

void PathGraph::linkCollectives(const PerRank& colls, size_t matched)
{
    for (size_t i = 0; i < matched; ++i) {
        size_t late = 0;
        for (size_t r = 1; r < colls.size(); ++r)
            if (aligned(2 * colls[r][i]) > aligned(2 * colls[late][i]))
                late = r;
        const int32_t from = 2 * colls[late][i];
        for (size_t r = 0; r < colls.size(); ++r) {
            if (r == late)
                continue;
            const int32_t k = colls[r][i];
            const int64_t transfer = std::max<int64_t>(0, aligned(2 * k + 1) - aligned(from));
            edge(from, 2 * k + 1, transfer, PathEdge::Collective, k);
            // An early rank's collective is waiting until the last one
            // arrives: only what follows the arrival is its work.
            if (const int32_t own = m_ownEdge[size_t(k)]; own >= 0)
                m_edges[size_t(own)].weight = std::min(m_edges[size_t(own)].weight, transfer);
        }
    }
}

// Each rank's gloo collectives, by start. Each is reached from the c10d
// operator that issued it (the k-th of its kind on the rank with the k-th),
// and the issuing thread's first event after it ended follows it: that
// thread waited for it (DDP's reducer, at the end of backward), and the gap
// before that event is work only from the collective's end on.
Result<PathGraph::PerRank> PathGraph::hostCollectives(const std::vector<RankIndex>& ixs, NameCache& names)
{
    PerRank out(ixs.size());
    for (size_t r = 0; r < ixs.size(); ++r) {
        const RankIndex& ix = ixs[r];
        std::map<std::string, std::pair<std::vector<int32_t>, std::vector<int32_t>>> byOp; // op -> (issued, run)
        std::map<int32_t, std::vector<int32_t>> threads;                                   // track -> its events by start
        for (int32_t i = ix.host0; i < ix.device0; ++i) {
            const Ev& e = m_ev[size_t(i)].ev;
            threads[e.track].push_back(i);
            auto n = names.get(e.name);
            if (!n)
                return n.error();
            bool issued = false;
            const std::string op = glooCollective(**n, issued);
            if (op.empty())
                continue;
            (issued ? byOp[op].first : byOp[op].second).push_back(i);
            if (!issued)
                out[r].push_back(i);
        }
        auto byStart = [&](int32_t a, int32_t b) { return m_ev[size_t(a)].ev.start < m_ev[size_t(b)].ev.start; };
        std::sort(out[r].begin(), out[r].end(), byStart);
        for (auto& [op, pair] : byOp) {
            auto& [issued, run] = pair;
            std::sort(issued.begin(), issued.end(), byStart);
            std::sort(run.begin(), run.end(), byStart);
            for (size_t k = 0; k < std::min(issued.size(), run.size()); ++k) {
                const Ev& call = m_ev[size_t(issued[k])].ev;
                const Ev& coll = m_ev[size_t(run[k])].ev;
                if (coll.start < call.start || coll.track == call.track)
                    continue; // not what this call issued (no edge back in time), or run inside it on its own thread
                edge(2 * issued[k], 2 * run[k], coll.start - call.start, PathEdge::Launch, -1);
                const auto& thread = threads[call.track]; // by start: hostStacks' order
                auto next = std::lower_bound(thread.begin(), thread.end(), coll.end,
                                             [&](int32_t i, int64_t t) { return m_ev[size_t(i)].ev.start < t; });
                if (next == thread.end())
                    continue;
                edge(2 * run[k] + 1, 2 * *next, 0, PathEdge::Sync, -1);
                if (const int32_t in = m_hostIn[size_t(*next)]; in >= 0)
                    m_edges[size_t(in)].weight = std::min(m_edges[size_t(in)].weight, m_ev[size_t(*next)].ev.start - coll.end);
            }
        }
    }
    return out;
}

// A pipeline receive ends after its send starts: the k-th send from one
// rank to another with the k-th receive there from it.
Result<bool> PathGraph::sendRecv(const std::vector<RankIndex>& ixs, NameCache& names, CriticalPath& out)
{
    std::map<std::pair<int, int>, std::vector<int32_t>> sends, recvs; // (from, to)
    for (const RankIndex& ix : ixs)
        for (int32_t i = ix.device0; i < ix.end; ++i) {
            auto n = names.get(m_ev[size_t(i)].ev.name);
            if (!n)
                return n.error();
            bool send = false;
            const int peer = peerOf(**n, send);
            if (peer < 0)
                continue;
            (send ? sends[{ix.rank, peer}] : recvs[{peer, ix.rank}]).push_back(i);
        }
    int64_t unmatched = 0;
    auto byStart = [&](int32_t a, int32_t b) { return m_ev[size_t(a)].ev.start < m_ev[size_t(b)].ev.start; };
    for (auto& [pair, ss] : sends) {
        auto& rs = recvs[pair];
        std::sort(ss.begin(), ss.end(), byStart);
        std::sort(rs.begin(), rs.end(), byStart);
        const size_t n = std::min(ss.size(), rs.size());
        unmatched += int64_t(ss.size() + rs.size() - 2 * n);
        for (size_t k = 0; k < n; ++k) {
            const int64_t transfer = std::max<int64_t>(0, aligned(2 * rs[k] + 1) - aligned(2 * ss[k]));
            edge(2 * ss[k], 2 * rs[k] + 1, transfer, PathEdge::P2P, rs[k]);
            // Before the send started the receive was waiting, not working.
            if (const int32_t own = m_ownEdge[size_t(rs[k])]; own >= 0)
                m_edges[size_t(own)].weight = std::min(m_edges[size_t(own)].weight, transfer);
        }
    }
    for (const auto& [pair, rs] : recvs)
        if (!sends.count(pair))
            unmatched += int64_t(rs.size());
    if (unmatched > 0)
        out.notes.push_back(std::to_string(unmatched) + " sends or receives have no partner in the window (its rank absent or outside it)");
    return true;
}

} // namespace partita::detail
