// accelerate config YAMLs out of strategies, and back. Keys and values as
// accelerate v1.14.0 (0922823) writes and reads them:
// src/accelerate/commands/config/config_args.py and cluster.py.
#include "partita/core/accelerate.h"

#include "exportheader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace partita {

namespace detail {
extern const char* const kAccelerateKeys; // frameworkkeys.cpp, generated
}

namespace {

constexpr const char* kVersion = "accelerate v1.14.0";

enum class Kind
{
    Ddp,
    DeepSpeed,
    Fsdp,
    Megatron
};

// Which of accelerate's distributed types runs the strategy.
Kind kindOf(const Strategy& s)
{
    if (s.pp > 1)
        return Kind::Megatron;
    if (s.tp > 1 || s.cp > 1 || s.zero_stage >= 2)
        return Kind::Fsdp;
    return s.zero_stage == 1 ? Kind::DeepSpeed : Kind::Ddp;
}

const char* typeName(Kind k)
{
    return k == Kind::Megatron ? "MEGATRON_LM" : k == Kind::Fsdp ? "FSDP" : k == Kind::DeepSpeed ? "DEEPSPEED" : "MULTI_GPU";
}

} // namespace

const std::vector<std::string>& accelerateKeys()
{
    static const std::vector<std::string> keys = detail::listLines(detail::kAccelerateKeys);
    return keys;
}

std::vector<std::string> accelerateRefusals(const Model& m, const Strategy& s)
{
    (void)m;
    std::vector<std::string> why;
    const Kind k = kindOf(s);
    if (k == Kind::Megatron && s.zero_stage >= 2)
        why.push_back("zero_stage " + std::to_string(s.zero_stage) +
                      " with pipelines: accelerate's Megatron-LM shards optimizer state only (ZeRO-1)");
    if (k == Kind::Megatron && (s.cp > 1 || s.interleave > 1 || s.first_stage_blocks > 0))
        why.push_back("cp, interleaving or uneven stages: accelerate's megatron_lm_config has no key for them");
    if (k == Kind::Fsdp && s.zero_stage < 2)
        why.push_back("tp or cp with zero_stage " + std::to_string(s.zero_stage) +
                      ": accelerate's tensor and context parallelism run under FSDP2 (ZeRO-2 or 3)");
    if (k == Kind::Fsdp && s.tp > 1 && !s.sequence_parallel)
        why.push_back("sequence_parallel false: accelerate's FSDP2 tensor parallelism is sequence-parallel");
    if (s.cp > 1 && s.cp_comm == ContextComm::P2P)
        why.push_back("cp_comm p2p: accelerate exchanges K/V by all-gather or all-to-all");
    if ((k == Kind::Ddp || k == Kind::DeepSpeed) && s.recompute != Recompute::None)
        why.push_back("recompute: accelerate's config has no recomputation for " + std::string(typeName(k)) +
                      " (the training script turns it on)");
    if (k == Kind::Megatron && s.recompute == Recompute::Full)
        why.push_back("recompute full: megatron_lm_recompute_activations is Megatron-LM's selective recomputation");
    if (k == Kind::Fsdp && s.recompute == Recompute::Selective)
        why.push_back("recompute selective: fsdp_activation_checkpointing recomputes whole blocks (full)");
    if (s.precision != Precision::FP32 && !s.fp32_grad_accumulation)
        why.push_back("fp32_grad_accumulation false: accelerate's mixed precision keeps fp32 parameters and gradients");
    if (s.tp_comm_overlap || s.ep > 1)
        why.push_back("tp_comm_overlap or ep: accelerate's config has no key for them");
    if (s.attention == Attention::Unfused)
        why.push_back("attention unfused: the model's attention is the training script's");
    if (!s.overlap_grad_reduce && k != Kind::DeepSpeed)
        why.push_back("overlap_grad_reduce false: DDP, FSDP and Megatron-LM reduce gradients during the backward");
    if (s.overlap_param_gather && k != Kind::Fsdp)
        why.push_back("overlap_param_gather: only FSDP2's prefetch overlaps the parameter gather here");
    if (s.zero_stage == 2 && k == Kind::Fsdp && !s.overlap_param_gather)
        why.push_back("overlap_param_gather false: FSDP2 prefetches the next module's all-gather, always");
    SyncAtom plain;
    plain.sparse = false;
    if (!(s.sync == plain))
        why.push_back("sync: accelerate reduces dense gradients, uncompressed (hooks and buckets are the script's)");
    if (s.schedule == PipelineSchedule::GPipe && s.pp > 1)
        why.push_back("schedule gpipe: accelerate's Megatron-LM runs 1F1B");
    for (const LayerOverride& o : s.layers)
        why.push_back("layer '" + o.pattern + "': accelerate treats every layer alike");
    return why;
}

