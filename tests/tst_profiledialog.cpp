// Strategy ▸ Profile a Training Command…: the profile session's request the
// dialog makes (data-driven, with refusals), a real 2-rank run of a user's
// training (python3-torch, gloo), its script named relative to the folder
// it runs in, stored with the designer's prediction beside it, and a rank
// that fails, named in the dialog's words.
#include "profiledialog.h"
#include "torchranks.h"

#include "partita/core/modelio.h"
#include "partita/profiler/tracestore.h"

#include <QCheckBox>
#include <QComboBox>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

namespace {
Model tinyGpt2()
{
    auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64,
                                   "vocab_size": 256})");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Strategy ddp(int tp = 1)
{
    Strategy s;
    s.name = "ddp";
    s.dp = 2;
    s.tp = tp;
    s.micro_batch = 16;
    s.global_batch = 32;
    s.precision = Precision::FP32;
    s.sync.sparse = false;
    return s;
}
const QString kFixture = PARTITA_TEST_DATA "/torch/train_gpt2.py";
} // namespace

class TestProfileDialog : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_tmp;

private slots:
    void initTestCase()
    {
        qputenv("PARTITA_WORKER", PARTITA_BINARY_DIR "/bin/partita-worker");
        qputenv("PARTITA_TRACE_MODULE", PARTITA_SOURCE_DIR "/resources/profiler/partita_trace.py");
    }

    // The profile session's request made of the dialog's settings.
    void request_data()
    {
        QTest::addColumn<QString>("cmd");
        QTest::addColumn<QString>("launcher");
        QTest::addColumn<QString>("hosts"); // "write": a hostfile of two hosts is written
        QTest::addColumn<int>("ranks");
        QTest::addColumn<bool>("predict");
        QTest::addColumn<int>("tp");
        QTest::addColumn<QString>("refused"); // empty: the request is made
        QTest::newRow("local, predicted") << "python3 train.py" << "local" << "" << 2 << true << 1 << "";
        QTest::newRow("local, no prediction") << "python3 train.py" << "local" << "" << 2 << false << 1 << "";
        QTest::newRow("ssh with hosts") << "python3 train.py" << "ssh" << "write" << 2 << false << 1 << "";
        QTest::newRow("no command") << "  " << "local" << "" << 2 << false << 1 << "Give the command";
        QTest::newRow("ssh without hosts") << "python3 t.py" << "ssh" << "" << 2 << false << 1 << "needs a hostfile";
        QTest::newRow("ranks vs the strategy's tp") << "python3 t.py" << "local" << "" << 3 << true << 2
                                                   << "cannot hold tensor parallel 2";
    }
    void request()
    {
        QFETCH(QString, cmd);
        QFETCH(QString, launcher);
        QFETCH(QString, hosts);
        QFETCH(int, ranks);
        QFETCH(bool, predict);
        QFETCH(int, tp);
        QFETCH(QString, refused);
        if (hosts == "write") {
            hosts = m_tmp.filePath("hosts");
            QFile f(hosts);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("node-a slots=1\nnode-b slots=1\n");
        }
        ProfileDialog dlg(m_tmp.filePath("p.partita"), tinyGpt2(), ddp(tp));
        dlg.commandEdit()->setText(cmd);
        dlg.launcherBox()->setCurrentIndex(dlg.launcherBox()->findData(launcher));
        dlg.hostsEdit()->setText(hosts);
        dlg.ranksBox()->setValue(ranks);
        dlg.predictBox()->setChecked(predict);
        const std::optional<ProfileRequest> r = dlg.request();
        if (!refused.isEmpty()) {
            QVERIFY(!r);
            QVERIFY2(dlg.why().contains(refused), qPrintable(dlg.why()));
            return;
        }
        QVERIFY2(r, qPrintable(dlg.why()));
        QCOMPARE(QString::fromStdString(r->command), cmd);
        QCOMPARE(r->launch.ranks, ranks);
        QCOMPARE(r->launch.kind, launcher == "ssh" ? LauncherKind::Ssh : LauncherKind::Local);
        QCOMPARE(r->launch.hosts.size(), size_t(launcher == "ssh" ? 2 : 0));
        QCOMPARE(QString::fromStdString(r->launch.working_dir), QFileInfo(m_tmp.path()).absoluteFilePath());
        QCOMPARE(r->model.has_value(), predict);
        QCOMPARE(r->predict.strategy.has_value(), predict);
        // The designer's strategy is predicted: the command's own configuration is not looked for then.
        QCOMPARE(r->config_in_command, !predict);
        if (predict)
            QCOMPARE(r->predict.strategy->dp, ranks / tp);
    }

    void noModelNoPrediction()
    {
        ProfileDialog dlg(m_tmp.filePath("p.partita"), std::nullopt, std::nullopt);
        QVERIFY(!dlg.predictBox()->isEnabled());
        QVERIFY(!dlg.predictBox()->isChecked());
    }

    // Rows: the script's arguments, whether it succeeds, what the dialog says.
    void profiles_data()
    {
        QTest::addColumn<QString>("args");
        QTest::addColumn<bool>("ok");
        QTest::addColumn<QString>("said");
        QTest::newRow("trains") << "--steps 6 --batch 16" << true << "attributed to layers";
        QTest::newRow("rank 1 raises") << "--steps 6 --batch 16 --fail-rank 1 --fail-step 2" << false
                                       << "rank 1 on ";
    }
    void profiles()
    {
        QFETCH(QString, args);
        QFETCH(bool, ok);
        QFETCH(QString, said);
        if (!test::hasSystemTorch())
            QSKIP("Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)");
        const QString project = m_tmp.filePath(QString("profile-%1.partita").arg(ok));
        ProfileDialog dlg(project, tinyGpt2(), ddp());
        // The script is found in the folder the command runs in.
        dlg.folderEdit()->setText(QFileInfo(kFixture).absolutePath());
        dlg.commandEdit()->setText(QString(test::kSystemPython) + " " + QFileInfo(kFixture).fileName() + " " + args);
        dlg.ranksBox()->setValue(2);
        QSignalSpy done(&dlg, &ProfileDialog::finishedRun);
        QVERIFY2(dlg.start(), qPrintable(dlg.why()));
        QVERIFY(done.wait(240000));
        QCOMPARE(dlg.succeeded(), ok);
        QVERIFY2(dlg.log().contains(said) || dlg.failure().contains(said), qPrintable(dlg.failure() + "\n" + dlg.log().right(2000)));
        if (!ok) {
            QVERIFY2(dlg.failure().contains("failed on purpose"), qPrintable(dlg.failure()));
            return;
        }
        QVERIFY(dlg.measuredRun() > 0 && dlg.predictedRun() > 0);
        QVERIFY(dlg.attributedFraction() > 0.5);
        auto store = TraceStore::open(project.toStdString());
        QVERIFY(store);
        auto run = (*store)->run(dlg.measuredRun());
        QVERIFY(run);
        QCOMPARE(run->ranks, 2);
        QCOMPARE((*store)->run(dlg.predictedRun())->kind, RunKind::Predicted);
    }
};

QTEST_MAIN(TestProfileDialog)
#include "tst_profiledialog.moc"
