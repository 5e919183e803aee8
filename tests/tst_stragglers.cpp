// profiler/stragglers: which rank made the others wait at each step's
// collectives, by how much on each rank, and the kernel and layer it spent
// longer on; the ranks' clocks aligned on the collectives' ends. Runs are
// made by tests/synthranks.h: a data-parallel pattern replayed on N ranks
// with skewed clocks, jitter and one slow rank whose injected slowdown is
// what the analysis must find; a CPU run's gloo operators, hand-made and
// recorded; apart (tst_stragglers_third_party), the same
// made from a real trace's kernels (HTA's NCCL test trace in ../shared).
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/stragglers.h"
#include "storetest.h"
#include "synthranks.h"
#include "testdata.h"
#include "testmain.h"

#include <QTemporaryDir>
#include <QTest>

using namespace partita;

class TestStragglers : public QObject
{
    Q_OBJECT
private slots:
    void findsTheSlowRank_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<int>("slowRank");
        QTest::addColumn<int>("slowLayer");
        QTest::addColumn<double>("factor");
        QTest::addColumn<qint64>("skewNs");
        QTest::addColumn<double>("jitter");
        QTest::newRow("8 ranks, rank 5's backward GEMM of layer 3 1.5x, skewed clocks") << 8 << 5 << 3 << 1.5 << qint64(50'000) << 0.01;
        QTest::newRow("2 ranks, rank 0 2x in layer 0, no skew") << 2 << 0 << 0 << 2.0 << qint64(0) << 0.0;
        QTest::newRow("32 ranks, rank 31 1.3x in layer 5, skew 1 ms") << 32 << 31 << 5 << 1.3 << qint64(1'000'000) << 0.02;
    }
    void findsTheSlowRank()
    {
        QFETCH(int, ranks);
        QFETCH(int, slowRank);
        QFETCH(int, slowLayer);
        QFETCH(double, factor);
        QFETCH(qint64, skewNs);
        QFETCH(double, jitter);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = ranks;
        o.slow_rank = slowRank;
        o.slow_kernel = "ampere_sgemm_64x64_nt"; // 240 us in the pattern
        o.slow_layer = slowLayer;
        o.slow_factor = factor;
        o.max_skew_ns = skewNs;
        o.jitter = jitter;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(6, 4), o);
        QVERIFY2(run, run ? "" : run.error().str().c_str());
        auto rep = findStragglers(*s, run->run_id);
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        QCOMPARE(rep->ranks, ranks);
        QCOMPARE(rep->matched, qint64(6 * 4)); // a collective per layer and step
        // The clocks: each rank's skew found again (the ends are exact here).
        QCOMPARE(int(rep->clocks.size()), ranks);
        for (int r = 0; r < ranks; ++r)
            QVERIFY2(std::abs(rep->clocks[size_t(r)].offset_ns - run->skew_ns[size_t(r)]) <= 1000,
                     qPrintable(QString("rank %1: offset %2, skew %3").arg(r).arg(rep->clocks[size_t(r)].offset_ns).arg(run->skew_ns[size_t(r)])));
        // Every step: the slow rank, at the collective after its slow GEMM,
        // the others waiting what its GEMM took longer.
        const double extra = (factor - 1) * 240'000;
        QCOMPARE(int(rep->steps.size()), 4);
        for (const StepStraggler& st : rep->steps) {
            const QString where = QString("step %1: late %2, kernel %3, layer %4, excess %5 ns, wait %6 ns")
                                      .arg(st.step).arg(st.late_rank).arg(QString::fromStdString(st.kernel)).arg(st.layer)
                                      .arg(st.excess_ns).arg(st.worst_wait_ns);
            QVERIFY2(st.late_rank == slowRank, qPrintable(where));
            QVERIFY2(st.kernel == o.slow_kernel && st.layer == slowLayer, qPrintable(where));
            QVERIFY2(std::abs(double(st.excess_ns) - extra) <= 0.1 * extra, qPrintable(where));
            QVERIFY2(std::abs(double(st.worst_wait_ns) - extra * (ranks - 1)) <= 0.15 * extra * (ranks - 1), qPrintable(where));
            QCOMPARE(int(st.wait_ns.size()), ranks);
            QCOMPARE(st.wait_ns[size_t(slowRank)], qint64(0));
        }
        // Blame: the slow rank caused the most waiting, over three times any
        // other's (the others are late only by their jitter).
        for (const RankBlame& b : rep->blame)
            if (b.rank != slowRank)
                QVERIFY2(rep->blame[size_t(slowRank)].wait_caused_ns > 3 * b.wait_caused_ns,
                         qPrintable(QString("rank %1 caused %2 ns").arg(b.rank).arg(b.wait_caused_ns)));
    }

    // Without a slow rank the waits are the jitter's: far below one GEMM's slowdown.
    void noStraggler()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = 8;
        o.jitter = 0.01;
        o.max_skew_ns = 20'000;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(6, 3), o);
        QVERIFY(run);
        auto rep = findStragglers(*s, run->run_id);
        QVERIFY(rep);
        for (const StepStraggler& st : rep->steps)
            QVERIFY2(st.worst_wait_ns < 7 * 2 * 0.01 * 2 * 240'000, qPrintable(QString::number(st.worst_wait_ns)));
    }

    void saysWhyNot_data()
    {
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("note");
        QTest::newRow("one rank") << "one rank" << "nobody to wait for";
        QTest::newRow("no collectives") << "no collectives" << "no collective that every rank ran";
        QTest::newRow("names part") << "names part" << "the ranks are compared up to it";
    }
    void saysWhyNot()
    {
        QFETCH(QString, what);
        QFETCH(QString, note);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        std::vector<TraceRecord> pattern = test::dataParallelPattern(2, 2);
        test::SynthOptions o;
        o.ranks = what == "one rank" ? 1 : 4;
        if (what == "no collectives")
            std::erase_if(pattern, [](const TraceRecord& r) { return r.name.rfind("nccl", 0) == 0; });
        auto run = test::synthesizeRanks(*s, pattern, o);
        QVERIFY(run);
        if (what == "names part") {
            // Rank 3's third collective is another one.
            auto w = s->beginRun(RunInfo{});
            QVERIFY(w);
            std::vector<int64_t> ids;
            int seen = 0;
            auto tracks = s->tracks(run->run_id);
            QVERIFY(tracks);
            std::map<std::pair<int, int>, int64_t> newTracks;
            QVERIFY(s->forEachEvent(run->run_id, [&](const StoredEvent& e) {
                TraceRecord r = e.record;
                if (r.rank == 3 && r.name.rfind("nccl", 0) == 0 && ++seen == 3)
                    r.name = "ncclDevKernel_AllGather_RING_LL";
                auto key = std::make_pair(int(r.rank), int(r.track));
                if (!newTracks.count(key))
                    newTracks[key] = *(*w)->track(r.rank, r.track, "t", r.kind != TraceKind::Step);
                (void)(*w)->add(newTracks[key], r);
            }));
            QVERIFY((*w)->finish());
            run->run_id = (*w)->runId();
        }
        auto rep = findStragglers(*s, run->run_id);
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        QString notes;
        for (const std::string& n : rep->notes)
            notes += QString::fromStdString(n) + "\n";
        QVERIFY2(notes.contains(note), qPrintable(notes));
        if (what == "names part")
            QCOMPARE(rep->matched, qint64(2));
        else
            QVERIFY(rep->steps.empty());
    }

    // A CPU run on gloo: no communication kernels; each rank's all-reduce is
    // the operator gloo:all_reduce on a thread of its own. Rank 2's aten::mm
    // takes 300 us where the others' take 100 (and its forward 50 us more of
    // its own): it is late at both all-reduces, by 250 us against each other
    // rank, and aten::mm (by its
    // own time, not its parent's, which starts with it) is named; the
    // collective's operator, whatever its children, is never the cause.
    void glooRanks()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        std::vector<test::HandEvent> evs;
        for (int rank = 0; rank < 3; ++rank) {
            // Rank 2: aten::mm 200 us longer, and forward's own time 50 us longer.
            const int64_t mm = rank == 2 ? 300 : 100, extra = rank == 2 ? 50 : 0;
            for (int64_t round = 0, t = 0; round < 2; ++round, t += 1000) {
                // The child first (a lower id) and starting with its parent, as profilers' microseconds make common:
                // counted whole beside its parent, forward would read 250 us over the others and be named.
                evs.push_back({rank, 1, false, TraceKind::CpuOp, "aten::mm", t, mm});
                evs.push_back({rank, 1, false, TraceKind::CpuOp, "forward", t, mm + 20 + extra});
                evs.push_back({rank, 1, false, TraceKind::CpuOp, "c10d::allreduce_", t + mm + 20 + extra, 5});
                evs.push_back({rank, 1, false, TraceKind::CpuOp, "record_param_comms", t + mm + 20 + extra, rank == 2 ? 1 : 4});
                evs.push_back({rank, 2, false, TraceKind::CpuOp, "gloo:all_reduce", t + mm + 26 + extra, 450 - mm - 26 - extra});
            }
        }
        auto rep = findStragglers(*s, test::storeEvents(*s, evs));
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        QCOMPARE(rep->matched, qint64(2));
        QVERIFY(std::any_of(rep->notes.begin(), rep->notes.end(), [](const std::string& n) { return n.find("gloo") != std::string::npos; }));
        QCOMPARE(rep->steps.size(), size_t(1)); // no steps: one
        const StepStraggler& st = rep->steps.front();
        QCOMPARE(st.late_rank, 2);
        QCOMPARE(st.kernel, std::string("aten::mm"));
        QCOMPARE(st.excess_ns, qint64(200'000));
        QCOMPARE(st.wait_caused_ns, qint64(2 * 2 * 250'000)); // two all-reduces, two ranks waiting 250 us
        QCOMPARE(rep->blame[2].late_count, qint64(2));
        for (const ClockCorrection& c : rep->clocks)
            QCOMPARE(c.offset_ns, qint64(0)); // every all-reduce ends at once
    }

    // The recorded two-rank DDP run on gloo (this CPU): its broadcasts and
    // all-reduces are matched, and every step names a late rank.
    void glooOnRecordedRun()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {(test::torchTraces() + "/two/traces").toStdString()});
        QVERIFY2(imp, imp ? "" : imp.error().str().c_str());
        auto rep = findStragglers(*s, imp->run_id);
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        QCOMPARE(rep->ranks, 2);
        QCOMPARE(rep->matched, qint64(6)); // per step: DDP's buffer broadcast and one all-reduce bucket
        QCOMPARE(rep->steps.size(), size_t(3));
        // A cause is named where the late rank's operators ran longer than the
        // other's (this machine's timing decides: a rank that was only
        // scheduled later has none), and it is never a collective's operator.
        for (const StepStraggler& st : rep->steps) {
            QVERIFY(st.late_rank == 0 || st.late_rank == 1);
            QVERIFY(st.wait_caused_ns > 0);
            QVERIFY(st.collective.rfind("gloo:", 0) == 0);
            QVERIFY2(st.kernel.rfind("gloo:", 0) != 0 && st.kernel.rfind("c10d::", 0) != 0, st.kernel.c_str());
            QVERIFY2(st.kernel.empty() == (st.excess_ns == 0), st.kernel.c_str());
        }
    }

    void noSuchRun()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        QVERIFY(!findStragglers(*s, 42));
    }
};

