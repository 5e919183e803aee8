// profiler/heatmap: per rank and step, the step time, compute, exposed
// communication and idle time. Written traces give exact figures (the rows
// below: kernels cut at a step's end, communication hidden under compute,
// overlapping step annotations, a run without steps); a synthesized 8-rank
// data-parallel run shows its slow rank as the one that computes longest
// while the others' exposed communication grows by as much; on HTA's test
// traces the one-column map of a run without steps agrees with `trace
// stats`' temporal breakdown.
#include "partita/profiler/analysis.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/heatmap.h"
#include "storetest.h"
#include "synthranks.h"
#include "testdata.h"

#include <QTemporaryDir>
#include <QTest>

#include <fstream>

using namespace partita;

namespace {

// A Kineto-like trace: steps on the host thread, kernels on stream 7 (compute) and 20 (NCCL), times in µs.
struct K
{
    const char* name;
    int tid, ts, dur;
};
std::string trace(const std::vector<std::pair<int, int>>& steps, const std::vector<K>& kernels)
{
    std::string out = R"({"traceEvents": [)";
    bool first = true;
    auto add = [&](const std::string& e) {
        out += (first ? "" : ",") + e;
        first = false;
    };
    for (size_t i = 0; i < steps.size(); ++i)
        add(R"({"ph":"X","cat":"user_annotation","name":"ProfilerStep#)" + std::to_string(i) + R"(","pid":1,"tid":1,"ts":)" +
            std::to_string(steps[i].first) + R"(,"dur":)" + std::to_string(steps[i].second) + "}");
    for (const K& k : kernels)
        add(R"({"ph":"X","cat":"kernel","name":")" + std::string(k.name) + R"(","pid":0,"tid":)" + std::to_string(k.tid) +
            R"(,"ts":)" + std::to_string(k.ts) + R"(,"dur":)" + std::to_string(k.dur) + R"(,"args":{"device":0,"stream":)" +
            std::to_string(k.tid) + "}}");
    return out + "]}";
}

using Cells = std::vector<std::array<int64_t, 5>>; // start, end, compute, exposed comm, idle (µs)

} // namespace

Q_DECLARE_METATYPE(Cells)

