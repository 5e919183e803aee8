#include "partita/executor/calibrate.h"

#include "partita/core/simulator.h"
#include "partita/executor/worker.h"

#include "curvefit.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace partita {

using detail::BinSample;
using detail::binnedCurve;

namespace {

struct Sample
{
    double dur = 0;
    TraceRecord rec;
    const Kernel* kernel = nullptr; // compute or tensor-parallel collective
    bool memoryOnly = false;        // the optimizer's pass
    Collective coll = Collective::AllReduce;
    bool isCollective = false;
    int group = 1;
};

// One sample per (rank, op): an op's records (a GPU op may launch several
// kernels) summed, then taken per measured step.
Result<std::vector<Sample>> readSamples(const TraceStore& store, int64_t run, const Plan& plan)
{
    std::map<std::pair<int32_t, int64_t>, Sample> byOp;
    std::map<int32_t, int> stepsOf;
    auto each = store.forEachEvent(run, [&](const StoredEvent& e) {
        const TraceRecord& r = e.record;
        if (r.kind == TraceKind::Step) {
            ++stepsOf[r.rank];
            return;
        }
        if (r.op < 0 || r.dur_ns <= 0)
            return;
        if (auto it = byOp.find({r.rank, r.op}); it != byOp.end()) {
            it->second.dur += double(r.dur_ns) * 1e-9;
            it->second.rec.flops += r.flops;
            it->second.rec.bytes += r.bytes;
            return;
        }
        const RankClass* rc = rankClassOf(plan, r.rank);
        if (!rc)
            return;
        const size_t si = size_t(r.op / 100000);
        const int ki = int(r.op % 100000);
        if (si >= rc->steps.size())
            return;
        const Step& st = rc->steps[si];
        Sample s;
        s.dur = double(r.dur_ns) * 1e-9;
        s.rec = r;
        if (st.kind == StepKind::Run) {
            const Program& p = plan.programs[size_t(st.program)];
            if (ki == kPreGather || ki == kPostScatter) {
                s.isCollective = true;
                s.coll = ki == kPreGather ? Collective::AllGather : Collective::ReduceScatter;
                s.group = plan.dp * plan.cp;
            } else if (size_t(ki) < p.kernels.size()) {
                s.kernel = &p.kernels[size_t(ki)];
                if (s.kernel->kind == KernelKind::Collective) {
                    s.isCollective = true;
                    s.coll = s.kernel->coll;
                    s.group = s.kernel->group == KernelGroup::Expert    ? plan.ep
                              : s.kernel->group == KernelGroup::Context ? plan.cp
                                                                        : plan.tp;
                }
            } else {
                return;
            }
        } else if (st.kind == StepKind::Optimizer) {
            if (ki == kPostGather) {
                s.isCollective = true;
                s.coll = Collective::AllGather;
                s.group = plan.dp * plan.cp;
            } else {
                s.memoryOnly = true;
            }
        } else if (st.kind == StepKind::Sync && st.method != SyncMethod::ParameterServer) {
            s.isCollective = true;
            s.coll = st.sparse ? Collective::AllGather : plan.zero_stage >= 1 ? Collective::ReduceScatter : Collective::AllReduce;
            s.group = plan.dp;
        } else {
            return; // transfers and parameter-server traffic: not a collective of the model's formulas
        }
        byOp.emplace(std::make_pair(r.rank, r.op), std::move(s));
    });
    if (!each)
        return each.error();
    std::vector<Sample> samples;
    for (auto& [key, s] : byOp) {
        const double steps = std::max(1, stepsOf[key.first]);
        s.dur /= steps;
        s.rec.flops /= steps;
        s.rec.bytes = int64_t(double(s.rec.bytes) / steps);
        samples.push_back(std::move(s));
    }
    return samples;
}

// 1. Memory-bound ops.
void fitMemory(const std::vector<Sample>& samples, double bw, CalibrationFit& fit)
{
    Calibration& cal = fit.calibration;
    std::vector<BinSample> mem;
    for (const Sample& s : samples)
        if (s.memoryOnly || (s.kernel && s.kernel->kind == KernelKind::Memory && s.rec.bytes > 0)) {
            mem.push_back({double(s.rec.bytes) / 1e6, double(s.rec.bytes) / bw, s.dur});
            ++fit.memory_ops;
        }
    if (!mem.empty())
        cal.memory = binnedCurve(mem);
    else
        fit.notes.push_back("no memory-bound op measured: memory efficiency kept from " + cal.source);
}

// 2. GEMMs, less the memory time the simulator adds to them.
void fitGemms(const std::vector<Sample>& samples, const Plan& plan, double peak, double bw, CalibrationFit& fit)
{
    Calibration& cal = fit.calibration;
    // A measured unaligned-GEMM factor stays, and the unaligned GEMMs stay
    // out of the curve it applies to; without one, they are fitted like the rest.
    const bool keepUnaligned = cal.unaligned_matmul_factor < 1;
    const int64_t align = plan.precision == Precision::FP32 ? 4 : 8; // elements in 16 bytes
    std::vector<BinSample> mm;
    for (const Sample& s : samples) {
        if (!s.kernel || (s.kernel->kind != KernelKind::Gemm && s.kernel->kind != KernelKind::BatchedGemm) || s.rec.flops <= 0)
            continue;
        if (keepUnaligned && (s.kernel->m % align || s.kernel->n % align || s.kernel->k % align))
            continue; // costed by the measured factor
        const double memT = s.rec.bytes > 0 ? double(s.rec.bytes) / (bw * cal.memory.at(double(s.rec.bytes) / 1e6)) : 0;
        const double mmT = s.dur - memT;
        if (mmT <= s.dur * 0.05)
            continue; // the op's time is its memory traffic: nothing to learn about matmuls
        const double perOp = s.rec.flops / std::max(1, s.kernel->ops);
        mm.push_back({perOp / 1e9, s.rec.flops / peak, mmT});
        ++fit.gemm_ops;
    }
    if (!mm.empty())
        cal.matmul = binnedCurve(mm);
    else
        fit.notes.push_back("no GEMM measured: matmul efficiency kept from " + cal.source);
}

// 3. Collectives: the time at full link bandwidth over the measured time.
void fitCollectives(const std::vector<Sample>& samples, const Cluster& cluster, CalibrationFit& fit)
{
    Calibration& cal = fit.calibration;
    const Node& node = cluster.nodes.front();
    Calibration ideal = cal;
    ideal.intra_link_efficiency = 1;
    ideal.inter_link_efficiency = 1;
    const bool multiNode = cluster.nodes.size() > 1;
    double idealSum = 0, measuredSum = 0;
    for (const Sample& s : samples) {
        if (!s.isCollective || s.group <= 1 || s.rec.bytes <= 0)
            continue;
        GroupShape g;
        g.n = s.group;
        const int perNode = std::max(1, int(node.devices.size()));
        g.per_node = std::min(s.group, perNode);
        g.nodes = (s.group + g.per_node - 1) / g.per_node;
        idealSum += collectiveTime(s.coll, double(s.rec.bytes), g, node, ideal);
        measuredSum += s.dur;
        ++fit.collectives;
    }
    if (fit.collectives > 0 && idealSum > 0 && measuredSum > 0) {
        double eff = std::min(1.0, idealSum / measuredSum);
        if (eff < kMinLinkEfficiency) {
            fit.notes.push_back("collectives reached " + std::to_string(eff * 100) +
                                " % of the link bandwidth: the ranks were starved, not the link; kept at the floor of " +
                                std::to_string(kMinLinkEfficiency * 100) + " %");
            eff = kMinLinkEfficiency;
        }
        if (multiNode)
            cal.inter_link_efficiency = eff;
        else
            cal.intra_link_efficiency = eff;
    } else {
        fit.notes.push_back("no collective measured: link efficiencies kept from " + cal.source);
    }
}

} // namespace

