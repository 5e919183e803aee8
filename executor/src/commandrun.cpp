#include "partita/executor/commandrun.h"

#include "partita/core/fileio.h"
#include "partita/profiler/chromeimport.h"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace partita {

namespace fs = std::filesystem;
using nlohmann::json;

Result<int> freeTcpPort()
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return Error{"MASTER_PORT", {}, std::string("socket: ") + std::strerror(errno)};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof a;
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    const int e = errno;
    close(fd);
    if (!ok)
        return Error{"MASTER_PORT", {}, std::string("no free port: ") + std::strerror(e)};
    return int(ntohs(a.sin_port));
}

namespace {

// The trace module's record of a rank's optimizer steps (rank<R>.steps).
std::vector<double> readSteps(const fs::path& p, std::vector<std::string>& warnings)
{
    std::ifstream in(p);
    if (!in)
        return {};
    try {
        return json::parse(in).value("step_s", std::vector<double>{});
    } catch (const json::exception& e) {
        warnings.push_back(p.string() + ": " + e.what());
        return {};
    }
}

// Nothing ran: the launch stopped before any rank (a host unreachable).
CommandRun notStarted(const Error& e)
{
    CommandRun out;
    out.launch.failed_host = e.file.rfind("host ", 0) == 0 ? e.file.substr(5) : std::string();
    out.launch.cause = e.message;
    out.launch.message = e.str();
    return out;
}

// What every rank left in `traces`: its trace (listed for the import with
// its rank) and its optimizer steps; a rank without a trace is a warning.
// `world` 0: torchrun chose the ranks per node, as many as wrote their steps.
void collectRanks(CommandRun& out, const fs::path& traces, int world, int scheduled, std::vector<std::string>& files,
                  std::vector<int>& fileRanks)
{
    std::error_code ec;
    if (world == 0)
        for (const auto& e : fs::directory_iterator(traces, ec)) {
            const std::string n = e.path().filename().string();
            if (n.rfind("rank", 0) == 0 && e.path().extension() == ".steps")
                world = std::max(world, std::atoi(n.c_str() + 4) + 1);
        }
    for (int r = 0; r < world; ++r) {
        CommandRankResult rr;
        rr.rank = r;
        const fs::path trace = traces / ("rank" + std::to_string(r) + ".json");
        rr.traced = fs::exists(trace, ec);
        rr.step_s = readSteps(traces / ("rank" + std::to_string(r) + ".steps"), out.warnings);
        if (rr.traced) {
            files.push_back(trace.string());
            fileRanks.push_back(r);
        } else {
            out.warnings.push_back("rank " + std::to_string(r) + " left no trace" +
                                   (rr.step_s.empty() ? "" : " (it ran " + std::to_string(rr.step_s.size()) +
                                                                  " optimizer steps; the schedule needs " +
                                                                  std::to_string(scheduled) + ")"));
        }
        out.ranks.push_back(std::move(rr));
    }
}

// The imported run's kind, status and meta: the command, how it ran, each
// rank's optimizer steps, what went wrong.
Result<bool> annotate(TraceStore& store, CommandRun& out, const CommandRunOptions& o, const LaunchSpec& spec)
{
    json meta = json::parse(o.meta_extra.empty() ? "{}" : o.meta_extra, nullptr, false);
    if (!meta.is_object())
        meta = json::object();
    meta["command"] = o.command;
    meta["rank_command"] = spec.command;
    meta["launcher"] = std::string(launcherName(spec.kind));
    meta["ranks"] = out.ranks.size();
    meta["per_node"] = spec.per_node;
    meta["profile_steps"] = {o.schedule.wait, o.schedule.warmup, o.schedule.active};
    meta["run_dir"] = o.run_dir;
    meta["launch_seconds"] = out.launch.seconds;
    json logged = json::array();
    for (const CommandRankResult& r : out.ranks)
        logged.push_back({{"rank", r.rank}, {"traced", r.traced}, {"step_s", r.step_s}});
    meta["rank_steps"] = std::move(logged);
    if (!out.complete)
        meta["error"] = out.launch.message;
    meta["warnings"] = out.warnings;
    out.meta = meta.dump();
    RunInfo info = o.info;
    info.kind = RunKind::Measured;
    info.status = out.complete ? RunStatus::Complete : RunStatus::Incomplete;
    if (info.host.empty() && !out.launch.ranks.empty())
        info.host = out.launch.ranks.front().host;
    info.meta = out.meta;
    return store.annotateRun(out.run_id, info);
}

// What every launched process runs: partita-worker --exec-rank in front of
// the traced command, on a master port free here unless one is given.
Result<bool> rankCommand(LaunchSpec& spec, const CommandRunOptions& o, const TracedCommand& traced)
{
    int port = o.master_port;
    if (port == 0) {
        auto free = freeTcpPort();
        if (!free)
            return free.error();
        port = *free;
    }
    std::string addr = o.master_addr;
    if (addr.empty())
        addr = spec.kind == LauncherKind::Local || spec.hosts.empty() ? "127.0.0.1" : spec.hosts.front().host;
    spec.command = {spec.worker, "--exec-rank", "--master-addr", addr, "--master-port", std::to_string(port), "--"};
    if (spec.per_node)
        spec.command.insert(spec.command.begin() + 2, "--per-node");
    spec.command.insert(spec.command.end(), traced.argv.begin(), traced.argv.end());
    return true;
}

} // namespace

