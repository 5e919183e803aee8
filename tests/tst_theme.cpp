// Light and dark: theme names, the application palette each theme sets (and
// System giving back the one the platform chose), charts styled from a
// palette, and a view that paints itself following a switch.
#include "theme.h"
#include "timelineview.h"

#include <QApplication>
#include <QChart>
#include <QLegend>
#include <QLineSeries>
#include <QStyle>
#include <QTemporaryDir>
#include <QTest>
#include <QValueAxis>

using namespace partita;

class TestTheme : public QObject
{
    Q_OBJECT
private slots:
    void names_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("known");
        QTest::addColumn<int>("theme");
        QTest::newRow("system") << "system" << true << int(Theme::System);
        QTest::newRow("light") << "light" << true << int(Theme::Light);
        QTest::newRow("Dark, any case") << "Dark" << true << int(Theme::Dark);
        QTest::newRow("unknown") << "solarized" << false << -1;
        QTest::newRow("empty") << "" << false << -1;
    }
    void names()
    {
        QFETCH(QString, name);
        QFETCH(bool, known);
        QFETCH(int, theme);
        Theme t = Theme::Light;
        QCOMPARE(themeFromName(name, t), known);
        if (known) {
            QCOMPARE(int(t), theme);
            QCOMPARE(themeName(t), name.toLower());
        } else {
            QCOMPARE(t, Theme::Light); // untouched
        }
    }

    void appliesToTheApplication_data()
    {
        QTest::addColumn<int>("theme");
        QTest::newRow("dark") << int(Theme::Dark);
        QTest::newRow("light") << int(Theme::Light);
        QTest::newRow("dark again") << int(Theme::Dark);
        QTest::newRow("system") << int(Theme::System);
    }
    void appliesToTheApplication()
    {
        QFETCH(int, theme);
        static const QPalette system = QApplication::palette(); // before any theme was applied
        applyTheme(Theme(theme));
        QCOMPARE(int(currentTheme()), theme);
        const QPalette now = QApplication::palette();
        if (Theme(theme) == Theme::System) {
            QCOMPARE(now.color(QPalette::Window), system.color(QPalette::Window));
            QCOMPARE(now.color(QPalette::Text), system.color(QPalette::Text));
            return;
        }
        QCOMPARE(isDark(now), Theme(theme) == Theme::Dark);
        // Text stays readable on its background.
        QVERIFY(std::abs(now.color(QPalette::Text).lightness() - now.color(QPalette::Base).lightness()) > 128);
        QVERIFY(std::abs(now.color(QPalette::WindowText).lightness() - now.color(QPalette::Window).lightness()) > 128);
        QCOMPARE(QApplication::style()->name().toLower(), QString("fusion"));
    }

    void chartsFollowThePalette_data()
    {
        QTest::addColumn<int>("theme");
        QTest::newRow("dark") << int(Theme::Dark);
        QTest::newRow("light") << int(Theme::Light);
    }
    void chartsFollowThePalette()
    {
        QFETCH(int, theme);
        applyTheme(Theme(theme));
        const QPalette p = QApplication::palette();
        QChart chart;
        auto* series = new QLineSeries;
        series->setColor(QColor(0x3b, 0x7d, 0xd8));
        chart.addSeries(series);
        auto* x = new QValueAxis;
        auto* y = new QValueAxis;
        chart.addAxis(x, Qt::AlignBottom);
        chart.addAxis(y, Qt::AlignLeft);
        styleChart(&chart, p);
        QCOMPARE(chart.backgroundBrush().color(), p.color(QPalette::Base));
        QCOMPARE(chart.titleBrush().color(), p.color(QPalette::Text));
        QCOMPARE(chart.legend()->labelColor(), p.color(QPalette::Text));
        for (QAbstractAxis* a : {static_cast<QAbstractAxis*>(x), static_cast<QAbstractAxis*>(y)})
            QCOMPARE(a->labelsColor(), p.color(QPalette::Text));
        QCOMPARE(series->color(), QColor(0x3b, 0x7d, 0xd8)); // the data keep their colours
        applyTheme(Theme::System);
    }

    // A view painted after a switch uses the new background.
    void viewsRepaintInTheNewPalette()
    {
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("t.partita").toStdString());
        QVERIFY(store);
        Trace t;
        t.tracks.push_back({0, 0, "compute"});
        t.records.push_back({0, 0, 1000, 500, TraceKind::Kernel, "k"});
        RunInfo info;
        info.name = "one";
        auto run = (*store)->storeTrace(t, info);
        QVERIFY(run);
        TimelineView v;
        v.resize(600, 300);
        v.setRun(store->get(), *run);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        for (Theme th : {Theme::Dark, Theme::Light}) {
            applyTheme(th);
            QCoreApplication::processEvents();
            const QImage img = v.grab().toImage();
            // Below the last track: nothing but the background.
            const QPoint empty = v.viewport()->mapTo(&v, QPoint(v.viewport()->width() - 10, v.viewport()->height() - 10));
            QCOMPARE(QColor(img.pixel(empty)), v.palette().color(QPalette::Base));
            QCOMPARE(isDark(v.palette()), th == Theme::Dark);
        }
        applyTheme(Theme::System);
    }
};

QTEST_MAIN(TestTheme)
#include "tst_theme.moc"
