// The model graph: layered layout, repeated blocks collapsed into one node
// and expanded by double-click, selection as layer names, atoms dropped on a
// block applying to all of its layers, and the designer keeping the graph's
// selection and the layer table's one.
#include "designer.h"
#include "layertablemodel.h"
#include "modelgraphview.h"
#include "palettemodel.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"

#include <QGraphicsScene>
#include <QMimeData>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTest>
#include <QUndoStack>

using namespace partita;

namespace {
Model gpt2() { return *loadModel(PARTITA_TEST_DATA "/hf/gpt2.json"); }
QPoint viewPointOf(ModelGraphView& g, int vertex)
{
    const QRectF r = g.vertices()[size_t(vertex)].rect;
    g.ensureVisible(r);
    return g.mapFromScene(r.center());
}
} // namespace

class TestModelGraphView : public QObject
{
    Q_OBJECT
private slots:
    void layoutAndBlocks()
    {
        const Model m = gpt2();
        ModelGraphView g;
        g.resize(400, 600);
        g.show();
        QVERIFY(QTest::qWaitForWindowExposed(&g));
        g.setModel(&m);
        int blocks = 0, loose = 0;
        for (const auto& v : g.vertices())
            (v.block.empty() ? loose : blocks)++;
        QCOMPARE(blocks, 12);                        // h.0 .. h.11, each one node
        QCOMPARE(size_t(loose) + 12 * 8, m.layers.size());
        QVERIFY(g.edgeCount() >= int(g.vertices().size()) - 1);
        // Each layer below the vertices it reads.
        for (size_t i = 0; i < m.layers.size(); ++i)
            for (const std::string& in : m.layers[i].inputs) {
                const int a = g.vertexOf(int(m.find(in) - m.layers.data())), b = g.vertexOf(int(i));
                if (a != b)
                    QVERIFY(g.vertices()[size_t(a)].depth < g.vertices()[size_t(b)].depth);
            }
        // Double-click a block: its 8 layers become nodes; again: one node.
        const int h3 = g.vertexOf(m.find("h.3.mlp.fc1") - m.layers.data());
        QCOMPARE(g.vertices()[size_t(h3)].block, std::string("h.3"));
        QTest::mouseDClick(g.viewport(), Qt::LeftButton, {}, viewPointOf(g, h3));
        QVERIFY(!g.blockCollapsed("h.3"));
        QCOMPARE(g.vertices().size(), size_t(loose + blocks - 1 + 8));
        const int fc1 = g.vertexOf(int(m.find("h.3.mlp.fc1") - m.layers.data()));
        QVERIFY(g.vertices()[size_t(fc1)].block.empty());
        QTest::mouseDClick(g.viewport(), Qt::LeftButton, {}, viewPointOf(g, fc1));
        QVERIFY(g.blockCollapsed("h.3"));
    }

