// The run dialog: the partita-cli command it builds from the designer's
// strategy (data-driven, with refusals), a real 2-rank CPU run stored in a
// project beside its prediction, a run cancelled midway, and a CLI that
// cannot be started.
#include "rundialog.h"

#include "partita/core/modelio.h"
#include "partita/profiler/tracestore.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

namespace {
Model tinyGpt()
{
    auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "vocab_size": 512})");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Strategy strategy(int dp, int tp, int pp)
{
    Strategy s;
    s.name = "tiny";
    s.dp = dp;
    s.tp = tp;
    s.pp = pp;
    s.micro_batch = 1;
    s.global_batch = dp * 2; // two micro-batches per step
    s.precision = Precision::FP32;
    return s;
}
} // namespace

class TestRunDialog : public QObject
{
    Q_OBJECT
private slots:
    void initTestCase() { qputenv("PARTITA_CLI", PARTITA_BINARY_DIR "/bin/partita-cli"); }

    void command_data()
    {
        QTest::addColumn<int>("tp");
        QTest::addColumn<int>("ranks");
        QTest::addColumn<QString>("launcher");
        QTest::addColumn<QString>("hosts");
        QTest::addColumn<QString>("expect"); // an argument pair, or "refused: why"
        QTest::newRow("local 2") << 1 << 2 << "local" << "" << "--ranks 2";
        QTest::newRow("local 4 tp 2") << 2 << 4 << "local" << "" << "--launcher local";
        QTest::newRow("ssh with hosts") << 1 << 2 << "ssh" << "/tmp/hosts" << "--hosts /tmp/hosts";
        QTest::newRow("ssh without hosts") << 1 << 2 << "ssh" << "" << "refused: needs a hostfile";
        QTest::newRow("ranks vs tp") << 2 << 3 << "local" << "" << "refused: cannot hold tensor parallel 2";
    }
    void command()
    {
        QFETCH(int, tp);
        QFETCH(int, ranks);
        QFETCH(QString, launcher);
        QFETCH(QString, hosts);
        QFETCH(QString, expect);
        RunDialog d("/tmp/p.partita", tinyGpt(), strategy(8, tp, 1));
        d.ranksBox()->setValue(ranks);
        d.launcherBox()->setCurrentIndex(d.launcherBox()->findData(launcher));
        d.hostsEdit()->setText(hosts);
        const QStringList cmd = d.command();
        if (expect.startsWith("refused: ")) {
            QVERIFY(cmd.isEmpty());
            QVERIFY2(d.why().contains(expect.mid(9)), qPrintable(d.why()));
            return;
        }
        QVERIFY2(!cmd.isEmpty(), qPrintable(d.why()));
        QVERIFY2(cmd.join(' ').contains(expect), qPrintable(cmd.join(' ')));
        QCOMPARE(cmd[1], QStringLiteral("run"));
        QVERIFY(cmd.contains("--json"));
        // The strategy file it wrote keeps tp and re-derives dp from the ranks.
        const int at = int(cmd.indexOf("--strategy"));
        QFile f(cmd[at + 1]);
        QVERIFY(f.open(QIODevice::ReadOnly));
        auto s = strategyFromJson(f.readAll().toStdString());
        QVERIFY(s);
        QCOMPARE(s->tp, tp);
        QCOMPARE(s->dp, ranks / tp);
        QCOMPARE(s->global_batch, int64_t(s->dp) * 2); // two micro-batches per step, as before
    }

    void runsOnThisCpu()
    {
        QTemporaryDir dir;
        const QString project = dir.filePath("run.partita");
        RunDialog d(project, tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        d.stepsBox()->setValue(2);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        QVERIFY2(d.start(), qPrintable(d.why()));
        QVERIFY(d.running());
        QVERIFY(done.wait(240000));
        QVERIFY2(d.succeeded(), qPrintable(d.failure() + "\n" + d.log()));
        QVERIFY(d.measuredRun() > 0 && d.predictedRun() > 0);
        auto store = TraceStore::open(project.toStdString());
        QVERIFY(store);
        auto measured = (*store)->run(d.measuredRun());
        QVERIFY(measured);
        QCOMPARE(measured->kind, RunKind::Measured);
        QCOMPARE(measured->status, RunStatus::Complete);
        QCOMPARE(measured->ranks, 2);
        QVERIFY(d.log().contains("Done: measured run"));
    }

    void cancelledMidway()
    {
        QTemporaryDir dir;
        RunDialog d(dir.filePath("cancel.partita"), tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        d.stepsBox()->setValue(100000);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        QVERIFY(d.start());
        QTest::qWait(4000);
        d.cancel();
        QVERIFY(done.wait(60000));
        QVERIFY(!d.succeeded());
        QVERIFY2(d.failure().contains("cancelled"), qPrintable(d.failure() + "\n" + d.log()));
        QVERIFY(d.log().contains("kept as run") || d.measuredRun() == 0); // the steps measured before stay
    }

    // A failure names the host (or rank) and the cause, for the dialog that shows it.
    void unreachableHost()
    {
        QTemporaryDir dir;
        const QString hosts = dir.filePath("hosts");
        QFile f(hosts);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("unreachable-node slots=2\n");
        f.close();
        RunDialog d(dir.filePath("bad.partita"), tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        d.launcherBox()->setCurrentIndex(d.launcherBox()->findData("ssh"));
        d.hostsEdit()->setText(hosts);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        QVERIFY2(d.start(), qPrintable(d.why()));
        QVERIFY(done.wait(120000));
        QVERIFY(!d.succeeded());
        QVERIFY2(d.failure().contains("unreachable-node") && d.failure().contains("cannot reach"), qPrintable(d.failure()));
    }

    void cliMissing()
    {
        qputenv("PARTITA_CLI", "/nonexistent/partita-cli");
        QTemporaryDir dir;
        RunDialog d(dir.filePath("x.partita"), tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        d.start();
        QVERIFY(done.count() > 0 || done.wait(10000));
        QVERIFY(!d.succeeded());
        QVERIFY2(d.failure().contains("could not be started"), qPrintable(d.failure()));
        qputenv("PARTITA_CLI", PARTITA_BINARY_DIR "/bin/partita-cli");
    }
};

QTEST_MAIN(TestRunDialog)
#include "tst_rundialog.moc"
