#pragma once
// A strategy run for real, end to end, as one library call that partita-cli
// run and the workbench's Run Strategy dialog both make:
//   1. the cluster: this machine (its CPU measured by partita-worker once per
//      project and rank count; or its GPUs) or a named one (loadCluster);
//   2. the strategy's plan predicted at the run's shape scale (what the ranks
//      will execute), on this CPU's own cached calibration when the cluster
//      is this machine's CPU and no calibration is given;
//   3. the model, cluster and strategy stored as documents of the project,
//      the prediction as a run;
//   4. the ranks launched (measuredrun.h), their timelines stored as a
//      measured run, compared with the prediction, with what the backend did
//      not execute as planned (asplanned.h).
// Progress comes as each stage begins and as the ranks print; a cancel stops
// every rank and keeps what they measured; the result is typed.

#include "partita/core/clusterio.h"
#include "partita/core/model.h"
#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/core/simulator.h"
#include "partita/core/strategy.h"
#include "partita/executor/launcher.h"
#include "partita/executor/measuredrun.h"
#include "partita/executor/session.h"
#include "partita/profiler/tracestore.h"

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

// The model, cluster and strategy a run came from, saved as documents of the project.
struct StoredDocuments
{
    int64_t model = 0, cluster = 0, strategy = 0;
};
// `modelLabel` names the model's document when the model has no name.
Result<StoredDocuments> saveRunDocuments(TraceStore& store, const Model& model, const std::string& modelLabel,
                                         const Cluster& cluster, const Strategy& s, const std::string& strategyName);

struct RunRequest
{
    std::string project; // the .partita file the runs are stored in (created when missing)
    Model model;
    std::string model_label;           // where the model came from: its document's name when it has none
    std::string cluster = "local";     // "local": this machine; else a cluster file or preset
    ClusterLoadOptions cluster_options;
    // The strategy as given, else made for the cluster once it is known.
    std::optional<Strategy> strategy;
    std::function<Result<Strategy>(const Model&, const Cluster&)> make_strategy;
    std::string strategy_label;        // the runs' name when the strategy has none and run_name is empty
    std::string run_name;              // empty: the strategy's name
    std::optional<Calibration> calibration; // else this CPU's own for the local CPU cluster, else none
    int64_t seq_len = 0;               // 0: the model's
    int ranks = 0;                     // ranks of the local CPU cluster; 0: the given strategy's degrees
    bool remeasure = false;            // measure this machine again rather than reuse the project's and the cache
    // Launcher kind, hosts, worker, backend, steps, warm-up, shape scale,
    // timeout, ssh options, device tracing; its ranks come from the plan.
    LaunchSpec launch;
    std::string remote_root;           // ssh: the parent of the run's folder on every host; empty: /tmp
    std::string source;                // who asked, stored with the runs ("partita-cli run", "workbench")
};

enum class RunStage
{
    Predicting, // measuring this machine when needed, then the simulation
    Launching,  // the prediction is stored; the ranks start
    Comparing,  // the ranks ended; the measured run is compared with the prediction
};
const char* runStageName(RunStage s);

// Called on the thread that runs the session.
struct RunEvents
{
    std::function<void(RunStage)> on_stage;
    std::function<void(const std::string& note)> on_note; // calibration's source, cluster alignments, warnings
    std::function<void(std::string_view line, bool err)> on_line; // the launcher's and the ranks' output
};

// What the run is predicted to take before it is measured.
struct RunPrediction
{
    Cluster cluster;
    Strategy strategy;
    Plan plan;          // full size; the prediction is of scalePlan(plan, launch.shape_scale)
    SimResult predicted;
};

// Stages 1 and 2 (also for a caller that predicts a run it does not start:
// a user's own training command).
Result<RunPrediction> predictRun(TraceStore& store, const RunRequest& r, const RunEvents& events = {});
// Stage 3: the prediction stored as a run beside its documents; its id.
Result<int64_t> storePrediction(TraceStore& store, const RunRequest& r, const RunPrediction& p, StoredDocuments& docs);
// The name runs take: the strategy's, else the request's label.
std::string strategyLabel(const RunRequest& r, const Strategy& s);
// A run's folder name under PROJECT.runs/: UTC time and this process's id.
std::string runStamp();

struct RunOutcome
{
    RunPrediction prediction;
    StoredDocuments documents;
    int64_t predicted_run_id = 0;
    MeasuredRun measured;     // run_id 0: no rank left a timeline; launch: who failed, and why
    RunComparison comparison; // of what was measured, however far it got
    std::vector<std::string> not_as_planned;
    std::string run_dir;      // PROJECT.runs/STAMP: the plan and the ranks' files
    bool complete() const { return measured.complete; }
    bool cancelled() const { return measured.launch.cancelled; }
};

// The whole run. An error when it could not start (bad input, no worker, no
// GPU for the CUDA backend, an impossible launch); a run that failed or was
// cancelled midway is an outcome that is not complete, with what the ranks
// measured stored and marked incomplete.
Result<RunOutcome> runStrategy(const RunRequest& r, const RunEvents& events = {},
                               const std::atomic<bool>* cancel = nullptr);

// runStrategy on a thread of its own (session.h): the workbench's Run dialog.
class RunSession : public Session<RunOutcome>
{
public:
    RunSession(RunRequest request, RunEvents events, std::function<void()> done = {})
        : Session([request = std::move(request), events = std::move(events)](const std::atomic<bool>* cancel) {
              return runStrategy(request, events, cancel);
          },
                  std::move(done))
    {
    }
};

} // namespace partita
