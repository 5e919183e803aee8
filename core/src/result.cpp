#include "partita/core/result.h"

namespace partita {

std::string Error::str() const
{
    std::string s;
    for (const std::string* part : {&file, &where}) {
        if (!part->empty()) {
            s += *part;
            s += ": ";
        }
    }
    s += message;
    return s;
}

} // namespace partita
