// CUPTI record handling without a GPU: synthetic activity buffers of the
// installed CUPTI's record structs, walked by libcupti's own
// cuptiActivityGetNextRecord, turned into trace records with plan op ids
// from external correlations, tracks from streams, and host timestamps.
#include "partita/executor/cuptirecords.h"

#include <cupti.h>

#include <QTest>

#include <cstring>
#include <vector>

using namespace partita;

namespace {

#if CUPTI_API_VERSION >= 130000
using KernelRecord = CUpti_ActivityKernel10;
using MemcpyRecord = CUpti_ActivityMemcpy6;
#else
using KernelRecord = CUpti_ActivityKernel9;
using MemcpyRecord = CUpti_ActivityMemcpy5;
#endif
using MemsetRecord = CUpti_ActivityMemset4;

constexpr uint32_t kComputeStream = 13, kDataStream = 14;

// A buffer of records laid end to end, as CUPTI writes them.
class Buffer
{
public:
    template <class R>
    R& add()
    {
        const size_t at = m_bytes.size();
        m_bytes.resize(at + sizeof(R), 0);
        return *reinterpret_cast<R*>(m_bytes.data() + at);
    }
    const uint8_t* data() const { return m_bytes.data(); }
    size_t size() const { return m_bytes.size(); }

private:
    alignas(8) std::vector<uint8_t> m_bytes;
};

void kernel(Buffer& b, const char* name, uint32_t corr, uint32_t stream, uint64_t start, uint64_t end)
{
    auto& k = b.add<KernelRecord>();
    k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.name = name;
    k.correlationId = corr;
    k.streamId = stream;
    k.start = start;
    k.end = end;
}

// A memcpy or memset of 4096 bytes from 5000 to 7500 ns.
template <class R>
void transfer(Buffer& b, CUpti_ActivityKind kind, uint32_t corr, uint32_t stream)
{
    auto& m = b.add<R>();
    m.kind = kind;
    m.bytes = 4096;
    m.correlationId = corr;
    m.streamId = stream;
    m.start = 5000;
    m.end = 7500;
}

void external(Buffer& b, uint32_t corr, uint64_t op)
{
    auto& e = b.add<CUpti_ActivityExternalCorrelation>();
    e.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
    e.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
    e.correlationId = corr;
    e.externalId = op;
}

} // namespace

