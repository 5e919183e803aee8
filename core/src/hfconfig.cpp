// Hugging Face config.json -> Model, for the BERT, GPT-2, Llama, Mistral,
// Mixtral and T5 families. Parameter names follow the checkpoints' state_dict
// keys (without the task prefix such as "bert." or "model.") so that a layer can
// be matched to real weights. Saved-activation accounting follows Korthikanti
// et al. 2022, "Reducing Activation Recomputation in Large Transformer
// Models", §4.1 (34sbh + 5as^2b per GPT layer with 16-bit activations).
#include "jsonread.h"
#include "partita/core/modelio.h"

#include <algorithm>

namespace partita {

using detail::json;

namespace {

constexpr int64_t kMaxHidden = 1 << 20;
constexpr int64_t kMaxLayers = 10000;
constexpr int64_t kMaxVocab = int64_t(1) << 27;
constexpr int64_t kMaxSeq = int64_t(1) << 24;
constexpr int64_t kMaxExperts = 4096;

class Builder
{
public:
    explicit Builder(Model& m, DType dtype) : m_model(m), m_dtype(dtype) {}

    TensorSpec w(std::string name, std::vector<int64_t> shape) const
    {
        return TensorSpec{std::move(name), std::move(shape), m_dtype};
    }

    Layer& add(Layer l)
    {
        m_model.layers.push_back(std::move(l));
        return m_model.layers.back();
    }

    // A dense projection. `inputSaved` is what backward keeps of the input (the
    // input itself); `outMask` adds a dropout mask on the output.
    Layer& linear(const std::string& name, const std::string& block, std::vector<std::string> inputs,
                  std::vector<TensorSpec> params, int64_t in, int64_t out, bool outMask,
                  LayerKind kind = LayerKind::Linear)
    {
        Layer l;
        l.name = name;
        l.kind = kind;
        l.block = block;
        l.inputs = std::move(inputs);
        l.params = std::move(params);
        l.dims.in_features = in;
        l.dims.out_features = out;
        l.cost.flops_per_token = 2 * in * out;
        l.cost.saved_elems_per_token = in;
        l.cost.mask_bytes_per_token = outMask ? out : 0;
        l.cost.output_elems_per_token = out;
        l.cost.io_elems_per_token = in + out;
        return add(std::move(l));
    }

    Layer& norm(const std::string& name, const std::string& block, std::vector<std::string> inputs,
                std::vector<TensorSpec> params, int64_t h, bool outMask = false)
    {
        Layer l;
        l.name = name;
        l.kind = LayerKind::Norm;
        l.block = block;
        l.inputs = std::move(inputs);
        l.params = std::move(params);
        l.dims.in_features = h;
        l.dims.out_features = h;
        l.cost.saved_elems_per_token = h;
        l.cost.mask_bytes_per_token = outMask ? h : 0;
        l.cost.output_elems_per_token = h;
        l.cost.io_elems_per_token = 2 * h;
        // ~5 FLOPs per element (mean, variance, normalize, scale, shift): small next to matmuls.
        l.cost.flops_per_token = 5 * h;
        return add(std::move(l));
    }

    // softmax(Q K^T / sqrt(d)) V over `heads` query heads and `kvHeads` key/value heads.
    // Saved: Q, K, V; the softmax output; with dropout, its mask and its output.
    Layer& attention(const std::string& name, const std::string& block, std::vector<std::string> inputs,
                     int64_t heads, int64_t kvHeads, int64_t headDim, bool dropout,
                     std::vector<TensorSpec> params = {})
    {
        Layer l;
        l.name = name;
        l.kind = LayerKind::AttentionCore;
        l.block = block;
        l.inputs = std::move(inputs);
        l.params = std::move(params);
        const int64_t q = heads * headDim, kv = kvHeads * headDim;
        l.dims.heads = heads;
        l.dims.kv_heads = kvHeads;
        l.dims.head_dim = headDim;
        l.cost.flops_per_seq2 = 2 * q /*QK^T*/ + 2 * q /*PV*/;
        l.cost.saved_elems_per_token = q + 2 * kv;
        l.cost.saved_elems_per_seq2 = dropout ? 2 * heads : heads;
        l.cost.mask_bytes_per_seq2 = dropout ? heads : 0;
        l.cost.output_elems_per_token = q;
        l.cost.io_elems_per_token = 2 * q + 2 * kv;
        // Unfused attention (before FlashAttention, as in Megatron-LM 2022): the
        // QK^T matmul writes the scores, the fused scale-mask-softmax reads
        // and writes them, dropout reads them and writes its output (and a
        // mask), and the PV matmul reads that: 6 passes with dropout, 4 without.
        l.cost.io_elems_per_seq2 = (dropout ? 6 : 4) * heads;
        return add(std::move(l));
    }

