// The executor's run session (runsession.h), the call partita-cli run and
// the workbench make: what it refuses before anything is stored (data
// rows), a prediction at a shape scale, a real 2-rank CPU run through
// RunSession with its stages in order and its typed outcome as stored, and
// a cancel midway that keeps what the ranks measured.
#include "sessiontest.h"

#include "partita/core/modelio.h"
#include "partita/executor/localmachine.h"
#include "partita/executor/runsession.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QTest>

#include <chrono>
#include <mutex>
#include <thread>

using namespace partita;

namespace {


Strategy dataParallel(int dp)
{
    Strategy s;
    s.name = "tiny";
    s.dp = dp;
    s.micro_batch = 1;
    s.global_batch = dp * 2;
    s.precision = Precision::FP32;
    return s;
}

// A local 2-rank CPU run of the tiny model in `project`.
RunRequest localRun(const QString& project, int steps)
{
    RunRequest r;
    r.project = project.toStdString();
    r.model = test::tinyGpt();
    r.model_label = "tiny.json";
    r.strategy = dataParallel(2);
    r.ranks = 2;
    r.launch.worker = PARTITA_BINARY_DIR "/bin/partita-worker";
    r.launch.steps = steps;
    r.launch.warmup = 1;
    r.source = "tst_runsession";
    return r;
}

// What a session reported, from its thread.
struct Seen
{
    std::mutex mutex;
    std::vector<RunStage> stages;
    std::vector<std::string> notes;
    int lines = 0;
    bool done = false;

    RunEvents events()
    {
        RunEvents ev;
        ev.on_stage = [this](RunStage s) {
            std::lock_guard lock(mutex);
            stages.push_back(s);
        };
        ev.on_note = [this](const std::string& n) {
            std::lock_guard lock(mutex);
            notes.push_back(n);
        };
        ev.on_line = [this](std::string_view, bool) {
            std::lock_guard lock(mutex);
            ++lines;
        };
        return ev;
    }
};

} // namespace

class TestRunSession : public QObject
{
    Q_OBJECT
private slots:
    void refusals_data()
    {
        QTest::addColumn<QString>("change");
        QTest::addColumn<QString>("expect");
        QTest::newRow("no project") << "project" << "stored in a project";
        QTest::newRow("no worker") << "worker" << "/nonexistent/partita-worker";
        QTest::newRow("no strategy") << "strategy" << "names no strategy";
        QTest::newRow("strategy refused") << "make_strategy" << "no such preset";
        QTest::newRow("no such cluster") << "cluster" << "/nonexistent/cluster.json";
        QTest::newRow("ssh without hosts") << "ssh" << "hosts";
        QTest::newRow("cuda without a GPU") << "cuda" << "no CUDA backend";
    }
    void refusals()
    {
        QFETCH(QString, change);
        QFETCH(QString, expect);
        QTemporaryDir dir;
        const QString project = dir.filePath("p.partita");
        RunRequest r = localRun(project, 2);
        r.cluster = "dgx-h100"; // predicted from datasheet figures: nothing measured here
        r.strategy = dataParallel(8);
        if (change == "project")
            r.project.clear();
        else if (change == "worker")
            r.launch.worker = "/nonexistent/partita-worker";
        else if (change == "strategy")
            r.strategy.reset();
        else if (change == "make_strategy") {
            r.strategy.reset();
            r.make_strategy = [](const Model&, const Cluster&) -> Result<Strategy> {
                return Error{"--preset", "x", "no such preset"};
            };
        } else if (change == "cluster")
            r.cluster = "/nonexistent/cluster.json";
        else if (change == "ssh")
            r.launch.kind = LauncherKind::Ssh;
        else if (change == "cuda") {
            // Without the plugin the backend is refused; with it (a build
            // with CUDA) this machine's GPUs are looked for.
            r.launch.backend = "cuda";
            r.cluster = "local";
            if (cudaBackendAvailable()) {
                if (detectLocalMachine().cluster.nodes.front().devices.front().kind == "gpu")
                    QSKIP("this machine has a GPU for the CUDA backend");
                expect = "no GPU on this machine";
            }
        }
        bool ran = false;
        RunEvents ev;
        ev.on_stage = [&](RunStage s) { ran = ran || s == RunStage::Launching; };
        auto out = runStrategy(r, ev);
        QVERIFY(!out);
        QVERIFY2(QString::fromStdString(out.error().str()).contains(expect), out.error().str().c_str());
        QVERIFY(!ran);
        test::expectNothingStored(project); // a refusal leaves no prediction behind
    }