class TestCupti : public QObject
{
    Q_OBJECT
private slots:
    void records_data()
    {
        QTest::addColumn<int>("which"); // 0 kernel, 1 NCCL kernel, 2 memcpy, 3 memset
        QTest::addColumn<uint32_t>("stream");
        QTest::addColumn<int>("kind");
        QTest::addColumn<int>("track");
        QTest::addColumn<qint64>("op");
        QTest::newRow("GEMM on the compute stream") << 0 << kComputeStream << int(TraceKind::Kernel) << 0 << qint64(300007);
        QTest::newRow("NCCL on the data stream") << 1 << kDataStream << int(TraceKind::Collective) << 1 << qint64(900000);
        QTest::newRow("memcpy on the compute stream") << 2 << kComputeStream << int(TraceKind::Memcpy) << 0 << qint64(12);
        QTest::newRow("memset elsewhere, untagged") << 3 << uint32_t(99) << int(TraceKind::Memset) << 3 << qint64(-1);
    }
    void records()
    {
        QFETCH(int, which);
        QFETCH(uint32_t, stream);
        QFETCH(int, kind);
        QFETCH(int, track);
        QFETCH(qint64, op);
        Buffer b;
        const uint32_t corr = 41;
        if (op >= 0)
            external(b, corr, uint64_t(op));
        switch (which) {
        case 0: kernel(b, "ampere_bf16_s16816gemm_bf16_128x128", corr, stream, 5000, 7500); break;
        case 1: kernel(b, "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", corr, stream, 5000, 7500); break;
        case 2: transfer<MemcpyRecord>(b, CUPTI_ACTIVITY_KIND_MEMCPY, corr, stream); break;
        default: transfer<MemsetRecord>(b, CUPTI_ACTIVITY_KIND_MEMSET, corr, stream); break;
        }
        CuptiRecordSink sink;
        sink.setStreams(kComputeStream, kDataStream);
        auto ok = sink.consume(b.data(), b.size());
        QVERIFY2(ok, ok ? "" : ok.error().str().c_str());
        CuptiClock clock;
        clock.host_ns = 1'000'000'000;
        clock.cupti_ns = 1000;
        const auto recs = sink.take(clock);
        QCOMPARE(int(recs.size()), 1);
        const TraceRecord& r = recs.front();
        QCOMPARE(int(r.kind), kind);
        QCOMPARE(r.track, track);
        QCOMPARE(qint64(r.op), op);
        QCOMPARE(r.start_ns, int64_t(1'000'004'000));
        QCOMPARE(r.dur_ns, int64_t(2500));
        QCOMPARE(r.correlation, int64_t(corr));
        if (which >= 2)
            QCOMPARE(r.bytes, int64_t(4096));
        QCOMPARE(sink.recordsSeen(), int64_t(op >= 0 ? 2 : 1));
        QVERIFY(sink.take(clock).empty()); // taken once
    }

    // A launch's correlation may come in another buffer than its kernel.
    void correlationAcrossBuffers()
    {
        CuptiRecordSink sink;
        sink.setStreams(kComputeStream, kDataStream);
        Buffer first, second;
        kernel(first, "k1", 1, kComputeStream, 100, 200);
        kernel(first, "k2", 2, kComputeStream, 300, 400);
        external(first, 1, 7);
        external(second, 2, 8);
        QVERIFY(sink.consume(first.data(), first.size()));
        QVERIFY(sink.consume(second.data(), second.size()));
        const auto recs = sink.take(CuptiClock{});
        QCOMPARE(int(recs.size()), 2);
        QCOMPARE(recs[0].op, int64_t(7)); // sorted by start
        QCOMPARE(recs[1].op, int64_t(8));
    }

    void overheadIsSummed()
    {
        CuptiRecordSink sink;
        Buffer b;
        for (uint64_t d : {300u, 700u}) {
            auto& o = b.add<CUpti_ActivityOverhead3>();
            o.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
            o.start = 1000;
            o.end = 1000 + d;
        }
        QVERIFY(sink.consume(b.data(), b.size()));
        QCOMPARE(sink.overheadNs(), int64_t(1000));
        QVERIFY(sink.take(CuptiClock{}).empty());
    }

    void clock_data()
    {
        QTest::addColumn<qint64>("hostA");
        QTest::addColumn<qint64>("cuptiA");
        QTest::addColumn<qint64>("hostB");
        QTest::addColumn<qint64>("cuptiB");
        QTest::addColumn<double>("slope");
        QTest::newRow("same rate") << qint64(1000) << qint64(5000) << qint64(1'001'000) << qint64(1'005'000) << 1.0;
        QTest::newRow("drift 50 ppm") << qint64(0) << qint64(0) << qint64(1'000'050'000) << qint64(1'000'000'000) << 1.00005;
        QTest::newRow("pairs too close") << qint64(0) << qint64(0) << qint64(1500) << qint64(1000) << 1.0;
        QTest::newRow("nonsense slope") << qint64(0) << qint64(0) << qint64(3'000'000'000) << qint64(1'000'000'000) << 1.0;
    }
    void clock()
    {
        QFETCH(qint64, hostA);
        QFETCH(qint64, cuptiA);
        QFETCH(qint64, hostB);
        QFETCH(qint64, cuptiB);
        QFETCH(double, slope);
        const CuptiClock c = CuptiClock::fromPairs(hostA, uint64_t(cuptiA), hostB, uint64_t(cuptiB));
        QVERIFY(std::abs(c.slope - slope) < 1e-9);
        QCOMPARE(c.toHost(uint64_t(cuptiB)), int64_t(hostB));
    }
};

QTEST_APPLESS_MAIN(TestCupti)
#include "tst_cupti.moc"
