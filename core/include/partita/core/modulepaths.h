#pragma once
// A training framework's module paths matched to the layer names of the
// model Partita imported, for attributing a profiled run's time to layers.
// Hugging Face names (transformer.h.3.attn.c_attn, model.layers.3.self_attn.
// q_proj, ...) and the names Partita's PyTorch export writes (h.3.attention.
// qkv, ...) both resolve; with no model, module paths are the layers.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

// A module path without its wrappers' components (DDP's and FSDP's
// "module", torch.compile's "_orig_mod", activation checkpointing's
// "_checkpoint_wrapped_module", ...). Empty for the model itself.
std::string stripModuleWrappers(std::string_view path);

struct ModuleMatch
{
    std::string name;   // the layer's name, or the module's path when it is no layer; empty: the model itself
    int32_t layer = -1; // index in the layer names; -1 when the name is a module path
};

class ModulePathMatcher
{
public:
    // `layers`: the model's layer names in order (empty: no model). `paths`:
    // every module path the run recorded, so that time a module spends
    // outside its children goes to a layer no module stands for (an
    // attention's core written as functions goes to "….attention.core").
    ModulePathMatcher(std::vector<std::string> layers, const std::vector<std::string>& paths);

    // The layer (or module) a module's own time belongs to.
    ModuleMatch match(std::string_view path) const;
    // The layer a module path is that layer, by its own name or an alias
    // (no remainder rule); -1 when none.
    int32_t exactLayer(std::string_view path) const;

private:
    std::vector<std::string> m_layers;
    std::vector<bool> m_byModule; // some recorded module is this layer
    std::vector<std::string> candidates(std::string_view path) const;
};

} // namespace partita
