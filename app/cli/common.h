#pragma once
// Shared by the partita-cli commands: the one-line error (files are read and
// written through partita/core/fileio.h).

#include "partita/core/fileio.h"
#include "partita/core/result.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

// What `worker ARGS` prints on standard output, for the measurements that
// need the process that links OpenBLAS (--measure-cpu N, --calibrate-cpu).
inline Result<std::string> workerOutput(const std::string& worker, const std::string& args)
{
    if (access(worker.c_str(), X_OK) != 0)
        return Error{worker, {}, "the worker cannot be run (give --worker PATH)"};
    FILE* p = popen(("'" + worker + "' " + args).c_str(), "r");
    if (!p)
        return Error{worker, args, std::strerror(errno)};
    std::string text;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
        text.append(buf, n);
    const int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return Error{worker, args, "the measurement failed (exit status " + std::to_string(WEXITSTATUS(st)) + ")"};
    return text;
}

} // namespace partita::cli
