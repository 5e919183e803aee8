// Simulator fidelity and speed, printed as JSON.
//   fidelity: Korthikanti et al. 2022, Table 5 (iteration time) and Figure 1
//             (memory per GPU), as listed in shared/data/ORACLES.md, against
//             Calculon's errors on the same rows (3.65 % mean, 8.87 % max).
//   speed:    time to simulate one candidate, one thread (median of repeats).
//   scenario: BERT-large on 4 x p3.16xlarge, Horovod vs an adaptive strategy.
// Usage: bench_simulator SOURCE_DIR [--check]   (--check: exit 1 when the
// fidelity target is missed)
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace partita;
using nlohmann::json;

namespace {

Model loadOrDie(const std::string& path)
{
    auto m = loadModel(path);
    if (!m) {
        std::cerr << m.error().str() << "\n";
        std::exit(2);
    }
    return *m;
}

SimResult simOrDie(const Model& m, const Cluster& c, const Strategy& s)
{
    auto r = simulate(m, c, s);
    if (!r) {
        std::cerr << r.error().str() << "\n";
        std::exit(2);
    }
    return *r;
}

Strategy megatron(int tp, int pp, int64_t gb, int64_t mb, int interleave, bool selectiveSp, int devices)
{
    Strategy s;
    s.name = selectiveSp ? "selective recompute + sequence parallel" : "full recompute";
    s.precision = Precision::FP16;
    s.fp32_grad_accumulation = true;
    s.tp = tp;
    s.pp = pp;
    s.dp = devices / (tp * pp);
    s.global_batch = gb;
    s.micro_batch = mb;
    s.interleave = interleave;
    s.schedule = interleave > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
    s.recompute = selectiveSp ? Recompute::Selective : Recompute::Full;
    s.attention = Attention::Unfused; // Megatron-LM as Korthikanti et al. 2022 ran it: no fused attention
    s.sequence_parallel = selectiveSp;
    return s;
}

template <class F>
double medianSeconds(F&& f, int repeats)
{
    std::vector<double> t;
    for (int i = 0; i < repeats; ++i) {
        const auto a = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// One Megatron configuration of Korthikanti et al. 2022 with the paper's numbers.
struct Row
{
    const char* model;
    const char* file;
    int gpus, tp, pp, interleave;
    int64_t gb, mb;
    double full, selective;             // seconds (Table 5)
    double paramsGiB, actNoneGiB, actSelGiB; // Figure 1
};

const Row kRows[] = {
    {"22B", "gpt-22b.json", 8, 8, 1, 1, 4, 4, 1.42, 1.10, 45.5625, 59.25, 9.5625},
    {"175B", "gpt-175b.json", 64, 8, 8, 3, 64, 1, 18.13, 13.75, 45.5625, 66.84375, 12.3515625},
};

// The fidelity rows and memory rows collected so far, with the running error statistics.
struct Fidelity
{
    json fid = json::array(), mem = json::array();
    double sumErr = 0, maxErr = 0;
    int cells = 0;
};

// Adds one iteration-time row (predicted against Table 5) and updates the error statistics.
void addTimeRow(Fidelity& f, const Row& r, bool sel, const SimResult& res)
{
    const double paper = sel ? r.selective : r.full;
    const double err = 100 * (res.step_time - paper) / paper;
    f.sumErr += std::fabs(err);
    f.maxErr = std::max(f.maxErr, std::fabs(err));
    ++f.cells;
    f.fid.push_back({{"model", r.model},
                     {"recompute", sel ? "selective + sequence parallel" : "full"},
                     {"gpus", r.gpus},
                     {"paper_s", paper},
                     {"predicted_s", res.step_time},
                     {"error_pct", err},
                     {"breakdown", {{"compute_s", res.breakdown.compute},
                                    {"tp_comm_s", res.breakdown.tp_comm},
                                    {"bubble_s", res.breakdown.bubble},
                                    {"optimizer_s", res.breakdown.optimizer}}}});
}

// Adds the memory rows (predicted against Figure 1); without `sel` also simulates the no-recompute mesh.
void addMemoryRows(Fidelity& f, const Row& r, bool sel, const Model& m, const Cluster& c, const Strategy& s,
                   const SimResult& res)
{
    constexpr double GiB = 1073741824.0;
    const double act = res.stage_memory[0].activations / GiB;
    const double paperAct = sel ? r.actSelGiB : r.actNoneGiB;
    // Figure 1's "no recompute" bar: same mesh, no recomputation.
    double noneAct = act;
    if (!sel) {
        Strategy none = s;
        none.recompute = Recompute::None;
        noneAct = simOrDie(m, c, none).stage_memory[0].activations / GiB;
    }
    const double got = sel ? act : noneAct;
    f.mem.push_back({{"model", r.model},
                     {"what", sel ? "activations, selective + sequence parallel" : "activations, no recompute"},
                     {"paper_gib", paperAct},
                     {"predicted_gib", got},
                     {"error_pct", 100 * (got - paperAct) / paperAct}});
    if (!sel) {
        const double p = res.stage_memory[0].parameters_optimizer / GiB;
        f.mem.push_back({{"model", r.model},
                         {"what", "parameters + optimizer (paper: 18 B x transformer weights; "
                                  "here: all weights of stage 0)"},
                         {"paper_gib", r.paramsGiB},
                         {"predicted_gib", p},
                         {"error_pct", 100 * (p - r.paramsGiB) / r.paramsGiB}});
    }
}

// Simulates every paper row with full and with selective recompute.
Fidelity measureFidelity(const std::string& src)
{
    Fidelity f;
    for (const Row& r : kRows) {
        const Model m = loadOrDie(src + "/tests/bench/megatron/" + r.file);
        const Cluster c = *clusterPreset("dgx-a100-80gb:" + std::to_string(r.gpus / 8));
        for (bool sel : {false, true}) {
            const Strategy s = megatron(r.tp, r.pp, r.gb, r.mb, r.interleave, sel, r.gpus);
            const SimResult res = simOrDie(m, c, s);
            addTimeRow(f, r, sel, res);
            addMemoryRows(f, r, sel, m, c, s, res);
        }
    }
    return f;
}

// The "fidelity" object: the rows, the mean and max errors and the target.
json fidelityJson(const Fidelity& f, double meanErr)
{
    return {{"source", "Korthikanti et al. 2022, Table 5 (ORACLES.md)"},
            {"rows", f.fid},
            {"mean_abs_error_pct", meanErr},
            {"max_abs_error_pct", f.maxErr},
            {"target",
             {{"mean_abs_error_pct", 3.65}, {"max_abs_error_pct", 8.87}, {"from", "Calculon on the same rows"}}},
            {"meets_target", meanErr < 3.65 && f.maxErr < 8.87}};
}

// Median time to simulate BERT-large on 32 GPUs with the AutoDist AllReduce preset.
json measureBertSpeed(const std::string& src)
{
    const Model bert = loadOrDie(src + "/tests/data/hf/bert-large-uncased.json");
    const Cluster c = *clusterPreset("p3.16xlarge:4");
    PresetOptions po;
    po.global_batch = 256;
    po.micro_batch = 8;
    const Strategy s = *strategyPreset("autodist-allreduce", bert, c, po);
    double sink = 0;
    const double t = medianSeconds([&] { sink += simOrDie(bert, c, s).step_time; }, 51);
    return {{"scenario", "BERT-large, 32 GPUs (4 x p3.16xlarge), per-layer AutoDist AllReduce strategy"},
            {"median_ms", 1e3 * t},
            {"target_ms", 1.0},
            {"layers", bert.layers.size()}};
}

// Median time to simulate GPT-3 175B on 1024 GPUs.
json measureGptSpeed(const std::string& src)
{
    const Model gpt = loadOrDie(src + "/tests/bench/megatron/gpt-175b.json");
    const Cluster c = *clusterPreset("dgx-a100-80gb:128");
    Strategy s = megatron(8, 16, 512, 1, 1, true, 1024);
    s.dp = 8;
    double sink = 0;
    const double t = medianSeconds([&] { sink += simOrDie(gpt, c, s).step_time; }, 21);
    return {{"scenario", "GPT-3 175B, 1024 GPUs (TP 8, PP 16, DP 8, 64 micro-batches)"},
            {"median_ms", 1e3 * t},
            {"target_ms", 20.0}};
}

// BERT-large on 4 x p3.16xlarge: Horovod against the adaptive strategy, and the speedup.
json compareBertStrategies(const std::string& src)
{
    const Model bert = loadOrDie(src + "/tests/data/hf/bert-large-uncased.json");
    const Cluster c = *clusterPreset("p3.16xlarge:4");
    PresetOptions po;
    po.global_batch = 256;
    po.micro_batch = 8;
    po.precision = Precision::FP16;
    const Strategy horovod = *strategyPreset("horovod", bert, c, po);
    std::ifstream in(src + "/resources/strategies/bert-large-adaptive-p3x4.json");
    std::stringstream ss;
    ss << in.rdbuf();
    const Strategy adaptive = strategyFromJson(ss.str(), "bert-large-adaptive-p3x4.json").value();
    json sc = json::object();
    for (const auto* s : {&horovod, &adaptive}) {
        const SimResult r = simOrDie(bert, c, *s);
        const size_t emb = size_t(bert.find("embeddings") - bert.layers.data());
        sc[s == &horovod ? "horovod" : "adaptive"] = {{"step_time_s", r.step_time},
                                                      {"compute_s", r.breakdown.compute},
                                                      {"exposed_comm_s", r.breakdown.exposed_comm},
                                                      {"optimizer_s", r.breakdown.optimizer},
                                                      {"embedding_sync_s", r.layers[emb].sync}};
    }
    sc["speedup"] = sc["horovod"]["step_time_s"].get<double>() / sc["adaptive"]["step_time_s"].get<double>();
    return sc;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::cerr << "usage: bench_simulator SOURCE_DIR [--check]\n";
        return 2;
    }
    const std::string src = argv[1];
    const bool check = argc > 2 && std::string(argv[2]) == "--check";
    json out;

    // ---- fidelity ------------------------------------------------------------
    const Fidelity f = measureFidelity(src);
    const double meanErr = f.sumErr / f.cells;
    const double maxErr = f.maxErr;
    out["fidelity"] = fidelityJson(f, meanErr);
    out["memory"] = f.mem;

    // ---- speed ------------------------------------------------------------------
    json speed = json::array();
    speed.push_back(measureBertSpeed(src));
    speed.push_back(measureGptSpeed(src));
    out["speed"] = speed;

    // ---- the motivating scenario ------------------------------------------------
    out["scenario_bert_large_p3x4"] = compareBertStrategies(src);

    std::cout << out.dump(2) << "\n";
    if (check && !(meanErr < 3.65 && maxErr < 8.87)) {
        std::cerr << "fidelity target missed: mean " << meanErr << " %, max " << maxErr << " %\n";
        return 1;
    }
    return 0;
}
