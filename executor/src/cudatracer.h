#pragma once
// Inside the CUDA plugin: CUPTI's activity tracing for the backend and the
// GPU sweep. CUPTI hands buffers out and back on its own threads; one tracer
// per process.
#include "partita/executor/cudabackend.h"
#include "partita/executor/cuptirecords.h"

#include <cuda_runtime_api.h>
#include <cupti.h>
#include <nccl.h>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

namespace partita {

inline int64_t steadyNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

inline std::string cudaMessage(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }
inline std::string ncclMessage(ncclResult_t e) { return ncclGetErrorString(e); }
inline std::string cuptiMessage(CUptiResult r)
{
    const char* s = nullptr;
    cuptiGetResultString(r, &s);
    return s ? s : "unknown CUPTI error";
}

class Tracer
{
public:
    static Tracer& instance()
    {
        static Tracer t;
        return t;
    }
    Result<bool> start(const CudaBackendOptions& o)
    {
        m_bytes = o.trace_buffer_bytes;
        for (int i = 0; i < o.trace_buffers; ++i)
            m_free.push_back(allocate());
        if (auto r = cuptiActivityRegisterCallbacks(&Tracer::requested, &Tracer::completed); r != CUPTI_SUCCESS)
            return Error{"CUPTI", "cuptiActivityRegisterCallbacks", cuptiMessage(r)};
        // External correlations are records of CUDA API calls: without the
        // runtime and driver API kinds on, CUPTI writes none (seen on an
        // H200, CUPTI 13.0: no kernel carried its plan op).
        for (CUpti_ActivityKind k : {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                     CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER,
                                     CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, CUPTI_ACTIVITY_KIND_OVERHEAD})
            if (auto r = cuptiActivityEnable(k); r != CUPTI_SUCCESS)
                return Error{"CUPTI", "cuptiActivityEnable(" + std::to_string(int(k)) + ")", cuptiMessage(r)};
        m_clockA = pair();
        return true;
    }
    CuptiRecordSink& sink() { return m_sink; }
    std::pair<int64_t, uint64_t> pair()
    {
        const int64_t a = steadyNs();
        uint64_t c = 0;
        cuptiGetTimestamp(&c);
        const int64_t b = steadyNs();
        return {a + (b - a) / 2, c};
    }
    // Everything recorded so far, on the host clock.
    Result<std::vector<TraceRecord>> flush()
    {
        if (auto r = cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED); r != CUPTI_SUCCESS)
            return Error{"CUPTI", "cuptiActivityFlushAll", cuptiMessage(r)};
        {
            std::lock_guard lock(m_mu);
            if (m_error)
                return *m_error;
            if (m_dropped > 0)
                return Error{"CUPTI", "activity buffers",
                             std::to_string(m_dropped) + " records were dropped: the timeline would be incomplete "
                                                         "(more or larger trace buffers are needed)"};
        }
        const auto b = pair();
        const CuptiClock clock = CuptiClock::fromPairs(m_clockA.first, m_clockA.second, b.first, b.second);
        return m_sink.take(clock);
    }

private:
    uint8_t* allocate()
    {
        // CUPTI wants 8-byte aligned buffers.
        m_owned.emplace_back(new (std::align_val_t(8)) uint8_t[m_bytes]);
        return m_owned.back().get();
    }
    static void CUPTIAPI requested(uint8_t** buffer, size_t* size, size_t* maxNumRecords)
    {
        Tracer& t = instance();
        std::lock_guard lock(t.m_mu);
        if (t.m_free.empty())
            t.m_free.push_back(t.allocate()); // more than pre-allocated: grows, never drops
        *buffer = t.m_free.front();
        t.m_free.pop_front();
        *size = t.m_bytes;
        *maxNumRecords = 0;
    }
    static void CUPTIAPI completed(CUcontext ctx, uint32_t streamId, uint8_t* buffer, size_t size, size_t validSize)
    {
        Tracer& t = instance();
        auto r = t.m_sink.consume(buffer, validSize);
        size_t dropped = 0;
        cuptiActivityGetNumDroppedRecords(ctx, streamId, &dropped);
        std::lock_guard lock(t.m_mu);
        if (!r && !t.m_error)
            t.m_error = r.error();
        t.m_dropped += int64_t(dropped);
        t.m_free.push_back(buffer);
    }

    struct Deleter
    {
        void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(8)); }
    };
    std::mutex m_mu;
    size_t m_bytes = 8 << 20;
    std::deque<uint8_t*> m_free;
    std::vector<std::unique_ptr<uint8_t[], Deleter>> m_owned;
    CuptiRecordSink m_sink;
    std::optional<Error> m_error;
    int64_t m_dropped = 0;
    std::pair<int64_t, uint64_t> m_clockA{0, 0};
};

} // namespace partita
