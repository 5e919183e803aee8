// The executor's profile session (profilesession.h), the call partita-cli
// run --command and the workbench's Profile dialog make: what it refuses
// before any rank starts, with nothing stored (data rows). Real profiled
// runs go through it in tst_commandrun (the CLI) and tst_profiledialog.
#include "sessiontest.h"

#include "partita/core/modelio.h"
#include "partita/executor/profilesession.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

class TestProfileSession : public QObject
{
    Q_OBJECT
private slots:
    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("expect");
        QTest::newRow("no project") << "project" << "stored in a project";
        QTest::newRow("no trace module") << "module" << "/nonexistent/partita_trace.py";
        QTest::newRow("not one command") << "pipe" << "|";
        QTest::newRow("torchrun's ranks") << "torchrun" << "starts 2 ranks on each of 1 node(s): 2 ranks";
        QTest::newRow("configuration without a model") << "deepspeed" << "says no model";
        QTest::newRow("no framework configuration") << "notconfig" << "is no framework configuration";
        QTest::newRow("strategy's ranks") << "world" << "the strategy runs 8 ranks, the command 2";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, expect);
        QTemporaryDir dir;
        const QString project = dir.filePath("p.partita");
        ProfileRequest r;
        r.project = project.toStdString();
        r.command = "python3 train.py";
        r.trace_module = PARTITA_SOURCE_DIR "/resources/profiler/partita_trace.py";
        r.launch.worker = PARTITA_BINARY_DIR "/bin/partita-worker";
        r.launch.ranks = 2;
        r.source = "tst_profilesession";
        r.predict.cluster = "dgx-h100"; // predicted from datasheet figures: nothing measured here
        auto writeConfig = [&](const char* text) {
            QFile f(dir.filePath("config.json"));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(text);
            r.config = f.fileName().toStdString();
        };
        if (change == "project")
            r.project.clear();
        else if (change == "module")
            r.trace_module = "/nonexistent/partita_trace.py";
        else if (change == "pipe")
            r.command = "python3 train.py | tee log";
        else if (change == "torchrun") {
            r.command = "torchrun --nproc_per_node 2 train.py";
            r.launch.ranks = 1;
            r.ranks = 3;
        } else if (change == "deepspeed")
            writeConfig(R"({"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "zero_optimization": {"stage": 1}})");
        else if (change == "notconfig")
            writeConfig("hello");
        else if (change == "world") {
            r.model = test::tinyGpt();
            Strategy s;
            s.dp = 8;
            s.micro_batch = 1;
            s.global_batch = 8;
            r.predict.strategy = s;
        }
        bool launched = false;
        RunEvents ev;
        ev.on_stage = [&](RunStage s) { launched = launched || s == RunStage::Launching; };
        auto out = profileCommand(r, ev);
        QVERIFY(!out);
        QVERIFY2(QString::fromStdString(out.error().str()).contains(expect), out.error().str().c_str());
        QVERIFY(!launched);
        test::expectNothingStored(project);
    }
};

QTEST_GUILESS_MAIN(TestProfileSession)
#include "tst_profilesession.moc"
