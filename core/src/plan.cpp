#include "partita/core/plan.h"

#include "jsonread.h"
#include "layerfacts.h"

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

struct LayerKernels
{
    std::vector<Kernel> fwd, bwd;
};

Kernel collectiveKernel(int32_t layer, Collective kind, double bytes, KernelGroup group, bool overlapped = false)
{
    Kernel k;
    k.layer = layer;
    k.kind = KernelKind::Collective;
    k.coll = kind;
    k.coll_bytes = bytes;
    k.ops = 0;
    k.group = group;
    k.overlapped = overlapped;
    return k;
}

// Context parallelism around an attention core: each rank holds the queries,
// keys and values of its 1/cp of the sequence and needs every rank's keys and
// values. The ring passes them on cp - 1 times, beside the attention of the
// block in hand, and in backward passes them again with their gradients
// (Megatron-Core's ring attention); the all-gather variant gathers them
// before the attention and reduce-scatters their gradients after it. Both
// move (cp - 1) chunks per rank each way: an all-gather's volume. Called
// with the attention's own kernel alone in `lk`.
void contextKernels(LayerKernels& lk, const Layer& l, const LayerAssignment& a, const Strategy& s, double tokens,
                    int ab, int32_t index)
{
    const int64_t kvHeads = l.dims.kv_heads ? l.dims.kv_heads : l.dims.heads;
    const double kvLocal =
        2.0 * tokens * double(kvHeads * l.dims.head_dim) * ab / (a.tp_role != TpRole::Replicated ? s.tp : 1);
    const double gathered = kvLocal * s.cp;
    if (s.cp_comm == ContextComm::P2P) {
        lk.fwd.push_back(collectiveKernel(index, Collective::AllGather, gathered, KernelGroup::Context, true));
        lk.bwd.push_back(collectiveKernel(index, Collective::AllGather, 2 * gathered, KernelGroup::Context, true));
        return;
    }
    lk.fwd.insert(lk.fwd.begin(), collectiveKernel(index, Collective::AllGather, gathered, KernelGroup::Context));
    lk.bwd.insert(lk.bwd.begin(), collectiveKernel(index, Collective::AllGather, gathered, KernelGroup::Context));
    lk.bwd.push_back(collectiveKernel(index, Collective::ReduceScatter, gathered, KernelGroup::Context));
}

