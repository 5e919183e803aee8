#pragma once
// The model: a DAG of layers at the granularity a user assigns strategies to.
// Costs are stored as coefficients so that one model answers for any batch
// size B and sequence length S (see LayerCost and docs/formats.md).

#include "partita/core/dtype.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class LayerKind
{
    Embedding,     // table lookup; gradient is sparse (rows the batch touches)
    Linear,        // dense projection (attention q/k/v/o, MLP, pooler)
    AttentionCore, // softmax(QK^T)V over heads; quadratic in S
    Norm,          // LayerNorm, RMSNorm, BatchNorm
    Activation,    // GeLU, SiLU*up (SwiGLU), ReLU
    Elementwise,   // residual adds, dropout, reshapes grouped together
    MoERouter,     // expert gate
    MoEExperts,    // the experts of one MoE layer
    LMHead,        // vocabulary projection
    Loss,          // cross-entropy over the vocabulary
    Conv,
    Pool,
    Other,
};

std::string_view layerKindName(LayerKind k);
std::optional<LayerKind> parseLayerKind(std::string_view s);

struct TensorSpec
{
    std::string name;
    std::vector<int64_t> shape;
    DType dtype = DType::F32;

    int64_t numel() const;
    bool operator==(const TensorSpec&) const = default;
};

// Forward cost of one layer. For batch B and sequence length S:
//   flops        = B*S*flops_per_token + B*S*S*flops_per_seq2 + B*flops_per_sample
//   saved bytes  = B*S*(saved_elems_per_token*a + mask_bytes_per_token)
//                + B*S*S*(saved_elems_per_seq2*a + mask_bytes_per_seq2)
//                + B*saved_elems_per_sample*a
// where a is the activation element size. "Saved" is what the backward pass
// keeps (inputs of the layer's matmuls, softmax outputs, ...), following
// Korthikanti et al. 2022, §4; masks are 1-byte dropout masks. Models that
// are not sequences (CNNs) use S = 1: "per token" then means per sample.
// Backward FLOPs are derived: 2x forward for layers with weights (dgrad +
// wgrad) and for attention cores (gradients of both matmul operands), 1x for
// the rest (dgrad only).
struct LayerCost
{
    int64_t flops_per_token = 0;
    int64_t flops_per_seq2 = 0;
    int64_t flops_per_sample = 0; // work done once per sample (BERT pooler on the first token)
    int64_t saved_elems_per_token = 0;
    int64_t saved_elems_per_seq2 = 0;
    int64_t mask_bytes_per_token = 0;
    int64_t mask_bytes_per_seq2 = 0;
    int64_t saved_elems_per_sample = 0;
    int64_t output_elems_per_token = 0; // what the next layer receives (pipeline p2p size)
    int64_t io_elems_per_token = 0;     // elements read + written by the forward op (memory-bound roofline)
    int64_t io_elems_per_seq2 = 0;

    bool operator==(const LayerCost&) const = default;
};

// Shape facts that strategies validate against (tensor-parallel degrees must
// divide heads, experts, ...). Zero means "not applicable".
struct LayerDims
{
    int64_t in_features = 0;
    int64_t out_features = 0;
    int64_t heads = 0;
    int64_t kv_heads = 0;
    int64_t head_dim = 0;
    int64_t experts = 0;
    int64_t top_k = 0;
    int64_t vocab = 0;
    // Attention core: 1 when each token attends only to those before it
    // (decoder self-attention; a fused kernel then skips the masked half).
    int64_t causal = 0;

    bool operator==(const LayerDims&) const = default;
};

struct Layer
{
    std::string name;                      // unique within the model
    LayerKind kind = LayerKind::Other;
    std::string block;                     // repeated block it belongs to ("encoder.layer.3"); empty if none
    std::vector<std::string> inputs;       // producer layer names; empty: the model input
    std::vector<TensorSpec> params;        // trainable parameters owned by this layer
    std::string tied_to;                   // layer whose parameters this layer reuses (tied LM head)
    bool sparse_grad = false;              // embedding: gradient rows are only those the batch touched
    LayerDims dims;
    LayerCost cost;
    std::vector<std::string> source_nodes; // ONNX nodes grouped into this layer

    int64_t parameterCount() const;
    bool operator==(const Layer&) const = default;
};

// Architecture facts of the whole model (zero where not applicable).
struct ModelDims
{
    int64_t hidden = 0;
    int64_t layers = 0; // transformer blocks (encoder + decoder for T5)
    int64_t heads = 0;
    int64_t kv_heads = 0;
    int64_t ffn = 0;
    int64_t vocab = 0;
    int64_t experts = 0;
    int64_t top_k = 0;

    bool operator==(const ModelDims&) const = default;
};

struct Model
{
    std::string name;
    std::string family;   // bert, gpt2, llama, mistral, mixtral, t5, onnx, native
    DType param_dtype = DType::F32;
    bool sequence = true; // false: S is 1 and costs are per sample
    int64_t seq_len = 1;  // default sequence length (max positions of the config)
    ModelDims dims;
    std::vector<Layer> layers; // in a topological order
    std::vector<std::string> notes; // importer remarks a user should see (assumptions, skipped parts)

    int64_t parameterCount() const;
    const Layer* find(std::string_view layerName) const;
    bool operator==(const Model&) const = default;
};

// Forward cost of a layer or a whole model at a batch and sequence length.
struct CostAt
{
    double forward_flops = 0;
    double backward_flops = 0;
    double activation_bytes = 0; // saved for backward
    double output_bytes = 0;
};

CostAt layerCostAt(const Layer& layer, int64_t batch, int64_t seq, int activationBytes = 2);
CostAt modelCostAt(const Model& model, int64_t batch, int64_t seq, int activationBytes = 2);

// Structural checks every importer runs last: unique names, inputs that name
// earlier layers, tied_to naming a layer with parameters, non-negative shapes.
// Returns an empty string when the model is well-formed, else the problem.
std::string validateModel(const Model& model);

} // namespace partita
