// Step-time, memory and trace prediction. See simulator.h and
// docs/architecture.md ("Simulator") for the model; every constant below
// names its source.
#include "partita/core/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace partita {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

int activationBytes(Precision p) { return p == Precision::FP32 ? 4 : 2; }
const char* dtypeKey(Precision p)
{
    switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
    }
    return "bf16";
}

// Link figures a group sees, per member.
struct Paths
{
    double intraBw = 0, intraLat = 0;
    double interBw = 0, interLat = 0;
};

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
    // Memo per node: the ring search runs once per node layout.
    thread_local const Node* memoNode = nullptr;
    thread_local size_t memoLinks = 0;
    thread_local size_t memoDevices = 0;
    thread_local double memoIntra = 0;
    thread_local LinkSpec memoRing;
    if (memoNode != &node || memoLinks != node.links.size() || memoDevices != node.devices.size() ||
        memoIntra != node.intra.bandwidth) {
        memoRing = bestRingLink(node);
        memoNode = &node;
        memoLinks = node.links.size();
        memoDevices = node.devices.size();
        memoIntra = node.intra.bandwidth;
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

} // namespace

double collectiveTime(Collective kind, double bytes, const GroupShape& g, const Node& node, const Calibration& cal,
                      AllReduceAlgo algo)
{
    const int n = g.n;
    if (n <= 1 || bytes <= 0)
        return 0;
    const Paths p = pathsOf(node, cal);
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
        if (algo == AllReduceAlgo::Hierarchical && multi && g.per_node > 1) {
            const double k = g.per_node, N = g.nodes;
            const double rs = (k - 1) / k * bytes / p.intraBw + (k - 1) * p.intraLat;
            // k rings across nodes at once, each on 1/k of the bytes, sharing the NICs.
            const double ar = 2 * (N - 1) / N * bytes / interPerGroup + 2 * (N - 1) * p.interLat;
            return 2 * rs + ar;
        }
        if (algo == AllReduceAlgo::Tree)
            return 2 * bytes / bw + 2 * std::log2(fn) * lat;
        // Ring: busbw = algbw x 2(n-1)/n (nccl-tests doc/PERFORMANCE.md).
        return 2 * (fn - 1) / fn * bytes / bw + 2 * (fn - 1) * lat;
    case Collective::ReduceScatter:
    case Collective::AllGather:
    case Collective::AllToAll:
        // busbw = algbw x (n-1)/n, bytes being the whole array.
        return (fn - 1) / fn * bytes / bw + (fn - 1) * lat;
    case Collective::Broadcast:
    case Collective::Reduce:
        return bytes / bw + std::log2(fn) * lat;
    }
    return 0;
}

