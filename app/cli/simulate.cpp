#include "simulate.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"
#include "partita/core/units.h"
#include "partita/executor/runsession.h"
#include "partita/profiler/chrometrace.h"
#include "partita/profiler/tracestore.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace partita::cli {

using nlohmann::json;

namespace {

std::string pct(double part, double whole)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%5.1f %%", whole > 0 ? 100 * part / whole : 0.0);
    return buf;
}

// The precision --dtype names, or the cluster's default.
Precision precisionFromOptions(const SimulateOptions& o, const Cluster& cluster)
{
    Precision precision = defaultPrecision(cluster);
    if (o.dtype == "fp16")
        precision = Precision::FP16;
    else if (o.dtype == "fp32")
        precision = Precision::FP32;
    else if (o.dtype == "bf16")
        precision = Precision::BF16;
    else if (o.dtype == "fp8")
        precision = Precision::FP8;
    return precision;
}

// The strategy file --strategy names.
Result<Strategy> strategyFromFile(const SimulateOptions& o)
{
    auto text = readTextFile(o.strategy);
    if (!text)
        return text.error();
    auto parsed = strategyFromJson(*text, o.strategy);
    if (!parsed)
        return parsed.error();
    return *parsed;
}

// The preset --preset names, built for the model and the cluster.
Result<Strategy> strategyFromPreset(const SimulateOptions& o, const Model& model, const Cluster& cluster,
                                    Precision precision, Recompute recompute)
{
    PresetOptions po;
    po.global_batch = o.globalBatch;
    po.micro_batch = o.microBatch;
    po.tp = o.tp;
    po.pp = o.pp;
    po.interleave = o.interleave;
    po.precision = precision;
    po.recompute = recompute;
    po.sequence_parallel = o.sequenceParallel;
    auto p = strategyPreset(o.preset, model, cluster, po);
    if (!p)
        return p.error();
    Strategy s = *p;
    if (o.zero > 0)
        s.zero_stage = o.zero;
    return s;
}

// The strategy the mesh flags describe, data parallelism filling the devices unless --dp is given.
Result<Strategy> strategyFromMesh(const SimulateOptions& o, const Cluster& cluster, Precision precision,
                                  Recompute recompute)
{
    Strategy s;
    const int devices = cluster.deviceCount();
    s.name = "command line";
    s.precision = precision;
    s.tp = o.tp;
    s.pp = o.pp;
    s.cp = o.cp;
    if (o.dp > 0) {
        s.dp = o.dp;
    } else {
        const int split = o.tp * o.pp * o.cp;
        if (devices % split != 0)
            return Error{"command line", o.cp > 1 ? "--tp/--cp/--pp" : "--tp/--pp",
                         (o.cp > 1 ? "tp x cp x pp = " : "tp x pp = ") + std::to_string(split) +
                             " does not divide the cluster's " + std::to_string(devices) + " devices"};
        s.dp = devices / split;
    }
    s.micro_batch = o.microBatch;
    s.global_batch = o.globalBatch > 0 ? o.globalBatch : int64_t(s.dp) * o.microBatch;
    s.interleave = o.interleave;
    s.schedule = o.interleave > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
    s.recompute = recompute;
    s.sequence_parallel = o.sequenceParallel;
    s.zero_stage = o.zero;
    s.fp32_grad_accumulation = precision != Precision::FP32 && (o.tp > 1 || o.pp > 1);
    // PyTorch's nn.Embedding and Megatron-LM's vocabulary-parallel
    // embedding give dense gradients, all-reduced whole.
    s.sync.sparse = false;
    return s;
}

// --cp applied to a preset or a strategy file (the mesh flags took it already).
Result<bool> applyContextParallelism(const SimulateOptions& o, Strategy& s)
{
    if (o.cp > 1 && !o.preset.empty()) {
        // The preset filled the devices with data parallelism: cp takes its share.
        if (s.dp % o.cp != 0)
            return Error{"command line", "--cp", "context parallelism " + std::to_string(o.cp) +
                                                     " does not divide the preset's data parallelism " +
                                                     std::to_string(s.dp)};
        s.dp /= o.cp;
        s.cp = o.cp;
    } else if (o.cp > 1 && !o.strategy.empty()) {
        s.cp = o.cp; // the strategy's mesh must make room for it: resolveStrategy says so if not
    }
    return true;
}

