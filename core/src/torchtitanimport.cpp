// A torchtitan v0.2.2 job TOML read into a model and a strategy (torchtitan.h),
// with torchtitan's defaults for what the file leaves out.
#include "partita/core/torchtitan.h"

#include "partita/core/modelio.h"

#include "tomlleaves.h"

#include <toml++/toml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

namespace partita {

namespace {

struct Reader
{
    const toml::table& t;
    const std::string& file;

    struct Fail
    {
        std::string where, what;
    };
    template <class T>
    T at(const std::string& path, T fallback, const char* kind) const
    {
        const toml::node_view<const toml::node> n = t.at_path(path);
        if (!n)
            return fallback;
        if (auto v = n.value_exact<T>())
            return *v;
        throw Fail{path, std::string("expected ") + kind};
    }
    // Integers are bounded (degrees, batches, lengths): what no job has is an error, not an overflow.
    int64_t integer(const std::string& path, int64_t fallback) const
    {
        const int64_t v = at<int64_t>(path, fallback, "an integer");
        if (v < -1 || v > (int64_t(1) << 30))
            throw Fail{path, std::to_string(v) + " is out of range"};
        return v;
    }
    std::string text(const std::string& path, const std::string& fallback) const
    {
        return at<std::string>(path, fallback, "a string");
    }
    bool flag(const std::string& path, bool fallback) const { return at<bool>(path, fallback, "true or false"); }
    std::vector<std::string> strings(const std::string& path) const
    {
        std::vector<std::string> out;
        const toml::node_view<const toml::node> n = t.at_path(path);
        if (!n)
            return out;
        const toml::array* a = n.as_array();
        if (!a)
            throw Fail{path, "expected an array of strings"};
        for (const toml::node& e : *a) {
            if (!e.is_string())
                throw Fail{path, "expected an array of strings"};
            out.push_back(*e.value<std::string>());
        }
        return out;
    }
};

// Blocks per stage as torchtitan's generate_llm_fqn_per_model_part splits
// them: the embedding weighs `in` layers on the first stage, norm and output
// `out` on the last, the rest spread with the remainder on the first stages.
std::vector<int> torchtitanSplit(int stages, int layers, int in, int out)
{
    if (stages == 1)
        return {layers};
    const int effective = layers + in + out, per = effective / stages, extra = effective % stages;
    if (stages > effective || per == 0 || in > per || out > per)
        throw Reader::Fail{"parallelism.pipeline_parallel_first_stage_less_layers",
                           std::to_string(stages) + " stages of " + std::to_string(layers) + " layers with weights " +
                               std::to_string(in) + " and " + std::to_string(out) +
                               " leave a stage empty (torchtitan refuses it)"};
    std::vector<int> counts;
    for (int i = 0; i < stages; ++i) {
        const int eff = per + (i < extra ? 1 : 0);
        counts.push_back(i == 0 ? eff - in : i == stages - 1 ? eff - out : eff);
    }
    return counts;
}

// Blocks per stage from module_fqns_per_model_part: each part's "layers.N", in order and contiguous.
std::vector<int> splitFromParts(const toml::array& parts, int layers)
{
    std::vector<int> counts;
    int next = 0;
    for (const toml::node& part : parts) {
        const toml::array* names = part.as_array();
        if (!names)
            throw Reader::Fail{"parallelism.module_fqns_per_model_part", "expected an array of arrays of module names"};
        int n = 0;
        for (const toml::node& name : *names) {
            const std::string s = name.value<std::string>().value_or("");
            if (s.rfind("layers.", 0) != 0)
                continue;
            const std::string digits = s.substr(7);
            if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
                std::stoi(digits) != next)
                throw Reader::Fail{"parallelism.module_fqns_per_model_part",
                                   "'" + s + "' out of order: the layers must follow one another, layers." +
                                       std::to_string(next) + " next"};
            ++next, ++n;
        }
        counts.push_back(n);
    }
    if (next != layers)
        throw Reader::Fail{"parallelism.module_fqns_per_model_part",
                           "places " + std::to_string(next) + " of the model's " + std::to_string(layers) + " layers"};
    return counts;
}

// The counts as Partita's strategy says them: even (nothing), uneven first and
// last stages, or each block's stage.
void applySplit(Strategy& s, const std::vector<int>& counts, int blocks)
{
    const int V = int(counts.size());
    std::vector<int> even(size_t(V), 0);
    for (int b = 0; b < blocks; ++b)
        ++even[size_t(int64_t(b) * V / blocks)];
    if (counts == even || V == 1)
        return;
    const bool middleEqual = V == 2 || std::all_of(counts.begin() + 1, counts.end() - 1, [&](int c) { return c == counts[1]; });
    if (s.interleave == 1 && middleEqual && counts.front() > 0 && counts.back() > 0) {
        s.first_stage_blocks = counts.front();
        s.last_stage_blocks = counts.back();
        return;
    }
    int b = 0;
    for (int v = 0; v < V; ++v)
        for (int k = 0; k < counts[size_t(v)]; ++k, ++b) {
            LayerOverride o;
            o.pattern = "layers." + std::to_string(b) + ".*";
            o.stage = v;
            s.layers.push_back(o);
        }
}

Model flavorModel(const Reader& r, int64_t seq, const std::string& file)
{
    const std::string name = r.text("model.name", "llama3"), flavor = r.text("model.flavor", "debugmodel");
    if (name != "llama3")
        throw Reader::Fail{"model.name", "'" + name + "': Partita reads torchtitan's llama3 flavors"};
    const auto& all = torchtitanFlavors();
    const auto f = std::find_if(all.begin(), all.end(), [&](const TorchtitanFlavor& x) { return x.name == flavor; });
    if (f == all.end()) {
        std::string names;
        for (const auto& x : all)
            names += (names.empty() ? "" : ", ") + x.name;
        throw Reader::Fail{"model.flavor", "'" + flavor + "' is none of llama3's flavors at v0.2.2 (" + names + ")"};
    }
    const nlohmann::json cfg{{"model_type", "llama"},         {"hidden_size", f->dim},
                             {"intermediate_size", f->ffn},   {"num_attention_heads", f->heads},
                             {"num_key_value_heads", f->kv_heads}, {"num_hidden_layers", f->layers},
                             {"vocab_size", f->vocab},        {"max_position_embeddings", seq},
                             {"tie_word_embeddings", false},  {"_name_or_path", "torchtitan llama3 " + f->name}};
    auto m = modelFromHfConfig(cfg.dump(), file);
    if (!m)
        throw Reader::Fail{"model.flavor", m.error().message};
    return *m;
}

void readDataParallel(const Reader& r, Strategy& s, int devices, std::vector<std::string>& notes)
{
    const int rep = int(r.integer("parallelism.data_parallel_replicate_degree", 1));
    int shard = int(r.integer("parallelism.data_parallel_shard_degree", -1));
    if (rep < 1 || rep > 65536)
        throw Reader::Fail{"parallelism.data_parallel_replicate_degree", "must be 1 to 65,536"};
    const int64_t rest = int64_t(rep) * s.tp * s.pp * s.cp;
    if (shard == -1) {
        if (devices <= 0)
            throw Reader::Fail{"parallelism.data_parallel_shard_degree",
                               "-1 takes the ranks left over: give the cluster the job runs on"};
        if (devices % rest != 0)
            throw Reader::Fail{"parallelism.data_parallel_shard_degree",
                               std::to_string(devices) + " GPUs do not divide by the other degrees (" +
                                   std::to_string(rest) + ")"};
        shard = int(devices / rest);
    }
    if (rep < 1 || shard < 1 || rep > 65536 || shard > 65536 || int64_t(rep) * shard * s.tp * s.pp * s.cp > (int64_t(1) << 24))
        throw Reader::Fail{"parallelism", "data-parallel degrees must be 1 to 65,536 (shard: or -1), and all the "
                                          "degrees at most 2^24 ranks together"};
    if (rep > 1 && shard > 1)
        throw Reader::Fail{"parallelism.data_parallel_replicate_degree",
                           "HSDP (replicate x shard) is not modelled: Partita shards ZeRO over every data-parallel rank"};
    s.dp = std::max(rep, shard);
    if (shard > 1) {
        const std::string policy = r.text("parallelism.fsdp_reshard_after_forward", "default");
        if (policy != "default" && policy != "always" && policy != "never")
            throw Reader::Fail{"parallelism.fsdp_reshard_after_forward", "'" + policy + "' is none of default, always, never"};
        // "default": torchtitan reshards after the forward unless pipelining.
        s.zero_stage = policy == "never" || (policy == "default" && s.pp > 1) ? 2 : 3;
        s.overlap_param_gather = s.zero_stage == 2;
        if (policy == "default")
            notes.push_back("fsdp_reshard_after_forward \"default\": " +
                            std::string(s.pp > 1 ? "kept after the forward with pipelining (ZeRO-2)" : "resharded (ZeRO-3)"));
    }
}

void readPipeline(const Reader& r, Strategy& s, int layers)
{
    if (s.pp == 1)
        return;
    const std::string sched = r.text("parallelism.pipeline_parallel_schedule", "1F1B");
    const toml::array* parts = r.t.at_path("parallelism.module_fqns_per_model_part").as_array();
    if (sched == "Interleaved1F1B") {
        s.schedule = PipelineSchedule::Interleaved;
        const int64_t lps = r.integer("parallelism.pipeline_parallel_layers_per_stage", 0);
        const int stages = parts ? int(parts->size()) : lps > 0 ? int((layers + lps - 1) / lps) : 0;
        if (stages < 2 * s.pp || stages % s.pp != 0)
            throw Reader::Fail{"parallelism.pipeline_parallel_schedule",
                               "Interleaved1F1B needs a multiple of pipeline_parallel_degree stages: give "
                               "pipeline_parallel_layers_per_stage or module_fqns_per_model_part"};
        s.interleave = stages / s.pp;
    } else if (sched == "1F1B" || sched == "GPipe") {
        s.schedule = sched == "GPipe" ? PipelineSchedule::GPipe : PipelineSchedule::OneFOneB;
    } else {
        throw Reader::Fail{"parallelism.pipeline_parallel_schedule",
                           "'" + sched + "' is not modelled (1F1B, GPipe and Interleaved1F1B are)"};
    }
    const int V = s.pp * s.interleave;
    const std::vector<int> counts =
        parts ? splitFromParts(*parts, layers)
              : torchtitanSplit(V, layers, int(r.integer("parallelism.pipeline_parallel_first_stage_less_layers", 1)),
                                int(r.integer("parallelism.pipeline_parallel_last_stage_less_layers", 1)));
    if (int(counts.size()) != V)
        throw Reader::Fail{"parallelism.module_fqns_per_model_part",
                           std::to_string(counts.size()) + " parts for " + std::to_string(V) + " stages"};
    applySplit(s, counts, layers);
}

void readPrecisionAndRest(const Reader& r, Strategy& s, std::vector<std::string>& notes)
{
    const auto converters = r.strings("model.converters");
    const bool fp8 = std::find(converters.begin(), converters.end(), "quantize.linear.float8") != converters.end();
    const std::string param = r.text("training.mixed_precision_param", "bfloat16");
    if (param != "bfloat16" && param != "float32")
        throw Reader::Fail{"training.mixed_precision_param", "'" + param + "' is none of bfloat16, float32"};
    s.precision = fp8 ? Precision::FP8 : param == "float32" ? Precision::FP32 : Precision::BF16;
    s.fp32_grad_accumulation = s.precision != Precision::FP32; // mixed_precision_reduce is float32
    const std::string mode = r.text("activation_checkpoint.mode", "selective");
    if (mode != "none" && mode != "selective" && mode != "full" && mode != "memory_budget")
        throw Reader::Fail{"activation_checkpoint.mode", "'" + mode + "' is none of none, selective, full, memory_budget"};
    s.recompute = mode == "full" ? Recompute::Full : mode == "none" ? Recompute::None : Recompute::Selective;
    if (mode == "memory_budget")
        notes.push_back("activation_checkpoint.mode \"memory_budget\" is modelled as selective recomputation");
    s.sequence_parallel = s.tp > 1;
    const bool async = r.flag("parallelism.enable_async_tensor_parallel", false);
    s.tp_comm_overlap = s.sequence_parallel && async && r.flag("compile.enable", false);
    if (async && !s.tp_comm_overlap)
        notes.push_back(s.tp > 1 ? "enable_async_tensor_parallel without a compiled model: torchtitan refuses it "
                                   "(see lint-config); modelled without the overlap"
                                 : "enable_async_tensor_parallel with tp 1: nothing to overlap");
    if (s.cp > 1) {
        s.cp_comm = ContextComm::AllGather;
        if (r.text("parallelism.context_parallel_rotate_method", "allgather") == "alltoall")
            notes.push_back("context_parallel_rotate_method \"alltoall\" is modelled as an all-gather of K/V");
    }
    s.sync.sparse = false;
}

} // namespace

