// Horovod launch lines: export -> import gives a data-parallel strategy
// back, everything else is refused with its reasons (or made data-parallel
// with --closest), every flag written is horovodrun's, and bad lines are
// named by flag.
#include "partita/core/clusterio.h"
#include "partita/core/horovod.h"
#include "partita/core/modelio.h"

#include <QFile>
#include <QRegularExpression>
#include <QTest>

#include <set>

using namespace partita;

namespace {
Model bert()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/bert-large-uncased.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Strategy dataParallel()
{
    Strategy s;
    s.name = "row";
    s.dp = 32;
    s.micro_batch = 8;
    s.global_batch = 256;
    s.bucket_bytes = 64 << 20;
    s.precision = Precision::FP16;
    return s;
}
} // namespace

class TestHorovod : public QObject
{
    Q_OBJECT
private slots:
    void roundTrip_data()
    {
        QTest::addColumn<int>("row");
        QTest::newRow("Horovod's defaults, 64 MB fusion") << 0;
        QTest::newRow("hierarchical, fp16 compression, dense embeddings, accumulation") << 1;
        QTest::newRow("full recomputation in fp32") << 2;
    }
    void roundTrip()
    {
        QFETCH(int, row);
        const Model m = bert();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        Strategy s = dataParallel();
        if (row == 1) {
            s.sync.algorithm = AllReduceAlgo::Hierarchical;
            s.sync.compression = Compression::FP16;
            s.sync.sparse = false;
            s.global_batch = 512;
        } else if (row == 2) {
            s.precision = Precision::FP32;
            s.recompute = Recompute::Full;
        }
        ExportHeader h;
        h.version = "test";
        auto ex = exportHorovod(m, c, s, h);
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        auto in = importHorovod(ex->script, "launch.sh");
        QVERIFY2(in, in ? "" : in.error().str().c_str());
        QCOMPARE(in->world, 32);
        Strategy back = in->strategy;
        back.name = s.name;
        if (back != s)
            QFAIL(qPrintable(QString::fromStdString("exported:\n" + strategyToJson(s) + "imported:\n" + strategyToJson(back))));
        QFile f(PARTITA_TEST_DATA "/frameworks/horovod-v0.28.1-flags.txt");
        QVERIFY(f.open(QIODevice::ReadOnly));
        std::set<QString> known;
        for (const QString& line : QString::fromUtf8(f.readAll()).split('\n'))
            if (line.startsWith("--"))
                known.insert(line.trimmed());
        const QString script = QString::fromStdString(ex->script);
        const QString run = script.mid(script.indexOf("horovodrun"), script.indexOf("python") - script.indexOf("horovodrun"));
        QRegularExpression flag("(--[a-z0-9-]+)");
        int n = 0;
        for (auto it = flag.globalMatch(run); it.hasNext(); ++n) {
            const QString name = it.next().captured(1);
            QVERIFY2(known.count(name), qPrintable(name + " is not a horovodrun v0.28.1 flag"));
        }
        QVERIFY(n >= 3);
    }

    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("reason");
        QTest::newRow("tensor parallel") << "tp" << "data-parallel only";
        QTest::newRow("ZeRO") << "zero" << "optimizer whole";
        QTest::newRow("a parameter server") << "ps" << "no parameter server";
        QTest::newRow("tree") << "tree" << "not tree";
        QTest::newRow("a fusion threshold of 25.5 MB") << "bucket" << "whole MB";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, reason);
        const Model m = bert();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        Strategy s = dataParallel();
        if (change == "tp") {
            s.tp = 2;
            s.dp = 16;
        } else if (change == "zero") {
            s.zero_stage = 1;
        } else if (change == "ps") {
            s.sync.method = SyncMethod::ParameterServer;
        } else if (change == "tree") {
            s.sync.algorithm = AllReduceAlgo::Tree;
        } else {
            s.bucket_bytes = (25 << 20) + (1 << 19);
        }
        ExportHeader h;
        auto ex = exportHorovod(m, c, s, h);
        QVERIFY(!ex);
        QCOMPARE(QString::fromStdString(ex.error().where), QStringLiteral("Horovod"));
        QVERIFY2(QString::fromStdString(ex.error().message).contains(reason), ex.error().str().c_str());
        auto near = exportHorovod(m, c, s, h, true);
        QVERIFY2(near, near ? "" : near.error().str().c_str());
        QVERIFY(!near->differences.empty());
        QVERIFY(horovodRefusals(m, near->exported).empty());
    }

    void badLines_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("no horovodrun") << "python train.py" << "horovodrun" << "--num-proc";
        QTest::newRow("shell variable") << "horovodrun -np $NP python train.py" << "--num-proc" << "shell variable";
        QTest::newRow("too few slots") << "horovodrun -np 16 -H a:4,b:4 python train.py" << "--hosts" << "8 slots are fewer than the 16";
        QTest::newRow("zero workers") << "horovodrun -np 0 python train.py" << "--num-proc" << "at least 1";
    }
    void badLines()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto r = importHorovod(text.toStdString(), "launch.sh");
        QVERIFY(!r);
        QCOMPARE(QString::fromStdString(r.error().where), where);
        QVERIFY2(QString::fromStdString(r.error().message).contains(message), r.error().str().c_str());
    }
};

QTEST_APPLESS_MAIN(TestHorovod)
#include "tst_horovod.moc"
