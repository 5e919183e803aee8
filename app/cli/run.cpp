#include "run.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"
#include "partita/core/units.h"
#include "partita/executor/asplanned.h"
#include "partita/executor/calibrate.h"
#include "partita/executor/localmachine.h"
#include "partita/executor/measuredrun.h"

#include <nlohmann/json.hpp>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <cerrno>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

namespace partita::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_cancel{false};
void onSignal(int) { g_cancel = true; }

// This machine measured by the worker (the process that links OpenBLAS).
Result<Cluster> measureLocalCpu(const std::string& worker, int ranks)
{
    auto text = workerOutput(worker, "--measure-cpu " + std::to_string(ranks));
    if (!text)
        return text.error();
    return clusterFromJson(*text, worker + " --measure-cpu");
}

} // namespace

std::string runStamp()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    return std::string(buf) + "-" + std::to_string(getpid());
}

std::string signedPercent(double e)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%+.1f %%", 100 * e);
    return buf;
}

const std::atomic<bool>* cancelOnSignals()
{
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    return &g_cancel;
}

Result<LaunchSpec> launchSpecOf(const RunCliOptions& o)
{
    LaunchSpec spec;
    spec.kind = o.launcher == "ssh" ? LauncherKind::Ssh : o.launcher == "slurm" ? LauncherKind::Slurm : LauncherKind::Local;
    spec.timeout_s = o.timeout;
    if (!o.sshConfig.empty())
        spec.ssh_options.insert(spec.ssh_options.end(), {"-F", o.sshConfig});
    if (!o.sshIdentity.empty())
        spec.ssh_options.insert(spec.ssh_options.end(), {"-i", o.sshIdentity});
    for (const std::string& kv : o.sshOptions)
        spec.ssh_options.insert(spec.ssh_options.end(), {"-o", kv});
    spec.worker = workerPath(o);
    if (access(spec.worker.c_str(), X_OK) != 0)
        return Error{spec.worker, {}, "the worker cannot be run (give --worker PATH)"};
    if (!o.hosts.empty()) {
        auto text = readTextFile(o.hosts);
        if (!text)
            return text.error();
        auto hosts = parseHostfile(*text, o.hosts);
        if (!hosts)
            return hosts.error();
        spec.hosts = *hosts;
    }
    if (spec.kind != LauncherKind::Local && spec.hosts.empty())
        return Error{"--hosts", {}, "the " + o.launcher + " launcher needs --hosts FILE"};
    return spec;
}

std::string workerPath(const RunCliOptions& o)
{
    if (!o.worker.empty())
        return o.worker;
    std::error_code ec;
    return (fs::read_symlink("/proc/self/exe", ec).parent_path() / "partita-worker").string();
}

Result<RunPrediction> predictRun(const RunCliOptions& o, TraceStore& store, const Model& model, const Strategy* given)
{
    RunPrediction p;
    Result<Cluster> cluster = Error{};
    if (o.sim.cluster == "local" && o.backend == "cuda") {
        // This machine's GPUs, one rank each.
        LocalMachine lm = detectLocalMachine();
        if (lm.cluster.deviceCount() == 0 || lm.cluster.nodes.front().devices.front().kind != "gpu")
            return Error{"--cluster", "local", "no GPU on this machine for the CUDA backend"};
        cluster = lm.cluster;
    } else if (o.sim.cluster == "local") {
        // This machine's figures are measured once per project and rank
        // count, then reused: predictions of later runs, and calibrations
        // fitted against them, stay on the same reference.
        const int ranks = o.ranks > 0 ? o.ranks : std::max(1, o.sim.dp) * o.sim.tp * o.sim.cp * o.sim.pp;
        const std::string name = localCpuClusterName(ranks);
        std::optional<Cluster> stored;
        if (!o.remeasure)
            if (auto docs = store.documents("cluster"))
                for (const Document& d : *docs)
                    if (d.name == name)
                        if (auto c = clusterFromJson(d.body, o.sim.project + ": cluster document " + std::to_string(d.id))) {
                            stored = *c;
                            break;
                        }
        cluster = stored ? Result<Cluster>(*stored) : measureLocalCpu(workerPath(o), ranks);
    } else {
        cluster = loadCluster(o.sim.cluster, ClusterLoadOptions{o.sim.device, o.sim.nodeTemplate});
    }
    if (!cluster)
        return cluster.error();
    p.cluster = *cluster;
    if (given) {
        p.strategy = *given;
    } else {
        auto strategy = strategyFromOptions(o.sim, model, p.cluster);
        if (!strategy)
            return strategy.error();
        p.strategy = *strategy;
    }
    auto cal = loadCalibration(o.sim.calibration);
    if (!cal)
        return cal.error();
    auto plan = lowerPlan(model, p.cluster, p.strategy, o.sim.seqLen);
    if (!plan)
        return plan.error();
    p.plan = *plan;
    SimOptions so;
    so.seq_len = o.sim.seqLen;
    so.trace = true;
    if (*cal) {
        so.calibration = **cal;
    } else if (o.sim.cluster == "local" && o.backend != "cuda") {
        // This CPU's own tables, not GPU ones (partita-cli calibrate --local).
        std::string said;
        auto local = localCpuCalibrationCached(workerPath(o), o.remeasure, &said);
        if (!local)
            return local.error();
        so.calibration = *local;
        std::cerr << said << "\n";
        if (const std::string aligned = alignToCalibration(p.cluster, *local); !aligned.empty())
            std::cerr << "cluster: " << aligned << "\n";
    }
    // A run at a shape scale is predicted at that scale: what it will execute.
    auto predicted = simulatePlan(o.shapeScale < 1 ? scalePlan(p.plan, o.shapeScale) : p.plan, model, p.cluster, p.strategy, so);
    if (!predicted)
        return predicted.error();
    p.predicted = std::move(*predicted);
    return p;
}

