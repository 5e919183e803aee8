#pragma once
// Hugging Face accelerate configurations: a strategy written as the config
// YAML of accelerate v1.14.0 (`accelerate launch --config_file`): DDP
// (MULTI_GPU), DeepSpeed ZeRO-1, FSDP2 with tensor and context parallelism
// (parallelism_config), or Megatron-LM (tensor, sequence and pipeline
// parallelism, the distributed optimizer); and such a YAML read back. The
// batch is the training script's: a "# batch:" comment carries it. The keys
// accelerate knows at that version are resources/frameworks/
// accelerate-v1.14.0-keys.txt, compiled in: a file's others are named.

#include "partita/core/cluster.h"
#include "partita/core/megatron.h" // ExportHeader
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <string>
#include <vector>

namespace partita {

struct AccelerateExport
{
    std::string yaml;
    Strategy exported;
    std::vector<std::string> differences;
    std::vector<std::string> notes;
};

std::vector<std::string> accelerateRefusals(const Model& m, const Strategy& s);
Result<AccelerateExport> exportAccelerate(const Model& m, const Cluster& c, const Strategy& s,
                                          const ExportHeader& header, bool closest = false);

struct AccelerateImport
{
    Strategy strategy;
    int world = 0;
    std::vector<std::string> notes;
};

// Errors name the file, line and key.
Result<AccelerateImport> importAccelerate(const std::string& text, const std::string& file);

const std::vector<std::string>& accelerateKeys();

} // namespace partita
