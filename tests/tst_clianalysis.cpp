// partita-cli's many-rank analyses end to end: `trace stragglers` and
// `trace critical-path` on runs made by tests/synthranks.h and on HTA's
// critical-path test trace (tests/data/hta): exit codes, JSON and text.
#include "clitest.h"
#include "synthranks.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

class TestCliAnalysis : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    // A run of `ranks` data-parallel ranks, rank 6 slow in layer 2's backward GEMM.
    int64_t synthetic(const QString& project, int ranks)
    {
        const partita::test::SynthOptions o{.ranks = ranks, .slow_rank = 6, .slow_kernel = "ampere_sgemm_64x64_nt",
                                            .slow_layer = 2, .slow_factor = 1.5, .max_skew_ns = 30'000};
        auto s = partita::TraceStore::open(project.toStdString());
        if (!s)
            qFatal("%s", s.error().str().c_str());
        auto r = partita::test::synthesizeRanks(**s, partita::test::dataParallelPattern(4, 3), o);
        if (!r)
            qFatal("%s", r.error().str().c_str());
        return r->run_id;
    }

private slots:
    void refusals_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("err");
        QTest::newRow("stragglers of no run") << QStringList{"trace", "stragglers", "--run", "7"} << "run 7: no such run";
        QTest::newRow("stragglers of two runs") << QStringList{"trace", "stragglers", "--run", "1", "--run", "2"} << "exactly one --run";
        QTest::newRow("critical path of no run") << QStringList{"trace", "critical-path", "--run", "7"} << "run 7: no such run";
        QTest::newRow("critical path of two runs") << QStringList{"trace", "critical-path", "--run", "1", "--run", "2"}
                                                   << "exactly one --run";
        QTest::newRow("a step no rank has") << QStringList{"trace", "critical-path", "--run", "1", "--step", "3"}
                                            << "--step: no rank has step 3 (counting from 0; the most any rank has is 3)";
        QTest::newRow("memory of no run") << QStringList{"trace", "memory", "--run", "7"} << "run 7: no such run";
        QTest::newRow("memory of two runs") << QStringList{"trace", "memory", "--run", "1", "--run", "2"} << "exactly one --run";
        QTest::newRow("heatmap of no run") << QStringList{"trace", "heatmap", "--run", "7"} << "run 7: no such run";
        QTest::newRow("heatmap of two runs") << QStringList{"trace", "heatmap", "--run", "1", "--run", "2"} << "exactly one --run";
        QTest::newRow("heatmap by no such metric") << QStringList{"trace", "heatmap", "--run", "1", "--metric", "busy"}
                                                   << "--metric: busy not in {step,compute,exposed-comm,idle}";
        QTest::newRow("events of no run") << QStringList{"trace", "events", "--run", "7"} << "run 7: no such run";
        QTest::newRow("events of a step no rank has") << QStringList{"trace", "events", "--run", "1", "--step", "9"}
                                                      << "no rank has step 9";
        QTest::newRow("events of no such class") << QStringList{"trace", "events", "--run", "1", "--class", "gemm"}
                                                 << "--class: gemm not in {computation,communication,memory,other,non-compute}";
        QTest::newRow("an instance without an annotation") << QStringList{"trace", "critical-path", "--run", "1", "--instance", "1"}
                                                           << "--instance: --instance picks among the --annotation's events";
    }
    void refusals()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, err);
        const QString project = m_tmp.filePath("refusals.partita");
        if (!QFile::exists(project))
            QCOMPARE(synthetic(project, 8), qint64(1));
        const Run r = cli(args + QStringList{"--project", project});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains(err), qPrintable(r.err));
    }

    // trace stragglers on 8 ranks with one slow: the rank, the kernel, the
    // layer and the clocks, as JSON; the text names the same.
    void stragglers()
    {
        const QString project = m_tmp.filePath("stragglers.partita");
        const int64_t run = synthetic(project, 8);
        const Run j = cli({"trace", "stragglers", "--project", project, "--run", QString::number(run), "--json"});
        QCOMPARE(j.code, 0);
        const QJsonObject rep = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QCOMPARE(rep["ranks"].toInt(), 8);
        QCOMPARE(rep["clocks"].toArray().size(), 8);
        const QJsonArray steps = rep["steps"].toArray();
        QCOMPARE(steps.size(), 3);
        for (const QJsonValue& v : steps) {
            const QJsonObject st = v.toObject();
            QCOMPARE(st["late_rank"].toInt(), 6);
            QCOMPARE(st["cause"].toObject()["kernel"].toString(), QString("ampere_sgemm_64x64_nt"));
            QCOMPARE(st["cause"].toObject()["layer"].toInt(), 2);
            QCOMPARE(st["worst_collective"].toObject()["wait_s_by_rank"].toArray().size(), 8);
        }
        const Run t = cli({"trace", "stragglers", "--project", project, "--run", QString::number(run)});
        QCOMPARE(t.code, 0);
        QVERIFY2(t.out.contains("ampere_sgemm_64x64_nt (layer 2)"), qPrintable(t.out));
    }

    // trace export --align-clocks writes each rank shifted by its clock
    // correction (trace stragglers' offsets), said in the file's header.
    void exportAlignedClocks()
    {
        const QString project = m_tmp.filePath("aligned.partita");
        const int64_t run = synthetic(project, 8); // clocks skewed up to 30 us
        const QString raw = m_tmp.filePath("raw.json"), aligned = m_tmp.filePath("aligned.json");
        QCOMPARE(cli({"trace", "export", "--project", project, "--run", QString::number(run), raw}).code, 0);
        const Run a = cli({"trace", "export", "--project", project, "--run", QString::number(run), "--align-clocks", aligned});
        QVERIFY2(a.code == 0, qPrintable(a.err));
        QVERIFY2(a.out.contains("shifted by"), qPrintable(a.out));
        const Run st = cli({"trace", "stragglers", "--project", project, "--run", QString::number(run), "--json"});
        std::map<int, double> offset; // s
        for (const QJsonValue& c : QJsonDocument::fromJson(st.out.toUtf8()).object()["clocks"].toArray())
            offset[c.toObject()["rank"].toInt()] = c.toObject()["offset_s"].toDouble();
        QCOMPARE(int(offset.size()), 8);
        auto firstTs = [](const QString& file) { // per rank (pid): the first event's ts, us
            QFile f(file);
            f.open(QIODevice::ReadOnly);
            std::map<int, double> first;
            for (const QJsonValue& v : QJsonDocument::fromJson(f.readAll()).object()["traceEvents"].toArray()) {
                const QJsonObject e = v.toObject();
                if (e["ph"].toString() == "X" && !first.count(e["pid"].toInt()))
                    first[e["pid"].toInt()] = e["ts"].toDouble();
            }
            return first;
        };
        const auto r = firstTs(raw), al = firstTs(aligned);
        bool anyShift = false;
        for (const auto& [rank, ts] : r) {
            QVERIFY2(std::abs((ts - al.at(rank)) - offset[rank] * 1e6) < 0.01, qPrintable(QString("rank %1").arg(rank)));
            anyShift = anyShift || std::abs(offset[rank]) > 1e-6;
        }
        QVERIFY(anyShift);
        QFile f(aligned);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(QJsonDocument::fromJson(f.readAll()).object()["partita"].toObject().contains("clock_offsets_ns"));
    }

    // trace critical-path of one step: the slow rank's GEMM of layer 2 on
    // the path, the sums adding up, each segment's rank and event named.
    void criticalPathOfAStep()
    {
        const QString project = m_tmp.filePath("critical.partita");
        const int64_t run = synthetic(project, 8);
        const Run j = cli({"trace", "critical-path", "--project", project, "--run", QString::number(run), "--step", "1", "--json"});
        QVERIFY2(j.code == 0, qPrintable(j.err));
        const QJsonObject rep = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QCOMPARE(rep["ranks"].toInt(), 8);
        const QJsonArray paths = rep["paths"].toArray();
        QCOMPARE(paths.size(), 1);
        const QJsonObject p = paths[0].toObject();
        QCOMPARE(p["step"].toInt(), 1);
        QCOMPARE(p["window"].toString(), QString("ProfilerStep#1"));
        double sum = 0, kinds = 0;
        bool slow = false;
        for (const QJsonValue& v : p["segments"].toArray()) {
            const QJsonObject s = v.toObject();
            sum += s["s"].toDouble();
            slow = slow || (s["rank"].toInt() == 6 && s["event"].toString() == "ampere_sgemm_64x64_nt" && s["layer"].toInt() == 2 &&
                            s["edge"].toString() == "device");
        }
        for (const QJsonValue& v : p["by_kind"].toArray())
            kinds += v.toObject()["s"].toDouble();
        QVERIFY(slow);
        QVERIFY(std::abs(sum - p["length_s"].toDouble()) < 1e-9);
        QVERIFY(std::abs(kinds - p["length_s"].toDouble()) < 1e-9);
        QVERIFY(p["length_s"].toDouble() <= p["span_s"].toDouble());
        QCOMPARE(p["clocks"].toArray().size(), 8);
        // Every step, as text.
        const Run t = cli({"trace", "critical-path", "--project", project, "--run", QString::number(run)});
        QCOMPARE(t.code, 0);
        QCOMPARE(t.out.count("critical path"), 3);
        QVERIFY2(t.out.contains("heaviest on the path"), qPrintable(t.out));
    }

    // The executor's own runs on this CPU, two ranks: data-parallel (the
    // path goes through the all-reduce) and a two-stage pipeline (it crosses
    // from stage to stage at a transfer).
    void criticalPathOfExecutorRuns_data()
    {
        QTest::addColumn<QStringList>("strategy");
        QTest::addColumn<QString>("crossing"); // an edge or event kind the path goes through
        QTest::addColumn<QString>("axis");     // the strategy's mesh axis holding both ranks
        QTest::newRow("data parallel") << QStringList{"--preset", "ddp"} << "collective" << "dp";
        QTest::newRow("pipeline, two stages") << QStringList{"--preset", "megatron", "--pp", "2", "--tp", "1", "--micro-batch", "1"} << "p2p"
                                              << "pp";
    }
    void criticalPathOfExecutorRuns()
    {
        QFETCH(QStringList, strategy);
        QFETCH(QString, crossing);
        QFETCH(QString, axis);
        const QString model = m_tmp.filePath("gpt.json");
        QFile f(model);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 4, "n_positions": 64, "vocab_size": 512})");
        f.close();
        const QString project = m_tmp.filePath(QString("executor-%1.partita").arg(QTest::currentDataTag()).replace(' ', '_'));
        const Run run = cli(QStringList{"run", "--model", model, "--cluster", "local", "--ranks", "2", "--global-batch", "4", "--seq-len", "64",
                                        "--steps", "2", "--project", project, "--json"} + strategy);
        QVERIFY2(run.code == 0, qPrintable(run.err));
        const int measured = QJsonDocument::fromJson(run.out.toUtf8()).object()["run_id"].toInt();
        QVERIFY(measured > 0);
        const Run j = cli({"trace", "critical-path", "--project", project, "--run", QString::number(measured), "--json"});
        QVERIFY2(j.code == 0, qPrintable(j.err));
        const QJsonObject rep = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QCOMPARE(rep["ranks"].toInt(), 2);
        const QJsonArray paths = rep["paths"].toArray();
        QVERIFY(!paths.isEmpty());
        for (const QJsonValue& v : paths) {
            const QJsonObject p = v.toObject();
            const double length = p["length_s"].toDouble(), span = p["span_s"].toDouble();
            // Never longer than the step (but for what aligning the ranks'
            // clocks leaves); how much shorter depends on the machine's load.
            QVERIFY2(length > 0 && length <= span * 1.05, qPrintable(QString("%1 of %2 s").arg(length).arg(span)));
            bool crosses = false;
            for (const QJsonValue& s : p["segments"].toArray())
                crosses = crosses || s.toObject()["edge"].toString() == crossing || s.toObject()["kind"].toString() == crossing;
            QVERIFY2(crosses, qPrintable(p["window"].toString()));
        }
        // The heat map of the same run, its ranks grouped by the strategy's mesh.
        const Run h = cli({"trace", "heatmap", "--project", project, "--run", QString::number(measured), "--group-by", axis, "--json"});
        QVERIFY2(h.code == 0, qPrintable(h.err));
        const QJsonObject map = QJsonDocument::fromJson(h.out.toUtf8()).object();
        QCOMPARE(map["rows"].toArray().size(), 2);
        QVERIFY(map["by_step"].toBool() && map["columns"].toInt() >= 2);
        const QJsonArray groups = map["groups"].toArray();
        QCOMPARE(groups.size(), 1);
        QCOMPARE(groups[0].toObject()["ranks"].toArray().size(), 2);
        for (const QJsonValue& row : map["rows"].toArray())
            for (const QJsonValue& c : row.toObject()["cells"].toArray()) {
                const QJsonObject cell = c.toObject();
                QVERIFY(cell["compute_s"].toDouble() > 0);
                QVERIFY(cell["compute_s"].toDouble() + cell["exposed_comm_s"].toDouble() + cell["idle_s"].toDouble() <=
                        cell["step_s"].toDouble() + 1e-9);
            }
    }

    // trace memory of a real trace's step: the CUDA device's peak, in text
    // and in JSON with its series downsampled.
    void memory()
    {
        const QString project = m_tmp.filePath("memory.partita");
        const Run imp = cli({"trace", "import", data("hta/memory-df_index_resolver-step3.json.gz"), "--project", project});
        QVERIFY2(imp.code == 0, qPrintable(imp.err));
        const Run t = cli({"trace", "memory", "--project", project, "--run", "1"});
        QCOMPARE(t.code, 0);
        QVERIFY2(t.out.contains("cuda:1") && t.out.contains("6.17 GiB") && t.out.contains("11.9 GiB"), qPrintable(t.out));
        const Run j = cli({"trace", "memory", "--project", project, "--run", "1", "--json", "--points", "100"});
        QCOMPARE(j.code, 0);
        const QJsonArray series = QJsonDocument::fromJson(j.out.toUtf8()).object()["series"].toArray();
        QCOMPARE(series.size(), 2);
        for (const QJsonValue& v : series) {
            const QJsonObject s = v.toObject();
            QVERIFY(s["points"].toArray().size() <= 100);
            if (s["device"].toString() == "cuda:1")
                QCOMPARE(s["peak_allocated_bytes"].toInteger(), qint64(6'629'508'096));
        }
    }

    // HTA's own test trace, with HTA's arguments: HTA's length.
    void criticalPathAsHta()
    {
        const QString project = m_tmp.filePath("hta.partita");
        const Run imp = cli({"trace", "import", data("hta/critical_path-simple_add.json.gz"), "--project", project});
        QVERIFY2(imp.code == 0, qPrintable(imp.err));
        const Run j = cli({"trace", "critical-path", "--project", project, "--run", "1", "--annotation",
                           "[param|pytorch.model.alex_net|0|0|0|measure|forward]", "--instance", "1", "--json", "--no-segments"});
        QVERIFY2(j.code == 0, qPrintable(j.err));
        const QJsonObject p = QJsonDocument::fromJson(j.out.toUtf8()).object()["paths"].toArray()[0].toObject();
        QCOMPARE(qRound64(p["length_s"].toDouble() * 1e6), qint64(241'724));
        QVERIFY(p["segments"].toArray().isEmpty());
        QCOMPARE(p["graph"].toObject()["nodes"].toInt(), 414);
    }

    // trace heatmap on 8 ranks with rank 6 slow in layer 2: by compute, its
    // cells stand out in every step, in JSON and in the text.
    void heatmap()
    {
        const QString project = m_tmp.filePath("heatmap.partita");
        const QString run = QString::number(synthetic(project, 8));
        const Run j = cli({"trace", "heatmap", "--project", project, "--run", run, "--metric", "compute", "--json"});
        QCOMPARE(j.code, 0);
        const QJsonObject map = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QCOMPARE(map["ranks"].toInt(), 8);
        QCOMPARE(map["columns"].toInt(), 3);
        QCOMPARE(map["rows"].toArray().size(), 8);
        QCOMPARE(map["medians"].toObject()["compute"].toArray().size(), 3);
        const QJsonArray outliers = map["outliers"].toArray();
        QCOMPARE(outliers.size(), 3);
        for (const QJsonValue& o : outliers)
            QCOMPARE(o.toObject()["rank"].toInt(), 6);
        for (const QJsonValue& row : map["rows"].toArray())
            for (const QJsonValue& c : row.toObject()["cells"].toArray()) {
                const QJsonObject cell = c.toObject();
                const double sum = cell["compute_s"].toDouble() + cell["exposed_comm_s"].toDouble() + cell["idle_s"].toDouble() +
                                   cell["other_s"].toDouble();
                QVERIFY(std::abs(sum - cell["step_s"].toDouble()) < 1e-9);
                QVERIFY(cell["end_s"].toDouble() > cell["start_s"].toDouble());
            }
        const Run t = cli({"trace", "heatmap", "--project", project, "--run", run, "--metric", "compute", "--top", "2"});
        QCOMPARE(t.code, 0);
        QVERIFY2(t.out.contains(QRegularExpression("compute +rank 6, ")), qPrintable(t.out));
        QVERIFY2(t.out.contains("the 2 highest; --top 0: all"), qPrintable(t.out));
        QVERIFY2(t.out.contains(QRegularExpression("\\n +6 +3 ")), qPrintable(t.out)); // rank 6 first, 3 steps
    }

    // trace import --mesh: kept in the run's meta, read back by heatmap
    // --group-by; a mesh of another size is kept and said; bad text refused.
    void importMesh_data()
    {
        QTest::addColumn<QString>("mesh");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("err");
        QTest::newRow("one rank") << "dp=1" << 0 << "";
        QTest::newRow("more ranks than the run") << "dp=2,tp=2" << 0 << "--mesh dp=2,tp=2 lays out 4 ranks, the run has 1";
        QTest::newRow("no number") << "dp=x" << 2 << "--mesh: mesh 'dp=x': 'dp' has no whole number after '='";
        QTest::newRow("unknown axis") << "sp=2" << 2 << "'sp' is not one of dp, tp, pp, cp, ep";
    }
    void importMesh()
    {
        QFETCH(QString, mesh);
        QFETCH(int, code);
        QFETCH(QString, err);
        const QString project = m_tmp.filePath(QString("mesh-%1.partita").arg(QTest::currentDataTag()).replace(' ', '-'));
        const Run imp = cli({"trace", "import", data("hta/critical_path-alexnet.json.gz"), "--mesh", mesh, "--project", project, "--json"});
        QCOMPARE(imp.code, code);
        QVERIFY2(imp.err.contains(err), qPrintable(imp.err));
        if (code != 0) {
            QVERIFY(!QFile::exists(project)); // refused before anything was written
            return;
        }
        QCOMPARE(QJsonDocument::fromJson(imp.out.toUtf8()).object()["mesh"].toString(), mesh);
        const Run j = cli({"trace", "heatmap", "--project", project, "--run", "1", "--group-by", "dp", "--json"});
        QVERIFY2(j.code == 0, qPrintable(j.err));
        const QJsonObject map = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QCOMPARE(map["mesh"].toString(), mesh);
        const QJsonArray groups = map["groups"].toArray();
        QCOMPARE(groups.size(), 1);
        const QJsonObject g = groups[0].toObject();
        QCOMPARE(g["ranks"].toArray().size(), 1);
        QVERIFY(g["busy_least"].toDouble() > 0 && g["busy_most"].toDouble() <= 1);
        const Run t = cli({"trace", "heatmap", "--project", project, "--run", "1", "--group-by", "tp"});
        QCOMPARE(t.code, 0);
        QVERIFY2(t.out.contains("By tensor-parallel group (mesh " + mesh + ")"), qPrintable(t.out));
    }

    void groupByWithoutMesh()
    {
        const QString project = m_tmp.filePath("nomesh.partita");
        const QString run = QString::number(synthetic(project, 4));
        const Run r = cli({"trace", "heatmap", "--project", project, "--run", run, "--group-by", "dp"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("--group-by: run " + run + " has no mesh"), qPrintable(r.err));
    }

    // trace events: the slow rank's GEMMs of one step, as many as the
    // pattern has, the earliest listed; the JSON's times add up.
    void events()
    {
        const QString project = m_tmp.filePath("events.partita");
        const QString run = QString::number(synthetic(project, 4));
        const Run j = cli({"trace", "events", "--project", project, "--run", run, "--name", "ampere_sgemm_64x64_nt", "--rank", "3",
                           "--step", "1", "--limit", "2", "--json"});
        QVERIFY2(j.code == 0, qPrintable(j.err));
        const QJsonObject m = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QCOMPARE(m["total"].toInt(), 4); // one backward GEMM per layer
        const QJsonArray ev = m["events"].toArray();
        QCOMPARE(ev.size(), 2);
        QVERIFY(ev[0].toObject()["start_s"].toDouble() < ev[1].toObject()["start_s"].toDouble());
        QCOMPARE(ev[0].toObject()["rank"].toInt(), 3);
        QVERIFY(std::abs(m["total_s"].toDouble() - 4 * 240e-6) < 1e-9);
        const Run t = cli({"trace", "events", "--project", project, "--run", run, "--class", "communication", "--limit", "1"});
        QCOMPARE(t.code, 0);
        QVERIFY2(t.out.contains("Run " + run + ": 48 events (communication kernels), "), qPrintable(t.out));
        QVERIFY2(t.out.contains("The first 1 (--limit):"), qPrintable(t.out));
        // non-compute and computation part the rank's device events; the step's window is given.
        auto total = [&](const QStringList& extra, QJsonObject* whole = nullptr) {
            const Run r = cli(QStringList{"trace", "events", "--project", project, "--run", run, "--rank", "3", "--step", "1", "--json"} + extra);
            const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
            if (whole)
                *whole = o;
            return r.code == 0 ? o["total"].toInt() : -1;
        };
        QJsonObject nc;
        const int nonCompute = total({"--class", "non-compute"}, &nc);
        QCOMPARE(nonCompute, 4); // the step's all-reduces
        QCOMPARE(nonCompute + total({"--class", "computation"}), total({"--device"}));
        QVERIFY2(nc["query"].toString().contains("kernels other than computation"), qPrintable(nc["query"].toString()));
        const QJsonArray w = nc["step_windows"].toArray();
        QCOMPARE(w.size(), 1);
        QCOMPARE(w[0].toObject()["rank"].toInt(), 3);
        QVERIFY(w[0].toObject()["end_s"].toDouble() > w[0].toObject()["start_s"].toDouble());
    }
};

QTEST_APPLESS_MAIN(TestCliAnalysis)
#include "tst_clianalysis.moc"
