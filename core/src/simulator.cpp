// Step-time, memory and trace prediction. See simulator.h and
// docs/architecture.md ("Simulator") for the model; every constant below
// names its source.
#include "partita/core/simulator.h"

#include <nlohmann/json.hpp>

#include "layerfacts.h"
#include "simcost.h"
#include "simrun.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <functional>
#include <numeric>

namespace partita {

using namespace sim;

Result<SimResult> simulate(const Model& m, const Cluster& c, const Strategy& s, const SimOptions& o)
{
    auto plan = lowerPlan(m, c, s, o.seq_len);
    if (!plan)
        return plan.error();
    return simulatePlan(*plan, m, c, s, o);
}

namespace {

// The strategy's precision on the device: the peaks and GEMM curves it
// uses; a note when it is costed otherwise than asked, an error when the
// device cannot say.
Result<std::string> choosePrecision(Ctx& x, const Strategy& s, const Cluster& c, const DeviceSpec& dev)
{
    std::string precisionNote;
    if (s.precision == Precision::FP8) {
        const auto f8 = dev.peak_flops.find("fp8");
        const auto b16 = dev.peak_flops.find("bf16");
        if (f8 == dev.peak_flops.end() || b16 == dev.peak_flops.end())
            return Error{"cluster '" + c.name + "'", "device " + dev.name,
                         "fp8 training needs fp8 and bf16 peaks (tensor cores with FP8: H100, H200 and later)"};
        x.peak = b16->second;
        x.fp8Peak = f8->second;
        x.fp8Curve = x.cal.matmulFor("fp8");
        x.cal.matmul = x.cal.matmulFor("bf16");
        if (!x.cal.matmul_by_precision.count("fp8"))
            precisionNote = "no fp8 GEMM efficiency measured for " + dev.name + ": fp8 GEMMs use the general curve";
    } else {
        auto it = dev.peak_flops.find(dtypeKey(s.precision));
        if (it == dev.peak_flops.end() && s.precision == Precision::BF16) {
            // No bf16 tensor cores (V100, T4: their datasheets list none): bf16
            // GEMMs run on the CUDA cores, at the fp32 rate.
            it = dev.peak_flops.find("fp32");
            if (it != dev.peak_flops.end())
                precisionNote = dev.name + " has no bf16 tensor cores: bf16 is costed at its fp32 peak (" +
                                std::to_string(int(it->second / 1e12 + 0.5)) + " TFLOP/s); fp16 uses its tensor cores";
        }
        if (it == dev.peak_flops.end())
            return Error{"cluster '" + c.name + "'", "device " + dev.name,
                         std::string("no peak FLOP/s for ") + dtypeKey(s.precision) + ": add it to the cluster file"};
        x.peak = it->second;
        x.cal.matmul = x.cal.matmulFor(dtypeKey(s.precision)); // the precision's measured curve, where there is one
    }
    if (dev.memory_bandwidth <= 0)
        return Error{"cluster '" + c.name + "'", "device " + dev.name, "memory bandwidth unknown: add it to the cluster file"};
    return precisionNote;
}

} // namespace

Result<SimResult> simulatePlan(const Plan& plan, const Model& m, const Cluster& c, const Strategy& s, const SimOptions& o)
{
    auto resolved = resolveStrategy(s, m, c);
    if (!resolved)
        return resolved.error();
    const ResolvedStrategy& r = *resolved;
    const Node& node = c.nodes.front();
    const DeviceSpec& dev = node.devices.front();
    Ctx x{m, c, r, s, plan, dev, node, o.calibration ? *o.calibration : defaultCalibration(dev)};
    x.ab = plan.activation_bytes;
    x.b = plan.micro_batch;
    x.seq = plan.seq_len;
    x.perNode = int(node.devices.size());
    auto precisionNote = choosePrecision(x, s, c, dev);
    if (!precisionNote)
        return precisionNote.error();
    PlanRun run(plan, m, c, s, o, r, x);
    if (!precisionNote->empty())
        run.res.notes.push_back(*precisionNote);
    run.programTimes();
    run.activations();
    if (auto sched = run.schedule(); !sched)
        return sched.error();
    run.gradientReady();
    run.gradientSync();
    run.optimizer();
    run.memory();
    run.breakdown();
    run.throughput();
    if (o.trace)
        run.trace();
    return std::move(run.res);
}

PlanRun::PlanRun(const Plan& plan_, const Model& m_, const Cluster& c_, const Strategy& s_, const SimOptions& o_,
                 const ResolvedStrategy& r_, Ctx x_)
    : plan(plan_), m(m_), c(c_), s(s_), o(o_), r(r_), node(c_.nodes.front()), x(std::move(x_)), pp(plan_.pp),
      V(plan_.virtual_stages), M(plan_.micro_batches), L(m_.layers.size()), P(plan_.programs.size())
{
    res.calibration_source = x.cal.source;
    res.notes = r.warnings;
}

// Program durations, per-kernel times, and per-layer sums.
void PlanRun::programTimes()
{
    progTime.assign(P, 0);
    progTp.assign(P, 0);
    kTime.resize(P);
    res.layers.resize(L);
    for (size_t i = 0; i < L; ++i)
        res.layers[i].layer = int(i);
    for (size_t pi = 0; pi < P; ++pi) {
        const Program& pr = plan.programs[pi];
        kTime[pi].resize(pr.kernels.size());
        // Overlapped collectives run beside the compute kernel before them
        // (and share it when several follow one): only what outlasts it counts.
        double beside = 0;
        size_t lastCompute = pr.kernels.size();
        for (size_t k = 0; k < pr.kernels.size(); ++k) {
            const Kernel& kn = pr.kernels[k];
            double t = kernelTime(x, kn, pr.phase);
            if (kn.kind != KernelKind::Collective) {
                beside = t;
                lastCompute = k;
            } else if (kn.overlapped) {
                if (const double slow = smMarginSlowdown(x, kn, pr.phase); slow > 0 && lastCompute < k) {
                    const double extra = kTime[pi][lastCompute] * slow;
                    kTime[pi][lastCompute] += extra;
                    progTime[pi] += extra;
                    beside += extra;
                    const Kernel& gemm = pr.kernels[lastCompute];
                    if (gemm.layer >= 0 && size_t(gemm.layer) < L) {
                        LayerTime& lt = res.layers[size_t(gemm.layer)];
                        (pr.phase == Phase::Forward ? lt.forward : lt.recompute) += extra;
                    }
                }
                const double hidden = std::min(t, beside);
                beside -= hidden;
                t -= hidden;
            } else {
                beside = 0;
            }
            kTime[pi][k] = t;
            progTime[pi] += t;
            if (kn.kind == KernelKind::Collective)
                progTp[pi] += t;
            if (kn.layer >= 0 && size_t(kn.layer) < L) {
                LayerTime& lt = res.layers[size_t(kn.layer)];
                (pr.phase == Phase::Forward ? lt.forward : pr.phase == Phase::Backward ? lt.backward : lt.recompute) += t;
            }
        }
    }
    fwdOf.assign(static_cast<size_t>(V), -1);
    bwdOf.assign(static_cast<size_t>(V), -1);
    recOf.assign(static_cast<size_t>(V), -1);
    for (size_t pi = 0; pi < P; ++pi) {
        const Program& pr = plan.programs[pi];
        (pr.phase == Phase::Forward ? fwdOf : pr.phase == Phase::Backward ? bwdOf : recOf)[size_t(pr.virtual_stage)] = int(pi);
    }
}

// Activations each virtual stage keeps per micro-batch. Full recomputation
// keeps only each block's input.
void PlanRun::activations()
{
    const bool sp = s.sequence_parallel && s.tp > 1;
    savedOf.assign(static_cast<size_t>(V), 0);
    std::vector<std::string> lastBlock(static_cast<size_t>(V));
    for (size_t i = 0; i < L; ++i) {
        const Layer& l = m.layers[i];
        const LayerAssignment& a = r.layers[i];
        if (a.recompute == Recompute::Full && !l.block.empty()) {
            if (l.block != lastBlock[size_t(a.stage)]) {
                const double hidden = double(m.dims.hidden ? m.dims.hidden : l.dims.in_features);
                savedOf[size_t(a.stage)] += hidden * double(x.b) * double(x.seq) * x.ab / (sp ? s.tp : 1) / s.cp;
                lastBlock[size_t(a.stage)] = l.block;
            }
            continue;
        }
        savedOf[size_t(a.stage)] += savedBytes(x, l, a);
    }
}

// A point-to-point transfer between two stages. Every rank of the stage
// sends at once: one NIC share each.
double PlanRun::p2pTime(int fromClass, int toClass, double bytes) const
{
    const int a = plan.classes[size_t(fromClass)].first_rank, b = plan.classes[size_t(toClass)].first_rank;
    if (a == b || bytes <= 0)
        return 0.0;
    const bool sameNode = a / x.perNode == b / x.perNode;
    const Paths p = pathsOf(node, x.cal);
    return sameNode ? bytes / p.intraBw + p.intraLat : bytes / std::min(p.intraBw, p.interBw / x.perNode) + p.interLat;
}

bool PlanRun::pending(int d) const
{
    const auto& steps = plan.classes[size_t(d)].steps;
    return ptr[size_t(d)] < steps.size() && steps[ptr[size_t(d)]].kind != StepKind::Sync &&
           steps[ptr[size_t(d)]].kind != StepKind::Optimizer;
}

// Run every rank class's steps against its neighbours'. A receive waits
// for the matching send; sends block the sender for the transfer
// (Megatron-LM's p2p_communication.py waits on its requests).
Result<bool> PlanRun::schedule()
{
    // ZeRO-3 gathers 16-bit (or fp32) parameters and reduce-scatters gradients:
    // the whole array's bytes, nccl-tests' convention.
    paramBytes = s.precision == Precision::FP32 ? 4 : 2;
    gradBytesZero = plan.gradient_bytes;
    // Gradients and optimizer state are reduced and sharded over the data- and
    // context-parallel ranks together (Megatron-LM's dp x cp group).
    dpAll = s.dp * s.cp;
    dpg = dpShape(x, dpAll);
    for (auto* v : {&devFree, &busy, &tpBusy, &commFree, &zeroWait, &lastStart})
        v->assign(static_cast<size_t>(pp), 0);
    ptr.assign(static_cast<size_t>(pp), 0);
    ran.resize(static_cast<size_t>(pp));
    vStageParams.assign(static_cast<size_t>(V), 0);
    for (size_t i = 0; i < L; ++i)
        vStageParams[size_t(r.layers[i].stage)] += detail::paramsLocal(m.layers[i], r.layers[i], s);
    bwdStartLast.assign(static_cast<size_t>(V), 0);
    bool progress = true;
    while (progress) {
        progress = false;
        for (int d = 0; d < pp; ++d)
            while (pending(d) && stepOnce(d))
                progress = true;
    }
    for (int d = 0; d < pp; ++d)
        if (pending(d))
            return Error{"strategy", "pipeline schedule", "internal: the schedule deadlocked at stage " + std::to_string(d)};
    return true;
}

// Stage d's next step: false when it is a receive whose send has not happened.
bool PlanRun::stepOnce(int d)
{
    const auto& steps = plan.classes[size_t(d)].steps;
    const Step& st = steps[ptr[size_t(d)]];
    if (st.kind == StepKind::Recv) {
        // Forward data comes from a lower virtual stage; we tell the
        // direction by the next Run's phase.
        const Program& next = plan.programs[size_t(steps[ptr[size_t(d)] + 1].program)];
        const bool fwd = next.phase == Phase::Forward;
        auto it = arrived.find({next.virtual_stage, st.micro, fwd});
        if (it == arrived.end())
            return false;
        devFree[size_t(d)] = std::max(devFree[size_t(d)], it->second);
    } else if (st.kind == StepKind::Send) {
        const double t = p2pTime(d, st.peer, st.bytes);
        devFree[size_t(d)] += t;
        busy[size_t(d)] += t;
        const Program& last = plan.programs[size_t(ran[size_t(d)].back().program)];
        const bool fwd = last.phase == Phase::Forward;
        arrived[{last.virtual_stage + (fwd ? 1 : -1), st.micro, fwd}] = devFree[size_t(d)];
    } else {
        runProgram(d, st);
    }
    ++ptr[size_t(d)];
    return true;
}

void PlanRun::runProgram(int d, const Step& st)
{
    const Program& pr = plan.programs[size_t(st.program)];
    double start = devFree[size_t(d)];
    if (s.zero_stage == 3 && dpAll > 1 && pr.phase != Phase::Recompute) {
        // ZeRO-3 gathers the chunk's parameters before each pass,
        // prefetched one pass ahead on the communication stream.
        const double g = collectiveTime(Collective::AllGather, vStageParams[size_t(pr.virtual_stage)] * paramBytes, dpg, node, x.cal);
        const double gStart = std::max(commFree[size_t(d)], lastStart[size_t(d)]);
        commFree[size_t(d)] = gStart + g;
        if (commFree[size_t(d)] > start) {
            zeroWait[size_t(d)] += commFree[size_t(d)] - start;
            start = commFree[size_t(d)];
        }
    }
    const double end = start + progTime[size_t(st.program)];
    if (pr.phase == Phase::Backward) {
        if (st.micro == M - 1)
            bwdStartLast[size_t(pr.virtual_stage)] = start;
        if (s.zero_stage == 3 && dpAll > 1) // reduce-scatter this micro-batch's gradients
            commFree[size_t(d)] = std::max(commFree[size_t(d)], end) +
                                  collectiveTime(Collective::ReduceScatter, vStageParams[size_t(pr.virtual_stage)] * gradBytesZero, dpg, node, x.cal);
    }
    busy[size_t(d)] += progTime[size_t(st.program)];
    tpBusy[size_t(d)] += progTp[size_t(st.program)];
    lastStart[size_t(d)] = start;
    devFree[size_t(d)] = end;
    ran[size_t(d)].push_back({st.program, st.micro, start, end});
}

// When each layer's gradient is ready: in the last micro-batch's backward,
// after the kernels before it in that program.
void PlanRun::gradientReady()
{
    layerReady.assign(L, 0);
    for (int v = 0; v < V; ++v) {
        const int pi = bwdOf[size_t(v)];
        if (pi < 0)
            continue;
        double t = bwdStartLast[size_t(v)]; // the recompute program ran just before, as its own step
        const Program& pr = plan.programs[size_t(pi)];
        for (size_t k = 0; k < pr.kernels.size(); ++k) {
            t += kTime[size_t(pi)][k];
            if (pr.kernels[k].layer >= 0)
                layerReady[size_t(pr.kernels[k].layer)] = t;
        }
    }
}

// Optimizer (Adam): a memory-bound pass reading each parameter's fp32
// master weight, two moments and gradient and writing the three state
// tensors and the 16-bit weight: ZeRO's 16 bytes/param of state
// (Rajbhandari et al. 2019, §3.1), sharded like the state.
void PlanRun::optimizer()
{
    const bool mixed = s.precision != Precision::FP32;
    wB = mixed ? 2 : 4;
    gB = gradBytes;
    oB = mixed ? 12 : 8;
    stepEnd.assign(static_cast<size_t>(pp), 0);
    optTime.assign(static_cast<size_t>(pp), 0);
    gatherAfter.assign(static_cast<size_t>(pp), 0);
    stepTime = 0;
    critical = 0;
    for (int d = 0; d < pp; ++d) {
        const double params = plan.classes[size_t(d)].parameters;
        const double shard = s.zero_stage >= 1 ? dpAll : 1;
        optTime[size_t(d)] = memoryTime(x, params / shard * (2 * oB + gB + wB));
        if ((s.zero_stage == 1 || s.zero_stage == 2) && dpAll > 1) {
            gatherAfter[size_t(d)] = collectiveTime(Collective::AllGather, params * wB, dpg, node, x.cal);
            // Overlapped, bucket by bucket beside the next step's first forward
            // pass of the stage: only what outlasts that pass is exposed.
            if (s.overlap_param_gather && !ran[size_t(d)].empty())
                gatherAfter[size_t(d)] =
                    std::max(0.0, gatherAfter[size_t(d)] - progTime[size_t(ran[size_t(d)].front().program)]);
        }
        double end = std::max({devFree[size_t(d)], syncEnd[size_t(d)], staleBound[size_t(d)]});
        if (s.zero_stage == 3)
            end = std::max(end, commFree[size_t(d)]);
        end += optTime[size_t(d)] + gatherAfter[size_t(d)];
        stepEnd[size_t(d)] = end;
        if (end > stepTime) {
            stepTime = end;
            critical = d;
        }
    }
    res.step_time = stepTime;
}

// Memory per device of each stage.
void PlanRun::memory()
{
    const double capacity = double(x.dev.memory_bytes);
    res.stage_memory.resize(static_cast<size_t>(pp));
    for (int d = 0; d < pp; ++d) {
        MemoryUse& mu = res.stage_memory[size_t(d)];
        const double n = dpAll;
        const double Pm = plan.classes[size_t(d)].parameters;
        double w = Pm * wB, g = Pm * gB, opt = Pm * oB;
        if (s.zero_stage >= 1)
            opt /= n;
        if (s.zero_stage >= 2)
            g /= n;
        if (s.zero_stage >= 3)
            w /= n;
        mu.parameters_optimizer = w + g + opt;
        // Peak of the activations alive along the schedule.
        double alive = 0, peak = 0;
        for (const Ran& rn : ran[size_t(d)]) {
            const Program& pr = plan.programs[size_t(rn.program)];
            if (pr.phase == Phase::Recompute)
                continue;
            const double a = savedOf[size_t(pr.virtual_stage)];
            alive += pr.phase == Phase::Forward ? a : -a;
            peak = std::max(peak, alive + (pr.phase == Phase::Forward ? 0 : a));
        }
        mu.activations = peak;
        mu.peak = mu.parameters_optimizer + mu.activations;
        mu.capacity = capacity;
        mu.oom = capacity > 0 && mu.peak > capacity;
        res.oom |= mu.oom;
        if (mu.peak > res.memory.peak)
            res.memory = mu;
    }
}

// Breakdown of the critical device.
void PlanRun::breakdown()
{
    const int d = critical;
    Breakdown& b = res.breakdown;
    b.compute = busy[size_t(d)];
    b.tp_comm = tpBusy[size_t(d)];
    const double computeEnd = devFree[size_t(d)];
    b.bubble = std::max(0.0, computeEnd - busy[size_t(d)] - zeroWait[size_t(d)]);
    const double commEnd = std::max(syncEnd[size_t(d)], s.zero_stage == 3 ? commFree[size_t(d)] : 0.0);
    b.exposed_comm = std::max(0.0, commEnd - computeEnd) + zeroWait[size_t(d)] + gatherAfter[size_t(d)];
    b.optimizer = optTime[size_t(d)];
    b.idle = std::max(0.0, stepTime - (b.compute + b.bubble + b.exposed_comm + b.optimizer));
    res.stage_busy = busy;
}

// Throughput and MFU.
void PlanRun::throughput()
{
    const CostAt model = modelCostAt(m, s.global_batch, x.seq, x.ab);
    res.model_flops = model.forward_flops + model.backward_flops;
    res.samples_per_s = double(s.global_batch) / stepTime;
    res.tokens_per_s = res.samples_per_s * double(x.seq);
    res.mfu = res.model_flops / (stepTime * double(c.deviceCount()) * x.peak);
}

// The predicted timeline: per stage, its programs' kernels, the optimizer
// and the step (the synchronization's records were written by gradientSync).
void PlanRun::trace()
{
    for (int d = 0; d < pp; ++d) {
        const int rank = plan.classes[size_t(d)].first_rank;
        res.trace.tracks.push_back({rank, 0, "compute"});
        res.trace.tracks.push_back({rank, 1, "data-parallel communication"});
        for (const Ran& rn : ran[size_t(d)]) {
            const Program& pr = plan.programs[size_t(rn.program)];
            double t = rn.start;
            for (size_t k = 0; k < pr.kernels.size(); ++k) {
                const Kernel& kn = pr.kernels[k];
                const double dur = kTime[size_t(rn.program)][k];
                TraceRecord rec;
                rec.rank = rank;
                rec.track = 0;
                rec.start_ns = int64_t(t * 1e9);
                rec.dur_ns = std::max<int64_t>(1, int64_t(dur * 1e9));
                rec.kind = kn.kind == KernelKind::Collective ? TraceKind::Collective : TraceKind::Compute;
                rec.name = kernelEventName(plan, kn, pr.phase, rn.micro);
                rec.layer = kn.layer;
                rec.op = int64_t(rn.program);
                rec.flops = kn.flops;
                rec.bytes = int64_t(kn.kind == KernelKind::Collective ? kn.coll_bytes : kn.bytes);
                res.trace.records.push_back(std::move(rec));
                t += dur;
            }
        }
        TraceRecord opt;
        opt.rank = rank;
        opt.track = 0;
        opt.start_ns = int64_t((stepEnd[size_t(d)] - optTime[size_t(d)] - gatherAfter[size_t(d)]) * 1e9);
        opt.dur_ns = std::max<int64_t>(1, int64_t(optTime[size_t(d)] * 1e9));
        opt.kind = TraceKind::Compute;
        opt.name = "optimizer step";
        res.trace.records.push_back(std::move(opt));
        // The step itself, as the executor records it, so that a
        // prediction and a measurement align step by step.
        res.trace.tracks.push_back({rank, 2, "steps"});
        TraceRecord step;
        step.rank = rank;
        step.track = 2;
        step.start_ns = 0;
        step.dur_ns = std::max<int64_t>(1, int64_t(stepEnd[size_t(d)] * 1e9));
        step.kind = TraceKind::Step;
        step.name = "ProfilerStep#0";
        res.trace.records.push_back(std::move(step));
    }
}

std::string predictionMetaJson(const SimResult& r)
{
    return nlohmann::json{{"step_time_s", r.step_time},
                          {"samples_per_s", r.samples_per_s},
                          {"mfu", r.mfu},
                          {"peak_memory_bytes", r.memory.peak},
                          {"oom", r.oom}}
        .dump();
}

} // namespace partita
