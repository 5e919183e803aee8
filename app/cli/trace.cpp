#include "trace.h"

#include "common.h"

#include "partita/core/units.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/chromeimport.h"
#include "partita/core/mesh.h"
#include "partita/profiler/stragglers.h"
#include "partita/profiler/nsysimport.h"
#include "partita/profiler/tracestore.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace partita::cli {

using nlohmann::json;

Result<std::unique_ptr<TraceStore>> openProject(const std::string& path)
{
    if (path.empty())
        return Error{{}, "--project", "a project file is required"};
    return TraceStore::open(path);
}

namespace {

std::atomic<bool> g_cancel{false};
void onSigint(int) { g_cancel = true; }

json temporalJson(const TemporalBreakdown& t)
{
    return json{{"span_s", double(t.span_ns) * 1e-9}, {"idle_pct", t.idle_pct}, {"compute_pct", t.compute_pct},
                {"non_compute_pct", t.non_compute_pct}};
}

std::string pct(double v)
{
    std::ostringstream s;
    s << std::fixed << std::setprecision(2) << v << " %";
    return s.str();
}

std::string shortName(const std::string& n, size_t width = 60)
{
    return n.size() <= width ? n : n.substr(0, width - 3) + "...";
}

// What every import prints: warnings on stderr, then the run and its counts
// by kind (JSON: `run_id`, `events`, `counts`, `warnings` and `extra`).
int printImport(const TraceCliOptions& o, int64_t runId, const std::map<std::string, int64_t>& counts,
                const std::vector<std::string>& warnings, json extra, const std::string& from,
                const std::vector<std::string>& notes = {})
{
    for (const auto& w : warnings)
        std::cerr << "partita-cli: warning: " << w << "\n";
    int64_t total = 0;
    json byKind = json::object();
    for (const auto& [k, n] : counts) {
        total += n;
        byKind[k] = n;
    }
    if (o.json) {
        extra["run_id"] = runId;
        extra["events"] = total;
        extra["counts"] = byKind;
        extra["warnings"] = warnings;
        std::cout << extra.dump(2) << "\n";
        return 0;
    }
    std::cout << "Imported run " << runId << ": " << total << " events from " << from << " into " << o.project << "\n";
    for (const auto& [k, n] : counts)
        std::cout << "  " << k << std::string(k.size() < 12 ? 12 - k.size() : 1, ' ') << n << "\n";
    for (const auto& n : notes)
        std::cout << "  " << n << "\n";
    return 0;
}

// `--mesh`: recorded in the run's meta, where the timeline's grouping reads
// it (TraceStore::runMesh). A mesh of another size than the run is kept and
// said: its ranks beyond it fall in no group.
Result<bool> recordMesh(TraceStore& store, int64_t runId, const MeshShape& mesh, std::vector<std::string>& warnings)
{
    auto info = store.run(runId);
    if (!info)
        return info.error();
    auto meta = json::parse(info->meta.empty() ? "{}" : info->meta, nullptr, false);
    if (!meta.is_object())
        meta = json::object();
    meta["mesh"] = meshText(mesh);
    info->meta = meta.dump();
    if (auto a = store.annotateRun(runId, *info); !a)
        return a.error();
    if (info->ranks != mesh.world())
        warnings.push_back("--mesh " + meshText(mesh) + " lays out " + std::to_string(mesh.world()) + " ranks, the run has " +
                           std::to_string(info->ranks));
    return true;
}

} // namespace