std::string strategyLabel(const RunCliOptions& o, const Strategy& s)
{
    return s.name.empty() ? (o.sim.preset.empty() ? "manual" : o.sim.preset) : s.name;
}

Result<int64_t> storePrediction(const RunCliOptions& o, TraceStore& store, const Model& model, const RunPrediction& p,
                                StoredDocuments& docs)
{
    const std::string strategyName = strategyLabel(o, p.strategy);
    auto saved = saveRunDocuments(store, model, o.sim.model, p.cluster, p.strategy, strategyName);
    if (!saved)
        return saved.error();
    docs = *saved;
    RunInfo pinfo;
    pinfo.name = (o.sim.runName.empty() ? strategyName : o.sim.runName) + " (predicted)";
    pinfo.kind = RunKind::Predicted;
    pinfo.source = "partita-cli run";
    pinfo.model_id = docs.model;
    pinfo.cluster_id = docs.cluster;
    pinfo.strategy_id = docs.strategy;
    return store.storeTrace(p.predicted.trace, pinfo,
                            json{{"step_time_s", p.predicted.step_time},
                                 {"samples_per_s", p.predicted.samples_per_s},
                                 {"mfu", p.predicted.mfu},
                                 {"peak_memory_bytes", p.predicted.memory.peak},
                                 {"calibration", p.predicted.calibration_source}}
                                .dump());
}

