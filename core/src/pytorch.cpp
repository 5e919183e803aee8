// PyTorch training scripts out of data- and tensor-parallel strategies, and
// back. The script is resources/frameworks/pytorch_train.py (compiled in by
// CMake); the APIs it calls are PyTorch's: DistributedDataParallel(bucket_cap_mb,
// register_comm_hook with default_hooks.fp16_compress_hook or
// powerSGD_hook), torch.distributed.optim.ZeroRedundancyOptimizer,
// fully_shard(reshard_after_forward) of FSDP2, a (dp, tp) DeviceMesh with
// parallelize_module (ColwiseParallel, RowwiseParallel, SequenceParallel)
// for tensor parallelism, torch.utils.checkpoint and torch.autocast.
#include "partita/core/pytorch.h"

#include "partita/core/modelio.h"

#include "exportheader.h"
#include "jsonread.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace partita {

namespace detail {
extern const char* const kPyTorchTrainScript; // pytorchscript.cpp, generated
}

using detail::json;

namespace {

constexpr double kMiB = 1048576.0;
constexpr const char* kConfigStart = "CONFIG = json.loads(r\"\"\"";

bool scriptFamily(const std::string& f) { return f == "gpt2" || f == "llama" || f == "mistral"; }

const Layer* firstOf(const Model& m, LayerKind k)
{
    for (const Layer& l : m.layers)
        if (l.kind == k)
            return &l;
    return nullptr;
}

std::string atomRefusal(const SyncAtom& a, int zero)
{
    if (a.method == SyncMethod::ParameterServer)
        return "PyTorch's DDP and FSDP have no parameter server";
    if (a.method == SyncMethod::SFB)
        return "PyTorch has no sufficient-factor broadcasting";
    if (a.method == SyncMethod::None)
        return "DDP synchronizes every trained parameter";
    if (a.algorithm == AllReduceAlgo::Hierarchical)
        return "DDP has no hierarchical all-reduce (NCCL picks ring or tree)";
    if (a.staleness > 0)
        return "DDP has no bounded staleness";
    if (a.bucket >= 0)
        return "DDP fills buckets by size (bucket_cap_mb), not by explicit groups";
    if (zero >= 2 && a.compression != Compression::None)
        return "FSDP2 takes no DDP communication hook (fp16 or PowerSGD compression)";
    return {};
}

} // namespace

std::vector<std::string> pytorchRefusals(const Model& m, const Strategy& s)
{
    std::vector<std::string> why;
    if (!scriptFamily(m.family))
        why.push_back("model '" + m.name + "': the script builds decoder-only GPT-2, Llama and Mistral models; family '" +
                      m.family + "' is not one");
    if (s.tp > 1) {
        // The DTensor plan splits heads and key-value heads over tp, and
        // pairs with FSDP2 on the data-parallel mesh dimension.
        const Layer* core = firstOf(m, LayerKind::AttentionCore);
        const int64_t heads = core && core->dims.heads ? core->dims.heads : m.dims.heads;
        const int64_t kv = core && core->dims.kv_heads ? core->dims.kv_heads : heads;
        if (heads % s.tp || kv % s.tp || m.dims.ffn % s.tp)
            why.push_back("tp " + std::to_string(s.tp) + ": the plan splits the " + std::to_string(heads) + " heads, " +
                          std::to_string(kv) + " key-value heads and " + std::to_string(m.dims.ffn) +
                          " FFN columns evenly");
        if (s.dp > 1 && s.zero_stage < 2)
            why.push_back("tp " + std::to_string(s.tp) + " with dp " + std::to_string(s.dp) + " and ZeRO-" +
                          std::to_string(s.zero_stage) + ": DDP and ZeroRedundancyOptimizer take no DTensor parameters; "
                          "the script shards data parallelism with FSDP2 (ZeRO-2 or 3) beside tensor parallelism");
        if (s.tp_comm_overlap)
            why.push_back("tp_comm_overlap: PyTorch's async tensor parallelism needs torch.compile, which the script "
                          "does not run");
        if (s.precision == Precision::FP16)
            why.push_back("precision fp16 with tp " + std::to_string(s.tp) +
                          ": the script's GradScaler checks for infinities per rank, so tensor-parallel ranks could "
                          "skip different steps; bf16 needs no loss scaling");
    }
    if (s.pp > 1)
        why.push_back("pp " + std::to_string(s.pp) + ": the PyTorch export writes no pipeline schedule yet");
    if (s.cp > 1)
        why.push_back("cp " + std::to_string(s.cp) + ": the PyTorch export writes no context parallelism");
    if (s.ep > 1)
        why.push_back("ep " + std::to_string(s.ep) + ": the script builds no mixture-of-experts layers");
    if (s.precision == Precision::FP8)
        why.push_back("precision fp8: plain PyTorch has no FP8 training recipe (Transformer Engine's)");
    if (s.precision != Precision::FP32 && !s.fp32_grad_accumulation)
        why.push_back("fp32_grad_accumulation false: autocast keeps fp32 parameters, so gradients are fp32");
    if (!s.overlap_grad_reduce)
        why.push_back("overlap_grad_reduce false: DDP and FSDP reduce gradients during the backward, always");
    if (s.overlap_param_gather && s.zero_stage < 2)
        why.push_back("overlap_param_gather: ZeroRedundancyOptimizer broadcasts parameters after the step");
    if (std::string a = atomRefusal(s.sync, s.zero_stage); !a.empty())
        why.push_back("sync (" + std::string(syncMethodName(s.sync.method)) + "): " + a);
    if (s.sync.sparse)
        for (const Layer& l : m.layers)
            if (l.kind == LayerKind::Embedding && l.sparse_grad) {
                why.push_back("layer '" + l.name + "' (sparse rows): the script's embeddings are dense (AdamW takes no "
                              "sparse gradients)");
                break;
            }
    for (const LayerOverride& o : s.layers)
        why.push_back("layer '" + o.pattern + "': the script treats every layer alike");
    return why;
}

