// The runs table of a project, checked by QAbstractItemModelTester.
#include "runsmodel.h"

#include <QAbstractItemModelTester>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

class TestRunsModel : public QObject
{
    Q_OBJECT
private slots:
    void columns_data()
    {
        QTest::addColumn<int>("column");
        QTest::addColumn<QString>("value");
        QTest::newRow("id") << int(RunsModel::Id) << "1";
        QTest::newRow("name") << int(RunsModel::Name) << "ddp (predicted)";
        QTest::newRow("kind") << int(RunsModel::Kind) << "predicted";
        QTest::newRow("status") << int(RunsModel::Status) << "complete";
        QTest::newRow("ranks") << int(RunsModel::Ranks) << "2";
        QTest::newRow("events") << int(RunsModel::Events) << "3";
        QTest::newRow("duration") << int(RunsModel::Duration) << "3 us";
    }
    void columns()
    {
        QFETCH(int, column);
        QFETCH(QString, value);
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("p.partita").toStdString());
        QVERIFY(store);
        Trace t;
        t.tracks = {{0, 0, "compute"}, {1, 0, "compute"}};
        t.records = {{0, 0, 1000, 500, TraceKind::Compute, "a"}, {1, 0, 2000, 1000, TraceKind::Compute, "b"},
                     {0, 0, 3000, 1000, TraceKind::Collective, "c"}};
        RunInfo info;
        info.name = "ddp (predicted)";
        info.kind = RunKind::Predicted;
        QVERIFY((*store)->storeTrace(t, info));
        RunsModel m;
        QAbstractItemModelTester tester(&m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        m.setRuns((*store)->runs().value());
        QCOMPARE(m.rowCount(), 1);
        QCOMPARE(m.columnCount(), int(RunsModel::ColumnCount));
        QCOMPARE(m.data(m.index(0, column)).toString(), value);
        QCOMPARE(m.rowOf(1), 0);
        QCOMPARE(m.rowOf(7), -1);
        m.setRuns({});
        QCOMPARE(m.rowCount(), 0);
    }
};

QTEST_MAIN(TestRunsModel)
#include "tst_runsmodel.moc"
