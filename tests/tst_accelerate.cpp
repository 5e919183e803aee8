// SPDX-License-Identifier: GPL-3.0-or-later
// accelerate config YAMLs (core/src/accelerate.cpp): export -> import predicts
// the same step for each distributed type, refusals with the closest
// strategy, and files accelerate writes by hand or refuses, named by line and key.
#include "partita/core/accelerate.h"
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"

#include <QTest>

using namespace partita;

Q_DECLARE_METATYPE(std::string)

namespace {
Model llama()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/llama-2-7b-hf.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

Strategy base()
{
    Strategy s;
    s.name = "a";
    s.dp = 8;
    s.global_batch = 32;
    s.precision = Precision::BF16;
    s.fp32_grad_accumulation = true;
    s.sync.sparse = false;
    return s;
}
} // namespace

class TestAccelerate : public QObject
{
    Q_OBJECT
private slots:
    void roundTrip_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("type");
        QTest::newRow("DDP, fp32") << "ddp" << "MULTI_GPU";
        QTest::newRow("DeepSpeed ZeRO-1") << "zero1" << "DEEPSPEED";
        QTest::newRow("FSDP2 ZeRO-3 with tp 2") << "fsdp-tp" << "FSDP";
        QTest::newRow("FSDP2 ZeRO-2, full recomputation") << "fsdp2" << "FSDP";
        QTest::newRow("FSDP2 with cp 2") << "fsdp-cp" << "FSDP";
        QTest::newRow("Megatron-LM tp 2 x pp 2, distributed optimizer") << "megatron" << "MEGATRON_LM";
    }
    void roundTrip()
    {
        QFETCH(QString, kind);
        QFETCH(QString, type);
        const Model m = llama();
        const Cluster c = *clusterPreset("dgx-h100");
        Strategy s = base();
        if (kind == "ddp") {
            s.precision = Precision::FP32;
        } else if (kind == "zero1") {
            s.zero_stage = 1;
            s.micro_batch = 2;
        } else if (kind == "fsdp-tp") {
            s.zero_stage = 3;
            s.tp = 2, s.dp = 4;
            s.sequence_parallel = true;
        } else if (kind == "fsdp2") {
            s.zero_stage = 2;
            s.overlap_param_gather = true;
            s.recompute = Recompute::Full;
        } else if (kind == "fsdp-cp") {
            s.zero_stage = 3;
            s.cp = 2, s.dp = 4;
            s.cp_comm = ContextComm::AllGather;
        } else {
            s.zero_stage = 1;
            s.tp = s.pp = 2, s.dp = 2;
            s.sequence_parallel = true;
            s.recompute = Recompute::Selective;
        }
        const auto why = accelerateRefusals(m, s);
        QVERIFY2(why.empty(), why.empty() ? "" : why.front().c_str());
        auto ex = exportAccelerate(m, c, s, ExportHeader{"test", "a", "", 1.0, 1e9, "dgx-h100"});
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        QVERIFY(ex->yaml.find("distributed_type: " + type.toStdString() + "\n") != std::string::npos);
        auto back = importAccelerate(ex->yaml, "acc.yaml");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        for (const auto& n : back->notes) // every key written is one accelerate knows
            QVERIFY2(n.find("does not know") == std::string::npos, n.c_str());
        QCOMPARE(back->world, 8);
        SimOptions o;
        auto a = simulate(m, c, s, o), b = simulate(m, c, back->strategy, o);
        QVERIFY2(a && b, a ? (b ? "" : b.error().str().c_str()) : a.error().str().c_str());
        QCOMPARE(b->step_time, a->step_time);
        QCOMPARE(b->memory.peak, a->memory.peak);
    }

    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("reason");
        QTest::newRow("tp without FSDP") << "tp-ddp" << "run under FSDP2";
        QTest::newRow("ZeRO-3 with pipelines") << "pp-zero3" << "with pipelines";
        QTest::newRow("recomputation the config cannot say") << "ddp-recompute" << "the training script turns it on";
        QTest::newRow("PowerSGD") << "powersgd" << "uncompressed";
        QTest::newRow("interleaving") << "interleave" << "no key for them";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, reason);
        Strategy s = base();
        if (change == "tp-ddp")
            s.tp = 2, s.dp = 4, s.sequence_parallel = true;
        else if (change == "pp-zero3")
            s.pp = 2, s.dp = 4, s.zero_stage = 3;
        else if (change == "ddp-recompute")
            s.recompute = Recompute::Full;
        else if (change == "powersgd")
            s.sync.compression = Compression::PowerSGD;
        else
            s.pp = 2, s.dp = 4, s.interleave = 2, s.schedule = PipelineSchedule::Interleaved;
        const Model m = llama();
        const Cluster c = *clusterPreset("dgx-h100");
        auto ex = exportAccelerate(m, c, s, ExportHeader{});
        QVERIFY(!ex);
        QVERIFY2(QString::fromStdString(ex.error().message).contains(reason), ex.error().str().c_str());
        auto closest = exportAccelerate(m, c, s, ExportHeader{}, true);
        QVERIFY2(closest, closest ? "" : closest.error().str().c_str());
        QVERIFY(!closest->differences.empty());
        QVERIFY(accelerateRefusals(m, closest->exported).empty());
        QVERIFY2(resolveStrategy(closest->exported, m, c), "the closest strategy runs on the cluster");
    }

    void handWritten_data()
    {
        QTest::addColumn<std::string>("yaml");
        QTest::addColumn<QString>("expect"); // "dp/zero" or the error
        QTest::newRow("FSDP v1 FULL_SHARD") << std::string("distributed_type: FSDP\nnum_processes: 8\nmixed_precision: bf16\n"
                                                           "fsdp_config:\n  fsdp_reshard_after_forward: FULL_SHARD\n")
                                            << "8/3";
        QTest::newRow("FSDP v1 SHARD_GRAD_OP") << std::string("distributed_type: FSDP\nnum_processes: 4\nfsdp_config:\n"
                                                              "  fsdp_version: 1\n  fsdp_reshard_after_forward: SHARD_GRAD_OP\n")
                                               << "4/2";
        QTest::newRow("a key accelerate refuses") << std::string("distributed_type: MULTI_GPU\nnum_processes: 2\nbatch_size: 8\n")
                                                  << "2/0 batch_size";
        QTest::newRow("syntax") << std::string("distributed_type: [MULTI_GPU\nnum_processes: 2\n") << "acc.yaml: line";
        QTest::newRow("XLA") << std::string("distributed_type: XLA\nnum_processes: 8\n") << "distributed_type: 'XLA'";
        QTest::newRow("HSDP") << std::string("distributed_type: FSDP\nnum_processes: 8\nfsdp_config:\n"
                                             "  fsdp_reshard_after_forward: HYBRID_SHARD\n") << "HSDP";
        QTest::newRow("processes") << std::string("distributed_type: MULTI_GPU\nnum_processes: -1\n") << "num_processes";
        QTest::newRow("a section that is no mapping") << std::string("distributed_type: FSDP\nnum_processes: 8\nfsdp_config: 3\n")
                                                      << "fsdp_config: expected a mapping";
        QTest::newRow("a list for a number") << std::string("distributed_type: MEGATRON_LM\nnum_processes: 8\n"
                                                            "megatron_lm_config:\n  megatron_lm_tp_degree: [2]\n")
                                             << "megatron_lm_config.megatron_lm_tp_degree: expected an integer";
    }
    void handWritten()
    {
        QFETCH(std::string, yaml);
        QFETCH(QString, expect);
        auto in = importAccelerate(yaml, "acc.yaml");
        if (!expect.front().isDigit()) {
            QVERIFY(!in);
            QVERIFY2(QString::fromStdString(in.error().str()).contains(expect), in.error().str().c_str());
            return;
        }
        QVERIFY2(in, in ? "" : in.error().str().c_str());
        const QStringList parts = expect.split(' ');
        QCOMPARE(QString("%1/%2").arg(in->strategy.dp).arg(in->strategy.zero_stage), parts.front());
        std::string notes;
        for (const auto& n : in->notes)
            notes += n + "\n";
        QVERIFY2(QString::fromStdString(notes).contains("no '# batch:' line"), notes.c_str());
        if (parts.size() > 1)
            QVERIFY2(QString::fromStdString(notes).contains("does not know (it refuses unknown top-level keys): " + parts[1]),
                     notes.c_str());
        QCOMPARE(accelerateKeys().size(), size_t(71));
    }
};

QTEST_APPLESS_MAIN(TestAccelerate)
#include "tst_accelerate.moc"
