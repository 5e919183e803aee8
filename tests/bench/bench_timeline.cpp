// Workbench timeline benchmark, as JSON on stdout: the real TimelineView,
// offscreen at 1920 x 1080, on a 10 M-event run (bench_tracestore's ingest
// project). First paint after choosing the run, then frames at every zoom
// level (random windows) and a pan sequence at the densest one. Targets
// (issue 7): first paint < 1 s, frames < 16 ms.
// Usage: bench_timeline PROJECT.partita
#include "timelineview.h"

#include "partita/profiler/tracestore.h"

#include <QApplication>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

using nlohmann::json;
using namespace partita;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Seconds from choosing the run to its first painted frame; `items` gets what that frame drew.
double measureFirstPaint(TimelineView& v, const TraceStore* store, int64_t run, size_t& items)
{
    const double p0 = now();
    v.setRun(store, run);
    v.viewport()->repaint();
    const double firstPaint = now() - p0;
    items = v.painted().size();
    return firstPaint;
}

// Ten frames at random windows on every zoom level, from the whole run down to 10 us; raises `worst` to the
// slowest frame.
json measureZoomLevels(TimelineView& v, int64_t b, double span, double& worst)
{
    std::mt19937_64 rng(5);
    json levels = json::array();
    for (double window = span; window >= 10'000; window /= 4) {
        std::vector<double> frames;
        size_t items = 0;
        for (int f = 0; f < 10; ++f) {
            const int64_t t0 = b + int64_t(double(rng() % 1000000) / 1e6 * std::max(0.0, span - window));
            v.axis().show(t0, t0 + int64_t(window));
            const double f0 = now();
            v.viewport()->repaint();
            frames.push_back(now() - f0);
            items += v.painted().size();
        }
        std::sort(frames.begin(), frames.end());
        worst = std::max(worst, frames.back());
        levels.push_back({{"window_s", window * 1e-9},
                          {"median_frame_ms", frames[frames.size() / 2] * 1e3},
                          {"worst_frame_ms", frames.back() * 1e3},
                          {"items_per_frame", double(items) / 10}});
    }
    return levels;
}

// The window (ns) of the zoom level where the most items are drawn. (`levels` is not const, as in the original
// inline code: with no level, non-const operator[] adds a null one and get<double>() throws.)
double densestWindow(json& levels)
{
    size_t bestLevel = 0;
    for (size_t i = 0; i < levels.size(); ++i)
        if (levels[i]["items_per_frame"].get<double>() > levels[bestLevel]["items_per_frame"].get<double>())
            bestLevel = i;
    return levels[bestLevel]["window_s"].get<double>() * 1e9;
}

// Thirty frames panning by 5 % of the width from a third into the run; the frame times, sorted.
std::vector<double> measurePan(TimelineView& v, int64_t b, double span, double window)
{
    v.axis().show(b + int64_t(span / 3), b + int64_t(span / 3 + window));
    std::vector<double> pans;
    for (int i = 0; i < 30; ++i) {
        v.axis().pan(v.axis().width() * 0.05);
        const double f0 = now();
        v.viewport()->repaint();
        pans.push_back(now() - f0);
    }
    std::sort(pans.begin(), pans.end());
    return pans;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::cerr << "usage: bench_timeline PROJECT.partita\n";
        return 2;
    }
    qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    const double o0 = now();
    auto store = TraceStore::open(argv[1]);
    if (!store) {
        std::cerr << store.error().str() << "\n";
        return 1;
    }
    auto runs = (*store)->runs();
    if (!runs || runs->empty()) {
        std::cerr << "no run\n";
        return 1;
    }
    const double openS = now() - o0;
    const RunInfo run = runs->back();
    TimelineView v;
    v.resize(1920, 1080);
    v.show();
    QApplication::processEvents();
    size_t firstItems = 0;
    const double firstPaint = measureFirstPaint(v, store->get(), run.id, firstItems);

    const int64_t b = v.axis().rangeBegin(), e = v.axis().rangeEnd();
    const double span = double(e - b);
    double worst = 0;
    json levels = measureZoomLevels(v, b, span, worst);
    // Panning at the zoom where the most items are drawn.
    const double window = densestWindow(levels);
    const std::vector<double> pans = measurePan(v, b, span, window);
    worst = std::max(worst, pans.back());
    json out{{"events", run.events},
             {"tracks", (*store)->tracks(run.id)->size()},
             {"window_px", {1920, 1080}},
             {"open_project_s", openS},
             {"first_paint_s", firstPaint},
             {"first_paint_items", firstItems},
             {"levels", levels},
             {"pan_at_densest", {{"window_s", window * 1e-9},
                                 {"median_frame_ms", pans[pans.size() / 2] * 1e3},
                                 {"worst_frame_ms", pans.back() * 1e3}}},
             {"worst_frame_ms", worst * 1e3},
             {"targets", {{"first_paint_s", 1.0}, {"frame_ms", 16.0}}},
             {"first_paint_met", firstPaint < 1.0},
             {"frames_met", worst * 1e3 < 16.0}};
    std::cout << out.dump(2) << "\n";
    return 0;
}