namespace {

Strategy closestPyTorch(const Model& m, const Cluster& c, const Strategy& s, std::vector<std::string>& diffs)
{
    Strategy x = s;
    const Layer* core = firstOf(m, LayerKind::AttentionCore);
    const int64_t heads = core && core->dims.heads ? core->dims.heads : m.dims.heads;
    const int64_t kv = core && core->dims.kv_heads ? core->dims.kv_heads : heads;
    const bool tpSplits = heads % x.tp == 0 && kv % x.tp == 0 && m.dims.ffn % x.tp == 0;
    const bool keepsTp = x.tp > 1 && tpSplits && x.pp == 1 && x.cp == 1 && x.ep == 1;
    if (keepsTp && x.dp > 1 && x.zero_stage < 2) {
        diffs.push_back("ZeRO-" + std::to_string(x.zero_stage) + " -> ZeRO-2 (FSDP2 beside tensor parallelism)");
        x.zero_stage = 2;
    }
    if (keepsTp && x.precision == Precision::FP16) {
        diffs.push_back("precision fp16 -> bf16 (no loss scaling across tensor-parallel ranks)");
        x.precision = Precision::BF16;
    }
    if (x.tp_comm_overlap) {
        diffs.push_back("tensor-parallel communication -> not overlapped");
        x.tp_comm_overlap = false;
    }
    if ((x.tp > 1 && !tpSplits) || x.pp > 1 || x.cp > 1 || x.ep > 1) {
        diffs.push_back("mesh -> pure data parallelism over " + std::to_string(c.deviceCount()) + " ranks");
        x.dp = c.deviceCount();
        x.tp = x.pp = x.cp = x.ep = x.interleave = 1;
        x.schedule = PipelineSchedule::OneFOneB;
        x.first_stage_blocks = x.last_stage_blocks = 0;
        x.sequence_parallel = x.tp_comm_overlap = false;
        x.global_batch = std::max<int64_t>(x.global_batch / (x.micro_batch * x.dp), 1) * x.micro_batch * x.dp;
    }
    if (x.precision == Precision::FP8) {
        diffs.push_back("precision fp8 -> bf16");
        x.precision = Precision::BF16;
    }
    if (x.precision != Precision::FP32 && !x.fp32_grad_accumulation) {
        diffs.push_back("gradients -> fp32 (autocast's fp32 parameters)");
        x.fp32_grad_accumulation = true;
    }
    if (!x.overlap_grad_reduce) {
        diffs.push_back("gradient reduction -> during the backward");
        x.overlap_grad_reduce = true;
    }
    if (x.overlap_param_gather && x.zero_stage < 2) {
        diffs.push_back("parameter gather -> after the step");
        x.overlap_param_gather = false;
    }
    if (!atomRefusal(x.sync, x.zero_stage).empty()) {
        SyncAtom plain;
        plain.sparse = x.sync.sparse;
        if (x.zero_stage < 2)
            plain.compression = x.sync.compression, plain.powersgd_rank = x.sync.powersgd_rank;
        diffs.push_back("gradient sync -> DDP's bucketed all-reduce");
        x.sync = plain;
    }
    if (x.sync.sparse) {
        diffs.push_back("embedding gradients -> dense");
        x.sync.sparse = false;
    }
    if (!x.layers.empty()) {
        diffs.push_back("per-layer settings (" + std::to_string(x.layers.size()) + ") -> none");
        x.layers.clear();
    }
    return x;
}

json modelConfig(const Model& m)
{
    const Layer* core = firstOf(m, LayerKind::AttentionCore);
    const Layer* head = firstOf(m, LayerKind::LMHead);
    const bool gpt2 = m.family == "gpt2";
    const int64_t heads = core && core->dims.heads ? core->dims.heads : m.dims.heads;
    const int64_t kv = core && core->dims.kv_heads ? core->dims.kv_heads : heads;
    const int64_t headDim = core && core->dims.head_dim ? core->dims.head_dim : m.dims.hidden / std::max<int64_t>(heads, 1);
    const bool dropout = core && core->cost.mask_bytes_per_seq2 > 0;
    json names = gpt2 ? json{{"embed", "embeddings"}, {"blocks", "h"}, {"norm1", "ln_1"}, {"norm2", "ln_2"},
                             {"final_norm", "ln_f"}}
                      : json{{"embed", "embed_tokens"}, {"blocks", "layers"}, {"norm1", "input_layernorm"},
                             {"norm2", "post_attention_layernorm"}, {"final_norm", "norm"}};
    return {{"family", m.family}, {"name", m.name}, {"layers", m.dims.layers}, {"hidden", m.dims.hidden},
            {"heads", heads}, {"kv_heads", kv}, {"head_dim", headDim}, {"ffn", m.dims.ffn}, {"vocab", m.dims.vocab},
            {"positions", m.seq_len}, {"positions_learned", gpt2}, {"tied", head && !head->tied_to.empty()},
            {"norm", gpt2 ? "layernorm" : "rmsnorm"}, {"mlp", gpt2 ? "gelu" : "swiglu"}, {"bias", gpt2},
            {"rope_theta", gpt2 ? 0.0 : 10000.0}, {"dropout", dropout ? 0.1 : 0.0}, {"names", names}};
}

json strategyConfig(const Strategy& s)
{
    return {{"name", s.name},
            {"dp", s.dp},
            {"tp", s.tp},
            {"sequence_parallel", s.tp > 1 && s.sequence_parallel},
            {"zero_stage", s.zero_stage},
            {"micro_batch", s.micro_batch},
            {"global_batch", s.global_batch},
            {"precision", std::string(precisionName(s.precision))},
            {"recompute", std::string(recomputeName(s.recompute))},
            {"attention", std::string(attentionName(s.attention))},
            {"bucket_mb", double(s.bucket_bytes) / kMiB},
            {"compression", std::string(compressionName(s.sync.compression))},
            {"powersgd_rank", s.sync.powersgd_rank}};
}

std::string replaceOnce(std::string text, const std::string& key, const std::string& value)
{
    const size_t at = text.find(key);
    if (at != std::string::npos)
        text.replace(at, key.size(), value);
    return text;
}

} // namespace

