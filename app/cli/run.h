#pragma once
// `partita-cli run` (a strategy measured for real, compared with its
// prediction: the executor's run session, runsession.h) and `partita-cli
// calibrate` (the cost model fitted to a measured run).

#include "simulate.h"

#include "partita/core/costmodel.h"

#include "partita/core/plan.h"
#include "partita/core/simulator.h"
#include "partita/executor/launcher.h"
#include "partita/executor/runsession.h"
#include "partita/profiler/tracestore.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <string>
#include <vector>

namespace partita::cli {

struct RunCliOptions
{
    SimulateOptions sim; // model, cluster, strategy, calibration, project, name, json
    std::string backend = "cpu", launcher = "local", hosts, worker, remoteDir, sshConfig, sshIdentity;
    std::vector<std::string> sshOptions; // KEY=VALUE
    int ranks = 0, steps = 3, warmup = 1;
    double shapeScale = 1.0, timeout = 600;
    bool remeasure = false, noCupti = false;
    // --command: the user's own training, one process per rank (commandrun.cpp).
    std::string command, profileSteps = "1,1,3", traceModule, masterAddr;
    std::string config; // --config: a framework's configuration to predict (frameworks.h)
    int masterPort = 0;
};
int runRun(const RunCliOptions& o);
// run --command: the user's training command profiled on every rank, its
// time attributed to the model's layers, compared with the prediction when
// a model is given.
int runCommand(const RunCliOptions& o);

// The request for the executor's run session (runsession.h) that the
// options describe: `given` the strategy to run (a framework
// configuration's), else the options' made for the cluster; `launch` the
// launch (launchSpecOf) with the backend, steps and scale set.
Result<RunRequest> runRequestOf(const RunCliOptions& o, const Model& model, const Strategy* given, LaunchSpec launch);
// "+1.2 %" of a fraction.
std::string signedPercent(double e);
// From now on SIGINT and SIGTERM set the flag returned: a run's cancel
// (every rank stopped, what they hold kept).
const std::atomic<bool>* cancelOnSignals();
// What every run's launch takes from the options: the launcher, timeout,
// ssh options, the worker (checked) and the hosts (required off this machine).
Result<LaunchSpec> launchSpecOf(const RunCliOptions& o);
// partita-worker beside partita-cli, or --worker.
std::string workerPath(const RunCliOptions& o);

struct CalibrateCliOptions
{
    std::string project, out;
    int64_t run = 0;
    bool json = false;
    // The GPU instead of a run (gpucalibrate.cpp): measured here, or a saved sweep.
    bool measureGpu = false, quick = false, noNccl = false;
    bool local = false; // this machine's CPU, measured by partita-worker --calibrate-cpu, cached
    int gpu = 0;
    std::string fromSweep, sweepOut, device, precision = "bf16";
};
int runCalibrate(const CalibrateCliOptions& o);
// What every calibrate prints: the calibration written to --out (or standard
// output), with --json an object of it and `extra`'s fields, else `summary`
// when it went to a file. Returns the exit status.
int emitCalibration(const CalibrateCliOptions& o, const Calibration& c, const nlohmann::json& extra,
                    const std::string& summary);
// calibrate --measure-gpu / --from-sweep: a calibration from one GPU's tables (gpusweep.h).
int runGpuCalibrate(const CalibrateCliOptions& o);
// calibrate --local.
int runLocalCalibrate(const CalibrateCliOptions& o);

} // namespace partita::cli
