#include "partita/core/plan.h"

#include "jsonread.h"
#include "layerfacts.h"
#include "planlayers.h"

#include <algorithm>
#include <map>

namespace partita {

using detail::json;
using detail::sub;

std::string_view collectiveName(Collective c)
{
    switch (c) {
    case Collective::AllReduce:
        return "allreduce";
    case Collective::ReduceScatter:
        return "reducescatter";
    case Collective::AllGather:
        return "allgather";
    case Collective::Broadcast:
        return "broadcast";
    case Collective::Reduce:
        return "reduce";
    case Collective::AllToAll:
        return "alltoall";
    }
    return "?";
}
std::string_view kernelGroupName(KernelGroup g)
{
    switch (g) {
    case KernelGroup::Tensor:
        return "tp";
    case KernelGroup::Expert:
        return "ep";
    case KernelGroup::Context:
        return "cp";
    }
    return "?";
}
std::string_view phaseName(Phase p)
{
    switch (p) {
    case Phase::Forward:
        return "forward";
    case Phase::Backward:
        return "backward";
    case Phase::Recompute:
        return "recompute";
    }
    return "?";
}
std::string_view kernelKindName(KernelKind k)
{
    switch (k) {
    case KernelKind::Gemm:
        return "gemm";
    case KernelKind::BatchedGemm:
        return "batched_gemm";
    case KernelKind::Memory:
        return "memory";
    case KernelKind::Collective:
        return "collective";
    }
    return "?";
}
std::string_view stepKindName(StepKind k)
{
    switch (k) {
    case StepKind::Run:
        return "run";
    case StepKind::Send:
        return "send";
    case StepKind::Recv:
        return "recv";
    case StepKind::Sync:
        return "sync";
    case StepKind::Optimizer:
        return "optimizer";
    }
    return "?";
}

std::vector<ScheduledPass> pipelineOrder(int d, int pp, int C, int64_t M, PipelineSchedule sched)
{
    std::vector<ScheduledPass> ops;
    const int64_t total = M * C;
    if (sched == PipelineSchedule::GPipe) {
        for (int c = 0; c < C; ++c)
            for (int64_t m = 0; m < M; ++m)
                ops.push_back({true, c, int(m)});
        for (int c = C - 1; c >= 0; --c)
            for (int64_t m = M - 1; m >= 0; --m)
                ops.push_back({false, c, int(m)});
        return ops;
    }
    // 1F1B and its interleaved form (Narayanan et al. 2021, §2.2; the order of
    // Megatron-LM's schedules.py): warm-up forwards, then one forward and one
    // backward in turn, then the remaining backwards.
    auto fwdAt = [&](int64_t k) {
        const int64_t inGroup = k % (int64_t(pp) * C);
        return ScheduledPass{true, int(inGroup / pp), int((k / (int64_t(pp) * C)) * pp + k % pp)};
    };
    auto bwdAt = [&](int64_t k) {
        const int64_t inGroup = k % (int64_t(pp) * C);
        return ScheduledPass{false, int(C - 1 - inGroup / pp), int((k / (int64_t(pp) * C)) * pp + k % pp)};
    };
    const int64_t warm = C == 1 ? std::min<int64_t>(pp - d - 1, M)
                                : std::min<int64_t>(int64_t(pp - d - 1) * 2 + int64_t(C - 1) * pp, total);
    for (int64_t k = 0; k < warm; ++k)
        ops.push_back(C == 1 ? ScheduledPass{true, 0, int(k)} : fwdAt(k));
    for (int64_t i = 0; i < total - warm; ++i) {
        ops.push_back(C == 1 ? ScheduledPass{true, 0, int(warm + i)} : fwdAt(warm + i));
        ops.push_back(C == 1 ? ScheduledPass{false, 0, int(i)} : bwdAt(i));
    }
    for (int64_t i = total - warm; i < total; ++i)
        ops.push_back(C == 1 ? ScheduledPass{false, 0, int(i)} : bwdAt(i));
    return ops;
}

namespace {

Step runStep(int program, int micro)
{
    Step st;
    st.kind = StepKind::Run;
    st.program = program;
    st.micro = micro;
    return st;
}

Step p2pStep(StepKind kind, int peer, int micro, double bytes)
{
    Step st;
    st.kind = kind;
    st.peer = peer;
    st.micro = micro;
    st.bytes = bytes;
    return st;
}

} // namespace

namespace {

// A strategy lowered, step by named step: the plan's header, its programs
// per virtual stage, then per pipeline stage its passes in schedule order
// and its gradient buckets.
class Lowering
{
public:
    Lowering(const Model& m, const Strategy& s, const ResolvedStrategy& r, Plan& p)
        : m(m), s(s), r(r), p(p), V(r.virtual_stages), pp(s.pp), C(r.virtual_stages / s.pp), L(m.layers.size())
    {
    }

