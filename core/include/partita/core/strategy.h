#pragma once
// A parallelization strategy: global settings (precision, batch, mesh,
// pipeline schedule, ZeRO, recomputation) and per-layer atoms (how gradients
// are synchronized, tensor-parallel role, pipeline stage, recomputation),
// assigned by layer-name patterns. resolveStrategy() checks it against a model
// and a cluster and expands it to one assignment per layer.

#include "partita/core/cluster.h"
#include "partita/core/model.h"
#include "partita/core/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class Precision
{
    FP32,
    FP16,
    BF16,
    // FP8 training as Transformer Engine runs it: the linear layers' GEMMs
    // take FP8 inputs (e4m3 forward, e5m2 gradients, per-tensor scales) at
    // the device's FP8 peak, each input cast from bf16 first; activations,
    // attention, the output layer, master weights and the optimizer stay as
    // in bf16 (NVIDIA Transformer Engine documentation, "Using FP8").
    FP8,
};
enum class PipelineSchedule
{
    GPipe,
    OneFOneB,
    Interleaved, // 1F1B with `interleave` model chunks per device (Narayanan et al. 2021)
};
enum class Recompute
{
    None,
    Selective, // the attention core only (Korthikanti et al. 2022, §5)
    Full,      // whole layers: only layer inputs are kept
};
// How the attention core runs: one fused kernel (FlashAttention, Dao et al.
// 2022; the default of Megatron-LM, NeMo and PyTorch's SDPA), which keeps no
// s x s scores and recomputes them in backward, or unfused (QK^T, softmax,
// dropout, PV as separate kernels, as Megatron-LM ran in Korthikanti et al.
// 2022 and Narayanan et al. SC'21). Fused is the device's best fused kernel
// (cuDNN's through Transformer Engine on Hopper); Flash2 is the same
// algorithm in the flash-attn package's FlashAttention-2 kernels, which
// Transformer Engine runs with NVTE_FUSED_ATTN=0 (as NeMo's Nemotron-4 340B
// recipe does), at their own, lower rate on Hopper.
enum class Attention
{
    Fused,
    Unfused,
    Flash2,
};
// Whether the attention core is one kernel that keeps no s x s scores.
constexpr bool fusedAttention(Attention a) { return a != Attention::Unfused; }

// How context-parallel ranks exchange keys and values (Megatron-LM's
// --cp-comm-type): a ring of point-to-point sends, each step's transfer
// overlapped with the attention of the block already held (ring attention,
// Liu et al. 2023; Megatron-Core's context parallelism), or one all-gather of
// K/V before the attention and a reduce-scatter of their gradients after it
// (Llama 3, Dubey et al. 2024, §3.3.2), not overlapped.
enum class ContextComm
{
    P2P,
    AllGather,
};

enum class SyncMethod
{
    AllReduce,
    ParameterServer,
    SFB, // sufficient-factor broadcasting (Poseidon; fully-connected layers)
    None, // not synchronized (frozen, or one data-parallel rank)
};
enum class AllReduceAlgo
{
    Ring,
    Tree,
    Hierarchical, // reduce-scatter in the node, all-reduce across nodes, all-gather in the node
};
enum class Compression
{
    None,
    FP16,
    PowerSGD,
};
enum class TpRole
{
    Auto,       // Megatron pairs: column before the nonlinearity/attention, row after
    Replicated, // not split: every tensor-parallel rank computes it whole
    Column,
    Row,
};
enum class PsPlacement
{
    LoadBalanced, // shards spread by bytes over servers (AutoDist PSLoadBalancing)
    RoundRobin,
    SingleServer,
};

std::string_view precisionName(Precision p);
std::string_view scheduleName(PipelineSchedule s);
std::string_view recomputeName(Recompute r);
std::string_view attentionName(Attention a);
std::string_view contextCommName(ContextComm c);
std::string_view syncMethodName(SyncMethod m);
std::string_view allReduceAlgoName(AllReduceAlgo a);
std::string_view compressionName(Compression c);
std::string_view tpRoleName(TpRole r);
std::string_view psPlacementName(PsPlacement p);

// How one layer's gradients are synchronized across data-parallel ranks.
struct SyncAtom
{
    SyncMethod method = SyncMethod::AllReduce;
    AllReduceAlgo algorithm = AllReduceAlgo::Ring;
    int bucket = -1;           // fusion group; -1: buckets of `bucket_bytes` in backward order
    Compression compression = Compression::None;
    int powersgd_rank = 4;
    int ps_shards = 0;         // 0: one shard per node
    PsPlacement ps_placement = PsPlacement::LoadBalanced;
    bool ps_local_replication = false; // aggregate inside a node before pushing (AutoDist "local replication")
    int staleness = 0;         // bounded staleness: the step does not wait for the pull (0: synchronous)
    bool sparse = true;        // embeddings: send only the rows a step touches (ignored for dense layers)

    bool operator==(const SyncAtom&) const = default;
};

