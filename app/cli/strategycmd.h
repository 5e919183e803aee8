#pragma once
// `partita-cli strategy atoms` and `partita-cli strategy assign`: the
// designer's drag and drop, headless.

#include "simulate.h"

#include <string>
#include <vector>

namespace partita::cli {

struct StrategyCliOptions
{
    SimulateOptions base;            // model, cluster and the strategy to edit (file, preset or mesh flags)
    std::vector<std::string> layers; // layer names or globs
    std::string atom, compression = "none", out;
    int stage = 0, shards = 0;
    bool json = false;
};

int runStrategyAtoms(bool json);
int runStrategyAssign(const StrategyCliOptions& o);

} // namespace partita::cli
