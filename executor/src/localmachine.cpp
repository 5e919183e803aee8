#include "partita/executor/localmachine.h"

#include "partita/core/clusterio.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <unistd.h>
#include <vector>

#include "partita/executor/cudaplugin.h"

namespace partita {

namespace {

std::string cpuModelName()
{
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) {
                std::string name = line.substr(colon + 1);
                name.erase(0, name.find_first_not_of(" \t"));
                return name;
            }
        }
    }
    return "cpu";
}


} // namespace

bool cudaBackendAvailable(std::string* why)
{
    auto p = cudaPlugin();
    if (!p && why)
        *why = p.error().str();
    return bool(p);
}

LocalMachine detectLocalMachine()
{
    LocalMachine lm;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0)
        std::snprintf(host, sizeof host, "localhost");

    DeviceSpec& cpu = lm.cpu;
    cpu.name = cpuModelName();
    cpu.kind = "cpu";
    cpu.cores = int(::sysconf(_SC_NPROCESSORS_ONLN));
    cpu.memory_bytes = int64_t(::sysconf(_SC_PHYS_PAGES)) * int64_t(::sysconf(_SC_PAGESIZE));
    cpu.source = "detected: /proc/cpuinfo, sysconf";
    lm.notes.push_back("CPU peak FLOP/s and memory bandwidth are not detected (run a benchmark to measure them)");

    Node node;
    node.name = host;
    if (auto p = cudaPlugin(); p)
        (*p)->detect_gpus(node, lm.notes);
    else
        lm.notes.push_back("GPUs are not detected: " + p.error().str());
    if (node.devices.empty())
        node.devices.push_back(cpu);
    lm.cluster.name = std::string("local (") + host + ")";
    lm.cluster.source = "detected on this machine";
    lm.cluster.nodes.push_back(std::move(node));
    return lm;
}

std::string localCpuClusterName(int ranks)
{
    return "local CPU (" + std::to_string(ranks) + (ranks == 1 ? " rank)" : " ranks)");
}

std::string alignToCalibration(Cluster& c, const Calibration& cal)
{
    auto figure = [&](const char* key) {
        auto it = cal.measured.find(key);
        return it == cal.measured.end() ? 0.0 : std::atof(it->second.c_str());
    };
    const double peak = figure("reference_peak_flops"), bw = figure("reference_memory_bandwidth"),
                 link = figure("reference_link_bandwidth");
    if (peak <= 0 || bw <= 0 || c.nodes.size() != 1 || c.nodes.front().devices.empty() ||
        c.nodes.front().devices.front().kind != "cpu")
        return {};
    Node& node = c.nodes.front();
    const int ranks = int(node.devices.size());
    const double share = std::min(1.0, double(std::max(1, detectLocalMachine().cpu.cores)) / double(ranks));
    const double was = node.devices.front().peak_flops.count("fp32") ? node.devices.front().peak_flops.at("fp32") : 0;
    char source[300];
    std::snprintf(source, sizeof source,
                  "the local calibration's reference (partita-cli calibrate --local): one core does %.1f GFLOP/s "
                  "(OpenBLAS sgemm) and moves %.1f GB/s; %d ranks on these cores get %.2f of that each",
                  peak / 1e9, bw / 1e9, ranks, share);
    for (DeviceSpec& d : node.devices) {
        for (auto& [dtype, f] : d.peak_flops)
            f = peak * share;
        d.memory_bandwidth = bw * share;
        d.source = source;
    }
    if (link > 0) {
        node.intra.bandwidth = link * share;
        std::snprintf(source, sizeof source,
                      "the local calibration's reference: shared memory at %.1f GB/s for one rank per core, x %.2f",
                      link / 1e9, share);
        node.intra.source = source;
    }
    char said[200];
    std::snprintf(said, sizeof said, "the calibration's reference figures: %.1f GFLOP/s per rank (measured for this "
                                     "project: %.1f), %.1f GB/s", peak * share / 1e9, was / 1e9, bw * share / 1e9);
    return said;
}

} // namespace partita
