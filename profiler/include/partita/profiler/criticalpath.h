#pragma once
// The critical path of a step across ranks: the chain of work that set how
// long the step took, through host operators, kernel launches, GPU streams,
// synchronizations, collectives and pipeline send/recv.
//
// Per rank the graph is HTA's (Holistic Trace Analysis, "lightweight
// critical path analysis"): each host operator and device event is a start
// and an end node; a host thread's call stack links parent and children
// (time between them charged to the parent, a leaf's own time to the leaf,
// nothing between top-level operators); a kernel is reached from its launch
// (when its stream was idle at the launch: the launch delay) or from the
// kernel before it on its stream (the gap, under 1.5 ms); synchronizations
// (`cuda_sync` records: context, stream and event syncs, stream waits) add
// zero-weight edges from the kernel waited for. The critical path is the
// longest path through that graph, its length the sum of its edges.
//
// Across ranks: a collective ends when its last rank arrives, so each
// rank's collective end is also reached from the last-arriving rank's
// collective start (the time after it, the transfer, charged to the
// collective); a pipeline receive ends after its send starts. Collectives
// are matched across ranks by their order in the step, sends and receives
// by their peers as Partita's executors name them ("send … to rank N",
// "recv … from rank N"). Clocks are aligned per step on the ends of the
// matched collectives (each rank's offset reported).
//
// Launches are found by correlation id, not by name: cudaLaunchKernel,
// cudaLaunchKernelExC, cuLaunchKernelEx and CUDA-graph launches alike. A
// graph launch's kernels after its first on a stream follow the one before
// them whatever the gap (the graph queued them together). Runs with no
// launches (Partita's CPU backend, predictions) chain each stream's events.

#include "partita/core/result.h"
#include "partita/core/trace.h"
#include "partita/profiler/stragglers.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace partita {

struct CriticalPathOptions
{
    // The window: the step at this place (from 0) on every rank; none: each
    // step in turn (a run without steps: the whole run, or its time slices
    // of about 1 M events, which `step` then picks among).
    std::optional<int64_t> step;
    // Or, as HTA takes it: the `instance`-th event (from 0) whose name
    // contains `annotation` on each rank. Non-empty overrides `step`.
    std::string annotation;
    int64_t instance = 0;
    bool segments = true; // list the path's edges (else only its sums)
};

enum class PathEdge
{
    Operator,   // a host operator's own time, or between it and its children
    Device,     // a kernel, copy or set running
    Launch,     // launch delay: from the launch call's start to the kernel's
    StreamGap,  // from the kernel before on the stream to this one
    Dependency, // between top-level operators of a thread (weight 0)
    Sync,       // a synchronization on the kernel waited for (weight 0)
    Collective, // a collective's end after its last rank arrived
    P2P,        // a receive's end after its send started
};
std::string_view pathEdgeName(PathEdge e);

struct PathSegment
{
    int rank = 0;
    PathEdge edge = PathEdge::Operator;
    std::string name;      // the event the edge is charged to (empty: none)
    TraceKind kind = TraceKind::Annotation;
    int32_t layer = -1;
    int64_t event_id = 0;  // the store's id of that event (0: none)
    int64_t track_id = 0;  // the store's track of that event (else of the event the edge leads to)
    int64_t from_ns = 0, to_ns = 0; // on `rank`'s own clock (the store's times)
    int64_t weight_ns = 0;
};

struct CriticalPath
{
    int64_t step = -1;   // the step's place (-1: no steps; the annotation's instance with one)
    std::string window;  // the step's or annotation's name ("ProfilerStep#12"), or "whole run"
    int64_t length_ns = 0;
    int64_t span_ns = 0; // from the first rank's window start to the last one's end, clocks aligned
    int64_t nodes = 0, edges = 0;
    std::map<PathEdge, int64_t> edge_counts; // the graph's edges by type
    std::vector<PathSegment> segments;       // from the path's start to its end
    std::map<std::string, int64_t> by_kind;  // "kernel", "cpu_op", "launch delay", ...
    std::map<int32_t, int64_t> by_layer;     // -1: not attributed to a layer
    std::map<int, int64_t> by_rank;
    std::vector<ClockCorrection> clocks;     // per rank, this window's alignment
    std::vector<std::string> notes;
};

struct CriticalPathReport
{
    int ranks = 0;
    std::vector<CriticalPath> paths;
    std::vector<std::string> notes;
};

// Fails on a run that does not exist, a step or annotation no rank has, and
// dependencies that form a cycle.
Result<CriticalPathReport> findCriticalPath(const TraceStore& store, int64_t run, const CriticalPathOptions& options);

} // namespace partita