int runRun(const RunCliOptions& o)
{
    if (!o.command.empty())
        return runCommand(o);
    if (std::string why; o.backend == "cuda" && !cudaBackendAvailable(&why))
        return fail(Error{"--backend", "cuda", "no CUDA backend for GPUs here (" + why + "); use --backend cpu"});
    if (o.sim.project.empty())
        return fail(Error{"--project", {}, "a measured run is stored in a project: give --project FILE.partita"});
    if (o.sim.model.empty())
        return fail(Error{"--model", {}, "a strategy is run for a model: give --model FILE (or --command to profile "
                                         "your own training)"});
    auto model = loadModel(o.sim.model);
    if (!model)
        return fail(model.error());
    auto store = TraceStore::open(o.sim.project);
    if (!store)
        return fail(store.error());
    auto prediction = predictRun(o, **store, *model);
    if (!prediction)
        return fail(prediction.error());
    const Strategy& s = prediction->strategy;
    const Plan* plan = &prediction->plan;
    const SimResult* predicted = &prediction->predicted;

    auto launch = launchSpecOf(o);
    if (!launch)
        return fail(launch.error());
    LaunchSpec spec = *launch;
    spec.backend = o.backend;
    spec.trace_device = !o.noCupti;
    spec.steps = o.steps;
    spec.warmup = o.warmup;
    spec.shape_scale = o.shapeScale;
    spec.ranks = plan->world;
    {
        LaunchSpec check = spec; // paths are filled by executeRun; the rest is checked before anything runs
        check.plan = check.out = check.hostfile = "-";
        if (auto cmd = launchCommand(check); !cmd)
            return fail(cmd.error());
    }

    const std::string strategyName = strategyLabel(o, s);
    StoredDocuments storedDocs;
    auto predictedId = storePrediction(o, **store, *model, *prediction, storedDocs);
    if (!predictedId)
        return fail(predictedId.error());
    const StoredDocuments* docs = &storedDocs;

    auto resolved = resolveStrategy(s, *model, prediction->cluster);
    if (!resolved)
        return fail(resolved.error());
    const std::vector<std::string> notPlanned = notAsPlanned(*plan, *resolved, o.backend);

    const std::string id = runStamp();
    MeasuredRunOptions mo;
    mo.launch = spec;
    mo.run_dir = o.sim.project + ".runs/" + id;
    mo.remote_dir = o.remoteDir.empty() ? "/tmp/partita-run-" + id : o.remoteDir + "/" + id;
    mo.info.name = (o.sim.runName.empty() ? strategyName : o.sim.runName) + " (measured, " + o.backend + ")";
    mo.info.source = "partita-cli run --backend " + o.backend + " --launcher " + o.launcher;
    mo.info.model_id = docs->model;
    mo.info.cluster_id = docs->cluster;
    mo.info.strategy_id = docs->strategy;
    mo.meta_extra = json{{"predicted_run", *predictedId},
                         {"predicted_step_time_s", predicted->step_time},
                         {"backend", o.backend},
                         {"calibration", predicted->calibration_source},
                         {"predicted_shape_scale", o.shapeScale},
                         {"not_as_planned", notPlanned}}
                        .dump();
    std::ostream& progress = o.sim.json ? std::cerr : std::cout;
    mo.on_line = [&](std::string_view line, bool err) {
        if (err)
            std::cerr << line << "\n";
        else
            progress << line << std::endl; // a line at a time, for whoever reads the pipe
    };
    mo.cancel = cancelOnSignals();
    auto measured = executeRun(**store, *plan, mo);
    if (!measured)
        return fail(measured.error());
    auto cmp = compareWithPrediction(**store, *measured, *plan, *model, *predicted);
    if (!cmp)
        return fail(cmp.error());

    const bool ok = measured->complete;
    if (o.sim.json) {
        json j;
        j["run_id"] = measured->run_id;
        j["predicted_run_id"] = *predictedId;
        j["complete"] = ok;
        j["ranks"] = plan->world;
        j["backend"] = o.backend;
        j["launcher"] = o.launcher;
        j["run_dir"] = mo.run_dir;
        j["measured_step_time_s"] = cmp->measured_step_s;
        j["predicted_step_time_s"] = cmp->predicted_step_s;
        j["step_time_error"] = cmp->error;
        j["steps_s"] = measured->step_s;
        j["calibration"] = predicted->calibration_source;
        j["shape_scale"] = o.shapeScale;
        j["not_as_planned"] = notPlanned;
        json layers = json::array();
        for (const LayerComparison& l : cmp->layers)
            layers.push_back({{"layer", l.layer},
                              {"name", l.name},
                              {"measured_s", l.measured_s},
                              {"predicted_s", l.predicted_s},
                              {"error", l.error}});
        j["layers"] = std::move(layers);
        json ranks = json::array();
        for (const RankManifest& m : measured->ranks)
            ranks.push_back({{"rank", m.rank}, {"host", m.host}, {"step_s", m.step_s}, {"complete", m.complete}});
        j["rank_results"] = std::move(ranks);
        j["warnings"] = measured->warnings;
        if (!ok) {
            j["error"] = measured->launch.message;
            j["failed_rank"] = measured->launch.failed_rank;
            j["failed_host"] = measured->launch.failed_host;
            j["cause"] = measured->launch.cause;
        }
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << "\nMeasured     " << (cmp->measured_step_s > 0 ? formatSeconds(cmp->measured_step_s) : "-")
                  << " per step (median of " << measured->step_s.size() << ", slowest rank)\n"
                  << "Predicted    " << formatSeconds(cmp->predicted_step_s) << " ("
                  << (cmp->measured_step_s > 0 ? signedPercent(cmp->error) : "-") << ")\n"
                  << "Calibration  " << predicted->calibration_source << "\n";
        if (o.shapeScale < 1)
            std::cout << "Shape scale  " << o.shapeScale << ": run and predicted at that scale\n";
        if (!notPlanned.empty()) {
            std::cout << "\nNot run as planned (the comparison is not like for like there):\n";
            for (const std::string& n : notPlanned)
                std::cout << "  - " << n << "\n";
        }
        if (!cmp->layers.empty()) {
            std::cout << "\nPer layer, one micro-batch on one device (compute and tensor-parallel collectives)\n";
            std::printf("  %-40s %12s %12s %9s\n", "layer", "measured", "predicted", "error");
            std::cout.flush();
            for (const LayerComparison& l : cmp->layers)
                std::printf("  %-40s %12s %12s %9s\n", l.name.substr(0, 40).c_str(), formatSeconds(l.measured_s).c_str(),
                            formatSeconds(l.predicted_s).c_str(), l.measured_s > 0 ? signedPercent(l.error).c_str() : "-");
            std::fflush(stdout);
        }
        for (const std::string& w : measured->warnings)
            std::cout << "warning: " << w << "\n";
        if (measured->run_id)
            std::cout << "run " << measured->run_id << (ok ? "" : " (incomplete)") << " and its prediction, run "
                      << *predictedId << ", stored in " << o.sim.project << "\n";
    }
    if (!ok) {
        std::cerr << "partita-cli: error: the run failed: " << measured->launch.message << "\n";
        if (measured->run_id)
            std::cerr << "partita-cli: what the ranks measured before is kept as run " << measured->run_id
                      << ", marked incomplete\n";
        return 3;
    }
    return 0;
}

