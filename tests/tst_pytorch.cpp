// SPDX-License-Identifier: GPL-3.0-or-later
// The PyTorch export (core/src/pytorch.cpp): what it refuses, that its CONFIG
// imports back to the strategy exported, and that the script it writes trains
// on this CPU with Debian's python3-torch (gloo, two ranks started with the
// torch.distributed environment, since bookworm's torchrun fails on Python
// 3.11), building the model Partita counts.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/pytorch.h"
#include "torchranks.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <memory>
#include <vector>

using namespace partita;

namespace {

const char* const kPython = test::kSystemPython;

Model tiny(const std::string& family)
{
    const std::string cfg =
        family == "gpt2"
            ? R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 256, "n_positions": 64,
                 "_name_or_path": "tiny-gpt2"})"
            : R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 256, "max_position_embeddings": 64,
                 "tie_word_embeddings": false, "_name_or_path": "tiny-llama"})";
    auto m = modelFromHfConfig(cfg, family + ".json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

Cluster ranks(int n)
{
    Cluster c = *clusterPreset("p3.16xlarge");
    c.nodes.front().devices.resize(size_t(n));
    return c;
}
Cluster twoRanks() { return ranks(2); }

Strategy dataParallel(const QString& kind)
{
    Strategy s;
    s.name = kind.toStdString();
    s.dp = 2;
    s.micro_batch = 1;
    s.global_batch = 4; // two micro-batches accumulated per rank
    s.precision = Precision::FP32;
    s.sync.sparse = false;
    if (kind == "zero1-bf16-full") {
        s.zero_stage = 1;
        s.precision = Precision::BF16;
        s.fp32_grad_accumulation = true;
        s.recompute = Recompute::Full;
    } else if (kind == "fp16-compression") {
        s.sync.compression = Compression::FP16;
    } else if (kind == "powersgd-selective-unfused") {
        s.sync.compression = Compression::PowerSGD;
        s.sync.powersgd_rank = 2;
        s.recompute = Recompute::Selective;
        s.attention = Attention::Unfused;
        s.bucket_bytes = 1 << 20;
    } else if (kind == "zero3") {
        s.zero_stage = 3;
    } else if (kind == "tp2") { // tensor parallelism alone
        s.tp = 2;
        s.dp = 1;
        s.global_batch = 2;
    } else if (kind == "tp2-sp-zero2") { // a (dp, tp) mesh: FSDP2 beside a sequence-parallel DTensor plan
        s.tp = 2;
        s.sequence_parallel = true;
        s.zero_stage = 2;
    }
    return s;
}

} // namespace

