#pragma once
// `partita-cli search`.

#include <cstdint>
#include <string>

namespace partita::cli {

struct SearchCliOptions
{
    std::string model, cluster, device, nodeTemplate, out, objective = "time", dtype, calibration; // dtype empty: the cluster's default
    double budget = 10;
    uint64_t seed = 1;
    int threads = 1, top = 5;
    int64_t globalBatch = 0, seqLen = 0, maxEvals = 0;
    bool json = false, allowPowerSgd = false, allowFp16Compression = false, allowFp8 = false;
};

int runSearch(const SearchCliOptions& o);

} // namespace partita::cli
