// The workbench window: its menus, opening a project (its runs listed, the
// first shown in the timeline), and refusing a file that is not a project
// without losing the one open.
#include "designer.h"
#include "mainwindow.h"
#include "runsmodel.h"
#include "testdata.h"
#include "timelineview.h"

#include "partita/core/clusterio.h"
#include "partita/core/frameworks.h"
#include "partita/core/modelio.h"
#include "partita/profiler/tracestore.h"

#include <QCoreApplication>
#include <QFile>
#include <QMenuBar>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QDockWidget>
#include <QListView>
#include <QTest>
#include <QUndoStack>

using namespace partita;

class TestMainWindow : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_dir;

    // A DeepSpeed configuration and a Megatron-LM script for GPT-2 medium on one p3.16xlarge.
    void writeConfigs()
    {
        auto write = [&](const QString& name, const std::string& text) {
            QFile f(m_dir.filePath(name));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(text.data(), qint64(text.size()));
        };
        write("ds_config.json", R"({"train_batch_size": 32, "train_micro_batch_size_per_gpu": 4, "fp16": {"enabled": true}})");
        auto m = loadModel(PARTITA_TEST_DATA "/hf/gpt2-medium.json");
        QVERIFY(m);
        Strategy s;
        s.dp = 4;
        s.tp = 2;
        s.global_batch = 16;
        s.precision = Precision::FP16;
        s.sync.sparse = false;
        auto ex = exportFramework(Framework::Megatron, *m, *clusterPreset("p3.16xlarge"), s, 1024, ExportHeader{});
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        write("launch.sh", ex->files.front().second);
        write("notes.txt", "no flags here\n");
    }