Result<CommandRun> executeCommandRun(TraceStore& store, const CommandRunOptions& o)
{
    std::error_code ec;
    const fs::path runDir(o.run_dir);
    const fs::path traces = runDir / "traces";
    fs::create_directories(traces, ec);
    if (ec)
        return Error{traces.string(), {}, ec.message()};
    LaunchSpec spec = o.launch;
    spec.steps = o.schedule.wait + o.schedule.warmup + o.schedule.active;
    spec.warmup = 0;
    // A stopped rank writes what the profiler recorded (seconds for a large trace).
    spec.grace_s = std::max(spec.grace_s, 15.0);
    std::string rankOut = traces.string();
    if (spec.kind == LauncherKind::Ssh) {
        if (auto w = writeSshHostfile(spec, runDir.string(), o.remote_dir); !w)
            return w.error();
        rankOut = o.remote_dir + "/traces";
        if (auto made = makeRemoteDirs(spec, rankOut); !made)
            return notStarted(made.error());
    }
    spec.out = rankOut;
    auto traced = tracedLaunch(o.command, o.trace_module, rankOut, o.schedule);
    if (!traced)
        return traced.error();
    // The training's ranks: one per process, or a torchrun line's per node.
    int world = spec.ranks;
    if (traced->per_node) {
        spec.per_node = true;
        spec.ranks = spec.kind == LauncherKind::Local ? 1 : int(spec.hosts.size());
        world = traced->procs_per_node > 0 ? spec.ranks * traced->procs_per_node : 0; // 0: as many as traced
    }
    if (auto made = rankCommand(spec, o, *traced); !made)
        return made.error();

    CommandRun out;
    out.launch = runLaunch(spec, o.on_line, o.cancel);
    std::vector<std::string> copyFailures;
    if (spec.kind == LauncherKind::Ssh) {
        if (auto got = collectRemoteFiles(spec, traces.string(), "rank*"); !got)
            out.warnings.push_back(got.error().str());
        else
            copyFailures = *got;
    }
    std::vector<std::string> files;
    std::vector<int> fileRanks;
    collectRanks(out, traces, world, spec.steps, files, fileRanks);
    if (files.size() < out.ranks.size())
        for (const std::string& h : copyFailures)
            out.warnings.push_back("could not copy the ranks' traces back from " + h);
    out.complete = out.launch.ok && !out.ranks.empty() && files.size() == out.ranks.size();
    if (out.launch.ok && !out.complete) {
        out.launch.cause = "the command succeeded on every rank, but not every rank's trace came back to " +
                           traces.string() + " (too few optimizer steps for the schedule?)";
        out.launch.message = out.launch.cause;
    }
    if (files.empty())
        return out;
    TraceImportOptions io;
    io.name = o.info.name;
    io.kind = RunKind::Measured;
    io.file_ranks = fileRanks;
    auto imported = importChromeTrace(store, files, io);
    if (!imported)
        return imported.error();
    out.run_id = imported->run_id;
    for (const std::string& w : imported->warnings)
        out.warnings.push_back(w);
    if (auto a = annotate(store, out, o, spec); !a)
        return a.error();
    return out;
}

} // namespace partita