    // Programs: forward, backward and (when recomputing) recompute per virtual stage.
    void programs()
    {
        const bool sp = s.sequence_parallel && s.tp > 1;
        layersOf.assign(static_cast<size_t>(V), {});
        std::vector<detail::LayerKernels> lk(L);
        for (size_t i = 0; i < L; ++i) {
            layersOf[size_t(r.layers[i].stage)].push_back(int(i));
            lk[i] = detail::layerKernels(m.layers[i], r.layers[i], s, s.micro_batch, p.seq_len, p.activation_bytes, int32_t(i));
        }
        fwdProg.assign(static_cast<size_t>(V), 0);
        bwdProg.assign(static_cast<size_t>(V), 0);
        recProg.assign(static_cast<size_t>(V), -1);
        outBytes.assign(static_cast<size_t>(V), 0);
        for (int v = 0; v < V; ++v) {
            Program f{v, Phase::Forward, {}}, b{v, Phase::Backward, {}}, rc{v, Phase::Recompute, {}};
            for (int i : layersOf[size_t(v)])
                f.params += detail::paramsLocal(m.layers[size_t(i)], r.layers[size_t(i)], s);
            b.params = rc.params = f.params;
            for (int i : layersOf[size_t(v)]) {
                f.kernels.insert(f.kernels.end(), lk[size_t(i)].fwd.begin(), lk[size_t(i)].fwd.end());
                const Layer& l = m.layers[size_t(i)];
                const Recompute mode = r.layers[size_t(i)].recompute;
                // Full: every layer of a block runs its forward again before the
                // backward; selective: the attention core (Korthikanti et al. 2022, §5).
                if ((mode == Recompute::Full && !l.block.empty()) ||
                    (mode == Recompute::Selective && l.kind == LayerKind::AttentionCore))
                    rc.kernels.insert(rc.kernels.end(), lk[size_t(i)].fwd.begin(), lk[size_t(i)].fwd.end());
            }
            for (auto it = layersOf[size_t(v)].rbegin(); it != layersOf[size_t(v)].rend(); ++it)
                b.kernels.insert(b.kernels.end(), lk[size_t(*it)].bwd.begin(), lk[size_t(*it)].bwd.end());
            if (!layersOf[size_t(v)].empty()) {
                const Layer& last = m.layers[size_t(layersOf[size_t(v)].back())];
                outBytes[size_t(v)] = double(last.cost.output_elems_per_token) * double(s.micro_batch) *
                                      double(p.seq_len) * p.activation_bytes / (sp ? s.tp : 1) / s.cp;
            }
            fwdProg[size_t(v)] = int(p.programs.size());
            p.programs.push_back(std::move(f));
            bwdProg[size_t(v)] = int(p.programs.size());
            p.programs.push_back(std::move(b));
            if (!rc.kernels.empty()) {
                recProg[size_t(v)] = int(p.programs.size());
                p.programs.push_back(std::move(rc));
            }
        }
    }

