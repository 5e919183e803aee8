#pragma once
// Memory over time: the PyTorch profiler's `[memory]` records (one per
// allocation and free, with the allocator's totals after it: "Total
// Allocated" and "Total Reserved" bytes, per "Device Type" and "Device Id")
// as a counter series per rank and device, its peaks, and the predicted
// peak beside them when the run has a prediction (`peak_memory_bytes` in
// its own meta when predicted, else in the meta of its `predicted_run`).

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace partita {

struct MemorySample
{
    int64_t t_ns = 0;
    int64_t allocated = 0, reserved = 0;
};

struct MemorySeries
{
    int rank = 0;
    int device_type = 0; // PyTorch's DeviceType: 0 CPU, 1 CUDA, ...
    int device_id = -1;
    std::string device;  // "cuda:1", "cpu"
    int64_t track_id = 0; // the track the records lie on (of the first, when several)
    int64_t samples = 0;
    int64_t peak_allocated = 0, peak_allocated_at_ns = 0;
    int64_t peak_reserved = 0, peak_reserved_at_ns = 0;
    int64_t first_allocated = 0, last_allocated = 0;
    // At most `max_points` of the series for drawing: per time bucket its
    // first, lowest, highest and last sample, so no peak is lost.
    std::vector<MemorySample> points;
};

struct MemoryReport
{
    std::vector<MemorySeries> series; // by rank, then device
    std::optional<double> predicted_peak_bytes; // per device, the most loaded
    int64_t predicted_run = 0;        // where it came from (the run itself when predicted)
    std::vector<std::string> notes;
};

// Fails on a run that does not exist; a run without memory records gives
// an empty report with a note saying how to record them.
Result<MemoryReport> readMemory(const TraceStore& store, int64_t run, int maxPoints = 0);

} // namespace partita
