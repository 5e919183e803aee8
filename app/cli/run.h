#pragma once

#include "partita/core/costmodel.h"

#include <nlohmann/json.hpp>
// `partita-cli run` (a strategy measured for real, compared with its
// prediction) and `partita-cli calibrate` (the cost model fitted to a
// measured run).

#include "simulate.h"

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
};
int runRun(const RunCliOptions& o);

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
// This CPU's calibration for `run --cluster local`: the cached one
// ($XDG_CACHE_HOME/partita/calibration, keyed by CPU model and core count),
// else measured by `worker` now and cached. `said` gets where it came from.
Result<Calibration> localCpuCalibrationCached(const std::string& worker, bool remeasure, std::string* said);

} // namespace partita::cli
