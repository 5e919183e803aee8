// Fitting the cost model to a measured run (executor/calibrate.h): a run
// whose collectives took far longer than any link explains (ranks starved
// of CPU) keeps the link efficiency at the floor the calibration reader
// accepts, and says so; a plausible one is fitted as measured.
#include "storetest.h"
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/plan.h"
#include "partita/core/simulator.h"
#include "partita/executor/calibrate.h"

#include <QTemporaryDir>
#include <QTest>

using namespace partita;
using partita::test::named;
using partita::test::openOrDie;

class TestCalibrate : public QObject
{
    Q_OBJECT
private slots:
    void linkEfficiency_data()
    {
        QTest::addColumn<double>("collectiveSeconds");
        QTest::addColumn<bool>("atFloor");
        QTest::newRow("plausible: 100 us for 1 MB") << 1e-4 << false;
        QTest::newRow("starved: 1,000 s for 1 MB") << 1e3 << true;
    }
    void linkEfficiency()
    {
        QFETCH(double, collectiveSeconds);
        QFETCH(bool, atFloor);
        auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2,
                                       "n_positions": 64, "vocab_size": 512})");
        QVERIFY(m);
        Cluster c = *clusterPreset("dgx-a100-80gb");
        c.nodes[0].devices.resize(2);
        Strategy s;
        s.dp = 2;
        s.global_batch = 2;
        auto plan = lowerPlan(*m, c, s, 64);
        QVERIFY2(plan, plan ? "" : plan.error().str().c_str());
        // Rank 0's gradient synchronization, measured as one collective of 1 MB.
        const RankClass* rc = rankClassOf(*plan, 0);
        QVERIFY(rc);
        int64_t syncOp = -1;
        for (size_t i = 0; i < rc->steps.size() && syncOp < 0; ++i)
            if (rc->steps[i].kind == StepKind::Sync)
                syncOp = int64_t(i) * 100000;
        QVERIFY(syncOp >= 0);
        Trace t;
        t.tracks = {{0, 0, "comm"}, {0, 1, "steps"}};
        TraceRecord coll{0, 0, 0, int64_t(collectiveSeconds * 1e9), TraceKind::Collective, "allreduce"};
        coll.op = syncOp;
        coll.bytes = 1 << 20;
        TraceRecord step{0, 1, 0, coll.dur_ns, TraceKind::Step, "step"};
        t.records = {coll, step};
        QTemporaryDir dir;
        auto store = openOrDie(dir.filePath("p.partita").toStdString());
        auto run = store->storeTrace(t, named("measured", RunKind::Measured));
        QVERIFY(run);
        auto fit = fitCalibration(*store, *run, *plan, c, "test");
        QVERIFY2(fit, fit ? "" : fit.error().str().c_str());
        QCOMPARE(fit->collectives, 1);
        const double eff = fit->calibration.intra_link_efficiency;
        QVERIFY(eff >= kMinLinkEfficiency && eff <= 1.0);
        QCOMPARE(eff == kMinLinkEfficiency, atFloor);
        bool said = false;
        for (const auto& n : fit->notes)
            said |= n.find("starved") != std::string::npos;
        QCOMPARE(said, atFloor);
        // What calibrate writes, its reader (and so simulate --calibration) accepts.
        auto back = calibrationFromJson(calibrationToJson(fit->calibration), "cal.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QCOMPARE(back->intra_link_efficiency, eff);
    }
};

QTEST_APPLESS_MAIN(TestCalibrate)
#include "tst_calibrate.moc"