// The overlap, attention and stage-size flags, over whatever the strategy had.
void applyStrategyOverrides(const SimulateOptions& o, Strategy& s)
{
    if (o.tpCommOverlap)
        s.tp_comm_overlap = true;
    if (o.overlapGradReduce)
        s.overlap_grad_reduce = *o.overlapGradReduce;
    if (o.overlapParamGather)
        s.overlap_param_gather = true;
    if (!o.cpComm.empty())
        s.cp_comm = o.cpComm == "all_gather" ? ContextComm::AllGather : ContextComm::P2P;
    if (!o.attention.empty())
        s.attention = o.attention == "unfused"  ? Attention::Unfused
                      : o.attention == "flash2" ? Attention::Flash2
                                                : Attention::Fused;
    if (o.firstStageLayers > 0)
        s.first_stage_blocks = o.firstStageLayers;
    if (o.lastStageLayers > 0)
        s.last_stage_blocks = o.lastStageLayers;
}

} // namespace

Result<Strategy> strategyFromOptions(const SimulateOptions& o, const Model& model, const Cluster& cluster)
{
    const Precision precision = precisionFromOptions(o, cluster);
    const Recompute recompute =
        o.recompute == "full" ? Recompute::Full : o.recompute == "selective" ? Recompute::Selective : Recompute::None;

    auto built = !o.strategy.empty() ? strategyFromFile(o)
                 : !o.preset.empty() ? strategyFromPreset(o, model, cluster, precision, recompute)
                                     : strategyFromMesh(o, cluster, precision, recompute);
    if (!built)
        return built.error();
    Strategy s = *built;
    if (auto cp = applyContextParallelism(o, s); !cp)
        return cp.error();
    applyStrategyOverrides(o, s);
    return s;
}

Result<std::optional<Calibration>> loadCalibration(const std::string& path)
{
    if (path.empty())
        return std::optional<Calibration>{};
    auto text = readTextFile(path);
    if (!text)
        return text.error();
    auto cal = calibrationFromJson(*text, path);
    if (!cal)
        return cal.error();
    return std::optional<Calibration>(*cal);
}

Result<StrategyInputs> loadStrategyInputs(const SimulateOptions& o)
{
    auto model = loadModel(o.model);
    if (!model)
        return model.error();
    auto cluster = loadCluster(o.cluster, ClusterLoadOptions{o.device, o.nodeTemplate});
    if (!cluster)
        return cluster.error();
    auto strategy = strategyFromOptions(o, *model, *cluster);
    if (!strategy)
        return strategy.error();
    return StrategyInputs{std::move(*model), std::move(*cluster), std::move(*strategy)};
}

