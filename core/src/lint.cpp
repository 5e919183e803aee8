// The start-up rules of Megatron-LM core_r0.10.0 (megatron/training/arguments.py,
// validate_args) and DeepSpeed v0.18.9 (runtime/config.py, _batch_assertion;
// the 1-bit optimizers' ZeRO restriction in their documentation), collected
// rather than stopping at the first.
#include "partita/core/lint.h"
#include "partita/core/deepspeed.h"

#include "partita/core/megatron.h"

#include "jsonread.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace partita {

namespace {

using Kind = LintFinding::Kind;

std::string str(int64_t v)
{
    return std::to_string(v);
}

// One Megatron-LM command line's flags, and the findings about them so far.
struct MegatronLint
{
    const std::map<std::string, std::string>& flags;
    std::vector<LintFinding>& out;

    // Records a finding.
    void add(Kind k, const std::string& where, const std::string& msg, const std::string& fix)
    {
        out.push_back({k, where, msg, fix});
    }

    // Whether the command line gives the flag at all.
    bool has(const char* k) const { return flags.count(k) > 0; }

    // The flag's whole-number value (the fallback where it is not given); nullopt, with a finding, where malformed.
    std::optional<int64_t> integer(const char* k, int64_t fallback)
    {
        auto it = flags.find(k);
        if (it == flags.end())
            return fallback;
        const std::string& v = it->second;
        if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos) {
            add(Kind::Refused, k, "value '" + v + "' is not a whole number",
                v.find('$') != std::string::npos ? "set the shell variable in the script" : "give a number");
            return std::nullopt;
        }
        return std::stoll(v);
    }
};

// The sizes the rules check, each as given or its default.
struct MegatronSizes
{
    int64_t L, h, a, groups, seq, tp, pp, cp, ep, mb, gb, vp, experts, first, last;
};

// Reads the sizes, noting each malformed and each missing one; nullopt where any is malformed.
std::optional<MegatronSizes> readMegatronSizes(MegatronLint& lint)
{
    auto integer = [&](const char* k, int64_t fallback) { return lint.integer(k, fallback); };
    const auto L = integer("--num-layers", 0), h = integer("--hidden-size", 0), a = integer("--num-attention-heads", 0),
               groups = integer("--num-query-groups", 0), seq = integer("--seq-length", 0),
               tp = integer("--tensor-model-parallel-size", 1), pp = integer("--pipeline-model-parallel-size", 1),
               cp = integer("--context-parallel-size", 1), ep = integer("--expert-model-parallel-size", 1),
               mb = integer("--micro-batch-size", 1), gb = integer("--global-batch-size", 0),
               vp = integer("--num-layers-per-virtual-pipeline-stage", 0), experts = integer("--num-experts", 0),
               first = integer("--decoder-first-pipeline-num-layers", 0),
               last = integer("--decoder-last-pipeline-num-layers", 0);
    for (const char* k : {"--num-layers", "--hidden-size", "--num-attention-heads", "--seq-length"})
        if (!lint.has(k))
            lint.add(Kind::Refused, k, "missing", "give the model's " + std::string(k + 2));
    if (!L || !h || !a || !groups || !seq || !tp || !pp || !cp || !ep || !mb || !gb || !vp || !experts || !first || !last)
        return std::nullopt;
    return MegatronSizes{*L, *h, *a, *groups, *seq, *tp, *pp, *cp, *ep, *mb, *gb, *vp, *experts, *first, *last};
}

