// The search space: a genome's strategy, the values each gene may take, what
// is plausible before simulating, and a candidate's score.
#include "searcher.h"

#include <algorithm>
#include <cctype>

namespace partita::searchimpl {

uint64_t Genome::key() const
{
    uint64_t k = 0;
    auto put = [&](uint64_t v, int bits) { k = (k << bits) | (v & ((uint64_t(1) << bits) - 1)); };
    put(uint64_t(tp), 11);
    put(uint64_t(pp), 11);
    put(uint64_t(interleave), 4);
    put(uint64_t(micro), 11);
    put(uint64_t(gbScale), 3);
    put(uint64_t(recompute), 2);
    put(uint64_t(sp), 1);
    put(uint64_t(zero), 2);
    put(uint64_t(emb), 2);
    put(uint64_t(dense), 2);
    put(uint64_t(bucket), 2);
    put(uint64_t(fp16), 1);
    put(uint64_t(balanced), 1);
    put(uint64_t(fc), 2);
    put(uint64_t(cp), 5);
    put(uint64_t(uneven), 1);
    put(uint64_t(fp8), 1);
    return k;
}

int64_t Space::size() const
{
    int64_t n = 1;
    for (size_t c : {tp.size(), pp.size(), interleave.size(), gbScale.size(), micro.size(), recompute.size(),
                     sp.size(), zero.size(), emb.size(), dense.size(), bucket.size(), fp16.size(), balanced.size(),
                     fc.size(), cp.size(), uneven.size(), fp8.size()})
        n = n > (int64_t(1) << 40) / int64_t(c) ? (int64_t(1) << 40) : n * int64_t(c);
    return n;
}

std::vector<int> divisorsUpTo(int n, int cap)
{
    std::vector<int> d;
    for (int i = 1; i <= std::min(n, cap); ++i)
        if (n % i == 0)
            d.push_back(i);
    return d;
}

Searcher::Searcher(const Model& m, const Cluster& c, const SearchOptions& o) : m_model(m), m_cluster(c), m_opt(o)
{
    if (!m_opt.precision)
        m_opt.precision = defaultPrecision(c);
    m_devices = c.deviceCount();
    m_perNode = int(c.nodes.front().devices.size());
    // Transformer Engine's userbuffers overlap needs GPUs that reach each
    // other over NVLink (CUDA IPC and copy engines across the node).
    const LinkKind intra = c.nodes.front().intra.kind;
    m_nvlinkNode = intra == LinkKind::NVLink || intra == LinkKind::NVSwitch;
    m_globalBatch = o.global_batch > 0 ? o.global_batch : int64_t(4) * m_devices;
    for (const auto& l : m.layers) {
        if (!l.block.empty() && (m_blocks.empty() || m_blocks.back() != l.block))
            m_blocks.push_back(l.block);
        if (l.sparse_grad && !l.params.empty())
            m_embeddings.push_back(l.name);
    }
    bool otherWeights = false;
    for (const auto& l : m.layers) {
        if (l.params.empty() || l.sparse_grad)
            continue;
        if ((l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead) && l.dims.in_features && l.dims.out_features)
            m_fcLayers.push_back(l.name);
        else
            otherWeights = true;
    }
    if (!otherWeights)
        m_fcLayers.clear();
    std::sort(m_blocks.begin(), m_blocks.end());
    m_blocks.erase(std::unique(m_blocks.begin(), m_blocks.end()), m_blocks.end());
    m_fp8Device = c.nodes.front().devices.front().peak_flops.count("fp8") > 0;
    const int64_t seq = m_opt.seq_len > 0 ? m_opt.seq_len : m_model.seq_len;
    int64_t firstBlockLayer = -1;
    for (size_t i = 0; i < m.layers.size() && firstBlockLayer < 0; ++i)
        if (!m.layers[i].block.empty())
            firstBlockLayer = int64_t(i);
    double blocks = 0;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const double f = layerCostAt(m.layers[i], 1, m.sequence ? seq : 1).forward_flops;
        (!m.layers[i].block.empty() ? blocks : int64_t(i) < firstBlockLayer ? m_preFlops : m_postFlops) += f;
    }
    m_blockFlops = m_blocks.empty() ? 0 : blocks / double(m_blocks.size());
    buildLayerClasses();
}

