#pragma once
// The one trace-record type that predicted, measured and imported runs share.
// Plain data: the profiler stores and analyzes it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class TraceKind
{
    Kernel,
    Memcpy,
    Memset,
    Collective,
    P2P,
    Compute, // a compute op of a plan (predicted) or a CPU-backend kernel
    Runtime,
    Annotation,
    Step,
    CpuOp,   // a framework operator on a host thread (Kineto's cpu_op)
};

std::string_view traceKindName(TraceKind k);
// Runs on a device (GPU stream, or the CPU backend's compute and communication threads).
bool isDeviceKind(TraceKind k);

struct TraceRecord
{
    int32_t rank = 0;
    int32_t track = 0;     // stream or thread within the rank (see Trace::tracks)
    int64_t start_ns = 0;
    int64_t dur_ns = 0;
    TraceKind kind = TraceKind::Compute;
    std::string name;
    int32_t layer = -1;    // model layer index, -1 if unknown
    int64_t op = -1;       // plan op id, -1 if unknown
    int64_t bytes = 0;
    double flops = 0;
    int64_t correlation = -1;
};

struct TraceTrack
{
    int32_t rank = 0;
    int32_t track = 0;
    std::string name; // "compute", "data-parallel comm", "stream 7", ...
};

struct Trace
{
    std::vector<TraceTrack> tracks;
    std::vector<TraceRecord> records;
};

} // namespace partita
