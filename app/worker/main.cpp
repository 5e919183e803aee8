// partita-worker: one rank of a measured run. Reads an execution plan
// (docs/formats.md), runs warm-up then measured steps, writes the rank's
// timeline (Chrome trace JSON) and a manifest, and reports progress on stdout.
#include "partita/core/plan.h"
#include "partita/executor/cpuworker.h"
#include "partita/profiler/chrometrace.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace {
std::atomic<bool> g_cancel{false};
void onSignal(int) { g_cancel = true; }
int fail(const std::string& msg)
{
    std::cerr << "partita-worker: error: " << msg << "\n";
    return 2;
}
} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"Partita worker: runs one rank of an execution plan and traces it"};
    std::string planPath, out, backend = "cpu";
    int rank = 0, steps = 3, warmup = 1;
    double scale = 1.0;
    app.add_option("--plan", planPath, "execution plan (JSON, from partita-cli simulate --plan-out)")->required();
    app.add_option("--out", out, "folder for rank-R.trace.json and rank-R.manifest.json")->required();
    app.add_option("--rank", rank, "this process's rank")->check(CLI::NonNegativeNumber);
    app.add_option("--steps", steps, "measured steps")->check(CLI::Range(1, 100000));
    app.add_option("--warmup", warmup, "warm-up steps, not traced")->check(CLI::Range(0, 100000));
    app.add_option("--shape-scale", scale, "multiply GEMM dimensions and memory traffic by this (0, 1]; recorded")
        ->check(CLI::Range(1e-6, 1.0));
    app.add_option("--backend", backend, "compute backend")->check(CLI::IsMember({"cpu"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    std::ifstream in(planPath, std::ios::binary);
    if (!in)
        return fail(planPath + ": " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    auto plan = partita::planFromJson(text.str(), planPath);
    if (!plan)
        return fail(plan.error().str());
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec)
        return fail(out + ": " + ec.message());
    std::signal(SIGTERM, onSignal);
    std::signal(SIGINT, onSignal);
    partita::CpuWorkerOptions o;
    o.rank = rank;
    o.steps = steps;
    o.warmup = warmup;
    o.shape_scale = scale;
    o.cancel = &g_cancel;
    o.progress = [&](int step, bool isWarmup, double seconds) {
        std::cout << "rank " << rank << " " << (isWarmup ? "warm-up " : "step ") << (isWarmup ? step + 1 : step - warmup + 1)
                  << "/" << (isWarmup ? warmup : steps) << " " << seconds << " s" << std::endl;
    };
    auto r = partita::runCpuWorker(*plan, o);
    if (!r)
        return fail(r.error().str());
    const std::string base = out + "/rank-" + std::to_string(rank);
    if (auto w = partita::writeChromeTrace(r->trace, base + ".trace.json"); !w)
        return fail(w.error().str());
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    nlohmann::json manifest{{"rank", rank},
                            {"host", host},
                            {"backend", backend},
                            {"plan", planPath},
                            {"strategy", plan->strategy},
                            {"warmup", warmup},
                            {"step_s", r->step_s},
                            {"kernels_per_step", r->kernels_per_step},
                            {"shape_scale", r->shape_scale},
                            {"blas", r->blas},
                            {"trace", base + ".trace.json"}};
    const std::string tmp = base + ".manifest.json.partita-tmp";
    {
        std::ofstream m(tmp);
        m << manifest.dump(2) << "\n";
        if (!m.flush())
            return fail(tmp + ": write failed");
    }
    if (std::rename(tmp.c_str(), (base + ".manifest.json").c_str()) != 0)
        return fail(base + ".manifest.json: " + std::strerror(errno));
    std::cout << "rank " << rank << " done: " << base << ".manifest.json" << std::endl;
    return 0;
}
