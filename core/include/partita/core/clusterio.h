#pragma once
// Reading and writing clusters: native JSON, named presets, nvidia-smi topo -m
// text, OpenMPI/DeepSpeed hostfiles, and detection of the local machine.

#include "partita/core/cluster.h"
#include "partita/core/result.h"

#include <string>
#include <vector>

namespace partita {

std::string clusterToJson(const Cluster& cluster);
Result<Cluster> clusterFromJson(const std::string& text, const std::string& file = {});

// Presets from datasheet figures: "dgx-a100-80gb", "dgx-h100", "p3.16xlarge",
// "p4d.24xlarge", "p5.48xlarge", "g4dn.12xlarge"; "NAME:NODES" for several nodes.
std::vector<std::string> clusterPresetNames();
Result<Cluster> clusterPreset(const std::string& spec);
// Device figures by name ("a100-sxm4-80gb", "h100-sxm5", "v100-sxm2-16gb", "t4", ...).
Result<DeviceSpec> devicePreset(const std::string& name);
std::vector<std::string> devicePresetNames();
// The device preset whose datasheet describes a GPU the CUDA runtime names
// ("NVIDIA H200" -> h200-sxm); empty when none does.
std::string devicePresetForGpuName(const std::string& runtimeName);

// One node from `nvidia-smi topo -m` output. `device` fills the GPU figures;
// NV# links get `lanes` x the per-link bandwidth of that device's NVLink generation.
Result<Node> nodeFromNvidiaSmiTopo(const std::string& text, const DeviceSpec& device,
                                   const std::string& file = {});

// OpenMPI ("host slots=N max_slots=M") and DeepSpeed ("host slots=N") hostfiles.
struct HostEntry
{
    std::string host;
    int slot_count = 1; // "slots" is a macro in Qt code
};
Result<std::vector<HostEntry>> parseHostfile(const std::string& text, const std::string& file = {});
// A cluster of one node per host, each with `slots` copies of `nodeTemplate`'s first device.
Cluster clusterFromHosts(const std::vector<HostEntry>& hosts, const Node& nodeTemplate,
                         const std::string& name);

struct ClusterLoadOptions
{
    std::string device;       // device preset for `nvidia-smi topo -m` files (their text names no model)
    std::string nodeTemplate; // cluster preset whose node hostfile entries are made of
};

// Reads a cluster from a file (JSON, nvidia-smi topo text or hostfile, told
// apart by content) or, when no such file exists, from a preset spec.
Result<Cluster> loadCluster(const std::string& pathOrPreset, const ClusterLoadOptions& options = {});

} // namespace partita
