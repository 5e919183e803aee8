#pragma once
// A user's own training command profiled end to end, as one library call
// that partita-cli run --command and the workbench's Profile dialog both
// make (the same stages and events as a strategy run, runsession.h):
//   1. the prediction, when there is a model to predict with (the request's,
//      or the framework configuration's that the request or the command
//      names): its strategy is the configuration's, else the request's; the
//      prediction is stored beside its documents;
//   2. the command run once per rank through the trace module and a
//      launcher (commandrun.h), every rank's trace stored as one measured run;
//   3. its time attributed to the model's layers (layerattribution.h),
//      stored in the run's meta, beside the prediction per layer.

#include "partita/core/frameworks.h"
#include "partita/core/tracedcommand.h"
#include "partita/executor/commandrun.h"
#include "partita/executor/runsession.h"
#include "partita/profiler/layerattribution.h"

#include <optional>
#include <string>
#include <vector>

namespace partita {

struct ProfileRequest
{
    std::string project;       // the .partita file (created when missing)
    std::string command;       // what one rank runs (a torchrun line: one process per node)
    std::string trace_module;  // partita_trace.py, a path valid on every host
    ProfileSchedule schedule;
    std::string master_addr;   // default: 127.0.0.1 (local), else the first host
    int master_port = 0;       // 0: a port free on this machine now
    // Launcher kind, processes, hosts, worker, timeout, ssh options and the
    // folder the command runs in (working_dir).
    LaunchSpec launch;
    int ranks = 0;             // the ranks as the user gave them (0: not given): a torchrun line's are checked
    std::string remote_root;   // ssh: the parent of the run's folder on every host; empty: /tmp
    std::string run_name;      // empty: "profiled: COMMAND"
    std::string source;        // who asked, stored with the run
    // The prediction. Its project, launch worker and backend are this
    // request's; its model is `model`, else a framework configuration's.
    RunRequest predict;
    std::optional<Model> model;
    std::string config;        // a framework configuration to predict with (file)
    bool config_in_command = true; // else: the configuration the command names is not looked for
};

// Measured per layer beside the prediction's forward + backward + recompute
// of every micro-batch of a step.
struct ProfiledLayer
{
    std::string name;
    int32_t layer = -1;
    double measured_s = 0, predicted_s = -1; // per step on one rank; -1: no prediction
};

struct ProfileOutcome
{
    std::optional<RunPrediction> prediction;
    StoredDocuments documents;
    int64_t predicted_run_id = 0;
    CommandRun run;              // run_id 0: no rank left a trace; launch: who failed, and why
    bool per_node = false;       // a torchrun line: one launched process per node
    std::string run_dir;         // PROJECT.runs/STAMP: the ranks' traces
    std::optional<LayerAttribution> attribution;
    double measured_step_s = 0;  // median over the recorded steps of the slowest rank
    std::vector<ProfiledLayer> layers;
    bool complete() const { return run.complete; }
    bool cancelled() const { return run.launch.cancelled; }
};

// The whole profile. An error when it could not start (bad input, no trace
// module, a prediction that cannot be made); a run that failed or was
// cancelled midway is an outcome that is not complete, with what was traced
// stored and marked incomplete.
Result<ProfileOutcome> profileCommand(const ProfileRequest& r, const RunEvents& events = {},
                                      const std::atomic<bool>* cancel = nullptr);

// profileCommand on a thread of its own (session.h): the workbench's Profile dialog.
class ProfileSession : public Session<ProfileOutcome>
{
public:
    ProfileSession(ProfileRequest request, RunEvents events, std::function<void()> done = {})
        : Session([request = std::move(request), events = std::move(events)](const std::atomic<bool>* cancel) {
              return profileCommand(request, events, cancel);
          },
                  std::move(done))
    {
    }
};

} // namespace partita
