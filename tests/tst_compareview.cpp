// The compare view: its two table models (QAbstractItemModelTester), a
// comparison of two predicted strategies (deltas that agree with the runs'
// own step times), the timelines kept on one time scale from their first
// step, exports, the memory and stragglers lines, every figure leading to
// its events on the timelines, and refusals.
#include "compareview.h"
#include "timelineview.h"

#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"
#include "partita/core/strategy.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/eventquery.h"
#include "partita/profiler/memory.h"
#include "partita/profiler/stragglers.h"
#include "partita/profiler/tracestore.h"
#include "synthranks.h"

#include <QAbstractItemModelTester>
#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QSignalSpy>
#include <QTableView>
#include <QTest>

using namespace partita;

namespace {

// Two predictions of BERT-large on 4 x p3.16xlarge: Horovod and the adaptive strategy.
struct Project
{
    QTemporaryDir dir;
    std::unique_ptr<TraceStore> store;
    int64_t a = 0, b = 0;
    double stepA = 0, stepB = 0;
};

std::unique_ptr<Project> makeProject()
{
    auto p = std::make_unique<Project>();
    auto store = TraceStore::open(p->dir.filePath("c.partita").toStdString());
    if (!store)
        qFatal("%s", store.error().str().c_str());
    p->store = std::move(*store);
    const Model m = *loadModel(PARTITA_TEST_DATA "/hf/bert-large-uncased.json");
    const Cluster c = *clusterPreset("p3.16xlarge:4");
    PresetOptions o;
    o.global_batch = 256;
    o.micro_batch = 8;
    const Strategy horovod = *strategyPreset("horovod", m, c, o);
    auto text = readTextFile(PARTITA_SOURCE_DIR "/resources/strategies/bert-large-adaptive-p3x4.json");
    const Strategy adaptive = *strategyFromJson(*text);
    const auto md = *p->store->saveDocument("model", "bert", modelToJson(m));
    SimOptions so;
    so.trace = true;
    for (const Strategy* s : {&horovod, &adaptive}) {
        auto r = simulate(m, c, *s, so);
        if (!r)
            qFatal("%s", r.error().str().c_str());
        RunInfo info;
        info.name = s == &horovod ? "horovod" : "adaptive (predicted)"; // one name that says its kind
        info.kind = RunKind::Predicted;
        info.model_id = md.id;
        // The adaptive run as a measured run would record what its backend did not run as planned.
        const std::string meta = s == &horovod ? std::string() : R"({"not_as_planned": ["parameter-server placement <here>"]})";
        const int64_t id = *p->store->storeTrace(r->trace, info, meta);
        (s == &horovod ? p->a : p->b) = id;
        (s == &horovod ? p->stepA : p->stepB) = r->step_time;
    }
    return p;
}

// Two synthesized runs of 2 ranks; with `slowB`, rank 1 of the second runs
// its backward GEMM 1.5x slower.
struct SynthPair
{
    QTemporaryDir dir;
    std::unique_ptr<TraceStore> store;
    int64_t a = 0, b = 0;
};

std::unique_ptr<SynthPair> synthPair(bool slowB)
{
    auto p = std::make_unique<SynthPair>();
    auto store = TraceStore::open(p->dir.filePath("s.partita").toStdString());
    if (!store)
        qFatal("%s", store.error().str().c_str());
    p->store = std::move(*store);
    test::SynthOptions o;
    o.ranks = 2;
    auto a = test::synthesizeRanks(*p->store, test::dataParallelPattern(3, 2), o);
    if (slowB) {
        o.slow_rank = 1;
        o.slow_kernel = "ampere_sgemm_64x64_nt";
        o.slow_factor = 1.5;
    }
    auto b = test::synthesizeRanks(*p->store, test::dataParallelPattern(3, 2), o);
    if (!a || !b)
        qFatal("the runs could not be made");
    p->a = a->run_id;
    p->b = b->run_id;
    return p;
}

} // namespace

