// partita-cli run --command: the user's own training profiled on every rank
// (executor/commandrun.h), its time attributed to the model's layers
// (profiler/layerattribution.h) and, with a model, compared with the
// prediction of the strategy given.
#include "run.h"

#include "common.h"

#include "partita/core/frameworks.h"
#include "partita/core/modelio.h"
#include "partita/core/units.h"
#include "partita/executor/commandrun.h"
#include "partita/profiler/layerattribution.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <unistd.h>

namespace partita::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


// Partita's trace module: --trace-module, else the one installed beside
// partita-cli (…/share/partita/profiler; the build tree has a copy too).
std::string traceModulePath(const RunCliOptions& o)
{
    if (!o.traceModule.empty())
        return o.traceModule;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return (exe.parent_path().parent_path() / "share/partita/profiler/partita_trace.py").string();
}


struct LayerRow
{
    std::string name;
    int32_t layer = -1;
    double measured_s = 0, predicted_s = -1; // per step on one rank; -1: no prediction
};

// Measured per layer beside the prediction's forward + backward + recompute
// of every micro-batch of a step.
std::vector<LayerRow> layerRows(const LayerAttribution& a, const RunPrediction* p)
{
    std::vector<LayerRow> rows;
    for (const AttributedLayer& l : a.layers)
        rows.push_back({l.name, l.layer, l.host_s + l.device_s, -1});
    if (!p)
        return rows;
    const double micro = double(std::max<int64_t>(1, p->plan.micro_batches));
    for (LayerRow& r : rows)
        for (const LayerTime& lt : p->predicted.layers)
            if (lt.layer == r.layer && r.layer >= 0)
                r.predicted_s = (lt.forward + lt.backward + lt.recompute) * micro;
    return rows;
}

void printResult(const CommandRun& run, const LayerAttribution* a, const std::vector<LayerRow>& rows,
                 const RunPrediction* p, double measured, const std::string& project, int64_t predictedId)
{
    std::cout << "\nMeasured     " << (measured > 0 ? formatSeconds(measured) : "-")
              << " per step (median over the recorded steps, slowest rank)\n";
    if (p)
        std::cout << "Predicted    " << formatSeconds(p->predicted.step_time) << " ("
                  << (measured > 0 ? signedPercent((p->predicted.step_time - measured) / measured) : "-") << ")\n";
    if (a) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.1f %% of the ranks' own CPU operator time (worst step %.1f %%)",
                      100 * a->attributed_fraction, 100 * a->worst_step_fraction);
        std::cout << "Attributed   " << buf << "\n";
        std::cout << "\nPer layer, one step on one rank (CPU operators and the GPU kernels they launched)\n";
        std::printf("  %-44s %12s %12s %9s\n", "layer or module", "measured", "predicted", "error");
        std::cout.flush();
        for (const LayerRow& r : rows)
            std::printf("  %-44s %12s %12s %9s\n", r.name.substr(0, 44).c_str(), formatSeconds(r.measured_s).c_str(),
                        r.predicted_s >= 0 ? formatSeconds(r.predicted_s).c_str() : "-",
                        r.predicted_s >= 0 && r.measured_s > 0 ? signedPercent((r.predicted_s - r.measured_s) / r.measured_s).c_str()
                                                               : "-");
        std::fflush(stdout);
    }
    for (const std::string& w : run.warnings)
        std::cout << "warning: " << w << "\n";
    if (run.run_id)
        std::cout << "run " << run.run_id << (run.complete ? "" : " (incomplete)")
                  << (predictedId ? " and its prediction, run " + std::to_string(predictedId) + "," : std::string())
                  << " stored in " << project << "\n";
}

struct ConfigPrediction
{
    std::string source; // the file, or "--command"
    FrameworkImport imported;
};