    // Rank classes: one per pipeline stage.
    void rankClasses()
    {
        for (int d = 0; d < pp; ++d) {
            RankClass rc;
            rc.stage = d;
            rc.first_rank = d * s.dp * s.cp * s.tp;
            rc.count = s.dp * s.cp * s.tp;
            const std::vector<int> lastBackwardPos = passes(d, rc);
            gradientBuckets(d, lastBackwardPos, rc);
            Step opt;
            opt.kind = StepKind::Optimizer;
            rc.steps.push_back(opt);
            p.classes.push_back(std::move(rc));
        }
    }

private:
    // Stage d's passes in its schedule's order, each with the transfers
    // around it; returns each chunk's last backward's place.
    std::vector<int> passes(int d, RankClass& rc) const
    {
        const auto order = pipelineOrder(d, pp, C, r.micro_batches, C > 1 ? PipelineSchedule::Interleaved : s.schedule);
        std::vector<int> lastBackwardPos(static_cast<size_t>(C), -1);
        for (size_t k = 0; k < order.size(); ++k) {
            const ScheduledPass& op = order[k];
            const int v = op.chunk * pp + d;
            if (op.forward) {
                if (v > 0)
                    rc.steps.push_back(p2pStep(StepKind::Recv, (v - 1) % pp, op.micro, outBytes[size_t(v - 1)]));
                rc.steps.push_back(runStep(fwdProg[size_t(v)], op.micro));
                if (v < V - 1)
                    rc.steps.push_back(p2pStep(StepKind::Send, (v + 1) % pp, op.micro, outBytes[size_t(v)]));
            } else {
                if (v < V - 1)
                    rc.steps.push_back(p2pStep(StepKind::Recv, (v + 1) % pp, op.micro, outBytes[size_t(v)]));
                if (recProg[size_t(v)] >= 0)
                    rc.steps.push_back(runStep(recProg[size_t(v)], op.micro));
                rc.steps.push_back(runStep(bwdProg[size_t(v)], op.micro));
                if (v > 0)
                    rc.steps.push_back(p2pStep(StepKind::Send, (v - 1) % pp, op.micro, outBytes[size_t(v - 1)]));
                lastBackwardPos[size_t(op.chunk)] = int(k);
            }
        }
        return lastBackwardPos;
    }

    // Layer i's synchronization step, its payload in `bytes` (not yet in the step).
    Step syncStep(size_t i, double& payload) const
    {
        const Layer& l = m.layers[i];
        const SyncAtom& a = r.layers[i].sync;
        const int gradBytes = p.gradient_bytes;
        Step st;
        st.kind = StepKind::Sync;
        st.method = a.method;
        st.algorithm = a.algorithm;
        st.sparse = (l.sparse_grad && a.sparse) || a.method == SyncMethod::SFB;
        st.shards = a.method == SyncMethod::ParameterServer
                        ? (a.ps_placement == PsPlacement::SingleServer ? 1 : std::max(0, a.ps_shards))
                        : 0;
        // Sparse rows (the simulator's expected count) and SFB's factors are gathered from every worker.
        const double tokensPerWorker = double(s.global_batch / s.dp) * double(p.seq_len) / s.cp;
        payload = a.method == SyncMethod::SFB
                      ? tokensPerWorker * (double(l.dims.out_features) + double(l.dims.in_features)) * p.activation_bytes
                  : st.sparse ? detail::sparseRowsBytes(l, tokensPerWorker, p.seq_len, m.seq_len, gradBytes)
                              : detail::syncPayloadBytes(l, r.layers[i], s, gradBytes);
        return st;
    }

    // Gradient buckets, in the order gradients become ready: chunks by
    // their last backward, layers from last to first. Explicit bucket ids
    // group layers; the rest fill buckets of bucket_bytes; layers synced by
    // PS, SFB or as sparse rows go alone. Also the parameters the stage holds.
    void gradientBuckets(int d, const std::vector<int>& lastBackwardPos, RankClass& rc) const
    {
        std::vector<int> chunkOrder(static_cast<size_t>(C));
        for (int ch = 0; ch < C; ++ch)
            chunkOrder[size_t(ch)] = ch;
        std::sort(chunkOrder.begin(), chunkOrder.end(),
                  [&](int a, int b) { return lastBackwardPos[size_t(a)] < lastBackwardPos[size_t(b)]; });
        std::map<int, Step> explicitBuckets;
        std::vector<Step> syncs;
        bool open = false;
        double fill = 0;
        for (int ch : chunkOrder) {
            const int v = ch * pp + d;
            for (auto it = layersOf[size_t(v)].rbegin(); it != layersOf[size_t(v)].rend(); ++it) {
                const size_t i = size_t(*it);
                const Layer& l = m.layers[i];
                if (l.params.empty())
                    continue;
                rc.parameters += detail::paramsLocal(l, r.layers[i], s);
                const SyncAtom& a = r.layers[i].sync;
                if (s.dp * s.cp <= 1 || a.method == SyncMethod::None)
                    continue;
                double payload = 0;
                Step st = syncStep(i, payload);
                if (a.method == SyncMethod::AllReduce && a.bucket >= 0) {
                    auto [b, fresh] = explicitBuckets.try_emplace(a.bucket, st);
                    b->second.layers.push_back(int32_t(i));
                    b->second.bytes += payload;
                    b->second.sparse = b->second.sparse || st.sparse;
                    continue;
                }
                st.bytes = payload;
                const bool fusable = a.method == SyncMethod::AllReduce && !(l.sparse_grad && a.sparse);
                if (!fusable) {
                    st.layers = {int32_t(i)};
                    syncs.push_back(std::move(st));
                    open = false;
                    continue;
                }
                if (!open || fill >= double(s.bucket_bytes) || syncs.back().algorithm != a.algorithm) {
                    syncs.push_back(st);
                    fill = 0;
                    open = true;
                }
                syncs.back().layers.push_back(int32_t(i));
                syncs.back().bytes += payload;
                fill += detail::paramsLocal(l, r.layers[i], s) * p.gradient_bytes;
            }
            tiedCopies(d, v, rc);
        }
        for (auto& [id, st] : explicitBuckets)
            syncs.push_back(std::move(st));
        rc.steps.insert(rc.steps.end(), syncs.begin(), syncs.end());
    }

