#pragma once
// A measured run end to end, for partita-cli run and the workbench alike:
// write the plan, start every rank through a launcher, bring the ranks' files
// back, store their timelines as one measured run of the project (kept and
// marked incomplete when a rank failed; the plan saved beside it as a "plan"
// document, named in the run's meta as plan_document), and compare it with
// the prediction.

#include "partita/core/model.h"
#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/core/simulator.h"
#include "partita/executor/launcher.h"
#include "partita/profiler/tracestore.h"

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace partita {

struct MeasuredRunOptions
{
    LaunchSpec launch;       // kind, ranks, hosts, worker, steps, warm-up, scale, timeout, ssh options
    std::string run_dir;     // local folder: plan.json and ranks/ (created)
    std::string remote_dir;  // ssh: the folder on every host for the plan and the ranks' files
    RunInfo info;            // name, documents, source; kind and status are set here
    std::string meta_extra;  // JSON object merged into the run's meta (prediction, options)
    std::function<void(std::string_view line, bool err)> on_line;
    const std::atomic<bool>* cancel = nullptr;
};

struct RankManifest
{
    int rank = -1;
    std::string host;
    std::vector<double> step_s;
    bool complete = false;
    int64_t ops_per_step = 0;
    double shape_scale = 1;
    std::string compute, communicator;
};

struct MeasuredRun
{
    int64_t run_id = 0;            // 0: no rank left a timeline
    bool complete = false;         // every rank ran every measured step
    LaunchResult launch;
    std::vector<RankManifest> ranks;
    std::vector<std::string> warnings;
    // Step time as the slowest rank saw it, per measured step every rank completed.
    std::vector<double> step_s;
};

Result<MeasuredRun> executeRun(TraceStore& store, const Plan& plan, const MeasuredRunOptions& options);

struct LayerComparison
{
    int32_t layer = -1;
    std::string name;
    double measured_s = 0;  // compute (with tensor-parallel collectives) per micro-batch on one device
    double predicted_s = 0; // forward + backward + recompute of the prediction
    double error = 0;       // (predicted - measured) / measured
};

struct RunComparison
{
    double measured_step_s = 0;  // median over steps of the slowest rank
    double predicted_step_s = 0;
    double error = 0;            // (predicted - measured) / measured
    std::vector<LayerComparison> layers;
};

// Per layer, the measured time is read from the stored run's events (their
// layer ids), averaged over the ranks that ran the layer and over steps.
Result<RunComparison> compareWithPrediction(const TraceStore& store, const MeasuredRun& run, const Plan& plan,
                                            const Model& model, const SimResult& predicted);

} // namespace partita
