// A plan at a shape scale: what the executor runs on a machine too small
// for the model (partita-cli run --shape-scale), and what its measurement
// is compared with.
#include "partita/core/plan.h"

#include <algorithm>
#include <cmath>

namespace partita {

namespace {

int64_t scaledDim(int64_t v, double s) { return v == 0 ? 0 : std::max<int64_t>(1, int64_t(std::llround(double(v) * s))); }

} // namespace

Plan scalePlan(const Plan& p, double s)
{
    Plan out = p;
    if (s == 1)
        return out;
    for (Program& prog : out.programs) {
        prog.params *= s;
        for (Kernel& k : prog.kernels) {
            k.m = scaledDim(k.m, s);
            k.n = scaledDim(k.n, s);
            k.k = scaledDim(k.k, s);
            k.flops = k.flops * s * s * s;
            k.bytes *= s;
            k.coll_bytes *= s;
        }
    }
    for (RankClass& rc : out.classes) {
        rc.parameters *= s;
        for (Step& st : rc.steps)
            st.bytes *= s;
    }
    return out;
}

} // namespace partita
