// A strategy run for real, end to end (runsession.h).
#include "partita/executor/runsession.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/strategy.h"
#include "partita/executor/asplanned.h"
#include "partita/executor/localcpu.h"
#include "partita/executor/localmachine.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <ctime>

namespace partita {

using nlohmann::json;

namespace {

void note(const RunEvents& ev, const std::string& text)
{
    if (ev.on_note)
        ev.on_note(text);
}

// This machine's CPU as the cluster: measured once per project and rank
// count, then reused, so that predictions of later runs, and calibrations
// fitted against them, stay on the same reference.
Result<Cluster> localCpuCluster(TraceStore& store, const RunRequest& r)
{
    const Strategy* s = r.strategy ? &*r.strategy : nullptr;
    const int ranks = r.ranks > 0 ? r.ranks : s ? std::max(1, s->dp) * s->tp * s->cp * s->pp : 1;
    const std::string name = localCpuClusterName(ranks);
    if (!r.remeasure)
        if (auto docs = store.documents("cluster"))
            for (const Document& d : *docs)
                if (d.name == name)
                    if (auto c = clusterFromJson(d.body, r.project + ": cluster document " + std::to_string(d.id)))
                        return *c;
    return measureLocalCpu(r.launch.worker, ranks);
}

Result<Cluster> runCluster(TraceStore& store, const RunRequest& r)
{
    if (r.cluster != "local")
        return loadCluster(r.cluster, r.cluster_options);
    if (r.launch.backend != "cuda")
        return localCpuCluster(store, r);
    // This machine's GPUs, one rank each.
    LocalMachine lm = detectLocalMachine();
    if (lm.cluster.deviceCount() == 0 || lm.cluster.nodes.front().devices.front().kind != "gpu")
        return Error{"--cluster", "local", "no GPU on this machine for the CUDA backend"};
    return lm.cluster;
}

// The calibration the prediction uses: the request's, else this CPU's own
// tables (not GPU ones) for this machine's CPU, the cluster aligned to them.
Result<std::optional<Calibration>> runCalibration(const RunRequest& r, Cluster& cluster, const RunEvents& ev)
{
    if (r.calibration)
        return r.calibration;
    if (r.cluster != "local" || r.launch.backend == "cuda")
        return std::optional<Calibration>{};
    std::vector<std::string> notes;
    auto local = localCpuCalibrationCached(r.launch.worker, r.remeasure, &notes);
    if (!local)
        return local.error();
    for (const std::string& n : notes)
        note(ev, n);
    if (const std::string aligned = alignToCalibration(cluster, *local); !aligned.empty())
        note(ev, "cluster: " + aligned);
    return std::optional<Calibration>(*local);
}

// The launch as it will run, checked before anything is stored.
Result<LaunchSpec> checkedLaunch(const RunRequest& r, const Plan& plan)
{
    LaunchSpec spec = r.launch;
    spec.ranks = plan.world;
    LaunchSpec check = spec; // paths are filled by executeRun; the rest is checked before anything runs
    check.plan = check.out = check.hostfile = "-";
    if (auto cmd = launchCommand(check); !cmd)
        return cmd.error();
    return spec;
}

MeasuredRunOptions measuredRunOptions(const RunRequest& r, const RunOutcome& o, const LaunchSpec& spec)
{
    const std::string id = runStamp();
    const std::string name = r.run_name.empty() ? strategyLabel(r, o.prediction.strategy) : r.run_name;
    MeasuredRunOptions mo;
    mo.launch = spec;
    mo.run_dir = r.project + ".runs/" + id;
    mo.remote_dir = r.remote_root.empty() ? "/tmp/partita-run-" + id : r.remote_root + "/" + id;
    mo.info.name = name + " (measured, " + spec.backend + ")";
    mo.info.source = r.source + " --backend " + spec.backend + " --launcher " + std::string(launcherName(spec.kind));
    mo.info.model_id = o.documents.model;
    mo.info.cluster_id = o.documents.cluster;
    mo.info.strategy_id = o.documents.strategy;
    const SimResult& p = o.prediction.predicted;
    mo.meta_extra = json{{"predicted_run", o.predicted_run_id},
                         {"predicted_step_time_s", p.step_time},
                         {"backend", spec.backend},
                         {"calibration", p.calibration_source},
                         {"predicted_shape_scale", spec.shape_scale},
                         {"not_as_planned", o.not_as_planned}}
                        .dump();
    return mo;
}

} // namespace

Result<StoredDocuments> saveRunDocuments(TraceStore& store, const Model& model, const std::string& modelLabel,
                                         const Cluster& cluster, const Strategy& s, const std::string& strategyName)
{
    auto md = store.saveDocument("model", model.name.empty() ? modelLabel : model.name, modelToJson(model));
    if (!md)
        return md.error();
    auto cd = store.saveDocument("cluster", cluster.name, clusterToJson(cluster));
    if (!cd)
        return cd.error();
    auto sd = store.saveDocument("strategy", strategyName, strategyToJson(s));
    if (!sd)
        return sd.error();
    return StoredDocuments{md->id, cd->id, sd->id};
}

const char* runStageName(RunStage s)
{
    switch (s) {
    case RunStage::Predicting: return "predicting";
    case RunStage::Launching: return "launching";
    case RunStage::Comparing: return "comparing";
    }
    return "?";
}

std::string runStamp()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    return std::string(buf) + "-" + std::to_string(getpid());
}

