// `partita-cli trace heatmap`: profiler/heatmap.h in text or JSON.
#include "trace.h"

#include "common.h"

#include "partita/core/units.h"
#include "partita/core/mesh.h"
#include "partita/profiler/heatmap.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

namespace partita::cli {

using nlohmann::json;

namespace {

double sec(int64_t ns) { return double(ns) * 1e-9; }
std::string fmt(int64_t ns) { return formatSeconds(sec(ns)); }

constexpr HeatMetric kMetrics[] = {HeatMetric::Step, HeatMetric::Compute, HeatMetric::ExposedComm, HeatMetric::Idle};

std::optional<HeatMetric> metricNamed(const std::string& name)
{
    for (HeatMetric m : kMetrics)
        if (heatMetricName(m) == name)
            return m;
    return std::nullopt;
}

json mapJson(int64_t run, const HeatMap& map, HeatMetric metric, size_t top)
{
    json rows = json::array(), medians = json::object(), outliers = json::array();
    for (const HeatRow& r : map.rows) {
        json cells = json::array();
        for (size_t c = 0; c < r.cells.size(); ++c) {
            const HeatCell& h = r.cells[c];
            cells.push_back({{"step", c}, {"start_s", sec(h.start_ns)}, {"end_s", sec(h.end_ns)}, {"step_s", sec(h.step_ns())},
                             {"compute_s", sec(h.compute_ns)}, {"exposed_comm_s", sec(h.exposed_comm_ns)},
                             {"idle_s", sec(h.idle_ns)}, {"other_s", sec(h.other_ns())}});
        }
        rows.push_back({{"rank", r.rank}, {"cells", cells}});
    }
    for (HeatMetric m : kMetrics) {
        json col = json::array();
        for (int64_t c = 0; c < map.columns; ++c)
            col.push_back(sec(map.columnMedian(c, m)));
        medians[std::string(heatMetricName(m))] = col;
    }
    for (const HeatOutlier& o : heatOutliers(map, metric, top))
        outliers.push_back({{"rank", o.rank}, {"step", o.column}, {"s", sec(o.value_ns)}, {"median_s", sec(o.median_ns)}});
    return json{{"run_id", run}, {"ranks", map.rows.size()}, {"columns", map.columns}, {"by_step", map.by_step},
                {"metric", heatMetricName(metric)}, {"notes", map.notes}, {"medians", medians}, {"outliers", outliers},
                {"rows", rows}};
}

// A rank's mean over its steps, per metric.
struct RankMeans
{
    int rank = 0;
    size_t steps = 0;
    int64_t mean[4] = {0, 0, 0, 0};
};

std::vector<RankMeans> rankMeans(const HeatMap& map)
{
    std::vector<RankMeans> means;
    for (const HeatRow& r : map.rows) {
        RankMeans m{r.rank, r.cells.size(), {}};
        for (size_t k = 0; k < 4 && !r.cells.empty(); ++k) {
            int64_t sum = 0;
            for (const HeatCell& c : r.cells)
                sum += heatValue(c, kMetrics[k]);
            m.mean[k] = sum / int64_t(r.cells.size());
        }
        means.push_back(m);
    }
    return means;
}

// Per metric, the rank whose mean lies furthest above the ranks' median.
void printStandouts(const std::vector<RankMeans>& means)
{
    std::cout << "\nWhat stands out (a rank's mean against the median rank's):\n";
    for (size_t k = 0; k < 4; ++k) {
        std::vector<int64_t> v;
        for (const RankMeans& m : means)
            v.push_back(m.mean[k]);
        std::sort(v.begin(), v.end());
        const int64_t median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
        const RankMeans& top = *std::max_element(means.begin(), means.end(),
                                                 [k](const RankMeans& a, const RankMeans& b) { return a.mean[k] < b.mean[k]; });
        const double pct = median > 0 ? 100.0 * double(top.mean[k] - median) / double(median) : 0.0;
        std::printf("  %-13s ", std::string(heatMetricName(kMetrics[k])).c_str());
        if (top.mean[k] - median <= 1000 || (median > 0 && pct < 1.0))
            std::printf("even: every rank within 1 %% of the median %s\n", fmt(median).c_str());
        else
            std::printf("rank %d, %s against the median %s (+%.1f %%)\n", top.rank, fmt(top.mean[k]).c_str(), fmt(median).c_str(),
                        median > 0 ? pct : 100.0);
    }
}

void printMap(int64_t run, const HeatMap& map, HeatMetric metric, size_t top)
{
    std::cout << "Run " << run << ": " << map.rows.size() << (map.rows.size() == 1 ? " rank, " : " ranks, ")
              << (map.by_step ? std::to_string(map.columns) + (map.columns == 1 ? " step" : " steps") : std::string("no steps"))
              << " (times from the earliest step's start, on each rank's own clock)\n";
    for (const std::string& n : map.notes)
        std::cout << "note: " << n << "\n";
    int64_t origin = INT64_MAX;
    for (const HeatRow& r : map.rows)
        for (const HeatCell& c : r.cells)
            origin = std::min(origin, c.start_ns);
    std::vector<RankMeans> means = rankMeans(map);
    if (means.size() >= 2)
        printStandouts(means);
    const size_t k = size_t(metric);
    std::stable_sort(means.begin(), means.end(), [k](const RankMeans& a, const RankMeans& b) { return a.mean[k] > b.mean[k]; });
    const size_t shown = top == 0 ? means.size() : std::min(top, means.size());
    std::cout << "\nPer rank, the mean over its " << (map.by_step ? "steps" : "span") << ", by " << heatMetricName(metric)
              << (shown < means.size() ? " (the " + std::to_string(shown) + " highest; --top 0: all)" : std::string()) << ":\n";
    std::printf("  %5s %6s %12s %12s %14s %12s\n", "rank", "steps", "step", "compute", "exposed comm", "idle");
    for (size_t i = 0; i < shown; ++i) {
        const RankMeans& m = means[i];
        std::printf("  %5d %6zu %12s %12s %14s %12s\n", m.rank, m.steps, fmt(m.mean[0]).c_str(), fmt(m.mean[1]).c_str(),
                    fmt(m.mean[2]).c_str(), fmt(m.mean[3]).c_str());
    }
    if (map.rows.size() < 2)
        return;
    const auto outliers = heatOutliers(map, metric, top == 0 ? SIZE_MAX : top);
    std::cout << "\nCells over 1 % above their " << (map.by_step ? "step's" : "column's") << " median " << heatMetricName(metric)
              << " time" << (outliers.empty() ? ": none\n" : ":\n");
    for (const HeatOutlier& o : outliers) {
        const HeatCell* c = nullptr;
        for (const HeatRow& r : map.rows)
            if (r.rank == o.rank)
                c = &r.cells[size_t(o.column)];
        std::printf("  rank %-5d step %-4lld %12s, median %12s (+%.1f %%), from +%s to +%s\n", o.rank, (long long)o.column,
                    fmt(o.value_ns).c_str(), fmt(o.median_ns).c_str(),
                    o.median_ns > 0 ? 100.0 * double(o.value_ns - o.median_ns) / double(o.median_ns) : 100.0,
                    fmt(c->start_ns - origin).c_str(), fmt(c->end_ns - origin).c_str());
    }
}

json groupsJson(const std::vector<GroupBusy>& rows)
{
    json out = json::array();
    for (const GroupBusy& g : rows)
        out.push_back({{"group", g.group}, {"ranks", g.ranks}, {"busy_least", g.least}, {"busy_median", g.median},
                       {"busy_most", g.most}, {"least_busy_rank", g.least_busy_rank}});
    return out;
}

void printGroups(const std::vector<GroupBusy>& rows, const MeshShape& mesh, MeshAxis axis)
{
    std::cout << "\nBy " << meshAxisTitle(axis) << " (mesh " << meshText(mesh) << "): the ranks' busy share over the run\n";
    std::printf("  %6s %6s %8s %8s %8s  %s\n", "group", "ranks", "least", "median", "most", "least busy rank");
    for (const GroupBusy& g : rows)
        std::printf("  %6s %6zu %7.1f%% %7.1f%% %7.1f%%  %d\n", g.group < 0 ? "none" : std::to_string(g.group).c_str(), g.ranks.size(),
                    100 * g.least, 100 * g.median, 100 * g.most, g.least_busy_rank);
}

} // namespace

int runTraceHeatmap(const TraceCliOptions& o)
{
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "heatmap needs exactly one --run"});
    const auto metric = metricNamed(o.metric);
    if (!metric)
        return fail(Error{{}, "--metric", "'" + o.metric + "' is not one of step, compute, exposed-comm, idle"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    std::optional<MeshAxis> axis;
    std::optional<MeshShape> mesh;
    if (!o.groupBy.empty()) {
        for (MeshAxis a : {MeshAxis::Data, MeshAxis::Tensor, MeshAxis::Pipeline, MeshAxis::Context, MeshAxis::Expert})
            if (meshAxisName(a) == o.groupBy)
                axis = a;
        auto info = (*store)->run(o.runs.front());
        if (!info)
            return fail(info.error());
        mesh = (*store)->runMesh(*info);
        if (!mesh)
            return fail(Error{{}, "--group-by", "run " + std::to_string(o.runs.front()) +
                                                    " has no mesh: a run of a strategy has one; give an imported trace's with "
                                                    "trace import --mesh"});
    }
    auto map = rankHeatMap(**store, o.runs.front());
    if (!map)
        return fail(map.error());
    if (o.json) {
        json j = mapJson(o.runs.front(), *map, *metric, o.top == 0 ? SIZE_MAX : size_t(o.top));
        if (axis) {
            j["mesh"] = meshText(*mesh);
            j["group_by"] = meshAxisName(*axis);
            j["groups"] = groupsJson(groupBusy(*map, *mesh, *axis));
        }
        std::cout << j.dump(2) << "\n";
    } else {
        printMap(o.runs.front(), *map, *metric, size_t(o.top));
        if (axis)
            printGroups(groupBusy(*map, *mesh, *axis), *mesh, *axis);
    }
    std::fflush(stdout);
    return 0;
}

} // namespace partita::cli