// Checks that heads, query groups, hidden size, layers and sequence split as the parallel degrees ask.
void checkModelSplit(MegatronLint& lint, const MegatronSizes& s)
{
    if (s.a && s.a % s.tp)
        lint.add(Kind::Refused, "--tensor-model-parallel-size",
                 str(s.tp) + " does not divide --num-attention-heads " + str(s.a),
                 "a tensor-parallel size that divides the heads");
    if (lint.has("--group-query-attention") && s.groups && s.groups % s.tp)
        lint.add(Kind::Refused, "--num-query-groups",
                 str(s.groups) + " query groups are not divisible by tensor-parallel size " + str(s.tp),
                 "a tensor-parallel size that divides the query groups");
    if (s.h && s.a && s.h % s.a && !lint.has("--kv-channels"))
        lint.add(Kind::Refused, "--hidden-size", str(s.h) + " is not divisible by --num-attention-heads " + str(s.a),
                 "give --kv-channels or matching sizes");
    const bool uneven = s.first > 0 || s.last > 0;
    if (s.L && !uneven && s.L % s.pp)
        lint.add(Kind::Refused, "--num-layers", str(s.L) + " layers do not divide over " + str(s.pp) + " pipeline stages",
                 "a pipeline size that divides the layers, or --decoder-first/last-pipeline-num-layers");
    if (s.vp > 0) {
        if (s.pp < 2)
            lint.add(Kind::Refused, "--num-layers-per-virtual-pipeline-stage", "virtual stages need pipeline parallelism",
                     "drop it, or use --pipeline-model-parallel-size 2 or more");
        else if (s.L && (s.L / s.pp) % s.vp)
            lint.add(Kind::Refused, "--num-layers-per-virtual-pipeline-stage",
                     str(s.vp) + " does not divide the " + str(s.L / s.pp) + " layers of a pipeline stage",
                     "a divisor of " + str(s.L / s.pp));
    }
    if (s.cp > 1 && s.seq && s.seq % (2 * s.cp))
        lint.add(Kind::Refused, "--seq-length",
                 str(s.seq) + " is not divisible by 2 x --context-parallel-size = " + str(2 * s.cp),
                 "a sequence length that is a multiple of " + str(2 * s.cp));
}

// Checks the switches that need another flag, or do nothing without one.
void checkSwitches(MegatronLint& lint, const MegatronSizes& s)
{
    if (lint.has("--sequence-parallel") && s.tp == 1)
        lint.add(Kind::Unnoticed, "--sequence-parallel",
                 "has no effect with --tensor-model-parallel-size 1 (Megatron-LM turns it off)",
                 "drop it, or use tensor parallelism");
    if (lint.has("--tp-comm-overlap") && (!lint.has("--sequence-parallel") || s.tp == 1))
        lint.add(Kind::Refused, "--tp-comm-overlap", "needs --sequence-parallel with tensor parallelism",
                 "add --sequence-parallel, or drop it");
    if (lint.has("--overlap-param-gather") && !lint.has("--use-distributed-optimizer"))
        lint.add(Kind::Refused, "--overlap-param-gather", "needs --use-distributed-optimizer",
                 "add --use-distributed-optimizer");
    if (lint.has("--fp16") && lint.has("--bf16"))
        lint.add(Kind::Refused, "--fp16", "--fp16 and --bf16 together", "keep one");
}

// Checks that the mesh divides the `w` GPUs, and that the batch and the experts divide over what it leaves.
void checkWorldSplit(MegatronLint& lint, const MegatronSizes& s, int64_t w)
{
    const int64_t split = s.tp * s.pp * s.cp;
    if (w % split)
        lint.add(Kind::Refused, "--tensor-model-parallel-size",
                 "tp x pp x cp = " + str(split) + " does not divide the " + str(w) + " GPUs",
                 "sizes whose product divides the GPUs");
    else {
        const int64_t dp = w / split;
        if (s.gb > 0 && s.gb % (s.mb * dp))
            lint.add(Kind::Refused, "--global-batch-size",
                     str(s.gb) + " is not divisible by --micro-batch-size x data-parallel size = " + str(s.mb * dp),
                     "a multiple of " + str(s.mb * dp));
        else if (s.gb > 0 && s.vp > 0 && (s.gb / (s.mb * dp)) % s.pp)
            lint.add(Kind::Refused, "--global-batch-size",
                     str(s.gb / (s.mb * dp)) + " micro-batches are not a multiple of the " + str(s.pp) +
                         " pipeline stages the interleaved schedule needs",
                     "a global batch of a multiple of " + str(s.mb * dp * s.pp));
        if (s.ep > 1 && (dp * s.cp) % s.ep)
            lint.add(Kind::Refused, "--expert-model-parallel-size",
                     str(s.ep) + " does not divide the data-parallel x context-parallel size " + str(dp * s.cp),
                     "a divisor");
    }
}

} // namespace

std::vector<LintFinding> lintMegatron(const std::string& text, int world)
{
    std::vector<LintFinding> out;
    const MegatronFlags parsed = megatronFlags(text);
    MegatronLint lint{parsed.flags, out};
    const std::optional<MegatronSizes> sizes = readMegatronSizes(lint);
    if (!sizes)
        return out;
    const MegatronSizes& s = *sizes;
    const int64_t w = world > 0 ? world : int64_t(parsed.nnodes) * parsed.nproc;
    if (s.tp < 1 || s.pp < 1 || s.cp < 1 || s.ep < 1 || s.mb < 1) {
        lint.add(Kind::Refused, "--micro-batch-size", "parallel degrees and the micro-batch must be at least 1",
                 "use 1 or more");
        return out;
    }
    checkModelSplit(lint, s);
    checkSwitches(lint, s);
    if (s.experts > 0 && s.experts % s.ep)
        lint.add(Kind::Refused, "--expert-model-parallel-size",
                 str(s.ep) + " does not divide --num-experts " + str(s.experts), "a divisor of the experts");
    if (w > 0)
        checkWorldSplit(lint, s, w);
    return out;
}