int runCalibrate(const CalibrateCliOptions& o)
{
    if (o.measureGpu || !o.fromSweep.empty())
        return runGpuCalibrate(o);
    if (o.local)
        return runLocalCalibrate(o);
    if (o.project.empty() || o.run <= 0)
        return fail(Error{"calibrate", {}, "--project and --run name the measured run to fit (or --measure-gpu, --from-sweep)"});
    auto store = TraceStore::open(o.project);
    if (!store)
        return fail(store.error());
    auto info = (*store)->run(o.run);
    if (!info)
        return fail(info.error());
    const std::string label = o.project + ": run " + std::to_string(o.run);
    if (info->kind != RunKind::Measured)
        return fail(Error{label, {}, "is not a measured run (partita-cli run makes them)"});
    const json meta = json::parse(info->meta, nullptr, false);
    if (!meta.is_object() || !meta.contains("plan_document") || !info->cluster_id)
        return fail(Error{label, "meta", "the run names no plan or cluster to fit against"});
    auto planDoc = (*store)->document(meta["plan_document"].get<int64_t>());
    if (!planDoc)
        return fail(planDoc.error());
    auto plan = planFromJson(planDoc->body, label + " plan");
    if (!plan)
        return fail(plan.error());
    auto clusterDoc = (*store)->document(info->cluster_id);
    if (!clusterDoc)
        return fail(clusterDoc.error());
    auto cluster = clusterFromJson(clusterDoc->body, label + " cluster");
    if (!cluster)
        return fail(cluster.error());
    // A run at a shape scale ran the plan at that scale: it is fitted against what ran.
    const double scale = meta.contains("shape_scale") && meta["shape_scale"].is_number() ? meta["shape_scale"].get<double>() : 1.0;
    if (!(scale > 0 && scale <= 1))
        return fail(Error{label, "meta", "shape_scale " + std::to_string(scale) + " is not in (0, 1]"});
    auto fit = fitCalibration(**store, o.run, scalePlan(*plan, scale), *cluster, o.project);
    if (!fit)
        return fail(fit.error());
    std::string summary = "calibration: " + fit->calibration.source;
    for (const std::string& n : fit->notes)
        summary += "\nnote: " + n;
    return emitCalibration(o, fit->calibration,
                           json{{"gemm_ops", fit->gemm_ops}, {"memory_ops", fit->memory_ops},
                                {"collectives", fit->collectives}, {"notes", fit->notes}},
                           summary);
}

int emitCalibration(const CalibrateCliOptions& o, const Calibration& c, const json& extra, const std::string& summary)
{
    const std::string text = calibrationToJson(c);
    if (!o.out.empty())
        if (auto w = writeFileAtomically(o.out, text); !w)
            return fail(w.error());
    if (o.json) {
        json j = extra;
        j["calibration"] = json::parse(text);
        if (!o.out.empty())
            j["out"] = o.out;
        std::cout << j.dump(2) << "\n";
    } else if (o.out.empty()) {
        std::cout << text;
    } else {
        std::cout << summary << "\nwritten to " << o.out << "\n";
    }
    return 0;
}

} // namespace partita::cli