namespace {

Strategy closestAccelerate(const Strategy& s, std::vector<std::string>& diffs)
{
    Strategy x = s;
    auto change = [&](bool when, const std::string& what, auto&& apply) {
        if (when) {
            diffs.push_back(what);
            apply();
        }
    };
    change(kindOf(x) == Kind::Megatron && x.zero_stage >= 2, "ZeRO -> 1 (the distributed optimizer)", [&] {
        x.zero_stage = 1;
    });
    change(kindOf(x) == Kind::Megatron && (x.cp > 1 || x.interleave > 1 || x.first_stage_blocks > 0),
           "no context parallelism, interleaving or uneven stages", [&] {
               x.dp *= x.cp;
               x.cp = x.interleave = 1;
               x.schedule = PipelineSchedule::OneFOneB;
               x.first_stage_blocks = x.last_stage_blocks = 0;
           });
    change(kindOf(x) == Kind::Fsdp && x.zero_stage < 2, "ZeRO -> 3 (FSDP2)", [&] { x.zero_stage = 3; });
    change(x.tp > 1 && !x.sequence_parallel, "sequence parallelism -> on", [&] { x.sequence_parallel = true; });
    change(x.cp > 1 && x.cp_comm == ContextComm::P2P, "K/V exchange -> all-gather", [&] { x.cp_comm = ContextComm::AllGather; });
    const Kind k = kindOf(x);
    change((k == Kind::Ddp || k == Kind::DeepSpeed) && x.recompute != Recompute::None, "recompute -> none (the script's)",
           [&] { x.recompute = Recompute::None; });
    change(k == Kind::Fsdp && x.recompute == Recompute::Selective, "recompute -> full", [&] { x.recompute = Recompute::Full; });
    change(k == Kind::Megatron && x.recompute == Recompute::Full, "recompute -> selective",
           [&] { x.recompute = Recompute::Selective; });
    change(x.precision != Precision::FP32 && !x.fp32_grad_accumulation, "gradients -> fp32",
           [&] { x.fp32_grad_accumulation = true; });
    change(x.tp_comm_overlap || x.ep > 1, "no tensor-parallel overlap, no expert parallelism", [&] {
        x.tp_comm_overlap = false;
        x.dp *= x.ep;
        x.ep = 1;
    });
    change(x.attention == Attention::Unfused, "attention -> fused", [&] { x.attention = Attention::Fused; });
    change(!x.overlap_grad_reduce && k != Kind::DeepSpeed, "gradient reduction -> during the backward",
           [&] { x.overlap_grad_reduce = true; });
    change(x.overlap_param_gather != (k == Kind::Fsdp && x.zero_stage == 2),
           "parameter gather overlap -> as the sharding does it", [&] { x.overlap_param_gather = k == Kind::Fsdp && x.zero_stage == 2; });
    SyncAtom plain;
    plain.sparse = false;
    change(!(x.sync == plain), "gradient sync -> dense all-reduce", [&] { x.sync = plain; });
    change(x.schedule == PipelineSchedule::GPipe && x.pp > 1, "schedule -> 1F1B", [&] { x.schedule = PipelineSchedule::OneFOneB; });
    change(!x.layers.empty(), "per-layer settings -> none", [&] { x.layers.clear(); });
    return x;
}

const char* precisionValue(Precision p)
{
    return p == Precision::BF16 ? "bf16" : p == Precision::FP16 ? "fp16" : p == Precision::FP8 ? "fp8" : "'no'";
}

} // namespace

