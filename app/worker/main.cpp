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
#include <sstream>
#include <unistd.h>

namespace {
std::atomic<bool> g_cancel{false};
void onSignal(int) { g_cancel = true; }
int fail(const std::string& msg)
{
    // One write: the ranks share the launcher's stderr, and a line written
    // piece by piece can be cut by another rank's output.
    const std::string line = "partita-worker: error: " + msg + "\n";
    std::cerr.flush();
    for (size_t done = 0; done < line.size();) {
        const ssize_t n = ::write(2, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += size_t(n);
    }
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

} // namespace

int main(int argc, char** argv)
{
    // One rank of a user's training command (partita-cli run --command):
    // not a plan run, and its arguments are the command's own.
    if (argc > 1 && std::strcmp(argv[1], "--exec-rank") == 0)
        return execRankMain(argc, argv);
    CLI::App app{"Partita worker: runs one rank of an execution plan and traces it"};
    app.set_version_flag("--version", std::string("partita-worker ") + PARTITA_VERSION_STRING);
    std::string planPath, out, backend = "cpu";
    int steps = 3, warmup = 1;
    double scale = 1.0;
    int measureRanks = 0;
    auto* measure = app.add_option("--measure-cpu", measureRanks,
                                   "print this machine measured as a cluster of N CPU ranks (JSON) and exit")
                        ->check(CLI::Range(1, 4096));
    bool calibrateCpu = false;
    auto* calibrate = app.add_flag("--calibrate-cpu", calibrateCpu,
                                   "print this CPU's calibration (sgemm and copy efficiencies by size, JSON) and exit")
                          ->excludes(measure);
    bool calibrateMpi = false;
    auto* calibrateMpiFlag =
        app.add_flag("--calibrate-mpi", calibrateMpi,
                     "under mpirun: time MPI_Allreduce between the ranks by size; rank 0 prints JSON and all exit")
            ->excludes(measure, calibrate);
    app.add_option("--plan", planPath, "execution plan (JSON, from partita-cli simulate --plan-out)")->excludes(measure, calibrate, calibrateMpiFlag);
    app.add_option("--out", out, "folder for rank-R.trace.json and rank-R.manifest.json")->excludes(measure);
    app.add_option("--steps", steps, "measured steps")->check(CLI::Range(1, 100000));
    app.add_option("--warmup", warmup, "warm-up steps, not traced")->check(CLI::Range(0, 100000));
    app.add_option("--shape-scale", scale, "multiply GEMM dimensions, memory traffic and messages by this (0, 1]; recorded")
        ->check(CLI::Range(1e-6, 1.0));
    bool noCupti = false;
    app.add_option("--backend", backend, "compute backend: cpu (OpenBLAS, MPI) or cuda (cuBLAS, NCCL, CUPTI)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    app.add_flag("--no-cupti", noCupti, "cuda: no CUPTI tracing (step times only, to measure tracing's overhead)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (measureRanks > 0) {
        std::cout << partita::clusterToJson(partita::localCpuCluster(measureRanks));
        return 0;
    }
    if (calibrateCpu) {
        auto cal = partita::localCpuCalibration();
        if (!cal)
            return fail(cal.error().str());
        std::cout << partita::calibrationToJson(*cal);
        return 0;
    }
    if (calibrateMpi) {
        if (!partita::startedByMpiLauncher())
            return fail("--calibrate-mpi runs under an MPI launcher: mpirun -np N partita-worker --calibrate-mpi");
        auto sweep = partita::measureMpiAllreduce(&argc, &argv);
        if (!sweep)
            return fail(sweep.error().str());
        if (sweep->rank == 0) {
            nlohmann::json j{{"partita_mpi_allreduce", 1}, {"ranks", sweep->ranks}, {"library", sweep->library},
                             {"allreduce", sweep->samples}};
            std::cout << j.dump(1) << "\n";
        }
        return 0;
    }
    if (planPath.empty() || out.empty())
        return fail("--plan and --out are required");
    const std::string host = hostName();
    auto text = partita::readTextFile(planPath);
    if (!text)
        return fail("on " + host + ": " + text.error().str());
    auto plan = partita::planFromJson(*text, planPath);
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
    const int rank = comm->rank();
    const std::string who = "rank " + std::to_string(rank) + " on " + host;
    auto abortAll = [&](const std::string& msg) {
        fail(who + ": " + msg);
        if (comm->size() > 1)
            comm->abort(3); // peers would wait for this rank forever
        return 2;
    };
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec)
        return abortAll(out + ": " + ec.message());
    std::signal(SIGTERM, onSignal);
    std::signal(SIGINT, onSignal);
    std::cout << "rank " << rank << " host " << host << " pid " << getpid() << " started: " << comm->size()
              << " ranks, " << comm->name() << std::endl;
    const std::string base = out + "/rank-" + std::to_string(rank);
    std::unique_ptr<partita::CudaBackend> cuda;
    std::string writeError;
    auto save = [&](const partita::WorkerResult& r) {
        if (auto w = partita::writeChromeTrace(r.trace, base + ".trace.json"); !w) { // atomic: tmp, rename
            writeError = w.error().str();
            return;
        }
        nlohmann::json manifest{{"rank", rank},
                                {"world", comm->size()},
                                {"host", host},
                                {"pid", getpid()},
                                {"backend", backend},
                                {"plan", planPath},
                                {"strategy", plan->strategy},
                                {"warmup", warmup},
                                {"steps", steps},
                                {"step_s", r.step_s},
                                {"complete", r.complete},
                                {"ops_per_step", r.ops_per_step},
                                {"shape_scale", r.shape_scale},
                                {"compute", r.compute},
                                {"communicator", r.communicator},
                                {"overlapped_sync", r.overlapped},
                                {"trace", "rank-" + std::to_string(rank) + ".trace.json"}};
        if (cuda) {
            manifest["cupti"] = !noCupti;
            manifest["cupti_overhead_ns"] = cuda->cuptiOverheadNs();
        }
        if (auto w = partita::writeFileAtomically(base + ".manifest.json", manifest.dump(2) + "\n"); !w)
            writeError = w.error().str();
    };
    partita::WorkerOptions o;
    o.steps = steps;
    o.warmup = warmup;
    o.shape_scale = scale;
    o.cancel = &g_cancel;
    o.checkpoint = save;
    o.progress = [&](int step, bool isWarmup, double seconds) {
        std::cout << "rank " << rank << " " << (isWarmup ? "warm-up " : "step ") << (isWarmup ? step + 1 : step - warmup + 1)
                  << "/" << (isWarmup ? warmup : steps) << " " << seconds << " s" << std::endl;
    };
    std::unique_ptr<partita::ComputeBackend> cpu;
    partita::ComputeBackend* compute = nullptr;
    partita::Communicator* communicator = comm.get();
    if (backend == "cuda") { // the CUDA plugin, loaded now (cudaplugin.h)
        partita::CudaBackendOptions co;
        co.trace = !noCupti;
        auto b = partita::makeCudaBackend(*plan, *comm, co);
        if (!b)
            return abortAll(b.error().str());
        cuda = std::move(*b);
        compute = cuda.get();
        communicator = cuda.get();
    }
    if (!compute) {
        cpu = partita::makeCpuCompute();
        compute = cpu.get();
    }
    auto r = partita::runWorker(*plan, o, *compute, *communicator);
    if (!r)
        return abortAll(r.error().str());
    if (!writeError.empty())
        return abortAll(writeError);
    std::cout << "rank " << rank << " done: " << base << ".manifest.json" << std::endl;
    return 0;
}
