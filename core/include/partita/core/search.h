#pragma once
// Auto-search: explores strategies with the simulator in the loop. Seeded with
// every preset that is valid on the cluster; enumerates the space when it is
// small, else runs simulated annealing over mesh, micro-batch, schedule,
// recomputation, ZeRO and per-group synchronization; never returns a strategy
// worse than the best preset, nor one that fails validation or runs out of
// memory. The candidates it tries, in order, depend only on the seed and the
// thread count; a time budget decides how many of them it gets to, so reruns
// are identical when they stop at the same count (max_evaluations).
// Cancellable at any moment; returns the best so far.

#include "partita/core/cluster.h"
#include "partita/core/costmodel.h"
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace partita {

enum class Objective
{
    Time,       // shortest step at the given global batch
    Throughput, // most samples/s; the global batch may grow up to 4x
};

struct SearchProgress
{
    int64_t evaluated = 0;
    double best_step_time = 0;
    double best_samples_per_s = 0;
    double elapsed_s = 0;
};

struct SearchOptions
{
    int64_t global_batch = 0; // 0: 4 samples per device
    int64_t seq_len = 0;      // 0: the model's
    std::optional<Precision> precision; // default: defaultPrecision(cluster)
    Objective objective = Objective::Time;
    double budget_s = 10;
    uint64_t seed = 1;
    int threads = 1;
    int top_k = 5;
    int64_t exhaustive_limit = 4000; // enumerate every candidate when the space is at most this large
    int64_t max_evaluations = 0;     // 0: until the budget; else stop after this many (bit-identical reruns)
    bool refine_layers = true;       // per-layer coordinate descent after the global phase finds good points
    bool allow_powersgd = false;     // let per-layer refinement pick PowerSGD (lossy: changes what training computes)
    bool allow_fp16_compression = false; // fp32 training: let it send gradients as fp16 (lossy, as PowerSGD)
    bool allow_fp8 = false;          // let it train the GEMMs in FP8 where the device has it (changes the numerics)
    std::optional<Calibration> calibration; // measured efficiencies (partita-cli calibrate); default: the device's
    std::function<void(const SearchProgress&)> progress;
    const std::atomic<bool>* cancel = nullptr;
};

struct Candidate
{
    Strategy strategy;
    double step_time = 0;
    double samples_per_s = 0;
    double mfu = 0;
    double peak_memory = 0;
    std::string explanation; // what differs from the best preset
};

struct Baseline
{
    std::string name;
    double step_time = 0; // infinity when invalid or out of memory
    std::string why;      // when it did not run
};

struct SearchResult
{
    Candidate best;
    std::vector<Candidate> top;
    std::vector<Baseline> baselines;
    std::string best_preset;
    int64_t evaluated = 0;
    int64_t out_of_memory = 0;  // searched candidates that simulate but do not fit
    int64_t failed = 0;         // searched candidates the simulator refused or could not simulate
    std::vector<std::pair<std::string, int64_t>> failures; // why, and how many times (the most frequent first)
    int64_t space_size = 0;
    bool exhaustive = false;
    bool cancelled = false;
    double elapsed_s = 0;
    double best_found_s = 0; // when the returned best was first evaluated
};

Result<SearchResult> searchStrategy(const Model& model, const Cluster& cluster, const SearchOptions& options);

} // namespace partita
