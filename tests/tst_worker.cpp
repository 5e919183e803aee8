// The worker engine on the CPU backend, one rank without MPI: every plan op
// runs exactly once per measured step with the plan's shapes, steps are
// traced, bad plans and options are refused. Several ranks under mpirun are
// tested through the launcher (tst_launcher).
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/plan.h"
#include "partita/executor/worker.h"

#include <QTest>

#include <map>
#include <set>

using namespace partita;

namespace {

// A GPT-2 small enough for a CPU test: 2 layers, hidden 64, 64 tokens.
Model tinyGpt()
{
    auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2,
                                   "n_positions": 64, "vocab_size": 512})", "tiny-gpt2");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

Cluster oneDevice()
{
    auto c = clusterFromJson(R"({"partita_cluster": 1, "name": "one device",
                                 "nodes": [{"devices": [{"preset": "a100-sxm4-80gb"}]}]})", "one.json");
    if (!c)
        qFatal("%s", c.error().str().c_str());
    return *c;
}

Plan tinyPlan(int devicesOrZero = 0)
{
    const Model m = tinyGpt();
    const Cluster c = devicesOrZero ? *clusterPreset("dgx-a100-80gb") : oneDevice();
    PresetOptions po;
    po.global_batch = devicesOrZero ? devicesOrZero * 2 : 2;
    po.micro_batch = 1;
    auto s = strategyPreset("ddp", m, c, po);
    if (!s)
        qFatal("%s", s.error().str().c_str());
    auto p = lowerPlan(m, c, *s, 64);
    if (!p)
        qFatal("%s", p.error().str().c_str());
    return *p;
}

} // namespace

class TestWorker : public QObject
{
    Q_OBJECT
private slots:
    void everyOpOncePerStep_data()
    {
        QTest::addColumn<int>("steps");
        QTest::addColumn<double>("scale");
        QTest::newRow("plan shapes, 2 steps") << 2 << 1.0;
        QTest::newRow("half shapes, 3 steps") << 3 << 0.5;
    }
    void everyOpOncePerStep()
    {
        QFETCH(int, steps);
        QFETCH(double, scale);
        const Plan plan = tinyPlan();
        QCOMPARE(plan.world, 1);
        // The ops a step must run: every non-collective kernel of every Run step, and the optimizer.
        std::set<int64_t> expected;
        const RankClass& rc = plan.classes.front();
        for (size_t si = 0; si < rc.steps.size(); ++si) {
            const Step& st = rc.steps[si];
            if (st.kind == StepKind::Run) {
                const auto& ks = plan.programs[size_t(st.program)].kernels;
                for (size_t ki = 0; ki < ks.size(); ++ki)
                    if (ks[ki].kind != KernelKind::Collective)
                        expected.insert(planOpId(int(si), int(ki)));
            } else if (st.kind == StepKind::Optimizer) {
                expected.insert(planOpId(int(si), 0));
            }
        }
        QVERIFY(expected.size() > 10);
        WorkerOptions o;
        o.steps = steps;
        o.warmup = 1;
        o.shape_scale = scale;
        int progress = 0;
        o.progress = [&](int, bool, double s) {
            QVERIFY(s > 0);
            ++progress;
        };
        auto r = runCpuWorker(plan, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(progress, steps + 1);
        QCOMPARE(int(r->step_s.size()), steps);
        QCOMPARE(r->shape_scale, scale);
        QCOMPARE(r->ops_per_step, int64_t(expected.size()));
        QVERIFY(r->complete);
        std::map<int64_t, int> seen;
        int stepRecords = 0;
        for (const TraceRecord& t : r->trace.records) {
            if (t.kind == TraceKind::Step) {
                ++stepRecords;
                continue;
            }
            QVERIFY(t.dur_ns > 0);
            ++seen[t.op];
        }
        QCOMPARE(stepRecords, steps);
        QCOMPARE(seen.size(), expected.size());
        for (const auto& [op, n] : seen) {
            QVERIFY(expected.count(op));
            QCOMPARE(n, steps);
        }
        // Kernels carry their layer; records of one step lie inside its step record.
        QVERIFY(std::any_of(r->trace.records.begin(), r->trace.records.end(),
                            [](const TraceRecord& t) { return t.layer >= 0 && t.flops > 0; }));
    }

    void refusals_data()
    {
        QTest::addColumn<int>("devices");
        QTest::addColumn<double>("scale");
        QTest::addColumn<int>("steps");
        QTest::addColumn<QString>("message");
        QTest::newRow("8 ranks") << 8 << 1.0 << 1 << "the plan has 8 ranks but 1 was started";
        QTest::newRow("scale 0") << 0 << 0.0 << 1 << "shape scale";
        QTest::newRow("scale 2") << 0 << 2.0 << 1 << "shape scale";
        QTest::newRow("no steps") << 0 << 1.0 << 0 << "at least one measured step";
    }
    void refusals()
    {
        QFETCH(int, devices);
        QFETCH(double, scale);
        QFETCH(int, steps);
        QFETCH(QString, message);
        WorkerOptions o;
        o.shape_scale = scale;
        o.steps = steps;
        auto r = runCpuWorker(tinyPlan(devices), o);
        QVERIFY(!r);
        QVERIFY2(QString::fromStdString(r.error().str()).contains(message), r.error().str().c_str());
    }

    void cancelled()
    {
        std::atomic<bool> cancel{true};
        WorkerOptions o;
        o.cancel = &cancel;
        auto r = runCpuWorker(tinyPlan(), o);
        QVERIFY(!r);
        QVERIFY(r.error().message.find("cancelled") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(TestWorker)
#include "tst_worker.moc"