Result<AccelerateExport> exportAccelerate(const Model& m, const Cluster& c, const Strategy& s, const ExportHeader& h,
                                          bool closest)
{
    AccelerateExport out;
    out.exported = s;
    if (const auto why = accelerateRefusals(m, s); !why.empty()) {
        if (!closest) {
            std::string all;
            for (const auto& w : why)
                all += (all.empty() ? "" : "; ") + w;
            return Error{"strategy '" + s.name + "'", "accelerate", all};
        }
        out.exported = closestAccelerate(s, out.differences);
    }
    const Strategy& x = out.exported;
    const Kind k = kindOf(x);
    const int64_t accumulation = x.global_batch / (x.micro_batch * x.dp);
    std::ostringstream o;
    o << detail::exportHeaderLines(h, x.name, kVersion, "accelerate", out.differences);
    o << "# batch: global " << x.global_batch << ", micro " << x.micro_batch
      << " per GPU (the training script's DataLoader batch_size and gradient_accumulation_steps)\n"
      << "# Run: accelerate launch --config_file THIS_FILE --machine_rank R train.py\n"
      << "compute_environment: LOCAL_MACHINE\n"
      << "debug: false\n"
      << "distributed_type: " << typeName(k) << "\n"
      << "downcast_bf16: 'no'\n"
      << "machine_rank: 0\n"
      << "main_training_function: main\n"
      << "mixed_precision: " << precisionValue(x.precision) << "\n"
      << "num_machines: " << c.nodes.size() << "\n"
      << "num_processes: " << c.deviceCount() << "\n"
      << "rdzv_backend: static\n"
      << "same_network: true\n"
      << "use_cpu: false\n";
    if (k == Kind::DeepSpeed)
        o << "deepspeed_config:\n  zero_stage: 1\n  gradient_accumulation_steps: " << accumulation
          << "\n  offload_optimizer_device: none\n  offload_param_device: none\n  zero3_init_flag: false\n";
    if (k == Kind::Fsdp) {
        o << "fsdp_config:\n  fsdp_version: 2\n  fsdp_reshard_after_forward: " << (x.zero_stage == 3 ? "true" : "false")
          << "\n  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  fsdp_offload_params: false\n"
          << "  fsdp_state_dict_type: SHARDED_STATE_DICT\n  fsdp_cpu_ram_efficient_loading: true\n"
          << "  fsdp_activation_checkpointing: " << (x.recompute == Recompute::Full ? "true" : "false") << "\n";
        if (x.tp > 1 || x.cp > 1)
            o << "parallelism_config:\n  parallelism_config_dp_replicate_size: 1\n  parallelism_config_dp_shard_size: " << x.dp
              << "\n  parallelism_config_tp_size: " << x.tp << "\n  parallelism_config_cp_size: " << x.cp << "\n"
              << (x.cp > 1 ? "  parallelism_config_cp_comm_strategy: allgather\n" : "");
    }
    if (k == Kind::Megatron)
        o << "megatron_lm_config:\n  megatron_lm_tp_degree: " << x.tp << "\n  megatron_lm_sequence_parallelism: "
          << (x.sequence_parallel ? "true" : "false") << "\n  megatron_lm_pp_degree: " << x.pp
          << "\n  megatron_lm_num_micro_batches: " << accumulation << "\n  megatron_lm_recompute_activations: "
          << (x.recompute != Recompute::None ? "true" : "false") << "\n  megatron_lm_use_distributed_optimizer: "
          << (x.zero_stage == 1 ? "true" : "false") << "\n  megatron_lm_gradient_clipping: 1.0\n";
    out.yaml = o.str();
    return out;
}

