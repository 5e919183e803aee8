#include "fileutil.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace partita::detail {

Result<std::string> readFile(const std::string& path)
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

} // namespace partita::detail
