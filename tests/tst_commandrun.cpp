// partita-cli run --command end to end, with Debian's python3-torch on this
// CPU (gloo): a user's own 2-rank DDP training (a small GPT-2 in plain
// PyTorch with Hugging Face's names, tests/data/torch/train_gpt2.py) and the
// script of Partita's PyTorch export, each rank started with torchrun's
// environment and traced by Partita's module; both ranks' traces stored as
// one run, at least 90 % of every step's CPU operator time attributed to the
// model's layers, the step time within 5 % of what the script logs, the
// prediction stored beside. Locally and through the ssh launcher against a
// real sshd. A rank that raises, one that hangs, a command that does not
// exist and a host that refuses each end with the plan runs' message and
// exit status, and the project keeps what it held.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/pytorch.h"
#include "partita/core/strategy.h"
#include "partita/profiler/tracestore.h"
#include "sshd.h"
#include "testmain.h"
#include "torchranks.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <unistd.h>

using namespace partita;

namespace {

const char* const kGpt2 = R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 256,
                              "n_positions": 64, "_name_or_path": "tiny-gpt2"})";
const QString kFixture = PARTITA_TEST_DATA "/torch/train_gpt2.py";
const QString kPython = test::kSystemPython;

struct Cli
{
    int code = -1;
    QString out, err;
    QJsonObject json;
};

Cli cli(const QStringList& args, int timeoutMs = 300000)
{
    QProcess p;
    p.start(PARTITA_CLI, args);
    if (!p.waitForFinished(timeoutMs))
        qFatal("partita-cli did not finish");
    Cli r{p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError()), {}};
    r.json = QJsonDocument::fromJson(r.out.toUtf8()).object();
    return r;
}

// The strategy the scripts train with: two data-parallel ranks, 32 sequences
// each per step, fp32, dense embeddings (AdamW).
Strategy ddp()
{
    Strategy s;
    s.name = "ddp";
    s.dp = 2;
    s.micro_batch = 32;
    s.global_batch = 64;
    s.precision = Precision::FP32;
    s.sync.sparse = false;
    return s;
}

// Mean of the step times the script itself logged (rank 0's JSON lines)
// for steps [from, from + n).
double loggedMean(const QString& text, int from, int n)
{
    double sum = 0;
    int count = 0;
    for (QString line : text.split('\n')) {
        // torchrun --tee prefixes each worker's lines: "[default0]:".
        if (line.startsWith("[") && line.indexOf("]:") > 0)
            line = line.mid(line.indexOf("]:") + 2);
        if (line.startsWith("{\"step\"")) {
            const QJsonObject j = QJsonDocument::fromJson(line.toUtf8()).object();
            const int step = j["step"].toInt();
            if (step >= from && step < from + n) {
                sum += j["step_time_s"].toDouble();
                ++count;
            }
        }
    }
    return count == n ? sum / n : 0;
}

