#pragma once
// Megatron-LM launch scripts: a strategy (with its model and cluster) written
// as a torchrun + pretrain_gpt.py command line, and such a command line read
// back into a model and a strategy. The flags are Megatron-LM core_r0.10.0's
// (megatron/training/arguments.py); tests/data/frameworks holds that list.

#include "partita/core/cluster.h"
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <map>
#include <string>
#include <vector>

namespace partita {

// What the first lines of an exported file say.
struct ExportHeader
{
    std::string version;      // Partita's
    std::string strategy;     // its name
    std::string strategy_version; // e.g. the project's document version; empty: none
    double step_time_s = 0;   // the prediction (0: not given)
    double peak_memory_bytes = 0;
    std::string cluster;
};

struct MegatronExport
{
    std::string script;                    // bash: torchrun ... pretrain_gpt.py FLAGS "$@"
    Strategy exported;                     // what the script trains (the closest strategy with --closest)
    std::vector<std::string> differences;  // with closest: each change from the strategy asked for
};

// Every reason a strategy cannot be written as Megatron-LM flags, each naming
// the setting or the layer and its atom; empty when it can.
std::vector<std::string> megatronRefusals(const Model& m, const Strategy& s);

// The launch script. Refuses, listing every reason, what Megatron-LM cannot
// express, unless `closest`: then it writes the nearest strategy it can and
// lists the differences.
Result<MegatronExport> exportMegatron(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                      const ExportHeader& header, bool closest = false);

// The flags of the command that runs pretrain_gpt.py (every flag when the
// text does not name it), and torchrun's node and process counts (0: absent).
struct MegatronFlags
{
    std::map<std::string, std::string> flags; // "--flag" -> value ("" for a switch)
    int nnodes = 0, nproc = 0;
};
MegatronFlags megatronFlags(const std::string& text);

struct MegatronImport
{
    Model model;
    Strategy strategy;
    int64_t seq_len = 0;
    int world = 0;                  // from torchrun's --nnodes x --nproc-per-node, or the caller's
    std::vector<std::string> notes; // flags read but not modelled, defaults assumed
};

// Reads a Megatron-LM command line or launch script (backslash-continued
// lines, `--flag value` and `--flag=value`). `world` (0: from torchrun's
// flags) gives the data-parallel size. Errors name the flag and the file.
Result<MegatronImport> importMegatron(const std::string& text, const std::string& file, int world = 0);

// Megatron-LM's YAML configuration (--yaml-cfg, core_r0.10.0's
// yaml_arguments.py; megatronyaml.cpp): its arguments as the command line
// they stand for, with torchrun's counts when given.
Result<std::string> megatronYamlCommand(const std::string& yaml, const std::string& file, int nnodes, int nproc,
                                        std::vector<std::string>* notes = nullptr);
// A Megatron-LM YAML configuration (its language_model and model_parallel sections).
bool isMegatronYaml(const std::string& text);
// The command line a text stands for: itself, or, for a YAML configuration
// or a command line with --yaml-cfg, the YAML's arguments (the file it names
// is read relative to `file`'s folder; the command line's other flags are
// ignored, as Megatron-LM does).
Result<std::string> megatronCommand(const std::string& text, const std::string& file,
                                    std::vector<std::string>* notes = nullptr);
// importMegatron, where the text is a YAML configuration or a command line
// with --yaml-cfg (then the file it names is read, relative to `file`'s
// folder, and the command line's other flags are ignored, as Megatron-LM
// does).
Result<MegatronImport> importMegatronWithYaml(const std::string& text, const std::string& file, int world = 0);

} // namespace partita
