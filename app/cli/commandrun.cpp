// partita-cli run --command: the user's own training profiled on every rank
// through the executor's profile session (executor/profilesession.h), its
// time attributed to the model's layers and, with a model, compared with
// the prediction of the strategy given.
#include "run.h"

#include "common.h"

#include "partita/core/modelio.h"
#include "partita/core/units.h"
#include "partita/executor/localcpu.h"
#include "partita/executor/profilesession.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <iostream>

namespace partita::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Partita's trace module: --trace-module, else the one installed beside
// partita-cli (…/share/partita/profiler; the build tree has a copy too).
std::string traceModulePath(const RunCliOptions& o)
{
    if (!o.traceModule.empty())
        return o.traceModule;
    const fs::path bin = fs::path(besideThisProgram("partita-cli")).parent_path();
    return (bin.parent_path() / "share/partita/profiler/partita_trace.py").string();
}

void printResult(const ProfileOutcome& out, const std::string& project)
{
    const double measured = out.measured_step_s;
    const LayerAttribution* a = out.attribution ? &*out.attribution : nullptr;
    std::cout << "\nMeasured     " << (measured > 0 ? formatSeconds(measured) : "-")
              << " per step (median over the recorded steps, slowest rank)\n";
    if (out.prediction) {
        const double predicted = out.prediction->predicted.step_time;
        std::cout << "Predicted    " << formatSeconds(predicted) << " ("
                  << (measured > 0 ? signedPercent((predicted - measured) / measured) : "-") << ")\n";
    }
    if (a) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.1f %% of the ranks' own CPU operator time (worst step %.1f %%)",
                      100 * a->attributed_fraction, 100 * a->worst_step_fraction);
        std::cout << "Attributed   " << buf << "\n";
        std::cout << "\nPer layer, one step on one rank (CPU operators and the GPU kernels they launched)\n";
        std::printf("  %-44s %12s %12s %9s\n", "layer or module", "measured", "predicted", "error");
        std::cout.flush();
        for (const ProfiledLayer& r : out.layers)
            std::printf("  %-44s %12s %12s %9s\n", r.name.substr(0, 44).c_str(), formatSeconds(r.measured_s).c_str(),
                        r.predicted_s >= 0 ? formatSeconds(r.predicted_s).c_str() : "-",
                        r.predicted_s >= 0 && r.measured_s > 0 ? signedPercent((r.predicted_s - r.measured_s) / r.measured_s).c_str()
                                                               : "-");
        std::fflush(stdout);
    }
    for (const std::string& w : out.run.warnings)
        std::cout << "warning: " << w << "\n";
    if (out.run.run_id)
        std::cout << "run " << out.run.run_id << (out.complete() ? "" : " (incomplete)")
                  << (out.predicted_run_id ? " and its prediction, run " + std::to_string(out.predicted_run_id) + ","
                                           : std::string())
                  << " stored in " << project << "\n";
}

json stepsJson(const LayerAttribution* a)
{
    json steps = json::array();
    if (a)
        for (const StepAttribution& s : a->steps)
            steps.push_back({{"rank", s.rank}, {"step", s.index}, {"step_s", double(s.dur_ns) * 1e-9},
                             {"op_s", double(s.op_ns) * 1e-9}, {"attributed_s", double(s.attributed_ns) * 1e-9},
                             {"collectives_s", double(s.collective_ns) * 1e-9}, {"fraction", s.fraction()}});
    return steps;
}

