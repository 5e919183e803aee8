#include "partita/core/model.h"

#include <array>
#include <set>
#include <utility>

namespace partita {

namespace {
constexpr std::array<std::pair<LayerKind, std::string_view>, 13> kKinds{{
    {LayerKind::Embedding, "embedding"},
    {LayerKind::Linear, "linear"},
    {LayerKind::AttentionCore, "attention"},
    {LayerKind::Norm, "norm"},
    {LayerKind::Activation, "activation"},
    {LayerKind::Elementwise, "elementwise"},
    {LayerKind::MoERouter, "moe_router"},
    {LayerKind::MoEExperts, "moe_experts"},
    {LayerKind::LMHead, "lm_head"},
    {LayerKind::Loss, "loss"},
    {LayerKind::Conv, "conv"},
    {LayerKind::Pool, "pool"},
    {LayerKind::Other, "other"},
}};
} // namespace

std::string_view layerKindName(LayerKind k)
{
    for (const auto& [kind, name] : kKinds)
        if (kind == k)
            return name;
    return "other";
}

std::optional<LayerKind> parseLayerKind(std::string_view s)
{
    for (const auto& [kind, name] : kKinds)
        if (name == s)
            return kind;
    return std::nullopt;
}

int64_t TensorSpec::numel() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

int64_t Layer::parameterCount() const
{
    int64_t n = 0;
    for (const auto& p : params)
        n += p.numel();
    return n;
}

int64_t Model::parameterCount() const
{
    int64_t n = 0;
    for (const auto& l : layers)
        n += l.parameterCount();
    return n;
}

const Layer* Model::find(std::string_view layerName) const
{
    for (const auto& l : layers)
        if (l.name == layerName)
            return &l;
    return nullptr;
}

CostAt layerCostAt(const Layer& layer, int64_t batch, int64_t seq, int activationBytes)
{
    const auto& c = layer.cost;
    const double tokens = double(batch) * double(seq);
    const double seq2 = double(batch) * double(seq) * double(seq);
    CostAt r;
    r.forward_flops = tokens * double(c.flops_per_token) + seq2 * double(c.flops_per_seq2) +
                      double(batch) * double(c.flops_per_sample);
    // A layer with weights computes the input gradient and the weight gradient,
    // each as costly as the forward matmul; attention's matmuls between two
    // activations need the gradient of both operands: also twice. Other
    // layers only propagate the input gradient.
    const bool twoGradients = !layer.params.empty() || !layer.tied_to.empty() ||
                              layer.kind == LayerKind::AttentionCore;
    r.backward_flops = r.forward_flops * (twoGradients ? 2.0 : 1.0);
    r.activation_bytes = tokens * double(c.saved_elems_per_token * activationBytes + c.mask_bytes_per_token) +
                         seq2 * double(c.saved_elems_per_seq2 * activationBytes + c.mask_bytes_per_seq2) +
                         double(batch) * double(c.saved_elems_per_sample * activationBytes);
    r.output_bytes = tokens * double(c.output_elems_per_token * activationBytes);
    return r;
}

CostAt modelCostAt(const Model& model, int64_t batch, int64_t seq, int activationBytes)
{
    CostAt total;
    for (const auto& l : model.layers) {
        const CostAt c = layerCostAt(l, batch, seq, activationBytes);
        total.forward_flops += c.forward_flops;
        total.backward_flops += c.backward_flops;
        total.activation_bytes += c.activation_bytes;
    }
    if (!model.layers.empty())
        total.output_bytes = layerCostAt(model.layers.back(), batch, seq, activationBytes).output_bytes;
    return total;
}

std::string validateModel(const Model& model)
{
    if (model.layers.empty())
        return "the model has no layers";
    std::set<std::string, std::less<>> seen;
    for (size_t i = 0; i < model.layers.size(); ++i) {
        const Layer& l = model.layers[i];
        const std::string at = "layer " + std::to_string(i) + " '" + l.name + "'";
        if (l.name.empty())
            return "layer " + std::to_string(i) + " has an empty name";
        if (seen.count(l.name))
            return at + ": duplicate layer name";
        for (const auto& in : l.inputs)
            if (!seen.count(in))
                return at + ": input '" + in + "' is not an earlier layer";
        for (const auto& p : l.params) {
            if (p.shape.empty())
                return at + ": parameter '" + p.name + "' has no shape";
            for (int64_t d : p.shape)
                if (d <= 0)
                    return at + ": parameter '" + p.name + "' has a non-positive dimension " + std::to_string(d);
        }
        if (!l.tied_to.empty()) {
            const Layer* t = model.find(l.tied_to);
            if (!t || !seen.count(l.tied_to))
                return at + ": tied_to '" + l.tied_to + "' is not an earlier layer";
            if (t->params.empty())
                return at + ": tied_to '" + l.tied_to + "' has no parameters to share";
        }
        const LayerCost& c = l.cost;
        for (int64_t v : {c.flops_per_token, c.flops_per_seq2, c.flops_per_sample, c.saved_elems_per_sample, c.saved_elems_per_token, c.saved_elems_per_seq2,
                          c.mask_bytes_per_token, c.mask_bytes_per_seq2, c.output_elems_per_token,
                          c.io_elems_per_token, c.io_elems_per_seq2})
            if (v < 0)
                return at + ": negative cost coefficient";
        seen.insert(l.name);
    }
    if (model.seq_len < 1)
        return "seq_len must be at least 1";
    return {};
}

} // namespace partita
