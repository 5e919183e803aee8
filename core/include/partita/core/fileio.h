#pragma once
// Whole-file reads and atomic writes, with errors as values naming the file.
// Every command and library that saves a file goes through
// writeFileAtomically, so an interrupted write never leaves half a file.

#include "partita/core/result.h"

#include <string>

namespace partita {

// The whole file; a missing file, a directory or a read error is an Error.
Result<std::string> readTextFile(const std::string& path);

// Writes beside the target (PATH.partita-tmp), then renames over it.
Result<bool> writeFileAtomically(const std::string& path, const std::string& text);

} // namespace partita
