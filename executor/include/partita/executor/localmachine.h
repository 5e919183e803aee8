#pragma once
// Detection of the machine Partita runs on: CPU cores and memory from the OS,
// GPUs through the CUDA runtime when built with CUDA and a device exists.

#include "partita/core/cluster.h"

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

// This machine as a cluster of `ranks` CPU processes for the CPU backend:
// one node whose devices are the ranks. Each rank's peak is measured here
// (single-threaded OpenBLAS sgemm, a single-threaded memory pass) and, when
// there are more ranks than cores, shared: ranks x peak never exceeds cores x
// peak. Ranks exchange data through shared memory at the measured copy
// bandwidth. The CPU backend computes every dtype in fp32, so every dtype's
// peak is the sgemm figure. Takes about half a second.
Cluster localCpuCluster(int ranks);
std::string localCpuClusterName(int ranks); // "local CPU (4 ranks)"

// Whether this build can see GPUs at all (built with the CUDA runtime).
bool builtWithCuda();

} // namespace partita
