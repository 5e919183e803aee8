// The simulator's costs one piece at a time: collectives over the node's
// links and NICs, one kernel's compute and memory time, the activations a
// layer keeps for backward. Every constant names its source.
#include "simcost.h"

#include "layerfacts.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace partita {

namespace sim {


const char* dtypeKey(Precision p)
{
    switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
    case Precision::FP8: return "fp8";
    }
    return "bf16";
}


// The ring through the node's devices whose slowest link is fastest, as
// NCCL's topology search picks rings over NVLink when they exist (e.g. the
// DGX-1 hybrid cube-mesh has NVLink-only rings). Exhaustive up to 8 devices,
// index order beyond.
LinkSpec bestRingLink(const Node& node)
{
    const int n = int(node.devices.size());
    if (n < 2)
        return node.intra;
    if (node.links.empty())
        return node.intra;
    std::vector<int> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    auto slowest = [&](const std::vector<int>& o) {
        const LinkSpec* worst = nullptr;
        for (int i = 0; i < n; ++i) {
            const LinkSpec& l = node.linkBetween(o[size_t(i)], o[size_t((i + 1) % n)]);
            if (!worst || l.bandwidth < worst->bandwidth)
                worst = &l;
        }
        return *worst;
    };
    LinkSpec best = slowest(order);
    if (n <= 8) {
        while (std::next_permutation(order.begin() + 1, order.end()))
            if (const LinkSpec l = slowest(order); l.bandwidth > best.bandwidth)
                best = l;
    }
    return best;
}

Paths pathsOf(const Node& node, const Calibration& cal)
{
    Paths p;
    // Memo per node layout: the ring search runs once for what the ring
    // depends on (the device count, the default link and the pair links),
    // compared by value: another node at a reused address with other links
    // gets its own ring.
    thread_local bool memoValid = false;
    thread_local size_t memoDevices = 0;
    thread_local LinkSpec memoIntra;
    thread_local std::vector<PairLink> memoLinks;
    thread_local LinkSpec memoRing;
    // Bandwidth and latency are what the ring reads (not the links' names or sources).
    auto same = [](const LinkSpec& x, const LinkSpec& y) { return x.bandwidth == y.bandwidth && x.latency == y.latency; };
    auto sameLinks = [&] {
        if (memoLinks.size() != node.links.size())
            return false;
        for (size_t i = 0; i < memoLinks.size(); ++i)
            if (memoLinks[i].a != node.links[i].a || memoLinks[i].b != node.links[i].b ||
                !same(memoLinks[i].link, node.links[i].link))
                return false;
        return true;
    };
    if (!memoValid || memoDevices != node.devices.size() || !same(memoIntra, node.intra) || !sameLinks()) {
        memoRing = bestRingLink(node);
        memoValid = true;
        memoDevices = node.devices.size();
        memoIntra = node.intra;
        memoLinks = node.links;
    }
    p.intraBw = std::max(1.0, memoRing.bandwidth * cal.intra_link_efficiency);
    p.intraLat = memoRing.latency;
    // The node's NICs together; collectiveTime shares them among the groups
    // that cross the node at once.
    const double nic = node.nic.count * node.nic.link.bandwidth;
    p.interBw = std::max(1.0, nic * cal.inter_link_efficiency);
    p.interLat = node.nic.link.latency;
    return p;
}

} // namespace sim

