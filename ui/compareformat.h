#pragma once
// Figures as the Compare view and its tables write them (compareview.cpp,
// comparemodels.cpp): milliseconds, percentages, B against A.

#include <QColor>
#include <QString>

#include <cstdint>
#include <cstdlib>

namespace partita::compare {

inline QString ms(int64_t ns) { return QString::number(double(ns) / 1e6, 'f', std::llabs(ns) < 10'000'000 ? 3 : 1); }
inline QString pct(double p) { return QString::number(p, 'f', 1) + " %"; }
inline QString signedPct(int64_t a, int64_t b)
{
    if (a == 0)
        return b == 0 ? QStringLiteral("0 %") : QStringLiteral("new");
    const double d = 100.0 * double(b - a) / double(a);
    return (d > 0 ? "+" : "") + QString::number(d, 'f', 1) + " %";
}
inline QColor deltaColor(int64_t a, int64_t b)
{
    if (b > a)
        return QColor(0xc6, 0x28, 0x28); // slower
    if (b < a)
        return QColor(0x2e, 0x7d, 0x32);
    return {};
}

} // namespace partita::compare
