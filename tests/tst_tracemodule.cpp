// SPDX-License-Identifier: GPL-3.0-or-later
// resources/profiler/partita_trace.py, the module put in front of a user's
// training script: two gloo ranks of the PyTorch export's script run under it
// with Debian's python3-torch, unedited; each rank writes its trace, steps
// counted in optimizer steps and marked, module ranges named as Partita names
// the model's layers; the traces import as one run. Bad arguments are named.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/pytorch.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"
#include "torchranks.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <memory>
#include <set>
#include <vector>

using namespace partita;

namespace {

const char* const kPython = test::kSystemPython;
const QString kModule = PARTITA_SOURCE_DIR "/resources/profiler/partita_trace.py";

Model tinyGpt2()
{
    auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 256,
                                   "n_positions": 64, "_name_or_path": "tiny-gpt2"})",
                               "gpt2.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

} // namespace

class TestTraceModule : public QObject
{
    Q_OBJECT
private slots:
    void initTestCase()
    {
        if (!test::hasSystemTorch())
            QSKIP("Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)");
    }

    // Rows: the profiler's schedule, in optimizer steps.
    void tracesAnUneditedScript_data()
    {
        QTest::addColumn<QString>("schedule");
        QTest::addColumn<int>("active");
        QTest::newRow("wait 1, warm up 1, record 3") << "1,1,3" << 3;
        QTest::newRow("record 2 from the first") << "0,0,2" << 2;
    }
    void tracesAnUneditedScript()
    {
        QFETCH(QString, schedule);
        QFETCH(int, active);
        const Model m = tinyGpt2();
        Cluster c = *clusterPreset("p3.16xlarge");
        c.nodes.front().devices.resize(2);
        Strategy s;
        s.dp = 2;
        s.micro_batch = 1;
        s.global_batch = 4;
        s.precision = Precision::FP32;
        s.sync.sparse = false;
        auto ex = exportPyTorch(m, c, s, 32, ExportHeader{});
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        QTemporaryDir dir;
        const QString script = dir.filePath("train.py"), out = dir.filePath("traces");
        QFile f(script);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(ex->script.data(), qint64(ex->script.size()));
        f.close();
        auto procs = test::runTorchRanks(2, {kModule, "--out", out, "--schedule", schedule, script, "--steps", "6"});
        const QString failures = test::rankFailures(procs);
        QVERIFY2(failures.isEmpty(), qPrintable(failures));
        // The script ran as it does alone: its own log, six steps.
        QCOMPARE(QString::fromUtf8(procs.front()->readAllStandardOutput()).count("\"step\":"), 6);
        // One trace per rank, its steps counted in optimizer steps.
        for (int k = 0; k < 2; ++k) {
            QFile steps(out + QString("/rank%1.steps").arg(k));
            QVERIFY(steps.open(QIODevice::ReadOnly));
            const QJsonObject j = QJsonDocument::fromJson(steps.readAll()).object();
            QCOMPARE(j["rank"].toInt(), k);
            QCOMPARE(j["step_s"].toArray().size(), 6);
            QCOMPARE(j["trace"].toString(), QString("rank%1.json").arg(k));
        }
        // Module ranges carry the model's layer names.
        QFile t(out + "/rank0.json");
        QVERIFY(t.open(QIODevice::ReadOnly));
        const QByteArray text = t.readAll();
        std::set<QString> ranges;
        static const QRegularExpression range("\"name\": ?\"nn\\.Module: ([^\"]+)\"");
        for (auto it = range.globalMatch(QString::fromUtf8(text)); it.hasNext();)
            ranges.insert(it.next().captured(1));
        int linears = 0;
        for (const Layer& l : m.layers)
            if (l.kind == LayerKind::Linear) {
                ++linears;
                QVERIFY2(ranges.count(QString::fromStdString(l.name)), l.name.c_str());
            }
        QVERIFY(linears >= 8);
        // Both traces import as one run of two ranks, `active` steps each.
        auto store = TraceStore::open(dir.filePath("p.partita").toStdString());
        QVERIFY(store);
        auto rep = importChromeTrace(**store, {out.toStdString()});
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        QCOMPARE(int(rep->ranks.size()), 2);
        auto st = (*store)->steps(rep->run_id);
        QVERIFY(st);
        QCOMPARE(int(st->size()), 2 * active);
    }

    void badArguments_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("no script") << QStringList{"--out", "x", "missing.py"} << "missing.py: no such script";
        QTest::newRow("schedule not numbers") << QStringList{"--out", "x", "--schedule", "1,a,3", kModule}
                                              << "expected three whole numbers";
        QTest::newRow("nothing recorded") << QStringList{"--out", "x", "--schedule", "1,1,0", kModule}
                                          << "ACTIVE at least 1";
    }
    void badArguments()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        QProcess p;
        p.start(kPython, QStringList{kModule} + args);
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 2);
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(err.contains(message), qPrintable(err));
    }
};

QTEST_GUILESS_MAIN(TestTraceModule)
#include "tst_tracemodule.moc"