namespace {

// The default sync atom the genome picks for dense gradients: all-reduce (ring, hierarchical, tree) or servers.
void setDenseSync(Strategy& s, const Genome& g)
{
    s.sync.sparse = false;
    s.sync.compression = g.fp16 ? Compression::FP16 : Compression::None;
    if (g.dense <= 2) {
        s.sync.method = SyncMethod::AllReduce;
        s.sync.algorithm = g.dense == 1 ? AllReduceAlgo::Hierarchical : g.dense == 2 ? AllReduceAlgo::Tree : AllReduceAlgo::Ring;
    } else {
        s.sync.method = SyncMethod::ParameterServer;
        s.sync.ps_shards = 0;
        s.sync.ps_local_replication = true;
    }
}

// One override per embedding: dense rows, sparse rows all-reduced, or sparse rows through servers.
void addEmbeddingOverrides(Strategy& s, const Genome& g, const std::vector<std::string>& embeddings)
{
    for (const auto& name : embeddings) {
        LayerOverride o;
        o.pattern = name;
        SyncAtom a = s.sync;
        if (g.emb == 0) {
            a.sparse = false;
            if (a.method == SyncMethod::ParameterServer && g.zero > 0)
                a.method = SyncMethod::AllReduce;
        } else if (g.emb == 1) {
            a.method = SyncMethod::AllReduce;
            a.sparse = true;
        } else {
            a.method = SyncMethod::ParameterServer;
            a.sparse = true;
            a.ps_local_replication = true;
            a.ps_shards = 0;
        }
        o.sync = a;
        s.layers.push_back(o);
    }
}

// Where the genome asks, one override per fully-connected layer: through servers, or by SFB.
void addFcOverrides(Strategy& s, const Genome& g, const std::vector<std::string>& fcLayers)
{
    if (g.fc)
        for (const auto& name : fcLayers) {
            LayerOverride o;
            o.pattern = name;
            SyncAtom a = s.sync;
            a.sparse = false;
            if (g.fc == 1) {
                a.method = SyncMethod::ParameterServer;
                a.ps_shards = 0;
                a.ps_local_replication = true;
            } else {
                a.method = SyncMethod::SFB;
            }
            o.sync = a;
            s.layers.push_back(o);
        }
}

} // namespace

Strategy Searcher::toStrategy(const Genome& g) const
{
    Strategy s;
    s.name = "searched";
    s.precision = g.fp8 ? Precision::FP8 : *m_opt.precision;
    s.tp = g.tp;
    s.pp = g.pp;
    s.cp = g.cp;
    s.dp = m_devices / (g.tp * g.pp * g.cp);
    s.global_batch = m_globalBatch * g.gbScale;
    s.micro_batch = g.micro;
    s.interleave = g.interleave;
    if (g.uneven)
        if (auto fl = unevenStages(g.pp)) {
            s.first_stage_blocks = fl->first;
            s.last_stage_blocks = fl->second;
        }
    s.schedule = g.interleave > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
    s.recompute = Recompute(g.recompute);
    s.sequence_parallel = g.sp != 0;
    s.zero_stage = g.zero;
    // Communication beside computation wherever the strategy can have it
    // (it changes no result of training): sequence parallelism's
    // collectives beside their GEMMs over NVLink, the distributed
    // optimizer's parameter gather beside the next forward.
    s.tp_comm_overlap = s.sequence_parallel && g.tp > 1 && m_nvlinkNode;
    s.overlap_param_gather = g.zero == 1 || g.zero == 2;
    s.bucket_bytes = kBucketBytes[g.bucket];
    setDenseSync(s, g);
    addEmbeddingOverrides(s, g, m_embeddings);
    addFcOverrides(s, g, m_fcLayers);
    if (g.balanced)
        for (const auto& [name, stage] : balancedStages(g, s)) {
            LayerOverride o;
            o.pattern = name;
            o.stage = stage;
            s.layers.push_back(o);
        }
    return s;
}