// --config FILE, else the configuration the command names (DeepSpeed's
// --deepspeed_config, Megatron-LM's flags) when no strategy is given.
Result<std::optional<ConfigPrediction>> frameworkConfig(const RunCliOptions& o, int ranks)
{
    std::string file = o.config, text, framework;
    if (file.empty()) {
        if (!o.sim.strategy.empty() || !o.sim.preset.empty())
            return std::optional<ConfigPrediction>{};
        const auto said = configInCommand(o.command);
        if (!said)
            return std::optional<ConfigPrediction>{};
        framework = said->framework;
        file = said->file;
        if (file.empty())
            text = o.command;
    }
    if (text.empty()) {
        auto read = readTextFile(file);
        if (!read)
            return read.error();
        text = *read;
    }
    const std::string source = file.empty() ? "--command" : file;
    std::optional<Framework> f = framework.empty() ? detectFramework(text) : frameworkFromName(framework);
    if (!f)
        return Error{source, {}, "is no framework configuration Partita reads (Megatron-LM, DeepSpeed, torchtitan, "
                                 "accelerate, or a script Partita's PyTorch export wrote)"};
    auto imported = importFramework(*f, text, source, ranks);
    if (!imported)
        return imported.error();
    return std::optional<ConfigPrediction>{ConfigPrediction{source, std::move(*imported)}};
}

} // namespace

