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

// Bytes of one worker's dense gradient payload for a layer: fp16
// compression halves fp32 gradients; PowerSGD of rank r sends P (n x r) and
// Q (m x r) per matrix and the rest uncompressed (Vogels et al. 2019).
inline double syncPayloadBytes(const Layer& l, const LayerAssignment& la, const Strategy& s, double gradBytes)
{
    const SyncAtom& a = la.sync;
    double bytes = paramsLocal(l, la, s) * gradBytes;
    if (a.compression == Compression::FP16 && gradBytes == 4)
        bytes /= 2;
    if (a.compression == Compression::PowerSGD) {
        double compressed = 0;
        for (const auto& p : l.params) {
            const double e = double(p.numel()) / (la.tp_role == TpRole::Replicated ? 1 : s.tp);
            compressed += p.shape.size() == 2 ? a.powersgd_rank * (double(p.shape[0]) + double(p.shape[1])) : e;
        }
        bytes = compressed * gradBytes;
    }
    return bytes;
}

// Expected distinct ranks among T draws from Zipf(1) over V ranks.
double zipfDistinct(int64_t V, double T);

// Bytes of the rows of a sparse gradient that `tokens` touch, with their
// indices. Token ids follow Zipf's law (frequency ~ 1/rank; Zipf 1949,
// Piantadosi 2014); position tables are touched up to the sequence length;
// other tables are drawn uniformly.
double sparseRowsBytes(const Layer& l, double tokens, int64_t seq, int64_t modelSeq, double gradBytes);

inline int activationBytes(Precision p) { return p == Precision::FP32 ? 4 : 2; }
inline int gradientBytes(const Strategy& s)
{
    return s.precision == Precision::FP32 || s.fp32_grad_accumulation ? 4 : 2;
}

} // namespace partita::detail