// Pipeline partition (as Alpa's inter-operator pass and Piper): cut the
// layers, in order, into pp contiguous stages minimizing the slowest
// stage's forward + backward + recompute time per micro-batch, by dynamic
// programming over the layer times of the evenly split strategy. Memory is
// checked by the simulation that scores the result.
std::vector<std::pair<std::string, int>> Searcher::balancedStages(const Genome& g, const Strategy& base) const
{
    Genome even = g;
    even.balanced = 0;
    const uint64_t key = even.key();
    std::vector<double> cost;
    {
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        if (auto it = m_layerCosts.find(key); it != m_layerCosts.end())
            cost = it->second;
    }
    if (cost.empty()) {
        Strategy evenStrategy = base;
        evenStrategy.layers.erase(std::remove_if(evenStrategy.layers.begin(), evenStrategy.layers.end(),
                                                 [](const LayerOverride& o) { return o.stage.has_value(); }),
                                  evenStrategy.layers.end());
        SimOptions so;
        so.seq_len = m_opt.seq_len;
        so.calibration = m_opt.calibration;
        auto r = simulate(m_model, m_cluster, evenStrategy, so);
        if (!r)
            return {};
        for (const auto& lt : r->layers)
            cost.push_back(lt.forward + lt.backward + lt.recompute);
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        m_layerCosts.emplace(key, cost);
    }
    const int L = int(cost.size()), P = g.pp;
    std::vector<double> prefix(size_t(L) + 1, 0);
    for (int i = 0; i < L; ++i)
        prefix[size_t(i) + 1] = prefix[size_t(i)] + cost[size_t(i)];
    // best[p][i]: the slowest stage when the first i layers form p stages.
    std::vector<std::vector<double>> best(size_t(P) + 1, std::vector<double>(size_t(L) + 1, kInf));
    std::vector<std::vector<int>> cut(size_t(P) + 1, std::vector<int>(size_t(L) + 1, 0));
    best[0][0] = 0;
    for (int p = 1; p <= P; ++p)
        for (int i = p; i <= L; ++i)
            for (int j = p - 1; j < i; ++j) {
                const double v = std::max(best[size_t(p - 1)][size_t(j)], prefix[size_t(i)] - prefix[size_t(j)]);
                if (v < best[size_t(p)][size_t(i)]) {
                    best[size_t(p)][size_t(i)] = v;
                    cut[size_t(p)][size_t(i)] = j;
                }
            }
    std::vector<std::pair<std::string, int>> out;
    int i = L;
    for (int p = P; p >= 1; --p) {
        const int j = cut[size_t(p)][size_t(i)];
        for (int k = j; k < i; ++k)
            out.emplace_back(m_model.layers[size_t(k)].name, p - 1);
        i = j;
    }
    return out;
}

// Megatron-LM's uneven first and last pipeline stages (--decoder-first- and
// --decoder-last-pipeline-num-layers): the block counts of the first and last
// of `pp` stages that best even out the stages' forward FLOPs, the embedding
// joining the first and the head and loss the last, the rest split evenly
// between; nullopt where the even split is as good (or the only one).
std::optional<std::pair<int, int>> Searcher::unevenStages(int pp) const
{
    const int B = int(m_blocks.size());
    if (pp < 2 || B < pp || m_blockFlops <= 0)
        return std::nullopt;
    auto slowest = [&](int f, int l) {
        const double middle = pp > 2 ? double(B - f - l) / (pp - 2) : 0;
        return std::max({m_preFlops + f * m_blockFlops, m_postFlops + l * m_blockFlops, middle * m_blockFlops});
    };
    std::optional<std::pair<int, int>> best;
    double bestTime = B % pp == 0 ? slowest(B / pp, B / pp) * (1 - 1e-9) : kInf;
    for (int f = 1; f < B; ++f)
        for (int l = 1; f + l <= B; ++l) {
            const int middle = B - f - l;
            if (pp == 2 ? middle != 0 : (middle < pp - 2 || middle % (pp - 2) != 0))
                continue;
            if (const double t = slowest(f, l); t < bestTime) {
                bestTime = t;
                best = std::pair{f, l};
            }
        }
    return best;
}

