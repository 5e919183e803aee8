// The workbench window: its menus, opening a project (its runs listed, the
// first shown in the timeline), and refusing a file that is not a project
// without losing the one open.
#include "mainwindow.h"
#include "runsmodel.h"
#include "timelineview.h"

#include "partita/profiler/tracestore.h"

#include <QCoreApplication>
#include <QFile>
#include <QMenuBar>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

class TestMainWindow : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_dir;

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
        QCOMPARE(menus, (QStringList{"&File", "&View", "&Help"}));
        QCOMPARE(w.statusBar()->currentMessage(), QStringLiteral("No project open"));
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
};

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
