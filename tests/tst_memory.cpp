// profiler/memory: the profiler's [memory] records as a series per rank and
// device. On a real trace (one step of HTA's df_index_resolver test trace,
// tests/data/hta: a CUDA device and the CPU) the figures a script computes
// from the JSON; on written traces, the rows below: two threads' records
// merged by time, two devices, bad records left out and said so, the
// downsampled series keeping its peak; the predicted peak beside it.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/memory.h"
#include "storetest.h"
#include "testdata.h"

#include <QTemporaryDir>
#include <QTest>

#include <fstream>

using namespace partita;

namespace {

const MemorySeries* find(const MemoryReport& r, const std::string& device)
{
    for (const MemorySeries& s : r.series)
        if (s.device == device)
            return &s;
    return nullptr;
}

// A Kineto-like trace of [memory] records: (thread, ts us, device type, device id, allocated, reserved).
std::string trace(const std::vector<std::tuple<int, int, int, int, int64_t, int64_t>>& recs, const std::string& extra = {})
{
    std::string out = R"({"traceEvents": [)";
    out += R"({"ph":"X","cat":"cpu_op","name":"aten::empty","pid":1,"tid":1,"ts":0,"dur":100})";
    for (const auto& [tid, ts, type, id, alloc, reserved] : recs)
        out += R"(,{"ph":"i","cat":"cpu_instant_event","s":"t","name":"[memory]","pid":1,"tid":)" + std::to_string(tid) +
               R"(,"ts":)" + std::to_string(ts) + R"(,"args":{"Device Type":)" + std::to_string(type) + R"(,"Device Id":)" +
               std::to_string(id) + R"(,"Bytes":1,"Total Allocated":)" + std::to_string(alloc) + R"(,"Total Reserved":)" +
               std::to_string(reserved) + "}}";
    return out + extra + "]}";
}

} // namespace

