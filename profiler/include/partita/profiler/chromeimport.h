#pragma once
// Import of Chrome trace event JSON and PyTorch-profiler (Kineto) traces into
// the store: plain or gzip, one file or a folder of per-rank files. A
// streaming parser: memory stays flat however large the file.

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace partita {

struct TraceImportOptions
{
    std::string name; // run name; default: the first file's name
    RunKind kind = RunKind::Imported;
    const std::atomic<bool>* cancel = nullptr;
    int64_t commit_every = TraceStore::kCommitEvery; // events per transaction
    // The rank of each file, in the order the files are read, for files that
    // name none (the legacy profiler's export writes no distributedInfo);
    // empty: such files take the lowest free ranks in file order.
    std::vector<int> file_ranks;
};

struct TraceImportReport
{
    int64_t run_id = 0;
    std::map<std::string, int64_t> counts; // stored events by kind
    int64_t skipped = 0;                   // flows, counters and metadata: read, not stored as events
    std::vector<int> ranks;
    std::vector<std::string> warnings;     // "file: what", each kind of gap once with its count
    std::vector<std::string> left_out;     // what was not imported: files that failed, a second file
                                           // claiming a rank, ranks no file holds (also in warnings)
    int64_t bytes_read = 0;                // uncompressed JSON bytes
};

// `paths`: files, or folders whose *.json and *.json.gz files are read (one per
// rank; partita-worker's *.manifest.json are left out). The rank comes from
// `distributedInfo.rank`; a file without one gets the next unused rank, with
// a warning. One file alone that is malformed fails the import with the file
// and byte offset; the partial run is removed, earlier runs untouched. Of
// several, a malformed or truncated one is left out (its events removed), as
// is a second file claiming a rank, and ranks no file holds (below
// distributedInfo.world_size) are named: `left_out` says each; the import
// fails only when no file could be read.
Result<TraceImportReport> importChromeTrace(TraceStore& store, const std::vector<std::string>& paths,
                                            const TraceImportOptions& options = {});

// Chrome trace JSON of a stored run: one process per rank, one thread per
// track, Kineto's category names and args (stream, correlation), so that
// Perfetto, chrome://tracing and HTA open it. Written atomically. With
// `clockOffsets` (per rank, ns, as stragglers.h's ClockCorrection), each
// rank's times are shifted by its offset (subtracted) and the offsets are
// recorded in the file's "partita" header.
Result<int64_t> exportChromeTrace(const TraceStore& store, int64_t run, const std::string& path,
                                  const std::map<int32_t, int64_t>* clockOffsets = nullptr);

} // namespace partita