namespace {
void lintDeepSpeedObject(const detail::json& j, int world, std::vector<LintFinding>& out);
}

std::vector<LintFinding> lintDeepSpeed(const std::string& text, int world)
{
    std::vector<LintFinding> out;
    auto parsed = detail::parseJson(text, "ds_config.json");
    if (!parsed) {
        out.push_back({Kind::Refused, parsed.error().where, parsed.error().message, "fix the JSON"});
        return out;
    }
    const auto& j = *parsed;
    if (!j.is_object()) {
        out.push_back({Kind::Refused, "/", "not a JSON object", "a ds_config.json is one object"});
        return out;
    }
    try {
        lintDeepSpeedObject(j, world, out);
    } catch (const detail::FieldError& e) {
        out.push_back({Kind::Refused, e.where, e.what(), "fix the value"});
    }
    return out;
}

namespace {

// DeepSpeedZeroConfig's fields and their aliases, DeepSpeed v0.18.9 (8c93851),
// deepspeed/runtime/zero/config.py: a pydantic model with extra="forbid"
// (deepspeed/runtime/config_utils.py), so any other key stops DeepSpeed.
const std::set<std::string>& zeroKeys()
{
    static const std::set<std::string> keys{
        "allgather_bucket_size", "allgather_partitions", "allgather_sequential", "contiguous_gradients", "cpu_offload",
        "cpu_offload_param", "cpu_offload_use_pin_memory", "elastic_checkpoint", "enable_sanity_checks",
        "gather_16bit_weights_on_model_save", "ignore_unused_parameters", "leaf_module", "legacy_stage1",
        "load_from_fp32_weights", "log_trace_cache_warnings", "max_live_parameters", "max_reuse_distance",
        "memory_efficient_linear", "mics_hierarchical_params_gather", "mics_shard_size", "model_persistence_threshold",
        "module_granularity_threshold", "offload_optimizer", "offload_param", "overlap_comm", "override_module_apply",
        "param_persistence_threshold", "pipeline_loading_checkpoint", "prefetch_bucket_size", "reduce_bucket_size",
        "reduce_scatter", "round_robin_gradients", "save_muon_momentum_buffer_in_memory", "stage",
        "stage3_gather_fp16_weights_on_model_save", "sub_group_size", "use_all_reduce_for_fetch_params",
        "use_multi_rank_bucket_allreduce", "zenflow", "zero_hpz_partition_size", "zero_quantized_gradients",
        "zero_quantized_nontrainable_weights", "zero_quantized_weights", "zeropp_loco_param",
        // aliases
        "stage3_allgather_sequential", "stage3_gather_16bit_weights_on_model_save", "stage3_max_live_parameters",
        "stage3_max_reuse_distance", "stage3_model_persistence_threshold", "stage3_module_granularity_threshold",
        "stage3_param_persistence_threshold", "stage3_prefetch_bucket_size", "stage3_use_all_reduce_for_fetch_params"};
    return keys;
}

void lintDeepSpeedObject(const detail::json& j, int world, std::vector<LintFinding>& out)
{
    auto num = [&](const detail::json& o, const char* key, const std::string& path) -> std::optional<int64_t> {
        const detail::json* v = detail::optField(o, key);
        if (!v)
            return std::nullopt;
        if (v->is_string() && v->get<std::string>() == "auto") {
            out.push_back({Kind::Unnoticed, path + "/" + key, "is \"auto\": only the Hugging Face Trainer fills it in",
                           "give a number when launching with deepspeed"});
            return std::nullopt;
        }
        if (!v->is_number_integer()) {
            out.push_back({Kind::Refused, path + "/" + key, "expected a whole number", "give a number"});
            return std::nullopt;
        }
        return v->get<int64_t>();
    };
    const auto gb = num(j, "train_batch_size", ""), mb = num(j, "train_micro_batch_size_per_gpu", ""),
               gas = num(j, "gradient_accumulation_steps", "");
    int64_t tp = 1, pp = 1, stage = 0;
    if (const auto* t = detail::optField(j, "tensor_parallel"); t && t->is_object())
        tp = num(*t, "autotp_size", "/tensor_parallel").value_or(1);
    if (const auto* p = detail::optField(j, "pipeline"); p && p->is_object())
        pp = num(*p, "stages", "/pipeline").value_or(1);
    if (const auto* z = detail::optField(j, "zero_optimization"); z && z->is_object()) {
        stage = num(*z, "stage", "/zero_optimization").value_or(0);
        if (stage < 0 || stage > 3)
            out.push_back({Kind::Refused, "/zero_optimization/stage", "stage " + str(stage) + " does not exist", "0 to 3"});
        for (const auto& [key, value] : z->items())
            if (!zeroKeys().count(key))
                out.push_back({Kind::Refused, "/zero_optimization/" + key,
                               "DeepSpeed v0.18.9 refuses keys its ZeRO configuration does not define (pydantic "
                               "extra=\"forbid\")",
                               "remove it, or spell one of DeepSpeedZeroConfig's fields"});
    }
    const int64_t dp = world > 0 && tp > 0 && pp > 0 && world % (tp * pp) == 0 ? world / (tp * pp) : 0;
    if (world > 0 && !dp)
        out.push_back({Kind::Refused, "/tensor_parallel/autotp_size",
                       "tensor x pipeline = " + str(tp * pp) + " does not divide the " + str(world) + " GPUs",
                       "sizes whose product divides the GPUs"});
    if (gb && mb && gas && dp && *gb != *mb * *gas * dp)
        out.push_back({Kind::Refused, "/train_batch_size",
                       str(*gb) + " is not train_micro_batch_size_per_gpu " + str(*mb) + " x gradient_accumulation_steps " +
                           str(*gas) + " x data-parallel size " + str(dp),
                       "train_batch_size " + str(*mb * *gas * dp) + ", or drop one of the three and let DeepSpeed derive it"});
    else if (gb && mb && !gas && dp && *gb % (*mb * dp))
        out.push_back({Kind::Refused, "/train_batch_size",
                       str(*gb) + " is not a multiple of the micro-batch x data-parallel size " + str(*mb * dp),
                       "a multiple of " + str(*mb * dp)});
    auto enabled = [&](const char* key) {
        const auto* v = detail::optField(j, key);
        const auto* e = v && v->is_object() ? detail::optField(*v, "enabled") : nullptr;
        return e && e->is_boolean() && e->get<bool>();
    };
    if (enabled("fp16") && enabled("bf16"))
        out.push_back({Kind::Refused, "/fp16/enabled", "fp16 and bf16 both enabled", "enable one"});
    if (pp > 1 && stage >= 2)
        out.push_back({Kind::Refused, "/zero_optimization/stage",
                       "ZeRO stage " + str(stage) + " with " + str(pp) + " pipeline stages: the pipeline engine runs stage 0 or 1",
                       "stage 1, or no pipeline"});
    if (const auto* o = detail::optField(j, "optimizer"); o && o->is_object()) {
        const std::string type = detail::getStringOr(*o, "type", "/optimizer", "");
        if ((type == "OneBitAdam" || type == "OneBitLamb" || type == "ZeroOneAdam") && stage > 0)
            out.push_back({Kind::Refused, "/optimizer/type",
                           type + " with ZeRO stage " + str(stage) + ": DeepSpeed's 1-bit optimizers run without ZeRO",
                           "zero_optimization.stage 0, or Adam"});
    }
    const auto& known = deepspeedKeys();
    for (const auto& [key, value] : j.items())
        if (std::find(known.begin(), known.end(), key) == known.end())
            out.push_back({Kind::Unnoticed, "/" + key, "DeepSpeed v0.18.9 reads no such top-level key: it is ignored",
                           "remove it, or spell one of DeepSpeed's keys"});
    if (stage == 0 && dp > 1)
        if (const auto* z = detail::optField(j, "zero_optimization"); z && z->is_object())
            if (const auto* oc = detail::optField(*z, "overlap_comm"); oc && oc->is_boolean() && oc->get<bool>())
                out.push_back({Kind::Unnoticed, "/zero_optimization/overlap_comm",
                               "true with stage 0: overlap_comm is ZeRO's; gradients are reduced after the backward",
                               "ZeRO stage 1 or more to overlap"});
}

} // namespace

} // namespace partita
