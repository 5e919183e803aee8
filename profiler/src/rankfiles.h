#pragma once
// The files of a multi-file trace import (chromeimport.cpp): which files a
// path names, and each kept file's final rank.

#include "partita/core/result.h"
#include "partita/profiler/chromeimport.h"

#include <optional>
#include <string>
#include <vector>

namespace partita::detail {

// The files `paths` name: files as given, folders' *.json and *.json.gz
// (partita-worker's *.manifest.json left out), sorted.
Result<std::vector<std::string>> listInputs(const std::vector<std::string>& paths);

// File i was imported as rank -1 - i. `ranks`: what each file claims (none:
// it named no rank); `kept`: the files read whole. A second file claiming a
// rank is dropped; the files that name none take the lowest unused ranks;
// ranks below `world` (or the highest seen) that no file holds are named in
// report.left_out. Renames the kept files' ranks in `w`.
Result<bool> settleRanks(RunWriter& w, const std::vector<std::string>& files, const std::vector<std::optional<int>>& ranks,
                         std::vector<bool>& kept, int world, TraceImportReport& report);

} // namespace partita::detail