    Layer& activation(const std::string& name, const std::string& block, std::vector<std::string> inputs,
                      int64_t inElems, int64_t outElems, bool outMask)
    {
        Layer l;
        l.name = name;
        l.kind = LayerKind::Activation;
        l.block = block;
        l.inputs = std::move(inputs);
        l.cost.saved_elems_per_token = inElems;
        l.cost.mask_bytes_per_token = outMask ? outElems : 0;
        l.cost.output_elems_per_token = outElems;
        l.cost.io_elems_per_token = inElems + outElems;
        // tanh-GeLU, 0.5x(1 + tanh(c(x + 0.044715x^3))): 3 for the cubic term,
        // 4 around the tanh, 1 for the tanh; SiLU(g)*u is fewer (exp, add,
        // divide, two multiplies). Costed by their memory traffic either way.
        l.cost.flops_per_token = 8 * outElems;
        return add(std::move(l));
    }

    Layer& embedding(const std::string& name, std::vector<TensorSpec> params, int64_t vocab, int64_t h,
                     bool outMask)
    {
        Layer l;
        l.name = name;
        l.kind = LayerKind::Embedding;
        l.params = std::move(params);
        l.sparse_grad = true;
        l.dims.vocab = vocab;
        l.dims.out_features = h;
        l.cost.mask_bytes_per_token = outMask ? h : 0;
        l.cost.output_elems_per_token = h;
        l.cost.io_elems_per_token = 2 * h;
        return add(std::move(l));
    }