// What every profiled run is checked for.
void checkProfiled(const Cli& r, const QString& project)
{
    QVERIFY2(r.code == 0, qPrintable(r.err.right(3000)));
    const QJsonObject& j = r.json;
    QVERIFY(j["complete"].toBool());
    QCOMPARE(j["ranks"].toInt(), 2);
    // Both ranks' traces, one run; the prediction beside it.
    auto store = TraceStore::open(project.toStdString());
    QVERIFY(store);
    auto run = (*store)->run(qint64(j["run_id"].toDouble()));
    QVERIFY(run);
    QCOMPARE(run->kind, RunKind::Measured);
    QCOMPARE(run->status, RunStatus::Complete);
    QCOMPARE(run->ranks, 2);
    auto predicted = (*store)->run(qint64(j["predicted_run_id"].toDouble()));
    QVERIFY(predicted);
    QCOMPARE(predicted->kind, RunKind::Predicted);
    QVERIFY(j["predicted_step_time_s"].toDouble() > 0);
    // Every recorded step of both ranks: at least 90 % attributed.
    QCOMPARE(j["step_attribution"].toArray().size(), 2 * 6);
    QString shares;
    for (const QJsonValue& v : j["step_attribution"].toArray()) {
        const QJsonObject st = v.toObject();
        shares += QString(" rank %1 step %2: %3 of %4 ms less %5 ms of collectives;")
                      .arg(st["rank"].toInt())
                      .arg(st["step"].toInt())
                      .arg(st["fraction"].toDouble(), 0, 'f', 3)
                      .arg(st["op_s"].toDouble() * 1e3, 0, 'f', 1)
                      .arg(st["collectives_s"].toDouble() * 1e3, 0, 'f', 1);
    }
    QVERIFY2(j["worst_step_attributed_fraction"].toDouble() >= 0.9, qPrintable(shares));
    // The model's layers, by Partita's names, measured and predicted.
    bool qkv = false;
    for (const QJsonValue& v : j["layers"].toArray()) {
        const QJsonObject l = v.toObject();
        if (l["name"].toString() == "h.0.attention.qkv") {
            qkv = l["layer"].toInt() >= 0 && l["measured_s"].toDouble() > 0 && l["predicted_s"].toDouble() > 0;
        }
    }
    QVERIFY2(qkv, qPrintable(QJsonDocument(j["layers"].toArray()).toJson()));
    // The step time as the script logs it. The six recorded steps follow
    // one waited and one warm-up step: optimizer steps 3 to 8, the
    // script's steps 2 to 7. Its step 7 also holds the profiler writing
    // the trace, after the recorded step ended: the first five compared,
    // as means (a script's step and the profiler's start at different
    // points of the loop; over consecutive steps the difference cancels).
    const QJsonArray steps = j["steps_s"].toArray();
    QCOMPARE(steps.size(), 6);
    double measured = 0;
    for (int k = 0; k < 5; ++k)
        measured += steps[k].toDouble() / 5;
    const double logged = loggedMean(r.err, 2, 5);
    QVERIFY(logged > 0);
    QVERIFY(j["measured_step_time_s"].toDouble() > 0);
    QVERIFY2(std::abs(measured - logged) <= 0.05 * logged,
             qPrintable(QString("measured %1 s, the script logged %2 s; steps %3; ranks %4; log:\n%5")
                            .arg(measured)
                            .arg(logged)
                            .arg(QString(QJsonDocument(j["steps_s"].toArray()).toJson(QJsonDocument::Compact)),
                                 QString(QJsonDocument(j["rank_results"].toArray()).toJson(QJsonDocument::Compact)),
                                 r.err.right(1500))));
}


// The files every run reads: the tiny GPT-2's config and the strategy.
struct Inputs
{
    QTemporaryDir dir;
    QString model, strategy;
    Inputs()
    {
        model = write("gpt2.json", kGpt2);
        strategy = write("ddp.json", QByteArray::fromStdString(strategyToJson(ddp())));
    }
    QString write(const QString& name, const QByteArray& bytes)
    {
        QFile f(dir.filePath(name));
        if (!f.open(QIODevice::WriteOnly))
            qFatal("cannot write %s", qPrintable(f.fileName()));
        f.write(bytes);
        return f.fileName();
    }
    QStringList common(const QString& project, const QString& command) const
    {
        return {"run",     "--command", command,  "--model",   model,     "--strategy", strategy,  "--cluster",
                "local",   "--ranks",   "2",      "--seq-len", "64",      "--project",  project,   "--profile-steps",
                "1,1,6",   "--json"};
    }
};

} // namespace

class TestCommandRun : public QObject
{
    Q_OBJECT
private:
    Inputs m_in;
    QString m_export;

    QString write(const QString& name, const QByteArray& bytes) { return m_in.write(name, bytes); }
    QStringList common(const QString& project, const QString& command) const { return m_in.common(project, command); }
    QString path(const QString& name) const { return m_in.dir.filePath(name); }

private slots:
    void initTestCase()
    {
        if (!test::hasSystemTorch())
            QSKIP("Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)");
        auto model = modelFromHfConfig(kGpt2, "gpt2.json");
        QVERIFY(model);
        Cluster c = *clusterPreset("p3.16xlarge");
        c.nodes.front().devices.resize(2);
        auto ex = exportPyTorch(*model, c, ddp(), 64, ExportHeader{});
        QVERIFY2(ex, ex ? "" : ex.error().str().c_str());
        m_export = write("train_export.py", QByteArray::fromStdString(ex->script));
    }

