#include "partita/core/search.h"

#include "partita/core/simulator.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace partita {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kBucketBytes[] = {4 << 20, 25 << 20, 64 << 20, 256 << 20};

// One point of the search space. Synchronization is decided per group of
// layers: the sparse embeddings, and every other layer with parameters.
struct Genome
{
    int tp = 1, pp = 1, interleave = 1;
    int64_t micro = 1;
    int gbScale = 1;
    int recompute = 0; // Recompute
    int sp = 0;
    int zero = 0;
    int emb = 0;    // 0 all-reduce dense, 1 all-gather of touched rows, 2 PS of touched rows with local replication
    int dense = 0;  // 0 ring, 1 hierarchical, 2 tree all-reduce, 3 partitioned PS with local replication
    int bucket = 1; // kBucketBytes index
    int fp16 = 0;   // fp16 gradients on the wire (when gradients are fp32)
    int balanced = 0; // pipeline stages cut by dynamic programming over layer times (else blocks split evenly)
    int fc = 0;       // fully-connected layers: 0 as the other layers, 1 partitioned PS with local replication, 2 SFB
    int cp = 1;       // context-parallel degree (ring exchange)

    // A packed key: every gene fits its bit field (tp, pp <= 2^10, micro <= 2^10).
    uint64_t key() const
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
        return k;
    }
};

// The values each gene may take on this model and cluster.
struct Space
{
    std::vector<int> tp, pp, interleave, gbScale, recompute, sp, zero, emb, dense, bucket, fp16, balanced, fc, cp;
    std::vector<int64_t> micro;
};

// Layers that share one per-layer choice (see Searcher::buildLayerClasses).
struct LayerClass
{
    std::string key;                   // the glob, or a layer's name
    std::vector<std::string> patterns; // what the strategy's overrides match
    std::vector<size_t> members;       // layer indices, ascending
    LayerKind kind = LayerKind::Other;
    bool sparse = false; // embedding with sparse gradients
    bool fc = false;     // fully-connected
};

// One alternative for a layer class; unset fields inherit the global genome's choice.
struct ClassOption
{
    std::optional<SyncAtom> sync;
    std::optional<TpRole> tp;
    std::string text;
};

struct Evaluated
{
    double score = kInf; // lower is better
    Candidate candidate;
};

std::vector<int> divisorsUpTo(int n, int cap)
{
    std::vector<int> d;
    for (int i = 1; i <= std::min(n, cap); ++i)
        if (n % i == 0)
            d.push_back(i);
    return d;
}

