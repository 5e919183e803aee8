// The workbench window opens, has its menus, and closes.
#include "mainwindow.h"

#include <QMenuBar>
#include <QStatusBar>
#include <QTest>

class TestMainWindow : public QObject
{
    Q_OBJECT
private slots:
    void opens()
    {
        partita::MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QStringList menus;
        for (QAction* a : w.menuBar()->actions())
            menus << a->text();
        QCOMPARE(menus, (QStringList{"&File", "&Help"}));
        QCOMPARE(w.statusBar()->currentMessage(), QStringLiteral("No project open"));
    }
};

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
