// The simulator's gradient synchronization (simrun.h): per stage, its
// buckets on the data-parallel stream in the order their gradients become
// ready, all-reduce, ZeRO's reduce-scatter, sparse all-gathers, sufficient
// factors, and the parameter servers' phase. Every constant names its source.
#include "simrun.h"

#include "layerfacts.h"

#include <algorithm>
#include <numeric>

namespace partita::sim {

// Sparse embeddings: only the rows the tokens touch, with their indices.
double PlanRun::sparseRows(const Layer& l, double tokens) const
{
    return detail::sparseRowsBytes(l, tokens, x.seq, m.seq_len, gradBytes);
}

double PlanRun::layerSync(size_t i) const
{
    const Layer& l = m.layers[i];
    const SyncAtom& a = r.layers[i].sync;
    if (dpAll <= 1 || a.method == SyncMethod::None || l.params.empty())
        return 0;
    const double bytes = detail::syncPayloadBytes(l, r.layers[i], s, gradBytes);
    const bool sparse = l.sparse_grad && a.sparse && a.method != SyncMethod::SFB;
    const double workerBytes = sparse ? sparseRows(l, tokensPerWorker) : bytes;
    switch (a.method) {
    case SyncMethod::AllReduce:
        if (sparse) // all-gather of every worker's rows
            return collectiveTime(Collective::AllGather, workerBytes * dpAll, dpg, node, x.cal);
        if (s.zero_stage >= 1) // ZeRO: reduce-scatter now, all-gather parameters after the update
            return collectiveTime(Collective::ReduceScatter, bytes, dpg, node, x.cal);
        return collectiveTime(Collective::AllReduce, bytes, dpg, node, x.cal, a.algorithm);
    case SyncMethod::ParameterServer: {
        // Alone (no other PS variable in the class): the PS phase's bound.
        const PsVolume v = psVolume(i);
        const Paths p = pathsOf(node, x.cal);
        const int nodes = std::max(1, int(c.nodes.size()));
        const int k = std::clamp(a.ps_shards > 0 ? a.ps_shards : nodes, 1, nodes);
        const double servers = a.ps_placement == PsPlacement::SingleServer ? 1 : k;
        return (v.perPush * v.pushersPerNode + v.pushers * v.perPush / servers) / p.interBw + 2 * p.interLat + v.intra;
    }
    case SyncMethod::SFB: {
        // Sufficient factors: each worker broadcasts u (K x M) and v (K x N)
        // of its K rows to the other P-1 workers (Xie et al. 2016; Poseidon).
        const double factors = tokensPerWorker * (double(l.dims.out_features) + double(l.dims.in_features)) * x.ab;
        return collectiveTime(Collective::AllGather, factors * dpAll, dpg, node, x.cal);
    }
    case SyncMethod::None: return 0;
    }
    return 0;
}

PlanRun::PsVolume PlanRun::psVolume(size_t i) const
{
    PsVolume v;
    const Layer& l = m.layers[i];
    const SyncAtom& a = r.layers[i].sync;
    if (dpAll <= 1 || l.params.empty())
        return v;
    const bool localAgg = a.ps_local_replication && dpg.per_node > 1;
    double bytes = detail::paramsLocal(l, r.layers[i], s) * gradBytes;
    if (a.compression == Compression::FP16 && gradBytes == 4)
        bytes /= 2;
    const bool sparse = l.sparse_grad && a.sparse;
    const double worker = sparse ? sparseRows(l, tokensPerWorker) : bytes;
    v.perPush = localAgg ? (sparse ? sparseRows(l, tokensPerWorker * dpg.per_node) : bytes) : worker;
    v.pushersPerNode = localAgg ? 1 : dpg.per_node;
    v.pushers = v.pushersPerNode * dpg.nodes;
    if (localAgg) // reduce inside the node before the push, broadcast after the pull
        v.intra = 2 * collectiveTime(Collective::Reduce, worker, GroupShape{dpg.per_node, 1, dpg.per_node}, node, x.cal);
    return v;
}

// Parameter servers: one server process per node (AutoDist places them
// on the worker nodes). A variable goes whole to one server (single,
// round-robin, or the least-loaded: AutoDist's PS and PSLoadBalancing) or
// split over `ps_shards` servers (PartitionedPS). Each way, a node's NICs
// carry its workers' bytes for every variable plus everyone's bytes for the
// variables it serves, so the busiest node bounds the PS traffic. Latency:
// a push and a pull, one message each way over the network (2 x the
// NIC's latency, NCCL's network hop figure in the cluster presets).
PlanRun::PsPhase PlanRun::psPhase(const std::vector<const Step*>& steps)
{
    PsPhase ph;
    const int nodes = std::max(1, int(c.nodes.size()));
    const Paths p = pathsOf(node, x.cal);
    std::vector<double> serverBytes(static_cast<size_t>(nodes), 0);
    double workerBytes = 0, intraExtra = 0;
    int roundRobin = 0;
    for (const Step* st : steps) {
        const size_t i = size_t(st->layers.front());
        const SyncAtom& a = r.layers[i].sync;
        const double ready = layerReady[i];
        const PsVolume v = psVolume(i);
        if (v.perPush <= 0)
            continue;
        ph.any = true;
        ph.stale &= a.staleness > 0;
        const int k = std::clamp(a.ps_shards > 0 ? a.ps_shards : nodes, 1, nodes);
        std::vector<int> chosen;
        if (a.ps_placement == PsPlacement::SingleServer) {
            chosen = {0};
        } else if (k == nodes) {
            for (int n = 0; n < nodes; ++n)
                chosen.push_back(n);
        } else if (a.ps_placement == PsPlacement::RoundRobin) {
            for (int q = 0; q < k; ++q)
                chosen.push_back((roundRobin + q) % nodes);
            roundRobin = (roundRobin + k) % nodes;
        } else {
            std::vector<int> order(static_cast<size_t>(nodes));
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](int a1, int b1) { return serverBytes[size_t(a1)] < serverBytes[size_t(b1)]; });
            chosen.assign(order.begin(), order.begin() + k);
        }
        const double toServers = v.pushers * v.perPush;
        for (int n : chosen)
            serverBytes[size_t(n)] += toServers / double(chosen.size());
        workerBytes += v.perPush * v.pushersPerNode;
        intraExtra += v.intra;
        const double own = (v.perPush * v.pushersPerNode + toServers / double(chosen.size())) / p.interBw + 2 * p.interLat + v.intra;
        res.layers[i].sync = own;
        if (ph.first < 0 || ready < ph.first)
            ph.first = ready;
        if (ready >= ph.last) {
            ph.last = ready;
            ph.lastOwn = own;
        }
    }
    const double busiest = *std::max_element(serverBytes.begin(), serverBytes.end());
    const double bound = (workerBytes + busiest) / p.interBw + 2 * p.interLat + intraExtra;
    ph.duration = std::max(bound, ph.last - std::max(0.0, ph.first) + ph.lastOwn);
    return ph;
}