    // A run at a shape scale is predicted at that scale; the plan kept is full size.
    void predictsAtShapeScale()
    {
        QTemporaryDir dir;
        auto store = TraceStore::open(dir.filePath("p.partita").toStdString());
        QVERIFY(store);
        RunRequest r = localRun(dir.filePath("p.partita"), 2);
        r.cluster = "dgx-h100";
        r.strategy = dataParallel(8);
        auto full = predictRun(**store, r);
        QVERIFY2(full, full ? "" : full.error().str().c_str());
        r.launch.shape_scale = 0.25;
        auto scaled = predictRun(**store, r);
        QVERIFY(scaled);
        QCOMPARE(full->plan.world, 8);
        QCOMPARE(scaled->plan.world, 8);
        QVERIFY(scaled->plan == full->plan);
        QVERIFY2(scaled->predicted.step_time < 0.8 * full->predicted.step_time,
                 qPrintable(QString("%1 vs %2").arg(scaled->predicted.step_time).arg(full->predicted.step_time)));
    }

    void runsAndCompares()
    {
        QTemporaryDir dir;
        const QString project = dir.filePath("run.partita");
        Seen seen;
        std::atomic<bool> done{false};
        RunSession session(localRun(project, 2), seen.events(), [&] { done = true; });
        session.start();
        session.wait();
        QVERIFY(done);
        QVERIFY(!session.running());
        auto out = session.result();
        QVERIFY2(out, out ? "" : out.error().str().c_str());
        QVERIFY(out->complete());
        QVERIFY(!out->cancelled());
        QCOMPARE(seen.stages, (std::vector<RunStage>{RunStage::Predicting, RunStage::Launching, RunStage::Comparing}));
        QVERIFY(seen.lines > 0);
        QCOMPARE(out->prediction.plan.world, 2);
        QCOMPARE(out->measured.step_s.size(), size_t(2));
        QVERIFY(out->comparison.measured_step_s > 0);
        QCOMPARE(out->comparison.predicted_step_s, out->prediction.predicted.step_time);
        QVERIFY(out->documents.model > 0 && out->documents.cluster > 0 && out->documents.strategy > 0);
        QVERIFY(!out->not_as_planned.empty()); // the all-reduce algorithm is Open MPI's choice
        // As stored: the measured run names its prediction and what did not run as planned.
        auto store = TraceStore::open(project.toStdString());
        QVERIFY(store);
        auto measured = (*store)->run(out->measured.run_id);
        QVERIFY(measured);
        QCOMPARE(measured->kind, RunKind::Measured);
        QCOMPARE(measured->ranks, 2);
        QCOMPARE(measured->model_id, out->documents.model);
        const auto meta = nlohmann::json::parse(measured->meta);
        QCOMPARE(meta.at("predicted_run").get<int64_t>(), out->predicted_run_id);
        QCOMPARE(meta.at("not_as_planned").get<std::vector<std::string>>(), out->not_as_planned);
        auto predicted = (*store)->run(out->predicted_run_id);
        QVERIFY(predicted);
        QCOMPARE(predicted->kind, RunKind::Predicted);
        QCOMPARE(predicted->source, std::string("tst_runsession"));
        QVERIFY(QFileInfo(QString::fromStdString(out->run_dir) + "/plan.json").isFile());
    }

    void cancelMidway()
    {
        QTemporaryDir dir;
        Seen seen;
        RunSession session(localRun(dir.filePath("cancel.partita"), 100000), seen.events());
        session.start();
        QVERIFY(session.running());
        // Cancelled once the ranks run.
        for (int i = 0; i < 600; ++i) {
            {
                std::lock_guard lock(seen.mutex);
                if (seen.lines > 0)
                    break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
        const auto t0 = std::chrono::steady_clock::now();
        session.cancel();
        session.wait();
        const double stopS = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        QVERIFY2(stopS < 60, qPrintable(QString::number(stopS)));
        auto out = session.result();
        QVERIFY2(out, out ? "" : out.error().str().c_str());
        QVERIFY(!out->complete());
        QVERIFY(out->cancelled());
        QVERIFY(out->predicted_run_id > 0);
    }
};

QTEST_GUILESS_MAIN(TestRunSession)
#include "tst_runsession.moc"