namespace {

// The simulator's options: the sequence length, a trace when one is wanted, the calibration file's constants.
Result<SimOptions> simOptionsFromOptions(const SimulateOptions& o)
{
    SimOptions so;
    so.seq_len = o.seqLen;
    so.trace = !o.traceOut.empty() || !o.project.empty();
    auto cal = loadCalibration(o.calibration);
    if (!cal)
        return cal.error();
    if (*cal)
        so.calibration = **cal;
    return so;
}

// Writes the lowered plan to --plan-out, when given.
Result<bool> writePlanOut(const SimulateOptions& o, const Plan& plan)
{
    if (!o.planOut.empty()) {
        if (auto w = writeFileAtomically(o.planOut, planToJson(plan)); !w)
            return w.error();
    }
    return true;
}

// Writes the predicted trace to --trace-out, when given.
Result<bool> writeTraceOut(const SimulateOptions& o, const SimResult& r)
{
    if (!o.traceOut.empty()) {
        auto w = writeChromeTrace(r.trace, o.traceOut);
        if (!w)
            return w.error();
    }
    return true;
}

// Stores the prediction as a run of --project, beside the documents it came from; its id, or 0 without a project.
Result<int64_t> storePrediction(const SimulateOptions& o, const Model& model, const Cluster& cluster, const Strategy& s,
                                const SimResult& r)
{
    if (o.project.empty())
        return int64_t(0);
    auto store = TraceStore::open(o.project);
    if (!store)
        return store.error();
    const std::string strategyName = s.name.empty() ? (o.preset.empty() ? "manual" : o.preset) : s.name;
    auto docs = saveRunDocuments(**store, model, o.model, cluster, s, strategyName);
    if (!docs)
        return docs.error();
    RunInfo info;
    info.name = o.runName.empty() ? strategyName + " (predicted)" : o.runName;
    info.kind = RunKind::Predicted;
    info.source = "partita-cli simulate";
    info.model_id = docs->model;
    info.cluster_id = docs->cluster;
    info.strategy_id = docs->strategy;
    const std::string meta = predictionMetaJson(r);
    auto id = (*store)->storeTrace(r.trace, info, meta);
    if (!id)
        return id.error();
    return *id;
}

// The per-stage busy time and memory as a JSON array.
json stagesJson(const SimResult& r)
{
    json stages = json::array();
    for (size_t d = 0; d < r.stage_memory.size(); ++d)
        stages.push_back({{"stage", d},
                          {"busy_s", r.stage_busy[d]},
                          {"parameters_optimizer_bytes", r.stage_memory[d].parameters_optimizer},
                          {"activations_bytes", r.stage_memory[d].activations},
                          {"peak_bytes", r.stage_memory[d].peak},
                          {"oom", r.stage_memory[d].oom}});
    return stages;
}

// The per-layer times as a JSON array.
json layersJson(const Model& model, const SimResult& r)
{
    json layers = json::array();
    for (const auto& lt : r.layers)
        layers.push_back({{"name", model.layers[size_t(lt.layer)].name},
                          {"forward_s", lt.forward},
                          {"backward_s", lt.backward},
                          {"recompute_s", lt.recompute},
                          {"sync_s", lt.sync}});
    return layers;
}

// Prints the prediction as JSON (--json).
void printSimulateJson(const SimulateOptions& o, int64_t runId, const Model& model, const Cluster& cluster,
                       const Strategy& s, int64_t seq, const SimResult& r)
{
    const Breakdown& b = r.breakdown;
    json j;
    j["model"] = o.model;
    if (runId)
        j["run_id"] = runId;
    j["cluster"] = cluster.name;
    j["strategy"] = json::parse(strategyToJson(s));
    j["seq_len"] = seq;
    j["step_time_s"] = r.step_time;
    j["throughput"] = {{"samples_per_s", r.samples_per_s}, {"tokens_per_s", r.tokens_per_s}};
    j["mfu"] = r.mfu;
    j["model_flops_per_step"] = r.model_flops;
    j["oom"] = r.oom;
    j["breakdown"] = {{"compute_s", b.compute}, {"tp_comm_s", b.tp_comm}, {"exposed_comm_s", b.exposed_comm},
                      {"bubble_s", b.bubble}, {"optimizer_s", b.optimizer}, {"idle_s", b.idle}};
    j["memory"] = {{"parameters_optimizer_bytes", r.memory.parameters_optimizer},
                   {"activations_bytes", r.memory.activations},
                   {"peak_bytes", r.memory.peak},
                   {"capacity_bytes", r.memory.capacity}};
    j["stages"] = stagesJson(r);
    j["layers"] = layersJson(model, r);
    j["notes"] = r.notes;
    j["calibration_source"] = r.calibration_source;
    std::cout << j.dump(2) << "\n";
}

// Prints the model, the cluster, the strategy, the step time and the throughput.
void printSimulateSummary(const Model& model, const Cluster& cluster, const Strategy& s, int64_t seq,
                          const SimResult& r)
{
    std::cout << "Model        " << model.name << " (" << withThousands(model.parameterCount()) << " parameters), sequence "
              << seq << "\n"
              << "Cluster      " << cluster.name << ", " << cluster.deviceCount() << " devices\n"
              << "Strategy     " << (s.name.empty() ? "unnamed" : s.name) << ": dp " << s.dp << " x tp " << s.tp
              << (s.cp > 1 ? " x cp " + std::to_string(s.cp) + " (" + std::string(contextCommName(s.cp_comm)) + ")" : "")
              << " x pp " << s.pp << (s.interleave > 1 ? " (interleave " + std::to_string(s.interleave) + ")" : "") << ", global batch "
              << s.global_batch << ", micro-batch " << s.micro_batch << ", " << precisionName(s.precision)
              << ", recompute " << recomputeName(s.recompute) << (s.sequence_parallel ? ", sequence parallel" : "")
              << (s.zero_stage ? ", ZeRO-" + std::to_string(s.zero_stage) : "") << "\n\n"
              << "Step time    " << formatSeconds(r.step_time) << "\n"
              << "Throughput   " << r.samples_per_s << " samples/s"
              << (model.sequence ? ", " + formatCount(r.tokens_per_s) + " tokens/s" : "") << "\n";
}

// Prints the MFU, the step's breakdown and the memory per device.
void printSimulateBreakdown(const SimResult& r)
{
    const Breakdown& b = r.breakdown;
    char mfu[32];
    std::snprintf(mfu, sizeof mfu, "%.1f %%", 100 * r.mfu);
    std::cout << "MFU          " << mfu << "\n\n"
              << "Breakdown (most loaded stage)\n"
              << "  compute        " << formatSeconds(b.compute) << "  " << pct(b.compute, r.step_time)
              << "  (of which tensor-parallel collectives " << formatSeconds(b.tp_comm) << ")\n"
              << "  exposed comm   " << formatSeconds(b.exposed_comm) << "  " << pct(b.exposed_comm, r.step_time) << "\n"
              << "  pipeline bubble " << formatSeconds(b.bubble) << " " << pct(b.bubble, r.step_time) << "\n"
              << "  optimizer      " << formatSeconds(b.optimizer) << "  " << pct(b.optimizer, r.step_time) << "\n"
              << "  idle           " << formatSeconds(b.idle) << "  " << pct(b.idle, r.step_time) << "\n\n"
              << "Memory per device (most loaded)\n"
              << "  parameters + optimizer " << formatBytes(r.memory.parameters_optimizer) << "\n"
              << "  activations            " << formatBytes(r.memory.activations) << "\n"
              << "  peak                   " << formatBytes(r.memory.peak) << " of " << formatBytes(r.memory.capacity)
              << (r.oom ? "  OUT OF MEMORY" : "") << "\n";
}

// Prints the notes, the calibration's source and where the plan, the run and the trace went.
void printSimulateOutputs(const SimulateOptions& o, const Plan& plan, int64_t runId, const SimResult& r)
{
    for (const auto& n : r.notes)
        std::cout << "note: " << n << "\n";
    std::cout << "calibration: " << r.calibration_source << "\n";
    if (!o.planOut.empty())
        std::cout << "plan: " << o.planOut << " (" << plan.programs.size() << " programs, " << plan.classes.size()
                  << " rank classes)\n";
    if (runId)
        std::cout << "run " << runId << " stored in " << o.project << "\n";
    if (!o.traceOut.empty())
        std::cout << "trace: " << o.traceOut << " (" << r.trace.records.size() << " records)\n";
}

} // namespace

