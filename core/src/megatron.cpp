// Megatron-LM launch scripts out of strategies, and strategies out of them.
// Flags as Megatron-LM core_r0.10.0 (7ee599a) defines them in
// megatron/training/arguments.py.
#include "partita/core/megatron.h"

#include "partita/core/modelio.h"

#include "shellwords.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

namespace partita {

namespace {

bool decoderFamily(const std::string& f)
{
    return f == "gpt2" || f == "llama" || f == "mistral" || f == "mixtral" || f == "nemotron";
}

std::string atomText(const SyncAtom& a)
{
    std::string t(syncMethodName(a.method));
    if (a.method == SyncMethod::AllReduce)
        t += " " + std::string(allReduceAlgoName(a.algorithm));
    if (a.compression != Compression::None)
        t += ", " + std::string(compressionName(a.compression)) + " compression";
    return t;
}

// Why one sync atom cannot be Megatron-LM's (empty: it can). Megatron-LM
// all-reduces (or, with the distributed optimizer, reduce-scatters) dense
// gradients in buckets filled by size, with NCCL choosing ring or tree.
std::string atomRefusal(const SyncAtom& a, bool sparseLayer)
{
    if (a.method == SyncMethod::ParameterServer)
        return "Megatron-LM has no parameter server";
    if (a.method == SyncMethod::SFB)
        return "Megatron-LM has no sufficient-factor broadcasting";
    if (a.method == SyncMethod::None)
        return "Megatron-LM synchronizes every trained layer";
    if (a.algorithm == AllReduceAlgo::Hierarchical)
        return "Megatron-LM has no hierarchical all-reduce (NCCL picks ring or tree)";
    if (a.compression == Compression::PowerSGD)
        return "Megatron-LM has no PowerSGD compression";
    if (a.compression == Compression::FP16)
        return "Megatron-LM has no fp16 compression of gradients";
    if (a.staleness > 0)
        return "Megatron-LM has no bounded staleness";
    if (a.bucket >= 0)
        return "Megatron-LM fills gradient buckets by size (--ddp-bucket-size), not by explicit groups";
    if (sparseLayer && a.sparse)
        return "Megatron-LM's embedding gradients are dense (no sparse rows)";
    return {};
}

} // namespace

std::vector<std::string> megatronRefusals(const Model& m, const Strategy& s)
{
    std::vector<std::string> why;
    if (!decoderFamily(m.family))
        why.push_back("model '" + m.name + "': pretrain_gpt.py trains decoder-only GPT models (GPT-2, Llama, Mistral, "
                      "Mixtral, Nemotron); family '" + m.family + "' is not one");
    if (s.schedule == PipelineSchedule::GPipe && s.pp > 1)
        why.push_back("schedule: Megatron-LM has no GPipe schedule (1F1B or interleaved 1F1B)");
    if (s.zero_stage >= 2)
        why.push_back("zero_stage " + std::to_string(s.zero_stage) +
                      ": Megatron-LM's distributed optimizer shards optimizer state only (ZeRO-1)");
    if (s.interleave > 1 && m.dims.layers % (int64_t(s.pp) * s.interleave) != 0)
        why.push_back("interleave: " + std::to_string(m.dims.layers) + " layers do not split into " +
                      std::to_string(s.pp) + " x " + std::to_string(s.interleave) + " virtual stages");
    if (std::string a = atomRefusal(s.sync, false); !a.empty())
        why.push_back("sync (" + atomText(s.sync) + "): " + a);
    for (const Layer& l : m.layers)
        if (l.kind == LayerKind::Embedding && l.sparse_grad && s.sync.sparse && s.layers.empty()) {
            why.push_back("layer '" + l.name + "' (sparse rows): " + atomRefusal(s.sync, true));
            break;
        }
    for (size_t i = 0; i < s.layers.size(); ++i) {
        const LayerOverride& o = s.layers[i];
        const std::string at = "layer '" + o.pattern + "'";
        if (o.sync) {
            bool sparse = false;
            for (const Layer& l : m.layers)
                sparse |= l.sparse_grad && globMatch(o.pattern, l.name);
            if (std::string a = atomRefusal(*o.sync, sparse); !a.empty())
                why.push_back(at + " (" + atomText(*o.sync) + "): " + a);
        }
        if (o.tp_role && *o.tp_role != TpRole::Auto)
            why.push_back(at + " (tensor-parallel " + std::string(tpRoleName(*o.tp_role)) +
                          "): Megatron-LM splits every layer its own way (column, then row)");
        if (o.stage)
            why.push_back(at + " (stage " + std::to_string(*o.stage) +
                          "): Megatron-LM places layers by count (even, or --decoder-first/last-pipeline-num-layers)");
        if (o.recompute && *o.recompute != s.recompute)
            why.push_back(at + " (recompute " + std::string(recomputeName(*o.recompute)) +
                          "): Megatron-LM recomputes every layer alike");
    }
    // Without per-layer atoms the default atom's sparse flag still decides the embeddings.
    if (!s.layers.empty() && s.sync.sparse)
        for (const Layer& l : m.layers)
            if (l.kind == LayerKind::Embedding && l.sparse_grad) {
                bool overridden = false;
                for (const LayerOverride& o : s.layers)
                    overridden |= o.sync && globMatch(o.pattern, l.name);
                if (!overridden)
                    why.push_back("layer '" + l.name + "' (sparse rows): " + atomRefusal(s.sync, true));
                break;
            }
    return why;
}

namespace {

// The nearest strategy Megatron-LM can run, and what changed.
Strategy closestMegatron(const Model& m, const Strategy& s, std::vector<std::string>& diffs)
{
    Strategy c = s;
    if (c.schedule == PipelineSchedule::GPipe && c.pp > 1) {
        c.schedule = PipelineSchedule::OneFOneB;
        diffs.push_back("schedule gpipe -> 1f1b");
    }
    if (c.zero_stage >= 2) {
        diffs.push_back("ZeRO " + std::to_string(c.zero_stage) + " -> 1 (the distributed optimizer)");
        c.zero_stage = 1;
        c.overlap_param_gather = false;
    }
    if (c.interleave > 1 && m.dims.layers % (int64_t(c.pp) * c.interleave) != 0) {
        diffs.push_back("interleave " + std::to_string(c.interleave) + " -> 1");
        c.interleave = 1;
        c.schedule = PipelineSchedule::OneFOneB;
    }
    SyncAtom plain;
    plain.sparse = false;
    plain.algorithm = s.sync.algorithm == AllReduceAlgo::Tree ? AllReduceAlgo::Tree : AllReduceAlgo::Ring;
    if (!atomRefusal(s.sync, false).empty() || s.sync.sparse) {
        if (!atomRefusal(s.sync, false).empty())
            diffs.push_back("sync " + atomText(s.sync) + " -> " + atomText(plain));
        bool sparseTable = false;
        for (const Layer& l : m.layers)
            sparseTable |= l.kind == LayerKind::Embedding && l.sparse_grad;
        if (s.sync.sparse && sparseTable)
            diffs.push_back("embedding gradients: sparse rows -> dense");
        c.sync = plain;
    }
    if (!c.layers.empty()) {
        diffs.push_back(std::to_string(c.layers.size()) + " per-layer overrides dropped (" + c.layers.front().pattern +
                        (c.layers.size() > 1 ? ", ..." : "") + ")");
        c.layers.clear();
    }
    return c;
}

std::string seconds(double s)
{
    std::ostringstream o;
    o.precision(4);
    o << s;
    return o.str();
}

void shapeFlags(std::vector<std::string>& f, const Model& m, int64_t seq)
{
    const auto& d = m.dims;
    auto add = [&](const std::string& k, int64_t v) { f.push_back(k + " " + std::to_string(v)); };
    add("--num-layers", d.layers);
    add("--hidden-size", d.hidden);
    add("--num-attention-heads", d.heads);
    add("--ffn-hidden-size", d.ffn);
    add("--seq-length", seq);
    add("--max-position-embeddings", std::max(seq, m.seq_len));
    int64_t headDim = 0;
    bool tied = false;
    for (const Layer& l : m.layers) {
        if (l.kind == LayerKind::AttentionCore && !headDim)
            headDim = l.dims.head_dim;
        if (l.kind == LayerKind::LMHead)
            tied = !l.tied_to.empty();
    }
    if (headDim && d.heads && headDim * d.heads != d.hidden)
        add("--kv-channels", headDim);
    if (m.family == "gpt2") {
        f.push_back("--position-embedding-type learned_absolute");
        f.push_back("--normalization LayerNorm");
    } else {
        f.push_back("--position-embedding-type rope");
        f.push_back(m.family == "nemotron" ? "--normalization LayerNorm" : "--normalization RMSNorm");
        f.push_back(m.family == "nemotron" ? "--squared-relu" : "--swiglu");
        f.push_back("--disable-bias-linear");
        f.push_back("--hidden-dropout 0");
        f.push_back("--attention-dropout 0");
        if (d.kv_heads && d.kv_heads != d.heads) {
            f.push_back("--group-query-attention");
            add("--num-query-groups", d.kv_heads);
        }
    }
    if (!tied)
        f.push_back("--untie-embeddings-and-output-weights");
    if (d.experts > 0) {
        add("--num-experts", d.experts);
        add("--moe-router-topk", std::max<int64_t>(1, d.top_k));
    }
    // Mock data and a tokenizer of the model's vocabulary: the script runs as
    // it is; replace them with --data-path and the real tokenizer to train.
    f.push_back("--mock-data");
    f.push_back("--tokenizer-type NullTokenizer");
    add("--vocab-size", d.vocab);
}

void strategyFlags(std::vector<std::string>& f, const Model& m, const Strategy& s)
{
    auto add = [&](const std::string& k, int64_t v) { f.push_back(k + " " + std::to_string(v)); };
    add("--tensor-model-parallel-size", s.tp);
    add("--pipeline-model-parallel-size", s.pp);
    if (s.cp > 1) {
        add("--context-parallel-size", s.cp);
        f.push_back(std::string("--cp-comm-type ") + (s.cp_comm == ContextComm::P2P ? "p2p" : "all_gather"));
    }
    if (s.ep > 1)
        add("--expert-model-parallel-size", s.ep);
    if (s.interleave > 1)
        add("--num-layers-per-virtual-pipeline-stage", m.dims.layers / (int64_t(s.pp) * s.interleave));
    if (s.first_stage_blocks > 0)
        add("--decoder-first-pipeline-num-layers", s.first_stage_blocks);
    if (s.last_stage_blocks > 0)
        add("--decoder-last-pipeline-num-layers", s.last_stage_blocks);
    if (s.sequence_parallel && s.tp > 1)
        f.push_back("--sequence-parallel");
    if (s.tp_comm_overlap)
        f.push_back("--tp-comm-overlap");
    add("--micro-batch-size", s.micro_batch);
    add("--global-batch-size", s.global_batch);
    if (s.recompute == Recompute::Selective)
        f.push_back("--recompute-granularity selective");
    else if (s.recompute == Recompute::Full)
        f.push_back("--recompute-granularity full --recompute-method uniform --recompute-num-layers 1");
    switch (s.precision) {
    case Precision::FP16: f.push_back("--fp16"); break;
    case Precision::BF16: f.push_back("--bf16"); break;
    case Precision::FP8: f.push_back("--bf16 --fp8-format hybrid"); break;
    case Precision::FP32: break;
    }
    if (s.fp32_grad_accumulation && s.precision != Precision::FP32)
        f.push_back("--accumulate-allreduce-grads-in-fp32");
    if (fusedAttention(s.attention))
        f.push_back("--use-flash-attn");
    if (s.zero_stage == 1)
        f.push_back("--use-distributed-optimizer");
    if (s.overlap_grad_reduce)
        f.push_back("--overlap-grad-reduce");
    if (s.overlap_param_gather)
        f.push_back("--overlap-param-gather");
    const int gradBytes = s.precision == Precision::FP32 || s.fp32_grad_accumulation ? 4 : 2;
    add("--ddp-bucket-size", s.bucket_bytes / gradBytes); // parameters per bucket
}

} // namespace

Result<MegatronExport> exportMegatron(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                      const ExportHeader& h, bool closest)
{
    MegatronExport out;
    out.exported = s;
    const std::vector<std::string> why = megatronRefusals(m, s);
    if (!why.empty()) {
        if (!closest || !decoderFamily(m.family)) {
            std::string all;
            for (const auto& w : why)
                all += (all.empty() ? "" : "; ") + w;
            return Error{"strategy '" + s.name + "'", "Megatron-LM", all};
        }
        out.exported = closestMegatron(m, s, out.differences);
    }
    const Strategy& x = out.exported;
    if (auto r = resolveStrategy(x, m, c); !r)
        return r.error();
    const int64_t seq = seqLen > 0 ? seqLen : m.seq_len;
    std::vector<std::string> flags;
    shapeFlags(flags, m, seq);
    strategyFlags(flags, m, x);
    const int nodes = int(c.nodes.size());
    const int perNode = nodes ? int(c.nodes.front().devices.size()) : 1;
    std::ostringstream o;
    o << "#!/usr/bin/env bash\n"
      << "# Generated by Partita " << h.version << " from strategy '" << x.name << "'"
      << (h.strategy_version.empty() ? "" : " (version " + h.strategy_version + ")") << " for Megatron-LM core_r0.10.0.\n";
    if (h.step_time_s > 0)
        o << "# Predicted on " << h.cluster << ": " << seconds(h.step_time_s) << " s per step, "
          << seconds(h.peak_memory_bytes / 1073741824.0) << " GiB peak memory per GPU.\n";
    for (const auto& d : out.differences)
        o << "# Changed to what Megatron-LM can run: " << d << "\n";
    if (x.sync.algorithm == AllReduceAlgo::Tree)
        o << "export NCCL_ALGO=Tree\n";
    if (x.attention == Attention::Unfused)
        o << "export NVTE_FLASH_ATTN=0 NVTE_FUSED_ATTN=0 # unfused attention\n";
    if (x.attention == Attention::Flash2)
        o << "export NVTE_FUSED_ATTN=0 # FlashAttention-2's kernels, not cuDNN's\n";
    if (x.tp > 1 || x.cp > 1)
        o << "export CUDA_DEVICE_MAX_CONNECTIONS=1\n";
    o << "# Run from a Megatron-LM checkout, once per node with NODE_RANK and MASTER_ADDR set;\n"
      << "# arguments after the script's name are passed on (--data-path, a tokenizer, --train-iters ...).\n"
      << "torchrun --nnodes " << nodes << " --nproc-per-node " << perNode
      << " --node-rank \"${NODE_RANK:-0}\" --master-addr \"${MASTER_ADDR:-localhost}\" --master-port \"${MASTER_PORT:-6000}\" \\\n"
      << "    pretrain_gpt.py \\\n";
    for (const auto& f : flags)
        o << "    " << f << " \\\n";
    o << "    \"$@\"\n";
    out.script = o.str();
    return out;
}

MegatronFlags megatronFlags(const std::string& text)
{
    MegatronFlags out;
    const std::vector<std::string> words = detail::shellWords(text);
    bool sawScript = text.find("pretrain_gpt.py") == std::string::npos;
    bool inCommand = false;
    for (size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "\n") {
            inCommand = false;
            continue;
        }
        if (w.find("torchrun") != std::string::npos || w.find("pretrain_gpt.py") != std::string::npos)
            inCommand = true;
        if (w.find("pretrain_gpt.py") != std::string::npos)
            sawScript = true;
        if (!inCommand && text.find("pretrain_gpt.py") != std::string::npos)
            continue;
        if (w.rfind("--", 0) != 0)
            continue;
        std::string key = w, value;
        if (auto eq = w.find('='); eq != std::string::npos) {
            key = w.substr(0, eq);
            value = w.substr(eq + 1);
        } else if (i + 1 < words.size() && words[i + 1] != "\n" && words[i + 1].rfind("--", 0) != 0) {
            value = words[i + 1];
        }
        if (!sawScript) { // torchrun's own flags
            if (key == "--nnodes" && !value.empty())
                out.nnodes = std::atoi(value.c_str());
            if ((key == "--nproc-per-node" || key == "--nproc_per_node") && !value.empty())
                out.nproc = std::atoi(value.c_str());
            continue;
        }
        out.flags[key] = value;
    }
    return out;
}

