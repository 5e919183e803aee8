#pragma once
// Inside the core: what the simulator costs one piece at a time (simcost.cpp)
// and the schedule simulation (simulator.cpp) uses: link paths, a kernel's
// time, the activations a layer keeps.
#include "partita/core/simulator.h"

#include <string>

namespace partita::sim {

const char* dtypeKey(Precision p);

// Link figures a group sees, per member.
struct Paths
{
    double intraBw = 0, intraLat = 0;
    double interBw = 0, interLat = 0;
};

Paths pathsOf(const Node& node, const Calibration& cal);

// Everything one simulation reads, fixed before the first kernel is costed.
struct Ctx
{
    const Model& m;
    const Cluster& c;
    const ResolvedStrategy& r;
    const Strategy& s;
    const Plan& plan;
    const DeviceSpec& dev;
    const Node& node;
    Calibration cal;
    int ab = 2;          // activation bytes
    int64_t b = 1;       // micro-batch
    int64_t seq = 1;
    double peak = 0;     // FLOP/s at the strategy's precision (fp8: bf16's, for all but fp8 GEMMs)
    double fp8Peak = 0;  // fp8: the linear layers' GEMMs
    EfficiencyCurve fp8Curve{};
    int perNode = 1;
};

double matmulTime(const Ctx& x, double flops, int ops = 1, bool fp8 = false);
bool fp8Gemm(const Ctx& x, const Kernel& k);
double memoryTime(const Ctx& x, double bytes);
GroupShape tpShape(const Ctx& x);
GroupShape stridedShape(const Ctx& x, int size, int stride);
GroupShape dpShape(const Ctx& x, int size);
GroupShape cpShape(const Ctx& x);
GroupShape epShape(const Ctx& x);
double savedBytes(const Ctx& x, const Layer& l, const LayerAssignment& a);
double kernelTime(const Ctx& x, const Kernel& k, Phase phase = Phase::Forward);
double smMarginSlowdown(const Ctx& x, const Kernel& k, Phase phase);

} // namespace partita::sim