    // Output projection onto the vocabulary, then cross-entropy. The loss keeps
    // the fp32 logits (4 bytes = two 16-bit elements per vocabulary entry,
    // Korthikanti et al. §4.3: 4sbv).
    void head(const std::string& name, const std::string& input, int64_t h, int64_t vocab,
              const std::string& tiedTo, std::vector<TensorSpec> params)
    {
        Layer& lm = linear(name, {}, {input}, std::move(params), h, vocab, false, LayerKind::LMHead);
        lm.tied_to = tiedTo;
        lm.dims.vocab = vocab;
        Layer loss;
        loss.name = "loss";
        loss.kind = LayerKind::Loss;
        loss.inputs = {name};
        loss.dims.vocab = vocab;
        loss.cost.saved_elems_per_token = 2 * vocab;
        loss.cost.io_elems_per_token = 2 * vocab;
        loss.cost.flops_per_token = 4 * vocab; // softmax cross-entropy: max, exp, sum, divide per logit
        loss.cost.output_elems_per_token = 1;
        add(std::move(loss));
    }

private:
    Model& m_model;
    DType m_dtype;
};

std::string at(int64_t i) { return std::to_string(i); }

DType configDType(const json& j)
{
    if (const json* t = detail::optField(j, "torch_dtype"); t && t->is_string())
        if (auto d = parseDType(t->get<std::string>()))
            return *d;
    return DType::F32;
}

void requireDivides(int64_t a, int64_t b, const char* aName, const char* bName)
{
    if (b == 0 || a % b != 0)
        throw detail::FieldError(std::string("/") + aName, std::string(aName) + " (" + std::to_string(a) +
                                                              ") is not divisible by " + bName + " (" +
                                                              std::to_string(b) + ")");
}

bool positive(const json& j, const char* key)
{
    const double p = detail::getNumberOr(j, key, "", 0.0, 1.0, 0.0);
    return p > 0.0;
}

// A size the config leaves out: the family's Hugging Face default (the
// defaults of transformers' config classes, which instantiate the family's
// reference checkpoint: BertConfig bert-base-uncased, GPT2Config gpt2,
// T5Config t5-small, LlamaConfig LLaMA-7B, MistralConfig Mistral-7B-v0.1,
// MixtralConfig Mixtral-8x7B, NemotronConfig Nemotron-4-15B's shape), noted
// in the model.
int64_t sizeOr(const json& j, const char* key, int64_t lo, int64_t hi, int64_t hfDefault, const std::string& configClass,
               Model& m)
{
    if (!detail::optField(j, key))
        m.notes.push_back(std::string(key) + " not given: " + configClass + "'s default " + std::to_string(hfDefault) +
                          " assumed");
    return detail::getIntOr(j, key, "", lo, hi, hfDefault);
}

// Whether a dropout probability is positive, taking the family's Hugging
// Face default for a key the config leaves out (transformers' config
// classes: BertConfig, GPT2Config and T5Config default to 0.1; LlamaConfig,
// MistralConfig and MixtralConfig's attention_dropout to 0.0), and saying so
// in the model's notes where that adds dropout: a config without the key
// trains with the default.
bool dropout(const json& j, const char* key, double hfDefault, const char* configClass, Model& m)
{
    if (!detail::optField(j, key)) {
        if (hfDefault > 0.0) // a default of 0 costs what no dropout costs: nothing to say
            m.notes.push_back(std::string(key) + " not given: " + configClass + "'s default " +
                              std::to_string(hfDefault).substr(0, 3) + " assumed");
        return hfDefault > 0.0;
    }
    return positive(j, key);
}

// ---- BERT (and RoBERTa, the same architecture) -----------------------------
void buildBert(const json& j, Model& m)
{
    const std::string cls = "BertConfig";
    const int64_t V = sizeOr(j, "vocab_size", 1, kMaxVocab, 30522, cls, m);
    const int64_t h = sizeOr(j, "hidden_size", 1, kMaxHidden, 768, cls, m);
    const int64_t L = sizeOr(j, "num_hidden_layers", 1, kMaxLayers, 12, cls, m);
    const int64_t a = sizeOr(j, "num_attention_heads", 1, kMaxHidden, 12, cls, m);
    const int64_t ffn = sizeOr(j, "intermediate_size", 1, kMaxHidden * 16, 3072, cls, m);
    const int64_t P = sizeOr(j, "max_position_embeddings", 1, kMaxSeq, 512, cls, m);
    const int64_t T = sizeOr(j, "type_vocab_size", 0, kMaxVocab, 2, cls, m);
    requireDivides(h, a, "hidden_size", "num_attention_heads");
    const bool drop = dropout(j, "hidden_dropout_prob", 0.1, "BertConfig", m);
    const bool attnDrop = dropout(j, "attention_probs_dropout_prob", 0.1, "BertConfig", m);
    m.dims = {h, L, a, a, ffn, V, 0, 0};
    m.seq_len = P;

    Builder b(m, m.param_dtype);
    std::vector<TensorSpec> emb{b.w("embeddings.word_embeddings.weight", {V, h}),
                                b.w("embeddings.position_embeddings.weight", {P, h})};
    if (T > 0)
        emb.push_back(b.w("embeddings.token_type_embeddings.weight", {T, h}));
    b.embedding("embeddings", std::move(emb), V, h, false);
    b.norm("embeddings.norm", {}, {"embeddings"},
           {b.w("embeddings.LayerNorm.weight", {h}), b.w("embeddings.LayerNorm.bias", {h})}, h, drop);
    std::string prev = "embeddings.norm";
    for (int64_t i = 0; i < L; ++i) {
        const std::string blk = "encoder.layer." + at(i), p = blk + ".";
        b.linear(p + "attention.qkv", blk, {prev},
                 {b.w(p + "attention.self.query.weight", {h, h}), b.w(p + "attention.self.query.bias", {h}),
                  b.w(p + "attention.self.key.weight", {h, h}), b.w(p + "attention.self.key.bias", {h}),
                  b.w(p + "attention.self.value.weight", {h, h}), b.w(p + "attention.self.value.bias", {h})},
                 h, 3 * h, false)
            .dims.heads = a;
        b.attention(p + "attention.core", blk, {p + "attention.qkv"}, a, a, h / a, attnDrop);
        b.linear(p + "attention.out", blk, {p + "attention.core"},
                 {b.w(p + "attention.output.dense.weight", {h, h}), b.w(p + "attention.output.dense.bias", {h})},
                 h, h, drop);
        b.norm(p + "attention.norm", blk, {p + "attention.out", prev},
               {b.w(p + "attention.output.LayerNorm.weight", {h}), b.w(p + "attention.output.LayerNorm.bias", {h})},
               h);
        b.linear(p + "mlp.fc1", blk, {p + "attention.norm"},
                 {b.w(p + "intermediate.dense.weight", {ffn, h}), b.w(p + "intermediate.dense.bias", {ffn})}, h,
                 ffn, false);
        b.activation(p + "mlp.act", blk, {p + "mlp.fc1"}, ffn, ffn, false);
        b.linear(p + "mlp.fc2", blk, {p + "mlp.act"},
                 {b.w(p + "output.dense.weight", {h, ffn}), b.w(p + "output.dense.bias", {h})}, ffn, h, drop);
        b.norm(p + "mlp.norm", blk, {p + "mlp.fc2", p + "attention.norm"},
               {b.w(p + "output.LayerNorm.weight", {h}), b.w(p + "output.LayerNorm.bias", {h})}, h);
        prev = p + "mlp.norm";
    }
    // The pooler reads the first token of each sample only.
    Layer& pool = b.linear("pooler", {}, {prev}, {b.w("pooler.dense.weight", {h, h}), b.w("pooler.dense.bias", {h})},
                           h, h, false);
    pool.cost.flops_per_token = 0;
    pool.cost.saved_elems_per_token = 0;
    pool.cost.io_elems_per_token = 0;
    pool.cost.output_elems_per_token = 0;
    pool.cost.flops_per_sample = 2 * h * h;
    pool.cost.saved_elems_per_sample = h;
}

// ---- GPT-2 ------------------------------------------------------------------
void buildGpt2(const json& j, Model& m)
{
    const std::string cls = "GPT2Config";
    const int64_t V = sizeOr(j, "vocab_size", 1, kMaxVocab, 50257, cls, m);
    const int64_t h = sizeOr(j, "n_embd", 1, kMaxHidden, 768, cls, m);
    const int64_t L = sizeOr(j, "n_layer", 1, kMaxLayers, 12, cls, m);
    const int64_t a = sizeOr(j, "n_head", 1, kMaxHidden, 12, cls, m);
    const int64_t P = detail::optField(j, "n_positions") || !detail::optField(j, "n_ctx")
                          ? sizeOr(j, "n_positions", 1, kMaxSeq, 1024, cls, m)
                          : detail::getInt(j, "n_ctx", "", 1, kMaxSeq);
    // A missing or null n_inner means 4 x n_embd (GPT2MLP).
    const int64_t ffn = detail::getIntOr(j, "n_inner", "", 1, kMaxHidden * 16, 4 * h);
    requireDivides(h, a, "n_embd", "n_head");
    const bool drop = dropout(j, "resid_pdrop", 0.1, "GPT2Config", m);
    const bool attnDrop = dropout(j, "attn_pdrop", 0.1, "GPT2Config", m);
    const bool embDrop = dropout(j, "embd_pdrop", 0.1, "GPT2Config", m);
    m.dims = {h, L, a, a, ffn, V, 0, 0};
    m.seq_len = P;

    Builder b(m, m.param_dtype);
    b.embedding("embeddings", {b.w("wte.weight", {V, h}), b.w("wpe.weight", {P, h})}, V, h,
                embDrop);
    std::string prev = "embeddings";
    for (int64_t i = 0; i < L; ++i) {
        const std::string blk = "h." + at(i), p = blk + ".";
        b.norm(p + "ln_1", blk, {prev}, {b.w(p + "ln_1.weight", {h}), b.w(p + "ln_1.bias", {h})}, h);
        // GPT-2 stores Conv1D weights as [in, out].
        b.linear(p + "attention.qkv", blk, {p + "ln_1"},
                 {b.w(p + "attn.c_attn.weight", {h, 3 * h}), b.w(p + "attn.c_attn.bias", {3 * h})}, h, 3 * h, false)
            .dims.heads = a;
        b.attention(p + "attention.core", blk, {p + "attention.qkv"}, a, a, h / a, attnDrop).dims.causal = 1;
        b.linear(p + "attention.out", blk, {p + "attention.core"},
                 {b.w(p + "attn.c_proj.weight", {h, h}), b.w(p + "attn.c_proj.bias", {h})}, h, h, drop)
            .inputs.push_back(prev);
        b.norm(p + "ln_2", blk, {p + "attention.out"}, {b.w(p + "ln_2.weight", {h}), b.w(p + "ln_2.bias", {h})}, h);
        b.linear(p + "mlp.fc1", blk, {p + "ln_2"}, {b.w(p + "mlp.c_fc.weight", {h, ffn}), b.w(p + "mlp.c_fc.bias", {ffn})},
                 h, ffn, false);
        b.activation(p + "mlp.act", blk, {p + "mlp.fc1"}, ffn, ffn, false);
        b.linear(p + "mlp.fc2", blk, {p + "mlp.act"},
                 {b.w(p + "mlp.c_proj.weight", {ffn, h}), b.w(p + "mlp.c_proj.bias", {h})}, ffn, h, drop)
            .inputs.push_back(p + "attention.out");
        prev = p + "mlp.fc2";
    }
    b.norm("ln_f", {}, {prev}, {b.w("ln_f.weight", {h}), b.w("ln_f.bias", {h})}, h);
    b.head("lm_head", "ln_f", h, V, "embeddings", {}); // GPT2LMHeadModel ties lm_head to wte
}

// ---- Llama, Mistral, Mixtral, Nemotron ---------------------------------------
// A Llama-family config's sizes and switches, the family's defaults filled in.
struct LlamaShape
{
    bool moe = false, nemotron = false;
    int64_t V = 0, h = 0, L = 0, a = 0, kv = 0, ffn = 0, P = 0, d = 0, E = 0, K = 0;
    bool tied = false, attnBias = false, mlpBias = false, attnDrop = false;
};

// Reads a Llama-family config, noting in the model each default it assumes.
LlamaShape readLlamaShape(const json& j, Model& m, bool moe)
{
    // MistralConfig and MixtralConfig share their defaults; LlamaConfig's are
    // LLaMA-7B's. Nemotron (NemotronConfig; Nemotron-4, Parmar et al. 2024)
    // is the same decoder with LayerNorm (weight and bias) and a squared-ReLU
    // MLP of two matmuls instead of SwiGLU's three.
    const std::string type = detail::getStringOr(j, "model_type", "", "");
    const bool nemotron = type == "nemotron";
    const std::string configClass = moe ? "MixtralConfig" : type == "mistral" ? "MistralConfig"
                                                        : nemotron          ? "NemotronConfig"
                                                                            : "LlamaConfig";
    const bool mistral = configClass == "MistralConfig" || configClass == "MixtralConfig";
    const std::string& cls = configClass;
    const int64_t V = sizeOr(j, "vocab_size", 1, kMaxVocab, nemotron ? 256000 : 32000, cls, m);
    const int64_t h = sizeOr(j, "hidden_size", 1, kMaxHidden, nemotron ? 6144 : 4096, cls, m);
    const int64_t L = sizeOr(j, "num_hidden_layers", 1, kMaxLayers, 32, cls, m);
    const int64_t a = sizeOr(j, "num_attention_heads", 1, kMaxHidden, nemotron ? 48 : 32, cls, m);
    const int64_t kv = mistral ? sizeOr(j, "num_key_value_heads", 1, kMaxHidden, 8, cls, m)
                               : detail::getIntOr(j, "num_key_value_heads", "", 1, kMaxHidden, a); // None: as the heads
    const int64_t ffn = sizeOr(j, "intermediate_size", 1, kMaxHidden * 16,
                               mistral ? 14336 : nemotron ? 24576 : 11008, cls, m);
    const int64_t P = sizeOr(j, "max_position_embeddings", 1, kMaxSeq,
                             mistral ? 4096 * 32 : nemotron ? 4096 : 2048, cls, m);
    if (!detail::optField(j, "head_dim"))
        requireDivides(h, a, "hidden_size", "num_attention_heads");
    const int64_t d = detail::getIntOr(j, "head_dim", "", 1, kMaxHidden, h / a);
    requireDivides(a, kv, "num_attention_heads", "num_key_value_heads");
    const bool tied = detail::getBoolOr(j, "tie_word_embeddings", "", false);
    const bool attnBias = detail::getBoolOr(j, "attention_bias", "", false);
    const bool mlpBias = detail::getBoolOr(j, "mlp_bias", "", false);
    const bool attnDrop = dropout(j, "attention_dropout", 0.0, configClass.c_str(), m);
    int64_t E = 0, K = 0;
    if (moe) {
        E = sizeOr(j, "num_local_experts", 1, kMaxExperts, 8, cls, m);
        K = sizeOr(j, "num_experts_per_tok", 1, kMaxExperts, 2, cls, m);
        if (K > E)
            throw detail::FieldError("/num_experts_per_tok", "num_experts_per_tok (" + at(K) +
                                                                 ") exceeds num_local_experts (" + at(E) + ")");
    }
    return {.moe = moe, .nemotron = nemotron, .V = V, .h = h, .L = L, .a = a, .kv = kv, .ffn = ffn, .P = P, .d = d,
            .E = E, .K = K, .tied = tied, .attnBias = attnBias, .mlpBias = mlpBias, .attnDrop = attnDrop};
}

// The weights `ws`, followed where `bias` is set by a bias of each one's output size.
std::vector<TensorSpec> withBias(const Builder& b, std::vector<TensorSpec> ws, bool bias)
{
    if (bias) {
        const size_t n = ws.size();
        for (size_t i = 0; i < n; ++i) {
            std::string name = ws[i].name;
            name.replace(name.size() - 6, 6, "bias"); // ".weight" -> ".bias"
            ws.push_back(b.w(name, {ws[i].shape[0]}));
        }
    }
    return ws;
}

// A norm's parameters: its weight, and Nemotron's LayerNorm's bias.
std::vector<TensorSpec> llamaNormParams(const Builder& b, const LlamaShape& s, const std::string& n)
{
    std::vector<TensorSpec> ps{b.w(n + ".weight", {s.h})};
    if (s.nemotron)
        ps.push_back(b.w(n + ".bias", {s.h}));
    return ps;
}

// A block's attention half after `prev`: input norm, qkv, attention, output projection, then the second norm.
void llamaAttention(Builder& b, const LlamaShape& s, const std::string& blk, const std::string& p,
                    const std::string& prev)
{
    const int64_t h = s.h, a = s.a, kv = s.kv, d = s.d;
    b.norm(p + "input_layernorm", blk, {prev}, llamaNormParams(b, s, p + "input_layernorm"), h);
    b.linear(p + "attention.qkv", blk, {p + "input_layernorm"},
             withBias(b,
                      {b.w(p + "self_attn.q_proj.weight", {a * d, h}), b.w(p + "self_attn.k_proj.weight", {kv * d, h}),
                       b.w(p + "self_attn.v_proj.weight", {kv * d, h})},
                      s.attnBias),
             h, (a + 2 * kv) * d, false)
        .dims.heads = a;
    b.attention(p + "attention.core", blk, {p + "attention.qkv"}, a, kv, d, s.attnDrop).dims.causal = 1;
    b.linear(p + "attention.out", blk, {p + "attention.core"},
             withBias(b, {b.w(p + "self_attn.o_proj.weight", {h, a * d})}, s.attnBias), a * d, h, false)
        .inputs.push_back(prev);
    b.norm(p + "post_attention_layernorm", blk, {p + "attention.out"},
           llamaNormParams(b, s, p + "post_attention_layernorm"), h);
}

// Nemotron's squared-ReLU MLP of two matmuls after `ln2`; returns its last layer's name.
std::string nemotronMlp(Builder& b, const LlamaShape& s, const std::string& blk, const std::string& p,
                        const std::string& ln2)
{
    const int64_t h = s.h, ffn = s.ffn;
    b.linear(p + "mlp.up", blk, {ln2}, withBias(b, {b.w(p + "mlp.up_proj.weight", {ffn, h})}, s.mlpBias), h, ffn,
             false);
    b.activation(p + "mlp.act", blk, {p + "mlp.up"}, ffn, ffn, false); // relu(x)^2
    b.linear(p + "mlp.down", blk, {p + "mlp.act"}, withBias(b, {b.w(p + "mlp.down_proj.weight", {h, ffn})}, s.mlpBias),
             ffn, h, false)
        .inputs.push_back(p + "attention.out");
    return p + "mlp.down";
}

// Llama's and Mistral's SwiGLU MLP of three matmuls after `ln2`; returns its last layer's name.
std::string swigluMlp(Builder& b, const LlamaShape& s, const std::string& blk, const std::string& p,
                      const std::string& ln2)
{
    const int64_t h = s.h, ffn = s.ffn;
    b.linear(p + "mlp.gate_up", blk, {ln2},
             withBias(b, {b.w(p + "mlp.gate_proj.weight", {ffn, h}), b.w(p + "mlp.up_proj.weight", {ffn, h})},
                      s.mlpBias),
             h, 2 * ffn, false);
    b.activation(p + "mlp.act", blk, {p + "mlp.gate_up"}, 2 * ffn, ffn, false); // SiLU(gate) * up
    b.linear(p + "mlp.down", blk, {p + "mlp.act"}, withBias(b, {b.w(p + "mlp.down_proj.weight", {h, ffn})}, s.mlpBias),
             ffn, h, false)
        .inputs.push_back(p + "attention.out");
    return p + "mlp.down";
}

// Mixtral's router and experts after `ln2`; returns the experts' layer's name.
std::string mixtralMoe(Builder& b, const LlamaShape& s, const std::string& blk, const std::string& p,
                       const std::string& ln2)
{
    const int64_t h = s.h, ffn = s.ffn, E = s.E, K = s.K;
    Layer& router = b.linear(p + "moe.router", blk, {ln2}, {b.w(p + "block_sparse_moe.gate.weight", {E, h})}, h, E,
                             false, LayerKind::MoERouter);
    router.dims.experts = E;
    router.dims.top_k = K;
    Layer ex;
    ex.name = p + "moe.experts";
    ex.kind = LayerKind::MoEExperts;
    ex.block = blk;
    ex.inputs = {ln2, p + "moe.router", p + "attention.out"};
    for (int64_t e = 0; e < E; ++e) {
        const std::string ep = p + "block_sparse_moe.experts." + at(e) + ".";
        ex.params.push_back(b.w(ep + "w1.weight", {ffn, h}));
        ex.params.push_back(b.w(ep + "w2.weight", {h, ffn}));
        ex.params.push_back(b.w(ep + "w3.weight", {ffn, h}));
    }
    ex.dims = {h, h, 0, 0, 0, E, K, 0};
    // Each token runs through K experts of three h x ffn matmuls (w1, w3, w2).
    ex.cost.flops_per_token = K * 3 * 2 * h * ffn;
    ex.cost.saved_elems_per_token = K * (h + 2 * ffn + ffn);
    ex.cost.output_elems_per_token = h;
    ex.cost.io_elems_per_token = K * (2 * h + 3 * ffn);
    b.add(std::move(ex));
    return p + "moe.experts";
}

void buildLlama(const json& j, Model& m, bool moe)
{
    const LlamaShape s = readLlamaShape(j, m, moe);
    m.dims = {s.h, s.L, s.a, s.kv, s.ffn, s.V, s.E, s.K};
    m.seq_len = s.P;

    Builder b(m, m.param_dtype);
    b.embedding("embed_tokens", {b.w("embed_tokens.weight", {s.V, s.h})}, s.V, s.h, false);
    std::string prev = "embed_tokens";
    for (int64_t i = 0; i < s.L; ++i) {
        const std::string blk = "layers." + at(i), p = blk + ".";
        llamaAttention(b, s, blk, p, prev);
        const std::string ln2 = p + "post_attention_layernorm";
        if (s.nemotron)
            prev = nemotronMlp(b, s, blk, p, ln2);
        else if (!s.moe)
            prev = swigluMlp(b, s, blk, p, ln2);
        else
            prev = mixtralMoe(b, s, blk, p, ln2);
    }
    b.norm("norm", {}, {prev}, llamaNormParams(b, s, "norm"), s.h);
    if (s.tied)
        b.head("lm_head", "norm", s.h, s.V, "embed_tokens", {});
    else
        b.head("lm_head", "norm", s.h, s.V, {}, {b.w("lm_head.weight", {s.V, s.h})});
}

// ---- T5 (encoder-decoder) ---------------------------------------------------
// A T5 config's sizes and switches, T5Config's defaults filled in.
struct T5Shape
{
    int64_t V = 0, h = 0, dkv = 0, H = 0, ffn = 0, Le = 0, Ld = 0, buckets = 0, inner = 0, seq = 0;
    bool gated = false, tied = false, drop = false;
};

// Reads a T5 config, refusing a feed-forward it does not model.
T5Shape readT5Shape(const json& j, Model& m)
{
    const std::string cls = "T5Config";
    const int64_t V = sizeOr(j, "vocab_size", 1, kMaxVocab, 32128, cls, m);
    const int64_t h = sizeOr(j, "d_model", 1, kMaxHidden, 512, cls, m);
    const int64_t dkv = sizeOr(j, "d_kv", 1, kMaxHidden, 64, cls, m);
    const int64_t H = sizeOr(j, "num_heads", 1, kMaxHidden, 8, cls, m);
    const int64_t ffn = sizeOr(j, "d_ff", 1, kMaxHidden * 16, 2048, cls, m);
    const int64_t Le = sizeOr(j, "num_layers", 1, kMaxLayers, 6, cls, m);
    const int64_t Ld = detail::getIntOr(j, "num_decoder_layers", "", 1, kMaxLayers, Le);
    const int64_t buckets = detail::getIntOr(j, "relative_attention_num_buckets", "", 1, 1 << 20, 32);
    const std::string ff = detail::getStringOr(j, "feed_forward_proj", "", "relu");
    const bool gated = ff.rfind("gated-", 0) == 0;
    if (!gated && ff != "relu" && ff != "gelu" && ff != "gelu_new" && ff != "silu")
        throw detail::FieldError("/feed_forward_proj", "unsupported feed_forward_proj '" + ff + "'");
    const bool tied = detail::getBoolOr(j, "tie_word_embeddings", "", true);
    const bool drop = dropout(j, "dropout_rate", 0.1, "T5Config", m);
    const int64_t inner = H * dkv;
    const int64_t seq = detail::getIntOr(j, "n_positions", "", 1, kMaxSeq, 512);
    return {.V = V, .h = h, .dkv = dkv, .H = H, .ffn = ffn, .Le = Le, .Ld = Ld, .buckets = buckets, .inner = inner,
            .seq = seq, .gated = gated, .tied = tied, .drop = drop};
}

// A block's self-attention after `input` (causal in the decoder stack); returns its output layer's name.
std::string t5SelfAttention(Builder& b, const T5Shape& s, const std::string& stack, const std::string& blk,
                            const std::string& p, int64_t i, const std::string& input)
{
    const int64_t h = s.h, inner = s.inner, H = s.H;
    b.norm(p + "self_attention.norm", blk, {input}, {b.w(p + "layer.0.layer_norm.weight", {h})}, h);
    b.linear(p + "self_attention.qkv", blk, {p + "self_attention.norm"},
             {b.w(p + "layer.0.SelfAttention.q.weight", {inner, h}),
              b.w(p + "layer.0.SelfAttention.k.weight", {inner, h}),
              b.w(p + "layer.0.SelfAttention.v.weight", {inner, h})},
             h, 3 * inner, false)
        .dims.heads = H;
    std::vector<TensorSpec> rel;
    if (i == 0) // relative position bias lives in the first block of each stack
        rel.push_back(b.w(p + "layer.0.SelfAttention.relative_attention_bias.weight", {s.buckets, H}));
    b.attention(p + "self_attention.core", blk, {p + "self_attention.qkv"}, H, H, s.dkv, s.drop, std::move(rel))
        .dims.causal = stack == "decoder" ? 1 : 0;
    b.linear(p + "self_attention.out", blk, {p + "self_attention.core"},
             {b.w(p + "layer.0.SelfAttention.o.weight", {h, inner})}, inner, h, s.drop)
        .inputs.push_back(input);
    return p + "self_attention.out";
}

// A decoder block's cross-attention after `prev`: queries from the decoder, keys and values from the
// encoder output `encOut`; returns its output layer's name.
std::string t5CrossAttention(Builder& b, const T5Shape& s, const std::string& blk, const std::string& p,
                             const std::string& prev, const std::string& encOut)
{
    const int64_t h = s.h, inner = s.inner, H = s.H;
    const std::string cp = p + "layer.1.EncDecAttention.";
    b.norm(p + "cross_attention.norm", blk, {prev}, {b.w(p + "layer.1.layer_norm.weight", {h})}, h);
    b.linear(p + "cross_attention.q", blk, {p + "cross_attention.norm"}, {b.w(cp + "q.weight", {inner, h})}, h, inner,
             false)
        .dims.heads = H;
    b.linear(p + "cross_attention.kv", blk, {encOut},
             {b.w(cp + "k.weight", {inner, h}), b.w(cp + "v.weight", {inner, h})}, h, 2 * inner, false)
        .dims.heads = H;
    b.attention(p + "cross_attention.core", blk, {p + "cross_attention.q", p + "cross_attention.kv"}, H, H, s.dkv,
                s.drop);
    b.linear(p + "cross_attention.out", blk, {p + "cross_attention.core"}, {b.w(cp + "o.weight", {h, inner})}, inner,
             h, s.drop)
        .inputs.push_back(prev);
    return p + "cross_attention.out";
}

// A block's feed-forward (sub-layer `sub`) after `input`, gated or not; returns its output layer's name.
std::string t5FeedForward(Builder& b, const T5Shape& s, const std::string& blk, const std::string& p, int sub,
                          const std::string& input)
{
    const int64_t h = s.h, ffn = s.ffn;
    const std::string lp = p + "layer." + at(sub) + ".";
    b.norm(p + "mlp.norm", blk, {input}, {b.w(lp + "layer_norm.weight", {h})}, h);
    if (s.gated) {
        b.linear(p + "mlp.wi", blk, {p + "mlp.norm"},
                 {b.w(lp + "DenseReluDense.wi_0.weight", {ffn, h}), b.w(lp + "DenseReluDense.wi_1.weight", {ffn, h})},
                 h, 2 * ffn, false);
        b.activation(p + "mlp.act", blk, {p + "mlp.wi"}, 2 * ffn, ffn, s.drop);
    } else {
        b.linear(p + "mlp.wi", blk, {p + "mlp.norm"}, {b.w(lp + "DenseReluDense.wi.weight", {ffn, h})}, h, ffn, false);
        b.activation(p + "mlp.act", blk, {p + "mlp.wi"}, ffn, ffn, s.drop);
    }
    b.linear(p + "mlp.wo", blk, {p + "mlp.act"}, {b.w(lp + "DenseReluDense.wo.weight", {h, ffn})}, ffn, h, s.drop)
        .inputs.push_back(input);
    return p + "mlp.wo";
}

void buildT5(const json& j, Model& m)
{
    const T5Shape s = readT5Shape(j, m);
    const int64_t h = s.h;
    m.dims = {h, s.Le + s.Ld, s.H, s.H, s.ffn, s.V, 0, 0};
    m.seq_len = s.seq;

    Builder b(m, m.param_dtype);
    b.embedding("shared", {b.w("shared.weight", {s.V, h})}, s.V, h, s.drop);

    std::string prev = "shared";
    for (int64_t i = 0; i < s.Le; ++i) {
        const std::string blk = "encoder.block." + at(i), p = blk + ".";
        prev = t5SelfAttention(b, s, "encoder", blk, p, i, prev);
        prev = t5FeedForward(b, s, blk, p, 1, prev);
    }
    b.norm("encoder.final_layer_norm", {}, {prev}, {b.w("encoder.final_layer_norm.weight", {h})}, h, s.drop);
    const std::string encOut = "encoder.final_layer_norm";

    prev = "shared";
    for (int64_t i = 0; i < s.Ld; ++i) {
        const std::string blk = "decoder.block." + at(i), p = blk + ".";
        prev = t5SelfAttention(b, s, "decoder", blk, p, i, prev);
        prev = t5CrossAttention(b, s, blk, p, prev, encOut);
        prev = t5FeedForward(b, s, blk, p, 2, prev);
    }
    b.norm("decoder.final_layer_norm", {}, {prev}, {b.w("decoder.final_layer_norm.weight", {h})}, h, s.drop);
    if (s.tied)
        b.head("lm_head", "decoder.final_layer_norm", h, s.V, "shared", {});
    else
        b.head("lm_head", "decoder.final_layer_norm", h, s.V, {}, {b.w("lm_head.weight", {s.V, h})});
}

} // namespace

Result<Model> modelFromHfConfig(const std::string& text, const std::string& file)
{
    auto parsed = detail::parseJson(text, file);
    if (!parsed)
        return parsed.error();
    const json& j = *parsed;
    try {
        detail::asObject(j, "/");
        const std::string type = detail::getString(j, "model_type", "");
        Model m;
        m.family = type;
        m.param_dtype = configDType(j);
        if (const json* n = detail::optField(j, "_name_or_path"); n && n->is_string())
            m.name = n->get<std::string>();
        if (type == "bert" || type == "roberta") {
            buildBert(j, m);
        } else if (type == "gpt2") {
            buildGpt2(j, m);
        } else if (type == "llama" || type == "mistral" || type == "nemotron") {
            buildLlama(j, m, false);
        } else if (type == "mixtral") {
            buildLlama(j, m, true);
        } else if (type == "t5" || type == "mt5") {
            buildT5(j, m);
        } else {
            return Error{file, "/model_type",
                         "unsupported model_type '" + type +
                             "' (supported: bert, roberta, gpt2, llama, mistral, mixtral, nemotron, t5, mt5)"};
        }
        if (m.name.empty())
            m.name = type;
        if (std::string problem = validateModel(m); !problem.empty())
            return Error{file, {}, "internal: the imported model is malformed: " + problem};
        return m;
    } catch (const detail::FieldError& e) {
        return Error{file, e.where.empty() ? "/" : e.where, e.what()};
    }
}

} // namespace partita
