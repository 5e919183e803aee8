#pragma once
// `partita-cli trace import|export|stats|diff|stragglers|critical-path|memory|heatmap|events` and `partita-cli runs list`.

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <memory>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace partita::cli {

struct TraceCliOptions
{
    std::string project, name, format = "chrome", out, scope = "all";
    std::vector<std::string> inputs;
    std::vector<int64_t> runs; // --run, once or twice
    std::optional<int> rank;
    std::optional<int64_t> iteration;
    std::optional<int64_t> step;     // critical-path --step
    std::string annotation;          // critical-path --annotation
    int64_t instance = 0;            // critical-path --instance
    bool noSegments = false;         // critical-path --no-segments
    int points = 0;                  // memory --points
    std::string metric = "step";     // heatmap --metric
    int top = 20;                    // heatmap --top
    std::string groupBy;             // heatmap --group-by
    std::string eventName;           // events --name
    std::optional<int32_t> layer;    // events --layer
    std::string kernelClass;         // events --class
    bool deviceOnly = false;         // events --device
    bool alignClocks = false;        // export --align-clocks
    std::string mesh;                // import --mesh
    bool json = false, keepLastStep = false, htaRounding = false;
};

int runTraceImport(const TraceCliOptions& o);
int runTraceExport(const TraceCliOptions& o);
int runTraceStats(const TraceCliOptions& o);
int runTraceDiff(const TraceCliOptions& o);
int runTraceStragglers(const TraceCliOptions& o); // tracestragglers.cpp
int runTraceCriticalPath(const TraceCliOptions& o); // tracecriticalpath.cpp
int runTraceMemory(const TraceCliOptions& o);       // tracememory.cpp
int runTraceHeatmap(const TraceCliOptions& o);      // traceheatmap.cpp
int runTraceEvents(const TraceCliOptions& o);       // traceevents.cpp
int runRunsList(const TraceCliOptions& o);

// The project named by --project, opened (created when missing).
Result<std::unique_ptr<TraceStore>> openProject(const std::string& path);

} // namespace partita::cli
