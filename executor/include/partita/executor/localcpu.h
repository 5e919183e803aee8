#pragma once
// This machine's CPU as partita-worker measures it (the process that links
// OpenBLAS; partita-cli and the workbench do not): the local cluster's
// figures, and the cost model's tables for this CPU, cached per CPU model
// and core count so that later predictions stay on the same reference.

#include "partita/core/cluster.h"
#include "partita/core/costmodel.h"
#include "partita/core/result.h"

#include <string>
#include <vector>

namespace partita {

// `name` in the folder of the running program (/proc/self/exe): where
// partita-worker sits beside partita-cli and partita, built or installed.
std::string besideThisProgram(const std::string& name);

// What `worker ARGS` prints on standard output; an error naming the worker
// and the arguments when it cannot be run or does not exit with 0.
Result<std::string> workerOutput(const std::string& worker, const std::string& args);

// This machine as a cluster of `ranks` CPU ranks (partita-worker --measure-cpu).
Result<Cluster> measureLocalCpu(const std::string& worker, int ranks);

// $XDG_CACHE_HOME/partita/calibration/cpu-<model>-<cores>c.json (else ~/.cache).
std::string localCalibrationCachePath();

// This CPU's calibration: the cached one unless `remeasure`, else measured
// now by `worker` (--calibrate-cpu, then Open MPI's all-reduce between one
// rank per core) and cached. `notes` gets where it came from, and a warning
// when the cores slowed each other while it was measured.
Result<Calibration> localCpuCalibrationCached(const std::string& worker, bool remeasure,
                                              std::vector<std::string>* notes);

} // namespace partita
