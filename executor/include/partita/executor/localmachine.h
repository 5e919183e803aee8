#pragma once
// Detection of the machine Partita runs on: CPU cores and memory from the OS,
// GPUs through the CUDA plugin (cudaplugin.h) when it loads and a device exists.

#include "partita/core/cluster.h"
#include "partita/core/costmodel.h"

#include <string>
#include <vector>

namespace partita {

struct LocalMachine
{
    Cluster cluster;                // one node: the GPUs if any, else the CPU
    DeviceSpec cpu;                 // always filled
    std::vector<std::string> notes; // what could not be detected, and why
};

LocalMachine detectLocalMachine();

// The name localCpuCluster (cpubackend.h) gives its cluster.
std::string localCpuClusterName(int ranks); // "local CPU (4 ranks)"

// Whether GPUs can be seen and used at all: the CUDA plugin loads. When it
// does not, `why` (if given) says why.
bool cudaBackendAvailable(std::string* why = nullptr);

// A local CPU cluster (localCpuCluster) on the figures the calibration was
// fitted against (its measured "reference_peak_flops",
// "reference_memory_bandwidth" and "reference_link_bandwidth", one rank per
// core), shared as localCpuCluster shares them: the efficiencies are
// fractions of those figures, and the cluster's own measurement of the peak
// (five sgemm calls, taken again per project) would otherwise move every
// prediction by its noise. Returns what it changed, empty when the
// calibration has no reference.
std::string alignToCalibration(Cluster& c, const Calibration& cal);

} // namespace partita
