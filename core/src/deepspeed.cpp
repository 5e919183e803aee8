// DeepSpeed configurations out of strategies, and strategies out of them.
// Keys as DeepSpeed v0.18.9 (8c93851) reads them: deepspeed/runtime/constants.py,
// zero/config.py, activation_checkpointing/config.py, tensor_parallel/config.py,
// and get_pipeline_config in runtime/config.py.
#include "partita/core/deepspeed.h"

#include "exportheader.h"
#include "jsonread.h"

#include <algorithm>
#include <optional>
#include <sstream>

namespace partita {

namespace detail {
extern const char* const kDeepSpeedKeys; // frameworkkeys.cpp, generated
}

using detail::json;

namespace {

int gradientBytesOf(const Strategy& s)
{
    return s.precision == Precision::FP32 || s.fp32_grad_accumulation ? 4 : 2;
}

// Why one sync atom cannot be DeepSpeed's (empty: it can). DeepSpeed
// all-reduces (ZeRO: reduce-scatters) gradients in buckets filled by size,
// sends them in fp16 with communication_data_type, and all-gathers sparse
// embedding rows with sparse_gradients.
std::string atomRefusal(const SyncAtom& a)
{
    if (a.method == SyncMethod::ParameterServer)
        return "DeepSpeed has no parameter server";
    if (a.method == SyncMethod::SFB)
        return "DeepSpeed has no sufficient-factor broadcasting";
    if (a.method == SyncMethod::None)
        return "DeepSpeed synchronizes every trained layer";
    if (a.algorithm == AllReduceAlgo::Hierarchical)
        return "DeepSpeed has no hierarchical all-reduce (NCCL picks ring or tree)";
    if (a.compression == Compression::PowerSGD)
        return "DeepSpeed has no PowerSGD (its compressed optimizers are 1-bit Adam and LAMB)";
    if (a.staleness > 0)
        return "DeepSpeed has no bounded staleness";
    if (a.bucket >= 0)
        return "DeepSpeed fills gradient buckets by size (reduce_bucket_size), not by explicit groups";
    return {};
}

} // namespace

std::vector<std::string> deepspeedRefusals(const Model& m, const Strategy& s)
{
    (void)m;
    std::vector<std::string> why;
    if (s.cp > 1)
        why.push_back("cp " + std::to_string(s.cp) + ": DeepSpeed splits sequences with Ulysses (an all-to-all of heads), "
                      "not a ring of keys and values");
    if (s.ep > 1)
        why.push_back("ep " + std::to_string(s.ep) +
                      ": DeepSpeed's expert parallelism is set in the model code (deepspeed.moe.layer.MoE), not the "
                      "configuration");
    if (s.sequence_parallel && s.tp > 1)
        why.push_back("sequence_parallel: DeepSpeed's AutoTP has no Megatron sequence parallelism");
    if (s.tp_comm_overlap)
        why.push_back("tp_comm_overlap: DeepSpeed's AutoTP does not overlap its collectives with GEMMs");
    if (s.pp > 1 && s.zero_stage >= 2)
        why.push_back("zero_stage " + std::to_string(s.zero_stage) +
                      " with pp " + std::to_string(s.pp) + ": DeepSpeed's pipeline engine runs ZeRO stage 0 or 1 only");
    if (s.interleave > 1)
        why.push_back("interleave: DeepSpeed's pipeline engine has no interleaved schedule");
    if (s.schedule == PipelineSchedule::GPipe && s.pp > 1)
        why.push_back("schedule gpipe: DeepSpeed's pipeline engine runs its own 1F1B schedule");
    if (s.first_stage_blocks > 0 || s.last_stage_blocks > 0)
        why.push_back("first/last_stage_blocks: DeepSpeed's PipelineModule balances stages itself (partition_method)");
    if (s.precision == Precision::FP8)
        why.push_back("precision fp8: DeepSpeed's configuration has no FP8 training");
    if (s.recompute == Recompute::Selective)
        why.push_back("recompute selective: DeepSpeed checkpoints whole layers (deepspeed.checkpointing)");
    if (s.zero_stage == 0 && s.overlap_grad_reduce && s.dp > 1)
        why.push_back("overlap_grad_reduce: without ZeRO, DeepSpeed reduces gradients after the backward "
                      "(overlap_comm is ZeRO's)");
    if (s.overlap_param_gather)
        why.push_back("overlap_param_gather: DeepSpeed's ZeRO-1/2 gathers the updated parameters after the step");
    if (std::string a = atomRefusal(s.sync); !a.empty())
        why.push_back("sync (" + std::string(syncMethodName(s.sync.method)) + "): " + a);
    for (const LayerOverride& o : s.layers)
        why.push_back("layer '" + o.pattern + "': DeepSpeed's configuration applies to every layer alike");
    return why;
}

namespace {

Strategy closestDeepSpeed(const Strategy& s, std::vector<std::string>& d)
{
    Strategy c = s;
    auto change = [&](bool cond, const std::string& what, auto&& apply) {
        if (cond) {
            d.push_back(what);
            apply();
        }
    };
    change(c.cp > 1, "cp " + std::to_string(c.cp) + " -> 1 (dp x " + std::to_string(c.cp) + ")", [&] {
        c.dp *= c.cp; // the same devices, as data-parallel ranks
        c.cp = 1;
    });
    change(c.ep > 1, "ep " + std::to_string(c.ep) + " -> 1", [&] { c.ep = 1; });
    change(c.sequence_parallel && c.tp > 1, "sequence parallelism off", [&] { c.sequence_parallel = false; });
    change(c.tp_comm_overlap, "tensor-parallel overlap off", [&] { c.tp_comm_overlap = false; });
    change(c.pp > 1 && c.zero_stage >= 2, "ZeRO " + std::to_string(c.zero_stage) + " -> 1", [&] { c.zero_stage = 1; });
    change(c.interleave > 1, "interleave " + std::to_string(c.interleave) + " -> 1", [&] {
        c.interleave = 1;
        c.schedule = PipelineSchedule::OneFOneB;
    });
    change(c.schedule == PipelineSchedule::GPipe && c.pp > 1, "schedule gpipe -> 1f1b",
           [&] { c.schedule = PipelineSchedule::OneFOneB; });
    change(c.first_stage_blocks > 0 || c.last_stage_blocks > 0, "even pipeline stages", [&] {
        c.first_stage_blocks = c.last_stage_blocks = 0;
    });
    change(c.precision == Precision::FP8, "fp8 -> bf16", [&] { c.precision = Precision::BF16; });
    change(c.recompute == Recompute::Selective, "selective -> full recomputation", [&] { c.recompute = Recompute::Full; });
    change(c.overlap_param_gather, "parameter gather after the step", [&] { c.overlap_param_gather = false; });
    change(c.zero_stage == 0 && c.overlap_grad_reduce && c.dp > 1, "gradients reduced after the backward",
           [&] { c.overlap_grad_reduce = false; });
    change(!atomRefusal(c.sync).empty(), "sync " + std::string(syncMethodName(c.sync.method)) + " -> all-reduce", [&] {
        const bool sparse = c.sync.sparse;
        c.sync = SyncAtom{};
        c.sync.sparse = sparse;
    });
    change(!c.layers.empty(), std::to_string(c.layers.size()) + " per-layer overrides dropped", [&] { c.layers.clear(); });
    return c;
}

std::string number(double v)
{
    std::ostringstream o;
    o.precision(4);
    o << v;
    return o.str();
}

// ds_config.json for the strategy `x`, noting what the training script must do for it.
json deepspeedConfig(const Model& m, const Strategy& x, std::vector<std::string>& notes)
{
    const int gradBytes = gradientBytesOf(x);
    json j;
    j["train_batch_size"] = x.global_batch;
    j["train_micro_batch_size_per_gpu"] = x.micro_batch;
    j["gradient_accumulation_steps"] = x.global_batch / (x.micro_batch * x.dp);
    j["steps_per_print"] = 10;
    if (x.precision == Precision::FP16)
        j["fp16"] = {{"enabled", true}};
    else if (x.precision == Precision::BF16)
        j["bf16"] = {{"enabled", true}};
    if (x.precision != Precision::FP32 && x.fp32_grad_accumulation)
        j["data_types"] = {{"grad_accum_dtype", "fp32"}};
    if (x.sync.compression == Compression::FP16)
        j["communication_data_type"] = "fp16";
    bool sparseTable = false;
    for (const Layer& l : m.layers)
        sparseTable |= l.kind == LayerKind::Embedding && l.sparse_grad;
    if (sparseTable && x.sync.sparse) {
        j["sparse_gradients"] = true;
        notes.push_back("sparse_gradients: the embeddings must be nn.Embedding(..., sparse=True) in the model code");
    }
    const int64_t bucket = x.bucket_bytes / gradBytes; // elements
    json zero{{"stage", x.zero_stage}, {"reduce_bucket_size", bucket}, {"allgather_bucket_size", bucket},
              {"overlap_comm", x.overlap_grad_reduce}, {"contiguous_gradients", true}};
    if (x.zero_stage == 3)
        zero["stage3_prefetch_bucket_size"] = bucket;
    j["zero_optimization"] = zero;
    if (x.tp > 1) {
        j["tensor_parallel"] = {{"autotp_size", x.tp}};
        notes.push_back("tensor_parallel.autotp_size: DeepSpeed's AutoTP training (v0.16.4 and later) splits "
                        "the model's linear layers");
    }
    if (x.pp > 1) {
        j["pipeline"] = {{"stages", x.pp}};
        notes.push_back("pipeline.stages: the model must be a deepspeed.pipe.PipelineModule(num_stages=" +
                        std::to_string(x.pp) + ")");
    }
    if (x.recompute == Recompute::Full) {
        j["activation_checkpointing"] = {{"partition_activations", false}, {"contiguous_memory_optimization", false}};
        notes.push_back("activation_checkpointing: each block's forward must run through "
                        "deepspeed.checkpointing.checkpoint");
    }
    return j;
}

// The hostfile: one line per node of the cluster, with its GPUs as slots.
std::string deepspeedHostfile(const Cluster& c, const Strategy& x, const ExportHeader& h)
{
    const int nodes = int(c.nodes.size());
    const int perNode = nodes ? int(c.nodes.front().devices.size()) : 1;
    std::ostringstream hf;
    hf << "# Generated by Partita " << h.version << " for strategy '" << x.name << "': one line per node.\n";
    for (int i = 0; i < nodes; ++i)
        hf << (c.nodes[size_t(i)].name.empty() ? "node-" + std::to_string(i) : c.nodes[size_t(i)].name) << " slots="
           << perNode << "\n";
    return hf.str();
}

// The launch script: the header, what changed, what the training script must do, and the deepspeed command.
std::string deepspeedLaunch(const Cluster& c, const Strategy& x, const ExportHeader& h, const DeepSpeedExport& out)
{
    const int nodes = int(c.nodes.size());
    const int perNode = nodes ? int(c.nodes.front().devices.size()) : 1;
    std::ostringstream sh;
    sh << "#!/usr/bin/env bash\n"
       << "# Generated by Partita " << h.version << " from strategy '" << x.name << "'"
       << (h.strategy_version.empty() ? "" : " (version " + h.strategy_version + ")") << " for DeepSpeed v0.18.9.\n";
    if (h.step_time_s > 0)
        sh << "# Predicted on " << h.cluster << ": " << number(h.step_time_s) << " s per step, "
           << number(h.peak_memory_bytes / 1073741824.0) << " GiB peak memory per GPU.\n";
    for (const auto& d : out.differences)
        sh << "# Changed to what DeepSpeed can run: " << d << "\n";
    for (const auto& n : out.notes)
        sh << "# The training script: " << n << "\n";
    if (x.sync.algorithm == AllReduceAlgo::Tree)
        sh << "export NCCL_ALGO=Tree\n";
    sh << "# TRAIN_SCRIPT is your training script (it calls deepspeed.initialize and reads --deepspeed_config).\n"
       << "deepspeed --hostfile hostfile --num_nodes " << nodes << " --num_gpus " << perNode
       << " \"${TRAIN_SCRIPT:-train.py}\" --deepspeed --deepspeed_config ds_config.json \"$@\"\n";
    return sh.str();
}

} // namespace

Result<DeepSpeedExport> exportDeepSpeed(const Model& m, const Cluster& c, const Strategy& s, const ExportHeader& h,
                                        bool closest)
{
    DeepSpeedExport out;
    out.exported = s;
    const std::vector<std::string> why = deepspeedRefusals(m, s);
    if (!why.empty()) {
        if (!closest) {
            std::string all;
            for (const auto& w : why)
                all += (all.empty() ? "" : "; ") + w;
            return Error{"strategy '" + s.name + "'", "DeepSpeed", all};
        }
        out.exported = closestDeepSpeed(s, out.differences);
    }
    const Strategy& x = out.exported;
    if (auto r = resolveStrategy(x, m, c); !r)
        return r.error();
    out.config = deepspeedConfig(m, x, out.notes).dump(2) + "\n";
    out.launch = deepspeedLaunch(c, x, h, out);
    out.hostfile = deepspeedHostfile(c, x, h);
    return out;
}

namespace {

// An integer key that may not be DeepSpeed's "auto" (the Hugging Face Trainer's placeholder).
int64_t intKey(const json& obj, const char* key, const std::string& path, int64_t fallback)
{
    const json* v = detail::optField(obj, key);
    if (!v)
        return fallback;
    if (v->is_string() && v->get<std::string>() == "auto")
        throw detail::FieldError(detail::sub(path, key), "is \"auto\" (the Hugging Face Trainer fills it in): "
                                                         "give a number to predict it");
    return detail::asInt(*v, detail::sub(path, key), 0, int64_t(1) << 40);
}

bool enabled(const json& j, const char* key)
{
    const json* v = detail::optField(j, key);
    if (!v || !v->is_object())
        return false;
    const json* e = detail::optField(*v, "enabled");
    if (e && e->is_string() && e->get<std::string>() == "auto")
        throw detail::FieldError(std::string("/") + key + "/enabled", "is \"auto\": say true or false");
    return e && detail::asBool(*e, std::string("/") + key + "/enabled");
}

// Reads AutoTP's and the pipeline's degrees, data parallelism taking the rest of the `world` GPUs.
std::optional<Error> readDeepSpeedMesh(const json& j, const std::string& file, int world, Strategy& s)
{
    int64_t tp = 1, pp = 1;
    if (const json* t = detail::optField(j, "tensor_parallel"))
        tp = std::max<int64_t>(1, intKey(detail::asObject(*t, "/tensor_parallel"), "autotp_size", "/tensor_parallel", 1));
    if (const json* p = detail::optField(j, "pipeline")) {
        const json& po = detail::asObject(*p, "/pipeline");
        if (const json* st = detail::optField(po, "stages"); st && !(st->is_string() && st->get<std::string>() == "auto"))
            pp = detail::asInt(*st, "/pipeline/stages", 1, 1 << 16);
    }
    if (world % (tp * pp) != 0)
        return Error{file, "/tensor_parallel/autotp_size",
                     "tp x pp = " + std::to_string(tp * pp) + " does not divide the " + std::to_string(world) + " GPUs"};
    s.tp = int(tp);
    s.pp = int(pp);
    s.dp = int(world / (tp * pp));
    return std::nullopt;
}

// Reads the micro-batch, accumulation and global batch, filling in what is left out by DeepSpeed's rule.
std::optional<Error> readDeepSpeedBatch(const json& j, const std::string& file, Strategy& s)
{
    const int64_t mb = intKey(j, "train_micro_batch_size_per_gpu", "", 0);
    const int64_t gas = intKey(j, "gradient_accumulation_steps", "", 0);
    const int64_t gb = intKey(j, "train_batch_size", "", 0);
    // DeepSpeed's rule: train_batch_size = micro-batch x accumulation x data-parallel size.
    int64_t micro = mb, accum = gas, batch = gb;
    if (!micro && batch && accum)
        micro = batch / (accum * s.dp);
    if (!accum && batch && micro)
        accum = batch / (micro * s.dp);
    if (!micro)
        micro = 1;
    if (!accum)
        accum = 1;
    if (!batch)
        batch = micro * accum * s.dp;
    if (batch != micro * accum * s.dp)
        return Error{file, "/train_batch_size",
                     "train_batch_size " + std::to_string(batch) + " is not train_micro_batch_size_per_gpu " +
                         std::to_string(micro) + " x gradient_accumulation_steps " + std::to_string(accum) +
                         " x data-parallel size " + std::to_string(s.dp) + " (DeepSpeed refuses it at start-up)"};
    s.micro_batch = micro;
    s.global_batch = batch;
    return std::nullopt;
}

// Reads the precision, fp32 gradient accumulation and how gradients are sent (fp16, sparse rows).
std::optional<Error> readDeepSpeedPrecision(const json& j, const std::string& file, Strategy& s)
{
    const bool fp16 = enabled(j, "fp16"), bf16 = enabled(j, "bf16") || enabled(j, "bfloat16");
    if (fp16 && bf16)
        return Error{file, "/fp16", "fp16 and bf16 both enabled: DeepSpeed refuses it"};
    s.precision = fp16 ? Precision::FP16 : bf16 ? Precision::BF16 : Precision::FP32;
    if (const json* dt = detail::optField(j, "data_types"))
        s.fp32_grad_accumulation = detail::getStringOr(detail::asObject(*dt, "/data_types"), "grad_accum_dtype",
                                                       "/data_types", "") == "fp32" &&
                                   s.precision != Precision::FP32;
    if (detail::getStringOr(j, "communication_data_type", "", "") == "fp16")
        s.sync.compression = Compression::FP16;
    s.sync.sparse = detail::getBoolOr(j, "sparse_gradients", "", false);
    return std::nullopt;
}

// Reads the ZeRO stage, its bucket and overlap, refusing ZeRO 2 and 3 with pipeline parallelism.
std::optional<Error> readDeepSpeedZero(const json& j, const std::string& file, Strategy& s,
                                       std::vector<std::string>& notes)
{
    const int gradBytes = gradientBytesOf(s);
    s.overlap_grad_reduce = false; // without ZeRO, after the backward
    if (const json* z = detail::optField(j, "zero_optimization")) {
        const json& zo = detail::asObject(*z, "/zero_optimization");
        s.zero_stage = int(intKey(zo, "stage", "/zero_optimization", 0));
        if (s.zero_stage > 3)
            throw detail::FieldError("/zero_optimization/stage", "expected 0 to 3");
        if (const int64_t b = intKey(zo, "reduce_bucket_size", "/zero_optimization", 0); b > 0)
            s.bucket_bytes = b * gradBytes;
        s.overlap_grad_reduce = s.zero_stage > 0 && detail::getBoolOr(zo, "overlap_comm", "/zero_optimization", false);
        if (detail::optField(zo, "offload_optimizer") || detail::optField(zo, "offload_param"))
            notes.push_back("zero_optimization offload: not modelled (the GPUs are costed as holding everything)");
    }
    if (s.pp > 1 && s.zero_stage >= 2)
        return Error{file, "/zero_optimization/stage",
                     "ZeRO stage " + std::to_string(s.zero_stage) + " with pipeline parallelism: DeepSpeed refuses it"};
    return std::nullopt;
}

// Notes the top-level keys DeepSpeed does not read.
void noteUnreadKeys(const json& j, std::vector<std::string>& notes)
{
    std::string unknown;
    const auto& known = deepspeedKeys();
    for (const auto& [key, value] : j.items())
        if (std::find(known.begin(), known.end(), key) == known.end())
            unknown += (unknown.empty() ? "" : ", ") + key;
    if (!unknown.empty())
        notes.push_back("keys DeepSpeed v0.18.9 does not read (it ignores them without a word): " + unknown);
}

} // namespace

Result<DeepSpeedImport> importDeepSpeed(const std::string& text, const std::string& file, int world)
{
    auto parsed = detail::parseJson(text, file);
    if (!parsed)
        return parsed.error();
    const json& j = *parsed;
    DeepSpeedImport out;
    Strategy& s = out.strategy;
    s.name = "DeepSpeed (" + file + ")";
    try {
        detail::asObject(j, "/");
        if (world <= 0)
            return Error{file, {}, "the number of GPUs is unknown: give a cluster"};
        if (auto e = readDeepSpeedMesh(j, file, world, s))
            return *e;
        if (auto e = readDeepSpeedBatch(j, file, s))
            return *e;
        if (auto e = readDeepSpeedPrecision(j, file, s))
            return *e;
        if (auto e = readDeepSpeedZero(j, file, s, out.notes))
            return *e;
        if (detail::optField(j, "activation_checkpointing"))
            s.recompute = Recompute::Full;
        if (text.find("\"optimizer\"") != std::string::npos)
            out.notes.push_back("optimizer: costed as Adam");
        noteUnreadKeys(j, out.notes);
    } catch (const detail::FieldError& e) {
        return Error{file, e.where.empty() ? "/" : e.where, e.what()};
    }
    return out;
}

const std::vector<std::string>& deepspeedKeys()
{
    static const std::vector<std::string> keys = detail::listLines(detail::kDeepSpeedKeys);
    return keys;
}

} // namespace partita
