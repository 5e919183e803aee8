// executor/asplanned: what a backend runs otherwise than the plan, listed
// for a measured run and its comparison; nothing for a plan it runs as given.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/executor/asplanned.h"

#include <QTest>

using namespace partita;

namespace {

// On one DGX A100 (8 GPUs): dp x tp x cp x pp = 8 (GPT-2's 12 heads take tp 4 at most).
Strategy base(int dp, int cp = 1)
{
    Strategy s;
    s.name = "t";
    s.dp = dp;
    s.cp = cp;
    s.tp = std::min(4, 8 / dp / cp);
    s.pp = 8 / dp / cp / s.tp;
    s.global_batch = 8 * dp;
    s.micro_batch = 1;
    s.precision = Precision::FP32;
    return s;
}

} // namespace

class TestAsPlanned : public QObject
{
    Q_OBJECT
private slots:
    void lists_data()
    {
        QTest::addColumn<QString>("setup");
        QTest::addColumn<QString>("backend");
        QTest::addColumn<QStringList>("expected"); // a part of each line, in order
        QTest::newRow("tensor and pipeline parallel, fp32: as planned") << "dp1" << "cpu" << QStringList{};
        QTest::newRow("bf16 on the cpu") << "dp1-bf16" << "cpu" << QStringList{"bf16 GEMMs run as fp32"};
        QTest::newRow("bf16 on cuda") << "dp1-bf16" << "cuda" << QStringList{};
        QTest::newRow("ring all-reduce on the cpu") << "dp8" << "cpu"
                                                    << QStringList{"the plan's ring for", "MPI_Allreduce picks its own"};
        QTest::newRow("tree all-reduce on cuda") << "dp8-tree" << "cuda" << QStringList{"the plan's tree for", "NCCL picks its own"};
        QTest::newRow("ZeRO-2: no all-reduce") << "dp8-zero2" << "cpu" << QStringList{};
        QTest::newRow("ZeRO-1, overlapped gather") << "dp8-zero1-gather" << "cpu" << QStringList{"overlap_param_gather"};
        QTest::newRow("reduction after backward") << "dp8-nooverlap" << "cpu"
                                                  << QStringList{"the plan's ring for", "overlap_grad_reduce off"};
        QTest::newRow("parameter servers") << "dp8-ps" << "cpu"
                                           << QStringList{"parameter-server placement (round-robin for", "local replication for",
                                                          "bounded staleness (up to 2 steps)"};
        QTest::newRow("context parallel ring") << "cp2" << "cuda" << QStringList{"the plan overlaps with the kernel before it"};
    }
    void lists()
    {
        QFETCH(QString, setup);
        QFETCH(QString, backend);
        QFETCH(QStringList, expected);
        auto model = loadModel(PARTITA_SOURCE_DIR "/resources/demo/model.json");
        auto cluster = clusterPreset("dgx-a100-80gb");
        QVERIFY(model && cluster);
        Strategy s = base(setup.startsWith("dp8") ? 4 : 1, setup == "cp2" ? 2 : 1);
        if (setup.endsWith("bf16"))
            s.precision = Precision::BF16;
        if (setup == "dp8-tree")
            s.sync.algorithm = AllReduceAlgo::Tree;
        if (setup.startsWith("dp8-zero")) {
            s.zero_stage = setup == "dp8-zero2" ? 2 : 1;
            s.overlap_param_gather = setup.endsWith("gather");
        }
        if (setup == "dp8-nooverlap")
            s.overlap_grad_reduce = false;
        if (setup == "dp8-ps") {
            s.sync.method = SyncMethod::ParameterServer;
            s.sync.ps_placement = PsPlacement::RoundRobin;
            s.sync.ps_local_replication = true;
            s.sync.staleness = 2;
        }
        auto resolved = resolveStrategy(s, *model, *cluster);
        QVERIFY2(resolved, resolved ? "" : resolved.error().str().c_str());
        auto plan = lowerPlan(*model, *cluster, s);
        QVERIFY2(plan, plan ? "" : plan.error().str().c_str());
        const std::vector<std::string> lines = notAsPlanned(*plan, *resolved, backend.toStdString());
        QString all;
        for (const std::string& l : lines)
            all += QString::fromStdString(l) + "\n";
        int at = 0;
        for (const QString& e : expected) {
            const int found = int(all.indexOf(e, at));
            QVERIFY2(found >= 0, qPrintable("missing '" + e + "' in:\n" + all));
            at = found;
        }
        if (expected.isEmpty())
            QVERIFY2(lines.empty(), qPrintable(all));
    }
};

QTEST_APPLESS_MAIN(TestAsPlanned)
#include "tst_asplanned.moc"