class TestHeatMap : public QObject
{
    Q_OBJECT
private slots:
    void exact_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<Cells>("cells");
        const char* gemm = "ampere_sgemm_128x64_tn";
        const char* nccl = "ncclDevKernel_AllReduce_Sum_f32_RING_LL";
        QTest::newRow("kernels inside steps") << QString::fromStdString(trace({{0, 100}, {100, 100}},
                                                                             {{gemm, 7, 10, 30}, {nccl, 20, 50, 20}, {gemm, 7, 110, 80}}))
                                              << Cells{{0, 100, 30, 20, 50}, {100, 200, 80, 0, 20}};
        QTest::newRow("a kernel across a step's end counts in both")
            << QString::fromStdString(trace({{0, 100}, {100, 100}}, {{gemm, 7, 80, 40}, {nccl, 20, 150, 10}}))
            << Cells{{0, 100, 20, 0, 80}, {100, 200, 20, 10, 70}};
        QTest::newRow("communication under compute is hidden")
            << QString::fromStdString(trace({{0, 100}}, {{gemm, 7, 0, 60}, {nccl, 20, 40, 40}, {"Memcpy DtoH", 7, 90, 5}}))
            << Cells{{0, 100, 60, 20, 15}}; // the copy: other, 5 µs
        QTest::newRow("overlapping annotations cut where the last ended")
            << QString::fromStdString(trace({{0, 100}, {90, 60}}, {{gemm, 7, 95, 10}}))
            << Cells{{0, 100, 5, 0, 95}, {100, 150, 5, 0, 45}};
        QTest::newRow("no steps: one column, the span") << QString::fromStdString(trace({}, {{gemm, 7, 10, 30}, {nccl, 20, 60, 20}}))
                                                        << Cells{{10, 80, 30, 20, 20}};
    }
    void exact()
    {
        QFETCH(QString, text);
        QFETCH(Cells, cells);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = test::importText(*s, dir, text.toStdString());
        auto map = rankHeatMap(*s, run);
        QVERIFY2(map, map ? "" : map.error().str().c_str());
        QCOMPARE(int(map->rows.size()), 1);
        QCOMPARE(map->by_step, text.contains("ProfilerStep"));
        QCOMPARE(map->columns, int64_t(cells.size()));
        const std::vector<HeatCell>& got = map->rows.front().cells;
        QCOMPARE(got.size(), cells.size());
        for (size_t i = 0; i < cells.size(); ++i) {
            const QString at = QString("cell %1").arg(i);
            QVERIFY2(got[i].start_ns == cells[i][0] * 1000, qPrintable(at + QString(": start %1").arg(got[i].start_ns)));
            QVERIFY2(got[i].end_ns == cells[i][1] * 1000, qPrintable(at + QString(": end %1").arg(got[i].end_ns)));
            QVERIFY2(got[i].compute_ns == cells[i][2] * 1000, qPrintable(at + QString(": compute %1").arg(got[i].compute_ns)));
            QVERIFY2(got[i].exposed_comm_ns == cells[i][3] * 1000,
                     qPrintable(at + QString(": exposed %1").arg(got[i].exposed_comm_ns)));
            QVERIFY2(got[i].idle_ns == cells[i][4] * 1000, qPrintable(at + QString(": idle %1").arg(got[i].idle_ns)));
            QVERIFY(got[i].other_ns() >= 0);
        }
    }

    // A data-parallel run with one slow rank: its step times match the
    // others' (the all-reduce evens them out), its compute does not.
    void slowRank_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<int>("slowRank");
        QTest::addColumn<qint64>("skewNs");
        QTest::newRow("8 ranks, rank 5 slow") << 8 << 5 << qint64(0);
        QTest::newRow("8 ranks, rank 0 slow, clocks skewed") << 8 << 0 << qint64(400'000);
        QTest::newRow("3 ranks, rank 2 slow") << 3 << 2 << qint64(50'000);
    }
    void slowRank()
    {
        QFETCH(int, ranks);
        QFETCH(int, slowRank);
        QFETCH(qint64, skewNs);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = ranks;
        o.slow_rank = slowRank;
        o.slow_kernel = "ampere_sgemm_64x64_nt";
        o.slow_factor = 1.5;
        o.max_skew_ns = skewNs;
        o.jitter = 0.01;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(6, 4), o);
        QVERIFY(run);
        auto map = rankHeatMap(*s, run->run_id);
        QVERIFY2(map, map ? "" : map.error().str().c_str());
        QCOMPARE(int(map->rows.size()), ranks);
        QCOMPARE(map->columns, int64_t(4));
        QVERIFY(map->by_step);
        for (int64_t c = 0; c < map->columns; ++c) {
            const QString where = QString("step %1").arg(c);
            const int64_t stepMedian = map->columnMedian(c, HeatMetric::Step);
            const int64_t exposedMedian = map->columnMedian(c, HeatMetric::ExposedComm);
            for (const HeatRow& r : map->rows) {
                const HeatCell& cell = r.cells[size_t(c)];
                // Step times within a few per cent of each other.
                QVERIFY2(std::abs(cell.step_ns() - stepMedian) < stepMedian / 20, qPrintable(where));
                if (r.rank == slowRank)
                    continue;
                const HeatCell& slow = map->rows[size_t(slowRank)].cells[size_t(c)];
                // The backward GEMMs (6 x 240 µs) 1.5 times as long: 720 µs more compute on the slow rank ...
                QVERIFY2(slow.compute_ns - cell.compute_ns > 600'000, qPrintable(where + QString(" rank %1").arg(r.rank)));
                // ... which the others spend waiting inside the all-reduce.
                QVERIFY2(cell.exposed_comm_ns - slow.exposed_comm_ns > 500'000, qPrintable(where + QString(" rank %1").arg(r.rank)));
                QVERIFY(cell.exposed_comm_ns >= exposedMedian * 9 / 10);
            }
            // Sorted by compute above the median, the slow rank comes first in every step.
            const auto top = heatOutliers(*map, HeatMetric::Compute, size_t(map->columns));
            QCOMPARE(int(top.size()), int(map->columns));
            for (const HeatOutlier& out : top)
                QCOMPARE(out.rank, slowRank);
        }
    }

    // On a real trace without steps, the one column is the temporal
    // breakdown `trace stats` gives (kept whole: no step to drop).
    void agreesWithStats_data()
    {
        QTest::addColumn<QString>("file");
        QTest::newRow("alexnet") << "hta/critical_path-alexnet.json.gz";
        QTest::newRow("simple_add") << "hta/critical_path-simple_add.json.gz";
        QTest::newRow("multi_stream") << "hta/critical_path-cuda_event_sync_multi_stream.json.gz";
    }
    void agreesWithStats()
    {
        QFETCH(QString, file);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {test::testData(file).toStdString()});
        QVERIFY2(imp, imp ? "" : imp.error().str().c_str());
        auto map = rankHeatMap(*s, imp->run_id);
        QVERIFY2(map, map ? "" : map.error().str().c_str());
        AnalysisOptions opts;
        opts.drop_last_step = false;
        auto stats = analyzeRun(*s, imp->run_id, opts);
        QVERIFY(stats);
        QCOMPARE(map->rows.size(), stats->ranks.size());
        QVERIFY(!map->by_step);
        for (size_t i = 0; i < map->rows.size(); ++i) {
            QCOMPARE(int(map->rows[i].cells.size()), 1);
            const HeatCell& c = map->rows[i].cells.front();
            const TemporalBreakdown& t = stats->ranks[i].temporal;
            QVERIFY(t.span_ns > 0);
            QCOMPARE(c.step_ns(), t.span_ns);
            QCOMPARE(c.compute_ns, t.compute_ns);
            QCOMPARE(c.idle_ns, t.idle_ns);
            QVERIFY(c.exposed_comm_ns <= t.non_compute_ns);
        }
    }

    // Each group's busy shares are its ranks' (1 - idle / step time): the
    // least busy rank named, the median between; ranks beyond the mesh apart.
    void groupBusyShares_data()
    {
        QTest::addColumn<QString>("mesh");
        QTest::addColumn<int>("axis");
        QTest::addColumn<int>("groups");
        QTest::newRow("tensor groups of 2") << "dp=2,tp=2,pp=2" << int(MeshAxis::Tensor) << 4;
        QTest::newRow("pipelines of 2") << "dp=2,tp=2,pp=2" << int(MeshAxis::Pipeline) << 4;
        QTest::newRow("a mesh of 6: two ranks beyond it") << "dp=3,tp=2" << int(MeshAxis::Data) << 3;
    }
    void groupBusyShares()
    {
        QFETCH(QString, mesh);
        QFETCH(int, axis);
        QFETCH(int, groups);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = 8;
        o.slow_rank = 3;
        o.slow_kernel = "ampere_sgemm_64x64_nt";
        o.slow_factor = 2.0;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(3, 2), o);
        QVERIFY(run);
        auto map = rankHeatMap(*s, run->run_id);
        QVERIFY(map);
        const auto m = parseMesh(mesh.toStdString());
        QVERIFY(m);
        const auto busy = groupBusy(*map, *m, MeshAxis(axis));
        QCOMPARE(int(busy.size()), groups);
        int ranks = 0;
        for (const GroupBusy& g : busy) {
            ranks += int(g.ranks.size());
            double least = 1, most = 0;
            int32_t leastRank = -1;
            for (int32_t r : g.ranks) {
                QCOMPARE(meshPlace(*m, MeshAxis(axis), r).group, g.group);
                const double b = busyShare(map->rows[size_t(r)]);
                if (b < least) {
                    least = b;
                    leastRank = r;
                }
                most = std::max(most, b);
            }
            QCOMPARE(g.least, least);
            QCOMPARE(g.most, most);
            QCOMPARE(g.least_busy_rank, leastRank);
            QVERIFY(g.least <= g.median && g.median <= g.most && g.least > 0 && g.most < 1);
        }
        QCOMPARE(ranks, 8);
    }

    // A rank without device events (a CPU trace) is marked and said: its
    // cells read as idle, which says nothing of its work.
    void hostOnlyRanks()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("h.partita").toStdString());
        const int64_t run = test::storeEvents(*s, {
                                                      {0, 0, false, TraceKind::Step, "ProfilerStep#0", 0, 100},
                                                      {0, 7, true, TraceKind::Kernel, "ampere_sgemm_128x64_tn", 10, 50},
                                                      {1, 0, false, TraceKind::Step, "ProfilerStep#0", 0, 100},
                                                      {1, 1, false, TraceKind::CpuOp, "aten::mm", 10, 80},
                                                  });
        auto map = rankHeatMap(*s, run);
        QVERIFY2(map, map ? "" : map.error().str().c_str());
        QCOMPARE(map->rows.size(), size_t(2));
        QVERIFY(map->rows[0].device);
        QVERIFY(!map->rows[1].device);
        QCOMPARE(map->rows[0].cells.front().compute_ns, qint64(50'000));
        QCOMPARE(map->rows[1].cells.front().idle_ns, qint64(100'000));
        QVERIFY(std::any_of(map->notes.begin(), map->notes.end(),
                            [](const std::string& n) { return n.rfind("rank 1 has no device events (a CPU trace)", 0) == 0; }));
    }

    void missingRun()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto map = rankHeatMap(*s, 42);
        QVERIFY(!map);
        QVERIFY2(QString::fromStdString(map.error().str()).contains("42"), map.error().str().c_str());
    }
};

QTEST_GUILESS_MAIN(TestHeatMap)
#include "tst_heatmap.moc"
