#pragma once
// Shared by the partita-cli commands: the one-line error (files are read and
// written through partita/core/fileio.h).

#include "partita/core/fileio.h"
#include "partita/core/result.h"

#include <iostream>
#include <string>

namespace partita::cli {

// Prints "partita-cli: error: FILE: WHERE: MESSAGE" and returns exit code 2.
inline int fail(const Error& e)
{
    std::cerr << "partita-cli: error: " << e.str() << "\n";
    return 2;
}

} // namespace partita::cli
