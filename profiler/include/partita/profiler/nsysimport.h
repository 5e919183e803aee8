#pragma once
// Import of Nsight Systems SQLite exports (`nsys export --type sqlite`):
// kernels, memory copies and sets, CUDA runtime calls and NVTX ranges. Both
// metadata layouts are read (EXPORT_META_DATA in schema 2.x, META_DATA_EXPORT
// in 3.x); missing tables are reported, not fatal.

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace partita {

struct NsysImportOptions
{
    std::string name;        // run name; default: the first file's name
    std::optional<int> rank; // rank of a single file; default: file order
};

struct NsysImportReport
{
    int64_t run_id = 0;
    std::map<std::string, int64_t> counts; // stored events by kind
    std::vector<std::string> schema;       // per file: "2.9.1 (EXPORT_META_DATA)"
    std::vector<std::string> gpus;         // TARGET_INFO_GPU names
    std::vector<std::string> warnings;
};

Result<NsysImportReport> importNsysSqlite(TraceStore& store, const std::vector<std::string>& files,
                                          const NsysImportOptions& options = {});

// Whether a file is an SQLite database (by its header), so that `trace import` can choose the importer.
bool isSqliteFile(const std::string& path);

} // namespace partita
