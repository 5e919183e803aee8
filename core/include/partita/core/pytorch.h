#pragma once
// PyTorch training scripts: a data-parallel strategy (DDP with its bucket size
// and compression hook, ZeroRedundancyOptimizer for ZeRO-1, FSDP2's
// fully_shard for ZeRO-2/3, torch.utils.checkpoint recomputation, autocast
// precision) written as a runnable script that builds the model
// (resources/frameworks/pytorch_train.py), and such a script read back from
// the CONFIG it runs. Tensor, pipeline, context and expert parallelism are not
// written: the script has no DTensor plan or pipeline schedule yet.

#include "partita/core/cluster.h"
#include "partita/core/megatron.h" // ExportHeader
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <string>
#include <vector>

namespace partita {

struct PyTorchExport
{
    std::string script;
    Strategy exported;
    std::vector<std::string> differences;
};

// Every reason the script cannot train a strategy (or build a model), each
// naming the setting or layer; empty when it can.
std::vector<std::string> pytorchRefusals(const Model& m, const Strategy& s);

// The script, for `steps` steps by default at sequence `seqLen` (0: the
// model's). Refuses, listing every reason, unless `closest`.
Result<PyTorchExport> exportPyTorch(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                    const ExportHeader& header, bool closest = false);

struct PyTorchImport
{
    Model model;
    Strategy strategy;
    int64_t seq_len = 0;
    std::vector<std::string> notes;
};

// Reads the CONFIG block of a script this export wrote (or one edited by
// hand): the model it builds and the strategy it trains. Errors name the file,
// the line and the key.
Result<PyTorchImport> importPyTorch(const std::string& text, const std::string& file);

} // namespace partita
