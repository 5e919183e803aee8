// `partita-cli trace stragglers`: profiler/stragglers.h in text or JSON.
#include "trace.h"

#include "common.h"

#include "partita/core/units.h"
#include "partita/profiler/stragglers.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace partita::cli {

using nlohmann::json;

namespace {

double sec(int64_t ns) { return double(ns) * 1e-9; }

std::string duration(int64_t ns) { return ns == 0 ? "0" : formatSeconds(sec(ns)); }

json reportJson(int64_t run, const StragglerReport& r)
{
    json clocks = json::array();
    for (const ClockCorrection& c : r.clocks)
        clocks.push_back({{"rank", c.rank}, {"offset_s", sec(c.offset_ns)}, {"spread_s", sec(c.spread_ns)}});
    json steps = json::array();
    for (const StepStraggler& s : r.steps) {
        json waits = json::array();
        for (int64_t w : s.wait_ns)
            waits.push_back(sec(w));
        steps.push_back({{"step", s.step},
                         {"late_rank", s.late_rank},
                         {"wait_caused_s", sec(s.wait_caused_ns)},
                         {"collectives", s.collectives},
                         {"worst_collective", {{"name", s.collective}, {"index", s.collective_index},
                                               {"wait_caused_s", sec(s.worst_wait_ns)}, {"wait_s_by_rank", waits}}},
                         {"cause", {{"kernel", s.kernel}, {"layer", s.layer}, {"excess_s", sec(s.excess_ns)}}}});
    }
    json blame = json::array();
    for (const RankBlame& b : r.blame)
        blame.push_back({{"rank", b.rank},
                         {"wait_caused_s", sec(b.wait_caused_ns)},
                         {"late_at", b.late_count},
                         {"waited_s", sec(b.waited_ns)}});
    return json{{"run_id", run}, {"ranks", r.ranks}, {"matched_collectives", r.matched}, {"clocks", clocks},
                {"steps", steps},    {"blame", blame},  {"notes", r.notes}};
}

void printReport(int64_t run, const StragglerReport& r)
{
    std::cout << "Run " << run << ": " << r.ranks << (r.ranks == 1 ? " rank, " : " ranks, ") << r.matched
              << " collectives every rank ran\n";
    for (const std::string& n : r.notes)
        std::cout << "note: " << n << "\n";
    if (r.steps.empty())
        return;
    std::cout << "\nPer step: the rank the others waited for at its collectives\n";
    std::printf("  %5s %5s %12s %12s  %s\n", "step", "rank", "made wait", "worst one", "cause (beyond the other ranks' median)");
    for (const StepStraggler& s : r.steps) {
        const std::string cause = s.kernel.empty() ? "-"
                                                   : s.kernel + (s.layer >= 0 ? " (layer " + std::to_string(s.layer) + ")" : "") +
                                                         " +" + formatSeconds(sec(s.excess_ns));
        std::printf("  %5s %5d %12s %12s  %s\n", s.step < 0 ? "-" : std::to_string(s.step).c_str(), s.late_rank,
                    duration(s.wait_caused_ns).c_str(), duration(s.worst_wait_ns).c_str(), cause.c_str());
    }
    std::cout << "\nPer rank: the waiting it caused, and its own\n";
    std::printf("  %5s %12s %8s %12s %14s\n", "rank", "caused", "late at", "waited", "clock offset");
    for (size_t i = 0; i < r.blame.size(); ++i) {
        const RankBlame& b = r.blame[i];
        std::printf("  %5d %12s %8lld %12s %14s\n", b.rank, duration(b.wait_caused_ns).c_str(), (long long)b.late_count,
                    duration(b.waited_ns).c_str(), i < r.clocks.size() ? duration(r.clocks[i].offset_ns).c_str() : "-");
    }
    std::fflush(stdout);
}

} // namespace

int runTraceStragglers(const TraceCliOptions& o)
{
    if (o.runs.size() != 1)
        return fail(Error{{}, "--run", "stragglers needs exactly one --run"});
    auto store = openProject(o.project);
    if (!store)
        return fail(store.error());
    auto r = findStragglers(**store, o.runs.front());
    if (!r)
        return fail(r.error());
    if (o.json)
        std::cout << reportJson(o.runs.front(), *r).dump(2) << "\n";
    else
        printReport(o.runs.front(), *r);
    return 0;
}

} // namespace partita::cli
