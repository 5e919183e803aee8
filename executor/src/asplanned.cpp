#include "partita/executor/asplanned.h"

#include <algorithm>
#include <map>
#include <set>

namespace partita {

namespace {

std::string count(int64_t n, const char* one, const char* many) { return std::to_string(n) + " " + (n == 1 ? one : many); }

// The data-parallel all-reduces: the plan names an algorithm per bucket; the
// worker calls its communicator's all-reduce, which picks its own.
void allReduces(const Plan& plan, bool cpu, std::vector<std::string>& out)
{
    std::map<AllReduceAlgo, int64_t> buckets;
    for (const RankClass& rc : plan.classes)
        for (const Step& st : rc.steps)
            if (st.kind == StepKind::Sync && st.method == SyncMethod::AllReduce && !st.sparse && plan.zero_stage == 0)
                ++buckets[st.algorithm];
    if (buckets.empty())
        return;
    std::string which;
    for (const auto& [algo, n] : buckets)
        which += (which.empty() ? "" : ", ") + std::string(allReduceAlgoName(algo)) + " for " + count(n, "bucket", "buckets");
    out.push_back("all-reduce algorithm (the plan's " + which + "): not chosen by the worker; " +
                  (cpu ? "MPI_Allreduce picks its own" : "NCCL picks its own (NCCL_ALGO is not set)"));
}

// Parameter servers: the plan's shards are run, but on the workers, each
// bucket split evenly; placement, local replication and staleness are not.
void parameterServers(const Plan& plan, const std::vector<LayerAssignment>& layers, std::vector<std::string>& out)
{
    std::set<int32_t> ps;
    for (const RankClass& rc : plan.classes)
        for (const Step& st : rc.steps)
            if (st.kind == StepKind::Sync && st.method == SyncMethod::ParameterServer)
                ps.insert(st.layers.begin(), st.layers.end());
    if (ps.empty())
        return;
    std::map<PsPlacement, int64_t> placement;
    int64_t local = 0, stale = 0;
    int most = 0;
    for (int32_t l : ps) {
        if (l < 0 || size_t(l) >= layers.size())
            continue;
        const SyncAtom& a = layers[size_t(l)].sync;
        ++placement[a.ps_placement];
        local += a.ps_local_replication ? 1 : 0;
        stale += a.staleness > 0 ? 1 : 0;
        most = std::max(most, a.staleness);
    }
    std::string how;
    for (const auto& [p, n] : placement)
        how += (how.empty() ? "" : ", ") + std::string(psPlacementName(p)) + " for " + count(n, "layer", "layers");
    out.push_back("parameter-server placement (" + how + "): the worker splits each bucket evenly over its shards, served by "
                  "workers (ranks 0, dp/k, ...), not placed as planned");
    if (local > 0)
        out.push_back("local replication for " + count(local, "layer", "layers") +
                      ": every worker pushes to the servers itself; nothing is aggregated in its node first");
    if (stale > 0)
        out.push_back("bounded staleness (up to " + count(most, "step", "steps") + ") for " + count(stale, "layer", "layers") +
                      ": the run waits for every pull (synchronous)");
}

} // namespace

std::vector<std::string> notAsPlanned(const Plan& plan, const ResolvedStrategy& resolved, std::string_view backend)
{
    std::vector<std::string> out;
    const bool cpu = backend == "cpu";
    const Strategy& s = resolved.strategy;
    if (cpu && plan.precision != Precision::FP32)
        out.push_back(std::string(precisionName(plan.precision)) +
                      " GEMMs run as fp32 (OpenBLAS sgemm); this machine's figures are measured at fp32 for every precision");
    if (plan.dp > 1) {
        allReduces(plan, cpu, out);
        parameterServers(plan, resolved.layers, out);
        if (!s.overlap_grad_reduce)
            out.push_back("gradient reduction after the backward (overlap_grad_reduce off): the worker reduces each bucket "
                          "as soon as its gradients are ready");
        if (s.overlap_param_gather && (plan.zero_stage == 1 || plan.zero_stage == 2))
            out.push_back("parameter all-gather beside the next forward (overlap_param_gather): run after the optimizer");
    }
    int64_t overlapped = 0;
    for (const Program& p : plan.programs)
        for (const Kernel& k : p.kernels)
            overlapped += k.overlapped ? 1 : 0;
    if (overlapped > 0)
        out.push_back(count(overlapped, "collective", "collectives") +
                      " the plan overlaps with the kernel before it (context parallelism's ring, tensor-parallel "
                      "communication overlap) run after it on the compute stream");
    return out;
}

} // namespace partita