class TestMemory : public QObject
{
    Q_OBJECT
private slots:
    void realTrace()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto imp = importChromeTrace(*s, {test::testData("hta/memory-df_index_resolver-step3.json.gz").toStdString()});
        QVERIFY2(imp, imp ? "" : imp.error().str().c_str());
        auto r = readMemory(*s, imp->run_id, 400);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(int(r->series.size()), 2);
        const MemorySeries* cuda = find(*r, "cuda:1");
        QVERIFY(cuda);
        QCOMPARE(cuda->rank, 1); // distributedInfo
        QCOMPARE(cuda->samples, qint64(5354));
        QCOMPARE(cuda->peak_allocated, qint64(6'629'508'096));
        QCOMPARE(cuda->peak_allocated_at_ns, qint64(1'669'783'687'938'883'000));
        QCOMPARE(cuda->peak_reserved, qint64(12'782'141'440));
        QCOMPARE(cuda->first_allocated, qint64(4'121'780'224));
        QCOMPARE(cuda->last_allocated, qint64(4'096'614'400));
        QVERIFY(cuda->track_id > 0);
        // Downsampled: at most 400 points, in time order, the peak among them.
        QVERIFY(!cuda->points.empty() && cuda->points.size() <= 400);
        QVERIFY(std::is_sorted(cuda->points.begin(), cuda->points.end(),
                               [](const MemorySample& a, const MemorySample& b) { return a.t_ns < b.t_ns; }));
        QVERIFY(std::any_of(cuda->points.begin(), cuda->points.end(), [&](const MemorySample& p) { return p.allocated == cuda->peak_allocated; }));
        const MemorySeries* cpu = find(*r, "cpu");
        QVERIFY(cpu);
        QCOMPARE(cpu->samples, qint64(248));
        QCOMPARE(cpu->peak_allocated, qint64(8));
        QVERIFY(!r->predicted_peak_bytes);
    }

    void written_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("device");
        QTest::addColumn<qint64>("samples");
        QTest::addColumn<qint64>("peak");
        QTest::addColumn<qint64>("peakAtUs");
        QTest::addColumn<qint64>("first");
        QTest::addColumn<qint64>("last");
        QTest::addColumn<QString>("note");
        QTest::newRow("one device, up and down")
            << QString::fromStdString(trace({{1, 10, 1, 0, 100, 200}, {1, 20, 1, 0, 300, 400}, {1, 30, 1, 0, 50, 400}}))
            << "cuda:0" << qint64(3) << qint64(300) << qint64(20) << qint64(100) << qint64(50) << "";
        QTest::newRow("two threads' records, merged by time")
            << QString::fromStdString(trace({{1, 10, 1, 0, 100, 200}, {1, 40, 1, 0, 70, 200}, {2, 5, 1, 0, 60, 200}, {2, 20, 1, 0, 900, 1000}}))
            << "cuda:0" << qint64(4) << qint64(900) << qint64(20) << qint64(60) << qint64(70) << "";
        QTest::newRow("the CPU beside a GPU")
            << QString::fromStdString(trace({{1, 10, 1, 3, 100, 200}, {1, 11, 0, -1, 8, 0}, {1, 12, 0, -1, 24, 0}}))
            << "cpu" << qint64(2) << qint64(24) << qint64(12) << qint64(8) << qint64(24) << "";
        QTest::newRow("a record without its totals, left out")
            << QString::fromStdString(trace({{1, 10, 1, 0, 100, 200}}, R"(,{"ph":"i","s":"t","name":"[memory]","pid":1,"tid":1,"ts":12,"args":{"Bytes":4}})"))
            << "cuda:0" << qint64(1) << qint64(100) << qint64(10) << qint64(100) << qint64(100) << "without \"Total Allocated\"";
        QTest::newRow("no records") << QString::fromStdString(trace({})) << "" << qint64(0) << qint64(0) << qint64(0) << qint64(0)
                                    << qint64(0) << "profile_memory=True";
    }
    void written()
    {
        QFETCH(QString, json);
        QFETCH(QString, device);
        QFETCH(qint64, samples);
        QFETCH(qint64, peak);
        QFETCH(qint64, peakAtUs);
        QFETCH(qint64, first);
        QFETCH(qint64, last);
        QFETCH(QString, note);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = test::importText(*s, dir, json.toStdString());
        auto r = readMemory(*s, run, 8);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        if (!note.isEmpty()) {
            QVERIFY(!r->notes.empty());
            QVERIFY2(QString::fromStdString(r->notes.front()).contains(note), r->notes.front().c_str());
        }
        if (device.isEmpty()) {
            QVERIFY(r->series.empty());
            return;
        }
        const MemorySeries* m = find(*r, device.toStdString());
        QVERIFY(m);
        QCOMPARE(m->samples, samples);
        QCOMPARE(m->peak_allocated, peak);
        QCOMPARE(m->peak_allocated_at_ns, peakAtUs * 1000);
        QCOMPARE(m->first_allocated, first);
        QCOMPARE(m->last_allocated, last);
        QVERIFY(m->points.size() <= 8);
    }

    // The prediction's peak beside a measured run that names it, and beside
    // a predicted run itself.
    void predictedPeak()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        auto w = s->beginRun(test::named("prediction", RunKind::Predicted));
        QVERIFY(w);
        QVERIFY((*w)->finish(R"({"step_time_s": 0.5, "peak_memory_bytes": 4.0e9})"));
        const int64_t predicted = (*w)->runId();
        auto m = s->beginRun(test::named("measured", RunKind::Measured));
        QVERIFY(m);
        QVERIFY((*m)->finish(R"({"predicted_run": )" + std::to_string(predicted) + "}"));
        const int64_t measured = (*m)->runId();
        for (int64_t run : {measured, predicted}) {
            auto r = readMemory(*s, run);
            QVERIFY(r);
            QVERIFY(r->predicted_peak_bytes);
            QCOMPARE(*r->predicted_peak_bytes, 4.0e9);
            QCOMPARE(r->predicted_run, predicted);
        }
        QVERIFY(!readMemory(*s, measured + 100));
    }
};

QTEST_APPLESS_MAIN(TestMemory)
#include "tst_memory.moc"
