// Strategies: the JSON format, validation that names the layer and the
// constraint, and the presets of known systems.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/strategy.h"

#include <QTest>

using namespace partita;

namespace {
Model hf(const char* file)
{
    auto m = loadModel(std::string(PARTITA_TEST_DATA "/hf/") + file);
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Model gpt2()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/gpt2.json");
    if (!m)
        m = loadModel(PARTITA_SOURCE_DIR "/resources/demo/model.json");
    return *m;
}
} // namespace

class TestStrategy : public QObject
{
    Q_OBJECT
private slots:
    void glob_data()
    {
        QTest::addColumn<QString>("pattern");
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("match");
        QTest::newRow("exact") << "h.0.mlp.fc1" << "h.0.mlp.fc1" << true;
        QTest::newRow("star") << "h.*.mlp.fc1" << "h.11.mlp.fc1" << true;
        QTest::newRow("star no") << "h.*.mlp.fc1" << "h.11.mlp.fc2" << false;
        QTest::newRow("question") << "h.?.ln_1" << "h.3.ln_1" << true;
        QTest::newRow("question one char") << "h.?.ln_1" << "h.10.ln_1" << false;
        QTest::newRow("all") << "*" << "anything" << true;
        QTest::newRow("backtrack") << "*a*b" << "xaxxaxb" << true;
    }
    void glob()
    {
        QFETCH(QString, pattern);
        QFETCH(QString, text);
        QFETCH(bool, match);
        QCOMPARE(globMatch(pattern.toStdString(), text.toStdString()), match);
    }

