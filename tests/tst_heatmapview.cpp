// The heat-map panel: a synthesized 8-rank run with one slow rank
// (tests/synthranks.h) coloured per metric (the slow rank red in compute,
// blue in exposed communication; an even step time pale), a cell's
// tooltip, a click framing the rank's step, nothing computed while the
// panel is hidden, and a clear word on failure.
#include "heatmapview.h"
#include "synthranks.h"

#include <QComboBox>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

namespace {

constexpr int kSlow = 5;

int64_t synthesized(const std::string& path)
{
    auto store = TraceStore::open(path);
    if (!store)
        qFatal("%s", store.error().str().c_str());
    test::SynthOptions o;
    o.ranks = 8;
    o.slow_rank = kSlow;
    o.slow_kernel = "ampere_sgemm_64x64_nt";
    o.slow_factor = 1.5;
    o.jitter = 0.005;
    auto r = test::synthesizeRanks(**store, test::dataParallelPattern(4, 3), o);
    if (!r)
        qFatal("%s", r.error().str().c_str());
    return r->run_id;
}

// How red (positive) or blue (negative) a colour is.
int warmth(const QColor& c) { return c.red() - c.blue(); } // full red: 175, full blue: -129

} // namespace

class TestHeatMapView : public QObject
{
    Q_OBJECT
private slots:
    void colours_data()
    {
        QTest::addColumn<int>("metric");
        QTest::addColumn<int>("slowSign"); // the slow rank's cells: +1 red, -1 blue, 0 pale like the rest
        QTest::newRow("step time: even") << int(HeatMetric::Step) << 0;
        QTest::newRow("compute: the slow rank red") << int(HeatMetric::Compute) << 1;
        QTest::newRow("exposed communication: the slow rank blue") << int(HeatMetric::ExposedComm) << -1;
    }
    void colours()
    {
        QFETCH(int, metric);
        QFETCH(int, slowSign);
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        const int64_t run = synthesized(path);
        HeatMapView view;
        view.resize(700, 400);
        view.show();
        view.setRun(path, run);
        view.waitForReport();
        view.setMetric(HeatMetric(metric));
        const HeatMapChart* chart = view.chart();
        QCOMPARE(int(chart->map().rows.size()), 8);
        QCOMPARE(chart->map().columns, int64_t(3));
        QCOMPARE(view.metrics()->currentData().toInt(), metric);
        for (int64_t c = 0; c < 3; ++c) {
            const int slow = warmth(chart->cellColor(kSlow, c));
            for (int r = 0; r < 8; ++r) {
                if (r == kSlow)
                    continue;
                const int other = warmth(chart->cellColor(r, c));
                if (slowSign > 0)
                    QVERIFY2(slow > 150 && other < slow / 2, qPrintable(QString("step %1 rank %2: %3 vs %4").arg(c).arg(r).arg(slow).arg(other)));
                else if (slowSign < 0)
                    QVERIFY2(slow < -100 && other > slow / 2, qPrintable(QString("step %1 rank %2: %3 vs %4").arg(c).arg(r).arg(slow).arg(other)));
                else
                    QVERIFY2(std::abs(other) < 120 && std::abs(slow) < 120, qPrintable(QString("step %1 rank %2").arg(c).arg(r)));
            }
        }
        if (slowSign > 0)
            QVERIFY2(view.summary().contains(QString("rank %1 in step").arg(kSlow)), qPrintable(view.summary()));
        if (slowSign == 0)
            QVERIFY2(view.summary().contains("No cell's step time is over 1 %"), qPrintable(view.summary()));
        // What a user sees (the grid grabbed; kept when PARTITA_SHOTS names a folder).
        QTest::qWait(20); // the layout takes the summary's new height
        const QImage shot = view.grab().toImage();
        QVERIFY(!shot.isNull());
        if (const QString out = qEnvironmentVariable("PARTITA_SHOTS"); !out.isEmpty())
            shot.save(out + QString("/heatmap-%1.png").arg(metric));
    }

    void clickFrames()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        const int64_t run = synthesized(path);
        HeatMapView view;
        view.resize(700, 400);
        view.show();
        view.setRun(path, run);
        view.waitForReport();
        QSignalSpy framed(&view, &HeatMapView::frameRequested);
        HeatMapChart* chart = view.chart();
        const QRect cell = chart->cellRect(kSlow, 1);
        QCOMPARE(chart->cellAt(cell.center()), std::make_pair(kSlow, int64_t(1)));
        QTest::mouseClick(chart, Qt::LeftButton, {}, cell.center());
        QCOMPARE(framed.count(), 1);
        const HeatCell& expected = chart->map().rows[kSlow].cells[1];
        QCOMPARE(framed.front().at(0).toInt(), kSlow);
        QCOMPARE(framed.front().at(1).toLongLong(), expected.start_ns);
        QCOMPARE(framed.front().at(2).toLongLong(), expected.end_ns);
        QVERIFY(expected.step_ns() > 0);
        const QString tip = chart->describe(kSlow, 1);
        QVERIFY2(tip.startsWith(QString("Rank %1, step 1").arg(kSlow)), qPrintable(tip));
        QVERIFY2(tip.contains("Compute: ") && tip.contains("Idle: ") && tip.contains("median"), qPrintable(tip));
        // Outside the grid: nothing.
        QCOMPARE(chart->cellAt(QPoint(2, 2)).first, -1);
        QTest::mouseClick(chart, Qt::LeftButton, {}, QPoint(2, 2));
        QCOMPARE(framed.count(), 1);
    }

    void onlyWhileShown()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        const int64_t run = synthesized(path);
        HeatMapView view;
        view.setRun(path, run);
        QVERIFY(!view.busy());
        QVERIFY(view.chart()->map().rows.empty());
        view.show();
        view.waitForReport();
        QCOMPARE(int(view.chart()->map().rows.size()), 8);
    }

    void failure()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        synthesized(path);
        HeatMapView view;
        QSignalSpy failed(&view, &HeatMapView::errorOccurred);
        view.show();
        view.setRun(path, 99);
        view.waitForReport();
        QCOMPARE(failed.count(), 1);
        QVERIFY2(failed.front().at(0).toString().contains("run 99"), qPrintable(failed.front().at(0).toString()));
        QVERIFY(view.chart()->map().rows.empty());
    }
};

QTEST_MAIN(TestHeatMapView)
#include "tst_heatmapview.moc"