Result<TorchtitanImport> importTorchtitan(const std::string& text, const std::string& file, int devices)
{
    toml::table t;
    try {
        t = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        return Error{file,
                     "line " + std::to_string(e.source().begin.line) + ", column " +
                         std::to_string(e.source().begin.column),
                     std::string(e.description())};
    }
    const Reader r{t, file};
    TorchtitanImport out;
    try {
        out.seq_len = r.integer("training.seq_len", 2048);
        if (out.seq_len < 1)
            throw Reader::Fail{"training.seq_len", "must be at least 1"};
        out.model = flavorModel(r, out.seq_len, file);
        Strategy& s = out.strategy;
        s.name = "torchtitan " + r.text("model.flavor", "debugmodel");
        s.tp = int(r.integer("parallelism.tensor_parallel_degree", 1));
        s.pp = int(r.integer("parallelism.pipeline_parallel_degree", 1));
        s.cp = int(r.integer("parallelism.context_parallel_degree", 1));
        if (s.tp < 1 || s.pp < 1 || s.cp < 1 || s.tp > 65536 || s.pp > 65536 || s.cp > 65536)
            throw Reader::Fail{"parallelism", "tensor, pipeline and context degrees must be 1 to 65,536"};
        if (r.integer("parallelism.expert_parallel_degree", 1) != 1)
            throw Reader::Fail{"parallelism.expert_parallel_degree", "Llama 3 has no experts"};
        readDataParallel(r, s, devices, out.notes);
        out.world = s.dp * s.tp * s.pp * s.cp;
        if (devices > 0 && out.world != devices)
            throw Reader::Fail{"parallelism", "the degrees make " + std::to_string(out.world) + " ranks, the cluster has " +
                                                  std::to_string(devices) + " GPUs"};
        const int64_t local = r.integer("training.local_batch_size", 8);
        const int64_t global = r.integer("training.global_batch_size", -1);
        s.global_batch = global > 0 ? global : local * s.dp;
        if (local < 1 || s.global_batch % (local * s.dp) != 0)
            throw Reader::Fail{"training.global_batch_size", std::to_string(s.global_batch) +
                                                                 " is no multiple of local_batch_size x data-parallel "
                                                                 "degree (" + std::to_string(local * s.dp) + ")"};
        s.micro_batch = s.pp > 1 ? r.integer("parallelism.pipeline_parallel_microbatch_size", 1) : local;
        if (s.micro_batch < 1 || local % s.micro_batch != 0)
            throw Reader::Fail{"parallelism.pipeline_parallel_microbatch_size",
                               "must divide local_batch_size (" + std::to_string(local) + ")"};
        readPipeline(r, s, int(out.model.dims.layers));
        readPrecisionAndRest(r, s, out.notes);
    } catch (const Reader::Fail& f) {
        return Error{file, f.where, f.what};
    }
    std::vector<std::string> keys, unknown;
    detail::tomlLeaves(t, "", keys);
    const auto& known = torchtitanKeys();
    const std::set<std::string> knownSet(known.begin(), known.end());
    for (const auto& k : keys)
        if (!knownSet.count(k))
            unknown.push_back(k);
    if (!unknown.empty()) {
        std::string list;
        for (const auto& k : unknown)
            list += (list.empty() ? "" : ", ") + k;
        out.notes.push_back("keys torchtitan v0.2.2 does not know (it would refuse them): " + list);
    }
    return out;
}

} // namespace partita
