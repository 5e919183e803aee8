// Auto-search: seeded by the presets, never worse than the best of them,
// valid and in memory, deterministic for a seed and thread count,
// cancellable, and on small spaces equal to exhaustive enumeration.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/search.h"
#include "partita/core/simulator.h"

#include <QTest>

#include <cmath>

using namespace partita;

namespace {
Model load(const std::string& path)
{
    auto m = loadModel(path);
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Model bert() { return load(PARTITA_TEST_DATA "/hf/bert-large-uncased.json"); }
Model gpt2() { return load(PARTITA_SOURCE_DIR "/resources/demo/model.json"); }

double bestPreset(const SearchResult& r)
{
    double best = INFINITY;
    for (const auto& b : r.baselines)
        best = std::min(best, b.step_time);
    return best;
}
} // namespace

class TestSearch : public QObject
{
    Q_OBJECT
private slots:
    void neverWorseAndValid_data()
    {
        QTest::addColumn<QString>("cluster");
        QTest::addColumn<int>("globalBatch");
        QTest::newRow("network-bound: 4 x p3.16xlarge") << "p3.16xlarge:4" << 256;
        QTest::newRow("one DGX A100") << "dgx-a100-80gb" << 64;
    }
    void neverWorseAndValid()
    {
        QFETCH(QString, cluster);
        QFETCH(int, globalBatch);
        const Model m = bert();
        const Cluster c = *clusterPreset(cluster.toStdString());
        SearchOptions o;
        o.global_batch = globalBatch;
        o.precision = Precision::FP16;
        o.budget_s = 1.5;
        auto r = searchStrategy(m, c, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QVERIFY(r->best.step_time <= bestPreset(*r));
        QVERIFY(!r->best_preset.empty());
        QVERIFY(r->evaluated > int64_t(r->baselines.size()));
        QVERIFY(!r->top.empty() && r->top.size() <= 5);
        for (const Candidate& cand : r->top) {
            auto sim = simulate(m, c, cand.strategy);
            QVERIFY2(sim, sim ? "" : sim.error().str().c_str());
            QVERIFY(!sim->oom);
            QCOMPARE(sim->step_time, cand.step_time);
            QVERIFY(!cand.explanation.empty());
        }
        for (size_t i = 1; i < r->top.size(); ++i)
            QVERIFY(r->top[i - 1].step_time <= r->top[i].step_time);
    }

    // fp16 gradients of fp32 training are lossy: the search offers them only
    // when asked, as PowerSGD.
    void fp16CompressionIsOptIn_data()
    {
        QTest::addColumn<bool>("allowed");
        QTest::newRow("not asked") << false;
        QTest::newRow("allowed") << true;
    }
    void fp16CompressionIsOptIn()
    {
        QFETCH(bool, allowed);
        const Model m = bert();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        SearchOptions o;
        o.global_batch = 256;
        o.precision = Precision::FP32;
        o.allow_fp16_compression = allowed;
        o.exhaustive_limit = 0;
        o.max_evaluations = 400;
        o.budget_s = 60;
        o.threads = 2;
        auto r = searchStrategy(m, c, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        auto compresses = [](const Strategy& s) {
            if (s.sync.compression == Compression::FP16)
                return true;
            for (const auto& l : s.layers)
                if (l.sync && l.sync->compression == Compression::FP16)
                    return true;
            return false;
        };
        bool any = false;
        for (const Candidate& cand : r->top)
            any |= compresses(cand.strategy);
        if (!allowed)
            QVERIFY(!any);
        // Over a network-bound cluster, halving the gradients' bytes wins once allowed.
        else
            QVERIFY(any);
    }

    // Context parallelism is searched for long sequences only: Llama-2-7B on
    // two DGX H100 has cp in its space at 32,768 tokens (more candidates) and
    // not at 2,048; either way the best fits and beats every preset.
    void contextParallelSearched()
    {
        const Model m = load(PARTITA_TEST_DATA "/hf/llama-2-7b-hf.json");
        const Cluster c = *clusterPreset("dgx-h100:2");
        int64_t space[2] = {0, 0};
        for (int i = 0; i < 2; ++i) {
            const int64_t seq = i == 0 ? 2048 : 32768;
            SearchOptions o;
            o.global_batch = 16;
            o.seq_len = seq;
            o.exhaustive_limit = 0;
            o.max_evaluations = 600;
            o.budget_s = 60;
            o.threads = 2;
            auto r = searchStrategy(m, c, o);
            QVERIFY2(r, r ? "" : r.error().str().c_str());
            QVERIFY(!r->top.empty());
            space[i] = r->space_size;
            if (i == 0)
                for (const Candidate& cand : r->top)
                    QCOMPARE(cand.strategy.cp, 1);
            SimOptions so;
            so.seq_len = seq;
            auto check = simulate(m, c, r->best.strategy, so);
            QVERIFY2(check && !check->oom, check ? "out of memory" : check.error().str().c_str());
            QVERIFY(r->best.step_time < bestPreset(*r));
        }
        QVERIFY2(space[1] > 2 * space[0], qPrintable(QString("%1 vs %2 candidates").arg(space[1]).arg(space[0])));
    }

    // Megatron-LM's uneven first and last stages are a gene: GPT-2 medium's
    // LM head does the work of four blocks, so over two p3.16xlarge nodes
    // (25 Gb/s between them: a pipeline across) the search moves blocks off
    // the last stage, and that beats the same strategy split evenly.
    void unevenStagesSearched()
    {
        const Model m = load(PARTITA_TEST_DATA "/hf/gpt2-medium.json");
        const Cluster c = *clusterPreset("p3.16xlarge:2");
        SearchOptions o;
        o.global_batch = 64;
        o.exhaustive_limit = 0;
        o.max_evaluations = 3000;
        o.budget_s = 120;
        o.threads = 2;
        o.refine_layers = false;
        auto r = searchStrategy(m, c, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const Strategy& best = r->best.strategy;
        QCOMPARE(best.pp, 2);
        QVERIFY2(best.first_stage_blocks > best.last_stage_blocks && best.first_stage_blocks + best.last_stage_blocks == 24,
                 qPrintable(QString::fromStdString(r->best.explanation)));
        QVERIFY(QString::fromStdString(r->best.explanation).contains("blocks first"));
        Strategy even = best;
        even.first_stage_blocks = even.last_stage_blocks = 0;
        auto e = simulate(m, c, even, SimOptions{});
        QVERIFY2(e, e ? "" : e.error().str().c_str());
        QVERIFY2(r->best.step_time < e->step_time, qPrintable(QString("%1 s vs %2 s even").arg(r->best.step_time).arg(e->step_time)));
    }

    // FP8 changes what training computes: the search uses it only when
    // allowed, and only on devices that have it.
    void fp8OptIn_data()
    {
        QTest::addColumn<QString>("cluster");
        QTest::addColumn<bool>("allow");
        QTest::addColumn<bool>("fp8");
        QTest::newRow("H100, allowed") << "dgx-h100" << true << true;
        QTest::newRow("H100, not allowed") << "dgx-h100" << false << false;
        QTest::newRow("A100 has no FP8") << "dgx-a100-80gb" << true << false;
    }
    void fp8OptIn()
    {
        QFETCH(QString, cluster);
        QFETCH(bool, allow);
        QFETCH(bool, fp8);
        const Model m = load(PARTITA_TEST_DATA "/hf/llama-2-7b-hf.json");
        const Cluster c = *clusterPreset(cluster.toStdString());
        SearchOptions o;
        o.global_batch = 16;
        o.seq_len = 4096;
        o.exhaustive_limit = 0;
        o.max_evaluations = 400;
        o.budget_s = 60;
        o.threads = 2;
        o.refine_layers = false;
        o.allow_fp8 = allow;
        auto r = searchStrategy(m, c, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        bool any = false;
        for (const Candidate& cand : r->top)
            any |= cand.strategy.precision == Precision::FP8;
        QCOMPARE(any, fp8);
        QCOMPARE(r->best.strategy.precision == Precision::FP8, fp8);
    }

    // Candidates that do not fit or cannot be simulated are counted and
    // reported, never silently dropped: GPT-2 XL on 16 GB V100s leaves many
    // out of memory, the same number on every run.
    void outOfMemoryCounted()
    {
        const Model m = *loadModel(PARTITA_TEST_DATA "/hf/gpt2-xl.json");
        const Cluster c = *clusterPreset("p3.16xlarge");
        SearchOptions o;
        o.global_batch = 64;
        o.exhaustive_limit = 0;
        o.max_evaluations = 200;
        o.budget_s = 60;
        o.threads = 2;
        auto a = searchStrategy(m, c, o);
        auto b = searchStrategy(m, c, o);
        QVERIFY2(a && b, a ? "" : a.error().str().c_str());
        QVERIFY(a->out_of_memory > 0);
        QCOMPARE(a->out_of_memory, b->out_of_memory);
        QCOMPARE(a->failed, b->failed);
        int64_t listed = 0;
        for (const auto& [why, n] : a->failures)
            listed += n;
        QCOMPARE(listed, a->failed);
    }

    void deterministic()
    {
        const Model m = bert();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        SearchOptions o;
        o.global_batch = 256;
        o.precision = Precision::FP16;
        o.budget_s = 30;          // bounded by the evaluation cap below, not by time
        o.exhaustive_limit = 0;   // force the annealing path
        o.threads = 2;
        o.seed = 7;
        // Determinism must not depend on how fast the machine is: stop after a
        // fixed number of evaluations.
        o.max_evaluations = 300;
        auto a = searchStrategy(m, c, o);
        auto b = searchStrategy(m, c, o);
        QVERIFY(a && b);
        QCOMPARE(a->evaluated, b->evaluated);
        QVERIFY(a->evaluated >= 300 && a->evaluated < 310);
        QCOMPARE(a->best.step_time, b->best.step_time);
        QVERIFY(a->best.strategy == b->best.strategy);
    }

    void cancelReturnsBestSoFar()
    {
        const Model m = bert();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        std::atomic<bool> cancel{true};
        SearchOptions o;
        o.global_batch = 256;
        o.budget_s = 60;
        o.cancel = &cancel;
        auto r = searchStrategy(m, c, o);
        QVERIFY(r);
        QVERIFY(r->cancelled);
        // Cancelled before the first batch: only the presets were simulated.
        QVERIFY(!r->baselines.empty());
        QVERIFY(r->evaluated <= int64_t(r->baselines.size()));
        QVERIFY(r->best.step_time <= bestPreset(*r));
    }

    // On a space small enough to enumerate, annealing finds the same optimum
    // (of the global genes: per-layer refinement is not enumerable).
    void annealingFindsExhaustiveOptimum()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("g4dn.12xlarge");
        SearchOptions o;
        o.refine_layers = false;
        o.global_batch = 16;
        o.precision = Precision::FP16;
        o.exhaustive_limit = int64_t(1) << 40;
        o.budget_s = 600; // enumeration must finish
        auto exhaustive = searchStrategy(m, c, o);
        QVERIFY(exhaustive && exhaustive->exhaustive);
        o.exhaustive_limit = 0;
        o.budget_s = 6;
        auto annealed = searchStrategy(m, c, o);
        QVERIFY(annealed && !annealed->exhaustive);
        const double gap = annealed->best.step_time / exhaustive->best.step_time - 1;
        QVERIFY2(gap <= 1e-9, qPrintable(QString("gap %1 %").arg(100 * gap)));
    }

    // Per-layer refinement: on a mixture of experts over 50 GbE, coordinate
    // descent over layer classes improves on the best global candidate; the
    // refined strategy addresses each class by one glob and still validates.
    void perLayerRefinement()
    {
        const Model m = load(PARTITA_SOURCE_DIR "/tests/bench/search/moe-small.json");
        const Cluster c = *clusterPreset("g4dn.12xlarge:4");
        SearchOptions o;
        o.global_batch = 64;
        o.precision = Precision::FP16;
        o.exhaustive_limit = 0;
        o.budget_s = 60;
        o.max_evaluations = 4000; // the first refinement comes after 1,000 annealing steps
        auto r = searchStrategy(m, c, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const Candidate* refined = nullptr;
        double bestGlobal = INFINITY;
        for (const Candidate& cand : r->top) {
            if (cand.explanation.find("per layer:") != std::string::npos) {
                if (!refined)
                    refined = &cand;
            } else {
                bestGlobal = std::min(bestGlobal, cand.step_time);
            }
        }
        QVERIFY2(refined, "no refined candidate in the ranking");
        QVERIFY(refined->step_time < bestGlobal);
        QCOMPARE(r->best.step_time, refined->step_time);
        // Each override addresses its class in one pattern: a glob for a class
        // of several layers, the name of a class of one.
        QVERIFY(!refined->strategy.layers.empty());
        for (const LayerOverride& lo : refined->strategy.layers) {
            int matched = 0;
            for (const Layer& l : m.layers)
                matched += globMatch(lo.pattern, l.name);
            QVERIFY2(matched > 0, lo.pattern.c_str());
            QVERIFY2(matched == 1 || lo.pattern.find('*') != std::string::npos, lo.pattern.c_str());
        }
        auto sim = simulate(m, c, refined->strategy);
        QVERIFY2(sim, sim ? "" : sim.error().str().c_str());
        QCOMPARE(sim->step_time, refined->step_time);
        // The same strategy survives a round trip through its JSON file.
        auto back = strategyFromJson(strategyToJson(refined->strategy));
        QVERIFY(back && *back == refined->strategy);
    }

    void nothingFits()
    {
        const Model m = load(PARTITA_SOURCE_DIR "/tests/bench/megatron/gpt-175b.json");
        const Cluster c = *clusterPreset("g4dn.12xlarge");
        SearchOptions o;
        o.global_batch = 4;
        o.budget_s = 2;
        auto r = searchStrategy(m, c, o);
        QVERIFY(!r);
        QVERIFY(QString::fromStdString(r.error().message).contains("no strategy fits"));
    }
};

QTEST_APPLESS_MAIN(TestSearch)
#include "tst_search.moc"
