// Launchers and measured runs: the commands mpirun, ssh and srun get; failure
// messages read out of Open MPI's and the workers' words; real CPU runs of
// 1, 2 and 4 ranks through mpirun (every plan op exactly once per rank per
// measured step, the run stored); a rank killed mid-run and a rank that
// hangs (the run aborted, kept incomplete, the message naming the rank); a
// 2-rank run through the ssh launcher against a real sshd on 127.0.0.1 with
// throwaway keys, and an unreachable host; apart (tst_launcher_slurm), a run
// through a real Slurm controller.
#include "storetest.h"
#include "testmain.h"
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/plan.h"
#include "partita/executor/launcher.h"
#include "sshd.h"
#include "partita/executor/measuredrun.h"
#include "partita/executor/worker.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <thread>
#include <unistd.h>

using namespace partita;
using partita::test::openOrDie;

namespace {

const char* kWorker = PARTITA_BINARY_DIR "/bin/partita-worker";

Model tinyGpt()
{
    auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 4,
                                   "n_positions": 64, "vocab_size": 512})", "tiny-gpt2");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

Cluster devices(int n)
{
    std::string devs;
    for (int i = 0; i < n; ++i)
        devs += std::string(i ? ", " : "") + R"({"preset": "a100-sxm4-80gb"})";
    auto c = clusterFromJson(R"({"partita_cluster": 1, "name": "test", "nodes": [{"devices": [)" + devs +
                                 R"(], "intra": {"kind": "nvswitch", "bandwidth": "300 GB/s", "latency": "1 us"}}]})",
                             "test.json");
    if (!c)
        qFatal("%s", c.error().str().c_str());
    return *c;
}

Plan planFor(int ranks, int tp, int pp, int zero, const std::string& sync = {})
{
    const Model m = tinyGpt();
    const Cluster c = devices(ranks);
    Strategy s;
    s.name = "test";
    s.tp = tp;
    s.pp = pp;
    s.dp = ranks / (tp * pp);
    s.micro_batch = 1;
    s.global_batch = s.dp * (pp > 1 ? 4 : 2);
    s.zero_stage = zero;
    s.precision = Precision::BF16;
    s.fp32_grad_accumulation = tp > 1 || pp > 1;
    if (!sync.empty()) {
        auto parsed = strategyFromJson(R"({"partita_strategy": 1, "name": "ps", "mesh": {"dp": )" + std::to_string(s.dp) +
                                           R"(}, "global_batch": )" + std::to_string(s.global_batch) +
                                           R"(, "micro_batch": 1, "precision": "bf16", "sync": )" + sync + "}",
                                       "ps.json");
        if (!parsed)
            qFatal("%s", parsed.error().str().c_str());
        s = *parsed;
    }
    auto p = lowerPlan(m, c, s, 64);
    if (!p)
        qFatal("%s", p.error().str().c_str());
    return *p;
}

LaunchSpec localSpec(int steps = 2)
{
    LaunchSpec s;
    s.kind = LauncherKind::Local;
    s.worker = kWorker;
    s.steps = steps;
    s.warmup = 1;
    s.timeout_s = 120;
    return s;
}

// The ops a rank of the plan runs in one step, as the worker numbers them.
std::set<int64_t> expectedOps(const Plan& plan, int rank)
{
    const RankClass* rc = rankClassOf(plan, rank);
    std::set<int64_t> ops;
    const bool zero3 = plan.zero_stage == 3 && plan.dp * plan.cp > 1;
    for (size_t si = 0; si < rc->steps.size(); ++si) {
        const Step& st = rc->steps[si];
        switch (st.kind) {
        case StepKind::Run: {
            const Program& p = plan.programs[size_t(st.program)];
            for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
                const Kernel& k = p.kernels[ki];
                const int group = k.kind != KernelKind::Collective ? 2 : k.group == KernelGroup::Expert ? plan.ep
                                  : k.group == KernelGroup::Context ? plan.cp
                                                                    : plan.tp;
                if (group > 1)
                    ops.insert(planOpId(int(si), int(ki)));
            }
            if (zero3 && p.phase != Phase::Recompute)
                ops.insert(planOpId(int(si), kPreGather));
            if (zero3 && p.phase == Phase::Backward)
                ops.insert(planOpId(int(si), kPostScatter));
            break;
        }
        case StepKind::Send:
        case StepKind::Recv: ops.insert(planOpId(int(si), 0)); break;
        case StepKind::Sync:
            if (plan.dp * plan.cp > 1) {
                if (st.method == SyncMethod::ParameterServer) {
                    const int k = std::clamp(st.shards > 0 ? st.shards : 1, 1, plan.dp * plan.cp);
                    for (int j = 0; j < 2 * k; ++j)
                        ops.insert(planOpId(int(si), j));
                } else {
                    ops.insert(planOpId(int(si), 0));
                }
            }
            break;
        case StepKind::Optimizer:
            ops.insert(planOpId(int(si), 0));
            if ((plan.zero_stage == 1 || plan.zero_stage == 2) && plan.dp * plan.cp > 1)
                ops.insert(planOpId(int(si), kPostGather));
            break;
        }
    }
    return ops;
}

