#pragma once
// The events behind a figure: those of a run that match a name, a model
// layer, a kernel class, a rank and a step, counted and timed in full, the
// first few (by start) kept with where they are, for the timeline to select
// and frame. `trace stats`' kernel rows, the compare view's layer and ops
// rows and the heat map's cells are such figures: `partita-cli trace events`
// lists what each one sums. Streamed: a track at a time.

#include "partita/core/result.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace partita {

struct EventQuery
{
    std::string name;                 // the exact name (empty: any)
    std::optional<int32_t> layer;     // events of this model layer
    std::optional<KernelClass> cls;   // device events of this class (analysis.h's)
    bool other_classes = false;       // with cls: device events of every class but it (HTA's non-compute)
    std::optional<int> rank;
    std::optional<int64_t> step;      // inside the rank's step at this place, from 0 (each rank its own)
    bool device_only = false;         // events on device tracks only (what the stats' kernel rows count)
    size_t limit = 20;                // events kept, the earliest first
};

struct FoundEvent
{
    int rank = 0;
    int64_t track_id = 0;
    std::string track;
    int64_t event_id = 0, start_ns = 0, end_ns = 0;
    std::string name;
    int64_t name_id = 0;
    TraceKind kind = TraceKind::Compute;
    int32_t layer = -1;
};

struct EventMatches
{
    std::vector<FoundEvent> events; // the earliest `limit`, by start
    int64_t total = 0;              // every match
    int64_t total_ns = 0;           // their durations summed
    // When a step was asked for: each queried rank's window of it, on the
    // rank's own clock (where a figure of that step, idle time included, lies).
    std::map<int, std::pair<int64_t, int64_t>> step_windows;
    std::vector<std::string> notes;
};

// Fails on a run that does not exist, or a step no queried rank has.
Result<EventMatches> findEvents(const TraceStore& store, int64_t run, const EventQuery& query);

} // namespace partita