json resultJson(const RunCliOptions& o, const ProfileOutcome& out)
{
    const LayerAttribution* a = out.attribution ? &*out.attribution : nullptr;
    const double measured = out.measured_step_s;
    json j;
    j["run_id"] = out.run.run_id;
    j["complete"] = out.complete();
    j["ranks"] = int(out.run.ranks.size());
    j["per_node"] = out.per_node;
    j["launcher"] = o.launcher;
    j["run_dir"] = out.run_dir;
    j["measured_step_time_s"] = measured;
    j["steps_s"] = a ? a->step_s : std::vector<double>{};
    j["attributed_fraction"] = a ? a->attributed_fraction : 0.0;
    j["worst_step_attributed_fraction"] = a ? a->worst_step_fraction : 0.0;
    j["step_attribution"] = stepsJson(a);
    json logged = json::array();
    for (const CommandRankResult& r : out.run.ranks)
        logged.push_back({{"rank", r.rank}, {"traced", r.traced}, {"optimizer_step_s", r.step_s}});
    j["rank_results"] = std::move(logged);
    if (out.prediction) {
        const double predicted = out.prediction->predicted.step_time;
        j["predicted_run_id"] = out.predicted_run_id;
        j["predicted_step_time_s"] = predicted;
        j["step_time_error"] = measured > 0 ? (predicted - measured) / measured : 0.0;
        j["calibration"] = out.prediction->predicted.calibration_source;
    }
    json layers = json::array();
    for (const ProfiledLayer& r : out.layers) {
        json l{{"name", r.name}, {"layer", r.layer}, {"measured_s", r.measured_s}};
        if (r.predicted_s >= 0) {
            l["predicted_s"] = r.predicted_s;
            l["error"] = r.measured_s > 0 ? (r.predicted_s - r.measured_s) / r.measured_s : 0.0;
        }
        layers.push_back(std::move(l));
    }
    j["layers"] = std::move(layers);
    j["warnings"] = out.run.warnings;
    if (!out.complete()) {
        j["error"] = out.run.launch.message;
        j["failed_rank"] = out.run.launch.failed_rank;
        j["failed_host"] = out.run.launch.failed_host;
        j["cause"] = out.run.launch.cause;
    }
    return j;
}

// The profile session's request the options describe.
Result<ProfileRequest> profileRequestOf(const RunCliOptions& o)
{
    ProfileRequest r;
    r.project = o.sim.project;
    r.command = o.command;
    auto schedule = parseProfileSchedule(o.profileSteps);
    if (!schedule)
        return schedule.error();
    r.schedule = *schedule;
    r.trace_module = traceModulePath(o);
    if (access(r.trace_module.c_str(), R_OK) != 0)
        return Error{r.trace_module, {}, "Partita's trace module is not there (give --trace-module PATH)"};
    auto spec = launchSpecOf(o);
    if (!spec)
        return spec.error();
    int slots = 0; // the processes: --ranks, else the hosts' slots
    for (const HostEntry& h : spec->hosts)
        slots += h.slot_count;
    spec->ranks = o.ranks > 0 ? o.ranks : spec->hosts.empty() ? 1 : slots;
    r.ranks = o.ranks;
    r.master_addr = o.masterAddr;
    r.master_port = o.masterPort;
    r.remote_root = o.remoteDir;
    r.run_name = o.sim.runName;
    r.source = "partita-cli run --command (" + o.launcher + ")";
    r.config = o.config;
    r.config_in_command = o.sim.strategy.empty() && o.sim.preset.empty();
    if (!o.sim.model.empty()) {
        auto m = loadModel(o.sim.model);
        if (!m)
            return m.error();
        r.model = std::move(*m);
    }
    // The prediction's settings; its model and ranks are set by the session.
    auto predict = runRequestOf(o, r.model ? *r.model : Model{}, nullptr, *spec);
    if (!predict)
        return predict.error();
    r.predict = std::move(*predict);
    r.launch = std::move(*spec);
    return r;
}

} // namespace

int runCommand(const RunCliOptions& o)
{
    if (o.sim.project.empty())
        return fail(Error{"--project", {}, "a profiled run is stored in a project: give --project FILE.partita"});
    auto request = profileRequestOf(o);
    if (!request)
        return fail(request.error());
    std::ostream& progress = o.sim.json ? std::cerr : std::cout;
    RunEvents events;
    events.on_note = [](const std::string& n) { std::cerr << n << "\n"; };
    events.on_line = [&](std::string_view line, bool err) {
        if (err)
            std::cerr << line << "\n";
        else
            progress << line << std::endl;
    };
    auto out = profileCommand(*request, events, cancelOnSignals());
    if (!out)
        return fail(out.error());
    if (o.sim.json)
        std::cout << resultJson(o, *out).dump(2) << "\n";
    else
        printResult(*out, o.sim.project);
    if (!out->complete()) {
        std::cerr << "partita-cli: error: the run failed: " << out->run.launch.message << "\n";
        if (out->run.run_id)
            std::cerr << "partita-cli: what the ranks traced is kept as run " << out->run.run_id << ", marked incomplete\n";
        return 3;
    }
    return 0;
}

} // namespace partita::cli
