#pragma once
// Reading whole files with errors as values. Internal to core.

#include "partita/core/result.h"

#include <string>

namespace partita::detail {

Result<std::string> readFile(const std::string& path);

} // namespace partita::detail