class Searcher
{
public:
    Searcher(const Model& m, const Cluster& c, const SearchOptions& o) : m_model(m), m_cluster(c), m_opt(o)
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
        buildLayerClasses();
    }

    // Layers with weights, grouped by their role in a repeated block: the
    // query projection of every encoder layer is one class, so the per-layer
    // choices stay few however deep the model is. A class is addressed by one
    // glob ("encoder.layer.*.attention.self.query") when that glob matches
    // exactly its members, else by its members' names.
    void buildLayerClasses()
    {
        std::map<std::string, size_t> byKey;
        for (size_t i = 0; i < m_model.layers.size(); ++i) {
            const Layer& l = m_model.layers[i];
            if (l.params.empty())
                continue;
            std::string key = l.name;
            if (!l.block.empty() && l.name.rfind(l.block, 0) == 0) {
                std::string tmpl;
                for (size_t k = 0; k < l.block.size();) {
                    if (std::isdigit(static_cast<unsigned char>(l.block[k]))) {
                        while (k < l.block.size() && std::isdigit(static_cast<unsigned char>(l.block[k])))
                            ++k;
                        tmpl += '*';
                    } else {
                        tmpl += l.block[k++];
                    }
                }
                key = tmpl + l.name.substr(l.block.size());
            }
            auto [it, added] = byKey.emplace(key, m_classes.size());
            if (added) {
                LayerClass c;
                c.key = key;
                c.kind = l.kind;
                c.sparse = l.sparse_grad;
                c.fc = (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead) && l.dims.in_features &&
                       l.dims.out_features;
                m_classes.push_back(c);
            }
            m_classes[it->second].members.push_back(i);
        }
        for (LayerClass& c : m_classes) {
            size_t matched = 0;
            bool exact = true;
            for (size_t i = 0; i < m_model.layers.size() && exact; ++i)
                if (globMatch(c.key, m_model.layers[i].name)) {
                    ++matched;
                    exact = std::binary_search(c.members.begin(), c.members.end(), i);
                }
            if (exact && matched == c.members.size()) {
                c.patterns = {c.key};
            } else {
                for (size_t i : c.members)
                    c.patterns.push_back(m_model.layers[i].name);
                // A name with glob characters that matches other layers cannot be addressed alone.
                for (const auto& p : c.patterns)
                    for (size_t i = 0; i < m_model.layers.size(); ++i)
                        if (globMatch(p, m_model.layers[i].name) &&
                            !std::binary_search(c.members.begin(), c.members.end(), i))
                            c.patterns.clear();
            }
        }
        m_classes.erase(std::remove_if(m_classes.begin(), m_classes.end(), [](const LayerClass& c) { return c.patterns.empty(); }),
                        m_classes.end());
    }

    Strategy toStrategy(const Genome& g) const
    {
        Strategy s;
        s.name = "searched";
        s.precision = *m_opt.precision;
        s.tp = g.tp;
        s.pp = g.pp;
        s.cp = g.cp;
        s.dp = m_devices / (g.tp * g.pp * g.cp);
        s.global_batch = m_globalBatch * g.gbScale;
        s.micro_batch = g.micro;
        s.interleave = g.interleave;
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
        for (const auto& name : m_embeddings) {
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
        if (g.fc)
            for (const auto& name : m_fcLayers) {
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
    std::vector<std::pair<std::string, int>> balancedStages(const Genome& g, const Strategy& base) const
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

    // The per-layer alternatives for one class on top of a global strategy:
    // all-reduce algorithm and compression, parameter server shard count,
    // placement and local aggregation, sufficient-factor broadcasting for
    // fully-connected layers, and vocabulary-parallel or replicated
    // embeddings and heads. Option 0 keeps the global choice.
    std::vector<ClassOption> classOptions(const LayerClass& c, const Strategy& base) const
    {
        std::vector<ClassOption> out(1);
        const int nodes = int(m_cluster.nodes.size());
        if (base.dp > 1) {
            SyncAtom a0;
            a0.sparse = c.sparse;
            std::vector<std::pair<Compression, std::string>> comps{{Compression::None, ""}};
            if (*m_opt.precision == Precision::FP32 && m_opt.allow_fp16_compression)
                comps.emplace_back(Compression::FP16, ", fp16 on the wire");
            if (m_opt.allow_powersgd && base.zero_stage == 0 && !c.sparse)
                comps.emplace_back(Compression::PowerSGD, ", PowerSGD rank 4");
            std::vector<AllReduceAlgo> algos{AllReduceAlgo::Ring, AllReduceAlgo::Tree};
            if (nodes > 1)
                algos.push_back(AllReduceAlgo::Hierarchical);
            for (AllReduceAlgo algo : algos)
                for (const auto& [comp, ctext] : comps) {
                    SyncAtom a = a0;
                    a.method = SyncMethod::AllReduce;
                    a.algorithm = algo;
                    a.compression = comp;
                    out.push_back({a, {}, "all-reduce " + std::string(allReduceAlgoName(algo)) + ctext});
                    if (c.sparse && comp == Compression::None && algo == AllReduceAlgo::Ring) {
                        a.sparse = false;
                        out.push_back({a, {}, "all-reduce ring, dense"});
                    }
                }
            if (base.zero_stage == 0 && nodes > 1) {
                std::vector<int> shards;
                for (int k = 1; k < nodes; k *= 2)
                    shards.push_back(k);
                shards.push_back(nodes);
                for (int k : shards)
                    for (PsPlacement place : {PsPlacement::LoadBalanced, PsPlacement::RoundRobin}) {
                        if (k == nodes && place != PsPlacement::LoadBalanced)
                            continue; // every server holds a shard: placement does not matter
                        for (bool local : {true, false}) {
                            if (!local && m_perNode == 1)
                                continue;
                            SyncAtom a = a0;
                            a.method = SyncMethod::ParameterServer;
                            a.ps_shards = k;
                            a.ps_placement = place;
                            a.ps_local_replication = local;
                            out.push_back({a, {},
                                           "PS " + std::to_string(k) + (k == 1 ? " shard" : " shards") +
                                               (k < nodes ? ", " + std::string(psPlacementName(place)) : "") +
                                               (local ? ", local replication" : "")});
                        }
                    }
            }
            if (c.fc && base.tp == 1 && base.zero_stage == 0) {
                SyncAtom a = a0;
                a.method = SyncMethod::SFB;
                out.push_back({a, {}, "sufficient-factor broadcasting"});
            }
        }
        if (base.tp > 1 && (c.kind == LayerKind::Embedding || c.kind == LayerKind::LMHead))
            out.push_back({{}, TpRole::Replicated, "replicated instead of vocabulary-parallel"});
        return out;
    }

    Strategy applyClasses(Strategy s, const std::vector<std::vector<ClassOption>>& opts, const std::vector<int>& genes) const
    {
        for (size_t c = 0; c < genes.size(); ++c) {
            if (genes[c] == 0)
                continue;
            const ClassOption& o = opts[c][size_t(genes[c])];
            for (const auto& pattern : m_classes[c].patterns) {
                LayerOverride lo;
                lo.pattern = pattern;
                lo.sync = o.sync;
                lo.tp_role = o.tp;
                s.layers.push_back(lo);
            }
        }
        return s;
    }

    Space space() const
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
        return sp;
    }

    // Genomes that cannot be valid are skipped before simulating them.
    bool plausible(const Genome& g) const
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
        return true;
    }

    Evaluated evaluate(const Genome& g) const
    {
        if (!plausible(g))
            return {};
        return evaluateStrategy(toStrategy(g));
    }

    Evaluated evaluateStrategy(const Strategy& s) const
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

    Result<SearchResult> run()
    {
        const auto t0 = std::chrono::steady_clock::now();
        auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
        SearchResult res;
        auto userCancelled = [&] { return m_opt.cancel && m_opt.cancel->load(); };
        auto cancelled = [&] {
            return userCancelled() || (m_opt.max_evaluations > 0 && res.evaluated >= m_opt.max_evaluations);
        };

        // Baselines: every preset, at the same global batch.
        double bestPresetScore = kInf;
        Candidate bestPreset;
        SimOptions so;
        so.seq_len = m_opt.seq_len;
        so.calibration = m_opt.calibration;
        std::vector<std::pair<std::string, PresetOptions>> presets;
        for (const auto& p : strategyPresets()) {
            PresetOptions po;
            po.global_batch = m_globalBatch;
            po.precision = m_opt.precision;
            po.micro_batch = std::max<int64_t>(1, m_globalBatch / m_devices);
            if (p.name == "megatron") {
                for (int t : space().tp) {
                    for (int pp : {1, 2, 4}) {
                        if (m_devices % (t * pp) || (pp > 1 && m_blocks.size() % size_t(pp)))
                            continue;
                        PresetOptions mp = po;
                        mp.tp = t;
                        mp.pp = pp;
                        mp.micro_batch = 1;
                        mp.recompute = Recompute::Selective;
                        mp.sequence_parallel = t > 1;
                        presets.emplace_back("megatron tp" + std::to_string(t) + " pp" + std::to_string(pp), mp);
                    }
                }
                continue;
            }
            presets.emplace_back(p.name, po);
        }
        for (const auto& [name, po] : presets) {
            Baseline b;
            b.name = name;
            b.step_time = kInf;
            const std::string presetName = name.rfind("megatron", 0) == 0 ? "megatron" : name;
            auto s = strategyPreset(presetName, m_model, m_cluster, po);
            if (!s) {
                b.why = s.error().message;
            } else {
                auto r = simulate(m_model, m_cluster, *s, so);
                ++res.evaluated;
                if (!r) {
                    b.why = r.error().message;
                } else if (r->oom) {
                    b.why = "out of memory";
                } else {
                    b.step_time = r->step_time;
                    const double score = m_opt.objective == Objective::Time ? r->step_time : 1.0 / r->samples_per_s;
                    if (score < bestPresetScore) {
                        bestPresetScore = score;
                        bestPreset.strategy = *s;
                        bestPreset.strategy.name = name;
                        bestPreset.step_time = r->step_time;
                        bestPreset.samples_per_s = r->samples_per_s;
                        bestPreset.mfu = r->mfu;
                        bestPreset.peak_memory = r->memory.peak;
                        res.best_preset = name;
                    }
                }
            }
            res.baselines.push_back(std::move(b));
        }

        const double presetsDone = elapsed();
        const Space sp = space();
        int64_t size = 1;
        for (size_t n : {sp.tp.size(), sp.pp.size(), sp.interleave.size(), sp.gbScale.size(), sp.micro.size(),
                         sp.recompute.size(), sp.sp.size(), sp.zero.size(), sp.emb.size(), sp.dense.size(),
                         sp.bucket.size(), sp.fp16.size(), sp.balanced.size(), sp.fc.size(), sp.cp.size()})
            size = size > (int64_t(1) << 40) / int64_t(n) ? (int64_t(1) << 40) : size * int64_t(n);
        res.space_size = size;

        std::unordered_map<uint64_t, double> seen;
        struct Ranked
        {
            double first;
            Candidate second;
            Genome genome;
            double found = 0;
            std::string perLayer; // the per-layer choices refinement added, as text
        };
        std::vector<Ranked> top;
        auto insertTop = [&](Ranked rk) {
            top.push_back(std::move(rk));
            std::stable_sort(top.begin(), top.end(), [](const Ranked& a, const Ranked& b) { return a.first < b.first; });
            if (top.size() > size_t(std::max(1, m_opt.top_k)))
                top.pop_back();
        };
        auto record = [&](const Genome& g, const Evaluated& e) {
            seen.emplace(g.key(), e.score);
            if (!std::isfinite(e.score))
                return;
            insertTop({e.score, e.candidate, g, elapsed(), {}});
        };
        auto report = [&] {
            if (!m_opt.progress)
                return;
            SearchProgress p;
            p.evaluated = res.evaluated;
            const double best = std::min(top.empty() ? kInf : top.front().first, bestPresetScore);
            if (std::isfinite(best)) {
                p.best_step_time = m_opt.objective == Objective::Time ? best : 0;
                p.best_samples_per_s = m_opt.objective == Objective::Throughput ? 1 / best : 0;
            }
            p.elapsed_s = elapsed();
            m_opt.progress(p);
        };
        const int threads = std::max(1, m_opt.threads);
        // Evaluate a batch in parallel; results are used in batch order, so the
        // outcome depends on the seed and the thread count only.
        auto evalBatch = [&](const std::vector<Genome>& batch) {
            std::vector<Evaluated> out(batch.size());
            if (threads == 1 || batch.size() == 1) {
                for (size_t i = 0; i < batch.size(); ++i)
                    out[i] = evaluate(batch[i]);
            } else {
                std::vector<std::thread> pool;
                for (int t = 0; t < threads; ++t)
                    pool.emplace_back([&, t] {
                        for (size_t i = size_t(t); i < batch.size(); i += size_t(threads))
                            out[i] = evaluate(batch[i]);
                    });
                for (auto& th : pool)
                    th.join();
            }
            return out;
        };

        auto evalStrategies = [&](const std::vector<Strategy>& batch) {
            std::vector<Evaluated> out(batch.size());
            std::vector<std::thread> pool;
            const int n = std::min<int>(threads, int(batch.size()));
            for (int t = 1; t < n; ++t)
                pool.emplace_back([&, t] {
                    for (size_t i = size_t(t); i < batch.size(); i += size_t(n))
                        out[i] = evaluateStrategy(batch[i]);
                });
            for (size_t i = 0; i < batch.size(); i += size_t(std::max(1, n)))
                out[i] = evaluateStrategy(batch[i]);
            for (auto& th : pool)
                th.join();
            return out;
        };

        // Per-layer refinement of one global genome: coordinate descent over
        // the layer classes, each class's alternatives simulated as one
        // parallel batch, the best kept before moving to the next class,
        // passes repeated until one changes nothing. The end point joins the
        // ranking when it beats its start.
        std::unordered_map<uint64_t, bool> refined;
        auto refine = [&](const Genome& g, double startScore) {
            refined[g.key()] = true;
            const Strategy base = toStrategy(g);
            std::vector<std::vector<ClassOption>> opts;
            for (const LayerClass& c : m_classes)
                opts.push_back(classOptions(c, base));
            std::vector<int> genes(m_classes.size(), 0);
            double cur = startScore;
            Evaluated best;
            for (int pass = 0; pass < 3; ++pass) {
                bool improved = false;
                for (size_t c = 0; c < m_classes.size(); ++c) {
                    if (opts[c].size() <= 1)
                        continue;
                    if (cancelled() || elapsed() >= m_opt.budget_s)
                        break;
                    std::vector<int> choice;
                    std::vector<Strategy> batch;
                    for (int o = 0; o < int(opts[c].size()); ++o) {
                        if (o == genes[c])
                            continue;
                        std::vector<int> trial = genes;
                        trial[c] = o;
                        choice.push_back(o);
                        batch.push_back(applyClasses(base, opts, trial));
                    }
                    const auto out = evalStrategies(batch);
                    res.evaluated += int64_t(batch.size());
                    for (size_t q = 0; q < out.size(); ++q)
                        if (out[q].score < cur * (1 - 1e-12)) {
                            cur = out[q].score;
                            best = out[q];
                            genes[c] = choice[q];
                            improved = true;
                        }
                    report();
                }
                if (!improved)
                    break;
            }
            if (!std::isfinite(best.score) || !(best.score < startScore))
                return;
            std::string text;
            for (size_t c = 0; c < genes.size(); ++c)
                if (genes[c])
                    text += (text.empty() ? "" : "; ") + m_classes[c].key + ": " + opts[c][size_t(genes[c])].text;
            insertTop({best.score, best.candidate, g, elapsed(), "per layer: " + text});
        };
        // Refine the best global genome not refined yet (in ranking order).
        auto refineNext = [&] {
            if (!m_opt.refine_layers || m_classes.empty())
                return false;
            for (const Ranked& rk : std::vector<Ranked>(top))
                if (rk.perLayer.empty() && !refined.count(rk.genome.key())) {
                    refine(rk.genome, rk.first);
                    return true;
                }
            return false;
        };

        // The plausible genomes, when the raw space is small enough to list.
        std::vector<Genome> all;
        const bool listed = size <= 4'000'000;
        if (listed) {
            for (int a : sp.tp) for (int b : sp.pp) for (int c : sp.interleave) for (int d : sp.gbScale)
            for (int64_t e : sp.micro) for (int f : sp.recompute) for (int g : sp.sp) for (int h : sp.zero)
            for (int i : sp.emb) for (int j : sp.dense) for (int k : sp.bucket) for (int l : sp.fp16)
            for (int bal : sp.balanced) for (int fc : sp.fc) for (int cpv : sp.cp) {
                Genome gm{a, b, c, e, d, f, g, h, i, j, k, l, bal, fc, cpv};
                if (plausible(gm))
                    all.push_back(gm);
            }
            res.space_size = int64_t(all.size());
        }
        if (listed && int64_t(all.size()) <= m_opt.exhaustive_limit) {
            // Small space: every candidate, within the budget.
            size_t off = 0;
            for (; off < all.size() && !cancelled() && elapsed() < m_opt.budget_s; off += size_t(threads) * 16) {
                std::vector<Genome> batch(all.begin() + long(off), all.begin() + long(std::min(all.size(), off + size_t(threads) * 16)));
                const auto out = evalBatch(batch);
                for (size_t q = 0; q < batch.size(); ++q)
                    record(batch[q], out[q]);
                res.evaluated += int64_t(batch.size());
                report();
            }
            res.exhaustive = off >= all.size();
            for (int n = 0; n < 3 && !cancelled() && elapsed() < m_opt.budget_s && refineNext(); ++n) {
            }
        } else {
            // Simulated annealing from the best seed, one or two genes changed per move.
            std::mt19937_64 rng(m_opt.seed);
            std::vector<Genome> seeds;
            for (int t : sp.tp)
                for (int p : sp.pp)
                    for (int64_t mb : {int64_t(1), std::max<int64_t>(1, m_globalBatch / m_devices)}) {
                        Genome g;
                        g.tp = t;
                        g.pp = p;
                        g.micro = mb;
                        g.recompute = t > 1 || p > 1 ? 1 : 0;
                        g.sp = t > 1;
                        if (plausible(g))
                            seeds.push_back(g);
                        Genome h = g;
                        h.emb = m_embeddings.empty() ? 0 : 2;
                        h.dense = m_cluster.nodes.size() > 1 ? 1 : 0;
                        if (plausible(h))
                            seeds.push_back(h);
                    }
            Genome current;
            double currentScore = kInf;
            for (size_t off = 0; off < seeds.size() && !cancelled() && elapsed() < m_opt.budget_s; off += size_t(threads)) {
                std::vector<Genome> batch(seeds.begin() + long(off), seeds.begin() + long(std::min(seeds.size(), off + size_t(threads))));
                const auto out = evalBatch(batch);
                for (size_t q = 0; q < batch.size(); ++q) {
                    record(batch[q], out[q]);
                    if (out[q].score < currentScore) {
                        currentScore = out[q].score;
                        current = batch[q];
                    }
                }
                res.evaluated += int64_t(batch.size());
            }
            auto mutate = [&](Genome g, int extra = 0) {
                const int moves = 1 + int(rng() % 2) + extra;
                for (int mv = 0; mv < moves; ++mv) {
                    switch (rng() % (sp.cp.size() > 1 ? 15 : 14)) {
                    case 0: g.tp = sp.tp[rng() % sp.tp.size()]; break;
                    case 1: g.pp = sp.pp[rng() % sp.pp.size()]; break;
                    case 2: g.interleave = sp.interleave[rng() % sp.interleave.size()]; break;
                    case 3: g.gbScale = sp.gbScale[rng() % sp.gbScale.size()]; break;
                    case 4: g.micro = sp.micro[rng() % sp.micro.size()]; break;
                    case 5: g.recompute = sp.recompute[rng() % sp.recompute.size()]; break;
                    case 6: g.sp = sp.sp[rng() % sp.sp.size()]; break;
                    case 7: g.zero = sp.zero[rng() % sp.zero.size()]; break;
                    case 8: g.emb = sp.emb[rng() % sp.emb.size()]; break;
                    case 9: g.dense = sp.dense[rng() % sp.dense.size()]; break;
                    case 10: g.bucket = sp.bucket[rng() % sp.bucket.size()]; break;
                    case 11: g.fp16 = sp.fp16[rng() % sp.fp16.size()]; break;
                    case 12: g.balanced = sp.balanced[rng() % sp.balanced.size()]; break;
                    case 13: g.fc = sp.fc[rng() % sp.fc.size()]; break;
                    default: g.cp = sp.cp[rng() % sp.cp.size()]; break;
                    }
                }
                return g;
            };
            std::uniform_real_distribution<double> unit(0, 1);
            int sinceNew = 0;
            // Refinements happen at fixed evaluation counts, so the sequence
            // of candidates stays independent of the machine's speed.
            int64_t nextRefine = res.evaluated + 1000;
            while (!cancelled() && elapsed() < m_opt.budget_s && sinceNew < 5000) {
                if (res.evaluated >= nextRefine) {
                    refineNext();
                    nextRefine = res.evaluated + 2000;
                    continue;
                }
                // Propose fresh, plausible neighbours only: a genome already seen
                // (or in this batch) is never simulated twice.
                std::vector<Genome> batch;
                for (int t = 0; t < threads; ++t) {
                    for (int tries = 0; tries < 50; ++tries) {
                        const Genome g = mutate(current);
                        const uint64_t k = g.key();
                        if (seen.count(k) || std::any_of(batch.begin(), batch.end(), [&](const Genome& b) { return b.key() == k; }))
                            continue;
                        if (!plausible(g)) {
                            seen.emplace(k, kInf);
                            continue;
                        }
                        batch.push_back(g);
                        break;
                    }
                }
                if (batch.empty()) {
                    // Every neighbour is known: jump further, farther the longer
                    // the walk stays stuck, from the best found or from here.
                    ++sinceNew;
                    const Genome from = (sinceNew % 2 == 0 && !top.empty()) ? top.front().genome : current;
                    Genome jumped = !all.empty() && sinceNew % 3 == 0 ? all[size_t(rng() % all.size())]
                                                                      : mutate(from, 2 + int(sinceNew % 8));
                    if (plausible(jumped)) {
                        current = jumped;
                        currentScore = seen.count(jumped.key()) ? seen[jumped.key()] : currentScore;
                    }
                    continue;
                }
                const auto out = evalBatch(batch);
                bool fresh = false;
                for (size_t q = 0; q < batch.size(); ++q) {
                    if (seen.count(batch[q].key()))
                        continue;
                    fresh = true;
                    record(batch[q], out[q]);
                    ++res.evaluated;
                    // Accept better moves, and worse ones with a probability that
                    // falls as the search goes on: temperature 5 % of the score,
                    // decaying with the evaluations made (not the clock, so the
                    // walk is the same on any machine).
                    const double temperature = std::isfinite(currentScore) ? 0.05 * currentScore * std::exp(-double(res.evaluated) / 2000.0) : 0.0;
                    const double delta = out[q].score - currentScore;
                    if (delta < 0 || (std::isfinite(delta) && temperature > 0 && unit(rng) < std::exp(-delta / temperature))) {
                        current = batch[q];
                        currentScore = out[q].score;
                    }
                }
                sinceNew = fresh ? 0 : sinceNew + 1;
                (void)fresh;
                if (res.evaluated % 64 == 0)
                    report();
                // Restart from the best found when the walk has wandered off.
                if (!top.empty() && currentScore > 1.2 * top.front().first) {
                    current = top.front().genome;
                    currentScore = top.front().first;
                }
            }
        }
        // The walk ended (stuck) with time to spare: refine what is left.
        while (!cancelled() && elapsed() < m_opt.budget_s && refineNext()) {
        }
        if (listed && !res.exhaustive)
            res.exhaustive = std::all_of(all.begin(), all.end(), [&](const Genome& g) { return seen.count(g.key()) > 0; });
        res.cancelled = userCancelled();
        res.elapsed_s = elapsed();
        {
            std::lock_guard<std::mutex> lock(m_cacheMutex);
            res.out_of_memory = m_outOfMemory;
            for (const auto& [why, n] : m_failures) {
                res.failed += n;
                res.failures.emplace_back(why, n);
            }
            std::stable_sort(res.failures.begin(), res.failures.end(),
                             [](const auto& a, const auto& b) { return a.second > b.second; });
        }

        // Never worse than the best preset.
        for (const Ranked& rk : top) {
            res.top.push_back(rk.second);
            if (!rk.perLayer.empty())
                res.top.back().explanation =
                    explain(rk.second.strategy, bestPreset.strategy, std::isfinite(bestPresetScore)) + "; " + rk.perLayer;
            else
                res.top.back().explanation = explain(rk.second.strategy, bestPreset.strategy, std::isfinite(bestPresetScore));
        }
        const double searched = top.empty() ? kInf : top.front().first;
        if (!std::isfinite(searched) && !std::isfinite(bestPresetScore))
            return Error{"search", "memory", "no strategy fits: every preset and every searched candidate is invalid "
                                             "or runs out of memory on this cluster"};
        if (bestPresetScore <= searched) {
            res.best_found_s = presetsDone;
            res.best = bestPreset;
            res.best.explanation = "the best preset (" + res.best_preset + "); no searched strategy beats it";
        } else {
            res.best = res.top.front();
            res.best_found_s = top.front().found;
        }
        report();
        return res;
    }

    std::string explain(const Strategy& s, const Strategy& base, bool haveBase) const
    {
        std::vector<std::string> diffs;
        auto add = [&](const std::string& what, const std::string& from, const std::string& to) {
            if (from != to)
                diffs.push_back(what + " " + (haveBase ? from + " -> " : "") + to);
        };
        add("mesh dp x tp x pp", std::to_string(base.dp) + "x" + std::to_string(base.tp) + "x" + std::to_string(base.pp),
            std::to_string(s.dp) + "x" + std::to_string(s.tp) + "x" + std::to_string(s.pp));
        add("context parallel", std::to_string(base.cp), std::to_string(s.cp));
        add("micro-batch", std::to_string(base.micro_batch), std::to_string(s.micro_batch));
        add("global batch", std::to_string(base.global_batch), std::to_string(s.global_batch));
        add("interleave", std::to_string(base.interleave), std::to_string(s.interleave));
        add("recompute", std::string(recomputeName(base.recompute)), std::string(recomputeName(s.recompute)));
        add("sequence parallel", base.sequence_parallel ? "on" : "off", s.sequence_parallel ? "on" : "off");
        add("tensor-parallel overlap", base.tp_comm_overlap ? "on" : "off", s.tp_comm_overlap ? "on" : "off");
        add("parameter gather overlap", base.overlap_param_gather ? "on" : "off", s.overlap_param_gather ? "on" : "off");
        add("ZeRO", std::to_string(base.zero_stage), std::to_string(s.zero_stage));
        auto syncText = [](const SyncAtom& a) {
            std::string t(syncMethodName(a.method));
            if (a.method == SyncMethod::AllReduce)
                t += " " + std::string(allReduceAlgoName(a.algorithm));
            if (a.method == SyncMethod::ParameterServer && a.ps_local_replication)
                t += " (local replication)";
            if (a.compression != Compression::None)
                t += " " + std::string(compressionName(a.compression));
            return t;
        };
        add("gradient sync", syncText(base.sync), syncText(s.sync));
        add("bucket", std::to_string(base.bucket_bytes >> 20) + " MB", std::to_string(s.bucket_bytes >> 20) + " MB");
        auto embText = [&](const Strategy& st) -> std::string {
            for (const auto& o : st.layers)
                if (!m_embeddings.empty() && o.pattern == m_embeddings.front() && o.sync)
                    return syncText(*o.sync) + (o.sync->sparse ? " of touched rows" : " dense");
            return syncText(st.sync) + (st.sync.sparse ? " of touched rows" : " dense");
        };
        if (!m_embeddings.empty())
            add("embeddings", embText(base), embText(s));
        if (!m_fcLayers.empty()) {
            for (const auto& o : s.layers)
                if (o.pattern == m_fcLayers.front() && o.sync) {
                    diffs.push_back("fully-connected layers: " + syncText(*o.sync));
                    break;
                }
        }
        const bool balanced = std::any_of(s.layers.begin(), s.layers.end(), [](const LayerOverride& o) { return o.stage.has_value(); });
        if (balanced)
            diffs.push_back("pipeline stages cut by layer times (dynamic programming) instead of equal block counts");
        std::string out;
        for (const auto& d : diffs)
            out += (out.empty() ? "" : "; ") + d;
        return out.empty() ? "same settings as the best preset" : out;
    }

private:
    const Model& m_model;
    const Cluster& m_cluster;
    SearchOptions m_opt;
    int m_devices = 1;
    int m_perNode = 1;
    bool m_nvlinkNode = false;
    int64_t m_globalBatch = 1;
    std::vector<std::string> m_blocks;
    std::vector<std::string> m_embeddings;
    std::vector<std::string> m_fcLayers;
    std::vector<LayerClass> m_classes;
    mutable std::mutex m_cacheMutex; // guards the layer costs and the failure counts
    mutable std::unordered_map<uint64_t, std::vector<double>> m_layerCosts;
    mutable std::map<std::string, int64_t> m_failures;
    mutable int64_t m_outOfMemory = 0;
};

} // namespace

Result<SearchResult> searchStrategy(const Model& model, const Cluster& cluster, const SearchOptions& options)
{
    if (std::string problem = validateCluster(cluster); !problem.empty())
        return Error{"search", "cluster", problem};
    Searcher s(model, cluster, options);
    return s.run();
}

} // namespace partita
