#include "fileutil.h"
#include "partita/core/clusterio.h"

#include <regex>
#include <sys/stat.h>

namespace partita {

namespace {
std::string stem(const std::string& path)
{
    std::string s = path.substr(path.find_last_of('/') + 1);
    if (const size_t dot = s.rfind('.'); dot != std::string::npos && dot > 0)
        s.erase(dot);
    return s;
}
} // namespace

Result<Cluster> loadCluster(const std::string& spec, const ClusterLoadOptions& options)
{
    struct stat st{};
    if (::stat(spec.c_str(), &st) != 0) {
        if (spec.find('/') != std::string::npos || spec.ends_with(".json") || spec.ends_with(".txt"))
            return Error{spec, {}, "no such file (and not a cluster preset name)"};
        return clusterPreset(spec);
    }
    auto bytes = detail::readFile(spec);
    if (!bytes)
        return bytes.error();
    const std::string& text = *bytes;
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return Error{spec, {}, "the file is empty"};
    if (text[first] == '{' || text[first] == '[' || spec.ends_with(".json"))
        return clusterFromJson(text, spec);

    static const std::regex topoHeader(R"((^|\n)[ \t]*GPU0[ \t]+(GPU1|NIC0|mlx|CPU))");
    if (std::regex_search(text, topoHeader)) {
        if (options.device.empty()) {
            std::string known;
            for (const auto& n : devicePresetNames())
                known += (known.empty() ? "" : ", ") + n;
            return Error{spec, {}, "an nvidia-smi topo -m file does not name the GPU model: pass --device PRESET (" +
                                       known + ")"};
        }
        auto dev = devicePreset(options.device);
        if (!dev)
            return dev.error();
        auto node = nodeFromNvidiaSmiTopo(text, *dev, spec);
        if (!node)
            return node.error();
        Cluster c;
        c.name = stem(spec);
        c.source = spec + " (nvidia-smi topo -m, device " + options.device + ")";
        node->name = c.name;
        c.nodes.push_back(std::move(*node));
        if (std::string problem = validateCluster(c); !problem.empty())
            return Error{spec, {}, problem};
        return c;
    }

    auto hosts = parseHostfile(text, spec);
    if (!hosts)
        return hosts.error();
    if (options.nodeTemplate.empty())
        return Error{spec, {}, "a hostfile names hosts and slots, not their hardware: pass --node PRESET to say "
                               "what each host is (e.g. dgx-h100)"};
    auto preset = clusterPreset(options.nodeTemplate);
    if (!preset)
        return preset.error();
    Cluster c = clusterFromHosts(*hosts, preset->nodes.front(), stem(spec));
    c.source = spec + " (hostfile, nodes like " + options.nodeTemplate + ")";
    if (std::string problem = validateCluster(c); !problem.empty())
        return Error{spec, {}, problem};
    return c;
}

} // namespace partita