Result<PyTorchExport> exportPyTorch(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                    const ExportHeader& h, bool closest)
{
    PyTorchExport out;
    out.exported = s;
    const std::vector<std::string> why = pytorchRefusals(m, s);
    if (!why.empty()) {
        if (!closest) {
            std::string all;
            for (const auto& w : why)
                all += (all.empty() ? "" : "; ") + w;
            return Error{"strategy '" + s.name + "'", "PyTorch", all};
        }
        out.exported = closestPyTorch(m, c, s, out.differences);
        if (!scriptFamily(m.family))
            return Error{"model '" + m.name + "'", "PyTorch", why.front()};
    }
    const Strategy& x = out.exported;
    const int64_t seq = seqLen > 0 ? seqLen : m.seq_len;
    if (x.tp > 1 && x.sequence_parallel && seq % x.tp != 0)
        return Error{"strategy '" + s.name + "'", "PyTorch",
                     "sequence parallelism splits the " + std::to_string(seq) + " tokens over tp " +
                         std::to_string(x.tp) + ": not evenly"};
    std::ostringstream head;
    head << detail::exportHeaderLines(h, x.name,
                                      "PyTorch 1.13 or later (FSDP2 for ZeRO-2/3: 2.4 or later; tensor parallelism: 2.4 "
                                      "or later)",
                                      "this script", out.differences);
    head << "# Run: torchrun --nnodes " << c.nodes.size() << " --nproc-per-node "
         << (c.nodes.empty() ? 1 : c.nodes.front().devices.size()) << " THIS_SCRIPT";
    json cfg{{"partita_pytorch", 1},
             {"model", modelConfig(m)},
             {"strategy", strategyConfig(x)},
             {"train", {{"seq", seq}, {"steps", 10}, {"lr", 1e-3}}}};
    std::string script = replaceOnce(detail::kPyTorchTrainScript, "__PARTITA_HEADER__", head.str());
    out.script = replaceOnce(script, "__PARTITA_CONFIG__", cfg.dump(2));
    return out;
}

