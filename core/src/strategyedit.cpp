#include "partita/core/strategyedit.h"

#include <algorithm>
#include <optional>

namespace partita {

const std::vector<AtomInfo>& strategyAtoms()
{
    static const std::vector<AtomInfo> atoms = {
        {AtomKind::AllReduce, "allreduce", "AllReduce",
         "Data parallel: gradients all-reduced in a ring across the data-parallel ranks (Horovod, PyTorch DDP)."},
        {AtomKind::AllReduceHierarchical, "allreduce-hierarchical", "AllReduce (hierarchical)",
         "Data parallel: reduce-scatter inside each node, all-reduce across nodes, all-gather inside the node."},
        {AtomKind::ParameterServer, "ps", "Parameter server",
         "Data parallel: gradients pushed to sharded parameter servers, parameters pulled back (BytePS, AutoDist)."},
        {AtomKind::SFB, "sfb", "SFB",
         "Sufficient-factor broadcasting: a fully-connected layer's gradient sent as its two factors (Poseidon)."},
        {AtomKind::NoSync, "nosync", "No sync", "Not synchronized: a frozen layer, or one without data parallelism."},
        {AtomKind::TpColumn, "tp-column", "TP column",
         "Tensor parallel, output features split across the tensor-parallel ranks (Megatron column-parallel)."},
        {AtomKind::TpRow, "tp-row", "TP row",
         "Tensor parallel, input features split; the partial outputs are all-reduced (Megatron row-parallel)."},
        {AtomKind::TpReplicated, "tp-replicated", "Replicated",
         "Not split: every tensor-parallel rank computes the whole layer."},
        {AtomKind::PipelineStage, "stage", "Pipeline stage", "Placed on a given pipeline stage."},
        {AtomKind::RecomputeNone, "recompute-none", "Keep activations", "Activations saved for the backward pass."},
        {AtomKind::RecomputeSelective, "recompute-selective", "Recompute (selective)",
         "Only the attention core's activations are recomputed in the backward pass (Korthikanti et al. 2022)."},
        {AtomKind::RecomputeFull, "recompute-full", "Recompute (full)",
         "Only the layer's input is kept; its forward pass runs again in the backward pass."},
    };
    return atoms;
}

std::optional<AtomKind> atomFromId(std::string_view id)
{
    for (const auto& a : strategyAtoms())
        if (a.id == id)
            return a.kind;
    return std::nullopt;
}

const AtomInfo& atomInfo(AtomKind k)
{
    for (const auto& a : strategyAtoms())
        if (a.kind == k)
            return a;
    return strategyAtoms().front();
}

namespace {

bool isSync(AtomKind k)
{
    return k == AtomKind::AllReduce || k == AtomKind::AllReduceHierarchical || k == AtomKind::ParameterServer ||
           k == AtomKind::SFB || k == AtomKind::NoSync;
}
bool isTp(AtomKind k) { return k == AtomKind::TpColumn || k == AtomKind::TpRow || k == AtomKind::TpReplicated; }

// Whether the atom applies to the layer when several layers are chosen at once.
bool atomApplies(const Atom& atom, const Layer& l)
{
    const bool weighted = l.parameterCount() > 0 || !l.tied_to.empty();
    const bool fc = l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead;
    if (atom.kind == AtomKind::SFB)
        return weighted && fc;
    if (atom.kind == AtomKind::TpColumn || atom.kind == AtomKind::TpRow)
        return l.kind == LayerKind::Linear;
    if (isSync(atom.kind) && atom.kind != AtomKind::NoSync)
        return weighted;
    return true;
}

// The layers the atom goes to: of several layers, those it applies to.
Result<std::vector<std::string>> chooseLayers(const Model& m, const std::vector<std::string>& layers, const Atom& atom,
                                              const std::string& label)
{
    std::vector<std::string> chosen = layers;
    if (layers.size() > 1) {
        chosen.clear();
        for (const std::string& name : layers) {
            const Layer* l = m.find(name);
            if (!l)
                return Error{{}, "layer '" + name + "'", "not a layer of model '" + m.name + "'"};
            if (atomApplies(atom, *l))
                chosen.push_back(name);
        }
        if (chosen.empty())
            return Error{{}, "layer '" + layers.front() + "'",
                         label + ": applies to none of the " + std::to_string(layers.size()) + " layers chosen"};
    }
    return chosen;
}

// Why the layer cannot take the atom under the strategy's global settings (nullopt: it can).
std::optional<Error> layerRefusal(const Strategy& s, const Model& m, const std::string& name, const Atom& atom,
                                  const std::string& label)
{
    const Layer* l = m.find(name);
    if (!l)
        return Error{{}, "layer '" + name + "'", "not a layer of model '" + m.name + "'"};
    const bool hasParams = l->parameterCount() > 0 || !l->tied_to.empty();
    if (isSync(atom.kind) && atom.kind != AtomKind::NoSync && !hasParams)
        return Error{{}, "layer '" + name + "'", label + ": the layer has no parameters to synchronize"};
    if ((atom.kind == AtomKind::TpColumn || atom.kind == AtomKind::TpRow) && s.tp <= 1)
        return Error{{}, "layer '" + name + "'",
                     label + ": the tensor-parallel degree is 1; raise tp in the global settings first"};
    if (atom.kind == AtomKind::PipelineStage && (atom.stage < 0 || atom.stage >= s.pp * std::max(1, s.interleave)))
        return Error{{}, "layer '" + name + "'",
                     "stage " + std::to_string(atom.stage) + " does not exist: the strategy has " +
                         std::to_string(s.pp * std::max(1, s.interleave)) + " pipeline stage(s)"};
    if (atom.kind == AtomKind::ParameterServer && s.zero_stage > 0 && hasParams)
        return Error{{}, "layer '" + name + "'",
                     label + ": ZeRO stage " + std::to_string(s.zero_stage) +
                         " already shards the optimizer state; set ZeRO to 0 to use parameter servers"};
    return std::nullopt;
}

// Takes the layer's own override out of the list (a fresh one where it has none).
LayerOverride takeOverride(std::vector<LayerOverride>& overrides, const std::string& name)
{
    LayerOverride o;
    o.pattern = name;
    auto it = std::find_if(overrides.begin(), overrides.end(),
                           [&](const LayerOverride& x) { return x.pattern == name; });
    if (it != overrides.end()) {
        o = *it;
        overrides.erase(it);
    }
    return o;
}

// The sync atom `a` changed to the method a sync atom names.
SyncAtom withSyncAtom(SyncAtom a, const Atom& atom)
{
    a.compression = Compression::None;
    switch (atom.kind) {
    case AtomKind::AllReduce:
        a.method = SyncMethod::AllReduce;
        a.algorithm = AllReduceAlgo::Ring;
        a.compression = atom.compression;
        break;
    case AtomKind::AllReduceHierarchical:
        a.method = SyncMethod::AllReduce;
        a.algorithm = AllReduceAlgo::Hierarchical;
        a.compression = atom.compression;
        break;
    case AtomKind::ParameterServer:
        a.method = SyncMethod::ParameterServer;
        a.ps_shards = std::max(0, atom.ps_shards);
        break;
    case AtomKind::SFB: a.method = SyncMethod::SFB; break;
    default: a.method = SyncMethod::None; break;
    }
    return a;
}

// Sets what the atom decides in the override: sync, tensor-parallel role, stage or recomputation.
void applyAtom(LayerOverride& o, const Atom& atom, const Strategy& s)
{
    if (isSync(atom.kind)) {
        o.sync = withSyncAtom(o.sync.value_or(s.sync), atom);
    } else if (isTp(atom.kind)) {
        o.tp_role = atom.kind == AtomKind::TpColumn ? TpRole::Column
                    : atom.kind == AtomKind::TpRow  ? TpRole::Row
                                                    : TpRole::Replicated;
    } else if (atom.kind == AtomKind::PipelineStage) {
        o.stage = atom.stage;
    } else {
        o.recompute = atom.kind == AtomKind::RecomputeFull        ? Recompute::Full
                      : atom.kind == AtomKind::RecomputeSelective ? Recompute::Selective
                                                                  : Recompute::None;
    }
}

} // namespace

Result<Strategy> assignAtom(const Strategy& s, const Model& m, const Cluster& c, const std::vector<std::string>& layers,
                            const Atom& atom)
{
    const std::string label = atomInfo(atom.kind).label;
    if (layers.empty())
        return Error{{}, {}, label + ": no layer chosen"};
    // Several layers: the atom goes to those it applies to.
    auto chosen = chooseLayers(m, layers, atom, label);
    if (!chosen)
        return chosen.error();
    Strategy out = s;
    for (const std::string& name : *chosen) {
        if (auto e = layerRefusal(s, m, name, atom, label))
            return *e;
        // The layer's own override moves to the end, after any glob that
        // also matches it, so that this edit is the one that counts.
        LayerOverride o = takeOverride(out.layers, name);
        applyAtom(o, atom, s);
        out.layers.push_back(std::move(o));
    }
    auto r = resolveStrategy(out, m, c);
    if (!r)
        return Error{{}, r.error().where, label + " refused: " + r.error().message};
    return out;
}

std::string syncLabel(const SyncAtom& a)
{
    std::string s;
    switch (a.method) {
    case SyncMethod::AllReduce:
        s = a.algorithm == AllReduceAlgo::Hierarchical ? "AllReduce (hier.)"
            : a.algorithm == AllReduceAlgo::Tree       ? "AllReduce (tree)"
                                                       : "AllReduce";
        break;
    case SyncMethod::ParameterServer: s = a.ps_shards > 0 ? "PS ×" + std::to_string(a.ps_shards) : "PS"; break;
    case SyncMethod::SFB: s = "SFB"; break;
    case SyncMethod::None: s = "none"; break;
    }
    if (a.compression != Compression::None)
        s += " + " + std::string(compressionName(a.compression));
    return s;
}

} // namespace partita
