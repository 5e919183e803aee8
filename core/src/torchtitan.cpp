// torchtitan job TOMLs out of strategies, and back. Keys, defaults and the
// pipeline split as torchtitan v0.2.2 (73a0e69) has them:
// torchtitan/config/job_config.py, torchtitan/models/llama3/__init__.py and
// generate_llm_fqn_per_model_part in torchtitan/distributed/pipeline_parallel.py.
#include "partita/core/torchtitan.h"

#include "partita/core/modelio.h"

#include "exportheader.h"

#include <toml++/toml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

namespace partita {

namespace detail {
extern const char* const kTorchtitanKeys; // torchtitankeys.cpp, generated
}

namespace {

constexpr const char* kVersion = "torchtitan v0.2.2";
constexpr const char* kFloat8 = "quantize.linear.float8";

// Llama 3's SwiGLU width as torchtitan's FeedForward computes it.
int64_t llamaFfn(int64_t dim, double multiplier, int64_t multipleOf)
{
    int64_t hidden = int64_t(2 * (4 * dim) / 3);
    if (multiplier > 0)
        hidden = int64_t(multiplier * double(hidden));
    return multipleOf * ((hidden + multipleOf - 1) / multipleOf);
}

} // namespace

const std::vector<TorchtitanFlavor>& torchtitanFlavors()
{
    static const std::vector<TorchtitanFlavor> all{
        {"debugmodel", 256, 6, 16, 16, llamaFfn(256, 0, 256), 2048},
        {"8B", 4096, 32, 32, 8, llamaFfn(4096, 1.3, 1024), 128256},
        {"70B", 8192, 80, 64, 8, llamaFfn(8192, 1.3, 4096), 128256},
        {"405B", 16384, 126, 128, 8, llamaFfn(16384, 1.2, 4096), 128256},
    };
    return all;
}

std::optional<TorchtitanFlavor> torchtitanFlavorOf(const Model& m)
{
    if (m.family != "llama")
        return std::nullopt;
    const int64_t kv = m.dims.kv_heads ? m.dims.kv_heads : m.dims.heads;
    for (const TorchtitanFlavor& f : torchtitanFlavors())
        if (f.dim == m.dims.hidden && f.layers == m.dims.layers && f.heads == m.dims.heads && f.kv_heads == kv &&
            f.ffn == m.dims.ffn && f.vocab == m.dims.vocab)
            return f;
    return std::nullopt;
}

const std::vector<std::string>& torchtitanKeys()
{
    static const std::vector<std::string> keys = detail::listLines(detail::kTorchtitanKeys);
    return keys;
}

std::vector<std::string> torchtitanRefusals(const Model& m, const Strategy& s)
{
    std::vector<std::string> why;
    if (!torchtitanFlavorOf(m)) {
        std::string names;
        for (const auto& f : torchtitanFlavors())
            names += (names.empty() ? "" : ", ") + f.name;
        why.push_back("model '" + m.name + "': torchtitan builds its registered Llama 3 flavors (" + names +
                      "); this model's shape is none of them");
    }
    if (s.zero_stage == 1)
        why.push_back("zero_stage 1: torchtitan shards with FSDP2 (parameters too: ZeRO-2 or 3) or replicates (DDP)");
    if (s.zero_stage == 2 && !s.overlap_param_gather)
        why.push_back("overlap_param_gather false: FSDP2 prefetches the next module's all-gather, always");
    if (s.precision == Precision::FP16)
        why.push_back("precision fp16: torchtitan's mixed precision is bf16 or fp32");
    if (s.precision != Precision::FP32 && !s.fp32_grad_accumulation)
        why.push_back("fp32_grad_accumulation false: torchtitan reduces gradients in fp32 (mixed_precision_reduce)");
    if (s.tp > 1 && !s.sequence_parallel)
        why.push_back("sequence_parallel false: torchtitan's tensor parallelism is sequence-parallel");
    if (s.cp > 1 && s.cp_comm == ContextComm::P2P)
        why.push_back("cp_comm p2p: torchtitan exchanges K/V shards by all-gather or all-to-all (no ring)");
    if (s.ep > 1)
        why.push_back("ep " + std::to_string(s.ep) + ": Llama 3 has no experts");
    if (s.attention == Attention::Unfused)
        why.push_back("attention unfused: torchtitan runs scaled_dot_product_attention (fused)");
    if (!s.overlap_grad_reduce)
        why.push_back("overlap_grad_reduce false: FSDP2 and DDP reduce gradients during the backward");
    if (s.sync.method != SyncMethod::AllReduce || s.sync.algorithm == AllReduceAlgo::Hierarchical ||
        s.sync.compression != Compression::None || s.sync.staleness > 0 || s.sync.bucket >= 0 || s.sync.sparse)
        why.push_back("sync: torchtitan all-reduces (DDP) or reduce-scatters (FSDP2) dense gradients, uncompressed");
    if (s.schedule == PipelineSchedule::GPipe && s.interleave > 1)
        why.push_back("schedule gpipe with interleave: torchtitan's GPipe is one stage per rank");
    for (const LayerOverride& o : s.layers)
        if (o.sync || o.tp_role || o.recompute)
            why.push_back("layer '" + o.pattern + "': torchtitan treats every layer alike (only stages may differ)");
    return why;
}

namespace {

Strategy closestTorchtitan(const Strategy& s, std::vector<std::string>& diffs)
{
    Strategy x = s;
    auto change = [&](bool when, const std::string& what, auto&& apply) {
        if (when) {
            diffs.push_back(what);
            apply();
        }
    };
    change(x.zero_stage == 1, "ZeRO 1 -> 2 (FSDP2 without resharding after the forward)", [&] { x.zero_stage = 2; });
    change(x.zero_stage == 2 && !x.overlap_param_gather, "parameter gather -> prefetched", [&] { x.overlap_param_gather = true; });
    change(x.precision == Precision::FP16, "precision fp16 -> bf16", [&] { x.precision = Precision::BF16; });
    change(x.precision != Precision::FP32 && !x.fp32_grad_accumulation, "gradients -> fp32",
           [&] { x.fp32_grad_accumulation = true; });
    change(x.tp > 1 && !x.sequence_parallel, "sequence parallelism -> on", [&] { x.sequence_parallel = true; });
    change(x.cp > 1 && x.cp_comm == ContextComm::P2P, "K/V exchange -> all-gather",
           [&] { x.cp_comm = ContextComm::AllGather; });
    change(x.attention == Attention::Unfused, "attention -> fused", [&] { x.attention = Attention::Fused; });
    change(!x.overlap_grad_reduce, "gradient reduction -> during the backward", [&] { x.overlap_grad_reduce = true; });
    SyncAtom plain;
    plain.sparse = false;
    change(!(x.sync == plain), "gradient sync -> dense all-reduce or reduce-scatter", [&] { x.sync = plain; });
    change(x.schedule == PipelineSchedule::GPipe && x.interleave > 1, "schedule -> interleaved 1F1B",
           [&] { x.schedule = PipelineSchedule::Interleaved; });
    const size_t before = x.layers.size();
    x.layers.erase(std::remove_if(x.layers.begin(), x.layers.end(),
                                  [](const LayerOverride& o) { return o.sync || o.tp_role || o.recompute; }),
                   x.layers.end());
    change(x.layers.size() != before, "per-layer settings other than stages -> none", [] {});
    return x;
}

// The blocks of each virtual stage, as the resolved strategy places them.
Result<std::vector<std::vector<int>>> blocksPerStage(const Model& m, const Cluster& c, const Strategy& s)
{
    auto r = resolveStrategy(s, m, c);
    if (!r)
        return r.error();
    std::vector<std::vector<int>> stages(size_t(r->virtual_stages));
    std::map<std::string, int> index;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const Layer& l = m.layers[i];
        if (l.block.empty() || index.count(l.block))
            continue;
        const int b = int(index.size());
        index[l.block] = b;
        stages[size_t(r->layers[i].stage)].push_back(b);
    }
    return stages;
}

toml::table parallelismTable(const Strategy& s, const std::vector<std::vector<int>>& stages)
{
    toml::table p;
    const bool fsdp = s.zero_stage >= 2;
    p.insert("data_parallel_replicate_degree", fsdp ? 1 : s.dp);
    p.insert("data_parallel_shard_degree", fsdp ? s.dp : 1);
    p.insert("fsdp_reshard_after_forward", s.zero_stage == 2 ? "never" : "always");
    p.insert("tensor_parallel_degree", s.tp);
    p.insert("enable_async_tensor_parallel", s.tp_comm_overlap);
    p.insert("pipeline_parallel_degree", s.pp);
    p.insert("context_parallel_degree", s.cp);
    if (s.cp > 1)
        p.insert("context_parallel_rotate_method", "allgather");
    if (s.pp > 1) {
        p.insert("pipeline_parallel_schedule", s.interleave > 1 ? "Interleaved1F1B"
                                               : s.schedule == PipelineSchedule::GPipe ? "GPipe"
                                                                                       : "1F1B");
        p.insert("pipeline_parallel_microbatch_size", s.micro_batch);
        toml::array parts;
        for (size_t v = 0; v < stages.size(); ++v) {
            toml::array names;
            if (v == 0)
                names.push_back("tok_embeddings");
            for (int b : stages[v])
                names.push_back("layers." + std::to_string(b));
            if (v + 1 == stages.size()) {
                names.push_back("norm");
                names.push_back("output");
            }
            parts.push_back(std::move(names));
        }
        p.insert("module_fqns_per_model_part", std::move(parts));
    }
    return p;
}

} // namespace

