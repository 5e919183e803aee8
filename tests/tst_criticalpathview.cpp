// The critical-path panel: its table checked by QAbstractItemModelTester,
// its windows and segments from a synthesized 4-rank run with one slow rank
// (tests/synthranks.h), the path drawn on the timeline (also on a folded
// rank's header), a double-click framing a segment, nothing computed while
// the panel is hidden, and a clear word on failure.
#include "criticalpathview.h"
#include "synthranks.h"
#include "timelineview.h"

#include <QAbstractItemModelTester>
#include <QComboBox>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

namespace {

int64_t synthesized(const std::string& path, int steps)
{
    auto store = TraceStore::open(path);
    if (!store)
        qFatal("%s", store.error().str().c_str());
    test::SynthOptions o;
    o.ranks = 4;
    o.slow_rank = 2;
    o.slow_kernel = "ampere_sgemm_64x64_nt";
    o.slow_layer = 1;
    o.slow_factor = 2.0;
    auto r = test::synthesizeRanks(**store, test::dataParallelPattern(3, steps), o);
    if (!r)
        qFatal("%s", r.error().str().c_str());
    return r->run_id;
}

} // namespace

class TestCriticalPathView : public QObject
{
    Q_OBJECT
private slots:
    void windowsAndSegments_data()
    {
        QTest::addColumn<int>("window");
        QTest::newRow("the first step") << 0;
        QTest::newRow("the last step") << 2;
    }
    void windowsAndSegments()
    {
        QFETCH(int, window);
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        const int64_t run = synthesized(path, 3);
        CriticalPathView view;
        QAbstractItemModelTester tester(view.model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QSignalSpy drawn(&view, &CriticalPathView::pathChanged);
        view.show();
        view.setRun(path, run);
        view.waitForReport();
        QCOMPARE(view.windows()->count(), 3);
        if (window != 0) {
            view.showWindow(window);
            view.waitForReport();
        }
        QCOMPARE(view.model()->path().step, qint64(window));
        QVERIFY(view.model()->rowCount() > 0);
        bool slow = false;
        for (int r = 0; r < view.model()->rowCount(); ++r)
            slow = slow || (view.model()->index(r, CriticalPathModel::Rank).data().toInt() == 2 &&
                            view.model()->index(r, CriticalPathModel::Event).data().toString() == "ampere_sgemm_64x64_nt" &&
                            view.model()->index(r, CriticalPathModel::Layer).data().toString() == "1");
        QVERIFY(slow);
        QVERIFY(view.model()->path().by_rank.at(2) > 0);
        QVERIFY2(view.summary().contains("ProfilerStep#" + QString::number(window)), qPrintable(view.summary()));
        QVERIFY(!drawn.isEmpty());
        const auto marks = drawn.last().at(0).value<std::vector<TimelineView::PathMark>>();
        QCOMPARE(int(marks.size()), view.model()->rowCount());

        // On the timeline: bands on the tracks, and on a folded rank's header.
        auto store = TraceStore::open(path);
        QVERIFY(store);
        TimelineView timeline;
        timeline.resize(1000, 700);
        timeline.setRun(store->get(), run);
        timeline.setCriticalPath(marks);
        timeline.showRange(2, marks.front().t0, marks.back().t1);
        timeline.grab();
        QVERIFY(timeline.pathMarksPainted() > 0);
        const int open = timeline.pathMarksPainted();
        timeline.setRankCollapsed(2, true);
        timeline.grab();
        QVERIFY(timeline.pathMarksPainted() > 0);
        timeline.setCriticalPath({});
        timeline.grab();
        QCOMPARE(timeline.pathMarksPainted(), 0);
        QVERIFY(open > 0);
        timeline.setRun(nullptr, 0);

        // A double-click frames the segment on its rank.
        QSignalSpy frame(&view, &CriticalPathView::frameRequested);
        view.frameRow(0);
        QCOMPARE(frame.count(), 1);
        const PathSegment& s = view.model()->segment(0);
        QCOMPARE(frame.first().at(0).toInt(), s.rank);
        QCOMPARE(frame.first().at(1).toLongLong(), qint64(s.from_ns));
        QCOMPARE(frame.first().at(2).toLongLong(), qint64(s.to_ns));
    }

    void waitsUntilShown()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        const int64_t run = synthesized(path, 1);
        CriticalPathView view;
        view.setRun(path, run);
        view.waitForReport();
        QCOMPARE(view.model()->rowCount(), 0);
        QVERIFY(view.windows()->count() == 0);
        view.show();
        view.waitForReport();
        QVERIFY(view.model()->rowCount() > 0);
        QCOMPARE(view.windows()->count(), 1);
        QVERIFY(!view.windows()->isEnabled()); // nothing to choose among
    }

    void saysWhatFailed()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        synthesized(path, 1);
        CriticalPathView view;
        view.show();
        QSignalSpy errors(&view, &CriticalPathView::errorOccurred);
        view.setRun(path, 99);
        view.waitForReport();
        QCOMPARE(errors.count(), 1);
        QCOMPARE(view.model()->rowCount(), 0);
    }
};

QTEST_MAIN(TestCriticalPathView)
#include "tst_criticalpathview.moc"
