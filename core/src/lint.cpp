// The start-up rules of Megatron-LM core_r0.10.0 (megatron/training/arguments.py,
// validate_args) and DeepSpeed v0.18.9 (runtime/config.py, _batch_assertion;
// the 1-bit optimizers' ZeRO restriction in their documentation), collected
// rather than stopping at the first.
#include "partita/core/lint.h"
#include "partita/core/deepspeed.h"

#include "partita/core/megatron.h"

#include "jsonread.h"

#include <algorithm>
#include <optional>
#include <set>

namespace partita {

namespace {

using Kind = LintFinding::Kind;

std::string str(int64_t v)
{
    return std::to_string(v);
}

} // namespace

std::vector<LintFinding> lintMegatron(const std::string& text, int world)
{
    std::vector<LintFinding> out;
    const MegatronFlags parsed = megatronFlags(text);
    const auto& flags = parsed.flags;
    auto add = [&](Kind k, const std::string& where, const std::string& msg, const std::string& fix) {
        out.push_back({k, where, msg, fix});
    };
    auto has = [&](const char* k) { return flags.count(k) > 0; };
    auto integer = [&](const char* k, int64_t fallback) -> std::optional<int64_t> {
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
    };
    const auto L = integer("--num-layers", 0), h = integer("--hidden-size", 0), a = integer("--num-attention-heads", 0),
               groups = integer("--num-query-groups", 0), seq = integer("--seq-length", 0),
               tp = integer("--tensor-model-parallel-size", 1), pp = integer("--pipeline-model-parallel-size", 1),
               cp = integer("--context-parallel-size", 1), ep = integer("--expert-model-parallel-size", 1),
               mb = integer("--micro-batch-size", 1), gb = integer("--global-batch-size", 0),
               vp = integer("--num-layers-per-virtual-pipeline-stage", 0), experts = integer("--num-experts", 0),
               first = integer("--decoder-first-pipeline-num-layers", 0),
               last = integer("--decoder-last-pipeline-num-layers", 0);
    for (const char* k : {"--num-layers", "--hidden-size", "--num-attention-heads", "--seq-length"})
        if (!has(k))
            add(Kind::Refused, k, "missing", "give the model's " + std::string(k + 2));
    if (!L || !h || !a || !groups || !seq || !tp || !pp || !cp || !ep || !mb || !gb || !vp || !experts || !first || !last)
        return out;
    const int64_t w = world > 0 ? world : int64_t(parsed.nnodes) * parsed.nproc;
    if (*tp < 1 || *pp < 1 || *cp < 1 || *ep < 1 || *mb < 1) {
        add(Kind::Refused, "--micro-batch-size", "parallel degrees and the micro-batch must be at least 1", "use 1 or more");
        return out;
    }
    if (*a && *a % *tp)
        add(Kind::Refused, "--tensor-model-parallel-size",
            str(*tp) + " does not divide --num-attention-heads " + str(*a),
            "a tensor-parallel size that divides the heads");
    if (has("--group-query-attention") && *groups && *groups % *tp)
        add(Kind::Refused, "--num-query-groups", str(*groups) + " query groups are not divisible by tensor-parallel size " + str(*tp),
            "a tensor-parallel size that divides the query groups");
    if (*h && *a && *h % *a && !has("--kv-channels"))
        add(Kind::Refused, "--hidden-size", str(*h) + " is not divisible by --num-attention-heads " + str(*a),
            "give --kv-channels or matching sizes");
    const bool uneven = *first > 0 || *last > 0;
    if (*L && !uneven && *L % *pp)
        add(Kind::Refused, "--num-layers", str(*L) + " layers do not divide over " + str(*pp) + " pipeline stages",
            "a pipeline size that divides the layers, or --decoder-first/last-pipeline-num-layers");
    if (*vp > 0) {
        if (*pp < 2)
            add(Kind::Refused, "--num-layers-per-virtual-pipeline-stage", "virtual stages need pipeline parallelism",
                "drop it, or use --pipeline-model-parallel-size 2 or more");
        else if (*L && (*L / *pp) % *vp)
            add(Kind::Refused, "--num-layers-per-virtual-pipeline-stage",
                str(*vp) + " does not divide the " + str(*L / *pp) + " layers of a pipeline stage", "a divisor of " + str(*L / *pp));
    }
    if (*cp > 1 && *seq && *seq % (2 * *cp))
        add(Kind::Refused, "--seq-length", str(*seq) + " is not divisible by 2 x --context-parallel-size = " + str(2 * *cp),
            "a sequence length that is a multiple of " + str(2 * *cp));
    if (has("--sequence-parallel") && *tp == 1)
        add(Kind::Unnoticed, "--sequence-parallel", "has no effect with --tensor-model-parallel-size 1 (Megatron-LM turns it off)",
            "drop it, or use tensor parallelism");
    if (has("--tp-comm-overlap") && (!has("--sequence-parallel") || *tp == 1))
        add(Kind::Refused, "--tp-comm-overlap", "needs --sequence-parallel with tensor parallelism",
            "add --sequence-parallel, or drop it");
    if (has("--overlap-param-gather") && !has("--use-distributed-optimizer"))
        add(Kind::Refused, "--overlap-param-gather", "needs --use-distributed-optimizer", "add --use-distributed-optimizer");
    if (has("--fp16") && has("--bf16"))
        add(Kind::Refused, "--fp16", "--fp16 and --bf16 together", "keep one");
    if (*experts > 0 && *experts % *ep)
        add(Kind::Refused, "--expert-model-parallel-size", str(*ep) + " does not divide --num-experts " + str(*experts),
            "a divisor of the experts");
    if (w > 0) {
        const int64_t split = *tp * *pp * *cp;
        if (w % split)
            add(Kind::Refused, "--tensor-model-parallel-size",
                "tp x pp x cp = " + str(split) + " does not divide the " + str(w) + " GPUs", "sizes whose product divides the GPUs");
        else {
            const int64_t dp = w / split;
            if (*gb > 0 && *gb % (*mb * dp))
                add(Kind::Refused, "--global-batch-size",
                    str(*gb) + " is not divisible by --micro-batch-size x data-parallel size = " + str(*mb * dp),
                    "a multiple of " + str(*mb * dp));
            else if (*gb > 0 && *vp > 0 && (*gb / (*mb * dp)) % *pp)
                add(Kind::Refused, "--global-batch-size",
                    str(*gb / (*mb * dp)) + " micro-batches are not a multiple of the " + str(*pp) +
                        " pipeline stages the interleaved schedule needs",
                    "a global batch of a multiple of " + str(*mb * dp * *pp));
            if (*ep > 1 && (dp * *cp) % *ep)
                add(Kind::Refused, "--expert-model-parallel-size",
                    str(*ep) + " does not divide the data-parallel x context-parallel size " + str(dp * *cp), "a divisor");
        }
    }
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
