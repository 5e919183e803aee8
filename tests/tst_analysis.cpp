// Trace analysis: kernel classes, what HTA lacks (traces without kernels,
// per-layer attribution, stragglers), the diff of PyTorch traces recorded on
// this CPU; apart (tst_analysis_third_party), HTA's own figures on HTA's
// traces and HTA's asserted diff facts.
#include "storetest.h"
#include "testdata.h"
#include "testmain.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include <QTemporaryDir>
#include <QTest>

#include <cmath>

using namespace partita;
using partita::test::named;
using partita::test::openOrDie;
using partita::test::thirdParty;
using partita::test::torchFacts;
using partita::test::torchTraces;

namespace {

int64_t importOrDie(TraceStore& s, const QString& path)
{
    auto r = importChromeTrace(s, {path.toStdString()});
    if (!r)
        qFatal("%s", r.error().str().c_str());
    return r->run_id;
}


} // namespace

class TestAnalysis : public QObject
{
    Q_OBJECT
private slots:
    // PyTorch's profiler on this CPU, one rank vs two under DDP: the ops the
    // diff calls added and deleted are the names Python's json module finds
    // in one trace and not the other.
    void recordedDiff()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t one = importOrDie(*s, torchTraces() + "/one/traces/rank0.json");
        const int64_t two = importOrDie(*s, torchTraces() + "/two/traces/rank0.json");
        const QJsonObject a = torchFacts("one", 0)["names"].toObject();
        const QJsonObject b = torchFacts("two", 0)["names"].toObject();
        std::vector<std::string> added, deleted;
        for (const QString& n : b.keys())
            if (!a.contains(n))
                added.push_back(n.toStdString());
        for (const QString& n : a.keys())
            if (!b.contains(n))
                deleted.push_back(n.toStdString());
        QVERIFY(std::find(added.begin(), added.end(), "gloo:all_reduce") != added.end());
        DiffOptions o;
        o.scope = DiffScope::Cpu;
        auto d = diffRuns(*s, one, two, o);
        QVERIFY2(d, d ? "" : d.error().str().c_str());
        std::map<std::string, std::vector<std::string>> byChange;
        for (const auto& r : d->ops)
            byChange[r.change].push_back(r.name);
        std::sort(added.begin(), added.end());
        std::sort(deleted.begin(), deleted.end());
        QCOMPARE(byChange["added"], added);
        QCOMPARE(byChange["deleted"], deleted);
        // A CPU-only trace has no kernels: empty breakdowns and a note, no failure.
        auto an = analyzeRun(*s, two);
        QVERIFY2(an, an ? "" : an.error().str().c_str());
        QVERIFY(!an->notes.empty());
    }

    void classes_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("kind");
        QTest::addColumn<int>("cls");
        const int k = int(TraceKind::Kernel);
        QTest::newRow("nccl kernel") << "ncclKernel_AllReduce_RING_LL_Sum_float(ncclWorkElem)" << k << int(KernelClass::Communication);
        QTest::newRow("nccl device") << "ncclDevKernel_AllGather_RING_LL(ncclDevComm*)" << k << int(KernelClass::Communication);
        QTest::newRow("memcpy") << "Memcpy HtoD (Pinned -> Device)" << k << int(KernelClass::Memory);
        QTest::newRow("gemm") << "volta_sgemm_128x32_nn" << k << int(KernelClass::Computation);
        QTest::newRow("sync") << "Context Sync" << k << int(KernelClass::Other);
        QTest::newRow("predicted collective") << "allreduce bucket 3" << int(TraceKind::Collective) << int(KernelClass::Communication);
        QTest::newRow("predicted compute") << "fwd layer 3" << int(TraceKind::Compute) << int(KernelClass::Computation);
        QTest::newRow("memset kind") << "anything" << int(TraceKind::Memset) << int(KernelClass::Memory);
    }
    void classes()
    {
        QFETCH(QString, name);
        QFETCH(int, kind);
        QFETCH(int, cls);
        QCOMPARE(int(classifyKernel(name.toStdString(), TraceKind(kind))), cls);
    }

    // HTA fails on traces with no GPU kernels; Partita reports empty breakdowns.
    void noKernels()
    {
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        Trace t;
        TraceRecord r;
        r.kind = TraceKind::CpuOp;
        r.name = "aten::mm";
        r.dur_ns = 10;
        t.records.push_back(r);
        RunInfo info;
        info.name = "cpu only";
        auto w = s->beginRun(info);
        QVERIFY(w);
        auto tr = (*w)->track(0, 0, "main thread", false);
        QVERIFY(tr && (*w)->add(*tr, r) && (*w)->finish());
        auto a = analyzeRun(*s, (*w)->runId());
        QVERIFY2(a, a ? "" : a.error().str().c_str());
        QCOMPARE(a->ranks.front().temporal.span_ns, int64_t(0));
        QVERIFY(!a->notes.empty());
    }

    // Predicted-style runs: per-layer attribution, stragglers across ranks,
    // and the diff by layer and rank.
    void layersAndStragglers()
    {
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto make = [](double slowRank1) {
            Trace t;
            for (int rank = 0; rank < 4; ++rank) {
                t.tracks.push_back({rank, 0, "compute"});
                t.tracks.push_back({rank, 1, "comm"});
                const int64_t scale = rank == 1 ? int64_t(slowRank1 * 1000) : 1000;
                int64_t clock = 0;
                for (int step = 0; step < 3; ++step) {
                    const int64_t stepStart = clock;
                    for (int layer = 0; layer < 4; ++layer) {
                        TraceRecord c{rank, 0, clock, 100 * scale, TraceKind::Compute, "fwd", layer};
                        t.records.push_back(c);
                        clock += 100 * scale;
                    }
                    TraceRecord comm{rank, 1, clock - 150 * scale, 200 * 1000, TraceKind::Collective, "allreduce", 3};
                    t.records.push_back(comm);
                    clock += 60 * 1000;
                    TraceRecord st{rank, 2, stepStart, clock - stepStart, TraceKind::Step, "step"};
                    t.records.push_back(st);
                }
            }
            return t;
        };
        auto a = s->storeTrace(make(1.0), named("even", RunKind::Predicted));
        auto b = s->storeTrace(make(1.3), named("rank 1 slow", RunKind::Predicted));
        QVERIFY(a && b);
        auto ra = analyzeRun(*s, *a);
        auto rb = analyzeRun(*s, *b);
        QVERIFY(ra && rb);
        QCOMPARE(int(ra->layers.size()), 4);
        QCOMPARE(ra->layers[0].compute_ns, int64_t(4 * 3 * 100 * 1000)); // 4 ranks x 3 steps: one step name, none dropped
        QVERIFY(ra->layers[3].comm_ns > 0);
        QVERIFY(ra->stragglers.empty());
        QCOMPARE(int(rb->stragglers.size()), 1);
        QCOMPARE(rb->stragglers.front().rank, 1);
        QVERIFY(rb->stragglers.front().excess_pct > 20);
        QVERIFY(ra->ranks.front().comm_comp_overlap_pct.has_value());
        auto d = diffRuns(*s, *a, *b);
        QVERIFY(d);
        QCOMPARE(int(d->ranks.size()), 4);
        QCOMPARE(int(d->layers.size()), 4);
        QVERIFY(d->layers[0].b_ns > d->layers[0].a_ns);
    }
};

