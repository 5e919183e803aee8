#pragma once
// Inside core: the kernels of one layer for one micro-batch on one device
// (planlayers.cpp), which lowerPlan (plan.cpp) strings into programs.

#include "partita/core/plan.h"
#include "partita/core/strategy.h"

#include <vector>

namespace partita::detail {

struct LayerKernels
{
    std::vector<Kernel> fwd, bwd;
};

// Layer `index` of a micro-batch of `b` sequences of `seq` tokens, its
// activations `ab` bytes wide.
LayerKernels layerKernels(const Layer& l, const LayerAssignment& a, const Strategy& s, int64_t b, int64_t seq, int ab,
                          int32_t index);

} // namespace partita::detail
