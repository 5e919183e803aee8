// Quantities with units in cluster files, and their formatting.
#include "partita/core/units.h"

#include <QTest>

using namespace partita;

class TestUnits : public QObject
{
    Q_OBJECT
private slots:
    void parse_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("kind");
        QTest::addColumn<double>("value");
        QTest::newRow("GB/s") << "600 GB/s" << int(Quantity::Bandwidth) << 600e9;
        QTest::newRow("Gb/s is bits") << "200 Gb/s" << int(Quantity::Bandwidth) << 25e9;
        QTest::newRow("Gbps") << "3200Gbps" << int(Quantity::Bandwidth) << 400e9;
        QTest::newRow("GiB/s") << "1 GiB/s" << int(Quantity::Bandwidth) << 1073741824.0;
        QTest::newRow("bare") << "12.5" << int(Quantity::Bandwidth) << 12.5;
        QTest::newRow("GiB") << "80 GiB" << int(Quantity::Bytes) << 85899345920.0;
        QTest::newRow("GB") << "141 GB" << int(Quantity::Bytes) << 141e9;
        QTest::newRow("TFLOP/s") << "989 TFLOP/s" << int(Quantity::Flops) << 989e12;
        QTest::newRow("TFLOPS") << " 19.5 TFLOPS " << int(Quantity::Flops) << 19.5e12;
        QTest::newRow("us") << "2.7 us" << int(Quantity::Seconds) << 2.7e-6;
        QTest::newRow("ms") << "3ms" << int(Quantity::Seconds) << 3e-3;
    }
    void parse()
    {
        QFETCH(QString, text);
        QFETCH(int, kind);
        QFETCH(double, value);
        auto v = parseQuantity(text.toStdString(), Quantity(kind));
        QVERIFY(v);
        QCOMPARE(*v, value);
    }
    void reject_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("why");
        QTest::newRow("no number") << "fast" << int(Quantity::Bandwidth) << "does not start with a number";
        QTest::newRow("negative") << "-3 GB/s" << int(Quantity::Bandwidth) << "non-negative";
        QTest::newRow("wrong unit kind") << "80 GiB" << int(Quantity::Bandwidth) << "unknown unit 'GiB'";
        QTest::newRow("infinite") << "inf GB" << int(Quantity::Bytes) << "finite";
    }
    void reject()
    {
        QFETCH(QString, text);
        QFETCH(int, kind);
        QFETCH(QString, why);
        std::string reason;
        QVERIFY(!parseQuantity(text.toStdString(), Quantity(kind), &reason));
        QVERIFY2(QString::fromStdString(reason).contains(why), reason.c_str());
    }
    void format_data()
    {
        QTest::addColumn<QString>("got");
        QTest::addColumn<QString>("expected");
        QTest::newRow("bytes") << QString::fromStdString(formatBytes(80 * 1073741824.0)) << "80 GiB";
        QTest::newRow("bandwidth") << QString::fromStdString(formatBandwidth(25e9)) << "25 GB/s";
        QTest::newRow("flops") << QString::fromStdString(formatFlops(989e12)) << "989 TFLOP/s";
        QTest::newRow("seconds") << QString::fromStdString(formatSeconds(2.7e-6)) << "2.70 us";
        QTest::newRow("thousands") << QString::fromStdString(withThousands(109482240)) << "109,482,240";
        QTest::newRow("count") << QString::fromStdString(formatCount(6.74e9)) << "6.74 B";
    }
    void format()
    {
        QFETCH(QString, got);
        QFETCH(QString, expected);
        QCOMPARE(got, expected);
    }
};

QTEST_APPLESS_MAIN(TestUnits)
#include "tst_units.moc"
