// `nvidia-smi topo -m` text -> one Node. The matrix tells which pairs of GPUs
// share NVLinks (NV#: # links) and which go through PCIe switches (PIX, PXB),
// the host bridge (PHB), the NUMA node (NODE) or the inter-socket link (SYS).
#include "partita/core/clusterio.h"

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

} // namespace

Result<Node> nodeFromNvidiaSmiTopo(const std::string& text, const DeviceSpec& device, const std::string& file)
{
    static const std::regex gpuName("GPU[0-9]+");
    static const std::regex columnName("(GPU[0-9]+|NIC[0-9]+|mlx[0-9A-Za-z_]+)");
    static const std::regex nvCell("NV([0-9]+)");

    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    std::vector<std::string> columns;
    int headerLine = 0;
    Node node;
    int gpuRows = 0;
    // Link matrix as read, checked for symmetry at the end.
    std::vector<std::vector<std::string>> cells;
    while (std::getline(in, line)) {
        ++lineNo;
        const auto w = words(line);
        if (w.empty())
            continue;
        if (columns.empty()) {
            if (std::regex_match(w[0], gpuName) && (w.size() == 1 || !std::regex_match(w[1], std::regex("X")))) {
                for (const auto& c : w) {
                    if (!std::regex_match(c, columnName))
                        break;
                    columns.push_back(c);
                }
                headerLine = lineNo;
            }
            continue;
        }
        if (w[0] == "Legend:" || w[0] == "NIC")
            break;
        const bool gpuRow = std::regex_match(w[0], gpuName);
        const bool nicRow = std::regex_match(w[0], columnName) && !gpuRow;
        if (!gpuRow && !nicRow)
            return Error{file, "line " + std::to_string(lineNo),
                         "expected a row starting with GPU<n> or NIC<n>, found '" + w[0] + "'"};
        if (w.size() < columns.size() + 1)
            return Error{file, "line " + std::to_string(lineNo),
                         "row " + w[0] + " has " + std::to_string(w.size() - 1) + " cells, the header (line " +
                             std::to_string(headerLine) + ") has " + std::to_string(columns.size()) + " columns"};
        if (nicRow)
            continue;
        if (w[0] != "GPU" + std::to_string(gpuRows))
            return Error{file, "line " + std::to_string(lineNo),
                         "expected row GPU" + std::to_string(gpuRows) + ", found " + w[0]};
        cells.emplace_back(w.begin() + 1, w.begin() + 1 + long(columns.size()));
        ++gpuRows;
    }
    if (columns.empty())
        return Error{file, {}, "no header line with GPU0 ... found: expected the output of `nvidia-smi topo -m`"};
    if (gpuRows == 0)
        return Error{file, "line " + std::to_string(headerLine), "the header is not followed by any GPU row"};
    int gpuColumns = 0, nicColumns = 0;
    for (const auto& c : columns)
        (std::regex_match(c, gpuName) ? gpuColumns : nicColumns)++;
    if (gpuColumns != gpuRows)
        return Error{file, "line " + std::to_string(headerLine),
                     "the header names " + std::to_string(gpuColumns) + " GPUs but " + std::to_string(gpuRows) +
                         " GPU rows follow"};

    node.devices.assign(size_t(gpuRows), device);
    const double pcieBw = device.pcie_bandwidth > 0 ? device.pcie_bandwidth : 15.75e9;
    const std::string pcieSource = device.pcie_bandwidth > 0
                                       ? "nvidia-smi topo -m; the device's PCIe bandwidth"
                                       : "nvidia-smi topo -m; PCIe Gen3 x16 15.75 GB/s assumed (device names none)";
    // Latencies: NCCL src/graph/tuning.cc hwLat (Ring, LL): NVLink 0.47 us, PCI 1.0 us.
    node.intra = LinkSpec{LinkKind::PCIe, pcieBw, 1.0e-6, 0, pcieSource};
    for (int a = 0; a < gpuRows; ++a) {
        for (int b = 0; b < gpuRows; ++b) {
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
                return Error{file, where,
                             "unknown link '" + cell + "' (expected X, NV#, PIX, PXB, PHB, NODE, SYS)"};
            }
            node.links.push_back(PairLink{a, b, std::move(link)});
        }
    }
    // Pairs identical to the default PCIe link need not be listed.
    std::erase_if(node.links, [&](const PairLink& l) { return l.link.kind == LinkKind::PCIe && l.link.bandwidth == pcieBw; });
    node.intra.source = pcieSource;
    node.nic.count = nicColumns;
    node.nic.link = LinkSpec{LinkKind::InfiniBand, 0, 2.7e-6, 0, "nvidia-smi topo -m lists the NIC; its bandwidth is not reported"};
    return node;
}

} // namespace partita
