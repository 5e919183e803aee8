#pragma once
// Chrome trace event JSON (opens in Perfetto and chrome://tracing): one
// process per rank, one thread per track, with their names.

#include "partita/core/result.h"
#include "partita/core/trace.h"

#include <string>

namespace partita {

std::string traceToChromeJson(const Trace& trace);
// Writes atomically (temporary file, then rename). Returns an error naming the path.
Result<bool> writeChromeTrace(const Trace& trace, const std::string& path);

} // namespace partita
