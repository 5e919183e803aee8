#include "run.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"
#include "partita/core/units.h"
#include "partita/executor/calibrate.h"
#include "partita/executor/localcpu.h"
#include "partita/executor/measuredrun.h"
#include "partita/executor/runsession.h"

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

void printRunJson(const RunCliOptions& o, const RunOutcome& out)
{
    const MeasuredRun& m = out.measured;
    const RunComparison& cmp = out.comparison;
    json j;
    j["run_id"] = m.run_id;
    j["predicted_run_id"] = out.predicted_run_id;
    j["complete"] = out.complete();
    j["ranks"] = out.prediction.plan.world;
    j["backend"] = o.backend;
    j["launcher"] = o.launcher;
    j["run_dir"] = out.run_dir;
    j["measured_step_time_s"] = cmp.measured_step_s;
    j["predicted_step_time_s"] = cmp.predicted_step_s;
    j["step_time_error"] = cmp.error;
    j["steps_s"] = m.step_s;
    j["calibration"] = out.prediction.predicted.calibration_source;
    j["shape_scale"] = o.shapeScale;
    j["not_as_planned"] = out.not_as_planned;
    json layers = json::array();
    for (const LayerComparison& l : cmp.layers)
        layers.push_back({{"layer", l.layer},
                          {"name", l.name},
                          {"measured_s", l.measured_s},
                          {"predicted_s", l.predicted_s},
                          {"error", l.error}});
    j["layers"] = std::move(layers);
    json ranks = json::array();
    for (const RankManifest& r : m.ranks)
        ranks.push_back({{"rank", r.rank}, {"host", r.host}, {"step_s", r.step_s}, {"complete", r.complete}});
    j["rank_results"] = std::move(ranks);
    j["warnings"] = m.warnings;
    if (!out.complete()) {
        j["error"] = m.launch.message;
        j["failed_rank"] = m.launch.failed_rank;
        j["failed_host"] = m.launch.failed_host;
        j["cause"] = m.launch.cause;
    }
    std::cout << j.dump(2) << "\n";
}

void printRunText(const RunCliOptions& o, const RunOutcome& out)
{
    const RunComparison& cmp = out.comparison;
    std::cout << "\nMeasured     " << (cmp.measured_step_s > 0 ? formatSeconds(cmp.measured_step_s) : "-")
              << " per step (median of " << out.measured.step_s.size() << ", slowest rank)\n"
              << "Predicted    " << formatSeconds(cmp.predicted_step_s) << " ("
              << (cmp.measured_step_s > 0 ? signedPercent(cmp.error) : "-") << ")\n"
              << "Calibration  " << out.prediction.predicted.calibration_source << "\n";
    if (o.shapeScale < 1)
        std::cout << "Shape scale  " << o.shapeScale << ": run and predicted at that scale\n";
    if (!out.not_as_planned.empty()) {
        std::cout << "\nNot run as planned (the comparison is not like for like there):\n";
        for (const std::string& n : out.not_as_planned)
            std::cout << "  - " << n << "\n";
    }
    if (!cmp.layers.empty()) {
        std::cout << "\nPer layer, one micro-batch on one device (compute and tensor-parallel collectives)\n";
        std::printf("  %-40s %12s %12s %9s\n", "layer", "measured", "predicted", "error");
        std::cout.flush();
        for (const LayerComparison& l : cmp.layers)
            std::printf("  %-40s %12s %12s %9s\n", l.name.substr(0, 40).c_str(), formatSeconds(l.measured_s).c_str(),
                        formatSeconds(l.predicted_s).c_str(), l.measured_s > 0 ? signedPercent(l.error).c_str() : "-");
        std::fflush(stdout);
    }
    for (const std::string& w : out.measured.warnings)
        std::cout << "warning: " << w << "\n";
    if (out.measured.run_id)
        std::cout << "run " << out.measured.run_id << (out.complete() ? "" : " (incomplete)") << " and its prediction, run "
                  << out.predicted_run_id << ", stored in " << o.sim.project << "\n";
}

} // namespace

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
    return o.worker.empty() ? besideThisProgram("partita-worker") : o.worker;
}

Result<RunRequest> runRequestOf(const RunCliOptions& o, const Model& model, const Strategy* given, LaunchSpec launch)
{
    RunRequest r;
    r.project = o.sim.project;
    r.model = model;
    r.model_label = o.sim.model;
    r.cluster = o.sim.cluster;
    r.cluster_options = ClusterLoadOptions{o.sim.device, o.sim.nodeTemplate};
    if (given)
        r.strategy = *given;
    else
        r.make_strategy = [sim = o.sim](const Model& m, const Cluster& c) { return strategyFromOptions(sim, m, c); };
    r.strategy_label = o.sim.preset;
    r.run_name = o.sim.runName;
    auto cal = loadCalibration(o.sim.calibration);
    if (!cal)
        return cal.error();
    r.calibration = *cal;
    r.seq_len = o.sim.seqLen;
    r.ranks = o.ranks > 0 ? o.ranks : std::max(1, o.sim.dp) * o.sim.tp * o.sim.cp * o.sim.pp;
    r.remeasure = o.remeasure;
    launch.backend = o.backend;
    launch.shape_scale = o.shapeScale;
    r.launch = std::move(launch);
    r.remote_root = o.remoteDir;
    r.source = "partita-cli run";
    return r;
}

int runRun(const RunCliOptions& o)
{
    if (!o.command.empty())
        return runCommand(o);
    if (o.sim.project.empty())
        return fail(Error{"--project", {}, "a measured run is stored in a project: give --project FILE.partita"});
    if (o.sim.model.empty())
        return fail(Error{"--model", {}, "a strategy is run for a model: give --model FILE (or --command to profile "
                                         "your own training)"});
    auto model = loadModel(o.sim.model);
    if (!model)
        return fail(model.error());
    auto launch = launchSpecOf(o);
    if (!launch)
        return fail(launch.error());
    launch->trace_device = !o.noCupti;
    launch->steps = o.steps;
    launch->warmup = o.warmup;
    auto request = runRequestOf(o, *model, nullptr, *launch);
    if (!request)
        return fail(request.error());
    std::ostream& progress = o.sim.json ? std::cerr : std::cout;
    RunEvents events;
    events.on_note = [](const std::string& n) { std::cerr << n << "\n"; };
    events.on_line = [&](std::string_view line, bool err) {
        if (err)
            std::cerr << line << "\n";
        else
            progress << line << std::endl; // a line at a time, for whoever reads the pipe
    };
    auto out = runStrategy(*request, events, cancelOnSignals());
    if (!out)
        return fail(out.error());
    if (o.sim.json)
        printRunJson(o, *out);
    else
        printRunText(o, *out);
    if (!out->complete()) {
        std::cerr << "partita-cli: error: the run failed: " << out->measured.launch.message << "\n";
        if (out->measured.run_id)
            std::cerr << "partita-cli: what the ranks measured before is kept as run " << out->measured.run_id
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
