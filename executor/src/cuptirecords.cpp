#include "partita/executor/cuptirecords.h"

#include <cupti.h>

#include <algorithm>

namespace partita {

// The installed CUPTI's record structs (CUPTI 13 moved Kernel9, Memcpy5 and
// Memset3 to cupti_activity_deprecated.h).
#if CUPTI_API_VERSION >= 130000
using KernelRecord = CUpti_ActivityKernel10;
using MemcpyRecord = CUpti_ActivityMemcpy6;
using MemsetRecord = CUpti_ActivityMemset4;
#elif CUPTI_API_VERSION >= 18
using KernelRecord = CUpti_ActivityKernel9;
using MemcpyRecord = CUpti_ActivityMemcpy5;
using MemsetRecord = CUpti_ActivityMemset4;
#else
#error "CUPTI older than CUDA 12 is not supported"
#endif
using OverheadRecord = CUpti_ActivityOverhead3;

CuptiClock CuptiClock::fromPairs(int64_t hostA, uint64_t cuptiA, int64_t hostB, uint64_t cuptiB)
{
    CuptiClock c;
    c.host_ns = hostB;
    c.cupti_ns = cuptiB;
    const double dc = double(int64_t(cuptiB - cuptiA));
    const double dh = double(hostB - hostA);
    // A slope far from 1 means the pairs are too close to tell: keep 1.
    if (dc > 1e6 && dh > 0 && std::abs(dh / dc - 1) < 1e-3)
        c.slope = dh / dc;
    return c;
}

TraceKind kindOfKernel(const std::string& name)
{
    return name.rfind("nccl", 0) == 0 ? TraceKind::Collective : TraceKind::Kernel;
}

// Memcpy and memset records share the fields a timeline needs.
template <class R>
CuptiRecordSink::Pending CuptiRecordSink::transfer(const R& m, TraceKind kind, const char* what)
{
    Pending p;
    p.rec.name = what + std::to_string(m.bytes) + " B";
    p.rec.kind = kind;
    p.rec.bytes = int64_t(m.bytes);
    p.start = m.start;
    p.end = m.end;
    p.correlation = m.correlationId;
    p.stream = m.streamId;
    return p;
}

void CuptiRecordSink::setStreams(uint32_t computeStream, uint32_t dataStream)
{
    std::lock_guard lock(m_mu);
    m_compute = computeStream;
    m_data = dataStream;
}

Result<bool> CuptiRecordSink::consume(const uint8_t* buffer, size_t validSize)
{
    std::lock_guard lock(m_mu);
    CUpti_Activity* rec = nullptr;
    for (;;) {
        const CUptiResult r = cuptiActivityGetNextRecord(const_cast<uint8_t*>(buffer), validSize, &rec);
        if (r == CUPTI_ERROR_MAX_LIMIT_REACHED)
            break; // the end of the buffer
        if (r != CUPTI_SUCCESS) {
            const char* msg = nullptr;
            cuptiGetResultString(r, &msg);
            return Error{"CUPTI", "activity buffer", std::string("cannot read the next record: ") + (msg ? msg : "?")};
        }
        ++m_seen;
        Pending p;
        switch (rec->kind) {
        case CUPTI_ACTIVITY_KIND_KERNEL:
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
            const auto* k = reinterpret_cast<const KernelRecord*>(rec);
            p.rec.name = k->name ? k->name : "kernel";
            p.rec.kind = kindOfKernel(p.rec.name);
            p.start = k->start;
            p.end = k->end;
            p.correlation = k->correlationId;
            p.stream = k->streamId;
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY:
            p = transfer(*reinterpret_cast<const MemcpyRecord*>(rec), TraceKind::Memcpy, "memcpy ");
            break;
        case CUPTI_ACTIVITY_KIND_MEMSET:
            p = transfer(*reinterpret_cast<const MemsetRecord*>(rec), TraceKind::Memset, "memset ");
            break;
        case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
            const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(rec);
            if (e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
                m_external[e->correlationId] = int64_t(e->externalId);
            continue;
        }
        case CUPTI_ACTIVITY_KIND_OVERHEAD: {
            const auto* o = reinterpret_cast<const OverheadRecord*>(rec);
            if (o->end > o->start)
                m_overhead += int64_t(o->end - o->start);
            continue;
        }
        default:
            continue;
        }
        p.rec.track = p.stream == m_compute ? 0 : p.stream == m_data ? 1 : 3;
        m_pending.push_back(std::move(p));
    }
    return true;
}

std::vector<TraceRecord> CuptiRecordSink::take(const CuptiClock& clock)
{
    std::lock_guard lock(m_mu);
    std::vector<TraceRecord> out;
    out.reserve(m_pending.size());
    for (Pending& p : m_pending) {
        TraceRecord r = std::move(p.rec);
        r.start_ns = clock.toHost(p.start);
        r.dur_ns = std::max<int64_t>(1, int64_t(p.end - p.start));
        r.correlation = p.correlation;
        auto ext = m_external.find(p.correlation);
        r.op = ext == m_external.end() ? -1 : ext->second;
        out.push_back(std::move(r));
    }
    // Correlations of launches whose records have not come yet stay; the
    // ones used go (one launch, one record, except for graphs).
    for (const TraceRecord& r : out)
        if (r.op >= 0)
            m_external.erase(uint32_t(r.correlation));
    m_pending.clear();
    std::sort(out.begin(), out.end(), [](const TraceRecord& a, const TraceRecord& b) { return a.start_ns < b.start_ns; });
    return out;
}

int64_t CuptiRecordSink::overheadNs() const
{
    std::lock_guard lock(m_mu);
    return m_overhead;
}

int64_t CuptiRecordSink::recordsSeen() const
{
    std::lock_guard lock(m_mu);
    return m_seen;
}

} // namespace partita
