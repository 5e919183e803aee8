// Auto-search benchmark, printed as JSON: for each model x cluster, the best
// preset, the best data-parallel preset (AutoDist-style), the searched step
// time, the speedups, the search time and the candidates evaluated.
// Usage: bench_search SOURCE_DIR [RESNET50_ONNX] [--budget-s N]
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/search.h"
#include "partita/core/simulator.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>

using namespace partita;
using nlohmann::json;

namespace {

// AutoSync's cluster A (Zhang et al., NeurIPS 2020): 11 nodes with one NVIDIA
// TITAN X each on 40 Gb Ethernet. TITAN X (Pascal) datasheet: 11 TFLOP/s
// fp32, 12 GB GDDR5X at 480 GB/s; PCIe Gen3 x16.
Cluster autosyncA()
{
    DeviceSpec d;
    d.name = "TITAN X (Pascal)";
    d.peak_flops = {{"fp32", 11e12}};
    d.memory_bytes = int64_t(12) * 1073741824;
    d.memory_bandwidth = 480e9;
    d.pcie_bandwidth = 15.75e9;
    d.source = "NVIDIA TITAN X (Pascal) specifications";
    Cluster c;
    c.name = "AutoSync cluster A: 11 x 1 TITAN X, 40 GbE";
    for (int i = 0; i < 11; ++i) {
        Node n;
        n.name = "titanx-" + std::to_string(i);
        n.devices = {d};
        n.intra = LinkSpec{LinkKind::PCIe, 15.75e9, 1e-6, 0, "PCIe Gen3 x16"};
        n.nic = NicSpec{1, LinkSpec{LinkKind::Ethernet, 40e9 / 8, 2.7e-6, 0, "40 GbE (AutoSync, cluster A)"}};
        c.nodes.push_back(n);
    }
    return c;
}

bool isDataParallelPreset(const std::string& name)
{
    return name.rfind("megatron", 0) != 0;
}

// A model to search, with its sequence length and per-device batch.
struct Scenario
{
    std::string name, path;
    int64_t seq, batchPerDevice;
};

// A cluster to search on, whether its network is the bottleneck, and the precision used on it.
struct ClusterCase
{
    std::string name;
    Cluster cluster;
    bool networkBound;
    Precision precision;
};

// Small spaces compared with exhaustive enumeration.
struct Small
{
    std::string model, path, cluster;
    int64_t batch;
};

// Reads the optional ResNet-50 ONNX path and --budget-s N after SOURCE_DIR.
void parseOptions(int argc, char** argv, std::string& resnet, double& budget)
{
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--budget-s" && i + 1 < argc)
            budget = std::stod(argv[++i]);
        else
            resnet = a;
    }
}

// The models searched, ResNet-50 last when its ONNX file is given.
std::vector<Scenario> scenarios(const std::string& src, const std::string& resnet)
{
    std::vector<Scenario> models = {
        {"BERT-large", src + "/tests/data/hf/bert-large-uncased.json", 128, 8},
        {"GPT-2 XL", src + "/tests/data/hf/gpt2-xl.json", 1024, 2},
        {"Llama-2-7B", src + "/../shared/data/hf/llama-2-7b-hf.json", 2048, 1},
        {"Mixtral-style MoE", src + "/tests/bench/search/moe-small.json", 2048, 2},
    };
    if (!resnet.empty())
        models.push_back({"ResNet-50 (ONNX)", resnet, 1, 32});
    return models;
}

// The clusters each model is searched on.
std::vector<ClusterCase> clusterCases()
{
    return {
        {"AutoSync A: 11 x TITAN X, 40 GbE", autosyncA(), true, Precision::FP32},
        {"AutoSync B: 4 x g4dn.12xlarge, 50 GbE", *clusterPreset("g4dn.12xlarge:4"), true, Precision::FP16},
        {"16 x p3.16xlarge, 25 Gb/s", *clusterPreset("p3.16xlarge:16"), true, Precision::FP16},
        {"2 x DGX-A100", *clusterPreset("dgx-a100-80gb:2"), false, Precision::BF16},
    };
}

// The fastest preset overall and the fastest data-parallel one (with its name).
struct PresetBests
{
    double preset = INFINITY, dp = INFINITY;
    std::string dpName;
};

// Picks the best preset and best data-parallel preset among the search's baselines.
PresetBests bestPresets(const SearchResult& r)
{
    PresetBests b;
    for (const auto& base : r.baselines) {
        b.preset = std::min(b.preset, base.step_time);
        if (isDataParallelPreset(base.name) && base.step_time < b.dp) {
            b.dp = base.step_time;
            b.dpName = base.name;
        }
    }
    return b;
}

// Is the network the bottleneck of the best data-parallel preset? Adds its exposed communication share to `row`.
void addExposedComm(json& row, const Model& m, const Scenario& mc, const ClusterCase& cc, const SearchOptions& o,
                    const std::string& bestDpName)
{
    PresetOptions po;
    po.global_batch = o.global_batch;
    po.precision = o.precision;
    po.micro_batch = std::max<int64_t>(1, o.global_batch / cc.cluster.deviceCount());
    auto ps = strategyPreset(bestDpName, m, cc.cluster, po);
    SimOptions so;
    so.seq_len = mc.seq;
    auto sim = ps ? simulate(m, cc.cluster, *ps, so) : Result<SimResult>(ps.error());
    if (sim)
        row["best_dp_preset_exposed_comm_pct"] = 100 * sim->breakdown.exposed_comm / sim->step_time;
}

