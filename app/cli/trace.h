#pragma once
// `partita-cli trace import|export|stats|diff` and `partita-cli runs list`.

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
    bool json = false, keepLastStep = false, htaRounding = false;
};

int runTraceImport(const TraceCliOptions& o);
int runTraceExport(const TraceCliOptions& o);
int runTraceStats(const TraceCliOptions& o);
int runTraceDiff(const TraceCliOptions& o);
int runRunsList(const TraceCliOptions& o);

} // namespace partita::cli
