#pragma once
// Horovod launch lines: a data-parallel strategy written as horovodrun with
// its tensor-fusion and hierarchical all-reduce flags (the rest is the training
// script's: named in comments), and such a line read back. Flags as Horovod
// v0.28.1 (horovod/runner/launch.py) defines them.

#include "partita/core/cluster.h"
#include "partita/core/megatron.h" // ExportHeader
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <string>
#include <vector>

namespace partita {

struct HorovodExport
{
    std::string script;
    Strategy exported;
    std::vector<std::string> differences;
};

std::vector<std::string> horovodRefusals(const Model& m, const Strategy& s);
Result<HorovodExport> exportHorovod(const Model& m, const Cluster& c, const Strategy& s, const ExportHeader& header,
                                    bool closest = false);

struct HorovodImport
{
    Strategy strategy;
    int world = 0;
    std::vector<std::string> notes;
};

// Reads a horovodrun line (or a script holding one). The batch lives in the
// training script: the strategy takes one sample per worker unless the
// script's "# batch:" comment (which export writes) says otherwise.
Result<HorovodImport> importHorovod(const std::string& text, const std::string& file);

} // namespace partita