// Stage d's synchronization buckets, by when their gradients are ready;
// its single-variable PS steps gathered into one phase (`psSteps`).
std::vector<PlanRun::Bucket> PlanRun::buckets(int d, std::vector<const Step*>& psSteps)
{
    std::vector<Bucket> out;
    for (const Step& st : plan.classes[size_t(d)].steps) {
        if (st.kind != StepKind::Sync || st.layers.empty())
            continue;
        if (st.method == SyncMethod::ParameterServer && st.layers.size() == 1) {
            psSteps.push_back(&st);
            continue;
        }
        double ready = 0;
        for (int32_t i : st.layers)
            ready = std::max(ready, layerReady[size_t(i)]);
        if (!s.overlap_grad_reduce) // every bucket after the stage's last backward
            ready = std::max(ready, devFree[size_t(d)]);
        out.push_back({&st, ready, 0});
    }
    if (!psSteps.empty()) {
        const PsPhase ph = psPhase(psSteps);
        if (ph.any && ph.stale) // bounded staleness: the step does not wait, but cannot outrun the servers
            staleBound[size_t(d)] = ph.duration;
        else if (ph.any)
            out.push_back({nullptr, std::max(0.0, ph.first), ph.duration});
    }
    std::stable_sort(out.begin(), out.end(), [](const Bucket& a, const Bucket& b) { return a.ready < b.ready; });
    return out;
}

