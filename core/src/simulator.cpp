// Step-time, memory and trace prediction. See simulator.h and
// docs/architecture.md ("Simulator") for the model; every constant below
// names its source.
#include "partita/core/simulator.h"

#include <nlohmann/json.hpp>

#include "layerfacts.h"
#include "simcost.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <functional>
#include <numeric>

namespace partita {

using namespace sim;

Result<SimResult> simulate(const Model& m, const Cluster& c, const Strategy& s, const SimOptions& o)
{
    auto plan = lowerPlan(m, c, s, o.seq_len);
    if (!plan)
        return plan.error();
    return simulatePlan(*plan, m, c, s, o);
}

Result<SimResult> simulatePlan(const Plan& plan, const Model& m, const Cluster& c, const Strategy& s, const SimOptions& o)
{
    auto resolved = resolveStrategy(s, m, c);
    if (!resolved)
        return resolved.error();
    const ResolvedStrategy& r = *resolved;
    const Node& node = c.nodes.front();
    const DeviceSpec& dev = node.devices.front();
    Ctx x{m, c, r, s, plan, dev, node, o.calibration ? *o.calibration : defaultCalibration(dev)};
    x.ab = plan.activation_bytes;
    x.b = plan.micro_batch;
    x.seq = plan.seq_len;
    x.perNode = int(node.devices.size());
    std::string precisionNote;
    if (s.precision == Precision::FP8) {
        const auto f8 = dev.peak_flops.find("fp8");
        const auto b16 = dev.peak_flops.find("bf16");
        if (f8 == dev.peak_flops.end() || b16 == dev.peak_flops.end())
            return Error{"cluster '" + c.name + "'", "device " + dev.name,
                         "fp8 training needs fp8 and bf16 peaks (tensor cores with FP8: H100, H200 and later)"};
        x.peak = b16->second;
        x.fp8Peak = f8->second;
        x.fp8Curve = x.cal.matmulFor("fp8");
        x.cal.matmul = x.cal.matmulFor("bf16");
        if (!x.cal.matmul_by_precision.count("fp8"))
            precisionNote = "no fp8 GEMM efficiency measured for " + dev.name + ": fp8 GEMMs use the general curve";
    } else {
        auto it = dev.peak_flops.find(dtypeKey(s.precision));
        if (it == dev.peak_flops.end() && s.precision == Precision::BF16) {
            // No bf16 tensor cores (V100, T4: their datasheets list none): bf16
            // GEMMs run on the CUDA cores, at the fp32 rate.
            it = dev.peak_flops.find("fp32");
            if (it != dev.peak_flops.end())
                precisionNote = dev.name + " has no bf16 tensor cores: bf16 is costed at its fp32 peak (" +
                                std::to_string(int(it->second / 1e12 + 0.5)) + " TFLOP/s); fp16 uses its tensor cores";
        }
        if (it == dev.peak_flops.end())
            return Error{"cluster '" + c.name + "'", "device " + dev.name,
                         std::string("no peak FLOP/s for ") + dtypeKey(s.precision) + ": add it to the cluster file"};
        x.peak = it->second;
        x.cal.matmul = x.cal.matmulFor(dtypeKey(s.precision)); // the precision's measured curve, where there is one
    }
    if (dev.memory_bandwidth <= 0)
        return Error{"cluster '" + c.name + "'", "device " + dev.name, "memory bandwidth unknown: add it to the cluster file"};

    SimResult res;
    res.calibration_source = x.cal.source;
    res.notes = r.warnings;
    if (!precisionNote.empty())
        res.notes.push_back(precisionNote);
    const int pp = plan.pp, V = plan.virtual_stages;
    const int64_t M = plan.micro_batches;
    const size_t L = m.layers.size();

    // Program durations, per-kernel times, and per-layer sums.
    const size_t P = plan.programs.size();
    std::vector<double> progTime(P, 0), progTp(P, 0);
    std::vector<std::vector<double>> kTime(P);
    res.layers.resize(L);
    for (size_t i = 0; i < L; ++i)
        res.layers[i].layer = int(i);
    for (size_t pi = 0; pi < P; ++pi) {
        const Program& pr = plan.programs[pi];
        kTime[pi].resize(pr.kernels.size());
        // Overlapped collectives run beside the compute kernel before them
        // (and share it when several follow one): only what outlasts it counts.
        double beside = 0;
        size_t lastCompute = pr.kernels.size();
        for (size_t k = 0; k < pr.kernels.size(); ++k) {
            const Kernel& kn = pr.kernels[k];
            double t = kernelTime(x, kn, pr.phase);
            if (kn.kind != KernelKind::Collective) {
                beside = t;
                lastCompute = k;
            } else if (kn.overlapped) {
                if (const double slow = smMarginSlowdown(x, kn, pr.phase); slow > 0 && lastCompute < k) {
                    const double extra = kTime[pi][lastCompute] * slow;
                    kTime[pi][lastCompute] += extra;
                    progTime[pi] += extra;
                    beside += extra;
                    const Kernel& gemm = pr.kernels[lastCompute];
                    if (gemm.layer >= 0 && size_t(gemm.layer) < L) {
                        LayerTime& lt = res.layers[size_t(gemm.layer)];
                        (pr.phase == Phase::Forward ? lt.forward : lt.recompute) += extra;
                    }
                }
                const double hidden = std::min(t, beside);
                beside -= hidden;
                t -= hidden;
            } else {
                beside = 0;
            }
            kTime[pi][k] = t;
            progTime[pi] += t;
            if (kn.kind == KernelKind::Collective)
                progTp[pi] += t;
            if (kn.layer >= 0 && size_t(kn.layer) < L) {
                LayerTime& lt = res.layers[size_t(kn.layer)];
                (pr.phase == Phase::Forward ? lt.forward : pr.phase == Phase::Backward ? lt.backward : lt.recompute) += t;
            }
        }
    }
    std::vector<int> fwdOf(static_cast<size_t>(V), -1), bwdOf(static_cast<size_t>(V), -1), recOf(static_cast<size_t>(V), -1);
    for (size_t pi = 0; pi < P; ++pi) {
        const Program& pr = plan.programs[pi];
        (pr.phase == Phase::Forward ? fwdOf : pr.phase == Phase::Backward ? bwdOf : recOf)[size_t(pr.virtual_stage)] = int(pi);
    }

    // Activations each virtual stage keeps per micro-batch. Full recomputation
    // keeps only each block's input.
    const bool sp = s.sequence_parallel && s.tp > 1;
    std::vector<double> savedOf(static_cast<size_t>(V), 0);
    {
        std::vector<std::string> lastBlock(static_cast<size_t>(V));
        for (size_t i = 0; i < L; ++i) {
            const Layer& l = m.layers[i];
            const LayerAssignment& a = r.layers[i];
            if (a.recompute == Recompute::Full && !l.block.empty()) {
                if (l.block != lastBlock[size_t(a.stage)]) {
                    const double hidden = double(m.dims.hidden ? m.dims.hidden : l.dims.in_features);
                    savedOf[size_t(a.stage)] += hidden * double(x.b) * double(x.seq) * x.ab / (sp ? s.tp : 1) / s.cp;
                    lastBlock[size_t(a.stage)] = l.block;
                }
                continue;
            }
            savedOf[size_t(a.stage)] += savedBytes(x, l, a);
        }
    }

    // Run every rank class's steps against its neighbours'. A receive waits
    // for the matching send; sends block the sender for the transfer
    // (Megatron-LM's p2p_communication.py waits on its requests).
    auto p2pTime = [&](int fromClass, int toClass, double bytes) {
        const int a = plan.classes[size_t(fromClass)].first_rank, b = plan.classes[size_t(toClass)].first_rank;
        if (a == b || bytes <= 0)
            return 0.0;
        const bool sameNode = a / x.perNode == b / x.perNode;
        const Paths p = pathsOf(node, x.cal);
        // Every rank of the stage sends at once: one NIC share each.
        return sameNode ? bytes / p.intraBw + p.intraLat : bytes / std::min(p.intraBw, p.interBw / x.perNode) + p.interLat;
    };
    // ZeRO-3 gathers 16-bit (or fp32) parameters and reduce-scatters gradients:
    // the whole array's bytes, nccl-tests' convention.
    const double paramBytes = s.precision == Precision::FP32 ? 4 : 2;
    const double gradBytesZero = plan.gradient_bytes;
    // Gradients and optimizer state are reduced and sharded over the data- and
    // context-parallel ranks together (Megatron-LM's dp x cp group).
    const int dpAll = s.dp * s.cp;
    const GroupShape dpg = dpShape(x, dpAll);
    std::vector<double> devFree(static_cast<size_t>(pp), 0), busy(static_cast<size_t>(pp), 0),
        tpBusy(static_cast<size_t>(pp), 0), commFree(static_cast<size_t>(pp), 0), zeroWait(static_cast<size_t>(pp), 0),
        lastStart(static_cast<size_t>(pp), 0);
    // Sends in flight: (receiving virtual stage, micro-batch, forward?) -> arrival.
    std::map<std::tuple<int, int, bool>, double> arrived;
    std::vector<size_t> ptr(static_cast<size_t>(pp), 0);
    struct Ran
    {
        int program;
        int micro;
        double start, end;
    };
    std::vector<std::vector<Ran>> ran(static_cast<size_t>(pp));
    std::vector<double> vStageParams(static_cast<size_t>(V), 0);
    for (size_t i = 0; i < L; ++i)
        vStageParams[size_t(r.layers[i].stage)] += detail::paramsLocal(m.layers[i], r.layers[i], s);
    std::vector<double> bwdStartLast(static_cast<size_t>(V), 0);
    bool progress = true;
    auto pending = [&](int d) {
        const auto& steps = plan.classes[size_t(d)].steps;
        return ptr[size_t(d)] < steps.size() && steps[ptr[size_t(d)]].kind != StepKind::Sync &&
               steps[ptr[size_t(d)]].kind != StepKind::Optimizer;
    };
    while (progress) {
        progress = false;
        for (int d = 0; d < pp; ++d) {
            const auto& steps = plan.classes[size_t(d)].steps;
            while (pending(d)) {
                const Step& st = steps[ptr[size_t(d)]];
                if (st.kind == StepKind::Recv) {
                    // Forward data comes from a lower virtual stage; we tell the
                    // direction by the next Run's phase.
                    const Program& next = plan.programs[size_t(steps[ptr[size_t(d)] + 1].program)];
                    const bool fwd = next.phase == Phase::Forward;
                    auto it = arrived.find({next.virtual_stage, st.micro, fwd});
                    if (it == arrived.end())
                        break;
                    devFree[size_t(d)] = std::max(devFree[size_t(d)], it->second);
                } else if (st.kind == StepKind::Send) {
                    const double t = p2pTime(d, st.peer, st.bytes);
                    devFree[size_t(d)] += t;
                    busy[size_t(d)] += t;
                    const Program& last = plan.programs[size_t(ran[size_t(d)].back().program)];
                    const bool fwd = last.phase == Phase::Forward;
                    arrived[{last.virtual_stage + (fwd ? 1 : -1), st.micro, fwd}] = devFree[size_t(d)];
                } else { // Run
                    const Program& pr = plan.programs[size_t(st.program)];
                    double start = devFree[size_t(d)];
                    if (s.zero_stage == 3 && dpAll > 1 && pr.phase != Phase::Recompute) {
                        // ZeRO-3 gathers the chunk's parameters before each pass,
                        // prefetched one pass ahead on the communication stream.
                        const double g = collectiveTime(Collective::AllGather, vStageParams[size_t(pr.virtual_stage)] * paramBytes, dpg, node, x.cal);
                        const double gStart = std::max(commFree[size_t(d)], lastStart[size_t(d)]);
                        commFree[size_t(d)] = gStart + g;
                        if (commFree[size_t(d)] > start) {
                            zeroWait[size_t(d)] += commFree[size_t(d)] - start;
                            start = commFree[size_t(d)];
                        }
                    }
                    const double end = start + progTime[size_t(st.program)];
                    if (pr.phase == Phase::Backward) {
                        if (st.micro == M - 1)
                            bwdStartLast[size_t(pr.virtual_stage)] = start;
                        if (s.zero_stage == 3 && dpAll > 1) // reduce-scatter this micro-batch's gradients
                            commFree[size_t(d)] = std::max(commFree[size_t(d)], end) +
                                                  collectiveTime(Collective::ReduceScatter, vStageParams[size_t(pr.virtual_stage)] * gradBytesZero, dpg, node, x.cal);
                    }
                    busy[size_t(d)] += progTime[size_t(st.program)];
                    tpBusy[size_t(d)] += progTp[size_t(st.program)];
                    lastStart[size_t(d)] = start;
                    devFree[size_t(d)] = end;
                    ran[size_t(d)].push_back({st.program, st.micro, start, end});
                }
                ++ptr[size_t(d)];
                progress = true;
            }
        }
    }
    for (int d = 0; d < pp; ++d)
        if (pending(d))
            return Error{"strategy", "pipeline schedule", "internal: the schedule deadlocked at stage " + std::to_string(d)};

    // When each layer's gradient is ready: in the last micro-batch's backward,
    // after the kernels before it in that program.
    std::vector<double> layerReady(L, 0);
    for (int v = 0; v < V; ++v) {
        const int pi = bwdOf[size_t(v)];
        if (pi < 0)
            continue;
        double t = bwdStartLast[size_t(v)]; // the recompute program ran just before, as its own step
        const Program& pr = plan.programs[size_t(pi)];
        for (size_t k = 0; k < pr.kernels.size(); ++k) {
            t += kTime[size_t(pi)][k];
            if (pr.kernels[k].layer >= 0)
                layerReady[size_t(pr.kernels[k].layer)] = t;
        }
    }

    // Gradient synchronization on the data-parallel stream, bucket by bucket.
    const int gradBytes = plan.gradient_bytes;
    const double tokensPerWorker = double(s.global_batch / s.dp) * double(x.seq) / s.cp;
    // Sparse embeddings: only the rows the tokens touch, with their indices.
    auto sparseRows = [&](const Layer& l, double tokens) {
        return detail::sparseRowsBytes(l, tokens, x.seq, m.seq_len, gradBytes);
    };
    // What one PS-synchronized variable moves: bytes per push, pushers.
    struct PsVolume
    {
        double perPush = 0, pushersPerNode = 1, pushers = 1, intra = 0;
    };
    std::function<PsVolume(size_t)> psVolume;
    auto layerSync = [&](size_t i) -> double {
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
    };
    // Parameter servers: one server process per node (AutoDist places them
    // on the worker nodes). A variable goes whole to one server (single,
    // round-robin, or the least-loaded: AutoDist's PS and PSLoadBalancing) or
    // split over `ps_shards` servers (PartitionedPS). Each way, a node's NICs
    // carry its workers' bytes for every variable plus everyone's bytes for the
    // variables it serves, so the busiest node bounds the PS traffic. Latency:
    // a push and a pull, one message each way over the network (2 x the
    // NIC's latency, NCCL's network hop figure in the cluster presets).
    struct PsPhase
    {
        double first = -1, last = 0, lastOwn = 0, duration = 0;
        bool stale = true;
        bool any = false;
    };
    auto psPhase = [&](const std::vector<const Step*>& steps) {
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
    };

    psVolume = [&](size_t i) {
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
    };
    std::vector<double> syncEnd(static_cast<size_t>(pp), 0), staleBound(static_cast<size_t>(pp), 0);
    for (int d = 0; d < pp; ++d) {
        struct Bucket
        {
            const Step* step; // null: the parameter-server phase
            double ready;
            double duration;
        };
        std::vector<Bucket> buckets;
        std::vector<const Step*> psSteps;
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
            buckets.push_back({&st, ready, 0});
        }
        if (!psSteps.empty()) {
            const PsPhase ph = psPhase(psSteps);
            if (ph.any && ph.stale) // bounded staleness: the step does not wait, but cannot outrun the servers
                staleBound[size_t(d)] = ph.duration;
            else if (ph.any)
                buckets.push_back({nullptr, std::max(0.0, ph.first), ph.duration});
        }
        std::stable_sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return a.ready < b.ready; });
        double free = 0;
        for (const Bucket& bk : buckets) {
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
            if (t <= 0)
                continue;
            const double start = std::max(free, bk.ready);
            free = start + t;
            if (o.trace) {
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
                    rec.name = "parameter servers: push gradients, pull weights (" + std::to_string(psSteps.size()) + " variables)";
                }
                res.trace.records.push_back(std::move(rec));
            }
        }
        syncEnd[size_t(d)] = free;
    }

    // Optimizer (Adam): a memory-bound pass reading each parameter's fp32
    // master weight, two moments and gradient and writing the three state
    // tensors and the 16-bit weight: ZeRO's 16 bytes/param of state
    // (Rajbhandari et al. 2019, §3.1), sharded like the state.
    const bool mixed = s.precision != Precision::FP32;
    const double wB = mixed ? 2 : 4, gB = gradBytes, oB = mixed ? 12 : 8;
    std::vector<double> stepEnd(static_cast<size_t>(pp), 0), optTime(static_cast<size_t>(pp), 0),
        gatherAfter(static_cast<size_t>(pp), 0);
    double stepTime = 0;
    int critical = 0;
    for (int d = 0; d < pp; ++d) {
        const double params = plan.classes[size_t(d)].parameters;
        const double shard = s.zero_stage >= 1 ? dpAll : 1;
        optTime[size_t(d)] = memoryTime(x, params / shard * (2 * oB + gB + wB));
        if ((s.zero_stage == 1 || s.zero_stage == 2) && dpAll > 1) {
            gatherAfter[size_t(d)] = collectiveTime(Collective::AllGather, params * wB, dpg, node, x.cal);
            // Overlapped, bucket by bucket beside the next step's first forward
            // pass of the stage: only what outlasts that pass is exposed.
            if (s.overlap_param_gather && !ran[size_t(d)].empty())
                gatherAfter[size_t(d)] =
                    std::max(0.0, gatherAfter[size_t(d)] - progTime[size_t(ran[size_t(d)].front().program)]);
        }
        double end = std::max({devFree[size_t(d)], syncEnd[size_t(d)], staleBound[size_t(d)]});
        if (s.zero_stage == 3)
            end = std::max(end, commFree[size_t(d)]);
        end += optTime[size_t(d)] + gatherAfter[size_t(d)];
        stepEnd[size_t(d)] = end;
        if (end > stepTime) {
            stepTime = end;
            critical = d;
        }
    }
    res.step_time = stepTime;

    // Memory per device of each stage.
    const double capacity = double(dev.memory_bytes);
    res.stage_memory.resize(static_cast<size_t>(pp));
    for (int d = 0; d < pp; ++d) {
        MemoryUse& mu = res.stage_memory[size_t(d)];
        const double n = dpAll;
        const double Pm = plan.classes[size_t(d)].parameters;
        double w = Pm * wB, g = Pm * gB, opt = Pm * oB;
        if (s.zero_stage >= 1)
            opt /= n;
        if (s.zero_stage >= 2)
            g /= n;
        if (s.zero_stage >= 3)
            w /= n;
        mu.parameters_optimizer = w + g + opt;
        // Peak of the activations alive along the schedule.
        double alive = 0, peak = 0;
        for (const Ran& rn : ran[size_t(d)]) {
            const Program& pr = plan.programs[size_t(rn.program)];
            if (pr.phase == Phase::Recompute)
                continue;
            const double a = savedOf[size_t(pr.virtual_stage)];
            alive += pr.phase == Phase::Forward ? a : -a;
            peak = std::max(peak, alive + (pr.phase == Phase::Forward ? 0 : a));
        }
        mu.activations = peak;
        mu.peak = mu.parameters_optimizer + mu.activations;
        mu.capacity = capacity;
        mu.oom = capacity > 0 && mu.peak > capacity;
        res.oom |= mu.oom;
        if (mu.peak > res.memory.peak)
            res.memory = mu;
    }

    // Breakdown of the critical device.
    {
        const int d = critical;
        Breakdown& b = res.breakdown;
        b.compute = busy[size_t(d)];
        b.tp_comm = tpBusy[size_t(d)];
        const double computeEnd = devFree[size_t(d)];
        b.bubble = std::max(0.0, computeEnd - busy[size_t(d)] - zeroWait[size_t(d)]);
        const double commEnd = std::max(syncEnd[size_t(d)], s.zero_stage == 3 ? commFree[size_t(d)] : 0.0);
        b.exposed_comm = std::max(0.0, commEnd - computeEnd) + zeroWait[size_t(d)] + gatherAfter[size_t(d)];
        b.optimizer = optTime[size_t(d)];
        b.idle = std::max(0.0, stepTime - (b.compute + b.bubble + b.exposed_comm + b.optimizer));
    }
    res.stage_busy = busy;

    // Throughput and MFU.
    const CostAt model = modelCostAt(m, s.global_batch, x.seq, x.ab);
    res.model_flops = model.forward_flops + model.backward_flops;
    res.samples_per_s = double(s.global_batch) / stepTime;
    res.tokens_per_s = res.samples_per_s * double(x.seq);
    res.mfu = res.model_flops / (stepTime * double(c.deviceCount()) * x.peak);

    if (o.trace) {
        for (int d = 0; d < pp; ++d) {
            const int rank = plan.classes[size_t(d)].first_rank;
            res.trace.tracks.push_back({rank, 0, "compute"});
            res.trace.tracks.push_back({rank, 1, "data-parallel communication"});
            for (const Ran& rn : ran[size_t(d)]) {
                const Program& pr = plan.programs[size_t(rn.program)];
                double t = rn.start;
                for (size_t k = 0; k < pr.kernels.size(); ++k) {
                    const Kernel& kn = pr.kernels[k];
                    const double dur = kTime[size_t(rn.program)][k];
                    TraceRecord rec;
                    rec.rank = rank;
                    rec.track = 0;
                    rec.start_ns = int64_t(t * 1e9);
                    rec.dur_ns = std::max<int64_t>(1, int64_t(dur * 1e9));
                    rec.kind = kn.kind == KernelKind::Collective ? TraceKind::Collective : TraceKind::Compute;
                    rec.name = kernelEventName(plan, kn, pr.phase, rn.micro);
                    rec.layer = kn.layer;
                    rec.op = int64_t(rn.program);
                    rec.flops = kn.flops;
                    rec.bytes = int64_t(kn.kind == KernelKind::Collective ? kn.coll_bytes : kn.bytes);
                    res.trace.records.push_back(std::move(rec));
                    t += dur;
                }
            }
            TraceRecord opt;
            opt.rank = rank;
            opt.track = 0;
            opt.start_ns = int64_t((stepEnd[size_t(d)] - optTime[size_t(d)] - gatherAfter[size_t(d)]) * 1e9);
            opt.dur_ns = std::max<int64_t>(1, int64_t(optTime[size_t(d)] * 1e9));
            opt.kind = TraceKind::Compute;
            opt.name = "optimizer step";
            res.trace.records.push_back(std::move(opt));
            // The step itself, as the executor records it, so that a
            // prediction and a measurement align step by step.
            res.trace.tracks.push_back({rank, 2, "steps"});
            TraceRecord step;
            step.rank = rank;
            step.track = 2;
            step.start_ns = 0;
            step.dur_ns = std::max<int64_t>(1, int64_t(stepEnd[size_t(d)] * 1e9));
            step.kind = TraceKind::Step;
            step.name = "ProfilerStep#0";
            res.trace.records.push_back(std::move(step));
        }
    }
    return res;
}

std::string predictionMetaJson(const SimResult& r)
{
    return nlohmann::json{{"step_time_s", r.step_time},
                          {"samples_per_s", r.samples_per_s},
                          {"mfu", r.mfu},
                          {"peak_memory_bytes", r.memory.peak},
                          {"oom", r.oom}}
        .dump();
}

} // namespace partita
