// The worker engine on the CPU backend, one rank without MPI: every plan op
// runs exactly once per measured step with the plan's shapes, steps are
// traced, bad plans and options are refused. Several ranks under mpirun are
// tested through the launcher (tst_launcher).
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/plan.h"
#include "partita/executor/cpubackend.h"
#include "partita/executor/worker.h"

#include <QTest>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>
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


// A stream-ordered, device-timed backend that runs nothing and logs what the
// worker asks of it, in order: the plan-to-stream scheduling of the CUDA
// backend, checked on a CPU. Rank 0 of the plan's world; peers are imaginary.
class StreamLog final : public ComputeBackend, public Communicator
{
public:
    explicit StreamLog(const Plan& p) : m_plan(p) {}
    std::string name() const override { return "stream log"; }
    // Compute stream.
    void gemm(int64_t, int64_t, int64_t) override { launch("gemm"); }
    void memoryPass(double) override { launch("memory"); }
    bool deviceTimed() const override { return true; }
    void opBegin(int64_t op) override
    {
        std::lock_guard lock(m_mu);
        m_stack[std::this_thread::get_id()].push_back(op);
    }
    void opEnd() override
    {
        std::lock_guard lock(m_mu);
        auto& st = m_stack[std::this_thread::get_id()];
        if (st.empty())
            ++unbalanced;
        else
            st.pop_back();
    }
    Result<std::vector<TraceRecord>> takeDeviceRecords(int) override
    {
        std::lock_guard lock(m_mu);
        std::vector<TraceRecord> out;
        for (int64_t op : m_launched) {
            TraceRecord r;
            r.op = op;
            r.kind = TraceKind::Kernel;
            r.start_ns = ++m_seq;
            r.dur_ns = 1;
            r.name = "device kernel";
            out.push_back(r);
        }
        m_launched.clear();
        return out;
    }
    // Communicator.
    int rank() const override { return 0; }
    int size() const override { return m_plan.world; }
    int groupSize(CommGroup g) const override
    {
        switch (g) {
        case CommGroup::Tensor: return m_plan.tp;
        case CommGroup::Data: return m_plan.dp * m_plan.cp;
        case CommGroup::Expert: return m_plan.ep;
        case CommGroup::Context: return m_plan.cp;
        case CommGroup::World: break;
        }
        return m_plan.world;
    }
    int groupRank(CommGroup) const override { return 0; }
    int hosts() const override { return 1; }
    Result<bool> collective(CommGroup g, Collective, double, int, int) override
    {
        launch(g == CommGroup::Data ? "data collective" : "collective");
        std::lock_guard lock(m_mu);
        if (g == CommGroup::Data) {
            ++dataCollectives;
            if (m_lastReady < 0 || m_lastReady > m_seq)
                ++unreadyData; // issued without the compute stream's position to wait for
            m_lastData = ++m_seq;
        }
        return true;
    }
    Result<bool> send(int, double, int) override { launch("send"); return true; }
    Result<bool> recv(int, double, int) override { launch("recv"); return true; }
    Result<bool> completeSends() override { return true; }
    Result<bool> barrier() override { return true; }
    Result<bool> broadcastBytes(void*, size_t, int) override { return true; }
    int64_t clockOffsetNs() const override { return 0; }
    bool concurrent() const override { return true; }
    void abort(int) override {}
    void dataReady() override
    {
        std::lock_guard lock(m_mu);
        m_lastReady = ++m_seq;
        ++readies;
    }
    void joinData() override
    {
        std::lock_guard lock(m_mu);
        m_lastJoin = ++m_seq;
    }

    int unbalanced = 0, untagged = 0, unreadyData = 0, unjoinedOptimizer = 0, readies = 0, dataCollectives = 0;
    bool stacksEmpty()
    {
        std::lock_guard lock(m_mu);
        return std::all_of(m_stack.begin(), m_stack.end(), [](const auto& e) { return e.second.empty(); });
    }

private:
    void launch(const char* what)
    {
        std::lock_guard lock(m_mu);
        auto& st = m_stack[std::this_thread::get_id()];
        if (st.empty()) {
            ++untagged;
            return;
        }
        // The optimizer (kernel 0 of the last step) must wait for every bucket.
        if (std::string(what) == "memory" && st.back() % 100000 == 0 &&
            m_plan.classes.front().steps[size_t(st.back() / 100000)].kind == StepKind::Optimizer && m_lastData > m_lastJoin)
            ++unjoinedOptimizer;
        if (m_launched.empty() || m_launched.back() != st.back())
            m_launched.push_back(st.back());
    }
    const Plan& m_plan;
    std::mutex m_mu;
    std::map<std::thread::id, std::vector<int64_t>> m_stack;
    std::vector<int64_t> m_launched;
    int64_t m_seq = 0, m_lastReady = -1, m_lastData = -1, m_lastJoin = -1;
};

Plan meshPlan(int dp, int tp, int pp, int zero)
{
    const Model m = tinyGpt();
    std::string devs;
    for (int i = 0; i < dp * tp * pp; ++i)
        devs += std::string(i ? ", " : "") + R"({"preset": "a100-sxm4-80gb"})";
    auto c = clusterFromJson(R"({"partita_cluster": 1, "name": "mesh", "nodes": [{"devices": [)" + devs +
                                 R"(], "intra": {"kind": "nvswitch", "bandwidth": "300 GB/s"}}]})",
                             "mesh.json");
    if (!c)
        qFatal("%s", c.error().str().c_str());
    Strategy s;
    s.dp = dp;
    s.tp = tp;
    s.pp = pp;
    s.micro_batch = 1;
    s.global_batch = dp * (pp > 1 ? 2 * pp : 1);
    s.zero_stage = zero;
    auto p = lowerPlan(m, *c, s, 64);
    if (!p)
        qFatal("%s", p.error().str().c_str());
    return *p;
}

} // namespace