Result<CalibrationFit> fitCalibration(const TraceStore& store, int64_t run, const Plan& plan, const Cluster& cluster,
                                      const std::string& label)
{
    if (cluster.nodes.empty() || cluster.nodes.front().devices.empty())
        return Error{label, "cluster", "the run's cluster has no device"};
    const DeviceSpec& dev = cluster.nodes.front().devices.front();
    const std::string dtype(precisionName(plan.precision));
    const auto pk = dev.peak_flops.find(dtype);
    if (pk == dev.peak_flops.end() || pk->second <= 0)
        return Error{label, "cluster", "the device '" + dev.name + "' has no peak FLOP/s for " + dtype +
                                           ": efficiencies are fractions of it"};
    if (dev.memory_bandwidth <= 0)
        return Error{label, "cluster", "the device '" + dev.name + "' has no memory bandwidth"};
    auto samples = readSamples(store, run, plan);
    if (!samples)
        return samples.error();

    CalibrationFit fit;
    fit.calibration = defaultCalibration(dev);
    Calibration& cal = fit.calibration;
    cal.device = dev.name;
    cal.kernel_overhead = 0; // folded into the fitted efficiencies
    cal.additive = true;
    // One run, one precision: its fitted curve is the matmul curve for all
    // (a default's per-precision curves would override it).
    cal.matmul_by_precision.clear();
    cal.measured.clear();
    fitMemory(*samples, dev.memory_bandwidth, fit);
    fitGemms(*samples, plan, pk->second, dev.memory_bandwidth, fit);
    fitCollectives(*samples, cluster, fit);
    cal.source = "fitted to measured run " + std::to_string(run) + " of " + label + " (" + std::to_string(fit.gemm_ops) +
                 " GEMMs, " + std::to_string(fit.memory_ops) + " memory-bound ops, " + std::to_string(fit.collectives) +
                 " collectives) on " + dev.name;
    return fit;
}

} // namespace partita