int runTraceImport(const TraceCliOptions& o)
{
    std::optional<MeshShape> mesh;
    if (!o.mesh.empty()) {
        auto m = parseMesh(o.mesh);
        if (!m)
            return fail(Error{{}, "--mesh", m.error().str()});
        mesh = *m;
    }
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    // Nsight Systems SQLite exports, or Chrome / Kineto JSON.
    size_t sqlite = 0;
    for (const auto& in : o.inputs)
        sqlite += isSqliteFile(in) ? 1 : 0;
    if (sqlite > 0) {
        if (sqlite != o.inputs.size())
            return fail(Error{{}, "inputs", "mixing Nsight Systems exports and JSON traces in one run is not supported"});
        NsysImportOptions no;
        no.name = o.name;
        no.rank = o.rank;
        auto r = importNsysSqlite(**store, o.inputs, no);
        if (!r)
            return fail(r.error());
        if (mesh)
            if (auto m = recordMesh(**store, r->run_id, *mesh, r->warnings); !m)
                return fail(m.error());
        json extra{{"nsys_schema", r->schema}, {"gpus", r->gpus}};
        std::vector<std::string> gpus;
        for (const auto& g : r->gpus)
            gpus.push_back("GPU: " + g);
        return printImport(o, r->run_id, r->counts, r->warnings, extra,
                           "Nsight Systems export schema " + r->schema.front(), gpus);
    }
    if (o.rank)
        return fail(Error{{}, "--rank", "JSON traces take their rank from distributedInfo.rank"});
    TraceImportOptions io;
    io.name = o.name;
    io.cancel = &g_cancel;
    std::signal(SIGINT, onSigint);
    auto r = importChromeTrace(**store, o.inputs, io);
    std::signal(SIGINT, SIG_DFL);
    if (!r)
        return fail(r.error());
    if (mesh)
        if (auto m = recordMesh(**store, r->run_id, *mesh, r->warnings); !m)
            return fail(m.error());
    json extra{{"skipped", r->skipped}, {"ranks", r->ranks}, {"bytes_read", r->bytes_read}, {"left_out", r->left_out}};
    if (mesh)
        extra["mesh"] = meshText(*mesh);
    std::vector<std::string> notes;
    if (r->skipped)
        notes.push_back("(" + std::to_string(r->skipped) + " metadata, flow and counter events read, not stored)");
    return printImport(o, r->run_id, r->counts, r->warnings, extra,
                       std::to_string(r->ranks.size()) + (r->ranks.size() == 1 ? " rank" : " ranks"), notes);
}

int runTraceExport(const TraceCliOptions& o)
{
    if (o.format != "chrome")
        return fail(Error{{}, "--format", "unknown format '" + o.format + "' (known: chrome)"});
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "export needs exactly one --run"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    std::map<int32_t, int64_t> offsets;
    if (o.alignClocks) { // the corrections `trace stragglers` reports
        auto rep = findStragglers(**store, o.runs.front());
        if (!rep)
            return fail(rep.error());
        for (const ClockCorrection& c : rep->clocks)
            offsets[c.rank] = c.offset_ns;
        if (offsets.empty())
            std::cerr << "partita-cli: note: no clock corrections (" << (rep->notes.empty() ? "none found" : rep->notes.front())
                      << "): times written as recorded\n";
    }
    auto n = exportChromeTrace(**store, o.runs.front(), o.out, o.alignClocks ? &offsets : nullptr);
    if (!n)
        return fail(n.error());
    std::cout << "wrote " << o.out << " (" << *n << " events";
    for (const auto& [rank, ns] : offsets)
        if (ns != 0)
            std::cout << "; rank " << rank << " shifted by " << formatSeconds(double(-ns) * 1e-9);
    std::cout << ")\n";
    return 0;
}