class TestCompareView : public QObject
{
    Q_OBJECT
private slots:
    void comparesTwoStrategies()
    {
        auto p = makeProject();
        CompareView v;
        QAbstractItemModelTester t1(v.layerModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester t2(v.opsModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        v.resize(1200, 800);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        v.setStore(p->store.get());
        QSignalSpy done(&v, &CompareView::compared);
        QVERIFY2(v.compare(p->a, p->b), qPrintable(v.lastError()));
        QVERIFY(v.busy()); // the runs are read on a worker
        QVERIFY(done.wait(60000));
        QVERIFY2(done.front().front().toBool(), qPrintable(v.lastError()));
        QVERIFY(!v.busy());
        QVERIFY(v.diff().has_value());
        // One predicted step each, aligned: the deltas are the predictions' own step times.
        QCOMPARE(v.diff()->steps.size(), size_t(1));
        QVERIFY(std::abs(double(v.diff()->steps[0].a_ns) / 1e9 - p->stepA) < 1e-3 * p->stepA);
        QVERIFY(std::abs(double(v.diff()->steps[0].b_ns) / 1e9 - p->stepB) < 1e-3 * p->stepB);
        QVERIFY2(v.summary().contains("B − A"), qPrintable(v.summary()));
        // Each run named once with its kind, not twice where its name says it already.
        QVERIFY2(v.summary().contains("horovod (predicted)") && v.summary().contains("adaptive (predicted)") &&
                     !v.summary().contains("(predicted) (predicted)"),
                 qPrintable(v.summary()));
        QVERIFY(p->stepB < p->stepA); // the adaptive strategy is faster (ORACLES: AutoSync's story)
        QVERIFY(v.summary().contains("-")); // a negative delta
        QVERIFY2(v.summary().contains("B did not run as planned: parameter-server placement <here>"), qPrintable(v.summary()));
        QVERIFY(!v.summary().contains("A did not run as planned"));
        // Layers named from the run's model; every BERT layer with device time is there.
        QVERIFY(v.layerModel()->rowCount() > 24 * 8);
        QCOMPARE(v.layerModel()->data(v.layerModel()->index(0, LayerDeltaModel::Layer)).toString(),
                 QStringLiteral("embeddings"));
        // The adaptive strategy adds the PS op and drops nothing of the compute.
        bool added = false;
        for (int r = 0; r < v.opsModel()->rowCount(); ++r)
            added |= v.opsModel()->data(v.opsModel()->index(r, OpsDiffModel::Change)).toString() == "added";
        QVERIFY(added);

        // Same scale, same origin (the first step) on both timelines.
        QCOMPARE(v.timelineA()->axis().nsPerPixel(), v.timelineB()->axis().nsPerPixel());
        const auto [anchorA, anchorB] = v.anchors();
        QCOMPARE(v.timelineA()->axis().start() - anchorA, v.timelineB()->axis().start() - anchorB);
        // Zooming A moves B with it.
        v.timelineA()->axis().zoomAt(300, 4);
        emit v.timelineA()->viewChanged();
        QCOMPARE(v.timelineA()->axis().start() - anchorA, v.timelineB()->axis().start() - anchorB);
        QVERIFY(std::abs(v.timelineA()->axis().nsPerPixel() - v.timelineB()->axis().nsPerPixel()) < 1e-6);

        // Exports.
        const QString png = p->dir.filePath("cmp.png"), svg = p->dir.filePath("cmp.svg");
        QVERIFY2(v.exportImage(png), qPrintable(v.lastError()));
        QVERIFY(QFileInfo(png).size() > 1000);
#ifdef PARTITA_HAVE_QTSVG
        QVERIFY2(v.exportImage(svg, v.rankChart()), qPrintable(v.lastError()));
        QFile f(svg);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(f.readAll().contains("<svg"));
#endif
        QVERIFY(!v.exportImage(p->dir.filePath("cmp.bmpx")));
        QVERIFY(v.lastError().contains(".png or .svg"));
    }

    // The summary's memory and stragglers lines: a synthesized 4-rank run
    // with a slow rank against one step of a real trace with memory records.
    void memoryAndStragglers()
    {
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("m.partita").toStdString());
        QVERIFY(store);
        test::SynthOptions o;
        o.ranks = 4;
        o.slow_rank = 2;
        o.slow_kernel = "ampere_sgemm_64x64_nt";
        o.slow_factor = 2.0;
        auto synth = test::synthesizeRanks(**store, test::dataParallelPattern(3, 2), o);
        QVERIFY(synth);
        auto imp = importChromeTrace(**store, {PARTITA_TEST_DATA "/hta/memory-df_index_resolver-step3.json.gz"});
        QVERIFY(imp);
        CompareView v;
        v.setStore(store->get());
        QSignalSpy done(&v, &CompareView::compared);
        QVERIFY2(v.compare(synth->run_id, imp->run_id), qPrintable(v.lastError()));
        QVERIFY(done.wait(60000));
        QVERIFY2(done.front().front().toBool(), qPrintable(v.lastError()));
        QVERIFY2(v.summary().contains("peak memory per device: A —, B 6.17 GiB (cuda:1 of rank 1)"), qPrintable(v.summary()));
        QVERIFY2(v.summary().contains("stragglers: A rank 2 made the others wait"), qPrintable(v.summary()));
        QVERIFY2(v.summary().contains("B one rank"), qPrintable(v.summary()));
        // Its peak leads to the moment on rank 1's timeline.
        QSignalSpy framed(&v, &CompareView::framed);
        QVERIFY(!v.openLink("memory:a"));
        QVERIFY(v.openLink("memory:b"));
        QCOMPARE(framed.count(), 1);
        auto report = readMemory(**store, imp->run_id);
        QVERIFY(report);
        int64_t at = -1;
        for (const MemorySeries& s : report->series)
            if (s.rank == 1 && s.device == "cuda:1")
                at = s.peak_allocated_at_ns;
        const auto [m0, m1] = v.timelineB()->measuredRange();
        QVERIFY(m0 < at && at < m1);
    }

    // A double-click on a layer or ops row selects and frames, on each
    // timeline, the compared rank's first such event of the compared step.
    void rowsLeadToEvents_data()
    {
        QTest::addColumn<bool>("layerRow");
        QTest::newRow("a layer") << true;
        QTest::newRow("an op") << false;
    }
    void rowsLeadToEvents()
    {
        QFETCH(bool, layerRow);
        auto runs = synthPair(true);
        auto& store = runs->store;
        CompareView v;
        v.resize(1200, 800);
        v.show();
        v.setStore(store.get());
        QSignalSpy done(&v, &CompareView::compared);
        QVERIFY(v.compare(runs->a, runs->b));
        QVERIFY(done.wait(60000));
        QSignalSpy framed(&v, &CompareView::framed);
        QTableView* table = layerRow ? v.layerTable() : v.opsTable();
        // The row of layer 2, or of the backward GEMM.
        QModelIndex cell;
        for (int r = 0; r < table->model()->rowCount() && !cell.isValid(); ++r) {
            const QModelIndex i = table->model()->index(r, 0);
            if (i.data().toString() == (layerRow ? "layer 2" : "ampere_sgemm_64x64_nt"))
                cell = i;
        }
        QVERIFY2(cell.isValid(), "no such row");
        table->scrollTo(cell);
        const QPoint at = table->visualRect(cell).center();
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, at);
        QTest::mouseDClick(table->viewport(), Qt::LeftButton, {}, at);
        v.waitForFrame();
        QCOMPARE(framed.count(), 1);
        QCOMPARE(framed.front().at(0).toBool(), true);
        QCOMPARE(framed.front().at(1).toBool(), true);
        for (TimelineView* t : {v.timelineA(), v.timelineB()}) {
            QVERIFY(t->selectedEvent() != 0);
            const auto [m0, m1] = t->measuredRange();
            QVERIFY(m1 > m0);
            QVERIFY(t->axis().start() <= m0 && t->axis().end() >= m1); // framed
            if (layerRow)
                QCOMPARE(t->highlightLayer(), 2);
        }
    }