// The kernels of one layer for one micro-batch on one device. With context
// parallelism a device holds b x seq / cp tokens, and its queries meet every
// key: 1/cp of the attention's work.
LayerKernels layerKernels(const Layer& l, const LayerAssignment& a, const Strategy& s, int64_t b, int64_t seq,
                          int ab, int32_t index)
{
    LayerKernels lk;
    const CostAt c = layerCostAt(l, b, seq, ab);
    const int tp = s.tp;
    const int cp = std::max(1, s.cp);
    const bool split = a.tp_role != TpRole::Replicated;
    const bool sp = s.sequence_parallel && tp > 1;
    const double tokens = double(b) * double(seq) / cp;
    const double seq2 = double(b) * double(seq) * double(seq) / cp;
    const double shard = split ? tp : 1;
    const int ringSteps = cp > 1 && s.cp_comm == ContextComm::P2P ? cp : 1;
    const double expertSplit = l.kind == LayerKind::MoEExperts && s.ep > 1 ? s.ep : 1;

    Kernel f;
    f.layer = index;
    double mm = 0, mem = 0;
    switch (l.kind) {
    case LayerKind::Linear:
    case LayerKind::LMHead:
    case LayerKind::MoERouter:
    case LayerKind::MoEExperts:
    case LayerKind::Conv: {
        mm = c.forward_flops / shard / cp;
        f.kind = KernelKind::Gemm; // a convolution runs as an implicit GEMM
        f.ops = l.kind == LayerKind::MoEExperts ? int(std::max<int64_t>(1, 3 * l.dims.top_k)) : 1;
        if (l.kind != LayerKind::Conv) {
            f.m = int64_t(tokens);
            f.n = a.tp_role == TpRole::Column ? l.dims.out_features / tp : l.dims.out_features;
            f.k = a.tp_role == TpRole::Row ? l.dims.in_features / tp : l.dims.in_features;
        }
        // Bias, dropout and residual add after the matmul (Megatron fuses them
        // into one bias-dropout-add kernel): read the output and each extra
        // input, write the result, plus the dropout mask.
        const double out = double(l.cost.output_elems_per_token) * tokens * ab;
        const double epilogue =
            out * double(1 + l.inputs.size()) + double(l.cost.mask_bytes_per_token) * tokens;
        const double div = a.tp_role == TpRole::Column ? tp : (sp ? tp : 1);
        if (l.cost.mask_bytes_per_token || l.inputs.size() > 1 || !l.params.empty()) {
            mem = epilogue / div;
            f.mem_ops = 1;
        }
        // The matmul's own traffic: its inputs, outputs and weights.
        const double io = double(l.cost.io_elems_per_token) * tokens * ab;
        const double weights = double(l.parameterCount()) * ab / expertSplit;
        mem += (io + weights) / shard;
        if (s.precision == Precision::FP8 && (l.kind == LayerKind::Linear || l.kind == LayerKind::MoEExperts)) {
            // FP8: each GEMM input is cast from bf16 first (read 2 bytes, write
            // 1: Transformer Engine's cast-transpose), the activation and the
            // weight, every micro-batch; backward's gradient casts come with
            // its doubled traffic.
            const double in = double(l.dims.in_features) * tokens / (a.tp_role == TpRole::Row ? tp : 1);
            mem += 3.0 * (in + double(l.parameterCount()) / shard / expertSplit);
            f.mem_ops += 1;
        }
        break;
    }
    case LayerKind::AttentionCore: {
        mm = c.forward_flops / shard / cp;
        // A fused kernel skips the key blocks wholly above a causal mask's
        // diagonal: about half of them (FlashAttention-2, Dao 2023, §3.1.1,
        // measuring 1.7-1.8x). Unfused, QK^T is computed whole and masked.
        const bool skipsHalf = fusedAttention(s.attention) && l.dims.causal;
        if (skipsHalf)
            mm *= 0.5;
        f.kind = KernelKind::BatchedGemm;
        // QK^T and softmax(.)V; the ring runs them once per block of keys.
        // The shape is the work done: the executors, which run cuBLAS or
        // OpenBLAS GEMMs and no fused kernel, then do what a fused causal
        // kernel does (half the keys per query on average).
        f.ops = 2 * ringSteps;
        f.batch = b * std::max<int64_t>(1, l.dims.heads / tp);
        f.m = seq / cp;
        f.n = std::max<int64_t>(1, seq / ringSteps / (skipsHalf ? 2 : 1));
        f.k = l.dims.head_dim;
        // Fused, the scores stay on chip (and dropout's mask is regenerated
        // from its seed): only Q, K, V in and the output out (FlashAttention,
        // Dao et al. 2022, §3.1).
        mem = (fusedAttention(s.attention)
                   ? 0.0
                   : double(l.cost.io_elems_per_seq2) * seq2 * ab + double(l.cost.mask_bytes_per_seq2) * seq2) /
                  shard +
              double(l.cost.io_elems_per_token) * tokens * ab / shard;
        f.mem_ops = 1;
        break;
    }
    default: {
        f.kind = KernelKind::Memory;
        f.ops = 0;
        const double io = double(l.cost.io_elems_per_token) * tokens * ab +
                          double(l.cost.io_elems_per_seq2) * seq2 * ab +
                          double(l.cost.mask_bytes_per_token) * tokens;
        mem = io / (split || sp ? tp : 1);
        f.mem_ops = mem > 0 ? 1 : 0;
        break;
    }
    }
    f.flops = mm;
    if (mm <= 0)
        f.ops = 0;
    f.bytes = mem;
    const bool twoGrads = !l.params.empty() || !l.tied_to.empty() || l.kind == LayerKind::AttentionCore;
    Kernel bk = f;
    // Backward: the input gradient and (with weights, or for attention's two
    // activation operands) a second GEMM of the same size; about twice the
    // forward's activation traffic; a layer with weights also reads them and
    // accumulates its weight gradient (read-modify-write).
    bk.flops = mm * (twoGrads && mm > 0 ? 2 : 1);
    bk.ops = f.ops * (twoGrads && mm > 0 ? 2 : 1);
    if (l.kind == LayerKind::AttentionCore && fusedAttention(s.attention) && mm > 0) {
        // Fused backward recomputes QK^T: 2.5 times the forward's FLOPs
        // (Dao 2023, FlashAttention-2, §4.1), five GEMMs.
        bk.flops = 2.5 * mm;
        bk.ops = 5 * ringSteps;
    }
    // Backward traffic: a GEMM's reads the output gradient twice (for the
    // input's and the weight's gradients), its input once, and writes the
    // input's gradient: twice the forward's activations. A memory-bound op's
    // reads its saved input and the output gradient and writes the input
    // gradient, 1.5x by that count, but the kernels that run (fused norms,
    // softmax and dropout backward with their extra reductions) move more:
    // against Korthikanti Table 5, 1.5x raised the mean error from 2.52 % to
    // 2.64 % and on the measured runs (bench_fidelity) from 8.5 % to 8.9 %,
    // so 2x stays for both.
    bk.bytes = 2 * mem;
    bk.mem_ops = 2 * f.mem_ops;
    if (!l.params.empty() && mm > 0)
        bk.bytes += double(l.parameterCount()) / shard / expertSplit * (ab + 2 * detail::gradientBytes(s));
    if (f.flops > 0 || f.bytes > 0)
        lk.fwd.push_back(f);
    if (bk.flops > 0 || bk.bytes > 0)
        lk.bwd.push_back(bk);
    if (l.kind == LayerKind::AttentionCore && cp > 1)
        contextKernels(lk, l, a, s, tokens, ab, index);

    // Tensor-parallel collectives, blocking the compute stream (Megatron-LM:
    // the f and g operators around each column/row pair).
    if (tp > 1) {
        // With tp_comm_overlap, the sequence-parallel all-gathers and
        // reduce-scatters of linear layers run beside their GEMMs.
        const bool overlap = s.tp_comm_overlap && sp && (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead);
        auto coll = [&](std::vector<Kernel>& into, Collective kind, double bytes) {
            into.push_back(collectiveKernel(index, kind, bytes, KernelGroup::Tensor,
                                            overlap && kind != Collective::AllReduce));
        };
        if (a.tp_role == TpRole::Row && l.kind != LayerKind::AttentionCore) {
            const double out = double(l.cost.output_elems_per_token) * tokens * ab;
            coll(lk.fwd, sp ? Collective::ReduceScatter : Collective::AllReduce, out);
            if (sp)
                coll(lk.bwd, Collective::AllGather, out);
        }
        if (a.tp_role == TpRole::Column && (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead)) {
            const double in =
                double(l.dims.in_features ? l.dims.in_features : l.cost.saved_elems_per_token) * tokens * ab;
            if (sp) {
                coll(lk.fwd, Collective::AllGather, in);
                // The backward needs the whole input for the weight gradient but
                // only its shard was kept: gather it again (Korthikanti et al. 2022, §4.2.2).
                coll(lk.bwd, Collective::AllGather, in);
                coll(lk.bwd, Collective::ReduceScatter, in);
            } else {
                coll(lk.bwd, Collective::AllReduce, in);
            }
        }
        // Vocabulary-parallel cross-entropy: all-reduces of each token's logit
        // maximum, target logit and sum of exponentials, fp32 (Megatron-LM
        // core_r0.10.0, megatron/core/tensor_parallel/cross_entropy.py).
        if (l.kind == LayerKind::Loss)
            for (int i = 0; i < 3; ++i)
                coll(lk.fwd, Collective::AllReduce, tokens * 4);
    }
    // Expert parallelism: tokens travel to their experts' ranks and back, an
    // all-to-all each way in the forward and again in the backward (GShard,
    // Lepikhin et al. 2020; Switch Transformer).
    if (l.kind == LayerKind::MoEExperts && s.ep > 1) {
        const double routed = tokens * double(std::max<int64_t>(1, l.dims.top_k)) *
                              double(l.dims.in_features) * ab / (sp ? tp : 1);
        for (auto* into : {&lk.fwd, &lk.bwd})
            for (int i = 0; i < 2; ++i)
                into->push_back(collectiveKernel(index, Collective::AllToAll, routed, KernelGroup::Expert));
    }
    return lk;
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
        std::vector<LayerKernels> lk(L);
        for (size_t i = 0; i < L; ++i) {
            layersOf[size_t(r.layers[i].stage)].push_back(int(i));
            lk[i] = layerKernels(m.layers[i], r.layers[i], s, s.micro_batch, p.seq_len, p.activation_bytes, int32_t(i));
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
