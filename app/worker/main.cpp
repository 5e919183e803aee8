// partita-worker: one rank of a measured run. Reads an execution plan
// (docs/formats.md), runs warm-up then measured steps, writes the rank's
// timeline (Chrome trace JSON) and a manifest after every measured step (a
// rank that dies leaves what it measured), and reports progress on stdout.
// Started by mpirun or srun it joins the MPI job; alone it runs one-rank
// plans. With --exec-rank it runs one rank of a user's training command
// instead (rankexec.h).
#include "partita/core/plan.h"
#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/executor/cpubackend.h"
#include "partita/executor/mpicomm.h"
#include "partita/executor/rankexec.h"
#include "partita/executor/cudabackend.h"
#include "partita/executor/worker.h"
#include "partita/profiler/chrometrace.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace {
std::atomic<bool> g_cancel{false};
void onSignal(int) { g_cancel = true; }
int fail(const std::string& msg)
{
    // One write: the ranks share the launcher's stderr, and a line written
    // piece by piece can be cut by another rank's output.
    std::cerr.flush();
    partita::writeLine(2, "partita-worker: error: " + msg);
    return 2;
}

std::string hostName()
{
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return host;
}

// partita-worker --exec-rank [--per-node] [--master-addr A] [--master-port P] -- COMMAND...
int execRankMain(int argc, char** argv)
{
    partita::RankExecOptions o;
    int i = 2;
    for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
        const std::string a = argv[i];
        if (a == "--per-node") {
            o.per_node = true;
        } else if ((a == "--master-addr" || a == "--master-port") && i + 1 < argc) {
            const std::string v = argv[++i];
            if (a == "--master-addr") {
                o.master_addr = v;
                continue;
            }
            char* end = nullptr;
            const long port = std::strtol(v.c_str(), &end, 10);
            if (end == v.c_str() || *end || port < 1 || port > 65535)
                return fail("--master-port " + v + ": expected a port number (1-65535)");
            o.master_port = int(port);
        } else {
            return fail("--exec-rank: unknown option " + a +
                        " (usage: --exec-rank [--per-node] [--master-addr A] [--master-port P] -- COMMAND...)");
        }
    }
    for (++i; i < argc; ++i)
        o.command.emplace_back(argv[i]);
    if (o.command.empty())
        return fail("--exec-rank: give the command after --");
    return partita::execTrainingRank(o);
}

struct WorkerArgs
{
    std::string planPath, out, backend = "cpu";
    int steps = 3, warmup = 1;
    double scale = 1.0;
    int measureRanks = 0;
    bool calibrateCpu = false, calibrateMpi = false, noCupti = false;
};