namespace {

// One rank's figures as JSON: its temporal and idle breakdowns, overlap, device events and step times.
json rankStatsJson(const RankAnalysis& r)
{
    json j{{"rank", r.rank},
           {"temporal_breakdown", temporalJson(r.temporal)},
           {"comm_comp_overlap_pct", r.comm_comp_overlap_pct ? json(*r.comm_comp_overlap_pct) : json(nullptr)},
           {"idle_breakdown_s",
            {{"host_wait", double(r.idle.host_wait_ns) * 1e-9},
             {"kernel_wait", double(r.idle.kernel_wait_ns) * 1e-9},
             {"other", double(r.idle.other_ns) * 1e-9}}},
           {"device_events", r.device_events}};
    json steps = json::array();
    for (int64_t s : r.step_ns)
        steps.push_back(double(s) * 1e-9);
    j["step_s"] = steps;
    return j;
}

// Prints the run's analysis as JSON (--json): ranks, kernel classes, kernels, layers, stragglers, totals.
void printStatsJson(const RunAnalysis& a)
{
    json ranks = json::array();
    for (const auto& r : a.ranks)
        ranks.push_back(rankStatsJson(r));
    json kernels = json::array();
    for (const auto& k : a.kernels)
        kernels.push_back({{"name", k.name},
                           {"class", std::string(kernelClassName(k.cls))},
                           {"count", k.count},
                           {"total_s", double(k.total_ns) * 1e-9},
                           {"min_s", double(k.min_ns) * 1e-9},
                           {"max_s", double(k.max_ns) * 1e-9}});
    json classes = json::object();
    for (const auto& [c, ns] : a.class_ns)
        classes[std::string(kernelClassName(c))] = double(ns) * 1e-9;
    json layers = json::array();
    for (const auto& l : a.layers)
        layers.push_back({{"layer", l.layer},
                          {"compute_s", double(l.compute_ns) * 1e-9},
                          {"comm_s", double(l.comm_ns) * 1e-9},
                          {"memory_s", double(l.memory_ns) * 1e-9},
                          {"events", l.count}});
    json stragglers = json::array();
    for (const auto& s : a.stragglers)
        stragglers.push_back({{"rank", s.rank}, {"excess_pct", s.excess_pct}, {"metric", s.what}});
    json j{{"run_id", a.run},
           {"ranks", ranks},
           {"kernel_classes_s", classes},
           {"kernels", kernels},
           {"layers", layers},
           {"stragglers", stragglers},
           {"dropped_last_step", a.dropped_last_step},
           {"notes", a.notes}};
    j["temporal_breakdown"] = temporalJson(a.total);
    j["comm_comp_overlap_pct"] = a.comm_comp_overlap_pct ? json(*a.comm_comp_overlap_pct) : json(nullptr);
    std::cout << j.dump(2) << "\n";
}

// Prints the run's analysis as text: a row per rank, the top kernels, stragglers, notes and how to dig further.
void printStatsText(const RunAnalysis& a)
{
    std::cout << "Run " << a.run << (a.dropped_last_step ? " (last profiler step left out, as HTA does)" : "") << "\n\n";
    std::cout << "rank   span        idle      compute   non-compute  comm/comp overlap\n";
    for (const auto& r : a.ranks)
        std::cout << std::setw(4) << r.rank << "   " << std::setw(10) << formatSeconds(double(r.temporal.span_ns) * 1e-9)
                  << "  " << std::setw(8) << pct(r.temporal.idle_pct) << "  " << std::setw(8) << pct(r.temporal.compute_pct)
                  << "  " << std::setw(10) << pct(r.temporal.non_compute_pct) << "   "
                  << (r.comm_comp_overlap_pct ? pct(*r.comm_comp_overlap_pct) : std::string("- (no communication)")) << "\n";
    if (!a.kernels.empty()) {
        std::cout << "\nTop kernels (all ranks):\n";
        for (size_t i = 0; i < std::min<size_t>(10, a.kernels.size()); ++i) {
            const auto& k = a.kernels[i];
            std::cout << "  " << std::setw(10) << formatSeconds(double(k.total_ns) * 1e-9) << "  " << std::setw(7) << k.count
                      << "x  " << std::setw(13) << std::left << kernelClassName(k.cls) << std::right << " "
                      << shortName(k.name) << "\n";
        }
    }
    for (const auto& s : a.stragglers)
        std::cout << "\nStraggler: rank " << s.rank << ", " << s.what << " " << pct(s.excess_pct) << " over the median\n";
    for (const auto& n : a.notes)
        std::cout << "\nnote: " << n << "\n";
    std::cout << "\nThe events behind a row: partita-cli trace events --run " << a.run
              << " --device --name NAME (a kernel) | --class CLASS | --rank R [--step K]\n";
}

} // namespace