class TestWorker : public QObject
{
    Q_OBJECT
private slots:
    // This CPU measured as the CPU backend runs plans: every size timed, and
    // a calibration fitted from it that the simulator reads.
    void cpuCalibration()
    {
        const GpuSweep s = measureCpuSweep(true);
        QVERIFY(!s.gpu.empty());
        QVERIFY(s.gemms.size() >= 5);
        QVERIFY(s.copies.size() >= 3);
        for (const GemmPoint& g : s.gemms)
            QVERIFY2(g.seconds > 0 && g.precision == "fp32", g.shape.c_str());
        // Larger sgemms run at a higher rate than 16^3 (call overhead), on any CPU.
        QVERIFY(s.gemms.back().flops() / s.gemms.back().seconds > s.gemms.front().flops() / s.gemms.front().seconds);
        auto cal = localCpuCalibration(true);
        QVERIFY2(cal, cal ? "" : cal.error().str().c_str());
        QVERIFY(cal->source.find("measured on this machine") != std::string::npos);
        QVERIFY(cal->matmul.points.size() >= 3);
        QVERIFY(cal->memory.points.size() >= 3);
        QVERIFY(!cal->measured.at("blas").empty());
        auto back = calibrationFromJson(calibrationToJson(*cal), "cpu.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
    }

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
        // What ran is the plan at the scale, as its prediction is made: each kernel's bytes and FLOPs.
        const Plan scaled = scalePlan(plan, scale);
        std::map<int64_t, const Kernel*> kernelOf;
        for (size_t si = 0; si < scaled.classes.front().steps.size(); ++si)
            if (const Step& st = scaled.classes.front().steps[si]; st.kind == StepKind::Run)
                for (size_t ki = 0; ki < scaled.programs[size_t(st.program)].kernels.size(); ++ki)
                    kernelOf[planOpId(int(si), int(ki))] = &scaled.programs[size_t(st.program)].kernels[ki];
        int checked = 0;
        for (const TraceRecord& t : r->trace.records)
            if (auto k = kernelOf.find(t.op); k != kernelOf.end() && t.kind == TraceKind::Compute) {
                QCOMPARE(t.bytes, k->second->bytes);
                QCOMPARE(t.flops, k->second->flops);
                ++checked;
            }
        QVERIFY(checked > 10);
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

    // Stream-ordered backends: every launch is tagged with its op, every
    // data-parallel collective is issued after the compute stream's position
    // was handed over, the optimizer starts after the data stream was joined,
    // and the device's records come back named by the plan's ops.
    void streamScheduling_data()
    {
        QTest::addColumn<int>("dp");
        QTest::addColumn<int>("tp");
        QTest::addColumn<int>("pp");
        QTest::addColumn<int>("zero");
        QTest::newRow("dp 4") << 4 << 1 << 1 << 0;
        QTest::newRow("dp 2 x tp 2, ZeRO-1") << 2 << 2 << 1 << 1;
        QTest::newRow("dp 2, ZeRO-3") << 2 << 1 << 1 << 3;
        QTest::newRow("dp 2 x pp 2") << 2 << 1 << 2 << 0;
    }
    void streamScheduling()
    {
        QFETCH(int, dp);
        QFETCH(int, tp);
        QFETCH(int, pp);
        QFETCH(int, zero);
        const Plan plan = meshPlan(dp, tp, pp, zero);
        StreamLog log(plan);
        WorkerOptions o;
        o.steps = 2;
        o.warmup = 1;
        auto r = runWorker(plan, o, log, log);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(log.untagged, 0);
        QCOMPARE(log.unbalanced, 0);
        QVERIFY(log.stacksEmpty());
        QVERIFY(log.dataCollectives > 0);
        QCOMPARE(log.unreadyData, 0);
        QCOMPARE(log.unjoinedOptimizer, 0);
        QVERIFY(log.readies > 0);
        // Device records: every one carries a plan op, kernels their layer.
        int withLayer = 0, kernels = 0;
        for (const TraceRecord& t : r->trace.records) {
            if (t.kind == TraceKind::Step)
                continue;
            ++kernels;
            QVERIFY(t.op >= 0);
            withLayer += t.layer >= 0;
        }
        QVERIFY(kernels > 10);
        QVERIFY(withLayer > kernels / 2);
    }

    // The checkpoint follows the first and the last step; between them it is
    // skipped while writing it would take over a quarter of the run. Rows: how
    // long one checkpoint takes against the tiny plan's sub-millisecond steps.
    void checkpointBudget_data()
    {
        QTest::addColumn<int>("writeMs");
        QTest::addColumn<bool>("everyStep");
        QTest::newRow("free: after every step") << 0 << true;
        QTest::newRow("slow: first, last and a few") << 20 << false;
    }
    void checkpointBudget()
    {
        QFETCH(int, writeMs);
        QFETCH(bool, everyStep);
        WorkerOptions o;
        o.steps = 30;
        std::vector<size_t> saved; // steps in each checkpoint
        bool completeSeen = false;
        o.checkpoint = [&](const WorkerResult& r) {
            saved.push_back(r.step_s.size());
            completeSeen = r.complete;
            std::this_thread::sleep_for(std::chrono::milliseconds(writeMs));
        };
        auto r = runCpuWorker(tinyPlan(), o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QVERIFY(saved.size() >= 2);
        QCOMPARE(saved.front(), size_t(1));
        QCOMPARE(saved.back(), size_t(30));
        QVERIFY(completeSeen);
        if (everyStep)
            QCOMPARE(saved.size(), size_t(30));
        else
            QVERIFY2(saved.size() < 10, std::to_string(saved.size()).c_str());
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