std::string strategyLabel(const RunRequest& r, const Strategy& s)
{
    return s.name.empty() ? (r.strategy_label.empty() ? "manual" : r.strategy_label) : s.name;
}

Result<RunPrediction> predictRun(TraceStore& store, const RunRequest& r, const RunEvents& events)
{
    if (events.on_stage)
        events.on_stage(RunStage::Predicting);
    RunPrediction p;
    auto cluster = runCluster(store, r);
    if (!cluster)
        return cluster.error();
    p.cluster = std::move(*cluster);
    if (r.strategy) {
        p.strategy = *r.strategy;
    } else if (r.make_strategy) {
        auto strategy = r.make_strategy(r.model, p.cluster);
        if (!strategy)
            return strategy.error();
        p.strategy = std::move(*strategy);
    } else {
        return Error{r.project, {}, "the run names no strategy"};
    }
    auto cal = runCalibration(r, p.cluster, events);
    if (!cal)
        return cal.error();
    auto plan = lowerPlan(r.model, p.cluster, p.strategy, r.seq_len);
    if (!plan)
        return plan.error();
    p.plan = std::move(*plan);
    SimOptions so;
    so.seq_len = r.seq_len;
    so.trace = true;
    if (*cal)
        so.calibration = **cal;
    // A run at a shape scale is predicted at that scale: what it will execute.
    const double scale = r.launch.shape_scale;
    auto predicted = simulatePlan(scale < 1 ? scalePlan(p.plan, scale) : p.plan, r.model, p.cluster, p.strategy, so);
    if (!predicted)
        return predicted.error();
    p.predicted = std::move(*predicted);
    return p;
}

Result<int64_t> storePrediction(TraceStore& store, const RunRequest& r, const RunPrediction& p, StoredDocuments& docs)
{
    const std::string strategyName = strategyLabel(r, p.strategy);
    auto saved = saveRunDocuments(store, r.model, r.model_label, p.cluster, p.strategy, strategyName);
    if (!saved)
        return saved.error();
    docs = *saved;
    RunInfo info;
    info.name = (r.run_name.empty() ? strategyName : r.run_name) + " (predicted)";
    info.kind = RunKind::Predicted;
    info.source = r.source;
    info.model_id = docs.model;
    info.cluster_id = docs.cluster;
    info.strategy_id = docs.strategy;
    return store.storeTrace(p.predicted.trace, info,
                            json{{"step_time_s", p.predicted.step_time},
                                 {"samples_per_s", p.predicted.samples_per_s},
                                 {"mfu", p.predicted.mfu},
                                 {"peak_memory_bytes", p.predicted.memory.peak},
                                 {"calibration", p.predicted.calibration_source}}
                                .dump());
}

Result<RunOutcome> runStrategy(const RunRequest& r, const RunEvents& events, const std::atomic<bool>* cancel)
{
    if (r.launch.backend == "cuda")
        if (std::string why; !cudaBackendAvailable(&why))
            return Error{"--backend", "cuda", "no CUDA backend for GPUs here (" + why + "); use the CPU backend"};
    if (r.project.empty())
        return Error{"project", {}, "a measured run is stored in a project: name its .partita file"};
    if (access(r.launch.worker.c_str(), X_OK) != 0)
        return Error{r.launch.worker, {}, "the worker (partita-worker) cannot be run"};
    auto store = TraceStore::open(r.project);
    if (!store)
        return store.error();
    RunOutcome out;
    auto prediction = predictRun(**store, r, events);
    if (!prediction)
        return prediction.error();
    out.prediction = std::move(*prediction);
    const Plan& plan = out.prediction.plan;
    auto spec = checkedLaunch(r, plan);
    if (!spec)
        return spec.error();
    auto predictedId = storePrediction(**store, r, out.prediction, out.documents);
    if (!predictedId)
        return predictedId.error();
    out.predicted_run_id = *predictedId;
    auto resolved = resolveStrategy(out.prediction.strategy, r.model, out.prediction.cluster);
    if (!resolved)
        return resolved.error();
    out.not_as_planned = notAsPlanned(plan, *resolved, spec->backend);

    if (events.on_stage)
        events.on_stage(RunStage::Launching);
    MeasuredRunOptions mo = measuredRunOptions(r, out, *spec);
    out.run_dir = mo.run_dir;
    mo.on_line = events.on_line;
    mo.cancel = cancel;
    auto measured = executeRun(**store, plan, mo);
    if (!measured)
        return measured.error();
    out.measured = std::move(*measured);
    if (events.on_stage)
        events.on_stage(RunStage::Comparing);
    auto cmp = compareWithPrediction(**store, out.measured, plan, r.model, out.prediction.predicted);
    if (!cmp)
        return cmp.error();
    out.comparison = std::move(*cmp);
    return out;
}

} // namespace partita