// A bucket's time on the stream; a fused bucket's shared among its layers by parameters.
double PlanRun::bucketTime(const Bucket& bk)
{
    double t = bk.duration;
    if (bk.step && bk.step->layers.size() > 1) {
        const Step& st = *bk.step;
        double fused = 0;
        for (int32_t i : st.layers) {
            const SyncAtom& a = r.layers[size_t(i)].sync;
            fused += detail::paramsLocal(m.layers[size_t(i)], r.layers[size_t(i)], s) * gradBytes *
                     (a.compression == Compression::FP16 && gradBytes == 4 ? 0.5 : 1);
        }
        t = s.zero_stage >= 1 ? collectiveTime(Collective::ReduceScatter, fused, dpg, node, x.cal)
                              : collectiveTime(Collective::AllReduce, fused, dpg, node, x.cal, st.algorithm);
        double total = 0;
        for (int32_t i : st.layers)
            total += detail::paramsLocal(m.layers[size_t(i)], r.layers[size_t(i)], s);
        for (int32_t i : st.layers)
            res.layers[size_t(i)].sync = t * detail::paramsLocal(m.layers[size_t(i)], r.layers[size_t(i)], s) / std::max(1.0, total);
    } else if (bk.step) {
        t = layerSync(size_t(bk.step->layers.front()));
        res.layers[size_t(bk.step->layers.front())].sync = t;
    }
    return t;
}

void PlanRun::traceSync(int d, const Bucket& bk, double start, double t, size_t psVariables)
{
    TraceRecord rec;
    rec.rank = plan.classes[size_t(d)].first_rank;
    rec.track = 1;
    rec.start_ns = int64_t(start * 1e9);
    rec.dur_ns = std::max<int64_t>(1, int64_t(t * 1e9));
    rec.kind = TraceKind::Collective;
    if (bk.step) {
        const Step& st = *bk.step;
        rec.name = std::string(syncMethodName(st.method)) + " " + m.layers[size_t(st.layers.front())].name +
                   (st.layers.size() > 1 ? " (+" + std::to_string(st.layers.size() - 1) + ")" : "");
        rec.layer = st.layers.front();
        for (int32_t i : st.layers)
            rec.bytes += int64_t(detail::paramsLocal(m.layers[size_t(i)], r.layers[size_t(i)], s) * gradBytes);
    } else {
        rec.name = "parameter servers: push gradients, pull weights (" + std::to_string(psVariables) + " variables)";
    }
    res.trace.records.push_back(std::move(rec));
}

// Gradient synchronization on the data-parallel stream, bucket by bucket.
void PlanRun::gradientSync()
{
    gradBytes = plan.gradient_bytes;
    tokensPerWorker = double(s.global_batch / s.dp) * double(x.seq) / s.cp;
    syncEnd.assign(static_cast<size_t>(pp), 0);
    staleBound.assign(static_cast<size_t>(pp), 0);
    for (int d = 0; d < pp; ++d) {
        std::vector<const Step*> psSteps;
        double free = 0;
        for (const Bucket& bk : buckets(d, psSteps)) {
            const double t = bucketTime(bk);
            if (t <= 0)
                continue;
            const double start = std::max(free, bk.ready);
            free = start + t;
            if (o.trace)
                traceSync(d, bk, start, t, psSteps.size());
        }
        syncEnd[size_t(d)] = free;
    }
}

} // namespace partita::sim
