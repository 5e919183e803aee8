// `nvidia-smi topo -m` text -> one Node. The matrix tells which pairs of GPUs
// share NVLinks (NV#: # links) and which go through PCIe switches (PIX, PXB),
// the host bridge (PHB), the NUMA node (NODE) or the inter-socket link (SYS).
#include "partita/core/clusterio.h"

#include <optional>
#include <regex>
#include <sstream>

namespace partita {

namespace {

std::vector<std::string> words(const std::string& line)
{
    std::istringstream ss(line);
    std::vector<std::string> out;
    for (std::string w; ss >> w;)
        out.push_back(w);
    return out;
}

// A GPU's name in the header or at the start of a row.
const std::regex& gpuName()
{
    static const std::regex r("GPU[0-9]+");
    return r;
}

// Any column's name: a GPU's or a NIC's.
const std::regex& columnName()
{
    static const std::regex r("(GPU[0-9]+|NIC[0-9]+|mlx[0-9A-Za-z_]+)");
    return r;
}

// The GPU rows of the matrix as read, and the header they were read against.
struct TopoMatrix
{
    std::vector<std::string> columns;
    int headerLine = 0;
    int gpuRows = 0;
    // Link matrix as read, checked for symmetry at the end.
    std::vector<std::vector<std::string>> cells;
};

// Whether the words are the header line (GPU0 ... and not a row, whose second cell is X); takes its columns.
bool readHeader(const std::vector<std::string>& w, std::vector<std::string>& columns)
{
    if (!(std::regex_match(w[0], gpuName()) && (w.size() == 1 || !std::regex_match(w[1], std::regex("X")))))
        return false;
    for (const auto& c : w) {
        if (!std::regex_match(c, columnName()))
            break;
        columns.push_back(c);
    }
    return true;
}

// Checks one row under the header against it, keeping a GPU row's cells (a NIC row's are not needed).
std::optional<Error> readRow(const std::vector<std::string>& w, int lineNo, const std::string& file, TopoMatrix& t)
{
    const bool gpuRow = std::regex_match(w[0], gpuName());
    const bool nicRow = std::regex_match(w[0], columnName()) && !gpuRow;
    if (!gpuRow && !nicRow)
        return Error{file, "line " + std::to_string(lineNo),
                     "expected a row starting with GPU<n> or NIC<n>, found '" + w[0] + "'"};
    if (w.size() < t.columns.size() + 1)
        return Error{file, "line " + std::to_string(lineNo),
                     "row " + w[0] + " has " + std::to_string(w.size() - 1) + " cells, the header (line " +
                         std::to_string(t.headerLine) + ") has " + std::to_string(t.columns.size()) + " columns"};
    if (nicRow)
        return std::nullopt;
    if (w[0] != "GPU" + std::to_string(t.gpuRows))
        return Error{file, "line " + std::to_string(lineNo),
                     "expected row GPU" + std::to_string(t.gpuRows) + ", found " + w[0]};
    t.cells.emplace_back(w.begin() + 1, w.begin() + 1 + long(t.columns.size()));
    ++t.gpuRows;
    return std::nullopt;
}

// Reads the header and the rows under it up to the legend; refuses text without either.
Result<TopoMatrix> readTopoMatrix(const std::string& text, const std::string& file)
{
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    TopoMatrix t;
    while (std::getline(in, line)) {
        ++lineNo;
        const auto w = words(line);
        if (w.empty())
            continue;
        if (t.columns.empty()) {
            if (readHeader(w, t.columns))
                t.headerLine = lineNo;
            continue;
        }
        if (w[0] == "Legend:" || w[0] == "NIC")
            break;
        if (auto e = readRow(w, lineNo, file, t))
            return *e;
    }
    if (t.columns.empty())
        return Error{file, {}, "no header line with GPU0 ... found: expected the output of `nvidia-smi topo -m`"};
    if (t.gpuRows == 0)
        return Error{file, "line " + std::to_string(t.headerLine), "the header is not followed by any GPU row"};
    return t;
}

// The link one cell names between two GPUs; `pcieBw` and `pcieSource` are the node's default PCIe link's.
Result<LinkSpec> linkOfCell(const std::string& cell, const std::string& where, const DeviceSpec& device,
                            double pcieBw, const std::string& pcieSource, const std::string& file)
{
    static const std::regex nvCell("NV([0-9]+)");
    std::smatch m;
    LinkSpec link;
    if (std::regex_match(cell, m, nvCell)) {
        const int lanes = std::stoi(m[1].str().substr(0, 4));
        if (lanes < 1 || lanes > 64)
            return Error{file, where, "NVLink count out of range in '" + cell + "'"};
        if (!(device.nvlink_bandwidth > 0))
            return Error{file, where,
                         "NV" + std::to_string(lanes) + " link, but device '" + device.name +
                             "' has no NVLink bandwidth: name a device preset with NVLink"};
        link = LinkSpec{LinkKind::NVLink, lanes * device.nvlink_bandwidth, 0.47e-6, lanes,
                        "nvidia-smi topo -m NV" + std::to_string(lanes) + " x the device's per-link bandwidth"};
    } else if (cell == "PIX" || cell == "PXB" || cell == "PHB") {
        link = LinkSpec{LinkKind::PCIe, pcieBw, 1.0e-6, 0, pcieSource + " (" + cell + ")"};
    } else if (cell == "NODE" || cell == "SYS" || cell == "SOC") {
        link = LinkSpec{LinkKind::CrossCPU, pcieBw, 1.0e-6, 0, pcieSource + " (" + cell + ")"};
    } else {
        return Error{file, where, "unknown link '" + cell + "' (expected X, NV#, PIX, PXB, PHB, NODE, SYS)"};
    }
    return link;
}

// Checks the matrix (X on the diagonal, symmetric) and adds a link for each pair of GPUs to the node.
std::optional<Error> readLinks(const TopoMatrix& t, const DeviceSpec& device, double pcieBw,
                               const std::string& pcieSource, const std::string& file, Node& node)
{
    const auto& cells = t.cells;
    for (int a = 0; a < t.gpuRows; ++a) {
        for (int b = 0; b < t.gpuRows; ++b) {
            const std::string& cell = cells[size_t(a)][size_t(b)];
            const std::string where = "GPU" + std::to_string(a) + " row, GPU" + std::to_string(b) + " column";
            if (a == b) {
                if (cell != "X")
                    return Error{file, where, "the diagonal must be X, found '" + cell + "'"};
                continue;
            }
            if (cell != cells[size_t(b)][size_t(a)])
                return Error{file, where, "the matrix is not symmetric: '" + cell + "' vs '" +
                                              cells[size_t(b)][size_t(a)] + "'"};
            if (b < a)
                continue;
            auto link = linkOfCell(cell, where, device, pcieBw, pcieSource, file);
            if (!link)
                return link.error();
            node.links.push_back(PairLink{a, b, std::move(*link)});
        }
    }
    return std::nullopt;
}

} // namespace

Result<Node> nodeFromNvidiaSmiTopo(const std::string& text, const DeviceSpec& device, const std::string& file)
{
    auto matrix = readTopoMatrix(text, file);
    if (!matrix)
        return matrix.error();
    const TopoMatrix& t = *matrix;
    const int gpuRows = t.gpuRows;
    int gpuColumns = 0, nicColumns = 0;
    for (const auto& c : t.columns)
        (std::regex_match(c, gpuName()) ? gpuColumns : nicColumns)++;
    if (gpuColumns != gpuRows)
        return Error{file, "line " + std::to_string(t.headerLine),
                     "the header names " + std::to_string(gpuColumns) + " GPUs but " + std::to_string(gpuRows) +
                         " GPU rows follow"};

    Node node;
    node.devices.assign(size_t(gpuRows), device);
    const double pcieBw = device.pcie_bandwidth > 0 ? device.pcie_bandwidth : 15.75e9;
    const std::string pcieSource = device.pcie_bandwidth > 0
                                       ? "nvidia-smi topo -m; the device's PCIe bandwidth"
                                       : "nvidia-smi topo -m; PCIe Gen3 x16 15.75 GB/s assumed (device names none)";
    // Latencies: NCCL src/graph/tuning.cc hwLat (Ring, LL): NVLink 0.47 us, PCI 1.0 us.
    node.intra = LinkSpec{LinkKind::PCIe, pcieBw, 1.0e-6, 0, pcieSource};
    if (auto e = readLinks(t, device, pcieBw, pcieSource, file, node))
        return *e;
    // Pairs identical to the default PCIe link need not be listed.
    std::erase_if(node.links, [&](const PairLink& l) { return l.link.kind == LinkKind::PCIe && l.link.bandwidth == pcieBw; });
    node.intra.source = pcieSource;
    node.nic.count = nicColumns;
    node.nic.link = LinkSpec{LinkKind::InfiniBand, 0, 2.7e-6, 0, "nvidia-smi topo -m lists the NIC; its bandwidth is not reported"};
    return node;
}

} // namespace partita
