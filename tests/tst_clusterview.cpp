// The cluster view: its figures table (QAbstractItemModelTester, edits that
// change the cluster and refuse nonsense), the drawing of nodes, devices and
// NVLink pairs from a real nvidia-smi topo -m file, and saving the edited
// figures as a new version that the designer then predicts with.
#include "clusterview.h"

#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/profiler/tracestore.h"

#include <QAbstractItemModelTester>
#include <QGraphicsScene>
#include <QGraphicsView>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

class TestClusterView : public QObject
{
    Q_OBJECT
private slots:
    void figuresEditAndRefuse_data()
    {
        QTest::addColumn<int>("column");
        QTest::addColumn<QVariant>("value");
        QTest::addColumn<bool>("accepted");
        QTest::newRow("peak") << int(ClusterFiguresModel::PeakTflops) << QVariant(500.0) << true;
        QTest::newRow("memory") << int(ClusterFiguresModel::MemoryGiB) << QVariant(40.0) << true;
        QTest::newRow("intra") << int(ClusterFiguresModel::IntraBandwidth) << QVariant(100.0) << true;
        QTest::newRow("nic") << int(ClusterFiguresModel::NicBandwidth) << QVariant(12.5) << true;
        QTest::newRow("zero") << int(ClusterFiguresModel::PeakTflops) << QVariant(0.0) << false;
        QTest::newRow("negative") << int(ClusterFiguresModel::MemoryGiB) << QVariant(-1.0) << false;
        QTest::newRow("text") << int(ClusterFiguresModel::IntraBandwidth) << QVariant("fast") << false;
        QTest::newRow("name is not a figure") << int(ClusterFiguresModel::Node) << QVariant("x") << false;
    }
    void figuresEditAndRefuse()
    {
        QFETCH(int, column);
        QFETCH(QVariant, value);
        QFETCH(bool, accepted);
        ClusterFiguresModel m;
        QAbstractItemModelTester tester(&m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        const Cluster c = *clusterPreset("dgx-a100-80gb:2");
        m.setCluster(c);
        QCOMPARE(m.rowCount(), 2);
        const QModelIndex i = m.index(1, column);
        QCOMPARE(m.setData(i, value), accepted);
        QCOMPARE(m.edited(), accepted);
        if (!accepted) {
            QCOMPARE(m.cluster(), c);
            return;
        }
        QCOMPARE(m.data(i, Qt::EditRole).toDouble(), value.toDouble());
        QCOMPARE(m.cluster().nodes[0], c.nodes[0]); // the other node untouched
        QVERIFY(validateCluster(m.cluster()).empty());
    }

    void drawsTopologyAndSavesVersions()
    {
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("c.partita").toStdString());
        QVERIFY(store);
        ClusterLoadOptions o;
        o.device = "a100-sxm4-80gb";
        auto topo = loadCluster(PARTITA_TEST_DATA "/topo/dgx-a100.txt", o);
        QVERIFY2(topo, topo ? "" : topo.error().str().c_str());
        QVERIFY((*store)->saveDocument("cluster", topo->name, clusterToJson(*topo)));
        ClusterView v;
        v.resize(1000, 700);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        v.setProject(store->get());
        QCOMPARE(v.cluster().deviceCount(), topo->deviceCount());
        QCOMPARE(v.drawnDevices(), topo->deviceCount());
        QVERIFY(v.drawing()->scene()->items().size() > qsizetype(topo->deviceCount()));
        // Edit a figure, save: a second version, which is what the view shows.
        QSignalSpy saved(&v, &ClusterView::clusterSaved);
        QVERIFY(v.figures()->setData(v.figures()->index(0, ClusterFiguresModel::IntraBandwidth), 150.0));
        QString why;
        QVERIFY2(v.saveVersion(&why), qPrintable(why));
        QCOMPARE(saved.count(), 1);
        auto docs = (*store)->documents("cluster");
        QCOMPARE(docs->size(), size_t(2));
        QCOMPARE(docs->front().version, 2);
        auto back = clusterFromJson(docs->front().body);
        QVERIFY(back);
        QCOMPARE(back->nodes[0].intra.bandwidth, 150e9);
        QCOMPARE(back->nodes[0].intra.source, std::string("edited in the workbench"));
        QCOMPARE(v.cluster(), *back);
        // Without a project there is nothing to save into.
        ClusterView none;
        QVERIFY(!none.saveVersion(&why));
    }
};

QTEST_MAIN(TestClusterView)
#include "tst_clusterview.moc"
