#include "inspect.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/units.h"
#include "partita/executor/localmachine.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <sys/stat.h>

namespace partita::cli {

using nlohmann::json;

namespace {

enum class TargetKind
{
    Model,
    Cluster,
    Local,
};

TargetKind classify(const InspectOptions& o)
{
    if (o.as == "model")
        return TargetKind::Model;
    if (o.as == "cluster")
        return TargetKind::Cluster;
    if (o.target == "local")
        return TargetKind::Local;
    struct stat st{};
    if (::stat(o.target.c_str(), &st) != 0 || S_ISDIR(st.st_mode))
        return o.target.ends_with(".onnx") ? TargetKind::Model : TargetKind::Cluster;
    if (o.target.ends_with(".onnx"))
        return TargetKind::Model;
    std::ifstream in(o.target, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return TargetKind::Model; // both importers refuse an empty file the same way
    if (text[first] == '{' || text[first] == '[')
        return text.find("\"partita_cluster\"") != std::string::npos ? TargetKind::Cluster : TargetKind::Model;
    // Binary bytes: an ONNX protobuf; printable text: nvidia-smi topo or a hostfile.
    const bool binary = std::any_of(text.begin(), text.begin() + long(std::min<size_t>(text.size(), 4096)),
                                    [](char c) { return (c >= 0 && c < 9) || (c > 13 && c < 32); });
    return binary ? TargetKind::Model : TargetKind::Cluster;
}

class Table
{
public:
    explicit Table(std::vector<std::string> header) { m_rows.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { m_rows.push_back(std::move(row)); }
    void print(std::ostream& out, const std::vector<bool>& rightAlign) const
    {
        std::vector<size_t> width(m_rows.front().size(), 0);
        for (const auto& r : m_rows)
            for (size_t i = 0; i < r.size(); ++i)
                width[i] = std::max(width[i], r[i].size());
        for (size_t ri = 0; ri < m_rows.size(); ++ri) {
            const auto& r = m_rows[ri];
            for (size_t i = 0; i < r.size(); ++i) {
                const bool right = i < rightAlign.size() && rightAlign[i];
                const bool last = i + 1 == r.size();
                out << (right ? std::right : std::left) << std::setw(last && !right ? 0 : int(width[i])) << r[i]
                    << (last ? "" : "  ");
            }
            out << "\n";
            if (ri == 0) {
                size_t total = 0;
                for (size_t w : width)
                    total += w + 2;
                out << std::string(total - 2, '-') << "\n";
            }
        }
    }

private:
    std::vector<std::vector<std::string>> m_rows;
};

constexpr int kActBytes = 2; // 16-bit activations (mixed-precision training)

// The model's nonzero dimensions as a JSON object.
json modelDimsJson(const ModelDims& d)
{
    json dims = json::object();
    for (const auto& [k, v] : std::initializer_list<std::pair<const char*, int64_t>>{
             {"hidden", d.hidden}, {"layers", d.layers}, {"heads", d.heads}, {"kv_heads", d.kv_heads},
             {"ffn", d.ffn}, {"vocab", d.vocab}, {"experts", d.experts}, {"top_k", d.top_k}})
        if (v)
            dims[k] = v;
    return dims;
}

// The model's layers with their costs at (batch, seq) as a JSON array.
json modelLayersJson(const Model& m, int64_t batch, int64_t seq)
{
    json layers = json::array();
    for (const auto& l : m.layers) {
        const CostAt c = layerCostAt(l, batch, seq, kActBytes);
        json lj{{"name", l.name},
                {"kind", std::string(layerKindName(l.kind))},
                {"parameters", l.parameterCount()},
                {"forward_flops", c.forward_flops},
                {"backward_flops", c.backward_flops},
                {"activation_bytes", c.activation_bytes},
                {"output_bytes", c.output_bytes},
                {"inputs", l.inputs}};
        if (!l.block.empty())
            lj["block"] = l.block;
        if (l.sparse_grad)
            lj["sparse_grad"] = true;
        if (!l.tied_to.empty())
            lj["tied_to"] = l.tied_to;
        if (!l.source_nodes.empty())
            lj["source_nodes"] = l.source_nodes.size();
        layers.push_back(std::move(lj));
    }
    return layers;
}

// Prints the model, its totals and its layers as JSON (--json).
void printModelJson(const Model& m, const std::string& source, const InspectOptions& o, int64_t seq,
                    const CostAt& total, double tokens, int64_t params)
{
    json j;
    j["kind"] = "model";
    j["name"] = m.name;
    j["family"] = m.family;
    j["source"] = source;
    j["parameters"] = params;
    j["param_dtype"] = std::string(dtypeName(m.param_dtype));
    j["batch"] = o.batch;
    j["seq_len"] = seq;
    j["activation_dtype_bytes"] = kActBytes;
    j["flops_per_token"] = total.forward_flops / tokens;
    j["forward_flops"] = total.forward_flops;
    j["backward_flops"] = total.backward_flops;
    j["activation_bytes"] = total.activation_bytes;
    j["dims"] = modelDimsJson(m.dims);
    j["layers"] = modelLayersJson(m, o.batch, seq);
    j["notes"] = m.notes;
    std::cout << j.dump(2) << "\n";
}

// Prints the model's name, source, parameters, shape and total costs.
void printModelSummary(const Model& m, const std::string& source, const InspectOptions& o, int64_t seq,
                       const CostAt& total, double tokens, int64_t params)
{
    std::cout << "Model        " << m.name << " (" << m.family << ")\n"
              << "Source       " << source << "\n"
              << "Parameters   " << withThousands(params) << " (" << formatCount(double(params)) << "), "
              << dtypeName(m.param_dtype) << "\n"
              << "Layers       " << m.layers.size();
    if (m.dims.layers)
        std::cout << " (" << m.dims.layers << " blocks, hidden " << m.dims.hidden << ", " << m.dims.heads << " heads"
                  << (m.dims.kv_heads && m.dims.kv_heads != m.dims.heads ? ", " + std::to_string(m.dims.kv_heads) + " kv heads" : "")
                  << (m.dims.experts ? ", " + std::to_string(m.dims.experts) + " experts top-" + std::to_string(m.dims.top_k) : "")
                  << ")";
    std::cout << "\n"
              << "Costs at     batch " << o.batch << (m.sequence ? ", sequence " + std::to_string(seq) : " (per sample)")
              << ", 16-bit activations\n"
              << "  forward    " << formatFlopCount(total.forward_flops) << " ("
              << formatFlopCount(total.forward_flops / tokens) << (m.sequence ? " per token)" : " per sample)") << "\n"
              << "  backward   " << formatFlopCount(total.backward_flops) << "\n"
              << "  activations saved for backward " << formatBytes(total.activation_bytes) << "\n\n";
}

// Prints the layers' table (kind, parameters, forward FLOPs, activation memory, inputs) and the notes.
void printModelLayers(const Model& m, const InspectOptions& o, int64_t seq)
{
    Table t({"layer", "kind", "params", "fwd FLOP", "act mem", "inputs"});
    for (const auto& l : m.layers) {
        const CostAt c = layerCostAt(l, o.batch, seq, kActBytes);
        std::string kind(layerKindName(l.kind));
        if (l.sparse_grad)
            kind += " (sparse grad)";
        if (!l.tied_to.empty())
            kind += " (tied to " + l.tied_to + ")";
        std::string inputs;
        for (const auto& in : l.inputs)
            inputs += (inputs.empty() ? "" : ", ") + in;
        t.add({l.name, kind, withThousands(l.parameterCount()), formatFlopCount(c.forward_flops),
               formatBytes(c.activation_bytes), inputs.empty() ? "(input)" : inputs});
    }
    t.print(std::cout, {false, false, true, true, true, false});
    for (const auto& n : m.notes)
        std::cout << "note: " << n << "\n";
}

int inspectModel(const Model& m, const std::string& source, const InspectOptions& o)
{
    const int64_t seq = m.sequence ? (o.seqLen > 0 ? o.seqLen : m.seq_len) : 1;
    if (!m.sequence && o.seqLen > 0)
        std::cerr << "partita-cli: note: " << source << " is not a sequence model; --seq-len is ignored\n";
    const CostAt total = modelCostAt(m, o.batch, seq, kActBytes);
    const double tokens = double(o.batch) * double(seq);
    const int64_t params = m.parameterCount();

    if (o.json) {
        printModelJson(m, source, o, seq, total, tokens, params);
        return 0;
    }
    printModelSummary(m, source, o, seq, total, tokens, params);
    printModelLayers(m, o, seq);
    return 0;
}

std::string flopsList(const DeviceSpec& d)
{
    std::string s;
    for (const auto& [dt, f] : d.peak_flops)
        s += (s.empty() ? "" : ", ") + dt + " " + formatFlops(f);
    return s.empty() ? "unknown" : s;
}

// Appends a node, its devices and its links (device pairs, then the network) to the JSON arrays.
void appendNodeJson(const Node& n, json& nodes, json& devices, json& links)
{
    nodes.push_back({{"name", n.name}, {"devices", n.devices.size()}, {"nics", n.nic.count}});
    for (size_t d = 0; d < n.devices.size(); ++d) {
        const DeviceSpec& dev = n.devices[d];
        devices.push_back({{"node", n.name},
                           {"index", d},
                           {"name", dev.name},
                           {"kind", dev.kind},
                           {"peak_flops", dev.peak_flops},
                           {"memory_bytes", dev.memory_bytes},
                           {"memory_bandwidth", dev.memory_bandwidth},
                           {"cores", dev.cores},
                           {"source", dev.source}});
    }
    for (int a = 0; a < int(n.devices.size()); ++a)
        for (int b = a + 1; b < int(n.devices.size()); ++b) {
            const LinkSpec& l = n.linkBetween(a, b);
            links.push_back({{"node", n.name},
                             {"a", a},
                             {"b", b},
                             {"kind", std::string(linkKindName(l.kind))},
                             {"bandwidth", l.bandwidth},
                             {"latency", l.latency},
                             {"lanes", l.lanes},
                             {"source", l.source}});
        }
    if (n.nic.count > 0)
        links.push_back({{"node", n.name},
                         {"a", "nic"},
                         {"b", "network"},
                         {"kind", std::string(linkKindName(n.nic.link.kind))},
                         {"count", n.nic.count},
                         {"bandwidth", n.nic.link.bandwidth},
                         {"latency", n.nic.link.latency},
                         {"source", n.nic.link.source}});
}

// Prints the cluster's nodes, devices and links as JSON (--json).
void printClusterJson(const Cluster& c, const std::vector<std::string>& notes)
{
    json j;
    j["kind"] = "cluster";
    j["name"] = c.name;
    j["source"] = c.source;
    json nodes = json::array(), devices = json::array(), links = json::array();
    for (size_t ni = 0; ni < c.nodes.size(); ++ni)
        appendNodeJson(c.nodes[ni], nodes, devices, links);
    j["nodes"] = std::move(nodes);
    j["devices"] = std::move(devices);
    j["links"] = std::move(links);
    j["notes"] = notes;
    std::cout << j.dump(2) << "\n";
}

// Prints a node's devices, runs of alike devices once.
void printNodeDevices(const Node& n)
{
    for (size_t d = 0; d < n.devices.size();) {
        size_t k = d + 1;
        while (k < n.devices.size() && n.devices[k] == n.devices[d])
            ++k;
        const DeviceSpec& dev = n.devices[d];
        std::cout << "  " << (k - d) << " x " << dev.name << " [" << dev.kind << "]"
                  << (dev.cores ? ", " + std::to_string(dev.cores) + (dev.kind == "gpu" ? " SMs" : " cores") : "")
                  << ", memory " << (dev.memory_bytes ? formatBytes(double(dev.memory_bytes)) : "unknown")
                  << " at " << (dev.memory_bandwidth > 0 ? formatBandwidth(dev.memory_bandwidth) : "unknown")
                  << "\n    peak " << flopsList(dev) << "\n    source: " << dev.source << "\n";
        d = k;
    }
}

// Prints a node's links between devices (with several) and its network (with NICs).
void printNodeLinks(const Node& n)
{
    if (n.devices.size() > 1) {
        std::cout << "  links (per direction): default " << linkKindName(n.intra.kind) << " "
                  << formatBandwidth(n.intra.bandwidth) << ", " << formatSeconds(n.intra.latency) << "\n";
        for (const auto& l : n.links)
            std::cout << "    " << l.a << " <-> " << l.b << ": " << linkKindName(l.link.kind)
                      << (l.link.lanes ? " x" + std::to_string(l.link.lanes) : "") << " "
                      << formatBandwidth(l.link.bandwidth) << "\n";
        std::cout << "    source: " << n.intra.source << "\n";
    }
    if (n.nic.count > 0)
        std::cout << "  network: " << n.nic.count << " x " << linkKindName(n.nic.link.kind) << " "
                  << (n.nic.link.bandwidth > 0 ? formatBandwidth(n.nic.link.bandwidth) : "unknown bandwidth")
                  << ", " << formatSeconds(n.nic.link.latency) << "\n    source: " << n.nic.link.source << "\n";
}

int inspectCluster(const Cluster& c, const std::vector<std::string>& notes, const InspectOptions& o)
{
    if (o.json) {
        printClusterJson(c, notes);
        return 0;
    }
    std::cout << "Cluster      " << c.name << "\n"
              << "Source       " << c.source << "\n"
              << "Nodes        " << c.nodes.size() << ", devices " << c.deviceCount() << "\n\n";
    // Nodes that look alike print once.
    for (size_t ni = 0; ni < c.nodes.size(); ++ni) {
        const Node& n = c.nodes[ni];
        size_t same = ni + 1;
        while (same < c.nodes.size() && c.nodes[same].devices == n.devices && c.nodes[same].links == n.links &&
               c.nodes[same].intra == n.intra && c.nodes[same].nic == n.nic)
            ++same;
        std::cout << "Node " << n.name;
        if (same - ni > 1)
            std::cout << " .. " << c.nodes[same - 1].name << " (" << same - ni << " alike)";
        std::cout << ": " << n.devices.size() << " device(s)\n";
        printNodeDevices(n);
        printNodeLinks(n);
        ni = same - 1;
    }
    for (const auto& n : notes)
        std::cout << "note: " << n << "\n";
    return 0;
}

} // namespace

int runInspect(const InspectOptions& o)
{
    switch (classify(o)) {
    case TargetKind::Model: {
        auto m = loadModel(o.target);
        if (!m)
            return fail(m.error());
        return inspectModel(*m, o.target, o);
    }
    case TargetKind::Local: {
        const LocalMachine lm = detectLocalMachine();
        return inspectCluster(lm.cluster, lm.notes, o);
    }
    case TargetKind::Cluster: {
        auto c = loadCluster(o.target, ClusterLoadOptions{o.device, o.nodeTemplate});
        if (!c)
            return fail(c.error());
        return inspectCluster(*c, {}, o);
    }
    }
    return 2;
}

int runConvert(const InspectOptions& o, const std::string& output)
{
    std::string text;
    switch (classify(o)) {
    case TargetKind::Model: {
        auto m = loadModel(o.target);
        if (!m)
            return fail(m.error());
        text = modelToJson(*m);
        break;
    }
    case TargetKind::Local:
        text = clusterToJson(detectLocalMachine().cluster);
        break;
    case TargetKind::Cluster: {
        auto c = loadCluster(o.target, ClusterLoadOptions{o.device, o.nodeTemplate});
        if (!c)
            return fail(c.error());
        text = clusterToJson(*c);
        break;
    }
    }
    if (output.empty() || output == "-") {
        std::cout << text;
        return 0;
    }
    if (auto w = writeFileAtomically(output, text); !w)
        return fail(w.error());
    return 0;
}

} // namespace partita::cli