namespace {

// The launch (launchSpecOf) with its processes: --ranks, else the hosts' slots.
Result<LaunchSpec> commandLaunchSpec(const RunCliOptions& o)
{
    auto spec = launchSpecOf(o);
    if (!spec)
        return spec.error();
    int slots = 0;
    for (const HostEntry& h : spec->hosts)
        slots += h.slot_count;
    spec->ranks = o.ranks > 0 ? o.ranks : spec->hosts.empty() ? 1 : slots;
    return spec;
}

// The training's ranks: the processes, or for a torchrun line its ranks per
// node on every node (0: torchrun decides and --ranks says nothing).
Result<int> trainingWorld(const RunCliOptions& o, const LaunchSpec& spec, const TracedCommand& launch)
{
    if (!launch.per_node)
        return spec.ranks;
    const int nodes = spec.kind == LauncherKind::Local ? 1 : int(spec.hosts.size());
    const int world = launch.procs_per_node > 0 ? nodes * launch.procs_per_node : std::max(0, o.ranks);
    if (o.ranks > 0 && launch.procs_per_node > 0 && o.ranks != world)
        return Error{"--ranks", std::to_string(o.ranks),
                     "the torchrun line starts " + std::to_string(launch.procs_per_node) + " ranks on each of " +
                         std::to_string(nodes) + " node(s): " + std::to_string(world) + " ranks"};
    return world;
}

struct CommandPrediction
{
    std::optional<Model> model;
    std::optional<RunPrediction> run;
    StoredDocuments docs;
    int64_t id = 0;
};

// The strategy to predict: --strategy, --preset or degrees as given; else a
// framework's configuration (--config, or the one the command names); with
// a model (--model, or the configuration's), the prediction stored.
Result<CommandPrediction> predictCommand(const RunCliOptions& o, TraceStore& store, int world)
{
    CommandPrediction out;
    auto config = frameworkConfig(o, world);
    if (!config)
        return config.error();
    if (!o.sim.model.empty()) {
        auto m = loadModel(o.sim.model);
        if (!m)
            return m.error();
        out.model = *m;
    } else if (*config && (*config)->imported.model) {
        out.model = *(*config)->imported.model;
    } else if (*config) {
        return Error{(*config)->source, {}, "says no model: give --model FILE for the prediction"};
    }
    if (!out.model)
        return out;
    if (world <= 0)
        return Error{"--ranks", {}, "torchrun decides the ranks per node (--nproc_per_node auto): give --ranks for the "
                                    "prediction"};
    RunCliOptions po = o;
    po.ranks = world;
    if (*config && po.sim.seqLen <= 0)
        po.sim.seqLen = (*config)->imported.seq_len;
    if (po.sim.model.empty() && *config)
        po.sim.model = (*config)->source;
    LaunchSpec launch; // the prediction's: this machine is measured by the worker
    launch.worker = workerPath(o);
    launch.backend = o.backend;
    auto request = runRequestOf(po, *out.model, *config ? &(*config)->imported.strategy : nullptr, launch);
    if (!request)
        return request.error();
    RunEvents events;
    events.on_note = [](const std::string& n) { std::cerr << n << "\n"; };
    auto p = predictRun(store, *request, events);
    if (!p)
        return p.error();
    if (*config)
        for (const std::string& n : (*config)->imported.notes)
            std::cerr << "note: " << (*config)->source << ": " << n << "\n";
    if (p->plan.world != world)
        return Error{"--command", {}, "the strategy runs " + std::to_string(p->plan.world) + " ranks, the command " +
                                          std::to_string(world) + ": give --ranks or the strategy's degrees to match"};
    out.run = std::move(*p);
    auto id = storePrediction(store, *request, *out.run, out.docs);
    if (!id)
        return id.error();
    out.id = *id;
    return out;
}

CommandRunOptions commandRunOptions(const RunCliOptions& o, const LaunchSpec& spec, const std::string& module,
                                    const ProfileSchedule& schedule, const CommandPrediction& pred)
{
    CommandRunOptions co;
    co.launch = spec;
    co.command = o.command;
    co.trace_module = module;
    co.schedule = schedule;
    co.master_port = o.masterPort;
    co.master_addr = o.masterAddr;
    const std::string id = runStamp();
    co.run_dir = o.sim.project + ".runs/" + id;
    co.remote_dir = o.remoteDir.empty() ? "/tmp/partita-run-" + id : o.remoteDir + "/" + id;
    co.info.name = o.sim.runName.empty() ? "profiled: " + o.command.substr(0, 60) : o.sim.runName;
    co.info.source = "partita-cli run --command (" + o.launcher + ")";
    co.info.model_id = pred.docs.model;
    co.info.cluster_id = pred.docs.cluster;
    co.info.strategy_id = pred.docs.strategy;
    if (pred.run)
        co.meta_extra = json{{"predicted_run", pred.id},
                             {"predicted_step_time_s", pred.run->predicted.step_time},
                             {"calibration", pred.run->predicted.calibration_source}}
                            .dump();
    return co;
}

// The attribution in the run's meta, for the workbench.
Result<bool> storeAttribution(TraceStore& store, const CommandRun& run, double measured, const LayerAttribution& a,
                              const std::vector<LayerRow>& rows)
{
    json meta = json::parse(run.meta, nullptr, false);
    if (!meta.is_object())
        return true;
    meta["measured_step_time_s"] = measured;
    meta["attributed_fraction"] = a.attributed_fraction;
    json layers = json::array();
    for (const LayerRow& r : rows)
        layers.push_back({{"name", r.name}, {"layer", r.layer}, {"measured_s", r.measured_s}, {"predicted_s", r.predicted_s}});
    meta["layers"] = std::move(layers);
    auto info = store.run(run.run_id);
    if (!info)
        return info.error();
    info->meta = meta.dump();
    return store.annotateRun(run.run_id, *info);
}

json resultJson(const RunCliOptions& o, const CommandRun& run, bool perNode, const std::string& runDir,
                const LayerAttribution* a, const std::vector<LayerRow>& rows, const CommandPrediction& pred,
                double measured)
{
    json j;
    j["run_id"] = run.run_id;
    j["complete"] = run.complete;
    j["ranks"] = int(run.ranks.size());
    j["per_node"] = perNode;
    j["launcher"] = o.launcher;
    j["run_dir"] = runDir;
    j["measured_step_time_s"] = measured;
    j["steps_s"] = a ? a->step_s : std::vector<double>{};
    j["attributed_fraction"] = a ? a->attributed_fraction : 0.0;
    j["worst_step_attributed_fraction"] = a ? a->worst_step_fraction : 0.0;
    json steps = json::array();
    if (a)
        for (const StepAttribution& s : a->steps)
            steps.push_back({{"rank", s.rank}, {"step", s.index}, {"step_s", double(s.dur_ns) * 1e-9},
                             {"op_s", double(s.op_ns) * 1e-9}, {"attributed_s", double(s.attributed_ns) * 1e-9},
                             {"collectives_s", double(s.collective_ns) * 1e-9}, {"fraction", s.fraction()}});
    j["step_attribution"] = std::move(steps);
    json logged = json::array();
    for (const CommandRankResult& r : run.ranks)
        logged.push_back({{"rank", r.rank}, {"traced", r.traced}, {"optimizer_step_s", r.step_s}});
    j["rank_results"] = std::move(logged);
    if (pred.run) {
        j["predicted_run_id"] = pred.id;
        j["predicted_step_time_s"] = pred.run->predicted.step_time;
        j["step_time_error"] = measured > 0 ? (pred.run->predicted.step_time - measured) / measured : 0.0;
        j["calibration"] = pred.run->predicted.calibration_source;
    }
    json layers = json::array();
    for (const LayerRow& r : rows) {
        json l{{"name", r.name}, {"layer", r.layer}, {"measured_s", r.measured_s}};
        if (r.predicted_s >= 0) {
            l["predicted_s"] = r.predicted_s;
            l["error"] = r.measured_s > 0 ? (r.predicted_s - r.measured_s) / r.measured_s : 0.0;
        }
        layers.push_back(std::move(l));
    }
    j["layers"] = std::move(layers);
    j["warnings"] = run.warnings;
    if (!run.complete) {
        j["error"] = run.launch.message;
        j["failed_rank"] = run.launch.failed_rank;
        j["failed_host"] = run.launch.failed_host;
        j["cause"] = run.launch.cause;
    }
    return j;
}

} // namespace