    void selectionAndDrops()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        PresetOptions o;
        o.global_batch = 64;
        const Strategy s = *strategyPreset("ddp", m, c, o);
        ModelGraphView g;
        g.resize(400, 600);
        g.show();
        QVERIFY(QTest::qWaitForWindowExposed(&g));
        g.setModel(&m);
        g.setStrategy(*resolveStrategy(s, m, c));
        // A block is selected when all of its layers are, and counts them all.
        std::set<std::string> h5;
        for (const Layer& l : m.layers)
            if (l.block == "h.5")
                h5.insert(l.name);
        g.selectLayers(h5);
        QCOMPARE(g.selectedLayers().size(), size_t(8));
        // Dropping on a block that is not selected applies to its layers only.
        std::vector<std::string> got;
        AtomKind atom{};
        g.setDropHandler([&](const std::vector<std::string>& layers, AtomKind k, QString*) {
            got = layers;
            atom = k;
            return true;
        });
        const int h7 = g.vertexOf(int(m.find("h.7.ln_1") - m.layers.data()));
        QMimeData data;
        data.setData(PaletteModel::kMimeType, "recompute-full");
        const QPoint at = viewPointOf(g, h7);
        QDragEnterEvent enter(at, Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier); // as a drag arrives
        QCoreApplication::sendEvent(g.viewport(), &enter);
        QDragMoveEvent move(at, Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g.viewport(), &move);
        QVERIFY(move.isAccepted());
        QDropEvent drop(QPointF(at), Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g.viewport(), &drop);
        QCOMPARE(got.size(), size_t(8));
        QCOMPARE(atom, AtomKind::RecomputeFull);
        QVERIFY(std::all_of(got.begin(), got.end(), [](const std::string& n) { return n.rfind("h.7.", 0) == 0; }));
        // A refusal keeps the reason.
        g.setDropHandler([](const std::vector<std::string>&, AtomKind, QString* why) {
            *why = "no";
            return false;
        });
        QDragEnterEvent enter2(at, Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g.viewport(), &enter2);
        QDragMoveEvent move2(at, Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g.viewport(), &move2);
        QDropEvent refused(QPointF(at), Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g.viewport(), &refused);
        QCOMPARE(g.lastDropError(), QStringLiteral("no"));
    }

    // In the designer, a drop on a block node is one undoable edit of its
    // layers, and the graph's selection is the table's.
    void designerKeepsOneSelection()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        PresetOptions o;
        o.global_batch = 64;
        Designer d;
        d.resize(1300, 800);
        d.show();
        QVERIFY(QTest::qWaitForWindowExposed(&d));
        d.setInputs(m, c, *strategyPreset("ddp", m, c, o));
        d.showGraph(true);
        ModelGraphView* g = d.graphView();
        std::set<std::string> h2;
        for (const Layer& l : m.layers)
            if (l.block == "h.2")
                h2.insert(l.name);
        // Select in the graph as a user would (the view emits), see the table follow.
        g->selectLayers(h2);
        emit g->selectionChangedByUser(g->selectedLayers());
        QCOMPARE(d.layerView()->selectionModel()->selectedRows().size(), 8);
        // Select in the table: the graph follows.
        d.showGraph(false);
        d.layerView()->clearSelection();
        auto* proxy = qobject_cast<QSortFilterProxyModel*>(d.layerView()->model());
        QItemSelection sel;
        for (const std::string& n : h2) {
            const QModelIndex i = proxy->mapFromSource(d.layerModel()->index(d.layerModel()->rowOf(n), 0));
            sel.select(i, i);
        }
        d.layerView()->selectionModel()->select(sel, QItemSelectionModel::Select | QItemSelectionModel::Rows);
        QCOMPARE(g->selectedLayers().size(), size_t(8));
        // A drop on a block node through the designer's handler.
        d.showGraph(true);
        const int h9 = g->vertexOf(int(m.find("h.9.mlp.fc2") - m.layers.data()));
        QMimeData data;
        data.setData(PaletteModel::kMimeType, "ps");
        const QPoint at = viewPointOf(*g, h9);
        QDragEnterEvent enter(at, Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g->viewport(), &enter);
        QDragMoveEvent move(at, Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g->viewport(), &move);
        QDropEvent drop(QPointF(at), Qt::CopyAction, &data, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(g->viewport(), &drop);
        QVERIFY2(drop.isAccepted(), qPrintable(g->lastDropError()));
        QCOMPARE(d.undoStack()->count(), 1);
        auto r = resolveStrategy(d.strategy(), m, c);
        const int fc2 = int(m.find("h.9.mlp.fc2") - m.layers.data());
        const int act = int(m.find("h.9.mlp.act") - m.layers.data());
        QCOMPARE(r->layers[size_t(fc2)].sync.method, SyncMethod::ParameterServer);
        QCOMPARE(r->layers[size_t(act)].sync.method, SyncMethod::AllReduce); // no parameters: skipped, not refused
    }
};

QTEST_MAIN(TestModelGraphView)
#include "tst_modelgraphview.moc"
