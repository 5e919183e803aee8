// The timeline view, offscreen: tracks grouped by rank, events painted from
// the store's viewport query (folded when too small), W/A/S/D and F,
// Ctrl+wheel zoom at the cursor, collapsing a rank, hover descriptions.
#include "timelineview.h"
#include "partita/profiler/chromeimport.h"
#include "testdata.h"

#include <QDir>
#include <QScreen>
#include <QScrollBar>
#include <QTemporaryDir>
#include <QSignalSpy>
#include <QTest>
#include <QWheelEvent>

#include <algorithm>
#include <map>
#include <set>

using namespace partita;

namespace {

// Two ranks, a device and a host track each; 2,000 kernels of 1 us every
// 5 us on the device tracks and one long step on the host ones.
std::unique_ptr<TraceStore> makeStore(const QString& path, int64_t& run)
{
    auto store = TraceStore::open(path.toStdString());
    if (!store)
        qFatal("%s", store.error().str().c_str());
    Trace t;
    for (int r = 0; r < 2; ++r) {
        t.tracks.push_back({r, 0, "compute"});
        t.tracks.push_back({r, 2, "steps"});
        for (int i = 0; i < 2000; ++i)
            t.records.push_back({r, 0, 1'000'000 + i * 5000, 1000, TraceKind::Kernel, "gemm " + std::to_string(i % 3)});
        t.records.push_back({r, 2, 1'000'000, 10'000'000, TraceKind::Step, "ProfilerStep#0"});
    }
    RunInfo info;
    info.name = "view test";
    auto id = (*store)->storeTrace(t, info);
    if (!id)
        qFatal("%s", id.error().str().c_str());
    run = *id;
    return std::move(*store);
}

// The colour an event was filled with: the commonest along its bottom row
// (grid and step lines cross it at single pixels).
QRgb fillOf(const QImage& img, const TimelineView& v, const QRectF& rect)
{
    std::map<QRgb, int> seen;
    for (int x = int(rect.left()) + 1; x < int(rect.right()); ++x)
        ++seen[img.pixel(v.viewport()->mapTo(&v, QPoint(x, int(rect.bottom()) - 1)))];
    return std::max_element(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.second < b.second; })->first;
}

// Shows `run` of `store` in `v`, sized, on screen (offscreen); false if it never appears.
bool showRun(TimelineView& v, const TraceStore* store, int64_t run, QSize size = {1000, 400})
{
    v.resize(size);
    v.setRun(store, run);
    v.show();
    return QTest::qWaitForWindowExposed(&v);
}

} // namespace

class TestTimelineView : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_dir;

