#pragma once
// Shared by the partita-cli commands: the one-line error and atomic file writes.

#include "partita/core/result.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

namespace partita::cli {

// Prints "partita-cli: error: FILE: WHERE: MESSAGE" and returns exit code 2.
inline int fail(const Error& e)
{
    std::cerr << "partita-cli: error: " << e.str() << "\n";
    return 2;
}

// Writes beside the target, then renames: an interrupted write never leaves half a file.
inline Result<bool> writeFileAtomically(const std::string& path, const std::string& text)
{
    const std::string tmp = path + ".partita-tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) {
            std::remove(tmp.c_str());
            return Error{path, {}, "cannot write"};
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return Error{path, {}, "cannot replace the file"};
    }
    return true;
}

} // namespace partita::cli
