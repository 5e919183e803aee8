#include "theme.h"

#include <QAbstractAxis>
#include <QApplication>
#include <QChart>
#include <QLegend>
#include <QStyle>
#include <QStyleFactory>

namespace partita {

namespace {

struct SystemLook
{
    bool saved = false;
    QString style;
    QPalette palette;
};

SystemLook& systemLook()
{
    static SystemLook s;
    return s;
}

Theme& current()
{
    static Theme t = Theme::System;
    return t;
}

// Fusion's dark palette: the window and base greys of common dark desktop
// themes, with a blue highlight and links readable on them.
QPalette darkPalette()
{
    QPalette p;
    const QColor window(0x2d, 0x2d, 0x30), base(0x1e, 0x1e, 0x1e), alt(0x33, 0x33, 0x37), text(0xe6, 0xe6, 0xe6),
        disabled(0x80, 0x80, 0x80), highlight(0x2f, 0x6f, 0xc0);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, alt);
    p.setColor(QPalette::ToolTipBase, alt);
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, disabled);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, window);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, Qt::white);
    p.setColor(QPalette::Light, QColor(0x50, 0x50, 0x55));
    p.setColor(QPalette::Midlight, QColor(0x40, 0x40, 0x44));
    p.setColor(QPalette::Mid, QColor(0x48, 0x48, 0x4c));
    p.setColor(QPalette::Dark, QColor(0x18, 0x18, 0x1a));
    p.setColor(QPalette::Shadow, Qt::black);
    p.setColor(QPalette::Highlight, highlight);
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, QColor(0x6c, 0xb4, 0xff));
    p.setColor(QPalette::LinkVisited, QColor(0xb0, 0x8c, 0xff));
    for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText, QPalette::HighlightedText})
        p.setColor(QPalette::Disabled, role, disabled);
    return p;
}

} // namespace

QString themeName(Theme t)
{
    switch (t) {
    case Theme::Light: return QStringLiteral("light");
    case Theme::Dark: return QStringLiteral("dark");
    case Theme::System: break;
    }
    return QStringLiteral("system");
}

bool themeFromName(const QString& name, Theme& t)
{
    for (Theme c : {Theme::System, Theme::Light, Theme::Dark})
        if (name.compare(themeName(c), Qt::CaseInsensitive) == 0) {
            t = c;
            return true;
        }
    return false;
}

void applyTheme(Theme t)
{
    SystemLook& sys = systemLook();
    if (!sys.saved) {
        sys.saved = true;
        sys.style = QApplication::style()->name();
        sys.palette = QApplication::palette();
    }
    current() = t;
    if (t == Theme::System) {
        QApplication::setStyle(QStyleFactory::create(sys.style));
        QApplication::setPalette(sys.palette);
        return;
    }
    QApplication::setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
    QApplication::setPalette(t == Theme::Dark ? darkPalette() : QApplication::style()->standardPalette());
}

Theme currentTheme() { return current(); }

bool isDark(const QPalette& p) { return p.color(QPalette::Window).lightness() < 128; }

void styleChart(QChart* chart, const QPalette& p)
{
    if (!chart)
        return;
    chart->setBackgroundBrush(p.color(QPalette::Base));
    chart->setBackgroundPen(QPen(p.color(QPalette::Mid)));
    chart->setTitleBrush(p.color(QPalette::Text));
    chart->legend()->setLabelColor(p.color(QPalette::Text));
    QColor grid = p.color(QPalette::Mid);
    for (QAbstractAxis* a : chart->axes()) {
        a->setLabelsColor(p.color(QPalette::Text));
        a->setTitleBrush(p.color(QPalette::Text));
        a->setLinePenColor(p.color(QPalette::Mid));
        a->setGridLineColor(grid);
        a->setMinorGridLineColor(grid);
    }
}

} // namespace partita
