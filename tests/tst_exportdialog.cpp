// SPDX-License-Identifier: GPL-3.0-or-later
// File ▸ Export Strategy…: each framework's files previewed, saved and read
// back; a strategy the framework cannot run is refused with its reasons
// until "closest" is checked.
#include "exportdialog.h"

#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/core/modelio.h"

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

namespace {
Model gpt2()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/gpt2-medium.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

Strategy dataParallel(bool deepspeed)
{
    Strategy s;
    s.name = "dp8";
    s.dp = 8;
    s.micro_batch = 2;
    s.global_batch = 32;
    s.precision = Precision::FP16;
    s.fp32_grad_accumulation = true;
    s.sync.sparse = false;
    s.overlap_grad_reduce = !deepspeed; // without ZeRO, DeepSpeed reduces after the backward
    return s;
}
} // namespace

class TestExportDialog : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_dir;

private slots:
    void exportsEachFramework_data()
    {
        QTest::addColumn<QString>("framework");
        QTest::addColumn<QString>("marker");
        QTest::addColumn<int>("files");
        QTest::newRow("Megatron-LM") << "megatron" << "pretrain_gpt.py" << 1;
        QTest::newRow("DeepSpeed") << "deepspeed" << "\"train_batch_size\": 32" << 3;
        QTest::newRow("Horovod") << "horovod" << "horovodrun" << 1;
        QTest::newRow("PyTorch") << "pytorch" << "CONFIG = json.loads(" << 1;
    }
    void exportsEachFramework()
    {
        QFETCH(QString, framework);
        QFETCH(QString, marker);
        QFETCH(int, files);
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge");
        ExportDialog dlg(m, c, dataParallel(framework == "deepspeed"));
        dlg.formatBox()->setCurrentIndex(dlg.formatBox()->findData(framework));
        QVERIFY2(dlg.files(), qPrintable(dlg.statusLabel()->text()));
        QCOMPARE(dlg.fileBox()->count(), files);
        QVERIFY(dlg.saveButton()->isEnabled());
        QVERIFY2(dlg.preview()->toPlainText().contains(marker), qPrintable(dlg.preview()->toPlainText().left(400)));
        QVERIFY(dlg.preview()->toPlainText().contains("Predicted on p3.16xlarge") || framework == "deepspeed");
        const QString out = m_dir.filePath(framework + (files > 1 ? "" : ".out"));
        QString why;
        QVERIFY2(dlg.saveTo(out, &why), qPrintable(why));
        const std::string main = files > 1 ? out.toStdString() + "/ds_config.json" : out.toStdString();
        auto text = readTextFile(main);
        QVERIFY(text);
        auto back = importFramework(*frameworkFromName(framework.toStdString()), *text, main, c.deviceCount());
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QCOMPARE(back->strategy.dp, 8);
        QCOMPARE(back->strategy.global_batch, int64_t(32));
    }

    void refusedThenClosest()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge");
        Strategy s = dataParallel(false);
        s.tp = 2;
        s.dp = 4;
        s.global_batch = 16;
        ExportDialog dlg(m, c, s);
        dlg.formatBox()->setCurrentIndex(dlg.formatBox()->findData("horovod"));
        QVERIFY(!dlg.files());
        QVERIFY(!dlg.saveButton()->isEnabled());
        QVERIFY(dlg.preview()->toPlainText().isEmpty());
        QVERIFY2(dlg.statusLabel()->text().contains("data-parallel only"), qPrintable(dlg.statusLabel()->text()));
        QString why;
        QVERIFY(!dlg.saveTo(m_dir.filePath("refused.sh"), &why));
        QVERIFY(!QFile::exists(m_dir.filePath("refused.sh")));
        dlg.closestBox()->setChecked(true);
        QVERIFY(dlg.files());
        QVERIFY(dlg.saveButton()->isEnabled());
        QVERIFY2(dlg.statusLabel()->text().contains("Not as designed"), qPrintable(dlg.statusLabel()->text()));
        QCOMPARE(dlg.files()->exported.tp, 1);
        QVERIFY(dlg.preview()->toPlainText().contains("horovodrun"));
        // What a user sees, when asked for: PARTITA_SCREENSHOT_DIR=DIR.
        if (const QString dir = qEnvironmentVariable("PARTITA_SCREENSHOT_DIR"); !dir.isEmpty()) {
            dlg.resize(900, 640);
            QVERIFY(dlg.grab().save(dir + "/export-closest.png"));
            dlg.formatBox()->setCurrentIndex(dlg.formatBox()->findData("deepspeed"));
            QVERIFY(dlg.grab().save(dir + "/export-deepspeed.png"));
        }
    }
};

QTEST_MAIN(TestExportDialog)
#include "tst_exportdialog.moc"
