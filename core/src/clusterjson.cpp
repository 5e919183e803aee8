// Native cluster JSON (docs/formats.md).
#include "jsonread.h"
#include "partita/core/clusterio.h"
#include "partita/core/units.h"

namespace partita {

using detail::json;
using detail::sub;

namespace {

constexpr int kFormatVersion = 1;

double quantity(const json& j, const std::string& path, Quantity kind)
{
    if (j.is_string()) {
        std::string why;
        auto v = parseQuantity(j.get<std::string>(), kind, &why);
        if (!v)
            throw detail::FieldError(path, why);
        return *v;
    }
    return detail::asNumber(j, path, 0.0, 1e30);
}

double optQuantity(const json& obj, const char* key, const std::string& path, Quantity kind)
{
    const json* j = detail::optField(obj, key);
    return j ? quantity(*j, sub(path, key), kind) : 0.0;
}

LinkSpec readLink(const json& j, const std::string& path)
{
    detail::asObject(j, path);
    LinkSpec l;
    const std::string kind = detail::getString(j, "kind", path);
    if (!parseLinkKind(kind, l.kind))
        throw detail::FieldError(sub(path, "kind"), "unknown link kind '" + kind +
                                                        "' (nvlink, nvswitch, pcie, cross-cpu, infiniband, "
                                                        "ethernet, efa, shared-memory)");
    l.bandwidth = quantity(detail::field(j, "bandwidth", path), sub(path, "bandwidth"), Quantity::Bandwidth);
    l.latency = optQuantity(j, "latency", path, Quantity::Seconds);
    l.lanes = int(detail::getIntOr(j, "lanes", path, 0, 1024, 0));
    l.source = detail::getStringOr(j, "source", path, {});
    return l;
}

json writeLink(const LinkSpec& l)
{
    json j{{"kind", std::string(linkKindName(l.kind))}, {"bandwidth", l.bandwidth}, {"latency", l.latency}};
    if (l.lanes)
        j["lanes"] = l.lanes;
    if (!l.source.empty())
        j["source"] = l.source;
    return j;
}

DeviceSpec readDevice(const json& j, const std::string& path)
{
    detail::asObject(j, path);
    DeviceSpec d;
    if (const json* p = detail::optField(j, "preset")) {
        const std::string name = detail::asString(*p, sub(path, "preset"));
        auto preset = devicePreset(name);
        if (!preset)
            throw detail::FieldError(sub(path, "preset"), preset.error().message);
        d = *preset;
    } else {
        d.name = detail::getString(j, "name", path);
    }
    if (const json* n = detail::optField(j, "name"))
        d.name = detail::asString(*n, sub(path, "name"));
    d.kind = detail::getStringOr(j, "kind", path, d.kind);
    if (d.kind != "gpu" && d.kind != "cpu")
        throw detail::FieldError(sub(path, "kind"),
                                 "device kind must be \"gpu\" or \"cpu\", not '" + d.kind + "'");
    if (const json* pf = detail::optField(j, "peak_flops")) {
        const std::string pp = sub(path, "peak_flops");
        detail::asObject(*pf, pp);
        for (const auto& [dt, v] : pf->items()) {
            const double f = quantity(v, sub(pp, dt.c_str()), Quantity::Flops);
            if (!(f > 0))
                throw detail::FieldError(sub(pp, dt.c_str()), "peak FLOP/s must be positive");
            d.peak_flops[dt] = f;
        }
    }
    d.cores = int(detail::getIntOr(j, "cores", path, 0, 1 << 24, d.cores));
    if (const json* m = detail::optField(j, "memory"))
        d.memory_bytes = int64_t(quantity(*m, sub(path, "memory"), Quantity::Bytes));
    if (const json* m = detail::optField(j, "memory_bandwidth"))
        d.memory_bandwidth = quantity(*m, sub(path, "memory_bandwidth"), Quantity::Bandwidth);
    if (const json* m = detail::optField(j, "nvlink_bandwidth"))
        d.nvlink_bandwidth = quantity(*m, sub(path, "nvlink_bandwidth"), Quantity::Bandwidth);
    if (const json* m = detail::optField(j, "pcie_bandwidth"))
        d.pcie_bandwidth = quantity(*m, sub(path, "pcie_bandwidth"), Quantity::Bandwidth);
    d.source = detail::getStringOr(j, "source", path, d.source);
    return d;
}

json writeDevice(const DeviceSpec& d, int count)
{
    json j{{"name", d.name}, {"kind", d.kind}};
    json pf = json::object();
    for (const auto& [dt, f] : d.peak_flops)
        pf[dt] = f;
    j["peak_flops"] = std::move(pf);
    if (d.cores)
        j["cores"] = d.cores;
    j["memory"] = d.memory_bytes;
    j["memory_bandwidth"] = d.memory_bandwidth;
    if (d.nvlink_bandwidth > 0)
        j["nvlink_bandwidth"] = d.nvlink_bandwidth;
    if (d.pcie_bandwidth > 0)
        j["pcie_bandwidth"] = d.pcie_bandwidth;
    if (!d.source.empty())
        j["source"] = d.source;
    if (count != 1)
        j["count"] = count;
    return j;
}

} // namespace

std::string clusterToJson(const Cluster& c)
{
    json j;
    j["partita_cluster"] = kFormatVersion;
    j["name"] = c.name;
    if (!c.source.empty())
        j["source"] = c.source;
    json nodes = json::array();
    for (const Node& n : c.nodes) {
        json nj;
        nj["name"] = n.name;
        json devs = json::array();
        for (size_t i = 0; i < n.devices.size();) {
            size_t k = i + 1;
            while (k < n.devices.size() && n.devices[k] == n.devices[i])
                ++k;
            devs.push_back(writeDevice(n.devices[i], int(k - i)));
            i = k;
        }
        nj["devices"] = std::move(devs);
        if (n.devices.size() > 1 || n.intra.bandwidth > 0)
            nj["intra"] = writeLink(n.intra);
        if (!n.links.empty()) {
            json links = json::array();
            for (const auto& l : n.links) {
                json lj = writeLink(l.link);
                lj["a"] = l.a;
                lj["b"] = l.b;
                links.push_back(std::move(lj));
            }
            nj["links"] = std::move(links);
        }
        if (n.nic.count > 0) {
            json nic = writeLink(n.nic.link);
            nic["count"] = n.nic.count;
            nj["nic"] = std::move(nic);
        }
        nodes.push_back(std::move(nj));
    }
    j["nodes"] = std::move(nodes);
    return j.dump(1) + "\n";
}

Result<Cluster> clusterFromJson(const std::string& text, const std::string& file)
{
    return detail::readDocument<Cluster>(
        text, file, "partita_cluster", kFormatVersion, [&](const json& j) -> Result<Cluster> {
            Cluster c;
            c.name = detail::getStringOr(j, "name", "", {});
            c.source = detail::getStringOr(j, "source", "", file);
            const json& nodes = detail::asArray(detail::field(j, "nodes", ""), "/nodes");
            if (nodes.empty())
                throw detail::FieldError("/nodes", "the cluster has no nodes");
            constexpr int64_t kMaxNodes = 100000, kMaxDevicesPerNode = 4096;
            for (size_t i = 0; i < nodes.size(); ++i) {
                const std::string np = sub("/nodes", i);
                const json& nj = nodes[i];
                detail::asObject(nj, np);
                Node n;
                n.name = detail::getStringOr(nj, "name", np, "node" + std::to_string(i));
                const json& devs = detail::asArray(detail::field(nj, "devices", np), sub(np, "devices"));
                for (size_t d = 0; d < devs.size(); ++d) {
                    const std::string dp = sub(sub(np, "devices"), d);
                    const DeviceSpec dev = readDevice(devs[d], dp);
                    const int64_t count = detail::getIntOr(devs[d], "count", dp, 1, kMaxDevicesPerNode, 1);
                    if (int64_t(n.devices.size()) + count > kMaxDevicesPerNode)
                        throw detail::FieldError(dp, "more than 4096 devices in one node");
                    n.devices.insert(n.devices.end(), size_t(count), dev);
                }
                if (const json* intra = detail::optField(nj, "intra"))
                    n.intra = readLink(*intra, sub(np, "intra"));
                if (const json* links = detail::optField(nj, "links")) {
                    const std::string lp = sub(np, "links");
                    detail::asArray(*links, lp);
                    for (size_t k = 0; k < links->size(); ++k) {
                        const std::string p = sub(lp, k);
                        PairLink pl;
                        pl.link = readLink((*links)[k], p);
                        pl.a = int(detail::getInt((*links)[k], "a", p, 0, kMaxDevicesPerNode - 1));
                        pl.b = int(detail::getInt((*links)[k], "b", p, 0, kMaxDevicesPerNode - 1));
                        n.links.push_back(std::move(pl));
                    }
                }
                if (const json* nic = detail::optField(nj, "nic")) {
                    const std::string p = sub(np, "nic");
                    n.nic.link = readLink(*nic, p);
                    n.nic.count = int(detail::getIntOr(*nic, "count", p, 0, 1024, 1));
                }
                const int64_t repeat = detail::getIntOr(nj, "count", np, 1, kMaxNodes, 1);
                if (int64_t(c.nodes.size()) + repeat > kMaxNodes)
                    throw detail::FieldError(np, "more than 100000 nodes");
                if (repeat == 1) {
                    c.nodes.push_back(std::move(n));
                } else {
                    for (int64_t r = 0; r < repeat; ++r) {
                        Node copy = n;
                        copy.name = n.name + "-" + std::to_string(r);
                        c.nodes.push_back(std::move(copy));
                    }
                }
            }
            if (std::string problem = validateCluster(c); !problem.empty())
                return Error{file, "/nodes", problem};
            return c;
        });
}

} // namespace partita