    // A tied copy kept on another stage (Megatron's embedding on the last stage).
    void tiedCopies(int d, int v, RankClass& rc) const
    {
        for (int i : layersOf[size_t(v)]) {
            const Layer& l = m.layers[size_t(i)];
            if (l.tied_to.empty())
                continue;
            const Layer* t = m.find(l.tied_to);
            const size_t ti = size_t(t - m.layers.data());
            if (r.layers[ti].stage % pp != d)
                rc.parameters += detail::paramsLocal(*t, r.layers[ti], s);
        }
    }

    const Model& m;
    const Strategy& s;
    const ResolvedStrategy& r;
    Plan& p;
    const int V, pp, C;
    const size_t L;
    std::vector<std::vector<int>> layersOf;
    std::vector<int> fwdProg, bwdProg, recProg;
    std::vector<double> outBytes;
};

} // namespace

Result<Plan> lowerPlan(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen)
{
    auto resolved = resolveStrategy(s, m, c);
    if (!resolved)
        return resolved.error();
    const ResolvedStrategy& r = *resolved;
    Plan p;
    p.strategy = s.name;
    for (const Layer& l : m.layers)
        p.layer_names.push_back(l.name);
    p.world = c.deviceCount();
    p.dp = s.dp;
    p.tp = s.tp;
    p.pp = s.pp;
    p.ep = s.ep;
    p.cp = s.cp;
    p.virtual_stages = r.virtual_stages;
    p.micro_batches = r.micro_batches;
    p.micro_batch = s.micro_batch;
    p.seq_len = m.sequence ? (seqLen > 0 ? seqLen : m.seq_len) : 1;
    // Each rank holds chunks i and 2cp-1-i of the sequence (Megatron-LM's
    // load balancing of causal attention over context-parallel ranks).
    if (s.cp > 1 && p.seq_len % (2 * s.cp) != 0)
        return Error{s.name.empty() ? "strategy" : "strategy '" + s.name + "'", "mesh",
                     "context parallelism " + std::to_string(s.cp) + " needs the sequence length (" +
                         std::to_string(p.seq_len) + ") divisible by 2 x cp = " + std::to_string(2 * s.cp)};
    p.precision = s.precision;
    p.activation_bytes = detail::activationBytes(s.precision);
    p.gradient_bytes = detail::gradientBytes(s);
    p.zero_stage = s.zero_stage;
    Lowering lowering(m, s, r, p);
    lowering.programs();
    lowering.rankClasses();
    return p;
}

std::string kernelEventName(const Plan& p, const Kernel& k, Phase phase, int micro)
{
    std::string name;
    if (k.kind == KernelKind::Collective)
        name = std::string(kernelGroupName(k.group)) + " " + std::string(collectiveName(k.coll)) + " ";
    if (k.layer >= 0 && size_t(k.layer) < p.layer_names.size())
        name += p.layer_names[size_t(k.layer)];
    else
        name += k.layer >= 0 ? "layer " + std::to_string(k.layer) : std::string("?");
    name += " ";
    name += phaseName(phase);
    name += " mb" + std::to_string(micro);
    return name;
}

const RankClass* rankClassOf(const Plan& p, int rank)
{
    for (const RankClass& c : p.classes)
        if (rank >= c.first_rank && rank < c.first_rank + c.count)
            return &c;
    return nullptr;
}

} // namespace partita