class TestPyTorch : public QObject
{
    Q_OBJECT
private slots:
    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("reason");
        QTest::newRow("tensor parallelism with DDP") << "tp-ddp" << "take no DTensor parameters";
        QTest::newRow("tensor-parallel overlap") << "tp-overlap" << "needs torch.compile";
        QTest::newRow("tensor parallelism in fp16") << "tp-fp16" << "checks for infinities per rank";
        QTest::newRow("pipeline") << "pp" << "no pipeline schedule";
        QTest::newRow("fp8") << "fp8" << "no FP8 training recipe";
        QTest::newRow("bf16 gradients") << "bf16grads" << "autocast keeps fp32 parameters";
        QTest::newRow("parameter server") << "ps" << "no parameter server";
        QTest::newRow("compression under FSDP") << "fsdp-fp16" << "takes no DDP communication hook";
        QTest::newRow("sparse embedding rows") << "sparse" << "layer 'embeddings' (sparse rows)";
        QTest::newRow("per-layer atoms") << "layers" << "layer 'h.*.mlp.*'";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, reason);
        const Model m = tiny("gpt2");
        Strategy s = dataParallel("ddp");
        Cluster c = twoRanks();
        if (change == "tp-ddp")
            s.tp = 2, c = ranks(4);
        else if (change == "tp-fp16")
            s.tp = 2, s.dp = 1, s.global_batch = 2, s.precision = Precision::FP16, s.fp32_grad_accumulation = true;
        else if (change == "tp-overlap")
            s.tp = 2, s.dp = 1, s.global_batch = 2, s.sequence_parallel = s.tp_comm_overlap = true;
        else if (change == "pp")
            s.pp = 2, s.dp = 1, s.global_batch = 2;
        else if (change == "fp8")
            s.precision = Precision::FP8;
        else if (change == "bf16grads")
            s.precision = Precision::BF16;
        else if (change == "ps")
            s.sync.method = SyncMethod::ParameterServer;
        else if (change == "fsdp-fp16")
            s.zero_stage = 2, s.sync.compression = Compression::FP16;
        else if (change == "sparse")
            s.sync.sparse = true;
        else if (change == "layers") {
            LayerOverride o;
            o.pattern = "h.*.mlp.*";
            o.sync = SyncAtom{};
            s.layers.push_back(o);
        }
        auto refused = exportPyTorch(m, c, s, 32, ExportHeader{});
        QVERIFY(!refused);
        QVERIFY2(QString::fromStdString(refused.error().message).contains(reason), refused.error().str().c_str());
        // --closest writes what the script can run instead, and says how it differs.
        auto closest = exportPyTorch(m, c, s, 32, ExportHeader{}, true);
        QVERIFY2(closest, closest ? "" : closest.error().str().c_str());
        QVERIFY(!closest->differences.empty());
        QVERIFY(pytorchRefusals(m, closest->exported).empty());
        QVERIFY(resolveStrategy(closest->exported, m, c));
    }

    void roundTrip_data()
    {
        QTest::addColumn<QString>("family");
        QTest::addColumn<QString>("kind");
        QTest::newRow("GPT-2, DDP, fp32") << "gpt2" << "ddp";
        QTest::newRow("Llama, ZeRO-1, bf16, full recomputation") << "llama" << "zero1-bf16-full";
        QTest::newRow("GPT-2, fp16 compression") << "gpt2" << "fp16-compression";
        QTest::newRow("Llama, PowerSGD, selective, unfused") << "llama" << "powersgd-selective-unfused";
        QTest::newRow("GPT-2, ZeRO-3 (FSDP2)") << "gpt2" << "zero3";
        QTest::newRow("GPT-2, tp 2 (DTensor)") << "gpt2" << "tp2";
        QTest::newRow("Llama, dp 2 x tp 2, sequence parallel, ZeRO-2") << "llama" << "tp2-sp-zero2";
    }
    void roundTrip()
    {
        QFETCH(QString, family);
        QFETCH(QString, kind);
        const Model m = tiny(family.toStdString());
        const Strategy s = dataParallel(kind);
        ExportHeader h;
        h.version = "test";
        h.step_time_s = 0.5;
        h.peak_memory_bytes = 1 << 30;
        h.cluster = "two";
        auto ex = exportPyTorch(m, twoRanks(), s, 32, h);
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        QVERIFY(ex->script.find("# Predicted on two: 0.5 s per step, 1 GiB peak memory per GPU.") != std::string::npos);
        auto back = importPyTorch(ex->script, "train.py");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(back->strategy == s);
        QCOMPARE(back->seq_len, int64_t(32));
        QCOMPARE(back->model.parameterCount(), m.parameterCount());
        QCOMPARE(back->model.layers.size(), m.layers.size());
    }

    // The script trains: two gloo ranks, a few steps, the loss falls, and the
    // model it builds has the parameters Partita counts. Where this PyTorch
    // lacks what the strategy needs (FSDP2 before 2.4), the script says so
    // and exits non-zero; it still compiles.
    void trainsOnThisCpu_data() { roundTrip_data(); }
    void trainsOnThisCpu()
    {
        QFETCH(QString, family);
        QFETCH(QString, kind);
        if (!test::hasSystemTorch())
            QSKIP("Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)");
        const Model m = tiny(family.toStdString());
        const Strategy s = dataParallel(kind);
        const int world = s.dp * s.tp;
        auto ex = exportPyTorch(m, ranks(world), s, 32, ExportHeader{});
        QVERIFY(ex);
        QTemporaryDir dir;
        const QString script = dir.filePath("train.py");
        QFile f(script);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(ex->script.data(), qint64(ex->script.size()));
        f.close();
        QProcess compile;
        compile.start(kPython, {"-m", "py_compile", script});
        QVERIFY(compile.waitForFinished(60000));
        QCOMPARE(compile.exitCode(), 0);

        auto procs = test::runTorchRanks(world, {script, "--steps", "6"});
        QProcess& rank0 = *procs.front();
        const QString err = QString::fromUtf8(rank0.readAllStandardError());
        QList<QJsonObject> lines;
        for (const QByteArray& l : rank0.readAllStandardOutput().split('\n'))
            if (!l.trimmed().isEmpty())
                lines.push_back(QJsonDocument::fromJson(l).object());
        // This PyTorch lacks FSDP2 or DTensor's tensor parallelism (bookworm's
        // 1.13 lacks both): the script says so and exits; it compiled.
        for (const char* lacks : {"FSDP2's fully_shard, which PyTorch", "torch.distributed.tensor.parallel, which PyTorch"})
            if (err.contains(lacks)) {
                QVERIFY(rank0.exitCode() != 0);
                QWARN(qPrintable("not run here: " + err.trimmed().split('\n').last()));
                return;
            }
        const QString failures = test::rankFailures(procs);
        QVERIFY2(failures.isEmpty(), qPrintable(QString("rank 0 printed %1 of 7 lines; ").arg(lines.size()) + failures +
                                                 "rank 0's stderr before:\n" + err));
        QCOMPARE(lines.size(), 7);
        QCOMPARE(qint64(lines.front()["parameters"].toDouble()), qint64(m.parameterCount()));
        const double first = lines[1]["loss"].toDouble(), last = lines.back()["loss"].toDouble();
        QVERIFY2(last < first, qPrintable(QString("loss %1 -> %2").arg(first).arg(last)));
        QVERIFY(lines.back()["step_time_s"].toDouble() > 0);
    }

    void badScripts_data()
    {
        QTest::addColumn<QString>("edit");
        QTest::addColumn<QString>("message");
        QTest::newRow("not Partita's") << "noconfig" << "not a script Partita's PyTorch export wrote";
        QTest::newRow("never closed") << "unclosed" << "is never closed";
        QTest::newRow("JSON syntax, at the script's line") << "syntax" << "line 3";
        QTest::newRow("unknown precision") << "precision" << "CONFIG/strategy/precision";
        QTest::newRow("batch not divisible") << "batch" << "no multiple of micro_batch x dp";
        QTest::newRow("family it does not build") << "family" << "CONFIG/model/family";
    }
    void badScripts()
    {
        QFETCH(QString, edit);
        QFETCH(QString, message);
        std::string text;
        if (edit == "noconfig")
            text = "import torch\nprint('hello')\n";
        else if (edit == "unclosed")
            text = "import json\nCONFIG = json.loads(r\"\"\"\n{\"model\": {}}\n";
        else if (edit == "syntax")
            text = "import json\nCONFIG = json.loads(r\"\"\"\n{\"model\": ,}\n\"\"\")\n";
        else {
            auto ex = exportPyTorch(tiny("gpt2"), twoRanks(), dataParallel("ddp"), 32, ExportHeader{});
            QVERIFY(ex);
            text = ex->script;
            auto swap = [&](const std::string& a, const std::string& b) {
                const size_t at = text.find(a);
                QVERIFY2(at != std::string::npos, a.c_str());
                text.replace(at, a.size(), b);
            };
            if (edit == "precision")
                swap("\"precision\": \"fp32\"", "\"precision\": \"fp7\"");
            else if (edit == "batch")
                swap("\"global_batch\": 4", "\"global_batch\": 5");
            else
                swap("\"family\": \"gpt2\"", "\"family\": \"bert\"");
        }
        auto r = importPyTorch(text, "train.py");
        QVERIFY(!r);
        QCOMPARE(QString::fromStdString(r.error().file), QString("train.py"));
        QVERIFY2(QString::fromStdString(r.error().str()).contains(message), r.error().str().c_str());
    }
};

QTEST_GUILESS_MAIN(TestPyTorch)
#include "tst_pytorch.moc"
