// DeepSpeed configurations: export -> import gives the strategy back, what
// DeepSpeed cannot run is refused with every reason (or replaced by the
// closest strategy), every key written is one DeepSpeed v0.18.9 reads, and
// DeepSpeed's own start-up rules are checked on import.
#include "partita/core/clusterio.h"
#include "partita/core/deepspeed.h"
#include "partita/core/modelio.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>

#include <set>

using namespace partita;

namespace {
Model load(const char* name)
{
    auto m = loadModel(std::string(PARTITA_TEST_DATA "/hf/") + name);
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Strategy plain(int tp, int pp, int dp, int zero)
{
    Strategy s;
    s.name = "row";
    s.tp = tp;
    s.pp = pp;
    s.dp = dp;
    s.zero_stage = zero;
    s.micro_batch = 2;
    s.global_batch = 4 * dp;
    s.overlap_grad_reduce = zero > 0;
    return s;
}
void flatten(const QJsonObject& o, const QString& prefix, QStringList& out)
{
    for (auto it = o.begin(); it != o.end(); ++it) {
        const QString key = prefix.isEmpty() ? it.key() : prefix + "." + it.key();
        if (it.value().isObject())
            flatten(it.value().toObject(), key, out);
        else
            out << key;
    }
}
} // namespace

class TestDeepSpeed : public QObject
{
    Q_OBJECT
private slots:
    void roundTrip_data()
    {
        QTest::addColumn<int>("row");
        QTest::newRow("ZeRO-1, bf16") << 0;
        QTest::newRow("ZeRO-3, fp16 with fp32 accumulation, full recompute") << 1;
        QTest::newRow("data parallel fp32 with fp16 gradients, sparse embeddings, after the backward") << 2;
        QTest::newRow("AutoTP 2 and 2 pipeline stages, ZeRO-1") << 3;
    }
    void roundTrip()
    {
        QFETCH(int, row);
        const Model m = load("gpt2-medium.json");
        const Cluster c = *clusterPreset("dgx-a100-80gb:2");
        Strategy s;
        switch (row) {
        case 0:
            s = plain(1, 1, 16, 1);
            s.sync.sparse = false;
            break;
        case 1:
            s = plain(1, 1, 16, 3);
            s.precision = Precision::FP16;
            s.fp32_grad_accumulation = true;
            s.recompute = Recompute::Full;
            s.sync.sparse = false;
            s.bucket_bytes = 50 << 20;
            break;
        case 2:
            s = plain(1, 1, 16, 0);
            s.precision = Precision::FP32;
            s.sync.compression = Compression::FP16;
            s.sync.sparse = true;
            break;
        default:
            s = plain(2, 2, 4, 1);
            s.sync.sparse = false;
            break;
        }
        QVERIFY2(resolveStrategy(s, m, c), resolveStrategy(s, m, c) ? "" : resolveStrategy(s, m, c).error().str().c_str());
        ExportHeader h;
        h.version = "test";
        auto ex = exportDeepSpeed(m, c, s, h);
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        QVERIFY(ex->differences.empty());
        QVERIFY(ex->launch.find("deepspeed --hostfile hostfile --num_nodes 2 --num_gpus 8") != std::string::npos);
        QVERIFY(ex->hostfile.find("slots=8") != std::string::npos);
        auto in = importDeepSpeed(ex->config, "ds_config.json", c.deviceCount());
        QVERIFY2(in, in ? "" : in.error().str().c_str());
        Strategy back = in->strategy;
        back.name = s.name;
        if (back != s)
            QFAIL(qPrintable(QString::fromStdString("exported:\n" + strategyToJson(s) + "imported:\n" + strategyToJson(back))));
        // Every key written is one DeepSpeed v0.18.9 reads.
        QFile f(PARTITA_TEST_DATA "/frameworks/deepspeed-v0.18.9-keys.txt");
        QVERIFY(f.open(QIODevice::ReadOnly));
        std::set<QString> known;
        for (const QString& line : QString::fromUtf8(f.readAll()).split('\n'))
            if (!line.startsWith('#') && !line.trimmed().isEmpty())
                known.insert(line.trimmed());
        QStringList keys;
        flatten(QJsonDocument::fromJson(QByteArray::fromStdString(ex->config)).object(), {}, keys);
        QVERIFY(keys.size() >= 8);
        for (const QString& k : keys)
            QVERIFY2(known.count(k), qPrintable(k + " is not a DeepSpeed v0.18.9 key"));
    }

    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("reason");
        QTest::newRow("context parallelism") << "cp" << "Ulysses";
        QTest::newRow("ZeRO-2 with pipelines") << "zero2pp" << "ZeRO stage 0 or 1 only";
        QTest::newRow("interleaved") << "interleave" << "no interleaved schedule";
        QTest::newRow("fp8") << "fp8" << "no FP8";
        QTest::newRow("a parameter server") << "ps" << "no parameter server";
        QTest::newRow("a layer's atom") << "layer" << "layer 'h.0.mlp.fc1'";
        QTest::newRow("overlap without ZeRO") << "overlap" << "after the backward";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, reason);
        const Model m = load("gpt2-medium.json");
        const Cluster c = *clusterPreset("dgx-a100-80gb:2");
        Strategy s = plain(1, 1, 16, 1);
        s.sync.sparse = false;
        if (change == "cp") {
            s.cp = 2;
            s.dp = 8;
        } else if (change == "zero2pp") {
            s = plain(1, 2, 8, 2);
        } else if (change == "interleave") {
            s = plain(1, 2, 8, 1);
            s.interleave = 2;
            s.schedule = PipelineSchedule::Interleaved;
            s.global_batch = 64;
        } else if (change == "fp8") {
            s.precision = Precision::FP8;
        } else if (change == "ps") {
            s.zero_stage = 0;
            s.overlap_grad_reduce = false;
            s.sync.method = SyncMethod::ParameterServer;
        } else if (change == "layer") {
            LayerOverride o;
            o.pattern = "h.0.mlp.fc1";
            o.recompute = Recompute::Full;
            s.layers.push_back(o);
        } else {
            s.zero_stage = 0;
            s.overlap_grad_reduce = true;
        }
        s.sync.sparse = false;
        ExportHeader h;
        auto ex = exportDeepSpeed(m, c, s, h);
        QVERIFY(!ex);
        QCOMPARE(QString::fromStdString(ex.error().where), QStringLiteral("DeepSpeed"));
        QVERIFY2(QString::fromStdString(ex.error().message).contains(reason), ex.error().str().c_str());
        auto near = exportDeepSpeed(m, c, s, h, true);
        QVERIFY2(near, near ? "" : near.error().str().c_str());
        QVERIFY(!near->differences.empty());
        QVERIFY(deepspeedRefusals(m, near->exported).empty());
    }

    void badConfigs_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("batch arithmetic") << R"({"train_batch_size": 100, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2})"
                                          << "/train_batch_size" << "is not train_micro_batch_size_per_gpu 4 x gradient_accumulation_steps 2 x data-parallel size 16";
        QTest::newRow("auto") << R"({"train_batch_size": "auto"})" << "/train_batch_size" << "\"auto\"";
        QTest::newRow("fp16 and bf16") << R"({"fp16": {"enabled": true}, "bf16": {"enabled": true}})" << "/fp16" << "both enabled";
        QTest::newRow("ZeRO-3 with pipelines") << R"({"pipeline": {"stages": 2}, "zero_optimization": {"stage": 3}})"
                                               << "/zero_optimization/stage" << "with pipeline parallelism";
        QTest::newRow("stage 5") << R"({"zero_optimization": {"stage": 5}})" << "/zero_optimization/stage" << "0 to 3";
        QTest::newRow("not JSON") << "{\"train_batch_size\": " << "line" << "";
        QTest::newRow("AutoTP does not divide") << R"({"tensor_parallel": {"autotp_size": 3}})" << "/tensor_parallel/autotp_size" << "does not divide the 16 GPUs";
    }
    void badConfigs()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto r = importDeepSpeed(text.toStdString(), "ds_config.json", 16);
        QVERIFY(!r);
        QCOMPARE(QString::fromStdString(r.error().file), QStringLiteral("ds_config.json"));
        QVERIFY2(QString::fromStdString(r.error().where).startsWith(where), r.error().str().c_str());
        QVERIFY2(QString::fromStdString(r.error().message).contains(message), r.error().str().c_str());
    }
};

QTEST_APPLESS_MAIN(TestDeepSpeed)
#include "tst_deepspeed.moc"
