// SPDX-License-Identifier: GPL-3.0-or-later
// torchtitan job TOMLs (core/src/torchtitan*.cpp): torchtitan v0.2.2's Llama 3
// flavors, export -> import predicting the same step, its defaults (the
// uneven pipeline split), refusals, unknown keys, and bad files named by line
// and key.
#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"
#include "partita/core/torchtitan.h"

#include <QTest>

using namespace partita;

Q_DECLARE_METATYPE(std::string)

namespace {
Model llama3_8b()
{
    auto m = modelFromHfConfig(R"({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
        "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 128256,
        "max_position_embeddings": 8192, "tie_word_embeddings": false, "_name_or_path": "Llama-3.1-8B"})");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

Strategy base()
{
    Strategy s;
    s.name = "t";
    s.precision = Precision::BF16;
    s.fp32_grad_accumulation = true;
    s.sync.sparse = false;
    s.global_batch = 32;
    return s;
}
} // namespace

class TestTorchtitan : public QObject
{
    Q_OBJECT
private slots:
    void flavors()
    {
        // FeedForward's width: 2/3 of 4 x dim, times ffn_dim_multiplier, rounded up to multiple_of.
        const std::vector<std::pair<std::string, int64_t>> ffn{{"debugmodel", 768}, {"8B", 14336}, {"70B", 28672}, {"405B", 53248}};
        QCOMPARE(torchtitanFlavors().size(), ffn.size());
        for (size_t i = 0; i < ffn.size(); ++i) {
            QCOMPARE(torchtitanFlavors()[i].name, ffn[i].first);
            QCOMPARE(torchtitanFlavors()[i].ffn, ffn[i].second);
        }
        QCOMPARE(torchtitanFlavorOf(llama3_8b())->name, std::string("8B"));
        QVERIFY(!torchtitanFlavorOf(*loadModel(PARTITA_TEST_DATA "/hf/llama-2-7b-hf.json")));
        auto list = readTextFile(PARTITA_SOURCE_DIR "/resources/frameworks/torchtitan-v0.2.2-keys.txt");
        QVERIFY(list && list->find("parallelism.tensor_parallel_degree\n") != std::string::npos);
        QCOMPARE(torchtitanKeys().size(), size_t(149));
    }

