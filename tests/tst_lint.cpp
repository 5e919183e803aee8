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
};

QTEST_APPLESS_MAIN(TestLint)
#include "tst_lint.moc"
