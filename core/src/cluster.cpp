#include "partita/core/cluster.h"

#include <array>
#include <utility>

namespace partita {

namespace {
constexpr std::array<std::pair<LinkKind, std::string_view>, 8> kLinkKinds{{
    {LinkKind::NVLink, "nvlink"},
    {LinkKind::NVSwitch, "nvswitch"},
    {LinkKind::PCIe, "pcie"},
    {LinkKind::CrossCPU, "cross-cpu"},
    {LinkKind::InfiniBand, "infiniband"},
    {LinkKind::Ethernet, "ethernet"},
    {LinkKind::EFA, "efa"},
    {LinkKind::SharedMemory, "shared-memory"},
}};
} // namespace

std::string_view linkKindName(LinkKind k)
{
    for (const auto& [kind, name] : kLinkKinds)
        if (kind == k)
            return name;
    return "?";
}

bool parseLinkKind(std::string_view s, LinkKind& out)
{
    for (const auto& [kind, name] : kLinkKinds)
        if (name == s) {
            out = kind;
            return true;
        }
    return false;
}

const LinkSpec& Node::linkBetween(int a, int b) const
{
    for (const auto& l : links)
        if ((l.a == a && l.b == b) || (l.a == b && l.b == a))
            return l.link;
    return intra;
}

int Cluster::deviceCount() const
{
    int n = 0;
    for (const auto& node : nodes)
        n += int(node.devices.size());
    return n;
}

std::string validateCluster(const Cluster& c)
{
    if (c.nodes.empty())
        return "the cluster has no nodes";
    for (size_t i = 0; i < c.nodes.size(); ++i) {
        const Node& n = c.nodes[i];
        const std::string at = "node " + std::to_string(i) + " '" + n.name + "'";
        if (n.devices.empty())
            return at + ": no devices";
        for (size_t d = 0; d < n.devices.size(); ++d) {
            const DeviceSpec& dev = n.devices[d];
            if (dev.memory_bytes < 0 || dev.memory_bandwidth < 0)
                return at + ", device " + std::to_string(d) + ": negative memory figure";
            for (const auto& [dt, f] : dev.peak_flops)
                if (!(f > 0))
                    return at + ", device " + std::to_string(d) + ": peak_flops for " + dt + " must be positive";
        }
        if (n.devices.size() > 1 && !(n.intra.bandwidth > 0) && n.links.empty())
            return at + ": several devices but no intra-node link bandwidth";
        for (const auto& l : n.links) {
            if (l.a < 0 || l.b < 0 || l.a >= int(n.devices.size()) || l.b >= int(n.devices.size()))
                return at + ": link " + std::to_string(l.a) + "-" + std::to_string(l.b) +
                       " names a device the node does not have (" + std::to_string(n.devices.size()) + " devices)";
            if (l.a == l.b)
                return at + ": link from device " + std::to_string(l.a) + " to itself";
            if (!(l.link.bandwidth > 0))
                return at + ": link " + std::to_string(l.a) + "-" + std::to_string(l.b) + " has no bandwidth";
        }
        if (c.nodes.size() > 1 && (n.nic.count <= 0 || !(n.nic.link.bandwidth > 0)))
            return at + ": a multi-node cluster needs NICs with a bandwidth on every node";
        if (n.nic.link.latency < 0 || n.intra.latency < 0)
            return at + ": negative latency";
    }
    return {};
}

std::string unlikeNodes(const Cluster& c)
{
    if (c.nodes.size() < 2)
        return {};
    const Node& first = c.nodes.front();
    auto label = [](const Node& n, size_t i) { return n.name.empty() ? "node " + std::to_string(i) : n.name; };
    std::string out;
    int shown = 0, unlike = 0;
    for (size_t i = 1; i < c.nodes.size(); ++i) {
        const Node& n = c.nodes[i];
        std::string how;
        if (n.devices.size() != first.devices.size())
            how = std::to_string(n.devices.size()) + " devices, " + label(first, 0) + " " +
                  std::to_string(first.devices.size());
        else if (n.devices != first.devices)
            how = "other devices (" + (n.devices.empty() ? std::string("none") : n.devices.front().name) + ")";
        else if (!(n.intra == first.intra) || n.links != first.links)
            how = "other links between its devices";
        else if (!(n.nic == first.nic))
            how = "another network interface";
        if (how.empty())
            continue;
        ++unlike;
        if (shown++ < 3)
            out += (out.empty() ? "" : "; ") + label(n, i) + ": " + how;
    }
    if (unlike == 0)
        return {};
    if (unlike > shown)
        out += "; and " + std::to_string(unlike - shown) + " more";
    return "nodes differ from " + label(first, 0) + " (" + out +
           "): Partita models every node as the first one; give it nodes alike";
}

} // namespace partita
