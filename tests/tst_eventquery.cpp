// profiler/eventquery: the events behind a figure. On HTA's alexnet trace
// the kernel rows of `trace stats` (analyzeRun) are found again, count and
// time; on a synthesized 4-rank run, the rows below pick by name, layer,
// class, rank and step, the earliest kept in order; bad steps are refused.
#include "partita/profiler/analysis.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/eventquery.h"
#include "partita/profiler/heatmap.h"
#include "storetest.h"
#include "synthranks.h"
#include "testdata.h"

#include <QTemporaryDir>
#include <QTest>

using namespace partita;

class TestEventQuery : public QObject
{
    Q_OBJECT
private slots:
    // Every kernel row of the stats, counted and timed as the stats do.
    void statsRowsFoundAgain()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {test::testData("hta/critical_path-alexnet.json.gz").toStdString()});
        QVERIFY(imp);
        AnalysisOptions o;
        o.drop_last_step = false;
        auto a = analyzeRun(*s, imp->run_id, o);
        QVERIFY(a && !a->kernels.empty());
        for (const KernelRow& k : a->kernels) {
            EventQuery q;
            q.name = k.name;
            q.device_only = true;
            q.limit = 3;
            auto m = findEvents(*s, imp->run_id, q);
            QVERIFY2(m, m ? "" : m.error().str().c_str());
            QVERIFY2(m->total == k.count, k.name.c_str());
            QCOMPARE(m->total_ns, k.total_ns);
            QCOMPARE(int64_t(m->events.size()), std::min<int64_t>(3, k.count));
            for (size_t i = 0; i < m->events.size(); ++i) {
                QCOMPARE(m->events[i].name, k.name);
                QVERIFY(m->events[i].end_ns - m->events[i].start_ns >= k.min_ns);
                if (i > 0)
                    QVERIFY(m->events[i - 1].start_ns <= m->events[i].start_ns);
            }
        }
    }

    void picks_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("layer");
        QTest::addColumn<int>("cls"); // -1: any
        QTest::addColumn<int>("rank");
        QTest::addColumn<int>("step");
        QTest::addColumn<qint64>("total");
        // The pattern: 3 layers, 2 steps, per layer and step a forward GEMM,
        // an elementwise kernel, a backward GEMM and an all-reduce.
        QTest::newRow("a name, every rank") << "ampere_sgemm_64x64_nt" << -1 << -1 << -1 << -1 << qint64(4 * 3 * 2);
        QTest::newRow("a name on a rank") << "ampere_sgemm_64x64_nt" << -1 << -1 << 2 << -1 << qint64(3 * 2);
        QTest::newRow("a layer in a step") << "" << 1 << -1 << 0 << 1 << qint64(4);
        QTest::newRow("communication") << "" << -1 << int(KernelClass::Communication) << -1 << -1 << qint64(4 * 3 * 2);
        QTest::newRow("computation on a rank in a step") << "" << -1 << int(KernelClass::Computation) << 3 << 0 << qint64(3 * 3);
        QTest::newRow("no such name") << "nccl" << -1 << -1 << -1 << -1 << qint64(0);
    }
    void picks()
    {
        QFETCH(QString, name);
        QFETCH(int, layer);
        QFETCH(int, cls);
        QFETCH(int, rank);
        QFETCH(int, step);
        QFETCH(qint64, total);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = 4;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(3, 2), o);
        QVERIFY(run);
        EventQuery q;
        q.name = name.toStdString();
        if (layer >= 0)
            q.layer = layer;
        if (cls >= 0)
            q.cls = KernelClass(cls);
        if (rank >= 0)
            q.rank = rank;
        if (step >= 0)
            q.step = step;
        q.limit = 5;
        auto m = findEvents(*s, run->run_id, q);
        QVERIFY2(m, m ? "" : m.error().str().c_str());
        QCOMPARE(m->total, total);
        QCOMPARE(int64_t(m->events.size()), std::min<int64_t>(5, total));
        for (const FoundEvent& e : m->events) {
            if (!name.isEmpty())
                QCOMPARE(QString::fromStdString(e.name), name);
            if (layer >= 0)
                QCOMPARE(e.layer, layer);
            if (rank >= 0)
                QCOMPARE(e.rank, rank);
            if (cls >= 0)
                QCOMPARE(int(classifyKernel(e.name, e.kind)), cls);
        }
        // A step's events lie inside the heat map's cell for it.
        if (step >= 0 && rank >= 0) {
            auto map = rankHeatMap(*s, run->run_id);
            QVERIFY(map);
            const HeatCell& c = map->rows[size_t(rank)].cells[size_t(step)];
            for (const FoundEvent& e : m->events)
                QVERIFY(e.start_ns >= c.start_ns && e.start_ns < c.end_ns);
        }
    }

    void refusals_data()
    {
        QTest::addColumn<qint64>("run");
        QTest::addColumn<int>("step");
        QTest::addColumn<QString>("error");
        QTest::newRow("no such run") << qint64(9) << -1 << "run 9";
        QTest::newRow("a step no rank has") << qint64(1) << 5 << "no rank has step 5 (counting from 0; the most a rank has is 2)";
    }
    void refusals()
    {
        QFETCH(qint64, run);
        QFETCH(int, step);
        QFETCH(QString, error);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = 2;
        QVERIFY(test::synthesizeRanks(*s, test::dataParallelPattern(2, 2), o));
        EventQuery q;
        if (step >= 0)
            q.step = step;
        auto m = findEvents(*s, run, q);
        QVERIFY(!m);
        QVERIFY2(QString::fromStdString(m.error().str()).contains(error), m.error().str().c_str());
    }
};

QTEST_GUILESS_MAIN(TestEventQuery)
#include "tst_eventquery.moc"