// What per-layer refinement added over the best global candidate, in percent (null without one).
json perLayerGainPct(const SearchResult& r)
{
    double bestGlobal = INFINITY;
    for (const auto& cand : r.top)
        if (cand.explanation.find("per layer:") == std::string::npos)
            bestGlobal = std::min(bestGlobal, cand.step_time);
    return std::isfinite(bestGlobal) ? json(100 * (bestGlobal / r.best.step_time - 1)) : json(nullptr);
}

// Searches one model on one cluster and returns its row; logs the result to stderr.
json searchScenario(const Model& m, const Scenario& mc, const ClusterCase& cc, double budget)
{
    SearchOptions o;
    o.global_batch = mc.batchPerDevice * cc.cluster.deviceCount();
    o.seq_len = mc.seq;
    o.precision = cc.precision;
    o.budget_s = budget;
    o.seed = 1;
    auto r = searchStrategy(m, cc.cluster, o);
    json row{{"model", mc.name}, {"cluster", cc.name}, {"global_batch", o.global_batch}};
    if (!r) {
        row["result"] = r.error().message;
        return row;
    }
    const PresetBests best = bestPresets(*r);
    row["best_preset"] = r->best_preset;
    row["best_preset_step_s"] = std::isfinite(best.preset) ? json(best.preset) : json(nullptr);
    row["best_dp_preset"] = best.dpName;
    row["best_dp_preset_step_s"] = std::isfinite(best.dp) ? json(best.dp) : json(nullptr);
    row["searched_step_s"] = r->best.step_time;
    row["speedup_vs_best_preset"] = std::isfinite(best.preset) ? json(best.preset / r->best.step_time) : json(nullptr);
    row["speedup_vs_best_dp_preset"] = std::isfinite(best.dp) ? json(best.dp / r->best.step_time) : json(nullptr);
    row["network_bound_cluster"] = cc.networkBound;
    row["search_s"] = r->elapsed_s;
    row["best_found_s"] = r->best_found_s;
    if (!best.dpName.empty())
        addExposedComm(row, m, mc, cc, o, best.dpName);
    row["per_layer_gain_pct"] = perLayerGainPct(*r);
    row["evaluated"] = r->evaluated;
    row["exhaustive"] = r->exhaustive;
    row["explanation"] = r->best.explanation;
    std::cerr << mc.name << " on " << cc.name << ": " << r->best.step_time << " s vs " << best.preset << " s ("
              << r->evaluated << " candidates)\n";
    return row;
}

// Every model on every cluster; a model that fails to load gets one error row.
json searchAll(const std::vector<Scenario>& models, const std::vector<ClusterCase>& clusters, double budget)
{
    json rows = json::array();
    for (const auto& mc : models) {
        auto m = loadModel(mc.path);
        if (!m) {
            rows.push_back({{"model", mc.name}, {"error", m.error().str()}});
            continue;
        }
        for (const auto& cc : clusters)
            rows.push_back(searchScenario(*m, mc, cc, budget));
    }
    return rows;
}

// Exhaustive enumeration, then annealing, on one small space; adds their gap to `gaps` when both succeed.
void measureGap(json& gaps, const Small& sm, double budget)
{
    auto m = loadModel(sm.path);
    if (!m)
        return;
    const Cluster c = *clusterPreset(sm.cluster);
    SearchOptions o;
    o.global_batch = sm.batch;
    o.precision = Precision::FP16;
    o.exhaustive_limit = int64_t(1) << 40;
    o.budget_s = 3600;
    o.refine_layers = false; // the enumerable space: global genes only
    auto ex = searchStrategy(*m, c, o);
    o.exhaustive_limit = 0;
    o.budget_s = budget;
    auto an = searchStrategy(*m, c, o);
    if (!ex || !an)
        return;
    gaps.push_back({{"model", sm.model},
                    {"cluster", sm.cluster},
                    {"space", ex->evaluated},
                    {"exhaustive_s", ex->elapsed_s},
                    {"exhaustive_best_s", ex->best.step_time},
                    {"annealed_best_s", an->best.step_time},
                    {"annealed_evaluated", an->evaluated},
                    {"gap_pct", 100 * (an->best.step_time / ex->best.step_time - 1)}});
}

// Small spaces: annealing against exhaustive enumeration (target gap 0 %).
json measureGaps(const std::string& src, double budget)
{
    json gaps = json::array();
    for (const Small& sm : {Small{"GPT-2", src + "/resources/demo/model.json", "g4dn.12xlarge:2", 32},
                            Small{"BERT-large", src + "/tests/data/hf/bert-large-uncased.json", "g4dn.12xlarge:2", 64},
                            Small{"GPT-2 medium", src + "/tests/data/hf/gpt2-medium.json", "p3.16xlarge", 32}})
        measureGap(gaps, sm, budget);
    return gaps;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::cerr << "usage: bench_search SOURCE_DIR [RESNET50_ONNX] [--budget-s N]\n";
        return 2;
    }
    const std::string src = argv[1];
    std::string resnet;
    double budget = 10;
    parseOptions(argc, argv, resnet, budget);
    const std::vector<Scenario> models = scenarios(src, resnet);
    const std::vector<ClusterCase> clusters = clusterCases();
    const json rows = searchAll(models, clusters, budget);
    const json gaps = measureGaps(src, budget);
    std::cout << json{{"budget_s", budget}, {"scenarios", rows}, {"exhaustive_gap", gaps}}.dump(2) << "\n";
    return 0;
}
