#include "search.h"
#include "simulate.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/search.h"
#include "partita/core/units.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace partita::cli {

using nlohmann::json;

namespace {
std::atomic<bool> g_cancel{false};
void onSigint(int) { g_cancel = true; }

// The search's options from the command line's, the calibration file's constants included.
Result<SearchOptions> searchOptionsFromOptions(const SearchCliOptions& o)
{
    SearchOptions so;
    so.global_batch = o.globalBatch;
    so.seq_len = o.seqLen;
    if (!o.dtype.empty()) // else the cluster's default (defaultPrecision)
        so.precision = o.dtype == "fp32"   ? Precision::FP32
                       : o.dtype == "fp16" ? Precision::FP16
                       : o.dtype == "fp8"  ? Precision::FP8
                                           : Precision::BF16;
    so.objective = o.objective == "throughput" ? Objective::Throughput : Objective::Time;
    so.budget_s = o.budget;
    so.seed = o.seed;
    so.threads = o.threads;
    so.top_k = o.top;
    so.max_evaluations = o.maxEvals;
    so.allow_powersgd = o.allowPowerSgd;
    so.allow_fp8 = o.allowFp8;
    so.allow_fp16_compression = o.allowFp16Compression;
    auto cal = loadCalibration(o.calibration);
    if (!cal)
        return cal.error();
    so.calibration = *cal;
    so.cancel = &g_cancel;
    return so;
}

// Runs the search with Ctrl-C as its cancel and, on a terminal, a progress bar on stderr.
Result<SearchResult> searchWithProgress(const Model& model, const Cluster& cluster, SearchOptions& so,
                                        const SearchCliOptions& o)
{
    // Ctrl-C stops the search and keeps the best found so far.
    std::signal(SIGINT, onSigint);
    const bool tty = ::isatty(2);
    if (tty)
        so.progress = [&](const SearchProgress& p) {
            const double frac = std::min(1.0, p.elapsed_s / std::max(1e-9, o.budget));
            const int bar = int(frac * 30);
            std::fprintf(stderr, "\r[%-30s] %6lld candidates, best %s, %.1f s ", std::string(size_t(bar), '#').c_str(),
                         static_cast<long long>(p.evaluated),
                         p.best_step_time > 0 ? formatSeconds(p.best_step_time).c_str() : "-", p.elapsed_s);
        };
    auto r = searchStrategy(model, cluster, so);
    if (tty)
        std::fprintf(stderr, "\n");
    std::signal(SIGINT, SIG_DFL);
    return r;
}

// One candidate as JSON: its figures, its explanation and its strategy.
json candidateJson(const Candidate& c)
{
    return json{{"step_time_s", c.step_time},
                {"samples_per_s", c.samples_per_s},
                {"mfu", c.mfu},
                {"peak_memory_bytes", c.peak_memory},
                {"explanation", c.explanation},
                {"strategy", json::parse(strategyToJson(c.strategy))}};
}

// The presets the search measured itself against, as a JSON array (null step time where one failed).
json baselinesJson(const SearchResult& r)
{
    json baselines = json::array();
    for (const auto& b : r.baselines) {
        json bj{{"name", b.name}, {"step_time_s", std::isfinite(b.step_time) ? json(b.step_time) : json(nullptr)}};
        if (!b.why.empty())
            bj["why"] = b.why;
        baselines.push_back(std::move(bj));
    }
    return baselines;
}

// Prints the search's result as JSON (--json).
void printSearchJson(const SearchResult& r)
{
    json j;
    j["best"] = candidateJson(r.best);
    json top = json::array();
    for (const auto& c : r.top)
        top.push_back(candidateJson(c));
    j["top"] = std::move(top);
    j["baselines"] = baselinesJson(r);
    j["best_preset"] = r.best_preset;
    j["evaluated"] = r.evaluated;
    j["out_of_memory"] = r.out_of_memory;
    j["failed"] = r.failed;
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& [why, n] : r.failures)
        failures.push_back({{"why", why}, {"count", n}});
    j["failures"] = std::move(failures);
    j["space_size"] = r.space_size;
    j["exhaustive"] = r.exhaustive;
    j["cancelled"] = r.cancelled;
    j["elapsed_s"] = r.elapsed_s;
    std::cout << j.dump(2) << "\n";
}

// Prints how many candidates were searched, and how many did not fit or failed (the five most frequent reasons).
void printSearchCounts(const SearchResult& r)
{
    std::cout << "Searched " << r.evaluated << " candidates in " << formatSeconds(r.elapsed_s)
              << (r.exhaustive ? " (the whole space)" : "") << (r.cancelled ? " (cancelled)" : "") << "\n";
    if (r.out_of_memory > 0)
        std::cout << "  " << r.out_of_memory << " did not fit in memory\n";
    if (r.failed > 0) {
        std::cout << "  " << r.failed << " could not be simulated:\n";
        for (size_t i = 0; i < r.failures.size() && i < 5; ++i)
            std::cout << "    " << r.failures[i].second << " x " << r.failures[i].first << "\n";
        if (r.failures.size() > 5)
            std::cout << "    and " << r.failures.size() - 5 << " other reasons (--json lists them)\n";
    }
}

// Prints the presets' step times, the best candidate against the best preset, and the top candidates.
void printSearchRanking(const SearchResult& r)
{
    std::cout << "\nPresets:\n";
    for (const auto& b : r.baselines)
        std::cout << "  " << b.name << std::string(b.name.size() < 26 ? 26 - b.name.size() : 1, ' ')
                  << (std::isfinite(b.step_time) ? formatSeconds(b.step_time) : "-  (" + b.why + ")") << "\n";
    std::cout << "\nBest: " << formatSeconds(r.best.step_time) << " per step, " << r.best.samples_per_s << " samples/s";
    if (!r.best_preset.empty()) {
        for (const auto& b : r.baselines)
            if (b.name == r.best_preset)
                std::cout << ", " << b.step_time / r.best.step_time << "x the best preset (" << b.name << ")";
    }
    std::cout << "\n  " << r.best.explanation << "\n";
    if (r.top.size() > 1) {
        std::cout << "\nTop " << r.top.size() << ":\n";
        for (const auto& c : r.top)
            std::cout << "  " << formatSeconds(c.step_time) << "  " << c.explanation << "\n";
    }
}

} // namespace

int runSearch(const SearchCliOptions& o)
{
    auto model = loadModel(o.model);
    if (!model)
        return fail(model.error());
    auto cluster = loadCluster(o.cluster, ClusterLoadOptions{o.device, o.nodeTemplate});
    if (!cluster)
        return fail(cluster.error());
    auto so = searchOptionsFromOptions(o);
    if (!so)
        return fail(so.error());
    auto r = searchWithProgress(*model, *cluster, *so, o);
    if (!r)
        return fail(r.error());
    if (!o.out.empty()) {
        if (auto w = writeFileAtomically(o.out, strategyToJson(r->best.strategy)); !w)
            return fail(w.error());
    }
    if (o.json) {
        printSearchJson(*r);
        return 0;
    }
    printSearchCounts(*r);
    printSearchRanking(*r);
    if (!o.out.empty())
        std::cout << "\nwrote " << o.out << "\n";
    return 0;
}

} // namespace partita::cli