double collectiveTime(Collective kind, double bytes, const GroupShape& g, const Node& node, const Calibration& cal,
                      AllReduceAlgo algo)
{
    const int n = g.n;
    if (n <= 1 || bytes <= 0)
        return 0;
    const sim::Paths p = sim::pathsOf(node, cal);
    const bool multi = g.nodes > 1;
    // A ring (or tree) over several nodes crosses each node's NICs with the
    // same bytes as any of its edges, whatever the group's size in the node;
    // groups of the other ranks of the node cross at the same time and share
    // the NICs: node devices / members in the node groups.
    const int nodeDevices = std::max(1, int(node.devices.size()));
    const double sharing = std::max(1.0, double(nodeDevices) / std::max(1, g.per_node));
    const double interPerGroup = p.interBw / sharing;
    const double bw = multi ? std::min(p.intraBw, interPerGroup) : p.intraBw;
    const double lat = multi ? std::max(p.intraLat, p.interLat) : p.intraLat;
    const double fn = double(n);
    switch (kind) {
    case Collective::AllReduce:
        // Hierarchical (Jia et al. 2018, "hierarchical all-reduce"; Horovod's
        // HOROVOD_HIERARCHICAL_ALLREDUCE): reduce-scatter inside each node, an
        // all-reduce of each node's 1/k shard across nodes, an all-gather
        // inside each node, each phase priced as a ring.
        if (algo == AllReduceAlgo::Hierarchical && multi && g.per_node > 1) {
            const double k = g.per_node, N = g.nodes;
            const double rs = (k - 1) / k * bytes / p.intraBw + (k - 1) * p.intraLat;
            // k rings across nodes at once, each on 1/k of the bytes, sharing the NICs.
            const double ar = 2 * (N - 1) / N * bytes / interPerGroup + 2 * (N - 1) * p.interLat;
            return 2 * rs + ar;
        }
        // Tree: NCCL's double binary trees (Sanders, Speck and Traff 2009;
        // NCCL 2.4) pipeline a reduction up and a broadcast down two trees
        // that each carry half the data, so the links carry what a ring's do:
        // nccl-tests counts all-reduce's busbw as 2(n-1)/n x algbw whatever
        // the algorithm (doc/PERFORMANCE.md). Its latency is the depth,
        // log2 n links up and down.
        if (algo == AllReduceAlgo::Tree)
            return 2 * (fn - 1) / fn * bytes / bw + 2 * std::log2(fn) * lat;
        // Ring: busbw = algbw x 2(n-1)/n (nccl-tests doc/PERFORMANCE.md).
        return 2 * (fn - 1) / fn * bytes / bw + 2 * (fn - 1) * lat;
    case Collective::ReduceScatter:
    case Collective::AllGather:
    case Collective::AllToAll:
        // busbw = algbw x (n-1)/n, bytes being the whole array.
        return (fn - 1) / fn * bytes / bw + (fn - 1) * lat;
    case Collective::Broadcast:
    case Collective::Reduce:
        // NCCL runs both along its rings, pipelined in chunks: busbw = algbw
        // (nccl-tests doc/PERFORMANCE.md), n - 1 hops of latency.
        return bytes / bw + (fn - 1) * lat;
    }
    return 0;
}

