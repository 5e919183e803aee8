// The auto-search dialog: a real search off the GUI thread with its
// best-so-far chart and top-K table (QAbstractItemModelTester), applying a
// candidate, stopping early, and the GUI thread kept turning meanwhile.
#include "searchdialog.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTableView>
#include <QTest>

using namespace partita;

namespace {
Model gpt2() { return *loadModel(PARTITA_TEST_DATA "/hf/gpt2.json"); }
Strategy ddp(const Model& m, const Cluster& c)
{
    PresetOptions o;
    o.global_batch = 64;
    return *strategyPreset("ddp", m, c, o);
}
} // namespace

class TestSearchDialog : public QObject
{
    Q_OBJECT
private slots:
    void searchesAndApplies()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        SearchDialog d(m, c, ddp(m, c));
        QAbstractItemModelTester tester(d.candidates(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        d.setBudget(2);
        QSignalSpy finished(&d, &SearchDialog::searchFinished);
        // How long the GUI thread stalls meanwhile is bench_gui's measure, not a unit test's.
        QVERIFY(d.start());
        QVERIFY(!d.start()); // one search at a time
        QVERIFY(finished.wait(60000));
        QVERIFY2(d.result().has_value(), qPrintable(d.error()));
        QVERIFY(d.result()->evaluated > 0);
        QVERIFY(d.candidates()->rowCount() >= 1);
        QVERIFY(d.progressPoints() >= 1);
        // The best is no worse than data parallelism, which the search tried as a preset.
        auto base = simulate(m, c, ddp(m, c));
        QVERIFY(d.result()->best.step_time <= base->step_time * 1.0001);
        QSignalSpy applied(&d, &SearchDialog::applyStrategy);
        emit d.table()->doubleClicked(d.candidates()->index(0, 0));
        QCOMPARE(applied.count(), 1);
        QCOMPARE(applied.front().front().value<Strategy>(), d.candidates()->candidate(0)->strategy);
    }

    void stopsEarly()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        SearchDialog d(m, c, ddp(m, c));
        d.setBudget(600);
        QSignalSpy finished(&d, &SearchDialog::searchFinished);
        QVERIFY(d.start());
        QTest::qWait(300);
        d.cancel();
        QVERIFY(finished.wait(30000));
        QVERIFY(d.result().has_value());
        QVERIFY(d.result()->cancelled);
        QVERIFY(d.result()->best.step_time > 0); // the best so far
    }
};

QTEST_MAIN(TestSearchDialog)
#include "tst_searchdialog.moc"
