#pragma once
// The files of a multi-file trace import (chromeimport.cpp): which files a
// path names, reading them several at a time, and each kept file's final rank.

#include "partita/core/result.h"
#include "partita/profiler/chromeimport.h"

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace partita::detail {

// The files `paths` name: files as given, folders' *.json and *.json.gz
// (partita-worker's *.manifest.json left out), sorted.
Result<std::vector<std::string>> listInputs(const std::vector<std::string>& paths);

// What reading one file gave: its own tallies, its rank, or why it failed.
struct FileOutcome
{
    std::optional<Error> error;
    std::optional<int> rank, world; // distributedInfo's rank and world_size
    // A file of several ranks (Partita's own export: pid = rank): each of
    // its tracks' number (under the provisional rank) and the rank it is.
    std::vector<std::pair<int32_t, int>> spread;
    std::vector<std::pair<std::string, int64_t>> warnings;
    TraceImportReport part; // counts, skipped, bytes_read
};

// readOne(i, lock) for each of `files` files. Several: up to one per core
// (2 to 8) at a time, `lock` held by readOne while it writes to the shared
// run (each file's parsing runs beside the others'; memory is a few batches
// per file in flight, whatever the folder holds). One: on this thread, no lock.
std::vector<FileOutcome> readAll(size_t files, bool several, const std::function<FileOutcome(size_t, std::mutex*)>& readOne);

// Partita's export of several ranks: each track (its number, its pid) is
// the rank its pid names. Empty when a pid is not a rank number, or all are
// one (the file is then one rank, as any other).
std::vector<std::pair<int32_t, int>> ranksByPid(const std::vector<std::pair<int32_t, std::string>>& tracks);

// File i was imported as rank -1 - i. `ranks`: what each file claims (none:
// it named no rank); `spread`: a file of several ranks, its tracks' ranks;
// `kept`: the files read whole. A file claiming a rank another file claimed
// first is dropped; the files that name none take the lowest unused ranks;
// ranks below `world` (or the highest seen) that no file holds are named in
// report.left_out. Renames the kept files' ranks (or moves their tracks) in `w`.
Result<bool> settleRanks(RunWriter& w, const std::vector<std::string>& files, const std::vector<std::optional<int>>& ranks,
                         const std::vector<std::vector<std::pair<int32_t, int>>>& spread, std::vector<bool>& kept, int world,
                         TraceImportReport& report);

} // namespace partita::detail