    // The summary's links, the charts' bars and the class bars lead to the
    // events (or, for a step and idle time, the window) behind them.
    void figuresLeadToEvents_data()
    {
        QTest::addColumn<QString>("how");
        QTest::addColumn<bool>("inA");
        QTest::addColumn<bool>("inB");
        QTest::addColumn<QString>("expect"); // a selected event's name part, or "step", or "straggler"
        QTest::newRow("summary: mean step") << "link:step" << true << true << "step";
        QTest::newRow("summary: compute") << "link:class:computation" << true << true << "sgemm";
        QTest::newRow("summary: straggler of B") << "link:straggler:b" << false << true << "straggler";
        QTest::newRow("rank chart: B r1 non-compute") << "rank:1:1:1" << false << true << "AllReduce";
        QTest::newRow("rank chart: A r0 compute") << "rank:0:0:0" << true << false << "sgemm";
        QTest::newRow("rank chart: B r0 idle") << "rank:1:0:2" << false << true << "step";
        QTest::newRow("class chart: communication") << "class:communication" << true << true << "AllReduce";
    }
    void figuresLeadToEvents()
    {
        QFETCH(QString, how);
        QFETCH(bool, inA);
        QFETCH(bool, inB);
        QFETCH(QString, expect);
        auto runs = synthPair(true);
        auto& store = runs->store;
        CompareView v;
        v.resize(1200, 800);
        v.show();
        v.setStore(store.get());
        QSignalSpy done(&v, &CompareView::compared);
        QVERIFY(v.compare(runs->a, runs->b));
        QVERIFY(done.wait(60000));
        QSignalSpy framed(&v, &CompareView::framed);
        const QStringList parts = how.split(':');
        if (parts[0] == "link") {
            QVERIFY(v.openLink(how.mid(5)));
        } else if (parts[0] == "rank") {
            v.frameRankShare(parts[1].toInt(), parts[2].toInt(), CompareView::RankShare(parts[3].toInt()));
        } else { // through the chart's own bar, as a click emits it
            auto* series = qobject_cast<QBarSeries*>(v.classChart()->chart()->series().front());
            QVERIFY(series);
            auto* cats = qobject_cast<QBarCategoryAxis*>(v.classChart()->chart()->axes(Qt::Horizontal).front());
            QVERIFY(cats);
            const int index = int(cats->categories().indexOf(parts[1]));
            QVERIFY(index >= 0);
            emit series->barSets().front()->clicked(index);
        }
        v.waitForFrame();
        QCOMPARE(framed.count(), 1);
        QCOMPARE(framed.front().at(0).toBool(), inA);
        QCOMPARE(framed.front().at(1).toBool(), inB);
        const int64_t ids[2] = {runs->a, runs->b};
        TimelineView* timelines[2] = {v.timelineA(), v.timelineB()};
        for (int side = 0; side < 2; ++side) {
            TimelineView* t = timelines[side];
            const auto [m0, m1] = t->measuredRange();
            if (!(side == 0 ? inA : inB)) {
                QCOMPARE(m1, m0); // the other side is left as it was
                continue;
            }
            QVERIFY(m1 > m0);
            QVERIFY(t->axis().start() <= m0 && t->axis().end() >= m1);
            if (expect == "step" || expect == "straggler") {
                QCOMPARE(t->selectedEvent(), int64_t(0));
                if (expect == "straggler") {
                    auto r = findStragglers(*store, ids[side]);
                    QVERIFY(r && !r->steps.empty());
                    // Rank 1 ran the slow GEMM: its costliest late arrival, from the collective before.
                    const StepStraggler* worst = nullptr;
                    for (const StepStraggler& s : r->steps)
                        if (s.late_rank == 1 && (!worst || s.worst_wait_ns > worst->worst_wait_ns))
                            worst = &s;
                    QVERIFY(worst);
                    QCOMPARE(m0, worst->window_start_ns);
                    QCOMPARE(m1, worst->collective_end_ns);
                } else {
                    EventQuery q;
                    q.rank = how == "link:step" ? 0 : parts[2].toInt();
                    q.step = 0;
                    q.limit = 0;
                    auto m = findEvents(*store, ids[side], q);
                    QVERIFY(m && m->step_windows.count(*q.rank));
                    QCOMPARE(m0, m->step_windows.at(*q.rank).first);
                    QCOMPARE(m1, m->step_windows.at(*q.rank).second);
                }
                continue;
            }
            QVERIFY(t->selectedEvent() != 0);
            EventQuery q;
            q.rank = parts[0] == "rank" ? parts[2].toInt() : 0;
            auto m = findEvents(*store, ids[side], q);
            QVERIFY(m);
            q.limit = size_t(m->total);
            m = findEvents(*store, ids[side], q);
            const auto e = std::find_if(m->events.begin(), m->events.end(), [&](const FoundEvent& f) { return f.event_id == t->selectedEvent(); });
            QVERIFY2(e != m->events.end(), "the selected event is not the rank's");
            QVERIFY2(QString::fromStdString(e->name).contains(expect), e->name.c_str());
            QCOMPARE(m0, e->start_ns);
        }
    }

