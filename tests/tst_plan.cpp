// The execution plan: programs per virtual stage, steps per rank class, GEMM
// shapes the executors run, the plan at a shape scale, and the JSON format
// round trip.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/plan.h"

#include <QTest>

#include <cmath>
#include <set>

using namespace partita;

namespace {
Model gpt2()
{
    auto m = loadModel(PARTITA_SOURCE_DIR "/resources/demo/model.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Strategy mesh(int dp, int tp, int pp, int64_t gb, int interleave = 1)
{
    Strategy s;
    s.name = "t";
    s.dp = dp;
    s.tp = tp;
    s.pp = pp;
    s.global_batch = gb;
    s.micro_batch = 1;
    s.interleave = interleave;
    s.schedule = interleave > 1 ? PipelineSchedule::Interleaved : PipelineSchedule::OneFOneB;
    return s;
}
int count(const RankClass& rc, StepKind k)
{
    return int(std::count_if(rc.steps.begin(), rc.steps.end(), [&](const Step& s) { return s.kind == k; }));
}
} // namespace

class TestPlan : public QObject
{
    Q_OBJECT
private slots:
    void structure_data()
    {
        QTest::addColumn<int>("dp");
        QTest::addColumn<int>("tp");
        QTest::addColumn<int>("pp");
        QTest::addColumn<int>("interleave");
        QTest::addColumn<int>("gb");
        QTest::newRow("data parallel") << 8 << 1 << 1 << 1 << 16;
        QTest::newRow("tensor parallel") << 1 << 4 << 2 << 1 << 8;
        QTest::newRow("pipeline 1F1B") << 2 << 1 << 4 << 1 << 16;
        QTest::newRow("interleaved") << 1 << 2 << 4 << 3 << 8;
    }
    void structure()
    {
        QFETCH(int, dp);
        QFETCH(int, tp);
        QFETCH(int, pp);
        QFETCH(int, interleave);
        QFETCH(int, gb);
        const Model m = gpt2();
        auto p = lowerPlan(m, *clusterPreset("dgx-a100-80gb"), mesh(dp, tp, pp, gb, interleave));
        QVERIFY2(p, p ? "" : p.error().str().c_str());
        QCOMPARE(int(p->classes.size()), pp);
        QCOMPARE(p->virtual_stages, pp * interleave);
        const int64_t M = gb / dp;
        QCOMPARE(p->micro_batches, M);
        // Every class runs each of its chunks forward and backward once per micro-batch,
        // sends as much as it receives in total, and ends with one optimizer step.
        int sends = 0, recvs = 0;
        for (const auto& rc : p->classes) {
            int fwd = 0, bwd = 0;
            for (const auto& st : rc.steps) {
                if (st.kind != StepKind::Run)
                    continue;
                const Phase ph = p->programs[size_t(st.program)].phase;
                fwd += ph == Phase::Forward;
                bwd += ph == Phase::Backward;
            }
            QCOMPARE(fwd, int(M) * interleave);
            QCOMPARE(bwd, int(M) * interleave);
            QCOMPARE(count(rc, StepKind::Optimizer), 1);
            QCOMPARE(rc.steps.back().kind, StepKind::Optimizer);
            sends += count(rc, StepKind::Send);
            recvs += count(rc, StepKind::Recv);
            QCOMPARE(count(rc, StepKind::Sync) > 0, dp > 1);
            QCOMPARE(rc.count, dp * tp);
        }
        QCOMPARE(sends, recvs);
        QCOMPARE(sends, 2 * int(M) * (pp * interleave - 1));
        // Every parameter is held somewhere (replicated norms and the tied head's copy on
        // the last stage count more than once).
        double params = 0;
        for (const auto& rc : p->classes)
            params += rc.parameters;
        QVERIFY(params * tp >= double(m.parameterCount()));
    }

    void gemmShapes()
    {
        const Model m = gpt2();
        auto p = lowerPlan(m, *clusterPreset("dgx-a100-80gb"), mesh(4, 2, 1, 8), 512);
        QVERIFY(p);
        const int fc1 = int(m.find("h.0.mlp.fc1") - m.layers.data());
        const int fc2 = int(m.find("h.0.mlp.fc2") - m.layers.data());
        const int core = int(m.find("h.0.attention.core") - m.layers.data());
        const Program& fwd = p->programs.front();
        QCOMPARE(fwd.phase, Phase::Forward);
        bool sawFc1 = false, sawFc2 = false, sawCore = false, sawAllReduce = false;
        for (const Kernel& k : fwd.kernels) {
            if (k.layer == fc1 && k.kind == KernelKind::Gemm) { // column-parallel: output split
                QCOMPARE(k.m, int64_t(512));
                QCOMPARE(k.n, int64_t(3072 / 2));
                QCOMPARE(k.k, int64_t(768));
                QCOMPARE(k.flops, 2.0 * 512 * 768 * 3072 / 2);
                sawFc1 = true;
            }
            if (k.layer == fc2 && k.kind == KernelKind::Gemm) { // row-parallel: input split
                QCOMPARE(k.n, int64_t(768));
                QCOMPARE(k.k, int64_t(3072 / 2));
                sawFc2 = true;
            }
            if (k.layer == fc2 && k.kind == KernelKind::Collective) {
                QCOMPARE(k.coll, Collective::AllReduce);
                QCOMPARE(k.coll_bytes, 512.0 * 768 * 2);
                sawAllReduce = true;
            }
            if (k.layer == core && k.kind == KernelKind::BatchedGemm) {
                QCOMPARE(k.batch, int64_t(12 / 2));
                QCOMPARE(k.m, int64_t(512));
                QCOMPARE(k.k, int64_t(64));
                QCOMPARE(k.ops, 2);
                // Fused and causal: half the keys per query on average, and the
                // shape the executors run does exactly the FLOPs costed.
                QCOMPARE(k.n, int64_t(512 / 2));
                QCOMPARE(2.0 * double(k.m * k.n * k.k * k.batch * k.ops), k.flops);
                sawCore = true;
            }
        }
        QVERIFY(sawFc1 && sawFc2 && sawCore && sawAllReduce);
    }

    // Context parallelism: a device holds 1/cp of each sequence; its queries
    // meet every key, K/V travel over the cp group (a ring beside the
    // attention, or an all-gather before it and a reduce-scatter of their
    // gradients after); gradients are reduced over dp x cp.
    void contextParallel_data()
    {
        QTest::addColumn<int>("cp");
        QTest::addColumn<int>("comm");
        QTest::newRow("ring, cp 2") << 2 << int(ContextComm::P2P);
        QTest::newRow("ring, cp 4") << 4 << int(ContextComm::P2P);
        QTest::newRow("all-gather, cp 2") << 2 << int(ContextComm::AllGather);
    }
    void contextParallel()
    {
        QFETCH(int, cp);
        QFETCH(int, comm);
        const Model m = gpt2();
        const Cluster c = *clusterPreset("dgx-a100-80gb:2");
        const int64_t seq = 1024;
        Strategy base = mesh(8, 2, 1, 8);
        Strategy s = mesh(8 / cp, 2, 1, 8);
        s.cp = cp;
        s.cp_comm = ContextComm(comm);
        base.pp = s.pp = 1;
        base.dp = 8; // 16 devices: dp 8 x tp 2
        auto p1 = lowerPlan(m, c, base, seq);
        auto p = lowerPlan(m, c, s, seq);
        QVERIFY2(p && p1, p ? (p1 ? "" : p1.error().str().c_str()) : p.error().str().c_str());
        QCOMPARE(p->cp, cp);
        QCOMPARE(p->classes[0].count, 16);
        const int core = int(m.find("h.0.attention.core") - m.layers.data());
        const int fc1 = int(m.find("h.0.mlp.fc1") - m.layers.data());
        auto kernelsOf = [&](const Plan& plan, Phase ph, int layer) {
            std::vector<Kernel> ks;
            for (const Program& pr : plan.programs)
                if (pr.phase == ph)
                    for (const Kernel& k : pr.kernels)
                        if (k.layer == layer)
                            ks.push_back(k);
            return ks;
        };
        const Kernel attn1 = kernelsOf(*p1, Phase::Forward, core).front();
        const auto fwd = kernelsOf(*p, Phase::Forward, core);
        const auto bwd = kernelsOf(*p, Phase::Backward, core);
        const bool ring = ContextComm(comm) == ContextComm::P2P;
        // The attention: 1/cp of the FLOPs, queries of 1/cp of the tokens; the ring runs a block per step.
        const Kernel& attn = fwd[ring ? 0 : 1];
        QCOMPARE(attn.kind, KernelKind::BatchedGemm);
        QCOMPARE(attn.flops, attn1.flops / cp);
        QCOMPARE(attn.m, seq / cp);
        QCOMPARE(attn.ops, ring ? 2 * cp : 2);
        // K and V of this rank's tokens: 2 x tokens x 12 heads x 64 / tp x 2 bytes, from each of cp ranks.
        const double kvLocal = 2.0 * double(seq / cp) * 12 * 64 / 2 * 2;
        QCOMPARE(int(fwd.size()), 2);
        const Kernel& x = fwd[ring ? 1 : 0];
        QCOMPARE(x.kind, KernelKind::Collective);
        QCOMPARE(x.group, KernelGroup::Context);
        QCOMPARE(x.coll, Collective::AllGather);
        QCOMPARE(x.coll_bytes, kvLocal * cp);
        QCOMPARE(x.overlapped, ring);
        double bwdBytes = 0;
        int bwdColl = 0;
        for (const Kernel& k : bwd)
            if (k.kind == KernelKind::Collective && k.group == KernelGroup::Context) {
                bwdBytes += k.coll_bytes;
                ++bwdColl;
                QCOMPARE(k.overlapped, ring);
            }
        QCOMPARE(bwdColl, ring ? 1 : 2);       // ring: K/V and their gradients together
        QCOMPARE(bwdBytes, 2 * kvLocal * cp); // both ways: twice the forward's volume
        // Every other layer: 1/cp of the tokens.
        const Kernel f1 = kernelsOf(*p, Phase::Forward, fc1).front();
        QCOMPARE(f1.m, seq / cp);
        QCOMPARE(f1.flops, kernelsOf(*p1, Phase::Forward, fc1).front().flops / cp);
        // Gradients: the same buckets as without cp (reduced over dp x cp).
        double sync = 0, sync1 = 0;
        for (const Step& st : p->classes[0].steps)
            sync += st.kind == StepKind::Sync ? st.bytes : 0;
        for (const Step& st : p1->classes[0].steps)
            sync1 += st.kind == StepKind::Sync ? st.bytes : 0;
        QCOMPARE(sync, sync1);
        const std::string text = planToJson(*p);
        auto back = planFromJson(text, "plan.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(*back == *p);
        // A sequence that does not split into 2 x cp chunks is refused.
        auto odd = lowerPlan(m, c, s, 2 * cp * 10 + 2);
        QVERIFY(!odd);
        QVERIFY2(QString::fromStdString(odd.error().message).contains("divisible by 2 x cp"), odd.error().str().c_str());
    }

    // At a shape scale every GEMM dimension is scaled (rounded, at least 1),
    // FLOPs by its cube, traffic, messages and parameters linearly; the
    // structure is the plan's. Scale 1 is the plan itself.
    void shapeScale_data()
    {
        QTest::addColumn<double>("scale");
        QTest::newRow("1") << 1.0;
        QTest::newRow("0.5") << 0.5;
        QTest::newRow("0.01 (dimensions floor at 1)") << 0.01;
    }
    void shapeScale()
    {
        QFETCH(double, scale);
        Strategy st = mesh(2, 2, 2, 16);
        st.zero_stage = 3;
        auto p = lowerPlan(gpt2(), *clusterPreset("dgx-a100-80gb"), st);
        QVERIFY(p);
        const Plan q = scalePlan(*p, scale);
        if (scale == 1) {
            QVERIFY(q == *p);
            return;
        }
        QCOMPARE(q.programs.size(), p->programs.size());
        QCOMPARE(q.classes.size(), p->classes.size());
        int gemms = 0;
        for (size_t i = 0; i < p->programs.size(); ++i) {
            const Program &a = p->programs[i], &b = q.programs[i];
            QCOMPARE(b.params, a.params * scale);
            QCOMPARE(b.kernels.size(), a.kernels.size());
            for (size_t k = 0; k < a.kernels.size(); ++k) {
                const Kernel &x = a.kernels[k], &y = b.kernels[k];
                for (auto [from, to] : {std::pair{x.m, y.m}, std::pair{x.n, y.n}, std::pair{x.k, y.k}})
                    QCOMPARE(to, from == 0 ? 0 : std::max<int64_t>(1, std::llround(double(from) * scale)));
                gemms += x.m > 0 ? 1 : 0;
                QCOMPARE(y.flops, x.flops * scale * scale * scale);
                QCOMPARE(y.bytes, x.bytes * scale);
                QCOMPARE(y.coll_bytes, x.coll_bytes * scale);
                QCOMPARE(y.batch, x.batch);
                QCOMPARE(y.layer, x.layer);
            }
        }
        QVERIFY(gemms > 10);
        for (size_t c = 0; c < p->classes.size(); ++c) {
            QCOMPARE(q.classes[c].parameters, p->classes[c].parameters * scale);
            QCOMPARE(q.classes[c].steps.size(), p->classes[c].steps.size());
            for (size_t i = 0; i < p->classes[c].steps.size(); ++i)
                QCOMPARE(q.classes[c].steps[i].bytes, p->classes[c].steps[i].bytes * scale);
        }
    }

    void jsonRoundTrip()
    {
        Strategy s = mesh(1, 2, 4, 8, 3);
        s.recompute = Recompute::Selective;
        s.sequence_parallel = true;
        auto p = lowerPlan(gpt2(), *clusterPreset("dgx-a100-80gb"), s);
        QVERIFY(p);
        const std::string text = planToJson(*p);
        auto back = planFromJson(text, "plan.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(*back == *p);
        QCOMPARE(planToJson(*back), text);
    }

    void malformedJson_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("empty") << "" << "" << "empty";
        QTest::newRow("version") << R"({"partita_plan":2})" << "/partita_plan" << "newer";
        QTest::newRow("mesh") << R"({"partita_plan":1,"world":8,"mesh":{"dp":2,"tp":2,"pp":1,"ep":1}})" << "/mesh" << "differs from world";
        QTest::newRow("bad program ref") << R"({"partita_plan":1,"world":1,"mesh":{"dp":1,"tp":1,"pp":1,"ep":1},"virtual_stages":1,"micro_batches":1,"micro_batch":1,"seq_len":8,"precision":"bf16","activation_bytes":2,"gradient_bytes":2,"zero_stage":0,"programs":[],"classes":[{"stage":0,"first_rank":0,"count":1,"steps":[{"kind":"run","program":3,"micro":0}]}]})" << "/classes/0/steps/0/program" << "out of range";
        QTest::newRow("unknown step") << R"({"partita_plan":1,"world":1,"mesh":{"dp":1,"tp":1,"pp":1,"ep":1},"virtual_stages":1,"micro_batches":1,"micro_batch":1,"seq_len":8,"precision":"bf16","activation_bytes":2,"gradient_bytes":2,"zero_stage":0,"programs":[],"classes":[{"stage":0,"first_rank":0,"count":1,"steps":[{"kind":"teleport"}]}]})" << "/classes/0/steps/0/kind" << "unknown value";
    }
    void malformedJson()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto p = planFromJson(text.toStdString(), "plan.json");
        QVERIFY(!p);
        QVERIFY2(QString::fromStdString(p.error().where).startsWith(where), p.error().str().c_str());
        QVERIFY2(QString::fromStdString(p.error().message).contains(message), p.error().str().c_str());
    }

    void pipelineOrders_data()
    {
        QTest::addColumn<int>("stage");
        QTest::addColumn<int>("pp");
        QTest::addColumn<int>("chunks");
        QTest::addColumn<int>("micro");
        QTest::addColumn<int>("schedule");
        QTest::addColumn<int>("warmup");
        QTest::newRow("1F1B first stage") << 0 << 4 << 1 << 8 << int(PipelineSchedule::OneFOneB) << 3;
        QTest::newRow("1F1B last stage") << 3 << 4 << 1 << 8 << int(PipelineSchedule::OneFOneB) << 0;
        QTest::newRow("GPipe") << 1 << 4 << 1 << 8 << int(PipelineSchedule::GPipe) << 8;
        // Megatron-LM: (pp - stage - 1) * 2 + (chunks - 1) * pp warm-up forwards.
        QTest::newRow("interleaved first stage") << 0 << 4 << 2 << 8 << int(PipelineSchedule::Interleaved) << 10;
    }
    void pipelineOrders()
    {
        QFETCH(int, stage);
        QFETCH(int, pp);
        QFETCH(int, chunks);
        QFETCH(int, micro);
        QFETCH(int, schedule);
        QFETCH(int, warmup);
        const auto order = pipelineOrder(stage, pp, chunks, micro, PipelineSchedule(schedule));
        QCOMPARE(int(order.size()), 2 * micro * chunks);
        int leading = 0;
        while (leading < int(order.size()) && order[size_t(leading)].forward)
            ++leading;
        QCOMPARE(leading, schedule == int(PipelineSchedule::GPipe) ? micro * chunks : warmup + 1);
        // Every (chunk, micro) runs forward before backward.
        std::set<std::pair<int, int>> forwarded;
        for (const auto& op : order) {
            if (op.forward)
                forwarded.insert({op.chunk, op.micro});
            else
                QVERIFY(forwarded.count({op.chunk, op.micro}));
        }
    }
};

QTEST_APPLESS_MAIN(TestPlan)
#include "tst_plan.moc"
