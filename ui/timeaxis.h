#pragma once
// The timeline's time <-> pixel mapping: which nanoseconds the view shows,
// zoom at a point (the time under it stays put), pan, fit, and the ruler's
// ticks at round steps (1, 2, 5 x 10^k ns) labelled with units. Plain C++,
// no Qt: tested on its own.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace partita {

class TimeAxis
{
public:
    // The run's span; the view may go a little past it, never far.
    void setRange(int64_t begin, int64_t end);
    void setWidth(double pixels);
    void fit(); // the whole span in the width

    int64_t rangeBegin() const { return m_begin; }
    int64_t rangeEnd() const { return m_end; }
    double width() const { return m_width; }
    double nsPerPixel() const { return m_nsPerPx; }
    // The view's first and last ns. Positions are kept relative to the
    // range's begin, so epoch timestamps (1.7e18 ns) keep their nanoseconds.
    int64_t start() const { return m_begin + int64_t(std::llround(m_startRel)); }
    int64_t end() const { return m_begin + int64_t(std::llround(m_startRel + m_nsPerPx * m_width)); }
    bool showsWholeRange() const;

    double x(int64_t t) const { return (double(t - m_begin) - m_startRel) / m_nsPerPx; }
    int64_t t(double x) const { return m_begin + int64_t(std::llround(m_startRel + x * m_nsPerPx)); }

    // factor > 1 zooms in. The time under `x` stays under `x`, unless the
    // zoom limits (1/20 ns per pixel; the span shown in a quarter of the
    // width) or the range clamp move it.
    void zoomAt(double x, double factor);
    // Moves the view by `pixels` (positive: later times come into view).
    void pan(double pixels);
    // Shows [t0, t1].
    void show(int64_t t0, int64_t t1);

    struct Tick
    {
        int64_t t = 0;      // ns, absolute
        double x = 0;       // pixels
        std::string label;  // relative to the range's begin, with units
    };
    // Ticks at least `minSpacing` pixels apart.
    std::vector<Tick> ticks(double minSpacing = 80) const;
    // The step between ticks, in ns.
    double tickStep(double minSpacing = 80) const;

private:
    void clamp();
    int64_t m_begin = 0, m_end = 1;
    double m_width = 1000;
    double m_startRel = 0, m_nsPerPx = 1; // the view's start, ns after m_begin
};

// "0", "250 ns", "1.5 us", "12 ms", "3.25 s": a duration for the ruler, with
// as many decimals as `step` needs.
std::string formatTickLabel(double ns, double step);

} // namespace partita
