#pragma once
// DeepSpeed configurations: a strategy written as ds_config.json with the
// `deepspeed` launch line and hostfile, and a ds_config.json read back into a
// strategy. Keys as DeepSpeed v0.18.9 (8c93851) reads them; tests/data/frameworks
// holds that list.

#include "partita/core/cluster.h"
#include "partita/core/megatron.h" // ExportHeader
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <string>
#include <vector>

namespace partita {

struct DeepSpeedExport
{
    std::string config;                   // ds_config.json
    std::string launch;                   // bash: deepspeed --hostfile hostfile ... train.py --deepspeed_config ...
    std::string hostfile;                 // one line per node: NAME slots=GPUS
    Strategy exported;                    // what the configuration trains (the closest strategy with `closest`)
    std::vector<std::string> differences; // with closest: each change from the strategy asked for
    std::vector<std::string> notes;       // what the training script itself must do (PipelineModule, checkpointing)
};

// Every reason a strategy cannot be a DeepSpeed configuration, each naming the
// setting or the layer; empty when it can.
std::vector<std::string> deepspeedRefusals(const Model& m, const Strategy& s);

Result<DeepSpeedExport> exportDeepSpeed(const Model& m, const Cluster& c, const Strategy& s,
                                        const ExportHeader& header, bool closest = false);

struct DeepSpeedImport
{
    Strategy strategy;
    std::vector<std::string> notes;
};

// Reads ds_config.json for a job of `world` GPUs. DeepSpeed's own batch rule
// (train_batch_size = micro-batch x accumulation x data-parallel size) is
// checked; errors name the key.
Result<DeepSpeedImport> importDeepSpeed(const std::string& text, const std::string& file, int world);

// The top-level keys of a ds_config.json DeepSpeed v0.18.9 reads
// (resources/frameworks/deepspeed-v0.18.9-keys.txt); it ignores any other.
const std::vector<std::string>& deepspeedKeys();

} // namespace partita
