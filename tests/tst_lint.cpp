// Configurations checked before they run: every rule a row breaks is found
// (not only the first), named by flag or key with a fix, and a clean
// configuration has no findings.
#include "partita/core/lint.h"

#include <QTest>

using namespace partita;

namespace {
const QString kShape = "torchrun --nnodes 2 --nproc-per-node 8 pretrain_gpt.py --num-layers 32 --hidden-size 4096 "
                       "--num-attention-heads 32 --seq-length 4096 ";
}

class TestLint : public QObject
{
    Q_OBJECT
private slots:
    void megatron_data()
    {
        QTest::addColumn<QString>("flags");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::addColumn<bool>("refused");
        QTest::newRow("clean") << "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --global-batch-size 64" << "" << "" << false;
        QTest::newRow("tp vs heads") << "--tensor-model-parallel-size 3" << "--tensor-model-parallel-size" << "does not divide --num-attention-heads 32" << true;
        QTest::newRow("query groups") << "--tensor-model-parallel-size 4 --group-query-attention --num-query-groups 2" << "--num-query-groups" << "not divisible by tensor-parallel size 4" << true;
        QTest::newRow("layers vs pp") << "--pipeline-model-parallel-size 3" << "--num-layers" << "do not divide over 3 pipeline stages" << true;
        QTest::newRow("virtual stages") << "--pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 3 --global-batch-size 16" << "--num-layers-per-virtual-pipeline-stage" << "does not divide the 16 layers" << true;
        QTest::newRow("sequence vs cp") << "--context-parallel-size 2 --seq-length 4098" << "--seq-length" << "2 x --context-parallel-size" << true;
        QTest::newRow("sp without tp") << "--sequence-parallel" << "--sequence-parallel" << "no effect" << false;
        QTest::newRow("tp overlap without sp") << "--tensor-model-parallel-size 2 --tp-comm-overlap" << "--tp-comm-overlap" << "needs --sequence-parallel" << true;
        QTest::newRow("gather without dist opt") << "--overlap-param-gather" << "--overlap-param-gather" << "--use-distributed-optimizer" << true;
        QTest::newRow("fp16 and bf16") << "--fp16 --bf16" << "--fp16" << "together" << true;
        QTest::newRow("batch vs dp") << "--tensor-model-parallel-size 2 --micro-batch-size 2 --global-batch-size 20" << "--global-batch-size" << "micro-batch-size x data-parallel size = 16" << true;
        QTest::newRow("mesh vs GPUs") << "--tensor-model-parallel-size 8 --pipeline-model-parallel-size 4" << "--tensor-model-parallel-size" << "does not divide the 16 GPUs" << true;
        QTest::newRow("shell variable") << "--micro-batch-size $MBS" << "--micro-batch-size" << "not a whole number" << true;
    }
    void megatron()
    {
        QFETCH(QString, flags);
        QFETCH(QString, where);
        QFETCH(QString, message);
        QFETCH(bool, refused);
        const auto found = lintMegatron((kShape + flags).toStdString());
        if (where.isEmpty()) {
            QVERIFY2(found.empty(), found.empty() ? "" : found.front().message.c_str());
            return;
        }
        bool hit = false;
        for (const LintFinding& f : found)
            if (QString::fromStdString(f.where) == where && QString::fromStdString(f.message).contains(message)) {
                hit = true;
                QCOMPARE(f.kind == LintFinding::Kind::Refused, refused);
                QVERIFY(!f.fix.empty());
            }
        QVERIFY2(hit, found.empty() ? "no findings" : (found.front().where + ": " + found.front().message).c_str());
    }

    // Several broken rules: every one is reported.
    void megatronAllFound()
    {
        const auto found = lintMegatron(
            (kShape + "--tensor-model-parallel-size 3 --pipeline-model-parallel-size 3 --fp16 --bf16").toStdString());
        QVERIFY2(found.size() >= 3, std::to_string(found.size()).c_str());
    }