    void profilesTraining_data()
    {
        QTest::addColumn<QString>("script");
        QTest::addColumn<QString>("args");
        QTest::addColumn<bool>("fromConfig"); // predicted from the script's own configuration (--config), no --model
        QTest::newRow("plain PyTorch, Hugging Face's names") << kFixture << "--steps 9 --batch 32" << false;
        QTest::newRow("Partita's PyTorch export") << QString() << "--steps 9" << false;
        QTest::newRow("the export, predicted from its --config") << QString() << "--steps 9" << true;
        // A torchrun line runs once per node and starts the node's ranks.
        // Bookworm's torchrun (torch 1.13 on Python 3.11) needs --redirects
        // 1 --tee 1: its default, 0, is an IntFlag member 3.11 does not
        // iterate, and its elastic agent fails in to_map without them.
        QTest::newRow("a torchrun line, once per node")
            << "-m torch.distributed.run --redirects 1 --tee 1 --nproc_per_node 2 " + kFixture << "--steps 9 --batch 32"
            << false;
    }
    void profilesTraining()
    {
        QFETCH(QString, script);
        QFETCH(QString, args);
        QFETCH(bool, fromConfig);
        static int n = 0;
        const QString project = path(QString("local-%1.partita").arg(++n));
        QStringList a = common(project, kPython + " " + (script.isEmpty() ? m_export : script) + " " + args);
        if (fromConfig) {
            for (const char* opt : {"--model", "--strategy"})
                a.remove(a.indexOf(opt), 2);
            a << "--config" << m_export;
        }
        const Cli r = cli(a);
        checkProfiled(r, project);
    }

    void overSsh()
    {
        test::Sshd sshd;
        if (!sshd.start())
            QSKIP(qPrintable("no sshd to launch through: " + sshd.error));
        const QString hosts = write("ssh-hosts", "partita-node slots=2\n");
        const QString project = path("ssh.partita");
        QStringList args = common(project, kPython + " " + kFixture + " --steps 9 --batch 32");
        args << "--launcher" << "ssh" << "--hosts" << hosts << "--ssh-config" << sshd.config << "--master-addr"
             << "127.0.0.1" << "--remote-dir" << path("remote");
        checkProfiled(cli(args), project);
    }

