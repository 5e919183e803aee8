// SPDX-License-Identifier: GPL-3.0-or-later
// Costs of single kernels inside a simulated step (core/src/simcost.cpp): the
// SMs TP overlap takes, communication beside computation, fused attention's
// rates;
// observed through simulate()'s per-layer times.
#include "partita/core/clusterio.h"
#include "partita/core/costmodel.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"

#include <QTest>

using namespace partita;

namespace {
Model hf(const char* name)
{
    auto m = loadModel(std::string(PARTITA_TEST_DATA "/hf/") + name);
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

SimResult run(const Model& m, const Cluster& c, const Strategy& s)
{
    auto r = simulate(m, c, s, SimOptions{});
    if (!r)
        qFatal("%s", r.error().str().c_str());
    return *r;
}

Cluster withSms(Cluster c, int sms)
{
    for (Node& n : c.nodes)
        for (DeviceSpec& d : n.devices)
            d.cores = sms;
    return c;
}
} // namespace

class TestSimCost : public QObject
{
    Q_OBJECT
private slots:
    // Communication beside computation: tensor-parallel all-gathers and
    // reduce-scatters beside their GEMMs, the distributed optimizer's
    // parameter all-gather beside the next forward, gradient buckets during
    // the backward (or all after it). Each moves the step the way it should.
    void communicationOverlap_data()
    {
        QTest::addColumn<QString>("what");
        QTest::addColumn<bool>("faster");
        QTest::newRow("tp comm overlap") << "tp" << true;
        QTest::newRow("overlapped parameter gather") << "gather" << true;
        QTest::newRow("gradients after the backward") << "grads" << false;
    }
    void communicationOverlap()
    {
        QFETCH(QString, what);
        QFETCH(bool, faster);
        const Model m = hf("gpt2-medium.json");
        const Cluster c = *clusterPreset("dgx-a100-80gb:2");
        Strategy base;
        base.tp = what == "tp" ? 8 : 1;
        base.dp = 16 / base.tp;
        base.sequence_parallel = base.tp > 1;
        base.zero_stage = what == "gather" ? 1 : 0;
        base.global_batch = base.dp;
        base.sync.sparse = false;
        Strategy changed = base;
        if (what == "tp")
            changed.tp_comm_overlap = true;
        else if (what == "gather")
            changed.overlap_param_gather = true;
        else
            changed.overlap_grad_reduce = false;
        const SimResult a = run(m, c, base), b = run(m, c, changed);
        QVERIFY2(faster ? b.step_time < a.step_time : b.step_time > a.step_time,
                 qPrintable(QString("%1 s -> %2 s").arg(a.step_time).arg(b.step_time)));
        if (what == "tp") // what stays exposed is what outlasts the GEMMs
            QVERIFY(b.breakdown.tp_comm < 0.5 * a.breakdown.tp_comm);
        else
            QVERIFY(faster ? b.breakdown.exposed_comm < a.breakdown.exposed_comm
                           : b.breakdown.exposed_comm > a.breakdown.exposed_comm);
        const double before = a.breakdown.compute - a.breakdown.tp_comm, after = b.breakdown.compute - b.breakdown.tp_comm;
        if (what == "tp") // the reduce-scatters' SMs slow their GEMMs (tst_simcost)
            QVERIFY(after > before && after < before * (1 + 16.0 / (108 - 16)));
        else
            QCOMPARE(after, before);
    }

