#pragma once
// The dotted paths of a TOML table's leaves ("parallelism.tensor_parallel_degree"),
// for the torchtitan reader and its lint.

#include <toml++/toml.h>

#include <string>
#include <vector>

namespace partita::detail {

inline void tomlLeaves(const toml::table& t, const std::string& prefix, std::vector<std::string>& out)
{
    for (const auto& [k, v] : t) {
        const std::string key = prefix + std::string(k.str());
        if (const toml::table* sub = v.as_table())
            tomlLeaves(*sub, key + ".", out);
        else
            out.push_back(key);
    }
}

} // namespace partita::detail
