#include "partita/executor/cpuworker.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

namespace partita {

int64_t planOpId(int step, int kernel) { return int64_t(step) * 100000 + kernel; }

namespace {

using Clock = std::chrono::steady_clock;

int64_t nowNs(Clock::time_point t0) { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count(); }

int64_t scaled(int64_t v, double s) { return std::max<int64_t>(1, int64_t(std::llround(double(v) * s))); }

// Buffers sized for the largest kernel of the plan, reused by every kernel.
class Buffers
{
public:
    void ensure(size_t a, size_t b, size_t c)
    {
        if (m_a.size() < a)
            m_a.assign(a, 1.0f / 1024);
        if (m_b.size() < b)
            m_b.assign(b, 1.0f / 1024);
        if (m_c.size() < c)
            m_c.assign(c, 0.0f);
    }
    float* a() { return m_a.data(); }
    float* b() { return m_b.data(); }
    float* c() { return m_c.data(); }
    std::vector<float>& mem() { return m_mem; }

private:
    std::vector<float> m_a, m_b, m_c, m_mem;
};

// A pass over `bytes` of memory: read one array, write another (as an
// elementwise kernel does), half the bytes each.
void memoryPass(Buffers& buf, double bytes)
{
    const size_t n = size_t(std::max(1.0, bytes / 8)); // floats per side: read n, write n
    auto& m = buf.mem();
    if (m.size() < 2 * n)
        m.assign(2 * n, 1.0f);
    float* src = m.data();
    float* dst = m.data() + n;
    for (size_t i = 0; i < n; ++i)
        dst[i] = src[i] * 1.0001f + 0.5f;
}

void gemm(Buffers& buf, int64_t m, int64_t n, int64_t k)
{
    buf.ensure(size_t(m * k), size_t(k * n), size_t(m * n));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(k), 1.0f, buf.a(), int(k), buf.b(),
                int(n), 0.0f, buf.c(), int(n));
}

} // namespace

Result<CpuWorkerResult> runCpuWorker(const Plan& plan, const CpuWorkerOptions& o)
{
    if (plan.world != 1)
        return Error{"plan", "world",
                     "the CPU worker runs one rank for now; plans of " + std::to_string(plan.world) +
                         " ranks need the MPI communicator, which is not built yet"};
    if (o.rank != 0)
        return Error{"plan", "rank", "rank " + std::to_string(o.rank) + " is outside a one-rank plan"};
    if (!(o.shape_scale > 0 && o.shape_scale <= 1))
        return Error{"options", "shape_scale", "the shape scale must be in (0, 1]"};
    if (o.steps < 1 || o.warmup < 0)
        return Error{"options", "steps", "at least one measured step, and no negative warm-up"};
    if (plan.classes.empty())
        return Error{"plan", "classes", "the plan has no rank class"};
    const RankClass& rc = plan.classes.front();
    for (const Step& st : rc.steps)
        if (st.kind == StepKind::Send || st.kind == StepKind::Recv)
            return Error{"plan", "steps", "a one-rank plan with sends or receives is malformed"};
        else if (st.kind == StepKind::Run && (st.program < 0 || size_t(st.program) >= plan.programs.size()))
            return Error{"plan", "steps", "a step runs program " + std::to_string(st.program) + ", which does not exist"};

    CpuWorkerResult res;
    res.rank = o.rank;
    res.shape_scale = o.shape_scale;
    if (const char* cfg = openblas_get_config())
        res.blas = cfg;
    Buffers buf;
    const double s = o.shape_scale;
    const auto t0 = Clock::now();
    res.trace.tracks = {{o.rank, 0, "CPU compute"}, {o.rank, 1, "steps"}};
    for (int iter = 0; iter < o.warmup + o.steps; ++iter) {
        if (o.cancel && o.cancel->load())
            return Error{"worker", "rank " + std::to_string(o.rank), "cancelled"};
        const bool measured = iter >= o.warmup;
        const int64_t stepStart = nowNs(t0);
        int64_t kernels = 0;
        for (size_t si = 0; si < rc.steps.size(); ++si) {
            const Step& st = rc.steps[si];
            std::vector<Kernel> work;
            std::string what;
            if (st.kind == StepKind::Run) {
                const Program& p = plan.programs[size_t(st.program)];
                work = p.kernels;
                what = std::string(phaseName(p.phase)) + " mb" + std::to_string(st.micro);
            } else if (st.kind == StepKind::Optimizer) {
                // Adam reads and writes weights, gradients and two moments.
                Kernel k;
                k.kind = KernelKind::Memory;
                k.bytes = rc.parameters * 16;
                work.push_back(k);
                what = "optimizer";
            } else if (st.kind == StepKind::Sync) {
                continue; // one rank: nothing to synchronize
            }
            for (size_t ki = 0; ki < work.size(); ++ki) {
                const Kernel& k = work[ki];
                if (k.kind == KernelKind::Collective)
                    continue; // tensor-parallel collectives need a group of more than one rank
                const int64_t begin = nowNs(t0);
                if (k.kind == KernelKind::Gemm || k.kind == KernelKind::BatchedGemm) {
                    // Backward kernels hold the two gradient GEMMs of each forward one.
                    const int reps = std::max(1, k.ops) * int(std::max<int64_t>(1, k.batch));
                    for (int r = 0; r < reps; ++r)
                        gemm(buf, scaled(k.m, s), scaled(k.n, s), scaled(k.k, s));
                    if (k.bytes > 0 && k.mem_ops > 0)
                        memoryPass(buf, k.bytes * s);
                } else {
                    memoryPass(buf, k.bytes * s);
                }
                const int64_t end = nowNs(t0);
                ++kernels;
                if (!measured)
                    continue;
                TraceRecord r;
                r.rank = o.rank;
                r.track = 0;
                r.start_ns = begin;
                r.dur_ns = std::max<int64_t>(1, end - begin);
                r.kind = TraceKind::Compute;
                r.name = what + " " + std::string(kernelKindName(k.kind)) +
                         (k.m ? " " + std::to_string(k.m) + "x" + std::to_string(k.n) + "x" + std::to_string(k.k) : "");
                r.layer = k.layer;
                r.op = planOpId(int(si), int(ki));
                r.flops = k.flops * s * s * s;
                r.bytes = int64_t(k.bytes * s);
                res.trace.records.push_back(std::move(r));
            }
        }
        const int64_t stepEnd = nowNs(t0);
        const double seconds = double(stepEnd - stepStart) * 1e-9;
        if (measured) {
            res.step_s.push_back(seconds);
            TraceRecord step;
            step.rank = o.rank;
            step.track = 1;
            step.start_ns = stepStart;
            step.dur_ns = stepEnd - stepStart;
            step.kind = TraceKind::Step;
            step.name = "ProfilerStep#" + std::to_string(iter - o.warmup);
            res.trace.records.push_back(step);
            res.kernels_per_step = kernels;
        }
        if (o.progress)
            o.progress(iter, !measured, seconds);
    }
    return res;
}

} // namespace partita
