#pragma once
// The execution plan: the one intermediate representation the simulator and
// the executors consume. A strategy, a model and a cluster are lowered into
// programs (the ordered kernels of one virtual pipeline stage in one phase,
// the same for every micro-batch) and, per rank class (all ranks of one
// pipeline stage behave alike), the ordered steps of a training step: run a
// program for a micro-batch, send or receive activations, synchronize a
// gradient bucket, update the weights. A 1024-GPU plan costs what its stages
// cost, not what its ranks do.

#include "partita/core/cluster.h"
#include "partita/core/model.h"
#include "partita/core/result.h"
#include "partita/core/strategy.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class Collective
{
    AllReduce,
    ReduceScatter,
    AllGather,
    Broadcast,
    Reduce,
    AllToAll,
};
std::string_view collectiveName(Collective c);

enum class Phase
{
    Forward,
    Backward,
    Recompute,
};
std::string_view phaseName(Phase p);

enum class KernelKind
{
    Gemm,        // ops GEMMs of m x n x k (backward: the two gradient GEMMs per forward GEMM)
    BatchedGemm, // batch x (m x n x k), e.g. attention's QK^T and PV
    Memory,      // memory-bound work (norms, activations, softmax, bias-dropout-add)
    Collective,  // on the tensor-, expert- or context-parallel group, blocking the compute stream unless overlapped
};
std::string_view kernelKindName(KernelKind k);

// The group a kernel's collective runs on.
enum class KernelGroup
{
    Tensor,
    Expert,
    Context, // keys and values of context parallelism
};
std::string_view kernelGroupName(KernelGroup g); // "tp", "ep", "cp"

// Quantities are per device of the rank class, for one micro-batch.
struct Kernel
{
    int32_t layer = -1;
    KernelKind kind = KernelKind::Memory;
    double flops = 0;   // matmul FLOPs
    int ops = 1;        // matmuls the flops are spread over (efficiency is looked up per op)
    double bytes = 0;   // memory traffic (all kinds but Collective)
    int mem_ops = 0;    // memory-bound kernels launched besides the matmuls
    int64_t m = 0, n = 0, k = 0, batch = 1; // GEMM shape (forward orientation), 0 when not a GEMM
    Collective coll = Collective::AllReduce;
    double coll_bytes = 0; // the whole array (nccl-tests convention)
    KernelGroup group = KernelGroup::Tensor;
    // Runs beside the kernel before it (its own stream, as context
    // parallelism's ring exchange beside the attention it feeds): only what
    // outlasts that kernel holds the program up.
    bool overlapped = false;
    bool operator==(const Kernel&) const = default;
};

struct Program
{
    int virtual_stage = 0;
    Phase phase = Phase::Forward;
    std::vector<Kernel> kernels;
    double params = 0; // parameters per device of the virtual stage (what ZeRO-3 gathers before a pass)
    bool operator==(const Program&) const = default;
};

enum class StepKind
{
    Run,       // run `program` for micro-batch `micro`
    Send,      // send `bytes` of micro-batch `micro` to the class `peer` (blocking, as Megatron-LM's p2p)
    Recv,      // receive from `peer`
    Sync,      // synchronize the gradients of `layers` over the data-parallel group
    Optimizer, // update this class's parameters
};
std::string_view stepKindName(StepKind k);

struct Step
{
    StepKind kind = StepKind::Run;
    int program = -1;
    int micro = -1;
    int peer = -1;
    double bytes = 0;
    SyncMethod method = SyncMethod::AllReduce; // Sync
    AllReduceAlgo algorithm = AllReduceAlgo::Ring;
    std::vector<int32_t> layers;               // Sync: the bucket, in the order gradients become ready
    // Sync: `bytes` is each worker's payload (the bucket's gradients per
    // device after compression); `sparse`: rows of a sparse gradient are
    // exchanged instead (their count depends on the data); `shards`: the
    // parameter servers a PS variable is split over (0: one per node).
    bool sparse = false;
    int shards = 0;
    bool operator==(const Step&) const = default;
};

struct RankClass
{
    int stage = 0;        // pipeline stage (device stage; its chunks are virtual stages stage + c * pp)
    int first_rank = 0;   // ranks first_rank .. first_rank + count - 1 (tensor fastest, then context, then data)
    int count = 1;
    double parameters = 0; // parameters held per device (tensor-split, expert-split)
    std::vector<Step> steps;
    bool operator==(const RankClass&) const = default;
};

struct Plan
{
    std::string strategy;
    int world = 1, dp = 1, tp = 1, pp = 1, ep = 1, cp = 1;
    int virtual_stages = 1;
    int64_t micro_batches = 1, micro_batch = 1, seq_len = 1;
    Precision precision = Precision::BF16;
    int activation_bytes = 2, gradient_bytes = 2;
    int zero_stage = 0;
    std::vector<Program> programs;
    std::vector<RankClass> classes; // one per pipeline stage
    std::vector<std::string> layer_names; // the model's layers by index, for naming trace events
    bool operator==(const Plan&) const = default;
};

// The trace-event name of a kernel run, the same in predicted and measured
// runs so that they can be diffed by name: "<layer> <phase> mb<N>", with
// "tp <collective> " (or "ep ", "cp ") before it for collectives.
std::string kernelEventName(const Plan& p, const Kernel& k, Phase phase, int micro);

// The rank class (pipeline stage) a rank belongs to; null when none holds it.
const RankClass* rankClassOf(const Plan& p, int rank);

// The plan at shape scale s in (0, 1]: each GEMM dimension times s (rounded,
// at least 1; a 0, no shape, stays 0), its FLOPs times s³, memory traffic, collectives, transfers,
// parameters and gradients times s. What the executor runs at that scale,
// and so what its measurement is compared with (planscale.cpp).
Plan scalePlan(const Plan& p, double s);

// Lowers a strategy (resolved against the model and cluster) into a plan.
Result<Plan> lowerPlan(const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen = 0);

std::string planToJson(const Plan& p);
Result<Plan> planFromJson(const std::string& text, const std::string& file = {});

// The order in which a pipeline stage runs forward (F) and backward (B)
// passes of (chunk, micro-batch): GPipe, 1F1B, or interleaved 1F1B.
struct ScheduledPass
{
    bool forward = true;
    int chunk = 0;
    int micro = 0;
};
std::vector<ScheduledPass> pipelineOrder(int stage, int pp, int chunks, int64_t microBatches, PipelineSchedule s);

} // namespace partita