namespace {

// The flags of one Megatron-LM command line, and the file they came from.
struct MegatronArgs
{
    std::map<std::string, std::string>& flags;
    const std::string& file;

    // Whether the command line gives the flag at all.
    bool has(const char* k) const { return flags.count(k) > 0; }

    // The flag's whole-number value, or the fallback where it is not given.
    Result<int64_t> integer(const char* k, int64_t fallback) const
    {
        auto it = flags.find(k);
        if (it == flags.end())
            return fallback;
        const std::string& v = it->second;
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
            return Error{file, k,
                         v.find('$') != std::string::npos
                             ? "value '" + v + "' is a shell variable: set it in the file before importing"
                             : "expected a whole number, found '" + v + "'"};
        if (v.size() > 18) // std::stoll would throw beyond int64_t
            return Error{file, k, "out of range: " + v};
        return std::stoll(v);
    }
};

// The model's shape as the flags give it (0 where a flag is absent).
struct MegatronShape
{
    int64_t L = 0, h = 0, a = 0, ffn = 0, seq = 0, pos = 0, vocab = 0, groups = 0, kvc = 0, experts = 0, topk = 0;
};

// Reads the shape flags; refuses a malformed one, then a missing one the shape needs.
std::optional<Error> readShape(const MegatronArgs& args, MegatronShape& d)
{
    const std::pair<const char*, int64_t*> shape[] = {
        {"--num-layers", &d.L},          {"--hidden-size", &d.h},          {"--num-attention-heads", &d.a},
        {"--ffn-hidden-size", &d.ffn},   {"--seq-length", &d.seq},         {"--max-position-embeddings", &d.pos},
        {"--vocab-size", &d.vocab},      {"--num-query-groups", &d.groups}, {"--kv-channels", &d.kvc},
        {"--num-experts", &d.experts},   {"--moe-router-topk", &d.topk}};
    for (const auto& [k, v] : shape) {
        auto r = args.integer(k, 0);
        if (!r)
            return r.error();
        *v = *r;
    }
    for (const char* k : {"--num-layers", "--hidden-size", "--num-attention-heads", "--seq-length"})
        if (!args.has(k))
            return Error{args.file, k, "missing: the model's shape needs it"};
    return std::nullopt;
}

// The Hugging Face config of the shape: Llama, Nemotron or Mixtral where the flags say so, else GPT-2.
nlohmann::json hfConfigOf(const MegatronArgs& args, const MegatronShape& d)
{
    const bool swiglu = args.has("--swiglu"), sqRelu = args.has("--squared-relu");
    nlohmann::json cfg;
    if (swiglu || sqRelu || d.experts > 0) {
        const std::string type = d.experts > 0 ? "mixtral" : sqRelu ? "nemotron" : "llama";
        cfg = {{"model_type", type}, {"hidden_size", d.h}, {"num_hidden_layers", d.L}, {"num_attention_heads", d.a},
               {"num_key_value_heads", args.has("--group-query-attention") && d.groups ? d.groups : d.a},
               {"intermediate_size", d.ffn ? d.ffn : 4 * d.h}, {"vocab_size", d.vocab},
               {"max_position_embeddings", std::max(d.pos, d.seq)},
               {"tie_word_embeddings", !args.has("--untie-embeddings-and-output-weights")}};
        if (d.kvc)
            cfg["head_dim"] = d.kvc;
        if (d.experts > 0) {
            cfg["num_local_experts"] = d.experts;
            cfg["num_experts_per_tok"] = d.topk ? d.topk : 2;
        }
    } else {
        cfg = {{"model_type", "gpt2"}, {"n_embd", d.h}, {"n_layer", d.L}, {"n_head", d.a},
               {"n_inner", d.ffn ? d.ffn : 4 * d.h}, {"vocab_size", d.vocab}, {"n_positions", std::max(d.pos, d.seq)}};
    }
    cfg["_name_or_path"] = "Megatron-LM model (" + args.file + ")";
    return cfg;
}

// Reads the tensor, pipeline, context and expert parallel degrees (1 where not given).
std::optional<Error> readMesh(const MegatronArgs& args, Strategy& s)
{
    const std::pair<const char*, int*> mesh[] = {{"--tensor-model-parallel-size", &s.tp},
                                                 {"--pipeline-model-parallel-size", &s.pp},
                                                 {"--context-parallel-size", &s.cp},
                                                 {"--expert-model-parallel-size", &s.ep}};
    for (const auto& [k, v] : mesh) {
        auto r = args.integer(k, 1);
        if (!r)
            return r.error();
        if (*r < 1 || *r > (1 << 16))
            return Error{args.file, k, "out of range: " + std::to_string(*r)};
        *v = int(*r);
    }
    return std::nullopt;
}

// The number of GPUs (the caller's, or torchrun's) and the data-parallel degree the mesh leaves of it.
std::optional<Error> readWorld(const MegatronArgs& args, int world, int nnodes, int nproc, MegatronImport& out)
{
    Strategy& s = out.strategy;
    out.world = world > 0 ? world : nnodes * nproc;
    if (out.world <= 0)
        return Error{args.file, "torchrun",
                     "the number of GPUs is unknown: give torchrun's --nnodes and --nproc-per-node, "
                     "or a cluster"};
    const int64_t split = int64_t(s.tp) * s.pp * s.cp;
    if (out.world % split != 0)
        return Error{args.file, "--tensor-model-parallel-size", "tp x pp x cp = " + std::to_string(split) +
                                                                    " does not divide the " +
                                                                    std::to_string(out.world) + " GPUs"};
    s.dp = int(out.world / split);
    return std::nullopt;
}

// Reads the micro and global batch sizes (the global one dp micro-batches where not given).
std::optional<Error> readBatch(const MegatronArgs& args, Strategy& s)
{
    auto mb = args.integer("--micro-batch-size", 1), gb = args.integer("--global-batch-size", 0);
    if (!mb)
        return mb.error();
    if (!gb)
        return gb.error();
    if (*mb < 1)
        return Error{args.file, "--micro-batch-size", "must be at least 1"};
    s.micro_batch = *mb;
    s.global_batch = *gb > 0 ? *gb : int64_t(s.dp) * *mb;
    return std::nullopt;
}

// Reads the virtual pipeline stages of L layers, and the layers of the first and last stages.
std::optional<Error> readPipelineSplit(const MegatronArgs& args, int64_t L, Strategy& s)
{
    if (args.has("--num-layers-per-virtual-pipeline-stage")) {
        auto per = args.integer("--num-layers-per-virtual-pipeline-stage", 0);
        if (!per)
            return per.error();
        if (*per <= 0 || L % (*per * s.pp) != 0)
            return Error{args.file, "--num-layers-per-virtual-pipeline-stage",
                         std::to_string(*per) + " layers per virtual stage do not split " + std::to_string(L) +
                             " layers over " + std::to_string(s.pp) + " stages"};
        s.interleave = int(L / (*per * s.pp));
        s.schedule = s.interleave > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
    }
    for (const auto& [k, v] : {std::pair{"--decoder-first-pipeline-num-layers", &s.first_stage_blocks},
                               std::pair{"--decoder-last-pipeline-num-layers", &s.last_stage_blocks}}) {
        auto r = args.integer(k, 0);
        if (!r)
            return r.error();
        *v = int(*r);
    }
    return std::nullopt;
}

// Reads the context-parallel exchange, sequence parallelism and tensor-parallel overlap.
std::optional<Error> readParallelSwitches(const MegatronArgs& args, Strategy& s)
{
    if (args.has("--cp-comm-type")) {
        const std::string t = args.flags["--cp-comm-type"];
        if (t != "p2p" && t != "all_gather")
            return Error{args.file, "--cp-comm-type", "'" + t + "' is not modelled (p2p or all_gather)"};
        s.cp_comm = t == "p2p" ? ContextComm::P2P : ContextComm::AllGather;
    }
    // Settings that do nothing where they stand are read as off (sequence
    // parallelism without tp, an exchange without cp, fp32 accumulation in fp32).
    s.sequence_parallel = args.has("--sequence-parallel") && s.tp > 1;
    if (s.cp == 1)
        s.cp_comm = ContextComm::P2P;
    s.tp_comm_overlap = args.has("--tp-comm-overlap");
    return std::nullopt;
}

// Reads the recomputation granularity, the precision and fp32 gradient accumulation.
std::optional<Error> readRecomputeAndPrecision(const MegatronArgs& args, Strategy& s)
{
    const std::string gran = args.has("--recompute-granularity") ? args.flags["--recompute-granularity"] : "";
    s.recompute = gran == "full" ? Recompute::Full : gran == "selective" ? Recompute::Selective : Recompute::None;
    if (!gran.empty() && gran != "full" && gran != "selective")
        return Error{args.file, "--recompute-granularity", "expected full or selective, found '" + gran + "'"};
    s.precision = args.has("--fp8-format") ? Precision::FP8
                  : args.has("--bf16")     ? Precision::BF16
                  : args.has("--fp16")     ? Precision::FP16
                                           : Precision::FP32;
    if (args.has("--fp16") && args.has("--bf16"))
        return Error{args.file, "--fp16", "--fp16 and --bf16 together: Megatron-LM refuses both"};
    s.fp32_grad_accumulation = args.has("--accumulate-allreduce-grads-in-fp32") && s.precision != Precision::FP32;
    return std::nullopt;
}

// Reads the attention kernels, noting where no flash attention is asked for.
void readAttention(const std::string& text, const MegatronArgs& args, MegatronImport& out)
{
    Strategy& s = out.strategy;
    // Transformer Engine told to skip cuDNN's fused attention runs FlashAttention-2's.
    const bool noCudnnAttention = text.find("NVTE_FUSED_ATTN=0") != std::string::npos;
    s.attention = !args.has("--use-flash-attn") ? Attention::Unfused
                  : noCudnnAttention            ? Attention::Flash2
                                                : Attention::Fused;
    if (!args.has("--use-flash-attn"))
        out.notes.push_back("no --use-flash-attn: attention costed unfused (Transformer Engine may still fuse it)");
}

// Reads the distributed optimizer, the overlaps and how gradients are all-reduced in buckets.
std::optional<Error> readGradientSync(const std::string& text, const MegatronArgs& args, Strategy& s)
{
    s.zero_stage = args.has("--use-distributed-optimizer") ? 1 : 0;
    s.overlap_grad_reduce = args.has("--overlap-grad-reduce");
    s.overlap_param_gather = args.has("--overlap-param-gather");
    s.sync.sparse = false;
    if (text.find("NCCL_ALGO=Tree") != std::string::npos)
        s.sync.algorithm = AllReduceAlgo::Tree;
    if (args.has("--ddp-bucket-size")) {
        auto b = args.integer("--ddp-bucket-size", 0);
        if (!b)
            return b.error();
        const int gradBytes = s.precision == Precision::FP32 || s.fp32_grad_accumulation ? 4 : 2;
        s.bucket_bytes = *b * gradBytes;
    }
    return std::nullopt;
}

} // namespace