    void deepspeed_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("clean") << R"({"train_batch_size": 64, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1, "zero_optimization": {"stage": 2, "overlap_comm": true}})" << "" << "";
        QTest::newRow("batch rule") << R"({"train_batch_size": 100, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2})" << "/train_batch_size" << "x data-parallel size 16";
        QTest::newRow("batch not a multiple") << R"({"train_batch_size": 100, "train_micro_batch_size_per_gpu": 4})" << "/train_batch_size" << "not a multiple";
        QTest::newRow("fp16 and bf16") << R"({"fp16": {"enabled": true}, "bf16": {"enabled": true}})" << "/fp16/enabled" << "both enabled";
        QTest::newRow("ZeRO-2 with pipelines") << R"({"pipeline": {"stages": 2}, "zero_optimization": {"stage": 2}})" << "/zero_optimization/stage" << "stage 0 or 1";
        QTest::newRow("1-bit Adam with ZeRO") << R"({"optimizer": {"type": "OneBitAdam"}, "zero_optimization": {"stage": 1}})" << "/optimizer/type" << "without ZeRO";
        QTest::newRow("overlap without ZeRO") << R"({"zero_optimization": {"stage": 0, "overlap_comm": true}})" << "/zero_optimization/overlap_comm" << "ZeRO's";
        QTest::newRow("auto") << R"({"train_batch_size": "auto"})" << "/train_batch_size" << "Hugging Face Trainer";
        QTest::newRow("a ZeRO key DeepSpeed does not define") << R"({"zero_optimization": {"stage": 1, "reduce_bucket": 5e8}})" << "/zero_optimization/reduce_bucket" << "extra=\"forbid\"";
        QTest::newRow("stage3 aliases are keys") << R"({"train_batch_size": 128, "train_micro_batch_size_per_gpu": 8, "zero_optimization": {"stage": 3, "stage3_prefetch_bucket_size": 5e7, "overlap_comm": true}})" << "" << "";
        QTest::newRow("stage 7") << R"({"zero_optimization": {"stage": 7}})" << "/zero_optimization/stage" << "does not exist";
        QTest::newRow("AutoTP vs GPUs") << R"({"tensor_parallel": {"autotp_size": 3}})" << "/tensor_parallel/autotp_size" << "does not divide the 16 GPUs";
        QTest::newRow("not JSON") << R"({"train_batch_size": )" << "line" << "";
        QTest::newRow("type not a string") << R"({"optimizer": {"type": 3}})" << "/optimizer/type" << "";
        QTest::newRow("a top-level key DeepSpeed does not read") << R"({"train_batch_size": 64, "zero_optimisation": {"stage": 2}})" << "/zero_optimisation" << "ignored";
    }
    void deepspeed()
    {
        QFETCH(QString, json);
        QFETCH(QString, where);
        QFETCH(QString, message);
        const auto found = lintDeepSpeed(json.toStdString(), 16);
        if (where.isEmpty()) {
            QVERIFY2(found.empty(), found.empty() ? "" : found.front().message.c_str());
            return;
        }
        bool hit = false;
        for (const LintFinding& f : found)
            hit |= QString::fromStdString(f.where).startsWith(where) && QString::fromStdString(f.message).contains(message);
        QVERIFY2(hit, found.empty() ? "no findings" : (found.front().where + ": " + found.front().message).c_str());
    }

    // torchtitan v0.2.2 job TOMLs on 16 GPUs: every rule broken is found,
    // with whether torchtitan stops (refused) or runs otherwise.
    void torchtitan_data()
    {
        QTest::addColumn<QString>("toml");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::addColumn<bool>("refused");
        const QString ok = "[model]\nname = 'llama3'\nflavor = '8B'\n[training]\nlocal_batch_size = 2\nglobal_batch_size = 64\n"
                           "seq_len = 8192\n[parallelism]\ntensor_parallel_degree = 8\n";
        QTest::newRow("clean") << ok << "" << "" << false;
        QTest::newRow("unknown key") << ok + "tensor_paralel_degree = 2\n" << "parallelism.tensor_paralel_degree" << "no such field" << true;
        QTest::newRow("degrees vs GPUs") << ok + "data_parallel_shard_degree = 4\n" << "parallelism" << "is not the 16 GPUs" << true;
        QTest::newRow("the rest does not divide") << ok + "context_parallel_degree = 3\n" << "parallelism" << "is not the 16 GPUs" << true;
        QTest::newRow("batch vs data parallelism") << QString(ok).replace("global_batch_size = 64", "global_batch_size = 66")
                                                  << "training.global_batch_size" << "data-parallel degree 2" << true;
        QTest::newRow("micro-batches") << ok + "pipeline_parallel_degree = 2\npipeline_parallel_microbatch_size = 3\n"
                                       << "parallelism.pipeline_parallel_microbatch_size" << "does not divide local_batch_size 2" << true;
        QTest::newRow("async TP uncompiled") << ok + "enable_async_tensor_parallel = true\n" << "parallelism.enable_async_tensor_parallel"
                                             << "Async TP requires" << true;
        QTest::newRow("async TP compiled") << ok + "enable_async_tensor_parallel = true\n[compile]\nenable = true\n" << "" << "" << false;
        QTest::newRow("async TP, loss compiled only")
            << ok + "enable_async_tensor_parallel = true\n[compile]\nenable = true\ncomponents = ['loss']\n"
            << "parallelism.enable_async_tensor_parallel" << "Async TP requires" << true;
        QTest::newRow("heads vs tp") << QString(ok).replace("tensor_parallel_degree = 8", "tensor_parallel_degree = 16")
                                     << "parallelism.tensor_parallel_degree" << "8 key-value heads" << true;
        QTest::newRow("sequence vs cp") << QString(ok).replace("seq_len = 8192", "seq_len = 8190").replace("tensor_parallel_degree = 8", "tensor_parallel_degree = 4") + "context_parallel_degree = 2\n"
                                        << "training.seq_len" << "2 x context_parallel_degree" << true;
        QTest::newRow("not TOML") << "[parallelism\n" << "line 1" << "" << true;
    }
    void torchtitan()
    {
        QFETCH(QString, toml);
        QFETCH(QString, where);
        QFETCH(QString, message);
        QFETCH(bool, refused);
        check(lintTorchtitan(toml.toStdString(), 16), where, message, refused);
    }

    // accelerate v1.14.0 config YAMLs on 16 GPUs.
    void accelerate_data()
    {
        QTest::addColumn<QString>("yaml");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::addColumn<bool>("refused");
        const QString ok = "compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nmixed_precision: bf16\nnum_machines: 2\n"
                           "num_processes: 16\nfsdp_config:\n  fsdp_version: 2\nparallelism_config:\n"
                           "  parallelism_config_dp_shard_size: 2\n  parallelism_config_tp_size: 8\n";
        QTest::newRow("clean") << ok << "" << "" << false;
        QTest::newRow("unknown top-level key") << ok + "mixed_precison: fp16\n" << "mixed_precison" << "no such key" << true;
        QTest::newRow("unknown nested key") << ok + "  parallelism_config_tp_sise: 2\n" << "parallelism_config.parallelism_config_tp_sise"
                                            << "ignored" << false;
        QTest::newRow("precision") << QString(ok).replace("mixed_precision: bf16", "mixed_precision: int8") << "mixed_precision"
                                   << "none of no, fp16, bf16, fp8" << true;
        QTest::newRow("more processes than GPUs") << QString(ok).replace("num_processes: 16", "num_processes: 32") << "num_processes"
                                                  << "find no device" << true;
        QTest::newRow("fewer processes than GPUs") << QString(ok).replace("num_processes: 16", "num_processes: 8")
                                                          .replace("dp_shard_size: 2", "dp_shard_size: 1")
                                                   << "num_processes" << "idle" << false;
        QTest::newRow("parallel sizes") << QString(ok).replace("dp_shard_size: 2", "dp_shard_size: 4") << "parallelism_config"
                                        << "total_size does not match" << true;
        QTest::newRow("ZeRO stage") << "distributed_type: DEEPSPEED\nnum_processes: 16\ndeepspeed_config:\n  zero_stage: 4\n"
                                    << "deepspeed_config.zero_stage" << "does not exist" << true;
        QTest::newRow("not YAML") << "a: [1, 2\n" << "line" << "" << true;
    }
    void accelerate()
    {
        QFETCH(QString, yaml);
        QFETCH(QString, where);
        QFETCH(QString, message);
        QFETCH(bool, refused);
        check(lintAccelerate(yaml.toStdString(), 16), where, message, refused);
    }

private:
    static void check(const std::vector<LintFinding>& found, const QString& where, const QString& message, bool refused)
    {
        if (where.isEmpty()) {
            QVERIFY2(found.empty(), found.empty() ? "" : (found.front().where + ": " + found.front().message).c_str());
            return;
        }
        bool hit = false;
        for (const LintFinding& f : found)
            hit |= QString::fromStdString(f.where).startsWith(where) && QString::fromStdString(f.message).contains(message) &&
                   (f.kind == LintFinding::Kind::Refused) == refused;
        QVERIFY2(hit, found.empty() ? "no findings" : (found.front().where + ": " + found.front().message).c_str());
    }
};

QTEST_APPLESS_MAIN(TestLint)
#include "tst_lint.moc"