int runCommand(const RunCliOptions& o)
{
    if (o.sim.project.empty())
        return fail(Error{"--project", {}, "a profiled run is stored in a project: give --project FILE.partita"});
    auto schedule = parseProfileSchedule(o.profileSteps);
    if (!schedule)
        return fail(schedule.error());
    const std::string module = traceModulePath(o);
    if (access(module.c_str(), R_OK) != 0)
        return fail(Error{module, {}, "Partita's trace module is not there (give --trace-module PATH)"});
    auto store = TraceStore::open(o.sim.project);
    if (!store)
        return fail(store.error());
    auto spec = commandLaunchSpec(o);
    if (!spec)
        return fail(spec.error());
    auto launch = tracedLaunch(o.command, module, "-", *schedule);
    if (!launch)
        return fail(launch.error());
    auto world = trainingWorld(o, *spec, *launch);
    if (!world)
        return fail(world.error());
    auto pred = predictCommand(o, **store, *world);
    if (!pred)
        return fail(pred.error());

    CommandRunOptions co = commandRunOptions(o, *spec, module, *schedule, *pred);
    std::ostream& progress = o.sim.json ? std::cerr : std::cout;
    co.on_line = [&](std::string_view line, bool err) {
        if (err)
            std::cerr << line << "\n";
        else
            progress << line << std::endl;
    };
    co.cancel = cancelOnSignals();
    auto run = executeCommandRun(**store, co);
    if (!run)
        return fail(run.error());

    std::optional<LayerAttribution> attribution;
    if (run->run_id) {
        std::vector<std::string> names;
        if (pred->model)
            for (const Layer& l : pred->model->layers)
                names.push_back(l.name);
        auto a = attributeToLayers(**store, run->run_id, names);
        if (a)
            attribution = std::move(*a);
        else
            run->warnings.push_back("no layer attribution: " + a.error().str());
    }
    const RunPrediction* predicted = pred->run ? &*pred->run : nullptr;
    const double measured = attribution ? median(attribution->step_s) : 0;
    const std::vector<LayerRow> rows = attribution ? layerRows(*attribution, predicted) : std::vector<LayerRow>{};
    if (attribution)
        if (auto stored = storeAttribution(**store, *run, measured, *attribution, rows); !stored)
            return fail(stored.error());
    if (o.sim.json)
        std::cout << resultJson(o, *run, launch->per_node, co.run_dir, attribution ? &*attribution : nullptr, rows, *pred,
                                measured)
                         .dump(2)
                  << "\n";
    else
        printResult(*run, attribution ? &*attribution : nullptr, rows, predicted, measured, o.sim.project, pred->id);
    if (!run->complete) {
        std::cerr << "partita-cli: error: the run failed: " << run->launch.message << "\n";
        if (run->run_id)
            std::cerr << "partita-cli: what the ranks traced is kept as run " << run->run_id << ", marked incomplete\n";
        return 3;
    }
    return 0;
}

} // namespace partita::cli