// The command line; an exit code when it is all there is to do (--help,
// --version, a parse error).
std::optional<int> parseArgs(int argc, char** argv, WorkerArgs& a)
{
    CLI::App app{"Partita worker: runs one rank of an execution plan and traces it"};
    app.set_version_flag("--version", std::string("partita-worker ") + PARTITA_VERSION_STRING);
    auto* measure = app.add_option("--measure-cpu", a.measureRanks,
                                   "print this machine measured as a cluster of N CPU ranks (JSON) and exit")
                        ->check(CLI::Range(1, 4096));
    auto* calibrate = app.add_flag("--calibrate-cpu", a.calibrateCpu,
                                   "print this CPU's calibration (sgemm and copy efficiencies by size, JSON) and exit")
                          ->excludes(measure);
    auto* calibrateMpiFlag =
        app.add_flag("--calibrate-mpi", a.calibrateMpi,
                     "under mpirun: time MPI_Allreduce between the ranks by size; rank 0 prints JSON and all exit")
            ->excludes(measure, calibrate);
    app.add_option("--plan", a.planPath, "execution plan (JSON, from partita-cli simulate --plan-out)")->excludes(measure, calibrate, calibrateMpiFlag);
    app.add_option("--out", a.out, "folder for rank-R.trace.json and rank-R.manifest.json")->excludes(measure);
    app.add_option("--steps", a.steps, "measured steps")->check(CLI::Range(1, 100000));
    app.add_option("--warmup", a.warmup, "warm-up steps, not traced")->check(CLI::Range(0, 100000));
    app.add_option("--shape-scale", a.scale, "multiply GEMM dimensions, memory traffic and messages by this (0, 1]; recorded")
        ->check(CLI::Range(1e-6, 1.0));
    app.add_option("--backend", a.backend, "compute backend: cpu (OpenBLAS, MPI) or cuda (cuBLAS, NCCL, CUPTI)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_flag("--no-cupti", a.noCupti, "cuda: no CUPTI tracing (step times only, to measure tracing's overhead)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return std::nullopt;
}

// --measure-cpu, --calibrate-cpu, --calibrate-mpi: this machine measured,
// printed as JSON. Nothing when none was asked for.
std::optional<int> measureOnly(const WorkerArgs& a, int* argc, char*** argv)
{
    if (a.measureRanks > 0) {
        std::cout << partita::clusterToJson(partita::localCpuCluster(a.measureRanks));
        return 0;
    }
    if (a.calibrateCpu) {
        auto cal = partita::localCpuCalibration();
        if (!cal)
            return fail(cal.error().str());
        std::cout << partita::calibrationToJson(*cal);
        return 0;
    }
    if (!a.calibrateMpi)
        return std::nullopt;
    if (!partita::startedByMpiLauncher())
        return fail("--calibrate-mpi runs under an MPI launcher: mpirun -np N partita-worker --calibrate-mpi");
    auto sweep = partita::measureMpiAllreduce(argc, argv);
    if (!sweep)
        return fail(sweep.error().str());
    if (sweep->rank == 0) {
        nlohmann::json j{{"partita_mpi_allreduce", 1}, {"ranks", sweep->ranks}, {"library", sweep->library},
                         {"allreduce", sweep->samples}};
        std::cout << j.dump(1) << "\n";
    }
    return 0;
}

// One rank of a plan: its backends, its steps, its files after every
// checkpoint (a rank that dies leaves what it measured).
class PlanRank
{
public:
    PlanRank(const WorkerArgs& a, partita::Plan plan, std::unique_ptr<partita::Communicator> comm, std::string host)
        : m_a(a), m_plan(std::move(plan)), m_comm(std::move(comm)), m_host(std::move(host)), m_rank(m_comm->rank()),
          m_base(a.out + "/rank-" + std::to_string(m_rank))
    {
    }

    // Every peer is stopped when this rank fails: they would wait for it forever.
    int abortAll(const std::string& msg)
    {
        fail("rank " + std::to_string(m_rank) + " on " + m_host + ": " + msg);
        if (m_comm->size() > 1)
            m_comm->abort(3);
        return 2;
    }

    int run()
    {
        std::error_code ec;
        std::filesystem::create_directories(m_a.out, ec);
        if (ec)
            return abortAll(m_a.out + ": " + ec.message());
        std::signal(SIGTERM, onSignal);
        std::signal(SIGINT, onSignal);
        std::cout << "rank " << m_rank << " host " << m_host << " pid " << getpid() << " started: " << m_comm->size()
                  << " ranks, " << m_comm->name() << std::endl;
        partita::WorkerOptions o;
        o.steps = m_a.steps;
        o.warmup = m_a.warmup;
        o.shape_scale = m_a.scale;
        o.cancel = &g_cancel;
        o.checkpoint = [this](const partita::WorkerResult& r) { save(r); };
        o.progress = [this](int step, bool isWarmup, double seconds) {
            std::cout << "rank " << m_rank << " " << (isWarmup ? "warm-up " : "step ")
                      << (isWarmup ? step + 1 : step - m_a.warmup + 1) << "/" << (isWarmup ? m_a.warmup : m_a.steps) << " "
                      << seconds << " s" << std::endl;
        };
        std::unique_ptr<partita::ComputeBackend> cpu;
        partita::ComputeBackend* compute = nullptr;
        partita::Communicator* communicator = m_comm.get();
        if (m_a.backend == "cuda") { // the CUDA plugin, loaded now (cudaplugin.h)
            partita::CudaBackendOptions co;
            co.trace = !m_a.noCupti;
            auto b = partita::makeCudaBackend(m_plan, *m_comm, co);
            if (!b)
                return abortAll(b.error().str());
            m_cuda = std::move(*b);
            compute = m_cuda.get();
            communicator = m_cuda.get();
        } else {
            cpu = partita::makeCpuCompute();
            compute = cpu.get();
        }
        auto r = partita::runWorker(m_plan, o, *compute, *communicator);
        if (!r)
            return abortAll(r.error().str());
        if (!m_writeError.empty())
            return abortAll(m_writeError);
        std::cout << "rank " << m_rank << " done: " << m_base << ".manifest.json" << std::endl;
        return 0;
    }

private:
    // The trace and the manifest (docs/formats.md), each written atomically.
    void save(const partita::WorkerResult& r)
    {
        if (auto w = partita::writeChromeTrace(r.trace, m_base + ".trace.json"); !w) { // atomic: tmp, rename
            m_writeError = w.error().str();
            return;
        }
        nlohmann::json manifest{{"rank", m_rank},
                                {"world", m_comm->size()},
                                {"host", m_host},
                                {"pid", getpid()},
                                {"backend", m_a.backend},
                                {"plan", m_a.planPath},
                                {"strategy", m_plan.strategy},
                                {"warmup", m_a.warmup},
                                {"steps", m_a.steps},
                                {"step_s", r.step_s},
                                {"complete", r.complete},
                                {"ops_per_step", r.ops_per_step},
                                {"shape_scale", r.shape_scale},
                                {"compute", r.compute},
                                {"communicator", r.communicator},
                                {"overlapped_sync", r.overlapped},
                                {"trace", "rank-" + std::to_string(m_rank) + ".trace.json"}};
        if (m_cuda) {
            manifest["cupti"] = !m_a.noCupti;
            manifest["cupti_overhead_ns"] = m_cuda->cuptiOverheadNs();
        }
        if (auto w = partita::writeFileAtomically(m_base + ".manifest.json", manifest.dump(2) + "\n"); !w)
            m_writeError = w.error().str();
    }

    const WorkerArgs& m_a;
    partita::Plan m_plan;
    std::unique_ptr<partita::Communicator> m_comm;
    std::string m_host;
    int m_rank = 0;
    std::string m_base;
    std::unique_ptr<partita::CudaBackend> m_cuda;
    std::string m_writeError;
};

} // namespace

int main(int argc, char** argv)
{
    // One rank of a user's training command (partita-cli run --command):
    // not a plan run, and its arguments are the command's own.
    if (argc > 1 && std::strcmp(argv[1], "--exec-rank") == 0)
        return execRankMain(argc, argv);
    WorkerArgs a;
    if (auto done = parseArgs(argc, argv, a))
        return *done;
    if (auto done = measureOnly(a, &argc, &argv))
        return *done;
    if (a.planPath.empty() || a.out.empty())
        return fail("--plan and --out are required");
    const std::string host = hostName();
    auto text = partita::readTextFile(a.planPath);
    if (!text)
        return fail("on " + host + ": " + text.error().str());
    auto plan = partita::planFromJson(*text, a.planPath);
    if (!plan)
        return fail("on " + host + ": " + plan.error().str());
    std::unique_ptr<partita::Communicator> comm;
    if (partita::startedByMpiLauncher()) {
        auto c = partita::makeMpiCommunicator(*plan, &argc, &argv);
        if (!c)
            return fail("on " + host + ": " + c.error().str());
        comm = std::move(*c);
    } else {
        comm = partita::makeLoneCommunicator();
    }
    PlanRank rank(a, std::move(*plan), std::move(comm), host);
    return rank.run();
}
