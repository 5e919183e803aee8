// Strategies of known systems. Each names the system and what it does.
#include "partita/core/strategy.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

namespace partita {

std::vector<PresetInfo> strategyPresets()
{
    return {
        {"ddp", "PyTorch DistributedDataParallel: ring all-reduce of every gradient in 25 MB buckets, backward order"},
        {"horovod", "Horovod: every gradient, embeddings included (sparse_as_dense), fused into 64 MB ring all-reduces"},
        {"autodist-allreduce", "AutoDist AllReduce builder: variables grouped by chunk_size (128) into fused all-reduces"},
        {"autodist-partitioned-ar", "AutoDist PartitionedAR: every variable all-reduced on its own (partitioned, not fused)"},
        {"autodist-ps", "AutoDist PS: every variable on one parameter server (the chief's node)"},
        {"autodist-ps-lb", "AutoDist PSLoadBalancing: whole variables on the servers, each on the least-loaded one"},
        {"autodist-partitioned-ps", "AutoDist PartitionedPS: every variable partitioned over all servers"},
        {"parallax", "Parallax (AutoDist): sparse variables through parameter servers, dense ones by all-reduce"},
        {"poseidon", "Poseidon: SFB for a fully-connected layer when 2K(P1-1)(M+N) <= 2MN(P1+P2-2)/P2, else PS"},
        {"megatron", "Megatron-LM 3D: tensor (--tp), pipeline (--pp, --interleave) and data parallelism, fp32 main grads"},
        {"zero-1", "ZeRO stage 1: optimizer state sharded over data-parallel ranks"},
        {"zero-2", "ZeRO stage 2: optimizer state and gradients sharded"},
        {"zero-3", "ZeRO stage 3 / FSDP: parameters, gradients and optimizer state sharded"},
    };
}

namespace {

// Explicit dense all-reduce buckets, one per layer with weights, numbered by `bucketOf`.
void assignBuckets(Strategy& s, const Model& m, const std::function<int(const Layer&)>& bucketOf)
{
    for (const auto& l : m.layers) {
        if (l.params.empty())
            continue;
        LayerOverride ov;
        ov.pattern = l.name;
        SyncAtom a = s.sync;
        a.sparse = false;
        a.bucket = bucketOf(l);
        ov.sync = a;
        s.layers.push_back(ov);
    }
}

// The default atom through parameter servers: `shards` per variable, placed by `placement`.
void useParameterServers(Strategy& s, int shards, PsPlacement placement)
{
    s.sync.method = SyncMethod::ParameterServer;
    s.sync.ps_shards = shards;
    s.sync.ps_placement = placement;
}

// Parallax: the sparse layers through parameter servers, replicated locally per machine.
void parallaxOverrides(Strategy& s, const Model& m, int nodes)
{
    for (const auto& l : m.layers) {
        if (!l.sparse_grad)
            continue;
        LayerOverride ov;
        ov.pattern = l.name;
        SyncAtom a = s.sync;
        a.method = SyncMethod::ParameterServer;
        a.ps_shards = nodes;
        a.ps_local_replication = true; // Parallax aggregates a machine's sparse gradients locally
        ov.sync = a;
        s.layers.push_back(ov);
    }
}

// Poseidon: each layer with weights by SFB or a parameter server, whichever sends less.
void poseidonOverrides(Strategy& s, const Model& m, const PresetOptions& o, int devices, int nodes)
{
    // Per layer: SFB costs 2K(P1-1)(M+N) values per worker, a PS 2MN(P1+P2-2)/P2
    // (Zhang et al., Poseidon, USENIX ATC 2017, §3.2). K: batch per worker.
    const double P1 = devices, P2 = std::max(1, nodes);
    const double K = double(o.global_batch > 0 ? o.global_batch / devices : o.micro_batch) *
                     double(m.sequence ? m.seq_len : 1);
    for (const auto& l : m.layers) {
        if (l.params.empty())
            continue;
        LayerOverride ov;
        ov.pattern = l.name;
        SyncAtom a = s.sync;
        const double M = double(l.dims.out_features), N = double(l.dims.in_features);
        const bool fc =
            (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead) && M > 0 && N > 0 && l.tied_to.empty();
        if (fc && 2 * K * (P1 - 1) * (M + N) <= 2 * M * N * (P1 + P2 - 2) / P2) {
            a.method = SyncMethod::SFB;
        } else {
            a.method = SyncMethod::ParameterServer;
            a.ps_shards = nodes;
        }
        ov.sync = a;
        s.layers.push_back(ov);
    }
}

// Megatron-LM 3D: the tp x pp mesh over the devices, data parallelism over the rest.
std::optional<Error> megatronMesh(Strategy& s, const PresetOptions& o, int devices)
{
    s.tp = o.tp;
    s.pp = o.pp;
    if (devices % (o.tp * o.pp) != 0)
        return Error{"preset megatron", "mesh", "tp x pp = " + std::to_string(o.tp * o.pp) + " does not divide the " +
                                                     std::to_string(devices) + " devices"};
    s.dp = devices / (o.tp * o.pp);
    s.interleave = o.interleave;
    s.schedule = o.interleave > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
    s.sequence_parallel = o.sequence_parallel;
    s.fp32_grad_accumulation = true; // --accumulate-allreduce-grads-in-fp32
    s.sync.sparse = false;
    return std::nullopt;
}

// The error for a preset name not in strategyPresets(), listing those that are.
Error unknownPreset(const std::string& name)
{
    std::string known;
    for (const auto& p : strategyPresets())
        known += (known.empty() ? "" : ", ") + p.name;
    return Error{"<strategy preset>", name, "unknown strategy preset (known: " + known + ")"};
}

} // namespace

Result<Strategy> strategyPreset(const std::string& name, const Model& m, const Cluster& c, const PresetOptions& o)
{
    const int devices = c.deviceCount();
    Strategy s;
    s.name = name;
    s.precision = o.precision.value_or(defaultPrecision(c));
    s.micro_batch = o.micro_batch;
    s.recompute = o.recompute;
    s.dp = devices;
    const int nodes = int(c.nodes.size());
    if (name == "ddp") {
        s.bucket_bytes = 25 << 20; // torch DDP bucket_cap_mb default
    } else if (name == "horovod") {
        s.bucket_bytes = 64 << 20; // HOROVOD_FUSION_THRESHOLD default, 64 MB (Horovod docs, Tensor Fusion)
        s.sync.sparse = false;     // sparse_as_dense: embeddings all-reduced whole
    } else if (name == "autodist-allreduce") {
        // chunk_size = 128 variables per fused all-reduce (AutoDist AllReduce builder default).
        int var = 0;
        assignBuckets(s, m, [&](const Layer& l) {
            const int bucket = var / 128;
            var += int(l.params.size());
            return bucket;
        });
    } else if (name == "autodist-partitioned-ar") {
        // Each variable is its own collective: no fusion across variables.
        // Partitioning a variable only changes message sizes, which the alpha-beta
        // model charges through the per-collective latency of each variable.
        int bucket = 0;
        assignBuckets(s, m, [&](const Layer&) { return bucket++; });
    } else if (name == "autodist-ps") {
        useParameterServers(s, 1, PsPlacement::SingleServer);
    } else if (name == "autodist-ps-lb") {
        useParameterServers(s, 1, PsPlacement::LoadBalanced);
    } else if (name == "autodist-partitioned-ps") {
        useParameterServers(s, nodes, PsPlacement::LoadBalanced);
    } else if (name == "parallax") {
        parallaxOverrides(s, m, nodes);
    } else if (name == "poseidon") {
        poseidonOverrides(s, m, o, devices, nodes);
    } else if (name == "megatron") {
        if (auto e = megatronMesh(s, o, devices))
            return *e;
    } else if (name == "zero-1" || name == "zero-2" || name == "zero-3") {
        s.zero_stage = name.back() - '0';
        s.sync.sparse = false;
    } else {
        return unknownPreset(name);
    }
    s.global_batch = o.global_batch > 0 ? o.global_batch : int64_t(s.dp) * s.micro_batch;
    return s;
}

} // namespace partita
