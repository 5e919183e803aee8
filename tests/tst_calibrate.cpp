// Fitting the cost model to a measured run (executor/calibrate.h): a run
// whose collectives took far longer than any link explains (ranks starved
// of CPU) keeps the link efficiency at the floor the calibration reader
// accepts, and says so; a plausible one is fitted as measured. On the runs
// measured on an H200 (tests/data/gpu/h200): every device record carries its
// plan op, and the memory efficiency fitted to a training step agrees with
// the one the GPU sweep measured with plain copies.
#include "storetest.h"
#include "testdata.h"
#include "partita/core/fileio.h"
#include "partita/executor/gpusweep.h"
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/plan.h"
#include "partita/core/simulator.h"
#include "partita/executor/calibrate.h"
#include "partita/executor/localmachine.h"

#include <nlohmann/json.hpp>

#include <QFile>
#include <QTemporaryDir>

#include <cmath>
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

    void h200Runs_data()
    {
        QTest::addColumn<qint64>("run");
        QTest::newRow("GPT-2 small, 8 x 1024") << qint64(2);
        QTest::newRow("a Llama-2-70B block, 1 x 4096") << qint64(8);
    }
    void h200Runs()
    {
        QFETCH(qint64, run);
        QTemporaryDir dir;
        const QString copy = dir.filePath("h200.partita"); // opening may upgrade the file: never the committed one
        QVERIFY(QFile::copy(partita::test::testData("gpu/h200/h200-runs.partita"), copy));
        auto store = openOrDie(copy.toStdString());
        auto info = store->run(run);
        QVERIFY2(info, info ? "" : info.error().str().c_str());
        QCOMPARE(info->kind, RunKind::Measured);
        int64_t records = 0, withOp = 0, withLayer = 0;
        auto each = store->forEachEvent(run, [&](const StoredEvent& e) {
            if (e.record.kind == TraceKind::Step)
                return;
            ++records;
            withOp += e.record.op >= 0;
            withLayer += e.record.layer >= 0;
        });
        QVERIFY(each);
        QVERIFY(records > 100);
        QCOMPARE(withOp, records);                  // every kernel, copy and memset: its plan op
        QVERIFY(records - withLayer <= records / 50); // all but the optimizer's: a layer
        const auto meta = nlohmann::json::parse(info->meta);
        auto planDoc = store->document(meta.at("plan_document").get<int64_t>());
        auto clusterDoc = store->document(info->cluster_id);
        QVERIFY(planDoc && clusterDoc);
        auto plan = planFromJson(planDoc->body, "plan");
        auto cluster = clusterFromJson(clusterDoc->body, "cluster");
        QVERIFY(plan && cluster);
        auto fit = fitCalibration(*store, run, *plan, *cluster, "h200");
        QVERIFY2(fit, fit ? "" : fit.error().str().c_str());
        QVERIFY(fit->gemm_ops > 0 && fit->memory_ops > 0);
        // The fit's curve is the one the simulator takes, and the measured unaligned factor stays.
        QCOMPARE(fit->calibration.matmulFor(std::string(precisionName(plan->precision))), fit->calibration.matmul);
        QCOMPARE(fit->calibration.unaligned_matmul_factor,
                 defaultCalibration(cluster->nodes[0].devices[0]).unaligned_matmul_factor);
        QVERIFY(fit->calibration.unaligned_matmul_factor < 1); // the H200's: measured
        // The sweep's copies and the step's memory-bound ops: the same GPU, within 10 % from 100 MB.
        auto sweepText = readTextFile(partita::test::testData("gpu/h200/sweep.json").toStdString());
        QVERIFY(sweepText);
        auto sweep = gpuSweepFromJson(*sweepText, "sweep.json");
        QVERIFY(sweep);
        auto swept = calibrationFromSweep(*sweep, cluster->nodes[0].devices[0]);
        QVERIFY2(swept, swept ? "" : swept.error().str().c_str());
        const auto& pts = fit->calibration.memory.points;
        int compared = 0;
        for (const auto& [mb, eff] : pts)
            if (mb >= 100) {
                const double s = swept->memory.at(mb);
                QVERIFY2(std::abs(eff / s - 1) < 0.10, qPrintable(QString("%1 MB: step %2, sweep %3").arg(mb).arg(eff).arg(s)));
                ++compared;
            }
        QVERIFY(compared > 0);
    }

    // A local CPU cluster predicted with this machine's calibration runs on
    // the figures the calibration was fitted against, shared as the ranks
    // share the cores; a calibration without them leaves the cluster as it is.
    void alignToReference_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<bool>("reference");
        QTest::newRow("no reference") << 2 << false;
        QTest::newRow("one rank") << 1 << true;
        QTest::newRow("more ranks than cores") << 4 * std::max(1, partita::detectLocalMachine().cpu.cores) << true;
    }
    void alignToReference()
    {
        QFETCH(int, ranks);
        QFETCH(bool, reference);
        using namespace partita;
        Cluster c;
        Node n;
        DeviceSpec d;
        d.kind = "cpu";
        d.peak_flops["fp32"] = 50e9;
        d.memory_bandwidth = 10e9;
        n.devices.assign(size_t(ranks), d);
        n.intra.bandwidth = 5e9;
        c.nodes.push_back(n);
        Calibration cal;
        if (reference) {
            cal.measured["reference_peak_flops"] = "100e9";
            cal.measured["reference_memory_bandwidth"] = "20e9";
            cal.measured["reference_link_bandwidth"] = "8e9";
        }
        const std::string said = alignToCalibration(c, cal);
        QCOMPARE(said.empty(), !reference);
        const double share = reference ? std::min(1.0, double(detectLocalMachine().cpu.cores) / ranks) : 0;
        const DeviceSpec& got = c.nodes.front().devices.back();
        QCOMPARE(got.peak_flops.at("fp32"), reference ? 100e9 * share : 50e9);
        QCOMPARE(got.memory_bandwidth, reference ? 20e9 * share : 10e9);
        QCOMPARE(c.nodes.front().intra.bandwidth, reference ? 8e9 * share : 5e9);
    }
};

QTEST_APPLESS_MAIN(TestCalibrate)
#include "tst_calibrate.moc"