private slots:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName("PartitaTest"); // keep the user's settings out of it
    }

    void opens()
    {
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QStringList menus;
        for (QAction* a : w.menuBar()->actions())
            menus << a->text();
        QCOMPARE(menus, (QStringList{"&File", "&Edit", "&Strategy", "&View", "&Help"}));
        QCOMPARE(w.statusBar()->currentMessage(), QStringLiteral("No project open"));
    }

    // The designer's panels are docks shown with the Designer tab only; the
    // event details with the timelines; a dock the user closed stays closed.
    void docksFollowTheTabs_data()
    {
        QTest::addColumn<QString>("dock");
        QTest::addColumn<QStringList>("shownOn"); // tab titles
        const QStringList designer{"Designer"};
        QTest::newRow("palette") << "paletteDock" << designer;
        QTest::newRow("settings") << "settingsDock" << designer;
        QTest::newRow("inspector") << "inspectorDock" << designer;
        QTest::newRow("model") << "modelDock" << designer;
        QTest::newRow("cluster") << "clusterDock" << designer;
        QTest::newRow("details") << "detailsDock" << QStringList{"Timeline", "Compare"};
        QTest::newRow("runs") << "runsDock" << QStringList{"Designer", "Timeline", "Compare", "Cluster"};
    }
    void docksFollowTheTabs()
    {
        QFETCH(QString, dock);
        QFETCH(QStringList, shownOn);
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QDockWidget* d = w.dock(dock);
        QVERIFY(d);
        auto shownFor = [&](int tab) {
            w.tabs()->setCurrentIndex(tab);
            QCoreApplication::processEvents();
            return !d->isHidden();
        };
        for (int i = 0; i < w.tabs()->count(); ++i)
            QCOMPARE(shownFor(i), shownOn.contains(w.tabs()->tabText(i)));
        if (dock == "paletteDock") // the same palette the designer's drops come from
            QVERIFY(d->isAncestorOf(w.designer()->paletteView()));
        if (dock == "runsDock")
            return;
        // Closed by the user where it shows: closed on every tab after.
        for (int i = 0; i < w.tabs()->count(); ++i)
            if (w.tabs()->tabText(i) == shownOn.front()) {
                w.tabs()->setCurrentIndex(i);
                QCoreApplication::processEvents();
            }
        QVERIFY(d->close());
        for (int i = 0; i < w.tabs()->count(); ++i)
            QVERIFY(!shownFor(i));
        // Shown again from the View menu: back to following the tabs.
        for (int i = 0; i < w.tabs()->count(); ++i)
            if (w.tabs()->tabText(i) == shownOn.front())
                w.tabs()->setCurrentIndex(i);
        d->toggleViewAction()->trigger();
        for (int i = 0; i < w.tabs()->count(); ++i)
            QCOMPARE(shownFor(i), shownOn.contains(w.tabs()->tabText(i)));
    }

    void opensProjects_data()
    {
        QTest::addColumn<bool>("valid");
        QTest::addColumn<QString>("error");
        QTest::newRow("a project") << true << "";
        QTest::newRow("not SQLite") << false << "not a database";
        QTest::newRow("missing") << false << "no such file";
    }
    void opensProjects()
    {
        QFETCH(bool, valid);
        QFETCH(QString, error);
        const QString good = m_dir.filePath(QString("good-%1.partita").arg(QTest::currentDataTag()).replace(' ', '-'));
        {
            auto store = TraceStore::open(good.toStdString());
            QVERIFY(store);
            Trace t;
            t.tracks = {{0, 0, "compute"}};
            t.records = {{0, 0, 0, 1000, TraceKind::Kernel, "k"}, {0, 0, 2000, 1000, TraceKind::Kernel, "k"}};
            RunInfo info;
            info.name = "one";
            QVERIFY((*store)->storeTrace(t, info));
        }
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QVERIFY(w.openProject(good, true));
        QCOMPARE(w.runsModel()->rowCount(), 1);
        QCOMPARE(w.timeline()->run(), int64_t(1)); // the first run is shown
        if (valid)
            return;
        QString path = m_dir.filePath("missing.partita");
        if (error == "not a database") {
            path = m_dir.filePath("text.partita");
            QFile f(path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(QByteArray(4096, 'x'));
        }
        QVERIFY(!w.openProject(path, true));
        QVERIFY2(w.lastError().contains(error), qPrintable(w.lastError()));
        // The open project stays open.
        QCOMPARE(w.runsModel()->rowCount(), 1);
        QCOMPARE(w.timeline()->run(), int64_t(1));
    }

    // A new user's path: a new project, a model and a cluster imported, a
    // trace imported; each import refused with its reason when it cannot be.
    void newProjectAndImports()
    {
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QVERIFY(!w.importModel(PARTITA_TEST_DATA "/hf/gpt2.json", true)); // no project yet
        QVERIFY(w.lastError().contains("project"));
        const QString path = m_dir.filePath("new.partita");
        QVERIFY(w.newProject(path, true));
        QVERIFY(!w.newProject(path, true)); // never over an existing file
        QVERIFY(w.lastError().contains("already exists"));
        QVERIFY(!w.designer()->hasInputs());
        QVERIFY(w.importModel(PARTITA_TEST_DATA "/hf/gpt2.json", true));
        QVERIFY(!w.designer()->hasInputs()); // a cluster is still missing
        QVERIFY(!w.importCluster("no-such-preset:2", true));
        QVERIFY2(w.lastError().contains("no-such-preset"), qPrintable(w.lastError()));
        QVERIFY(w.importCluster("p3.16xlarge:4", true));
        QVERIFY(w.designer()->hasInputs());
        QCOMPARE(w.designer()->cluster()->deviceCount(), 32);
        QVERIFY(!w.importModel(m_dir.filePath("absent.json"), true));
        QVERIFY2(w.lastError().contains("absent.json"), qPrintable(w.lastError()));
        QVERIFY(w.designer()->hasInputs()); // the failed import lost nothing
        PARTITA_REQUIRE_TORCH_TRACES();
        QVERIFY(w.importTraces({partita::test::torchTraces() + "/one/traces/rank0.json"}, true));
        QCOMPARE(w.runsModel()->rowCount(), 1);
        QVERIFY(w.timeline()->run() > 0);
        const QString bad = m_dir.filePath("bad.json");
        QFile f(bad);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(R"({"traceEvents": [{"ph": "X", "ts": 1,, "dur": 1}]})");
        f.close();
        QVERIFY(!w.importTraces({bad}, true));
        QVERIFY2(w.lastError().contains("bad.json"), qPrintable(w.lastError()));
        QCOMPARE(w.runsModel()->rowCount(), 1);
        // With a good file beside it, the good one is imported and the bad one said.
        QVERIFY(w.importTraces({partita::test::torchTraces() + "/one/traces/rank0.json", bad}, true));
        QCOMPARE(w.runsModel()->rowCount(), 2);
        const QString said = w.statusBar()->currentMessage();
        QVERIFY2(said.contains("not imported: ") && said.contains("bad.json"), qPrintable(said));
        // The project reopens with its model and cluster.
        MainWindow again;
        QVERIFY(again.openProject(path, true));
        QVERIFY(again.designer()->hasInputs());
        QCOMPARE(again.designer()->model()->name, w.designer()->model()->name);
    }

    // File ▸ Import Training Configuration and drops: the strategy (and the
    // model, where the file says it) become the designer's, one undo step;
    // without a cluster, or for a file that is no configuration, a clear no.
    void importsTrainingConfigurations()
    {
        writeConfigs();
        MainWindow w;
        QVERIFY(w.newProject(m_dir.filePath("configs.partita"), true));
        QVERIFY(!w.importTrainingConfig(m_dir.filePath("launch.sh"), true));
        QVERIFY2(w.lastError().contains("cluster"), qPrintable(w.lastError()));
        QVERIFY(w.importCluster("p3.16xlarge", true));
        QVERIFY(!w.importTrainingConfig(m_dir.filePath("ds_config.json"), true)); // no model yet, and it names none
        QVERIFY2(w.lastError().contains("import the model first"), qPrintable(w.lastError()));
        QVERIFY(w.importTrainingConfig(m_dir.filePath("launch.sh"), true));
        QVERIFY(w.designer()->hasInputs());
        QCOMPARE(w.designer()->strategy().tp, 2);
        QCOMPARE(w.designer()->strategy().dp, 4);
        QCOMPARE(w.designer()->model()->dims.layers, int64_t(24));
        QVERIFY(w.importTrainingConfig(m_dir.filePath("ds_config.json"), true));
        QCOMPARE(w.designer()->strategy().tp, 1);
        QCOMPARE(w.designer()->strategy().dp, 8);
        QCOMPARE(w.designer()->strategy().micro_batch, int64_t(4));
        w.designer()->undoStack()->undo();
        QCOMPARE(w.designer()->strategy().tp, 2); // the Megatron-LM import again
        QVERIFY(!w.importTrainingConfig(m_dir.filePath("notes.txt"), true));
        QVERIFY2(w.lastError().contains("not a training configuration"), qPrintable(w.lastError()));
        QCOMPARE(w.designer()->strategy().tp, 2); // nothing lost
    }

    void classifiesDroppedFiles_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<int>("kind");
        QTest::newRow("hf config") << PARTITA_TEST_DATA "/hf/gpt2.json" << int(MainWindow::DropKind::Model);
        QTest::newRow("native model") << PARTITA_SOURCE_DIR "/resources/demo/model.json" << int(MainWindow::DropKind::Model);
        QTest::newRow("cluster json") << PARTITA_SOURCE_DIR "/resources/demo/cluster.json" << int(MainWindow::DropKind::Cluster);
        QTest::newRow("topo") << PARTITA_TEST_DATA "/topo/dgx-a100.txt" << int(MainWindow::DropKind::Cluster);
        QTest::newRow("hostfile") << PARTITA_TEST_DATA "/hostfiles/openmpi.txt" << int(MainWindow::DropKind::Cluster);
        QTest::newRow("kineto gz (by name)") << "rank0.pt.trace.json.gz" << int(MainWindow::DropKind::Trace);
        QTest::newRow("torch trace without Kineto") << partita::test::torchTraces() + "/two/traces/rank1.json" << int(MainWindow::DropKind::Trace);
        QTest::newRow("project") << "x.partita" << int(MainWindow::DropKind::Project);
        QTest::newRow("onnx") << "m.onnx" << int(MainWindow::DropKind::Model);
        QTest::newRow("missing") << "nothing-here.json" << int(MainWindow::DropKind::Unknown);
        QTest::newRow("ds_config.json") << m_dir.filePath("ds_config.json") << int(MainWindow::DropKind::TrainingConfig);
        QTest::newRow("Megatron-LM script") << m_dir.filePath("launch.sh") << int(MainWindow::DropKind::TrainingConfig);
    }
    void classifiesDroppedFiles()
    {
        QFETCH(QString, path);
        QFETCH(int, kind);
        writeConfigs();
        QCOMPARE(int(MainWindow::classifyFile(path)), kind);
    }
};

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