namespace {

// The HF config that builds the script's model in Partita.
json hfConfigOf(const json& m, const std::string& where)
{
    const std::string family = detail::getString(m, "family", where + "/family");
    auto num = [&](const char* k) { return detail::getInt(m, k, where + "/" + k, 1, int64_t(1) << 40); };
    const bool dropout = detail::getNumberOr(m, "dropout", where + "/dropout", 0, 1, 0) > 0;
    const double p = dropout ? 0.1 : 0.0;
    if (family == "gpt2")
        return {{"model_type", "gpt2"}, {"n_embd", num("hidden")}, {"n_layer", num("layers")}, {"n_head", num("heads")},
                {"n_inner", num("ffn")}, {"vocab_size", num("vocab")}, {"n_positions", num("positions")},
                {"resid_pdrop", p}, {"attn_pdrop", p}, {"embd_pdrop", p}};
    if (family != "llama" && family != "mistral")
        throw detail::FieldError(where + "/family", "'" + family + "': the script builds gpt2, llama or mistral");
    return {{"model_type", family}, {"hidden_size", num("hidden")}, {"num_hidden_layers", num("layers")},
            {"num_attention_heads", num("heads")}, {"num_key_value_heads", num("kv_heads")},
            {"head_dim", num("head_dim")}, {"intermediate_size", num("ffn")}, {"vocab_size", num("vocab")},
            {"max_position_embeddings", num("positions")},
            {"tie_word_embeddings", detail::getBoolOr(m, "tied", where + "/tied", false)}, {"attention_dropout", p}};
}

template <class E>
E enumOf(const std::string& text, const std::string& path, std::initializer_list<std::pair<const char*, E>> values)
{
    std::string all;
    for (const auto& [name, v] : values) {
        if (text == name)
            return v;
        all += (all.empty() ? "" : ", ") + std::string(name);
    }
    throw detail::FieldError(path, "'" + text + "' is none of " + all);
}

Strategy strategyOf(const json& j, const std::string& w)
{
    Strategy s;
    s.name = detail::getStringOr(j, "name", w + "/name", "pytorch");
    s.dp = int(detail::getInt(j, "dp", w + "/dp", 1, 1 << 20));
    s.tp = int(detail::getIntOr(j, "tp", w + "/tp", 1, 1 << 16, 1));
    s.sequence_parallel = s.tp > 1 && detail::getBoolOr(j, "sequence_parallel", w + "/sequence_parallel", false);
    s.zero_stage = int(detail::getIntOr(j, "zero_stage", w + "/zero_stage", 0, 3, 0));
    s.micro_batch = detail::getInt(j, "micro_batch", w + "/micro_batch", 1, int64_t(1) << 30);
    s.global_batch = detail::getInt(j, "global_batch", w + "/global_batch", 1, int64_t(1) << 40);
    s.precision = enumOf<Precision>(detail::getStringOr(j, "precision", w + "/precision", "fp32"), w + "/precision",
                                    {{"fp32", Precision::FP32}, {"bf16", Precision::BF16}, {"fp16", Precision::FP16}});
    s.fp32_grad_accumulation = s.precision != Precision::FP32;
    s.recompute = enumOf<Recompute>(detail::getStringOr(j, "recompute", w + "/recompute", "none"), w + "/recompute",
                                    {{"none", Recompute::None}, {"selective", Recompute::Selective}, {"full", Recompute::Full}});
    s.attention = enumOf<Attention>(detail::getStringOr(j, "attention", w + "/attention", "fused"), w + "/attention",
                                    {{"fused", Attention::Fused}, {"flash2", Attention::Flash2}, {"unfused", Attention::Unfused}});
    s.bucket_bytes = int64_t(std::llround(detail::getNumberOr(j, "bucket_mb", w + "/bucket_mb", 1e-3, 1e6, 25) * kMiB));
    s.sync.compression = enumOf<Compression>(detail::getStringOr(j, "compression", w + "/compression", "none"),
                                             w + "/compression",
                                             {{"none", Compression::None}, {"fp16", Compression::FP16},
                                              {"powersgd", Compression::PowerSGD}});
    s.sync.powersgd_rank = int(detail::getIntOr(j, "powersgd_rank", w + "/powersgd_rank", 1, 1 << 16, 4));
    s.sync.sparse = false;
    if (s.global_batch % (s.micro_batch * s.dp) != 0)
        throw detail::FieldError(w + "/global_batch", "global_batch " + std::to_string(s.global_batch) +
                                                          " is no multiple of micro_batch x dp (" +
                                                          std::to_string(s.micro_batch * s.dp) + ")");
    return s;
}

} // namespace

