#pragma once
// One entry to the training frameworks a strategy can leave for or come from
// (megatron.h, deepspeed.h, horovod.h, pytorch.h): their names, what a file
// is, the files an export writes and what an import reads. The CLI's export,
// import-config and lint-config and the workbench's File menu and drops use it.

#include "partita/core/cluster.h"
#include "partita/core/megatron.h" // ExportHeader
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace partita {

enum class Framework
{
    Megatron,
    DeepSpeed,
    Horovod,
    PyTorch,
    Torchtitan,
    Accelerate,
};

const std::vector<Framework>& allFrameworks();
std::string_view frameworkName(Framework f);  // "megatron", "deepspeed", "horovod", "pytorch"
std::string_view frameworkTitle(Framework f); // "Megatron-LM core_r0.10.0", ...
std::optional<Framework> frameworkFromName(std::string_view name);

// What a file's text is: a DeepSpeed configuration (JSON with DeepSpeed's
// batch or ZeRO keys), a PyTorch script Partita exported (its CONFIG block),
// a torchtitan job TOML (a [parallelism] or [model] table with a flavor), an
// accelerate config YAML (its distributed_type), a
// horovodrun line, or a Megatron-LM command line (pretrain_*.py or its model
// flags); nullopt when none.
std::optional<Framework> detectFramework(const std::string& text);

struct FrameworkFiles
{
    std::vector<std::pair<std::string, std::string>> files; // name -> text; one unnamed file for a single script
    Strategy exported;                                      // the closest strategy with `closest`
    std::vector<std::string> differences, notes;
};

// Every reason the framework cannot run the strategy; empty when it can.
std::vector<std::string> frameworkRefusals(Framework f, const Model& m, const Strategy& s);

Result<FrameworkFiles> exportFramework(Framework f, const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                       const ExportHeader& header, bool closest = false);

struct FrameworkImport
{
    std::optional<Model> model; // where the file says the model (Megatron-LM flags, the PyTorch script)
    Strategy strategy;
    int64_t seq_len = 0;
    int world = 0;
    std::vector<std::string> notes;
};

// `devices`: the GPUs the job runs on (0: unknown; DeepSpeed's configuration
// needs it, Megatron-LM's torchrun flags say it themselves).
Result<FrameworkImport> importFramework(Framework f, const std::string& text, const std::string& file, int devices);

} // namespace partita