int runTraceStats(const TraceCliOptions& o)
{
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "stats needs exactly one --run"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    AnalysisOptions ao;
    ao.drop_last_step = !o.keepLastStep;
    ao.hta_rounding = o.htaRounding;
    auto a = analyzeRun(**store, o.runs.front(), ao);
    if (!a)
        return fail(a.error());
    if (o.json) {
        printStatsJson(*a);
        return 0;
    }
    printStatsText(*a);
    return 0;
}

// What a measured run's backend ran otherwise than its plan (partita-cli
// run writes it in the run's meta); empty for any other run.
static std::vector<std::string> notAsPlannedOf(const TraceStore& store, int64_t run)
{
    std::vector<std::string> out;
    auto info = store.run(run);
    if (!info)
        return out;
    const json meta = json::parse(info->meta.empty() ? "{}" : info->meta, nullptr, false);
    if (meta.is_object() && meta.contains("not_as_planned") && meta["not_as_planned"].is_array())
        for (const json& v : meta["not_as_planned"])
            if (v.is_string())
                out.push_back(v.get<std::string>());
    return out;
}

namespace {

// Prints a diff as JSON (--json): ops, steps, layers and ranks compared, and what either run did not run as planned.
void printDiffJson(const TraceStore& store, const TraceCliOptions& o, const RunDiff& r)
{
    json ops = json::array();
    for (const auto& x : r.ops)
        ops.push_back({{"name", x.name},
                       {"a_count", x.a_count},
                       {"b_count", x.b_count},
                       {"a_total_s", double(x.a_ns) * 1e-9},
                       {"b_total_s", double(x.b_ns) * 1e-9},
                       {"change", x.change}});
    json steps = json::array();
    for (const auto& s : r.steps)
        steps.push_back({{"index", s.index}, {"a_s", double(s.a_ns) * 1e-9}, {"b_s", double(s.b_ns) * 1e-9}});
    json layers = json::array();
    for (const auto& l : r.layers)
        layers.push_back({{"layer", l.layer}, {"a_s", double(l.a_ns) * 1e-9}, {"b_s", double(l.b_ns) * 1e-9}});
    json ranks = json::array();
    for (const auto& x : r.ranks)
        ranks.push_back({{"rank", x.rank}, {"a", temporalJson(x.a)}, {"b", temporalJson(x.b)}});
    json out{{"rank_a", r.rank_a},
             {"rank_b", r.rank_b},
             {"iteration_a", r.iteration_a},
             {"iteration_b", r.iteration_b},
             {"ops", ops},
             {"steps", steps},
             {"layers", layers},
             {"ranks", ranks}};
    for (int side = 0; side < 2; ++side)
        if (auto n = notAsPlannedOf(store, o.runs[size_t(side)]); !n.empty())
            out[side == 0 ? "not_as_planned_a" : "not_as_planned_b"] = n;
    std::cout << out.dump(2) << "\n";
}

// Prints HTA's ops diff as text, grouped by change: added, deleted, increased, decreased, unchanged.
void printOpsByChange(const std::vector<OpsDiffRow>& ops)
{
    for (const char* change : {"added", "deleted", "increased", "decreased", "unchanged"}) {
        int n = 0;
        for (const auto& x : ops)
            if (x.change == change)
                ++n;
        if (!n)
            continue;
        std::cout << change << " (" << n << "):\n";
        for (const auto& x : ops)
            if (x.change == change)
                std::cout << "  " << std::setw(5) << x.a_count << " -> " << std::setw(5) << x.b_count << "  "
                          << std::setw(10) << formatSeconds(double(x.a_ns) * 1e-9) << " -> " << std::setw(10)
                          << formatSeconds(double(x.b_ns) * 1e-9) << "  " << shortName(x.name) << "\n";
    }
}

// Prints a diff as text: the ranks and steps compared, the ops by change, steps, ranks, what did not run as planned.
void printDiffText(const TraceStore& store, const TraceCliOptions& o, const RunDiff& r)
{
    std::cout << "A: run " << o.runs[0] << " rank " << r.rank_a << " step " << r.iteration_a << "    B: run "
              << o.runs[1] << " rank " << r.rank_b << " step " << r.iteration_b << "\n\n";
    printOpsByChange(r.ops);
    if (!r.steps.empty()) {
        std::cout << "\nsteps (aligned by index):\n";
        for (const auto& s : r.steps)
            std::cout << "  " << std::setw(3) << s.index << "  " << std::setw(10) << formatSeconds(double(s.a_ns) * 1e-9)
                      << " -> " << std::setw(10) << formatSeconds(double(s.b_ns) * 1e-9) << "\n";
    }
    if (!r.ranks.empty()) {
        std::cout << "\nper rank: idle / compute / non-compute\n";
        for (const auto& x : r.ranks)
            std::cout << "  rank " << x.rank << ": " << pct(x.a.idle_pct) << " / " << pct(x.a.compute_pct) << " / "
                      << pct(x.a.non_compute_pct) << "  ->  " << pct(x.b.idle_pct) << " / " << pct(x.b.compute_pct)
                      << " / " << pct(x.b.non_compute_pct) << "\n";
    }
    bool first = true;
    for (int side = 0; side < 2; ++side)
        for (const std::string& n : notAsPlannedOf(store, o.runs[size_t(side)])) {
            std::cout << (first ? "\n" : "") << (side == 0 ? "A" : "B") << " did not run as planned: " << n << "\n";
            first = false;
        }
}

} // namespace