Result<TorchtitanExport> exportTorchtitan(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                          const ExportHeader& h, bool closest)
{
    TorchtitanExport out;
    out.exported = s;
    const auto why = torchtitanRefusals(m, s);
    const auto flavor = torchtitanFlavorOf(m);
    if (!why.empty()) {
        if (!closest || !flavor) {
            std::string all;
            for (const auto& w : why)
                all += (all.empty() ? "" : "; ") + w;
            return Error{"strategy '" + s.name + "'", "torchtitan", all};
        }
        out.exported = closestTorchtitan(s, out.differences);
    }
    const Strategy& x = out.exported;
    auto stages = blocksPerStage(m, c, x);
    if (!stages)
        return stages.error();
    toml::table model{{"name", "llama3"}, {"flavor", flavor->name}};
    if (x.precision == Precision::FP8)
        model.insert("converters", toml::array{kFloat8});
    const bool pp = x.pp > 1;
    toml::table training{{"local_batch_size", pp ? x.global_batch / x.dp : x.micro_batch},
                         {"global_batch_size", x.global_batch},
                         {"seq_len", seqLen > 0 ? seqLen : m.seq_len},
                         {"mixed_precision_param", x.precision == Precision::FP32 ? "float32" : "bfloat16"},
                         {"mixed_precision_reduce", "float32"}};
    toml::table ac{{"mode", std::string(recomputeName(x.recompute))}};
    if (x.recompute == Recompute::Selective)
        ac.insert("selective_ac_option", "op");
    toml::table doc{{"job", toml::table{{"dump_folder", "./outputs"}, {"description", "Partita strategy '" + x.name + "'"}}},
                    {"model", std::move(model)},
                    {"training", std::move(training)},
                    {"parallelism", parallelismTable(x, *stages)},
                    {"activation_checkpoint", std::move(ac)}};
    if (x.tp_comm_overlap) { // async tensor parallelism works through torch.compile
        doc.insert("compile", toml::table{{"enable", true}, {"components", toml::array{"model", "loss"}}});
        out.notes.push_back("enable_async_tensor_parallel needs torch.compile: [compile] enable = true");
    }
    std::ostringstream o;
    o << detail::exportHeaderLines(h, x.name, kVersion, "torchtitan", out.differences);
    o << "# Run: torchrun --nnodes " << c.nodes.size() << " --nproc-per-node "
      << (c.nodes.empty() ? 1 : c.nodes.front().devices.size())
      << " -m torchtitan.train --job.config_file THIS_FILE\n\n"
      << doc << "\n";
    out.toml = o.str();
    return out;
}

} // namespace partita
