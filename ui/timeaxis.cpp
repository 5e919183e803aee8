#include "timeaxis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace partita {

void TimeAxis::setRange(int64_t begin, int64_t end)
{
    m_begin = begin;
    m_end = std::max(end, begin + 1);
    clamp();
}

void TimeAxis::setWidth(double pixels)
{
    m_width = std::max(1.0, pixels);
    clamp();
}

void TimeAxis::fit()
{
    const double span = double(m_end - m_begin);
    m_nsPerPx = span / m_width;
    m_startRel = 0;
    clamp();
}

void TimeAxis::zoomAt(double px, double factor)
{
    if (!(factor > 0))
        return;
    const double anchor = m_startRel + px * m_nsPerPx;
    m_nsPerPx /= factor;
    clamp();
    m_startRel = anchor - px * m_nsPerPx;
    clamp();
}

void TimeAxis::pan(double pixels)
{
    m_startRel += pixels * m_nsPerPx;
    clamp();
}

void TimeAxis::show(int64_t t0, int64_t t1)
{
    if (t1 <= t0)
        return;
    m_nsPerPx = double(t1 - t0) / m_width;
    m_startRel = double(t0 - m_begin);
    clamp();
}

bool TimeAxis::showsWholeRange() const
{
    return m_startRel <= 0.5 && m_startRel + m_nsPerPx * m_width >= double(m_end - m_begin) - 0.5;
}

void TimeAxis::clamp()
{
    const double span = double(m_end - m_begin);
    // At most the span in a quarter of the width; at least 1/20 ns per pixel.
    m_nsPerPx = std::clamp(m_nsPerPx, 0.05, std::max(0.05, 4 * span / m_width));
    const double shown = m_nsPerPx * m_width;
    // Keep part of the run in view: the view may start a tenth of a view
    // before the run and end a tenth after it.
    const double lo = -0.1 * shown;
    const double hi = span + 0.1 * shown - shown;
    m_startRel = hi < lo ? (lo + hi) / 2 : std::clamp(m_startRel, lo, hi);
}

double TimeAxis::tickStep(double minSpacing) const
{
    const double want = std::max(1e-9, minSpacing * m_nsPerPx);
    double p = std::pow(10.0, std::floor(std::log10(want)));
    for (;;) {
        for (double m : {1.0, 2.0, 5.0})
            if (m * p >= want)
                return std::max(1.0, m * p);
        p *= 10;
    }
}

std::vector<TimeAxis::Tick> TimeAxis::ticks(double minSpacing) const
{
    std::vector<Tick> out;
    const double step = tickStep(minSpacing);
    // Ticks at whole steps from the range's begin.
    const double viewEnd = m_startRel + m_nsPerPx * m_width;
    for (double rel = std::ceil(m_startRel / step) * step; rel <= viewEnd && out.size() < 1000; rel += step) {
        const int64_t tt = m_begin + int64_t(std::llround(rel));
        out.push_back({tt, (rel - m_startRel) / m_nsPerPx, formatTickLabel(rel, step)});
    }
    return out;
}

std::string formatTickLabel(double ns, double step)
{
    if (std::abs(ns) < 0.5)
        return "0";
    struct Unit
    {
        double scale;
        const char* name;
    };
    const Unit units[] = {{1e9, "s"}, {1e6, "ms"}, {1e3, "us"}, {1, "ns"}};
    const Unit* u = &units[3];
    for (const Unit& c : units)
        if (std::abs(ns) >= c.scale) {
            u = &c;
            break;
        }
    // Enough decimals that consecutive ticks differ.
    int decimals = 0;
    for (double s = step / u->scale; s < 0.999 && decimals < 6; s *= 10)
        ++decimals;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f %s", decimals, ns / u->scale, u->name);
    return buf;
}

} // namespace partita
