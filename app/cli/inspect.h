#pragma once
// `partita-cli inspect`: what Partita reads from a model, a cluster or a preset.

#include <cstdint>
#include <string>

namespace partita::cli {

struct InspectOptions
{
    std::string target;
    int64_t batch = 1;
    int64_t seqLen = 0; // 0: the model's default
    bool json = false;
    std::string device;       // for nvidia-smi topo files
    std::string nodeTemplate; // for hostfiles
    std::string as;           // "", "model" or "cluster"
};

// Returns the process exit code: 0, or 2 for bad input (message on stderr).
int runInspect(const InspectOptions& options);

// `partita-cli convert`: any readable model or cluster -> native JSON.
int runConvert(const InspectOptions& options, const std::string& output);

} // namespace partita::cli
