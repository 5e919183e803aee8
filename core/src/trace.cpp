#include "partita/core/trace.h"

namespace partita {

std::string_view traceKindName(TraceKind k)
{
    switch (k) {
    case TraceKind::Kernel: return "kernel";
    case TraceKind::Memcpy: return "memcpy";
    case TraceKind::Memset: return "memset";
    case TraceKind::Collective: return "collective";
    case TraceKind::P2P: return "p2p";
    case TraceKind::Compute: return "compute";
    case TraceKind::Runtime: return "runtime";
    case TraceKind::Annotation: return "annotation";
    case TraceKind::Step: return "step";
    case TraceKind::CpuOp: return "cpu_op";
    }
    return "?";
}

bool isDeviceKind(TraceKind k)
{
    switch (k) {
    case TraceKind::Kernel:
    case TraceKind::Memcpy:
    case TraceKind::Memset:
    case TraceKind::Collective:
    case TraceKind::P2P:
    case TraceKind::Compute: return true;
    default: return false;
    }
}

} // namespace partita