class TestAnalysisThirdParty : public QObject
{
    Q_OBJECT
private slots:
    // HTA's figures (shared/data/traces/README.md): idle, compute,
    // non-compute %, comm/comp overlap % (-1: none).
    void htaFigures_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<double>("idle");
        QTest::addColumn<double>("compute");
        QTest::addColumn<double>("nonCompute");
        QTest::addColumn<double>("overlap");
        QTest::newRow("nccl_parser_config") << "nccl_parser_config-nccl_data.json.gz" << 77.78 << 17.26 << 4.97 << 14.31;
        QTest::newRow("trace_diff control") << "trace_diff-control-control.json.gz" << 16.20 << 61.23 << 22.57 << 47.03;
        QTest::newRow("trace_diff test") << "trace_diff-test-test.json.gz" << 7.47 << 68.31 << 24.23 << 68.80;
        QTest::newRow("trace_compare base") << "trace_compare-base-base.json.gz" << 0.0 << 100.0 << 0.0 << -1.0;
        QTest::newRow("trace_compare test") << "trace_compare-test-test.json.gz" << 0.0 << 100.0 << 0.0 << -1.0;
    }
    void htaFigures()
    {
        QFETCH(QString, file);
        QFETCH(double, idle);
        QFETCH(double, compute);
        QFETCH(double, nonCompute);
        QFETCH(double, overlap);
        PARTITA_REQUIRE_THIRD_PARTY("traces/" + file);
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = importOrDie(*s, thirdParty("traces/" + file));
        // With HTA's whole-microsecond reading: HTA's numbers to the hundredth.
        AnalysisOptions hta;
        hta.hta_rounding = true;
        auto a = analyzeRun(*s, run, hta);
        QVERIFY2(a, a ? "" : a.error().str().c_str());
        QCOMPARE(int(a->ranks.size()), 1);
        const RankAnalysis& r = a->ranks.front();
        QCOMPARE(r.temporal.idle_pct, idle);
        QCOMPARE(r.temporal.compute_pct, compute);
        QCOMPARE(r.temporal.non_compute_pct, nonCompute);
        if (overlap < 0)
            QVERIFY(!r.comm_comp_overlap_pct);
        else
            QCOMPARE(*r.comm_comp_overlap_pct, overlap);
        QVERIFY(a->dropped_last_step);
        // At nanosecond precision (the default) within a point of HTA.
        auto ns = analyzeRun(*s, run);
        QVERIFY(ns);
        QVERIFY(std::fabs(ns->ranks.front().temporal.idle_pct - idle) < 1.0);
        QVERIFY(std::fabs(ns->ranks.front().temporal.compute_pct - compute) < 1.0);
        QVERIFY(std::abs(r.temporal.idle_pct + r.temporal.compute_pct + r.temporal.non_compute_pct - 100) < 0.05);
    }

    // HTA's TraceDiff test facts on iteration 1010, rank 1, CPU operators.
    void opsDiffFacts()
    {
        PARTITA_REQUIRE_THIRD_PARTY("traces/trace_compare-base-base.json.gz");
        PARTITA_REQUIRE_THIRD_PARTY("traces/trace_compare-test-test.json.gz");
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t base = importOrDie(*s, thirdParty("traces/trace_compare-base-base.json.gz"));
        const int64_t test = importOrDie(*s, thirdParty("traces/trace_compare-test-test.json.gz"));
        DiffOptions o;
        o.iteration = 1010;
        o.scope = DiffScope::Cpu;
        auto d = diffRuns(*s, base, test, o);
        QVERIFY2(d, d ? "" : d.error().str().c_str());
        QCOMPARE(d->rank_a, 1);
        QCOMPARE(d->iteration_a, int64_t(1010));
        std::map<std::string, std::vector<std::string>> byChange;
        std::map<std::string, OpsDiffRow> rows;
        for (const auto& r : d->ops) {
            byChange[r.change].push_back(r.name);
            rows[r.name] = r;
        }
        QCOMPARE(byChange["added"], (std::vector<std::string>{"AddmmBackward0", "All2All_Pooled_Req", "CatBackward0"}));
        QCOMPARE(byChange["deleted"], (std::vector<std::string>{"nccl:all_reduce"}));
        QCOMPARE(byChange["unchanged"], (std::vector<std::string>{"ProfilerStep#1010", "aten::as_strided", "aten::empty",
                                                                  "cudaEventQuery", "cudaLaunchKernel"}));
        // Base: 6 CPU events in iteration 1010, with HTA's durations (us).
        int64_t count = 0;
        for (const auto& r : d->ops)
            count += r.a_count;
        QCOMPARE(count, int64_t(6));
        QCOMPARE(rows["ProfilerStep#1010"].a_ns, int64_t(122149000));
        QCOMPARE(rows["cudaEventQuery"].a_ns, int64_t(4000));
        QCOMPARE(rows["cudaLaunchKernel"].a_ns, int64_t(4000));
        QCOMPARE(rows["nccl:all_reduce"].a_ns, int64_t(67000));
        // And 1 GPU event in that iteration (launched in it).
        o.scope = DiffScope::Gpu;
        auto g = diffRuns(*s, base, test, o);
        QVERIFY(g);
        int64_t gpu = 0;
        for (const auto& r : g->ops)
            gpu += r.a_count;
        QCOMPARE(gpu, int64_t(1));
        // Steps aligned by index: 1009 and 1010.
        QCOMPARE(int(d->steps.size()), 2);
        QCOMPARE(d->steps[1].a_ns, int64_t(122149000));
    }
};

PARTITA_TEST_SPLIT_APPLESS_MAIN(TestAnalysis, TestAnalysisThirdParty, "--third-party")
#include "tst_analysis.moc"