namespace sim {



double matmulTime(const Ctx& x, double flops, int ops, bool fp8)
{
    if (flops <= 0)
        return 0;
    const double perOp = flops / ops;
    if (fp8)
        return flops / (x.fp8Peak * x.fp8Curve.at(perOp / 1e9));
    return flops / (x.peak * x.cal.matmul.at(perOp / 1e9));
}

// With FP8 training, the GEMMs of the linear layers run in FP8 (Transformer
// Engine's te.Linear); attention and the output layer stay in bf16.
bool fp8Gemm(const Ctx& x, const Kernel& k)
{
    return x.fp8Peak > 0 && (k.kind == KernelKind::Gemm) && k.layer >= 0 && size_t(k.layer) < x.m.layers.size() &&
           (x.m.layers[size_t(k.layer)].kind == LayerKind::Linear ||
            x.m.layers[size_t(k.layer)].kind == LayerKind::MoEExperts);
}

double memoryTime(const Ctx& x, double bytes)
{
    if (bytes <= 0 || x.dev.memory_bandwidth <= 0)
        return 0;
    return bytes / (x.dev.memory_bandwidth * x.cal.memory.at(bytes / 1e6));
}

GroupShape tpShape(const Ctx& x)
{
    GroupShape g;
    g.n = x.s.tp;
    g.per_node = std::min(x.s.tp, x.perNode);
    g.nodes = (x.s.tp + g.per_node - 1) / g.per_node;
    return g;
}

// A group whose `size` members are `stride` ranks apart.
GroupShape stridedShape(const Ctx& x, int size, int stride)
{
    GroupShape g;
    g.n = size;
    const int span = stride * size; // consecutive ranks the group spreads over
    if (span <= x.perNode) {
        g.nodes = 1;
        g.per_node = size;
    } else {
        g.per_node = std::max(1, x.perNode / stride);
        g.nodes = (size + g.per_node - 1) / g.per_node;
    }
    return g;
}

// Megatron-LM's rank order: tensor fastest, then context, then data (expert
// groups within it), then pipeline. Gradients are reduced over data and
// context ranks together, tp ranks apart.
GroupShape dpShape(const Ctx& x, int size)
{
    return stridedShape(x, size, x.s.tp);
}

GroupShape cpShape(const Ctx& x)
{
    return stridedShape(x, x.s.cp, x.s.tp);
}

GroupShape epShape(const Ctx& x)
{
    return stridedShape(x, x.s.ep, x.s.tp * x.s.cp);
}

// Saved activations of a layer for one micro-batch on one device
// (Korthikanti et al. 2022, §4.2): what a split layer keeps is split; a
// replicated layer's is split only with sequence parallelism; a row-parallel
// layer's input is split but its output dropout mask is not.
double savedBytes(const Ctx& x, const Layer& l, const LayerAssignment& a)
{
    const int tp = x.s.tp;
    const bool split = a.tp_role != TpRole::Replicated;
    const bool sp = x.s.sequence_parallel && tp > 1;
    // Context parallelism: a device keeps its 1/cp of the tokens, and its
    // queries' scores against every key.
    const double tokens = double(x.b) * double(x.seq) / x.s.cp;
    const double seq2 = double(x.b) * double(x.seq) * double(x.seq) / x.s.cp;
    const double inputSaved = double(l.cost.saved_elems_per_token) * tokens * x.ab;
    const double maskSaved = double(l.cost.mask_bytes_per_token) * tokens;
    // Fused attention keeps no s x s scores or masks, only the softmax's
    // log-sum-exp per row and head in fp32 (FlashAttention, Dao et al. 2022, §3.1).
    const bool fusedCore = l.kind == LayerKind::AttentionCore && fusedAttention(x.s.attention);
    const double seq2Saved =
        fusedCore ? 4.0 * double(std::max<int64_t>(1, l.dims.heads)) * tokens
                  : (double(l.cost.saved_elems_per_seq2) * x.ab + double(l.cost.mask_bytes_per_seq2)) * seq2;
    const double sampleSaved = double(l.cost.saved_elems_per_sample) * double(x.b) * x.ab;
    const double rep = sp ? tp : 1;
    double saved = 0;
    switch (a.tp_role) {
    case TpRole::Column:
        saved = inputSaved / (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead ? rep : tp) + maskSaved / tp +
                seq2Saved / tp;
        break;
    case TpRole::Row:
        saved = inputSaved / tp + maskSaved / rep + seq2Saved / tp;
        break;
    default:
        saved = (inputSaved + maskSaved + seq2Saved) / rep;
        break;
    }
    if (l.kind == LayerKind::Loss && tp > 1)
        saved = inputSaved / tp; // vocabulary-parallel logits
    saved += sampleSaved;
    if (a.recompute == Recompute::Selective && l.kind == LayerKind::AttentionCore)
        saved -= seq2Saved / (split ? tp : 1);
    return saved;
}

// The fused-attention efficiency a kernel runs at, when the calibration has
// one for its implementation ("flash2_" tables for FlashAttention-2).
const EfficiencyCurve* fusedAttentionCurve(const Ctx& x, const Kernel& k, Phase phase)
{
    if (k.kind != KernelKind::BatchedGemm || !fusedAttention(x.s.attention) || k.layer < 0 ||
        size_t(k.layer) >= x.m.layers.size() || x.m.layers[size_t(k.layer)].kind != LayerKind::AttentionCore)
        return nullptr;
    const bool causal = x.m.layers[size_t(k.layer)].dims.causal != 0;
    const std::string key = std::string(x.s.attention == Attention::Flash2 ? "flash2_" : "") +
                            (phase == Phase::Backward ? "backward" : causal ? "forward_causal" : "forward");
    auto it = x.cal.fused_attention.find(key);
    return it == x.cal.fused_attention.end() ? nullptr : &it->second;
}

// Time of one kernel on one device. Compute and memory time add up (the
// calibration's "sum" mode, in which the default A100 tables were fitted) or
// overlap fully ("max" mode); each launched kernel costs the launch overhead.
double kernelTime(const Ctx& x, const Kernel& k, Phase phase)
{
    if (k.kind == KernelKind::Collective)
        return collectiveTime(k.coll, k.coll_bytes,
                              k.group == KernelGroup::Expert    ? epShape(x)
                              : k.group == KernelGroup::Context ? cpShape(x)
                                                                : tpShape(x),
                              x.node, x.cal);
    double mm = matmulTime(x, k.flops, std::max(1, k.ops), fp8Gemm(x, k));
    if (const EfficiencyCurve* fa = fusedAttentionCurve(x, k, phase); fa && k.flops > 0) {
        // A fused kernel's rate at the keys it sees (a ring block: seq / cp),
        // as the published tables index it: by sequence length, causal or
        // not. (A causal kernel's shape has half of them, the work it does.)
        const bool causal = x.m.layers[size_t(k.layer)].dims.causal != 0;
        mm = k.flops / (x.peak * fa->at(double(k.n) * (causal ? 2 : 1)));
    }
    // Tensor-core GEMMs want every dimension a multiple of 16 bytes of
    // elements (NVIDIA Deep Learning Performance Guide, "Matrix
    // Multiplication Background", Tensor Core requirements); what a GEMM
    // keeps without is the calibration's measured factor (1: not measured).
    const int64_t align = std::max(1, 16 / std::max(1, x.ab));
    if ((k.kind == KernelKind::Gemm || k.kind == KernelKind::BatchedGemm) && k.m > 0 &&
        (k.m % align || k.n % align || k.k % align))
        mm /= x.cal.unaligned_matmul_factor;
    const double mem = memoryTime(x, k.bytes);
    return (x.cal.additive ? mm + mem : std::max(mm, mem)) + x.cal.kernel_overhead * (k.ops + k.mem_ops);
}

// Transformer Engine's userbuffers overlap the reduce-scatter after a
// row-parallel forward GEMM (attention projection, MLP's second GEMM) by the
// "pipeline" method, whose communication kernels keep 16 SMs with an SM
// margin: the GEMM runs on the rest (TE's initialize_ub defaults for
// proj_fprop and fc2_fprop; NeMo's DGX Cloud Llama 3.1 YAMLs take 16-24).
// Returns the fraction by which the GEMM before `k` lengthens; 0 where none.
double smMarginSlowdown(const Ctx& x, const Kernel& k, Phase phase)
{
    constexpr int kPipelineRsSms = 16;
    if (!k.overlapped || k.kind != KernelKind::Collective || k.coll != Collective::ReduceScatter ||
        k.group != KernelGroup::Tensor || phase == Phase::Backward || x.dev.kind != "gpu" ||
        x.dev.cores <= 2 * kPipelineRsSms)
        return 0;
    return double(kPipelineRsSms) / double(x.dev.cores - kPipelineRsSms);
}

} // namespace sim

} // namespace partita
