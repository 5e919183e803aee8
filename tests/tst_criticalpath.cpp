// profiler/criticalpath: the longest chain of dependent work through a step.
// On one rank it is HTA's graph: the figures HTA computes on its own test
// traces (tests/data/hta, HTA's numbers in its README) must come out the
// same. Across ranks: a slow rank's kernel must be on the path of a
// synthetic data-parallel run (tests/synthranks.h), a pipeline's transfer
// must carry the path from one stage to the next, gloo's collectives on
// their own threads must link the ranks, and a CUDA graph's and a
// cuLaunchKernelEx launch's kernels must be linked to their launches.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/criticalpath.h"
#include "storetest.h"
#include "synthranks.h"
#include "testdata.h"

#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <numeric>

using namespace partita;

namespace {

using Ev = test::HandEvent;

int64_t store(TraceStore& s, const std::vector<Ev>& evs) { return test::storeEvents(s, evs); }

// The path's edges follow one another and add up to its length.
void checkChain(const CriticalPath& p)
{
    const int64_t sum = std::accumulate(p.segments.begin(), p.segments.end(), int64_t(0),
                                        [](int64_t a, const PathSegment& s) { return a + s.weight_ns; });
    QCOMPARE(sum, p.length_ns);
    int64_t kinds = 0;
    for (const auto& [k, v] : p.by_kind)
        kinds += v;
    QCOMPARE(kinds, p.length_ns);
    for (size_t i = 1; i < p.segments.size(); ++i)
        if (p.segments[i].rank == p.segments[i - 1].rank && p.segments[i].edge != PathEdge::Collective &&
            p.segments[i].edge != PathEdge::P2P && p.segments[i - 1].edge != PathEdge::Collective && p.segments[i - 1].edge != PathEdge::P2P)
            QCOMPARE(p.segments[i].from_ns, p.segments[i - 1].to_ns);
}

const PathSegment* onPath(const CriticalPath& p, int rank, const std::string& name, PathEdge edge, int32_t layer = -2)
{
    for (const PathSegment& s : p.segments)
        if (s.rank == rank && s.name == name && s.edge == edge && (layer == -2 || s.layer == layer))
            return &s;
    return nullptr;
}

} // namespace