    // A second question before the first is answered: the latest is framed.
    void latestFrameWins()
    {
        auto runs = synthPair(false);
        auto& store = runs->store;
        CompareView v;
        v.setStore(store.get());
        QSignalSpy done(&v, &CompareView::compared);
        QVERIFY(v.compare(runs->a, runs->b));
        QVERIFY(done.wait(60000));
        QSignalSpy framed(&v, &CompareView::framed);
        v.frameLayer(1);
        v.frameOp("ncclDevKernel_AllReduce_Sum_f32_RING_LL");
        v.waitForFrame();
        QCOMPARE(framed.count(), 1);
        QCOMPARE(v.timelineA()->highlightLayer(), -1); // the op's answer, not the layer's
        QVERIFY(v.timelineA()->selectedEvent() != 0);
        QVERIFY(!v.openLink("memory:a")); // these runs record no memory
        QVERIFY(!v.openLink("nonsense"));
    }

    void refusals()
    {
        auto p = makeProject();
        CompareView v;
        QVERIFY(!v.compare(p->a, p->b)); // no project
        QVERIFY(v.lastError().contains("project"));
        v.setStore(p->store.get());
        QVERIFY(!v.compare(p->a, 999));
        QVERIFY2(v.lastError().contains("999"), qPrintable(v.lastError()));
        QCOMPARE(v.runA(), int64_t(0)); // nothing half-compared
    }
};

QTEST_MAIN(TestCompareView)
#include "tst_compareview.moc"