int runSimulate(const SimulateOptions& o)
{
    auto in = loadStrategyInputs(o);
    if (!in)
        return fail(in.error());
    const Model* model = &in->model;
    const Cluster* cluster = &in->cluster;
    const Strategy& s = in->strategy;

    auto so = simOptionsFromOptions(o);
    if (!so)
        return fail(so.error());
    auto plan = lowerPlan(*model, *cluster, s, o.seqLen);
    if (!plan)
        return fail(plan.error());
    if (auto w = writePlanOut(o, *plan); !w)
        return fail(w.error());
    auto r = simulatePlan(*plan, *model, *cluster, s, *so);
    if (!r)
        return fail(r.error());
    if (auto w = writeTraceOut(o, *r); !w)
        return fail(w.error());
    auto runId = storePrediction(o, *model, *cluster, s, *r);
    if (!runId)
        return fail(runId.error());
    const int64_t seq = model->sequence ? (o.seqLen > 0 ? o.seqLen : model->seq_len) : 1;
    if (o.json) {
        printSimulateJson(o, *runId, *model, *cluster, s, seq, *r);
        return 0;
    }
    printSimulateSummary(*model, *cluster, s, seq, *r);
    printSimulateBreakdown(*r);
    printSimulateOutputs(o, *plan, *runId, *r);
    return 0;
}

int runPresets(bool asJson)
{
    if (asJson) {
        json j;
        json strategies = json::array();
        for (const auto& p : strategyPresets())
            strategies.push_back({{"name", p.name}, {"description", p.description}});
        j["strategies"] = strategies;
        j["clusters"] = clusterPresetNames();
        j["devices"] = devicePresetNames();
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << "Strategy presets (--preset NAME):\n";
    for (const auto& p : strategyPresets())
        std::cout << "  " << p.name << std::string(p.name.size() < 24 ? 24 - p.name.size() : 1, ' ') << p.description << "\n";
    std::cout << "\nCluster presets (NAME or NAME:NODES):\n";
    for (const auto& n : clusterPresetNames())
        std::cout << "  " << n << "\n";
    std::cout << "\nDevice presets (--device NAME, \"preset\" in cluster files):\n";
    for (const auto& n : devicePresetNames())
        std::cout << "  " << n << "\n";
    return 0;
}

} // namespace partita::cli
