// This machine's CPU measured by partita-worker (localcpu.h).
#include "partita/executor/localcpu.h"

#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/core/simulator.h"
#include "partita/executor/launcher.h"
#include "partita/executor/localmachine.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace partita {

namespace fs = std::filesystem;

std::string besideThisProgram(const std::string& name)
{
    std::error_code ec;
    return (fs::read_symlink("/proc/self/exe", ec).parent_path() / name).string();
}

Result<std::string> workerOutput(const std::string& worker, const std::string& args)
{
    if (access(worker.c_str(), X_OK) != 0)
        return Error{worker, {}, "the worker cannot be run (give --worker PATH)"};
    FILE* p = popen(("'" + worker + "' " + args).c_str(), "r");
    if (!p)
        return Error{worker, args, std::strerror(errno)};
    std::string text;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
        text.append(buf, n);
    const int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return Error{worker, args, "the measurement failed (exit status " + std::to_string(WEXITSTATUS(st)) + ")"};
    return text;
}

Result<Cluster> measureLocalCpu(const std::string& worker, int ranks)
{
    auto text = workerOutput(worker, "--measure-cpu " + std::to_string(ranks));
    if (!text)
        return text.error();
    return clusterFromJson(*text, worker + " --measure-cpu");
}

std::string localCalibrationCachePath()
{
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    const fs::path base = xdg && *xdg ? fs::path(xdg) : fs::path(home && *home ? home : "/tmp") / ".cache";
    const LocalMachine lm = detectLocalMachine();
    std::string key;
    for (char c : lm.cpu.name.empty() ? std::string("cpu") : lm.cpu.name)
        key += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    return (base / "partita" / "calibration" / ("cpu-" + key + "-" + std::to_string(lm.cpu.cores) + "c.json")).string();
}

namespace {

// Open MPI's all-reduce between one rank per core (`mpirun ... partita-worker
// --calibrate-mpi`, launched as `run` launches ranks), as a fraction of the
// shared-memory link `--measure-cpu` gives the local cluster: the collective
// model's time at full link bandwidth over the time measured, summed over
// the sizes. Returns what it says of the measurement; leaves `cal` as it is
// when it cannot measure.
std::string measureLocalCollectives(const std::string& worker, Calibration& cal)
{
    const int cores = detectLocalMachine().cpu.cores;
    if (cores < 2)
        return "collectives not measured (one core)";
    auto clusterText = workerOutput(worker, "--measure-cpu " + std::to_string(cores));
    if (!clusterText)
        return "collectives not measured (" + clusterText.error().str() + ")";
    auto cluster = clusterFromJson(*clusterText, worker + " --measure-cpu");
    if (!cluster)
        return "collectives not measured (" + cluster.error().str() + ")";
    // Launched as `run` launches its ranks (the launcher's mpirun flags).
    LaunchSpec spec;
    spec.ranks = cores;
    auto argv = launchCommand(spec, {worker, "--calibrate-mpi"});
    if (!argv)
        return "collectives not measured (" + argv.error().str() + ")";
    std::string cmd;
    for (const std::string& a : *argv) // single-quoted for the shell
        cmd += (cmd.empty() ? "'" : " '") + a + "'";
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    std::string text;
    char buf[4096];
    for (size_t n; p && (n = fread(buf, 1, sizeof buf, p)) > 0;)
        text.append(buf, n);
    const int st = p ? pclose(p) : -1;
    const size_t open = text.find('{');
    if (st != 0 || open == std::string::npos)
        return "collectives not measured (" + cmd + " failed: " + text.substr(0, 200) + ")";
    nlohmann::json j = nlohmann::json::parse(text.substr(open), nullptr, false);
    if (j.is_discarded() || !j.contains("allreduce") || !j["allreduce"].is_array())
        return "collectives not measured (" + cmd + " printed no sweep)";
    const Node& node = cluster->nodes.front();
    Calibration ideal = cal;
    ideal.intra_link_efficiency = 1;
    GroupShape g;
    g.n = g.per_node = cores;
    double idealSum = 0, measuredSum = 0;
    for (const auto& s : j["allreduce"]) {
        if (!s.is_array() || s.size() != 2 || !s[0].is_number() || !s[1].is_number())
            continue;
        idealSum += collectiveTime(Collective::AllReduce, s[0].get<double>(), g, node, ideal);
        measuredSum += s[1].get<double>();
        cal.measured["mpi_allreduce"] += (cal.measured["mpi_allreduce"].empty() ? "" : ", ") +
                                         std::to_string(int64_t(s[0].get<double>())) + " B: " +
                                         std::to_string(s[1].get<double>() * 1e6) + " us";
    }
    if (idealSum <= 0 || measuredSum <= 0)
        return "collectives not measured (" + cmd + " printed no sweep)";
    cal.intra_link_efficiency = std::clamp(idealSum / measuredSum, kMinLinkEfficiency, 1.0);
    cal.measured["reference_link_bandwidth"] = std::to_string(node.intra.bandwidth); // one rank per core
    char said[200];
    std::snprintf(said, sizeof said, "%s all-reduce between %d local ranks (%zu sizes): %.1f %% of the link",
                  j.value("library", std::string("MPI")).c_str(), cores, j["allreduce"].size(),
                  cal.intra_link_efficiency * 100);
    return said;
}

// partita-worker --calibrate-cpu: the process that links OpenBLAS measures;
// then the collectives between local ranks.
Result<Calibration> measureLocalCpuCalibration(const std::string& worker)
{
    auto text = workerOutput(worker, "--calibrate-cpu");
    if (!text)
        return text.error();
    auto cal = calibrationFromJson(*text, worker + " --calibrate-cpu");
    if (!cal)
        return cal;
    cal->source += "; " + measureLocalCollectives(worker, *cal);
    return cal;
}

} // namespace

Result<Calibration> localCpuCalibrationCached(const std::string& worker, bool remeasure,
                                              std::vector<std::string>* notes)
{
    const std::string cache = localCalibrationCachePath();
    std::error_code ec;
    if (!remeasure && fs::exists(cache, ec)) {
        auto text = readTextFile(cache);
        if (text)
            if (auto cal = calibrationFromJson(*text, cache)) {
                if (notes)
                    notes->push_back("calibration: this machine's, measured " + cal->measured["date"] + " (" + cache +
                                     "; partita-cli calibrate --local measures it again)");
                return cal;
            }
        // A cache that does not read is measured again, not trusted.
    }
    auto cal = measureLocalCpuCalibration(worker);
    if (!cal)
        return cal.error();
    // The sweep runs with every core busy, against one core measured alone:
    // its best GEMM far below that means the cores slowed each other (on a
    // virtual machine, a host that gives its vCPUs less than a core each
    // for a while: two single-threaded sgemm processes here have measured
    // 52 GFLOP/s each where one alone did 103).
    double best = 0;
    for (const auto& p : cal->matmul.points)
        best = std::max(best, p.second);
    if (best > 0 && best < 0.7 && notes)
        notes->push_back("warning: with every core busy the best sgemm reached " + std::to_string(int(best * 100)) +
                         " % of one core alone: the cores are slowing each other now (shared by the host?); "
                         "predictions will read this machine that slow until partita-cli calibrate --local measures "
                         "it again");
    fs::create_directories(fs::path(cache).parent_path(), ec);
    const bool cached = !ec && writeFileAtomically(cache, calibrationToJson(*cal));
    if (notes)
        notes->push_back("calibration: this machine's, measured now" +
                         (cached ? " and cached in " + cache : std::string(" (not cached: ") + cache + " cannot be written)"));
    return cal;
}

} // namespace partita
