// lint-config for a torchtitan v0.2.2 job TOML and an accelerate v1.14.0
// config YAML (lint.h): what each refuses at start-up, read from its source
// at that version, and what it would run otherwise than written. Every rule
// names where torchtitan or accelerate makes it.
#include "partita/core/accelerate.h"
#include "partita/core/lint.h"
#include "partita/core/torchtitan.h"

#include "tomlleaves.h"

#include <toml++/toml.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <numeric>
#include <set>

namespace partita {

namespace {

using Kind = LintFinding::Kind;

std::string str(int64_t v) { return std::to_string(v); }

// The degrees torchtitan's ParallelDims checks (torchtitan/distributed/parallel_dims.py).
void torchtitanDegrees(const toml::table& t, int world, int64_t tp, std::vector<LintFinding>& out)
{
    auto get = [&](const char* key, int64_t fallback) {
        return t.at_path(std::string("parallelism.") + key).value<int64_t>().value_or(fallback);
    };
    const int64_t rep = get("data_parallel_replicate_degree", 1), shard = get("data_parallel_shard_degree", -1),
                  pp = get("pipeline_parallel_degree", 1), cp = get("context_parallel_degree", 1);
    for (const auto& [key, d] : {std::pair{"data_parallel_replicate_degree", rep}, std::pair{"tensor_parallel_degree", tp},
                                 std::pair{"pipeline_parallel_degree", pp}, std::pair{"context_parallel_degree", cp}})
        if (d < 1) {
            out.push_back({Kind::Refused, std::string("parallelism.") + key, str(d) + ": ParallelDims asserts every degree >= 1",
                           "1 or more"});
            return;
        }
    if (shard != -1 && shard < 1) {
        out.push_back({Kind::Refused, "parallelism.data_parallel_shard_degree",
                       str(shard) + ": ParallelDims asserts -1 or >= 1", "-1 (the ranks left over) or 1 or more"});
        return;
    }
    const int64_t rest = rep * tp * pp * cp;
    if (world <= 0)
        return;
    if (shard == -1 ? world % rest != 0 || world < rest : rest * shard != world)
        out.push_back({Kind::Refused, "parallelism",
                       "dp_replicate " + str(rep) + " x dp_shard " + (shard == -1 ? "(the rest)" : str(shard)) + " x cp " +
                           str(cp) + " x tp " + str(tp) + " x pp " + str(pp) + " is not the " + str(world) +
                           " GPUs: ParallelDims asserts their product is WORLD_SIZE",
                       shard == -1 ? "degrees whose product divides " + str(world)
                                   : "data_parallel_shard_degree = -1 takes the ranks left over"});
}

// A number no job has (a degree past 65,536, a batch or length past 2^30)
// is a finding, and the rules that would multiply it are skipped.
bool outOfRange(const toml::table& t, std::vector<LintFinding>& out)
{
    for (const char* key : {"parallelism.data_parallel_replicate_degree", "parallelism.data_parallel_shard_degree",
                            "parallelism.tensor_parallel_degree", "parallelism.pipeline_parallel_degree",
                            "parallelism.context_parallel_degree", "parallelism.pipeline_parallel_microbatch_size",
                            "training.local_batch_size", "training.global_batch_size", "training.seq_len"})
        if (auto v = t.at_path(key).value<int64_t>();
            v && (*v < -1 || *v > (std::string_view(key).find("degree") != std::string_view::npos ? 65536 : int64_t(1) << 30))) {
            out.push_back({Kind::Refused, key, std::to_string(*v) + " is out of range", "a number a job can have"});
            return true;
        }
    double ranks = 1;
    for (const char* key : {"data_parallel_replicate_degree", "data_parallel_shard_degree", "tensor_parallel_degree",
                            "pipeline_parallel_degree", "context_parallel_degree"})
        ranks *= std::max<double>(1, double(t.at_path(std::string("parallelism.") + key).value_or<int64_t>(1)));
    if (ranks > double(1 << 24)) {
        out.push_back({Kind::Refused, "parallelism", "the degrees make more than 2^24 ranks", "the degrees of a real job"});
        return true;
    }
    return false;
}

// Batches (torchtitan/train.py, pipeline_parallel.py), async TP (tensor_parallel.py) and the model's heads.
void torchtitanRules(const toml::table& t, int world, std::vector<LintFinding>& out)
{
    if (outOfRange(t, out))
        return;
    const int64_t tp = t.at_path("parallelism.tensor_parallel_degree").value_or<int64_t>(1);
    torchtitanDegrees(t, world, tp, out);
    const int64_t rep = t.at_path("parallelism.data_parallel_replicate_degree").value_or<int64_t>(1);
    int64_t shard = t.at_path("parallelism.data_parallel_shard_degree").value_or<int64_t>(-1);
    const int64_t pp = t.at_path("parallelism.pipeline_parallel_degree").value_or<int64_t>(1),
                  cp = t.at_path("parallelism.context_parallel_degree").value_or<int64_t>(1);
    if (shard == -1 && world > 0 && rep * tp * pp * cp > 0)
        shard = world / (rep * tp * pp * cp);
    const int64_t local = t.at_path("training.local_batch_size").value_or<int64_t>(8),
                  global = t.at_path("training.global_batch_size").value_or<int64_t>(-1);
    if (shard >= 1 && rep >= 1 && local >= 1 && global > 0 && global % (local * rep * shard) != 0)
        out.push_back({Kind::Refused, "training.global_batch_size",
                       str(global) + " is no multiple of local_batch_size " + str(local) + " x data-parallel degree " +
                           str(rep * shard) + ": torchtitan's Trainer asserts it",
                       "a multiple of " + str(local * rep * shard) + ", or -1 for one local batch per rank"});
    const int64_t micro = t.at_path("parallelism.pipeline_parallel_microbatch_size").value_or<int64_t>(1);
    if (pp > 1 && micro >= 1 && local % micro != 0)
        out.push_back({Kind::Refused, "parallelism.pipeline_parallel_microbatch_size",
                       str(micro) + " does not divide local_batch_size " + str(local) +
                           ": torchtitan's pipeline builder raises ValueError",
                       "a divisor of " + str(local)});
    const bool async = t.at_path("parallelism.enable_async_tensor_parallel").value_or(false);
    bool compiledModel = false;
    if (t.at_path("compile.enable").value_or(false)) {
        compiledModel = true; // the default components are model and loss
        if (const toml::array* c = t.at_path("compile.components").as_array())
            compiledModel = std::any_of(c->begin(), c->end(), [](const toml::node& n) { return n.value_or(std::string()) == "model"; });
    }
    if (async && tp > 1 && !compiledModel)
        out.push_back({Kind::Refused, "parallelism.enable_async_tensor_parallel",
                       "true without a compiled model: torchtitan raises \"Async TP requires 'model' in "
                       "--compile.components and --compile.enable\"",
                       "[compile] enable = true (components include \"model\"), or async TP off"});
    else if (async && tp == 1)
        out.push_back({Kind::Unnoticed, "parallelism.enable_async_tensor_parallel",
                       "true with tensor_parallel_degree 1: there is no tensor parallelism to overlap", "leave it off"});
    const int64_t seq = t.at_path("training.seq_len").value_or<int64_t>(2048);
    if (cp > 1 && seq % (2 * cp) != 0)
        out.push_back({Kind::Refused, "training.seq_len",
                       str(seq) + " does not divide into 2 x context_parallel_degree (" + str(2 * cp) +
                           ") chunks: the head-tail load balancing of context parallelism needs them",
                       "a multiple of " + str(2 * cp)});
    const std::string flavor = t.at_path("model.flavor").value_or(std::string("debugmodel"));
    for (const TorchtitanFlavor& f : torchtitanFlavors())
        if (f.name == flavor && tp > 1 && (f.heads % tp || f.kv_heads % tp))
            out.push_back({Kind::Refused, "parallelism.tensor_parallel_degree",
                           str(tp) + " does not divide llama3 " + flavor + "'s " + str(f.heads) + " heads and " +
                               str(f.kv_heads) + " key-value heads, which its tensor-parallel plan splits",
                           "a divisor of " + str(std::gcd(f.heads, f.kv_heads))});
}

void yamlKeys(const YAML::Node& root, std::vector<LintFinding>& out)
{
    const auto& known = accelerateKeys();
    const std::set<std::string> k(known.begin(), known.end());
    for (const auto& top : root) {
        const std::string key = top.first.as<std::string>("");
        if (!k.count(key)) {
            out.push_back({Kind::Refused, key,
                           "its config classes define no such key (ClusterConfig.from_yaml_file raises ValueError)",
                           "remove it, or spell one of accelerate's config keys"});
            continue;
        }
        if (!top.second.IsMap() || key == "dynamo_config" || key == "fp8_config" || key == "mpirun_config")
            continue;
        for (const auto& sub : top.second)
            if (const std::string dotted = key + "." + sub.first.as<std::string>(""); !k.count(dotted))
                out.push_back({Kind::Unnoticed, dotted,
                               "accelerate launch passes on only the keys of " + key + " it knows: this one is ignored",
                               "remove it, or spell one of accelerate's " + key + " keys"});
    }
}

template <class T>
std::optional<T> yamlScalar(const YAML::Node& n, const char* key)
{
    if (!n.IsMap() || !n[key] || !n[key].IsScalar())
        return std::nullopt;
    try {
        return n[key].as<T>();
    } catch (const YAML::Exception&) {
        return std::nullopt;
    }
}

void accelerateRules(const YAML::Node& root, int world, std::vector<LintFinding>& out)
{
    if (auto mp = yamlScalar<std::string>(root, "mixed_precision"); mp && *mp != "no" && *mp != "fp16" && *mp != "bf16" && *mp != "fp8")
        out.push_back({Kind::Refused, "mixed_precision", "'" + *mp + "' is none of no, fp16, bf16, fp8 (PrecisionType)",
                       "one of them"});
    const auto procs = yamlScalar<int64_t>(root, "num_processes");
    if (procs && *procs < 1)
        out.push_back({Kind::Refused, "num_processes", str(*procs) + ": at least one process", "1 or more"});
    else if (procs && world > 0 && *procs != world)
        out.push_back({*procs > world ? Kind::Refused : Kind::Unnoticed, "num_processes",
                       str(*procs) + " processes on " + str(world) + " GPUs" +
                           (*procs > world ? ": the processes past the last GPU find no device" : ": the rest stay idle"),
                       "num_processes: " + str(world)});
    const YAML::Node ds = root["deepspeed_config"];
    if (auto stage = ds && ds.IsMap() ? yamlScalar<int64_t>(ds, "zero_stage") : std::nullopt; stage && (*stage < 0 || *stage > 3))
        out.push_back({Kind::Refused, "deepspeed_config.zero_stage", "stage " + str(*stage) + " does not exist", "0 to 3"});
    const YAML::Node p = root["parallelism_config"];
    if (p && p.IsMap() && procs && *procs > 0) {
        const int64_t tp = yamlScalar<int64_t>(p, "parallelism_config_tp_size").value_or(1),
                      cp = yamlScalar<int64_t>(p, "parallelism_config_cp_size").value_or(1),
                      rep = yamlScalar<int64_t>(p, "parallelism_config_dp_replicate_size").value_or(1);
        const int64_t shard = yamlScalar<int64_t>(p, "parallelism_config_dp_shard_size").value_or(1);
        if (std::min({tp, cp, rep, shard}) < 1) {
            out.push_back({Kind::Refused, "parallelism_config", "every size must be at least 1 (ParallelismConfig raises "
                                                                "ValueError)", "1 or more"});
            return;
        }
        if (std::max({tp, cp, rep, shard}) > 65536 || double(tp) * double(cp) * double(rep) * double(shard) > double(1 << 24)) {
            out.push_back({Kind::Refused, "parallelism_config", "sizes past 65,536, or more than 2^24 ranks together",
                           "the sizes of a real job"});
            return;
        }
        const int64_t total = tp * cp * rep * shard;
        if (total != 1 && total != *procs) // a total of 1 becomes data parallelism over every process
            out.push_back({Kind::Refused, "parallelism_config",
                           "dp_replicate " + str(rep) + " x dp_shard " + str(shard) + " x cp " + str(cp) + " x tp " +
                               str(tp) + " is not num_processes " + str(*procs) +
                               ": ParallelismConfig raises ValueError (total_size does not match)",
                           "sizes whose product is " + str(*procs)});
    }
}

} // namespace

std::vector<LintFinding> lintTorchtitan(const std::string& text, int world)
{
    std::vector<LintFinding> out;
    toml::table t;
    try {
        t = toml::parse(text, std::string_view("job.toml"));
    } catch (const toml::parse_error& e) {
        out.push_back({Kind::Refused, "line " + str(e.source().begin.line) + ", column " + str(e.source().begin.column),
                       std::string(e.description()), "fix the TOML"});
        return out;
    }
    std::vector<std::string> keys;
    detail::tomlLeaves(t, "", keys);
    const auto& known = torchtitanKeys();
    const std::set<std::string> knownSet(known.begin(), known.end());
    for (const auto& k : keys)
        if (!knownSet.count(k))
            out.push_back({Kind::Refused, k,
                           "JobConfig defines no such field (ConfigManager raises ValueError)",
                           "remove it, or spell a JobConfig field (run_train.sh --help lists them)"});
    torchtitanRules(t, world, out);
    return out;
}

std::vector<LintFinding> lintAccelerate(const std::string& text, int world)
{
    std::vector<LintFinding> out;
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        out.push_back({Kind::Refused, "line " + str(e.mark.line + 1) + ", column " + str(e.mark.column + 1), e.msg,
                       "fix the YAML"});
        return out;
    }
    if (!root.IsMap()) {
        out.push_back({Kind::Refused, "/", "not a mapping of keys", "an accelerate config is one mapping"});
        return out;
    }
    try {
        yamlKeys(root, out);
        accelerateRules(root, world, out);
    } catch (const YAML::Exception& e) {
        out.push_back({Kind::Refused, "line " + str(e.mark.line + 1), e.msg, "fix the YAML"});
    }
    return out;
}

} // namespace partita