private slots:
    void paintsTheRun()
    {
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath("a.partita"), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run, {1200, 500}));
        v.viewport()->repaint();
        // Fitted: the whole run, 2,000 kernels per rank folded into far fewer items.
        QCOMPARE(v.axis().start(), int64_t(1'000'000));
        int folded = 0, steps = 0;
        for (const auto& p : v.painted()) {
            folded += p.item.count > 1;
            steps += p.item.kind == TraceKind::Step;
        }
        QVERIFY(folded > 0);
        QCOMPARE(steps, 2);
        QVERIFY(v.painted().size() < 1500);
        // Zoomed to 50 us: every kernel in view is drawn as itself.
        v.axis().show(2'000'000, 2'050'000);
        v.viewport()->repaint();
        int kernels = 0;
        for (const auto& p : v.painted())
            if (p.item.kind == TraceKind::Kernel) {
                QCOMPARE(p.item.count, int64_t(1));
                ++kernels;
            }
        QVERIFY2(kernels >= 2 * 9 && kernels <= 2 * 11, qPrintable(QString::number(kernels)));
        const auto* hit = v.itemAt(v.painted().front().rect.center());
        QVERIFY(hit);
        QVERIFY(v.describe(*hit).contains("duration"));
    }

    // What reaches the screen: events filled in their colour, others dimmed
    // towards the background while a layer is highlighted, colours by layer,
    // and labels (white glyphs) only where an event has room for them.
    void pixelsMatchWhatWasPainted_data()
    {
        QTest::addColumn<bool>("byLayer");
        QTest::addColumn<int>("highlight");
        QTest::newRow("by kind") << false << -1;
        QTest::newRow("by kind, layer 1 highlighted") << false << 1;
        QTest::newRow("by layer") << true << -1;
        QTest::newRow("by layer, layer 0 highlighted") << true << 0;
    }
    void pixelsMatchWhatWasPainted()
    {
        QFETCH(bool, byLayer);
        QFETCH(int, highlight);
        auto store = TraceStore::open(m_dir.filePath(QString("px-%1-%2.partita").arg(byLayer).arg(highlight)).toStdString());
        QVERIFY(store);
        Trace t;
        t.tracks.push_back({0, 0, "compute"});
        for (int i = 0; i < 12; ++i) { // alternate layers; every fourth kernel too short for a label
            TraceRecord r{0, 0, 1'000'000 + i * 50'000, i % 4 == 3 ? 2'000 : 40'000, TraceKind::Kernel, "gemm_kernel"};
            r.layer = i % 2;
            t.records.push_back(r);
        }
        RunInfo info;
        info.name = "pixels";
        auto run = (*store)->storeTrace(t, info);
        QVERIFY(run);
        TimelineView v;
        v.setColorBy(byLayer ? TimelineView::ColorBy::Layer : TimelineView::ColorBy::Kind);
        QVERIFY(showRun(v, store->get(), *run, {1000, 300}));
        v.setHighlightLayer(highlight);
        const QImage img = v.grab().toImage().convertToFormat(QImage::Format_RGB32);
        const QColor base = v.palette().color(QPalette::Base);
        std::map<int32_t, QRgb> colour; // by layer, sampled at each event's top-left corner
        int labelled = 0, kernels = 0;
        for (const auto& p : v.painted()) {
            if (p.item.kind != TraceKind::Kernel || p.item.count != 1 || p.rect.width() < 3)
                continue;
            ++kernels;
            const QRgb c = fillOf(img, v, p.rect);
            QVERIFY(c != base.rgb());
            auto [it, fresh] = colour.emplace(p.item.layer, c);
            QCOMPARE(it->second, c); // one colour per layer in every row
            // White glyph pixels inside the event: only where there was room.
            int white = 0;
            for (int x = int(p.rect.left()) + 2; x < int(p.rect.right()) - 1; ++x)
                for (int y = int(p.rect.top()) + 2; y < int(p.rect.bottom()) - 1; ++y) {
                    const QRgb q = img.pixel(v.viewport()->mapTo(&v, QPoint(x, y)));
                    // Blended towards white: no channel darker (grid lines darken one at least).
                    white += q != c && qRed(q) >= qRed(c) && qGreen(q) >= qGreen(c) && qBlue(q) >= qBlue(c);
                }
            if (p.rect.width() > 40) {
                QVERIFY2(white > 10, qPrintable(QString("%1 label pixels in a %2 px event").arg(white).arg(p.rect.width())));
                ++labelled;
            } else if (p.rect.width() < 25) {
                QCOMPARE(white, 0);
            }
        }
        QVERIFY(kernels >= 8);
        QVERIFY(labelled >= 6);
        QCOMPARE(colour.size(), size_t(2));
        if (highlight < 0) {
            QCOMPARE(colour[0] == colour[1], !byLayer); // one kind: one colour, unless by layer
            return;
        }
        // The other layer: a quarter of its own colour over the background.
        v.setHighlightLayer(-1);
        const QImage plain = v.grab().toImage().convertToFormat(QImage::Format_RGB32);
        for (const auto& p : v.painted()) {
            if (p.item.kind != TraceKind::Kernel || p.item.count != 1 || p.rect.width() < 3)
                continue;
            const QRgb full = fillOf(plain, v, p.rect);
            if (p.item.layer == highlight) {
                QCOMPARE(colour[p.item.layer], full);
            } else {
                const QRgb dim = colour[p.item.layer];
                QVERIFY(std::abs(qRed(dim) - (qRed(full) + 3 * base.red()) / 4) <= 1);
                QVERIFY(std::abs(qGreen(dim) - (qGreen(full) + 3 * base.green()) / 4) <= 1);
                QVERIFY(std::abs(qBlue(dim) - (qBlue(full) + 3 * base.blue()) / 4) <= 1);
            }
        }
    }

    // Spans written straight into the window's backing store give the same
    // pixels, in the same places, as spans copied over from an image.
    void directAndCopiedPaintsAgree()
    {
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath("direct.partita"), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run, {900, 300}));
        v.axis().show(1'990'000, 2'060'000); // labelled kernels, a step, grid lines
        v.setHighlightLayer(-1);
        auto shot = [&] {
            v.viewport()->repaint();
            return v.screen()->grabWindow(v.winId()).toImage().convertToFormat(QImage::Format_RGB32);
        };
        const QImage direct = shot();
        QVERIFY(v.paintedDirectly()); // the offscreen platform paints into a raster backing store
        v.setPaintDirectly(false);
        const QImage copied = shot();
        QVERIFY(!v.paintedDirectly());
        QCOMPARE(direct.size(), copied.size());
        std::set<QRgb> colours;
        for (int y = 0; y < direct.height(); y += 3)
            for (int x = 0; x < direct.width(); x += 3)
                colours.insert(direct.pixel(x, y));
        QVERIFY(colours.size() > 5); // not blank
        if (direct != copied) { direct.save("/tmp/direct.png"); copied.save("/tmp/copied.png"); }
        QVERIFY(direct == copied);
        // And what the widget renders elsewhere (grab: a pixmap, so copied) agrees too.
        const QImage grabbed = v.grab().toImage().convertToFormat(QImage::Format_RGB32);
        if (grabbed.size() == direct.size()) // the offscreen platform grabs windows at 1x only
            QVERIFY(grabbed == direct);
    }

    void keysAndWheel_data()
    {
        QTest::addColumn<int>("key");
        QTest::addColumn<double>("scale");  // nsPerPixel after / before
        QTest::addColumn<int>("direction"); // sign of the start's move
        QTest::newRow("W zooms in") << int(Qt::Key_W) << 1 / 1.5 << 0;
        QTest::newRow("S zooms out") << int(Qt::Key_S) << 1.5 << 0;
        QTest::newRow("D pans right") << int(Qt::Key_D) << 1.0 << 1;
        QTest::newRow("A pans left") << int(Qt::Key_A) << 1.0 << -1;
    }
    void keysAndWheel()
    {
        QFETCH(int, key);
        QFETCH(double, scale);
        QFETCH(int, direction);
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath(QString("k%1.partita").arg(key)), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run));
        v.axis().show(3'000'000, 5'000'000); // room to move both ways
        const double npp = v.axis().nsPerPixel();
        const int64_t start = v.axis().start();
        QTest::keyClick(&v, Qt::Key(key));
        QVERIFY(std::abs(v.axis().nsPerPixel() / npp - scale) < 1e-9);
        if (direction)
            QCOMPARE(v.axis().start() > start, direction > 0);
        QTest::keyClick(&v, Qt::Key_F);
        QCOMPARE(v.axis().start(), int64_t(1'000'000));
    }

    void ctrlWheelZoomsAtTheCursor()
    {
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath("w.partita"), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run));
        const QPointF pos(TimelineView::kGutter + 300, 100);
        const int64_t before = v.axis().t(300);
        QWheelEvent e(pos, v.viewport()->mapToGlobal(pos), QPoint(), QPoint(0, 240), Qt::NoButton, Qt::ControlModifier,
                      Qt::NoScrollPhase, false);
        QCoreApplication::sendEvent(v.viewport(), &e);
        QVERIFY(v.axis().nsPerPixel() < 11'000'000.0 / 800);
        QVERIFY(std::abs(double(v.axis().t(300) - before)) <= v.axis().nsPerPixel() + 1);
    }

    void collapsingARankHidesItsTracks()
    {
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath("c.partita"), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run));
        v.viewport()->repaint();
        const size_t all = v.painted().size();
        // Click rank 0's header (the first row under the ruler).
        QTest::mouseClick(v.viewport(), Qt::LeftButton, {}, QPoint(40, TimelineView::kRuler + 5));
        v.viewport()->repaint();
        QVERIFY(v.painted().size() < all);
        for (const auto& p : v.painted())
            QVERIFY(p.rect.top() > TimelineView::kRuler + TimelineView::kHeaderHeight); // rank 0's rows are gone
    }

    // Shift+drag measures a range: its length and the busy time by kind.
    void shiftDragMeasures()
    {
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath("m.partita"), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run));
        v.axis().show(2'000'000, 2'100'000); // 100 us: 20 kernels per rank, each drawn
        v.viewport()->repaint();
        const int x0 = TimelineView::kGutter + 100, x1 = TimelineView::kGutter + 500;
        const int y = TimelineView::kRuler + TimelineView::kHeaderHeight + 5; // rank 0's first track
        QTest::mousePress(v.viewport(), Qt::LeftButton, Qt::ShiftModifier, QPoint(x0, y));
        QMouseEvent move(QEvent::MouseMove, QPointF(x1, y), v.viewport()->mapToGlobal(QPointF(x1, y)), Qt::NoButton,
                         Qt::LeftButton, Qt::ShiftModifier);
        QCoreApplication::sendEvent(v.viewport(), &move);
        QTest::mouseRelease(v.viewport(), Qt::LeftButton, Qt::ShiftModifier, QPoint(x1, y));
        const auto [a, b] = v.measuredRange();
        QVERIFY(std::abs(double(a - v.axis().t(100))) <= v.axis().nsPerPixel() + 1);
        QVERIFY(std::abs(double(b - v.axis().t(500))) <= v.axis().nsPerPixel() + 1);
        v.viewport()->repaint();
        const QString text = v.describeRange();
        QVERIFY2(text.contains("selected") && text.contains("kernel"), qPrintable(text));
        // Kernels of 1 us every 5 us: a fifth of the range is busy on each of the two ranks.
        QVERIFY2(text.contains("100.0 % of busy time"), qPrintable(text));
        QDir().mkpath(PARTITA_BINARY_DIR "/screenshots");
        QVERIFY(v.grab().save(PARTITA_BINARY_DIR "/screenshots/timeline-measure-offscreen.png"));
        QTest::keyClick(&v, Qt::Key_Escape);
        QCOMPARE(v.measuredRange().second, v.measuredRange().first);
    }

    void search_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("matches"); // kernels drawn in 100 us: 20 per rank, a third named each way
        QTest::newRow("one name") << "gemm 1" << 14;
        QTest::newRow("any case, all") << "GEMM" << 42;
        QTest::newRow("none") << "allreduce" << 0;
        QTest::newRow("cleared") << "" << 0;
    }
    void search()
    {
        QFETCH(QString, text);
        QFETCH(int, matches);
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath(QString("s-%1.partita").arg(QTest::currentDataTag()).replace(' ', '-')), run);
        TimelineView v;
        QVERIFY(showRun(v, store.get(), run));
        v.axis().show(2'000'000, 2'100'000);
        v.setSearch(text);
        v.viewport()->repaint();
        int kernels = 0;
        for (const auto& p : v.painted())
            kernels += p.item.kind == TraceKind::Kernel;
        // Kernels i = 200..220 fall in the window; names cycle "gemm 0/1/2".
        QVERIFY2(std::abs(v.matchesPainted() - matches * kernels / 42) <= 2,
                 qPrintable(QString("%1 of %2").arg(v.matchesPainted()).arg(kernels)));
        v.setColorBy(TimelineView::ColorBy::Layer);
        v.viewport()->repaint();
        QCOMPARE(v.colorBy(), TimelineView::ColorBy::Layer);
    }

    // Steps drawn as markers; a click on an event selects it and highlights
    // its layer on every rank; Esc or a click on nothing clears.
    void stepsLayersAndClicks()
    {
        auto store = TraceStore::open(m_dir.filePath("layers.partita").toStdString());
        QVERIFY(store);
        Trace t;
        for (int r = 0; r < 2; ++r) {
            t.tracks.push_back({r, 0, "compute"});
            t.tracks.push_back({r, 2, "steps"});
            for (int i = 0; i < 40; ++i) {
                TraceRecord rec{r, 0, 1'000'000 + i * 50'000, 40'000, TraceKind::Compute, "op " + std::to_string(i % 4)};
                rec.layer = i % 4;
                t.records.push_back(rec);
            }
            t.records.push_back({r, 2, 1'000'000, 1'000'000, TraceKind::Step, "ProfilerStep#0"});
            t.records.push_back({r, 2, 2'000'000, 1'000'000, TraceKind::Step, "ProfilerStep#1"});
        }
        RunInfo info;
        info.name = "layers";
        auto run = (*store)->storeTrace(t, info);
        QVERIFY(run);
        TimelineView v;
        QVERIFY(showRun(v, store->get(), *run, {1200, 400}));
        v.viewport()->repaint();
        QCOMPARE(v.stepMarks().size(), size_t(2)); // the lowest rank's
        QCOMPARE(v.stepMarks()[1].label, QStringLiteral("#1"));
        QCOMPARE(v.stepMarks()[1].start, int64_t(2'000'000));
        v.setHighlightLayer(2);
        v.viewport()->repaint();
        int expected = 0;
        for (const auto& p : v.painted())
            expected += p.item.layer == 2;
        QVERIFY(expected >= 2 * 10 - 2); // layer 2 on both ranks
        QCOMPARE(v.highlightedPainted(), expected);
        // Click on an event of layer 3.
        const TimelineView::Painted* target = nullptr;
        for (const auto& p : v.painted())
            if (p.item.layer == 3 && p.item.count == 1 && p.rect.width() > 4)
                target = &p;
        QVERIFY(target);
        QSignalSpy selected(&v, &TimelineView::eventSelected);
        QTest::mouseClick(v.viewport(), Qt::LeftButton, {}, target->rect.center().toPoint());
        QCOMPARE(selected.count(), 1);
        QVERIFY(selected.front().front().toString().contains("op 3"));
        QCOMPARE(v.highlightLayer(), 3);
        // A drag is not a click: the highlight stays.
        QTest::mousePress(v.viewport(), Qt::LeftButton, {}, QPoint(600, 60));
        QTest::mouseMove(v.viewport(), QPoint(700, 60));
        QTest::mouseRelease(v.viewport(), Qt::LeftButton, {}, QPoint(700, 60));
        QCOMPARE(v.highlightLayer(), 3);
        QTest::keyClick(&v, Qt::Key_Escape);
        QCOMPARE(v.highlightLayer(), -1);
    }

    // Clocks: rank 1's events written 1 ms late; with its correction
    // applied they line up with rank 0's, raw they do not, and its header
    // says the correction.
    void alignedClocks()
    {
        auto store = TraceStore::open(m_dir.filePath("clocks.partita").toStdString());
        QVERIFY(store);
        Trace t;
        for (int r = 0; r < 2; ++r) {
            t.tracks.push_back({r, 0, "compute"});
            for (int i = 0; i < 20; ++i)
                t.records.push_back({r, 0, 1'000'000 + r * 1'000'000 + i * 100'000, 50'000, TraceKind::Kernel, "gemm"});
        }
        RunInfo info;
        info.name = "skewed";
        auto run = (*store)->storeTrace(t, info);
        QVERIFY(run);
        TimelineView v;
        QVERIFY(showRun(v, store->get(), *run));
        std::map<int64_t, int32_t> rankOf;
        for (const StoredTrack& st : *(*store)->tracks(*run))
            rankOf[st.id] = st.rank;
        auto firstLeft = [&](int rank) { // where the rank's first event is drawn
            double left = 1e18;
            for (const auto& p : v.painted())
                if (p.item.count == 1 && rankOf[p.track] == rank)
                    left = std::min(left, p.rect.left());
            return left;
        };
        v.grab();
        QVERIFY(firstLeft(1) - firstLeft(0) > 50); // raw: 1 ms apart
        v.setClockOffsets({{1, 1'000'000}});
        v.axis().fit();
        v.grab();
        QVERIFY2(std::abs(firstLeft(1) - firstLeft(0)) < 1.5, qPrintable(QString("%1 vs %2").arg(firstLeft(1)).arg(firstLeft(0))));
        QCOMPARE(v.offsetOf(1), qint64(1'000'000));
        v.setAlignClocks(false);
        QCOMPARE(v.offsetOf(1), qint64(0));
        v.grab();
        QVERIFY(firstLeft(1) - firstLeft(0) > 50);
        v.setRun(nullptr, 0);
    }

    // Memory rows under a rank's tracks: one step of a real trace's CUDA
    // and CPU records; gone with the rank folded.
    void memoryRows()
    {
        auto store = TraceStore::open(m_dir.filePath("memory.partita").toStdString());
        QVERIFY(store);
        auto imp = importChromeTrace(**store, {test::testData("hta/memory-df_index_resolver-step3.json.gz").toStdString()});
        QVERIFY(imp);
        TimelineView v;
        QVERIFY(showRun(v, store->get(), imp->run_id, {1000, 2400}));
        v.waitForMemory();
        QCOMPARE(int(v.memory().series.size()), 2);
        v.grab();
        QCOMPARE(v.countersPainted(), 2);
        v.setRankCollapsed(1, true);
        v.grab();
        QCOMPARE(v.countersPainted(), 0);
        v.setRun(nullptr, 0);
        QVERIFY(v.memory().series.empty());
    }

    void emptyAndBrokenProjects()
    {
        TimelineView v;
        v.resize(600, 300);
        v.setRun(nullptr, 0);
        v.viewport()->repaint();
        QVERIFY(v.painted().empty());
        int64_t run = 0;
        auto store = makeStore(m_dir.filePath("e.partita"), run);
        QString error;
        connect(&v, &TimelineView::errorOccurred, [&](const QString& m) { error = m; });
        v.setRun(store.get(), run + 41); // no such run
        QVERIFY(error.contains("no such run"));
    }
};

QTEST_MAIN(TestTimelineView)
#include "tst_timelineview.moc"
