// OpenMPI and DeepSpeed hostfiles: "host [slots=N] [max_slots=M]" per line, '#' comments.
#include "partita/core/clusterio.h"

#include <cctype>
#include <charconv>
#include <sstream>

namespace partita {

Result<std::vector<HostEntry>> parseHostfile(const std::string& text, const std::string& file)
{
    std::vector<HostEntry> hosts;
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (const size_t hash = line.find('#'); hash != std::string::npos)
            line.erase(hash);
        std::istringstream ls(line);
        std::string host;
        if (!(ls >> host))
            continue;
        const std::string where = "line " + std::to_string(lineNo);
        for (char ch : host)
            if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_' || ch == ':' ||
                  ch == '[' || ch == ']'))
                return Error{file, where, "'" + host + "' is not a host name"};
        int slots = 0;
        bool sawSlots = false;
        for (std::string tok; ls >> tok;) {
            const size_t eq = tok.find('=');
            if (eq == std::string::npos)
                return Error{file, where, "expected key=value after the host name, found '" + tok + "'"};
            const std::string key = tok.substr(0, eq), value = tok.substr(eq + 1);
            int v = 0;
            const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
            if (ec != std::errc() || ptr != value.data() + value.size() || v < 1 || v > 65536)
                return Error{file, where, "'" + key + "' needs an integer from 1 to 65536, found '" + value + "'"};
            if (key == "slots") {
                slots = v;
                sawSlots = true;
            } else if (key == "max_slots" || key == "max-slots") {
                if (sawSlots && v < slots)
                    return Error{file, where, "max_slots (" + value + ") is less than slots (" + std::to_string(slots) + ")"};
            } else {
                return Error{file, where, "unknown key '" + key + "' (expected slots or max_slots)"};
            }
        }
        if (!sawSlots)
            slots = 1;
        // A host listed twice adds its slots, as OpenMPI does.
        bool merged = false;
        for (auto& h : hosts)
            if (h.host == host) {
                h.slot_count += slots;
                merged = true;
            }
        if (!merged)
            hosts.push_back(HostEntry{host, slots});
    }
    if (hosts.empty())
        return Error{file, {}, "no hosts: the hostfile is empty or has only comments"};
    return hosts;
}

Cluster clusterFromHosts(const std::vector<HostEntry>& hosts, const Node& nodeTemplate, const std::string& name)
{
    Cluster c;
    c.name = name;
    for (const auto& h : hosts) {
        Node n = nodeTemplate;
        n.name = h.host;
        const DeviceSpec dev = nodeTemplate.devices.empty() ? DeviceSpec{} : nodeTemplate.devices.front();
        n.devices.assign(size_t(h.slot_count), dev);
        std::erase_if(n.links, [&](const PairLink& l) { return l.a >= h.slot_count || l.b >= h.slot_count; });
        c.nodes.push_back(std::move(n));
    }
    return c;
}

} // namespace partita
