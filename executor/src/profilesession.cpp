// A user's own training command profiled end to end (profilesession.h).
#include "partita/executor/profilesession.h"

#include "curvefit.h"

#include "partita/core/fileio.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace partita {

using nlohmann::json;

namespace {

struct ConfigPrediction
{
    std::string source; // the file, or "--command"
    FrameworkImport imported;
};

// The request's configuration, else the one the command names (DeepSpeed's
// --deepspeed_config, Megatron-LM's flags) when it is looked for.
Result<std::optional<ConfigPrediction>> frameworkConfig(const ProfileRequest& r, int ranks)
{
    std::string file = r.config, text, framework;
    if (file.empty()) {
        if (!r.config_in_command)
            return std::optional<ConfigPrediction>{};
        const auto said = configInCommand(r.command);
        if (!said)
            return std::optional<ConfigPrediction>{};
        framework = said->framework;
        file = said->file;
        if (file.empty())
            text = r.command;
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

// The training's ranks: the processes, or for a torchrun line its ranks per
// node on every node (0: torchrun decides and the request says nothing).
Result<int> trainingWorld(const ProfileRequest& r, const TracedCommand& launch)
{
    const LaunchSpec& spec = r.launch;
    if (!launch.per_node)
        return spec.ranks;
    const int nodes = spec.kind == LauncherKind::Local ? 1 : int(spec.hosts.size());
    const int world = launch.procs_per_node > 0 ? nodes * launch.procs_per_node : std::max(0, r.ranks);
    if (r.ranks > 0 && launch.procs_per_node > 0 && r.ranks != world)
        return Error{"--ranks", std::to_string(r.ranks),
                     "the torchrun line starts " + std::to_string(launch.procs_per_node) + " ranks on each of " +
                         std::to_string(nodes) + " node(s): " + std::to_string(world) + " ranks"};
    return world;
}

// Stage 1: with a model (the request's, or the configuration's), the
// strategy (the configuration's, else the request's) predicted and stored.
Result<bool> predictProfile(TraceStore& store, const ProfileRequest& r, int world, const RunEvents& ev,
                            ProfileOutcome& out)
{
    auto config = frameworkConfig(r, world);
    if (!config)
        return config.error();
    std::optional<Model> model = r.model;
    if (!model && *config && (*config)->imported.model)
        model = *(*config)->imported.model;
    else if (!model && *config)
        return Error{(*config)->source, {}, "says no model: give --model FILE for the prediction"};
    if (!model)
        return false;
    if (world <= 0)
        return Error{"--ranks", {}, "torchrun decides the ranks per node (--nproc_per_node auto): give --ranks for the "
                                    "prediction"};
    RunRequest p = r.predict;
    p.project = r.project;
    p.model = *model;
    p.ranks = world;
    p.launch.worker = r.launch.worker;
    if (*config) {
        p.strategy = (*config)->imported.strategy;
        if (p.seq_len <= 0)
            p.seq_len = (*config)->imported.seq_len;
        if (p.model_label.empty())
            p.model_label = (*config)->source;
    }
    auto predicted = predictRun(store, p, ev);
    if (!predicted)
        return predicted.error();
    if (*config && ev.on_note)
        for (const std::string& n : (*config)->imported.notes)
            ev.on_note("note: " + (*config)->source + ": " + n);
    if (predicted->plan.world != world)
        return Error{"--command", {}, "the strategy runs " + std::to_string(predicted->plan.world) + " ranks, the command " +
                                          std::to_string(world) + ": give --ranks or the strategy's degrees to match"};
    out.prediction = std::move(*predicted);
    auto id = storePrediction(store, p, *out.prediction, out.documents);
    if (!id)
        return id.error();
    out.predicted_run_id = *id;
    return true;
}

CommandRunOptions commandRunOptions(const ProfileRequest& r, const ProfileOutcome& out)
{
    CommandRunOptions co;
    co.launch = r.launch;
    co.command = r.command;
    co.trace_module = r.trace_module;
    co.schedule = r.schedule;
    co.master_port = r.master_port;
    co.master_addr = r.master_addr;
    const std::string id = runStamp();
    co.run_dir = r.project + ".runs/" + id;
    if (!r.launch.working_dir.empty()) // the launcher starts elsewhere: a path that holds there too
        co.run_dir = std::filesystem::absolute(co.run_dir).string();
    co.remote_dir = r.remote_root.empty() ? "/tmp/partita-run-" + id : r.remote_root + "/" + id;
    co.info.name = r.run_name.empty() ? "profiled: " + r.command.substr(0, 60) : r.run_name;
    co.info.source = r.source;
    co.info.model_id = out.documents.model;
    co.info.cluster_id = out.documents.cluster;
    co.info.strategy_id = out.documents.strategy;
    if (out.prediction)
        co.meta_extra = json{{"predicted_run", out.predicted_run_id},
                             {"predicted_step_time_s", out.prediction->predicted.step_time},
                             {"calibration", out.prediction->predicted.calibration_source}}
                            .dump();
    return co;
}

std::vector<ProfiledLayer> layerRows(const LayerAttribution& a, const std::optional<RunPrediction>& p)
{
    std::vector<ProfiledLayer> rows;
    for (const AttributedLayer& l : a.layers)
        rows.push_back({l.name, l.layer, l.host_s + l.device_s, -1});
    if (!p)
        return rows;
    const double micro = double(std::max<int64_t>(1, p->plan.micro_batches));
    for (ProfiledLayer& r : rows)
        for (const LayerTime& lt : p->predicted.layers)
            if (lt.layer == r.layer && r.layer >= 0)
                r.predicted_s = (lt.forward + lt.backward + lt.recompute) * micro;
    return rows;
}

// The attribution in the run's meta, for the workbench.
Result<bool> storeAttribution(TraceStore& store, const ProfileOutcome& out)
{
    json meta = json::parse(out.run.meta, nullptr, false);
    if (!meta.is_object())
        return true;
    meta["measured_step_time_s"] = out.measured_step_s;
    meta["attributed_fraction"] = out.attribution->attributed_fraction;
    json layers = json::array();
    for (const ProfiledLayer& r : out.layers)
        layers.push_back({{"name", r.name}, {"layer", r.layer}, {"measured_s", r.measured_s}, {"predicted_s", r.predicted_s}});
    meta["layers"] = std::move(layers);
    auto info = store.run(out.run.run_id);
    if (!info)
        return info.error();
    info->meta = meta.dump();
    return store.annotateRun(out.run.run_id, *info);
}

// Stage 3: the traced time attributed to the model's layers (or module paths).
Result<bool> attribute(TraceStore& store, ProfileOutcome& out)
{
    if (!out.run.run_id)
        return true;
    std::vector<std::string> names;
    if (out.prediction)
        names = out.prediction->plan.layer_names;
    auto a = attributeToLayers(store, out.run.run_id, names);
    if (!a) {
        out.run.warnings.push_back("no layer attribution: " + a.error().str());
        return true;
    }
    out.attribution = std::move(*a);
    out.measured_step_s = detail::median(out.attribution->step_s);
    out.layers = layerRows(*out.attribution, out.prediction);
    return storeAttribution(store, out);
}

} // namespace

Result<ProfileOutcome> profileCommand(const ProfileRequest& r, const RunEvents& events, const std::atomic<bool>* cancel)
{
    if (r.project.empty())
        return Error{"project", {}, "a profiled run is stored in a project: name its .partita file"};
    if (access(r.trace_module.c_str(), R_OK) != 0)
        return Error{r.trace_module, {}, "Partita's trace module is not there"};
    auto store = TraceStore::open(r.project);
    if (!store)
        return store.error();
    auto launch = tracedLaunch(r.command, r.trace_module, "-", r.schedule);
    if (!launch)
        return launch.error();
    auto world = trainingWorld(r, *launch);
    if (!world)
        return world.error();
    ProfileOutcome out;
    out.per_node = launch->per_node;
    if (events.on_stage)
        events.on_stage(RunStage::Predicting);
    if (auto p = predictProfile(**store, r, *world, events, out); !p)
        return p.error();

    if (events.on_stage)
        events.on_stage(RunStage::Launching);
    CommandRunOptions co = commandRunOptions(r, out);
    out.run_dir = co.run_dir;
    co.on_line = events.on_line;
    co.cancel = cancel;
    auto run = executeCommandRun(**store, co);
    if (!run)
        return run.error();
    out.run = std::move(*run);
    if (events.on_stage)
        events.on_stage(RunStage::Comparing);
    if (auto a = attribute(**store, out); !a)
        return a.error();
    return out;
}

} // namespace partita
