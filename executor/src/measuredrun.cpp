#include "partita/executor/measuredrun.h"

#include "partita/core/fileio.h"
#include "partita/profiler/chromeimport.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace partita {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What the ranks left in `ranksDir`: each manifest read, each timeline there.
std::vector<std::string> readManifests(const Plan& plan, const fs::path& ranksDir, MeasuredRun& out)
{
    std::vector<std::string> traces;
    for (int r = 0; r < plan.world; ++r) {
        const fs::path mf = ranksDir / ("rank-" + std::to_string(r) + ".manifest.json");
        const fs::path tf = ranksDir / ("rank-" + std::to_string(r) + ".trace.json");
        std::ifstream in(mf);
        if (!in) {
            out.warnings.push_back("rank " + std::to_string(r) + " left no manifest");
            continue;
        }
        try {
            const json j = json::parse(in);
            RankManifest m;
            m.rank = j.value("rank", r);
            m.host = j.value("host", "");
            m.step_s = j.value("step_s", std::vector<double>{});
            m.complete = j.value("complete", false);
            m.ops_per_step = j.value("ops_per_step", int64_t(0));
            m.shape_scale = j.value("shape_scale", 1.0);
            m.compute = j.value("compute", "");
            m.communicator = j.value("communicator", "");
            out.ranks.push_back(std::move(m));
        } catch (const json::exception& e) {
            out.warnings.push_back(mf.string() + ": " + e.what());
            continue;
        }
        if (fs::exists(tf))
            traces.push_back(tf.string());
    }
    return traces;
}

// Ranks whose results did not come back, whether the run is complete, and
// each step's time as the slowest rank saw it.
void settleOutcome(const Plan& plan, const fs::path& ranksDir, const std::vector<std::string>& copyFailures, MeasuredRun& out)
{
    if (int(out.ranks.size()) < plan.world)
        for (const std::string& h : copyFailures)
            out.warnings.push_back("could not copy the ranks' files back from " + h);
    if (out.launch.ok && int(out.ranks.size()) < plan.world) {
        // The ranks finished, but not every result reached this machine.
        std::vector<bool> have(size_t(plan.world), false);
        for (const RankManifest& m : out.ranks)
            if (m.rank >= 0 && m.rank < plan.world)
                have[size_t(m.rank)] = true;
        for (int r = 0; r < plan.world; ++r)
            if (!have[size_t(r)]) {
                out.launch.failed_rank = r;
                out.launch.failed_host = r < int(out.launch.ranks.size()) ? out.launch.ranks[size_t(r)].host : "";
                out.launch.cause = "the rank finished but its results did not come back to " + ranksDir.string();
                out.launch.message = "rank " + std::to_string(r) +
                                     (out.launch.failed_host.empty() ? "" : " on " + out.launch.failed_host) + ": " +
                                     out.launch.cause;
                break;
            }
    }
    out.complete = out.launch.ok && int(out.ranks.size()) == plan.world &&
                   std::all_of(out.ranks.begin(), out.ranks.end(), [](const RankManifest& m) { return m.complete; });
    size_t steps = SIZE_MAX;
    for (const RankManifest& m : out.ranks)
        steps = std::min(steps, m.step_s.size());
    if (int(out.ranks.size()) == plan.world && steps != SIZE_MAX)
        for (size_t i = 0; i < steps; ++i) {
            double slowest = 0;
            for (const RankManifest& m : out.ranks)
                slowest = std::max(slowest, m.step_s[i]);
            out.step_s.push_back(slowest);
        }
}

// The ranks' timelines stored as one measured run, the plan beside it, and
// the run's meta (docs/formats.md).
Result<bool> storeRun(TraceStore& store, const Plan& plan, const MeasuredRunOptions& o, const LaunchSpec& spec,
                      const fs::path& runDir, const std::vector<std::string>& traces, MeasuredRun& out)
{
    TraceImportOptions io;
    io.name = o.info.name;
    io.kind = RunKind::Measured;
    auto imported = importChromeTrace(store, traces, io);
    if (!imported)
        return imported.error();
    out.run_id = imported->run_id;
    for (const std::string& w : imported->warnings)
        out.warnings.push_back(w);

    // The plan, so that calibration can match every op to its kernel from the project alone.
    auto planDoc = store.saveDocument("plan", o.info.name, planToJson(plan));
    if (!planDoc)
        return planDoc.error();
    json meta = json::object();
    if (!o.meta_extra.empty())
        meta = json::parse(o.meta_extra, nullptr, false);
    if (!meta.is_object())
        meta = json::object();
    meta["plan_document"] = planDoc->id;
    meta["launcher"] = std::string(launcherName(spec.kind));
    meta["ranks"] = plan.world;
    meta["steps"] = spec.steps;
    meta["warmup"] = spec.warmup;
    meta["shape_scale"] = spec.shape_scale;
    meta["run_dir"] = runDir.string();
    meta["step_time_s"] = out.step_s;
    meta["launch_seconds"] = out.launch.seconds;
    if (!out.launch.ok)
        meta["error"] = out.launch.message;
    json ranks = json::array();
    for (const RankManifest& m : out.ranks)
        ranks.push_back({{"rank", m.rank},
                         {"host", m.host},
                         {"step_s", m.step_s},
                         {"complete", m.complete},
                         {"ops_per_step", m.ops_per_step},
                         {"compute", m.compute},
                         {"communicator", m.communicator}});
    meta["rank_manifests"] = std::move(ranks);
    meta["warnings"] = out.warnings;
    RunInfo info = o.info;
    info.kind = RunKind::Measured;
    info.status = out.complete ? RunStatus::Complete : RunStatus::Incomplete;
    if (info.host.empty() && !out.ranks.empty())
        info.host = out.ranks.front().host;
    info.meta = meta.dump();
    if (auto a = store.annotateRun(out.run_id, info); !a)
        return a.error();
    return true;
}

} // namespace

