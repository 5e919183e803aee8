// The stragglers panel: its table checked by QAbstractItemModelTester, its
// rows from a synthesized 8-rank run with one slow rank (tests/synthranks.h),
// a double-click framing the late rank's stretch on the timeline, and a
// clear word where there is nothing to say.
#include "stragglersview.h"
#include "synthranks.h"
#include "timelineview.h"

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

using namespace partita;

namespace {

// A project at `path` with one synthesized run; its id.
int64_t synthesized(const std::string& path, const test::SynthOptions& o, int layers, int steps)
{
    auto store = TraceStore::open(path);
    if (!store)
        qFatal("%s", store.error().str().c_str());
    auto r = test::synthesizeRanks(**store, test::dataParallelPattern(layers, steps), o);
    if (!r)
        qFatal("%s", r.error().str().c_str());
    return r->run_id;
}

} // namespace

class TestStragglersView : public QObject
{
    Q_OBJECT
private slots:
    void columns_data()
    {
        QTest::addColumn<int>("column");
        QTest::addColumn<QString>("value");
        QTest::newRow("step") << int(StragglersModel::Step) << "0";
        QTest::newRow("late rank") << int(StragglersModel::LateRank) << "3";
        QTest::newRow("worst collective") << int(StragglersModel::WorstCollective) << "ncclDevKernel_AllReduce_Sum_f32_RING_LL";
        QTest::newRow("cause") << int(StragglersModel::Cause) << "ampere_sgemm_64x64_nt";
        QTest::newRow("layer") << int(StragglersModel::Layer) << "1";
        QTest::newRow("by") << int(StragglersModel::Excess) << "+240 us";
    }
    void columns()
    {
        QFETCH(int, column);
        QFETCH(QString, value);
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        test::SynthOptions o;
        o.ranks = 8;
        o.slow_rank = 3;
        o.slow_kernel = "ampere_sgemm_64x64_nt";
        o.slow_layer = 1;
        o.slow_factor = 2.0; // 240 us longer
        const int64_t run = synthesized(path, o, 3, 2);
        StragglersView view;
        QAbstractItemModelTester tester(view.model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QSignalSpy clocks(&view, &StragglersView::clocksFound);
        view.setRun(path, run);
        view.waitForReport();
        QCOMPARE(clocks.count(), 1); // the timeline aligns the ranks with them
        QCOMPARE(int(clocks.first().at(0).value<std::map<int32_t, int64_t>>().size()), 8);
        QCOMPARE(view.model()->rowCount(), 2);
        QCOMPARE(view.model()->index(0, column).data().toString(), value);
        QVERIFY2(view.summary().contains("8 ranks"), qPrintable(view.summary()));
        // A double-click frames the late rank's stretch: asked for, and the
        // timeline shows it.
        QSignalSpy spy(&view, &StragglersView::frameRequested);
        view.frameRow(0);
        QCOMPARE(spy.count(), 1);
        const auto args = spy.takeFirst();
        QCOMPARE(args[0].toInt(), 3);
        const StepStraggler& s = view.model()->report().steps.front();
        QVERIFY(args[1].toLongLong() < args[2].toLongLong());
        QCOMPARE(args[2].toLongLong(), qint64(s.collective_end_ns));
        auto store = TraceStore::open(path);
        QVERIFY(store);
        TimelineView timeline;
        timeline.resize(900, 500);
        timeline.setRun(store->get(), run);
        timeline.showRange(3, args[1].toLongLong(), args[2].toLongLong());
        QVERIFY(timeline.measuredRange() == std::make_pair(int64_t(args[1].toLongLong()), int64_t(args[2].toLongLong())));
        QVERIFY(timeline.axis().start() <= args[1].toLongLong() && timeline.axis().end() >= args[2].toLongLong());
        timeline.setRun(nullptr, 0);
    }

    void saysWhenThereIsNothing()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        test::SynthOptions o;
        o.ranks = 1;
        const int64_t run = synthesized(path, o, 2, 1);
        StragglersView view;
        view.setRun(path, run);
        view.waitForReport();
        QCOMPARE(view.model()->rowCount(), 0);
        QVERIFY2(view.summary().contains("nobody to wait for"), qPrintable(view.summary()));
        QSignalSpy errors(&view, &StragglersView::errorOccurred);
        view.setRun(path, 99);
        view.waitForReport();
        QCOMPARE(errors.count(), 1);
    }
};

QTEST_MAIN(TestStragglersView)
#include "tst_stragglersview.moc"