Result<PyTorchImport> importPyTorch(const std::string& text, const std::string& file)
{
    const size_t start = text.find(kConfigStart);
    if (start == std::string::npos)
        return Error{file, {}, "no `CONFIG = json.loads(r\"\"\"...\"\"\")` block: not a script Partita's PyTorch export wrote"};
    const size_t body = start + std::string(kConfigStart).size();
    const size_t end = text.find("\"\"\")", body);
    if (end == std::string::npos)
        return Error{file, {}, "the CONFIG block opened at line " +
                                   std::to_string(1 + std::count(text.begin(), text.begin() + long(start), '\n')) +
                                   " is never closed with \"\"\")"};
    const int lineOffset = int(std::count(text.begin(), text.begin() + long(body), '\n'));
    auto parsed = detail::parseJson(text.substr(body, end - body), file);
    if (!parsed) { // "line L, column C" within the block: the script's line instead
        Error e = parsed.error();
        if (e.where.rfind("line ", 0) == 0) {
            const size_t comma = e.where.find(',');
            const int line = std::atoi(e.where.c_str() + 5) + lineOffset;
            e.where = "line " + std::to_string(line) + (comma == std::string::npos ? "" : e.where.substr(comma));
        }
        e.message += " (in the CONFIG block)";
        return e;
    }
    try {
        const json& j = detail::asObject(*parsed, "CONFIG");
        PyTorchImport out;
        const json hf = hfConfigOf(detail::asObject(detail::field(j, "model", "CONFIG"), "CONFIG/model"), "CONFIG/model");
        auto model = modelFromHfConfig(hf.dump(), file);
        if (!model)
            return model.error();
        out.model = *model;
        const json& m = j["model"];
        if (const json* name = detail::optField(m, "name"); name && name->is_string())
            out.model.name = name->get<std::string>();
        out.strategy = strategyOf(detail::asObject(detail::field(j, "strategy", "CONFIG"), "CONFIG/strategy"),
                                  "CONFIG/strategy");
        if (const json* t = detail::optField(j, "train"))
            out.seq_len = detail::getIntOr(*t, "seq", "CONFIG/train/seq", 1, int64_t(1) << 30, out.model.seq_len);
        out.notes.push_back("the script runs ring or tree all-reduce as NCCL picks; the strategy says ring");
        return out;
    } catch (const detail::FieldError& e) {
        return Error{file, e.where, e.what()};
    }
}

} // namespace partita
