#include "fileutil.h"

#include "partita/core/fileio.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace partita {

Result<std::string> readTextFile(const std::string& path)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        return Error{path, {}, std::string("cannot open: ") + std::strerror(errno)};
    if (S_ISDIR(st.st_mode))
        return Error{path, {}, "is a directory, not a file"};
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Error{path, {}, std::string("cannot open: ") + std::strerror(errno)};
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad())
        return Error{path, {}, "read error"};
    return ss.str();
}

Result<bool> writeFileAtomically(const std::string& path, const std::string& text)
{
    const std::string tmp = path + ".partita-tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            return Error{path, {}, std::string("cannot write: ") + std::strerror(errno)};
        out << text;
        if (!out.flush()) {
            std::remove(tmp.c_str());
            return Error{path, {}, "cannot write"};
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        return Error{path, {}, "cannot replace the file: " + why};
    }
    return true;
}

namespace detail {

Result<std::string> readFile(const std::string& path) { return readTextFile(path); }

} // namespace detail

} // namespace partita