    // With tensor-parallel overlap, the reduce-scatter after a row-parallel
    // forward GEMM keeps 16 SMs (Transformer Engine's pipeline method with
    // its SM margin): that GEMM takes SMs/(SMs-16) of its time, and nothing
    // else changes. A device whose SM count is unknown is costed without it.
    void reduceScatterSmMargin_data()
    {
        QTest::addColumn<QString>("cluster");
        QTest::addColumn<int>("sms");
        QTest::addColumn<bool>("overlap");
        QTest::addColumn<double>("slowdown");
        QTest::newRow("A100, 108 SMs") << "dgx-a100-80gb" << 108 << true << 16.0 / 92;
        QTest::newRow("H100, 132 SMs") << "dgx-h100" << 132 << true << 16.0 / 116;
        QTest::newRow("H100, no overlap: no margin") << "dgx-h100" << 132 << false << 0.0;
        QTest::newRow("too few SMs to spare 16") << "dgx-h100" << 32 << true << 0.0;
    }
    void reduceScatterSmMargin()
    {
        QFETCH(QString, cluster);
        QFETCH(int, sms);
        QFETCH(bool, overlap);
        QFETCH(double, slowdown);
        const Model m = hf("gpt2-medium.json");
        const Cluster base = *clusterPreset(cluster.toStdString());
        Strategy s;
        s.tp = 2;
        s.dp = 4;
        s.sequence_parallel = true;
        s.tp_comm_overlap = overlap;
        s.global_batch = 32;
        s.micro_batch = 8;
        s.sync.sparse = false;
        auto withMargin = simulate(m, withSms(base, sms), s);
        auto without = simulate(m, withSms(base, 0), s);
        QVERIFY2(withMargin, withMargin ? "" : withMargin.error().str().c_str());
        QVERIFY2(without, without ? "" : without.error().str().c_str());
        auto resolved = resolveStrategy(s, m, base);
        QVERIFY(resolved);
        // The MLP's row-parallel GEMM (in_features 4h over tp) hides its
        // reduce-scatter entirely, so its forward is its GEMM's time alone.
        int rows = 0;
        for (size_t i = 0; i < m.layers.size(); ++i) {
            const Layer& l = m.layers[i];
            const LayerTime &a = withMargin->layers[i], &b = without->layers[i];
            QCOMPARE(a.backward, b.backward);
            const bool mlpRow = resolved->layers[i].tp_role == TpRole::Row && l.kind == LayerKind::Linear &&
                                l.dims.in_features == 4 * l.dims.out_features;
            if (mlpRow) {
                ++rows;
                QVERIFY2(qFuzzyCompare(a.forward, b.forward * (1 + slowdown)),
                         qPrintable(QString("%1: %2 s, %3 s without the margin").arg(QString::fromStdString(l.name))
                                        .arg(a.forward).arg(b.forward)));
            } else if (resolved->layers[i].tp_role != TpRole::Row) {
                QCOMPARE(a.forward, b.forward);
            }
        }
        QCOMPARE(rows, 24); // one per GPT-2 medium block
        QCOMPARE(withMargin->step_time > without->step_time, slowdown > 0);
    }

    // FlashAttention-2's kernels (NVTE_FUSED_ATTN=0) do a fused kernel's work
    // and keep its memory, at their own published rate: on an H100, slower
    // than cuDNN's by the ratio of Shah et al. 2024's figures at the keys a
    // kernel sees (the core's memory traffic and launches dilute it a little
    // at these lengths).
    // Elsewhere (no flash2 table) both run at the matmul curve.
    void flashAttention2_data()
    {
        QTest::addColumn<QString>("cluster");
        QTest::addColumn<int>("seq");
        QTest::addColumn<double>("forward"); // cuDNN over FlashAttention-2, causal forward
        QTest::addColumn<double>("backward");
        QTest::newRow("H100, 4k tokens") << "dgx-h100" << 4096 << 518.0 / 319 << 499.0 / 310;
        QTest::newRow("H100, 16k tokens") << "dgx-h100" << 16384 << 539.0 / 335 << 516.0 / 322;
        QTest::newRow("A100: no table") << "dgx-a100-80gb" << 4096 << 1.0 << 1.0;
    }
    void flashAttention2()
    {
        QFETCH(QString, cluster);
        QFETCH(int, seq);
        QFETCH(double, forward);
        QFETCH(double, backward);
        const Model m = hf("gpt2-xl.json");
        Cluster c = *clusterPreset(cluster.toStdString());
        c.nodes[0].devices.resize(1);
        Strategy s;
        s.global_batch = 1;
        Strategy f2 = s;
        f2.attention = Attention::Flash2;
        SimOptions o;
        o.seq_len = seq;
        auto a = simulate(m, c, s, o);
        auto b = simulate(m, c, f2, o);
        QVERIFY(a && b);
        QCOMPARE(b->stage_memory[0].activations, a->stage_memory[0].activations);
        const size_t core = size_t(m.find("h.0.attention.core") - m.layers.data());
        const double fwd = b->layers[core].forward / a->layers[core].forward;
        const double bwd = b->layers[core].backward / a->layers[core].backward;
        auto near = [](double got, double want) { return got <= want * 1.001 && got >= 1 + 0.75 * (want - 1); };
        QVERIFY2(near(fwd, forward), qPrintable(QString("forward %1, expected %2").arg(fwd).arg(forward)));
        QVERIFY2(near(bwd, backward), qPrintable(QString("backward %1, expected %2").arg(bwd).arg(backward)));
        QCOMPARE(b->step_time > a->step_time, forward > 1);
    }

