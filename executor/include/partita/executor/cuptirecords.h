#pragma once
// CUPTI Activity records to trace records (built with CUPTI only). The CUDA
// backend hands every completed activity buffer to a sink, which walks it with
// cuptiActivityGetNextRecord and keeps what the timeline needs: kernels
// (concurrent), memcpy, memset and CUPTI's own overhead, plus the external
// correlations that name the plan op each launch belongs to. The struct
// versions are the installed CUPTI's, chosen at compile time. Everything here
// runs without a GPU, so it is tested on synthetic buffers.

#include "partita/core/result.h"
#include "partita/core/trace.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace partita {

// CUPTI timestamps (ns, GPU clock normalized by CUPTI) to this host's steady
// clock: host = host_ns + (cupti - cupti_ns) * slope. Built from pairs read
// back to back (cuptiGetTimestamp between two steady-clock reads, the middle
// of the pair kept); two pairs give the slope.
struct CuptiClock
{
    int64_t host_ns = 0;
    uint64_t cupti_ns = 0;
    double slope = 1.0;
    int64_t toHost(uint64_t cupti) const
    {
        return host_ns + int64_t(double(int64_t(cupti - cupti_ns)) * slope);
    }
    static CuptiClock fromPairs(int64_t hostA, uint64_t cuptiA, int64_t hostB, uint64_t cuptiB);
};

class CuptiRecordSink
{
public:
    // The streams the worker's ops run on, for the records' tracks: compute
    // stream -> track 0, data-parallel stream -> track 1, any other -> track 3.
    void setStreams(uint32_t computeStream, uint32_t dataStream);
    // Walks one completed buffer. Thread-safe (CUPTI completes buffers on its own thread).
    Result<bool> consume(const uint8_t* buffer, size_t validSize);
    // The records consumed so far, op ids from the external correlations
    // (-1 when none), timestamps through `clock`; removes them.
    std::vector<TraceRecord> take(const CuptiClock& clock);
    int64_t overheadNs() const; // CUPTI's own overhead records, summed
    int64_t recordsSeen() const;

private:
    struct Pending
    {
        TraceRecord rec;
        uint64_t start = 0, end = 0;
        uint32_t correlation = 0;
        uint32_t stream = 0;
    };
    template <class R>
    static Pending transfer(const R& record, TraceKind kind, const char* what);
    mutable std::mutex m_mu;
    std::vector<Pending> m_pending;
    std::unordered_map<uint32_t, int64_t> m_external; // CUPTI correlation id -> plan op
    uint32_t m_compute = UINT32_MAX, m_data = UINT32_MAX;
    int64_t m_overhead = 0, m_seen = 0;
};

// The kind a kernel's name gives it: NCCL's kernels are collectives.
TraceKind kindOfKernel(const std::string& name);

} // namespace partita
