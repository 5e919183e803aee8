#pragma once
// The rank heat map: for each rank and each of its steps, the step's length
// and how its devices spent it: computing, communicating where no compute
// hid it (exposed communication), and idle. A data-parallel job's slow rank
// hides in its step times (the all-reduce evens them out) but shows in its
// compute beside the others' exposed communication; a rank that idles
// waiting for its host shows in idle time.
//
// A cell is a rank's step: its host step annotation (ProfilerStep#N, the
// executor's steps), steps matched across ranks by their place. The device
// events of the rank are cut to the step's window (a kernel running across
// a step's end counts in both), so a cell's figures are what the timeline
// shows between the step's lines; HTA's definitions of computation and
// communication kernels (analysis.h's classes). A run without steps has one
// column: each rank's whole span. Streamed: a rank's events a block at a
// time, never a run's at once.

#include "partita/core/mesh.h"
#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

struct HeatCell
{
    int64_t start_ns = 0, end_ns = 0; // the step's window, on the rank's own clock
    int64_t compute_ns = 0;           // union of computation kernels
    int64_t exposed_comm_ns = 0;      // communication kernels where no computation ran
    int64_t idle_ns = 0;              // no device event at all
    int64_t step_ns() const { return end_ns - start_ns; }
    // Memory copies and other kernels alone: the rest of the step.
    int64_t other_ns() const { return step_ns() - compute_ns - exposed_comm_ns - idle_ns; }
};

struct HeatRow
{
    int rank = 0;
    std::vector<HeatCell> cells; // by step; a rank with fewer steps has a shorter row
    // The rank has device events. Without (a CPU trace: PyTorch's profiler
    // on gloo) its cells are all idle, which says nothing of its work.
    bool device = true;
};

enum class HeatMetric
{
    Step,
    Compute,
    ExposedComm,
    Idle,
};
std::string_view heatMetricName(HeatMetric m); // "step", "compute", "exposed-comm", "idle"
int64_t heatValue(const HeatCell& c, HeatMetric m);

struct HeatMap
{
    std::vector<HeatRow> rows; // by rank
    int64_t columns = 0;       // the most steps a rank has
    bool by_step = true;       // false: the run has no steps, one column per rank
    std::vector<std::string> notes;

    // The median over the ranks of one column (0 when no rank has it).
    int64_t columnMedian(int64_t column, HeatMetric m) const;
};

// A cell that stands out: how far its value lies from its column's median.
struct HeatOutlier
{
    int rank = 0;
    int64_t column = 0;
    int64_t value_ns = 0, median_ns = 0;
};
// The `count` cells furthest above their column's median, the furthest first
// (only cells more than `min_ratio` above it; ties by rank, then column).
std::vector<HeatOutlier> heatOutliers(const HeatMap& map, HeatMetric m, size_t count, double min_ratio = 0.01);

// Fails on a run that does not exist or a store that cannot be read.
Result<HeatMap> rankHeatMap(const TraceStore& store, int64_t run);

// A rank's busy share over its steps: 1 - idle / step time, summed.
double busyShare(const HeatRow& row);

// The ranks of each group of a mesh axis (core/mesh.h) and their busy
// shares over the run: the least, the median and the most busy, and which
// rank is the least; by group (-1, ranks beyond the mesh, first).
struct GroupBusy
{
    int group = 0;
    std::vector<int32_t> ranks;
    double least = 0, median = 0, most = 0; // 0..1
    int32_t least_busy_rank = 0;
};
std::vector<GroupBusy> groupBusy(const HeatMap& map, const MeshShape& mesh, MeshAxis axis);

} // namespace partita