// What a pattern sets for the layers it matches; unset fields keep earlier values.
struct LayerOverride
{
    std::string pattern; // layer name, or a glob with '*' and '?'
    std::optional<SyncAtom> sync;
    std::optional<TpRole> tp_role;
    std::optional<int> stage;
    std::optional<Recompute> recompute;

    bool operator==(const LayerOverride&) const = default;
};

struct Strategy
{
    std::string name;
    Precision precision = Precision::BF16;
    bool fp32_grad_accumulation = false; // keep fp32 main gradients (Megatron): 18 bytes/param instead of 16
    int64_t global_batch = 1;            // samples per step
    int64_t micro_batch = 1;             // samples per micro-batch per data-parallel rank
    int dp = 1;
    int tp = 1;
    int pp = 1;
    int ep = 1;                          // expert-parallel degree (divides dp)
    // Context parallelism: each sequence split over cp ranks (2·cp chunks,
    // chunk i and 2cp-1-i on rank i to balance causal attention). Ranks are
    // ordered tensor fastest, then context, data, pipeline (Megatron-LM's
    // tp-cp-ep-dp-pp); gradients are reduced over dp x cp.
    int cp = 1;
    ContextComm cp_comm = ContextComm::P2P;
    PipelineSchedule schedule = PipelineSchedule::OneFOneB;
    int interleave = 1;                  // model chunks per device for the interleaved schedule
    // Uneven pipeline stages (Megatron-LM's --decoder-first/last-pipeline-num-layers):
    // transformer blocks on the first and on the last stage; the rest split
    // evenly over the stages between. 0: even.
    int first_stage_blocks = 0;
    int last_stage_blocks = 0;
    Recompute recompute = Recompute::None;
    Attention attention = Attention::Fused;
    bool sequence_parallel = false;
    // Tensor-parallel all-gathers and reduce-scatters split into chunks that
    // run beside the GEMMs they feed or follow (Transformer Engine's
    // userbuffers; Megatron-LM's --tp-comm-overlap). Needs sequence parallelism.
    bool tp_comm_overlap = false;
    int zero_stage = 0;                  // 0..3 (3 = FSDP full sharding)
    // Gradient buckets reduced as soon as they are ready in the last
    // backward (PyTorch DDP, FSDP; Megatron-LM's --overlap-grad-reduce), or
    // all after the backward (false).
    bool overlap_grad_reduce = true;
    // ZeRO-1/2 (Megatron's distributed optimizer): the updated parameters'
    // all-gather runs bucket by bucket beside the next step's first forward
    // instead of after the optimizer (Megatron-LM's --overlap-param-gather).
    bool overlap_param_gather = false;
    int64_t bucket_bytes = 25 << 20;     // PyTorch DDP's default bucket_cap_mb = 25 (torch.nn.parallel.DistributedDataParallel docs)
    SyncAtom sync;                       // default for every layer
    std::vector<LayerOverride> layers;   // applied in order

    bool operator==(const Strategy&) const = default;
};

std::string strategyToJson(const Strategy& s);
Result<Strategy> strategyFromJson(const std::string& text, const std::string& file = {});

// Per-layer result of resolving a strategy against a model.
struct LayerAssignment
{
    SyncAtom sync;
    TpRole tp_role = TpRole::Replicated; // resolved: never Auto
    int stage = 0;                       // virtual stage: chunk * pp + device stage
    Recompute recompute = Recompute::None;
};

struct ResolvedStrategy
{
    Strategy strategy;
    std::vector<LayerAssignment> layers; // one per model layer
    int64_t micro_batches = 1;           // per pipeline per step
    int virtual_stages = 1;              // pp * interleave
    std::vector<std::string> warnings;
};

// Checks the strategy against the model and the cluster; the error names the
// layer or setting and the violated constraint.
Result<ResolvedStrategy> resolveStrategy(const Strategy& s, const Model& m, const Cluster& c);

bool globMatch(std::string_view pattern, std::string_view text);

} // namespace partita

namespace partita {

// The precision a cluster trains in unless told otherwise: bf16 where its
// devices have bf16 tensor cores (a "bf16" peak: Ampere and later, NVIDIA
// A100 whitepaper), else fp16 where they have an fp16 peak (V100, T4:
// their datasheets list no bf16), else fp32.
Precision defaultPrecision(const Cluster& c);

// Named strategies of known systems, built for a model and a cluster.
struct PresetOptions
{
    int64_t global_batch = 0; // 0: one sample per device
    int64_t micro_batch = 1;
    int tp = 1, pp = 1;       // Megatron-LM only
    int interleave = 1;
    std::optional<Precision> precision; // default: defaultPrecision(cluster)
    Recompute recompute = Recompute::None;
    bool sequence_parallel = false;
};

struct PresetInfo
{
    std::string name;
    std::string description;
};
std::vector<PresetInfo> strategyPresets();
Result<Strategy> strategyPreset(const std::string& name, const Model& m, const Cluster& c, const PresetOptions& o);

} // namespace partita
