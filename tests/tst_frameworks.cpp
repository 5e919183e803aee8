// SPDX-License-Identifier: GPL-3.0-or-later
// The one entry to the frameworks (core/src/frameworks.cpp): what a file is,
// and every framework's export read back through it to the same strategy.
#include "partita/core/clusterio.h"
#include "partita/core/frameworks.h"
#include "partita/core/modelio.h"

#include <QTest>

using namespace partita;

Q_DECLARE_METATYPE(std::string)

namespace {
Model gpt2()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/gpt2-medium.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
} // namespace

class TestFrameworks : public QObject
{
    Q_OBJECT
private slots:
    void names()
    {
        for (Framework f : allFrameworks()) {
            QCOMPARE(frameworkFromName(frameworkName(f)), std::optional<Framework>(f));
            QVERIFY(!frameworkTitle(f).empty());
        }
        QVERIFY(!frameworkFromName("colossalai"));
    }

    void detect_data()
    {
        QTest::addColumn<std::string>("text");
        QTest::addColumn<QString>("framework"); // empty: none
        QTest::newRow("ds_config.json") << std::string(R"({"train_batch_size": 64, "zero_optimization": {"stage": 2}})")
                                        << "deepspeed";
        QTest::newRow("a Hugging Face config.json") << std::string(R"({"model_type": "gpt2", "n_layer": 12})") << "";
        QTest::newRow("horovodrun") << std::string("horovodrun -np 16 -H a:8,b:8 python train.py\n") << "horovod";
        QTest::newRow("Megatron-LM script")
            << std::string("torchrun --nproc-per-node 8 pretrain_gpt.py --num-layers 24 --hidden-size 1024\n")
            << "megatron";
        QTest::newRow("Megatron-LM YAML (--yaml-cfg)")
            << std::string("language_model:\n  num_layers: 4\nmodel_parallel:\n  tensor_model_parallel_size: 2\n") << "megatron";
        QTest::newRow("Megatron-LM flags only") << std::string("--tensor-model-parallel-size 2 --num-layers 4") << "megatron";
        QTest::newRow("PyTorch export") << std::string("CONFIG = json.loads(r\"\"\"\n{\"partita_pytorch\": 1}\n\"\"\")\n")
                                        << "pytorch";
        QTest::newRow("torchtitan job") << std::string("[model]\nname = \"llama3\"\nflavor = \"8B\"\n") << "torchtitan";
        QTest::newRow("accelerate config") << std::string("compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\n")
                                           << "accelerate";
        QTest::newRow("a Python script") << std::string("import torch\nprint(torch.__version__)\n") << "";
        QTest::newRow("empty") << std::string("  \n") << "";
    }
    void detect()
    {
        QFETCH(std::string, text);
        QFETCH(QString, framework);
        const auto f = detectFramework(text);
        QCOMPARE(f ? QString::fromUtf8(frameworkName(*f).data(), int(frameworkName(*f).size())) : QString(), framework);
    }

    // A data-parallel strategy leaves through each framework and comes back
    // with its mesh and batch (and, where the file says it, its model).
    void roundTrip_data()
    {
        QTest::addColumn<QString>("framework");
        for (Framework f : allFrameworks())
            if (f != Framework::Torchtitan && f != Framework::Accelerate) // bf16 and fp32 only: their own tests
                QTest::newRow(frameworkTitle(f).data()) << QString::fromUtf8(frameworkName(f).data());
    }
    void roundTrip()
    {
        QFETCH(QString, framework);
        const Framework f = *frameworkFromName(framework.toStdString());
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge");
        Strategy s;
        s.name = "dp8";
        s.dp = 8;
        s.micro_batch = 2;
        s.global_batch = 32;
        s.precision = Precision::FP16;
        s.fp32_grad_accumulation = true;
        s.sync.sparse = false;
        s.bucket_bytes = 64 << 20;
        s.overlap_grad_reduce = f != Framework::DeepSpeed; // without ZeRO, DeepSpeed reduces after the backward
        const auto why = frameworkRefusals(f, m, s);
        QVERIFY2(why.empty(), why.empty() ? "" : why.front().c_str());
        auto ex = exportFramework(f, m, c, s, 1024, ExportHeader{"test", "dp8", "", 0.1, 1e9, "p3.16xlarge"});
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        QVERIFY(!ex->files.empty());
        const std::string& main = ex->files.front().second;
        QCOMPARE(detectFramework(main), std::optional<Framework>(f));
        auto back = importFramework(f, main, "exported", c.deviceCount());
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QCOMPARE(back->strategy.dp, 8);
        QCOMPARE(back->strategy.global_batch, int64_t(32));
        QCOMPARE(back->strategy.zero_stage, 0);
        QCOMPARE(back->model.has_value(), f == Framework::Megatron || f == Framework::PyTorch);
        if (back->model)
            QCOMPARE(back->model->parameterCount(), m.parameterCount());
    }

    void refusedOrClosest()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge");
        Strategy s;
        s.tp = 2;
        s.dp = 4;
        s.global_batch = 8;
        s.sync.sparse = false;
        auto refused = exportFramework(Framework::Horovod, m, c, s, 1024, ExportHeader{});
        QVERIFY(!refused);
        QVERIFY(QString::fromStdString(refused.error().message).contains("data-parallel only"));
        auto closest = exportFramework(Framework::Horovod, m, c, s, 1024, ExportHeader{}, true);
        QVERIFY2(closest, closest ? "" : closest.error().str().c_str());
        QCOMPARE(closest->exported.tp, 1);
        QVERIFY(!closest->differences.empty());
        auto noCluster = importFramework(Framework::DeepSpeed, R"({"train_batch_size": 8})", "ds.json", 0);
        QVERIFY(!noCluster);
        QVERIFY(QString::fromStdString(noCluster.error().str()).contains("give a cluster"));
    }
};

QTEST_APPLESS_MAIN(TestFrameworks)
#include "tst_frameworks.moc"
