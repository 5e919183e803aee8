#include "partita/core/modulepaths.h"

#include <algorithm>
#include <initializer_list>

namespace partita {

namespace {

std::vector<std::string> split(std::string_view path)
{
    std::vector<std::string> parts;
    size_t at = 0;
    while (at <= path.size() && !path.empty()) {
        const size_t dot = path.find('.', at);
        const size_t end = dot == std::string_view::npos ? path.size() : dot;
        if (end > at)
            parts.emplace_back(path.substr(at, end - at));
        if (dot == std::string_view::npos)
            break;
        at = dot + 1;
    }
    return parts;
}

std::string join(const std::vector<std::string>& parts, size_t from = 0)
{
    std::string s;
    for (size_t i = from; i < parts.size(); ++i)
        s += (s.empty() ? "" : ".") + parts[i];
    return s;
}

bool among(const std::string& s, std::initializer_list<const char*> names)
{
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}

// Frameworks' names for one component, in Partita's words (the names its
// model readers give layers: docs/formats.md). `parent` is already mapped.
std::string alias(const std::string& parent, const std::string& c, bool top)
{
    if (among(c, {"attn", "self_attn", "self_attention", "attention"}))
        return "attention";
    if (among(c, {"feed_forward", "mlp", "ffn"}))
        return "mlp";
    if (parent == "attention") {
        if (among(c, {"c_attn", "qkv_proj", "query_key_value", "Wqkv", "q_proj", "k_proj", "v_proj", "wq", "wk", "wv",
                      "linear_qkv"}))
            return "qkv";
        if (among(c, {"c_proj", "o_proj", "out_proj", "dense", "wo", "linear_proj"}))
            return "out";
    }
    if (parent == "mlp") {
        if (among(c, {"c_fc", "fc_in", "dense_h_to_4h", "linear_fc1"}))
            return "fc1";
        if (among(c, {"c_proj", "fc_out", "dense_4h_to_h", "linear_fc2"}))
            return "fc2";
        if (among(c, {"gate_proj", "up_proj", "w1", "w3"}))
            return "gate_up";
        if (among(c, {"down_proj", "w2"}))
            return "down";
        if (among(c, {"act_fn", "activation", "gelu"}))
            return "act";
    }
    if (among(c, {"attention_norm"}))
        return "input_layernorm";
    if (among(c, {"ffn_norm"}))
        return "post_attention_layernorm";
    if (top) {
        if (among(c, {"wte", "wpe", "word_embeddings", "tok_embeddings", "embed_positions"}))
            return "embeddings";
        if (among(c, {"output", "embed_out"}))
            return "lm_head";
        if (among(c, {"final_layernorm", "final_layer_norm"}))
            return "ln_f";
    }
    return c;
}

// The model's own container ("transformer.", "model.", ...) some frameworks
// put before the layers.
bool isContainer(const std::string& c)
{
    return among(c, {"transformer", "model", "gpt_neox", "base_model", "language_model", "decoder"});
}

} // namespace

std::string stripModuleWrappers(std::string_view path)
{
    std::vector<std::string> kept;
    for (std::string& p : split(path))
        if (!among(p, {"module", "_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_fpw_module"}))
            kept.push_back(std::move(p));
    return join(kept);
}

std::vector<std::string> ModulePathMatcher::candidates(std::string_view path) const
{
    const std::vector<std::string> parts = split(stripModuleWrappers(path));
    std::vector<std::string> out;
    for (size_t from = 0; from < parts.size() && from < 2; ++from) {
        if (from == 1 && !isContainer(parts[0]))
            break;
        out.push_back(join(parts, from));
        std::vector<std::string> mapped;
        for (size_t i = from; i < parts.size(); ++i)
            mapped.push_back(alias(mapped.empty() ? std::string() : mapped.back(), parts[i], i == from));
        out.push_back(join(mapped));
    }
    return out;
}

ModulePathMatcher::ModulePathMatcher(std::vector<std::string> layers, const std::vector<std::string>& paths)
    : m_layers(std::move(layers)), m_byModule(m_layers.size(), false)
{
    for (const std::string& p : paths)
        if (const int32_t l = exactLayer(p); l >= 0)
            m_byModule[size_t(l)] = true;
}

int32_t ModulePathMatcher::exactLayer(std::string_view path) const
{
    for (const std::string& c : candidates(path))
        if (auto it = std::find(m_layers.begin(), m_layers.end(), c); it != m_layers.end())
            return int32_t(it - m_layers.begin());
    return -1;
}

ModuleMatch ModulePathMatcher::match(std::string_view path) const
{
    const std::string stripped = stripModuleWrappers(path);
    if (stripped.empty() || stripped.front() == '(') // the model itself, as "(ClassName)"
        return {};
    if (const int32_t l = exactLayer(path); l >= 0)
        return {m_layers[size_t(l)], l};
    // A module that is no layer: its own time goes to the one layer directly
    // under it that no module stands for (work written as functions).
    for (const std::string& c : candidates(path)) {
        if (c.empty())
            continue;
        int32_t only = -1, count = 0;
        for (size_t i = 0; i < m_layers.size(); ++i) {
            const std::string& n = m_layers[i];
            if (n.size() > c.size() + 1 && n.compare(0, c.size(), c) == 0 && n[c.size()] == '.' &&
                n.find('.', c.size() + 1) == std::string::npos && !m_byModule[i]) {
                only = int32_t(i);
                ++count;
            }
        }
        if (count == 1)
            return {m_layers[size_t(only)], only};
    }
    // The model itself, or one of its containers: no layer.
    const std::vector<std::string> parts = split(stripped);
    if (parts.empty() || (parts.size() == 1 && isContainer(parts[0])))
        return {};
    return {stripped, -1};
}

} // namespace partita
