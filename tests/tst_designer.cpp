// The designer: palette and layer-table models (QAbstractItemModelTester),
// drag and drop through the models' mime data and through synthetic drop
// events on the table's viewport, refusals with their reason, undo/redo,
// global settings and presets, the live prediction off the GUI thread, and
// strategy versions saved in a project.
#include "designer.h"
#include "layertablemodel.h"
#include "palettemodel.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/profiler/tracestore.h"

#include <QAbstractItemModelTester>
#include <QComboBox>
#include <QLabel>
#include <QListView>
#include <QMimeData>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTableView>
#include <QTemporaryDir>
#include <QSignalSpy>
#include <QTest>
#include <QUndoStack>

using namespace partita;

namespace {

Model gpt2()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/gpt2.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Cluster p3() { return *clusterPreset("p3.16xlarge:4"); }
Strategy ddp(const Model& m, const Cluster& c)
{
    PresetOptions o;
    o.global_batch = 64;
    o.micro_batch = 2;
    return *strategyPreset("ddp", m, c, o);
}
QMimeData* atomMime(const char* id)
{
    auto* d = new QMimeData;
    d->setData(PaletteModel::kMimeType, id);
    return d;
}
const LayerAssignment& resolvedOf(const Designer& d, const std::string& layer)
{
    static ResolvedStrategy r;
    r = *resolveStrategy(d.strategy(), *d.model(), *d.cluster());
    for (size_t i = 0; i < d.model()->layers.size(); ++i)
        if (d.model()->layers[i].name == layer)
            return r.layers[i];
    qFatal("no layer %s", layer.c_str());
}
// The viewport point of a layer's row in the (possibly sorted) table.
QPoint rowCenter(Designer& d, const std::string& layer)
{
    const int src = d.layerModel()->rowOf(layer);
    auto* proxy = qobject_cast<QSortFilterProxyModel*>(d.layerView()->model());
    const QModelIndex i = proxy->mapFromSource(d.layerModel()->index(src, LayerTableModel::Sync));
    d.layerView()->scrollTo(i);
    return d.layerView()->visualRect(i).center();
}
// Drops palette atom `id` on the table's viewport at `at`, as a drag from the palette would.
bool dropOnViewport(Designer& d, const char* id, QPoint at)
{
    QWidget* vp = d.layerView()->viewport();
    std::unique_ptr<QMimeData> data(atomMime(id));
    QDragEnterEvent enter(at, Qt::CopyAction, data.get(), Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(vp, &enter);
    QDragMoveEvent move(at, Qt::CopyAction, data.get(), Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(vp, &move);
    if (!move.isAccepted())
        return false;
    QDropEvent drop(QPointF(at), Qt::CopyAction, data.get(), Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(vp, &drop);
    return drop.isAccepted();
}

} // namespace

class TestDesigner : public QObject
{
    Q_OBJECT
private slots:
    void paletteModel()
    {
        PaletteModel p;
        QAbstractItemModelTester tester(&p, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(p.rowCount(), int(strategyAtoms().size()));
        for (int r = 0; r < p.rowCount(); ++r) {
            const QModelIndex i = p.index(r, 0);
            QVERIFY(p.flags(i) & Qt::ItemIsDragEnabled);
            std::unique_ptr<QMimeData> m(p.mimeData({i}));
            QCOMPARE(PaletteModel::atomFromMime(m.get()), std::optional<AtomKind>(p.atom(r)));
            QVERIFY(!p.data(i, Qt::ToolTipRole).toString().isEmpty());
        }
        QMimeData text;
        text.setText("allreduce");
        QVERIFY(!PaletteModel::atomFromMime(&text)); // plain text is not an atom
    }

    void layerModel()
    {
        const Model m = gpt2();
        const Cluster c = p3();
        LayerTableModel t;
        QAbstractItemModelTester tester(&t, QAbstractItemModelTester::FailureReportingMode::QtTest);
        t.setModel(&m);
        QCOMPARE(t.rowCount(), int(m.layers.size()));
        auto r = resolveStrategy(ddp(m, c), m, c);
        t.setStrategy(*r, 2, 1024);
        auto sim = simulate(m, c, ddp(m, c));
        QVERIFY(sim);
        t.setPrediction(*sim);
        const int fc1 = t.rowOf("h.0.mlp.fc1");
        QCOMPARE(t.data(t.index(fc1, LayerTableModel::Sync)).toString(), QStringLiteral("AllReduce"));
        QVERIFY(t.data(t.index(fc1, LayerTableModel::Time)).toString().toDouble() > 0);
        QCOMPARE(t.data(t.index(fc1, LayerTableModel::Params), LayerTableModel::SortRole).toDouble(),
                 double(768 * 3072 + 3072));
        // Without a drop handler, a drop is refused and says why.
        std::unique_ptr<QMimeData> d(atomMime("ps"));
        QVERIFY(t.canDropMimeData(d.get(), Qt::CopyAction, -1, -1, t.index(fc1, 0)));
        QVERIFY(!t.dropMimeData(d.get(), Qt::CopyAction, -1, -1, t.index(fc1, 0)));
        QVERIFY(!t.lastDropError().isEmpty());
        // Text that is not an atom, or a drop outside the rows, is not accepted.
        QMimeData text;
        text.setText("ps");
        QVERIFY(!t.canDropMimeData(&text, Qt::CopyAction, -1, -1, t.index(fc1, 0)));
        QVERIFY(!t.canDropMimeData(d.get(), Qt::CopyAction, -1, -1, QModelIndex()));
        t.setModel(nullptr);
        QCOMPARE(t.rowCount(), 0);
    }

    // Drops through the model (as QAbstractItemView does), then undo and redo.
    void dropThroughModelThenUndo_data()
    {
        QTest::addColumn<QString>("atom");
        QTest::addColumn<QString>("layer");
        QTest::addColumn<bool>("accepted");
        QTest::addColumn<QString>("reason");
        QTest::newRow("ps on the embeddings") << "ps" << "embeddings" << true << "";
        QTest::newRow("sfb on fc2") << "sfb" << "h.3.mlp.fc2" << true << "";
        QTest::newRow("recompute fc1") << "recompute-full" << "h.1.mlp.fc1" << true << "";
        QTest::newRow("sfb on a norm") << "sfb" << "h.0.ln_1" << false << "fully-connected layers only";
        QTest::newRow("tp with tp 1") << "tp-column" << "h.0.mlp.fc1" << false << "tensor-parallel degree is 1";
        QTest::newRow("sync a parameter-free layer") << "allreduce" << "h.0.mlp.act" << false << "no parameters";
    }
    void dropThroughModelThenUndo()
    {
        QFETCH(QString, atom);
        QFETCH(QString, layer);
        QFETCH(bool, accepted);
        QFETCH(QString, reason);
        Designer d;
        const Model m = gpt2();
        const Cluster c = p3();
        d.setInputs(m, c, ddp(m, c));
        const Strategy before = d.strategy();
        auto* proxy = d.layerView()->model();
        const QModelIndex target =
            qobject_cast<QSortFilterProxyModel*>(proxy)->mapFromSource(d.layerModel()->index(
                d.layerModel()->rowOf(layer.toStdString()), 0));
        std::unique_ptr<QMimeData> data(atomMime(atom.toUtf8().constData()));
        QVERIFY(proxy->canDropMimeData(data.get(), Qt::CopyAction, -1, -1, target));
        QCOMPARE(proxy->dropMimeData(data.get(), Qt::CopyAction, -1, -1, target), accepted);
        if (!accepted) {
            QVERIFY2(d.layerModel()->lastDropError().contains(reason), qPrintable(d.layerModel()->lastDropError()));
            QVERIFY2(d.layerModel()->lastDropError().contains(layer), qPrintable(d.layerModel()->lastDropError()));
            QCOMPARE(d.strategy(), before);
            QCOMPARE(d.undoStack()->count(), 0);
            const auto notes = d.findChildren<QLabel*>();
            QVERIFY(std::any_of(notes.begin(), notes.end(), [&](QLabel* l) { return l->text().contains(reason); }));
            return;
        }
        QVERIFY(d.strategy() != before);
        QCOMPARE(d.undoStack()->count(), 1);
        const Strategy after = d.strategy();
        d.undoStack()->undo();
        QCOMPARE(d.strategy(), before);
        d.undoStack()->redo();
        QCOMPARE(d.strategy(), after);
    }

    // A synthetic drop event on the table's viewport, onto a selected row:
    // the atom applies to the whole selection.
    void dropEventOnSelection()
    {
        Designer d;
        d.resize(1200, 800);
        d.show();
        QVERIFY(QTest::qWaitForWindowExposed(&d));
        const Model m = gpt2();
        const Cluster c = p3();
        d.setInputs(m, c, ddp(m, c));
        // Select fc1 of every block, as the table's context menu does.
        d.layerView()->setCurrentIndex(qobject_cast<QSortFilterProxyModel*>(d.layerView()->model())
                                           ->mapFromSource(d.layerModel()->index(d.layerModel()->rowOf("h.2.mlp.fc1"), 0)));
        d.selectSameInEveryBlock();
        QCOMPARE(d.layerView()->selectionModel()->selectedRows().size(), 12);
        QCOMPARE(d.dropTargets(d.layerModel()->rowOf("h.5.mlp.fc1")).size(), size_t(12));
        QVERIFY(dropOnViewport(d, "ps", rowCenter(d, "h.5.mlp.fc1")));
        for (int b = 0; b < 12; ++b)
            QCOMPARE(resolvedOf(d, "h." + std::to_string(b) + ".mlp.fc1").sync.method, SyncMethod::ParameterServer);
        QCOMPARE(resolvedOf(d, "h.0.mlp.fc2").sync.method, SyncMethod::AllReduce);
        QCOMPARE(d.undoStack()->count(), 1);
        // A drop on an unselected row applies to that row only.
        QVERIFY(dropOnViewport(d, "sfb", rowCenter(d, "h.0.attention.out")));
        QCOMPARE(resolvedOf(d, "h.0.attention.out").sync.method, SyncMethod::SFB);
        QCOMPARE(resolvedOf(d, "h.1.attention.out").sync.method, SyncMethod::AllReduce);
        // An invalid drop event is refused and changes nothing.
        const Strategy before = d.strategy();
        QVERIFY(!dropOnViewport(d, "sfb", rowCenter(d, "h.0.ln_2")));
        QCOMPARE(d.strategy(), before);
        QCOMPARE(d.undoStack()->count(), 2);
    }

    // Each edit is predicted off the GUI thread; the result arrives and
    // reflects the edit; the GUI thread keeps turning meanwhile.
    void livePrediction()
    {
        Designer d;
        const Model m = gpt2();
        const Cluster c = p3();
        d.setInputs(m, c, ddp(m, c));
        QTRY_VERIFY_WITH_TIMEOUT(!d.predicting(), 20000);
        QVERIFY2(d.prediction().has_value(), qPrintable(d.predictionError()));
        const double ddpStep = d.prediction()->step_time;
        QVERIFY(ddpStep > 0);
        // Recompute everything: more compute per step, same model.
        Strategy s = d.strategy();
        s.recompute = Recompute::Full;
        d.editStrategy(s, "recompute");
        QVERIFY(d.predicting());
        QTRY_VERIFY_WITH_TIMEOUT(!d.predicting(), 20000);
        QVERIFY(d.prediction()->step_time > ddpStep);
        // A strategy that does not resolve: no prediction, the reason instead.
        s.dp = 5;
        d.editStrategy(s, "bad mesh");
        QTRY_VERIFY_WITH_TIMEOUT(!d.predicting(), 20000);
        QVERIFY(!d.prediction());
        QVERIFY2(d.predictionError().contains("devices"), qPrintable(d.predictionError()));
        d.undoStack()->undo();
        QTRY_VERIFY_WITH_TIMEOUT(!d.predicting(), 20000);
        QVERIFY(d.prediction().has_value());
    }

    void globalSettingsAndPresets()
    {
        Designer d;
        const Model m = gpt2();
        const Cluster c = p3();
        d.setInputs(m, c, ddp(m, c));
        QSpinBox* tp = nullptr;
        for (QSpinBox* s : d.findChildren<QSpinBox*>())
            if (s->toolTip() == "Tensor-parallel degree")
                tp = s;
        QVERIFY(tp);
        tp->setValue(4);
        QCOMPARE(d.strategy().tp, 4);
        QCOMPARE(d.strategy().dp, 8); // kept on all 32 devices
        QCOMPARE(d.undoStack()->count(), 1);
        QVERIFY(d.applyPreset("megatron"));
        QCOMPARE(d.undoStack()->count(), 2);
        QString why;
        QVERIFY(!d.applyPreset("no-such-preset", &why));
        QVERIFY(!why.isEmpty());
        d.undoStack()->undo();
        d.undoStack()->undo();
        QCOMPARE(d.strategy(), ddp(m, c));
        QCOMPARE(tp->value(), 1); // the widgets follow undo
        // Attention: fused by default, unfused one edit away, and back with undo.
        QComboBox* attention = nullptr;
        for (QComboBox* b : d.findChildren<QComboBox*>())
            if (b->toolTip().startsWith("Attention core"))
                attention = b;
        QVERIFY(attention);
        QCOMPARE(attention->currentText(), QString("fused"));
        attention->setCurrentIndex(1);
        QCOMPARE(d.strategy().attention, Attention::Unfused);
        attention->setCurrentIndex(2);
        QCOMPARE(d.strategy().attention, Attention::Flash2);
        d.undoStack()->undo();
        QCOMPARE(d.strategy().attention, Attention::Unfused);
        d.undoStack()->undo();
        QCOMPARE(d.strategy().attention, Attention::Fused);
        QCOMPARE(attention->currentText(), QString("fused"));
    }

    // Expert parallelism is a global degree, offered for models with experts.
    void expertParallel_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<int>("ep");
        QTest::addColumn<bool>("offered");
        QTest::addColumn<QString>("refusal"); // empty: the strategy resolves
        const QString mixtral = PARTITA_TEST_DATA "/hf/mixtral-8x7b-v0.1.json";
        QTest::newRow("Mixtral, ep 4") << mixtral << 4 << true << "";
        QTest::newRow("Mixtral, ep 3: does not divide dp 32") << mixtral << 3 << true << "does not divide dp";
        QTest::newRow("Mixtral, ep 16: more than its 8 experts") << mixtral << 16 << true << "does not divide";
        QTest::newRow("GPT-2: no experts") << PARTITA_TEST_DATA "/hf/gpt2.json" << 1 << false << "";
    }
    void expertParallel()
    {
        QFETCH(QString, model);
        QFETCH(int, ep);
        QFETCH(bool, offered);
        QFETCH(QString, refusal);
        auto m = loadModel(model.toStdString());
        QVERIFY(m);
        const Cluster c = p3();
        Designer d;
        d.setInputs(*m, c, ddp(*m, c));
        QSpinBox* box = nullptr;
        for (QSpinBox* s : d.findChildren<QSpinBox*>())
            if (s->toolTip().startsWith("Expert-parallel degree"))
                box = s;
        QVERIFY(box);
        QCOMPARE(box->isEnabled(), offered);
        if (!offered)
            return;
        box->setValue(ep);
        QCOMPARE(d.strategy().ep, ep);
        QCOMPARE(d.undoStack()->count(), 1);
        QTRY_VERIFY_WITH_TIMEOUT(!d.predicting(), 20000);
        if (refusal.isEmpty())
            QVERIFY2(d.prediction().has_value(), qPrintable(d.predictionError()));
        else
            QVERIFY2(d.predictionError().contains(refusal), qPrintable(d.predictionError()));
        d.undoStack()->undo();
        QCOMPARE(box->value(), 1);
    }

    // Unsaved edits are kept in the project and come back when it reopens;
    // saving a version (or discarding) removes them.
    void autosaveRestores()
    {
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("a.partita").toStdString());
        QVERIFY(store);
        const Model m = gpt2();
        const Cluster c = p3();
        QVERIFY((*store)->saveDocument("model", "gpt2", modelToJson(m)));
        QVERIFY((*store)->saveDocument("cluster", "p3", clusterToJson(c)));
        Strategy edited;
        {
            Designer d;
            QVERIFY(d.setProject(store->get()));
            QVERIFY(d.saveVersion("base"));
            QVERIFY(!d.autosaveNow()); // nothing unsaved
            QVERIFY(d.assignAtom({"embeddings"}, Atom{AtomKind::ParameterServer}));
            QVERIFY(d.autosaveNow());
            QVERIFY(d.assignAtom({"h.0.mlp.fc1"}, Atom{AtomKind::SFB}));
            QVERIFY(d.autosaveNow());
            QCOMPARE((*store)->documents("autosave")->size(), size_t(1)); // one kept
            edited = d.strategy();
        } // closed without saving
        Designer again;
        QVERIFY(again.setProject(store->get()));
        QCOMPARE(again.strategy(), edited);
        QCOMPARE(again.undoStack()->count(), 1); // restoring is one undoable edit
        again.undoStack()->undo();
        QVERIFY(again.strategy() != edited);
        again.undoStack()->redo();
        QVERIFY(again.saveVersion("kept"));
        QVERIFY((*store)->documents("autosave")->empty());
        Designer third;
        QVERIFY(third.setProject(store->get()));
        QCOMPARE(third.undoStack()->count(), 0); // nothing left to restore
    }

    void versionsInAProject()
    {
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("p.partita").toStdString());
        QVERIFY(store);
        const Model m = gpt2();
        const Cluster c = p3();
        QVERIFY((*store)->saveDocument("model", "gpt2", modelToJson(m)));
        QVERIFY((*store)->saveDocument("cluster", "p3", clusterToJson(c)));
        Designer d;
        QVERIFY(d.setProject(store->get()));
        QVERIFY(d.hasInputs());
        QCOMPARE(d.modelBox()->count(), 1);
        QVERIFY(d.assignAtom({"embeddings"}, Atom{AtomKind::ParameterServer}));
        QVERIFY(d.saveVersion("adaptive"));
        QVERIFY(d.undoStack()->isClean());
        QVERIFY(d.assignAtom({"h.0.mlp.fc1"}, Atom{AtomKind::SFB}));
        QVERIFY(d.saveVersion("adaptive"));
        auto docs = (*store)->documents("strategy");
        QVERIFY(docs);
        QCOMPARE(docs->size(), size_t(2));
        QCOMPARE(docs->front().version, 2);
        QCOMPARE(d.versionBox()->count(), 2);
        QCOMPARE(d.versionBox()->currentText(), QStringLiteral("adaptive v2"));
        // Reopening the project brings the newest version back.
        Designer again;
        QVERIFY(again.setProject(store->get()));
        QCOMPARE(resolvedOf(again, "h.0.mlp.fc1").sync.method, SyncMethod::SFB);
        QCOMPARE(resolvedOf(again, "embeddings").sync.method, SyncMethod::ParameterServer);
        // Compare the first version (A) with the current strategy (B): two predicted runs.
        QSignalSpy ready(&again, &Designer::compareReady);
        QString why2;
        QVERIFY2(again.compareWithVersion(docs->back().id, &why2), qPrintable(why2));
        QVERIFY(ready.wait(30000));
        const qint64 ra = ready.front().at(0).toLongLong(), rb = ready.front().at(1).toLongLong();
        auto runA = (*store)->run(ra), runB = (*store)->run(rb);
        QVERIFY(runA && runB);
        QCOMPARE(runA->kind, RunKind::Predicted);
        QCOMPARE(runA->strategy_id, docs->back().id); // the version itself, not a copy
        QVERIFY(runA->name.find("adaptive v1") == 0);
        // A version that runs were made with cannot be deleted; rename moves every version.
        QVERIFY(!again.deleteVersion(docs->back().id, &why2));
        QVERIFY2(why2.contains("run(s)"), qPrintable(why2));
        QVERIFY(again.renameStrategy("per-layer", &why2));
        QCOMPARE((*store)->document(docs->back().id)->name, std::string("per-layer"));
        QCOMPARE(again.strategy().name, std::string("per-layer"));
        // Without a project, saving is refused with the reason.
        Designer none;
        QString why;
        QVERIFY(!none.saveVersion("x", &why));
        QVERIFY(why.contains("project"));
    }
};

QTEST_MAIN(TestDesigner)
#include "tst_designer.moc"
