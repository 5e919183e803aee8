#pragma once
// Per-device facts of a layer under a resolved assignment, shared by the plan
// lowering and the simulator. Internal to core.

#include "partita/core/model.h"
#include "partita/core/strategy.h"

namespace partita::detail {

// Parameters one device holds: split by tensor parallelism unless
// replicated, and experts by expert parallelism.
inline double paramsLocal(const Layer& l, const LayerAssignment& a, const Strategy& s)
{
    double p = double(l.parameterCount());
    if (l.kind == LayerKind::MoEExperts && s.ep > 1)
        p /= s.ep;
    return a.tp_role == TpRole::Replicated ? p : p / s.tp;
}

inline int activationBytes(Precision p) { return p == Precision::FP32 ? 4 : 2; }
inline int gradientBytes(const Strategy& s)
{
    return s.precision == Precision::FP32 || s.fp32_grad_accumulation ? 4 : 2;
}

} // namespace partita::detail