    // Configurations that cannot be predicted: refused before anything runs.
    void badConfigs_data()
    {
        QTest::addColumn<QString>("command");
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<QString>("message");
        QTest::newRow("not a configuration") << "python3 train.py" << QStringList{"--config", "notes.txt"}
                                             << "notes.txt: is no framework configuration";
        QTest::newRow("no such file") << "python3 train.py" << QStringList{"--config", "missing.json"} << "missing.json";
        QTest::newRow("the command's DeepSpeed file says no model")
            << "python3 train.py --deepspeed_config ds.json" << QStringList{} << "ds.json: says no model";
    }
    void badConfigs()
    {
        QFETCH(QString, command);
        QFETCH(QStringList, extra);
        QFETCH(QString, message);
        write("notes.txt", "remember the milk\n");
        write("ds.json", R"({"train_batch_size": 16, "train_micro_batch_size_per_gpu": 8, "zero_optimization": {"stage": 1}})");
        const QString project = path("bad-config.partita");
        QStringList args{"run", "--command", command, "--cluster", "local", "--ranks", "2", "--project", project};
        for (QString& e : extra)
            if (e.endsWith(".txt") || e.endsWith(".json"))
                e = path(e);
        QProcess p;
        p.setWorkingDirectory(m_in.dir.path()); // the command's ds.json is read from where it runs
        p.start(PARTITA_CLI, args + extra);
        QVERIFY(p.waitForFinished(120000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(p.exitCode() != 0 && p.exitCode() != 3, qPrintable(err));
        QVERIFY2(err.contains(message), qPrintable(err));
        QVERIFY2(!err.contains("rank 0"), qPrintable(err)); // nothing ran
    }

    // Rows: the command (or a launcher's options) and what the message says.
    void failures_data()
    {
        QTest::addColumn<QString>("command");
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<QStringList>("message");
        QTest::addColumn<bool>("traced"); // some rank's trace is kept, marked incomplete
        const QString gpt = kPython + " " + kFixture + " --steps 9 --batch 32";
        QTest::newRow("a rank raises") << gpt + " --fail-rank 1 --fail-step 4" << QStringList{}
                                       << QStringList{"rank 1 on ", "RuntimeError: rank 1 failed on purpose at step 4"} << true;
        QTest::newRow("a rank hangs") << gpt + " --fail-rank 1 --fail-step 4 --hang" << QStringList{"--timeout", "30"}
                                      << QStringList{"no result within the 30 s timeout"} << true;
        QTest::newRow("no such interpreter") << "/usr/bin/python3.99 train.py" << QStringList{}
                                             << QStringList{"rank 0 on ", "cannot run /usr/bin/python3.99: No such file or directory"}
                                             << false;
        QTest::newRow("no such script") << kPython + " missing.py" << QStringList{}
                                        << QStringList{"missing.py: no such script"} << false;
        QTest::newRow("the host refuses") << gpt << QStringList{"--launcher", "ssh", "--hosts", "unreachable"}
                                          << QStringList{"host unreachable-node", "Connection refused"} << false;
    }
    void failures()
    {
        QFETCH(QString, command);
        QFETCH(QStringList, extra);
        QFETCH(QStringList, message);
        QFETCH(bool, traced);
        test::Sshd sshd; // its client configuration names the host that refuses
        if (extra.contains("unreachable")) {
            if (!sshd.start())
                QSKIP(qPrintable("no ssh client configuration to refuse through: " + sshd.error));
            extra.replace(extra.indexOf("unreachable"), write("refusing-hosts", "unreachable-node slots=2\n"));
            extra << "--ssh-config" << sshd.config << "--remote-dir" << path("remote");
        }
        // A project that already holds a run: it must keep it.
        const QString project = path(QString("fail-%1.partita").arg(QTest::currentDataTag()).replace(' ', '-'));
        const Cli first = cli({"simulate", "--model", m_in.model, "--cluster", "p3.16xlarge", "--project", project});
        QCOMPARE(first.code, 0);
        QStringList args = common(project, command);
        args << extra;
        const Cli r = cli(args);
        QCOMPARE(r.code, 3);
        for (const QString& m : message)
            QVERIFY2(r.json["error"].toString().contains(m), qPrintable(r.json["error"].toString() + "\n" + r.err.right(2000)));
        QVERIFY2(r.err.contains("partita-cli: error: the run failed: "), qPrintable(r.err.right(2000)));
        QCOMPARE(r.json["complete"].toBool(), false);
        auto store = TraceStore::open(project.toStdString());
        QVERIFY(store);
        auto check = (*store)->integrityCheck();
        QVERIFY(check && *check == "ok");
        auto runs = (*store)->runs();
        QVERIFY(runs);
        QCOMPARE(runs->front().name.find("(predicted)") != std::string::npos || runs->size() >= 2, true);
        const qint64 id = qint64(r.json["run_id"].toDouble());
        QCOMPARE(id > 0, traced);
        if (traced) {
            auto run = (*store)->run(id);
            QVERIFY(run);
            QCOMPARE(run->status, RunStatus::Incomplete);
        }
    }
};

// Through a real Slurm (tst_commandrun_slurm; CTest starts a throwaway
// single-node cluster first: tests/slurm/slurm-cluster.sh): srun starts the
// ranks, partita-worker --exec-rank reads their place from SLURM_PROCID; or
// one torchrun per node, which starts the node's ranks.
class TestCommandRunSlurm : public QObject
{
    Q_OBJECT
private slots:
    void overSlurm_data()
    {
        QTest::addColumn<QString>("command"); // after the interpreter
        QTest::newRow("a rank's command") << kFixture + " --steps 9 --batch 32";
        QTest::newRow("a torchrun line, once per node")
            << "-m torch.distributed.run --redirects 1 --tee 1 --nproc_per_node 2 " + kFixture + " --steps 9 --batch 32";
    }
    void overSlurm()
    {
        QFETCH(QString, command);
        if (!test::hasSystemTorch())
            QSKIP("Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)");
        if (QStandardPaths::findExecutable("srun").isEmpty())
            QSKIP("no Slurm on this machine (packaging/install-deps.sh installs slurm-wlm)");
        QProcess ping;
        ping.start("scontrol", {"ping"});
        if (!ping.waitForFinished(10000) || !ping.readAllStandardOutput().contains("UP"))
            QSKIP("Slurm is installed but no controller answers scontrol ping (CTest starts one: slurm_cluster_start)");
        Inputs in;
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        const QString hosts = in.write("slurm-hosts", QByteArray(host) + " slots=2\n");
        const QString project = in.dir.filePath("slurm.partita");
        QStringList args = in.common(project, kPython + " " + command);
        args << "--launcher" << "slurm" << "--hosts" << hosts;
        checkProfiled(cli(args), project);
    }
};

PARTITA_TEST_SPLIT_GUILESS_MAIN(TestCommandRun, TestCommandRunSlurm, "--slurm")
#include "tst_commandrun.moc"
