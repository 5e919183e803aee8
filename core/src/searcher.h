#pragma once
// The strategy search's internals (search.h is its API): the genome, the
// space its genes span, the per-layer classes and the Searcher.
//   searchspace.cpp  genome -> strategy, the space, what is plausible, scoring
//   searchlayers.cpp per-layer classes, their options, the explanation
//   search.cpp       the walk: presets, exhaustive or annealed search, refinement
// Internal to core.

#include "partita/core/search.h"
#include "partita/core/simulator.h"

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace partita::searchimpl {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr int64_t kBucketBytes[] = {4 << 20, 25 << 20, 64 << 20, 256 << 20};

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
    int uneven = 0;   // Megatron-LM's uneven first and last stages, sized for the embedding and the head
    int fp8 = 0;      // FP8 GEMMs (Transformer Engine), when the search may change the numerics

    // A packed key: every gene fits its bit field (tp, pp <= 2^10, micro <= 2^10).
    uint64_t key() const;
};

// The values each gene may take on this model and cluster.
struct Space
{
    std::vector<int> tp, pp, interleave, gbScale, recompute, sp, zero, emb, dense, bucket, fp16, balanced, fc, cp,
        uneven, fp8;
    std::vector<int64_t> micro;
    int64_t size() const; // the product of the genes' choices, capped at 2^40
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

// A ranked candidate: its score, the global genome it came from, when it was
// found, and the per-layer choices refinement added (as text).
struct Ranked
{
    double score = kInf;
    Candidate candidate;
    Genome genome;
    double found = 0;
    std::string perLayer;
};

// One search's running state.
struct Walk
{
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    SearchResult res;
    double bestPresetScore = kInf;
    Candidate bestPreset;
    double presetsDone = 0;
    Space sp;
    std::vector<Genome> all; // the plausible genomes, when the space is small enough to list
    bool listed = false;
    std::unordered_map<uint64_t, double> seen;
    std::vector<Ranked> top;
    std::unordered_map<uint64_t, bool> refined;

    double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};

std::vector<int> divisorsUpTo(int n, int cap);

class Searcher
{
public:
    Searcher(const Model& m, const Cluster& c, const SearchOptions& o);
    Result<SearchResult> run();

private:
    // searchspace.cpp
    Strategy toStrategy(const Genome& g) const;
    std::vector<std::pair<std::string, int>> balancedStages(const Genome& g, const Strategy& base) const;
    std::optional<std::pair<int, int>> unevenStages(int pp) const;
    Space space() const;
    bool plausible(const Genome& g) const;
    Evaluated evaluate(const Genome& g) const;
    Evaluated evaluateStrategy(const Strategy& s) const;
    // searchlayers.cpp
    void buildLayerClasses();
    std::vector<ClassOption> classOptions(const LayerClass& c, const Strategy& base) const;
    Strategy applyClasses(Strategy s, const std::vector<std::vector<ClassOption>>& opts, const std::vector<int>& genes) const;
    std::string explain(const Strategy& s, const Strategy& base, bool haveBase) const;
    // search.cpp
    bool userCancelled() const;
    bool cancelled(const Walk& w) const;
    void report(const Walk& w) const;
    void insertTop(Walk& w, Ranked r) const;
    void record(Walk& w, const Genome& g, const Evaluated& e) const;
    std::vector<Evaluated> evalBatch(const std::vector<Genome>& batch) const;
    std::vector<Evaluated> evalStrategies(const std::vector<Strategy>& batch) const;
    void baselines(Walk& w) const;
    void listSpace(Walk& w) const;
    void refine(Walk& w, const Genome& g, double startScore) const;
    bool refineNext(Walk& w) const;
    void exhaustive(Walk& w) const;
    Genome mutate(const Space& sp, Genome g, std::mt19937_64& rng, int extra) const;
    std::pair<Genome, double> annealSeeds(Walk& w) const;
    void anneal(Walk& w) const;
    Result<SearchResult> finish(Walk& w) const;

    const Model& m_model;
    const Cluster& m_cluster;
    SearchOptions m_opt;
    int m_devices = 1;
    int m_perNode = 1;
    bool m_nvlinkNode = false;
    bool m_fp8Device = false;
    int64_t m_globalBatch = 1;
    std::vector<std::string> m_blocks;
    std::vector<std::string> m_embeddings;
    std::vector<std::string> m_fcLayers;
    std::vector<LayerClass> m_classes;
    // Forward FLOPs of one block (the mean), and of the layers before the
    // first block and after the last: what uneven stages balance.
    double m_blockFlops = 0, m_preFlops = 0, m_postFlops = 0;
    mutable std::mutex m_cacheMutex; // guards the layer costs and the failure counts
    mutable std::unordered_map<uint64_t, std::vector<double>> m_layerCosts;
    mutable std::map<std::string, int64_t> m_failures;
    mutable int64_t m_outOfMemory = 0;
};

} // namespace partita::searchimpl
