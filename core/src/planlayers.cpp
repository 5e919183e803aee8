// The kernels of one layer for one micro-batch on one device: its GEMMs or
// memory pass, their backward, and the tensor-, context- and
// expert-parallel collectives around them (planlayers.h).
#include "planlayers.h"

#include "layerfacts.h"

#include <algorithm>

namespace partita::detail {

namespace {

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

// What a layer's kernels are sized by, for one micro-batch on one device.
// With context parallelism a device holds b x seq / cp tokens, and its
// queries meet every key: 1/cp of the attention's work.
struct LayerShape
{
    const Layer& l;
    const LayerAssignment& a;
    const Strategy& s;
    int64_t b, seq;
    int ab;
    int32_t index;
    CostAt c;
    int tp, cp;
    bool split, sp;
    double tokens, seq2, shard;
    int ringSteps;
    double expertSplit;

    LayerShape(const Layer& l_, const LayerAssignment& a_, const Strategy& s_, int64_t b_, int64_t seq_, int ab_, int32_t index_)
        : l(l_), a(a_), s(s_), b(b_), seq(seq_), ab(ab_), index(index_), c(layerCostAt(l_, b_, seq_, ab_)), tp(s_.tp),
          cp(std::max(1, s_.cp)), split(a_.tp_role != TpRole::Replicated), sp(s_.sequence_parallel && s_.tp > 1),
          tokens(double(b_) * double(seq_) / cp), seq2(double(b_) * double(seq_) * double(seq_) / cp), shard(split ? tp : 1),
          ringSteps(cp > 1 && s_.cp_comm == ContextComm::P2P ? cp : 1),
          expertSplit(l_.kind == LayerKind::MoEExperts && s_.ep > 1 ? s_.ep : 1)
    {
    }
};

// A linear layer's (or router's, experts', convolution's) GEMM and its
// memory traffic; `mem` gets the bytes.
Kernel gemmKernel(const LayerShape& x, double& mm, double& mem)
{
    const Layer& l = x.l;
    Kernel f;
    f.layer = x.index;
    mm = x.c.forward_flops / x.shard / x.cp;
    f.kind = KernelKind::Gemm; // a convolution runs as an implicit GEMM
    f.ops = l.kind == LayerKind::MoEExperts ? int(std::max<int64_t>(1, 3 * l.dims.top_k)) : 1;
    if (l.kind != LayerKind::Conv) {
        f.m = int64_t(x.tokens);
        f.n = x.a.tp_role == TpRole::Column ? l.dims.out_features / x.tp : l.dims.out_features;
        f.k = x.a.tp_role == TpRole::Row ? l.dims.in_features / x.tp : l.dims.in_features;
    }
    // Bias, dropout and residual add after the matmul (Megatron fuses them
    // into one bias-dropout-add kernel): read the output and each extra
    // input, write the result, plus the dropout mask.
    const double out = double(l.cost.output_elems_per_token) * x.tokens * x.ab;
    const double epilogue = out * double(1 + l.inputs.size()) + double(l.cost.mask_bytes_per_token) * x.tokens;
    const double div = x.a.tp_role == TpRole::Column ? x.tp : (x.sp ? x.tp : 1);
    if (l.cost.mask_bytes_per_token || l.inputs.size() > 1 || !l.params.empty()) {
        mem = epilogue / div;
        f.mem_ops = 1;
    }
    // The matmul's own traffic: its inputs, outputs and weights.
    const double io = double(l.cost.io_elems_per_token) * x.tokens * x.ab;
    const double weights = double(l.parameterCount()) * x.ab / x.expertSplit;
    mem += (io + weights) / x.shard;
    if (x.s.precision == Precision::FP8 && (l.kind == LayerKind::Linear || l.kind == LayerKind::MoEExperts)) {
        // FP8: each GEMM input is cast from bf16 first (read 2 bytes, write
        // 1: Transformer Engine's cast-transpose), the activation and the
        // weight, every micro-batch; backward's gradient casts come with
        // its doubled traffic.
        const double in = double(l.dims.in_features) * x.tokens / (x.a.tp_role == TpRole::Row ? x.tp : 1);
        mem += 3.0 * (in + double(l.parameterCount()) / x.shard / x.expertSplit);
        f.mem_ops += 1;
    }
    return f;
}

// The attention core's two batched GEMMs (per block of keys on the ring).
Kernel attentionKernel(const LayerShape& x, double& mm, double& mem)
{
    const Layer& l = x.l;
    Kernel f;
    f.layer = x.index;
    mm = x.c.forward_flops / x.shard / x.cp;
    // A fused kernel skips the key blocks wholly above a causal mask's
    // diagonal: about half of them (FlashAttention-2, Dao 2023, §3.1.1,
    // measuring 1.7-1.8x). Unfused, QK^T is computed whole and masked.
    const bool skipsHalf = fusedAttention(x.s.attention) && l.dims.causal;
    if (skipsHalf)
        mm *= 0.5;
    f.kind = KernelKind::BatchedGemm;
    // QK^T and softmax(.)V; the ring runs them once per block of keys.
    // The shape is the work done: the executors, which run cuBLAS or
    // OpenBLAS GEMMs and no fused kernel, then do what a fused causal
    // kernel does (half the keys per query on average).
    f.ops = 2 * x.ringSteps;
    f.batch = x.b * std::max<int64_t>(1, l.dims.heads / x.tp);
    f.m = x.seq / x.cp;
    f.n = std::max<int64_t>(1, x.seq / x.ringSteps / (skipsHalf ? 2 : 1));
    f.k = l.dims.head_dim;
    // Fused, the scores stay on chip (and dropout's mask is regenerated
    // from its seed): only Q, K, V in and the output out (FlashAttention,
    // Dao et al. 2022, §3.1).
    mem = (fusedAttention(x.s.attention)
               ? 0.0
               : double(l.cost.io_elems_per_seq2) * x.seq2 * x.ab + double(l.cost.mask_bytes_per_seq2) * x.seq2) /
              x.shard +
          double(l.cost.io_elems_per_token) * x.tokens * x.ab / x.shard;
    f.mem_ops = 1;
    return f;
}

// A memory-bound layer's one pass.
Kernel memoryKernel(const LayerShape& x, double& mem)
{
    const Layer& l = x.l;
    Kernel f;
    f.layer = x.index;
    f.kind = KernelKind::Memory;
    f.ops = 0;
    const double io = double(l.cost.io_elems_per_token) * x.tokens * x.ab + double(l.cost.io_elems_per_seq2) * x.seq2 * x.ab +
                      double(l.cost.mask_bytes_per_token) * x.tokens;
    mem = io / (x.split || x.sp ? x.tp : 1);
    f.mem_ops = mem > 0 ? 1 : 0;
    return f;
}

// The backward of a layer's forward kernel `f` (of `mm` FLOPs, `mem` bytes).
Kernel backwardKernel(const LayerShape& x, const Kernel& f, double mm, double mem)
{
    const Layer& l = x.l;
    const bool twoGrads = !l.params.empty() || !l.tied_to.empty() || l.kind == LayerKind::AttentionCore;
    Kernel bk = f;
    // Backward: the input gradient and (with weights, or for attention's two
    // activation operands) a second GEMM of the same size; about twice the
    // forward's activation traffic; a layer with weights also reads them and
    // accumulates its weight gradient (read-modify-write).
    bk.flops = mm * (twoGrads && mm > 0 ? 2 : 1);
    bk.ops = f.ops * (twoGrads && mm > 0 ? 2 : 1);
    if (l.kind == LayerKind::AttentionCore && fusedAttention(x.s.attention) && mm > 0) {
        // Fused backward recomputes QK^T: 2.5 times the forward's FLOPs
        // (Dao 2023, FlashAttention-2, §4.1), five GEMMs.
        bk.flops = 2.5 * mm;
        bk.ops = 5 * x.ringSteps;
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
        bk.bytes += double(l.parameterCount()) / x.shard / x.expertSplit * (x.ab + 2 * detail::gradientBytes(x.s));
    return bk;
}

// Tensor-parallel collectives, blocking the compute stream (Megatron-LM:
// the f and g operators around each column/row pair).
void tensorCollectives(const LayerShape& x, LayerKernels& lk)
{
    const Layer& l = x.l;
    // With tp_comm_overlap, the sequence-parallel all-gathers and
    // reduce-scatters of linear layers run beside their GEMMs.
    const bool overlap = x.s.tp_comm_overlap && x.sp && (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead);
    auto coll = [&](std::vector<Kernel>& into, Collective kind, double bytes) {
        into.push_back(collectiveKernel(x.index, kind, bytes, KernelGroup::Tensor, overlap && kind != Collective::AllReduce));
    };
    if (x.a.tp_role == TpRole::Row && l.kind != LayerKind::AttentionCore) {
        const double out = double(l.cost.output_elems_per_token) * x.tokens * x.ab;
        coll(lk.fwd, x.sp ? Collective::ReduceScatter : Collective::AllReduce, out);
        if (x.sp)
            coll(lk.bwd, Collective::AllGather, out);
    }
    if (x.a.tp_role == TpRole::Column && (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead)) {
        const double in = double(l.dims.in_features ? l.dims.in_features : l.cost.saved_elems_per_token) * x.tokens * x.ab;
        if (x.sp) {
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
            coll(lk.fwd, Collective::AllReduce, x.tokens * 4);
}

} // namespace

// The kernels of one layer for one micro-batch on one device.
LayerKernels layerKernels(const Layer& l, const LayerAssignment& a, const Strategy& s, int64_t b, int64_t seq,
                          int ab, int32_t index)
{
    LayerKernels lk;
    const LayerShape x(l, a, s, b, seq, ab, index);
    double mm = 0, mem = 0;
    Kernel f;
    switch (l.kind) {
    case LayerKind::Linear:
    case LayerKind::LMHead:
    case LayerKind::MoERouter:
    case LayerKind::MoEExperts:
    case LayerKind::Conv:
        f = gemmKernel(x, mm, mem);
        break;
    case LayerKind::AttentionCore:
        f = attentionKernel(x, mm, mem);
        break;
    default:
        f = memoryKernel(x, mem);
        break;
    }
    f.flops = mm;
    if (mm <= 0)
        f.ops = 0;
    f.bytes = mem;
    const Kernel bk = backwardKernel(x, f, mm, mem);
    if (f.flops > 0 || f.bytes > 0)
        lk.fwd.push_back(f);
    if (bk.flops > 0 || bk.bytes > 0)
        lk.bwd.push_back(bk);
    if (l.kind == LayerKind::AttentionCore && x.cp > 1)
        contextKernels(lk, l, a, s, x.tokens, ab, index);
    if (x.tp > 1)
        tensorCollectives(x, lk);
    // Expert parallelism: tokens travel to their experts' ranks and back, an
    // all-to-all each way in the forward and again in the backward (GShard,
    // Lepikhin et al. 2020; Switch Transformer).
    if (l.kind == LayerKind::MoEExperts && s.ep > 1) {
        const double routed = x.tokens * double(std::max<int64_t>(1, l.dims.top_k)) * double(l.dims.in_features) * ab / (x.sp ? x.tp : 1);
        for (auto* into : {&lk.fwd, &lk.bwd})
            for (int i = 0; i < 2; ++i)
                into->push_back(collectiveKernel(index, Collective::AllToAll, routed, KernelGroup::Expert));
    }
    return lk;
}

} // namespace partita::detail