Result<MeasuredRun> executeRun(TraceStore& store, const Plan& plan, const MeasuredRunOptions& o)
{
    MeasuredRun out;
    std::error_code ec;
    const fs::path runDir(o.run_dir);
    const fs::path ranksDir = runDir / "ranks";
    fs::create_directories(ranksDir, ec);
    if (ec)
        return Error{ranksDir.string(), {}, ec.message()};
    const std::string planPath = (runDir / "plan.json").string();
    if (auto w = writeFileAtomically(planPath, planToJson(plan)); !w)
        return w.error();

    LaunchSpec spec = o.launch;
    spec.ranks = plan.world;
    if (spec.kind == LauncherKind::Ssh) {
        if (auto w = writeSshHostfile(spec, runDir.string(), o.remote_dir); !w)
            return w.error();
        if (auto d = distributePlan(spec, planPath, o.remote_dir); !d) {
            // Nothing ran: no run is stored, and the message says which host.
            out.launch.failed_host = d.error().file.substr(5);
            out.launch.cause = d.error().message;
            out.launch.message = d.error().str();
            return out;
        }
        spec.plan = o.remote_dir + "/plan.json";
        spec.out = o.remote_dir;
    } else {
        spec.plan = planPath;
        spec.out = ranksDir.string();
    }
    out.launch = runLaunch(spec, o.on_line, o.cancel);
    std::vector<std::string> copyFailures;
    if (spec.kind == LauncherKind::Ssh) {
        auto got = collectRemoteFiles(spec, ranksDir.string());
        if (!got)
            out.warnings.push_back(got.error().str());
        else
            copyFailures = *got;
    }

    const std::vector<std::string> traces = readManifests(plan, ranksDir, out);
    settleOutcome(plan, ranksDir, copyFailures, out);
    if (traces.empty())
        return out;
    if (auto r = storeRun(store, plan, o, spec, runDir, traces, out); !r)
        return r.error();
    return out;
}

Result<RunComparison> compareWithPrediction(const TraceStore& store, const MeasuredRun& run, const Plan& plan,
                                            const Model& model, const SimResult& predicted)
{
    RunComparison c;
    c.predicted_step_s = predicted.step_time;
    if (!run.step_s.empty()) {
        std::vector<double> v = run.step_s;
        std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
        c.measured_step_s = v[v.size() / 2];
        if (v.size() % 2 == 0) {
            const double lower = *std::max_element(v.begin(), v.begin() + long(v.size() / 2));
            c.measured_step_s = (c.measured_step_s + lower) / 2;
        }
        c.error = (c.predicted_step_s - c.measured_step_s) / c.measured_step_s;
    }
    if (!run.run_id)
        return c;
    // Per (rank, layer): compute and tensor-parallel collectives on the compute track.
    std::map<std::pair<int32_t, int32_t>, int64_t> ns;
    std::map<int32_t, int> stepsOfRank;
    auto tracks = store.tracks(run.run_id);
    if (!tracks)
        return tracks.error();
    std::set<int64_t> computeTracks; // the worker's "compute" thread of each rank
    for (const StoredTrack& t : *tracks)
        if (t.name.size() >= 7 && t.name.compare(t.name.size() - 7, 7, "compute") == 0)
            computeTracks.insert(t.id);
    auto each = store.forEachEvent(run.run_id, [&](const StoredEvent& e) {
        const TraceRecord& r = e.record;
        if (r.kind == TraceKind::Step) {
            ++stepsOfRank[r.rank];
            return;
        }
        if (r.layer < 0 || !computeTracks.count(e.track_id) || r.kind == TraceKind::P2P || !isDeviceKind(r.kind))
            return;
        ns[{r.rank, r.layer}] += r.dur_ns;
    });
    if (!each)
        return each.error();
    const double micro = double(std::max<int64_t>(1, plan.micro_batches));
    std::map<int32_t, std::pair<double, int>> perLayer; // seconds per micro-batch summed over ranks, ranks
    for (const auto& [key, total] : ns) {
        const int steps = std::max(1, stepsOfRank[key.first]);
        auto& acc = perLayer[key.second];
        acc.first += double(total) * 1e-9 / steps / micro;
        acc.second += 1;
    }
    for (const LayerTime& lt : predicted.layers) {
        LayerComparison lc;
        lc.layer = lt.layer;
        lc.name = size_t(lt.layer) < model.layers.size() ? model.layers[size_t(lt.layer)].name : "";
        lc.predicted_s = lt.forward + lt.backward + lt.recompute;
        if (auto it = perLayer.find(lt.layer); it != perLayer.end())
            lc.measured_s = it->second.first / it->second.second;
        if (lc.measured_s <= 0 && lc.predicted_s <= 0)
            continue;
        lc.error = lc.measured_s > 0 ? (lc.predicted_s - lc.measured_s) / lc.measured_s : 0;
        c.layers.push_back(std::move(lc));
    }
    return c;
}

} // namespace partita
