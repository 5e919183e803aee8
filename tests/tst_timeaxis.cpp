// The timeline's time <-> pixel math: round trips, zoom that keeps the time
// under the cursor, pan and zoom limits, fit, and ruler ticks with units.
#include "timeaxis.h"

#include <QTest>

#include <cmath>

using namespace partita;

class TestTimeAxis : public QObject
{
    Q_OBJECT
private slots:
    void roundTrip_data()
    {
        QTest::addColumn<qint64>("begin");
        QTest::addColumn<qint64>("end");
        QTest::addColumn<double>("width");
        QTest::addColumn<double>("x");
        QTest::newRow("1 s in 1000 px") << qint64(0) << qint64(1'000'000'000) << 1000.0 << 250.0;
        QTest::newRow("far from zero") << qint64(1'700'000'000'000'000'000) << qint64(1'700'000'000'500'000'000) << 1920.0
                                       << 1000.0;
        QTest::newRow("tiny span") << qint64(100) << qint64(164) << 800.0 << 400.0;
    }
    void roundTrip()
    {
        QFETCH(qint64, begin);
        QFETCH(qint64, end);
        QFETCH(double, width);
        QFETCH(double, x);
        TimeAxis a;
        a.setRange(begin, end);
        a.setWidth(width);
        a.fit();
        QCOMPARE(a.start(), int64_t(begin));
        QVERIFY(std::abs(a.end() - end) <= 1 || double(end - begin) / width < 0.05);
        // Pixel -> ns -> pixel within a nanosecond's worth of pixels.
        QVERIFY(std::abs(a.x(a.t(x)) - x) <= 0.5 / a.nsPerPixel() + 1e-9);
        QVERIFY(a.showsWholeRange());
    }

    void zoomKeepsTheCursorTime_data()
    {
        QTest::addColumn<double>("x");
        QTest::addColumn<double>("factor");
        QTest::newRow("in at the left") << 100.0 << 4.0;
        QTest::newRow("in at the middle") << 500.0 << 1.5;
        QTest::newRow("in a lot") << 730.0 << 1e5;
    }
    void zoomKeepsTheCursorTime()
    {
        QFETCH(double, x);
        QFETCH(double, factor);
        TimeAxis a;
        a.setRange(0, 10'000'000'000);
        a.setWidth(1000);
        a.fit();
        const int64_t before = a.t(x);
        const double npp = a.nsPerPixel();
        a.zoomAt(x, factor);
        QVERIFY(std::abs(a.nsPerPixel() - npp / factor) < npp * 1e-9);
        QVERIFY2(std::abs(a.t(x) - before) <= 1, qPrintable(QString::number(a.t(x) - before)));
    }

    void limits()
    {
        TimeAxis a;
        a.setRange(0, 1'000'000);
        a.setWidth(1000);
        a.fit();
        a.zoomAt(500, 1e12);
        QCOMPARE(a.nsPerPixel(), 0.05); // 1/20 ns per pixel at most
        a.fit();
        a.zoomAt(500, 1e-12);
        QCOMPARE(a.nsPerPixel(), 4.0 * 1'000'000 / 1000); // the run in a quarter of the width at least
        a.fit();
        a.pan(1e9);
        QVERIFY(a.start() < 1'000'000); // part of the run stays in view
        a.pan(-1e9);
        QVERIFY(a.end() > 0);
        QVERIFY(!a.showsWholeRange() || a.nsPerPixel() >= 1000);
    }

    void ticks_data()
    {
        QTest::addColumn<qint64>("span");
        QTest::addColumn<QString>("second");
        QTest::newRow("a second") << qint64(1'000'000'000) << "100 ms";
        QTest::newRow("a millisecond") << qint64(1'000'000) << "100 us";
        QTest::newRow("3 microseconds") << qint64(3'000) << "500 ns";
        QTest::newRow("25 seconds") << qint64(25'000'000'000) << "2 s";
    }
    void ticks()
    {
        QFETCH(qint64, span);
        QFETCH(QString, second);
        TimeAxis a;
        a.setRange(5'000, 5'000 + span);
        a.setWidth(1000);
        a.fit();
        const auto t = a.ticks(80);
        QVERIFY(t.size() >= 2);
        QCOMPARE(QString::fromStdString(t[0].label), QStringLiteral("0"));
        QCOMPARE(QString::fromStdString(t[1].label), second);
        for (size_t i = 1; i < t.size(); ++i)
            QVERIFY(t[i].x - t[i - 1].x >= 80 - 1e-9);
    }

    void labels_data()
    {
        QTest::addColumn<double>("ns");
        QTest::addColumn<double>("step");
        QTest::addColumn<QString>("label");
        QTest::newRow("ns") << 250.0 << 50.0 << "250 ns";
        QTest::newRow("us with a decimal") << 1500.0 << 500.0 << "1.5 us";
        QTest::newRow("ms") << 12e6 << 2e6 << "12 ms";
        QTest::newRow("s with two decimals") << 3.25e9 << 0.05e9 << "3.25 s";
    }
    void labels()
    {
        QFETCH(double, ns);
        QFETCH(double, step);
        QFETCH(QString, label);
        QCOMPARE(QString::fromStdString(formatTickLabel(ns, step)), label);
    }
};

QTEST_APPLESS_MAIN(TestTimeAxis)
#include "tst_timeaxis.moc"
