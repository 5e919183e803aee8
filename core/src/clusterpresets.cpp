// Cluster and device presets. Every figure names its source next to it.
#include "partita/core/clusterio.h"

#include <charconv>
#include <functional>

namespace partita {

namespace {

constexpr double GiB = 1073741824.0;
constexpr double GBps = 1e9;
constexpr double Gbps = 1e9 / 8;
constexpr double us = 1e-6;

// Link latencies: NCCL's per-hop hardware latencies for the LL protocol,
// src/graph/tuning.cc hwLat (Ring/LL): NVLink 0.47 us, PCI 1.0 us, network 2.7 us.
constexpr double kNvlinkLatency = 0.47 * us;
constexpr double kPcieLatency = 1.0 * us;
constexpr double kNetLatency = 2.7 * us;
constexpr const char* kLatencySource = "latency: NCCL src/graph/tuning.cc hwLat (Ring, LL)";

// Per-link, per-direction NVLink bandwidth: 25 GB/s for NVLink 2, 3 and 4
// (V100: 6 links = 300 GB/s bidirectional; A100: 12 links = 600 GB/s; H100: 18 links = 900 GB/s; datasheets).
constexpr double kNvlinkPerLink = 25 * GBps;
// PCIe x16 per direction: Gen3 8 GT/s x 16 x 128/130 / 8 = 15.75 GB/s; Gen4 31.5 GB/s; Gen5 63 GB/s (PCI-SIG).
constexpr double kPcieGen3 = 15.75 * GBps;
constexpr double kPcieGen4 = 31.5 * GBps;
constexpr double kPcieGen5 = 63.0 * GBps;

struct DevicePreset
{
    const char* id;
    std::function<DeviceSpec()> make;
};

DeviceSpec a100(int gib, double bw)
{
    DeviceSpec d;
    d.name = gib == 80 ? "A100-SXM4-80GB" : "A100-SXM4-40GB";
    d.cores = 108; // SMs (NVIDIA A100 Tensor Core GPU architecture whitepaper, Table 1)
    d.peak_flops = {{"bf16", 312e12}, {"fp16", 312e12}, {"tf32", 156e12}, {"fp32", 19.5e12}, {"fp64", 19.5e12}};
    d.memory_bytes = int64_t(gib * GiB);
    d.memory_bandwidth = bw;
    d.nvlink_bandwidth = kNvlinkPerLink;
    d.pcie_bandwidth = kPcieGen4;
    d.source = "NVIDIA A100 Tensor Core GPU datasheet (dense tensor FLOP/s, SXM); HBM capacity read as GiB";
    return d;
}

const std::vector<DevicePreset>& devicePresets()
{
    static const std::vector<DevicePreset> presets{
        {"a100-sxm4-80gb", [] { return a100(80, 2039 * GBps); }},
        {"a100-sxm4-40gb", [] { return a100(40, 1555 * GBps); }},
        {"h100-sxm5",
         [] {
             DeviceSpec d;
             d.name = "H100-SXM5-80GB";
             d.cores = 132; // SMs (NVIDIA H100 Tensor Core GPU architecture whitepaper, Table 3)
             d.peak_flops = {{"bf16", 989e12}, {"fp16", 989e12}, {"fp8", 1979e12}, {"tf32", 494e12},
                             {"fp32", 67e12},  {"fp64", 67e12}};
             d.memory_bytes = int64_t(80 * GiB);
             d.memory_bandwidth = 3350 * GBps;
             d.nvlink_bandwidth = kNvlinkPerLink;
             d.pcie_bandwidth = kPcieGen5;
             d.source = "NVIDIA H100 Tensor Core GPU datasheet (SXM5, dense tensor FLOP/s)";
             return d;
         }},
        {"h200-sxm",
         [] {
             DeviceSpec d;
             d.name = "H200-SXM-141GB";
             d.cores = 132; // SMs: the H100 SXM5's GH100 configuration
             d.peak_flops = {{"bf16", 989e12}, {"fp16", 989e12}, {"fp8", 1979e12}, {"tf32", 494e12},
                             {"fp32", 67e12},  {"fp64", 67e12}};
             d.memory_bytes = int64_t(141e9);
             d.memory_bandwidth = 4800 * GBps;
             d.nvlink_bandwidth = kNvlinkPerLink;
             d.pcie_bandwidth = kPcieGen5;
             d.source = "NVIDIA H200 Tensor Core GPU datasheet (SXM, dense tensor FLOP/s, 141 GB, 4.8 TB/s)";
             return d;
         }},
        {"v100-sxm2-16gb",
         [] {
             DeviceSpec d;
             d.name = "V100-SXM2-16GB";
             d.cores = 80; // SMs (NVIDIA Tesla V100 GPU architecture whitepaper, Table 1)
             d.peak_flops = {{"fp16", 125e12}, {"fp32", 15.7e12}, {"fp64", 7.8e12}};
             d.memory_bytes = int64_t(16 * GiB);
             d.memory_bandwidth = 900 * GBps;
             d.nvlink_bandwidth = kNvlinkPerLink;
             d.pcie_bandwidth = kPcieGen3;
             d.source = "NVIDIA Tesla V100 datasheet (SXM2; fp16 is tensor-core peak)";
             return d;
         }},
        {"v100-sxm2-32gb",
         [] {
             DeviceSpec d;
             d.name = "V100-SXM2-32GB";
             d.cores = 80;
             d.peak_flops = {{"fp16", 125e12}, {"fp32", 15.7e12}, {"fp64", 7.8e12}};
             d.memory_bytes = int64_t(32 * GiB);
             d.memory_bandwidth = 900 * GBps;
             d.nvlink_bandwidth = kNvlinkPerLink;
             d.pcie_bandwidth = kPcieGen3;
             d.source = "NVIDIA Tesla V100 datasheet (SXM2; fp16 is tensor-core peak)";
             return d;
         }},
        {"t4",
         [] {
             DeviceSpec d;
             d.name = "T4";
             d.cores = 40; // SMs (NVIDIA Turing GPU architecture whitepaper, Appendix A)
             d.peak_flops = {{"fp16", 65e12}, {"fp32", 8.1e12}};
             d.memory_bytes = int64_t(16 * GiB);
             d.memory_bandwidth = 320 * GBps;
             d.pcie_bandwidth = kPcieGen3;
             d.source = "NVIDIA T4 datasheet (fp16 is mixed-precision tensor-core peak)";
             return d;
         }},
    };
    return presets;
}

LinkSpec nvswitch(int links)
{
    return LinkSpec{LinkKind::NVSwitch, links * kNvlinkPerLink, kNvlinkLatency, links,
                    std::to_string(links) + " NVLinks x 25 GB/s per direction through NVSwitch; " + kLatencySource};
}
LinkSpec pcie(double bw, const char* gen)
{
    return LinkSpec{LinkKind::PCIe, bw, kPcieLatency, 0, std::string("PCIe ") + gen + " x16 per direction; " + kLatencySource};
}
NicSpec nics(int count, LinkKind kind, double perNic, const std::string& what)
{
    return NicSpec{count, LinkSpec{kind, perNic, kNetLatency, 0, what + "; " + kLatencySource}};
}

Node makeNode(const std::string& device, int gpus)
{
    Node n;
    n.devices.assign(size_t(gpus), devicePreset(device).value());
    return n;
}

struct ClusterPreset
{
    const char* id;
    const char* description;
    std::function<Node()> node;
};

const std::vector<ClusterPreset>& clusterPresets()
{
    static const std::vector<ClusterPreset> presets{
        {"dgx-a100-80gb", "NVIDIA DGX A100: 8 x A100 80GB on NVSwitch, 8 x 200 Gb/s HDR InfiniBand",
         [] {
             Node n = makeNode("a100-sxm4-80gb", 8);
             n.intra = nvswitch(12);
             n.nic = nics(8, LinkKind::InfiniBand, 200 * Gbps, "8 x HDR 200 Gb/s (DGX A100 user guide)");
             return n;
         }},
        {"dgx-h100", "NVIDIA DGX H100: 8 x H100 SXM5 on NVSwitch, 8 x 400 Gb/s NDR InfiniBand",
         [] {
             Node n = makeNode("h100-sxm5", 8);
             n.intra = nvswitch(18);
             n.nic = nics(8, LinkKind::InfiniBand, 400 * Gbps, "8 x NDR 400 Gb/s ConnectX-7 (DGX H100 user guide)");
             return n;
         }},
        {"p3.16xlarge", "AWS p3.16xlarge: 8 x V100 16GB, NVLink hybrid cube-mesh, 25 Gb/s network",
         [] {
             Node n = makeNode("v100-sxm2-16gb", 8);
             // Hybrid cube-mesh (DGX-1 topology): each GPU has 6 NVLinks to 4 peers,
             // doubled to one peer in each quad half; pairs without a link go over PCIe.
             n.intra = pcie(kPcieGen3, "Gen3 through the CPUs (pairs without NVLink)");
             n.intra.kind = LinkKind::CrossCPU;
             const int pairs[][3] = {{0, 1, 1}, {0, 2, 1}, {0, 3, 2}, {0, 4, 2}, {1, 2, 2}, {1, 3, 1},
                                     {1, 5, 2}, {2, 3, 2}, {2, 6, 1}, {3, 7, 1}, {4, 5, 1}, {4, 6, 1},
                                     {4, 7, 2}, {5, 6, 2}, {5, 7, 1}, {6, 7, 2}};
             for (const auto& p : pairs) {
                 n.links.push_back(PairLink{p[0], p[1],
                                            LinkSpec{LinkKind::NVLink, p[2] * kNvlinkPerLink, kNvlinkLatency, p[2],
                                                     "DGX-1 hybrid cube-mesh (NVIDIA DGX-1 V100 whitepaper); "
                                                     "25 GB/s per NVLink 2 per direction"}});
             }
             n.nic = nics(1, LinkKind::Ethernet, 25 * Gbps, "25 Gb/s (AWS EC2 instance types)");
             return n;
         }},
        {"p4d.24xlarge", "AWS p4d.24xlarge: 8 x A100 40GB on NVSwitch, 4 x 100 Gb/s EFA",
         [] {
             Node n = makeNode("a100-sxm4-40gb", 8);
             n.intra = nvswitch(12);
             n.nic = nics(4, LinkKind::EFA, 100 * Gbps, "400 Gb/s EFA as 4 x 100 Gb/s (AWS EC2 instance types)");
             return n;
         }},
        {"p5.48xlarge", "AWS p5.48xlarge: 8 x H100 on NVSwitch, 32 x 100 Gb/s EFA",
         [] {
             Node n = makeNode("h100-sxm5", 8);
             n.intra = nvswitch(18);
             n.nic = nics(32, LinkKind::EFA, 100 * Gbps, "3200 Gb/s EFA as 32 x 100 Gb/s (AWS EC2 instance types)");
             return n;
         }},
        {"g4dn.12xlarge", "AWS g4dn.12xlarge: 4 x T4 on PCIe Gen3, 50 Gb/s network",
         [] {
             Node n = makeNode("t4", 4);
             n.intra = pcie(kPcieGen3, "Gen3");
             n.nic = nics(1, LinkKind::Ethernet, 50 * Gbps, "50 Gb/s (AWS EC2 instance types)");
             return n;
         }},
    };
    return presets;
}

} // namespace

std::vector<std::string> devicePresetNames()
{
    std::vector<std::string> names;
    for (const auto& p : devicePresets())
        names.emplace_back(p.id);
    return names;
}

Result<DeviceSpec> devicePreset(const std::string& name)
{
    for (const auto& p : devicePresets())
        if (name == p.id)
            return p.make();
    std::string known;
    for (const auto& p : devicePresets())
        known += (known.empty() ? "" : ", ") + std::string(p.id);
    return Error{"<device preset>", name, "unknown device preset (known: " + known + ")"};
}

std::vector<std::string> clusterPresetNames()
{
    std::vector<std::string> names;
    for (const auto& p : clusterPresets())
        names.emplace_back(p.id);
    return names;
}

Result<Cluster> clusterPreset(const std::string& spec)
{
    std::string name = spec;
    int nodes = 1;
    if (const size_t colon = spec.rfind(':'); colon != std::string::npos) {
        name = spec.substr(0, colon);
        const std::string count = spec.substr(colon + 1);
        const auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), nodes);
        if (ec != std::errc() || ptr != count.data() + count.size() || nodes < 1 || nodes > 100000)
            return Error{"<cluster preset>", spec, "the node count after ':' must be an integer from 1 to 100000"};
    }
    for (const auto& p : clusterPresets()) {
        if (name != p.id)
            continue;
        Cluster c;
        c.name = nodes == 1 ? name : name + " x " + std::to_string(nodes);
        c.source = std::string("preset ") + p.id + ": " + p.description;
        const Node proto = p.node();
        for (int i = 0; i < nodes; ++i) {
            Node n = proto;
            n.name = name + "-" + std::to_string(i);
            c.nodes.push_back(std::move(n));
        }
        return c;
    }
    std::string known;
    for (const auto& p : clusterPresets())
        known += (known.empty() ? "" : ", ") + std::string(p.id);
    return Error{"<cluster preset>", spec, "unknown cluster preset (known: " + known + ")"};
}

std::string devicePresetForGpuName(const std::string& name)
{
    struct Match
    {
        const char* needle;
        const char* preset;
    };
    static const Match kMatches[] = {
        {"A100-SXM4-80GB", "a100-sxm4-80gb"}, {"A100-SXM4-40GB", "a100-sxm4-40gb"},
        {"H100 80GB HBM3", "h100-sxm5"},      {"H100-SXM", "h100-sxm5"},
        {"H200", "h200-sxm"},                 {"V100-SXM2-16GB", "v100-sxm2-16gb"},
        {"V100-SXM2-32GB", "v100-sxm2-32gb"}, {"Tesla T4", "t4"},
    };
    for (const auto& m : kMatches)
        if (name.find(m.needle) != std::string::npos)
            return m.preset;
    return {};
}

} // namespace partita