Space Searcher::space() const
{
    Space sp;
    const int heads = int(m_model.dims.heads), kv = int(m_model.dims.kv_heads ? m_model.dims.kv_heads : m_model.dims.heads);
    for (int t : divisorsUpTo(m_devices, m_perNode))
        if (t == 1 || (heads > 0 && heads % t == 0 && kv % t == 0 && (t & (t - 1)) == 0))
            sp.tp.push_back(t);
    const int maxPp = m_blocks.empty() ? 1 : std::min<int>(int(m_blocks.size()), 64);
    for (int p : divisorsUpTo(m_devices, maxPp))
        sp.pp.push_back(p);
    sp.interleave = {1, 2, 4};
    sp.gbScale = m_opt.objective == Objective::Throughput ? std::vector<int>{1, 2, 4} : std::vector<int>{1};
    for (int64_t mb : {1, 2, 4, 8, 16, 32, 64})
        sp.micro.push_back(mb);
    sp.recompute = m_blocks.empty() ? std::vector<int>{0} : std::vector<int>{0, 1, 2};
    sp.sp = {0, 1};
    sp.zero = {0, 1, 2, 3};
    sp.emb = m_embeddings.empty() ? std::vector<int>{0} : std::vector<int>{0, 1, 2};
    sp.dense = m_cluster.nodes.size() > 1 ? std::vector<int>{0, 1, 2, 3} : std::vector<int>{0, 2, 3};
    sp.bucket = {0, 1, 2, 3};
    // fp16 gradients of fp32 training change what it computes: opt-in, as PowerSGD.
    sp.fp16 = *m_opt.precision == Precision::FP32 && m_opt.allow_fp16_compression ? std::vector<int>{0, 1}
                                                                                 : std::vector<int>{0};
    sp.balanced = m_blocks.size() > 1 ? std::vector<int>{0, 1} : std::vector<int>{0};
    // Fully-connected layers get their own choice when other layers with
    // weights exist beside them (convolutions, norms): AutoSync's and
    // Poseidon's per-layer split between FC and the rest.
    sp.fc = m_fcLayers.empty() ? std::vector<int>{0} : std::vector<int>{0, 1, 2};
    // Context parallelism for long sequences (4,096 tokens and more: below,
    // each rank's attention block is too small to hide the K/V ring behind),
    // within a node beside tensor parallelism, as Megatron-LM places it.
    sp.cp = {1};
    const int64_t seq = m_opt.seq_len > 0 ? m_opt.seq_len : m_model.seq_len;
    if (m_model.sequence && seq >= 4096)
        for (int c : {2, 4, 8})
            if (c <= m_perNode && m_devices % c == 0 && seq % (2 * c) == 0)
                sp.cp.push_back(c);
    // Megatron-LM's uneven first and last stages, where they differ from the even split.
    sp.uneven = {0};
    for (int p : sp.pp)
        if (unevenStages(p)) {
            sp.uneven.push_back(1);
            break;
        }
    // FP8 GEMMs change what training computes (a recipe's scaling, its
    // accuracy): opt-in, as fp16 compression and PowerSGD, on devices with FP8.
    sp.fp8 = m_opt.allow_fp8 && m_fp8Device && *m_opt.precision != Precision::FP32 && *m_opt.precision != Precision::FP8
                 ? std::vector<int>{0, 1}
                 : std::vector<int>{0};
    return sp;
}

// Genomes that cannot be valid are skipped before simulating them.
bool Searcher::plausible(const Genome& g) const
{
    if (m_devices % (g.tp * g.pp * g.cp) || g.tp * g.cp > std::max(m_perNode, g.tp))
        return false;
    const int dp = m_devices / (g.tp * g.pp * g.cp);
    const int64_t gb = m_globalBatch * g.gbScale;
    if (gb % (g.micro * dp))
        return false;
    const int64_t M = gb / (g.micro * dp);
    if (g.interleave > 1 && (g.pp < 2 || M % g.pp || m_blocks.size() % size_t(g.pp * g.interleave)))
        return false;
    if (g.pp > 1 && m_blocks.size() % size_t(g.pp))
        return false;
    if (g.sp && g.tp == 1)
        return false;
    if (dp * g.cp == 1 && (g.zero || g.emb || g.dense || g.bucket != 1 || g.fp16))
        return false; // nothing to synchronize: one canonical choice
    if (g.zero && (g.dense == 3 || g.emb == 2))
        return false; // ZeRO and a parameter server both own the optimizer state: the strategy refuses it
    if (g.balanced && (g.pp == 1 || g.interleave > 1))
        return false;
    if (dp * g.cp == 1 && g.fc)
        return false;
    if (g.fc == 1 && g.zero)
        return false;
    if (g.fc == 1 && g.dense == 3)
        return false; // already a PS
    if (g.fc == 2 && g.tp > 1)
        return false; // sufficient factors of a split layer: not modelled
    if (g.uneven && (g.pp < 2 || g.interleave > 1 || g.balanced || !unevenStages(g.pp)))
        return false;
    return true;
}

Evaluated Searcher::evaluate(const Genome& g) const
{
    if (!plausible(g))
        return {};
    return evaluateStrategy(toStrategy(g));
}

Evaluated Searcher::evaluateStrategy(const Strategy& s) const
{
    Evaluated e;
    SimOptions so;
    so.seq_len = m_opt.seq_len;
    so.calibration = m_opt.calibration;
    auto r = simulate(m_model, m_cluster, s, so);
    if (!r || r->oom) {
        // Counted, never silently an infinite score: a refusal or an
        // internal failure ("schedule deadlocked") is reported by message.
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        if (!r)
            ++m_failures[r.error().message];
        else
            ++m_outOfMemory;
        return e;
    }
    e.candidate.strategy = s;
    e.candidate.step_time = r->step_time;
    e.candidate.samples_per_s = r->samples_per_s;
    e.candidate.mfu = r->mfu;
    e.candidate.peak_memory = r->memory.peak;
    e.score = m_opt.objective == Objective::Time ? r->step_time : 1.0 / r->samples_per_s;
    return e;
}

} // namespace partita::searchimpl