int runTraceDiff(const TraceCliOptions& o)
{
    if (o.runs.size() != 2)
        return fail(Error{{}, "--run", "diff needs two --run options (A, then B)"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    DiffOptions d;
    d.rank = o.rank;
    d.iteration = o.iteration;
    d.scope = o.scope == "cpu" ? DiffScope::Cpu : o.scope == "gpu" ? DiffScope::Gpu : DiffScope::All;
    auto r = diffRuns(**store, o.runs[0], o.runs[1], d);
    if (!r)
        return fail(r.error());
    if (o.json) {
        printDiffJson(**store, o, *r);
        return 0;
    }
    printDiffText(**store, o, *r);
    return 0;
}

int runRunsList(const TraceCliOptions& o)
{
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    auto runs = (*store)->runs();
    if (!runs)
        return fail(runs.error());
    if (o.json) {
        json a = json::array();
        for (const auto& r : *runs)
            a.push_back({{"id", r.id},
                         {"name", r.name},
                         {"kind", std::string(runKindName(r.kind))},
                         {"status", std::string(runStatusName(r.status))},
                         {"source", r.source},
                         {"host", r.host},
                         {"created", r.created},
                         {"events", r.events},
                         {"ranks", r.ranks},
                         {"duration_s", double(r.end_ns - r.start_ns) * 1e-9},
                         {"meta", json::parse(r.meta.empty() ? "{}" : r.meta, nullptr, false)}});
        std::cout << a.dump(2) << "\n";
        return 0;
    }
    if (runs->empty()) {
        std::cout << "no runs in " << o.project << "\n";
        return 0;
    }
    std::cout << "  id  kind       status      ranks     events  duration    name\n";
    for (const auto& r : *runs)
        std::cout << std::setw(4) << r.id << "  " << std::setw(9) << std::left << runKindName(r.kind) << "  "
                  << std::setw(10) << runStatusName(r.status) << std::right << "  " << std::setw(5) << r.ranks << "  "
                  << std::setw(9) << r.events << "  " << std::setw(10) << formatSeconds(double(r.end_ns - r.start_ns) * 1e-9)
                  << "  " << r.name << "\n";
    return 0;
}

} // namespace partita::cli
