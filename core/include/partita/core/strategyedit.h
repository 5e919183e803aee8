#pragma once
// Editing a strategy one layer set at a time: the atoms a user drags onto
// layers in the designer (and `partita-cli strategy assign` applies), each
// checked against the model and cluster before it is accepted.

#include "partita/core/cluster.h"
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class AtomKind
{
    AllReduce,             // ring all-reduce of the gradients (Horovod, DDP)
    AllReduceHierarchical, // reduce-scatter in the node, all-reduce across, all-gather in the node
    ParameterServer,       // sharded parameter servers (BytePS, AutoDist PS)
    SFB,                   // sufficient-factor broadcasting (Poseidon; fully-connected layers)
    NoSync,                // frozen: not synchronized
    TpColumn,              // tensor parallel, output features split (Megatron column-parallel)
    TpRow,                 // tensor parallel, input features split (Megatron row-parallel)
    TpReplicated,          // computed whole on every tensor-parallel rank
    PipelineStage,         // placed on a given (virtual) pipeline stage
    RecomputeNone,
    RecomputeSelective,    // only the attention core is recomputed
    RecomputeFull,         // only layer inputs are kept
};

struct AtomInfo
{
    AtomKind kind;
    std::string id;          // "allreduce", "tp-column", ... (CLI and drag-and-drop payload)
    std::string label;       // "AllReduce"
    std::string description; // a sentence for tooltips and `strategy atoms`
};
const std::vector<AtomInfo>& strategyAtoms();
std::optional<AtomKind> atomFromId(std::string_view id);
const AtomInfo& atomInfo(AtomKind k);

// One atom with the parameters the inspector edits.
struct Atom
{
    AtomKind kind = AtomKind::AllReduce;
    int stage = 0;                              // PipelineStage
    int ps_shards = 0;                          // ParameterServer: 0 = one shard per node
    Compression compression = Compression::None; // AllReduce kinds
};

// The strategy with `atom` assigned to the named layers (exact names; an
// override for exactly that name is updated in place, so repeated edits do
// not pile up). Given several layers (a block, a selection), the atom goes to
// those it applies to: sync atoms to layers with parameters, SFB and
// tensor-parallel splits to fully-connected ones; given one layer, or none of
// them qualifying, it is refused. Fails, naming the layer and the reason,
// when a name is not a layer of the model or the result does not resolve
// against the model and the cluster (a tensor-parallel split that does not
// divide, SFB on a layer that is not fully connected, a stage out of range ...).
Result<Strategy> assignAtom(const Strategy& s, const Model& m, const Cluster& c, const std::vector<std::string>& layers,
                            const Atom& atom);

// What a layer has, in a word or two, for the layer table and the graph:
// "AllReduce", "PS ×4", "SFB", "none".
std::string syncLabel(const SyncAtom& a);

} // namespace partita
