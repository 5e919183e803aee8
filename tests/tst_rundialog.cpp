// The run dialog: the run session's request it makes of the designer's
// strategy (data-driven, with refusals), a real 2-rank CPU run stored in a
// project beside its prediction, a run cancelled midway, an unreachable
// host, a worker that cannot be run and a project that cannot be opened.
#include "rundialog.h"

#include "sessiontest.h"

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
    void initTestCase() { qputenv("PARTITA_WORKER", PARTITA_BINARY_DIR "/bin/partita-worker"); }

    // The run session's request made of the dialog's settings.
    void request_data()
    {
        QTest::addColumn<int>("tp");
        QTest::addColumn<int>("ranks");
        QTest::addColumn<QString>("launcher");
        QTest::addColumn<QString>("hosts"); // "write": a hostfile of two hosts is written
        QTest::addColumn<QString>("refused"); // empty: the request is made
        QTest::newRow("local 2") << 1 << 2 << "local" << "" << "";
        QTest::newRow("local 4 tp 2") << 2 << 4 << "local" << "" << "";
        QTest::newRow("ssh with hosts") << 1 << 2 << "ssh" << "write" << "";
        QTest::newRow("ssh without hosts") << 1 << 2 << "ssh" << "" << "needs a hostfile";
        QTest::newRow("ssh, no such hostfile") << 1 << 2 << "ssh" << "/nonexistent/hosts" << "/nonexistent/hosts";
        QTest::newRow("ranks vs tp") << 2 << 3 << "local" << "" << "cannot hold tensor parallel 2";
    }
    void request()
    {
        QFETCH(int, tp);
        QFETCH(int, ranks);
        QFETCH(QString, launcher);
        QFETCH(QString, hosts);
        QFETCH(QString, refused);
        QTemporaryDir dir;
        if (hosts == "write") {
            hosts = dir.filePath("hosts");
            QFile f(hosts);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("node-a slots=1\nnode-b slots=1\n");
        }
        RunDialog d("/tmp/p.partita", test::tinyGpt(), strategy(8, tp, 1));
        d.ranksBox()->setValue(ranks);
        d.launcherBox()->setCurrentIndex(d.launcherBox()->findData(launcher));
        d.hostsEdit()->setText(hosts);
        d.scaleBox()->setValue(0.5);
        const std::optional<RunRequest> r = d.request();
        if (!refused.isEmpty()) {
            QVERIFY(!r);
            QVERIFY2(d.why().contains(refused), qPrintable(d.why()));
            return;
        }
        QVERIFY2(r, qPrintable(d.why()));
        QCOMPARE(r->project, std::string("/tmp/p.partita"));
        QCOMPARE(r->cluster, std::string("local"));
        QCOMPARE(r->ranks, ranks);
        QCOMPARE(r->launch.kind, launcher == "ssh" ? LauncherKind::Ssh : LauncherKind::Local);
        QCOMPARE(r->launch.hosts.size(), size_t(launcher == "ssh" ? 2 : 0));
        QCOMPARE(r->launch.shape_scale, 0.5);
        QCOMPARE(r->launch.worker, std::string(PARTITA_BINARY_DIR "/bin/partita-worker"));
        // The strategy keeps tp and re-derives dp from the ranks.
        QVERIFY(r->strategy);
        QCOMPARE(r->strategy->tp, tp);
        QCOMPARE(r->strategy->dp, ranks / tp);
        QCOMPARE(r->strategy->global_batch, int64_t(r->strategy->dp) * 2); // two micro-batches per step, as before
    }

    void runsOnThisCpu()
    {
        QTemporaryDir dir;
        const QString project = dir.filePath("run.partita");
        RunDialog d(project, test::tinyGpt(), strategy(2, 1, 1));
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
        // The session's stages and the ranks' own lines, in order.
        const QString log = d.log();
        const qsizetype predicting = log.indexOf("Predicting"), step = log.indexOf("rank 0 step 1/2"),
                        comparing = log.indexOf("comparing with the prediction");
        QVERIFY2(predicting >= 0 && step > predicting && comparing > step, qPrintable(log));
    }

    void cancelledMidway()
    {
        QTemporaryDir dir;
        RunDialog d(dir.filePath("cancel.partita"), test::tinyGpt(), strategy(2, 1, 1));
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
        RunDialog d(dir.filePath("bad.partita"), test::tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        d.launcherBox()->setCurrentIndex(d.launcherBox()->findData("ssh"));
        d.hostsEdit()->setText(hosts);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        QVERIFY2(d.start(), qPrintable(d.why()));
        QVERIFY(done.wait(120000));
        QVERIFY(!d.succeeded());
        QVERIFY2(d.failure().contains("unreachable-node") && d.failure().contains("cannot reach"), qPrintable(d.failure()));
    }

    void workerMissing()
    {
        qputenv("PARTITA_WORKER", "/nonexistent/partita-worker");
        QTemporaryDir dir;
        RunDialog d(dir.filePath("x.partita"), test::tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        const bool started = d.start();
        qputenv("PARTITA_WORKER", PARTITA_BINARY_DIR "/bin/partita-worker");
        QVERIFY(!started);
        QVERIFY(!d.running());
        QCOMPARE(done.count(), 0);
        QVERIFY2(d.failure().contains("/nonexistent/partita-worker") && d.failure().contains("cannot be run"),
                 qPrintable(d.failure()));
        QVERIFY(!QFile::exists(dir.filePath("x.partita"))); // nothing was stored
    }

    // A run that cannot start once begun (no such cluster figures, a bad
    // project path) ends with the session's error, not a hang.
    void projectCannotOpen()
    {
        RunDialog d("/nonexistent/folder/x.partita", test::tinyGpt(), strategy(2, 1, 1));
        d.ranksBox()->setValue(2);
        QSignalSpy done(&d, &RunDialog::finishedRun);
        QVERIFY2(d.start(), qPrintable(d.why()));
        QVERIFY(done.wait(30000));
        QCOMPARE(done.first().first().toBool(), false);
        QVERIFY(!d.succeeded());
        QCOMPARE(d.measuredRun(), 0);
        QVERIFY2(d.failure().contains("/nonexistent/folder/x.partita"), qPrintable(d.failure()));
    }
};

QTEST_MAIN(TestRunDialog)
#include "tst_rundialog.moc"