namespace {

struct Fail
{
    std::string where, what;
};

// A scalar of the document (nullopt when absent); `as` names the expected kind.
template <class T>
std::optional<T> scalar(const YAML::Node& map, const std::string& section, const char* key, const char* as)
{
    const YAML::Node n = map[key];
    if (!n || n.IsNull())
        return std::nullopt;
    try {
        return n.as<T>();
    } catch (const YAML::Exception&) {
        throw Fail{(section.empty() ? "" : section + ".") + key, std::string("expected ") + as};
    }
}

// One of the config's sections (deepspeed_config, ...): absent, or a mapping.
YAML::Node section(const YAML::Node& root, const char* name)
{
    const YAML::Node n = root[name];
    if (n && !n.IsNull() && !n.IsMap())
        throw Fail{name, "expected a mapping of its keys"};
    return n && n.IsMap() ? n : YAML::Node();
}

void unknownKeys(const YAML::Node& root, std::vector<std::string>& notes)
{
    const auto& known = accelerateKeys();
    const std::set<std::string> k(known.begin(), known.end());
    std::string list;
    for (const auto& top : root) {
        const std::string key = top.first.as<std::string>("");
        if (!k.count(key))
            list += (list.empty() ? "" : ", ") + key;
        else if (top.second.IsMap() && key != "dynamo_config" && key != "fp8_config" && key != "mpirun_config")
            for (const auto& sub : top.second)
                if (const std::string dotted = key + "." + sub.first.as<std::string>(""); !k.count(dotted))
                    list += (list.empty() ? "" : ", ") + dotted;
    }
    if (!list.empty())
        notes.push_back("keys " + std::string(kVersion) + " does not know (it refuses unknown top-level keys): " + list);
}

// "# batch: global G, micro M" (what export writes; the batch is the script's).
bool batchComment(const std::string& text, int64_t& global, int64_t& micro)
{
    const size_t at = text.find("# batch: global ");
    return at != std::string::npos &&
           std::sscanf(text.c_str() + at, "# batch: global %ld, micro %ld", &global, &micro) == 2 && global > 0 &&
           micro > 0;
}

int64_t readFsdp(const YAML::Node& root, Strategy& s, int world)
{
    const YAML::Node f = section(root, "fsdp_config");
    const std::string sec = "fsdp_config";
    const int version = int(f ? scalar<int>(f, sec, "fsdp_version", "1 or 2").value_or(1) : 1);
    if (version == 2) {
        s.zero_stage = f && !scalar<bool>(f, sec, "fsdp_reshard_after_forward", "true or false").value_or(true) ? 2 : 3;
    } else {
        const std::string strat = f ? scalar<std::string>(f, sec, "fsdp_reshard_after_forward", "a sharding strategy")
                                          .value_or("FULL_SHARD")
                                    : "FULL_SHARD";
        if (strat.rfind("HYBRID", 0) == 0)
            throw Fail{"fsdp_config.fsdp_reshard_after_forward", strat + ": HSDP is not modelled"};
        s.zero_stage = strat == "SHARD_GRAD_OP" ? 2 : strat == "NO_SHARD" ? 0 : 3;
    }
    if (f && scalar<bool>(f, sec, "fsdp_activation_checkpointing", "true or false").value_or(false))
        s.recompute = Recompute::Full;
    const YAML::Node p = section(root, "parallelism_config");
    const std::string ps = "parallelism_config";
    s.tp = p ? scalar<int>(p, ps, "parallelism_config_tp_size", "an integer").value_or(1) : 1;
    s.cp = p ? scalar<int>(p, ps, "parallelism_config_cp_size", "an integer").value_or(1) : 1;
    const int rep = p ? scalar<int>(p, ps, "parallelism_config_dp_replicate_size", "an integer").value_or(1) : 1;
    if (s.tp < 1 || s.cp < 1 || rep < 1 || s.tp > 65536 || s.cp > 65536 || world % (s.tp * s.cp) != 0)
        throw Fail{"parallelism_config", "sizes must be at least 1 and divide num_processes"};
    if (rep > 1 && world / (s.tp * s.cp) > rep)
        throw Fail{"parallelism_config.parallelism_config_dp_replicate_size", "HSDP (replicate x shard) is not modelled"};
    s.dp = world / (s.tp * s.cp);
    s.sequence_parallel = s.tp > 1;
    s.cp_comm = ContextComm::AllGather;
    s.overlap_param_gather = s.zero_stage == 2;
    return 1;
}

int64_t readMegatron(const YAML::Node& root, Strategy& s, int world)
{
    const YAML::Node m = section(root, "megatron_lm_config");
    const std::string sec = "megatron_lm_config";
    s.tp = m ? scalar<int>(m, sec, "megatron_lm_tp_degree", "an integer").value_or(1) : 1;
    s.pp = m ? scalar<int>(m, sec, "megatron_lm_pp_degree", "an integer").value_or(1) : 1;
    if (s.tp < 1 || s.pp < 1 || s.tp > 65536 || s.pp > 65536 || world % (s.tp * s.pp) != 0)
        throw Fail{"megatron_lm_config", "tp and pp degrees must be at least 1 and divide num_processes"};
    s.dp = world / (s.tp * s.pp);
    s.sequence_parallel = s.tp > 1 && m && scalar<bool>(m, sec, "megatron_lm_sequence_parallelism", "true or false").value_or(false);
    if (m && scalar<bool>(m, sec, "megatron_lm_recompute_activations", "true or false").value_or(false))
        s.recompute = Recompute::Selective;
    s.zero_stage = m && scalar<bool>(m, sec, "megatron_lm_use_distributed_optimizer", "true or false").value_or(false) ? 1 : 0;
    return m ? scalar<int64_t>(m, sec, "megatron_lm_num_micro_batches", "an integer").value_or(1) : 1;
}

} // namespace

