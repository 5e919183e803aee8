#pragma once
// The cluster: nodes of devices, links inside a node, NICs between nodes.
// Bandwidths are bytes/s in one direction (what a ring step uses); latencies
// are seconds. Every figure carries the name of its source.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class LinkKind
{
    NVLink,   // direct NVLink between two GPUs (NV# in nvidia-smi topo)
    NVSwitch, // all-to-all NVLink through switches
    PCIe,     // through PCIe switches or host bridge (PIX, PXB, PHB)
    CrossCPU, // through the CPU interconnect (NODE, SYS)
    InfiniBand,
    Ethernet,
    EFA,
    SharedMemory, // ranks on one CPU host
};

std::string_view linkKindName(LinkKind k);
bool parseLinkKind(std::string_view s, LinkKind& out);

struct DeviceSpec
{
    std::string name;                     // "A100-SXM4-80GB", "cpu"
    std::string kind = "gpu";             // gpu | cpu
    std::map<std::string, double> peak_flops; // dtype name -> FLOP/s (dense); absent: unknown
    int cores = 0;                        // CPU cores or GPU SMs; 0: unknown
    int64_t memory_bytes = 0;             // 0: unknown
    double memory_bandwidth = 0;          // bytes/s; 0: unknown
    double nvlink_bandwidth = 0;          // bytes/s per NVLink link, one direction; 0: no NVLink
    double pcie_bandwidth = 0;            // bytes/s of the device's PCIe port, one direction; 0: unknown
    std::string source;                   // datasheet, measurement, detection

    bool operator==(const DeviceSpec&) const = default;
};

struct LinkSpec
{
    LinkKind kind = LinkKind::PCIe;
    double bandwidth = 0; // bytes/s, one direction
    double latency = 0;   // seconds
    int lanes = 0;        // NVLink count for NV#, 0 when not applicable
    std::string source;

    bool operator==(const LinkSpec&) const = default;
};

struct PairLink
{
    int a = 0; // local device index
    int b = 0;
    LinkSpec link;

    bool operator==(const PairLink&) const = default;
};

struct NicSpec
{
    int count = 0;        // NICs per node (0: single node, no network)
    LinkSpec link;        // per NIC

    bool operator==(const NicSpec&) const = default;
};

struct Node
{
    std::string name;                // host name
    std::vector<DeviceSpec> devices;
    LinkSpec intra;                  // between any two devices unless `links` says otherwise
    std::vector<PairLink> links;     // pairwise exceptions (from nvidia-smi topo, hybrid cube-mesh ...)
    NicSpec nic;

    const LinkSpec& linkBetween(int a, int b) const;
    bool operator==(const Node&) const = default;
};

struct Cluster
{
    std::string name;
    std::string source; // file or preset it came from
    std::vector<Node> nodes;

    int deviceCount() const;
    bool operator==(const Cluster&) const = default;
};

// Empty when well-formed, else the problem (no nodes, a node without devices,
// a pair link naming a device that does not exist, negative figures).
std::string validateCluster(const Cluster& cluster);

// Empty when every node is like the first (devices, their count, the links
// between them, the NIC); else which nodes differ and how. The simulator and
// the plan model every node as the first one, so they refuse such clusters.
std::string unlikeNodes(const Cluster& cluster);

} // namespace partita