Result<MegatronImport> importMegatron(const std::string& text, const std::string& file, int world)
{
    // Flags of the command that runs pretrain_gpt.py (or, without it, every flag).
    MegatronFlags parsed = megatronFlags(text);
    const MegatronArgs args{parsed.flags, file};
    MegatronImport out;
    MegatronShape d;
    if (auto e = readShape(args, d))
        return *e;
    if (!d.vocab) {
        d.vocab = 50257;
        out.notes.push_back("--vocab-size not given (the tokenizer decides it): GPT-2's 50,257 assumed");
    }
    auto model = modelFromHfConfig(hfConfigOf(args, d).dump(), file);
    if (!model)
        return model.error();
    out.model = *model;
    out.seq_len = d.seq;

    Strategy& s = out.strategy;
    s.name = "Megatron-LM (" + file + ")";
    if (auto e = readMesh(args, s))
        return *e;
    if (auto e = readWorld(args, world, parsed.nnodes, parsed.nproc, out))
        return *e;
    if (auto e = readBatch(args, s))
        return *e;
    if (auto e = readPipelineSplit(args, d.L, s))
        return *e;
    if (auto e = readParallelSwitches(args, s))
        return *e;
    if (auto e = readRecomputeAndPrecision(args, s))
        return *e;
    readAttention(text, args, out);
    if (auto e = readGradientSync(text, args, s))
        return *e;
    return out;
}

} // namespace partita