class TestStragglersThirdParty : public QObject
{
    Q_OBJECT
private slots:
    // A real ResNet step's kernels (HTA's NCCL parser trace: cuDNN kernels,
    // NCCL all-reduces and broadcasts) on 16 ranks, one of which runs its
    // layout-conversion kernel 1.3x longer: every step names it.
    void fromARealTrace()
    {
        const QString file = "traces/nccl_parser_config-nccl_data.json.gz";
        PARTITA_REQUIRE_THIRD_PARTY(file);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {test::thirdParty(file).toStdString()});
        QVERIFY2(imp, imp ? "" : imp.error().str().c_str());
        auto source = test::sourceFromRun(*s, imp->run_id);
        QVERIFY(source);
        // The source's compute kernel with the most time is the one slowed.
        std::map<std::string, int64_t> compute;
        for (const TraceRecord& r : *source)
            if (isDeviceKind(r.kind) && classifyKernel(r.name, r.kind) == KernelClass::Computation)
                compute[r.name] += r.dur_ns;
        const auto top = std::max_element(compute.begin(), compute.end(), [](auto& a, auto& b) { return a.second < b.second; });
        QVERIFY(top != compute.end());
        test::SynthOptions o;
        o.ranks = 16;
        o.slow_rank = 13;
        o.slow_kernel = top->first;
        o.slow_factor = 1.3;
        o.max_skew_ns = 200'000;
        o.jitter = 0.02;
        auto run = test::synthesizeRanks(*s, *source, o);
        QVERIFY(run);
        auto rep = findStragglers(*s, run->run_id);
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        QCOMPARE(rep->matched, qint64(21)); // 15 all-reduces and 6 broadcasts
        QVERIFY(!rep->steps.empty());
        for (const StepStraggler& st : rep->steps) {
            QCOMPARE(st.late_rank, 13);
            QCOMPARE(st.kernel, o.slow_kernel);
        }
        for (int r = 0; r < 16; ++r)
            QVERIFY(std::abs(rep->clocks[size_t(r)].offset_ns - run->skew_ns[size_t(r)]) <= 1000);
    }
};

PARTITA_TEST_SPLIT_APPLESS_MAIN(TestStragglers, TestStragglersThirdParty, "--third-party")
#include "tst_stragglers.moc"