namespace {

// Expected distinct ranks among T draws from Zipf(1) over V ranks:
// sum_k 1 - (1 - p_k)^T with p_k = 1 / (k H_V). Exact for the first ranks;
// beyond, where p_k T is small, 1 - exp(-a/k) with a = T / H_V integrates in
// closed form: [x - x e^{-a/x} + a E1(a/x)] (E1 the exponential integral).
double zipfDistinct(int64_t V, double T)
{
    constexpr int64_t kExact = 2048;
    const double H = std::log(double(V)) + 0.5772156649015329 + 1 / (2.0 * double(V)); // harmonic number
    double sum = 0;
    const int64_t exact = std::min(V, kExact);
    for (int64_t k = 1; k <= exact; ++k)
        sum += 1 - std::pow(1 - 1 / (double(k) * H), T);
    if (V > exact) {
        const double a = T / H;
        auto F = [a](double x) { return x - x * std::exp(-a / x) - a * std::expint(-a / x); }; // E1(z) = -Ei(-z)
        sum += F(double(V) + 0.5) - F(double(exact) + 0.5);
    }
    return std::min(sum, double(V));
}

struct Ctx
{
    const Model& m;
    const Cluster& c;
    const ResolvedStrategy& r;
    const Strategy& s;
    const DeviceSpec& dev;
    const Node& node;
    Calibration cal;
    int ab = 2;          // activation bytes
    int64_t b = 1;       // micro-batch
    int64_t seq = 1;
    double peak = 0;     // FLOP/s at the strategy's precision
    int perNode = 1;
};

double matmulTime(const Ctx& x, double flops, int ops = 1)
{
    if (flops <= 0)
        return 0;
    const double perOp = flops / ops;
    return flops / (x.peak * x.cal.matmul.at(perOp / 1e9));
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

// Data-parallel group: members are tp ranks apart (Megatron's rank order:
// tensor fastest, then data, then pipeline).
GroupShape dpShape(const Ctx& x, int size)
{
    GroupShape g;
    g.n = size;
    const int span = x.s.tp * size; // consecutive ranks the group spreads over
    if (span <= x.perNode) {
        g.nodes = 1;
        g.per_node = size;
    } else {
        g.per_node = std::max(1, x.perNode / x.s.tp);
        g.nodes = (size + g.per_node - 1) / g.per_node;
    }
    return g;
}

struct LayerCostTimes
{
    double fwd = 0, bwd = 0;       // compute + blocking TP collectives
    double tpFwd = 0, tpBwd = 0;   // of which TP collectives
    double fwdFlops = 0, bwdFlops = 0;
    double saved = 0;              // activation bytes kept for backward, one micro-batch, one device
    double outBytes = 0;           // what goes to the next stage
    double paramsLocal = 0;        // parameters this device holds for the layer
};

LayerCostTimes layerTimes(const Ctx& x, const Layer& l, const LayerAssignment& a)
{
    LayerCostTimes t;
    const CostAt c = layerCostAt(l, x.b, x.seq, x.ab);
    const int tp = x.s.tp;
    const bool split = a.tp_role != TpRole::Replicated;
    const bool sp = x.s.sequence_parallel && tp > 1;
    const double tokens = double(x.b) * double(x.seq);
    const double shard = split ? tp : 1;

    // Matmul work and memory-bound work of the forward pass.
    double mm = 0, mem = 0;
    int gemms = 1;
    switch (l.kind) {
    case LayerKind::Linear:
    case LayerKind::LMHead:
    case LayerKind::MoERouter:
    case LayerKind::MoEExperts:
    case LayerKind::Conv: {
        mm = c.forward_flops / shard;
        if (l.kind == LayerKind::MoEExperts)
            gemms = int(std::max<int64_t>(1, 3 * l.dims.top_k));
        // Bias, dropout and residual add after the matmul (Megatron fuses them
        // into one bias-dropout-add kernel): read the output and each extra
        // input, write the result, plus the dropout mask.
        const double out = double(l.cost.output_elems_per_token) * tokens * x.ab;
        const double epilogue = out * double(1 + l.inputs.size()) + double(l.cost.mask_bytes_per_token) * tokens;
        const double div = a.tp_role == TpRole::Column ? tp : (sp ? tp : 1);
        mem = l.cost.mask_bytes_per_token || l.inputs.size() > 1 || !l.params.empty() ? epilogue / div : 0;
        break;
    }
    case LayerKind::AttentionCore: {
        mm = c.forward_flops / shard;
        gemms = 2; // QK^T and softmax(.)V
        const double seq2 = double(x.b) * double(x.seq) * double(x.seq);
        mem = (double(l.cost.io_elems_per_seq2) * seq2 * x.ab + double(l.cost.mask_bytes_per_seq2) * seq2) / shard;
        break;
    }
    default: {
        const double seq2 = double(x.b) * double(x.seq) * double(x.seq);
        const double io = double(l.cost.io_elems_per_token) * tokens * x.ab + double(l.cost.io_elems_per_seq2) * seq2 * x.ab +
                          double(l.cost.mask_bytes_per_token) * tokens;
        mem = io / (split || sp ? tp : 1);
        break;
    }
    }
    // The matmul's own traffic: its inputs, outputs and weights.
    if (mm > 0 && l.kind != LayerKind::AttentionCore) {
        const double io = double(l.cost.io_elems_per_token) * tokens * x.ab;
        const double weights = double(l.parameterCount()) * (x.ab) / (l.kind == LayerKind::MoEExperts && x.s.ep > 1 ? x.s.ep : 1);
        mem += (io + weights) / shard;
    } else if (l.kind == LayerKind::AttentionCore) {
        mem += double(l.cost.io_elems_per_token) * tokens * x.ab / shard;
    }
    const double mmFwd = matmulTime(x, mm, gemms);
    const double memFwd = memoryTime(x, mem);
    const bool twoGrads = !l.params.empty() || !l.tied_to.empty() || l.kind == LayerKind::AttentionCore;
    const double launches = x.cal.kernel_overhead * (mm > 0 ? gemms : 0) + (mem > 0 ? x.cal.kernel_overhead : 0);
    t.fwdFlops = c.forward_flops / shard;
    t.bwdFlops = c.backward_flops / shard;
    // Compute and memory time add up (the calibration's "sum" mode, in which
    // the default A100 tables were fitted) or overlap fully ("max" mode).
    auto combine = [&](double a, double b) { return x.cal.additive ? a + b : std::max(a, b); };
    // Backward reads and writes about twice the forward's activations; a layer
    // with weights also reads them for the input gradient and writes its weight
    // gradient, accumulated across micro-batches (read-modify-write with fp32
    // main gradients, Megatron-LM's gradient accumulation).
    double memBwd = 2 * mem;
    if (!l.params.empty() && mm > 0) {
        const int gb = x.s.precision == Precision::FP32 || x.s.fp32_grad_accumulation ? 4 : 2;
        const double w = double(l.parameterCount()) / shard / (l.kind == LayerKind::MoEExperts && x.s.ep > 1 ? x.s.ep : 1);
        memBwd += w * (x.ab + 2 * gb);
    }
    double fwd = combine(mmFwd, memFwd) + launches;
    double bwd = combine(mmFwd * (twoGrads && mm > 0 ? 2 : 1), memoryTime(x, memBwd)) + launches * 2;

    // Tensor-parallel collectives, blocking on the compute stream (Megatron-LM
    // 2021/2022: f and g operators around each column/row pair).
    if (tp > 1) {
        const GroupShape g = tpShape(x);
        auto coll = [&](Collective k, double bytes) { return collectiveTime(k, bytes, g, x.node, x.cal); };
        if (a.tp_role == TpRole::Row && l.kind != LayerKind::AttentionCore) {
            const double out = double(l.cost.output_elems_per_token) * tokens * x.ab;
            t.tpFwd += sp ? coll(Collective::ReduceScatter, out) : coll(Collective::AllReduce, out);
            if (sp)
                t.tpBwd += coll(Collective::AllGather, out);
        }
        if (a.tp_role == TpRole::Column && (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead)) {
            const double in = double(l.dims.in_features ? l.dims.in_features : l.cost.saved_elems_per_token) * tokens * x.ab;
            if (sp) {
                t.tpFwd += coll(Collective::AllGather, in);
                // The backward needs the whole input for the weight gradient but
                // only its shard was kept: gather it again (Korthikanti et al. 2022, §4.2.2).
                t.tpBwd += coll(Collective::AllGather, in) + coll(Collective::ReduceScatter, in);
            } else {
                t.tpBwd += coll(Collective::AllReduce, in);
            }
        }
        if (l.kind == LayerKind::Loss)
            t.tpFwd += 3 * coll(Collective::AllReduce, tokens * 4); // vocabulary-parallel cross-entropy: max, sum, target logit
    }
    t.fwd = fwd + t.tpFwd;
    t.bwd = bwd + t.tpBwd;

    // Saved activations (Korthikanti et al. 2022, §4.2): what a split layer
    // keeps is split; a replicated layer's is split only with sequence parallelism;
    // a row-parallel layer's input is split but its output dropout mask is not.
    const double seq2 = double(x.b) * double(x.seq) * double(x.seq);
    const double inputSaved = double(l.cost.saved_elems_per_token) * tokens * x.ab;
    const double maskSaved = double(l.cost.mask_bytes_per_token) * tokens;
    const double seq2Saved = (double(l.cost.saved_elems_per_seq2) * x.ab + double(l.cost.mask_bytes_per_seq2)) * seq2;
    const double sampleSaved = double(l.cost.saved_elems_per_sample) * double(x.b) * x.ab;
    const double rep = sp ? tp : 1;
    switch (a.tp_role) {
    case TpRole::Column:
        t.saved = inputSaved / (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead ? rep : tp) + maskSaved / tp +
                  seq2Saved / tp;
        break;
    case TpRole::Row:
        t.saved = inputSaved / tp + maskSaved / rep + seq2Saved / tp;
        break;
    default:
        t.saved = (inputSaved + maskSaved + seq2Saved) / rep;
        break;
    }
    if (l.kind == LayerKind::Loss && tp > 1)
        t.saved = inputSaved / tp; // vocabulary-parallel logits
    t.saved += sampleSaved;
    if (a.recompute == Recompute::Selective && l.kind == LayerKind::AttentionCore)
        t.saved -= seq2Saved / (split ? tp : 1);
    t.outBytes = double(l.cost.output_elems_per_token) * tokens * x.ab / (sp ? tp : 1);
    double params = double(l.parameterCount());
    if (l.kind == LayerKind::MoEExperts && x.s.ep > 1)
        params /= x.s.ep;
    t.paramsLocal = params / shard;
    return t;
}

struct Op
{
    bool forward = true;
    int chunk = 0;
    int micro = 0;
};

std::vector<Op> scheduleFor(int d, int pp, int C, int64_t M, PipelineSchedule sched)
{
    std::vector<Op> ops;
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
    // 1F1B and its interleaved form (Narayanan et al. 2021, §2.2; Megatron-LM's schedules.py order).
    auto fwdAt = [&](int64_t k) {
        const int64_t inGroup = k % (int64_t(pp) * C);
        return Op{true, int(inGroup / pp), int((k / (int64_t(pp) * C)) * pp + k % pp)};
    };
    auto bwdAt = [&](int64_t k) {
        const int64_t inGroup = k % (int64_t(pp) * C);
        return Op{false, int(C - 1 - inGroup / pp), int((k / (int64_t(pp) * C)) * pp + k % pp)};
    };
    int64_t warm = C == 1 ? std::min<int64_t>(pp - d - 1, M)
                          : std::min<int64_t>(int64_t(pp - d - 1) * 2 + int64_t(C - 1) * pp, total);
    for (int64_t k = 0; k < warm; ++k)
        ops.push_back(C == 1 ? Op{true, 0, int(k)} : fwdAt(k));
    for (int64_t i = 0; i < total - warm; ++i) {
        ops.push_back(C == 1 ? Op{true, 0, int(warm + i)} : fwdAt(warm + i));
        ops.push_back(C == 1 ? Op{false, 0, int(i)} : bwdAt(i));
    }
    for (int64_t i = total - warm; i < total; ++i)
        ops.push_back(C == 1 ? Op{false, 0, int(i)} : bwdAt(i));
    return ops;
}

} // namespace

Result<SimResult> simulate(const Model& m, const Cluster& c, const Strategy& s, const SimOptions& o)
{
    auto resolved = resolveStrategy(s, m, c);
    if (!resolved)
        return resolved.error();
    const ResolvedStrategy& r = *resolved;
    const Node& node = c.nodes.front();
    const DeviceSpec& dev = node.devices.front();
    Ctx x{m, c, r, s, dev, node, o.calibration ? *o.calibration : defaultCalibration(dev)};
    x.ab = activationBytes(s.precision);
    x.b = s.micro_batch;
    x.seq = m.sequence ? (o.seq_len > 0 ? o.seq_len : m.seq_len) : 1;
    x.perNode = int(node.devices.size());
    {
        auto it = dev.peak_flops.find(dtypeKey(s.precision));
        if (it == dev.peak_flops.end() && s.precision == Precision::BF16)
            it = dev.peak_flops.find("fp16");
        if (it == dev.peak_flops.end())
            return Error{"cluster '" + c.name + "'", "device " + dev.name,
                         std::string("no peak FLOP/s for ") + dtypeKey(s.precision) + ": add it to the cluster file"};
        x.peak = it->second;
    }
    if (dev.memory_bandwidth <= 0)
        return Error{"cluster '" + c.name + "'", "device " + dev.name, "memory bandwidth unknown: add it to the cluster file"};

    SimResult res;
    res.calibration_source = x.cal.source;
    res.notes = r.warnings;
    const int pp = s.pp, C = r.virtual_stages / s.pp, V = r.virtual_stages;
    const int64_t M = r.micro_batches;
    const size_t L = m.layers.size();

    // Per-layer costs and per-virtual-stage sums.
    std::vector<LayerCostTimes> lt(L);
    struct Chunk
    {
        std::vector<int> layers;
        double fwd = 0, bwd = 0, recompute = 0, tpFwd = 0, tpBwd = 0, saved = 0, outBytes = 0;
        double fwdFlops = 0, bwdFlops = 0;
    };
    std::vector<Chunk> vs(static_cast<size_t>(V));
    for (size_t i = 0; i < L; ++i) {
        const LayerAssignment& a = r.layers[i];
        lt[i] = layerTimes(x, m.layers[i], a);
        Chunk& ch = vs[size_t(a.stage)];
        ch.layers.push_back(int(i));
        ch.fwd += lt[i].fwd;
        ch.bwd += lt[i].bwd;
        ch.tpFwd += lt[i].tpFwd;
        ch.tpBwd += lt[i].tpBwd;
        ch.fwdFlops += lt[i].fwdFlops;
        ch.bwdFlops += lt[i].bwdFlops;
        ch.outBytes = lt[i].outBytes;
    }
    // Recomputation: full recomputes the forward of every layer of a block
    // before its backward and keeps only each block's input; selective
    // recomputes the attention core (Korthikanti et al. 2022, §5).
    const bool sp = s.sequence_parallel && s.tp > 1;
    for (int v = 0; v < V; ++v) {
        Chunk& ch = vs[size_t(v)];
        std::string lastBlock;
        for (int i : ch.layers) {
            const Layer& l = m.layers[size_t(i)];
            const LayerAssignment& a = r.layers[size_t(i)];
            if (a.recompute == Recompute::Full && !l.block.empty()) {
                ch.recompute += lt[size_t(i)].fwd;
                if (l.block != lastBlock) {
                    const double hidden = double(m.dims.hidden ? m.dims.hidden : l.dims.in_features);
                    ch.saved += hidden * double(x.b) * double(x.seq) * x.ab / (sp ? s.tp : 1);
                    lastBlock = l.block;
                }
                continue;
            }
            if (a.recompute == Recompute::Selective && l.kind == LayerKind::AttentionCore)
                ch.recompute += lt[size_t(i)].fwd;
            ch.saved += lt[size_t(i)].saved;
        }
    }

    // Pipeline: run each device's schedule against its neighbours'.
    auto rankOfStage = [&](int d) { return d * s.dp * s.tp; };
    auto p2pTime = [&](int fromV, int toV, double bytes) {
        const int a = rankOfStage(fromV % pp), b = rankOfStage(toV % pp);
        if (a == b || bytes <= 0)
            return 0.0;
        const bool sameNode = a / x.perNode == b / x.perNode;
        const Paths p = pathsOf(node, x.cal);
        // Every rank of the stage sends at once: one NIC share each.
        return sameNode ? bytes / p.intraBw + p.intraLat
                        : bytes / std::min(p.intraBw, p.interBw / x.perNode) + p.interLat;
    };
    std::vector<std::vector<Op>> ops(static_cast<size_t>(pp));
    for (int d = 0; d < pp; ++d)
        ops[size_t(d)] = scheduleFor(d, pp, C, M, C > 1 ? PipelineSchedule::Interleaved : s.schedule);
    std::vector<std::vector<double>> fEnd(static_cast<size_t>(V), std::vector<double>(size_t(M), -1));
    std::vector<std::vector<double>> bEnd = fEnd, bStart = fEnd;
    std::vector<double> devFree(static_cast<size_t>(pp), 0), busy(static_cast<size_t>(pp), 0), tpBusy(static_cast<size_t>(pp), 0), p2pBusy(static_cast<size_t>(pp), 0);
    std::vector<size_t> ptr(static_cast<size_t>(pp), 0);
    struct Done
    {
        Op op;
        double start, end;
    };
    std::vector<std::vector<Done>> done(static_cast<size_t>(pp));
    // ZeRO-3 gathers each chunk's parameters before every forward and backward,
    // prefetched one op ahead on the communication stream.
    std::vector<double> commFree(static_cast<size_t>(pp), 0), zeroWait(static_cast<size_t>(pp), 0);
    std::vector<double> chunkParams(static_cast<size_t>(V), 0);
    for (size_t i = 0; i < L; ++i)
        chunkParams[size_t(r.layers[i].stage)] += lt[i].paramsLocal;
    const int paramBytes = s.precision == Precision::FP32 ? 4 : 2;
    const GroupShape dpg = dpShape(x, s.dp);
    size_t remaining = 0;
    for (const auto& d : ops)
        remaining += d.size();
    while (remaining > 0) {
        bool progress = false;
        for (int d = 0; d < pp; ++d) {
            while (ptr[size_t(d)] < ops[size_t(d)].size()) {
                const Op op = ops[size_t(d)][ptr[size_t(d)]];
                const int v = op.chunk * pp + d;
                double ready = 0;
                if (op.forward && v > 0) {
                    if (fEnd[size_t(v - 1)][size_t(op.micro)] < 0)
                        break;
                    ready = fEnd[size_t(v - 1)][size_t(op.micro)];
                } else if (!op.forward && v < V - 1) {
                    if (bEnd[size_t(v + 1)][size_t(op.micro)] < 0)
                        break;
                    ready = bEnd[size_t(v + 1)][size_t(op.micro)];
                } else if (!op.forward) {
                    ready = fEnd[size_t(v)][size_t(op.micro)];
                }
                const Chunk& ch = vs[size_t(v)];
                double start = std::max(devFree[size_t(d)], ready);
                if (s.zero_stage == 3 && s.dp > 1) {
                    const double g = collectiveTime(Collective::AllGather, chunkParams[size_t(v)] * paramBytes * s.dp, dpg, node, x.cal);
                    const double gStart = std::max(commFree[size_t(d)], done[size_t(d)].empty() ? 0.0 : done[size_t(d)].back().start);
                    commFree[size_t(d)] = gStart + g;
                    if (commFree[size_t(d)] > start) {
                        zeroWait[size_t(d)] += commFree[size_t(d)] - start;
                        start = commFree[size_t(d)];
                    }
                }
                // Megatron-LM's pipeline sends block the stage until the
                // neighbour receives (p2p_communication.py waits on the requests).
                const double send = op.forward ? (v < V - 1 ? p2pTime(v, v + 1, ch.outBytes) : 0.0)
                                               : (v > 0 ? p2pTime(v, v - 1, vs[size_t(v - 1)].outBytes) : 0.0);
                const double dur = (op.forward ? ch.fwd : ch.bwd + ch.recompute) + send;
                p2pBusy[size_t(d)] += send;
                const double end = start + dur;
                if (op.forward) {
                    fEnd[size_t(v)][size_t(op.micro)] = end;
                } else {
                    bEnd[size_t(v)][size_t(op.micro)] = end;
                    bStart[size_t(v)][size_t(op.micro)] = start;
                    if (s.zero_stage == 3 && s.dp > 1) // reduce-scatter this micro-batch's gradients
                        commFree[size_t(d)] = std::max(commFree[size_t(d)], end) +
                                              collectiveTime(Collective::ReduceScatter, chunkParams[size_t(v)] * 4 * s.dp, dpg, node, x.cal);
                }
                busy[size_t(d)] += dur;
                tpBusy[size_t(d)] += op.forward ? ch.tpFwd : ch.tpBwd + (ch.recompute > 0 ? ch.tpFwd : 0);
                devFree[size_t(d)] = end;
                done[size_t(d)].push_back({op, start, end});
                ++ptr[size_t(d)];
                --remaining;
                progress = true;
            }
        }
        if (!progress)
            return Error{"strategy", "pipeline schedule", "internal: the schedule deadlocked"};
    }

    // Gradient synchronization after each chunk's last backward, bucket by
    // bucket in backward order, on the data-parallel stream.
    const int gradBytes = s.precision == Precision::FP32 || s.fp32_grad_accumulation ? 4 : 2;
    const double tokensPerWorker = double(s.global_batch / s.dp) * double(x.seq);
    std::vector<double> syncEnd(static_cast<size_t>(pp), 0), syncBusy(static_cast<size_t>(pp), 0);
    res.layers.resize(L);
    std::vector<double> layerReady(L, 0);
    for (int v = 0; v < V; ++v) {
        const Chunk& ch = vs[size_t(v)];
        double t = bStart[size_t(v)][size_t(M - 1)] + ch.recompute;
        for (auto it = ch.layers.rbegin(); it != ch.layers.rend(); ++it) {
            t += lt[size_t(*it)].bwd;
            layerReady[size_t(*it)] = t;
        }
    }
    auto syncTime = [&](size_t i) -> double {
        const Layer& l = m.layers[i];
        const SyncAtom& a = r.layers[i].sync;
        if (s.dp <= 1 || a.method == SyncMethod::None || l.params.empty())
            return 0;
        double bytes = lt[i].paramsLocal * gradBytes;
        if (a.compression == Compression::FP16 && gradBytes == 4)
            bytes /= 2;
        if (a.compression == Compression::PowerSGD) {
            double compressed = 0;
            for (const auto& p : l.params) {
                const double e = double(p.numel()) / (r.layers[i].tp_role == TpRole::Replicated ? 1 : s.tp);
                compressed += p.shape.size() == 2 ? a.powersgd_rank * (double(p.shape[0]) + double(p.shape[1])) : e;
            }
            bytes = compressed * gradBytes;
        }
        // Sparse embeddings: only the rows the tokens touch, with their
        // indices. Token ids follow Zipf's law (frequency ~ 1/rank; Zipf 1949,
        // Piantadosi 2014): expected distinct rows sum_r 1 - (1 - p_r)^T.
        // Position tables are touched up to the sequence length; other tables
        // are drawn uniformly. With local replication a node's workers merge
        // their rows first.
        const bool sparse = l.sparse_grad && a.sparse && a.method != SyncMethod::SFB;
        const bool localAgg = a.method == SyncMethod::ParameterServer && a.ps_local_replication && dpg.per_node > 1;
        auto sparseBytes = [&](double tokens) {
            double rowsBytes = 0;
            for (const auto& p : l.params) {
                const double rows = double(p.shape.front());
                const double width = double(p.numel()) / rows;
                double touched = 0;
                if (int64_t(rows) == l.dims.vocab) {
                    touched = zipfDistinct(int64_t(rows), tokens);
                } else if (int64_t(rows) >= x.seq && int64_t(rows) <= 4 * std::max<int64_t>(x.seq, m.seq_len)) {
                    touched = std::min(rows, double(x.seq)); // position embeddings
                } else {
                    touched = rows * (1 - std::pow(1 - 1 / rows, tokens));
                }
                rowsBytes += touched * (width * gradBytes + 8);
            }
            return rowsBytes;
        };
        const double workerBytes = sparse ? sparseBytes(tokensPerWorker) : bytes;
        const double nodeBytes = sparse && localAgg ? sparseBytes(tokensPerWorker * dpg.per_node) : workerBytes;
        bytes = workerBytes;
        switch (a.method) {
        case SyncMethod::AllReduce:
            if (sparse) // all-gather of every worker's rows
                return collectiveTime(Collective::AllGather, bytes * s.dp, dpg, node, x.cal);
            if (s.zero_stage >= 1) // ZeRO: reduce-scatter now, all-gather parameters after the update
                return collectiveTime(Collective::ReduceScatter, bytes, dpg, node, x.cal);
            return collectiveTime(Collective::AllReduce, bytes, dpg, node, x.cal, a.algorithm);
        case SyncMethod::ParameterServer: {
            // Workers push gradients and pull parameters; servers sit on the
            // worker nodes (as AutoDist places them), so a node's NICs carry,
            // each way, its workers' bytes and its servers' share of everyone's.
            const Paths p = pathsOf(node, x.cal);
            const int nodes = int(c.nodes.size());
            const int shards = std::max(1, a.ps_shards > 0 ? a.ps_shards : nodes);
            const double pushersPerNode = localAgg ? 1 : dpg.per_node;
            const double pushers = pushersPerNode * dpg.nodes;
            const double perPush = localAgg ? nodeBytes : workerBytes;
            const double workerSide = perPush * pushersPerNode;
            // Servers per node: shards spread over nodes; one server holds all with SingleServer.
            const double serverSide = pushers * perPush * (a.ps_placement == PsPlacement::SingleServer ? 1.0 : 1.0 / std::min(nodes, shards));
            double t = (workerSide + serverSide) / p.interBw + 2 * p.interLat;
            if (localAgg) // reduce inside the node before the push, broadcast after the pull
                t += 2 * collectiveTime(Collective::Reduce, workerBytes, GroupShape{dpg.per_node, 1, dpg.per_node}, node, x.cal);
            return t;
        }
        case SyncMethod::SFB: {
            // Sufficient factors: each worker broadcasts u (K x M) and v (K x N)
            // of its K rows to the other P-1 workers (Xie et al. 2016; Poseidon).
            const double K = tokensPerWorker;
            const double Mdim = double(l.dims.out_features), Ndim = double(l.dims.in_features);
            const double factors = K * (Mdim + Ndim) * x.ab;
            return collectiveTime(Collective::AllGather, factors * s.dp, dpg, node, x.cal);
        }
        case SyncMethod::None: return 0;
        }
        return 0;
    };
    // Buckets: explicit bucket ids group layers; the rest fill buckets of
    // bucket_bytes in the order their gradients become ready.
    for (int d = 0; d < pp; ++d) {
        std::vector<size_t> order;
        for (size_t i = 0; i < L; ++i)
            if (r.layers[i].stage % pp == d && !m.layers[i].params.empty())
                order.push_back(i);
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return layerReady[a] < layerReady[b]; });
        double free = 0, busyComm = 0;
        std::map<int, std::vector<size_t>> explicitBuckets;
        std::vector<std::vector<size_t>> buckets;
        double fill = 0;
        bool openBucket = false;
        for (size_t i : order) {
            const SyncAtom& a = r.layers[i].sync;
            if (a.bucket >= 0 && a.method == SyncMethod::AllReduce) {
                explicitBuckets[a.bucket].push_back(i);
                continue;
            }
            const bool fusable = a.method == SyncMethod::AllReduce && !(m.layers[i].sparse_grad && a.sparse);
            if (!fusable) {
                buckets.push_back({i});
                openBucket = false;
                continue;
            }
            if (!openBucket || fill >= double(s.bucket_bytes)) {
                buckets.emplace_back();
                fill = 0;
                openBucket = true;
            }
            buckets.back().push_back(i);
            fill += lt[i].paramsLocal * gradBytes;
        }
        for (auto& [id, b] : explicitBuckets)
            buckets.push_back(b);
        std::stable_sort(buckets.begin(), buckets.end(), [&](const auto& a, const auto& b) {
            auto readyOf = [&](const std::vector<size_t>& bk) {
                double t = 0;
                for (size_t i : bk)
                    t = std::max(t, layerReady[i]);
                return t;
            };
            return readyOf(a) < readyOf(b);
        });
        for (const auto& bk : buckets) {
            double ready = 0, t = 0;
            double fused = 0;
            const SyncAtom& a = r.layers[bk.front()].sync;
            for (size_t i : bk)
                ready = std::max(ready, layerReady[i]);
            if (bk.size() > 1 && a.method == SyncMethod::AllReduce) {
                for (size_t i : bk)
                    fused += lt[i].paramsLocal * gradBytes * (a.compression == Compression::FP16 && gradBytes == 4 ? 0.5 : 1);
                t = s.zero_stage >= 1 ? collectiveTime(Collective::ReduceScatter, fused, dpg, node, x.cal)
                                      : collectiveTime(Collective::AllReduce, fused, dpg, node, x.cal, a.algorithm);
                for (size_t i : bk)
                    res.layers[i].sync = t * lt[i].paramsLocal / std::max(1.0, [&] {
                        double p = 0;
                        for (size_t k : bk)
                            p += lt[k].paramsLocal;
                        return p;
                    }());
            } else {
                for (size_t i : bk) {
                    const double ti = syncTime(i);
                    res.layers[i].sync = ti;
                    t += ti;
                }
            }
            if (t <= 0)
                continue;
            const double start = std::max(free, ready);
            free = start + t;
            busyComm += t;
            if (o.trace) {
                TraceRecord rec;
                rec.rank = rankOfStage(d);
                rec.track = 1;
                rec.start_ns = int64_t(start * 1e9);
                rec.dur_ns = std::max<int64_t>(1, int64_t(t * 1e9));
                rec.kind = TraceKind::Collective;
                rec.name = std::string(syncMethodName(a.method)) + " " + m.layers[bk.front()].name +
                           (bk.size() > 1 ? " (+" + std::to_string(bk.size() - 1) + ")" : "");
                rec.layer = int(bk.front());
                for (size_t i : bk)
                    rec.bytes += int64_t(lt[i].paramsLocal * gradBytes);
                res.trace.records.push_back(std::move(rec));
            }
        }
        syncEnd[size_t(d)] = free;
        syncBusy[size_t(d)] = busyComm;
    }

    // Optimizer (Adam): a memory-bound pass over each parameter's fp32 master
    // weight, two moments and gradient (read), and the three state tensors
    // plus the 16-bit weight (written): ZeRO's 16 bytes/param state read and
    // written (Rajbhandari et al. 2019, §3.1), sharded like the state.
    std::vector<double> paramsLocal(static_cast<size_t>(pp), 0);
    for (size_t i = 0; i < L; ++i) {
        const int d = r.layers[i].stage % pp;
        paramsLocal[size_t(d)] += lt[i].paramsLocal;
        // A layer tied to a layer of another stage keeps its own copy there (Megatron's embedding on the last stage).
        if (!m.layers[i].tied_to.empty()) {
            const Layer* t = m.find(m.layers[i].tied_to);
            const size_t ti = size_t(t - m.layers.data());
            if (r.layers[ti].stage % pp != d)
                paramsLocal[size_t(d)] += lt[ti].paramsLocal;
        }
    }
    const bool mixed = s.precision != Precision::FP32;
    const double wB = mixed ? 2 : 4, gB = gradBytes, oB = mixed ? 12 : 8;
    std::vector<double> stepEnd(static_cast<size_t>(pp), 0);
    double stepTime = 0;
    int critical = 0;
    std::vector<double> optTime(static_cast<size_t>(pp), 0), gatherAfter(static_cast<size_t>(pp), 0);
    for (int d = 0; d < pp; ++d) {
        const double shard = s.zero_stage >= 1 ? s.dp : 1;
        const double optBytes = paramsLocal[size_t(d)] / shard * (2 * oB + gB + wB);
        optTime[size_t(d)] = memoryTime(x, optBytes);
        if ((s.zero_stage == 1 || s.zero_stage == 2) && s.dp > 1)
            gatherAfter[size_t(d)] = collectiveTime(Collective::AllGather, paramsLocal[size_t(d)] * wB, dpg, node, x.cal);
        const double computeEnd = done[size_t(d)].empty() ? 0 : done[size_t(d)].back().end;
        double end = std::max(computeEnd, syncEnd[size_t(d)]);
        if (s.zero_stage == 3)
            end = std::max(end, commFree[size_t(d)]);
        end += optTime[size_t(d)] + gatherAfter[size_t(d)];
        stepEnd[size_t(d)] = end;
        if (end > stepTime) {
            stepTime = end;
            critical = d;
        }
    }
    // Bounded staleness: a parameter server's pull may lag the step; the step
    // is then bound by the compute or by the PS bandwidth, whichever is slower.
    res.step_time = stepTime;

    // Memory per device of each stage.
    const double capacity = double(dev.memory_bytes);
    res.stage_memory.resize(size_t(pp));
    for (int d = 0; d < pp; ++d) {
        MemoryUse& mu = res.stage_memory[size_t(d)];
        const double n = s.dp;
        const double P = paramsLocal[size_t(d)];
        double w = P * wB, g = P * gB, opt = P * oB;
        if (s.zero_stage >= 1)
            opt /= n;
        if (s.zero_stage >= 2)
            g /= n;
        if (s.zero_stage >= 3)
            w /= n;
        mu.parameters_optimizer = w + g + opt;
        // Peak of the activations alive along the schedule.
        double alive = 0, peak = 0;
        for (const Done& dn : done[size_t(d)]) {
            const double a = vs[size_t(dn.op.chunk * pp + d)].saved;
            alive += dn.op.forward ? a : -a;
            peak = std::max(peak, alive + (dn.op.forward ? 0 : a));
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
        const double computeEnd = done[size_t(d)].empty() ? 0 : done[size_t(d)].back().end;
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
    for (size_t i = 0; i < L; ++i) {
        res.layers[i].layer = int(i);
        res.layers[i].forward = lt[i].fwd;
        res.layers[i].backward = lt[i].bwd;
        const Layer& l = m.layers[i];
        const Recompute rc = r.layers[i].recompute;
        if ((rc == Recompute::Full && !l.block.empty()) || (rc == Recompute::Selective && l.kind == LayerKind::AttentionCore))
            res.layers[i].recompute = lt[i].fwd;
    }

    if (o.trace) {
        for (int d = 0; d < pp; ++d) {
            const int rank = rankOfStage(d);
            res.trace.tracks.push_back({rank, 0, "compute"});
            res.trace.tracks.push_back({rank, 1, "data-parallel communication"});
            for (const Done& dn : done[size_t(d)]) {
                const int v = dn.op.chunk * pp + d;
                const Chunk& ch = vs[size_t(v)];
                double t = dn.start;
                auto emit = [&](const std::string& name, int layer, double dur, TraceKind kind, double flops) {
                    TraceRecord rec;
                    rec.rank = rank;
                    rec.track = 0;
                    rec.start_ns = int64_t(t * 1e9);
                    rec.dur_ns = std::max<int64_t>(1, int64_t(dur * 1e9));
                    rec.kind = kind;
                    rec.name = name;
                    rec.layer = layer;
                    rec.flops = flops;
                    res.trace.records.push_back(std::move(rec));
                    t += dur;
                };
                const std::string mb = " mb" + std::to_string(dn.op.micro);
                if (dn.op.forward) {
                    for (int i : ch.layers) {
                        const auto& li = lt[size_t(i)];
                        emit(m.layers[size_t(i)].name + " fwd" + mb, i, li.fwd - li.tpFwd, TraceKind::Compute, li.fwdFlops);
                        if (li.tpFwd > 0)
                            emit("tp " + m.layers[size_t(i)].name + " fwd" + mb, i, li.tpFwd, TraceKind::Collective, 0);
                    }
                } else {
                    if (ch.recompute > 0)
                        emit("recompute chunk " + std::to_string(dn.op.chunk) + mb, -1, ch.recompute, TraceKind::Compute, 0);
                    for (auto it = ch.layers.rbegin(); it != ch.layers.rend(); ++it) {
                        const auto& li = lt[size_t(*it)];
                        emit(m.layers[size_t(*it)].name + " bwd" + mb, *it, li.bwd - li.tpBwd, TraceKind::Compute, li.bwdFlops);
                        if (li.tpBwd > 0)
                            emit("tp " + m.layers[size_t(*it)].name + " bwd" + mb, *it, li.tpBwd, TraceKind::Collective, 0);
                    }
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
        }
    }
    return res;
}

} // namespace partita