    // The published fused-attention tables are indexed by sequence length,
    // causal or not; a causal kernel's shape holds half the keys (the work it
    // does), and is looked up at the whole sequence. Rows: a table that
    // drops below 1,024 keys against a flat one.
    void fusedAttentionKeys_data()
    {
        QTest::addColumn<int>("seq");
        QTest::addColumn<bool>("sameAsFlat");
        QTest::newRow("1,024 tokens: at the table's flat part") << 1024 << true;
        QTest::newRow("512 tokens: below it") << 512 << false;
    }
    void fusedAttentionKeys()
    {
        QFETCH(int, seq);
        QFETCH(bool, sameAsFlat);
        const Model m = hf("gpt2-xl.json"); // causal
        Cluster c = *clusterPreset("dgx-h100");
        c.nodes[0].devices.resize(1);
        Strategy s;
        s.global_batch = 1;
        SimOptions o;
        o.seq_len = seq;
        Calibration cal = defaultCalibration(c.nodes[0].devices[0]);
        auto table = [](std::vector<std::pair<double, double>> points) {
            EfficiencyCurve e;
            e.interpolate = true;
            e.points = std::move(points);
            return e;
        };
        cal.fused_attention["forward_causal"] = table({{256, 0.1}, {1000, 0.1}, {1024, 0.5}, {65536, 0.5}});
        o.calibration = cal;
        auto stepped = simulate(m, c, s, o);
        cal.fused_attention["forward_causal"] = table({{256, 0.5}, {65536, 0.5}});
        o.calibration = cal;
        auto flat = simulate(m, c, s, o);
        QVERIFY(stepped && flat);
        const size_t core = size_t(m.find("h.0.attention.core") - m.layers.data());
        const double a = stepped->layers[core].forward, b = flat->layers[core].forward;
        if (sameAsFlat)
            QCOMPARE(a, b);
        else
            QVERIFY2(a > 1.5 * b, qPrintable(QString("%1 vs %2 s").arg(a).arg(b)));
    }

    // The best ring of a node is remembered by what it depends on, not by
    // where the node lies: the same Node object given slower pair links (a
    // different node at a reused address, as a caller's loop makes) gets its
    // own, slower ring.
    void ringFollowsTheLinks()
    {
        Node node = clusterPreset("p3.16xlarge")->nodes.front();
        node.links.clear();
        for (int a = 0; a < 8; ++a)
            for (int b = a + 1; b < 8; ++b)
                node.links.push_back(PairLink{a, b, node.intra});
        const GroupShape g{8, 1, 8};
        Calibration cal;
        cal.intra_link_efficiency = cal.inter_link_efficiency = 1;
        const double fast = collectiveTime(Collective::AllReduce, 1e9, g, node, cal);
        for (PairLink& l : node.links) // as many links, the default link unchanged: only their speed differs
            l.link.bandwidth /= 10;
        const double slow = collectiveTime(Collective::AllReduce, 1e9, g, node, cal);
        QVERIFY2(slow > 5 * fast, qPrintable(QString("%1 s then %2 s").arg(fast).arg(slow)));
        for (PairLink& l : node.links)
            l.link.bandwidth *= 10;
        QCOMPARE(collectiveTime(Collective::AllReduce, 1e9, g, node, cal), fast);
    }
};

QTEST_APPLESS_MAIN(TestSimCost)
#include "tst_simcost.moc"
