#pragma once
// torchtitan job configurations: a strategy for one of torchtitan's
// registered Llama 3 flavors written as the job TOML of torchtitan v0.2.2
// (torchtitan/config/job_config.py: [model], [training], [parallelism],
// [activation_checkpoint], [compile], [quantize.linear.float8]), and such a
// TOML read back. The keys torchtitan knows at that version are
// resources/frameworks/torchtitan-v0.2.2-keys.txt, compiled in: a file's
// others are named in the import's notes.

#include "partita/core/cluster.h"
#include "partita/core/megatron.h" // ExportHeader
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <optional>
#include <string>
#include <vector>

namespace partita {

// A torchtitan Llama 3 flavor (torchtitan/models/llama3/__init__.py at v0.2.2).
struct TorchtitanFlavor
{
    std::string name; // "8B"
    int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, vocab = 0;
};
const std::vector<TorchtitanFlavor>& torchtitanFlavors();
// The flavor whose shape is the model's (a Llama-family model), if any.
std::optional<TorchtitanFlavor> torchtitanFlavorOf(const Model& m);

struct TorchtitanExport
{
    std::string toml;
    Strategy exported;
    std::vector<std::string> differences;
    std::vector<std::string> notes;
};

std::vector<std::string> torchtitanRefusals(const Model& m, const Strategy& s);
Result<TorchtitanExport> exportTorchtitan(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                          const ExportHeader& header, bool closest = false);

struct TorchtitanImport
{
    Model model;
    Strategy strategy;
    int64_t seq_len = 0;
    int world = 0;
    std::vector<std::string> notes; // keys torchtitan v0.2.2 does not know, settings not modelled
};

// `devices`: the GPUs (0: unknown; needed when data_parallel_shard_degree is
// -1, "the ranks left"). Errors name the file, line and key.
Result<TorchtitanImport> importTorchtitan(const std::string& text, const std::string& file, int devices);

// The keys of torchtitan v0.2.2's job TOML ("parallelism.tensor_parallel_degree").
const std::vector<std::string>& torchtitanKeys();

} // namespace partita