// Watches the ranks' start lines for their pids and does `act` to `rank`
// once it reports `line` (e.g. "rank 1 step 3/").
struct RankWatcher
{
    std::map<int, int> pid;
    bool done = false;
    std::function<void(std::string_view, bool)> watch(int rank, const std::string& line, int signal)
    {
        return [this, rank, line, signal](std::string_view text, bool) {
            std::cmatch m;
            static const std::regex started(R"(^rank (\d+) host \S+ pid (\d+) started)");
            if (std::regex_search(text.begin(), text.end(), m, started))
                pid[std::stoi(m[1])] = std::stoi(m[2]);
            if (!done && text.rfind(line, 0) == 0 && pid.count(rank)) {
                done = true;
                ::kill(pid[rank], signal);
            }
        };
    }
};


} // namespace

class TestLauncher : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_tmp;

    std::unique_ptr<TraceStore> store(const QString& name)
    {
        auto s = TraceStore::open(m_tmp.filePath(name).toStdString());
        if (!s)
            qFatal("%s", s.error().str().c_str());
        return std::move(*s);
    }

private slots:
    void commands_data()
    {
        QTest::addColumn<int>("kind");
        QTest::addColumn<QStringList>("options");
        QTest::addColumn<QStringList>("expect");
        QTest::addColumn<int>("ranks");
        QTest::newRow("local") << int(LauncherKind::Local) << QStringList{}
                               << QStringList{"mpirun", "-np 4", "--oversubscribe", "--mca mpi_yield_when_idle 1", "OPENBLAS_NUM_THREADS=1", "--plan p.json"}
                               << 4;
        // One rank: the worker alone, no MPI job (no mpirun needed on the machine).
        QTest::newRow("local, one rank") << int(LauncherKind::Local) << QStringList{}
                                         << QStringList{"env OPENBLAS_NUM_THREADS=1 ", "--plan p.json"} << 1;
        QTest::newRow("ssh") << int(LauncherKind::Ssh) << QStringList{"-F", "/x/ssh_config"}
                             << QStringList{"--hostfile hf", "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -F /x/ssh_config",
                                            "plm_rsh_no_tree_spawn"}
                             << 4;
        QTest::newRow("slurm") << int(LauncherKind::Slurm) << QStringList{}
                               << QStringList{"srun", "--nodes=2", "--nodelist=a,b", "--ntasks=4", "--kill-on-bad-exit=1",
                                              "--export=ALL,OPENBLAS_NUM_THREADS=1"}
                               << 4;
    }
    void commands()
    {
        QFETCH(int, kind);
        QFETCH(QStringList, options);
        QFETCH(QStringList, expect);
        QFETCH(int, ranks);
        LaunchSpec s = localSpec();
        s.kind = LauncherKind(kind);
        s.ranks = ranks;
        s.plan = "p.json";
        s.out = "out";
        s.hostfile = "hf";
        s.hosts = {{"a", 2}, {"b", 2}};
        for (const QString& o : options)
            s.ssh_options.push_back(o.toStdString());
        auto cmd = launchCommand(s);
        QVERIFY2(cmd, cmd ? "" : cmd.error().str().c_str());
        QString line;
        for (const std::string& a : *cmd)
            line += QString::fromStdString(a) + " ";
        for (const QString& e : expect)
            QVERIFY2(line.contains(e), qPrintable(line));
        QVERIFY(line.contains(QString(kWorker)));
        QCOMPARE(line.contains("mpirun"), s.kind != LauncherKind::Slurm && ranks > 1);
        if (s.kind != LauncherKind::Slurm && ranks > 1)
            QCOMPARE(line.contains("--allow-run-as-root"), geteuid() == 0);
        QVERIFY(QString::fromStdString(hostfileText(s)).contains("b slots=2"));
    }

    // The ssh launcher's hostfile: written in the run's folder, named in
    // the spec; refused without a folder on the hosts.
    void sshHostfile()
    {
        QTemporaryDir dir;
        LaunchSpec s;
        s.kind = LauncherKind::Ssh;
        s.hosts = {{"a", 2}, {"b", 1}};
        auto none = writeSshHostfile(s, dir.path().toStdString(), "");
        QVERIFY(!none);
        QVERIFY2(none.error().str().find("needs a folder on the hosts") != std::string::npos, none.error().str().c_str());
        QVERIFY(writeSshHostfile(s, dir.path().toStdString(), "/tmp/partita-run"));
        QCOMPARE(QString::fromStdString(s.hostfile), dir.filePath("hostfile"));
        QFile f(dir.filePath("hostfile"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()), QString::fromStdString(hostfileText(s)));
    }

    void refusals_data()
    {
        QTest::addColumn<int>("kind");
        QTest::addColumn<int>("slotCount");
        QTest::addColumn<QStringList>("options");
        QTest::addColumn<QString>("message");
        QTest::newRow("host keys unchecked") << int(LauncherKind::Ssh) << 4 << QStringList{"-o", "StrictHostKeyChecking=no"}
                                             << "host keys are always verified";
        QTest::newRow("known hosts discarded") << int(LauncherKind::Ssh) << 4 << QStringList{"-o", "UserKnownHostsFile=/dev/null"}
                                               << "host keys are always verified";
        QTest::newRow("option scp cannot read") << int(LauncherKind::Ssh) << 4 << QStringList{"-p", "2222"} << "forms scp reads";
        QTest::newRow("too few slots") << int(LauncherKind::Ssh) << 3 << QStringList{} << "3 slots for 4 ranks";
        QTest::newRow("slurm without hosts") << int(LauncherKind::Slurm) << 0 << QStringList{} << "needs hosts";
    }
    void refusals()
    {
        QFETCH(int, kind);
        QFETCH(int, slotCount);
        QFETCH(QStringList, options);
        QFETCH(QString, message);
        LaunchSpec s = localSpec();
        s.kind = LauncherKind(kind);
        s.ranks = 4;
        s.plan = s.out = s.hostfile = "x";
        if (slotCount)
            s.hosts = {{"a", slotCount}};
        for (const QString& o : options)
            s.ssh_options.push_back(o.toStdString());
        auto cmd = launchCommand(s);
        QVERIFY(!cmd);
        QVERIFY2(QString::fromStdString(cmd.error().str()).contains(message), cmd.error().str().c_str());
    }

    void explain_data()
    {
        QTest::addColumn<QString>("log");
        QTest::addColumn<int>("rank");
        QTest::addColumn<QString>("host");
        QTest::addColumn<QString>("cause");
        QTest::newRow("killed") << "rank 1 host n2 pid 77 started\nmpirun noticed that process rank 1 with PID 77 on node n2 "
                                   "exited on signal 9 (Killed).\n"
                                << 1 << "n2" << "killed by signal 9";
        QTest::newRow("worker error") << "partita-worker: error: rank 3 on n4: MPI: allreduce on the data-parallel group: "
                                         "MPI_ERR_TRUNCATE\nMPI_ABORT was invoked on rank 3\n"
                                      << 3 << "n4" << "MPI_ERR_TRUNCATE";
        QTest::newRow("a peer's abort logged before the raise")
            << "partita-worker: error: rank 0 on vm: the command was killed by signal 6 (Aborted): munmap_chunk(): "
               "invalid pointer\n"
               "partita-worker: error: rank 1 on vm: the command exited with code 1: RuntimeError: failed on purpose\n"
            << 1 << "vm" << "failed on purpose";
        QTest::newRow("a crash before its peer's echo")
            << "partita-worker: error: rank 1 on vm: the command exited with code 1: RuntimeError: Connection closed "
               "by peer [127.0.0.1]:5555\n"
               "partita-worker: error: rank 0 on vm: the command was killed by signal 11 (Segmentation fault)\n"
            << 0 << "vm" << "signal 11";
        QTest::newRow("ranks failing alike, in any order")
            << "partita-worker: error: rank 1 on n1: cannot run /x/py: No such file or directory\n"
               "partita-worker: error: rank 0 on n0: cannot run /x/py: No such file or directory\n"
            << 0 << "n0" << "No such file or directory (2 ranks failed alike)";
        QTest::newRow("exit code") << "rank 2 host n3 pid 9 started\n  Process name: [[11621,1],2]\n  Exit code:    7\n"
                                   << 2 << "n3" << "exited with code 7";
        QTest::newRow("bad plan") << "partita-worker: error: on n1: plan.json: No such file or directory\n" << -1 << "n1"
                                  << "No such file";
        QTest::newRow("ssh refused") << "ssh: connect to host 10.0.0.9 port 22: Connection refused\nORTE was unable to "
                                        "reliably start one or more daemons.\n"
                                     << -1 << "" << "Connection refused";
        QTest::newRow("host key") << "Host key verification failed.\nORTE was unable to reliably start one or more daemons.\n"
                                  << -1 << "" << "Host key verification failed";
    }
    void explain()
    {
        QFETCH(QString, log);
        QFETCH(int, rank);
        QFETCH(QString, host);
        QFETCH(QString, cause);
        LaunchResult r;
        r.log = log.toStdString();
        r.exit_code = 1;
        explainFailure(r, localSpec());
        QCOMPARE(r.failed_rank, rank);
        QCOMPARE(QString::fromStdString(r.failed_host), host);
        QVERIFY2(QString::fromStdString(r.cause).contains(cause), r.cause.c_str());
        QVERIFY(QString::fromStdString(r.message).contains(cause));
    }

    // Real runs under mpirun: every plan op exactly once per rank per measured step.
    void localRuns_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<int>("tp");
        QTest::addColumn<int>("pp");
        QTest::addColumn<int>("zero");
        QTest::addColumn<QString>("sync");
        QTest::newRow("1 rank") << 1 << 1 << 1 << 0 << "";
        QTest::newRow("2 ranks, data parallel") << 2 << 1 << 1 << 0 << "";
        QTest::newRow("2 ranks, parameter server") << 2 << 1 << 1 << 0 << R"({"method": "ps", "ps_shards": 2})";
        QTest::newRow("4 ranks, ZeRO-1") << 4 << 1 << 1 << 1 << "";
        QTest::newRow("4 ranks, ZeRO-3") << 4 << 1 << 1 << 3 << "";
        QTest::newRow("4 ranks, tp 2 x pp 2") << 4 << 2 << 2 << 0 << "";
        QTest::newRow("4 ranks, pp 4") << 4 << 1 << 4 << 0 << "";
    }
    void localRuns()
    {
        QFETCH(int, ranks);
        QFETCH(int, tp);
        QFETCH(int, pp);
        QFETCH(int, zero);
        QFETCH(QString, sync);
        const Plan plan = planFor(ranks, tp, pp, zero, sync.toStdString());
        QCOMPARE(plan.world, ranks);
        auto st = store("local.partita");
        MeasuredRunOptions o;
        o.launch = localSpec(2);
        o.run_dir = m_tmp.filePath(QString("local-%1").arg(QTest::currentDataTag()).replace(' ', '_')).toStdString();
        o.info.name = QTest::currentDataTag();
        auto r = executeRun(*st, plan, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QVERIFY2(r->complete, (r->launch.message + "\n" + r->launch.log).c_str());
        QVERIFY(r->run_id > 0);
        QCOMPARE(int(r->ranks.size()), ranks);
        QCOMPARE(int(r->step_s.size()), 2);
        auto info = st->run(r->run_id);
        QVERIFY(info);
        QCOMPARE(info->kind, RunKind::Measured);
        QCOMPARE(info->status, RunStatus::Complete);
        QCOMPARE(info->ranks, ranks);
        std::map<std::pair<int, int64_t>, int> seen;
        std::map<int, int> stepsOf;
        auto each = st->forEachEvent(r->run_id, [&](const StoredEvent& e) {
            if (e.record.kind == TraceKind::Step)
                ++stepsOf[e.record.rank];
            else
                ++seen[{e.record.rank, e.record.op}];
        });
        QVERIFY(each);
        for (int rank = 0; rank < ranks; ++rank) {
            QCOMPARE(stepsOf[rank], 2);
            const std::set<int64_t> expected = expectedOps(plan, rank);
            int found = 0;
            for (const auto& [key, n] : seen)
                if (key.first == rank) {
                    QVERIFY2(expected.count(key.second), qPrintable(QString("rank %1: unexpected op %2").arg(rank).arg(key.second)));
                    QCOMPARE(n, 2); // once per measured step
                    ++found;
                }
            QCOMPARE(found, int(expected.size()));
            QCOMPARE(r->ranks[size_t(rank)].ops_per_step, int64_t(expected.size()));
        }
    }

    // calibrate --local's collectives: MPI_Allreduce between two ranks by
    // size, the slowest rank's median, printed by rank 0 as JSON; without an
    // MPI launcher the worker says how to start it.
    void mpiAllreduceSweep()
    {
        if (QStandardPaths::findExecutable("mpirun").isEmpty())
            QSKIP("no mpirun on this machine (Debian: openmpi-bin)");
        QProcess alone;
        alone.start(kWorker, {"--calibrate-mpi"});
        QVERIFY(alone.waitForFinished(60000));
        QVERIFY(alone.exitCode() != 0);
        QVERIFY(QString::fromUtf8(alone.readAllStandardError()).contains("mpirun -np N partita-worker --calibrate-mpi"));
        LaunchSpec spec;
        spec.ranks = 2;
        auto argv = launchCommand(spec, {kWorker, "--calibrate-mpi"});
        QVERIFY2(argv, argv ? "" : argv.error().str().c_str());
        QStringList args;
        for (const std::string& a : *argv)
            args << QString::fromStdString(a);
        QProcess p;
        p.start(args.takeFirst(), args);
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
        const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        QCOMPARE(j["partita_mpi_allreduce"].toInt(), 1);
        QCOMPARE(j["ranks"].toInt(), 2);
        const QJsonArray s = j["allreduce"].toArray();
        QCOMPARE(s.size(), 5);
        double bytes = 65536;
        for (const QJsonValue& v : s) {
            QCOMPARE(v.toArray()[0].toDouble(), bytes);
            QVERIFY(v.toArray()[1].toDouble() > 0);
            bytes *= 4;
        }
        QVERIFY(s.last().toArray()[1].toDouble() > s.first().toArray()[1].toDouble());
    }

    // A rank killed mid-run: every rank stops, what was measured is kept, the message names the rank.
    void killedRank()
    {
        const Plan plan = planFor(2, 1, 1, 0);
        auto st = store("killed.partita");
        MeasuredRunOptions o;
        o.launch = localSpec(100000);
        o.run_dir = m_tmp.filePath("killed").toStdString();
        o.info.name = "killed";
        RankWatcher w;
        o.on_line = w.watch(1, "rank 1 step 3/", SIGKILL);
        auto r = executeRun(*st, plan, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QVERIFY(w.done);
        QVERIFY(!r->complete);
        QCOMPARE(r->launch.failed_rank, 1);
        QVERIFY2(QString::fromStdString(r->launch.message).contains("signal 9"), r->launch.message.c_str());
        QVERIFY(r->run_id > 0);
        auto info = st->run(r->run_id);
        QCOMPARE(info->status, RunStatus::Incomplete);
        QVERIFY(QString::fromStdString(info->meta).contains("signal 9"));
        // The steps each rank finished before the kill are in the store.
        auto steps = st->steps(r->run_id);
        QVERIFY(steps && steps->size() >= 2);
        QVERIFY(st->integrityCheck().value() == "ok");
    }

    // A rank that stops answering: the timeout terminates every rank.
    void hungRank()
    {
        const Plan plan = planFor(2, 1, 1, 0);
        auto st = store("hung.partita");
        MeasuredRunOptions o;
        o.launch = localSpec(100000);
        o.launch.timeout_s = 15; // startup included: generous for a loaded machine
        o.run_dir = m_tmp.filePath("hung").toStdString();
        o.info.name = "hung";
        RankWatcher w;
        o.on_line = w.watch(0, "rank 0 step 2/", SIGSTOP);
        auto r = executeRun(*st, plan, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QVERIFY(w.done);
        QVERIFY(r->launch.timed_out);
        QVERIFY(!r->complete);
        QVERIFY(r->launch.failed_rank >= 0);
        QVERIFY2(QString::fromStdString(r->launch.message).contains("15 s timeout"), r->launch.message.c_str());
        // Terminated, not left behind (a zombie waits for a reaper that may not be init).
        QFile stat(QString("/proc/%1/stat").arg(w.pid[0]));
        const QByteArray state = stat.open(QIODevice::ReadOnly) ? stat.readAll() : QByteArray();
        QVERIFY2(state.isEmpty() || state.contains(") Z "), state.constData());
        QCOMPARE(st->run(r->run_id)->status, RunStatus::Incomplete);
    }

    // Two ranks through the ssh launcher: a real sshd on 127.0.0.1, throwaway keys, host keys verified.
    void sshLauncher()
    {
        test::Sshd sshd;
        QVERIFY2(sshd.start(), qPrintable(sshd.error));
        const Plan plan = planFor(2, 1, 1, 0);
        auto st = store("ssh.partita");
        MeasuredRunOptions o;
        o.launch = localSpec(2);
        o.launch.kind = LauncherKind::Ssh;
        o.launch.hosts = {{"partita-node", 2}};
        o.launch.ssh_options = {"-F", sshd.config.toStdString()};
        o.run_dir = m_tmp.filePath("ssh").toStdString();
        o.remote_dir = m_tmp.filePath("ssh-remote").toStdString();
        o.info.name = "over ssh";
        auto r = executeRun(*st, plan, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QVERIFY2(r->complete, (r->launch.message + "\n" + r->launch.log).c_str());
        QCOMPARE(int(r->ranks.size()), 2);
        // The files came back over scp into the run folder.
        QVERIFY(QFile::exists(m_tmp.filePath("ssh/ranks/rank-1.trace.json")));
        QCOMPARE(st->run(r->run_id)->ranks, 2);
        const QString hostfile = QString::fromStdString(o.run_dir) + "/hostfile";
        QFile hf(hostfile);
        QVERIFY(hf.open(QIODevice::ReadOnly));
        QVERIFY(hf.readAll().contains("partita-node slots=2"));

        // A host nobody answers on: nothing runs, the message names the host.
        o.launch.hosts = {{"unreachable-node", 2}};
        o.run_dir = m_tmp.filePath("ssh-unreachable").toStdString();
        auto u = executeRun(*st, plan, o);
        QVERIFY2(u, u ? "" : u.error().str().c_str());
        QVERIFY(!u->complete);
        QCOMPARE(u->run_id, int64_t(0));
        QCOMPARE(QString::fromStdString(u->launch.failed_host), QString("unreachable-node"));
        QVERIFY2(QString::fromStdString(u->launch.message).contains("Connection refused"), u->launch.message.c_str());
    }
};

// Runs through a real Slurm controller (tst_launcher_slurm): skipped, with
// the reason, on a machine without one.
class TestLauncherSlurm : public QObject
{
    Q_OBJECT
private slots:
    void slurm()
    {
        if (QStandardPaths::findExecutable("srun").isEmpty() || QStandardPaths::findExecutable("scontrol").isEmpty())
            QSKIP("no Slurm on this machine (srun and scontrol are not installed): the generated srun command is "
                  "tested in commands(slurm); running it needs a slurmctld and slurmd");
        QProcess ping;
        ping.start("scontrol", {"ping"});
        if (!ping.waitForFinished(10000) || !ping.readAllStandardOutput().contains("UP"))
            QSKIP("Slurm is installed but no controller answers scontrol ping");
        const Plan plan = planFor(2, 1, 1, 0);
        QTemporaryDir tmp;
        auto st = openOrDie(tmp.filePath("slurm.partita").toStdString());
        MeasuredRunOptions o;
        o.launch = localSpec(2);
        o.launch.kind = LauncherKind::Slurm;
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        o.launch.hosts = {{host, 2}};
        o.run_dir = tmp.filePath("slurm").toStdString();
        o.info.name = "slurm";
        auto r = executeRun(*st, plan, o);
        QVERIFY2(r && r->complete, r ? r->launch.message.c_str() : r.error().str().c_str());
    }
};

PARTITA_TEST_SPLIT_GUILESS_MAIN(TestLauncher, TestLauncherSlurm, "--slurm")
#include "tst_launcher.moc"
