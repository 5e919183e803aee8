#pragma once
// Analyses of any stored run (predicted, measured or imported), with the
// definitions of Holistic Trace Analysis (HTA) where they exist: temporal
// breakdown, communication/computation overlap, kernel breakdown, idle-time
// breakdown, and the ops diff of two runs; plus what HTA lacks: per-layer
// attribution, stragglers, and diffs aligned by step, layer and rank.

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

// HTA's kernel types, by name (HTA utils.get_kernel_type) and by Partita's
// own kinds for predicted and measured runs.
enum class KernelClass
{
    Computation,
    Communication,
    Memory,
    Other,
};
std::string_view kernelClassName(KernelClass c);
KernelClass classifyKernel(std::string_view name, TraceKind kind);

struct AnalysisOptions
{
    // HTA drops the last profiler step (and what follows) when the trace has
    // at least two; kernels stay when their launch came before it.
    bool drop_last_step = true;
    int64_t kernel_wait_ns = 30'000; // HTA's consecutive_kernel_delay: 30 us
    // HTA reads timestamps as whole microseconds (start rounded up, end
    // down); Partita keeps nanoseconds. On to reproduce HTA's figures exactly.
    bool hta_rounding = false;
};

struct TemporalBreakdown
{
    int64_t span_ns = 0; // first device event start to last end
    int64_t idle_ns = 0, compute_ns = 0, non_compute_ns = 0;
    double idle_pct = 0, compute_pct = 0, non_compute_pct = 0;
};

struct IdleBreakdown
{
    int64_t host_wait_ns = 0;   // the next kernel was launched after the previous one ended
    int64_t kernel_wait_ns = 0; // short gaps between kernels launched ahead of time
    int64_t other_ns = 0;
};

struct RankAnalysis
{
    int rank = 0;
    TemporalBreakdown temporal;
    int64_t comm_ns = 0;                 // union of communication kernels
    std::optional<double> comm_comp_overlap_pct; // none without communication
    IdleBreakdown idle;
    int64_t device_events = 0;
    std::vector<int64_t> step_ns;        // durations of its steps, in order
};

struct KernelRow
{
    std::string name;
    KernelClass cls = KernelClass::Other;
    int64_t count = 0, total_ns = 0, min_ns = 0, max_ns = 0;
};

struct LayerRow
{
    int32_t layer = -1;
    int64_t compute_ns = 0, comm_ns = 0, memory_ns = 0, count = 0;
};

struct Straggler
{
    int rank = 0;
    double excess_pct = 0; // its mean step (or busy) time over the median of all ranks
    std::string what;
};

struct RunAnalysis
{
    int64_t run = 0;
    std::vector<RankAnalysis> ranks;
    std::vector<KernelRow> kernels;    // by total time, all ranks
    std::vector<std::pair<KernelClass, int64_t>> class_ns; // union time per class, summed over ranks
    std::vector<LayerRow> layers;      // where events carry layer ids
    std::vector<Straggler> stragglers;
    TemporalBreakdown total;                     // the whole run: one rank's, or all ranks' times summed
    std::optional<double> comm_comp_overlap_pct; // the whole run; none without communication
    bool dropped_last_step = false;
    std::vector<std::string> notes;
};

Result<RunAnalysis> analyzeRun(const TraceStore& store, int64_t run, const AnalysisOptions& options = {});

enum class DiffScope
{
    Cpu,
    Gpu,
    All,
};

struct DiffOptions
{
    std::optional<int> rank;           // default: the smallest rank of each run
    std::optional<int64_t> iteration;  // default: the smallest iteration of each run
    DiffScope scope = DiffScope::All;
};

struct OpsDiffRow
{
    std::string name;
    int64_t a_count = 0, b_count = 0;
    int64_t a_ns = 0, b_ns = 0;
    std::string change; // added, deleted, increased, decreased, unchanged (HTA's ops_diff)
};

struct StepDelta
{
    int index = 0;
    int64_t a_ns = 0, b_ns = 0;
};

struct LayerDelta
{
    int32_t layer = -1;
    int64_t a_ns = 0, b_ns = 0;
};

struct RankDelta
{
    int rank = 0;
    TemporalBreakdown a, b;
};

struct RunDiff
{
    int rank_a = 0, rank_b = 0;
    int64_t iteration_a = -1, iteration_b = -1; // -1: the whole run (no steps)
    std::vector<OpsDiffRow> ops;
    std::vector<StepDelta> steps;   // aligned by step index, smallest rank
    std::vector<LayerDelta> layers; // device time per layer, all ranks
    std::vector<RankDelta> ranks;   // ranks present in both
};

Result<RunDiff> diffRuns(const TraceStore& store, int64_t a, int64_t b, const DiffOptions& options = {});

} // namespace partita