Result<AccelerateImport> importAccelerate(const std::string& text, const std::string& file)
{
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return Error{file, "line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1), e.msg};
    }
    if (!root.IsMap())
        return Error{file, {}, "not an accelerate configuration (a YAML mapping of its keys)"};
    AccelerateImport out;
    Strategy& s = out.strategy;
    try {
        const std::string type = scalar<std::string>(root, "", "distributed_type", "a string").value_or("NO");
        out.world = scalar<int>(root, "", "num_processes", "an integer").value_or(1);
        if (out.world < 1 || out.world > (1 << 24))
            throw Fail{"num_processes", std::to_string(out.world) + ": the config must say how many processes run (1 to 2^24)"};
        const std::string mp = scalar<std::string>(root, "", "mixed_precision", "a string").value_or("no");
        if (mp != "no" && mp != "fp16" && mp != "bf16" && mp != "fp8")
            throw Fail{"mixed_precision", "'" + mp + "' is none of no, fp16, bf16, fp8"};
        s.precision = mp == "bf16" ? Precision::BF16 : mp == "fp16" ? Precision::FP16 : mp == "fp8" ? Precision::FP8 : Precision::FP32;
        s.fp32_grad_accumulation = s.precision != Precision::FP32;
        s.sync.sparse = false;
        s.dp = out.world;
        int64_t accumulation = 1;
        if (type == "DEEPSPEED") {
            const YAML::Node d = section(root, "deepspeed_config");
            s.zero_stage = d ? scalar<int>(d, "deepspeed_config", "zero_stage", "0 to 3").value_or(0) : 0;
            if (s.zero_stage < 0 || s.zero_stage > 3)
                throw Fail{"deepspeed_config.zero_stage", "must be 0 to 3"};
            accumulation = d ? scalar<int64_t>(d, "deepspeed_config", "gradient_accumulation_steps", "an integer").value_or(1) : 1;
            if (d && d["deepspeed_config_file"])
                out.notes.push_back("deepspeed_config_file names a DeepSpeed JSON that holds the rest: import it too");
        } else if (type == "FSDP") {
            accumulation = readFsdp(root, s, out.world);
        } else if (type == "MEGATRON_LM") {
            accumulation = readMegatron(root, s, out.world);
        } else if (type != "MULTI_GPU" && type != "NO") {
            throw Fail{"distributed_type", "'" + type + "' is not modelled (NO, MULTI_GPU, DEEPSPEED, FSDP, MEGATRON_LM are)"};
        }
        if (accumulation < 1 || accumulation > (int64_t(1) << 30))
            throw Fail{"gradient_accumulation_steps", "must be 1 to 2^30"};
        int64_t global = 0, micro = 1;
        if (batchComment(text, global, micro)) {
            if (global > (int64_t(1) << 40) || micro > (int64_t(1) << 20) || global % (micro * s.dp) != 0)
                throw Fail{"# batch", "global " + std::to_string(global) + " is no multiple of micro x data-parallel ranks"};
        } else {
            global = micro * s.dp * accumulation;
            out.notes.push_back("no '# batch:' line (the batch is the training script's): one sample per GPU per micro-batch");
        }
        s.global_batch = global;
        s.micro_batch = micro;
        s.name = "accelerate " + type;
        unknownKeys(root, out.notes);
    } catch (const Fail& f) {
        return Error{file, f.where, f.what};
    } catch (const YAML::Exception& e) { // a node of another kind than read (fuzz_frameworks found one)
        return Error{file, "line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1),
                     e.msg};
    }
    return out;
}

} // namespace partita