    void jsonRoundTrip()
    {
        Strategy s;
        s.name = "adaptive";
        s.precision = Precision::FP16;
        s.global_batch = 256;
        s.micro_batch = 4;
        s.dp = 8;
        s.tp = 2;
        s.pp = 2;
        s.schedule = PipelineSchedule::Interleaved;
        s.interleave = 2;
        s.recompute = Recompute::Selective;
        s.attention = Attention::Unfused;
        s.sequence_parallel = true;
        s.zero_stage = 1;
        s.first_stage_blocks = 3;
        s.last_stage_blocks = 5;
        s.cp = 2;
        s.cp_comm = ContextComm::AllGather;
        s.tp_comm_overlap = true;
        s.overlap_grad_reduce = false;
        s.overlap_param_gather = true;
        s.sync.algorithm = AllReduceAlgo::Hierarchical;
        LayerOverride emb;
        emb.pattern = "embeddings";
        SyncAtom ps;
        ps.method = SyncMethod::ParameterServer;
        ps.ps_shards = 4;
        ps.ps_local_replication = true;
        ps.staleness = 2;
        emb.sync = ps;
        emb.stage = 0;
        LayerOverride mlp;
        mlp.pattern = "h.*.mlp.*";
        mlp.tp_role = TpRole::Replicated;
        mlp.recompute = Recompute::Full;
        s.layers = {emb, mlp};
        const std::string text = strategyToJson(s);
        auto back = strategyFromJson(text, "s.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(*back == s);
        QCOMPARE(strategyToJson(*back), text);
        s.precision = Precision::FP8;
        QCOMPARE(strategyFromJson(strategyToJson(s), "s.json")->precision, Precision::FP8);
    }

    void malformed_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("empty") << "" << "" << "empty";
        QTest::newRow("no batch") << R"({"partita_strategy":1})" << "/global_batch" << "missing";
        QTest::newRow("bad schedule") << R"({"partita_strategy":1,"global_batch":8,"schedule":"zigzag"})" << "/schedule" << "unknown value 'zigzag'";
        QTest::newRow("negative tp") << R"({"partita_strategy":1,"global_batch":8,"mesh":{"tp":-2}})" << "/mesh/tp" << "out of range";
        QTest::newRow("zero stage 4") << R"({"partita_strategy":1,"global_batch":8,"zero_stage":4})" << "/zero_stage" << "out of range";
        QTest::newRow("unknown atom field") << R"({"partita_strategy":1,"global_batch":8,"sync":{"metod":"ps"}})" << "/sync/metod" << "unknown field";
        QTest::newRow("bad method") << R"({"partita_strategy":1,"global_batch":8,"layers":[{"match":"x","sync":{"method":"gossip"}}]})" << "/layers/0/sync/method" << "unknown value 'gossip'";
        QTest::newRow("bad attention") << R"({"partita_strategy":1,"global_batch":8,"attention":"flash"})" << "/attention" << "unknown value 'flash'";
        QTest::newRow("bad cp_comm") << R"({"partita_strategy":1,"global_batch":8,"cp_comm":"ring"})" << "/cp_comm" << "unknown value 'ring'";
        QTest::newRow("zero cp") << R"({"partita_strategy":1,"global_batch":8,"mesh":{"cp":0}})" << "/mesh/cp" << "out of range";
        QTest::newRow("empty pattern") << R"({"partita_strategy":1,"global_batch":8,"layers":[{"match":""}]})" << "/layers/0/match" << "empty";
    }
    void malformed()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto s = strategyFromJson(text.toStdString(), "s.json");
        QVERIFY(!s);
        QVERIFY2(QString::fromStdString(s.error().where).startsWith(where), s.error().str().c_str());
        QVERIFY2(QString::fromStdString(s.error().message).contains(message), s.error().str().c_str());
    }

    void invalid_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("cluster");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("mesh vs cluster") << R"("global_batch":8,"mesh":{"dp":4})" << "dgx-a100-80gb" << "mesh" << "the cluster has 8 devices";
        QTest::newRow("batch") << R"("global_batch":9,"mesh":{"dp":8})" << "dgx-a100-80gb" << "global_batch" << "not a multiple";
        QTest::newRow("tp vs heads") << R"("global_batch":1,"mesh":{"tp":8})" << "dgx-a100-80gb" << "layer 'h.0.attention.qkv'" << "does not divide its 12 attention heads";
        QTest::newRow("interleave without pp") << R"("global_batch":8,"mesh":{"dp":8},"schedule":"interleaved","interleave":2)" << "dgx-a100-80gb" << "schedule" << "pp >= 2";
        QTest::newRow("interleave needs schedule") << R"("global_batch":8,"mesh":{"dp":8},"interleave":2)" << "dgx-a100-80gb" << "interleave" << "interleaved";
        QTest::newRow("more stages than blocks") << R"("global_batch":16,"mesh":{"dp":1,"pp":16})" << "dgx-a100-80gb:2" << "mesh" << "only 12 blocks";
        QTest::newRow("sfb on a norm") << R"("global_batch":8,"mesh":{"dp":8},"layers":[{"match":"ln_f","sync":{"method":"sfb"}}])" << "dgx-a100-80gb" << "layer 'ln_f'" << "fully-connected";
        QTest::newRow("pattern matches nothing") << R"("global_batch":8,"mesh":{"dp":8},"layers":[{"match":"decoder.*","recompute":"full"}])" << "dgx-a100-80gb" << "/layers/0/match" << "matches no layer";
        QTest::newRow("stage order") << R"("global_batch":8,"mesh":{"dp":4,"pp":2},"layers":[{"match":"embeddings","stage":1}])" << "dgx-a100-80gb" << "layer 'h.0.ln_1'" << "later stage";
        QTest::newRow("ps with zero") << R"("global_batch":8,"mesh":{"dp":8},"zero_stage":1,"sync":{"method":"ps"})" << "dgx-a100-80gb" << "layer 'embeddings'" << "ZeRO";
        QTest::newRow("uneven stages without pp") << R"("global_batch":8,"mesh":{"dp":8},"first_stage_blocks":2,"last_stage_blocks":2)" << "dgx-a100-80gb" << "first_stage_blocks" << "pp > 1";
        QTest::newRow("uneven stages leave a remainder") << R"("global_batch":8,"mesh":{"dp":2,"pp":4},"first_stage_blocks":3,"last_stage_blocks":2)" << "dgx-a100-80gb" << "first_stage_blocks" << "leave 7 of the model's 12 for the 2 stages between";
        QTest::newRow("uneven stages, one side only") << R"("global_batch":8,"mesh":{"dp":4,"pp":2},"first_stage_blocks":5)" << "dgx-a100-80gb" << "first_stage_blocks" << "given both";
        QTest::newRow("uneven stages interleaved") << R"("global_batch":8,"mesh":{"dp":4,"pp":2},"schedule":"interleaved","interleave":2,"first_stage_blocks":5,"last_stage_blocks":7)" << "dgx-a100-80gb" << "first_stage_blocks" << "interleave = 1";
        QTest::newRow("cp takes its devices") << R"("global_batch":8,"mesh":{"dp":8,"cp":2})" << "dgx-a100-80gb" << "mesh" << "dp x tp x cp x pp = 8 x 1 x 2 x 1 = 16";
        QTest::newRow("tp overlap without sp") << R"("global_batch":2,"mesh":{"dp":2,"tp":4},"tp_comm_overlap":true)" << "dgx-a100-80gb" << "tp_comm_overlap" << "sequence parallelism";
        QTest::newRow("param gather without zero") << R"("global_batch":8,"mesh":{"dp":8},"overlap_param_gather":true)" << "dgx-a100-80gb" << "overlap_param_gather" << "ZeRO stage 1 or 2";
        QTest::newRow("ep without experts") << R"("global_batch":8,"mesh":{"dp":8,"ep":2})" << "dgx-a100-80gb" << "mesh" << "no experts";
    }
    void invalid()
    {
        QFETCH(QString, json);
        QFETCH(QString, cluster);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto s = strategyFromJson(("{\"partita_strategy\":1,\"name\":\"bad\"," + json + "}").toStdString(), "s.json");
        QVERIFY2(s, s ? "" : s.error().str().c_str());
        auto r = resolveStrategy(*s, gpt2(), *clusterPreset(cluster.toStdString()));
        QVERIFY(!r);
        QCOMPARE(QString::fromStdString(r.error().file), QStringLiteral("strategy 'bad'"));
        QVERIFY2(QString::fromStdString(r.error().where).startsWith(where), r.error().str().c_str());
        QVERIFY2(QString::fromStdString(r.error().message).contains(message), r.error().str().c_str());
    }

    void stagesAndRoles()
    {
        const Model m = gpt2();
        Strategy s;
        s.global_batch = 8;
        s.dp = 2;
        s.tp = 2;
        s.pp = 2;
        auto r = resolveStrategy(s, m, *clusterPreset("dgx-a100-80gb"));
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        auto at = [&](const char* name) { return r->layers[size_t(m.find(name) - m.layers.data())]; };
        QCOMPARE(at("embeddings").stage, 0);
        QCOMPARE(at("h.5.mlp.fc2").stage, 0);
        QCOMPARE(at("h.6.ln_1").stage, 1);
        QCOMPARE(at("lm_head").stage, 1);
        QCOMPARE(at("h.0.attention.qkv").tp_role, TpRole::Column);
        QCOMPARE(at("h.0.attention.out").tp_role, TpRole::Row);
        QCOMPARE(at("h.0.mlp.fc1").tp_role, TpRole::Column);
        QCOMPARE(at("h.0.mlp.fc2").tp_role, TpRole::Row);
        QCOMPARE(at("h.0.ln_1").tp_role, TpRole::Replicated);
        QCOMPARE(r->micro_batches, int64_t(4));
    }

    // Uneven first and last pipeline stages (Megatron-LM's
    // --decoder-first/last-pipeline-num-layers): GPT-2's 12 blocks.
    void unevenStages_data()
    {
        QTest::addColumn<int>("pp");
        QTest::addColumn<int>("first");
        QTest::addColumn<int>("last");
        QTest::addColumn<QList<int>>("blocksPerStage");
        QTest::newRow("even, pp 4") << 4 << 0 << 0 << QList<int>{3, 3, 3, 3};
        QTest::newRow("2 and 2, pp 4") << 4 << 2 << 2 << QList<int>{2, 4, 4, 2};
        QTest::newRow("1 and 3, pp 4") << 4 << 1 << 3 << QList<int>{1, 4, 4, 3};
        QTest::newRow("5 and 7, pp 2") << 2 << 5 << 7 << QList<int>{5, 7};
    }
    void unevenStages()
    {
        QFETCH(int, pp);
        QFETCH(int, first);
        QFETCH(int, last);
        QFETCH(QList<int>, blocksPerStage);
        const Model m = gpt2();
        Strategy s;
        s.global_batch = 16;
        s.pp = pp;
        s.dp = 8 / pp;
        s.first_stage_blocks = first;
        s.last_stage_blocks = last;
        auto r = resolveStrategy(s, m, *clusterPreset("dgx-a100-80gb"));
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QList<int> counted(pp, 0);
        for (int b = 0; b < 12; ++b)
            ++counted[r->layers[size_t(m.find("h." + std::to_string(b) + ".ln_1") - m.layers.data())].stage];
        QCOMPARE(counted, blocksPerStage);
        QCOMPARE(r->layers[size_t(m.find("embeddings") - m.layers.data())].stage, 0);
        QCOMPARE(r->layers[size_t(m.find("lm_head") - m.layers.data())].stage, pp - 1);
        QVERIFY(r->warnings.empty() || first == 0);
    }

    void presetsResolve_data()
    {
        QTest::addColumn<QString>("preset");
        for (const auto& p : strategyPresets())
            if (p.name != "megatron")
                QTest::newRow(p.name.c_str()) << QString::fromStdString(p.name);
    }
    void presetsResolve()
    {
        QFETCH(QString, preset);
        const Model m = hf("bert-large-uncased.json");
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        PresetOptions o;
        o.global_batch = 256;
        o.micro_batch = 8;
        auto s = strategyPreset(preset.toStdString(), m, c, o);
        QVERIFY2(s, s ? "" : s.error().str().c_str());
        auto r = resolveStrategy(*s, m, c);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->strategy.dp, 32);
    }

    void poseidonRule()
    {
        // 2K(P1-1)(M+N) <= 2MN(P1+P2-2)/P2 picks SFB for big FC layers at small batches only.
        const Model m = hf("bert-large-uncased.json");
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        PresetOptions o;
        o.global_batch = 32; // K = 1 sample x 512 tokens per worker
        auto s = strategyPreset("poseidon", m, c, o);
        QVERIFY(s);
        auto r = resolveStrategy(*s, m, c);
        QVERIFY(r);
        auto method = [&](const char* name) { return r->layers[size_t(m.find(name) - m.layers.data())].sync.method; };
        // K = 512, P1 = 32, P2 = 4: for 1024 x 4096: SFB 2*512*31*5120 = 1.6e8 > PS 2*4.2e6*34/4 = 7.1e7 -> PS.
        QCOMPARE(method("encoder.layer.0.mlp.fc1"), SyncMethod::ParameterServer);
        QCOMPARE(method("embeddings"), SyncMethod::ParameterServer);
    }
};

QTEST_APPLESS_MAIN(TestStrategy)
#include "tst_strategy.moc"