    void roundTrip_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::newRow("tp 2 x pp 2 x FSDP 4, ZeRO-3") << "3d";
        QTest::newRow("FSDP 16 without resharding (ZeRO-2), full recomputation") << "zero2";
        QTest::newRow("DDP 16, fp32") << "ddp";
        QTest::newRow("FP8, cp 2, async TP") << "fp8-cp";
        QTest::newRow("uneven first and last stages") << "uneven";
        QTest::newRow("interleaved 1F1B") << "interleaved";
    }
    void roundTrip()
    {
        QFETCH(QString, kind);
        const Model m = llama3_8b();
        const Cluster c = *clusterPreset("dgx-h100:2");
        Strategy s = base();
        s.dp = 16;
        s.zero_stage = 3;
        if (kind == "3d") {
            s.tp = s.pp = 2;
            s.dp = 4;
            s.sequence_parallel = true;
        } else if (kind == "zero2") {
            s.zero_stage = 2;
            s.overlap_param_gather = true;
            s.recompute = Recompute::Full;
        } else if (kind == "ddp") {
            s.zero_stage = 0;
            s.precision = Precision::FP32;
        } else if (kind == "fp8-cp") {
            s.precision = Precision::FP8;
            s.tp = s.cp = 2;
            s.dp = 4;
            s.sequence_parallel = s.tp_comm_overlap = true;
            s.cp_comm = ContextComm::AllGather;
        } else if (kind == "uneven") {
            s.pp = 4;
            s.dp = 4;
            s.first_stage_blocks = s.last_stage_blocks = 7;
        } else {
            s.pp = 2;
            s.dp = 8;
            s.interleave = 2;
            s.schedule = PipelineSchedule::Interleaved;
        }
        QVERIFY2(torchtitanRefusals(m, s).empty(), torchtitanRefusals(m, s).empty() ? "" : torchtitanRefusals(m, s).front().c_str());
        auto ex = exportTorchtitan(m, c, s, 8192, ExportHeader{"test", "t", "", 1.0, 1e9, "dgx-h100 x 2"});
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        QVERIFY(ex->toml.find("for torchtitan v0.2.2") != std::string::npos);
        auto back = importTorchtitan(ex->toml, "job.toml", c.deviceCount());
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        for (const auto& n : back->notes) // every key written is one torchtitan knows
            QVERIFY2(n.find("does not know") == std::string::npos, n.c_str());
        QCOMPARE(back->model.parameterCount(), m.parameterCount());
        QCOMPARE(back->seq_len, int64_t(8192));
        QCOMPARE(back->world, 16);
        SimOptions o;
        o.seq_len = 8192;
        auto a = simulate(m, c, s, o), b = simulate(back->model, c, back->strategy, o);
        QVERIFY2(a && b, a ? (b ? "" : b.error().str().c_str()) : a.error().str().c_str());
        QCOMPARE(b->step_time, a->step_time);
        QCOMPARE(b->memory.peak, a->memory.peak);
    }

    // What torchtitan does by default: FSDP over the ranks left, and a
    // pipeline split that weighs the embedding and the output as a layer each.
    void defaults()
    {
        const std::string toml = "[model]\nname = \"llama3\"\nflavor = \"8B\"\n[training]\nlocal_batch_size = 2\n"
                                 "[parallelism]\npipeline_parallel_degree = 4\ntensor_parallel_degree = 2\n";
        auto in = importTorchtitan(toml, "job.toml", 16);
        QVERIFY2(in, in ? "" : in.error().str().c_str());
        const Strategy& s = in->strategy;
        QCOMPARE(s.dp, 2);
        QCOMPARE(s.zero_stage, 2); // "default" keeps parameters with pipelining
        QCOMPARE(s.recompute, Recompute::Selective);
        QCOMPARE(s.global_batch, int64_t(4));
        QCOMPARE(in->seq_len, int64_t(2048));
        auto r = resolveStrategy(s, in->model, *clusterPreset("dgx-h100:2"));
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        std::vector<int> blocks(4, 0);
        for (size_t i = 0; i < in->model.layers.size(); ++i)
            if (in->model.layers[i].name.find(".input_layernorm") != std::string::npos)
                ++blocks[size_t(r->layers[i].stage)];
        QCOMPARE(blocks, (std::vector<int>{8, 9, 8, 7})); // 34 "layers" over 4: 9, 9, 8, 8 less one first and last
    }

    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("reason");
        QTest::newRow("not a flavor") << "model" << "registered Llama 3 flavors";
        QTest::newRow("ZeRO-1") << "zero1" << "zero_stage 1";
        QTest::newRow("fp16") << "fp16" << "bf16 or fp32";
        QTest::newRow("a ring for cp") << "p2p" << "no ring";
        QTest::newRow("parameter server") << "ps" << "uncompressed";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, reason);
        Model m = change == "model" ? *loadModel(PARTITA_TEST_DATA "/hf/llama-2-7b-hf.json") : llama3_8b();
        Strategy s = base();
        s.dp = 16;
        s.zero_stage = change == "zero1" ? 1 : 3;
        if (change == "fp16")
            s.precision = Precision::FP16;
        if (change == "p2p")
            s.cp = 2, s.dp = 8;
        if (change == "ps")
            s.zero_stage = 0, s.sync.method = SyncMethod::ParameterServer;
        const Cluster c = *clusterPreset("dgx-h100:2");
        auto ex = exportTorchtitan(m, c, s, 8192, ExportHeader{});
        QVERIFY(!ex);
        QVERIFY2(QString::fromStdString(ex.error().message).contains(reason), ex.error().str().c_str());
        auto closest = exportTorchtitan(m, c, s, 8192, ExportHeader{}, true);
        if (change == "model") { // a model cannot be made another
            QVERIFY(!closest);
            return;
        }
        QVERIFY2(closest, closest ? "" : closest.error().str().c_str());
        QVERIFY(!closest->differences.empty());
        QVERIFY(torchtitanRefusals(m, closest->exported).empty());
    }

    void badFiles_data()
    {
        QTest::addColumn<std::string>("toml");
        QTest::addColumn<int>("devices");
        QTest::addColumn<QString>("message");
        QTest::newRow("syntax") << std::string("[model\nname = 1\n") << 8 << "job.toml: line 1";
        QTest::newRow("another model") << std::string("[model]\nname = \"deepseek_v3\"\n") << 8 << "model.name";
        QTest::newRow("unknown flavor") << std::string("[model]\nflavor = \"3B\"\n") << 8 << "model.flavor: '3B'";
        QTest::newRow("a string for a degree") << std::string("[parallelism]\ntensor_parallel_degree = \"2\"\n") << 8
                                               << "parallelism.tensor_parallel_degree: expected an integer";
        QTest::newRow("HSDP") << std::string("[parallelism]\ndata_parallel_replicate_degree = 2\n"
                                             "data_parallel_shard_degree = 4\n") << 8 << "HSDP";
        QTest::newRow("-1 without a cluster") << std::string("[model]\nflavor = \"8B\"\n") << 0 << "give the cluster";
        QTest::newRow("degrees against the GPUs") << std::string("[parallelism]\ndata_parallel_shard_degree = 4\n")
                                                  << 8 << "the cluster has 8 GPUs";
        QTest::newRow("a schedule not modelled")
            << std::string("[parallelism]\npipeline_parallel_degree = 2\npipeline_parallel_schedule = \"ZBVZeroBubble\"\n")
            << 8 << "pipeline_parallel_schedule: 'ZBVZeroBubble'";
        QTest::newRow("batch") << std::string("[training]\nlocal_batch_size = 3\nglobal_batch_size = 40\n") << 8
                               << "training.global_batch_size";
    }
    void badFiles()
    {
        QFETCH(std::string, toml);
        QFETCH(int, devices);
        QFETCH(QString, message);
        auto in = importTorchtitan(toml, "job.toml", devices);
        QVERIFY(!in);
        QVERIFY2(QString::fromStdString(in.error().str()).contains(message), in.error().str().c_str());
    }
};

QTEST_APPLESS_MAIN(TestTorchtitan)
#include "tst_torchtitan.moc"
