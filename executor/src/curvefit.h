#pragma once
// Inside the executor: efficiency curves fitted to measured samples, shared
// by the fit to a measured run (calibrate.cpp) and to a GPU sweep (gpusweep.cpp).
#include "partita/core/costmodel.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace partita::detail {

inline double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Half-octave bins of (size, work, seconds at peak efficiency, measured
// seconds) samples. A bin's efficiency is its ideal time over its measured
// time, summed: the bin's total time is reproduced exactly, preempted ops
// included (a median would drop them, and the step time with them).
struct BinSample
{
    double size = 0, ideal = 0, measured = 0;
};
inline EfficiencyCurve binnedCurve(const std::vector<BinSample>& samples)
{
    struct Bin
    {
        std::vector<double> sizes;
        double ideal = 0, measured = 0;
    };
    std::map<int, Bin> bins;
    for (const BinSample& s : samples) {
        if (!(s.size > 0) || !(s.ideal > 0) || !(s.measured > 0))
            continue;
        Bin& b = bins[int(std::floor(std::log2(s.size) * 2))];
        b.sizes.push_back(s.size);
        b.ideal += s.ideal;
        b.measured += s.measured;
    }
    EfficiencyCurve c;
    c.interpolate = true;
    for (auto& [key, b] : bins) // above 1: caches beat the DRAM figure
        c.points.emplace_back(median(b.sizes), std::min(16.0, b.ideal / b.measured));
    return c;
}

} // namespace partita::detail