class TestCriticalPath : public QObject
{
    Q_OBJECT
private slots:
    void agreesWithHta_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("annotation");
        QTest::addColumn<int>("instance");
        QTest::addColumn<qint64>("nodes");
        QTest::addColumn<qint64>("edges");
        QTest::addColumn<int>("pathEdges"); // -1: HTA's tie-breaks decide (zero-weight edges)
        QTest::addColumn<qint64>("lengthUs");
        const QString a = "[param|pytorch.model.alex_net|0|0|0|measure|forward]";
        QTest::newRow("simple_add") << "critical_path-simple_add" << a << 1 << qint64(414) << qint64(440) << 314 << qint64(241'724);
        QTest::newRow("alexnet") << "critical_path-alexnet" << a << 1 << qint64(418) << qint64(456) << 148 << qint64(35'834);
        QTest::newRow("cuda_event_sync") << "critical_path-cuda_event_sync" << "ProfilerStep" << 0 << qint64(54) << qint64(57) << -1
                                         << qint64(2'411);
        QTest::newRow("cuda_event_sync_multi_stream, whole trace")
            << "critical_path-cuda_event_sync_multi_stream" << "" << 0 << qint64(78) << qint64(85) << -1 << qint64(1'178);
    }
    void agreesWithHta()
    {
        QFETCH(QString, file);
        QFETCH(QString, annotation);
        QFETCH(int, instance);
        QFETCH(qint64, nodes);
        QFETCH(qint64, edges);
        QFETCH(int, pathEdges);
        QFETCH(qint64, lengthUs);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {test::testData("hta/" + file + ".json.gz").toStdString()});
        QVERIFY2(imp, imp ? "" : imp.error().str().c_str());
        CriticalPathOptions o;
        o.annotation = annotation.toStdString();
        o.instance = instance;
        auto r = findCriticalPath(*s, imp->run_id, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(int(r->paths.size()), 1);
        const CriticalPath& p = r->paths.front();
        QCOMPARE(p.nodes, nodes);
        QCOMPARE(p.edges, edges);
        QCOMPARE(p.length_ns, lengthUs * 1000);
        if (pathEdges >= 0)
            QCOMPARE(int(p.segments.size()), pathEdges);
        QVERIFY(p.length_ns <= p.span_ns);
        checkChain(p);
    }

    // HTA's path through simple_add, as its analysis splits it: one launch
    // delay of 17 us and five kernel-to-kernel gaps of 9 us in all.
    void simpleAddParts()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {test::testData("hta/critical_path-simple_add.json.gz").toStdString()});
        QVERIFY(imp);
        CriticalPathOptions o;
        o.annotation = "[param|pytorch.model.alex_net|0|0|0|measure|forward]";
        o.instance = 1;
        auto r = findCriticalPath(*s, imp->run_id, o);
        QVERIFY(r);
        const CriticalPath& p = r->paths.front();
        QCOMPARE(p.by_kind.at("launch delay"), qint64(17'000));
        QCOMPARE(p.by_kind.at("stream gap"), qint64(9'000));
        int launches = 0, gaps = 0;
        for (const PathSegment& seg : p.segments) {
            launches += seg.edge == PathEdge::Launch;
            gaps += seg.edge == PathEdge::StreamGap;
        }
        QCOMPARE(launches, 1);
        QCOMPARE(gaps, 5);
        // Options: without the segments, the same sums.
        o.segments = false;
        auto bare = findCriticalPath(*s, imp->run_id, o);
        QVERIFY(bare);
        QVERIFY(bare->paths.front().segments.empty());
        QCOMPARE(bare->paths.front().by_kind, p.by_kind);
    }

    void findsTheSlowRank_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<int>("slowRank");
        QTest::addColumn<int>("slowLayer");
        QTest::addColumn<qint64>("skewNs");
        QTest::newRow("8 ranks, rank 5 slow in layer 3, skewed clocks") << 8 << 5 << 3 << qint64(50'000);
        QTest::newRow("2 ranks, rank 0 slow in layer 0") << 2 << 0 << 0 << qint64(0);
        QTest::newRow("64 ranks, rank 40 slow in layer 5, skew 1 ms") << 64 << 40 << 5 << qint64(1'000'000);
    }
    void findsTheSlowRank()
    {
        QFETCH(int, ranks);
        QFETCH(int, slowRank);
        QFETCH(int, slowLayer);
        QFETCH(qint64, skewNs);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions o;
        o.ranks = ranks;
        o.slow_rank = slowRank;
        o.slow_kernel = "ampere_sgemm_64x64_nt";
        o.slow_layer = slowLayer;
        o.slow_factor = 2.0;
        o.max_skew_ns = skewNs;
        o.jitter = 0.01;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(6, 3), o);
        QVERIFY(run);
        auto r = findCriticalPath(*s, run->run_id, {});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->ranks, ranks);
        QCOMPARE(int(r->paths.size()), 3); // every step
        for (const CriticalPath& p : r->paths) {
            const QString where = QString("step %1").arg(p.step);
            checkChain(p);
            const PathSegment* slow = onPath(p, slowRank, o.slow_kernel, PathEdge::Device, slowLayer);
            QVERIFY2(slow, qPrintable(where + ": the slow GEMM is not on the path"));
            QVERIFY(slow->weight_ns > 2 * 240'000 * 98 / 100); // twice the pattern's 240 us
            // The path spans the step: nothing in it is idle on every rank.
            QVERIFY2(p.length_ns >= p.span_ns * 95 / 100, qPrintable(where + QString(": %1 of %2 ns").arg(p.length_ns).arg(p.span_ns)));
            // Each rank's clock found again.
            QCOMPARE(int(p.clocks.size()), ranks);
            for (const ClockCorrection& c : p.clocks)
                QVERIFY2(std::abs(c.offset_ns - run->skew_ns[size_t(c.rank)]) <= 1000, qPrintable(where));
            if (ranks > 1)
                QVERIFY(p.edge_counts.count(PathEdge::Collective));
        }
        // One step asked for: the same path as in the walk over all.
        CriticalPathOptions one;
        one.step = 1;
        auto r1 = findCriticalPath(*s, run->run_id, one);
        QVERIFY(r1);
        QCOMPARE(int(r1->paths.size()), 1);
        QCOMPARE(r1->paths.front().length_ns, r->paths[1].length_ns);
        QCOMPARE(r1->paths.front().by_rank, r->paths[1].by_rank);
    }

    // Two pipeline stages: stage 0's forward, its send, stage 1's receive
    // (waiting since 20 us) and forward. The path crosses at the transfer.
    void pipelineTransfer()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = store(*s, {
                                          {0, 0, true, TraceKind::Compute, "forward mb0 layer 0", 0, 100, -1, 0},
                                          {0, 1, true, TraceKind::P2P, "send mb0 to rank 1 4.00 MB", 100, 10},
                                          {1, 1, true, TraceKind::P2P, "recv mb0 from rank 0 4.00 MB", 20, 92},
                                          {1, 0, true, TraceKind::Compute, "forward mb0 layer 1", 112, 100, -1, 1},
                                      });
        auto r = findCriticalPath(*s, run, {});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const CriticalPath& p = r->paths.front();
        QCOMPARE(p.window, std::string("whole run"));
        checkChain(p);
        QCOMPARE(p.length_ns, qint64(212'000)); // 100 + the transfer after the send started (12) + 100
        const PathSegment* f0 = onPath(p, 0, "forward mb0 layer 0", PathEdge::Device);
        QVERIFY(f0);
        auto tracks = s->tracks(run);
        QVERIFY(tracks);
        const auto t0 = std::find_if(tracks->begin(), tracks->end(), [](const StoredTrack& t) { return t.rank == 0 && t.track == 0; });
        QCOMPARE(f0->track_id, t0->id); // where the timeline draws it
        // A run without steps is one window: --step 0 is it, --step 1 is not.
        CriticalPathOptions first;
        first.step = 0;
        auto r0 = findCriticalPath(*s, run, first);
        QVERIFY(r0);
        QCOMPARE(r0->paths.front().length_ns, p.length_ns);
        first.step = 1;
        auto r1 = findCriticalPath(*s, run, first);
        QVERIFY(!r1);
        QVERIFY2(QString::fromStdString(r1.error().str()).contains("no steps and is one window"), r1.error().str().c_str());
        QVERIFY(onPath(p, 1, "recv mb0 from rank 0 4.00 MB", PathEdge::P2P));
        QVERIFY(onPath(p, 1, "forward mb0 layer 1", PathEdge::Device));
        QCOMPARE(p.by_layer.at(0), qint64(100'000));
        QCOMPARE(p.by_layer.at(1), qint64(100'000));
        QCOMPARE(p.by_rank.at(0), qint64(100'000));
        QVERIFY(p.notes.empty());

        // Without its sender's rank the receive is left unpaired, and said so.
        const int64_t lone = store(*s, {{1, 1, true, TraceKind::P2P, "recv mb0 from rank 0 4.00 MB", 20, 92}});
        auto r2 = findCriticalPath(*s, lone, {});
        QVERIFY(r2);
        QVERIFY(!r2->paths.front().notes.empty());
        QVERIFY(QString::fromStdString(r2->paths.front().notes.front()).contains("no partner"));
    }

    // PyTorch's gloo backend: each rank's main thread issues
    // c10d::allreduce_, a gloo thread runs gloo:all_reduce, and the main
    // thread waits for it inside backward. Rank 1's gradients take 300 us,
    // rank 0's 100 us: rank 0's all-reduce waits for rank 1's, and the path
    // runs from rank 1's gradients through the collective to what follows
    // the wait, not through rank 0's waiting nor either main thread's.
    void glooCollectives()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        std::vector<Ev> evs;
        for (int rank = 0; rank < 2; ++rank) {
            const int64_t grad = rank == 0 ? 100 : 300;
            evs.push_back({rank, 1, false, TraceKind::CpuOp, "backward", 0, 420});
            evs.push_back({rank, 1, false, TraceKind::CpuOp, "grad", 0, grad});
            evs.push_back({rank, 1, false, TraceKind::CpuOp, "c10d::allreduce_", grad, 5});
            evs.push_back({rank, 1, false, TraceKind::CpuOp, "accumulate", 400, 20});
            evs.push_back({rank, 1, false, TraceKind::CpuOp, "optimizer", 420, 50});
            evs.push_back({rank, 2 + rank, false, TraceKind::CpuOp, "gloo:all_reduce", grad + 6, 395 - grad - 6});
        }
        const int64_t run = store(*s, evs);
        auto r = findCriticalPath(*s, run, {});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const CriticalPath& p = r->paths.front();
        checkChain(p);
        // Rank 1's gradients, the hand-off to gloo, its all-reduce, then after the wait.
        QCOMPARE(p.length_ns, qint64((300 + 6 + 89 + 20 + 50) * 1000));
        QVERIFY(onPath(p, 1, "grad", PathEdge::Operator));
        QVERIFY(p.edge_counts.count(PathEdge::Launch));
        QVERIFY(p.edge_counts.count(PathEdge::Sync));
        for (const PathSegment& seg : p.segments)
            QVERIFY2(!(seg.name == "backward" && seg.weight_ns > 5'000), "waiting counted as backward's work");
        QCOMPARE(int(p.clocks.size()), 2);
        for (const ClockCorrection& c : p.clocks)
            QCOMPARE(c.offset_ns, qint64(0)); // both all-reduces end at 395 us
        // Rank 0's wait is not its work: only the 89 us after rank 1 arrived.
        const int64_t rank0 = p.by_rank.count(0) ? p.by_rank.at(0) : 0;
        QVERIFY2(rank0 <= 89'000 + 75'000, qPrintable(QString::number(rank0)));

        // A collective run inside its call, on the calling thread, starting
        // with it: nothing links the two (the chain does), and no cycle.
        std::vector<Ev> inline_;
        for (int rank = 0; rank < 2; ++rank) {
            inline_.push_back({rank, 1, false, TraceKind::CpuOp, "gloo:all_reduce", 100, 50});
            inline_.push_back({rank, 1, false, TraceKind::CpuOp, "c10d::allreduce_", 100, 40});
        }
        auto r2 = findCriticalPath(*s, store(*s, inline_), {});
        QVERIFY2(r2, r2 ? "" : r2.error().str().c_str());
        checkChain(r2->paths.front());
    }

    // The recorded two-rank DDP run (gloo, this CPU): every step's path
    // links the ranks at their all-reduces.
    void glooOnRecordedRun()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {(test::torchTraces() + "/two/traces").toStdString()});
        QVERIFY2(imp, imp ? "" : imp.error().str().c_str());
        auto r = findCriticalPath(*s, imp->run_id, {});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->ranks, 2);
        QVERIFY(!r->paths.empty());
        for (const CriticalPath& p : r->paths) {
            checkChain(p);
            QCOMPARE(int(p.clocks.size()), 2);
            QVERIFY2(p.edge_counts.count(PathEdge::Collective) || p.edge_counts.count(PathEdge::Sync),
                     qPrintable(QString("step %1: the ranks are not linked").arg(p.step)));
            for (const std::string& n : p.notes)
                QVERIFY2(n.find("matched across ranks: 0") == std::string::npos, n.c_str());
        }
    }

    // A CUDA graph's kernels share its launch's correlation id; the second
    // starts 1.94 ms after the first (past the 1.5 ms beyond which separate
    // launches are not chained) and is still chained. cuLaunchKernelEx
    // launches like cudaLaunchKernel.
    void graphsAndLaunchEx()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = store(*s, {
                                          {0, 0, false, TraceKind::Runtime, "cudaGraphLaunch", 0, 10, 7},
                                          {0, 0, false, TraceKind::Runtime, "cuLaunchKernelEx", 20, 5, 8},
                                          {0, 7, true, TraceKind::Kernel, "graph kernel 1", 50, 10, 7},
                                          {0, 7, true, TraceKind::Kernel, "graph kernel 2", 2000, 10, 7},
                                          {0, 9, true, TraceKind::Kernel, "ex kernel", 30, 10, 8},
                                      });
        auto r = findCriticalPath(*s, run, {});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const CriticalPath& p = r->paths.front();
        checkChain(p);
        QCOMPARE(p.length_ns, qint64(2'010'000)); // launch 50, kernel 10, gap 1940, kernel 10
        QVERIFY(onPath(p, 0, "graph kernel 1", PathEdge::StreamGap));
        QCOMPARE(p.by_kind.at("launch delay"), qint64(50'000));
        // The Ex launch's kernel reached from its launch, 10 us after it.
        QVERIFY(p.edge_counts.at(PathEdge::Launch) >= 3);
        CriticalPathOptions o;
        o.annotation = "cuLaunchKernelEx";
        auto ex = findCriticalPath(*s, run, o);
        QVERIFY(ex);
        QCOMPARE(ex->paths.front().length_ns, qint64(20'000)); // its launch delay (10) and the kernel (10)
    }

    // Device events that carry correlation ids but whose host side is not
    // in the trace (a GPU-only export): taken by their start, chained.
    void deviceOnly()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = store(*s, {
                                          {0, 7, true, TraceKind::Kernel, "a", 0, 10, 5},
                                          {0, 7, true, TraceKind::Kernel, "b", 15, 10, 6},
                                          {0, 8, true, TraceKind::Memcpy, "copy", 30, 5, 9},
                                      });
        auto r = findCriticalPath(*s, run, {});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const CriticalPath& p = r->paths.front();
        checkChain(p);
        QCOMPARE(p.length_ns, qint64(35'000)); // a, the gap, b, copy's wait for b, copy
        QCOMPARE(p.by_kind.at("memcpy"), qint64(5'000));
        QVERIFY(onPath(p, 0, "b", PathEdge::Device));
    }

    void refuses_data()
    {
        QTest::addColumn<int>("step");
        QTest::addColumn<QString>("annotation");
        QTest::addColumn<QString>("message");
        QTest::newRow("a step past the last") << 9 << "" << "no rank has step 9";
        QTest::newRow("an annotation nobody has") << -1 << "no such thing" << "no rank has event named like 'no such thing' 0";
        QTest::newRow("a negative step") << -2 << "" << "no rank has step -2";
    }
    void refuses()
    {
        QFETCH(int, step);
        QFETCH(QString, annotation);
        QFETCH(QString, message);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        test::SynthOptions so;
        so.ranks = 2;
        auto run = test::synthesizeRanks(*s, test::dataParallelPattern(2, 3), so);
        QVERIFY(run);
        CriticalPathOptions o;
        if (step != -1)
            o.step = step;
        o.annotation = annotation.toStdString();
        auto r = findCriticalPath(*s, run->run_id, o);
        QVERIFY(!r);
        QVERIFY2(QString::fromStdString(r.error().str()).contains(message), r.error().str().c_str());
        QVERIFY(!findCriticalPath(*s, run->run_id + 100, {}));
    }
};

QTEST_APPLESS_MAIN(TestCriticalPath)
#include "tst_criticalpath.moc"
